/* bench-populate.c: the timed part of bench/run-populate.sh. For each KIND and SIZE it
 * populates a fresh anonymous mapping (munmap between measurements) with every method in
 * turn, ROUNDS times, the order turning every round, and prints the medians side by side
 * (and the speed ratios of the best rounds, which the machine disturbs least):
 *   single      one madvise(MADV_POPULATE_WRITE) of the whole range on this thread
 *   loop        THREADS plain threads (this one included) calling MADV_POPULATE_WRITE on
 *               disjoint ranges aligned to the page size of the kind: the machine's limit
 *   lib         pad_mem_populate() with PAD_JOB_NO_BROKER and THREADS - 1 fallback helpers
 *   broker      pad_mem_populate() with helpers lent by paddd at $PADCLIENT_BUS (only when
 *               a broker answers there)
 * Thread creation is inside the time of loop and lib alike; every measurement goes to
 * stderr, the medians to stdout. KIND: 4k (MADV_NOHUGEPAGE),
 * thp (MADV_HUGEPAGE) or hugetlb (MAP_HUGETLB, 2 MiB pages: the pool must hold SIZE).
 * usage: bench-populate THREADS ROUNDS SIZE,... KIND... */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench-util.h"
#include "padclient.h"
#include "util.h"

#define HP (UINT64_C(2) << 20)
#define ROUNDS_MAX 64

enum { M_SINGLE, M_LOOP, M_LIB, M_BROKER, M_COUNT };
static const char *const method_names[M_COUNT] = { "single", "loop", "lib", "broker" };

static pad_client *client;      /* NULL: no broker answered */
static unsigned threads;

static int run_method(int m, uint8_t *p, uint64_t size) {
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = threads, .flags = PAD_JOB_NO_RAISE };

        switch (m) {
        case M_SINGLE:
                return madvise(p, size, MADV_POPULATE_WRITE) < 0 ? -errno : 0;
        case M_LOOP:
                return bench_populate_loop(p, size, HP, threads);
        case M_LIB:
                o.flags |= PAD_JOB_NO_BROKER;
                return pad_mem_populate(NULL, p, size, 0, &o, NULL);
        default:
                return pad_mem_populate(client, p, size, 0, &o, NULL);
        }
}

static uint8_t *map_kind(const char *kind, uint64_t size) {
        bool huge = streq(kind, "hugetlb");
        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0), -1, 0);

        if (p == MAP_FAILED)
                return NULL;
        if (!huge)
                (void) madvise(p, size, streq(kind, "thp") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
        return p;
}

/* Seconds method m takes on a fresh mapping, or a negative number on failure. */
static double measure(int m, const char *kind, uint64_t size) {
        uint8_t *p = map_kind(kind, size);
        double t0, t;
        int r;

        if (!p) {
                fprintf(stderr, "bench-populate: mmap %s: %s\n", kind, strerror(errno));
                return -1;
        }
        t0 = bench_now();
        r = run_method(m, p, size);
        t = bench_now() - t0;
        munmap(p, size);
        if (r < 0) {
                fprintf(stderr, "bench-populate: %s on %s: %s\n", method_names[m], kind, strerror(-r));
                return -1;
        }
        return t;
}

static int bench_one(const char *kind, uint64_t size, unsigned rounds) {
        double v[M_COUNT][ROUNDS_MAX], med[M_COUNT];
        int n_methods = client ? M_COUNT : M_BROKER;

        for (unsigned r = 0; r < rounds; r++)
                for (int k = 0; k < n_methods; k++) {
                        int m = (int) ((k + r) % (unsigned) n_methods);
                        if ((v[m][r] = measure(m, kind, size)) < 0)
                                return -1;
                }
        for (int m = 0; m < n_methods; m++) {
                fprintf(stderr, "%s %s %" PRIu64 " MiB:", kind, method_names[m], size >> 20);
                for (unsigned r = 0; r < rounds; r++)
                        fprintf(stderr, " %.3f", v[m][r]);
                fprintf(stderr, "\n");
                med[m] = bench_median(v[m], rounds);
        }
        if (size % (UINT64_C(1) << 30) == 0)
                printf("%-8s %5" PRIu64 " GiB", kind, size >> 30);
        else
                printf("%-8s %5" PRIu64 " MiB", kind, size >> 20);
        for (int m = 0; m < n_methods; m++)
                printf(" %8.3f %5.2f", med[m], (double) size / (1 << 30) / med[m]);
        printf("   %5.2fx", med[M_LOOP] / med[M_LIB]);
        if (client)
                printf(" %5.2fx", med[M_LOOP] / med[M_BROKER]);
        /* bench_median sorted each row: [0] is the best round. */
        printf("   best %5.2fx", v[M_LOOP][0] / v[M_LIB][0]);
        if (client)
                printf(" %5.2fx", v[M_LOOP][0] / v[M_BROKER][0]);
        printf("\n");
        return 0;
}

int main(int argc, char **argv) {
        char fallback[16];

        if (argc < 5) {
                fprintf(stderr, "usage: bench-populate THREADS ROUNDS SIZE,... KIND...\n");
                return 2;
        }
        threads = (unsigned) atoi(argv[1]);
        unsigned rounds = (unsigned) atoi(argv[2]);
        if (threads < 1 || threads > BENCH_THREADS_MAX || rounds < 1 || rounds > ROUNDS_MAX) {
                fprintf(stderr, "bench-populate: 1-%d threads, 1-%d rounds\n", BENCH_THREADS_MAX, ROUNDS_MAX);
                return 2;
        }
        snprintf(fallback, sizeof fallback, "%u", threads - 1);
        setenv("PADCLIENT_FALLBACK_HELPERS", fallback, 1);
        if (getenv("PADCLIENT_BUS") && pad_client_new(NULL, &client) == 0 && !pad_client_has_broker(client))
                client = pad_client_free(client);

        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("%-14s", "kind size");
        for (int m = 0; m < (client ? M_COUNT : M_BROKER); m++)
                printf(" %8s %5s", method_names[m], "GiB/s");
        printf("   lib/loop speed%s (median, best round)\n", client ? ", broker/loop" : "");
        for (int k = 4; k < argc; k++) {
                _cleanup_free_ char *list = strdup(argv[3]);
                char *save = NULL;
                if (!list)
                        return 1;
                for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
                        uint64_t size = bench_parse_size(s);
                        if (size == 0 || size % HP != 0) {
                                fprintf(stderr, "bench-populate: %s is not a multiple of 2 MiB\n", s);
                                return 1;
                        }
                        if (bench_one(argv[k], size, rounds) < 0)
                                return 1;
                }
        }
        pad_client_free(client);
        return 0;
}
