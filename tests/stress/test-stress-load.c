/* test-stress-load.c: random load with an invariant checker. 200 client connections of
 * three uids, driven by twelve worker processes, do random acquires, waiting acquires,
 * shrinks, releases, reads of their own leases and exits (close, then a new connection)
 * for 30 s. Meanwhile the test reads the books as fast as it can and checks what holds at
 * any moment: InUse <= MaxHelpers, every node within its cap, the nodes adding up to
 * InUse, and no lease listed for a client that died more than 100 ms before. Once a
 * second the workers pause between calls and the books must then match them exactly: the
 * grants listed add up to InUse and to what the workers hold, and nothing waits. Every
 * answer a worker gets must be one the contract allows. Zero violations; ops/s and
 * paddd's peak RSS are printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"
#include "util.h"

#define N_UIDS 3
#define N_WORKERS 12
#define N_CONNS 200
#define CONNS_PER_WORKER DIV_ROUND_UP(N_CONNS, N_WORKERS)
#define LOAD_MS 30000
#define QUIESCE_EVERY_MS 1000
#define DEAD_GRACE_MS 100
#define CHECK_PAUSE_US 2000           /* between reads of the books: leave paddd to the clients */
#define MAX_DEAD 65536
#define LEASES_PER_CONN 3
#define CONFIG "[Broker]\nMaxHelpers=24\nMaxHelpersPerNode=20\nMaxWaiting=256\n"

typedef struct Dead {
        char name[STRESS_NAME_MAX];
        long long ms;                   /* fixture_now_ms() once its connection was closed */
} Dead;

typedef struct Worker {
        unsigned index, first_conn, n_conns, seed;
        atomic_uint held;               /* helpers its connections hold */
        atomic_ulong ops;
        atomic_uint unexpected;
        char first_error[160];
} Worker;

typedef struct Load {
        atomic_bool pause, stop;
        atomic_uint n_paused;
        atomic_uint n_dead;
        Dead dead[MAX_DEAD];
        Worker w[N_WORKERS];
} Load;

static Load *load;

/* ---- the workers (agent processes: no assertions) ----------------------------------------- */

typedef struct Held {
        char path[STRESS_PATH_MAX];
        uint32_t granted;
} Held;

typedef struct Conn {
        Held l[LEASES_PER_CONN];
        unsigned n;
} Conn;

typedef struct WorkerRun {
        Worker *w;
        AgentConns *conns;
        Conn c[CONNS_PER_WORKER];
} WorkerRun;

_printf_(2, 3) static void unexpected(Worker *w, const char *fmt, ...) {
        va_list ap;

        if (atomic_fetch_add(&w->unexpected, 1) > 0)
                return;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
}

static void held_add(WorkerRun *run, int32_t delta) {
        atomic_fetch_add(&run->w->held, (unsigned) delta);
}

static void forget(WorkerRun *run, Conn *c, unsigned i) {
        held_add(run, -(int32_t) c->l[i].granted);
        c->l[i] = c->l[--c->n];
}

static bool one_of(const char *name, const char *a, const char *b) {
        return streq(name, a) || (b && streq(name, b));
}

static void op_acquire(WorkerRun *run, unsigned k, bool wait) {
        Conn *c = &run->c[k];
        uint32_t helpers = 1 + rand_r(&run->w->seed) % 4, granted = 0;
        uint32_t min = wait ? 1 + rand_r(&run->w->seed) % helpers : 1;
        uint64_t wait_usec = wait ? 200 + rand_r(&run->w->seed) % 4800 : 0;
        char path[STRESS_PATH_MAX], err[STRESS_ERROR_MAX];

        if (sbus_acquire(run->conns->bus[k], helpers, min, wait_usec, NULL, path, &granted, err) < 0) {
                if (!one_of(err, BROKER_ERROR_BUSY, wait ? BROKER_ERROR_TIMEOUT : NULL))
                        unexpected(run->w, "Acquire(%u, min %u, wait %lu us): %s", helpers, min,
                                   (unsigned long) wait_usec, err);
                return;
        }
        if (granted < min || granted > helpers)
                unexpected(run->w, "Acquire(%u, min %u) granted %u", helpers, min, granted);
        snprintf(c->l[c->n].path, STRESS_PATH_MAX, "%s", path);
        c->l[c->n++].granted = granted;
        held_add(run, (int32_t) granted);
}

