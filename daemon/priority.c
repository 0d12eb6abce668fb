/* priority.c: owns the proof that a thread id names a thread of a given client process
 * (owned by a given uid), and the reading and raising of that thread's scheduling. The
 * proof holds pidfds so that a tid reused by another process is never acted on unnoticed:
 * on Linux 6.9+ a thread pidfd (PIDFD_THREAD) whose thread group is confirmed with
 * PIDFD_GET_INFO (6.13+), on older kernels a /proc/<pid> directory held open and checked
 * against the process pidfd, with the thread's start time compared before and after. After
 * acting, the thread must still be alive; if it is not, the change is undone and the call
 * fails. Pure logic over syscalls: nothing here logs. Constants and structures that Debian
 * 12's headers lack are defined here. (caps_drop_to_sys_nice lives in caps.c.) */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "error.h"
#include "priority.h"
#include "sched-defs.h"
#include "util.h"

#ifndef SCHED_BATCH
#define SCHED_BATCH 3
#endif
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL                     /* Linux 6.9 */
#endif
#ifndef PIDFD_SIGNAL_THREAD
#define PIDFD_SIGNAL_THREAD (1UL << 0)          /* Linux 6.9 */
#endif
#ifndef PIDFS_IOCTL_MAGIC
#define PIDFS_IOCTL_MAGIC 0xFF
#endif
#ifndef PIDFD_INFO_PID
#define PIDFD_INFO_PID (1ULL << 0)              /* Linux 6.13 */
#define PIDFD_INFO_CREDS (1ULL << 1)
#endif

/* The first version of the kernel's struct pidfd_info (PIDFD_INFO_SIZE_VER0, 64 bytes);
 * the kernel takes the size from the ioctl number and fills what both sides know. */
typedef struct PidfdInfo {
        uint64_t mask;
        uint64_t cgroupid;
        uint32_t pid;
        uint32_t tgid;
        uint32_t ppid;
        uint32_t ruid;
        uint32_t rgid;
        uint32_t euid;
        uint32_t egid;
        uint32_t suid;
        uint32_t sgid;
        uint32_t fsuid;
        uint32_t fsgid;
        uint32_t spare0[1];
} PidfdInfo;
_Static_assert(sizeof(PidfdInfo) == 64, "pidfd_info VER0 is 64 bytes");
#define PAD_PIDFD_GET_INFO _IOWR(PIDFS_IOCTL_MAGIC, 11, PidfdInfo)

/* What the verification holds on to until the action is proven. */
typedef struct ThreadRef {
        int pidfd;              /* the process, or -1 where the kernel has no pidfd_open */
        int tidfd;              /* the thread (PIDFD_THREAD), or -1 */
        int procfd;             /* /proc/<pid>, verified against pidfd, or -1 */
        int taskfd;             /* /proc/<pid>/task/<tid>, or -1 */
        uint64_t start_time;    /* field 22 of the task's stat, when taskfd >= 0 */
        uint64_t process_start; /* field 22 of the process's stat, when procfd >= 0 */
} ThreadRef;

/* Tests set these to exercise the pre-6.9 path, and the path without pidfd_open (kernels
 * before 5.3, valgrind), on a new kernel. */
static bool force_proc_fallback = false;
static bool force_no_pidfd = false;

void priority_set_proc_fallback(bool on) {
        force_proc_fallback = on;
}

void priority_set_no_pidfd(bool on) {
        force_no_pidfd = on;
}

#define THREAD_REF_NULL { .pidfd = -1, .tidfd = -1, .procfd = -1, .taskfd = -1 }

static void thread_ref_done(ThreadRef *r) {
        r->pidfd = safe_close(r->pidfd);
        r->tidfd = safe_close(r->tidfd);
        r->procfd = safe_close(r->procfd);
        r->taskfd = safe_close(r->taskfd);
}

static int sys_pidfd_open(pid_t pid, unsigned flags) {
        if (force_no_pidfd)
                return -ENOSYS;
        int fd = (int) syscall(SYS_pidfd_open, pid, flags);
        return fd < 0 ? -errno : fd;
}

static int sys_pidfd_send_signal(int pidfd, int sig, unsigned flags) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags) < 0 ? -errno : 0;
}

/* PIDFD_GET_INFO; -EOPNOTSUPP when the kernel predates it. */
static int pidfd_get_info(int pidfd, uint64_t mask, PidfdInfo *ret) {
        *ret = (PidfdInfo) { .mask = mask };
        if (ioctl(pidfd, PAD_PIDFD_GET_INFO, ret) < 0)
                /* ENOTTY before 6.13; EINVAL for a size or mask it does not take. */
                return errno == ENOTTY || errno == EINVAL ? -EOPNOTSUPP : -errno;
        if ((ret->mask & mask) != mask)
                return -EOPNOTSUPP;
        return 0;
}

