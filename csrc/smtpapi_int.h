/*
 * smtpapi_int.h - what the parts of the X-SMTPAPI code share; not a public
 * header (see smtpapi.h). smtpapi.c reads the text (unfolding, the scanner
 * that builds the cJSON tree, problems, paths), smtpapi_rules.c checks the
 * rules on the tree, smtpapi_encode.c writes the folded header value.
 */
#ifndef SMTPKIT_SMTPAPI_INT_H
#define SMTPKIT_SMTPAPI_INT_H

#include <stdint.h>

#include "smtpapi.h"

/* A number written with a fraction or an exponent ("1.5", "1e9"): kept in a
 * type bit cJSON does not use (it masks types with 0xFF and tests only
 * cJSON_IsReference and cJSON_StringIsConst above that). */
#define NONINT_FLAG SMTPKIT_SMTPAPI_NONINT

/* Every node's valueint holds the offset of its first byte in the unfolded
 * text (numbers are read from valuedouble), for line/column numbers. */

#define PATH_MAX_LEN 240

typedef struct {
    char b[PATH_MAX_LEN + 8];
    size_t n;
} pathbuf;

typedef struct {
    const char *k;
    size_t len;
    uint32_t hash;
    size_t off;
} keyrec;

typedef struct {
    cJSON *node, *last;
    int is_obj;
    int has_cur;        /* a member/element is in progress */
    size_t count;       /* members/elements before the current one */
    const char *key;    /* the current member's key (arena) */
    size_t keylen;
    size_t key_base;    /* this object's first record in ctx.keys */
} frame;

typedef struct {
    const unsigned char *s;  /* unfolded JSON text */
    size_t n;
    size_t *folds;           /* unfolded offsets where a physical line starts */
    size_t nfolds, capfolds;
    size_t col0;             /* bytes before s on line 1 (the header name) */
    smtpkit_smtpapi_result *res;
    unsigned flags;
    long long now;
    char *arena;
    size_t au;
    keyrec *keys;
    size_t nkeys, capkeys;
    uint32_t *htab;
    size_t hcap;
    frame st[SMTPKIT_SMTPAPI_MAX_DEPTH + 1];
    int depth;
    cJSON *root;
    char decimal_point;
} ctx;

/* Bytes that stand for themselves inside a JSON string in an ASCII header. */
extern const unsigned char smtpkit_smtpapi_plain[256];

void smtpkit_smtpapi_add_problem(smtpkit_smtpapi_result *res, smtpkit_smtpapi_severity sev,
                                 const char *path, const char *msg, const char *excerpt,
                                 size_t excerpt_len, unsigned line, unsigned col);
/* A problem located at `off` in the unfolded text ((size_t)-1: nowhere);
 * with_excerpt: attach the text around it. */
void smtpkit_smtpapi_problem_at(ctx *c, smtpkit_smtpapi_severity sev, const char *path,
                                size_t off, int with_excerpt, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
void smtpkit_smtpapi_path_key(pathbuf *p, const char *k, size_t n);
void smtpkit_smtpapi_path_index(pathbuf *p, size_t i);
/* Length of the valid UTF-8 sequence at s, 0 when invalid; *cp its value. */
size_t smtpkit_smtpapi_utf8_len(const unsigned char *s, size_t avail, unsigned long *cp);
/* The rules of smtpapi.md sections 1.2, 2 and 5.1 on a parsed tree. */
void smtpkit_smtpapi_run_rules(ctx *c, const cJSON *root);

#endif
