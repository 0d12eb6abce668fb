/* padclient.h: libpadclient, padata-style multithreaded jobs inside a machine-wide helper
 * budget lent by paddd (org.padata.Broker on D-Bus).
 *
 * A job splits [start, start + size) into chunks aligned to `align`, at least `min_chunk`
 * long, and runs thread_fn on them from the caller's thread and from helper threads lent
 * by the broker. Without a broker a job still runs, with PADCLIENT_FALLBACK_HELPERS helpers
 * (default 0: the caller alone). Functions returning int return 0 (or a count) on success
 * and a negative errno on failure, except pad_client_has_broker() (1 or 0); the accessors
 * return 0 or NULL for a NULL object; the *_free() functions accept NULL and return NULL.
 *
 * Thread safety: a pad_client may be used from several threads at once (calls on it are
 * serialised inside). A pad_lease must be used by one thread at a time. pad_cancel_request()
 * is async-signal-safe. The library keeps no state of its own outside the objects it hands
 * out; the first pad_client_new() registers the broker's error names with sd-bus
 * (sd_bus_error_add_map), once per process. */
#ifndef PADCLIENT_H
#define PADCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PAD_NODE_ANY (-1)
#define PAD_PLACEMENT_MAX 64

typedef struct pad_client pad_client;
typedef struct pad_lease pad_lease;

/* ---- Broker connection ------------------------------------------------------------ */

/* bus: NULL (then $PADCLIENT_BUS, else "system"), "system", "session", or a D-Bus address
 * such as "unix:path=/run/x/bus". Succeeds without a broker: the client then runs jobs in
 * fallback mode and pad_client_acquire() returns -EHOSTDOWN. Fails only on bad arguments
 * or out of memory. */
int pad_client_new(const char *bus, pad_client **ret);
pad_client *pad_client_free(pad_client *c);
/* 1 if the broker answered on this client's bus, else 0. */
int pad_client_has_broker(pad_client *c);
/* The bus this client uses: "system", "session" or the address (after $PADCLIENT_BUS). */
const char *pad_client_bus(const pad_client *c);
/* Asks the broker; 0 and "" in ret_msg when it answered. Otherwise why not, as one line in
 * ret_msg (may be NULL), e.g. "cannot connect to the system bus: Permission denied" or
 * "org.padata.Broker is not running on the system bus", and the errno behind it: the
 * connection's own (-EACCES, -ENOENT, -ECONNREFUSED...) when the bus could not be opened,
 * -EHOSTDOWN when the bus works but the broker does not answer. */
int pad_client_broker_error(pad_client *c, char *ret_msg, size_t ret_msg_len);

typedef struct pad_acquire_opts {
        unsigned min;           /* fewest helpers acceptable (default 0) */
        uint64_t wait_usec;     /* wait this long for min to be free (default 0) */
        int strict_node;        /* non-zero: slots only from node */
        pid_t caller_tid;       /* helpers are raised to this thread's priority; 0: the main thread */
        const char *tag;        /* label shown to admins, at most 64 bytes; NULL: none */
        uint64_t ttl_usec;      /* lease ends by itself after this long; 0: never */
} pad_acquire_opts;

/* Borrow up to `helpers` helper slots near `node` (PAD_NODE_ANY for any). opts may be
 * NULL. If the paddd it waits on dies, it waits a few seconds for a new one and asks it once
 * more, with what is left of wait_usec. Errors: -EHOSTDOWN no broker, -EBUSY fewer than min free, -ETIMEDOUT waited in
 * vain, -ENXIO no such node, -EUSERS client or machine limits exceeded, -EACCES, -EINVAL. */
int pad_client_acquire(pad_client *c, unsigned helpers, int node, const pad_acquire_opts *opts,
                       pad_lease **ret);

unsigned pad_lease_granted(const pad_lease *l);
/* The lease's D-Bus object path. */
const char *pad_lease_path(const pad_lease *l);
/* Up to n (node, helpers) pairs of the placement; returns how many there are. */
unsigned pad_lease_placement(const pad_lease *l, int *ret_nodes, unsigned *ret_helpers, unsigned n);
/* A lease is only ever used where it was granted, or at a restarted paddd that kept it for
 * this connection. When a call finds it gone, the lease is lost: the library drops what it
 * held (granted 0, no placement), the call returns -ENOENT (paddd does not have it: its ttl
 * passed, or paddd restarted without it) or -EHOSTDOWN (no paddd answers), and later calls
 * on it return -ESTALE. Nothing else is touched. A lease whose ttl_usec ran out is also
 * lost as soon as the next call on it sees paddd's Expired signal: that call returns
 * -ESTALE and asks paddd nothing. */

