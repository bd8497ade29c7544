/*
 * cmd_export.c - `lltrace export`: tensors out of a trace as NumPy .npy files (one op's tensor,
 * or every tensor of a run with an index.tsv), and the op timeline as a Chrome trace event file
 * that Perfetto UI and chrome://tracing open. Tensors are written as float32 whatever their
 * stored dtype (f16/bf16 widened, i32 converted exactly below 2^24); a partial tensor (an
 * imported dump) is written dense with NaN where the value is unknown.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "npy.h"
#include "progress.h"
#include "query_int.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace export TRACE OP [--step S] [--role ROLE] -o FILE.npy\n"
    "       lltrace export TRACE --all DIR [--step S] [--layer L] [--name GLOB] [--kind K]\n"
    "       lltrace export TRACE --chrome-trace FILE.json\n"
    "\n"
    "Writes tensors as NumPy .npy files (float32, C order; numpy.load reads them) or the op\n"
    "timeline in Chrome trace event format.\n"
    "\n"
    "  OP -o FILE.npy        one tensor of op OP (an op id, or a canonical name at --step)\n"
    "  --all DIR             every tensor of the run (filters as in 'lltrace ops'), one file\n"
    "                        per op and role, named sSTEP-SEQ-NAME-ROLE.npy, and DIR/index.tsv\n"
    "                        (file op_id step seq layer name kind role tensor_id dtype shape\n"
    "                        partial; file '-' for tensors recorded with stats only)\n"
    "  --chrome-trace FILE   one complete event ('X') per op, cat = op kind, ts/dur in\n"
    "                        microseconds from the recorded op times laid end to end inside\n"
    "                        each step, args with op id, layer and output shape; each step is\n"
    "                        a parent event; the run is one process (pid = run id). Open it\n"
    "                        in https://ui.perfetto.dev or chrome://tracing\n"
    "\n"
    "options:\n"
    "  --step S      step of a named op, or only step S with --all (default: 0 / every step)\n"
    "  --role ROLE   tensor of the op to write: out (default), in0, in1, pos, cos, sin, ...\n"
    "  --layer L, --name GLOB, --kind K   filters of --all\n"
    "  --run R       run (default: the first run)\n"
    "  -h, --help    show this help\n"
    "\n"
    "A partial tensor (imported text dump) is written dense, NaN where unknown, with a warning.\n"
    "A progress bar is drawn on stderr during --all when it is a terminal.\n"
    "\n"
    "examples:\n"
    "  lltrace export t.trace blk.0.attn_q --step 0 -o q.npy\n"
    "  python3 -c \"import numpy; print(numpy.load('q.npy').shape)\"\n"
    "  lltrace export t.trace --all dump/ --layer 0\n"
    "  lltrace export t.trace --chrome-trace timeline.json\n"
    "\n"
    "exit codes: 0 success, 1 no such op or role, corrupt data, write error, 2 usage\n";

struct export_args {
    const char *trace, *op, *out, *all, *chrome;
    const char *role;
    int64_t run, step;
    struct vw_op_filter filter;
};

static int parse_opt(struct export_args *a, int c, const char *opt)
{
    long long v;
    switch (c) {
    case 'o':
        a->out = optarg;
        return 0;
    case 'A':
        a->all = optarg;
        return 0;
    case 'C':
        a->chrome = optarg;
        return 0;
    case 'R':
        a->role = optarg;
        return 0;
    case 'n':
        a->filter.name_glob = optarg;
        return 0;
    case 'k':
        a->filter.kind = optarg;
        return 0;
    default:
        if (vw_parse_i64(optarg, 0, INT32_MAX, &v) < 0) {
            return vw_usage_error("export", "--%s: '%s' is not a non-negative integer", opt,
                                  optarg);
        }
        *(c == 's' ? &a->step : c == 'l' ? &a->filter.layer : &a->run) = v;
        return 0;
    }
}

static int check_mode(struct export_args *a, int argc, char **argv)
{
    int n_modes = (a->out != NULL) + (a->all != NULL) + (a->chrome != NULL);
    int want = a->out ? 2 : 1;
    if (n_modes != 1) {
        return vw_usage_error("export", "give exactly one of -o FILE.npy, --all DIR, "
                                        "--chrome-trace FILE.json");
    }
    if (argc - optind != want) {
        return vw_usage_error("export", argc - optind < want ? "missing %s" : "too many arguments",
                              want == 2 ? "TRACE or OP" : "TRACE");
    }
    a->trace = argv[optind];
    a->op = want == 2 ? argv[optind + 1] : NULL;
    a->filter.step = a->step;
    return 0;
}

static int parse_args(int argc, char **argv, struct export_args *a)
{
    static const struct option lo[] = {
        {"all", required_argument, NULL, 'A'},   {"chrome-trace", required_argument, NULL, 'C'},
        {"role", required_argument, NULL, 'R'},  {"step", required_argument, NULL, 's'},
        {"layer", required_argument, NULL, 'l'}, {"name", required_argument, NULL, 'n'},
        {"kind", required_argument, NULL, 'k'},  {"run", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int c, rc = 0, li = 0;
    optind = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "ho:", lo, &li)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return -1;
        }
        if (c == '?' || c == ':') {
            return vw_usage_error("export", "bad option");
        }
        rc = parse_opt(a, c, lo[li].name);
    }
    return rc != 0 ? rc : check_mode(a, argc, argv);
}

/* ---- tensors to .npy ----------------------------------------------------------------------- */

