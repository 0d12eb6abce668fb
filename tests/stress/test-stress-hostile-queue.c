/* test-stress-hostile-queue.c: the queue of waiting Acquire calls against clients of
 * ordinary uids that try to get ahead or to clog it, on a bus with dbus-daemon's default
 * limits. Slots freed while someone waits go to the waiters first, in order, even while a
 * third uid hammers Acquire without waiting; a min no quota could ever meet is refused at
 * once and never queues; a head waiter held back only by its own per-user cap lets other
 * users' waiters by; one uid cannot fill the queue (MaxWaitingPerUser); and every wait
 * ends (MaxWaitUSec), while an Acquire sent without expecting a reply holds nothing. Each
 * test says what paddd did before these rules; each prints what it measured. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"
#include "util.h"

#define N_UIDS 3
#define E_LIMITS "org.freedesktop.DBus.Error.LimitsExceeded"
#define QUICK_MS 1000                   /* "at once": an answer that did not wait */
#define LONG_WAIT_USEC (8 * 1000000ULL) /* waits the tests end themselves */

static uid_t uids[N_UIDS];

static sd_bus *start_with(const char *config, Agent *agents, const uid_t *who, size_t n) {
        sd_bus *obs = NULL;

        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS), N_UIDS);
        stress_start(config);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(agent_spawn(&agents[i], who[i], 8, stress_fx.address), 0);
        for (size_t i = 0; i < n; i++) {
                AgentReply rep;

                ck_assert_int_eq(agent_call(&agents[i], &(AgentCmd) { .op = AGENT_OPEN }, &rep), 0);
                ck_assert_msg(rep.r == 0, "agent of uid %u: %s", (unsigned) who[i], rep.error);
        }
        return obs;
}

static void stop_all(Agent *agents, size_t n) {
        for (size_t i = 0; i < n; i++)
                agent_stop(&agents[i]);
}

/* An Acquire that must be granted; returns the lease's path in path. */
static uint32_t must_acquire(Agent *a, uint32_t helpers, uint32_t min, char *path) {
        AgentReply rep;

        ck_assert_int_eq(agent_call(a, &(AgentCmd) { .op = AGENT_ACQUIRE, .helpers = helpers, .min = min }, &rep), 0);
        ck_assert_msg(rep.r == 0, "Acquire(%u, min %u) of uid %u: %s", helpers, min, (unsigned) a->uid, rep.error);
        snprintf(path, STRESS_PATH_MAX, "%s", rep.path);
        return rep.granted;
}

static void must_shrink(Agent *a, const char *path, uint32_t expect) {
        AgentCmd c = { .op = AGENT_SHRINK, .count = 1 };
        AgentReply rep;

        snprintf(c.path, sizeof c.path, "%s", path);
        ck_assert_int_eq(agent_call(a, &c, &rep), 0);
        ck_assert_msg(rep.r == 0, "Shrink(1) of %s: %s", path, rep.error);
        ck_assert_uint_eq(rep.granted, expect);
}

static void must_wait_for(sd_bus *obs, uint32_t waiting) {
        Books k = {};

        ck_assert_msg(books_wait_waiting(obs, &k, waiting), "Waiting is %u, not %u", k.waiting, waiting);
}

/* The answer of an Acquire sent with agent_send, within ms; fails if none came. */
static void answer_within(Agent *a, int ms, AgentReply *rep, const char *what) {
        long long t0 = fixture_now_ms();
        int r = agent_recv(a, rep, ms);

        ck_assert_msg(r == 0, "%s (uid %u): no answer within %d ms%s", what, (unsigned) a->uid, ms,
                      r == -ETIMEDOUT ? " (it sits in the queue)" : "");
        printf("  %s: %s after %lld ms\n", what, rep->r == 0 ? "granted" : rep->error, fixture_now_ms() - t0);
}

static void send_wait(Agent *a, uint32_t helpers, uint32_t min, uint64_t wait_usec) {
        ck_assert_int_eq(agent_send(a, &(AgentCmd) { .op = AGENT_ACQUIRE, .helpers = helpers, .min = min,
                                                     .wait_usec = wait_usec }), 0);
}

/* ---- 1: waiters first ---------------------------------------------------------------- */

#define HAMMER_MAX_CALLS 40000
#define HAMMER_MAX_MS 15000

