/* bench-jobs.c: one command measuring the costs and gains of libpadclient jobs, side by
 * side in one run, and printing one table: (a) the overhead of a job of one tiny chunk
 * against calling thread_fn directly, without and with a broker (the extra against one
 * Acquire+Release round trip); (b) interference as ktask measured it: a CPU-bound
 * foreground process alone, beside a job whose helpers run at the caller's priority with no
 * broker, and beside a brokered job whose helpers run at the broker's HelperPolicy; (c) the
 * finish time of a job on a machine whose CPUs are all busy: brokered with the raise at job
 * end, without it, and on one thread. The broker is a real paddd on a private dbus-daemon
 * (tests/fixture.c); PADDD_BIN defaults to ../daemon/paddd next to this binary. Links only
 * the shared library and its public header. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "bench-util.h"
#include "padclient.h"

#define ROUNDS_PER_UNIT 2048
#define JOB_TARGET_SEC 1.5
#define FOREGROUND_TARGET_SEC 2.5
#define REPEATS 3

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static double secs_since(uint64_t t0) {
        return (double) (now_ns() - t0) / 1e9;
}

/* ---- the table --------------------------------------------------------------------------- */

typedef struct Row {
        char what[96];
        char value[32];
        char ratio[24];
        char goal[40];
        char note[96];
} Row;

static Row rows[32];
static unsigned n_rows;

static Row *row_add(const char *what) {
        Row *r = &rows[n_rows++];
        *r = (Row) {};
        snprintf(r->what, sizeof(r->what), "%s", what);
        return r;
}

static void table_print(void) {
        printf("\n%-50s %12s %9s %-30s %s\n", "measurement", "value", "ratio", "goal", "notes");
        for (unsigned i = 0; i < n_rows; i++) {
                Row *r = &rows[i];
                if (!r->value[0] && !r->ratio[0])
                        printf("%s\n", r->what);
                else
                        printf("%-50s %12s %9s %-30s %s\n", r->what, r->value, r->ratio, r->goal, r->note);
        }
        FILE *f = fopen("/proc/loadavg", "re");
        char line[128];
        if (f && fgets(line, sizeof(line), f))
                printf("load after the run: %s", line);
        if (f)
                fclose(f);
}

/* ---- the machine --------------------------------------------------------------------------- */

static unsigned n_cpus;

static void machine_describe(void) {
        char line[256], model[128] = "unknown";
        struct utsname u;
        FILE *f = fopen("/proc/cpuinfo", "re");

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "model name", 10) == 0) {
                        char *p = strchr(line, ':');
                        if (p) {
                                snprintf(model, sizeof(model), "%s", p + 2);
                                model[strcspn(model, "\n")] = '\0';
                        }
                        break;
                }
        if (f)
                fclose(f);
        uname(&u);
        n_cpus = (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        printf("machine: %u CPUs (nproc), %s, kernel %s %s\n", n_cpus, model, u.sysname, u.release);
        f = fopen("/proc/loadavg", "re");
        if (f && fgets(line, sizeof(line), f))
                printf("load before the run (other programs): %s", line);
        if (f)
                fclose(f);
}

/* ---- the CPU-bound job --------------------------------------------------------------------- */

typedef struct Work {
        _Atomic uint64_t sink;
        atomic_int stop;                /* set: chunks return -ECANCELED at once */
        _Atomic pid_t caller_tid;
        atomic_uint seen_policies;      /* bit per policy seen on a helper thread */
} Work;

static uint64_t mix(uint64_t h, unsigned rounds) {
        for (unsigned i = 0; i < rounds; i++) {
                h ^= h >> 31;
                h *= 0x9e3779b97f4a7c15ULL;
                h ^= h >> 29;
                h += 0xbf58476d1ce4e5b9ULL;
        }
        return h;
}

static int work_fn(uint64_t start, uint64_t end, void *arg) {
        Work *w = arg;
        uint64_t h = start;

        if (gettid() != atomic_load(&w->caller_tid)) {
                int p = sched_getscheduler(0);
                if (p >= 0 && p < 32)
                        atomic_fetch_or(&w->seen_policies, 1u << p);
        }
        for (uint64_t i = start; i < end; i++) {
                if (atomic_load_explicit(&w->stop, memory_order_relaxed))
                        return -ECANCELED;
                h = mix(h ^ i, ROUNDS_PER_UNIT);
        }
        atomic_fetch_add(&w->sink, h);
        return 0;
}

