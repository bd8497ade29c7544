/*
 * cmd_replay.c - `lltrace replay`: re-execute recorded ops with the engine's kernels.
 *   replay TRACE OP [--step S]              one op, compared with its recorded output
 *   replay TRACE OP --variant K=V...        under changed semantics, as a table
 *   replay TRACE OP ... --against REF       ranked by agreement with REF's output of that op
 *   replay TRACE --all [--step S] [--layer L]  every op; lists those that do not reproduce
 *   replay TRACE --run                      the whole generation again; first op not identical
 * The work is in replay.c (one op) and align.c (comparisons); this file formats.
 */
#include "align_int.h"
#include "cmds.h"
#include "query_int.h"
#include "replay_int.h"
#include "run_int.h"
#include "vw.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VARIANTS 16

static const char usage_text[] =
    "usage: lltrace replay TRACE OP [--step S] [-m MODEL] [--variant K=V[,K=V]...]...\n"
    "                     [--against REF.trace] [--atol X] [--rtol Y]\n"
    "       lltrace replay TRACE --all [--step S] [--layer L] [-m MODEL]\n"
    "       lltrace replay TRACE --run [-m MODEL] [-t N]\n"
    "\n"
    "Re-executes recorded ops from their recorded inputs with the engine's kernels. OP is a\n"
    "canonical name (blk.0.rope_q; the first step holding it unless --step) or an op id.\n"
    "Weights come from the model named in the trace, verified by SHA-256 (-m: another path).\n"
    "\n"
    "  --all             replay every op (filtered by --step/--layer) and list those whose\n"
    "                    output is not bit-identical to the recorded one\n"
    "  --variant SPEC    replay under changed semantics; repeat for a table of variants. Keys:\n"
    "                    rope=norm|neox theta=X pos-offset=N eps=X gqa=group|tile\n"
    "                    softmax=f32|f16 kv=f32|f16 qk-permute=0|1 (comma-separated)\n"
    "  --against REF     rank the variants by agreement with REF's output of the same op at\n"
    "                    the same positions (without --variant: the variants of the op's kind)\n"
    "  --run             re-run the whole generation (same tokens, settings, seed, faults) into\n"
    "                    a temporary trace and report the first op that is not bit-identical\n"
    "  -m, --model PATH  the model file, when it moved\n"
    "  -t, --threads N   threads for --run (default: as recorded)\n"
    "  --atol/--rtol     tolerances for --against (defaults 1e-5, 1e-4)\n"
    "\n"
    "Exit status: 0 reproduced (or a variant reproduces REF), 1 not, or an error, 2 usage.\n";

struct ropts {
    const char *trace, *op, *model, *against;
    long long step, layer, threads;
    bool all, run;
    const char *variants[MAX_VARIANTS];
    int n_variants;
    struct vw_cmp_tol tol;
};

static int parse(int argc, char **argv, struct ropts *o)
{
    static const struct option longs[] = {
        {"step", required_argument, NULL, 's'},    {"layer", required_argument, NULL, 'l'},
        {"model", required_argument, NULL, 'm'},   {"variant", required_argument, NULL, 'v'},
        {"against", required_argument, NULL, 'a'}, {"all", no_argument, NULL, 'A'},
        {"run", no_argument, NULL, 'R'},           {"threads", required_argument, NULL, 't'},
        {"atol", required_argument, NULL, 'x'},    {"rtol", required_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "hm:t:", longs, NULL)) != -1) {
        bool bad = false;
        switch (ch) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 's':
            bad = vw_parse_i64(optarg, 0, INT64_MAX, &o->step) < 0;
            break;
        case 'l':
            bad = vw_parse_i64(optarg, 0, 1 << 20, &o->layer) < 0;
            break;
        case 't':
            bad = vw_parse_i64(optarg, 1, 256, &o->threads) < 0;
            break;
        case 'm':
            o->model = optarg;
            break;
        case 'a':
            o->against = optarg;
            break;
        case 'A':
        case 'R':
            *(ch == 'A' ? &o->all : &o->run) = true;
            break;
        case 'v':
            bad = o->n_variants == MAX_VARIANTS;
            o->variants[o->n_variants < MAX_VARIANTS ? o->n_variants++ : 0] = optarg;
            break;
        case 'x':
        case 'y':
            bad = vw_parse_f64(optarg, ch == 'x' ? &o->tol.atol : &o->tol.rtol) < 0;
            break;
        default:
            return vw_usage_error("replay", "unknown option");
        }
        if (bad) {
            return vw_usage_error("replay", "bad value '%s' for an option", optarg);
        }
    }
    const int n_args = argc - optind;
    if (n_args < 1 || (o->all || o->run ? n_args != 1 : n_args != 2) || (o->all && o->run)) {
        return vw_usage_error("replay", "expected TRACE and OP, or TRACE with --all or --run");
    }
    o->trace = argv[optind];
    o->op = n_args == 2 ? argv[optind + 1] : NULL;
    return -1;
}

