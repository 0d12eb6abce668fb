/* lease.c: leases and waiting Acquire calls (lease.h): grants through the budget, the
 * lease table by id, ttl and deadline timers, the FIFO dispatch of waiters when slots come
 * back, and the journal entries in the books for every grant, shrink and end. */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "books.h"
#include "client.h"
#include "lease.h"
#include "log.h"

struct Waiter {
        Manager *manager;
        Client *client;
        BudgetWaiter *budget_waiter;
        WaiterComplete complete;
        void *userdata;
        sd_event_source *deadline_source;
        char tag[BROKER_TAG_MAX + 1];
        SchedParams sched;
        uint64_t ttl_usec;
        uint64_t queued_at;     /* CLOCK_MONOTONIC usec */
        LIST_FIELDS(Waiter, waiters);
};

/* ---- the table ------------------------------------------------------------------------ */

static int lease_compare(const void *a, const void *b) {
        uint64_t x = ((const Lease *) a)->id, y = ((const Lease *) b)->id;

        return x < y ? -1 : x > y;
}

Lease *lease_find(Manager *m, uint64_t id) {
        Lease key = { .id = id };
        void *node = tfind(&key, &m->leases, lease_compare);

        return node ? *(Lease **) node : NULL;
}

Lease *lease_next(Manager *m, const Lease *prev) {
        BudgetLease *bl = budget_next_lease(m->budget, prev ? prev->budget_lease : NULL);

        return bl ? budget_lease_get_userdata(bl) : NULL;
}

bool lease_is_owned_by(const Lease *l, const char *sender) {
        return sender && streq(sender, l->client->name);
}

unsigned lease_get_granted(const Lease *l) {
        return budget_lease_get_granted(l->budget_lease);
}

unsigned lease_get_n_placement(const Lease *l) {
        return budget_lease_get_n_placement(l->budget_lease);
}

void lease_get_placement(const Lease *l, unsigned i, int *ret_node, unsigned *ret_helpers) {
        budget_lease_get_placement(l->budget_lease, i, ret_node, ret_helpers);
}

void lease_to_state(const Lease *l, StateLease *ret) {
        *ret = (StateLease) {
                .id = l->id,
                .uid = l->client->uid,
                .pid = l->client->pid,
                .start_time = l->client->start_time,
                .ttl_deadline = l->ttl_deadline,
                .sched = l->sched,
        };
        snprintf(ret->owner, sizeof ret->owner, "%s", l->client->name);
        snprintf(ret->tag, sizeof ret->tag, "%s", l->tag);
        ret->n_placement = MIN(lease_get_n_placement(l), STATE_PLACEMENT_MAX);
        for (unsigned i = 0; i < ret->n_placement; i++)
                lease_get_placement(l, i, &ret->placement[i].node, &ret->placement[i].helpers);
}

/* ---- counting ------------------------------------------------------------------------- */

static void count_grant(Manager *m, const Lease *l) {
        unsigned n = MIN(lease_get_n_placement(l), STATE_PLACEMENT_MAX), index[STATE_PLACEMENT_MAX],
                 helpers[STATE_PLACEMENT_MAX];

        for (unsigned i = 0; i < n; i++) {
                int node;

                lease_get_placement(l, i, &node, &helpers[i]);
                index[i] = (unsigned) MAX(topology_node_index(m->topology, node), 0);
        }
        stats_grant(&m->stats, l->client->uid, index, helpers, n);
}

static void count_refusal(Manager *m, int r) {
        switch (r) {
        case PAD_ERROR_BUSY:
        case PAD_ERROR_NEVER_FITS:
                manager_count(m, STATS_DENIED_BUSY);
                break;
        case PAD_ERROR_LIMITS_EXCEEDED:
                manager_count(m, STATS_DENIED_LIMITS);
                break;
        case PAD_ERROR_TIMEOUT:
                manager_count(m, STATS_DENIED_TIMEOUT);
                break;
        case PAD_ERROR_ACCESS_DENIED:
                manager_count(m, STATS_DENIED_ACCESS);
                break;
        case PAD_ERROR_INVALID_ARGS:
        case PAD_ERROR_NO_SUCH_NODE:
                manager_count(m, STATS_DENIED_INVALID);
                break;
        default:
                break;
        }
}

