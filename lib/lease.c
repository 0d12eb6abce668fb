/* lease.c: a pad_lease, one org.padata.Broker.Lease object the client acquired: Acquire with
 * its options (tried once more against a new paddd when the one it waited on died), the
 * grant and its placement as the broker reported them, Shrink, RaisePriority and Release,
 * each through the client's locked connection (client.c). A lease keeps its client alive
 * until it is freed.
 *
 * A lease is only ever acted on where it was granted: its calls go to the unique bus name
 * of the paddd that granted it. When that paddd is gone, a new one is asked only whether it
 * re-adopted the lease (the same path, owned by this connection, and not a lease this
 * client got from the new paddd); if so the lease moves to it, else the lease is lost: its
 * local state is dropped and the caller told -ENOENT (no broker has it) or -EHOSTDOWN (no
 * broker at all). */
#include "internal.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "broker-contract.h"
#include "list.h"
#include "util.h"

#define CALL_TIMEOUT_USEC (10 * 1000 * 1000ULL)
/* How long an Acquire whose paddd died waits for a new one before it gives up. */
#define ACQUIRE_RETRY_WAIT_USEC (5 * 1000 * 1000ULL)
#define BROKER_POLL_USEC (20 * 1000ULL)

#define DBUS_SERVICE "org.freedesktop.DBus"
#define DBUS_PATH "/org/freedesktop/DBus"
#define DBUS_INTERFACE "org.freedesktop.DBus"

struct pad_lease {
        pad_client *client;
        char *path;
        char *broker;                   /* unique name of the paddd that holds it for us */
        unsigned granted;
        bool released;                  /* released, or lost: no more calls */
        bool lost;                      /* it vanished with a paddd */
        unsigned n_placement;
        int placement_node[PAD_PLACEMENT_MAX];
        unsigned placement_helpers[PAD_PLACEMENT_MAX];
        LIST_FIELDS(pad_lease, leases); /* the client's live leases, under its lock */
};

static int append_options(sd_bus_message *m, const pad_acquire_opts *o) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (o) {
                if (o->min > 0 && (r = sd_bus_message_append(m, "{sv}", "min", "u", o->min)) < 0)
                        return r;
                if (o->wait_usec > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "wait_usec", "t", o->wait_usec)) < 0)
                        return r;
                if (o->strict_node &&
                    (r = sd_bus_message_append(m, "{sv}", "strict_node", "b", 1)) < 0)
                        return r;
                if (o->caller_tid > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "caller_tid", "u", (uint32_t) o->caller_tid)) < 0)
                        return r;
                if (o->tag && (r = sd_bus_message_append(m, "{sv}", "tag", "s", o->tag)) < 0)
                        return r;
                if (o->ttl_usec > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "ttl_usec", "t", o->ttl_usec)) < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int acquire_opts_check(unsigned helpers, int node, const pad_acquire_opts *o) {
        if (helpers == 0 || helpers > BROKER_HELPERS_MAX || node < PAD_NODE_ANY)
                return -EINVAL;
        if (!o)
                return 0;
        if (o->min > helpers || o->caller_tid < 0)
                return -EINVAL;
        if (o->tag && strlen(o->tag) > BROKER_TAG_MAX)
                return -EINVAL;
        return 0;
}

