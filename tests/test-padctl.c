/* test-padctl.c: padctl, the admin CLI and job runner, tested as admins and scripts use it:
 * the real binary ($PADCTL_BIN) run as a subprocess with --bus pointed at a private
 * dbus-daemon and a real paddd (tests/fixture.c), its stdout, stderr and exit status
 * captured and checked against what the test reads itself over sd-bus. Covers `status`
 * (quotas, every node, every lease with its owner), `set-quota` and `reload` (as root and,
 * refused, as nobody; a broken config), `acquire` (held, released, SIGINT), usage errors and
 * --version, `monitor` (its lines on a pipe follow changes made on the bus; SIGINT ends it
 * with 0; paddd going away and coming back is shown), the CLI conventions (global options after the command, --no-legend, `status
 * -o json` read back with python3's json module), `pmem-init` (content verified byte by byte) and `hugetlb-fallocate` on a real
 * hugetlbfs mount compared with util-linux fallocate(1). Fixture folders live under one
 * folder main() makes and removes; main() also undoes the hugetlb set-up if a test died
 * before it could. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "check-run.h"
#include "fixture.h"

/* Only libsystemd and the fixture are linked: the few helpers needed, here. */
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static void freep(void *p) {
        free(*(void **) p);
}

static void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}



#define NOBODY 65534
#define POLL_MS 10000           /* deadline for state that must settle (not a speed assertion) */
#define EXIT_GUARD_MS 25000     /* a hang guard for padctl runs, below --hold 30 */

/* MaxHelpersPerNode high so that node caps do not hide the machine-wide one. */
#define CONF_BASE "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nMaxLeasesPerClient=8\n"

#define HUGETLB_FILE_SIZE (8ULL << 20)

static Fixture fx;
static char tmp_base[256];
static char hugetlb_state[320];         /* "MOUNTPOINT PAGES_ADDED" while hugetlb is set up */

static void teardown(void) {
        fixture_stop(&fx);
}

static void start(const char *config) {
        int r = fixture_start(&fx, config);

        ck_assert_msg(r >= 0, "fixture_start: %s", strerror(-r));
}

/* ---- running padctl ------------------------------------------------------------------------ */

typedef struct Run {
        pid_t pid;
        int out_fd, err_fd;     /* memfds the child writes to */
        int status;             /* wait status */
        char out[16384];
        char err[8192];
} Run;

static void read_all(int fd, char *buf, size_t size) {
        size_t got = 0;
        ssize_t n;

        while (got < size - 1 && (n = pread(fd, buf + got, size - 1 - got, (off_t) got)) > 0)
                got += (size_t) n;
        buf[got] = '\0';
}

/* Start `padctl --bus ADDRESS args...` (as nobody if asked) with stdout and stderr in
 * memfds, stdin from /dev/null, default signal handling. */
static void spawn(Run *run, bool as_nobody, const char *const *args) {
        const char *bin = getenv("PADCTL_BIN");
        const char *argv[32];
        size_t n = 0;

        memset(run, 0, sizeof(*run));
        argv[n++] = bin;
        argv[n++] = "--bus";
        argv[n++] = fx.address[0] ? fx.address : "unix:path=/nonexistent";
        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        argv[n] = NULL;

        run->out_fd = memfd_create("padctl-stdout", MFD_CLOEXEC);
        run->err_fd = memfd_create("padctl-stderr", MFD_CLOEXEC);
        ck_assert_msg(run->out_fd >= 0 && run->err_fd >= 0, "memfd_create: %m");
        fflush(NULL);
        run->pid = fork();
        ck_assert_msg(run->pid >= 0, "fork: %m");
        if (run->pid == 0) {
                sigset_t none;
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(run->out_fd, STDOUT_FILENO) < 0 ||
                    dup2(run->err_fd, STDERR_FILENO) < 0)
                        _exit(127);
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                if (as_nobody && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)) {
                        fprintf(stderr, "test: dropping to nobody: %m\n");
                        _exit(127);
                }
                execv(bin, (char *const *) argv);
                fprintf(stderr, "test: exec %s: %m\n", bin);
                _exit(127);
        }
}

/* Wait for the child (SIGKILL after EXIT_GUARD_MS: a hang guard, reported as such) and
 * read what it wrote. Returns true if it exited by itself. */
static bool finish(Run *run) {
        long long deadline = fixture_now_ms() + EXIT_GUARD_MS;
        bool exited = true;

        for (;;) {
                pid_t r = waitpid(run->pid, &run->status, WNOHANG);
                if (r == run->pid)
                        break;
                ck_assert_msg(r == 0 || errno == EINTR, "waitpid: %m");
                if (fixture_now_ms() >= deadline && exited) {
                        kill(run->pid, SIGKILL);
                        exited = false;
                }
                fixture_sleep_ms(5);
        }
        read_all(run->out_fd, run->out, sizeof(run->out));
        read_all(run->err_fd, run->err, sizeof(run->err));
        close(run->out_fd);
        close(run->err_fd);
        return exited;
}

/* Exit status, or -1 if killed by a signal (after printing why). */
static int exit_code(const Run *run) {
        if (WIFEXITED(run->status))
                return WEXITSTATUS(run->status);
        fprintf(stderr, "padctl was killed by signal %d\n", WTERMSIG(run->status));
        return -1;
}

static int run_padctl(Run *run, bool as_nobody, const char *const *args) {
        spawn(run, as_nobody, args);
        ck_assert_msg(finish(run), "padctl did not exit; stdout:\n%s\nstderr:\n%s", run->out, run->err);
        return exit_code(run);
}

#define PADCTL(run, ...) run_padctl((run), false, (const char *const[]) { __VA_ARGS__, NULL })
#define PADCTL_NOBODY(run, ...) run_padctl((run), true, (const char *const[]) { __VA_ARGS__, NULL })

/* The exit code must be `code`; show padctl's output otherwise. */
#define ASSERT_EXIT(run, rc, code)                                                                \
        ck_assert_msg((rc) == (code), "padctl exited %d, expected %d\nstdout:\n%s\nstderr:\n%s", \
                      (rc), (code), (run)->out, (run)->err)
#define ASSERT_CONTAINS(hay, needle, what) \
        ck_assert_msg(strstr((hay), (needle)), "%s lacks \"%s\":\n%s", (what), (needle), (hay))

/* ---- the broker over sd-bus ------------------------------------------------------------------ */

static sd_bus *bus_open(void) {
        sd_bus *b = NULL;
        int r = bus_open_spec(fx.address, NULL, &b);

        ck_assert_msg(r >= 0, "connecting to %s: %s", fx.address, strerror(-r));
        return b;
}

