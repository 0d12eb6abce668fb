/* test-job.c: the job runner without a broker (c == NULL or a client on a dead bus): the
 * chunk split, every unit processed exactly once with aligned edges over thousands of random
 * jobs, error propagation, cancel from a thread and from a signal handler, progress, malformed
 * jobs, and the small internals (policy names, D-Bus error mapping, node CPU sets). */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "broker-contract.h"
#include "check-run.h"

#define MAX_UNITS 4096

typedef struct Coverage {
        uint64_t start, size, align;
        atomic_uint counts[MAX_UNITS];
        atomic_uint bad_edges;
        atomic_uint calls;
} Coverage;

static int coverage_fn(uint64_t s, uint64_t e, void *arg) {
        Coverage *cv = arg;

        atomic_fetch_add(&cv->calls, 1);
        if (s >= e || s < cv->start || e > cv->start + cv->size ||
            (s - cv->start) % cv->align != 0 ||
            (e != cv->start + cv->size && (e - cv->start) % cv->align != 0))
                atomic_fetch_add(&cv->bad_edges, 1);
        for (uint64_t u = s; u < e && u - cv->start < MAX_UNITS; u++)
                atomic_fetch_add(&cv->counts[u - cv->start], 1);
        return 0;
}

/* 0 if every unit was processed exactly once, else 1 + the first unit that was not.
 * (One assertion per job: Check records every assertion through a pipe.) */
static uint64_t coverage_wrong(Coverage *cv) {
        for (uint64_t u = 0; u < cv->size && u < MAX_UNITS; u++)
                if (atomic_load(&cv->counts[u]) != 1)
                        return u + 1;
        return 0;
}

static void set_fallback(unsigned n) {
        char buf[16];

        snprintf(buf, sizeof buf, "%u", n);
        ck_assert_int_eq(setenv("PADCLIENT_FALLBACK_HELPERS", buf, 1), 0);
}

START_TEST(test_split) {
        unsigned seed = 1;

        for (int i = 0; i < 100000; i++) {
                uint64_t size = 1 + rand_r(&seed) % 100000, align = 1 + rand_r(&seed) % 64;
                uint64_t min_chunk = 1 + rand_r(&seed) % 5000, chunk;
                unsigned max_threads = 1 + rand_r(&seed) % 64, works;

                job_split(size, align, min_chunk, max_threads, &works, &chunk);
                ck_assert_uint_ge(works, 1);
                ck_assert_uint_le(works, max_threads);
                ck_assert_uint_le(works, size / (min_chunk > align ? min_chunk : align) + 1);
                ck_assert_uint_eq(chunk % align, 0);
                ck_assert_uint_ge(chunk, min_chunk);
                ck_assert_uint_ge(chunk, size / ((uint64_t) works * 4));
        }
        /* Saturation instead of overflow. */
        {
                uint64_t chunk;
                unsigned works;

                job_split(UINT64_MAX, 3, UINT64_MAX, 8, &works, &chunk);
                ck_assert_uint_eq(works, 1);
                ck_assert_uint_eq(chunk % 3, 0);
        }
}
END_TEST

