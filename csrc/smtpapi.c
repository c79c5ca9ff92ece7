/*
 * smtpapi.c - X-SMTPAPI header: reading the text (unfolding, the scanner
 * that builds the cJSON tree, problems, paths) and the parse/validate API.
 * Rules: smtpapi_rules.c; encoder: smtpapi_encode.c. See smtpapi.h; the facts
 * behind every rule are in ../shared/reference/smtpapi.md.
 */
#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtpapi_int.h"

#define EXCERPT_SIDE 20

struct smtpkit_smtpapi_doc {
    cJSON *root;
    char *arena;     /* decoded strings and keys, NUL-terminated */
    char *unfolded;  /* the unfolded copy of the text, when it had folds */
};

/* ---- problems ------------------------------------------------------- */

void smtpkit_smtpapi_result_init(smtpkit_smtpapi_result *res)
{
    memset(res, 0, sizeof *res);
}

void smtpkit_smtpapi_result_free(smtpkit_smtpapi_result *res)
{
    size_t i;
    for (i = 0; i < res->count; i++) {
        free(res->problems[i].path);
        free(res->problems[i].message);
        free(res->problems[i].excerpt);
    }
    free(res->problems);
    smtpkit_smtpapi_result_init(res);
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void smtpkit_smtpapi_add_problem(smtpkit_smtpapi_result *res, smtpkit_smtpapi_severity sev,
                        const char *path, const char *msg, const char *excerpt,
                        size_t excerpt_len, unsigned line, unsigned col)
{
    smtpkit_smtpapi_problem *p;
    if (sev == SMTPKIT_SMTPAPI_ERROR)
        res->errors++;
    else
        res->warnings++;
    if (res->count >= SMTPKIT_SMTPAPI_MAX_PROBLEMS) {
        res->dropped++;
        return;
    }
    if (res->count == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 8;
        smtpkit_smtpapi_problem *np = realloc(res->problems, cap * sizeof *np);
        if (!np) {
            res->nomem = 1;
            return;
        }
        res->problems = np;
        res->cap = cap;
    }
    p = &res->problems[res->count];
    p->severity = sev;
    p->line = line;
    p->column = col;
    p->path = dupn(path, strlen(path));
    p->message = dupn(msg, strlen(msg));
    p->excerpt = excerpt ? dupn(excerpt, excerpt_len) : NULL;
    if (!p->path || !p->message || (excerpt && !p->excerpt)) {
        free(p->path);
        free(p->message);
        free(p->excerpt);
        res->nomem = 1;
        return;
    }
    res->count++;
}

/* ---- paths ---------------------------------------------------------- */


static void path_raw(pathbuf *p, const char *s, size_t n)
{
    if (p->n >= PATH_MAX_LEN)
        return;
    if (p->n + n > PATH_MAX_LEN) {
        memcpy(p->b + p->n, s, PATH_MAX_LEN - p->n);
        p->n = PATH_MAX_LEN;
        memcpy(p->b + p->n, "...", 4);
        p->n += 3;
        return;
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
    p->b[p->n] = 0;
}

static int is_ident(const char *k, size_t n)
{
    size_t i;
    if (n == 0 || !(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return 0;
    for (i = 1; i < n; i++)
        if (!(isalnum((unsigned char)k[i]) || k[i] == '_'))
            return 0;
    return 1;
}

void smtpkit_smtpapi_path_key(pathbuf *p, const char *k, size_t n)
{
    size_t i;
    if (is_ident(k, n)) {
        if (p->n)
            path_raw(p, ".", 1);
        path_raw(p, k, n);
        return;
    }
    path_raw(p, "[\"", 2);
    for (i = 0; i < n && p->n < PATH_MAX_LEN; i++) {
        unsigned char c = (unsigned char)k[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            path_raw(p, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            path_raw(p, esc, 6);
        } else {
            path_raw(p, (const char *)&k[i], 1);
        }
    }
    path_raw(p, "\"]", 2);
}

void smtpkit_smtpapi_path_index(pathbuf *p, size_t i)
{
    char b[32], *e = b + sizeof b, *d = e;
    *--d = ']';
    do {
        *--d = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    *--d = '[';
    path_raw(p, d, (size_t)(e - d));
}

/* ---- the scanner ---------------------------------------------------- */


static void locate(const ctx *c, size_t off, unsigned *line, unsigned *col)
{
    size_t lo = 0, hi = c->nfolds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->folds[mid] <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *line = 1;
        *col = (unsigned)(c->col0 + off + 1);
    } else {
        *line = (unsigned)(lo + 1);
        *col = (unsigned)(off - c->folds[lo - 1] + 1);
    }
}

/* Adds a problem located at `off` in the unfolded text (off == (size_t)-1:
 * no location). with_excerpt: attach up to EXCERPT_SIDE bytes either side. */
void smtpkit_smtpapi_problem_at(ctx *c, smtpkit_smtpapi_severity sev, const char *path,
                       size_t off, int with_excerpt, const char *fmt, ...)
{
    char msg[512], ex[2 * EXCERPT_SIDE + 1];
    size_t exn = 0;
    unsigned line = 0, col = 0;
    va_list ap;

    if (c->res->count >= SMTPKIT_SMTPAPI_MAX_PROBLEMS) { /* only counted */
        smtpkit_smtpapi_add_problem(c->res, sev, "", "", NULL, 0, 0, 0);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (off != (size_t)-1) {
        if (off > c->n)
            off = c->n;
        locate(c, off, &line, &col);
        if (with_excerpt) {
            size_t a = off > EXCERPT_SIDE ? off - EXCERPT_SIDE : 0;
            size_t b = off + EXCERPT_SIDE < c->n ? off + EXCERPT_SIDE : c->n;
            size_t i;
            for (i = a; i < b; i++) {
                unsigned char ch = c->s[i];
                ex[exn++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
            }
        }
    }
    smtpkit_smtpapi_add_problem(c->res, sev, path, msg, with_excerpt ? ex : NULL, exn, line, col);
}

/* The path of the value the scanner is in. */
static void scan_path(const ctx *c, pathbuf *p)
{
    int d;
    p->n = 0;
    p->b[0] = 0;
    for (d = 0; d < c->depth; d++) {
        const frame *f = &c->st[d];
        if (!f->has_cur)
            break;
        if (f->is_obj)
            smtpkit_smtpapi_path_key(p, f->key, f->keylen);
        else
            smtpkit_smtpapi_path_index(p, f->count);
    }
}

static void scan_problem(ctx *c, size_t off, const char *fmt, const char *arg)
{
    pathbuf p;
    scan_path(c, &p);
    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, p.b, off, 1, fmt, arg);
}

/* A syntax error: the scan stops. Returns NULL for the caller to return. */
static cJSON *syntax(ctx *c, size_t off, const char *what)
{
    unsigned line, col;
    pathbuf p;
    if (off > c->n)
        off = c->n;
    locate(c, off, &line, &col);
    scan_path(c, &p);
    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, p.b, off, 1,
               "malformed JSON at line %u, column %u: %s", line, col, what);
    return NULL;
}

static int is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

static long hex4(const unsigned char *s, size_t avail)
{
    long v = 0;
    int i;
    if (avail < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static char *put_utf8(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        *d++ = (char)cp;
    } else if (cp < 0x800) {
        *d++ = (char)(0xC0 | (cp >> 6));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | (cp >> 12));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | (cp >> 18));
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), 0 when invalid. *cp gets the value. */
size_t smtpkit_smtpapi_utf8_len(const unsigned char *s, size_t avail, unsigned long *cp)
{
    unsigned char c0 = s[0];
    size_t n, i;
    unsigned long v, min;
    if (c0 < 0x80) {
        *cp = c0;
        return 1;
    } else if (c0 >= 0xC2 && c0 <= 0xDF) {
        n = 2; v = c0 & 0x1F; min = 0x80;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        n = 3; v = c0 & 0x0F; min = 0x800;
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        n = 4; v = c0 & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* Bytes that stand for themselves inside a JSON string in an ASCII header. */
#define P16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
const unsigned char smtpkit_smtpapi_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* '"' */
    P16, P16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* '\\' */
    P16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0    /* DEL */
};
#undef P16

/* Reads the string whose opening quote is at *pi into the arena. Returns 1
 * and sets *out and *outlen, or 0 after a syntax error. */
static int scan_string(ctx *c, size_t *pi, const char **out, size_t *outlen)
{
    const unsigned char *s = c->s;
    size_t n = c->n, i = *pi + 1;
    char *d0 = c->arena + c->au, *d = d0;
    int told_raw = 0, told_ctl = 0;

    for (;;) {
        unsigned char ch;
        {
            size_t j = i;
            while (j < n && smtpkit_smtpapi_plain[s[j]])
                j++;
            memcpy(d, s + i, j - i);
            d += j - i;
            i = j;
        }
        if (i >= n) {
            syntax(c, *pi, "a string is not closed (no ending '\"')");
            return 0;
        }
        ch = s[i];
        if (ch == '"') {
            i++;
            break;
        }
        if (ch == '\\') {
            unsigned char e;
            if (i + 1 >= n) {
                syntax(c, i, "a string is not closed (it ends in a backslash)");
                return 0;
            }
            e = s[i + 1];
            switch (e) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                long u = hex4(s + i + 2, n - i - 2);
                unsigned long cp;
                if (u < 0) {
                    syntax(c, i, "\\u must be followed by 4 hex digits");
                    return 0;
                }
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    syntax(c, i, "lone UTF-16 low surrogate: a character beyond U+FFFF "
                                 "is written as a pair such as \\ud83d\\ude00");
                    return 0;
                }
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = -1;
                    if (i + 7 < n && s[i + 6] == '\\' && s[i + 7] == 'u')
                        lo = hex4(s + i + 8, n - i - 8);
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        syntax(c, i, "lone UTF-16 high surrogate: a character beyond U+FFFF "
                                     "is written as a pair such as \\ud83d\\ude00");
                        return 0;
                    }
                    cp = 0x10000 + (((unsigned long)u - 0xD800) << 10)
                         + ((unsigned long)lo - 0xDC00);
                    i += 6;
                } else {
                    cp = (unsigned long)u;
                }
                if (cp == 0)
                    scan_problem(c, i, "%s\\u0000 (NUL) cannot be carried in a string", "");
                else
                    d = put_utf8(d, cp);
                i += 4;
                break;
            }
            default:
                syntax(c, i, "unknown escape: only \\\" \\\\ \\/ \\b \\f \\n \\r \\t "
                             "and \\uXXXX are JSON");
                return 0;
            }
            i += 2;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f) {
            if (!told_ctl) {
                char what[128];
                snprintf(what, sizeof what, "control character 0x%02X inside a string: "
                         "write it as \\u%04x", ch, ch);
                scan_problem(c, i, "%s", what);
                told_ctl = 1;
            }
            *d++ = (char)ch;
            i++;
            continue;
        }
        /* ch >= 0x80 */
        if (c->flags & SMTPKIT_SMTPAPI_ALLOW_UTF8) {
            unsigned long cp;
            size_t k = smtpkit_smtpapi_utf8_len(s + i, n - i, &cp);
            if (k) {
                memcpy(d, s + i, k);
                d += k;
                i += k;
                continue;
            }
            if (!told_raw) {
                char what[128];
                snprintf(what, sizeof what, "invalid UTF-8 (byte 0x%02X) inside a string", ch);
                scan_problem(c, i, "%s", what);
                told_raw = 1;
            }
        } else if (!told_raw) {
            char what[160];
            snprintf(what, sizeof what, "raw non-ASCII byte 0x%02X inside a string: the "
                     "header must be ASCII, write characters as \\u escapes "
                     "(smtpapi.encode does)", ch);
            scan_problem(c, i, "%s", what);
            told_raw = 1;
        }
        *d++ = (char)ch;
        i++;
    }
    *d++ = 0;
    *out = d0;
    *outlen = (size_t)(d - d0) - 1;
    c->au += (size_t)(d - d0);
    *pi = i;
    return 1;
}

static uint32_t hash_key(const char *k, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

static int same_key(const keyrec *a, const keyrec *b)
{
    return a->hash == b->hash && a->len == b->len && memcmp(a->k, b->k, a->len) == 0;
}

static void report_dup(ctx *c, const keyrec *k)
{
    pathbuf p;
    int d;
    if (c->res->count >= SMTPKIT_SMTPAPI_MAX_PROBLEMS) {
        smtpkit_smtpapi_add_problem(c->res, SMTPKIT_SMTPAPI_ERROR, "", "", NULL, 0, 0, 0);
        return;
    }
    p.n = 0;
    p.b[0] = 0;
    for (d = 0; d < c->depth - 1; d++) {
        const frame *f = &c->st[d];
        if (f->is_obj)
            smtpkit_smtpapi_path_key(&p, f->key, f->keylen);
        else
            smtpkit_smtpapi_path_index(&p, f->count);
    }
    smtpkit_smtpapi_path_key(&p, k->k, k->len);
    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, p.b, k->off, 1,
               "duplicate key: this object already has this key, and parsers keep "
               "only one of them silently; write each key once");
}

/* Duplicate keys of the object that closes now (its records are the last
 * ones: nested objects dropped theirs when they closed). Linear time. */
static int check_dups(ctx *c, frame *f)
{
    size_t base = f->key_base, n = c->nkeys - base, i, j;
    if (n >= 2 && n <= 8) {
        for (i = base + 1; i < c->nkeys; i++)
            for (j = base; j < i; j++)
                if (same_key(&c->keys[i], &c->keys[j])) {
                    report_dup(c, &c->keys[i]);
                    break;
                }
    } else if (n > 8) {
        size_t cap = 16, mask;
        while (cap < 2 * n)
            cap *= 2;
        if (cap > c->hcap) {
            uint32_t *t = realloc(c->htab, cap * sizeof *t);
            if (!t)
                return 0;
            c->htab = t;
            c->hcap = cap;
        }
        memset(c->htab, 0, cap * sizeof *c->htab);
        mask = cap - 1;
        for (i = base; i < c->nkeys; i++) {
            size_t h = c->keys[i].hash & mask;
            for (;;) {
                uint32_t e = c->htab[h];
                if (!e) {
                    c->htab[h] = (uint32_t)(i - base + 1);
                    break;
                }
                if (same_key(&c->keys[base + e - 1], &c->keys[i])) {
                    report_dup(c, &c->keys[i]);
                    break;
                }
                h = (h + 1) & mask;
            }
        }
    }
    c->nkeys = base;
    return 1;
}

static int add_key(ctx *c, const char *k, size_t len, size_t off)
{
    keyrec *r;
    if (c->nkeys == c->capkeys) {
        size_t cap = c->capkeys ? c->capkeys * 2 : 32;
        keyrec *nk = realloc(c->keys, cap * sizeof *nk);
        if (!nk)
            return 0;
        c->keys = nk;
        c->capkeys = cap;
    }
    r = &c->keys[c->nkeys++];
    r->k = k;
    r->len = len;
    r->hash = hash_key(k, len);
    r->off = off;
    return 1;
}

static void attach(ctx *c, cJSON *node, size_t off)
{
    node->valueint = (int)off;
    if (c->depth == 0) {
        c->root = node;
        return;
    } else {
        frame *f = &c->st[c->depth - 1];
        if (f->is_obj) {
            node->string = (char *)f->key;
            node->type |= cJSON_StringIsConst;
        } else {
            f->has_cur = 1;
        }
        if (!f->node->child) {
            f->node->child = node;
            node->prev = node;
        } else {
            f->last->next = node;
            node->prev = f->last;
            f->node->child->prev = node;
        }
        f->last = node;
    }
}

/* Reads `"key" :` at *pi (after whitespace). Returns 1, or 0 after an error. */
static int scan_key(ctx *c, size_t *pi)
{
    frame *f = &c->st[c->depth - 1];
    size_t i = *pi, off;
    const char *k;
    size_t klen;
    while (i < c->n && is_ws(c->s[i]))
        i++;
    if (i >= c->n || c->s[i] != '"') {
        if (i < c->n && c->s[i] == '}')
            syntax(c, i, "a comma is followed by '}': JSON allows no trailing comma");
        else if (i < c->n && c->s[i] == '\'')
            syntax(c, i, "keys are written in double quotes, not single quotes");
        else
            syntax(c, i, i >= c->n ? "the JSON ends where a key was expected"
                                   : "expected a key in double quotes");
        return 0;
    }
    off = i;
    if (!scan_string(c, &i, &k, &klen))
        return 0;
    if (!add_key(c, k, klen, off)) {
        c->res->nomem = 1;
        return 0;
    }
    f->key = k;
    f->keylen = klen;
    f->has_cur = 1;
    while (i < c->n && is_ws(c->s[i]))
        i++;
    if (i >= c->n || c->s[i] != ':') {
        syntax(c, i, i >= c->n ? "the JSON ends where ':' was expected"
                               : "expected ':' after the key");
        return 0;
    }
    *pi = i + 1;
    return 1;
}

static cJSON *scan_number(ctx *c, size_t *pi)
{
    const unsigned char *s = c->s;
    size_t n = c->n, i = *pi, st = i;
    int nonint = 0, neg = 0;
    double v;
    cJSON *node;

    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9')
            return syntax(c, st, "numbers must not have leading zeros");
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return syntax(c, st, "'-' must be followed by digits");
    }
    if (i < n && s[i] == '.') {
        nonint = 1;
        i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9'))
            return syntax(c, i, "digits expected after the decimal point");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] | 0x20) == 'e') {
        nonint = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9'))
            return syntax(c, i, "digits expected in the exponent");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (!nonint && i - st - (size_t)neg <= 15) {
        long long x = 0;
        size_t k;
        for (k = st + (size_t)neg; k < i; k++)
            x = x * 10 + (s[k] - '0');
        v = (double)(neg ? -x : x);
    } else {
        char buf[72], *end;
        size_t k, len = i - st;
        if (len > 63)
            return syntax(c, st, "number longer than 63 characters");
        if (!c->decimal_point) {
            const char *dp = localeconv()->decimal_point;
            c->decimal_point = dp && dp[0] ? dp[0] : '.';
        }
        for (k = 0; k < len; k++)
            buf[k] = s[st + k] == '.' ? c->decimal_point : (char)s[st + k];
        buf[len] = 0;
        v = strtod(buf, &end);
        if (!isfinite(v))
            return syntax(c, st, "number out of range");
    }
    node = cJSON_CreateNumber(v);
    if (!node) {
        c->res->nomem = 1;
        return NULL;
    }
    if (nonint)
        node->type |= NONINT_FLAG;
    *pi = i;
    return node;
}

