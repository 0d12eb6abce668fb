/* job.c: the job runner, pad_job_run(), in the shape of the kernel's padata_do_multithreaded.
 * It splits the range into aligned chunks (job_split), asks the broker for up to one helper
 * fewer than the split has works (or takes PADCLIENT_FALLBACK_HELPERS without a broker), and
 * lets the helpers and the caller take chunks from one cursor under a mutex. Helpers pin
 * themselves to their granted node within the caller's affinity (lib/cpuset.c), drop to the
 * broker's HelperPolicy (lib/helper-sched.c), and give their slot back (Shrink) the moment
 * they find no chunk left. The caller reports progress, raises the unfinished helpers one at
 * a time at the end, waits for all of them and releases the lease. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "broker-contract.h"
#include "util.h"

/* How often the caller looks again at a helper it raised while that helper was still
 * lowering itself (the helper may undo the raise and, starved, never say so). */
#define RAISE_RECHECK_USEC (10 * 1000ULL)

#define IN_SET(x, a, b, c, d, e) ((x) == (a) || (x) == (b) || (x) == (c) || (x) == (d) || (x) == (e))

/* ---- small helpers ------------------------------------------------------------------------ */

pid_t job_gettid(void) {
        return (pid_t) syscall(SYS_gettid);
}

void job_split(uint64_t size, uint64_t align, uint64_t min_chunk, unsigned max_threads,
               unsigned *ret_works, uint64_t *ret_chunk) {
        uint64_t works, chunk, q;

        works = size / MAX(min_chunk, align);
        works = MAX(works, 1u);
        works = MIN(works, (uint64_t) max_threads);

        chunk = size / (works * 4);
        chunk = MAX(chunk, min_chunk);
        q = (chunk - 1) / align + 1;            /* chunk >= 1: round up to align */
        chunk = q > UINT64_MAX / align ? UINT64_MAX / align * align : q * align;

        *ret_works = (unsigned) works;
        *ret_chunk = chunk;
}

/* ---- the run ------------------------------------------------------------------------------- */

enum {
        HELPER_STARTING,        /* created, not yet taking chunks */
        HELPER_RUNNING,         /* taking chunks */
        HELPER_DRAINING,        /* found no chunk left, giving its slot back */
        HELPER_FINISHED,
};

/* The handshake between a helper lowering itself and the caller raising it, lock-free so the
 * caller never waits on a helper that may already be starved at SCHED_IDLE. */
enum {
        PHASE_START,            /* the helper has not begun to lower itself */
        PHASE_LOWERING,         /* it is about to (or did) set the HelperPolicy */
        PHASE_LOWERED,          /* its sched_setattr has returned */
        PHASE_KEEP,             /* the caller got there first: never lower */
};

typedef struct JobRun JobRun;

typedef struct Helper {
        JobRun *run;
        pthread_t thread;
        int node;               /* granted node, or PAD_NODE_ANY */
        cpu_set_t cpus;         /* where it runs when the run pins helpers */
        int state;              /* HELPER_*, under run->lock */
        atomic_int phase;       /* PHASE_* */
        atomic_int tid;         /* published first thing, before lowering */
        uint64_t chunks;        /* written by the helper, read after join */
} Helper;

struct JobRun {
        const pad_job *job;
        pthread_mutex_t lock;           /* guards the cursor, error, chunks and helper states */
        pthread_cond_t cond;            /* a helper changed state */
        uint64_t next, end, chunk;
        int error;
        uint64_t chunks;
        atomic_uint_fast64_t done;      /* units finished, for progress */

        pad_lease *lease;               /* NULL: fallback helpers at the caller's priority */
        HelperPolicy policy;
        bool pin;
        cpu_set_t allowed;              /* the caller's affinity at job start */

        uint64_t progress_interval, progress_next;

        unsigned n_helpers, n_running;
        bool caller_done;               /* the caller found no chunk left; under lock */
        Helper *helpers;
};

static bool cancel_requested(const pad_job *job) {
        return job->cancel && __atomic_load_n(&job->cancel->requested, __ATOMIC_RELAXED);
}

