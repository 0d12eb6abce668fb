/* test-priority.c: the daemon's thread check and raise (daemon/priority.c), called
 * directly on threads of this process and of other processes, on both verification paths
 * (pidfds, and the /proc fallback for kernels before 6.9); why paddd needs CAP_SYS_NICE
 * (an unprivileged thread cannot leave SCHED_IDLE by itself); and Lease.RaisePriority
 * through a real paddd on a private dbus-daemon: the owner's helper is raised to the
 * caller's priority, and a second process running as nobody cannot raise it. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "error.h"
#include "broker-contract.h"
#include "bus-open.h"
#include "fixture.h"
#include "priority.h"
#include "sched-defs.h"
#include "check-run.h"

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

#define NOBODY 65534

/* ---- scheduling of one thread, read and written without paddd ------------------------- */

static SchedAttr attr_get(pid_t tid) {
        SchedAttr a;
        ck_assert_int_eq(sched_attr_get(tid, &a), 0);
        return a;
}

static int attr_set(pid_t tid, int policy, int nice) {
        SchedAttr a = { .size = sizeof(a), .sched_policy = (uint32_t) policy, .sched_nice = nice };
        return sched_attr_set(tid, &a);
}

/* ---- a parked thread: reports its tid, then waits until its pipe closes --------------- */

typedef struct Parked {
        pthread_t thread;
        pid_t tid;
        int pipe[2];
        pthread_mutex_t lock;
        pthread_cond_t cond;
} Parked;

static void *parked_main(void *arg) {
        Parked *p = arg;
        char c;

        pthread_mutex_lock(&p->lock);
        p->tid = gettid();
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        while (read(p->pipe[0], &c, 1) < 0 && errno == EINTR)
                ;
        return NULL;
}

static void parked_start(Parked *p) {
        *p = (Parked) { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        ck_assert_int_eq(pipe2(p->pipe, O_CLOEXEC), 0);
        ck_assert_int_eq(pthread_create(&p->thread, NULL, parked_main, p), 0);
        pthread_mutex_lock(&p->lock);
        while (p->tid == 0)
                pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
}

static void parked_stop(Parked *p) {
        close(p->pipe[1]);
        pthread_join(p->thread, NULL);
        close(p->pipe[0]);
}

/* ---- another process with a parked SCHED_IDLE thread ---------------------------------- */

typedef struct Other {
        pid_t pid;
        pid_t tid;
        int stop_fd;    /* closing it ends the process */
} Other;

static void other_start(Other *o, uid_t uid) {
        int report[2], stop[2];

        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(stop, O_CLOEXEC), 0);
        o->pid = fork();
        ck_assert_int_ge(o->pid, 0);
        if (o->pid == 0) {
                Parked p;
                char c;
                close(report[0]);
                close(stop[1]);
                if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(2);
                p = (Parked) { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
                if (pipe2(p.pipe, O_CLOEXEC) < 0 || pthread_create(&p.thread, NULL, parked_main, &p) != 0)
                        _exit(3);
                pthread_mutex_lock(&p.lock);
                while (p.tid == 0)
                        pthread_cond_wait(&p.cond, &p.lock);
                pthread_mutex_unlock(&p.lock);
                if (attr_set(p.tid, SCHED_IDLE, 0) < 0)
                        _exit(4);
                if (write(report[1], &p.tid, sizeof(p.tid)) != sizeof(p.tid))
                        _exit(5);
                while (read(stop[0], &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        close(report[1]);
        close(stop[0]);
        ck_assert_int_eq(read(report[0], &o->tid, sizeof(o->tid)), (ssize_t) sizeof(o->tid));
        close(report[0]);
        o->stop_fd = stop[1];
}

static void other_stop(Other *o) {
        int status;

        close(o->stop_fd);
        ck_assert_int_eq(waitpid(o->pid, &status, 0), o->pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- direct calls, on both verification paths (loop index 0: pidfds, 1: /proc) ------- */

static const SchedParams other0 = { .policy = SCHED_OTHER, .nice = 0 };

START_TEST(test_raise_idle_to_other) {
        Parked p;
        SchedParams sp;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, p.tid, &sp), 0);
        ck_assert_int_eq(sp.policy, SCHED_IDLE);

        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &other0), 0);
        SchedAttr a = attr_get(p.tid);
        ck_assert_int_eq(a.sched_policy, SCHED_OTHER);
        ck_assert_int_eq(a.sched_nice, 0);
        ck_assert(a.sched_flags & SCHED_FLAG_RESET_ON_FORK);

        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, p.tid, &sp), 0);
        ck_assert_int_eq(sp.policy, SCHED_OTHER);
        ck_assert_int_eq(sp.nice, 0);
        parked_stop(&p);
}
END_TEST

