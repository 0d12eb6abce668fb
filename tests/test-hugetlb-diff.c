/* test-hugetlb-diff.c: pad_hugetlb_fallocate() against fallocate(2), case by case. Each
 * case makes two files the same way (the twin, then ours: same kind, size, pages, seals, fd
 * flags, reserving mapping), runs fallocate(2) on the twin and the library on ours, and
 * compares the return value and errno, SIGXFSZ, st_size, st_blocks, the pages present, the
 * drop of the pool's free and reserved pages, and whether ctime, mtime and atime moved. The
 * one documented difference is the undo: where fallocate(2) fails, ours must be exactly as
 * the twin was before the call (pages, size, pool; ctime may move when pages were given
 * back). The grid runs every case twice: on one thread (the single-call and page-by-page
 * paths) and on two (the thresholds lowered so the mapping path and helpers run on a small
 * pool). Needs root and 2 MiB huge pages (else exit 77); 1 GiB cases run where the CPU and
 * pool allow and are skipped with the reason otherwise. The pool is the machine's: the test
 * takes /tmp/paddd-hugetlb-pool.lock and adds and removes only its own pages; a case whose
 * only difference is in the pool counters runs again, up to three times, since users of the
 * pool that do not take the lock move them too. Cases with a hugetlb cgroup limit run the
 * call (only) in a cgroup of the test's, v2 or a v1 hierarchy it mounts, else are skipped. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hugetlb-pool.h"
#include "jobs-internal.h"
#include "padclient.h"

#define MB (UINT64_C(1) << 20)
#define HP (2 * MB)
#define GP (1024 * MB)
#define TEST_POOL 400                   /* 2 MiB pages this test adds */
#define GIANT_POOL 2                    /* 1 GiB pages it tries to add */
#define LIMITED_PAGES 8
#define SYS_HP "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define SYS_GP "/sys/kernel/mm/hugepages/hugepages-1048576kB/"
#define SNAP_PAGES 64

/* ---- Set-up and restore (main process only) ------------------------------------------------ */

enum { M_HUGE, M_LIM_T, M_LIM_O, M_MIN_T, M_MIN_O, M_GIANT, M_COUNT };
static const char *const mount_opts[M_COUNT] = {
        "pagesize=2M", "pagesize=2M,size=16M", "pagesize=2M,size=16M", "pagesize=2M,min_size=8M",
        "pagesize=2M,min_size=8M", "pagesize=1G",
};
static char tmpdir[] = "/tmp/test-hugetlb-diff-XXXXXX";
static char mnt[M_COUNT][128];
static unsigned mounted;
static long added_hp, added_gp;
static pid_t main_pid;
static const char *giant_skip;          /* why there are no 1 GiB cases */
/* A hugetlb cgroup (v2 or v1) whose 2 MiB limit a case sets, and the cgroup to go back to. */
static char cg_mnt[160], cg_dir[192], cg_limit[256], cg_procs[256], cg_home[256];
static const char *cgroup_skip;         /* why there are no cgroup cases */

static void restore(void) {
        if (getpid() != main_pid)
                return;
        for (int i = M_COUNT - 1; i >= 0; i--) {
                if (mounted & (1u << i))
                        umount2(mnt[i], MNT_DETACH);
                rmdir(mnt[i]);
        }
        mounted = 0;
        if (cg_dir[0])
                rmdir(cg_dir);
        if (cg_mnt[0]) {
                umount2(cg_mnt, MNT_DETACH);
                rmdir(cg_mnt);
        }
        rmdir(tmpdir);
        pool_remove(SYS_HP, &added_hp);
        pool_remove(SYS_GP, &added_gp);
}

static void skip(const char *why) {
        pool_skip("test-hugetlb-diff", why);
}

static void setup_giant(void) {
        if (access(SYS_GP "nr_hugepages", W_OK) < 0) {
                giant_skip = "no 1 GiB huge pages (CPU without pdpe1gb or kernel without them)";
                return;
        }
        added_gp = pool_add(SYS_GP, GIANT_POOL);
        if (added_gp < GIANT_POOL || read_long(SYS_GP "free_hugepages") < GIANT_POOL) {
                giant_skip = "could not add 2 free 1 GiB pages to the pool (memory fragmented or short)";
                return;
        }
        if (mkdir(mnt[M_GIANT], 0700) < 0 || mount("none", mnt[M_GIANT], "hugetlbfs", 0, mount_opts[M_GIANT]) < 0) {
                giant_skip = "cannot mount a pagesize=1G hugetlbfs";
                return;
        }
        mounted |= 1u << M_GIANT;
}

