/* test-client.c: libpadclient against a real broker: a private dbus-daemon and paddd from the
 * build tree (tests/fixture.h). Leases (acquire, shrink, release and their errors), jobs whose
 * helper threads never exceed the grant, placement, slots coming back as helpers finish,
 * helpers at SCHED_IDLE raised to the caller's policy at the end, and jobs that complete with
 * no broker on the bus, a dead bus, and a broker killed in the middle of the job. */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "check-run.h"
#include "fixture.h"

#define CONFIG_TWO                              \
        "[Broker]\n"                            \
        "MaxHelpers=2\n"                        \
        "MaxHelpersPerNode=2\n"                 \
        "HelperPolicy=idle\n"

#define UNITS 2048
#define SAFETY_USEC (20 * 1000 * 1000ULL)

static Fixture fixture;

static void start_broker(const char *config) {
        int r = fixture_start(&fixture, config);

        if (r == -ENOENT) {
                printf("test-client: no dbus-daemon or paddd here: skipped\n");
                exit(77);
        }
        ck_assert_msg(r == 0, "fixture_start: %s", strerror(-r));
}

static void stop_broker(void) {
        fixture_stop(&fixture);
}

static sd_bus *open_bus(void) {
        sd_bus *b = NULL;

        ck_assert_int_ge(bus_open_spec(fixture.address, NULL, &b), 0);
        return b;
}

static unsigned read_in_use(sd_bus *b) {
        uint32_t v = UINT32_MAX;
        int r = sd_bus_get_property_trivial(b, BROKER_BUS_NAME, BROKER_PATH,
                                            BROKER_INTERFACE, "InUse", NULL, 'u', &v);

        ck_assert_int_ge(r, 0);
        return v;
}

static pid_t tid(void) {
        return (pid_t) syscall(SYS_gettid);
}

static int my_policy(void) {
        SchedAttr a;
        int r = sched_attr_get(0, &a);

        if (r < 0)
                return r;
        return (int) (a.sched_policy & ~0x40000000u);     /* without SCHED_RESET_ON_FORK */
}

/* ---- coverage and concurrency -------------------------------------------------------------- */

typedef struct Units {
        atomic_uint counts[UNITS];
        atomic_uint running, max_running;
        pid_t caller;
        Fixture *kill_from_caller;      /* kill paddd once from the caller's first chunk */
        atomic_bool killed;
} Units;

static int units_fn(uint64_t s, uint64_t e, void *arg) {
        Units *u = arg;
        unsigned now = atomic_fetch_add(&u->running, 1) + 1, max = atomic_load(&u->max_running);

        while (now > max && !atomic_compare_exchange_weak(&u->max_running, &max, now))
                ;
        if (u->kill_from_caller && tid() == u->caller && !atomic_exchange(&u->killed, true))
                ck_assert_int_eq(fixture_kill_paddd(u->kill_from_caller), 0);
        for (uint64_t i = s; i < e; i++)
                atomic_fetch_add(&u->counts[i], 1);
        usleep(200);
        atomic_fetch_sub(&u->running, 1);
        return 0;
}

static void assert_units_once(Units *u, uint64_t size) {
        uint64_t wrong = 0;

        for (uint64_t i = 0; i < size && wrong == 0; i++)
                if (atomic_load(&u->counts[i]) != 1)
                        wrong = i + 1;
        ck_assert_msg(wrong == 0, "unit %llu processed %u times", (unsigned long long) wrong - 1,
                      wrong ? atomic_load(&u->counts[wrong - 1]) : 1);
}

static pad_job units_job(Units *u, unsigned max_threads) {
        return (pad_job) {
                .thread_fn = units_fn, .arg = u, .size = UNITS, .min_chunk = 8, .align = 8,
                .max_threads = max_threads, .node = PAD_NODE_ANY, .tag = "test-client",
        };
}

/* The lease's placement as the library reports it equals the broker's Placement property. */
static void assert_placement_is_brokers(sd_bus *b, pad_lease *l) {
        sd_bus_message *reply = NULL;
        int nodes[PAD_PLACEMENT_MAX], node;
        unsigned helpers[PAD_PLACEMENT_MAX], n, i = 0, count;

        n = pad_lease_placement(l, nodes, helpers, PAD_PLACEMENT_MAX);
        ck_assert_int_ge(sd_bus_get_property(b, BROKER_BUS_NAME, pad_lease_path(l),
                                             LEASE_INTERFACE, "Placement", NULL,
                                             &reply, "a(iu)"), 0);
        ck_assert_int_ge(sd_bus_message_enter_container(reply, 'a', "(iu)"), 0);
        while (sd_bus_message_read(reply, "(iu)", &node, &count) > 0) {
                if (count == 0)
                        continue;
                ck_assert_uint_lt(i, n);
                ck_assert_int_eq(nodes[i], node);
                ck_assert_uint_eq(helpers[i], count);
                i++;
        }
        ck_assert_uint_eq(i, n);
        sd_bus_message_unref(reply);
}

