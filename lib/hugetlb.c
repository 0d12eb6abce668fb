/* hugetlb.c: pad_hugetlb_fallocate(), fallocate(2) on a hugetlbfs file, in parallel where
 * that pays, with fallocate(2)'s result for every input. The kernel's fallocate holds the
 * inode lock for the whole call, so it runs on one CPU; MADV_POPULATE_WRITE on disjoint
 * ranges of a shared writable mapping of the file allocates the same page-cache pages in
 * parallel. This file owns the choice of path and the paths: (1) what the kernel would refuse
 * before allocating (file type, access mode, F_SEAL_GROW and RLIMIT_FSIZE against the new
 * end, modes other than 0 and KEEP_SIZE, negative or overflowing ranges, files elsewhere than
 * hugetlbfs) goes to fallocate(2) unchanged; (2) small or single-threaded calls on a file
 * without pages are one fallocate(2), undone from st_blocks on failure; (3) small calls on a
 * file with pages, and calls where no writable mapping or no userfaultfd can be had, are the
 * kernel's fallocate page by page on one thread, st_blocks telling which pages the call
 * allocated; (4) otherwise the probe of the pages the file has (a read-only private
 * MAP_NORESERVE mapping registered with a userfaultfd in SIGBUS mode: MADV_POPULATE_READ maps
 * a page that exists and fails with EFAULT on a hole, allocating and reserving nothing), the
 * up-front pool check and the population job: whole pages below EOF (and, in mode 0, up to
 * the new size when the growth can be undone exactly) through the mapping in parallel, the
 * rest through the kernel's fallocate(KEEP_SIZE). Paths (3) and (4) end with the caller's own
 * fallocate(2), which then finds every page there: the kernel makes its checks and sets size
 * and ctime. The undo punches out the pages the call allocated, puts size, atime and mtime
 * back, and makes again the reservations of shared mappings those pages had consumed. */
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jobs-internal.h"
#include "util.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

_Static_assert(PAD_FALLOC_KEEP_SIZE == FALLOC_FL_KEEP_SIZE, "PAD_FALLOC_KEEP_SIZE");

/* Population below min_chunk bytes per thread is not worth a helper; below parallel_min the
 * call is one fallocate(2): no helper could take a chunk. Measured on 2 CPUs: two threads
 * lose to fallocate(2) at 8 MiB; at 32-64 MiB they win on a quiet machine but lose on a busy
 * one, where the broker's round trip and a helper waiting for a CPU cost milliseconds. */
JobsTuning hugetlb_tuning = {
        .min_chunk = 32 * JOBS_MIB,
        .parallel_min = 128 * JOBS_MIB,
        .slice = 16 * JOBS_MIB,
};

enum {
        SLICE_UNSEEN,                   /* its chunk has not started */
        SLICE_FREE,                     /* its chunk has started: any thread may take it */
        SLICE_TAKEN,                    /* a thread is in it */
        SLICE_DONE,
};

enum {
        PAGE_HOLE,                      /* not there before the call */
        PAGE_THERE,                     /* there before the call */
        PAGE_OURS,                      /* allocated by the call (known on the undo) */
};

typedef struct HugetlbRun {
        int fd;
        int mode;
        int node;
        uint64_t hpage;
        uint64_t offset, len;           /* the call's own arguments */
        uint64_t start, stop;           /* the pages they touch: rounded out to whole pages */
        struct stat st;                 /* the file before the call */
        long resv0;                     /* the pool's reserved pages before the call; -1: unknown */
        uint64_t map_end;               /* [start, map_end) is mapped and populated */
        bool grows_by_map;              /* the mapping moved the size to map_end */
        uint8_t *map;
        uint8_t *page;                  /* PAGE_* for each page of [start, stop) */
        uint64_t n_present;
        uint64_t slice;                 /* bytes a thread takes at a time; the job's align */
        uint8_t *slices;                /* SLICE_* for each slice of [start, stop), atomic */
        int failed;                     /* a slice failed: take no more (atomic) */
        const pad_cancel *cancel;
} HugetlbRun;

