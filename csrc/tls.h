/*
 * tls.h - the OpenSSL side of smtpkit.net: a client TLS configuration
 * (SSL_CTX, trust, client certificate, the last session for resumption) and
 * TLS over a connected non-blocking socket, with deadlines.
 *
 * Defaults: TLS 1.2 at least (set explicitly, not left to the system's
 * security level); certificate verification on, with the host name checked
 * (or the IP address, when the host is an address); the system trust store.
 * cafile / capath ADD to the system store, so a relay's private CA can be
 * appended while public servers keep working; system_trust = 0 trusts only
 * cafile / capath. verify = 0 turns verification off (the caller traces that
 * this is insecure).
 *
 * Failures produce a message that says which check failed and how to fix it:
 *   certificate verify failed: unable to get local issuer certificate
 *   (smtp.example.com:587; trust: system store) - set cafile to the relay's CA bundle
 */
#ifndef SMTPKIT_TLS_H
#define SMTPKIT_TLS_H

#include <stddef.h>

typedef struct smtpkit_tls_config {
    const char *cafile;       /* PEM bundle added to the trust store, or NULL */
    const char *capath;       /* hashed directory added to the trust store, or NULL */
    int system_trust;         /* 1 (default): load the system store too */
    int verify;               /* 1 (default): verify the chain and the host name */
    const char *client_cert;  /* PEM client certificate (chain), or NULL */
    const char *client_key;   /* its PEM private key (NULL: in client_cert) */
    int min_version;          /* 0: TLS 1.2; 13: TLS 1.3 */
} smtpkit_tls_config;

/* Fills c with the defaults above. */
void smtpkit_tls_config_init(smtpkit_tls_config *c);

/* One per client: the SSL_CTX and the last session of the server it talks to
 * (resumed when the client reconnects). */
typedef struct smtpkit_tls_client smtpkit_tls_client;

/* Loads the trust store and client certificate. Returns NULL with a message
 * (a file that cannot be read names the option to fix) on failure. Copies
 * what it needs from c. */
smtpkit_tls_client *smtpkit_tls_client_new(const smtpkit_tls_config *c,
                                           char *err, size_t errlen);
/* Frees the SSL_CTX and the kept session. NULL is fine. */
void smtpkit_tls_client_free(smtpkit_tls_client *c);
/* 1 when verification is on. */
int smtpkit_tls_client_verifies(const smtpkit_tls_client *c);
/* "system store", "system store + cafile /x", "cafile /x" ...; owned by c. */
const char *smtpkit_tls_client_trust(const smtpkit_tls_client *c);

/* One TLS connection over a socket the caller owns (it is not closed here). */
typedef struct smtpkit_tls smtpkit_tls;

/* Handshakes as a client on the non-blocking socket fd, by deadline_ms
 * (smtpkit_net_now_ms clock). host is the name for SNI and the certificate
 * check (an IP address is checked as an address, and sent no SNI); peer
 * ("host:port") is for messages. Resumes the client's last session when it
 * has one. Returns NULL on failure: *timed_out says whether the deadline
 * passed, err the message. */
smtpkit_tls *smtpkit_tls_handshake(smtpkit_tls_client *c, int fd, const char *host,
                                   const char *peer, long long deadline_ms,
                                   int *timed_out, char *err, size_t errlen);

#define SMTPKIT_TLS_IO_WANT_READ  (-2)
#define SMTPKIT_TLS_IO_WANT_WRITE (-3)
#define SMTPKIT_TLS_IO_ERROR      (-1)
/* Reads up to n bytes: > 0 bytes read, 0 the peer closed, or one of the
 * SMTPKIT_TLS_IO_* codes (ERROR: message in err). */
long smtpkit_tls_read(smtpkit_tls *t, char *buf, size_t n, char *err, size_t errlen);
/* Writes up to n bytes (partial writes allowed): > 0 written, or a code. */
long smtpkit_tls_write(smtpkit_tls *t, const char *buf, size_t n, char *err, size_t errlen);
/* Sends close_notify (without waiting) and frees t. NULL is fine. */
void smtpkit_tls_free(smtpkit_tls *t);

const char *smtpkit_tls_version(const smtpkit_tls *t);  /* "TLSv1.3" */
const char *smtpkit_tls_cipher(const smtpkit_tls *t);
int smtpkit_tls_resumed(const smtpkit_tls *t);

#endif