static uint32_t broker_u(sd_bus *b, const char *prop) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        uint32_t v = 0;
        int r = sd_bus_get_property_trivial(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, prop, &err, 'u', &v);

        ck_assert_msg(r >= 0, "reading %s: %s", prop, err.name ? err.name : strerror(-r));
        return v;
}

static char *broker_s(sd_bus *b, const char *prop) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        char *v = NULL;
        int r = sd_bus_get_property_string(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, prop, &err, &v);

        ck_assert_msg(r >= 0, "reading %s: %s", prop, err.name ? err.name : strerror(-r));
        return v;
}

typedef struct NodeInfo {
        int32_t node;
        uint32_t cpus, max, in_use;
} NodeInfo;

static size_t get_nodes(sd_bus *b, NodeInfo *ret, size_t max) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        size_t n = 0;
        NodeInfo x;
        int r;

        r = sd_bus_get_property(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Nodes", &err, &m, "a(iuuu)");
        ck_assert_msg(r >= 0, "reading Nodes: %s", err.name ? err.name : strerror(-r));
        ck_assert_int_ge(sd_bus_message_enter_container(m, 'a', "(iuuu)"), 0);
        while ((r = sd_bus_message_read(m, "(iuuu)", &x.node, &x.cpus, &x.max, &x.in_use)) > 0) {
                ck_assert_uint_lt(n, max);
                ret[n++] = x;
        }
        ck_assert_int_ge(r, 0);
        ck_assert_uint_gt(n, 0);
        return n;
}

static const NodeInfo *node_find(const NodeInfo *nodes, size_t n, int node) {
        for (size_t i = 0; i < n; i++)
                if (nodes[i].node == node)
                        return &nodes[i];
        return NULL;
}

typedef struct LeaseInfo {
        char path[128];
        uint32_t uid, pid, granted;
        char owner[64];
        char tag[80];
} LeaseInfo;

static size_t list_leases(sd_bus *b, LeaseInfo *ret, size_t max) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *path, *owner, *tag;
        uint32_t uid, pid, granted;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &err, &m, "");
        ck_assert_msg(r >= 0, "ListLeases: %s", err.name ? err.name : strerror(-r));
        ck_assert_int_ge(sd_bus_message_enter_container(m, 'a', "(ouuuss)"), 0);
        while ((r = sd_bus_message_read(m, "(ouuuss)", &path, &uid, &pid, &granted, &owner, &tag)) > 0) {
                ck_assert_uint_lt(n, max);
                ret[n] = (LeaseInfo) { .uid = uid, .pid = pid, .granted = granted };
                snprintf(ret[n].path, sizeof(ret[n].path), "%s", path);
                snprintf(ret[n].owner, sizeof(ret[n].owner), "%s", owner);
                snprintf(ret[n].tag, sizeof(ret[n].tag), "%s", tag);
                n++;
        }
        ck_assert_int_ge(r, 0);
        return n;
}

/* The lease tagged `tag`, or NULL. */
static const LeaseInfo *lease_by_tag(const LeaseInfo *l, size_t n, const char *tag) {
        for (size_t i = 0; i < n; i++)
                if (streq(l[i].tag, tag))
                        return &l[i];
        return NULL;
}

/* Poll ListLeases until a lease tagged `tag` is there (want true) or gone (want false). */
static bool wait_lease(sd_bus *b, const char *tag, bool want, LeaseInfo *ret) {
        long long deadline = fixture_now_ms() + POLL_MS;
        LeaseInfo l[64];

        for (;;) {
                size_t n = list_leases(b, l, ELEMENTSOF(l));
                const LeaseInfo *x = lease_by_tag(l, n, tag);

                if (x && ret)
                        *ret = *x;
                if (!!x == want)
                        return true;
                if (fixture_now_ms() >= deadline)
                        return false;
                fixture_sleep_ms(5);
        }
}

/* Acquire from the test's own connection; returns granted, *ret_path the lease path. */
static uint32_t acquire(sd_bus *b, uint32_t helpers, const char *tag, char *ret_path, size_t len) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        const char *path;
        uint32_t granted;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &err, &reply, "uia{sv}", helpers,
                               -1, 1, "tag", "s", tag);
        ck_assert_msg(r >= 0, "Acquire: %s: %s", err.name ? err.name : strerror(-r), err.message ? err.message : "");
        ck_assert_int_ge(sd_bus_message_read(reply, "ou", &path, &granted), 0);
        snprintf(ret_path, len, "%s", path);
        return granted;
}

/* ---- reading padctl's tables -------------------------------------------------------------------- */

/* The rows of the table under the line `title` (the header row skipped), up to a blank line,
 * each split into at most max_cols blank-separated cells. Returns the number of rows. */
typedef struct Row {
        char buf[512];
        char *cell[16];
        size_t n;
} Row;

static size_t table_rows(const char *out, const char *title, Row *rows, size_t max_rows) {
        const char *p = out;
        size_t n = 0;

        for (;;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);

                if (len == strlen(title) && strncmp(p, title, len) == 0) {
                        p = nl ? nl + 1 : p + len;
                        break;
                }
                if (!nl)
                        return 0;
                p = nl + 1;
        }
        p = strchr(p, '\n');            /* the header row */
        if (!p)
                return 0;
        for (p++; *p && *p != '\n' && n < max_rows; n++) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                Row *r = &rows[n];
                char *save = NULL;

                snprintf(r->buf, sizeof(r->buf), "%.*s", (int) len, p);
                r->n = 0;
                for (char *t = strtok_r(r->buf, " ", &save); t && r->n < ELEMENTSOF(r->cell);
                     t = strtok_r(NULL, " ", &save))
                        r->cell[r->n++] = t;
                p = nl ? nl + 1 : p + len;
        }
        return n;
}

static unsigned cell_u(const Row *r, size_t i) {
        char *end;
        unsigned long v;

        ck_assert_uint_lt(i, r->n);
        v = strtoul(r->cell[i], &end, 10);
        ck_assert_msg(*r->cell[i] && !*end, "cell '%s' is not a number", r->cell[i]);
        return (unsigned) v;
}

/* ---- status -------------------------------------------------------------------------------------- */

static void read_comm(char *buf, size_t len) {
        FILE *f = fopen("/proc/self/comm", "re");

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(buf, (int) len, f));
        buf[strcspn(buf, "\n")] = 0;
        fclose(f);
}

