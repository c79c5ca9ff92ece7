/*
 * net.c - sockets with deadlines, and the C loop that drives the engine: see
 * net.h. One write per output group the engine hands out (it groups
 * pipelined commands, and the body's last bytes with the end of data);
 * TCP_NODELAY on every socket.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

struct smtpkit_conn {
    int fd;
    smtpkit_session *s;
    smtpkit_tls *tls;
    smtpkit_tls_client *tlsc;
    smtpkit_net_timeouts to;
    void (*trace)(void *ud, int direction, const char *line, size_t len);
    void *trace_ud;
    char host[256];
    char peer[SMTPKIT_NET_PEER_MAX];       /* address used, "a.b.c.d:port" */
    char where[SMTPKIT_NET_PEER_MAX + 260]; /* "host:port" for messages */
    int cur_phase;                          /* phase the deadline belongs to */
    long long deadline;
    /* body streaming state */
    const smtpkit_body_source *src;
    const char *chunk;
    size_t chunk_len;
    unsigned pass;
    int body_done;
    int failed_phase;
    int began;        /* the last send got past begin */
    int wrote;        /* the last I/O was a write: the reply cannot be there yet */
    int tls_fresh;    /* handshake done, nothing read through TLS yet */
    long long last_io;  /* smtpkit_net_now_ms of the last read or write */
    char rbuf[SMTPKIT_NET_READ_BUF];
};

long long smtpkit_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int smtpkit_net_wait(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - smtpkit_net_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { fd, events, 0 };
        int r = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
        if (r > 0)
            return 1;   /* ready, or an error/hangup the next call will see */
        if (r == 0)
            continue;   /* loop re-checks the deadline */
        if (errno != EINTR)
            return -1;
    }
}

static void note(smtpkit_conn *c, const char *fmt, const char *a, const char *b)
{
    if (!c->trace)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, fmt, a ? a : "", b ? b : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    c->trace(c->trace_ud, SMTPKIT_TRACE_INFO, line, (size_t)n);
}

static void addr_str(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
        snprintf(out, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
    } else {
        snprintf(out, len, "?");
    }
}

int smtpkit_net_connect(const char *host, int port, long long deadline_ms,
                        char *peer, size_t peerlen,
                        smtpkit_error_kind *kind, char *err, size_t errlen)
{
    struct addrinfo *res = NULL, *ai;
    int dns_late = 0;
    int gr = smtpkit_net_resolve(host, port, deadline_ms, &res, &dns_late);
    if (gr != 0 || !res) {
        *kind = SMTPKIT_ERR_DNS;
        if (dns_late)
            snprintf(err, errlen, "cannot resolve %s: no answer within the connect timeout "
                     "(the DNS server is slow or unreachable)", host);
        else
            snprintf(err, errlen, "cannot resolve %s: %s", host,
                     gr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gr));
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    char last[160] = "no address";
    char tried[SMTPKIT_NET_PEER_MAX] = "";
    int timed_out = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        long long now = smtpkit_net_now_ms();
        addr_str(ai->ai_addr, tried, sizeof tried);
        if (now >= deadline_ms) {
            timed_out = 1;
            break;
        }
        /* half of what is left, unless it is the last address */
        long long until = ai->ai_next ? now + (deadline_ms - now) / 2 : deadline_ms;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(last, sizeof last, "%s: %s", tried, strerror(errno));
            continue;
        }
        int fl = fcntl(fd, F_GETFL, 0);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int w = smtpkit_net_wait(fd, POLLOUT, until);
            if (w == 0) {
                timed_out = ai->ai_next == NULL;   /* the next address may still answer */
                snprintf(last, sizeof last, "%s: timed out", tried);
                close(fd);
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w < 0)
                soerr = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r == 0) {
            if (peer)
                snprintf(peer, peerlen, "%s", tried);
            freeaddrinfo(res);
            return fd;
        }
        snprintf(last, sizeof last, "%s: %s", tried, strerror(errno));
        close(fd);
    }
    freeaddrinfo(res);
    *kind = timed_out ? SMTPKIT_ERR_TIMEOUT : SMTPKIT_ERR_CONNECT;
    snprintf(err, errlen, "cannot connect to %s:%d (%s)%s", host, port, last,
             timed_out ? " - the connect timeout ran out" : "");
    return -1;
}

/* --- the engine loop ------------------------------------------------------ */

