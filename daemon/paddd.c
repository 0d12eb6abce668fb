/* paddd.c: main. Parses the command line, drops capabilities beyond CAP_SYS_NICE, loads
 * the config through the manager, connects to the bus (system, session or an address),
 * opens the books kept across restarts, serves org.padata.Broker (after re-adopting the
 * books' leases), and runs the event loop with the watchdog, SIGTERM/SIGINT (exit) and
 * SIGHUP (reload), telling systemd READY=1 and STOPPING=1 around it. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "books.h"
#include "broker-bus.h"
#include "bus-introspect.h"
#include "bus-open.h"
#include "log.h"
#include "manager.h"
#include "paddd-config.h"
#include "priority.h"

typedef struct Arguments {
        const char *config_path;
        const char *bus;
        bool embedded_config;
        bool bus_introspect;
} Arguments;

static void help(void) {
        printf("Usage: paddd [OPTIONS]\n\n"
               "Lend machine-wide and per-NUMA-node helper-thread slots over D-Bus\n"
               "(org.padata.Broker).\n\n"
               "  --config PATH        Config file (default " CONFIG_PATH_DEFAULT "),\n"
               "                       drop-ins from PATH.d/*.conf\n"
               "  --embedded-config    Use the built-in default config, read no file\n"
               "  --bus system|session|ADDRESS\n"
               "                       Bus to serve on (default system), e.g.\n"
               "                       unix:path=/tmp/x/bus\n"
               "  --bus-introspect     Print the D-Bus interfaces' XML and exit\n"
               "  --help               Show this help\n"
               "  --version            Show the version\n");
}

/* 0: run, 1: exit successfully (help, version), <0: bad command line. */
static int parse_arguments(int argc, char *argv[], Arguments *args) {
        enum { ARG_CONFIG = 0x100, ARG_BUS, ARG_EMBEDDED, ARG_INTROSPECT, ARG_HELP, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, ARG_CONFIG },
                { "bus", required_argument, NULL, ARG_BUS },
                { "embedded-config", no_argument, NULL, ARG_EMBEDDED },
                { "bus-introspect", no_argument, NULL, ARG_INTROSPECT },
                { "help", no_argument, NULL, ARG_HELP },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_CONFIG:
                        args->config_path = optarg;
                        break;
                case ARG_BUS:
                        args->bus = optarg;
                        break;
                case ARG_EMBEDDED:
                        args->embedded_config = true;
                        break;
                case ARG_INTROSPECT:
                        args->bus_introspect = true;
                        break;
                case ARG_HELP:
                        help();
                        return 1;
                case ARG_VERSION:
                        printf("paddd %s\n", PADDD_VERSION);
                        return 1;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "paddd: unexpected argument '%s'; see --help.\n", argv[optind]);
                return -EINVAL;
        }
        if (args->config_path && args->embedded_config) {
                fprintf(stderr, "paddd: --config and --embedded-config exclude each other.\n");
                return -EINVAL;
        }
        if (args->config_path && !args->config_path[0]) {
                fprintf(stderr, "paddd: --config needs a path.\n");
                return -EINVAL;
        }
        if (!args->bus || !args->bus[0])
                args->bus = "system";
        return 0;
}

/* True if the permitted set holds anything but CAP_SYS_NICE. */
static bool caps_beyond_sys_nice(void) {
        cap_t caps = cap_get_proc();
        bool beyond = false;

        if (!caps)
                return false;
        for (cap_value_t v = 0; v <= CAP_LAST_CAP && !beyond; v++) {
                cap_flag_value_t f = CAP_CLEAR;

                if (v != CAP_SYS_NICE && cap_get_flag(caps, v, CAP_PERMITTED, &f) == 0 && f == CAP_SET)
                        beyond = true;
        }
        cap_free(caps);
        return beyond;
}

static int caps_drop(void) {
        const char *kept = NULL;
        int r;

        if (!caps_beyond_sys_nice())
                return 0;
        r = caps_drop_to_sys_nice(&kept);
        if (r < 0)
                return log_error_errno(r, "Failed to drop capabilities beyond CAP_SYS_NICE: %m");
        log_info("Dropped capabilities; kept: %s.", kept ? kept : "none");
        return 0;
}

