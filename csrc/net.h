/*
 * net.h - the blocking transport of smtpkit.net: sockets with deadlines, and
 * the C loop that drives the sans-I/O engine (session.h) over them, with TLS
 * from tls.h. No Lua in here (lua_net.c is the Lua face).
 *
 * Time: every wait has an absolute deadline on the monotonic clock
 * (smtpkit_net_now_ms). A phase of the SMTP session (greeting, EHLO, MAIL,
 * end of data...) gets one deadline when it starts; bytes that trickle in do
 * not move it, so a server that sends one byte a second, or continuation
 * lines without end, is cut off when the phase's time is up.
 *
 * Memory per connection: one smtpkit_conn (a 16 KiB read buffer), the
 * session (its output buffer, 64 KiB by default) and OpenSSL's per-connection
 * state. Bodies stream through smtpkit_body_source: never loaded whole.
 */
#ifndef SMTPKIT_NET_H
#define SMTPKIT_NET_H

#include <stddef.h>
#include "session.h"
#include "tls.h"

#define SMTPKIT_NET_READ_BUF 16384
#define SMTPKIT_NET_PEER_MAX 128     /* "host:port" / "[v6]:port" for messages */

/* Milliseconds on the monotonic clock. */
long long smtpkit_net_now_ms(void);

/* Waits until fd is ready for `events` (POLLIN/POLLOUT) or deadline_ms passes.
 * Returns 1 ready, 0 timed out, -1 poll failed (errno set). EINTR is retried. */
int smtpkit_net_wait(int fd, short events, long long deadline_ms);

struct addrinfo;

/* getaddrinfo(host, port) for a stream socket, any family (AI_ADDRCONFIG),
 * bounded by deadline_ms (smtpkit_net_now_ms's clock): an address literal is
 * parsed at once; a name is looked up in a thread of its own and waited for
 * until the deadline (a lookup still running then finishes in its thread and
 * frees itself). Returns 0 with *res (the caller freeaddrinfo()s it), or an
 * EAI_* code (EAI_SYSTEM: see errno); *timed_out = 1 when the deadline came
 * first. */
int smtpkit_net_resolve(const char *host, int port, long long deadline_ms,
                        struct addrinfo **res, int *timed_out);

/* Resolves host (smtpkit_net_resolve, within deadline_ms) and tries each
 * address in turn with a non-blocking connect: every attempt but the last
 * gets half of the time left, so one address that drops SYNs does not use up
 * the whole timeout, and the last gets the rest. On success returns a
 * connected, non-blocking socket with TCP_NODELAY set, and writes the address
 * used into peer (may be NULL). On failure returns -1 with *kind
 * (SMTPKIT_ERR_DNS, _CONNECT or _TIMEOUT) and a message naming the host, port
 * and last error. */
int smtpkit_net_connect(const char *host, int port, long long deadline_ms,
                        char *peer, size_t peerlen,
                        smtpkit_error_kind *kind, char *err, size_t errlen);

/* Timeouts of a connection, in milliseconds; 0 or less: the engine's
 * RFC 5321 default for the phase (smtpkit_phase_timeout). */
typedef struct smtpkit_net_timeouts {
    long connect;    /* TCP connect, and the implicit TLS handshake */
    long greeting;   /* the 220 greeting */
    long command;    /* EHLO, STARTTLS + handshake, AUTH, MAIL, RCPT, DATA, QUIT */
    long data;       /* sending the body, and the reply to the end of data */
} smtpkit_net_timeouts;

/* Where the body comes from. read() sets *p and *n to the next chunk (valid until
 * the next call; *n = 0 at the end) and returns 0, or -1 with a message in
 * err (the source failed). rewind() starts over from the first byte (the
 * engine sends the message again for recipients a server deferred with 452);
 * NULL when the source cannot (an iterator): the second pass then fails. */
typedef struct smtpkit_body_source {
    int (*read)(void *ud, const char **p, size_t *n, char *err, size_t errlen);
    int (*rewind)(void *ud, char *err, size_t errlen);
    void *ud;
} smtpkit_body_source;

typedef struct smtpkit_conn_options {
    const char *host;                 /* required; a name or an address */
    int port;                         /* required */
    smtpkit_net_timeouts timeouts;
    smtpkit_session_options session;  /* engine options (tls policy, AUTH, trace) */
    smtpkit_tls_client *tls;          /* required unless session.tls is NONE;
                                       * borrowed: must outlive the connection */
} smtpkit_conn_options;

typedef struct smtpkit_conn smtpkit_conn;

