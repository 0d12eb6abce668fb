/* test-public-api.c: what a program sees linking only libpadclient.so and <padclient.h>:
 * jobs with and without a broker, a lease acquired, shrunk and freed, the broker's
 * administration, its statistics and change watch, cancellation, and the documented argument errors. Nothing here may
 * include a private header of the project but the test fixture (plain POSIX, its own
 * object). */
#define _GNU_SOURCE
#include <padclient.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "fixture.h"

#define UNITS 5000

static atomic_uint counts[UNITS];

static int count_fn(uint64_t s, uint64_t e, void *arg) {
        uint64_t base = *(uint64_t *) arg;

        if (s < base || e > base + UNITS || s >= e)
                return -ERANGE;
        for (uint64_t i = s; i < e; i++)
                atomic_fetch_add(&counts[i - base], 1);
        return 0;
}

static void run_and_check(pad_client *c, unsigned max_threads, pad_job_stats *st) {
        uint64_t base = 1000000;
        pad_job job = {
                .thread_fn = count_fn, .arg = &base, .start = base, .size = UNITS, .align = 5,
                .min_chunk = 50, .max_threads = max_threads, .node = PAD_NODE_ANY,
                .tag = "public-api",
        };
        unsigned wrong = 0;

        memset(counts, 0, sizeof counts);
        ck_assert_int_eq(pad_job_run(c, &job, st), 0);
        for (unsigned i = 0; i < UNITS; i++)
                wrong += atomic_load(&counts[i]) != 1;
        ck_assert_uint_eq(wrong, 0);
        ck_assert_uint_ge(st->chunks, 1);
        ck_assert_uint_ge(st->threads, 1);
        ck_assert_uint_le(st->threads, max_threads);
}

START_TEST(test_without_broker) {
        pad_job_stats st;
        pad_cancel cancel = PAD_CANCEL_INIT;
        uint64_t base = 0;
        pad_job job = { .thread_fn = count_fn, .arg = &base, .size = 10, .cancel = &cancel };

        ck_assert_int_eq(setenv("PADCLIENT_FALLBACK_HELPERS", "1", 1), 0);
        run_and_check(NULL, 4, &st);
        ck_assert_int_eq(st.brokered, 0);
        ck_assert_uint_eq(st.granted, 1);

        pad_cancel_request(&cancel);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -ECANCELED);
        pad_cancel_reset(&cancel);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), 0);
        job.thread_fn = NULL;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EINVAL);
        ck_assert_int_eq(pad_client_new("nonsense", &(pad_client *) { NULL }), -EINVAL);
}
END_TEST

/* The administration surface, with one lease of one helper held. */
static void check_admin(pad_client *c, const pad_lease *l) {
        pad_broker_status *s = NULL;
        pad_lease_list *list = NULL;
        char msg[256];

        ck_assert_int_eq(pad_client_broker_error(c, msg, sizeof msg), 0);
        ck_assert_ptr_nonnull(pad_client_bus(c));
        ck_assert_int_eq(pad_broker_status_get(c, &s, msg, sizeof msg), 0);
        ck_assert_uint_eq(s->max_helpers, 2);
        ck_assert_uint_eq(s->in_use, 1);
        ck_assert_uint_eq(s->leases, 1);
        ck_assert_uint_ge(s->n_nodes, 1);
        ck_assert_ptr_null(pad_broker_status_free(s));
        ck_assert_int_eq(pad_broker_list_leases(c, &list, msg, sizeof msg), 0);
        ck_assert_uint_eq(list->n, 1);
        ck_assert_str_eq(list->leases[0]->path, pad_lease_path(l));
        ck_assert_uint_eq(list->leases[0]->granted, 1);
        ck_assert_ptr_null(pad_lease_list_free(list));
        ck_assert_int_eq(pad_broker_set_quota(c, PAD_NODE_ANY, 3, msg, sizeof msg), 0);
        ck_assert_int_eq(pad_broker_status_get(c, &s, NULL, 0), 0);
        ck_assert_uint_eq(s->max_helpers, 3);
        s = pad_broker_status_free(s);
        ck_assert_int_eq(pad_broker_reload(c, msg, sizeof msg), 0);
        ck_assert_int_eq(pad_broker_status_get(c, &s, NULL, 0), 0);
        ck_assert_uint_eq(s->max_helpers, 2);   /* the reload put the config's quota back */
        pad_broker_status_free(s);
        ck_assert_int_eq(pad_broker_status_get(NULL, &s, NULL, 0), -EINVAL);
}

static uint64_t grants_now(pad_client *c) {
        pad_broker_statistics *s = NULL;
        uint64_t v = 0;

        ck_assert_int_eq(pad_broker_statistics_get(c, &s, NULL, 0), 0);
        ck_assert_uint_ge(s->n_counters, 1);
        ck_assert_int_eq(pad_broker_statistics_counter(s, "grants", &v), 0);
        pad_broker_statistics_free(s);
        return v;
}

