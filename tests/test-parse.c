/* test-parse.c: unit tests of the strict number and size parsers in common/parse.c, which the
 * config and padctl use for everything people type: limits, overflow, suffixes, garbage,
 * and the human-readable byte formatting. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "parse.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct Case {
        const char *s;
        uint64_t max;
        int r;
        uint64_t v;
} Case;

START_TEST(test_parse_unsigned) {
        static const Case cases[] = {
                { "0", 10, 0, 0 },
                { "7", 10, 0, 7 },
                { "10", 10, 0, 10 },
                { "11", 10, -ERANGE, 0 },
                { "007", 10, 0, 7 },
                { "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
                { "18446744073709551616", UINT64_MAX, -ERANGE, 0 },
                { "99999999999999999999999", UINT64_MAX, -ERANGE, 0 },
                { "4294967295", UINT32_MAX, 0, UINT32_MAX },
                { "4294967296", UINT32_MAX, -ERANGE, 0 },
                { "", 10, -EINVAL, 0 },
                { "-1", UINT64_MAX, -EINVAL, 0 },
                { "+1", UINT64_MAX, -EINVAL, 0 },
                { " 1", 10, -EINVAL, 0 },
                { "1 ", 10, -EINVAL, 0 },
                { "1\n", 10, -EINVAL, 0 },
                { "1x", 10, -EINVAL, 0 },
                { "0x10", 100, -EINVAL, 0 },
                { "1.5", 10, -EINVAL, 0 },
                { "1e3", 10000, -EINVAL, 0 },
                { "abc", 10, -EINVAL, 0 },
                { "1K", UINT64_MAX, -EINVAL, 0 },
        };

        for (unsigned i = 0; i < ELEMENTS(cases); i++) {
                uint64_t v = 12345;
                int r = parse_unsigned(cases[i].s, cases[i].max, &v);

                ck_assert_msg(r == cases[i].r, "parse_unsigned(\"%s\") = %d, expected %d", cases[i].s, r, cases[i].r);
                /* On failure the output is left alone. */
                ck_assert_uint_eq(v, r == 0 ? cases[i].v : 12345);
        }
        {
                uint64_t v = 1;
                ck_assert_int_eq(parse_unsigned(NULL, 10, &v), -EINVAL);
                ck_assert_int_eq(parse_unsigned("0", 0, &v), 0);
                ck_assert_uint_eq(v, 0);
                ck_assert_int_eq(parse_unsigned("1", 0, &v), -ERANGE);
        }
}
END_TEST

START_TEST(test_parse_unsigned_hex) {
        static const Case cases[] = {
                { "0", 255, 0, 0 },
                { "255", 255, 0, 255 },
                { "256", 255, -ERANGE, 0 },
                { "0x0", 255, 0, 0 },
                { "0xff", 255, 0, 255 },
                { "0XFF", 255, 0, 255 },
                { "0xAb", 255, 0, 0xab },
                { "0x100", 255, -ERANGE, 0 },
                { "0xffffffffffffffff", UINT64_MAX, 0, UINT64_MAX },
                { "0x10000000000000000", UINT64_MAX, -ERANGE, 0 },
                { "0x", 255, -EINVAL, 0 },
                { "0x-1", 255, -EINVAL, 0 },
                { "0x+1", 255, -EINVAL, 0 },
                { "0x 1", 255, -EINVAL, 0 },
                { "0xfg", 255, -EINVAL, 0 },
                { "0x0x1", 255, -EINVAL, 0 },
                { "ff", 255, -EINVAL, 0 },
                { "1f", 255, -EINVAL, 0 },
                { "x10", 255, -EINVAL, 0 },
                { "", 255, -EINVAL, 0 },
                { "-0x1", 255, -EINVAL, 0 },
                { "010", 255, 0, 10 },
        };

        for (unsigned i = 0; i < ELEMENTS(cases); i++) {
                uint64_t v = 12345;
                int r = parse_unsigned_hex(cases[i].s, cases[i].max, &v);

                ck_assert_msg(r == cases[i].r, "parse_unsigned_hex(\"%s\") = %d, expected %d", cases[i].s, r, cases[i].r);
                ck_assert_uint_eq(v, r == 0 ? cases[i].v : 12345);
        }
        {
                uint64_t v;
                ck_assert_int_eq(parse_unsigned_hex(NULL, 255, &v), -EINVAL);
        }
}
END_TEST

