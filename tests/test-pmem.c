/* test-pmem.c: pad_pmem_init() on an ordinary file on a disk file system (/var/tmp) and on
 * a tmpfs file (/dev/shm). Every byte of the file is read back: the range holds the pattern,
 * the rest is untouched. Patterns 0 and 0xA5, odd offsets and lengths (unaligned edges go
 * through memset, the middle through streaming stores), len 0 (to the end of the file),
 * several threads, the durability path reported (msync on both: neither supports MAP_SYNC),
 * and bad input (beyond the end, a pattern that is not a byte, a read-only fd, a directory).
 * Also here, for want of a VFIO device on the build host: the argument checks of
 * pad_vfio_dma_map/unmap (the mapping itself runs in the VM suite), and the prefault helper
 * they share with hugetlb: a PROT_NONE range is an error (-EINVAL), never a touch (SIGSEGV). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "jobs-internal.h"
#include "padclient.h"

#define FILE_SIZE ((uint64_t) 9 * 1024 * 1024 + 12345)  /* not a multiple of anything */
#define FILL_BYTE 0x3c                                  /* what the file holds before */

static const char *const dirs[] = { "/var/tmp", "/dev/shm" };
#define ELEMENTS_DIRS ((int) (sizeof(dirs) / sizeof(dirs[0])))

static int make_file(const char *dir, char *path, size_t len) {
        snprintf(path, len, "%s/test-pmem-XXXXXX", dir);
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        unlink(path);

        uint8_t *buf = malloc(FILE_SIZE);
        ck_assert_ptr_nonnull(buf);
        memset(buf, FILL_BYTE, FILE_SIZE);
        ck_assert_int_eq(pwrite(fd, buf, FILE_SIZE, 0), (ssize_t) FILE_SIZE);
        free(buf);
        return fd;
}

/* Every byte in [off, off + len) is pattern, every other byte FILL_BYTE. */
static void verify(int fd, uint64_t off, uint64_t len, uint8_t pattern) {
        uint8_t *buf = malloc(FILE_SIZE);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(pread(fd, buf, FILE_SIZE, 0), (ssize_t) FILE_SIZE);
        uint64_t bad = FILE_SIZE;
        uint8_t got = 0, want = 0;
        for (uint64_t i = 0; i < FILE_SIZE && bad == FILE_SIZE; i++) {
                want = i >= off && i < off + len ? pattern : FILL_BYTE;
                if (buf[i] != want) {
                        bad = i;
                        got = buf[i];
                }
        }
        free(buf);
        ck_assert_msg(bad == FILE_SIZE, "byte %llu is 0x%02x, want 0x%02x (range %llu+%llu)",
                      (unsigned long long) bad, got, want, (unsigned long long) off,
                      (unsigned long long) len);
}

typedef struct Range {
        uint64_t off, len;      /* len 0: to the end */
        int pattern;
} Range;

static const Range ranges[] = {
        { 0, 0, 0 },
        { 0, 0, 0xA5 },
        { 1, 0, 0xA5 },                         /* odd start, to the end */
        { 4093, 3 * 1024 * 1024 + 7, 0 },       /* odd both ends, across 2 MiB edges */
        { 4096, 4 * 1024 * 1024, 0xA5 },        /* page aligned */
        { 17, 33, 0xA5 },                       /* within one cache line or two */
        { FILE_SIZE - 1, 0, 0xA5 },             /* the last byte */
        { 2 * 1024 * 1024 - 5, 10, 0 },         /* across one chunk edge */
};

START_TEST(test_fill) {
        const char *dir = dirs[_i % ELEMENTS_DIRS];
        char path[256], msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = 2, .ret_msg = msg, .ret_msg_len = sizeof(msg) };

        for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++) {
                const Range *g = &ranges[k];
                int fd = make_file(dir, path, sizeof(path));
                pad_pmem_path p = 0;
                pad_job_stats stats = {};

                int r = pad_pmem_init(NULL, fd, g->off, g->len, g->pattern, &o, &p, &stats);
                ck_assert_msg(r == 0, "%s range %zu: %s (%s)", dir, k, strerror(-r), msg);
                ck_assert_int_eq(p, PAD_PMEM_MSYNC);
                ck_assert_str_eq(pad_pmem_path_to_string(p), "msync");
                ck_assert_uint_ge(stats.chunks, 1);
                verify(fd, g->off, g->len ? g->len : FILE_SIZE - g->off, (uint8_t) g->pattern);

                struct stat st;
                ck_assert_int_eq(fstat(fd, &st), 0);
                ck_assert_uint_eq((uint64_t) st.st_size, FILE_SIZE);
                close(fd);
        }
}
END_TEST

