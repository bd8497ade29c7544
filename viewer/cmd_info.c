/*
 * lltrace info MODEL.gguf: what a GGUF model holds, for people (like gguf-dump, but with the
 * llama hyper-parameters and the tokenizer summarized first) or as one JSON object (--json), and
 * `--tensor NAME -o FILE.npy` to export one weight dequantized to float32 with numpy's shape
 * (ne reversed: rows x columns).
 *
 * Only the engine's public API is used: the file is opened with lm_gguf_open (which rejects
 * malformed files) and, when it has tensors, checked with lm_gguf_check_llama. A file that does
 * not start with the GGUF magic is handed to vw_info_trace (info_trace.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "lm.h"
#include "npy.h"
#include "table.h"
#include "vw.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lltrace info MODEL.gguf [--json]\n"
            "       lltrace info MODEL.gguf --tensor NAME -o FILE.npy\n"
            "       lltrace info TRACE [--json]   (a trace: runs, settings, steps, status)\n\n"
            "Describes a GGUF model: file and GGUF version, architecture and hyper-parameters,\n"
            "tokenizer, every metadata key, and a table of tensors (name, type, shape as\n"
            "rows x columns like numpy, bytes). Malformed files are rejected with the reason.\n\n"
            "options:\n"
            "  --json          print one JSON object instead\n"
            "  --tensor NAME   export this weight, dequantized to float32 ...\n"
            "  -o FILE.npy     ... into this NumPy file (shape: ne reversed)\n"
            "  -h, --help      show this help\n");
}

struct info_args {
    const char *model, *tensor, *out;
    bool json;
};

/* Returns 0, 2 (usage error) or -1 (--help shown). */
static int parse_args(int argc, char **argv, struct info_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"tensor", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'j') {
            a->json = true;
        } else if (c == 't') {
            a->tensor = optarg;
        } else if (c == 'o') {
            a->out = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return -1;
        } else {
            return vw_usage_error("info", "unknown option or missing value: '%s'",
                                  argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) {
        return vw_usage_error("info", optind == argc ? "missing MODEL.gguf" : "too many arguments");
    }
    a->model = argv[optind];
    if (!a->tensor != !a->out) {
        return vw_usage_error("info", "--tensor NAME and -o FILE.npy go together");
    }
    if (a->tensor && a->json) {
        return vw_usage_error("info", "--json cannot be combined with --tensor");
    }
    return 0;
}