/* The op index named by o->op (a canonical name, or an op id), or -1. */
static int64_t find_op(const struct vw_trace *t, const struct ropts *o)
{
    long long id;
    if (vw_parse_i64(o->op, 1, INT64_MAX, &id) == 0) {
        for (int64_t i = 0; i < t->n_ops; i++) {
            if (t->ops[i].id == id) {
                return i;
            }
        }
        return -1;
    }
    return vw_trace_find_step(t, o->op, o->step);
}

/* Replays op i and compares it with its recorded output. *c gets the metrics. Returns 0, 1 when
 * the op cannot be replayed (reason in rp), or < 0 on error. */
static int replay_vs_recorded(vw_replay *rp, struct vw_trace *t, int64_t i,
                              const struct vw_variant *v, const struct vw_cmp_tol *tol,
                              struct vw_cmp *c)
{
    float *out = NULL;
    int64_t n;
    const struct vw_tens *rec;
    int rc = vw_replay_op(rp, i, v, &out, &n);
    if (rc != 0) {
        return rc;
    }
    vw_cmp_init(c);
    rc = vw_trace_tensor(t, i, "out", &rec);
    if (rc == 0 && rec->n == n) {
        vw_cmp_add(c, out, rec->data, rec->known, n, 0, tol);
    }
    vw_cmp_finish(c);
    free(out);
    return rc < 0 ? rc : 0;
}

static void print_metrics(const struct vw_cmp *c)
{
    printf("  max_abs %.3g  max_rel %.3g  nmse %.3g  cos %.9g  max_ulp %lld  (%lld of %lld "
           "elements fail, worst at flat index %lld: replayed %.9g, recorded %.9g)\n",
           c->max_abs, c->max_rel, c->nmse, c->cos, (long long)c->max_ulp, (long long)c->n_fail,
           (long long)c->n, (long long)c->worst_idx, (double)c->worst_a, (double)c->worst_b);
}

static int one_op(vw_replay *rp, struct vw_trace *t, int64_t i, const struct ropts *o)
{
    struct vw_cmp c;
    const struct vw_top *op = &t->ops[i];
    int rc = replay_vs_recorded(rp, t, i, NULL, &o->tol, &c);
    if (rc != 0) {
        return vw_error("%s", rc > 0 ? vw_replay_errmsg(rp) : t->err);
    }
    printf("%s (%s), step %lld, positions %lld..%lld: ", op->name, op->kind, (long long)op->step,
           (long long)op->pos0, (long long)(op->pos0 + op->n_pos - 1));
    if (c.bitwise) {
        printf("reproduced bit for bit (%lld elements)\n", (long long)c.n);
        return 0;
    }
    printf("NOT reproduced (%s)\n", vw_cmp_pass(&c) ? "within tolerance" : "outside tolerance");
    print_metrics(&c);
    return 1;
}

/* ---- variants ------------------------------------------------------------------------------- */

struct vrow {
    struct vw_variant v;
    struct vw_cmp c;
    bool ok;
    char why[512];
};

