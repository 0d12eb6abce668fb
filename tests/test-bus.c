/* test-bus.c: the broker's D-Bus contract tested end to end. Every test starts a
 * real dbus-daemon on a private socket and a real paddd on it through tests/fixture.c, then
 * talks sd-bus (and busctl, as admins would) to org.padata.Broker: acquire and release,
 * caps under 32 concurrent client processes, FIFO waiters and timeouts, slots returned by
 * a SIGKILLed client, AccessDenied for a setuid-nobody client, every malformed argument's
 * error name, SetQuota, ttl, reloads good and bad (Reload() and SIGHUP), PropertiesChanged,
 * introspection against dbus/org.padata.Broker.xml, and sd_notify READY=1/STATUS=.
 * Fixture folders live under one folder main() makes and removes; a failed test (Check
 * _exits the test process at once) leaves its paddd log there, and main() prints it. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "check-run.h"
#include "fixture.h"
#include "util.h"



#define NOBODY 65534
#define POLL_MS 10000   /* deadline for state that must settle (not a speed assertion) */

/* Node caps would otherwise be 80% of this machine's CPUs per node. */
#define CONF_CAP(n) "[Broker]\nMaxHelpers=" #n "\nMaxHelpersPerNode=4096\n"

static Fixture fx;

static void teardown(void) {
        fixture_stop(&fx);
}

static void start(const char *config) {
        int r = fixture_start(&fx, config);

        ck_assert_msg(r >= 0, "fixture_start: %s", strerror(-r));
}

/* ---- bus helpers: return r like sd-bus, never assert (children use them too) ---------- */

static sd_bus *bus_open(void) {
        sd_bus *b = NULL;
        int r = bus_open_spec(fx.address, NULL, &b);

        ck_assert_msg(r >= 0, "connecting to %s: %s", fx.address, strerror(-r));
        return b;
}

/* One Acquire option: type 'u', 't', 'b', 's' or 'i' (the last for wrong-type tests). */
typedef struct Opt {
        const char *key;
        char type;
        uint64_t num;
        const char *str;
} Opt;

#define OPT_U(k, v) { .key = (k), .type = 'u', .num = (v) }
#define OPT_T(k, v) { .key = (k), .type = 't', .num = (v) }
#define OPT_B(k, v) { .key = (k), .type = 'b', .num = (v) }
#define OPT_I(k, v) { .key = (k), .type = 'i', .num = (uint64_t) (v) }
#define OPT_S(k, v) { .key = (k), .type = 's', .str = (v) }
#define OPT_END { .key = NULL }

static int append_opt(sd_bus_message *m, const Opt *o) {
        char sig[2] = { o->type, 0 };

        switch (o->type) {
        case 'u':
                return sd_bus_message_append(m, "{sv}", o->key, sig, (uint32_t) o->num);
        case 't':
                return sd_bus_message_append(m, "{sv}", o->key, sig, (uint64_t) o->num);
        case 'b':
                return sd_bus_message_append(m, "{sv}", o->key, sig, (int) !!o->num);
        case 'i':
                return sd_bus_message_append(m, "{sv}", o->key, sig, (int32_t) o->num);
        case 's':
                return sd_bus_message_append(m, "{sv}", o->key, sig, o->str);
        default:
                return -EINVAL;
        }
}

static int acquire_message(sd_bus *b, uint32_t helpers, int32_t node, const Opt *opts,
                           sd_bus_message **ret) {
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(b, &m, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "ui", helpers, node);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (const Opt *o = opts; r >= 0 && o && o->key; o++)
                r = append_opt(m, o);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                sd_bus_message_unref(m);
                return r;
        }
        *ret = m;
        return 0;
}

/* ret_path (may be NULL) gets a malloc'ed lease path. */
static int acquire(sd_bus *b, uint32_t helpers, int32_t node, const Opt *opts,
                   sd_bus_error *err, char **ret_path, uint32_t *ret_granted) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        uint32_t granted;
        int r;

        r = acquire_message(b, helpers, node, opts, &m);
        if (r < 0)
                return r;
        r = sd_bus_call(b, m, 0, err, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ou", &path, &granted);
        if (r < 0)
                return r;
        if (ret_path) {
                *ret_path = strdup(path);
                if (!*ret_path)
                        return -ENOMEM;
        }
        if (ret_granted)
                *ret_granted = granted;
        return 0;
}

static int lease_release(sd_bus *b, const char *path, sd_bus_error *err) {
        return sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Release", err, NULL, "");
}

static int lease_shrink(sd_bus *b, const char *path, uint32_t count, sd_bus_error *err,
                        uint32_t *ret_granted) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Shrink", err, &reply, "u", count);
        if (r < 0)
                return r;
        return ret_granted ? sd_bus_message_read(reply, "u", ret_granted) : 0;
}

static int set_quota(sd_bus *b, int32_t node, uint32_t max, sd_bus_error *err) {
        return sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", err, NULL,
                                  "iu", node, max);
}

static int reload(sd_bus *b, sd_bus_error *err) {
        return sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Reload", err, NULL, "");
}

static int ping(sd_bus *b) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                   &err, NULL, "");
        sd_bus_error_free(&err);
        return r;
}

static int get_u(sd_bus *b, const char *path, const char *iface, const char *name, uint32_t *ret) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(b, BROKER_BUS_NAME, path, iface, name, &err, 'u', ret);
        sd_bus_error_free(&err);
        return r;
}

static uint32_t broker_u(sd_bus *b, const char *name) {
        uint32_t v = 0;
        int r = get_u(b, BROKER_PATH, BROKER_INTERFACE, name, &v);

        ck_assert_msg(r >= 0, "reading property %s: %s", name, strerror(-r));
        return v;
}

static uint32_t lease_u(sd_bus *b, const char *path, const char *name) {
        uint32_t v = 0;
        int r = get_u(b, path, LEASE_INTERFACE, name, &v);

        ck_assert_msg(r >= 0, "reading %s of %s: %s", name, path, strerror(-r));
        return v;
}

/* Poll a broker property until it equals want; the last value read is returned. */
static uint32_t wait_broker_u(sd_bus *b, const char *name, uint32_t want) {
        long long deadline = fixture_now_ms() + POLL_MS;
        uint32_t v;

        for (;;) {
                v = broker_u(b, name);
                if (v == want || fixture_now_ms() > deadline)
                        return v;
                fixture_sleep_ms(10);
        }
}

typedef struct LeaseInfo {
        char path[128];
        uint32_t uid, pid, granted;
        char owner[64];
        char tag[80];
} LeaseInfo;

static int list_leases(sd_bus *b, LeaseInfo *out, size_t max, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *path, *owner, *tag;
        uint32_t uid, pid, granted;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &err, &reply, "");
        sd_bus_error_free(&err);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ouuuss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ouuuss)", &path, &uid, &pid, &granted, &owner, &tag)) > 0) {
                if (n < max) {
                        LeaseInfo *l = &out[n];
                        snprintf(l->path, sizeof l->path, "%s", path);
                        snprintf(l->owner, sizeof l->owner, "%s", owner);
                        snprintf(l->tag, sizeof l->tag, "%s", tag);
                        l->uid = uid;
                        l->pid = pid;
                        l->granted = granted;
                }
                n++;
        }
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}

static uint32_t leases_sum(const LeaseInfo *l, size_t n) {
        uint32_t sum = 0;

        for (size_t i = 0; i < n; i++)
                sum += l[i].granted;
        return sum;
}

static const LeaseInfo *leases_find(const LeaseInfo *l, size_t n, const char *path) {
        for (size_t i = 0; i < n; i++)
                if (streq(l[i].path, path))
                        return &l[i];
        return NULL;
}

typedef struct NodeInfo {
        int32_t node;
        uint32_t cpus, max, in_use;
} NodeInfo;

static size_t get_nodes(sd_bus *b, NodeInfo *out, size_t max) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        size_t n = 0;
        NodeInfo ni;
        int r;

        r = sd_bus_get_property(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Nodes", &err, &reply, "a(iuuu)");
        ck_assert_msg(r >= 0, "reading Nodes: %s", err.message ?: strerror(-r));
        ck_assert_int_ge(sd_bus_message_enter_container(reply, 'a', "(iuuu)"), 0);
        while ((r = sd_bus_message_read(reply, "(iuuu)", &ni.node, &ni.cpus, &ni.max, &ni.in_use)) > 0)
                if (n < max)
                        out[n++] = ni;
        ck_assert_int_ge(r, 0);
        ck_assert_uint_gt(n, 0);
        return n;
}

#define assert_error(r, err, want)                                                       \
        ck_assert_msg((r) < 0 && sd_bus_error_has_name((err), (want)),                  \
                      "expected %s, got r=%d %s: %s", (want), (int) (r),               \
                      (err)->name ?: "(no error)", (err)->message ?: "")

#define assert_ok(r, err)                                                                \
        ck_assert_msg((r) >= 0, "call failed: r=%d %s: %s", (int) (r),                 \
                      (err)->name ?: "(no error)", (err)->message ?: strerror(-(r)))

/* The daemon is running and answering. */
static void assert_alive(sd_bus *b) {
        ck_assert_msg(fixture_paddd_alive(&fx), "paddd exited (status 0x%x)", fx.paddd_exit_status);
        ck_assert_msg(ping(b) >= 0, "paddd does not answer Ping");
}

