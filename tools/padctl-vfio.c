/* padctl-vfio.c: `padctl vfio-map`, a diagnostic for VFIO DMA mapping through libpadclient.
 * Sets up either a type1 container for the group (/dev/vfio/vfio, API version, the type1v2
 * extension, a viable group, VFIO_SET_IOMMU) or, with --iommufd, an IOAS on /dev/iommu with
 * the group's devices bound and attached through their VFIO device cdevs; then maps SIZE of
 * fresh memory at IOVA 0 with pad_vfio_dma_map(), reports time and throughput, and unmaps.
 * Debian 12's kernel headers (6.1) lack the iommufd and device-cdev uAPI, so the few
 * structures used are declared here from the kernel's stable ABI. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broker-contract.h"
#include "padctl.h"
#include "parse.h"
#include "util.h"

DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);

/* iommufd (include/uapi/linux/iommufd.h, Linux 6.2) */
struct padctl_iommu_ioas_alloc {
        uint32_t size;
        uint32_t flags;
        uint32_t out_ioas_id;
};
#define PADCTL_IOMMU_IOAS_ALLOC _IO(';', 0x81)

/* VFIO device cdev (include/uapi/linux/vfio.h, Linux 6.6) */
struct padctl_vfio_device_bind_iommufd {
        uint32_t argsz;
        uint32_t flags;
        int32_t iommufd;
        uint32_t out_devid;
};
#define PADCTL_VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

struct padctl_vfio_device_attach_iommufd_pt {
        uint32_t argsz;
        uint32_t flags;
        uint32_t pt_id;
};
#define PADCTL_VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

#define MAX_DEVICES 32

typedef struct VfioSetup {
        unsigned group;
        pad_vfio_target target;
        int group_fd;           /* type1 */
        int device_fds[MAX_DEVICES];    /* iommufd */
        unsigned n_devices;
} VfioSetup;

static void vfio_setup_done(VfioSetup *v) {
        for (unsigned i = 0; i < v->n_devices; i++)
                safe_close(v->device_fds[i]);
        safe_close(v->group_fd);
        safe_close(v->target.fd);
}