/* ---- leases ---------------------------------------------------------------------------------- */

START_TEST(test_lease) {
        pad_client *c = NULL;
        pad_lease *l = NULL, *l2 = NULL;
        pad_acquire_opts o = { .min = 1, .tag = "lease" };
        int nodes[4];
        unsigned helpers[4], n, sum = 0;
        sd_bus *b;

        start_broker(CONFIG_TWO);
        b = open_bus();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 1);

        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, &o, &l), 0);
        ck_assert_uint_eq(pad_lease_granted(l), 2);
        ck_assert_ptr_nonnull(pad_lease_path(l));
        ck_assert(strncmp(pad_lease_path(l), LEASE_PATH_PREFIX "/", strlen(LEASE_PATH_PREFIX "/")) == 0);
        ck_assert_str_eq(pad_lease_helper_policy(l), "idle");
        n = pad_lease_placement(l, nodes, helpers, 4);
        ck_assert_uint_ge(n, 1);
        for (unsigned i = 0; i < n; i++) {
                ck_assert_int_ge(nodes[i], 0);
                sum += helpers[i];
        }
        ck_assert_uint_eq(sum, 2);
        assert_placement_is_brokers(b, l);
        ck_assert_uint_eq(read_in_use(b), 2);

        /* Everything is lent: Busy, or Timeout after a wait. */
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, &o, &l2), -EBUSY);
        o.wait_usec = 100 * 1000;
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, &o, &l2), -ETIMEDOUT);
        ck_assert_int_eq(pad_client_acquire(c, 1, 4000, NULL, &l2), -ENXIO);
        ck_assert_int_eq(pad_client_acquire(c, 5000, PAD_NODE_ANY, NULL, &l2), -EINVAL);
        ck_assert_ptr_null(l2);

        ck_assert_int_eq(pad_lease_shrink(l, 1), 1);
        ck_assert_uint_eq(pad_lease_granted(l), 1);
        ck_assert_uint_eq(read_in_use(b), 1);
        ck_assert_int_eq(pad_lease_shrink(l, 2), -EINVAL);
        ck_assert_int_eq(pad_lease_raise_priority(l, 0), -EINVAL);

        /* A grant of 0 is still a lease. */
        o = (pad_acquire_opts) { .min = 0 };
        ck_assert_int_eq(pad_client_acquire(c, 3, 0, &o, &l2), 0);
        ck_assert_uint_eq(pad_lease_granted(l2), 1);
        l2 = pad_lease_free(l2);

        /* The lease outlives the client handle. */
        c = pad_client_free(c);
        l = pad_lease_free(l);
        ck_assert_uint_eq(read_in_use(b), 0);
        sd_bus_flush_close_unref(b);
        stop_broker();
}
END_TEST

START_TEST(test_grant_never_exceeded) {
        pad_client *c = NULL;
        Units *u = calloc(1, sizeof *u);
        pad_job_stats st;
        pad_job job = units_job(u, 8);
        unsigned sum = 0;

        start_broker(CONFIG_TWO);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        u->caller = tid();
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        assert_units_once(u, UNITS);
        ck_assert_int_eq(st.brokered, 1);
        ck_assert_uint_le(st.granted, 2);
        ck_assert_uint_ge(st.granted, 1);
        ck_assert_uint_le(atomic_load(&u->max_running), st.granted + 1);
        ck_assert_uint_le(st.threads, st.granted + 1);
        ck_assert_uint_gt(st.chunks, 1);
        /* Placement follows the grant: every helper placed, on a real node. */
        ck_assert_uint_ge(st.n_placement, 1);
        for (unsigned i = 0; i < st.n_placement; i++) {
                ck_assert_int_ge(st.placement_node[i], 0);
                ck_assert_int_eq(access("/sys/devices/system/node/node1", F_OK) == 0 ||
                                 st.placement_node[i] == 0, 1);
                sum += st.placement_helpers[i];
        }
        ck_assert_uint_eq(sum, st.granted);
        pad_client_free(c);
        free(u);
        stop_broker();
}
END_TEST

/* On the caller's thread: hold the first chunk until a helper took one, so helpers that start
 * late (at SCHED_IDLE) still find work. */
static void caller_wait_for(atomic_int *slow_tid) {
        uint64_t t0 = now_usec();

        while (atomic_load(slow_tid) == 0 && now_usec() - t0 < SAFETY_USEC)
                usleep(1000);
}

