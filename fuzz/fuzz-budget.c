/* fuzz-budget.c: libFuzzer target of paddd's accounting (daemon/budget.c). The input picks a
 * topology shape and the limits, then drives a sequence of operations, one opcode byte and
 * its argument bytes each: clients come and go, acquire, enqueue, dispatch, shrink, free,
 * quota and limit changes (every limit the budget takes, the per-user lease cap among them),
 * adoption of leases of an earlier run and dropped waiters. The target keeps its own model
 * of what is live and, after every step, checks the budget's books against it: in_use is
 * the sum of the grants, each node's use the sum of the placements on it, each grant the
 * sum of its placement, waiters and leases counted right, ids unique and only growing, and
 * no cap exceeded unless an adoption or a lowered cap put the use there. A grant must be as
 * large as the caps allow and respect its request's node, strict_node and allowed mask.
 * Any violation abort()s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "fuzz-common.h"
#include "util.h"

#define CLIENTS 6u
#define LEASES 24u
#define WAITERS 16u
#define NODES_MAX 8u
#define USERS 3u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Input {
        const uint8_t *p, *end;
} Input;

typedef struct Model {
        Topology *t;
        Budget *b;
        BudgetClient *clients[CLIENTS];
        uid_t uid[CLIENTS];
        BudgetLease *leases[LEASES];
        BudgetWaiter *waiters[WAITERS];
        unsigned waiter_client[WAITERS];
        BudgetRequest waiter_req[WAITERS];
        uint64_t waiter_seq[WAITERS], next_seq;         /* enqueue order */
        bool waiter_allowed[WAITERS][NODES_MAX];
        uint64_t last_id;               /* highest lease id seen so far */
        /* A cap may be exceeded only after an adoption or a lowered cap put the use past it;
         * the excuse lasts until the use is back within the cap. */
        bool machine_excused, node_excused[NODES_MAX], user_excused[USERS];
        /* The limits the budget cannot be asked for. */
        unsigned per_user, per_client, max_waiting, waiting_per_user, leases_per_user;
} Model;

static bool input_take(Input *in, uint8_t *ret) {
        if (in->p >= in->end)
                return false;
        *ret = *in->p++;
        return true;
}

/* The next byte, 0 past the end. */
static uint8_t input_byte(Input *in) {
        uint8_t v = 0;

        (void) input_take(in, &v);
        return v;
}

static unsigned user_index(uid_t uid) {
        return (unsigned) (uid - 1000) % USERS;
}

static unsigned node_max(const Model *m, unsigned i) {
        unsigned max;

        budget_get_node(m->b, i, NULL, NULL, &max, NULL);
        return max;
}

static unsigned node_use(const Model *m, unsigned i) {
        unsigned use;

        budget_get_node(m->b, i, NULL, NULL, NULL, &use);
        return use;
}

static unsigned free_of(unsigned max, unsigned use) {
        return max > use ? max - use : 0;
}

/* The uses the model sees: machine, per node (by index), per user. */
typedef struct Uses {
        unsigned machine, node[NODES_MAX], user[USERS];
} Uses;

static Uses model_uses(const Model *m) {
        Uses u = {};

        for (unsigned i = 0; i < LEASES; i++) {
                const BudgetLease *l = m->leases[i];

                if (!l)
                        continue;
                u.machine += budget_lease_get_granted(l);
                u.user[user_index(budget_client_get_uid(budget_lease_get_client(l)))] +=
                        budget_lease_get_granted(l);
                for (unsigned k = 0; k < budget_lease_get_n_placement(l); k++) {
                        int node;
                        unsigned h;

                        budget_lease_get_placement(l, k, &node, &h);
                        u.node[topology_node_index(m->t, node)] += h;
                }
        }
        return u;
}

static void check_lease(const Model *m, const BudgetLease *l) {
        unsigned sum = 0, n = budget_lease_get_n_placement(l);

        check(n <= m->t->n_nodes, "a placement with more entries than nodes");
        for (unsigned k = 0; k < n; k++) {
                int node, other;
                unsigned h;

                budget_lease_get_placement(l, k, &node, &h);
                check(topology_node_index(m->t, node) >= 0, "a placement on a node that is not there");
                check(h > 0, "a placement entry of 0 helpers");
                for (unsigned j = 0; j < k; j++) {
                        budget_lease_get_placement(l, j, &other, NULL);
                        check(other != node, "a node twice in one placement");
                }
                sum += h;
        }
        check(sum == budget_lease_get_granted(l), "a grant that is not the sum of its placement");
}

