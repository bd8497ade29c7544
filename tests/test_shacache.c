/*
 * Tests of viewer/shacache.c, the cache of model SHA-256s: a file hashed once is found again
 * while it is unchanged (proved by planting another digest under its identity), and hashed
 * again once it is rewritten; a file changed within a second of its opening, or replaced while
 * it was open, is not stored; an empty LLTRACE_CACHE_DIR turns the cache off; a cache file with
 * malformed lines, one that cannot be written, or a FIFO in its place, only costs a hash; the
 * file keeps its newest 64 lines; and the directory follows LLTRACE_CACHE_DIR, XDG_CACHE_HOME
 * and HOME in that order.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lm.h"
#include "shacache.h"
#include "testutil.h"

static char tmpdir[512];

/* Models for the tests that need a cacheable file: written, then left alone for more than the
 * cache's one-second "racy" window, once for the whole suite. */
static void setup(void)
{
    lt_tmp_dir(tmpdir, sizeof tmpdir, "shacache");
    const char *names[] = {"hit", "changed", "bad", "limit", "unwritable", "replaced", "other"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, names[i]);
        lt_make_tiny_model(path, 7 + i);
    }
    struct timespec wait = {1, 200 * 1000 * 1000};
    nanosleep(&wait, NULL);
}

static const char *path_of(const char *name, const char *ext)
{
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s%s", tmpdir, name, ext);
    return buf[k];
}

