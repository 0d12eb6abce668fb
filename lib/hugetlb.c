/* hugetlb.c: pad_hugetlb_fallocate(), fallocate(2) on a hugetlbfs file done by many threads.
 * The kernel's fallocate holds the inode lock for the whole call, so it runs on one CPU;
 * MADV_POPULATE_WRITE on disjoint ranges of a shared writable mapping of the file allocates
 * the same page-cache pages in parallel. This file owns the checks (hugetlbfs, alignment,
 * the free pool), the probe of the pages the file already has (a read-only MAP_NORESERVE
 * mapping registered with a userfaultfd in SIGBUS mode: MADV_POPULATE_READ maps a page that
 * exists and fails with EFAULT on a hole, without allocating or reserving anything), the
 * population job, and the undo: the pages that were holes before are punched out and the
 * size is restored. Two parts of a range cannot go through a writable mapping, because
 * mapping beyond the end of file grows the file: the part of a KEEP_SIZE range beyond EOF,
 * and, in mode 0, the part beyond EOF when the file already has pages past its EOF (undoing
 * a grown size would free those). Those parts are allocated with the kernel's fallocate
 * (KEEP_SIZE) inside the same job; mode 0 then sets the size once everything is there.
 * Where userfaultfd is denied (seccomp) and the file already has pages, the whole range
 * goes through the kernel's fallocate on one thread, page by page, st_blocks telling which
 * pages the call allocated. */
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

_Static_assert(PAD_FALLOC_KEEP_SIZE == FALLOC_FL_KEEP_SIZE, "PAD_FALLOC_KEEP_SIZE");

/* Population below this many bytes per thread is not worth a helper (QEMU uses 64 MiB). */
#define HUGETLB_MIN_CHUNK (64 * JOBS_MIB)
/* Cancel is checked between slices of a chunk this long. */
#define HUGETLB_SLICE (64 * JOBS_MIB)

typedef struct HugetlbRun {
        int fd;
        int mode;
        int node;
        uint64_t hpage;
        uint64_t offset, end;           /* the range, file offsets */
        uint64_t old_size;
        uint64_t map_end;               /* [offset, map_end) is mapped and populated */
        bool grows_by_map;              /* the mapping moved the size to end */
        bool serial;                    /* no probe: one thread, page by page, no mapping */
        uint8_t *map;
        uint8_t *present;               /* one byte per page of the range: there before */
        uint64_t n_present;
        const pad_cancel *cancel;
} HugetlbRun;

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

        uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, (off_t) from);
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

/* Pages a new shared mapping could get: free and unreserved, plus the overcommit room;
 * on a node, no more than that node has free. */
static uint64_t hugetlb_pool_available(uint64_t hpage, int node) {
        const char *g = "/sys/kernel/mm/hugepages";
        uint64_t free_pages = pool_value(g, hpage, "free_hugepages");
        uint64_t resv = pool_value(g, hpage, "resv_hugepages");
        uint64_t over = pool_value(g, hpage, "nr_overcommit_hugepages");
        uint64_t surplus = pool_value(g, hpage, "surplus_hugepages");
        uint64_t avail = (free_pages > resv ? free_pages - resv : 0) + (over > surplus ? over - surplus : 0);

        if (node >= 0) {
                char dir[128];
                snprintf(dir, sizeof(dir), "/sys/devices/system/node/node%d/hugepages", node);
                avail = MIN(avail, pool_value(dir, hpage, "free_hugepages") + (over > surplus ? over - surplus : 0));
        }
        return avail;
}

/* ---- Checks --------------------------------------------------------------------------- */