/* cgroup v2 with its hugetlb controller, else a v1 hugetlb hierarchy mounted for the test. */
static void setup_cgroup(void) {
        const char *limit = "hugetlb.2MB.max";

        if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
                FILE *f = fopen("/sys/fs/cgroup/cgroup.subtree_control", "we");

                if (f) {                /* without the controller this fails: the check below says */
                        fputs("+hugetlb", f);
                        fclose(f);
                }
                snprintf(cg_home, sizeof(cg_home), "/sys/fs/cgroup/cgroup.procs");
                snprintf(cg_dir, sizeof(cg_dir), "/sys/fs/cgroup/paddd-hugetlb-diff-%d", (int) getpid());
        } else {
                snprintf(cg_mnt, sizeof(cg_mnt), "%s/cgroup", tmpdir);
                if (mkdir(cg_mnt, 0700) < 0 || mount("none", cg_mnt, "cgroup", 0, "hugetlb") < 0) {
                        cgroup_skip = "cannot mount a cgroup v1 hugetlb hierarchy (not built, or mounted elsewhere)";
                        rmdir(cg_mnt);
                        cg_mnt[0] = '\0';
                        return;
                }
                limit = "hugetlb.2MB.limit_in_bytes";
                snprintf(cg_home, sizeof(cg_home), "%s/cgroup.procs", cg_mnt);
                snprintf(cg_dir, sizeof(cg_dir), "%s/limited", cg_mnt);
        }
        snprintf(cg_limit, sizeof(cg_limit), "%s/%s", cg_dir, limit);
        snprintf(cg_procs, sizeof(cg_procs), "%s/cgroup.procs", cg_dir);
        if (mkdir(cg_dir, 0700) < 0 || access(cg_limit, W_OK) < 0) {
                cgroup_skip = "no hugetlb cgroup controller with a 2 MiB limit";
                rmdir(cg_dir);
                cg_dir[0] = '\0';
        }
}

static void setup_global(void) {
        static const char *const names[M_COUNT] = { "huge", "lim-t", "lim-o", "min-t", "min-o", "giant" };

        main_pid = getpid();
        const char *why = pool_take(SYS_HP, TEST_POOL, restore, &added_hp);
        if (why)
                skip(why);
        if (!mkdtemp(tmpdir))
                skip("mkdtemp failed");
        for (int i = 0; i < M_COUNT; i++)
                snprintf(mnt[i], sizeof(mnt[i]), "%s/%s", tmpdir, names[i]);
        for (int i = 0; i < M_GIANT; i++) {
                if (mkdir(mnt[i], 0700) < 0 || mount("none", mnt[i], "hugetlbfs", 0, mount_opts[i]) < 0)
                        skip("cannot mount hugetlbfs");
                mounted |= 1u << i;
        }
        setup_giant();
        if (giant_skip)
                printf("test-hugetlb-diff: 1 GiB cases skipped: %s\n", giant_skip);
        setup_cgroup();
        if (cgroup_skip)
                printf("test-hugetlb-diff: cgroup cases skipped: %s\n", cgroup_skip);
}

/* ---- The cases ------------------------------------------------------------------------------ */

typedef enum Kind { K_MOUNT, K_LIMITED, K_MINSIZE, K_MEMFD, K_GIANT, K_DIR, K_FIFO, K_TMPFS } Kind;

enum {
        LEN_POOL_PLUS = -1,             /* len: the free pages + 8, in pages */
        MAP_ALL_FREE = 1u << 30,        /* map_pages: every unreserved free page (size and len too) */
};

typedef struct Case {
        const char *name;
        Kind kind;
        int64_t size;                   /* initial st_size, bytes */
        uint64_t mask;                  /* pages present first (bit i: page i, also beyond EOF) */
        int mode;
        int64_t offset, len;            /* bytes, or LEN_* */
        int seals;                      /* memfd only */
        int64_t rlimit;                 /* RLIMIT_FSIZE, bytes; 0: none */
        int flags;                      /* open flags; 0: O_RDWR */
        unsigned map_pages;             /* a reserving MAP_SHARED mapping of [0, map_pages) */
        unsigned cgroup_pages;          /* the call runs in a hugetlb cgroup limited to these */
        bool cgroup_bites;              /* and needs more: fallocate(2) fails with ENOSPC */
} Case;