START_TEST(test_raise_to_nice_and_batch) {
        Parked p;
        SchedParams nice2 = { .policy = SCHED_OTHER, .nice = 2 };
        SchedParams batch = { .policy = SCHED_BATCH, .nice = 5 };

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_OTHER, 7), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &nice2), 0);
        ck_assert_int_eq(attr_get(p.tid).sched_nice, 2);

        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &batch), 0);
        SchedAttr a = attr_get(p.tid);
        ck_assert_int_eq(a.sched_policy, SCHED_BATCH);
        ck_assert_int_eq(a.sched_nice, 5);
        parked_stop(&p);
}
END_TEST

START_TEST(test_never_lowers) {
        Parked p;
        SchedParams nice10 = { .policy = SCHED_OTHER, .nice = 10 };
        SchedParams idle = { .policy = SCHED_IDLE };

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_OTHER, 0), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &nice10), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &idle), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, p.tid, &other0), 0);
        SchedAttr a = attr_get(p.tid);
        ck_assert_int_eq(a.sched_policy, SCHED_OTHER);
        ck_assert_int_eq(a.sched_nice, 0);
        ck_assert(!(a.sched_flags & SCHED_FLAG_RESET_ON_FORK));        /* untouched */
        parked_stop(&p);
}
END_TEST

START_TEST(test_uid_mismatch) {
        Parked p;
        SchedParams sp;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);
        ck_assert_int_eq(priority_raise(getpid(), NOBODY, 0, p.tid, &other0), PAD_ERROR_ACCESS_DENIED);
        ck_assert_int_eq(priority_read(getpid(), NOBODY, 0, p.tid, &sp), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_IDLE);
        parked_stop(&p);
}
END_TEST

START_TEST(test_foreign_thread) {
        Other o;
        Parked p;
        SchedParams sp;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        other_start(&o, 0);
        /* Same uid (root), another process: its thread is not ours to raise. */
        int r = priority_raise(getpid(), geteuid(), 0, o.tid, &other0);
        ck_assert(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, o.tid, &sp), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_IDLE);

        /* The other process claiming one of our threads. */
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);
        r = priority_raise(o.pid, geteuid(), 0, p.tid, &other0);
        ck_assert(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_IDLE);

        /* A non-leader tid as the "process". */
        r = priority_raise(o.tid, geteuid(), 0, o.tid, &other0);
        ck_assert(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_IDLE);
        parked_stop(&p);
        other_stop(&o);
}
END_TEST

START_TEST(test_foreign_thread_of_nobody) {
        Other o;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        other_start(&o, NOBODY);
        /* Right pid, right thread, wrong uid claimed; then the right uid but not our thread. */
        ck_assert_int_eq(priority_raise(o.pid, 0, 0, o.tid, &other0), PAD_ERROR_ACCESS_DENIED);
        int r = priority_raise(getpid(), 0, 0, o.tid, &other0);
        ck_assert(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_IDLE);
        /* The owner itself, as paddd would do it for nobody's own lease. */
        ck_assert_int_eq(priority_raise(o.pid, NOBODY, 0, o.tid, &other0), 0);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_OTHER);
        other_stop(&o);
}
END_TEST

/* A raise to a real-time policy never gives a helper more than its own process could take:
 * nobody, with the RLIMIT_RTPRIO of 0 it inherits here and no CAP_SYS_NICE, is refused
 * SCHED_FIFO 10, and its thread stays as it was; root's process is raised. */
START_TEST(test_rt_within_rlimit) {
        const SchedParams fifo10 = { .policy = SCHED_FIFO, .rt_priority = 10 };
        struct rlimit rl;
        Other o;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        ck_assert_int_eq(getrlimit(RLIMIT_RTPRIO, &rl), 0);
        if (rl.rlim_cur >= 10) {
                printf("test-priority: RLIMIT_RTPRIO is %llu here: the refusal is not tested\n",
                       (unsigned long long) rl.rlim_cur);
                return;
        }
        other_start(&o, NOBODY);
        ck_assert_int_eq(priority_raise(o.pid, NOBODY, 0, o.tid, &fifo10), PAD_ERROR_ACCESS_DENIED);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_IDLE);
        other_stop(&o);
        other_start(&o, 0);
        ck_assert_int_eq(priority_raise(o.pid, 0, 0, o.tid, &fifo10), 0);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_FIFO);
        other_stop(&o);
}
END_TEST