/* Take the next chunk; false when none is left or the job stopped. */
static bool run_take_chunk(JobRun *run, uint64_t *ret_start, uint64_t *ret_end) {
        bool ok = false;

        pthread_mutex_lock(&run->lock);
        if (run->error == 0 && cancel_requested(run->job))
                run->error = -ECANCELED;
        if (run->error == 0 && run->next < run->end) {
                *ret_start = run->next;
                *ret_end = run->end - run->next <= run->chunk ? run->end : run->next + run->chunk;
                run->next = *ret_end;
                run->chunks++;
                ok = true;
        }
        pthread_mutex_unlock(&run->lock);
        return ok;
}

static void run_chunk(JobRun *run, uint64_t s, uint64_t e) {
        int r = run->job->thread_fn(s, e, run->job->arg);

        if (r < 0) {
                pthread_mutex_lock(&run->lock);
                if (run->error == 0)
                        run->error = r;
                pthread_mutex_unlock(&run->lock);
                return;
        }
        atomic_fetch_add_explicit(&run->done, e - s, memory_order_relaxed);
}

static void helper_set_state(Helper *h, int state) {
        JobRun *run = h->run;

        pthread_mutex_lock(&run->lock);
        h->state = state;
        if (state == HELPER_FINISHED)
                run->n_running--;
        pthread_cond_broadcast(&run->cond);
        pthread_mutex_unlock(&run->lock);
}

static void *helper_main(void *userdata) {
        Helper *h = userdata;
        JobRun *run = h->run;
        uint64_t s, e;
        bool last;

        atomic_store(&h->tid, job_gettid());
        if (run->pin)
                (void) sched_setaffinity(0, sizeof h->cpus, &h->cpus);
        if (run->lease && run->policy != HELPER_POLICY_NONE) {
                int expected = PHASE_START;

                if (atomic_compare_exchange_strong(&h->phase, &expected, PHASE_LOWERING)) {
                        (void) helper_sched_apply(run->policy);
                        atomic_store(&h->phase, PHASE_LOWERED);
                }
        }
        helper_set_state(h, HELPER_RUNNING);

        while (run_take_chunk(run, &s, &e)) {
                run_chunk(run, s, e);
                h->chunks++;
        }

        pthread_mutex_lock(&run->lock);
        h->state = HELPER_DRAINING;
        /* The last helper of a job whose caller is done leaves its slot to the Release that
         * follows at once; any other gives it back now. */
        last = run->caller_done && run->n_running == 1;
        pthread_cond_broadcast(&run->cond);
        pthread_mutex_unlock(&run->lock);
        if (run->lease && !last)
                (void) pad_lease_shrink(run->lease, 1); /* the broker may be gone: fine */
        helper_set_state(h, HELPER_FINISHED);
        return NULL;
}

/* ---- progress and waiting (the caller's thread) --------------------------------------------- */

static void run_progress(JobRun *run, uint64_t now) {
        uint64_t done = atomic_load_explicit(&run->done, memory_order_relaxed);

        /* Also while nothing moved (a heartbeat), but done == total only once, at the end. */
        run->progress_next = now + run->progress_interval;
        if (done >= run->job->size)
                return;
        run->job->progress_fn(done, run->job->size, run->job->progress_arg);
}

static void run_maybe_progress(JobRun *run) {
        uint64_t now;

        if (!run->job->progress_fn)
                return;
        now = now_usec();
        if (now >= run->progress_next)
                run_progress(run, now);
}

/* Called with run->lock held: wait for a helper to change state (or at most max_usec, if not
 * 0), reporting progress. */
static void run_wait_locked(JobRun *run, uint64_t max_usec) {
        struct timespec ts;
        uint64_t deadline = UINT64_MAX;

        if (run->job->progress_fn)
                deadline = run->progress_next;
        if (max_usec > 0)
                deadline = MIN(deadline, now_usec() + max_usec);
        if (deadline == UINT64_MAX) {
                pthread_cond_wait(&run->cond, &run->lock);
                return;
        }
        ts.tv_sec = (time_t) (deadline / USEC_PER_SEC);
        ts.tv_nsec = (long) (deadline % USEC_PER_SEC * NSEC_PER_USEC);
        (void) pthread_cond_timedwait(&run->cond, &run->lock, &ts);
        if (run->job->progress_fn && now_usec() >= run->progress_next) {
                pthread_mutex_unlock(&run->lock);
                run_maybe_progress(run);
                pthread_mutex_lock(&run->lock);
        }
}