static void check_all(Model *m) {
        Uses u = model_uses(m);
        unsigned n_leases = 0, n_waiters = 0;
        uint64_t prev = 0;

        for (unsigned i = 0; i < LEASES; i++)
                if (m->leases[i]) {
                        check_lease(m, m->leases[i]);
                        n_leases++;
                }
        for (unsigned i = 0; i < WAITERS; i++)
                n_waiters += m->waiters[i] != NULL;
        /* The budget's own list: every lease once, in id order. */
        for (const BudgetLease *l = budget_next_lease(m->b, NULL); l; l = budget_next_lease(m->b, l)) {
                check(budget_lease_get_id(l) > prev, "the lease list not in id order");
                prev = budget_lease_get_id(l);
        }
        check(budget_get_n_leases(m->b) == n_leases, "the lease count is off");
        check(budget_get_n_waiting(m->b) == n_waiters, "the waiter count is off");
        check(budget_get_in_use(m->b) == u.machine, "in_use is not the sum of the grants");
        check(budget_get_n_nodes(m->b) == m->t->n_nodes, "the node count changed");
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                check(node_use(m, i) == u.node[i], "a node's use is not the sum of its placements");

        if (u.machine <= budget_get_max_helpers(m->b))
                m->machine_excused = false;
        check(m->machine_excused || u.machine <= budget_get_max_helpers(m->b),
              "machine use past its cap");
        for (unsigned i = 0; i < m->t->n_nodes; i++) {
                if (u.node[i] <= node_max(m, i))
                        m->node_excused[i] = false;
                check(m->node_excused[i] || u.node[i] <= node_max(m, i), "a node's use past its cap");
        }
        for (unsigned i = 0; i < USERS; i++) {
                if (m->per_user == 0 || u.user[i] <= m->per_user)
                        m->user_excused[i] = false;
                check(m->user_excused[i] || m->per_user == 0 || u.user[i] <= m->per_user,
                      "a user's use past its cap");
        }
}

/* Excuse every cap the current use is past (after an adoption or a lowered cap). */
static void excuse_overuse(Model *m) {
        Uses u = model_uses(m);

        m->machine_excused = m->machine_excused || u.machine > budget_get_max_helpers(m->b);
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                m->node_excused[i] = m->node_excused[i] || u.node[i] > node_max(m, i);
        for (unsigned i = 0; i < USERS; i++)
                m->user_excused[i] = m->user_excused[i] || (m->per_user && u.user[i] > m->per_user);
}

static int node_arg(const Model *m, uint8_t v) {
        unsigned k = v % (m->t->n_nodes + 2);

        if (k == m->t->n_nodes)
                return -1;
        if (k == m->t->n_nodes + 1)
                return v & 1 ? 999 : -7;        /* no such node */
        return m->t->nodes[k].id;
}

static unsigned helpers_arg(uint8_t v) {
        if (v == 255)
                return BROKER_HELPERS_MAX + 1;
        if (v == 254)
                return BROKER_HELPERS_MAX;
        return v % 20;
}

static void limits_arg(Model *m, Input *in, BudgetLimits *l, unsigned *nm) {
        l->max_helpers = input_byte(in) % 24;
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                nm[i] = input_byte(in) % 12;
        l->node_max = nm;
        l->max_per_user = input_byte(in) % 10;
        l->max_leases_per_client = input_byte(in) % 7;
        l->max_waiting = input_byte(in) % 9;
        l->max_waiting_per_user = input_byte(in) % 4;
        l->max_leases_per_user = input_byte(in) % 8;
        m->leases_per_user = l->max_leases_per_user;
        m->waiting_per_user = l->max_waiting_per_user;
        m->per_user = l->max_per_user;
        m->per_client = l->max_leases_per_client;
        m->max_waiting = l->max_waiting;
}

