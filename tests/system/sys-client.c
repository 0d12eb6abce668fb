/* sys-client.c: the guest side of the system suite that needs one bus connection across
 * several calls, which busctl cannot keep. Run by tests/system/checks.sh as an ordinary
 * user against the system bus paddd serves under its unit. Each command prints one line
 * per step ("ok STEP ..." or "FAIL STEP: why") and exits 1 if any step failed.
 *
 *   policy          Acquire, Get/GetAll, ListLeases, Shrink, Release work; SetQuota and
 *                   Reload get AccessDenied; owning org.padata.Broker is refused.
 *   set-quota N     SetQuota(-1, N) succeeds (run as a member of AdminGroup).
 *   raise           A SCHED_IDLE thread of this process, which cannot leave SCHED_IDLE by
 *                   itself, is raised by RaisePriority to the caller's policy and nice.
 *   hold N          Acquire N helpers and keep the lease; then read commands from stdin:
 *                   "check" (the lease answers its owner: Shrink(0)), "release", EOF ends.
 *   grab N          Acquire N while the others hold theirs; print granted, InUse, MaxHelpers. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bus-open.h"

#define NAME "org.padata.Broker"
#define PATH "/org/padata/Broker"
#define IFACE "org.padata.Broker"
#define LEASE_IFACE "org.padata.Broker.Lease"
#define ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"

static int failures;

__attribute__((format(printf, 2, 3))) static void step(bool ok, const char *fmt, ...) {
        va_list ap;

        printf(ok ? "ok " : "FAIL ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
        if (!ok)
                failures++;
}

static const char *why(const sd_bus_error *e, int r) {
        return e && e->name ? e->name : strerror(-r);
}

/* Acquire(helpers, -1, {caller_tid?}); the lease path (strdup'ed) and the grant. */
static int acquire(sd_bus *bus, unsigned helpers, pid_t caller_tid, char **ret_path, unsigned *ret_granted,
                   sd_bus_error *e) {
        sd_bus_message *reply = NULL;
        const char *path;
        uint32_t granted;
        int r;

        if (caller_tid > 0)
                r = sd_bus_call_method(bus, NAME, PATH, IFACE, "Acquire", e, &reply, "uia{sv}", helpers, -1, 1,
                                       "caller_tid", "u", (uint32_t) caller_tid);
        else
                r = sd_bus_call_method(bus, NAME, PATH, IFACE, "Acquire", e, &reply, "uia{sv}", helpers, -1, 1,
                                       "tag", "s", "system-suite");
        if (r >= 0)
                r = sd_bus_message_read(reply, "ou", &path, &granted);
        if (r >= 0 && !(*ret_path = strdup(path)))
                r = -ENOMEM;
        if (r >= 0)
                *ret_granted = granted;
        sd_bus_message_unref(reply);
        return r;
}

static int get_u(sd_bus *bus, const char *path, const char *iface, const char *prop, unsigned *ret) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        uint32_t v;
        int r = sd_bus_get_property_trivial(bus, NAME, path, iface, prop, &e, 'u', &v);

        sd_bus_error_free(&e);
        if (r >= 0)
                *ret = v;
        return r;
}

static int shrink(sd_bus *bus, const char *lease, unsigned count, unsigned *ret_granted, sd_bus_error *e) {
        sd_bus_message *reply = NULL;
        uint32_t g;
        int r = sd_bus_call_method(bus, NAME, lease, LEASE_IFACE, "Shrink", e, &reply, "u", count);

        if (r >= 0)
                r = sd_bus_message_read(reply, "u", &g);
        if (r >= 0)
                *ret_granted = g;
        sd_bus_message_unref(reply);
        return r;
}

/* The call must fail with AccessDenied. */
static void expect_denied(sd_bus *bus, const char *what, const char *member, const char *types, ...) {
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, NAME, PATH, IFACE, member);
        if (r >= 0) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, &reply);
        step(r < 0 && sd_bus_error_has_name(&e, ACCESS_DENIED), "%s is denied to an ordinary user: %s", what,
             r >= 0 ? "it succeeded" : why(&e, r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
}

static bool list_has(sd_bus *bus, const char *lease, uid_t uid, const char *unique) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path, *owner, *tag;
        uint32_t luid, pid, granted;
        bool found = false;
        int r;

        r = sd_bus_call_method(bus, NAME, PATH, IFACE, "ListLeases", &e, &reply, "");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ouuuss)");
        while (r > 0 && (r = sd_bus_message_read(reply, "(ouuuss)", &path, &luid, &pid, &granted, &owner, &tag)) > 0)
                if (strcmp(path, lease) == 0 && luid == uid && strcmp(owner, unique) == 0 &&
                    strcmp(tag, "system-suite") == 0)
                        found = true;
        step(r >= 0 && found, "ListLeases shows %s with uid %u and owner %s: %s", lease, (unsigned) uid, unique,
             r < 0 ? why(&e, r) : found ? "yes" : "not listed");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        return found;
}