/* The whole document, without recursion. Returns the root, or NULL (a
 * syntax error was reported, or memory ran out). The partial tree, if any,
 * is in c->root for the caller to free. */
static cJSON *scan(ctx *c)
{
    const unsigned char *s = c->s;
    size_t n = c->n, i = 0;
    int after = 0;

    for (;;) {
        while (i < n && is_ws(s[i]))
            i++;
        if (!after) {
            size_t start = i;
            cJSON *node = NULL;
            unsigned char ch;
            if (i >= n)
                return syntax(c, i, c->depth ? "the JSON ends where a value was expected"
                                             : "the header is empty: it must hold one JSON object");
            ch = s[i];
            switch (ch) {
            case '{':
            case '[': {
                frame *f;
                if (c->depth >= SMTPKIT_SMTPAPI_MAX_DEPTH)
                    return syntax(c, i, "nested deeper than 32 levels");
                node = ch == '{' ? cJSON_CreateObject() : cJSON_CreateArray();
                if (!node) {
                    c->res->nomem = 1;
                    return NULL;
                }
                attach(c, node, start);
                f = &c->st[c->depth++];
                f->node = node;
                f->last = NULL;
                f->is_obj = ch == '{';
                f->has_cur = 0;
                f->count = 0;
                f->key = NULL;
                f->keylen = 0;
                f->key_base = c->nkeys;
                i++;
                while (i < n && is_ws(s[i]))
                    i++;
                if (i < n && s[i] == (ch == '{' ? '}' : ']')) {
                    i++;
                    c->depth--;
                    after = 1;
                    continue;
                }
                if (ch == '{' && !scan_key(c, &i))
                    return NULL;
                continue;
            }
            case '"': {
                const char *str;
                size_t slen;
                if (!scan_string(c, &i, &str, &slen))
                    return NULL;
                node = cJSON_CreateStringReference(str);
                break;
            }
            case 't':
            case 'f':
            case 'n': {
                const char *w = ch == 't' ? "true" : ch == 'f' ? "false" : "null";
                size_t wl = strlen(w);
                if (n - i < wl || memcmp(s + i, w, wl) != 0)
                    return syntax(c, i, "expected a value (object, array, string, number, "
                                        "true, false or null)");
                node = ch == 't' ? cJSON_CreateTrue() : ch == 'f' ? cJSON_CreateFalse()
                                                                   : cJSON_CreateNull();
                i += wl;
                break;
            }
            default:
                if (ch == '-' || (ch >= '0' && ch <= '9')) {
                    node = scan_number(c, &i);
                    if (!node)
                        return NULL;
                    break;
                }
                if (ch == ']' || ch == '}')
                    return syntax(c, i, c->depth && c->st[c->depth - 1].count
                                  ? "a comma is followed by a closing bracket: JSON allows "
                                    "no trailing comma"
                                  : "expected a value, found a closing bracket");
                if (ch == '\'')
                    return syntax(c, i, "strings are written in double quotes, not single quotes");
                if (ch >= 0x80)
                    return syntax(c, i, "raw non-ASCII byte where a value was expected");
                return syntax(c, i, "expected a value (object, array, string, number, "
                                    "true, false or null)");
            }
            if (!node) {
                c->res->nomem = 1;
                return NULL;
            }
            attach(c, node, start);
            after = 1;
            continue;
        }
        /* after a value */
        if (c->depth == 0) {
            if (i < n)
                return syntax(c, i, "text after the end of the JSON value");
            return c->root;
        } else {
            frame *f = &c->st[c->depth - 1];
            if (i >= n)
                return syntax(c, i, f->is_obj ? "the JSON ends inside an object: expected ',' or '}'"
                                              : "the JSON ends inside an array: expected ',' or ']'");
            if (s[i] == ',') {
                i++;
                f->count++;
                f->has_cur = 0;
                if (f->is_obj && !scan_key(c, &i))
                    return NULL;
                after = 0;
                continue;
            }
            if (s[i] == (f->is_obj ? '}' : ']')) {
                i++;
                if (f->is_obj && !check_dups(c, f)) {
                    c->res->nomem = 1;
                    return NULL;
                }
                c->depth--;
                continue;
            }
            return syntax(c, i, f->is_obj ? "expected ',' or '}' after an object member"
                                          : "expected ',' or ']' after an array element");
        }
    }
}

