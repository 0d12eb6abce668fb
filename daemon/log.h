/* log.h: paddd's tiny logger. One line per event on stderr with a "<N>" syslog priority
 * prefix, which journald turns into the message priority when paddd runs as a service.
 * The level comes from $PADDD_LOG_LEVEL (debug|info|notice|warning|err, default info). */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "util.h"

#define UID_FMT "%u"
#define PID_FMT "%d"

static inline int log_max_level(void) {
        static int level = -1;

        if (level < 0) {
                static const char *const names[] = {
                        [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
                };
                const char *e = getenv("PADDD_LOG_LEVEL");

                level = LOG_INFO;
                for (int i = 0; e && i < (int) ELEMENTSOF(names); i++)
                        if (names[i] && strcasecmp(e, names[i]) == 0)
                                level = i;
        }
        return level;
}

/* Logs when level is enabled; returns -abs(error) so callers can "return log_...(r, ...)". */
_printf_(3, 4) static inline int log_full_errno(int level, int error, const char *fmt, ...) {
        int saved = errno;

        if (level <= log_max_level()) {
                va_list ap;
                char buf[1024];

                va_start(ap, fmt);
                errno = error < 0 ? -error : error;
                vsnprintf(buf, sizeof buf, fmt, ap);
                va_end(ap);
                fprintf(stderr, "<%d>%s\n", level, buf);
        }
        errno = saved;
        return error < 0 ? error : -error;
}

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_debug_enabled() (log_max_level() >= LOG_DEBUG)
