/* padctl-jobs.c: padctl's commands that go through libpadclient: `acquire` (borrow helper
 * slots and hold them), `hugetlb-fallocate` (with the optional timing of the kernel's own
 * single-threaded fallocate(2) beside it) and `pmem-init`. Each checks its input first (exit
 * 2 with a clear message), runs with a progress bar on a terminal, cancels on Ctrl-C (the
 * library undoes its work; exit 130) and ends with a one-line summary of the grant. */
#define _GNU_SOURCE 1   /* fallocate(2) */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "padctl.h"
#include "parse.h"
#include "util.h"

DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);
DEFINE_POINTER_CLEANUP(pad_lease, pad_lease_free);

#define PMEM_PATTERN_MAX 255

/* What a failed acquire means; for -EHOSTDOWN the library's reason (buf). */
static const char *acquire_error(pad_client *client, int r, char *buf, size_t len) {
        switch (r) {
        case -EHOSTDOWN:
                if (pad_client_broker_error(client, buf, len) < 0 && buf[0])
                        return buf;
                return "no broker on this bus (is paddd running?)";
        case -EBUSY:
                return "fewer than --min helpers are free (try --wait)";
        case -ETIMEDOUT:
                return "waited in vain: --min helpers did not become free in time";
        case -ENXIO:
                return "no such node";
        case -EUSERS:
                return "limits exceeded (too many leases or waiting requests)";
        case -EACCES:
                return "access denied";
        case -EINVAL:
                return "invalid arguments";
        default:
                return strerror(-r);
        }
}

/* ---- acquire ------------------------------------------------------------------------------------ */

/* Hold until SIGINT/SIGTERM or, with hold_usec > 0, until it passes. */
static void hold_lease(uint64_t hold_usec) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        if (hold_usec == 0) {
                while (sigwaitinfo(&set, NULL) < 0 && errno == EINTR)
                        ;
                return;
        }
        for (uint64_t end = padctl_now_usec() + hold_usec, now; (now = padctl_now_usec()) < end;) {
                struct timespec ts = { .tv_sec = (time_t) ((end - now) / 1000000),
                                       .tv_nsec = (long) ((end - now) % 1000000) * 1000 };
                if (sigtimedwait(&set, NULL, &ts) >= 0 || errno == EAGAIN)
                        return;
        }
}

typedef struct AcquireArgs {
        uint64_t helpers;
        int node;
        uint64_t hold;                  /* 0: until a signal */
        pad_acquire_opts opts;
} AcquireArgs;

/* The command line of acquire: 0, or the exit status of a usage error or --help (-1). */
static int acquire_parse(Padctl *p, int argc, char **argv, AcquireArgs *a) {
        enum { ARG_NODE = 0x100, ARG_STRICT, ARG_MIN, ARG_WAIT, ARG_TAG, ARG_TTL, ARG_HOLD };
        static const struct option options[] = {
                { "node", required_argument, NULL, ARG_NODE },
                { "strict-node", no_argument, NULL, ARG_STRICT },
                { "min", required_argument, NULL, ARG_MIN },
                { "wait", required_argument, NULL, ARG_WAIT },
                { "tag", required_argument, NULL, ARG_TAG },
                { "ttl", required_argument, NULL, ARG_TTL },
                { "hold", required_argument, NULL, ARG_HOLD },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd = "acquire";
        uint64_t min = 0;
        int c, r = 0;

        *a = (AcquireArgs) { .node = PAD_NODE_ANY };
        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a->node);
                        break;
                case ARG_STRICT:
                        a->opts.strict_node = 1;
                        break;
                case ARG_MIN:
                        r = padctl_parse_uint(cmd, "--min", optarg, BROKER_HELPERS_MAX, &min);
                        break;
                case ARG_WAIT:
                        r = padctl_parse_seconds(cmd, "--wait", optarg, &a->opts.wait_usec);
                        break;
                case ARG_TAG:
                        if (strlen(optarg) > BROKER_TAG_MAX)
                                return padctl_usage_error(cmd, "--tag is longer than %u bytes", BROKER_TAG_MAX);
                        a->opts.tag = optarg;
                        break;
                case ARG_TTL:
                        r = padctl_parse_seconds(cmd, "--ttl", optarg, &a->opts.ttl_usec);
                        break;
                case ARG_HOLD:
                        r = padctl_parse_seconds(cmd, "--hold", optarg, &a->hold);
                        break;
                case 'h':
                        return -1;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 1, 1);
        if (r)
                return r;
        r = padctl_parse_uint(cmd, "HELPERS", argv[optind], BROKER_HELPERS_MAX, &a->helpers);
        if (r)
                return r;
        if (a->helpers == 0)
                return padctl_usage_error(cmd, "HELPERS must be 1 to %u", BROKER_HELPERS_MAX);
        if (min > a->helpers)
                return padctl_usage_error(cmd, "--min %llu is more than HELPERS %llu", (unsigned long long) min,
                                          (unsigned long long) a->helpers);
        if (a->opts.strict_node && a->node == PAD_NODE_ANY)
                return padctl_usage_error(cmd, "--strict-node needs --node");
        a->opts.min = (unsigned) min;
        return 0;
}

