/* stats-bus.c: org.padata.Broker.GetStatistics: paddd's counters (stats.h) as D-Bus
 * values: the counters by name, the wait histogram with its sum, per node and per user. */
#include <stdint.h>

#include "manager.h"
#include "stats-bus.h"

static int append_counters(sd_bus_message *reply, const Stats *s) {
        int r = sd_bus_message_open_container(reply, 'a', "{st}");

        for (StatsCounter c = 0; r >= 0 && c < _STATS_COUNTER_MAX; c++)
                r = sd_bus_message_append(reply, "{st}", stats_counter_name(c), s->counter[c]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_histogram(sd_bus_message *reply, const Stats *s) {
        int r = sd_bus_message_open_container(reply, 'a', "(tt)");

        for (unsigned b = 0; r >= 0 && b < STATS_WAIT_BUCKETS; b++)
                r = sd_bus_message_append(reply, "(tt)",
                                          b < STATS_WAIT_BUCKETS - 1 ? stats_wait_bounds[b] : UINT64_MAX,
                                          s->wait_bucket[b]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r < 0 ? r : sd_bus_message_append(reply, "t", s->wait_usec_sum);
}

static int append_nodes_and_users(Manager *m, sd_bus_message *reply, const Stats *s) {
        int r = sd_bus_message_open_container(reply, 'a', "(itt)");

        for (unsigned i = 0; r >= 0 && i < s->n_nodes; i++) {
                int id;

                manager_get_node(m, i, &id, NULL, NULL, NULL);
                r = sd_bus_message_append(reply, "(itt)", id, s->node_grants[i], s->node_helpers[i]);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(utt)");
        for (unsigned i = 0; r >= 0 && i < s->n_users; i++)
                r = sd_bus_message_append(reply, "(utt)", (uint32_t) s->users[i].uid, s->users[i].grants,
                                          s->users[i].helpers);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int stats_bus_method_get(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        const Stats *s = manager_get_stats(m);
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r >= 0)
                r = append_counters(reply, s);
        if (r >= 0)
                r = append_histogram(reply, s);
        if (r >= 0)
                r = append_nodes_and_users(m, reply, s);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

