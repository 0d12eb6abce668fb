/* stress.c: the shared part of the stress suite (see stress.h): main() and its checks, the
 * fixture with dbus-daemon's default limits, uids from the user database, the broker calls,
 * the books snapshot and its invariants, the agents, and the figures. Nothing here asserts
 * but stress_start and the TCase plumbing: agents (forked, not Check processes) use the
 * rest. */
#define _GNU_SOURCE
#include "stress.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus-open.h"
#include "check-run.h"
#include "util.h"

Fixture stress_fx;

/* ---- running -------------------------------------------------------------------------- */

long long stress_now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

unsigned stress_seed(const char *what) {
        const char *e = getenv("PADDD_STRESS_SEED");
        unsigned seed = e && *e ? (unsigned) strtoul(e, NULL, 0) : (unsigned) stress_now_us();

        printf("%s: seed %u (PADDD_STRESS_SEED=%u replays it)\n", what, seed, seed);
        fflush(stdout);
        return seed;
}

static void teardown(void) {
        fixture_stop(&stress_fx);
}

void stress_start(const char *config) {
        FixtureOptions o = { .config_text = config, .default_bus_limits = true };
        int r = fixture_start_with(&stress_fx, &o);

        ck_assert_msg(r >= 0, "fixture_start_with: %s", strerror(-r));
}

/* One TCase per test, named after it without "test_", so CK_RUN_CASE picks one. */
static Suite *cases_suite(const char *name, const TTest *const *tests, size_t n, int timeout_s) {
        Suite *s = suite_create(name);

        for (size_t i = 0; i < n; i++) {
                const char *cn = tests[i]->name;
                TCase *tc = tcase_create(strncmp(cn, "test_", 5) == 0 ? cn + 5 : cn);

                tcase_add_checked_fixture(tc, NULL, teardown);
                tcase_set_timeout(tc, timeout_s);
                tcase_add_test(tc, tests[i]);
                suite_add_tcase(s, tc);
        }
        return s;
}

static int can_run(const char *name, size_t n_uids) {
        uid_t uids[256];
        const char *paddd = getenv("PADDD_BIN"), *dbus = getenv("DBUS_DAEMON");

        if (!paddd || access(paddd, X_OK) < 0) {
                printf("%s: PADDD_BIN is not set to an executable paddd: skipping\n", name);
                return 77;
        }
        if (dbus ? access(dbus, X_OK) < 0 : system("command -v dbus-daemon >/dev/null 2>&1") != 0) {
                printf("%s: no dbus-daemon binary: skipping\n", name);
                return 77;
        }
        if (geteuid() != 0) {
                printf("%s: not root: clients of several uids need setuid: skipping\n", name);
                return 77;
        }
        if (n_uids > ELEMENTSOF(uids) || stress_pick_uids(uids, n_uids) < n_uids) {
                printf("%s: fewer than %zu non-root uids in the user database: skipping\n", name, n_uids);
                return 77;
        }
        return 0;
}

/* dbus-daemon raises its own limit only towards 65536, and only where it may. */
static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int stress_main_tests(const char *name, size_t n_uids, const TTest *const *tests, size_t n_tests, int timeout_s) {
        char base[64];
        int r;

        r = can_run(name, n_uids);
        if (r != 0)
                return r;
        raise_nofile();
        /* Mode 0755: clients of other uids must reach the sockets inside. */
        snprintf(base, sizeof base, "/tmp/paddd-%s-XXXXXX", name);
        if (!mkdtemp(base) || chmod(base, 0755) < 0) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        setenv("PADDD_FIXTURE_TMPDIR", base, 1);
        setvbuf(stdout, NULL, _IOLBF, 0);

        r = check_run_suite(cases_suite(name, tests, n_tests, timeout_s));

        fixture_remove_base(base);
        return r;
}

/* ---- uids ------------------------------------------------------------------------------- */

static int uid_cmp(const void *a, const void *b) {
        uid_t x = *(const uid_t *) a, y = *(const uid_t *) b;

        return x < y ? -1 : x > y;
}

size_t stress_pick_uids(uid_t *ret, size_t n) {
        uid_t all[4096];
        size_t m = 0, k = 0;
        struct passwd *pw;

        setpwent();
        while ((pw = getpwent()) && m < ELEMENTSOF(all))
                if (pw->pw_uid != 0)
                        all[m++] = pw->pw_uid;
        endpwent();
        qsort(all, m, sizeof all[0], uid_cmp);
        for (size_t i = 0; i < m && k < n; i++)
                if (k == 0 || ret[k - 1] != all[i])
                        ret[k++] = all[i];
        return k;
}

