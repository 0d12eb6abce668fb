/* test-state.c: paddd's books without a bus: the records (state.c) round trip and refuse
 * damage at the record that is wrong; the store (state-store.c) on a memfd keeps what was
 * committed across a reopen, ignores a record written past a header that was never
 * committed, compacts into a snapshot without losing or reviving a lease, and refuses a
 * damaged header. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "state-store.h"
#include "state.h"

static StateLease sample(uint64_t id) {
        StateLease l = {
                .id = id,
                .uid = 1000 + (uid_t) id,
                .pid = 4000 + (pid_t) id,
                .start_time = 777000 + id,
                .ttl_deadline = id % 2 ? 0 : 123456789 + id,
                .sched = { .policy = 0, .nice = -5, .rt_priority = 0 },
                .n_placement = 2,
                .placement = { { .node = 0, .helpers = 3 }, { .node = 1, .helpers = (unsigned) id % 7 + 1 } },
        };

        snprintf(l.owner, sizeof l.owner, ":1.%llu", (unsigned long long) id * 3);
        snprintf(l.tag, sizeof l.tag, "vm %llu: qemu, with spaces", (unsigned long long) id);
        return l;
}

static void assert_lease_eq(const StateLease *a, const StateLease *b) {
        ck_assert_uint_eq(a->id, b->id);
        ck_assert_str_eq(a->owner, b->owner);
        ck_assert_uint_eq(a->uid, b->uid);
        ck_assert_int_eq(a->pid, b->pid);
        ck_assert_uint_eq(a->start_time, b->start_time);
        ck_assert_uint_eq(a->ttl_deadline, b->ttl_deadline);
        ck_assert_int_eq(a->sched.policy, b->sched.policy);
        ck_assert_int_eq(a->sched.nice, b->sched.nice);
        ck_assert_uint_eq(a->sched.rt_priority, b->sched.rt_priority);
        ck_assert_str_eq(a->tag, b->tag);
        ck_assert_uint_eq(a->n_placement, b->n_placement);
        for (unsigned i = 0; i < a->n_placement; i++) {
                ck_assert_int_eq(a->placement[i].node, b->placement[i].node);
                ck_assert_uint_eq(a->placement[i].helpers, b->placement[i].helpers);
        }
}

static int apply(StateBooks *b, const char *text, bool snapshot, unsigned *line) {
        return state_apply(b, text, strlen(text), snapshot, line);
}

START_TEST(test_records_round_trip) {
        StateBooks b = { .next_id = 1 }, c = { .next_id = 1 };
        StateLease l1 = sample(7), l2 = sample(9);
        char buf[STATE_RECORD_MAX], *snap = NULL;
        size_t len;
        unsigned line = 0;

        ck_assert_int_eq(state_apply(&b, buf, state_format_lease(&l1, buf), false, &line), 0);
        ck_assert_int_eq(state_apply(&b, buf, state_format_lease(&l2, buf), false, &line), 0);
        ck_assert_uint_eq(b.n_leases, 2);
        ck_assert_uint_eq(b.next_id, 10);
        assert_lease_eq(&b.leases[0], &l1);
        assert_lease_eq(&b.leases[1], &l2);

        l1.n_placement = 1;
        ck_assert_int_eq(state_apply(&b, buf, state_format_shrink(7, l1.placement, 1, buf), false, &line), 0);
        assert_lease_eq(&b.leases[0], &l1);
        ck_assert_int_eq(state_apply(&b, buf, state_format_shrink(9, NULL, 0, buf), false, &line), 0);
        ck_assert_uint_eq(b.leases[1].n_placement, 0);

        memcpy(b.bus_id, "0123456789abcdef0123456789abcdef", 33);
        b.next_id = 40;
        ck_assert_int_eq(state_format_snapshot(&b, &snap, &len), 0);
        ck_assert_int_eq(state_apply(&c, snap, len, true, &line), 0);
        ck_assert_str_eq(c.bus_id, b.bus_id);
        ck_assert_uint_eq(c.next_id, 40);
        ck_assert_uint_eq(c.n_leases, 2);
        assert_lease_eq(&c.leases[0], &b.leases[0]);
        assert_lease_eq(&c.leases[1], &b.leases[1]);

        ck_assert_int_eq(state_apply(&c, buf, state_format_drop(7, buf), false, &line), 0);
        ck_assert_uint_eq(c.n_leases, 1);
        ck_assert_uint_eq(c.leases[0].id, 9);
        free(snap);
        state_books_done(&b);
        state_books_done(&c);
}
END_TEST

/* Each is refused at the line given, after the good lines before it. */
static const struct {
        const char *text;
        unsigned line;
} bad_records[] = {
        { "L 1 :1.1 0 10 0 0 0 0 0 - 0:1\nL 1 :1.2 0 10 0 0 0 0 0 - 0:1\n", 2 },   /* id twice */
        { "L 5 :1.1 0 10 0 0 0 0 0 - 0:1\nL 3 :1.2 0 10 0 0 0 0 0 - 0:1\n", 2 },   /* id went back */
        { "D 4\n", 1 },                                                         /* unknown id */
        { "G 4 0:1\n", 1 },
        { "L 1 1.1 0 10 0 0 0 0 0 - 0:1\n", 1 },                                  /* not a unique name */
        { "L 1 :1.1 0 0 0 0 0 0 0 - 0:1\n", 1 },                                  /* pid 0 */
        { "L 1 :1.1 0 10 0 0 0 20 0 - 0:1\n", 1 },                                /* nice 20 */
        { "L 1 :1.1 0 -2147483648 0 0 0 0 0 - 0:1\n", 1 },                     /* pid INT_MIN */
        { "L 1 :1.1 0 -5 0 0 0 0 0 - 0:1\n", 1 },                              /* pid < 0 */
        { "L 1 :1.1 0 10 0 0 0 -21 0 - 0:1\n", 1 },                            /* nice -21 */
        { "L 1 :1.1 0 10 0 0 0 0 0 - 0:0\n", 1 },                                 /* 0 helpers */
        { "L 1 :1.1 0 10 0 0 0 0 0 - 0:4097\n", 1 },
        { "L 1 :1.1 0 10 0 0 0 0 0 - 1024:1\n", 1 },                              /* node id */
        { "L 1 :1.1 0 10 0 0 0 0 0 6 0:1\n", 1 },                                 /* odd hex */
        { "L 1 :1.1 0 10 0 0 0 0 0 - 0:1", 1 },                                   /* torn */
        { "L 1 :1.1 0 10 0 0 0 0 0 -\n", 1 },                                     /* fields */
        { "N 5\n", 1 },                                                         /* journal */
        { "X 1\n", 1 },
        { "\n", 1 },
};