static void run_wait_finished(JobRun *run, Helper *h) {
        pthread_mutex_lock(&run->lock);
        while (h->state != HELPER_FINISHED)
                run_wait_locked(run, 0);
        pthread_mutex_unlock(&run->lock);
}

typedef enum RaiseResult {
        RAISE_NOT_NEEDED,       /* it never lowered itself, or was done already */
        RAISE_DONE,
        RAISE_FAILED,           /* the broker refused, or the lease was lost */
} RaiseResult;

/* Raise helper h, still inside a chunk, and wait until it finished. */
static RaiseResult run_raise_one(JobRun *run, Helper *h, const SchedAttr *caller) {
        int expected = PHASE_START, state;
        bool lowered;
        pid_t tid;

        if (atomic_compare_exchange_strong(&h->phase, &expected, PHASE_KEEP)) {
                /* It had not lowered itself yet and now never will. */
                run_wait_finished(run, h);
                return RAISE_NOT_NEEDED;
        }
        pthread_mutex_lock(&run->lock);
        state = h->state;
        pthread_mutex_unlock(&run->lock);
        tid = atomic_load(&h->tid);
        lowered = atomic_load(&h->phase) == PHASE_LOWERED;
        if (state >= HELPER_DRAINING) {
                run_wait_finished(run, h);
                return RAISE_NOT_NEEDED;
        }
        if (pad_lease_raise_priority(run->lease, tid) < 0) {
                run_wait_finished(run, h);
                return RAISE_FAILED;
        }

        /* If its own sched_setattr had not returned when we raised it, it may have undone
         * the raise: look at the thread itself (it may be starved, so never wait for it to
         * tell us) and raise it again once its lowering is known to be over. */
        pthread_mutex_lock(&run->lock);
        while (h->state != HELPER_FINISHED) {
                if (lowered) {
                        run_wait_locked(run, 0);
                        continue;
                }
                run_wait_locked(run, RAISE_RECHECK_USEC);
                if (h->state == HELPER_FINISHED)
                        break;
                lowered = atomic_load(&h->phase) == PHASE_LOWERED;
                if (lowered && helper_sched_below(tid, caller)) {
                        pthread_mutex_unlock(&run->lock);
                        (void) pad_lease_raise_priority(run->lease, tid);
                        pthread_mutex_lock(&run->lock);
                }
        }
        pthread_mutex_unlock(&run->lock);
        return RAISE_DONE;
}

/* Raise the helpers still inside a chunk one at a time, each after the previous finished, so
 * at most one thread of this job runs at the caller's priority; counts the raises that
 * worked and those that failed. Without the caller's own attributes nobody is raised. */
static void run_raise_helpers(JobRun *run, pad_job_stats *stats) {
        SchedAttr caller;

        if (sched_attr_get(0, &caller) < 0)
                return;
        for (unsigned i = 0; i < run->n_helpers; i++)
                switch (run_raise_one(run, &run->helpers[i], &caller)) {
                case RAISE_DONE:
                        stats->raised++;
                        break;
                case RAISE_FAILED:
                        stats->raise_failed++;
                        break;
                case RAISE_NOT_NEEDED:
                        break;
                }
}

static void run_wait_helpers(JobRun *run) {
        pthread_mutex_lock(&run->lock);
        while (run->n_running > 0)
                run_wait_locked(run, 0);
        pthread_mutex_unlock(&run->lock);
        for (unsigned i = 0; i < run->n_helpers; i++)
                pthread_join(run->helpers[i].thread, NULL);
}

/* ---- borrowing helpers ---------------------------------------------------------------------- */

