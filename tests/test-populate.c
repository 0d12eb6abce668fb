/* test-populate.c: pad_mem_populate() without a broker (three fallback helpers, real
 * threads) on every kind of mapping: anonymous with 4 KiB pages and with transparent huge
 * pages, memfd, SysV shm, a shared file in /var/tmp, and (with the argument "hugetlb", a test
 * of its own) MAP_HUGETLB and an MFD_HUGETLB memfd. Every page of the range must be present
 * afterwards (mincore) and its neighbours outside it must not; for hugetlb the pool's free
 * count must fall by the range's pages exactly. Also: read populate of a read-only mapping,
 * the errors beside what madvise(2) itself returns for the same range (unaligned, a hole,
 * read-only, PROT_NONE, beyond the end of a file, an empty hugetlb pool), len 0, cancel
 * before and during the call, progress up to the total, more than one thread for a large
 * range, the node of an mbind(2) policy (the pages land there), and a kernel without the
 * advice (seccomp makes madvise refuse it: pages touched by hand). Without root or 2 MiB
 * huge pages the hugetlb test exits 77 and says why. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <numaif.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check-run.h"
#include "hugetlb-pool.h"
#include "jobs-internal.h"
#include "padclient.h"

#define PS 4096ULL
#define HP (UINT64_C(2) << 20)
#define SIZE (UINT64_C(160) << 20)              /* parallel with the default tuning */
#define SYS_POOL "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define HUGE_PAGES 40                           /* pages the hugetlb test adds to the pool */

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

static pid_t main_pid;
static long added;

/* ---- Helpers ------------------------------------------------------------------------------ */

/* The pages of [p, p + len) mincore() finds present (4 KiB units). */
static uint64_t present(const void *p, uint64_t len) {
        uint64_t n = len / PS, count = 0;
        unsigned char *v = malloc(n);

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(mincore((void *) p, len, v), 0);
        for (uint64_t i = 0; i < n; i++)
                count += v[i] & 1;
        free(v);
        return count;
}

static pad_io_opts opts_threads(unsigned n, char *msg, size_t len) {
        return (pad_io_opts) { .node = PAD_NODE_ANY, .max_threads = n, .flags = PAD_JOB_NO_BROKER,
                               .ret_msg = msg, .ret_msg_len = len };
}

/* A mapping of len + 2 pages with the range in the middle at a 4 KiB offset from a 2 MiB
 * edge (the first chunk starts below it); ret_base is the mapping for munmap. */
static uint8_t *map_padded(uint64_t len, int flags, int fd, uint8_t **ret_base) {
        uint8_t *b = mmap(NULL, len + 2 * PS, PROT_READ | PROT_WRITE, flags, fd, 0);

        ck_assert_ptr_ne(b, MAP_FAILED);
        *ret_base = b;
        return b + PS;
}

/* Populate [p, p + len) with four threads allowed: every page present, the pages around untouched
 * (but in the page cache of a disk file, where the folio of an edge may be larger). */
static void populate_check_edges(uint8_t *p, uint64_t len, unsigned flags, bool edges) {
        char msg[256];
        pad_io_opts o = opts_threads(4, msg, sizeof msg);
        pad_job_stats st;

        ck_assert_uint_eq(present(p, len), 0);
        ck_assert_msg(pad_mem_populate(NULL, p, len, flags, &o, &st) == 0, "%s", msg);
        ck_assert_str_eq(msg, "");
        ck_assert_uint_eq(present(p, len), len / PS);
        if (edges) {
                ck_assert_uint_eq(present(p - PS, PS), 0);
                ck_assert_uint_eq(present(p + len, PS), 0);
        }
        /* Helpers started; whether one got a chunk before the caller took them all depends
         * on the scheduler (test_large_threads asserts that it does). */
        ck_assert_uint_ge(st.granted, 1);
        ck_assert_uint_ge(st.chunks, 2);
        ck_assert_int_eq(st.brokered, 0);
}

static void populate_and_check(uint8_t *p, uint64_t len, unsigned flags) {
        populate_check_edges(p, len, flags, true);
}