START_TEST(test_coverage_random) {
        static const uint64_t aligns[] = { 0, 1, 2, 3, 4, 7, 8, 16, 64, 100 };
        unsigned seed = 42;
        Coverage *cv = calloc(1, sizeof *cv);

        ck_assert_ptr_nonnull(cv);
        for (int it = 0; it < 3000; it++) {
                pad_job_stats st;
                pad_job job = {
                        .thread_fn = coverage_fn,
                        .arg = cv,
                        .size = rand_r(&seed) % MAX_UNITS,
                        .align = aligns[rand_r(&seed) % 10],
                        .min_chunk = rand_r(&seed) % 3 == 0 ? 0 : rand_r(&seed) % 300,
                        .max_threads = rand_r(&seed) % 7,
                        .node = PAD_NODE_ANY,
                };
                uint64_t hi = rand_r(&seed) % 4 == 0 ? UINT64_MAX - job.size : (uint64_t) 1 << 40;

                job.start = rand_r(&seed) % 2 ? hi : (uint64_t) rand_r(&seed);
                set_fallback(rand_r(&seed) % 4);
                memset(cv, 0, sizeof *cv);
                cv->start = job.start;
                cv->size = job.size;
                cv->align = job.align ? job.align : 1;

                ck_assert_int_eq(pad_job_run(NULL, &job, &st), 0);
                ck_assert_uint_eq(atomic_load(&cv->bad_edges), 0);
                ck_assert_msg(coverage_wrong(cv) == 0, "iteration %d: unit %llu processed %u times",
                              it, (unsigned long long) coverage_wrong(cv) - 1,
                              atomic_load(&cv->counts[coverage_wrong(cv) - 1]));
                ck_assert_uint_eq(st.chunks, atomic_load(&cv->calls));
                ck_assert_uint_ge(st.threads, job.size > 0 ? 1 : 0);
                ck_assert_uint_le(st.threads, 1 + st.granted);
                ck_assert_uint_le(st.threads, job.max_threads ? job.max_threads : 1);
                ck_assert_int_eq(st.brokered, 0);
        }
        free(cv);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

typedef struct ErrorJob {
        uint64_t fail_at;
        atomic_bool failed;
        atomic_int failed_tid;          /* the thread whose chunk failed */
        atomic_uint late_starts;        /* chunks started after the failure, any thread */
        atomic_uint late_same_thread;   /* ... by the thread that failed */
        atomic_uint calls;
} ErrorJob;

static int error_fn(uint64_t s, uint64_t e, void *arg) {
        ErrorJob *ej = arg;
        pid_t me = (pid_t) syscall(SYS_gettid);

        atomic_fetch_add(&ej->calls, 1);
        if (atomic_load(&ej->failed)) {
                atomic_fetch_add(&ej->late_starts, 1);
                if (atomic_load(&ej->failed_tid) == me)
                        atomic_fetch_add(&ej->late_same_thread, 1);
        }
        if (s <= ej->fail_at && ej->fail_at < e) {
                atomic_store(&ej->failed_tid, me);
                atomic_store(&ej->failed, true);
                return -EIO;
        }
        return 0;
}

START_TEST(test_error_single) {
        ErrorJob ej = { .fail_at = 300 };
        pad_job_stats st;
        pad_job job = {
                .thread_fn = error_fn, .arg = &ej, .size = 1000, .min_chunk = 1,
                .max_threads = 4, .node = PAD_NODE_ANY,
        };

        set_fallback(0);
        ck_assert_int_eq(pad_job_run(NULL, &job, &st), -EIO);
        /* The caller alone: nothing runs after the failing chunk. */
        ck_assert_uint_eq(atomic_load(&ej.late_starts), 0);
        ck_assert_uint_eq(st.chunks, atomic_load(&ej.calls));
        ck_assert_uint_lt(st.chunks, 16);
}
END_TEST

START_TEST(test_error_helpers) {
        for (int it = 0; it < 200; it++) {
                ErrorJob ej = { .fail_at = (uint64_t) it * 5 };
                pad_job_stats st;
                pad_job job = {
                        .thread_fn = error_fn, .arg = &ej, .size = 1000, .min_chunk = 1,
                        .max_threads = 4, .node = PAD_NODE_ANY,
                };

                set_fallback(3);
                ck_assert_int_eq(pad_job_run(NULL, &job, &st), -EIO);
                /* The failing thread records the error before it looks for another chunk;
                 * the others may still start chunks taken before it was recorded. */
                ck_assert_uint_eq(atomic_load(&ej.late_same_thread), 0);
                ck_assert_uint_eq(st.chunks, atomic_load(&ej.calls));
                ck_assert_uint_le(atomic_load(&ej.late_starts), st.chunks - 1);
        }
}
END_TEST

START_TEST(test_error_alone) {
        ErrorJob ej = { .fail_at = 0 };
        pad_job job = { .thread_fn = error_fn, .arg = &ej, .size = 10, .max_threads = 1 };

        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EIO);
        ck_assert_uint_eq(atomic_load(&ej.calls), 1);
}
END_TEST

/* ---- cancel ---------------------------------------------------------------------------------- */

typedef struct SlowJob {
        atomic_uint calls;
        atomic_ullong units;
} SlowJob;

