/* manager.c: paddd's state and lifecycle (manager.h): the config and its reload, the
 * topology and budget, run-time quotas, the counters the bus layer shows, and the
 * coalesced change notices (hooks and STATUS=) with the notifications to systemd. Clients
 * and leases keep their own files (client.c, lease.c); the books theirs (books.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "books.h"
#include "client.h"
#include "lease.h"
#include "log.h"
#include "manager.h"

void manager_set_hooks(Manager *m, const ManagerHooks *hooks) {
        m->hooks = *hooks;
}

void manager_set_books(Manager *m, Books *books) {
        books_free(m->books);
        m->books = books;
}

void manager_get_counts(const Manager *m, ManagerCounts *ret) {
        *ret = (ManagerCounts) {
                .max_helpers = budget_get_max_helpers(m->budget),
                .in_use = budget_get_in_use(m->budget),
                .waiting = budget_get_n_waiting(m->budget),
                .leases = budget_get_n_leases(m->budget),
        };
}

const Stats *manager_get_stats(const Manager *m) {
        return &m->stats;
}

void manager_count(Manager *m, StatsCounter c) {
        stats_count(&m->stats, c);
}

unsigned manager_get_n_nodes(const Manager *m) {
        return budget_get_n_nodes(m->budget);
}

void manager_get_node(const Manager *m, unsigned index, int *ret_id, unsigned *ret_cpus,
                      unsigned *ret_max, unsigned *ret_in_use) {
        budget_get_node(m->budget, index, ret_id, ret_cpus, ret_max, ret_in_use);
}

HelperPolicy manager_get_helper_policy(const Manager *m) {
        return m->config->helper_policy;
}

void manager_slots_returned(Manager *m) {
        lease_dispatch(m);
        manager_state_changed(m);
}

int manager_set_quota(Manager *m, int node, unsigned max_helpers) {
        int r;

        r = budget_set_quota(m->budget, node, max_helpers);
        if (r != 0)
                return r;
        if (node < 0)
                log_info("Machine-wide quota set to %u helpers.", max_helpers);
        else
                log_info("Quota of node %d set to %u helpers.", node, max_helpers);
        manager_slots_returned(m);
        return 0;
}

/* ---- config --------------------------------------------------------------------------- */

static int manager_load_config(Manager *m, Config **ret_config, BudgetLimits *ret_limits,
                               char **ret_error) {
        Config *config = NULL;
        int r;

        r = config_load(m->config_path, m->dropin_dir, m->use_files, &config, ret_error);
        if (r < 0)
                return r;
        r = config_to_limits(config, m->topology, ret_limits, ret_error);
        if (r < 0) {
                config_free(config);
                return r;
        }
        *ret_config = config;
        return 0;
}