/* Give count slots back early. Returns the slots still held, or -errno (-EINVAL for more
 * than granted, -ESTALE when released or lost, -ENOENT or -EHOSTDOWN as above, -ETIMEDOUT
 * when paddd is there but did not answer in time: the lease is kept). */
int pad_lease_shrink(pad_lease *l, unsigned count);
/* Ask the broker to raise helper thread tid (of this process) to the caller_tid's priority.
 * Errors as for pad_lease_shrink(). */
int pad_lease_raise_priority(pad_lease *l, pid_t tid);
/* Give the lease back now (pad_lease_free() does it too). 0, -ENOENT or -EHOSTDOWN when it
 * was gone already (it is let go all the same), -ESTALE when released or lost before. After
 * -EHOSTDOWN (no paddd at all) the client owes the release: a restarted paddd may adopt the
 * lease again from its books, and the client's next pad_client_acquire() sends the release
 * there first (closing the client ends it too). */
int pad_lease_release(pad_lease *l);
/* The broker's HelperPolicy for this lease's helpers: "idle", "batch", "nice" or "none". */
const char *pad_lease_helper_policy(const pad_lease *l);
/* Release (if still held) and free. Accepts NULL, returns NULL. */
pad_lease *pad_lease_free(pad_lease *l);

/* ---- Broker administration --------------------------------------------------------- */

/* What `padctl status` shows, for any program. Every call asks the broker at once; on
 * failure ret_msg (may be NULL) gets one line: the D-Bus error's name and message ("NAME:
 * message"), or why there is no broker. Errors: -EHOSTDOWN (no broker; or the connect
 * error, as pad_client_broker_error()), -EACCES (not an admin), -ENXIO (no such node),
 * -EINVAL, -ENOMEM, -EBADMSG (a reply that does not match the contract). The structures
 * are allocated by the library, which only ever adds fields at their ends. */

typedef struct pad_broker_node {
        int node;
        unsigned cpus;                  /* online CPUs of the node */
        unsigned max_helpers;           /* the node's quota */
        unsigned in_use;                /* helpers lent from it */
} pad_broker_node;

typedef struct pad_broker_status {
        unsigned max_helpers;           /* machine-wide quota */
        unsigned in_use;
        unsigned waiting;               /* queued Acquire calls */
        unsigned leases;
        char *helper_policy;            /* "idle", "batch", "nice" or "none" */
        char *version;                  /* paddd's version */
        unsigned n_nodes;
        pad_broker_node **nodes;
} pad_broker_status;

int pad_broker_status_get(pad_client *c, pad_broker_status **ret, char *ret_msg, size_t ret_msg_len);
pad_broker_status *pad_broker_status_free(pad_broker_status *s);

typedef struct pad_lease_info {
        char *path;                     /* the lease's object path */
        uint32_t uid;
        uint32_t pid;
        unsigned granted;
        char *owner;                    /* the owner's unique bus name */
        char *tag;                      /* "" when none */
        unsigned n_placement;           /* 0: the lease went away while being listed */
        int placement_node[PAD_PLACEMENT_MAX];
        unsigned placement_helpers[PAD_PLACEMENT_MAX];
} pad_lease_info;

typedef struct pad_lease_list {
        unsigned n;
        pad_lease_info **leases;
} pad_lease_list;

/* Every lease of the broker (ListLeases), each with its placement. */
int pad_broker_list_leases(pad_client *c, pad_lease_list **ret, char *ret_msg, size_t ret_msg_len);
pad_lease_list *pad_lease_list_free(pad_lease_list *l);

/* Admin only. node: a node, or PAD_NODE_ANY for the machine-wide quota. */
int pad_broker_set_quota(pad_client *c, int node, unsigned max_helpers, char *ret_msg,
                         size_t ret_msg_len);
