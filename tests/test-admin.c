/* test-admin.c: the broker administration of libpadclient (pad_broker_*, pad_client_bus,
 * pad_client_broker_error) against a real paddd on a private bus, each answer checked
 * against what paddd says over plain sd-bus; the statistics against the grants, refusals
 * and waits the test caused, and the change watch against changes the test makes. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <padclient.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "check-run.h"
#include "fixture.h"

#define CONFIG "[Broker]\nMaxHelpers=4\nMaxHelpersPerNode=4096\nHelperPolicy=batch\n"
#define TAG "test-admin"
#define MSG_MAX 512

static Fixture fixture;

static void start_broker(void) {
        int r = fixture_start(&fixture, CONFIG);

        if (r == -ENOENT) {
                printf("test-admin: no dbus-daemon or paddd here: skipped\n");
                exit(77);
        }
        ck_assert_msg(r == 0, "fixture_start: %s", strerror(-r));
}

static unsigned broker_u(const char *prop) {
        sd_bus *b = NULL;
        uint32_t v = UINT32_MAX;

        ck_assert_int_ge(bus_open_spec(fixture.address, NULL, &b), 0);
        ck_assert_int_ge(sd_bus_get_property_trivial(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                                     prop, NULL, 'u', &v), 0);
        sd_bus_flush_close_unref(b);
        return v;
}

START_TEST(test_status) {
        pad_client *c = NULL;
        pad_lease *l = NULL;
        pad_broker_status *s = NULL;
        char msg[MSG_MAX] = "x";
        unsigned sum = 0;

        start_broker();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_str_eq(pad_client_bus(c), fixture.address);
        ck_assert_int_eq(pad_client_broker_error(c, msg, sizeof msg), 0);
        ck_assert_str_eq(msg, "");
        ck_assert_int_eq(pad_client_acquire(c, 3, PAD_NODE_ANY, &(pad_acquire_opts) { .tag = TAG }, &l), 0);

        ck_assert_int_eq(pad_broker_status_get(c, &s, msg, sizeof msg), 0);
        ck_assert_uint_eq(s->max_helpers, 4);
        ck_assert_uint_eq(s->max_helpers, broker_u("MaxHelpers"));
        ck_assert_uint_eq(s->in_use, pad_lease_granted(l));
        ck_assert_uint_eq(s->in_use, broker_u("InUse"));
        ck_assert_uint_eq(s->leases, 1);
        ck_assert_uint_eq(s->waiting, 0);
        ck_assert_str_eq(s->helper_policy, "batch");
        ck_assert_ptr_nonnull(s->version);
        ck_assert_str_ne(s->version, "");
        ck_assert_uint_ge(s->n_nodes, 1);
        for (unsigned i = 0; i < s->n_nodes; i++) {
                ck_assert_int_ge(s->nodes[i]->node, 0);
                ck_assert_uint_ge(s->nodes[i]->cpus, 1);
                sum += s->nodes[i]->in_use;
        }
        ck_assert_uint_eq(sum, s->in_use);
        ck_assert_ptr_null(pad_broker_status_free(s));
        ck_assert_ptr_null(pad_broker_status_free(NULL));

        ck_assert_ptr_null(pad_lease_free(l));
        ck_assert_ptr_null(pad_client_free(c));
        fixture_stop(&fixture);
}
END_TEST

START_TEST(test_list_leases) {
        pad_client *c = NULL;
        pad_lease *l = NULL;
        pad_lease_list *list = NULL;
        const pad_lease_info *i;
        int nodes[PAD_PLACEMENT_MAX];
        unsigned helpers[PAD_PLACEMENT_MAX], n;
        char msg[MSG_MAX];

        start_broker();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_broker_list_leases(c, &list, msg, sizeof msg), 0);
        ck_assert_uint_eq(list->n, 0);
        list = pad_lease_list_free(list);

        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, &(pad_acquire_opts) { .tag = TAG }, &l), 0);
        ck_assert_int_eq(pad_broker_list_leases(c, &list, msg, sizeof msg), 0);
        ck_assert_uint_eq(list->n, 1);
        i = list->leases[0];
        ck_assert_str_eq(i->path, pad_lease_path(l));
        ck_assert_uint_eq(i->uid, getuid());
        ck_assert_uint_eq(i->pid, (uint32_t) getpid());
        ck_assert_uint_eq(i->granted, 2);
        ck_assert_str_eq(i->tag, TAG);
        ck_assert(strchr(i->owner, ':') == i->owner);   /* a unique name */
        n = pad_lease_placement(l, nodes, helpers, PAD_PLACEMENT_MAX);
        ck_assert_uint_eq(i->n_placement, n);
        for (unsigned k = 0; k < n; k++) {
                ck_assert_int_eq(i->placement_node[k], nodes[k]);
                ck_assert_uint_eq(i->placement_helpers[k], helpers[k]);
        }
        ck_assert_ptr_null(pad_lease_list_free(list));

        ck_assert_ptr_null(pad_lease_free(l));
        ck_assert_int_eq(pad_broker_list_leases(c, &list, msg, sizeof msg), 0);
        ck_assert_uint_eq(list->n, 0);
        pad_lease_list_free(list);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

