/* bus.c: the vtables of org.padata.Broker (/org/padata/Broker) and org.padata.Broker.Lease
 * (/org/padata/Broker/lease/<id>, a fallback vtable with a node enumerator), and the
 * translation between D-Bus arguments and manager calls: parse and validate arguments and
 * the a{sv} options, check owners and admins, call the manager, build replies. Errors go
 * through bus-error.c. Every method is SD_BUS_VTABLE_UNPRIVILEGED: authorisation is done
 * here on the bus credentials the manager caches per client. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "bus-error.h"
#include "bus.h"
#include "log.h"
#include "manager.h"
#include "paddd-config.h"

/* ---- org.padata.Broker ---------------------------------------------------------------- */

static int property_get_max_helpers(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", budget_get_max_helpers(m->budget));
}

static int property_get_in_use(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", budget_get_in_use(m->budget));
}

static int property_get_waiting(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", budget_get_n_waiting(m->budget));
}

static int property_get_leases(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", budget_get_n_leases(m->budget));
}

static int property_get_nodes(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(iuuu)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < budget_get_n_nodes(m->budget); i++) {
                unsigned cpus, max, in_use;
                int id;

                budget_get_node(m->budget, i, &id, &cpus, &max, &in_use);
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

        return sd_bus_message_append(reply, "s", helper_policy_to_string(m->config->helper_policy));
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
                                             "tag is longer than %d bytes.", BROKER_TAG_MAX);
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

int bus_reply_acquire(sd_bus_message *message, const Lease *l) {
        return sd_bus_reply_method_return(message, "ou", l->path,
                                          budget_lease_get_granted(l->budget_lease));
}

static int method_acquire(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        AcquireRequest req = { .tag = "" };
        uint32_t helpers;
        int32_t node;
        Client *c;
        Lease *l;
        int r;

        r = sd_bus_message_read(message, "ui", &helpers, &node);
        if (r < 0)
                return r;
        r = acquire_options_parse(message, &req, error);
        if (r < 0)
                return r;
        if (helpers < 1 || helpers > BROKER_HELPERS_MAX)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                     "helpers must be in 1..%u, not %" PRIu32 ".",
                                     BROKER_HELPERS_MAX, helpers);
        if (req.min > helpers)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS,
                                     "min (%u) is larger than helpers (%" PRIu32 ").", req.min, helpers);
        req.helpers = helpers;
        req.node = node;
        if (node < -1)
                return bus_error_set(error, PAD_ERROR_NO_SUCH_NODE, "No NUMA node %" PRIi32 ".", node);

        r = manager_get_client(m, message, &c);
        if (r != 0)
                return bus_error_set(error, r, r == PAD_ERROR_ACCESS_DENIED ?
                                     "The bus gave no trustworthy credentials for the caller." : NULL);

        r = manager_acquire(m, c, message, &req, &l);
        switch (r) {
        case 0:
                if (!l)
                        return 1;       /* queued: answered when served or at the deadline */
                return bus_reply_acquire(message, l);
        case PAD_ERROR_NO_SUCH_NODE:
                return bus_error_set(error, r, "No NUMA node %" PRIi32 ".", node);
        case PAD_ERROR_INVALID_ARGS:
                return bus_error_set(error, r, "Thread %d is not a thread of the calling process.",
                                     req.caller_tid > 0 ? req.caller_tid : c->pid);
        case PAD_ERROR_BUSY:
                return bus_error_set(error, r, "Fewer than %u helpers are free.", MAX(req.min, 1u));
        case PAD_ERROR_LIMITS_EXCEEDED:
                return bus_error_set(error, r, "Too many leases for this client or waiting requests.");
        default:
                return bus_error_set(error, r, NULL);
        }
}

static int method_list_leases(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ouuuss)");
        if (r < 0)
                return r;
        for (BudgetLease *bl = budget_next_lease(m->budget, NULL); bl;
             bl = budget_next_lease(m->budget, bl)) {
                const Lease *l = budget_lease_get_userdata(bl);

                if (!l)
                        continue;
                r = sd_bus_message_append(reply, "(ouuuss)", l->path, (uint32_t) l->client->uid,
                                          (uint32_t) l->client->pid, budget_lease_get_granted(bl),
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

        r = manager_get_client(m, message, &c);
        if (r != 0)
                return bus_error_set(error, r, r == PAD_ERROR_ACCESS_DENIED ?
                                     "The bus gave no trustworthy credentials for the caller." : NULL);
        if (!manager_client_is_admin(m, c)) {
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

/* ---- org.padata.Broker.Lease ---------------------------------------------------------- */

static int property_get_granted(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "u", budget_lease_get_granted(l->budget_lease));
}

static int property_get_placement(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        Lease *l = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(iu)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < budget_lease_get_n_placement(l->budget_lease); i++) {
                unsigned helpers;
                int node;

                budget_lease_get_placement(l->budget_lease, i, &node, &helpers);
                r = sd_bus_message_append(reply, "(iu)", node, helpers);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_owner(sd_bus *bus, const char *path, const char *interface,
                              const char *property, sd_bus_message *reply, void *userdata,
                              sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "s", l->client->name);
}

static int property_get_pid(sd_bus *bus, const char *path, const char *interface,
                            const char *property, sd_bus_message *reply, void *userdata,
                            sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) l->client->pid);
}

