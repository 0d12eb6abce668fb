/* cpuset.h: the CPUs of NUMA nodes and of the calling thread, as the job runner places its
 * helpers (lib/cpuset.c). */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <sched.h>
#include <stdbool.h>

/* The CPUs of NUMA node `node` (from /sys/devices/system/node/nodeN/cpulist). -ENOENT if
 * the node is not there, -EINVAL for a negative node or an unreadable list; a machine
 * without NUMA in sysfs has node 0 = every CPU. */
int cpuset_node_cpus(int node, cpu_set_t *ret);
/* ret = the node's CPUs intersected with allowed; allowed itself if that is empty or the
 * node's CPUs cannot be read. */
void cpuset_node_cpus_within(int node, const cpu_set_t *allowed, cpu_set_t *ret);
/* Number of CPUs the calling thread may run on (sched_getaffinity), at least 1. */
unsigned cpuset_cpus_allowed(void);
/* Whether the machine has NUMA node 0 only (so a lease's placement is all on node 0). */
bool cpuset_machine_single_node(void);
