/* broker-contract.h: the D-Bus contract of org.padata.Broker, in one place: the bus name,
 * object paths and interfaces, the error names with the errno each maps to, and the limits
 * a client's arguments must respect. paddd, libpadclient, padctl, the tests and the
 * benchmarks take every name and limit from here; dbus/org.padata.Broker.xml and the man
 * pages describe the same contract to people. */
#pragma once

#include <systemd/sd-bus.h>

#define BROKER_BUS_NAME "org.padata.Broker"
#define BROKER_PATH "/org/padata/Broker"
#define BROKER_INTERFACE "org.padata.Broker"
#define LEASE_PATH_PREFIX BROKER_PATH "/lease"
#define LEASE_INTERFACE "org.padata.Broker.Lease"

/* Error names of the broker's own; the others are org.freedesktop.DBus.Error.*. */
#define BROKER_ERROR_BUSY "org.padata.Broker.Error.Busy"
#define BROKER_ERROR_TIMEOUT "org.padata.Broker.Error.Timeout"
#define BROKER_ERROR_NO_SUCH_NODE "org.padata.Broker.Error.NoSuchNode"

/* Limits of the arguments. */
#define BROKER_HELPERS_MAX 4096u        /* helpers in one Acquire, and any quota */
#define BROKER_TAG_MAX 64u              /* bytes of a lease's tag, without the NUL */
#define BROKER_NODE_ID_MAX 1023         /* largest NUMA node id (the kernel's MAX_NUMNODES - 1) */

/* ListLeases, whose answer grows with the leases: per connection of a caller that is not an
 * admin a burst of this many, then this many a second; refused to everyone while paddd has
 * more than
 * BROKER_LIST_QUEUE_MAX messages waiting to go out (LimitsExceeded in both cases). */
#define BROKER_LIST_BURST 8u
#define BROKER_LIST_PER_SEC 4u
#define BROKER_LIST_QUEUE_MAX 64u

/* Every error name the broker answers with and the errno a client sees for it:
 * Busy EBUSY, Timeout ETIMEDOUT, NoSuchNode ENXIO, LimitsExceeded EUSERS, AccessDenied
 * EACCES, InvalidArgs EINVAL, NotSupported EOPNOTSUPP. Register it with
 * sd_bus_error_add_map(); sd_bus_error_get_errno() then gives these. */
extern const sd_bus_error_map broker_error_map[];