typedef struct Hammer {
        volatile int stop;
        unsigned calls, grants;
        double rtt_us[HAMMER_MAX_CALLS];
} Hammer;

/* In the agent: Acquire(1, min 1, no wait) as fast as it answers, keeping what it gets. */
static int hammer_run(AgentConns *conns, void *arg, char *msg) {
        Hammer *h = arg;
        long long end = stress_now_us() + HAMMER_MAX_MS * 1000LL;
        char path[STRESS_PATH_MAX], err[STRESS_ERROR_MAX];
        uint32_t g;

        while (!h->stop && h->calls < HAMMER_MAX_CALLS && stress_now_us() < end) {
                long long t0 = stress_now_us();
                int r = sbus_acquire(conns->bus[0], 1, 1, 0, "hammer", path, &g, err);

                h->rtt_us[h->calls++] = (double) (stress_now_us() - t0);
                if (r >= 0)
                        h->grants += g;
                else if (!streq(err, BROKER_ERROR_BUSY)) {
                        snprintf(msg, STRESS_ERROR_MAX, "%s", err);
                        return -EIO;
                }
        }
        return 0;
}

/* What the hammer holds, from the books: its leases carry the tag "hammer". */
static uint32_t hammer_holds(sd_bus *obs) {
        _cleanup_(books_done) Books k = {};
        uint32_t sum = 0;

        ck_assert_int_ge(books_read(obs, &k), 0);
        for (size_t i = 0; i < k.n_list; i++)
                if (streq(k.list[i].tag, "hammer"))
                        sum += k.list[i].granted;
        return sum;
}

/* Before: a freed slot went to whoever asked first after it was freed, so a client that
 * asks without waiting, again and again, took every slot the holder gave back one at a
 * time, and the waiter of min 2 never saw two free slots: it timed out. */
START_TEST(test_waiters_first) {
        enum { HOLDER, WAITER, HAMMERER };
        Agent ag[3];
        Hammer *h = stress_shared(sizeof(Hammer));
        char held[STRESS_PATH_MAX];
        AgentReply rep;
        long hwm;

        ck_assert_ptr_nonnull(h);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\n", ag, uids, 3);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 4, 4, held), 4);
        send_wait(&ag[WAITER], 2, 2, LONG_WAIT_USEC);
        must_wait_for(obs, 1);
        ck_assert_int_eq(agent_send(&ag[HAMMERER], &(AgentCmd) { .op = AGENT_RUN, .fn = hammer_run, .arg = h }), 0);
        fixture_sleep_ms(100);

        /* One slot free: it is set aside for the waiter, whatever the hammer asks. */
        must_shrink(&ag[HOLDER], held, 3);
        fixture_sleep_ms(300);
        ck_assert_uint_gt(h->calls, 0);
        ck_assert_msg(hammer_holds(obs) == 0, "the hammering uid took %u slot(s) set aside for the waiter after "
                      "%u calls", hammer_holds(obs), h->calls);
        must_wait_for(obs, 1);

        /* Two free: the waiter's min, so it is served, and the hammer still has nothing. */
        must_shrink(&ag[HOLDER], held, 2);
        answer_within(&ag[WAITER], QUICK_MS, &rep, "the waiter of min 2");
        ck_assert_msg(rep.r == 0, "the waiter of min 2: %s", rep.error);
        ck_assert_uint_eq(rep.granted, 2);
        ck_assert_uint_eq(hammer_holds(obs), 0);

        /* With nobody waiting, a freed slot is the hammer's: it was really asking. */
        must_shrink(&ag[HOLDER], held, 1);
        for (long long end = fixture_now_ms() + QUICK_MS; h->grants == 0 && fixture_now_ms() < end;)
                fixture_sleep_ms(5);
        h->stop = 1;
        ck_assert_int_eq(agent_recv(&ag[HAMMERER], &rep, STRESS_SETTLE_MS), 0);
        ck_assert_msg(rep.r == 0, "%s", rep.error);
        ck_assert_uint_eq(h->grants, 1);
        ck_assert_uint_eq(hammer_holds(obs), 1);

        hwm = stress_vm_hwm_kib(stress_fx.paddd_pid);
        printf("waiters first: %u no-wait Acquire calls of the hammering uid, round trip median %.0f us, "
               "p99 %.0f us; paddd peak RSS %.1f MiB\n", h->calls,
               stress_percentile(h->rtt_us, h->calls, 50), stress_percentile(h->rtt_us, h->calls, 99),
               (double) hwm / 1024.0);
        stop_all(ag, 3);
}
END_TEST

