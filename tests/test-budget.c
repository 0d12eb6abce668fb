/* test-budget.c: unit tests of the broker's accounting (daemon/budget.c) and the topology
 * helpers (daemon/numa.c), on hand-built topologies of 1, 2 and 8 nodes (uneven CPUs, custom
 * distances, a node without CPUs, sparse ids), plus a randomized property test that checks
 * the accounting invariants and the caps after every one of thousands of operations. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget.h"
#include "check-run.h"
#include "topology.h"
#include "util.h"

DEFINE_POINTER_CLEANUP(Topology, topology_free);
DEFINE_POINTER_CLEANUP(Budget, budget_free);

/* ---- Helpers ------------------------------------------------------------------------------ */

static Topology *topo(unsigned n, const unsigned *cpus) {
        Topology *t = NULL;

        ck_assert_int_eq(topology_new(n, cpus, &t), 0);
        ck_assert_ptr_nonnull(t);
        return t;
}

static Budget *budget(const Topology *t, unsigned max, const unsigned *node_max, unsigned per_user,
                      unsigned per_client, unsigned waiting) {
        unsigned nm[64];
        BudgetLimits l = {
                .max_helpers = max,
                .node_max = nm,
                .max_per_user = per_user,
                .max_leases_per_client = per_client,
                .max_waiting = waiting,
        };
        Budget *b = NULL;

        ck_assert_uint_le(t->n_nodes, ELEMENTSOF(nm));
        memcpy(nm, node_max, sizeof(unsigned) * t->n_nodes);
        ck_assert_int_eq(budget_new(t, &l, &b), 0);
        return b;
}

static BudgetClient *client(Budget *b, uid_t uid) {
        BudgetClient *c = NULL;

        ck_assert_int_eq(budget_client_new(b, uid, NULL, &c), 0);
        return c;
}

static BudgetRequest req(unsigned helpers, unsigned min, int node) {
        return (BudgetRequest) { .helpers = helpers, .min = min, .node = node };
}

static BudgetLease *grant(BudgetClient *c, BudgetRequest r) {
        BudgetLease *l = NULL;

        ck_assert_int_eq(budget_acquire(c, &r, &l), 0);
        ck_assert_ptr_nonnull(l);
        return l;
}

/* The placement as "node:n,node:n" for compact assertions. */
static const char *placement(const BudgetLease *l, char *buf, size_t len) {
        size_t o = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < budget_lease_get_n_placement(l); i++) {
                int node;
                unsigned n;

                budget_lease_get_placement(l, i, &node, &n);
                o += (size_t) snprintf(buf + o, len - o, "%s%d:%u", i ? "," : "", node, n);
        }
        return buf;
}

#define ck_assert_placement(l, s)                                               \
        do {                                                                    \
                char _b[256];                                                   \
                ck_assert_str_eq(placement((l), _b, sizeof(_b)), (s));          \
        } while (0)

static unsigned node_in_use(const Budget *b, unsigned index) {
        unsigned u;

        budget_get_node(b, index, NULL, NULL, NULL, &u);
        return u;
}

/* ---- Topology --------------------------------------------------------------------------- */

START_TEST(test_topology_new) {
        const unsigned cpus[] = { 2, 0, 3 };
        _cleanup_(topology_freep) Topology *t = topo(3, cpus);

        ck_assert_uint_eq(t->n_nodes, 3);
        ck_assert_uint_eq(t->n_cpus, 5);
        ck_assert_uint_eq(t->nodes[1].n_cpus, 0);
        ck_assert_uint_eq(t->nodes[2].cpus[0], 2);
        ck_assert_uint_eq(t->nodes[2].cpus[2], 4);
        for (unsigned i = 0; i < 3; i++)
                for (unsigned j = 0; j < 3; j++)
                        ck_assert_uint_eq(t->distance[i * 3 + j], i == j ? 10 : 20);
        ck_assert_int_eq(topology_node_index(t, 2), 2);
        ck_assert_int_eq(topology_node_index(t, 3), -1);
        ck_assert_int_eq(topology_node_index(t, -1), -1);
        ck_assert_int_eq(topology_cpu_node_index(t, 0), 0);
        ck_assert_int_eq(topology_cpu_node_index(t, 3), 2);
        ck_assert_int_eq(topology_cpu_node_index(t, 5), -1);
        ck_assert_int_eq(topology_new(2, NULL, &t), -EINVAL);
        ck_assert_ptr_null(topology_free(NULL));
}
END_TEST

START_TEST(test_topology_load) {
        _cleanup_(topology_freep) Topology *t = NULL;
        unsigned sum = 0;
        long online = sysconf(_SC_NPROCESSORS_ONLN);

        ck_assert_int_eq(topology_load(&t), 0);
        ck_assert_uint_ge(t->n_nodes, 1);
        for (unsigned i = 0; i < t->n_nodes; i++) {
                if (i > 0)
                        ck_assert_int_lt(t->nodes[i - 1].id, t->nodes[i].id);
                for (unsigned k = 1; k < t->nodes[i].n_cpus; k++)
                        ck_assert_uint_lt(t->nodes[i].cpus[k - 1], t->nodes[i].cpus[k]);
                for (unsigned k = 0; k < t->nodes[i].n_cpus; k++)
                        ck_assert_int_eq(topology_cpu_node_index(t, t->nodes[i].cpus[k]), (int) i);
                ck_assert_uint_eq(t->distance[i * t->n_nodes + i], 10);
                sum += t->nodes[i].n_cpus;
        }
        ck_assert_uint_eq(sum, t->n_cpus);
        ck_assert_int_eq((long) t->n_cpus, online);
}
END_TEST

/* ---- Caps ------------------------------------------------------------------------------- */

