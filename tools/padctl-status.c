/* padctl-status.c: padctl's broker commands, all through libpadclient: `status` (the
 * broker's properties and every lease with its placement, printed as tables with the
 * owners' user and process names, or as one JSON object with -o json), `set-quota` and
 * `reload`. A failure is shown as the
 * library reports it: the D-Bus error's name and message, or why there is no broker. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "padctl.h"
#include "util.h"

#define MSG_MAX 512

DEFINE_POINTER_CLEANUP(PadctlTable, padctl_table_free);
DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);
DEFINE_POINTER_CLEANUP(pad_broker_status, pad_broker_status_free);
DEFINE_POINTER_CLEANUP(pad_lease_list, pad_lease_list_free);

static const char *bus_describe(const char *bus) {
        return streq(bus, "system") ? "the system bus" : streq(bus, "session") ? "the session bus" : bus;
}

/* ---- status ------------------------------------------------------------------------------------ */

static void print_nodes(const pad_broker_status *s, bool legend) {
        static const char *const headers[] = { ">NODE", ">CPUS", ">MAX", ">IN USE", ">FREE" };
        _cleanup_(padctl_table_freep) PadctlTable *t = padctl_table_new(ELEMENTSOF(headers), headers);

        if (!t)
                return;
        for (unsigned i = 0; i < s->n_nodes; i++) {
                const pad_broker_node *n = s->nodes[i];
                char c[5][16];
                const char *cells[5] = { c[0], c[1], c[2], c[3], c[4] };

                snprintf(c[0], sizeof(c[0]), "%d", n->node);
                snprintf(c[1], sizeof(c[1]), "%u", n->cpus);
                snprintf(c[2], sizeof(c[2]), "%u", n->max_helpers);
                snprintf(c[3], sizeof(c[3]), "%u", n->in_use);
                snprintf(c[4], sizeof(c[4]), "%u", n->max_helpers > n->in_use ? n->max_helpers - n->in_use : 0);
                if (padctl_table_add(t, cells) < 0)
                        return;
        }
        padctl_table_print(t, stdout, "  ", legend);
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

/* "0:2,1:1", or "-" when the lease has no placement (it went away while being listed). */
static void format_placement(const pad_lease_info *i, char *buf, size_t len) {
        size_t o = 0;

        snprintf(buf, len, "-");
        for (unsigned k = 0; k < i->n_placement && o < len; k++) {
                int w = snprintf(buf + o, len - o, "%s%d:%u", o ? "," : "", i->placement_node[k],
                                 i->placement_helpers[k]);
                if (w < 0)
                        break;
                o += (size_t) w;
        }
}

static int lease_row_add(PadctlTable *t, const pad_lease_info *i) {
        char id[32], user[64], spid[16], comm[32], sgranted[16], place[128];
        const char *cells[] = { id, user, spid, comm, sgranted, place, i->owner, *i->tag ? i->tag : "-" };
        const char *slash = strrchr(i->path, '/');
        struct passwd *pw = getpwuid(i->uid);

        snprintf(id, sizeof(id), "%s", slash ? slash + 1 : i->path);
        if (pw)
                snprintf(user, sizeof(user), "%s", pw->pw_name);
        else
                snprintf(user, sizeof(user), "%u", i->uid);
        snprintf(spid, sizeof(spid), "%u", i->pid);
        process_name((pid_t) i->pid, comm, sizeof(comm));
        snprintf(sgranted, sizeof(sgranted), "%u", i->granted);
        format_placement(i, place, sizeof(place));
        return padctl_table_add(t, cells);
}

int padctl_list_leases(pad_client *c, pad_lease_list **ret) {
        char msg[MSG_MAX];
        int r = pad_broker_list_leases(c, ret, msg, sizeof(msg));

        return r < 0 ? padctl_fail("ListLeases: %s", msg[0] ? msg : strerror(-r)) : 0;
}

static int print_leases(const pad_lease_list *l, bool legend) {
        static const char *const headers[] = { ">LEASE", "USER", ">PID", "PROCESS", ">GRANTED", "PLACEMENT",
                                               "BUS NAME", "TAG" };
        _cleanup_(padctl_table_freep) PadctlTable *t = NULL;

        if (l->n == 0) {
                printf(legend ? "\nNo leases.\n" : "\n");
                return 0;
        }
        t = padctl_table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return padctl_fail("out of memory");
        for (unsigned i = 0; i < l->n; i++)
                if (lease_row_add(t, l->leases[i]) < 0)
                        return padctl_fail("out of memory");
        printf(legend ? "\nLeases:\n" : "\n");
        padctl_table_print(t, stdout, "  ", legend);
        return 0;
}

int padctl_status_show(pad_client *c, const pad_broker_status *s, const pad_lease_list *l, bool legend) {
        if (legend) {
                printf("paddd %s on %s: %u of %u helpers lent, %u lease%s, %u waiting; helper policy %s\n",
                       s->version ? s->version : "?", bus_describe(pad_client_bus(c)), s->in_use, s->max_helpers,
                       s->leases, s->leases == 1 ? "" : "s", s->waiting, s->helper_policy ? s->helper_policy : "?");
                if (s->in_use > s->max_helpers)
                        printf("(more in use than the machine quota: the quota was lowered; no new grants until use falls)\n");
                printf("\nNodes:\n");
        }
        print_nodes(s, legend);
        return print_leases(l, legend);
}

/* ---- status -o json --------------------------------------------------------------------------- */

static void json_nodes(FILE *f, const pad_broker_status *s) {
        fputs("\"nodes\":[", f);
        for (unsigned i = 0; i < s->n_nodes; i++) {
                const pad_broker_node *n = s->nodes[i];

                fprintf(f, "%s{\"node\":%d,\"cpus\":%u,\"max_helpers\":%u,\"in_use\":%u}", i ? "," : "", n->node,
                        n->cpus, n->max_helpers, n->in_use);
        }
        fputs("]", f);
}

static void json_lease(FILE *f, const pad_lease_info *i) {
        const char *slash = strrchr(i->path, '/');
        struct passwd *pw = getpwuid(i->uid);
        char comm[32];

        process_name((pid_t) i->pid, comm, sizeof(comm));
        fputs("{\"id\":", f);
        padctl_json_string(f, slash ? slash + 1 : i->path);
        fputs(",\"path\":", f);
        padctl_json_string(f, i->path);
        fprintf(f, ",\"uid\":%u,\"user\":", i->uid);
        if (pw)
                padctl_json_string(f, pw->pw_name);
        else
                fputs("null", f);
        fprintf(f, ",\"pid\":%u,\"process\":", i->pid);
        padctl_json_string(f, comm);
        fprintf(f, ",\"granted\":%u,\"placement\":[", i->granted);
        for (unsigned k = 0; k < i->n_placement; k++)
                fprintf(f, "%s{\"node\":%d,\"helpers\":%u}", k ? "," : "", i->placement_node[k],
                        i->placement_helpers[k]);
        fputs("],\"owner\":", f);
        padctl_json_string(f, i->owner);
        fputs(",\"tag\":", f);
        padctl_json_string(f, i->tag);
        fputs("}", f);
}

static int status_json(pad_client *c, const pad_broker_status *s, const pad_lease_list *l) {
        fputs("{\"version\":", stdout);
        padctl_json_string(stdout, s->version ? s->version : "");
        fputs(",\"bus\":", stdout);
        padctl_json_string(stdout, pad_client_bus(c));
        fprintf(stdout, ",\"max_helpers\":%u,\"in_use\":%u,\"waiting\":%u,\"n_leases\":%u,\"helper_policy\":",
                s->max_helpers, s->in_use, s->waiting, s->leases);
        padctl_json_string(stdout, s->helper_policy ? s->helper_policy : "");
        fputs(",", stdout);
        json_nodes(stdout, s);
        fputs(",\"leases\":[", stdout);
        for (unsigned i = 0; i < l->n; i++) {
                fputs(i ? "," : "", stdout);
                json_lease(stdout, l->leases[i]);
        }
        fputs("]}\n", stdout);
        return fflush(stdout) == 0 ? 0 : padctl_fail("writing to stdout: %m");
}

static int status_parse(Padctl *p, int argc, char **argv, bool *ret_json) {
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        while ((c = padctl_getopt(p, argc, argv, ":ho:", options)) >= 0) {
                if (c == 'h')
                        return -1;
                if (c != 'o')
                        return PADCTL_EXIT_USAGE;
                if (!streq(optarg, "json") && !streq(optarg, "text"))
                        return padctl_usage_error("status", "unknown output format '%s' (text or json)", optarg);
                *ret_json = streq(optarg, "json");
        }
        return padctl_positional("status", argc, argv, 0, 0);
}

/* A command without options: -1 after --help, a usage error, or 0. */
static int no_options(Padctl *p, int argc, char **argv, int n_args) {
        static const struct option options[] = { { "help", no_argument, NULL, 'h' }, {} };
        int c;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0)
                return c == 'h' ? -1 : PADCTL_EXIT_USAGE;
        return padctl_positional(p->command->name, argc, argv, n_args, n_args);
}

