/* test-config.c: the config module. Every parse error with its exact "file:line: what",
 * the built-in defaults against conf/paddd.conf, loading the main file and drop-ins in
 * order from temporary folders, a reload-style sequence, and the resolution of
 * percentages into BudgetLimits on 1-node, 2-node, 8-node and CPU-less-node topologies. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "config.h"
#include "topology.h"
#include "util.h"

/* ---- helpers ---------------------------------------------------------------------- */

static void *mfree(void *p) {
        free(p);
        return NULL;
}

static void topology_freep(Topology **t) {
        topology_free(*t);
}

static Config *parse_ok(const char *text) {
        Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        ck_assert_int_eq(config_new(&c), 0);
        r = config_parse_string(c, text, "t.conf", &err);
        ck_assert_msg(r == 0, "parse failed: %d %s\n%s", r, err ?: "(null)", text);
        ck_assert_ptr_null(err);
        return c;
}

/* Parse text as "t.conf" and expect exactly this error. */
static void parse_fails(const char *text, const char *expected) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        ck_assert_int_eq(config_new(&c), 0);
        r = config_parse_string(c, text, "t.conf", &err);
        ck_assert_msg(r == -EINVAL, "expected -EINVAL, got %d for:\n%s", r, text);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(streq(err, expected), "error\n  got:      %s\n  expected: %s", err, expected);
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-config-XXXXXX");

        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(p);
}

