/* broker-bus.c: the org.padata.Broker object (/org/padata/Broker) on the bus: its vtable
 * and properties, the translation of Acquire's arguments and a{sv} options into a request,
 * the deferred answer of a waiting Acquire (the manager completes it through
 * acquire_complete), ListLeases, SetQuota and Reload with their admin check (GetStatistics
 * is stats-bus.c's), the callers'
 * credentials from the bus, one NameOwnerChanged match for every client at once, the
 * re-adoption of the books at start, and the change signals the manager's hooks ask for.
 * Every method is SD_BUS_VTABLE_UNPRIVILEGED: authorisation is done here. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "books.h"
#include "broker-bus.h"
#include "bus-error.h"
#include "client.h"
#include "lease-bus.h"
#include "lease.h"
#include "log.h"
#include "paddd-config.h"
#include "priority.h"
#include "stats-bus.h"

/* ---- callers -------------------------------------------------------------------------- */

/* The client for the sender of message, created on its first call from the bus's own record
 * of the peer (dbus-daemon: SO_PEERCRED at connect time), never from what /proc says now:
 * augmented fields are refused. */
static int bus_client_new(Manager *m, sd_bus_message *message, const char *sender, Client **ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uint64_t start_time;
        uid_t uid;
        pid_t pid;
        int r;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & (SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID))
                return PAD_ERROR_ACCESS_DENIED;
        if (sd_bus_creds_get_euid(creds, &uid) < 0 || sd_bus_creds_get_pid(creds, &pid) < 0 || pid <= 0)
                return PAD_ERROR_ACCESS_DENIED;
        /* The pid with its start time now: should that process exit while its connection
         * lives on in a child, a process that takes the pid over is not the client. (A
         * process that exited before this first call cannot be told from its successor.) */
        if (priority_process_start_time(pid, &start_time) < 0)
                return PAD_ERROR_ACCESS_DENIED;
        return client_new(m, sender, uid, pid, start_time, ret);
}

int bus_get_client(Manager *m, sd_bus_message *message, Client **ret, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(message);
        int r;

        if (sender) {
                *ret = client_find(m, sender);
                if (*ret)
                        return 0;
        }
        r = sender ? bus_client_new(m, message, sender, ret) : PAD_ERROR_ACCESS_DENIED;
        if (r == 0)
                return 0;
        if (r == PAD_ERROR_ACCESS_DENIED)
                manager_count(m, STATS_DENIED_ACCESS);
        return bus_error_set(error, r, r == PAD_ERROR_ACCESS_DENIED ?
                             "The bus gave no trustworthy credentials for the caller." : NULL);
}

/* One match for the bus driver's NameOwnerChanged, whatever the number of clients: a unique
 * name that lost its owner is a connection that went away. */
static int on_name_owner_changed(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] == ':' && !new_owner[0])
                (void) client_vanished(userdata, name);
        return 0;
}

/* ---- properties ----------------------------------------------------------------------- */

static int property_get_max_helpers(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error) {
        ManagerCounts counts;

        manager_get_counts(userdata, &counts);
        return sd_bus_message_append(reply, "u", counts.max_helpers);
}

static int property_get_in_use(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        ManagerCounts counts;

        manager_get_counts(userdata, &counts);
        return sd_bus_message_append(reply, "u", counts.in_use);
}

static int property_get_waiting(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        ManagerCounts counts;

        manager_get_counts(userdata, &counts);
        return sd_bus_message_append(reply, "u", counts.waiting);
}

static int property_get_leases(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        ManagerCounts counts;

        manager_get_counts(userdata, &counts);
        return sd_bus_message_append(reply, "u", counts.leases);
}

static int property_get_nodes(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(iuuu)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < manager_get_n_nodes(m); i++) {
                unsigned cpus, max, in_use;
                int id;

                manager_get_node(m, i, &id, &cpus, &max, &in_use);
                r = sd_bus_message_append(reply, "(iuuu)", id, cpus, max, in_use);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_helper_policy(sd_bus *bus, const char *path, const char *interface,
                                      const char *property, sd_bus_message *reply, void *userdata,
                                      sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", helper_policy_to_string(manager_get_helper_policy(m)));
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PADDD_VERSION);
}

typedef enum AcquireOption {
        OPTION_MIN,
        OPTION_WAIT_USEC,
        OPTION_STRICT_NODE,
        OPTION_CALLER_TID,
        OPTION_TAG,
        OPTION_TTL_USEC,
        _OPTION_MAX,
} AcquireOption;

