/* test-stress-restart.c: paddd keeps its books across a SIGKILL. 32 clients of three uids
 * hold leases; twenty times some release or shrink, a waiter queues, paddd is SIGKILLed,
 * a few clients go away while it is down, and paddd is started again. Right after READY=1
 * its books must list exactly the leases still held (same paths, owners and grants: the
 * re-adopted ones) and none of the gone clients', its log must say how many it re-adopted
 * and dropped, the waiter must have had NoReply from the bus, the old paths must still work
 * for their owners (Granted, Shrink) while a path released before the crash names nothing,
 * and new grants must get paths never issued before. After every grant the clients' own
 * counts must stay within MaxHelpers, the node caps and MaxHelpersPerUser: a greedy client
 * of a fourth uid asks for all it may have from before paddd is back on the bus until it
 * answers, and what it gets must fit beside what the others held through the crash. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"
#include "util.h"

#define N_UIDS 3
#define N_CLIENTS 32
#define PER_AGENT DIV_ROUND_UP(N_CLIENTS, N_UIDS)
#define ROUNDS 20
#define N_ALL (N_CLIENTS + 1)            /* and the greedy one, of a fourth uid */
#define GREEDY N_CLIENTS
#define CAP 52
#define USER_CAP 24                     /* above the 22 of one uid's 11 clients */
/* On a machine of one node its cap of 48 binds before MaxHelpers. */
#define CONFIG "[Broker]\nMaxHelpers=52\nMaxHelpersPerUser=24\nMaxHelpersPerNode=48\n"
#define MAX_ISSUED 2048

typedef struct RClient {
        unsigned agent, conn;
        char unique[STRESS_NAME_MAX];
        char path[STRESS_PATH_MAX];     /* "" when it holds nothing */
        char released[STRESS_PATH_MAX]; /* the last path it released, or "" */
        uint32_t granted;
} RClient;

/* The greedy client's Acquire, in its agent, from before paddd is up until it answers. */
typedef struct GreedyRun {
        long long deadline_ms;
        char path[STRESS_PATH_MAX];
        uint32_t granted;
} GreedyRun;

typedef struct Restart {
        Agent agents[N_UIDS + 1];       /* the last: the greedy client and the waiter */
        RClient c[N_ALL];
        char (*issued)[STRESS_PATH_MAX];/* every lease path paddd ever handed out */
        size_t n_issued;
        unsigned seed, round, adopt_lines, adopted_total, dropped_total;
        uint32_t cap;                   /* MaxHelpers, or the nodes' caps together if less */
        GreedyRun *greedy;              /* shared with the greedy client's agent */
        sd_bus *obs;
} Restart;

static AgentReply client_call(Restart *t, RClient *c, AgentCmd cmd) {
        AgentReply rep;

        cmd.conn = c->conn;
        ck_assert_msg(agent_call(&t->agents[c->agent], &cmd, &rep) == 0, "round %u: agent %u does not answer",
                      t->round, c->agent);
        return rep;
}

static void client_open(Restart *t, RClient *c) {
        AgentReply rep = client_call(t, c, (AgentCmd) { .op = AGENT_OPEN });

        ck_assert_msg(rep.r == 0, "connecting: %s", rep.error);
        snprintf(c->unique, sizeof c->unique, "%s", rep.unique);
        c->path[0] = c->released[0] = '\0';
        c->granted = 0;
}

/* The clients' own counts against MaxHelpers and MaxHelpersPerUser. */
static void assert_caps(const Restart *t) {
        uint32_t total = 0, user[N_UIDS + 1] = {};

        for (unsigned i = 0; i < N_ALL; i++) {
                total += t->c[i].granted;
                user[t->c[i].agent] += t->c[i].granted;
        }
        ck_assert_msg(total <= t->cap, "round %u: the clients hold %u helpers, the caps allow %u",
                      t->round, total, t->cap);
        for (unsigned u = 0; u <= N_UIDS; u++)
                ck_assert_msg(user[u] <= USER_CAP, "round %u: uid %u holds %u helpers, MaxHelpersPerUser is %u",
                              t->round, (unsigned) t->agents[u].uid, user[u], USER_CAP);
}

static void note_issued(Restart *t, const char *path) {
        for (size_t i = 0; i < t->n_issued; i++)
                ck_assert_msg(!streq(t->issued[i], path), "round %u: paddd handed out %s a second time",
                              t->round, path);
        ck_assert_uint_lt(t->n_issued, MAX_ISSUED);
        snprintf(t->issued[t->n_issued++], STRESS_PATH_MAX, "%s", path);
}

