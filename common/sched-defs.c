/* sched-defs.c: the sched_attr system calls and the helper policies (sched-defs.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sched-defs.h"
#include "util.h"

int sched_attr_get(pid_t tid, SchedAttr *ret) {
        *ret = (SchedAttr) {};
        return syscall(SYS_sched_getattr, tid, ret, (unsigned) sizeof(*ret), 0U) < 0 ? -errno : 0;
}

int sched_attr_set(pid_t tid, const SchedAttr *attr) {
        return syscall(SYS_sched_setattr, tid, attr, 0U) < 0 ? -errno : 0;
}

static const char *const policy_names[_HELPER_POLICY_MAX] = {
        [HELPER_POLICY_IDLE] = "idle",
        [HELPER_POLICY_BATCH] = "batch",
        [HELPER_POLICY_NICE] = "nice",
        [HELPER_POLICY_NONE] = "none",
};

const char *helper_policy_to_string(HelperPolicy p) {
        return p >= 0 && p < _HELPER_POLICY_MAX ? policy_names[p] : NULL;
}

int helper_policy_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < _HELPER_POLICY_MAX; i++)
                if (streq(s, policy_names[i]))
                        return i;
        return -EINVAL;
}

int helper_policy_to_attr(HelperPolicy p, SchedAttr *ret) {
        SchedAttr a = { .size = sizeof a };

        switch (p) {
        case HELPER_POLICY_IDLE:
                a.sched_policy = SCHED_IDLE;
                break;
        case HELPER_POLICY_BATCH:
                a.sched_policy = SCHED_BATCH;
                a.sched_nice = 19;
                break;
        case HELPER_POLICY_NICE:
                a.sched_policy = SCHED_OTHER;
                a.sched_nice = 19;
                break;
        case HELPER_POLICY_NONE:
                return 0;
        default:
                return -EINVAL;
        }
        *ret = a;
        return 1;
}