START_TEST(test_status) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        NodeInfo nodes[64];
        Row rows[64];
        char tag[64], path[128], user[64], comm[32];
        const char *hdr, *unique = NULL, *slash;
        unsigned lent, quota, n_leases;
        size_t nn, nr, i;
        uint32_t granted;
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();

        /* No lease yet: padctl says so. */
        rc = PADCTL(&run, "status");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_msg(run.err[0] == '\0', "status wrote to stderr: %s", run.err);
        ASSERT_CONTAINS(run.out, "No leases.", "status without leases");

        snprintf(tag, sizeof(tag), "padctl-test-%d", (int) getpid());
        granted = acquire(b, 3, tag, path, sizeof(path));
        ck_assert_uint_gt(granted, 0);

        rc = PADCTL(&run, "status");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_msg(run.err[0] == '\0', "status wrote to stderr: %s", run.err);

        /* "paddd VERSION on BUS: LENT of QUOTA helpers lent, N lease(s), ..." */
        hdr = strstr(run.out, ": ");
        ck_assert_msg(hdr && sscanf(hdr + 2, "%u of %u helpers lent, %u lease", &lent, &quota, &n_leases) == 3,
                      "no usage line in:\n%s", run.out);
        ck_assert_uint_eq(quota, broker_u(b, "MaxHelpers"));
        ck_assert_uint_eq(quota, 4);
        ck_assert_uint_eq(lent, broker_u(b, "InUse"));
        ck_assert_uint_eq(lent, granted);
        ck_assert_uint_eq(n_leases, broker_u(b, "Leases"));
        ck_assert_uint_eq(n_leases, 1);

        /* Every node of the Nodes property, with the same numbers, and nothing else. */
        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        nr = table_rows(run.out, "Nodes:", rows, ELEMENTSOF(rows));
        ck_assert_msg(nr == nn, "status lists %zu nodes, the Nodes property %zu:\n%s", nr, nn, run.out);
        for (i = 0; i < nr; i++) {
                const NodeInfo *x;

                ck_assert_msg(rows[i].n == 5, "node row %zu has %zu cells:\n%s", i, rows[i].n, run.out);
                x = node_find(nodes, nn, (int) cell_u(&rows[i], 0));
                ck_assert_msg(x, "status lists node %s, Nodes does not", rows[i].cell[0]);
                ck_assert_uint_eq(cell_u(&rows[i], 1), x->cpus);
                ck_assert_uint_eq(cell_u(&rows[i], 2), x->max);
                ck_assert_uint_eq(cell_u(&rows[i], 3), x->in_use);
                ck_assert_uint_eq(cell_u(&rows[i], 4), x->max > x->in_use ? x->max - x->in_use : 0);
        }

        /* The lease: LEASE USER PID PROCESS GRANTED PLACEMENT BUS-NAME TAG. */
        nr = table_rows(run.out, "Leases:", rows, ELEMENTSOF(rows));
        ck_assert_msg(nr == 1, "status lists %zu leases, expected 1:\n%s", nr, run.out);
        ck_assert_msg(rows[0].n >= 8, "lease row has %zu cells:\n%s", rows[0].n, run.out);
        slash = strrchr(path, '/');
        ck_assert_str_eq(rows[0].cell[0], slash + 1);
        struct passwd *pw = getpwuid(getuid());
        if (pw)
                snprintf(user, sizeof(user), "%s", pw->pw_name);
        else
                snprintf(user, sizeof(user), "%u", (unsigned) getuid());
        ck_assert_str_eq(rows[0].cell[1], user);
        ck_assert_uint_eq(cell_u(&rows[0], 2), (unsigned) getpid());
        read_comm(comm, sizeof(comm));
        if (!strchr(comm, ' '))
                ck_assert_str_eq(rows[0].cell[3], comm);
        ck_assert_uint_eq(cell_u(&rows[0], rows[0].n - 4), granted);
        ck_assert_int_ge(sd_bus_get_unique_name(b, &unique), 0);
        ck_assert_str_eq(rows[0].cell[rows[0].n - 2], unique);
        ck_assert_str_eq(rows[0].cell[rows[0].n - 1], tag);
}
END_TEST

/* ---- set-quota ----------------------------------------------------------------------------------- */

START_TEST(test_set_quota) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        NodeInfo nodes[64];
        const NodeInfo *x;
        size_t nn;
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();

        ck_assert_uint_ne(broker_u(b, "MaxHelpers"), 2);
        rc = PADCTL(&run, "set-quota", "machine", "2");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 2);

        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        x = node_find(nodes, nn, 0);
        ck_assert_msg(x, "this machine has no node 0");
        ck_assert_uint_ne(x->max, 1);
        rc = PADCTL(&run, "set-quota", "0", "1");
        ASSERT_EXIT(&run, rc, 0);
        nn = get_nodes(b, nodes, ELEMENTSOF(nodes));
        x = node_find(nodes, nn, 0);
        ck_assert_ptr_nonnull(x);
        ck_assert_uint_eq(x->max, 1);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 2);

        /* A node that does not exist: the broker's error name, nothing changed. */
        ck_assert_ptr_null(node_find(nodes, nn, 99));
        rc = PADCTL(&run, "set-quota", "99", "1");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, BROKER_ERROR_NO_SUCH_NODE, "stderr of set-quota 99 1");
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 2);
        ck_assert_uint_eq(get_nodes(b, nodes, ELEMENTSOF(nodes)), nn);
}
END_TEST

/* ---- as nobody: refused, nothing changed ------------------------------------------------------- */

START_TEST(test_nobody_denied) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        NodeInfo before[64], after[64];
        size_t nb, na;
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();
        nb = get_nodes(b, before, ELEMENTSOF(before));

        rc = PADCTL_NOBODY(&run, "set-quota", "machine", "1");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, SD_BUS_ERROR_ACCESS_DENIED, "stderr of set-quota as nobody");
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);

        rc = PADCTL_NOBODY(&run, "set-quota", "0", "1");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, SD_BUS_ERROR_ACCESS_DENIED, "stderr of set-quota 0 as nobody");
        na = get_nodes(b, after, ELEMENTSOF(after));
        ck_assert_uint_eq(na, nb);
        for (size_t i = 0; i < na; i++) {
                ck_assert_int_eq(after[i].node, before[i].node);
                ck_assert_uint_eq(after[i].max, before[i].max);
        }

        /* A reload as nobody must not pick up the new file. */
        ck_assert_int_eq(fixture_write_config(&fx, "[Broker]\nMaxHelpers=3\nMaxHelpersPerNode=4096\n"), 0);
        rc = PADCTL_NOBODY(&run, "reload");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, SD_BUS_ERROR_ACCESS_DENIED, "stderr of reload as nobody");
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 4);

        /* The same calls as root work (so the refusals above were about the caller). */
        rc = PADCTL(&run, "reload");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 3);
}
END_TEST

