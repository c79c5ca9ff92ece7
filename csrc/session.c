/*
 * session.c - the SMTP client engine (see session.h). A state machine fed by
 * the transport; it keeps a ring of the commands sent and not yet answered,
 * and matches each reply the embedded parser completes to the ring's head.
 */
#include "session.h"
#include "data.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_SIZE 1024          /* > SMTPKIT_SESSION_MAX_RCPT + a few */
#define CMD_MAX 1400            /* one command line, CRLF included */
#define AUTH_LINE_MAX 12288     /* an AUTH line, CRLF included (RFC 4954 section 4) */
#define REDACTED "[redacted]"

enum cmd {
    C_GREETING, C_EHLO, C_HELO, C_STARTTLS, C_AUTH, C_MAIL, C_RCPT, C_DATA,
    C_DOT, C_DOT_EMPTY, C_RSET, C_QUIT,
    C_DOT_PREV,   /* the end of data of the previous transaction (overlap) */
    C_RSET_FIRST  /* a resumed connection's RSET, before its first MAIL */
};

enum stage {
    ST_IMPLICIT_TLS, ST_GREETING, ST_EHLO, ST_STARTTLS, ST_TLS, ST_AUTH, ST_READY,
    ST_TXN, ST_BODY, ST_DOT, ST_RSET, ST_QUIT, ST_DONE, ST_FAILED
};

enum rstate { R_TODO, R_SENT, R_ACCEPTED, R_OK, R_FAIL, R_NEXT };

enum mech { M_NONE, M_PLAIN, M_LOGIN, M_XOAUTH2, M_CRAM_MD5 };

struct pend {
    unsigned char cmd;
    unsigned idx;
    unsigned len;
};

struct rcpt {
    const char *addr, *notify, *orcpt;
    unsigned char st;
};

struct txn {
    int active;
    char *arena;
    const char *from;
    const char *ret, *envid;
    struct rcpt *r;
    smtpkit_rcpt_result *res;
    size_t n;
    long long size;
    int body_8bit, pass_long, smtputf8;
    int check_7bit;          /* no BODY=8BITMIME: an 8-bit body octet fails */
    /* the current pass (one SMTP transaction) */
    unsigned pass;
    int mail_state;          /* 0 unsent, 1 sent, 2 accepted, 3 refused */
    int data_state;          /* 0 unsent, 1 sent, 2 body, 3 refused, 4 empty dot sent, 5 done */
    size_t next;             /* next recipient index to look at for RCPT */
    size_t sent, replied, accepted;
    int stop_rcpt;           /* too many recipients: send no more RCPT this pass */
    int have_fail;           /* fail_reply holds MAIL/DATA/dot refusal (or a 421) */
    int pass_failed;         /* ... and it came in the current pass */
    smtpkit_session_reply fail_reply;
    smtpkit_verdict fail_verdict;
    int have_ok;
    int final_pass;          /* end of data sent and no recipient waits for
                              * another pass: its reply ends the transaction */
};

struct smtpkit_session {
    enum stage stage;
    smtpkit_session_options o;
    char *helo, *user, *pass, *token, *mechname;
    size_t window, unanswered;

    char *out;
    size_t out_cap, out_head, out_len;
    int body_blocked;

    struct pend ring[RING_SIZE];
    unsigned ring_head, ring_count;

    smtpkit_reply_parser parser;
    smtpkit_caps caps;
    int tls_active;
    int pipe;                /* pipelining in use for this EHLO */
    int did_starttls;
    enum mech mech;
    int auth_step;
    int authed;

    smtpkit_data_encoder enc;
    unsigned body_pass;

    struct txn t;
    smtpkit_result result;
    int have_result;
    /* Overlap (smtpkit_session_overlap): the current transaction was begun
     * while the previous one awaited its end-of-data reply; that one lives
     * here until the next begin. */
    int overlap;
    int have_prev;
    struct txn pt;
    smtpkit_result presult;

    int has_error;
    smtpkit_error err;
    smtpkit_phase failed_phase;   /* the phase the session failed in */
    int answering;                /* while a reply is handled: the phase of the
                                   * command it answers; else -1 */
    int failed_in_txn;            /* the failure came while a transaction was open */
    int failed_behind;            /* ... begun behind the previous one's end of data,
                                   * whose reply had not come */
    int rset_first;               /* resumed: the first transaction begins with RSET */
};

/* --- names and defaults -------------------------------------------------- */

static const char *const want_names[] = {
    "write", "read", "tls", "body", "ready", "done", "failed"
};
static const char *const phase_names[] = {
    "connect", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data",
    "data_block", "dot", "quit"
};
static const int phase_timeouts[] = { 30, 300, 300, 300, 300, 300, 300, 120, 180, 600, 60 };
static const char *const kind_names[] = {
    "", "dns", "connect", "timeout", "tls", "tls_required", "protocol", "auth",
    "validation", "server"
};

const char *smtpkit_want_name(smtpkit_want w)
{
    return (unsigned)w <= SMTPKIT_WANT_FAILED ? want_names[w] : NULL;
}

const char *smtpkit_phase_name(smtpkit_phase p)
{
    return (unsigned)p < SMTPKIT_PHASE_COUNT ? phase_names[p] : NULL;
}

int smtpkit_phase_timeout(smtpkit_phase p)
{
    return (unsigned)p < SMTPKIT_PHASE_COUNT ? phase_timeouts[p] : 300;
}

const char *smtpkit_error_kind_name(smtpkit_error_kind k)
{
    return (unsigned)k < SMTPKIT_ERR_COUNT ? kind_names[k] : "";
}

void smtpkit_session_options_init(smtpkit_session_options *o)
{
    memset(o, 0, sizeof *o);
    o->tls = SMTPKIT_TLS_STARTTLS;
    o->pipelining = 1;
}

/* --- small helpers ------------------------------------------------------- */

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t i, blen = strlen(b);
    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z')
            x = (char)(x - 32);
        if (y >= 'a' && y <= 'z')
            y = (char)(y - 32);
        if (x != y)
            return 0;
    }
    return 1;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* out needs 4 * ((n + 2) / 3) + 1 bytes; returns the length written. */