/* An asynchronous Acquire whose reply is collected later. */
typedef struct Waiter {
        sd_bus *bus;
        bool done;
        char error[128];
        char path[128];
        uint32_t granted;
} Waiter;

static int waiter_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;

        w->done = true;
        if (e) {
                snprintf(w->error, sizeof w->error, "%s", e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "ou", &path, &w->granted) < 0)
                snprintf(w->error, sizeof w->error, "bad reply");
        else
                snprintf(w->path, sizeof w->path, "%s", path);
        return 0;
}

static void waiter_send(Waiter *w, uint32_t helpers, const Opt *opts) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        memset(w, 0, sizeof *w);
        w->bus = bus_open();
        ck_assert_int_ge(acquire_message(w->bus, helpers, -1, opts, &m), 0);
        ck_assert_int_ge(sd_bus_call_async(w->bus, NULL, m, waiter_reply, w, 60 * 1000000ULL), 0);
        ck_assert_int_ge(sd_bus_flush(w->bus), 0);
}

/* Dispatch whatever is queued on the waiter's connection without blocking. */
static void waiter_poll(Waiter *w) {
        while (sd_bus_process(w->bus, NULL) > 0)
                ;
}

static bool waiter_wait(Waiter *w, int timeout_ms) {
        long long deadline = fixture_now_ms() + timeout_ms;

        while (!w->done && fixture_now_ms() < deadline) {
                waiter_poll(w);
                if (!w->done)
                        sd_bus_wait(w->bus, 50 * 1000);
        }
        return w->done;
}

static void waiter_done(Waiter *w) {
        w->bus = sd_bus_flush_close_unref(w->bus);
}

/* ---- children ------------------------------------------------------------------------- */

/* Run fn in a forked child (not a Check process: no assertions there); it returns 0 or
 * fills msg. The parent asserts it exited 0 and shows msg otherwise. */
typedef int (*ChildFn)(void *arg, char *msg, size_t size);

static void run_child(ChildFn fn, void *arg) {
        char msg[512] = "";
        int p[2], status;
        ssize_t n;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char m[512] = "";
                int r;

                close(p[0]);
                r = fn(arg, m, sizeof m);
                if (r != 0 && write(p[1], m, strlen(m)) < 0)
                        _exit(3);
                _exit(r == 0 ? 0 : 1);
        }
        close(p[1]);
        n = read(p[0], msg, sizeof msg - 1);
        msg[n > 0 ? n : 0] = '\0';
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child failed (status 0x%x): %s", status, msg);
}

_printf_(3, 4) static int fail_msg(char *msg, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, size, fmt, ap);
        va_end(ap);
        return 1;
}

static int drop_to_nobody(char *msg, size_t size) {
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                return fail_msg(msg, size, "dropping to nobody: %m");
        if (getuid() != NOBODY || geteuid() != NOBODY)
                return fail_msg(msg, size, "still uid %u", (unsigned) geteuid());
        return 0;
}

/* ---- acquire and release ------------------------------------------------------------ */

START_TEST(test_acquire_release) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p1 = NULL, *p2 = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *unique = NULL, *s;
        LeaseInfo l[8];
        NodeInfo nodes[64];
        uint32_t g1 = 0, g2 = 0, sum = 0;
        size_t n = 0, nn;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        ck_assert_int_ge(sd_bus_get_unique_name(b, &unique), 0);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);
        ck_assert_uint_eq(broker_u(b, "Waiting"), 0);

        r = acquire(b, 3, -1, (Opt[]) { OPT_S("tag", "first"), OPT_END }, &err, &p1, &g1);
        assert_ok(r, &err);
        ck_assert_uint_eq(g1, 3);
        ck_assert_msg(strncmp(p1, BROKER_PATH "/lease/", strlen(BROKER_PATH "/lease/")) == 0,
                      "lease path %s", p1);
        ck_assert_uint_eq(broker_u(b, "InUse"), 3);
        ck_assert_uint_eq(broker_u(b, "Leases"), 1);

        /* The lease object describes its owner. */
        ck_assert_uint_eq(lease_u(b, p1, "Granted"), 3);
        ck_assert_uint_eq(lease_u(b, p1, "Pid"), (uint32_t) getpid());
        ck_assert_uint_eq(lease_u(b, p1, "Uid"), (uint32_t) getuid());
        r = sd_bus_get_property(b, BROKER_BUS_NAME, p1, LEASE_INTERFACE, "Owner", &err, &reply, "s");
        assert_ok(r, &err);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &s), 0);
        ck_assert_str_eq(s, unique);
        reply = sd_bus_message_unref(reply);
        r = sd_bus_get_property(b, BROKER_BUS_NAME, p1, LEASE_INTERFACE, "Tag", &err, &reply, "s");
        assert_ok(r, &err);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &s), 0);
        ck_assert_str_eq(s, "first");
        reply = sd_bus_message_unref(reply);

        /* Placement adds up to the grant, on nodes that exist. */
        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        r = sd_bus_get_property(b, BROKER_BUS_NAME, p1, LEASE_INTERFACE, "Placement", &err, &reply, "a(iu)");
        assert_ok(r, &err);
        ck_assert_int_ge(sd_bus_message_enter_container(reply, 'a', "(iu)"), 0);
        for (;;) {
                int32_t node;
                uint32_t cnt;
                bool known = false;
                r = sd_bus_message_read(reply, "(iu)", &node, &cnt);
                ck_assert_int_ge(r, 0);
                if (r == 0)
                        break;
                for (size_t i = 0; i < nn; i++)
                        known = known || nodes[i].node == node;
                ck_assert_msg(known, "placement on unknown node %d", node);
                sum += cnt;
        }
        ck_assert_uint_eq(sum, 3);
        reply = sd_bus_message_unref(reply);
        sum = 0;
        for (size_t i = 0; i < nn; i++)
                sum += nodes[i].in_use;
        ck_assert_uint_eq(sum, 3);

        /* The second lease gets what is left. */
        r = acquire(b, 3, -1, NULL, &err, &p2, &g2);
        assert_ok(r, &err);
        ck_assert_uint_eq(g2, 1);
        ck_assert_str_ne(p1, p2);
        ck_assert_uint_eq(broker_u(b, "InUse"), 4);

        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_nonnull(leases_find(l, n, p1));
        ck_assert_ptr_nonnull(leases_find(l, n, p2));
        ck_assert_uint_eq(leases_find(l, n, p1)->granted, 3);
        ck_assert_uint_eq(leases_find(l, n, p1)->pid, (uint32_t) getpid());
        ck_assert_uint_eq(leases_find(l, n, p1)->uid, (uint32_t) getuid());
        ck_assert_str_eq(leases_find(l, n, p1)->owner, unique);
        ck_assert_str_eq(leases_find(l, n, p1)->tag, "first");
        ck_assert_uint_eq(leases_find(l, n, p2)->granted, 1);

        r = lease_release(b, p1, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "InUse"), 1);
        ck_assert_uint_eq(broker_u(b, "Leases"), 1);

        /* A released lease's object is gone. */
        r = lease_release(b, p1, &err);
        ck_assert_msg(r < 0, "releasing twice succeeded");
        sd_bus_error_free(&err);
        ck_assert_int_lt(get_u(b, p1, LEASE_INTERFACE, "Granted", &g1), 0);

        r = lease_release(b, p2, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);
        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_eq(n, 0);
        assert_alive(b);
}
END_TEST

/* Shrink gives slots back early and the grant follows. */
START_TEST(test_shrink) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        r = acquire(b, 4, -1, NULL, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 4);
        r = lease_shrink(b, p, 1, &err, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 3);
        ck_assert_uint_eq(lease_u(b, p, "Granted"), 3);
        ck_assert_uint_eq(broker_u(b, "InUse"), 3);
        r = lease_shrink(b, p, 3, &err, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 0);
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
        /* A lease shrunk to 0 is still a lease until released. */
        ck_assert_uint_eq(broker_u(b, "Leases"), 1);
        r = lease_release(b, p, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);
}
END_TEST

/* ---- 32 concurrent clients ------------------------------------------------------------ */

#define N_CLIENTS 32
#define CONCURRENT_CAP 5
#define CHURN_ROUNDS 25

typedef struct ClientArgs {
        int index;
        int result_fd;  /* write end: the first grant */
        int go_fd;      /* read end: EOF means go on */
} ClientArgs;