START_TEST(test_parse_size) {
        static const Case cases[] = {
                { "0", 0, 0, 0 },
                { "0K", 0, 0, 0 },
                { "1", 0, 0, 1 },
                { "1023", 0, 0, 1023 },
                { "1K", 0, 0, 1024 },
                { "1k", 0, 0, 1024 },
                { "1KiB", 0, 0, 1024 },
                { "1kib", 0, 0, 1024 },
                { "1KB", 0, 0, 1024 },
                { "1kb", 0, 0, 1024 },
                { "2M", 0, 0, 2ull << 20 },
                { "2MiB", 0, 0, 2ull << 20 },
                { "3G", 0, 0, 3ull << 30 },
                { "1g", 0, 0, 1ull << 30 },
                { "5T", 0, 0, 5ull << 40 },
                { "16777215T", 0, 0, 16777215ull << 40 },
                { "16777216T", 0, -ERANGE, 0 },
                { "17179869183G", 0, 0, 17179869183ull << 30 },
                { "17179869184G", 0, -ERANGE, 0 },
                { "18014398509481983K", 0, 0, 18014398509481983ull << 10 },
                { "18014398509481984K", 0, -ERANGE, 0 },
                { "18446744073709551615", 0, 0, UINT64_MAX },
                { "18446744073709551616", 0, -ERANGE, 0 },
                { "", 0, -EINVAL, 0 },
                { "K", 0, -EINVAL, 0 },
                { "-1", 0, -EINVAL, 0 },
                { "+1K", 0, -EINVAL, 0 },
                { " 1K", 0, -EINVAL, 0 },
                { "1 K", 0, -EINVAL, 0 },
                { "1K ", 0, -EINVAL, 0 },
                { "1Ki", 0, -EINVAL, 0 },
                { "1KiBs", 0, -EINVAL, 0 },
                { "1KK", 0, -EINVAL, 0 },
                { "1P", 0, -EINVAL, 0 },
                { "1E", 0, -EINVAL, 0 },
                { "1.5G", 0, -EINVAL, 0 },
                { "0x10", 0, -EINVAL, 0 },
                { "1G\n", 0, -EINVAL, 0 },
        };

        for (unsigned i = 0; i < ELEMENTS(cases); i++) {
                uint64_t v = 12345;
                int r = parse_size(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "parse_size(\"%s\") = %d, expected %d", cases[i].s, r, cases[i].r);
                ck_assert_uint_eq(v, r == 0 ? cases[i].v : 12345);
        }
        {
                uint64_t v;
                ck_assert_int_eq(parse_size(NULL, &v), -EINVAL);
        }
}
END_TEST

START_TEST(test_format_bytes) {
        static const struct {
                uint64_t bytes;
                const char *s;
        } cases[] = {
                { 0, "0 B" },
                { 1, "1 B" },
                { 1023, "1023 B" },
                { 1024, "1.0 KiB" },
                { 1536, "1.5 KiB" },
                { 10 * 1024 - 1, "10.0 KiB" },
                { 1ull << 20, "1.0 MiB" },
                { (1ull << 20) - 1, "1.0 MiB" },     /* not "1024.0 KiB" */
                { (1ull << 30) - 1, "1.0 GiB" },
                { 3ull << 30, "3.0 GiB" },
                { 1ull << 40, "1.0 TiB" },
                { 5ull << 50, "5120.0 TiB" },
                { UINT64_MAX, "16777216.0 TiB" },
        };
        char buf[64], small[4];

        for (unsigned i = 0; i < ELEMENTS(cases); i++) {
                const char *s = format_bytes(buf, sizeof(buf), cases[i].bytes);

                ck_assert_ptr_eq(s, buf);
                ck_assert_msg(strcmp(s, cases[i].s) == 0, "format_bytes(%llu) = \"%s\", expected \"%s\"",
                              (unsigned long long) cases[i].bytes, s, cases[i].s);
        }
        /* A short buffer is truncated, never overrun. */
        memset(small, 'x', sizeof(small));
        ck_assert_str_eq(format_bytes(small, sizeof(small), 3ull << 30), "3.0");
        ck_assert_str_eq(format_bytes(small, sizeof(small), 123456), "120");
}
END_TEST

static Suite *parse_suite(void) {
        Suite *s = suite_create("parse");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse_unsigned);
        tcase_add_test(tc, test_parse_unsigned_hex);
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_format_bytes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return check_run_suite(parse_suite());
}