static size_t b64(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
        out[o++] = b64chars[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static char *dupstr(const char *s)
{
    size_t n;
    char *d;
    if (!s)
        return NULL;
    n = strlen(s);
    d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static void wipe_free(char *s)
{
    if (s) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
        free(s);
    }
}

static void trace(smtpkit_session *s, int dir, const char *line, size_t len)
{
    if (s->o.trace)
        s->o.trace(s->o.trace_ud, dir, line, len);
}

static void trace_info(smtpkit_session *s, const char *fmt, ...)
{
    char buf[200];
    int n;
    va_list ap;
    if (!s->o.trace)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    trace(s, SMTPKIT_TRACE_INFO, buf, (size_t)n);
}

/* --- replies kept in results --------------------------------------------- */

static void keep_reply(smtpkit_session_reply *dst, smtpkit_verdict *v, const smtpkit_reply *r)
{
    size_t n = r->text_len, i;
    smtpkit_verdict tmp;

    smtpkit_classify_reply(r, &tmp);
    dst->code = r->code;
    memcpy(dst->enhanced, r->enhanced, sizeof dst->enhanced);
    if (n > SMTPKIT_SESSION_REPLY_TEXT - 1)
        n = SMTPKIT_SESSION_REPLY_TEXT - 1;
    memcpy(dst->text, r->text, n);
    dst->text[n] = '\0';
    dst->text_len = n;
    dst->nlines = r->nlines ? 1 : 0;
    for (i = 0; i < n; i++)
        if (dst->text[i] == '\n')
            dst->nlines++;
    if (v) {
        *v = tmp;
        if (tmp.text && tmp.text >= r->text && tmp.text <= r->text + r->text_len) {
            size_t off = (size_t)(tmp.text - r->text);
            if (off > n)
                off = n;
            v->text = dst->text + off;
            if (v->text_len > n - off)
                v->text_len = n - off;
        } else {
            v->text = dst->text;
            v->text_len = n;
        }
    }
}

static void copy_kept(smtpkit_session_reply *dst, smtpkit_verdict *dv,
                      const smtpkit_session_reply *src, const smtpkit_verdict *sv)
{
    *dst = *src;
    if (dv) {
        *dv = *sv;
        if (sv->text && sv->text >= src->text && sv->text <= src->text + src->text_len)
            dv->text = dst->text + (sv->text - src->text);
        else {
            dv->text = dst->text;
            dv->text_len = dst->text_len;
        }
    }
}

void smtpkit_session_reply_expand(const smtpkit_session_reply *in, smtpkit_reply *out)
{
    size_t i, start = 0;
    out->code = in->code;
    memcpy(out->enhanced, in->enhanced, sizeof out->enhanced);
    out->nlines = 0;
    memcpy(out->text, in->text, in->text_len);
    out->text[in->text_len] = '\0';
    out->text_len = in->text_len;
    if (in->code == 0)
        return;
    for (i = 0; i <= in->text_len && out->nlines < SMTPKIT_REPLY_MAX_LINES; i++) {
        if (i == in->text_len || in->text[i] == '\n') {
            out->line_off[out->nlines] = (unsigned)start;
            out->line_len[out->nlines] = (unsigned)(i - start);
            out->nlines++;
            start = i + 1;
        }
    }
}

/* A verdict for "no reply came" (network, protocol, validation). */
static void synth_verdict(smtpkit_verdict *v, smtpkit_outcome o, smtpkit_reason r,
                          smtpkit_action a, int retry, const char *why)
{
    memset(v, 0, sizeof *v);
    v->text = "";
    v->outcome = o;
    v->reason = r;
    v->action = a;
    v->retry = retry;
    v->explanation = why;
}

/* --- output -------------------------------------------------------------- */

static size_t pending(const smtpkit_session *s)
{
    return s->out_len - s->out_head;
}

static void compact(smtpkit_session *s)
{
    if (s->out_head > 0) {
        memmove(s->out, s->out + s->out_head, s->out_len - s->out_head);
        s->out_len -= s->out_head;
        s->out_head = 0;
    }
}

static int append(smtpkit_session *s, const char *p, size_t n)
{
    if (s->out_len + n > s->out_cap)
        compact(s);
    if (s->out_len + n > s->out_cap)
        return -1;
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
    return 0;
}

/* --- failure ------------------------------------------------------------- */

struct txn;
static void finish(smtpkit_session *s, struct txn *t, smtpkit_result *res, int lost_at_dot);
static void finish_txn(smtpkit_session *s);

static void set_error(smtpkit_session *s, smtpkit_error_kind kind, const smtpkit_reply *r,
                      const char *fmt, va_list ap)
{
    s->has_error = 1;
    s->err.kind = kind;
    vsnprintf(s->err.message, sizeof s->err.message, fmt, ap);
    if (r)
        keep_reply(&s->err.reply, &s->err.verdict, r);
    else {
        memset(&s->err.reply, 0, sizeof s->err.reply);
        synth_verdict(&s->err.verdict, SMTPKIT_OUTCOME_UNKNOWN, SMTPKIT_REASON_UNKNOWN,
                      SMTPKIT_ACTION_NONE, 0, "");
    }
}

/* A caller's mistake or bad input: the session stays as it is. */
static int soft_error(smtpkit_session *s, smtpkit_error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(s, kind, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

/* The session is over. r: the reply that caused it (or NULL). quit: the
 * connection is still in step, say QUIT politely. */
static int fail(smtpkit_session *s, smtpkit_error_kind kind, const smtpkit_reply *r,
                int quit, const char *fmt, ...)
{
    va_list ap;
    if (s->stage == ST_FAILED)
        return -1;
    s->failed_phase = s->answering >= 0 ? (smtpkit_phase)s->answering : smtpkit_session_phase(s);
    va_start(ap, fmt);
    set_error(s, kind, r, fmt, ap);
    va_end(ap);
    s->failed_in_txn = s->t.active;
    s->failed_behind = s->t.active && s->pt.active;
    s->out_head = s->out_len = 0;
    s->ring_count = 0;
    s->body_blocked = 0;
    if (quit) {
        append(s, "QUIT\r\n", 6);
        trace(s, SMTPKIT_TRACE_SEND, "QUIT", 4);
    }
    if (s->pt.active)
        finish(s, &s->pt, &s->presult, 1);
    if (s->t.active)
        finish_txn(s);
    s->stage = ST_FAILED;
    return -1;
}

/* First line of a reply, for messages: "554 5.7.1 go away". */
static const char *first_line(const smtpkit_reply *r, char *buf, size_t size)
{
    unsigned len = r->nlines ? r->line_len[0] : 0;
    if (len > 200)
        len = 200;
    snprintf(buf, size, "%d %.*s", r->code, (int)len, r->text);
    return buf;
}

/* --- sending commands ---------------------------------------------------- */

/* Sends one command line (line without CRLF) and expects a reply. shown: what
 * the trace shows instead of line (NULL: the line itself). */
static int send_cmd(smtpkit_session *s, enum cmd c, unsigned idx, const char *line,
                    size_t len, const char *shown)
{
    struct pend *p;
    if (s->ring_count >= RING_SIZE || len + 2 > (c == C_AUTH ? AUTH_LINE_MAX : CMD_MAX))
        return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0, "internal: command queue full");
    if (s->out_len + len + 2 > s->out_cap)
        compact(s);
    if (s->out_len + len + 2 > s->out_cap)
        return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0, "internal: output buffer full");
    memcpy(s->out + s->out_len, line, len);
    s->out[s->out_len + len] = '\r';
    s->out[s->out_len + len + 1] = '\n';
    s->out_len += len + 2;
    p = &s->ring[(s->ring_head + s->ring_count) % RING_SIZE];
    p->cmd = (unsigned char)c;
    p->idx = idx;
    p->len = (unsigned)(len + 2);
    s->ring_count++;
    s->unanswered += len + 2;
    if (shown)
        trace(s, SMTPKIT_TRACE_SEND, shown, strlen(shown));
    else
        trace(s, SMTPKIT_TRACE_SEND, line, len);
    return 0;
}

static int send_str(smtpkit_session *s, enum cmd c, const char *line)
{
    return send_cmd(s, c, 0, line, strlen(line), NULL);
}

static void expect(smtpkit_session *s, enum cmd c)
{
    struct pend *p = &s->ring[(s->ring_head + s->ring_count) % RING_SIZE];
    p->cmd = (unsigned char)c;
    p->idx = 0;
    p->len = 0;
    s->ring_count++;
}

static int send_ehlo(smtpkit_session *s, int helo)
{
    char line[SMTPKIT_SESSION_MAX_HELO + 8];
    int n = snprintf(line, sizeof line, "%s %s", helo ? "HELO" : "EHLO", s->helo);
    s->stage = ST_EHLO;
    return send_cmd(s, helo ? C_HELO : C_EHLO, 0, line, (size_t)n, NULL);
}

/* --- session creation ---------------------------------------------------- */

static int bad_token(const char *v, size_t max)
{
    size_t i, n = strlen(v);
    if (n == 0 || n > max)
        return 1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == 0x7f)
            return 1;
    }
    return 0;
}

static int bad_cred(const char *v)
{
    return v && (strlen(v) > SMTPKIT_SESSION_MAX_CRED || strpbrk(v, "\r\n"));
}

smtpkit_session *smtpkit_session_new(const smtpkit_session_options *o,
                                     char *err, size_t errlen)
{
    smtpkit_session *s;
    smtpkit_session_options def;
    const char *helo;
    const char *why = NULL;

    if (!o) {
        smtpkit_session_options_init(&def);
        o = &def;
    }
    helo = o->helo_name ? o->helo_name : "localhost";
    if (bad_token(helo, SMTPKIT_SESSION_MAX_HELO))
        why = "helo name must be 1 to 255 octets without spaces, CR, LF or control bytes";
    else if ((unsigned)o->tls > SMTPKIT_TLS_NONE)
        why = "tls policy must be starttls, opportunistic, implicit or none";
    else if (bad_cred(o->username) || bad_cred(o->password) || bad_cred(o->xoauth2_token))
        why = "username, password and token must be at most 4096 octets, without CR or LF";
    else if ((o->password || o->xoauth2_token) && !o->username)
        why = "a password or token needs a username";
    else if (o->username && !o->password && !o->xoauth2_token)
        why = "a username needs a password or an xoauth2 token";
    else if (o->auth_mechanism && !ieq(o->auth_mechanism, strlen(o->auth_mechanism), "PLAIN")
             && !ieq(o->auth_mechanism, strlen(o->auth_mechanism), "LOGIN")
             && !ieq(o->auth_mechanism, strlen(o->auth_mechanism), "XOAUTH2")
             && !ieq(o->auth_mechanism, strlen(o->auth_mechanism), "CRAM-MD5"))
        why = "auth mechanism must be PLAIN, LOGIN, CRAM-MD5 or XOAUTH2";
    else if ((o->username && strchr(o->username, '\001'))
             || (o->xoauth2_token && strchr(o->xoauth2_token, '\001')))
        why = "username and token must not contain ^A (XOAUTH2 separator)";
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (s)
        s->answering = -1;
    if (!s)
        goto oom;
    s->o = *o;
    s->o.helo_name = s->o.username = s->o.password = s->o.xoauth2_token = NULL;
    s->o.auth_mechanism = NULL;
    s->helo = dupstr(helo);
    s->user = dupstr(o->username);
    s->pass = dupstr(o->password);
    s->token = dupstr(o->xoauth2_token);
    s->mechname = dupstr(o->auth_mechanism);
    s->out_cap = o->output_max ? o->output_max : SMTPKIT_SESSION_OUTPUT_DEFAULT;
    if (s->out_cap < SMTPKIT_SESSION_OUTPUT_MIN)
        s->out_cap = SMTPKIT_SESSION_OUTPUT_MIN;
    s->window = o->pipeline_window ? o->pipeline_window : SMTPKIT_SESSION_WINDOW_DEFAULT;
    if (s->window > s->out_cap / 2)
        s->window = s->out_cap / 2;
    s->out = malloc(s->out_cap);
    if (!s->helo || !s->out || (o->username && !s->user) || (o->password && !s->pass)
        || (o->xoauth2_token && !s->token) || (o->auth_mechanism && !s->mechname)) {
        smtpkit_session_free(s);
        goto oom;
    }
    smtpkit_reply_parser_init(&s->parser);
    if (o->resume) {
        /* a connection past EHLO (and AUTH), idle between transactions */
        s->tls_active = o->tls_active || o->tls == SMTPKIT_TLS_IMPLICIT;
        s->caps = *o->resume;
        s->pipe = o->pipelining && (s->caps.flags & SMTPKIT_CAP_PIPELINING);
        s->rset_first = 1;
        s->stage = ST_READY;
        s->o.resume = NULL;
    } else if (o->tls == SMTPKIT_TLS_IMPLICIT && !o->tls_active)
        s->stage = ST_IMPLICIT_TLS;
    else {
        s->tls_active = o->tls_active || o->tls == SMTPKIT_TLS_IMPLICIT;
        s->stage = ST_GREETING;
        expect(s, C_GREETING);
    }
    return s;
oom:
    if (err && errlen)
        snprintf(err, errlen, "out of memory");
    return NULL;
}

static void free_txn(struct txn *t)
{
    free(t->arena);
    free(t->r);
    free(t->res);
    memset(t, 0, sizeof *t);
}

void smtpkit_session_free(smtpkit_session *s)
{
    if (!s)
        return;
    free(s->helo);
    wipe_free(s->user);
    wipe_free(s->pass);
    wipe_free(s->token);
    free(s->mechname);
    if (s->out) {
        memset(s->out, 0, s->out_cap);   /* it held AUTH lines */
        free(s->out);
    }
    free_txn(&s->t);
    free_txn(&s->pt);
    free(s);
}

/* --- queries ------------------------------------------------------------- */

/* Overlap: the transaction awaits only its end-of-data reply, which will
 * end it; the next one may begin behind it. */
static int overlap_ok(const smtpkit_session *s)
{
    return s->overlap && s->pipe && s->stage == ST_DOT && s->ring_count == 1
           && s->t.final_pass;
}

/* ... once the output has room for a whole pipelined group after the end of
 * data (MAIL, the window's RCPTs, DATA): else it is written first. */
static int overlap_room(const smtpkit_session *s)
{
    return s->out_cap - pending(s) >= s->window + 2 * CMD_MAX + 8;
}

/* The end of data of a transaction is awaited (the current one's, or the
 * previous one's behind which the current one began). */
static int awaiting_dot(const smtpkit_session *s)
{
    return s->stage == ST_DOT
           || (s->ring_count && s->ring[s->ring_head].cmd == C_DOT_PREV);
}