static int client_main(const ClientArgs *a) {
        sd_bus *b = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        char *path = NULL;
        uint32_t want = 1 + (uint32_t) a->index % 3, g = 0;
        char tag[16], c;
        int r;

        srand((unsigned) getpid());
        snprintf(tag, sizeof tag, "c%d", a->index);
        if (bus_open_spec(fx.address, NULL, &b) < 0)
                return 10;
        /* Phase 1: everyone holds a lease at once. */
        r = acquire(b, want, -1, (Opt[]) { OPT_U("min", 0), OPT_S("tag", tag), OPT_END }, &err, &path, &g);
        if (r < 0) {
                fprintf(stderr, "client %d: first Acquire: %s\n", a->index, err.name);
                return 11;
        }
        if (g > want)
                return 12;
        uint32_t rec[2] = { want, g };
        if (write(a->result_fd, rec, sizeof rec) != sizeof rec)
                return 13;
        close(a->result_fd);
        while (read(a->go_fd, &c, 1) < 0 && errno == EINTR)
                ;
        if (lease_release(b, path, &err) < 0)
                return 14;
        free(path);

        /* Phase 2: churn, some waiting for at least one slot. */
        for (int i = 0; i < CHURN_ROUNDS; i++) {
                uint32_t min = (uint32_t) (i + a->index) % 2;
                want = 1 + (uint32_t) rand() % 3;
                sd_bus_error_free(&err);
                r = acquire(b, want, -1, (Opt[]) { OPT_U("min", min), OPT_T("wait_usec", min ? 5000000 : 0),
                                                   OPT_S("tag", tag), OPT_END },
                            &err, &path, &g);
                if (r < 0) {
                        if (sd_bus_error_has_name(&err, BROKER_ERROR_TIMEOUT))
                                continue;
                        fprintf(stderr, "client %d: Acquire: %s %s\n", a->index, err.name, err.message);
                        return 15;
                }
                if (g > want || g < min) {
                        fprintf(stderr, "client %d: granted %u of want %u min %u\n", a->index, g, want, min);
                        return 16;
                }
                fixture_sleep_ms(rand() % 3);
                if (g > 1 && rand() % 2 && lease_shrink(b, path, 1, &err, NULL) < 0) {
                        fprintf(stderr, "client %d: Shrink: %s\n", a->index, err.name);
                        return 17;
                }
                if (lease_release(b, path, &err) < 0) {
                        fprintf(stderr, "client %d: Release: %s\n", a->index, err.name);
                        return 18;
                }
                free(path);
                path = NULL;
        }
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(b);
        return 0;
}

static void assert_within_caps(sd_bus *b, uint32_t cap, uint32_t *max_seen) {
        LeaseInfo l[N_CLIENTS + 4];
        NodeInfo nodes[64];
        uint32_t in_use = broker_u(b, "InUse"), sum;
        size_t n = 0, nn;

        ck_assert_msg(in_use <= cap, "InUse %u above the cap %u", in_use, cap);
        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_le(n, N_CLIENTS);
        sum = leases_sum(l, MIN(n, ELEMENTSOF(l)));
        ck_assert_msg(sum <= cap, "ListLeases grants sum to %u, above the cap %u", sum, cap);
        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        for (size_t i = 0; i < nn; i++)
                ck_assert_msg(nodes[i].in_use <= nodes[i].max, "node %d: %u in use of %u",
                              nodes[i].node, nodes[i].in_use, nodes[i].max);
        *max_seen = MAX(*max_seen, MAX(in_use, sum));
}

START_TEST(test_concurrent_caps) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        pid_t pids[N_CLIENTS];
        int res[2], go[2], alive = N_CLIENTS;
        uint32_t total = 0, max_seen = 0, want_total = 0;
        LeaseInfo l[N_CLIENTS + 4];
        size_t n = 0;

        start(CONF_CAP(5));
        b = bus_open();
        ck_assert_int_eq(pipe2(res, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        for (int i = 0; i < N_CLIENTS; i++) {
                pids[i] = fork();
                ck_assert_int_ge(pids[i], 0);
                if (pids[i] == 0) {
                        ClientArgs a = { .index = i, .result_fd = res[1], .go_fd = go[0] };
                        close(res[0]);
                        close(go[1]);
                        _exit(client_main(&a));
                }
        }
        close(res[1]);
        close(go[0]);

        /* Phase 1: all 32 hold a lease; grants add up to exactly the cap. */
        for (int i = 0; i < N_CLIENTS; i++) {
                uint32_t rec[2];
                struct pollfd pfd = { .fd = res[0], .events = POLLIN };
                ck_assert_msg(poll(&pfd, 1, 30000) == 1, "client %d never reported its grant", i);
                ck_assert_int_eq(read(res[0], rec, sizeof rec), sizeof rec);
                ck_assert_uint_le(rec[1], rec[0]);
                want_total += rec[0];
                total += rec[1];
        }
        close(res[0]);
        ck_assert_uint_ge(want_total, CONCURRENT_CAP);
        ck_assert_uint_eq(total, CONCURRENT_CAP);
        ck_assert_uint_eq(broker_u(b, "InUse"), CONCURRENT_CAP);
        ck_assert_uint_eq(broker_u(b, "Leases"), N_CLIENTS);
        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_eq(n, N_CLIENTS);
        ck_assert_uint_eq(leases_sum(l, n), CONCURRENT_CAP);

        /* Phase 2: churn; every snapshot stays within the cap. */
        close(go[1]);
        while (alive > 0) {
                assert_within_caps(b, CONCURRENT_CAP, &max_seen);
                for (int i = 0; i < N_CLIENTS; i++) {
                        int status;
                        if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
                                continue;
                        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                                      "client %d failed (status 0x%x)", i, status);
                        pids[i] = -1;
                        alive--;
                }
        }
        ck_assert_uint_le(max_seen, CONCURRENT_CAP);
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 0), 0);
        ck_assert_uint_eq(wait_broker_u(b, "Leases", 0), 0);
        ck_assert_uint_eq(broker_u(b, "Waiting"), 0);
        assert_alive(b);
}
END_TEST

/* ---- waiting ------------------------------------------------------------------------ */

START_TEST(test_wait_fifo) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *a = NULL, *obs = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pa = NULL;
        const Opt wait_one[] = { OPT_U("min", 1), OPT_T("wait_usec", 30000000), OPT_END };
        Waiter w1, w2;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(2));
        a = bus_open();
        obs = bus_open();
        r = acquire(a, 2, -1, NULL, &err, &pa, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 2);

        waiter_send(&w1, 1, wait_one);
        ck_assert_uint_eq(wait_broker_u(obs, "Waiting", 1), 1);
        waiter_send(&w2, 1, wait_one);
        ck_assert_uint_eq(wait_broker_u(obs, "Waiting", 2), 2);

        /* The daemon keeps serving others while they wait. */
        ck_assert_int_ge(ping(obs), 0);
        ck_assert_uint_eq(broker_u(obs, "InUse"), 2);
        waiter_poll(&w1);
        waiter_poll(&w2);
        ck_assert(!w1.done);
        ck_assert(!w2.done);

        /* One slot back: the first waiter gets it, the second still waits. */
        r = lease_shrink(a, pa, 1, &err, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 1);
        ck_assert_msg(waiter_wait(&w1, POLL_MS), "first waiter not served after Shrink");
        ck_assert_msg(!w1.error[0], "first waiter got %s", w1.error);
        ck_assert_uint_eq(w1.granted, 1);
        ck_assert_uint_eq(broker_u(obs, "Waiting"), 1);
        waiter_poll(&w2);
        ck_assert_msg(!w2.done, "second waiter served before the first was (FIFO)");
        ck_assert_uint_eq(broker_u(obs, "InUse"), 2);

        /* Release: the second waiter is served. */
        r = lease_release(a, pa, &err);
        assert_ok(r, &err);
        ck_assert_msg(waiter_wait(&w2, POLL_MS), "second waiter not served after Release");
        ck_assert_msg(!w2.error[0], "second waiter got %s", w2.error);
        ck_assert_uint_eq(w2.granted, 1);
        ck_assert_uint_eq(broker_u(obs, "Waiting"), 0);
        ck_assert_uint_eq(broker_u(obs, "InUse"), 2);
        ck_assert_uint_eq(broker_u(obs, "Leases"), 2);
        waiter_done(&w1);
        waiter_done(&w2);
        ck_assert_uint_eq(wait_broker_u(obs, "InUse", 0), 0);
        assert_alive(obs);
}
END_TEST

START_TEST(test_wait_timeout) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *a = NULL, *obs = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        Waiter w;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(2));
        a = bus_open();
        obs = bus_open();
        r = acquire(a, 2, -1, NULL, &err, NULL, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 2);

        /* Without a wait: Busy at once. */
        r = acquire(obs, 1, -1, (Opt[]) { OPT_U("min", 1), OPT_END }, &err, NULL, NULL);
        assert_error(r, &err, BROKER_ERROR_BUSY);
        sd_bus_error_free(&err);

        /* With a wait that nobody satisfies: Timeout at the deadline, Ping served meanwhile. */
        waiter_send(&w, 2, (Opt[]) { OPT_U("min", 1), OPT_T("wait_usec", 1500000), OPT_END });
        ck_assert_uint_eq(wait_broker_u(obs, "Waiting", 1), 1);
        ck_assert_int_ge(ping(obs), 0);
        ck_assert_int_ge(ping(obs), 0);
        ck_assert_msg(waiter_wait(&w, 30000), "waiter never answered");
        ck_assert_str_eq(w.error, BROKER_ERROR_TIMEOUT);
        ck_assert_uint_eq(broker_u(obs, "Waiting"), 0);
        ck_assert_uint_eq(broker_u(obs, "Leases"), 1);
        ck_assert_uint_eq(broker_u(obs, "InUse"), 2);
        waiter_done(&w);
        assert_alive(obs);
}
END_TEST

/* ---- a killed client returns its slots ------------------------------------------------ */