static int cmd_policy(sd_bus *bus) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *unique = NULL;
        char *lease = NULL;
        unsigned granted = 0, g = 0, in_use = 0;
        int r;

        (void) sd_bus_get_unique_name(bus, &unique);
        r = acquire(bus, 2, 0, &lease, &granted, &e);
        step(r >= 0 && granted == 2, "Acquire(2) by an ordinary user: %s, granted %u", r < 0 ? why(&e, r) : "answered",
             granted);
        sd_bus_error_free(&e);
        if (r < 0)
                return 1;

        r = get_u(bus, PATH, IFACE, "InUse", &in_use);
        step(r >= 0 && in_use >= granted, "Get InUse: %s, %u", r < 0 ? strerror(-r) : "answered", in_use);
        r = get_u(bus, lease, LEASE_IFACE, "Granted", &g);
        step(r >= 0 && g == granted, "Get Lease.Granted: %s, %u", r < 0 ? strerror(-r) : "answered", g);
        r = sd_bus_call_method(bus, NAME, PATH, "org.freedesktop.DBus.Properties", "GetAll", &e, &reply, "s", IFACE);
        step(r >= 0, "GetAll %s: %s", IFACE, r < 0 ? why(&e, r) : "answered");
        sd_bus_error_free(&e);
        reply = sd_bus_message_unref(reply);
        (void) list_has(bus, lease, getuid(), unique ? unique : "?");

        r = shrink(bus, lease, 1, &g, &e);
        step(r >= 0 && g == granted - 1, "Shrink(1): %s, %u left", r < 0 ? why(&e, r) : "answered", g);
        sd_bus_error_free(&e);

        expect_denied(bus, "SetQuota", "SetQuota", "iu", -1, 1);
        expect_denied(bus, "Reload", "Reload", "");

        r = sd_bus_request_name(bus, NAME, 0);
        step(r < 0, "owning %s is refused: %s", NAME, r < 0 ? strerror(-r) : "the bus gave it");

        r = sd_bus_call_method(bus, NAME, lease, LEASE_IFACE, "Release", &e, NULL, "");
        step(r >= 0, "Release: %s", r < 0 ? why(&e, r) : "answered");
        sd_bus_error_free(&e);
        r = get_u(bus, lease, LEASE_IFACE, "Granted", &g);
        step(r < 0, "the released lease is gone: %s", r < 0 ? strerror(-r) : "it still answers");
        free(lease);
        return failures ? 1 : 0;
}

static int cmd_set_quota(sd_bus *bus, unsigned n) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        unsigned max = 0;
        int r;

        r = sd_bus_call_method(bus, NAME, PATH, IFACE, "SetQuota", &e, NULL, "iu", -1, n);
        step(r >= 0, "SetQuota(-1, %u) by a member of AdminGroup: %s", n, r < 0 ? why(&e, r) : "answered");
        sd_bus_error_free(&e);
        r = get_u(bus, PATH, IFACE, "MaxHelpers", &max);
        step(r >= 0 && max == n, "MaxHelpers is now %u (want %u)", max, n);
        return failures ? 1 : 0;
}

/* ---- raise ---------------------------------------------------------------------------- */

typedef struct Parked {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pid_t tid;
        int self_undo;          /* errno of the thread's own attempt to leave SCHED_IDLE */
        bool parked, done;
} Parked;

static void *parked_thread(void *arg) {
        Parked *p = arg;
        struct sched_param sp = {};
        int undo;

        if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0)
                undo = -1;
        else
                undo = sched_setscheduler(0, SCHED_OTHER, &sp) < 0 ? errno : 0;
        pthread_mutex_lock(&p->lock);
        p->tid = gettid();
        p->self_undo = undo;
        p->parked = true;
        pthread_cond_broadcast(&p->cond);
        while (!p->done)
                pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static int cmd_raise(sd_bus *bus) {
        Parked p = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const int caller_nice = 3;
        char *lease = NULL;
        unsigned granted = 0;
        pthread_t t;
        int r, policy, nice_now;

        /* The caller runs at nice 3 (an unprivileged thread may lower itself). */
        r = setpriority(PRIO_PROCESS, (id_t) gettid(), caller_nice);
        step(r == 0, "the caller lowers itself to nice %d: %s", caller_nice, r == 0 ? "done" : strerror(errno));
        r = acquire(bus, 1, gettid(), &lease, &granted, &e);
        step(r >= 0 && granted >= 1, "Acquire(1, caller_tid) for the raise: %s, granted %u",
             r < 0 ? why(&e, r) : "answered", granted);
        sd_bus_error_free(&e);
        if (r < 0 || granted < 1)
                return 1;

        pthread_create(&t, NULL, parked_thread, &p);
        pthread_mutex_lock(&p.lock);
        while (!p.parked)
                pthread_cond_wait(&p.cond, &p.lock);
        pthread_mutex_unlock(&p.lock);
        step(sched_getscheduler(p.tid) == SCHED_IDLE, "helper thread %d runs SCHED_IDLE", (int) p.tid);
        step(p.self_undo == EPERM, "the helper cannot leave SCHED_IDLE by itself: %s",
             p.self_undo == EPERM ? "EPERM" : p.self_undo == 0 ? "it could" : strerror(p.self_undo));

        r = sd_bus_call_method(bus, NAME, lease, LEASE_IFACE, "RaisePriority", &e, NULL, "u", (uint32_t) p.tid);
        step(r >= 0, "RaisePriority(%d) under the hardened unit: %s", (int) p.tid, r < 0 ? why(&e, r) : "answered");
        if (r < 0 && e.message)
                printf("  (%s)\n", e.message);
        sd_bus_error_free(&e);

        /* paddd raises with SCHED_RESET_ON_FORK, so that what the helper forks does not
         * inherit the raised priority. */
        policy = sched_getscheduler(p.tid);
        nice_now = getpriority(PRIO_PROCESS, (id_t) p.tid);
        step(policy >= 0 && (policy & ~SCHED_RESET_ON_FORK) == SCHED_OTHER && nice_now == caller_nice,
             "read back: helper policy %d%s nice %d, want SCHED_OTHER (%d) nice %d", policy & ~SCHED_RESET_ON_FORK,
             policy >= 0 && (policy & SCHED_RESET_ON_FORK) ? " (reset on fork)" : "", nice_now, SCHED_OTHER,
             caller_nice);

        pthread_mutex_lock(&p.lock);
        p.done = true;
        pthread_cond_broadcast(&p.cond);
        pthread_mutex_unlock(&p.lock);
        pthread_join(t, NULL);
        free(lease);
        return failures ? 1 : 0;
}

