/* edu.h: a user-space driver for QEMU's edu test device (PCI 1234:11e8) through VFIO, either
 * a type1 container with the device's group or iommufd with the device's cdev, just enough
 * for the vm suite to prove a DMA mapping is real: the file descriptors, BAR0 mapped with VFIO_DEVICE_GET_REGION_INFO + mmap, bus
 * mastering switched on, and the device's DMA engine (a 4 KiB buffer at device address
 * 0x40000, 28-bit DMA mask) driven by polling. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDU_BUFFER_ADDR 0x40000u
#define EDU_BUFFER_SIZE 4096u
#define EDU_DMA_LIMIT (UINT64_C(1) << 28)       /* the device's default DMA mask + 1 */
/* QEMU (7.2 at least) rejects a transfer that ends exactly at the buffer's end, and an
 * out-of-bounds transfer is a hardware error that kills the whole VM: keep clear of it. */
#define EDU_DMA_MAX (EDU_BUFFER_SIZE / 2)

typedef struct Edu {
        int container_fd;               /* type1 */
        int group_fd;                   /* type1 */
        int iommufd;                    /* iommufd: /dev/iommu */
        uint32_t ioas_id;               /* iommufd: the IOAS the device is attached to */
        int device_fd;
        volatile uint8_t *bar0;
        size_t bar0_size;
} Edu;

#define EDU_INIT { .container_fd = -1, .group_fd = -1, .iommufd = -1, .device_fd = -1 }

/* Opens /dev/vfio/vfio, attaches group_path (e.g. "/dev/vfio/1") to it with the type1v2
 * IOMMU, opens device_name (e.g. "0000:00:01.0"), maps BAR0 and enables bus mastering.
 * Returns 0 or a negative errno; *e is always safe to pass to edu_close(). */
int edu_open(const char *group_path, const char *device_name, Edu *e);
/* Opens /dev/iommu and allocates an IOAS, opens the device's VFIO cdev (e.g.
 * "/dev/vfio/devices/vfio0"), binds it to the iommufd (VFIO_DEVICE_BIND_IOMMUFD) and
 * attaches it to the IOAS, maps BAR0 and enables bus mastering. Same returns as edu_open(). */
int edu_open_cdev(const char *cdev_path, Edu *e);
void edu_close(Edu *e);

/* 0 if BAR0 answers with edu's identification and its liveness register inverts. */
int edu_check_alive(Edu *e);

/* Copies count bytes (at most EDU_DMA_MAX, ending before the buffer's end) between the
 * IOVA iova and the device buffer at offset buf_off: to_device copies RAM -> device.
 * Polls for completion up to timeout_ms. Returns 0, -EINVAL for a range the device would
 * refuse (checked here, before the device sees it), -ETIMEDOUT. */
int edu_dma(Edu *e, uint64_t iova, uint32_t buf_off, uint32_t count, bool to_device,
            unsigned timeout_ms);
