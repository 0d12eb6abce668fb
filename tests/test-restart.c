/* test-restart.c: libpadclient across a paddd that dies or restarts (SIGKILL, then paddd
 * started again on the same bus): a job whose lease vanishes runs to the end on the threads
 * it has and says so; calls on a lease paddd no longer has return the documented errno and
 * touch nothing else, not even another lease of the same client at the new paddd (which,
 * without the books, may reuse the old path); a lease the new paddd kept is used there; and
 * an Acquire waiting when paddd died is asked again of the new one. The books are removed
 * between kill and start where a test needs paddd to have forgotten every lease. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <padclient.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "check-run.h"
#include "fixture.h"

#define CONFIG_FOUR "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nHelperPolicy=idle\n"
#define CONFIG_ONE "[Broker]\nMaxHelpers=1\nMaxHelpersPerNode=4096\n"
#define UNITS 64
#define CHUNK_SLEEP_USEC (20 * 1000)
#define POLL_MS 10000

static Fixture fixture;

static void start_broker(const char *config) {
        int r = fixture_start(&fixture, config);

        if (r == -ENOENT) {
                printf("test-restart: no dbus-daemon or paddd here: skipped\n");
                exit(77);
        }
        ck_assert_msg(r == 0, "fixture_start: %s", strerror(-r));
}

/* SIGKILL paddd; forget its books when asked; start it again on the same bus. */
static void restart_broker(bool forget) {
        char state[400];

        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        snprintf(state, sizeof state, "%s/run/state", fixture.dir);
        if (forget)
                ck_assert_msg(unlink(state) == 0 || errno == ENOENT, "unlink %s: %m", state);
        ck_assert_int_eq(fixture_start_paddd(&fixture), 0);
}

static sd_bus *open_bus(void) {
        sd_bus *b = NULL;

        ck_assert_int_ge(bus_open_spec(fixture.address, NULL, &b), 0);
        return b;
}

static unsigned broker_u(const char *prop) {
        sd_bus *b = open_bus();
        uint32_t v = UINT32_MAX;

        ck_assert_int_ge(sd_bus_get_property_trivial(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                                     prop, NULL, 'u', &v), 0);
        sd_bus_flush_close_unref(b);
        return v;
}

static unsigned lease_granted_at_broker(const char *path) {
        sd_bus *b = open_bus();
        uint32_t v = UINT32_MAX;

        ck_assert_int_ge(sd_bus_get_property_trivial(b, BROKER_BUS_NAME, path, LEASE_INTERFACE,
                                                     "Granted", NULL, 'u', &v), 0);
        sd_bus_flush_close_unref(b);
        return v;
}

/* Whether the broker lists path among its leases. */
static bool broker_has_lease(pad_client *c, const char *path) {
        pad_lease_list *l = NULL;
        bool found = false;

        ck_assert_int_eq(pad_broker_list_leases(c, &l, NULL, 0), 0);
        for (unsigned i = 0; i < l->n; i++)
                found = found || strcmp(l->leases[i]->path, path) == 0;
        pad_lease_list_free(l);
        return found;
}

static long long now_ms(void) {
        return fixture_now_ms();
}

/* ---- a job whose lease vanishes ------------------------------------------------------------ */

typedef struct Units {
        atomic_uint counts[UNITS];
        pid_t caller;
        bool restart;                   /* after the kill, start paddd again without its books */
        atomic_bool killed;
} Units;

static int units_fn(uint64_t s, uint64_t e, void *arg) {
        Units *u = arg;

        if ((pid_t) syscall(SYS_gettid) == u->caller && !atomic_exchange(&u->killed, true)) {
                if (u->restart)
                        restart_broker(true);
                else
                        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        }
        for (uint64_t i = s; i < e; i++)
                atomic_fetch_add(&u->counts[i], 1);
        usleep(CHUNK_SLEEP_USEC);
        return 0;
}

