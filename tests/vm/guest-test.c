/* guest-test.c: owns the assertions of the vm suite, run as root inside the QEMU guest that
 * tests/vm/run.sh boots (two NUMA nodes of one CPU each, the edu device bound to vfio-pci,
 * one NVDIMM as device-DAX and one as fsdax with ext4 -o dax, 2 MiB huge pages reserved
 * on each node). tests/vm/init.sh passes the devices it set up in VM_VFIO_GROUP,
 * VM_VFIO_DEVICE, VM_DEVDAX, VM_FSDAX_DEV and VM_FSDAX_MNT; a missing one is a failure.
 * VFIO runs on both paths the library has: a type1 container with the device's group, and
 * iommufd with the device's cdev (VM_VFIO_CDEV), when the guest kernel has it; without it
 * the iommufd tests are left out with the reason on the console. Each VFIO test that
 * passes prints "guest-test: vfio-path <type1|iommufd> <test>", which init.sh sums up.
 * One real dbus-daemon and paddd (tests/fixture.c) serve every test, with per-node caps
 * that differ from what MaxHelpersPerNode alone would give, so the Nodes property and the
 * grants prove the [Node N] sections took effect. The VFIO tests drive the edu device's DMA
 * engine (tests/vm/edu.c) through the IOVAs the library mapped, so a mapping that is not
 * really in the IOMMU fails them. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <padclient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "edu.h"
#include "bus-open.h"
#include "fixture.h"
#include "check-run.h"

#define MIB (UINT64_C(1) << 20)
#define HUGEPAGE (2 * MIB)
#define VFIO_MAP_SIZE (256 * MIB)
#define DMA_TIMEOUT_MS 20000

/* The per-node default (80% of one CPU) would be 0: only the [Node N] sections give 1. */
static const char broker_config[] =
        "[Broker]\n"
        "MaxHelpers=2\n"
        "MaxHelpersPerNode=80%\n"
        "[Node 0]\n"
        "MaxHelpers=1\n"
        "[Node 1]\n"
        "MaxHelpers=1\n";

static Fixture broker;

static const char *need_env(const char *name) {
        const char *v = getenv(name);

        ck_assert_msg(v && *v, "%s is not set: tests/vm/init.sh did not set the device up", name);
        return v;
}

static void broker_start(void) {
        int r = fixture_start(&broker, broker_config);

        ck_assert_msg(r == 0, "cannot start dbus-daemon and paddd: %s", strerror(-r));
}

static void broker_stop(void) {
        fixture_stop(&broker);
}

static pad_client *client_new(void) {
        pad_client *c = NULL;

        ck_assert_int_eq(pad_client_new(broker.address, &c), 0);
        ck_assert_msg(pad_client_has_broker(c), "paddd does not answer on %s", broker.address);
        return c;
}

/* One line per test on the console, so a guest that hangs shows where. */
static void progress(const char *name) {
        fprintf(stderr, "guest-test: %s\n", name);
}

/* A VFIO test passed on path (type1|iommufd): init.sh counts these lines. */
static void path_done(const char *path, const char *test) {
        fprintf(stderr, "guest-test: vfio-path %s %s\n", path, test);
}

static unsigned long read_ulong(const char *path) {
        unsigned long v = 0;
        FILE *f = fopen(path, "re");

        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        ck_assert_msg(fscanf(f, "%lu", &v) == 1, "%s: not a number", path);
        fclose(f);
        return v;
}

/* ---- broker: topology and per-node caps -------------------------------------------- */

