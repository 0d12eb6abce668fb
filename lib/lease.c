/* lease.c: a pad_lease, one org.padata.Broker.Lease object the client acquired: Acquire with
 * its options, the grant and its placement as the broker reported them, Shrink,
 * RaisePriority and Release, each through the client's locked connection (client.c). A
 * lease keeps its client alive until it is freed. */
#include "internal.h"

#include <string.h>

#include "broker-contract.h"
#include "util.h"

#define CALL_TIMEOUT_USEC (10 * 1000 * 1000ULL)

struct pad_lease {
        pad_client *client;
        char *path;
        unsigned granted;
        bool released;
        unsigned n_placement;
        int placement_node[PAD_PLACEMENT_MAX];
        unsigned placement_helpers[PAD_PLACEMENT_MAX];
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
        if (!l->path)
                return -ENOMEM;
        l->granted = granted;
        return 0;
}

/* With the client locked. */
static void lease_call_release_locked(pad_lease *l, sd_bus *bus) {
        (void) sd_bus_call_method(bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "Release",
                                  NULL, NULL, NULL);
        l->released = true;
}

static pad_lease *lease_free_unlocked(pad_lease *l) {
        if (!l)
                return NULL;
        free(l->path);
        client_unref(l->client);
        free(l);
        return NULL;
}
DEFINE_POINTER_CLEANUP(pad_lease, lease_free_unlocked);

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
        r = acquire_locked(bus, helpers, node, opts, l, &error);
        if (r < 0) {
                r = r == -ENOMEM ? r : client_call_failed_locked(c, &error, r);
                if (l->path)
                        lease_call_release_locked(l, bus);
        } else {
                lease_read_placement_locked(l, bus);
                (void) client_read_policy_once_locked(c);
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
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t granted = 0;
        sd_bus *bus;
        int r;

        if (!l || count == 0)
                return -EINVAL;
        if (l->released)
                return -ESTALE;
        bus = client_lock(l->client);
        if (count > l->granted)
                r = -EINVAL;
        else {
                r = sd_bus_call_method(bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "Shrink",
                                       &error, &reply, "u", (uint32_t) count);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "u", &granted);
                if (r >= 0) {
                        l->granted = granted;
                        r = (int) granted;
                } else
                        r = client_call_failed_locked(l->client, &error, r);
        }
        reply = sd_bus_message_unref(reply);
        client_unlock(l->client);
        sd_bus_error_free(&error);
        return r;
}

_public_ int pad_lease_raise_priority(pad_lease *l, pid_t tid) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus *bus;
        int r;

        if (!l || tid <= 0)
                return -EINVAL;
        if (l->released)
                return -ESTALE;
        bus = client_lock(l->client);
        r = sd_bus_call_method(bus, BROKER_BUS_NAME, l->path, LEASE_INTERFACE, "RaisePriority",
                               &error, NULL, "u", (uint32_t) tid);
        if (r < 0)
                r = client_call_failed_locked(l->client, &error, r);
        client_unlock(l->client);
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
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
        if (!l->released) {
                bus = client_lock(l->client);
                lease_call_release_locked(l, bus);
                client_unlock(l->client);
        }
        return lease_free_unlocked(l);
}
