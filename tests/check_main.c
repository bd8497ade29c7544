/*
 * The main() of every Check suite executable. CMake compiles it once per tests/test_<m>.c with
 * LT_SUITE set to that file's suite constructor, so each module is its own CTest test
 * (`ctest -R tok`). Suites that read ../shared (test_ref_*.c) exit 77, which CTest reports as
 * skipped, with the reason on stderr when the reference data is not there.
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
    SRunner *sr = srunner_create(LT_SUITE());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