static uint64_t run_pages(const HugetlbRun *h) {
        return (h->stop - h->start) / h->hpage;
}

static uint64_t run_end(const HugetlbRun *h) {
        return h->offset + h->len;
}

/* ---- Probing the pages the file has ---------------------------------------------------- */

static int uffd_open(void) {
        int fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
        if (fd < 0 && errno == EINVAL)  /* before 5.11 */
                fd = (int) syscall(SYS_userfaultfd, O_CLOEXEC);
        if (fd >= 0)
                return fd;

        int r = -errno;
        _cleanup_close_ int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
        if (dev < 0)
                return r;
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int uffd_open_sigbus(void) {
        _cleanup_close_ int fd = uffd_open();
        if (fd < 0)
                return fd;

        struct uffdio_api api = {
                .api = UFFD_API,
                .features = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MISSING_HUGETLBFS,
        };
        if (ioctl(fd, UFFDIO_API, &api) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Is the page at addr (mapped read-only, userfaultfd SIGBUS mode) in the page cache? */
static int probe_page(uint8_t *addr, uint64_t hpage) {
        for (unsigned tries = 0; tries < 1000; tries++) {
                if (madvise(addr, hpage, MADV_POPULATE_READ) == 0)
                        return 1;
                if (errno == EFAULT)
                        return 0;
                if (errno != EINTR && errno != EAGAIN)
                        return -errno;
        }
        return -EINTR;
}

/* Declared in jobs-internal.h: which pages of [from, to) the file has, also beyond EOF,
 * without allocating or reserving any page. */
int hugetlb_probe(int fd, uint64_t hpage, uint64_t from, uint64_t to, uint8_t *present,
                      uint64_t *ret_count) {
        uint64_t len = to - from, count = 0;
        int r;

        _cleanup_close_ int uffd = uffd_open_sigbus();
        if (uffd < 0)
                return uffd;

        /* MAP_PRIVATE: registering needs VM_MAYWRITE, which a private mapping has even on a
         * read-only fd or a write-sealed memfd; a read fault maps the page-cache page. */
        uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, (off_t) from);
        if (map == MAP_FAILED)
                return -errno;

        struct uffdio_register reg = {
                .range = { .start = (uintptr_t) map, .len = len },
                .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
                r = -errno;
                goto out;
        }

        r = 0;
        for (uint64_t i = 0; i < len / hpage; i++) {
                int p = probe_page(map + i * hpage, hpage);
                if (p < 0) {
                        r = p;
                        break;
                }
                if (present)
                        present[i] = (uint8_t) p;
                count += (uint64_t) p;
        }
        if (r == 0 && ret_count)
                *ret_count = count;
out:
        munmap(map, len);
        return r;
}

/* ---- The pool ------------------------------------------------------------------------- */

static int read_u64_file(const char *path, uint64_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[64];

        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = '\0';
        char *e;
        errno = 0;
        unsigned long long v = strtoull(buf, &e, 10);
        if (errno != 0 || e == buf)
                return -EIO;
        *ret = v;
        return 0;
}

static uint64_t pool_value(const char *dir, uint64_t hpage, const char *name) {
        char path[256];
        uint64_t v = 0;

        snprintf(path, sizeof(path), "%s/hugepages-%llukB/%s", dir,
                 (unsigned long long) (hpage / 1024), name);
        (void) read_u64_file(path, &v);
        return v;
}

/* The most pages an allocation could get now: every free page (reserved ones too: they may
 * be reserved for this very file) plus the overcommit room; on a node, no more than that
 * node has free. Fewer holes than this can never be filled: the call then fails up front. */
static uint64_t hugetlb_pool_bound(uint64_t hpage, int node) {
        const char *g = "/sys/kernel/mm/hugepages";
        uint64_t over = pool_value(g, hpage, "nr_overcommit_hugepages");
        uint64_t surplus = pool_value(g, hpage, "surplus_hugepages");
        uint64_t room = over > surplus ? over - surplus : 0;
        uint64_t bound = pool_value(g, hpage, "free_hugepages") + room;

        if (node >= 0) {
                char dir[128];
                snprintf(dir, sizeof(dir), "/sys/devices/system/node/node%d/hugepages", node);
                bound = MIN(bound, pool_value(dir, hpage, "free_hugepages") + room);
        }
        return bound;
}

static long hugetlb_pool_resv(uint64_t hpage) {
        char path[128];
        uint64_t v = 0;

        snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/resv_hugepages",
                 (unsigned long long) (hpage / 1024));
        return read_u64_file(path, &v) < 0 ? -1 : (long) v;
}

/* ---- The kernel's call ---------------------------------------------------------------- */

/* Binds the calling thread's allocations to node (the kernel's fallocate takes the node from
 * the thread's policy); node < 0: nothing. */
typedef struct Policy {
        bool set;
        int mode;
        unsigned long mask[16];
} Policy;

static int policy_bind(int node, Policy *ret_old) {
        unsigned long mask[16] = {};

        *ret_old = (Policy) { .mode = MPOL_DEFAULT };
        if (node < 0)
                return 0;
        if ((size_t) node >= sizeof(mask) * 8)
                return -ENXIO;
        if (get_mempolicy(&ret_old->mode, ret_old->mask, sizeof(ret_old->mask) * 8, NULL, 0) < 0)
                return -errno;
        mask[node / 64] = 1UL << (node % 64);
        if (set_mempolicy(MPOL_BIND, mask, sizeof(mask) * 8) < 0)
                return -errno;
        ret_old->set = true;
        return 0;
}

static void policy_restore(const Policy *old) {
        if (old->set)
                (void) set_mempolicy(old->mode, old->mode == MPOL_DEFAULT ? NULL : old->mask,
                                     sizeof(old->mask) * 8);
}

/* fallocate(2); a signal restarts it (the pages done are kept) unless cancel was asked. */
static int kernel_fallocate(int fd, int mode, uint64_t offset, uint64_t len, const pad_cancel *cancel) {
        while (fallocate(fd, mode, (off_t) offset, (off_t) len) < 0) {
                if (errno == EINTR && !jobs_cancelled(cancel))
                        continue;
                return errno == EINTR ? -ECANCELED : -errno;
        }
        return 0;
}

/* The same on the run's node. */
static int kernel_fallocate_node(const HugetlbRun *h, int mode, uint64_t offset, uint64_t len) {
        Policy old;
        int r = policy_bind(h->node, &old);

        if (r < 0)
                return r;
        r = kernel_fallocate(h->fd, mode, offset, len, h->cancel);
        policy_restore(&old);
        return r;
}

/* ---- What the call may do -------------------------------------------------------------- */

static int hugetlb_check_node(int node, const pad_io_opts *o) {
        char path[96];

        if (node == PAD_NODE_ANY)
                return 0;
        snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
        if (node < 0 || access(path, F_OK) < 0) {
                jobs_msg(o, "no NUMA node %d", node);
                return -ENXIO;
        }
        return 0;
}

/* An allocation the library takes on: mode 0 or KEEP_SIZE, offset >= 0, len > 0, and the
 * end within the largest file size. Anything else is fallocate(2)'s own business. */
static bool args_allocate(int mode, uint64_t offset, uint64_t len) {
        return (mode == 0 || mode == PAD_FALLOC_KEEP_SIZE) && offset <= INT64_MAX && len >= 1 &&
               len <= INT64_MAX - offset;
}

/* The huge page size of fd's file system if fd is a regular file on hugetlbfs, else 0. */
static uint64_t hugetlb_page_size(int fd, const struct stat *st) {
        struct statfs sfs;

        if (!S_ISREG(st->st_mode) || fstatfs(fd, &sfs) < 0 || sfs.f_type != HUGETLBFS_MAGIC)
                return 0;
        uint64_t hpage = (uint64_t) sfs.f_bsize;
        return hpage != 0 && (hpage & (hpage - 1)) == 0 ? hpage : 0;
}

/* Would the kernel refuse the call before allocating a page (no write access, a seal or
 * RLIMIT_FSIZE against the new end)? Then fallocate(2) itself says so (with SIGXFSZ). */
static bool kernel_refuses(const HugetlbRun *h, int fl, int seals) {
        uint64_t end = run_end(h);
        struct rlimit rl;

        if ((fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH))
                return true;
        if (end <= (uint64_t) h->st.st_size)
                return false;
        if (seals > 0 && (seals & F_SEAL_GROW))
                return true;
        return getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && end > rl.rlim_cur;
}

/* A shared writable mapping can be had: read-write, no seal against writes. */
static bool can_map(int fl, int seals) {
        return (fl & O_ACCMODE) == O_RDWR && !(seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)));
}

