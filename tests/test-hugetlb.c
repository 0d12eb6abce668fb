/* test-hugetlb.c: pad_hugetlb_fallocate() on a real hugetlbfs. The process (root) adds
 * TEST_POOL pages to /proc/sys/vm/nr_hugepages and mounts two hugetlbfs instances of 2 MiB
 * pages in a temporary folder, one unlimited and one limited with size= (to make the kernel
 * refuse pages part-way); an atexit handler and SIGINT/SIGTERM handlers of the main process
 * unmount and take the pages back, whatever the forked tests did. The pool is shared by the
 * whole machine: instances of this test (and bench/run-hugetlb.sh) take POOL_LOCK first, and
 * the pool is adjusted by TEST_POOL up and down rather than saved and rewritten. Each result is compared with
 * the kernel's fallocate(2) on a twin file prepared the same way: size, st_blocks, the pages
 * present (through the library's probe) and the drop of HugePages_Free/Rsvd. Failures (the
 * pool short up front, the subpool short part-way, cancel) must leave file and pool exactly
 * as before. Not root or no 2 MiB huge pages: exit 77. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "hugetlb-pool.h"
#include "jobs-internal.h"
#include "padclient.h"

#define HP (UINT64_C(2) << 20)
#define TEST_POOL 600                   /* pages this test adds to the pool */
#define LIMITED_PAGES 8                 /* size= of the limited mount */
#define SYS_POOL "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define CANCEL_PAGES 512

static char tmpdir[] = "/tmp/test-hugetlb-XXXXXX";
static char mnt[128], mnt_limited[128];
static long added;                      /* the pages this test added to the pool */
static pid_t main_pid;
static int mounted;

/* ---- Setup and restore (main process only) ----------------------------------------------- */

static void restore(void) {
        if (getpid() != main_pid)
                return;
        if (mounted & 2)
                umount2(mnt_limited, MNT_DETACH);
        if (mounted & 1)
                umount2(mnt, MNT_DETACH);
        mounted = 0;
        rmdir(mnt_limited);
        rmdir(mnt);
        rmdir(tmpdir);
        pool_remove(SYS_POOL, &added);
}

static void skip(const char *why) {
        pool_skip("test-hugetlb", why);
}

static void setup_global(void) {
        char opts[64];

        main_pid = getpid();
        const char *why = pool_take(SYS_POOL, TEST_POOL, restore, &added);
        if (why)
                skip(why);
        if (!mkdtemp(tmpdir))
                skip("mkdtemp failed");
        snprintf(mnt, sizeof(mnt), "%s/huge", tmpdir);
        snprintf(mnt_limited, sizeof(mnt_limited), "%s/limited", tmpdir);
        if (mkdir(mnt, 0700) < 0 || mkdir(mnt_limited, 0700) < 0)
                skip("mkdir failed");
        if (mount("none", mnt, "hugetlbfs", 0, "pagesize=2M") < 0)
                skip("cannot mount hugetlbfs");
        mounted |= 1;
        snprintf(opts, sizeof(opts), "pagesize=2M,size=%lluM", (unsigned long long) LIMITED_PAGES * 2);
        if (mount("none", mnt_limited, "hugetlbfs", 0, opts) < 0)
                skip("cannot mount a size-limited hugetlbfs");
        mounted |= 2;
}

/* ---- Helpers -------------------------------------------------------------------------------- */

typedef struct Pool {
        long free_pages, resv;
} Pool;

static Pool pool_now(void) {
        return (Pool) { read_long(SYS_POOL "free_hugepages"), read_long(SYS_POOL "resv_hugepages") };
}

static int open_file(const char *dir, const char *name) {
        char path[256];

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        unlink(path);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        return fd;
}

typedef struct Snapshot {
        uint64_t size, blocks;
        uint8_t present[64];
        uint64_t n_present;
} Snapshot;

#define SNAP_PAGES 64

static Snapshot snapshot(int fd) {
        Snapshot s = {};
        struct stat st;

        ck_assert_int_eq(fstat(fd, &st), 0);
        s.size = (uint64_t) st.st_size;
        s.blocks = (uint64_t) st.st_blocks;
        ck_assert_int_eq(hugetlb_probe(fd, HP, 0, SNAP_PAGES * HP, s.present, &s.n_present), 0);
        return s;
}

