/*
 * session.h - the SMTP client engine. It does NO I/O (sans-I/O): it is handed
 * what the transport saw (server bytes, "TLS handshake done", "connection
 * closed", "timeout") and hands back bytes to write plus what it wants next.
 * It never calls read, write, connect, poll or OpenSSL, and keeps no globals:
 * one session per connection, used from one thread at a time.
 *
 * The transport's loop (C with poll() + OpenSSL in net.c, or Lua cosockets):
 *
 *     s = smtpkit_session_new(&opts, err, sizeof err);   // then connect
 *     for (;;) switch (smtpkit_session_want(s)) {
 *     case SMTPKIT_WANT_WRITE:   // write ALL of it, in one write if you can
 *         p = smtpkit_session_output(s, &n); n = write(p, n);
 *         smtpkit_session_written(s, n); break;          // partial is fine
 *     case SMTPKIT_WANT_READ:    // timeout: smtpkit_phase_timeout(phase)
 *         n = read(buf); n > 0 ? smtpkit_session_receive(s, buf, n)
 *                      : n == 0 ? smtpkit_session_eof(s)
 *                      : smtpkit_session_timeout(s) / _abort(s, ...); break;
 *     case SMTPKIT_WANT_TLS:     // handshake on the same socket, then
 *         smtpkit_session_tls_done(s) (or _abort(s, SMTPKIT_ERR_TLS, why)); break;
 *     case SMTPKIT_WANT_READY:   // logged in, idle: begin a transaction or quit
 *         smtpkit_session_begin(s, &env) or smtpkit_session_quit(s); break;
 *     case SMTPKIT_WANT_BODY:    // give the body (again from its first byte
 *         ...                    // when smtpkit_session_body_pass changed)
 *         smtpkit_session_body(s, chunk, len, &used) ... smtpkit_session_body_end(s);
 *     case SMTPKIT_WANT_DONE:    // QUIT answered: close the connection
 *     case SMTPKIT_WANT_FAILED:  // see smtpkit_session_error(): close
 *     }
 *     after a transaction (want READY again, or FAILED): smtpkit_session_result(s)
 *
 * Write grouping: the output holds whole groups. Pipelined MAIL/RCPT.../DATA
 * are one group; the body's last bytes and the end-of-data ".\r\n" are always
 * in the same output (never write them separately: Nagle + delayed ACK costs
 * 40 ms a message). While the body streams, want stays BODY until the output
 * is full (smtpkit_session_body consumed less than it was given); write when
 * want says WRITE, not after every chunk.
 *
 * Memory is bounded: the output buffer has a fixed size (options.output_max),
 * body chunks are encoded into it only when there is room; the reply parser
 * is embedded (no allocation); a transaction allocates its recipients'
 * results once at begin (SMTPKIT_SESSION_MAX_RCPT at most).
 */
#ifndef SMTPKIT_SESSION_H
#define SMTPKIT_SESSION_H

#include <stddef.h>
#include "reply.h"
#include "classify.h"

#define SMTPKIT_SESSION_MAX_RCPT      1000   /* recipients per transaction */
#define SMTPKIT_SESSION_MAX_ADDRESS   254    /* octets of an address, no <> */
#define SMTPKIT_SESSION_MAX_HELO      255    /* octets of the EHLO/HELO name */
#define SMTPKIT_SESSION_MAX_CRED      4096   /* octets of username, password, token
                                              * (OAuth2 tokens run to a few KiB) */
#define SMTPKIT_SESSION_OUTPUT_DEFAULT 65536 /* output buffer, octets */
#define SMTPKIT_SESSION_OUTPUT_MIN    16384  /* an AUTH line fits (RFC 4954: 12288) */
#define SMTPKIT_SESSION_WINDOW_DEFAULT 4096  /* unanswered pipelined command octets
                                              * (Postfix keeps 4 KiB) */
#define SMTPKIT_SESSION_REPLY_TEXT    1024   /* reply text kept per result, octets */
#define SMTPKIT_SESSION_QUEUE_ID      128    /* queue id kept, NUL included */
#define SMTPKIT_SESSION_MESSAGE       256    /* error message, NUL included */

/* --- options ------------------------------------------------------------- */