/* 1 if the file starts with "GGUF", 0 if not; -1 (message printed) if it cannot be read. */
static int is_gguf(const char *path)
{
    char magic[4];
    FILE *f = fopen(path, "rb");
    if (!f) {
        vw_error("%s: cannot open: %s", path, vw_strerror(errno));
        return -1;
    }
    size_t n = fread(magic, 1, 4, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        vw_error("%s: cannot read (a directory?)", path);
        return -1;
    }
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

/* ---- the summary --------------------------------------------------------------------------------
 */

static const char *const vtype_names[LM_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

struct summary {
    char arch[64], name[128], tok_model[64];
    int64_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx, n_rot;
    double rope_theta, rms_eps;
    int64_t bos, eos, unk;
    int add_bos, add_eos; /* -1 = absent */
    const char *chat;     /* detected template name, or NULL */
    char chat_prefix[64]; /* start of the raw template, escaped; "" if none */
};

/* A string value as a NUL-terminated copy (cut to cap), "" if absent or not a string. */
static void get_str(const lm_gguf *g, const char *key, char *buf, size_t cap)
{
    const char *s;
    uint64_t len;
    buf[0] = 0;
    if (lm_gguf_get_str(g, key, &s, &len) == 0) {
        snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
    }
}

/* "<arch>.<suffix>" as u32, or def. */
static int64_t arch_u32(const lm_gguf *g, const char *arch, const char *suffix, int64_t def)
{
    char key[160];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return lm_gguf_get_u32(g, key, &v) == 0 ? (int64_t)v : def;
}

static double arch_f32(const lm_gguf *g, const char *arch, const char *suffix, double def)
{
    char key[160];
    float v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return lm_gguf_get_f32(g, key, &v) == 0 ? (double)v : def;
}

static int get_flag(const lm_gguf *g, const char *key)
{
    bool b;
    return lm_gguf_get_bool(g, key, &b) == 0 ? (int)b : -1;
}

static void summarize_chat(const lm_gguf *g, struct summary *s)
{
    const char *t;
    uint64_t len;
    s->chat = NULL;
    s->chat_prefix[0] = 0;
    if (lm_gguf_get_str(g, "tokenizer.chat_template", &t, &len) != 0) {
        return;
    }
    char *z = malloc(len + 1);
    if (z) {
        memcpy(z, t, len);
        z[len] = 0;
        int id = lm_chat_detect(z);
        s->chat = id >= 0 ? lm_chat_name(id) : NULL;
        free(z);
    }
    size_t n = 0;
    for (uint64_t i = 0; i < len && n + 5 < sizeof s->chat_prefix; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') {
            s->chat_prefix[n++] = '\\';
            c = 'n';
        }
        s->chat_prefix[n++] = c < 32 ? '?' : (char)c;
        s->chat_prefix[n] = 0;
    }
}

static void summarize(const lm_gguf *g, struct summary *s)
{
    const struct lm_gguf_tensor *emb = lm_gguf_find_tensor(g, "token_embd.weight");
    int64_t tok = lm_gguf_find_key(g, "tokenizer.ggml.tokens");
    get_str(g, "general.architecture", s->arch, sizeof s->arch);
    get_str(g, "general.name", s->name, sizeof s->name);
    get_str(g, "tokenizer.ggml.model", s->tok_model, sizeof s->tok_model);
    s->n_layer = arch_u32(g, s->arch, "block_count", -1);
    s->n_embd = arch_u32(g, s->arch, "embedding_length", -1);
    s->n_head = arch_u32(g, s->arch, "attention.head_count", -1);
    s->n_head_kv = arch_u32(g, s->arch, "attention.head_count_kv", s->n_head);
    s->head_dim = s->n_head > 0 && s->n_embd > 0 ? s->n_embd / s->n_head : -1;
    s->n_rot = arch_u32(g, s->arch, "rope.dimension_count", s->head_dim);
    s->n_ff = arch_u32(g, s->arch, "feed_forward_length", -1);
    s->n_ctx = arch_u32(g, s->arch, "context_length", -1);
    s->n_vocab = tok >= 0 ? (int64_t)lm_gguf_kv_arr_n(g, tok)
                          : arch_u32(g, s->arch, "vocab_size", emb ? emb->ne[1] : -1);
    s->rope_theta = arch_f32(g, s->arch, "rope.freq_base", 10000.0);
    s->rms_eps = arch_f32(g, s->arch, "attention.layer_norm_rms_epsilon", (double)NAN);
    s->bos = arch_u32(g, "tokenizer.ggml", "bos_token_id", tok >= 0 ? 1 : -1);
    s->eos = arch_u32(g, "tokenizer.ggml", "eos_token_id", tok >= 0 ? 2 : -1);
    s->unk = arch_u32(g, "tokenizer.ggml", "unknown_token_id", tok >= 0 ? 0 : -1);
    s->add_bos = get_flag(g, "tokenizer.ggml.add_bos_token");
    s->add_eos = get_flag(g, "tokenizer.ggml.add_eos_token");
    summarize_chat(g, s);
}

/* The vocabulary piece of id (escaped for one line), or "" when out of range. */
static void piece(const lm_gguf *g, int64_t id, char *buf, size_t cap)
{
    const char *s;
    uint64_t len;
    buf[0] = 0;
    if (id < 0 || lm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)id, &s, &len) != 0) {
        return;
    }
    snprintf(buf, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
    for (char *p = buf; *p; p++) {
        *p = (unsigned char)*p < 32 ? '?' : *p;
    }
}

/* "512 x 64": numpy's shape, ne reversed. */
static void np_shape(const struct lm_gguf_tensor *t, char *buf, size_t cap, const char *sep)
{
    int n = 0;
    buf[0] = 0;
    for (int d = t->n_dims - 1; d >= 0 && n >= 0 && (size_t)n < cap; d--) {
        n += snprintf(buf + n, cap - (size_t)n, "%s%" PRId64, d == t->n_dims - 1 ? "" : sep,
                      t->ne[d]);
    }
}

/* ---- text -------------------------------------------------------------------------------------
 */

