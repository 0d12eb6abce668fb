/* test-populate-bus.c: pad_mem_populate() with paddd on a private bus, linking only
 * libpadclient.so: a large range borrows helpers (brokered, granted > 0, the lease near the
 * node an mbind(2) policy names) and gives the lease back before returning (nothing in use,
 * no lease left); a small one never asks the broker (its grant counter stays); the function
 * is bound at PADCLIENT_0.4. */
#define _GNU_SOURCE
#include <padclient.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <numaif.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check-run.h"
#include "fixture.h"

#define PS 4096ULL
#define SIZE (UINT64_C(256) << 20)

static uint64_t grants(pad_client *c) {
        pad_broker_statistics *s = NULL;
        uint64_t v = 0;

        ck_assert_int_eq(pad_broker_statistics_get(c, &s, NULL, 0), 0);
        ck_assert_int_eq(pad_broker_statistics_counter(s, "grants", &v), 0);
        pad_broker_statistics_free(s);
        return v;
}

static void check_idle(pad_client *c) {
        pad_broker_status *s = NULL;

        ck_assert_int_eq(pad_broker_status_get(c, &s, NULL, 0), 0);
        ck_assert_uint_eq(s->in_use, 0);
        ck_assert_uint_eq(s->leases, 0);
        pad_broker_status_free(s);
}

static uint64_t present(const void *p, uint64_t len) {
        unsigned char *v = malloc(len / PS);
        uint64_t n = 0;

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(mincore((void *) p, len, v), 0);
        for (uint64_t i = 0; i < len / PS; i++)
                n += v[i] & 1;
        free(v);
        return n;
}

START_TEST(test_brokered) {
        Fixture f;
        pad_client *c = NULL;
        pad_job_stats st;
        char msg[256];
        pad_io_opts o = { .node = PAD_NODE_ANY, .max_threads = 3, .tag = "test-populate",
                          .ret_msg = msg, .ret_msg_len = sizeof msg };
        unsigned long node0 = 1;
        int r = fixture_start(&f, "[Broker]\nMaxHelpers=2\nMaxHelpersPerNode=2\n");

        if (r == -ENOENT) {
                printf("test-populate-bus: no dbus-daemon or paddd: skipped\n");
                exit(77);
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(pad_client_new(f.address, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 1);

        uint8_t *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ck_assert_ptr_ne(p, MAP_FAILED);
        bool bound = mbind(p, SIZE, MPOL_BIND, &node0, 2, 0) == 0;

        uint64_t before = grants(c);
        ck_assert_msg(pad_mem_populate(c, p, SIZE, 0, &o, &st) == 0, "%s", msg);
        ck_assert_int_eq(st.brokered, 1);
        ck_assert_int_eq(st.broker_error, 0);
        ck_assert_uint_gt(st.granted, 0);
        ck_assert_uint_le(st.granted, 2);
        ck_assert_uint_eq(present(p, SIZE), SIZE / PS);
        if (bound) {
                ck_assert_uint_ge(st.n_placement, 1);
                ck_assert_int_eq(st.placement_node[0], 0);
        }
        ck_assert_uint_eq(grants(c), before + 1);
        check_idle(c);

        /* Small: one madvise here, no Acquire. */
        ck_assert_int_eq(madvise(p, SIZE, MADV_DONTNEED), 0);
        ck_assert_int_eq(pad_mem_populate(c, p, 16 * PS, 0, &o, &st), 0);
        ck_assert_int_eq(st.brokered, 0);
        ck_assert_uint_eq(st.threads, 1);
        ck_assert_uint_eq(grants(c), before + 1);
        ck_assert_uint_eq(present(p, SIZE), 16);
        check_idle(c);

        munmap(p, SIZE);
        ck_assert_ptr_null(pad_client_free(c));
        fixture_stop(&f);
}
END_TEST

START_TEST(test_symbol_version) {
        ck_assert_ptr_nonnull(dlvsym(RTLD_DEFAULT, "pad_mem_populate", "PADCLIENT_0.4"));
        ck_assert_ptr_null(dlvsym(RTLD_DEFAULT, "pad_mem_populate", "PADCLIENT_0.3"));
        ck_assert_ptr_null(dlvsym(RTLD_DEFAULT, "pad_mem_populate", "PADCLIENT_0"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("populate-bus");
        TCase *tc = tcase_create("bus");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_brokered);
        tcase_add_test(tc, test_symbol_version);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