START_TEST(test_set_quota_reload) {
        pad_client *c = NULL;
        char msg[MSG_MAX], where[400];

        start_broker();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_broker_set_quota(c, PAD_NODE_ANY, 3, msg, sizeof msg), 0);
        ck_assert_str_eq(msg, "");
        ck_assert_uint_eq(broker_u("MaxHelpers"), 3);

        /* No such node: the broker's error name and errno, nothing changed. */
        ck_assert_int_eq(pad_broker_set_quota(c, BROKER_NODE_ID_MAX, 1, msg, sizeof msg), -ENXIO);
        ck_assert_msg(strstr(msg, BROKER_ERROR_NO_SUCH_NODE), "%s", msg);
        ck_assert_uint_eq(broker_u("MaxHelpers"), 3);
        ck_assert_int_eq(pad_broker_set_quota(c, -2, 1, msg, sizeof msg), -EINVAL);

        ck_assert_int_eq(fixture_write_config(&fixture, "[Broker]\nMaxHelpers=5\nMaxHelpersPerNode=4096\n"), 0);
        ck_assert_int_eq(pad_broker_reload(c, msg, sizeof msg), 0);
        ck_assert_uint_eq(broker_u("MaxHelpers"), 5);

        /* A broken config: -EINVAL, the message names file:line, the old quota stays. */
        ck_assert_int_eq(fixture_write_config(&fixture, "[Broker]\nMaxHelpers=2\nNoSuchKey=1\n"), 0);
        ck_assert_int_eq(pad_broker_reload(c, msg, sizeof msg), -EINVAL);
        snprintf(where, sizeof where, "%s:3:", fixture.config_path);
        ck_assert_msg(strstr(msg, where), "%s lacks %s", msg, where);
        ck_assert_uint_eq(broker_u("MaxHelpers"), 5);

        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

START_TEST(test_no_broker) {
        pad_client *c = NULL;
        pad_broker_status *s = NULL;
        pad_lease_list *list = NULL;
        char dir[] = "/tmp/test-admin-XXXXXX", addr[128], msg[MSG_MAX];

        /* A socket nobody listens on: the connection's own errno, said so. */
        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(addr, sizeof addr, "unix:path=%s/bus", dir);
        ck_assert_int_eq(pad_client_new(addr, &c), 0);
        ck_assert_int_eq(pad_client_broker_error(c, msg, sizeof msg), -ENOENT);
        ck_assert_msg(strstr(msg, "cannot connect to") && strstr(msg, strerror(ENOENT)), "%s", msg);
        ck_assert_int_eq(pad_broker_status_get(c, &s, msg, sizeof msg), -ENOENT);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(msg, "cannot connect to"), "%s", msg);
        ck_assert_int_eq(pad_broker_reload(c, NULL, 0), -ENOENT);
        c = pad_client_free(c);
        rmdir(dir);

        /* A bus without paddd: -EHOSTDOWN, and the message says paddd is not running. */
        start_broker();
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_broker_error(c, msg, sizeof msg), -EHOSTDOWN);
        ck_assert_msg(strstr(msg, "not running"), "%s", msg);
        ck_assert_int_eq(pad_broker_list_leases(c, &list, msg, sizeof msg), -EHOSTDOWN);
        ck_assert_ptr_null(list);
        ck_assert_msg(strstr(msg, "not running"), "%s", msg);
        ck_assert_int_eq(pad_broker_set_quota(c, PAD_NODE_ANY, 1, msg, sizeof msg), -EHOSTDOWN);

        /* paddd back: the same client finds it. */
        ck_assert_int_eq(fixture_start_paddd(&fixture), 0);
        ck_assert_int_eq(pad_client_broker_error(c, msg, sizeof msg), 0);
        ck_assert_int_eq(pad_broker_status_get(c, &s, msg, sizeof msg), 0);
        ck_assert_uint_eq(s->max_helpers, 4);
        pad_broker_status_free(s);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* The counter `name` of GetStatistics, over plain sd-bus. */
