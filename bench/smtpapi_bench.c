/*
 * smtpapi_bench.c - X-SMTPAPI validation against a bare cJSON_Parse of the
 * same text, and encoding throughput. Run by bench/run_smtpapi.sh.
 *
 *   smtpapi_bench FILE [MAX_RATIO MIN_MBPS]
 *
 * Each figure is the best of several rounds of process CPU time (the
 * machine may be shared). The
 * cJSON baseline is cJSON_Parse + cJSON_Delete (a parse that keeps its tree
 * forever is not a real use); validation includes freeing everything too.
 * Exit status 1 when validation is slower than MAX_RATIO (default 1.5) times
 * the baseline or encoding is slower than MIN_MBPS (default 100) MB/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "smtpapi.h"

static double now_s(void)
{
    struct timespec ts;
    /* CPU time: the machine may be shared, and this code does no I/O */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile size_t sink;

static void run_parse(const char *s, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (!j) {
        fprintf(stderr, "cJSON_Parse failed\n");
        exit(2);
    }
    sink += (size_t)j->type;
    cJSON_Delete(j);
}

static long long fixed_now = 1776384000; /* 2026-04-17: send_at-free fixture anyway */

static void run_validate(const char *s, size_t n)
{
    smtpkit_smtpapi_result res;
    smtpkit_smtpapi_opts o = {0, 0, 0};
    o.now = fixed_now;
    smtpkit_smtpapi_result_init(&res);
    if (smtpkit_smtpapi_validate(s, n, &o, &res) != 1) {
        fprintf(stderr, "validation failed: %s: %s\n",
                res.count ? res.problems[0].path : "?", res.count ? res.problems[0].message : "?");
        exit(2);
    }
    sink += res.warnings;
    smtpkit_smtpapi_result_free(&res);
}

static size_t encoded_len;

static void run_encode(const char *s, size_t n)
{
    smtpkit_smtpapi_result res;
    smtpkit_smtpapi_opts o = {0, 0, 0};
    char *out;
    size_t outlen;
    o.now = fixed_now;
    smtpkit_smtpapi_result_init(&res);
    if (smtpkit_smtpapi_encode(s, n, &o, &out, &outlen, &res) != 1) {
        fprintf(stderr, "encoding failed\n");
        exit(2);
    }
    encoded_len = outlen;
    free(out);
    smtpkit_smtpapi_result_free(&res);
}

/* Seconds per call: best of 7 rounds of about 50 ms each. */
static double measure(void (*fn)(const char *, size_t), const char *s, size_t n)
{
    double best = 1e9;
    long iters = 1;
    int round;
    for (;;) { /* calibrate */
        double t0 = now_s();
        long i;
        for (i = 0; i < iters; i++)
            fn(s, n);
        if (now_s() - t0 > 0.01)
            break;
        iters *= 2;
    }
    iters *= 5;
    for (round = 0; round < 7; round++) {
        double t0 = now_s(), t;
        long i;
        for (i = 0; i < iters; i++)
            fn(s, n);
        t = (now_s() - t0) / (double)iters;
        if (t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    FILE *f;
    char *buf;
    long n;
    double max_ratio = argc > 2 ? atof(argv[2]) : 1.5;
    double min_mbps = argc > 3 ? atof(argv[3]) : 100.0;
    double tp, tv, te, ratio, mbps;
    int rc = 0;

    if (argc < 2 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: smtpapi_bench FILE [MAX_RATIO MIN_MBPS]\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        return 2;
    buf[n] = 0;
    fclose(f);

    tp = measure(run_parse, buf, (size_t)n);
    tv = measure(run_validate, buf, (size_t)n);
    te = measure(run_encode, buf, (size_t)n);
    ratio = tv / tp;
    mbps = (double)n / te / 1e6;
    printf("smtpapi: header of %ld bytes (%s)\n", n, argv[1]);
    printf("  cJSON_Parse+Delete   %8.2f us\n", tp * 1e6);
    printf("  smtpapi validate     %8.2f us   ratio %.2fx (limit %.2fx)\n", tv * 1e6, ratio,
           max_ratio);
    printf("  smtpapi encode       %8.2f us   %.0f MB/s of JSON in, %zu bytes out "
           "(limit >= %.0f MB/s)\n", te * 1e6, mbps, encoded_len, min_mbps);
    if (ratio > max_ratio) {
        printf("  FAIL: validation is %.2fx a bare cJSON_Parse (limit %.2fx)\n", ratio, max_ratio);
        rc = 1;
    }
    if (mbps < min_mbps) {
        printf("  FAIL: encoding runs at %.0f MB/s (limit %.0f)\n", mbps, min_mbps);
        rc = 1;
    }
    free(buf);
    return rc;
}