static void op_release(WorkerRun *run, unsigned k, unsigned i) {
        Conn *c = &run->c[k];
        char err[STRESS_ERROR_MAX];

        if (sbus_release(run->conns->bus[k], c->l[i].path, err) < 0)
                unexpected(run->w, "Release of %s: %s", c->l[i].path, err);
        forget(run, c, i);
}

static void op_shrink(WorkerRun *run, unsigned k, unsigned i) {
        Held *l = &run->c[k].l[i];
        uint32_t count = 1 + rand_r(&run->w->seed) % (l->granted - 1), granted = 0;
        char err[STRESS_ERROR_MAX];

        if (sbus_shrink(run->conns->bus[k], l->path, count, &granted, err) < 0) {
                unexpected(run->w, "Shrink of %s by %u: %s", l->path, count, err);
                return;
        }
        if (granted != l->granted - count)
                unexpected(run->w, "Shrink of %s from %u by %u left %u", l->path, l->granted, count, granted);
        held_add(run, -(int32_t) (l->granted - granted));
        l->granted = granted;
}

static void op_read(WorkerRun *run, unsigned k, unsigned i) {
        Held *l = &run->c[k].l[i];
        char err[STRESS_ERROR_MAX];
        uint32_t granted = 0;

        if (sbus_lease_u(run->conns->bus[k], l->path, "Granted", &granted, err) < 0)
                unexpected(run->w, "Granted of %s: %s", l->path, err);
        else if (granted != l->granted)
                unexpected(run->w, "Granted of %s is %u, its owner holds %u", l->path, granted, l->granted);
}

/* The client goes away without a word; a new one takes its place. */
static void op_exit(WorkerRun *run, unsigned k) {
        unsigned d = atomic_fetch_add(&load->n_dead, 1);
        const char *name = "";
        int r;

        (void) sd_bus_get_unique_name(run->conns->bus[k], &name);
        if (d < MAX_DEAD)
                snprintf(load->dead[d].name, STRESS_NAME_MAX, "%s", name);
        run->conns->bus[k] = sd_bus_flush_close_unref(run->conns->bus[k]);
        if (d < MAX_DEAD)
                load->dead[d].ms = fixture_now_ms();
        while (run->c[k].n > 0)
                forget(run, &run->c[k], 0);
        r = sbus_open(run->conns->address, &run->conns->bus[k]);
        if (r < 0)
                unexpected(run->w, "reconnecting: %s", strerror(-r));
}

static void random_op(WorkerRun *run) {
        unsigned k = rand_r(&run->w->seed) % run->w->n_conns, dice = rand_r(&run->w->seed) % 100;
        Conn *c = &run->c[k];
        unsigned i = c->n ? rand_r(&run->w->seed) % c->n : 0;

        if (!run->conns->bus[k])
                return;
        if (dice == 99)
                op_exit(run, k);
        else if (c->n == 0 || (dice < 50 && c->n < LEASES_PER_CONN))
                op_acquire(run, k, dice >= 45);
        else if (dice < 65 && c->l[i].granted >= 2)
                op_shrink(run, k, i);
        else if (dice < 75)
                op_read(run, k, i);
        else
                op_release(run, k, i);
        atomic_fetch_add(&run->w->ops, 1);
}

static void maybe_pause(void) {
        if (!atomic_load(&load->pause))
                return;
        atomic_fetch_add(&load->n_paused, 1);
        while (atomic_load(&load->pause) && !atomic_load(&load->stop))
                usleep(200);
        atomic_fetch_sub(&load->n_paused, 1);
}