static void assert_same(const Snapshot *a, const Snapshot *b) {
        ck_assert_uint_eq(a->size, b->size);
        ck_assert_uint_eq(a->blocks, b->blocks);
        ck_assert_uint_eq(a->n_present, b->n_present);
        for (unsigned i = 0; i < SNAP_PAGES; i++)
                ck_assert_msg(a->present[i] == b->present[i], "page %u: %d vs %d", i,
                              a->present[i], b->present[i]);
}

/* A file of size_pages with the pages in mask (bit i = page i, also beyond EOF) present. */
static void prepare(int fd, unsigned size_pages, uint64_t mask) {
        ck_assert_int_eq(ftruncate(fd, (off_t) (size_pages * HP)), 0);
        for (unsigned i = 0; i < 64; i++)
                if (mask & (UINT64_C(1) << i))
                        ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t) (i * HP), (off_t) HP), 0);
}

/* ---- Identical to fallocate(2) ---------------------------------------------------------------- */

typedef struct Case {
        const char *name;
        unsigned size_pages;
        uint64_t mask;
        int mode;
        unsigned offset_pages, len_pages;
} Case;

static const Case cases[] = {
        { "fresh, mode 0", 0, 0, 0, 0, 16 },
        { "fresh, mode 0 at an offset", 0, 0, 0, 5, 7 },
        { "pages below EOF, mode 0 growing", 6, 0x0a, 0, 2, 8 },
        { "pages below and beyond EOF, mode 0 growing", 6, 0x20a, 0, 2, 12 },
        { "inside the file, mode 0", 20, 0x1111, 0, 1, 10 },
        { "keep size across EOF", 4, 0x01, PAD_FALLOC_KEEP_SIZE, 2, 6 },
        { "keep size beyond EOF", 4, 0x801, PAD_FALLOC_KEEP_SIZE, 6, 9 },
        { "keep size inside", 12, 0x18, PAD_FALLOC_KEEP_SIZE, 2, 5 },
        { "keep size, empty file", 0, 0, PAD_FALLOC_KEEP_SIZE, 0, 3 },
        { "everything there already", 4, 0x0f, 0, 0, 4 },
};

START_TEST(test_same_as_fallocate) {
        const Case *k = &cases[_i];
        int twin = open_file(mnt, "twin"), ours = open_file(mnt, "ours");
        char msg[256] = "";
        /* Odd cases on node 0: mbind of the mapping, the node's policy for fallocate. */
        pad_io_opts o = { .node = _i % 2 ? 0 : PAD_NODE_ANY, .max_threads = 2, .ret_msg = msg,
                          .ret_msg_len = sizeof(msg) };
        pad_job_stats stats = {};

        prepare(twin, k->size_pages, k->mask);
        prepare(ours, k->size_pages, k->mask);
        Snapshot t0 = snapshot(twin), o0 = snapshot(ours);
        assert_same(&t0, &o0);

        Pool p0 = pool_now();
        ck_assert_int_eq(fallocate(twin, k->mode, (off_t) (k->offset_pages * HP), (off_t) (k->len_pages * HP)), 0);
        Pool p1 = pool_now();
        int r = pad_hugetlb_fallocate(NULL, ours, k->mode, k->offset_pages * HP, k->len_pages * HP, &o, &stats);
        ck_assert_msg(r == 0, "%s: %s (%s)", k->name, strerror(-r), msg);
        ck_assert_str_eq(msg, "");
        ck_assert_uint_ge(stats.threads, 1);
        Pool p2 = pool_now();

        Snapshot a = snapshot(twin), b = snapshot(ours);
        assert_same(&a, &b);
        ck_assert_int_eq(p0.free_pages - p1.free_pages, p1.free_pages - p2.free_pages);
        ck_assert_int_eq(p0.resv - p1.resv, p1.resv - p2.resv);
        close(twin);
        close(ours);
}
END_TEST

/* A memfd with MFD_HUGETLB lives on the kernel's internal hugetlbfs mount (QEMU's memfd
 * backend): the same result as fallocate(2) there too. */