int bus_read_placement(sd_bus_message *m, int *nodes, unsigned *helpers, unsigned max,
                       unsigned *ret_n) {
        int32_t node;
        uint32_t n;
        int r;

        *ret_n = 0;
        r = sd_bus_message_enter_container(m, 'a', "(iu)");
        while (r >= 0 && (r = sd_bus_message_read(m, "(iu)", &node, &n)) > 0)
                if (*ret_n < max && n > 0) {
                        nodes[*ret_n] = node;
                        helpers[*ret_n] = n;
                        (*ret_n)++;
                }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_get_placement(sd_bus *bus, const char *path, int *nodes, unsigned *helpers, unsigned max,
                      unsigned *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        *ret_n = 0;
        r = sd_bus_get_property(bus, BROKER_BUS_NAME, path, LEASE_INTERFACE, "Placement", NULL,
                                &reply, "a(iu)");
        if (r < 0)
                return r;
        return bus_read_placement(reply, nodes, helpers, max, ret_n);
}

/* With the client locked: read the lease's placement (best effort). */
static void lease_read_placement_locked(pad_lease *l, sd_bus *bus) {
        if (l->granted == 0)
                return;
        if (client_single_node(l->client)) {
                l->n_placement = 1;
                l->placement_node[0] = 0;
                l->placement_helpers[0] = l->granted;
                return;
        }
        (void) bus_get_placement(bus, l->path, l->placement_node, l->placement_helpers,
                                 PAD_PLACEMENT_MAX, &l->n_placement);
}

/* With the client locked. */
static int acquire_locked(sd_bus *bus, unsigned helpers, int node, const pad_acquire_opts *o,
                          pad_lease *l, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        uint64_t timeout = CALL_TIMEOUT_USEC + (o ? o->wait_usec : 0);
        const char *path;
        uint32_t granted;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                           "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "ui", (uint32_t) helpers, (int32_t) node);
        if (r >= 0)
                r = append_options(m, o);
        if (r >= 0)
                r = sd_bus_call(bus, m, timeout, error, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ou", &path, &granted);
        if (r < 0)
                return r;
        l->path = strdup(path);
        l->broker = strdup(sd_bus_message_get_sender(reply) ?: BROKER_BUS_NAME);
        if (!l->path || !l->broker)
                return -ENOMEM;
        l->granted = granted;
        return 0;
}

/* ---- a lease that vanished ------------------------------------------------------------ */

/* The paddd the call went to answered that it has no such lease. */
static bool error_is_unknown_lease(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_METHOD) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_INTERFACE);
}

/* The errors of a call to a lease that say its paddd does not have it (any more), or is not
 * there to answer (ServiceUnknown, NoReply, a lost connection...). */
static bool error_is_lease_gone(const sd_bus_error *e, int r) {
        return error_is_unknown_lease(e) || bus_error_to_errno(e, r) == -EHOSTDOWN;
}

/* Drop what the lease held; nothing is called on it again. */
static void lease_mark_lost(pad_lease *l) {
        l->lost = l->released = true;
        l->granted = 0;
        l->n_placement = 0;
}

/* The unique name owning the broker's name now, into *ret (freed by the caller). */
static int broker_owner(sd_bus *bus, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner;
        int r;

        r = sd_bus_call_method(bus, DBUS_SERVICE, DBUS_PATH, DBUS_INTERFACE, "GetNameOwner", NULL,
                               &reply, "s", BROKER_BUS_NAME);
        if (r < 0)
                return -EHOSTDOWN;
        r = sd_bus_message_read(reply, "s", &owner);
        if (r < 0)
                return r;
        *ret = strdup(owner);
        return *ret ? 0 : -ENOMEM;
}

/* With the client locked: whether path at broker is a lease our connection holds there
 * that no live lease of this client but except (may be NULL) already is. */
static bool lease_is_ours_unclaimed_locked(pad_client *c, sd_bus *bus, const char *broker, const char *path,
                                           const pad_lease *except) {
        _cleanup_free_ char *holder = NULL;
        const char *unique = NULL;

        LIST_FOREACH(leases, i, *client_leases_locked(c))
                if (i != except && !i->released && streq(i->path, path) && streq(i->broker, broker))
                        return false;
        if (sd_bus_get_property_string(bus, broker, path, LEASE_INTERFACE, "Owner", NULL, &holder) < 0)
                return false;
        return sd_bus_get_unique_name(bus, &unique) >= 0 && streq(holder, unique);
}

/* With the client locked: a call on l failed with e. 0 when the paddd owning the name now
 * is another one that holds l for this connection (l moves to it); 1 when l's own paddd is
 * still there and did not say it lost l (a timeout: l is kept); else -ENOENT or -EHOSTDOWN,
 * and l is gone. */
static int lease_readopt_locked(pad_lease *l, sd_bus *bus, const sd_bus_error *e) {
        _cleanup_free_ char *owner = NULL;
        int r;

        r = broker_owner(bus, &owner);
        if (r < 0)
                return r == -ENOMEM ? r : -EHOSTDOWN;
        if (streq(owner, l->broker))
                return error_is_unknown_lease(e) ? -ENOENT : 1;  /* the same paddd */
        if (!lease_is_ours_unclaimed_locked(l->client, bus, owner, l->path, l))
                return -ENOENT;
        free(l->broker);
        l->broker = TAKE_PTR(owner);
        return 0;
}

/* With the client locked: call member on l where it is held, following it to a paddd that
 * re-adopted it. A lease found gone is marked lost: -ENOENT or -EHOSTDOWN; -ETIMEDOUT when
 * its paddd is still there but did not answer (the lease is kept). */