typedef enum {
    SMTPKIT_TLS_STARTTLS = 0,      /* STARTTLS required (the default): not
                                    * offered -> error kind tls_required */
    SMTPKIT_TLS_OPPORTUNISTIC,     /* STARTTLS when offered, plaintext otherwise */
    SMTPKIT_TLS_IMPLICIT,          /* TLS from the first byte (port 465) */
    SMTPKIT_TLS_NONE               /* never TLS */
} smtpkit_tls_policy;

/* direction of a trace line */
#define SMTPKIT_TRACE_SEND 0       /* client -> server, without CRLF */
#define SMTPKIT_TRACE_RECV 1       /* server -> client, one reply line "250-..." */
#define SMTPKIT_TRACE_INFO 2       /* the engine's note: "[TLS handshake]", "[body: N octets]" */

typedef struct smtpkit_session_options {
    const char *helo_name;         /* EHLO/HELO argument; NULL -> "localhost" */
    smtpkit_tls_policy tls;
    int tls_active;                /* 1: the channel is already TLS (the transport
                                    * did the implicit handshake before creating
                                    * the session); with tls = IMPLICIT and 0, the
                                    * session first wants TLS */
    const char *username;          /* AUTH identity (NULL: no AUTH) */
    const char *password;          /* for PLAIN / LOGIN */
    const char *xoauth2_token;     /* OAuth2 bearer token: XOAUTH2 (username too) */
    const char *auth_mechanism;    /* "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2" to
                                    * force one; NULL: the best offered that the
                                    * credentials allow: XOAUTH2 (token), then over
                                    * TLS PLAIN > LOGIN > CRAM-MD5, in plaintext
                                    * (allow_plaintext_auth) CRAM-MD5 first */
    int allow_plaintext_auth;      /* 1: AUTH even without TLS (default 0) */
    int pipelining;                /* 1 (default): pipeline when offered; 0 never */
    size_t pipeline_window;        /* unanswered command octets; 0 -> default */
    size_t output_max;             /* output buffer octets; 0 -> default */
    /* Non-NULL: resume a connection that is already past the greeting, EHLO
     * (whose capabilities these are: copied) and AUTH, and idle between
     * transactions - a pooled one. The session starts READY (tls_active says
     * whether the channel is TLS); its first transaction begins with RSET
     * (RFC 5321 4.1.1.5: clears what the connection's last user left, and
     * its reply proves the connection alive), pipelined with MAIL when
     * PIPELINING is offered: no round trip of its own. A server that closed
     * the connection meanwhile fails it before MAIL was answered:
     * smtpkit_session_resendable says 1. */
    const struct smtpkit_caps *resume;
    /* Called synchronously for every line sent and received, AUTH payloads and
     * credentials replaced by "[redacted]". line is not NUL-terminated and is
     * valid only during the call. The engine must not be called from it. */
    void (*trace)(void *ud, int direction, const char *line, size_t len);
    void *trace_ud;
} smtpkit_session_options;

/* Fills o with the defaults (starttls, pipelining on, default sizes). */
void smtpkit_session_options_init(smtpkit_session_options *o);

/* --- what the session wants, and in which phase ------------------------- */

typedef enum {
    SMTPKIT_WANT_WRITE,   /* output is pending: smtpkit_session_output/_written */
    SMTPKIT_WANT_READ,    /* waiting for the server: read, then _receive/_eof */
    SMTPKIT_WANT_TLS,     /* do the TLS handshake now, then _tls_done */
    SMTPKIT_WANT_BODY,    /* give body bytes: _body, then _body_end */
    SMTPKIT_WANT_READY,   /* idle and logged in: _begin a transaction, or _quit */
    SMTPKIT_WANT_DONE,    /* QUIT answered (or the peer closed after QUIT): close */
    SMTPKIT_WANT_FAILED   /* the session failed: _error says why; close. (When a
                           * server reply caused it, a polite QUIT is first
                           * offered as WRITE: write it if you can, do not read) */
} smtpkit_want;

typedef enum {
    SMTPKIT_PHASE_CONNECT,     /* before the first byte (implicit TLS handshake) */
    SMTPKIT_PHASE_GREETING,
    SMTPKIT_PHASE_EHLO,        /* EHLO or HELO */
    SMTPKIT_PHASE_STARTTLS,    /* STARTTLS command and the handshake after it */
    SMTPKIT_PHASE_AUTH,
    SMTPKIT_PHASE_MAIL,        /* also RSET and the idle state between transactions */
    SMTPKIT_PHASE_RCPT,
    SMTPKIT_PHASE_DATA,        /* DATA command, waiting for 354 */
    SMTPKIT_PHASE_DATA_BLOCK,  /* sending the body */
    SMTPKIT_PHASE_DOT,         /* end of data sent, waiting for its reply */
    SMTPKIT_PHASE_QUIT,
    SMTPKIT_PHASE_COUNT
} smtpkit_phase;

