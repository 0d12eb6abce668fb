/* padctl-metrics.c: `padctl metrics`, the broker's state and statistics in the Prometheus
 * text exposition format, through libpadclient: gauges for the quotas and their use
 * (machine-wide and per node), paddd_up (0 and nothing else when paddd does not answer),
 * a counter per statistics counter, grants and helpers per
 * node and per user, and the wait histogram as paddd_wait_seconds. To stdout, or with
 * --textfile DIR to DIR/paddd.prom for node_exporter's textfile collector, replaced
 * atomically: written to a temporary file in DIR, synced, renamed over it. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "padctl.h"
#include "util.h"

#define MSG_MAX 512
#define TEXTFILE_NAME "paddd.prom"

DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);
DEFINE_POINTER_CLEANUP(pad_broker_status, pad_broker_status_free);
DEFINE_POINTER_CLEANUP(pad_broker_statistics, pad_broker_statistics_free);

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(FILE *f, const char *name, const char *help, unsigned v) {
        family(f, name, "gauge", help);
        fprintf(f, "%s %u\n", name, v);
}

static void write_status(FILE *f, const pad_broker_status *s) {
        gauge(f, "paddd_max_helpers", "Machine-wide helper quota.", s->max_helpers);
        gauge(f, "paddd_in_use", "Helpers lent now.", s->in_use);
        gauge(f, "paddd_leases", "Leases held now.", s->leases);
        gauge(f, "paddd_waiting", "Acquire calls queued now.", s->waiting);
        family(f, "paddd_node_max_helpers", "gauge", "Helper quota of the NUMA node.");
        for (unsigned i = 0; i < s->n_nodes; i++)
                fprintf(f, "paddd_node_max_helpers{node=\"%d\"} %u\n", s->nodes[i]->node, s->nodes[i]->max_helpers);
        family(f, "paddd_node_in_use", "gauge", "Helpers lent now from the NUMA node.");
        for (unsigned i = 0; i < s->n_nodes; i++)
                fprintf(f, "paddd_node_in_use{node=\"%d\"} %u\n", s->nodes[i]->node, s->nodes[i]->in_use);
}

/* Counter names are paddd's ([a-z_]); anything else is left out rather than written wrong. */
static bool metric_name_ok(const char *s) {
        return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

static void write_grant_counts(FILE *f, const char *what, const char *label,
                               const pad_broker_grant_count *g, unsigned n) {
        char name[64], help[128];

        snprintf(name, sizeof(name), "paddd_%s_grants_total", what);
        snprintf(help, sizeof(help), "Grants per %s since paddd started.", label);
        family(f, name, "counter", help);
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "%s{%s=\"%" PRId64 "\"} %" PRIu64 "\n", name, label, g[i].id, g[i].grants);
        snprintf(name, sizeof(name), "paddd_%s_helpers_granted_total", what);
        snprintf(help, sizeof(help), "Helpers granted per %s since paddd started.", label);
        family(f, name, "counter", help);
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "%s{%s=\"%" PRId64 "\"} %" PRIu64 "\n", name, label, g[i].id, g[i].helpers);
}

