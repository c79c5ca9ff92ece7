/*
 * reply.h - incremental SMTP reply parser (RFC 5321 section 4.2).
 *
 * Does no I/O and no allocation: the parser is a plain struct the caller owns
 * (embed it, or allocate it, and call smtpkit_reply_parser_init). Bytes may be
 * fed one at a time or many replies at once; the result is the same.
 *
 * Memory is bounded by the caps below. RFC 5321 section 4.5.3.1.5 allows 512
 * octets a reply line; real servers send longer ones (Microsoft's URLs), so we
 * accept four times that, but no more: a server that sends an endless line or
 * endless continuation lines gets a clean error, never unbounded buffering.
 */
#ifndef SMTPKIT_REPLY_H
#define SMTPKIT_REPLY_H

#include <stddef.h>

#define SMTPKIT_REPLY_MAX_LINE  2048   /* octets per line, "NNN-" and CRLF included */
#define SMTPKIT_REPLY_MAX_LINES 64     /* lines per reply */
#define SMTPKIT_REPLY_MAX_TEXT  16384  /* text of all lines together */
#define SMTPKIT_ENHANCED_MAX    12     /* "5.999.999" and its NUL fit */

/* One parsed reply. The text of line i (after "NNN-" or "NNN ", without CRLF)
 * is text[line_off[i] .. line_off[i] + line_len[i]); lines are stored one
 * after the other, separated by '\n', and text is NUL-terminated. */
typedef struct smtpkit_reply {
    int code;                                /* 200..599 */
    char enhanced[SMTPKIT_ENHANCED_MAX];     /* RFC 3463 "5.1.1", or "" */
    unsigned nlines;
    unsigned line_off[SMTPKIT_REPLY_MAX_LINES];
    unsigned line_len[SMTPKIT_REPLY_MAX_LINES];
    size_t text_len;
    char text[SMTPKIT_REPLY_MAX_TEXT + SMTPKIT_REPLY_MAX_LINES];
} smtpkit_reply;

typedef enum {
    SMTPKIT_REPLY_ERROR = -1,   /* malformed: see smtpkit_reply_parser_error() */
    SMTPKIT_REPLY_MORE  = 0,    /* all bytes consumed, reply not complete yet */
    SMTPKIT_REPLY_DONE  = 1     /* one reply complete: see parser->reply */
} smtpkit_reply_status;

typedef struct smtpkit_reply_parser {
    smtpkit_reply reply;
    unsigned col;        /* bytes of the current line seen so far */
    int line_code;       /* code digits of the current line */
    char sep;            /* '-', ' ' or 0 (line ended right after the code) */
    int saw_cr;
    int done;            /* a reply was returned: the next feed starts anew */
    char error[160];     /* set when the parser failed; sticky until reset */
} smtpkit_reply_parser;

/* Prepares p (no resources are held: nothing to free). */
void smtpkit_reply_parser_init(smtpkit_reply_parser *p);

/* Feeds len bytes. Stops after the end of one reply: *used (may be NULL) says
 * how many bytes were consumed, the rest belongs to the next reply. After
 * DONE, p->reply stays valid until the next call; the next call starts a new
 * reply. After ERROR, every call fails until smtpkit_reply_parser_init. */
smtpkit_reply_status smtpkit_reply_parser_feed(smtpkit_reply_parser *p,
                                               const char *buf, size_t len,
                                               size_t *used);

/* The error message after SMTPKIT_REPLY_ERROR; "" otherwise. Owned by p. */
const char *smtpkit_reply_parser_error(const smtpkit_reply_parser *p);

/* True when a reply has started but is not complete (bytes are pending). */
int smtpkit_reply_parser_pending(const smtpkit_reply_parser *p);

/* Finds an RFC 3463 enhanced status code ("4.7.1", "5.7.606") at the start of
 * s (after optional spaces and a '#'), whose class digit must be `klass`
 * (2, 4 or 5; 0 accepts any). Copies it into out (SMTPKIT_ENHANCED_MAX bytes)
 * and returns the length of s it spans, or 0 when there is none. */
size_t smtpkit_enhanced_scan(const char *s, size_t len, int klass, char *out);

#endif
