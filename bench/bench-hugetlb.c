/* bench-hugetlb.c: the timed parts of bench/run-hugetlb.sh, each populating one hugetlbfs
 * file and printing the seconds the population took (nothing else), so the driver can put
 * them side by side:
 *   bench-hugetlb kernel FILE SIZE            fallocate(2), the kernel's single-threaded path
 *   bench-hugetlb lib FILE SIZE THREADS       pad_hugetlb_fallocate() (broker from
 *                                             $PADCLIENT_BUS, else PADCLIENT_FALLBACK_HELPERS)
 *   bench-hugetlb loop FILE SIZE THREADS      the machine's limit: THREADS plain threads calling
 *                                             MADV_POPULATE_WRITE on disjoint ranges of one
 *                                             shared mapping, nothing else
 *   bench-hugetlb sizes DIR THREADS ROUNDS SIZE...
 *                                             the table: for each SIZE fallocate(2), the plain
 *                                             loop, the library, and the library without the
 *                                             broker (PADCLIENT_FALLBACK_HELPERS helpers at the
 *                                             caller's priority), on fresh files in DIR, in an
 *                                             order that turns every round; each measurement
 *                                             repeats the call on a fresh file until 1 GiB is
 *                                             done; prints the medians of ROUNDS per call
 *   bench-hugetlb calls DIR COUNT ROUNDS      COUNT calls of 2-10 MiB in a row (the same random
 *                                             sizes for both), each on an emptied file,
 *                                             fallocate(2) and the library interleaved in
 *                                             blocks of 100 calls; prints the medians
 * SIZE takes K/M/G suffixes. In the first three modes the file is created (or truncated)
 * first and left populated: the driver removes it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "padclient.h"
#include "util.h"

/* N threads (the caller is one of them), disjoint ranges aligned to the huge page size. */
static int run_loop(int fd, uint64_t size, unsigned n) {
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return -errno;

        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        int r = bench_populate_loop(p, size, (uint64_t) sfs.f_bsize, n);
        munmap(p, size);
        return r;
}

static int run_lib_quiet(pad_client *c, int fd, uint64_t size, unsigned n, unsigned flags) {
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = n, .ret_msg = msg, .ret_msg_len = sizeof(msg),
                          .tag = "bench-hugetlb", .flags = flags };
        int r = pad_hugetlb_fallocate(c, fd, 0, 0, size, &o, NULL);

        if (r < 0)
                fprintf(stderr, "bench-hugetlb: %s\n", msg);
        return r;
}

static int run_lib(pad_client *c, int fd, uint64_t size, unsigned n) {
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = n, .ret_msg = msg, .ret_msg_len = sizeof(msg),
                          .tag = "bench-hugetlb" };
        pad_job_stats st = {};

        int r = pad_hugetlb_fallocate(c, fd, 0, 0, size, &o, &st);
        if (r < 0)
                fprintf(stderr, "bench-hugetlb: %s\n", msg);
        else
                fprintf(stderr, "bench-hugetlb: %u threads ran (%u helpers granted, %s)\n", st.threads,
                        st.granted, st.brokered ? "broker" : "fallback");
        return r;
}

/* ---- The table of sizes -------------------------------------------------------------------- */

typedef enum Method { M_KERNEL, M_LIB, M_LOOP, M_LIB_LOCAL, M_COUNT } Method;
static const char *const method_names[M_COUNT] = { "fallocate(2)", "library", "plain loop", "library, no broker" };

static int run_method(Method m, pad_client *c, int fd, uint64_t size, unsigned n) {
        switch (m) {
        case M_KERNEL: return fallocate(fd, 0, 0, (off_t) size) < 0 ? -errno : 0;
        case M_LIB: return run_lib_quiet(c, fd, size, n, 0);
        case M_LIB_LOCAL: return run_lib_quiet(c, fd, size, n, PAD_JOB_NO_BROKER);
        default: return run_loop(fd, size, n);
        }
}

/* Seconds per call: the call repeated on a fresh file until 1 GiB is done; only the calls
 * are timed (the truncation that gives the pages back is not). */
static double measure(Method m, pad_client *c, const char *path, uint64_t size, unsigned n) {
        uint64_t iters = MAX(UINT64_C(1) << 30, size) / size;
        double total = 0;

        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -1;
        for (uint64_t i = 0; i < iters; i++) {
                double t0 = bench_now();
                int r = run_method(m, c, fd, size, n);
                total += bench_now() - t0;
                if (r < 0 || ftruncate(fd, 0) < 0) {
                        fprintf(stderr, "bench-hugetlb: %s of %llu bytes: %s\n", method_names[m],
                                (unsigned long long) size, strerror(r < 0 ? -r : errno));
                        close(fd);
                        return -1;
                }
        }
        close(fd);
        unlink(path);
        return total / (double) iters;
}

