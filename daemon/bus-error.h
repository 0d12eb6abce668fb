/* bus-error.h: the one place that turns the daemon's results (positive PadError codes,
 * negative errno) into D-Bus errors. */
#pragma once

#include <systemd/sd-bus.h>

#include "error.h"
#include "util.h"

#define BUS_ERROR_BUSY "org.padata.Broker.Error.Busy"
#define BUS_ERROR_TIMEOUT "org.padata.Broker.Error.Timeout"
#define BUS_ERROR_NO_SUCH_NODE "org.padata.Broker.Error.NoSuchNode"

/* The D-Bus error name for a PadError, NULL for anything else. */
const char *bus_error_name(int r);

/* Fill error for r (PadError or negative errno); fmt NULL uses a stock message. Returns a
 * negative value suitable as a method handler's return. r must not be 0. */
_printf_(3, 4) int bus_error_set(sd_bus_error *error, int r, const char *fmt, ...);