static void run_vanishing_job(bool restart) {
        Units *u = calloc(1, sizeof *u);
        pad_job job = {
                .thread_fn = units_fn, .arg = u, .size = UNITS, .min_chunk = 1,
                .max_threads = 3, .node = PAD_NODE_ANY, .tag = "test-restart",
        };
        pad_client *c = NULL;
        pad_job_stats st;

        ck_assert_ptr_nonnull(u);
        start_broker(CONFIG_FOUR);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        u->caller = (pid_t) syscall(SYS_gettid);
        u->restart = restart;
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        ck_assert(atomic_load(&u->killed));
        for (unsigned i = 0; i < UNITS; i++)
                ck_assert_msg(atomic_load(&u->counts[i]) == 1, "unit %u processed %u times", i,
                              atomic_load(&u->counts[i]));
        ck_assert_int_eq(st.brokered, 1);
        ck_assert_uint_eq(st.granted, 2);
        ck_assert_int_eq(st.lease_lost, 1);
        ck_assert_uint_le(st.raised + st.raise_failed, st.granted);
        if (!restart)
                ck_assert_uint_eq(st.raised, 0);        /* nobody to raise them */
        else {
                /* The new paddd never lent anything to this job. */
                ck_assert_uint_eq(broker_u("InUse"), 0);
                ck_assert_uint_eq(broker_u("Leases"), 0);
        }
        pad_client_free(c);
        free(u);
        fixture_stop(&fixture);
}

START_TEST(test_job_broker_killed) {
        run_vanishing_job(false);
}
END_TEST

START_TEST(test_job_broker_restarted) {
        run_vanishing_job(true);
}
END_TEST

/* ---- calls on a lease paddd no longer has ------------------------------------------------- */

START_TEST(test_lease_forgotten) {
        pad_client *c = NULL;
        pad_lease *old = NULL, *old2 = NULL, *live = NULL;
        char old_path[256];

        start_broker(CONFIG_FOUR);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &old), 0);
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &old2), 0);
        snprintf(old_path, sizeof old_path, "%s", pad_lease_path(old));

        restart_broker(true);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &live), 0);
        ck_assert_uint_eq(pad_lease_granted(live), 2);
        /* Without books the new paddd may give the new lease the old one's path: a call on
         * the old lease must not reach it. */
        printf("test-restart: old lease %s, new lease %s\n", old_path, pad_lease_path(live));

        ck_assert_int_eq(pad_lease_shrink(old, 1), -ENOENT);
        ck_assert_uint_eq(pad_lease_granted(old), 0);
        ck_assert_uint_eq(pad_lease_placement(old, NULL, NULL, 0), 0);
        ck_assert_int_eq(pad_lease_shrink(old, 1), -ESTALE);
        ck_assert_int_eq(pad_lease_release(old), -ESTALE);
        ck_assert_int_eq(pad_lease_release(old2), -ENOENT);
        ck_assert_int_eq(pad_lease_raise_priority(old2, (pid_t) syscall(SYS_gettid)), -ESTALE);

        /* Nothing else was touched: the live lease keeps its grant. */
        ck_assert_uint_eq(pad_lease_granted(live), 2);
        ck_assert_uint_eq(lease_granted_at_broker(pad_lease_path(live)), 2);
        ck_assert_uint_eq(broker_u("InUse"), 2);
        ck_assert_uint_eq(broker_u("Leases"), 1);
        old = pad_lease_free(old);
        old2 = pad_lease_free(old2);
        ck_assert_uint_eq(broker_u("InUse"), 2);
        ck_assert_uint_eq(broker_u("Leases"), 1);

        /* And it still works. */
        ck_assert_int_eq(pad_lease_shrink(live, 1), 1);
        ck_assert_uint_eq(broker_u("InUse"), 1);
        pad_lease_free(live);
        ck_assert_uint_eq(broker_u("InUse"), 0);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* With its books, a restarted paddd keeps the lease of a connection still there: the
 * library goes on using it there. A paddd without books has forgotten it: -ENOENT. */
START_TEST(test_lease_kept) {
        pad_client *c = NULL;
        pad_lease *l = NULL;
        char path[256];

        start_broker(CONFIG_FOUR);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &l), 0);
        snprintf(path, sizeof path, "%s", pad_lease_path(l));
        restart_broker(false);

        /* paddd keeps its books: the lease is there again, and follows the library. */
        ck_assert_msg(broker_has_lease(c, path), "the new paddd forgot %s", path);
        ck_assert_int_eq(pad_lease_shrink(l, 1), 1);
        ck_assert_uint_eq(lease_granted_at_broker(path), 1);
        ck_assert_uint_eq(broker_u("InUse"), 1);
        ck_assert_int_eq(pad_lease_release(l), 0);
        ck_assert_uint_eq(broker_u("InUse"), 0);
        pad_lease_free(l);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* A Release made while no paddd runs is owed: the next paddd adopts the lease from its
 * books, and the client's next Acquire sends the Release to it first. */
