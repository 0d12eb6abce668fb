/* padctl-status.c: padctl's broker commands over sd-bus: `status` (the org.padata.Broker
 * properties, ListLeases and each lease's Placement, printed as tables with the owners' user
 * and process names), `set-quota` (SetQuota) and `reload` (Reload). D-Bus errors are shown
 * with their name and message. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "padctl.h"
#include "util.h"

DEFINE_POINTER_CLEANUP(PadctlTable, padctl_table_free);

static const char *bus_describe(const char *bus) {
        return streq(bus, "system") ? "the system bus" : streq(bus, "session") ? "the session bus" : bus;
}

/* The bus padctl talks to: --bus, else $PADCLIENT_BUS, else the system bus (as the library). */
static const char *bus_choose(const Padctl *p) {
        const char *e;

        if (p->bus)
                return p->bus;
        e = getenv("PADCLIENT_BUS");
        return e && *e ? e : "system";
}

static int bus_connect(const Padctl *p, sd_bus **ret) {
        const char *name = bus_choose(p);
        sd_bus *bus = NULL;
        int r = bus_open_spec(name, "padctl", &bus);

        if (r < 0) {
                padctl_fail("cannot connect to %s: %s", bus_describe(name), strerror(-r));
                return r;
        }
        *ret = bus;
        return 0;
}

/* One line for a failed call, naming the D-Bus error, and exit status 1. */
static int call_failed(const char *what, const sd_bus_error *e, int r) {
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return padctl_fail("%s: paddd is not running on this bus (%s)", what, e->name);
        if (e && e->name)
                return padctl_fail("%s: %s: %s", what, e->name, e->message ? e->message : strerror(-r));
        return padctl_fail("%s: %s", what, strerror(-r));
}

/* ---- status ------------------------------------------------------------------------------------ */

typedef struct BrokerNode {
        int node;
        unsigned cpus, max, in_use;
} BrokerNode;

typedef struct BrokerState {
        unsigned max_helpers, in_use, waiting, leases;
        char *policy, *version;
        BrokerNode *nodes;
        unsigned n_nodes;
} BrokerState;

static void broker_state_done(BrokerState *s) {
        free(s->policy);
        free(s->version);
        free(s->nodes);
}

