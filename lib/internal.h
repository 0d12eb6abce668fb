/* internal.h: declarations shared by the lib/ C files of libpadclient and by the unit tests
 * that link the internal static library: the export attribute, the padata chunk split and
 * the thread id (job.c), the monotonic clock, the client as leases, the admin calls and the
 * runner use it (client.c), the lease helpers of the runner (lease.c), the admin call
 * helpers (broker-admin.c), and the broker's
 * errors as errnos and messages (bus-error.c); it includes cpuset.h and helper-sched.h.
 * Nothing here is exported from libpadclient.so.
 *
 * Include this header FIRST in every lib/ C file: it defines _GNU_SOURCE for cpu_set_t. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <assert.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "cpuset.h"
#include "helper-sched.h"
#include "padclient.h"
#include "sched-defs.h"

/* Mark the functions of include/padclient.h; everything else stays hidden. */
#define _public_ __attribute__((visibility("default")))

/* Default progress interval when the job gives none. */
#define JOB_PROGRESS_INTERVAL_USEC_DEFAULT (100 * 1000ULL)
/* Cap on PADCLIENT_FALLBACK_HELPERS. */
#define CLIENT_FALLBACK_HELPERS_MAX 1024u

/* ---- Splitting (the kernel's padata_do_multithreaded) ----------------------------------- */

/* works = max(size / max(min_chunk, align), 1), capped at max_threads;
 * chunk = size / (works * 4), at least min_chunk, rounded up to align.
 * Inputs are already normalised: align >= 1, min_chunk >= 1, max_threads >= 1, size >= 1.
 * chunk is a multiple of align, so every chunk edge is start + k * align. */
void job_split(uint64_t size, uint64_t align, uint64_t min_chunk, unsigned max_threads,
               unsigned *ret_works, uint64_t *ret_chunk);

/* ---- The runner's thread id, the clock ------------------------------------------------------------------- */

pid_t job_gettid(void);

#define USEC_PER_SEC 1000000ULL
#define NSEC_PER_USEC 1000ULL

/* CLOCK_MONOTONIC in microseconds. */
static inline uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- The client, as other lib files see it (client.c) ------------------------------------- */

pad_client *client_ref(pad_client *c);
/* Accepts NULL, returns NULL. */
pad_client *client_unref(pad_client *c);
/* 1 if c has a bus connection at all (the broker may still be absent). */
bool client_connected(pad_client *c);
/* The machine has node 0 only: a lease's placement is all on node 0, no need to ask. */
bool client_single_node(const pad_client *c);
/* Lock the client and return its connection (NULL when it has none; still locked). Every
 * sd-bus object of the connection, replies included, is used and unreffed before
 * client_unlock(). */
sd_bus *client_lock(pad_client *c);
void client_unlock(pad_client *c);
/* With the client locked: the errno of padclient.h for a failed call (bus_error_to_errno);
 * when that is -EHOSTDOWN the client records why, for pad_client_broker_error(). */
int client_call_failed_locked(pad_client *c, const sd_bus_error *e, int r);
/* With the client locked: the head of its list of live leases (lease.c links them). */
pad_lease **client_leases_locked(pad_client *c);
/* A Release that found no paddd at all: the next paddd may adopt the lease from its books,
 * so the release is sent again to it (lease.c settles them). */
typedef struct OwedRelease {
        char *path;
        char *broker;           /* the unique name of the paddd that granted it */
} OwedRelease;
#define CLIENT_OWED_MAX 256u
/* With the client locked: dispatch what paddd sent unasked (Expired signals). */
void client_process_locked(pad_client *c, sd_bus *bus);
/* With the client locked: the lease at path granted by broker ran out of ttl: it is lost. */
void lease_expired_locked(pad_client *c, const char *broker, const char *path);
/* With the client locked: remember one (past CLIENT_OWED_MAX, the oldest is forgotten). */
int client_owe_release_locked(pad_client *c, const char *path, const char *broker);
/* With the client locked: the owed releases, and taking them all (the caller frees each
 * entry's strings and the array). */
OwedRelease *client_take_owed_locked(pad_client *c, unsigned *ret_n);
/* With the client locked: read the broker's HelperPolicy unless it was read already. */
int client_read_policy_once_locked(pad_client *c);
/* The broker's HelperPolicy, read once per client; idle when it could not be read. */
HelperPolicy client_helper_policy(pad_client *c);
/* PADCLIENT_FALLBACK_HELPERS: read once per client; c == NULL: read now (one getenv). */
unsigned client_fallback_helpers(pad_client *c);

/* ---- Leases (lease.c) --------------------------------------------------------------------- */

/* Node of the helper with index i (0-based) in placement order; PAD_NODE_ANY when the
 * lease has no placement for it. */
int lease_helper_node(const pad_lease *l, unsigned i);
/* The lease vanished with its paddd (a call on it found it gone); it holds nothing now. */
bool lease_is_lost(const pad_lease *l);
/* Read an a(iu) placement from m into up to max (node, helpers) pairs; *ret_n: how many. */
int bus_read_placement(sd_bus_message *m, int *nodes, unsigned *helpers, unsigned max,
                       unsigned *ret_n);
/* Get the Placement property of the lease object at path (with the client locked). */
int bus_get_placement(sd_bus *bus, const char *path, int *nodes, unsigned *helpers, unsigned max,
                      unsigned *ret_n);

/* ---- The admin calls (broker-admin.c), for broker-stats.c and broker-watch.c --------------- */

/* ret_msg = "" when there is room for it. */
void admin_msg_clear(char *msg, size_t len);
/* Call member (with one string argument, or none when arg is NULL), read the reply with
 * read_reply into a zeroed object of size bytes, all with the client locked, and hand it out
 * in *ret: 0, or the errno of padclient.h with msg written (msg is "" on success) and the
 * object freed with free_obj. */
int admin_get(pad_client *c, const char *iface, const char *member, const char *arg, size_t size,
              int (*read_reply)(sd_bus_message *m, void *obj), void *(*free_obj)(void *obj), void **ret,
              char *msg, size_t len);

/* ---- Broker errors (bus-error.c) ------------------------------------------------------------ */

/* Register the broker's error names (broker_error_map) with sd-bus; once per process. */
void bus_error_map_register(void);
/* A failed sd_bus_call: the broker's errors as common/broker-contract.h maps them
 * (Busy -EBUSY, Timeout -ETIMEDOUT, NoSuchNode -ENXIO, LimitsExceeded -EUSERS, AccessDenied
 * -EACCES, InvalidArgs -EINVAL, NotSupported -EOPNOTSUPP); no owner / no reply /
 * disconnected / connection errors -> -EHOSTDOWN; else r (negative). */
int bus_error_to_errno(const sd_bus_error *e, int r);
/* Nobody owns the broker's name (ServiceUnknown, NameHasNoOwner). */
bool bus_error_is_not_running(const sd_bus_error *e);
/* One line for ret_msg: "paddd is not running on this bus (NAME)", "NAME: message", or
 * strerror(r). */
void bus_error_message(const sd_bus_error *e, int r, char *buf, size_t len);