static void acquire_report(const pad_lease *lease, const AcquireArgs *a) {
        int nodes[PAD_PLACEMENT_MAX];
        unsigned counts[PAD_PLACEMENT_MAX], n;
        char where[256];

        n = pad_lease_placement(lease, nodes, counts, PAD_PLACEMENT_MAX);
        padctl_format_placement(where, sizeof(where), MIN(n, (unsigned) PAD_PLACEMENT_MAX), nodes, counts);
        printf("%s: %u of %llu helpers granted%s%s; helper policy %s\n", pad_lease_path(lease),
               pad_lease_granted(lease), (unsigned long long) a->helpers, n ? " on " : "", where,
               pad_lease_helper_policy(lease) ? pad_lease_helper_policy(lease) : "?");
        if (a->hold)
                printf("Holding for %.1f s (Ctrl-C releases it sooner).\n", (double) a->hold / 1e6);
        else
                printf("Holding until Ctrl-C.\n");
        fflush(stdout);
}

int padctl_acquire(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_(pad_lease_freep) pad_lease *lease = NULL;
        AcquireArgs a;
        char why[256];
        sigset_t set;
        int r;

        r = acquire_parse(p, argc, argv, &a);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        r = padctl_client_new(p, &client);
        if (r)
                return r;
        r = pad_client_acquire(client, (unsigned) a.helpers, a.node, &a.opts, &lease);
        if (r < 0)
                return padctl_fail("acquire: %s", acquire_error(client, r, why, sizeof(why)));

        /* Blocked before "Holding" is printed: a script (or a test) that sends SIGINT once it
         * reads that line gets a release and exit 0, never death by the signal. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        if (!p->quiet)
                acquire_report(lease, &a);
        hold_lease(a.hold);
        lease = pad_lease_free(lease);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        if (!p->quiet)
                printf("Released.\n");
        return PADCTL_EXIT_OK;
}

/* ---- Shared job options ---------------------------------------------------------------------- */

typedef struct JobArgs {
        int node;
        bool helpers_set;
        uint64_t helpers;
        char msg[256];          /* the library's one line on failure */
} JobArgs;

static void job_opts(Padctl *p, JobArgs *a, pad_io_opts *o, PadctlProgress *pr, pad_cancel *cancel,
                     const char *tag) {
        padctl_progress_init(pr, !p->quiet && isatty(STDERR_FILENO));
        *o = (pad_io_opts) {
                .node = a->node,
                .max_threads = a->helpers_set ? (unsigned) a->helpers + 1 : 0,
                .progress_fn = padctl_progress_fn,
                .progress_arg = pr,
                .cancel = cancel,
                .tag = tag,
                .ret_msg = a->msg,
                .ret_msg_len = sizeof(a->msg),
        };
        a->msg[0] = 0;
}

/* ---- hugetlb-fallocate ----------------------------------------------------------------------- */

/* Time the kernel's single-threaded fallocate(2) of size on a new file beside path. */
static int compare_kernel(const char *path, uint64_t size, uint64_t page_size, uint64_t our_usec,
                          unsigned our_threads) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;
        char tmpl[PATH_MAX], b[32], pb[32], label[64];
        const char *dir;
        uint64_t t0, usec;
        int r;

        if (!copy)
                return padctl_fail("out of memory");
        dir = dirname(copy);
        snprintf(tmpl, sizeof(tmpl), "%s/.padctl-kernel-XXXXXX", dir);
        fd = mkstemp(tmpl);
        if (fd < 0)
                return padctl_fail("--compare-kernel: cannot create a file in %s: %s", dir, strerror(errno));
        /* Unlinked at once: the pages go back when fd is closed, whatever happens. */
        unlink(tmpl);
        t0 = padctl_now_usec();
        r = fallocate(fd, 0, 0, (off_t) size);
        usec = padctl_now_usec() - t0;
        if (r < 0) {
                if (errno == ENOSPC)
                        return padctl_fail("--compare-kernel: not enough free huge pages for a second %s "
                                           "(%llu pages of %s; raise /proc/sys/vm/nr_hugepages)",
                                           format_bytes(b, sizeof(b), size),
                                           (unsigned long long) (size / page_size),
                                           format_bytes(pb, sizeof(pb), page_size));
                return padctl_fail("--compare-kernel: fallocate: %s", strerror(errno));
        }
        format_bytes(b, sizeof(b), size);
        snprintf(label, sizeof(label), "padctl, %u thread%s:", our_threads, our_threads == 1 ? "" : "s");
        printf("  %-31s %s in %.3f s, %6.2f GiB/s\n", label, b, (double) our_usec / 1e6,
               padctl_gib_per_s(size, our_usec));
        printf("  %-31s %s in %.3f s, %6.2f GiB/s\n", "kernel fallocate(2), 1 thread:", b, (double) usec / 1e6,
               padctl_gib_per_s(size, usec));
        printf("  padctl is %.2fx the kernel's single-threaded path\n", (double) usec / (double) MAX(our_usec, 1u));
        return 0;
}

