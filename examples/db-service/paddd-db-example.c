/* paddd-db-example.c: the stand-in for a database in paddd-db-example.service. A database
 * that keeps its shared memory in a hugetlbfs file wants all of it allocated before it
 * starts (a page it faults in later may not be there: SIGBUS), and wants that done fast:
 * the unit's ExecStartPre= has `padctl hugetlb-fallocate` allocate the file in parallel
 * with helper threads borrowed from paddd. This program then does what the database would
 * at start-up and checks that it found everything in place:
 *
 *   - FILE is on hugetlbfs and is SIZE bytes long;
 *   - every huge page of it is allocated (st_blocks covers st_size);
 *   - mapping it MAP_SHARED reserves no pages (HugePages_Rsvd does not move: nothing is
 *     missing), and touching every page takes none from the pool (free_hugepages does not
 *     move: no page was faulted in new);
 *
 * then tells systemd it is ready (Type=notify) and keeps the mapping until SIGTERM.
 *
 * Usage: paddd-db-example FILE SIZE   (SIZE in bytes, or a number with K, M or G: 192M) */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PROG "paddd-db-example"

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, PROG ": ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        sd_notify(0, "STATUS=start-up check failed (see the journal)");
        exit(EXIT_FAILURE);
}

static uint64_t parse_size(const char *s) {
        char *end;
        unsigned long long v;
        unsigned shift = 0;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                die("SIZE '%s' is not a number", s);
        switch (*end) {
        case 'K': shift = 10; end++; break;
        case 'M': shift = 20; end++; break;
        case 'G': shift = 30; end++; break;
        }
        if (*end || v == 0 || v > (UINT64_MAX >> shift))
                die("SIZE '%s' is not a size (bytes, or a number with K, M or G)", s);
        return (uint64_t) v << shift;
}

/* One counter of the huge page pool of page_size: free_hugepages or resv_hugepages. */
static uint64_t pool_counter(uint64_t page_size, const char *name) {
        char path[128];
        unsigned long long v;
        FILE *f;
        int n;

        snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB/%s", page_size >> 10, name);
        f = fopen(path, "re");
        if (!f)
                die("cannot read %s: %s", path, strerror(errno));
        n = fscanf(f, "%llu", &v);
        fclose(f);
        if (n != 1)
                die("%s holds no number", path);
        return v;
}

int main(int argc, char **argv) {
        struct statfs sfs;
        struct stat st;
        uint64_t size, page, pages, resv0, free0;
        volatile const unsigned char *mem;
        unsigned sum = 0;
        sigset_t set;
        int fd, sig;

        if (argc != 3) {
                fprintf(stderr, "usage: " PROG " FILE SIZE\n");
                return 2;
        }
        size = parse_size(argv[2]);

        fd = open(argv[1], O_RDWR | O_CLOEXEC);
        if (fd < 0)
                die("cannot open %s: %s", argv[1], strerror(errno));
        if (fstatfs(fd, &sfs) < 0 || sfs.f_type != (typeof(sfs.f_type)) HUGETLBFS_MAGIC)
                die("%s is not on a hugetlbfs mount", argv[1]);
        if (fstat(fd, &st) < 0)
                die("cannot stat %s: %s", argv[1], strerror(errno));
        page = (uint64_t) sfs.f_bsize;
        if ((uint64_t) st.st_size != size)
                die("%s is %jd bytes, not the %" PRIu64 " asked for", argv[1], (intmax_t) st.st_size, size);
        if ((uint64_t) st.st_blocks * 512 != size)
                die("%s has %" PRIu64 " of its %" PRIu64 " bytes allocated: it was not preallocated", argv[1],
                    (uint64_t) st.st_blocks * 512, size);
        pages = size / page;

        resv0 = pool_counter(page, "resv_hugepages");
        mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mem == MAP_FAILED)
                die("cannot map %s: %s", argv[1], strerror(errno));
        if (pool_counter(page, "resv_hugepages") != resv0)
                die("mapping %s reserved huge pages: some of its pages are missing", argv[1]);
        free0 = pool_counter(page, "free_hugepages");
        for (uint64_t i = 0; i < pages; i++)
                sum += mem[i * page];
        if (pool_counter(page, "free_hugepages") != free0)
                die("touching %s took %" PRIu64 " pages from the pool: they were not preallocated", argv[1],
                    free0 - pool_counter(page, "free_hugepages"));

        printf(PROG ": %s: %" PRIu64 " MiB, all %" PRIu64 " pages of %" PRIu64 " KiB present (checksum %u); ready\n",
               argv[1], size >> 20, pages, page >> 10, sum);
        fflush(stdout);

        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        sd_notifyf(0, "READY=1\nSTATUS=serving from %" PRIu64 " MiB of huge pages", size >> 20);
        while (sigwait(&set, &sig) != 0)
                ;
        sd_notify(0, "STOPPING=1");
        munmap((void *) mem, size);
        close(fd);
        return EXIT_SUCCESS;
}