/* Writes tensor tid to path; *partial tells whether unknown elements were filled with NaN. */
static int write_npy(trc_reader *r, int64_t tid, const char *path, bool *partial)
{
    struct trc_tensor_info ti;
    char err[512];
    if (trc_reader_tensor_info(r, tid, &ti) < 0) {
        return vw_reader_error(r);
    }
    *partial = ti.partial;
    float *x = malloc((size_t)ti.n_elems * sizeof *x + 1);
    int64_t *known = ti.partial ? malloc((size_t)ti.n_stored * sizeof *known + 1) : NULL;
    float *vals = ti.partial ? malloc((size_t)ti.n_stored * sizeof *vals + 1) : x;
    int rc = x && vals && (known || !ti.partial) ? 0 : vw_error("out of memory");
    if (rc == 0 && (trc_reader_tensor_f32(r, tid, vals, ti.n_stored) < 0 ||
                    (ti.partial && trc_reader_tensor_known(r, tid, known, ti.n_stored) < 0))) {
        rc = vw_reader_error(r);
    }
    for (int64_t i = 0; rc == 0 && ti.partial && i < ti.n_elems; i++) {
        x[i] = NAN;
    }
    for (int64_t i = 0; rc == 0 && ti.partial && i < ti.n_stored; i++) {
        x[known[i]] = vals[i]; /* the reader checked 0 <= known[i] < n_elems */
    }
    if (rc == 0 && vw_npy_write_f32(path, x, ti.n_dims, ti.shape, err, sizeof err) < 0) {
        rc = vw_error("%s", err);
    }
    if (vals != x) {
        free(vals);
    }
    free(x);
    free(known);
    return rc;
}

static int export_one(trc_reader *r, const struct export_args *a)
{
    int64_t op_id, tid;
    bool partial = false;
    const char *role = a->role ? a->role : "out";
    int rc = vw_op_find(r, a->op, a->run, a->step, &op_id);
    if (rc == 0 && trc_reader_op_tensor(r, op_id, role, &tid) < 0) {
        rc = vw_reader_error(r);
    }
    rc = rc == 0 ? write_npy(r, tid, a->out, &partial) : rc;
    if (rc == 0 && partial) {
        vw_warn("%s: tensor %lld is partial (an imported dump): unknown elements written as NaN",
                a->out, (long long)tid);
    }
    if (rc == 0) {
        printf("wrote %s (op %lld %s, tensor %lld)\n", a->out, (long long)op_id, role,
               (long long)tid);
    }
    return rc;
}

/* ---- --all --------------------------------------------------------------------------------- */

struct op_row {
    int64_t id, step, seq;
    int layer;
    char name[96], kind[32];
};

/* The run's ops that pass the filters, malloc'd into *rows. Returns 0 or 1. */
static int collect_ops(trc_reader *r, const struct export_args *a, struct op_row **rows, int64_t *n)
{
    trc_cursor *c = NULL;
    struct trc_op_info op;
    int64_t cap = 0;
    int rc = trc_reader_ops(r, a->run, a->filter.step, &c);
    *rows = NULL;
    *n = 0;
    while (rc >= 0 && (rc = trc_cursor_next_op(c, &op)) == 1) {
        if (!vw_op_filter_match(&a->filter, &op)) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            struct op_row *nr = realloc(*rows, (size_t)cap * sizeof *nr);
            if (!nr) {
                trc_cursor_close(c);
                return vw_error("out of memory");
            }
            *rows = nr;
        }
        struct op_row *o = &(*rows)[(*n)++];
        *o = (struct op_row){op.id, op.step, op.seq, op.layer, "", ""};
        snprintf(o->name, sizeof o->name, "%s", op.name ? op.name : "");
        snprintf(o->kind, sizeof o->kind, "%s", op.kind ? op.kind : "");
    }
    trc_cursor_close(c);
    return rc < 0 ? vw_reader_error(r) : 0;
}

/* A file name that cannot leave DIR: names from a trace are untrusted. */
static void safe_name(char *buf, size_t cap, const struct op_row *o, const char *role)
{
    snprintf(buf, cap, "s%03lld-%04lld-%s-%s.npy", (long long)o->step, (long long)o->seq, o->name,
             role);
    for (char *p = buf; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
        *p = ok ? *p : '_';
    }
}

