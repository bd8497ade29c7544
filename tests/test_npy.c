/*
 * Tests of viewer/npy.c: float32 arrays round-trip through .npy files of 1 to 4 dimensions;
 * version 2.0 / 3.0 headers and float16 / float64 data written by hand read back; and every
 * malformed header or size is rejected with "<name>: <reason>".
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"
#include "npy.h"
#include "testutil.h"

static char tmpdir[512];

static void setup(void)
{
    lt_tmp_dir(tmpdir, sizeof tmpdir, "npy");
}

/* A .npy image: magic, version major, header dict (padded to 64 with '\n'), then data. */
static size_t mk_npy(uint8_t *out, int major, const char *dict, const void *data, size_t n)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64;
    size_t hl = total - pre;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)major;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) {
        out[8 + i] = (uint8_t)(hl >> (8 * i));
    }
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', hl - dl - 1);
    out[total - 1] = '\n';
    if (n > 0) {
        memcpy(out + total, data, n);
    }
    return total + n;
}

START_TEST(test_npy_roundtrip_dims)
{
    static const int64_t shapes[4][4] = {{5}, {3, 4}, {2, 3, 4}, {1, 2, 3, 2}};
    for (int nd = 1; nd <= 4; nd++) {
        char path[600], err[256] = "";
        float v[24], *back = NULL;
        int64_t sh[4];
        int back_nd = 0;
        int64_t count = 1;
        for (int d = 0; d < nd; d++) {
            count *= shapes[nd - 1][d];
        }
        for (int64_t i = 0; i < count; i++) {
            v[i] = (float)i * 0.25f - 1.0f;
        }
        snprintf(path, sizeof path, "%s/a%d.npy", tmpdir, nd);
        ck_assert_int_eq(vw_npy_write_f32(path, v, nd, shapes[nd - 1], err, sizeof err), 0);
        size_t len;
        char *raw = lt_read_file(path, &len);
        ck_assert_uint_eq((len - (size_t)count * 4) % 64, 0); /* aligned data, as numpy */
        ck_assert_int_eq(memcmp(raw, "\x93NUMPY\x01\x00", 8), 0);
        free(raw);
        ck_assert_msg(vw_npy_read_f32(path, &back, &back_nd, sh, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(back_nd, nd);
        for (int d = 0; d < 4; d++) {
            ck_assert_int_eq(sh[d], d < nd ? shapes[nd - 1][d] : 1);
        }
        ck_assert_int_eq(memcmp(back, v, (size_t)count * 4), 0);
        free(back);
    }
}
END_TEST

START_TEST(test_npy_header_text_is_numpy_style)
{
    char path[600], err[256];
    float v[6] = {0};
    int64_t sh1[1] = {6}, sh2[2] = {2, 3};
    snprintf(path, sizeof path, "%s/h.npy", tmpdir);
    ck_assert_int_eq(vw_npy_write_f32(path, v, 1, sh1, err, sizeof err), 0);
    char *raw = lt_read_file(path, NULL);
    ck_assert_int_eq(
        memcmp(raw + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 57), 0);
    free(raw);
    ck_assert_int_eq(vw_npy_write_f32(path, v, 2, sh2, err, sizeof err), 0);
    raw = lt_read_file(path, NULL);
    ck_assert_int_eq(
        memcmp(raw + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 59), 0);
    free(raw);
}
END_TEST

START_TEST(test_npy_reads_v2_v3_f16_f64)
{
    uint8_t buf[512];
    float *d = NULL;
    int nd;
    int64_t sh[4];
    char err[256] = "";
    uint16_t h[3] = {lm_f32_to_f16(1.5f), lm_f32_to_f16(-2.0f), lm_f32_to_f16(0.0f)};
    size_t n = mk_npy(buf, 2, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", h, 6);
    ck_assert_msg(vw_npy_parse_f32(buf, n, "m", &d, &nd, sh, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(sh[0], 3);
    ck_assert_double_eq_tol((double)d[0], 1.5, 1e-12);
    ck_assert_double_eq_tol((double)d[1], -2.0, 1e-12);
    free(d);
    double f8[2] = {0.125, 3.0};
    n = mk_npy(buf, 3, "{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f8\"}", f8, 16);
    ck_assert_msg(vw_npy_parse_f32(buf, n, "m", &d, &nd, sh, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(sh[1], 2);
    ck_assert_double_eq_tol((double)d[0], 0.125, 1e-12);
    ck_assert_double_eq_tol((double)d[1], 3.0, 1e-12);
    free(d);
    n = mk_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", NULL, 0);
    ck_assert_msg(vw_npy_parse_f32(buf, n, "m", &d, &nd, sh, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(sh[0], 0);
    free(d);
}
END_TEST

/* The dict (or raw bytes when dict is NULL) must be rejected with "m: <reason>". */
static void expect_bad(int major, const char *dict, size_t data_bytes, const char *reason)
{
    static uint8_t buf[8192];
    static const uint8_t zeros[4096];
    float *d = (float *)1;
    int nd;
    int64_t sh[4];
    char err[256], want[300];
    size_t n = mk_npy(buf, major, dict, zeros, data_bytes);
    ck_assert_int_eq(vw_npy_parse_f32(buf, n, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_ptr_null(d);
    snprintf(want, sizeof want, "m: %s", reason);
    ck_assert_str_eq(err, want);
}

START_TEST(test_npy_rejects_bad_headers)
{
    expect_bad(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8,
               "fortran order is not supported");
    expect_bad(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
               "big-endian dtype '>f4' is not supported");
    expect_bad(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16,
               "dtype '<i8' is not supported (float32, float16 or float64)");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4,
               "more than 4 dimensions");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
               "data is 20 bytes but the shape needs 24");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
               "data is 28 bytes but the shape needs 24");
    expect_bad(1,
               "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
               0, "shape overflows");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0,
               "malformed header");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False}", 0, "header lacks 'shape'");
    expect_bad(1, "{'descr': '<f4', 'shape': (1,), 'extra': 1}", 4,
               "unexpected key 'extra' in header");
    expect_bad(1, "['descr']", 0, "header is not a dict");
    expect_bad(1, "{'descr': '<f4' 'shape': (1,)}", 4, "malformed header");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", 4, "malformed header");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 4, "malformed header");
}
END_TEST

START_TEST(test_npy_rejects_bad_prefix)
{
    uint8_t buf[64] = "\x93NUMPY\x01\x00\xff\x7f";
    float *d;
    int nd;
    int64_t sh[4];
    char err[256];
    ck_assert_int_eq(vw_npy_parse_f32(buf, 5, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "m: not a .npy file (too short)");
    ck_assert_int_eq(vw_npy_parse_f32(buf, 64, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "m: header length 32767 runs past end of file");
    buf[6] = 9;
    ck_assert_int_eq(vw_npy_parse_f32(buf, 64, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "m: unsupported .npy version 9.0");
    buf[0] = 'X';
    ck_assert_int_eq(vw_npy_parse_f32(buf, 64, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "m: not a .npy file (bad magic)");
    buf[0] = 0x93;
    buf[6] = 2;
    ck_assert_int_eq(vw_npy_parse_f32(buf, 11, "m", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "m: truncated header");
}
END_TEST

START_TEST(test_npy_file_errors)
{
    char path[600], err[256], want[700];
    float *d, v = 0;
    int nd;
    int64_t sh[4] = {1};
    ck_assert_int_eq(vw_npy_read_f32("/nonexistent/x.npy", &d, &nd, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "/nonexistent/x.npy: cannot open: no such file or directory");
    ck_assert_int_eq(vw_npy_write_f32("/nonexistent/x.npy", &v, 1, sh, err, sizeof err), -1);
    ck_assert_str_eq(err, "/nonexistent/x.npy: cannot create: no such file or directory");
    snprintf(path, sizeof path, "%s/z.npy", tmpdir);
    ck_assert_int_eq(vw_npy_write_f32(path, &v, 5, sh, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: n_dims 5 is out of range (1..4)", path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(vw_npy_read_f32(tmpdir, &d, &nd, sh, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: not a regular file", tmpdir);
    ck_assert_str_eq(err, want);
}
END_TEST

Suite *npy_suite(void);

Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *core = tcase_create("core");
    tcase_add_checked_fixture(core, setup, NULL);
    tcase_add_test(core, test_npy_header_text_is_numpy_style);
    tcase_add_test(core, test_npy_reads_v2_v3_f16_f64);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("errors");
    tcase_add_checked_fixture(errors, setup, NULL);
    tcase_add_test(errors, test_npy_rejects_bad_headers);
    tcase_add_test(errors, test_npy_rejects_bad_prefix);
    tcase_add_test(errors, test_npy_file_errors);
    suite_add_tcase(s, errors);
    TCase *rt = tcase_create("roundtrip");
    tcase_add_checked_fixture(rt, setup, NULL);
    tcase_add_test(rt, test_npy_roundtrip_dims);
    suite_add_tcase(s, rt);
    return s;
}