static int proc_exists(pid_t tid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int) tid);
        return access(path, F_OK) == 0;
}

START_TEST(test_dead_and_bad_tids) {
        Parked p;
        Other o;
        SchedParams sp;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        parked_start(&p);
        pid_t tid = p.tid;
        parked_stop(&p);
        int r = priority_raise(getpid(), geteuid(), 0, tid, &other0);
        /* A tid reused by someone else meanwhile may be refused as foreign instead; and a
         * thread that pthread_join saw go may still be on its way out of the kernel, proven
         * ours and at other0 already: nothing to write, 0. */
        if (proc_exists(tid))
                ck_assert_msg(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS || r == 0,
                              "raise of the gone thread %d: %d", (int) tid, r);
        else
                ck_assert_int_eq(r, PAD_ERROR_INVALID_ARGS);

        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, 0, &other0), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, -3, &other0), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, 0, &sp), PAD_ERROR_INVALID_ARGS);

        /* A process that is gone. */
        other_start(&o, 0);
        pid_t pid = o.pid, otid = o.tid;
        other_stop(&o);
        r = priority_raise(pid, geteuid(), 0, otid, &other0);
        ck_assert(r == PAD_ERROR_ACCESS_DENIED || r == PAD_ERROR_INVALID_ARGS);
}
END_TEST

START_TEST(test_bad_target) {
        SchedParams bad_policy = { .policy = 42 };
        SchedParams bad_nice = { .policy = SCHED_OTHER, .nice = 30 };
        SchedParams bad_rt = { .policy = SCHED_FIFO, .rt_priority = 0 };
        SchedParams sp;

        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, gettid(), NULL), -EINVAL);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, gettid(), &bad_policy), -EINVAL);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, gettid(), &bad_nice), -EINVAL);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), 0, gettid(), &bad_rt), -EINVAL);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, gettid(), NULL), -EINVAL);
        ck_assert_int_eq(priority_read(0, geteuid(), 0, gettid(), &sp), -EINVAL);
}
END_TEST

/* A process is named by pid and start time: a caller whose recorded start time is not the
 * process's now (the pid was reused) is refused, and nothing is written. */
START_TEST(test_stale_start_time) {
        SchedParams sp;
        uint64_t start = 0;
        Parked p;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        ck_assert_int_eq(priority_process_start_time(getpid(), &start), 0);
        ck_assert_uint_gt(start, 0);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), start, gettid(), &sp), 0);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), start + 1, gettid(), &sp), PAD_ERROR_INVALID_ARGS);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), start + 1, p.tid, &other0), PAD_ERROR_ACCESS_DENIED);
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_IDLE);
        ck_assert_int_eq(priority_raise(getpid(), geteuid(), start, p.tid, &other0), 0);
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_OTHER);
        parked_stop(&p);
}
END_TEST

START_TEST(test_read_matches_kernel) {
        SchedParams sp;

        priority_set_proc_fallback(_i == 1);
        priority_set_no_pidfd(_i == 2);
        ck_assert_int_eq(setpriority(PRIO_PROCESS, (id_t) gettid(), 4), 0);
        ck_assert_int_eq(priority_read(getpid(), geteuid(), 0, gettid(), &sp), 0);
        SchedAttr a = attr_get(gettid());
        ck_assert_int_eq(sp.policy, (int) a.sched_policy);
        ck_assert_int_eq(sp.nice, a.sched_nice);
        ck_assert_int_eq(sp.nice, 4);
        ck_assert_int_eq(setpriority(PRIO_PROCESS, (id_t) gettid(), 0), 0);
}
END_TEST

/* ---- why paddd keeps CAP_SYS_NICE ------------------------------------------------------ */

START_TEST(test_unprivileged_cannot_leave_idle) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl = { 0, 0 };  /* the default RLIMIT_NICE */
                if (setrlimit(RLIMIT_NICE, &rl) < 0 || setgroups(0, NULL) < 0 ||
                    setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                        _exit(2);
                if (attr_set(gettid(), SCHED_IDLE, 0) < 0)
                        _exit(3);
                _exit(attr_set(gettid(), SCHED_OTHER, 0) == -EPERM ? 0 : 4);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_msg(WEXITSTATUS(status) == 0, "child step %d failed", WEXITSTATUS(status));
}
END_TEST

