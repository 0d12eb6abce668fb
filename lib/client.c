/* client.c: the client handle. A pad_client owns one sd-bus connection (system, session or
 * a given address) guarded by a mutex, since sd-bus objects are not thread-safe and helper
 * threads call Shrink through the same connection; leases (lease.c) and the admin calls
 * (broker-admin.c) use it through client_lock(). A client without a broker (no bus, nobody
 * owning org.padata.Broker) is still a valid client: jobs then run in fallback mode and
 * acquire returns -EHOSTDOWN; the client remembers why, for pad_client_broker_error(). It
 * also reads the broker's HelperPolicy once. Nothing here prints. */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "parse.h"
#include "util.h"

#define CLIENT_REASON_MAX 256

struct pad_client {
        atomic_uint n_ref;
        pthread_mutex_t lock;           /* guards bus, policy_read, policy, reason, reason_errno, leases */
        sd_bus *bus;                    /* NULL: could not connect */
        char *bus_label;                /* "system", "session" or the address, for messages */
        char reason[CLIENT_REASON_MAX]; /* why there is no broker, "" when none is known */
        int reason_errno;               /* the errno behind reason, 0 when none is known */
        bool policy_read;
        HelperPolicy policy;
        bool single_node;               /* the machine has node 0 only: no Placement call */
        unsigned fallback_helpers;
        pad_lease *leases;              /* live leases (lease.c), under lock */
        OwedRelease *owed;              /* releases to send to the next paddd, under lock */
        unsigned n_owed;
};

static unsigned fallback_helpers_from_env(void) {
        const char *s = getenv("PADCLIENT_FALLBACK_HELPERS");
        uint64_t v;

        /* Not a plain decimal number: none. Too large: the most there may be. */
        if (!s || parse_unsigned(s, UINT64_MAX, &v) < 0)
                return 0;
        return (unsigned) MIN(v, (uint64_t) CLIENT_FALLBACK_HELPERS_MAX);
}

static const char *bus_describe(const char *label) {
        return streq(label, "system") ? "the system bus" :
               streq(label, "session") ? "the session bus" : label;
}

static int bus_spec_check(const char *bus) {
        if (!*bus)
                return -EINVAL;
        /* Anything but the two names must at least look like a D-Bus address. */
        if (!streq(bus, "system") && !streq(bus, "session") && !strchr(bus, ':'))
                return -EINVAL;
        return 0;
}

static pad_client *client_alloc(const char *bus) {
        pad_client *c = calloc(1, sizeof *c);

        if (!c)
                return NULL;
        c->bus_label = strdup(bus);
        if (!c->bus_label) {
                free(c);
                return NULL;
        }
        atomic_init(&c->n_ref, 1);
        pthread_mutex_init(&c->lock, NULL);
        c->policy = HELPER_POLICY_IDLE;
        c->fallback_helpers = fallback_helpers_from_env();
        c->single_node = cpuset_machine_single_node();
        return c;
}

DEFINE_POINTER_CLEANUP(pad_client, pad_client_free);

/* Messages paddd sends unasked, seen while the client (locked) processes its connection:
 * a lease's Expired signal, sent to its owner alone when its ttl ran out. */
static int client_on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        pad_client *c = userdata;

        if (sd_bus_message_is_signal(m, LEASE_INTERFACE, "Expired"))
                lease_expired_locked(c, sd_bus_message_get_sender(m), sd_bus_message_get_path(m));
        return 0;
}

void client_process_locked(pad_client *c, sd_bus *bus) {
        if (bus)
                while (sd_bus_process(bus, NULL) > 0)
                        ;
}

_public_ int pad_client_new(const char *bus, pad_client **ret) {
        _cleanup_(pad_client_freep) pad_client *c = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (!bus) {
                bus = getenv("PADCLIENT_BUS");
                if (!bus || !*bus)
                        bus = "system";
        }
        r = bus_spec_check(bus);
        if (r < 0)
                return r;

        bus_error_map_register();
        c = client_alloc(bus);
        if (!c)
                return -ENOMEM;
        r = bus_open_spec(bus, NULL, &c->bus);
        if (r >= 0)
                r = sd_bus_add_filter(c->bus, NULL, client_on_message, c);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* No bus is not an error: the client runs jobs in fallback mode. */
                c->bus = NULL;
                c->reason_errno = r;
                snprintf(c->reason, sizeof c->reason, "cannot connect to %s: %s",
                         bus_describe(bus), strerror(-r));
        }
        *ret = TAKE_PTR(c);
        return 0;
}

pad_client *client_ref(pad_client *c) {
        assert(c);
        atomic_fetch_add(&c->n_ref, 1);
        return c;
}

