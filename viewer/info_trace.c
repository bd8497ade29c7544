/*
 * info_trace.c - `lltrace info TRACE [--json]`: what a trace holds, at a glance. The file (schema
 * version, the tool that wrote it, sizes: raw tensor bytes vs stored bytes), then each run: the
 * model and every setting that changes numerics, the build, the prompt and the generated text,
 * steps, recording levels and the status ("complete", or "crashed at step N" when the writer
 * never ended the run: steps 0..N-1 are intact). cmd_info.c hands trace files over to
 * vw_info_trace; GGUF models stay there.
 */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "cmds.h"
#include "query_int.h"
#include "vw.h"

static const char usage_text[] =
    "usage: lltrace info TRACE [--json]\n"
    "\n"
    "Describes a trace: schema version and writer, ops and tensors, raw vs stored bytes, and\n"
    "per run the model and its settings (hyper-parameters, RoPE, types, sampler), the build,\n"
    "the prompt and generated text, steps, recording levels and the status: complete, or\n"
    "crashed at step N (the run was never ended; steps before N are complete).\n"
    "\n"
    "options:\n"
    "  --json       one JSON object (sizes in bytes, times in ns)\n"
    "  -h, --help   show this help\n"
    "\n"
    "examples:\n"
    "  lltrace info t.trace\n"
    "  lltrace info t.trace --json | python3 -m json.tool\n"
    "\n"
    "exit codes: 0 success, 1 not a readable trace, 2 usage\n";

struct totals {
    int64_t file_bytes, n_ops, n_refs, n_tensors, n_data, n_shared, raw, raw_refs, stored;
};

static int64_t q_i64(sqlite3 *db, const char *sql, int64_t run)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run);
        if (sqlite3_step(st) == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
        }
    }
    sqlite3_finalize(st);
    return v;
}

static void get_totals(trc_reader *r, struct totals *t)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    struct stat st;
    t->file_bytes = stat(trc_reader_path(r), &st) == 0 ? (int64_t)st.st_size : -1;
    t->n_ops = q_i64(db, "SELECT count(*) FROM ops", 0);
    t->n_refs = q_i64(db, "SELECT count(*) FROM op_tensors", 0);
    t->n_tensors = q_i64(db, "SELECT count(*) FROM tensors", 0);
    t->n_data = q_i64(db, "SELECT count(data) FROM tensors", 0);
    t->raw = q_i64(db, "SELECT total(nbytes) FROM tensors WHERE data IS NOT NULL", 0);
    t->stored = q_i64(db, "SELECT total(length(data)) FROM tensors", 0);
    /* version 4: rows whose data_of names the row holding their bytes (schema/trace.sql) */
    bool v4 = q_i64(db, "SELECT count(*) FROM pragma_table_info('tensors') WHERE name = 'data_of'",
                    0) > 0;
    t->n_shared = v4 ? q_i64(db, "SELECT count(data_of) FROM tensors", 0) : 0;
    t->raw_refs = q_i64(db,
                        v4 ? "SELECT total(t.nbytes) FROM op_tensors ot JOIN tensors t "
                             "ON t.id = ot.tensor_id WHERE t.data IS NOT NULL OR t.data_of IS "
                             "NOT NULL"
                           : "SELECT total(t.nbytes) FROM op_tensors ot JOIN tensors t "
                             "ON t.id = ot.tensor_id WHERE t.data IS NOT NULL",
                        0);
}

/* A malloc'd string from a one-value query, or NULL. */
static char *q_text(sqlite3 *db, const char *sql, int64_t run)
{
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            v = strdup((const char *)sqlite3_column_text(st, 0));
        }
    }
    sqlite3_finalize(st);
    return v;
}

static const char *meta(sqlite3 *db, const char *key, char *buf, size_t cap)
{
    sqlite3_stmt *st = NULL;
    snprintf(buf, cap, "?");
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
            snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        }
    }
    sqlite3_finalize(st);
    return buf;
}

/* What a run has beyond trc_run_info: token counts, generated text, levels, total time. */
struct run_extra {
    int64_t n_prompt, n_gen, n_full, n_stats, steps_ns;
    char *generated; /* malloc'd or NULL */
};

static void get_extra(trc_reader *r, int64_t run, struct run_extra *x)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    x->n_prompt = q_i64(db, "SELECT count(*) FROM tokens WHERE run_id = ?1 AND is_prompt", run);
    x->n_gen = q_i64(db, "SELECT count(*) FROM tokens WHERE run_id = ?1 AND NOT is_prompt", run);
    x->n_full = q_i64(db, "SELECT count(*) FROM ops WHERE run_id = ?1 AND level = 'full'", run);
    x->n_stats = q_i64(db, "SELECT count(*) FROM ops WHERE run_id = ?1 AND level <> 'full'", run);
    x->steps_ns = q_i64(db, "SELECT total(elapsed_ns) FROM steps WHERE run_id = ?1", run);
    x->generated = q_text(db,
                          "SELECT group_concat(piece, '') FROM (SELECT piece FROM tokens "
                          "WHERE run_id = ?1 AND NOT is_prompt ORDER BY idx)",
                          run);
}

