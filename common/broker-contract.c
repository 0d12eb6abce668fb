/* broker-contract.c: the error map of the broker's D-Bus contract (broker-contract.h). */
#include <errno.h>

#include "broker-contract.h"

const sd_bus_error_map broker_error_map[] = {
        SD_BUS_ERROR_MAP(BROKER_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(BROKER_ERROR_TIMEOUT, ETIMEDOUT),
        SD_BUS_ERROR_MAP(BROKER_ERROR_NO_SUCH_NODE, ENXIO),
        SD_BUS_ERROR_MAP(SD_BUS_ERROR_LIMITS_EXCEEDED, EUSERS),
        SD_BUS_ERROR_MAP(SD_BUS_ERROR_ACCESS_DENIED, EACCES),
        SD_BUS_ERROR_MAP(SD_BUS_ERROR_INVALID_ARGS, EINVAL),
        SD_BUS_ERROR_MAP(SD_BUS_ERROR_NOT_SUPPORTED, EOPNOTSUPP),
        SD_BUS_ERROR_MAP_END
};