static int property_get_uid(sd_bus *bus, const char *path, const char *interface,
                            const char *property, sd_bus_message *reply, void *userdata,
                            sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) l->client->uid);
}

static int property_get_tag(sd_bus *bus, const char *path, const char *interface,
                            const char *property, sd_bus_message *reply, void *userdata,
                            sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "s", l->tag);
}

static int lease_check_owner(Lease *l, sd_bus_message *message, sd_bus_error *error) {
        if (lease_is_owner(l, message))
                return 0;
        return bus_error_set(error, PAD_ERROR_ACCESS_DENIED,
                             "Only the connection that acquired lease %" PRIu64 " may call its methods.",
                             l->id);
}

static int method_release(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Lease *l = userdata;
        int r;

        r = lease_check_owner(l, message, error);
        if (r < 0)
                return r;
        lease_release(l);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_shrink(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Lease *l = userdata;
        unsigned granted;
        uint32_t count;
        int r;

        r = sd_bus_message_read(message, "u", &count);
        if (r < 0)
                return r;
        r = lease_check_owner(l, message, error);
        if (r < 0)
                return r;
        r = lease_shrink(l, count, &granted);
        if (r == PAD_ERROR_INVALID_ARGS)
                return bus_error_set(error, r, "Cannot give back %" PRIu32 " helpers: the lease holds %u.",
                                     count, budget_lease_get_granted(l->budget_lease));
        if (r != 0)
                return bus_error_set(error, r, NULL);
        return sd_bus_reply_method_return(message, "u", granted);
}

static int method_raise_priority(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Lease *l = userdata;
        uint32_t tid;
        int r;

        r = sd_bus_message_read(message, "u", &tid);
        if (r < 0)
                return r;
        r = lease_check_owner(l, message, error);
        if (r < 0)
                return r;
        if (tid == 0 || tid > INT_MAX)
                return bus_error_set(error, PAD_ERROR_INVALID_ARGS, "%" PRIu32 " is not a thread id.", tid);
        r = lease_raise_priority(l, (pid_t) tid);
        switch (r) {
        case 0:
                return sd_bus_reply_method_return(message, NULL);
        case PAD_ERROR_INVALID_ARGS:
                return bus_error_set(error, r,
                                     "Thread %" PRIu32 " is not a thread of the lease owner's process.", tid);
        case PAD_ERROR_ACCESS_DENIED:
                return bus_error_set(error, r, "Thread %" PRIu32 " may not be raised.", tid);
        default:
                return bus_error_set(error, r, NULL);
        }
}

static const sd_bus_vtable lease_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Granted", "u", property_get_granted, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Placement", "a(iu)", property_get_placement, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Owner", "s", property_get_owner, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pid", "u", property_get_pid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Uid", "u", property_get_uid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Tag", "s", property_get_tag, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Release",
                                SD_BUS_NO_ARGS,
                                SD_BUS_NO_RESULT,
                                method_release, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Shrink",
                                SD_BUS_ARGS("u", count),
                                SD_BUS_RESULT("u", granted),
                                method_shrink, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RaisePriority",
                                SD_BUS_ARGS("u", tid),
                                SD_BUS_NO_RESULT,
                                method_raise_priority, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* "/org/padata/Broker/lease/<id>": decimal id, no sign, no leading zero. */
static int lease_path_parse(const char *path, uint64_t *ret) {
        const char *p;
        char *end;

        if (strncmp(path, LEASE_PATH_PREFIX "/", strlen(LEASE_PATH_PREFIX "/")) != 0)
                return -EINVAL;
        p = path + strlen(LEASE_PATH_PREFIX "/");
        if (*p < '1' || *p > '9')
                return -EINVAL;
        errno = 0;
        *ret = strtoull(p, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        return 0;
}

static int lease_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                             void **found, sd_bus_error *error) {
        Manager *m = userdata;
        uint64_t id;
        Lease *l;

        if (lease_path_parse(path, &id) < 0)
                return 0;
        l = manager_find_lease(m, id);
        if (!l)
                return 0;
        *found = l;
        return 1;
}

static int lease_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                 sd_bus_error *error) {
        Manager *m = userdata;
        char **strv;
        size_t n = 0;

        strv = calloc(budget_get_n_leases(m->budget) + 1, sizeof(char *));
        if (!strv)
                return -ENOMEM;
        for (BudgetLease *bl = budget_next_lease(m->budget, NULL); bl;
             bl = budget_next_lease(m->budget, bl)) {
                const Lease *l = budget_lease_get_userdata(bl);

                if (!l)
                        continue;
                strv[n] = strdup(l->path);
                if (!strv[n]) {
                        while (n > 0)
                                free(strv[--n]);
                        free(strv);
                        return -ENOMEM;
                }
                n++;
        }
        *nodes = strv;
        return 0;
}