START_TEST(test_sigkill_returns_slots) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        char path[128] = "";
        LeaseInfo l[4];
        size_t n = 0;
        int p[2], status;
        uint32_t g = 0;
        Waiter w;
        pid_t pid;

        start(CONF_CAP(4));
        b = bus_open();
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                sd_bus *cb = NULL;
                sd_bus_error err = SD_BUS_ERROR_NULL;
                char *lp = NULL;

                close(p[0]);
                if (bus_open_spec(fx.address, NULL, &cb) < 0 ||
                    acquire(cb, 4, -1, (Opt[]) { OPT_S("tag", "doomed"), OPT_END }, &err, &lp, &g) < 0)
                        _exit(1);
                if (write(p[1], lp, strlen(lp)) < 0)
                        _exit(2);
                close(p[1]);
                for (;;)
                        pause();
        }
        close(p[1]);
        ssize_t k = read(p[0], path, sizeof path - 1);
        close(p[0]);
        ck_assert_msg(k > 0, "child did not acquire");
        path[k] = '\0';
        ck_assert_uint_eq(broker_u(b, "InUse"), 4);
        ck_assert_uint_eq(lease_u(b, path, "Pid"), (uint32_t) pid);

        /* Someone waits for the slots the child holds. */
        waiter_send(&w, 2, (Opt[]) { OPT_U("min", 2), OPT_T("wait_usec", 30000000), OPT_END });
        ck_assert_uint_eq(wait_broker_u(b, "Waiting", 1), 1);

        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);

        ck_assert_msg(waiter_wait(&w, POLL_MS), "waiter not served after the holder died");
        ck_assert_msg(!w.error[0], "waiter got %s", w.error);
        ck_assert_uint_eq(w.granted, 2);
        ck_assert_int_lt(get_u(b, path, LEASE_INTERFACE, "Granted", &g), 0);
        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_null(leases_find(l, n, path));
        ck_assert_uint_eq(broker_u(b, "InUse"), 2);
        waiter_done(&w);
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 0), 0);
        ck_assert_uint_eq(wait_broker_u(b, "Leases", 0), 0);
        assert_alive(b);
}
END_TEST

/* ---- a non-root client --------------------------------------------------------------- */

static int nonroot_child(void *arg, char *msg, size_t size) {
        const char *root_lease = arg;
        sd_bus *b = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        char *own = NULL;
        uint32_t g = 0, uid = 0;
        int r;

        if (drop_to_nobody(msg, size))
                return 1;
        r = bus_open_spec(fx.address, NULL, &b);
        if (r < 0)
                return fail_msg(msg, size, "connect as nobody: %s", strerror(-r));

#define EXPECT_DENIED(call, what)                                                        \
        do {                                                                             \
                sd_bus_error_free(&err);                                                 \
                r = (call);                                                              \
                if (r >= 0 || !sd_bus_error_has_name(&err, SD_BUS_ERROR_ACCESS_DENIED))             \
                        return fail_msg(msg, size, "%s as nobody: r=%d %s", what, r,     \
                                        err.name ?: "(succeeded)");                      \
        } while (0)

        EXPECT_DENIED(set_quota(b, -1, 1000, &err), "SetQuota(-1)");
        EXPECT_DENIED(set_quota(b, 0, 1000, &err), "SetQuota(0)");
        EXPECT_DENIED(reload(b, &err), "Reload");
        EXPECT_DENIED(lease_release(b, root_lease, &err), "Release of root's lease");
        EXPECT_DENIED(lease_shrink(b, root_lease, 1, &err, NULL), "Shrink of root's lease");

        /* Everyone may acquire and read. */
        sd_bus_error_free(&err);
        r = acquire(b, 1, -1, NULL, &err, &own, &g);
        if (r < 0)
                return fail_msg(msg, size, "Acquire as nobody: %s", err.name);
        r = get_u(b, own, LEASE_INTERFACE, "Uid", &uid);
        if (r < 0 || uid != NOBODY)
                return fail_msg(msg, size, "own lease Uid %u (r=%d)", uid, r);
        if (get_u(b, BROKER_PATH, BROKER_INTERFACE, "InUse", &g) < 0)
                return fail_msg(msg, size, "reading InUse as nobody failed");
        r = lease_release(b, own, &err);
        if (r < 0)
                return fail_msg(msg, size, "Release of own lease: %s", err.name);
        free(own);
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(b);
        return 0;
#undef EXPECT_DENIED
}

START_TEST(test_nonroot_denied) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL, *other = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        r = acquire(b, 2, -1, NULL, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 2);

        run_child(nonroot_child, p);

        /* Another connection of the same uid (root) is still not the owner. */
        other = bus_open();
        r = lease_release(other, p, &err);
        assert_error(r, &err, SD_BUS_ERROR_ACCESS_DENIED);
        sd_bus_error_free(&err);
        r = lease_shrink(other, p, 1, &err, NULL);
        assert_error(r, &err, SD_BUS_ERROR_ACCESS_DENIED);
        sd_bus_error_free(&err);

        /* Nothing changed. */
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);
        ck_assert_uint_eq(lease_u(b, p, "Granted"), 2);
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 2), 2);
        r = lease_release(b, p, &err);
        assert_ok(r, &err);
        assert_alive(b);
}
END_TEST

/* A non-root member of AdminGroup is an admin, also for ListLeases' rate limit. */
static int admin_group_child(void *arg, char *msg, size_t size) {
        gid_t groups[1] = { NOBODY };
        sd_bus *b = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        uint32_t max = 0;
        int r;

        (void) arg;
        if (setgroups(1, groups) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0 || geteuid() != NOBODY)
                return fail_msg(msg, size, "dropping to nobody:nogroup: %m");
        r = bus_open_spec(fx.address, NULL, &b);
        if (r < 0)
                return fail_msg(msg, size, "connect: %s", strerror(-r));
        r = set_quota(b, -1, 3, &err);
        if (r < 0)
                return fail_msg(msg, size, "SetQuota as a member of AdminGroup: %s", err.name);
        if (get_u(b, BROKER_PATH, BROKER_INTERFACE, "MaxHelpers", &max) < 0 || max != 3)
                return fail_msg(msg, size, "MaxHelpers %u after SetQuota(-1, 3)", max);
        r = reload(b, &err);
        if (r < 0)
                return fail_msg(msg, size, "Reload as a member of AdminGroup: %s", err.name);
        /* Admins are spared ListLeases' rate limit, before and after a reload. */
        for (unsigned i = 0; i < 2 * BROKER_LIST_BURST; i++) {
                r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &err, NULL, "");
                if (r < 0)
                        return fail_msg(msg, size, "ListLeases %u of a member of AdminGroup: %s", i + 1, err.name);
        }
        sd_bus_error_free(&err);
        sd_bus_flush_close_unref(b);
        return 0;
}

START_TEST(test_admin_group) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        struct group *g = getgrgid(NOBODY);

        ck_assert_msg(g, "no group %d on this machine", NOBODY);
        start("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nAdminGroup=nogroup\n");
        b = bus_open();
        run_child(admin_group_child, NULL);
        assert_alive(b);
}
END_TEST

/* ---- malformed arguments ------------------------------------------------------------ */

