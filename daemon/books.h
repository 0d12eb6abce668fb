/* books.h: paddd's lease table kept where it outlives the process, so that a restarted
 * paddd (Restart=on-failure, systemctl restart, a SIGKILL) knows every lease it lent. Every
 * change is journalled before the call that made it is answered; on start the books are read
 * back and each lease whose owner is still the same connection on the same bus is adopted
 * again, the rest dropped, before paddd grants anything. Where the books live: the memfd
 * systemd's fd store hands back (FDNAME=paddd-state), or a new one put there when paddd runs
 * under systemd; else $RUNTIME_DIRECTORY/state (first entry), else /run/paddd/state. */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "state-store.h"

#define BOOKS_FDNAME "paddd-state"
#define BOOKS_RUN_DIR "/run/paddd"

typedef struct BooksSource {
        char where[300];        /* "the fd store" or the file's path, for messages */
        bool fdstore;
} BooksSource;

/* Open the books' fd as described above. */
int books_open_fd(int *ret_fd, BooksSource *ret_source);

/* Take fd and read the books into *ret_books. -EBADMSG with *ret_what when they are
 * damaged: *ret is still set, with empty books, and the first snapshot replaces the damage. */
int books_new(int fd, Books **ret, StateBooks *ret_books, const char **ret_what);
Books *books_free(Books *b);

/* Which owners are still there: 1 when name is the same connection (on bus bus_id). */
typedef int (*BooksOwnerCheck)(const StateLease *l, void *userdata);

typedef struct BooksRestored {
        unsigned adopted, dropped, helpers;
} BooksRestored;

/* Adopt the leases of saved whose owners check says are there, write a fresh snapshot
 * (with bus_id) and return the counts. */
int books_restore(Manager *m, const StateBooks *saved, const char *bus_id, BooksOwnerCheck check,
                  void *userdata, BooksRestored *ret);

/* Journal a change (no-ops without books); a failure is logged by the caller's manager
 * once and the books are then rewritten whole on the next change. */
void books_lease_added(Manager *m, const Lease *l);
void books_lease_changed(Manager *m, const Lease *l);
void books_lease_dropped(Manager *m, const Lease *l);