/* A pidfd's task is alive (not yet reaped). Signal 0 to a task of another uid answers
 * EPERM without CAP_KILL (which paddd does not keep): that still proves it exists. */
static int pidfd_alive(int pidfd, unsigned flags) {
        int r = sys_pidfd_send_signal(pidfd, 0, flags);
        if (r == 0 || r == -EPERM)
                return 1;
        return r == -ESRCH ? 0 : r;
}

/* Read a small file below dirfd into buf, NUL-terminated. */
static int read_small_at(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

/* The value of "Key:\t<first>\t<second>..." in a status file; field 0 is the first. */
static int status_field(const char *status, const char *key, unsigned field, uint64_t *ret) {
        size_t len = strlen(key);
        for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, len) != 0 || p[len] != ':')
                        continue;
                p += len + 1;
                for (unsigned i = 0;; i++) {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(p, &end, 10);
                        if (errno != 0 || end == p)
                                return -EBADMSG;
                        if (i == field) {
                                *ret = v;
                                return 0;
                        }
                        p = end;
                }
        }
        return -EBADMSG;
}

/* May the process behind procfd (of uid) set a real-time priority of prio itself: root,
 * CAP_SYS_NICE in its effective set, or prio within its soft RLIMIT_RTPRIO? 1, 0, -errno.
 * A raise never gives a helper more than its own process could take. */
static int process_may_rt(int procfd, uid_t uid, unsigned prio) {
        char status[4096], limits[4096];
        const char *line;
        int r;

        if (uid == 0)
                return 1;
        r = read_small_at(procfd, "status", status, sizeof status);
        if (r < 0)
                return r;
        line = strstr(status, "\nCapEff:");
        if (line && (strtoull(line + strlen("\nCapEff:"), NULL, 16) & (1ULL << CAP_SYS_NICE)))
                return 1;
        r = read_small_at(procfd, "limits", limits, sizeof limits);
        if (r < 0)
                return r;
        line = strstr(limits, "Max realtime priority");
        if (!line)
                return -EBADMSG;
        line += strlen("Max realtime priority");
        while (*line == ' ')
                line++;
        if (strncmp(line, "unlimited", 9) == 0)
                return 1;
        return prio <= strtoull(line, NULL, 10);
}

/* Field 22 (starttime) of a stat file: counted after the last ')' of the comm field. */
static int stat_start_time(int taskfd, uint64_t *ret) {
        char buf[1024];
        int r = read_small_at(taskfd, "stat", buf, sizeof(buf));
        if (r < 0)
                return r;
        const char *p = strrchr(buf, ')');
        if (!p)
                return -EBADMSG;
        p++;
        for (unsigned field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EBADMSG;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + 1, &end, 10);
        if (errno != 0 || end == p + 1)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* /proc/<pid> opened while the process pidfd is alive names that process for good. */
static int proc_open_verified(pid_t pid, int pidfd, int *ret_procfd) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        _cleanup_close_ int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (procfd < 0)
                return errno == ENOENT ? PAD_ERROR_ACCESS_DENIED : -errno;
        /* Without a pidfd the caller proves the process by its start time instead. */
        int r = pidfd >= 0 ? pidfd_alive(pidfd, 0) : 1;
        if (r < 0)
                return r;
        if (r == 0)
                return PAD_ERROR_ACCESS_DENIED;
        *ret_procfd = TAKE_FD(procfd);
        return 0;
}

/* The process's effective uid must be uid. */
static int process_check_uid(ThreadRef *ref, pid_t pid, uid_t uid) {
        PidfdInfo info;
        int r = force_proc_fallback || ref->pidfd < 0 ? -EOPNOTSUPP :
                pidfd_get_info(ref->pidfd, PIDFD_INFO_CREDS, &info);
        if (r == 0)
                return info.euid == uid ? 0 : PAD_ERROR_ACCESS_DENIED;
        if (r == -ESRCH)
                return PAD_ERROR_ACCESS_DENIED;
        if (r != -EOPNOTSUPP)
                return r;

        /* Fallback: Uid: line of /proc/<pid>/status, read through the verified directory. */
        if (ref->procfd < 0) {
                r = proc_open_verified(pid, ref->pidfd, &ref->procfd);
                if (r != 0)
                        return r;
        }
        char status[4096];
        uint64_t euid;
        r = read_small_at(ref->procfd, "status", status, sizeof(status));
        if (r == -ESRCH || r == -ENOENT)
                return PAD_ERROR_ACCESS_DENIED;
        if (r < 0)
                return r;
        r = status_field(status, "Uid", 1, &euid);
        if (r < 0)
                return r;
        return euid == uid ? 0 : PAD_ERROR_ACCESS_DENIED;
}

