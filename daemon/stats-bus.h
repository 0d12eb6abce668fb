/* stats-bus.h: the GetStatistics method of org.padata.Broker (userdata: the Manager). */
#pragma once

#include <systemd/sd-bus.h>

int stats_bus_method_get(sd_bus_message *message, void *userdata, sd_bus_error *error);