/* ---- 2: a min that could never be met ------------------------------------------------- */

/* The node that every test machine has: the first one paddd lists. */
static int32_t first_node(sd_bus *obs) {
        Books k = {};

        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_gt(k.n_nodes, 0);
        return k.nodes[0].node;
}

static void set_node_quota(sd_bus *obs, int32_t node, uint32_t max) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(obs, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &e, NULL,
                                   "iu", node, max);

        ck_assert_msg(r >= 0, "SetQuota(%d, %u): %s", node, max, e.name ? e.name : strerror(-r));
        sd_bus_error_free(&e);
}

static void refused_at_once(Agent *a, AgentCmd c, const char *what) {
        AgentReply rep;

        c.op = AGENT_ACQUIRE;
        c.wait_usec = UINT64_MAX;
        ck_assert_int_eq(agent_send(a, &c), 0);
        answer_within(a, QUICK_MS, &rep, what);
        ck_assert_msg(rep.r < 0 && streq(rep.error, BROKER_ERROR_BUSY), "%s: %s", what,
                      rep.r == 0 ? "granted" : rep.error);
}

/* Before: such a request went into the queue with its endless wait, at its head, and as
 * nothing could ever satisfy it, nobody behind it was ever served. */
START_TEST(test_never_fits) {
        enum { HOLDER, ASKER, OTHER };
        Agent ag[3];
        char held[STRESS_PATH_MAX], other[STRESS_PATH_MAX];
        AgentReply rep;
        int32_t node;

        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nMaxHelpersPerUser=3\n", ag, uids, 3);
        node = first_node(obs);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 3, 3, held), 3);
        ck_assert_uint_eq(must_acquire(&ag[OTHER], 1, 1, other), 1);

        refused_at_once(&ag[ASKER], (AgentCmd) { .helpers = 5, .min = 5 }, "min 5 > MaxHelpers 4");
        refused_at_once(&ag[ASKER], (AgentCmd) { .helpers = 4, .min = 4 }, "min 4 > MaxHelpersPerUser 3");
        /* The test machine may have one node only: its cap goes down to 2 for this one. */
        set_node_quota(obs, node, 2);
        refused_at_once(&ag[ASKER], (AgentCmd) { .helpers = 3, .min = 3, .on_node = true, .node = node,
                                                 .strict_node = true }, "min 3 > node cap 2, strict_node");
        set_node_quota(obs, node, 4096);
        must_wait_for(obs, 0);

        send_wait(&ag[OTHER], 1, 1, LONG_WAIT_USEC);
        must_wait_for(obs, 1);
        must_shrink(&ag[HOLDER], held, 2);
        answer_within(&ag[OTHER], QUICK_MS, &rep, "a later min 1 waiter of another uid");
        ck_assert_msg(rep.r == 0 && rep.granted == 1, "the min 1 waiter: %s", rep.r == 0 ? "granted 0" : rep.error);
        must_wait_for(obs, 0);
        stop_all(ag, 3);
}
END_TEST

/* ---- 3: a head waiter stuck on its own user's cap ------------------------------------- */

/* Before: the first waiter, of a user at MaxHelpersPerUser, stayed at the head of the
 * queue and blocked it: the other user's waiter behind it timed out with a slot free. */
