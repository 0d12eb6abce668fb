/* padctl-util.c: the plumbing padctl's commands share: usage errors, a command's help and
 * option parsing with getopt_long, command-line number/size/time parsing on top of
 * common/parse.c, a text table, the terminal progress bar, the closing job summary and
 * Ctrl-C cancellation. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker-contract.h"
#include "padctl.h"
#include "parse.h"
#include "util.h"

int padctl_usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "padctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'padctl %s%s--help' for more information.\n", cmd ? cmd : "", cmd ? " " : "");
        return PADCTL_EXIT_USAGE;
}

int padctl_fail(const char *fmt, ...) {
        va_list ap;

        fputs("padctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return PADCTL_EXIT_FAILURE;
}

void padctl_command_help(const PadctlCommand *c, FILE *f) {
        if (!c)
                return;
        fprintf(f, "Usage: padctl [GLOBAL OPTIONS] %s%s%s%s\n\n%s\n\nOptions:\n%s", c->name, *c->args ? " " : "",
                c->args, *c->options ? " [OPTIONS]" : "", c->summary, c->options);
        fprintf(f, "  -h --help          show this help\n");
        if (*c->notes)
                fprintf(f, "\n%s", c->notes);
}

int padctl_client_new(Padctl *p, pad_client **ret) {
        int r = pad_client_new(p->bus, ret);

        if (r < 0)
                return padctl_fail("cannot use bus '%s': %s", p->bus ? p->bus : "(default)", strerror(-r));
        return 0;
}

/* The command's options and the global ones, in one table for getopt_long. */
static const struct option *options_with_globals(const struct option *longopts, const char *shortopts,
                                                 char *ret_short, size_t short_len) {
        static const struct option globals[] = {
                { "bus", required_argument, NULL, PADCTL_OPT_BUS },
                { "quiet", no_argument, NULL, 'q' },
                { "no-legend", no_argument, NULL, PADCTL_OPT_NO_LEGEND },
        };
        static struct option merged[64];
        size_t n = 0;

        for (; longopts[n].name && n < ELEMENTSOF(merged) - ELEMENTSOF(globals) - 1; n++)
                merged[n] = longopts[n];
        for (size_t i = 0; i < ELEMENTSOF(globals); i++)
                merged[n++] = globals[i];
        merged[n] = (struct option) {};
        snprintf(ret_short, short_len, "%sq", shortopts);
        return merged;
}

/* A global option given after the command: 0 when taken, else a usage error printed. */
static int take_global(Padctl *p, int c) {
        switch (c) {
        case PADCTL_OPT_BUS:
                if (!*optarg)
                        return padctl_usage_error(NULL, "--bus needs a bus: system, session or an address");
                p->bus = optarg;
                return 0;
        case 'q':
                p->quiet = true;
                return 0;
        default:
                p->no_legend = true;
                return 0;
        }
}

static bool is_global(int c) {
        return c == PADCTL_OPT_BUS || c == 'q' || c == PADCTL_OPT_NO_LEGEND;
}

int padctl_getopt(Padctl *p, int argc, char **argv, const char *shortopts,
                  const struct option *longopts) {
        const char *cmd = p->command->name;
        char short_all[64];
        const struct option *all = options_with_globals(longopts, shortopts, short_all, sizeof(short_all));
        int c;

        opterr = 0;
        while (is_global(c = getopt_long(argc, argv, short_all, all, NULL)))
                if (take_global(p, c))
                        return '?';
        if (c == 'h') {
                padctl_command_help(p->command, stdout);
                return 'h';
        }
        if (c == '?') {
                const char *arg = argv[optind - 1];

                if (optopt && strncmp(arg, "--", 2) != 0)
                        padctl_usage_error(cmd, "unknown option '-%c'", optopt);
                else
                        padctl_usage_error(cmd, "unknown option '%s'", arg);
                return '?';
        }
        if (c == ':') {
                padctl_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
                return '?';
        }
        return c;
}

int padctl_positional(const char *cmd, int argc, char **argv, int n_min, int n_max) {
        int n = argc - optind;

        if (n < n_min)
                return padctl_usage_error(cmd, "missing argument");
        if (n > n_max)
                return padctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + n_max]);
        return 0;
}

int padctl_parse_size(const char *cmd, const char *what, const char *s, uint64_t *ret) {
        int r = parse_size(s, ret);

        if (r == -ERANGE)
                return padctl_usage_error(cmd, "%s '%s' is too large", what, s);
        if (r < 0)
                return padctl_usage_error(cmd, "%s '%s' is not a size (bytes, or with a K, M, G or T suffix)",
                                          what, s);
        return 0;
}