int stress_become(uid_t uid) {
        struct passwd *pw = getpwuid(uid);
        gid_t gid = pw ? pw->pw_gid : (gid_t) uid;

        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                return -errno;
        return geteuid() == uid ? 0 : -EPERM;
}

/* ---- bus calls ---------------------------------------------------------------------------- */

static int fail_with(sd_bus_error *e, int r, char *err) {
        if (err)
                snprintf(err, STRESS_ERROR_MAX, "%s", sd_bus_error_is_set(e) ? e->name : strerror(-r));
        sd_bus_error_free(e);
        return r;
}

int sbus_open(const char *address, sd_bus **ret) {
        sd_bus *b = NULL;
        const char *unique;
        int r;

        r = bus_open_spec(address, NULL, &b);
        if (r < 0)
                return r;
        r = sd_bus_set_method_call_timeout(b, STRESS_CALL_USEC);
        /* The unique name arrives with Hello's reply: the bus took the connection. */
        if (r >= 0)
                r = sd_bus_get_unique_name(b, &unique);
        if (r < 0) {
                sd_bus_flush_close_unref(b);
                return r;
        }
        *ret = b;
        return 0;
}

int sbus_acquire_message(sd_bus *b, const SAcquire *a, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(b, &m, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                           "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "ui", a->helpers, a->node);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0)
                r = sd_bus_message_append(m, "{sv}{sv}", "min", "u", a->min, "wait_usec", "t", a->wait_usec);
        if (r >= 0 && a->strict_node)
                r = sd_bus_message_append(m, "{sv}", "strict_node", "b", 1);
        if (r >= 0 && a->ttl_usec > 0)
                r = sd_bus_message_append(m, "{sv}", "ttl_usec", "t", a->ttl_usec);
        if (r >= 0 && a->tag)
                r = sd_bus_message_append(m, "{sv}", "tag", "s", a->tag);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* A wait longer than paddd's longest (MaxWaitUSec's bound is 3600 s, its default 20 s)
 * is bounded here at 30 s, so that the sums below cannot wrap. */
#define STRESS_WAIT_BOUND_USEC (30 * 1000000ULL)

int sbus_acquire_with(sd_bus *b, const SAcquire *a, char *path, uint32_t *granted, char *err) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *p;
        int r;

        r = sbus_acquire_message(b, a, &m);
        if (r >= 0)
                r = sd_bus_call(b, m, STRESS_CALL_USEC + MIN(a->wait_usec, STRESS_WAIT_BOUND_USEC), &e, &reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "ou", &p, granted);
        if (r < 0)
                return fail_with(&e, r, err);
        snprintf(path, STRESS_PATH_MAX, "%s", p);
        return 0;
}

int sbus_acquire(sd_bus *b, uint32_t helpers, uint32_t min, uint64_t wait_usec, const char *tag,
                 char *path, uint32_t *granted, char *err) {
        SAcquire a = { .helpers = helpers, .node = -1, .min = min, .wait_usec = wait_usec, .tag = tag };

        return sbus_acquire_with(b, &a, path, granted, err);
}

int sbus_acquire_async(sd_bus *b, uint32_t helpers, uint32_t min, uint64_t wait_usec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint64_t cookie;
        int r;

        r = sbus_acquire_message(b, &(SAcquire) { .helpers = helpers, .node = -1, .min = min,
                                                  .wait_usec = wait_usec }, &m);
        /* With a cookie to return, sd_bus_send keeps the call one that expects a reply (paddd
         * refuses an Acquire that expects none). */
        if (r >= 0)
                r = sd_bus_send(b, m, &cookie);
        if (r >= 0)
                r = sd_bus_flush(b);
        return r;
}

int sbus_release(sd_bus *b, const char *path, char *err) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Release", &e, NULL, "");

        return r < 0 ? fail_with(&e, r, err) : 0;
}

int sbus_shrink(sd_bus *b, const char *path, uint32_t count, uint32_t *granted, char *err) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Shrink", &e, &reply, "u", count);
        if (r >= 0)
                r = sd_bus_message_read(reply, "u", granted);
        return r < 0 ? fail_with(&e, r, err) : 0;
}

int sbus_lease_u(sd_bus *b, const char *path, const char *property, uint32_t *ret, char *err) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, property, &e, 'u', ret);

        return r < 0 ? fail_with(&e, r, err) : 0;
}

