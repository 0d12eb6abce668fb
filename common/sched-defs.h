/* sched-defs.h: the kernel's scheduling definitions that glibc lacks (struct sched_attr and
 * the sched_getattr/sched_setattr system calls), and the helper policies: how lent helper
 * threads run until they are raised. Shared by paddd (config, RaisePriority) and
 * libpadclient (helpers lowering themselves), so both mean the same by "idle". */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* struct sched_attr, SCHED_ATTR_SIZE_VER1 (56 bytes); our own name so that it never
 * clashes with a libc that starts defining it. */
typedef struct SchedAttr {
        uint32_t size;
        uint32_t sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime;
        uint64_t sched_deadline;
        uint64_t sched_period;
        uint32_t sched_util_min;
        uint32_t sched_util_max;
} SchedAttr;
_Static_assert(sizeof(SchedAttr) == 56, "sched_attr VER1 is 56 bytes");

/* 0 or -errno; tid 0 is the calling thread. */
int sched_attr_get(pid_t tid, SchedAttr *ret);
int sched_attr_set(pid_t tid, const SchedAttr *attr);

typedef enum HelperPolicy {
        HELPER_POLICY_IDLE,     /* SCHED_IDLE */
        HELPER_POLICY_BATCH,    /* SCHED_BATCH, nice 19 */
        HELPER_POLICY_NICE,     /* SCHED_OTHER, nice 19 */
        HELPER_POLICY_NONE,     /* the caller's priority from the start */
        _HELPER_POLICY_MAX,
} HelperPolicy;

/* "idle", "batch", "nice", "none"; NULL when out of range. */
const char *helper_policy_to_string(HelperPolicy p);
/* A HelperPolicy, or -EINVAL. */
int helper_policy_from_string(const char *s);
/* The attributes a helper takes for p: 1 and *ret filled, 0 for HELPER_POLICY_NONE (leave
 * the thread as it is), -EINVAL when out of range. */
int helper_policy_to_attr(HelperPolicy p, SchedAttr *ret);