static long phase_ms(const smtpkit_conn *c, smtpkit_phase p)
{
    long v;
    switch (p) {
    case SMTPKIT_PHASE_CONNECT:    v = c->to.connect; break;
    case SMTPKIT_PHASE_GREETING:   v = c->to.greeting; break;
    case SMTPKIT_PHASE_DATA_BLOCK:
    case SMTPKIT_PHASE_DOT:        v = c->to.data; break;
    default:                       v = c->to.command; break;
    }
    return v > 0 ? v : (long)smtpkit_phase_timeout(p) * 1000;
}

static void set_error(smtpkit_error *err, smtpkit_error_kind kind, const char *msg)
{
    memset(err, 0, sizeof *err);
    err->kind = kind;
    snprintf(err->message, sizeof err->message, "%s", msg);
}

/* Copies an error; the verdict's text is pointed at the copy's reply. */
static void copy_error_from(smtpkit_error *dst, const smtpkit_error *e)
{
    if (dst == e)
        return;
    *dst = *e;
    if (dst->reply.code) {
        dst->verdict.text = dst->reply.text;
        dst->verdict.text_len = dst->reply.text_len;
    } else {
        dst->verdict.text = NULL;
        dst->verdict.text_len = 0;
    }
}

/* Copies the session's error. */
static void copy_error(smtpkit_error *dst, const smtpkit_session *s)
{
    const smtpkit_error *e = smtpkit_session_error(s);
    if (!e)
        set_error(dst, SMTPKIT_ERR_PROTOCOL, "the session failed");
    else
        copy_error_from(dst, e);
}

