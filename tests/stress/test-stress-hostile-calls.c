/* test-stress-hostile-calls.c: single calls that paddd once got wrong, made by clients of
 * ordinary uids on a bus with dbus-daemon's default limits. A lease whose ttl runs out
 * tells its owner, and only its owner, with Expired; SetQuota from an admin (here an
 * ordinary uid in AdminGroup) refuses a quota above 4096 and keeps the old one; a FIFO
 * among the drop-in config files fails Reload and SIGHUP with its name while paddd goes on
 * answering; RaisePriority gives one answer for another uid's thread and for a thread that
 * does not exist, and leaves the foreign thread's scheduling alone. Each test says what
 * paddd did before. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stress.h"
#include "util.h"

#define N_UIDS 2
#define E_INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"
#define E_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define E_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"
#define QUICK_MS 1000
#define MSG_MAX 512

static uid_t uids[N_UIDS];

/* What an agent's call answered: the error's name and message ("" on success). */
typedef struct Answer {
        int r;
        char name[STRESS_ERROR_MAX];
        char message[MSG_MAX];
} Answer;

static int answer(Answer *a, int r, sd_bus_error *e) {
        a->r = MIN(r, 0);
        snprintf(a->name, sizeof a->name, "%s", r < 0 ? (e->name ? e->name : strerror(-r)) : "");
        snprintf(a->message, sizeof a->message, "%s", r < 0 && e->message ? e->message : "");
        sd_bus_error_free(e);
        return 0;
}

/* The primary group of uid, which its agent keeps (stress_become drops the others). */
static const char *group_of(uid_t uid) {
        static char name[64];
        struct passwd *pw = getpwuid(uid);
        struct group *gr = pw ? getgrgid(pw->pw_gid) : NULL;

        if (!gr)
                return NULL;
        snprintf(name, sizeof name, "%s", gr->gr_name);
        return name;
}

/* paddd with config, an observer (root), and one agent per uid, each with connection 0. */
static sd_bus *start_with(const char *config, Agent *ag) {
        sd_bus *obs = NULL;

        stress_start(config);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        for (size_t i = 0; i < N_UIDS; i++) {
                AgentReply rep;

                ck_assert_int_eq(agent_spawn(&ag[i], uids[i], 4, stress_fx.address), 0);
                ck_assert_int_eq(agent_call(&ag[i], &(AgentCmd) { .op = AGENT_OPEN }, &rep), 0);
                ck_assert_msg(rep.r == 0, "agent of uid %u: %s", (unsigned) uids[i], rep.error);
        }
        return obs;
}

static void stop_all(Agent *ag) {
        for (size_t i = 0; i < N_UIDS; i++)
                agent_stop(&ag[i]);
}

static void run_in(Agent *a, AgentFn fn, void *arg) {
        AgentReply rep;

        ck_assert_int_eq(agent_call(a, &(AgentCmd) { .op = AGENT_RUN, .fn = fn, .arg = arg }, &rep), 0);
        ck_assert_msg(rep.r == 0, "in the agent of uid %u: %s", (unsigned) a->uid, rep.error);
}

/* ---- 6: Expired --------------------------------------------------------------------- */

#define TTL_USEC 200000
#define EXPIRY_MAX_MS 3000

typedef struct Expiry {
        volatile int listening, owner_done;
        char lease[STRESS_PATH_MAX];
        char got[STRESS_PATH_MAX];      /* the path the owner's Expired came from */
        unsigned owner_got, other_got;
        long long after_ms;             /* from the grant to the signal */
        Answer granted_after;           /* the lease's Granted, read after the signal */
} Expiry;

static int count_expired(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unsigned *n = userdata;

        (*n)++;
        return 0;
}

static int owner_expired(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Expiry *x = userdata;

        if (x->owner_got++ == 0)
                snprintf(x->got, sizeof x->got, "%s", sd_bus_message_get_path(m) ?: "");
        return 0;
}

static void pump(sd_bus *b, long long until_ms, const volatile unsigned *got, const volatile int *stop) {
        while (fixture_now_ms() < until_ms && !(got && *got) && !(stop && *stop)) {
                while (sd_bus_process(b, NULL) > 0)
                        ;
                (void) sd_bus_wait(b, 20 * 1000);
        }
}