static int slow_fn(uint64_t s, uint64_t e, void *arg) {
        SlowJob *sj = arg;

        atomic_fetch_add(&sj->calls, 1);
        atomic_fetch_add(&sj->units, e - s);
        usleep(1000);
        return 0;
}

typedef struct Canceller {
        SlowJob *sj;
        pad_cancel *cancel;
        bool by_signal;
} Canceller;

static void *canceller_main(void *arg) {
        Canceller *k = arg;

        while (atomic_load(&k->sj->calls) < 5)
                usleep(100);
        if (k->by_signal)
                kill(getpid(), SIGUSR1);
        else
                pad_cancel_request(k->cancel);
        return NULL;
}

static pad_cancel signal_token = PAD_CANCEL_INIT;

static void on_sigusr1(int sig) {
        pad_cancel_request(&signal_token);
}

static void run_cancel(bool by_signal, unsigned helpers) {
        SlowJob sj = {};
        pad_cancel local = PAD_CANCEL_INIT;
        pad_cancel *token = by_signal ? &signal_token : &local;
        Canceller k = { .sj = &sj, .cancel = token, .by_signal = by_signal };
        pad_job job = {
                .thread_fn = slow_fn, .arg = &sj, .size = 100000, .min_chunk = 1, .align = 1,
                .max_threads = 64, .node = PAD_NODE_ANY, .cancel = token,
        };
        pthread_t t;

        if (by_signal) {
                struct sigaction sa = { .sa_handler = on_sigusr1 };

                sigemptyset(&sa.sa_mask);
                ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
                pad_cancel_reset(&signal_token);
        }
        set_fallback(helpers);
        ck_assert_int_eq(pthread_create(&t, NULL, canceller_main, &k), 0);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -ECANCELED);
        pthread_join(t, NULL);
        ck_assert_uint_lt(atomic_load(&sj.units), job.size);
        ck_assert_uint_ge(atomic_load(&sj.calls), 5);
}

START_TEST(test_cancel_thread) {
        run_cancel(false, 0);
        run_cancel(false, 2);
}
END_TEST

START_TEST(test_cancel_signal) {
        run_cancel(true, 0);
        run_cancel(true, 3);
}
END_TEST

START_TEST(test_cancel_before) {
        SlowJob sj = {};
        pad_cancel token = PAD_CANCEL_INIT;
        pad_job job = { .thread_fn = slow_fn, .arg = &sj, .size = 100, .max_threads = 4,
                        .node = PAD_NODE_ANY, .cancel = &token };

        pad_cancel_request(&token);
        set_fallback(2);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -ECANCELED);
        job.max_threads = 1;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -ECANCELED);
        ck_assert_uint_eq(atomic_load(&sj.calls), 0);
        pad_cancel_reset(&token);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), 0);
        ck_assert_uint_eq(atomic_load(&sj.units), 100);
}
END_TEST

/* ---- progress -------------------------------------------------------------------------------- */

typedef struct Progress {
        pid_t caller;
        unsigned calls;
        uint64_t last, total;
        bool backwards, wrong_thread, wrong_total;
} Progress;

static void progress_cb(uint64_t done, uint64_t total, void *arg) {
        Progress *p = arg;

        if (done < p->last)
                p->backwards = true;
        if (total != p->total)
                p->wrong_total = true;
        if ((pid_t) syscall(SYS_gettid) != p->caller)
                p->wrong_thread = true;
        p->last = done;
        p->calls++;
}

static void run_progress(unsigned helpers) {
        SlowJob sj = {};
        Progress p = { .caller = (pid_t) syscall(SYS_gettid), .total = 300 };
        pad_job job = {
                .thread_fn = slow_fn, .arg = &sj, .size = 300, .min_chunk = 1, .max_threads = 4,
                .node = PAD_NODE_ANY, .progress_fn = progress_cb, .progress_arg = &p,
                .progress_interval_usec = 500,
        };

        set_fallback(helpers);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), 0);
        ck_assert(!p.backwards);
        ck_assert(!p.wrong_thread);
        ck_assert(!p.wrong_total);
        ck_assert_uint_eq(p.last, 300);
        /* Alone, the caller runs every chunk, each longer than the interval: it reports
         * between chunks, not only at the end. */
        if (helpers == 0)
                ck_assert_uint_ge(p.calls, 2);
        else
                ck_assert_uint_ge(p.calls, 1);
        ck_assert_uint_eq(atomic_load(&sj.units), 300);
}