/* The call fails with want, as madvise(2) does on the same range afterwards. */
static void expect_as_madvise(void *p, uint64_t len, unsigned flags, int want) {
        char msg[256];
        pad_io_opts o = opts_threads(4, msg, sizeof msg);

        ck_assert_int_eq(pad_mem_populate(NULL, p, len, flags, &o, NULL), want);
        ck_assert_str_ne(msg, "");
        int r = madvise(p, len, flags & PAD_POPULATE_READ ? MADV_POPULATE_READ : MADV_POPULATE_WRITE);
        ck_assert_int_eq(r < 0 ? -errno : 0, want);
}

/* ---- Mapping kinds ------------------------------------------------------------------------ */

START_TEST(test_anon_4k) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);

        ck_assert_int_eq(madvise(b, SIZE + 2 * PS, MADV_NOHUGEPAGE), 0);
        populate_and_check(p, SIZE, 0);
        munmap(b, SIZE + 2 * PS);
}
END_TEST

START_TEST(test_anon_thp) {
        uint8_t *b = mmap(NULL, SIZE + HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(b, MAP_FAILED);
        uint8_t *p = (uint8_t *) (((uintptr_t) b + PS + HP - 1) & ~(HP - 1));

        ck_assert_int_eq(madvise(p, SIZE, MADV_HUGEPAGE), 0);
        populate_and_check(p, SIZE - HP, 0);
        munmap(b, SIZE + HP);
}
END_TEST

START_TEST(test_memfd) {
        int fd = memfd_create("test-populate", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, SIZE + 2 * PS), 0);
        uint8_t *b, *p = map_padded(SIZE, MAP_SHARED, fd, &b);

        populate_and_check(p, SIZE, 0);
        munmap(b, SIZE + 2 * PS);
        close(fd);
}
END_TEST

START_TEST(test_shared_file) {
        char path[] = "/var/tmp/test-populate-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        unlink(path);
        ck_assert_int_eq(ftruncate(fd, SIZE + 2 * PS), 0);
        uint8_t *b, *p = map_padded(SIZE, MAP_SHARED, fd, &b);

        populate_check_edges(p, SIZE, 0, false);
        munmap(b, SIZE + 2 * PS);
        close(fd);
}
END_TEST

START_TEST(test_sysv_shm) {
        int id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
        ck_assert_int_ge(id, 0);
        uint8_t *p = shmat(id, NULL, 0);
        ck_assert_ptr_ne(p, (void *) -1);
        ck_assert_int_eq(shmctl(id, IPC_RMID, NULL), 0);

        /* The segment is the whole mapping: no neighbours to look at, one page left out. */
        ck_assert_int_eq(pad_mem_populate(NULL, p + PS, SIZE - PS, 0, &(pad_io_opts) { .max_threads = 4,
                                          .flags = PAD_JOB_NO_BROKER, .node = PAD_NODE_ANY }, NULL), 0);
        ck_assert_uint_eq(present(p, PS), 0);
        ck_assert_uint_eq(present(p + PS, SIZE - PS), SIZE / PS - 1);
        shmdt(p);

        /* Attached read-only: readable, not writable. */
        id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
        ck_assert_int_ge(id, 0);
        p = shmat(id, NULL, SHM_RDONLY);
        ck_assert_ptr_ne(p, (void *) -1);
        ck_assert_int_eq(shmctl(id, IPC_RMID, NULL), 0);
        expect_as_madvise(p, SIZE, 0, -EINVAL);
        ck_assert_int_eq(pad_mem_populate(NULL, p, SIZE, PAD_POPULATE_READ, NULL, NULL), 0);
        shmdt(p);
}
END_TEST