START_TEST(test_nodes_property) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus *bus = NULL;
        unsigned cpus, max, in_use, n = 0, max_helpers = 0;
        int node, r;

        progress("nodes_property");

        ck_assert_int_ge(bus_open_spec(broker.address, NULL, &bus), 0);

        r = sd_bus_get_property_trivial(bus, BROKER_BUS_NAME, BROKER_PATH,
                                        BROKER_INTERFACE, "MaxHelpers", &error, 'u',
                                        &max_helpers);
        ck_assert_msg(r >= 0, "MaxHelpers: %s", error.message ? error.message : strerror(-r));
        ck_assert_uint_eq(max_helpers, 2);

        r = sd_bus_get_property(bus, BROKER_BUS_NAME, BROKER_PATH,
                                BROKER_INTERFACE, "Nodes", &error, &reply, "a(iuuu)");
        ck_assert_msg(r >= 0, "Nodes: %s", error.message ? error.message : strerror(-r));
        ck_assert_int_gt(sd_bus_message_enter_container(reply, 'a', "(iuuu)"), 0);
        while ((r = sd_bus_message_read(reply, "(iuuu)", &node, &cpus, &max, &in_use)) > 0) {
                ck_assert_msg(node == (int) n, "entry %u is node %d", n, node);
                ck_assert_uint_eq(cpus, 1);
                ck_assert_uint_eq(max, 1);
                ck_assert_uint_eq(in_use, 0);
                n++;
        }
        ck_assert_int_ge(r, 0);
        ck_assert_uint_eq(n, 2);

        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        sd_bus_flush_close_unref(bus);
}
END_TEST

static unsigned placement_on(const pad_lease *l, int node) {
        int nodes[PAD_PLACEMENT_MAX];
        unsigned helpers[PAD_PLACEMENT_MAX], n, total = 0;

        n = pad_lease_placement(l, nodes, helpers, PAD_PLACEMENT_MAX);
        for (unsigned i = 0; i < n && i < PAD_PLACEMENT_MAX; i++)
                if (nodes[i] == node)
                        total += helpers[i];
        return total;
}

START_TEST(test_node_caps) {
        pad_acquire_opts strict = { .strict_node = 1 };
        pad_lease *a = NULL, *b = NULL, *spill = NULL;
        pad_client *c = client_new();

        progress("node_caps");

        /* Node 0 holds one helper: a strict request for two gets one, a second gets none. */
        ck_assert_int_eq(pad_client_acquire(c, 2, 0, &strict, &a), 0);
        ck_assert_uint_eq(pad_lease_granted(a), 1);
        ck_assert_uint_eq(placement_on(a, 0), 1);
        ck_assert_int_eq(pad_client_acquire(c, 1, 0, &strict, &b), 0);
        ck_assert_uint_eq(pad_lease_granted(b), 0);
        b = pad_lease_free(b);
        a = pad_lease_free(a);

        /* Without strict_node, four wanted on node 0: one there, one spilled to node 1, and
         * the machine cap of two stops the rest. */
        ck_assert_int_eq(pad_client_acquire(c, 4, 0, NULL, &spill), 0);
        ck_assert_uint_eq(pad_lease_granted(spill), 2);
        ck_assert_uint_eq(placement_on(spill, 0), 1);
        ck_assert_uint_eq(placement_on(spill, 1), 1);
        spill = pad_lease_free(spill);
        pad_client_free(c);
}
END_TEST

/* ---- VFIO type1: the library's map is real for the edu device ------------------------- */

static void edu_open_or_fail(Edu *e) {
        int r = edu_open(need_env("VM_VFIO_GROUP"), need_env("VM_VFIO_DEVICE"), e);

        ck_assert_msg(r == 0, "edu through VFIO: %s", strerror(-r));
        ck_assert_int_eq(edu_check_alive(e), 0);
}

static void *map_anon(uint64_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_msg(p != MAP_FAILED, "mmap %llu: %s", (unsigned long long) size, strerror(errno));
        return p;
}

/* Index of the first byte of [p, p + len) that is not want, or len. (A check per byte
 * would be far too slow: every Check assertion also records its location.) */
static uint64_t first_other(const uint8_t *p, uint64_t len, uint8_t want) {
        uint64_t i = 0;

        while (i < len && p[i] == want)
                i++;
        return i;
}

static void assert_bytes(const uint8_t *p, uint64_t len, uint8_t want, const char *what) {
        uint64_t i = first_other(p, len, want);

        ck_assert_msg(i == len, "%s: byte %llu of %llu is 0x%02x, not 0x%02x", what,
                      (unsigned long long) i, (unsigned long long) len, p[i], want);
}

static void assert_zero(const uint8_t *p, size_t len, const char *what) {
        assert_bytes(p, len, 0, what);
}