/* ---- text ---------------------------------------------------------------------------------- */

static const char *s_or(const char *s, const char *def)
{
    return s && *s ? s : def;
}

static void print_status(const struct trc_run_info *ri)
{
    printf("  status    ");
    if (strcmp(s_or(ri->status, ""), "crashed") == 0) {
        printf("crashed at step %lld (", (long long)(ri->last_step + 1));
        if (ri->last_step >= 0) {
            printf("steps 0..%lld complete)\n", (long long)ri->last_step);
        } else {
            printf("no step complete)\n");
        }
        return;
    }
    printf("%s\n", s_or(ri->status, "?"));
}

static void print_model(const struct trc_run_info *ri)
{
    printf("  model     %s", s_or(ri->model_path, "?"));
    if (ri->model_sha256) {
        printf("  (sha256 %.16s...)", ri->model_sha256);
    }
    printf("\n  arch      %s: %lld layers, n_embd %lld, n_head %lld (kv %lld), head_dim %lld, "
           "n_rot %lld, n_ff %lld, n_vocab %lld, n_ctx %lld\n",
           s_or(ri->arch, "?"), (long long)ri->n_layer, (long long)ri->n_embd,
           (long long)ri->n_head, (long long)ri->n_head_kv, (long long)ri->head_dim,
           (long long)ri->n_rot, (long long)ri->n_ff, (long long)ri->n_vocab, (long long)ri->n_ctx);
    printf("  rope      theta %g, mode %s, freq_scale %g; rms_eps %g\n", ri->rope_theta,
           s_or(ri->rope_mode, "?"), ri->rope_freq_scale, ri->rms_eps);
    printf("  types     weights %s, kv cache %s\n", s_or(ri->weight_type, "?"),
           s_or(ri->kv_type, "?"));
    printf("  sampler   temp %g%s, top_k %lld, top_p %g, seed %lld\n", ri->temp,
           ri->temp == 0 ? " (greedy)" : "", (long long)ri->top_k, ri->top_p, (long long)ri->seed);
    printf("  build     %s (%s), %s, flags '%s', simd %s, %lld threads\n",
           s_or(ri->build_version, "?"), s_or(ri->build_commit, "?"), s_or(ri->build_compiler, "?"),
           s_or(ri->build_flags, ""), s_or(ri->simd, "?"), (long long)ri->n_threads);
    printf("  faults    %s\n", s_or(ri->faults, "none"));
}

static void print_run(const struct trc_run_info *ri, const struct run_extra *x)
{
    printf("\nrun %lld   source %s\n", (long long)ri->id, s_or(ri->source, "?"));
    print_model(ri);
    printf("  prompt    ");
    vw_json_str(stdout, s_or(ri->prompt, ""));
    if (ri->chat_template) {
        printf("  (chat template %s)", ri->chat_template);
    }
    printf("\n  generated ");
    vw_json_str(stdout, s_or(x->generated, ""));
    printf("\n  tokens    %lld prompt + %lld generated\n", (long long)x->n_prompt,
           (long long)x->n_gen);
    printf("  steps     %lld", (long long)ri->n_steps);
    if (ri->n_steps > 0) {
        printf(" (0..%lld), %.3f ms", (long long)ri->last_step, (double)x->steps_ns / 1e6);
    }
    printf("\n  recording rules %s; ops: %lld full, %lld stats only\n",
           s_or(ri->record_rules, "[]"), (long long)x->n_full, (long long)x->n_stats);
    print_status(ri);
}

static void print_file(trc_reader *r, const struct totals *t)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    char v[64], tool[64], git[64], at[64], a[32], b[32], c[32], d[32];
    printf("trace     %s  (schema %s, written by %s %s %s, %s)\n", trc_reader_path(r),
           meta(db, "schema_version", v, sizeof v), meta(db, "tool", a, sizeof a),
           meta(db, "tool_version", tool, sizeof tool), meta(db, "build_git", git, sizeof git),
           meta(db, "created_at", at, sizeof at));
    printf("contents  %lld ops, %lld tensor references, %lld distinct tensors (%lld with data",
           (long long)t->n_ops, (long long)t->n_refs, (long long)t->n_tensors,
           (long long)t->n_data);
    if (t->n_shared > 0) {
        printf(", %lld more that share another's data under their own shape",
               (long long)t->n_shared);
    }
    printf(")\n");
    printf("data      %s raw (%s before dedup), %s stored", vw_fmt_bytes(a, sizeof a, t->raw),
           vw_fmt_bytes(b, sizeof b, t->raw_refs), vw_fmt_bytes(c, sizeof c, t->stored));
    if (t->stored > 0) {
        printf(": %.1fx smaller", (double)t->raw_refs / (double)t->stored);
    }
    printf("; file %s\n", t->file_bytes >= 0 ? vw_fmt_bytes(d, sizeof d, t->file_bytes) : "?");
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void js(const char *key, const char *v)
{
    printf(",\n    \"%s\": ", key);
    if (v) {
        vw_json_str(stdout, v);
    } else {
        fputs("null", stdout);
    }
}

