/* test-lease.c: the manager, its clients, leases and waiters with a real sd_event loop and
 * no bus: a waiting Acquire is completed through its callback exactly once (served when
 * slots come back, timed out at its deadline, or told its client went away), ttl ends a
 * lease, and the books on a memfd get every change, so that a second manager adopts what
 * the first lent and no id comes back. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "books.h"
#include "check-run.h"
#include "client.h"
#include "lease.h"
#include "manager.h"

typedef struct Completion {
        int calls;
        int r;
        Lease *lease;
} Completion;

static int on_complete(int r, Lease *l, void *userdata) {
        Completion *c = userdata;

        c->calls++;
        c->r = r;
        c->lease = l;
        return 0;
}

static Manager *manager(sd_event **ret_event, unsigned cap) {
        ManagerOptions options = { .use_files = false };
        Manager *m = NULL;
        char *error = NULL;

        ck_assert_int_ge(sd_event_new(ret_event), 0);
        ck_assert_int_eq(manager_new(*ret_event, &options, &m, &error), 0);
        ck_assert_int_eq(manager_set_quota(m, -1, cap), 0);
        for (unsigned i = 0; i < manager_get_n_nodes(m); i++) {
                int id;

                manager_get_node(m, i, &id, NULL, NULL, NULL);
                ck_assert_int_eq(manager_set_quota(m, id, cap), 0);
        }
        return m;
}

static Client *client(Manager *m, const char *name) {
        Client *c = NULL;

        uint64_t start;

        ck_assert_int_eq(priority_process_start_time(getpid(), &start), 0);
        ck_assert_int_eq(client_new(m, name, getuid(), getpid(), start, &c), 0);
        return c;
}

static AcquireRequest request(unsigned helpers, unsigned min, uint64_t wait_usec) {
        return (AcquireRequest) { .helpers = helpers, .min = min, .node = -1, .wait_usec = wait_usec, .tag = "t" };
}

/* Run the loop until done says so or a bound passes. */
static void run_until(sd_event *e, const int *calls, int want) {
        for (int i = 0; i < 2000 && *calls < want; i++)
                ck_assert_int_ge(sd_event_run(e, 10000), 0);
}

static unsigned in_use(Manager *m) {
        ManagerCounts c;

        manager_get_counts(m, &c);
        return c.in_use;
}

START_TEST(test_waiter_served_on_release) {
        sd_event *e;
        Manager *m = manager(&e, 2);
        Client *a = client(m, ":1.1"), *b = client(m, ":1.2");
        AcquireRequest req = request(2, 2, UINT64_MAX);
        Completion done = {};
        Lease *la, *lb;

        ck_assert_int_eq(lease_acquire(a, &req, on_complete, &done, &la), 0);
        ck_assert_ptr_nonnull(la);
        ck_assert_int_eq(lease_acquire(b, &req, on_complete, &done, &lb), 0);
        ck_assert_ptr_null(lb);         /* queued */
        ck_assert_int_eq(done.calls, 0);
        lease_release(la);
        ck_assert_int_eq(done.calls, 1);
        ck_assert_int_eq(done.r, 0);
        ck_assert_ptr_nonnull(done.lease);
        ck_assert_uint_eq(lease_get_granted(done.lease), 2);
        ck_assert(lease_is_owned_by(done.lease, ":1.2"));
        ck_assert_uint_eq(in_use(m), 2);
        manager_free(m);
        ck_assert_int_eq(done.calls, 1);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_waiter_timeout_and_vanish) {
        sd_event *e;
        Manager *m = manager(&e, 1);
        Client *a = client(m, ":1.1");
        AcquireRequest hold = request(1, 1, 0), wait_short = request(1, 1, 20000),
                       wait_long = request(1, 1, UINT64_MAX);
        Completion t = {}, v = {};
        Lease *l;

        ck_assert_int_eq(lease_acquire(a, &hold, on_complete, NULL, &l), 0);
        ck_assert_int_eq(lease_acquire(client(m, ":1.2"), &wait_short, on_complete, &t, &l), 0);
        ck_assert_int_eq(lease_acquire(client(m, ":1.3"), &wait_long, on_complete, &v, &l), 0);
        run_until(e, &t.calls, 1);
        ck_assert_int_eq(t.calls, 1);
        ck_assert_int_eq(t.r, PAD_ERROR_TIMEOUT);
        ck_assert(client_vanished(m, ":1.3"));
        ck_assert_int_eq(v.calls, 1);
        ck_assert_int_eq(v.r, -ECONNRESET);
        ck_assert(!client_vanished(m, ":1.3"));
        ck_assert_uint_eq(in_use(m), 1);
        manager_free(m);
        sd_event_unref(e);
}
END_TEST

START_TEST(test_ttl) {
        sd_event *e;
        Manager *m = manager(&e, 4);
        AcquireRequest req = request(3, 0, 0);
        bool fired;
        Lease *l;

        req.ttl_usec = 20000;
        ck_assert_int_eq(lease_acquire(client(m, ":1.1"), &req, on_complete, NULL, &l), 0);
        ck_assert_uint_eq(in_use(m), 3);
        for (int i = 0; i < 2000 && in_use(m) > 0; i++)
                ck_assert_int_ge(sd_event_run(e, 10000), 0);
        fired = in_use(m) == 0;
        ck_assert_msg(fired, "the ttl did not end the lease");
        manager_free(m);
        sd_event_unref(e);
}
END_TEST

static int owner_present(const StateLease *l, void *userdata) {
        return strcmp(l->owner, userdata) == 0;
}