/* ---- reload -------------------------------------------------------------------------------------- */

START_TEST(test_reload) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        char where[400];
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();

        ck_assert_int_eq(fixture_write_config(&fx, "[Broker]\nMaxHelpers=6\nMaxHelpersPerNode=4096\n"), 0);
        rc = PADCTL(&run, "reload");
        ASSERT_EXIT(&run, rc, 0);
        ASSERT_CONTAINS(run.out, "reloaded", "stdout of reload");
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 6);

        /* Line 3 is wrong: the message names file:line; the old quotas stay. */
        ck_assert_int_eq(fixture_write_config(&fx, "[Broker]\nMaxHelpers=2\nNoSuchKey=1\n"), 0);
        rc = PADCTL(&run, "reload");
        ASSERT_EXIT(&run, rc, 1);
        snprintf(where, sizeof(where), "%s:3:", fx.config_path);
        ASSERT_CONTAINS(run.err, where, "stderr of a reload of a broken config");
        ASSERT_CONTAINS(run.err, "NoSuchKey", "stderr of a reload of a broken config");
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 6);
        ck_assert_msg(fixture_paddd_alive(&fx), "paddd died on a broken config");
}
END_TEST

/* ---- acquire ------------------------------------------------------------------------------------- */

START_TEST(test_acquire_hold) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        char tag[64];
        LeaseInfo l;
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();
        snprintf(tag, sizeof(tag), "x%d", (int) getpid());

        spawn(&run, false, (const char *const[]) { "acquire", "2", "--hold", "1", "--tag", tag, NULL });
        ck_assert_msg(wait_lease(b, tag, true, &l), "padctl's lease never showed up in ListLeases");
        ck_assert_uint_eq(l.pid, (uint32_t) run.pid);
        ck_assert_uint_eq(l.uid, (uint32_t) getuid());
        ck_assert_uint_le(l.granted, 2);
        ck_assert_uint_eq(broker_u(b, "InUse"), l.granted);

        ck_assert_msg(finish(&run), "padctl acquire --hold 1 did not exit");
        rc = exit_code(&run);
        ASSERT_EXIT(&run, rc, 0);
        ASSERT_CONTAINS(run.out, l.path, "stdout of acquire");
        ASSERT_CONTAINS(run.out, "Released.", "stdout of acquire");
        ck_assert_msg(wait_lease(b, tag, false, NULL), "padctl's lease outlived it");
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
}
END_TEST

/* Ctrl-C: padctl documents "Ctrl-C (or SIGTERM) releases it, exit status 0". */
START_TEST(test_acquire_sigint) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        long long deadline;
        char tag[64], part[sizeof(((Run *) 0)->out)];
        LeaseInfo l;
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();
        snprintf(tag, sizeof(tag), "sigint-%d", (int) getpid());

        spawn(&run, false, (const char *const[]) { "acquire", "1", "--hold", "30", "--tag", tag, NULL });
        ck_assert_msg(wait_lease(b, tag, true, &l), "padctl's lease never showed up in ListLeases");
        ck_assert_uint_eq(l.pid, (uint32_t) run.pid);
        /* It says it holds the lease once it is ready for Ctrl-C. */
        deadline = fixture_now_ms() + POLL_MS;
        for (;;) {
                read_all(run.out_fd, part, sizeof(part));
                if (strstr(part, "Holding") || fixture_now_ms() >= deadline)
                        break;
                fixture_sleep_ms(5);
        }
        ASSERT_CONTAINS(part, "Holding", "stdout of acquire before SIGINT");

        ck_assert_int_eq(kill(run.pid, SIGINT), 0);
        ck_assert_msg(finish(&run), "padctl acquire --hold 30 did not exit on SIGINT");
        rc = exit_code(&run);
        ASSERT_EXIT(&run, rc, 0);
        ASSERT_CONTAINS(run.out, "Released.", "stdout of acquire after SIGINT");
        ck_assert_msg(wait_lease(b, tag, false, NULL), "the lease outlived padctl");
        ck_assert_uint_eq(broker_u(b, "InUse"), 0);
        ck_assert_uint_eq(broker_u(b, "Leases"), 0);
}
END_TEST

/* ---- monitor ---------------------------------------------------------------------------------- */

typedef struct Pipe {
        pid_t pid;
        int fd;                 /* the read end of padctl's stdout */
        char buf[65536];
        size_t len;
        char line[65536];       /* the last line read: the one matched, or the last one seen */
} Pipe;