/* "write", "read", "tls", "body", "ready", "done", "failed"; static. */
const char *smtpkit_want_name(smtpkit_want w);
/* "connect", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data",
 * "data_block", "dot", "quit"; static; NULL out of range. */
const char *smtpkit_phase_name(smtpkit_phase p);
/* RFC 5321 4.5.3.2 default timeout of a phase, in seconds: greeting, MAIL,
 * RCPT 300; DATA 120; data block 180; end of data 600; connect 30; EHLO,
 * STARTTLS, AUTH 300; QUIT 60. Transports let users override them. */
int smtpkit_phase_timeout(smtpkit_phase p);

/* --- errors -------------------------------------------------------------- */

typedef enum {
    SMTPKIT_ERR_NONE = 0,
    SMTPKIT_ERR_DNS,          /* transport: name resolution */
    SMTPKIT_ERR_CONNECT,      /* transport: connect failed; also the connection
                               * closed by the peer (smtpkit_session_eof) */
    SMTPKIT_ERR_TIMEOUT,      /* smtpkit_session_timeout */
    SMTPKIT_ERR_TLS,          /* transport: handshake / verification failed */
    SMTPKIT_ERR_TLS_REQUIRED, /* STARTTLS required but not offered; AUTH refused
                               * over plaintext; STARTTLS response injection */
    SMTPKIT_ERR_PROTOCOL,     /* garbage, unexpected replies, bad sequence */
    SMTPKIT_ERR_AUTH,         /* AUTH refused (535, 534, 454, 530...), no usable mechanism */
    SMTPKIT_ERR_VALIDATION,   /* the caller's input: addresses, options, 8BITMIME... */
    SMTPKIT_ERR_SERVER,       /* the server refused the session (554/421 greeting,
                               * 421 any time, EHLO/HELO refused) */
    SMTPKIT_ERR_COUNT
} smtpkit_error_kind;

/* A reply as kept in results and errors: the parser's reply, with its text
 * truncated to SMTPKIT_SESSION_REPLY_TEXT octets. code 0: no reply. */
typedef struct smtpkit_session_reply {
    int code;
    char enhanced[SMTPKIT_ENHANCED_MAX];
    unsigned nlines;                 /* lines kept */
    size_t text_len;
    char text[SMTPKIT_SESSION_REPLY_TEXT]; /* lines separated by '\n', NUL-terminated */
} smtpkit_session_reply;

/* Rebuilds a parser-style reply (for smtpkit_lua_push_reply etc.). */
void smtpkit_session_reply_expand(const smtpkit_session_reply *in, smtpkit_reply *out);

typedef struct smtpkit_error {
    smtpkit_error_kind kind;
    char message[SMTPKIT_SESSION_MESSAGE];  /* plain words, NUL-terminated */
    smtpkit_session_reply reply;            /* reply.code 0: no reply caused it */
    smtpkit_verdict verdict;                /* valid when reply.code != 0;
                                             * verdict.text points into reply.text */
} smtpkit_error;

/* "dns", "connect", "timeout", "tls", "tls_required", "protocol", "auth",
 * "validation", "server"; "" for NONE; static. */
const char *smtpkit_error_kind_name(smtpkit_error_kind k);

/* --- life cycle ---------------------------------------------------------- */

typedef struct smtpkit_session smtpkit_session;

/* Creates a session (state: waiting for the greeting, or for the implicit
 * TLS handshake). Copies every string of o: the caller may free them after.
 * Returns NULL on invalid options (a CR/LF/NUL/space in helo_name, oversized
 * credentials...) or out of memory, with the reason in err[0..errlen). */
smtpkit_session *smtpkit_session_new(const smtpkit_session_options *o,
                                     char *err, size_t errlen);

/* Frees s and everything it owns (credentials are wiped first). NULL is fine. */
void smtpkit_session_free(smtpkit_session *s);