smtpkit_want smtpkit_session_want(const smtpkit_session *s)
{
    switch (s->stage) {
    case ST_FAILED:
        return pending(s) ? SMTPKIT_WANT_WRITE : SMTPKIT_WANT_FAILED;
    case ST_DONE:
        return SMTPKIT_WANT_DONE;
    case ST_IMPLICIT_TLS:
    case ST_TLS:
        return pending(s) ? SMTPKIT_WANT_WRITE : SMTPKIT_WANT_TLS;
    case ST_BODY:
        return s->body_blocked && pending(s) ? SMTPKIT_WANT_WRITE : SMTPKIT_WANT_BODY;
    case ST_DOT:
        if (overlap_ok(s))
            return overlap_room(s) ? SMTPKIT_WANT_READY : SMTPKIT_WANT_WRITE;
        break;
    default:
        break;
    }
    if (pending(s))
        return SMTPKIT_WANT_WRITE;
    if (s->ring_count)
        return SMTPKIT_WANT_READ;
    if (s->stage == ST_READY)
        return SMTPKIT_WANT_READY;
    if (s->stage == ST_QUIT)
        return SMTPKIT_WANT_DONE;
    return SMTPKIT_WANT_READ;   /* not reached: every other stage awaits a reply */
}

/* The phase in which a command waits for its reply. */
static smtpkit_phase cmd_phase(enum cmd c)
{
    switch (c) {
    case C_GREETING: return SMTPKIT_PHASE_GREETING;
    case C_EHLO: case C_HELO: return SMTPKIT_PHASE_EHLO;
    case C_STARTTLS: return SMTPKIT_PHASE_STARTTLS;
    case C_AUTH: return SMTPKIT_PHASE_AUTH;
    case C_MAIL: case C_RSET: case C_RSET_FIRST: return SMTPKIT_PHASE_MAIL;
    case C_RCPT: return SMTPKIT_PHASE_RCPT;
    case C_DATA: return SMTPKIT_PHASE_DATA;
    case C_DOT: case C_DOT_EMPTY: case C_DOT_PREV: return SMTPKIT_PHASE_DOT;
    case C_QUIT: return SMTPKIT_PHASE_QUIT;
    }
    return SMTPKIT_PHASE_MAIL;
}

smtpkit_phase smtpkit_session_phase(const smtpkit_session *s)
{
    if (s->stage == ST_FAILED)
        return s->failed_phase;
    if (s->ring_count)
        return cmd_phase((enum cmd)s->ring[s->ring_head].cmd);
    switch (s->stage) {
    case ST_IMPLICIT_TLS: return SMTPKIT_PHASE_CONNECT;
    case ST_GREETING: return SMTPKIT_PHASE_GREETING;
    case ST_EHLO: return SMTPKIT_PHASE_EHLO;
    case ST_STARTTLS: case ST_TLS: return SMTPKIT_PHASE_STARTTLS;
    case ST_AUTH: return SMTPKIT_PHASE_AUTH;
    case ST_BODY: return SMTPKIT_PHASE_DATA_BLOCK;
    case ST_DOT: return SMTPKIT_PHASE_DOT;
    case ST_QUIT: case ST_DONE: return SMTPKIT_PHASE_QUIT;
    default: return SMTPKIT_PHASE_MAIL;
    }
}

int smtpkit_session_resendable(const smtpkit_session *s)
{
    if (s->stage != ST_FAILED)
        return 0;
    if (s->failed_phase != SMTPKIT_PHASE_MAIL && !s->failed_behind)
        return 0;
    if (s->err.kind != SMTPKIT_ERR_CONNECT && s->err.kind != SMTPKIT_ERR_SERVER)
        return 0;
    if (s->failed_behind)
        return 1;   /* replies come in order: nothing of it was answered */
    if (!s->failed_in_txn)
        return 1;   /* idle, or checked with RSET: no message was begun */
    /* MAIL of the first pass not answered, or answered 421 (dispatch does
     * not give a 421 to on_mail, so mail_state stays "sent") */
    return s->t.pass == 1 && s->t.mail_state <= 1 && !s->result.maybe_delivered;
}

const char *smtpkit_session_output(const smtpkit_session *s, size_t *len)
{
    *len = pending(s);
    return *len ? s->out + s->out_head : NULL;
}

void smtpkit_session_written(smtpkit_session *s, size_t n)
{
    if (n > pending(s))
        n = pending(s);
    s->out_head += n;
    if (s->out_head == s->out_len) {
        s->out_head = s->out_len = 0;
        s->body_blocked = 0;
    }
}

const smtpkit_caps *smtpkit_session_caps(const smtpkit_session *s)
{
    return &s->caps;
}

int smtpkit_session_tls_active(const smtpkit_session *s)
{
    return s->tls_active;
}

const char *smtpkit_session_auth_mechanism(const smtpkit_session *s)
{
    if (!s->authed)
        return NULL;
    switch (s->mech) {
    case M_PLAIN: return "PLAIN";
    case M_LOGIN: return "LOGIN";
    case M_XOAUTH2: return "XOAUTH2";
    case M_CRAM_MD5: return "CRAM-MD5";
    default: return NULL;
    }
}

const smtpkit_result *smtpkit_session_result(const smtpkit_session *s)
{
    return s->have_result ? &s->result : NULL;
}

const smtpkit_result *smtpkit_session_result_prev(const smtpkit_session *s)
{
    return s->have_prev ? &s->presult : NULL;
}

void smtpkit_session_overlap(smtpkit_session *s, int on)
{
    s->overlap = on != 0;
}

const smtpkit_error *smtpkit_session_error(const smtpkit_session *s)
{
    return s->has_error ? &s->err : NULL;
}

unsigned smtpkit_session_body_pass(const smtpkit_session *s)
{
    return s->body_pass;
}

/* --- capabilities -------------------------------------------------------- */

static void parse_caps(smtpkit_session *s, const smtpkit_reply *r)
{
    unsigned i;
    memset(&s->caps, 0, sizeof s->caps);
    s->caps.flags = SMTPKIT_CAP_ESMTP;
    for (i = 1; i < r->nlines; i++) {
        const char *l = r->text + r->line_off[i];
        size_t n = r->line_len[i], k = 0, p;
        while (k < n && l[k] != ' ' && l[k] != '=')
            k++;
        if (ieq(l, k, "PIPELINING"))
            s->caps.flags |= SMTPKIT_CAP_PIPELINING;
        else if (ieq(l, k, "8BITMIME"))
            s->caps.flags |= SMTPKIT_CAP_8BITMIME;
        else if (ieq(l, k, "SMTPUTF8"))
            s->caps.flags |= SMTPKIT_CAP_SMTPUTF8;
        else if (ieq(l, k, "STARTTLS"))
            s->caps.flags |= SMTPKIT_CAP_STARTTLS;
        else if (ieq(l, k, "ENHANCEDSTATUSCODES"))
            s->caps.flags |= SMTPKIT_CAP_ENHANCED;
        else if (ieq(l, k, "DSN"))
            s->caps.flags |= SMTPKIT_CAP_DSN;
        else if (ieq(l, k, "CHUNKING"))
            s->caps.flags |= SMTPKIT_CAP_CHUNKING;
        else if (ieq(l, k, "SIZE")) {
            unsigned long long v = 0;
            s->caps.flags |= SMTPKIT_CAP_SIZE;
            for (p = k + 1; p < n && l[p] >= '0' && l[p] <= '9'; p++)
                if (v < 1000000000000000ULL)
                    v = v * 10 + (unsigned)(l[p] - '0');
            s->caps.size_max = v;
        } else if (ieq(l, k, "AUTH")) {
            s->caps.flags |= SMTPKIT_CAP_AUTH;
            p = k;
            while (p < n) {
                size_t b;
                while (p < n && (l[p] == ' ' || l[p] == '='))
                    p++;
                b = p;
                while (p < n && l[p] != ' ')
                    p++;
                if (ieq(l + b, p - b, "PLAIN"))
                    s->caps.auth |= SMTPKIT_AUTH_PLAIN;
                else if (ieq(l + b, p - b, "LOGIN"))
                    s->caps.auth |= SMTPKIT_AUTH_LOGIN;
                else if (ieq(l + b, p - b, "XOAUTH2"))
                    s->caps.auth |= SMTPKIT_AUTH_XOAUTH2;
                else if (ieq(l + b, p - b, "CRAM-MD5"))
                    s->caps.auth |= SMTPKIT_AUTH_CRAM_MD5;
                else if (ieq(l + b, p - b, "OAUTHBEARER"))
                    s->caps.auth |= SMTPKIT_AUTH_OAUTHBEARER;
            }
        }
    }
    s->pipe = s->o.pipelining && (s->caps.flags & SMTPKIT_CAP_PIPELINING);
}

/* --- after EHLO: STARTTLS, AUTH, ready ------------------------------------ */

static int auth_start(smtpkit_session *s);

static int after_ehlo(smtpkit_session *s, const smtpkit_reply *r)
{
    int want_tls = s->o.tls == SMTPKIT_TLS_STARTTLS || s->o.tls == SMTPKIT_TLS_OPPORTUNISTIC;
    if (!s->tls_active && want_tls && !s->did_starttls) {
        if (s->caps.flags & SMTPKIT_CAP_STARTTLS) {
            s->stage = ST_STARTTLS;
            return send_str(s, C_STARTTLS, "STARTTLS");
        }
        if (s->o.tls == SMTPKIT_TLS_STARTTLS)
            return fail(s, SMTPKIT_ERR_TLS_REQUIRED, r, 1,
                        "the server does not offer STARTTLS and the tls policy requires it "
                        "(use tls = \"implicit\" for port 465, or \"opportunistic\" to allow "
                        "plaintext)");
    }
    if (s->user && !s->authed)
        return auth_start(s);
    s->stage = ST_READY;
    return 0;
}

static int on_greeting(smtpkit_session *s, const smtpkit_reply *r)
{
    char b[240];
    if (r->code == 220)
        return send_ehlo(s, 0);
    if (r->code / 100 == 4 || r->code / 100 == 5)
        return fail(s, SMTPKIT_ERR_SERVER, r, 1, "the server refused the session: %s",
                    first_line(r, b, sizeof b));
    return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected greeting: %s",
                first_line(r, b, sizeof b));
}

