/* bus-introspect.h: paddd --bus-introspect. */
#pragma once

#include <stdio.h>

/* Print the introspection XML of both interfaces, exactly as sd-bus generates it for the
 * vtables, without a bus. */
int bus_introspect_print(FILE *f);