START_TEST(test_one_node_caps) {
        const unsigned cpus[] = { 4 }, nmax[] = { 3 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 2, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 1000);
        BudgetLease *l1, *l0, *l = NULL;
        BudgetRequest r;

        /* Machine cap (2) is below the node cap (3). */
        l1 = grant(c, req(5, 1, -1));
        ck_assert_uint_eq(budget_lease_get_granted(l1), 2);
        ck_assert_placement(l1, "0:2");
        ck_assert_uint_eq(budget_get_in_use(b), 2);

        r = req(1, 1, 0);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_BUSY);
        ck_assert_ptr_null(l);
        ck_assert_uint_eq(budget_get_n_leases(b), 1);

        /* A grant of 0 is still a lease. */
        l0 = grant(c, req(1, 0, 0));
        ck_assert_uint_eq(budget_lease_get_granted(l0), 0);
        ck_assert_uint_eq(budget_lease_get_n_placement(l0), 0);
        ck_assert_uint_eq(budget_get_n_leases(b), 2);

        /* Node cap (3) below a raised machine cap. */
        ck_assert_int_eq(budget_set_quota(b, -1, 10), 0);
        ck_assert_uint_eq(budget_get_max_helpers(b), 10);
        l = grant(c, req(5, 0, 0));
        ck_assert_uint_eq(budget_lease_get_granted(l), 1);
        ck_assert_uint_eq(node_in_use(b, 0), 3);

        budget_lease_free(l1);
        budget_lease_free(l0);
        ck_assert_uint_eq(budget_get_in_use(b), 1);
        ck_assert_ptr_null(budget_lease_free(l));
        ck_assert_uint_eq(budget_get_in_use(b), 0);
        ck_assert_uint_eq(budget_get_n_leases(b), 0);
}
END_TEST

START_TEST(test_user_cap) {
        const unsigned cpus[] = { 8, 8 }, nmax[] = { 8, 8 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 12, nmax, 3, 64, 16);
        BudgetClient *a = client(b, 1000), *a2 = client(b, 1000), *o = client(b, 1001);
        BudgetLease *l = NULL;
        BudgetRequest r = req(4, 2, -1);

        ck_assert_uint_eq(budget_lease_get_granted(grant(a, req(2, 0, -1))), 2);
        /* Same uid, other connection: one slot left for the user. */
        ck_assert_int_eq(budget_acquire(a2, &r, &l), PAD_ERROR_BUSY);
        ck_assert_uint_eq(budget_lease_get_granted(grant(a2, req(4, 1, -1))), 1);
        /* Another user is not limited by the first one's use. */
        ck_assert_uint_eq(budget_lease_get_granted(grant(o, req(4, 0, -1))), 3);
        ck_assert_uint_eq(budget_get_in_use(b), 6);
        /* The user's slots come back with the client. */
        budget_client_free(a);
        ck_assert_uint_eq(budget_lease_get_granted(grant(a2, req(4, 0, -1))), 2);
        ck_assert_uint_eq(budget_client_get_uid(a2), 1000);
}
END_TEST

/* ---- Placement order -------------------------------------------------------------------- */

START_TEST(test_two_nodes_spill) {
        const unsigned cpus[] = { 2, 2 }, nmax[] = { 2, 2 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l;

        l = grant(c, req(3, 3, 1));
        ck_assert_placement(l, "1:2,0:1");
        ck_assert_uint_eq(node_in_use(b, 0), 1);
        ck_assert_uint_eq(node_in_use(b, 1), 2);
        l = grant(c, req(3, 0, 1));
        ck_assert_placement(l, "0:1");
}
END_TEST

START_TEST(test_eight_nodes_distance) {
        const unsigned cpus[] = { 4, 1, 2, 8, 0, 3, 6, 2 }, nmax[] = { 1, 1, 1, 1, 1, 1, 1, 1 };
        /* Distances from node 3 (the rest stay 20): 1 and 5 nearest (tie: by id), then 2
         * and 4 at the default, then 6, then 0 and 7. */
        const unsigned from3[] = { 30, 12, 20, 10, 20, 12, 25, 30 };
        _cleanup_(topology_freep) Topology *t = topo(8, cpus);
        _cleanup_(budget_freep) Budget *b = NULL;
        BudgetClient *c;
        BudgetLease *l;
        unsigned d;

        memcpy(&t->distance[3 * 8], from3, sizeof(from3));
        b = budget(t, 100, nmax, 0, 64, 16);
        c = client(b, 0);
        l = grant(c, req(8, 8, 3));
        ck_assert_placement(l, "3:1,1:1,5:1,2:1,4:1,6:1,0:1,7:1");
        budget_lease_free(l);

        /* The next node by distance takes over where a node is full; node 6 from node 3. */
        l = grant(c, req(1, 1, 6));
        ck_assert_placement(l, "6:1");
        l = grant(c, req(2, 2, 3));
        ck_assert_placement(l, "3:1,1:1");
        ck_assert_uint_eq(budget_get_n_nodes(b), 8);
        budget_get_node(b, 3, NULL, &d, NULL, NULL);
        ck_assert_uint_eq(d, 8);
}
END_TEST

START_TEST(test_any_node_most_free) {
        const unsigned cpus[] = { 2, 5, 3 }, nmax[] = { 2, 5, 3 };
        _cleanup_(topology_freep) Topology *t = topo(3, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);

        ck_assert_placement(grant(c, req(4, 0, -1)), "1:4");
        /* Free now 2, 1, 3. */
        ck_assert_placement(grant(c, req(4, 0, -1)), "2:3,0:1");
        /* Free now 1, 1, 0: the tie goes to the lower id. */
        ck_assert_placement(grant(c, req(2, 0, -1)), "0:1,1:1");
        ck_assert_uint_eq(budget_get_in_use(b), 10);
}
END_TEST

START_TEST(test_allowed_mask) {
        const unsigned cpus[] = { 2, 2, 2 }, nmax[] = { 2, 2, 2 };
        const bool allowed[] = { false, true, true }, none[] = { false, false, false };
        _cleanup_(topology_freep) Topology *t = topo(3, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l = NULL;
        BudgetRequest r = req(6, 0, 0);

        r.allowed = allowed;
        ck_assert_int_eq(budget_acquire(c, &r, &l), 0);
        ck_assert_placement(l, "1:2,2:2");
        ck_assert_uint_eq(node_in_use(b, 0), 0);

        r = req(1, 1, -1);
        r.allowed = none;
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_NEVER_FITS);
        r.min = 0;
        ck_assert_int_eq(budget_acquire(c, &r, &l), 0);
        ck_assert_uint_eq(budget_lease_get_granted(l), 0);
}
END_TEST

START_TEST(test_strict_node) {
        const unsigned cpus[] = { 2, 4 }, nmax[] = { 2, 4 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l = NULL;
        BudgetRequest r = req(4, 3, 0);

        r.strict_node = true;
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_NEVER_FITS);
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &(BudgetWaiter *) { NULL }), PAD_ERROR_NEVER_FITS);
        ck_assert_uint_eq(budget_get_in_use(b), 0);
        r.min = 1;
        ck_assert_int_eq(budget_acquire(c, &r, &l), 0);
        ck_assert_placement(l, "0:2");
        ck_assert_uint_eq(node_in_use(b, 1), 0);
}
END_TEST

