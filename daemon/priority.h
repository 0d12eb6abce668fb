/* priority.h: reading a client thread's scheduling and raising a helper thread to it,
 * after proving with pidfds that the thread belongs to the client's process. This is
 * what paddd keeps CAP_SYS_NICE for. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct SchedParams {
        int policy;             /* SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR */
        int nice;               /* for OTHER/BATCH */
        unsigned rt_priority;   /* for FIFO/RR */
} SchedParams;

/* Verify tid is a thread of process pid (owned by uid) and read its scheduling.
 * 0, PAD_ERROR_INVALID_ARGS (not a thread of pid), or -errno. */
int priority_read(pid_t pid, uid_t uid, pid_t tid, SchedParams *ret);

/* Verify tid is a thread of pid (owned by uid) and set it to target with
 * SCHED_FLAG_RESET_ON_FORK, never above target. 0, PAD_ERROR_INVALID_ARGS,
 * PAD_ERROR_ACCESS_DENIED, or -errno. A failure found before the raise leaves tid
 * untouched. When the thread is found gone right after the raise (tid may name another task
 * by then), the task tid names is set back to the attributes read from it just before the
 * raise, best effort, and PAD_ERROR_INVALID_ARGS returned. */
int priority_raise(pid_t pid, uid_t uid, pid_t tid, const SchedParams *target);

/* For tests: verify through /proc/<pid>/task/<tid> (the path for kernels before 6.9,
 * without PIDFD_THREAD and PIDFD_GET_INFO) even where the kernel has the pidfd calls. */
void priority_set_proc_fallback(bool on);

/* Keep only CAP_SYS_NICE in the effective, permitted and bounding sets (and ambient
 * cleared). *ret_kept: "cap_sys_nice" or "none", static. */
int caps_drop_to_sys_nice(const char **ret_kept);
