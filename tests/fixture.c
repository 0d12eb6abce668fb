/* fixture.c: owns the private bus the bus tests and benchmarks run against: a temporary
 * folder holding a dbus-daemon config, its socket, paddd's config, paddd's log and a
 * datagram socket standing in for systemd's NOTIFY_SOCKET (drained by a reader child into
 * notify.log, as systemd would drain it); the dbus-daemon, paddd and reader child
 * processes; and their teardown. Plain POSIX plus glibc (no libsystemd) so the
 * public-API test can link it with nothing but libpadclient. Children get
 * PR_SET_PDEATHSIG so a test process that dies (a failed Check assertion exits at once)
 * never leaves a daemon behind (Check's fork mode also kills the test's process group),
 * and the notify reader then removes the folder. */
#define _GNU_SOURCE
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 10000
#define STOP_GRACE_MS 5000

long long fixture_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fixture_sleep_ms(int ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int path_join(char *buf, size_t size, const char *dir, const char *name) {
        int n = snprintf(buf, size, "%s/%s", dir, name);

        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *text, mode_t mode) {
        size_t len = strlen(text), done = 0;
        char tmp[400];
        int fd, r = 0;

        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                done += (size_t) n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        /* rename: a reload never sees a half-written file. */
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

/* $NAME if set, else the first executable `fallback` on PATH. */
static int find_binary(const char *env_name, const char *fallback, char *ret, size_t size) {
        const char *e = getenv(env_name), *path;

        if (e && *e) {
                if (access(e, X_OK) < 0)
                        return -ENOENT;
                if ((size_t) snprintf(ret, size, "%s", e) >= size)
                        return -ENAMETOOLONG;
                return 0;
        }
        if (!fallback)
                return -ENOENT;
        path = getenv("PATH");
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t n = strcspn(path, ":");
                if (n > 0 && (size_t) snprintf(ret, size, "%.*s/%s", (int) n, path, fallback) < size &&
                    access(ret, X_OK) == 0)
                        return 0;
                path += n;
                if (*path == ':')
                        path++;
        }
        return -ENOENT;
}

/* Wait for a child with a deadline; 0 reaped, -ETIMEDOUT still running. */
static int reap_within(pid_t pid, int timeout_ms, int *ret_status) {
        long long deadline = fixture_now_ms() + timeout_ms;

        for (;;) {
                int status;
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid) {
                        if (ret_status)
                                *ret_status = status;
                        return 0;
                }
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (fixture_now_ms() >= deadline)
                        return -ETIMEDOUT;
                usleep(10 * 1000);
        }
}

static void stop_child(pid_t *pid, int sig) {
        if (*pid <= 0)
                return;
        kill(*pid, sig);
        if (reap_within(*pid, STOP_GRACE_MS, NULL) == -ETIMEDOUT) {
                kill(*pid, SIGKILL);
                reap_within(*pid, STOP_GRACE_MS, NULL);
        }
        *pid = -1;
}

/* In the child after fork: die with the parent, stdout/stderr to log_path, stdin from
 * /dev/null. Returns only on failure (then the child _exits). */
static void child_setup(pid_t parent, const char *log_path) {
        int fd;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(127);
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                dup2(fd, STDIN_FILENO);
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
        }
        /* The test may block or ignore signals; the daemons must start clean. */
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
}

/* Far above what any test needs; left out for default_bus_limits. */
static const char raised_limits[] =
        "  <limit name=\"max_connections_per_user\">4096</limit>\n"
        "  <limit name=\"max_completed_connections\">4096</limit>\n"
        "  <limit name=\"max_incomplete_connections\">1024</limit>\n"
        "  <limit name=\"max_replies_per_connection\">50000</limit>\n"
        "  <limit name=\"max_match_rules_per_connection\">50000</limit>\n"
        "  <limit name=\"reply_timeout\">300000</limit>\n";

static int write_bus_config(Fixture *f) {
        char path[320], text[2048];
        int n;

        n = snprintf(text, sizeof text,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>paddd-test</type>\n"
                "  <listen>unix:path=%s/bus</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n"
                "    <allow user=\"*\"/>\n"
                "    <allow own=\"*\"/>\n"
                "    <allow send_type=\"method_call\"/>\n"
                "    <allow send_type=\"signal\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                "    <allow receive_type=\"method_call\"/>\n"
                "    <allow receive_type=\"method_return\"/>\n"
                "    <allow receive_type=\"error\"/>\n"
                "    <allow receive_type=\"signal\"/>\n"
                "    <allow send_destination=\"*\"/>\n"
                "  </policy>\n"
                "%s"
                "</busconfig>\n", f->dir, f->default_bus_limits ? "" : raised_limits);
        if (n < 0 || (size_t) n >= sizeof text)
                return -ENAMETOOLONG;
        if (path_join(path, sizeof path, f->dir, "bus.conf") < 0)
                return -ENAMETOOLONG;
        return write_file(path, text, 0644);
}