smtpkit_want smtpkit_session_want(const smtpkit_session *s);
/* The phase the session waits in: that of the oldest command not answered
 * yet (with pipelining, MAIL while MAIL, RCPT and DATA are all in flight),
 * else of the step under way (DATA_BLOCK while the body streams).
 * After a failure (want FAILED), the phase it failed in, fixed from then on:
 *   - a reply caused it (421, garbage code, STARTTLS injection...): the
 *     phase of the command that reply answers, never that of the commands
 *     pipelined behind it (421 to MAIL: MAIL, even with RCPT and DATA sent);
 *   - EOF, timeout, _abort, a malformed reply: the phase it waited in, as
 *     above (EOF with MAIL, RCPT, DATA in flight and none answered: MAIL);
 *   - a body error: DATA_BLOCK.
 * RSET, and the idle state between transactions, count as MAIL. */
smtpkit_phase smtpkit_session_phase(const smtpkit_session *s);

/* After a failure: 1 when the transport may send the last message again on a
 * new connection, because the server went away (EOF or a transport error of
 * kind connect, or a 421 reply: kinds connect and server) in phase MAIL before
 * it said anything about the message: while idle (nothing begun), or before
 * the first pass's MAIL was answered (or when MAIL was answered 421). That
 * is what a server that closed an idle connection looks like. 0 in every
 * other case: not failed, other kinds (a timeout would only wait again),
 * any later phase (a recipient was answered: report, do not resend), a
 * second pass (part of the recipients has the message), maybe_delivered.
 * Also 1 (kinds connect and server) for a message begun behind the previous
 * one's end of data (overlap) when the session failed before that reply
 * came: replies come in order, so nothing of it was answered.
 * Nothing of a message can be delivered before its end of data, so a
 * resend never duplicates a delivery; transports still resend at most once. */
int smtpkit_session_resendable(const smtpkit_session *s);

/* --- transport events ---------------------------------------------------- */

/* The pending output (NULL and *len = 0 when none). Owned by s; valid until
 * the next call on s. */
const char *smtpkit_session_output(const smtpkit_session *s, size_t *len);
/* n octets of the output were written (n <= *len of _output). */
void smtpkit_session_written(smtpkit_session *s, size_t n);

/* Bytes from the server, any split. Returns 0, or -1 when the session failed
 * (now or before): see smtpkit_session_error. All bytes are consumed. */
int smtpkit_session_receive(smtpkit_session *s, const char *buf, size_t len);

/* The TLS handshake the session asked for (WANT_TLS) succeeded. -1 if the
 * session did not ask for one (it fails, kind protocol). */
int smtpkit_session_tls_done(smtpkit_session *s);

/* The server closed the connection (read returned 0, or a write failed).
 * After end of data and before its reply: the result says outcome unknown,
 * maybe_delivered. After QUIT was sent: done, no error. Else: failed, kind
 * connect. */
void smtpkit_session_eof(smtpkit_session *s);

/* The phase's timeout ran out: failed, kind timeout (maybe_delivered as for
 * _eof when waiting for the end of data reply). */
void smtpkit_session_timeout(smtpkit_session *s);

/* The transport failed (kind DNS, CONNECT, TLS, TIMEOUT...; message copied):
 * the session fails with that error; a transaction in its end of data gets
 * maybe_delivered as for _eof. */
void smtpkit_session_abort(smtpkit_session *s, smtpkit_error_kind kind, const char *message);

/* --- transactions -------------------------------------------------------- */

typedef struct smtpkit_recipient {
    const char *address;     /* without <>; required */
    const char *notify;      /* DSN NOTIFY ("NEVER", "SUCCESS,FAILURE,DELAY") or NULL */
    const char *orcpt;       /* DSN original recipient (an address, or "rfc822;addr") or NULL:
                              * sent as ORCPT=rfc822;<xtext> */
} smtpkit_recipient;

typedef struct smtpkit_envelope {
    const char *from;              /* without <>; "" or NULL: the null path <> */
    const smtpkit_recipient *rcpt;
    size_t nrcpt;                  /* 1 .. SMTPKIT_SESSION_MAX_RCPT */
    long long size;                /* encoded body octets when known, else -1:
                                    * SIZE= when the server offers SIZE */
    int body_8bit;                 /* 1: the body has 8-bit octets: BODY=8BITMIME,
                                    * a validation error if not offered (encode
                                    * the body to 7 bit and pass 0 instead);
                                    * 0: 7 bit; -1: not known (a stream):
                                    * BODY=8BITMIME when offered. When no
                                    * BODY=8BITMIME was sent, an 8-bit octet in
                                    * the body fails the session (kind
                                    * validation) before the end of data */
    int pass_long_lines;           /* 1: body lines over 998 octets pass as is */
    const char *dsn_ret;           /* "FULL" / "HDRS" or NULL (when DSN offered) */
    const char *dsn_envid;         /* DSN ENVID (xtext-encoded here) or NULL */
} smtpkit_envelope;