static void write_histogram(FILE *f, const pad_broker_statistics *st) {
        uint64_t cumulative = 0;
        bool inf = false;

        family(f, "paddd_wait_seconds", "histogram", "Time queued Acquire calls waited.");
        for (unsigned i = 0; i < st->n_wait_buckets; i++) {
                const pad_broker_wait_bucket *b = &st->wait_buckets[i];

                cumulative += b->count;
                if (b->le_usec == UINT64_MAX) {
                        inf = true;
                        fprintf(f, "paddd_wait_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
                } else
                        fprintf(f, "paddd_wait_seconds_bucket{le=\"%.9g\"} %" PRIu64 "\n",
                                (double) b->le_usec / 1e6, cumulative);
        }
        if (!inf)
                fprintf(f, "paddd_wait_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
        fprintf(f, "paddd_wait_seconds_sum %.6f\n", (double) st->wait_usec_sum / 1e6);
        fprintf(f, "paddd_wait_seconds_count %" PRIu64 "\n", cumulative);
}

static void write_statistics(FILE *f, const pad_broker_statistics *st) {
        for (unsigned i = 0; i < st->n_counters; i++) {
                const pad_broker_counter *k = &st->counters[i];
                char name[96], help[160];

                if (!metric_name_ok(k->name) || strlen(k->name) > 64)
                        continue;
                snprintf(name, sizeof(name), "paddd_%s_total", k->name);
                snprintf(help, sizeof(help), "paddd's %s counter since it started.", k->name);
                family(f, name, "counter", help);
                fprintf(f, "%s %" PRIu64 "\n", name, k->value);
        }
        write_grant_counts(f, "node", "node", st->nodes, st->n_nodes);
        write_grant_counts(f, "user", "uid", st->users, st->n_users);
        write_histogram(f, st);
}

/* ---- --textfile -------------------------------------------------------------------------------- */

/* Write the text into DIR/paddd.prom atomically: 0, or the failure printed. */
static int write_textfile(const char *dir, const char *text, size_t len) {
        char tmp[4096], final[4096];
        FILE *f;
        int fd;

        if (snprintf(final, sizeof(final), "%s/" TEXTFILE_NAME, dir) >= (int) sizeof(final) ||
            snprintf(tmp, sizeof(tmp), "%s/." TEXTFILE_NAME ".XXXXXX", dir) >= (int) sizeof(tmp))
                return padctl_fail("--textfile %s: path too long", dir);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return padctl_fail("creating a temporary file in %s: %m", dir);
        f = fdopen(fd, "w");
        if (!f) {
                safe_close(fd);
                unlink(tmp);
                return padctl_fail("fdopen %s: %m", tmp);
        }
        if (fchmod(fd, 0644) < 0 || fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fd) < 0) {
                int e = errno;

                fclose(f);
                unlink(tmp);
                return padctl_fail("writing %s: %s", tmp, strerror(e));
        }
        if (fclose(f) != 0 || rename(tmp, final) < 0) {
                int e = errno;

                unlink(tmp);
                return padctl_fail("replacing %s: %s", final, strerror(e));
        }
        return 0;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int metrics_parse(Padctl *p, int argc, char **argv, const char **ret_dir) {
        enum { ARG_TEXTFILE = 0x100 };
        static const struct option options[] = {
                { "textfile", required_argument, NULL, ARG_TEXTFILE },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_TEXTFILE:
                        if (!*optarg)
                                return padctl_usage_error("metrics", "--textfile needs a folder");
                        *ret_dir = optarg;
                        break;
                case 'h':
                        return -1;
                default:
                        return PADCTL_EXIT_USAGE;
                }
        }
        return padctl_positional("metrics", argc, argv, 0, 0);
}

/* Ask paddd: 0, or the errno why it did not answer (said so on stderr). */
static int metrics_read(pad_client *c, pad_broker_status **ret_s, pad_broker_statistics **ret_st) {
        char msg[MSG_MAX];
        int r;

        r = pad_broker_status_get(c, ret_s, msg, sizeof(msg));
        if (r >= 0)
                r = pad_broker_statistics_get(c, ret_st, msg, sizeof(msg));
        if (r < 0) {
                padctl_fail("reading the broker's state and statistics: %s", msg[0] ? msg : strerror(-r));
                return r;
        }
        return 0;
}

/* The whole exposition into a memory buffer; when paddd did not answer (no bus, no paddd,
 * refused) only paddd_up 0, so that a textfile left from before does not go on showing its
 * old values. 0, the errno of the failed read (said so), or out of memory printed and 1. */
static int metrics_render(pad_client *c, char **ret, size_t *ret_len) {
        _cleanup_(pad_broker_status_freep) pad_broker_status *s = NULL;
        _cleanup_(pad_broker_statistics_freep) pad_broker_statistics *st = NULL;
        FILE *f;
        int r;

        r = metrics_read(c, &s, &st);
        if (r == -ENOMEM)
                return PADCTL_EXIT_FAILURE;
        f = open_memstream(ret, ret_len);
        if (!f)
                return padctl_fail("out of memory");
        gauge(f, "paddd_up", "1 when paddd answered, else 0.", r == 0);
        if (r == 0) {
                write_status(f, s);
                write_statistics(f, st);
        }
        if (fclose(f) != 0)
                return padctl_fail("out of memory");
        return r;
}

int padctl_metrics(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        _cleanup_free_ char *text = NULL;
        const char *dir = NULL;
        size_t len = 0;
        int r;

        r = metrics_parse(p, argc, argv, &dir);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        if (padctl_client_new(p, &c))
                return PADCTL_EXIT_FAILURE;
        r = metrics_render(c, &text, &len);
        if (r > 0)
                return PADCTL_EXIT_FAILURE;
        if (dir ? write_textfile(dir, text, len) != 0 : fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
                return dir ? PADCTL_EXIT_FAILURE : padctl_fail("writing to stdout: %m");
        return r < 0 ? PADCTL_EXIT_FAILURE : PADCTL_EXIT_OK;
}
