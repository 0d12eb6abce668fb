/* libpadclient.c: the client handle and its leases. A pad_client owns one sd-bus connection
 * (system, session or a given address) guarded by a mutex, since sd-bus objects are not
 * thread-safe and helper threads call Shrink through the same connection. A client without
 * a broker (no bus, nobody owning org.padata.Broker) is still a valid client: jobs then run in
 * fallback mode and acquire returns -EHOSTDOWN. Leases are org.padata.Broker.Lease objects;
 * this file turns the broker's D-Bus errors into the errnos promised by padclient.h, reads
 * the broker's HelperPolicy once per client, and prints the one "no broker" warning. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "parse.h"
#include "util.h"

#define CALL_TIMEOUT_USEC (10 * 1000 * 1000ULL)
/* dbus-daemon's errors for a service it failed to activate. */
#define DBUS_ERROR_SPAWN_PREFIX "org.freedesktop.DBus.Error.Spawn."

struct pad_client {
        atomic_uint n_ref;
        pthread_mutex_t lock;           /* guards bus, policy_read, policy, reason */
        sd_bus *bus;                    /* NULL: could not connect */
        char *bus_label;                /* "system", "session" or the address, for messages */
        char reason[128];               /* why there is no broker, for the warning */
        bool policy_read;
        HelperPolicy policy;
        bool single_node;               /* the machine has node 0 only: no Placement call */
        unsigned fallback_helpers;
        atomic_bool warned;
};

struct pad_lease {
        pad_client *client;
        char *path;
        unsigned granted;
        bool released;
        unsigned n_placement;
        int placement_node[PAD_PLACEMENT_MAX];
        unsigned placement_helpers[PAD_PLACEMENT_MAX];
};

/* ---- errors ----------------------------------------------------------------------------- */

static bool error_is_no_broker(const char *name) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN,
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_DISCONNECTED,
                SD_BUS_ERROR_NO_SERVER,
                SD_BUS_ERROR_TIMEOUT,
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(name, names[i]))
                        return true;
        return strncmp(name, DBUS_ERROR_SPAWN_PREFIX, strlen(DBUS_ERROR_SPAWN_PREFIX)) == 0;
}

static bool errno_is_no_broker(int r) {
        switch (-r) {
        case ECONNRESET: case ECONNREFUSED: case ENOTCONN: case EPIPE: case ETIMEDOUT:
        case ENOENT: case ESHUTDOWN: case EHOSTDOWN: case ECONNABORTED:
                return true;
        default:
                return false;
        }
}

/* The broker's error names, registered with sd-bus once per process, so that
 * sd_bus_error_get_errno() and the errno of a failed sd_bus_call() follow the contract. */
static void error_map_register(void) {
        (void) sd_bus_error_add_map(broker_error_map);
}

static void error_map_once(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        (void) pthread_once(&once, error_map_register);
}

int bus_error_to_errno(const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e)) {
                if (error_is_no_broker(e->name))
                        return -EHOSTDOWN;
                error_map_once();
                return -sd_bus_error_get_errno(e);
        }
        if (r < 0 && errno_is_no_broker(r))
                return -EHOSTDOWN;
        return r < 0 ? r : -EIO;
}