/* ---- through paddd on a private bus ---------------------------------------------------- */

static Fixture fixture;

static void bus_setup(void) {
        int r = fixture_start(&fixture, NULL);
        ck_assert_msg(r == 0, "fixture_start: %s (%s)", strerror(-r), fixture.last_status);
}

static void bus_teardown(void) {
        fixture_stop(&fixture);
}

static sd_bus *bus_connect(void) {
        sd_bus *bus = NULL;

        return bus_open_spec(fixture.address, NULL, &bus) < 0 ? NULL : bus;
}

/* Acquire(helpers, -1, {caller_tid}); the lease path into ret_path (freed by caller). */
static int bus_acquire(sd_bus *bus, unsigned helpers, pid_t caller_tid, char **ret_path,
                       sd_bus_error *error) {
        sd_bus_message *reply = NULL;
        const char *path;
        unsigned granted;
        int r = sd_bus_call_method(bus, BROKER_BUS_NAME, BROKER_PATH,
                                   BROKER_INTERFACE, "Acquire", error, &reply, "uia{sv}",
                                   helpers, -1, 1, "caller_tid", "u", (uint32_t) caller_tid);
        if (r >= 0)
                r = sd_bus_message_read(reply, "ou", &path, &granted);
        if (r >= 0)
                *ret_path = strdup(path);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}

static int bus_raise(sd_bus *bus, const char *lease, pid_t tid, sd_bus_error *error) {
        return sd_bus_call_method(bus, BROKER_BUS_NAME, lease, LEASE_INTERFACE,
                                  "RaisePriority", error, NULL, "u", (uint32_t) tid);
}

START_TEST(test_bus_raise_to_caller) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *lease = NULL;
        Parked p;

        sd_bus *bus = bus_connect();
        ck_assert_ptr_nonnull(bus);
        ck_assert_int_eq(setpriority(PRIO_PROCESS, (id_t) gettid(), 3), 0);
        ck_assert_int_eq(bus_acquire(bus, 1, gettid(), &lease, &error), 0);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);

        int r = bus_raise(bus, lease, p.tid, &error);
        ck_assert_msg(r >= 0, "RaisePriority: %s", error.name);
        SchedAttr a = attr_get(p.tid);
        ck_assert_int_eq(a.sched_policy, SCHED_OTHER);
        ck_assert_int_eq(a.sched_nice, 3);
        ck_assert(a.sched_flags & SCHED_FLAG_RESET_ON_FORK);

        ck_assert_int_eq(setpriority(PRIO_PROCESS, (id_t) gettid(), 0), 0);
        parked_stop(&p);
        free(lease);
        sd_bus_flush_close_unref(bus);
}
END_TEST

START_TEST(test_bus_foreign_process_thread) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *lease = NULL;
        Other o;

        sd_bus *bus = bus_connect();
        ck_assert_ptr_nonnull(bus);
        ck_assert_int_eq(bus_acquire(bus, 1, gettid(), &lease, &error), 0);
        other_start(&o, 0);
        ck_assert_int_lt(bus_raise(bus, lease, o.tid, &error), 0);
        ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED), "got %s", error.name);
        ck_assert_int_eq(attr_get(o.tid).sched_policy, SCHED_IDLE);
        sd_bus_error_free(&error);
        ck_assert_int_lt(bus_raise(bus, lease, 0, &error), 0);
        ck_assert_msg(sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS), "got %s", error.name);
        other_stop(&o);
        sd_bus_error_free(&error);
        free(lease);
        sd_bus_flush_close_unref(bus);
}
END_TEST