int sbus_ping(sd_bus *b) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                   &e, NULL, "");

        sd_bus_error_free(&e);
        return r;
}

static int add_probe_match(sd_bus *b, unsigned i, bool *refused) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        char rule[96];
        int r;

        snprintf(rule, sizeof rule, "type='signal',path='/org/padata/StressProbe/%u'", i);
        r = sd_bus_call_method(b, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "AddMatch", &e, NULL, "s", rule);
        *refused = r < 0 && sd_bus_error_has_name(&e, SD_BUS_ERROR_LIMITS_EXCEEDED);
        sd_bus_error_free(&e);
        return *refused ? 0 : r;
}

int stress_match_rules_allowed(const char *address, unsigned limit) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        bool refused = false;
        unsigned i;
        int r = sbus_open(address, &b);

        for (i = 0; r >= 0 && !refused && i <= limit; i++)
                r = add_probe_match(b, i, &refused);
        if (r < 0)
                return r;
        return refused ? (int) i - 1 : (int) i;
}

/* ---- the broker's books ----------------------------------------------------------------- */

static int read_nodes(sd_bus_message *m, Books *k) {
        SNode n;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(iuuu)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(iuuu)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(iuuu)", &n.node, &n.cpus, &n.max, &n.in_use)) > 0)
                if (k->n_nodes < ELEMENTSOF(k->nodes))
                        k->nodes[k->n_nodes++] = n;
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r;
}

static int read_property(sd_bus_message *m, const char *name, Books *k) {
        static const struct { const char *name; size_t offset; } u[] = {
                { "MaxHelpers", offsetof(Books, max_helpers) },
                { "InUse", offsetof(Books, in_use) },
                { "Leases", offsetof(Books, leases) },
                { "Waiting", offsetof(Books, waiting) },
        };

        for (size_t i = 0; i < ELEMENTSOF(u); i++)
                if (streq(name, u[i].name))
                        return sd_bus_message_read(m, "v", "u", (uint32_t *) ((char *) k + u[i].offset));
        if (streq(name, "Nodes"))
                return read_nodes(m, k);
        return sd_bus_message_skip(m, "v");
}

int books_read_counts(sd_bus *b, Books *k) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *name;
        int r;

        k->n_nodes = 0;
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Properties",
                               "GetAll", &e, &reply, "s", BROKER_INTERFACE);
        sd_bus_error_free(&e);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = read_property(reply, name, k);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        return r < 0 ? r : 0;
}

static int read_list(sd_bus *b, Books *k) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path, *owner, *tag;
        SLease l;
        size_t cap = 0;
        int r;

        k->list_sent_ms = fixture_now_ms();
        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &e, &reply, "");
        sd_bus_error_free(&e);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ouuuss)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ouuuss)", &path, &l.uid, &l.pid, &l.granted,
                                                  &owner, &tag)) > 0) {
                if (k->n_list == cap) {
                        SLease *n = realloc(k->list, (cap = cap ? cap * 2 : 64) * sizeof *n);
                        if (!n)
                                return -ENOMEM;
                        k->list = n;
                }
                snprintf(l.path, sizeof l.path, "%s", path);
                snprintf(l.owner, sizeof l.owner, "%s", owner);
                snprintf(l.tag, sizeof l.tag, "%s", tag);
                k->list[k->n_list++] = l;
        }
        return r < 0 ? r : 0;
}

int books_read(sd_bus *b, Books *k) {
        int r;

        books_done(k);
        r = books_read_counts(b, k);
        return r < 0 ? r : read_list(b, k);
}

void books_done(Books *k) {
        free(k->list);
        memset(k, 0, sizeof *k);
}

const SLease *books_find(const Books *k, const char *path) {
        for (size_t i = 0; i < k->n_list; i++)
                if (streq(k->list[i].path, path))
                        return &k->list[i];
        return NULL;
}

uint32_t books_list_sum(const Books *k) {
        uint32_t sum = 0;

        for (size_t i = 0; i < k->n_list; i++)
                sum += k->list[i].granted;
        return sum;
}

_printf_(4, 5) static void violation(unsigned *n, char *msg, size_t size, const char *fmt, ...) {
        va_list ap;

        if ((*n)++ > 0)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, size, fmt, ap);
        va_end(ap);
}

