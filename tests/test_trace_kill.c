/*
 * The crash-safety test of the tracer (issue 4): a child process records steps as fast as it
 * can and is killed with SIGKILL at 20 different moments (timed delays, and right after the
 * k-th step commit). Each time the trace must open, pass PRAGMA integrity_check, hold every step
 * the child saw complete (and only whole steps, each with all its ops and verified tensors),
 * and read as crashed: no end marker.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "trc.h"

#define N_OPS   8
#define N_ELEMS 4096
#define N_KILLS 20

/* Deterministic contents of op k of step s: smooth, like activations. */
static void fill(float *x, int s, int k)
{
    for (int i = 0; i < N_ELEMS; i++) {
        x[i] = sinf((float)i * 0.01f + (float)s) * (float)(k + 1);
    }
}

/* The recording child: reports each completed step on fd (an int), after a first ready byte. */
static void child(const char *path, int fd)
{
    trc_writer *w = NULL;
    char err[256];
    struct trc_writer_opts o = {.overwrite = true};
    if (trc_writer_open(path, &o, &w, err, sizeof err) < 0) {
        _exit(3);
    }
    float *x = malloc(N_ELEMS * sizeof *x);
    float cosv[64];
    for (int i = 0; i < 64; i++) {
        cosv[i] = cosf((float)i);
    }
    trc_run_begin(w, "kill-test", NULL);
    trc_run_set_i64(w, "n_layer", N_OPS);
    char ready = 'r';
    if (write(fd, &ready, 1) != 1) {
        _exit(4);
    }
    for (int s = 0; s < 100000; s++) {
        if (trc_step_begin(w, s, s, 1) < 0) {
            _exit(5);
        }
        for (int k = 0; k < N_OPS; k++) {
            char name[32];
            snprintf(name, sizeof name, "blk.%d.l_out", k);
            fill(x, s, k);
            struct trc_tensor t[2] = {
                {.role = "out", .dtype = TRC_DTYPE_F32, .n_dims = 2, .shape = {64, 64}, .data = x},
                {.role = "cos", .dtype = TRC_DTYPE_F32, .n_dims = 1, .shape = {64}, .data = cosv}};
            struct trc_op op = {.name = name,
                                .kind = "add",
                                .layer = k,
                                .pos0 = s,
                                .n_pos = 1,
                                .elapsed_ns = -1,
                                .tensors = t,
                                .n_tensors = 2};
            if (trc_op_record(w, &op) < 0) {
                _exit(6);
            }
        }
        if (trc_step_end(w, -1) < 0 || write(fd, &s, sizeof s) != sizeof s) {
            _exit(7);
        }
    }
    _exit(0); /* not reached in practice: the parent kills us first */
}

static int atoi_checked(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    ck_assert_msg(end != s && *end == '\0', "not a number: '%s'", s);
    return (int)v;
}

/* Checks the trace left by a killed child that had reported `last` as its last whole step. */
static int check_trace(const char *path, int last)
{
    trc_reader *r = NULL;
    char err[256];
    int rc = trc_reader_open(path, &r, err, sizeof err);
    ck_assert_msg(rc == 0, "killed trace does not open: %s", err);
    void *db = trc_reader_sql_handle(r);
    ck_assert_str_eq(lt_sql1(db, "PRAGMA integrity_check"), "ok");
    int n_steps = atoi_checked(lt_sql1(db, "SELECT count(*) FROM steps"));
    ck_assert_msg(n_steps >= last + 1, "steps %d, child completed %d", n_steps, last + 1);
    ck_assert_int_le(n_steps, last + 2); /* at most one committed but not yet reported */
    ck_assert_str_eq(lt_sql1(db, "SELECT coalesce(max(step), -1) + 1 = count(*) FROM steps"), "1");
    ck_assert_str_eq(
        lt_sql1(db, "SELECT count(*) FROM ops WHERE step NOT IN (SELECT step FROM steps)"), "0");
    ck_assert_int_eq(atoi_checked(lt_sql1(db, "SELECT count(*) FROM ops")), n_steps * N_OPS);
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    ck_assert_int_eq(trc_reader_runs(r, &c), 0);
    ck_assert_int_eq(trc_cursor_next_run(c, &ri), 1);
    ck_assert_str_eq(ri.status, "crashed");
    ck_assert_ptr_null(ri.ended_at);
    ck_assert_int_eq(ri.n_steps, n_steps);
    trc_cursor_close(c);
    /* every op's output decodes, verifies against its hash and holds what was recorded */
    float *x = malloc(N_ELEMS * sizeof *x);
    float *want = malloc(N_ELEMS * sizeof *want);
    struct trc_op_info oi;
    ck_assert_int_eq(trc_reader_ops(r, 1, -1, &c), 0);
    while (trc_cursor_next_op(c, &oi) == 1) {
        int64_t tid;
        ck_assert_int_eq(trc_reader_op_tensor(r, oi.id, "out", &tid), 0);
        ck_assert_msg(trc_reader_tensor_f32(r, tid, x, N_ELEMS) == 0, "%s", trc_reader_errmsg(r));
        fill(want, (int)oi.step, oi.layer);
        ck_assert_mem_eq(x, want, N_ELEMS * sizeof *x);
    }
    trc_cursor_close(c);
    free(x);
    free(want);
    trc_reader_close(r);
    return n_steps;
}

/* One kill: after delay_us, or (after_step >= 0) as soon as that step is reported done. */
static int kill_once(const char *path, long delay_us, int after_step)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child(path, fds[1]);
    }
    close(fds[1]);
    char ready = 0;
    ck_assert_int_eq(read(fds[0], &ready, 1), 1);
    int last = -1;
    int s;
    if (after_step < 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
    while (after_step >= 0 && last < after_step &&
           read(fds[0], &s, sizeof s) == (ssize_t)sizeof s) {
        last = s;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFSIGNALED(status), "child ended by itself (status %d)", status);
    while (read(fds[0], &s, sizeof s) == (ssize_t)sizeof s) {
        last = s;
    }
    close(fds[0]);
    return check_trace(path, last);
}

START_TEST(test_trace_kill_at_many_points)
{
    static const struct {
        long delay_us;
        int after_step;
    } kills[N_KILLS] = {{0, -1},      {200, -1},    {1000, -1},  {3000, -1},  {7000, -1},
                        {12000, -1},  {20000, -1},  {35000, -1}, {60000, -1}, {90000, -1},
                        {130000, -1}, {200000, -1}, {0, 0},      {0, 1},      {0, 2},
                        {0, 3},       {0, 5},       {0, 8},      {0, 13},     {0, 21}};
    char dir[1024];
    char path[1100];
    lt_tmp_dir(dir, sizeof dir, "trace_kill");
    snprintf(path, sizeof path, "%s/killed.trace", dir);
    int max_steps = 0;
    for (int i = 0; i < N_KILLS; i++) {
        int n = kill_once(path, kills[i].delay_us, kills[i].after_step);
        max_steps = n > max_steps ? n : max_steps;
    }
    ck_assert_int_gt(max_steps, 21); /* the kills landed at different points of a long run */
}
END_TEST

Suite *trace_kill_suite(void); /* called by check_main.c */
Suite *trace_kill_suite(void)
{
    Suite *s = suite_create("trace_kill");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_trace_kill_at_many_points);
    suite_add_tcase(s, tc);
    return s;
}