#define P(n) ((int64_t) (n) * (int64_t) HP)
#define G(n) ((int64_t) (n) * (int64_t) GP)
#define KS PAD_FALLOC_KEEP_SIZE

static const Case cases[] = {
        { "fresh, mode 0", K_MOUNT, 0, 0, 0, 0, P(16) },
        { "fresh, mode 0 at an offset", K_MOUNT, 0, 0, 0, P(5), P(7) },
        { "fresh, keep size", K_MOUNT, 0, 0, KS, 0, P(8) },
        { "pages below EOF, growing", K_MOUNT, P(6), 0x0a, 0, P(2), P(8) },
        { "pages below and beyond EOF, growing", K_MOUNT, P(6), 0x20a, 0, P(2), P(12) },
        { "inside the file", K_MOUNT, P(20), 0x1111, 0, P(1), P(10) },
        { "keep size across EOF", K_MOUNT, P(4), 0x01, KS, P(2), P(6) },
        { "keep size beyond EOF", K_MOUNT, P(4), 0x801, KS, P(6), P(9) },
        { "keep size inside", K_MOUNT, P(12), 0x18, KS, P(2), P(5) },
        { "everything there already", K_MOUNT, P(4), 0x0f, 0, 0, P(4) },
        { "unaligned offset and len", K_MOUNT, 0, 0, 0, MB, P(4) + 4096 },
        { "unaligned len, pages there", K_MOUNT, P(2), 0x3, 0, 0, 9 * MB },
        { "unaligned, keep size", K_MOUNT, 0, 0, KS, 3 * MB, 5 * MB },
        { "size 1 MiB, growing", K_MOUNT, MB, 0x1, 0, 0, P(10) },
        { "size 1 MiB, failing part-way", K_LIMITED, MB, 0x1, 0, 0, P(12) },
        { "size 5 MiB, unaligned and growing", K_MOUNT, 5 * MB, 0x7, 0, 3 * MB, P(6) + MB },
        { "part-way: keep size across EOF", K_LIMITED, P(4), 0x02, KS, 0, P(12) },
        { "part-way: mode 0, a page beyond EOF", K_LIMITED, P(2), 0x42, 0, 0, P(12) },
        { "part-way: mode 0 growing", K_LIMITED, P(2), 0x02, 0, 0, P(12) },
        { "part-way: fresh", K_LIMITED, 0, 0, 0, 0, P(10) },
        { "the mount's limit exactly", K_LIMITED, 0, 0, 0, 0, P(LIMITED_PAGES) },
        { "pool too small up front", K_MOUNT, 0, 0, 0, 0, LEN_POOL_PLUS },
        { "pool too small, pages there", K_MOUNT, P(4), 0x5, 0, 0, LEN_POOL_PLUS },
        { "reserved by a mapping of the file", K_MOUNT, P(8), 0, 0, 0, P(8), .map_pages = 8 },
        { "every free page reserved for the file", K_MOUNT, 0, 0, 0, 0, 0, .map_pages = MAP_ALL_FREE },
        { "reserved in part, growing", K_MOUNT, P(4), 0x1, 0, 0, P(10), .map_pages = 4 },
        { "reserved, then the mount's limit", K_LIMITED, P(8), 0, 0, 0, P(10), .map_pages = 8 },
        { "cgroup limit part-way, fresh", K_MOUNT, 0, 0, 0, 0, P(12), .cgroup_pages = 8, .cgroup_bites = true },
        { "cgroup limit part-way, pages there", K_MOUNT, P(4), 0x5, 0, 0, P(12), .cgroup_pages = 6, .cgroup_bites = true },
        { "cgroup limit part-way, keep size", K_MOUNT, P(2), 0x1, KS, 0, P(12), .cgroup_pages = 5, .cgroup_bites = true },
        { "cgroup limit exactly", K_MOUNT, 0, 0, 0, 0, P(8), .cgroup_pages = 8 },
        { "cgroup limit, reserved by a mapping", K_MOUNT, P(8), 0, 0, 0, P(8), .map_pages = 8, .cgroup_pages = 4, .cgroup_bites = true },
        { "min_size mount", K_MINSIZE, 0, 0, 0, 0, P(4) },
        { "memfd, fresh", K_MEMFD, 0, 0, 0, 0, P(10) },
        { "memfd, pages there", K_MEMFD, P(3), 0x5, 0, 0, P(10) },
        { "memfd F_SEAL_GROW past EOF", K_MEMFD, P(2), 0, 0, 0, P(8), F_SEAL_GROW },
        { "memfd F_SEAL_GROW within the size", K_MEMFD, P(8), 0x1, 0, 0, P(8), F_SEAL_GROW },
        { "memfd F_SEAL_GROW, keep size past EOF", K_MEMFD, P(4), 0, KS, 0, P(8), F_SEAL_GROW },
        { "memfd F_SEAL_SHRINK, growing", K_MEMFD, P(2), 0, 0, 0, P(8), F_SEAL_SHRINK },
        { "memfd F_SEAL_WRITE", K_MEMFD, P(4), 0, 0, 0, P(8), F_SEAL_WRITE },
        { "memfd F_SEAL_FUTURE_WRITE", K_MEMFD, P(4), 0x1, 0, 0, P(8), F_SEAL_FUTURE_WRITE },
        { "RLIMIT_FSIZE below the new size", K_MOUNT, 0, 0, 0, 0, P(8), .rlimit = P(6) },
        { "RLIMIT_FSIZE, within the size", K_MOUNT, P(8), 0x2, 0, 0, P(8), .rlimit = P(6) },
        { "RLIMIT_FSIZE, keep size", K_MOUNT, 0, 0, KS, 0, P(8), .rlimit = P(6) },
        { "RLIMIT_FSIZE, rounded up past it", K_MOUNT, 0, 0, 0, 0, 11 * MB, .rlimit = P(6) },
        { "O_WRONLY", K_MOUNT, 0, 0, 0, 0, P(8), .flags = O_WRONLY },
        { "O_WRONLY, pages there", K_MOUNT, P(4), 0x5, 0, 0, P(8), .flags = O_WRONLY },
        { "O_RDONLY", K_MOUNT, P(2), 0, 0, 0, P(8), .flags = O_RDONLY },
        { "O_APPEND", K_MOUNT, 0, 0, 0, 0, P(8), .flags = O_RDWR | O_APPEND },
        { "O_APPEND, keep size", K_MOUNT, P(2), 0x1, KS, 0, P(8), .flags = O_RDWR | O_APPEND },
        { "a directory", K_DIR, 0, 0, 0, 0, P(4) },
        { "a FIFO", K_FIFO, 0, 0, 0, 0, P(4) },
        { "len 0", K_MOUNT, 0, 0, 0, 0, 0 },
        { "negative offset", K_MOUNT, 0, 0, 0, -P(1), P(4) },
        { "negative len", K_MOUNT, 0, 0, 0, 0, -P(4) },
        { "past the largest size, aligned", K_MOUNT, 0, 0, 0, INT64_MAX - P(1) + 1, P(4) },
        { "past the largest size, unaligned", K_MOUNT, 0, 0, 0, INT64_MAX - MB, P(4) + 4096 },
        { "punch hole", K_MOUNT, P(8), 0xff, FALLOC_FL_PUNCH_HOLE | KS, P(2), P(2) },
        { "punch hole without keep size", K_MOUNT, P(8), 0xff, FALLOC_FL_PUNCH_HOLE, P(2), P(2) },
        { "zero range", K_MOUNT, P(8), 0xff, FALLOC_FL_ZERO_RANGE, P(2), P(2) },
        { "not hugetlbfs (tmpfs)", K_TMPFS, 0, 0, 0, 0, P(4) },
        { "1 GiB pages, fresh", K_GIANT, 0, 0, 0, 0, G(2) },
        { "1 GiB pages, keep size, unaligned", K_GIANT, 0, 0, KS, MB, G(1) },
};