/* A read-only shared mapping of a memfd with data: read populate maps every page. */
START_TEST(test_read_only) {
        int fd = memfd_create("test-populate-ro", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, SIZE + 2 * PS), 0);
        uint8_t *b = mmap(NULL, SIZE + 2 * PS, PROT_READ, MAP_SHARED, fd, 0), *p = b + PS;
        ck_assert_ptr_ne(b, MAP_FAILED);

        expect_as_madvise(p, SIZE, 0, -EINVAL);
        expect_as_madvise(p, PS, 0, -EINVAL);           /* the small path: madvise itself */
        ck_assert_uint_eq(present(b, SIZE + 2 * PS), 0);
        populate_and_check(p, SIZE, PAD_POPULATE_READ);
        munmap(b, SIZE + 2 * PS);
        close(fd);
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------- */

START_TEST(test_errors) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        pad_job_stats st;

        expect_as_madvise(p + 1, PS, 0, -EINVAL);
        expect_as_madvise(p + 1, SIZE - PS, 0, -EINVAL);
        ck_assert_int_eq(pad_mem_populate(NULL, p, PS, 0x80, NULL, NULL), -EINVAL);
        ck_assert_int_eq(pad_mem_populate(NULL, p, UINT64_MAX - PS, 0, NULL, NULL), -EINVAL);
        pad_io_opts bad = { .node = -2 };
        ck_assert_int_eq(pad_mem_populate(NULL, p, PS, 0, &bad, NULL), -EINVAL);
        char tag[80];
        memset(tag, 'x', sizeof tag - 1);
        tag[sizeof tag - 1] = '\0';
        bad = (pad_io_opts) { .node = PAD_NODE_ANY, .tag = tag };
        ck_assert_int_eq(pad_mem_populate(NULL, p, PS, 0, &bad, NULL), -EINVAL);

        /* len 0: nothing to do; the stats say one thread did it. */
        ck_assert_int_eq(pad_mem_populate(NULL, p, 0, 0, NULL, &st), 0);
        ck_assert_uint_eq(present(p, SIZE), 0);

        /* A length not a page multiple is rounded up, as madvise does. */
        ck_assert_int_eq(pad_mem_populate(NULL, p, 1, 0, NULL, &st), 0);
        ck_assert_uint_eq(present(p, 2 * PS), 1);
        ck_assert_uint_eq(st.threads, 1);
        ck_assert_uint_eq(st.chunks, 1);

        /* A hole: the parallel path finds it up front and populates nothing. */
        ck_assert_int_eq(munmap(p + SIZE / 2, PS), 0);
        expect_as_madvise(p + PS, SIZE - PS, 0, -ENOMEM);
        ck_assert_uint_eq(present(p + SIZE / 2 + PS, SIZE / 2 - PS), 0);
        expect_as_madvise(p + SIZE / 2 - PS, 4 * PS, 0, -ENOMEM);

        /* PROT_NONE, and half of the range read-only. */
        ck_assert_int_eq(mprotect(p, SIZE / 2, PROT_NONE), 0);
        expect_as_madvise(p, SIZE / 2, 0, -EINVAL);
        expect_as_madvise(p, SIZE / 2, PAD_POPULATE_READ, -EINVAL);
        ck_assert_int_eq(mprotect(p, SIZE / 2, PROT_READ), 0);
        ck_assert_int_eq(mprotect(p, SIZE / 4, PROT_READ | PROT_WRITE), 0);
        expect_as_madvise(p, SIZE / 2, 0, -EINVAL);
        munmap(b, SIZE + 2 * PS);
}
END_TEST

/* A shared mapping past the end of its file: SIGBUS for a store, -EFAULT here. */
START_TEST(test_beyond_eof) {
        int fd = memfd_create("test-populate-eof", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, SIZE / 2), 0);
        uint8_t *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ck_assert_ptr_ne(p, MAP_FAILED);

        expect_as_madvise(p, SIZE, 0, -EFAULT);
        expect_as_madvise(p + SIZE / 2, PS, PAD_POPULATE_READ, -EFAULT);
        munmap(p, SIZE);
        close(fd);
}
END_TEST

/* ---- Cancel, progress, threads, node ------------------------------------------------------ */

