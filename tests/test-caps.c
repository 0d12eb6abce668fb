/* test-caps.c: caps_drop_to_sys_nice() on the real process. Each case runs in a forked
 * child (the drop cannot be undone) that reports through its exit status: root with every
 * capability keeps only CAP_SYS_NICE, can still raise another user's thread from nice 10
 * to 0 but cannot chown or setuid; a second call changes nothing; an unprivileged process
 * is left alone; a process without CAP_SETPCAP still loses its other effective and
 * permitted capabilities. Needs root: otherwise exits 77. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "priority.h"
#include "util.h"

#define NOBODY 65534

/* In a child: report and exit with a code the parent shows. */
#define CHILD_CHECK(cond)                                                               \
        do {                                                                            \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "%s:%d: child check failed: %s (errno %s)\n",   \
                                __FILE__, __LINE__, #cond, strerror(errno));            \
                        _exit(__LINE__ % 250 + 1);                                      \
                }                                                                       \
        } while (0)

/* Run fn in a forked child; assert it exited 0. */
static void run_in_child(int (*fn)(void *), void *arg) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(fn(arg));
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child failed (status 0x%x), see its message above", status);
}

static bool has_flag(cap_t c, cap_value_t v, cap_flag_t f) {
        cap_flag_value_t x = CAP_CLEAR;

        CHILD_CHECK(cap_get_flag(c, v, f, &x) == 0);
        return x == CAP_SET;
}

/* E and P hold exactly CAP_SYS_NICE (nice) or nothing; I and ambient are empty. */
static void child_assert_only_nice(bool nice) {
        cap_t c = cap_get_proc();

        CHILD_CHECK(c);
        for (cap_value_t v = 0; v < cap_max_bits(); v++) {
                bool want = nice && v == CAP_SYS_NICE;

                CHILD_CHECK(has_flag(c, v, CAP_EFFECTIVE) == want);
                CHILD_CHECK(has_flag(c, v, CAP_PERMITTED) == want);
                CHILD_CHECK(!has_flag(c, v, CAP_INHERITABLE));
                CHILD_CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, v, 0, 0) == 0);
        }
        cap_free(c);
}

/* A grandchild at nice 10 running as nobody; it exits when *ret_hold is closed. */
static pid_t spawn_nice_grandchild(int *ret_hold) {
        int ready[2], hold[2];
        pid_t pid;
        char b;

        CHILD_CHECK(pipe2(ready, O_CLOEXEC) == 0);
        CHILD_CHECK(pipe2(hold, O_CLOEXEC) == 0);
        pid = fork();
        CHILD_CHECK(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                close(hold[1]);
                if (setpriority(PRIO_PROCESS, 0, 10) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(1);
                if (write(ready[1], "x", 1) != 1)
                        _exit(1);
                (void) !read(hold[0], &b, 1);
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        CHILD_CHECK(read(ready[0], &b, 1) == 1);
        close(ready[0]);
        *ret_hold = hold[1];
        return pid;
}

static int child_drop_as_root(void *userdata) {
        const char *path = userdata;
        struct rlimit no_nice = { 0, 0 };
        const char *kept = NULL;
        char *before, *after;
        cap_t c;
        int hold, status;
        pid_t gc;

        /* Only CAP_SYS_NICE, not RLIMIT_NICE, may allow lowering a nice value. */
        CHILD_CHECK(setrlimit(RLIMIT_NICE, &no_nice) == 0);
        gc = spawn_nice_grandchild(&hold);
        errno = 0;
        CHILD_CHECK(getpriority(PRIO_PROCESS, gc) == 10 && errno == 0);

        CHILD_CHECK(caps_drop_to_sys_nice(&kept) == 0);
        CHILD_CHECK(kept && streq(kept, "cap_sys_nice"));
        child_assert_only_nice(true);
        for (cap_value_t v = 0; v < cap_max_bits(); v++)
                CHILD_CHECK(cap_get_bound(v) == (v == CAP_SYS_NICE));
        CHILD_CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 0);
        CHILD_CHECK(prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0) == 0);
        CHILD_CHECK(prctl(PR_CAPBSET_READ, CAP_SYS_NICE, 0, 0, 0) == 1);

        /* What CAP_SYS_NICE is kept for: raise another user's thread. */
        CHILD_CHECK(setpriority(PRIO_PROCESS, gc, 0) == 0);
        errno = 0;
        CHILD_CHECK(getpriority(PRIO_PROCESS, gc) == 0 && errno == 0);
        /* What is gone. */
        CHILD_CHECK(chown(path, 0, 0) < 0 && errno == EPERM);
        CHILD_CHECK(setuid(1234) < 0 && errno == EPERM);

        /* A second call changes nothing. */
        c = cap_get_proc();
        CHILD_CHECK(c);
        before = cap_to_text(c, NULL);
        cap_free(c);
        kept = NULL;
        CHILD_CHECK(caps_drop_to_sys_nice(&kept) == 0);
        CHILD_CHECK(kept && streq(kept, "cap_sys_nice"));
        c = cap_get_proc();
        CHILD_CHECK(c);
        after = cap_to_text(c, NULL);
        cap_free(c);
        CHILD_CHECK(before && after && streq(before, after));
        cap_free(before);
        cap_free(after);

        /* Control: without CAP_SYS_NICE effective the same call is refused. */
        c = cap_get_proc();
        CHILD_CHECK(c && cap_clear_flag(c, CAP_EFFECTIVE) == 0 && cap_set_proc(c) == 0);
        cap_free(c);
        CHILD_CHECK(setpriority(PRIO_PROCESS, gc, 5) < 0 && errno == EPERM);

        close(hold);
        CHILD_CHECK(waitpid(gc, &status, 0) == gc && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return 0;
}

START_TEST(test_drop_as_root) {
        char path[] = "/tmp/test-caps-XXXXXX";
        int fd = mkstemp(path);
        struct stat st;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchown(fd, NOBODY, NOBODY), 0);
        close(fd);
        run_in_child(child_drop_as_root, path);
        /* The failed chown left the file alone. */
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_uid, NOBODY);
        unlink(path);
}
END_TEST