/* Connects, reads the greeting, does EHLO, STARTTLS and AUTH as the options
 * say, and returns a connection ready for transactions. On failure returns
 * NULL and fills *err (kind, message, and the server's reply when one caused
 * it). The trace callback of o->session also gets the transport's notes
 * ("[connected to ...]", "[TLS ...]"). */
smtpkit_conn *smtpkit_conn_open(const smtpkit_conn_options *o, smtpkit_error *err);

/* Sends one message (a batch of one: smtpkit_conn_send_batch): begins the
 * transaction with env, streams the body from src, and waits for the
 * end-of-data reply. Returns 0 when the transaction
 * ran to its end (accepted or refused: see smtpkit_conn_result), and the
 * connection is ready for the next one. Returns -1 with *err when it could
 * not: kind validation before anything was sent (the connection stays
 * usable), or a failure of the connection (then smtpkit_conn_result still
 * tells what is known, e.g. maybe_delivered, and the connection is dead). */
int smtpkit_conn_send(smtpkit_conn *c, const smtpkit_envelope *env,
                      const smtpkit_body_source *src, smtpkit_error *err);

/* Messages for smtpkit_conn_send_batch. */
typedef struct smtpkit_batch {
    size_t n;
    /* Message i (asked once each, in order 0, 1...): fills *env (copied at
     * once) and *src (used until the next call of next, or the batch's end).
     * Returns 0; or -1 with *err: message i cannot be sent, it is reported
     * (done, res NULL) and the batch goes on. */
    int (*next)(void *ud, size_t i, smtpkit_envelope *env,
                const smtpkit_body_source **src, smtpkit_error *err);
    /* Message i is over (called once for each message asked for; not always
     * in order). res: its result (NULL when no transaction began), valid
     * during the call. err: NULL when its transaction ran to its end
     * (accepted or refused: see res), else why not (a validation error, or
     * the connection's failure). resendable: as smtpkit_conn_resendable. */
    void (*done)(void *ud, size_t i, const smtpkit_result *res, const smtpkit_error *err,
                 int resendable);
    void *ud;
} smtpkit_batch;

/* Sends b->n messages over the connection, one transaction each. When the
 * server offers PIPELINING, each message's MAIL, RCPT and DATA go in the same
 * write as the previous message's end of data (smtpkit_session_overlap): one
 * round trip per message instead of two. Returns how many messages were
 * asked for (and reported); fewer than b->n when the connection failed
 * (*err says why; the connection is then dead): the rest were never begun,
 * send them on a new connection. A message in flight
 * behind another's end of data when the connection fails is reported not
 * sent (deferred, network error); the one whose end-of-data reply never came,
 * maybe delivered (unknown), as with smtpkit_conn_send. */
size_t smtpkit_conn_send_batch(smtpkit_conn *c, const smtpkit_batch *b, smtpkit_error *err);

/* The phase the last failure happened in (smtpkit_phase), -1 when none. A
 * failure in SMTPKIT_PHASE_MAIL (EOF or 421 on an idle connection, before
 * MAIL was answered) means nothing of the message reached the server: the
 * caller may reconnect and send it again. */
int smtpkit_conn_failed_phase(const smtpkit_conn *c);

/* After a failed smtpkit_conn_send (not a validation error): 1 when nothing
 * of the message reached the server - the connection was found closed while
 * idle, or the server closed it (EOF) or answered 421 before answering MAIL
 * or any RCPT - so the caller may reconnect and send it again. 0 otherwise
 * (never for a maybe-delivered message). The engine decides
 * (smtpkit_session_resendable), from the phase the session failed in. */
int smtpkit_conn_resendable(const smtpkit_conn *c);

/* The result of the transaction the last send began (NULL when it did not
 * begin one); owned by c, valid until the next send or free. */
const smtpkit_result *smtpkit_conn_result(const smtpkit_conn *c);

/* 1 when the connection can take another transaction. */
int smtpkit_conn_ready(const smtpkit_conn *c);

/* Sends QUIT and waits for the reply (bounded by the command timeout), then
 * closes the socket. Errors are ignored: the connection is closed anyway. */
void smtpkit_conn_quit(smtpkit_conn *c);

/* Closes (without QUIT if not done) and frees c. NULL is fine. */
void smtpkit_conn_free(smtpkit_conn *c);

/* Facts about the connection. Strings owned by c. */
const smtpkit_session *smtpkit_conn_session(const smtpkit_conn *c);
const char *smtpkit_conn_peer(const smtpkit_conn *c);        /* address used */
const char *smtpkit_conn_tls_version(const smtpkit_conn *c); /* NULL: plain text */
const char *smtpkit_conn_tls_cipher(const smtpkit_conn *c);
int smtpkit_conn_tls_resumed(const smtpkit_conn *c);

#endif
