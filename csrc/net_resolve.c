/*
 * net_resolve.c - name resolution bounded by the connect deadline: see
 * smtpkit_net_resolve in net.h.
 *
 * getaddrinfo itself cannot be given a timeout (a silent DNS server costs
 * the resolver's 5 s x attempts, whatever the caller's connect timeout). So
 * a name is looked up by getaddrinfo in a detached thread of its own, and
 * the caller waits on a condition variable until its deadline. When the
 * deadline comes first the caller leaves; the lookup runs to its end and the
 * last of the two to let go of the request frees it (a reference count under
 * the request's mutex). Address literals never start a thread.
 */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                 /* the caller and the thread */
    int done;
    int rc;                   /* getaddrinfo's result */
    struct addrinfo *res;
    char host[256];
    char port[16];
};

static void lookup_release(struct lookup *l)
{
    pthread_mutex_lock(&l->mu);
    int last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (last) {
        if (l->res)
            freeaddrinfo(l->res);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
}

static void hints_init(struct addrinfo *h, int flags)
{
    memset(h, 0, sizeof *h);
    h->ai_family = AF_UNSPEC;
    h->ai_socktype = SOCK_STREAM;
    h->ai_flags = flags;
}

static void *lookup_run(void *arg)
{
    struct lookup *l = arg;
    struct addrinfo hints, *res = NULL;
    hints_init(&hints, AI_ADDRCONFIG);
    int rc = getaddrinfo(l->host, l->port, &hints, &res);
    if (rc == EAI_SYSTEM && errno == 0)
        rc = EAI_FAIL;
    pthread_mutex_lock(&l->mu);
    l->rc = rc;
    l->res = rc == 0 ? res : NULL;
    l->done = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    return NULL;
}

int smtpkit_net_resolve(const char *host, int port, long long deadline_ms,
                        struct addrinfo **res, int *timed_out)
{
    struct addrinfo hints;
    char portstr[16];
    *res = NULL;
    *timed_out = 0;
    snprintf(portstr, sizeof portstr, "%d", port);
    /* an address literal: no lookup, no thread */
    hints_init(&hints, AI_NUMERICHOST);
    if (getaddrinfo(host, portstr, &hints, res) == 0)
        return 0;
    *res = NULL;
    if (strlen(host) >= sizeof ((struct lookup *)0)->host)
        return EAI_NONAME;   /* longer than any DNS name (253) */

    struct lookup *l = calloc(1, sizeof *l);
    if (!l)
        return EAI_MEMORY;
    memcpy(l->host, host, strlen(host) + 1);
    memcpy(l->port, portstr, sizeof portstr);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* the deadline's clock */
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->refs = 2;

    pthread_attr_t ta;
    pthread_t t;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    int terr = pthread_create(&t, &ta, lookup_run, l);
    pthread_attr_destroy(&ta);
    if (terr != 0) {
        /* no thread to be had: look it up here, unbounded, as before */
        l->refs = 1;
        lookup_release(l);
        hints_init(&hints, AI_ADDRCONFIG);
        return getaddrinfo(host, portstr, &hints, res);
    }

    struct timespec until;
    until.tv_sec = (time_t)(deadline_ms / 1000);
    until.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    int rc;
    pthread_mutex_lock(&l->mu);
    while (!l->done) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT && !l->done)
            break;
    }
    if (l->done) {
        rc = l->rc;
        *res = l->res;        /* the caller's now */
        l->res = NULL;
    } else {
        rc = EAI_AGAIN;
        *timed_out = 1;
    }
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    return rc;
}
