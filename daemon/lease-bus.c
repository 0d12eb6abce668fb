/* lease-bus.c: the org.padata.Broker.Lease objects (/org/padata/Broker/lease/<id>), a
 * fallback vtable found by id with a node enumerator: properties, and Release, Shrink and
 * RaisePriority for the connection that acquired the lease, and nobody else. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bus-error.h"
#include "client.h"
#include "lease-bus.h"
#include "lease.h"

static int property_get_granted(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Lease *l = userdata;

        return sd_bus_message_append(reply, "u", lease_get_granted(l));
}

static int property_get_placement(sd_bus *bus, const char *path, const char *interface,
                                  const char *property, sd_bus_message *reply, void *userdata,
                                  sd_bus_error *error) {
        Lease *l = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(iu)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < lease_get_n_placement(l); i++) {
                unsigned helpers;
                int node;

                lease_get_placement(l, i, &node, &helpers);
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
        if (lease_is_owned_by(l, sd_bus_message_get_sender(message)))
                return 0;
        manager_count(l->manager, STATS_DENIED_ACCESS);
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
                                     count, lease_get_granted(l));
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
        case PAD_ERROR_ACCESS_DENIED:
                /* One answer whatever the reason, so that it tells nothing of other processes. */
                return bus_error_set(error, PAD_ERROR_ACCESS_DENIED,
                                     "Thread %" PRIu32 " is not a thread of the lease owner's process "
                                     "that it may raise.", tid);
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
        SD_BUS_SIGNAL("Expired", "", 0),
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
        l = lease_find(m, id);
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

        ManagerCounts counts;

        manager_get_counts(m, &counts);
        strv = calloc(counts.leases + 1, sizeof(char *));
        if (!strv)
                return -ENOMEM;
        for (Lease *l = lease_next(m, NULL); l; l = lease_next(m, l)) {
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

const sd_bus_vtable *lease_bus_vtable(void) {
        return lease_vtable;
}

int lease_bus_add(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_fallback_vtable(bus, NULL, LEASE_PATH_PREFIX, LEASE_INTERFACE, lease_vtable,
                                       lease_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, LEASE_PATH_PREFIX, lease_node_enumerator, m);
}