static const char *policies_string(unsigned seen, char *buf, size_t size) {
        buf[0] = '\0';
        if (seen & (1u << SCHED_IDLE))
                strncat(buf, "idle ", size - strlen(buf) - 1);
        if (seen & (1u << SCHED_BATCH))
                strncat(buf, "batch ", size - strlen(buf) - 1);
        if (seen & (1u << SCHED_OTHER))
                strncat(buf, "other ", size - strlen(buf) - 1);
        if (!buf[0])
                snprintf(buf, size, "none ");
        buf[strlen(buf) - 1] = '\0';
        return buf;
}

static uint64_t job_units;

/* Units such that one thread runs the job in about JOB_TARGET_SEC. */
static void job_calibrate(void) {
        Work w = {};
        uint64_t n = 256, t0;
        double s;

        atomic_store(&w.caller_tid, gettid());
        for (;;) {
                t0 = now_ns();
                work_fn(0, n, &w);
                s = secs_since(t0);
                if (s > 0.2)
                        break;
                n *= 2;
        }
        job_units = (uint64_t) ((double) n * JOB_TARGET_SEC / s);
}

static pad_job job_make(Work *w, unsigned max_threads, unsigned flags) {
        return (pad_job) {
                .thread_fn = work_fn,
                .arg = w,
                .size = job_units,
                .align = 1,
                .min_chunk = 1,
                .max_threads = max_threads,
                .node = PAD_NODE_ANY,
                .flags = flags,
                .tag = "bench-jobs",
        };
}

static void fallback_helpers_set(unsigned n) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%u", n);
        setenv("PADCLIENT_FALLBACK_HELPERS", buf, 1);
}

/* ---- (a) overhead --------------------------------------------------------------------------- */

static int tiny_fn(uint64_t start, uint64_t end, void *arg) {
        *(volatile uint64_t *) arg += end - start;
        return 0;
}

static int (*volatile tiny_ptr)(uint64_t, uint64_t, void *) = tiny_fn;

static double ns_per_direct_call(unsigned n) {
        volatile uint64_t acc = 0;
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < n; i++)
                tiny_ptr(i, i + 1, (void *) &acc);
        return (double) (now_ns() - t0) / n;
}

/* ns per pad_job_run of one tiny chunk; -1 on error. */
static double ns_per_tiny_job(pad_client *c, uint64_t size, unsigned max_threads, unsigned n,
                              pad_job_stats *ret_stats) {
        volatile uint64_t acc = 0;
        pad_job job = {
                .thread_fn = tiny_fn,
                .arg = (void *) &acc,
                .size = size,
                .max_threads = max_threads,
                .node = PAD_NODE_ANY,
        };
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                int r = pad_job_run(c, &job, ret_stats);
                if (r < 0) {
                        fprintf(stderr, "bench-jobs: tiny job: %s\n", strerror(-r));
                        return -1;
                }
        }
        return acc == n * size ? (double) (now_ns() - t0) / n : -1;
}

static double ns_per_acquire_release(pad_client *c, unsigned n) {
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                pad_lease *l = NULL;
                int r = pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &l);
                if (r < 0) {
                        fprintf(stderr, "bench-jobs: acquire: %s\n", strerror(-r));
                        return -1;
                }
                pad_lease_free(l);
        }
        return (double) (now_ns() - t0) / n;
}

static void row_ns(Row *r, double ns, double base) {
        if (ns < 0) {
                snprintf(r->value, sizeof(r->value), "failed");
                return;
        }
        if (ns < 10000)
                snprintf(r->value, sizeof(r->value), "%.1f ns", ns);
        else
                snprintf(r->value, sizeof(r->value), "%.1f us", ns / 1000);
        snprintf(r->ratio, sizeof(r->ratio), "%.2f", ns / base);
}