START_TEST(test_cancel_before) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        pad_cancel cancel = PAD_CANCEL_INIT;
        char msg[256];
        pad_io_opts o = opts_threads(4, msg, sizeof msg);

        o.cancel = &cancel;
        pad_cancel_request(&cancel);
        ck_assert_int_eq(pad_mem_populate(NULL, p, SIZE, 0, &o, NULL), -ECANCELED);
        ck_assert_int_eq(pad_mem_populate(NULL, p, PS, 0, &o, NULL), -ECANCELED);
        ck_assert_str_ne(msg, "");
        ck_assert_uint_eq(present(p, SIZE), 0);
        munmap(b, SIZE + 2 * PS);
}
END_TEST

typedef struct Watch {
        const uint8_t *p;
        pad_cancel *cancel;
} Watch;

/* Request cancel once the first page is there. */
static void *cancel_when_started(void *arg) {
        Watch *w = arg;
        unsigned char v;

        while (mincore((void *) w->p, PS, &v) == 0 && !(v & 1))
                usleep(200);
        pad_cancel_request(w->cancel);
        return NULL;
}

START_TEST(test_cancel_during) {
        const uint64_t len = UINT64_C(1) << 30;
        uint8_t *b, *p = map_padded(len, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_io_opts o = opts_threads(2, NULL, 0);
        Watch w = { p, &cancel };
        pthread_t t;

        ck_assert_int_eq(madvise(b, len + 2 * PS, MADV_NOHUGEPAGE), 0);
        populate_tuning.slice = HP;
        o.cancel = &cancel;
        ck_assert_int_eq(pthread_create(&t, NULL, cancel_when_started, &w), 0);
        ck_assert_int_eq(pad_mem_populate(NULL, p, len, 0, &o, NULL), -ECANCELED);
        pthread_join(t, NULL);
        uint64_t n = present(p, len);
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_lt(n, len / PS);
        munmap(b, len + 2 * PS);
}
END_TEST

typedef struct Progress {
        uint64_t last, total, calls_at_end;
        bool backwards;
} Progress;

static void on_progress(uint64_t done, uint64_t total, void *arg) {
        Progress *pr = arg;

        pr->backwards = pr->backwards || done < pr->last;
        pr->last = done;
        pr->total = total;
        pr->calls_at_end += done == total;
}

START_TEST(test_progress) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        Progress pr = {};
        pad_io_opts o = opts_threads(4, NULL, 0);

        o.progress_fn = on_progress;
        o.progress_arg = &pr;
        ck_assert_int_eq(pad_mem_populate(NULL, p, SIZE, 0, &o, NULL), 0);
        ck_assert(!pr.backwards);
        ck_assert_uint_eq(pr.last, SIZE);
        ck_assert_uint_eq(pr.total, SIZE);
        ck_assert_uint_eq(pr.calls_at_end, 1);

        /* The small path reports the total too. */
        pr = (Progress) {};
        ck_assert_int_eq(pad_mem_populate(NULL, b, PS, 0, &o, NULL), 0);
        ck_assert_uint_eq(pr.last, PS);
        ck_assert_uint_eq(pr.calls_at_end, 1);
        munmap(b, SIZE + 2 * PS);
}
END_TEST

/* 1 GiB of 4 KiB pages with the default tuning, some 100 ms of work on each CPU: a helper
 * takes chunks too. A machine so busy that no helper got a CPU meanwhile gets two more tries. */