/* `padctl --bus ADDRESS args...` with stdout a pipe, stderr to ours. */
static void spawn_pipe(Pipe *p, const char *const *args) {
        const char *argv[16] = { getenv("PADCTL_BIN"), "--bus", fx.address };
        size_t n = 3;
        int fds[2];

        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        memset(p, 0, sizeof(*p));
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        fflush(NULL);
        p->pid = fork();
        ck_assert_int_ge(p->pid, 0);
        if (p->pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGINT, SIG_DFL);
                if (dup2(fds[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        close(fds[1]);
        p->fd = fds[0];
}

static bool line_has_all(const char *line, const char *const *needles) {
        for (size_t i = 0; needles[i]; i++)
                if (!strstr(line, needles[i]))
                        return false;
        return true;
}

/* The next whole line with every needle (earlier lines are skipped), into p->line; false
 * when none came within POLL_MS (p->line then holds the last line that came). */
static bool pipe_wait_line(Pipe *p, const char *const *needles) {
        long long deadline = fixture_now_ms() + POLL_MS;

        for (;;) {
                char *nl;

                while ((nl = memchr(p->buf, '\n', p->len))) {
                        size_t n = (size_t) (nl - p->buf);
                        bool hit;

                        *nl = '\0';
                        hit = line_has_all(p->buf, needles);
                        snprintf(p->line, sizeof(p->line), "%s", p->buf);
                        memmove(p->buf, nl + 1, p->len - n - 1);
                        p->len -= n + 1;
                        if (hit)
                                return true;
                }
                long long left = deadline - fixture_now_ms();
                struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
                ssize_t got;

                if (left <= 0 || poll(&pfd, 1, (int) left) <= 0)
                        return false;
                got = read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
                if (got <= 0)
                        return false;
                p->len += (size_t) got;
        }
}

#define WAIT_LINE(p, ...)                                                                        \
        ck_assert_msg(pipe_wait_line((p), (const char *const[]) { __VA_ARGS__, NULL }),          \
                      "padctl monitor wrote no line with: %s; the last one:\n%s", #__VA_ARGS__, (p)->line)

static void lease_release(sd_bus *b, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Release", &err, NULL, "");

        ck_assert_msg(r >= 0, "Release: %s", err.name ? err.name : strerror(-r));
}

START_TEST(test_monitor) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error err = SD_BUS_ERROR_NULL;
        char path[128], tag[64], uid[32], tagf[80], owner[128];
        const char *unique;
        static Pipe p;
        int status;

        start(CONF_BASE);
        b = bus_open();
        snprintf(tag, sizeof(tag), "mon-%d", (int) getpid());
        snprintf(tagf, sizeof(tagf), ",tag=%s", tag);
        snprintf(uid, sizeof(uid), ",uid=%u,", (unsigned) getuid());

        spawn_pipe(&p, (const char *const[]) { "monitor", NULL });
        WAIT_LINE(&p, "max_helpers=4 in_use=0 leases=0 waiting=0", " node=0:0/", " grants=0");
        ck_assert_msg(!strstr(p.line, " lease="), "a lease before any: %s", p.line);

        /* A grant: the lease with its owner, uid, pid and tag, the use, the statistics. */
        ck_assert_uint_eq(acquire(b, 2, tag, path, sizeof(path)), 2);
        WAIT_LINE(&p, "in_use=2 leases=1", tagf);
        ASSERT_CONTAINS(p.line, uid, "monitor line");
        ASSERT_CONTAINS(p.line, ",granted=2,", "monitor line");
        ASSERT_CONTAINS(p.line, strrchr(path, '/') + 1, "monitor line");
        ck_assert_int_ge(sd_bus_get_unique_name(b, &unique), 0);
        snprintf(owner, sizeof(owner), ",owner=%s,", unique);
        ASSERT_CONTAINS(p.line, owner, "monitor line");
        ASSERT_CONTAINS(p.line, " grants=1", "monitor line");
        ASSERT_CONTAINS(p.line, " helpers_granted=2", "monitor line");

        /* A quota change. */
        ck_assert_int_ge(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "SetQuota", &err, NULL,
                                            "iu", -1, 3), 0);
        WAIT_LINE(&p, "max_helpers=3 in_use=2 leases=1");

        /* The release: no lease left. */
        lease_release(b, path);
        WAIT_LINE(&p, "max_helpers=3 in_use=0 leases=0", " releases=1");
        ck_assert_msg(!strstr(p.line, tagf), "the released lease is still shown: %s", p.line);

        /* paddd gone: said so; back: its state again (the config's quota, the counts anew). */
        ck_assert_int_eq(fixture_kill_paddd(&fx), 0);
        WAIT_LINE(&p, "paddd=absent", "not running");
        ck_assert_int_eq(fixture_start_paddd(&fx), 0);
        WAIT_LINE(&p, "max_helpers=4 in_use=0 leases=0", " grants=0");

        ck_assert_int_eq(kill(p.pid, SIGINT), 0);
        ck_assert_int_eq(waitpid(p.pid, &status, 0), p.pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "padctl monitor ended with status 0x%x", status);
        close(p.fd);
}
END_TEST

/* ---- usage errors, --version ------------------------------------------------------------------ */

static void assert_usage_error(Run *run, int rc, const char *needle) {
        ASSERT_EXIT(run, rc, 2);
        ASSERT_CONTAINS(run->err, needle, "usage error message");
        ASSERT_CONTAINS(run->err, "--help", "usage error message");
        ck_assert_msg(run->out[0] == '\0', "a usage error wrote to stdout: %s", run->out);
}

START_TEST(test_usage_errors) {
        char file[320];
        Run run;
        int fd, rc;

        /* No broker needed: these fail before padctl connects. */
        snprintf(file, sizeof(file), "%s/usage-XXXXXX", tmp_base);
        fd = mkstemp(file);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, 4096), 0);
        close(fd);

        rc = PADCTL(&run, "frobnicate");
        assert_usage_error(&run, rc, "unknown command 'frobnicate'");
        rc = PADCTL(&run, "pmem-init", file, "--size", "12Q");
        assert_usage_error(&run, rc, "12Q");
        rc = PADCTL(&run, "acquire", "12Q");
        assert_usage_error(&run, rc, "12Q");
        rc = PADCTL(&run, "--frobnicate", "status");
        assert_usage_error(&run, rc, "unknown option '--frobnicate'");
        rc = PADCTL(&run, "acquire", "1", "--frobnicate");
        assert_usage_error(&run, rc, "unknown option '--frobnicate'");
        rc = PADCTL(&run, "set-quota", "machine");
        assert_usage_error(&run, rc, "missing argument");
        rc = PADCTL(&run, "pmem-init", file, "--pattern", "256");
        assert_usage_error(&run, rc, "256");
        unlink(file);
}
END_TEST

/* ---- CLI conventions ----------------------------------------------------------------------------- */