START_TEST(test_node_without_cpus) {
        const unsigned cpus[] = { 2, 0 }, nmax[] = { 1, 0 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l = NULL;
        BudgetRequest r = req(2, 1, 1);
        unsigned ncpu, max;

        budget_get_node(b, 1, NULL, &ncpu, &max, NULL);
        ck_assert_uint_eq(ncpu, 0);
        ck_assert_uint_eq(max, 0);
        r.strict_node = true;
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_NEVER_FITS);
        r.strict_node = false;
        ck_assert_int_eq(budget_acquire(c, &r, &l), 0);
        ck_assert_placement(l, "0:1");
}
END_TEST

START_TEST(test_sparse_ids) {
        const unsigned cpus[] = { 2, 2 }, nmax[] = { 2, 2 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = NULL;
        BudgetClient *c;
        BudgetLease *l = NULL;
        BudgetRequest r = req(1, 0, 1);
        int id;

        t->nodes[1].id = 4;
        b = budget(t, 100, nmax, 0, 64, 16);
        c = client(b, 0);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_NO_SUCH_NODE);
        ck_assert_placement(grant(c, req(3, 0, 4)), "4:2,0:1");
        budget_get_node(b, 1, &id, NULL, NULL, NULL);
        ck_assert_int_eq(id, 4);
        ck_assert_int_eq(budget_set_quota(b, 1, 3), PAD_ERROR_NO_SUCH_NODE);
        ck_assert_int_eq(budget_set_quota(b, 4, 3), 0);
}
END_TEST

/* ---- Arguments and limits --------------------------------------------------------------- */

START_TEST(test_invalid_args) {
        const unsigned cpus[] = { 2, 2 }, nmax[] = { 2, 2 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        const BudgetRequest bad[] = {
                req(0, 0, -1), req(BROKER_HELPERS_MAX + 1, 0, -1), req(2, 3, -1),
        };
        const int bad_node[] = { 2, -2, 1000 };
        BudgetLease *l = NULL;
        BudgetWaiter *w = NULL;
        BudgetRequest r;

        for (unsigned i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_int_eq(budget_acquire(c, &bad[i], &l), PAD_ERROR_INVALID_ARGS);
                ck_assert_int_eq(budget_enqueue(c, &bad[i], NULL, &w), PAD_ERROR_INVALID_ARGS);
        }
        for (unsigned i = 0; i < ELEMENTSOF(bad_node); i++) {
                r = req(1, 0, bad_node[i]);
                ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_NO_SUCH_NODE);
                ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), PAD_ERROR_NO_SUCH_NODE);
        }
        ck_assert_ptr_null(l);
        ck_assert_ptr_null(w);
        ck_assert_uint_eq(budget_get_n_leases(b), 0);
        ck_assert_uint_eq(budget_get_n_waiting(b), 0);
        /* The largest request is valid. */
        l = grant(c, req(BROKER_HELPERS_MAX, 0, -1));
        ck_assert_uint_eq(budget_lease_get_granted(l), 4);
}
END_TEST

