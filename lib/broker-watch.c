/* broker-watch.c: change notification for programs that show the broker's state
 * (pad_broker_watch_*). A watch owns a connection of its own to the client's bus, apart
 * from the client's locked one, with two matches: the broker object's PropertiesChanged
 * from org.padata.Broker, and NameOwnerChanged for that name (paddd came, went or was
 * replaced). The caller polls the connection's fd; processing it reports whether either
 * arrived since the last time. Nothing is read from the broker here. */
#include "internal.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "broker-contract.h"
#include "bus-open.h"
#include "util.h"

#define MATCH_PROPERTIES                                                                   \
        "type='signal',sender='" BROKER_BUS_NAME "',path='" BROKER_PATH "',"              \
        "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"          \
        "arg0='" BROKER_INTERFACE "'"
#define MATCH_OWNER                                                                        \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"        \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BROKER_BUS_NAME "'"

struct pad_broker_watch {
        sd_bus *bus;
        bool changed;           /* a signal arrived since the last pad_broker_watch_process() */
};

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        pad_broker_watch *w = userdata;

        w->changed = true;
        return 0;
}

_public_ pad_broker_watch *pad_broker_watch_free(pad_broker_watch *w) {
        if (!w)
                return NULL;
        if (w->bus)
                sd_bus_flush_close_unref(w->bus);
        free(w);
        return NULL;
}
DEFINE_POINTER_CLEANUP(pad_broker_watch, pad_broker_watch_free);

static int watch_subscribe(pad_broker_watch *w) {
        int r = sd_bus_add_match(w->bus, NULL, MATCH_PROPERTIES, on_signal, w);

        if (r >= 0)
                r = sd_bus_add_match(w->bus, NULL, MATCH_OWNER, on_signal, w);
        return r;
}

_public_ int pad_broker_watch_new(pad_client *c, pad_broker_watch **ret, char *ret_msg,
                                  size_t ret_msg_len) {
        _cleanup_(pad_broker_watch_freep) pad_broker_watch *w = NULL;
        const char *what = "connecting to";
        int r;

        if (!c || !ret)
                return -EINVAL;
        admin_msg_clear(ret_msg, ret_msg_len);
        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        r = bus_open_spec(pad_client_bus(c), "padclient-watch", &w->bus);
        if (r >= 0) {
                what = "subscribing to the broker's signals on";
                r = watch_subscribe(w);
        }
        if (r < 0) {
                if (r != -ENOMEM && ret_msg && ret_msg_len > 0)
                        snprintf(ret_msg, ret_msg_len, "%s %s: %s", what, pad_client_bus(c), strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(w);
        return 0;
}

_public_ int pad_broker_watch_get_fd(const pad_broker_watch *w) {
        return w ? sd_bus_get_fd(w->bus) : -EINVAL;
}

_public_ int pad_broker_watch_get_events(const pad_broker_watch *w) {
        return w ? sd_bus_get_events(w->bus) : -EINVAL;
}

/* sd-bus's "the connection is gone" errnos, as one. */
static int watch_lost(int r) {
        return r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE || r == -ESHUTDOWN ? -ECONNRESET : r;
}

_public_ int pad_broker_watch_process(pad_broker_watch *w) {
        int r;

        if (!w)
                return -EINVAL;
        do
                r = sd_bus_process(w->bus, NULL);
        while (r > 0);
        if (r < 0)
                return watch_lost(r);
        r = w->changed;
        w->changed = false;
        return r;
}