static void index_line(FILE *idx, const struct op_row *o, const char *role,
                       const struct trc_tensor_info *ti, const char *file)
{
    char shape[96];
    fprintf(idx, "%s\t%lld\t%lld\t%lld\t", file, (long long)o->id, (long long)o->step,
            (long long)o->seq);
    if (o->layer >= 0) {
        fprintf(idx, "%d", o->layer);
    }
    fprintf(idx, "\t%s\t%s\t%s\t%lld\t%s\t%s\t%d\n", o->name, o->kind, role, (long long)ti->id,
            vw_dtype_name(ti->dtype), vw_fmt_shape(shape, sizeof shape, ti->n_dims, ti->shape),
            ti->partial ? 1 : 0);
}

/* Writes every tensor of one op into dir and its lines into the index; counts files. */
static int export_op(trc_reader *r, const char *dir, FILE *idx, const struct op_row *o,
                     int64_t *n_files)
{
    struct vw_role_list l;
    struct trc_tensor_info ti;
    char file[256], path[4096];
    int rc = vw_op_roles(r, o->id, &l);
    for (int i = 0; rc == 0 && i < l.n; i++) {
        bool partial;
        if (trc_reader_tensor_info(r, l.tid[i], &ti) < 0) {
            return vw_reader_error(r);
        }
        if (!ti.has_data) {
            index_line(idx, o, l.role[i], &ti, "-");
            continue;
        }
        safe_name(file, sizeof file, o, l.role[i]);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        rc = write_npy(r, l.tid[i], path, &partial);
        if (rc == 0) {
            index_line(idx, o, l.role[i], &ti, file);
            (*n_files)++;
        }
    }
    return rc;
}

static int make_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0777) == 0) {
        return 0;
    }
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        return 0;
    }
    return vw_error("%s: cannot create directory: %s", dir,
                    errno == EEXIST ? "a file is in the way" : vw_strerror(errno));
}

static int export_all(trc_reader *r, const struct export_args *a)
{
    struct op_row *ops = NULL;
    int64_t n_ops = 0, n_files = 0;
    char path[4096];
    struct vw_progress pr;
    int rc = make_dir(a->all);
    rc = rc == 0 ? collect_ops(r, a, &ops, &n_ops) : rc;
    snprintf(path, sizeof path, "%s/index.tsv", a->all);
    FILE *idx = rc == 0 ? fopen(path, "w") : NULL;
    if (rc == 0 && !idx) {
        rc = vw_error("%s: cannot create: %s", path, vw_strerror(errno));
    }
    if (rc == 0) {
        fputs("file\top_id\tstep\tseq\tlayer\tname\tkind\trole\ttensor_id\tdtype\tshape\tpartial\n",
              idx);
        vw_progress_init(&pr, stderr, "export", n_ops);
        for (int64_t i = 0; rc == 0 && i < n_ops; i++) {
            rc = export_op(r, a->all, idx, &ops[i], &n_files);
            vw_progress_update(&pr, i + 1);
        }
        vw_progress_release(&pr);
    }
    if (idx && fclose(idx) != 0 && rc == 0) {
        rc = vw_error("%s: write error", path);
    }
    if (rc == 0) {
        printf("wrote %lld .npy files for %lld ops and %s\n", (long long)n_files, (long long)n_ops,
               path);
    }
    free(ops);
    return rc;
}

/* ---- --chrome-trace ------------------------------------------------------------------------ */

struct chrome {
    trc_reader *r;
    FILE *f;
    int64_t run;
    int n_events;
};

static void event_begin(struct chrome *ch, const char *name, const char *cat, double ts_us,
                        double dur_us)
{
    fputs(ch->n_events++ ? ",\n" : "\n", ch->f);
    fputs("{\"name\":", ch->f);
    vw_json_str(ch->f, name);
    fputs(",\"cat\":", ch->f);
    vw_json_str(ch->f, cat);
    fprintf(ch->f, ",\"ph\":\"X\",\"pid\":%lld,\"tid\":1,\"ts\":%.3f,\"dur\":%.3f,\"args\":{",
            (long long)ch->run, ts_us, dur_us);
}

static void op_event(struct chrome *ch, const struct trc_op_info *op, double ts_us, double dur_us)
{
    int64_t tid;
    struct trc_tensor_info ti;
    char shape[96] = "null";
    if (trc_reader_op_tensor(ch->r, op->id, "out", &tid) == 0 &&
        trc_reader_tensor_info(ch->r, tid, &ti) == 0) {
        vw_fmt_shape(shape, sizeof shape, ti.n_dims, ti.shape);
    }
    event_begin(ch, op->name ? op->name : "?", op->kind ? op->kind : "?", ts_us, dur_us);
    fprintf(ch->f, "\"op_id\":%lld,\"step\":%lld,\"seq\":%lld,\"layer\":", (long long)op->id,
            (long long)op->step, (long long)op->seq);
    if (op->layer >= 0) {
        fprintf(ch->f, "%d", op->layer);
    } else {
        fputs("null", ch->f);
    }
    fprintf(ch->f, ",\"shape\":%s,\"params\":", shape);
    vw_json_str(ch->f, op->params_json ? op->params_json : "");
    fputs("}}", ch->f);
}

