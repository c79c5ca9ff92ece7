/*
 * smtpapi.h - SendGrid X-SMTPAPI header: validation (with cJSON as the
 * document model) and encoding into a folded, ASCII-only header value.
 *
 * Facts and sources: ../shared/reference/smtpapi.md (sections 1, 2, 5.1).
 *
 * Does no I/O. Everything returned is owned by the caller and freed with the
 * function named next to it.
 *
 * How the text is read (one pass, no recursion):
 *   - the value may carry the header name ("X-SMTPAPI:", any case) and may be
 *     folded (CRLF or LF followed by a space or tab): it is unfolded first,
 *     and line/column numbers refer to the text as given (1-based; columns
 *     count bytes, and on line 1 they count the header name too);
 *   - a CR that does not start a CRLF is an error (a relay would take it
 *     for a line end), except in JSON text given to encode;
 *   - a hand-written scanner with an explicit stack checks the JSON grammar
 *     (RFC 8259), reports the first syntax error with line, column and an
 *     excerpt, finds duplicate keys in every object (hashing, linear time),
 *     refuses raw bytes >= 0x80 and control characters (they must be \u
 *     escapes) and bounds depth and size; it builds the cJSON tree as it
 *     goes, and the rules below are checked on that tree.
 *
 * Problem paths: `filters.clicktrack.settings.enable`, `sub["-name-"][2]`.
 * A key that is not an identifier ([A-Za-z_][A-Za-z0-9_]*) is written in
 * brackets as a JSON string; array indexes are 0-based (as in JavaScript and
 * jq); the empty path "" is the whole header.
 *
 * Memory: the input is capped (SMTPKIT_SMTPAPI_MAX_SIZE bytes), nesting is
 * capped (SMTPKIT_SMTPAPI_MAX_DEPTH), at most SMTPKIT_SMTPAPI_MAX_PROBLEMS
 * problems are kept (the rest are counted in `dropped`). Working memory is
 * linear in the input: the cJSON nodes, one copy of the decoded strings and
 * one record per object key.
 */
#ifndef SMTPKIT_SMTPAPI_H
#define SMTPKIT_SMTPAPI_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define SMTPKIT_SMTPAPI_MAX_SIZE     (4u << 20) /* bytes of header value, as given */
#define SMTPKIT_SMTPAPI_MAX_DEPTH    32         /* nested objects/arrays */
#define SMTPKIT_SMTPAPI_MAX_PROBLEMS 100        /* problems kept per run */
#define SMTPKIT_SMTPAPI_NAME_LEN     11         /* strlen("X-SMTPAPI: ") */
#define SMTPKIT_SMTPAPI_SOFT_WIDTH   78         /* RFC 5322 2.1.1 SHOULD */
#define SMTPKIT_SMTPAPI_HARD_WIDTH   998        /* RFC 5322 2.1.1 MUST */

typedef enum {
    SMTPKIT_SMTPAPI_ERROR = 0,
    SMTPKIT_SMTPAPI_WARNING = 1
} smtpkit_smtpapi_severity;

typedef struct smtpkit_smtpapi_problem {
    smtpkit_smtpapi_severity severity;
    char *path;        /* never NULL; "" = the whole header */
    char *message;     /* never NULL; plain words */
    char *excerpt;     /* text around the fault, or NULL */
    unsigned line;     /* 1-based, 0 when unknown */
    unsigned column;   /* 1-based, 0 when unknown */
} smtpkit_smtpapi_problem;

/* The problems of one run. Zero-initialise it (or call _result_init) before
 * use; free what it holds with smtpkit_smtpapi_result_free. */
typedef struct smtpkit_smtpapi_result {
    smtpkit_smtpapi_problem *problems;
    size_t count, cap;
    size_t errors, warnings;  /* counted over all problems, kept or dropped */
    size_t dropped;           /* problems past SMTPKIT_SMTPAPI_MAX_PROBLEMS */
    int nomem;                /* set when an allocation failed */
} smtpkit_smtpapi_result;

/* flags */
#define SMTPKIT_SMTPAPI_ALLOW_UTF8   1u  /* raw UTF-8 allowed in strings (JSON text
                                           given to encode); invalid UTF-8 is
                                           still an error */
#define SMTPKIT_SMTPAPI_NO_LINE_CHECK 2u /* no error for lines over 998 (the
                                           check applies only to text that
                                           carries the name or is folded:
                                           bare JSON is a value to encode) */

typedef struct smtpkit_smtpapi_opts {
    long long now;       /* UNIX time for the send_at horizon; 0 = time(NULL) */
    unsigned flags;
    unsigned name_len;   /* encode: length of "X-SMTPAPI: " on the first line;
                            0 = SMTPKIT_SMTPAPI_NAME_LEN; when the first
                            token does not fit within 998 after it, the
                            value starts with a fold (CRLF SP) */
} smtpkit_smtpapi_opts;

void smtpkit_smtpapi_result_init(smtpkit_smtpapi_result *res);
void smtpkit_smtpapi_result_free(smtpkit_smtpapi_result *res);

/* A parsed header: the cJSON tree plus the memory its strings live in.
 * The tree's string values and keys point into memory the doc owns: read
 * them, never free or modify them, and never use the tree after
 * smtpkit_smtpapi_doc_free. In this tree every node's valueint holds the
 * offset of the node in the unfolded text (read numbers from valuedouble),
 * and a number written with a fraction or an exponent ("1.5", "1e9") has
 * SMTPKIT_SMTPAPI_NONINT set in its type (a bit cJSON does not use: test
 * types with cJSON_Is*, which mask it out). */
#define SMTPKIT_SMTPAPI_NONINT (1 << 12)
typedef struct smtpkit_smtpapi_doc smtpkit_smtpapi_doc;

/* Reads and checks `text` (opts may be NULL). Problems are appended to res.
 * Returns the doc when the text is well-formed JSON (even if rules failed:
 * look at res->errors), NULL when it is not or memory ran out. The doc is
 * the caller's: free it with smtpkit_smtpapi_doc_free. */
smtpkit_smtpapi_doc *smtpkit_smtpapi_parse(const char *text, size_t len,
                                           const smtpkit_smtpapi_opts *opts,
                                           smtpkit_smtpapi_result *res);
const cJSON *smtpkit_smtpapi_doc_root(const smtpkit_smtpapi_doc *doc);
void smtpkit_smtpapi_doc_free(smtpkit_smtpapi_doc *doc);

/* Validates `text`: returns 1 when there is no error (warnings may be in
 * res), 0 when there are errors, -1 when memory ran out. */
int smtpkit_smtpapi_validate(const char *text, size_t len,
                             const smtpkit_smtpapi_opts *opts,
                             smtpkit_smtpapi_result *res);

/* Encodes JSON text (raw UTF-8 allowed in its strings) into an X-SMTPAPI
 * header value: validated first, compact, ASCII only (\uXXXX escapes,
 * surrogate pairs past U+FFFF), folded with CRLF + SP between JSON tokens
 * only, lines at most 78 characters where the tokens allow and never more
 * than 998 (the first line counts opts->name_len for the header name).
 * No trailing CRLF. Returns 1 and sets *out (malloc'd, NUL-terminated, the
 * caller frees it with free()) and *outlen; returns 0 with the problems in
 * res when the header is invalid or a token is too long to fold; -1 when
 * memory ran out. */
int smtpkit_smtpapi_encode(const char *json, size_t len,
                           const smtpkit_smtpapi_opts *opts,
                           char **out, size_t *outlen,
                           smtpkit_smtpapi_result *res);

#endif