/* Linux 6.9+: a thread pidfd. 0 with ref->tidfd set, 0 with tidfd -1 (kernel too old),
 * or PAD_ERROR_INVALID_ARGS (no such thread). */
static int thread_open_pidfd(ThreadRef *ref, pid_t tid) {
        if (force_proc_fallback)
                return 0;
        int fd = sys_pidfd_open(tid, PIDFD_THREAD);
        if (fd == -EINVAL || fd == -ENOSYS)
                return 0;
        if (fd == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        if (fd < 0)
                return fd;
        ref->tidfd = fd;
        return 0;
}

/* Is tid anyone's thread at all? Only chooses between the two refusals. */
static int thread_foreign_or_missing(pid_t tid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d", (int) tid);
        return access(path, F_OK) == 0 ? PAD_ERROR_ACCESS_DENIED : PAD_ERROR_INVALID_ARGS;
}

/* Fallback membership proof: task/<tid> below the verified /proc/<pid> only exists for
 * threads of that process; its Tgid must be pid; remember its start time. */
static int thread_check_proc(ThreadRef *ref, pid_t pid, pid_t tid) {
        int r;
        if (ref->procfd < 0) {
                r = proc_open_verified(pid, ref->pidfd, &ref->procfd);
                if (r != 0)
                        return r;
        }
        char path[64], status[4096];
        snprintf(path, sizeof(path), "task/%d", (int) tid);
        ref->taskfd = openat(ref->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ref->taskfd < 0)
                return errno == ENOENT || errno == ESRCH ? thread_foreign_or_missing(tid) : -errno;

        uint64_t tgid;
        r = read_small_at(ref->taskfd, "status", status, sizeof(status));
        if (r == -ESRCH || r == -ENOENT)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;
        r = status_field(status, "Tgid", 0, &tgid);
        if (r < 0)
                return r;
        if (tgid != (uint64_t) pid)
                return PAD_ERROR_ACCESS_DENIED;
        r = stat_start_time(ref->taskfd, &ref->start_time);
        return r == -ESRCH ? PAD_ERROR_INVALID_ARGS : r;
}

/* The process is the one that was pid when its client first called (start_time, 0: not
 * known), and it is still there: through /proc/<pid>, which stays bound to that process. */
static int process_check_start(ThreadRef *ref, pid_t pid, uint64_t start_time) {
        int r;

        if (start_time == 0 && ref->pidfd >= 0)
                return 0;
        if (ref->procfd < 0) {
                r = proc_open_verified(pid, ref->pidfd, &ref->procfd);
                if (r != 0)
                        return r;
        }
        r = stat_start_time(ref->procfd, &ref->process_start);
        if (r == -ESRCH || r == -ENOENT)
                return PAD_ERROR_ACCESS_DENIED;
        if (r < 0)
                return r;
        return start_time == 0 || ref->process_start == start_time ? 0 : PAD_ERROR_ACCESS_DENIED;
}

/* tid is a thread of pid (started at start_time), which runs as uid. 0, PAD_ERROR_*, or
 * -errno. */
static int thread_verify(pid_t pid, uid_t uid, uint64_t start_time, pid_t tid, ThreadRef *ref) {
        if (pid <= 0)
                return -EINVAL;
        if (tid <= 0)
                return PAD_ERROR_INVALID_ARGS;

        int fd = sys_pidfd_open(pid, 0);
        if (fd == -ESRCH || fd == -ENOENT)      /* gone, or not a thread-group leader */
                return PAD_ERROR_ACCESS_DENIED;
        if (fd < 0 && fd != -ENOSYS)
                return fd;
        ref->pidfd = fd < 0 ? -1 : fd;

        int r = process_check_start(ref, pid, start_time);
        if (r != 0)
                return r;
        r = process_check_uid(ref, pid, uid);
        if (r != 0)
                return r;

        r = thread_open_pidfd(ref, tid);
        if (r != 0)
                return r;
        if (ref->tidfd >= 0) {
                PidfdInfo info;
                r = pidfd_get_info(ref->tidfd, PIDFD_INFO_PID, &info);
                if (r == -ESRCH)
                        return PAD_ERROR_INVALID_ARGS;
                if (r == 0)
                        return info.tgid == (uint32_t) pid ? 0 : PAD_ERROR_ACCESS_DENIED;
                if (r != -EOPNOTSUPP)
                        return r;
        }
        return thread_check_proc(ref, pid, tid);
}

/* After acting: the verified thread is still alive, so tid still named it. 1, 0, -errno. */
static int thread_still_there(const ThreadRef *ref) {
        if (ref->tidfd >= 0)
                return pidfd_alive(ref->tidfd, PIDFD_SIGNAL_THREAD);

        uint64_t start;
        int r = ref->pidfd >= 0 ? pidfd_alive(ref->pidfd, 0) : 1;
        if (r <= 0)
                return r;
        r = stat_start_time(ref->taskfd, &start);
        if (r == -ESRCH || r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return start == ref->start_time;
}

static void sched_params_from_attr(const SchedAttr *a, SchedParams *ret) {
        *ret = (SchedParams) {
                .policy = (int) a->sched_policy,
                .nice = a->sched_nice,
                .rt_priority = a->sched_priority,
        };
}

int priority_process_start_time(pid_t pid, uint64_t *ret) {
        char path[64];

        snprintf(path, sizeof path, "/proc/%d", (int) pid);
        _cleanup_close_ int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (procfd < 0)
                return -errno;
        return stat_start_time(procfd, ret);
}

int priority_read(pid_t pid, uid_t uid, uint64_t start_time, pid_t tid, SchedParams *ret) {
        _cleanup_(thread_ref_done) ThreadRef ref = THREAD_REF_NULL;
        SchedAttr attr;

        if (!ret)
                return -EINVAL;
        int r = thread_verify(pid, uid, start_time, tid, &ref);
        if (r > 0)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;
        r = sched_attr_get(tid, &attr);
        if (r == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;
        r = thread_still_there(&ref);
        if (r < 0)
                return r;
        if (r == 0)
                return PAD_ERROR_INVALID_ARGS;
        sched_params_from_attr(&attr, ret);
        return 0;
}

/* An order on what the scheduler gives a thread: SCHED_IDLE below everything, then
 * BATCH and OTHER by nice (BATCH just below OTHER at the same nice), then the real-time
 * policies by priority, DEADLINE above all. */
static int sched_rank(int policy, int nice, unsigned rt_priority) {
        switch (policy) {
        case SCHED_IDLE:
                return 0;
        case SCHED_BATCH:
                return 1 + (19 - nice) * 2;
        case SCHED_OTHER:
                return 2 + (19 - nice) * 2;
        case SCHED_FIFO:
        case SCHED_RR:
                return 100 + (int) rt_priority;
        default:
                return 1000;
        }
}

static bool sched_params_valid(const SchedParams *p) {
        switch (p->policy) {
        case SCHED_OTHER:
        case SCHED_BATCH:
        case SCHED_IDLE:
                return p->nice >= -20 && p->nice <= 19 && p->rt_priority == 0;
        case SCHED_FIFO:
        case SCHED_RR:
                return p->rt_priority >= 1 && p->rt_priority <= 99;
        default:
                return false;
        }
}

int priority_raise(pid_t pid, uid_t uid, uint64_t start_time, pid_t tid, const SchedParams *target) {
        _cleanup_(thread_ref_done) ThreadRef ref = THREAD_REF_NULL;
        SchedAttr old;

        if (!target || !sched_params_valid(target))
                return -EINVAL;
        int r = thread_verify(pid, uid, start_time, tid, &ref);
        if (r != 0)
                return r;
        r = sched_attr_get(tid, &old);
        if (r == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;
        if (sched_rank((int) old.sched_policy, old.sched_nice, old.sched_priority) >=
            sched_rank(target->policy, target->nice, target->rt_priority))
                return 0;       /* already there or above: never lower, never above target */

        if (target->policy == SCHED_FIFO || target->policy == SCHED_RR) {
                if (ref.procfd < 0) {
                        r = proc_open_verified(pid, ref.pidfd, &ref.procfd);
                        if (r != 0)
                                return r;
                }
                r = process_may_rt(ref.procfd, uid, target->rt_priority);
                if (r < 0)
                        return r;
                if (r == 0)
                        return PAD_ERROR_ACCESS_DENIED;
        }

        SchedAttr attr = {
                .size = sizeof(attr),
                .sched_policy = (uint32_t) target->policy,
                .sched_flags = SCHED_FLAG_RESET_ON_FORK,
                .sched_nice = target->policy == SCHED_FIFO || target->policy == SCHED_RR ? 0 : target->nice,
                .sched_priority = target->rt_priority,
        };
        /* Still the proven thread right before the raise: tid can then name another task
         * only if the thread exits and the kernel hands its number out again, after every
         * other free pid, within the next microseconds. (A check after the raise would say
         * nothing more: a thread gone then may just have finished, raised.) */
        r = thread_still_there(&ref);
        if (r <= 0)
                return r < 0 ? r : PAD_ERROR_INVALID_ARGS;
        r = sched_attr_set(tid, &attr);
        if (r == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        return r;
}