/* ---- unfolding ---------------------------------------------------------- */

static int add_fold(ctx *c, size_t off)
{
    if (c->nfolds == c->capfolds) {
        size_t cap = c->capfolds ? c->capfolds * 2 : 16;
        size_t *nf = realloc(c->folds, cap * sizeof *nf);
        if (!nf)
            return 0;
        c->folds = nf;
        c->capfolds = cap;
    }
    c->folds[c->nfolds++] = off;
    return 1;
}

static void line_error(ctx *c, unsigned line, size_t len)
{
    char path[1] = "";
    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, path, (size_t)-1, 0,
               "line %u is %zu characters long: a header line must not exceed 998 "
               "(RFC 5322 section 2.1.1) and relays break longer ones; fold it "
               "(smtpapi.encode does)", line, len);
}

/* Strips the header name and the final line end, unfolds. Returns 1, or 0
 * when memory ran out. */
static int unfold(ctx *c, const char *text, size_t len, char **copy)
{
    size_t i, o = 0, linelen, line = 1;
    char *d;
    int told_line = (c->flags & SMTPKIT_SMTPAPI_NO_LINE_CHECK) != 0;
    int told_bare = 0;

    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'
                   || text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    c->col0 = 0;
    if (len >= 10 && strncasecmp(text, "x-smtpapi:", 10) == 0) {
        text += 10;
        len -= 10;
        c->col0 = 10;
    }
    /* A CR that does not start a CRLF is a control character of the header
     * value (RFC 5322 allows CR only in CRLF): JSON would take it for white
     * space, a relay for a line end. JSON text given to encode is
     * re-serialised, so there it is only white space. */
    if (!(c->flags & SMTPKIT_SMTPAPI_ALLOW_UTF8)) {
        const char *cr = memchr(text, '\r', len);
        while (cr && cr + 1 < text + len && cr[1] == '\n')
            cr = memchr(cr + 1, '\r', len - (size_t)(cr + 1 - text));
        if (cr) {
            size_t at = (size_t)(cr - text), k, ln = 1, ls = 0;
            for (k = 0; k < at; k++)
                if (text[k] == '\n') {
                    ln++;
                    ls = k + 1;
                }
            smtpkit_smtpapi_add_problem(c->res, SMTPKIT_SMTPAPI_ERROR, "",
                "a carriage return (CR) not followed by a line feed: a header holds CR only "
                "in CRLF line ends; remove it", NULL, 0, (unsigned)ln,
                (unsigned)((ln == 1 ? c->col0 : 0) + at - ls + 1));
        }
    }
    if (!memchr(text, '\n', len)) {
        c->s = (const unsigned char *)text;
        c->n = len;
        /* bare JSON (no name, no fold) is a value still to be encoded: the
         * line rule applies to headers as they appear in a message */
        if (!told_line && c->col0 && c->col0 + len > SMTPKIT_SMTPAPI_HARD_WIDTH)
            line_error(c, 1, c->col0 + len);
        return 1;
    }
    d = *copy = malloc(len + 1);
    if (!d)
        return 0;
    c->s = (const unsigned char *)d;
    linelen = c->col0;
    for (i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '\r' && i + 1 < len && text[i + 1] == '\n')
            continue;
        if (ch == '\n') {
            if (!told_line && linelen > SMTPKIT_SMTPAPI_HARD_WIDTH) {
                line_error(c, (unsigned)line, linelen);
                told_line = 1;
            }
            line++;
            linelen = 0;
            if (!add_fold(c, o))
                return 0;
            if (!told_bare && (i + 1 >= len || (text[i + 1] != ' ' && text[i + 1] != '\t'))) {
                c->n = len; /* for locate: the copy is still growing */
                if (len - i - 1 >= 10 && strncasecmp(text + i + 1, "x-smtpapi:", 10) == 0)
                    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, "", o, 0,
                               "a second X-SMTPAPI header: SendGrid uses only the first "
                               "one; send one header per message");
                else
                    smtpkit_smtpapi_problem_at(c, SMTPKIT_SMTPAPI_ERROR, "", o, 0,
                               "line break not followed by a space or tab: the header ends "
                               "here in a mail message; fold lines with CRLF and a space");
                told_bare = 1;
            }
            continue;
        }
        d[o++] = ch;
        linelen++;
    }
    if (!told_line && linelen > SMTPKIT_SMTPAPI_HARD_WIDTH)
        line_error(c, (unsigned)line, linelen);
    d[o] = 0;
    c->n = o;
    return 1;
}