pad_client *client_unref(pad_client *c) {
        if (!c || atomic_fetch_sub(&c->n_ref, 1) != 1)
                return NULL;
        if (c->bus)
                sd_bus_flush_close_unref(c->bus);
        for (unsigned i = 0; i < c->n_owed; i++) {
                free(c->owed[i].path);
                free(c->owed[i].broker);
        }
        free(c->owed);
        pthread_mutex_destroy(&c->lock);
        free(c->bus_label);
        free(c);
        return NULL;
}

/* Leases keep their client alive, so a lease may outlive pad_client_free(). */
_public_ pad_client *pad_client_free(pad_client *c) {
        return client_unref(c);
}

_public_ const char *pad_client_bus(const pad_client *c) {
        return c ? c->bus_label : NULL;
}

bool client_connected(pad_client *c) {
        return c && c->bus;
}

pad_lease **client_leases_locked(pad_client *c) {
        return &c->leases;
}


int client_owe_release_locked(pad_client *c, const char *path, const char *broker) {
        OwedRelease o = { .path = strdup(path), .broker = strdup(broker) };

        if (!o.path || !o.broker) {
                free(o.path);
                free(o.broker);
                return -ENOMEM;
        }
        if (c->n_owed == CLIENT_OWED_MAX) {
                free(c->owed[0].path);
                free(c->owed[0].broker);
                memmove(c->owed, c->owed + 1, (c->n_owed - 1) * sizeof(*c->owed));
                c->n_owed--;
        } else {
                OwedRelease *p = realloc(c->owed, (c->n_owed + 1) * sizeof(*p));

                if (!p) {
                        free(o.path);
                        free(o.broker);
                        return -ENOMEM;
                }
                c->owed = p;
        }
        c->owed[c->n_owed++] = o;
        return 0;
}

OwedRelease *client_take_owed_locked(pad_client *c, unsigned *ret_n) {
        *ret_n = c->n_owed;
        c->n_owed = 0;
        return TAKE_PTR(c->owed);
}

bool client_single_node(const pad_client *c) {
        return c->single_node;
}

sd_bus *client_lock(pad_client *c) {
        assert(c);
        pthread_mutex_lock(&c->lock);
        return c->bus;
}

void client_unlock(pad_client *c) {
        pthread_mutex_unlock(&c->lock);
}

int client_call_failed_locked(pad_client *c, const sd_bus_error *e, int r) {
        r = bus_error_to_errno(e, r);
        if (r == -EHOSTDOWN) {
                c->reason_errno = r;
                if (bus_error_is_not_running(e))
                        snprintf(c->reason, sizeof c->reason, "%s is not running on %s",
                                 BROKER_BUS_NAME, bus_describe(c->bus_label));
                else
                        bus_error_message(e, r, c->reason, sizeof c->reason);
        }
        return r;
}

static int client_read_policy_locked(pad_client *c, sd_bus_error *error) {
        _cleanup_free_ char *s = NULL;
        int r, p;

        if (!c->bus)
                return c->reason_errno < 0 ? c->reason_errno : -ENOTCONN;
        r = sd_bus_get_property_string(c->bus, BROKER_BUS_NAME, BROKER_PATH, BROKER_INTERFACE,
                                       "HelperPolicy", error, &s);
        if (r < 0)
                return r;
        p = helper_policy_from_string(s);
        c->policy = p < 0 ? HELPER_POLICY_IDLE : (HelperPolicy) p;
        c->policy_read = true;
        return 0;
}

/* Ask the broker something cheap: 0, or the errno why it did not answer (recorded). */
static int client_probe_locked(pad_client *c) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!c->bus)
                return c->reason_errno;
        r = client_read_policy_locked(c, &error);
        if (r < 0)
                r = client_call_failed_locked(c, &error, r);
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
}

_public_ int pad_client_has_broker(pad_client *c) {
        int r;

        if (!c)
                return 0;
        client_lock(c);
        r = client_probe_locked(c);
        client_unlock(c);
        return r >= 0;
}

_public_ int pad_client_broker_error(pad_client *c, char *ret_msg, size_t ret_msg_len) {
        int r;

        if (!c)
                return -EINVAL;
        client_lock(c);
        r = client_probe_locked(c);
        if (ret_msg && ret_msg_len > 0)
                snprintf(ret_msg, ret_msg_len, "%s", r < 0 ? c->reason : "");
        client_unlock(c);
        return r;
}

int client_read_policy_once_locked(pad_client *c) {
        if (c->policy_read || !c->bus)
                return 0;
        return client_read_policy_locked(c, NULL);
}

HelperPolicy client_helper_policy(pad_client *c) {
        HelperPolicy p;

        if (!c)
                return HELPER_POLICY_NONE;
        client_lock(c);
        (void) client_read_policy_once_locked(c);
        p = c->policy;
        client_unlock(c);
        return p;
}

unsigned client_fallback_helpers(pad_client *c) {
        return c ? c->fallback_helpers : fallback_helpers_from_env();
}
