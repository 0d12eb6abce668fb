/* topology.h: the machine's NUMA topology as plain data. topology.c fills it from libnuma;
 * tests build it by hand (topology_new or by filling the fields), so the budget
 * and the config can be exercised with any shape. */
#pragma once

#include <stdbool.h>

typedef struct TopologyNode {
        int id;                 /* kernel node number; ids may be sparse */
        unsigned n_cpus;        /* online CPUs on this node (0 for a memory-only node) */
        unsigned *cpus;         /* n_cpus CPU numbers, ascending */
} TopologyNode;

typedef struct Topology {
        unsigned n_nodes;
        TopologyNode *nodes;    /* ascending by id */
        unsigned *distance;     /* n_nodes * n_nodes, distance[i * n_nodes + j] by index */
        unsigned n_cpus;        /* online CPUs machine-wide */
} Topology;

/* Read the running machine's topology (nodes with memory or CPUs). */
int topology_load(Topology **ret);

/* A topology for tests: n_nodes nodes with the given CPU counts, CPUs numbered
 * consecutively, distance 10 on the diagonal and 20 elsewhere. */
int topology_new(unsigned n_nodes, const unsigned *cpus_per_node, Topology **ret);

Topology *topology_free(Topology *t);

/* Index of node id in t->nodes, or -1. */
int topology_node_index(const Topology *t, int id);

/* Index of the node that owns cpu, or -1. */
int topology_cpu_node_index(const Topology *t, unsigned cpu);