START_TEST(test_progress) {
        run_progress(0);
        run_progress(3);
}
END_TEST

START_TEST(test_progress_error_no_final) {
        ErrorJob ej = { .fail_at = 50 };
        Progress p = { .caller = (pid_t) syscall(SYS_gettid), .total = 100 };
        pad_job job = {
                .thread_fn = error_fn, .arg = &ej, .size = 100, .min_chunk = 1, .max_threads = 2,
                .node = PAD_NODE_ANY, .progress_fn = progress_cb, .progress_arg = &p,
        };

        set_fallback(0);
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EIO);
        ck_assert_uint_lt(p.last, 100);
}
END_TEST

/* ---- malformed and edge jobs ------------------------------------------------------------------ */

static int count_fn(uint64_t s, uint64_t e, void *arg) {
        atomic_fetch_add((atomic_uint *) arg, 1);
        return 0;
}

START_TEST(test_malformed) {
        atomic_uint calls = 0;
        pad_job job = { .thread_fn = count_fn, .arg = &calls, .size = 10, .node = PAD_NODE_ANY };
        char tag[100];

        ck_assert_int_eq(pad_job_run(NULL, NULL, NULL), -EINVAL);
        job.thread_fn = NULL;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EINVAL);
        job.thread_fn = count_fn;
        job.node = -2;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EINVAL);
        job.node = PAD_NODE_ANY;
        job.start = UINT64_MAX - 5;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EINVAL);
        job.start = 0;
        memset(tag, 'x', sizeof tag - 1);
        tag[sizeof tag - 1] = '\0';
        job.tag = tag;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), -EINVAL);
        ck_assert_uint_eq(atomic_load(&calls), 0);
        job.tag = NULL;

        /* size 0: nothing to do, thread_fn never called. */
        job.size = 0;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), 0);
        ck_assert_uint_eq(atomic_load(&calls), 0);

        /* align 0 means 1, max_threads 0 means 1: one call over the whole range. */
        job.size = 10;
        ck_assert_int_eq(pad_job_run(NULL, &job, NULL), 0);
        ck_assert_uint_eq(atomic_load(&calls), 1);
}
END_TEST

/* ---- a client without a broker ------------------------------------------------------------------ */

START_TEST(test_client_dead_bus) {
        char dir[] = "/tmp/padclient-test-XXXXXX", addr[128], line[256];
        pad_client *c = NULL;
        pad_lease *l = NULL;
        Coverage *cv = calloc(1, sizeof *cv);
        pad_job_stats st;
        FILE *err;
        int saved, lines = 0;

        ck_assert_ptr_nonnull(cv);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(addr, sizeof addr, "unix:path=%s/nothing", dir);
        ck_assert_int_eq(pad_client_new("not an address", &c), -EINVAL);
        ck_assert_int_eq(pad_client_new(addr, &c), 0);
        ck_assert_int_eq(pad_client_has_broker(c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &l), -EHOSTDOWN);
        ck_assert_int_eq(pad_client_acquire(c, 0, PAD_NODE_ANY, NULL, &l), -EINVAL);

        err = tmpfile();
        ck_assert_ptr_nonnull(err);
        saved = dup(STDERR_FILENO);
        ck_assert_int_eq(dup2(fileno(err), STDERR_FILENO), STDERR_FILENO);
        for (int i = 0; i < 3; i++) {
                pad_job job = { .thread_fn = coverage_fn, .arg = cv, .start = 7, .size = 1000,
                                .align = 4, .max_threads = 4, .node = PAD_NODE_ANY };

                memset(cv, 0, sizeof *cv);
                cv->start = 7;
                cv->size = 1000;
                cv->align = 4;
                ck_assert_int_eq(pad_job_run(c, &job, &st), 0);
                ck_assert_uint_eq(coverage_wrong(cv), 0);
                ck_assert_int_eq(st.brokered, 0);
        }
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        rewind(err);
        /* The library never prints: the reason is in the stats and pad_client_broker_error(). */
        while (fgets(line, sizeof line, err))
                lines++;
        ck_assert_int_eq(lines, 0);
        ck_assert_int_eq(st.broker_error, -ENOENT);
        ck_assert_int_eq(pad_client_broker_error(c, line, sizeof line), -ENOENT);
        ck_assert_msg(strstr(line, "cannot connect to unix:path="), "%s", line);
        fclose(err);
        pad_client_free(c);
        rmdir(dir);
        free(cv);
}
END_TEST

