/* pmem.c: pad_pmem_init(), filling a range of persistent memory (a device-DAX character
 * device, or a file on a DAX file system) or of any ordinary file with a byte pattern, in
 * parallel. This file owns the choice of the durability path (device-DAX: a shared mapping
 * of the device; a file: MAP_SHARED_VALIDATE|MAP_SYNC where the file system supports it,
 * else MAP_SHARED and msync(MS_SYNC) per chunk), the non-temporal fill (SSE2 streaming stores
 * on x86-64 for the 64-byte aligned middle, memset plus a cache-line flush for the edges,
 * one sfence per chunk), and the sysfs reads of a DAX device's size and alignment. Chunk
 * edges are offset + k * 2 MiB; a page shared by two chunks is synced by each writer after
 * its own stores, so every byte is durable when its chunk returns. */
#include "internal.h"

#include <fcntl.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "jobs-internal.h"
#include "util.h"

#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif

#define PMEM_ALIGN (2 * JOBS_MIB)
#define PMEM_CACHELINE 64

typedef struct PmemRun {
        uint8_t *base;                  /* mapping; base + (o - map_offset) is file offset o */
        uint64_t map_offset;
        uint64_t map_len;
        uint64_t pagesize;
        uint8_t pattern;
        pad_pmem_path path;
} PmemRun;

_public_ const char *pad_pmem_path_to_string(pad_pmem_path p) {
        switch (p) {
        case PAD_PMEM_MAP_SYNC:
                return "map-sync";
        case PAD_PMEM_DEVDAX:
                return "devdax";
        case PAD_PMEM_MSYNC:
                return "msync";
        }
        return NULL;
}

/* ---- The fill --------------------------------------------------------------------------- */

/* Write back the cache lines of [p, p + len) written with ordinary stores. */
static void pmem_flush_lines(uint8_t *p, size_t len) {
#if defined(__x86_64__)
        uintptr_t a = (uintptr_t) p & ~(uintptr_t) (PMEM_CACHELINE - 1);
        for (; a < (uintptr_t) p + len; a += PMEM_CACHELINE)
                _mm_clflush((void *) a);
#else
        (void) p;
        (void) len;
#endif
}

/* memset for the unaligned edges, streaming stores for the 64-byte aligned middle. */
static void pmem_fill(uint8_t *p, size_t len, uint8_t pattern, bool flush_edges) {
#if defined(__x86_64__)
        uint8_t *a = (uint8_t *) (((uintptr_t) p + PMEM_CACHELINE - 1) & ~(uintptr_t) (PMEM_CACHELINE - 1));
        uint8_t *b = (uint8_t *) (((uintptr_t) p + len) & ~(uintptr_t) (PMEM_CACHELINE - 1));

        if (a >= b) {
                memset(p, pattern, len);
                if (flush_edges)
                        pmem_flush_lines(p, len);
                return;
        }
        memset(p, pattern, (size_t) (a - p));
        memset(b, pattern, (size_t) (p + len - b));
        __m128i v = _mm_set1_epi8((char) pattern);
        for (__m128i *q = (__m128i *) a; q < (__m128i *) b; q += 4) {
                _mm_stream_si128(q, v);
                _mm_stream_si128(q + 1, v);
                _mm_stream_si128(q + 2, v);
                _mm_stream_si128(q + 3, v);
        }
        if (flush_edges) {
                pmem_flush_lines(p, (size_t) (a - p));
                pmem_flush_lines(b, (size_t) (p + len - b));
        }
        _mm_sfence();
#else
        memset(p, pattern, len);
        (void) flush_edges;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static int pmem_thread_fn(uint64_t start, uint64_t end, void *arg) {
        PmemRun *m = arg;
        uint8_t *p = m->base + (start - m->map_offset);

        pmem_fill(p, end - start, m->pattern, m->path != PAD_PMEM_MSYNC);
        if (m->path == PAD_PMEM_MSYNC) {
                uint8_t *a = (uint8_t *) ((uintptr_t) p & ~(uintptr_t) (m->pagesize - 1));
                if (msync(a, (size_t) (p + (end - start) - a), MS_SYNC) < 0)
                        return -errno;
        }
        return 0;
}

/* ---- Targets ------------------------------------------------------------------------------ */

/* For a character device: 1 and its size and alignment if it is device-DAX, 0 if not. */
static int pmem_devdax_info(const struct stat *st, uint64_t *ret_size, uint64_t *ret_align) {
        char path[128], link[PATH_MAX];
        unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);

        snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/subsystem", maj, min);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return 0;
        link[n] = '\0';
        if (!streq(basename(link), "dax"))
                return 0;

        char *e;
        char buf[64];
        snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/size", maj, min);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        *ret_size = strtoull(buf, &e, 10);

        *ret_align = PMEM_ALIGN;
        snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/align", maj, min);
        _cleanup_close_ int afd = open(path, O_RDONLY | O_CLOEXEC);
        if (afd >= 0 && (n = read(afd, buf, sizeof(buf) - 1)) > 0) {
                buf[n] = '\0';
                uint64_t a = strtoull(buf, &e, 10);
                if (a > 0 && (a & (a - 1)) == 0)
                        *ret_align = a;
        }
        return 1;
}