static void bench_overhead(pad_client *c) {
        const unsigned n = 1000000, n_bus = 2000;
        pad_job_stats st = {};
        Row *r;

        fallback_helpers_set(0);
        double direct = ns_per_direct_call(n);
        double nobroker = ns_per_tiny_job(NULL, 1, 1, n, NULL);
        row_add("(a) overhead of a job (ratio: against the first row of its group)");
        r = row_add("  thread_fn called directly");
        row_ns(r, direct, direct);
        snprintf(r->note, sizeof(r->note), "%u calls", n);
        r = row_add("  job of 1 tiny chunk, no broker (c = NULL)");
        row_ns(r, nobroker, direct);
        if (nobroker >= 0) {
                snprintf(r->goal, sizeof(r->goal), "extra < 5000 ns: %s",
                         nobroker - direct < 5000 ? "met" : "MISSED");
                snprintf(r->note, sizeof(r->note), "extra %.1f ns per job, %u jobs", nobroker - direct, n);
        }
        if (!c)
                return;

        /* With a broker: a job that borrows one helper (two tiny chunks, max_threads 2),
         * against the same job with one fallback helper thread and no broker. */
        fallback_helpers_set(1);
        double thread_job = ns_per_tiny_job(NULL, 2, 2, n_bus, &st);
        fallback_helpers_set(0);
        double rt = ns_per_acquire_release(c, n_bus);
        double one_chunk = ns_per_tiny_job(c, 1, 2, n_bus, NULL);
        double brokered = ns_per_tiny_job(c, 2, 2, n_bus, &st);
        r = row_add("  Acquire+Release round trip (pad_client_acquire)");
        row_ns(r, rt, rt);
        snprintf(r->note, sizeof(r->note), "%u pairs through dbus-daemon", n_bus);
        r = row_add("  brokered client, job of 1 tiny chunk");
        row_ns(r, one_chunk, rt);
        snprintf(r->note, sizeof(r->note), "one work: the caller alone, no lease");
        r = row_add("  no broker, 2 tiny chunks, 1 fallback helper");
        row_ns(r, thread_job, rt);
        snprintf(r->note, sizeof(r->note), "a helper thread, no bus");
        r = row_add("  brokered, 2 tiny chunks, max_threads 2");
        row_ns(r, brokered, rt);
        if (brokered < 0 || rt < 0 || thread_job < 0)
                return;
        double extra = brokered - thread_job;
        snprintf(r->goal, sizeof(r->goal), "extra ~ 1 round trip: %s", extra / rt <= 1.5 ? "met" : "MISSED");
        snprintf(r->note, sizeof(r->note), "extra over the fallback job %.1f us = %.2f round trips; granted %u",
                 extra / 1000, extra / rt, st.granted);
}

/* ---- (b) interference -------------------------------------------------------------------- */

static uint64_t fg_iters;

static uint64_t fg_work(uint64_t iters) {
        return mix(0x12345678, (unsigned) iters);
}

/* The foreground program: a child process on every CPU at nice 0; its own run time. */
static double foreground_run(void) {
        int p[2];
        double secs = -1;

        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                cpu_set_t all;
                CPU_ZERO(&all);
                for (unsigned i = 0; i < n_cpus && i < CPU_SETSIZE; i++)
                        CPU_SET(i, &all);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) sched_setaffinity(0, sizeof(all), &all);
                (void) setpriority(PRIO_PROCESS, 0, 0);
                uint64_t t0 = now_ns();
                volatile uint64_t x = fg_work(fg_iters);
                (void) x;
                double s = secs_since(t0);
                _exit(write(p[1], &s, sizeof(s)) == sizeof(s) ? 0 : 1);
        }
        close(p[1]);
        if (read(p[0], &secs, sizeof(secs)) != sizeof(secs))
                secs = -1;
        close(p[0]);
        waitpid(pid, NULL, 0);
        return secs;
}

static void foreground_calibrate(void) {
        uint64_t n = 1 << 20, t0;
        double s;
        for (;;) {
                t0 = now_ns();
                volatile uint64_t x = fg_work(n);
                (void) x;
                s = secs_since(t0);
                if (s > 0.2)
                        break;
                n *= 2;
        }
        fg_iters = (uint64_t) ((double) n * FOREGROUND_TARGET_SEC / s);
        if (fg_iters > UINT32_MAX)
                fg_iters = UINT32_MAX;
}