static bool uffd_usable(void) {
        _cleanup_close_ int fd = uffd_open_sigbus();
        return fd >= 0;
}

/* ---- The undo ---------------------------------------------------------------------------- */

/* Mark PAGE_OURS the pages that are there now and were holes before. */
static int hugetlb_mark_ours(HugetlbRun *h) {
        uint64_t n = run_pages(h);
        _cleanup_free_ uint8_t *now = calloc(n, 1);

        if (!now)
                return -ENOMEM;
        int r = hugetlb_probe(h->fd, h->hpage, h->start, h->stop, now, NULL);
        if (r < 0)
                return r;
        for (uint64_t i = 0; i < n; i++)
                if (now[i] && h->page[i] == PAGE_HOLE)
                        h->page[i] = PAGE_OURS;
        return 0;
}

/* Calls fn on each run of PAGE_OURS pages; returns how many pages there are. */
static uint64_t for_each_ours(HugetlbRun *h, void (*fn)(HugetlbRun *h, uint64_t off, uint64_t len)) {
        uint64_t n = run_pages(h), count = 0;

        for (uint64_t i = 0; i < n;) {
                if (h->page[i] != PAGE_OURS) {
                        i++;
                        continue;
                }
                uint64_t j = i;
                while (j < n && h->page[j] == PAGE_OURS)
                        j++;
                fn(h, h->start + i * h->hpage, (j - i) * h->hpage);
                count += j - i;
                i = j;
        }
        return count;
}

