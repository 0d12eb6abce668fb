/* padctl.h: what padctl's command modules share: the global options, the exit codes, the
 * per-command option parsing and usage errors, number and time parsing for the command line,
 * a plain text table, the progress bar and the job summary. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "padclient.h"

#define PADCTL_EXIT_OK 0
#define PADCTL_EXIT_FAILURE 1
#define PADCTL_EXIT_USAGE 2
#define PADCTL_EXIT_CANCELLED 130

typedef struct PadctlCommand PadctlCommand;

/* getopt values of the global options that are not characters. */
enum {
        PADCTL_OPT_BUS = 0x1000,
        PADCTL_OPT_NO_LEGEND,
        PADCTL_OPT_VERSION,
};

typedef struct Padctl {
        const char *bus;        /* --bus as given, or NULL */
        bool quiet;
        bool no_legend;         /* --no-legend: tables without headers, titles or summary */
        const PadctlCommand *command;   /* the command running */
} Padctl;

struct PadctlCommand {
        const char *name;
        const char *args;       /* synopsis after the name */
        const char *summary;
        const char *options;    /* option lines for --help */
        const char *notes;      /* text after the options */
        int (*run)(Padctl *p, int argc, char **argv);
};

/* padctl-status.c */
int padctl_status(Padctl *p, int argc, char **argv);
int padctl_set_quota(Padctl *p, int argc, char **argv);
int padctl_reload(Padctl *p, int argc, char **argv);
/* Every lease (ListLeases): 0, or the failure printed and 1. */
int padctl_list_leases(pad_client *c, pad_lease_list **ret);
/* The status view of s and the leases l on stdout: 0, or the failure printed and 1. */
int padctl_status_show(pad_client *c, const pad_broker_status *s, const pad_lease_list *l, bool legend);
/* padctl-monitor.c */
int padctl_monitor(Padctl *p, int argc, char **argv);
/* padctl-metrics.c */
int padctl_metrics(Padctl *p, int argc, char **argv);
/* padctl-jobs.c */
int padctl_acquire(Padctl *p, int argc, char **argv);
int padctl_hugetlb_fallocate(Padctl *p, int argc, char **argv);
int padctl_pmem_init(Padctl *p, int argc, char **argv);
/* padctl-vfio.c */
int padctl_vfio_map(Padctl *p, int argc, char **argv);

/* padctl.c: the command table. */
const PadctlCommand *padctl_command_find(const char *name);

/* ---- padctl-util.c ------------------------------------------------------------------------- */

/* "padctl CMD: message" and a hint to --help on stderr; returns PADCTL_EXIT_USAGE. */
int padctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "padctl: message" on stderr; returns PADCTL_EXIT_FAILURE. */
int padctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A libpadclient client on --bus (else the library's default): 0, or the failure printed
 * and PADCTL_EXIT_FAILURE. */
int padctl_client_new(Padctl *p, pad_client **ret);

/* A command's --help text. */
void padctl_command_help(const PadctlCommand *c, FILE *f);
/* Next option of p's command (getopt_long, argv[0] is the command name). The global options
 * (--bus, -q/--quiet, --no-legend) are taken too, wherever they are, and set in p. Returns
 * the option, -1 at the end, 'h' for --help (already printed), or '?' after a usage error
 * was printed. */
int padctl_getopt(Padctl *p, int argc, char **argv, const char *shortopts,
                  const struct option *longopts);
/* After the options: exactly n_min..n_max positional arguments, else a usage error (2). */
int padctl_positional(const char *cmd, int argc, char **argv, int n_min, int n_max);

/* Parsers that print a usage error naming what and return PADCTL_EXIT_USAGE, or 0. */
int padctl_parse_size(const char *cmd, const char *what, const char *s, uint64_t *ret);
int padctl_parse_uint(const char *cmd, const char *what, const char *s, uint64_t max, uint64_t *ret);
int padctl_parse_node(const char *cmd, const char *s, int *ret);        /* N or "any" */
int padctl_parse_seconds(const char *cmd, const char *what, const char *s, uint64_t *ret_usec);

uint64_t padctl_now_usec(void);
/* "1.23 GiB/s" of bytes over usec. */
double padctl_gib_per_s(uint64_t bytes, uint64_t usec);
/* "node 0:2" / "nodes 0:2,1:1" / "" into buf. */
const char *padctl_format_placement(char *buf, size_t len, unsigned n, const int *nodes,
                                    const unsigned *helpers);

/* s as a JSON string, quoted and escaped. */
void padctl_json_string(FILE *f, const char *s);

/* A plain table: columns left-aligned unless the header starts with '>'. */
typedef struct PadctlTable PadctlTable;
PadctlTable *padctl_table_new(unsigned n_cols, const char *const *headers);
PadctlTable *padctl_table_free(PadctlTable *t);
/* Adds a row of n_cols strings (copied). 0 or -ENOMEM. */
int padctl_table_add(PadctlTable *t, const char *const *cells);
/* legend false: the rows without the header row. */
void padctl_table_print(const PadctlTable *t, FILE *f, const char *indent, bool legend);

/* Progress bar on stderr with bytes, rate and ETA, drawn only when enabled. */
typedef struct PadctlProgress {
        bool draw;
        bool drawn;
        uint64_t start_usec;
        uint64_t done;
        uint64_t total;
} PadctlProgress;
void padctl_progress_init(PadctlProgress *pr, bool draw);
void padctl_progress_fn(uint64_t done, uint64_t total, void *arg);
/* Ends the bar's line if one was drawn. */
void padctl_progress_finish(PadctlProgress *pr);

/* After a job that ran on fallback helpers because of an error (st->broker_error): "padctl:
 * no broker on BUS (REASON); ran with N helpers" on stderr. */
void padctl_warn_no_broker(pad_client *c, const pad_job_stats *st);
/* The closing summary: "NAME: BYTES in S s, R GiB/s, T threads; <grant>". broker_present:
 * paddd answered on the bus (so a job without a grant did not need one). */
void padctl_print_summary(const char *name, uint64_t bytes, uint64_t usec, const pad_job_stats *st,
                          bool broker_present);

/* Ctrl-C and SIGTERM request cancellation of token (and say so once on stderr). */
int padctl_cancel_on_signals(pad_cancel *token);
void padctl_cancel_restore(void);