START_TEST(test_malformed_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL, *c = NULL, *w2 = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL, *p2 = NULL;
        char tag_max[BROKER_TAG_MAX + 1], tag_over[BROKER_TAG_MAX + 2];
        uint32_t g = 0;
        Waiter w;
        int r;

        start("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nMaxLeasesPerClient=3\nMaxWaiting=1\n");
        b = bus_open();
        memset(tag_max, 'x', BROKER_TAG_MAX);
        tag_max[BROKER_TAG_MAX] = '\0';
        memset(tag_over, 'y', BROKER_TAG_MAX + 1);
        tag_over[BROKER_TAG_MAX + 1] = '\0';

#define EXPECT(call, name)                                                               \
        do {                                                                             \
                sd_bus_error_free(&err);                                                 \
                r = (call);                                                              \
                assert_error(r, &err, name);                                             \
                assert_alive(b);                                                         \
        } while (0)

        EXPECT(acquire(b, 0, -1, NULL, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, BROKER_HELPERS_MAX + 1, -1, NULL, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, UINT32_MAX, -1, NULL, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, BROKER_NODE_ID_MAX + 1, NULL, &err, NULL, NULL), BROKER_ERROR_NO_SUCH_NODE);
        EXPECT(acquire(b, 1, INT32_MAX, NULL, &err, NULL, NULL), BROKER_ERROR_NO_SUCH_NODE);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("bogus", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_S("min", "1"), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_I("min", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("wait_usec", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("strict_node", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_T("caller_tid", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("tag", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("ttl_usec", 1), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_S("tag", tag_over), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        EXPECT(acquire(b, 2, -1, (Opt[]) { OPT_U("min", 3), OPT_END }, &err, NULL, NULL), SD_BUS_ERROR_INVALID_ARGS);
        /* A wrong signature altogether. */
        EXPECT(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &err, NULL, "s", "x"),
               SD_BUS_ERROR_INVALID_ARGS);
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);

        /* The edges that are valid. */
        sd_bus_error_free(&err);
        r = acquire(b, BROKER_HELPERS_MAX, -1, (Opt[]) { OPT_S("tag", tag_max), OPT_END }, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 4);

        /* Full: Busy when min cannot be met and there is no wait. */
        EXPECT(acquire(b, 1, -1, (Opt[]) { OPT_U("min", 1), OPT_END }, &err, NULL, NULL), BROKER_ERROR_BUSY);

        /* Shrink more than granted. */
        EXPECT(lease_shrink(b, p, 5, &err, NULL), SD_BUS_ERROR_INVALID_ARGS);
        ck_assert_uint_eq(lease_u(b, p, "Granted"), 4);

        /* MaxWaiting=1: one waiter queues, the next is refused. */
        waiter_send(&w, 1, (Opt[]) { OPT_U("min", 1), OPT_T("wait_usec", 30000000), OPT_END });
        ck_assert_uint_eq(wait_broker_u(b, "Waiting", 1), 1);
        w2 = bus_open();
        sd_bus_error_free(&err);
        r = acquire(w2, 1, -1, (Opt[]) { OPT_U("min", 1), OPT_T("wait_usec", 30000000), OPT_END },
                    &err, NULL, NULL);
        assert_error(r, &err, SD_BUS_ERROR_LIMITS_EXCEEDED);
        assert_alive(b);
        /* Slots back: the queued waiter is served. */
        sd_bus_error_free(&err);
        r = lease_release(b, p, &err);
        assert_ok(r, &err);
        ck_assert_msg(waiter_wait(&w, POLL_MS), "waiter not served after Release");
        ck_assert_msg(!w.error[0], "waiter got %s", w.error);
        ck_assert_uint_eq(broker_u(b, "Waiting"), 0);

        /* MaxLeasesPerClient=3. */
        c = bus_open();
        for (int i = 0; i < 3; i++) {
                sd_bus_error_free(&err);
                r = acquire(c, 1, -1, NULL, &err, NULL, &g);
                assert_ok(r, &err);
        }
        EXPECT(acquire(c, 1, -1, NULL, &err, NULL, NULL), SD_BUS_ERROR_LIMITS_EXCEEDED);
        /* The limit is per client: another connection still gets a lease. */
        sd_bus_error_free(&err);
        r = acquire(w2, 1, -1, NULL, &err, &p2, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "Leases"), 5);
        waiter_done(&w);
#undef EXPECT
        assert_alive(b);
}
END_TEST

/* ---- SetQuota ---------------------------------------------------------------------- */

START_TEST(test_set_quota) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        NodeInfo nodes[64];
        uint32_t g = 0;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        r = set_quota(b, -1, 6, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 6);

        get_nodes(b, nodes, ELEMENTSOF(nodes));
        r = set_quota(b, nodes[0].node, 3, &err);
        assert_ok(r, &err);
        get_nodes(b, nodes, ELEMENTSOF(nodes));
        ck_assert_uint_eq(nodes[0].max, 3);
        r = acquire(b, 5, nodes[0].node, (Opt[]) { OPT_B("strict_node", 1), OPT_END }, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 3);
        ck_assert_uint_eq(broker_u(b, "InUse"), 3);
        free(p);
        p = NULL;
        r = set_quota(b, nodes[0].node, 64, &err);
        assert_ok(r, &err);

        /* Lowering below use revokes nothing; it stops new grants. */
        r = set_quota(b, -1, 1, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 1);
        ck_assert_uint_eq(broker_u(b, "InUse"), 3);
        ck_assert_uint_eq(broker_u(b, "Leases"), 1);
        r = acquire(b, 1, -1, (Opt[]) { OPT_U("min", 1), OPT_END }, &err, NULL, NULL);
        assert_error(r, &err, BROKER_ERROR_BUSY);
        sd_bus_error_free(&err);
        r = acquire(b, 1, -1, NULL, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 0);
        ck_assert_uint_eq(broker_u(b, "InUse"), 3);
        assert_alive(b);
}
END_TEST

/* ---- ttl --------------------------------------------------------------------------- */

START_TEST(test_ttl) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *keep = NULL, *brief = NULL;
        LeaseInfo l[4];
        size_t n = 0;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        r = acquire(b, 1, -1, NULL, &err, &keep, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 1);
        r = acquire(b, 2, -1, (Opt[]) { OPT_T("ttl_usec", 300000), OPT_END }, &err, &brief, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 2);

        ck_assert_uint_eq(wait_broker_u(b, "InUse", 1), 1);
        ck_assert_uint_eq(broker_u(b, "Leases"), 1);
        ck_assert_int_ge(list_leases(b, l, ELEMENTSOF(l), &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(l[0].path, keep);
        ck_assert_int_lt(get_u(b, brief, LEASE_INTERFACE, "Granted", &g), 0);
        ck_assert_uint_eq(lease_u(b, keep, "Granted"), 1);
        assert_alive(b);
}
END_TEST

/* The ttl's end is told to the owner with Expired on the lease object. */
static int on_expired(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        char *got = userdata;

        snprintf(got, 128, "%s", sd_bus_message_get_path(m));
        return 0;
}

START_TEST(test_ttl_expired_signal) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *brief = NULL;
        char got[128] = "";
        long long deadline;
        uint32_t g = 0;

        start(CONF_CAP(4));
        b = bus_open();
        ck_assert_int_ge(sd_bus_match_signal(b, NULL, BROKER_BUS_NAME, NULL, LEASE_INTERFACE, "Expired", on_expired, got), 0);
        assert_ok(acquire(b, 2, -1, (Opt[]) { OPT_T("ttl_usec", 100000), OPT_END }, &err, &brief, &g), &err);
        deadline = fixture_now_ms() + POLL_MS;
        while (!got[0] && fixture_now_ms() < deadline) {
                while (sd_bus_process(b, NULL) > 0)
                        ;
                if (!got[0])
                        sd_bus_wait(b, 50 * 1000);
        }
        ck_assert_str_eq(got, brief);
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 0), 0);
}
END_TEST

/* ---- queue rules and hostile input ------------------------------------------------- */

/* A min no quota could ever meet is refused at once, waiting or not. */
START_TEST(test_never_fits) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        long long t0;
        int r;

        start("[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nMaxHelpersPerUser=3\n");
        b = bus_open();
        t0 = fixture_now_ms();
        r = acquire(b, 4096, -1, (Opt[]) { OPT_U("min", 4096), OPT_T("wait_usec", UINT64_MAX), OPT_END },
                    &err, NULL, NULL);
        assert_error(r, &err, BROKER_ERROR_BUSY);
        sd_bus_error_free(&err);
        r = acquire(b, 4, -1, (Opt[]) { OPT_U("min", 4), OPT_T("wait_usec", 10000000), OPT_END }, &err, NULL, NULL);
        assert_error(r, &err, BROKER_ERROR_BUSY);          /* above the per-user cap of 3 */
        ck_assert_int_lt(fixture_now_ms() - t0, POLL_MS);
        ck_assert_uint_eq(broker_u(b, "Waiting"), 0);
        assert_alive(b);
}
END_TEST

/* Every wait ends by MaxWaitUSec, however long the caller asked for. */
START_TEST(test_max_wait) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        Waiter w;

        start("[Broker]\nMaxHelpers=1\nMaxHelpersPerNode=4096\nMaxWaitUSec=200000\n");
        b = bus_open();
        assert_ok(acquire(b, 1, -1, NULL, &err, NULL, NULL), &err);
        waiter_send(&w, 1, (Opt[]) { OPT_U("min", 1), OPT_T("wait_usec", UINT64_MAX), OPT_END });
        ck_assert_msg(waiter_wait(&w, POLL_MS), "the endless wait was never answered");
        ck_assert_str_eq(w.error, BROKER_ERROR_TIMEOUT);
        waiter_done(&w);
        ck_assert_uint_eq(broker_u(b, "Waiting"), 0);
}
END_TEST

/* An Acquire nobody reads the answer of is refused, and holds nothing. */
START_TEST(test_acquire_no_reply) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        start(CONF_CAP(4));
        b = bus_open();
        ck_assert_int_ge(acquire_message(b, 2, -1, NULL, &m), 0);
        ck_assert_int_ge(sd_bus_message_set_expect_reply(m, 0), 0);
        ck_assert_int_ge(sd_bus_send(b, m, NULL), 0);
        ck_assert_int_ge(ping(b), 0);           /* paddd has read it by now */
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
}
END_TEST

/* SetQuota takes what the config takes: 0..4096. */
START_TEST(test_set_quota_bounds) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &err, NULL, "iu", -1, 4097u);
        assert_error(r, &err, SD_BUS_ERROR_INVALID_ARGS);
        sd_bus_error_free(&err);
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &err, NULL, "iu", -1, UINT32_MAX);
        assert_error(r, &err, SD_BUS_ERROR_INVALID_ARGS);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);
        sd_bus_error_free(&err);
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &err, NULL, "iu", -1, 4096u);
        assert_ok(r, &err);
}
END_TEST

/* A FIFO where a drop-in should be is refused with its name, and paddd goes on. */
START_TEST(test_config_fifo) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        char dir[400], fifo[420];
        int r;

        start(CONF_CAP(4));
        snprintf(dir, sizeof dir, "%s.d", fx.config_path);
        snprintf(fifo, sizeof fifo, "%s/10-fifo.conf", dir);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        b = bus_open();
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Reload", &err, NULL, "");
        ck_assert_int_lt(r, 0);
        ck_assert_msg(err.message && strstr(err.message, "10-fifo.conf: not a regular file"),
                      "got %s", err.message ? err.message : "(none)");
        assert_alive(b);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);
}
END_TEST

