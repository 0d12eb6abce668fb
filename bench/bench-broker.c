/* bench-broker.c: one command measuring the broker's speed and footprint, on a private
 * dbus-daemon with a real paddd (tests/fixture.c), printed as one table with the machine
 * described: (c) paddd's peak RSS (VmHWM) with 1000 live leases spread over 10 clients,
 * measured first on a fresh paddd; (a) the Acquire(1,-1,{})+Release round trip against two
 * org.freedesktop.DBus.Peer.Ping calls to paddd through the same dbus-daemon, interleaved in
 * blocks so noise hits both, median and p99 and their ratio; (b) Acquire+Release pairs per
 * second with 64 concurrent client processes. PADDD_BIN defaults to ../daemon/paddd next to
 * this binary. Options: --iterations N, --clients N, --seconds S, --leases N. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "fixture.h"

#define BLOCK 500
#define LEASE_CLIENTS 10

/* Enough slots that nothing is ever Busy: the benchmark measures the broker, not queueing. */
static const char config[] =
        "[Broker]\n"
        "MaxHelpers=4096\n"
        "MaxHelpersPerNode=4096\n"
        "MaxLeasesPerClient=65536\n"
        "MaxWaiting=65536\n";

typedef struct Options {
        unsigned iterations, clients, leases;
        double seconds;
} Options;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Acquire(helpers, -1, {}); the lease path is copied to path. */
static int acquire(sd_bus *b, uint32_t helpers, char *path, size_t size) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *p;
        uint32_t granted;
        int r;

        r = sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Acquire", &err, &reply,
                               "uia{sv}", helpers, -1, 0);
        if (r < 0) {
                fprintf(stderr, "bench-broker: Acquire: %s\n", err.message ?: strerror(-r));
                sd_bus_error_free(&err);
                return r;
        }
        r = sd_bus_message_read(reply, "ou", &p, &granted);
        if (r >= 0)
                snprintf(path, size, "%s", p);
        sd_bus_message_unref(reply);
        return r;
}

static int release(sd_bus *b, const char *path) {
        sd_bus_error err = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(b, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Release", &err, NULL, "");

        if (r < 0)
                fprintf(stderr, "bench-broker: Release: %s\n", err.message ?: strerror(-r));
        sd_bus_error_free(&err);
        return r;
}

static int ping(sd_bus *b) {
        return sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                  NULL, NULL, "");
}

