/* topology.c: the machine's NUMA topology as plain data. topology_load() reads it from libnuma
 * (nodes that have CPUs or memory, their online CPUs, the distance table) and falls back to
 * one node holding every online CPU on a kernel without NUMA; topology_new() builds one by
 * hand for tests. Also the small index look-ups the budget and the config use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include "topology.h"
#include "util.h"

#define DISTANCE_LOCAL 10u
#define DISTANCE_REMOTE 20u

static void topology_freep(Topology **t) {
        topology_free(*t);
}

Topology *topology_free(Topology *t) {
        if (!t)
                return NULL;
        for (unsigned i = 0; i < t->n_nodes; i++)
                free(t->nodes[i].cpus);
        free(t->nodes);
        free(t->distance);
        free(t);
        return NULL;
}

/* An empty topology of n nodes with default distances; nodes get ids 0..n-1. */
static int topology_alloc(unsigned n_nodes, Topology **ret) {
        _cleanup_(topology_freep) Topology *t = NULL;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->nodes = calloc(MAX(n_nodes, 1u), sizeof(TopologyNode));
        t->distance = calloc(MAX(n_nodes * n_nodes, 1u), sizeof(unsigned));
        if (!t->nodes || !t->distance)
                return -ENOMEM;
        t->n_nodes = n_nodes;
        for (unsigned i = 0; i < n_nodes; i++) {
                t->nodes[i].id = (int) i;
                for (unsigned j = 0; j < n_nodes; j++)
                        t->distance[i * n_nodes + j] = i == j ? DISTANCE_LOCAL : DISTANCE_REMOTE;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int topology_new(unsigned n_nodes, const unsigned *cpus_per_node, Topology **ret) {
        _cleanup_(topology_freep) Topology *t = NULL;
        unsigned cpu = 0;
        int r;

        if (!ret || (n_nodes > 0 && !cpus_per_node))
                return -EINVAL;
        r = topology_alloc(n_nodes, &t);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < n_nodes; i++) {
                TopologyNode *n = &t->nodes[i];

                n->cpus = calloc(MAX(cpus_per_node[i], 1u), sizeof(unsigned));
                if (!n->cpus)
                        return -ENOMEM;
                n->n_cpus = cpus_per_node[i];
                for (unsigned k = 0; k < n->n_cpus; k++)
                        n->cpus[k] = cpu++;
        }
        t->n_cpus = cpu;
        *ret = TAKE_PTR(t);
        return 0;
}

/* Online CPUs from sysfs, as a libnuma bitmask. */
static int online_cpus(struct bitmask **ret) {
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        FILE *f;
        struct bitmask *m;

        f = fopen("/sys/devices/system/cpu/online", "re");
        if (!f)
                return -errno;
        if (getline(&line, &len, f) < 0) {
                fclose(f);
                return -EIO;
        }
        fclose(f);
        line[strcspn(line, "\n")] = 0;
        m = numa_parse_cpustring_all(line);
        if (!m)
                return -EINVAL;
        *ret = m;
        return 0;
}

static int node_fill_cpus(TopologyNode *n, struct bitmask *cpus, struct bitmask *online) {
        unsigned count = 0, nbits = numa_bitmask_nbytes(cpus) * 8;

        for (unsigned c = 0; c < nbits; c++)
                if (numa_bitmask_isbitset(cpus, c) && numa_bitmask_isbitset(online, c))
                        count++;
        n->cpus = calloc(MAX(count, 1u), sizeof(unsigned));
        if (!n->cpus)
                return -ENOMEM;
        for (unsigned c = 0; c < nbits; c++)
                if (numa_bitmask_isbitset(cpus, c) && numa_bitmask_isbitset(online, c))
                        n->cpus[n->n_cpus++] = c;
        return 0;
}

/* Without NUMA in the kernel: one node 0 with every online CPU. */
static int topology_load_flat(struct bitmask *online, Topology **ret) {
        _cleanup_(topology_freep) Topology *t = NULL;
        int r;

        r = topology_alloc(1, &t);
        if (r < 0)
                return r;
        r = node_fill_cpus(&t->nodes[0], online, online);
        if (r < 0)
                return r;
        t->n_cpus = t->nodes[0].n_cpus;
        *ret = TAKE_PTR(t);
        return 0;
}

static bool node_present(int node, struct bitmask *cpus, struct bitmask *online) {
        unsigned nbits = numa_bitmask_nbytes(cpus) * 8;

        if (numa_node_size64(node, NULL) > 0)
                return true;
        for (unsigned c = 0; c < nbits; c++)
                if (numa_bitmask_isbitset(cpus, c) && numa_bitmask_isbitset(online, c))
                        return true;
        return false;
}

static int topology_load_numa(struct bitmask *online, Topology **ret) {
        _cleanup_(topology_freep) Topology *t = NULL;
        int max_node = numa_max_node(), r = 0;
        unsigned n = 0;
        struct bitmask *cpus;
        int *ids;

        ids = calloc((size_t) max_node + 1, sizeof(int));
        cpus = numa_allocate_cpumask();
        if (!ids || !cpus) {
                r = -ENOMEM;
                goto finish;
        }
        for (int node = 0; node <= max_node; node++) {
                if (!numa_nodes_ptr || !numa_bitmask_isbitset(numa_nodes_ptr, (unsigned) node))
                        continue;
                if (numa_node_to_cpus(node, cpus) < 0)
                        numa_bitmask_clearall(cpus);
                if (node_present(node, cpus, online))
                        ids[n++] = node;
        }
        if (n == 0) {
                r = topology_load_flat(online, ret);
                goto finish;
        }
        r = topology_alloc(n, &t);
        if (r < 0)
                goto finish;
        for (unsigned i = 0; i < n; i++) {
                t->nodes[i].id = ids[i];
                if (numa_node_to_cpus(ids[i], cpus) < 0)
                        numa_bitmask_clearall(cpus);
                r = node_fill_cpus(&t->nodes[i], cpus, online);
                if (r < 0)
                        goto finish;
                t->n_cpus += t->nodes[i].n_cpus;
                for (unsigned j = 0; j < n; j++) {
                        int d = numa_distance(ids[i], ids[j]);
                        if (d > 0)
                                t->distance[i * n + j] = (unsigned) d;
                }
        }
        *ret = TAKE_PTR(t);
finish:
        free(ids);
        if (cpus)
                numa_bitmask_free(cpus);
        return r;
}

int topology_load(Topology **ret) {
        struct bitmask *online = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = online_cpus(&online);
        if (r < 0)
                return r;
        if (numa_available() < 0)
                r = topology_load_flat(online, ret);
        else
                r = topology_load_numa(online, ret);
        numa_bitmask_free(online);
        return r;
}

int topology_node_index(const Topology *t, int id) {
        if (!t)
                return -1;
        for (unsigned i = 0; i < t->n_nodes; i++)
                if (t->nodes[i].id == id)
                        return (int) i;
        return -1;
}

int topology_cpu_node_index(const Topology *t, unsigned cpu) {
        if (!t)
                return -1;
        for (unsigned i = 0; i < t->n_nodes; i++)
                for (unsigned k = 0; k < t->nodes[i].n_cpus; k++)
                        if (t->nodes[i].cpus[k] == cpu)
                                return (int) i;
        return -1;
}