static int hugetlb_check(int fd, int mode, uint64_t offset, uint64_t len, const pad_io_opts *o,
                         struct stat *ret_st, uint64_t *ret_hpage) {
        struct statfs sfs;
        int fl;

        if (fd < 0 || fstat(fd, ret_st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0) {
                jobs_msg(o, "bad file descriptor %d", fd);
                return -EBADF;
        }
        if (mode != 0 && mode != PAD_FALLOC_KEEP_SIZE) {
                jobs_msg(o, "mode 0x%x: only 0 and KEEP_SIZE are supported", (unsigned) mode);
                return -EINVAL;
        }
        if (fstatfs(fd, &sfs) < 0)
                return -errno;
        if (sfs.f_type != HUGETLBFS_MAGIC || !S_ISREG(ret_st->st_mode)) {
                jobs_msg(o, "not a regular file on hugetlbfs");
                return -EINVAL;
        }
        if ((fl & O_ACCMODE) != O_RDWR) {
                jobs_msg(o, "the file must be open for reading and writing");
                return -EBADF;
        }

        uint64_t hpage = (uint64_t) sfs.f_bsize;
        if (hpage == 0 || (hpage & (hpage - 1)) != 0)
                return -EINVAL;
        if (len == 0) {
                jobs_msg(o, "length is zero");
                return -EINVAL;
        }
        if (offset % hpage != 0 || len % hpage != 0) {
                bool off = offset % hpage != 0;
                jobs_msg(o, "%s %llu is not a multiple of the %s huge page size",
                         off ? "offset" : "length", (unsigned long long) (off ? offset : len),
                         JOBS_SIZE_STR(hpage));
                return -EINVAL;
        }
        if (offset > INT64_MAX || len > INT64_MAX - offset) {
                jobs_msg(o, "offset + length is beyond the largest file size");
                return -EFBIG;
        }

        int node = o ? o->node : PAD_NODE_ANY;
        if (node != PAD_NODE_ANY) {
                char path[96];
                snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
                if (node < 0 || access(path, F_OK) < 0) {
                        jobs_msg(o, "no NUMA node %d", node);
                        return -ENXIO;
                }
        }
        *ret_hpage = hpage;
        return 0;
}

/* ---- The job -------------------------------------------------------------------------- */

static int fallocate_range(HugetlbRun *h, uint64_t start, uint64_t end) {
        while (fallocate(h->fd, FALLOC_FL_KEEP_SIZE, (off_t) start, (off_t) (end - start)) < 0) {
                if (errno == EINTR && !jobs_cancelled(h->cancel))
                        continue;
                return errno == EINTR ? -ECANCELED : -errno;
        }
        return 0;
}

/* Without the probe: one page at a time, and a page whose allocation raised st_blocks is
 * one this call allocated (present[] starts all 1 then). Only ever on one thread. */
static int fallocate_pages(HugetlbRun *h, uint64_t start, uint64_t end) {
        struct stat before, after;

        for (uint64_t p = start; p < end; p += h->hpage) {
                if (fstat(h->fd, &before) < 0)
                        return -errno;
                int r = fallocate_range(h, p, p + h->hpage);
                if (fstat(h->fd, &after) < 0)
                        return -errno;
                if (after.st_blocks > before.st_blocks)
                        h->present[(p - h->offset) / h->hpage] = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Allocate [start, end) beyond the mapping with the kernel (single-threaded per call), on the
 * run's node when one is given: the kernel takes the node from the calling thread's policy. */
static int fallocate_beyond(HugetlbRun *h, uint64_t start, uint64_t end) {
        unsigned long old_mask[16] = {}, mask[16] = {};
        int old_mode = MPOL_DEFAULT, r = 0;
        bool policy = h->node >= 0 && (size_t) h->node < sizeof(mask) * 8;

        if (policy) {
                if (get_mempolicy(&old_mode, old_mask, sizeof(old_mask) * 8, NULL, 0) < 0)
                        return -errno;
                mask[h->node / 64] = 1UL << (h->node % 64);
                if (set_mempolicy(MPOL_BIND, mask, sizeof(mask) * 8) < 0)
                        return -errno;
        }
        if (h->serial)
                r = fallocate_pages(h, start, end);
        else
                r = fallocate_range(h, start, end);
        if (policy)
                (void) set_mempolicy(old_mode, old_mode == MPOL_DEFAULT ? NULL : old_mask,
                                     sizeof(old_mask) * 8);
        return r;
}

static int hugetlb_slice(HugetlbRun *h, uint64_t start, uint64_t end) {
        uint64_t mid = MIN(MAX(start, h->map_end), end);
        int r;

        if (mid > start) {
                r = jobs_populate_write(h->map + (start - h->offset), mid - start, h->hpage, h->cancel);
                if (r == -ENOMEM || r == -EFAULT)
                        return -ENOSPC;
                if (r < 0)
                        return r;
        }
        if (end > mid)
                return fallocate_beyond(h, mid, end);
        return 0;
}

/* A chunk, in slices of HUGETLB_SLICE so that a cancel takes effect within one slice. */
static int hugetlb_thread_fn(uint64_t start, uint64_t end, void *arg) {
        HugetlbRun *h = arg;
        uint64_t slice = MAX(HUGETLB_SLICE / h->hpage, 1) * h->hpage;

        for (uint64_t s = start; s < end; s += slice) {
                if (jobs_cancelled(h->cancel))
                        return -ECANCELED;
                int r = hugetlb_slice(h, s, MIN(s + slice, end));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int hugetlb_map(HugetlbRun *h) {
        uint64_t len = h->map_end - h->offset;

        /* MAP_NORESERVE: a reservation made at mmap time for a hole that is never faulted
         * (cancel, failure part-way) would stay on the inode after the undo, since punching
         * a hole releases only the reservations of pages it frees. Without it the faults take
         * free pages (or reservations already there) exactly like fallocate(2) does. */
        h->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, h->fd,
                      (off_t) h->offset);
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

static void hugetlb_unmap(HugetlbRun *h) {
        if (h->map)
                munmap(h->map, h->map_end - h->offset);
        h->map = NULL;
}

/* Punch out every run of pages that were holes before; restore the size. */
static void hugetlb_undo(HugetlbRun *h) {
        uint64_t n = (h->end - h->offset) / h->hpage;

        hugetlb_unmap(h);
        for (uint64_t i = 0; i < n;) {
                if (h->present[i]) {
                        i++;
                        continue;
                }
                uint64_t j = i;
                while (j < n && !h->present[j])
                        j++;
                (void) fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                 (off_t) (h->offset + i * h->hpage), (off_t) ((j - i) * h->hpage));
                i = j;
        }
        if (h->grows_by_map)
                (void) ftruncate(h->fd, (off_t) h->old_size);
}

/* Decide what goes through the mapping. Mode 0 may grow the file through the mapping only
 * when no page lies beyond the old EOF (shrinking back on undo would free it). */
static int hugetlb_plan(HugetlbRun *h, uint64_t blocks_pages) {
        uint64_t eof = h->old_size;

        if (h->serial) {
                h->map_end = h->offset;
                return 0;
        }

        if (h->mode == 0 && h->end > eof) {
                uint64_t below = 0;
                if (blocks_pages > 0 && eof > 0) {
                        int r = hugetlb_probe(h->fd, h->hpage, 0, eof, NULL, &below);
                        if (r < 0)
                                return r;
                }
                h->grows_by_map = below == blocks_pages;
        }
        h->map_end = h->grows_by_map ? h->end : MIN(h->end, MAX(eof, h->offset));
        return 0;
}

static int hugetlb_run(pad_client *c, HugetlbRun *h, const pad_io_opts *o, pad_job_stats *ret_stats) {
        uint64_t len = h->end - h->offset;
        pad_job job;
        int r;

        if (h->map_end > h->offset) {
                r = hugetlb_map(h);
                if (r < 0) {
                        jobs_msg(o, "mapping the file failed: %s", strerror(-r));
                        hugetlb_undo(h);
                        return r;
                }
        }

        jobs_job_init(&job, o);
        job.thread_fn = hugetlb_thread_fn;
        job.arg = h;
        job.start = h->offset;
        job.size = len;
        job.align = h->hpage;
        job.min_chunk = MAX(h->hpage, HUGETLB_MIN_CHUNK);
        if (h->serial)
                job.max_threads = 1;
        r = pad_job_run(c, &job, ret_stats);
        if (r == 0 && h->mode == 0 && !h->grows_by_map && h->end > h->old_size &&
            ftruncate(h->fd, (off_t) h->end) < 0)
                r = -errno;
        if (r < 0) {
                if (r == -ENOSPC)
                        jobs_msg(o, "huge page allocation failed part-way (pool, cgroup or node limit); undone");
                else if (r == -ECANCELED)
                        jobs_msg(o, "cancelled; undone");
                else
                        jobs_msg(o, "allocation failed: %s; undone", strerror(-r));
                hugetlb_undo(h);
                return r;
        }
        hugetlb_unmap(h);
        return 0;
}

_public_ int pad_hugetlb_fallocate(pad_client *c, int fd, int mode, uint64_t offset, uint64_t len,
                                   const pad_io_opts *opts, pad_job_stats *ret_stats) {
        struct stat st;
        uint64_t hpage = 0;
        int r;

        jobs_msg_clear(opts);
        r = hugetlb_check(fd, mode, offset, len, opts, &st, &hpage);
        if (r < 0)
                return r;

        uint64_t npages = len / hpage;
        _cleanup_free_ uint8_t *present = calloc(npages, 1);
        if (!present)
                return -ENOMEM;

        HugetlbRun h = {
                .fd = fd,
                .mode = mode,
                .node = opts ? opts->node : PAD_NODE_ANY,
                .hpage = hpage,
                .offset = offset,
                .end = offset + len,
                .old_size = DIV_ROUND_UP((uint64_t) st.st_size, hpage) * hpage,
                .present = present,
                .cancel = opts ? opts->cancel : NULL,
        };
        uint64_t blocks_pages = (uint64_t) st.st_blocks * 512 / hpage;

        if (blocks_pages > 0) {
                r = hugetlb_probe(fd, hpage, offset, h.end, present, &h.n_present);
                if (r == -ENOSYS || r == -EPERM || r == -EACCES || r == -EINVAL || r == -EOPNOTSUPP) {
                        /* No userfaultfd here (seccomp, old kernel): the kernel's path, one
                         * page at a time, so that the undo still knows its own pages. */
                        h.serial = true;
                        memset(present, 1, npages);
                        h.n_present = MIN(blocks_pages, npages);
                } else if (r < 0) {
                        jobs_msg(opts, "cannot tell which huge pages the file has: %s", strerror(-r));
                        return r;
                }
        }
        uint64_t need = npages - h.n_present, avail = hugetlb_pool_available(hpage, h.node);
        if (need > avail) {
                jobs_msg(opts, "not enough huge pages: need %llu, %llu free",
                         (unsigned long long) need, (unsigned long long) avail);
                return -ENOSPC;
        }
        if (need == 0 && !h.serial) {
                if (mode == 0 && h.end > (uint64_t) st.st_size && ftruncate(fd, (off_t) h.end) < 0)
                        return -errno;
                if (opts && opts->progress_fn)
                        opts->progress_fn(len, len, opts->progress_arg);
                if (ret_stats)
                        *ret_stats = (pad_job_stats) { .threads = 1 };
                return 0;
        }
        r = hugetlb_plan(&h, blocks_pages);
        if (r < 0) {
                jobs_msg(opts, "cannot tell which huge pages the file has: %s", strerror(-r));
                return r;
        }
        return hugetlb_run(c, &h, opts, ret_stats);
}