static int load_worker(AgentConns *conns, void *arg, char *msg) {
        WorkerRun run = { .w = arg, .conns = conns };
        long long deadline = fixture_now_ms() + LOAD_MS + 2 * STRESS_SETTLE_MS;
        int r;

        for (unsigned k = 0; k < run.w->n_conns; k++) {
                r = sbus_open(conns->address, &conns->bus[k]);
                if (r < 0) {
                        snprintf(msg, STRESS_ERROR_MAX, "connecting: %s", strerror(-r));
                        return r;
                }
        }
        /* The test stops the workers; the deadline only bounds a worker left alone. */
        while (!atomic_load(&load->stop) && fixture_now_ms() < deadline) {
                maybe_pause();
                random_op(&run);
        }
        return 0;
}

/* ---- the checker ------------------------------------------------------------------------- */

typedef struct Checker {
        sd_bus *obs;
        unsigned reads, quiesced, violations;
        char first[256];
} Checker;

_printf_(2, 3) static void violation(Checker *ck, const char *fmt, ...) {
        va_list ap;

        if (ck->violations++ > 0)
                return;
        va_start(ap, fmt);
        vsnprintf(ck->first, sizeof ck->first, fmt, ap);
        va_end(ap);
        fprintf(stderr, "load: first violation: %s\n", ck->first);
}

static const Dead *find_dead(const char *owner) {
        unsigned n = MIN(atomic_load(&load->n_dead), MAX_DEAD);

        for (unsigned i = 0; i < n; i++)
                if (load->dead[i].ms > 0 && streq(load->dead[i].name, owner))
                        return &load->dead[i];
        return NULL;
}

static unsigned dead_owners(const Books *k, char *msg, size_t size) {
        unsigned n = 0;

        for (size_t i = 0; i < k->n_list; i++) {
                const Dead *d = find_dead(k->list[i].owner);

                if (d && k->list_sent_ms - d->ms > DEAD_GRACE_MS && n++ == 0)
                        snprintf(msg, size, "%s of %s listed %lld ms after its owner went away",
                                 k->list[i].path, d->name, k->list_sent_ms - d->ms);
        }
        return n;
}

static uint32_t workers_hold(void) {
        uint32_t held = 0;

        for (unsigned i = 0; i < N_WORKERS; i++)
                held += atomic_load(&load->w[i].held);
        return held;
}

/* Read the books and count what is wrong with them; msg tells the first. Exact: the
 * workers are paused, so the books must also match what they hold. */
static unsigned books_problems(Checker *ck, bool exact, char *msg, size_t size) {
        _cleanup_(books_done) Books k = {};
        unsigned n;

        if (books_read(ck->obs, &k) < 0) {
                snprintf(msg, size, "reading the books failed");
                return 1;
        }
        ck->reads++;
        n = books_violations(&k, exact, msg, size);
        n += dead_owners(&k, n ? (char[256]) {} : msg, n ? 256 : size);
        if (exact && (k.in_use != workers_hold() || k.waiting != 0) && n++ == 0)
                snprintf(msg, size, "InUse %u and Waiting %u; the workers hold %u", k.in_use, k.waiting,
                         workers_hold());
        return n;
}

static void check_once(Checker *ck) {
        char msg[256];

        if (books_problems(ck, false, msg, sizeof msg) > 0)
                violation(ck, "%s", msg);
}

/* Paused workers: the books must match them once the last exits are reclaimed, which
 * the dead-client bound gives DEAD_GRACE_MS for. */
static void quiesce_and_check(Checker *ck) {
        long long deadline = fixture_now_ms() + STRESS_SETTLE_MS, paused;
        char msg[256];

        atomic_store(&load->pause, true);
        while (atomic_load(&load->n_paused) < N_WORKERS && fixture_now_ms() < deadline)
                usleep(200);
        ck_assert_msg(atomic_load(&load->n_paused) == N_WORKERS, "the workers did not pause");
        paused = fixture_now_ms();
        while (books_problems(ck, true, msg, sizeof msg) > 0)
                if (fixture_now_ms() - paused > DEAD_GRACE_MS) {
                        violation(ck, "(quiesced) %s", msg);
                        break;
                }
        ck->quiesced++;
        atomic_store(&load->pause, false);
}