int padctl_status(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        _cleanup_(pad_broker_status_freep) pad_broker_status *s = NULL;
        _cleanup_(pad_lease_list_freep) pad_lease_list *l = NULL;
        char msg[MSG_MAX];
        bool json = false;
        int r;

        r = status_parse(p, argc, argv, &json);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        if (padctl_client_new(p, &c))
                return PADCTL_EXIT_FAILURE;
        r = pad_broker_status_get(c, &s, msg, sizeof(msg));
        if (r < 0)
                return padctl_fail("reading the broker's properties: %s", msg[0] ? msg : strerror(-r));
        if (padctl_list_leases(c, &l))
                return PADCTL_EXIT_FAILURE;
        r = json ? status_json(c, s, l) : padctl_status_show(c, s, l, !p->no_legend);
        return r == 0 ? PADCTL_EXIT_OK : PADCTL_EXIT_FAILURE;
}

/* ---- set-quota, reload ---------------------------------------------------------------------- */

int padctl_set_quota(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        char msg[MSG_MAX];
        uint64_t max, n;
        int node = PAD_NODE_ANY, r;

        r = no_options(p, argc, argv, 2);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        if (!streq(argv[optind], "machine")) {
                r = padctl_parse_uint("set-quota", "NODE (a node number or 'machine')", argv[optind], INT_MAX, &n);
                if (r)
                        return r;
                node = (int) n;
        }
        r = padctl_parse_uint("set-quota", "MAX", argv[optind + 1], UINT32_MAX, &max);
        if (r)
                return r;
        if (padctl_client_new(p, &c))
                return PADCTL_EXIT_FAILURE;
        r = pad_broker_set_quota(c, node, (unsigned) max, msg, sizeof(msg));
        if (r < 0)
                return padctl_fail("SetQuota: %s", msg[0] ? msg : strerror(-r));
        if (!p->quiet) {
                if (node < 0)
                        printf("Machine-wide quota set to %u helpers.\n", (unsigned) max);
                else
                        printf("Quota of node %d set to %u helpers.\n", node, (unsigned) max);
        }
        return PADCTL_EXIT_OK;
}

int padctl_reload(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        char msg[MSG_MAX];
        int r;

        r = no_options(p, argc, argv, 0);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        if (padctl_client_new(p, &c))
                return PADCTL_EXIT_FAILURE;
        r = pad_broker_reload(c, msg, sizeof(msg));
        if (r < 0)
                return padctl_fail("Reload: %s", msg[0] ? msg : strerror(-r));
        if (!p->quiet)
                printf("paddd reloaded its configuration.\n");
        return PADCTL_EXIT_OK;
}