/* Another uid listens for every Expired signal a connection may receive. */
static int other_listens(AgentConns *conns, void *arg, char *msg) {
        Expiry *x = arg;
        int r = sd_bus_match_signal(conns->bus[0], NULL, NULL, NULL, LEASE_INTERFACE, "Expired", count_expired,
                                    &x->other_got);

        if (r < 0) {
                snprintf(msg, STRESS_ERROR_MAX, "AddMatch: %s", strerror(-r));
                return r;
        }
        x->listening = 1;
        pump(conns->bus[0], fixture_now_ms() + 2 * EXPIRY_MAX_MS, NULL, &x->owner_done);
        /* What might still be on its way after the owner's. */
        pump(conns->bus[0], fixture_now_ms() + 200, NULL, NULL);
        return 0;
}

static int owner_waits(AgentConns *conns, void *arg, char *msg) {
        sd_bus *b = conns->bus[0];
        sd_bus_error e = SD_BUS_ERROR_NULL;
        Expiry *x = arg;
        SAcquire a = { .helpers = 2, .node = -1, .ttl_usec = TTL_USEC };
        uint32_t g;
        long long t0;
        int r = sd_bus_match_signal(b, NULL, BROKER_BUS_NAME, NULL, LEASE_INTERFACE, "Expired", owner_expired, x);

        if (r >= 0)
                r = sbus_acquire_with(b, &a, x->lease, &g, msg);
        if (r < 0)
                return r;
        t0 = fixture_now_ms();
        pump(b, t0 + EXPIRY_MAX_MS, &x->owner_got, NULL);
        x->after_ms = fixture_now_ms() - t0;
        r = sd_bus_get_property_trivial(b, BROKER_BUS_NAME, x->lease, LEASE_INTERFACE, "Granted", &e, 'u', &g);
        answer(&x->granted_after, r, &e);
        x->owner_done = 1;
        return 0;
}

/* Before: the lease vanished at its ttl without a word; its owner learnt of it only by
 * calling it and getting UnknownObject. */
START_TEST(test_expired_signal) {
        Agent ag[N_UIDS];
        Expiry *x = stress_shared(sizeof(Expiry));
        AgentReply rep;
        Books k = {};

        ck_assert_ptr_nonnull(x);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = start_with("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\n", ag);
        ck_assert_int_eq(agent_send(&ag[1], &(AgentCmd) { .op = AGENT_RUN, .fn = other_listens, .arg = x }), 0);
        for (long long end = fixture_now_ms() + QUICK_MS; !x->listening && fixture_now_ms() < end;)
                fixture_sleep_ms(2);
        ck_assert_msg(x->listening, "the other uid's agent did not start listening");
        run_in(&ag[0], owner_waits, x);
        ck_assert_int_eq(agent_recv(&ag[1], &rep, STRESS_SETTLE_MS), 0);
        ck_assert_msg(rep.r == 0, "%s", rep.error);

        ck_assert_msg(x->owner_got == 1, "the owner got %u Expired signals for %s (ttl %d ms) in %d ms",
                      x->owner_got, x->lease, TTL_USEC / 1000, EXPIRY_MAX_MS);
        ck_assert_str_eq(x->got, x->lease);
        ck_assert_int_ge(x->after_ms, TTL_USEC / 1000 - 50);
        ck_assert_msg(x->other_got == 0, "uid %u got %u Expired signal(s) of uid %u's lease", (unsigned) uids[1],
                      x->other_got, (unsigned) uids[0]);
        ck_assert_msg(x->granted_after.r < 0 && streq(x->granted_after.name, E_UNKNOWN_OBJECT),
                      "the lease after Expired: %s", x->granted_after.r == 0 ? "still there" : x->granted_after.name);
        books_wait_empty(obs, &k);
        ck_assert_uint_eq(k.in_use, 0);
        printf("expired: the owner got Expired %lld ms after the grant (ttl %d ms); the other uid got %u\n",
               x->after_ms, TTL_USEC / 1000, x->other_got);
        stop_all(ag);
}
END_TEST

/* ---- 7: SetQuota's bounds ------------------------------------------------------------- */

typedef struct Quota {
        int32_t node;
        uint32_t max;
        Answer a;
} Quota;

