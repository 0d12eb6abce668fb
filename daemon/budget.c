/* budget.c: the broker's accounting. Owns the machine-wide and per-node helper slots, the
 * per-user counts, the clients, their leases and the FIFO queue of waiting requests. A grant
 * is planned against the free slots (machine, user, node) in the order the request asks for
 * (requested node, then nearest by distance; or most-free first for any node), then charged
 * to the lease, which gives the charge back when shrunk or freed. Pure logic: no I/O, no
 * logging, no clocks; the manager drives it and answers the bus. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "list.h"
#include "util.h"

typedef struct BudgetUser BudgetUser;

struct BudgetUser {
        Budget *budget;
        uid_t uid;
        unsigned n_refs;                /* clients of this uid */
        unsigned in_use;                /* slots held by this uid's leases */
        unsigned n_waiting;             /* queued requests of this uid */
        unsigned n_leases;              /* leases of this uid */
        LIST_FIELDS(BudgetUser, users);
};

struct BudgetClient {
        Budget *budget;
        BudgetUser *user;
        void *userdata;
        unsigned n_leases;
        unsigned n_waiters;
        BudgetLease *leases;
        BudgetWaiter *waiters;
        LIST_FIELDS(BudgetClient, clients);
};

typedef struct BudgetCharge {
        unsigned index;                 /* topology index */
        unsigned helpers;
} BudgetCharge;

struct BudgetLease {
        Budget *budget;
        BudgetClient *client;
        void *userdata;
        uint64_t id;
        unsigned granted;
        unsigned n_placement;
        LIST_FIELDS(BudgetLease, leases);       /* in the budget, id order */
        LIST_FIELDS(BudgetLease, client);       /* in the client */
        BudgetCharge placement[];               /* n_nodes entries, n_placement used */
};

struct BudgetWaiter {
        BudgetClient *client;
        void *userdata;
        BudgetRequest request;          /* allowed points to allowed_copy or is NULL */
        bool *allowed_copy;
        LIST_FIELDS(BudgetWaiter, queue);
        LIST_FIELDS(BudgetWaiter, client);
};

struct Budget {
        unsigned n_nodes;
        int *node_id;
        unsigned *node_cpus;
        unsigned *distance;             /* n_nodes * n_nodes */

        unsigned max_helpers;
        unsigned *node_max;
        unsigned max_per_user;
        unsigned max_leases_per_client;
        unsigned max_waiting;
        unsigned max_waiting_per_user;
        unsigned max_leases_per_user;

        unsigned in_use;
        unsigned *node_in_use;

        uint64_t next_id;
        unsigned n_leases;
        BudgetLease *leases, *leases_tail;
        unsigned n_waiting;
        BudgetWaiter *queue, *queue_tail;
        BudgetClient *clients;
        BudgetUser *users;

        /* Scratch for planning a grant, n_nodes entries each; and the slots set aside for
         * the waiters ahead of the request being planned. */
        unsigned *order;
        unsigned *take;
        unsigned *node_reserved;
        unsigned reserved;
};

static unsigned free_slots(unsigned max, unsigned in_use) {
        return max > in_use ? max - in_use : 0;
}

static int budget_index(const Budget *b, int id) {
        for (unsigned i = 0; i < b->n_nodes; i++)
                if (b->node_id[i] == id)
                        return (int) i;
        return -1;
}