static int on_ehlo(smtpkit_session *s, const smtpkit_reply *r, int helo)
{
    char b[240];
    if (r->code == 250) {
        if (helo) {
            memset(&s->caps, 0, sizeof s->caps);
            s->pipe = 0;
        } else
            parse_caps(s, r);
        return after_ehlo(s, r);
    }
    if (!helo && (r->code == 500 || r->code == 502))
        return send_ehlo(s, 1);
    if (r->code / 100 == 4 || r->code / 100 == 5)
        return fail(s, SMTPKIT_ERR_SERVER, r, 1, "the server refused %s: %s",
                    helo ? "HELO" : "EHLO", first_line(r, b, sizeof b));
    return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply to %s: %s",
                helo ? "HELO" : "EHLO", first_line(r, b, sizeof b));
}

static int on_starttls(smtpkit_session *s, const smtpkit_reply *r)
{
    char b[240];
    if (r->code == 220) {
        s->stage = ST_TLS;
        s->did_starttls = 1;
        return 0;
    }
    if (r->code / 100 != 4 && r->code / 100 != 5)
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply to STARTTLS: %s",
                    first_line(r, b, sizeof b));
    if (s->o.tls == SMTPKIT_TLS_STARTTLS)
        return fail(s, SMTPKIT_ERR_TLS_REQUIRED, r, 1,
                    "the server refused STARTTLS and the tls policy requires it: %s",
                    first_line(r, b, sizeof b));
    s->did_starttls = 1;   /* opportunistic: go on in plaintext */
    trace_info(s, "[STARTTLS refused: going on without TLS]");
    if (s->user && !s->authed)
        return auth_start(s);
    s->stage = ST_READY;
    return 0;
}

int smtpkit_session_tls_done(smtpkit_session *s)
{
    if (s->stage == ST_FAILED)
        return -1;
    if (s->stage == ST_IMPLICIT_TLS) {
        s->tls_active = 1;
        s->stage = ST_GREETING;
        expect(s, C_GREETING);
        trace_info(s, "[TLS established]");
        return 0;
    }
    if (s->stage != ST_TLS)
        return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0,
                    "tls_done called while the session did not ask for TLS");
    s->tls_active = 1;
    memset(&s->caps, 0, sizeof s->caps);
    s->pipe = 0;
    smtpkit_reply_parser_init(&s->parser);
    trace_info(s, "[TLS established]");
    return send_ehlo(s, 0);
}

/* --- AUTH ---------------------------------------------------------------- */

static int auth_send_b64(smtpkit_session *s, const char *prefix, const char *data, size_t n);

/* MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), for CRAM-MD5 (RFC 2195) ----- */

typedef struct md5_ctx {
    unsigned long long len;
    unsigned a, b, c, d;
    unsigned char buf[64];
} md5_ctx;

static const unsigned md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391
};
static const unsigned char md5_r[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21
};