/* python3 (PADDD_PYTHON3, else on PATH) runs code with args; its exit status. */
static int run_python(const char *code, const char *const *args) {
        const char *py = getenv("PADDD_PYTHON3");
        const char *argv[16] = { py ? py : "python3", "-c", code };
        size_t n = 3;
        int status;
        pid_t pid;

        for (size_t i = 0; args[i]; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        fflush(NULL);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define JSON_CHECK                                                                                   \
        "import json, sys\n"                                                                         \
        "d = json.load(open(sys.argv[1]))\n"                                                         \
        "want = dict(max_helpers=int(sys.argv[2]), in_use=int(sys.argv[3]), n_leases=1)\n"          \
        "bad = [k for k, v in want.items() if d[k] != v]\n"                                          \
        "l = [x for x in d['leases'] if x['tag'] == sys.argv[4]]\n"                                  \
        "ok = not bad and len(l) == 1 and l[0]['granted'] == int(sys.argv[3])\n"                    \
        "ok = ok and l[0]['uid'] == int(sys.argv[5]) and l[0]['owner'] == sys.argv[6]\n"             \
        "ok = ok and sum(n['in_use'] for n in d['nodes']) == d['in_use']\n"                           \
        "ok = ok and sum(p['helpers'] for p in l[0]['placement']) == l[0]['granted']\n"              \
        "sys.exit(0 if ok else print(d, bad) or 1)\n"

START_TEST(test_conventions) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        char path[128], file[400], max[16], in_use[16], uid[16];
        const char *unique;
        Run run;
        int rc, fd;

        start(CONF_BASE);
        b = bus_open();
        ck_assert_uint_eq(acquire(b, 2, "conventions", path, sizeof(path)), 2);
        ck_assert_int_ge(sd_bus_get_unique_name(b, &unique), 0);

        /* Global options after the command: --quiet silences, a later --bus is the one used. */
        rc = PADCTL(&run, "set-quota", "machine", "3", "--quiet");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_msg(run.out[0] == '\0', "--quiet after the command still printed: %s", run.out);
        ck_assert_uint_eq(broker_u(b, "MaxHelpers"), 3);
        rc = PADCTL(&run, "status", "--bus", "unix:path=/nonexistent/bus");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, "/nonexistent/bus", "stderr of status on a missing bus");

        /* --no-legend: the rows alone. */
        rc = PADCTL(&run, "status", "--no-legend");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_msg(!strstr(run.out, "NODE") && !strstr(run.out, "LEASE") && !strstr(run.out, "paddd "),
                      "--no-legend printed a legend:\n%s", run.out);
        ASSERT_CONTAINS(run.out, "conventions", "status --no-legend");
        rc = PADCTL(&run, "status");
        ASSERT_CONTAINS(run.out, "NODE", "status");

        /* -o json: valid JSON with what the bus says. */
        rc = PADCTL(&run, "status", "-o", "json");
        ASSERT_EXIT(&run, rc, 0);
        snprintf(file, sizeof(file), "%s/status.json", fx.dir);
        fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, run.out, strlen(run.out)), (ssize_t) strlen(run.out));
        close(fd);
        snprintf(max, sizeof(max), "%u", broker_u(b, "MaxHelpers"));
        snprintf(in_use, sizeof(in_use), "%u", broker_u(b, "InUse"));
        snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        rc = run_python(JSON_CHECK, (const char *const[]) { file, max, in_use, "conventions", uid, unique, NULL });
        ck_assert_msg(rc == 0, "status -o json is not what the bus says (python exit %d):\n%s", rc, run.out);

        /* A bad format is a usage error that names it. */
        rc = PADCTL(&run, "status", "-o", "yaml");
        assert_usage_error(&run, rc, "'yaml'");
}
END_TEST

START_TEST(test_version) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *b = NULL;
        _cleanup_free_ char *version = NULL;
        char want[128];
        Run run;
        int rc;

        start(CONF_BASE);
        b = bus_open();
        version = broker_s(b, "Version");
        ck_assert_str_ne(version, "");

        rc = PADCTL(&run, "--version");
        ASSERT_EXIT(&run, rc, 0);
        snprintf(want, sizeof(want), "padctl %s\n", version);
        ck_assert_str_eq(run.out, want);
}
END_TEST

/* ---- pmem-init ----------------------------------------------------------------------------------- */

#define PMEM_FILE_SIZE (6u << 20)

static uint8_t pmem_seed(size_t i) {
        return (uint8_t) (i * 7 + 3);
}

/* Every byte of file: `pattern` within [off, off + len), the seed elsewhere. */
static void assert_content(const char *file, size_t off, size_t len, uint8_t pattern) {
        _cleanup_free_ uint8_t *buf = malloc(PMEM_FILE_SIZE);
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
        struct stat st;

        ck_assert_ptr_nonnull(buf);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(st.st_size, PMEM_FILE_SIZE);
        ck_assert_int_eq(pread(fd, buf, PMEM_FILE_SIZE, 0), PMEM_FILE_SIZE);
        /* Check's assertions are slow (each is a checkpoint): compare first, assert once. */
        for (size_t i = 0; i < PMEM_FILE_SIZE; i++) {
                uint8_t want = i >= off && i - off < len ? pattern : pmem_seed(i);
                if (buf[i] != want)
                        ck_abort_msg("byte %zu is 0x%02x, expected 0x%02x", i, buf[i], want);
        }
}

START_TEST(test_pmem_init) {
        _cleanup_free_ uint8_t *seed = malloc(PMEM_FILE_SIZE);
        char file[320];
        const size_t off = 5000, len = (3u << 20) + 123;
        char off_s[32], len_s[32];
        Run run;
        int fd, rc;

        start(CONF_BASE);
        ck_assert_ptr_nonnull(seed);
        for (size_t i = 0; i < PMEM_FILE_SIZE; i++)
                seed[i] = pmem_seed(i);
        snprintf(file, sizeof(file), "%s/pmem-XXXXXX", fx.dir);
        fd = mkstemp(file);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, seed, PMEM_FILE_SIZE, 0), PMEM_FILE_SIZE);
        close(fd);

        /* An unaligned range across several 2 MiB chunks, with a helper. */
        snprintf(off_s, sizeof(off_s), "%zu", off);
        snprintf(len_s, sizeof(len_s), "%zu", len);
        rc = PADCTL(&run, "pmem-init", file, "--pattern", "0xA5", "--offset", off_s, "--size", len_s, "--helpers",
                    "1");
        ASSERT_EXIT(&run, rc, 0);
        assert_content(file, off, len, 0xA5);
        ASSERT_CONTAINS(run.out, "pmem-init: ", "pmem-init summary");
        ASSERT_CONTAINS(run.out, "GiB/s", "pmem-init summary");
        ASSERT_CONTAINS(run.out, "durability: ", "pmem-init summary");
        ASSERT_CONTAINS(run.out, "pattern 0xa5", "pmem-init summary");

        /* --quiet: the same work, nothing on stdout. Decimal pattern, sizes with suffixes. */
        rc = PADCTL(&run, "--quiet", "pmem-init", file, "--pattern", "90", "--offset", "1M", "--size", "2M");
        ASSERT_EXIT(&run, rc, 0);
        ck_assert_msg(run.out[0] == '\0', "--quiet printed: %s", run.out);
        /* The first fill outside [1M, 3M) is still there. */
        {
                _cleanup_free_ uint8_t *buf = malloc(PMEM_FILE_SIZE);
                _cleanup_close_ int rfd = open(file, O_RDONLY | O_CLOEXEC);

                ck_assert_ptr_nonnull(buf);
                ck_assert_int_ge(rfd, 0);
                ck_assert_int_eq(pread(rfd, buf, PMEM_FILE_SIZE, 0), PMEM_FILE_SIZE);
                for (size_t i = 0; i < PMEM_FILE_SIZE; i++) {
                        uint8_t want = i >= (1u << 20) && i < (3u << 20)        ? 90
                                       : i >= off && i - off < len              ? 0xA5
                                                                                : pmem_seed(i);
                        if (buf[i] != want)
                                ck_abort_msg("byte %zu is 0x%02x, expected 0x%02x", i, buf[i], want);
                }
        }

        /* A range past the end of the file is refused, the file untouched. */
        ck_assert_int_eq((fd = open(file, O_WRONLY | O_CLOEXEC)) >= 0, 1);
        ck_assert_int_eq(pwrite(fd, seed, PMEM_FILE_SIZE, 0), PMEM_FILE_SIZE);
        close(fd);
        rc = PADCTL(&run, "pmem-init", file, "--offset", "5M", "--size", "2M");
        ASSERT_EXIT(&run, rc, 1);
        ASSERT_CONTAINS(run.err, "past the end", "stderr of pmem-init past the end");
        assert_content(file, 0, 0, 0);

        /* No broker on the bus given: the job runs all the same, and padctl says why. */
        rc = PADCTL(&run, "--bus", "unix:path=/nonexistent/bus", "pmem-init", file, "--pattern", "7", "--helpers", "2");
        ASSERT_EXIT(&run, rc, 0);
        assert_content(file, 0, PMEM_FILE_SIZE, 7);
        ASSERT_CONTAINS(run.err, "padctl: no broker on unix:path=/nonexistent/bus (cannot connect to",
                        "stderr of pmem-init without a broker");
        ASSERT_CONTAINS(run.out, "no broker", "pmem-init summary without a broker");
        unlink(file);
}
END_TEST