static int free_slot(void *const *slots, unsigned n, uint8_t v) {
        for (unsigned k = 0; k < n; k++)
                if (!slots[(v + k) % n])
                        return (int) ((v + k) % n);
        return -1;
}

static int used_slot(void *const *slots, unsigned n, uint8_t v) {
        for (unsigned k = 0; k < n; k++)
                if (slots[(v + k) % n])
                        return (int) ((v + k) % n);
        return -1;
}

static unsigned client_count(const Model *m, unsigned ci) {
        unsigned n = 0;

        for (unsigned i = 0; i < LEASES; i++)
                if (m->leases[i] && budget_lease_get_client(m->leases[i]) == m->clients[ci])
                        n++;
        for (unsigned i = 0; i < WAITERS; i++)
                if (m->waiters[i] && m->waiter_client[i] == ci)
                        n++;
        return n;
}

/* Leases plus queued requests of every client of uid. */
static unsigned user_count(const Model *m, uid_t uid) {
        unsigned n = 0;

        for (unsigned k = 0; k < CLIENTS; k++)
                if (m->clients[k] && m->uid[k] == uid)
                        n += client_count(m, k);
        return n;
}

/* One more lease or queued request of client ci passes a per-client or per-user cap. */
static bool at_count_cap(const Model *m, unsigned ci) {
        return client_count(m, ci) >= m->per_client ||
               (m->leases_per_user && user_count(m, m->uid[ci]) >= m->leases_per_user);
}

static void request_arg(const Model *m, Input *in, BudgetRequest *r, bool *allowed) {
        uint8_t mask;

        *r = (BudgetRequest) { .helpers = helpers_arg(input_byte(in)) };
        r->min = input_byte(in) % (r->helpers + 2);     /* one past helpers is invalid */
        r->node = node_arg(m, input_byte(in));
        mask = input_byte(in);
        r->strict_node = mask & 1;
        if (mask & 2) {
                for (unsigned i = 0; i < m->t->n_nodes; i++)
                        allowed[i] = mask & (4u << i);
                r->allowed = allowed;
        }
}

static int request_error(const Model *m, const BudgetRequest *r) {
        if (r->helpers < 1 || r->helpers > BROKER_HELPERS_MAX || r->min > r->helpers)
                return PAD_ERROR_INVALID_ARGS;
        if (r->node != -1 && topology_node_index(m->t, r->node) < 0)
                return PAD_ERROR_NO_SUCH_NODE;
        return 0;
}

static bool node_reachable(const Model *m, const BudgetRequest *r, unsigned i) {
        return (!r->allowed || r->allowed[i]) && (!r->strict_node || r->node < 0 || m->t->nodes[i].id == r->node);
}

/* What the request may get now, with nothing set aside for waiters: within the machine's,
 * (with_user) the user's and the reachable nodes' free slots. */
static unsigned free_bound(const Model *m, unsigned ci, const BudgetRequest *r, bool with_user) {
        Uses u = model_uses(m);
        unsigned want = MIN(r->helpers, free_of(budget_get_max_helpers(m->b), u.machine)), nodes = 0;

        if (m->per_user && with_user)
                want = MIN(want, free_of(m->per_user, u.user[user_index(m->uid[ci])]));
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                if (node_reachable(m, r, i))
                        nodes += free_of(node_max(m, i), u.node[i]);
        return MIN(want, nodes);
}

static unsigned grant_bound(const Model *m, unsigned ci, const BudgetRequest *r) {
        return free_bound(m, ci, r, true);
}

/* Whether min is above what the caps could give with every slot free. */
static bool never_fits(const Model *m, const BudgetRequest *r) {
        unsigned cap = budget_get_max_helpers(m->b), nodes = 0;

        if (m->per_user)
                cap = MIN(cap, m->per_user);
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                if (node_reachable(m, r, i))
                        nodes += node_max(m, i);
        return r->min > MIN(cap, nodes);
}

/* A new lease from a grant: its id is new and the largest yet, it has what the caps allowed,
 * and its placement keeps to the request. */
