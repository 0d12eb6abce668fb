/* bus-introspect.c: paddd --bus-introspect: the XML of both interfaces exactly as sd-bus
 * generates it for paddd's vtables, from a real sd-bus server on a socket pair, no bus. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "broker-bus.h"
#include "bus-introspect.h"
#include "lease-bus.h"
#include "util.h"

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
                                             broker_bus_vtable(), NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(server, NULL, LEASE_PATH_PREFIX "/1", LEASE_INTERFACE,
                                             lease_bus_vtable(), NULL);
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
