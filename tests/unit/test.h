/* The unit-test harness: each tests/unit/test_*.c is one program built from this header and
 * the modules it tests. It prints one line per failed check and ends with the closing line
 * "N passed, N failed" that CI reads; the exit status is 0 only when nothing failed. */
#ifndef TESSERA_TESTS_UNIT_TEST_H
#define TESSERA_TESTS_UNIT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned test_passed, test_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            test_passed++;                                                           \
        } else {                                                                     \
            test_failed++;                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_EQ_U64(got, want)                                                                    \
    do {                                                                                           \
        uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);                                 \
        if (got_ == want_) {                                                                       \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "%s:%d: %s = 0x%" PRIx64 ", want 0x%" PRIx64 "\n", __FILE__, __LINE__, \
                    #got, got_, want_);                                                            \
        }                                                                                          \
    } while (0)

static inline int test_finish(const char *name)
{
    printf("%s: %u passed, %u failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