static void check_grant(Model *m, const BudgetLease *l, const BudgetRequest *r, unsigned bound,
                        bool exact, const Uses *before) {
        unsigned granted = budget_lease_get_granted(l);

        check(budget_lease_get_id(l) > m->last_id, "a lease id that is not new");
        m->last_id = budget_lease_get_id(l);
        check(granted >= r->min && granted <= r->helpers, "a grant outside min..helpers");
        check(granted <= bound, "a grant larger than the free slots");
        check(!exact || granted == bound, "a grant smaller than the caps allow");
        for (unsigned k = 0; k < budget_lease_get_n_placement(l); k++) {
                int node, i;
                unsigned h;

                budget_lease_get_placement(l, k, &node, &h);
                i = topology_node_index(m->t, node);
                check(!r->allowed || r->allowed[i], "a placement on a node the caller may not use");
                check(!r->strict_node || r->node < 0 || node == r->node, "a strict request placed elsewhere");
                check(before->node[i] + h <= MAX(node_max(m, i), before->node[i]),
                      "a grant pushed a node past its cap");
                if (k == 0 && r->node >= 0 && exact) {
                        int o = topology_node_index(m->t, r->node);

                        if ((!r->allowed || r->allowed[o]) && free_of(node_max(m, (unsigned) o), before->node[o]) > 0)
                                check(node == r->node, "the requested node had room but was not first");
                }
        }
}

static void op_client_new(Model *m, Input *in) {
        int k = free_slot((void *const *) m->clients, CLIENTS, input_byte(in));
        uid_t uid = 1000 + input_byte(in) % USERS;

        if (k < 0)
                return;
        check(budget_client_new(m->b, uid, NULL, &m->clients[k]) == 0, "budget_client_new failed");
        m->uid[k] = uid;
}

/* Drop client k from the model and the budget, with its leases and waiters. */
static void model_client_free(Model *m, unsigned k) {
        for (unsigned i = 0; i < LEASES; i++)
                if (m->leases[i] && budget_lease_get_client(m->leases[i]) == m->clients[k])
                        m->leases[i] = NULL;
        for (unsigned i = 0; i < WAITERS; i++)
                if (m->waiters[i] && m->waiter_client[i] == k)
                        m->waiters[i] = NULL;
        m->clients[k] = budget_client_free(m->clients[k]);
}

static void op_client_free(Model *m, Input *in) {
        int k = used_slot((void *const *) m->clients, CLIENTS, input_byte(in));

        if (k >= 0)
                model_client_free(m, (unsigned) k);
}

static unsigned n_waiters(const Model *m) {
        unsigned n = 0;

        for (unsigned i = 0; i < WAITERS; i++)
                n += m->waiters[i] != NULL;
        return n;
}

static int oldest_waiter(const Model *m);

static unsigned user_waiters(const Model *m, uid_t uid) {
        unsigned n = 0;

        for (unsigned i = 0; i < WAITERS; i++)
                n += m->waiters[i] && m->uid[m->waiter_client[i]] == uid;
        return n;
}

/* With nobody waiting, a request gets all the caps allow (Busy only below its min); with
 * waiters, what the first of them could already use is set aside for it: a request of
 * another user never takes that. */
static void op_acquire(Model *m, Input *in) {
        int ci = used_slot((void *const *) m->clients, CLIENTS, input_byte(in));
        int slot = free_slot((void *const *) m->leases, LEASES, input_byte(in));
        bool allowed[NODES_MAX], head_guarded = false;
        BudgetRequest r;
        BudgetLease *l = NULL;
        Uses before = model_uses(m);
        unsigned bound, head_free = 0;
        int ret, expect, head = oldest_waiter(m);

        request_arg(m, in, &r, allowed);
        if (ci < 0 || slot < 0)
                return;
        expect = request_error(m, &r);
        if (!expect && at_count_cap(m, (unsigned) ci))
                expect = PAD_ERROR_LIMITS_EXCEEDED;
        if (!expect && never_fits(m, &r))
                expect = PAD_ERROR_NEVER_FITS;
        bound = grant_bound(m, (unsigned) ci, &r);
        if (!expect && bound < r.min)
                expect = PAD_ERROR_BUSY;
        if (head >= 0) {
                const BudgetRequest *hr = &m->waiter_req[head];
                unsigned hc = m->waiter_client[head];

                head_free = grant_bound(m, hc, hr);
                /* Held back by the machine or its nodes, not its own user's cap, and not
                 * sharing that cap with this request. */
                head_guarded = head_free < hr->min && free_bound(m, hc, hr, false) < hr->min &&
                               (m->per_user == 0 || m->uid[hc] != m->uid[ci]);
        }
        ret = budget_acquire(m->clients[ci], &r, &l);
        if (head >= 0 && expect == PAD_ERROR_BUSY)
                check(ret == PAD_ERROR_BUSY, "budget_acquire: not Busy below min with waiters");
        else if (head >= 0 && expect == 0)
                check(ret == 0 || ret == PAD_ERROR_BUSY, "budget_acquire: not 0 or Busy with waiters");
        else
                check(ret == expect, "budget_acquire: not the result the request and the caps call for");
        if (ret != 0) {
                check(budget_get_in_use(m->b) == before.machine, "a refused request took slots");
                return;
        }
        check(l != NULL, "budget_acquire: 0 without a lease");
        check_grant(m, l, &r, bound, head < 0, &before);
        m->leases[slot] = l;
        if (head_guarded)
                check(grant_bound(m, m->waiter_client[head], &m->waiter_req[head]) >= head_free,
                      "a request took slots set aside for the first waiter");
}

