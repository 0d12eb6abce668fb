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

int padctl_acquire(const Padctl *p, int argc, char **argv) {
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
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_(pad_lease_freep) pad_lease *lease = NULL;
        pad_acquire_opts opts = {};
        uint64_t helpers, min = 0, hold = 0;
        int node = PAD_NODE_ANY, c, r = 0;
        int nodes[PAD_PLACEMENT_MAX];
        unsigned counts[PAD_PLACEMENT_MAX], n;
        char where[256], why[256];
        sigset_t set;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &node);
                        break;
                case ARG_STRICT:
                        opts.strict_node = 1;
                        break;
                case ARG_MIN:
                        r = padctl_parse_uint(cmd, "--min", optarg, BROKER_HELPERS_MAX, &min);
                        break;
                case ARG_WAIT:
                        r = padctl_parse_seconds(cmd, "--wait", optarg, &opts.wait_usec);
                        break;
                case ARG_TAG:
                        if (strlen(optarg) > BROKER_TAG_MAX)
                                return padctl_usage_error(cmd, "--tag is longer than %u bytes", BROKER_TAG_MAX);
                        opts.tag = optarg;
                        break;
                case ARG_TTL:
                        r = padctl_parse_seconds(cmd, "--ttl", optarg, &opts.ttl_usec);
                        break;
                case ARG_HOLD:
                        r = padctl_parse_seconds(cmd, "--hold", optarg, &hold);
                        break;
                case 'h':
                        return PADCTL_EXIT_OK;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 1, 1);
        if (r)
                return r;
        r = padctl_parse_uint(cmd, "HELPERS", argv[optind], BROKER_HELPERS_MAX, &helpers);
        if (r)
                return r;
        if (helpers == 0)
                return padctl_usage_error(cmd, "HELPERS must be 1 to %u", BROKER_HELPERS_MAX);
        if (min > helpers)
                return padctl_usage_error(cmd, "--min %llu is more than HELPERS %llu", (unsigned long long) min,
                                          (unsigned long long) helpers);
        if (opts.strict_node && node == PAD_NODE_ANY)
                return padctl_usage_error(cmd, "--strict-node needs --node");
        opts.min = (unsigned) min;

        r = pad_client_new(p->bus, &client);
        if (r < 0)
                return padctl_fail("cannot use bus '%s': %s", p->bus ? p->bus : "(default)", strerror(-r));
        r = pad_client_acquire(client, (unsigned) helpers, node, &opts, &lease);
        if (r < 0)
                return padctl_fail("acquire: %s", acquire_error(client, r, why, sizeof(why)));

        /* Blocked before "Holding" is printed: a script (or a test) that sends SIGINT once it
         * reads that line gets a release and exit 0, never death by the signal. */
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        n = pad_lease_placement(lease, nodes, counts, PAD_PLACEMENT_MAX);
        padctl_format_placement(where, sizeof(where), MIN(n, (unsigned) PAD_PLACEMENT_MAX), nodes, counts);
        if (!p->quiet) {
                printf("%s: %u of %llu helpers granted%s%s; helper policy %s\n", pad_lease_path(lease),
                       pad_lease_granted(lease), (unsigned long long) helpers, n ? " on " : "", where,
                       pad_lease_helper_policy(lease) ? pad_lease_helper_policy(lease) : "?");
                if (hold)
                        printf("Holding for %.1f s (Ctrl-C releases it sooner).\n", (double) hold / 1e6);
                else
                        printf("Holding until Ctrl-C.\n");
                fflush(stdout);
        }

        hold_lease(hold);
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

static void job_opts(const Padctl *p, JobArgs *a, pad_io_opts *o, PadctlProgress *pr, pad_cancel *cancel,
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

int padctl_hugetlb_fallocate(const Padctl *p, int argc, char **argv) {
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
        const char *cmd = "hugetlb-fallocate", *file;
        char *offset_arg = (char *) "0";
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_close_ int fd = -1;
        JobArgs a = { .node = PAD_NODE_ANY };
        uint64_t offset = 0, size, page = 0, t0, usec;
        bool compare = false, created = false;
        int mode = 0, c, r = 0;
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_job_stats st = {};
        PadctlProgress pr;
        pad_io_opts o;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_OFFSET:
                        r = padctl_parse_size(cmd, "--offset", optarg, &offset);
                        offset_arg = optarg;
                        break;
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a.node);
                        break;
                case ARG_HELPERS:
                        r = padctl_parse_uint(cmd, "--helpers", optarg, BROKER_HELPERS_MAX, &a.helpers);
                        a.helpers_set = true;
                        break;
                case ARG_KEEP:
                        mode = PAD_FALLOC_KEEP_SIZE;
                        break;
                case ARG_COMPARE:
                        compare = true;
                        break;
                case 'h':
                        return PADCTL_EXIT_OK;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 2, 2);
        if (r)
                return r;
        file = argv[optind];
        r = padctl_parse_size(cmd, "SIZE", argv[optind + 1], &size);
        if (r)
                return r;
        if (size == 0)
                return padctl_usage_error(cmd, "SIZE must be more than 0");
        if (offset + size < offset || offset + size > (uint64_t) INT64_MAX)
                return padctl_usage_error(cmd, "--offset plus SIZE is too large");

        r = hugetlb_open(cmd, file, offset, size, (char *const[]) { argv[optind + 1], offset_arg }, &fd, &created,
                         &page);
        if (r)
                return r;
        r = pad_client_new(p->bus, &client);
        if (r < 0)
                return padctl_fail("cannot use bus '%s': %s", p->bus ? p->bus : "(default)", strerror(-r));

        job_opts(p, &a, &o, &pr, &cancel, "padctl hugetlb-fallocate");
        padctl_cancel_on_signals(&cancel);
        t0 = padctl_now_usec();
        r = pad_hugetlb_fallocate(client, fd, mode, offset, size, &o, &st);
        usec = padctl_now_usec() - t0;
        padctl_progress_finish(&pr);
        padctl_cancel_restore();

        if (r < 0 && created)
                unlink(file);
        if (r == -ECANCELED) {
                fprintf(stderr, "padctl: hugetlb-fallocate cancelled; the pages it allocated were given back.\n");
                return PADCTL_EXIT_CANCELLED;
        }
        if (r < 0)
                return padctl_fail("%s %s: %s", cmd, file, a.msg[0] ? a.msg : strerror(-r));
        if (!p->quiet)
                padctl_print_summary(cmd, size, usec, &st, pad_client_has_broker(client) > 0);
        if (compare)
                return compare_kernel(file, size, page, usec, st.threads) == 0 ? PADCTL_EXIT_OK : PADCTL_EXIT_FAILURE;
        return PADCTL_EXIT_OK;
}