/* The device reads a page at src_off of the mapping and writes it back at dst_off. */
static void assert_edu_copies(Edu *e, uint8_t *buf, uint64_t iova, uint64_t src_off,
                              uint64_t dst_off, uint8_t seed) {
        uint8_t *src = buf + src_off, *dst = buf + dst_off;

        for (unsigned i = 0; i < EDU_DMA_MAX; i++)
                src[i] = (uint8_t) (seed + i * 7u);
        memset(dst, 0, EDU_DMA_MAX);
        ck_assert_int_eq(edu_dma(e, iova + src_off, 0, EDU_DMA_MAX, true, DMA_TIMEOUT_MS), 0);
        ck_assert_int_eq(edu_dma(e, iova + dst_off, 0, EDU_DMA_MAX, false, DMA_TIMEOUT_MS), 0);
        ck_assert_msg(memcmp(src, dst, EDU_DMA_MAX) == 0,
                      "edu's DMA copy from IOVA 0x%llx to 0x%llx does not match",
                      (unsigned long long) (iova + src_off), (unsigned long long) (iova + dst_off));
}

/* A device write to iova + off must not reach buf + off: nothing is mapped there. The
 * device buffer must hold non-zero data (a previous copy). */
static void assert_edu_blocked(Edu *e, uint8_t *buf, uint64_t iova, uint64_t off) {
        memset(buf + off, 0, EDU_DMA_MAX);
        ck_assert_int_eq(edu_dma(e, iova + off, 0, EDU_DMA_MAX, false, DMA_TIMEOUT_MS), 0);
        assert_zero(buf + off, EDU_DMA_MAX, "a device write to an unmapped IOVA");
}

/* Nothing is mapped in [iova, iova + size): type1 unmaps 0 bytes of it, iommufd refuses to
 * unmap a range with nothing in it (ENOENT). */
static void assert_nothing_mapped(const pad_vfio_target *t, uint64_t iova, uint64_t size) {
        uint64_t unmapped = 0;
        int r = pad_vfio_dma_unmap(t, iova, size, &unmapped), want;

        want = t->kind == PAD_VFIO_IOMMUFD ? -ENOENT : 0;
        ck_assert_msg(r == want && unmapped == 0, "IOVA 0x%llx+0x%llx should hold nothing, "
                      "but unmapping it returned %d (%llu bytes)", (unsigned long long) iova,
                      (unsigned long long) size, r, (unsigned long long) unmapped);
}

/* 256 MiB mapped by the library on three threads through target t of the open edu e: the
 * threads really ran, the device copies through the mapping what the CPU wrote, unmap
 * returns the size and leaves nothing. */
static void check_map_256m(Edu *e, const pad_vfio_target *t, const char *path) {
        pad_io_opts opts = { .node = PAD_NODE_ANY, .max_threads = 3, .tag = "vm-vfio" };
        pad_job_stats stats = { 0 };
        uint64_t unmapped = 0;
        pad_client *c = client_new();
        uint8_t *buf = map_anon(VFIO_MAP_SIZE);

        ck_assert_int_eq(pad_vfio_dma_map(c, t, buf, 0, VFIO_MAP_SIZE, &opts, &stats), 0);
        ck_assert_int_eq(stats.brokered, 1);
        /* Both helpers were lent, and the job (type1: the prefault; iommufd: the IOAS_MAP
         * calls themselves) really ran in parallel: at least one helper took a chunk
         * besides the caller (all three usually do). */
        ck_assert_uint_eq(stats.granted, 2);
        ck_assert_uint_ge(stats.threads, 2);
        fprintf(stderr, "guest-test: %s: 256 MiB mapped: %u helpers granted, "
                "%u threads ran %llu chunks\n", path, stats.granted, stats.threads,
                (unsigned long long) stats.chunks);

        /* Both ends deep inside the mapping, on different pages and in different halves
         * (iommufd: in different chunks, 64 MiB each). */
        assert_edu_copies(e, buf, 0, 200 * MIB + 5 * 4096, 37 * MIB + 3 * 4096, 0x11);
        assert_edu_copies(e, buf, 0, VFIO_MAP_SIZE - 4096, 0, 0x5c);

        ck_assert_int_eq(pad_vfio_dma_unmap(t, 0, VFIO_MAP_SIZE, &unmapped), 0);
        ck_assert_uint_eq(unmapped, VFIO_MAP_SIZE);
        /* Nothing is left behind to unmap, and the device can no longer write there (the
         * IOMMU faults the write; its buffer still holds the last pattern). */
        assert_nothing_mapped(t, 0, VFIO_MAP_SIZE);
        assert_edu_blocked(e, buf, 0, 64 * MIB);

        munmap(buf, VFIO_MAP_SIZE);
        pad_client_free(c);
}