static void client_acquire(Restart *t, RClient *c, uint32_t helpers) {
        AgentCmd cmd = { .op = AGENT_ACQUIRE, .helpers = helpers, .min = 1 };
        AgentReply rep = client_call(t, c, cmd);

        if (rep.r < 0) {
                ck_assert_msg(streq(rep.error, BROKER_ERROR_BUSY), "round %u: Acquire: %s", t->round, rep.error);
                return;
        }
        note_issued(t, rep.path);
        snprintf(c->path, sizeof c->path, "%s", rep.path);
        c->granted = rep.granted;
        assert_caps(t);
}

static void client_release(Restart *t, RClient *c) {
        AgentCmd cmd = { .op = AGENT_RELEASE };
        AgentReply rep;

        snprintf(cmd.path, sizeof cmd.path, "%s", c->path);
        rep = client_call(t, c, cmd);
        ck_assert_msg(rep.r == 0, "round %u: Release of %s: %s", t->round, c->path, rep.error);
        memcpy(c->released, c->path, sizeof c->released);
        c->path[0] = '\0';
        c->granted = 0;
}

static void client_shrink(Restart *t, RClient *c) {
        AgentCmd cmd = { .op = AGENT_SHRINK, .count = 1 };
        AgentReply rep;

        snprintf(cmd.path, sizeof cmd.path, "%s", c->path);
        rep = client_call(t, c, cmd);
        ck_assert_msg(rep.r == 0, "round %u: Shrink of %s by its owner: %s", t->round, c->path, rep.error);
        ck_assert_msg(rep.granted == c->granted - 1, "round %u: Shrink of %s from %u by 1 left %u",
                      t->round, c->path, c->granted, rep.granted);
        c->granted = rep.granted;
}

static RClient *random_client(Restart *t) {
        return &t->c[rand_r(&t->seed) % N_CLIENTS];
}

/* Before the crash: three releases, three shrinks, then everyone without a lease asks. */
static void churn(Restart *t) {
        for (int i = 0; i < 3; i++) {
                RClient *c = random_client(t);
                if (c->path[0])
                        client_release(t, c);
        }
        for (int i = 0; i < 3; i++) {
                RClient *c = random_client(t);
                if (c->path[0] && c->granted >= 2)
                        client_shrink(t, c);
        }
        for (unsigned i = 0; i < N_CLIENTS; i++)
                if (!t->c[i].path[0])
                        client_acquire(t, &t->c[i], 1 + rand_r(&t->seed) % 2);
}

static const RClient *holder_of(const Restart *t, const char *path) {
        for (unsigned i = 0; i < N_ALL; i++)
                if (t->c[i].path[0] && streq(t->c[i].path, path))
                        return &t->c[i];
        return NULL;
}

/* Nothing moves while the test checks: paddd's books are the clients' holdings, exactly. */
static void assert_books_match(Restart *t, const char *when) {
        _cleanup_(books_done) Books k = {};
        uint32_t held = 0, holders = 0;
        char msg[256];

        for (unsigned i = 0; i < N_ALL; i++) {
                held += t->c[i].granted;
                holders += t->c[i].path[0] != '\0';
        }
        ck_assert_int_ge(books_read(t->obs, &k), 0);
        ck_assert_msg(books_violations(&k, true, msg, sizeof msg) == 0, "round %u, %s: %s", t->round, when, msg);
        ck_assert_msg(k.leases == holders && k.in_use == held,
                      "round %u, %s: paddd has %u leases of %u helpers, the clients hold %u of %u",
                      t->round, when, k.leases, k.in_use, holders, held);
        for (size_t i = 0; i < k.n_list; i++) {
                const RClient *c = holder_of(t, k.list[i].path);

                ck_assert_msg(c, "round %u, %s: paddd lists %s (owner %s), which no live client holds",
                              t->round, when, k.list[i].path, k.list[i].owner);
                ck_assert_msg(streq(k.list[i].owner, c->unique) && k.list[i].granted == c->granted,
                              "round %u, %s: %s is %s's with %u, paddd says %s's with %u", t->round, when,
                              c->path, c->unique, c->granted, k.list[i].owner, k.list[i].granted);
        }
}

/* A waiter in the queue when paddd dies: the bus answers it. Sent, not yet answered. The
 * clients hold at least 32 helpers (one each at least, below the caps), so its 24 never
 * fit in the 48 of one node or the 52 of the machine. */
static void queue_waiter(Restart *t, Agent *w) {
        AgentCmd cmd = { .op = AGENT_ACQUIRE, .conn = 1, .helpers = USER_CAP, .min = USER_CAP,
                         .wait_usec = 30000000 };
        long long deadline = fixture_now_ms() + STRESS_SETTLE_MS;
        Books k = {};

        ck_assert_int_eq(agent_send(w, &cmd), 0);
        while (books_read_counts(t->obs, &k) >= 0 && k.waiting == 0 && fixture_now_ms() < deadline)
                fixture_sleep_ms(1);
        ck_assert_msg(k.waiting == 1, "round %u: the waiter did not queue (Waiting %u)", t->round, k.waiting);
}