int bus_add_objects(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, BROKER_PATH, BROKER_INTERFACE, broker_vtable, m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, LEASE_PATH_PREFIX, LEASE_INTERFACE, lease_vtable,
                                       lease_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, LEASE_PATH_PREFIX, lease_node_enumerator, m);
}

/* ---- --bus-introspect ----------------------------------------------------------------- */

typedef struct IntrospectCall {
        char *xml;
        int error;
        unsigned *n_pending;
} IntrospectCall;

static int introspect_on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        IntrospectCall *call = userdata;
        const char *xml;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                r = -sd_bus_message_get_errno(reply);
        else
                r = sd_bus_message_read(reply, "s", &xml);
        if (r >= 0 && !(call->xml = strdup(xml)))
                r = -ENOMEM;
        call->error = r < 0 ? r : 0;
        if (--*call->n_pending == 0)
                return sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(reply)), 0);
        return 0;
}

static int introspect_call(sd_bus *client, const char *path, IntrospectCall *call) {
        return sd_bus_call_method_async(client, NULL, NULL, path, "org.freedesktop.DBus.Introspectable",
                                        "Introspect", introspect_on_reply, call, NULL);
}

/* Copy the <interface name="iface"> ... </interface> block of xml to f. */
static int introspect_print_interface(FILE *f, const char *xml, const char *iface) {
        char open[128];
        const char *start, *end;

        snprintf(open, sizeof open, "<interface name=\"%s\">", iface);
        start = strstr(xml, open);
        if (!start)
                return -ENOENT;
        end = strstr(start, "</interface>");
        if (!end)
                return -EBADMSG;
        fprintf(f, " %.*s</interface>\n", (int) (end - start), start);
        return 0;
}

int bus_introspect_print(FILE *f) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *server = NULL, *client = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        unsigned n_pending = 2;
        IntrospectCall broker = { .error = -EIO, .n_pending = &n_pending };
        IntrospectCall lease = { .error = -EIO, .n_pending = &n_pending };
        sd_id128_t id;
        int fds[2], r;

        /* A real sd-bus server on a socket pair, so the output is what paddd answers. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                return -errno;
        r = sd_event_new(&e);
        if (r >= 0)
                r = sd_bus_new(&server);
        if (r >= 0)
                r = sd_bus_set_fd(server, fds[0], fds[0]);
        if (r < 0) {
                safe_close(fds[0]);
                safe_close(fds[1]);
                return r;
        }
        r = sd_bus_new(&client);
        if (r >= 0)
                r = sd_bus_set_fd(client, fds[1], fds[1]);
        if (r < 0) {
                safe_close(fds[1]);
                return r;
        }
        r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(server, 1, id);
        if (r >= 0)
                r = sd_bus_add_object_vtable(server, NULL, BROKER_PATH, BROKER_INTERFACE,
                                             broker_vtable, NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(server, NULL, LEASE_PATH_PREFIX "/1", LEASE_INTERFACE,
                                             lease_vtable, NULL);
        if (r >= 0)
                r = sd_bus_start(server);
        if (r >= 0)
                r = sd_bus_start(client);
        if (r >= 0)
                r = sd_bus_attach_event(server, e, 0);
        if (r >= 0)
                r = sd_bus_attach_event(client, e, 0);
        if (r >= 0)
                r = introspect_call(client, BROKER_PATH, &broker);
        if (r >= 0)
                r = introspect_call(client, LEASE_PATH_PREFIX "/1", &lease);
        if (r >= 0)
                r = sd_event_loop(e);
        if (r >= 0)
                r = broker.error < 0 ? broker.error : lease.error;
        if (r < 0)
                goto finish;

        fputs("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
              "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"
              "<node>\n", f);
        r = introspect_print_interface(f, broker.xml, BROKER_INTERFACE);
        if (r >= 0)
                r = introspect_print_interface(f, lease.xml, LEASE_INTERFACE);
        if (r >= 0) {
                fputs("</node>\n", f);
                r = fflush(f) == 0 ? 0 : -errno;
        }
finish:
        free(broker.xml);
        free(lease.xml);
        return r;
}