static void print_num(const char *label, int64_t v)
{
    if (v >= 0) {
        printf("  %-12s %" PRId64 "\n", label, v);
    } else {
        printf("  %-12s -\n", label);
    }
}

static void print_hparams(const struct summary *s)
{
    printf("\nhyper-parameters\n");
    print_num("n_layer", s->n_layer);
    print_num("n_embd", s->n_embd);
    print_num("n_head", s->n_head);
    print_num("n_head_kv", s->n_head_kv);
    print_num("head_dim", s->head_dim);
    print_num("n_rot", s->n_rot);
    print_num("n_ff", s->n_ff);
    print_num("n_vocab", s->n_vocab);
    print_num("n_ctx_train", s->n_ctx);
    printf("  %-12s %g\n", "rope theta", s->rope_theta);
    printf("  %-12s %g\n", "rms eps", s->rms_eps);
}

static void print_tokenizer(const lm_gguf *g, const struct summary *s)
{
    static const char *const flag[3] = {"-", "false", "true"};
    char p[3][64];
    piece(g, s->bos, p[0], sizeof p[0]);
    piece(g, s->eos, p[1], sizeof p[1]);
    piece(g, s->unk, p[2], sizeof p[2]);
    printf("\ntokenizer\n  %-12s %s\n", "model", s->tok_model[0] ? s->tok_model : "-");
    print_num("tokens", s->n_vocab);
    printf("  %-12s %" PRId64 " %s\n", "bos", s->bos, p[0]);
    printf("  %-12s %" PRId64 " %s\n", "eos", s->eos, p[1]);
    printf("  %-12s %" PRId64 " %s\n", "unk", s->unk, p[2]);
    printf("  %-12s %s\n", "add_bos", flag[s->add_bos + 1]);
    printf("  %-12s %s\n", "add_eos", flag[s->add_eos + 1]);
    if (s->chat_prefix[0]) {
        printf("  %-12s %s (\"%s...\")\n", "chat", s->chat ? s->chat : "unknown", s->chat_prefix);
    }
}

static int print_metadata(const lm_gguf *g)
{
    static const char *const cols[3] = {"key", "type", "value"};
    vw_table *t = vw_table_create(3, cols);
    char type[32], val[128];
    int rc = t ? 0 : -1;
    for (int64_t i = 0; i < lm_gguf_n_kv(g) && rc == 0; i++) {
        enum lm_gguf_vtype vt = lm_gguf_kv_type(g, i);
        snprintf(type, sizeof type, "%s", vtype_names[vt]);
        if (vt == LM_GGUF_ARRAY) {
            snprintf(type, sizeof type, "%s[%" PRIu64 "]", vtype_names[lm_gguf_kv_arr_type(g, i)],
                     lm_gguf_kv_arr_n(g, i));
        }
        lm_gguf_kv_format(g, i, val, sizeof val);
        rc = vw_table_add_text(t, VW_CELL_TEXT, lm_gguf_kv_key(g, i));
        rc = rc < 0 ? rc : vw_table_add_text(t, VW_CELL_TEXT, type);
        rc = rc < 0 ? rc : vw_table_add_text(t, VW_CELL_TEXT, val);
    }
    printf("\nmetadata: %" PRId64 " keys\n", lm_gguf_n_kv(g));
    rc = rc < 0 ? rc : vw_table_print(t, stdout, &(struct vw_table_opts){.max_width = 72});
    vw_table_destroy(t);
    return rc;
}

static int print_tensors(const lm_gguf *g)
{
    static const char *const cols[4] = {"name", "type", "shape", "bytes"};
    vw_table *t = vw_table_create(4, cols);
    char shape[96];
    uint64_t total = 0;
    int rc = t ? 0 : -1;
    for (int64_t i = 0; i < lm_gguf_n_tensors(g) && rc == 0; i++) {
        const struct lm_gguf_tensor *x = lm_gguf_tensor(g, i);
        np_shape(x, shape, sizeof shape, " x ");
        total += x->n_bytes;
        rc = vw_table_add_text(t, VW_CELL_TEXT, x->name);
        rc = rc < 0 ? rc : vw_table_add_text(t, VW_CELL_TEXT, lm_type_name(x->type));
        rc = rc < 0 ? rc : vw_table_add_text(t, VW_CELL_TEXT, shape);
        rc = rc < 0 ? rc : vw_table_add_i64(t, (int64_t)x->n_bytes);
    }
    printf("\ntensors: %" PRId64 ", %" PRIu64 " bytes\n", lm_gguf_n_tensors(g), total);
    rc = rc < 0 ? rc : vw_table_print(t, stdout, NULL);
    vw_table_destroy(t);
    return rc;
}

