/* bus-error.h: the one place that turns the daemon's results (positive PadError codes,
 * negative errno) into D-Bus errors. */
#pragma once

#include <systemd/sd-bus.h>

#include "broker-contract.h"
#include "error.h"
#include "util.h"

/* The D-Bus error name for a PadError, NULL for anything else. */
const char *bus_error_name(int r);

/* Fill error for r (PadError or negative errno); fmt NULL uses a stock message. Returns a
 * negative value suitable as a method handler's return. r must not be 0. */
_printf_(3, 4) int bus_error_set(sd_bus_error *error, int r, const char *fmt, ...);