static void op_enqueue(Model *m, Input *in) {
        int ci = used_slot((void *const *) m->clients, CLIENTS, input_byte(in));
        int slot = free_slot((void *const *) m->waiters, WAITERS, input_byte(in));
        BudgetWaiter *w = NULL;
        BudgetRequest r;
        int ret, expect;

        if (slot < 0)
                return;
        request_arg(m, in, &r, m->waiter_allowed[slot]);
        if (ci < 0)
                return;
        expect = request_error(m, &r);
        if (!expect && never_fits(m, &r))
                expect = PAD_ERROR_NEVER_FITS;
        if (!expect && (at_count_cap(m, (unsigned) ci) || n_waiters(m) >= m->max_waiting ||
                        (m->waiting_per_user && user_waiters(m, m->uid[ci]) >= m->waiting_per_user)))
                expect = PAD_ERROR_LIMITS_EXCEEDED;
        ret = budget_enqueue(m->clients[ci], &r, (void *) (uintptr_t) (slot + 1), &w);
        check(ret == expect, "budget_enqueue: not the result the request and the limits call for");
        if (ret != 0)
                return;
        check(w != NULL && budget_waiter_get_userdata(w) == (void *) (uintptr_t) (slot + 1),
              "budget_enqueue: a waiter without its userdata");
        m->waiters[slot] = w;
        m->waiter_client[slot] = (unsigned) ci;
        m->waiter_req[slot] = r;
        m->waiter_seq[slot] = m->next_seq++;
}

/* The slot of the oldest waiter, or -1. */
static int oldest_waiter(const Model *m) {
        int o = -1;

        for (unsigned i = 0; i < WAITERS; i++)
                if (m->waiters[i] && (o < 0 || m->waiter_seq[i] < m->waiter_seq[o]))
                        o = (int) i;
        return o;
}

/* Dispatch serves the first waiter whose min fits in what those ahead of it leave: the
 * oldest, with all the caps allow, whenever it fits; a later one only when the oldest does
 * not fit, and never one that does not fit even with nothing set aside. */
static void op_dispatch(Model *m, Input *in) {
        unsigned rounds = 1 + input_byte(in) % 4;

        for (unsigned n = 0; n < rounds; n++) {
                int slot = free_slot((void *const *) m->leases, LEASES, 0), head = oldest_waiter(m), w;
                Uses before = model_uses(m);
                void *userdata = NULL;
                BudgetLease *l = NULL;
                bool head_fits;
                unsigned bound;
                int ret;

                if (slot < 0)
                        return;
                head_fits = head >= 0 && grant_bound(m, m->waiter_client[head], &m->waiter_req[head]) >=
                                                 m->waiter_req[head].min;
                ret = budget_dispatch(m->b, &userdata, &l);
                check(ret == 0 || ret == 1, "budget_dispatch: an error");
                check(ret == 1 || !head_fits, "budget_dispatch: nothing served though the first waiter fits");
                if (ret == 0) {
                        check(budget_get_in_use(m->b) == before.machine, "a dispatch of nothing took slots");
                        return;
                }
                w = (int) ((uintptr_t) userdata - 1);
                check(w >= 0 && w < (int) WAITERS && m->waiters[w], "budget_dispatch: a waiter the model does not hold");
                check(!head_fits || w == head, "budget_dispatch passed over a first waiter that fits");
                check(l && budget_lease_get_client(l) == m->clients[m->waiter_client[w]],
                      "a dispatched lease of another client");
                /* The model does not hold the new lease yet: this is the bound before it. */
                bound = grant_bound(m, m->waiter_client[w], &m->waiter_req[w]);
                check(bound >= m->waiter_req[w].min, "budget_dispatch served a waiter the caps cannot meet");
                check_grant(m, l, &m->waiter_req[w], bound, w == head, &before);
                m->waiters[w] = NULL;
                m->leases[slot] = l;
        }
}

