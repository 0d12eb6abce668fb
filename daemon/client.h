/* client.h: one Client per bus connection that called paddd, found by its unique name.
 * It carries the credentials the bus gave when it first called (uid and pid, never
 * augmented), its budget account, and the leases and waiting calls it holds; freeing it
 * (its connection went away) ends them all. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "manager.h"

struct Client {
        Manager *manager;
        char *name;             /* unique bus name */
        uid_t uid;
        pid_t pid;
        uint64_t start_time;    /* of pid when it first called: pid + start time name it */
        unsigned list_tokens;   /* ListLeases calls it may make now */
        bool list_admin;        /* client_is_admin() when last looked up, for config_generation */
        uint64_t list_admin_generation;
        uint64_t list_refilled; /* CLOCK_MONOTONIC usec of the last refill */
        BudgetClient *budget_client;
        Lease *leases;
        Waiter *waiters;
        LIST_FIELDS(Client, clients);
};

/* A new client of manager m (name must not be one already); start_time of pid, 0 when not
 * known (then no check of the process against it is made). */
int client_new(Manager *m, const char *name, uid_t uid, pid_t pid, uint64_t start_time, Client **ret);
/* Ends its leases and waiting calls (each waiter completed with -ECONNRESET). */
Client *client_free(Client *c);
Client *client_find(Manager *m, const char *name);
/* The connection name went away: free its client, if any, and serve whom that frees
 * slots for. Returns whether there was one. */
bool client_vanished(Manager *m, const char *name);
/* Take one of the client's ListLeases tokens at now_usec (BROKER_LIST_BURST, refilled
 * BROKER_LIST_PER_SEC a second); false when none is left. */
bool client_take_list_token(Client *c, uint64_t now_usec);
/* Admin: uid 0 or in the config's AdminGroup. Fails closed. Looks the group up each time. */
bool client_is_admin(const Client *c);
/* The same, looked up once per connection and configuration: for exemptions that are asked
 * on every call (ListLeases' rate limit), so that no call costs a user database lookup. */
bool client_is_admin_cached(Client *c);