START_TEST(test_vfio_map_256m) {
        Edu e;

        progress("vfio_map_256m");
        edu_open_or_fail(&e);
        pad_vfio_target t = { .kind = PAD_VFIO_TYPE1, .fd = e.container_fd };
        check_map_256m(&e, &t, "type1");
        edu_close(&e);
        path_done("type1", "vfio_map_256m");
}
END_TEST

START_TEST(test_vfio_failure_unwinds) {
        const uint64_t size = 64 * MIB, bad = 8 * MIB, iova = 16 * MIB;
        const uint64_t scratch_size = 2 * MIB, scratch_iova = 128 * MIB;
        pad_io_opts opts = { .node = PAD_NODE_ANY, .max_threads = 3, .tag = "vm-vfio-fail" };
        uint64_t unmapped = 1;
        pad_client *c = client_new();
        uint8_t *buf, *scratch;
        Edu e;
        int r;

        progress(_i == 0 ? "vfio_failure_unwinds (PROT_NONE tail)"
                         : "vfio_failure_unwinds (unmapped tail)");

        edu_open_or_fail(&e);
        pad_vfio_target t = { .kind = PAD_VFIO_TYPE1, .fd = e.container_fd };
        /* A small working mapping elsewhere loads the device buffer with a pattern. */
        scratch = map_anon(scratch_size);
        r = pad_vfio_dma_map(c, &t, scratch, scratch_iova, scratch_size, &opts, NULL);
        ck_assert_int_eq(r, 0);
        assert_edu_copies(&e, scratch, scratch_iova, 4096, 3 * 4096, 0x3d);

        buf = map_anon(size);
        /* The tail cannot be pinned (loop 0: PROT_NONE, 1: not mapped in the process): the
         * map fails part-way through the range. */
        if (_i == 0)
                ck_assert_int_eq(mprotect(buf + size - bad, bad, PROT_NONE), 0);
        else
                ck_assert_int_eq(munmap(buf + size - bad, bad), 0);
        r = pad_vfio_dma_map(c, &t, buf, iova, size, &opts, NULL);
        ck_assert_msg(r < 0, "a map over an unusable tail returned %d", r);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, iova, size, &unmapped), 0);
        ck_assert_msg(unmapped == 0, "%llu bytes were left mapped after the failure",
                      (unsigned long long) unmapped);
        assert_edu_blocked(&e, buf, iova, 0);
        assert_edu_blocked(&e, buf, iova, size / 2);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, scratch_iova, scratch_size, &unmapped), 0);
        ck_assert_uint_eq(unmapped, scratch_size);
        munmap(scratch, scratch_size);

        /* The same IOVA range maps again once the memory is usable, and it works. */
        if (_i == 0)
                ck_assert_int_eq(mprotect(buf + size - bad, bad, PROT_READ | PROT_WRITE), 0);
        else
                ck_assert(mmap(buf + size - bad, bad, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == buf + size - bad);
        ck_assert_int_eq(pad_vfio_dma_map(c, &t, buf, iova, size, &opts, NULL), 0);
        assert_edu_copies(&e, buf, iova, size - 4096, 4096, 0x77);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, iova, size, &unmapped), 0);
        ck_assert_uint_eq(unmapped, size);

        munmap(buf, size);
        edu_close(&e);
        pad_client_free(c);
        path_done("type1", _i == 0 ? "vfio_failure_unwinds/prot_none"
                                   : "vfio_failure_unwinds/unmapped");
}
END_TEST

/* ---- pmem: device-DAX and ext4 -o dax with MAP_SYNC ---------------------------------- */