START_TEST(test_records_refused) {
        StateBooks b = { .next_id = 1 };
        unsigned line = 0;

        ck_assert_int_eq(apply(&b, bad_records[_i].text, false, &line), -EBADMSG);
        ck_assert_msg(line == bad_records[_i].line, "case %d: line %u, want %u", _i, line, bad_records[_i].line);
        state_books_done(&b);
}
END_TEST

/* A G record refused for its placement leaves the lease's placement as it was. */
START_TEST(test_shrink_refused_keeps_lease) {
        StateBooks b = { .next_id = 1 };
        unsigned line = 0;

        ck_assert_int_eq(apply(&b, "L 1 :1.1 0 10 0 0 0 0 0 - 0:3,1:2\nG 1 0:3,1:x\n", false, &line), -EBADMSG);
        ck_assert_uint_eq(line, 2);
        ck_assert_uint_eq(b.n_leases, 1);
        ck_assert_uint_eq(b.leases[0].n_placement, 2);
        ck_assert_int_eq(b.leases[0].placement[1].node, 1);
        ck_assert_uint_eq(b.leases[0].placement[1].helpers, 2);
        state_books_done(&b);
}
END_TEST

START_TEST(test_snapshot_next_id_below_leases) {
        StateBooks b = { .next_id = 1 };
        unsigned line = 0;

        ck_assert_int_eq(apply(&b, "B -\nL 8 :1.1 0 10 0 0 0 0 0 - -\nN 5\n", true, &line), -EBADMSG);
        ck_assert_uint_eq(line, 3);
        state_books_done(&b);
}
END_TEST