/* The cache's digest of the model at path, through a fresh lm_gguf_open. */
static void cached_sha(const char *path, char out[65])
{
    lm_gguf *g = NULL;
    char err[256];
    ck_assert_msg(lm_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    vw_gguf_sha256(g, out);
    lm_gguf_close(g);
}

/* sha256 of the file's bytes, computed here. */
static void true_sha(const char *path, char out[65])
{
    size_t n = 0;
    char *data = lt_read_file(path, &n);
    ck_assert_ptr_nonnull(data);
    lm_sha256_hex(data, n, out);
    free(data);
}

/* Asserts that the cache gives the model's true digest (returned in want). */
static void digest_is_true(const char *model, char want[65])
{
    char got[65];
    true_sha(model, want);
    cached_sha(model, got);
    ck_assert_str_eq(got, want);
}

/* The whole file as a string (check-asserted). */
static char *read_text(const char *path)
{
    size_t n = 0;
    char *text = lt_read_file(path, &n);
    ck_assert_ptr_nonnull(text);
    return text;
}

static int count_lines(const char *path)
{
    size_t n = 0;
    char *s = lt_read_file(path, &n);
    int lines = 0;
    for (size_t i = 0; s && i < n; i++) {
        lines += s[i] == '\n';
    }
    free(s);
    return s ? lines : -1;
}

static const char *use_cache(const char *name)
{
    const char *dir = path_of(name, ".cache");
    setenv("LLTRACE_CACHE_DIR", dir, 1);
    return path_of(name, ".cache/sha256");
}

START_TEST(test_shacache_hit_then_changed)
{
    const char *file = use_cache("hit");
    const char *model = path_of("hit", ".gguf");
    char want[65], got[65];
    digest_is_true(model, want);
    ck_assert_int_eq(count_lines(file), 1);

    /* Plant another digest under the file's identity: the next lookup must return it. */
    char *text = read_text(file);
    ck_assert_int_eq(strncmp(text, want, 64), 0);
    memset(text, 'a', 64);
    ck_assert_int_eq(lt_write_file(file, text, strlen(text)), 0);
    free(text);
    cached_sha(model, got);
    ck_assert_str_eq(got, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");

    /* Rewrite the model (other weights): its identity changes, so it is hashed again. */
    lt_make_tiny_model(model, 99);
    digest_is_true(model, want);
}
END_TEST

START_TEST(test_shacache_fresh_file_not_stored)
{
    const char *file = use_cache("fresh");
    const char *model = path_of("fresh", ".gguf");
    lt_make_tiny_model(model, 3); /* changed just now: inside the racy window */
    char want[65];
    digest_is_true(model, want);
    ck_assert_int_eq(access(file, F_OK), -1);
}
END_TEST

START_TEST(test_shacache_replaced_while_open)
{
    const char *file = use_cache("replaced");
    const char *model = path_of("replaced", ".gguf");
    char want[65], got[65];
    true_sha(model, want);
    lm_gguf *g = NULL;
    char err[256];
    ck_assert_msg(lm_gguf_open(model, &g, err, sizeof err) == 0, "%s", err);
    /* Another (old, cacheable) file takes the path while the first is mapped: the digest is
     * the mapped file's, and it is not stored, since the path no longer names that file. */
    ck_assert_int_eq(rename(path_of("other", ".gguf"), model), 0);
    vw_gguf_sha256(g, got);
    lm_gguf_close(g);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(access(file, F_OK), -1);
}
END_TEST

START_TEST(test_shacache_off_when_empty)
{
    setenv("LLTRACE_CACHE_DIR", "", 1);
    ck_assert_ptr_null(vw_cache_dir());
    const char *model = path_of("changed", ".gguf");
    char want[65];
    digest_is_true(model, want);
}
END_TEST

START_TEST(test_shacache_malformed_lines)
{
    const char *file = use_cache("bad");
    const char *model = path_of("bad", ".gguf");
    char want[65], got[65];
    true_sha(model, want);
    char dir[700];
    snprintf(dir, sizeof dir, "%s", path_of("bad", ".cache"));
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && head -c 300 /dev/urandom > '%s'", dir, file);
    ck_assert_int_eq(system(cmd), 0);
    const char *lines =
        "not a line at all\n"
        "0123 1 2 3 4 5 short digest\n"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 1 2 3 4 5 "
        "/another/model.gguf\n";
    FILE *f = fopen(file, "a");
    ck_assert_ptr_nonnull(f);
    fputs("\n", f);
    fputs(lines, f);
    fclose(f);
    cached_sha(model, got);
    ck_assert_str_eq(got, want);
    /* Rewritten with the valid lines only: the other model's, then this one's. */
    ck_assert_int_eq(count_lines(file), 2);
    char *text = read_text(file);
    ck_assert_ptr_nonnull(strstr(text, "bbbbbbbb"));
    ck_assert_ptr_nonnull(strstr(text, want));
    free(text);
}
END_TEST

START_TEST(test_shacache_keeps_newest_64)
{
    const char *file = use_cache("limit");
    const char *model = path_of("limit", ".gguf");
    char cmd[1600];
    snprintf(
        cmd, sizeof cmd,
        "mkdir -p '%s' && for i in $(seq 1 70); do echo "
        "\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc 1 $i 3 4 5 /m$i\"; "
        "done > '%s'",
        path_of("limit", ".cache"), file);
    ck_assert_int_eq(system(cmd), 0);
    char want[65];
    digest_is_true(model, want);
    ck_assert_int_eq(count_lines(file), 64);
    char *text = read_text(file);
    ck_assert_ptr_null(strstr(text, " /m7\n"));    /* among the oldest, dropped */
    ck_assert_ptr_nonnull(strstr(text, " /m8\n")); /* the oldest kept */
    ck_assert_ptr_nonnull(strstr(text, " /m70\n"));
    ck_assert_ptr_nonnull(strstr(text, want));
    free(text);
}
END_TEST

START_TEST(test_shacache_unwritable_dir)
{
    const char *model = path_of("unwritable", ".gguf");
    /* A directory inside a regular file cannot be made, even by root. */
    setenv("LLTRACE_CACHE_DIR", path_of("unwritable", ".gguf/cache"), 1);
    char want[65];
    digest_is_true(model, want);
}
END_TEST

START_TEST(test_shacache_fifo_in_place)
{
    const char *file = use_cache("fifo");
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mkfifo '%s'", path_of("fifo", ".cache"), file);
    ck_assert_int_eq(system(cmd), 0);
    const char *model = path_of("changed", ".gguf");
    char want[65], got[65];
    true_sha(model, want);
    cached_sha(model, got); /* must not block on opening the FIFO */
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_shacache_in_memory_model)
{
    use_cache("mem");
    size_t n = 0;
    char *data = lt_read_file(path_of("changed", ".gguf"), &n);
    ck_assert_ptr_nonnull(data);
    lm_gguf *g = NULL;
    char err[256], want[65], got[65];
    ck_assert_msg(lm_gguf_open_mem(data, n, "mem", &g, err, sizeof err) == 0, "%s", err);
    struct lm_file_id id;
    ck_assert(!lm_gguf_file_id(g, &id));
    lm_sha256_hex(data, n, want);
    vw_gguf_sha256(g, got);
    ck_assert_str_eq(got, want);
    lm_gguf_close(g);
    free(data);
    ck_assert_int_eq(access(path_of("mem", ".cache"), F_OK), -1);
}
END_TEST

START_TEST(test_shacache_dir_order)
{
    setenv("LLTRACE_CACHE_DIR", "/c/d", 1);
    setenv("XDG_CACHE_HOME", "/x", 1);
    setenv("HOME", "/h", 1);
    char *d = vw_cache_dir();
    ck_assert_str_eq(d, "/c/d");
    free(d);
    unsetenv("LLTRACE_CACHE_DIR");
    d = vw_cache_dir();
    ck_assert_str_eq(d, "/x/lltrace");
    free(d);
    setenv("XDG_CACHE_HOME", "relative", 1); /* the XDG spec: ignored unless absolute */
    d = vw_cache_dir();
    ck_assert_str_eq(d, "/h/.cache/lltrace");
    free(d);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    ck_assert_ptr_null(vw_cache_dir());
}
END_TEST

Suite *shacache_suite(void);
Suite *shacache_suite(void)
{
    Suite *s = suite_create("shacache");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_add_test(core, test_shacache_hit_then_changed);
    tcase_add_test(core, test_shacache_fresh_file_not_stored);
    tcase_add_test(core, test_shacache_replaced_while_open);
    tcase_add_test(core, test_shacache_off_when_empty);
    tcase_add_test(core, test_shacache_malformed_lines);
    tcase_add_test(core, test_shacache_keeps_newest_64);
    tcase_add_test(core, test_shacache_unwritable_dir);
    tcase_add_test(core, test_shacache_fifo_in_place);
    tcase_add_test(core, test_shacache_in_memory_model);
    tcase_add_test(core, test_shacache_dir_order);
    suite_add_tcase(s, core);
    return s;
}