START_TEST(test_limits_exceeded) {
        const unsigned cpus[] = { 2 }, nmax[] = { 2 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 2, nmax, 0, 2, 2);
        BudgetClient *c = client(b, 0), *d = client(b, 0), *e = client(b, 0);
        BudgetLease *l1, *l = NULL;
        BudgetWaiter *w = NULL;
        BudgetRequest r = req(1, 0, -1);

        l1 = grant(c, r);
        grant(c, r);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        budget_lease_free(l1);
        /* Queued requests count towards the client's limit. */
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), 0);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_LIMITS_EXCEEDED);
        /* The machine-wide queue limit. */
        ck_assert_int_eq(budget_enqueue(d, &r, NULL, &w), 0);
        ck_assert_int_eq(budget_enqueue(e, &r, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_uint_eq(budget_get_n_waiting(b), 2);
        /* Other clients are not limited by c. */
        grant(e, r);
}
END_TEST

START_TEST(test_quota_lowered) {
        const unsigned cpus[] = { 4, 4 }, nmax[] = { 4, 4 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 8, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *a, *l = NULL;
        BudgetRequest r = req(1, 1, 0);
        unsigned max;

        a = grant(c, req(3, 3, 0));
        ck_assert_int_eq(budget_set_quota(b, 0, 1), 0);
        budget_get_node(b, 0, NULL, NULL, &max, NULL);
        ck_assert_uint_eq(max, 1);
        /* Nothing revoked; node 0 gives nothing more, node 1 still does. */
        ck_assert_uint_eq(budget_lease_get_granted(a), 3);
        ck_assert_uint_eq(node_in_use(b, 0), 3);
        r.strict_node = true;
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_BUSY);
        r.strict_node = false;
        ck_assert_placement(grant(c, r), "1:1");

        /* Machine cap below use: nothing anywhere. */
        ck_assert_int_eq(budget_set_quota(b, -1, 2), 0);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_BUSY);
        ck_assert_uint_eq(budget_get_in_use(b), 4);

        /* Use falls under the quotas again. */
        ck_assert_int_eq(budget_lease_shrink(a, 3, NULL), 0);
        ck_assert_uint_eq(budget_get_in_use(b), 1);
        ck_assert_placement(grant(c, req(4, 0, 0)), "0:1");
}
END_TEST