static int lease_call_locked(pad_lease *l, sd_bus *bus, const char *member, sd_bus_message **ret_reply,
                             const char *types, ...) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        client_process_locked(l->client, bus);  /* an Expired signal may be waiting */
        if (l->released)
                return -ESTALE;
        for (unsigned attempt = 0;; attempt++) {
                va_start(ap, types);
                r = sd_bus_call_methodv(bus, l->broker, l->path, LEASE_INTERFACE, member, &error,
                                        ret_reply, types, ap);
                va_end(ap);
                if (r >= 0 || !error_is_lease_gone(&error, r)) {
                        if (r < 0)
                                r = client_call_failed_locked(l->client, &error, r);
                        break;
                }
                r = attempt == 0 ? lease_readopt_locked(l, bus, &error) : -ENOENT;
                sd_bus_error_free(&error);
                if (r > 0) {
                        r = -ETIMEDOUT;         /* its paddd is there but did not answer */
                        break;
                }
                if (r < 0) {
                        if (r != -ENOMEM)
                                lease_mark_lost(l);
                        break;
                }
        }
        sd_bus_error_free(&error);
        return r;
}

/* With the client locked. A Release that found no paddd at all is owed to the next one. */
static int lease_release_locked(pad_lease *l, sd_bus *bus) {
        int r = lease_call_locked(l, bus, "Release", NULL, "");

        if (r == -EHOSTDOWN && l->path && l->broker)
                (void) client_owe_release_locked(l->client, l->path, l->broker);
        l->released = true;
        return r < 0 ? r : 0;
}

void lease_expired_locked(pad_client *c, const char *broker, const char *path) {
        if (!broker || !path)
                return;
        LIST_FOREACH(leases, l, *client_leases_locked(c))
                if (!l->released && streq(l->path, path) && streq(l->broker, broker))
                        lease_mark_lost(l);
}

/* With the client locked: send the releases owed since no paddd was there to the paddd
 * there now, which may have adopted those leases from its books. Kept while none is. */
static void client_settle_owed_locked(pad_client *c, sd_bus *bus) {
        _cleanup_free_ char *owner = NULL;
        OwedRelease *owed;
        unsigned n;

        if (broker_owner(bus, &owner) < 0)
                return;
        owed = client_take_owed_locked(c, &n);
        for (unsigned i = 0; i < n; i++) {
                if (!streq(owed[i].broker, owner) && lease_is_ours_unclaimed_locked(c, bus, owner, owed[i].path, NULL))
                        (void) sd_bus_call_method(bus, owner, owed[i].path, LEASE_INTERFACE, "Release", NULL,
                                                  NULL, "");
                free(owed[i].path);
                free(owed[i].broker);
        }
        free(owed);
}

static pad_lease *lease_free_unlocked(pad_lease *l) {
        if (!l)
                return NULL;
        free(l->path);
        free(l->broker);
        client_unref(l->client);
        free(l);
        return NULL;
}
DEFINE_POINTER_CLEANUP(pad_lease, lease_free_unlocked);

/* ---- acquiring --------------------------------------------------------------------------- */

/* With the client locked: wait (unlocking between looks) until some paddd owns the name. */
static int client_wait_broker_locked(pad_client *c, sd_bus *bus, uint64_t max_usec) {
        uint64_t deadline = now_usec() + max_usec;

        for (;;) {
                _cleanup_free_ char *owner = NULL;

                if (broker_owner(bus, &owner) >= 0)
                        return 0;
                if (now_usec() >= deadline)
                        return -EHOSTDOWN;
                client_unlock(c);
                (void) nanosleep(&(struct timespec) { .tv_nsec = BROKER_POLL_USEC * NSEC_PER_USEC }, NULL);
                (void) client_lock(c);
        }
}

/* The Acquire failed because the paddd it waited on died (NoReply before the timeout). */
static bool acquire_broker_died(const sd_bus_error *e, uint64_t t0, uint64_t timeout) {
        return (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
                sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED)) &&
               now_usec() - t0 < timeout;
}

/* With the client locked: Acquire, and once more against a new paddd if the one we waited
 * on died, with what is left of the wait. */
