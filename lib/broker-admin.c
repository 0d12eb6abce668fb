/* broker-admin.c: the broker's administration for programs: its properties and per-node
 * quotas (pad_broker_status_get), every lease with its placement (pad_broker_list_leases),
 * SetQuota and Reload. Each call goes through the client's locked connection and reports a
 * failure as an errno and one line for ret_msg; nothing is cached. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker-contract.h"
#include "util.h"

#define DBUS_PROPERTIES_INTERFACE "org.freedesktop.DBus.Properties"

void admin_msg_clear(char *msg, size_t len) {
        if (msg && len > 0)
                msg[0] = '\0';
}

/* With the client locked: a failed call as padclient.h's errno and ret_msg. */
static int admin_failed_locked(pad_client *c, const sd_bus_error *e, int r, char *msg, size_t len) {
        bus_error_message(e, r, msg, len);
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_FAILED))
                return -EINVAL;         /* Reload: the new config has errors */
        return client_call_failed_locked(c, e, r);
}

/* With the client locked: a reply that does not match the contract. */
static int admin_bad_reply(int r, char *msg, size_t len) {
        if (r == -ENOMEM)
                return r;
        if (msg && len > 0)
                snprintf(msg, len, "unexpected reply from paddd: %s", strerror(-r));
        return -EBADMSG;
}

/* Lock c and call member of the broker object; on failure unlocked again, r < 0 and ret_msg
 * written. On success the client stays locked for reading *ret_reply. */
static int admin_call_locked(pad_client *c, const char *iface, const char *member,
                             sd_bus_message **ret_reply, char *msg, size_t len, const char *types, ...) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        sd_bus *bus;
        int r;

        bus = client_lock(c);
        if (!bus) {
                client_unlock(c);
                return pad_client_broker_error(c, msg, len);
        }
        va_start(ap, types);
        r = sd_bus_call_methodv(bus, BROKER_BUS_NAME, BROKER_PATH, iface, member, &error, ret_reply,
                                types, ap);
        va_end(ap);
        if (r < 0) {
                r = admin_failed_locked(c, &error, r, msg, len);
                client_unlock(c);
        }
        sd_bus_error_free(&error);
        return r < 0 ? r : 0;
}

int admin_get(pad_client *c, const char *iface, const char *member, const char *arg, size_t size,
              int (*read_reply)(sd_bus_message *m, void *obj), void *(*free_obj)(void *obj), void **ret,
              char *msg, size_t len) {
        sd_bus_message *reply = NULL;
        void *obj;
        int r;

        if (!c || !ret)
                return -EINVAL;
        admin_msg_clear(msg, len);
        obj = calloc(1, size);
        if (!obj)
                return -ENOMEM;
        r = arg ? admin_call_locked(c, iface, member, &reply, msg, len, "s", arg) :
                  admin_call_locked(c, iface, member, &reply, msg, len, "");
        if (r < 0) {
                free_obj(obj);
                return r;
        }
        r = read_reply(reply, obj);
        sd_bus_message_unref(reply);
        client_unlock(c);
        if (r < 0) {
                free_obj(obj);
                return admin_bad_reply(r, msg, len);
        }
        *ret = obj;
        return 0;
}

/* ---- status ------------------------------------------------------------------------------ */

_public_ pad_broker_status *pad_broker_status_free(pad_broker_status *s) {
        if (!s)
                return NULL;
        for (unsigned i = 0; i < s->n_nodes; i++)
                free(s->nodes[i]);
        free(s->nodes);
        free(s->helper_policy);
        free(s->version);
        free(s);
        return NULL;
}

static int status_add_node(pad_broker_status *s, const pad_broker_node *n) {
        pad_broker_node **a = realloc(s->nodes, sizeof(*a) * (s->n_nodes + 1));

        if (!a)
                return -ENOMEM;
        s->nodes = a;
        a[s->n_nodes] = malloc(sizeof(**a));
        if (!a[s->n_nodes])
                return -ENOMEM;
        *a[s->n_nodes++] = *n;
        return 0;
}

static int read_nodes(sd_bus_message *m, pad_broker_status *s) {
        pad_broker_node n = {};
        int r;

        r = sd_bus_message_enter_container(m, 'v', "a(iuuu)");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(iuuu)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(iuuu)", &n.node, &n.cpus, &n.max_helpers, &n.in_use)) > 0) {
                r = status_add_node(s, &n);
                if (r < 0)
                        return r;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r;
}

static int read_string(sd_bus_message *m, char **ret) {
        const char *v;
        int r = sd_bus_message_read(m, "v", "s", &v);

        if (r < 0)
                return r;
        free(*ret);
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static int read_property(sd_bus_message *m, const char *name, pad_broker_status *s) {
        const struct {
                const char *name;
                unsigned *value;
        } uints[] = {
                { "MaxHelpers", &s->max_helpers },
                { "InUse", &s->in_use },
                { "Waiting", &s->waiting },
                { "Leases", &s->leases },
        };

        for (size_t i = 0; i < ELEMENTSOF(uints); i++)
                if (streq(name, uints[i].name))
                        return sd_bus_message_read(m, "v", "u", uints[i].value);
        if (streq(name, "Nodes"))
                return read_nodes(m, s);
        if (streq(name, "HelperPolicy"))
                return read_string(m, &s->helper_policy);
        if (streq(name, "Version"))
                return read_string(m, &s->version);
        return sd_bus_message_skip(m, "v");
}

static int read_properties(sd_bus_message *m, pad_broker_status *s) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0)
                        r = read_property(m, name, s);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_status(sd_bus_message *m, void *s) {
        return read_properties(m, s);
}