static void punch(HugetlbRun *h, uint64_t off, uint64_t len) {
        (void) fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) off, (off_t) len);
}

/* A shared mapping without MAP_NORESERVE reserves its range on the inode, and the
 * reservation outlives the mapping. */
static void reserve(HugetlbRun *h, uint64_t off, uint64_t len) {
        void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, h->fd, (off_t) off);
        if (p != MAP_FAILED)
                munmap(p, len);
}

/* Punching a page that was allocated against a reservation of a shared mapping of the file
 * drops that reservation too. When the pool has exactly as many reservations fewer as the
 * undo gave pages back, every one of them had one: make them again. */
static void restore_reservations(HugetlbRun *h, uint64_t ours) {
        if (h->resv0 < 0 || ours == 0)
                return;
        long now = hugetlb_pool_resv(h->hpage);
        if (now >= 0 && h->resv0 - now == (long) ours)
                (void) for_each_ours(h, reserve);
}

static void restore_times(const HugetlbRun *h) {
        struct stat now;

        if (fstat(h->fd, &now) < 0)
                return;
        if (now.st_atim.tv_sec == h->st.st_atim.tv_sec && now.st_atim.tv_nsec == h->st.st_atim.tv_nsec &&
            now.st_mtim.tv_sec == h->st.st_mtim.tv_sec && now.st_mtim.tv_nsec == h->st.st_mtim.tv_nsec)
                return;
        (void) futimens(h->fd, (const struct timespec[2]) { h->st.st_atim, h->st.st_mtim });
}

static void hugetlb_unmap(HugetlbRun *h) {
        if (h->map)
                munmap(h->map, h->map_end - h->start);
        h->map = NULL;
}

/* Best effort: an undo that cannot put the size back has nothing left to try. */
static void size_put_back(int fd, off_t size) {
        if (ftruncate(fd, size) < 0)
                return;
}

