/* fuzz-common.h: what the fuzz targets share: the invariant check that abort()s, so that
 * libFuzzer keeps the input, and the topology shapes the config and the budget run
 * against: one node, two even nodes, uneven nodes with a memory-only one, sparse node ids
 * with uneven distances, and a machine with no node at all. */
#pragma once

#include <stdbool.h>

#include "topology.h"

/* Abort with "<program>: invariant violated: what" unless ok. */
void check(bool ok, const char *what);

#define FUZZ_N_SHAPES 5u

/* A new topology of shape (taken modulo FUZZ_N_SHAPES); aborts when it cannot be built. */
Topology *fuzz_topology(unsigned shape);
