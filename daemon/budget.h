/* budget.h: the broker's accounting, with no I/O and no logging.
 *
 * A Budget holds the machine-wide and per-node helper quotas, the per-user cap, the
 * clients (one per bus connection), the leases they hold and the FIFO queue of waiting
 * requests. A BudgetLease carries its charge (slots per node); it is linked into the
 * budget, its client and its user, and freeing it returns the charge. Callers (the
 * manager) do all I/O, timers and logging. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker-contract.h"
#include "error.h"
#include "topology.h"

typedef struct Budget Budget;
typedef struct BudgetClient BudgetClient;
typedef struct BudgetLease BudgetLease;
typedef struct BudgetWaiter BudgetWaiter;

typedef struct BudgetLimits {
        unsigned max_helpers;            /* machine-wide cap */
        unsigned *node_max;              /* per node, by topology index (n_nodes entries) */
        unsigned max_per_user;           /* 0: no per-user cap below max_helpers */
        unsigned max_leases_per_client;  /* leases plus queued requests of one client */
        unsigned max_waiting;            /* queued requests machine-wide */
        unsigned max_waiting_per_user;   /* queued requests of one user; 0: no cap below max_waiting */
        unsigned max_leases_per_user;    /* leases plus queued requests of one user; 0: no cap */
} BudgetLimits;

typedef struct BudgetRequest {
        unsigned helpers;                /* 1..BROKER_HELPERS_MAX */
        unsigned min;                    /* 0..helpers */
        int node;                        /* node id, or -1 for any */
        bool strict_node;                /* take slots only from node */
        const bool *allowed;             /* by topology index, nodes the caller may run on; NULL: all */
} BudgetRequest;

/* The budget copies the topology's shape and the limits. */
int budget_new(const Topology *topology, const BudgetLimits *limits, Budget **ret);
Budget *budget_free(Budget *b);

/* Replace all limits (config reload). Nothing granted is revoked. */
int budget_set_limits(Budget *b, const BudgetLimits *limits);
/* One quota at run time: node -1 is the machine-wide cap. 0 or PAD_ERROR_NO_SUCH_NODE. */
int budget_set_quota(Budget *b, int node, unsigned max_helpers);

int budget_client_new(Budget *b, uid_t uid, void *userdata, BudgetClient **ret);
/* Frees the client's leases and queued requests too. */
BudgetClient *budget_client_free(BudgetClient *c);
void *budget_client_get_userdata(const BudgetClient *c);
uid_t budget_client_get_uid(const BudgetClient *c);

/* Grant now, from the slots the queued requests ahead leave (each waiter, in order, has
 * what its min would take set aside, unless only its own user's cap holds it back). 0 and a
 * lease (possibly of 0 slots when min is 0), or PAD_ERROR_BUSY, PAD_ERROR_NEVER_FITS (min is
 * above the machine, per-user or reachable nodes' caps), PAD_ERROR_NO_SUCH_NODE,
 * PAD_ERROR_LIMITS_EXCEEDED, PAD_ERROR_INVALID_ARGS, or -ENOMEM. */
int budget_acquire(BudgetClient *c, const BudgetRequest *req, BudgetLease **ret);

/* Queue a request that could not be met now (FIFO). 0, PAD_ERROR_NEVER_FITS,
 * PAD_ERROR_LIMITS_EXCEEDED (client, machine-wide or per-user queue cap),
 * PAD_ERROR_NO_SUCH_NODE, PAD_ERROR_INVALID_ARGS, or -ENOMEM. */
int budget_enqueue(BudgetClient *c, const BudgetRequest *req, void *userdata, BudgetWaiter **ret);
/* Drop a queued request (deadline passed); returns NULL. */
BudgetWaiter *budget_waiter_free(BudgetWaiter *w);
void *budget_waiter_get_userdata(const BudgetWaiter *w);

/* Serve the first waiter, in queue order, whose min fits in what the waiters ahead of it
 * leave. Returns 1 with the waiter's userdata and its new lease (the waiter is freed), 0
 * when none fits, -ENOMEM. Call in a loop after anything returned slots. */
int budget_dispatch(Budget *b, void **ret_userdata, BudgetLease **ret_lease);

/* A lease's charge on one node. */
typedef struct BudgetPlacement {
        int node;                        /* node id */
        unsigned helpers;                /* > 0 */
} BudgetPlacement;

/* The largest lease id adopted or set as next: the counter above it has room for 2^63 more
 * leases, so it never wraps to ids already given out. */
#define BUDGET_ID_MAX ((uint64_t) INT64_MAX)

/* Re-create a lease of an earlier run with its id and exact placement (restart). Caps are
 * not checked (nothing granted is revoked); ids must increase from call to call, be at
 * least budget_get_next_id() and at most BUDGET_ID_MAX. 0, PAD_ERROR_NO_SUCH_NODE,
 * PAD_ERROR_INVALID_ARGS, -ENOMEM. */
int budget_adopt(BudgetClient *c, uint64_t id, const BudgetPlacement *placement, unsigned n,
                 BudgetLease **ret);
/* The id the next lease gets; raising it keeps ids of an earlier run from coming back. An id
 * past BUDGET_ID_MAX + 1 is taken as BUDGET_ID_MAX + 1. */
uint64_t budget_get_next_id(const Budget *b);
void budget_set_next_id(Budget *b, uint64_t id);

BudgetLease *budget_lease_free(BudgetLease *l);
/* Give count slots back early (farthest nodes first). PAD_ERROR_INVALID_ARGS if count
 * exceeds what the lease holds. */
int budget_lease_shrink(BudgetLease *l, unsigned count, unsigned *ret_granted);
uint64_t budget_lease_get_id(const BudgetLease *l);      /* unique, from 1, never reused */
unsigned budget_lease_get_granted(const BudgetLease *l);
BudgetClient *budget_lease_get_client(const BudgetLease *l);
void budget_lease_set_userdata(BudgetLease *l, void *userdata);
void *budget_lease_get_userdata(const BudgetLease *l);
/* Placement: entries with at least one slot, in grant order (node id, helpers). */
unsigned budget_lease_get_n_placement(const BudgetLease *l);
void budget_lease_get_placement(const BudgetLease *l, unsigned i, int *ret_node, unsigned *ret_helpers);

/* State for properties and status. */
unsigned budget_get_max_helpers(const Budget *b);
unsigned budget_get_in_use(const Budget *b);
unsigned budget_get_n_waiting(const Budget *b);
unsigned budget_get_n_leases(const Budget *b);
unsigned budget_get_n_nodes(const Budget *b);
void budget_get_node(const Budget *b, unsigned index, int *ret_id, unsigned *ret_cpus,
                     unsigned *ret_max, unsigned *ret_in_use);
/* Iterate leases in id order: pass NULL for the first. */
BudgetLease *budget_next_lease(const Budget *b, const BudgetLease *prev);
