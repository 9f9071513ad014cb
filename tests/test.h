/* tests/test.h: trail's test harness.
 *
 * TEST(name) { ... } defines a test and registers it at load time (a constructor), so a new test
 * file needs no list to edit. The runner (tests/runner.c) forks each test under an alarm; a failing
 * CHECK prints file, line, expression and both values, then ends that test's process. */
#ifndef TRAIL_TESTS_TEST_H
#define TRAIL_TESTS_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, unsigned timeout_s);

/* A test with the default 10-second budget, or with an explicit one (end-to-end tests). */
#define TEST(name) TEST_TIMEOUT(name, 10)
#define TEST_TIMEOUT(name, secs)                                                                   \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        test_register(#name, test_##name, (secs));                                                 \
    }                                                                                              \
    static void test_##name(void)

__attribute__((noreturn, format(printf, 3, 4))) void test_fail(const char *file, int line,
                                                               const char *fmt, ...);

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr)) test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #expr);                     \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_)                                                                  \
            test_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld != %lld", #a, #b,         \
                      check_a_, check_b_);                                                         \
    } while (0)

#define CHECK_NE(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_)                                                                  \
            test_fail(__FILE__, __LINE__, "CHECK_NE(%s, %s) failed: both %lld", #a, #b, check_a_);  \
    } while (0)

/* a and b compared as C strings; NULL is printed as (null) and equals only NULL. */
#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (!test_str_eq(check_a_, check_b_))                                                      \
            test_fail(__FILE__, __LINE__, "CHECK_STR_EQ(%s, %s) failed: \"%s\" != \"%s\"", #a, #b,  \
                      check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");             \
    } while (0)

/* true when the C string hay contains needle */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *check_h_ = (hay), *check_n_ = (needle);                                        \
        if (check_h_ == NULL || strstr(check_h_, check_n_) == NULL)                                \
            test_fail(__FILE__, __LINE__, "CHECK_CONTAINS(%s, %s) failed: \"%s\" lacks \"%s\"",    \
                      #hay, #needle, check_h_ ? check_h_ : "(null)", check_n_);                    \
    } while (0)

/* (p, n) compared with a string literal or C string s, byte for byte. */
#define CHECK_MEM_EQ(p, n, s)                                                                      \
    do {                                                                                           \
        const char *check_p_ = (const char *)(p), *check_s_ = (s);                                 \
        size_t check_n_ = (size_t)(n);                                                             \
        if (check_n_ != strlen(check_s_) || memcmp(check_p_, check_s_, check_n_) != 0)             \
            test_fail(__FILE__, __LINE__, "CHECK_MEM_EQ(%s, %s) failed: \"%.*s\" != \"%s\"", #p,   \
                      #s, (int)check_n_, check_p_, check_s_);                                      \
    } while (0)

static inline bool test_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) return a == b;
    return strcmp(a, b) == 0;
}

/* Prints a figure a test measured (hostile cases, timings); shown under the test's result line. */
void test_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A fresh temporary directory for this test, removed when the test ends. */
const char *test_tmpdir(void);

#endif