/* Give back the pages marked PAGE_OURS; put size, reservations, atime and mtime back. */
static void hugetlb_undo(HugetlbRun *h) {
        struct stat now;

        hugetlb_unmap(h);
        uint64_t ours = for_each_ours(h, punch);
        if (h->grows_by_map && fstat(h->fd, &now) == 0 && now.st_size != h->st.st_size)
                size_put_back(h->fd, h->st.st_size);
        restore_reservations(h, ours);
        restore_times(h);
}

/* ---- One call, page by page, the population job ------------------------------------------ */

static void run_set_page(HugetlbRun *h, uint64_t hpage) {
        h->hpage = hpage;
        h->start = h->offset / hpage * hpage;
        h->stop = DIV_ROUND_UP(run_end(h), hpage) * hpage;
}

/* Small or single-threaded, in a file without pages: one fallocate(2). A failure part-way is
 * undone from st_blocks alone: the kernel fills the holes in ascending order, so the call's
 * pages are the first ones of the range. */
static int hugetlb_once(HugetlbRun *h) {
        int r = kernel_fallocate_node(h, h->mode, h->offset, h->len);
        struct stat now;

        if (r == 0 || fstat(h->fd, &now) < 0 || now.st_blocks <= h->st.st_blocks)
                return r;
        if (h->hpage == 0) {
                uint64_t hpage = hugetlb_page_size(h->fd, &h->st);
                if (hpage == 0)
                        return r;
                run_set_page(h, hpage);
        }
        uint64_t k = (uint64_t) (now.st_blocks - h->st.st_blocks) * 512 / h->hpage;
        _cleanup_free_ uint8_t *page = calloc(run_pages(h), 1);
        if (!page)
                return r;
        memset(page, PAGE_OURS, MIN(k, run_pages(h)));
        h->page = page;
        h->grows_by_map = h->st.st_size % (off_t) h->hpage == 0;    /* no page beyond EOF */
        hugetlb_undo(h);
        h->page = NULL;
        return r;
}

/* The kernel's path on one thread (threads on one inode serialise on its lock), one page per
 * call: a call that raised st_blocks allocated its page. No call ends beyond offset + len,
 * so each meets RLIMIT_FSIZE and the seals as the whole call would. */
static int hugetlb_serial(HugetlbRun *h) {
        struct stat st = h->st;
        Policy old;
        int r = policy_bind(h->node, &old);

        for (uint64_t i = 0; r == 0 && i < run_pages(h); i++) {
                uint64_t p = h->start + i * h->hpage;
                uint64_t a = MAX(p, h->offset), b = MIN(p + h->hpage, run_end(h));
                blkcnt_t before = st.st_blocks;

                if (jobs_cancelled(h->cancel))
                        r = -ECANCELED;
                else
                        r = kernel_fallocate(h->fd, PAD_FALLOC_KEEP_SIZE, a, b - a, h->cancel);
                if (fstat(h->fd, &st) < 0 && r == 0)
                        r = -errno;
                if (st.st_blocks > before)
                        h->page[i] = PAGE_OURS;
        }
        policy_restore(&old);
        return r;
}

/* The part of a slice beyond the mapping goes through the kernel, ending at offset + len. */
static int hugetlb_slice(HugetlbRun *h, uint64_t start, uint64_t end) {
        uint64_t mid = MIN(MAX(start, h->map_end), end);
        int r;

        if (mid > start) {
                r = jobs_populate_write(h->map + (start - h->start), mid - start, h->hpage, h->cancel);
                if (r == -ENOMEM || r == -EFAULT)
                        return -ENOSPC;
                if (r < 0)
                        return r;
        }
        end = MIN(end, run_end(h));
        if (end > mid)
                return kernel_fallocate_node(h, PAD_FALLOC_KEEP_SIZE, mid, end - mid);
        return 0;
}

static bool slice_take(HugetlbRun *h, uint64_t i) {
        uint8_t expected = SLICE_FREE;

        return __atomic_compare_exchange_n(&h->slices[i], &expected, SLICE_TAKEN, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED);
}