static void client_set_reason(pad_client *c, const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e)) {
                if (streq(e->name, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                    streq(e->name, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        snprintf(c->reason, sizeof c->reason, "%s not running", BROKER_BUS_NAME);
                else
                        snprintf(c->reason, sizeof c->reason, "%s", e->name);
        } else
                snprintf(c->reason, sizeof c->reason, "%s", strerror(r < 0 ? -r : EIO));
}

/* ---- the client ------------------------------------------------------------------------- */

static unsigned fallback_helpers_from_env(void) {
        const char *s = getenv("PADCLIENT_FALLBACK_HELPERS");
        uint64_t v;

        /* Not a plain decimal number: none. Too large: the most there may be. */
        if (!s || parse_unsigned(s, UINT64_MAX, &v) < 0)
                return 0;
        return (unsigned) MIN(v, (uint64_t) CLIENT_FALLBACK_HELPERS_MAX);
}

_public_ int pad_client_new(const char *bus, pad_client **ret) {
        pad_client *c;
        int r;

        if (!ret)
                return -EINVAL;
        if (!bus) {
                bus = getenv("PADCLIENT_BUS");
                if (!bus || !*bus)
                        bus = "system";
        }
        if (!*bus)
                return -EINVAL;
        /* Anything but the two names must at least look like a D-Bus address. */
        if (!streq(bus, "system") && !streq(bus, "session") && !strchr(bus, ':'))
                return -EINVAL;

        error_map_once();
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        atomic_init(&c->n_ref, 1);
        atomic_init(&c->warned, false);
        pthread_mutex_init(&c->lock, NULL);
        c->policy = HELPER_POLICY_IDLE;
        c->fallback_helpers = fallback_helpers_from_env();
        c->single_node = cpuset_machine_single_node();
        c->bus_label = strdup(bus);
        if (!c->bus_label) {
                pthread_mutex_destroy(&c->lock);
                free(c);
                return -ENOMEM;
        }

        r = bus_open_spec(bus, NULL, &c->bus);
        if (r == -ENOMEM) {
                pad_client_free(c);
                return r;
        }
        if (r < 0) {
                /* No bus is not an error: the client runs jobs in fallback mode. */
                c->bus = NULL;
                snprintf(c->reason, sizeof c->reason, "cannot connect: %s", strerror(-r));
        }
        *ret = c;
        return 0;
}

static pad_client *client_ref(pad_client *c) {
        atomic_fetch_add(&c->n_ref, 1);
        return c;
}

static void client_unref(pad_client *c) {
        if (!c || atomic_fetch_sub(&c->n_ref, 1) != 1)
                return;
        if (c->bus)
                sd_bus_flush_close_unref(c->bus);
        pthread_mutex_destroy(&c->lock);
        free(c->bus_label);
        free(c);
}

/* Leases keep their client alive, so a lease may outlive pad_client_free(). */
_public_ pad_client *pad_client_free(pad_client *c) {
        client_unref(c);
        return NULL;
}

bool client_connected(pad_client *c) {
        return c && c->bus;
}

/* Called with c->lock held. */
static int client_read_policy_locked(pad_client *c, sd_bus_error *error) {
        _cleanup_free_ char *s = NULL;
        int r, p;

        r = sd_bus_get_property_string(c->bus, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                       "HelperPolicy", error, &s);
        if (r < 0)
                return r;
        p = helper_policy_from_string(s);
        c->policy = p < 0 ? HELPER_POLICY_IDLE : (HelperPolicy) p;
        c->policy_read = true;
        return 0;
}

_public_ int pad_client_has_broker(pad_client *c) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!c || !c->bus)
                return 0;
        pthread_mutex_lock(&c->lock);
        r = client_read_policy_locked(c, &error);
        if (r < 0)
                client_set_reason(c, &error, r);
        pthread_mutex_unlock(&c->lock);
        sd_bus_error_free(&error);
        return r >= 0;
}

HelperPolicy client_helper_policy(pad_client *c) {
        HelperPolicy p;

        if (!c)
                return HELPER_POLICY_NONE;
        pthread_mutex_lock(&c->lock);
        if (!c->policy_read && c->bus)
                (void) client_read_policy_locked(c, NULL);
        p = c->policy;
        pthread_mutex_unlock(&c->lock);
        return p;
}

unsigned client_fallback_helpers(pad_client *c) {
        return c ? c->fallback_helpers : fallback_helpers_from_env();
}

void client_warn_no_broker(pad_client *c, const char *reason, unsigned helpers) {
        char buf[sizeof c->reason];

        if (!c || atomic_exchange(&c->warned, true))
                return;
        if (!reason) {
                pthread_mutex_lock(&c->lock);
                memcpy(buf, c->reason, sizeof buf);
                pthread_mutex_unlock(&c->lock);
                reason = buf[0] ? buf : "unknown";
        }
        fprintf(stderr, "padclient: no broker on %s (%s); running with %u helpers\n",
                c->bus_label, reason, helpers);
}

/* ---- leases ------------------------------------------------------------------------------ */

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

/* Called with c->lock held: read the lease's Placement into l (best effort). */
static void lease_read_placement_locked(pad_lease *l) {
        sd_bus_message *reply = NULL;
        int32_t node;
        uint32_t n;
        int r;

        r = sd_bus_get_property(l->client->bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "Placement",
                                NULL, &reply, "a(iu)");
        if (r < 0)
                return;
        r = sd_bus_message_enter_container(reply, 'a', "(iu)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(iu)", &node, &n)) > 0)
                if (l->n_placement < PAD_PLACEMENT_MAX && n > 0) {
                        l->placement_node[l->n_placement] = node;
                        l->placement_helpers[l->n_placement] = n;
                        l->n_placement++;
                }
        sd_bus_message_unref(reply);
}