START_TEST(test_pmem_devdax) {
        const uint64_t off = 2 * MIB, len = 32 * MIB, span = off + len + 2 * MIB;
        pad_io_opts opts = { .node = PAD_NODE_ANY, .tag = "vm-devdax" };
        pad_pmem_path path = 0;
        const char *dev = need_env("VM_DEVDAX");
        pad_client *c = client_new();
        uint8_t *p;
        int fd;

        progress("pmem_devdax");

        fd = open(dev, O_RDWR | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "%s: %s", dev, strerror(errno));
        ck_assert_int_eq(pad_pmem_init(c, fd, off, len, 0xa5, &opts, &path, NULL), 0);
        ck_assert_int_eq(path, PAD_PMEM_DEVDAX);
        close(fd);

        /* Re-open: the pattern is in the device, and only in the range asked for. */
        fd = open(dev, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        p = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, 0);
        ck_assert_msg(p != MAP_FAILED, "mmap %s: %s", dev, strerror(errno));
        assert_bytes(p, off, 0, "before the range");
        assert_bytes(p + off, len, 0xa5, "the range");
        assert_bytes(p + off + len, span - off - len, 0, "after the range");
        munmap(p, span);
        close(fd);
        pad_client_free(c);
}
END_TEST

static void remount_dax(const char *dev, const char *mnt) {
        ck_assert_msg(umount2(mnt, 0) == 0, "umount %s: %s", mnt, strerror(errno));
        ck_assert_msg(mount(dev, mnt, "ext4", 0, "dax=always") == 0, "mount %s: %s", dev,
                      strerror(errno));
}

START_TEST(test_pmem_fsdax_map_sync) {
        const uint64_t size = 24 * MIB;
        pad_io_opts opts = { .node = PAD_NODE_ANY, .tag = "vm-fsdax" };
        const char *dev = need_env("VM_FSDAX_DEV"), *mnt = need_env("VM_FSDAX_MNT");
        pad_pmem_path path = 0;
        char file[256];
        struct stat st;
        uint8_t *buf;
        pad_client *c = client_new();
        int fd;

        progress("pmem_fsdax_map_sync");

        snprintf(file, sizeof file, "%s/init.bin", mnt);
        fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_msg(fd >= 0, "%s: %s", file, strerror(errno));
        ck_assert_int_eq(ftruncate(fd, (off_t) size), 0);
        ck_assert_int_eq(pad_pmem_init(c, fd, 0, 0, 0x5a, &opts, &path, NULL), 0);
        ck_assert_int_eq(path, PAD_PMEM_MAP_SYNC);
        close(fd);

        remount_dax(dev, mnt);
        fd = open(file, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "%s after remount: %s", file, strerror(errno));
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) size);
        buf = malloc(size);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(pread(fd, buf, size, 0), (ssize_t) size);
        assert_bytes(buf, size, 0x5a, "after remount");
        free(buf);
        close(fd);
        unlink(file);
        pad_client_free(c);
}
END_TEST

/* ---- hugetlb: fallocate with a node puts every page there ----------------------------- */

static unsigned long free_hugepages(int node) {
        char path[128];

        snprintf(path, sizeof path,
                 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", node);
        return read_ulong(path);
}

START_TEST(test_hugetlb_node) {
        const int node = _i, other = 1 - _i;
        const unsigned long pages = 8;
        pad_io_opts opts = { .node = node, .max_threads = 2, .tag = "vm-hugetlb" };
        unsigned long before = free_hugepages(node), before_other = free_hugepages(other);
        pad_client *c = client_new();
        char file[64];
        struct stat st;
        int fd;

        progress(_i == 0 ? "hugetlb_node (0)" : "hugetlb_node (1)");

        ck_assert_uint_ge(before, pages);
        snprintf(file, sizeof file, "/dev/hugepages/vm-node%d", node);
        fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_msg(fd >= 0, "%s: %s", file, strerror(errno));
        ck_assert_int_eq(pad_hugetlb_fallocate(c, fd, 0, 0, pages * HUGEPAGE, &opts, NULL), 0);
        ck_assert_uint_eq(free_hugepages(node), before - pages);
        ck_assert_uint_eq(free_hugepages(other), before_other);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, (off_t) (pages * HUGEPAGE));

        close(fd);
        ck_assert_int_eq(unlink(file), 0);
        ck_assert_uint_eq(free_hugepages(node), before);
        pad_client_free(c);
}
END_TEST

