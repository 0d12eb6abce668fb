/* stats.h: paddd's counters since it started, never reset by a reload: grants and helpers
 * granted (machine-wide, per node, per user), refusals by reason, waits with a histogram of
 * how long they took, leases reclaimed from vanished clients, ttl expiries, shrinks, raises,
 * reloads. Pure data with no I/O; the manager and the bus layer count, broker-bus.c shows
 * them (GetStatistics). */
#pragma once

#include <stdint.h>
#include <sys/types.h>

typedef enum StatsCounter {
        STATS_GRANTS,                   /* leases granted, now or to a waiter */
        STATS_HELPERS_GRANTED,          /* slots in them */
        STATS_DENIED_BUSY,              /* fewer than min free, or min above every cap */
        STATS_DENIED_LIMITS,            /* LimitsExceeded */
        STATS_DENIED_TIMEOUT,           /* a wait that ran out */
        STATS_DENIED_ACCESS,            /* AccessDenied: not the owner, not an admin, no creds */
        STATS_DENIED_INVALID,           /* InvalidArgs and NoSuchNode */
        STATS_WAITS,                    /* Acquire calls that were queued */
        STATS_RECLAIMED,                /* leases of clients that went away */
        STATS_TTL_EXPIRED,
        STATS_SHRINKS,
        STATS_RELEASES,
        STATS_RAISES,
        STATS_RAISES_REFUSED,
        STATS_RELOADS,
        STATS_RELOADS_FAILED,
        _STATS_COUNTER_MAX,
} StatsCounter;

/* Upper bounds (usec) of the wait-time histogram's buckets; the last is "+Inf". */
#define STATS_WAIT_BUCKETS 7
extern const uint64_t stats_wait_bounds[STATS_WAIT_BUCKETS - 1];

#define STATS_USERS_MAX 1024u           /* users counted one by one; the rest as one */
#define STATS_UID_OTHER ((uid_t) -1)

typedef struct StatsUser {
        uid_t uid;
        uint64_t grants, helpers;
} StatsUser;

typedef struct Stats {
        uint64_t counter[_STATS_COUNTER_MAX];
        uint64_t wait_bucket[STATS_WAIT_BUCKETS];      /* not cumulative */
        uint64_t wait_usec_sum;
        unsigned n_nodes;
        uint64_t *node_grants, *node_helpers;           /* by topology index */
        StatsUser *users;
        unsigned n_users;
} Stats;

int stats_init(Stats *s, unsigned n_nodes);
void stats_done(Stats *s);

/* The name of a counter, as GetStatistics and padctl metrics show it ("grants", ...). */
const char *stats_counter_name(StatsCounter c);
void stats_count(Stats *s, StatsCounter c);
/* A grant of helpers to uid, with its placement per node index. */
void stats_grant(Stats *s, uid_t uid, const unsigned *node_index, const unsigned *helpers, unsigned n);
/* A wait that ended (served or not) after usec. */
void stats_wait_ended(Stats *s, uint64_t usec);
