/* DATA encoder speed against memcpy of the same bytes (the limit): a 64 MiB
 * body of 76-octet lines (CRLF, a few LF-only and dot-led lines), encoded in
 * 64 KiB chunks into a 128 KiB output buffer, as the engine does. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "session.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile unsigned char sink;

int main(int argc, char **argv)
{
    size_t size = (size_t)64 << 20, i = 0, line = 0, chunk = 65536;
    int rounds = argc > 1 ? atoi(argv[1]) : 8, r;
    const char *kind = argc > 2 ? argv[2] : "crlf";
    char *body = malloc(size), *out = malloc(2 * chunk + 16);
    double t0, t_enc = 1e9, t_cpy = 1e9;
    unsigned long long produced = 0;

    if (!body || !out)
        return 1;
    while (i < size) {
        /* one line: 74 letters then CRLF; every 50th line LF only; every 20th starts with '.' */
        size_t k, n = 74;
        for (k = 0; k < n && i < size; k++)
            body[i++] = (char)((k == 0 && line % 20 == 0) ? '.' : 'a' + (int)((k + line) % 26));
        if (strcmp(kind, "lf") == 0 || line % 50 == 0) {
            if (i < size)
                body[i++] = '\n';
        } else {
            if (i < size)
                body[i++] = '\r';
            if (i < size)
                body[i++] = '\n';
        }
        line++;
    }
    for (r = 0; r < rounds; r++) {
        smtpkit_data_encoder e;
        size_t off = 0;
        double t;
        smtpkit_data_init(&e, 0);
        produced = 0;
        t0 = now();
        while (off < size) {
            size_t n = size - off < chunk ? size - off : chunk, used, o;
            const char *p = body + off;
            while (n > 0) {
                if (smtpkit_data_encode(&e, p, n, &used, out, 2 * chunk, &o) != SMTPKIT_DATA_OK)
                    return 2;
                sink ^= (unsigned char)out[o ? o - 1 : 0];
                produced += o;
                p += used;
                n -= used;
                off += used;
            }
        }
        produced += smtpkit_data_finish(&e, out);
        t = now() - t0;
        if (t < t_enc)
            t_enc = t;
        t0 = now();
        for (off = 0; off < size; off += chunk) {
            size_t n = size - off < chunk ? size - off : chunk;
            memcpy(out, body + off, n);
            sink ^= (unsigned char)out[n - 1];
        }
        t = now() - t0;
        if (t < t_cpy)
            t_cpy = t;
    }
    printf("data encoder (%s body, %zu MiB, 64 KiB chunks): %.2f GB/s in, %.2f GB/s out  |  "
           "memcpy same bytes: %.2f GB/s  |  ratio %.2f of memcpy\n",
           kind, size >> 20, (double)size / t_enc / 1e9, (double)produced / t_enc / 1e9,
           (double)size / t_cpy / 1e9, t_cpy / t_enc);
    /* The same body through a session: body() into the output buffer, the
     * transport taking the output each time it is full (what net.c does). */
    {
        double t_ses = 1e9;
        for (r = 0; r < rounds; r++) {
            smtpkit_session_options so;
            smtpkit_session *s;
            smtpkit_recipient rc = {"a@x", NULL, NULL};
            smtpkit_envelope env;
            size_t off = 0, n, used;
            const char *p;
            double t;
            smtpkit_session_options_init(&so);
            so.tls = SMTPKIT_TLS_NONE;
            s = smtpkit_session_new(&so, NULL, 0);
            smtpkit_session_receive(s, "220 x\r\n", 7);
            smtpkit_session_output(s, &n);
            smtpkit_session_written(s, n);
            smtpkit_session_receive(s, "250 x\r\n", 7);
            memset(&env, 0, sizeof env);
            env.from = "me@x";
            env.rcpt = &rc;
            env.nrcpt = 1;
            env.size = -1;
            smtpkit_session_begin(s, &env);
            smtpkit_session_output(s, &n);
            smtpkit_session_written(s, n);
            smtpkit_session_receive(s, "250 a\r\n250 b\r\n354 c\r\n", 21);
            t0 = now();
            while (off < size) {
                if (smtpkit_session_want(s) == SMTPKIT_WANT_WRITE) {
                    p = smtpkit_session_output(s, &n);
                    sink ^= (unsigned char)p[n - 1];
                    smtpkit_session_written(s, n);
                    continue;
                }
                n = size - off < chunk ? size - off : chunk;
                if (smtpkit_session_body(s, body + off, n, &used) != 0)
                    return 3;
                off += used;
            }
            smtpkit_session_body_end(s);
            p = smtpkit_session_output(s, &n);
            sink ^= (unsigned char)p[n - 1];
            t = now() - t0;
            if (t < t_ses)
                t_ses = t;
            smtpkit_session_free(s);
        }
        printf("session body path (%s body, 64 KiB output buffer): %.2f GB/s in\n", kind,
               (double)size / t_ses / 1e9);
    }
    free(body);
    free(out);
    return 0;
}
