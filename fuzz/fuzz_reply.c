/*
 * fuzz_reply.c - libFuzzer target for the two parsers of server bytes: the
 * reply parser (csrc/reply.c) and the classifier (csrc/classify.c).
 *
 * The first input byte chooses a split point; the rest is fed to one parser
 * in one piece and to another in two pieces cut there: both must complete
 * the same replies (same codes, enhanced codes and texts) and fail alike.
 * Every completed reply and the whole input go through the classifier, whose
 * verdicts must stay inside the vocabulary and the decision rule.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLIES 64

typedef struct {
    int n, failed;
    int code[MAX_REPLIES];
    char enhanced[MAX_REPLIES][SMTPKIT_ENHANCED_MAX];
    size_t text_len[MAX_REPLIES];
    unsigned long text_sum[MAX_REPLIES];
} summary;

static void check_verdict(const smtpkit_verdict *v, const char *s, size_t len)
{
    if (!smtpkit_outcome_name(v->outcome) || !smtpkit_reason_name(v->reason)
        || !smtpkit_action_name(v->action) || !v->explanation)
        abort();
    if (v->text_len && (v->text < s || v->text + v->text_len > s + len))
        abort();
    if (v->outcome == SMTPKIT_OUTCOME_DEFERRED && !v->retry)
        abort();
    if (v->retry && v->outcome != SMTPKIT_OUTCOME_DEFERRED)
        abort();
    if (v->code && (v->code < 200 || v->code > 599))
        abort();
    if (v->code / 100 == 4 && v->outcome != SMTPKIT_OUTCOME_DEFERRED)
        abort();
    if (v->code / 100 == 2 && v->outcome != SMTPKIT_OUTCOME_DELIVERED)
        abort();
    if (v->enhanced[0] && v->code && v->enhanced[0] - '0' != v->code / 100)
        abort();
    if (strlen(v->enhanced) >= SMTPKIT_ENHANCED_MAX)
        abort();
}

static void record(summary *sm, const smtpkit_reply *r)
{
    smtpkit_verdict v;
    size_t i;
    unsigned long sum = 0;

    smtpkit_classify_reply(r, &v);
    check_verdict(&v, r->text, r->text_len);
    if (sm->n == MAX_REPLIES)
        return;
    for (i = 0; i < r->text_len; i++)
        sum = sum * 31 + (unsigned char)r->text[i];
    sm->code[sm->n] = r->code;
    memcpy(sm->enhanced[sm->n], r->enhanced, SMTPKIT_ENHANCED_MAX);
    sm->text_len[sm->n] = r->text_len;
    sm->text_sum[sm->n] = sum;
    sm->n++;
}

static void feed(smtpkit_reply_parser *p, summary *sm, const char *s, size_t len)
{
    while (len > 0 && !sm->failed) {
        size_t used = 0;
        smtpkit_reply_status st = smtpkit_reply_parser_feed(p, s, len, &used);
        if (used > len)
            abort();
        if (st == SMTPKIT_REPLY_ERROR) {
            if (!smtpkit_reply_parser_error(p)[0])
                abort();
            sm->failed = 1;
            return;
        }
        if (st == SMTPKIT_REPLY_DONE)
            record(sm, &p->reply);
        else if (used != len)
            abort();
        s += used;
        len -= used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smtpkit_reply_parser p1, p2;
    static summary a, b;
    smtpkit_verdict v;
    const char *s;
    size_t len, cut;

    if (size == 0) {
        smtpkit_classify("", 0, &v);
        check_verdict(&v, "", 0);
        return 0;
    }
    s = (const char *)data + 1;
    len = size - 1;
    cut = len ? data[0] % (len + 1) : 0;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    smtpkit_reply_parser_init(&p1);
    smtpkit_reply_parser_init(&p2);
    feed(&p1, &a, s, len);
    feed(&p2, &b, s, cut);
    feed(&p2, &b, s + cut, len - cut);
    if (a.n != b.n || a.failed != b.failed || memcmp(a.code, b.code, sizeof a.code)
        || memcmp(a.enhanced, b.enhanced, sizeof a.enhanced)
        || memcmp(a.text_len, b.text_len, sizeof a.text_len)
        || memcmp(a.text_sum, b.text_sum, sizeof a.text_sum))
        abort();

    smtpkit_classify(s, len, &v);
    check_verdict(&v, s, len);
    {
        char enh[16];                   /* a NUL-terminated string, as the API takes */
        size_t n = len < 15 ? len : 15;
        memcpy(enh, s, n);
        enh[n] = '\0';
        smtpkit_classify_parts(data[0] % 2 ? 550 : 0, data[0] % 3 ? enh : NULL, s, len, &v);
        check_verdict(&v, s, len);
    }
    return 0;
}
