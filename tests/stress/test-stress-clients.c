/* test-stress-clients.c: paddd under 2,000 concurrent client connections on a bus with
 * dbus-daemon's default limits. Every connection calls Acquire once (a client counts for
 * paddd from then on, as long as its connection lives); a quarter keep what they got, the
 * others give it back at once, and paddd must stay up, answer, grant within its cap and
 * list exactly what the clients say they hold, and get every slot back when they all go.
 *
 * Why ten uids: dbus-daemon allows 256 connections per uid (max_connections_per_user), so
 * 2,000 connections need at least eight uids besides root's (paddd and the observer); ten
 * uids of 200 connections each keep every uid below the limit. The bus's 2048 completed
 * connections (max_completed_connections) leave room for paddd, the observer and the
 * probe; its 64 unauthenticated ones (max_incomplete_connections) are never approached,
 * as each agent opens its connections one after the other. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"
#include "util.h"

#define N_UIDS 10
#define PER_UID 200                     /* connections per uid: below 256 */
#define N_CLIENTS (N_UIDS * PER_UID)
#define CAP 64
#define CONFIG "[Broker]\nMaxHelpers=64\nMaxHelpersPerNode=4096\n"
#define CHECK_EVERY 20                  /* rounds (of N_UIDS connections) between checks */

typedef struct Client {
        char unique[STRESS_NAME_MAX];
        char path[STRESS_PATH_MAX];     /* "" unless it holds a lease */
        uint32_t granted;
} Client;

typedef struct Clients {
        Agent agents[N_UIDS];
        Client c[N_UIDS][PER_UID];
        unsigned opened, holders;
        uint32_t held;                  /* the clients' own sum of what they hold */
} Clients;

/* obs NULL: only whether it runs. */
static void assert_paddd_up(sd_bus *obs, const Clients *cs) {
        ck_assert_msg(fixture_paddd_alive(&stress_fx),
                      "paddd exited (wait status 0x%x) with %u client connections open",
                      stress_fx.paddd_exit_status, cs->opened);
        ck_assert_msg(!obs || sbus_ping(obs) >= 0, "paddd does not answer with %u client connections open", cs->opened);
}

/* One AGENT_x on connection conn of every agent, then every reply. */
static void all_agents(Clients *cs, AgentCmd *cmd, unsigned conn, AgentReply *rep) {
        cmd->conn = conn;
        for (unsigned a = 0; a < N_UIDS; a++)
                ck_assert_int_eq(agent_send(&cs->agents[a], cmd), 0);
        for (unsigned a = 0; a < N_UIDS; a++)
                ck_assert_msg(agent_recv(&cs->agents[a], &rep[a], STRESS_SETTLE_MS) == 0,
                              "agent of uid %u does not answer", (unsigned) cs->agents[a].uid);
}

static void open_round(Clients *cs, unsigned conn) {
        AgentCmd cmd = { .op = AGENT_OPEN };
        AgentReply rep[N_UIDS];

        all_agents(cs, &cmd, conn, rep);
        for (unsigned a = 0; a < N_UIDS; a++) {
                ck_assert_msg(rep[a].r == 0, "connection %u of uid %u: %s", conn,
                              (unsigned) cs->agents[a].uid, rep[a].error);
                snprintf(cs->c[a][conn].unique, STRESS_NAME_MAX, "%s", rep[a].unique);
                cs->opened++;
        }
}

/* Every new connection asks for 1-3 helpers; Busy is a fine answer once the cap is met. */
static void acquire_round(Clients *cs, unsigned conn) {
        AgentCmd cmd = { .op = AGENT_ACQUIRE, .helpers = 1 + conn % 3, .min = 1 };
        AgentReply rep[N_UIDS];

        all_agents(cs, &cmd, conn, rep);
        for (unsigned a = 0; a < N_UIDS; a++) {
                Client *c = &cs->c[a][conn];

                if (rep[a].r < 0 && !streq(rep[a].error, BROKER_ERROR_BUSY))
                        fixture_sleep_ms(200);  /* if paddd died of it, say so */
                assert_paddd_up(NULL, cs);
                if (rep[a].r < 0) {
                        ck_assert_msg(streq(rep[a].error, BROKER_ERROR_BUSY),
                                      "Acquire of client %u: %s", cs->opened, rep[a].error);
                        continue;
                }
                ck_assert_uint_ge(rep[a].granted, 1);
                snprintf(c->path, sizeof c->path, "%s", rep[a].path);
                c->granted = rep[a].granted;
                cs->held += c->granted;
                cs->holders++;
                ck_assert_msg(cs->held <= CAP, "the clients hold %u helpers, the cap is %u", cs->held, CAP);
        }
}

