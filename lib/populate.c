/* populate.c: pad_mem_populate(), faulting in an existing mapping of the caller in parallel,
 * the way QEMU preallocates guest memory: every thread runs MADV_POPULATE_WRITE (or _READ)
 * on its own chunks, touching a byte per page on kernels without the advice. This file owns
 * the checks of the call (the arguments as madvise(2) checks them and, for calls that go
 * parallel, the mappings under the range from /proc/self/maps: holes and permissions up
 * front), the chunk alignment (the largest page size under the range, at least 2 MiB so no
 * transparent huge page is split between threads; a hugetlb page size from KernelPageSize
 * of /proc/self/smaps, read only when a mapping under the range has a name), the node the
 * helpers are asked near (opts->node, else the range's memory policy when it binds one
 * node), and the progress in bytes of the caller's range. */
#include "internal.h"

#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker-contract.h"
#include "jobs-internal.h"
#include "util.h"

/* linux/mempolicy.h, which numaif.h does not go with: the flags get_mempolicy() may add. */
#ifndef MPOL_MODE_FLAGS
#define MPOL_MODE_FLAGS ((1 << 15) | (1 << 14) | (1 << 13))
#endif

#define POPULATE_THP_SIZE (2 * JOBS_MIB)
#define POPULATE_NODES_MAX 1024

/* Two chunks of 32 MiB at least before a helper is worth its start and the lease's round
 * trip; a look at cancel every 64 MiB (some 20 ms of 4 KiB pages on one CPU). */
JobsTuning populate_tuning = {
        .parallel_min = 64 * JOBS_MIB,
        .min_chunk = 32 * JOBS_MIB,
        .slice = 64 * JOBS_MIB,
};

typedef struct PopulateRun {
        uint64_t start;                 /* the caller's addr; chunks start below it at most once */
        uint64_t base;                  /* start rounded down to align: the job's start */
        uint64_t slice;
        uint64_t pagesize;
        int advice;
        pad_cancel *cancel;
        pad_progress_fn progress_fn;
        void *progress_arg;
} PopulateRun;

/* What the mappings under [start, end) say, from /proc/self/maps or /proc/self/smaps. */
typedef struct PopulateScan {
        uint64_t covered;               /* [start, covered) is mapped without a hole */
        bool hole;                      /* nothing is mapped at covered */
        uint64_t bad_vma;               /* start of a mapping without the needed permission, or 0 */
        uint64_t pagesize;              /* the largest KernelPageSize seen (smaps), else 0 */
        bool named;                     /* a mapping has a name: it may be hugetlb */
} PopulateScan;

/* ---- The mappings ------------------------------------------------------------------------ */

/* One header line "start-end perms offset dev inode [name]" of maps or smaps; false for any
 * other line. */
static bool scan_header(const char *line, uint64_t *ret_s, uint64_t *ret_e, char perms[5], bool *ret_named) {
        int n = 0;

        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %*s %*s %*s %n", ret_s, ret_e, perms, &n) != 3 || n == 0)
                return false;
        *ret_named = line[n] != '\0' && line[n] != '\n';
        return true;
}

static void scan_vma(PopulateScan *sc, uint64_t s, uint64_t e, const char *perms, bool named, int advice) {
        if (s > sc->covered) {
                sc->hole = true;
                return;
        }
        if (sc->bad_vma == 0 && perms[advice == MADV_POPULATE_WRITE ? 1 : 0] == '-')
                sc->bad_vma = sc->covered;
        sc->covered = e;
        sc->named = sc->named || named;
}

