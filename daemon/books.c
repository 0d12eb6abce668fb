/* books.c: the books kept across restarts (books.h): where they live, the journal entry for
 * every lease change, compaction into a snapshot, and the re-adoption at start. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "books.h"
#include "client.h"
#include "lease.h"
#include "log.h"

struct Books {
        StateStore *store;
        char bus_id[33];
        bool broken;            /* a write failed: rewrite whole on the next change */
};

/* ---- where they live ------------------------------------------------------------------ */

static int books_fd_from_store(void) {
        char **names = NULL;
        int n, fd = -1;

        n = sd_listen_fds_with_names(true, &names);
        for (int i = 0; i < n; i++) {
                if (fd < 0 && names && names[i] && streq(names[i], BOOKS_FDNAME))
                        fd = SD_LISTEN_FDS_START + i;
                else
                        safe_close(SD_LISTEN_FDS_START + i);
        }
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        return fd;
}

/* A new memfd handed to systemd's fd store, which gives it back on the next start. */
static int books_fd_new_stored(void) {
        int fd, r;

        fd = memfd_create(BOOKS_FDNAME, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sd_pid_notify_with_fds(0, false, "FDSTORE=1\nFDNAME=" BOOKS_FDNAME, &fd, 1);
        if (r <= 0) {
                safe_close(fd);
                return r < 0 ? r : -ENOTCONN;
        }
        return fd;
}

static int books_fd_from_file(BooksSource *source) {
        const char *dir = getenv("RUNTIME_DIRECTORY");
        char path[300];
        int fd;

        if (dir && *dir) {
                size_t n = strcspn(dir, ":");

                snprintf(path, sizeof path, "%.*s/state", (int) MIN(n, (size_t) 280), dir);
        } else {
                if (mkdir(BOOKS_RUN_DIR, 0755) < 0 && errno != EEXIST)
                        return -errno;
                snprintf(path, sizeof path, "%s/state", BOOKS_RUN_DIR);
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        snprintf(source->where, sizeof source->where, "%s", path);
        return fd;
}

int books_open_fd(int *ret_fd, BooksSource *ret_source) {
        int fd;

        *ret_source = (BooksSource) {};
        fd = books_fd_from_store();
        if (fd < 0 && getenv("INVOCATION_ID") && getenv("NOTIFY_SOCKET"))
                fd = books_fd_new_stored();     /* under systemd: its fd store */
        if (fd >= 0) {
                ret_source->fdstore = true;
                snprintf(ret_source->where, sizeof ret_source->where, "the fd store");
                *ret_fd = fd;
                return 0;
        }
        fd = books_fd_from_file(ret_source);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

/* ---- life ----------------------------------------------------------------------------- */

static int books_alloc(int fd, Books **ret) {
        Books *b = calloc(1, sizeof(*b));
        int r;

        if (!b) {
                safe_close(fd);
                return -ENOMEM;
        }
        r = state_store_new(fd, &b->store);
        if (r < 0) {
                free(b);
                return r;
        }
        *ret = b;
        return 0;
}

int books_new(int fd, Books **ret, StateBooks *ret_books, const char **ret_what) {
        Books *b;
        int r;

        r = books_alloc(fd, &b);
        if (r < 0)
                return r;
        r = state_store_load(b->store, ret_books, ret_what);
        if (r < 0 && r != -EBADMSG) {
                books_free(b);
                return r;
        }
        if (r < 0)
                *ret_books = (StateBooks) { .next_id = 1 };     /* the snapshot at start replaces them */
        *ret = b;
        return r;
}

Books *books_free(Books *b) {
        if (!b)
                return NULL;
        state_store_free(b->store);
        free(b);
        return NULL;
}

/* ---- writing -------------------------------------------------------------------------- */

static int books_write_snapshot(Manager *m) {
        _cleanup_free_ char *text = NULL;
        StateBooks all = { .next_id = budget_get_next_id(m->budget) };
        size_t len;
        int r;

        snprintf(all.bus_id, sizeof all.bus_id, "%s", m->books->bus_id);
        all.leases = calloc(MAX(budget_get_n_leases(m->budget), 1u), sizeof(StateLease));
        if (!all.leases)
                return -ENOMEM;
        for (Lease *l = lease_next(m, NULL); l; l = lease_next(m, l))
                lease_to_state(l, &all.leases[all.n_leases++]);
        r = state_format_snapshot(&all, &text, &len);
        free(all.leases);
        if (r < 0)
                return r;
        return state_store_write_snapshot(m->books->store, text, len);
}

static void books_write(Manager *m, const char *record, size_t len) {
        Books *b = m->books;
        int r;

        if (b->broken || state_store_wants_snapshot(b->store))
                r = books_write_snapshot(m);    /* holds the change already */
        else
                r = state_store_append(b->store, record, len);
        if (r < 0 && !b->broken)
                log_warning_errno(r, "Failed to keep the books, a restart now would lose leases: %m");
        else if (r >= 0 && b->broken)
                log_info("Keeping the books again.");
        b->broken = r < 0;
}

void books_lease_added(Manager *m, const Lease *l) {
        char buf[STATE_RECORD_MAX];
        StateLease sl;

        if (!m->books)
                return;
        lease_to_state(l, &sl);
        books_write(m, buf, state_format_lease(&sl, buf));
}

void books_lease_changed(Manager *m, const Lease *l) {
        char buf[STATE_RECORD_MAX];
        StateLease sl;

        if (!m->books)
                return;
        lease_to_state(l, &sl);
        books_write(m, buf, state_format_shrink(sl.id, sl.placement, sl.n_placement, buf));
}

void books_lease_dropped(Manager *m, const Lease *l) {
        char buf[STATE_RECORD_MAX];

        if (!m->books)
                return;
        books_write(m, buf, state_format_drop(l->id, buf));
}

/* ---- restore -------------------------------------------------------------------------- */

static int books_adopt(Manager *m, const StateLease *sl) {
        Client *c = client_find(m, sl->owner);
        Lease *l;
        int r;

        if (!c) {
                r = client_new(m, sl->owner, sl->uid, sl->pid, sl->start_time, &c);
                if (r < 0)
                        return r;
        } else if (c->uid != sl->uid || c->pid != sl->pid || c->start_time != sl->start_time)
                return PAD_ERROR_INVALID_ARGS;
        return lease_adopt(c, sl, &l);
}

int books_restore(Manager *m, const StateBooks *saved, const char *bus_id, BooksOwnerCheck check,
                  void *userdata, BooksRestored *ret) {
        Books *b = m->books;
        bool same_bus = saved->bus_id[0] && bus_id && streq(saved->bus_id, bus_id);
        Books *keep = TAKE_PTR(m->books);       /* adopting journals nothing */
        int r;

        *ret = (BooksRestored) {};
        for (size_t i = 0; i < saved->n_leases; i++) {
                const StateLease *sl = &saved->leases[i];

                r = same_bus ? check(sl, userdata) : 0;
                if (r > 0)
                        r = books_adopt(m, sl);
                else if (r == 0)
                        r = 1;          /* owner gone */
                if (r == 0) {
                        ret->adopted++;
                        for (unsigned k = 0; k < sl->n_placement; k++)
                                ret->helpers += sl->placement[k].helpers;
                } else {
                        if (r < 0)
                                log_debug("Dropping lease %" PRIu64 " of %s: %s", sl->id, sl->owner,
                                          strerror(-r));
                        ret->dropped++;
                }
        }
        /* Ids of leases dropped, and of any the books gave out, never come back. */
        budget_set_next_id(m->budget, saved->next_id);
        m->books = keep;
        if (!b)
                return 0;
        snprintf(b->bus_id, sizeof b->bus_id, "%s", bus_id ? bus_id : "");
        r = books_write_snapshot(m);
        b->broken = r < 0;
        return r;
}