static void close_transport(smtpkit_conn *c)
{
    if (c->tls) {
        smtpkit_tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static int do_write(smtpkit_conn *c)
{
    size_t n;
    const char *p = smtpkit_session_output(c->s, &n);
    while (n > 0) {
        char err[256] = "";
        long w;
        short ev = POLLOUT;
        if (c->tls) {
            w = smtpkit_tls_write(c->tls, p, n, err, sizeof err);
            if (w == SMTPKIT_TLS_IO_WANT_READ)
                ev = POLLIN;
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    w = SMTPKIT_TLS_IO_WANT_WRITE;
                else {
                    snprintf(err, sizeof err, "%s", strerror(errno));
                    w = SMTPKIT_TLS_IO_ERROR;
                }
            }
        }
        if (w > 0) {
            c->wrote = 1;
            smtpkit_session_written(c->s, (size_t)w);
            if (smtpkit_session_phase(c->s) == SMTPKIT_PHASE_DATA_BLOCK)
                c->deadline = smtpkit_net_now_ms() + phase_ms(c, SMTPKIT_PHASE_DATA_BLOCK);
            return 0;   /* the loop asks the session what next */
        }
        if (w == SMTPKIT_TLS_IO_ERROR) {
            /* a failed write: the peer is gone (EOF semantics: maybe_delivered) */
            note(c, "[write failed: %s]", err, NULL);
            smtpkit_session_eof(c->s);
            return 0;
        }
        int r = smtpkit_net_wait(c->fd, ev, c->deadline);
        if (r == 0) {
            smtpkit_session_timeout(c->s);
            return 0;
        }
        if (r < 0) {
            smtpkit_session_abort(c->s, SMTPKIT_ERR_CONNECT, strerror(errno));
            return 0;
        }
    }
    smtpkit_session_written(c->s, 0);
    return 0;
}

static void do_read(smtpkit_conn *c)
{
    if (c->wrote && !c->tls) {
        /* we just wrote: wait before the first recv instead of an EAGAIN */
        c->wrote = 0;
        int w = smtpkit_net_wait(c->fd, POLLIN, c->deadline);
        if (w == 0) {
            smtpkit_session_timeout(c->s);
            return;
        }
    }
    c->wrote = 0;
    for (;;) {
        char err[256] = "";
        long r;
        short ev = POLLIN;
        if (c->tls) {
            r = smtpkit_tls_read(c->tls, c->rbuf, sizeof c->rbuf, err, sizeof err);
            if (r == SMTPKIT_TLS_IO_WANT_WRITE)
                ev = POLLOUT;
        } else {
            r = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
            if (r < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    r = SMTPKIT_TLS_IO_WANT_READ;
                else if (errno == ECONNRESET)
                    r = 0;
                else {
                    snprintf(err, sizeof err, "%s", strerror(errno));
                    r = SMTPKIT_TLS_IO_ERROR;
                }
            }
        }
        if (r > 0) {
            c->tls_fresh = 0;
            c->last_io = smtpkit_net_now_ms();
            smtpkit_session_receive(c->s, c->rbuf, (size_t)r);
            return;
        }
        /* A close right after the handshake is the TLS layer's failure (TLS
         * 1.3 servers refuse a client certificate that way), not EOF. */
        if (r == 0 && !c->tls_fresh) {
            smtpkit_session_eof(c->s);
            return;
        }
        if (r == SMTPKIT_TLS_IO_ERROR || r == 0) {
            char msg[SMTPKIT_SESSION_MESSAGE];
            if (c->tls_fresh)   /* TLS 1.3: a refused client certificate shows here */
                snprintf(msg, sizeof msg, "%.60s (%.60s) - closed right after the TLS "
                         "handshake: the server may require a client certificate "
                         "(client_cert, client_key)", r == 0 ? "TLS closed" : err, c->where);
            else
                snprintf(msg, sizeof msg, "%.150s (%.80s)", err, c->where);
            smtpkit_session_abort(c->s, c->tls ? SMTPKIT_ERR_TLS : SMTPKIT_ERR_CONNECT, msg);
            return;
        }
        int w = smtpkit_net_wait(c->fd, ev, c->deadline);
        if (w == 0) {
            smtpkit_session_timeout(c->s);
            return;
        }
        if (w < 0) {
            smtpkit_session_abort(c->s, SMTPKIT_ERR_CONNECT, strerror(errno));
            return;
        }
    }
}

static void do_tls(smtpkit_conn *c)
{
    char err[SMTPKIT_SESSION_MESSAGE];
    int timed_out = 0;
    if (!c->tlsc) {
        smtpkit_session_abort(c->s, SMTPKIT_ERR_TLS, "TLS wanted but not configured");
        return;
    }
    c->tls = smtpkit_tls_handshake(c->tlsc, c->fd, c->host, c->where, c->deadline,
                                   &timed_out, err, sizeof err);
    if (!c->tls) {
        smtpkit_session_abort(c->s, timed_out ? SMTPKIT_ERR_TIMEOUT : SMTPKIT_ERR_TLS, err);
        return;
    }
    if (c->trace) {
        char line[200];
        int n = snprintf(line, sizeof line, "[TLS %s %s%s%s]", smtpkit_tls_version(c->tls),
                         smtpkit_tls_cipher(c->tls),
                         smtpkit_tls_resumed(c->tls) ? ", session resumed" : "",
                         smtpkit_tls_client_verifies(c->tlsc)
                             ? ", certificate verified"
                             : ", certificate NOT verified (verify = false): INSECURE");
        if (n > 0)
            c->trace(c->trace_ud, SMTPKIT_TRACE_INFO, line,
                     (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
    c->tls_fresh = 1;
    smtpkit_session_tls_done(c->s);
}

static void do_body(smtpkit_conn *c)
{
    const smtpkit_body_source *src = c->src;
    char err[180];
    if (!src) {
        smtpkit_session_abort(c->s, SMTPKIT_ERR_PROTOCOL, "the engine wants a body but none given");
        return;
    }
    unsigned pass = smtpkit_session_body_pass(c->s);
    if (pass != c->pass) {
        if (c->pass != 0) {
            if (!src->rewind || src->rewind(src->ud, err, sizeof err) != 0) {
                char msg[SMTPKIT_SESSION_MESSAGE];
                snprintf(msg, sizeof msg, "the body must be sent again (pass %u) but %s",
                         pass, src->rewind ? err : "an iterator cannot be replayed");
                smtpkit_session_abort(c->s, SMTPKIT_ERR_VALIDATION, msg);
                return;
            }
        }
        c->pass = pass;
        c->chunk = NULL;
        c->chunk_len = 0;
        c->body_done = 0;
    }
    if (c->chunk_len == 0) {
        const char *p = NULL;
        size_t n = 0;
        if (src->read(src->ud, &p, &n, err, sizeof err) != 0) {
            char msg[SMTPKIT_SESSION_MESSAGE];
            snprintf(msg, sizeof msg, "reading the body failed: %s", err);
            smtpkit_session_abort(c->s, SMTPKIT_ERR_VALIDATION, msg);
            return;
        }
        if (n == 0) {
            smtpkit_session_body_end(c->s);
            return;
        }
        c->chunk = p;
        c->chunk_len = n;
    }
    size_t used = 0;
    if (smtpkit_session_body(c->s, c->chunk, c->chunk_len, &used) != 0)
        return;   /* the session failed: the loop sees it */
    c->chunk += used;
    c->chunk_len -= used;
}

/* Runs the engine until it is READY, DONE or FAILED. */
static smtpkit_want run(smtpkit_conn *c)
{
    for (;;) {
        smtpkit_want w = smtpkit_session_want(c->s);
        smtpkit_phase ph = smtpkit_session_phase(c->s);
        if ((int)ph != c->cur_phase) {
            c->cur_phase = (int)ph;
            c->deadline = smtpkit_net_now_ms() + phase_ms(c, ph);
        }
        switch (w) {
        case SMTPKIT_WANT_WRITE: do_write(c); break;
        case SMTPKIT_WANT_READ:  do_read(c); break;
        case SMTPKIT_WANT_TLS:   do_tls(c); break;
        case SMTPKIT_WANT_BODY:  do_body(c); break;
        case SMTPKIT_WANT_FAILED:
            c->failed_phase = (int)ph;
            return w;
        case SMTPKIT_WANT_READY:
        case SMTPKIT_WANT_DONE:
        default:
            return w;
        }
    }
}

smtpkit_conn *smtpkit_conn_open(const smtpkit_conn_options *o, smtpkit_error *err)
{
    char msg[SMTPKIT_SESSION_MESSAGE];
    smtpkit_error_kind kind;
    if (!o->host || !*o->host || o->port <= 0 || o->port > 65535) {
        set_error(err, SMTPKIT_ERR_VALIDATION, "host and port (1-65535) are required");
        return NULL;
    }
    if (o->session.tls != SMTPKIT_TLS_NONE && !o->tls) {
        set_error(err, SMTPKIT_ERR_VALIDATION, "TLS wanted but no TLS configuration given");
        return NULL;
    }
    smtpkit_conn *c = calloc(1, sizeof *c);
    if (!c) {
        set_error(err, SMTPKIT_ERR_CONNECT, "out of memory");
        return NULL;
    }
    c->fd = -1;
    c->to = o->timeouts;
    c->tlsc = o->tls;
    c->trace = o->session.trace;
    c->trace_ud = o->session.trace_ud;
    c->cur_phase = -1;
    c->failed_phase = -1;
    snprintf(c->host, sizeof c->host, "%s", o->host);
    snprintf(c->where, sizeof c->where, "%s:%d", o->host, o->port);

    smtpkit_session_options so = o->session;
    so.tls_active = 0;
    c->s = smtpkit_session_new(&so, msg, sizeof msg);
    if (!c->s) {
        set_error(err, SMTPKIT_ERR_VALIDATION, msg);
        free(c);
        return NULL;
    }
    if (o->session.tls != SMTPKIT_TLS_NONE && o->tls && !smtpkit_tls_client_verifies(o->tls))
        note(c, "[TLS certificate verification is OFF (verify = false): INSECURE, "
                "anyone on the path can read and change this session]", NULL, NULL);
    long long deadline = smtpkit_net_now_ms() + phase_ms(c, SMTPKIT_PHASE_CONNECT);
    c->fd = smtpkit_net_connect(o->host, o->port, deadline, c->peer, sizeof c->peer,
                                &kind, msg, sizeof msg);
    if (c->fd < 0) {
        set_error(err, kind, msg);
        smtpkit_conn_free(c);
        return NULL;
    }
    note(c, "[connected to %s (%s)]", c->where, c->peer);
    if (run(c) != SMTPKIT_WANT_READY) {
        copy_error(err, c->s);
        smtpkit_conn_free(c);
        return NULL;
    }
    return c;
}

/* Before a transaction on a reused connection: did the server close it (EOF
 * or 421) while it was idle? Feeds what it finds to the session. */
static void check_idle(smtpkit_conn *c)
{
    /* a connection used in the last second is not worth a poll: if the
     * server closed it anyway, the failure before MAIL is resendable too */
    if (smtpkit_net_now_ms() - c->last_io < 1000)
        return;
    struct pollfd p = { c->fd, POLLIN, 0 };
    if (poll(&p, 1, 0) <= 0)
        return;
    c->cur_phase = SMTPKIT_PHASE_MAIL;
    c->deadline = smtpkit_net_now_ms() + phase_ms(c, SMTPKIT_PHASE_MAIL);
    char err[256];
    long r;
    if (c->tls) {
        r = smtpkit_tls_read(c->tls, c->rbuf, sizeof c->rbuf, err, sizeof err);
        if (r == SMTPKIT_TLS_IO_WANT_READ || r == SMTPKIT_TLS_IO_WANT_WRITE)
            return;   /* e.g. a TLS 1.3 ticket: nothing for SMTP */
    } else {
        r = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
    }
    if (r > 0)
        smtpkit_session_receive(c->s, c->rbuf, (size_t)r);
    else if (r == 0 || errno == ECONNRESET)
        smtpkit_session_eof(c->s);
    else
        smtpkit_session_abort(c->s, SMTPKIT_ERR_CONNECT, strerror(errno));
    if (smtpkit_session_want(c->s) == SMTPKIT_WANT_FAILED)
        c->failed_phase = SMTPKIT_PHASE_MAIL;
}


/* The messages of a batch the engine's two slots hold: cur, the last begun
 * (smtpkit_session_result), and prev, the one before it not yet reported
 * (smtpkit_session_result_prev). */
#define NO_MSG ((size_t)-1)

/* Reports prev when its result is final (always, once failed: the session's
 * error, or NULL); and cur too when cur_too and it is over. */
static void harvest(smtpkit_conn *c, const smtpkit_batch *b, size_t *prev, size_t *cur,
                    int cur_too, const smtpkit_error *failed)
{
    if (*prev != NO_MSG) {
        const smtpkit_result *r = smtpkit_session_result_prev(c->s);
        if (!failed && !(r && r->complete))
            return;   /* its end-of-data reply is still to come */
        /* ended by the failure (no end-of-data reply) or by its reply */
        b->done(b->ud, *prev, r, r && r->maybe_delivered ? failed : NULL, 0);
        *prev = NO_MSG;
    }
    if (cur_too && *cur != NO_MSG) {
        const smtpkit_result *r = smtpkit_session_result(c->s);
        if (failed)
            b->done(b->ud, *cur, r, failed, smtpkit_session_resendable(c->s));
        else if (r && r->complete)
            b->done(b->ud, *cur, r, NULL, 0);
        else
            return;
        *cur = NO_MSG;
    }
}

size_t smtpkit_conn_send_batch(smtpkit_conn *c, const smtpkit_batch *b, smtpkit_error *err)
{
    size_t next = 0, cur = NO_MSG, prev = NO_MSG;
    smtpkit_error e;
    c->failed_phase = -1;
    c->began = 0;
    if (smtpkit_session_want(c->s) == SMTPKIT_WANT_READY && c->fd >= 0)
        check_idle(c);
    while (run(c) == SMTPKIT_WANT_READY) {
        smtpkit_envelope env;
        const smtpkit_body_source *src = NULL;
        size_t i;
        /* the next begin takes prev's slot: prev is over by now (a message
         * begun behind it has had its 354, so prev's reply came first) */
        harvest(c, b, &prev, &cur, 0, NULL);
        if (next == b->n) {
            harvest(c, b, &prev, &cur, 1, NULL);
            if (cur == NO_MSG)
                break;   /* all done, the connection ready for more */
            smtpkit_session_overlap(c->s, 0);   /* READY again once the last reply came */
            continue;
        }
        i = next++;
        memset(&env, 0, sizeof env);
        if (b->next(b->ud, i, &env, &src, &e) != 0) {
            harvest(c, b, &prev, &cur, 1, NULL);
            b->done(b->ud, i, NULL, &e, 0);
            continue;
        }
        smtpkit_session_overlap(c->s, 1);   /* begin behind cur's end of data */
        if (smtpkit_session_begin(c->s, &env) != 0) {
            copy_error(&e, c->s);
            if (smtpkit_session_want(c->s) == SMTPKIT_WANT_FAILED) {
                next--;   /* not begun: the caller sends it on a new connection */
                break;
            }
            harvest(c, b, &prev, &cur, 1, NULL);
            b->done(b->ud, i, NULL, &e, 0);   /* its own fault (validation): go on */
            continue;
        }
        c->began = 1;
        prev = cur;   /* now in the engine's previous slot */
        cur = i;
        /* the next message may begin behind this one's end of data; the
         * last one's reply is awaited */
        smtpkit_session_overlap(c->s, next < b->n);
        c->src = src;
        c->pass = 0;
        c->chunk = NULL;
        c->chunk_len = 0;
        c->body_done = 0;
        /* Write the new commands first, then report the message before them
         * (building the caller's result costs time the server now spends
         * answering, not the time of a round trip). */
        if (prev != NO_MSG && smtpkit_session_want(c->s) == SMTPKIT_WANT_WRITE) {
            c->cur_phase = (int)smtpkit_session_phase(c->s);
            c->deadline = smtpkit_net_now_ms() + phase_ms(c, (smtpkit_phase)c->cur_phase);
            do_write(c);
        }
        harvest(c, b, &prev, &cur, 0, NULL);
    }
    c->src = NULL;
    c->chunk = NULL;
    c->chunk_len = 0;
    smtpkit_session_overlap(c->s, 0);
    if (smtpkit_session_want(c->s) != SMTPKIT_WANT_READY) {
        if (smtpkit_session_want(c->s) == SMTPKIT_WANT_FAILED)
            copy_error(err, c->s);
        else
            set_error(err, SMTPKIT_ERR_CONNECT, "the connection is closed");
        if (c->failed_phase < 0)
            c->failed_phase = (int)smtpkit_session_phase(c->s);
        harvest(c, b, &prev, &cur, 1, err);
        close_transport(c);
    }
    return next;
}

/* smtpkit_conn_send is a batch of one message. */
struct one {
    const smtpkit_envelope *env;
    const smtpkit_body_source *src;
    smtpkit_error *err;
    int failed;
};

static int one_next(void *ud, size_t i, smtpkit_envelope *env,
                    const smtpkit_body_source **src, smtpkit_error *err)
{
    struct one *o = ud;
    (void)i;
    (void)err;
    *env = *o->env;
    *src = o->src;
    return 0;
}

static void one_done(void *ud, size_t i, const smtpkit_result *res, const smtpkit_error *err,
                     int resendable)
{
    struct one *o = ud;
    (void)i;
    (void)res;        /* smtpkit_conn_result gives it */
    (void)resendable; /* smtpkit_conn_resendable says it */
    if (err) {
        copy_error_from(o->err, err);
        o->failed = 1;
    }
}

int smtpkit_conn_send(smtpkit_conn *c, const smtpkit_envelope *env,
                      const smtpkit_body_source *src, smtpkit_error *err)
{
    struct one o = { env, src, err, 0 };
    smtpkit_batch b = { 1, one_next, one_done, &o };
    smtpkit_error e;
    if (smtpkit_conn_send_batch(c, &b, &e) == 0) {
        copy_error_from(err, &e);   /* the connection was found closed: never begun */
        return -1;
    }
    return o.failed ? -1 : 0;
}

int smtpkit_conn_failed_phase(const smtpkit_conn *c)
{
    return c->failed_phase;
}

const smtpkit_result *smtpkit_conn_result(const smtpkit_conn *c)
{
    return c->began ? smtpkit_session_result(c->s) : NULL;
}

int smtpkit_conn_resendable(const smtpkit_conn *c)
{
    if (!c->began && smtpkit_session_want(c->s) != SMTPKIT_WANT_FAILED)
        return c->failed_phase >= 0;   /* the connection was closed: nothing was sent */
    /* the engine's rule: EOF or 421 while idle or before MAIL was answered */
    return smtpkit_session_resendable(c->s);
}

int smtpkit_conn_ready(const smtpkit_conn *c)
{
    return c->fd >= 0 && smtpkit_session_want(c->s) == SMTPKIT_WANT_READY;
}

void smtpkit_conn_quit(smtpkit_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0 && smtpkit_session_want(c->s) == SMTPKIT_WANT_READY
        && smtpkit_session_quit(c->s) == 0) {
        c->src = NULL;
        run(c);
    }
    close_transport(c);
}

void smtpkit_conn_free(smtpkit_conn *c)
{
    if (!c)
        return;
    close_transport(c);
    smtpkit_session_free(c->s);
    free(c);
}

const smtpkit_session *smtpkit_conn_session(const smtpkit_conn *c)
{
    return c->s;
}

const char *smtpkit_conn_peer(const smtpkit_conn *c)
{
    return c->peer;
}

const char *smtpkit_conn_tls_version(const smtpkit_conn *c)
{
    return c->tls ? smtpkit_tls_version(c->tls) : NULL;
}

const char *smtpkit_conn_tls_cipher(const smtpkit_conn *c)
{
    return c->tls ? smtpkit_tls_cipher(c->tls) : NULL;
}

int smtpkit_conn_tls_resumed(const smtpkit_conn *c)
{
    return c->tls ? smtpkit_tls_resumed(c->tls) : 0;
}
