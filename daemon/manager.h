/* manager.h: paddd's state and lifecycle. The Manager owns the config, the topology, the
 * budget (private to it: the layers above ask the manager), the event loop, the table of
 * clients (client.h) and of leases (lease.h), the books kept across restarts (books.h), the
 * reload, and the coalesced notice that something admins see changed. It knows nothing of
 * D-Bus messages: the bus layer (broker-bus.c, lease-bus.c) installs hooks to hear of
 * changes and turns calls into the functions here. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "broker-contract.h"
#include "budget.h"
#include "config.h"
#include "list.h"
#include "notify.h"
#include "stats.h"
#include "topology.h"

typedef struct Manager Manager;
typedef struct Client Client;
typedef struct Lease Lease;
typedef struct Waiter Waiter;
typedef struct Books Books;

/* What the layer above hears of; each may be NULL. names: property names, NULL-terminated. */
typedef struct ManagerHooks {
        void (*broker_changed)(Manager *m, const char *const *names, void *userdata);
        void (*lease_changed)(Lease *l, void *userdata);        /* Granted and Placement */
        void (*lease_expired)(Lease *l, void *userdata);        /* its ttl ran out; still there */
        void *userdata;
} ManagerHooks;

typedef struct ManagerOptions {
        const char *config_path;        /* NULL: the default */
        const char *dropin_dir;         /* NULL: the default */
        bool use_files;                 /* false: the embedded default only */
} ManagerOptions;

/* The broker's counters, as its properties show them. */
typedef struct ManagerCounts {
        unsigned max_helpers, in_use, waiting, leases;
} ManagerCounts;

struct Manager {
        sd_event *event;
        char *config_path;
        char *dropin_dir;
        bool use_files;
        Config *config;
        uint64_t config_generation;     /* 1 up, one more for each config taken */
        Topology *topology;
        Budget *budget;
        ManagerHooks hooks;
        Books *books;                   /* NULL: nothing is kept across restarts */
        Stats stats;                    /* since start */

        Client *client_list;
        void *clients;                  /* tsearch tree of Client by name */
        void *leases;                   /* tsearch tree of Lease by id */
        unsigned n_clients;

        Notifier *notifier;                     /* READY=1, RELOADING=1, STATUS=, STOPPING=1 */
        sd_event_source *changes_source;        /* broker_changed + STATUS, rate-limited */
        uint64_t changes_last;                  /* CLOCK_MONOTONIC of the last emission */
        bool changes_pending;
        bool changes_all;                       /* every property (start, reload) */
        struct {
                ManagerCounts counts;
                unsigned *node_max, *node_in_use;
                HelperPolicy policy;
        } emitted;
        char *status;
};

/* Load the config and topology and build the budget. On a config error returns -EINVAL and
 * *ret_error holds "file:line: what". */
int manager_new(sd_event *event, const ManagerOptions *options, Manager **ret, char **ret_error);
Manager *manager_free(Manager *m);
DEFINE_POINTER_CLEANUP(Manager, manager_free);

void manager_set_hooks(Manager *m, const ManagerHooks *hooks);
/* Keep the books in books from now on (taken; freed with the manager). */
void manager_set_books(Manager *m, Books *books);

/* Re-read the config; on error the old one stays and *ret_error says why. Sends the
 * RELOADING=1 ... READY=1 notifications around it. */
int manager_reload(Manager *m, char **ret_error);
/* One quota at run time: node -1 is the machine-wide cap. 0 or PAD_ERROR_NO_SUCH_NODE. */
int manager_set_quota(Manager *m, int node, unsigned max_helpers);

void manager_get_counts(const Manager *m, ManagerCounts *ret);
const Stats *manager_get_stats(const Manager *m);
void manager_count(Manager *m, StatsCounter c);
unsigned manager_get_n_nodes(const Manager *m);
void manager_get_node(const Manager *m, unsigned index, int *ret_id, unsigned *ret_cpus,
                      unsigned *ret_max, unsigned *ret_in_use);
HelperPolicy manager_get_helper_policy(const Manager *m);

/* Something the properties or STATUS show changed: tell the hooks and systemd now if the
 * last notice is MANAGER_CHANGES_INTERVAL_USEC old, else once at that point, with the values
 * of then (a busy broker sends at most one signal per interval). */
#define MANAGER_CHANGES_INTERVAL_USEC 20000u
void manager_state_changed(Manager *m);
/* Slots came back or quotas grew: serve waiters, then note the change. */
void manager_slots_returned(Manager *m);
