/* caps.c: paddd's capability drop at start-up. When paddd is run with more privilege than
 * it needs (for example as root by hand), caps_drop_to_sys_nice() keeps only CAP_SYS_NICE,
 * which priority.c needs to raise client helper threads: every other capability leaves the
 * bounding set (while CAP_SETPCAP still allows it), the ambient set is cleared, and the
 * effective and permitted sets are reduced to CAP_SYS_NICE (if it was permitted at all).
 * It never logs; the caller logs what was kept. */
#include <errno.h>
#include <stdbool.h>
#include <sys/capability.h>

#include "priority.h"
#include "util.h"

static void cap_freep(cap_t *c) {
        if (*c)
                cap_free(*c);
}
#define _cleanup_cap_ _cleanup_(cap_freep)

static bool cap_is_set(cap_t c, cap_value_t v, cap_flag_t flag) {
        cap_flag_value_t f = CAP_CLEAR;

        return cap_get_flag(c, v, flag, &f) == 0 && f == CAP_SET;
}

/* Number of capabilities the kernel knows. */
static cap_value_t caps_count(void) {
        cap_value_t n = cap_max_bits();

        return n > 0 ? n : CAP_LAST_CAP + 1;
}

/* Does the process hold anything but CAP_SYS_NICE that this function could take away?
 * The bounding set only counts when CAP_SETPCAP is permitted: without it the bounding set
 * cannot be changed (an unprivileged process always has a full one). */
static bool caps_has_extra(cap_t cur, bool can_setpcap) {
        for (cap_value_t v = 0; v < caps_count(); v++) {
                if (v == CAP_SYS_NICE)
                        continue;
                if (cap_is_set(cur, v, CAP_EFFECTIVE) || cap_is_set(cur, v, CAP_PERMITTED) ||
                    cap_is_set(cur, v, CAP_INHERITABLE) || cap_get_ambient(v) > 0)
                        return true;
                if (can_setpcap && cap_get_bound(v) > 0)
                        return true;
        }
        return false;
}

/* Make CAP_SETPCAP effective (it is permitted) so the bounding set can be changed. */
static int caps_raise_setpcap(cap_t cur) {
        cap_value_t v = CAP_SETPCAP;

        if (cap_is_set(cur, v, CAP_EFFECTIVE))
                return 0;
        if (cap_set_flag(cur, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 || cap_set_proc(cur) < 0)
                return -errno;
        return 0;
}

static int caps_drop_bounding(void) {
        for (cap_value_t v = 0; v < caps_count(); v++) {
                if (v == CAP_SYS_NICE || cap_get_bound(v) <= 0)
                        continue;
                if (cap_drop_bound(v) < 0)
                        return -errno;
        }
        return 0;
}

int caps_drop_to_sys_nice(const char **ret_kept) {
        _cleanup_cap_ cap_t cur = NULL, want = NULL;
        cap_value_t nice = CAP_SYS_NICE;
        bool keep_nice, can_setpcap;
        int r;

        cur = cap_get_proc();
        if (!cur)
                return -errno;
        keep_nice = cap_is_set(cur, CAP_SYS_NICE, CAP_PERMITTED);
        can_setpcap = cap_is_set(cur, CAP_SETPCAP, CAP_PERMITTED);

        if (caps_has_extra(cur, can_setpcap)) {
                if (can_setpcap) {
                        r = caps_raise_setpcap(cur);
                        if (r < 0)
                                return r;
                        r = caps_drop_bounding();
                        if (r < 0)
                                return r;
                }
                /* EINVAL: a kernel without ambient capabilities, nothing to clear. */
                if (cap_reset_ambient() < 0 && errno != EINVAL)
                        return -errno;

                want = cap_init();
                if (!want)
                        return -errno;
                if (keep_nice &&
                    (cap_set_flag(want, CAP_EFFECTIVE, 1, &nice, CAP_SET) < 0 ||
                     cap_set_flag(want, CAP_PERMITTED, 1, &nice, CAP_SET) < 0))
                        return -errno;
                if (cap_set_proc(want) < 0)
                        return -errno;
        }

        if (ret_kept)
                *ret_kept = keep_nice ? "cap_sys_nice" : "none";
        return 0;
}
