/* vm-manager.c: what a VM manager does with paddd, in C with sd-bus alone (no libpadclient):
 * borrow preallocation helpers for the NUMA node the guest's RAM lives on from
 * org.padata.Broker, start QEMU with a thread-context on the lease's node and
 * prealloc-threads = granted + 1 (the helpers plus QEMU's main thread), wait on QMP until the
 * RAM is preallocated (QEMU 7.2 greets on QMP only after every -object is created, see
 * examples/qmp.sh), list the broker's leases while this one is held, release it, quit QEMU.
 *
 * usage: vm-manager [--bus ADDRESS] [--node N] [--helpers N] [--min N] [--wait SECONDS]
 *                   [--tag TAG] [--qemu PATH] MEM_PATH SIZE
 *
 * The lease belongs to this process's bus connection: paddd reclaims it if the connection
 * goes away, so a VM manager that dies never leaks slots. The last line of output,
 * "vm-manager: timeline TAG GRANTED ACQUIRED_US RELEASING_US WAITED_US" (CLOCK_MONOTONIC),
 * is for whoever runs many of these at once: ACQUIRED_US is taken after the grant arrived
 * and RELEASING_US before Release is sent, so the interval lies within the one paddd counted.
 *
 * The bus names are those of dbus/org.padata.Broker.xml, spelled out so that this file
 * stands alone. Build: cc vm-manager.c $(pkg-config --cflags --libs libsystemd). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define BROKER "org.padata.Broker"
#define BROKER_PATH "/org/padata/Broker"
#define LEASE_INTERFACE "org.padata.Broker.Lease"

#define _cleanup_(f) __attribute__((cleanup(f)))

typedef struct Options {
        const char *bus;
        int node;
        unsigned helpers, min;
        double wait_seconds;
        char tag[65];
        const char *qemu;
        const char *mem_path, *size;
} Options;

typedef struct Qemu {
        pid_t pid;
        FILE *in, *out;         /* QMP: what QEMU reads, what it writes */
        unsigned id;
} Qemu;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void help(void) {
        printf("Usage: vm-manager [--bus ADDRESS] [--node N] [--helpers N] [--min N] [--wait SECONDS]\n"
               "                  [--tag TAG] [--qemu PATH] MEM_PATH SIZE\n");
}

static int parse_options(int argc, char *argv[], Options *o) {
        static const struct option options[] = {
                { "bus", required_argument, NULL, 'b' },
                { "node", required_argument, NULL, 'n' },
                { "helpers", required_argument, NULL, 'h' },
                { "min", required_argument, NULL, 'm' },
                { "wait", required_argument, NULL, 'w' },
                { "tag", required_argument, NULL, 't' },
                { "qemu", required_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'H' },
                {}
        };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int c;

        *o = (Options) { .helpers = cpus > 1 ? (unsigned) cpus - 1 : 1, .qemu = "qemu-system-x86_64" };
        snprintf(o->tag, sizeof(o->tag), "vm-%d", (int) getpid());
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'b': o->bus = optarg; break;
                case 'n': o->node = atoi(optarg); break;
                case 'h': o->helpers = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'm': o->min = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'w': o->wait_seconds = strtod(optarg, NULL); break;
                case 't': snprintf(o->tag, sizeof(o->tag), "%s", optarg); break;
                case 'q': o->qemu = optarg; break;
                case 'H': help(); exit(EXIT_SUCCESS);
                default: return -EINVAL;
                }
        if (argc - optind != 2) {
                help();
                return -EINVAL;
        }
        o->mem_path = argv[optind];
        o->size = argv[optind + 1];
        return 0;
}

static int bus_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system(ret);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = bus;
        bus = NULL;
        return 0;
}

/* Acquire(u helpers, i node, a{sv} options) -> (o lease, u granted). */
static int acquire(sd_bus *bus, const Options *o, char **ret_lease, unsigned *ret_granted) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *lease;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BROKER, BROKER_PATH, BROKER, "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "uia{sv}", o->helpers, o->node, 3,
                                          "tag", "s", o->tag,
                                          "min", "u", o->min,
                                          "wait_usec", "t", (uint64_t) (o->wait_seconds * 1e6));
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                fprintf(stderr, "vm-manager: Acquire: %s\n", error.message ?: strerror(-r));
                return r;
        }
        r = sd_bus_message_read(reply, "ou", &lease, ret_granted);
        if (r < 0)
                return r;
        *ret_lease = strdup(lease);
        return *ret_lease ? 0 : -ENOMEM;
}

/* The node of the lease's first placement entry, a(iu) (node, helpers); fallback for a
 * grant of 0, which has none. */
static int placement_node(sd_bus *bus, const char *lease, int fallback) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int node;
        unsigned helpers;

        if (sd_bus_get_property(bus, BROKER, lease, LEASE_INTERFACE, "Placement", &error, &reply, "a(iu)") < 0 ||
            sd_bus_message_enter_container(reply, 'a', "(iu)") < 0 ||
            sd_bus_message_read(reply, "(iu)", &node, &helpers) <= 0)
                return fallback;
        return node;
}

static int list_leases(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path, *owner, *tag;
        uint32_t uid, pid, granted;
        int r;

        r = sd_bus_call_method(bus, BROKER, BROKER_PATH, BROKER, "ListLeases", &error, &reply, "");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ouuuss)");
        if (r < 0)
                return r;
        printf("vm-manager: leases on the broker:\n");
        while ((r = sd_bus_message_read(reply, "(ouuuss)", &path, &uid, &pid, &granted, &owner, &tag)) > 0)
                printf("  %s uid %" PRIu32 " pid %" PRIu32 " granted %" PRIu32 " owner %s tag %s\n",
                       path, uid, pid, granted, owner, tag);
        return r;
}

