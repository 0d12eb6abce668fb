/* vfio.c: pad_vfio_dma_map() and pad_vfio_dma_unmap(), mapping process memory for device
 * DMA with the pinning done in parallel. A type1 container pins under one lock per container
 * (concurrent VFIO_IOMMU_MAP_DMA calls serialise), and most of pinning is faulting and zeroing
 * pages: so the range is prefaulted in parallel (MADV_POPULATE_WRITE per chunk), then mapped
 * with one VFIO_IOMMU_MAP_DMA, which the kernel undoes by itself when it fails. iommufd pins
 * disjoint IOMMU_IOAS_MAP calls concurrently: the chunks are mapped in parallel at fixed IOVAs
 * and, on failure, every chunk that succeeded is unmapped. Debian 12's headers have no
 * linux/iommufd.h; the few structures used are declared here from the kernel's ABI. */
#include "internal.h"

#include <fcntl.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "jobs-internal.h"
#include "util.h"

/* ---- iommufd ABI (include/uapi/linux/iommufd.h, Linux 6.2) ------------------------------- */

#define PAD_IOMMUFD_TYPE ';'
#define PAD_IOMMU_IOAS_IOVA_RANGES _IO(PAD_IOMMUFD_TYPE, 0x84)
#define PAD_IOMMU_IOAS_MAP _IO(PAD_IOMMUFD_TYPE, 0x85)
#define PAD_IOMMU_IOAS_UNMAP _IO(PAD_IOMMUFD_TYPE, 0x86)

