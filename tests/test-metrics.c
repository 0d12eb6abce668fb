/* test-metrics.c: `padctl metrics` against a real paddd on a private bus. After grants, a
 * refusal and a wait made over plain sd-bus, its output is parsed by the Prometheus client
 * library's own text parser (tests/check-metrics.py, run with $PADDD_PYTHON3) and every
 * value is checked against what the test reads from the bus itself: the properties, the
 * nodes and each GetStatistics counter, per node, per user and the histogram's count.
 * --textfile writes DIR/paddd.prom (mode 0644, nothing else left in DIR); a missing DIR is
 * exit status 1 with the folder named; with paddd gone it is exit status 1 and a textfile
 * of paddd_up 0 alone. Exits 77 without dbus-daemon or prometheus_client. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "fixture.h"

#define CONFIG "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\n"
#define ARGS_MAX 256
#define ARG_LEN 160

static Fixture fx;
static char args[ARGS_MAX][ARG_LEN];
static unsigned n_args;

static void die(const char *what) {
        fprintf(stderr, "test-metrics: %s\n", what);
        fixture_dump_log(&fx);
        fixture_stop(&fx);
        exit(EXIT_FAILURE);
}
#define CHECK(cond, what) do { if (!(cond)) die(what); } while (0)

/* Run argv with stdout and stderr into out (may be NULL): the exit status, -1 if killed. */
static int run(const char *const *argv, const char *out) {
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
                int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;

                if (out && (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0))
                        _exit(127);
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect(const char *fmt, ...) {
        va_list ap;

        CHECK(n_args < ARGS_MAX, "too many expected values");
        va_start(ap, fmt);
        vsnprintf(args[n_args++], ARG_LEN, fmt, ap);
        va_end(ap);
}

static uint32_t prop_u(sd_bus *b, const char *name) {
        uint32_t v = 0;

        CHECK(sd_bus_get_property_trivial(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, name, NULL, 'u', &v) >= 0,
              name);
        return v;
}

static void expect_status(sd_bus *b) {
        static const char *const props[][2] = {
                { "MaxHelpers", "paddd_max_helpers" }, { "InUse", "paddd_in_use" },
                { "Leases", "paddd_leases" }, { "Waiting", "paddd_waiting" },
        };
        sd_bus_message *m = NULL;
        int32_t node;
        uint32_t cpus, max, in_use;

        for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
                expect("%s=%u", props[i][1], prop_u(b, props[i][0]));
        CHECK(sd_bus_get_property(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Nodes", NULL, &m, "a(iuuu)") >= 0,
              "Nodes");
        CHECK(sd_bus_message_enter_container(m, 'a', "(iuuu)") >= 0, "Nodes");
        while (sd_bus_message_read(m, "(iuuu)", &node, &cpus, &max, &in_use) > 0) {
                expect("paddd_node_max_helpers{node=\"%d\"}=%u", node, max);
                expect("paddd_node_in_use{node=\"%d\"}=%u", node, in_use);
        }
        sd_bus_message_unref(m);
}

static void expect_grant_counts(sd_bus_message *m, const char *sig, const char *what, const char *label) {
        union { int32_t i; uint32_t u; } id;
        uint64_t grants, helpers;
        bool is_signed = sig[1] == 'i';

        CHECK(sd_bus_message_enter_container(m, 'a', sig) >= 0, "GetStatistics grant counts");
        while (sd_bus_message_read(m, sig, &id, &grants, &helpers) > 0) {
                long long v = is_signed ? id.i : (long long) id.u;

                expect("paddd_%s_grants_total{%s=\"%lld\"}=%llu", what, label, v, (unsigned long long) grants);
                expect("paddd_%s_helpers_granted_total{%s=\"%lld\"}=%llu", what, label, v,
                       (unsigned long long) helpers);
        }
        CHECK(sd_bus_message_exit_container(m) >= 0, "GetStatistics grant counts");
}

/* Every counter, per node, per user, the histogram's count and sum; returns the waits. */
static uint64_t expect_statistics(sd_bus *b) {
        sd_bus_message *m = NULL;
        const char *name;
        uint64_t v, le, count, waits = 0, sum;

        CHECK(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "GetStatistics", NULL, &m, "") >= 0,
              "GetStatistics");
        CHECK(sd_bus_message_enter_container(m, 'a', "{st}") >= 0, "counters");
        while (sd_bus_message_read(m, "{st}", &name, &v) > 0)
                expect("paddd_%s_total=%llu", name, (unsigned long long) v);
        CHECK(sd_bus_message_exit_container(m) >= 0, "counters");
        CHECK(sd_bus_message_enter_container(m, 'a', "(tt)") >= 0, "histogram");
        while (sd_bus_message_read(m, "(tt)", &le, &count) > 0)
                waits += count;
        CHECK(sd_bus_message_exit_container(m) >= 0, "histogram");
        CHECK(sd_bus_message_read(m, "t", &sum) >= 0, "wait_usec_sum");
        expect("paddd_wait_seconds_count=%llu", (unsigned long long) waits);
        expect("paddd_wait_seconds_sum=%.6f", (double) sum / 1e6);
        expect_grant_counts(m, "(itt)", "node", "node");
        expect_grant_counts(m, "(utt)", "user", "uid");
        sd_bus_message_unref(m);
        return waits;
}

/* Two grants, a refusal and a wait that times out; the first lease is kept. */
static void make_history(sd_bus *b) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        CHECK(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", NULL, NULL, "uia{sv}",
                                 3, -1, 0) >= 0, "Acquire 3");
        CHECK(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &e, NULL, "uia{sv}", 2,
                                 -1, 1, "min", "u", 2) < 0, "Acquire min 2 was not refused");
        sd_bus_error_free(&e);
        CHECK(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &e, NULL, "uia{sv}", 2,
                                 -1, 2, "min", "u", 2, "wait_usec", "t", (uint64_t) 30000) < 0,
              "Acquire min 2 wait did not time out");
        sd_bus_error_free(&e);
        CHECK(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", NULL, NULL, "uia{sv}",
                                 1, -1, 0) >= 0, "Acquire 1");
}

