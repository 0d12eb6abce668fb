/* bus.h: the D-Bus face of paddd: the org.padata.Broker and org.padata.Broker.Lease
 * vtables, argument and option parsing, replies. No state of its own. */
#pragma once

#include <stdio.h>
#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct Lease Lease;

/* Register /org/padata/Broker and the lease objects (fallback + enumerator) on bus. */
int bus_add_objects(Manager *m, sd_bus *bus);

/* Answer an Acquire call with the lease's path and grant. */
int bus_reply_acquire(sd_bus_message *message, const Lease *l);

/* Print the introspection XML of both interfaces, exactly as sd-bus generates it for the
 * vtables, without a bus (paddd --bus-introspect). */
int bus_introspect_print(FILE *f);