/* Jobs run back to back in a thread of ours while the foreground runs. */
typedef struct Background {
        pthread_t thread;
        pad_client *c;
        unsigned max_threads;
        atomic_int done;
        Work work;
        pad_job_stats stats;
        unsigned jobs;
        int error;
} Background;

static void *background_main(void *arg) {
        Background *b = arg;

        atomic_store(&b->work.caller_tid, gettid());
        while (!atomic_load(&b->done)) {
                pad_job job = job_make(&b->work, b->max_threads, 0);
                pad_job_stats st;
                int r = pad_job_run(b->c, &job, &st);
                if (r < 0 && r != -ECANCELED)
                        b->error = r;
                if (r < 0)
                        break;
                b->stats = st;
                b->jobs++;
        }
        return NULL;
}

static double foreground_beside(pad_client *c, unsigned max_threads, Background *b) {
        *b = (Background) { .c = c, .max_threads = max_threads };
        if (pthread_create(&b->thread, NULL, background_main, b) != 0)
                return -1;
        usleep(200 * 1000);     /* the job is under way, helpers started */
        double s = foreground_run();
        atomic_store(&b->done, 1);
        atomic_store(&b->work.stop, 1);
        pthread_join(b->thread, NULL);
        return b->error < 0 ? -1 : s;
}

static void bench_interference(pad_client *c) {
        double alone[REPEATS], single[REPEATS], nice0[REPEATS], brokered[REPEATS];
        Background b0 = {}, b1 = {}, bs = {};
        char pol[32];
        Row *r;

        foreground_calibrate();
        for (unsigned i = 0; i < REPEATS; i++) {
                alone[i] = foreground_run();
                fallback_helpers_set(0);
                single[i] = foreground_beside(NULL, 1, &bs);
                fallback_helpers_set(n_cpus - 1);
                nice0[i] = foreground_beside(NULL, n_cpus, &b0);
                fallback_helpers_set(0);
                brokered[i] = c ? foreground_beside(c, n_cpus, &b1) : -1;
        }
        double a = bench_median(alone, REPEATS), s1 = bench_median(single, REPEATS);
        double n0 = bench_median(nice0, REPEATS), br = bench_median(brokered, REPEATS);

        row_add("(b) interference: a CPU-bound foreground process at nice 0, median of 3");
        r = row_add("  foreground alone");
        snprintf(r->value, sizeof(r->value), "%.3f s", a);
        snprintf(r->ratio, sizeof(r->ratio), "1.000");
        r = row_add("  beside a job on its caller thread only");
        snprintf(r->value, sizeof(r->value), s1 < 0 ? "failed" : "%.3f s", s1);
        snprintf(r->ratio, sizeof(r->ratio), "%.3f", s1 / a);
        snprintf(r->note, sizeof(r->note), "control: the caller's own nice-0 thread, no helpers");
        r = row_add("  beside a job, no broker, helpers at nice 0");
        snprintf(r->value, sizeof(r->value), n0 < 0 ? "failed" : "%.3f s", n0);
        snprintf(r->ratio, sizeof(r->ratio), "%.3f", n0 / a);
        snprintf(r->note, sizeof(r->note), "%u threads, %u helpers (%s); %.3f x the control",
                 b0.stats.threads, b0.stats.granted,
                 policies_string(atomic_load(&b0.work.seen_policies), pol, sizeof(pol)), n0 / s1);
        if (!c)
                return;
        r = row_add("  beside a brokered job (helpers at HelperPolicy)");
        if (br < 0) {
                snprintf(r->value, sizeof(r->value), "failed");
                return;
        }
        snprintf(r->value, sizeof(r->value), "%.3f s", br);
        snprintf(r->ratio, sizeof(r->ratio), "%.3f", br / a);
        snprintf(r->goal, sizeof(r->goal), "<= 1.030: %s", br / a <= 1.03 ? "met" : "MISSED");
        snprintf(r->note, sizeof(r->note), "%u threads, %u granted, %u raised (%s); %.3f x the control",
                 b1.stats.threads, b1.stats.granted, b1.stats.raised,
                 policies_string(atomic_load(&b1.work.seen_policies), pol, sizeof(pol)), br / s1);
}

