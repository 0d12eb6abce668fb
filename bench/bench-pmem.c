/* bench-pmem.c: pmem initialisation of one file, side by side, rounds interleaved, median:
 * one thread memset of a shared mapping plus msync (what a program would write by hand),
 * pad_pmem_init() with one thread (streaming stores, msync per chunk), and pad_pmem_init()
 * with THREADS threads (the broker from $PADCLIENT_BUS, else PADCLIENT_FALLBACK_HELPERS,
 * which this program sets to THREADS - 1 unless already set). The file (default a tmpfs
 * file in /dev/shm) is allocated once before timing, so page allocation is not measured,
 * and removed at the end. Prints the machine and a table of GiB/s.
 *   bench-pmem [FILE [SIZE [THREADS [ROUNDS]]]]    defaults: /dev/shm/bench-pmem 4G nproc 5 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "padclient.h"

#define MAX_ROUNDS 31

static int fill_memset(int fd, uint64_t size, int pattern) {
        uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        memset(p, pattern, size);
        int r = msync(p, size, MS_SYNC) < 0 ? -errno : 0;
        munmap(p, size);
        return r;
}

static int fill_lib(pad_client *c, int fd, uint64_t size, int pattern, unsigned threads, unsigned *ret_ran) {
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = threads, .tag = "bench-pmem",
                          .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        pad_job_stats st = {};
        int r = pad_pmem_init(c, fd, 0, size, pattern, &o, NULL, &st);
        if (r < 0)
                fprintf(stderr, "bench-pmem: %s\n", msg);
        *ret_ran = st.threads;
        return r;
}

static void describe_machine(void) {
        char line[256], model[256] = "unknown";
        struct utsname u;
        FILE *f = fopen("/proc/cpuinfo", "re");

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "model name", 10) == 0) {
                        snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
                        model[strcspn(model, "\n")] = '\0';
                        break;
                }
        if (f)
                fclose(f);
        uname(&u);
        printf("machine: %ld CPUs (%s), kernel %s\n", sysconf(_SC_NPROCESSORS_ONLN), model, u.release);
}

int main(int argc, char **argv) {
        const char *path = argc > 1 ? argv[1] : "/dev/shm/bench-pmem";
        uint64_t size = bench_parse_size(argc > 2 ? argv[2] : "4G");
        unsigned threads = argc > 3 ? (unsigned) atoi(argv[3]) : (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        int rounds = argc > 4 ? atoi(argv[4]) : 5;
        double t_memset[MAX_ROUNDS], t_one[MAX_ROUNDS], t_par[MAX_ROUNDS];
        unsigned ran = 0, ran1 = 0;
        char helpers[16];

        if (size == 0 || threads < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
                fprintf(stderr, "usage: %s [FILE [SIZE [THREADS [ROUNDS <= %d]]]]\n", argv[0], MAX_ROUNDS);
                return 2;
        }
        snprintf(helpers, sizeof(helpers), "%u", threads - 1);
        setenv("PADCLIENT_FALLBACK_HELPERS", helpers, 0);

        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0 || fallocate(fd, 0, 0, (off_t) size) < 0 ||
            fill_memset(fd, size, 1) < 0) {
                perror(path);
                return 1;
        }
        pad_client *c = NULL;
        if (pad_client_new(NULL, &c) < 0)
                return 1;

        for (int i = 0; i < rounds; i++) {
                double t0 = bench_now();
                if (fill_memset(fd, size, 0xA5) < 0)
                        return 1;
                double t1 = bench_now();
                if (fill_lib(c, fd, size, 0x5A, 1, &ran1) < 0)
                        return 1;
                double t2 = bench_now();
                if (fill_lib(c, fd, size, 0xA5, threads, &ran) < 0)
                        return 1;
                double t3 = bench_now();
                t_memset[i] = t1 - t0;
                t_one[i] = t2 - t1;
                t_par[i] = t3 - t2;
        }

        double gib = (double) size / (1 << 30);
        double m0 = bench_median(t_memset, rounds), m1 = bench_median(t_one, rounds), m2 = bench_median(t_par, rounds);
        describe_machine();
        printf("pmem init of %.1f GiB, file %s, %d rounds interleaved, median (msync path)\n", gib, path, rounds);
        printf("%-44s %9s %8s %9s\n", "method", "seconds", "GiB/s", "vs memset");
        printf("%-44s %9.3f %8.2f %8.2fx\n", "memset, 1 thread, msync", m0, gib / m0, 1.0);
        printf("%-44s %9.3f %8.2f %8.2fx\n", "pad_pmem_init, 1 thread (streaming stores)", m1, gib / m1, m0 / m1);
        char label[64];
        snprintf(label, sizeof(label), "pad_pmem_init, %u threads ran", ran);
        printf("%-44s %9.3f %8.2f %8.2fx\n", label, m2, gib / m2, m0 / m2);
        (void) ran1;

        pad_client_free(c);
        close(fd);
        unlink(path);
        return 0;
}