/* ---- parse / validate ---------------------------------------------------- */

static void ctx_free(ctx *c)
{
    free(c->folds);
    free(c->keys);
    free(c->htab);
}

smtpkit_smtpapi_doc *smtpkit_smtpapi_parse(const char *text, size_t len,
                                           const smtpkit_smtpapi_opts *opts,
                                           smtpkit_smtpapi_result *res)
{
    ctx c;
    smtpkit_smtpapi_doc *doc;
    cJSON *root;

    memset(&c, 0, sizeof c);
    c.res = res;
    c.flags = opts ? opts->flags : 0;
    c.now = opts && opts->now ? opts->now : (long long)time(NULL);
    if (len > SMTPKIT_SMTPAPI_MAX_SIZE) {
        smtpkit_smtpapi_add_problem(res, SMTPKIT_SMTPAPI_ERROR, "", "the header is larger than the 4 MiB smtpkit accepts",
                    NULL, 0, 0, 0);
        return NULL;
    }
    doc = calloc(1, sizeof *doc);
    if (!doc) {
        res->nomem = 1;
        return NULL;
    }
    if (!unfold(&c, text, len, &doc->unfolded))
        goto nomem;
    doc->arena = malloc(c.n + 1);
    if (!doc->arena)
        goto nomem;
    c.arena = doc->arena;
    root = scan(&c);
    doc->root = c.root;
    if (!root)
        goto fail;
    smtpkit_smtpapi_run_rules(&c, root);
    ctx_free(&c);
    if (res->nomem) {
        smtpkit_smtpapi_doc_free(doc);
        return NULL;
    }
    return doc;
nomem:
    res->nomem = 1;
fail:
    ctx_free(&c);
    smtpkit_smtpapi_doc_free(doc);
    return NULL;
}

const cJSON *smtpkit_smtpapi_doc_root(const smtpkit_smtpapi_doc *doc)
{
    return doc->root;
}

void smtpkit_smtpapi_doc_free(smtpkit_smtpapi_doc *doc)
{
    if (!doc)
        return;
    if (doc->root)
        cJSON_Delete(doc->root);
    free(doc->arena);
    free(doc->unfolded);
    free(doc);
}

int smtpkit_smtpapi_validate(const char *text, size_t len,
                             const smtpkit_smtpapi_opts *opts,
                             smtpkit_smtpapi_result *res)
{
    smtpkit_smtpapi_doc *doc = smtpkit_smtpapi_parse(text, len, opts, res);
    smtpkit_smtpapi_doc_free(doc);
    if (res->nomem)
        return -1;
    return res->errors == 0;
}