/* ---- pmem-init ---------------------------------------------------------------------------------- */

int padctl_pmem_init(const Padctl *p, int argc, char **argv) {
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
        const char *cmd = "pmem-init", *path;
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        _cleanup_close_ int fd = -1;
        JobArgs a = { .node = PAD_NODE_ANY };
        uint64_t size = 0, offset = 0, pattern = 0, t0, usec, bytes;
        int c, r = 0;
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_pmem_path how = 0;
        pad_job_stats st = {};
        PadctlProgress pr;
        pad_io_opts o;
        struct stat s;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_SIZE:
                        r = padctl_parse_size(cmd, "--size", optarg, &size);
                        if (r == 0 && size == 0)
                                return padctl_usage_error(cmd, "--size must be more than 0");
                        break;
                case ARG_OFFSET:
                        r = padctl_parse_size(cmd, "--offset", optarg, &offset);
                        break;
                case ARG_PATTERN:
                        if (parse_unsigned_hex(optarg, 255, &pattern) < 0)
                                return padctl_usage_error(cmd, "--pattern '%s' is not a byte (0-255, or 0x00-0xff)", optarg);
                        break;
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a.node);
                        break;
                case ARG_HELPERS:
                        r = padctl_parse_uint(cmd, "--helpers", optarg, BROKER_HELPERS_MAX, &a.helpers);
                        a.helpers_set = true;
                        break;
                case 'h':
                        return PADCTL_EXIT_OK;
                default:
                        return PADCTL_EXIT_USAGE;
                }
                if (r)
                        return r;
        }
        r = padctl_positional(cmd, argc, argv, 1, 1);
        if (r)
                return r;
        path = argv[optind];
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &s) < 0)
                return padctl_fail("%s: cannot open %s: %s", cmd, path, strerror(errno));
        if (S_ISREG(s.st_mode)) {
                uint64_t end = size ? offset + size : (uint64_t) s.st_size;

                if (end < offset || end > (uint64_t) s.st_size || offset >= (uint64_t) s.st_size)
                        return padctl_fail("%s: the range ends past the end of %s (%llu bytes)", cmd, path,
                                           (unsigned long long) s.st_size);
        } else if (!S_ISCHR(s.st_mode) && !S_ISBLK(s.st_mode))
                return padctl_fail("%s: %s is neither a file nor a device", cmd, path);

        r = pad_client_new(p->bus, &client);
        if (r < 0)
                return padctl_fail("cannot use bus '%s': %s", p->bus ? p->bus : "(default)", strerror(-r));
        job_opts(p, &a, &o, &pr, &cancel, "padctl pmem-init");
        padctl_cancel_on_signals(&cancel);
        t0 = padctl_now_usec();
        r = pad_pmem_init(client, fd, offset, size, (int) pattern, &o, &how, &st);
        usec = padctl_now_usec() - t0;
        padctl_progress_finish(&pr);
        padctl_cancel_restore();

        if (r == -ECANCELED) {
                fprintf(stderr, "padctl: pmem-init cancelled; part of the range may be filled.\n");
                return PADCTL_EXIT_CANCELLED;
        }
        if (r == -ENXIO && a.node >= 0)
                return padctl_fail("%s: there is no NUMA node %d on this machine", cmd, a.node);
        if (r < 0)
                return padctl_fail("%s %s: %s", cmd, path, a.msg[0] ? a.msg : strerror(-r));
        bytes = size ? size : pr.total ? pr.total : (uint64_t) s.st_size - offset;
        if (!p->quiet) {
                padctl_print_summary(cmd, bytes, usec, &st, pad_client_has_broker(client) > 0);
                printf("  durability: %s, pattern 0x%02x\n", pad_pmem_path_to_string(how) ? pad_pmem_path_to_string(how) : "?",
                       (unsigned) pattern);
        }
        return PADCTL_EXIT_OK;
}