START_TEST(test_books_across_managers) {
        const char *bus_id = "0123456789abcdef0123456789abcdef", *what = NULL;
        int fd = memfd_create("books", MFD_CLOEXEC);
        StateBooks saved = {}, none = { .next_id = 1 };
        BooksRestored restored;
        AcquireRequest req = request(2, 0, 0);
        Books *books = NULL;
        unsigned granted;
        uint64_t last_id;
        sd_event *e;
        Manager *m;
        Lease *l1, *l2, *l3;

        ck_assert_int_ge(fd, 0);
        m = manager(&e, 8);
        ck_assert_int_eq(books_new(dup(fd), &books, &saved, &what), 0);
        manager_set_books(m, books);
        ck_assert_int_eq(books_restore(m, &none, bus_id, owner_present, NULL, &restored), 0);
        ck_assert_int_eq(lease_acquire(client(m, ":1.1"), &req, on_complete, NULL, &l1), 0);
        ck_assert_int_eq(lease_acquire(client(m, ":1.2"), &req, on_complete, NULL, &l2), 0);
        ck_assert_int_eq(lease_acquire(client(m, ":1.3"), &req, on_complete, NULL, &l3), 0);
        ck_assert_int_eq(lease_shrink(l1, 1, &granted), 0);
        last_id = l3->id;
        lease_release(l3);
        manager_free(m);        /* as a crash: the books hold two leases */
        sd_event_unref(e);
        state_books_done(&saved);

        m = manager(&e, 8);
        ck_assert_int_eq(books_new(dup(fd), &books, &saved, &what), 0);
        ck_assert_uint_eq(saved.n_leases, 2);
        manager_set_books(m, books);
        ck_assert_int_eq(books_restore(m, &saved, bus_id, owner_present, (void *) ":1.1", &restored), 0);
        ck_assert_uint_eq(restored.adopted, 1);
        ck_assert_uint_eq(restored.dropped, 1);
        ck_assert_uint_eq(restored.helpers, 1);
        ck_assert_uint_eq(in_use(m), 1);
        l1 = lease_next(m, NULL);
        ck_assert_ptr_nonnull(l1);
        ck_assert(lease_is_owned_by(l1, ":1.1"));
        ck_assert_int_eq(lease_acquire(client_find(m, ":1.1"), &req, on_complete, NULL, &l2), 0);
        ck_assert_uint_gt(l2->id, last_id);
        state_books_done(&saved);
        manager_free(m);
        sd_event_unref(e);

        /* On another bus (its id differs) no owner is the same connection. */
        m = manager(&e, 8);
        ck_assert_int_eq(books_new(dup(fd), &books, &saved, &what), 0);
        manager_set_books(m, books);
        ck_assert_int_eq(books_restore(m, &saved, "fedcba9876543210fedcba9876543210", owner_present,
                                       (void *) ":1.1", &restored), 0);
        ck_assert_uint_eq(restored.adopted, 0);
        ck_assert_uint_eq(in_use(m), 0);
        state_books_done(&saved);
        manager_free(m);
        sd_event_unref(e);
        close(fd);
}
END_TEST

/* Thousands of grants and releases: the journal is compacted on the way (some compactions
 * fall on a release), and the books still hold exactly the leases that live. */
START_TEST(test_books_churn) {
        const char *bus_id = "0123456789abcdef0123456789abcdef", *what = NULL;
        int fd = memfd_create("books", MFD_CLOEXEC);
        StateBooks saved = {}, none = { .next_id = 1 };
        BooksRestored restored;
        AcquireRequest req = request(1, 0, 0);
        Books *books = NULL;
        Client *a;
        sd_event *e;
        Manager *m;
        Lease *keep, *l;

        ck_assert_int_ge(fd, 0);
        m = manager(&e, 8);
        ck_assert_int_eq(books_new(dup(fd), &books, &saved, &what), 0);
        manager_set_books(m, books);
        ck_assert_int_eq(books_restore(m, &none, bus_id, owner_present, NULL, &restored), 0);
        a = client(m, ":1.1");
        ck_assert_int_eq(lease_acquire(a, &req, on_complete, NULL, &keep), 0);
        for (unsigned i = 0; i < 3000; i++) {
                StateStore *s = NULL;
                StateBooks now;

                ck_assert_int_eq(lease_acquire(a, &req, on_complete, NULL, &l), 0);
                lease_release(l);
                /* What a paddd killed right now would find. */
                ck_assert_int_eq(state_store_new(dup(fd), &s), 0);
                ck_assert_int_eq(state_store_load(s, &now, &what), 0);
                ck_assert_msg(now.n_leases == 1, "after %u releases the books hold %zu leases", i + 1, now.n_leases);
                state_books_done(&now);
                state_store_free(s);
        }
        manager_free(m);
        sd_event_unref(e);
        state_books_done(&saved);

        m = manager(&e, 8);
        ck_assert_int_eq(books_new(dup(fd), &books, &saved, &what), 0);
        manager_set_books(m, books);
        ck_assert_uint_eq(saved.n_leases, 1);
        ck_assert_uint_eq(saved.leases[0].id, 1);
        ck_assert_uint_ge(saved.next_id, 3002);
        state_books_done(&saved);
        manager_free(m);
        sd_event_unref(e);
        close(fd);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lease");
        TCase *tc = tcase_create("lease");

        tcase_add_test(tc, test_waiter_served_on_release);
        tcase_add_test(tc, test_waiter_timeout_and_vanish);
        tcase_add_test(tc, test_ttl);
        tcase_add_test(tc, test_books_across_managers);
        tcase_add_test(tc, test_books_churn);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