/* STOPPING=1 from the handler, while the loop still runs the notifier's retries. */
static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) notifier_send(m->notifier, "STOPPING=1\nSTATUS=Shutting down.");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* Open the books and read them; damaged books are reported and replaced. */
static int books_setup(Manager *m, StateBooks *ret_saved) {
        const char *what = NULL;
        BooksSource source;
        Books *books;
        int fd, r;

        r = books_open_fd(&fd, &source);
        if (r < 0)
                return log_error_errno(r, "Failed to open the books: %m");
        r = books_new(fd, &books, ret_saved, &what);
        if (r == -EBADMSG)
                log_warning("The books in %s are damaged (%s); starting with none.", source.where, what);
        else if (r < 0)
                return log_error_errno(r, "Failed to read the books in %s: %m", source.where);
        manager_set_books(m, books);
        log_debug("Keeping the books in %s.", source.where);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Reloading the configuration on SIGHUP.");
        (void) manager_reload(userdata, NULL);  /* logs its own outcome */
        return 0;
}

/* SIGTERM, SIGINT and SIGHUP through the event loop, and the watchdog. */
static int event_setup(sd_event *event, Manager *m) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %m");
        r = sd_event_add_signal(event, NULL, SIGTERM, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        r = sd_event_set_watchdog(event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");
        return 0;
}

/* The manager from the config the arguments name. */
static int manager_setup(const Arguments *args, sd_event *event, Manager **ret) {
        _cleanup_free_ char *error = NULL, *dropin = NULL;
        ManagerOptions options = {
                .config_path = args->config_path,
                .use_files = !args->embedded_config,
        };
        int r;

        if (args->config_path) {
                if (asprintf(&dropin, "%s.d", args->config_path) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory.");
                options.dropin_dir = dropin;
        }
        r = manager_new(event, &options, ret, &error);
        if (r < 0 && error)
                return log_error_errno(r, "%s", error);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        return 0;
}

/* Connect, re-adopt the books' leases, take the name, and say so. */
static int serve(const Arguments *args, Manager *m, StateBooks *saved, sd_bus **ret_bus) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        BooksRestored restored;
        ManagerCounts counts;
        int r;

        r = bus_open_spec(args->bus, "paddd", &bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m", args->bus);
        r = broker_bus_connect(m, bus, saved, &restored);
        if (r == -EEXIST)
                return log_error_errno(r, "The name " BROKER_BUS_NAME " is already owned on the %s bus.",
                                       args->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to serve " BROKER_BUS_NAME " on the %s bus: %m",
                                       args->bus);
        (void) sd_bus_set_exit_on_disconnect(bus, true);

        manager_get_counts(m, &counts);
        log_info("paddd %s serving " BROKER_BUS_NAME " on the %s bus: %u helpers on %u nodes, policy %s.",
                 PADDD_VERSION, args->bus, counts.max_helpers, manager_get_n_nodes(m),
                 helper_policy_to_string(manager_get_helper_policy(m)));
        log_info("Books: re-adopted %u leases (%u helpers) of clients still connected, dropped %u.",
                 restored.adopted, restored.helpers, restored.dropped);
        *ret_bus = TAKE_PTR(bus);
        return 0;
}

static int run(const Arguments *args) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        StateBooks saved = {};
        int r;

        r = caps_drop();
        if (r < 0)
                return r;
        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        r = manager_setup(args, event, &m);
        if (r >= 0)
                r = event_setup(event, m);
        if (r >= 0)
                r = books_setup(m, &saved);
        if (r >= 0)
                r = serve(args, m, &saved, &bus);
        state_books_done(&saved);
        if (r < 0)
                return r;
        (void) notifier_send(m->notifier, "READY=1");

        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        if (r != 0)     /* sd-bus ends the loop with EXIT_FAILURE when the bus goes away */
                log_error("Lost the connection to the %s bus, exiting.", args->bus);
        else
                log_info("paddd exiting.");
        return r;
}

int main(int argc, char *argv[]) {
        Arguments args = {};
        int r;

        r = parse_arguments(argc, argv, &args);
        if (r != 0)
                return r > 0 ? EXIT_SUCCESS : EXIT_FAILURE;

        if (args.bus_introspect) {
                r = bus_introspect_print(stdout);
                if (r < 0)
                        fprintf(stderr, "paddd: introspection failed: %s\n", strerror(-r));
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        r = run(&args);
        return r < 0 ? EXIT_FAILURE : r;
}
