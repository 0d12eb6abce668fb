/* stats.c: paddd's counters (stats.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "util.h"

const uint64_t stats_wait_bounds[STATS_WAIT_BUCKETS - 1] = {
        1000, 10000, 100000, 1000000, 10000000, 60000000,
};

static const char *const counter_names[_STATS_COUNTER_MAX] = {
        [STATS_GRANTS] = "grants",
        [STATS_HELPERS_GRANTED] = "helpers_granted",
        [STATS_DENIED_BUSY] = "denied_busy",
        [STATS_DENIED_LIMITS] = "denied_limits",
        [STATS_DENIED_TIMEOUT] = "denied_timeout",
        [STATS_DENIED_ACCESS] = "denied_access",
        [STATS_DENIED_INVALID] = "denied_invalid",
        [STATS_WAITS] = "waits",
        [STATS_RECLAIMED] = "reclaimed",
        [STATS_TTL_EXPIRED] = "ttl_expired",
        [STATS_SHRINKS] = "shrinks",
        [STATS_RELEASES] = "releases",
        [STATS_RAISES] = "raises",
        [STATS_RAISES_REFUSED] = "raises_refused",
        [STATS_RELOADS] = "reloads",
        [STATS_RELOADS_FAILED] = "reloads_failed",
};

const char *stats_counter_name(StatsCounter c) {
        return c >= 0 && c < _STATS_COUNTER_MAX ? counter_names[c] : NULL;
}

int stats_init(Stats *s, unsigned n_nodes) {
        *s = (Stats) { .n_nodes = n_nodes };
        s->node_grants = calloc(MAX(n_nodes, 1u), sizeof(uint64_t));
        s->node_helpers = calloc(MAX(n_nodes, 1u), sizeof(uint64_t));
        if (!s->node_grants || !s->node_helpers) {
                stats_done(s);
                return -ENOMEM;
        }
        return 0;
}

void stats_done(Stats *s) {
        free(s->node_grants);
        free(s->node_helpers);
        free(s->users);
        *s = (Stats) {};
}

void stats_count(Stats *s, StatsCounter c) {
        if (c >= 0 && c < _STATS_COUNTER_MAX)
                s->counter[c]++;
}

/* The entry of uid, made on its first grant; past STATS_USERS_MAX users, the shared
 * STATS_UID_OTHER entry. NULL only when out of memory. */
static StatsUser *stats_user(Stats *s, uid_t uid) {
        StatsUser *u;

        for (unsigned i = 0; i < s->n_users; i++)
                if (s->users[i].uid == uid)
                        return &s->users[i];
        if (s->n_users >= STATS_USERS_MAX && uid != STATS_UID_OTHER)
                return stats_user(s, STATS_UID_OTHER);
        u = realloc(s->users, (s->n_users + 1) * sizeof(*u));
        if (!u)
                return NULL;
        s->users = u;
        s->users[s->n_users] = (StatsUser) { .uid = uid };
        return &s->users[s->n_users++];
}

void stats_grant(Stats *s, uid_t uid, const unsigned *node_index, const unsigned *helpers, unsigned n) {
        StatsUser *u = stats_user(s, uid);
        uint64_t total = 0;

        for (unsigned i = 0; i < n; i++) {
                if (node_index[i] < s->n_nodes) {
                        s->node_grants[node_index[i]]++;
                        s->node_helpers[node_index[i]] += helpers[i];
                }
                total += helpers[i];
        }
        s->counter[STATS_GRANTS]++;
        s->counter[STATS_HELPERS_GRANTED] += total;
        if (u) {
                u->grants++;
                u->helpers += total;
        }
}

void stats_wait_ended(Stats *s, uint64_t usec) {
        unsigned b = 0;

        while (b < STATS_WAIT_BUCKETS - 1 && usec > stats_wait_bounds[b])
                b++;
        s->wait_bucket[b]++;
        s->wait_usec_sum += usec;
}
