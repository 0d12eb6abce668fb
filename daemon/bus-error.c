/* bus-error.c: maps PadError codes and negative errno values to D-Bus error names and
 * messages, in one switch. The names themselves are the contract's
 * (broker-contract.h); this is the only place in paddd that chooses one. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus-error.h"

const char *bus_error_name(int r) {
        switch (r) {
        case PAD_ERROR_BUSY:
        case PAD_ERROR_NEVER_FITS:
                return BROKER_ERROR_BUSY;
        case PAD_ERROR_TIMEOUT:
                return BROKER_ERROR_TIMEOUT;
        case PAD_ERROR_NO_SUCH_NODE:
                return BROKER_ERROR_NO_SUCH_NODE;
        case PAD_ERROR_LIMITS_EXCEEDED:
                return SD_BUS_ERROR_LIMITS_EXCEEDED;
        case PAD_ERROR_ACCESS_DENIED:
                return SD_BUS_ERROR_ACCESS_DENIED;
        case PAD_ERROR_INVALID_ARGS:
                return SD_BUS_ERROR_INVALID_ARGS;
        case PAD_ERROR_NOT_SUPPORTED:
                return SD_BUS_ERROR_NOT_SUPPORTED;
        default:
                return NULL;
        }
}

static const char *bus_error_stock_message(int r) {
        switch (r) {
        case PAD_ERROR_BUSY:
                return "Not enough free helper slots.";
        case PAD_ERROR_TIMEOUT:
                return "No helper slots became free before the deadline.";
        case PAD_ERROR_NO_SUCH_NODE:
                return "No such NUMA node.";
        case PAD_ERROR_LIMITS_EXCEEDED:
                return "Too many leases or waiting requests.";
        case PAD_ERROR_ACCESS_DENIED:
                return "Access denied.";
        case PAD_ERROR_INVALID_ARGS:
                return "Invalid arguments.";
        case PAD_ERROR_NOT_SUPPORTED:
                return "Not supported.";
        case PAD_ERROR_NEVER_FITS:
                return "The request's min is above what the quotas could ever give it.";
        default:
                return NULL;
        }
}

int bus_error_set(sd_bus_error *error, int r, const char *fmt, ...) {
        char buf[512];
        const char *name = bus_error_name(r);

        if (fmt) {
                va_list ap;

                va_start(ap, fmt);
                vsnprintf(buf, sizeof buf, fmt, ap);
                va_end(ap);
        }

        if (name)
                return sd_bus_error_set(error, name, fmt ? buf : bus_error_stock_message(r));
        if (r > 0 || r == 0)
                r = -EIO;       /* not a PadError and not an errno: a bug, say so plainly */
        if (fmt)
                return sd_bus_error_set_errnof(error, -r, "%s", buf);
        return sd_bus_error_set_errno(error, -r);
}
