/* padctl-monitor.c: `padctl monitor`, the broker's state followed live through libpadclient.
 * The state (quotas, use per node, every lease) is read again only when the library's
 * broker watch reports a PropertiesChanged or the broker's name changing owner; there is no
 * polling loop for it. On a terminal the status view and the statistics are redrawn in
 * place, and the statistics alone are read again on a slow timer (--interval) since paddd
 * sends no signal for them; the state shown then is the one last read. Elsewhere (a pipe, a file) each change is one line of
 * key=value fields, written only when it differs from the line before. Ctrl-C or SIGTERM
 * ends it with exit status 0. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "padctl.h"
#include "util.h"

#define MSG_MAX 512
#define LINE_MAX_LEN 65536
#define INTERVAL_DEFAULT_USEC (5 * 1000000ULL)

DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);
DEFINE_POINTER_CLEANUP(pad_broker_watch, pad_broker_watch_free);
DEFINE_POINTER_CLEANUP(pad_broker_status, pad_broker_status_free);
DEFINE_POINTER_CLEANUP(pad_lease_list, pad_lease_list_free);

typedef struct Monitor {
        pad_client *client;
        bool tty;
        uint64_t interval_usec;
        char *last_line;        /* the line mode's last line, to write only changes */
        pad_broker_status *status;      /* the state as last read, NULL while paddd is absent */
        pad_lease_list *leases;
        pad_broker_statistics *stats;
} Monitor;

static void monitor_forget(Monitor *m) {
        m->status = pad_broker_status_free(m->status);
        m->leases = pad_lease_list_free(m->leases);
        m->stats = pad_broker_statistics_free(m->stats);
        free(m->last_line);
        m->last_line = NULL;
}

/* ---- the line mode -------------------------------------------------------------------------- */

typedef struct Line {
        char buf[LINE_MAX_LEN];
        size_t len;
} Line;

static void line_add(Line *l, const char *fmt, ...) _printf_(2, 3);
static void line_add(Line *l, const char *fmt, ...) {
        va_list ap;
        int n;

        if (l->len >= sizeof(l->buf) - 1)
                return;
        va_start(ap, fmt);
        n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
        va_end(ap);
        if (n > 0)
                l->len = MIN(l->len + (size_t) n, sizeof(l->buf) - 1);
}

/* A tag as one field: blanks, quotes and control characters as \xNN. */
static void line_add_tag(Line *l, const char *tag) {
        line_add(l, ",tag=");
        for (const unsigned char *t = (const unsigned char *) tag; *t; t++)
                if (*t <= ' ' || *t == '\\' || *t == '"' || *t == 0x7f)
                        line_add(l, "\\x%02x", *t);
                else
                        line_add(l, "%c", *t);
}

static void line_add_state(Line *l, const pad_broker_status *s, const pad_lease_list *leases) {
        line_add(l, "max_helpers=%u in_use=%u leases=%u waiting=%u", s->max_helpers, s->in_use, s->leases,
                 s->waiting);
        for (unsigned i = 0; i < s->n_nodes; i++)
                line_add(l, " node=%d:%u/%u", s->nodes[i]->node, s->nodes[i]->in_use, s->nodes[i]->max_helpers);
        for (unsigned i = 0; leases && i < leases->n; i++) {
                const pad_lease_info *x = leases->leases[i];
                const char *slash = strrchr(x->path, '/');

                line_add(l, " lease=%s,uid=%u,pid=%u,granted=%u,owner=%s", slash ? slash + 1 : x->path, x->uid,
                         x->pid, x->granted, x->owner);
                line_add_tag(l, x->tag);
        }
}

static void line_add_statistics(Line *l, const pad_broker_statistics *st) {
        for (unsigned i = 0; st && i < st->n_counters; i++)
                line_add(l, " %s=%" PRIu64, st->counters[i].name, st->counters[i].value);
}

/* Write the line unless it is the one written last. */
static int monitor_emit_line(Monitor *m, const Line *l) {
        if (m->last_line && streq(m->last_line, l->buf))
                return 0;
        free(m->last_line);
        m->last_line = strdup(l->buf);
        if (!m->last_line)
                return padctl_fail("out of memory");
        printf("%s\n", l->buf);
        return fflush(stdout) == 0 ? 0 : padctl_fail("writing to stdout: %m");
}

/* ---- reading and showing ------------------------------------------------------------------------ */

static void monitor_show_statistics(const pad_broker_statistics *st) {
        uint64_t waits = 0;

        printf("\nStatistics since paddd started:\n ");
        for (unsigned i = 0; i < st->n_counters; i++)
                printf(" %s=%" PRIu64 "%s", st->counters[i].name, st->counters[i].value,
                       i % 6 == 5 && i + 1 < st->n_counters ? "\n " : "");
        for (unsigned i = 0; i < st->n_wait_buckets; i++)
                waits += st->wait_buckets[i].count;
        printf("\n  waits ended: %" PRIu64 ", mean wait %.3f s\n", waits,
               waits ? (double) st->wait_usec_sum / (double) waits / 1e6 : 0.0);
}

static void monitor_show_absent(const Monitor *m, const char *msg) {
        if (m->tty)
                printf("\033[H\033[2J%s\n\nWaiting for paddd; Ctrl-C to quit.\n", msg);
        else
                printf("paddd=absent reason=\"%s\"\n", msg);
        fflush(stdout);
}

/* Read the state (with state; also when none is known) and the statistics again: 0,
 * -EHOSTDOWN when paddd is not there (msg says why), or the failure printed and 1. */
