/* fuzz-common.c: the invariant check of the fuzz targets, and the topology shapes of
 * fuzz-common.h, built with topology_new, some then given sparse ids and uneven distances
 * by hand, as topology.h allows. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-common.h"

void check(bool ok, const char *what) {
        if (!ok) {
                fprintf(stderr, "%s: invariant violated: %s\n", program_invocation_short_name, what);
                abort();
        }
}

Topology *fuzz_topology(unsigned shape) {
        static const unsigned one[] = { 2 }, two[] = { 4, 4 }, uneven[] = { 8, 0, 2, 1 },
                              sparse[] = { 3, 1, 6, 2, 1 };
        static const int sparse_ids[] = { 0, 1, 4, 7, 1023 };
        Topology *t = NULL;
        int r = -1;

        switch (shape % FUZZ_N_SHAPES) {
        case 0:
                r = topology_new(1, one, &t);
                break;
        case 1:
                r = topology_new(2, two, &t);
                break;
        case 2:
                r = topology_new(4, uneven, &t);
                break;
        case 3:
                r = topology_new(5, sparse, &t);
                if (r < 0)
                        break;
                for (unsigned i = 0; i < t->n_nodes; i++) {
                        t->nodes[i].id = sparse_ids[i];
                        for (unsigned j = 0; j < t->n_nodes; j++)
                                if (i != j)
                                        t->distance[i * t->n_nodes + j] = 12 + 5 * (i > j ? i - j : j - i);
                }
                break;
        default:
                r = topology_new(0, NULL, &t);
                break;
        }
        if (r < 0 || !t)
                abort();
        return t;
}
