/* parse.c: strict number and size parsing shared by the config and padctl. Strict means
 * no sign, no leading or trailing space, no empty string, no overflow. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

static int parse_base(const char *s, int base, uint64_t max, uint64_t *ret, char **ret_end) {
        char *end;
        unsigned long long v;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, base);
        if (errno == ERANGE || v > max)
                return -ERANGE;
        if (end == s)
                return -EINVAL;
        *ret = v;
        *ret_end = end;
        return 0;
}

int parse_unsigned(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        uint64_t v;
        int r = parse_base(s, 10, max, &v, &end);

        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_unsigned_hex(const char *s, uint64_t max, uint64_t *ret) {
        bool hex = s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        char *end;
        uint64_t v;
        int r;

        if (hex && !isxdigit((unsigned char) s[2]))
                return -EINVAL;
        r = parse_base(s, hex ? 16 : 10, max, &v, &end);
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const char suffixes[] = "KMGT";
        char *end;
        uint64_t v;
        unsigned shift = 0;
        int r = parse_base(s, 10, UINT64_MAX, &v, &end);

        if (r < 0)
                return r;
        if (*end) {
                const char *p = strchr(suffixes, toupper((unsigned char) *end));
                if (!p)
                        return -EINVAL;
                shift = 10 * (unsigned) (p - suffixes + 1);
                end++;
                if (strcasecmp(end, "") != 0 && strcasecmp(end, "iB") != 0 && strcasecmp(end, "B") != 0)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = v << shift;
        return 0;
}

const char *format_bytes(char *buf, unsigned len, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double) bytes;
        unsigned i = 0;

        /* 1023.95 and up would print as "1024.0": move to the next unit instead. */
        while (v >= 1023.95 && i + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024.0;
                i++;
        }
        if (i == 0)
                snprintf(buf, len, "%llu B", (unsigned long long) bytes);
        else
                snprintf(buf, len, "%.1f %s", v, units[i]);
        return buf;
}
