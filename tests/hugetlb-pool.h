/* hugetlb-pool.h: what the hugetlb tests share about the machine-wide huge page pool: the
 * lock every test and benchmark that changes the pool takes, the sysfs numbers, and adding
 * and removing only the test's own pages (never saving and rewriting the count, which other
 * users of the pool may change meanwhile). Header-only, for the tests. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#define POOL_LOCK "/tmp/paddd-hugetlb-pool.lock"

static inline long read_long(const char *path) {
        FILE *f = fopen(path, "re");
        long v = -1;

        if (!f)
                return -1;
        if (fscanf(f, "%ld", &v) != 1)
                v = -1;
        fclose(f);
        return v;
}

static inline int write_long(const char *path, long v) {
        FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "%ld\n", v);
        return fclose(f) == 0 ? 0 : -errno;
}

/* Takes POOL_LOCK for the rest of the process's life; false if it cannot. */
static inline bool pool_lock(void) {
        int lock = open(POOL_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        return lock >= 0 && flock(lock, LOCK_EX) == 0;
}

/* Adds n pages to dir's nr_hugepages ("/sys/kernel/mm/hugepages/hugepages-2048kB/");
 * returns how many the kernel really added. */
static inline long pool_add(const char *dir, long n) {
        char path[128];

        snprintf(path, sizeof(path), "%snr_hugepages", dir);
        long nr = read_long(path);
        if (nr < 0 || write_long(path, nr + n) < 0)
                return 0;
        long now = read_long(path);
        return now > nr ? now - nr : 0;
}

/* Takes back the pages pool_add() added; *added becomes 0. */
static inline void pool_remove(const char *dir, long *added) {
        char path[128];

        snprintf(path, sizeof(path), "%snr_hugepages", dir);
        long nr = read_long(path);
        if (*added > 0 && nr >= 0)
                write_long(path, nr > *added ? nr - *added : 0);
        *added = 0;
}

/* The test's restore function runs at exit and on SIGINT/SIGTERM (it must check itself that
 * it runs in the main process: forked tests exit too). */
static void (*pool_restore_fn)(void);

static inline void pool_on_signal(int sig) {
        pool_restore_fn();
        signal(sig, SIG_DFL);
        raise(sig);
}

static inline void pool_guard(void (*restore)(void)) {
        pool_restore_fn = restore;
        atexit(restore);
        signal(SIGINT, pool_on_signal);
        signal(SIGTERM, pool_on_signal);
}

/* Exit 77 (skipped) with the reason, after restoring. */
_Noreturn static inline void pool_skip(const char *test, const char *why) {
        printf("%s: skipped: %s\n", test, why);
        if (pool_restore_fn)
                pool_restore_fn();
        exit(77);
}

/* As root: take POOL_LOCK, arm restore, add pages to the pool of sysdir (e.g.
 * "/sys/kernel/mm/hugepages/hugepages-2048kB/") and check that they are free. NULL, or why
 * the test cannot run. *added says what restore must take back, even on failure. */
static inline const char *pool_take(const char *sysdir, long pages, void (*restore)(void), long *added) {
        char nr[128], free_path[128], resv[128];

        snprintf(nr, sizeof(nr), "%snr_hugepages", sysdir);
        snprintf(free_path, sizeof(free_path), "%sfree_hugepages", sysdir);
        snprintf(resv, sizeof(resv), "%sresv_hugepages", sysdir);
        if (geteuid() != 0)
                return "needs root (reserves huge pages, mounts hugetlbfs)";
        if (access(nr, W_OK) < 0)
                return "no huge pages of this size in the kernel";
        if (!pool_lock())
                return "cannot lock " POOL_LOCK;
        pool_guard(restore);
        *added = pool_add(sysdir, pages);
        if (*added < pages || read_long(free_path) - read_long(resv) < pages)
                return "could not reserve enough huge pages";
        return NULL;
}

/* Runs the suite with one fallback helper (no broker: jobs still get a second thread);
 * the exit status. Include <check.h> before this header to have it. */
#ifdef CHECK_H
#include "check-run.h"

static inline int pool_run_suite(Suite *s) {
        setenv("PADCLIENT_FALLBACK_HELPERS", "1", 0);
        return check_run_suite(s);
}
#endif