START_TEST(test_own_cap_head) {
        enum { CAPPED_HOLDER, CAPPED_WAITER, HOLDER, OTHER };
        Agent ag[4];
        char held[STRESS_PATH_MAX], capped[STRESS_PATH_MAX];
        AgentReply rep;

        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS), N_UIDS);
        const uid_t who[] = { uids[0], uids[0], uids[1], uids[2] };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nMaxHelpersPerUser=2\n", ag, who, 4);
        ck_assert_uint_eq(must_acquire(&ag[CAPPED_HOLDER], 2, 2, capped), 2);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 2, 2, held), 2);
        send_wait(&ag[CAPPED_WAITER], 1, 1, LONG_WAIT_USEC);
        must_wait_for(obs, 1);
        send_wait(&ag[OTHER], 1, 1, LONG_WAIT_USEC);
        must_wait_for(obs, 2);

        must_shrink(&ag[HOLDER], held, 1);
        answer_within(&ag[OTHER], QUICK_MS, &rep, "the other uid's waiter behind a capped head");
        ck_assert_msg(rep.r == 0 && rep.granted == 1, "the other uid's waiter: %s",
                      rep.r == 0 ? "granted 0" : rep.error);
        /* The capped one still waits: its own user holds its cap. */
        ck_assert_int_eq(agent_recv(&ag[CAPPED_WAITER], &rep, 100), -ETIMEDOUT);
        must_wait_for(obs, 1);
        /* Its own user gives one back: now it is served. */
        must_shrink(&ag[CAPPED_HOLDER], capped, 1);
        answer_within(&ag[CAPPED_WAITER], QUICK_MS, &rep, "the capped waiter once its user is below its cap");
        ck_assert_msg(rep.r == 0 && rep.granted == 1, "the capped waiter: %s", rep.r == 0 ? "granted 0" : rep.error);
        stop_all(ag, 4);
}
END_TEST

/* ---- 4: one uid cannot fill the queue ------------------------------------------------- */

#define PER_USER_WAITING 32             /* MaxWaitingPerUser's default */
#define SPREAD_CONNS 4

/* Before: only MaxWaiting (256, machine-wide) bounded the queue, so one uid could take
 * all of it over a few connections and every other user got LimitsExceeded. */
START_TEST(test_waiting_per_user) {
        enum { HOLDER, FILLER, OTHER };
        Agent ag[3];
        char held[STRESS_PATH_MAX];
        AgentReply rep;
        Books k = {};

        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with("[Broker]\nMaxHelpers=1\nMaxHelpersPerNode=4096\n", ag, uids, 3);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 1, 1, held), 1);
        for (unsigned c = 1; c <= SPREAD_CONNS; c++) {
                ck_assert_int_eq(agent_call(&ag[FILLER], &(AgentCmd) { .op = AGENT_OPEN, .conn = c }, &rep), 0);
                ck_assert_msg(rep.r == 0, "%s", rep.error);
        }
        for (unsigned i = 0; i < PER_USER_WAITING; i++) {
                AgentCmd c = { .op = AGENT_ACQUIRE_ASYNC, .conn = 1 + i % SPREAD_CONNS, .helpers = 1, .min = 1,
                               .wait_usec = LONG_WAIT_USEC };

                ck_assert_int_eq(agent_call(&ag[FILLER], &c, &rep), 0);
                ck_assert_msg(rep.r == 0, "sending waiter %u: %s", i, strerror(-rep.r));
        }
        must_wait_for(obs, PER_USER_WAITING);

        send_wait(&ag[FILLER], 1, 1, LONG_WAIT_USEC);   /* the 33rd, on its connection 0 */
        answer_within(&ag[FILLER], QUICK_MS, &rep, "the uid's 33rd waiting Acquire");
        ck_assert_msg(rep.r < 0 && streq(rep.error, E_LIMITS), "the 33rd waiter: %s",
                      rep.r == 0 ? "granted" : rep.error);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.waiting, PER_USER_WAITING);

        ck_assert_int_eq(agent_call(&ag[OTHER], &(AgentCmd) { .op = AGENT_ACQUIRE_ASYNC, .helpers = 1, .min = 1,
                                                              .wait_usec = LONG_WAIT_USEC }, &rep), 0);
        must_wait_for(obs, PER_USER_WAITING + 1);
        printf("waiting per user: uid %u waits %u times over %u connections, its next is refused; "
               "uid %u may still wait\n", (unsigned) uids[FILLER], PER_USER_WAITING, SPREAD_CONNS,
               (unsigned) uids[OTHER]);
        stop_all(ag, 3);
        books_wait_empty(obs, &k);
        ck_assert_uint_eq(k.waiting, 0);
}
END_TEST

/* ---- 5: every wait ends; nobody holds what nobody reads ------------------------------- */

#define MAX_WAIT_USEC 300000
#define STR_(x) #x
#define STR(x) STR_(x)
#define MAX_WAIT_CONFIG "[Broker]\nMaxHelpers=1\nMaxHelpersPerNode=4096\nMaxWaitUSec=" STR(MAX_WAIT_USEC) "\n"

