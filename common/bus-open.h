/* bus-open.h: opening a bus connection by the name people type: "system", "session", or
 * a D-Bus address such as "unix:path=/run/x/bus". Shared by paddd, libpadclient, padctl,
 * the tests and the benchmarks. */
#pragma once

#include <systemd/sd-bus.h>

/* A started client connection; description (may be NULL) names it in sd-bus's logs.
 * Returns 0 or a negative errno like sd-bus; *ret is untouched on failure. */
int bus_open_spec(const char *spec, const char *description, sd_bus **ret);