static void op_waiter_free(Model *m, Input *in) {
        int k = used_slot((void *const *) m->waiters, WAITERS, input_byte(in));

        if (k >= 0)
                m->waiters[k] = budget_waiter_free(m->waiters[k]);
}

static void op_lease_free(Model *m, Input *in) {
        int k = used_slot((void *const *) m->leases, LEASES, input_byte(in));

        if (k >= 0)
                m->leases[k] = budget_lease_free(m->leases[k]);
}

static void op_shrink(Model *m, Input *in) {
        int k = used_slot((void *const *) m->leases, LEASES, input_byte(in));
        unsigned count = input_byte(in) % 8, before, granted = 0, n_before;
        int first_node = -1, node;
        int ret;

        if (k < 0)
                return;
        before = budget_lease_get_granted(m->leases[k]);
        n_before = budget_lease_get_n_placement(m->leases[k]);
        budget_lease_get_placement(m->leases[k], 0, &first_node, NULL);
        ret = budget_lease_shrink(m->leases[k], count, &granted);
        if (count > before) {
                check(ret == PAD_ERROR_INVALID_ARGS, "budget_lease_shrink past the grant not refused");
                check(budget_lease_get_granted(m->leases[k]) == before, "a refused shrink changed the grant");
                return;
        }
        check(ret == 0 && granted == before - count && budget_lease_get_granted(m->leases[k]) == granted,
              "budget_lease_shrink: not the grant asked for");
        check(budget_lease_get_n_placement(m->leases[k]) <= n_before, "a shrink added a placement entry");
        /* Farthest first: what is left starts where it started. */
        budget_lease_get_placement(m->leases[k], 0, &node, NULL);
        check(granted == 0 || node == first_node, "a shrink gave back the first node before the others");
}

static void op_set_quota(Model *m, Input *in) {
        int node = node_arg(m, input_byte(in));
        unsigned max = input_byte(in) % 24;
        int ret = budget_set_quota(m->b, node, max);

        check(ret == (node == -1 || topology_node_index(m->t, node) >= 0 ? 0 : PAD_ERROR_NO_SUCH_NODE),
              "budget_set_quota: not the result the node calls for");
        if (ret == 0 && node == -1)
                check(budget_get_max_helpers(m->b) == max, "budget_set_quota did not set the cap");
        else if (ret == 0)
                check(node_max(m, (unsigned) topology_node_index(m->t, node)) == max,
                      "budget_set_quota did not set the node's cap");
        excuse_overuse(m);
}

static void op_set_limits(Model *m, Input *in) {
        unsigned nm[NODES_MAX];
        BudgetLimits l = {};

        limits_arg(m, in, &l, nm);
        check(budget_set_limits(m->b, &l) == 0, "budget_set_limits failed");
        excuse_overuse(m);
}