/* Read path (maps or smaps) for the mappings under [start, end), up to the first hole. */
static int scan_file(const char *path, uint64_t start, uint64_t end, int advice, PopulateScan *ret) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        uint64_t s, e, kb;
        char perms[5];
        bool named, inside = false;
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        *ret = (PopulateScan) { .covered = start };
        while (!ret->hole && getline(&line, &n, f) > 0) {
                if (scan_header(line, &s, &e, perms, &named)) {
                        if (s >= end)
                                break;
                        inside = e > start;
                        if (inside)
                                scan_vma(ret, s, e, perms, named, advice);
                } else if (inside && sscanf(line, "KernelPageSize: %" SCNu64 " kB", &kb) == 1)
                        ret->pagesize = MAX(ret->pagesize, kb * 1024);
        }
        fclose(f);
        return 0;
}

/* Check [start, end) as the kernel would fail it (holes, permissions) and find the chunk
 * alignment. */
static int populate_layout(uint64_t start, uint64_t end, int advice, const pad_io_opts *o,
                           uint64_t *ret_align) {
        PopulateScan sc, sizes;
        int r;

        r = scan_file("/proc/self/maps", start, end, advice, &sc);
        if (r < 0) {
                jobs_msg(o, "cannot read /proc/self/maps: %s", strerror(-r));
                return r;
        }
        if (sc.covered < end) {
                jobs_msg(o, "nothing is mapped at 0x%" PRIx64, sc.covered);
                return -ENOMEM;
        }
        if (sc.bad_vma != 0) {
                jobs_msg(o, "the mapping at 0x%" PRIx64 " is not %s", sc.bad_vma,
                         advice == MADV_POPULATE_WRITE ? "writable" : "readable");
                return -EINVAL;
        }
        *ret_align = POPULATE_THP_SIZE;
        if (sc.named && scan_file("/proc/self/smaps", start, end, advice, &sizes) == 0)
                *ret_align = MAX(*ret_align, sizes.pagesize);
        return 0;
}

int populate_policy_node(const void *addr) {
        unsigned long mask[POPULATE_NODES_MAX / (8 * sizeof(unsigned long))] = {};
        int mode, node = PAD_NODE_ANY;

        if (get_mempolicy(&mode, mask, POPULATE_NODES_MAX, (void *) addr, MPOL_F_ADDR) < 0)
                return PAD_NODE_ANY;
        mode &= ~MPOL_MODE_FLAGS;
        if (mode != MPOL_BIND && mode != MPOL_PREFERRED)
                return PAD_NODE_ANY;
        for (int i = 0; i < POPULATE_NODES_MAX; i++) {
                if (!(mask[i / (8 * sizeof(unsigned long))] & (1UL << (i % (8 * sizeof(unsigned long))))))
                        continue;
                if (node != PAD_NODE_ANY)
                        return PAD_NODE_ANY;
                node = i;
        }
        return node;
}

/* ---- The job ----------------------------------------------------------------------------- */

/* A chunk of [base, end): the caller's part of it, a slice at a time. */
static int populate_chunk(uint64_t start, uint64_t end, void *arg) {
        PopulateRun *p = arg;

        for (uint64_t s = MAX(start, p->start); s < end;) {
                uint64_t e = MIN(end, (s - p->base) / p->slice * p->slice + p->base + p->slice);

                if (jobs_cancelled(p->cancel))
                        return -ECANCELED;
                int r = jobs_populate((uint8_t *) (uintptr_t) s, e - s, p->pagesize, p->advice, p->cancel);
                if (r < 0)
                        return r;
                s = e;
        }
        return 0;
}

/* The job counts [base, end); the caller hears of [start, end). */
static void populate_progress(uint64_t done, uint64_t total, void *arg) {
        PopulateRun *p = arg;
        uint64_t head = p->start - p->base;

        p->progress_fn(done > head ? done - head : 0, total - head, p->progress_arg);
}

static void populate_fail_msg(const pad_io_opts *o, int r, int advice) {
        if (r == -ECANCELED)
                jobs_msg(o, "cancelled; the pages populated so far stay");
        else if (r == -EFAULT)
                jobs_msg(o, "a page could not be had (no free huge page, or beyond the end of the file)");
        else if (r == -EINVAL)
                jobs_msg(o, "the mapping cannot be populated for %s (PROT_NONE, %s, or device memory)",
                         advice == MADV_POPULATE_WRITE ? "writing" : "reading",
                         advice == MADV_POPULATE_WRITE ? "read-only" : "not readable");
        else if (r == -ENOMEM)
                jobs_msg(o, "part of the range is not mapped");
        else
                jobs_msg(o, "populating failed: %s", strerror(-r));
}

