/* broker-stats.c: the broker's statistics for programs (pad_broker_statistics_get): the
 * GetStatistics answer (counters, the wait histogram and its sum, grants per node and per
 * user) read into one structure of flat arrays, through the admin calls of broker-admin.c.
 * Nothing is cached; every call asks paddd. */
#include "internal.h"

#include <string.h>

#include "broker-contract.h"
#include "util.h"

_public_ pad_broker_statistics *pad_broker_statistics_free(pad_broker_statistics *s) {
        if (!s)
                return NULL;
        for (unsigned i = 0; i < s->n_counters; i++)
                free(s->counters[i].name);
        free(s->counters);
        free(s->wait_buckets);
        free(s->nodes);
        free(s->users);
        free(s);
        return NULL;
}

/* Room for one more element of size `size` in *array of *n. */
static void *array_grow(void **array, unsigned n, size_t size) {
        char *a = realloc(*array, size * (n + 1));

        if (!a)
                return NULL;
        *array = a;
        return a + size * n;
}

static int read_counters(sd_bus_message *m, pad_broker_statistics *s) {
        const char *name;
        uint64_t v;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{st}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "{st}", &name, &v)) > 0) {
                pad_broker_counter *e = array_grow((void **) &s->counters, s->n_counters, sizeof(*e));

                if (!e)
                        return -ENOMEM;
                e->name = strdup(name);
                if (!e->name)
                        return -ENOMEM;
                e->value = v;
                s->n_counters++;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int read_histogram(sd_bus_message *m, pad_broker_statistics *s) {
        uint64_t le, count;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(tt)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(tt)", &le, &count)) > 0) {
                pad_broker_wait_bucket *b = array_grow((void **) &s->wait_buckets, s->n_wait_buckets,
                                                       sizeof(*b));

                if (!b)
                        return -ENOMEM;
                *b = (pad_broker_wait_bucket) { .le_usec = le, .count = count };
                s->n_wait_buckets++;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* a(itt) (signed: nodes) or a(utt) (unsigned: users) into *array. */
static int read_grant_counts(sd_bus_message *m, bool is_signed, pad_broker_grant_count **array,
                             unsigned *n) {
        const char *sig = is_signed ? "(itt)" : "(utt)";
        union { int32_t i; uint32_t u; } id;
        uint64_t grants, helpers;
        int r;

        r = sd_bus_message_enter_container(m, 'a', sig);
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, sig, &id, &grants, &helpers)) > 0) {
                pad_broker_grant_count *g = array_grow((void **) array, *n, sizeof(*g));

                if (!g)
                        return -ENOMEM;
                *g = (pad_broker_grant_count) {
                        .id = is_signed ? (int64_t) id.i : (int64_t) id.u,
                        .grants = grants,
                        .helpers = helpers,
                };
                (*n)++;
        }
        return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int read_statistics(sd_bus_message *m, void *obj) {
        pad_broker_statistics *s = obj;
        int r = read_counters(m, s);

        if (r >= 0)
                r = read_histogram(m, s);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &s->wait_usec_sum);
        if (r >= 0)
                r = read_grant_counts(m, true, &s->nodes, &s->n_nodes);
        if (r >= 0)
                r = read_grant_counts(m, false, &s->users, &s->n_users);
        return r;
}

static void *statistics_free(void *s) {
        return pad_broker_statistics_free(s);
}

_public_ int pad_broker_statistics_get(pad_client *c, pad_broker_statistics **ret, char *ret_msg,
                                       size_t ret_msg_len) {
        return admin_get(c, BROKER_INTERFACE, "GetStatistics", NULL, sizeof(**ret), read_statistics,
                         statistics_free, (void **) ret, ret_msg, ret_msg_len);
}

_public_ int pad_broker_statistics_counter(const pad_broker_statistics *s, const char *name, uint64_t *ret) {
        if (!s || !name)
                return -EINVAL;
        for (unsigned i = 0; i < s->n_counters; i++)
                if (streq(s->counters[i].name, name)) {
                        if (ret)
                                *ret = s->counters[i].value;
                        return 0;
                }
        return -ENOENT;
}