static uint64_t broker_counter(const char *name) {
        sd_bus_message *m = NULL;
        sd_bus *b = NULL;
        const char *k;
        uint64_t v, found = UINT64_MAX;

        ck_assert_int_ge(bus_open_spec(fixture.address, NULL, &b), 0);
        ck_assert_int_ge(sd_bus_call_method(b, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE, "GetStatistics",
                                            NULL, &m, ""), 0);
        ck_assert_int_ge(sd_bus_message_enter_container(m, 'a', "{st}"), 0);
        while (sd_bus_message_read(m, "{st}", &k, &v) > 0)
                if (strcmp(k, name) == 0)
                        found = v;
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(b);
        ck_assert_msg(found != UINT64_MAX, "GetStatistics has no counter %s", name);
        return found;
}

static uint64_t counter(const pad_broker_statistics *s, const char *name) {
        uint64_t v = UINT64_MAX;

        ck_assert_msg(pad_broker_statistics_counter(s, name, &v) == 0, "no counter %s", name);
        return v;
}

START_TEST(test_statistics) {
        pad_client *c = NULL;
        pad_lease *a = NULL, *b = NULL, *busy = NULL;
        pad_broker_statistics *s = NULL;
        uint64_t bucketed = 0, node_helpers = 0;
        char msg[MSG_MAX] = "x";
        bool mine = false;

        start_broker();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_client_acquire(c, 3, PAD_NODE_ANY, &(pad_acquire_opts) { .tag = TAG }, &a), 0);
        ck_assert_uint_eq(pad_lease_granted(a), 3);
        /* 1 free of 4: min 2 is refused at once. */
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, &(pad_acquire_opts) { .min = 2 }, &busy), -EBUSY);
        /* A wait that ends with a grant when a is released meanwhile is hard to time here;
         * a wait that times out is counted as a wait too. */
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY,
                                            &(pad_acquire_opts) { .min = 2, .wait_usec = 50000 }, &busy),
                         -ETIMEDOUT);
        ck_assert_int_eq(pad_client_acquire(c, 1, PAD_NODE_ANY, NULL, &b), 0);

        ck_assert_int_eq(pad_broker_statistics_get(c, &s, msg, sizeof msg), 0);
        ck_assert_str_eq(msg, "");
        ck_assert_uint_eq(counter(s, "grants"), 2);
        ck_assert_uint_eq(counter(s, "helpers_granted"), 4);
        ck_assert_uint_eq(counter(s, "denied_busy"), 1);
        ck_assert_uint_eq(counter(s, "denied_timeout"), 1);
        ck_assert_uint_eq(counter(s, "waits"), 1);
        ck_assert_uint_eq(counter(s, "grants"), broker_counter("grants"));
        ck_assert_int_eq(pad_broker_statistics_counter(s, "no_such_counter", NULL), -ENOENT);

        /* The histogram: ascending bounds ending at UINT64_MAX, holding the one wait. */
        ck_assert_uint_ge(s->n_wait_buckets, 2);
        for (unsigned i = 0; i < s->n_wait_buckets; i++) {
                if (i > 0)
                        ck_assert_uint_gt(s->wait_buckets[i].le_usec, s->wait_buckets[i - 1].le_usec);
                bucketed += s->wait_buckets[i].count;
        }
        ck_assert_uint_eq(s->wait_buckets[s->n_wait_buckets - 1].le_usec, UINT64_MAX);
        ck_assert_uint_eq(bucketed, 1);
        ck_assert_uint_ge(s->wait_usec_sum, 40000);

        /* Per node: the slots granted add up; per user: this uid has both grants. */
        ck_assert_uint_ge(s->n_nodes, 1);
        for (unsigned i = 0; i < s->n_nodes; i++) {
                ck_assert_int_ge(s->nodes[i].id, 0);
                node_helpers += s->nodes[i].helpers;
        }
        ck_assert_uint_eq(node_helpers, 4);
        for (unsigned i = 0; i < s->n_users; i++)
                if (s->users[i].id == (int64_t) getuid()) {
                        ck_assert_uint_eq(s->users[i].grants, 2);
                        ck_assert_uint_eq(s->users[i].helpers, 4);
                        mine = true;
                }
        ck_assert(mine);
        s = pad_broker_statistics_free(s);
        ck_assert_ptr_null(s);
        ck_assert_ptr_null(pad_broker_statistics_free(NULL));
        ck_assert_int_eq(pad_broker_statistics_get(c, NULL, msg, sizeof msg), -EINVAL);

        /* Without paddd: -EHOSTDOWN, said so. */
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(pad_broker_statistics_get(c, &s, msg, sizeof msg), -EHOSTDOWN);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(msg, "not running"), "%s", msg);

        pad_lease_free(a);
        pad_lease_free(b);
        pad_client_free(c);
        fixture_stop(&fixture);
}
END_TEST

