/* broker-bus.h: the org.padata.Broker object on the bus, and paddd's start on a bus:
 * objects, the client watch, the re-adoption of the books, then the name. */
#pragma once

#include <systemd/sd-bus.h>

#include "books.h"
#include "manager.h"

/* The caller's client, created on its first call; < 0 with error set when the bus gives no
 * trustworthy credentials. Also for lease-bus.c. */
int bus_get_client(Manager *m, sd_bus_message *message, Client **ret, sd_bus_error *error);

/* Register the objects, watch for clients going away, re-adopt saved's leases whose owners
 * are still connected (counts in *ret_restored), then request the name: nothing is granted
 * before the books are accounted. -EEXIST when the name is taken. */
int broker_bus_connect(Manager *m, sd_bus *bus, const StateBooks *saved, BooksRestored *ret_restored);

/* For --bus-introspect. */
const sd_bus_vtable *broker_bus_vtable(void);