static const struct {
        const char *name;
        const char *signature;
} acquire_options[_OPTION_MAX] = {
        [OPTION_MIN] = { "min", "u" },
        [OPTION_WAIT_USEC] = { "wait_usec", "t" },
        [OPTION_STRICT_NODE] = { "strict_node", "b" },
        [OPTION_CALLER_TID] = { "caller_tid", "u" },
        [OPTION_TAG] = { "tag", "s" },
        [OPTION_TTL_USEC] = { "ttl_usec", "t" },
};

static int acquire_option_read(sd_bus_message *message, AcquireOption o, AcquireRequest *req,
                               sd_bus_error *error) {
        uint32_t u;
        uint64_t t;
        int b, r;

        switch (o) {
        case OPTION_MIN:
                r = sd_bus_message_read(message, "v", "u", &u);
                req->min = u;
                return r;
        case OPTION_WAIT_USEC:
                return sd_bus_message_read(message, "v", "t", &req->wait_usec);
        case OPTION_STRICT_NODE:
                r = sd_bus_message_read(message, "v", "b", &b);
                req->strict_node = b;
                return r;
        case OPTION_CALLER_TID:
                r = sd_bus_message_read(message, "v", "u", &u);
                if (r < 0)
                        return r;
                if (u == 0 || u > INT_MAX)
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                             "caller_tid %" PRIu32 " is not a thread id.", u);
                req->caller_tid = (pid_t) u;
                return 0;
        case OPTION_TAG:
                r = sd_bus_message_read(message, "v", "s", &req->tag);
                if (r < 0)
                        return r;
                if (strlen(req->tag) > BROKER_TAG_MAX)
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                             "tag is longer than %u bytes.", BROKER_TAG_MAX);
                return 0;
        case OPTION_TTL_USEC:
                r = sd_bus_message_read(message, "v", "t", &t);
                if (r < 0)
                        return r;
                if (t == 0)
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS, "ttl_usec must be positive.");
                req->ttl_usec = t;
                return 0;
        default:
                return -EINVAL;
        }
}

static int acquire_options_parse(sd_bus_message *message, AcquireRequest *req, sd_bus_error *error) {
        unsigned seen = 0;
        int r;

        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key, *contents;
                AcquireOption o;

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                for (o = 0; o < _OPTION_MAX; o++)
                        if (streq(key, acquire_options[o].name))
                                break;
                if (o == _OPTION_MAX)
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS, "Unknown option '%s'.", key);
                if (seen & (1u << o))
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                             "Option '%s' given twice.", key);
                seen |= 1u << o;

                r = sd_bus_message_peek_type(message, NULL, &contents);
                if (r < 0)
                        return r;
                if (!streq(contents, acquire_options[o].signature))
                        return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                             "Option '%s' must be of type '%s', not '%s'.",
                                             key, acquire_options[o].signature, contents);
                r = acquire_option_read(message, o, req, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

/* ---- Acquire -------------------------------------------------------------------------- */

static int acquire_reply(sd_bus_message *message, const Lease *l) {
        return sd_bus_reply_method_return(message, "ou", l->path, lease_get_granted(l));
}

/* A waiting Acquire's end (WaiterComplete); userdata is the call, referenced. */
static int acquire_complete(int r, Lease *l, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *message = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r == -ECONNRESET)
                return 0;               /* the caller is gone */
        if (r == 0) {
                r = acquire_reply(message, l);
                if (r < 0)
                        log_debug("Failed to answer %s: %s", sd_bus_message_get_sender(message), strerror(-r));
                return r;
        }
        bus_error_set(&error, r, NULL);
        r = sd_bus_reply_method_error(message, &error);
        if (r < 0)
                log_debug("Failed to answer %s: %s", sd_bus_message_get_sender(message), strerror(-r));
        return 0;
}

static int acquire_error(int r, const AcquireRequest *req, const Client *c, sd_bus_error *error) {
        switch (r) {
        case PAD_ERROR_NO_SUCH_NODE:
                return bus_error_set(error, r, "No NUMA node %d.", req->node);
        case PAD_ERROR_INVALID_ARGS:
                return bus_error_set(error, r, "Thread %d is not a thread of the calling process.",
                                     req->caller_tid > 0 ? req->caller_tid : c->pid);
        case PAD_ERROR_BUSY:
                return bus_error_set(error, r, "Fewer than %u helpers are free.", MAX(req->min, 1u));
        case PAD_ERROR_NEVER_FITS:
                return bus_error_set(error, r, "min %u is above what the quotas could ever give this "
                                     "request (machine, per-user, or its nodes' caps).", req->min);
        case PAD_ERROR_LIMITS_EXCEEDED:
                return bus_error_set(error, r, "Too many leases for this client or waiting requests.");
        default:
                return bus_error_set(error, r, NULL);
        }
}