START_TEST(test_hugetlb_node_short) {
        const int node = 1;
        unsigned long before = free_hugepages(0), before1 = free_hugepages(1);
        pad_io_opts opts = { .node = node, .max_threads = 2, .tag = "vm-hugetlb-short" };
        pad_client *c = client_new();
        struct stat st;
        int fd, r;

        progress("hugetlb_node_short");

        /* More than node 1 holds (node 0 has pages to spare, but they are not on node 1). */
        fd = open("/dev/hugepages/vm-short", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        r = pad_hugetlb_fallocate(c, fd, 0, 0, (before1 + 4) * HUGEPAGE, &opts, NULL);
        ck_assert_msg(r < 0, "fallocate of %lu pages on a node with %lu free returned %d",
                      before1 + 4, before1, r);
        ck_assert_uint_eq(free_hugepages(0), before);
        ck_assert_uint_eq(free_hugepages(1), before1);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
        close(fd);
        unlink("/dev/hugepages/vm-short");
        pad_client_free(c);
}
END_TEST

/* ---- VFIO iommufd: the device cdev bound to an IOAS ----------------------------------- */

/* include/uapi/linux/iommufd.h (Linux 6.2): the one-call baseline of the timing. */
struct guest_iommu_ioas_map {
        uint32_t size;
        uint32_t flags;
        uint32_t ioas_id;
        uint32_t reserved;
        uint64_t user_va;
        uint64_t length;
        uint64_t iova;
};
#define GUEST_IOMMU_IOAS_MAP _IO(';', 0x85)
#define GUEST_IOAS_MAP_FIXED_IOVA_RW ((1u << 0) | (1u << 1) | (1u << 2))

static void edu_open_cdev_or_fail(Edu *e) {
        const char *cdev = need_env("VM_VFIO_CDEV");
        int r = edu_open_cdev(cdev, e);

        ck_assert_msg(r == 0, "edu through %s and /dev/iommu: %s", cdev, strerror(-r));
        ck_assert_int_eq(edu_check_alive(e), 0);
}

START_TEST(test_iommufd_map_256m) {
        Edu e;

        progress("iommufd_map_256m");
        edu_open_cdev_or_fail(&e);
        pad_vfio_target t = { .kind = PAD_VFIO_IOMMUFD, .fd = e.iommufd, .ioas_id = e.ioas_id };
        check_map_256m(&e, &t, "iommufd");
        edu_close(&e);
        path_done("iommufd", "iommufd_map_256m");
}
END_TEST

START_TEST(test_iommufd_failure_unwinds) {
        /* Three chunks of 64 MiB on two threads: the third chunk, whose end collides with a
         * mapping already there, is only taken once one of the first two is mapped, so the
         * failure comes part-way and the library has chunks of its own to take back. */
        const uint64_t size = 192 * MIB, taken = 2 * MIB, taken_iova = size - taken;
        pad_io_opts opts = { .node = PAD_NODE_ANY, .max_threads = 2, .tag = "vm-iommufd-fail" };
        pad_job_stats stats = { 0 };
        uint64_t unmapped = 0;
        pad_client *c = client_new();
        uint8_t *buf, *scratch;
        Edu e;
        int r;

        progress("iommufd_failure_unwinds");

        edu_open_cdev_or_fail(&e);
        pad_vfio_target t = { .kind = PAD_VFIO_IOMMUFD, .fd = e.iommufd, .ioas_id = e.ioas_id };
        scratch = map_anon(taken);
        ck_assert_int_eq(pad_vfio_dma_map(c, &t, scratch, taken_iova, taken, &opts, NULL), 0);
        /* Loads the device buffer with a pattern, for the blocked-write checks. */
        assert_edu_copies(&e, scratch, taken_iova, 4096, 3 * 4096, 0x4d);

        buf = map_anon(size);
        r = pad_vfio_dma_map(c, &t, buf, 0, size, &opts, &stats);
        ck_assert_msg(r == -EEXIST, "a map over a taken IOVA range returned %d, not -EEXIST", r);
        /* Chunks are handed out in order and counted when taken: all three were, so the
         * first two (which collide with nothing) were mapped before the failure. */
        ck_assert_msg(stats.chunks == 3, "%llu chunks taken, not 3: the failure did not "
                      "come part-way", (unsigned long long) stats.chunks);
        fprintf(stderr, "guest-test: iommufd: the map over a taken range failed (%s) after "
                "%llu chunks on %u threads\n", strerror(-r), (unsigned long long) stats.chunks,
                stats.threads);
        /* Nothing of the failed map is left, the mapping that was there still works. */
        assert_nothing_mapped(&t, 0, taken_iova);
        assert_edu_blocked(&e, buf, 0, 0);
        assert_edu_blocked(&e, buf, 0, 64 * MIB + 4096);
        assert_edu_blocked(&e, buf, 0, 128 * MIB + 8192);
        assert_edu_copies(&e, scratch, taken_iova, 2 * 4096, 0, 0x5e);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, taken_iova, taken, &unmapped), 0);
        ck_assert_uint_eq(unmapped, taken);
        munmap(scratch, taken);

        /* With the range free, the same map succeeds and the device sees it. */
        ck_assert_int_eq(pad_vfio_dma_map(c, &t, buf, 0, size, &opts, NULL), 0);
        assert_edu_copies(&e, buf, 0, size - 4096, 4096, 0x87);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, size, &unmapped), 0);
        ck_assert_uint_eq(unmapped, size);

        munmap(buf, size);
        edu_close(&e);
        pad_client_free(c);
        path_done("iommufd", "iommufd_failure_unwinds");
}
END_TEST

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* For the record: one IOAS_MAP of the whole range against the library's parallel map, same
 * size, fresh memory each, in one run. Under TCG the vCPUs are host threads shared with
 * everything else on the host: the ratio is a sanity check, not a benchmark. */