static int acquire_retrying_locked(pad_client *c, sd_bus *bus, unsigned helpers, int node,
                                   const pad_acquire_opts *o, pad_lease *l, sd_bus_error *error) {
        uint64_t t0 = now_usec(), timeout = CALL_TIMEOUT_USEC + (o ? o->wait_usec : 0), spent;
        pad_acquire_opts again;
        int r;

        r = acquire_locked(bus, helpers, node, o, l, error);
        if (r >= 0 || !acquire_broker_died(error, t0, timeout))
                return r;
        if (client_wait_broker_locked(c, bus, ACQUIRE_RETRY_WAIT_USEC) < 0)
                return r;
        sd_bus_error_free(error);
        again = o ? *o : (pad_acquire_opts) {};
        spent = now_usec() - t0;
        again.wait_usec = again.wait_usec > spent ? again.wait_usec - spent : 0;
        return acquire_locked(bus, helpers, node, &again, l, error);
}

_public_ int pad_client_acquire(pad_client *c, unsigned helpers, int node,
                                const pad_acquire_opts *opts, pad_lease **ret) {
        _cleanup_(lease_free_unlockedp) pad_lease *l = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = acquire_opts_check(helpers, node, opts);
        if (r < 0)
                return r;
        if (!client_connected(c))
                return -EHOSTDOWN;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->client = client_ref(c);

        bus = client_lock(c);
        client_settle_owed_locked(c, bus);
        r = acquire_retrying_locked(c, bus, helpers, node, opts, l, &error);
        if (r < 0) {
                r = r == -ENOMEM ? r : client_call_failed_locked(c, &error, r);
                if (l->path && l->broker)
                        (void) lease_release_locked(l, bus);
        } else {
                lease_read_placement_locked(l, bus);
                (void) client_read_policy_once_locked(c);
                LIST_PREPEND(leases, *client_leases_locked(c), l);
        }
        client_unlock(c);
        sd_bus_error_free(&error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

_public_ unsigned pad_lease_granted(const pad_lease *l) {
        return l ? l->granted : 0;
}

_public_ const char *pad_lease_path(const pad_lease *l) {
        return l ? l->path : NULL;
}

_public_ unsigned pad_lease_placement(const pad_lease *l, int *ret_nodes, unsigned *ret_helpers,
                                      unsigned n) {
        if (!l)
                return 0;
        for (unsigned i = 0; i < n && i < l->n_placement; i++) {
                if (ret_nodes)
                        ret_nodes[i] = l->placement_node[i];
                if (ret_helpers)
                        ret_helpers[i] = l->placement_helpers[i];
        }
        return l->n_placement;
}

int lease_helper_node(const pad_lease *l, unsigned i) {
        if (!l)
                return PAD_NODE_ANY;
        for (unsigned k = 0; k < l->n_placement; k++) {
                if (i < l->placement_helpers[k])
                        return l->placement_node[k];
                i -= l->placement_helpers[k];
        }
        return PAD_NODE_ANY;
}

_public_ int pad_lease_shrink(pad_lease *l, unsigned count) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t granted = 0;
        sd_bus *bus;
        int r;

        if (!l || count == 0)
                return -EINVAL;
        bus = client_lock(l->client);
        if (l->released)
                r = -ESTALE;
        else if (count > l->granted)
                r = -EINVAL;
        else {
                r = lease_call_locked(l, bus, "Shrink", &reply, "u", (uint32_t) count);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "u", &granted);
                if (r >= 0) {
                        l->granted = granted;
                        r = (int) granted;
                }
        }
        reply = sd_bus_message_unref(reply);
        client_unlock(l->client);
        return r;
}

_public_ int pad_lease_raise_priority(pad_lease *l, pid_t tid) {
        sd_bus *bus;
        int r;

        if (!l || tid <= 0)
                return -EINVAL;
        bus = client_lock(l->client);
        r = lease_call_locked(l, bus, "RaisePriority", NULL, "u", (uint32_t) tid);
        client_unlock(l->client);
        return r < 0 ? r : 0;
}

_public_ int pad_lease_release(pad_lease *l) {
        sd_bus *bus;
        int r;

        if (!l)
                return -EINVAL;
        bus = client_lock(l->client);
        r = lease_release_locked(l, bus);
        client_unlock(l->client);
        return r;
}

bool lease_is_lost(const pad_lease *l) {
        return l && l->lost;
}

_public_ const char *pad_lease_helper_policy(const pad_lease *l) {
        if (!l)
                return NULL;
        return helper_policy_to_string(client_helper_policy(l->client));
}

_public_ pad_lease *pad_lease_free(pad_lease *l) {
        sd_bus *bus;

        if (!l)
                return NULL;
        bus = client_lock(l->client);
        if (!l->released)
                (void) lease_release_locked(l, bus);
        LIST_REMOVE(leases, *client_leases_locked(l->client), l);
        client_unlock(l->client);
        return lease_free_unlocked(l);
}