/* Poll the watch up to ms: the first non-zero pad_broker_watch_process(), else 0. */
static int watch_wait(pad_broker_watch *w, int ms) {
        long long deadline = fixture_now_ms() + ms;

        for (;;) {
                struct pollfd p = { .fd = pad_broker_watch_get_fd(w), .events = (short) pad_broker_watch_get_events(w) };
                long long left = deadline - fixture_now_ms();
                int r;

                ck_assert_int_ge(p.fd, 0);
                r = pad_broker_watch_process(w);
                if (r != 0)
                        return r;
                if (left <= 0)
                        return 0;
                ck_assert_int_ge(poll(&p, 1, (int) left), 0);
        }
}

START_TEST(test_watch) {
        pad_client *c = NULL;
        pad_broker_watch *w = NULL;
        pad_lease *l = NULL;
        char msg[MSG_MAX] = "x";

        start_broker();
        ck_assert_int_eq(pad_client_new(fixture.address, &c), 0);
        ck_assert_int_eq(pad_broker_watch_new(c, &w, msg, sizeof msg), 0);
        ck_assert_str_eq(msg, "");
        ck_assert_int_eq(pad_broker_watch_get_events(NULL), -EINVAL);
        /* paddd's first signal after its start may still be on its way (a slow paddd, under
         * valgrind); after it, nothing happens and nothing is reported. */
        (void) watch_wait(w, 500);
        ck_assert_int_eq(watch_wait(w, 300), 0);

        /* A grant changes InUse and Leases; a quota change MaxHelpers; a release both. */
        ck_assert_int_eq(pad_client_acquire(c, 2, PAD_NODE_ANY, NULL, &l), 0);
        ck_assert_int_eq(watch_wait(w, 5000), 1);
        ck_assert_int_eq(watch_wait(w, 200), 0);
        ck_assert_int_eq(pad_broker_set_quota(c, PAD_NODE_ANY, 3, msg, sizeof msg), 0);
        ck_assert_int_eq(watch_wait(w, 5000), 1);
        l = pad_lease_free(l);
        ck_assert_int_eq(watch_wait(w, 5000), 1);

        /* paddd going away and coming back are changes too (its name's owner). */
        ck_assert_int_eq(watch_wait(w, 200), 0);
        ck_assert_int_eq(fixture_kill_paddd(&fixture), 0);
        ck_assert_int_eq(watch_wait(w, 5000), 1);
        ck_assert_int_eq(fixture_start_paddd(&fixture), 0);
        ck_assert_int_eq(watch_wait(w, 5000), 1);

        /* The bus itself gone: -ECONNRESET. */
        fixture_stop(&fixture);
        ck_assert_int_eq(watch_wait(w, 5000), -ECONNRESET);
        ck_assert_ptr_null(pad_broker_watch_free(w));
        ck_assert_ptr_null(pad_broker_watch_free(NULL));
        pad_client_free(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("admin");
        TCase *tc = tcase_create("broker");

        check_need_env("test-admin", "PADDD_BIN");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_status);
        tcase_add_test(tc, test_list_leases);
        tcase_add_test(tc, test_set_quota_reload);
        tcase_add_test(tc, test_no_broker);
        tcase_add_test(tc, test_statistics);
        tcase_add_test(tc, test_watch);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
