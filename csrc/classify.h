/*
 * classify.h - an SMTP reply, in any form users meet it, becomes a decision:
 * outcome, reason, advised action, retry or not, and one human line.
 *
 * The vocabulary is fixed (README "Classification vocabulary"; the source is
 * shared/reference/classification.md section 1). The rules are one table of
 * data in classify_rules.h. Classification allocates nothing and keeps no
 * state: it is safe from any thread. The phrase index (about 30 KB, static)
 * is built on the first call, once, under pthread_once, and only read after.
 */
#ifndef SMTPKIT_CLASSIFY_H
#define SMTPKIT_CLASSIFY_H

#include <stddef.h>
#include "reply.h"

typedef enum {
    SMTPKIT_OUTCOME_DELIVERED,
    SMTPKIT_OUTCOME_DEFERRED,
    SMTPKIT_OUTCOME_BOUNCED,
    SMTPKIT_OUTCOME_BLOCKED,
    SMTPKIT_OUTCOME_UNKNOWN,
    SMTPKIT_OUTCOME_COUNT
} smtpkit_outcome;

typedef enum {
    SMTPKIT_REASON_ACCEPTED,
    SMTPKIT_REASON_USER_UNKNOWN,
    SMTPKIT_REASON_INVALID_ADDRESS,
    SMTPKIT_REASON_DOMAIN_NOT_FOUND,
    SMTPKIT_REASON_MAILBOX_DISABLED,
    SMTPKIT_REASON_MAILBOX_FULL,
    SMTPKIT_REASON_MESSAGE_TOO_LARGE,
    SMTPKIT_REASON_MESSAGE_INVALID,
    SMTPKIT_REASON_SPAM_CONTENT,
    SMTPKIT_REASON_VIRUS_DETECTED,
    SMTPKIT_REASON_BLOCKLISTED,
    SMTPKIT_REASON_REPUTATION,
    SMTPKIT_REASON_AUTH_FAILED,
    SMTPKIT_REASON_REVERSE_DNS,
    SMTPKIT_REASON_SENDER_REJECTED,
    SMTPKIT_REASON_TLS_REQUIRED,
    SMTPKIT_REASON_AUTH_REQUIRED,
    SMTPKIT_REASON_RELAY_DENIED,
    SMTPKIT_REASON_POLICY,
    SMTPKIT_REASON_RATE_LIMITED,
    SMTPKIT_REASON_TOO_MANY_CONNECTIONS,
    SMTPKIT_REASON_TOO_MANY_RECIPIENTS,
    SMTPKIT_REASON_GREYLISTED,
    SMTPKIT_REASON_TEMPORARY_FAILURE,
    SMTPKIT_REASON_NETWORK_ERROR,
    SMTPKIT_REASON_ROUTING_ERROR,
    SMTPKIT_REASON_PROTOCOL_ERROR,
    SMTPKIT_REASON_EXPIRED,
    SMTPKIT_REASON_SUPPRESSED,
    SMTPKIT_REASON_UNKNOWN,
    SMTPKIT_REASON_COUNT
} smtpkit_reason;

typedef enum {
    SMTPKIT_ACTION_NONE,
    SMTPKIT_ACTION_RETRY,
    SMTPKIT_ACTION_REDUCE_RATE,
    SMTPKIT_ACTION_REMOVE_ADDRESS,
    SMTPKIT_ACTION_FIX_MESSAGE,
    SMTPKIT_ACTION_FIX_CONFIGURATION,
    SMTPKIT_ACTION_FIX_REPUTATION,
    SMTPKIT_ACTION_REVIEW,
    SMTPKIT_ACTION_COUNT
} smtpkit_action;

/* The classification of one reply. Pointers point into static data or into
 * the classified input (text), never into memory the caller must free. */
typedef struct smtpkit_verdict {
    int code;                              /* reply code, 0 when none was found */
    char enhanced[SMTPKIT_ENHANCED_MAX];   /* "5.1.1", or "" */
    const char *text;                      /* the reply's text within the input */
    size_t text_len;
    smtpkit_outcome outcome;
    smtpkit_reason reason;
    smtpkit_action action;
    int retry;                             /* 1: send again later */
    const char *explanation;               /* one human line, static */
} smtpkit_verdict;