static int acquire_parse(sd_bus_message *message, AcquireRequest *req, sd_bus_error *error) {
        uint32_t helpers;
        int32_t node;
        int r;

        r = sd_bus_message_read(message, "ui", &helpers, &node);
        if (r < 0)
                return r;
        r = acquire_options_parse(message, req, error);
        if (r < 0)
                return r;
        if (helpers < 1 || helpers > BROKER_HELPERS_MAX)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                     "helpers must be in 1..%u, not %" PRIu32 ".",
                                     BROKER_HELPERS_MAX, helpers);
        if (req->min > helpers)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                     "min (%u) is larger than helpers (%" PRIu32 ").", req->min, helpers);
        req->helpers = helpers;
        req->node = node;
        if (node < -1)
                return bus_error_set(error, PAD_ERROR_NO_SUCH_NODE, "No NUMA node %" PRIi32 ".", node);
        return 0;
}

static int method_acquire(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        AcquireRequest req = { .tag = "" };
        Client *c;
        Lease *l;
        int r;

        /* A waiting call nobody reads the answer of would hold slots for nothing. */
        if (!sd_bus_message_get_expect_reply(message))
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS, "Acquire must expect a reply.");
        r = acquire_parse(message, &req, error);
        if (r < 0) {
                manager_count(m, STATS_DENIED_INVALID);
                return r;
        }
        r = bus_get_client(m, message, &c, error);
        if (r < 0)
                return r;
        r = lease_acquire(c, &req, acquire_complete, message, &l);
        if (r != 0)
                return acquire_error(r, &req, c, error);
        if (!l) {
                sd_bus_message_ref(message);    /* answered by acquire_complete */
                return 1;
        }
        return acquire_reply(message, l);
}

/* ---- ListLeases, SetQuota, Reload ----------------------------------------------------- */

/* ListLeases' answer grows with the leases: bounded per caller (admins, trusted to read
 * what they ask for, are not) and by paddd's queue, so that callers who never read cannot
 * make paddd hold their answers for everyone else. */
static int list_leases_allowed(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        uint64_t now = 0, queued = 0;
        Client *c;
        int r;

        r = bus_get_client(m, message, &c, error);
        if (r < 0)
                return r;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (sd_bus_get_n_queued_write(sd_bus_message_get_bus(message), &queued) >= 0 &&
            queued > BROKER_LIST_QUEUE_MAX)
                return bus_error_set(error, PAD_ERROR_LIMITS_EXCEEDED,
                                     "paddd has %" PRIu64 " messages still to send; ListLeases later.", queued);
        if (!client_is_admin_cached(c) && !client_take_list_token(c, now))
                return bus_error_set(error, PAD_ERROR_LIMITS_EXCEEDED,
                                     "At most %u ListLeases calls at once and %u a second per connection.",
                                     BROKER_LIST_BURST, BROKER_LIST_PER_SEC);
        return 0;
}

static int method_list_leases(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = list_leases_allowed(m, message, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ouuuss)");
        if (r < 0)
                return r;
        for (Lease *l = lease_next(m, NULL); l; l = lease_next(m, l)) {
                r = sd_bus_message_append(reply, "(ouuuss)", l->path, (uint32_t) l->client->uid,
                                          (uint32_t) l->client->pid, lease_get_granted(l),
                                          l->client->name, l->tag);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The caller's client, which must be an admin. */
static int bus_check_admin(Manager *m, sd_bus_message *message, const char *what, sd_bus_error *error) {
        Client *c;
        int r;

        r = bus_get_client(m, message, &c, error);
        if (r < 0)
                return r;
        if (!client_is_admin(c)) {
                manager_count(m, STATS_DENIED_ACCESS);
                log_notice("Refused %s to %s (uid " UID_FMT "): not an admin.", what, c->name, c->uid);
                return bus_error_set(error, PAD_ERROR_ACCESS_DENIED,
                                     "%s needs uid 0 or membership in the AdminGroup.", what);
        }
        return 0;
}

static int method_set_quota(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint32_t max_helpers;
        int32_t node;
        int r;

        r = sd_bus_message_read(message, "iu", &node, &max_helpers);
        if (r < 0)
                return r;
        r = bus_check_admin(m, message, "SetQuota", error);
        if (r < 0)
                return r;
        if (max_helpers > BROKER_HELPERS_MAX)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS, "max_helpers must be in 0..%u, not %" PRIu32 ".",
                                     BROKER_HELPERS_MAX, max_helpers);
        r = manager_set_quota(m, node, max_helpers);
        if (r == PAD_ERROR_NO_SUCH_NODE)
                return bus_error_set(error, r, "No NUMA node %" PRIi32 ".", node);
        if (r != 0)
                return bus_error_set(error, r, NULL);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = NULL;
        Manager *m = userdata;
        int r;

        r = bus_check_admin(m, message, "Reload", error);
        if (r < 0)
                return r;
        log_info("Reloading the configuration for %s.", sd_bus_message_get_sender(message));
        r = manager_reload(m, &text);
        if (r < 0 && text)
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, text);
        if (r != 0)
                return bus_error_set(error, r, NULL);
        return sd_bus_reply_method_return(message, NULL);
}