static void run_checker(Checker *ck) {
        long long end = fixture_now_ms() + LOAD_MS, next_quiesce = fixture_now_ms() + QUIESCE_EVERY_MS;

        while (fixture_now_ms() < end) {
                ck_assert_msg(fixture_paddd_alive(&stress_fx), "paddd exited under load (status 0x%x)",
                              stress_fx.paddd_exit_status);
                if (fixture_now_ms() >= next_quiesce) {
                        quiesce_and_check(ck);
                        next_quiesce = fixture_now_ms() + QUIESCE_EVERY_MS;
                } else {
                        check_once(ck);
                        usleep(CHECK_PAUSE_US);
                }
        }
}

/* ---- the test ---------------------------------------------------------------------------- */

static void start_workers(Agent *agents, const uid_t *uids, unsigned seed) {
        for (unsigned i = 0; i < N_WORKERS; i++) {
                Worker *w = &load->w[i];
                AgentCmd cmd = { .op = AGENT_RUN, .fn = load_worker, .arg = w };

                w->index = i;
                w->first_conn = i * CONNS_PER_WORKER;
                w->n_conns = MIN(CONNS_PER_WORKER, N_CONNS - w->first_conn);
                w->seed = seed + i;
                ck_assert_int_eq(agent_spawn(&agents[i], uids[i % N_UIDS], w->n_conns, stress_fx.address), 0);
                ck_assert_int_eq(agent_send(&agents[i], &cmd), 0);
        }
}

static unsigned long stop_workers(Agent *agents) {
        unsigned long ops = 0;

        atomic_store(&load->stop, true);
        for (unsigned i = 0; i < N_WORKERS; i++) {
                Worker *w = &load->w[i];
                AgentReply rep;

                ck_assert_msg(agent_recv(&agents[i], &rep, STRESS_SETTLE_MS) == 0, "worker %u does not stop", i);
                ck_assert_msg(rep.r == 0, "worker %u: %s", i, rep.error);
                ck_assert_msg(atomic_load(&w->unexpected) == 0, "worker %u: %u answers the contract does not "
                              "allow, the first: %s", i, atomic_load(&w->unexpected), w->first_error);
                ops += atomic_load(&w->ops);
                agent_stop(&agents[i]);
        }
        return ops;
}

START_TEST(test_random_load) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        _cleanup_(books_done) Books k = {};
        Agent agents[N_WORKERS];
        Checker ck = {};
        uid_t uids[N_UIDS];
        unsigned long ops;
        long long t0, ms;
        long hwm;

        load = stress_shared(sizeof(Load));
        ck_assert_ptr_nonnull(load);
        ck_assert_uint_eq(stress_pick_uids(uids, N_UIDS), N_UIDS);
        stress_start(CONFIG);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        ck.obs = obs;

        t0 = fixture_now_ms();
        start_workers(agents, uids, stress_seed("load"));
        run_checker(&ck);
        ops = stop_workers(agents);
        ms = fixture_now_ms() - t0;
        hwm = stress_vm_hwm_kib(stress_fx.paddd_pid);

        books_wait_empty(obs, &k);
        printf("load: %lu ops in %lld ms by %d clients: %.0f ops/s; %u reads of the books, %u of them "
               "quiesced; %u clients exited; paddd peak RSS %.1f MiB; %u violations\n", ops, ms, N_CONNS,
               (double) ops * 1000.0 / (double) ms, ck.reads, ck.quiesced, atomic_load(&load->n_dead),
               (double) hwm / 1024.0, ck.violations);
        ck_assert_msg(ck.violations == 0, "%u violations, the first: %s", ck.violations, ck.first);
        ck_assert_uint_gt(ops, 0);
        ck_assert_uint_ge(ck.quiesced, LOAD_MS / QUIESCE_EVERY_MS / 2);
        ck_assert_msg(k.in_use == 0 && k.leases == 0 && k.waiting == 0,
                      "after the load: InUse %u, Leases %u, Waiting %u", k.in_use, k.leases, k.waiting);
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-load", N_UIDS, random_load, 90);
}