/* Classifies a string as users meet it: a bare reply ("550 5.1.1 ..."), a
 * multi-line reply, a DSN Diagnostic-Code ("smtp; 550 ..."), or an MTA's
 * wrapping ("host mx[192.0.2.1] said: 550 ... (in reply to RCPT TO command)").
 * Never fails: what cannot be read is outcome UNKNOWN. */
void smtpkit_classify(const char *s, size_t len, smtpkit_verdict *out);

/* Classifies a reply the parser produced (code and enhanced code known). */
void smtpkit_classify_reply(const smtpkit_reply *r, smtpkit_verdict *out);

/* Names of the vocabulary ("deferred", "user_unknown", "remove_address"),
 * static strings; NULL for a value out of range. */
const char *smtpkit_outcome_name(smtpkit_outcome o);
const char *smtpkit_reason_name(smtpkit_reason r);
const char *smtpkit_action_name(smtpkit_action a);

/* Classifies a reply whose parts are already known: code (0 when none),
 * enhanced ("5.1.1"; "" or NULL when none; ignored when its class disagrees
 * with the code's), and the text. out->text points into text. */
void smtpkit_classify_parts(int code, const char *enhanced, const char *text,
                            size_t len, smtpkit_verdict *out);

/* --- For bindings that build the result without the Lua C API ----------- */

/* smtpkit_classify's verdict plus what LuaJIT's FFI binding
 * (lua/smtpkit/classify_ffi.lua) needs to build its table from cached
 * strings: every field a number, no string to create but the text. */
typedef struct smtpkit_keyed_verdict {
    smtpkit_verdict v;       /* as smtpkit_classify fills it */
    size_t text_off;         /* v.text - s: the text is s[text_off, text_off + v.text_len) */
    unsigned enhanced_key;   /* 0: no enhanced code; else a number (< 2^32) no other
                                enhanced code string gives */
    int text_lines;          /* 1: the text holds a CR or LF, so the Lua binding joins
                                its lines (lua_classify.c push_text); 0: it is used as is */
} smtpkit_keyed_verdict;

/* smtpkit_classify(s, len, &out->v), then the fields above. Allocates
 * nothing; out->v.text points into s. */
void smtpkit_classify_keyed(const char *s, size_t len, smtpkit_keyed_verdict *out);

/* --- The rules, for tools and the vocabulary spec ------------------------ */

typedef enum {
    SMTPKIT_RULE_PHRASE,     /* text phrase, decisive: wins over the enhanced code */
    SMTPKIT_RULE_HINT,       /* text phrase, weak: used when the enhanced code is
                                absent or generic (X.0.0, X.7.1, ...) */
    SMTPKIT_RULE_ENHANCED,   /* RFC 3463 code table entry */
    SMTPKIT_RULE_CODE        /* reply code table entry (last resort) */
} smtpkit_rule_kind;

#define SMTPKIT_RULE_RCPT_SIDE 1u   /* a rate limit of the recipient: 5xx is bounced */
#define SMTPKIT_RULE_GENERIC   2u   /* enhanced entry that phrase hints override */

typedef struct smtpkit_rule_info {
    smtpkit_rule_kind kind;
    const char *match;      /* static: phrase (lowercase; '*' separates fragments
                               that must appear in this order), "X.7.606-649", "554" */
    smtpkit_reason reason;
    unsigned flags;         /* SMTPKIT_RULE_* */
} smtpkit_rule_info;

/* Number of rules; rule i (0 <= i < count) into *out: returns 0 past the end. */
size_t smtpkit_classify_rule_count(void);
int smtpkit_classify_rule(size_t i, smtpkit_rule_info *out);

/* The verdict rule i gives for a reply of class klass (2..5; 0 for a string
 * with no code at all); out->text is NULL. Returns 0 past the end. */
int smtpkit_classify_rule_verdict(size_t i, int klass, smtpkit_verdict *out);

#endif
