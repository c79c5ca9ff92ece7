/* C unit test of the SMTP engine and the DATA encoder, run under valgrind by
 * `make ctest`: whole sessions against a scripted server (no socket), then
 * sessions freed in every state. No leak, no invalid access. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "session.h"

static int failures;
#define CHECK(c) do { if (!(c)) { \
    fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* --- a scripted server ---------------------------------------------------- */

struct server {
    int tls, in_data, rcpts, too_many_after;
    char pending[8192];
    size_t plen;
    char line[4096];
    size_t llen;
    char data_tail[8];
    unsigned messages, data_bytes;
    int saw_auth_secret_in_trace;
};

static void say(struct server *v, const char *s)
{
    size_t n = strlen(s);
    if (v->plen + n < sizeof v->pending) {
        memcpy(v->pending + v->plen, s, n);
        v->plen += n;
    }
}

static void command(struct server *v, const char *l)
{
    if (strncmp(l, "EHLO", 4) == 0)
        say(v, v->tls ? "250-x\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"
                        "250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                      : "250-x\r\n250-PIPELINING\r\n250 STARTTLS\r\n");
    else if (strcmp(l, "STARTTLS") == 0)
        say(v, "220 go\r\n");
    else if (strncmp(l, "AUTH PLAIN", 10) == 0)
        say(v, "235 ok\r\n");
    else if (strncmp(l, "MAIL", 4) == 0) {
        v->rcpts = 0;
        say(v, "250 ok\r\n");
    } else if (strncmp(l, "RCPT", 4) == 0) {
        v->rcpts++;
        if (v->too_many_after && v->rcpts > v->too_many_after)
            say(v, "452 4.5.3 too many recipients\r\n");
        else if (strstr(l, "bad@"))
            say(v, "550 5.1.1 no such user\r\n");
        else
            say(v, "250 ok\r\n");
    } else if (strcmp(l, "DATA") == 0) {
        say(v, "354 go\r\n");
        v->in_data = 1;
        memcpy(v->data_tail, "\r\n\0\0\0\0\0", 8);
    } else if (strcmp(l, "RSET") == 0)
        say(v, "250 ok\r\n");
    else if (strcmp(l, "QUIT") == 0)
        say(v, "221 bye\r\n");
    else
        say(v, "500 what\r\n");
}

static void server_write(struct server *v, const char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (v->in_data) {
            v->data_bytes++;
            memmove(v->data_tail, v->data_tail + 1, 4);
            v->data_tail[4] = c;
            if (memcmp(v->data_tail, "\r\n.\r\n", 5) == 0) {
                v->in_data = 0;
                v->messages++;
                say(v, "250 2.0.0 Ok: queued as Q");
                say(v, v->messages == 1 ? "1\r\n" : "2\r\n");
            }
            continue;
        }
        if (c == '\n' && v->llen > 0 && v->line[v->llen - 1] == '\r') {
            v->line[v->llen - 1] = '\0';
            command(v, v->line);
            v->llen = 0;
        } else if (v->llen < sizeof v->line - 1)
            v->line[v->llen++] = c;
    }
}

static int contains(const char *h, size_t n, const char *needle)
{
    size_t k = strlen(needle), i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(h + i, needle, k) == 0)
            return 1;
    return 0;
}

static void trace(void *ud, int dir, const char *line, size_t len)
{
    struct server *v = ud;
    (void)dir;
    /* base64 of "\0user\0secret" is AHVzZXIAc2VjcmV0 */
    if (len >= 8 && (contains(line, len, "secret") || contains(line, len, "AHVzZXIAc2VjcmV0")))
        v->saw_auth_secret_in_trace = 1;
}

/* Drives s until done/failed. body: given in chunks of chunk bytes. */
static smtpkit_want drive(smtpkit_session *s, struct server *v, const smtpkit_envelope *envs,
                          int nenv, const char *body, size_t chunk, int split)
{
    int job = 0, steps = 0;
    size_t bi = 0;
    unsigned pass = 0;
    for (;;) {
        smtpkit_want w = smtpkit_session_want(s);
        size_t n, used;
        const char *p;
        if (++steps > 1000000)
            return SMTPKIT_WANT_FAILED;
        switch (w) {
        case SMTPKIT_WANT_WRITE:
            p = smtpkit_session_output(s, &n);
            server_write(v, p, n);
            smtpkit_session_written(s, n);
            break;
        case SMTPKIT_WANT_READ:
            if (v->plen == 0) {
                smtpkit_session_eof(s);
                break;
            }
            if (split) {
                size_t i;
                for (i = 0; i < v->plen; i++)
                    smtpkit_session_receive(s, v->pending + i, 1);
            } else
                smtpkit_session_receive(s, v->pending, v->plen);
            v->plen = 0;
            break;
        case SMTPKIT_WANT_TLS:
            v->tls = 1;
            smtpkit_session_tls_done(s);
            break;
        case SMTPKIT_WANT_BODY:
            if (smtpkit_session_body_pass(s) != pass) {
                pass = smtpkit_session_body_pass(s);
                bi = 0;
            }
            if (bi == strlen(body))
                smtpkit_session_body_end(s);
            else {
                n = strlen(body) - bi < chunk ? strlen(body) - bi : chunk;
                if (smtpkit_session_body(s, body + bi, n, &used) == 0)
                    bi += used;
            }
            break;
        case SMTPKIT_WANT_READY:
            if (job > 0) {
                const smtpkit_result *r = smtpkit_session_result(s);
                CHECK(r && r->complete);
            }
            if (job == nenv)
                smtpkit_session_quit(s);
            else {
                CHECK(smtpkit_session_begin(s, &envs[job]) == 0);
                pass = 0;
                job++;
            }
            break;
        default:
            return w;
        }
    }
}