/* ---- leases --------------------------------------------------------------------------- */

Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        LIST_REMOVE(leases, l->client->leases, l);
        tdelete(l, &l->manager->leases, lease_compare);
        sd_event_source_disable_unref(l->ttl_source);
        budget_lease_free(l->budget_lease);
        /* After the budget let go of it: a snapshot the books take now must not hold it. */
        books_lease_dropped(l->manager, l);
        free(l);
        return NULL;
}

static int lease_on_ttl(sd_event_source *s, uint64_t usec, void *userdata) {
        Lease *l = userdata;
        Manager *m = l->manager;

        log_debug("Lease %" PRIu64 " of %s reached its ttl, reclaiming %u helpers.",
                  l->id, l->client->name, lease_get_granted(l));
        if (m->hooks.lease_expired)
                m->hooks.lease_expired(l, m->hooks.userdata);
        manager_count(m, STATS_TTL_EXPIRED);
        lease_free(l);
        manager_slots_returned(m);
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Arm a timer at the CLOCK_MONOTONIC time usec; UINT64_MAX or past the clock's range means
 * "never" (*ret NULL). */
static int add_timer(Manager *m, sd_event_source **ret, uint64_t usec, sd_event_time_handler_t handler,
                     void *userdata) {
        *ret = NULL;
        if (usec == UINT64_MAX)
                return 0;
        return sd_event_add_time(m->event, ret, CLOCK_MONOTONIC, usec, 1, handler, userdata);
}

static uint64_t deadline_after(uint64_t usec) {
        uint64_t now = now_usec();

        return usec >= UINT64_MAX - now ? UINT64_MAX : now + usec;
}

/* Wrap a budget lease (taken, even on failure) for client c. */
static int lease_new(Client *c, BudgetLease *bl, const char *tag, const SchedParams *sched,
                     uint64_t ttl_deadline, Lease **ret) {
        Manager *m = c->manager;
        Lease *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l) {
                budget_lease_free(bl);
                return -ENOMEM;
        }
        l->manager = m;
        l->client = c;
        l->budget_lease = bl;
        l->id = budget_lease_get_id(bl);
        snprintf(l->path, sizeof l->path, LEASE_PATH_PREFIX "/%" PRIu64, l->id);
        snprintf(l->tag, sizeof l->tag, "%s", tag);
        l->sched = *sched;
        l->ttl_deadline = ttl_deadline;
        LIST_PREPEND(leases, c->leases, l);
        budget_lease_set_userdata(bl, l);
        if (!tsearch(l, &m->leases, lease_compare)) {
                LIST_REMOVE(leases, c->leases, l);
                budget_lease_free(bl);
                free(l);
                return -ENOMEM;
        }
        if (ttl_deadline > 0) {
                r = add_timer(m, &l->ttl_source, ttl_deadline, lease_on_ttl, l);
                if (r < 0) {
                        lease_free(l);
                        return r;
                }
        }
        books_lease_added(m, l);
        *ret = l;
        return 0;
}

int lease_adopt(Client *c, const StateLease *sl, Lease **ret) {
        BudgetLease *bl;
        int r;

        r = budget_adopt(c->budget_client, sl->id, sl->placement, sl->n_placement, &bl);
        if (r != 0)
                return r;
        return lease_new(c, bl, sl->tag, &sl->sched, sl->ttl_deadline, ret);
}

void lease_release(Lease *l) {
        Manager *m = l->manager;

        log_debug("Lease %" PRIu64 " of %s released (%u helpers).", l->id, l->client->name,
                  lease_get_granted(l));
        manager_count(m, STATS_RELEASES);
        lease_free(l);
        manager_slots_returned(m);
}

