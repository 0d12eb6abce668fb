/* fuzz-config.c: libFuzzer target of paddd's config (daemon/config.c). The first input byte
 * holds flags, the rest is split at NUL bytes into a main file and up to seven drop-ins.
 * They are parsed as strings after the embedded default, as config_load does; with flag 1
 * they are also written into a scratch directory and loaded by config_load, whose verdict,
 * message and result must equal the string parse. Every error must read "name:line: what";
 * a config that parses is resolved against each topology shape, whose limits must stay
 * within BROKER_HELPERS_MAX and the CPUs a percentage speaks of, and be accepted by the
 * budget. Any violation abort()s. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "budget.h"
#include "config.h"
#include "fuzz-common.h"

#define PARTS_MAX 8u
#define FLAG_FILES 1u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *scratch_dir(void);
static void scratch_remove(void);

static void part_path(unsigned i, char *buf, size_t size) {
        if (i == 0)
                snprintf(buf, size, "%s/paddd.conf", scratch_dir());
        else
                snprintf(buf, size, "%s/paddd.conf.d/%02u.conf", scratch_dir(), i - 1);
}

/* The scratch directory of this process: DIR/paddd.conf and DIR/paddd.conf.d/NN.conf. */
static const char *scratch_dir(void) {
        static char dir[64];
        static bool made;
        char sub[sizeof dir + 16];

        if (!made) {
                /* In memory where there is a tmpfs for it: a file round per input. */
                snprintf(dir, sizeof dir, "%s/paddd-fuzz-config.XXXXXX",
                         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
                if (!mkdtemp(dir))
                        abort();
                snprintf(sub, sizeof sub, "%s/paddd.conf.d", dir);
                if (mkdir(sub, 0700) < 0)
                        abort();
                made = true;
                atexit(scratch_remove);
        }
        return dir;
}

static void scratch_remove(void) {
        char path[128];

        for (unsigned i = 0; i < PARTS_MAX; i++) {
                part_path(i, path, sizeof path);
                (void) unlink(path);
        }
        snprintf(path, sizeof path, "%s/paddd.conf.d", scratch_dir());
        (void) rmdir(path);
        (void) rmdir(scratch_dir());
}

static void write_file(const char *path, const char *text) {
        size_t len = strlen(text);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, text, len) != (ssize_t) len || close(fd) < 0)
                abort();
}

/* An error of a text called name reads "name:line: what". */
static void check_message(const char *error, const char *name) {
        size_t n = strlen(name);

        check(error != NULL, "an -EINVAL without a message");
        check(strncmp(error, name, n) == 0 && error[n] == ':' && isdigit((unsigned char) error[n + 1]),
              "a message that does not start with name:line:");
}