/* ListLeases from a caller that is not an admin: a burst, then a few a second. */
static int list_flood_child(void *arg, char *msg, size_t size) {
        sd_bus *b = NULL;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        unsigned ok = 0, refused = 0;
        int r;

        if (drop_to_nobody(msg, size))
                return 1;
        r = bus_open_spec(fx.address, NULL, &b);
        if (r < 0)
                return fail_msg(msg, size, "connecting: %s", strerror(-r));
        for (unsigned i = 0; i < 2 * BROKER_LIST_BURST; i++) {
                r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &err, NULL, "");
                if (r >= 0)
                        ok++;
                else if (sd_bus_error_has_name(&err, SD_BUS_ERROR_LIMITS_EXCEEDED))
                        refused++;
                sd_bus_error_free(&err);
        }
        if (ok < BROKER_LIST_BURST || refused == 0)
                return fail_msg(msg, size, "%u answered, %u refused of %u", ok, refused, 2 * BROKER_LIST_BURST);
        usleep(2 * 1000000 / BROKER_LIST_PER_SEC);
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &err, NULL, "");
        if (r < 0)
                return fail_msg(msg, size, "after a pause: %s", err.name);
        /* Acquire is not rate-limited. */
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &err, NULL, "uia{sv}", 1, -1, 0);
        if (r < 0)
                return fail_msg(msg, size, "Acquire: %s", err.name);
        sd_bus_flush_close_unref(b);
        return 0;
}

START_TEST(test_list_leases_bounded) {
        start(CONF_CAP(4));
        run_child(list_flood_child, NULL);
}
END_TEST

/* GetStatistics counts what happened: grants, refusals by reason, waits, reclaims. */
static uint64_t counter(sd_bus *b, const char *want) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *name;
        uint64_t v, found = UINT64_MAX;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "GetStatistics", &err, &reply, "");
        assert_ok(r, &err);
        ck_assert_int_ge(sd_bus_message_enter_container(reply, 'a', "{st}"), 0);
        while ((r = sd_bus_message_read(reply, "{st}", &name, &v)) > 0)
                if (streq(name, want))
                        found = v;
        ck_assert_int_ge(r, 0);
        ck_assert_msg(found != UINT64_MAX, "no counter %s", want);
        return found;
}

START_TEST(test_statistics) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL, *gone = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        uint32_t g = 0;
        Waiter w;

        start(CONF_CAP(4));
        b = bus_open();
        gone = bus_open();
        assert_ok(acquire(b, 3, -1, NULL, &err, &p, &g), &err);
        assert_ok(lease_shrink(b, p, 1, &err, &g), &err);
        ck_assert_int_lt(acquire(b, 4, -1, (Opt[]) { OPT_U("min", 4), OPT_END }, &err, NULL, NULL), 0);
        sd_bus_error_free(&err);
        ck_assert_int_lt(acquire(b, 0, -1, NULL, &err, NULL, NULL), 0);
        sd_bus_error_free(&err);
        waiter_send(&w, 3, (Opt[]) { OPT_U("min", 3), OPT_T("wait_usec", 50000), OPT_END });
        ck_assert(waiter_wait(&w, POLL_MS));
        ck_assert_str_eq(w.error, BROKER_ERROR_TIMEOUT);
        waiter_done(&w);
        assert_ok(acquire(gone, 1, -1, NULL, &err, NULL, NULL), &err);
        gone = sd_bus_flush_close_unref(gone);
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 2), 2);
        assert_ok(lease_release(b, p, &err), &err);

        ck_assert_uint_eq(counter(b, "grants"), 2);
        ck_assert_uint_eq(counter(b, "helpers_granted"), 4);
        ck_assert_uint_eq(counter(b, "shrinks"), 1);
        ck_assert_uint_eq(counter(b, "denied_busy"), 1);
        ck_assert_uint_eq(counter(b, "denied_invalid"), 1);
        ck_assert_uint_eq(counter(b, "waits"), 1);
        ck_assert_uint_eq(counter(b, "denied_timeout"), 1);
        ck_assert_uint_eq(counter(b, "reclaimed"), 1);
        ck_assert_uint_eq(counter(b, "releases"), 1);
        /* A reload does not reset them. */
        assert_ok(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Reload", &err, NULL, ""), &err);
        ck_assert_uint_eq(counter(b, "grants"), 2);
        ck_assert_uint_eq(counter(b, "reloads"), 1);
}
END_TEST

/* ---- reload ------------------------------------------------------------------------ */

START_TEST(test_reload) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        static const char *broken[] = {
                "[Broker]\nMaxHelpers=banana\n",
                "[Broker]\nMaxHelpers=2\nNoSuchKey=1\n",
                "[Broker]\nMaxHelpers=2\nMaxHelpers=3\n",
                "[Nowhere]\nMaxHelpers=2\n",
                "[Broker]\nHelperPolicy=fastest\n",
        };
        NodeInfo nodes[64];
        size_t i, nn;
        int r;

        start(CONF_CAP(4));
        b = bus_open();

        for (i = 0; i < ELEMENTSOF(broken); i++) {
                ck_assert_int_eq(fixture_write_config(&fx, broken[i]), 0);
                /* The reply may be an error or not; the old quotas must stay. */
                (void) reload(b, &err);
                sd_bus_error_free(&err);
                assert_alive(b);
                ck_assert_msg(broker_u(b, "MaxHelpers") == 4, "broken config %zu applied", i);
        }
        fixture_drain_notify(&fx);
        for (i = 0; i < ELEMENTSOF(broken); i++) {
                ck_assert_int_eq(fixture_write_config(&fx, broken[i]), 0);
                ck_assert_int_eq(kill(fx.paddd_pid, SIGHUP), 0);
                /* A reload is bracketed by RELOADING=1 ... READY=1. */
                ck_assert_int_eq(fixture_wait_notify(&fx, "RELOADING=1", POLL_MS), 0);
                ck_assert_int_eq(fixture_wait_notify(&fx, "READY=1", POLL_MS), 0);
                assert_alive(b);
                ck_assert_msg(broker_u(b, "MaxHelpers") == 4, "broken config %zu applied by SIGHUP", i);
        }

        /* A good config through Reload(). */
        ck_assert_int_eq(fixture_write_config(&fx, "[Broker]\nMaxHelpers=6\nMaxHelpersPerNode=4096\n"), 0);
        r = reload(b, &err);
        assert_ok(r, &err);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 6);

        /* A good config through SIGHUP, with a node override. */
        ck_assert_int_eq(fixture_write_config(&fx, "[Broker]\nMaxHelpers=7\nMaxHelpersPerNode=4096\n"
                                                   "HelperPolicy=batch\n[Node 0]\nMaxHelpers=2\n"), 0);
        ck_assert_int_eq(kill(fx.paddd_pid, SIGHUP), 0);
        ck_assert_uint_eq(wait_broker_u(b, "MaxHelpers", 7), 7);
        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        for (i = 0; i < nn && nodes[i].node != 0; i++)
                ;
        ck_assert_msg(i < nn, "node 0 is not listed in Nodes");
        ck_assert_uint_eq(nodes[i].max, 2);
        assert_alive(b);
}
END_TEST

/* ---- PropertiesChanged --------------------------------------------------------------- */

typedef struct Seen {
        bool in_use;
        uint32_t value;
        bool invalidated;
} Seen;

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Seen *s = userdata;
        const char *iface, *key;

        if (sd_bus_message_read(m, "s", &iface) < 0 || !streq(iface, BROKER_INTERFACE))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &key) < 0)
                        return 0;
                if (streq(key, "InUse")) {
                        if (sd_bus_message_read(m, "v", "u", &s->value) >= 0)
                                s->in_use = true;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                sd_bus_message_exit_container(m);
        }
        sd_bus_message_exit_container(m);
        if (sd_bus_message_enter_container(m, 'a', "s") > 0) {
                while (sd_bus_message_read(m, "s", &key) > 0)
                        if (streq(key, "InUse"))
                                s->invalidated = true;
        }
        return 0;
}

START_TEST(test_properties_changed) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL, *sub = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        Seen seen = {};
        long long deadline;
        uint32_t g = 0;
        int r;

        start(CONF_CAP(4));
        b = bus_open();
        sub = bus_open();
        r = sd_bus_match_signal(sub, &slot, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, &seen);
        ck_assert_int_ge(r, 0);
        r = acquire(b, 3, -1, NULL, &err, NULL, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 3);

        deadline = fixture_now_ms() + POLL_MS;
        while (!(seen.in_use && seen.value == 3) && !seen.invalidated && fixture_now_ms() < deadline) {
                if (sd_bus_process(sub, NULL) == 0)
                        sd_bus_wait(sub, 50 * 1000);
        }
        ck_assert_msg((seen.in_use && seen.value == 3) || seen.invalidated,
                      "no PropertiesChanged for InUse=3 (last seen %s %u)",
                      seen.in_use ? "InUse" : "nothing", seen.value);
}
END_TEST

/* ---- introspection -------------------------------------------------------------------- */