/* Admin only: paddd re-reads its configuration. -EINVAL when the new one has errors (the
 * old one stays; ret_msg names file:line). */
int pad_broker_reload(pad_client *c, char *ret_msg, size_t ret_msg_len);

/* ---- Broker statistics and change notification (since library 0.3.0) ------------------ */

/* GetStatistics: counts since paddd started, never reset by a reload. The element structs
 * below never change; new data comes as new fields at the end of pad_broker_statistics. */
typedef struct pad_broker_counter {
        char *name;                     /* "grants", "helpers_granted", "denied_busy", ... */
        uint64_t value;
} pad_broker_counter;

typedef struct pad_broker_wait_bucket {
        uint64_t le_usec;               /* upper bound; the last one UINT64_MAX */
        uint64_t count;                 /* waits that ended within it and above the bound before */
} pad_broker_wait_bucket;

typedef struct pad_broker_grant_count {
        int64_t id;                     /* the node, or the uid (4294967295: every user past 1024) */
        uint64_t grants;
        uint64_t helpers;
} pad_broker_grant_count;

typedef struct pad_broker_statistics {
        unsigned n_counters;
        pad_broker_counter *counters;   /* in paddd's order */
        unsigned n_wait_buckets;
        pad_broker_wait_bucket *wait_buckets;   /* ascending bounds, not cumulative */
        uint64_t wait_usec_sum;         /* total time of the waits counted */
        unsigned n_nodes;
        pad_broker_grant_count *nodes;  /* grants that took slots on each node, slots granted there */
        unsigned n_users;
        pad_broker_grant_count *users;  /* grants and helpers per uid */
} pad_broker_statistics;

/* Errors as for pad_broker_status_get(). */
int pad_broker_statistics_get(pad_client *c, pad_broker_statistics **ret, char *ret_msg,
                              size_t ret_msg_len);
pad_broker_statistics *pad_broker_statistics_free(pad_broker_statistics *s);
/* The counter called name: 0 and *ret (may be NULL) set, or -ENOENT when paddd has none. */
int pad_broker_statistics_counter(const pad_broker_statistics *s, const char *name, uint64_t *ret);

/* A watch tells when the broker's state (the properties of pad_broker_status_get(), and so
 * usually its leases) may have changed, without polling: it has its own connection to the
 * client's bus, subscribed to the broker's PropertiesChanged and to its name changing owner
 * (paddd started, restarted or gone). Call pad_broker_watch_process(): 1 when something
 * changed since the last call, 0 when not, or a negative errno (-ECONNRESET: the bus itself
 * went away; make a new watch); then wait for pad_broker_watch_get_events() on
 * pad_broker_watch_get_fd() with poll(2), and process again. Process before every poll,
 * the first included: the connection may hold messages it has read already. paddd coalesces its signals (at most one per
 * 20 ms), so read the state again after a 1. Used by one thread at a time. Errors of
 * pad_broker_watch_new(): those of the connection (as pad_client_broker_error()), -EINVAL,
 * -ENOMEM; it succeeds while paddd is not running. */
typedef struct pad_broker_watch pad_broker_watch;

int pad_broker_watch_new(pad_client *c, pad_broker_watch **ret, char *ret_msg, size_t ret_msg_len);
pad_broker_watch *pad_broker_watch_free(pad_broker_watch *w);
int pad_broker_watch_get_fd(const pad_broker_watch *w);
/* POLLIN and/or POLLOUT, or a negative errno. */
int pad_broker_watch_get_events(const pad_broker_watch *w);
int pad_broker_watch_process(pad_broker_watch *w);

/* ---- Cancellation ------------------------------------------------------------------ */

typedef struct pad_cancel {
        volatile int requested; /* read and written atomically by the library */
} pad_cancel;
#define PAD_CANCEL_INIT { 0 }

/* Async-signal-safe: jobs using this token stop handing out chunks and return -ECANCELED. */
void pad_cancel_request(pad_cancel *c);
void pad_cancel_reset(pad_cancel *c);

/* ---- Jobs ---------------------------------------------------------------------------- */

/* Run [start, end): 0 or a negative errno (which stops the job). */
typedef int (*pad_thread_fn)(uint64_t start, uint64_t end, void *arg);
/* Called from the caller's thread, at most every progress_interval_usec, and once at the
 * end with done == total on success. */