/* ---- (c) a busy machine ---------------------------------------------------------------- */

static pid_t hogs[1024];
static unsigned n_hogs;

static void hogs_start(unsigned n) {
        for (n_hogs = 0; n_hogs < n && n_hogs < 1024; n_hogs++) {
                pid_t pid = fork();
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        (void) setpriority(PRIO_PROCESS, 0, 0);
                        for (volatile uint64_t x = 0;; x++)
                                ;
                }
                hogs[n_hogs] = pid;
        }
}

static void hogs_stop(void) {
        for (unsigned i = 0; i < n_hogs; i++) {
                if (hogs[i] > 0) {
                        kill(hogs[i], SIGKILL);
                        waitpid(hogs[i], NULL, 0);
                }
        }
        n_hogs = 0;
}

typedef struct Timed {
        double secs;
        int r;
        pad_job_stats stats;
        char policies[32];
} Timed;

typedef struct Watchdog {
        Work *work;
        double limit;
        atomic_int finished;
} Watchdog;

static void *watchdog_main(void *arg) {
        Watchdog *d = arg;
        uint64_t t0 = now_ns();
        while (!atomic_load(&d->finished)) {
                if (secs_since(t0) > d->limit) {
                        atomic_store(&d->work->stop, 1);
                        break;
                }
                usleep(20 * 1000);
        }
        return NULL;
}

/* One job, timed, stopped after limit seconds. */
static Timed job_timed(pad_client *c, unsigned max_threads, unsigned flags, double limit) {
        Work w = {};
        Watchdog d = { .work = &w, .limit = limit };
        Timed t = {};
        pthread_t wd;

        atomic_store(&w.caller_tid, gettid());
        pad_job job = job_make(&w, max_threads, flags);
        pthread_create(&wd, NULL, watchdog_main, &d);
        uint64_t t0 = now_ns();
        t.r = pad_job_run(c, &job, &t.stats);
        t.secs = secs_since(t0);
        atomic_store(&d.finished, 1);
        pthread_join(wd, NULL);
        policies_string(atomic_load(&w.seen_policies), t.policies, sizeof(t.policies));
        return t;
}

/* Median of REPEATS timed runs; a run stopped at the limit counts as the limit. */
typedef struct Series {
        double secs[REPEATS];
        unsigned stopped;
        int error;
        Timed last;
} Series;

static void series_add(Series *s, unsigned i, const Timed *t, double limit) {
        s->last = *t;
        s->secs[i] = t->secs;
        if (t->r == -ECANCELED) {
                s->stopped++;
                s->secs[i] = limit;
        } else if (t->r < 0)
                s->error = t->r;
}

static void row_series(const char *what, Series *s, double single, double limit) {
        Row *r = row_add(what);
        if (s->error < 0) {
                snprintf(r->value, sizeof(r->value), "failed: %d", s->error);
                return;
        }
        double m = bench_median(s->secs, REPEATS);
        bool over = s->stopped > REPEATS / 2;
        snprintf(r->value, sizeof(r->value), over ? ">= %.1f s" : "%.3f s", m);
        snprintf(r->ratio, sizeof(r->ratio), over ? ">= %.2f" : "%.3f", m / single);
        snprintf(r->note, sizeof(r->note), "%u of %u stopped at %.1f s; %u threads, %u granted, %u raised (%s)",
                 s->stopped, REPEATS, limit, s->last.stats.threads, s->last.stats.granted,
                 s->last.stats.raised, s->last.policies);
}