static int read_nodes(sd_bus_message *m, BrokerState *s) {
        BrokerNode n;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(iuuu)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "(iuuu)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(iuuu)", &n.node, &n.cpus, &n.max, &n.in_use)) > 0) {
                BrokerNode *a = realloc(s->nodes, sizeof(*a) * (s->n_nodes + 1));
                if (!a)
                        return -ENOMEM;
                s->nodes = a;
                s->nodes[s->n_nodes++] = n;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_string(sd_bus_message *m, char **ret) {
        const char *v;
        int r = sd_bus_message_read(m, "v", "s", &v);

        if (r < 0)
                return r;
        free(*ret);
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int read_properties(sd_bus_message *m, BrokerState *s) {
        const struct {
                const char *name;
                unsigned *value;
        } uints[] = {
                { "MaxHelpers", &s->max_helpers },
                { "InUse", &s->in_use },
                { "Waiting", &s->waiting },
                { "Leases", &s->leases },
        };
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                unsigned *value = NULL;
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(uints); i++)
                        if (streq(name, uints[i].name))
                                value = uints[i].value;
                if (value)
                        r = sd_bus_message_read(m, "v", "u", value);
                else if (streq(name, "Nodes"))
                        r = read_nodes(m, s);
                else if (streq(name, "HelperPolicy"))
                        r = read_string(m, &s->policy);
                else if (streq(name, "Version"))
                        r = read_string(m, &s->version);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void print_nodes(const BrokerState *s) {
        static const char *const headers[] = { ">NODE", ">CPUS", ">MAX", ">IN USE", ">FREE" };
        _cleanup_(padctl_table_freep) PadctlTable *t = padctl_table_new(ELEMENTSOF(headers), headers);

        if (!t)
                return;
        for (unsigned i = 0; i < s->n_nodes; i++) {
                const BrokerNode *n = &s->nodes[i];
                char c[5][16];
                const char *cells[5] = { c[0], c[1], c[2], c[3], c[4] };

                snprintf(c[0], sizeof(c[0]), "%d", n->node);
                snprintf(c[1], sizeof(c[1]), "%u", n->cpus);
                snprintf(c[2], sizeof(c[2]), "%u", n->max);
                snprintf(c[3], sizeof(c[3]), "%u", n->in_use);
                snprintf(c[4], sizeof(c[4]), "%u", n->max > n->in_use ? n->max - n->in_use : 0);
                if (padctl_table_add(t, cells) < 0)
                        return;
        }
        padctl_table_print(t, stdout, "  ");
}

/* The lease's Placement as "0:2,1:1" ("-" if it is gone or empty). */
static void lease_placement(sd_bus *bus, const char *path, char *buf, size_t len) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        size_t o = 0;
        int node, r;
        unsigned h;

        snprintf(buf, len, "-");
        r = sd_bus_get_property(bus, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Placement", &e, &m, "a(iu)");
        sd_bus_error_free(&e);
        if (r < 0 || sd_bus_message_enter_container(m, 'a', "(iu)") < 0)
                return;
        while (o < len && sd_bus_message_read(m, "(iu)", &node, &h) > 0) {
                int w = snprintf(buf + o, len - o, "%s%d:%u", o ? "," : "", node, h);
                if (w < 0)
                        break;
                o += (size_t) w;
        }
}

static void process_name(pid_t pid, char *buf, size_t len) {
        char path[64];
        FILE *f;

        snprintf(buf, len, "-");
        snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return;
        if (fgets(buf, (int) len, f))
                buf[strcspn(buf, "\n")] = 0;
        else
                snprintf(buf, len, "-");
        fclose(f);
}

static int print_leases(sd_bus *bus) {
        static const char *const headers[] = { ">LEASE", "USER", ">PID", "PROCESS", ">GRANTED", "PLACEMENT",
                                               "BUS NAME", "TAG" };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(padctl_table_freep) PadctlTable *t = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path, *owner, *tag;
        unsigned uid, pid, granted, n = 0;
        int r;

        r = sd_bus_call_method(bus, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "ListLeases", &e, &m, "");
        if (r < 0) {
                r = call_failed("ListLeases", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        t = padctl_table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return padctl_fail("out of memory");
        r = sd_bus_message_enter_container(m, 'a', "(ouuuss)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(ouuuss)", &path, &uid, &pid, &granted, &owner, &tag)) > 0) {
                char id[32], user[64], spid[16], comm[32], sgranted[16], place[128];
                const char *cells[] = { id, user, spid, comm, sgranted, place, owner, *tag ? tag : "-" };
                const char *slash = strrchr(path, '/');
                struct passwd *pw = getpwuid(uid);

                snprintf(id, sizeof(id), "%s", slash ? slash + 1 : path);
                if (pw)
                        snprintf(user, sizeof(user), "%s", pw->pw_name);
                else
                        snprintf(user, sizeof(user), "%u", uid);
                snprintf(spid, sizeof(spid), "%u", pid);
                process_name((pid_t) pid, comm, sizeof(comm));
                snprintf(sgranted, sizeof(sgranted), "%u", granted);
                lease_placement(bus, path, place, sizeof(place));
                if (padctl_table_add(t, cells) < 0)
                        return padctl_fail("out of memory");
                n++;
        }
        if (r < 0)
                return padctl_fail("ListLeases: unexpected reply: %s", strerror(-r));
        if (n == 0)
                printf("\nNo leases.\n");
        else {
                printf("\nLeases:\n");
                padctl_table_print(t, stdout, "  ");
        }
        return 0;
}

int padctl_status(const Padctl *p, int argc, char **argv) {
        static const struct option options[] = { { "help", no_argument, NULL, 'h' }, {} };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        BrokerState s = {};
        int c, r;

        while ((c = padctl_getopt("status", argc, argv, ":h", options)) >= 0)
                if (c == 'h')
                        return PADCTL_EXIT_OK;
                else
                        return PADCTL_EXIT_USAGE;
        r = padctl_positional("status", argc, argv, 0, 0);
        if (r)
                return r;
        if (bus_connect(p, &bus) < 0)
                return PADCTL_EXIT_FAILURE;

        r = sd_bus_call_method(bus, BROKER_BUS_NAME, BROKER_PATH, "org.freedesktop.DBus.Properties", "GetAll",
                               &e, &m, "s", BROKER_INTERFACE);
        if (r < 0) {
                r = call_failed("reading the broker's properties", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = read_properties(m, &s);
        if (r < 0) {
                broker_state_done(&s);
                return padctl_fail("unexpected properties from paddd: %s", strerror(-r));
        }
        printf("paddd %s on %s: %u of %u helpers lent, %u lease%s, %u waiting; helper policy %s\n",
               s.version ? s.version : "?", bus_describe(bus_choose(p)), s.in_use, s.max_helpers, s.leases,
               s.leases == 1 ? "" : "s", s.waiting, s.policy ? s.policy : "?");
        if (s.in_use > s.max_helpers)
                printf("(more in use than the machine quota: the quota was lowered; no new grants until use falls)\n");
        printf("\nNodes:\n");
        print_nodes(&s);
        broker_state_done(&s);
        return print_leases(bus) == 0 ? PADCTL_EXIT_OK : PADCTL_EXIT_FAILURE;
}

/* ---- set-quota, reload ---------------------------------------------------------------------- */

static int admin_call(const Padctl *p, const char *method, const char *types, int node, unsigned max) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        if (bus_connect(p, &bus) < 0)
                return PADCTL_EXIT_FAILURE;
        if (*types)
                r = sd_bus_call_method(bus, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, method, &e, NULL, types, node, max);
        else
                r = sd_bus_call_method(bus, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, method, &e, NULL, "");
        if (r < 0) {
                r = call_failed(method, &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        return PADCTL_EXIT_OK;
}

int padctl_set_quota(const Padctl *p, int argc, char **argv) {
        static const struct option options[] = { { "help", no_argument, NULL, 'h' }, {} };
        uint64_t max, n;
        int node = -1, c, r;

        while ((c = padctl_getopt("set-quota", argc, argv, ":h", options)) >= 0)
                return c == 'h' ? PADCTL_EXIT_OK : PADCTL_EXIT_USAGE;
        r = padctl_positional("set-quota", argc, argv, 2, 2);
        if (r)
                return r;
        if (!streq(argv[optind], "machine")) {
                r = padctl_parse_uint("set-quota", "NODE (a node number or 'machine')", argv[optind], INT_MAX, &n);
                if (r)
                        return r;
                node = (int) n;
        }
        r = padctl_parse_uint("set-quota", "MAX", argv[optind + 1], UINT32_MAX, &max);
        if (r)
                return r;
        r = admin_call(p, "SetQuota", "iu", node, (unsigned) max);
        if (r == 0 && !p->quiet) {
                if (node < 0)
                        printf("Machine-wide quota set to %u helpers.\n", (unsigned) max);
                else
                        printf("Quota of node %d set to %u helpers.\n", node, (unsigned) max);
        }
        return r;
}

int padctl_reload(const Padctl *p, int argc, char **argv) {
        static const struct option options[] = { { "help", no_argument, NULL, 'h' }, {} };
        int c, r;

        while ((c = padctl_getopt("reload", argc, argv, ":h", options)) >= 0)
                return c == 'h' ? PADCTL_EXIT_OK : PADCTL_EXIT_USAGE;
        r = padctl_positional("reload", argc, argv, 0, 0);
        if (r)
                return r;
        r = admin_call(p, "Reload", "", 0, 0);
        if (r == 0 && !p->quiet)
                printf("paddd reloaded its configuration.\n");
        return r;
}