/* ---- hugetlb-fallocate on a real hugetlbfs --------------------------------------------------- */

static int read_ulong(const char *path, unsigned long *ret) {
        FILE *f = fopen(path, "re");
        int ok;

        if (!f)
                return -errno;
        ok = fscanf(f, "%lu", ret) == 1;
        fclose(f);
        return ok ? 0 : -EIO;
}

static int write_ulong(const char *path, unsigned long v) {
        FILE *f = fopen(path, "we");
        int r = 0;

        if (!f)
                return -errno;
        if (fprintf(f, "%lu\n", v) < 0)
                r = -EIO;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        return r;
}

static unsigned long huge_page_size(void) {
        FILE *f = fopen("/proc/meminfo", "re");
        char line[128];
        unsigned long kb = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
                        break;
        fclose(f);
        return kb * 1024;
}

/* Undo what hugetlb_setup did: unmount, and give back the pages we added (only ours: a
 * concurrent user of the pool may have raised it too; if it is already lower, leave it). */
static void hugetlb_restore(const char *mnt, unsigned long added) {
        unsigned long now;

        if (mnt[0]) {
                if (umount2(mnt, 0) < 0)
                        umount2(mnt, MNT_DETACH);
                rmdir(mnt);
        }
        if (added && read_ulong("/proc/sys/vm/nr_hugepages", &now) == 0 && now >= added)
                (void) write_ulong("/proc/sys/vm/nr_hugepages", now - added);
        unlink(hugetlb_state);
}

/* The safety net main() runs: the test left its set-up behind (a timeout, a crash). */
static void hugetlb_restore_leftover(void) {
        char mnt[300] = "";
        unsigned long added = 0;
        FILE *f = fopen(hugetlb_state, "re");

        if (!f)
                return;
        if (fscanf(f, "%299s %lu", mnt, &added) >= 1) {
                fprintf(stderr, "test-padctl: undoing a leftover hugetlb set-up (%s, %lu pages)\n", mnt, added);
                hugetlb_restore(mnt, added);
        }
        fclose(f);
        unlink(hugetlb_state);
}

static int hugetlb_record(const char *mnt, unsigned long added) {
        FILE *f = fopen(hugetlb_state, "we");

        if (!f)
                return -errno;
        fprintf(f, "%s %lu\n", mnt, added);
        return fclose(f) == 0 ? 0 : -errno;
}

static int fail_msg(char *msg, size_t size, const char *fmt, ...) _printf_(3, 4);
static int fail_msg(char *msg, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, size, fmt, ap);
        va_end(ap);
        return -1;
}

