/* libFuzzer target: random server bytes to an SMTP session, from the
 * greeting or from the middle of a transaction. The first byte picks the
 * options and the starting point; the rest is what the server sends, cut
 * into reads by '\x01' bytes, with the engine's wants obeyed in between,
 * and messages begun behind the previous end of data (overlap) at times;
 * some sessions resume a pooled connection instead of being greeted.
 * No crash, no leak, output never larger than the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(smtpkit_session *s)
{
    size_t n;
    smtpkit_session_output(s, &n);
    if (n > SMTPKIT_SESSION_OUTPUT_MIN)
        abort();   /* bounded output */
    smtpkit_session_written(s, n);
}

static void feed(smtpkit_session *s, const char *str)
{
    smtpkit_session_receive(s, str, strlen(str));
}

static void trace(void *ud, int dir, const char *line, size_t len)
{
    (void)ud;
    (void)dir;
    if (len && (line[0] == '\0' && line[len - 1] == '\0'))
        abort();   /* touch the bytes so ASan checks them */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smtpkit_session_options o;
    smtpkit_session *s;
    smtpkit_recipient rc[3] = {
        {"a@x", "SUCCESS", "a@x"}, {"b@x", NULL, NULL}, {"c@x", NULL, NULL}
    };
    smtpkit_envelope env;
    smtpkit_caps resume;
    unsigned mode;
    size_t i = 0, start;
    int steps = 0;

    if (size < 1)
        return 0;
    mode = data[0];
    data++;
    size--;
    smtpkit_session_options_init(&o);
    o.tls = (smtpkit_tls_policy)(mode & 3);
    o.pipelining = (mode >> 2) & 1;
    o.output_max = SMTPKIT_SESSION_OUTPUT_MIN;
    o.pipeline_window = 256;
    if (mode & 8) {
        o.username = "user";
        o.password = "pw";
        o.allow_plaintext_auth = 1;
    }
    if (mode & 16)
        o.xoauth2_token = o.username ? "tok" : NULL;
    o.trace = trace;
    if (size % 4 == 3) {
        /* a resumed (pooled) connection: ready at once, RSET with the first MAIL */
        memset(&resume, 0, sizeof resume);
        resume.flags = SMTPKIT_CAP_ESMTP | ((mode & 32) ? SMTPKIT_CAP_PIPELINING : 0);
        o.resume = &resume;
    }
    s = smtpkit_session_new(&o, NULL, 0);
    if (!s)
        return 0;
    memset(&env, 0, sizeof env);
    env.from = "me@x";
    env.rcpt = rc;
    env.nrcpt = 1 + (mode >> 5) % 3;
    env.size = 100;

    if (mode & 128) {
        /* Reach the middle of a transaction with sane replies first. */
        if (smtpkit_session_want(s) == SMTPKIT_WANT_TLS)
            smtpkit_session_tls_done(s);
        feed(s, "220 hi\r\n");
        drain(s);
        feed(s, "250-x\r\n250-PIPELINING\r\n250-DSN\r\n250-STARTTLS\r\n"
                "250 AUTH PLAIN LOGIN XOAUTH2 CRAM-MD5\r\n");
        drain(s);
        if (smtpkit_session_want(s) == SMTPKIT_WANT_TLS) {
            smtpkit_session_tls_done(s);
            drain(s);
            feed(s, "250-x\r\n250-PIPELINING\r\n250-DSN\r\n"
                    "250 AUTH PLAIN LOGIN XOAUTH2 CRAM-MD5\r\n");
        }
        drain(s);
        if (smtpkit_session_want(s) == SMTPKIT_WANT_READY)
            smtpkit_session_begin(s, &env);
    }
    while (i <= size && ++steps < 100000) {
        smtpkit_want w = smtpkit_session_want(s);
        size_t used;
        switch (w) {
        case SMTPKIT_WANT_WRITE:
            drain(s);
            break;
        case SMTPKIT_WANT_READ:
            if (i == size) {
                if (mode & 64)
                    smtpkit_session_timeout(s);
                else
                    smtpkit_session_eof(s);
                i++;
                break;
            }
            start = i;
            while (i < size && data[i] != 1)
                i++;
            smtpkit_session_receive(s, (const char *)data + start, i - start);
            if (i < size)
                i++;
            break;
        case SMTPKIT_WANT_TLS:
            smtpkit_session_tls_done(s);
            break;
        case SMTPKIT_WANT_BODY:
            if (smtpkit_session_body(s, "line\n.dot\r\nx", 12, &used) == 0 && (steps & 3) == 0)
                smtpkit_session_body_end(s);
            break;
        case SMTPKIT_WANT_READY: {
            /* overlap now and then: the next message behind the end of data */
            const smtpkit_result *pr;
            smtpkit_session_overlap(s, (steps & 24) != 0);
            if (smtpkit_session_begin(s, &env) < 0 || (steps & 7) == 7) {
                smtpkit_session_overlap(s, 0);
                smtpkit_session_quit(s);
            }
            pr = smtpkit_session_result_prev(s);
            if (pr && pr->nrcpt > 3)
                abort();
            break;
        }
        default:
            i = size + 1;
            break;
        }
    }
    {
        const smtpkit_result *r = smtpkit_session_result(s);
        const smtpkit_error *e = smtpkit_session_error(s);
        if (r && r->nrcpt > 3)
            abort();
        if (e && strlen(e->message) >= sizeof e->message)
            abort();
    }
    smtpkit_session_free(s);
    return 0;
}