static const sd_bus_vtable broker_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("MaxHelpers", "u", property_get_max_helpers, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("InUse", "u", property_get_in_use, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Waiting", "u", property_get_waiting, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Leases", "u", property_get_leases, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Nodes", "a(iuuu)", property_get_nodes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("HelperPolicy", "s", property_get_helper_policy, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Acquire",
                                SD_BUS_ARGS("u", helpers, "i", node, "a{sv}", options),
                                SD_BUS_RESULT("o", lease, "u", granted),
                                method_acquire, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListLeases",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(ouuuss)", leases),
                                method_list_leases, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetStatistics",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a{st}", counters, "a(tt)", wait_histogram, "t", wait_usec_sum,
                                              "a(itt)", nodes, "a(utt)", users),
                                stats_bus_method_get, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetQuota",
                                SD_BUS_ARGS("i", node, "u", max_helpers),
                                SD_BUS_NO_RESULT,
                                method_set_quota, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload",
                                SD_BUS_NO_ARGS,
                                SD_BUS_NO_RESULT,
                                method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

const sd_bus_vtable *broker_bus_vtable(void) {
        return broker_vtable;
}

/* ---- change signals (the manager's hooks) --------------------------------------------- */

static void on_broker_changed(Manager *m, const char *const *names, void *userdata) {
        (void) sd_bus_emit_properties_changed_strv(userdata, BROKER_PATH, BROKER_INTERFACE, (char **) names);
}

static void on_lease_changed(Lease *l, void *userdata) {
        (void) sd_bus_emit_properties_changed(userdata, l->path, LEASE_INTERFACE, "Granted", "Placement", NULL);
}

/* Sent to the owner alone (a unicast signal), so only it learns of its lease's end. */
static void on_lease_expired(Lease *l, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        if (sd_bus_message_new_signal(userdata, &m, l->path, LEASE_INTERFACE, "Expired") >= 0 &&
            sd_bus_message_set_destination(m, l->client->name) >= 0)
                (void) sd_bus_send(userdata, m, NULL);
}

/* ---- start ---------------------------------------------------------------------------- */

typedef struct OwnerCheck {
        void *names;            /* tsearch tree of the unique names on the bus now */
} OwnerCheck;

static int name_compare(const void *a, const void *b) {
        return strcmp(a, b);
}

static void name_free_nothing(void *p) {
        /* the names belong to the ListNames reply */
}

static int check_owner(const StateLease *l, void *userdata) {
        OwnerCheck *oc = userdata;

        return tfind(l->owner, &oc->names, name_compare) ? 1 : 0;
}

/* Adopt again the leases of the books whose owners are still connected. Unique names are
 * never reused on one bus (the bus id says it is the same one), and the match for
 * NameOwnerChanged is in place first, so an owner that leaves after ListNames is seen. */
static int broker_bus_restore(Manager *m, sd_bus *bus, const StateBooks *saved, BooksRestored *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        OwnerCheck oc = {};
        char bus_id[33];
        sd_id128_t id;
        const char *name;
        int r;

        r = sd_bus_get_bus_id(bus, &id);
        if (r < 0)
                return r;
        sd_id128_to_string(id, bus_id);
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "ListNames", &error, &reply, "");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "s");
        while (r >= 0 && (r = sd_bus_message_read(reply, "s", &name)) > 0)
                if (name[0] == ':' && !tsearch(name, &oc.names, name_compare))
                        r = -ENOMEM;
        if (r >= 0)
                r = books_restore(m, saved, bus_id, check_owner, &oc, ret);
        tdestroy(oc.names, name_free_nothing);
        return r;
}

int broker_bus_connect(Manager *m, sd_bus *bus, const StateBooks *saved, BooksRestored *ret_restored) {
        const ManagerHooks hooks = {
                .broker_changed = on_broker_changed,
                .lease_changed = on_lease_changed,
                .lease_expired = on_lease_expired,
                .userdata = bus,
        };
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, BROKER_PATH, BROKER_INTERFACE, broker_vtable, m);
        if (r < 0)
                return r;
        r = lease_bus_add(m, bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, m);
        if (r < 0)
                return r;
        r = broker_bus_restore(m, bus, saved, ret_restored);
        if (r < 0)
                return r;
        manager_set_hooks(m, &hooks);
        /* Only now, with every lease of the books accounted, may anyone be granted slots. */
        return sd_bus_request_name(bus, BROKER_BUS_NAME, 0);
}