/* The variants worth trying for an op kind when none are given. */
static int default_variants(const char *kind, const char **specs)
{
    static const char *const rope[] = {"rope=norm", "rope=neox"};
    static const char *const attn[] = {"gqa=group", "gqa=tile", "kv=f32", "kv=f16"};
    static const char *const sm[] = {"softmax=f32", "softmax=f16"};
    static const char *const mm[] = {"qk-permute=0", "qk-permute=1"};
    static const char *const kv[] = {"kv=f32", "kv=f16"};
    const char *const *src = NULL;
    int n = 0;
    if (!strcmp(kind, "rope")) {
        src = rope;
        n = 2;
    } else if (!strcmp(kind, "attn_scores") || !strcmp(kind, "attn_ctx")) {
        src = attn;
        n = 4;
    } else if (!strcmp(kind, "softmax")) {
        src = sm;
        n = 2;
    } else if (!strcmp(kind, "matmul")) {
        src = mm;
        n = 2;
    } else if (!strcmp(kind, "cache_write")) {
        src = kv;
        n = 2;
    }
    for (int k = 0; k < n; k++) {
        specs[k] = src[k];
    }
    return n;
}

static int vrow_rank(const void *x, const void *y)
{
    const struct vrow *a = x, *b = y;
    if (a->ok != b->ok) {
        return a->ok ? -1 : 1;
    }
    if (a->c.bitwise != b->c.bitwise) {
        return a->c.bitwise ? -1 : 1;
    }
    if (a->c.n_fail != b->c.n_fail) {
        return a->c.n_fail < b->c.n_fail ? -1 : 1;
    }
    return (a->c.nmse > b->c.nmse) - (a->c.nmse < b->c.nmse);
}

/* Fills row r: the variant replayed, compared with REF (against) or with the recording. */
static void run_variant(vw_replay *rp, struct vw_trace *t, int64_t i, struct vw_trace *ref,
                        const struct ropts *o, struct vrow *r)
{
    const struct vw_top *op = &t->ops[i];
    float *out = NULL;
    int64_t n;
    int rc;
    if (!ref) {
        rc = replay_vs_recorded(rp, t, i, &r->v, &o->tol, &r->c);
    } else if ((rc = vw_replay_op(rp, i, &r->v, &out, &n)) == 0) {
        struct vw_override over = {i, out};
        struct vw_opcmp oc;
        rc = vw_align_compare(ref, t, op->name, "out", op->pos0, op->pos0 + op->n_pos, &over,
                              &o->tol, &oc);
        r->c = oc.c;
        if (rc == 0 && oc.n_rows == 0) {
            snprintf(r->why, sizeof r->why, "%s holds no row of %s", ref->path, op->name);
            rc = 1;
        }
    }
    free(out);
    r->ok = rc == 0;
    if (rc != 0 && !r->why[0]) {
        snprintf(r->why, sizeof r->why, "%s", rc > 0 ? vw_replay_errmsg(rp) : t->err);
    }
}

static int variants_table(vw_replay *rp, struct vw_trace *t, int64_t i, struct vw_trace *ref,
                          const struct ropts *o)
{
    const char *specs[MAX_VARIANTS + 1];
    struct vrow rows[MAX_VARIANTS + 1];
    char err[256];
    int n = o->n_variants ? o->n_variants : default_variants(t->ops[i].kind, specs);
    for (int k = 0; k < o->n_variants; k++) {
        specs[k] = o->variants[k];
    }
    memset(rows, 0, sizeof rows);
    vw_variant_init(&rows[0].v);
    for (int k = 0; k < n; k++) {
        if (vw_variant_parse(&rows[k + 1].v, specs[k], err, sizeof err) < 0) {
            return vw_usage_error("replay", "%s", err);
        }
    }
    for (int k = 0; k <= n; k++) {
        run_variant(rp, t, i, ref, o, &rows[k]);
    }
    qsort(rows, (size_t)n + 1, sizeof rows[0], vrow_rank);
    printf("%s (%s), step %lld: replayed variants compared with %s\n", t->ops[i].name,
           t->ops[i].kind, (long long)t->ops[i].step, ref ? ref->path : "the recorded output");
    printf("  %-4s %-28s %-10s %10s %10s %12s %10s\n", "rank", "variant", "result", "max_abs",
           "nmse", "cos", "max_ulp");
    for (int k = 0; k <= n; k++) {
        const struct vrow *r = &rows[k];
        const char *res = !r->ok               ? "n/a"
                          : r->c.bitwise       ? "identical"
                          : vw_cmp_pass(&r->c) ? "within-tol"
                                               : "differs";
        printf("  %-4d %-28s %-10s", k + 1, r->v.label, res);
        if (r->ok) {
            printf(" %10.3g %10.3g %12.9g %10lld\n", r->c.max_abs, r->c.nmse, r->c.cos,
                   (long long)r->c.max_ulp);
        } else {
            printf(" %s\n", r->why);
        }
    }
    return rows[0].ok && vw_cmp_pass(&rows[0].c) ? 0 : 1;
}