START_TEST(test_set_limits) {
        const unsigned cpus[] = { 4, 4 }, nmax[] = { 4, 4 };
        unsigned new_max[] = { 1, 0 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 8, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *a, *l = NULL;
        BudgetLimits lim = { .max_helpers = 3, .node_max = new_max, .max_leases_per_client = 1,
                             .max_waiting = 0 };
        BudgetRequest r = req(1, 1, -1);
        BudgetWaiter *w = NULL;
        unsigned max;

        a = grant(c, req(6, 6, 0));
        ck_assert_int_eq(budget_set_limits(b, &lim), 0);
        ck_assert_uint_eq(budget_get_max_helpers(b), 3);
        budget_get_node(b, 1, NULL, NULL, &max, NULL);
        ck_assert_uint_eq(max, 0);
        ck_assert_uint_eq(budget_lease_get_granted(a), 6);
        ck_assert_int_eq(budget_acquire(c, &r, &l), PAD_ERROR_LIMITS_EXCEEDED);
        budget_lease_free(a);
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_placement(grant(c, req(4, 0, -1)), "0:1");
        lim.node_max = NULL;
        ck_assert_int_eq(budget_set_limits(b, &lim), -EINVAL);
}
END_TEST

/* ---- Shrink, waiters, clients, ids -------------------------------------------------------- */

START_TEST(test_shrink) {
        const unsigned cpus[] = { 2, 2, 2 }, nmax[] = { 2, 2, 2 };
        _cleanup_(topology_freep) Topology *t = topo(3, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 100, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l;
        unsigned g = 99;

        l = grant(c, req(5, 5, 1));
        ck_assert_placement(l, "1:2,0:2,2:1");
        ck_assert_int_eq(budget_lease_shrink(l, 2, &g), 0);
        ck_assert_uint_eq(g, 3);
        ck_assert_placement(l, "1:2,0:1");
        ck_assert_uint_eq(node_in_use(b, 2), 0);
        ck_assert_uint_eq(node_in_use(b, 0), 1);
        ck_assert_int_eq(budget_lease_shrink(l, 4, &g), PAD_ERROR_INVALID_ARGS);
        ck_assert_uint_eq(budget_lease_get_granted(l), 3);
        ck_assert_int_eq(budget_lease_shrink(l, 0, &g), 0);
        ck_assert_uint_eq(g, 3);
        ck_assert_int_eq(budget_lease_shrink(l, 3, &g), 0);
        ck_assert_uint_eq(g, 0);
        ck_assert_uint_eq(budget_lease_get_n_placement(l), 0);
        ck_assert_uint_eq(budget_get_n_leases(b), 1);
        ck_assert_uint_eq(budget_get_in_use(b), 0);
        ck_assert_ptr_eq(budget_next_lease(b, NULL), l);
        budget_lease_free(l);
        ck_assert_uint_eq(budget_get_n_leases(b), 0);
}
END_TEST

START_TEST(test_fifo_waiters) {
        const unsigned cpus[] = { 4 }, nmax[] = { 4 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0), *d = client(b, 1);
        BudgetLease *big, *l = NULL;
        BudgetWaiter *w1 = NULL, *w2 = NULL, *w3 = NULL;
        BudgetRequest r1 = req(3, 3, -1), r2 = req(1, 1, -1), r3 = req(2, 1, 0);
        int tag1, tag2, tag3;
        void *ud = NULL;

        big = grant(c, req(4, 4, -1));
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        ck_assert_int_eq(budget_enqueue(d, &r1, &tag1, &w1), 0);
        ck_assert_int_eq(budget_enqueue(c, &r2, &tag2, &w2), 0);
        ck_assert_int_eq(budget_enqueue(d, &r3, &tag3, &w3), 0);
        ck_assert_ptr_eq(budget_waiter_get_userdata(w2), &tag2);
        ck_assert_uint_eq(budget_get_n_waiting(b), 3);

        /* Two slots free: enough for w2 but the head (w1, min 3) blocks it. */
        ck_assert_int_eq(budget_lease_shrink(big, 2, NULL), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        ck_assert_uint_eq(budget_get_n_waiting(b), 3);

        ck_assert_int_eq(budget_lease_shrink(big, 1, NULL), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(ud, &tag1);
        ck_assert_uint_eq(budget_lease_get_granted(l), 3);
        ck_assert_ptr_eq(budget_lease_get_client(l), d);
        ck_assert_uint_eq(budget_get_n_waiting(b), 2);
        /* Nothing left: w2 waits. */
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        budget_lease_free(big);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(ud, &tag2);
        ck_assert_uint_eq(budget_lease_get_granted(l), 1);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        ck_assert_int_eq(budget_lease_shrink(l, 1, NULL), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(ud, &tag3);
        ck_assert_uint_eq(budget_get_n_waiting(b), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
}
END_TEST

/* Slots freed while someone waits are the waiters': a caller that does not wait gets only
 * what the queue leaves. */
START_TEST(test_waiters_first) {
        const unsigned cpus[] = { 4 }, nmax[] = { 4 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0), *d = client(b, 1), *e = client(b, 2);
        BudgetLease *big, *l = NULL;
        BudgetWaiter *w = NULL;
        BudgetRequest r = req(2, 2, -1), one = req(1, 1, -1), any = req(4, 0, -1);
        void *ud = NULL;

        big = grant(c, req(4, 4, -1));
        ck_assert_int_eq(budget_enqueue(d, &r, NULL, &w), 0);
        ck_assert_int_eq(budget_lease_shrink(big, 1, NULL), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        /* One slot free, set aside for the waiter: a newcomer gets none of it. */
        ck_assert_int_eq(budget_acquire(e, &one, &l), PAD_ERROR_BUSY);
        ck_assert_int_eq(budget_acquire(e, &any, &l), 0);
        ck_assert_uint_eq(budget_lease_get_granted(l), 0);
        ck_assert_int_eq(budget_lease_shrink(big, 2, NULL), 0);
        /* Three free: two for the waiter, one left that a newcomer may take. */
        ck_assert_int_eq(budget_acquire(e, &one, &l), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_uint_eq(budget_lease_get_granted(l), 2);
        ck_assert_uint_eq(budget_get_in_use(b), 4);
}
END_TEST

/* A waiter held back only by its own user's cap holds up nobody else. */
START_TEST(test_user_capped_head) {
        const unsigned cpus[] = { 4 }, nmax[] = { 4 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 2, 64, 16);
        BudgetClient *c = client(b, 7), *d = client(b, 8);
        BudgetLease *mine, *l = NULL;
        BudgetWaiter *w = NULL;
        BudgetRequest one = req(1, 1, -1);
        void *ud = NULL;

        mine = grant(c, req(2, 2, -1));
        ck_assert_int_eq(budget_enqueue(c, &one, NULL, &w), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 0);
        ck_assert_placement(grant(d, req(2, 2, -1)), "0:2");
        ck_assert_int_eq(budget_lease_shrink(mine, 1, NULL), 0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(budget_lease_get_client(l), c);
}
END_TEST

START_TEST(test_waiting_per_user) {
        const unsigned cpus[] = { 4 }, nmax[] = { 4 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 0, 64, 16);
        BudgetLimits limits = { .max_helpers = 4, .node_max = (unsigned *) nmax, .max_leases_per_client = 64,
                                .max_waiting = 16, .max_waiting_per_user = 2 };
        BudgetClient *c = client(b, 7), *c2 = client(b, 7), *d = client(b, 8);
        BudgetWaiter *w = NULL;
        BudgetRequest r = req(4, 4, -1);

        ck_assert_int_eq(budget_set_limits(b, &limits), 0);
        (void) grant(d, req(4, 4, -1));
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), 0);
        ck_assert_int_eq(budget_enqueue(c2, &r, NULL, &w), 0);
        /* The third of one user, even through another connection, is refused; others may. */
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_int_eq(budget_enqueue(c2, &r, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_int_eq(budget_enqueue(d, &r, NULL, &w), 0);
        ck_assert_uint_eq(budget_get_n_waiting(b), 3);
        budget_waiter_free(w);
        budget_client_free(c2);
        ck_assert_uint_eq(budget_get_n_waiting(b), 1);
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), 0);
}
END_TEST

START_TEST(test_leases_per_user) {
        const unsigned cpus[] = { 4 }, nmax[] = { 4 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 4, nmax, 0, 64, 16);
        BudgetLimits limits = { .max_helpers = 4, .node_max = (unsigned *) nmax, .max_leases_per_client = 64,
                                .max_waiting = 16, .max_leases_per_user = 3 };
        BudgetClient *c = client(b, 7), *c2 = client(b, 7), *d = client(b, 8);
        BudgetLease *l = NULL, *first;
        BudgetWaiter *w = NULL;
        BudgetRequest zero = req(1, 0, -1), all = req(4, 4, -1);

        ck_assert_int_eq(budget_set_limits(b, &limits), 0);
        first = grant(c, zero);
        (void) grant(c2, zero);
        ck_assert_int_eq(budget_enqueue(c2, &all, NULL, &w), 0);
        /* Two leases and a waiter of uid 7 over two connections: its fourth is refused. */
        ck_assert_int_eq(budget_acquire(c, &zero, &l), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_int_eq(budget_enqueue(c, &all, NULL, &w), PAD_ERROR_LIMITS_EXCEEDED);
        ck_assert_int_eq(budget_acquire(d, &zero, &l), 0);
        budget_lease_free(first);
        ck_assert_int_eq(budget_acquire(c, &zero, &l), 0);
}
END_TEST

START_TEST(test_waiter_free) {
        const unsigned cpus[] = { 2, 2 }, nmax[] = { 1, 1 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 2, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l0, *l = NULL;
        BudgetWaiter *w1 = NULL, *w2 = NULL;
        BudgetRequest r1 = req(2, 2, -1), r2 = req(1, 1, -1);
        bool mask[2] = { false, true };
        int tag;
        void *ud = NULL;

        l0 = grant(c, req(2, 2, -1));
        ck_assert_int_eq(budget_enqueue(c, &r1, NULL, &w1), 0);
        r2.allowed = mask;
        ck_assert_int_eq(budget_enqueue(c, &r2, &tag, &w2), 0);
        mask[1] = false;        /* the queue keeps its own copy */
        ck_assert_ptr_null(budget_waiter_free(w1));
        ck_assert_uint_eq(budget_get_n_waiting(b), 1);
        budget_lease_free(l0);
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(ud, &tag);
        ck_assert_placement(l, "1:1");
}
END_TEST

START_TEST(test_client_free) {
        const unsigned cpus[] = { 4, 4 }, nmax[] = { 4, 4 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 6, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0), *d = client(b, 0);
        BudgetWaiter *w = NULL;
        BudgetRequest r = req(4, 4, -1);
        BudgetLease *keep, *l = NULL;
        void *ud;
        int x;

        ck_assert_int_eq(budget_client_new(b, 7, &x, &c), 0);
        ck_assert_ptr_eq(budget_client_get_userdata(c), &x);
        keep = grant(d, req(1, 1, 0));
        grant(c, req(3, 3, 0));
        grant(c, req(2, 2, 1));
        ck_assert_int_eq(budget_enqueue(c, &r, NULL, &w), 0);
        ck_assert_int_eq(budget_enqueue(d, &r, &x, &w), 0);
        ck_assert_uint_eq(budget_get_n_leases(b), 3);
        ck_assert_ptr_null(budget_client_free(c));
        ck_assert_uint_eq(budget_get_n_leases(b), 1);
        ck_assert_uint_eq(budget_get_n_waiting(b), 1);
        ck_assert_uint_eq(budget_get_in_use(b), 1);
        ck_assert_uint_eq(node_in_use(b, 0), 1);
        ck_assert_uint_eq(node_in_use(b, 1), 0);
        ck_assert_ptr_eq(budget_next_lease(b, NULL), keep);
        /* d's waiter is now at the head and is served. */
        ck_assert_int_eq(budget_dispatch(b, &ud, &l), 1);
        ck_assert_ptr_eq(ud, &x);
        ck_assert_ptr_null(budget_client_free(NULL));
}
END_TEST

/* Ids near the top of uint64_t are refused, so the counter never wraps to 0 and hands out
 * ids it gave before. */
START_TEST(test_ids_never_wrap) {
        const unsigned cpus[] = { 2 }, nmax[] = { 2 };
        const BudgetPlacement p = { .node = 0, .helpers = 1 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 2, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0);
        BudgetLease *l = NULL, *m;

        ck_assert_int_eq(budget_adopt(c, UINT64_MAX - 1, &p, 1, &l), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(budget_adopt(c, BUDGET_ID_MAX + 1, &p, 1, &l), PAD_ERROR_INVALID_ARGS);
        ck_assert_int_eq(budget_adopt(c, BUDGET_ID_MAX, &p, 1, &l), 0);
        budget_set_next_id(b, UINT64_MAX);
        ck_assert_uint_eq(budget_get_next_id(b), BUDGET_ID_MAX + 1);
        m = grant(c, req(1, 0, -1));
        ck_assert_uint_eq(budget_lease_get_id(m), BUDGET_ID_MAX + 1);
        ck_assert_ptr_eq(budget_next_lease(b, NULL), l);
        ck_assert_ptr_eq(budget_next_lease(b, l), m);
        /* Past the bound already, a high id leaves next_id where it is. */
        budget_set_next_id(b, UINT64_MAX);
        ck_assert_uint_eq(budget_get_next_id(b), BUDGET_ID_MAX + 2);
}
END_TEST

START_TEST(test_ids_never_reused) {
        const unsigned cpus[] = { 2 }, nmax[] = { 2 };
        _cleanup_(topology_freep) Topology *t = topo(1, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 2, nmax, 0, 64, 16);
        BudgetClient *c = client(b, 0), *d = client(b, 0);
        BudgetLease *l[4];
        uint64_t last = 0, n = 0;

        for (unsigned round = 0; round < 50; round++) {
                for (unsigned i = 0; i < 4; i++) {
                        l[i] = grant(i % 2 ? c : d, req(1, 0, -1));
                        ck_assert_uint_gt(budget_lease_get_id(l[i]), last);
                        last = budget_lease_get_id(l[i]);
                        if (n++ == 0)
                                ck_assert_uint_eq(last, 1);
                }
                /* Iteration in id order. */
                uint64_t prev = 0;
                unsigned count = 0;
                for (BudgetLease *i = budget_next_lease(b, NULL); i; i = budget_next_lease(b, i)) {
                        ck_assert_uint_gt(budget_lease_get_id(i), prev);
                        prev = budget_lease_get_id(i);
                        count++;
                }
                ck_assert_uint_eq(count, 4);
                budget_lease_free(l[round % 4]);
                for (unsigned i = 0; i < 4; i++)
                        if (i != round % 4)
                                budget_lease_free(l[i]);
        }
        budget_lease_set_userdata(l[0] = grant(c, req(1, 0, -1)), &n);
        ck_assert_ptr_eq(budget_lease_get_userdata(l[0]), &n);
}
END_TEST

/* ---- Randomized property test --------------------------------------------------------------- */

#define RANDOM_NODES 8
#define RANDOM_LEASES 64

typedef struct Model {
        Budget *b;
        const Topology *t;
        BudgetClient *clients[4];
        BudgetLease *leases[RANDOM_LEASES];
        unsigned max, node_max[RANDOM_NODES], per_user;
} Model;

static uid_t model_uid(unsigned client) {
        return 1000 + client / 2;    /* clients 0,1 are one user, 2,3 another */
}

static void model_check(const Model *m) {
        unsigned node_sum[RANDOM_NODES] = { 0 }, total = 0, n = 0;

        for (unsigned i = 0; i < RANDOM_LEASES; i++) {
                const BudgetLease *l = m->leases[i];
                unsigned granted = 0;

                if (!l)
                        continue;
                n++;
                for (unsigned k = 0; k < budget_lease_get_n_placement(l); k++) {
                        int node;
                        unsigned h;

                        budget_lease_get_placement(l, k, &node, &h);
                        ck_assert_uint_gt(h, 0);
                        ck_assert_int_ge(topology_node_index(m->t, node), 0);
                        node_sum[topology_node_index(m->t, node)] += h;
                        granted += h;
                }
                ck_assert_uint_eq(granted, budget_lease_get_granted(l));
                total += granted;
        }
        ck_assert_uint_eq(n, budget_get_n_leases(m->b));
        ck_assert_uint_eq(total, budget_get_in_use(m->b));
        for (unsigned i = 0; i < m->t->n_nodes; i++)
                ck_assert_uint_eq(node_sum[i], node_in_use(m->b, i));
}

static unsigned free_of(unsigned max, unsigned used) {
        return max > used ? max - used : 0;
}

static unsigned model_user_use(const Model *m, uid_t uid) {
        unsigned s = 0;

        for (unsigned i = 0; i < RANDOM_LEASES; i++)
                if (m->leases[i] && budget_client_get_uid(budget_lease_get_client(m->leases[i])) == uid)
                        s += budget_lease_get_granted(m->leases[i]);
        return s;
}

/* One acquire, checked against caps computed from the outside. */
static void model_acquire(Model *m, unsigned slot) {
        unsigned ci = (unsigned) rand() % 4, before[RANDOM_NODES], in_use = budget_get_in_use(m->b);
        unsigned user_use = model_user_use(m, model_uid(ci)), avail = 0, reach = 0, want, expect;
        bool allowed[RANDOM_NODES];
        BudgetRequest r = req(1 + (unsigned) rand() % 12, 0, -1);
        BudgetLease *l = NULL;
        int node = -1, ret;

        r.min = (unsigned) rand() % (r.helpers + 1);
        if (rand() % 2)
                r.node = m->t->nodes[rand() % (int) m->t->n_nodes].id;
        r.strict_node = r.node >= 0 && rand() % 4 == 0;
        if (rand() % 3 == 0) {
                for (unsigned i = 0; i < m->t->n_nodes; i++)
                        allowed[i] = rand() % 3 != 0;
                r.allowed = allowed;
        }
        for (unsigned i = 0; i < m->t->n_nodes; i++) {
                before[i] = node_in_use(m->b, i);
                if ((!r.allowed || r.allowed[i]) &&
                    (!r.strict_node || m->t->nodes[i].id == r.node)) {
                        avail += free_of(m->node_max[i], before[i]);
                        reach += m->node_max[i];
                }
        }
        want = MIN(r.helpers, free_of(m->max, in_use));
        if (m->per_user)
                want = MIN(want, free_of(m->per_user, user_use));
        expect = MIN(want, avail);

        ret = budget_acquire(m->clients[ci], &r, &l);
        if (r.min > MIN(MIN(m->max, m->per_user ? m->per_user : UINT32_MAX), reach)) {
                ck_assert_int_eq(ret, PAD_ERROR_NEVER_FITS);
                ck_assert_uint_eq(budget_get_in_use(m->b), in_use);
                return;
        }
        if (expect < r.min) {
                ck_assert_int_eq(ret, PAD_ERROR_BUSY);
                ck_assert_uint_eq(budget_get_in_use(m->b), in_use);
                return;
        }
        ck_assert_int_eq(ret, 0);
        m->leases[slot] = l;
        /* The grant is as large as the caps allow, and never pushes past one. */
        ck_assert_uint_eq(budget_lease_get_granted(l), expect);
        ck_assert_uint_le(in_use + expect, MAX(m->max, in_use));
        if (m->per_user)
                ck_assert_uint_le(user_use + expect, MAX(m->per_user, user_use));
        for (unsigned k = 0; k < budget_lease_get_n_placement(l); k++) {
                unsigned h;
                int i;

                budget_lease_get_placement(l, k, &node, &h);
                i = topology_node_index(m->t, node);
                ck_assert(!r.allowed || r.allowed[i]);
                ck_assert(!r.strict_node || node == r.node);
                ck_assert_uint_le(before[i] + h, m->node_max[i]);
                /* With a node given, the first placement is that node if it had room. */
                if (k == 0 && r.node >= 0 && (!r.allowed || r.allowed[topology_node_index(m->t, r.node)]) &&
                    free_of(m->node_max[topology_node_index(m->t, r.node)],
                            before[topology_node_index(m->t, r.node)]) > 0)
                        ck_assert_int_eq(node, r.node);
        }
}

START_TEST(test_random_properties) {
        const unsigned cpus[RANDOM_NODES] = { 4, 1, 2, 8, 0, 3, 6, 2 };
        _cleanup_(topology_freep) Topology *t = topo(RANDOM_NODES, cpus);
        Model m = { .t = t, .max = 14, .per_user = 9 };
        unsigned ops = 0;

        srand(12345 + (unsigned) _i);
        for (unsigned i = 0; i < RANDOM_NODES; i++) {
                m.node_max[i] = cpus[i] * 4 / 5 + (unsigned) rand() % 2;
                for (unsigned j = 0; j < RANDOM_NODES; j++)
                        t->distance[i * RANDOM_NODES + j] = i == j ? 10 : 11 + (unsigned) rand() % 30;
        }
        m.b = budget(t, m.max, m.node_max, m.per_user, 1000, 16);
        for (unsigned i = 0; i < 4; i++)
                m.clients[i] = client(m.b, model_uid(i));

        for (unsigned step = 0; step < 5000; step++) {
                unsigned slot = (unsigned) rand() % RANDOM_LEASES, op = (unsigned) rand() % 10;
                BudgetLease *l = m.leases[slot];

                if (!l && op < 9) {
                        model_acquire(&m, slot);
                } else if (l && op < 4) {
                        unsigned g = budget_lease_get_granted(l), count = g ? (unsigned) rand() % (g + 1) : 0, left;

                        ck_assert_int_eq(budget_lease_shrink(l, count, &left), 0);
                        ck_assert_uint_eq(left, g - count);
                        ck_assert_int_eq(budget_lease_shrink(l, left + 1, &left), PAD_ERROR_INVALID_ARGS);
                } else if (l && op < 9) {
                        m.leases[slot] = budget_lease_free(l);
                } else {
                        /* Move a quota, possibly below what is in use. */
                        unsigned q = (unsigned) rand() % 10;
                        int node = rand() % 3 == 0 ? -1 : t->nodes[rand() % RANDOM_NODES].id;

                        ck_assert_int_eq(budget_set_quota(m.b, node, q), 0);
                        if (node < 0)
                                m.max = q;
                        else
                                m.node_max[topology_node_index(t, node)] = q;
                }
                model_check(&m);
                ops++;
        }
        ck_assert_uint_eq(ops, 5000);
        /* Everything comes back with the clients. */
        for (unsigned i = 0; i < 4; i++)
                budget_client_free(m.clients[i]);
        ck_assert_uint_eq(budget_get_in_use(m.b), 0);
        ck_assert_uint_eq(budget_get_n_leases(m.b), 0);
        for (unsigned i = 0; i < RANDOM_NODES; i++)
                ck_assert_uint_eq(node_in_use(m.b, i), 0);
        budget_free(m.b);
}
END_TEST

/* Random waiters: the queue is served strictly in order and only when the head's min fits. */
START_TEST(test_random_waiters) {
        const unsigned cpus[] = { 3, 2 }, nmax[] = { 3, 2 };
        _cleanup_(topology_freep) Topology *t = topo(2, cpus);
        _cleanup_(budget_freep) Budget *b = budget(t, 5, nmax, 0, 1000, 1000);
        BudgetClient *c = client(b, 0);
        BudgetLease *held[256] = { NULL };
        unsigned mins[256], next_tag = 0, served = 0, n_held = 0;
        void *ud;
        BudgetLease *l;

        srand(777);
        for (unsigned step = 0; step < 2000; step++) {
                if (rand() % 2 && next_tag < 256) {
                        BudgetRequest r = req(1 + (unsigned) rand() % 5, 0, rand() % 2 ? -1 : rand() % 2);
                        BudgetWaiter *w = NULL;

                        r.min = 1 + (unsigned) rand() % r.helpers;
                        mins[next_tag] = r.min;
                        ck_assert_int_eq(budget_enqueue(c, &r, (void *) (uintptr_t) (next_tag + 1), &w), 0);
                        next_tag++;
                } else if (n_held > 0) {
                        unsigned i = (unsigned) rand() % n_held;

                        budget_lease_free(held[i]);
                        held[i] = held[--n_held];
                }
                for (;;) {
                        unsigned free_now = 5 - budget_get_in_use(b);
                        int r = budget_dispatch(b, &ud, &l);

                        if (r == 0) {
                                /* The head, if any, really cannot be met now. */
                                if (served < next_tag)
                                        ck_assert_uint_lt(free_now, mins[served]);
                                break;
                        }
                        ck_assert_int_eq(r, 1);
                        ck_assert_uint_eq((uintptr_t) ud, served + 1);
                        ck_assert_uint_ge(budget_lease_get_granted(l), mins[served]);
                        served++;
                        held[n_held++] = l;
                }
                ck_assert_uint_eq(budget_get_n_waiting(b), next_tag - served);
                ck_assert_uint_le(budget_get_in_use(b), 5);
        }
        ck_assert_uint_gt(served, 0);
}
END_TEST

static Suite *budget_suite(void) {
        Suite *s = suite_create("budget");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_topology_new);
        tcase_add_test(tc, test_topology_load);
        tcase_add_test(tc, test_one_node_caps);
        tcase_add_test(tc, test_user_cap);
        tcase_add_test(tc, test_two_nodes_spill);
        tcase_add_test(tc, test_eight_nodes_distance);
        tcase_add_test(tc, test_any_node_most_free);
        tcase_add_test(tc, test_allowed_mask);
        tcase_add_test(tc, test_strict_node);
        tcase_add_test(tc, test_node_without_cpus);
        tcase_add_test(tc, test_sparse_ids);
        tcase_add_test(tc, test_invalid_args);
        tcase_add_test(tc, test_limits_exceeded);
        tcase_add_test(tc, test_quota_lowered);
        tcase_add_test(tc, test_set_limits);
        tcase_add_test(tc, test_shrink);
        tcase_add_test(tc, test_fifo_waiters);
        tcase_add_test(tc, test_waiters_first);
        tcase_add_test(tc, test_user_capped_head);
        tcase_add_test(tc, test_waiting_per_user);
        tcase_add_test(tc, test_leases_per_user);
        tcase_add_test(tc, test_waiter_free);
        tcase_add_test(tc, test_client_free);
        tcase_add_test(tc, test_ids_never_reused);
        tcase_add_test(tc, test_ids_never_wrap);
        tcase_add_loop_test(tc, test_random_properties, 0, 4);
        tcase_add_test(tc, test_random_waiters);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return check_run_suite(budget_suite());
}
