/*
 * tls.c - OpenSSL for smtpkit.net: see tls.h. The only C file (with net.c's
 * callers) that includes OpenSSL headers; smtpkit.core never links it.
 */
#include "tls.h"
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct smtpkit_tls_client {
    SSL_CTX *ctx;
    SSL_SESSION *session;     /* the last session the server gave (resumption) */
    int verify;
    char trust[600];
};

struct smtpkit_tls {
    SSL *ssl;
    char names[300];   /* the names the leaf certificate carries, for messages */
};

void smtpkit_tls_config_init(smtpkit_tls_config *c)
{
    memset(c, 0, sizeof *c);
    c->system_trust = 1;
    c->verify = 1;
}

/* The first queued OpenSSL error as text, the queue cleared. */
static void ssl_errstr(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "unknown error");
    } else {
        char tmp[256];
        ERR_error_string_n(e, tmp, sizeof tmp);
        /* "error:0A000086:SSL routines::certificate verify failed" -> the reason */
        const char *r = strrchr(tmp, ':');
        snprintf(buf, len, "%s", r && r[1] ? r + 1 : tmp);
    }
    ERR_clear_error();
}

static int verify_cb(int ok, X509_STORE_CTX *x);

/* TLS 1.3 tickets arrive after the handshake: keep the newest session. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    smtpkit_tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!c)
        return 0;
    if (c->session)
        SSL_SESSION_free(c->session);
    c->session = sess;
    return 1;   /* we keep the reference */
}

smtpkit_tls_client *smtpkit_tls_client_new(const smtpkit_tls_config *cfg,
                                           char *err, size_t errlen)
{
    char why[256];
    smtpkit_tls_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->verify = cfg->verify;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx) {
        ssl_errstr(why, sizeof why);
        snprintf(err, errlen, "TLS setup failed: %s", why);
        free(c);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c->ctx, cfg->min_version == 13 ? TLS1_3_VERSION
                                                                  : TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                 | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT
                                               | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
    SSL_CTX_set_app_data(c->ctx, c);

    size_t tl = 0;
    c->trust[0] = 0;
    if (cfg->system_trust) {
        if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
            ERR_clear_error();   /* no system store: cafile may still do */
        tl += (size_t)snprintf(c->trust + tl, sizeof c->trust - tl, "system store");
    }
    if (cfg->cafile || cfg->capath) {
        if (SSL_CTX_load_verify_locations(c->ctx, cfg->cafile, cfg->capath) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "cannot load %s %s: %s - check the %s option",
                     cfg->cafile ? "cafile" : "capath",
                     cfg->cafile ? cfg->cafile : cfg->capath, why,
                     cfg->cafile ? "cafile" : "capath");
            smtpkit_tls_client_free(c);
            return NULL;
        }
        if (cfg->cafile && tl < sizeof c->trust)
            tl += (size_t)snprintf(c->trust + tl, sizeof c->trust - tl, "%scafile %s",
                                   tl ? " + " : "", cfg->cafile);
        if (cfg->capath && tl < sizeof c->trust)
            tl += (size_t)snprintf(c->trust + tl, sizeof c->trust - tl, "%scapath %s",
                                   tl ? " + " : "", cfg->capath);
    }
    if (!c->trust[0])
        snprintf(c->trust, sizeof c->trust, "nothing (no system store, no cafile)");
    SSL_CTX_set_verify(c->ctx, cfg->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       cfg->verify ? verify_cb : NULL);

    if (cfg->client_cert) {
        const char *key = cfg->client_key ? cfg->client_key : cfg->client_cert;
        if (SSL_CTX_use_certificate_chain_file(c->ctx, cfg->client_cert) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "cannot load client_cert %s: %s", cfg->client_cert, why);
            smtpkit_tls_client_free(c);
            return NULL;
        }
        if (SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_check_private_key(c->ctx) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errlen, "cannot use client_key %s: %s", key, why);
            smtpkit_tls_client_free(c);
            return NULL;
        }
    } else if (cfg->client_key) {
        snprintf(err, errlen, "client_key given without client_cert");
        smtpkit_tls_client_free(c);
        return NULL;
    }
    return c;
}