static void md5_block(md5_ctx *m, const unsigned char *p)
{
    unsigned w[16], a = m->a, b = m->b, c = m->c, d = m->d, f, g, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (unsigned)p[4 * i] | (unsigned)p[4 * i + 1] << 8 | (unsigned)p[4 * i + 2] << 16
               | (unsigned)p[4 * i + 3] << 24;
    for (i = 0; i < 64; i++) {
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = (unsigned)i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (unsigned)(5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (unsigned)(3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (unsigned)(7 * i) % 16;
        }
        t = d;
        d = c;
        c = b;
        f = (a + f + md5_k[i] + w[g]) & 0xffffffffu;
        b = (b + ((f << md5_r[i]) | (f >> (32 - md5_r[i])))) & 0xffffffffu;
        a = t;
    }
    m->a = (m->a + a) & 0xffffffffu;
    m->b = (m->b + b) & 0xffffffffu;
    m->c = (m->c + c) & 0xffffffffu;
    m->d = (m->d + d) & 0xffffffffu;
}

static void md5_init(md5_ctx *m)
{
    m->len = 0;
    m->a = 0x67452301;
    m->b = 0xefcdab89;
    m->c = 0x98badcfe;
    m->d = 0x10325476;
}

static void md5_update(md5_ctx *m, const unsigned char *p, size_t n)
{
    size_t have = (size_t)(m->len % 64);
    m->len += n;
    while (n > 0) {
        size_t k = 64 - have < n ? 64 - have : n;
        memcpy(m->buf + have, p, k);
        have += k;
        p += k;
        n -= k;
        if (have == 64) {
            md5_block(m, m->buf);
            have = 0;
        }
    }
}

static void md5_final(md5_ctx *m, unsigned char out[16])
{
    unsigned long long bits = m->len * 8;
    unsigned char pad[72];
    size_t have = (size_t)(m->len % 64), padlen = have < 56 ? 56 - have : 120 - have, i;
    unsigned v[4];
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (i = 0; i < 8; i++)
        pad[padlen + i] = (unsigned char)(bits >> (8 * i));
    md5_update(m, pad, padlen + 8);
    v[0] = m->a;
    v[1] = m->b;
    v[2] = m->c;
    v[3] = m->d;
    for (i = 0; i < 16; i++)
        out[i] = (unsigned char)(v[i / 4] >> (8 * (i % 4)));
}

static void hmac_md5(const unsigned char *key, size_t klen, const unsigned char *msg,
                     size_t mlen, unsigned char out[16])
{
    unsigned char k[64], pad[64], inner[16];
    md5_ctx m;
    size_t i;
    memset(k, 0, sizeof k);
    if (klen > 64) {
        md5_init(&m);
        md5_update(&m, key, klen);
        md5_final(&m, k);
    } else
        memcpy(k, key, klen);
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    md5_init(&m);
    md5_update(&m, pad, 64);
    md5_update(&m, msg, mlen);
    md5_final(&m, inner);
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    md5_init(&m);
    md5_update(&m, pad, 64);
    md5_update(&m, inner, 16);
    md5_final(&m, out);
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
}

/* Decodes base64 (no line breaks); returns the length, or -1 when invalid. */
static long unb64(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t i, o = 0;
    unsigned v = 0;
    int bits = 0;
    for (i = 0; i < n && in[i] != '='; i++) {
        const char *p = memchr(b64chars, in[i], 64);
        if (!p || in[i] == '\0')
            return -1;
        v = (v << 6) | (unsigned)(p - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return (long)o;
}

static int cram_md5_reply(smtpkit_session *s, const smtpkit_reply *r)
{
    unsigned char chal[SMTPKIT_REPLY_MAX_LINE], mac[16];
    char resp[SMTPKIT_SESSION_MAX_CRED + 40];
    long n = unb64(r->text, r->nlines ? r->line_len[0] : 0, chal, sizeof chal);
    size_t u = strlen(s->user), i;
    int rc;
    char b[240];
    if (n <= 0)
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "CRAM-MD5 challenge is not base64: %s",
                    first_line(r, b, sizeof b));
    hmac_md5((const unsigned char *)s->pass, strlen(s->pass), chal, (size_t)n, mac);
    memcpy(resp, s->user, u);
    resp[u] = ' ';
    for (i = 0; i < 16; i++) {
        resp[u + 1 + 2 * i] = "0123456789abcdef"[mac[i] >> 4];
        resp[u + 2 + 2 * i] = "0123456789abcdef"[mac[i] & 15];
    }
    rc = auth_send_b64(s, "", resp, u + 33);
    memset(resp, 0, sizeof resp);
    memset(mac, 0, sizeof mac);
    return rc;
}



static int auth_send_b64(smtpkit_session *s, const char *prefix, const char *data, size_t n)
{
    char line[AUTH_LINE_MAX];
    size_t p = strlen(prefix);
    int rc;
    if (p + 4 * ((n + 2) / 3) + 3 > sizeof line)
        return fail(s, SMTPKIT_ERR_VALIDATION, NULL, 1,
                    "credentials too long for one AUTH line (12288 octets)");
    memcpy(line, prefix, p);
    p += b64((const unsigned char *)data, n, line + p);
    if (prefix[0]) {
        char shown[40];
        snprintf(shown, sizeof shown, "%s%s", prefix, REDACTED);
        rc = send_cmd(s, C_AUTH, 0, line, p, shown);
    } else
        rc = send_cmd(s, C_AUTH, 0, line, p, REDACTED);
    memset(line, 0, sizeof line);
    return rc;
}

static int auth_payload(smtpkit_session *s, const char *prefix)
{
    char buf[3 * SMTPKIT_SESSION_MAX_CRED + 64];
    size_t n = 0, u = strlen(s->user);
    int rc;
    if (s->mech == M_PLAIN) {
        size_t pw = strlen(s->pass);
        buf[n++] = '\0';
        memcpy(buf + n, s->user, u);
        n += u;
        buf[n++] = '\0';
        memcpy(buf + n, s->pass, pw);
        n += pw;
    } else {   /* XOAUTH2 */
        n = (size_t)snprintf(buf, sizeof buf, "user=%s\001auth=Bearer %s\001\001", s->user,
                             s->token);
    }
    rc = auth_send_b64(s, prefix, buf, n);
    memset(buf, 0, sizeof buf);
    return rc;
}

static int auth_start(smtpkit_session *s)
{
    unsigned offered = s->caps.auth;
    s->stage = ST_AUTH;
    s->auth_step = 0;
    if (!s->tls_active && !s->o.allow_plaintext_auth)
        return fail(s, SMTPKIT_ERR_TLS_REQUIRED, NULL, 1,
                    "refusing to send credentials without TLS (set allow_plaintext_auth to "
                    "allow it)");
    if (!(s->caps.flags & SMTPKIT_CAP_AUTH))
        return fail(s, SMTPKIT_ERR_AUTH, NULL, 1,
                    "the server offers no AUTH, and credentials were given");
    s->mech = M_NONE;
    if (s->mechname) {
        size_t n = strlen(s->mechname);
        if (ieq(s->mechname, n, "PLAIN") && s->pass)
            s->mech = M_PLAIN;
        else if (ieq(s->mechname, n, "LOGIN") && s->pass)
            s->mech = M_LOGIN;
        else if (ieq(s->mechname, n, "XOAUTH2") && s->token)
            s->mech = M_XOAUTH2;
        else if (ieq(s->mechname, n, "CRAM-MD5") && s->pass)
            s->mech = M_CRAM_MD5;
        if (s->mech == M_NONE)
            return fail(s, SMTPKIT_ERR_AUTH, NULL, 1,
                        "auth mechanism %s needs a %s", s->mechname,
                        ieq(s->mechname, n, "XOAUTH2") ? "token" : "password");
    } else if (s->token && (offered & SMTPKIT_AUTH_XOAUTH2))
        s->mech = M_XOAUTH2;
    else if (s->pass && !s->tls_active && (offered & SMTPKIT_AUTH_CRAM_MD5))
        s->mech = M_CRAM_MD5;   /* in plaintext (allowed): the password stays home */
    else if (s->pass && (offered & SMTPKIT_AUTH_PLAIN))
        s->mech = M_PLAIN;
    else if (s->pass && (offered & SMTPKIT_AUTH_LOGIN))
        s->mech = M_LOGIN;
    else if (s->pass && (offered & SMTPKIT_AUTH_CRAM_MD5))
        s->mech = M_CRAM_MD5;
    else
        return fail(s, SMTPKIT_ERR_AUTH, NULL, 1,
                    "no AUTH mechanism the server offers fits the credentials "
                    "(smtpkit does PLAIN, LOGIN, CRAM-MD5, XOAUTH2)");
    switch (s->mech) {
    case M_PLAIN: return auth_payload(s, "AUTH PLAIN ");
    case M_XOAUTH2: return auth_payload(s, "AUTH XOAUTH2 ");
    case M_CRAM_MD5: return send_str(s, C_AUTH, "AUTH CRAM-MD5");
    default: return send_str(s, C_AUTH, "AUTH LOGIN");
    }
}

static int on_auth(smtpkit_session *s, const smtpkit_reply *r)
{
    char b[240];
    s->auth_step++;
    if (r->code == 235) {
        s->authed = 1;
        s->stage = ST_READY;
        return 0;
    }
    if (r->code == 334 && s->auth_step <= 3) {
        if (s->mech == M_LOGIN) {
            if (s->auth_step == 1)
                return auth_send_b64(s, "", s->user, strlen(s->user));
            if (s->auth_step == 2)
                return auth_send_b64(s, "", s->pass, strlen(s->pass));
        } else if (s->mech == M_CRAM_MD5 && s->auth_step == 1) {
            return cram_md5_reply(s, r);
        } else if (s->mech == M_PLAIN && s->auth_step == 1) {
            return auth_payload(s, "");
        } else if (s->mech == M_XOAUTH2 && s->auth_step == 1) {
            /* The server's 334 carries its error (base64 JSON); an empty
             * line asks for the final reply. */
            return send_cmd(s, C_AUTH, 0, "", 0, NULL);
        }
    }
    if (r->code / 100 == 4 || r->code / 100 == 5)
        return fail(s, SMTPKIT_ERR_AUTH, r, 1, "authentication failed: %s",
                    first_line(r, b, sizeof b));
    return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply during AUTH: %s",
                first_line(r, b, sizeof b));
}

/* --- transactions -------------------------------------------------------- */

static int addr_ok(const char *a, size_t max, int allow_empty)
{
    size_t i, n = strlen(a);
    if ((n == 0 && !allow_empty) || n > max)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

static int non_ascii(const char *a)
{
    for (; *a; a++)
        if ((unsigned char)*a >= 0x80)
            return 1;
    return 0;
}

/* RFC 3461 xtext; returns the length written or 0 when out is too small. */
static size_t xtext(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;
        if (o + 4 > size)
            return 0;
        if (c < 33 || c > 126 || c == '+' || c == '=') {
            out[o++] = '+';
            out[o++] = "0123456789ABCDEF"[c >> 4];
            out[o++] = "0123456789ABCDEF"[c & 15];
        } else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

static int notify_ok(const char *v)
{
    size_t i, n = strlen(v);
    if (n == 0 || n > 40)
        return 0;
    for (i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ','))
            return 0;
    }
    return 1;
}

static char *arena_put(char **p, const char *s)
{
    char *d = *p;
    size_t n = strlen(s) + 1;
    memcpy(d, s, n);
    *p += n;
    return d;
}

static void reset_pass(struct txn *t)
{
    t->mail_state = 0;
    t->data_state = 0;
    t->next = 0;
    t->sent = t->replied = t->accepted = 0;
    t->stop_rcpt = 0;
    t->pass_failed = 0;
}

static int txn_pump(smtpkit_session *s);
static int txn_settle(smtpkit_session *s);

/* The address of a DSN orcpt: a caller may give it in the RFC 3461 form
 * "rfc822;addr" too; the prefix is written once (ORCPT=rfc822;xtext). */
static const char *orcpt_addr(const char *o)
{
    return ieq(o, strlen(o) < 7 ? strlen(o) : 7, "rfc822;") ? o + 7 : o;
}

int smtpkit_session_begin(smtpkit_session *s, const smtpkit_envelope *env)
{
    struct txn *t = &s->t;
    size_t i, total = 0;
    int utf8 = 0;
    char *a;
    const char *from;
    int park;

    if (s->stage == ST_FAILED)
        return -1;   /* the error that failed the session stays */
    s->has_error = 0;
    park = overlap_ok(s) && overlap_room(s);
    if (!park && (s->stage != ST_READY || pending(s) || s->ring_count))
        return soft_error(s, SMTPKIT_ERR_PROTOCOL,
                          "begin called while the session is not ready (want is %s)",
                          smtpkit_want_name(smtpkit_session_want(s)));
    from = env->from ? env->from : "";
    if (!addr_ok(from, SMTPKIT_SESSION_MAX_ADDRESS, 1))
        return soft_error(s, SMTPKIT_ERR_VALIDATION,
                          "invalid sender address: at most 254 octets, without spaces, "
                          "<, >, CR, LF, NUL or control bytes");
    if (env->nrcpt == 0 || !env->rcpt)
        return soft_error(s, SMTPKIT_ERR_VALIDATION, "no recipients");
    if (env->nrcpt > SMTPKIT_SESSION_MAX_RCPT)
        return soft_error(s, SMTPKIT_ERR_VALIDATION, "more than %d recipients in one message",
                          SMTPKIT_SESSION_MAX_RCPT);
    utf8 = non_ascii(from);
    total = strlen(from) + 1;
    for (i = 0; i < env->nrcpt; i++) {
        const smtpkit_recipient *r = &env->rcpt[i];
        if (!r->address || !addr_ok(r->address, SMTPKIT_SESSION_MAX_ADDRESS, 0))
            return soft_error(s, SMTPKIT_ERR_VALIDATION,
                              "invalid recipient address #%u: 1 to 254 octets, without "
                              "spaces, <, >, CR, LF, NUL or control bytes", (unsigned)i + 1);
        if (r->notify && !notify_ok(r->notify))
            return soft_error(s, SMTPKIT_ERR_VALIDATION,
                              "invalid DSN notify for recipient #%u: NEVER or a list of "
                              "SUCCESS, FAILURE, DELAY", (unsigned)i + 1);
        if (r->orcpt && (!addr_ok(orcpt_addr(r->orcpt), SMTPKIT_SESSION_MAX_ADDRESS, 0)
                         || non_ascii(r->orcpt)))
            return soft_error(s, SMTPKIT_ERR_VALIDATION,
                              "invalid DSN orcpt for recipient #%u (an ASCII address)",
                              (unsigned)i + 1);
        utf8 |= non_ascii(r->address);
        total += strlen(r->address) + 1 + (r->notify ? strlen(r->notify) + 1 : 0)
                 + (r->orcpt ? strlen(r->orcpt) + 1 : 0);
    }
    if (env->dsn_ret && !ieq(env->dsn_ret, strlen(env->dsn_ret), "FULL")
        && !ieq(env->dsn_ret, strlen(env->dsn_ret), "HDRS"))
        return soft_error(s, SMTPKIT_ERR_VALIDATION, "DSN ret must be FULL or HDRS");
    if (env->dsn_envid && (strlen(env->dsn_envid) == 0 || strlen(env->dsn_envid) > 100
                           || non_ascii(env->dsn_envid)))
        return soft_error(s, SMTPKIT_ERR_VALIDATION,
                          "DSN envid must be 1 to 100 ASCII octets");
    if (utf8 && !(s->caps.flags & SMTPKIT_CAP_SMTPUTF8))
        return soft_error(s, SMTPKIT_ERR_VALIDATION,
                          "an address is not ASCII and the server does not offer SMTPUTF8");
    if (env->body_8bit > 0 && !(s->caps.flags & SMTPKIT_CAP_8BITMIME))
        return soft_error(s, SMTPKIT_ERR_VALIDATION,
                          "the body has 8-bit octets and the server does not offer 8BITMIME "
                          "(encode the body as quoted-printable or base64)");
    if (env->size < -1)
        return soft_error(s, SMTPKIT_ERR_VALIDATION, "size must be -1 (unknown) or >= 0");
    total += (env->dsn_ret ? 5 : 0) + (env->dsn_envid ? strlen(env->dsn_envid) + 1 : 0);

    free_txn(&s->pt);
    memset(&s->presult, 0, sizeof s->presult);
    s->have_prev = 0;
    if (s->have_result) {
        /* the last transaction moves to the previous slot (its result's
         * rcpt array moves with it), so its result outlives this begin;
         * when parked, its end of data is now answered to it there */
        s->pt = s->t;
        s->presult = s->result;
        s->have_prev = 1;
        memset(t, 0, sizeof *t);
        if (park)
            s->ring[s->ring_head].cmd = C_DOT_PREV;
    }
    free_txn(t);
    memset(&s->result, 0, sizeof s->result);
    s->have_result = 0;
    t->arena = malloc(total);
    t->r = calloc(env->nrcpt, sizeof *t->r);
    t->res = calloc(env->nrcpt, sizeof *t->res);
    if (!t->arena || !t->r || !t->res) {
        free_txn(t);
        return soft_error(s, SMTPKIT_ERR_VALIDATION, "out of memory");
    }
    a = t->arena;
    t->from = arena_put(&a, from);
    for (i = 0; i < env->nrcpt; i++) {
        const smtpkit_recipient *r = &env->rcpt[i];
        t->r[i].addr = arena_put(&a, r->address);
        t->r[i].notify = r->notify ? arena_put(&a, r->notify) : NULL;
        t->r[i].orcpt = r->orcpt ? arena_put(&a, orcpt_addr(r->orcpt)) : NULL;
        t->r[i].st = R_TODO;
        t->res[i].address = t->r[i].addr;
        synth_verdict(&t->res[i].verdict, SMTPKIT_OUTCOME_UNKNOWN, SMTPKIT_REASON_UNKNOWN,
                      SMTPKIT_ACTION_NONE, 0, "");
    }
    t->ret = env->dsn_ret ? arena_put(&a, env->dsn_ret) : NULL;
    t->envid = env->dsn_envid ? arena_put(&a, env->dsn_envid) : NULL;
    t->n = env->nrcpt;
    t->size = env->size;
    t->body_8bit = env->body_8bit > 0
                   || (env->body_8bit < 0 && (s->caps.flags & SMTPKIT_CAP_8BITMIME));
    t->check_7bit = !t->body_8bit;
    t->pass_long = env->pass_long_lines;
    t->smtputf8 = utf8;
    t->pass = 1;
    t->active = 1;
    reset_pass(t);
    s->result.nrcpt = t->n;
    s->result.rcpt = t->res;
    s->have_result = 1;
    s->body_pass = 0;
    s->stage = ST_TXN;
    if (s->rset_first) {
        /* a resumed connection: whatever state its last user left goes, and
         * the reply proves it alive (pipelined with MAIL when offered) */
        s->rset_first = 0;
        if (send_str(s, C_RSET_FIRST, "RSET") < 0)
            return -1;
    }
    if (txn_pump(s) < 0)
        return -1;
    return 0;
}

static int send_mail(smtpkit_session *s)
{
    struct txn *t = &s->t;
    char line[CMD_MAX];
    int n = snprintf(line, sizeof line, "MAIL FROM:<%s>", t->from);
    if ((s->caps.flags & SMTPKIT_CAP_SIZE) && t->size >= 0)
        n += snprintf(line + n, sizeof line - (size_t)n, " SIZE=%lld", t->size);
    if (t->body_8bit)
        n += snprintf(line + n, sizeof line - (size_t)n, " BODY=8BITMIME");
    if (t->smtputf8)
        n += snprintf(line + n, sizeof line - (size_t)n, " SMTPUTF8");
    if (s->caps.flags & SMTPKIT_CAP_DSN) {
        if (t->ret)
            n += snprintf(line + n, sizeof line - (size_t)n, " RET=%s", t->ret);
        if (t->envid) {
            char x[3 * 100 + 4];
            xtext(t->envid, x, sizeof x);
            n += snprintf(line + n, sizeof line - (size_t)n, " ENVID=%s", x);
        }
    }
    t->mail_state = 1;
    return send_cmd(s, C_MAIL, 0, line, (size_t)n, NULL);
}

static int build_rcpt(smtpkit_session *s, size_t i, char *line, size_t size)
{
    struct rcpt *r = &s->t.r[i];
    int n = snprintf(line, size, "RCPT TO:<%s>", r->addr);
    if (s->caps.flags & SMTPKIT_CAP_DSN) {
        if (r->notify)
            n += snprintf(line + n, size - (size_t)n, " NOTIFY=%s", r->notify);
        if (r->orcpt) {
            char x[3 * SMTPKIT_SESSION_MAX_ADDRESS + 4];
            xtext(r->orcpt, x, sizeof x);
            n += snprintf(line + n, size - (size_t)n, " ORCPT=rfc822;%s", x);
        }
    }
    return n;
}

/* Index of the next recipient to send in this pass, or n. */
static size_t next_todo(struct txn *t)
{
    while (t->next < t->n && t->r[t->next].st != R_TODO)
        t->next++;
    return t->next;
}

static int window_full(smtpkit_session *s, size_t add)
{
    return s->ring_count > 0
           && (s->unanswered + add > s->window || s->ring_count + 2 >= RING_SIZE);
}

/* Sends what may be sent now: MAIL, RCPTs, DATA, within the window. */
static int txn_pump(smtpkit_session *s)
{
    struct txn *t = &s->t;
    if (s->stage != ST_TXN)
        return 0;
    if (t->mail_state == 0) {
        if (s->ring_count > 0 && !s->pipe)
            return 0;   /* a resumed connection's RSET first, without pipelining */
        if (send_mail(s) < 0)
            return -1;
    }
    for (;;) {
        size_t i;
        if (s->ring_count > 0 && !s->pipe)
            return 0;
        if (t->mail_state == 3)
            return 0;
        i = next_todo(t);
        if (i < t->n && !t->stop_rcpt) {
            char line[CMD_MAX];
            int n = build_rcpt(s, i, line, sizeof line);
            if (window_full(s, (size_t)n + 2))
                return 0;
            t->r[i].st = R_SENT;
            t->res[i].pass = t->pass;
            t->sent++;
            t->next++;
            if (send_cmd(s, C_RCPT, (unsigned)i, line, (size_t)n, NULL) < 0)
                return -1;
            continue;
        }
        if (t->data_state == 0) {
            if (t->replied == t->sent && t->mail_state == 2 && t->accepted == 0)
                return 0;   /* nobody accepted: txn_settle sends RSET */
            if (!s->pipe && t->accepted == 0)
                return 0;
            if (window_full(s, 6))
                return 0;
            t->data_state = 1;
            return send_str(s, C_DATA, "DATA");
        }
        return 0;
    }
}

static void rcpt_fail_with(struct txn *t, size_t i, const smtpkit_session_reply *r,
                           const smtpkit_verdict *v)
{
    t->r[i].st = R_FAIL;
    t->res[i].ok = 0;
    copy_kept(&t->res[i].reply, &t->res[i].verdict, r, v);
}

/* The pass ended without a message sent: recipients accepted in it get the
 * refusal (DATA's), and an RSET closes the transaction. */
static int pass_abandon(smtpkit_session *s)
{
    struct txn *t = &s->t;
    size_t i;
    for (i = 0; i < t->n; i++) {
        if (t->r[i].st == R_ACCEPTED) {
            if (t->have_fail)
                rcpt_fail_with(t, i, &t->fail_reply, &t->fail_verdict);
            else
                t->r[i].st = R_FAIL;
        }
        if (t->r[i].st == R_NEXT || t->r[i].st == R_TODO) {
            if (t->have_fail)
                rcpt_fail_with(t, i, &t->fail_reply, &t->fail_verdict);
            else
                t->r[i].st = R_FAIL;
        }
    }
    s->stage = ST_RSET;
    return send_str(s, C_RSET, "RSET");
}

/* Everything sent was answered: decide what comes next. */
static int txn_settle(smtpkit_session *s)
{
    struct txn *t = &s->t;
    if (s->stage != ST_TXN || s->ring_count > 0)
        return 0;
    if (t->mail_state == 3 || (t->data_state == 0 && t->accepted == 0)
        || t->data_state == 3 || t->data_state == 5)
        return pass_abandon(s);
    return 0;
}

static int is_too_many(const smtpkit_reply *r, const smtpkit_verdict *v, size_t accepted)
{
    if (r->code != 452 && r->code != 552)
        return 0;
    if (v->reason == SMTPKIT_REASON_TOO_MANY_RECIPIENTS)
        return 1;
    if (strcmp(r->enhanced, "4.5.3") == 0 || strcmp(r->enhanced, "5.5.3") == 0)
        return 1;
    /* RFC 5321 4.5.3.1.10: a 452 after accepted recipients means "too many". */
    return r->code == 452 && r->enhanced[0] == '\0' && accepted > 0;
}

static int on_mail(smtpkit_session *s, const smtpkit_reply *r)
{
    struct txn *t = &s->t;
    char b[240];
    if (r->code / 100 == 2) {
        t->mail_state = 2;
        return 0;
    }
    if (r->code / 100 != 4 && r->code / 100 != 5)
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply to MAIL: %s",
                    first_line(r, b, sizeof b));
    t->mail_state = 3;
    t->have_fail = t->pass_failed = 1;
    keep_reply(&t->fail_reply, &t->fail_verdict, r);
    return 0;
}

