/*
 * smtpapi_encode.c - writes a parsed, valid X-SMTPAPI tree as a header
 * value: compact JSON, ASCII only (\uXXXX, surrogate pairs), folded with
 * CRLF + SP between tokens only (lines <= 78 where the tokens allow, never
 * over 998). See smtpkit_smtpapi_encode in smtpapi.h.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpapi_int.h"

/* ---- encoder ------------------------------------------------------------ */

/* Each token is written first, then placed: when it does not fit the line,
 * it moves 3 bytes right and a fold (CRLF SP) goes before it. Paths are
 * built only for an error, from the stack of containers being written. */

typedef struct {
    const cJSON *node;   /* the member/element being written */
    size_t index;
    int in_obj;
} enc_level;

typedef struct {
    char *b;
    size_t n, cap;
    size_t line;         /* length of the current physical line */
    int content;         /* a token is on the current line */
    size_t tail;         /* characters that must follow the next token on its
                            line (',' ':' and closing brackets) */
    int failed;
    int nomem;
    smtpkit_smtpapi_result *res;
    enc_level lv[SMTPKIT_SMTPAPI_MAX_DEPTH + 1];
    int depth;
    char decimal_point;
} enc;

static int enc_reserve(enc *e, size_t more)
{
    more += 3; /* room for a fold before the token */
    if (e->n + more + 1 > e->cap) {
        size_t cap = e->cap * 2;
        char *nb;
        while (cap < e->n + more + 1)
            cap *= 2;
        nb = realloc(e->b, cap);
        if (!nb) {
            e->nomem = 1;
            return 0;
        }
        e->b = nb;
        e->cap = cap;
    }
    return 1;
}

static void enc_too_long(enc *e, size_t len, const char *preview)
{
    char msg[400];
    pathbuf p;
    int d;
    p.n = 0;
    p.b[0] = 0;
    for (d = 0; d < e->depth && e->lv[d].node; d++) {
        if (e->lv[d].in_obj)
            smtpkit_smtpapi_path_key(&p, e->lv[d].node->string, strlen(e->lv[d].node->string));
        else
            smtpkit_smtpapi_path_index(&p, e->lv[d].index);
    }
    snprintf(msg, sizeof msg, "this value takes %zu characters as JSON%s%.30s%s: too "
             "long to fold, as a header line holds at most 998 characters (RFC 5322 "
             "section 2.1.1); shorten it", len, preview ? " (" : "",
             preview ? preview : "", preview ? "...)" : "");
    smtpkit_smtpapi_add_problem(e->res, SMTPKIT_SMTPAPI_ERROR, p.b, msg, NULL, 0, 0, 0);
    e->failed = 1;
}

/* The token of `len` bytes just written at e->b + e->n. breakable: a fold
 * may go before it to keep the line, with the e->tail characters that
 * follow the token, within 78; any token may be folded to stay within 998. */
static void enc_place(enc *e, size_t len, int breakable, const char *preview)
{
    /* the first token folds too when the header name leaves it no room
     * within 998 (a long opts->name_len) */
    if ((e->content && breakable && e->line + len + e->tail > SMTPKIT_SMTPAPI_SOFT_WIDTH)
        || (e->line > 1 && e->line + len > SMTPKIT_SMTPAPI_HARD_WIDTH)) {
        memmove(e->b + e->n + 3, e->b + e->n, len);
        memcpy(e->b + e->n, "\r\n ", 3);
        e->n += 3;
        e->line = 1;
    }
    if (e->line + len > SMTPKIT_SMTPAPI_HARD_WIDTH) {
        enc_too_long(e, len, preview);
        return;
    }
    e->n += len;
    e->line += len;
    e->content = 1;
}

static void enc_punct(enc *e, char ch, int breakable)
{
    if (!enc_reserve(e, 1))
        return;
    e->b[e->n] = ch;
    enc_place(e, 1, breakable, NULL);
}

static const char hexd[] = "0123456789abcdef";

static char *put_u(char *d, unsigned long u)
{
    d[0] = '\\';
    d[1] = 'u';
    d[2] = hexd[(u >> 12) & 15];
    d[3] = hexd[(u >> 8) & 15];
    d[4] = hexd[(u >> 4) & 15];
    d[5] = hexd[u & 15];
    return d + 6;
}

static void enc_string(enc *e, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    char *d, *d0;
    /* at most 6 output bytes per input byte (a control character) */
    if (!enc_reserve(e, 6 * strlen(str) + 2))
        return;
    d0 = d = e->b + e->n;
    *d++ = '"';
    for (;;) {
        unsigned char ch;
        while (smtpkit_smtpapi_plain[ch = *s]) {
            *d++ = (char)ch;
            s++;
        }
        if (!ch)
            break;
        if (ch == '"' || ch == '\\') {
            *d++ = '\\';
            *d++ = (char)ch;
            s++;
        } else if (ch < 0x80) {
            switch (ch) {
            case '\b': *d++ = '\\'; *d++ = 'b'; break;
            case '\f': *d++ = '\\'; *d++ = 'f'; break;
            case '\n': *d++ = '\\'; *d++ = 'n'; break;
            case '\r': *d++ = '\\'; *d++ = 'r'; break;
            case '\t': *d++ = '\\'; *d++ = 't'; break;
            default: d = put_u(d, ch); break;
            }
            s++;
        } else {
            unsigned long cp;
            size_t k = smtpkit_smtpapi_utf8_len(s, 4, &cp);  /* valid: the scanner checked */
            if (!k) {
                k = 1;
                cp = 0xFFFD;
            }
            if (cp >= 0x10000) {
                cp -= 0x10000;
                d = put_u(d, 0xD800 + (cp >> 10));
                d = put_u(d, 0xDC00 + (cp & 0x3FF));
            } else {
                d = put_u(d, cp);
            }
            s += k;
        }
    }
    *d++ = '"';
    enc_place(e, (size_t)(d - d0), 1, str);
}