typedef void (*pad_progress_fn)(uint64_t done, uint64_t total, void *arg);

enum {
        PAD_JOB_NO_BROKER   = 1u << 0, /* do not ask the broker (fallback helper count) */
        PAD_JOB_STRICT_NODE = 1u << 1, /* helpers only from node */
        PAD_JOB_NO_RAISE    = 1u << 2, /* skip the raise at job end (benchmarks) */
        PAD_JOB_NO_AFFINITY = 1u << 3, /* do not bind helpers to their granted node's CPUs */
};

typedef struct pad_job {
        pad_thread_fn thread_fn;
        void *arg;
        uint64_t start;
        uint64_t size;
        uint64_t align;                 /* chunk edges are multiples of this from start; 0 means 1 */
        uint64_t min_chunk;             /* 0 means align */
        unsigned max_threads;           /* the caller's own thread counts as one; 0 means 1 */
        int node;                       /* where the data lives, or PAD_NODE_ANY */
        unsigned flags;                 /* PAD_JOB_* */
        pad_progress_fn progress_fn;    /* optional */
        void *progress_arg;
        uint64_t progress_interval_usec;/* 0: 100 ms */
        pad_cancel *cancel;             /* optional */
        const char *tag;                /* lease tag; NULL: none */
        uint64_t wait_usec;             /* how long to wait for at least one helper; 0: none */
} pad_job;

typedef struct pad_job_stats {
        unsigned threads;               /* threads that ran chunks, the caller included */
        unsigned granted;               /* helpers lent by the broker (or fallback count) */
        int brokered;                   /* 1 if the helpers came from a broker */
        unsigned raised;                /* helpers raised to the caller's priority at the end */
        unsigned n_placement;
        int placement_node[PAD_PLACEMENT_MAX];
        unsigned placement_helpers[PAD_PLACEMENT_MAX];
        uint64_t chunks;                /* chunks run */
        uint64_t wall_usec;
        /* Since library 0.2.0 (pad_job_run@PADCLIENT_0.2 and the memory jobs of that version). */
        int lease_lost;                 /* 1: the lease vanished mid-job (paddd died, or restarted
                                         * without it); the job went on with the threads it had */
        unsigned raise_failed;          /* helpers whose raise at the end failed (lease lost, or
                                         * the broker refused); `raised` counts those it worked for */
        int broker_error;               /* why the job ran on fallback helpers: the error of
                                         * connecting or of the Acquire (-EHOSTDOWN, -EACCES...;
                                         * pad_client_broker_error() says more); 0 otherwise */
} pad_job_stats;

/* c may be NULL (no broker). ret_stats may be NULL. Returns 0, the first chunk error,
 * -ECANCELED, or -EINVAL for a malformed job; always after every helper has stopped. */
int pad_job_run(pad_client *c, const pad_job *job, pad_job_stats *ret_stats);

/* ---- Memory initialisation jobs -------------------------------------------------------- */

typedef struct pad_io_opts {
        int node;                       /* NUMA node for pages and helpers, or PAD_NODE_ANY */
        unsigned max_threads;           /* 0: all the CPUs the caller may use */
        pad_progress_fn progress_fn;    /* bytes done, bytes total */
        void *progress_arg;
        pad_cancel *cancel;
        const char *tag;
        unsigned flags;                 /* PAD_JOB_* */
        char *ret_msg;                  /* optional: on failure, one line saying why, e.g. */
        size_t ret_msg_len;             /* "offset 4096 is not a multiple of the 2 MiB huge
                                         * page size" or "not enough huge pages: need 512,
                                         * 100 free"; "" on success. The library never prints. */
} pad_io_opts;

#define PAD_FALLOC_KEEP_SIZE 0x01       /* same value as FALLOC_FL_KEEP_SIZE */