START_TEST(test_memfd) {
        int twin = memfd_create("twin", MFD_HUGETLB | MFD_CLOEXEC);
        int ours = memfd_create("ours", MFD_HUGETLB | MFD_CLOEXEC);
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = 2, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        ck_assert_int_ge(twin, 0);
        ck_assert_int_ge(ours, 0);
        prepare(twin, 3, 0x5);
        prepare(ours, 3, 0x5);
        Pool p0 = pool_now();
        ck_assert_int_eq(fallocate(twin, 0, 0, (off_t) (10 * HP)), 0);
        Pool p1 = pool_now();
        ck_assert_msg(pad_hugetlb_fallocate(NULL, ours, 0, 0, 10 * HP, &o, NULL) == 0, "%s", msg);
        Pool p2 = pool_now();
        Snapshot a = snapshot(twin), b = snapshot(ours);
        assert_same(&a, &b);
        ck_assert_uint_eq(b.n_present, 10);
        ck_assert_int_eq(p0.free_pages - p1.free_pages, p1.free_pages - p2.free_pages);
        close(twin);
        close(ours);
}
END_TEST

/* ---- Failures leave everything as it was -------------------------------------------------------- */

START_TEST(test_enospc_up_front) {
        int fd = open_file(mnt, "short");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        prepare(fd, 3, 0x2);
        Snapshot before = snapshot(fd);
        Pool p0 = pool_now();
        uint64_t pages = (uint64_t) p0.free_pages + 10;      /* more than the free pages, reserved ones included */
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, pages * HP, &o, NULL), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "not enough huge pages: need"));
        Pool p1 = pool_now();
        ck_assert_int_eq(p0.free_pages, p1.free_pages);
        ck_assert_int_eq(p0.resv, p1.resv);
        Snapshot after = snapshot(fd);
        assert_same(&before, &after);
        close(fd);
}
END_TEST

typedef struct MidCase {
        const char *name;
        unsigned size_pages;
        uint64_t mask;
        int mode;
        unsigned len_pages;
} MidCase;

/* The limited mount holds LIMITED_PAGES: each of these needs more, found out part-way
 * (mapping below EOF reserved and populated, the kernel's fallocate beyond EOF refused) or
 * at mmap time (reservation refused). */
static const MidCase mid_cases[] = {
        { "keep size across EOF", 4, 0x02, PAD_FALLOC_KEEP_SIZE, 12 },
        { "mode 0 with a page beyond EOF", 2, 0x42, 0, 12 },
        { "mode 0 growing, reservation refused", 2, 0x02, 0, 12 },
};

START_TEST(test_enospc_part_way) {
        const MidCase *k = &mid_cases[_i];
        int fd = open_file(mnt_limited, "mid");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = 2, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        struct statfs s0, s1;

        prepare(fd, k->size_pages, k->mask);
        Snapshot before = snapshot(fd);
        Pool p0 = pool_now();
        ck_assert_int_eq(fstatfs(fd, &s0), 0);
        int r = pad_hugetlb_fallocate(NULL, fd, k->mode, 0, k->len_pages * HP, &o, NULL);
        ck_assert_msg(r == -ENOSPC, "%s: %d %s", k->name, r, msg);
        ck_assert_str_ne(msg, "");
        Pool p1 = pool_now();
        ck_assert_int_eq(fstatfs(fd, &s1), 0);
        ck_assert_int_eq(p0.free_pages, p1.free_pages);
        ck_assert_int_eq(p0.resv, p1.resv);
        ck_assert_uint_eq(s0.f_bfree, s1.f_bfree);
        Snapshot after = snapshot(fd);
        assert_same(&before, &after);
        close(fd);
}
END_TEST

typedef struct Canceller {
        int fd;
        uint64_t blocks_before;
        pad_cancel *cancel;
        int done;
} Canceller;

/* Cancel as soon as a new page shows up in the file. */
static void *cancel_thread(void *arg) {
        Canceller *c = arg;
        struct stat st;

        while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE)) {
                if (fstat(c->fd, &st) == 0 && (uint64_t) st.st_blocks > c->blocks_before) {
                        pad_cancel_request(c->cancel);
                        break;
                }
        }
        return NULL;
}