static int monitor_read(Monitor *m, bool state, char *msg, size_t len) {
        pad_broker_statistics *st = NULL;
        int r;

        if (state || !m->status) {
                _cleanup_(pad_broker_status_freep) pad_broker_status *s = NULL;
                _cleanup_(pad_lease_list_freep) pad_lease_list *l = NULL;

                r = pad_broker_status_get(m->client, &s, msg, len);
                if (r >= 0)
                        r = pad_broker_list_leases(m->client, &l, msg, len);
                if (r == -EHOSTDOWN)
                        return r;
                if (r < 0)
                        return padctl_fail("reading the broker's state: %s", msg[0] ? msg : strerror(-r));
                pad_broker_status_free(m->status);
                pad_lease_list_free(m->leases);
                m->status = TAKE_PTR(s);
                m->leases = TAKE_PTR(l);
        }
        r = pad_broker_statistics_get(m->client, &st, msg, len);
        if (r == -EHOSTDOWN)
                return r;
        if (r < 0)
                return padctl_fail("GetStatistics: %s", msg[0] ? msg : strerror(-r));
        pad_broker_statistics_free(m->stats);
        m->stats = st;
        return 0;
}

/* What was read, redrawn (terminal) or as one line if it differs from the last one. */
static int monitor_show(Monitor *m) {
        Line *l;
        int r;

        if (m->tty) {
                printf("\033[H\033[2J");
                r = padctl_status_show(m->client, m->status, m->leases, true);
                monitor_show_statistics(m->stats);
                printf("\nLive; statistics every %.1f s. Ctrl-C to quit.\n", (double) m->interval_usec / 1e6);
                fflush(stdout);
                return r;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return padctl_fail("out of memory");
        line_add_state(l, m->status, m->leases);
        line_add_statistics(l, m->stats);
        r = monitor_emit_line(m, l);
        free(l);
        return r;
}

/* Read again (the state only when it changed) and show it; paddd not there is shown, not
 * fatal. */
static int monitor_refresh(Monitor *m, bool state) {
        char msg[MSG_MAX];
        int r = monitor_read(m, state, msg, sizeof(msg));

        if (r == -EHOSTDOWN) {
                monitor_forget(m);
                monitor_show_absent(m, msg);
                return 0;
        }
        return r ? r : monitor_show(m);
}

/* ---- the loop ---------------------------------------------------------------------------------- */

static int signalfd_open(void) {
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        fd = signalfd(-1, &mask, SFD_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Until a signal: 0 after Ctrl-C/SIGTERM, else the failure printed. The watch is processed
 * before each poll: its connection may hold messages read already. */
static int monitor_loop(Monitor *m, pad_broker_watch *w, int sfd) {
        int timeout = m->tty ? (int) (m->interval_usec / 1000) : -1;

        for (;;) {
                int r = pad_broker_watch_process(w), n;

                if (r == -ECONNRESET)
                        return padctl_fail("the bus %s went away", pad_client_bus(m->client));
                if (r < 0)
                        return padctl_fail("reading the broker's signals: %s", strerror(-r));
                if (r > 0 && monitor_refresh(m, true))
                        return PADCTL_EXIT_FAILURE;

                struct pollfd p[2] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = pad_broker_watch_get_fd(w), .events = (short) pad_broker_watch_get_events(w) },
                };
                n = poll(p, 2, timeout);
                if (n < 0 && errno != EINTR)
                        return padctl_fail("poll: %m");
                if (n > 0 && p[0].revents)
                        return 0;
                if (n == 0 && monitor_refresh(m, false))
                        return PADCTL_EXIT_FAILURE;
        }
}

static int monitor_parse(Padctl *p, int argc, char **argv, Monitor *m) {
        enum { ARG_INTERVAL = 0x100 };
        static const struct option options[] = {
                { "interval", required_argument, NULL, ARG_INTERVAL },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c, r;

        while ((c = padctl_getopt(p, argc, argv, ":h", options)) >= 0) {
                switch (c) {
                case ARG_INTERVAL:
                        r = padctl_parse_seconds("monitor", "--interval", optarg, &m->interval_usec);
                        if (r)
                                return r;
                        if (m->interval_usec < 100000)
                                return padctl_usage_error("monitor", "--interval must be at least 0.1 s");
                        break;
                case 'h':
                        return -1;
                default:
                        return PADCTL_EXIT_USAGE;
                }
        }
        return padctl_positional("monitor", argc, argv, 0, 0);
}

int padctl_monitor(Padctl *p, int argc, char **argv) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        _cleanup_(pad_broker_watch_freep) pad_broker_watch *w = NULL;
        _cleanup_close_ int sfd = -1;
        Monitor m = { .tty = isatty(STDOUT_FILENO), .interval_usec = INTERVAL_DEFAULT_USEC };
        char msg[MSG_MAX];
        int r;

        r = monitor_parse(p, argc, argv, &m);
        if (r)
                return r < 0 ? PADCTL_EXIT_OK : r;
        if (padctl_client_new(p, &c))
                return PADCTL_EXIT_FAILURE;
        m.client = c;
        sfd = signalfd_open();
        if (sfd < 0)
                return padctl_fail("blocking SIGINT and SIGTERM: %s", strerror(-sfd));
        /* Subscribe first, then read: no change falls between the two. */
        r = pad_broker_watch_new(c, &w, msg, sizeof(msg));
        if (r < 0)
                return padctl_fail("watching the broker: %s", msg[0] ? msg : strerror(-r));
        r = monitor_refresh(&m, true);
        if (r == 0)
                r = monitor_loop(&m, w, sfd);
        monitor_forget(&m);
        return r;
}