/* fallocate(fd, mode, offset, len) on a hugetlbfs file, in parallel where that pays: the
 * result of fallocate(2) for every input, its errno returned negative. Same return value,
 * SIGXFSZ, st_size, st_blocks, pages allocated, drop of the pool's free and reserved pages,
 * ctime set on success (mtime and atime untouched), and the kernel's own checks (seals,
 * RLIMIT_FSIZE, per-mount and cgroup limits, O_APPEND, file type, access mode): unaligned
 * offset or len are rounded out to whole pages and mode 0 sets the size to offset + len;
 * modes other than 0 and PAD_FALLOC_KEEP_SIZE, what fallocate(2) refuses up front, and files
 * elsewhere than hugetlbfs go to fallocate(2) unchanged. The differences, all on purpose:
 * - Failure part-way is undone: the pages this call allocated are punched out, and size
 *   (also one that is not a page multiple), atime and mtime are as before; fallocate(2)
 *   keeps what it allocated. Punching sets ctime. The reservations that a shared mapping
 *   of the file had on the pages given back are made again when every page given back had
 *   one (one mapping over the range, as a VM's) and fd is open for reading; when only some
 *   had, none are. More holes than free pages (reserved ones included) plus the overcommit
 *   room: -ENOSPC up front, nothing allocated. The undo assumes that nothing else changes
 *   the file or the pool's reservations meanwhile.
 * - A signal does not end the call with -EINTR: it goes on, unless opts->cancel is
 *   requested (-ECANCELED, undone).
 * - opts->node binds the pages to that node; -ENXIO if there is no such node.
 * What runs in parallel: with at least 128 MiB and more than one thread allowed, the whole
 * pages below EOF, and in mode 0 those up to the new size when the old size is a page
 * multiple, no page lies beyond it and F_SEAL_SHRINK is not set, are populated by all
 * threads through a shared writable mapping. The rest (the part of a KEEP_SIZE range beyond
 * EOF, growth otherwise) goes through the kernel's fallocate from the same threads, and
 * fallocate(2) calls on one inode serialise on its lock. Where no writable mapping or no
 * userfaultfd can be had (O_WRONLY, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, seccomp) the call is
 * the kernel's fallocate page by page on one thread. Below 128 MiB or on one thread: in a
 * file without pages, one fallocate(2), after one fstat(2) (and, when the size is not 0,
 * fstatfs(2) and a read of the pool's reserved count for the undo); in a file with pages,
 * page by page as above (st_blocks tells the undo which pages are the call's). Those paths
 * but the single call end with fallocate(fd, mode, offset, len) itself, over pages that
 * are then all there. */
int pad_hugetlb_fallocate(pad_client *c, int fd, int mode, uint64_t offset, uint64_t len,
                          const pad_io_opts *opts, pad_job_stats *ret_stats);

typedef enum pad_pmem_path {
        PAD_PMEM_MAP_SYNC = 1,          /* MAP_SHARED_VALIDATE|MAP_SYNC, CPU cache flush per chunk */
        PAD_PMEM_DEVDAX,                /* device-DAX, CPU cache flush per chunk */
        PAD_PMEM_MSYNC,                 /* shared mapping, msync per chunk */
} pad_pmem_path;

/* Fill [offset, offset + len) of fd with pattern (0-255) using non-temporal stores, in
 * parallel. len 0: to the end of the file (or device). ret_path may be NULL. fd: a regular
 * file or a device-DAX device, open read-write. Errors: -EINVAL (range beyond the end, bad
 * pattern, device-DAX range not within the device once aligned), -EBADF, -ENODEV (another
 * kind of file), -ECANCELED (the range is then partly filled). */
int pad_pmem_init(pad_client *c, int fd, uint64_t offset, uint64_t len, int pattern,
                  const pad_io_opts *opts, pad_pmem_path *ret_path, pad_job_stats *ret_stats);
const char *pad_pmem_path_to_string(pad_pmem_path p);

typedef enum pad_vfio_kind {
        PAD_VFIO_TYPE1 = 1,             /* fd: a VFIO container with the type1 IOMMU set */
        PAD_VFIO_IOMMUFD,               /* fd: /dev/iommu, with ioas_id */
} pad_vfio_kind;

typedef struct pad_vfio_target {
        pad_vfio_kind kind;
        int fd;
        uint32_t ioas_id;               /* iommufd only */
} pad_vfio_target;

/* Map [vaddr, vaddr + size) at iova for device DMA (read and write), pinning in parallel.
 * On failure everything this call mapped is unmapped. vaddr, iova and size: non-zero
 * multiples of the page size, else -EINVAL; -EBADF for a closed fd, -ENOTTY when fd is not
 * a VFIO container / iommufd; the kernel's errno otherwise. */