static bool str_eq_null(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static void check_same_config(const Config *a, const Config *b) {
        check(a->max_helpers.value == b->max_helpers.value &&
              a->max_helpers.percent == b->max_helpers.percent &&
              a->max_helpers_per_node.value == b->max_helpers_per_node.value &&
              a->max_helpers_per_node.percent == b->max_helpers_per_node.percent &&
              a->max_helpers_per_user == b->max_helpers_per_user &&
              a->max_leases_per_client == b->max_leases_per_client &&
              a->max_waiting == b->max_waiting && a->helper_policy == b->helper_policy &&
              str_eq_null(a->admin_group, b->admin_group) && a->n_nodes == b->n_nodes,
              "config_load and the string parse disagree");
        for (unsigned i = 0; i < a->n_nodes; i++)
                check(a->nodes[i].node == b->nodes[i].node &&
                      a->nodes[i].max_helpers.value == b->nodes[i].max_helpers.value &&
                      a->nodes[i].max_helpers.percent == b->nodes[i].max_helpers.percent &&
                      a->nodes[i].max_helpers_set == b->nodes[i].max_helpers_set &&
                      str_eq_null(a->nodes[i].file, b->nodes[i].file) &&
                      a->nodes[i].line == b->nodes[i].line,
                      "config_load and the string parse disagree on a [Node N]");
}

static unsigned resolved_bound(ConfigQuantity q, unsigned cpus) {
        unsigned v = q.percent ? cpus : q.value;

        return MIN(v, BROKER_HELPERS_MAX);
}

static void check_limits(const Config *c, unsigned shape) {
        Topology *t = fuzz_topology(shape);
        BudgetLimits l = {};
        Budget *b = NULL;
        char *error = NULL;
        int r;

        r = config_to_limits(c, t, &l, &error);
        if (r < 0) {
                check(r == -EINVAL || r == -ENOMEM, "config_to_limits: unexpected error code");
                check(r == -ENOMEM || (error && strstr(error, ": no such NUMA node")),
                      "config_to_limits: an error without its message");
                free(error);
                topology_free(t);
                return;
        }
        check(!error, "config_to_limits: a message on success");
        check(l.node_max != NULL, "config_to_limits: no node_max");
        check(l.max_helpers <= resolved_bound(c->max_helpers, t->n_cpus),
              "MaxHelpers resolved past its bound");
        check(l.max_leases_per_client >= 1 && l.max_leases_per_client == c->max_leases_per_client &&
              l.max_waiting == c->max_waiting && l.max_per_user == c->max_helpers_per_user,
              "counts not passed through");
        for (unsigned i = 0; i < t->n_nodes; i++) {
                ConfigQuantity q = c->max_helpers_per_node;

                for (unsigned k = 0; k < c->n_nodes; k++)
                        if (c->nodes[k].node == t->nodes[i].id && c->nodes[k].max_helpers_set)
                                q = c->nodes[k].max_helpers;
                check(l.node_max[i] <= resolved_bound(q, t->nodes[i].n_cpus),
                      "a node's MaxHelpers resolved past its bound");
        }
        check(budget_new(t, &l, &b) == 0, "the budget refuses resolved limits");
        budget_free(b);
        free(l.node_max);
        topology_free(t);
}

/* The parts as strings, after the embedded default, named as the files would be. */
static int parse_strings(char **parts, unsigned n, Config **ret, char **ret_error) {
        Config *c = NULL;
        char name[128];
        int r;

        if (config_new(&c) < 0)
                abort();
        r = config_parse_string(c, config_default_text, "<built-in paddd.conf>", ret_error);
        check(r == 0, "the embedded default does not parse");
        for (unsigned i = 0; i < n; i++) {
                part_path(i, name, sizeof name);
                r = config_parse_string(c, parts[i], name, ret_error);
                if (r < 0) {
                        check(r == -EINVAL || r == -ENOMEM, "config_parse_string: unexpected error code");
                        if (r == -EINVAL)
                                check_message(*ret_error, name);
                        config_free(c);
                        return r;
                }
                check(!*ret_error, "config_parse_string: a message on success");
        }
        *ret = c;
        return 0;
}

static int load_files(char **parts, unsigned n, Config **ret, char **ret_error) {
        char path[128], dropins[128];

        for (unsigned i = 0; i < PARTS_MAX; i++) {
                part_path(i, path, sizeof path);
                if (i < n)
                        write_file(path, parts[i]);
                else if (unlink(path) < 0 && errno != ENOENT)
                        abort();
        }
        part_path(0, path, sizeof path);
        snprintf(dropins, sizeof dropins, "%s/paddd.conf.d", scratch_dir());
        return config_load(path, dropins, true, ret, ret_error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text, *parts[PARTS_MAX], *error = NULL, *file_error = NULL;
        Config *c = NULL, *fc = NULL;
        unsigned n = 0, flags;
        int r, fr;

        if (size < 1)
                return 0;
        flags = data[0];
        text = malloc(size);
        if (!text)
                abort();
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        /* NUL bytes split the parts; the last part ends at the terminator added above. */
        for (char *p = text; n < PARTS_MAX; p += strlen(p) + 1) {
                parts[n++] = p;
                if (p + strlen(p) >= text + size - 1)
                        break;
        }

        r = parse_strings(parts, n, &c, &error);
        if (flags & FLAG_FILES) {
                fr = load_files(parts, n, &fc, &file_error);
                check(fr == r, "config_load and the string parse differ in their verdict");
                check(str_eq_null(error, file_error), "config_load and the string parse differ in their message");
                if (r == 0)
                        check_same_config(c, fc);
        }
        if (r == 0)
                for (unsigned s = 0; s < FUZZ_N_SHAPES; s++)
                        check_limits(c, s);

        config_free(c);
        config_free(fc);
        free(error);
        free(file_error);
        free(text);
        return 0;
}
