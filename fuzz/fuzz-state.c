/* fuzz-state.c: libFuzzer target of paddd's books: the record parser (daemon/state.c) and
 * the store (daemon/state-store.c) on a memfd. The first input byte holds flags.
 *
 * Records (flag 1 clear): the rest, split at its first NUL, is a snapshot applied with
 * snapshot=true and a journal applied after it with snapshot=false. A failure at line k must
 * leave the books as the first k-1 lines made them; books that load must format into a
 * snapshot that loads back into the same books.
 *
 * Store (flag 1 set): with flag 2 clear the rest is the raw file; with flag 2 set it is split
 * at NULs into a snapshot, journal records (appended one line per call with flag 4) and
 * damage (3-byte groups: 16-bit offset, byte to xor there) applied to a store built through
 * state_store_write_snapshot and state_store_append. Books that load are then kept through
 * an append and a compaction, each reloaded by a second store on the same file as a
 * restarted paddd would, and must come back as written. Any violation abort()s. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz-common.h"
#include "state-store.h"
#include "state.h"

#define FLAG_STORE 1u
#define FLAG_BUILT 2u
#define FLAG_LINE_BY_LINE 4u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lease_eq(const StateLease *a, const StateLease *b) {
        if (a->id != b->id || !streq(a->owner, b->owner) || a->uid != b->uid || a->pid != b->pid ||
            a->ttl_deadline != b->ttl_deadline || a->sched.policy != b->sched.policy ||
            a->sched.nice != b->sched.nice || a->sched.rt_priority != b->sched.rt_priority ||
            !streq(a->tag, b->tag) || a->n_placement != b->n_placement)
                return false;
        for (unsigned i = 0; i < a->n_placement; i++)
                if (a->placement[i].node != b->placement[i].node ||
                    a->placement[i].helpers != b->placement[i].helpers)
                        return false;
        return true;
}

static bool books_eq(const StateBooks *a, const StateBooks *b) {
        if (!streq(a->bus_id, b->bus_id) || a->next_id != b->next_id || a->n_leases != b->n_leases)
                return false;
        for (size_t i = 0; i < a->n_leases; i++)
                if (!lease_eq(&a->leases[i], &b->leases[i]))
                        return false;
        return true;
}

/* Ids ascending and below next_id, placements within the limits state.h names. */
static void check_books(const StateBooks *b) {
        check(b->next_id >= 1, "next_id is 0");
        for (size_t i = 0; i < b->n_leases; i++) {
                const StateLease *l = &b->leases[i];

                check(l->id >= 1 && l->id < b->next_id, "a lease id at or past next_id");
                check(i == 0 || b->leases[i - 1].id < l->id, "lease ids not ascending");
                check(l->n_placement <= STATE_PLACEMENT_MAX, "a placement too long");
                check(l->pid >= 1, "a pid below 1");
                for (unsigned k = 0; k < l->n_placement; k++)
                        check(l->placement[k].helpers >= 1 && l->placement[k].helpers <= BROKER_HELPERS_MAX &&
                              l->placement[k].node >= 0 && l->placement[k].node <= BROKER_NODE_ID_MAX,
                              "a placement entry out of range");
        }
}

/* The snapshot of b, applied to empty books, gives b back. */
static void check_round_trip(const StateBooks *b) {
        StateBooks again = { .next_id = 1 };
        char *text = NULL;
        size_t len;
        unsigned line = 0;

        check(state_format_snapshot(b, &text, &len) == 0, "state_format_snapshot failed");
        check(state_apply(&again, text, len, true, &line) == 0, "a formatted snapshot does not apply");
        check(books_eq(b, &again), "a formatted snapshot applies to other books");
        state_books_done(&again);
        free(text);
}

/* The offset of the start of the 1-based line in text. */
static size_t line_offset(const char *text, size_t len, unsigned line) {
        size_t off = 0;

        for (unsigned l = 1; l < line; l++) {
                const char *nl = memchr(text + off, '\n', len - off);

                check(nl != NULL, "an error line past the text");
                off = (size_t) (nl - text) + 1;
        }
        return off;
}

/* Apply snap then journal; on failure the books must be what the lines before the bad one
 * made. Returns the books in *ret (valid or not) and whether all applied. */
static bool apply_both(const char *snap, size_t snap_len, const char *journal, size_t journal_len,
                       StateBooks *ret) {
        StateBooks b = { .next_id = 1 }, prefix = { .next_id = 1 };
        unsigned line = 0;
        int r;

        r = state_apply(&b, snap, snap_len, true, &line);
        if (r == 0) {
                r = state_apply(&b, journal, journal_len, false, &line);
                if (r < 0) {
                        check(r == -EBADMSG, "state_apply: an error other than -EBADMSG");
                        check(state_apply(&prefix, snap, snap_len, true, &line) == 0,
                              "a snapshot that applied once does not apply again");
                        check(state_apply(&prefix, journal, line_offset(journal, journal_len, line),
                                          false, &line) == 0,
                              "the journal before its bad line does not apply");
                }
        } else {
                check(r == -EBADMSG, "state_apply: an error other than -EBADMSG");
                check(state_apply(&prefix, snap, line_offset(snap, snap_len, line), true, &line) == 0,
                      "the snapshot before its bad line does not apply");
        }
        if (r < 0)
                check(books_eq(&b, &prefix), "a bad line changed the books");
        state_books_done(&prefix);
        *ret = b;
        return r == 0;
}