static void test_whole_session(int split)
{
    static struct server v;
    smtpkit_session_options o;
    smtpkit_session *s;
    char err[128];
    smtpkit_recipient rc[5] = {
        {"a@x", NULL, NULL}, {"bad@x", NULL, NULL}, {"c@x", NULL, NULL},
        {"d@x", NULL, NULL}, {"e@x", NULL, NULL}
    };
    smtpkit_envelope env[2];
    const smtpkit_result *r;
    char *body = malloc(300000);
    size_t i;

    for (i = 0; i + 1 < 300000; i++)
        body[i] = (i % 77 == 76) ? '\n' : (i % 77 == 0 ? '.' : 'x');
    body[300000 - 1] = '\0';
    memset(&v, 0, sizeof v);
    v.too_many_after = 3;
    say(&v, "220 hi\r\n");
    smtpkit_session_options_init(&o);
    o.helo_name = "client.example";
    o.username = "user";
    o.password = "secret";
    o.output_max = 8192;
    o.trace = trace;
    o.trace_ud = &v;
    s = smtpkit_session_new(&o, err, sizeof err);
    CHECK(s != NULL);
    memset(env, 0, sizeof env);
    env[0].from = "me@x";
    env[0].rcpt = rc;
    env[0].nrcpt = 5;
    env[0].size = 1000;
    env[1].from = "me@x";
    env[1].rcpt = rc;
    env[1].nrcpt = 1;
    env[1].size = -1;
    CHECK(drive(s, &v, env, 2, body, 4096, split) == SMTPKIT_WANT_DONE);
    CHECK(smtpkit_session_error(s) == NULL);
    CHECK(smtpkit_session_tls_active(s));
    CHECK(strcmp(smtpkit_session_auth_mechanism(s), "PLAIN") == 0);
    CHECK(!v.saw_auth_secret_in_trace);
    /* 5 recipients, 3 taken a pass, bad@ refused: passes 1 (a, c) and 2 (d, e) */
    CHECK(v.messages == 3);
    r = smtpkit_session_result(s);
    CHECK(r && r->ok && r->nrcpt == 1 && r->naccepted == 1);
    smtpkit_session_free(s);
    free(body);
}

static void test_free_everywhere(void)
{
    /* Feed a session a scripted stream up to byte k, then free it. */
    const char *script = "220 hi\r\n250-x\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n354 go\r\n";
    size_t k, n = strlen(script);
    for (k = 0; k <= n; k++) {
        smtpkit_session_options o;
        smtpkit_session *s;
        smtpkit_recipient rc = {"a@x", NULL, NULL};
        smtpkit_envelope env;
        size_t i, len;
        smtpkit_session_options_init(&o);
        o.tls = SMTPKIT_TLS_NONE;
        s = smtpkit_session_new(&o, NULL, 0);
        memset(&env, 0, sizeof env);
        env.from = "me@x";
        env.rcpt = &rc;
        env.nrcpt = 1;
        env.size = -1;
        for (i = 0; i < k; i++) {
            smtpkit_session_receive(s, script + i, 1);
            smtpkit_session_output(s, &len);
            smtpkit_session_written(s, len);
            if (smtpkit_session_want(s) == SMTPKIT_WANT_READY)
                smtpkit_session_begin(s, &env);
        }
        if (k % 2)
            smtpkit_session_eof(s);
        smtpkit_session_free(s);
    }
}

/* Overlap: each next message begun behind the previous end of data, as
 * net.c's batch does; stop_after > 0 frees the session after that many
 * steps, in whatever state (both transactions in flight included). */