enum {
        PAD_IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
        PAD_IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
        PAD_IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

struct pad_iommu_ioas_iova_ranges {
        uint32_t size;
        uint32_t ioas_id;
        uint32_t num_iovas;
        uint32_t reserved;
        uint64_t allowed_iovas __attribute__((aligned(8)));
        uint64_t out_iova_alignment __attribute__((aligned(8)));
};

struct pad_iommu_ioas_map {
        uint32_t size;
        uint32_t flags;
        uint32_t ioas_id;
        uint32_t reserved;
        uint64_t user_va __attribute__((aligned(8)));
        uint64_t length __attribute__((aligned(8)));
        uint64_t iova __attribute__((aligned(8)));
};

struct pad_iommu_ioas_unmap {
        uint32_t size;
        uint32_t ioas_id;
        uint64_t iova __attribute__((aligned(8)));
        uint64_t length __attribute__((aligned(8)));
};

/* iommufd chunks: at least this long (one IOAS area each), edges 2 MiB apart so large IOMMU
 * pages stay possible. */
#define VFIO_CHUNK_ALIGN (2 * JOBS_MIB)
#define VFIO_MIN_CHUNK (64 * JOBS_MIB)

typedef struct VfioRange {
        uint64_t iova, len;
} VfioRange;

typedef struct VfioRun {
        const pad_vfio_target *t;
        uint8_t *vaddr;
        uint64_t iova;
        uint64_t pagesize;
        const pad_cancel *cancel;
        pthread_mutex_t lock;           /* guards done */
        VfioRange *done;                /* iommufd chunks mapped so far */
        size_t n_done, n_alloc;
} VfioRun;

/* ---- Checks --------------------------------------------------------------------------------- */

static int vfio_probe_fd(const pad_vfio_target *t) {
        if (t->kind == PAD_VFIO_TYPE1) {
                int r = ioctl(t->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU);
                if (r < 0)
                        return -errno;
                return r > 0 ? 0 : -EOPNOTSUPP;
        }
        struct pad_iommu_ioas_iova_ranges q = {
                .size = sizeof(q),
                .ioas_id = t->ioas_id,
        };
        /* With num_iovas 0 the kernel answers EMSGSIZE when there are ranges to report. */
        if (ioctl(t->fd, PAD_IOMMU_IOAS_IOVA_RANGES, &q) < 0 && errno != EMSGSIZE)
                return -errno;
        return 0;
}

static int vfio_check(const pad_vfio_target *t, uint64_t addr, uint64_t iova, uint64_t size,
                      const pad_io_opts *o) {
        uint64_t page = (uint64_t) sysconf(_SC_PAGESIZE);

        if (!t || (t->kind != PAD_VFIO_TYPE1 && t->kind != PAD_VFIO_IOMMUFD)) {
                jobs_msg(o, "no VFIO target or unknown kind");
                return -EINVAL;
        }
        if (size == 0 || addr % page != 0 || iova % page != 0 || size % page != 0) {
                jobs_msg(o, "address, IOVA and size must be non-zero multiples of the %s page size",
                         JOBS_SIZE_STR(page));
                return -EINVAL;
        }
        if (iova + size < iova || addr + size < addr) {
                jobs_msg(o, "range wraps around");
                return -EINVAL;
        }
        if (t->fd < 0 || fcntl(t->fd, F_GETFD) < 0) {
                jobs_msg(o, "bad file descriptor %d", t->fd);
                return -EBADF;
        }
        int r = vfio_probe_fd(t);
        if (r < 0)
                jobs_msg(o, "fd %d is not a %s: %s", t->fd,
                         t->kind == PAD_VFIO_TYPE1 ? "VFIO type1 container" : "iommufd with that IOAS",
                         strerror(-r));
        return r;
}

/* ---- type1 ------------------------------------------------------------------------------------ */

/* Prefault a chunk. A range madvise cannot populate (VM_PFNMAP device memory, PROT_NONE)
 * is left to VFIO_IOMMU_MAP_DMA, which maps what it can and fails cleanly otherwise. */
static int vfio_prefault_fn(uint64_t start, uint64_t end, void *arg) {
        VfioRun *v = arg;
        int r = jobs_populate_write(v->vaddr + start, end - start, v->pagesize, v->cancel);
        if (r == -EINVAL)
                return 0;
        return r == -EFAULT ? -ENOMEM : r;
}

static int vfio_type1_map(VfioRun *v, uint64_t size) {
        struct vfio_iommu_type1_dma_map m = {
                .argsz = sizeof(m),
                .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                .vaddr = (uintptr_t) v->vaddr,
                .iova = v->iova,
                .size = size,
        };
        /* Fails as a whole: the kernel unpins and unmaps what it did before returning. */
        return ioctl(v->t->fd, VFIO_IOMMU_MAP_DMA, &m) < 0 ? -errno : 0;
}

/* ---- iommufd ------------------------------------------------------------------------------------ */

static int iommufd_unmap(int fd, uint32_t ioas_id, uint64_t iova, uint64_t len, uint64_t *ret_len) {
        struct pad_iommu_ioas_unmap u = {
                .size = sizeof(u),
                .ioas_id = ioas_id,
                .iova = iova,
                .length = len,
        };
        if (ioctl(fd, PAD_IOMMU_IOAS_UNMAP, &u) < 0)
                return -errno;
        if (ret_len)
                *ret_len = u.length;
        return 0;
}

static int vfio_record(VfioRun *v, uint64_t iova, uint64_t len) {
        int r = 0;

        pthread_mutex_lock(&v->lock);
        if (v->n_done == v->n_alloc) {
                size_t n = v->n_alloc ? v->n_alloc * 2 : 64;
                VfioRange *d = realloc(v->done, n * sizeof(*d));
                if (!d)
                        r = -ENOMEM;
                else {
                        v->done = d;
                        v->n_alloc = n;
                }
        }
        if (r == 0)
                v->done[v->n_done++] = (VfioRange) { iova, len };
        pthread_mutex_unlock(&v->lock);
        return r;
}

static int vfio_iommufd_fn(uint64_t start, uint64_t end, void *arg) {
        VfioRun *v = arg;
        struct pad_iommu_ioas_map m = {
                .size = sizeof(m),
                .flags = PAD_IOMMU_IOAS_MAP_FIXED_IOVA | PAD_IOMMU_IOAS_MAP_READABLE |
                         PAD_IOMMU_IOAS_MAP_WRITEABLE,
                .ioas_id = v->t->ioas_id,
                .user_va = (uintptr_t) (v->vaddr + start),
                .length = end - start,
                .iova = v->iova + start,
        };

        if (ioctl(v->t->fd, PAD_IOMMU_IOAS_MAP, &m) < 0)
                return -errno;
        int r = vfio_record(v, m.iova, m.length);
        if (r < 0)
                (void) iommufd_unmap(v->t->fd, v->t->ioas_id, m.iova, m.length, NULL);
        return r;
}

static void vfio_iommufd_undo(VfioRun *v) {
        for (size_t i = 0; i < v->n_done; i++)
                (void) iommufd_unmap(v->t->fd, v->t->ioas_id, v->done[i].iova, v->done[i].len, NULL);
        v->n_done = 0;
}

/* ---- Public ---------------------------------------------------------------------------------- */

_public_ int pad_vfio_dma_map(pad_client *c, const pad_vfio_target *t, void *vaddr, uint64_t iova,
                              uint64_t size, const pad_io_opts *opts, pad_job_stats *ret_stats) {
        pad_job job;
        int r;

        jobs_msg_clear(opts);
        r = vfio_check(t, (uintptr_t) vaddr, iova, size, opts);
        if (r < 0)
                return r;

        VfioRun v = {
                .t = t,
                .vaddr = vaddr,
                .iova = iova,
                .pagesize = (uint64_t) sysconf(_SC_PAGESIZE),
                .cancel = opts ? opts->cancel : NULL,
                .lock = PTHREAD_MUTEX_INITIALIZER,
        };
        jobs_job_init(&job, opts);
        job.arg = &v;
        job.start = 0;
        job.size = size;
        job.align = VFIO_CHUNK_ALIGN;
        job.min_chunk = VFIO_MIN_CHUNK;
        job.thread_fn = t->kind == PAD_VFIO_TYPE1 ? vfio_prefault_fn : vfio_iommufd_fn;

        r = pad_job_run(c, &job, ret_stats);
        if (r == 0 && t->kind == PAD_VFIO_TYPE1) {
                r = vfio_type1_map(&v, size);
                if (r < 0)
                        jobs_msg(opts, "VFIO_IOMMU_MAP_DMA failed: %s", strerror(-r));
        } else if (r < 0) {
                if (t->kind == PAD_VFIO_IOMMUFD)
                        vfio_iommufd_undo(&v);
                if (r == -ECANCELED)
                        jobs_msg(opts, "cancelled; nothing is mapped");
                else
                        jobs_msg(opts, "%s failed: %s; nothing is mapped",
                                 t->kind == PAD_VFIO_TYPE1 ? "prefaulting" : "IOMMU_IOAS_MAP",
                                 strerror(-r));
        }
        free(v.done);
        pthread_mutex_destroy(&v.lock);
        return r;
}

_public_ int pad_vfio_dma_unmap(const pad_vfio_target *t, uint64_t iova, uint64_t size,
                                uint64_t *ret_unmapped) {
        int r = vfio_check(t, 0, iova, size, NULL);
        if (r < 0)
                return r;

        if (t->kind == PAD_VFIO_IOMMUFD)
                return iommufd_unmap(t->fd, t->ioas_id, iova, size, ret_unmapped);

        struct vfio_iommu_type1_dma_unmap u = {
                .argsz = sizeof(u),
                .iova = iova,
                .size = size,
        };
        if (ioctl(t->fd, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
                return -errno;
        if (ret_unmapped)
                *ret_unmapped = u.size;
        return 0;
}