static void assert_waiter_no_reply(Restart *t, Agent *w) {
        AgentReply rep;

        ck_assert_msg(agent_recv(w, &rep, STRESS_SETTLE_MS) == 0, "round %u: the waiter got no answer", t->round);
        ck_assert_msg(rep.r < 0 && streq(rep.error, SD_BUS_ERROR_NO_REPLY),
                      "round %u: the waiter queued at the crash got r=%d %s, not %s",
                      t->round, rep.r, rep.error, SD_BUS_ERROR_NO_REPLY);
}

/* While paddd is down, up to three holders go away: their leases must be dropped. */
static unsigned drop_some(Restart *t, bool *gone) {
        unsigned n = rand_r(&t->seed) % 4, dropped = 0;

        for (unsigned i = 0; i < n; i++) {
                RClient *c = random_client(t);
                if (!c->path[0] || gone[c - t->c])
                        continue;
                client_call(t, c, (AgentCmd) { .op = AGENT_CLOSE });
                gone[c - t->c] = true;
                c->path[0] = '\0';
                c->granted = 0;
                dropped++;
        }
        return dropped;
}

/* One line at start says how many leases were re-adopted and dropped. */
static void assert_start_line(Restart *t, unsigned adopted, unsigned dropped) {
        char line[1024], a[16], d[16], padded[1040];
        int n = stress_log_find(&stress_fx, "adopt", line, sizeof line);

        ck_assert_msg(n > (int) t->adopt_lines, "round %u: paddd logged no line on re-adopting at its start "
                      "(%d such lines in all)", t->round, n);
        t->adopt_lines = (unsigned) n;
        snprintf(padded, sizeof padded, " %s ", line);
        for (char *p = padded; *p; p++)
                if (*p < '0' || *p > '9')
                        *p = ' ';
        snprintf(a, sizeof a, " %u ", adopted);
        snprintf(d, sizeof d, " %u ", dropped);
        ck_assert_msg(strstr(padded, a) && strstr(padded, d),
                      "round %u: re-adopted %u and dropped %u, paddd's line says: %s", t->round, adopted, dropped, line);
}

/* Old paths work for their owners; a path released before the crash names nothing now. */
static void assert_old_paths(Restart *t) {
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                RClient *c = &t->c[i];
                AgentCmd cmd = { .op = AGENT_GRANTED };
                AgentReply rep;

                if (c->path[0]) {
                        snprintf(cmd.path, sizeof cmd.path, "%s", c->path);
                        rep = client_call(t, c, cmd);
                        ck_assert_msg(rep.r == 0 && rep.granted == c->granted,
                                      "round %u: %s read Granted of its %s: r=%d %s, %u (it holds %u)",
                                      t->round, c->unique, c->path, rep.r, rep.error, rep.granted, c->granted);
                }
                if (c->released[0]) {
                        cmd.op = AGENT_RELEASE;
                        snprintf(cmd.path, sizeof cmd.path, "%s", c->released);
                        rep = client_call(t, c, cmd);
                        ck_assert_msg(rep.r < 0, "round %u: Release of %s, released before the crash, "
                                      "succeeded: it names a new lease", t->round, c->released);
                }
        }
        for (unsigned i = 0; i < N_CLIENTS; i++)
                if (t->c[i].path[0] && t->c[i].granted >= 2) {
                        client_shrink(t, &t->c[i]);
                        break;
                }
}

static void holders(const Restart *t, unsigned *ret) {
        *ret = 0;
        for (unsigned i = 0; i < N_CLIENTS; i++)
                *ret += t->c[i].path[0] != '\0';
}

