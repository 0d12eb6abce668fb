/* bench-util.h: the clock, median and argument helpers the benchmark programs share.
 * Header-only; sizes are parsed by the project's own common/parse.c. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "parse.h"

static inline double bench_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/* Sorts v in place. */
static inline double bench_median(double *v, unsigned n) {
        qsort(v, n, sizeof(*v), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A size such as 4G, or 0 (with a message) when it is not one. */
static inline uint64_t bench_parse_size(const char *s) {
        uint64_t v;

        if (parse_size(s, &v) < 0) {
                fprintf(stderr, "not a size: '%s' (bytes with an optional K, M, G or T)\n", s);
                return 0;
        }
        return v;
}
