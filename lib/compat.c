/* compat.c: the functions of the first ABI (PADCLIENT_0) whose pad_job_stats was shorter:
 * programs built against it get a result of the size they allocated, the rest cut off.
 * Programs built now bind to the PADCLIENT_0.2 versions, which fill the whole struct. Only
 * in the shared library. */
#include "internal.h"

#include <stddef.h>
#include <string.h>

/* The size of pad_job_stats before lease_lost and raise_failed were added. */
#define JOB_STATS_V0_SIZE offsetof(pad_job_stats, lease_lost)

/* An .symver directive rather than gcc's symver attribute, which clang does not know. */
#define _compat_(name, impl, version) \
        __asm__(".symver " #impl ", " #name "@" version); \
        __attribute__((visibility("default")))

static void stats_copy_v0(pad_job_stats *ret, const pad_job_stats *full) {
        if (ret)
                memcpy(ret, full, JOB_STATS_V0_SIZE);
}

_compat_(pad_job_run, compat_job_run_v0, "PADCLIENT_0")
int compat_job_run_v0(pad_client *c, const pad_job *job, pad_job_stats *ret_stats);
int compat_job_run_v0(pad_client *c, const pad_job *job, pad_job_stats *ret_stats) {
        pad_job_stats st = {};
        int r = pad_job_run(c, job, ret_stats ? &st : NULL);

        stats_copy_v0(ret_stats, &st);
        return r;
}

_compat_(pad_hugetlb_fallocate, compat_hugetlb_fallocate_v0, "PADCLIENT_0")
int compat_hugetlb_fallocate_v0(pad_client *c, int fd, int mode, uint64_t offset, uint64_t len,
                                const pad_io_opts *opts, pad_job_stats *ret_stats);
int compat_hugetlb_fallocate_v0(pad_client *c, int fd, int mode, uint64_t offset, uint64_t len,
                                const pad_io_opts *opts, pad_job_stats *ret_stats) {
        pad_job_stats st = {};
        int r = pad_hugetlb_fallocate(c, fd, mode, offset, len, opts, ret_stats ? &st : NULL);

        stats_copy_v0(ret_stats, &st);
        return r;
}

_compat_(pad_pmem_init, compat_pmem_init_v0, "PADCLIENT_0")
int compat_pmem_init_v0(pad_client *c, int fd, uint64_t offset, uint64_t len, int pattern,
                        const pad_io_opts *opts, pad_pmem_path *ret_path, pad_job_stats *ret_stats);
int compat_pmem_init_v0(pad_client *c, int fd, uint64_t offset, uint64_t len, int pattern,
                        const pad_io_opts *opts, pad_pmem_path *ret_path, pad_job_stats *ret_stats) {
        pad_job_stats st = {};
        int r = pad_pmem_init(c, fd, offset, len, pattern, opts, ret_path, ret_stats ? &st : NULL);

        stats_copy_v0(ret_stats, &st);
        return r;
}

_compat_(pad_vfio_dma_map, compat_vfio_dma_map_v0, "PADCLIENT_0")
int compat_vfio_dma_map_v0(pad_client *c, const pad_vfio_target *t, void *vaddr, uint64_t iova,
                           uint64_t size, const pad_io_opts *opts, pad_job_stats *ret_stats);
int compat_vfio_dma_map_v0(pad_client *c, const pad_vfio_target *t, void *vaddr, uint64_t iova,
                           uint64_t size, const pad_io_opts *opts, pad_job_stats *ret_stats) {
        pad_job_stats st = {};
        int r = pad_vfio_dma_map(c, t, vaddr, iova, size, opts, ret_stats ? &st : NULL);

        stats_copy_v0(ret_stats, &st);
        return r;
}