static int print_text(const lm_gguf *g)
{
    struct summary s;
    summarize(g, &s);
    printf("file          %s\n", lm_gguf_path(g));
    printf("size          %" PRIu64 " bytes\n", lm_gguf_file_size(g));
    printf("gguf          version %" PRIu32 ", alignment %" PRIu64 ", data at offset %" PRIu64 "\n",
           lm_gguf_version(g), lm_gguf_alignment(g), lm_gguf_data_offset(g));
    printf("architecture  %s\n", s.arch[0] ? s.arch : "-");
    printf("name          %s\n", s.name[0] ? s.name : "-");
    print_hparams(&s);
    print_tokenizer(g, &s);
    if (print_metadata(g) < 0 || print_tensors(g) < 0) {
        return vw_error("%s: out of memory", lm_gguf_path(g));
    }
    return 0;
}

/* ---- JSON -------------------------------------------------------------------------------------
 */

static void json_int(const char *key, int64_t v, bool comma)
{
    printf("\"%s\": ", key);
    if (v >= 0) {
        printf("%" PRId64, v);
    } else {
        printf("null");
    }
    printf(comma ? ", " : "");
}

static void json_hparams(const struct summary *s)
{
    printf("\"hparams\": {");
    json_int("n_layer", s->n_layer, true);
    json_int("n_embd", s->n_embd, true);
    json_int("n_head", s->n_head, true);
    json_int("n_head_kv", s->n_head_kv, true);
    json_int("head_dim", s->head_dim, true);
    json_int("n_rot", s->n_rot, true);
    json_int("n_ff", s->n_ff, true);
    json_int("n_vocab", s->n_vocab, true);
    json_int("n_ctx_train", s->n_ctx, true);
    printf("\"rope_theta\": ");
    vw_json_num(stdout, s->rope_theta);
    printf(", \"rms_eps\": ");
    vw_json_num(stdout, s->rms_eps);
    printf("},\n");
}

static void json_tokenizer(const lm_gguf *g, const struct summary *s)
{
    static const char *const flag[3] = {"null", "false", "true"};
    static const char *const names[3] = {"bos", "eos", "unk"};
    const int64_t ids[3] = {s->bos, s->eos, s->unk};
    char p[64];
    printf("\"tokenizer\": {\"model\": ");
    vw_json_str(stdout, s->tok_model);
    printf(", ");
    json_int("n_tokens", s->n_vocab, true);
    for (int i = 0; i < 3; i++) {
        piece(g, ids[i], p, sizeof p);
        printf("\"%s\": {", names[i]);
        json_int("id", ids[i], true);
        printf("\"piece\": ");
        vw_json_str(stdout, p);
        printf("}, ");
    }
    printf("\"add_bos\": %s, \"add_eos\": %s, \"chat_template\": ", flag[s->add_bos + 1],
           flag[s->add_eos + 1]);
    if (s->chat) {
        vw_json_str(stdout, s->chat);
    } else {
        printf(s->chat_prefix[0] ? "\"unknown\"" : "null");
    }
    printf("},\n");
}

/* One element of a fixed-size type at p as a JSON value. */
static void json_elem(enum lm_gguf_vtype t, const uint8_t *p)
{
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        uint64_t u64;
        int64_t i64;
        double f64;
    } v;
    memcpy(&v, p,
           t == LM_GGUF_U64 || t == LM_GGUF_I64 || t == LM_GGUF_F64   ? 8
           : t == LM_GGUF_U32 || t == LM_GGUF_I32 || t == LM_GGUF_F32 ? 4
           : t == LM_GGUF_U16 || t == LM_GGUF_I16                     ? 2
                                                                      : 1);
    switch (t) {
    case LM_GGUF_U8:
        printf("%u", (unsigned)v.u8);
        break;
    case LM_GGUF_I8:
        printf("%d", (int)v.i8);
        break;
    case LM_GGUF_U16:
        printf("%u", (unsigned)v.u16);
        break;
    case LM_GGUF_I16:
        printf("%d", (int)v.i16);
        break;
    case LM_GGUF_U32:
        printf("%" PRIu32, v.u32);
        break;
    case LM_GGUF_I32:
        printf("%" PRId32, v.i32);
        break;
    case LM_GGUF_F32:
        vw_json_num(stdout, (double)v.f32);
        break;
    case LM_GGUF_BOOL:
        printf(v.u8 ? "true" : "false");
        break;
    case LM_GGUF_U64:
        printf("%" PRIu64, v.u64);
        break;
    case LM_GGUF_I64:
        printf("%" PRId64, v.i64);
        break;
    default:
        vw_json_num(stdout, v.f64);
        break;
    }
}

