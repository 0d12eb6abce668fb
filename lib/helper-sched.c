/* helper-sched.c: the scheduling of lent helper threads: a helper lowering itself to the
 * broker's HelperPolicy (common/sched-defs.h says what each policy means), and the check
 * the caller makes before raising a helper again. The raise itself is the broker's
 * (RaisePriority); no state here. */
#include "internal.h"

#include "helper-sched.h"

int helper_sched_apply(HelperPolicy p) {
        SchedAttr a;
        int r;

        r = helper_policy_to_attr(p, &a);
        if (r <= 0)
                return r;
        return sched_attr_set(0, &a);
}

bool helper_sched_below(pid_t tid, const SchedAttr *caller) {
        SchedAttr a;

        if (sched_attr_get(tid, &a) < 0)
                return false;
        return a.sched_policy != caller->sched_policy || a.sched_nice > caller->sched_nice;
}
