/* bus-util.h: sd-bus helpers shared by the bus tests, the VM guest tests and the broker
 * benchmark. They return errors like sd-bus does and never assert, so forked children can
 * use them too. */
#pragma once

#include <systemd/sd-bus.h>

/* A client connection to the bus at address (e.g. a Fixture's), started. */
int bus_util_connect(const char *address, sd_bus **ret);
