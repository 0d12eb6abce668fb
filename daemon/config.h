/* config.h: paddd's configuration, parsed from INI text with libinih, and resolved into
 * budget limits against a topology. No I/O beyond reading the files it is given and no
 * logging: every problem comes back as one "file:line: what" message. */
#pragma once

#include <stdbool.h>

#include "budget.h"
#include "numa.h"

#define CONFIG_PATH_DEFAULT "/etc/paddd/paddd.conf"
#define CONFIG_DROPIN_DIR_DEFAULT "/etc/paddd/paddd.conf.d"

typedef enum HelperPolicy {
        HELPER_POLICY_IDLE,     /* SCHED_IDLE */
        HELPER_POLICY_BATCH,    /* SCHED_BATCH, nice 19 */
        HELPER_POLICY_NICE,     /* SCHED_OTHER, nice 19 */
        HELPER_POLICY_NONE,     /* caller's priority from the start */
        _HELPER_POLICY_MAX,
} HelperPolicy;

/* An integer, or a percentage of CPUs (rounded down). */
typedef struct ConfigQuantity {
        unsigned value;
        bool percent;
} ConfigQuantity;

typedef struct ConfigNode {
        int node;
        ConfigQuantity max_helpers;
} ConfigNode;

typedef struct Config {
        ConfigQuantity max_helpers;             /* default 80% */
        ConfigQuantity max_helpers_per_node;    /* default 80% */
        unsigned max_helpers_per_user;          /* 0: none */
        unsigned max_leases_per_client;         /* default 64 */
        unsigned max_waiting;                   /* default 256 */
        HelperPolicy helper_policy;             /* default idle */
        char *admin_group;                      /* NULL: none */
        ConfigNode *nodes;                      /* [Node N] sections */
        unsigned n_nodes;
} Config;

/* The embedded default config (conf/paddd.conf compiled in). */
extern const char config_default_text[];

Config *config_free(Config *c);

/* Parse one INI text; name is used in messages. Adds to/overrides *c. On error returns
 * -EINVAL (or -ENOMEM) and *ret_error = "name:line: what". */
int config_parse_string(Config *c, const char *text, const char *name, char **ret_error);

/* Load: the embedded default, then path (NULL: CONFIG_PATH_DEFAULT, missing is fine
 * only for the default path), then dropin_dir/ *.conf in lexical order (NULL: the
 * default dir; missing is fine). use_files=false: the embedded default alone. */
int config_load(const char *path, const char *dropin_dir, bool use_files, Config **ret, char **ret_error);

/* Resolve against the topology. A [Node N] for a node that is not there is an error
 * ("name:line: no such node"); ret_limits->node_max is malloc'ed. */
int config_to_limits(const Config *c, const Topology *t, BudgetLimits *ret_limits, char **ret_error);

const char *helper_policy_to_string(HelperPolicy p);
int helper_policy_from_string(const char *s);
