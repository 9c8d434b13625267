/* check.h — the assertion used by attrib's C unit tests.
 * EXPECT(cond, fmt, ...) records a failure with file:line and a message and
 * goes on; a test's main ends with `return check_report("name");`, which
 * prints the count and returns non-zero when anything failed. */
#ifndef ATTRIB_TEST_CHECK_H
#define ATTRIB_TEST_CHECK_H

#include <stdio.h>

static int check_failures = 0;

#define EXPECT(cond, ...)                                        \
    do {                                                         \
        if (!(cond)) {                                           \
            check_failures++;                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
        }                                                        \
    } while (0)

static inline int check_report(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