/* Comments out, whitespace runs collapsed, no blanks next to tag brackets. */
static char *xml_normalize(const char *in) {
        char *out = malloc(strlen(in) + 1), *o = out;
        bool space = false;

        ck_assert_ptr_nonnull(out);
        while (*in) {
                if (strncmp(in, "<!--", 4) == 0) {
                        const char *end = strstr(in, "-->");
                        in = end ? end + 3 : in + strlen(in);
                        continue;
                }
                if (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r') {
                        space = true;
                        in++;
                        continue;
                }
                if (space && o > out && o[-1] != '>' && *in != '<' && *in != '>' &&
                    !(*in == '/' && in[1] == '>'))
                        *o++ = ' ';
                space = false;
                *o++ = *in++;
        }
        *o = '\0';
        return out;
}

#define MAX_IFACES 8
typedef struct Ifaces {
        size_t n;
        char name[MAX_IFACES][96];
        char *body[MAX_IFACES];
} Ifaces;

/* The <interface name="org.padata.Broker..."> elements of normalised XML. */
static void ifaces_extract(const char *xml, Ifaces *ret) {
        static const char open[] = "<interface name=\"" BROKER_INTERFACE;
        const char *p = xml;

        memset(ret, 0, sizeof *ret);
        while ((p = strstr(p, open))) {
                const char *name = p + strlen("<interface name=\"");
                const char *q = strchr(name, '"');
                const char *end = strstr(p, "</interface>");
                ck_assert_ptr_nonnull(q);
                ck_assert_ptr_nonnull(end);
                end += strlen("</interface>");
                ck_assert_uint_lt(ret->n, MAX_IFACES);
                snprintf(ret->name[ret->n], sizeof ret->name[0], "%.*s", (int) (q - name), name);
                ret->body[ret->n] = strndup(p, (size_t) (end - p));
                ck_assert_ptr_nonnull(ret->body[ret->n]);
                ret->n++;
                p = end;
        }
}

static void ifaces_free(Ifaces *f) {
        for (size_t i = 0; i < f->n; i++)
                free(f->body[i]);
        f->n = 0;
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        ck_assert_msg(f, "opening %s: %m", path);
        ck_assert_int_eq(getdelim(&buf, &size, '\0', f) >= 0, 1);
        fclose(f);
        return buf;
}

static char *introspect(sd_bus *b, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *xml;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect",
                               &err, &reply, "");
        assert_ok(r, &err);
        ck_assert_int_ge(sd_bus_message_read(reply, "s", &xml), 0);
        return xml_normalize(xml);
}

START_TEST(test_introspection) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL, *file_raw = NULL, *file = NULL, *live_broker = NULL,
                            *live_lease = NULL, *xml_path = NULL;
        const char *root = getenv("PADDD_SOURCE_ROOT");
        Ifaces want, got_broker, got_lease;
        int r;

        ck_assert_msg(root, "PADDD_SOURCE_ROOT is not set");
        ck_assert_int_ge(asprintf(&xml_path, "%s/dbus/org.padata.Broker.xml", root), 0);
        file_raw = read_text(xml_path);
        file = xml_normalize(file_raw);
        ifaces_extract(file, &want);
        ck_assert_msg(want.n == 2, "%s declares %zu org.padata.Broker* interfaces, want 2", xml_path, want.n);

        start(CONF_CAP(4));
        b = bus_open();
        r = acquire(b, 1, -1, NULL, &err, &p, NULL);
        assert_ok(r, &err);
        live_broker = introspect(b, BROKER_PATH);
        live_lease = introspect(b, p);
        ifaces_extract(live_broker, &got_broker);
        ifaces_extract(live_lease, &got_lease);
        ck_assert_uint_eq(got_broker.n, 1);
        ck_assert_str_eq(got_broker.name[0], BROKER_INTERFACE);
        ck_assert_uint_eq(got_lease.n, 1);
        ck_assert_str_eq(got_lease.name[0], LEASE_INTERFACE);

        for (size_t i = 0; i < want.n; i++) {
                const char *live = streq(want.name[i], BROKER_INTERFACE) ? got_broker.body[0] :
                                   streq(want.name[i], LEASE_INTERFACE) ? got_lease.body[0] : NULL;
                ck_assert_msg(live, "%s declares unknown interface %s", xml_path, want.name[i]);
                ck_assert_msg(streq(live, want.body[i]),
                              "interface %s differs from %s:\nlive: %s\nfile: %s",
                              want.name[i], xml_path, live, want.body[i]);
        }
        ifaces_free(&want);
        ifaces_free(&got_broker);
        ifaces_free(&got_lease);
}
END_TEST

/* ---- busctl ---------------------------------------------------------------------- */

