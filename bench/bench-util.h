/* bench-util.h: the clock, median and argument helpers the benchmark programs share, and
 * the plain loop of threads populating disjoint ranges that the memory benchmarks measure
 * the library against. Header-only; sizes are parsed by the project's own common/parse.c. */
#pragma once

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define BENCH_THREADS_MAX 256

typedef struct BenchSlice {
        uint8_t *p;
        uint64_t len;
        int error;
} BenchSlice;

static inline void *bench_slice_populate(void *arg) {
        BenchSlice *s = arg;

        if (madvise(s->p, s->len, MADV_POPULATE_WRITE) < 0)
                s->error = errno;
        return NULL;
}

/* The machine's limit: n threads (the caller one of them, n <= BENCH_THREADS_MAX) calling
 * MADV_POPULATE_WRITE on disjoint ranges of [p, p + size) whose edges are multiples of unit.
 * 0 or the first negative errno. */
static inline int bench_populate_loop(uint8_t *p, uint64_t size, uint64_t unit, unsigned n) {
        pthread_t t[BENCH_THREADS_MAX];
        BenchSlice s[BENCH_THREADS_MAX] = {};
        uint64_t units = size / unit;

        for (unsigned i = 0; i < n; i++) {
                uint64_t a = units * i / n, b = units * (i + 1) / n;
                s[i] = (BenchSlice) { p + a * unit, (b - a) * unit, 0 };
        }
        for (unsigned i = 1; i < n; i++)
                if (pthread_create(&t[i], NULL, bench_slice_populate, &s[i]) != 0)
                        return -EAGAIN;
        bench_slice_populate(&s[0]);
        for (unsigned i = 1; i < n; i++)
                pthread_join(t[i], NULL);
        for (unsigned i = 0; i < n; i++)
                if (s[i].error)
                        return -s[i].error;
        return 0;
}