/* Decide the helper count: a lease from the broker, or the fallback count. */
static unsigned run_borrow(JobRun *run, pad_client *c, unsigned wanted, pad_job_stats *stats) {
        const pad_job *job = run->job;
        pad_acquire_opts o;
        int r;

        if (!c || (job->flags & PAD_JOB_NO_BROKER))
                return MIN(client_fallback_helpers(c), wanted);
        if (!client_connected(c)) {
                stats->broker_error = pad_client_broker_error(c, NULL, 0);
                return MIN(client_fallback_helpers(c), wanted);
        }

        o = (pad_acquire_opts) {
                .min = job->wait_usec > 0 ? 1 : 0,
                .wait_usec = job->wait_usec,
                .strict_node = !!(job->flags & PAD_JOB_STRICT_NODE),
                .caller_tid = job_gettid(),
                .tag = job->tag,
        };
        r = pad_client_acquire(c, MIN(wanted, BROKER_HELPERS_MAX), job->node, &o, &run->lease);
        if (IN_SET(r, -EBUSY, -ETIMEDOUT, -ENXIO, -EUSERS, -EINVAL)) {
                /* The broker answered no (busy, waited in vain, no such node, limits): the
                 * caller runs alone, as the budget says. */
                stats->brokered = 1;
                return 0;
        }
        if (r < 0) {
                /* No broker, access denied, or a bus we cannot use: the fallback. */
                stats->broker_error = r;
                return MIN(client_fallback_helpers(c), wanted);
        }
        stats->brokered = 1;

        stats->n_placement = pad_lease_placement(run->lease, stats->placement_node,
                                                 stats->placement_helpers, PAD_PLACEMENT_MAX);
        stats->n_placement = MIN(stats->n_placement, PAD_PLACEMENT_MAX);
        run->policy = client_helper_policy(c);
        run->pin = !(job->flags & PAD_JOB_NO_AFFINITY) &&
                   sched_getaffinity(0, sizeof run->allowed, &run->allowed) >= 0;
        return MIN(pad_lease_granted(run->lease), wanted);
}

/* Give the lease back; a lease that vanished during the job (paddd died or restarted
 * without it) is said so in the stats. */
static void run_release(JobRun *run, pad_job_stats *stats) {
        int r;

        if (!run->lease)
                return;
        r = pad_lease_release(run->lease);
        stats->lease_lost = lease_is_lost(run->lease) || r == -ENOENT || r == -EHOSTDOWN;
        run->lease = pad_lease_free(run->lease);
}

static void run_spawn(JobRun *run, unsigned n) {
        unsigned spawned = 0, granted = run->lease ? pad_lease_granted(run->lease) : 0;

        for (unsigned i = 0; i < n; i++) {
                Helper *h = &run->helpers[spawned];

                *h = (Helper) {
                        .run = run,
                        .node = run->lease ? lease_helper_node(run->lease, i) : PAD_NODE_ANY,
                        .state = HELPER_STARTING,
                };
                atomic_init(&h->phase, PHASE_START);
                atomic_init(&h->tid, 0);
                /* Work out the CPUs here, not in the helper: reading sysfs there would be its
                 * first malloc, whose new arena needs the mmap lock for writing and so waits
                 * behind every populate the caller is running. */
                if (run->pin)
                        cpuset_node_cpus_within(h->node, &run->allowed, &h->cpus);
                pthread_mutex_lock(&run->lock);
                run->n_running++;
                pthread_mutex_unlock(&run->lock);
                if (pthread_create(&h->thread, NULL, helper_main, h) != 0) {
                        pthread_mutex_lock(&run->lock);
                        run->n_running--;
                        pthread_mutex_unlock(&run->lock);
                        break;
                }
                spawned++;
        }
        run->n_helpers = spawned;
        /* Slots we could not use go back at once (granted was read before any helper ran). */
        if (run->lease && spawned < granted)
                (void) pad_lease_shrink(run->lease, granted - spawned);
}

/* ---- pad_job_run ---------------------------------------------------------------------------- */

static int job_normalise(const pad_job *job, uint64_t *ret_align, uint64_t *ret_min_chunk,
                         unsigned *ret_max_threads) {
        if (!job || !job->thread_fn || job->node < PAD_NODE_ANY)
                return -EINVAL;
        if (job->size > UINT64_MAX - job->start)
                return -EINVAL;
        if (job->tag && strlen(job->tag) > BROKER_TAG_MAX)
                return -EINVAL;
        *ret_align = job->align ? job->align : 1;
        *ret_min_chunk = job->min_chunk ? job->min_chunk : *ret_align;
        *ret_max_threads = job->max_threads ? job->max_threads : 1;
        return 0;
}

