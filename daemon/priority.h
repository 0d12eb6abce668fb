/* priority.h: reading a client thread's scheduling and raising a helper thread to it,
 * after proving with pidfds that the thread belongs to the client's process. This is
 * what paddd keeps CAP_SYS_NICE for. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct SchedParams {
        int policy;             /* SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR */
        int nice;               /* for OTHER/BATCH */
        unsigned rt_priority;   /* for FIFO/RR */
} SchedParams;

/* Field 22 of /proc/<pid>/stat: with the pid, it names one process for the life of the
 * machine, where the pid alone may be reused. */
int priority_process_start_time(pid_t pid, uint64_t *ret);

/* Verify tid is a thread of process pid (owned by uid, and started at start_time unless
 * that is 0) and read its scheduling. 0, PAD_ERROR_INVALID_ARGS (not a thread of pid; pid
 * gone, another process now, or not uid's), or -errno. */
int priority_read(pid_t pid, uid_t uid, uint64_t start_time, pid_t tid, SchedParams *ret);

/* Verify tid is a thread of pid (owned by uid, started at start_time unless 0) and set it
 * to target with SCHED_FLAG_RESET_ON_FORK, never above target, and to a real-time target only
 * when the process could take it itself (root, CAP_SYS_NICE, or within its soft
 * RLIMIT_RTPRIO; else PAD_ERROR_ACCESS_DENIED). 0, PAD_ERROR_INVALID_ARGS,
 * PAD_ERROR_ACCESS_DENIED, or -errno; on any failure nothing was written. The thread is
 * proven again right before the raise, which is then one sched_setattr(tid): only a thread
 * that exits in the microseconds between the two, its tid handed out again by the kernel
 * (after every other free pid) within them, would let another task get target, at most the
 * client's own scheduling. */
int priority_raise(pid_t pid, uid_t uid, uint64_t start_time, pid_t tid, const SchedParams *target);

/* For tests: verify through /proc/<pid>/task/<tid> (the path for kernels before 6.9,
 * without PIDFD_THREAD and PIDFD_GET_INFO) even where the kernel has the pidfd calls. */
void priority_set_proc_fallback(bool on);
/* For tests: behave as on a kernel without pidfd_open (before 5.3, or under valgrind). */
void priority_set_no_pidfd(bool on);

/* Keep only CAP_SYS_NICE in the effective, permitted and bounding sets (and ambient
 * cleared). *ret_kept: "cap_sys_nice" or "none", static. */
int caps_drop_to_sys_nice(const char **ret_kept);