static void ji(const char *key, int64_t v)
{
    printf(",\n    \"%s\": ", key);
    if (v >= 0) {
        printf("%lld", (long long)v);
    } else {
        fputs("null", stdout);
    }
}

static void jf(const char *key, double v)
{
    printf(",\n    \"%s\": ", key);
    vw_json_num(stdout, v);
}

static void json_run_model(const struct trc_run_info *ri)
{
    js("model_path", ri->model_path);
    js("model_sha256", ri->model_sha256);
    js("arch", ri->arch);
    ji("n_layer", ri->n_layer);
    ji("n_embd", ri->n_embd);
    ji("n_head", ri->n_head);
    ji("n_head_kv", ri->n_head_kv);
    ji("head_dim", ri->head_dim);
    ji("n_rot", ri->n_rot);
    ji("n_ff", ri->n_ff);
    ji("n_vocab", ri->n_vocab);
    ji("n_ctx", ri->n_ctx);
    jf("rope_theta", ri->rope_theta);
    jf("rope_freq_scale", ri->rope_freq_scale);
    js("rope_mode", ri->rope_mode);
    jf("rms_eps", ri->rms_eps);
    js("weight_type", ri->weight_type);
    js("kv_type", ri->kv_type);
    jf("temp", ri->temp);
    ji("top_k", ri->top_k);
    jf("top_p", ri->top_p);
    ji("seed", ri->seed);
    ji("n_threads", ri->n_threads);
    js("faults", ri->faults);
    js("build_version", ri->build_version);
    js("build_commit", ri->build_commit);
    js("build_compiler", ri->build_compiler);
    js("build_flags", ri->build_flags);
    js("simd", ri->simd);
}

static void json_run(const struct trc_run_info *ri, const struct run_extra *x, bool first)
{
    printf("%s\n    {\"id\": %lld", first ? "" : ",", (long long)ri->id);
    js("source", ri->source);
    js("status", ri->status);
    bool crashed = strcmp(s_or(ri->status, ""), "crashed") == 0;
    ji("crashed_at_step", crashed ? ri->last_step + 1 : -1);
    js("started_at", ri->started_at);
    js("ended_at", ri->ended_at);
    json_run_model(ri);
    js("prompt", ri->prompt);
    js("chat_template", ri->chat_template);
    js("rendered_prompt", ri->rendered_prompt);
    js("generated", x->generated);
    ji("n_prompt_tokens", x->n_prompt);
    ji("n_generated_tokens", x->n_gen);
    ji("n_steps", ri->n_steps);
    ji("last_step", ri->last_step);
    ji("steps_ns", x->steps_ns);
    js("record_rules", ri->record_rules);
    ji("n_ops_full", x->n_full);
    ji("n_ops_stats", x->n_stats);
    fputs("}", stdout);
}

static void json_file(trc_reader *r, const struct totals *t)
{
    sqlite3 *db = trc_reader_sql_handle(r);
    char v[64];
    printf("{\"path\": ");
    vw_json_str(stdout, trc_reader_path(r));
    js("schema_version", meta(db, "schema_version", v, sizeof v));
    js("tool_version", meta(db, "tool_version", v, sizeof v));
    js("build_git", meta(db, "build_git", v, sizeof v));
    js("created_at", meta(db, "created_at", v, sizeof v));
    ji("file_bytes", t->file_bytes);
    ji("n_ops", t->n_ops);
    ji("n_tensor_refs", t->n_refs);
    ji("n_tensors", t->n_tensors);
    ji("n_tensors_with_data", t->n_data);
    ji("n_tensors_sharing_data", t->n_shared);
    ji("raw_bytes", t->raw);
    ji("raw_bytes_before_dedup", t->raw_refs);
    ji("stored_bytes", t->stored);
    printf(",\n    \"runs\": [");
}

/* ---- the command --------------------------------------------------------------------------- */

static int each_run(trc_reader *r, bool json)
{
    trc_cursor *c = NULL;
    struct trc_run_info ri;
    int rc = trc_reader_runs(r, &c), n = 0;
    while (rc >= 0 && (rc = trc_cursor_next_run(c, &ri)) == 1) {
        struct run_extra x;
        get_extra(r, ri.id, &x);
        if (json) {
            json_run(&ri, &x, n == 0);
        } else {
            print_run(&ri, &x);
        }
        free(x.generated);
        n++;
    }
    trc_cursor_close(c);
    return rc < 0 ? vw_reader_error(r) : 0;
}

int vw_info_trace(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 0;
        }
        if (c != 'j') {
            return vw_usage_error("info", "bad option");
        }
        json = true;
    }
    if (optind + 1 != argc) {
        return vw_usage_error("info", optind >= argc ? "missing TRACE" : "too many arguments");
    }
    trc_reader *r = NULL;
    struct totals t;
    if (vw_open_trace_reader(argv[optind], &r) != 0) {
        return 1;
    }
    get_totals(r, &t);
    if (json) {
        json_file(r, &t);
    } else {
        print_file(r, &t);
    }
    int rc = each_run(r, json);
    if (json) {
        printf("]}\n");
    }
    fflush(stdout);
    trc_reader_close(r);
    return rc;
}