/* An unprivileged process: empty E/P, a full bounding set it cannot change. */
static int child_unprivileged(void *userdata) {
        const char *kept = NULL;

        CHILD_CHECK(setresgid(NOBODY, NOBODY, NOBODY) == 0);
        CHILD_CHECK(setresuid(NOBODY, NOBODY, NOBODY) == 0);
        child_assert_only_nice(false);
        CHILD_CHECK(cap_get_bound(CAP_SYS_ADMIN) == 1);

        CHILD_CHECK(caps_drop_to_sys_nice(&kept) == 0);
        CHILD_CHECK(kept && streq(kept, "none"));
        child_assert_only_nice(false);
        CHILD_CHECK(cap_get_bound(CAP_SYS_ADMIN) == 1);
        return 0;
}

START_TEST(test_unprivileged_untouched) {
        run_in_child(child_unprivileged, NULL);
}
END_TEST

/* CAP_SYS_NICE plus another capability but no CAP_SETPCAP: E/P lose the other one, the
 * bounding set (unchangeable) stays. */
static int child_without_setpcap(void *userdata) {
        const char *kept = NULL;
        cap_t c = cap_from_text("cap_sys_nice,cap_net_admin=ep cap_chown=i");

        CHILD_CHECK(c && cap_set_proc(c) == 0);
        cap_free(c);
        CHILD_CHECK(caps_drop_to_sys_nice(&kept) == 0);
        CHILD_CHECK(kept && streq(kept, "cap_sys_nice"));
        child_assert_only_nice(true);
        CHILD_CHECK(cap_get_bound(CAP_NET_ADMIN) == 1);
        return 0;
}

START_TEST(test_without_setpcap) {
        run_in_child(child_without_setpcap, NULL);
}
END_TEST

/* Root that has given up CAP_SYS_NICE already keeps nothing. */
static int child_without_nice(void *userdata) {
        const char *kept = NULL;
        cap_value_t nice = CAP_SYS_NICE;
        cap_t c = cap_get_proc();       /* everything root holds here, minus CAP_SYS_NICE */

        CHILD_CHECK(c);
        CHILD_CHECK(cap_set_flag(c, CAP_EFFECTIVE, 1, &nice, CAP_CLEAR) == 0);
        CHILD_CHECK(cap_set_flag(c, CAP_PERMITTED, 1, &nice, CAP_CLEAR) == 0);
        CHILD_CHECK(cap_set_proc(c) == 0);
        cap_free(c);
        CHILD_CHECK(caps_drop_to_sys_nice(&kept) == 0);
        CHILD_CHECK(kept && streq(kept, "none"));
        child_assert_only_nice(false);
        CHILD_CHECK(cap_get_bound(CAP_SYS_ADMIN) == 0);
        CHILD_CHECK(cap_get_bound(CAP_SYS_NICE) == 1);
        return 0;
}

START_TEST(test_without_nice) {
        run_in_child(child_without_nice, NULL);
}
END_TEST

/* Why this cannot run here, or NULL. */
static const char *skip_reason(void) {
        if (geteuid() != 0)
                return "not root: dropping capabilities needs a process that has them";
        if (cap_get_bound(CAP_SYS_ADMIN) != 1 || cap_get_bound(CAP_SETUID) != 1 ||
            cap_get_bound(CAP_SETPCAP) != 1 || cap_get_bound(CAP_SYS_NICE) != 1)
                return "the bounding set lacks CAP_SYS_ADMIN, CAP_SETUID, CAP_SETPCAP or CAP_SYS_NICE";
        return NULL;
}

int main(void) {
        const char *reason = skip_reason();
        Suite *s;
        TCase *tc;

        if (reason) {
                printf("test-caps: skipped: %s\n", reason);
                return 77;
        }
        s = suite_create("caps");
        tc = tcase_create("drop");
        tcase_add_test(tc, test_drop_as_root);
        tcase_add_test(tc, test_unprivileged_untouched);
        tcase_add_test(tc, test_without_setpcap);
        tcase_add_test(tc, test_without_nice);
        suite_add_tcase(s, tc);
        return check_run_suite(s);
}