static void fuzz_records(const char *text, size_t len) {
        const char *nul = memchr(text, '\0', len);
        size_t snap_len = nul ? (size_t) (nul - text) : len;
        StateBooks b;

        if (apply_both(text, snap_len, nul ? nul + 1 : "", nul ? len - snap_len - 1 : 0, &b)) {
                check_books(&b);
                check_round_trip(&b);
        }
        state_books_done(&b);
}

static int memfd_with(const void *p, size_t n) {
        int fd = memfd_create("fuzz-books", MFD_CLOEXEC);

        if (fd < 0 || (n > 0 && pwrite(fd, p, n, 0) != (ssize_t) n))
                abort();
        return fd;
}

/* Load the books of fd's file through a new store, as a restarted paddd does. */
static int reload(int fd, StateBooks *ret, const char **ret_what) {
        StateStore *s = NULL;
        int r, dfd = dup(fd);

        if (dfd < 0 || state_store_new(dfd, &s) < 0)
                abort();
        r = state_store_load(s, ret, ret_what);
        state_store_free(s);
        return r;
}

/* Loaded books must survive an append and a compaction as written. */
static void check_store_keeps(StateStore *s, int fd, StateBooks *b) {
        StateBooks again;
        const char *what;
        char rec[STATE_RECORD_MAX], *text = NULL;
        size_t len;

        check_books(b);
        if (b->n_leases > 0) {
                len = state_format_drop(b->leases[0].id, rec);
                check(state_store_append(s, rec, len) == 0, "state_store_append failed");
                check(reload(fd, &again, &what) == 0, "an appended journal does not load");
                memmove(b->leases, b->leases + 1, (b->n_leases - 1) * sizeof(*b->leases));
                b->n_leases--;
                check(books_eq(b, &again), "an appended record did not come back as written");
                state_books_done(&again);
        }
        check(state_format_snapshot(b, &text, &len) == 0, "state_format_snapshot failed");
        check(state_store_write_snapshot(s, text, len) == 0, "state_store_write_snapshot failed");
        check(reload(fd, &again, &what) == 0, "a compacted store does not load");
        check(books_eq(b, &again), "a compacted store lost or changed books");
        state_books_done(&again);
        free(text);
}

/* Split at the next NUL: *p..ret is one part, *p moves past it. */
static size_t next_part(const char **p, const char *end) {
        const char *nul = memchr(*p, '\0', (size_t) (end - *p));
        size_t n = nul ? (size_t) (nul - *p) : (size_t) (end - *p);

        *p += nul ? n + 1 : n;
        return n;
}

static int built_store(const char *text, size_t len, bool line_by_line) {
        const char *p = text, *end = text + len, *snap, *journal, *damage;
        size_t snap_len, journal_len, damage_len;
        StateStore *s = NULL;
        int fd = memfd_create("fuzz-books", MFD_CLOEXEC), dfd;

        snap = p;
        snap_len = next_part(&p, end);
        journal = p;
        journal_len = next_part(&p, end);
        damage = p;
        damage_len = (size_t) (end - p);

        dfd = fd < 0 ? -1 : dup(fd);
        if (dfd < 0 || state_store_new(dfd, &s) < 0)
                abort();
        if (snap_len > 0)
                check(state_store_write_snapshot(s, snap, snap_len) == 0, "state_store_write_snapshot failed");
        for (size_t pos = 0; pos < journal_len;) {
                const char *nl = line_by_line ? memchr(journal + pos, '\n', journal_len - pos) : NULL;
                size_t k = nl ? (size_t) (nl - journal - pos) + 1 : journal_len - pos;

                check(state_store_append(s, journal + pos, k) == 0, "state_store_append failed");
                pos += k;
        }
        state_store_free(s);
        for (size_t i = 0; i + 3 <= damage_len; i += 3) {
                unsigned char ch;
                off_t off = (off_t) ((unsigned char) damage[i] | (unsigned char) damage[i + 1] << 8);

                if (pread(fd, &ch, 1, off) == 1) {
                        ch ^= (unsigned char) damage[i + 2];
                        if (pwrite(fd, &ch, 1, off) != 1)
                                abort();
                }
        }
        return fd;
}

static void fuzz_store(const char *text, size_t len, unsigned flags) {
        int fd = flags & FLAG_BUILT ? built_store(text, len, flags & FLAG_LINE_BY_LINE) : memfd_with(text, len);
        StateStore *s = NULL;
        StateBooks b = { .next_id = 1 };
        const char *what = NULL;
        int r, dfd = dup(fd);

        if (dfd < 0 || state_store_new(dfd, &s) < 0)
                abort();
        r = state_store_load(s, &b, &what);
        if (r == 0)
                check_store_keeps(s, fd, &b);
        else
                check(r == -EBADMSG && what != NULL, "state_store_load: an error without its reason");
        state_books_done(&b);
        state_store_free(s);
        close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        if (data[0] & FLAG_STORE)
                fuzz_store((const char *) data + 1, size - 1, data[0]);
        else
                fuzz_records((const char *) data + 1, size - 1);
        return 0;
}