/* ---- Files and snapshots ---------------------------------------------------------------------- */

typedef struct File {
        int fd;                         /* the fd the call gets */
        char path[256];                 /* "" for a memfd */
        void *map;                      /* the reserving mapping */
        uint64_t map_len;
} File;

static uint64_t case_page(const Case *k) {
        return k->kind == K_GIANT ? GP : HP;
}

static const char *kind_dir(const Case *k, bool twin) {
        switch (k->kind) {
        case K_LIMITED: return mnt[twin ? M_LIM_T : M_LIM_O];
        case K_MINSIZE: return mnt[twin ? M_MIN_T : M_MIN_O];
        case K_GIANT: return mnt[M_GIANT];
        case K_TMPFS: return "/dev/shm";
        default: return mnt[M_HUGE];
        }
}

static void make_pages(int fd, const Case *k) {
        uint64_t hp = case_page(k);

        if (k->size % (int64_t) hp != 0)        /* only fallocate makes such a size */
                ck_assert_int_eq(fallocate(fd, 0, 0, k->size), 0);
        else
                ck_assert_int_eq(ftruncate(fd, k->size), 0);
        for (unsigned i = 0; i < 64; i++)
                if (k->mask & (UINT64_C(1) << i))
                        ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t) (i * hp), (off_t) hp), 0);
}