/* The checker on file with every expected value (down: paddd_up 0 alone): its exit status. */
static int check(const char *python, const char *file, bool down) {
        const char *argv[ARGS_MAX + 5];
        char script[512];
        unsigned n = 0;

        snprintf(script, sizeof(script), "%s/tests/check-metrics.py", getenv("PADDD_SOURCE_ROOT"));
        argv[n++] = python;
        argv[n++] = script;
        if (down) {
                argv[n++] = "--down";
                argv[n++] = file;
                argv[n] = NULL;
                return run(argv, NULL);
        }
        argv[n++] = file;
        for (unsigned i = 0; i < n_args; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        return run(argv, NULL);
}

static void test_textfile(const char *padctl, const char *python) {
        char dir[400], file[480], missing[400], out[480], text[1024] = "";
        struct stat st;
        struct dirent *de;
        unsigned entries = 0;
        DIR *d;
        FILE *f;

        snprintf(dir, sizeof(dir), "%s/textfile", fx.dir);
        snprintf(file, sizeof(file), "%s/paddd.prom", dir);
        CHECK(mkdir(dir, 0755) == 0, "mkdir textfile");
        CHECK(run((const char *const[]) { padctl, "--bus", fx.address, "metrics", "--textfile", dir, NULL }, NULL) == 0,
              "padctl metrics --textfile failed");
        CHECK(stat(file, &st) == 0 && (st.st_mode & 07777) == 0644, "DIR/paddd.prom missing or not mode 0644");
        CHECK(check(python, file, false) == 0, "the --textfile output does not parse or does not match the bus");
        d = opendir(dir);
        CHECK(d, "opendir");
        while ((de = readdir(d)))
                entries += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
        closedir(d);
        CHECK(entries == 1, "--textfile left more than paddd.prom in DIR");

        snprintf(missing, sizeof(missing), "%s/no-such-folder", fx.dir);
        snprintf(out, sizeof(out), "%s/missing.out", fx.dir);
        CHECK(run((const char *const[]) { padctl, "--bus", fx.address, "metrics", "--textfile", missing, NULL }, out) == 1,
              "--textfile into a missing folder did not exit 1");
        f = fopen(out, "re");
        CHECK(f, "fopen");
        CHECK(fread(text, 1, sizeof(text) - 1, f) > 0, "no error message");
        fclose(f);
        CHECK(strstr(text, missing) && strstr(text, strerror(ENOENT)), "the error does not name the folder and why");

        /* paddd gone: exit 1, said why, and the textfile replaced by paddd_up 0 alone. */
        CHECK(fixture_kill_paddd(&fx) == 0, "killing paddd");
        CHECK(run((const char *const[]) { padctl, "--bus", fx.address, "metrics", "--textfile", dir, NULL }, out) == 1,
              "--textfile without paddd did not exit 1");
        f = fopen(out, "re");
        CHECK(f, "fopen");
        memset(text, 0, sizeof(text));
        CHECK(fread(text, 1, sizeof(text) - 1, f) > 0, "no error message");
        fclose(f);
        CHECK(strstr(text, "not running"), "the error does not say paddd is not running");
        CHECK(check(python, file, true) == 0, "the textfile without paddd is not paddd_up 0 alone");
}

int main(void) {
        const char *padctl = getenv("PADCTL_BIN"), *python = getenv("PADDD_PYTHON3");
        char out[400];
        sd_bus *b = NULL;
        int r;

        if (!padctl || !getenv("PADDD_BIN") || !getenv("PADDD_SOURCE_ROOT")) {
                printf("test-metrics: run through meson test: skipped\n");
                return 77;
        }
        if (!python || run((const char *const[]) { python, "-c", "import prometheus_client.parser", NULL }, "/dev/null")) {
                printf("test-metrics: %s cannot import prometheus_client (python3-prometheus-client): skipped\n",
                       python ? python : "no python3");
                return 77;
        }
        r = fixture_start(&fx, CONFIG);
        if (r == -ENOENT) {
                printf("test-metrics: no dbus-daemon: skipped\n");
                return 77;
        }
        CHECK(r == 0, "fixture_start");
        CHECK(bus_open_spec(fx.address, NULL, &b) >= 0, "connecting");
        make_history(b);
        expect_status(b);
        CHECK(expect_statistics(b) == 1, "the histogram does not hold the one wait");
        expect("paddd_grants_total=2");
        expect("paddd_helpers_granted_total=4");
        expect("paddd_in_use=4");
        expect("paddd_up=1");

        snprintf(out, sizeof(out), "%s/metrics.prom", fx.dir);
        CHECK(run((const char *const[]) { padctl, "--bus", fx.address, "metrics", NULL }, out) == 0,
              "padctl metrics failed");
        CHECK(check(python, out, false) == 0, "padctl metrics does not parse or does not match the bus");
        test_textfile(padctl, python);

        sd_bus_flush_close_unref(b);
        fixture_stop(&fx);
        printf("test-metrics: %u values checked\n", n_args);
        return EXIT_SUCCESS;
}
