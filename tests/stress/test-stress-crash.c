/* test-stress-crash.c: the crash storm. A thousand times, a client process of one of three
 * uids connects, asks for helpers (in a third of the rounds while an observer holds every
 * slot, so the call queues as a waiter) and is SIGKILLed at a random moment: while it
 * connects, before its call reached paddd, while it waits, or holding its lease. After
 * every kill the books must come back to the observer's alone, and after the storm InUse,
 * Leases and Waiting are 0. The time from kill(2) to the first GetAll that shows the slots
 * back (rounds where the client held a lease or waited) is printed as a median and p99. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"
#include "util.h"

#define ROUNDS 1000
#define N_UIDS 3
#define CAP 4
#define CONFIG "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\n"
#define RECLAIM_MS 2000                 /* bound on one reclaim (not a speed assertion) */
#define MAX_KILL_DELAY_US 2000

typedef enum Moment { MOMENT_CONNECTING, MOMENT_IN_FLIGHT, MOMENT_HOLDING, MOMENT_WAITING, _MOMENT_MAX } Moment;

typedef struct Storm {
        sd_bus *obs;
        char blocker[STRESS_PATH_MAX];  /* the observer's lease of every slot, or "" */
        uid_t uids[N_UIDS];
        unsigned seed;
        unsigned count[_MOMENT_MAX];    /* rounds per Moment */
        double *latency_ms;
        size_t n_latency;
} Storm;

static void set_blocker(Storm *st, bool want) {
        char err[STRESS_ERROR_MAX];
        uint32_t granted = 0;

        if (want && !st->blocker[0]) {
                int r = sbus_acquire(st->obs, CAP, CAP, 0, "blocker", st->blocker, &granted, err);
                ck_assert_msg(r == 0, "the observer's Acquire of every slot: %s", err);
                ck_assert_uint_eq(granted, CAP);
        } else if (!want && st->blocker[0]) {
                ck_assert_msg(sbus_release(st->obs, st->blocker, err) == 0, "Release: %s", err);
                st->blocker[0] = '\0';
        }
}

/* The books as they must be with no client but the observer. */
static bool books_settled(const Storm *st, const Books *k) {
        uint32_t mine = st->blocker[0] ? CAP : 0;

        return k->in_use == mine && k->leases == (mine ? 1u : 0u) && k->waiting == 0;
}

static void wait_waiting(Storm *st) {
        long long deadline = fixture_now_ms() + RECLAIM_MS;
        Books k = {};

        while (books_read_counts(st->obs, &k) >= 0 && k.waiting == 0 && fixture_now_ms() < deadline)
                ;
        ck_assert_msg(k.waiting == 1, "the client's Acquire never queued (Waiting %u)", k.waiting);
}

/* Kill the client and time the reclaim; returns the latency in ms. */
static double kill_and_reclaim(Storm *st, Agent *a, unsigned round) {
        long long t0 = stress_now_us(), t;
        Books k = {};

        agent_kill(a);
        for (;;) {
                ck_assert_int_ge(books_read_counts(st->obs, &k), 0);
                t = stress_now_us();
                if (books_settled(st, &k))
                        return (double) (t - t0) / 1000.0;
                ck_assert_msg(t - t0 < RECLAIM_MS * 1000LL,
                              "round %u: %lld ms after the kill InUse %u, Leases %u, Waiting %u",
                              round, (t - t0) / 1000, k.in_use, k.leases, k.waiting);
        }
}

static Moment send_acquire(Storm *st, Agent *a, bool queue) {
        AgentCmd cmd = { .op = AGENT_ACQUIRE, .helpers = 1 + rand_r(&st->seed) % CAP, .min = 1,
                         .wait_usec = queue ? 5000000 : 0 };
        AgentReply rep;

        ck_assert_int_eq(agent_send(a, &cmd), 0);
        if (queue) {
                wait_waiting(st);
                usleep(rand_r(&st->seed) % MAX_KILL_DELAY_US);
                return MOMENT_WAITING;
        }
        usleep(rand_r(&st->seed) % MAX_KILL_DELAY_US);
        if (agent_recv(a, &rep, 0) < 0)
                return MOMENT_IN_FLIGHT;
        ck_assert_msg(rep.r == 0, "the client's Acquire with every slot free: %s", rep.error);
        return MOMENT_HOLDING;
}

/* One round in ten the client dies while it connects, before it said a word to paddd. */
static Moment connect_and_acquire(Storm *st, Agent *a, unsigned round) {
        bool queue = rand_r(&st->seed) % 3 == 0;
        AgentCmd open = { .op = AGENT_OPEN };
        AgentReply rep;

        set_blocker(st, queue);
        ck_assert_int_eq(agent_spawn(a, st->uids[round % N_UIDS], 1, stress_fx.address), 0);
        if (rand_r(&st->seed) % 10 == 0) {
                ck_assert_int_eq(agent_send(a, &open), 0);
                usleep(rand_r(&st->seed) % MAX_KILL_DELAY_US);
                return MOMENT_CONNECTING;
        }
        ck_assert_int_eq(agent_call(a, &open, &rep), 0);
        ck_assert_msg(rep.r == 0, "round %u: %s", round, rep.error);
        return send_acquire(st, a, queue);
}

static void one_round(Storm *st, unsigned round) {
        Agent a;
        Moment m = connect_and_acquire(st, &a, round);
        double ms = kill_and_reclaim(st, &a, round);

        st->count[m]++;
        if (m == MOMENT_HOLDING || m == MOMENT_WAITING)
                st->latency_ms[st->n_latency++] = ms;
}

START_TEST(test_crash_storm) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        _cleanup_free_ double *latency = calloc(ROUNDS, sizeof(double));
        _cleanup_(books_done) Books k = {};
        Storm st = { .latency_ms = latency };
        long long t0;

        ck_assert_ptr_nonnull(latency);
        ck_assert_uint_eq(stress_pick_uids(st.uids, N_UIDS), N_UIDS);
        st.seed = stress_seed("crash");
        stress_start(CONFIG);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        st.obs = obs;

        t0 = fixture_now_ms();
        for (unsigned round = 0; round < ROUNDS; round++)
                one_round(&st, round);
        set_blocker(&st, false);
        books_wait_empty(obs, &k);
        ck_assert_msg(k.in_use == 0 && k.leases == 0 && k.waiting == 0,
                      "after the storm: InUse %u, Leases %u, Waiting %u", k.in_use, k.leases, k.waiting);
        ck_assert(fixture_paddd_alive(&stress_fx));
        /* The storm hit paddd mid-lease and mid-wait, not only before the calls arrived. */
        ck_assert_uint_gt(st.count[MOMENT_HOLDING], 0);
        ck_assert_uint_gt(st.count[MOMENT_WAITING], 0);

        printf("crash: %u rounds in %lld ms: %u killed holding a lease, %u waiting, %u with the call "
               "in flight, %u connecting; kill-to-reclaim over %zu rounds: median %.2f ms, p99 %.2f ms, "
               "max %.2f ms\n", ROUNDS, fixture_now_ms() - t0, st.count[MOMENT_HOLDING],
               st.count[MOMENT_WAITING], st.count[MOMENT_IN_FLIGHT], st.count[MOMENT_CONNECTING], st.n_latency, stress_percentile(latency, st.n_latency, 50),
               stress_percentile(latency, st.n_latency, 99), stress_percentile(latency, st.n_latency, 100));
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-crash", N_UIDS, crash_storm, 90);
}