int padctl_parse_uint(const char *cmd, const char *what, const char *s, uint64_t max, uint64_t *ret) {
        int r = parse_unsigned(s, max, ret);

        if (r == -ERANGE)
                return padctl_usage_error(cmd, "%s '%s' is out of range (at most %llu)", what, s,
                                          (unsigned long long) max);
        if (r < 0)
                return padctl_usage_error(cmd, "%s '%s' is not a number", what, s);
        return 0;
}

int padctl_parse_node(const char *cmd, const char *s, int *ret) {
        uint64_t v;
        int r;

        if (streq(s, "any")) {
                *ret = PAD_NODE_ANY;
                return 0;
        }
        r = padctl_parse_uint(cmd, "node", s, BROKER_NODE_ID_MAX, &v);
        if (r)
                return r;
        *ret = (int) v;
        return 0;
}

/* Seconds with up to 6 decimals: "2", "0.5", "1.25". */
int padctl_parse_seconds(const char *cmd, const char *what, const char *s, uint64_t *ret_usec) {
        const char *dot = strchr(s, '.');
        char whole[32];
        uint64_t sec, frac = 0;
        size_t n = dot ? (size_t) (dot - s) : strlen(s);

        if (n == 0 || n >= sizeof(whole))
                goto bad;
        memcpy(whole, s, n);
        whole[n] = 0;
        if (parse_unsigned(whole, UINT64_MAX / 1000000 - 1, &sec) < 0)
                goto bad;
        if (dot) {
                const char *d = dot + 1;
                uint64_t scale = 100000;

                if (!*d || strlen(d) > 6)
                        goto bad;
                for (; *d; d++, scale /= 10) {
                        if (*d < '0' || *d > '9')
                                goto bad;
                        frac += (uint64_t) (*d - '0') * scale;
                }
        }
        *ret_usec = sec * 1000000 + frac;
        return 0;
bad:
        return padctl_usage_error(cmd, "%s '%s' is not a number of seconds", what, s);
}

uint64_t padctl_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

double padctl_gib_per_s(uint64_t bytes, uint64_t usec) {
        if (usec == 0)
                usec = 1;
        return (double) bytes / (1024.0 * 1024.0 * 1024.0) / ((double) usec / 1e6);
}

const char *padctl_format_placement(char *buf, size_t len, unsigned n, const int *nodes,
                                    const unsigned *helpers) {
        size_t o = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < n && o < len; i++) {
                int w = snprintf(buf + o, len - o, "%s%d:%u", i ? "," : (n > 1 ? "nodes " : "node "),
                                 nodes[i], helpers[i]);
                if (w < 0)
                        break;
                o += (size_t) w;
        }
        return buf;
}

/* ---- Table ---------------------------------------------------------------------------------- */

struct PadctlTable {
        unsigned n_cols;
        unsigned n_rows;        /* the header counts as row 0 */
        char **cells;
};

PadctlTable *padctl_table_new(unsigned n_cols, const char *const *headers) {
        PadctlTable *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->n_cols = n_cols;
        if (padctl_table_add(t, headers) < 0)
                return padctl_table_free(t);
        return t;
}

