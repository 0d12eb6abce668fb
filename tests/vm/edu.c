/* edu.c: owns the vm suite's VFIO user-space driver for QEMU's edu device: opening the
 * container, group and device (type1) or /dev/iommu, an IOAS and the device cdev (iommufd;
 * Debian 12's headers lack that uAPI, so its few structures are declared here from the
 * kernel's ABI), mapping BAR0, enabling bus mastering through the config
 * space region, and running the device's DMA engine by polling its command register.
 * Register layout from QEMU's docs/specs/edu: 0x00 identification (0x010000ed for version
 * 1.0), 0x04 liveness (reads back the inverse), 0x80 DMA source, 0x88 DMA destination,
 * 0x90 DMA count, 0x98 DMA command (bit 0 start, cleared when done; bit 1 direction,
 * 0 = RAM to device, 1 = device to RAM). */
#define _GNU_SOURCE
#include "edu.h"
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/iommufd.h (Linux 6.2) and vfio.h (Linux 6.6) */
struct edu_iommu_ioas_alloc {
        uint32_t size;
        uint32_t flags;
        uint32_t out_ioas_id;
};
#define EDU_IOMMU_IOAS_ALLOC _IO(';', 0x81)

struct edu_vfio_device_bind_iommufd {
        uint32_t argsz;
        uint32_t flags;
        int32_t iommufd;
        uint32_t out_devid;
};
#define EDU_VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

struct edu_vfio_device_attach_iommufd_pt {
        uint32_t argsz;
        uint32_t flags;
        uint32_t pt_id;
};
#define EDU_VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

#define EDU_REG_ID 0x00
#define EDU_REG_ALIVE 0x04
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_COUNT 0x90
#define EDU_REG_DMA_CMD 0x98
#define EDU_DMA_START 0x1u
#define EDU_DMA_TO_RAM 0x2u

static uint32_t reg_read32(Edu *e, unsigned off) {
        return *(volatile uint32_t *) (e->bar0 + off);
}

static void reg_write32(Edu *e, unsigned off, uint32_t v) {
        *(volatile uint32_t *) (e->bar0 + off) = v;
}

static uint64_t reg_read64(Edu *e, unsigned off) {
        return *(volatile uint64_t *) (e->bar0 + off);
}

static void reg_write64(Edu *e, unsigned off, uint64_t v) {
        *(volatile uint64_t *) (e->bar0 + off) = v;
}

