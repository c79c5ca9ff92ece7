/* C unit test of the X-SMTPAPI validator and encoder (csrc/smtpapi.c), run
 * under valgrind by `make ctest`: every path frees what it allocates, also
 * on errors, hostile input and the problem cap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpapi.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

static smtpkit_smtpapi_opts opts = {1776384000, 0, 0};

static int validate(const char *s, smtpkit_smtpapi_result *res)
{
    smtpkit_smtpapi_result_init(res);
    return smtpkit_smtpapi_validate(s, strlen(s), &opts, res);
}

static const smtpkit_smtpapi_problem *find(const smtpkit_smtpapi_result *res, const char *path)
{
    size_t i;
    for (i = 0; i < res->count; i++)
        if (!strcmp(res->problems[i].path, path))
            return &res->problems[i];
    return NULL;
}

int main(void)
{
    smtpkit_smtpapi_result res;
    const smtpkit_smtpapi_problem *p;
    smtpkit_smtpapi_doc *doc;
    char *out, *big;
    size_t outlen, i, n;

    CHECK(validate("{\"to\":[\"a@x.io\"],\"sub\":{\"-n-\":[\"A\"]}}", &res) == 1);
    CHECK(res.count == 0);
    smtpkit_smtpapi_result_free(&res);

    /* SendGrid's example: offset 50, column 51 */
    CHECK(validate("{\"to\":[\"ben@sendgrid.com\",\"joe@sendgrid.com\",\"sub\":{\"%name%\":[\"Ben\",\"Joe\"]}}",
                   &res) == 0);
    CHECK(res.count == 1 && res.problems[0].line == 1 && res.problems[0].column == 51);
    CHECK(res.problems[0].excerpt && strstr(res.problems[0].excerpt, "\"sub\":{"));
    smtpkit_smtpapi_result_free(&res);

    CHECK(validate("{\"to\":[\"a@x.io\"],\"sub\":{\"-name-\":[\"A\",\"B\",1]}}", &res) == 0);
    p = find(&res, "sub[\"-name-\"]");
    CHECK(p && p->severity == SMTPKIT_SMTPAPI_ERROR && strstr(p->message, "has 3 values"));
    p = find(&res, "sub[\"-name-\"][2]");
    CHECK(p && strstr(p->message, "string"));
    smtpkit_smtpapi_result_free(&res);

    CHECK(validate("{\"filters\":{\"clicktrack\":{\"settings\":{\"enable\":1,\"enable\":0}}}}", &res) == 0);
    p = find(&res, "filters.clicktrack.settings.enable");
    CHECK(p && strstr(p->message, "duplicate"));
    smtpkit_smtpapi_result_free(&res);

    /* the doc: a cJSON tree */
    smtpkit_smtpapi_result_init(&res);
    doc = smtpkit_smtpapi_parse("X-SMTPAPI: {\"category\":\r\n \"caf\\u00e9\"}", 38, &opts, &res);
    CHECK(doc != NULL);
    if (doc) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(smtpkit_smtpapi_doc_root(doc), "category");
        CHECK(cJSON_IsString(c) && !strcmp(c->valuestring, "caf\xC3\xA9"));
    }
    smtpkit_smtpapi_doc_free(doc);
    smtpkit_smtpapi_result_free(&res);

    /* encode: UTF-8 in, ASCII out, folded */
    smtpkit_smtpapi_result_init(&res);
    big = "{\"category\":\"\xF0\x9F\x98\x80\"}";
    CHECK(smtpkit_smtpapi_encode(big, strlen(big), &opts, &out, &outlen, &res) == 1);
    CHECK(out && !strcmp(out, "{\"category\":\"\\ud83d\\ude00\"}"));
    free(out);
    smtpkit_smtpapi_result_free(&res);

    /* a token too long to fold */
    n = 1200;
    big = malloc(n + 32);
    memcpy(big, "{\"ip_pool\":\"", 12);
    memset(big + 12, 'x', n);
    memcpy(big + 12 + n, "\"}", 3);
    smtpkit_smtpapi_result_init(&res);
    CHECK(smtpkit_smtpapi_encode(big, strlen(big), &opts, &out, &outlen, &res) == 0);
    CHECK(out == NULL && res.count == 1 && !strcmp(res.problems[0].path, "ip_pool"));
    smtpkit_smtpapi_result_free(&res);
    free(big);

    /* hostile: 1 MB of nesting, 1 MB of duplicate keys (the problem cap) */
    n = 1 << 20;
    big = malloc(n + 64);
    for (i = 0; i < n; i++)
        big[i] = i < n / 2 ? '[' : ']';
    smtpkit_smtpapi_result_init(&res);
    CHECK(smtpkit_smtpapi_validate(big, n, &opts, &res) == 0);
    CHECK(res.count == 1 && strstr(res.problems[0].message, "deeper than 32"));
    smtpkit_smtpapi_result_free(&res);
    i = 0;
    big[i++] = '{';
    while (i < n - 16)
        i += (size_t)sprintf(big + i, "\"k%zu\":1,", i % 100);
    i += (size_t)sprintf(big + i, "\"z\":1}");
    smtpkit_smtpapi_result_init(&res);
    CHECK(smtpkit_smtpapi_validate(big, i, &opts, &res) == 0);
    CHECK(res.count == SMTPKIT_SMTPAPI_MAX_PROBLEMS && res.dropped > 0);
    smtpkit_smtpapi_result_free(&res);
    free(big);

    if (failures)
        return 1;
    puts("test_smtpapi: ok");
    return 0;
}