int manager_reload(Manager *m, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        BudgetLimits limits = {};
        Config *config = NULL;
        struct timespec ts;
        char text[64];
        int r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(text, sizeof text, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                 (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u);
        (void) notifier_send(m->notifier, text);

        r = manager_load_config(m, &config, &limits, &error);
        if (r >= 0) {
                r = budget_set_limits(m->budget, &limits);
                free(limits.node_max);
                if (r < 0)
                        config_free(config);
        }
        if (r < 0) {
                if (!error && asprintf(&error, "%s", strerror(-r)) < 0)
                        error = NULL;
                manager_count(m, STATS_RELOADS_FAILED);
                log_warning("Reload failed, keeping the old configuration: %s",
                            error ? error : "out of memory");
                (void) notifier_send(m->notifier, "READY=1");
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }

        config_free(m->config);
        m->config = config;
        m->config_generation++;
        manager_count(m, STATS_RELOADS);
        log_info("Configuration reloaded: %u helpers machine-wide, helper policy %s.",
                 budget_get_max_helpers(m->budget), helper_policy_to_string(m->config->helper_policy));
        lease_dispatch(m);
        m->changes_all = true;
        manager_state_changed(m);
        (void) notifier_send(m->notifier, "READY=1");
        return 0;
}

/* ---- change notices ------------------------------------------------------------------- */

static void manager_emit_status(Manager *m) {
        const ManagerCounts *c = &m->emitted.counts;
        char *status = NULL;

        if (asprintf(&status, "%u/%u helpers lent, %u leases, %u waiting",
                     c->in_use, c->max_helpers, c->leases, c->waiting) < 0)
                return;
        if ((m->status && streq(status, m->status)) || notifier_send_status(m->notifier, status) < 0) {
                free(status);
                return;
        }
        free(m->status);
        m->status = status;
}

/* Which properties differ from what was last told; updates m->emitted. */
static unsigned manager_collect_changes(Manager *m, const char **names) {
        ManagerCounts now, *was = &m->emitted.counts;
        bool all = m->changes_all, nodes = false;
        unsigned n = 0;

        manager_get_counts(m, &now);
        if (all || now.max_helpers != was->max_helpers)
                names[n++] = "MaxHelpers";
        if (all || now.in_use != was->in_use)
                names[n++] = "InUse";
        if (all || now.waiting != was->waiting)
                names[n++] = "Waiting";
        if (all || now.leases != was->leases)
                names[n++] = "Leases";
        *was = now;
        for (unsigned i = 0; i < manager_get_n_nodes(m); i++) {
                unsigned max, in_use;

                manager_get_node(m, i, NULL, NULL, &max, &in_use);
                nodes = nodes || m->emitted.node_max[i] != max || m->emitted.node_in_use[i] != in_use;
                m->emitted.node_max[i] = max;
                m->emitted.node_in_use[i] = in_use;
        }
        if (all || nodes)
                names[n++] = "Nodes";
        if (all || m->emitted.policy != m->config->helper_policy)
                names[n++] = "HelperPolicy";
        m->emitted.policy = m->config->helper_policy;
        names[n] = NULL;
        return n;
}

static int manager_on_changes(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        const char *names[8];

        if (manager_collect_changes(m, names) > 0 && m->hooks.broker_changed)
                m->hooks.broker_changed(m, names, m->hooks.userdata);
        m->changes_all = false;
        m->changes_pending = false;
        m->changes_last = usec;
        manager_emit_status(m);
        return 0;
}

void manager_state_changed(Manager *m) {
        uint64_t now;

        if (m->changes_pending || !m->changes_source)
                return;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = 0;
        if (sd_event_source_set_time(m->changes_source,
                                     MAX(now, m->changes_last + MANAGER_CHANGES_INTERVAL_USEC)) < 0 ||
            sd_event_source_set_enabled(m->changes_source, SD_EVENT_ONESHOT) < 0)
                return;
        m->changes_pending = true;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int manager_new(sd_event *event, const ManagerOptions *options, Manager **ret, char **ret_error) {
        _cleanup_(manager_freep) Manager *m = NULL;
        BudgetLimits limits = {};
        unsigned n_nodes;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(event);
        m->use_files = options->use_files;
        if ((options->config_path && !(m->config_path = strdup(options->config_path))) ||
            (options->dropin_dir && !(m->dropin_dir = strdup(options->dropin_dir))))
                return -ENOMEM;

        r = topology_load(&m->topology);
        if (r < 0)
                return r;
        r = manager_load_config(m, &m->config, &limits, ret_error);
        if (r < 0)
                return r;
        m->config_generation = 1;
        r = budget_new(m->topology, &limits, &m->budget);
        free(limits.node_max);
        if (r < 0)
                return r;

        n_nodes = MAX(budget_get_n_nodes(m->budget), 1u);
        r = stats_init(&m->stats, budget_get_n_nodes(m->budget));
        if (r < 0)
                return r;
        m->emitted.node_max = calloc(n_nodes, sizeof(unsigned));
        m->emitted.node_in_use = calloc(n_nodes, sizeof(unsigned));
        if (!m->emitted.node_max || !m->emitted.node_in_use)
                return -ENOMEM;

        r = notifier_new(event, &m->notifier);
        if (r < 0)
                return r;
        r = sd_event_add_time(event, &m->changes_source, CLOCK_MONOTONIC, 0, 1, manager_on_changes, m);
        if (r < 0)
                return r;
        m->changes_all = true;  /* first STATUS right after start */
        m->changes_pending = true;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Leases ended by the shutdown stay in the books: their owners may still be there
         * when paddd is back. */
        m->books = books_free(m->books);
        while (m->client_list)
                client_free(m->client_list);
        sd_event_source_disable_unref(m->changes_source);
        notifier_free(m->notifier);
        budget_free(m->budget);
        config_free(m->config);
        topology_free(m->topology);
        free(m->emitted.node_max);
        free(m->emitted.node_in_use);
        stats_done(&m->stats);
        free(m->status);
        free(m->config_path);
        free(m->dropin_dir);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
