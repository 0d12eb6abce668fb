/* lease.h: a Lease is a grant held by a client: it carries its budget charge (returned when
 * it is freed), its object path (ids are never reused), its tag, the scheduling of the
 * caller's thread at Acquire (the ceiling of RaisePriority) and its ttl timer. A Waiter is
 * an Acquire that could not be met yet: queued in the budget with a deadline, it is
 * completed exactly once through the callback the caller gave (served, timed out, or its
 * client gone), as systemd-resolved completes a query. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager.h"
#include "priority.h"
#include "state.h"

/* What an Acquire asks for, validated by the bus layer. */
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

struct Lease {
        Manager *manager;
        Client *client;
        BudgetLease *budget_lease;
        uint64_t id;
        char path[64];
        char tag[BROKER_TAG_MAX + 1];
        SchedParams sched;
        uint64_t ttl_deadline;  /* CLOCK_MONOTONIC usec, 0: none */
        sd_event_source *ttl_source;
        LIST_FIELDS(Lease, leases);
};

/* A waiter's end: r is 0 with the new lease, PAD_ERROR_TIMEOUT, -ECONNRESET (the client is
 * gone: nobody to answer) or another failure with l NULL. Returning < 0 for a lease says it
 * could not be handed over: the lease is then ended. */
typedef int (*WaiterComplete)(int r, Lease *l, void *userdata);

/* 0 and *ret_lease (granted now), or 0 and *ret_lease NULL (queued: complete is called
 * later with userdata), or a PadError / -errno (complete is never called). */
int lease_acquire(Client *c, const AcquireRequest *req, WaiterComplete complete, void *userdata,
                  Lease **ret_lease);
/* Re-create a lease of an earlier run for its owner c (restart). */
int lease_adopt(Client *c, const StateLease *sl, Lease **ret);

Lease *lease_find(Manager *m, uint64_t id);
/* Leases in id order: NULL gives the first. */
Lease *lease_next(Manager *m, const Lease *prev);
bool lease_is_owned_by(const Lease *l, const char *sender);
unsigned lease_get_granted(const Lease *l);
unsigned lease_get_n_placement(const Lease *l);
void lease_get_placement(const Lease *l, unsigned i, int *ret_node, unsigned *ret_helpers);
/* What the books keep of it. */
void lease_to_state(const Lease *l, StateLease *ret);

void lease_release(Lease *l);
int lease_shrink(Lease *l, unsigned count, unsigned *ret_granted);
int lease_raise_priority(Lease *l, pid_t tid);
/* End it without serving waiters (the caller does, or is tearing down). */
Lease *lease_free(Lease *l);

Waiter *waiter_free(Waiter *w);
/* Serve waiters while the head of the queue fits. */
void lease_dispatch(Manager *m);