static int store_new(int fd, StateStore **ret) {
        int dup_fd = dup(fd);

        ck_assert_int_ge(dup_fd, 0);
        return state_store_new(dup_fd, ret);
}

static StateBooks load(int fd) {
        StateStore *s = NULL;
        StateBooks b;
        const char *what = NULL;

        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_msg(state_store_load(s, &b, &what) == 0, "load: %s", what ? what : "?");
        state_store_free(s);
        return b;
}

START_TEST(test_store_reopen_and_torn) {
        int fd = memfd_create("books", MFD_CLOEXEC);
        char buf[STATE_RECORD_MAX];
        StateStore *s = NULL;
        StateBooks b;
        struct stat st;
        const char *what;
        StateLease l = sample(3);

        ck_assert_int_ge(fd, 0);
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 0);
        ck_assert_uint_eq(b.next_id, 1);

        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_append(s, buf, state_format_lease(&l, buf)), 0);
        l = sample(4);
        ck_assert_int_eq(state_store_append(s, buf, state_format_lease(&l, buf)), 0);
        state_store_free(s);

        /* A paddd killed in the middle of its last write: that line is cut short. */
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_eq(ftruncate(fd, st.st_size - 5), 0);
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 1);
        ck_assert_uint_eq(b.leases[0].id, 3);
        state_books_done(&b);

        /* The next paddd appends over the torn line; its record counts, the torn one not. */
        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_load(s, &b, &what), 0);
        state_books_done(&b);
        l = sample(5);
        ck_assert_int_eq(state_store_append(s, buf, state_format_lease(&l, buf)), 0);
        state_store_free(s);
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 2);
        ck_assert_uint_eq(b.leases[0].id, 3);
        ck_assert_uint_eq(b.leases[1].id, 5);
        state_books_done(&b);

        /* A line without its check (written by anything else) ends the journal too. */
        ck_assert_int_eq(fstat(fd, &st), 0);
        l = sample(6);
        ck_assert_int_eq(pwrite(fd, buf, state_format_lease(&l, buf), st.st_size), (ssize_t) strlen(buf));
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 2);
        state_books_done(&b);
        close(fd);
}
END_TEST

/* A journal damaged mid-way ends at the damage; an append over the damage does not bring
 * back the lines after it, even when it ends exactly where one of them begins. */
START_TEST(test_store_append_over_damage) {
        int fd = memfd_create("books", MFD_CLOEXEC);
        char buf[STATE_RECORD_MAX];
        StateStore *s = NULL;
        StateLease l1 = sample(1), l2 = sample(2);
        StateBooks b;
        const char *what;
        size_t len1;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(store_new(fd, &s), 0);
        len1 = state_format_lease(&l1, buf);
        ck_assert_int_eq(state_store_append(s, buf, len1), 0);
        ck_assert_int_eq(state_store_append(s, "D 1\n", 4), 0);
        ck_assert_int_eq(state_store_append(s, buf, state_format_lease(&l2, buf)), 0);
        state_store_free(s);
        /* The D line's newline, 4096 + the framed L line + "D 1 *xxxxxxxx", is damaged. */
        ck_assert_int_eq(pwrite(fd, "&", 1, 4096 + len1 + 10 + 13), 1);

        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_load(s, &b, &what), 0);
        ck_assert_uint_eq(b.n_leases, 1);
        state_books_done(&b);
        ck_assert_int_eq(state_store_append(s, "D 1\n", 4), 0);      /* as long as the damaged line */
        state_store_free(s);
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 0);
        state_books_done(&b);
        close(fd);
}
END_TEST