int pad_vfio_dma_map(pad_client *c, const pad_vfio_target *t, void *vaddr, uint64_t iova,
                     uint64_t size, const pad_io_opts *opts, pad_job_stats *ret_stats);
/* Unmap [iova, iova + size); *ret_unmapped (may be NULL) gets the bytes the kernel unmapped.
 * This is the kernel's own unmap of each kind, with its results: a range with nothing mapped
 * in it returns 0 with 0 bytes unmapped on type1 (VFIO_IOMMU_UNMAP_DMA) but -ENOENT on
 * iommufd (IOMMU_IOAS_UNMAP). */
int pad_vfio_dma_unmap(const pad_vfio_target *t, uint64_t iova, uint64_t size, uint64_t *ret_unmapped);

/* Since library 0.4.0. */
enum {
        PAD_POPULATE_READ = 1u << 0,    /* read-fault (MADV_POPULATE_READ), for read-only mappings */
};

/* Fault in [addr, addr + len), an existing mapping of the caller, in parallel: each thread
 * runs madvise(MADV_POPULATE_WRITE) (with PAD_POPULATE_READ, MADV_POPULATE_READ) on its own
 * chunks, as QEMU preallocates guest memory; on kernels without the advice (before 5.14) it
 * touches one byte per page instead (writing back the byte it read), after the checks of
 * /proc/self/maps below on every path, and a page that cannot be had is then a SIGBUS, as
 * for any store. Any kind of mapping: anonymous (4 KiB pages, transparent huge pages,
 * MAP_HUGETLB), memfd (MFD_HUGETLB too), SysV shm, shared or private file mappings. Chunk
 * edges are multiples of the largest page size under the range (hugetlb: KernelPageSize in
 * /proc/self/smaps), and of 2 MiB at least, so no (transparent) huge page is split between
 * threads. Helpers are asked near opts->node, or, for PAD_NODE_ANY, near the node that the
 * memory policy of the page at addr binds it to (MPOL_BIND or MPOL_PREFERRED with one node;
 * set with mbind(2)); the policy itself is left alone. Below 64 MiB, or with one thread
 * allowed, the call runs on the caller's thread alone with no broker asked (stats: threads
 * 1, chunks 1): one populate madvise, or one per 64 MiB for a larger range (cancel is
 * looked at between them). Pages populated stay populated whatever the result. Progress is
 * in bytes of the range.
 * Errors are madvise(2)'s for the same range and advice (Linux 6.18):
 * - -EINVAL: addr not a multiple of the base page size; addr + len (len rounded up to the
 *   page size) overflows; flags other than PAD_POPULATE_READ; opts->node below
 *   PAD_NODE_ANY or opts->tag longer than 64 bytes; a mapping that cannot be populated:
 *   PROT_NONE, not writable for a write populate (a read-only mapping, a SysV segment
 *   attached SHM_RDONLY), not readable for PAD_POPULATE_READ, VM_PFNMAP or VM_IO.
 * - -ENOMEM: part of the range is not mapped.
 * - -EFAULT: a page could not be had: a hugetlb page with the pool empty (a MAP_NORESERVE
 *   mapping; other hugetlb mappings reserved their pages at mmap time), a page of a shared
 *   file mapping beyond the end of the file (where a store would get SIGBUS).
 * - -ECANCELED: opts->cancel was requested.
 * Any other errno of madvise (-EHWPOISON...) is returned as it is; opts->ret_msg says why.
 * len 0 returns 0 (any aligned addr). When the call goes parallel (or the kernel lacks the
 * advice), holes and permissions are checked up front from /proc/self/maps, and then
 * nothing is populated on -ENOMEM or -EINVAL; otherwise (on the caller's thread alone, and
 * for errors met while populating) the pages before the failing one stay populated in each
 * chunk that ran, as madvise(2) leaves those before its failing page. */
int pad_mem_populate(pad_client *c, void *addr, uint64_t len, unsigned flags,
                     const pad_io_opts *opts, pad_job_stats *ret_stats);

#ifdef __cplusplus
}
#endif

#endif
