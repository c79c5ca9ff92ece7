/*
 * fuzz_smtpapi.c - libFuzzer target for the X-SMTPAPI validator and encoder
 * (csrc/smtpapi.c): any bytes, as a header value to validate and as JSON
 * text to encode. When encoding succeeds, the output must be ASCII, folded
 * only with CRLF + SP, no line over 998, and must validate cleanly.
 * On its first call it also feeds 1 MB hostile headers built in memory
 * (deep nesting, 100,000 keys of which most are duplicates, a 1 MB string,
 * 1 MB of folds) and aborts when the peak RSS grows by more than 256 MB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <stdio.h>

#include "smtpapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long peak_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void one(const char *s, size_t n)
{
    smtpkit_smtpapi_result res;
    smtpkit_smtpapi_opts o;
    char *out = NULL;
    size_t outlen;
    memset(&o, 0, sizeof o);
    smtpkit_smtpapi_result_init(&res);
    smtpkit_smtpapi_validate(s, n, &o, &res);
    smtpkit_smtpapi_result_free(&res);
    if (smtpkit_smtpapi_encode(s, n, &o, &out, &outlen, &res) == 1)
        free(out);
    smtpkit_smtpapi_result_free(&res);
}

static void hostile(void)
{
    size_t n = 1u << 20, i, k;
    char *b = malloc(n + 64);
    long before = peak_kb();
    if (!b)
        abort();
    /* deep nesting */
    for (i = 0; i < n / 2; i++)
        b[i] = '[';
    for (; i < n; i++)
        b[i] = ']';
    one(b, n);
    /* many keys, most of them duplicates */
    k = 0;
    b[k++] = '{';
    for (i = 0; k < n - 32; i++)
        k += (size_t)sprintf(b + k, "\"k%zu\":%zu,", i % 5000, i);
    k += (size_t)sprintf(b + k, "\"z\":0}");
    one(b, k);
    /* one long string */
    memcpy(b, "{\"to\":[\"", 8);
    memset(b + 8, 'a', n - 12);
    memcpy(b + n - 4, "\"]}", 3);
    one(b, n - 1);
    /* folds everywhere */
    b[0] = '{';
    for (k = 1; k + 4 < n; k += 3)
        memcpy(b + k, "\r\n ", 3);
    b[k++] = '}';
    one(b, k);
    free(b);
    if (peak_kb() - before > 256 * 1024) {
        fprintf(stderr, "smtpapi: peak RSS grew by %ld kB on 1 MB inputs\n", peak_kb() - before);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpkit_smtpapi_result res;
    smtpkit_smtpapi_opts o;
    char *out = NULL;
    size_t outlen = 0, i, line = SMTPKIT_SMTPAPI_NAME_LEN;
    int rc;
    static int once;

    if (!once) {
        once = 1;
        hostile();
    }
    memset(&o, 0, sizeof o);
    o.now = 1776384000;
    smtpkit_smtpapi_result_init(&res);
    rc = smtpkit_smtpapi_validate((const char *)data, size, &o, &res);
    if (rc == 1 && res.errors)
        abort();
    smtpkit_smtpapi_result_free(&res);

    /* The header name's length on the first line varies too (1..998): a
     * long one once made encode dereference NULL. Taken from the input's
     * length so the JSON text itself stays unchanged. */
    o.name_len = 1 + (unsigned)(size * 2654435761u % 998);
    line = o.name_len;
    rc = smtpkit_smtpapi_encode((const char *)data, size, &o, &out, &outlen, &res);
    smtpkit_smtpapi_result_free(&res);
    o.name_len = 0;
    if (rc != 1)
        return 0;
    for (i = 0; i < outlen; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '\r') {
            if (i + 2 >= outlen || out[i + 1] != '\n' || out[i + 2] != ' ')
                abort();
            i += 1;
            line = 0;
            continue;
        }
        if (c < 0x20 || c >= 0x7f)
            abort();
        if (++line > SMTPKIT_SMTPAPI_HARD_WIDTH)
            abort();
    }
    /* the encoded header validates, with no error */
    rc = smtpkit_smtpapi_validate(out, outlen, &o, &res);
    if (rc != 1)
        abort();
    smtpkit_smtpapi_result_free(&res);
    free(out);
    return 0;
}
