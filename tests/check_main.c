/*
 * The main() of every Check suite executable. CMake compiles it once per tests/test_<m>.c with
 * LT_SUITE set to that file's suite constructor, so each module is its own CTest test
 * (`ctest -R tok`). Suites that read ../shared (test_ref_*.c) exit 77, which CTest reports as
 * skipped, with the reason on stderr when the reference data is not there.
 *
 * Check kills a test that runs longer than its timeout, 4 s unless set. The tests assert no
 * timing, and a suite shares the 2 cores with another under `ctest -j2`: the tracer's threads
 * run as SCHED_IDLE (trc_writer_int.h) and wait while the other suite's threads run, so a
 * trace test of 0.1 s took over 4 s once. The default here is 120 s (CK_DEFAULT_TIMEOUT in the
 * environment still wins; tcase_set_timeout wins over both).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

Suite *LT_SUITE(void);

int main(void)
{
#ifdef LT_NEEDS_SHARED
    if (!lt_shared_dir()) {
        fprintf(stderr,
                "skipped: suite '%s' needs the reference data in ../shared, which is "
                "not present (set LLTRACE_SHARED to its path)\n",
                LT_SUITE_NAME);
        return 77;
    }
#endif
    setenv("CK_DEFAULT_TIMEOUT", "120", 0); /* read by tcase_create, in LT_SUITE() */
    SRunner *sr = srunner_create(LT_SUITE());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