/* One work: the caller runs the whole range itself, with no thread, no lock, no bus. */
static int job_run_alone(const pad_job *job, pad_job_stats *stats) {
        int r;

        if (cancel_requested(job))
                return -ECANCELED;
        r = job->thread_fn(job->start, job->start + job->size, job->arg);
        if (stats) {
                stats->threads = 1;
                stats->chunks = 1;
        }
        if (r < 0)
                return r;
        if (job->progress_fn)
                job->progress_fn(job->size, job->size, job->progress_arg);
        return 0;
}

/* The lock, the condition on CLOCK_MONOTONIC and the progress schedule of a run. */
static void run_init(JobRun *run) {
        pthread_condattr_t attr;

        atomic_init(&run->done, 0);
        if (run->job->progress_fn) {
                run->progress_interval = run->job->progress_interval_usec ? run->job->progress_interval_usec
                                                                          : JOB_PROGRESS_INTERVAL_USEC_DEFAULT;
                run->progress_next = now_usec() + run->progress_interval;
        }
        pthread_mutex_init(&run->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&run->cond, &attr);
        pthread_condattr_destroy(&attr);
}

/* Borrow helpers and start them; a failed allocation runs the job without any. */
static void run_start_helpers(JobRun *run, pad_client *c, unsigned wanted, pad_job_stats *stats) {
        unsigned n = run_borrow(run, c, wanted, stats);

        if (n > 0) {
                run->helpers = calloc(n, sizeof *run->helpers);
                if (!run->helpers)
                        n = 0;          /* run_spawn gives the slots back */
        }
        stats->granted = n;
        run_spawn(run, n);
}

/* After every helper stopped: the counts, the lease given back, the run's resources freed. */
static int run_finish(JobRun *run, pad_job_stats *stats) {
        stats->threads = 1;
        for (unsigned i = 0; i < run->n_helpers; i++)
                stats->threads += run->helpers[i].chunks > 0;
        stats->chunks = run->chunks;
        run_release(run, stats);
        free(run->helpers);
        pthread_cond_destroy(&run->cond);
        pthread_mutex_destroy(&run->lock);
        return run->error;
}

static int job_run_many(pad_client *c, const pad_job *job, uint64_t chunk, unsigned works,
                        pad_job_stats *stats) {
        JobRun run = {
                .job = job,
                .next = job->start,
                .end = job->start + job->size,
                .chunk = chunk,
                .policy = HELPER_POLICY_NONE,
        };
        uint64_t s, e;
        int r;

        run_init(&run);
        run_start_helpers(&run, c, works - 1, stats);
        while (run_take_chunk(&run, &s, &e)) {
                run_chunk(&run, s, e);
                run_maybe_progress(&run);
        }
        pthread_mutex_lock(&run.lock);
        run.caller_done = true;
        pthread_mutex_unlock(&run.lock);
        if (run.lease && run.policy != HELPER_POLICY_NONE && !(job->flags & PAD_JOB_NO_RAISE))
                run_raise_helpers(&run, stats);
        run_wait_helpers(&run);

        r = run_finish(&run, stats);
        if (r == 0 && job->progress_fn)
                job->progress_fn(job->size, job->size, job->progress_arg);
        return r;
}

_public_ int pad_job_run(pad_client *c, const pad_job *job, pad_job_stats *ret_stats) {
        pad_job_stats stats = {};
        uint64_t align, min_chunk, chunk, t0 = 0;
        unsigned max_threads, works;
        int r;

        r = job_normalise(job, &align, &min_chunk, &max_threads);
        if (r < 0)
                return r;
        if (ret_stats)
                t0 = now_usec();

        if (job->size == 0) {
                if (job->progress_fn)
                        job->progress_fn(0, 0, job->progress_arg);
                r = 0;
        } else {
                job_split(job->size, align, min_chunk, max_threads, &works, &chunk);
                if (works <= 1)
                        r = job_run_alone(job, &stats);
                else
                        r = job_run_many(c, job, chunk, works, &stats);
        }

        if (ret_stats) {
                stats.wall_usec = now_usec() - t0;
                *ret_stats = stats;
        }
        return r;
}
