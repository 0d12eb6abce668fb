/* jobs-internal.h: helpers shared by the memory jobs of libpadclient (hugetlb.c, pmem.c,
 * vfio.c, populate.c): the failure message written into pad_io_opts.ret_msg, the job
 * skeleton filled from pad_io_opts, human-readable sizes for messages, and the prefault of
 * one mapped range (MADV_POPULATE_WRITE or _READ, touching pages on kernels without them),
 * which each job runs per chunk. Static inline, but for hugetlb_probe() and hugetlb_tuning
 * of hugetlb.c and populate_tuning and populate_policy_node() of populate.c, declared at
 * the end; include it after internal.h. Nothing here logs. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "internal.h"
#include "padclient.h"
#include "util.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define JOBS_MIB (UINT64_C(1) << 20)
#define JOBS_GIB (UINT64_C(1) << 30)

/* Write a one-line reason into opts->ret_msg (when the caller gave a buffer). */
_printf_(2, 3) static inline void jobs_msg(const pad_io_opts *o, const char *fmt, ...) {
        va_list ap;

        if (!o || !o->ret_msg || o->ret_msg_len == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(o->ret_msg, o->ret_msg_len, fmt, ap);
        va_end(ap);
}

static inline void jobs_msg_clear(const pad_io_opts *o) {
        if (o && o->ret_msg && o->ret_msg_len > 0)
                o->ret_msg[0] = '\0';
}

/* "2 MiB", "1 GiB", "4 KiB" or "12345 bytes", into buf. */
static inline const char *jobs_format_size(uint64_t n, char *buf, size_t len) {
        if (n >= JOBS_GIB && n % JOBS_GIB == 0)
                snprintf(buf, len, "%llu GiB", (unsigned long long) (n / JOBS_GIB));
        else if (n >= JOBS_MIB && n % JOBS_MIB == 0)
                snprintf(buf, len, "%llu MiB", (unsigned long long) (n / JOBS_MIB));
        else if (n >= 1024 && n % 1024 == 0)
                snprintf(buf, len, "%llu KiB", (unsigned long long) (n / 1024));
        else
                snprintf(buf, len, "%llu bytes", (unsigned long long) n);
        return buf;
}
#define JOBS_SIZE_STR(n) jobs_format_size((n), (char[32]) {}, 32)

/* The pad_job fields every memory job takes from its options. */
static inline void jobs_job_init(pad_job *j, const pad_io_opts *o) {
        *j = (pad_job) {
                .node = o ? o->node : PAD_NODE_ANY,
                .max_threads = o && o->max_threads > 0 ? o->max_threads : cpuset_cpus_allowed(),
                .flags = o ? o->flags : 0,
                .progress_fn = o ? o->progress_fn : NULL,
                .progress_arg = o ? o->progress_arg : NULL,
                .cancel = o ? o->cancel : NULL,
                .tag = o ? o->tag : NULL,
        };
}

static inline bool jobs_cancelled(const pad_cancel *c) {
        return c && __atomic_load_n(&c->requested, __ATOMIC_RELAXED);
}

/* Touch one byte per page of [p, p + len), writing back what was read. For kernels without
 * MADV_POPULATE_WRITE (before 5.14): a failed allocation there is a SIGBUS, not an error. */
static inline void jobs_touch_pages(uint8_t *p, uint64_t len, uint64_t pagesize) {
        for (uint64_t i = 0; i < len; i += pagesize) {
                volatile uint8_t *b = p + i;
                __atomic_fetch_add(b, 0, __ATOMIC_RELAXED);
        }
}

/* Read one byte per page of [p, p + len): MADV_POPULATE_READ by hand, for read-only mappings. */
static inline void jobs_read_pages(const uint8_t *p, uint64_t len, uint64_t pagesize) {
        for (uint64_t i = 0; i < len; i += pagesize)
                (void) *(const volatile uint8_t *) (p + i);
}

/* Fault in [p, p + len) (p page-aligned) with advice MADV_POPULATE_WRITE or
 * MADV_POPULATE_READ. A signal interrupting the kernel restarts the range (populated pages
 * are kept) unless cancel was requested. Returns 0, -ECANCELED, or the errno of madvise:
 * -ENOMEM, -EFAULT (the pages could not be had), -EINVAL (a mapping that cannot be
 * populated: PROT_NONE, read-only for writing, VM_PFNMAP). Pages are touched by hand only
 * when the kernel does not know the advice at all (a zero length call tells: it is accepted
 * by kernels that know the advice). */
static inline int jobs_populate(uint8_t *p, uint64_t len, uint64_t pagesize, int advice,
                                const pad_cancel *cancel) {
        for (;;) {
                if (madvise(p, len, advice) == 0)
                        return 0;
                if (errno == EINTR || errno == EAGAIN) {
                        if (jobs_cancelled(cancel))
                                return -ECANCELED;
                        continue;
                }
                if (errno == EINVAL) {
                        if (madvise(p, 0, advice) == 0)
                                return -EINVAL;
                        if (advice == MADV_POPULATE_WRITE)
                                jobs_touch_pages(p, len, pagesize);
                        else
                                jobs_read_pages(p, len, pagesize);
                        return 0;
                }
                return -errno;
        }
}

static inline int jobs_populate_write(uint8_t *p, uint64_t len, uint64_t pagesize,
                                      const pad_cancel *cancel) {
        return jobs_populate(p, len, pagesize, MADV_POPULATE_WRITE, cancel);
}

/* hugetlb.c: present[i] = 1 if huge page i of [from, to) exists in the hugetlbfs file fd
 * (also beyond its EOF), found without allocating or reserving a page; ret_count gets how
 * many. present and ret_count may be NULL. Needs userfaultfd (UFFD_USER_MODE_ONLY suffices)
 * and an fd open for reading (a write-sealed memfd will do). */
int hugetlb_probe(int fd, uint64_t hpage, uint64_t from, uint64_t to, uint8_t *present,
                      uint64_t *ret_count);

/* Where a memory job turns parallel (bytes of the call), the least a helper's chunk holds,
 * and the most a thread takes at a time (its slice; rounded to the job's page size). Set
 * only by tests, before any call, e.g. to reach the parallel path with a small pool. */
typedef struct JobsTuning {
        uint64_t parallel_min;
        uint64_t min_chunk;
        uint64_t slice;
} JobsTuning;
/* hugetlb.c: a slice is what a thread takes from the shared list; populate.c: the most one
 * madvise covers between looks at cancel. */
extern JobsTuning hugetlb_tuning, populate_tuning;

/* populate.c: the node the memory policy of the page at addr binds it to (MPOL_BIND or
 * MPOL_PREFERRED with a single node), else PAD_NODE_ANY. */
int populate_policy_node(const void *addr);