static int open_special(const Case *k, bool twin, char *path, size_t n) {
        snprintf(path, n, "%s/%s-%d", mnt[M_HUGE], twin ? "twin" : "ours", getpid());
        if (k->kind == K_DIR) {
                ck_assert_int_eq(mkdir(path, 0700), 0);
                return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        return open(path, O_RDWR | O_CLOEXEC);
}

static File make_file(const Case *k, bool twin) {
        File f = { .fd = -1 };
        int fd;

        if (k->kind == K_DIR || k->kind == K_FIFO) {
                f.fd = open_special(k, twin, f.path, sizeof(f.path));
                ck_assert_int_ge(f.fd, 0);
                return f;
        }
        if (k->kind == K_MEMFD) {
                fd = memfd_create(twin ? "twin" : "ours", MFD_HUGETLB | MFD_CLOEXEC | MFD_ALLOW_SEALING);
        } else {
                snprintf(f.path, sizeof(f.path), "%s/%s-%d", kind_dir(k, twin), twin ? "twin" : "ours", getpid());
                fd = open(f.path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        }
        ck_assert_int_ge(fd, 0);
        make_pages(fd, k);
        if (k->map_pages) {
                f.map_len = k->map_pages * case_page(k);
                f.map = mmap(NULL, f.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                ck_assert_ptr_ne(f.map, MAP_FAILED);
        }
        if (k->seals)
                ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, k->seals), 0);
        if (k->flags == 0 || k->flags == O_RDWR || k->kind == K_MEMFD) {
                f.fd = fd;
                return f;
        }
        f.fd = open(f.path, k->flags | O_CLOEXEC);
        ck_assert_int_ge(f.fd, 0);
        close(fd);
        return f;
}

static void drop_file(File *f) {
        if (f->map)
                munmap(f->map, f->map_len);
        f->map = NULL;
        if (f->fd >= 0)
                close(f->fd);
        f->fd = -1;
        if (f->path[0] && rmdir(f->path) < 0)
                unlink(f->path);
        f->path[0] = '\0';
}

typedef struct Pool {
        long free_pages, resv;
} Pool;

static Pool pool_now(uint64_t hp) {
        const char *d = hp == GP ? SYS_GP : SYS_HP;
        char a[128], b[128];

        snprintf(a, sizeof(a), "%sfree_hugepages", d);
        snprintf(b, sizeof(b), "%sresv_hugepages", d);
        return (Pool) { read_long(a), read_long(b) };
}

typedef struct Snap {
        struct stat st;
        bool hugetlb;
        uint8_t present[SNAP_PAGES];
} Snap;

static void probe_pages(const File *f, const Case *k, Snap *s) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(hugetlb_probe(fd, case_page(k), 0, SNAP_PAGES * case_page(k), s->present, NULL), 0);
        close(fd);
}

/* The pages go through a second read-only fd, so that the fd under test is not touched. The
 * probe maps the file, which may move atime: before the call (the twin) the times are taken
 * after it, after the call before it. */
enum { NO_PAGES, PAGES_THEN_TIMES, TIMES_THEN_PAGES };
static Snap snap(const File *f, const Case *k, int how) {
        Snap s = {};

        ck_assert_int_eq(fstat(f->fd, &s.st), 0);
        s.hugetlb = S_ISREG(s.st.st_mode) && k->kind != K_TMPFS;
        if (how == NO_PAGES || !s.hugetlb)
                return s;
        probe_pages(f, k, &s);
        if (how == PAGES_THEN_TIMES)
                ck_assert_int_eq(fstat(f->fd, &s.st), 0);
        return s;
}