void smtpkit_tls_client_free(smtpkit_tls_client *c)
{
    if (!c)
        return;
    if (c->session)
        SSL_SESSION_free(c->session);
    if (c->ctx) {
        SSL_CTX_set_app_data(c->ctx, NULL);
        SSL_CTX_free(c->ctx);
    }
    free(c);
}

int smtpkit_tls_client_verifies(const smtpkit_tls_client *c)
{
    return c->verify;
}

const char *smtpkit_tls_client_trust(const smtpkit_tls_client *c)
{
    return c->trust;
}

static int is_ip(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The DNS names (and IPs) a certificate is valid for, for messages. */
static void cert_names(X509 *x, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    if (!x)
        return;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && o + 64 < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const unsigned char *s = ASN1_STRING_get0_data(g->d.dNSName);
            int n = ASN1_STRING_length(g->d.dNSName);
            if (n > 60)
                n = 60;
            o += (size_t)snprintf(out + o, len - o, "%s%.*s", o ? ", " : "", n, s);
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
            char ip[INET6_ADDRSTRLEN] = "?";
            if (n == 4)
                inet_ntop(AF_INET, p, ip, sizeof ip);
            else if (n == 16)
                inet_ntop(AF_INET6, p, ip, sizeof ip);
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? ", " : "", ip);
        }
    }
    if (gens)
        GENERAL_NAMES_free(gens);
    if (!o) {
        char cn[128];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                      sizeof cn) > 0)
            snprintf(out, len, "CN=%s", cn);
    }
}

/* Keeps the leaf's names when its check fails (the peer certificate is not
 * available after a failed TLS 1.3 handshake). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok && X509_STORE_CTX_get_error_depth(x) == 0) {
        SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
        smtpkit_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
        X509 *cert = X509_STORE_CTX_get_current_cert(x);
        if (t && cert && !t->names[0])
            cert_names(cert, t->names, sizeof t->names);
    }
    return ok;
}

/* Explains a failed handshake: which check failed and how to fix it. */
static void explain_failure(smtpkit_tls_client *c, smtpkit_tls *t, const char *host,
                            const char *peer, const char *sslwhy, char *err, size_t errlen)
{
    long v = SSL_get_verify_result(t->ssl);
    const char *names = t->names;
    if (strstr(sslwhy, "wrong version number")) {
        snprintf(err, errlen, "TLS handshake failed: %s (%s) - the server did not answer in "
                 "TLS: this port may want STARTTLS (tls = \"starttls\") rather than implicit TLS",
                 sslwhy, peer);
        return;
    }
    if (!c->verify || v == X509_V_OK) {
        snprintf(err, errlen, "TLS handshake failed: %s (%s) - the server may not speak "
                 "TLS 1.2 or later, or may want a client certificate (client_cert, client_key)",
                 sslwhy, peer);
        return;
    }
    const char *vs = X509_verify_cert_error_string(v);
    switch (v) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(err, errlen, "certificate host name mismatch: the certificate is not valid "
                 "for %s (it names: %s) (%s) - connect with a name the certificate carries",
                 host, names[0] ? names : "nothing", peer);
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(err, errlen, "certificate verify failed: certificate has expired (%s) - "
                 "the server must renew its certificate (or check this machine's clock)",
                 peer);
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(err, errlen, "certificate verify failed: certificate is not yet valid "
                 "(%s) - check this machine's clock", peer);
        break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(err, errlen, "certificate verify failed: %s (%s; trust: %s) - set cafile "
                 "to the relay's CA bundle%s", vs, peer, c->trust,
                 v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                     ? " (for a self-signed server: its certificate)" : "");
        break;
    default:
        snprintf(err, errlen, "certificate verify failed: %s (%s; trust: %s)", vs, peer,
                 c->trust);
        break;
    }
}