/* ---- --all ------------------------------------------------------------------------------------
 */

static int all_ops(vw_replay *rp, struct vw_trace *t, const struct ropts *o)
{
    int64_t n_ok = 0, n_bad = 0, n_skip = 0;
    char first_skip[512] = "";
    for (int64_t i = 0; i < t->n_ops; i++) {
        const struct vw_top *op = &t->ops[i];
        struct vw_cmp c;
        if ((o->step >= 0 && op->step != o->step) || (o->layer >= 0 && op->layer != o->layer)) {
            continue;
        }
        int rc = replay_vs_recorded(rp, t, i, NULL, &o->tol, &c);
        if (rc < 0) {
            return vw_error("%s", t->err[0] ? t->err : vw_replay_errmsg(rp));
        }
        if (rc > 0) {
            n_skip++;
            if (!first_skip[0]) {
                snprintf(first_skip, sizeof first_skip, "%s", vw_replay_errmsg(rp));
            }
        } else if (c.bitwise) {
            n_ok++;
        } else {
            n_bad++;
            printf("step %lld seq %lld %s (%s): not reproduced\n", (long long)op->step,
                   (long long)op->seq, op->name, op->kind);
            print_metrics(&c);
        }
    }
    printf("replayed %lld ops: %lld bit-identical, %lld differ, %lld skipped\n",
           (long long)(n_ok + n_bad), (long long)n_ok, (long long)n_bad, (long long)n_skip);
    if (n_skip) {
        printf("  first skip: %s\n", first_skip);
    }
    return n_bad || n_ok == 0 ? 1 : 0;
}

/* ---- --run ------------------------------------------------------------------------------------
 */

/* Run options that repeat the recorded generation. Strings point into t or bufs. */
static int run_opts_from(const struct vw_trace *t, const struct ropts *o, struct vw_run_opts *ro,
                         int32_t *prompt, char *faults, size_t fcap)
{
    char err[256];
    const struct trc_run_info *r = &t->run;
    vw_run_opts_init(ro);
    ro->model = o->model ? o->model : r->model_path;
    ro->prompt = r->prompt ? r->prompt : "";
    ro->n_tokens = 0;
    for (int64_t i = 0; i < t->n_tok && t->tok_prompt[i]; i++) {
        prompt[ro->n_tokens++] = t->tok_ids[i];
    }
    ro->tokens = prompt;
    ro->n_predict = t->n_tok - ro->n_tokens;
    ro->n_ctx = r->n_ctx > 0 ? r->n_ctx : 0;
    ro->n_threads = o->threads > 0 ? (int)o->threads : (r->n_threads > 0 ? (int)r->n_threads : 0);
    ro->kv_type = r->kv_type && !strcmp(r->kv_type, "f16") ? LM_TYPE_F16 : LM_TYPE_F32;
    ro->sampler.temp = r->temp >= 0 ? (float)r->temp : 0.0f;
    ro->sampler.top_k = r->top_k >= 0 ? (int)r->top_k : 0;
    ro->sampler.top_p = r->top_p >= 0 ? (float)r->top_p : 1.0f;
    ro->sampler.seed = r->seed >= 0 ? (uint64_t)r->seed : 0;
    ro->quiet = true;
    ro->force = true;
    lm_faults_init(&ro->faults);
    snprintf(faults, fcap, "%s", r->faults ? r->faults : "");
    for (char *tok = faults, *next; *tok; tok = next) {
        next = strchr(tok, ',');
        if (next) {
            *next++ = 0;
        } else {
            next = tok + strlen(tok);
        }
        if (lm_faults_parse(&ro->faults, tok, err, sizeof err) < 0) {
            return vw_error("%s: %s", t->path, err);
        }
    }
    if (!ro->model || ro->n_tokens == 0) {
        return vw_error("%s: the trace lacks its model path or prompt tokens", t->path);
    }
    return 0;
}

/* Index of the first op of b that is not bit-identical to a's (same name, positions, output
 * hash), or -1. */