static bool run_failed(HugetlbRun *h) {
        return __atomic_load_n(&h->failed, __ATOMIC_ACQUIRE);
}

static int run_fail(HugetlbRun *h, int r) {
        if (r < 0)
                __atomic_store_n(&h->failed, 1, __ATOMIC_RELEASE);
        return r;
}

/* Run slice i if no other thread took it. Cancel is checked between slices. */
static int slice_run(HugetlbRun *h, uint64_t i) {
        uint64_t s = h->start + i * h->slice;

        if (run_failed(h) || !slice_take(h, i))
                return 0;
        int r = jobs_cancelled(h->cancel) ? -ECANCELED : hugetlb_slice(h, s, MIN(s + h->slice, h->stop));
        __atomic_store_n(&h->slices[i], SLICE_DONE, __ATOMIC_RELEASE);
        return run_fail(h, r);
}

/* Help with slice i, which another thread is in: its pages from the end, one at a time,
 * until that thread is done. A page there already is only mapped (or skipped by the
 * kernel's fallocate), so the two never allocate one page twice. */
static int slice_help(HugetlbRun *h, uint64_t i) {
        uint64_t s = h->start + i * h->slice, e = MIN(s + h->slice, h->stop);

        for (uint64_t p = e; p > s; p -= h->hpage) {
                if (run_failed(h) || __atomic_load_n(&h->slices[i], __ATOMIC_ACQUIRE) != SLICE_TAKEN)
                        return 0;
                int r = jobs_cancelled(h->cancel) ? -ECANCELED : hugetlb_slice(h, p - h->hpage, p);
                if (r < 0)
                        return run_fail(h, r);
        }
        return 0;
}

/* A chunk: its slices in order, then any slice still free in a chunk another thread is in,
 * then help with the slices others are in, each from its end: a helper starved at low
 * priority on a busy machine leaves next to nothing for the job to wait on. Slices of chunks
 * not yet started are left to them (progress is counted per chunk). On another thread's
 * failure the chunk returns 0: the job fails with that thread's error. */
static int hugetlb_thread_fn(uint64_t start, uint64_t end, void *arg) {
        HugetlbRun *h = arg;
        uint64_t first = (start - h->start) / h->slice, last = DIV_ROUND_UP(end - h->start, h->slice);
        uint64_t n = DIV_ROUND_UP(h->stop - h->start, h->slice);
        int r = 0;

        for (uint64_t i = first; i < last; i++)
                __atomic_store_n(&h->slices[i], SLICE_FREE, __ATOMIC_RELEASE);
        for (uint64_t i = first; r == 0 && i < last; i++)
                r = slice_run(h, i);
        for (uint64_t i = n; r == 0 && i > 0; i--)
                r = slice_run(h, i - 1);
        for (uint64_t i = n; r == 0 && i > 0; i--)
                r = slice_help(h, i - 1);
        return r;
}

static int hugetlb_map(HugetlbRun *h) {
        uint64_t len = h->map_end - h->start;

        /* MAP_NORESERVE: a reservation made at mmap time for a hole that is never faulted
         * (cancel, failure part-way) would stay on the inode after the undo. Without it the
         * faults take free pages, or the reservations of other mappings of the file, exactly
         * like fallocate(2) does. A writable mapping grows the file to its end. */
        h->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, h->fd,
                      (off_t) h->start);
        if (h->map == MAP_FAILED) {
                h->map = NULL;
                return -errno;
        }
        if (h->node >= 0) {
                unsigned long mask[16] = {};
                if ((size_t) h->node >= sizeof(mask) * 8)
                        return -ENXIO;
                mask[h->node / 64] = 1UL << (h->node % 64);
                if (mbind(h->map, len, MPOL_BIND, mask, sizeof(mask) * 8, 0) < 0)
                        return -errno;
        }
        return 0;
}

/* What goes through the mapping: the whole pages below EOF (a fault at or beyond EOF is a
 * SIGBUS), and in mode 0 the whole pages up to the new size when growing the file can be
 * undone exactly: the old size a page multiple, no page beyond it, no F_SEAL_SHRINK. */
