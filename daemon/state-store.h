/* state-store.h: keeps paddd's books (state.h records) in one file descriptor that outlives
 * the process: a memfd in systemd's fd store, or a file in $RUNTIME_DIRECTORY. The file holds
 * a header at offset 0, a snapshot and a journal after it. Appending a record is one write
 * of the line with its own check past the journal's end: a reader takes the journal up to
 * the first line that is not whole, so a paddd killed mid-write leaves the books as they
 * were before that record. A compaction writes a new snapshot where it overlaps nothing the
 * header names, then rewrites the header (one small write within the first page, which a
 * killed process made whole or not at all). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"
#include "util.h"

typedef struct StateStore StateStore;

/* Takes fd (closed by state_store_free). The file may be empty (a new store). */
int state_store_new(int fd, StateStore **ret);
StateStore *state_store_free(StateStore *s);
DEFINE_POINTER_CLEANUP(StateStore, state_store_free);

/* Read the books. An empty file gives empty books. -EBADMSG (with *ret_what saying what
 * is wrong, static text) when the header or a record is damaged. */
int state_store_load(StateStore *s, StateBooks *ret, const char **ret_what);

/* Append records (whole lines) to the journal and commit them. 0 or -errno. */
int state_store_append(StateStore *s, const char *records, size_t len);
/* Whether the journal has grown past its snapshot enough for a compaction. */
bool state_store_wants_snapshot(const StateStore *s);
/* Replace snapshot and journal by this snapshot (state_format_snapshot). */
int state_store_write_snapshot(StateStore *s, const char *snapshot, size_t len);