/* One append of many short records: each grows by its check, and all of them count. */
START_TEST(test_store_append_many_short) {
        int fd = memfd_create("books", MFD_CLOEXEC);
        char records[STATE_RECORD_MAX * 2];
        StateStore *s = NULL;
        StateLease l = sample(1);
        StateBooks b;
        size_t len;

        ck_assert_int_ge(fd, 0);
        len = state_format_lease(&l, records);
        for (unsigned i = 0; i < 40; i++)
                len += state_format_shrink(1, l.placement, 1, records + len);
        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_append(s, records, len), 0);
        state_store_free(s);
        b = load(fd);
        ck_assert_uint_eq(b.n_leases, 1);
        ck_assert_uint_eq(b.leases[0].n_placement, 1);
        state_books_done(&b);
        close(fd);
}
END_TEST

START_TEST(test_store_compaction) {
        int fd = memfd_create("books", MFD_CLOEXEC);
        StateBooks mirror = { .next_id = 1 }, b;
        char buf[STATE_RECORD_MAX];
        StateStore *s = NULL;
        const char *what;
        unsigned line, snapshots = 0;
        struct stat st;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_load(s, &b, &what), 0);
        state_books_done(&b);
        /* 3000 leases granted, every other one ended, a snapshot whenever the store asks. */
        for (uint64_t id = 1; id <= 3000; id++) {
                StateLease l = sample(id);
                size_t n = state_format_lease(&l, buf);

                ck_assert_int_eq(state_apply(&mirror, buf, n, false, &line), 0);
                ck_assert_int_eq(state_store_append(s, buf, n), 0);
                if (id % 2 == 0) {
                        n = state_format_drop(id - 1, buf);
                        ck_assert_int_eq(state_apply(&mirror, buf, n, false, &line), 0);
                        ck_assert_int_eq(state_store_append(s, buf, n), 0);
                }
                if (state_store_wants_snapshot(s)) {
                        char *snap;
                        size_t len;

                        ck_assert_int_eq(state_format_snapshot(&mirror, &snap, &len), 0);
                        ck_assert_int_eq(state_store_write_snapshot(s, snap, len), 0);
                        free(snap);
                        snapshots++;
                }
        }
        state_store_free(s);
        ck_assert_uint_ge(snapshots, 2);

        b = load(fd);
        ck_assert_uint_eq(b.n_leases, mirror.n_leases);
        ck_assert_uint_eq(b.n_leases, 1500);
        for (size_t i = 0; i < b.n_leases; i++)
                assert_lease_eq(&b.leases[i], &mirror.leases[i]);
        ck_assert_uint_eq(b.next_id, 3001);
        /* Compaction keeps the file near its content, not its history. */
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_lt(st.st_size, 4 * 1500 * 128 + (1 << 20));
        state_books_done(&b);
        state_books_done(&mirror);
        close(fd);
}
END_TEST

START_TEST(test_store_damaged_header) {
        int fd = memfd_create("books", MFD_CLOEXEC);
        char buf[STATE_RECORD_MAX];
        StateLease l = sample(1);
        StateStore *s = NULL;
        StateBooks b;
        const char *what = NULL;

        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_append(s, buf, state_format_lease(&l, buf)), 0);
        state_store_free(s);
        ck_assert_int_eq(pwrite(fd, "X", 1, 20), 1);

        ck_assert_int_eq(store_new(fd, &s), 0);
        ck_assert_int_eq(state_store_load(s, &b, &what), -EBADMSG);
        ck_assert_ptr_nonnull(what);
        state_store_free(s);
        close(fd);
}
END_TEST

int main(void) {
        Suite *s = suite_create("state");
        TCase *tc = tcase_create("records");

        tcase_add_test(tc, test_records_round_trip);
        tcase_add_loop_test(tc, test_records_refused, 0, (int) (sizeof bad_records / sizeof bad_records[0]));
        tcase_add_test(tc, test_shrink_refused_keeps_lease);
        tcase_add_test(tc, test_snapshot_next_id_below_leases);
        suite_add_tcase(s, tc);
        tc = tcase_create("store");
        tcase_add_test(tc, test_store_reopen_and_torn);
        tcase_add_test(tc, test_store_append_many_short);
        tcase_add_test(tc, test_store_append_over_damage);
        tcase_add_test(tc, test_store_compaction);
        tcase_add_test(tc, test_store_damaged_header);
        suite_add_tcase(s, tc);

        return check_run_suite(s);
}