/* One more grant: the grants counter goes up by one, and the watch tells of it. */
static void check_stats_watch(pad_client *c) {
        pad_broker_watch *w = NULL;
        pad_lease *l = NULL;
        uint64_t before = grants_now(c);
        struct pollfd p;
        int r = 0;

        ck_assert_uint_ge(before, 1);
        ck_assert_int_eq(pad_broker_watch_new(c, &w, NULL, 0), 0);
        /* paddd coalesces its signals over 20 ms and compares with what it last said: let a
         * signal for the changes before this one go out first (quiet for 300 ms, within 10 s),
         * or a release just before and this grant would cancel out. */
        for (int quiet = 0, i = 0; quiet < 3 && i < 100; i++) {
                p = (struct pollfd) { .fd = pad_broker_watch_get_fd(w),
                                      .events = (short) pad_broker_watch_get_events(w) };
                ck_assert_int_ge(poll(&p, 1, 100), 0);
                quiet = pad_broker_watch_process(w) == 0 ? quiet + 1 : 0;
        }
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &l), 0);
        ck_assert_uint_eq(grants_now(c), before + 1);
        for (int i = 0; i < 100 && r == 0; i++) {
                p = (struct pollfd) { .fd = pad_broker_watch_get_fd(w),
                                      .events = (short) pad_broker_watch_get_events(w) };
                ck_assert_int_ge(poll(&p, 1, 100), 0);
                r = pad_broker_watch_process(w);
        }
        ck_assert_int_eq(r, 1);
        pad_lease_free(l);
        ck_assert_ptr_null(pad_broker_watch_free(w));
        ck_assert_int_eq(pad_broker_watch_new(NULL, &w, NULL, 0), -EINVAL);
}

START_TEST(test_with_broker) {
        Fixture f;
        pad_client *c = NULL;
        pad_lease *l = NULL;
        pad_job_stats st;
        int r = fixture_start(&f, "[Broker]\nMaxHelpers=2\nMaxHelpersPerNode=2\n");
        int node;
        unsigned helpers;

        if (r == -ENOENT) {
                printf("test-public-api: no dbus-daemon or paddd: skipped\n");
                exit(77);
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(pad_client_new(f.address, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 1);

        run_and_check(c, 3, &st);
        ck_assert_int_eq(st.brokered, 1);
        ck_assert_int_eq(st.broker_error, 0);
        ck_assert_uint_le(st.granted, 2);

        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &l), 0);
        ck_assert_uint_eq(pad_lease_granted(l), 2);
        ck_assert_ptr_nonnull(pad_lease_path(l));
        ck_assert_uint_ge(pad_lease_placement(l, &node, &helpers, 1), 1);
        ck_assert_int_ge(node, 0);
        ck_assert_ptr_nonnull(pad_lease_helper_policy(l));
        ck_assert_int_eq(pad_lease_shrink(l, 1), 1);
        ck_assert_uint_eq(pad_lease_granted(l), 1);
        check_admin(c, l);
        ck_assert_ptr_null(pad_lease_free(l));
        check_stats_watch(c);

        ck_assert_ptr_null(pad_client_free(c));
        fixture_stop(&f);
}
END_TEST

/* A program built against the first ABI binds to pad_job_run@PADCLIENT_0, whose stats end
 * before lease_lost: the library must not write past them. */
int pad_job_run_v0(pad_client *c, const pad_job *job, pad_job_stats *ret_stats);
__asm__(".symver pad_job_run_v0,pad_job_run@PADCLIENT_0");

START_TEST(test_first_abi_stats) {
        union {
                pad_job_stats st;
                unsigned char b[sizeof(pad_job_stats)];
        } u;
        uint64_t base = 0;
        pad_job job = { .thread_fn = count_fn, .arg = &base, .size = UNITS, .max_threads = 2,
                        .flags = PAD_JOB_NO_BROKER };
        size_t old = offsetof(pad_job_stats, lease_lost);

        memset(counts, 0, sizeof counts);
        memset(&u, 0xa5, sizeof u);
        ck_assert_int_eq(pad_job_run_v0(NULL, &job, &u.st), 0);
        ck_assert_uint_ge(u.st.chunks, 1);
        ck_assert_uint_ge(u.st.threads, 1);
        for (size_t i = old; i < sizeof u; i++)
                ck_assert_msg(u.b[i] == 0xa5, "byte %zu past the first ABI's stats was written", i);

        memset(&u, 0xa5, sizeof u);
        ck_assert_int_eq(pad_job_run(NULL, &job, &u.st), 0);
        ck_assert_int_eq(u.st.lease_lost, 0);
        ck_assert_uint_eq(u.st.raise_failed, 0);
}
END_TEST

/* The functions of 0.3.0 are in their own version node; the older ones stay where they were. */
START_TEST(test_symbol_versions) {
        static const char *const v03[] = {
                "pad_broker_statistics_get", "pad_broker_statistics_free", "pad_broker_statistics_counter",
                "pad_broker_watch_new", "pad_broker_watch_free", "pad_broker_watch_get_fd",
                "pad_broker_watch_get_events", "pad_broker_watch_process",
        };

        for (size_t i = 0; i < sizeof(v03) / sizeof(v03[0]); i++) {
                ck_assert_msg(dlvsym(RTLD_DEFAULT, v03[i], "PADCLIENT_0.3"), "%s@PADCLIENT_0.3 missing", v03[i]);
                ck_assert_msg(!dlvsym(RTLD_DEFAULT, v03[i], "PADCLIENT_0.2"), "%s also in PADCLIENT_0.2", v03[i]);
        }
        ck_assert_ptr_nonnull(dlvsym(RTLD_DEFAULT, "pad_broker_status_get", "PADCLIENT_0.2"));
        ck_assert_ptr_nonnull(dlvsym(RTLD_DEFAULT, "pad_client_new", "PADCLIENT_0"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("public-api");
        TCase *tc = tcase_create("api");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_without_broker);
        tcase_add_test(tc, test_with_broker);
        tcase_add_test(tc, test_first_abi_stats);
        tcase_add_test(tc, test_symbol_versions);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