/* QEMU with QMP on a pair of pipes (-qmp stdio). */
static int qemu_start(Qemu *q, const Options *o, int node, unsigned threads) {
        char context[64], backend[4096];
        int to_qemu[2], from_qemu[2];

        snprintf(context, sizeof(context), "thread-context,id=tc0,node-affinity=%d", node);
        snprintf(backend, sizeof(backend),
                 "memory-backend-file,id=ram0,mem-path=%s,size=%s,share=on,prealloc=on,"
                 "prealloc-threads=%u,prealloc-context=tc0", o->mem_path, o->size, threads);
        if (pipe2(to_qemu, O_CLOEXEC) < 0 || pipe2(from_qemu, O_CLOEXEC) < 0)
                return -errno;
        q->pid = fork();
        if (q->pid < 0)
                return -errno;
        if (q->pid == 0) {
                dup2(to_qemu[0], STDIN_FILENO);
                dup2(from_qemu[1], STDOUT_FILENO);
                execlp(o->qemu, o->qemu, "-M", "none", "-nodefaults", "-display", "none",
                       "-qmp", "stdio", "-object", context, "-object", backend, (char *) NULL);
                fprintf(stderr, "vm-manager: %s: %m\n", o->qemu);
                _exit(127);
        }
        close(to_qemu[0]);
        close(from_qemu[1]);
        q->in = fdopen(to_qemu[1], "w");
        q->out = fdopen(from_qemu[0], "r");
        return q->in && q->out ? 0 : -errno;
}

/* Sends a command (arguments: a JSON object or NULL) and returns its answer line in *line
 * (kept until the next call); -EIO on an error answer or if QEMU ended. */
static int qmp_call(Qemu *q, const char *command, const char *arguments, char **line, size_t *n) {
        char id[32];

        snprintf(id, sizeof(id), "\"id\": \"%u\"", ++q->id);
        fprintf(q->in, "{\"execute\": \"%s\"%s%s, %s}\n", command,
                arguments ? ", \"arguments\": " : "", arguments ?: "", id);
        fflush(q->in);
        while (getline(line, n, q->out) > 0)
                if (strstr(*line, id))
                        return strncmp(*line, "{\"return\"", 9) == 0 ? 0 : -EIO;
        return -EIO;
}

/* The greeting comes once the RAM is preallocated; then leave capabilities negotiation. */
static int qmp_wait_ready(Qemu *q, char **line, size_t *n) {
        while (getline(line, n, q->out) > 0)
                if (strncmp(*line, "{\"QMP\":", 7) == 0)
                        return qmp_call(q, "qmp_capabilities", NULL, line, n);
        return -EIO;
}

static int qemu_quit(Qemu *q, char **line, size_t *n) {
        int status;

        (void) qmp_call(q, "quit", NULL, line, n);
        fclose(q->in);
        fclose(q->out);
        if (waitpid(q->pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Options o;
        Qemu q = {};
        char *lease = NULL, *line = NULL;
        size_t n = 0;
        unsigned granted, threads;
        int r, node;

        if (parse_options(argc, argv, &o) < 0)
                return EXIT_FAILURE;
        r = bus_open(o.bus, &bus);
        if (r < 0) {
                fprintf(stderr, "vm-manager: cannot connect to the bus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        uint64_t asked = now_usec();
        if (acquire(bus, &o, &lease, &granted) < 0)
                return EXIT_FAILURE;
        uint64_t acquired = now_usec();
        node = placement_node(bus, lease, o.node);
        printf("vm-manager: lease %s: granted %u of %u on node %d, waited %.3f s\n",
               lease, granted, o.helpers, node, (acquired - asked) / 1e6);
        fflush(stdout);

        threads = granted + 1;
        r = qemu_start(&q, &o, node, threads);
        if (r >= 0)
                r = qmp_wait_ready(&q, &line, &n);
        if (r >= 0)
                r = qmp_call(&q, "qom-get", "{\"path\": \"/objects/ram0\", \"property\": \"prealloc-threads\"}",
                             &line, &n);
        if (r < 0) {
                fprintf(stderr, "vm-manager: QEMU did not come up\n");
                return EXIT_FAILURE;
        }
        printf("vm-manager: QEMU ready: RAM preallocated, prealloc-threads %lu\n",
               strtoul(line + strlen("{\"return\": "), NULL, 10));
        /* The CPUs the preallocation threads were started on: those of the lease's node. */
        if (qmp_call(&q, "qom-get", "{\"path\": \"/objects/tc0\", \"property\": \"cpu-affinity\"}",
                     &line, &n) >= 0) {
                const char *list = line + strlen("{\"return\": ");
                printf("vm-manager: thread-context tc0 on CPUs %.*s\n", (int) strcspn(list, "]") + 1, list);
        }
        if (list_leases(bus) < 0)
                fprintf(stderr, "vm-manager: ListLeases failed\n");
        fflush(stdout);

        uint64_t releasing = now_usec();
        r = sd_bus_call_method(bus, BROKER, lease, LEASE_INTERFACE, "Release", &error, NULL, "");
        if (r < 0) {
                fprintf(stderr, "vm-manager: Release: %s\n", error.message ?: strerror(-r));
                return EXIT_FAILURE;
        }
        printf("vm-manager: released %s\n", lease);

        r = qemu_quit(&q, &line, &n);
        printf("vm-manager: QEMU quit%s\n", r < 0 ? " with an error" : "");
        printf("vm-manager: timeline %s %u %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
               o.tag, granted, acquired, releasing, acquired - asked);
        free(lease);
        free(line);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