static int set_quota(AgentConns *conns, void *arg, char *msg) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        Quota *q = arg;
        int r = sd_bus_call_method(conns->bus[0], BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &e,
                                   NULL, "iu", q->node, q->max);

        return answer(&q->a, r, &e);
}

static Answer *quota_in(Agent *a, Quota *q, int32_t node, uint32_t max) {
        q->node = node;
        q->max = max;
        run_in(a, set_quota, q);
        return &q->a;
}

static void caps(sd_bus *obs, uint32_t *machine, uint32_t *node0) {
        Books k = {};

        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_gt(k.n_nodes, 0);
        *machine = k.max_helpers;
        *node0 = k.nodes[0].max;
}

/* Before: SetQuota took any u, so 4097 or 4294967295 became the cap, past what the config
 * itself may set and past what one Acquire may ask. */
START_TEST(test_set_quota_bounds) {
        static const uint32_t bad[] = { BROKER_HELPERS_MAX + 1, UINT32_MAX };
        char config[256];
        const char *group = group_of(uids[0]);
        Quota *q = stress_shared(sizeof(Quota));
        Agent ag[N_UIDS];
        uint32_t machine, node_cap, m2, n2;
        int32_t node;
        Books k = {};

        ck_assert_ptr_nonnull(q);
        ck_assert_msg(group, "uid %u has no primary group", (unsigned) uids[0]);
        snprintf(config, sizeof config, "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=3\nAdminGroup=%s\n", group);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = start_with(config, ag);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        node = k.nodes[0].node;
        caps(obs, &machine, &node_cap);

        /* The ordinary uid in AdminGroup is an admin; the other one is not. */
        ck_assert_str_eq(quota_in(&ag[1], q, -1, 2)->name, E_ACCESS_DENIED);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_msg(streq(quota_in(&ag[0], q, -1, bad[i])->name, E_INVALID_ARGS),
                              "SetQuota(-1, %u) from an admin: %s", bad[i], q->a.r == 0 ? "accepted" : q->a.name);
                ck_assert_msg(streq(quota_in(&ag[0], q, node, bad[i])->name, E_INVALID_ARGS),
                              "SetQuota(%d, %u) from an admin: %s", node, bad[i], q->a.r == 0 ? "accepted" : q->a.name);
                caps(obs, &m2, &n2);
                ck_assert_msg(m2 == machine && n2 == node_cap, "after SetQuota(.., %u): MaxHelpers %u (was %u), "
                              "node %d's cap %u (was %u)", bad[i], m2, machine, node, n2, node_cap);
        }
        /* The bound itself is a quota. */
        ck_assert_msg(quota_in(&ag[0], q, -1, BROKER_HELPERS_MAX)->r == 0, "SetQuota(-1, %u): %s", BROKER_HELPERS_MAX,
                      q->a.name);
        caps(obs, &m2, &n2);
        ck_assert_uint_eq(m2, BROKER_HELPERS_MAX);
        printf("set-quota bounds: 4097 and 4294967295 refused from admin uid %u (group %s), %u taken\n",
               (unsigned) uids[0], group, BROKER_HELPERS_MAX);
        stop_all(ag);
}
END_TEST

/* ---- 8: a FIFO among the drop-ins ---------------------------------------------------- */

typedef struct Reload {
        Answer a;
        long long took_ms;
} Reload;

static int reload(AgentConns *conns, void *arg, char *msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        Reload *rl = arg;
        long long t0 = fixture_now_ms();
        int r = sd_bus_message_new_method_call(conns->bus[0], &m, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                               "Reload");

        if (r >= 0)
                r = sd_bus_call(conns->bus[0], m, 3 * 1000000ULL, &e, NULL);
        rl->took_ms = fixture_now_ms() - t0;
        return answer(&rl->a, r, &e);
}