static void step_event(struct chrome *ch, const struct trc_step_info *s, double ts_us,
                       double dur_us)
{
    char name[48];
    snprintf(name, sizeof name, "step %lld", (long long)s->step);
    event_begin(ch, name, "step", ts_us, dur_us);
    fprintf(ch->f, "\"step\":%lld,\"pos0\":%lld,\"n_tokens\":%lld,\"n_ops\":%lld}}",
            (long long)s->step, (long long)s->pos0, (long long)s->n_tokens, (long long)s->n_ops);
}

/* One step: its ops laid end to end from t0, then the step around them. Returns the step's
 * duration in microseconds, or -1 on a reader error. */
static double chrome_step(struct chrome *ch, const struct trc_step_info *s, double t0)
{
    trc_cursor *c = NULL;
    struct trc_op_info op;
    double t = t0;
    int rc = trc_reader_ops(ch->r, ch->run, s->step, &c);
    while (rc >= 0 && (rc = trc_cursor_next_op(c, &op)) == 1) {
        double dur = op.elapsed_ns > 0 ? (double)op.elapsed_ns / 1e3 : 0;
        op_event(ch, &op, t, dur);
        t += dur;
    }
    trc_cursor_close(c);
    if (rc < 0) {
        return -1;
    }
    double dur = s->elapsed_ns > 0 ? (double)s->elapsed_ns / 1e3 : 0;
    dur = dur > t - t0 ? dur : t - t0;
    step_event(ch, s, t0, dur);
    return dur;
}

static int chrome_run(struct chrome *ch)
{
    trc_cursor *c = NULL;
    struct trc_step_info s;
    struct trc_step_info *steps = NULL;
    int64_t n = 0, cap = 0;
    int rc = trc_reader_steps(ch->r, ch->run, &c);
    while (rc >= 0 && (rc = trc_cursor_next_step(c, &s)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct trc_step_info *ns = realloc(steps, (size_t)cap * sizeof *ns);
            if (!ns) {
                rc = TRC_ENOMEM;
                break;
            }
            steps = ns;
        }
        steps[n++] = s;
    }
    trc_cursor_close(c);
    double t = 0;
    for (int64_t i = 0; rc >= 0 && i < n; i++) {
        double d = chrome_step(ch, &steps[i], t);
        rc = d < 0 ? -1 : rc;
        t += d;
    }
    free(steps);
    return rc == TRC_ENOMEM ? vw_error("out of memory") : rc < 0 ? vw_reader_error(ch->r) : 0;
}

static int export_chrome(trc_reader *r, const struct export_args *a)
{
    struct chrome ch = {r, fopen(a->chrome, "w"), a->run, 0};
    if (!ch.f) {
        return vw_error("%s: cannot create: %s", a->chrome, vw_strerror(errno));
    }
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", ch.f);
    fprintf(ch.f,
            "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%lld,\"tid\":1,"
            "\"args\":{\"name\":",
            (long long)a->run);
    char pname[64];
    snprintf(pname, sizeof pname, "run %lld", (long long)a->run);
    vw_json_str(ch.f, pname);
    fputs("}}", ch.f);
    ch.n_events = 1;
    int rc = chrome_run(&ch);
    fputs("\n]}\n", ch.f);
    if (fclose(ch.f) != 0 && rc == 0) {
        rc = vw_error("%s: write error", a->chrome);
    }
    if (rc == 0) {
        printf("wrote %s: %d events (open it in https://ui.perfetto.dev)\n", a->chrome,
               ch.n_events);
    }
    return rc;
}

int cmd_export(int argc, char **argv)
{
    struct export_args a = {.run = -1, .step = -1, .filter = {-1, -1, NULL, NULL}};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (a.op && a.step < 0) {
        a.step = 0;
    }
    trc_reader *r = NULL;
    if (vw_open_trace_reader(a.trace, &r) != 0) {
        return 1;
    }
    rc = a.run < 0 ? vw_reader_first_run(r, &a.run) : 0;
    rc = rc ? rc : vw_check_selection(r, a.run, a.all ? a.filter.step : -1, a.filter.layer);
    if (rc == 0) {
        rc = a.out ? export_one(r, &a) : a.all ? export_all(r, &a) : export_chrome(r, &a);
    }
    trc_reader_close(r);
    return rc;
}
