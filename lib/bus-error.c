/* bus-error.c: what a failed call to the broker means for a caller of libpadclient. The
 * broker's own error names come from common/broker-contract.h (registered with sd-bus once
 * per process); the errors that say the broker is gone (no owner of the name, no reply, a
 * lost connection, a failed activation) become -EHOSTDOWN; and a one-line description of
 * the error is written for ret_msg. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "broker-contract.h"
#include "util.h"

/* dbus-daemon's errors for a service it failed to activate. */
#define DBUS_ERROR_SPAWN_PREFIX "org.freedesktop.DBus.Error.Spawn."

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

static void error_map_register(void) {
        (void) sd_bus_error_add_map(broker_error_map);
}

void bus_error_map_register(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        (void) pthread_once(&once, error_map_register);
}

int bus_error_to_errno(const sd_bus_error *e, int r) {
        if (e && sd_bus_error_is_set(e)) {
                if (error_is_no_broker(e->name))
                        return -EHOSTDOWN;
                bus_error_map_register();
                return -sd_bus_error_get_errno(e);
        }
        if (r < 0 && errno_is_no_broker(r))
                return -EHOSTDOWN;
        return r < 0 ? r : -EIO;
}

bool bus_error_is_not_running(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER);
}

void bus_error_message(const sd_bus_error *e, int r, char *buf, size_t len) {
        if (!buf || len == 0)
                return;
        if (bus_error_is_not_running(e))
                snprintf(buf, len, "paddd is not running on this bus (%s)", e->name);
        else if (e && sd_bus_error_is_set(e))
                snprintf(buf, len, "%s: %s", e->name, e->message ? e->message : strerror(r < 0 ? -r : EIO));
        else
                snprintf(buf, len, "%s", strerror(r < 0 ? -r : EIO));
}