static int attach_group(const char *group_path, Edu *e) {
        struct vfio_group_status status = { .argsz = sizeof status };

        e->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (e->container_fd < 0)
                return -errno;
        if (ioctl(e->container_fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
                return -EPROTO;
        if (ioctl(e->container_fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
                return -EOPNOTSUPP;
        e->group_fd = open(group_path, O_RDWR | O_CLOEXEC);
        if (e->group_fd < 0)
                return -errno;
        if (ioctl(e->group_fd, VFIO_GROUP_GET_STATUS, &status) < 0)
                return -errno;
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
                return -EBUSY;
        if (ioctl(e->group_fd, VFIO_GROUP_SET_CONTAINER, &e->container_fd) < 0)
                return -errno;
        if (ioctl(e->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
                return -errno;
        return 0;
}

static int map_bar0(Edu *e) {
        struct vfio_region_info info = {
                .argsz = sizeof info,
                .index = VFIO_PCI_BAR0_REGION_INDEX,
        };
        void *p;

        if (ioctl(e->device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
                return -errno;
        if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP) || info.size < 0x100)
                return -EOPNOTSUPP;
        p = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, e->device_fd,
                 (off_t) info.offset);
        if (p == MAP_FAILED)
                return -errno;
        e->bar0 = p;
        e->bar0_size = info.size;
        return 0;
}

static int enable_bus_master(Edu *e) {
        struct vfio_region_info info = {
                .argsz = sizeof info,
                .index = VFIO_PCI_CONFIG_REGION_INDEX,
        };
        uint16_t cmd;
        off_t at;

        if (ioctl(e->device_fd, VFIO_DEVICE_GET_REGION_INFO, &info) < 0)
                return -errno;
        at = (off_t) (info.offset + PCI_COMMAND);
        if (pread(e->device_fd, &cmd, sizeof cmd, at) != sizeof cmd)
                return -EIO;
        cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        if (pwrite(e->device_fd, &cmd, sizeof cmd, at) != sizeof cmd)
                return -EIO;
        return 0;
}

int edu_open(const char *group_path, const char *device_name, Edu *e) {
        int r;

        *e = (Edu) EDU_INIT;
        r = attach_group(group_path, e);
        if (r < 0)
                return r;
        e->device_fd = ioctl(e->group_fd, VFIO_GROUP_GET_DEVICE_FD, device_name);
        if (e->device_fd < 0)
                return -errno;
        r = map_bar0(e);
        if (r < 0)
                return r;
        return enable_bus_master(e);
}

int edu_open_cdev(const char *cdev_path, Edu *e) {
        struct edu_iommu_ioas_alloc alloc = { .size = sizeof alloc };
        struct edu_vfio_device_bind_iommufd bind = { .argsz = sizeof bind };
        struct edu_vfio_device_attach_iommufd_pt attach = { .argsz = sizeof attach };
        int r;

        *e = (Edu) EDU_INIT;
        e->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
        if (e->iommufd < 0)
                return -errno;
        if (ioctl(e->iommufd, EDU_IOMMU_IOAS_ALLOC, &alloc) < 0)
                return -errno;
        e->ioas_id = alloc.out_ioas_id;
        e->device_fd = open(cdev_path, O_RDWR | O_CLOEXEC);
        if (e->device_fd < 0)
                return -errno;
        bind.iommufd = e->iommufd;
        if (ioctl(e->device_fd, EDU_VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0)
                return -errno;
        attach.pt_id = e->ioas_id;
        if (ioctl(e->device_fd, EDU_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0)
                return -errno;
        r = map_bar0(e);
        if (r < 0)
                return r;
        return enable_bus_master(e);
}

void edu_close(Edu *e) {
        if (!e)
                return;
        if (e->bar0)
                munmap((void *) e->bar0, e->bar0_size);
        if (e->device_fd >= 0)
                close(e->device_fd);
        if (e->group_fd >= 0)
                close(e->group_fd);
        if (e->iommufd >= 0)
                close(e->iommufd);
        if (e->container_fd >= 0)
                close(e->container_fd);
        *e = (Edu) EDU_INIT;
}

int edu_check_alive(Edu *e) {
        uint32_t id = reg_read32(e, EDU_REG_ID), probe = 0x5aa5c33cu;

        if ((id & 0xffffu) != 0x00edu)
                return -ENODEV;
        reg_write32(e, EDU_REG_ALIVE, probe);
        return reg_read32(e, EDU_REG_ALIVE) == ~probe ? 0 : -EIO;
}

int edu_dma(Edu *e, uint64_t iova, uint32_t buf_off, uint32_t count, bool to_device,
            unsigned timeout_ms) {
        long long deadline = fixture_now_ms() + timeout_ms;
        uint64_t dev = EDU_BUFFER_ADDR + buf_off;

        if (count == 0 || count > EDU_DMA_MAX || buf_off >= EDU_BUFFER_SIZE ||
            count >= EDU_BUFFER_SIZE - buf_off || iova >= EDU_DMA_LIMIT ||
            count > EDU_DMA_LIMIT - iova)
                return -EINVAL;
        reg_write64(e, EDU_REG_DMA_SRC, to_device ? iova : dev);
        reg_write64(e, EDU_REG_DMA_DST, to_device ? dev : iova);
        reg_write64(e, EDU_REG_DMA_COUNT, count);
        reg_write64(e, EDU_REG_DMA_CMD, EDU_DMA_START | (to_device ? 0 : EDU_DMA_TO_RAM));
        while (reg_read64(e, EDU_REG_DMA_CMD) & EDU_DMA_START) {
                if (fixture_now_ms() > deadline)
                        return -ETIMEDOUT;
                usleep(1000);
        }
        return 0;
}