int budget_new(const Topology *topology, const BudgetLimits *limits, Budget **ret) {
        Budget *b;
        unsigned n;
        int r;

        if (!topology || !limits || !ret)
                return -EINVAL;

        n = topology->n_nodes;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->n_nodes = n;
        b->next_id = 1;
        b->node_id = calloc(MAX(n, 1u), sizeof(int));
        b->node_cpus = calloc(MAX(n, 1u), sizeof(unsigned));
        b->distance = calloc(MAX(n * n, 1u), sizeof(unsigned));
        b->node_max = calloc(MAX(n, 1u), sizeof(unsigned));
        b->node_in_use = calloc(MAX(n, 1u), sizeof(unsigned));
        b->order = calloc(MAX(n, 1u), sizeof(unsigned));
        b->take = calloc(MAX(n, 1u), sizeof(unsigned));
        b->node_reserved = calloc(MAX(n, 1u), sizeof(unsigned));
        if (!b->node_id || !b->node_cpus || !b->distance || !b->node_max || !b->node_in_use ||
            !b->order || !b->take || !b->node_reserved) {
                budget_free(b);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < n; i++) {
                b->node_id[i] = topology->nodes[i].id;
                b->node_cpus[i] = topology->nodes[i].n_cpus;
        }
        if (n > 0)
                memcpy(b->distance, topology->distance, sizeof(unsigned) * n * n);

        r = budget_set_limits(b, limits);
        if (r < 0) {
                budget_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

Budget *budget_free(Budget *b) {
        if (!b)
                return NULL;
        while (b->clients)
                budget_client_free(b->clients);
        free(b->node_id);
        free(b->node_cpus);
        free(b->distance);
        free(b->node_max);
        free(b->node_in_use);
        free(b->order);
        free(b->take);
        free(b->node_reserved);
        free(b);
        return NULL;
}

int budget_set_limits(Budget *b, const BudgetLimits *limits) {
        if (!b || !limits || (b->n_nodes > 0 && !limits->node_max))
                return -EINVAL;
        b->max_helpers = limits->max_helpers;
        if (b->n_nodes > 0)
                memcpy(b->node_max, limits->node_max, sizeof(unsigned) * b->n_nodes);
        b->max_per_user = limits->max_per_user;
        b->max_leases_per_client = limits->max_leases_per_client;
        b->max_waiting = limits->max_waiting;
        b->max_waiting_per_user = limits->max_waiting_per_user;
        b->max_leases_per_user = limits->max_leases_per_user;
        return 0;
}

int budget_set_quota(Budget *b, int node, unsigned max_helpers) {
        int i;

        if (!b)
                return -EINVAL;
        if (node == -1) {
                b->max_helpers = max_helpers;
                return 0;
        }
        i = budget_index(b, node);
        if (i < 0)
                return PAD_ERROR_NO_SUCH_NODE;
        b->node_max[i] = max_helpers;
        return 0;
}

/* ---- Users and clients ----------------------------------------------------------------- */

static BudgetUser *budget_user_ref(Budget *b, uid_t uid) {
        BudgetUser *u;

        LIST_FOREACH(users, i, b->users)
                if (i->uid == uid) {
                        i->n_refs++;
                        return i;
                }
        u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->budget = b;
        u->uid = uid;
        u->n_refs = 1;
        LIST_PREPEND(users, b->users, u);
        return u;
}

static void budget_user_unref(BudgetUser *u) {
        if (!u || --u->n_refs > 0)
                return;
        LIST_REMOVE(users, u->budget->users, u);
        free(u);
}

int budget_client_new(Budget *b, uid_t uid, void *userdata, BudgetClient **ret) {
        BudgetClient *c;

        if (!b || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->user = budget_user_ref(b, uid);
        if (!c->user) {
                free(c);
                return -ENOMEM;
        }
        c->budget = b;
        c->userdata = userdata;
        LIST_PREPEND(clients, b->clients, c);
        *ret = c;
        return 0;
}

BudgetClient *budget_client_free(BudgetClient *c) {
        if (!c)
                return NULL;
        while (c->leases)
                budget_lease_free(c->leases);
        while (c->waiters)
                budget_waiter_free(c->waiters);
        LIST_REMOVE(clients, c->budget->clients, c);
        budget_user_unref(c->user);
        free(c);
        return NULL;
}

void *budget_client_get_userdata(const BudgetClient *c) {
        return c ? c->userdata : NULL;
}

uid_t budget_client_get_uid(const BudgetClient *c) {
        return c ? c->user->uid : (uid_t) -1;
}

/* ---- Planning a grant ------------------------------------------------------------------- */

static int request_check(const Budget *b, const BudgetRequest *req) {
        if (!req || req->helpers < 1 || req->helpers > BROKER_HELPERS_MAX || req->min > req->helpers)
                return PAD_ERROR_INVALID_ARGS;
        if (req->node != -1 && (req->node < 0 || budget_index(b, req->node) < 0))
                return PAD_ERROR_NO_SUCH_NODE;
        return 0;
}

/* Does node index a come before index b in the order for this request? */
static bool order_before(const Budget *b, int origin, unsigned x, unsigned y) {
        if (origin >= 0) {
                unsigned dx = b->distance[(unsigned) origin * b->n_nodes + x];
                unsigned dy = b->distance[(unsigned) origin * b->n_nodes + y];

                if ((unsigned) origin == x || (unsigned) origin == y)
                        return (unsigned) origin == x && x != y;
                if (dx != dy)
                        return dx < dy;
        } else {
                unsigned fx = free_slots(b->node_max[x], b->node_in_use[x]);
                unsigned fy = free_slots(b->node_max[y], b->node_in_use[y]);

                if (fx != fy)
                        return fx > fy;
        }
        return b->node_id[x] < b->node_id[y];
}

/* Fill b->order with the nodes to take from, in order; returns how many. */
static unsigned plan_order(Budget *b, const BudgetRequest *req) {
        int origin = req->node >= 0 ? budget_index(b, req->node) : -1;
        unsigned n = 0;

        for (unsigned i = 0; i < b->n_nodes; i++) {
                if (req->allowed && !req->allowed[i])
                        continue;
                if (req->strict_node && origin >= 0 && (int) i != origin)
                        continue;
                /* Insertion sort: n_nodes is small. */
                unsigned j = n++;
                while (j > 0 && order_before(b, origin, i, b->order[j - 1])) {
                        b->order[j] = b->order[j - 1];
                        j--;
                }
                b->order[j] = i;
        }
        return n;
}

static unsigned user_free_slots(const Budget *b, const BudgetUser *u) {
        if (b->max_per_user == 0)
                return UINT32_MAX;
        return free_slots(b->max_per_user, u->in_use);
}

/* Fill b->take (by order position) and return the total the request would get now, from
 * the slots not set aside for waiters ahead of it (b->reserved, b->node_reserved); with
 * ignore_user, as if its user had no cap. */
static unsigned plan_grant(Budget *b, const BudgetUser *u, const BudgetRequest *req, bool ignore_user,
                           unsigned *ret_n_order) {
        unsigned want = req->helpers, total = 0, n;

        want = MIN(want, free_slots(b->max_helpers, b->in_use + b->reserved));
        if (!ignore_user)
                want = MIN(want, user_free_slots(b, u));

        n = plan_order(b, req);
        for (unsigned k = 0; k < n; k++) {
                unsigned i = b->order[k];
                unsigned t = MIN(free_slots(b->node_max[i], b->node_in_use[i] + b->node_reserved[i]),
                                 want - total);

                b->take[k] = t;
                total += t;
        }
        *ret_n_order = n;
        return total;
}

static void reserve_clear(Budget *b) {
        b->reserved = 0;
        memset(b->node_reserved, 0, sizeof(unsigned) * MAX(b->n_nodes, 1u));
}

/* Set aside for waiter w what its min would take now (all it can get, if that is less):
 * requests behind it are planned from the rest. A waiter held back only by its own user's
 * cap sets nothing aside, so it never holds up other users. Returns whether w fits now. */
static bool reserve_for(Budget *b, const BudgetWaiter *w) {
        BudgetRequest at_min = w->request;
        unsigned n_order, total;

        at_min.helpers = MAX(at_min.min, 1u);
        total = plan_grant(b, w->client->user, &at_min, false, &n_order);
        if (total >= w->request.min)
                return true;
        if (plan_grant(b, w->client->user, &at_min, true, &n_order) >= w->request.min)
                return false;           /* its user's cap, not the machine, holds it */
        for (unsigned k = 0; k < n_order; k++) {
                b->node_reserved[b->order[k]] += b->take[k];
                b->reserved += b->take[k];
        }
        return false;
}

/* Reserve for every waiter in the queue, for a request arriving now. */
static void reserve_for_queue(Budget *b) {
        reserve_clear(b);
        LIST_FOREACH(queue, w, b->queue)
                (void) reserve_for(b, w);
}

/* One more lease or waiting request of this user would pass MaxLeasesPerUser. */
static bool user_at_lease_cap(const Budget *b, const BudgetUser *u) {
        return b->max_leases_per_user > 0 && u->n_leases + u->n_waiting >= b->max_leases_per_user;
}

/* Could min ever be met under today's caps, all slots free? */
static bool request_can_fit(const Budget *b, const BudgetRequest *req) {
        int origin = req->node >= 0 ? budget_index(b, req->node) : -1;
        unsigned cap = b->max_helpers, nodes = 0;

        if (b->max_per_user > 0)
                cap = MIN(cap, b->max_per_user);
        for (unsigned i = 0; i < b->n_nodes; i++)
                if ((!req->allowed || req->allowed[i]) && !(req->strict_node && origin >= 0 && (int) i != origin))
                        nodes += b->node_max[i];
        return req->min <= MIN(cap, nodes);
}

static BudgetLease *lease_alloc(BudgetClient *c, uint64_t id) {
        BudgetLease *l;

        l = calloc(1, sizeof(*l) + sizeof(BudgetCharge) * MAX(c->budget->n_nodes, 1u));
        if (!l)
                return NULL;
        l->budget = c->budget;
        l->client = c;
        l->id = id;
        return l;
}

/* Take t slots on node index i for l. */
static void lease_charge(BudgetLease *l, unsigned i, unsigned t) {
        l->placement[l->n_placement++] = (BudgetCharge) { .index = i, .helpers = t };
        l->granted += t;
        l->budget->node_in_use[i] += t;
}

/* Account the charged lease and link it in. Ids only grow, so appending keeps the budget's
 * list in id order. */
static void lease_link(BudgetLease *l) {
        Budget *b = l->budget;
        BudgetClient *c = l->client;

        b->in_use += l->granted;
        c->user->in_use += l->granted;
        LIST_APPEND_TAIL(leases, b->leases, b->leases_tail, l);
        b->n_leases++;
        LIST_PREPEND(client, c->leases, l);
        c->n_leases++;
        c->user->n_leases++;
}

static int lease_new(BudgetClient *c, unsigned n_order, BudgetLease **ret) {
        Budget *b = c->budget;
        BudgetLease *l;

        l = lease_alloc(c, b->next_id);
        if (!l)
                return -ENOMEM;
        b->next_id++;
        for (unsigned k = 0; k < n_order; k++)
                if (b->take[k] > 0)
                        lease_charge(l, b->order[k], b->take[k]);
        lease_link(l);
        *ret = l;
        return 0;
}

int budget_acquire(BudgetClient *c, const BudgetRequest *req, BudgetLease **ret) {
        Budget *b;
        unsigned n_order, total;
        int r;

        if (!c || !ret)
                return -EINVAL;
        b = c->budget;
        r = request_check(b, req);
        if (r != 0)
                return r;
        if (c->n_leases + c->n_waiters >= b->max_leases_per_client || user_at_lease_cap(b, c->user))
                return PAD_ERROR_LIMITS_EXCEEDED;

        if (!request_can_fit(b, req))
                return PAD_ERROR_NEVER_FITS;
        /* Slots freed while others wait are theirs first, in order. */
        reserve_for_queue(b);
        total = plan_grant(b, c->user, req, false, &n_order);
        reserve_clear(b);
        if (total < req->min)
                return PAD_ERROR_BUSY;
        return lease_new(c, n_order, ret);
}

/* Charge exactly the placement a lease had before a restart. Caps are not checked: nothing
 * granted is revoked, as on a reload. Ids must come in increasing order, above any id the
 * budget gave out and low enough that next_id cannot wrap to 0 and give ids out again. */
int budget_adopt(BudgetClient *c, uint64_t id, const BudgetPlacement *placement, unsigned n,
                 BudgetLease **ret) {
        Budget *b;
        BudgetLease *l;

        if (!c || !ret || id == 0 || (n > 0 && !placement))
                return -EINVAL;
        b = c->budget;
        if (id < b->next_id || id > BUDGET_ID_MAX || n > b->n_nodes)
                return PAD_ERROR_INVALID_ARGS;
        for (unsigned k = 0; k < n; k++) {
                if (budget_index(b, placement[k].node) < 0)
                        return PAD_ERROR_NO_SUCH_NODE;
                if (placement[k].helpers == 0 || placement[k].helpers > BROKER_HELPERS_MAX)
                        return PAD_ERROR_INVALID_ARGS;
                for (unsigned j = 0; j < k; j++)
                        if (placement[j].node == placement[k].node)
                                return PAD_ERROR_INVALID_ARGS;
        }

        l = lease_alloc(c, id);
        if (!l)
                return -ENOMEM;
        b->next_id = id + 1;
        for (unsigned k = 0; k < n; k++)
                lease_charge(l, (unsigned) budget_index(b, placement[k].node), placement[k].helpers);
        lease_link(l);
        *ret = l;
        return 0;
}

uint64_t budget_get_next_id(const Budget *b) {
        return b->next_id;
}

void budget_set_next_id(Budget *b, uint64_t id) {
        id = MIN(id, BUDGET_ID_MAX + 1);
        if (id > b->next_id)
                b->next_id = id;
}

/* ---- Leases ----------------------------------------------------------------------------- */

BudgetLease *budget_lease_free(BudgetLease *l) {
        Budget *b;

        if (!l)
                return NULL;
        b = l->budget;
        for (unsigned k = 0; k < l->n_placement; k++)
                b->node_in_use[l->placement[k].index] -= l->placement[k].helpers;
        b->in_use -= l->granted;
        l->client->user->in_use -= l->granted;

        LIST_REMOVE_TAIL(leases, b->leases, b->leases_tail, l);
        b->n_leases--;
        LIST_REMOVE(client, l->client->leases, l);
        l->client->n_leases--;
        l->client->user->n_leases--;
        free(l);
        return NULL;
}

int budget_lease_shrink(BudgetLease *l, unsigned count, unsigned *ret_granted) {
        Budget *b;

        if (!l)
                return -EINVAL;
        if (count > l->granted)
                return PAD_ERROR_INVALID_ARGS;
        b = l->budget;
        b->in_use -= count;
        l->client->user->in_use -= count;
        l->granted -= count;
        while (count > 0) {
                BudgetCharge *ch = &l->placement[l->n_placement - 1];
                unsigned t = MIN(ch->helpers, count);

                ch->helpers -= t;
                b->node_in_use[ch->index] -= t;
                count -= t;
                if (ch->helpers == 0)
                        l->n_placement--;
        }
        if (ret_granted)
                *ret_granted = l->granted;
        return 0;
}

uint64_t budget_lease_get_id(const BudgetLease *l) {
        return l ? l->id : 0;
}

unsigned budget_lease_get_granted(const BudgetLease *l) {
        return l ? l->granted : 0;
}

BudgetClient *budget_lease_get_client(const BudgetLease *l) {
        return l ? l->client : NULL;
}

void budget_lease_set_userdata(BudgetLease *l, void *userdata) {
        if (l)
                l->userdata = userdata;
}

void *budget_lease_get_userdata(const BudgetLease *l) {
        return l ? l->userdata : NULL;
}

unsigned budget_lease_get_n_placement(const BudgetLease *l) {
        return l ? l->n_placement : 0;
}

void budget_lease_get_placement(const BudgetLease *l, unsigned i, int *ret_node, unsigned *ret_helpers) {
        int node = -1;
        unsigned helpers = 0;

        if (l && i < l->n_placement) {
                node = l->budget->node_id[l->placement[i].index];
                helpers = l->placement[i].helpers;
        }
        if (ret_node)
                *ret_node = node;
        if (ret_helpers)
                *ret_helpers = helpers;
}

/* ---- Waiters ---------------------------------------------------------------------------- */

int budget_enqueue(BudgetClient *c, const BudgetRequest *req, void *userdata, BudgetWaiter **ret) {
        Budget *b;
        BudgetWaiter *w;
        int r;

        if (!c || !ret)
                return -EINVAL;
        b = c->budget;
        r = request_check(b, req);
        if (r != 0)
                return r;
        if (!request_can_fit(b, req))
                return PAD_ERROR_NEVER_FITS;
        if (c->n_leases + c->n_waiters >= b->max_leases_per_client || b->n_waiting >= b->max_waiting ||
            (b->max_waiting_per_user > 0 && c->user->n_waiting >= b->max_waiting_per_user) ||
            user_at_lease_cap(b, c->user))
                return PAD_ERROR_LIMITS_EXCEEDED;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->request = *req;
        if (req->allowed) {
                w->allowed_copy = malloc(sizeof(bool) * MAX(b->n_nodes, 1u));
                if (!w->allowed_copy) {
                        free(w);
                        return -ENOMEM;
                }
                memcpy(w->allowed_copy, req->allowed, sizeof(bool) * b->n_nodes);
                w->request.allowed = w->allowed_copy;
        }
        w->client = c;
        w->userdata = userdata;

        LIST_APPEND_TAIL(queue, b->queue, b->queue_tail, w);
        b->n_waiting++;

        LIST_PREPEND(client, c->waiters, w);
        c->n_waiters++;
        c->user->n_waiting++;
        *ret = w;
        return 0;
}

BudgetWaiter *budget_waiter_free(BudgetWaiter *w) {
        Budget *b;

        if (!w)
                return NULL;
        b = w->client->budget;
        LIST_REMOVE_TAIL(queue, b->queue, b->queue_tail, w);
        b->n_waiting--;
        LIST_REMOVE(client, w->client->waiters, w);
        w->client->n_waiters--;
        w->client->user->n_waiting--;
        free(w->allowed_copy);
        free(w);
        return NULL;
}

void *budget_waiter_get_userdata(const BudgetWaiter *w) {
        return w ? w->userdata : NULL;
}

int budget_dispatch(Budget *b, void **ret_userdata, BudgetLease **ret_lease) {
        BudgetLease *l;
        unsigned n_order;
        void *userdata;
        int r;

        if (!b || !ret_lease)
                return -EINVAL;
        /* The first waiter, in order, that fits in what the ones ahead of it leave. */
        reserve_clear(b);
        LIST_FOREACH(queue, w, b->queue) {
                if (!reserve_for(b, w))
                        continue;
                (void) plan_grant(b, w->client->user, &w->request, false, &n_order);
                r = lease_new(w->client, n_order, &l);
                reserve_clear(b);
                if (r < 0)
                        return r;
                userdata = w->userdata;
                budget_waiter_free(w);
                if (ret_userdata)
                        *ret_userdata = userdata;
                *ret_lease = l;
                return 1;
        }
        reserve_clear(b);
        return 0;
}

/* ---- State ------------------------------------------------------------------------------ */

unsigned budget_get_max_helpers(const Budget *b) {
        return b->max_helpers;
}

unsigned budget_get_in_use(const Budget *b) {
        return b->in_use;
}

unsigned budget_get_n_waiting(const Budget *b) {
        return b->n_waiting;
}

unsigned budget_get_n_leases(const Budget *b) {
        return b->n_leases;
}

unsigned budget_get_n_nodes(const Budget *b) {
        return b->n_nodes;
}

void budget_get_node(const Budget *b, unsigned index, int *ret_id, unsigned *ret_cpus,
                     unsigned *ret_max, unsigned *ret_in_use) {
        bool ok = index < b->n_nodes;

        if (ret_id)
                *ret_id = ok ? b->node_id[index] : -1;
        if (ret_cpus)
                *ret_cpus = ok ? b->node_cpus[index] : 0;
        if (ret_max)
                *ret_max = ok ? b->node_max[index] : 0;
        if (ret_in_use)
                *ret_in_use = ok ? b->node_in_use[index] : 0;
}

BudgetLease *budget_next_lease(const Budget *b, const BudgetLease *prev) {
        if (!prev)
                return b->leases;
        return prev->leases_next;
}