static int start_dbus(Fixture *f) {
        char binary[256], conf_arg[400], fd_arg[32], log_path[320], sock[320];
        char buf[512];
        size_t got = 0;
        long long deadline;
        pid_t parent = getpid();
        int p[2], r;

        r = find_binary("DBUS_DAEMON", "dbus-daemon", binary, sizeof binary);
        if (r < 0)
                return r;
        r = write_bus_config(f);
        if (r < 0)
                return r;
        snprintf(conf_arg, sizeof conf_arg, "--config-file=%s/bus.conf", f->dir);
        if (path_join(log_path, sizeof log_path, f->dir, "dbus.log") < 0 ||
            path_join(sock, sizeof sock, f->dir, "bus") < 0)
                return -ENAMETOOLONG;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;

        f->dbus_pid = fork();
        if (f->dbus_pid < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (f->dbus_pid == 0) {
                child_setup(parent, log_path);
                /* --print-address needs an fd that survives exec. */
                int wfd = dup(p[1]);
                if (wfd < 0)
                        _exit(127);
                snprintf(fd_arg, sizeof fd_arg, "--print-address=%d", wfd);
                execl(binary, binary, conf_arg, "--nofork", "--nopidfile", fd_arg, (char *) NULL);
                _exit(127);
        }
        close(p[1]);

        /* The address line means the socket is listening. */
        deadline = fixture_now_ms() + READY_TIMEOUT_MS;
        while (!memchr(buf, '\n', got)) {
                struct pollfd pfd = { .fd = p[0], .events = POLLIN };
                long long left = deadline - fixture_now_ms();
                if (left <= 0 || got >= sizeof buf - 1) {
                        r = -ETIMEDOUT;
                        break;
                }
                r = poll(&pfd, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        r = r < 0 ? -errno : -ETIMEDOUT;
                        break;
                }
                ssize_t n = read(p[0], buf + got, sizeof buf - 1 - got);
                if (n <= 0) {
                        r = -EIO;       /* dbus-daemon exited */
                        break;
                }
                got += (size_t) n;
                r = 0;
        }
        close(p[0]);
        if (r < 0) {
                fprintf(stderr, "fixture: dbus-daemon did not start (%s); see %s\n",
                        strerror(-r), log_path);
                stop_child(&f->dbus_pid, SIGKILL);
                return r;
        }
        /* A setuid-nobody client must be able to connect. */
        if (chmod(sock, 0777) < 0)
                return -errno;
        if ((size_t) snprintf(f->address, sizeof f->address, "unix:path=%s", sock) >= sizeof f->address)
                return -ENAMETOOLONG;
        return 0;
}

/* The reader: systemd drains NOTIFY_SOCKET at once, and paddd's sd_notify blocks when the
 * datagram queue (net.unix.max_dgram_qlen, 10 by default) is full, so a child process
 * reads every datagram as it comes and appends it to DIR/notify.log, each one followed by
 * NOTIFY_SEP. The fixture then reads the file at its own pace. */
#define NOTIFY_SEP '\036'

static volatile sig_atomic_t parent_gone;

static void on_parent_death(int sig) {
        (void) sig;
        parent_gone = 1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        remove(path);
        return 0;
}

/* Also the janitor: when the test process dies without fixture_stop (a failed Check
 * assertion _exits), the daemons die of their own PDEATHSIG and this removes the folder. */
_Noreturn static void notify_reader(int sock, int log_fd, pid_t parent, const char *dir) {
        struct sigaction sa = { .sa_handler = on_parent_death };        /* no SA_RESTART */
        char buf[4096];

        sigaction(SIGTERM, &sa, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                parent_gone = 1;
        while (!parent_gone) {
                ssize_t n = recv(sock, buf, sizeof buf - 1, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                buf[n++] = NOTIFY_SEP;
                if (write(log_fd, buf, (size_t) n) != n)
                        _exit(1);
        }
        usleep(200 * 1000);     /* let dbus-daemon and paddd die first */
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        _exit(0);
}

static int start_notify(Fixture *f) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char log_path[320];
        pid_t parent = getpid();
        int sock, log_fd, r = 0;

        if ((size_t) snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", f->dir) >= sizeof sa.sun_path ||
            path_join(log_path, sizeof log_path, f->dir, "notify.log") < 0)
                return -ENAMETOOLONG;
        sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        if (bind(sock, (struct sockaddr *) &sa, sizeof sa) < 0) {
                r = -errno;
                close(sock);
                return r;
        }
        /* paddd may keep only CAP_SYS_NICE: no DAC override needed to send to it. */
        chmod(sa.sun_path, 0777);
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                r = -errno;
                close(sock);
                return r;
        }
        f->notify_fd = open(log_path, O_RDONLY | O_CLOEXEC);
        if (f->notify_fd < 0)
                r = -errno;
        if (r == 0) {
                f->notify_pid = fork();
                if (f->notify_pid < 0)
                        r = -errno;
                else if (f->notify_pid == 0)
                        notify_reader(sock, log_fd, parent, f->dir);
        }
        close(sock);
        close(log_fd);
        return r;
}

/* Read logged datagrams up to and including the first one containing needle (all of
 * them if needle is NULL), remembering the last STATUS=; 1 if one matched. */
static int drain_notify(Fixture *f, const char *needle) {
        char buf[4096];

        for (;;) {
                ssize_t n = pread(f->notify_fd, buf, sizeof buf - 1, f->notify_offset);
                char *sep;
                int found = 0;

                if (n < 0)
                        return -errno;
                buf[n] = '\0';
                sep = memchr(buf, NOTIFY_SEP, (size_t) n);
                if (!sep)
                        return 0;       /* nothing complete yet */
                *sep = '\0';
                f->notify_offset += sep - buf + 1;
                for (char *line = buf; line && *line;) {
                        char *nl = strchr(line, '\n');
                        if (nl)
                                *nl = '\0';
                        if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(f->last_status, sizeof f->last_status, "%s", line + 7);
                        if (needle && strstr(line, needle))
                                found = 1;
                        line = nl ? nl + 1 : NULL;
                }
                /* Stop right after the match: later messages are for later waits. */
                if (found)
                        return 1;
        }
}

void fixture_drain_notify(Fixture *f) {
        if (f->notify_fd >= 0)
                drain_notify(f, NULL);
}

bool fixture_paddd_alive(Fixture *f) {
        int status;

        if (f->paddd_pid <= 0)
                return false;
        if (waitpid(f->paddd_pid, &status, WNOHANG) == f->paddd_pid) {
                f->paddd_exit_status = status;
                f->paddd_pid = -1;
                return false;
        }
        return true;
}

int fixture_wait_notify(Fixture *f, const char *needle, int timeout_ms) {
        long long deadline = fixture_now_ms() + timeout_ms;

        if (f->notify_fd < 0)
                return -EBADF;
        for (;;) {
                int r = drain_notify(f, needle);
                if (r != 0)
                        return r > 0 ? 0 : r;
                if (fixture_now_ms() >= deadline)
                        return -ETIMEDOUT;
                if (!fixture_paddd_alive(f)) {
                        usleep(50 * 1000);      /* let the reader log its last words */
                        return drain_notify(f, needle) > 0 ? 0 : -ECHILD;
                }
                usleep(5 * 1000);
        }
}

void fixture_dump_log(Fixture *f) {
        char path[320], buf[4096];
        ssize_t n;
        int fd;

        if (!f->dir[0] || path_join(path, sizeof path, f->dir, "paddd.log") < 0)
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        fprintf(stderr, "---- %s ----\n", path);
        fflush(stderr);
        while ((n = read(fd, buf, sizeof buf)) > 0)
                if (write(STDERR_FILENO, buf, (size_t) n) < 0)
                        break;
        fprintf(stderr, "---- end of paddd log ----\n");
        close(fd);
}

/* Exec paddd's argv (NULL-terminated), behind $PADDD_WRAPPER if that is set: its words, split
 * at blanks, come first (e.g. "valgrind -q --error-exitcode=99"). Returns only on failure. */
static void exec_paddd(const char *const *args) {
        char *words = strdup(getenv("PADDD_WRAPPER") ?: ""), *argv[64], *save = NULL;
        size_t n = 0;

        if (!words)
                return;
        for (char *t = strtok_r(words, " \t", &save); t && n < 32; t = strtok_r(NULL, " \t", &save))
                argv[n++] = t;
        for (size_t i = 0; args[i] && n < 63; i++)
                argv[n++] = (char *) args[i];
        argv[n] = NULL;
        execvp(argv[0], argv);
}

int fixture_start_paddd(Fixture *f) {
        char binary[256], log_path[320], notify_env[340], runtime_dir[340];
        pid_t parent = getpid();
        int r;

        if (f->paddd_pid > 0)
                return -EBUSY;
        r = find_binary("PADDD_BIN", NULL, binary, sizeof binary);
        if (r < 0) {
                fprintf(stderr, "fixture: PADDD_BIN is not set or not executable\n");
                return r;
        }
        if (path_join(log_path, sizeof log_path, f->dir, "paddd.log") < 0)
                return -ENAMETOOLONG;
        snprintf(notify_env, sizeof notify_env, "%s/notify", f->dir);
        /* paddd keeps its books in $RUNTIME_DIRECTORY, as under systemd: a restarted
         * paddd of the same fixture finds them there. */
        snprintf(runtime_dir, sizeof runtime_dir, "%s/run", f->dir);
        if (mkdir(runtime_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        drain_notify(f, NULL);
        f->last_status[0] = '\0';

        f->paddd_pid = fork();
        if (f->paddd_pid < 0)
                return -errno;
        if (f->paddd_pid == 0) {
                child_setup(parent, log_path);
                setenv("NOTIFY_SOCKET", notify_env, 1);
                setenv("RUNTIME_DIRECTORY", runtime_dir, 1);
                unsetenv("WATCHDOG_USEC");
                unsetenv("WATCHDOG_PID");
                exec_paddd((const char *[]) { binary, "--bus", f->address,
                                              f->embedded_config ? "--embedded-config" : "--config",
                                              f->embedded_config ? NULL : f->config_path, NULL });
                _exit(127);
        }

        r = fixture_wait_notify(f, "READY=1", READY_TIMEOUT_MS);
        if (r < 0) {
                fprintf(stderr, "fixture: paddd did not send READY=1 (%s)\n",
                        r == -ECHILD ? "it exited" : strerror(-r));
                fixture_kill_paddd(f);
                fixture_dump_log(f);
                return r;
        }
        return 0;
}

int fixture_kill_paddd(Fixture *f) {
        int r;

        if (f->paddd_pid <= 0)
                return -ESRCH;
        kill(f->paddd_pid, SIGKILL);
        r = reap_within(f->paddd_pid, STOP_GRACE_MS, &f->paddd_exit_status);
        f->paddd_pid = -1;
        return r;
}

int fixture_write_config(Fixture *f, const char *config_text) {
        return write_file(f->config_path, config_text ? config_text : "", 0644);
}

static int make_dir(Fixture *f) {
        const char *base = getenv("PADDD_FIXTURE_TMPDIR");
        char tmpl[sizeof f->dir];

        if (!base || !*base)
                base = "/tmp";
        if ((size_t) snprintf(tmpl, sizeof tmpl, "%s/paddd-fixture-XXXXXX", base) >= sizeof tmpl)
                return -ENAMETOOLONG;
        if (!mkdtemp(tmpl))
                return -errno;
        memcpy(f->dir, tmpl, sizeof tmpl);
        /* A setuid-nobody client must reach the socket inside. */
        if (chmod(f->dir, 0755) < 0)
                return -errno;
        return 0;
}

int fixture_start(Fixture *f, const char *config_text) {
        return fixture_start_with(f, &(FixtureOptions) { .config_text = config_text });
}

int fixture_start_with(Fixture *f, const FixtureOptions *o) {
        const char *config_text = o ? o->config_text : NULL;
        int r;

        memset(f, 0, sizeof *f);
        f->dbus_pid = f->paddd_pid = f->notify_pid = -1;
        f->notify_fd = -1;
        f->default_bus_limits = o && o->default_bus_limits;

        r = make_dir(f);
        if (r < 0)
                goto fail;
        r = path_join(f->config_path, sizeof f->config_path, f->dir, "paddd.conf");
        if (r < 0)
                goto fail;
        f->embedded_config = !config_text;
        r = fixture_write_config(f, config_text);
        if (r < 0)
                goto fail;
        r = start_notify(f);
        if (r < 0)
                goto fail;
        r = start_dbus(f);
        if (r < 0)
                goto fail;
        r = fixture_start_paddd(f);
        if (r < 0)
                goto fail;
        return 0;
fail:
        fixture_stop(f);
        return r;
}

static int dump_and_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_F && strcmp(path + ftw->base, "paddd.log") == 0 && st->st_size > 0) {
                FILE *f = fopen(path, "re");
                char line[512];

                fprintf(stderr, "==== %s (left by a failed test) ====\n", path);
                while (f && fgets(line, sizeof line, f))
                        fputs(line, stderr);
                if (f)
                        fclose(f);
        }
        remove(path);
        return 0;
}

void fixture_remove_base(const char *base) {
        nftw(base, dump_and_remove, 16, FTW_DEPTH | FTW_PHYS);
}

void fixture_stop(Fixture *f) {
        stop_child(&f->paddd_pid, SIGTERM);
        stop_child(&f->dbus_pid, SIGTERM);
        stop_child(&f->notify_pid, SIGKILL);
        if (f->notify_fd >= 0) {
                close(f->notify_fd);
                f->notify_fd = -1;
        }
        if (f->dir[0]) {
                nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
                f->dir[0] = '\0';
        }
}
