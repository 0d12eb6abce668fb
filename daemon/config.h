/* config.h: paddd's configuration, parsed from INI text with libinih, and resolved into
 * budget limits against a topology. No I/O beyond reading the files it is given and no
 * logging: every problem comes back as one "file:line: what" message.
 *
 * Syntax (see paddd.conf(5)): "[Broker]" and "[Node N]" sections, "Key=Value" lines, keys
 * case-sensitive. Whole-line comments start with '#' or ';'; an inline comment is '#' or
 * ';' preceded by a space or tab and runs to the end of the line (libinih as built by
 * Debian strips only " ;" itself, so " #" is stripped here before libinih sees the line).
 * Leading whitespace is ignored, so there are no continuation lines. A line that is not
 * blank, a comment, a "[Section]" or a "Key=Value" is an error, as are unknown sections
 * and keys, bad values, a key given twice in one section of one file and a section given
 * twice in one file. Later files override earlier ones key by key. Lines are limited to
 * 198 characters once leading whitespace and comments are removed (libinih's buffer). */
#pragma once

#include <stdbool.h>

#include "budget.h"
#include "paddd-config.h"
#include "sched-defs.h"
#include "util.h"
#include "topology.h"

/* The sysconfdir the build installs conf/paddd.conf into (/etc for --prefix=/usr). */
#define CONFIG_PATH_DEFAULT PADDD_SYSCONFDIR "/paddd/paddd.conf"
#define CONFIG_DROPIN_DIR_DEFAULT PADDD_SYSCONFDIR "/paddd/paddd.conf.d"

/* MaxWaitUSec= at most an hour. */
#define CONFIG_MAX_WAIT_USEC_MAX 3600000000u

/* An integer, or a percentage of CPUs (rounded down). */
typedef struct ConfigQuantity {
        unsigned value;
        bool percent;
} ConfigQuantity;

typedef struct ConfigNode {
        int node;
        ConfigQuantity max_helpers;
        bool max_helpers_set;   /* false: the node follows MaxHelpersPerNode */
        char *file;             /* where the last [Node N] header for it was, for messages */
        unsigned line;
} ConfigNode;

typedef struct Config {
        ConfigQuantity max_helpers;             /* default 80% */
        ConfigQuantity max_helpers_per_node;    /* default 80% */
        unsigned max_helpers_per_user;          /* 0: none */
        unsigned max_leases_per_client;         /* default 64 */
        unsigned max_leases_per_user;           /* default 1024; 0: none */
        unsigned max_waiting;                   /* default 256 */
        unsigned max_waiting_per_user;          /* default 32; 0: none below max_waiting */
        unsigned max_wait_usec;                 /* longest wait of an Acquire, default 20 s */
        HelperPolicy helper_policy;             /* default idle */
        char *admin_group;                      /* NULL: none */
        ConfigNode *nodes;                      /* [Node N] sections */
        unsigned n_nodes;
} Config;

/* The embedded default config (conf/paddd.conf compiled in). */
extern const char config_default_text[];

/* A config holding the built-in defaults (the values conf/paddd.conf documents),
 * with no [Node N] sections. */
int config_new(Config **ret);
Config *config_free(Config *c);
DEFINE_POINTER_CLEANUP(Config, config_free)

/* Parse one INI text; name is used in messages. Adds to/overrides *c. On error returns
 * -EINVAL (or -ENOMEM) and *ret_error = "name:line: what" (NULL if even that could not be
 * allocated); *c may then be half updated, so parse into a scratch config. */
int config_parse_string(Config *c, const char *text, const char *name, char **ret_error);

/* Load: the embedded default, then path (NULL: CONFIG_PATH_DEFAULT, missing is fine
 * only for the default path), then dropin_dir/ *.conf in lexical order (NULL: the
 * default dir; missing is fine). use_files=false: the embedded default alone.
 * With an explicit "--config PATH" the daemon passes PATH as path and PATH".d" as
 * dropin_dir. Drop-ins are compared bytewise (strcmp), names starting with '.' are
 * skipped. On error nothing is returned: *ret is untouched, *ret_error = "file:line: what"
 * or "file: what" (NULL on -ENOMEM), and the return is -EINVAL or -errno of the read. */
int config_load(const char *path, const char *dropin_dir, bool use_files, Config **ret, char **ret_error);

/* Resolve against the topology: a percentage is floor(CPUs * pct / 100) of the online
 * CPUs (machine) or of that node's CPUs (MaxHelpersPerNode and [Node N] MaxHelpers);
 * results are capped at BROKER_HELPERS_MAX. A [Node N] for a node that is not there is an
 * error ("file:line: [Node N]: no such NUMA node"); ret_limits->node_max is malloc'ed,
 * one entry per topology node (by index; at least one allocated). */
int config_to_limits(const Config *c, const Topology *t, BudgetLimits *ret_limits, char **ret_error);