START_TEST(test_bad_input) {
        char path[256], msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        int fd = make_file("/dev/shm", path, sizeof(path));

        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, FILE_SIZE + 1, 0, &o, NULL, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(msg, "beyond the end"));
        ck_assert_int_eq(pad_pmem_init(NULL, fd, FILE_SIZE, 0, 0, &o, NULL, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(msg, "beyond the end"));
        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, 0, 256, &o, NULL, NULL), -EINVAL);
        ck_assert_str_eq(msg, "pattern 256 is not a byte (0-255)");
        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, 0, -1, &o, NULL, NULL), -EINVAL);
        verify(fd, 0, 0, 0);    /* nothing written */
        close(fd);

        ck_assert_int_eq(pad_pmem_init(NULL, -1, 0, 0, 0, &o, NULL, NULL), -EBADF);
        fd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, 0, 0, &o, NULL, NULL), -EBADF);
        close(fd);
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, 0, 0, &o, NULL, NULL), -ENODEV);
        ck_assert_str_eq(msg, "neither a regular file nor a device-DAX device");
        close(fd);
        ck_assert_ptr_null(pad_pmem_path_to_string(0));
        ck_assert_str_eq(pad_pmem_path_to_string(PAD_PMEM_DEVDAX), "devdax");
}
END_TEST

START_TEST(test_cancel) {
        char path[256];
        pad_cancel cancel = PAD_CANCEL_INIT;
        pad_io_opts o = { .node = PAD_NODE_ANY, .cancel = &cancel };
        int fd = make_file("/dev/shm", path, sizeof(path));

        pad_cancel_request(&cancel);
        ck_assert_int_eq(pad_pmem_init(NULL, fd, 0, 0, 0xA5, &o, NULL, NULL), -ECANCELED);
        close(fd);
}
END_TEST

START_TEST(test_vfio_args) {
        char msg[256] = "";
        pad_io_opts o = { .node = PAD_NODE_ANY, .ret_msg = msg, .ret_msg_len = sizeof(msg) };
        long page = sysconf(_SC_PAGESIZE);
        uint8_t *mem = aligned_alloc((size_t) page, (size_t) page * 4);
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        uint64_t unmapped = 7;

        ck_assert_ptr_nonnull(mem);
        ck_assert_int_ge(null_fd, 0);
        for (int kind = PAD_VFIO_TYPE1; kind <= PAD_VFIO_IOMMUFD; kind++) {
                pad_vfio_target t = { .kind = kind, .fd = null_fd };

                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, 0, 0, &o, NULL), -EINVAL);
                ck_assert_ptr_nonnull(strstr(msg, "multiples of the"));
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem + 1, 0, (uint64_t) page, &o, NULL), -EINVAL);
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, 512, (uint64_t) page, &o, NULL), -EINVAL);
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, 0, (uint64_t) page + 1, &o, NULL), -EINVAL);
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, UINT64_MAX - (uint64_t) page + 1,
                                                  2 * (uint64_t) page, &o, NULL), -EINVAL);
                ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, 0, &unmapped), -EINVAL);

                /* /dev/null is no container and no iommufd. */
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, 0, (uint64_t) page * 4, &o, NULL), -ENOTTY);
                ck_assert_ptr_nonnull(strstr(msg, "is not a"));
                ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, (uint64_t) page, &unmapped), -ENOTTY);

                t.fd = -1;
                ck_assert_int_eq(pad_vfio_dma_map(NULL, &t, mem, 0, (uint64_t) page, &o, NULL), -EBADF);
                t.fd = 1000000;
                ck_assert_int_eq(pad_vfio_dma_unmap(&t, 0, (uint64_t) page, &unmapped), -EBADF);
        }
        pad_vfio_target bad = { .kind = 0, .fd = null_fd };
        ck_assert_int_eq(pad_vfio_dma_map(NULL, &bad, mem, 0, (uint64_t) page, &o, NULL), -EINVAL);
        ck_assert_int_eq(pad_vfio_dma_map(NULL, NULL, mem, 0, (uint64_t) page, &o, NULL), -EINVAL);
        ck_assert_uint_eq(unmapped, 7);
        close(null_fd);
        free(mem);
}
END_TEST

START_TEST(test_populate_write) {
        size_t len = 4u << 20;
        uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        ck_assert_int_eq(jobs_populate_write(p, len, 4096, NULL), 0);
        unsigned char vec[1024];
        ck_assert_int_eq(mincore(p, len, vec), 0);
        for (size_t i = 0; i < len / 4096; i++)
                ck_assert_int_eq(vec[i] & 1, 1);
        ck_assert_int_eq(mprotect(p + len / 2, len / 2, PROT_NONE), 0);
        ck_assert_int_eq(jobs_populate_write(p, len, 4096, NULL), -EINVAL);
        ck_assert_int_eq(munmap(p + len / 2, len / 2), 0);
        ck_assert_int_eq(jobs_populate_write(p, len, 4096, NULL), -ENOMEM);
        munmap(p, len / 2);
}
END_TEST

static Suite *pmem_suite(void) {
        Suite *s = suite_create("pmem");
        TCase *tc = tcase_create("init");

        tcase_add_loop_test(tc, test_fill, 0, ELEMENTS_DIRS);
        tcase_add_test(tc, test_bad_input);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_vfio_args);
        tcase_add_test(tc, test_populate_write);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        /* Helpers without a broker, so the fill really runs on two threads. */
        setenv("PADCLIENT_FALLBACK_HELPERS", "1", 0);
        return check_run_suite(pmem_suite());
}