static int on_rcpt(smtpkit_session *s, const smtpkit_reply *r, unsigned i)
{
    struct txn *t = &s->t;
    smtpkit_rcpt_result *res = &t->res[i];
    char b[240];
    t->replied++;
    if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5)
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply to RCPT: %s",
                    first_line(r, b, sizeof b));
    if (t->mail_state == 3) {
        rcpt_fail_with(t, i, &t->fail_reply, &t->fail_verdict);
        return 0;
    }
    keep_reply(&res->reply, &res->verdict, r);
    if (r->code / 100 == 2) {
        t->r[i].st = R_ACCEPTED;
        t->accepted++;
        return 0;
    }
    if (is_too_many(r, &res->verdict, t->accepted) && t->accepted > 0) {
        size_t k;
        t->r[i].st = R_NEXT;
        t->stop_rcpt = 1;
        /* Recipients not sent yet wait for the next pass too. */
        for (k = 0; k < t->n; k++)
            if (t->r[k].st == R_TODO)
                t->r[k].st = R_NEXT;
        return 0;
    }
    t->r[i].st = R_FAIL;
    return 0;
}

static int start_body(smtpkit_session *s)
{
    s->stage = ST_BODY;
    s->body_pass = s->t.pass;
    s->body_blocked = 0;
    smtpkit_data_init(&s->enc, s->t.pass_long);
    return 0;
}

static int on_data(smtpkit_session *s, const smtpkit_reply *r)
{
    struct txn *t = &s->t;
    char b[240];
    if (r->code == 354) {
        if (t->accepted > 0 && t->mail_state == 2 && s->ring_count == 0)
            return start_body(s);
        /* A 354 with no recipient accepted: end the empty message at once. */
        t->data_state = 4;
        append(s, ".\r\n", 3);
        trace(s, SMTPKIT_TRACE_SEND, ".", 1);
        expect(s, C_DOT_EMPTY);
        return 0;
    }
    if (r->code / 100 != 4 && r->code / 100 != 5)
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply to DATA: %s",
                    first_line(r, b, sizeof b));
    t->data_state = 3;
    if (t->accepted > 0 && t->mail_state == 2) {
        t->have_fail = t->pass_failed = 1;
        keep_reply(&t->fail_reply, &t->fail_verdict, r);
    }
    return 0;
}

/* Parses the queue id out of an end-of-data reply. */
static void parse_queue_id(const smtpkit_reply *r, char *out)
{
    const char *t = r->text;
    size_t n = r->text_len, i, k = 0, start = n;
    out[0] = '\0';
    for (i = 0; i + 10 <= n; i++)
        if (ieq(t + i, 10, "queued as ")) {
            start = i + 10;
            break;
        }
    if (start == n) {
        for (i = 0; i + 3 <= n; i++)
            if (ieq(t + i, 3, "id=") && (i == 0 || t[i - 1] == ' ' || t[i - 1] == '\n'
                                         || t[i - 1] == '[' || t[i - 1] == '(')) {
                start = i + 3;
                break;
            }
    }
    if (start >= n)
        return;
    while (start < n && t[start] == ' ')
        start++;
    if (start < n && t[start] == '<')
        start++;
    for (i = start; i < n && k < SMTPKIT_SESSION_QUEUE_ID - 1; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= ' ' || c == '>' || c == ']' || c == ')' || c == ',' || c == ';' || c >= 0x7f)
            break;
        out[k++] = (char)c;
    }
    while (k > 0 && (out[k - 1] == '.' || out[k - 1] == ':'))
        k--;
    out[k] = '\0';
}