static int populate_check(uintptr_t addr, uint64_t *len, unsigned flags, uint64_t pagesize,
                          const pad_io_opts *o) {
        if (flags & ~(unsigned) PAD_POPULATE_READ) {
                jobs_msg(o, "unknown flags 0x%x", flags & ~(unsigned) PAD_POPULATE_READ);
                return -EINVAL;
        }
        if (o && (o->node < PAD_NODE_ANY || (o->tag && strlen(o->tag) > BROKER_TAG_MAX))) {
                jobs_msg(o, "node %d is not a node, or the tag is longer than %u bytes", o->node, BROKER_TAG_MAX);
                return -EINVAL;
        }
        if (addr % pagesize != 0) {
                jobs_msg(o, "address 0x%" PRIxPTR " is not a multiple of the page size (%s)", addr,
                         JOBS_SIZE_STR(pagesize));
                return -EINVAL;
        }
        if (*len > UINTPTR_MAX - addr - (pagesize - 1)) {
                jobs_msg(o, "the range 0x%" PRIxPTR "+%" PRIu64 " wraps around", addr, *len);
                return -EINVAL;
        }
        *len = DIV_ROUND_UP(*len, pagesize) * pagesize;
        return 0;
}

_public_ int pad_mem_populate(pad_client *c, void *addr, uint64_t len, unsigned flags,
                              const pad_io_opts *opts, pad_job_stats *ret_stats) {
        uint64_t pagesize = (uint64_t) sysconf(_SC_PAGESIZE), align;
        pad_job job;
        bool parallel;
        int r;

        jobs_msg_clear(opts);
        if (ret_stats)
                *ret_stats = (pad_job_stats) {};
        r = populate_check((uintptr_t) addr, &len, flags, pagesize, opts);
        if (r < 0)
                return r;

        PopulateRun p = {
                .start = (uintptr_t) addr,
                .pagesize = pagesize,
                .advice = flags & PAD_POPULATE_READ ? MADV_POPULATE_READ : MADV_POPULATE_WRITE,
                .cancel = opts ? opts->cancel : NULL,
                .progress_fn = opts ? opts->progress_fn : NULL,
                .progress_arg = opts ? opts->progress_arg : NULL,
        };
        jobs_job_init(&job, opts);
        parallel = len >= populate_tuning.parallel_min && job.max_threads > 1;
        /* Touching pages by hand (a kernel without the advice: a zero-length call fails)
         * must not meet a hole or a page it may not touch: a signal, not an error. */
        if (parallel || madvise(addr, 0, p.advice) < 0) {
                r = populate_layout(p.start, p.start + len, p.advice, opts, &align);
                if (r < 0)
                        return r;
        }
        if (parallel) {
                job.min_chunk = DIV_ROUND_UP(populate_tuning.min_chunk, align) * align;
                if (job.node == PAD_NODE_ANY)
                        job.node = populate_policy_node(addr);
        } else {
                /* One work: pad_job_run calls populate_chunk once, on this thread. */
                align = pagesize;
                job.min_chunk = MAX(len, 1);
        }
        p.base = p.start / align * align;
        p.slice = DIV_ROUND_UP(populate_tuning.slice, align) * align;
        job.thread_fn = populate_chunk;
        job.arg = &p;
        job.start = p.base;
        job.size = p.start + len - p.base;
        job.align = align;
        if (p.progress_fn) {
                job.progress_fn = populate_progress;
                job.progress_arg = &p;
        }
        r = pad_job_run(c, &job, ret_stats);
        if (r < 0)
                populate_fail_msg(opts, r, p.advice);
        return r;
}
