/* classify_bench.c - smtpkit_classify in C alone: classifications per second
 * of the same typical one-line replies as bench/classify_samples.lua (which
 * run_classify.sh passes on stdin, one per line). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "classify.h"

#define MAXS 256

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    static char buf[MAXS][1024];
    size_t len[MAXS], n = 0, i;
    smtpkit_verdict v;
    double t0, t;
    unsigned long count = 0, sink = 0;

    while (n < MAXS && fgets(buf[n], sizeof buf[n], stdin)) {
        len[n] = strcspn(buf[n], "\n");
        buf[n][len[n]] = '\0';
        if (len[n])
            n++;
    }
    if (!n)
        return 1;
    t0 = now();
    do {
        int rep;
        for (rep = 0; rep < 1000; rep++)
            for (i = 0; i < n; i++) {
                smtpkit_classify(buf[i], len[i], &v);
                sink += v.reason;
            }
        count += 1000 * n;
    } while ((t = now() - t0) < 1.0);
    printf("C        alone    %12.0f classifications/s (%lu)\n", count / t, sink % 2);
    return 0;
}