/* Run argv with stdout+stderr captured; returns the exit status (or -1). */
static int run_cmd(char *out, size_t size, char *const argv[]) {
        int p[2], status;
        size_t got = 0;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(p[1], STDOUT_FILENO);
                dup2(p[1], STDERR_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(p[1]);
        for (;;) {
                ssize_t n = read(p[0], out + got, size - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t) n;
                if (got == size - 1)
                        break;
        }
        out[got] = '\0';
        close(p[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define BUSCTL(out, ...)                                                                 \
        run_cmd((out), sizeof(out), (char *[]) { "busctl", "--no-pager", addr, "--", __VA_ARGS__, NULL })

START_TEST(test_busctl) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        char addr[400], out[8192], lp[128], tid[32];
        unsigned g = 0;
        int r;

        if (access("/usr/bin/busctl", X_OK) < 0 && access("/bin/busctl", X_OK) < 0) {
                fprintf(stderr, "busctl not installed: skipping its test\n");
                return;
        }
        start(CONF_CAP(4));
        b = bus_open();
        snprintf(addr, sizeof addr, "--address=%s", fx.address);

        r = BUSCTL(out, "call", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", "uia{sv}", "2", "-1",
                   "1", "tag", "s", "demo");
        ck_assert_msg(r == 0, "busctl Acquire: %s", out);
        ck_assert_msg(sscanf(out, "ou \"%127[^\"]\" %u", lp, &g) == 2, "busctl Acquire printed: %s", out);
        ck_assert_uint_eq(g, 2);
        /* busctl's connection owned that lease and has gone: the slots came back. */
        ck_assert_uint_eq(wait_broker_u(b, "InUse", 0), 0);
        ck_assert_int_lt(get_u(b, lp, LEASE_INTERFACE, "Granted", &g), 0);

        r = acquire(b, 3, -1, (Opt[]) { OPT_S("tag", "mine"), OPT_END }, &err, &p, &g);
        assert_ok(r, &err);
        r = BUSCTL(out, "call", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases");
        ck_assert_msg(r == 0, "busctl ListLeases: %s", out);
        ck_assert_msg(strncmp(out, "a(ouuuss) 1 ", 12) == 0 && strstr(out, p) && strstr(out, "\"mine\""),
                      "busctl ListLeases printed: %s", out);

        r = BUSCTL(out, "get-property", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "InUse");
        ck_assert_msg(r == 0 && strncmp(out, "u 3", 3) == 0, "busctl get-property InUse: %s", out);
        r = BUSCTL(out, "get-property", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Nodes", "Version",
                   "HelperPolicy", "Waiting", "Leases", "MaxHelpers");
        ck_assert_msg(r == 0 && strstr(out, "a(iuuu)") && strstr(out, "\nu 1\n"),
                      "busctl get-property: %s", out);
        r = BUSCTL(out, "get-property", BROKER_BUS_NAME, p, LEASE_INTERFACE, "Granted", "Placement", "Owner", "Pid",
                   "Uid", "Tag");
        ck_assert_msg(r == 0 && strncmp(out, "u 3\n", 4) == 0 && strstr(out, "s \"mine\""),
                      "busctl get-property on the lease: %s", out);

        r = BUSCTL(out, "call", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", "iu", "-1", "7");
        ck_assert_msg(r == 0, "busctl SetQuota: %s", out);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 7);
        r = BUSCTL(out, "call", BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Reload");
        ck_assert_msg(r == 0, "busctl Reload: %s", out);
        assert_alive(b);

        /* Lease methods from busctl: its connection does not own our lease. */
        r = BUSCTL(out, "call", BROKER_BUS_NAME, p, LEASE_INTERFACE, "Release");
        ck_assert_msg(r != 0, "busctl released someone else's lease: %s", out);
        r = BUSCTL(out, "call", BROKER_BUS_NAME, p, LEASE_INTERFACE, "Shrink", "u", "1");
        ck_assert_msg(r != 0, "busctl shrank someone else's lease: %s", out);
        snprintf(tid, sizeof tid, "%d", (int) getpid());
        r = BUSCTL(out, "call", BROKER_BUS_NAME, p, LEASE_INTERFACE, "RaisePriority", "u", tid);
        ck_assert_msg(r != 0, "busctl raised priority on someone else's lease: %s", out);
        ck_assert_uint_eq(lease_u(b, p, "Granted"), 3);

        r = BUSCTL(out, "call", BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping");
        ck_assert_msg(r == 0, "busctl Ping: %s", out);
        r = BUSCTL(out, "introspect", BROKER_BUS_NAME, BROKER_PATH);
        ck_assert_msg(r == 0 && strstr(out, ".Acquire") && strstr(out, ".SetQuota"), "busctl introspect: %s", out);
        assert_alive(b);
}
END_TEST

/* ---- sd_notify --------------------------------------------------------------------- */

START_TEST(test_notify_status) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *p = NULL;
        uint32_t g = 0;
        int r;

        /* fixture_start succeeded only if READY=1 arrived. */
        start(CONF_CAP(4));
        b = bus_open();
        r = acquire(b, 3, -1, NULL, &err, &p, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 3);
        r = fixture_wait_notify(&fx, "3/4", POLL_MS);
        ck_assert_msg(r == 0, "no STATUS= with 3/4 after acquiring 3 of 4 (last: \"%s\")", fx.last_status);
        ck_assert_ptr_nonnull(strstr(fx.last_status, "3/4"));
        r = lease_release(b, p, &err);
        assert_ok(r, &err);
        r = fixture_wait_notify(&fx, "0/4", POLL_MS);
        ck_assert_msg(r == 0, "no STATUS= with 0/4 after release (last: \"%s\")", fx.last_status);
}
END_TEST

/* ---- restart (the fixture's kill/start, as other bus tests use it) ------------------- */

/* Lease ids of a path "/org/padata/Broker/lease/<id>". */
static uint64_t path_id(const char *path) {
        const char *p = strrchr(path, '/');

        ck_assert_ptr_nonnull(p);
        return strtoull(p + 1, NULL, 10);
}

/* A paddd killed and started again keeps the books: leases of clients still connected are
 * adopted again with their paths, owners and grants, those of clients that left meanwhile
 * are dropped, no grant afterwards goes over the cap, and no path names a new lease. */
START_TEST(test_restart) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *a = NULL, *b = NULL, *gone = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pa = NULL, *pb = NULL, *pgone = NULL, *pnew = NULL;
        const Opt tagged[] = { OPT_S("tag", "vm one"), OPT_END };
        uint32_t g = 0;
        int r;

        start(CONF_CAP(8));
        a = bus_open();
        b = bus_open();
        gone = bus_open();
        assert_ok(acquire(a, 4, -1, tagged, &err, &pa, &g), &err);
        assert_ok(acquire(b, 2, -1, NULL, &err, &pb, &g), &err);
        assert_ok(acquire(gone, 1, -1, NULL, &err, &pgone, &g), &err);
        ck_assert_uint_eq(broker_u(a, "InUse"), 7);

        ck_assert_int_eq(fixture_kill_paddd(&fx), 0);
        ck_assert_int_lt(ping(a), 0);
        gone = sd_bus_flush_close_unref(gone);  /* leaves while paddd is down */
        ck_assert_int_eq(fixture_start_paddd(&fx), 0);

        ck_assert_uint_eq(broker_u(a, "InUse"), 6);
        ck_assert_uint_eq(broker_u(a, "Leases"), 2);
        ck_assert_uint_eq(lease_u(a, pa, "Granted"), 4);
        ck_assert_uint_eq(lease_u(a, pa, "Pid"), (uint32_t) getpid());
        ck_assert_int_lt(get_u(a, pgone, LEASE_INTERFACE, "Granted", &g), 0);

        /* The cap holds against the adopted leases: 2 of 8 are free. */
        r = acquire(a, 8, -1, NULL, &err, &pnew, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 2);
        ck_assert_uint_gt(path_id(pnew), path_id(pgone));
        ck_assert_uint_eq(broker_u(a, "InUse"), 8);

        /* Owners keep their leases: b may not touch a's, each may shrink and release its own. */
        r = lease_release(b, pa, &err);
        ck_assert_int_lt(r, 0);
        ck_assert_str_eq(err.name, SD_BUS_ERROR_ACCESS_DENIED);
        sd_bus_error_free(&err);
        r = lease_shrink(a, pa, 1, &err, &g);
        assert_ok(r, &err);
        ck_assert_uint_eq(g, 3);
        assert_ok(lease_release(b, pb, &err), &err);
        ck_assert_uint_eq(broker_u(a, "InUse"), 5);

        /* A second restart finds the shrink and the release in the books. */
        ck_assert_int_eq(fixture_kill_paddd(&fx), 0);
        ck_assert_int_eq(fixture_start_paddd(&fx), 0);
        ck_assert_uint_eq(broker_u(a, "InUse"), 5);
        ck_assert_uint_eq(lease_u(a, pa, "Granted"), 3);
        ck_assert_int_lt(get_u(a, pb, LEASE_INTERFACE, "Granted", &g), 0);
        assert_ok(lease_release(a, pa, &err), &err);
        assert_ok(lease_release(a, pnew, &err), &err);
        ck_assert_uint_eq(broker_u(a, "InUse"), 0);
        assert_alive(a);
}
END_TEST

/* SIGTERM paddd and wait for it to exit. */
static void sigterm_paddd(void) {
        long long deadline = fixture_now_ms() + POLL_MS;

        ck_assert_int_eq(kill(fx.paddd_pid, SIGTERM), 0);
        while (fixture_paddd_alive(&fx) && fixture_now_ms() < deadline)
                fixture_sleep_ms(10);
        ck_assert_msg(!fixture_paddd_alive(&fx), "paddd still runs after SIGTERM");
}

/* A clean stop keeps the books too (systemctl restart). */
START_TEST(test_restart_after_sigterm) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *a = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *pa = NULL;
        uint32_t g = 0;

        start(CONF_CAP(4));
        a = bus_open();
        assert_ok(acquire(a, 3, -1, NULL, &err, &pa, &g), &err);
        sigterm_paddd();
        ck_assert_int_eq(fixture_start_paddd(&fx), 0);
        ck_assert_uint_eq(broker_u(a, "InUse"), 3);
        ck_assert_uint_eq(lease_u(a, pa, "Granted"), 3);
}
END_TEST

/* SIGTERM: STOPPING=1, then a clean exit. */
START_TEST(test_sigterm) {
        start(CONF_CAP(4));
        sigterm_paddd();
        ck_assert_int_eq(fixture_wait_notify(&fx, "STOPPING=1", POLL_MS), 0);
        ck_assert_msg(WIFEXITED(fx.paddd_exit_status) && WEXITSTATUS(fx.paddd_exit_status) == 0,
                      "paddd ended with status 0x%x", fx.paddd_exit_status);
}
END_TEST

/* ---- main -------------------------------------------------------------------------- */

static char tmp_base[64];

/* One TCase per test, so CK_RUN_CASE=<name> runs one of them. */
static void add_case(Suite *s, const char *name, const TTest *test) {
        TCase *tc = tcase_create(name);

        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test);
        suite_add_tcase(s, tc);
}
#define ADD_CASE(s, t) add_case((s), #t, test_##t)

static Suite *bus_suite(void) {
        Suite *s = suite_create("bus");

        ADD_CASE(s, acquire_release);
        ADD_CASE(s, shrink);
        ADD_CASE(s, concurrent_caps);
        ADD_CASE(s, wait_fifo);
        ADD_CASE(s, wait_timeout);
        ADD_CASE(s, sigkill_returns_slots);
        if (geteuid() == 0 && getgrgid(NOBODY) && streq(getgrgid(NOBODY)->gr_name, "nogroup")) {
                ADD_CASE(s, nonroot_denied);
                ADD_CASE(s, admin_group);
                ADD_CASE(s, list_leases_bounded);
        } else
                fprintf(stderr, "not root, or no group nogroup (65534): the setuid-nobody tests are left out\n");
        ADD_CASE(s, malformed_args);
        ADD_CASE(s, set_quota);
        ADD_CASE(s, ttl);
        ADD_CASE(s, ttl_expired_signal);
        ADD_CASE(s, never_fits);
        ADD_CASE(s, max_wait);
        ADD_CASE(s, acquire_no_reply);
        ADD_CASE(s, set_quota_bounds);
        ADD_CASE(s, config_fifo);
        ADD_CASE(s, statistics);
        ADD_CASE(s, reload);
        ADD_CASE(s, properties_changed);
        ADD_CASE(s, introspection);
        ADD_CASE(s, busctl);
        ADD_CASE(s, notify_status);
        ADD_CASE(s, restart);
        ADD_CASE(s, restart_after_sigterm);
        ADD_CASE(s, sigterm);
        return s;
}

int main(void) {
        const char *paddd = getenv("PADDD_BIN"), *dbus = getenv("DBUS_DAEMON");
        int r;

        if (!paddd || access(paddd, X_OK) < 0) {
                printf("test-bus: PADDD_BIN is not set to an executable paddd: skipping\n");
                return 77;
        }
        if (dbus ? access(dbus, X_OK) < 0 : system("command -v dbus-daemon >/dev/null 2>&1") != 0) {
                printf("test-bus: no dbus-daemon binary: skipping\n");
                return 77;
        }
        /* A mode-0755 folder: a setuid-nobody client must reach the sockets inside. */
        snprintf(tmp_base, sizeof tmp_base, "/tmp/paddd-test-bus-XXXXXX");
        if (!mkdtemp(tmp_base) || chmod(tmp_base, 0755) < 0) {
                perror("test-bus: mkdtemp");
                return EXIT_FAILURE;
        }
        setenv("PADDD_FIXTURE_TMPDIR", tmp_base, 1);

        r = check_run_suite(bus_suite());

        fixture_remove_base(tmp_base);
        return r;
}
