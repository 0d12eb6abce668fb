/* lease-bus.h: the org.padata.Broker.Lease objects on the bus. */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

int lease_bus_add(Manager *m, sd_bus *bus);
/* For --bus-introspect. */
const sd_bus_vtable *lease_bus_vtable(void);