/* The end-of-data reply of transaction t (the current one, or the previous
 * one when the current was begun behind its end of data): returns how many
 * recipients wait for another pass, or -1 when the session failed. */
static int dot_reply(smtpkit_session *s, struct txn *t, smtpkit_result *res,
                     const smtpkit_reply *r)
{
    char b[240];
    size_t i, next = 0;
    smtpkit_session_reply kept;
    smtpkit_verdict v;
    char qid[SMTPKIT_SESSION_QUEUE_ID];
    int ok = r->code / 100 == 2;

    if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
        for (i = 0; i < t->n; i++)
            if (t->r[i].st == R_ACCEPTED)
                res->maybe_delivered = 1;
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0,
                    "unexpected reply to the end of data (the message may have been "
                    "delivered): %s", first_line(r, b, sizeof b));
    }
    keep_reply(&kept, &v, r);
    if (ok) {
        parse_queue_id(r, qid);
        if (!t->have_ok) {
            t->have_ok = 1;
            copy_kept(&res->reply, &res->verdict, &kept, &v);
            memcpy(res->queue_id, qid, sizeof qid);
        }
    } else {
        t->have_fail = t->pass_failed = 1;
        copy_kept(&t->fail_reply, &t->fail_verdict, &kept, &v);
    }
    for (i = 0; i < t->n; i++) {
        if (t->r[i].st == R_ACCEPTED) {
            if (ok) {
                t->r[i].st = R_OK;
                t->res[i].ok = 1;
                memcpy(t->res[i].queue_id, qid, sizeof qid);
            } else
                rcpt_fail_with(t, i, &kept, &v);
        } else if (t->r[i].st == R_NEXT) {
            if (ok) {
                t->r[i].st = R_TODO;
                next++;
            } else
                rcpt_fail_with(t, i, &kept, &v);
        }
    }
    return (int)next;
}

static int on_dot(smtpkit_session *s, const smtpkit_reply *r)
{
    struct txn *t = &s->t;
    int next = dot_reply(s, t, &s->result, r);
    if (next < 0)
        return -1;
    if (next > 0) {
        t->pass++;
        reset_pass(t);
        s->stage = ST_TXN;
        trace_info(s, "[too many recipients: pass %u for %u more]", t->pass, (unsigned)next);
        return txn_pump(s);
    }
    finish_txn(s);
    s->stage = ST_READY;
    return 0;
}

/* The end-of-data reply of the previous transaction, the current one being
 * already under way behind it: it ends that transaction, and nothing else
 * (overlap is only allowed when no recipient waits for another pass). */
static int on_dot_prev(smtpkit_session *s, const smtpkit_reply *r)
{
    if (dot_reply(s, &s->pt, &s->presult, r) < 0)
        return -1;
    finish(s, &s->pt, &s->presult, 0);
    return 0;
}

static int on_dot_empty(smtpkit_session *s, const smtpkit_reply *r)
{
    (void)r;
    s->t.data_state = 5;
    return 0;
}

/* Why a recipient got no message when the connection failed (EOF, timeout,
 * transport error) before the message went out, no reply saying why. */
static const char *lost_explanation(const smtpkit_session *s, int st)
{
    int timeout = s->has_error && s->err.kind == SMTPKIT_ERR_TIMEOUT;
    if (st == R_ACCEPTED)
        return timeout ? "accepted by RCPT, but the server stopped answering before the message "
                         "was sent: nothing was delivered, send it again"
                       : "accepted by RCPT, but the connection ended before the message was "
                         "sent: nothing was delivered, send it again";
    if (st == R_SENT)
        return timeout ? "RCPT was not answered in time: nothing was delivered, send it again"
                       : "the connection ended before RCPT was answered: nothing was "
                         "delivered, send it again";
    return timeout ? "the server stopped answering before this recipient was tried: send it again"
                   : "the connection ended before this recipient was tried: send it again";
}

/* Transaction t is over (normally or not): fill its result. lost_at_dot:
 * the session ended while its end-of-data reply was awaited. */
static void finish(smtpkit_session *s, struct txn *t, smtpkit_result *res, int lost_at_dot)
{
    size_t i, first = t->n;
    int failed = s->has_error;

    res->naccepted = 0;
    for (i = 0; i < t->n; i++) {
        smtpkit_rcpt_result *rr = &t->res[i];
        switch (t->r[i].st) {
        case R_OK:
            res->naccepted++;
            break;
        case R_ACCEPTED:
            if (lost_at_dot) {
                res->maybe_delivered = 1;
                synth_verdict(&rr->verdict, SMTPKIT_OUTCOME_UNKNOWN,
                              SMTPKIT_REASON_NETWORK_ERROR, SMTPKIT_ACTION_REVIEW, 0,
                              "the end-of-data reply never came: the message may have "
                              "been delivered");
                break;
            }
            /* fall through */
        case R_TODO:
        case R_SENT:
        case R_NEXT:
            if (t->pass_failed) {
                /* MAIL or DATA refused, or a 421, in this pass: that reply
                 * is why this recipient got no message (as in pass_abandon) */
                rcpt_fail_with(t, i, &t->fail_reply, &t->fail_verdict);
                break;
            }
            if (failed && s->err.kind == SMTPKIT_ERR_VALIDATION)
                synth_verdict(&rr->verdict, SMTPKIT_OUTCOME_BOUNCED,
                              SMTPKIT_REASON_MESSAGE_INVALID, SMTPKIT_ACTION_FIX_MESSAGE, 0,
                              "the message could not be sent as it is");
            else if (failed && s->err.kind == SMTPKIT_ERR_PROTOCOL)
                synth_verdict(&rr->verdict, SMTPKIT_OUTCOME_DEFERRED,
                              SMTPKIT_REASON_PROTOCOL_ERROR, SMTPKIT_ACTION_RETRY, 1,
                              "the session broke down before the message was sent");
            else
                synth_verdict(&rr->verdict, SMTPKIT_OUTCOME_DEFERRED,
                              SMTPKIT_REASON_NETWORK_ERROR, SMTPKIT_ACTION_RETRY, 1,
                              lost_explanation(s, t->r[i].st));
            rr->ok = 0;
            t->r[i].st = R_FAIL;
            break;
        default:
            break;
        }
        if (first == t->n && rr->reply.code)
            first = i;
    }
    res->ok = res->naccepted > 0;
    if (res->ok) {
        /* result.reply holds the first accepted end of data */
    } else if (res->maybe_delivered) {
        memset(&res->reply, 0, sizeof res->reply);
        synth_verdict(&res->verdict, SMTPKIT_OUTCOME_UNKNOWN, SMTPKIT_REASON_NETWORK_ERROR,
                      SMTPKIT_ACTION_REVIEW, 0,
                      "the end-of-data reply never came: the message may have been delivered");
    } else if (t->have_fail) {
        copy_kept(&res->reply, &res->verdict, &t->fail_reply, &t->fail_verdict);
    } else if (first < t->n) {
        copy_kept(&res->reply, &res->verdict, &t->res[first].reply, &t->res[first].verdict);
    } else if (t->n > 0) {
        memset(&res->reply, 0, sizeof res->reply);
        res->verdict = t->res[0].verdict;
    }
    res->complete = 1;
    t->active = 0;
}

static void finish_txn(smtpkit_session *s)
{
    finish(s, &s->t, &s->result, s->stage == ST_DOT);
}

/* --- receiving ----------------------------------------------------------- */