START_TEST(test_iommufd_timing) {
        pad_io_opts opts = { .node = PAD_NODE_ANY, .max_threads = 3, .tag = "vm-iommufd-time" };
        pad_job_stats stats = { 0 };
        uint64_t unmapped = 0;
        double t0, one, par;
        pad_client *c = client_new();
        uint8_t *buf;
        Edu e;

        progress("iommufd_timing");

        edu_open_cdev_or_fail(&e);
        pad_vfio_target t = { .kind = PAD_VFIO_IOMMUFD, .fd = e.iommufd, .ioas_id = e.ioas_id };

        /* Warm up: the host faults in guest memory on its first touch. */
        buf = map_anon(VFIO_MAP_SIZE);
        memset(buf, 1, VFIO_MAP_SIZE);
        munmap(buf, VFIO_MAP_SIZE);

        buf = map_anon(VFIO_MAP_SIZE);
        struct guest_iommu_ioas_map m = {
                .size = sizeof m,
                .flags = GUEST_IOAS_MAP_FIXED_IOVA_RW,
                .ioas_id = e.ioas_id,
                .user_va = (uintptr_t) buf,
                .length = VFIO_MAP_SIZE,
                .iova = 0,
        };
        t0 = now_sec();
        ck_assert_msg(ioctl(e.iommufd, GUEST_IOMMU_IOAS_MAP, &m) == 0, "IOMMU_IOAS_MAP: %s",
                      strerror(errno));
        one = now_sec() - t0;
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, VFIO_MAP_SIZE, &unmapped), 0);
        ck_assert_uint_eq(unmapped, VFIO_MAP_SIZE);
        munmap(buf, VFIO_MAP_SIZE);

        buf = map_anon(VFIO_MAP_SIZE);
        t0 = now_sec();
        ck_assert_int_eq(pad_vfio_dma_map(c, &t, buf, 0, VFIO_MAP_SIZE, &opts, &stats), 0);
        par = now_sec() - t0;
        ck_assert_uint_ge(stats.threads, 2);
        assert_edu_copies(&e, buf, 0, 100 * MIB, 3 * 4096, 0x99);
        ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, VFIO_MAP_SIZE, &unmapped), 0);
        ck_assert_uint_eq(unmapped, VFIO_MAP_SIZE);
        munmap(buf, VFIO_MAP_SIZE);

        fprintf(stderr, "guest-test: iommufd timing, 256 MiB of fresh memory: one IOAS_MAP "
                "%.3f s, parallel map on %u threads (%llu chunks) %.3f s: %.2fx "
                "(TCG: a sanity ratio only)\n", one, stats.threads,
                (unsigned long long) stats.chunks, par, one / par);
        edu_close(&e);
        pad_client_free(c);
        path_done("iommufd", "iommufd_timing");
}
END_TEST