int lease_shrink(Lease *l, unsigned count, unsigned *ret_granted) {
        Manager *m = l->manager;
        int r;

        r = budget_lease_shrink(l->budget_lease, count, ret_granted);
        if (r != 0 || count == 0)
                return r;
        log_debug("Lease %" PRIu64 " of %s shrunk by %u to %u helpers.", l->id, l->client->name,
                  count, *ret_granted);
        books_lease_changed(m, l);
        manager_count(m, STATS_SHRINKS);
        if (m->hooks.lease_changed)
                m->hooks.lease_changed(l, m->hooks.userdata);
        manager_slots_returned(m);
        return 0;
}

int lease_raise_priority(Lease *l, pid_t tid) {
        int r;

        r = priority_raise(l->client->pid, l->client->uid, l->client->start_time, tid, &l->sched);
        manager_count(l->manager, r == 0 ? STATS_RAISES : STATS_RAISES_REFUSED);
        if (r < 0)
                log_warning_errno(r, "Raising thread " PID_FMT " of %s (lease %" PRIu64 ") failed: %m",
                                  tid, l->client->name, l->id);
        else if (r == 0)
                log_debug("Raised thread " PID_FMT " of %s (lease %" PRIu64 ").", tid, l->client->name, l->id);
        return r;
}

/* ---- waiters -------------------------------------------------------------------------- */

/* Free w after telling its caller r (a waiter completed twice is a bug). */
static void waiter_complete(Waiter *w, int r, Lease *l) {
        WaiterComplete complete = TAKE_PTR(w->complete);

        assert(complete);
        if (r != -ECONNRESET)
                stats_wait_ended(&w->manager->stats, now_usec() - w->queued_at);
        if (r == 0)
                count_grant(w->manager, l);
        else
                count_refusal(w->manager, r);
        if (complete(r, l, w->userdata) < 0 && l) {
                log_debug("Could not hand lease %" PRIu64 " to %s, ending it.", l->id, w->client->name);
                lease_free(l);
        }
        waiter_free(w);
}

Waiter *waiter_free(Waiter *w) {
        if (!w)
                return NULL;
        if (w->complete)
                waiter_complete(w, -ECONNRESET, NULL);  /* comes back here with complete NULL */
        else {
                LIST_REMOVE(waiters, w->client->waiters, w);
                budget_waiter_free(w->budget_waiter);
                sd_event_source_disable_unref(w->deadline_source);
                free(w);
        }
        return NULL;
}

static int waiter_on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;
        Manager *m = w->manager;

        log_debug("Acquire call of %s timed out waiting for helpers.", w->client->name);
        waiter_complete(w, PAD_ERROR_TIMEOUT, NULL);
        manager_slots_returned(m);      /* the head may have been what held the others back */
        return 0;
}

static int waiter_new(Client *c, const AcquireRequest *req, const BudgetRequest *breq,
                      const SchedParams *sched, WaiterComplete complete, void *userdata) {
        Manager *m = c->manager;
        Waiter *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->client = c;
        w->sched = *sched;
        w->ttl_usec = req->ttl_usec;
        snprintf(w->tag, sizeof w->tag, "%s", req->tag);
        LIST_PREPEND(waiters, c->waiters, w);

        r = budget_enqueue(c->budget_client, breq, w, &w->budget_waiter);
        if (r == 0)
                r = add_timer(m, &w->deadline_source, deadline_after(req->wait_usec), waiter_on_deadline, w);
        if (r != 0) {
                waiter_free(w);         /* complete is not set yet: nobody is told */
                return r;
        }
        w->complete = complete;
        w->userdata = userdata;
        w->queued_at = now_usec();
        manager_count(m, STATS_WAITS);
        log_debug("Acquire call of %s waits for %u of %u helpers (%" PRIu64 " us).",
                  c->name, req->min, req->helpers, req->wait_usec);
        return 0;
}

void lease_dispatch(Manager *m) {
        for (;;) {
                BudgetLease *bl;
                Waiter *w;
                Lease *l = NULL;
                void *userdata;
                int r;

                r = budget_dispatch(m->budget, &userdata, &bl);
                if (r < 0)
                        log_warning_errno(r, "Failed to serve a waiting Acquire call: %m");
                if (r <= 0)
                        return;
                w = userdata;
                w->budget_waiter = NULL;        /* freed by budget_dispatch */
                r = lease_new(w->client, bl, w->tag, &w->sched,
                              w->ttl_usec ? deadline_after(w->ttl_usec) : 0, &l);
                waiter_complete(w, r, r < 0 ? NULL : l);
                manager_state_changed(m);
        }
}