static void op_adopt(Model *m, Input *in) {
        int ci = used_slot((void *const *) m->clients, CLIENTS, input_byte(in));
        int slot = free_slot((void *const *) m->leases, LEASES, input_byte(in));
        uint8_t how = input_byte(in);
        uint64_t next = budget_get_next_id(m->b), id;
        unsigned n = input_byte(in) % (m->t->n_nodes + 2);
        BudgetPlacement p[NODES_MAX + 2];
        BudgetLease *l = NULL;
        unsigned in_use = budget_get_in_use(m->b);
        int ret, expect = 0;

        switch (how % 8) {
        case 0:
                id = 0;
                break;
        case 1:
                id = next - 1;
                break;
        case 2:
                id = UINT64_MAX - how / 8;
                break;
        case 3:
                id = BUDGET_ID_MAX + 1 - how / 8;
                break;
        default:
                id = next + how / 8;
                break;
        }
        for (unsigned k = 0; k < n; k++) {
                uint8_t h = input_byte(in);

                p[k] = (BudgetPlacement) { .node = node_arg(m, input_byte(in)), .helpers = h == 255 ? BROKER_HELPERS_MAX + 1 : h % 9 };
        }
        if (ci < 0 || slot < 0)
                return;
        if (id == 0)
                expect = -EINVAL;
        else if (id < next || id > BUDGET_ID_MAX || n > m->t->n_nodes)
                expect = PAD_ERROR_INVALID_ARGS;
        for (unsigned k = 0; k < n && !expect; k++) {
                if (topology_node_index(m->t, p[k].node) < 0)
                        expect = PAD_ERROR_NO_SUCH_NODE;
                else if (p[k].helpers == 0 || p[k].helpers > BROKER_HELPERS_MAX)
                        expect = PAD_ERROR_INVALID_ARGS;
                for (unsigned j = 0; j < k && !expect; j++)
                        if (p[j].node == p[k].node)
                                expect = PAD_ERROR_INVALID_ARGS;
        }
        ret = budget_adopt(m->clients[ci], id, p, n, &l);
        check(ret == expect, "budget_adopt: not the result the placement and the id call for");
        if (ret != 0) {
                check(budget_get_in_use(m->b) == in_use, "a refused adoption took slots");
                return;
        }
        check(budget_lease_get_id(l) == id && id > m->last_id, "an adopted lease without its id");
        m->last_id = id;
        check(budget_lease_get_n_placement(l) == n, "an adopted lease without its placement");
        for (unsigned k = 0; k < n; k++) {
                int node;
                unsigned h;

                budget_lease_get_placement(l, k, &node, &h);
                check(node == p[k].node && h == p[k].helpers, "an adopted lease with another placement");
        }
        m->leases[slot] = l;
        excuse_overuse(m);
}

static void op_set_next_id(Model *m, Input *in) {
        uint8_t v = input_byte(in);
        uint64_t before = budget_get_next_id(m->b), id = v & 0x80 ? UINT64_MAX - (v & 3) : before + v % 4;

        budget_set_next_id(m->b, id);
        check(budget_get_next_id(m->b) == MAX(before, MIN(id, BUDGET_ID_MAX + 1)),
              "budget_set_next_id lowered, missed or overran the id");
}

typedef void (*Op)(Model *m, Input *in);

static const Op ops[] = {
        op_client_new, op_client_free, op_acquire, op_acquire, op_enqueue, op_dispatch,
        op_waiter_free, op_lease_free, op_shrink, op_set_quota, op_set_limits, op_adopt,
        op_set_next_id,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Input in = { data, data + size };
        Model m = {};
        unsigned nm[NODES_MAX];
        BudgetLimits l = {};
        uint8_t op;

        m.t = fuzz_topology(input_byte(&in));
        check(m.t->n_nodes <= NODES_MAX, "a shape with too many nodes");
        limits_arg(&m, &in, &l, nm);
        check(budget_new(m.t, &l, &m.b) == 0, "budget_new failed");
        check_all(&m);
        while (input_take(&in, &op)) {
                ops[op % ELEMENTSOF(ops)](&m, &in);
                check_all(&m);
        }
        /* Freeing the clients returns every slot. */
        for (unsigned k = 0; k < CLIENTS; k++)
                if (m.clients[k])
                        model_client_free(&m, k);
        check(budget_get_in_use(m.b) == 0 && budget_get_n_leases(m.b) == 0 && budget_get_n_waiting(m.b) == 0,
              "slots left after every client went");
        for (unsigned i = 0; i < m.t->n_nodes; i++)
                check(node_use(&m, i) == 0, "a node's slots left after every client went");
        budget_free(m.b);
        topology_free(m.t);
        return 0;
}