PadctlTable *padctl_table_free(PadctlTable *t) {
        if (!t)
                return NULL;
        for (unsigned i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int padctl_table_add(PadctlTable *t, const char *const *cells) {
        char **n = realloc(t->cells, sizeof(char *) * (t->n_rows + 1) * t->n_cols);

        if (!n)
                return -ENOMEM;
        t->cells = n;
        for (unsigned c = 0; c < t->n_cols; c++) {
                n[t->n_rows * t->n_cols + c] = strdup(cells[c] ? cells[c] : "-");
                if (!n[t->n_rows * t->n_cols + c]) {
                        for (unsigned k = 0; k < c; k++)
                                free(n[t->n_rows * t->n_cols + k]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

void padctl_json_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if (*c == '"' || *c == '\\')
                        fprintf(f, "\\%c", *c);
                else if (*c < 0x20 || *c == 0x7f)
                        fprintf(f, "\\u%04x", *c);
                else
                        fputc(*c, f);
        }
        fputc('"', f);
}

static const char *cell_text(const PadctlTable *t, unsigned row, unsigned col) {
        const char *s = t->cells[row * t->n_cols + col];

        return row == 0 && s[0] == '>' ? s + 1 : s;
}

void padctl_table_print(const PadctlTable *t, FILE *f, const char *indent, bool legend) {
        size_t width[32] = { 0 };

        for (unsigned r = 0; r < t->n_rows; r++)
                for (unsigned c = 0; c < t->n_cols && c < ELEMENTSOF(width); c++)
                        width[c] = MAX(width[c], strlen(cell_text(t, r, c)));
        for (unsigned r = legend ? 0 : 1; r < t->n_rows; r++) {
                fputs(indent ? indent : "", f);
                for (unsigned c = 0; c < t->n_cols && c < ELEMENTSOF(width); c++) {
                        bool right = t->cells[c][0] == '>', last = c + 1 == t->n_cols;

                        if (right)
                                fprintf(f, "%*s", (int) width[c], cell_text(t, r, c));
                        else if (last)
                                fputs(cell_text(t, r, c), f);
                        else
                                fprintf(f, "%-*s", (int) width[c], cell_text(t, r, c));
                        fputs(last ? "\n" : "  ", f);
                }
        }
}

/* ---- Progress --------------------------------------------------------------------------------- */

void padctl_progress_init(PadctlProgress *pr, bool draw) {
        *pr = (PadctlProgress) { .draw = draw, .start_usec = padctl_now_usec() };
}

void padctl_progress_fn(uint64_t done, uint64_t total, void *arg) {
        PadctlProgress *pr = arg;
        char b_done[32], b_total[32], b_rate[32], eta[32] = "--:--";
        uint64_t elapsed = padctl_now_usec() - pr->start_usec;
        double frac = total ? (double) done / (double) total : 1.0, rate = 0;
        unsigned filled;

        pr->done = done;
        pr->total = total;
        if (!pr->draw)
                return;
        if (elapsed > 0)
                rate = (double) done / ((double) elapsed / 1e6);
        if (rate > 0 && done < total) {
                uint64_t s = (uint64_t) ((double) (total - done) / rate + 0.5);
                snprintf(eta, sizeof(eta), "%llu:%02llu", (unsigned long long) (s / 60), (unsigned long long) (s % 60));
        } else if (done >= total) {
                snprintf(eta, sizeof(eta), "0:00");
        }
        filled = (unsigned) (frac * 30.0);
        fputs("\r[", stderr);
        for (unsigned i = 0; i < 30; i++)
                fputc(i < filled ? '#' : '.', stderr);
        fprintf(stderr, "] %3u%%  %s / %s  %s/s  ETA %s\033[K", (unsigned) (frac * 100.0),
                format_bytes(b_done, sizeof(b_done), done), format_bytes(b_total, sizeof(b_total), total),
                format_bytes(b_rate, sizeof(b_rate), (uint64_t) rate), eta);
        fflush(stderr);
        pr->drawn = true;
}

void padctl_progress_finish(PadctlProgress *pr) {
        if (pr->drawn)
                fputc('\n', stderr);
        pr->drawn = false;
}

/* ---- Summary ---------------------------------------------------------------------------------- */

void padctl_warn_no_broker(pad_client *c, const pad_job_stats *st) {
        char why[256];

        if (st->brokered || st->broker_error >= 0)
                return;
        /* The library's reason (why it could not connect, or that paddd is not running), else
         * the Acquire's error. */
        if (pad_client_broker_error(c, why, sizeof(why)) >= 0 || !why[0])
                snprintf(why, sizeof(why), "%s", strerror(-st->broker_error));
        fprintf(stderr, "padctl: no broker on %s (%s); ran with %u helper%s\n", pad_client_bus(c), why,
                st->granted, st->granted == 1 ? "" : "s");
}

void padctl_print_summary(const char *name, uint64_t bytes, uint64_t usec, const pad_job_stats *st, bool broker_present) {
        char b[32], where[256] = "";
        unsigned n = MIN(st->n_placement, (unsigned) PAD_PLACEMENT_MAX);

        printf("%s: %s in %.3f s, %.2f GiB/s, %u thread%s; ", name, format_bytes(b, sizeof(b), bytes),
               (double) usec / 1e6, padctl_gib_per_s(bytes, usec), st->threads, st->threads == 1 ? "" : "s");
        if (!st->brokered && broker_present) {
                printf("no helpers borrowed from paddd%s\n", st->threads <= 1 ? " (one thread was enough)" : "");
                return;
        }
        if (!st->brokered) {
                printf("no broker: %u helper%s\n", st->granted, st->granted == 1 ? "" : "s");
                return;
        }
        padctl_format_placement(where, sizeof(where), n, st->placement_node, st->placement_helpers);
        printf("%u helper%s granted by paddd%s%s\n", st->granted, st->granted == 1 ? "" : "s",
               n ? ": " : "", where);
}

/* ---- Cancellation ----------------------------------------------------------------------------- */

static pad_cancel *cancel_token;
static volatile sig_atomic_t cancel_said;

static void on_cancel_signal(int sig) {
        static const char msg[] = "\npadctl: cancelling, undoing what was done...\n";
        int saved = errno;

        if (cancel_token)
                pad_cancel_request(cancel_token);
        if (!cancel_said) {
                cancel_said = 1;
                if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                        /* nothing to do from a signal handler */
                }
        }
        errno = saved;
}

int padctl_cancel_on_signals(pad_cancel *token) {
        struct sigaction sa = { .sa_handler = on_cancel_signal, .sa_flags = SA_RESTART };

        cancel_token = token;
        cancel_said = 0;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
                return -errno;
        return 0;
}

void padctl_cancel_restore(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        cancel_token = NULL;
}