static int hugetlb_plan(HugetlbRun *h, int seals) {
        uint64_t size = (uint64_t) h->st.st_size, blocks_pages = (uint64_t) h->st.st_blocks * 512 / h->hpage;
        bool grow = h->mode == 0 && run_end(h) > size && size % h->hpage == 0 &&
                    !(seals > 0 && (seals & F_SEAL_SHRINK));

        if (grow && blocks_pages > 0) {
                uint64_t below = 0;
                int r = size > 0 ? hugetlb_probe(h->fd, h->hpage, 0, size, NULL, &below) : 0;
                if (r < 0)
                        return r;
                grow = below == blocks_pages;
        }
        if (grow)
                h->map_end = run_end(h) / h->hpage * h->hpage;
        else
                h->map_end = MIN(h->stop, MAX(size / h->hpage * h->hpage, h->start));
        h->grows_by_map = grow && h->map_end > size;
        return 0;
}

static int hugetlb_job(pad_client *c, HugetlbRun *h, const pad_io_opts *o, pad_job_stats *ret_stats) {
        pad_job job;

        h->slice = MAX(hugetlb_tuning.slice / h->hpage, 1) * h->hpage;
        jobs_job_init(&job, o);
        job.thread_fn = hugetlb_thread_fn;
        job.arg = h;
        job.start = h->start;
        job.size = h->stop - h->start;
        job.align = h->slice;
        job.min_chunk = MAX(h->slice, hugetlb_tuning.min_chunk);
        _cleanup_free_ uint8_t *slices = calloc(DIV_ROUND_UP(job.size, h->slice), 1);
        if (!slices)
                return -ENOMEM;
        h->slices = slices;
        int r = pad_job_run(c, &job, ret_stats);
        h->slices = NULL;
        return r;
}

/* The probe, the up-front pool check, the mapping and the job. 1: no mapping to be had here
 * (nothing done; the caller takes the page-by-page path). */
static int hugetlb_parallel(pad_client *c, HugetlbRun *h, int seals, const pad_io_opts *o,
                            pad_job_stats *ret_stats) {
        uint64_t n = run_pages(h);
        int r;

        if (h->st.st_blocks > 0) {
                r = hugetlb_probe(h->fd, h->hpage, h->start, h->stop, h->page, &h->n_present);
                if (r < 0)
                        return 1;
        } else if (!uffd_usable())
                return 1;
        uint64_t need = n - h->n_present, bound = hugetlb_pool_bound(h->hpage, h->node);
        if (need > bound) {
                jobs_msg(o, "not enough huge pages: need %llu, %llu free", (unsigned long long) need,
                         (unsigned long long) bound);
                return -ENOSPC;
        }
        r = hugetlb_plan(h, seals);
        if (r < 0)
                return 1;
        if (h->map_end > h->start && hugetlb_map(h) < 0) {
                hugetlb_unmap(h);
                if (h->grows_by_map)
                        size_put_back(h->fd, h->st.st_size);
                h->grows_by_map = false;
                return 1;
        }
        r = hugetlb_job(c, h, o, ret_stats);
        hugetlb_unmap(h);
        if (r < 0 && hugetlb_mark_ours(h) < 0)
                jobs_msg(o, "cannot tell which huge pages the call allocated");
        if (r == 0)
                restore_times(h);       /* the mappings' atime; the final call sets ctime */
        return r;
}

/* ---- The call ---------------------------------------------------------------------------- */

static void report_failure(const pad_io_opts *o, int r) {
        if (o && o->ret_msg && o->ret_msg[0])
                return;
        if (r == -ENOSPC)
                jobs_msg(o, "huge page allocation failed (pool, mount, cgroup or node limit); undone");
        else if (r == -ECANCELED)
                jobs_msg(o, "cancelled; undone");
        else
                jobs_msg(o, "fallocate: %s", strerror(-r));
}