static bool ts_eq(struct timespec a, struct timespec b) {
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* ---- The comparison ------------------------------------------------------------------------------ */

static volatile sig_atomic_t n_sigxfsz;

static void on_sigxfsz(int sig) {
        (void) sig;
        n_sigxfsz++;
}

/* The case with the sizes that depend on the pool now filled in. */
static Case resolve(const Case *k) {
        Case r = *k;
        Pool p = pool_now(case_page(k));

        if (k->len == LEN_POOL_PLUS)
                r.len = P(p.free_pages + 8);
        if (k->map_pages == MAP_ALL_FREE) {
                r.map_pages = (unsigned) (p.free_pages - p.resv);
                r.size = r.len = P(r.map_pages);
        }
        return r;
}

static void apply_rlimit(const Case *k) {
        if (k->rlimit) {
                struct rlimit rl = { (rlim_t) k->rlimit, RLIM_INFINITY };
                ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
        }
}

static void lift_rlimit(void) {
        struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* Into the limited cgroup (the pages made before are charged where the case ran), and back. */
static void enter_cgroup(const Case *k) {
        int r;

        if (!k->cgroup_pages)
                return;
        r = write_long(cg_limit, (long) (k->cgroup_pages * HP));
        ck_assert_msg(r == 0, "setting %s: %s", cg_limit, strerror(-r));
        r = write_long(cg_procs, getpid());
        ck_assert_msg(r == 0, "joining %s: %s", cg_procs, strerror(-r));
}

static void leave_cgroup(const Case *k) {
        int r;

        if (!k->cgroup_pages)
                return;
        r = write_long(cg_home, getpid());
        ck_assert_msg(r == 0, "going back to %s: %s", cg_home, strerror(-r));
}

#define SAME(what, a, b) ck_assert_msg((a) == (b), "%s [%s threads]: %s differs: fallocate(2) %lld, library %lld", \
                                       k->name, two ? "2" : "1", what, (long long) (a), (long long) (b))

static void compare_files(const Case *k, bool two, const Snap *t, const Snap *o) {
        SAME("st_size", t->st.st_size, o->st.st_size);
        SAME("st_blocks", t->st.st_blocks, o->st.st_blocks);
        for (unsigned i = 0; i < SNAP_PAGES; i++)
                ck_assert_msg(t->present[i] == o->present[i], "%s [%s threads]: page %u: fallocate(2) %d, library %d",
                              k->name, two ? "2" : "1", i, t->present[i], o->present[i]);
}

/* Which of ctime, mtime, atime the call moved: the same ones. */
static void compare_times(const Case *k, bool two, const Snap *t0, const Snap *t1, const Snap *o0, const Snap *o1,
                          bool ctime_free) {
        if (!ctime_free)
                SAME("ctime moved", !ts_eq(t0->st.st_ctim, t1->st.st_ctim), !ts_eq(o0->st.st_ctim, o1->st.st_ctim));
        SAME("mtime moved", !ts_eq(t0->st.st_mtim, t1->st.st_mtim), !ts_eq(o0->st.st_mtim, o1->st.st_mtim));
        SAME("atime moved", !ts_eq(t0->st.st_atim, t1->st.st_atim), !ts_eq(o0->st.st_atim, o1->st.st_atim));
}

static void set_threads(bool two, uint64_t hp, pad_io_opts *o) {
        o->max_threads = two ? 2 : 1;
        if (two) {              /* the mapping path and a helper from two pages up */
                hugetlb_tuning.parallel_min = 2 * hp;
                hugetlb_tuning.min_chunk = hp;
                hugetlb_tuning.slice = hp;
        }
}

/* One run of case k. Other users of the pool that do not take POOL_LOCK move its counters
 * too: when they are all that differs, false (run again) unless this is the last try. */
static bool diff_once(const Case *k, bool two, bool last, unsigned index) {
        uint64_t hp = case_page(k);
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        struct timespec pause = { 0, 20 * 1000 * 1000 };    /* past the timestamp granularity */

        set_threads(two, hp, &o);
        n_sigxfsz = 0;

        /* The twin first, alone: its pages go back before ours is made, so the pool holds one
         * file's at a time. The library's drop of free and resv must be the twin's, none when
         * the twin's call failed (the model is then the twin before the call). */
        File twin = make_file(k, true);
        Snap t0 = snap(&twin, k, PAGES_THEN_TIMES);
        nanosleep(&pause, NULL);
        Pool p0 = pool_now(hp);
        apply_rlimit(k);
        enter_cgroup(k);
        int rt = fallocate(twin.fd, k->mode, (off_t) k->offset, (off_t) k->len) < 0 ? -errno : 0;
        leave_cgroup(k);
        lift_rlimit();
        int sig_t = n_sigxfsz;
        if (k->cgroup_pages)            /* the limit is there and bites where it should */
                ck_assert_msg(rt == (k->cgroup_bites ? -ENOSPC : 0), "%s: fallocate(2) in the cgroup: %d", k->name, rt);
        Pool p1 = pool_now(hp);
        Snap t1 = snap(&twin, k, TIMES_THEN_PAGES);
        drop_file(&twin);
        Pool d = rt < 0 ? (Pool) {} : (Pool) { p0.free_pages - p1.free_pages, p0.resv - p1.resv };

        File ours = make_file(k, false);
        Snap o0 = snap(&ours, k, NO_PAGES);
        nanosleep(&pause, NULL);
        p1 = pool_now(hp);
        apply_rlimit(k);
        enter_cgroup(k);
        pad_job_stats stats = {};
        int ro = pad_hugetlb_fallocate(NULL, ours.fd, k->mode, (uint64_t) k->offset, (uint64_t) k->len, &o, &stats);
        leave_cgroup(k);
        lift_rlimit();
        Pool p2 = pool_now(hp);
        Snap o1 = snap(&ours, k, TIMES_THEN_PAGES);
        drop_file(&ours);

        ck_assert_msg(rt == ro, "%s [%s threads]: return differs: fallocate(2) %d (%s), library %d (%s; %s)", k->name,
                      two ? "2" : "1", rt, strerror(-rt), ro, strerror(-ro), msg);
        SAME("SIGXFSZ count", sig_t, n_sigxfsz - sig_t);
        if (o0.hugetlb || k->kind == K_TMPFS)
                compare_files(k, two, rt == 0 ? &t1 : &t0, &o1);
        /* Giving pages back on the undo moves ctime (documented); nothing else may move. */
        bool undone = rt < 0 && t1.st.st_blocks > t0.st.st_blocks;
        compare_times(k, two, &t0, rt == 0 ? &t1 : &t0, &o0, &o1, undone);
        if (rt == 0 && index == 1) {    /* the first case on two threads: the job ran, with a helper */
                ck_assert_uint_ge(stats.chunks, 2);
                ck_assert_uint_eq(stats.granted, 1);
        }
        if (rt == 0)
                ck_assert_str_eq(msg, "");
        else
                ck_assert_str_ne(msg, "");
        bool pool_same = d.free_pages == p1.free_pages - p2.free_pages && d.resv == p1.resv - p2.resv;
        if (!pool_same && !last)
                return false;
        SAME("pool free drop", d.free_pages, p1.free_pages - p2.free_pages);
        SAME("pool resv drop", d.resv, p1.resv - p2.resv);
        return true;
}

START_TEST(test_diff) {
        bool two = _i % 2;

        if (cases[_i / 2].kind == K_GIANT && giant_skip) {
                printf("test-hugetlb-diff: %s: skipped: %s\n", cases[_i / 2].name, giant_skip);
                return;
        }
        if (cases[_i / 2].cgroup_pages && cgroup_skip) {
                printf("test-hugetlb-diff: %s: skipped: %s\n", cases[_i / 2].name, cgroup_skip);
                return;
        }
        signal(SIGXFSZ, on_sigxfsz);
        for (unsigned try = 1; try <= 3; try++) {
                Case r = resolve(&cases[_i / 2]);
                if (diff_once(&r, two, try == 3, (unsigned) _i))
                        return;
        }
}
END_TEST

static Suite *diff_suite(void) {
        Suite *s = suite_create("hugetlb-diff");
        TCase *tc = tcase_create("grid");

        tcase_add_loop_test(tc, test_diff, 0, 2 * (int) ELEMENTSOF(cases));
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        setup_global();
        printf("test-hugetlb-diff: %zu cases\n", 2 * ELEMENTSOF(cases));
        return pool_run_suite(diff_suite());
}
