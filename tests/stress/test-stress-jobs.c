/* test-stress-jobs.c: paddd SIGKILLed and started again twenty times while libpadclient jobs
 * run, through the library's public API only. Four job threads on two pad_clients run job
 * after job, each counting every unit it is handed; each client also holds a witness lease
 * of its own. Every job must return 0 with every unit run exactly once; after each restart
 * the witnesses must still be on the books under their own paths and tags (nothing a job
 * did, and no new lease, took their place), the books must keep their invariants, and
 * helpers running at once must never outnumber what the cap leaves beside the witnesses.
 * At the end the witnesses are intact, the stats are printed, and when the clients go,
 * every slot is back. */
#define _GNU_SOURCE
#include <padclient.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stress.h"
#include "util.h"

#define N_CLIENTS 2
#define N_JOBS 4
#define ROUNDS 20
#define CAP 6
#define JOB_CAP (CAP - N_CLIENTS)       /* what the witnesses leave to the jobs */
#define CONFIG "[Broker]\nMaxHelpers=6\nMaxHelpersPerNode=4096\n"
#define UNITS 240
#define MAX_RUNS 2000                   /* per job thread: the loop's bound */

typedef struct JobThread {
        pthread_t thread;
        pad_client *client;
        unsigned index;
        char tag[16];
        pid_t caller;
        atomic_uint counts[UNITS];
        unsigned runs, failed_runs, wrong_units, brokered, granted;
        int first_error;
} JobThread;

static atomic_bool stop;
static atomic_uint helpers_now, helpers_peak;

static void note_helper(int delta) {
        unsigned now = atomic_fetch_add(&helpers_now, (unsigned) delta) + (unsigned) delta;
        unsigned peak = atomic_load(&helpers_peak);

        while (now > peak && !atomic_compare_exchange_weak(&helpers_peak, &peak, now))
                ;
}

static int count_fn(uint64_t s, uint64_t e, void *arg) {
        JobThread *j = arg;
        bool helper = (pid_t) syscall(SYS_gettid) != j->caller;

        if (s >= e || e > UNITS)
                return -ERANGE;
        if (helper)
                note_helper(1);
        for (uint64_t u = s; u < e; u++) {
                atomic_fetch_add(&j->counts[u], 1);
                usleep(50);
        }
        if (helper)
                note_helper(-1);
        return 0;
}

static void run_one(JobThread *j) {
        pad_job job = {
                .thread_fn = count_fn, .arg = j, .size = UNITS, .align = 1, .min_chunk = 4,
                .max_threads = 3, .node = PAD_NODE_ANY, .tag = j->tag,
        };
        pad_job_stats st = {};
        int r;

        for (unsigned u = 0; u < UNITS; u++)
                atomic_store(&j->counts[u], 0);
        r = pad_job_run(j->client, &job, &st);
        j->runs++;
        if (r < 0) {
                j->failed_runs++;
                j->first_error = j->first_error ?: r;
        }
        for (unsigned u = 0; u < UNITS; u++)
                j->wrong_units += atomic_load(&j->counts[u]) != 1;
        j->brokered += st.brokered != 0;
        j->granted += st.granted;
        /* LEASE_LOST: pad_job_stats has no lease_lost field yet. When it has, count the runs
         * whose lease paddd dropped and assert they are only runs that spanned a restart
         * whose books did not hold the lease (none, with books kept):
         *         j->lost += st.lease_lost != 0;
         * and at the end: ck_assert_uint_eq(lost, 0). */
}

static void *job_thread(void *arg) {
        JobThread *j = arg;

        j->caller = (pid_t) syscall(SYS_gettid);
        while (!atomic_load(&stop) && j->runs < MAX_RUNS)
                run_one(j);
        return NULL;
}

typedef struct Witness {
        pad_lease *lease;
        char path[STRESS_PATH_MAX];
        char tag[16];
} Witness;

static void witness_take(pad_client *c, unsigned i, Witness *w) {
        pad_acquire_opts o = { .min = 1, .tag = w->tag };
        int r;

        snprintf(w->tag, sizeof w->tag, "witness-%u", i);
        r = pad_client_acquire(c, 1, PAD_NODE_ANY, &o, &w->lease);
        ck_assert_msg(r == 0, "witness Acquire: %s", strerror(-r));
        ck_assert_uint_eq(pad_lease_granted(w->lease), 1);
        snprintf(w->path, sizeof w->path, "%s", pad_lease_path(w->lease));
}

/* The witness is on the books as itself: its path, its tag, one helper, our pid. */
static void assert_witness(sd_bus *obs, const Witness *w, unsigned round) {
        _cleanup_(books_done) Books k = {};
        const SLease *l;
        char msg[256];

        ck_assert_int_ge(books_read(obs, &k), 0);
        ck_assert_msg(books_violations(&k, false, msg, sizeof msg) == 0, "restart %u: %s", round, msg);
        l = books_find(&k, w->path);
        ck_assert_msg(l, "restart %u: the witness lease %s is gone from the books", round, w->path);
        ck_assert_msg(streq(l->tag, w->tag) && l->granted == 1 && l->pid == (uint32_t) getpid(),
                      "restart %u: %s is no longer the witness %s: tag '%s', %u helpers, pid %u",
                      round, w->path, w->tag, l->tag, l->granted, l->pid);
}