static int run_sizes(pad_client *c, const char *dir, unsigned n, unsigned rounds, char **sizes, unsigned n_sizes) {
        double t[n_sizes][M_COUNT][rounds];
        char path[4096];

        snprintf(path, sizeof(path), "%s/bench-sizes", dir);
        for (unsigned r = 0; r < rounds; r++)
                for (unsigned i = 0; i < n_sizes; i++)
                        for (unsigned j = 0; j < M_COUNT; j++) {
                                Method m = (Method) ((j + r + i) % M_COUNT);     /* turns each round */
                                t[i][m][r] = measure(m, c, path, bench_parse_size(sizes[i]), n);
                                if (t[i][m][r] < 0)
                                        return 1;
                        }
        printf("%-6s %13s %12s %12s %12s %9s %9s %9s %9s\n", "size", "fallocate(2)", "plain loop", "library",
               "no broker", "lib/kern", "lib/loop", "nb/kern", "nb/loop");
        for (unsigned i = 0; i < n_sizes; i++) {
                double k = bench_median(t[i][M_KERNEL], rounds), l = bench_median(t[i][M_LIB], rounds),
                       p = bench_median(t[i][M_LOOP], rounds), b = bench_median(t[i][M_LIB_LOCAL], rounds);
                printf("%-6s %10.3f ms %9.3f ms %9.3f ms %9.3f ms %8.3fx %8.3fx %8.3fx %8.3fx\n", sizes[i], k * 1e3,
                       p * 1e3, l * 1e3, b * 1e3, k / l, p / l, k / b, p / b);
        }
        return 0;
}

/* ---- Many small calls ---------------------------------------------------------------------------- */

#define CALLS_BLOCK 100

/* One block of calls on fd (emptied before each), the sizes from sizes[], the library with
 * its default thread count; seconds. */
static double calls_block(Method m, pad_client *c, int fd, const uint64_t *sizes, unsigned count) {
        double t0 = bench_now();

        for (unsigned i = 0; i < count; i++)
                if (ftruncate(fd, 0) < 0 || run_method(m, c, fd, sizes[i], 0) < 0)
                        return -1;
        return bench_now() - t0;
}

static int run_calls(pad_client *c, const char *dir, unsigned count, unsigned rounds) {
        _cleanup_free_ uint64_t *sizes = calloc(count, sizeof(*sizes));
        double t[2][rounds];
        char path[4096];

        if (!sizes)
                return 1;
        srand(1);
        for (unsigned i = 0; i < count; i++)
                sizes[i] = (uint64_t) (2 + rand() % 9) << 20;       /* 2-10 MiB */
        snprintf(path, sizeof(path), "%s/bench-calls", dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return 1;
        for (unsigned r = 0; r < rounds; r++) {
                t[0][r] = t[1][r] = 0;
                for (unsigned b = 0; b < count; b += CALLS_BLOCK)
                        for (unsigned j = 0; j < 2; j++) {
                                unsigned w = (j + b / CALLS_BLOCK) % 2;
                                double s = calls_block(w ? M_LIB : M_KERNEL, c, fd, sizes + b, MIN(CALLS_BLOCK, count - b));
                                if (s < 0) {
                                        fprintf(stderr, "bench-hugetlb calls: %s\n", strerror(errno));
                                        return 1;
                                }
                                t[w][r] += s;
                        }
        }
        close(fd);
        unlink(path);
        double k = bench_median(t[0], rounds), l = bench_median(t[1], rounds);
        printf("%u calls of 2-10 MiB, each on an emptied file (truncation included), median of %u:\n", count, rounds);
        printf("  fallocate(2) %.3f s, library %.3f s: library speed %.3fx fallocate(2)\n", k, l, k / l);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 6 && strcmp(argv[1], "sizes") == 0) {
                pad_client *c = NULL;
                if (pad_client_new(NULL, &c) < 0)
                        return 1;
                int r = run_sizes(c, argv[2], (unsigned) atoi(argv[3]), (unsigned) atoi(argv[4]), argv + 5,
                                  (unsigned) (argc - 5));
                pad_client_free(c);
                return r;
        }
        if (argc == 5 && strcmp(argv[1], "calls") == 0) {
                pad_client *c = NULL;
                if (pad_client_new(NULL, &c) < 0)
                        return 1;
                int r = run_calls(c, argv[2], (unsigned) atoi(argv[3]), (unsigned) atoi(argv[4]));
                pad_client_free(c);
                return r;
        }
        if (argc < 4 || (strcmp(argv[1], "kernel") != 0 && argc < 5)) {
                fprintf(stderr, "usage: %s kernel|lib|loop FILE SIZE [THREADS]\n", argv[0]);
                return 2;
        }
        uint64_t size = bench_parse_size(argv[3]);
        unsigned n = argc > 4 ? (unsigned) atoi(argv[4]) : 1;
        if (size == 0 || n < 1 || n > BENCH_THREADS_MAX)
                return 2;
        int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(argv[2]);
                return 1;
        }

        /* The connection is made before the clock starts; the lease is inside the call. */
        pad_client *c = NULL;
        int r = strcmp(argv[1], "lib") == 0 ? pad_client_new(NULL, &c) : 0;
        if (r < 0)
                return 1;
        double t0 = bench_now();
        if (strcmp(argv[1], "kernel") == 0)
                r = fallocate(fd, 0, 0, (off_t) size) < 0 ? -errno : 0;
        else if (strcmp(argv[1], "lib") == 0)
                r = run_lib(c, fd, size, n);
        else
                r = run_loop(fd, size, n);
        double t1 = bench_now();
        pad_client_free(c);
        close(fd);
        if (r < 0) {
                fprintf(stderr, "bench-hugetlb %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        printf("%.6f\n", t1 - t0);
        return 0;
}