/* Opens (or creates) FILE and checks it is on hugetlbfs with offset and size aligned. */
static int hugetlb_open(const char *cmd, const char *file, uint64_t offset, uint64_t size, char *const *args,
                        int *ret_fd, bool *ret_created, uint64_t *ret_page) {
        _cleanup_close_ int fd = -1;
        struct statfs sfs;
        bool created = false;
        char b[32];

        fd = open(file, O_RDWR | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                created = fd >= 0;
        }
        if (fd < 0)
                return padctl_fail("%s: cannot open %s: %s", cmd, file, strerror(errno));
        if (fstatfs(fd, &sfs) < 0 || sfs.f_type != (typeof(sfs.f_type)) HUGETLBFS_MAGIC) {
                if (created)
                        unlink(file);
                return padctl_fail("%s: %s is not on a hugetlbfs mount", cmd, file);
        }
        *ret_page = (uint64_t) sfs.f_bsize;
        if (size % *ret_page || offset % *ret_page) {
                if (created)
                        unlink(file);
                return padctl_usage_error(cmd, "%s %s (%llu bytes) is not a multiple of the huge page size (%s)",
                                          size % *ret_page ? "SIZE" : "--offset", size % *ret_page ? args[0] : args[1],
                                          (unsigned long long) (size % *ret_page ? size : offset),
                                          format_bytes(b, sizeof(b), *ret_page));
        }
        *ret_fd = TAKE_FD(fd);
        *ret_created = created;
        return 0;
}

typedef struct HugetlbArgs {
        JobArgs job;
        const char *file;
        const char *size_arg, *offset_arg;
        uint64_t size, offset;
        int mode;
        bool compare;
} HugetlbArgs;