START_TEST(test_release_owed) {
        pad_client *c = NULL;
        pad_lease *l = NULL, *m = NULL;

        start_broker(CONFIG_FOUR);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 3, PAD_NODE_ANY, NULL, &l), 0);
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(pad_lease_release(l), -EHOSTDOWN);
        pad_lease_free(l);
        ck_assert_int_eq(fixture_start_paddd(&fixture), 0);
        ck_assert_uint_eq(broker_u("InUse"), 3);        /* adopted: the client still lives */
        ck_assert_int_eq(pad_client_acquire(c, 4, PAD_NODE_ANY, NULL, &m), 0);
        ck_assert_uint_eq(pad_lease_granted(m), 4);
        ck_assert_uint_eq(broker_u("InUse"), 4);
        ck_assert_uint_eq(broker_u("Leases"), 1);
        pad_lease_free(m);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* A lease whose ttl ran out: paddd says so with Expired, and the library takes it as lost
 * (granted 0, later calls -ESTALE) without asking paddd about it. */
START_TEST(test_ttl_expired_seen) {
        pad_acquire_opts o = { .ttl_usec = 100000 };
        pad_client *c = NULL;
        pad_lease *l = NULL;

        start_broker(CONFIG_FOUR);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, &o, &l), 0);
        ck_assert_uint_eq(pad_lease_granted(l), 2);
        for (long long t0 = now_ms(); broker_u("InUse") != 0 && now_ms() - t0 < 10000;)
                usleep(10000);
        ck_assert_uint_eq(broker_u("InUse"), 0);
        ck_assert_int_eq(pad_lease_shrink(l, 1), -ESTALE);
        ck_assert_uint_eq(pad_lease_granted(l), 0);
        pad_lease_free(l);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* ---- an Acquire waiting when paddd dies ------------------------------------------------------ */

typedef struct Waiter {
        pad_client *client;
        pad_lease *lease;
        int r;
        long long ms;
} Waiter;

static void *waiter_main(void *arg) {
        Waiter *w = arg;
        pad_acquire_opts o = { .min = 1, .wait_usec = 30 * 1000 * 1000ULL };
        long long t0 = now_ms();

        w->r = pad_client_acquire(w->client, 1, PAD_NODE_ANY, &o, &w->lease);
        w->ms = now_ms() - t0;
        return NULL;
}

START_TEST(test_waiter_retried) {
        pad_client *blocker = NULL;
        pad_lease *held = NULL;
        Waiter w = {};
        pthread_t t;
        long long deadline;

        start_broker(CONFIG_ONE);
        ck_assert_int_eq(pad_client_new(fixture.address, &blocker), 0);
        ck_assert_int_eq(pad_client_acquire(blocker, 1, PAD_NODE_ANY, NULL, &held), 0);
        ck_assert_int_eq(pad_client_new(fixture.address, &w.client), 0);
        ck_assert_int_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
        for (deadline = now_ms() + POLL_MS; broker_u("Waiting") != 1 && now_ms() < deadline;)
                fixture_sleep_ms(10);
        ck_assert_uint_eq(broker_u("Waiting"), 1);

        /* paddd dies with the waiter queued; the blocker goes away before a new one starts,
         * so the new paddd has the slot free. */
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(pad_lease_release(held), -EHOSTDOWN);
        pad_lease_free(held);
        pad_client_free(blocker);
        ck_assert_int_eq(fixture_start_paddd(&fixture), 0);

        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_msg(w.r == 0, "acquire after the restart: %s", strerror(-w.r));
        ck_assert_uint_eq(pad_lease_granted(w.lease), 1);
        ck_assert_msg(w.ms < 30 * 1000, "the acquire took %lld ms", w.ms);
        ck_assert_uint_eq(broker_u("InUse"), 1);
        ck_assert_uint_eq(lease_granted_at_broker(pad_lease_path(w.lease)), 1);
        pad_lease_free(w.lease);
        ck_assert_uint_eq(broker_u("InUse"), 0);
        pad_client_free(w.client);
        fixture_stop(&fixture);
}
END_TEST

int main(void) {
        Suite *s = suite_create("restart");
        TCase *tc = tcase_create("restart");

        check_need_env("test-restart", "PADDD_BIN");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_job_broker_killed);
        tcase_add_test(tc, test_job_broker_restarted);
        tcase_add_test(tc, test_lease_forgotten);
        tcase_add_test(tc, test_lease_kept);
        tcase_add_test(tc, test_release_owed);
        tcase_add_test(tc, test_ttl_expired_seen);
        tcase_add_test(tc, test_waiter_retried);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