unsigned books_violations(const Books *k, bool exact, char *msg, size_t size) {
        uint32_t node_sum = 0, list_sum = books_list_sum(k);
        unsigned n = 0;

        if (k->in_use > k->max_helpers)
                violation(&n, msg, size, "InUse %u > MaxHelpers %u", k->in_use, k->max_helpers);
        for (size_t i = 0; i < k->n_nodes; i++) {
                node_sum += k->nodes[i].in_use;
                if (k->nodes[i].in_use > k->nodes[i].max)
                        violation(&n, msg, size, "node %d uses %u > its cap %u", k->nodes[i].node,
                                  k->nodes[i].in_use, k->nodes[i].max);
        }
        if (node_sum != k->in_use)
                violation(&n, msg, size, "the nodes use %u, InUse is %u", node_sum, k->in_use);
        if (list_sum > k->max_helpers)
                violation(&n, msg, size, "ListLeases grants %u > MaxHelpers %u", list_sum, k->max_helpers);
        if (exact && list_sum != k->in_use)
                violation(&n, msg, size, "ListLeases grants %u, InUse is %u", list_sum, k->in_use);
        if (exact && k->n_list != k->leases)
                violation(&n, msg, size, "ListLeases lists %zu, Leases is %u", k->n_list, k->leases);
        return n;
}

bool books_wait_waiting(sd_bus *b, Books *k, uint32_t waiting) {
        long long deadline = fixture_now_ms() + STRESS_SETTLE_MS;

        for (;;) {
                int r = books_read_counts(b, k);
                if (r >= 0 && k->waiting == waiting)
                        return true;
                if (fixture_now_ms() > deadline)
                        return false;
                fixture_sleep_ms(5);
        }
}

void books_wait_empty(sd_bus *b, Books *k) {
        long long deadline = fixture_now_ms() + STRESS_SETTLE_MS;

        for (;;) {
                int r = books_read_counts(b, k);
                if ((r >= 0 && k->in_use == 0 && k->leases == 0 && k->waiting == 0) ||
                    fixture_now_ms() > deadline)
                        return;
                fixture_sleep_ms(5);
        }
}

/* ---- agents ------------------------------------------------------------------------------ */

typedef struct AgentState {
        AgentConns conns;
        int fd;
} AgentState;

static sd_bus *agent_bus(AgentState *s, unsigned conn, AgentReply *rep) {
        if (conn >= s->conns.n || !s->conns.bus[conn]) {
                rep->r = -EBADSLT;
                snprintf(rep->error, sizeof rep->error, "no connection %u", conn);
                return NULL;
        }
        return s->conns.bus[conn];
}

static void agent_open(AgentState *s, const AgentCmd *c, AgentReply *rep) {
        const char *unique = "";

        if (c->conn >= s->conns.n) {
                rep->r = -EBADSLT;
                return;
        }
        s->conns.bus[c->conn] = sd_bus_flush_close_unref(s->conns.bus[c->conn]);
        rep->r = sbus_open(s->conns.address, &s->conns.bus[c->conn]);
        if (rep->r < 0)
                snprintf(rep->error, sizeof rep->error, "connecting: %s", strerror(-rep->r));
        else
                (void) sd_bus_get_unique_name(s->conns.bus[c->conn], &unique);
        snprintf(rep->unique, sizeof rep->unique, "%s", unique);
}

static void agent_do(AgentState *s, const AgentCmd *c, AgentReply *rep) {
        sd_bus *b;

        if (c->op == AGENT_OPEN)
                return agent_open(s, c, rep);
        if (c->op == AGENT_RUN) {
                rep->r = c->fn(&s->conns, c->arg, rep->error);
                return;
        }
        b = agent_bus(s, c->conn, rep);
        if (!b)
                return;
        switch (c->op) {
        case AGENT_ACQUIRE: {
                SAcquire a = { .helpers = c->helpers, .min = c->min, .wait_usec = c->wait_usec,
                               .node = c->on_node ? c->node : -1, .strict_node = c->strict_node,
                               .ttl_usec = c->ttl_usec, .tag = c->tag[0] ? c->tag : NULL };

                rep->r = sbus_acquire_with(b, &a, rep->path, &rep->granted, rep->error);
                break;
        }
        case AGENT_ACQUIRE_ASYNC:
                rep->r = sbus_acquire_async(b, c->helpers, c->min, c->wait_usec);
                break;
        case AGENT_RELEASE:
                rep->r = sbus_release(b, c->path, rep->error);
                break;
        case AGENT_SHRINK:
                rep->r = sbus_shrink(b, c->path, c->count, &rep->granted, rep->error);
                break;
        case AGENT_GRANTED:
                rep->r = sbus_lease_u(b, c->path, "Granted", &rep->granted, rep->error);
                break;
        case AGENT_CLOSE:
                s->conns.bus[c->conn] = sd_bus_flush_close_unref(b);
                rep->r = 0;
                break;
        default:
                rep->r = -EINVAL;
        }
}