static void report_done(const pad_io_opts *o, uint64_t len, pad_job_stats *ret_stats) {
        if (o && o->progress_fn)
                o->progress_fn(len, len, o->progress_arg);
        if (ret_stats)
                *ret_stats = (pad_job_stats) { .threads = 1, .chunks = 1 };
}

/* The checks the kernel would make first, then the parallel path (when parallel is true and
 * a mapping can be had) or the page-by-page one, then the caller's own fallocate(2) over
 * pages that are all there. */
static int hugetlb_checked(pad_client *c, HugetlbRun *h, bool parallel, const pad_io_opts *o,
                           pad_job_stats *ret_stats) {
        int fl = fcntl(h->fd, F_GETFL), seals = fcntl(h->fd, F_GET_SEALS);
        bool job = false;
        int r = 1;

        if (fl < 0 || kernel_refuses(h, fl, seals))
                return kernel_fallocate_node(h, h->mode, h->offset, h->len);
        _cleanup_free_ uint8_t *page = calloc(run_pages(h), 1);
        if (!page)
                return -ENOMEM;
        h->page = page;
        h->resv0 = hugetlb_pool_resv(h->hpage);
        if (parallel && can_map(fl, seals) && run_pages(h) >= 2) {
                r = hugetlb_parallel(c, h, seals, o, ret_stats);
                job = r <= 0;
        }
        if (r == 1)
                r = hugetlb_serial(h);
        if (r == 0)
                r = kernel_fallocate(h->fd, h->mode, h->offset, h->len, h->cancel);
        if (r < 0)
                hugetlb_undo(h);
        else if (!job)
                report_done(o, h->len, ret_stats);
        h->page = NULL;
        return r;
}

/* One fallocate(2) with the undo from st_blocks, or the kernel's call as it is. */
static int hugetlb_single(HugetlbRun *h, bool undo, const pad_io_opts *o, pad_job_stats *ret_stats) {
        int r = undo ? hugetlb_once(h) : kernel_fallocate_node(h, h->mode, h->offset, h->len);

        if (r == 0)
                report_done(o, h->len, ret_stats);
        return r;
}

static int hugetlb_dispatch(pad_client *c, HugetlbRun *h, const pad_io_opts *o, pad_job_stats *ret_stats) {
        bool small = h->len < hugetlb_tuning.parallel_min || (o && o->max_threads == 1);

        if (!args_allocate(h->mode, h->offset, h->len) || fstat(h->fd, &h->st) < 0)
                return hugetlb_single(h, false, o, ret_stats);
        if (small && h->st.st_blocks == 0 && h->st.st_size == 0)
                return hugetlb_single(h, true, o, ret_stats);  /* the common small call: nothing to learn first */

        uint64_t hpage = hugetlb_page_size(h->fd, &h->st);
        if (hpage == 0)
                return hugetlb_single(h, false, o, ret_stats);
        run_set_page(h, hpage);
        if (small && h->st.st_blocks == 0) {
                h->resv0 = hugetlb_pool_resv(hpage);    /* a mapping of the file may have reserved */
                return hugetlb_single(h, true, o, ret_stats);
        }
        return hugetlb_checked(c, h, !small, o, ret_stats);
}

_public_ int pad_hugetlb_fallocate(pad_client *c, int fd, int mode, uint64_t offset, uint64_t len,
                                   const pad_io_opts *opts, pad_job_stats *ret_stats) {
        HugetlbRun h = {
                .fd = fd,
                .mode = mode,
                .node = opts ? opts->node : PAD_NODE_ANY,
                .offset = offset,
                .len = len,
                .resv0 = -1,
                .cancel = opts ? opts->cancel : NULL,
        };
        int r;

        jobs_msg_clear(opts);
        if (jobs_cancelled(h.cancel)) {
                jobs_msg(opts, "cancelled");
                return -ECANCELED;
        }
        r = hugetlb_check_node(h.node, opts);
        if (r < 0)
                return r;
        r = hugetlb_dispatch(c, &h, opts, ret_stats);
        if (r < 0)
                report_failure(opts, r);
        return r;
}