static void restart_paddd(unsigned *seed) {
        usleep(50000 + rand_r(seed) % 100000);
        ck_assert_int_eq(fixture_kill_paddd(&stress_fx), 0);
        usleep(rand_r(seed) % 20000);
        ck_assert_int_eq(fixture_start_paddd(&stress_fx), 0);
}

/* Leases of jobs that have all returned: a Release sent while paddd was down never
 * arrived, and the restarted paddd re-adopted the lease of a client still connected. */
static unsigned job_leases_left(sd_bus *obs) {
        _cleanup_(books_done) Books k = {};
        unsigned n = 0;

        ck_assert_int_ge(books_read(obs, &k), 0);
        for (size_t i = 0; i < k.n_list; i++)
                n += strncmp(k.list[i].tag, "job-", 4) == 0;
        return n;
}

static void report(JobThread *jt, long long ms, unsigned left) {
        unsigned runs = 0, brokered = 0, granted = 0;

        for (unsigned i = 0; i < N_JOBS; i++) {
                JobThread *j = &jt[i];

                ck_assert_msg(j->failed_runs == 0, "%s: %u of %u jobs failed, the first with %s",
                              j->tag, j->failed_runs, j->runs, strerror(-j->first_error));
                ck_assert_msg(j->wrong_units == 0, "%s: %u units not run exactly once over %u jobs",
                              j->tag, j->wrong_units, j->runs);
                ck_assert_uint_gt(j->runs, 0);
                runs += j->runs;
                brokered += j->brokered;
                granted += j->granted;
        }
        printf("jobs: %u jobs over %d restarts in %lld ms, every unit once; %u brokered with %u helpers "
               "granted in all, at most %u helpers running at once (cap %u beside the witnesses); "
               "%u job leases left on the books after the last job returned\n",
               runs, ROUNDS, ms, brokered, granted, atomic_load(&helpers_peak), JOB_CAP, left);
        ck_assert_uint_gt(brokered, 0);
        ck_assert_msg(atomic_load(&helpers_peak) <= JOB_CAP, "%u helpers ran at once, the cap leaves %u",
                      atomic_load(&helpers_peak), JOB_CAP);
}

START_TEST(test_restart_under_jobs) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *obs = NULL;
        _cleanup_free_ JobThread *jt = calloc(N_JOBS, sizeof(JobThread));
        _cleanup_(books_done) Books k = {};
        pad_client *clients[N_CLIENTS] = {};
        Witness w[N_CLIENTS] = {};
        unsigned seed = stress_seed("jobs");
        long long t0;

        ck_assert_ptr_nonnull(jt);
        unsetenv("PADCLIENT_FALLBACK_HELPERS");
        stress_start(CONFIG);
        ck_assert_int_ge(sbus_open(stress_fx.address, &obs), 0);
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                ck_assert_int_eq(pad_client_new(stress_fx.address, &clients[i]), 0);
                ck_assert_int_eq(pad_client_has_broker(clients[i]), 1);
                witness_take(clients[i], i, &w[i]);
        }
        t0 = fixture_now_ms();
        for (unsigned i = 0; i < N_JOBS; i++) {
                jt[i].client = clients[i % N_CLIENTS];
                jt[i].index = i;
                snprintf(jt[i].tag, sizeof jt[i].tag, "job-%u", i);
                ck_assert_int_eq(pthread_create(&jt[i].thread, NULL, job_thread, &jt[i]), 0);
        }
        for (unsigned round = 1; round <= ROUNDS; round++) {
                restart_paddd(&seed);
                for (unsigned i = 0; i < N_CLIENTS; i++)
                        assert_witness(obs, &w[i], round);
        }
        atomic_store(&stop, true);
        for (unsigned i = 0; i < N_JOBS; i++)
                pthread_join(jt[i].thread, NULL);
        report(jt, fixture_now_ms() - t0, job_leases_left(obs));

        for (unsigned i = 0; i < N_CLIENTS; i++) {
                assert_witness(obs, &w[i], ROUNDS);
                w[i].lease = pad_lease_free(w[i].lease);
                clients[i] = pad_client_free(clients[i]);
        }
        books_wait_empty(obs, &k);
        ck_assert_msg(k.in_use == 0 && k.leases == 0 && k.waiting == 0,
                      "after the clients left: InUse %u, Leases %u, Waiting %u", k.in_use, k.leases, k.waiting);
}
END_TEST

int main(void) {
        return STRESS_MAIN("test-stress-jobs", 0, restart_under_jobs, 100);
}