/* A string of the file (not NUL-terminated) as a JSON string. */
static void json_gguf_str(const char *s, uint64_t len)
{
    char *z = malloc(len + 1);
    if (!z) {
        printf("null");
        return;
    }
    memcpy(z, s, len);
    z[len] = 0;
    vw_json_str(stdout, z);
    free(z);
}

/* Arrays: the elements when flat and at most 64 long, else null. */
static void json_array(const lm_gguf *g, const char *key)
{
    enum lm_gguf_vtype et;
    uint64_t n, len;
    const void *data;
    const char *s;
    if (lm_gguf_get_arr(g, key, &et, &n, &data) == 0 && n <= 64) {
        printf("[");
        for (uint64_t i = 0; i < n; i++) {
            printf(i ? ", " : "");
            uint64_t es = et == LM_GGUF_U64 || et == LM_GGUF_I64 || et == LM_GGUF_F64   ? 8
                          : et == LM_GGUF_U32 || et == LM_GGUF_I32 || et == LM_GGUF_F32 ? 4
                          : et == LM_GGUF_U16 || et == LM_GGUF_I16                      ? 2
                                                                                        : 1;
            json_elem(et, (const uint8_t *)data + i * es);
        }
        printf("]");
    } else if (lm_gguf_get_arr_str(g, key, 0, &s, &len) >= 0 &&
               lm_gguf_kv_arr_n(g, lm_gguf_find_key(g, key)) <= 64) {
        printf("[");
        for (uint64_t i = 0; lm_gguf_get_arr_str(g, key, i, &s, &len) == 0; i++) {
            printf(i ? ", " : "");
            json_gguf_str(s, len);
        }
        printf("]");
    } else {
        printf("null");
    }
}

static void json_value(const lm_gguf *g, int64_t i)
{
    const char *key = lm_gguf_kv_key(g, i), *s;
    enum lm_gguf_vtype vt = lm_gguf_kv_type(g, i);
    uint64_t len;
    uint8_t buf[8];
    if (vt == LM_GGUF_STRING && lm_gguf_get_str(g, key, &s, &len) == 0) {
        json_gguf_str(s, len);
    } else if (vt == LM_GGUF_ARRAY) {
        json_array(g, key);
    } else {
        /* Scalars: an array view is not available, so read through the typed getters where
         * they exist and the formatted text (an exact integer) otherwise. */
        char text[64];
        lm_gguf_kv_format(g, i, text, sizeof text);
        if (vt == LM_GGUF_F32 && lm_gguf_get_f32(g, key, (float *)(void *)buf) == 0) {
            json_elem(vt, buf);
        } else if (vt == LM_GGUF_F64) {
            double d;
            vw_json_num(stdout, vw_parse_f64(text, &d) == 0 ? d : (double)NAN);
        } else {
            printf("%s", text); /* integers and bools print as JSON already */
        }
    }
}

static void json_metadata(const lm_gguf *g)
{
    char val[512];
    printf("\"metadata\": [");
    for (int64_t i = 0; i < lm_gguf_n_kv(g); i++) {
        enum lm_gguf_vtype vt = lm_gguf_kv_type(g, i);
        printf("%s\n  {\"key\": ", i ? "," : "");
        vw_json_str(stdout, lm_gguf_kv_key(g, i));
        printf(", \"type\": \"%s\", ", vtype_names[vt]);
        if (vt == LM_GGUF_ARRAY) {
            printf("\"elem_type\": \"%s\", \"n\": %" PRIu64 ", ",
                   vtype_names[lm_gguf_kv_arr_type(g, i)], lm_gguf_kv_arr_n(g, i));
        }
        printf("\"value\": ");
        json_value(g, i);
        lm_gguf_kv_format(g, i, val, sizeof val);
        printf(", \"text\": ");
        vw_json_str(stdout, val);
        printf("}");
    }
    printf("],\n");
}

