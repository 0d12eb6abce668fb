/* state.h: paddd's books as text records, with no I/O. A StateLease is what a restarted
 * paddd needs to re-adopt a lease: its id, owner (unique bus name, uid, pid), placement, tag,
 * the caller's scheduling (the ceiling of RaisePriority) and its ttl deadline. StateBooks is
 * the whole table plus the next lease id and the bus it was kept on. Records are lines:
 *
 *   B <bus id>                     the bus the owners are names on (snapshot, first)
 *   L <id> <owner> <uid> <pid> <start time> <ttl deadline> <policy> <nice> <rt prio> <tag hex>
 *     <placement>
 *   G <id> <placement>             the lease shrank to this placement
 *   D <id>                         the lease ended
 *   N <next id>                    lease ids below it were given out (snapshot, last)
 *
 * where placement is "node:helpers,..." or "-" for none. A snapshot is B, L and N records; the
 * journal after it is L, G and D records, replayed in order (state-store.c keeps both). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker-contract.h"
#include "budget.h"
#include "priority.h"

#define STATE_OWNER_MAX 255u            /* a D-Bus name's longest */
#define STATE_PLACEMENT_MAX 64u         /* nodes in one lease's placement */
#define STATE_RECORD_MAX 1024u          /* one record line, newline included */

typedef struct StateLease {
        uint64_t id;
        char owner[STATE_OWNER_MAX + 1];
        uid_t uid;
        pid_t pid;
        uint64_t start_time;            /* of pid, 0: not known */
        uint64_t ttl_deadline;          /* CLOCK_MONOTONIC usec, 0: none */
        SchedParams sched;
        char tag[BROKER_TAG_MAX + 1];
        unsigned n_placement;
        BudgetPlacement placement[STATE_PLACEMENT_MAX];
} StateLease;

typedef struct StateBooks {
        char bus_id[33];                /* 32 hex digits, "" when unknown */
        uint64_t next_id;
        StateLease *leases;             /* in id order */
        size_t n_leases, n_allocated;
} StateBooks;

void state_books_done(StateBooks *b);

/* Format one record into buf (at most STATE_RECORD_MAX bytes, newline included). Returns
 * its length. */
size_t state_format_lease(const StateLease *l, char *buf);
size_t state_format_shrink(uint64_t id, const BudgetPlacement *p, unsigned n, char *buf);
size_t state_format_drop(uint64_t id, char *buf);
/* The snapshot of books: B, L and N records. 0 or -ENOMEM. */
int state_format_snapshot(const StateBooks *books, char **ret, size_t *ret_len);

/* Apply the records in text[0..len) to books. A snapshot's B and N records are accepted only
 * when snapshot is true. 0, or -EBADMSG with *ret_line set to the 1-based record that is
 * malformed or names a lease it must not (books then hold what came before it). */
int state_apply(StateBooks *books, const char *text, size_t len, bool snapshot, unsigned *ret_line);