static int pair(sd_bus *b) {
        char path[128];
        int r = acquire(b, 1, path, sizeof path);

        return r < 0 ? r : release(b, path);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Sorts v. */
static double percentile_us(uint64_t *v, size_t n, double p) {
        size_t i;

        qsort(v, n, sizeof *v, cmp_u64);
        i = (size_t) (p * (double) (n - 1) + 0.5);
        return (double) v[i] / 1000.0;
}

/* ---- (a) latency ---------------------------------------------------------------------- */

typedef struct Latency {
        double acq_median, acq_p99, ping_median, ping_p99;
} Latency;

static int bench_latency(const Fixture *f, unsigned iterations, Latency *ret) {
        uint64_t *acq = calloc(iterations, sizeof *acq), *png = calloc(iterations, sizeof *png);
        sd_bus *b = NULL;
        int r;

        if (!acq || !png) {
                r = -ENOMEM;
                goto out;
        }
        r = bus_open_spec(f->address, NULL, &b);
        if (r < 0)
                goto out;
        /* Warm up both paths (connection set-up, client tracking, page faults). */
        for (unsigned i = 0; i < 1000 && r >= 0; i++) {
                r = pair(b);
                if (r >= 0)
                        r = ping(b);
        }
        for (unsigned done = 0; r >= 0 && done < iterations; done += BLOCK) {
                unsigned end = done + BLOCK < iterations ? done + BLOCK : iterations;
                for (unsigned i = done; r >= 0 && i < end; i++) {
                        uint64_t t0 = now_ns();
                        r = pair(b);
                        acq[i] = now_ns() - t0;
                }
                for (unsigned i = done; r >= 0 && i < end; i++) {
                        uint64_t t0 = now_ns();
                        r = ping(b);
                        if (r >= 0)
                                r = ping(b);
                        png[i] = now_ns() - t0;
                }
        }
        if (r < 0)
                goto out;
        ret->acq_median = percentile_us(acq, iterations, 0.5);
        ret->acq_p99 = percentile_us(acq, iterations, 0.99);
        ret->ping_median = percentile_us(png, iterations, 0.5);
        ret->ping_p99 = percentile_us(png, iterations, 0.99);
        r = 0;
out:
        sd_bus_flush_close_unref(b);
        free(acq);
        free(png);
        return r;
}

/* ---- (b) throughput ------------------------------------------------------------------- */

typedef struct Report {
        uint64_t pairs;
        uint64_t elapsed_ns;
        int error;
} Report;

static void client_loop(const char *address, int go_fd, int report_fd, double seconds) {
        Report rep = {};
        sd_bus *b = NULL;
        uint64_t start, end;
        char c;

        if (bus_open_spec(address, NULL, &b) < 0)
                rep.error = 1;
        while (read(go_fd, &c, 1) < 0 && errno == EINTR)
                ;
        start = now_ns();
        end = start + (uint64_t) (seconds * 1e9);
        while (!rep.error && now_ns() < end) {
                if (pair(b) < 0)
                        rep.error = 1;
                else
                        rep.pairs++;
        }
        rep.elapsed_ns = now_ns() - start;
        if (write(report_fd, &rep, sizeof rep) != sizeof rep)
                _exit(2);
        sd_bus_flush_close_unref(b);
        _exit(rep.error ? 1 : 0);
}

static int bench_throughput(const Fixture *f, unsigned clients, double seconds, double *ret_rate,
                            unsigned *ret_errors) {
        pid_t *pids = calloc(clients, sizeof *pids);
        int go[2], rep[2];
        uint64_t pairs = 0, longest = 0;
        unsigned errors = 0, got = 0;

        if (!pids)
                return -ENOMEM;
        if (pipe2(go, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
                return -errno;
        for (unsigned i = 0; i < clients; i++) {
                pid_t pid = pids[i] = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        close(go[1]);
                        close(rep[0]);
                        client_loop(f->address, go[0], rep[1], seconds);
                }
        }
        close(go[0]);
        close(rep[1]);
        usleep(300 * 1000);     /* let every client connect before the start */
        close(go[1]);
        for (;;) {
                Report r;
                ssize_t n = read(rep[0], &r, sizeof r);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != sizeof r)
                        break;
                got++;
                pairs += r.pairs;
                errors += (unsigned) r.error;
                if (r.elapsed_ns > longest)
                        longest = r.elapsed_ns;
        }
        close(rep[0]);
        /* Only our clients: the fixture's daemons are children too. */
        for (unsigned i = 0; i < clients; i++)
                if (pids[i] > 0)
                        waitpid(pids[i], NULL, 0);
        free(pids);
        *ret_errors = errors + (clients - got);
        *ret_rate = longest ? (double) pairs / ((double) longest / 1e9) : 0;
        return 0;
}

/* ---- (c) memory ----------------------------------------------------------------------- */

static long status_kib(pid_t pid, const char *key) {
        char path[64], line[256];
        size_t len = strlen(key);
        long v = -1;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, key, len) == 0 && line[len] == ':') {
                        v = strtol(line + len + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

static int bench_memory(const Fixture *f, unsigned leases, long *ret_base, long *ret_peak,
                        unsigned *ret_live) {
        sd_bus *clients[LEASE_CLIENTS] = {};
        uint32_t live = 0;
        char path[128];
        int r = 0;

        *ret_base = status_kib(f->paddd_pid, "VmHWM");
        for (unsigned i = 0; i < LEASE_CLIENTS && r >= 0; i++)
                r = bus_open_spec(f->address, NULL, &clients[i]);
        for (unsigned i = 0; i < leases && r >= 0; i++)
                r = acquire(clients[i % LEASE_CLIENTS], 1, path, sizeof path);
        if (r >= 0)
                r = sd_bus_get_property_trivial(clients[0], BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                                "Leases", NULL, 'u', &live);
        *ret_live = live;
        *ret_peak = status_kib(f->paddd_pid, "VmHWM");
        for (unsigned i = 0; i < LEASE_CLIENTS; i++)
                sd_bus_flush_close_unref(clients[i]);
        return r < 0 ? r : 0;
}

/* ---- the machine ---------------------------------------------------------------------- */

static void first_line(const char *cmd, char *buf, size_t size) {
        FILE *p = popen(cmd, "re");

        snprintf(buf, size, "unknown");
        if (!p)
                return;
        if (fgets(buf, (int) size, p))
                buf[strcspn(buf, "\n")] = '\0';
        pclose(p);
}

static void cpu_model(char *buf, size_t size) {
        char line[512];
        FILE *f = fopen("/proc/cpuinfo", "re");

        snprintf(buf, size, "unknown");
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, "model name", 10) == 0) {
                        char *v = strchr(line, ':');
                        if (v) {
                                v += 1 + strspn(v + 1, " \t");
                                v[strcspn(v, "\n")] = '\0';
                                snprintf(buf, size, "%s", v);
                        }
                        break;
                }
        if (f)
                fclose(f);
}

static void default_paddd_bin(const char *argv0) {
        char self[PATH_MAX], cand[PATH_MAX + 32];
        ssize_t n;

        if (getenv("PADDD_BIN"))
                return;
        n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
                return;
        self[n] = '\0';
        snprintf(cand, sizeof cand, "%s/../daemon/paddd", dirname(self));
        if (access(cand, X_OK) == 0)
                setenv("PADDD_BIN", cand, 1);
        (void) argv0;
}