START_TEST(test_job_when_busy) {
        pad_client *c = NULL;
        pad_lease *all = NULL;
        Units *u = calloc(1, sizeof *u);
        pad_job_stats st;
        pad_job job = units_job(u, 3);

        start_broker(CONFIG_TWO);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &all), 0);
        ck_assert_uint_eq(pad_lease_granted(all), 2);

        /* Every slot lent: the broker says no (at once, or after the wait), the caller runs
         * the job alone, and no warning is due since the broker is there. */
        for (int i = 0; i < 2; i++) {
                memset(u, 0, sizeof *u);
                u->caller = tid();
                job.wait_usec = i == 0 ? 0 : 50 * 1000;
                ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
                assert_units_once(u, UNITS);
                ck_assert_int_eq(st.brokered, 1);
                ck_assert_uint_eq(st.granted, 0);
                ck_assert_uint_eq(st.threads, 1);
                ck_assert_uint_eq(atomic_load(&u->max_running), 1);
        }
        pad_lease_free(all);
        pad_client_free(c);
        free(u);
        stop_broker();
}
END_TEST

/* ---- slots come back ------------------------------------------------------------------------- */

typedef struct Comeback {
        pid_t caller;
        atomic_int slow_tid;
        atomic_bool dropped, slow_saw_drop;
        unsigned granted_seen;
        sd_bus *bus;
        atomic_uint units;
} Comeback;

static int comeback_fn(uint64_t s, uint64_t e, void *arg) {
        Comeback *cb = arg;
        int expected = 0;

        if (tid() == cb->caller)
                caller_wait_for(&cb->slow_tid);
        else if (atomic_compare_exchange_strong(&cb->slow_tid, &expected, tid())) {
                /* The first helper chunk waits until the caller saw the other slot return. */
                uint64_t t0 = now_usec();

                while (!atomic_load(&cb->dropped) && now_usec() - t0 < SAFETY_USEC)
                        usleep(1000);
                atomic_store(&cb->slow_saw_drop, atomic_load(&cb->dropped));
        }
        atomic_fetch_add(&cb->units, e - s);
        return 0;
}

static void comeback_progress(uint64_t done, uint64_t total, void *arg) {
        Comeback *cb = arg;

        /* The caller's thread: InUse falls below the grant while the slow helper still runs. */
        if (atomic_load(&cb->slow_tid) != 0 && !atomic_load(&cb->dropped) &&
            read_in_use(cb->bus) < 2)
                atomic_store(&cb->dropped, true);
}

START_TEST(test_slots_come_back) {
        pad_client *c = NULL;
        Comeback cb = { .caller = tid() };
        pad_job_stats st;
        pad_job job = {
                .thread_fn = comeback_fn, .arg = &cb, .size = 4096, .min_chunk = 1,
                .max_threads = 3, .node = PAD_NODE_ANY, .progress_fn = comeback_progress,
                .progress_arg = &cb, .progress_interval_usec = 2000, .flags = PAD_JOB_NO_RAISE,
        };

        start_broker(CONFIG_TWO);
        cb.bus = open_bus();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        ck_assert_uint_eq(st.granted, 2);
        ck_assert_uint_eq(atomic_load(&cb.units), 4096);
        ck_assert_int_ne(atomic_load(&cb.slow_tid), 0);
        ck_assert_msg(atomic_load(&cb.slow_saw_drop), "InUse never fell while a helper ran");
        ck_assert_uint_eq(st.raised, 0);
        ck_assert_uint_eq(read_in_use(cb.bus), 0);
        pad_client_free(c);
        sd_bus_flush_close_unref(cb.bus);
        stop_broker();
}
END_TEST

/* ---- low priority and the raise ----------------------------------------------------------------- */

typedef struct Raise {
        pid_t caller;
        atomic_int slow_tid;
        atomic_int policy_before, policy_after;
        atomic_uint helper_chunks, idle_chunks;
        atomic_uint units;
} Raise;

static int raise_fn(uint64_t s, uint64_t e, void *arg) {
        Raise *rs = arg;
        int expected = 0;

        if (tid() == rs->caller)
                caller_wait_for(&rs->slow_tid);
        else {
                int p = my_policy();

                atomic_fetch_add(&rs->helper_chunks, 1);
                atomic_fetch_add(&rs->idle_chunks, p == SCHED_IDLE);
                if (atomic_compare_exchange_strong(&rs->slow_tid, &expected, tid())) {
                        /* Keep this chunk going until the caller has raised us. */
                        uint64_t t0 = now_usec();

                        atomic_store(&rs->policy_before, p);
                        while ((p = my_policy()) == SCHED_IDLE && now_usec() - t0 < SAFETY_USEC)
                                usleep(1000);
                        atomic_store(&rs->policy_after, p);
                }
        }
        atomic_fetch_add(&rs->units, e - s);
        return 0;
}