static int run_fallocate(const char *file, char *msg, size_t size) {
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return fail_msg(msg, size, "fork: %m");
        if (pid == 0) {
                execlp("fallocate", "fallocate", "-l", "8M", file, (char *) NULL);
                fprintf(stderr, "test: exec fallocate: %m\n");
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail_msg(msg, size, "util-linux fallocate -l 8M %s failed (status 0x%x)", file, status);
        return 0;
}

static long mount_free_pages(const char *mnt) {
        struct statfs s;

        return statfs(mnt, &s) == 0 ? (long) s.f_bfree : -1;
}

/* The body, between set-up and restore: no Check assertion may leave it early (Check ends a
 * failed test's process at once). Returns 0, or -1 with msg set. */
static int hugetlb_check(const char *mnt, unsigned long pages, char *msg, size_t size) {
        char ours[400], twin[400], misaligned[400];
        struct stat a, b;
        long free0, free1, free2;
        Run run;
        int rc;

        snprintf(ours, sizeof(ours), "%s/padctl", mnt);
        snprintf(twin, sizeof(twin), "%s/twin", mnt);
        snprintf(misaligned, sizeof(misaligned), "%s/misaligned", mnt);

        free0 = mount_free_pages(mnt);
        spawn(&run, false, (const char *const[]) { "hugetlb-fallocate", ours, "8M", NULL });
        if (!finish(&run))
                return fail_msg(msg, size, "padctl hugetlb-fallocate did not exit");
        rc = exit_code(&run);
        if (rc != 0)
                return fail_msg(msg, size, "padctl hugetlb-fallocate exited %d:\n%s%s", rc, run.out, run.err);
        if (!strstr(run.out, "hugetlb-fallocate: ") || !strstr(run.out, "GiB/s"))
                return fail_msg(msg, size, "no summary from hugetlb-fallocate:\n%s", run.out);
        free1 = mount_free_pages(mnt);
        if (run_fallocate(twin, msg, size) < 0)
                return -1;
        free2 = mount_free_pages(mnt);

        if (stat(ours, &a) < 0 || stat(twin, &b) < 0)
                return fail_msg(msg, size, "stat: %m");
        if ((unsigned long long) a.st_size != HUGETLB_FILE_SIZE)
                return fail_msg(msg, size, "padctl's file is %lld bytes, not 8 MiB", (long long) a.st_size);
        if (a.st_size != b.st_size || a.st_blocks != b.st_blocks)
                return fail_msg(msg, size, "padctl: size %lld, %lld blocks; fallocate(1): size %lld, %lld blocks",
                            (long long) a.st_size, (long long) a.st_blocks, (long long) b.st_size,
                            (long long) b.st_blocks);
        /* Both took the same number of pages from the mount, all of them real. */
        if (free0 < 0 || free0 - free1 != (long) pages || free1 - free2 != (long) pages)
                return fail_msg(msg, size, "free pages on the mount: %ld, after padctl %ld, after fallocate(1) %ld; "
                            "expected steps of %lu", free0, free1, free2, pages);

        /* A misaligned offset is a usage error, and leaves no file and no page behind. */
        spawn(&run, false, (const char *const[]) { "hugetlb-fallocate", misaligned, "8M", "--offset", "4096", NULL });
        if (!finish(&run))
                return fail_msg(msg, size, "padctl hugetlb-fallocate --offset 4096 did not exit");
        rc = exit_code(&run);
        if (rc != 2 || !strstr(run.err, "--offset") || !strstr(run.err, "huge page size"))
                return fail_msg(msg, size, "misaligned --offset: exit %d, stderr:\n%s", rc, run.err);
        if (run.out[0])
                return fail_msg(msg, size, "misaligned --offset printed on stdout: %s", run.out);
        if (access(misaligned, F_OK) == 0)
                return fail_msg(msg, size, "misaligned --offset left %s behind", misaligned);
        if (mount_free_pages(mnt) != free2)
                return fail_msg(msg, size, "misaligned --offset took pages");
        return 0;
}

START_TEST(test_hugetlb_fallocate) {
        char mnt[300] = "", opts[128], msg[4096] = "";
        unsigned long page = huge_page_size(), pages, orig = 0, now = 0, added = 0;
        int r = -1;

        if (geteuid() != 0) {
                fprintf(stderr, "test-padctl: hugetlb_fallocate skipped: needs root (nr_hugepages, mount)\n");
                return;
        }
        ck_assert_msg(page > 0 && page <= HUGETLB_FILE_SIZE, "huge page size %lu is unusable here", page);
        pages = HUGETLB_FILE_SIZE / page;
        start(CONF_BASE);

        ck_assert_int_eq(read_ulong("/proc/sys/vm/nr_hugepages", &orig), 0);
        snprintf(mnt, sizeof(mnt), "%s/hugetlbfs-XXXXXX", tmp_base);
        ck_assert_ptr_nonnull(mkdtemp(mnt));
        /* Recorded first: whatever happens below, main() can undo it. */
        ck_assert_int_eq(hugetlb_record(mnt, 0), 0);

        if (write_ulong("/proc/sys/vm/nr_hugepages", orig + 2 * pages) < 0)
                fail_msg(msg, sizeof(msg), "cannot raise nr_hugepages: %m");
        else if (read_ulong("/proc/sys/vm/nr_hugepages", &now) < 0 || (added = now > orig ? now - orig : 0,
                                                                        hugetlb_record(mnt, added) < 0))
                fail_msg(msg, sizeof(msg), "cannot read nr_hugepages back");
        else if (added < 2 * pages)
                fail_msg(msg, sizeof(msg), "the kernel gave %lu of the %lu huge pages asked for", added, 2 * pages);
        else if (snprintf(opts, sizeof(opts), "pagesize=%luK,size=%lu", page / 1024, 2 * pages * page) < 0 ||
                 mount("paddd-test", mnt, "hugetlbfs", MS_NOSUID | MS_NODEV, opts) < 0)
                fail_msg(msg, sizeof(msg), "mount -t hugetlbfs -o %s %s: %m", opts, mnt);
        else
                r = hugetlb_check(mnt, pages, msg, sizeof(msg));

        hugetlb_restore(mnt, added);
        ck_assert_msg(r == 0, "%s", msg);
        ck_assert_int_eq(read_ulong("/proc/sys/vm/nr_hugepages", &now), 0);
        ck_assert_msg(access(mnt, F_OK) < 0, "%s is still there", mnt);
}
END_TEST

/* ---- main ---------------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        remove(path);
        return 0;
}

/* One TCase per test, so CK_RUN_CASE=<name> runs one of them. */
static void add_case(Suite *s, const char *name, const TTest *test) {
        TCase *tc = tcase_create(name);

        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test);
        suite_add_tcase(s, tc);
}
#define ADD_CASE(s, t) add_case((s), #t, test_##t)

static Suite *padctl_suite(void) {
        Suite *s = suite_create("bus");

        ADD_CASE(s, status);
        ADD_CASE(s, set_quota);
        if (geteuid() == 0)
                ADD_CASE(s, nobody_denied);
        else
                fprintf(stderr, "test-padctl: not root: the setuid-nobody test is left out\n");
        ADD_CASE(s, reload);
        ADD_CASE(s, acquire_hold);
        ADD_CASE(s, acquire_sigint);
        ADD_CASE(s, monitor);
        ADD_CASE(s, usage_errors);
        ADD_CASE(s, version);
        ADD_CASE(s, conventions);
        ADD_CASE(s, pmem_init);
        ADD_CASE(s, hugetlb_fallocate);
        return s;
}

int main(void) {
        const char *padctl = getenv("PADCTL_BIN"), *paddd = getenv("PADDD_BIN"), *dbus = getenv("DBUS_DAEMON");
        int r;

        if (!padctl || access(padctl, X_OK) < 0 || !paddd || access(paddd, X_OK) < 0) {
                printf("test-padctl: PADCTL_BIN and PADDD_BIN must name the built padctl and paddd: skipping\n");
                return 77;
        }
        if (dbus ? access(dbus, X_OK) < 0 : system("command -v dbus-daemon >/dev/null 2>&1") != 0) {
                printf("test-padctl: no dbus-daemon binary: skipping\n");
                return 77;
        }
        /* A mode-0755 folder: a setuid-nobody padctl must reach the sockets inside. */
        snprintf(tmp_base, sizeof(tmp_base), "/tmp/paddd-test-padctl-XXXXXX");
        if (!mkdtemp(tmp_base) || chmod(tmp_base, 0755) < 0) {
                perror("test-padctl: mkdtemp");
                return EXIT_FAILURE;
        }
        setenv("PADDD_FIXTURE_TMPDIR", tmp_base, 1);
        snprintf(hugetlb_state, sizeof(hugetlb_state), "%s/hugetlb-state", tmp_base);

        r = check_run_suite(padctl_suite());

        hugetlb_restore_leftover();
        nftw(tmp_base, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        return r;
}