/* ---- hold and grab --------------------------------------------------------------------- */

static int cmd_hold(sd_bus *bus, unsigned n) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char line[64], *lease = NULL;
        unsigned granted = 0, g = 0;
        int r;

        r = acquire(bus, n, 0, &lease, &granted, &e);
        step(r >= 0 && granted == n, "hold: Acquire(%u): %s, lease %s granted %u", n, r < 0 ? why(&e, r) : "answered",
             lease ? lease : "-", granted);
        sd_bus_error_free(&e);
        if (r < 0)
                return 1;
        while (fgets(line, sizeof line, stdin)) {
                if (strncmp(line, "check", 5) == 0) {
                        r = shrink(bus, lease, 0, &g, &e);
                        step(r >= 0 && g == granted, "hold: lease %s answers its owner: %s, granted %u (held %u)",
                             lease, r < 0 ? why(&e, r) : "answered", g, granted);
                        sd_bus_error_free(&e);
                } else if (strncmp(line, "release", 7) == 0) {
                        r = sd_bus_call_method(bus, NAME, lease, LEASE_IFACE, "Release", &e, NULL, "");
                        step(r >= 0, "hold: Release %s: %s", lease, r < 0 ? why(&e, r) : "answered");
                        sd_bus_error_free(&e);
                        break;
                }
        }
        free(lease);
        return failures ? 1 : 0;
}

static int cmd_grab(sd_bus *bus, unsigned n) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        unsigned granted = 0, in_use = 0, max = 0;
        char *lease = NULL;
        int r;

        r = acquire(bus, n, 0, &lease, &granted, &e);
        if (r < 0 && !sd_bus_error_has_name(&e, "org.padata.Broker.Error.Busy")) {
                step(false, "grab: Acquire(%u): %s", n, why(&e, r));
                sd_bus_error_free(&e);
                return 1;
        }
        sd_bus_error_free(&e);
        if (get_u(bus, PATH, IFACE, "InUse", &in_use) < 0 || get_u(bus, PATH, IFACE, "MaxHelpers", &max) < 0) {
                step(false, "grab: cannot read InUse and MaxHelpers");
                return 1;
        }
        /* Parsed by checks.sh. */
        printf("grab granted=%u inuse=%u max=%u\n", r < 0 ? 0 : granted, in_use, max);
        free(lease);
        return 0;
}

int main(int argc, char *argv[]) {
        sd_bus *bus = NULL;
        const char *cmd = argc > 1 ? argv[1] : "";
        unsigned n = argc > 2 ? (unsigned) strtoul(argv[2], NULL, 10) : 0;
        int r;

        r = bus_open_spec("system", "sys-client", &bus);
        if (r < 0) {
                fprintf(stderr, "FAIL sys-client: cannot connect to the system bus: %s\n", strerror(-r));
                return 1;
        }
        if (strcmp(cmd, "policy") == 0)
                r = cmd_policy(bus);
        else if (strcmp(cmd, "set-quota") == 0 && argc == 3)
                r = cmd_set_quota(bus, n);
        else if (strcmp(cmd, "raise") == 0)
                r = cmd_raise(bus);
        else if (strcmp(cmd, "hold") == 0 && argc == 3)
                r = cmd_hold(bus, n);
        else if (strcmp(cmd, "grab") == 0 && argc == 3)
                r = cmd_grab(bus, n);
        else {
                fprintf(stderr, "usage: sys-client policy|set-quota N|raise|hold N|grab N\n");
                r = 2;
        }
        sd_bus_flush_close_unref(bus);
        return r;
}