_Noreturn static void agent_main(AgentState *s, uid_t uid) {
        AgentCmd c;
        int r = stress_become(uid);

        /* A change of uid clears the parent-death signal: set it again. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
                AgentReply rep = { .r = r };
                ssize_t n = recv(s->fd, &c, sizeof c, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n != (ssize_t) sizeof c)
                        _exit(0);       /* the test closed its end */
                if (r < 0)
                        snprintf(rep.error, sizeof rep.error, "becoming uid %u: %s", (unsigned) uid, strerror(-r));
                else
                        agent_do(s, &c, &rep);
                if (send(s->fd, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t) sizeof rep)
                        _exit(0);
        }
}

int agent_spawn(Agent *a, uid_t uid, unsigned max_conns, const char *address) {
        pid_t parent = getpid();
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        a->uid = uid;
        a->pid = fork();
        if (a->pid < 0) {
                close(sv[0]);
                close(sv[1]);
                return -errno;
        }
        if (a->pid == 0) {
                AgentState s = { .fd = sv[1], .conns = { .n = max_conns, .address = address } };

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                /* Only our end of our socket: other agents' ends would keep them alive. */
                if (dup2(sv[1], 3) < 0)
                        _exit(127);
                s.fd = 3;
                close_range(4, ~0U, 0);
                s.conns.bus = calloc(max_conns, sizeof(sd_bus *));
                if (!s.conns.bus)
                        _exit(127);
                agent_main(&s, uid);
        }
        close(sv[1]);
        a->fd = sv[0];
        return 0;
}

int agent_send(Agent *a, const AgentCmd *c) {
        return send(a->fd, c, sizeof *c, MSG_NOSIGNAL) == (ssize_t) sizeof *c ? 0 : -EPIPE;
}

int agent_recv(Agent *a, AgentReply *r, int timeout_ms) {
        struct pollfd p = { .fd = a->fd, .events = POLLIN };
        ssize_t n;
        int k;

        do
                k = poll(&p, 1, timeout_ms);
        while (k < 0 && errno == EINTR);
        if (k == 0)
                return -ETIMEDOUT;
        n = recv(a->fd, r, sizeof *r, MSG_DONTWAIT);
        return n == (ssize_t) sizeof *r ? 0 : -EPIPE;
}

int agent_call(Agent *a, const AgentCmd *c, AgentReply *r) {
        int k = agent_send(a, c);

        return k < 0 ? k : agent_recv(a, r, STRESS_SETTLE_MS + (int) (MIN(c->wait_usec, STRESS_WAIT_BOUND_USEC) / 1000));
}

void agent_kill(Agent *a) {
        if (a->pid > 0) {
                kill(a->pid, SIGKILL);
                waitpid(a->pid, NULL, 0);
        }
        a->pid = -1;
        a->fd = safe_close(a->fd);
}

void agent_stop(Agent *a) {
        long long deadline = fixture_now_ms() + STRESS_SETTLE_MS;

        a->fd = safe_close(a->fd);
        while (a->pid > 0 && fixture_now_ms() < deadline) {
                if (waitpid(a->pid, NULL, WNOHANG) == a->pid)
                        a->pid = -1;
                else
                        fixture_sleep_ms(2);
        }
        agent_kill(a);
}

/* ---- figures ---------------------------------------------------------------------------- */

static int double_cmp(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

double stress_percentile(double *v, size_t n, double p) {
        size_t rank;

        if (n == 0)
                return 0;
        qsort(v, n, sizeof *v, double_cmp);
        rank = (size_t) (p / 100.0 * (double) n + 0.999999);
        return v[rank == 0 ? 0 : MIN(rank, n) - 1];
}

long stress_vm_hwm_kib(pid_t pid) {
        char path[64], line[256];
        long kib = -ENOENT;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

int stress_log_find(Fixture *f, const char *needle, char *buf, size_t size) {
        char path[400], line[1024];
        int n = 0;
        FILE *fp;

        snprintf(path, sizeof path, "%s/paddd.log", f->dir);
        buf[0] = '\0';
        fp = fopen(path, "re");
        if (!fp)
                return -errno;
        while (fgets(line, sizeof line, fp))
                if (strcasestr(line, needle)) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(buf, size, "%s", line);
                        n++;
                }
        fclose(fp);
        return n;
}

void *stress_shared(size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        return p == MAP_FAILED ? NULL : p;
}