/* Starts a transaction (only when want is READY). Checks everything first:
 * addresses with CR, LF, NUL, '<', '>', spaces or control bytes, SMTPUTF8 or
 * 8BITMIME needed but not offered -> returns -1 with an error of kind
 * validation (smtpkit_session_error) and nothing is sent; the session stays
 * READY. Copies everything: the caller may free env after. Returns 0. -1 with
 * kind protocol when the session is not READY (a programming mistake); -1
 * with the session's error unchanged when it has failed. */
int smtpkit_session_begin(smtpkit_session *s, const smtpkit_envelope *env);

/* Body bytes (only when want is BODY). Encodes as much as the output has room
 * for; *used says how much of buf was consumed: when less than len, want is
 * WRITE; give the rest after writing. Returns 0, or -1 (line too long without
 * pass_long_lines: the session fails, kind validation, since the DATA already
 * begun cannot be taken back; or called when no body is wanted). */
int smtpkit_session_body(smtpkit_session *s, const char *buf, size_t len, size_t *used);

/* The body is complete: the end of data goes out with the last body bytes. */
int smtpkit_session_body_end(smtpkit_session *s);

/* 1 for the first transmission of the body; 2, 3... when the server took only
 * part of the recipients (452/552 too many recipients) and the engine sends
 * the message again, on the same connection, for the rest. When want is BODY
 * and the pass changed since the transport last gave body bytes, it gives
 * the body again from its first byte. */
unsigned smtpkit_session_body_pass(const smtpkit_session *s);

typedef struct smtpkit_rcpt_result {
    const char *address;            /* owned by s */
    int ok;                         /* accepted by RCPT and the message accepted
                                     * in its pass */
    smtpkit_session_reply reply;    /* the RCPT reply; for a recipient the MAIL, DATA
                                     * or end-of-data refusal failed, or a 421 (to
                                     * its RCPT or any command of its pass) ended
                                     * the transaction, that reply (code 0: never
                                     * answered) */
    smtpkit_verdict verdict;        /* the classification of that reply, the same
                                     * as the result's when it is the same reply.
                                     * No reply said why (EOF, timeout, transport
                                     * error before the end of data): outcome
                                     * deferred, reason network_error (protocol_error
                                     * when the server broke the protocol), retry,
                                     * and an explanation saying whether RCPT had
                                     * accepted it; the reply kept is then its
                                     * RCPT reply, if any. After the end of data
                                     * without its reply: unknown, maybe delivered.
                                     * verdict.text points into reply.text */
    unsigned pass;                  /* the SMTP transaction (1, 2...) that carried it */
    char queue_id[SMTPKIT_SESSION_QUEUE_ID]; /* the queue id the end-of-data reply of
                                     * its pass named, when ok; else "" (a message
                                     * sent in several passes has one per pass) */
} smtpkit_rcpt_result;

typedef struct smtpkit_result {
    int ok;                         /* the message was accepted for at least one
                                     * recipient */
    int complete;                   /* 1: the transaction is over (result final) */
    int maybe_delivered;            /* the end-of-data reply never came */
    smtpkit_session_reply reply;    /* the deciding reply: end of data when it was
                                     * sent, else MAIL's when refused, else the
                                     * first recipient's; code 0: none */
    smtpkit_verdict verdict;        /* its classification; outcome UNKNOWN with
                                     * reason network_error when no reply came */
    char queue_id[SMTPKIT_SESSION_QUEUE_ID]; /* "" when the reply names none */
    size_t naccepted;               /* recipients with ok = 1 */
    size_t nrcpt;
    const smtpkit_rcpt_result *rcpt;/* nrcpt entries, in envelope order; owned by s */
} smtpkit_result;

/* The last transaction's result, or NULL before the first begin. Owned by s,
 * valid until the next _begin or _free. Final when result->complete. */
const smtpkit_result *smtpkit_session_result(const smtpkit_session *s);