/* Map [map_offset, map_offset + map_len) and choose the durability path. */
static int pmem_map(PmemRun *m, int fd, bool devdax) {
        int prot = PROT_READ | PROT_WRITE;

        if (devdax) {
                m->base = mmap(NULL, m->map_len, prot, MAP_SHARED, fd, (off_t) m->map_offset);
                m->path = PAD_PMEM_DEVDAX;
        } else {
                m->base = mmap(NULL, m->map_len, prot, MAP_SHARED_VALIDATE | MAP_SYNC, fd,
                               (off_t) m->map_offset);
                m->path = PAD_PMEM_MAP_SYNC;
                if (m->base == MAP_FAILED && (errno == EOPNOTSUPP || errno == EINVAL)) {
                        m->base = mmap(NULL, m->map_len, prot, MAP_SHARED, fd, (off_t) m->map_offset);
                        m->path = PAD_PMEM_MSYNC;
                }
        }
        if (m->base == MAP_FAILED) {
                m->base = NULL;
                return -errno;
        }
        return 0;
}

/* The target's size and the alignment its mapping needs. */
static int pmem_target(int fd, const pad_io_opts *o, bool *ret_devdax, uint64_t *ret_size,
                       uint64_t *ret_align) {
        struct stat st;
        int fl;

        if (fd < 0 || fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0) {
                jobs_msg(o, "bad file descriptor %d", fd);
                return -EBADF;
        }
        if ((fl & O_ACCMODE) != O_RDWR) {
                jobs_msg(o, "the file must be open for reading and writing");
                return -EBADF;
        }
        *ret_devdax = false;
        *ret_align = (uint64_t) sysconf(_SC_PAGESIZE);
        if (S_ISREG(st.st_mode)) {
                *ret_size = (uint64_t) st.st_size;
                return 0;
        }
        if (S_ISCHR(st.st_mode)) {
                int r = pmem_devdax_info(&st, ret_size, ret_align);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_devdax = true;
                        return 0;
                }
        }
        jobs_msg(o, "neither a regular file nor a device-DAX device");
        return -ENODEV;
}

_public_ int pad_pmem_init(pad_client *c, int fd, uint64_t offset, uint64_t len, int pattern,
                           const pad_io_opts *opts, pad_pmem_path *ret_path, pad_job_stats *ret_stats) {
        uint64_t size, align;
        bool devdax;
        pad_job job;
        int r;

        jobs_msg_clear(opts);
        if (pattern < 0 || pattern > 255) {
                jobs_msg(opts, "pattern %d is not a byte (0-255)", pattern);
                return -EINVAL;
        }
        r = pmem_target(fd, opts, &devdax, &size, &align);
        if (r < 0)
                return r;
        if (offset > size || (len == 0 && offset == size)) {
                jobs_msg(opts, "offset %llu is at or beyond the end (%llu bytes)",
                         (unsigned long long) offset, (unsigned long long) size);
                return -EINVAL;
        }
        if (len == 0)
                len = size - offset;
        if (len > size - offset) {
                jobs_msg(opts, "range %llu+%llu is beyond the end (%llu bytes)", (unsigned long long) offset,
                         (unsigned long long) len, (unsigned long long) size);
                return -EINVAL;
        }

        PmemRun m = {
                .pagesize = (uint64_t) sysconf(_SC_PAGESIZE),
                .pattern = (uint8_t) pattern,
                .map_offset = offset / align * align,
        };
        m.map_len = DIV_ROUND_UP(offset + len, align) * align - m.map_offset;
        if (devdax && m.map_offset + m.map_len > size) {
                jobs_msg(opts, "range end is not within the device once aligned to %s",
                         JOBS_SIZE_STR(align));
                return -EINVAL;
        }
        /* Allocate the blocks of a file up front: a store into a hole that cannot get a
         * block would be a SIGBUS, this is an error. */
        if (!devdax && fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t) offset, (off_t) len) < 0 &&
            errno != EOPNOTSUPP) {
                r = -errno;
                jobs_msg(opts, "allocating the file's blocks failed: %s", strerror(-r));
                return r;
        }
        r = pmem_map(&m, fd, devdax);
        if (r < 0) {
                jobs_msg(opts, "mapping failed: %s", strerror(-r));
                return r;
        }

        jobs_job_init(&job, opts);
        job.thread_fn = pmem_thread_fn;
        job.arg = &m;
        job.start = offset;
        job.size = len;
        job.align = PMEM_ALIGN;
        job.min_chunk = PMEM_ALIGN;
        r = pad_job_run(c, &job, ret_stats);
        munmap(m.base, m.map_len);
        if (r < 0) {
                if (r == -ECANCELED)
                        jobs_msg(opts, "cancelled; the range is partly filled");
                else
                        jobs_msg(opts, "fill failed: %s", strerror(-r));
                return r;
        }
        if (ret_path)
                *ret_path = m.path;
        return 0;
}