/* Acquire and Release from the other uid, answered within QUICK_MS each; the round trip. */
static long long serves_other(Agent *a) {
        AgentCmd c = { .op = AGENT_ACQUIRE, .helpers = 1 };
        AgentReply rep;
        long long t0 = fixture_now_ms();

        ck_assert_int_eq(agent_send(a, &c), 0);
        ck_assert_msg(agent_recv(a, &rep, QUICK_MS) == 0, "paddd did not answer an Acquire within %d ms", QUICK_MS);
        ck_assert_msg(rep.r == 0, "Acquire: %s", rep.error);
        c = (AgentCmd) { .op = AGENT_RELEASE };
        snprintf(c.path, sizeof c.path, "%s", rep.path);
        ck_assert_int_eq(agent_send(a, &c), 0);
        ck_assert_msg(agent_recv(a, &rep, QUICK_MS) == 0, "paddd did not answer a Release within %d ms", QUICK_MS);
        ck_assert_msg(rep.r == 0, "Release: %s", rep.error);
        return fixture_now_ms() - t0;
}

static int fifo_lines(void) {
        char line[1024];
        int n = stress_log_find(&stress_fx, "x.conf: not a regular file", line, sizeof line);

        ck_assert_int_ge(n, 0);
        return n;
}

/* Before: paddd opened every drop-in as it found it, and open() of a FIFO nobody writes
 * to blocks: Reload was never answered, SIGHUP froze paddd, and nobody was served again. */
START_TEST(test_config_fifo) {
        char config[256], dir[400], fifo[420];
        const char *group = group_of(uids[0]);
        Reload *rl = stress_shared(sizeof(Reload));
        Agent ag[N_UIDS];
        Books k = {};
        long long rt1, rt2;
        int before;

        ck_assert_ptr_nonnull(rl);
        ck_assert_msg(group, "uid %u has no primary group", (unsigned) uids[0]);
        snprintf(config, sizeof config, "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nAdminGroup=%s\n", group);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = start_with(config, ag);
        snprintf(dir, sizeof dir, "%s.d", stress_fx.config_path);
        snprintf(fifo, sizeof fifo, "%s/x.conf", dir);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        /* A new cap in the main file: the failed reload must not take it either. */
        snprintf(config, sizeof config, "[Broker]\nMaxHelpers=3\nMaxHelpersPerNode=4096\nAdminGroup=%s\n", group);
        ck_assert_int_eq(fixture_write_config(&stress_fx, config), 0);

        run_in(&ag[0], reload, rl);
        ck_assert_msg(rl->a.r < 0, "Reload with a FIFO as %s succeeded", fifo);
        ck_assert_msg(strstr(rl->a.message, "x.conf: not a regular file"), "Reload: %s (%s) after %lld ms",
                      rl->a.name, rl->a.message, rl->took_ms);
        rt1 = serves_other(&ag[1]);
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.max_helpers, 4);

        before = fifo_lines();
        ck_assert_int_eq(kill(stress_fx.paddd_pid, SIGHUP), 0);
        rt2 = serves_other(&ag[1]);
        for (long long end = fixture_now_ms() + STRESS_SETTLE_MS; fifo_lines() == before && fixture_now_ms() < end;) {
                (void) sbus_ping(obs);
                fixture_sleep_ms(10);
        }
        ck_assert_msg(fifo_lines() > before, "paddd's log says nothing of the FIFO after SIGHUP");
        ck_assert_msg(fixture_paddd_alive(&stress_fx), "paddd exited after SIGHUP");
        rt2 = MAX(rt2, serves_other(&ag[1]));
        ck_assert_int_ge(books_read_counts(obs, &k), 0);
        ck_assert_uint_eq(k.max_helpers, 4);
        printf("config FIFO: Reload refused in %lld ms (%s); Acquire+Release of uid %u after it %lld ms, "
               "after SIGHUP %lld ms\n", rl->took_ms, rl->a.message, (unsigned) uids[1], rt1, rt2);
        stop_all(ag);
}
END_TEST

/* ---- 9: RaisePriority on threads that are not the owner's --------------------------- */

typedef struct Raise {
        char lease[STRESS_PATH_MAX];
        uint32_t tids[3];               /* another uid's process, none, the owner itself */
        Answer a[3];
} Raise;

static int raise_tids(AgentConns *conns, void *arg, char *msg) {
        Raise *x = arg;

        x->tids[2] = (uint32_t) getpid();
        for (size_t i = 0; i < ELEMENTSOF(x->tids); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r = sd_bus_call_method(conns->bus[0], BROKER_BUS_NAME, x->lease, LEASE_INTERFACE, "RaisePriority",
                                           &e, NULL, "u", x->tids[i]);

                answer(&x->a[i], r, &e);
        }
        return 0;
}

