/* parse.h: strict parsers for numbers and sizes typed by people (config, padctl). */
#pragma once

#include <stdint.h>

/* Decimal unsigned integer, no sign, no trailing garbage, within [0, max]. -EINVAL or -ERANGE. */
int parse_unsigned(const char *s, uint64_t max, uint64_t *ret);
/* Byte count with an optional K, M, G, T suffix (powers of 1024, optional "iB"/"B"). */
int parse_size(const char *s, uint64_t *ret);
/* Decimal or 0x hex, within [0, max]. */
int parse_unsigned_hex(const char *s, uint64_t max, uint64_t *ret);
/* Human-readable bytes ("1.0 GiB") into buf. */
const char *format_bytes(char *buf, unsigned len, uint64_t bytes);