/* ---- internals ---------------------------------------------------------------------------------- */

START_TEST(test_policy_names) {
        for (int p = 0; p < _HELPER_POLICY_MAX; p++)
                ck_assert_int_eq(helper_policy_from_string(helper_policy_to_string(p)), p);
        ck_assert_int_eq(helper_policy_from_string("IDLE"), -EINVAL);
        ck_assert_int_eq(helper_policy_from_string(NULL), -EINVAL);
        ck_assert_int_eq(helper_sched_apply(HELPER_POLICY_NONE), 0);
        ck_assert_int_eq(helper_sched_apply(_HELPER_POLICY_MAX), -EINVAL);
}
END_TEST

START_TEST(test_error_map) {
        static const struct { const char *name; int err; } cases[] = {
                { BROKER_ERROR_BUSY, -EBUSY },
                { BROKER_ERROR_TIMEOUT, -ETIMEDOUT },
                { BROKER_ERROR_NO_SUCH_NODE, -ENXIO },
                { SD_BUS_ERROR_LIMITS_EXCEEDED, -EUSERS },
                { SD_BUS_ERROR_ACCESS_DENIED, -EACCES },
                { SD_BUS_ERROR_INVALID_ARGS, -EINVAL },
                { SD_BUS_ERROR_SERVICE_UNKNOWN, -EHOSTDOWN },
                { SD_BUS_ERROR_NAME_HAS_NO_OWNER, -EHOSTDOWN },
                { SD_BUS_ERROR_NO_REPLY, -EHOSTDOWN },
        };

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r = sd_bus_error_set(&e, cases[i].name, "x");

                ck_assert_int_eq(bus_error_to_errno(&e, r), cases[i].err);
                sd_bus_error_free(&e);
        }
        ck_assert_int_eq(bus_error_to_errno(NULL, -ECONNRESET), -EHOSTDOWN);
        ck_assert_int_eq(bus_error_to_errno(NULL, -ENOMEM), -ENOMEM);
}
END_TEST

START_TEST(test_node_cpus) {
        cpu_set_t set, allowed, within;

        ck_assert_int_eq(cpuset_node_cpus(0, &set), 0);
        ck_assert_int_gt(CPU_COUNT(&set), 0);
        ck_assert_int_eq(cpuset_node_cpus(100000, &set), -ENOENT);
        ck_assert_int_eq(cpuset_node_cpus(-1, &set), -EINVAL);
        ck_assert_int_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
        cpuset_node_cpus_within(100000, &allowed, &within);
        ck_assert(CPU_EQUAL(&within, &allowed));
        cpuset_node_cpus_within(0, &allowed, &within);
        ck_assert_int_gt(CPU_COUNT(&within), 0);
        ck_assert_uint_ge(cpuset_cpus_allowed(), 1);
}
END_TEST

static Suite *job_suite(void) {
        Suite *s = suite_create("job");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_split);
        tcase_add_test(tc, test_coverage_random);
        tcase_add_test(tc, test_error_single);
        tcase_add_test(tc, test_error_helpers);
        tcase_add_test(tc, test_error_alone);
        tcase_add_test(tc, test_cancel_thread);
        tcase_add_test(tc, test_cancel_signal);
        tcase_add_test(tc, test_cancel_before);
        tcase_add_test(tc, test_progress);
        tcase_add_test(tc, test_progress_error_no_final);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_client_dead_bus);
        tcase_add_test(tc, test_policy_names);
        tcase_add_test(tc, test_error_map);
        tcase_add_test(tc, test_node_cpus);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return check_run_suite(job_suite());
}