/* A pid no process or thread has (at the moment of looking). */
static pid_t free_pid(void) {
        long max = 32768;
        FILE *f = fopen("/proc/sys/kernel/pid_max", "re");

        if (f) {
                if (fscanf(f, "%ld", &max) != 1)
                        max = 32768;
                fclose(f);
        }
        for (pid_t p = (pid_t) max - 1; p > (pid_t) max - 1000; p--)
                if (kill(p, 0) < 0 && errno == ESRCH)
                        return p;
        return -1;
}

/* The message with every decimal occurrence of tid replaced, so two answers compare. */
static void without_tid(const char *in, uint32_t tid, char *out, size_t size) {
        char num[16];
        size_t n = 0, len = (size_t) snprintf(num, sizeof num, "%u", tid);

        while (*in && n + 6 < size) {
                if (strncmp(in, num, len) == 0) {
                        n += (size_t) snprintf(out + n, size - n, "<tid>");
                        in += len;
                } else
                        out[n++] = *in++;
        }
        out[n] = '\0';
}

/* Before: the answers differed by what paddd found (a thread of someone else, a thread
 * gone or never there), so any client could probe which pids exist through its lease. */
START_TEST(test_raise_foreign) {
        Raise *x = stress_shared(sizeof(Raise));
        Agent ag[N_UIDS];
        AgentReply rep;
        char m0[MSG_MAX], m1[MSG_MAX];
        int policy;

        ck_assert_ptr_nonnull(x);
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = start_with("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\n", ag);
        ck_assert_int_eq(agent_call(&ag[0], &(AgentCmd) { .op = AGENT_ACQUIRE, .helpers = 1 }, &rep), 0);
        ck_assert_msg(rep.r == 0, "Acquire: %s", rep.error);
        snprintf(x->lease, sizeof x->lease, "%s", rep.path);

        /* The foreign thread runs SCHED_IDLE: a raise to the owner's SCHED_OTHER would show. */
        ck_assert_int_eq(sched_setscheduler(ag[1].pid, SCHED_IDLE, &(struct sched_param) { 0 }), 0);
        x->tids[0] = (uint32_t) ag[1].pid;
        x->tids[1] = (uint32_t) free_pid();
        ck_assert_int_gt((int) x->tids[1], 0);
        run_in(&ag[0], raise_tids, x);

        ck_assert_msg(x->a[2].r == 0, "RaisePriority of the owner's own thread: %s", x->a[2].name);
        ck_assert_msg(streq(x->a[0].name, E_ACCESS_DENIED), "RaisePriority(thread of uid %u): %s",
                      (unsigned) uids[1], x->a[0].r == 0 ? "done" : x->a[0].name);
        ck_assert_msg(streq(x->a[1].name, E_ACCESS_DENIED), "RaisePriority(tid %u, no such thread): %s",
                      x->tids[1], x->a[1].r == 0 ? "done" : x->a[1].name);
        without_tid(x->a[0].message, x->tids[0], m0, sizeof m0);
        without_tid(x->a[1].message, x->tids[1], m1, sizeof m1);
        ck_assert_msg(streq(m0, m1), "the answers differ: \"%s\" (another uid's) vs \"%s\" (none)", x->a[0].message,
                      x->a[1].message);
        policy = sched_getscheduler(ag[1].pid);
        ck_assert_msg(policy == SCHED_IDLE, "the foreign thread's policy is %d, not SCHED_IDLE", policy);
        ck_assert_msg(fixture_paddd_alive(&stress_fx) && sbus_ping(obs) >= 0, "paddd does not answer");
        printf("raise foreign: %s for uid %u's thread and for no thread alike (\"%s\"); its policy untouched\n",
               x->a[0].name, (unsigned) uids[1], m0);
        stop_all(ag);
}
END_TEST

int main(void) {
        const TTest *const tests[] = { test_expired_signal, test_set_quota_bounds, test_config_fifo,
                                       test_raise_foreign };

        if (stress_pick_uids(uids, N_UIDS) < N_UIDS)
                uids[0] = uids[1] = 0;  /* stress_main skips */
        return stress_main_tests("test-stress-hostile-calls", N_UIDS, tests, ELEMENTSOF(tests), 40);
}
