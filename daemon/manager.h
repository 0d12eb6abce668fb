/* manager.h: paddd's state. The Manager owns the config, the topology, the budget, the bus
 * connection and the event loop; the clients (one per bus connection, tracked with
 * sd_bus_track, credentials queried once), their lease objects with TTL timers, and the
 * Acquire calls waiting for slots with their deadline timers. bus.c translates D-Bus calls
 * into the functions below; paddd.c drives the lifecycle. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker-contract.h"
#include "budget.h"
#include "config.h"
#include "list.h"
#include "notify.h"
#include "topology.h"
#include "priority.h"


typedef struct Manager Manager;
typedef struct Client Client;
typedef struct Lease Lease;
typedef struct Waiter Waiter;

/* What an Acquire asks for, validated by bus.c. */
typedef struct AcquireRequest {
        unsigned helpers;       /* 1..BROKER_HELPERS_MAX */
        int node;               /* -1: any */
        unsigned min;           /* 0..helpers */
        bool strict_node;
        uint64_t wait_usec;     /* 0: answer now */
        pid_t caller_tid;       /* 0: the caller's process */
        const char *tag;        /* <= BROKER_TAG_MAX bytes, never NULL */
        uint64_t ttl_usec;      /* 0: none */
} AcquireRequest;

struct Client {
        Manager *manager;
        char *name;             /* unique bus name */
        uid_t uid;              /* from the bus, not augmented */
        pid_t pid;              /* from the bus, not augmented */
        sd_bus_track *track;
        BudgetClient *budget_client;
        Lease *leases;
        Waiter *waiters;
        LIST_FIELDS(Client, clients);
};

struct Lease {
        Manager *manager;
        Client *client;
        BudgetLease *budget_lease;
        uint64_t id;
        char path[64];
        char tag[BROKER_TAG_MAX + 1];
        SchedParams sched;      /* of caller_tid at Acquire: the ceiling for RaisePriority */
        sd_event_source *ttl_source;
        LIST_FIELDS(Lease, leases);
};

struct Waiter {
        Manager *manager;
        Client *client;
        BudgetWaiter *budget_waiter;
        sd_bus_message *message;        /* the Acquire call, answered when served */
        sd_event_source *deadline_source;
        char tag[BROKER_TAG_MAX + 1];
        SchedParams sched;
        uint64_t ttl_usec;
        LIST_FIELDS(Waiter, waiters);
};

typedef struct ManagerOptions {
        const char *config_path;        /* NULL: the default */
        const char *dropin_dir;         /* NULL: the default */
        bool use_files;                 /* false: the embedded default only */
} ManagerOptions;

struct Manager {
        sd_event *event;
        sd_bus *bus;
        char *config_path;
        char *dropin_dir;
        bool use_files;
        Config *config;
        Topology *topology;
        Budget *budget;

        Client *client_list;
        void *clients;          /* tsearch tree of Client by name */
        void *leases;           /* tsearch tree of Lease by id */
        unsigned n_clients;

        Notifier *notifier;                     /* READY=1, RELOADING=1, STATUS=, STOPPING=1 */
        sd_event_source *changes_source;        /* PropertiesChanged + STATUS, rate-limited */
        uint64_t changes_last;                  /* CLOCK_MONOTONIC of the last emission */
        bool changes_pending;
        bool changes_all;                       /* emit every property (start, reload) */
        struct {
                unsigned max_helpers, in_use, waiting, leases;
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

/* Register the objects on bus, request the name, attach to the event loop. */
int manager_connect_bus(Manager *m, sd_bus *bus);

/* Re-read the config; on error the old one stays and *ret_error says why. Sends the
 * RELOADING=1 ... READY=1 notifications around it. */
int manager_reload(Manager *m, char **ret_error);

/* The client for the sender of message, created on its first call. PAD_ERROR_ACCESS_DENIED
 * when the bus gives no trustworthy uid and pid. */
int manager_get_client(Manager *m, sd_bus_message *message, Client **ret);
/* Admin: uid 0 or in the config's AdminGroup. Fails closed. */
bool manager_client_is_admin(Manager *m, const Client *c);

/* 0 and either *ret_lease (granted now) or *ret_lease NULL (queued: message was kept and
 * will be answered by bus_reply_acquire or a Timeout error), or a PadError / -errno. */
int manager_acquire(Manager *m, Client *c, sd_bus_message *message, const AcquireRequest *req,
                    Lease **ret_lease);
int manager_set_quota(Manager *m, int node, unsigned max_helpers);

Lease *manager_find_lease(Manager *m, uint64_t id);
/* True if message came from the connection that owns the lease. */
bool lease_is_owner(const Lease *l, sd_bus_message *message);
void lease_release(Lease *l);
int lease_shrink(Lease *l, unsigned count, unsigned *ret_granted);
int lease_raise_priority(Lease *l, pid_t tid);

/* Something the properties or STATUS show changed: emit PropertiesChanged and STATUS now
 * if the last emission is MANAGER_CHANGES_INTERVAL_USEC old, else once at that point, with
 * the values of then (a busy broker sends at most one signal per interval). */
#define MANAGER_CHANGES_INTERVAL_USEC 20000u
void manager_state_changed(Manager *m);