/* On one thread (the kernel's path, page by page) and on two (the mapping path, 1 GiB). */
START_TEST(test_cancel_part_way) {
        int fd = open_file(mnt, "cancel");
        pad_cancel cancel = PAD_CANCEL_INIT;
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = (unsigned) _i, .cancel = &cancel,
                          .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        pthread_t t;

        /* One page there before (stays), below EOF. */
        prepare(fd, 1, 0x1);
        Snapshot before = snapshot(fd);
        Pool p0 = pool_now();
        Canceller c = { .fd = fd, .blocks_before = before.blocks, .cancel = &cancel };
        ck_assert_int_eq(pthread_create(&t, NULL, cancel_thread, &c), 0);
        int r = pad_hugetlb_fallocate(NULL, fd, 0, 0, CANCEL_PAGES * HP, &o, NULL);
        __atomic_store_n(&c.done, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        ck_assert_msg(r == -ECANCELED, "%d %s", r, msg);
        ck_assert_ptr_nonnull(strstr(msg, "cancelled"));
        Pool p1 = pool_now();
        ck_assert_int_eq(p0.free_pages, p1.free_pages);
        ck_assert_int_eq(p0.resv, p1.resv);
        Snapshot after = snapshot(fd);
        assert_same(&before, &after);
        close(fd);
}
END_TEST

START_TEST(test_cancel_before) {
        int fd = open_file(mnt, "cancel0");
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_io_opts o = { .node = PAD_NODE_ANY, .cancel = &cancel };

        prepare(fd, 2, 0x4);
        Snapshot before = snapshot(fd);
        Pool p0 = pool_now();
        pad_cancel_request(&cancel);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, PAD_FALLOC_KEEP_SIZE, 0, 8 * HP, &o, NULL), -ECANCELED);
        Pool p1 = pool_now();
        ck_assert_int_eq(p0.free_pages, p1.free_pages);
        ck_assert_int_eq(p0.resv, p1.resv);
        Snapshot after = snapshot(fd);
        assert_same(&before, &after);
        close(fd);
}
END_TEST

START_TEST(test_null_opts) {
        int fd = open_file(mnt, "nullopts");
        pad_job_stats stats = {};
        struct stat st;

        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 2 * HP, 4 * HP, NULL, &stats), 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) (6 * HP));
        ck_assert_int_eq(st.st_blocks, (blkcnt_t) (4 * HP / 512));
        ck_assert_uint_ge(stats.chunks, 1);
        close(fd);
}
END_TEST

/* ---- Without userfaultfd (seccomp, old kernels): the kernel's path, page by page ---------------- */

typedef struct NoUffdCall {
        int fd, mode;
        uint64_t offset, len;
        pad_io_opts *o;
        int r;
} NoUffdCall;

/* Deny userfaultfd(2) and /dev/userfaultfd's USERFAULTFD_IOC_NEW to the calling thread only
 * (and the helper threads it creates), so the test's own probe keeps working. */
static int deny_userfaultfd(void) {
        struct sock_filter f[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_userfaultfd, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ioctl, 0, 3),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, USERFAULTFD_IOC_NEW, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(f), .filter = f };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0 ? -errno : 0;
}

static void *no_uffd_thread(void *arg) {
        NoUffdCall *k = arg;

        k->r = deny_userfaultfd();
        if (k->r == 0) {
                ck_assert_int_lt(hugetlb_probe(k->fd, HP, 0, HP, NULL, NULL), 0);
                k->r = pad_hugetlb_fallocate(NULL, k->fd, k->mode, k->offset, k->len, k->o, NULL);
        }
        return NULL;
}

static int call_without_uffd(int fd, int mode, uint64_t offset, uint64_t len, pad_io_opts *o) {
        NoUffdCall k = { fd, mode, offset, len, o, 0 };
        pthread_t t;

        ck_assert_int_eq(pthread_create(&t, NULL, no_uffd_thread, &k), 0);
        pthread_join(t, NULL);
        return k.r;
}

START_TEST(test_no_userfaultfd) {
        const Case *k = &cases[_i];
        int twin = open_file(mnt, "twin"), ours = open_file(mnt, "ours");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = 2, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        prepare(twin, k->size_pages, k->mask);
        prepare(ours, k->size_pages, k->mask);
        Pool p0 = pool_now();
        ck_assert_int_eq(fallocate(twin, k->mode, (off_t) (k->offset_pages * HP), (off_t) (k->len_pages * HP)), 0);
        Pool p1 = pool_now();
        int r = call_without_uffd(ours, k->mode, k->offset_pages * HP, k->len_pages * HP, &o);
        ck_assert_msg(r == 0, "%s: %s (%s)", k->name, strerror(-r), msg);
        Pool p2 = pool_now();
        Snapshot a = snapshot(twin), b = snapshot(ours);
        assert_same(&a, &b);
        ck_assert_int_eq(p0.free_pages - p1.free_pages, p1.free_pages - p2.free_pages);
        close(twin);
        close(ours);
}
END_TEST