static int acquire_no_reply(AgentConns *conns, void *arg, char *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const SAcquire *a = arg;
        int r;

        r = sbus_acquire_message(conns->bus[0], a, &m);
        if (r >= 0)
                r = sd_bus_message_set_expect_reply(m, 0);
        if (r >= 0)
                r = sd_bus_send(conns->bus[0], m, NULL);
        /* paddd answers the Ping after it has read the Acquire before it. */
        if (r >= 0)
                r = sbus_ping(conns->bus[0]);
        if (r < 0)
                snprintf(msg, STRESS_ERROR_MAX, "Acquire without a reply: %s", strerror(-r));
        return MIN(r, 0);
}

static void no_reply_holds_nothing(sd_bus *obs, Agent *a, SAcquire *acq, uint32_t leases, uint32_t in_use) {
        Books k = {};
        AgentReply rep;

        ck_assert_int_eq(agent_call(a, &(AgentCmd) { .op = AGENT_RUN, .fn = acquire_no_reply, .arg = acq }, &rep), 0);
        ck_assert_msg(rep.r == 0, "%s", rep.error);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_msg(k.leases == leases && k.in_use == in_use && k.waiting == 0,
                      "an Acquire(%u, min %u, wait %llu) sent without expecting a reply: Leases %u (was %u), "
                      "InUse %u (was %u), Waiting %u", acq->helpers, acq->min, (unsigned long long) acq->wait_usec,
                      k.leases, leases, k.in_use, in_use, k.waiting);
}

/* Before: an Acquire without a reply expected was granted (or queued) like any other, its
 * lease held by a connection that never learnt of it. */
START_TEST(test_no_reply_holds_nothing) {
        enum { HOLDER, CALLER };
        Agent ag[2];
        char held[STRESS_PATH_MAX];
        SAcquire *acq = stress_shared(sizeof(SAcquire));

        ck_assert_ptr_nonnull(acq);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with("[Broker]\nMaxHelpers=2\nMaxHelpersPerNode=4096\n", ag, uids, 2);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 1, 1, held), 1);
        *acq = (SAcquire) { .helpers = 1, .node = -1 };
        no_reply_holds_nothing(obs, &ag[CALLER], acq, 1, 1);
        /* Full: one that would wait must not sit in the queue either. */
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 1, 1, held), 1);
        *acq = (SAcquire) { .helpers = 1, .min = 1, .node = -1, .wait_usec = UINT64_MAX };
        no_reply_holds_nothing(obs, &ag[CALLER], acq, 2, 2);
        stop_all(ag, 2);
}
END_TEST

/* Before: wait_usec was taken as given, so UINT64_MAX waited forever, past the caller's
 * own reply timeout, and stayed counted in Waiting (there was no MaxWaitUSec). */
START_TEST(test_every_wait_ends) {
        enum { HOLDER, WAITER };
        Agent ag[2];
        char held[STRESS_PATH_MAX];
        AgentReply rep;
        Books k = {};
        long long t0, took;

        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs =
                start_with(MAX_WAIT_CONFIG, ag, uids, 2);
        ck_assert_uint_eq(must_acquire(&ag[HOLDER], 1, 1, held), 1);
        t0 = fixture_now_ms();
        send_wait(&ag[WAITER], 1, 1, UINT64_MAX);
        must_wait_for(obs, 1);
        answer_within(&ag[WAITER], 3 * MAX_WAIT_USEC / 1000 + QUICK_MS, &rep, "wait_usec UINT64_MAX");
        took = fixture_now_ms() - t0;
        ck_assert_msg(rep.r < 0 && streq(rep.error, BROKER_ERROR_TIMEOUT), "wait_usec UINT64_MAX: %s",
                      rep.r == 0 ? "granted" : rep.error);
        ck_assert_int_ge(took, MAX_WAIT_USEC / 1000 - 50);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.waiting, 0);
        printf("every wait ends: wait_usec UINT64_MAX ended in Timeout after %lld ms (MaxWaitUSec %d ms)\n",
               took, MAX_WAIT_USEC / 1000);
        stop_all(ag, 2);
}
END_TEST

int main(void) {
        const TTest *const tests[] = { test_waiters_first, test_never_fits, test_own_cap_head,
                                       test_waiting_per_user, test_no_reply_holds_nothing, test_every_wait_ends };

        return stress_main_tests("test-stress-hostile-queue", N_UIDS, tests, ELEMENTSOF(tests), 40);
}