/* Three clients in four give their lease back at once: they stay clients. */
static void release_round(Clients *cs, unsigned conn) {
        AgentReply rep;

        if (conn % 4 == 0)
                return;
        for (unsigned a = 0; a < N_UIDS; a++) {
                Client *c = &cs->c[a][conn];
                AgentCmd cmd = { .op = AGENT_RELEASE, .conn = conn };

                if (!c->path[0])
                        continue;
                snprintf(cmd.path, sizeof cmd.path, "%s", c->path);
                ck_assert_int_eq(agent_call(&cs->agents[a], &cmd, &rep), 0);
                ck_assert_msg(rep.r == 0, "Release of %s: %s", c->path, rep.error);
                cs->held -= c->granted;
                cs->holders--;
                c->path[0] = '\0';
                c->granted = 0;
        }
}

static const Client *find_holder(const Clients *cs, const char *path) {
        for (unsigned a = 0; a < N_UIDS; a++)
                for (unsigned i = 0; i < PER_UID; i++)
                        if (streq(cs->c[a][i].path, path))
                                return &cs->c[a][i];
        return NULL;
}

/* Nothing moves between the agents' rounds: the books must match the clients exactly. */
static void check_books(sd_bus *obs, const Clients *cs) {
        _cleanup_(books_done) Books k = {};
        char msg[256];

        assert_paddd_up(obs, cs);
        ck_assert_int_ge(books_read(obs, &k), 0);
        ck_assert_msg(books_violations(&k, true, msg, sizeof msg) == 0, "%u clients: %s", cs->opened, msg);
        ck_assert_msg(k.in_use == cs->held && k.leases == cs->holders,
                      "%u clients: paddd has %u helpers in %u leases, the clients hold %u in %u",
                      cs->opened, k.in_use, k.leases, cs->held, cs->holders);
        for (size_t i = 0; i < k.n_list; i++) {
                const Client *c = find_holder(cs, k.list[i].path);

                ck_assert_msg(c, "paddd lists %s, which no client holds", k.list[i].path);
                ck_assert_str_eq(k.list[i].owner, c->unique);
                ck_assert_uint_eq(k.list[i].granted, c->granted);
        }
}

START_TEST(test_two_thousand_clients) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        _cleanup_(books_done) Books k = {};
        _cleanup_free_ Clients *cs = calloc(1, sizeof(Clients));
        uid_t uids[N_UIDS];
        long long t0;
        long hwm;

        ck_assert_ptr_nonnull(cs);
        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS), N_UIDS);
        stress_start(CONFIG);
        ck_assert_int_eq(stress_match_rules_allowed(stress_fx.address, 512), 512);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        for (unsigned a = 0; a < N_UIDS; a++)
                ck_assert_int_eq(agent_spawn(&cs->agents[a], uids[a], PER_UID, stress_fx.address), 0);

        t0 = fixture_now_ms();
        for (unsigned conn = 0; conn < PER_UID; conn++) {
                open_round(cs, conn);
                acquire_round(cs, conn);
                release_round(cs, conn);
                if (conn % CHECK_EVERY == CHECK_EVERY - 1)
                        check_books(obs, cs);
        }
        check_books(obs, cs);
        ck_assert_uint_eq(cs->opened, N_CLIENTS);
        ck_assert_uint_gt(cs->holders, 0);
        ck_assert_uint_lt(cs->holders, N_CLIENTS);
        hwm = stress_vm_hwm_kib(stress_fx.paddd_pid);
        printf("clients: %u connections of %u uids open in %lld ms; %u hold %u of %u helpers; "
               "paddd peak RSS %.1f MiB\n", cs->opened, N_UIDS, fixture_now_ms() - t0,
               cs->holders, cs->held, CAP, (double) hwm / 1024.0);

        for (unsigned a = 0; a < N_UIDS; a++)
                agent_stop(&cs->agents[a]);
        books_wait_empty(obs, &k);
        ck_assert_msg(k.in_use == 0 && k.leases == 0 && k.waiting == 0,
                      "after every client left: InUse %u, Leases %u, Waiting %u", k.in_use, k.leases, k.waiting);
        cs->opened = 0;
        assert_paddd_up(obs, cs);
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-clients", N_UIDS, two_thousand_clients, 110);
}