/* The command line of hugetlb-fallocate: 0, or the exit status of a usage error or --help (-1). */
static int hugetlb_parse(Padctl *p, int argc, char **argv, HugetlbArgs *a) {
        enum { ARG_OFFSET = 0x100, ARG_NODE, ARG_HELPERS, ARG_KEEP, ARG_COMPARE };
        static const struct option options[] = {
                { "offset", required_argument, NULL, ARG_OFFSET },
                { "node", required_argument, NULL, ARG_NODE },
                { "helpers", required_argument, NULL, ARG_HELPERS },
                { "keep-size", no_argument, NULL, ARG_KEEP },
                { "compare-kernel", no_argument, NULL, ARG_COMPARE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd = "hugetlb-fallocate";
        int c, r = 0;

        *a = (HugetlbArgs) { .job.node = PAD_NODE_ANY, .offset_arg = "0" };
        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_OFFSET:
                        r = padctl_parse_size(cmd, "--offset", optarg, &a->offset);
                        a->offset_arg = optarg;
                        break;
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a->job.node);
                        break;
                case ARG_HELPERS:
                        r = padctl_parse_uint(cmd, "--helpers", optarg, BROKER_HELPERS_MAX, &a->job.helpers);
                        a->job.helpers_set = true;
                        break;
                case ARG_KEEP:
                        a->mode = PAD_FALLOC_KEEP_SIZE;
                        break;
                case ARG_COMPARE:
                        a->compare = true;
                        break;
                case 'h':
                        return -1;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 2, 2);
        if (r)
                return r;
        a->file = argv[optind];
        a->size_arg = argv[optind + 1];
        r = padctl_parse_size(cmd, "SIZE", a->size_arg, &a->size);
        if (r)
                return r;
        if (a->size == 0)
                return padctl_usage_error(cmd, "SIZE must be more than 0");
        if (a->offset + a->size < a->offset || a->offset + a->size > (uint64_t) INT64_MAX)
                return padctl_usage_error(cmd, "--offset plus SIZE is too large");
        return 0;
}

int padctl_hugetlb_fallocate(Padctl *p, int argc, char **argv) {
        const char *cmd = "hugetlb-fallocate";
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_close_ int fd = -1;
        HugetlbArgs a;
        uint64_t page = 0, t0, usec;
        bool created = false;
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_job_stats st = {};
        PadctlProgress pr;
        pad_io_opts o;
        int r;

        r = hugetlb_parse(p, argc, argv, &a);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        r = hugetlb_open(cmd, a.file, a.offset, a.size, (char *const[]) { (char *) a.size_arg, (char *) a.offset_arg },
                         &fd, &created, &page);
        if (r)
                return r;
        r = padctl_client_new(p, &client);
        if (r)
                return r;

        job_opts(p, &a.job, &o, &pr, &cancel, "padctl hugetlb-fallocate");
        padctl_cancel_on_signals(&cancel);
        t0 = padctl_now_usec();
        r = pad_hugetlb_fallocate(client, fd, a.mode, a.offset, a.size, &o, &st);
        usec = padctl_now_usec() - t0;
        padctl_progress_finish(&pr);
        padctl_cancel_restore();
        padctl_warn_no_broker(client, &st);

        if (r < 0 && created)
                unlink(a.file);
        if (r == -ECANCELED) {
                fprintf(stderr, "padctl: hugetlb-fallocate cancelled; the pages it allocated were given back.\n");
                return PADCTL_EXIT_CANCELLED;
        }
        if (r < 0)
                return padctl_fail("%s %s: %s", cmd, a.file, a.job.msg[0] ? a.job.msg : strerror(-r));
        if (!p->quiet)
                padctl_print_summary(cmd, a.size, usec, &st, pad_client_has_broker(client) > 0);
        if (a.compare)
                return compare_kernel(a.file, a.size, page, usec, st.threads) == 0 ? PADCTL_EXIT_OK : PADCTL_EXIT_FAILURE;
        return PADCTL_EXIT_OK;
}

/* ---- pmem-init ---------------------------------------------------------------------------------- */

typedef struct PmemArgs {
        JobArgs job;
        const char *path;
        uint64_t size, offset, pattern;
} PmemArgs;