static void bench_busy(pad_client *c) {
        Series single = {}, raise = {}, noraise = {};
        double limit = 0;
        Row *r;

        fallback_helpers_set(0);
        hogs_start(n_cpus);
        usleep(200 * 1000);
        for (unsigned i = 0; i < REPEATS; i++) {
                Timed t = job_timed(NULL, 1, PAD_JOB_NO_BROKER, 600);
                series_add(&single, i, &t, 600);
                if (limit == 0)
                        limit = t.secs * 5;
                if (!c || single.error < 0)
                        continue;
                t = job_timed(c, n_cpus, 0, limit);
                series_add(&raise, i, &t, limit);
                t = job_timed(c, n_cpus, PAD_JOB_NO_RAISE, limit);
                series_add(&noraise, i, &t, limit);
        }
        hogs_stop();

        double s1 = bench_median(single.secs, REPEATS);
        row_add("(c) finish time with every CPU busy (nproc nice-0 busy loops), median of 3");
        r = row_add("  single-threaded (max_threads 1)");
        snprintf(r->value, sizeof(r->value), single.error < 0 ? "failed" : "%.3f s", s1);
        snprintf(r->ratio, sizeof(r->ratio), "1.000");
        if (!c || single.error < 0)
                return;
        row_series("  brokered, raise at job end", &raise, s1, limit);
        double m = bench_median(raise.secs, REPEATS);
        snprintf(rows[n_rows - 1].goal, sizeof(rows[n_rows - 1].goal), "<= 1.000: %s",
                 raise.error == 0 && raise.stopped == 0 && m <= s1 ? "met" : "MISSED");
        row_series("  brokered, no raise (PAD_JOB_NO_RAISE)", &noraise, s1, limit);
}

/* PADDD_BIN for the fixture: the environment's, else ../daemon/paddd next to us. */
static void paddd_bin_default(void) {
        char exe[4096], path[4200];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (getenv("PADDD_BIN") || n <= 0)
                return;
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash)
                return;
        *slash = '\0';
        snprintf(path, sizeof(path), "%s/../daemon/paddd", exe);
        setenv("PADDD_BIN", path, 1);
}

/* paddd sends STATUS= on every change; nothing else reads the fixture's notify socket,
 * and a full socket would block paddd in sd_notify. Read it all the time. */
typedef struct Drain {
        pthread_t thread;
        Fixture *f;
        atomic_int done;
} Drain;

static void *drain_main(void *arg) {
        Drain *d = arg;
        while (!atomic_load(&d->done))
                if (fixture_wait_notify(d->f, "\001never\001", 100) == -ECHILD)
                        break;
        return NULL;
}

/* BENCH_AUTOGROUP_NICE=N: run in a session of our own whose autogroup has nice N, so
 * that on a shared machine the other sessions' load weighs less on every row alike. */
static void autogroup_shield(void) {
        const char *n = getenv("BENCH_AUTOGROUP_NICE");
        FILE *f;

        if (!n || !*n)
                return;
        (void) setsid();        /* fails if we lead a process group; then our session's group */
        f = fopen("/proc/self/autogroup", "we");
        if (!f || fprintf(f, "%s", n) < 0 || fclose(f) != 0) {
                printf("autogroup nice %s: not set (%s)\n", n, strerror(errno));
                return;
        }
        printf("shield: this session's autogroup at nice %s (sessions share CPU by autogroup)\n", n);
}

int main(void) {
        Fixture f = {};
        Drain drain = { .f = &f };
        pad_client *c = NULL;
        int r;

        machine_describe();
        autogroup_shield();
        paddd_bin_default();
        r = fixture_start(&f, NULL);
        if (r < 0)
                printf("broker: none (fixture_start: %s); brokered rows skipped\n", strerror(-r));
        else if ((r = pad_client_new(f.address, &c)) < 0 || !pad_client_has_broker(c)) {
                printf("broker: paddd on %s does not answer (%s); brokered rows skipped\n",
                       f.address, r < 0 ? strerror(-r) : "no broker");
                c = pad_client_free(c);
        } else {
                printf("broker: paddd on a private dbus-daemon, %s\n", f.address);
                if (pthread_create(&drain.thread, NULL, drain_main, &drain) != 0)
                        return EXIT_FAILURE;
        }

        job_calibrate();
        printf("job: %llu units of %u hash rounds, about %.1f s on one idle CPU\n",
               (unsigned long long) job_units, ROUNDS_PER_UNIT, JOB_TARGET_SEC);
        fflush(stdout);

        bench_overhead(c);
        bench_interference(c);
        bench_busy(c);
        table_print();

        if (c) {
                atomic_store(&drain.done, 1);
                pthread_join(drain.thread, NULL);
        }
        pad_client_free(c);
        fixture_stop(&f);
        return 0;
}