START_TEST(test_large_threads) {
        const uint64_t len = UINT64_C(1) << 30;
        uint8_t *b, *p = map_padded(len, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        pad_io_opts four = opts_threads(4, NULL, 0);
        pad_job_stats many = {};

        ck_assert_int_eq(madvise(b, len + 2 * PS, MADV_NOHUGEPAGE), 0);
        populate_and_check(p, len, 0);
        for (int i = 0; i < 3 && many.threads < 2; i++) {
                ck_assert_int_eq(madvise(p, len, MADV_DONTNEED), 0);
                ck_assert_int_eq(pad_mem_populate(NULL, p, len, 0, &four, &many), 0);
        }
        ck_assert_uint_ge(many.threads, 2);
        ck_assert_uint_ge(many.chunks, 4);

        /* One thread allowed: one madvise on this thread. */
        pad_io_opts one = opts_threads(1, NULL, 0);
        pad_job_stats st;
        ck_assert_int_eq(madvise(p, len, MADV_DONTNEED), 0);
        ck_assert_int_eq(pad_mem_populate(NULL, p, len, 0, &one, &st), 0);
        ck_assert_uint_eq(st.threads, 1);
        ck_assert_uint_eq(st.chunks, 1);
        ck_assert_uint_eq(present(p, len), len / PS);
        munmap(b, len + 2 * PS);
}
END_TEST

START_TEST(test_node_policy) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        unsigned long node0 = 1;

        ck_assert_int_eq(populate_policy_node(p), PAD_NODE_ANY);
        if (mbind(p, SIZE, MPOL_BIND, &node0, 2, 0) < 0) {
                printf("test-populate: mbind to node 0: %s: node policy not checked\n", strerror(errno));
                munmap(b, SIZE + 2 * PS);
                return;
        }
        ck_assert_int_eq(populate_policy_node(p), 0);
        ck_assert_int_eq(populate_policy_node(p - PS), PAD_NODE_ANY);
        populate_and_check(p, SIZE, 0);
        for (uint64_t off = 0; off < SIZE; off += SIZE / 16) {
                int node = -1;
                ck_assert_int_eq(get_mempolicy(&node, NULL, 0, p + off, MPOL_F_NODE | MPOL_F_ADDR), 0);
                ck_assert_int_eq(node, 0);
        }
        ck_assert_int_eq(mbind(p, SIZE, MPOL_PREFERRED, &node0, 2, 0), 0);
        ck_assert_int_eq(populate_policy_node(p), 0);
        munmap(b, SIZE + 2 * PS);
}
END_TEST

/* ---- A kernel without MADV_POPULATE_* (before 5.14) ----------------------------------------- */

/* madvise(2) with MADV_POPULATE_READ or _WRITE fails with EINVAL for this process, as on a
 * kernel that does not know the advice (the zero-length call included). */
static void deny_populate_advice(void) {
        struct sock_filter f[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 4),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_READ, 1, 0),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_POPULATE_WRITE, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(f), .filter = f };

        ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0), 0);
        ck_assert_int_eq(madvise(NULL, 0, MADV_POPULATE_WRITE), -1);
}

/* Pages touched by hand: all there, a read-only mapping read, never a SIGSEGV on a hole,
 * PROT_NONE or a write to a read-only mapping (the check of the mappings says so first). */
START_TEST(test_old_kernel) {
        uint8_t *b, *p = map_padded(SIZE, MAP_PRIVATE | MAP_ANONYMOUS, -1, &b);
        int fd = memfd_create("test-populate-old", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, SIZE), 0);
        uint8_t *ro = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
        ck_assert_ptr_ne(ro, MAP_FAILED);

        deny_populate_advice();
        populate_and_check(p, SIZE / 2, 0);
        ck_assert_int_eq(pad_mem_populate(NULL, p + SIZE / 2, 16 * PS, 0, NULL, NULL), 0);
        ck_assert_uint_eq(present(p + SIZE / 2, 17 * PS), 16);
        ck_assert_int_eq(pad_mem_populate(NULL, ro, SIZE, 0, NULL, NULL), -EINVAL);
        ck_assert_int_eq(pad_mem_populate(NULL, ro, 16 * PS, 0, NULL, NULL), -EINVAL);
        ck_assert_int_eq(pad_mem_populate(NULL, ro, 16 * PS, PAD_POPULATE_READ, NULL, NULL), 0);
        ck_assert_uint_eq(present(ro, SIZE), 16);
        populate_and_check(ro + 32 * PS, SIZE - 64 * PS, PAD_POPULATE_READ);

        ck_assert_int_eq(mprotect(p + SIZE - 16 * PS, 16 * PS, PROT_NONE), 0);
        ck_assert_int_eq(pad_mem_populate(NULL, p + SIZE - 16 * PS, 16 * PS, 0, NULL, NULL), -EINVAL);
        ck_assert_int_eq(munmap(p + SIZE - 32 * PS, PS), 0);
        ck_assert_int_eq(pad_mem_populate(NULL, p + SIZE - 33 * PS, 8 * PS, 0, NULL, NULL), -ENOMEM);
        ck_assert_uint_eq(present(p + SIZE - 33 * PS, PS), 0);
        munmap(b, SIZE + 2 * PS);
        munmap(ro, SIZE);
        close(fd);
}
END_TEST