/* The command line of pmem-init: 0, or the exit status of a usage error or --help (-1). */
static int pmem_parse(Padctl *p, int argc, char **argv, PmemArgs *a) {
        enum { ARG_SIZE = 0x100, ARG_OFFSET, ARG_PATTERN, ARG_NODE, ARG_HELPERS };
        static const struct option options[] = {
                { "size", required_argument, NULL, ARG_SIZE },
                { "offset", required_argument, NULL, ARG_OFFSET },
                { "pattern", required_argument, NULL, ARG_PATTERN },
                { "node", required_argument, NULL, ARG_NODE },
                { "helpers", required_argument, NULL, ARG_HELPERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd = "pmem-init";
        int c, r = 0;

        *a = (PmemArgs) { .job.node = PAD_NODE_ANY };
        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_SIZE:
                        r = padctl_parse_size(cmd, "--size", optarg, &a->size);
                        if (r == 0 && a->size == 0)
                                return padctl_usage_error(cmd, "--size must be more than 0");
                        break;
                case ARG_OFFSET:
                        r = padctl_parse_size(cmd, "--offset", optarg, &a->offset);
                        break;
                case ARG_PATTERN:
                        if (parse_unsigned_hex(optarg, PMEM_PATTERN_MAX, &a->pattern) < 0)
                                return padctl_usage_error(cmd, "--pattern '%s' is not a byte (0-255, or 0x00-0xff)", optarg);
                        break;
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a->job.node);
                        break;
                case ARG_HELPERS:
                        r = padctl_parse_uint(cmd, "--helpers", optarg, BROKER_HELPERS_MAX, &a->job.helpers);
                        a->job.helpers_set = true;
                        break;
                case 'h':
                        return -1;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 1, 1);
        if (r)
                return r;
        a->path = argv[optind];
        return 0;
}

/* Open the target read-write and check the range lies within a regular file. */
static int pmem_open(const PmemArgs *a, int *ret_fd, struct stat *ret_st) {
        _cleanup_close_ int fd = open(a->path, O_RDWR | O_CLOEXEC);

        if (fd < 0 || fstat(fd, ret_st) < 0)
                return padctl_fail("pmem-init: cannot open %s: %s", a->path, strerror(errno));
        if (S_ISREG(ret_st->st_mode)) {
                uint64_t end = a->size ? a->offset + a->size : (uint64_t) ret_st->st_size;

                if (end < a->offset || end > (uint64_t) ret_st->st_size || a->offset >= (uint64_t) ret_st->st_size)
                        return padctl_fail("pmem-init: the range ends past the end of %s (%llu bytes)", a->path,
                                           (unsigned long long) ret_st->st_size);
        } else if (!S_ISCHR(ret_st->st_mode) && !S_ISBLK(ret_st->st_mode))
                return padctl_fail("pmem-init: %s is neither a file nor a device", a->path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int padctl_pmem_init(Padctl *p, int argc, char **argv) {
        const char *cmd = "pmem-init";
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_close_ int fd = -1;
        PmemArgs a;
        uint64_t t0, usec, bytes;
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_pmem_path how = 0;
        pad_job_stats st = {};
        PadctlProgress pr;
        pad_io_opts o;
        struct stat s;
        int r;

        r = pmem_parse(p, argc, argv, &a);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        r = pmem_open(&a, &fd, &s);
        if (r)
                return r;
        r = padctl_client_new(p, &client);
        if (r)
                return r;
        job_opts(p, &a.job, &o, &pr, &cancel, "padctl pmem-init");
        padctl_cancel_on_signals(&cancel);
        t0 = padctl_now_usec();
        r = pad_pmem_init(client, fd, a.offset, a.size, (int) a.pattern, &o, &how, &st);
        usec = padctl_now_usec() - t0;
        padctl_progress_finish(&pr);
        padctl_cancel_restore();
        padctl_warn_no_broker(client, &st);

        if (r == -ECANCELED) {
                fprintf(stderr, "padctl: pmem-init cancelled; part of the range may be filled.\n");
                return PADCTL_EXIT_CANCELLED;
        }
        if (r == -ENXIO && a.job.node >= 0)
                return padctl_fail("%s: there is no NUMA node %d on this machine", cmd, a.job.node);
        if (r < 0)
                return padctl_fail("%s %s: %s", cmd, a.path, a.job.msg[0] ? a.job.msg : strerror(-r));
        bytes = a.size ? a.size : pr.total ? pr.total : (uint64_t) s.st_size - a.offset;
        if (!p->quiet) {
                padctl_print_summary(cmd, bytes, usec, &st, pad_client_has_broker(client) > 0);
                printf("  durability: %s, pattern 0x%02x\n", pad_pmem_path_to_string(how) ? pad_pmem_path_to_string(how) : "?",
                       (unsigned) a.pattern);
        }
        return PADCTL_EXIT_OK;
}