static int64_t first_mismatch(struct vw_trace *a, struct vw_trace *b)
{
    const int64_t n = a->n_ops < b->n_ops ? a->n_ops : b->n_ops;
    for (int64_t i = 0; i < n; i++) {
        const struct vw_top *x = &a->ops[i], *y = &b->ops[i];
        struct trc_tensor_info tx, ty;
        if (strcmp(x->name, y->name) || x->step != y->step || x->pos0 != y->pos0 ||
            x->n_pos != y->n_pos) {
            return i;
        }
        const int ra = vw_trace_tensor_info(a, i, "out", &tx);
        const int rb = vw_trace_tensor_info(b, i, "out", &ty);
        if (ra != rb || (ra == 0 && strcmp(tx.hash, ty.hash) != 0)) {
            return i;
        }
    }
    return a->n_ops == b->n_ops ? -1 : n;
}

static void remove_trace(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int rerun(struct vw_trace *t, const struct ropts *o)
{
    struct vw_run_opts ro;
    struct vw_trace t2;
    char faults[256], path[512], err[512];
    int32_t *prompt = malloc((size_t)(t->n_tok + 1) * sizeof *prompt);
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/lltrace-replay-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = prompt ? mkstemp(path) : -1;
    if (fd < 0) {
        free(prompt);
        return vw_error("cannot create a temporary trace: %s", path);
    }
    close(fd);
    int rc = run_opts_from(t, o, &ro, prompt, faults, sizeof faults);
    ro.trace = path;
    if (rc == 0 && (rc = vw_run(&ro, NULL)) == 0 &&
        (rc = vw_trace_open(&t2, path, err, sizeof err)) == 0) {
        const int64_t k = first_mismatch(t, &t2);
        if (k < 0) {
            printf("all %lld ops identical (%lld tokens)\n", (long long)t->n_ops,
                   (long long)t->n_tok);
        } else if (k < t->n_ops) {
            printf("first op not bit-identical: step %lld seq %lld %s (op id %lld)\n",
                   (long long)t->ops[k].step, (long long)t->ops[k].seq, t->ops[k].name,
                   (long long)t->ops[k].id);
            rc = 1;
        } else {
            printf("the re-run has %lld ops, the trace %lld\n", (long long)t2.n_ops,
                   (long long)t->n_ops);
            rc = 1;
        }
        vw_trace_close(&t2);
    } else if (rc < 0) {
        rc = vw_error("%s", err);
    }
    remove_trace(path);
    free(prompt);
    return rc ? 1 : 0;
}

/* ---- command -----------------------------------------------------------------------------------
 */

static int with_trace(struct vw_trace *t, const struct ropts *o)
{
    vw_replay *rp = NULL;
    struct vw_trace ref;
    char err[512];
    int rc;
    if (o->run) {
        return rerun(t, o);
    }
    if (vw_check_selection(t->r, t->run.id, o->step, o->layer) != 0) {
        return 1;
    }
    if (vw_replay_create(t, o->model, &rp, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    if (o->all) {
        rc = all_ops(rp, t, o);
    } else {
        const int64_t i = find_op(t, o);
        if (i < 0) {
            rc = vw_error("%s: no op '%s'%s", t->path, o->op, o->step >= 0 ? " at that step" : "");
        } else if (o->against) {
            memset(&ref, 0, sizeof ref);
            rc = vw_trace_open(&ref, o->against, err, sizeof err) < 0
                     ? vw_error("%s", err)
                     : variants_table(rp, t, i, &ref, o);
            vw_trace_close(&ref);
        } else if (o->n_variants) {
            rc = variants_table(rp, t, i, NULL, o);
        } else {
            rc = one_op(rp, t, i, o);
        }
    }
    vw_replay_destroy(rp);
    return rc;
}

int cmd_replay(int argc, char **argv)
{
    struct ropts o;
    struct vw_trace t;
    char err[512];
    memset(&o, 0, sizeof o);
    o.step = o.layer = -1;
    o.tol.atol = VW_CMP_ATOL;
    o.tol.rtol = VW_CMP_RTOL;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    if (vw_trace_open(&t, o.trace, err, sizeof err) < 0) {
        vw_trace_close(&t);
        return vw_error("%s", err);
    }
    rc = with_trace(&t, &o);
    vw_trace_close(&t);
    return rc;
}
