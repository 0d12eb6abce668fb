/* test-stress-hostile-flood.c: ListLeases, whose answer grows with the leases, as a weapon.
 * Four ordinary uids hold 2,000 leases with long tags, so that every answer is a few
 * hundred KiB; a fifth uid sends ListLeases in bursts for two seconds from one connection
 * and does not read its socket meanwhile. paddd must keep serving others (a client of the
 * first uid does Acquire+Release throughout, each round trip within a bound, median and
 * p99 printed), keep its peak RSS bounded (printed), and answer the flooder past its burst
 * of BROKER_LIST_BURST calls and BROKER_LIST_PER_SEC a second with LimitsExceeded, which
 * the flooder counts once it reads at last. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"
#include "util.h"

#define N_HOLDERS 4
#define N_UIDS (N_HOLDERS + 1)
#define CONNS_PER_HOLDER 4
#define LEASES_PER_CONN 125             /* 4 x 4 x 125 = 2,000 leases */
#define N_LEASES (N_HOLDERS * CONNS_PER_HOLDER * LEASES_PER_CONN)
#define CONFIG "[Broker]\nMaxHelpers=64\nMaxHelpersPerNode=4096\nMaxLeasesPerClient=128\n"
#define FLOOD_BURST 20                  /* ListLeases sent at once */
#define FLOOD_EVERY_MS 100
#define FLOOD_MS 2000                   /* 400 calls in all */
#define FLOOD_CALLS (FLOOD_BURST * FLOOD_MS / FLOOD_EVERY_MS)
#define PROBE_MAX 20000
#define PROBE_BOUND_MS 1000             /* every Acquire+Release of others, flood or not */
#define RSS_BOUND_KIB (64 * 1024)

/* ---- holders ------------------------------------------------------------------------- */

static int hold_leases(AgentConns *conns, void *arg, char *msg) {
        char tag[BROKER_TAG_MAX + 1], path[STRESS_PATH_MAX], err[STRESS_ERROR_MAX];
        uint32_t g;
        int r;

        memset(tag, 'x', BROKER_TAG_MAX);
        tag[BROKER_TAG_MAX] = '\0';
        for (unsigned c = 0; c < CONNS_PER_HOLDER; c++) {
                r = sbus_open(conns->address, &conns->bus[c]);
                for (unsigned i = 0; r >= 0 && i < LEASES_PER_CONN; i++)
                        r = sbus_acquire(conns->bus[c], 1, 0, 0, tag, path, &g, err);
                if (r < 0) {
                        snprintf(msg, STRESS_ERROR_MAX, "%s", err);
                        return r;
                }
        }
        return 0;
}

/* ---- the flooder --------------------------------------------------------------------- */

typedef struct Flood {
        volatile int flooding, done;
        unsigned sent, answered, refused, refused_by_bus, other;
        char other_error[STRESS_ERROR_MAX];
        long long flood_ms;             /* from the first call to the last */
        unsigned probes;
        double probe_us[PROBE_MAX];
} Flood;

static int on_list_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Flood *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *sender = sd_bus_message_get_sender(m);

        if (!e)
                f->answered++;
        else if (sender && streq(sender, "org.freedesktop.DBus"))
                f->refused_by_bus++;
        else if (sd_bus_error_has_name(e, SD_BUS_ERROR_LIMITS_EXCEEDED))
                f->refused++;
        else if (f->other++ == 0)
                snprintf(f->other_error, sizeof f->other_error, "%s", e->name);
        return 0;
}

/* Sends its bursts without ever reading, then reads every answer (bounded). */
static int flood_run(AgentConns *conns, void *arg, char *msg) {
        sd_bus *b = conns->bus[0];
        Flood *f = arg;
        long long t0 = fixture_now_ms(), end;
        int r = 0;

        f->flooding = 1;
        for (unsigned burst = 0; r >= 0 && burst < FLOOD_CALLS / FLOOD_BURST; burst++) {
                for (unsigned i = 0; r >= 0 && i < FLOOD_BURST; i++) {
                        r = sd_bus_call_method_async(b, NULL, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                                     "ListLeases", on_list_reply, f, "");
                        f->sent += r >= 0;
                }
                if (r >= 0)
                        r = sd_bus_flush(b);
                fixture_sleep_ms(FLOOD_EVERY_MS);
        }
        f->flood_ms = fixture_now_ms() - t0;
        f->flooding = 0;
        if (r < 0) {
                snprintf(msg, STRESS_ERROR_MAX, "sending ListLeases %u: %s", f->sent, strerror(-r));
                return r;
        }
        end = fixture_now_ms() + STRESS_SETTLE_MS;
        while (f->answered + f->refused + f->refused_by_bus + f->other < f->sent && fixture_now_ms() < end) {
                while ((r = sd_bus_process(b, NULL)) > 0)
                        ;
                if (r < 0)
                        break;
                (void) sd_bus_wait(b, 50 * 1000);
        }
        f->done = 1;
        return MIN(r, 0);
}

/* ---- the prober ---------------------------------------------------------------------- */

/* Acquire+Release, timed, from when the flood starts to when it stops (bounded). */
static int probe_run(AgentConns *conns, void *arg, char *msg) {
        char path[STRESS_PATH_MAX];
        Flood *f = arg;
        long long end = fixture_now_ms() + STRESS_SETTLE_MS;
        uint32_t g;

        while (!f->flooding && !f->done && fixture_now_ms() < end)
                fixture_sleep_ms(1);
        end = fixture_now_ms() + 2 * FLOOD_MS + STRESS_SETTLE_MS;
        while (f->flooding && f->probes < PROBE_MAX && fixture_now_ms() < end) {
                long long t0 = stress_now_us();

                if (sbus_acquire(conns->bus[0], 1, 0, 0, NULL, path, &g, msg) < 0 ||
                    sbus_release(conns->bus[0], path, msg) < 0)
                        return -EIO;
                f->probe_us[f->probes++] = (double) (stress_now_us() - t0);
                fixture_sleep_ms(2);
        }
        return 0;
}

