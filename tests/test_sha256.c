/*
 * SHA-256: the FIPS 180-4 test vectors through the public function and both block functions
 * (portable and SHA extensions), and the two block functions against each other on every
 * length that exercises the padding.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "sha256_int.h"

static void both(const void *data, size_t len, const char *want)
{
    char out[65];
    lm_sha256_hex(data, len, out);
    ck_assert_str_eq(out, want);
    lm__sha256_hex_impl(data, len, out, 0);
    ck_assert_str_eq(out, want);
    if (lm__sha256_have_shani()) {
        lm__sha256_hex_impl(data, len, out, 1);
        ck_assert_str_eq(out, want);
    }
}

START_TEST(test_sha256_fips_vectors)
{
    both("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    both("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *s56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    both(s56, strlen(s56), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *mil = malloc(1000000);
    ck_assert_ptr_nonnull(mil);
    memset(mil, 'a', 1000000);
    both(mil, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(mil);
}
END_TEST

START_TEST(test_sha256_block_functions_agree)
{
    enum { N = 4096 };
    unsigned char *b = malloc(N);
    char a[65], c[65];
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < N; i++) {
        b[i] = (unsigned char)((unsigned)i * 2654435761u >> 13);
    }
    if (!lm__sha256_have_shani()) {
        free(b);
        return; /* one block function on this CPU: the vectors above cover it */
    }
    for (size_t len = 0; len <= N; len += len < 300 ? 1 : 61) {
        lm__sha256_hex_impl(b, len, a, 0);
        lm__sha256_hex_impl(b, len, c, 1);
        ck_assert_msg(strcmp(a, c) == 0, "length %zu: %s vs %s", len, a, c);
    }
    free(b);
}
END_TEST

Suite *sha256_suite(void);

Suite *sha256_suite(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_sha256_fips_vectors);
    tcase_add_test(tc, test_sha256_block_functions_agree);
    suite_add_tcase(s, tc);
    return s;
}