static void run_overlap(int split, int stop_after, int eof_after)
{
    static struct server v;
    smtpkit_session_options o;
    smtpkit_session *s;
    smtpkit_recipient rc[3] = { {"a@x", NULL, NULL}, {"b@x", NULL, NULL}, {"c@x", NULL, NULL} };
    smtpkit_envelope env;
    const char *body = "Subject: x\r\n\r\n.dot\r\nbody\r\n";
    int begun = 0, reported = 0, steps = 0, body_given = 0, cur = -1, prev = -1;
    memset(&v, 0, sizeof v);
    say(&v, "220 hi\r\n");
    smtpkit_session_options_init(&o);
    o.tls = SMTPKIT_TLS_NONE;
    s = smtpkit_session_new(&o, NULL, 0);
    memset(&env, 0, sizeof env);
    env.from = "me@x";
    env.rcpt = rc;
    env.nrcpt = 3;
    env.size = -1;
    for (;;) {
        smtpkit_want w = smtpkit_session_want(s);
        size_t n, used;
        const char *p;
        if (stop_after && ++steps == stop_after)
            break;
        if (w == SMTPKIT_WANT_WRITE) {
            p = smtpkit_session_output(s, &n);
            server_write(&v, p, n);
            smtpkit_session_written(s, n);
        } else if (w == SMTPKIT_WANT_READ) {
            if (v.plen == 0 || (eof_after && (int)v.messages >= eof_after)) {
                smtpkit_session_eof(s);
                continue;
            }
            if (split) {
                size_t i;
                for (i = 0; i < v.plen; i++)
                    smtpkit_session_receive(s, v.pending + i, 1);
            } else
                smtpkit_session_receive(s, v.pending, v.plen);
            v.plen = 0;
        } else if (w == SMTPKIT_WANT_BODY) {
            if (body_given)
                smtpkit_session_body_end(s);
            else if (smtpkit_session_body(s, body, strlen(body), &used) == 0 && used == strlen(body))
                body_given = 1;
        } else if (w == SMTPKIT_WANT_READY) {
            const smtpkit_result *r = smtpkit_session_result(s);
            if (prev >= 0) {
                const smtpkit_result *pr = smtpkit_session_result_prev(s);
                CHECK(pr && pr->complete && pr->ok && pr->naccepted == 3);
                reported++;
                prev = -1;
            }
            if (cur >= 0 && r && r->complete) {
                CHECK(r->ok && r->naccepted == 3);
                reported++;
                cur = -1;
            }
            if (begun == 3) {
                if (cur >= 0)
                    smtpkit_session_overlap(s, 0);
                else
                    smtpkit_session_quit(s);
                continue;
            }
            smtpkit_session_overlap(s, 1);
            CHECK(smtpkit_session_begin(s, &env) == 0);
            if (smtpkit_session_result_prev(s))
                prev = cur;
            cur = begun++;
            body_given = 0;
            smtpkit_session_overlap(s, begun < 3);
        } else {
            if (stop_after == 0 && eof_after == 0) {
                CHECK(w == SMTPKIT_WANT_DONE);
                CHECK(reported == 3);
                CHECK(v.messages == 3);
            }
            if (eof_after) {
                const smtpkit_result *pr = smtpkit_session_result_prev(s);
                const smtpkit_result *r = smtpkit_session_result(s);
                CHECK(w == SMTPKIT_WANT_FAILED);
                CHECK(pr && pr->complete && pr->maybe_delivered);
                CHECK(r && r->complete && !r->ok && !r->maybe_delivered);
            }
            break;
        }
    }
    smtpkit_session_free(s);
}

static void test_overlap(void)
{
    int k;
    run_overlap(0, 0, 0);
    run_overlap(1, 0, 0);
    run_overlap(0, 0, 1);
    for (k = 1; k < 60; k++)
        run_overlap(k % 2, k, 0);
}

static void test_data(void)
{
    size_t n;
    char *out = smtpkit_data_encode_all("a\n.b\r.\r\n", 8, 0, 1, &n);
    CHECK(out && n == strlen("a\r\n..b\r\n..\r\n.\r\n")
          && memcmp(out, "a\r\n..b\r\n..\r\n.\r\n", n) == 0);
    free(out);
    {
        char big[1200];
        memset(big, 'x', sizeof big);
        CHECK(smtpkit_data_encode_all(big, sizeof big, 0, 1, &n) == NULL && n == 0);
        out = smtpkit_data_encode_all(big, sizeof big, 1, 1, &n);
        CHECK(out && n == sizeof big + 5);
        free(out);
    }
}

static void test_validation(void)
{
    char err[128];
    smtpkit_session_options o;
    smtpkit_session_options_init(&o);
    o.helo_name = "bad\r\nname";
    CHECK(smtpkit_session_new(&o, err, sizeof err) == NULL && err[0]);
    o.helo_name = NULL;
    o.username = "u";
    CHECK(smtpkit_session_new(&o, err, sizeof err) == NULL);
}

int main(void)
{
    test_whole_session(0);
    test_whole_session(1);
    test_free_everywhere();
    test_overlap();
    test_data();
    test_validation();
    if (failures)
        return 1;
    puts("test_session: ok");
    return 0;
}