/* ---- hugetlb ------------------------------------------------------------------------------ */

static long free_pages(void) {
        return read_long(SYS_POOL "free_hugepages");
}

static void restore(void) {
        if (getpid() == main_pid)
                pool_remove(SYS_POOL, &added);
}

/* Populate n huge pages at p (a hugetlb mapping) from a 4 KiB offset: the free count falls
 * by n exactly. */
static void populate_huge(uint8_t *p, long n) {
        char msg[256];
        pad_io_opts o = opts_threads(4, msg, sizeof msg);
        pad_job_stats st;
        long before = free_pages();

        ck_assert_msg(pad_mem_populate(NULL, p + PS, (uint64_t) n * HP - PS, 0, &o, &st) == 0, "%s", msg);
        ck_assert_int_eq(before - free_pages(), n);
        ck_assert_uint_ge(st.chunks, 2);
        ck_assert_uint_eq(present(p, (uint64_t) n * HP), (uint64_t) n * HP / PS);
}

START_TEST(test_hugetlb_anon) {
        const long n = 16;
        uint8_t *p = mmap(NULL, n * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        populate_huge(p, n);
        munmap(p, n * HP);
}
END_TEST

START_TEST(test_hugetlb_memfd) {
        const long n = 16;
        int fd = memfd_create("test-populate-huge", MFD_CLOEXEC | MFD_HUGETLB);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, n * HP), 0);
        uint8_t *p = mmap(NULL, n * HP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        populate_huge(p, n);
        munmap(p, n * HP);
        close(fd);
}
END_TEST

/* MAP_NORESERVE over more pages than are free: the pages could not be had, -EFAULT. */
START_TEST(test_hugetlb_pool_empty) {
        long n = free_pages() + 4;
        uint8_t *p = mmap(NULL, n * HP, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        expect_as_madvise(p, n * HP, 0, -EFAULT);
        munmap(p, n * HP);
}
END_TEST

int main(int argc, char **argv) {
        Suite *s = suite_create("populate");
        TCase *tc = tcase_create("populate");

        /* Three helpers without a broker; small hugetlb ranges go parallel too. */
        setenv("PADCLIENT_FALLBACK_HELPERS", "3", 1);
        tcase_set_timeout(tc, 120);
        if (argc > 1 && strcmp(argv[1], "hugetlb") == 0) {
                main_pid = getpid();
                const char *why = pool_take(SYS_POOL, HUGE_PAGES, restore, &added);
                if (why)
                        pool_skip("test-populate hugetlb", why);
                populate_tuning.parallel_min = 8 * HP;
                populate_tuning.min_chunk = 2 * HP;
                tcase_add_test(tc, test_hugetlb_anon);
                tcase_add_test(tc, test_hugetlb_memfd);
                tcase_add_test(tc, test_hugetlb_pool_empty);
        } else {
                tcase_add_test(tc, test_anon_4k);
                tcase_add_test(tc, test_anon_thp);
                tcase_add_test(tc, test_memfd);
                tcase_add_test(tc, test_shared_file);
                tcase_add_test(tc, test_sysv_shm);
                tcase_add_test(tc, test_read_only);
                tcase_add_test(tc, test_errors);
                tcase_add_test(tc, test_beyond_eof);
                tcase_add_test(tc, test_cancel_before);
                tcase_add_test(tc, test_cancel_during);
                tcase_add_test(tc, test_progress);
                tcase_add_test(tc, test_large_threads);
                tcase_add_test(tc, test_node_policy);
                tcase_add_test(tc, test_old_kernel);
        }
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