static void trace_reply(smtpkit_session *s, const smtpkit_reply *r, int redact)
{
    char line[SMTPKIT_REPLY_MAX_LINE + 16];
    unsigned i;
    if (!s->o.trace)
        return;
    for (i = 0; i < r->nlines; i++) {
        int n;
        if (redact)
            n = snprintf(line, sizeof line, "%d%c%s", r->code,
                         i + 1 < r->nlines ? '-' : ' ', REDACTED);
        else
            n = snprintf(line, sizeof line, "%d%c%.*s", r->code,
                         i + 1 < r->nlines ? '-' : ' ', (int)r->line_len[i],
                         r->text + r->line_off[i]);
        if (n > 0)
            trace(s, SMTPKIT_TRACE_RECV, line,
                  (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
}

static int dispatch_one(smtpkit_session *s, const smtpkit_reply *r);

/* Handles one complete reply; a failure it causes is in the phase of the
 * command it answers (not of the next one waiting, when pipelined). */
static int dispatch(smtpkit_session *s, const smtpkit_reply *r)
{
    int rc = dispatch_one(s, r);
    s->answering = -1;
    return rc;
}

static int dispatch_one(smtpkit_session *s, const smtpkit_reply *r)
{
    struct pend p;
    char b[240];

    if (s->ring_count == 0) {
        trace_reply(s, r, 0);
        if (r->code == 421)
            return fail(s, SMTPKIT_ERR_SERVER, r, 0, "the server is closing the connection: %s",
                        first_line(r, b, sizeof b));
        return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "unexpected reply from the server: %s",
                    first_line(r, b, sizeof b));
    }
    p = s->ring[s->ring_head];
    s->answering = (int)cmd_phase((enum cmd)p.cmd);
    trace_reply(s, r, p.cmd == C_AUTH && r->code == 334);
    s->ring_head = (s->ring_head + 1) % RING_SIZE;
    s->ring_count--;
    s->unanswered -= p.len <= s->unanswered ? p.len : s->unanswered;

    /* 421 at any step: the server is going away. */
    if (r->code == 421 && p.cmd != C_QUIT && p.cmd != C_DOT && p.cmd != C_DOT_PREV) {
        if (p.cmd == C_GREETING)
            return fail(s, SMTPKIT_ERR_SERVER, r, 0, "the server refused the session: %s",
                        first_line(r, b, sizeof b));
        /* It ends the transaction: the deciding reply of this pass (unless
         * MAIL or DATA was refused before), the reply of the recipient it
         * answered, and (finish_txn) of every recipient still open. */
        if (s->t.active && p.cmd == C_RCPT) {
            keep_reply(&s->t.res[p.idx].reply, &s->t.res[p.idx].verdict, r);
            s->t.r[p.idx].st = R_FAIL;
            s->t.res[p.idx].ok = 0;
        }
        if (s->t.active && !s->t.pass_failed) {
            s->t.have_fail = s->t.pass_failed = 1;
            keep_reply(&s->t.fail_reply, &s->t.fail_verdict, r);
        }
        return fail(s, SMTPKIT_ERR_SERVER, r, 0, "the server is closing the connection: %s",
                    first_line(r, b, sizeof b));
    }

    switch ((enum cmd)p.cmd) {
    case C_GREETING: return on_greeting(s, r);
    case C_EHLO: return on_ehlo(s, r, 0);
    case C_HELO: return on_ehlo(s, r, 1);
    case C_STARTTLS: return on_starttls(s, r);
    case C_AUTH: return on_auth(s, r);
    case C_MAIL:
        if (on_mail(s, r) < 0)
            return -1;
        break;
    case C_RCPT:
        if (on_rcpt(s, r, p.idx) < 0)
            return -1;
        break;
    case C_DATA:
        if (on_data(s, r) < 0)
            return -1;
        break;
    case C_DOT:
        if (on_dot(s, r) < 0)
            return -1;
        if (r->code == 421)
            return fail(s, SMTPKIT_ERR_SERVER, r, 0,
                        "the server is closing the connection: %s", first_line(r, b, sizeof b));
        return 0;
    case C_DOT_PREV:
        if (on_dot_prev(s, r) < 0)
            return -1;
        if (r->code == 421) {
            /* it ends the transaction begun behind it too, which has
             * nothing delivered: the 421 is why */
            if (s->t.active && !s->t.pass_failed) {
                s->t.have_fail = s->t.pass_failed = 1;
                keep_reply(&s->t.fail_reply, &s->t.fail_verdict, r);
            }
            return fail(s, SMTPKIT_ERR_SERVER, r, 0,
                        "the server is closing the connection: %s", first_line(r, b, sizeof b));
        }
        break;
    case C_DOT_EMPTY:
        on_dot_empty(s, r);
        break;
    case C_RSET:
        if (r->code / 100 != 2)
            return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "RSET refused: %s",
                        first_line(r, b, sizeof b));
        if (s->t.active)
            finish_txn(s);
        s->stage = ST_READY;
        return 0;
    case C_QUIT:
        s->stage = ST_DONE;
        return 0;
    case C_RSET_FIRST:
        if (r->code / 100 != 2)
            return fail(s, SMTPKIT_ERR_PROTOCOL, r, 0, "RSET refused on a resumed connection: %s",
                        first_line(r, b, sizeof b));
        break;
    }
    if (txn_pump(s) < 0)
        return -1;
    return txn_settle(s);
}

int smtpkit_session_receive(smtpkit_session *s, const char *buf, size_t len)
{
    if (s->stage == ST_FAILED)
        return -1;
    if (s->stage == ST_DONE)
        return 0;
    if (len > 0 && (s->stage == ST_TLS || s->stage == ST_IMPLICIT_TLS)) {
        if (s->stage == ST_TLS)
            return fail(s, SMTPKIT_ERR_TLS_REQUIRED, NULL, 0,
                        "bytes after the server's 220 to STARTTLS, before the TLS handshake "
                        "(STARTTLS response injection): refusing to go on");
        return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0,
                    "bytes from the server before the implicit TLS handshake");
    }
    while (len > 0) {
        size_t used = 0;
        smtpkit_reply_status st = smtpkit_reply_parser_feed(&s->parser, buf, len, &used);
        if (st == SMTPKIT_REPLY_ERROR)
            return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0, "the server sent a malformed reply: %s",
                        smtpkit_reply_parser_error(&s->parser));
        buf += used;
        len -= used;
        if (st == SMTPKIT_REPLY_DONE) {
            if (dispatch(s, &s->parser.reply) < 0)
                return -1;
            if (s->stage == ST_TLS && len > 0)
                return fail(s, SMTPKIT_ERR_TLS_REQUIRED, NULL, 0,
                            "bytes after the server's 220 to STARTTLS, before the TLS "
                            "handshake (STARTTLS response injection): refusing to go on");
            if (s->stage == ST_DONE)
                return 0;
        }
    }
    return 0;
}

static void lost(smtpkit_session *s, smtpkit_error_kind kind, const char *what)
{
    const char *ph = smtpkit_phase_name(smtpkit_session_phase(s));
    if (s->stage == ST_FAILED || s->stage == ST_DONE)
        return;
    if (s->stage == ST_QUIT) {
        s->stage = ST_DONE;
        s->ring_count = 0;
        return;
    }
    if (awaiting_dot(s))
        fail(s, kind, NULL, 0, "%s after the end of data, before its reply: the message may "
             "have been delivered", what);
    else
        fail(s, kind, NULL, 0, "%s (phase %s)", what, ph);
}

void smtpkit_session_eof(smtpkit_session *s)
{
    lost(s, SMTPKIT_ERR_CONNECT, "the server closed the connection");
}

void smtpkit_session_timeout(smtpkit_session *s)
{
    /* A port that wants TLS from the first byte (465) says nothing to a
     * client that waits for a plaintext greeting: say so. */
    if (smtpkit_session_phase(s) == SMTPKIT_PHASE_GREETING && s->o.tls != SMTPKIT_TLS_IMPLICIT
        && s->stage != ST_FAILED && s->stage != ST_DONE && s->stage != ST_QUIT)
        fail(s, SMTPKIT_ERR_TIMEOUT, NULL, 0,
             "timed out waiting for the server's greeting (phase greeting) - if this port "
             "expects TLS from the first byte (like 465), set tls = \"implicit\"");
    else
        lost(s, SMTPKIT_ERR_TIMEOUT, "timed out waiting for the server");
}

void smtpkit_session_abort(smtpkit_session *s, smtpkit_error_kind kind, const char *message)
{
    if (s->stage == ST_FAILED || s->stage == ST_DONE)
        return;
    if (s->stage == ST_QUIT) {
        s->stage = ST_DONE;
        return;
    }
    if (awaiting_dot(s))
        fail(s, kind, NULL, 0, "%s (after the end of data: the message may have been "
             "delivered)", message ? message : "transport error");
    else
        fail(s, kind, NULL, 0, "%s", message ? message : "transport error");
}

/* --- body ---------------------------------------------------------------- */

/* 1 when buf[0..n) has an octet >= 0x80; eight bytes at a time. */
static int has_8bit(const char *buf, size_t n)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & UINT64_C(0x8080808080808080)) != 0;
}

int smtpkit_session_body(smtpkit_session *s, const char *buf, size_t len, size_t *used)
{
    size_t room, in_used = 0, out_used = 0;
    smtpkit_data_status st;

    *used = 0;
    if (s->stage != ST_BODY)
        return s->stage == ST_FAILED ? -1
               : soft_error(s, SMTPKIT_ERR_PROTOCOL, "body given while the session wants none");
    if (s->out_head > 0 && s->out_len + 2 + SMTPKIT_DATA_END_MAX > s->out_cap)
        compact(s);
    room = s->out_cap - s->out_len;
    room = room > SMTPKIT_DATA_END_MAX ? room - SMTPKIT_DATA_END_MAX : 0;
    if (room >= 2 && len > 0) {
        st = smtpkit_data_encode(&s->enc, buf, len, &in_used, s->out + s->out_len, room,
                                 &out_used);
        if (s->t.check_7bit && has_8bit(buf, in_used))
            return fail(s, SMTPKIT_ERR_VALIDATION, NULL, 0,
                        "the body has 8-bit octets and BODY=8BITMIME was not sent (%s); "
                        "the message was not sent",
                        (s->caps.flags & SMTPKIT_CAP_8BITMIME)
                            ? "the caller said the body is 7 bit: set body_8bit = true"
                            : "the server does not offer 8BITMIME: encode the body as "
                              "quoted-printable or base64");
        s->out_len += out_used;
        *used = in_used;
        if (st != SMTPKIT_DATA_OK)
            return fail(s, SMTPKIT_ERR_VALIDATION, NULL, 0,
                        "a body line is longer than 998 octets (wrap it, encode the body, "
                        "or set long_lines to pass it as is)");
    }
    if (*used < len)
        s->body_blocked = 1;
    return 0;
}

int smtpkit_session_body_end(smtpkit_session *s)
{
    char end[SMTPKIT_DATA_END_MAX];
    size_t n;
    if (s->stage != ST_BODY)
        return s->stage == ST_FAILED ? -1
               : soft_error(s, SMTPKIT_ERR_PROTOCOL, "body_end while the session wants no body");
    n = smtpkit_data_finish(&s->enc, end);
    if (append(s, end, n) < 0)   /* room was kept for it */
        return fail(s, SMTPKIT_ERR_PROTOCOL, NULL, 0, "internal: no room for the end of data");
    trace_info(s, "[body: %llu octets]", s->enc.out_total);
    trace(s, SMTPKIT_TRACE_SEND, ".", 1);
    s->body_blocked = 0;
    s->stage = ST_DOT;
    s->t.data_state = 5;
    s->t.final_pass = 1;
    for (n = 0; n < s->t.n; n++)
        if (s->t.r[n].st == R_NEXT)
            s->t.final_pass = 0;
    expect(s, C_DOT);
    return 0;
}

/* --- QUIT ---------------------------------------------------------------- */

int smtpkit_session_quit(smtpkit_session *s)
{
    if (s->stage == ST_FAILED || s->stage == ST_DONE || s->stage == ST_QUIT)
        return 0;
    if (s->stage == ST_IMPLICIT_TLS || (s->stage == ST_GREETING && s->ring_count == 1)) {
        s->stage = ST_DONE;
        s->ring_count = 0;
        return 0;
    }
    if (overlap_ok(s))
        return soft_error(s, SMTPKIT_ERR_PROTOCOL,
                          "quit called while an end-of-data reply is outstanding (overlap): "
                          "turn overlap off and wait for ready");
    if (s->stage != ST_READY)
        return soft_error(s, SMTPKIT_ERR_PROTOCOL,
                          "quit called in the middle of a step (want is %s)",
                          smtpkit_want_name(smtpkit_session_want(s)));
    s->stage = ST_QUIT;
    return send_str(s, C_QUIT, "QUIT");
}

int smtpkit_session_reset(smtpkit_session *s)
{
    if (s->stage == ST_FAILED)
        return -1;
    if (s->stage != ST_READY || pending(s) || s->ring_count)
        return soft_error(s, SMTPKIT_ERR_PROTOCOL,
                          "reset called while the session is not ready (want is %s)",
                          smtpkit_want_name(smtpkit_session_want(s)));
    s->stage = ST_RSET;
    return send_str(s, C_RSET, "RSET");
}