static void enc_number(enc *e, double v)
{
    char buf[40];
    size_t n, i;
    if (v == floor(v) && fabs(v) < 1e15) {
        long long x = (long long)v;
        char *q = buf + sizeof buf;
        int neg = x < 0 || (x == 0 && signbit(v));
        unsigned long long u = x < 0 ? (unsigned long long)-x : (unsigned long long)x;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (neg)
            *--q = '-';
        n = (size_t)(buf + sizeof buf - q);
        memmove(buf, q, n);
    } else {
        char *end;
        n = (size_t)snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, &end) != v)
            n = (size_t)snprintf(buf, sizeof buf, "%.17g", v);
        if (!e->decimal_point) {
            const char *dp = localeconv()->decimal_point;
            e->decimal_point = dp && dp[0] ? dp[0] : '.';
        }
        for (i = 0; i < n; i++)
            if (buf[i] == e->decimal_point)
                buf[i] = '.';
    }
    if (!enc_reserve(e, n))
        return;
    memcpy(e->b + e->n, buf, n);
    enc_place(e, n, 1, NULL);
}

/* Recursion is bounded by SMTPKIT_SMTPAPI_MAX_DEPTH (the scanner refused
 * anything deeper). tail: the characters that follow x on its line without
 * a possible fold (',' or closing brackets). */
static void enc_value(enc *e, const cJSON *x, size_t tail)
{
    const cJSON *c;
    size_t i = 0;
    int t = x->type & 0xFF;
    switch (t) {
    case cJSON_Object:
    case cJSON_Array: {
        enc_level *lv = &e->lv[e->depth++];
        lv->in_obj = t == cJSON_Object;
        e->tail = x->child ? 0 : 1 + tail;
        enc_punct(e, t == cJSON_Object ? '{' : '[', 1);
        for (c = x->child; c; c = c->next, i++) {
            size_t after = c->next ? 1 : 1 + tail;
            lv->node = c;
            lv->index = i;
            if (c != x->child) {
                e->tail = 0;
                enc_punct(e, ',', 0);
            }
            if (t == cJSON_Object) {
                e->tail = 1;
                enc_string(e, c->string);
                e->tail = 0;
                enc_punct(e, ':', 0);
            }
            enc_value(e, c, after);
        }
        e->depth--;
        e->tail = 0;
        enc_punct(e, t == cJSON_Object ? '}' : ']', 0);
        break;
    }
    case cJSON_String:
        e->tail = tail;
        enc_string(e, x->valuestring);
        break;
    case cJSON_Number:
        e->tail = tail;
        enc_number(e, x->valuedouble);
        break;
    case cJSON_True:
    case cJSON_False:
    default: {
        const char *w = t == cJSON_True ? "true" : t == cJSON_False ? "false" : "null";
        size_t wl = strlen(w);
        e->tail = tail;
        if (enc_reserve(e, wl)) {
            memcpy(e->b + e->n, w, wl);
            enc_place(e, wl, 1, NULL);
        }
        break;
    }
    }
}

int smtpkit_smtpapi_encode(const char *json, size_t len,
                           const smtpkit_smtpapi_opts *opts,
                           char **out, size_t *outlen,
                           smtpkit_smtpapi_result *res)
{
    smtpkit_smtpapi_opts o;
    smtpkit_smtpapi_doc *doc;
    enc e;

    *out = NULL;
    *outlen = 0;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    o.flags |= SMTPKIT_SMTPAPI_ALLOW_UTF8 | SMTPKIT_SMTPAPI_NO_LINE_CHECK;
    doc = smtpkit_smtpapi_parse(json, len, &o, res);
    if (!doc)
        return res->nomem ? -1 : 0;
    if (res->errors) {
        smtpkit_smtpapi_doc_free(doc);
        return 0;
    }
    memset(&e, 0, sizeof e);
    e.res = res;
    e.cap = len + len / 4 + 64;
    e.b = malloc(e.cap);
    e.line = o.name_len ? o.name_len : SMTPKIT_SMTPAPI_NAME_LEN;
    if (!e.b) {
        smtpkit_smtpapi_doc_free(doc);
        res->nomem = 1;
        return -1;
    }
    enc_value(&e, smtpkit_smtpapi_doc_root(doc), 0);
    smtpkit_smtpapi_doc_free(doc);
    if (e.nomem || res->nomem) {
        free(e.b);
        res->nomem = 1;
        return -1;
    }
    if (e.failed) {
        free(e.b);
        return 0;
    }
    e.b[e.n] = 0;
    *out = e.b;
    *outlen = e.n;
    return 1;
}