START_TEST(test_no_userfaultfd_enospc) {
        const MidCase *k = &mid_cases[_i];
        int fd = open_file(mnt_limited, "mid");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        prepare(fd, k->size_pages, k->mask);
        Snapshot before = snapshot(fd);
        Pool p0 = pool_now();
        int r = call_without_uffd(fd, k->mode, 0, k->len_pages * HP, &o);
        ck_assert_msg(r == -ENOSPC, "%s: %d %s", k->name, r, msg);
        Pool p1 = pool_now();
        ck_assert_int_eq(p0.free_pages, p1.free_pages);
        ck_assert_int_eq(p0.resv, p1.resv);
        Snapshot after = snapshot(fd);
        assert_same(&before, &after);
        close(fd);
}
END_TEST

/* ---- Rounding and refusals -------------------------------------------------------------------------------- */

/* Unaligned ranges are rounded out to whole pages and the size becomes offset + len, as
 * fallocate(2) does; what fallocate(2) refuses the library refuses with the same errno. */
START_TEST(test_unaligned) {
        int fd = open_file(mnt, "unaligned");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        struct stat st;

        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 4096, HP, &o, NULL), 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) (HP + 4096));
        ck_assert_int_eq(st.st_blocks, (blkcnt_t) (2 * HP / 512));
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, PAD_FALLOC_KEEP_SIZE, 0, 7 * HP / 2, &o, NULL), 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) (HP + 4096));
        ck_assert_int_eq(st.st_blocks, (blkcnt_t) (4 * HP / 512));
        close(fd);
}
END_TEST

START_TEST(test_refused) {
        int fd = open_file(mnt, "refused");
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, 0, &o, NULL), -EINVAL);
        ck_assert_str_eq(msg, "fallocate: Invalid argument");
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0x02, 0, HP, &o, NULL), -EOPNOTSUPP);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, (uint64_t) -HP, HP, &o, NULL), -EINVAL);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, (uint64_t) INT64_MAX - HP + 1, 2 * HP, &o, NULL), -EFBIG);
        o.node = 4095;
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, HP, &o, NULL), -ENXIO);
        ck_assert_str_eq(msg, "no NUMA node 4095");

        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        ck_assert_int_eq(st.st_blocks, 0);
        close(fd);
}
END_TEST

/* Elsewhere than hugetlbfs the call is fallocate(2) itself. */
START_TEST(test_not_hugetlbfs) {
        char path[] = "/dev/shm/test-hugetlb-plain-XXXXXX", huge[256];
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        struct stat st;
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        unlink(path);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, HP, &o, NULL), 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) HP);
        close(fd);

        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, -1, 0, 0, HP, &o, NULL), -EBADF);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, HP, &o, NULL), -EBADF);

        snprintf(huge, sizeof(huge), "%s/readonly", mnt);
        close(open_file(mnt, "readonly"));
        fd = open(huge, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pad_hugetlb_fallocate(NULL, fd, 0, 0, HP, &o, NULL), -EBADF);
        ck_assert_str_eq(msg, "fallocate: Bad file descriptor");
        close(fd);
}
END_TEST

static Suite *hugetlb_suite(void) {
        Suite *s = suite_create("hugetlb");
        TCase *tc = tcase_create("fallocate");

        tcase_add_loop_test(tc, test_same_as_fallocate, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_memfd);
        tcase_add_test(tc, test_null_opts);
        tcase_add_loop_test(tc, test_no_userfaultfd, 2, (int) ELEMENTSOF(cases));
        tcase_add_loop_test(tc, test_no_userfaultfd_enospc, 0, (int) ELEMENTSOF(mid_cases));
        tcase_add_test(tc, test_enospc_up_front);
        tcase_add_loop_test(tc, test_enospc_part_way, 0, (int) ELEMENTSOF(mid_cases));
        tcase_add_loop_test(tc, test_cancel_part_way, 1, 3);
        tcase_add_test(tc, test_cancel_before);
        tcase_add_test(tc, test_unaligned);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_not_hugetlbfs);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        setup_global();
        return pool_run_suite(hugetlb_suite());
}