/* ---- acquire -------------------------------------------------------------------------- */

/* The nodes the thread may run on, from its CPU affinity. */
static int thread_allowed_nodes(const Topology *t, pid_t tid, bool **ret) {
        _cleanup_free_ bool *allowed = NULL;
        cpu_set_t *set = NULL;
        size_t n_cpus = 1024, size;

        for (;;) {
                set = CPU_ALLOC(n_cpus);
                if (!set)
                        return -ENOMEM;
                size = CPU_ALLOC_SIZE(n_cpus);
                if (sched_getaffinity(tid, size, set) == 0)
                        break;
                CPU_FREE(set);
                if (errno != EINVAL || n_cpus >= (1u << 20))
                        return -errno;
                n_cpus *= 2;
        }

        allowed = calloc(MAX(t->n_nodes, 1u), sizeof(bool));
        if (!allowed) {
                CPU_FREE(set);
                return -ENOMEM;
        }
        for (size_t cpu = 0; cpu < size * 8; cpu++)
                if (CPU_ISSET_S(cpu, size, set)) {
                        int i = topology_cpu_node_index(t, cpu);

                        if (i >= 0)
                                allowed[i] = true;
                }
        CPU_FREE(set);
        *ret = TAKE_PTR(allowed);
        return 0;
}

static int acquire(Client *c, const AcquireRequest *req, WaiterComplete complete, void *userdata,
                   Lease **ret_lease) {
        _cleanup_free_ bool *allowed = NULL;
        Manager *m = c->manager;
        SchedParams sched = {};
        BudgetLease *bl;
        pid_t tid;
        int r;

        if (req->node != -1 && topology_node_index(m->topology, req->node) < 0)
                return PAD_ERROR_NO_SUCH_NODE;

        tid = req->caller_tid > 0 ? req->caller_tid : c->pid;
        r = priority_read(c->pid, c->uid, c->start_time, tid, &sched);
        if (r != 0)
                return r;
        r = thread_allowed_nodes(m->topology, tid, &allowed);
        if (r == -ESRCH)
                return PAD_ERROR_INVALID_ARGS;
        if (r < 0)
                return r;

        BudgetRequest breq = {
                .helpers = req->helpers,
                .min = req->min,
                .node = req->node,
                .strict_node = req->strict_node,
                .allowed = allowed,
        };
        r = budget_acquire(c->budget_client, &breq, &bl);
        if (r == 0) {
                r = lease_new(c, bl, req->tag, &sched, req->ttl_usec ? deadline_after(req->ttl_usec) : 0,
                              ret_lease);
                if (r < 0)
                        return r;
                log_debug("Lease %" PRIu64 " granted %u helpers to %s (uid " UID_FMT ", pid " PID_FMT
                          ", tag '%s').", (*ret_lease)->id, lease_get_granted(*ret_lease), c->name,
                          c->uid, c->pid, req->tag);
                count_grant(m, *ret_lease);
                manager_state_changed(m);
                return 0;
        }
        if (r != PAD_ERROR_BUSY || req->wait_usec == 0)
                return r;

        AcquireRequest capped = *req;

        /* Every wait ends, before the bus's own reply timeout. */
        capped.wait_usec = MIN(req->wait_usec, (uint64_t) m->config->max_wait_usec);
        r = waiter_new(c, &capped, &breq, &sched, complete, userdata);
        if (r != 0)
                return r;
        manager_state_changed(m);
        *ret_lease = NULL;
        return 0;
}

int lease_acquire(Client *c, const AcquireRequest *req, WaiterComplete complete, void *userdata,
                  Lease **ret_lease) {
        int r = acquire(c, req, complete, userdata, ret_lease);

        if (r > 0)
                count_refusal(c->manager, r);
        return r;
}
