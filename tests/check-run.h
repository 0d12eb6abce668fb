/* check-run.h: what every Check program of the test suites ends its main() with: run a
 * suite (forking per test, as CK_FORK says) and exit as meson reads it, and the skip (77)
 * of programs that need a binary of the build tree named in the environment. Header-only. */
#pragma once

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs s (and frees it): EXIT_SUCCESS when every test passed, else EXIT_FAILURE. */
static inline int check_run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Exits 77 with a line saying so when var (e.g. PADDD_BIN) is not set: run outside meson. */
static inline void check_need_env(const char *program, const char *var) {
        if (getenv(var))
                return;
        printf("%s: %s not set (run through meson test): skipped\n", program, var);
        exit(77);
}