/* ---- padctl: the CLI's VFIO diagnostic on the real device ------------------------------ */

/* Runs padctl --bus <broker> --quiet args...; returns its exit status (-1: killed). */
static int run_padctl(const char *const *args) {
        const char *argv[16] = { need_env("PADCTL_BIN"), "--bus", broker.address, "--quiet" };
        size_t n = 4;
        int status;
        pid_t pid;

        for (; *args && n < 15; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_padctl_vfio_map) {
        const char *group = need_env("VM_VFIO_GROUP");
        const char *ok[] = { "vfio-map", group, "64M", NULL };
        const char *missing[] = { "vfio-map", "/dev/vfio/999", "64M", NULL };

        progress("padctl_vfio_map");
        ck_assert_int_eq(run_padctl(ok), 0);
        ck_assert_int_eq(run_padctl(missing), 1);
        path_done("type1", "padctl_vfio_map");
}
END_TEST

START_TEST(test_padctl_vfio_map_iommufd) {
        const char *group = need_env("VM_VFIO_GROUP"), *dev = need_env("VM_VFIO_DEVICE");
        const char *ok[] = { "vfio-map", "--iommufd", group, "64M", NULL };
        const char *missing[] = { "vfio-map", "--iommufd", "/dev/vfio/999", "64M", NULL };
        char path[256];

        progress("padctl_vfio_map_iommufd");
        /* padctl binds the group's devices through their cdevs: edu must have one, or the
         * map would go into an IOAS with no device attached. */
        need_env("VM_VFIO_CDEV");
        snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vfio-dev", dev);
        ck_assert_msg(access(path, F_OK) == 0, "%s: %s", path, strerror(errno));
        ck_assert_int_eq(run_padctl(ok), 0);
        ck_assert_int_eq(run_padctl(missing), 1);
        path_done("iommufd", "padctl_vfio_map_iommufd");
}
END_TEST

/* Why the iommufd tests cannot run in this guest, or NULL. */
static const char *iommufd_missing(void) {
        const char *cdev = getenv("VM_VFIO_CDEV");

        if (access("/dev/iommu", F_OK) < 0)
                return "no /dev/iommu: the guest kernel has no IOMMUFD";
        if (!cdev || !*cdev)
                return "edu has no VFIO device cdev: the guest kernel has no VFIO_DEVICE_CDEV";
        return NULL;
}

static Suite *vm_suite(void) {
        Suite *s = suite_create("vm");
        TCase *tc;

        tc = tcase_create("broker");
        tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
        tcase_add_test(tc, test_nodes_property);
        tcase_add_test(tc, test_node_caps);
        suite_add_tcase(s, tc);

        tc = tcase_create("vfio");
        tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_vfio_map_256m);
        tcase_add_loop_test(tc, test_vfio_failure_unwinds, 0, 2);
        suite_add_tcase(s, tc);

        const char *why = iommufd_missing();
        if (why) {
                fprintf(stderr, "guest-test: iommufd tests skipped: %s\n", why);
        } else {
                tc = tcase_create("iommufd");
                tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
                tcase_set_timeout(tc, 180);
                tcase_add_test(tc, test_iommufd_map_256m);
                tcase_add_test(tc, test_iommufd_failure_unwinds);
                tcase_add_test(tc, test_iommufd_timing);
                tcase_add_test(tc, test_padctl_vfio_map_iommufd);
                suite_add_tcase(s, tc);
        }

        tc = tcase_create("padctl");
        tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_padctl_vfio_map);
        suite_add_tcase(s, tc);

        tc = tcase_create("pmem");
        tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_pmem_devdax);
        tcase_add_test(tc, test_pmem_fsdax_map_sync);
        suite_add_tcase(s, tc);

        tc = tcase_create("hugetlb");
        tcase_add_unchecked_fixture(tc, broker_start, broker_stop);
        tcase_add_loop_test(tc, test_hugetlb_node, 0, 2);
        tcase_add_test(tc, test_hugetlb_node_short);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "guest-test: runs as root inside the vm suite's guest only\n");
                return 77;
        }
        return check_run_suite(vm_suite());
}