static void json_tensors(const lm_gguf *g)
{
    char ne[96], shape[96];
    printf("\"tensors\": [");
    for (int64_t i = 0; i < lm_gguf_n_tensors(g); i++) {
        const struct lm_gguf_tensor *t = lm_gguf_tensor(g, i);
        np_shape(t, shape, sizeof shape, ", ");
        int n = 0;
        for (int d = 0; d < t->n_dims; d++) {
            n += snprintf(ne + n, sizeof ne - (size_t)n, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        }
        printf("%s\n  {\"name\": ", i ? "," : "");
        vw_json_str(stdout, t->name);
        printf(", \"type\": \"%s\", \"ne\": [%s], \"shape\": [%s], \"offset\": %" PRIu64
               ", \"bytes\": %" PRIu64 "}",
               lm_type_name(t->type), ne, shape, t->offset, t->n_bytes);
    }
    printf("]}\n");
}

static int print_json(const lm_gguf *g)
{
    struct summary s;
    summarize(g, &s);
    printf("{\"file\": ");
    vw_json_str(stdout, lm_gguf_path(g));
    printf(", \"size\": %" PRIu64 ", \"version\": %" PRIu32 ", \"alignment\": %" PRIu64
           ", \"data_offset\": %" PRIu64 ", \"architecture\": ",
           lm_gguf_file_size(g), lm_gguf_version(g), lm_gguf_alignment(g), lm_gguf_data_offset(g));
    vw_json_str(stdout, s.arch);
    printf(", \"name\": ");
    vw_json_str(stdout, s.name);
    printf(",\n");
    json_hparams(&s);
    json_tokenizer(g, &s);
    json_metadata(g);
    json_tensors(g);
    return 0;
}

/* ---- export -----------------------------------------------------------------------------------
 */

static int export_tensor(const lm_gguf *g, const char *name, const char *out)
{
    const struct lm_gguf_tensor *t = lm_gguf_find_tensor(g, name);
    char err[512], shape[96];
    int64_t np[4];
    if (!t) {
        return vw_error("%s: no tensor named '%s'", lm_gguf_path(g), name);
    }
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    float *buf = malloc((size_t)n * sizeof *buf);
    if (!buf) {
        return vw_error("%s: out of memory for %" PRId64 " floats", lm_gguf_path(g), n);
    }
    if (lm_dequant_row(t->type, t->data, buf, n) < 0) {
        free(buf);
        return vw_error("%s: cannot dequantize '%s' (%s)", lm_gguf_path(g), name,
                        lm_type_name(t->type));
    }
    for (int d = 0; d < t->n_dims; d++) {
        np[d] = t->ne[t->n_dims - 1 - d];
    }
    int rc = vw_npy_write_f32(out, buf, t->n_dims, np, err, sizeof err);
    free(buf);
    if (rc < 0) {
        return vw_error("%s", err);
    }
    np_shape(t, shape, sizeof shape, ", ");
    printf("wrote %s: '%s' (%s) as float32, shape (%s%s)\n", out, name, lm_type_name(t->type),
           shape, t->n_dims == 1 ? "," : "");
    return 0;
}

int cmd_info(int argc, char **argv)
{
    struct info_args a = {0};
    char err[LM_ERRBUF_SIZE];
    lm_gguf *g = NULL;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    rc = is_gguf(a.model);
    if (rc <= 0) {
        return rc < 0 ? 1 : vw_info_trace(argc, argv); /* not GGUF: a trace (info_trace.c) */
    }
    if (lm_gguf_open(a.model, &g, err, sizeof err) < 0 ||
        (lm_gguf_n_tensors(g) > 0 && lm_gguf_check_llama(g, err, sizeof err) < 0)) {
        lm_gguf_close(g);
        return vw_error("%s", err);
    }
    if (a.tensor) {
        rc = export_tensor(g, a.tensor, a.out);
    } else {
        rc = a.json ? print_json(g) : print_text(g);
    }
    lm_gguf_close(g);
    return rc;
}
