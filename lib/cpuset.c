/* cpuset.c: CPU sets for placing helper threads: the cpulist of a NUMA node read from
 * sysfs (the whole machine as node 0 where sysfs has no nodes), a node's CPUs within an
 * affinity mask, the number of CPUs the caller may use, and whether the machine has one
 * node only. No state; nothing here allocates or logs. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpuset.h"
#include "util.h"

#define SYSFS_NODE_DIR "/sys/devices/system/node"
/* Longer than any cpulist of CPU_SETSIZE (1024) CPUs. */
#define CPULIST_MAX 4096

/* A cpulist such as "0-3,8,10-11". */
static int cpulist_parse(const char *s, cpu_set_t *ret) {
        CPU_ZERO(ret);
        while (*s && *s != '\n') {
                char *end;
                unsigned long a = strtoul(s, &end, 10), b = a;

                if (end == s)
                        return -EINVAL;
                if (*end == '-') {
                        s = end + 1;
                        b = strtoul(s, &end, 10);
                        if (end == s || b < a)
                                return -EINVAL;
                }
                for (unsigned long i = a; i <= b && i < CPU_SETSIZE; i++)
                        CPU_SET(i, ret);
                s = end;
                if (*s == ',')
                        s++;
        }
        return 0;
}

static void cpuset_all_configured(cpu_set_t *ret) {
        CPU_ZERO(ret);
        for (long i = 0, m = sysconf(_SC_NPROCESSORS_CONF); i < m && i < CPU_SETSIZE; i++)
                CPU_SET(i, ret);
}

int cpuset_node_cpus(int node, cpu_set_t *ret) {
        char path[96], buf[CPULIST_MAX];
        FILE *f;
        size_t n;

        if (node < 0)
                return -EINVAL;
        snprintf(path, sizeof path, SYSFS_NODE_DIR "/node%d/cpulist", node);
        f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && node == 0 && access(SYSFS_NODE_DIR, F_OK) < 0) {
                        /* No NUMA in sysfs: node 0 is the whole machine. */
                        cpuset_all_configured(ret);
                        return 0;
                }
                return -ENOENT;
        }
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        return cpulist_parse(buf, ret);
}

void cpuset_node_cpus_within(int node, const cpu_set_t *allowed, cpu_set_t *ret) {
        cpu_set_t cpus;

        if (node >= 0 && cpuset_node_cpus(node, &cpus) >= 0) {
                CPU_AND(ret, &cpus, allowed);
                if (CPU_COUNT(ret) > 0)
                        return;
        }
        *ret = *allowed;
}

unsigned cpuset_cpus_allowed(void) {
        cpu_set_t set;
        int n;

        if (sched_getaffinity(0, sizeof set, &set) < 0)
                return 1;
        n = CPU_COUNT(&set);
        return n > 0 ? (unsigned) n : 1;
}

bool cpuset_machine_single_node(void) {
        char buf[64] = {};
        FILE *f = fopen(SYSFS_NODE_DIR "/online", "re");
        bool single;

        if (!f)
                return false;
        single = fgets(buf, sizeof buf, f) && (streq(buf, "0\n") || streq(buf, "0"));
        fclose(f);
        return single;
}