/* In a child running as nobody: 0 when every refusal came, else the failed step. */
static int nobody_tries(const char *lease, pid_t tid) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *own = NULL;

        struct rlimit rl = { 0, 0 };  /* the default RLIMIT_NICE */
        if (setrlimit(RLIMIT_NICE, &rl) < 0 || setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 ||
            setuid(NOBODY) < 0)
                return 10;
        sd_bus *bus = bus_connect();
        if (!bus)
                return 11;
        if (bus_raise(bus, lease, tid, &error) >= 0 || !sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                return 12;
        sd_bus_error_free(&error);
        if (bus_acquire(bus, 1, gettid(), &own, &error) < 0)
                return 13;
        if (bus_raise(bus, own, tid, &error) >= 0 || !sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))
                return 14;
        sd_bus_error_free(&error);

        /* Its own helper thread: paddd (without CAP_KILL) raises it all the same. */
        Parked p = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        SchedAttr a = {};
        if (pipe2(p.pipe, O_CLOEXEC) < 0 || pthread_create(&p.thread, NULL, parked_main, &p) != 0)
                return 15;
        pthread_mutex_lock(&p.lock);
        while (p.tid == 0)
                pthread_cond_wait(&p.cond, &p.lock);
        pthread_mutex_unlock(&p.lock);
        if (attr_set(p.tid, SCHED_IDLE, 0) < 0 || attr_set(p.tid, SCHED_OTHER, 0) != -EPERM)
                return 16;      /* it cannot come back by itself... */
        if (bus_raise(bus, own, p.tid, &error) < 0)
                return 17;      /* ...but the broker brings it back */
        if (syscall(SYS_sched_getattr, p.tid, &a, (unsigned) sizeof(a), 0U) < 0 ||
            a.sched_policy != SCHED_OTHER || !(a.sched_flags & SCHED_FLAG_RESET_ON_FORK))
                return 18;
        return 0;
}

START_TEST(test_bus_nobody_cannot_raise) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *lease = NULL;
        Parked p;
        int status;

        sd_bus *bus = bus_connect();
        ck_assert_ptr_nonnull(bus);
        ck_assert_int_eq(bus_acquire(bus, 1, gettid(), &lease, &error), 0);
        parked_start(&p);
        ck_assert_int_eq(attr_set(p.tid, SCHED_IDLE, 0), 0);

        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(nobody_tries(lease, p.tid));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_msg(WEXITSTATUS(status) == 0, "nobody's step %d failed", WEXITSTATUS(status));
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_IDLE);

        /* The owner can: the refusals above were about who asked. */
        ck_assert_int_ge(bus_raise(bus, lease, p.tid, &error), 0);
        ck_assert_int_eq(attr_get(p.tid).sched_policy, SCHED_OTHER);
        parked_stop(&p);
        free(lease);
        sd_bus_flush_close_unref(bus);
}
END_TEST

static const char *bus_unavailable(void) {
        const char *d = getenv("DBUS_DAEMON");
        if (!getenv("PADDD_BIN"))
                return "PADDD_BIN is not set (run through meson test)";
        if (d && access(d, X_OK) < 0)
                return "DBUS_DAEMON is not executable";
        if (!d && access("/usr/bin/dbus-daemon", X_OK) < 0 && access("/bin/dbus-daemon", X_OK) < 0)
                return "no dbus-daemon";
        return NULL;
}

static Suite *priority_suite(const char **ret_bus_skip) {
        Suite *s = suite_create("priority");
        TCase *tc = tcase_create("direct");
        tcase_add_loop_test(tc, test_raise_idle_to_other, 0, 3);
        tcase_add_loop_test(tc, test_raise_to_nice_and_batch, 0, 3);
        tcase_add_loop_test(tc, test_never_lowers, 0, 3);
        tcase_add_loop_test(tc, test_uid_mismatch, 0, 3);
        tcase_add_loop_test(tc, test_foreign_thread, 0, 3);
        tcase_add_loop_test(tc, test_foreign_thread_of_nobody, 0, 3);
        tcase_add_loop_test(tc, test_rt_within_rlimit, 0, 3);
        tcase_add_loop_test(tc, test_dead_and_bad_tids, 0, 3);
        tcase_add_loop_test(tc, test_read_matches_kernel, 0, 3);
        tcase_add_loop_test(tc, test_stale_start_time, 0, 3);
        tcase_add_test(tc, test_bad_target);
        tcase_add_test(tc, test_unprivileged_cannot_leave_idle);
        suite_add_tcase(s, tc);

        *ret_bus_skip = bus_unavailable();
        if (!*ret_bus_skip) {
                tc = tcase_create("bus");
                tcase_add_checked_fixture(tc, bus_setup, bus_teardown);
                tcase_set_timeout(tc, 60);
                tcase_add_test(tc, test_bus_raise_to_caller);
                tcase_add_test(tc, test_bus_foreign_process_thread);
                tcase_add_test(tc, test_bus_nobody_cannot_raise);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void) {
        const char *bus_skip;

        if (geteuid() != 0) {
                printf("test-priority: needs root (CAP_SYS_NICE, setuid to nobody): skipped\n");
                return 77;
        }
        Suite *s = priority_suite(&bus_skip);
        if (bus_skip)
                printf("test-priority: bus checks skipped: %s\n", bus_skip);
        return check_run_suite(s);
}