/* Called with c->lock held. */
static int acquire_locked(pad_client *c, unsigned helpers, int node, const pad_acquire_opts *o,
                          pad_lease *l, sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        uint32_t granted;
        uint64_t timeout = CALL_TIMEOUT_USEC + (o ? o->wait_usec : 0);
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                           "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "ui", (uint32_t) helpers, (int32_t) node);
        if (r >= 0)
                r = append_options(m, o);
        if (r >= 0)
                r = sd_bus_call(c->bus, m, timeout, error, &reply);
        sd_bus_message_unref(m);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ou", &path, &granted);
        if (r >= 0) {
                l->path = strdup(path);
                l->granted = granted;
                r = l->path ? 0 : -ENOMEM;
        }
        sd_bus_message_unref(reply);
        if (r < 0)
                return r;
        if (granted > 0 && c->single_node) {
                l->n_placement = 1;
                l->placement_node[0] = 0;
                l->placement_helpers[0] = granted;
        } else if (granted > 0)
                lease_read_placement_locked(l);
        if (!c->policy_read)
                (void) client_read_policy_locked(c, NULL);
        return 0;
}

static void lease_call_release_locked(pad_lease *l) {
        (void) sd_bus_call_method(l->client->bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "Release",
                                  NULL, NULL, NULL);
        l->released = true;
}

_public_ int pad_client_acquire(pad_client *c, unsigned helpers, int node,
                                const pad_acquire_opts *opts, pad_lease **ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        pad_lease *l;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = acquire_opts_check(helpers, node, opts);
        if (r < 0)
                return r;
        if (!c->bus)
                return -EHOSTDOWN;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->client = c;

        pthread_mutex_lock(&c->lock);
        r = acquire_locked(c, helpers, node, opts, l, &error);
        if (r < 0) {
                r = r == -ENOMEM ? r : bus_error_to_errno(&error, r);
                if (r == -EHOSTDOWN)
                        client_set_reason(c, &error, r);
                if (l->path)
                        lease_call_release_locked(l);
        }
        pthread_mutex_unlock(&c->lock);
        sd_bus_error_free(&error);
        if (r < 0) {
                free(l->path);
                free(l);
                return r;
        }
        client_ref(c);
        *ret = l;
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
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        pad_client *c;
        uint32_t granted = 0;
        int r;

        if (!l || count == 0)
                return -EINVAL;
        if (l->released)
                return -ESTALE;
        c = l->client;
        pthread_mutex_lock(&c->lock);
        if (count > l->granted)
                r = -EINVAL;
        else {
                r = sd_bus_call_method(c->bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "Shrink",
                                       &error, &reply, "u", (uint32_t) count);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "u", &granted);
                if (r >= 0) {
                        l->granted = granted;
                        r = (int) granted;
                } else
                        r = bus_error_to_errno(&error, r);
        }
        pthread_mutex_unlock(&c->lock);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        return r;
}

_public_ int pad_lease_raise_priority(pad_lease *l, pid_t tid) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        pad_client *c;
        int r;

        if (!l || tid <= 0)
                return -EINVAL;
        if (l->released)
                return -ESTALE;
        c = l->client;
        pthread_mutex_lock(&c->lock);
        r = sd_bus_call_method(c->bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "RaisePriority",
                               &error, NULL, "u", (uint32_t) tid);
        if (r < 0)
                r = bus_error_to_errno(&error, r);
        pthread_mutex_unlock(&c->lock);
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
}

_public_ const char *pad_lease_helper_policy(const pad_lease *l) {
        if (!l)
                return NULL;
        return helper_policy_to_string(client_helper_policy(l->client));
}

_public_ pad_lease *pad_lease_free(pad_lease *l) {
        pad_client *c;

        if (!l)
                return NULL;
        c = l->client;
        if (!l->released) {
                pthread_mutex_lock(&c->lock);
                lease_call_release_locked(l);
                pthread_mutex_unlock(&c->lock);
        }
        free(l->path);
        free(l);
        client_unref(c);
        return NULL;
}

/* ---- cancellation -------------------------------------------------------------------------- */

_public_ void pad_cancel_request(pad_cancel *c) {
        if (c)
                __atomic_store_n(&c->requested, 1, __ATOMIC_SEQ_CST);
}

_public_ void pad_cancel_reset(pad_cancel *c) {
        if (c)
                __atomic_store_n(&c->requested, 0, __ATOMIC_SEQ_CST);
}