/* Before: ListLeases was answered to anyone as often as asked, each answer built whole
 * and queued until it could be written; a caller that never read made paddd hold its
 * answers (hundreds of KiB each with 2,000 leases) and spend itself building them while
 * everyone else waited. */
START_TEST(test_list_flood) {
        enum { FLOODER = N_HOLDERS, PROBER };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        uid_t uids[N_UIDS];
        Agent ag[N_UIDS + 1];
        Flood *f = stress_shared(sizeof(Flood));
        AgentReply rep;
        Books k = {};
        unsigned allowed;
        double worst;
        long hwm;

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS), N_UIDS);
        stress_start(CONFIG);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        for (unsigned a = 0; a < N_UIDS; a++)
                ck_assert_int_eq(agent_spawn(&ag[a], uids[a], CONNS_PER_HOLDER, stress_fx.address), 0);
        ck_assert_int_eq(agent_spawn(&ag[PROBER], uids[0], 1, stress_fx.address), 0);
        for (unsigned a = 0; a < N_HOLDERS; a++)
                ck_assert_int_eq(agent_send(&ag[a], &(AgentCmd) { .op = AGENT_RUN, .fn = hold_leases }), 0);
        for (unsigned a = 0; a < N_HOLDERS; a++) {
                ck_assert_int_eq(agent_recv(&ag[a], &rep, STRESS_SETTLE_MS), 0);
                ck_assert_msg(rep.r == 0, "uid %u holding its leases: %s", (unsigned) uids[a], rep.error);
        }
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.leases, N_LEASES);
        for (unsigned a = FLOODER; a <= PROBER; a++) {
                ck_assert_int_eq(agent_call(&ag[a], &(AgentCmd) { .op = AGENT_OPEN }, &rep), 0);
                ck_assert_msg(rep.r == 0, "%s", rep.error);
        }

        ck_assert_int_eq(agent_send(&ag[PROBER], &(AgentCmd) { .op = AGENT_RUN, .fn = probe_run, .arg = f }), 0);
        ck_assert_int_eq(agent_send(&ag[FLOODER], &(AgentCmd) { .op = AGENT_RUN, .fn = flood_run, .arg = f }), 0);
        ck_assert_int_eq(agent_recv(&ag[FLOODER], &rep, FLOOD_MS + 2 * STRESS_SETTLE_MS), 0);
        ck_assert_msg(rep.r == 0, "the flooder: %s", rep.error);
        ck_assert_int_eq(agent_recv(&ag[PROBER], &rep, STRESS_SETTLE_MS), 0);
        ck_assert_msg(rep.r == 0, "Acquire+Release of uid %u during the flood: %s", (unsigned) uids[0], rep.error);
        hwm = stress_vm_hwm_kib(stress_fx.paddd_pid);

        worst = stress_percentile(f->probe_us, f->probes, 100);
        printf("list flood: %u leases; uid %u sent %u ListLeases in %lld ms without reading: %u answered, %u "
               "refused by paddd, %u by the bus, %u otherwise\n", N_LEASES, (unsigned) uids[FLOODER], f->sent,
               f->flood_ms, f->answered, f->refused, f->refused_by_bus, f->other);
        printf("list flood: %u Acquire+Release of uid %u meanwhile: median %.0f us, p99 %.0f us, worst %.0f us; "
               "paddd peak RSS %.1f MiB\n", f->probes, (unsigned) uids[0], stress_percentile(f->probe_us, f->probes, 50),
               stress_percentile(f->probe_us, f->probes, 99), worst, (double) hwm / 1024.0);

        ck_assert_uint_eq(f->sent, FLOOD_CALLS);
        ck_assert_msg(f->other == 0, "%u ListLeases answered otherwise, first %s", f->other, f->other_error);
        ck_assert_msg(f->answered + f->refused + f->refused_by_bus == f->sent, "%u of %u ListLeases unanswered",
                      f->sent - f->answered - f->refused - f->refused_by_bus, f->sent);
        allowed = BROKER_LIST_BURST + BROKER_LIST_PER_SEC * (unsigned) ((f->flood_ms + 999) / 1000 + 1);
        ck_assert_msg(f->answered >= BROKER_LIST_BURST && f->answered <= allowed,
                      "the flooder got %u ListLeases answered of %u in %lld ms; its burst is %u, then %u a second "
                      "(at most %u)", f->answered, f->sent, f->flood_ms, BROKER_LIST_BURST, BROKER_LIST_PER_SEC,
                      allowed);
        ck_assert_int_ge((long) f->refused, (long) f->sent - (long) allowed - (long) f->refused_by_bus);
        ck_assert_msg(f->probes >= 20, "only %u Acquire+Release during the flood", f->probes);
        ck_assert_msg(worst <= PROBE_BOUND_MS * 1000.0, "an Acquire+Release of another uid took %.0f ms during the "
                      "flood (bound %d ms)", worst / 1000.0, PROBE_BOUND_MS);
        ck_assert_int_gt(hwm, 0);
        ck_assert_msg(hwm < RSS_BOUND_KIB, "paddd's peak RSS %.1f MiB", (double) hwm / 1024.0);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.leases, N_LEASES);

        for (unsigned a = 0; a <= PROBER; a++)
                agent_stop(&ag[a]);
        books_wait_empty(obs, &k);
        ck_assert_msg(k.leases == 0 && k.in_use == 0, "after everyone left: Leases %u, InUse %u", k.leases, k.in_use);
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-hostile-flood", N_UIDS, list_flood, 50);
}