static bool bus_says_not_there(const char *err) {
        return streq(err, SD_BUS_ERROR_SERVICE_UNKNOWN) || streq(err, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
               streq(err, SD_BUS_ERROR_NO_REPLY);
}

/* In the agent: ask for all a uid may have, again and again while paddd is not on the bus. */
static int greedy_spin(AgentConns *conns, void *arg, char *msg) {
        GreedyRun *g = arg;
        char err[STRESS_ERROR_MAX];

        g->path[0] = '\0';
        g->granted = 0;
        while (fixture_now_ms() < g->deadline_ms) {
                if (sbus_acquire(conns->bus[0], USER_CAP, 1, 0, "greedy", g->path, &g->granted, err) == 0 ||
                    streq(err, BROKER_ERROR_BUSY))
                        return 0;
                if (!bus_says_not_there(err)) {
                        snprintf(msg, STRESS_ERROR_MAX, "%s", err);
                        return -EIO;
                }
                usleep(200);
        }
        snprintf(msg, STRESS_ERROR_MAX, "paddd never answered");
        return -ETIMEDOUT;
}

static void greedy_start(Restart *t) {
        AgentCmd cmd = { .op = AGENT_RUN, .fn = greedy_spin, .arg = t->greedy };

        t->greedy->deadline_ms = fixture_now_ms() + STRESS_SETTLE_MS;
        ck_assert_int_eq(agent_send(&t->agents[N_UIDS], &cmd), 0);
}

/* Whatever paddd granted the moment it could must fit beside what the clients held through
 * the crash: a paddd that answers before it re-adopted its books over-commits here. */
static void greedy_collect(Restart *t) {
        RClient *g = &t->c[GREEDY];
        AgentReply rep;

        ck_assert_int_eq(agent_recv(&t->agents[N_UIDS], &rep, 2 * STRESS_SETTLE_MS), 0);
        ck_assert_msg(rep.r == 0, "round %u: the greedy client's Acquire: %s", t->round, rep.error);
        if (!t->greedy->path[0])
                return;
        note_issued(t, t->greedy->path);
        memcpy(g->path, t->greedy->path, sizeof g->path);
        g->granted = t->greedy->granted;
        assert_caps(t);
}

static void one_restart(Restart *t, Agent *waiter) {
        bool gone[N_CLIENTS] = {};
        unsigned adopted, dropped;

        churn(t);
        assert_books_match(t, "before the crash");
        queue_waiter(t, waiter);
        ck_assert_int_eq(fixture_kill_paddd(&stress_fx), 0);
        assert_waiter_no_reply(t, waiter);
        dropped = drop_some(t, gone);
        holders(t, &adopted);

        greedy_start(t);
        ck_assert_int_eq(fixture_start_paddd(&stress_fx), 0);
        greedy_collect(t);
        assert_books_match(t, "right after the restart");
        assert_start_line(t, adopted, dropped);
        assert_old_paths(t);
        if (t->c[GREEDY].path[0])
                client_release(t, &t->c[GREEDY]);
        for (unsigned i = 0; i < N_CLIENTS; i++)
                if (gone[i])
                        client_open(t, &t->c[i]);
        t->adopted_total += adopted;
        t->dropped_total += dropped;
}

/* MaxHelpers, or what the nodes' caps allow together if that is less. */
static uint32_t caps_allow(sd_bus *obs) {
        Books k = {};
        uint32_t sum = 0;

        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        for (size_t i = 0; i < k.n_nodes; i++)
                sum += k.nodes[i].max;
        ck_assert_uint_eq(k.max_helpers, CAP);
        return MIN(k.max_helpers, sum);
}

START_TEST(test_restart_keeps_books) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        _cleanup_free_ Restart *t = calloc(1, sizeof(Restart));
        _cleanup_free_ char (*issued)[STRESS_PATH_MAX] = calloc(MAX_ISSUED, STRESS_PATH_MAX);
        uid_t uids[N_UIDS + 1];
        long long t0;

        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(issued);
        t->issued = issued;
        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS + 1), N_UIDS + 1);
        t->seed = stress_seed("restart");
        stress_start(CONFIG);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        t->obs = obs;
        t->greedy = stress_shared(sizeof(GreedyRun));
        ck_assert_ptr_nonnull(t->greedy);
        t->cap = caps_allow(obs);
        for (unsigned u = 0; u < N_UIDS; u++)
                ck_assert_int_eq(agent_spawn(&t->agents[u], uids[u], PER_AGENT, stress_fx.address), 0);
        /* The greedy client (connection 0) and the waiter (1) share a fourth uid. */
        ck_assert_int_eq(agent_spawn(&t->agents[N_UIDS], uids[N_UIDS], 2, stress_fx.address), 0);
        ck_assert_int_eq(agent_call(&t->agents[N_UIDS], &(AgentCmd) { .op = AGENT_OPEN, .conn = 1 },
                                    &(AgentReply) {}), 0);
        for (unsigned i = 0; i < N_ALL; i++) {
                t->c[i].agent = i == GREEDY ? N_UIDS : i % N_UIDS;
                t->c[i].conn = i == GREEDY ? 0 : i / N_UIDS;
                client_open(t, &t->c[i]);
        }

        t0 = fixture_now_ms();
        for (t->round = 1; t->round <= ROUNDS; t->round++)
                one_restart(t, &t->agents[N_UIDS]);
        printf("restart: %u restarts in %lld ms: %u leases re-adopted, %u dropped, %zu paths issued, none twice\n",
               ROUNDS, fixture_now_ms() - t0, t->adopted_total, t->dropped_total, t->n_issued);
        ck_assert_uint_gt(t->adopted_total, 0);
        for (unsigned u = 0; u <= N_UIDS; u++)
                agent_stop(&t->agents[u]);
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-restart", N_UIDS + 1, restart_keeps_books, 100);
}