static void *status_free(void *s) {
        return pad_broker_status_free(s);
}

_public_ int pad_broker_status_get(pad_client *c, pad_broker_status **ret, char *ret_msg,
                                   size_t ret_msg_len) {
        return admin_get(c, DBUS_PROPERTIES_INTERFACE, "GetAll", BROKER_INTERFACE, sizeof(**ret), read_status,
                         status_free, (void **) ret, ret_msg, ret_msg_len);
}

/* ---- leases ------------------------------------------------------------------------------- */

static pad_lease_info *lease_info_free(pad_lease_info *i) {
        if (!i)
                return NULL;
        free(i->path);
        free(i->owner);
        free(i->tag);
        free(i);
        return NULL;
}
DEFINE_POINTER_CLEANUP(pad_lease_info, lease_info_free);

_public_ pad_lease_list *pad_lease_list_free(pad_lease_list *l) {
        if (!l)
                return NULL;
        for (unsigned i = 0; i < l->n; i++)
                lease_info_free(l->leases[i]);
        free(l->leases);
        free(l);
        return NULL;
}

static int lease_info_new(const char *path, uint32_t uid, uint32_t pid, uint32_t granted,
                          const char *owner, const char *tag, pad_lease_info **ret) {
        _cleanup_(lease_info_freep) pad_lease_info *i = calloc(1, sizeof *i);

        if (!i)
                return -ENOMEM;
        i->path = strdup(path);
        i->owner = strdup(owner);
        i->tag = strdup(tag);
        if (!i->path || !i->owner || !i->tag)
                return -ENOMEM;
        i->uid = uid;
        i->pid = pid;
        i->granted = granted;
        *ret = TAKE_PTR(i);
        return 0;
}

static int list_add(pad_lease_list *l, pad_lease_info *i) {
        pad_lease_info **a = realloc(l->leases, sizeof(*a) * (l->n + 1));

        if (!a)
                return -ENOMEM;
        l->leases = a;
        a[l->n++] = i;
        return 0;
}

static int read_leases(sd_bus_message *m, pad_lease_list *l) {
        const char *path, *owner, *tag;
        uint32_t uid, pid, granted;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ouuuss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(ouuuss)", &path, &uid, &pid, &granted, &owner, &tag)) > 0) {
                _cleanup_(lease_info_freep) pad_lease_info *i = NULL;

                r = lease_info_new(path, uid, pid, granted, owner, tag, &i);
                if (r < 0)
                        return r;
                r = list_add(l, i);
                if (r < 0)
                        return r;
                TAKE_PTR(i);
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* With the client locked: each lease's Placement; a lease gone meanwhile keeps none. */
static void read_placements_locked(sd_bus *bus, pad_lease_list *l) {
        for (unsigned k = 0; k < l->n; k++) {
                pad_lease_info *i = l->leases[k];

                if (bus_get_placement(bus, i->path, i->placement_node, i->placement_helpers,
                                      PAD_PLACEMENT_MAX, &i->n_placement) < 0)
                        i->n_placement = 0;
        }
}

/* The list, then each lease's placement over the same (locked) connection. */
static int read_lease_list(sd_bus_message *m, void *l) {
        int r = read_leases(m, l);

        if (r >= 0)
                read_placements_locked(sd_bus_message_get_bus(m), l);
        return r;
}

static void *lease_list_free(void *l) {
        return pad_lease_list_free(l);
}

_public_ int pad_broker_list_leases(pad_client *c, pad_lease_list **ret, char *ret_msg,
                                    size_t ret_msg_len) {
        return admin_get(c, BROKER_INTERFACE, "ListLeases", NULL, sizeof(**ret), read_lease_list,
                         lease_list_free, (void **) ret, ret_msg, ret_msg_len);
}

/* ---- set-quota, reload --------------------------------------------------------------------- */

_public_ int pad_broker_set_quota(pad_client *c, int node, unsigned max_helpers, char *ret_msg,
                                  size_t ret_msg_len) {
        int r;

        if (!c || node < PAD_NODE_ANY)
                return -EINVAL;
        admin_msg_clear(ret_msg, ret_msg_len);
        r = admin_call_locked(c, BROKER_INTERFACE, "SetQuota", NULL, ret_msg, ret_msg_len, "iu",
                              (int32_t) node, (uint32_t) max_helpers);
        if (r < 0)
                return r;
        client_unlock(c);
        return 0;
}

_public_ int pad_broker_reload(pad_client *c, char *ret_msg, size_t ret_msg_len) {
        int r;

        if (!c)
                return -EINVAL;
        admin_msg_clear(ret_msg, ret_msg_len);
        r = admin_call_locked(c, BROKER_INTERFACE, "Reload", NULL, ret_msg, ret_msg_len, "");
        if (r < 0)
                return r;
        client_unlock(c);
        return 0;
}