static int parse_args(int argc, char **argv, Options *o) {
        static const struct option longopts[] = {
                { "iterations", required_argument, NULL, 'i' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "leases", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        *o = (Options) { .iterations = 20000, .clients = 64, .seconds = 3.0, .leases = 1000 };
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                char *end = NULL;
                unsigned long v = 0;

                if (c != 'h' && c != 's') {
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || !end || *end || v == 0 || v > 1000000) {
                                fprintf(stderr, "bench-broker: bad number '%s'\n", optarg);
                                return -EINVAL;
                        }
                }
                switch (c) {
                case 'i': o->iterations = (unsigned) v; break;
                case 'c': o->clients = (unsigned) v; break;
                case 'l': o->leases = (unsigned) v; break;
                case 's':
                        o->seconds = strtod(optarg, &end);
                        if (!end || *end || !(o->seconds > 0 && o->seconds <= 600)) {
                                fprintf(stderr, "bench-broker: bad duration '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        printf("Usage: bench-broker [--iterations N] [--clients N] [--seconds S] [--leases N]\n");
                        exit(EXIT_SUCCESS);
                default:
                        return -EINVAL;
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        char model[256], dbus_version[128], paddd_version[64] = "unknown", label[64];
        struct utsname u;
        Options o;
        Fixture f;
        Latency lat = {};
        long base_kib = -1, peak_kib = -1;
        unsigned live = 0, errors = 0;
        double rate = 0;
        int r;

        if (parse_args(argc, argv, &o) < 0)
                return 2;
        default_paddd_bin(argv[0]);
        signal(SIGPIPE, SIG_IGN);

        r = fixture_start(&f, config);
        if (r < 0) {
                fprintf(stderr, "bench-broker: cannot start dbus-daemon and paddd: %s\n", strerror(-r));
                return r == -ENOENT ? 77 : EXIT_FAILURE;
        }

        /* (c) first, on a fresh paddd, so the peak is the leases' and not the load's. */
        r = bench_memory(&f, o.leases, &base_kib, &peak_kib, &live);
        if (r >= 0)
                r = bench_latency(&f, o.iterations, &lat);
        if (r >= 0)
                r = bench_throughput(&f, o.clients, o.seconds, &rate, &errors);
        {
                sd_bus *b = NULL;
                char *v = NULL;
                if (bus_open_spec(f.address, NULL, &b) >= 0 &&
                    sd_bus_get_property_string(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "Version", NULL, &v) >= 0)
                        snprintf(paddd_version, sizeof paddd_version, "%s", v);
                free(v);
                sd_bus_flush_close_unref(b);
        }
        fixture_stop(&f);
        if (r < 0) {
                fprintf(stderr, "bench-broker: failed: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        cpu_model(model, sizeof model);
        first_line("${DBUS_DAEMON:-dbus-daemon} --version 2>/dev/null", dbus_version, sizeof dbus_version);
        uname(&u);

        printf("paddd broker benchmark (paddd %s)\n", paddd_version);
        printf("machine: %ld CPUs, %s, Linux %s, %s\n\n", sysconf(_SC_NPROCESSORS_ONLN), model, u.release,
               dbus_version);
        printf("| %-48s | %10s | %10s | %-10s |\n", "measure", "median", "p99", "goal");
        printf("|--------------------------------------------------|------------|------------|------------|\n");
        printf("| %-48s | %10.1f | %10.1f | %-10s |\n", "Acquire(1,-1,{})+Release round trip (us)",
               lat.acq_median, lat.acq_p99, "");
        printf("| %-48s | %10.1f | %10.1f | %-10s |\n", "2x Peer.Ping to paddd, same dbus-daemon (us)",
               lat.ping_median, lat.ping_p99, "");
        printf("| %-48s | %10.2f | %10.2f | %-10s |\n", "ratio (Acquire+Release / 2x Ping)",
               lat.acq_median / lat.ping_median, lat.acq_p99 / lat.ping_p99, "<= 1.2");
        snprintf(label, sizeof label, "Acquire+Release pairs/s, %u clients, %.1f s", o.clients, o.seconds);
        printf("| %-48s | %10.0f | %10s | %-10s |\n", label, rate, "", "");
        printf("| %-48s | %10ld | %10s | %-10s |\n", "paddd VmHWM at start (KiB)", base_kib, "", "");
        printf("| %-48s | %10ld | %10s | %-10s |\n", "paddd VmHWM with live leases (KiB)", peak_kib, "",
               "< 4096");
        printf("\n%u iterations each in blocks of %d, interleaved; %u leases live over %d clients "
               "(Leases property: %u); %u client errors.\n",
               o.iterations, BLOCK, o.leases, LEASE_CLIENTS, live, errors);
        return errors ? EXIT_FAILURE : EXIT_SUCCESS;
}
