/* padctl.c: the admin CLI and job runner's entry point. Owns the global options (--bus,
 * --quiet, --help, --version), the command table with each command's help text, and the
 * dispatch to the command modules, which all reach paddd through libpadclient only:
 * padctl-status.c (status, set-quota, reload), padctl-monitor.c (monitor),
 * padctl-metrics.c (metrics), padctl-jobs.c (acquire, hugetlb-fallocate,
 * pmem-init) and padctl-vfio.c (vfio-map). Exit codes: 0 ok, 1 failure, 2 usage error,
 * 130 cancelled. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "padctl.h"
#include "paddd-config.h"
#include "util.h"

static const PadctlCommand commands[] = {
        {
                "status", "",
                "Show quotas, usage per node and every lease.",
                "  -o --output FORMAT text (default) or json\n",
                "json is one object: the broker's properties, \"nodes\" and \"leases\" arrays.\n",
                padctl_status,
        },
        {
                "monitor", "",
                "Follow quotas, leases and statistics live until Ctrl-C.",
                "  --interval SECONDS refresh the statistics this often on a terminal (default 5)\n",
                "The state is redrawn whenever paddd signals a change; paddd sends no signal for\n"
                "its statistics, so on a terminal they are also read every --interval. When stdout\n"
                "is not a terminal, each change is one line of key=value fields. Ctrl-C (or SIGTERM)\n"
                "ends it with exit status 0.\n",
                padctl_monitor,
        },
        {
                "metrics", "",
                "Print the broker's state and statistics for Prometheus.",
                "  --textfile DIR     write DIR/paddd.prom atomically instead (node_exporter's\n"
                "                     textfile collector)\n",
                "The Prometheus text exposition format: gauges for the quotas and their use,\n"
                "counters since paddd started, the wait histogram paddd_wait_seconds.\n",
                padctl_metrics,
        },
        {
                "set-quota", "NODE|machine MAX",
                "Set a node's or the machine-wide quota (admin).",
                "",
                "NODE is a node number, or 'machine' for the machine-wide cap. Lowering a quota\n"
                "below what is in use revokes nothing; it only stops new grants.\n",
                padctl_set_quota,
        },
        {
                "reload", "",
                "Make paddd re-read its configuration (admin).",
                "", "",
                padctl_reload,
        },
        {
                "acquire", "HELPERS",
                "Borrow helper slots and hold them until Ctrl-C.",
                "  --node N           the node the work is for (default: any)\n"
                "  --strict-node      take slots from that node only\n"
                "  --min N            the fewest helpers acceptable (default 0)\n"
                "  --wait SECONDS     wait this long for --min to become free (default 0)\n"
                "  --tag TEXT         label shown to admins in 'padctl status'\n"
                "  --ttl SECONDS      the broker ends the lease by itself after this long\n"
                "  --hold SECONDS     release after this long (default: until Ctrl-C)\n",
                "Prints the lease's path and grant. Ctrl-C (or SIGTERM) releases it, exit status 0.\n",
                padctl_acquire,
        },
        {
                "hugetlb-fallocate", "FILE SIZE",
                "Preallocate a hugetlbfs file in parallel.",
                "  --offset N         start of the range (default 0)\n"
                "  --node N           NUMA node for the pages and the helpers\n"
                "  --helpers N        at most N helper threads besides this one\n"
                "  --keep-size        like FALLOC_FL_KEEP_SIZE: do not change the file size\n"
                "  --compare-kernel   then time the kernel's single-threaded fallocate(2) of the\n"
                "                     same size on a temporary file in the same folder (needs\n"
                "                     free huge pages for SIZE twice)\n",
                "SIZE and N take K, M, G, T suffixes and must be multiples of the huge page size.\n"
                "Ctrl-C cancels: the pages this run allocated are given back, exit status 130.\n",
                padctl_hugetlb_fallocate,
        },
        {
                "pmem-init", "PATH",
                "Fill pmem, a DAX file or any file in parallel.",
                "  --size N           bytes to fill (default: to the end of PATH)\n"
                "  --offset N         start of the range (default 0)\n"
                "  --pattern BYTE     the byte to write, 0-255, decimal or 0x hex (default 0)\n"
                "  --node N           NUMA node for the helpers\n"
                "  --helpers N        at most N helper threads besides this one\n",
                "Sizes take K, M, G, T suffixes. Ctrl-C cancels with exit status 130.\n",
                padctl_pmem_init,
        },
        {
                "vfio-map", "GROUP SIZE",
                "Time a parallel VFIO DMA map of SIZE, unmap.",
                "  --hugetlb          back the memory with huge pages (MAP_HUGETLB)\n"
                "  --iommufd          use /dev/iommu and the group's device cdevs instead of a\n"
                "                     type1 container\n"
                "  --node N           NUMA node for the helpers\n"
                "  --helpers N        at most N helper threads besides this one\n",
                "GROUP is a group number or its path, for example /dev/vfio/3. SIZE takes K, M,\n"
                "G, T suffixes. The memory is mapped at IOVA 0.\n",
                padctl_vfio_map,
        },
};

const PadctlCommand *padctl_command_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static void help(FILE *f) {
        fprintf(f,
                "Usage: padctl [GLOBAL OPTIONS] COMMAND [ARGS...] [OPTIONS]\n\n"
                "Talk to paddd, the helper-thread broker, and run parallel memory jobs with the\n"
                "helpers it lends.\n\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char syn[64];

                snprintf(syn, sizeof(syn), "%s%s%s", commands[i].name, *commands[i].args ? " " : "",
                         commands[i].args);
                fprintf(f, "  %-28s %s\n", syn, commands[i].summary);
        }
        fprintf(f,
                "\nGlobal options:\n"
                "  --bus BUS          system (default; $PADCLIENT_BUS if set), session, or a D-Bus\n"
                "                     address such as unix:path=/run/x/bus\n"
                "  -q --quiet         no progress bar and no informational output\n"
                "  --no-legend        tables without column headers, titles or summary line\n"
                "  -h --help          show this help ('padctl COMMAND --help' for a command)\n"
                "  --version          show the version\n\n"
                "Global options may also come after the command, among its own.\n"
                "Exit status: 0 ok, 1 failure, 2 usage error, 130 cancelled.\n");
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "bus", required_argument, NULL, PADCTL_OPT_BUS },
                { "quiet", no_argument, NULL, 'q' },
                { "no-legend", no_argument, NULL, PADCTL_OPT_NO_LEGEND },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, PADCTL_OPT_VERSION },
                {}
        };
        Padctl p = {};
        const PadctlCommand *cmd;
        int c;

        opterr = 0;
        /* '+': stop at the command; its own options follow it, and the global ones may too
         * (padctl_getopt takes them). */
        while ((c = getopt_long(argc, argv, "+:qh", options, NULL)) >= 0) {
                switch (c) {
                case PADCTL_OPT_BUS:
                        if (!*optarg)
                                return padctl_usage_error(NULL, "--bus needs a bus: system, session or an address");
                        p.bus = optarg;
                        break;
                case 'q':
                        p.quiet = true;
                        break;
                case PADCTL_OPT_NO_LEGEND:
                        p.no_legend = true;
                        break;
                case 'h':
                        help(stdout);
                        return PADCTL_EXIT_OK;
                case PADCTL_OPT_VERSION:
                        printf("padctl %s\n", PADDD_VERSION);
                        return PADCTL_EXIT_OK;
                case ':':
                        return padctl_usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
                default:
                        return padctl_usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return padctl_usage_error(NULL, "no command given");
        if (streq(argv[optind], "help")) {
                cmd = optind + 1 < argc ? padctl_command_find(argv[optind + 1]) : NULL;
                if (cmd)
                        padctl_command_help(cmd, stdout);
                else
                        help(stdout);
                return PADCTL_EXIT_OK;
        }
        cmd = padctl_command_find(argv[optind]);
        if (!cmd)
                return padctl_usage_error(NULL, "unknown command '%s'", argv[optind]);

        /* The command sees its name as argv[0]; reset getopt for it. */
        argc -= optind;
        argv += optind;
        optind = 0;
        p.command = cmd;
        return cmd->run(&p, argc, argv);
}