START_TEST(test_idle_and_raise) {
        pad_client *c = NULL;
        Raise rs = { .caller = tid(), .policy_before = -1, .policy_after = -1 };
        pad_job_stats st;
        pad_job job = {
                .thread_fn = raise_fn, .arg = &rs, .size = 1024, .min_chunk = 1,
                .max_threads = 2, .node = PAD_NODE_ANY,
        };

        ck_assert_int_eq(my_policy(), SCHED_OTHER);
        start_broker(CONFIG_TWO);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        ck_assert_uint_eq(st.granted, 1);
        ck_assert_uint_eq(atomic_load(&rs.units), 1024);
        ck_assert_int_ne(atomic_load(&rs.slow_tid), 0);
        /* Every helper chunk ran at SCHED_IDLE except after the raise. */
        ck_assert_int_eq(atomic_load(&rs.policy_before), SCHED_IDLE);
        ck_assert_uint_eq(atomic_load(&rs.idle_chunks), atomic_load(&rs.helper_chunks));
        ck_assert_int_eq(atomic_load(&rs.policy_after), SCHED_OTHER);
        ck_assert_uint_eq(st.raised, 1);
        /* The caller itself is untouched. */
        ck_assert_int_eq(my_policy(), SCHED_OTHER);
        pad_client_free(c);
        stop_broker();
}
END_TEST

START_TEST(test_no_raise_flag) {
        pad_client *c = NULL;
        Units *u = calloc(1, sizeof *u);
        pad_job_stats st;
        pad_job job = units_job(u, 3);

        start_broker(CONFIG_TWO);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        job.flags = PAD_JOB_NO_RAISE | PAD_JOB_NO_AFFINITY;
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        assert_units_once(u, UNITS);
        ck_assert_uint_eq(st.raised, 0);
        ck_assert_int_eq(st.brokered, 1);
        pad_client_free(c);
        free(u);
        stop_broker();
}
END_TEST

/* ---- no broker, dead broker ------------------------------------------------------------------- */

START_TEST(test_broker_absent) {
        char dir[] = "/tmp/padclient-absent-XXXXXX", addr[128];
        pad_client *c = NULL;
        pad_lease *l = NULL;
        Units *u = calloc(1, sizeof *u);
        pad_job_stats st;
        pad_job job = units_job(u, 4);

        /* A socket path nobody listens on. */
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(addr, sizeof addr, "unix:path=%s/bus", dir);
        ck_assert_int_eq(setenv("PADCLIENT_FALLBACK_HELPERS", "2", 1), 0);
        ck_assert_int_eq(pad_client_new(addr, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &l), -EHOSTDOWN);
        u->caller = tid();
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        assert_units_once(u, UNITS);
        ck_assert_int_eq(st.brokered, 0);
        ck_assert_uint_eq(st.granted, 2);
        ck_assert_int_eq(st.broker_error, -ENOENT);     /* no socket there */
        ck_assert_uint_le(atomic_load(&u->max_running), 3);
        c = pad_client_free(c);
        rmdir(dir);

        /* A bus without paddd on it. */
        memset(u, 0, sizeof *u);
        u->caller = tid();
        start_broker(CONFIG_TWO);
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &l), -EHOSTDOWN);
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        assert_units_once(u, UNITS);
        ck_assert_int_eq(st.brokered, 0);
        ck_assert_uint_eq(st.granted, 2);
        ck_assert_int_eq(st.broker_error, -EHOSTDOWN);
        pad_client_free(c);
        free(u);
        stop_broker();
}
END_TEST

START_TEST(test_broker_killed) {
        pad_client *c = NULL;
        Units *u = calloc(1, sizeof *u);
        pad_job_stats st;
        pad_job job = units_job(u, 3);

        start_broker(CONFIG_TWO);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        u->caller = tid();
        u->kill_from_caller = &fixture;
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        ck_assert(atomic_load(&u->killed));
        assert_units_once(u, UNITS);
        ck_assert_int_eq(st.brokered, 1);
        ck_assert_uint_eq(st.granted, 2);

        /* The next job on the same client runs in fallback mode. */
        memset(u, 0, sizeof *u);
        u->caller = tid();
        ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
        assert_units_once(u, UNITS);
        ck_assert_int_eq(st.brokered, 0);
        pad_client_free(c);
        free(u);
        stop_broker();
}
END_TEST

static Suite *client_suite(void) {
        Suite *s = suite_create("client");
        TCase *tc = tcase_create("broker");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_lease);
        tcase_add_test(tc, test_grant_never_exceeded);
        tcase_add_test(tc, test_job_when_busy);
        tcase_add_test(tc, test_slots_come_back);
        tcase_add_test(tc, test_idle_and_raise);
        tcase_add_test(tc, test_no_raise_flag);
        tcase_add_test(tc, test_broker_absent);
        tcase_add_test(tc, test_broker_killed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        check_need_env("test-client", "PADDD_BIN");
        return check_run_suite(client_suite());
}