/* --- overlap: the next transaction behind the end of data -------------- */

/* on = 1: when the server offers PIPELINING, a transaction that has sent
 * its end of data, and whose reply to it will end it (no recipient waits for
 * a "too many recipients" pass), lets the next one begin at once: want says
 * READY (or WRITE first, until the output has room for a whole group) while
 * that reply is outstanding, and _begin pipelines MAIL, RCPT and DATA in the
 * same write as the end of data (RFC 2920 3.1: the message content may begin
 * a group; DATA ends it). One round trip per message instead of two. In that
 * READY only _begin is allowed (not _quit or _reset); set on = 0 before the
 * last message, and want goes back to WRITE / READ until the reply comes.
 * Off by default: callers that take READY to mean "the last result is
 * final" (a send-one-message loop) keep working unchanged.
 * When the session fails with both in flight, the previous transaction ends
 * as after an EOF in its end of data (maybe_delivered), and the current one
 * as not sent (deferred; a 421 to the end of data is its reply too). */
void smtpkit_session_overlap(smtpkit_session *s, int on);

/* After a _begin: the transaction before it's result (NULL before the second
 * _begin). Final once ->complete: at once, unless that begin was made under
 * overlap, then when its end-of-data reply came. A transport may so begin
 * the next message and write its commands before it turns the last result
 * into its own form. Owned by s, valid until the next _begin or _free. */
const smtpkit_result *smtpkit_session_result_prev(const smtpkit_session *s);

/* The last error, or NULL. It explains WANT_FAILED, or the -1 of the last
 * call (e.g. a validation error from _begin, the session staying READY).
 * Owned by s; valid until the next call on s. */
const smtpkit_error *smtpkit_session_error(const smtpkit_session *s);

/* Sends QUIT (when READY; or ends at once, DONE, while still waiting for the
 * greeting or the implicit TLS handshake; a no-op when FAILED or DONE). Then
 * want WRITE, READ, and DONE when 221 (or anything) comes back or on EOF.
 * -1 (kind protocol) in the middle of a step: a programming mistake. */
int smtpkit_session_quit(smtpkit_session *s);

/* Sends RSET (only when READY): a cheap check that a pooled, idle
 * connection is still alive before reusing it. Then want WRITE, READ, and
 * READY again on a 2xx; FAILED otherwise (kind protocol / server / connect).
 * The last result is kept. Returns 0; -1 when not READY. */
int smtpkit_session_reset(smtpkit_session *s);

/* --- what the server offers ---------------------------------------------- */

#define SMTPKIT_CAP_ESMTP        0x0001u   /* EHLO succeeded (not HELO) */
#define SMTPKIT_CAP_PIPELINING   0x0002u
#define SMTPKIT_CAP_SIZE         0x0004u
#define SMTPKIT_CAP_8BITMIME     0x0008u
#define SMTPKIT_CAP_SMTPUTF8     0x0010u
#define SMTPKIT_CAP_STARTTLS     0x0020u
#define SMTPKIT_CAP_AUTH         0x0040u
#define SMTPKIT_CAP_ENHANCED     0x0080u   /* ENHANCEDSTATUSCODES */
#define SMTPKIT_CAP_DSN          0x0100u
#define SMTPKIT_CAP_CHUNKING     0x0200u

#define SMTPKIT_AUTH_PLAIN       0x01u
#define SMTPKIT_AUTH_LOGIN       0x02u
#define SMTPKIT_AUTH_XOAUTH2     0x04u
#define SMTPKIT_AUTH_CRAM_MD5    0x08u
#define SMTPKIT_AUTH_OAUTHBEARER 0x10u

typedef struct smtpkit_caps {
    unsigned flags;                 /* SMTPKIT_CAP_* */
    unsigned auth;                  /* SMTPKIT_AUTH_* offered */
    unsigned long long size_max;    /* SIZE n (0: offered without a limit, or not) */
} smtpkit_caps;

/* The capabilities of the last EHLO (forgotten at STARTTLS). Owned by s. */
const smtpkit_caps *smtpkit_session_caps(const smtpkit_session *s);
/* 1 when the channel is TLS (implicit, or STARTTLS done). */
int smtpkit_session_tls_active(const smtpkit_session *s);
/* The mechanism AUTH used ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"), or NULL
 * when not logged in. */
const char *smtpkit_session_auth_mechanism(const smtpkit_session *s);

#endif
