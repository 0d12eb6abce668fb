/* fixture.h: a private bus for tests: a real dbus-daemon with its own config and socket
 * in a temporary folder, and paddd started on it from the build tree. Plain POSIX, so the
 * public-API test can use it without linking anything but libpadclient.
 *
 * The binaries come from the environment meson sets for tests: PADDD_BIN (paddd) and
 * DBUS_DAEMON (default: dbus-daemon on PATH). paddd's readiness is taken from its own
 * sd_notify READY=1 on a socket the fixture listens on. The folder is made under
 * $PADDD_FIXTURE_TMPDIR if set, else /tmp.
 *
 * The children (dbus-daemon, paddd, a notify reader) die with the thread that started
 * them (PR_SET_PDEATHSIG): call fixture_start from a thread that outlives its use. If the
 * test process dies without fixture_stop, the reader removes the folder. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct Fixture {
        char dir[256];          /* temporary folder, removed by fixture_stop */
        char address[320];      /* "unix:path=<dir>/bus" */
        char config_path[320];  /* paddd config written from config_text */
        pid_t dbus_pid;
        pid_t paddd_pid;
        int notify_fd;          /* reads DIR/notify.log, where a reader child logs sd_notify */
        pid_t notify_pid;       /* that reader: it drains NOTIFY_SOCKET as systemd would */
        off_t notify_offset;    /* how far fixture_wait_notify has read */
        char last_status[256];  /* last STATUS= paddd sent */
        bool embedded_config;   /* started with config_text NULL: --embedded-config */
        int paddd_exit_status;  /* wait status once paddd was reaped */
        bool default_bus_limits;/* dbus-daemon runs with its compiled-in limits */
} Fixture;

typedef struct FixtureOptions {
        const char *config_text;        /* paddd's config; NULL: its embedded default */
        /* Write no <limit> into the bus config, so dbus-daemon keeps its compiled-in
         * defaults, which are the system bus's too (dbus 1.14: 512 match rules and 128
         * pending replies per connection, 256 connections per uid, 2048 connections, 64
         * unauthenticated ones). Otherwise the limits are raised far past what any test
         * needs. Either way the policy lets every uid connect, but dbus-daemon refuses a
         * uid it cannot look up in the user database. */
        bool default_bus_limits;
} FixtureOptions;

/* Start dbus-daemon and paddd. config_text NULL: paddd's embedded default. Returns 0 or
 * -errno; 77-worthy trouble (no dbus-daemon binary) is -ENOENT. */
int fixture_start(Fixture *f, const char *config_text);
/* The same with options; o NULL: as fixture_start(f, NULL). */
int fixture_start_with(Fixture *f, const FixtureOptions *o);
/* Start paddd again (after fixture_kill_paddd), with the same config. */
int fixture_start_paddd(Fixture *f);
/* SIGKILL paddd and reap it. */
int fixture_kill_paddd(Fixture *f);
/* Rewrite the config file (for Reload/SIGHUP tests). */
int fixture_write_config(Fixture *f, const char *config_text);
/* Wait up to timeout_ms for paddd to send a notify message containing needle (e.g.
 * "READY=1"). Messages are consumed in order up to and including the match. 0 when seen,
 * -ETIMEDOUT, or -ECHILD if paddd exited without sending it. */
int fixture_wait_notify(Fixture *f, const char *needle, int timeout_ms);
/* Discard every notify message received so far (last_status is still updated). */
void fixture_drain_notify(Fixture *f);
/* Whether paddd is still running (reaps it and records paddd_exit_status if not). */
bool fixture_paddd_alive(Fixture *f);
/* Copy paddd's stdout/stderr log (DIR/paddd.log) to our stderr, for failure reports. */
void fixture_dump_log(Fixture *f);
/* CLOCK_MONOTONIC in milliseconds, and a sleep that resumes after signals. */
long long fixture_now_ms(void);
void fixture_sleep_ms(int ms);
/* Remove a folder of fixture folders (the test's $PADDD_FIXTURE_TMPDIR), first copying to
 * stderr every non-empty paddd.log in it: those were left by failed tests. */
void fixture_remove_base(const char *base);
/* Stop everything and remove the folder. Safe to call twice. */
void fixture_stop(Fixture *f);