static void rm_rf(const char *d) {
        if (d)
                nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write text to dir/name and return the path. */
static char *write_file(const char *dir, const char *name, const char *text) {
        char *p = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(text, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
        return p;
}

static char *read_file(const char *path) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = fopen(path, "re"), *m = open_memstream(&buf, &len);
        char chunk[4096];
        size_t n;

        ck_assert_msg(f != NULL, "cannot open %s: %m", path);
        ck_assert_ptr_nonnull(m);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                ck_assert_uint_eq(fwrite(chunk, 1, n, m), n);
        fclose(f);
        ck_assert_int_eq(fclose(m), 0);
        return buf;
}

static const ConfigNode *find_node(const Config *c, int id) {
        for (unsigned i = 0; i < c->n_nodes; i++)
                if (c->nodes[i].node == id)
                        return &c->nodes[i];
        return NULL;
}

static void assert_same_config(const Config *a, const Config *b) {
        ck_assert_uint_eq(a->max_helpers.value, b->max_helpers.value);
        ck_assert_int_eq(a->max_helpers.percent, b->max_helpers.percent);
        ck_assert_uint_eq(a->max_helpers_per_node.value, b->max_helpers_per_node.value);
        ck_assert_int_eq(a->max_helpers_per_node.percent, b->max_helpers_per_node.percent);
        ck_assert_uint_eq(a->max_helpers_per_user, b->max_helpers_per_user);
        ck_assert_uint_eq(a->max_leases_per_client, b->max_leases_per_client);
        ck_assert_uint_eq(a->max_waiting, b->max_waiting);
        ck_assert_int_eq(a->helper_policy, b->helper_policy);
        ck_assert_int_eq(!a->admin_group, !b->admin_group);
        if (a->admin_group)
                ck_assert_str_eq(a->admin_group, b->admin_group);
        ck_assert_uint_eq(a->n_nodes, b->n_nodes);
}

/* ---- defaults --------------------------------------------------------------------- */

START_TEST(test_defaults) {
        _cleanup_(config_freep) Config *def = NULL, *loaded = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(config_new(&def), 0);
        ck_assert_uint_eq(def->max_helpers.value, 80);
        ck_assert(def->max_helpers.percent);
        ck_assert_uint_eq(def->max_helpers_per_node.value, 80);
        ck_assert(def->max_helpers_per_node.percent);
        ck_assert_uint_eq(def->max_helpers_per_user, 0);
        ck_assert_uint_eq(def->max_leases_per_client, 64);
        ck_assert_uint_eq(def->max_waiting, 256);
        ck_assert_int_eq(def->helper_policy, HELPER_POLICY_IDLE);
        ck_assert_ptr_null(def->admin_group);
        ck_assert_uint_eq(def->n_nodes, 0);

        /* The embedded text alone gives the same, whatever paths are passed. */
        ck_assert_int_eq(config_load("/nonexistent/paddd.conf", "/nonexistent.d", false, &loaded, &err), 0);
        ck_assert_ptr_null(err);
        assert_same_config(loaded, def);
}
END_TEST

/* conf/paddd.conf sets every key (each sentinel below is overwritten) to the built-in
 * defaults, and the embedded text is that file. */
START_TEST(test_conf_file_is_defaults) {
        const char *root = getenv("PADDD_SOURCE_ROOT");
        _cleanup_free_ char *path = NULL, *text = NULL, *err = NULL;
        _cleanup_(config_freep) Config *def = NULL;
        Config sentinel = {
                .max_helpers = { 4095, false },
                .max_helpers_per_node = { 4095, false },
                .max_helpers_per_user = 4095,
                .max_leases_per_client = 4095,
                .max_waiting = 4095,
                .helper_policy = HELPER_POLICY_NONE,
                .admin_group = strdup("sentinel"),
        };

        ck_assert_msg(root != NULL, "PADDD_SOURCE_ROOT is not set (run through meson test)");
        ck_assert_int_ge(asprintf(&path, "%s/conf/paddd.conf", root), 0);
        text = read_file(path);
        ck_assert_int_eq(config_new(&def), 0);

        ck_assert_int_eq(config_parse_string(&sentinel, text, path, &err), 0);
        ck_assert_ptr_null(err);
        assert_same_config(&sentinel, def);
        ck_assert_str_eq(text, config_default_text);
}
END_TEST

START_TEST(test_policy_strings) {
        for (int p = 0; p < _HELPER_POLICY_MAX; p++) {
                const char *s = helper_policy_to_string(p);

                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(helper_policy_from_string(s), p);
        }
        ck_assert_str_eq(helper_policy_to_string(HELPER_POLICY_BATCH), "batch");
        ck_assert_int_eq(helper_policy_from_string("nice"), HELPER_POLICY_NICE);
        ck_assert_ptr_null(helper_policy_to_string(_HELPER_POLICY_MAX));
        ck_assert_ptr_null(helper_policy_to_string((HelperPolicy) -1));
        ck_assert_int_eq(helper_policy_from_string("Idle"), -EINVAL);
        ck_assert_int_eq(helper_policy_from_string(""), -EINVAL);
        ck_assert_int_eq(helper_policy_from_string(NULL), -EINVAL);
}
END_TEST

/* ---- good input ------------------------------------------------------------------- */

/* A config using every key, inline '#' comments included. */
START_TEST(test_full_example) {
        _cleanup_(config_freep) Config *c = parse_ok(
                "[Broker]\n"
                "MaxHelpers=75%          # integer, or percent of online CPUs (floor)\n"
                "MaxHelpersPerNode=6     # integer, or percent of each node's CPUs (floor)\n"
                "MaxHelpersPerUser=      # empty: no per-user cap below MaxHelpers\n"
                "MaxLeasesPerClient=3    # past it: LimitsExceeded\n"
                "MaxWaiting=0            # queued Acquire calls machine-wide\n"
                "HelperPolicy=batch      # idle|batch|nice|none\n"
                "AdminGroup=padmins\n"
                "[Node 1]\n"
                "MaxHelpers=4            # overrides MaxHelpersPerNode for node 1\n"
                "[Node 3]\n"
                "MaxHelpers=50% ; semicolon comments too\n"
                "[Node 5]\n");
        const ConfigNode *n;

        ck_assert_uint_eq(c->max_helpers.value, 75);
        ck_assert(c->max_helpers.percent);
        ck_assert_uint_eq(c->max_helpers_per_node.value, 6);
        ck_assert(!c->max_helpers_per_node.percent);
        ck_assert_uint_eq(c->max_helpers_per_user, 0);
        ck_assert_uint_eq(c->max_leases_per_client, 3);
        ck_assert_uint_eq(c->max_waiting, 0);
        ck_assert_int_eq(c->helper_policy, HELPER_POLICY_BATCH);
        ck_assert_str_eq(c->admin_group, "padmins");
        ck_assert_uint_eq(c->n_nodes, 3);
        n = find_node(c, 1);
        ck_assert_ptr_nonnull(n);
        ck_assert(n->max_helpers_set);
        ck_assert_uint_eq(n->max_helpers.value, 4);
        ck_assert(!n->max_helpers.percent);
        ck_assert_str_eq(n->file, "t.conf");
        ck_assert_uint_eq(n->line, 9);
        n = find_node(c, 3);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_eq(n->max_helpers.value, 50);
        ck_assert(n->max_helpers.percent);
        n = find_node(c, 5);
        ck_assert_ptr_nonnull(n);
        ck_assert(!n->max_helpers_set);
        ck_assert_uint_eq(n->line, 13);
}
END_TEST

START_TEST(test_lexical_details) {
        _cleanup_(config_freep) Config *c = NULL;

        /* Indented keys, CRLF, a BOM, blank and comment lines, extremes of each range. */
        c = parse_ok("\xef\xbb\xbf# comment\r\n"
                     "; another\r\n"
                     "\r\n"
                     "  [Broker]  \r\n"
                     "\tMaxHelpers = 4096\r\n"
                     "    MaxHelpersPerNode=100%\r\n"
                     "MaxHelpersPerUser=4096\n"
                     "MaxLeasesPerClient=65536\n"
                     "MaxWaiting=65536\n"
                     "AdminGroup=_svc-admins.x$\n"
                     "[Node 1023]\n"
                     "MaxHelpers=0%\n");
        ck_assert_uint_eq(c->max_helpers.value, 4096);
        ck_assert(!c->max_helpers.percent);
        ck_assert_uint_eq(c->max_helpers_per_node.value, 100);
        ck_assert_uint_eq(c->max_helpers_per_user, 4096);
        ck_assert_uint_eq(c->max_leases_per_client, 65536);
        ck_assert_uint_eq(c->max_waiting, 65536);
        ck_assert_str_eq(c->admin_group, "_svc-admins.x$");
        ck_assert_ptr_nonnull(find_node(c, 1023));
        c = config_free(c);

        /* A later text overrides an earlier one; empty AdminGroup and MaxHelpersPerUser
         * reset; lowest values of each range. */
        c = parse_ok("[Broker]\nAdminGroup=wheel\nMaxHelpersPerUser=5\n");
        ck_assert_int_eq(config_parse_string(c, "[Broker]\nAdminGroup=\nMaxHelpersPerUser=\n"
                                             "MaxHelpers=0\nMaxLeasesPerClient=1\n", "u.conf", NULL), 0);
        ck_assert_ptr_null(c->admin_group);
        ck_assert_uint_eq(c->max_helpers_per_user, 0);
        ck_assert_uint_eq(c->max_helpers.value, 0);
        ck_assert_uint_eq(c->max_leases_per_client, 1);
        c = config_free(c);

        /* Comment characters inside a value (no blank before them) stay part of it. */
        parse_fails("[Broker]\nMaxHelpers=8#x\n",
                    "t.conf:2: MaxHelpers: \"8#x\" is neither an integer nor a percentage");
        /* A long comment is fine; only real content is limited by libinih's buffer. */
        {
                char text[1024];
                char big[400];

                memset(big, 'x', sizeof(big) - 1);
                big[sizeof(big) - 1] = '\0';
                snprintf(text, sizeof(text), "[Broker]\n# %s\nMaxWaiting=1 # %s\n", big, big);
                c = parse_ok(text);
                ck_assert_uint_eq(c->max_waiting, 1);
                snprintf(text, sizeof(text), "[Broker]\n# %s\nAdminGroup=%s\n", big, big);
                parse_fails(text, "t.conf:3: line too long (more than 198 characters)");
        }
}
END_TEST

/* ---- every error, with its line ---------------------------------------------------- */

static const struct {
        const char *text;
        const char *error;
} bad_inputs[] = {
        /* values of helper counts */
        { "[Broker]\nMaxHelpers=8x\n", "t.conf:2: MaxHelpers: \"8x\" is neither an integer nor a percentage" },
        { "[Broker]\nMaxHelpers=%\n", "t.conf:2: MaxHelpers: \"%\" is neither an integer nor a percentage" },
        { "[Broker]\nMaxHelpers=80 %\n", "t.conf:2: MaxHelpers: \"80 %\" is neither an integer nor a percentage" },
        { "[Broker]\nMaxHelpers=+3\n", "t.conf:2: MaxHelpers: \"+3\" is neither an integer nor a percentage" },
        { "[Broker]\nMaxHelpers=1.5\n", "t.conf:2: MaxHelpers: \"1.5\" is neither an integer nor a percentage" },
        { "[Broker]\nMaxHelpers=-1\n", "t.conf:2: MaxHelpers: \"-1\" is negative" },
        { "[Broker]\nMaxHelpers=4097\n", "t.conf:2: MaxHelpers: \"4097\" is out of range (0..4096)" },
        { "[Broker]\nMaxHelpers=99999999999999999999999\n",
          "t.conf:2: MaxHelpers: \"99999999999999999999999\" is out of range (0..4096)" },
        { "[Broker]\nMaxHelpers=101%\n", "t.conf:2: MaxHelpers: \"101%\" is more than 100%" },
        { "[Broker]\nMaxHelpers=99999999999999999999999%\n",
          "t.conf:2: MaxHelpers: \"99999999999999999999999%\" is more than 100%" },
        { "[Broker]\nMaxHelpers=\n", "t.conf:2: MaxHelpers: empty value (expected an integer 0..4096 or a percentage)" },
        { "[Broker]\nMaxHelpersPerNode=-20%\n", "t.conf:2: MaxHelpersPerNode: \"-20%\" is negative" },
        { "[Broker]\nMaxHelpersPerNode= # nothing\n",
          "t.conf:2: MaxHelpersPerNode: empty value (expected an integer 0..4096 or a percentage)" },
        { "[Broker]\nMaxHelpersPerUser=4097\n", "t.conf:2: MaxHelpersPerUser: \"4097\" is out of range (0..4096)" },
        { "[Broker]\nMaxHelpersPerUser=50%\n", "t.conf:2: MaxHelpersPerUser: \"50%\" is not an integer" },
        { "[Broker]\nMaxHelpersPerUser=-2\n", "t.conf:2: MaxHelpersPerUser: \"-2\" is negative (expected 0..4096)" },
        /* other counts */
        { "[Broker]\nMaxLeasesPerClient=0\n", "t.conf:2: MaxLeasesPerClient: \"0\" is out of range (1..65536)" },
        { "[Broker]\nMaxLeasesPerClient=65537\n", "t.conf:2: MaxLeasesPerClient: \"65537\" is out of range (1..65536)" },
        { "[Broker]\nMaxLeasesPerClient=abc\n", "t.conf:2: MaxLeasesPerClient: \"abc\" is not an integer" },
        { "[Broker]\nMaxLeasesPerClient=\n", "t.conf:2: MaxLeasesPerClient: empty value (expected an integer 1..65536)" },
        { "[Broker]\nMaxWaiting=-5\n", "t.conf:2: MaxWaiting: \"-5\" is negative (expected 0..65536)" },
        { "[Broker]\nMaxWaiting=65537\n", "t.conf:2: MaxWaiting: \"65537\" is out of range (0..65536)" },
        { "[Broker]\nMaxWaiting=18446744073709551616\n",
          "t.conf:2: MaxWaiting: \"18446744073709551616\" is out of range (0..65536)" },
        { "[Broker]\nMaxWaiting=\n", "t.conf:2: MaxWaiting: empty value (expected an integer 0..65536)" },
        /* policy and group */
        { "[Broker]\nHelperPolicy=IDLE\n", "t.conf:2: HelperPolicy: \"IDLE\" is not one of idle, batch, nice, none" },
        { "[Broker]\nHelperPolicy=\n", "t.conf:2: HelperPolicy: \"\" is not one of idle, batch, nice, none" },
        { "[Broker]\nAdminGroup=1admins\n", "t.conf:2: AdminGroup: \"1admins\" is not a valid group name" },
        { "[Broker]\nAdminGroup=pad admins\n", "t.conf:2: AdminGroup: \"pad admins\" is not a valid group name" },
        { "[Broker]\nAdminGroup=a/b\n", "t.conf:2: AdminGroup: \"a/b\" is not a valid group name" },
        { "[Broker]\nAdminGroup=a$b\n", "t.conf:2: AdminGroup: \"a$b\" is not a valid group name" },
        { "[Broker]\nAdminGroup=abcdefghijabcdefghijabcdefghijabc\n",
          "t.conf:2: AdminGroup: \"abcdefghijabcdefghijabcdefghijabc\" is not a valid group name" },
        /* keys */
        { "[Broker]\nFoo=1\n", "t.conf:2: Foo: unknown key in [Broker]" },
        { "[Broker]\nmaxhelpers=1\n", "t.conf:2: maxhelpers: unknown key in [Broker]" },
        { "MaxHelpers=1\n", "t.conf:1: MaxHelpers: key outside of any section (put it under [Broker])" },
        { "[Node 0]\nMaxWaiting=3\n", "t.conf:2: MaxWaiting: unknown key in [Node 0] (only MaxHelpers)" },
        { "[Broker]\n=5\n", "t.conf:2: \"=5\": missing key name before '='" },
        /* duplicates within one text */
        { "[Broker]\nMaxHelpers=1\nMaxWaiting=3\nMaxHelpers=2\n",
          "t.conf:4: MaxHelpers: duplicate key in [Broker] (already set on line 2)" },
        { "[Broker]\nAdminGroup=\nAdminGroup=\n",
          "t.conf:3: AdminGroup: duplicate key in [Broker] (already set on line 2)" },
        { "[Node 1]\nMaxHelpers=1\n\nMaxHelpers=2\n",
          "t.conf:4: MaxHelpers: duplicate key in [Node 1] (already set on line 2)" },
        { "[Node 1]\nMaxHelpers=1\n[Broker]\n[Node 2]\n[Node 1]\n",
          "t.conf:5: [Node 1]: duplicate section (already on line 1)" },
        { "[Broker]\nMaxWaiting=1\n[Node 0]\n[Broker]\nMaxHelpers=1\n",
          "t.conf:4: [Broker]: duplicate section (already on line 1)" },
        /* sections */
        { "[Brokr]\n", "t.conf:1: [Brokr]: unknown section (expected [Broker] or [Node N])" },
        { "# x\n[broker]\n", "t.conf:2: [broker]: unknown section (expected [Broker] or [Node N])" },
        { "[Node]\n", "t.conf:1: [Node]: unknown section (expected [Broker] or [Node N])" },
        { "[Node x]\n", "t.conf:1: [Node x]: \"x\" is not a node number" },
        { "[Node -1]\n", "t.conf:1: [Node -1]: \"-1\" is not a node number" },
        { "[Node  1]\n", "t.conf:1: [Node  1]: \" 1\" is not a node number" },
        { "[Node 1024]\n", "t.conf:1: [Node 1024]: node number out of range (0..1023)" },
        { "[Broker\nMaxHelpers=1\n", "t.conf:1: \"[Broker\": broken section header (expected [Name])" },
        { "[Broker]\n[Node 1] x\n", "t.conf:2: \"[Node 1] x\": broken section header (expected [Name])" },
        { "[Broker]]\n", "t.conf:1: \"[Broker]]\": broken section header (expected [Name])" },
        { "[[Broker]\n", "t.conf:1: \"[[Broker]\": broken section header (expected [Name])" },
        { "[]\n", "t.conf:1: \"[]\": broken section header (expected [Name])" },
        /* line shapes */
        { "[Broker]\nMaxHelpers\n", "t.conf:2: \"MaxHelpers\": expected Key=Value, [Broker] or [Node N]" },
        { "[Broker]\nMaxHelpers: 4\n", "t.conf:2: \"MaxHelpers: 4\": expected Key=Value, [Broker] or [Node N]" },
        { "[Broker]\nMaxHelpers=1\n  2\n", "t.conf:3: \"2\": expected Key=Value, [Broker] or [Node N]" },
        /* line counting across blank lines, comments and CRLF; the first error wins */
        { "\n\n# c\n[Broker]\r\n\r\n; x\r\nMaxWaiting=x\r\nMaxHelpers=y\r\n",
          "t.conf:7: MaxWaiting: \"x\" is not an integer" },
        { "[Broker]\nMaxHelpers=1\nMaxWaiting=1\nMaxHelpers=9x\nbroken\n",
          "t.conf:4: MaxHelpers: duplicate key in [Broker] (already set on line 2)" },
        { "[Broker]\nMaxHelpers=1 # fine\nbroken\nMaxHelpers=9x\n",
          "t.conf:3: \"broken\": expected Key=Value, [Broker] or [Node N]" },
        { "[Broker]\nMaxWaiting=1\nMaxHelpers=1\n[Node 3]\nMaxHelpers=101%", /* no final newline */
          "t.conf:5: MaxHelpers: \"101%\" is more than 100%" },
};

START_TEST(test_bad_input) {
        parse_fails(bad_inputs[_i].text, bad_inputs[_i].error);
}
END_TEST

START_TEST(test_error_output) {
        _cleanup_(config_freep) Config *c = NULL;
        char *err = (char *) "stale";

        ck_assert_int_eq(config_new(&c), 0);
        /* Success clears *ret_error; NULL ret_error is allowed. */
        ck_assert_int_eq(config_parse_string(c, "[Broker]\n", "t.conf", &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(config_parse_string(c, "[Broker]\nX=1\n", "t.conf", NULL), -EINVAL);
        ck_assert_int_eq(config_parse_string(NULL, "", "t.conf", NULL), -EINVAL);
        ck_assert_int_eq(config_parse_string(c, NULL, "t.conf", NULL), -EINVAL);
        /* An empty text is a valid, empty config. */
        ck_assert_int_eq(config_parse_string(c, "", "t.conf", NULL), 0);
}
END_TEST

/* ---- files ------------------------------------------------------------------------ */

START_TEST(test_load_files) {
        _cleanup_free_ char *dir = make_tmpdir(), *main_path = NULL, *dropins = NULL, *p1 = NULL,
                            *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL, *err = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        const ConfigNode *n;

        main_path = write_file(dir, "paddd.conf",
                               "[Broker]\nMaxHelpers=10\nMaxWaiting=5\nHelperPolicy=nice\n"
                               "[Node 0]\nMaxHelpers=2\n[Node 1]\nMaxHelpers=3\n");
        ck_assert_int_ge(asprintf(&dropins, "%s.d", main_path), 0);
        ck_assert_int_eq(mkdir(dropins, 0755), 0);
        /* strcmp order: 10-a, 20-b, 9-z; the rest is not read. */
        p1 = write_file(dropins, "20-b.conf", "[Broker]\nMaxHelpers=30\n");
        p2 = write_file(dropins, "10-a.conf", "[Broker]\nMaxHelpers=20\nMaxWaiting=6\n[Node 0]\nMaxHelpers=50%\n");
        p3 = write_file(dropins, "9-z.conf", "[Broker]\nMaxWaiting=7\n[Node 0]\n");
        p4 = write_file(dropins, "30.conf.disabled", "garbage\n");
        p5 = write_file(dropins, ".hidden.conf", "garbage\n");

        ck_assert_int_eq(config_load(main_path, dropins, true, &c, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_uint_eq(c->max_helpers.value, 30);
        ck_assert_uint_eq(c->max_waiting, 7);
        ck_assert_int_eq(c->helper_policy, HELPER_POLICY_NICE);
        ck_assert_uint_eq(c->max_leases_per_client, 64); /* from the embedded default */
        ck_assert_uint_eq(c->n_nodes, 2);
        n = find_node(c, 0);
        ck_assert_ptr_nonnull(n);
        ck_assert(n->max_helpers_set);
        ck_assert_uint_eq(n->max_helpers.value, 50); /* 9-z's empty [Node 0] keeps it */
        ck_assert(n->max_helpers.percent);
        ck_assert_str_eq(n->file, p3);
        ck_assert_uint_eq(n->line, 3);
        n = find_node(c, 1);
        ck_assert_ptr_nonnull(n);
        ck_assert_uint_eq(n->max_helpers.value, 3);
        ck_assert_str_eq(n->file, main_path);
        ck_assert_uint_eq(n->line, 7);
        c = config_free(c);

        /* A missing drop-in dir is fine. */
        ck_assert_int_eq(config_load(main_path, "/nonexistent/paddd.conf.d", true, &c, &err), 0);
        ck_assert_uint_eq(c->max_helpers.value, 10);
        c = config_free(c);

        /* So is a missing file at the default path (path NULL), when it is missing here. */
        if (access(CONFIG_PATH_DEFAULT, F_OK) < 0 && errno == ENOENT) {
                ck_assert_int_eq(config_load(NULL, dropins, true, &c, &err), 0);
                ck_assert_ptr_null(err);
                ck_assert_uint_eq(c->max_helpers.value, 30);    /* the drop-ins still apply */
                ck_assert_uint_eq(c->max_waiting, 7);
                c = config_free(c);
        }

        rm_rf(dir);
}
END_TEST

START_TEST(test_load_errors) {
        _cleanup_free_ char *dir = make_tmpdir(), *good = NULL, *bad = NULL, *missing = NULL,
                            *dropins = NULL, *p = NULL, *expected = NULL, *err = NULL;
        Config *c = (Config *) 0x1;     /* must stay untouched on every error */

        good = write_file(dir, "good.conf", "[Broker]\nMaxHelpers=3\n");
        bad = write_file(dir, "bad.conf", "# bad\n[Broker]\nMaxHelpers=8x\n");
        ck_assert_int_ge(asprintf(&missing, "%s/missing.conf", dir), 0);
        ck_assert_int_ge(asprintf(&dropins, "%s/d", dir), 0);

        /* An explicit path that is missing is an error. */
        ck_assert_int_eq(config_load(missing, dropins, true, &c, &err), -ENOENT);
        ck_assert_ptr_eq(c, (Config *) 0x1);
        ck_assert_int_ge(asprintf(&expected, "%s: cannot read: No such file or directory", missing), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        expected = mfree(expected);

        /* A bad main file names itself and the line. */
        ck_assert_int_eq(config_load(bad, dropins, true, &c, &err), -EINVAL);
        ck_assert_ptr_eq(c, (Config *) 0x1);
        ck_assert_int_ge(asprintf(&expected, "%s:3: MaxHelpers: \"8x\" is neither an integer nor a percentage", bad), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        expected = mfree(expected);

        /* A bad drop-in, after good ones. */
        ck_assert_int_eq(mkdir(dropins, 0755), 0);
        p = write_file(dropins, "a.conf", "[Broker]\nMaxWaiting=1\n");
        p = mfree(p);
        p = write_file(dropins, "b.conf", "[Node 2]\nMaxHelpers=1\n[Node 2]\n");
        ck_assert_int_eq(config_load(good, dropins, true, &c, &err), -EINVAL);
        ck_assert_ptr_eq(c, (Config *) 0x1);
        ck_assert_int_ge(asprintf(&expected, "%s:3: [Node 2]: duplicate section (already on line 1)", p), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        expected = mfree(expected);
        ck_assert_int_eq(unlink(p), 0);
        p = mfree(p);

        /* A directory where a drop-in should be. */
        ck_assert_int_ge(asprintf(&p, "%s/c.conf", dropins), 0);
        ck_assert_int_eq(mkdir(p, 0755), 0);
        ck_assert_int_eq(config_load(good, dropins, true, &c, &err), -EISDIR);
        ck_assert_int_ge(asprintf(&expected, "%s: cannot read: Is a directory", p), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        expected = mfree(expected);
        ck_assert_int_eq(rmdir(p), 0);
        p = mfree(p);

        /* A file where the drop-in dir should be. */
        ck_assert_int_eq(config_load(good, good, true, &c, &err), -ENOTDIR);
        ck_assert_int_ge(asprintf(&expected, "%s: cannot read directory: Not a directory", good), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        expected = mfree(expected);

        /* NUL bytes. */
        {
                int fd;

                ck_assert_int_ge(asprintf(&p, "%s/nul.conf", dir), 0);
                fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, "[Broker]\n\0\n", 11), 11);
                close(fd);
                ck_assert_int_eq(config_load(p, dropins, true, &c, &err), -EINVAL);
                ck_assert_int_ge(asprintf(&expected, "%s: contains a NUL byte", p), 0);
                ck_assert_str_eq(err, expected);
                err = mfree(err);
                expected = mfree(expected);
                p = mfree(p);
        }
        ck_assert_ptr_eq(c, (Config *) 0x1);

        rm_rf(dir);
}
END_TEST

/* Reload: a good config, then a bad drop-in (error, nothing returned, the old config
 * still usable), then the fix. */
START_TEST(test_reload_sequence) {
        _cleanup_free_ char *dir = make_tmpdir(), *main_path = NULL, *dropins = NULL, *p = NULL,
                            *err = NULL, *expected = NULL;
        _cleanup_(config_freep) Config *current = NULL;
        Config *next = NULL;
        _cleanup_(topology_freep) Topology *t = NULL;
        BudgetLimits limits;
        unsigned cpus[] = { 4, 4 };

        ck_assert_int_eq(topology_new(2, cpus, &t), 0);
        main_path = write_file(dir, "paddd.conf", "[Broker]\nMaxHelpers=5\n");
        ck_assert_int_ge(asprintf(&dropins, "%s.d", main_path), 0);
        ck_assert_int_eq(mkdir(dropins, 0755), 0);

        ck_assert_int_eq(config_load(main_path, dropins, true, &current, &err), 0);
        ck_assert_uint_eq(current->max_helpers.value, 5);

        p = write_file(dropins, "50-new.conf", "[Broker]\nMaxHelpers=6\n[Node 9]\nMaxHelpers=1\n");
        /* Parses, but node 9 is not on this machine: resolving fails, the old one stays. */
        ck_assert_int_eq(config_load(main_path, dropins, true, &next, &err), 0);
        ck_assert_int_eq(config_to_limits(next, t, &limits, &err), -EINVAL);
        ck_assert_int_ge(asprintf(&expected, "%s:3: [Node 9]: no such NUMA node", p), 0);
        ck_assert_str_eq(err, expected);
        next = config_free(next);
        err = mfree(err);
        expected = mfree(expected);

        p = mfree(p);
        p = write_file(dropins, "50-new.conf", "[Broker]\nMaxHelpers=6\nMaxHelpers=7\n");
        ck_assert_int_eq(config_load(main_path, dropins, true, &next, &err), -EINVAL);
        ck_assert_ptr_null(next);
        ck_assert_int_ge(asprintf(&expected, "%s:3: MaxHelpers: duplicate key in [Broker] (already set on line 2)", p), 0);
        ck_assert_str_eq(err, expected);
        err = mfree(err);
        ck_assert_uint_eq(current->max_helpers.value, 5);
        ck_assert_int_eq(config_to_limits(current, t, &limits, NULL), 0);
        ck_assert_uint_eq(limits.max_helpers, 5);
        free(limits.node_max);

        p = mfree(p);
        p = write_file(dropins, "50-new.conf", "[Broker]\nMaxHelpers=7\n");
        ck_assert_int_eq(config_load(main_path, dropins, true, &next, &err), 0);
        config_free(current);
        current = TAKE_PTR(next);
        ck_assert_uint_eq(current->max_helpers.value, 7);

        rm_rf(dir);
}
END_TEST

/* ---- resolution against topologies ------------------------------------------------ */

/* Parse text, resolve against a topology of n nodes with these CPUs; returns limits. */
static void resolve(const char *text, unsigned n, const unsigned *cpus, BudgetLimits *ret) {
        _cleanup_(config_freep) Config *c = parse_ok(text);
        _cleanup_(topology_freep) Topology *t = NULL;
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(topology_new(n, cpus, &t), 0);
        ck_assert_int_eq(config_to_limits(c, t, ret, &err), 0);
        ck_assert_ptr_null(err);
}

START_TEST(test_limits_one_node) {
        unsigned cpus[] = { 2 };
        BudgetLimits l;

        resolve("", 1, cpus, &l);       /* 80% of 2 = 1.6 -> 1 */
        ck_assert_uint_eq(l.max_helpers, 1);
        ck_assert_uint_eq(l.node_max[0], 1);
        ck_assert_uint_eq(l.max_per_user, 0);
        ck_assert_uint_eq(l.max_leases_per_client, 64);
        ck_assert_uint_eq(l.max_waiting, 256);
        free(l.node_max);

        resolve("[Broker]\nMaxHelpers=100%\nMaxHelpersPerNode=49%\nMaxHelpersPerUser=3\n"
                "MaxLeasesPerClient=9\nMaxWaiting=11\n", 1, cpus, &l);
        ck_assert_uint_eq(l.max_helpers, 2);
        ck_assert_uint_eq(l.node_max[0], 0);    /* 0.98 -> 0 */
        ck_assert_uint_eq(l.max_per_user, 3);
        ck_assert_uint_eq(l.max_leases_per_client, 9);
        ck_assert_uint_eq(l.max_waiting, 11);
        free(l.node_max);

        resolve("[Broker]\nMaxHelpers=4096\nMaxHelpersPerNode=0\n[Node 0]\nMaxHelpers=50%\n", 1, cpus, &l);
        ck_assert_uint_eq(l.max_helpers, 4096);
        ck_assert_uint_eq(l.node_max[0], 1);
        free(l.node_max);
}
END_TEST

START_TEST(test_limits_two_nodes) {
        unsigned cpus[] = { 4, 4 };
        BudgetLimits l;

        resolve("", 2, cpus, &l);       /* 6.4 -> 6; 3.2 -> 3 */
        ck_assert_uint_eq(l.max_helpers, 6);
        ck_assert_uint_eq(l.node_max[0], 3);
        ck_assert_uint_eq(l.node_max[1], 3);
        free(l.node_max);

        resolve("[Node 1]\nMaxHelpers=7\n", 2, cpus, &l);
        ck_assert_uint_eq(l.node_max[0], 3);
        ck_assert_uint_eq(l.node_max[1], 7);
        free(l.node_max);

        resolve("[Broker]\nMaxHelpersPerNode=2\n[Node 0]\nMaxHelpers=50%\n", 2, cpus, &l);
        ck_assert_uint_eq(l.node_max[0], 2);
        ck_assert_uint_eq(l.node_max[1], 2);
        free(l.node_max);
}
END_TEST

START_TEST(test_limits_eight_nodes) {
        unsigned cpus[] = { 1, 2, 3, 4, 5, 6, 7, 8 };   /* 36 CPUs */
        unsigned expect80[] = { 0, 1, 2, 3, 4, 4, 5, 6 };
        BudgetLimits l;

        resolve("", 8, cpus, &l);       /* 28.8 -> 28 */
        ck_assert_uint_eq(l.max_helpers, 28);
        for (unsigned i = 0; i < 8; i++)
                ck_assert_uint_eq(l.node_max[i], expect80[i]);
        free(l.node_max);

        resolve("[Broker]\nMaxHelpers=33%\nMaxHelpersPerNode=100%\n[Node 7]\nMaxHelpers=25%\n"
                "[Node 2]\nMaxHelpers=0\n", 8, cpus, &l);
        ck_assert_uint_eq(l.max_helpers, 11);   /* 11.88 */
        for (unsigned i = 0; i < 8; i++)
                ck_assert_uint_eq(l.node_max[i], i == 7 ? 2 : i == 2 ? 0 : cpus[i]);
        free(l.node_max);
}
END_TEST

START_TEST(test_limits_cpuless_node) {
        unsigned cpus[] = { 4, 0 };
        BudgetLimits l;

        resolve("", 2, cpus, &l);
        ck_assert_uint_eq(l.max_helpers, 3);
        ck_assert_uint_eq(l.node_max[0], 3);
        ck_assert_uint_eq(l.node_max[1], 0);
        free(l.node_max);

        resolve("[Broker]\nMaxHelpersPerNode=100%\n[Node 1]\nMaxHelpers=3\n", 2, cpus, &l);
        ck_assert_uint_eq(l.node_max[0], 4);
        ck_assert_uint_eq(l.node_max[1], 3);    /* an integer is taken as given */
        free(l.node_max);

        /* A machine whose topology has no CPUs at all. */
        cpus[0] = 0;
        resolve("[Broker]\nMaxHelpers=100%\n", 2, cpus, &l);
        ck_assert_uint_eq(l.max_helpers, 0);
        ck_assert_uint_eq(l.node_max[0], 0);
        ck_assert_uint_eq(l.node_max[1], 0);
        free(l.node_max);
}
END_TEST

START_TEST(test_limits_sparse_and_missing_nodes) {
        unsigned cpus[] = { 4, 4 };
        _cleanup_(topology_freep) Topology *t = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *err = NULL;
        BudgetLimits l;

        ck_assert_int_eq(topology_new(2, cpus, &t), 0);
        t->nodes[1].id = 5;     /* nodes 0 and 5 */

        c = parse_ok("[Node 5]\nMaxHelpers=1\n");
        ck_assert_int_eq(config_to_limits(c, t, &l, &err), 0);
        ck_assert_uint_eq(l.node_max[0], 3);
        ck_assert_uint_eq(l.node_max[1], 1);
        free(l.node_max);
        c = config_free(c);

        c = parse_ok("[Broker]\nMaxHelpers=2\n\n[Node 1]\nMaxHelpers=1\n");
        l.node_max = NULL;
        ck_assert_int_eq(config_to_limits(c, t, &l, &err), -EINVAL);
        ck_assert_str_eq(err, "t.conf:4: [Node 1]: no such NUMA node");
        ck_assert_ptr_null(l.node_max);
        err = mfree(err);
        c = config_free(c);

        /* An empty section names a node too. */
        c = parse_ok("[Broker]\n[Node 7]\n");
        ck_assert_int_eq(config_to_limits(c, t, &l, &err), -EINVAL);
        ck_assert_str_eq(err, "t.conf:2: [Node 7]: no such NUMA node");
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("defaults");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_conf_file_is_defaults);
        tcase_add_test(tc, test_policy_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse");
        tcase_add_test(tc, test_full_example);
        tcase_add_test(tc, test_lexical_details);
        tcase_add_loop_test(tc, test_bad_input, 0, (int) ELEMENTSOF(bad_inputs));
        tcase_add_test(tc, test_error_output);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_load_files);
        tcase_add_test(tc, test_load_errors);
        tcase_add_test(tc, test_reload_sequence);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_limits_one_node);
        tcase_add_test(tc, test_limits_two_nodes);
        tcase_add_test(tc, test_limits_eight_nodes);
        tcase_add_test(tc, test_limits_cpuless_node);
        tcase_add_test(tc, test_limits_sparse_and_missing_nodes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return check_run_suite(config_suite());
}