/* "3" or "/dev/vfio/3" -> 3 */
static int parse_group(const char *s, unsigned *ret) {
        const char *slash = strrchr(s, '/');
        uint64_t v;

        if (slash && strncmp(s, "/dev/vfio/", 10) != 0)
                return -EINVAL;
        if (parse_unsigned(slash ? slash + 1 : s, UINT32_MAX, &v) < 0)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int type1_setup(VfioSetup *v) {
        struct vfio_group_status status = { .argsz = sizeof(status) };
        char path[64];
        int api;

        v->target.kind = PAD_VFIO_TYPE1;
        v->target.fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (v->target.fd < 0)
                return padctl_fail("vfio-map: cannot open /dev/vfio/vfio: %s (is the vfio module loaded?)",
                                   strerror(errno));
        api = ioctl(v->target.fd, VFIO_GET_API_VERSION);
        if (api != VFIO_API_VERSION)
                return padctl_fail("vfio-map: VFIO API version %d, expected %d", api, VFIO_API_VERSION);
        if (ioctl(v->target.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
                return padctl_fail("vfio-map: this kernel's VFIO has no type1v2 IOMMU (load vfio_iommu_type1)");

        snprintf(path, sizeof(path), "/dev/vfio/%u", v->group);
        v->group_fd = open(path, O_RDWR | O_CLOEXEC);
        if (v->group_fd < 0)
                return padctl_fail("vfio-map: cannot open %s: %s%s", path, strerror(errno),
                                   errno == EBUSY ? " (another process uses the group)" : "");
        if (ioctl(v->group_fd, VFIO_GROUP_GET_STATUS, &status) < 0)
                return padctl_fail("vfio-map: VFIO_GROUP_GET_STATUS on %s: %s", path, strerror(errno));
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
                return padctl_fail("vfio-map: group %u is not viable: bind every device in "
                                   "/sys/kernel/iommu_groups/%u/devices to vfio-pci", v->group, v->group);
        if (ioctl(v->group_fd, VFIO_GROUP_SET_CONTAINER, &v->target.fd) < 0)
                return padctl_fail("vfio-map: VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
        if (ioctl(v->target.fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
                return padctl_fail("vfio-map: VFIO_SET_IOMMU type1v2: %s", strerror(errno));
        return 0;
}

/* The VFIO cdev of a device (/sys/.../vfio-dev/vfioN -> /dev/vfio/devices/vfioN), or -1. */
static int device_cdev_open(unsigned group, const char *dev) {
        char path[512];
        struct dirent *de;
        DIR *d;
        int fd = -1;

        snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%u/devices/%s/vfio-dev", group, dev);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "vfio", 4) == 0) {
                        snprintf(path, sizeof(path), "/dev/vfio/devices/%s", de->d_name);
                        fd = open(path, O_RDWR | O_CLOEXEC);
                        break;
                }
        closedir(d);
        return fd;
}

static int iommufd_bind_devices(VfioSetup *v) {
        char path[128];
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%u/devices", v->group);
        d = opendir(path);
        if (!d)
                return padctl_fail("vfio-map: no IOMMU group %u (%s: %s)", v->group, path, strerror(errno));
        while ((de = readdir(d)) && v->n_devices < MAX_DEVICES) {
                struct padctl_vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = v->target.fd };
                struct padctl_vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach),
                                                                        .pt_id = v->target.ioas_id };
                int fd;

                if (de->d_name[0] == '.')
                        continue;
                fd = device_cdev_open(v->group, de->d_name);
                if (fd < 0)
                        continue;
                v->device_fds[v->n_devices++] = fd;
                if (ioctl(fd, PADCTL_VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0 ||
                    ioctl(fd, PADCTL_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0) {
                        closedir(d);
                        return padctl_fail("vfio-map: binding %s to the IOAS: %s", de->d_name, strerror(errno));
                }
        }
        closedir(d);
        return 0;
}

static int iommufd_setup(VfioSetup *v, bool quiet) {
        struct padctl_iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
        int r;

        v->target.kind = PAD_VFIO_IOMMUFD;
        v->target.fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (v->target.fd < 0)
                return padctl_fail("vfio-map: cannot open /dev/iommu: %s (kernel without iommufd?)", strerror(errno));
        if (ioctl(v->target.fd, PADCTL_IOMMU_IOAS_ALLOC, &alloc) < 0)
                return padctl_fail("vfio-map: IOMMU_IOAS_ALLOC: %s", strerror(errno));
        v->target.ioas_id = alloc.out_ioas_id;
        r = iommufd_bind_devices(v);
        if (r)
                return r;
        if (v->n_devices == 0 && !quiet)
                fprintf(stderr, "padctl: group %u has no VFIO device cdev (no CONFIG_VFIO_DEVICE_CDEV, or not "
                        "bound to vfio-pci): pinning into IOAS %u with no device attached\n",
                        v->group, v->target.ioas_id);
        return 0;
}

static uint64_t default_huge_page_size(void) {
        char line[128];
        unsigned long long kb = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        if (!f)
                return 2u << 20;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1)
                        break;
        fclose(f);
        return kb ? kb * 1024 : 2u << 20;
}

/* Map [mem, mem + size) at IOVA 0 in parallel, report, unmap and check the unmapped size.
 * Returns the exit status. */
static int vfio_map_report_unmap(Padctl *p, pad_client *client, VfioSetup *v, void *mem, uint64_t size,
                                 int node, unsigned max_threads) {
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_job_stats st = {};
        uint64_t t0, usec, unmapped = 0;
        char b[32], b2[32], msg[256] = "";
        PadctlProgress pr;
        pad_io_opts o;
        int r;

        padctl_progress_init(&pr, !p->quiet && isatty(STDERR_FILENO));
        o = (pad_io_opts) {
                .node = node,
                .max_threads = max_threads,
                .progress_fn = padctl_progress_fn,
                .progress_arg = &pr,
                .cancel = &cancel,
                .tag = "padctl vfio-map",
                .ret_msg = msg,
                .ret_msg_len = sizeof(msg),
        };
        padctl_cancel_on_signals(&cancel);
        t0 = padctl_now_usec();
        r = pad_vfio_dma_map(client, &v->target, mem, 0, size, &o, &st);
        usec = padctl_now_usec() - t0;
        padctl_progress_finish(&pr);
        padctl_cancel_restore();
        padctl_warn_no_broker(client, &st);

        if (r == -ECANCELED) {
                fprintf(stderr, "padctl: vfio-map cancelled; everything mapped was unmapped.\n");
                return PADCTL_EXIT_CANCELLED;
        }
        if (r < 0)
                return padctl_fail("vfio-map: mapping %s at IOVA 0: %s%s", format_bytes(b, sizeof(b), size),
                                   msg[0] ? msg : strerror(-r),
                                   !msg[0] && (r == -ENOMEM || r == -EPERM) ? " (RLIMIT_MEMLOCK too low?)" : "");
        if (!p->quiet)
                padctl_print_summary(v->target.kind == PAD_VFIO_IOMMUFD ? "vfio-map (iommufd)" : "vfio-map (type1)",
                                     size, usec, &st, pad_client_has_broker(client) > 0);
        r = pad_vfio_dma_unmap(&v->target, 0, size, &unmapped);
        if (r < 0)
                return padctl_fail("vfio-map: unmapping: %s", strerror(-r));
        if (unmapped != size)
                return padctl_fail("vfio-map: the kernel unmapped %s, expected %s",
                                   format_bytes(b, sizeof(b), unmapped), format_bytes(b2, sizeof(b2), size));
        if (!p->quiet)
                printf("  unmapped %s (%llu bytes)\n", format_bytes(b, sizeof(b), unmapped), (unsigned long long) unmapped);
        return PADCTL_EXIT_OK;
}

typedef struct VfioArgs {
        unsigned group;
        uint64_t size, page;
        bool hugetlb, iommufd, helpers_set;
        uint64_t helpers;
        int node;
} VfioArgs;

/* The command line of vfio-map: 0, or the exit status of a usage error or --help (-1). */
static int vfio_parse(Padctl *p, int argc, char **argv, VfioArgs *a) {
        enum { ARG_HUGETLB = 0x100, ARG_IOMMUFD, ARG_NODE, ARG_HELPERS };
        static const struct option options[] = {
                { "hugetlb", no_argument, NULL, ARG_HUGETLB },
                { "iommufd", no_argument, NULL, ARG_IOMMUFD },
                { "node", required_argument, NULL, ARG_NODE },
                { "helpers", required_argument, NULL, ARG_HELPERS },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd = "vfio-map";
        int c, r = 0;
        char b[32];

        *a = (VfioArgs) { .node = PAD_NODE_ANY };
        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_HUGETLB:
                        a->hugetlb = true;
                        break;
                case ARG_IOMMUFD:
                        a->iommufd = true;
                        break;
                case ARG_NODE:
                        r = padctl_parse_node(cmd, optarg, &a->node);
                        break;
                case ARG_HELPERS:
                        r = padctl_parse_uint(cmd, "--helpers", optarg, BROKER_HELPERS_MAX, &a->helpers);
                        a->helpers_set = true;
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
        if (parse_group(argv[optind], &a->group) < 0)
                return padctl_usage_error(cmd, "GROUP '%s' is neither a group number nor /dev/vfio/N", argv[optind]);
        r = padctl_parse_size(cmd, "SIZE", argv[optind + 1], &a->size);
        if (r)
                return r;
        a->page = a->hugetlb ? default_huge_page_size() : (uint64_t) sysconf(_SC_PAGESIZE);
        if (a->size == 0 || a->size % a->page)
                return padctl_usage_error(cmd, "SIZE must be a positive multiple of the %s page size (%s)",
                                          a->hugetlb ? "huge" : "base", format_bytes(b, sizeof(b), a->page));
        return 0;
}

int padctl_vfio_map(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *client = NULL;
        VfioSetup v = { .group_fd = -1, .target.fd = -1 };
        VfioArgs a;
        void *mem;
        char b[32];
        int r;

        r = vfio_parse(p, argc, argv, &a);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        v.group = a.group;

        r = a.iommufd ? iommufd_setup(&v, p->quiet) : type1_setup(&v);
        if (r) {
                vfio_setup_done(&v);
                return r;
        }
        mem = mmap(NULL, a.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (a.hugetlb ? MAP_HUGETLB : 0),
                   -1, 0);
        if (mem == MAP_FAILED) {
                r = padctl_fail("vfio-map: cannot map %s of %smemory: %s%s", format_bytes(b, sizeof(b), a.size),
                                a.hugetlb ? "huge page " : "", strerror(errno),
                                a.hugetlb && errno == ENOMEM ? " (not enough free huge pages)" : "");
                vfio_setup_done(&v);
                return r;
        }
        r = padctl_client_new(p, &client);
        if (r == 0)
                r = vfio_map_report_unmap(p, client, &v, mem, a.size, a.node,
                                          a.helpers_set ? (unsigned) a.helpers + 1 : 0);
        munmap(mem, a.size);
        vfio_setup_done(&v);
        return r;
}
