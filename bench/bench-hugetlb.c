/* bench-hugetlb.c: the timed parts of bench/run-hugetlb.sh, each populating one hugetlbfs
 * file and printing the seconds the population took (nothing else), so the driver can put
 * them side by side:
 *   bench-hugetlb kernel FILE SIZE            fallocate(2), the kernel's single-threaded path
 *   bench-hugetlb lib FILE SIZE THREADS       pad_hugetlb_fallocate() (broker from
 *                                             $PADCLIENT_BUS, else PADCLIENT_FALLBACK_HELPERS)
 *   bench-hugetlb loop FILE SIZE THREADS      the machine's limit: THREADS plain threads calling
 *                                             MADV_POPULATE_WRITE on disjoint ranges of one
 *                                             shared mapping, nothing else
 * SIZE takes K/M/G suffixes. The file is created (or truncated) first and left populated:
 * the driver removes it. */
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

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

typedef struct Slice {
        uint8_t *p;
        uint64_t len;
        int error;
} Slice;

static void *populate(void *arg) {
        Slice *s = arg;
        if (madvise(s->p, s->len, MADV_POPULATE_WRITE) < 0)
                s->error = errno;
        return NULL;
}

/* N threads (the caller is one of them), disjoint ranges aligned to the huge page size. */
static int run_loop(int fd, uint64_t size, unsigned n) {
        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return -errno;
        uint64_t hp = (uint64_t) sfs.f_bsize, pages = size / hp;
        pthread_t t[256];
        Slice s[256] = {};

        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        for (unsigned i = 0; i < n; i++) {
                uint64_t a = pages * i / n, b = pages * (i + 1) / n;
                s[i] = (Slice) { p + a * hp, (b - a) * hp, 0 };
        }
        for (unsigned i = 1; i < n; i++)
                if (pthread_create(&t[i], NULL, populate, &s[i]) != 0)
                        return -EAGAIN;
        populate(&s[0]);
        for (unsigned i = 1; i < n; i++)
                pthread_join(t[i], NULL);
        munmap(p, size);
        for (unsigned i = 0; i < n; i++)
                if (s[i].error)
                        return -s[i].error;
        return 0;
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

int main(int argc, char **argv) {
        if (argc < 4 || (strcmp(argv[1], "kernel") != 0 && argc < 5)) {
                fprintf(stderr, "usage: %s kernel|lib|loop FILE SIZE [THREADS]\n", argv[0]);
                return 2;
        }
        uint64_t size = bench_parse_size(argv[3]);
        unsigned n = argc > 4 ? (unsigned) atoi(argv[4]) : 1;
        if (size == 0 || n < 1 || n > 256)
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