smtpkit_tls *smtpkit_tls_handshake(smtpkit_tls_client *c, int fd, const char *host,
                                   const char *peer, long long deadline_ms,
                                   int *timed_out, char *err, size_t errlen)
{
    char why[256];
    *timed_out = 0;
    ERR_clear_error();
    smtpkit_tls *t = calloc(1, sizeof *t);
    if (!t || !(t->ssl = SSL_new(c->ctx))) {
        snprintf(err, errlen, "TLS setup failed: out of memory");
        free(t);
        return NULL;
    }
    SSL *ssl = t->ssl;
    SSL_set_app_data(ssl, t);
    SSL_set_fd(ssl, fd);
    int ip = is_ip(host);
    if (!ip)
        SSL_set_tlsext_host_name(ssl, host);
    if (c->verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(p, host)
                    : X509_VERIFY_PARAM_set1_host(p, host, 0);
        if (ok != 1) {
            snprintf(err, errlen, "TLS setup failed: cannot check the name %s", host);
            smtpkit_tls_free(t);
            return NULL;
        }
    }
    if (c->session)
        SSL_set_session(ssl, c->session);
    for (;;) {
        errno = 0;
        int r = SSL_connect(ssl);
        if (r == 1)
            return t;
        int e = SSL_get_error(ssl, r);
        short ev;
        if (e == SSL_ERROR_WANT_READ)
            ev = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev = POLLOUT;
        else {
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                snprintf(why, sizeof why, "%s", errno ? strerror(errno)
                                                      : "the server closed the connection");
            else
                ssl_errstr(why, sizeof why);
            explain_failure(c, t, host, peer, why, err, errlen);
            smtpkit_tls_free(t);
            return NULL;
        }
        int w = smtpkit_net_wait(fd, ev, deadline_ms);
        if (w <= 0) {
            *timed_out = w == 0;
            snprintf(err, errlen, "TLS handshake %s (%s)",
                     w == 0 ? "timed out" : strerror(errno), peer);
            smtpkit_tls_free(t);
            return NULL;
        }
    }
}

static long io_result(smtpkit_tls *t, int r, char *err, size_t errlen)
{
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return SMTPKIT_TLS_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return SMTPKIT_TLS_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
                return 0;   /* closed without close_notify: an EOF for SMTP */
            snprintf(err, errlen, "%s", strerror(errno));
            return SMTPKIT_TLS_IO_ERROR;
        }
        /* fall through */
    default: {
        char why[256];
        ssl_errstr(why, sizeof why);
        snprintf(err, errlen, "TLS error: %s", why);
        return SMTPKIT_TLS_IO_ERROR;
    }
    }
}

long smtpkit_tls_read(smtpkit_tls *t, char *buf, size_t n, char *err, size_t errlen)
{
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(t->ssl, buf, (int)n);
    if (r > 0)
        return r;
    return io_result(t, r, err, errlen);
}

long smtpkit_tls_write(smtpkit_tls *t, const char *buf, size_t n, char *err, size_t errlen)
{
    if (n > 0x7fffffff)
        n = 0x7fffffff;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(t->ssl, buf, (int)n);
    if (r > 0)
        return r;
    long x = io_result(t, r, err, errlen);
    if (x == 0) {
        snprintf(err, errlen, "the server closed the connection");
        return SMTPKIT_TLS_IO_ERROR;
    }
    return x;
}

void smtpkit_tls_free(smtpkit_tls *t)
{
    if (!t)
        return;
    if (t->ssl) {
        if (SSL_is_init_finished(t->ssl))
            SSL_shutdown(t->ssl);   /* non-blocking: sends close_notify if it can */
        SSL_free(t->ssl);
    }
    ERR_clear_error();
    free(t);
}

const char *smtpkit_tls_version(const smtpkit_tls *t)
{
    return SSL_get_version(t->ssl);
}

const char *smtpkit_tls_cipher(const smtpkit_tls *t)
{
    return SSL_get_cipher_name(t->ssl);
}

int smtpkit_tls_resumed(const smtpkit_tls *t)
{
    return SSL_session_reused(t->ssl);
}
