/* helper-sched.h: how a helper thread lowers itself to the broker's HelperPolicy and how
 * the caller tells whether a helper still runs below it (lib/helper-sched.c). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "sched-defs.h"

/* Set the CALLING thread to policy p (sched_setattr). 0 or -errno. */
int helper_sched_apply(HelperPolicy p);
/* Whether thread tid runs below `caller` (another policy, or a higher nice); false when
 * its attributes cannot be read. */
bool helper_sched_below(pid_t tid, const SchedAttr *caller);
