/*
 * import_npy.c - imports NumPy dumps of a PyTorch / Hugging Face forward pass: a directory of
 * .npy files (one per module output, named after the module, as the forward hook in
 * examples/pytorch-hook/hook_dump.py saves them) or .npz archives of such arrays.
 *
 * Module names map to canonical ops through a small text map ("MODULE CANONICAL [KIND]" lines,
 * {L} = layer number, "-" = known but not recorded). The default map for Hugging Face's
 * LlamaForCausalLM is compiled in below; --map FILE replaces it. Arrays are [batch=1][seq][dim]
 * (or [seq][dim]): rows are positions. Subdirectories step0, step1, ... hold successive decode
 * calls; otherwise the directory is step 0.
 *
 * .npz files are zip archives: only STORED members (np.savez) are read. Compressed members
 * (np.savez_compressed, deflate) are refused with a clear message: zlib is not a dependency.
 * Values are full float32 tensors (no partial data), so ops are complete.
 */
#include "import_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"

/* The built-in map: Hugging Face LlamaForCausalLM modules -> canonical ops, in execution order.
 * "X.input" names the input of module X (what the hook saves with SAVE_INPUTS). */
static const char default_map[] =
    "# Hugging Face LlamaForCausalLM module      canonical op        kind\n"
    "model.embed_tokens                          tok_embd            get_rows\n"
    "model.layers.{L}.input_layernorm            blk.{L}.attn_norm   rms_norm\n"
    "model.layers.{L}.self_attn.q_proj           blk.{L}.attn_q      matmul\n"
    "model.layers.{L}.self_attn.k_proj           blk.{L}.attn_k      matmul\n"
    "model.layers.{L}.self_attn.v_proj           blk.{L}.attn_v      matmul\n"
    "model.layers.{L}.self_attn.o_proj.input     blk.{L}.kqv         attn_ctx\n"
    "model.layers.{L}.self_attn.o_proj           blk.{L}.attn_out    matmul\n"
    "model.layers.{L}.self_attn                  -\n"
    "model.layers.{L}.post_attention_layernorm   blk.{L}.ffn_norm    rms_norm\n"
    "model.layers.{L}.mlp.gate_proj              blk.{L}.ffn_gate    matmul\n"
    "model.layers.{L}.mlp.up_proj                blk.{L}.ffn_up      matmul\n"
    "# act_fn is silu(gate) alone; ffn_act = silu(gate) * up is the input of down_proj\n"
    "model.layers.{L}.mlp.act_fn                 -\n"
    "model.layers.{L}.mlp.down_proj.input        blk.{L}.ffn_act     swiglu\n"
    "model.layers.{L}.mlp.down_proj              blk.{L}.ffn_out     matmul\n"
    "model.layers.{L}.mlp                        -\n"
    "model.layers.{L}                            blk.{L}.l_out       add\n"
    "model.rotary_emb                            -\n"
    "model.norm                                  output_norm         rms_norm\n"
    "lm_head                                     output              matmul\n";

const char *vw_hf_default_map(void)
{
    return default_map;
}

struct hf_row {
    char pattern[128];
    char canonical[64]; /* "" = not recorded */
    char kind[24];
};

struct hf_map {
    struct hf_row *rows;
    int n, cap;
};

/* Parses map text; name is used in messages ("<name>:<line>: <reason>"). */
static int map_parse(const char *text, const char *name, struct hf_map *m, char *err, size_t errlen)
{
    int line = 0;
    memset(m, 0, sizeof *m);
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char buf[512], a[200], b[200], c[200];
        line++;
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
        p += len + (eol ? 1 : 0);
        char *hash = strchr(buf, '#');
        if (hash) {
            *hash = '\0';
        }
        c[0] = '\0';
        int k = sscanf(buf, "%199s %199s %199s", a, b, c);
        if (k <= 0) {
            continue;
        }
        if (k < 2 || strlen(a) >= sizeof m->rows[0].pattern || strlen(b) >= 64 || strlen(c) >= 24) {
            snprintf(err, errlen, "%s:%d: expected 'MODULE CANONICAL [KIND]'", name, line);
            free(m->rows);
            return -1;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 32;
            struct hf_row *r = realloc(m->rows, (size_t)m->cap * sizeof *r);
            if (!r) {
                snprintf(err, errlen, "%s: out of memory", name);
                free(m->rows);
                return -1;
            }
            m->rows = r;
        }
        struct hf_row *r = &m->rows[m->n++];
        if (strcmp(b, "-") == 0) {
            b[0] = '\0';
        }
        memcpy(r->pattern, a, strlen(a) + 1); /* lengths checked above */
        memcpy(r->canonical, b, strlen(b) + 1);
        memcpy(r->kind, c[0] ? c : "op", strlen(c[0] ? c : "op") + 1);
    }
    if (m->n == 0) {
        snprintf(err, errlen, "%s: the map has no rows", name);
        return -1;
    }
    return 0;
}

/* The first row whose pattern matches module exactly; *layer gets {L} or -1. */
static int map_find(const struct hf_map *m, const char *module, int *layer)
{
    for (int i = 0; i < m->n; i++) {
        if (vw_lcmap_pattern_match(m->rows[i].pattern, module, layer)) {
            return i;
        }
    }
    return -1;
}

int vw_unpermute_qk_row(const float *in, float *out, int64_t dim, int n_heads)
{
    if (n_heads < 1 || dim % n_heads != 0 || (dim / n_heads) % 2 != 0) {
        return -1;
    }
    int64_t hd = dim / n_heads, half = hd / 2;
    /* convert_hf_to_gguf.py permute(): GGUF row h*hd + 2*i + j is HF row h*hd + j*hd/2 + i */
    for (int64_t h = 0; h < n_heads; h++) {
        for (int64_t i = 0; i < half; i++) {
            for (int64_t j = 0; j < 2; j++) {
                out[h * hd + 2 * i + j] = in[h * hd + j * half + i];
            }
        }
    }
    return 0;
}

/* ---- .npz (zip) --------------------------------------------------------------------------------
 */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return ~c;
}

/* Sizes and offset of a central-directory entry, with the zip64 extra field when present
 * (numpy writes members with force_zip64). Returns 0 or -1. */
static int cd_sizes(const unsigned char *e, const unsigned char *end, uint64_t *csize,
                    uint64_t *usize, uint64_t *off)
{
    uint16_t nlen = rd16(e + 28), xlen = rd16(e + 30);
    *csize = rd32(e + 20);
    *usize = rd32(e + 24);
    *off = rd32(e + 42);
    const unsigned char *x = e + 46 + nlen, *xe = x + xlen;
    if (xe > end) {
        return -1;
    }
    while (x + 4 <= xe) {
        uint16_t id = rd16(x), sz = rd16(x + 2);
        const unsigned char *q = x + 4;
        if (id == 1) {
            uint64_t *f[3] = {usize, csize, off};
            uint64_t v[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
            for (int k = 0; k < 3; k++) {
                if (*f[k] == v[k] && q + 8 <= x + 4 + sz) {
                    *f[k] = rd64(q);
                    q += 8;
                }
            }
        }
        x += 4 + sz;
    }
    return 0;
}

/* One member: checks the local header and the CRC, then hands the bytes to fn. */
static int npz_member(const unsigned char *b, size_t len, const unsigned char *e, const char *path,
                      vw_npz_member_fn fn, void *user, char *err, size_t errlen)
{
    uint64_t csize, usize, off;
    uint16_t method = rd16(e + 10), nlen = rd16(e + 28);
    char name[256];
    snprintf(name, sizeof name, "%.*s", nlen < 255 ? nlen : 255, (const char *)(e + 46));
    if (cd_sizes(e, b + len, &csize, &usize, &off) < 0 || off + 30 > len ||
        rd32(b + off) != 0x04034b50u) {
        snprintf(err, errlen, "%s: member '%s': bad zip header", path, name);
        return -1;
    }
    if (method != 0) {
        snprintf(err, errlen,
                 "%s: member '%s' is compressed (np.savez_compressed); only stored "
                 "members (np.savez) are supported: re-save with np.savez or as .npy",
                 path, name);
        return -1;
    }
    uint64_t data = off + 30 + rd16(b + off + 26) + rd16(b + off + 28);
    if (csize != usize || data > len || csize > len - data) {
        snprintf(err, errlen, "%s: member '%s' extends past the end of the file", path, name);
        return -1;
    }
    if (crc32_of(b + data, (size_t)csize) != rd32(e + 16)) {
        snprintf(err, errlen, "%s: member '%s': CRC mismatch (corrupt file)", path, name);
        return -1;
    }
    return fn(name, b + data, (size_t)csize, user);
}

int vw_npz_walk(const void *buf, size_t len, const char *path, vw_npz_member_fn fn, void *user,
                char *err, size_t errlen)
{
    const unsigned char *b = buf;
    const unsigned char *eocd = NULL;
    for (size_t k = len >= 22 ? len - 22 : 0; len >= 22 && k + 65557 >= len; k--) {
        if (rd32(b + k) == 0x06054b50u) {
            eocd = b + k;
            break;
        }
        if (k == 0) {
            break;
        }
    }
    if (!eocd) {
        snprintf(err, errlen, "%s: not a .npz (zip) file", path);
        return -1;
    }
    uint64_t n = rd16(eocd + 10), cd = rd32(eocd + 16);
    const unsigned char *e = b + (cd <= len ? cd : len);
    for (uint64_t i = 0; i < n; i++) {
        if (e + 46 > b + len || rd32(e) != 0x02014b50u ||
            e + 46 + rd16(e + 28) + rd16(e + 30) + rd16(e + 32) > b + len) {
            snprintf(err, errlen, "%s: corrupt zip central directory", path);
            return -1;
        }
        int rc = npz_member(b, len, e, path, fn, user, err, errlen);
        if (rc != 0) {
            return rc;
        }
        e += 46 + rd16(e + 28) + rd16(e + 30) + rd16(e + 32);
    }
    return 0;
}

/* ---- directory walk and mapping
 * ------------------------------------------------------------------- */

struct npy_ctx {
    const struct hf_map *map;
    const struct vw_npy_opts *opts;
    struct vw_imp *imp;
    int64_t step;
    int64_t first_op; /* the step's first op */
    char *err;
    size_t errlen;
    const char *where; /* file being read, for messages */
};

/* [batch=1][seq][dim] or [seq][dim] or [dim] -> rows x cols. */
static int rows_cols(const int64_t *shape, int n_dims, int64_t *rows, int64_t *cols)
{
    if (n_dims == 3 && shape[0] != 1) {
        return -1;
    }
    if (n_dims < 1 || n_dims > 3) {
        return -1;
    }
    *cols = shape[n_dims - 1];
    *rows = n_dims >= 2 ? shape[n_dims - 2] : 1;
    return 0;
}

static int unpermute(struct npy_ctx *c, const char *canon, float *data, int64_t rows, int64_t cols)
{
    const char *dot = strrchr(canon, '.');
    bool q = dot && strcmp(dot, ".attn_q") == 0, k = dot && strcmp(dot, ".attn_k") == 0;
    if (!c->opts->unpermute_qk || (!q && !k)) {
        return 0;
    }
    int heads = q ? c->opts->n_head : c->opts->n_head_kv;
    float *tmp = malloc((size_t)cols * sizeof *tmp);
    int rc = tmp ? 0 : -1;
    for (int64_t r = 0; r < rows && rc == 0; r++) {
        rc = vw_unpermute_qk_row(data + r * cols, tmp, cols, heads);
        if (rc == 0) {
            memcpy(data + r * cols, tmp, (size_t)cols * sizeof *tmp);
        }
    }
    free(tmp);
    if (rc) {
        snprintf(c->err, c->errlen,
                 "%s: --unpermute-qk: %lld values do not split into %d heads of "
                 "even size",
                 c->where, (long long)cols, heads);
    }
    return rc;
}

/* Maps one array (ownership of data passes here). */
static int add_array(struct npy_ctx *c, const char *module, float *data, int n_dims,
                     const int64_t shape[4])
{
    int layer;
    int ri = map_find(c->map, module, &layer);
    c->imp->n_records++;
    if (ri < 0 || !c->map->rows[ri].canonical[0]) {
        *(ri < 0 ? &c->imp->n_unmatched : &c->imp->n_skipped) += 1;
        free(data);
        return ri < 0 ? vw_imp_note_unmatched(c->imp, module) : 0;
    }
    const struct hf_row *row = &c->map->rows[ri];
    int64_t rows, cols;
    char name[64];
    if (rows_cols(shape, n_dims, &rows, &cols) < 0 ||
        vw_lcmap_expand(row->canonical, layer, name, sizeof name) < 0) {
        snprintf(c->err, c->errlen, "%s: shape must be [1][seq][dim] or [seq][dim] (batch 1)",
                 c->where);
        free(data);
        return -1;
    }
    if (unpermute(c, name, data, rows, cols) < 0) {
        free(data);
        return -1;
    }
    struct vw_imp_op *op = vw_imp_add_op(c->imp);
    char params[160];
    snprintf(params, sizeof params, "{\"hf_module\":\"%.100s\",\"map_row\":%d%s}", module, ri,
             c->opts->unpermute_qk && strstr(name, ".attn_") &&
                     (strstr(name, "_q") || strstr(name, "_k"))
                 ? ",\"unpermuted_qk\":true"
                 : "");
    if (!op || !(op->params = strdup(params))) {
        free(data);
        snprintf(c->err, c->errlen, "%s: out of memory", c->where);
        return -1;
    }
    snprintf(op->name, sizeof op->name, "%s", name);
    snprintf(op->kind, sizeof op->kind, "%s", row->kind);
    op->layer = strstr(row->pattern, "{L}") ? layer : -1;
    op->step = c->step;
    op->n_pos = rows;
    op->n_dims = 2;
    op->shape[0] = rows;
    op->shape[1] = cols;
    op->n_known = rows * cols;
    op->vals = data;
    op->pos0 = ri; /* the map row, for ordering; positions are set per step later */
    return 0;
}

static int member_cb(const char *name, const void *data, size_t len, void *user)
{
    struct npy_ctx *c = user;
    float *v;
    int nd;
    int64_t shape[4];
    size_t n = strlen(name);
    char module[256], where[600];
    if (n < 5 || strcmp(name + n - 4, ".npy") != 0) {
        return 0;
    }
    snprintf(module, sizeof module, "%.*s", (int)(n - 4), name);
    snprintf(where, sizeof where, "%s[%s]", c->where, name);
    if (vw_npy_parse_f32(data, len, where, &v, &nd, shape, c->err, c->errlen) < 0) {
        return -1;
    }
    return add_array(c, module, v, nd, shape);
}

static int read_file(struct npy_ctx *c, const char *path, const char *fname)
{
    size_t n = strlen(fname);
    c->where = path;
    if (n > 4 && strcmp(fname + n - 4, ".npy") == 0) {
        float *v;
        int nd;
        int64_t shape[4];
        char module[256];
        snprintf(module, sizeof module, "%.*s", (int)(n - 4), fname);
        if (vw_npy_read_f32(path, &v, &nd, shape, c->err, c->errlen) < 0) {
            return -1;
        }
        return add_array(c, module, v, nd, shape);
    }
    char *buf;
    size_t len;
    if (vw_file_slurp(path, &buf, &len, c->err, c->errlen) < 0) {
        return -1;
    }
    int rc = vw_npz_walk(buf, len, path, member_cb, c, c->err, c->errlen);
    free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's entries that satisfy keep (malloc'd array of malloc'd strings). */
static int list_dir(const char *dir, bool (*keep)(const char *, const char *), char ***out,
                    int *n_out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    int n = 0, cap = 0;
    if (!d) {
        snprintf(err, errlen, "%s: cannot open directory", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!keep(dir, e->d_name)) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                break;
            }
            v = nv;
        }
        v[n] = strdup(e->d_name);
        n += v[n] != NULL;
    }
    closedir(d);
    if (n > 1) {
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    }
    *out = v;
    *n_out = n;
    return 0;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static bool is_array_file(const char *dir, const char *name)
{
    size_t n = strlen(name);
    (void)dir;
    return n > 4 && (strcmp(name + n - 4, ".npy") == 0 || strcmp(name + n - 4, ".npz") == 0);
}

/* The k of "step<k>", or -1. */
static long step_number(const char *name)
{
    char *end;
    if (strncmp(name, "step", 4) != 0 || name[4] < '0' || name[4] > '9') {
        return -1;
    }
    long k = strtol(name + 4, &end, 10);
    return *end == '\0' && k < 1000000 ? k : -1;
}

static bool is_step_dir(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return step_number(name) >= 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_step(const void *a, const void *b)
{
    long x = step_number(*(char *const *)a), y = step_number(*(char *const *)b);
    return (x > y) - (x < y);
}

/* Execution order: pos0 holds (phase << 32) | map row (order_step), then the layer decides. */
static int cmp_key(const void *a, const void *b)
{
    const struct vw_imp_op *x = a, *y = b;
    int64_t px = x->pos0 >> 32, py = y->pos0 >> 32;
    int64_t rx = x->pos0 & 0xffffffff, ry = y->pos0 & 0xffffffff;
    if (px != py) {
        return (px > py) - (px < py);
    }
    if (x->layer != y->layer) {
        return (x->layer > y->layer) - (x->layer < y->layer);
    }
    return (rx > ry) - (rx < ry);
}

/* Puts a step's ops in execution order (before the layers, layer by layer in map order, after
 * the layers) and gives them positions; the step's rows are those of its first op. */
static int order_step(struct npy_ctx *c, int64_t *pos0)
{
    struct vw_imp *imp = c->imp;
    int64_t n = imp->n_ops - c->first_op;
    struct vw_imp_op *ops = n > 0 ? imp->ops + c->first_op : NULL;
    int first_l = c->map->n;
    for (int i = 0; i < c->map->n; i++) {
        if (strstr(c->map->rows[i].pattern, "{L}")) {
            first_l = i;
            break;
        }
    }
    for (int64_t k = 0; k < n; k++) {
        int64_t row = ops[k].pos0; /* the map row, 0 <= row < map->n */
        int64_t phase = ops[k].layer >= 0 ? 1 : (row < first_l ? 0 : 2);
        ops[k].pos0 = (phase << 32) | row;
    }
    if (n > 1) {
        qsort(ops, (size_t)n, sizeof *ops, cmp_key);
    }
    int64_t n_tok = n ? ops[0].n_pos : 0;
    for (int64_t k = 0; k < n; k++) {
        ops[k].pos0 = ops[k].n_pos < n_tok ? *pos0 + n_tok - ops[k].n_pos : *pos0;
    }
    int rc = vw_imp_add_step(imp, c->step, *pos0, n_tok);
    *pos0 += n_tok;
    return rc;
}

static int read_step(struct npy_ctx *c, const char *dir, int64_t *pos0)
{
    char **names;
    int n;
    char path[4096];
    if (list_dir(dir, is_array_file, &names, &n, c->err, c->errlen) < 0) {
        return -1;
    }
    c->first_op = c->imp->n_ops;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int k = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (k < 0 || (size_t)k >= sizeof path) {
            snprintf(c->err, c->errlen, "%s: path too long", dir);
            rc = -1;
            break;
        }
        rc = read_file(c, path, names[i]);
    }
    free_list(names, n);
    if (rc == 0 && order_step(c, pos0) < 0) {
        snprintf(c->err, c->errlen, "%s: out of memory", dir);
        rc = -1;
    }
    return rc;
}

static int npy_tokens(const char *dir, const struct vw_npy_opts *o, struct vw_imp *imp, char *err,
                      size_t errlen)
{
    char path[4096];
    struct stat st;
    int32_t *ids = NULL;
    int64_t n = 0;
    snprintf(path, sizeof path, "%s/input_ids.txt", dir);
    if (!o->tokens && stat(path, &st) == 0 && vw_tokens_read(path, &ids, &n, err, errlen) < 0) {
        return -1;
    }
    const int32_t *t = o->tokens ? o->tokens : ids;
    n = o->tokens ? o->n_tokens : n;
    int rc = 0;
    for (int64_t k = 0; k < n && rc == 0; k++) {
        rc = vw_imp_add_token(imp, t[k], true);
    }
    rc = rc ? rc
            : vw_imp_set_i64(imp, "n_prompt", n ? n : (imp->n_steps ? imp->steps[0].n_tokens : 0));
    free(ids);
    if (rc) {
        snprintf(err, errlen, "%s: out of memory", dir);
    }
    return rc;
}

static int load_map(const struct vw_npy_opts *o, struct hf_map *m, char *err, size_t errlen)
{
    if (!o->map_path) {
        return map_parse(default_map, "built-in map", m, err, errlen);
    }
    char *text;
    size_t len;
    if (vw_file_slurp(o->map_path, &text, &len, err, errlen) < 0) {
        return -1;
    }
    int rc = memchr(text, 0, len) ? -1 : map_parse(text, o->map_path, m, err, errlen);
    if (rc < 0 && memchr(text, 0, len)) {
        snprintf(err, errlen, "%s: binary data, not a name map", o->map_path);
    }
    free(text);
    return rc;
}

int vw_import_npy_dir(const char *dir, const struct vw_npy_opts *opts, struct vw_imp *imp,
                      char *err, size_t errlen)
{
    struct hf_map m;
    char **steps = NULL;
    int n_steps = 0;
    int64_t pos0 = 0;
    if (load_map(opts, &m, err, errlen) < 0) {
        return -1;
    }
    struct npy_ctx c = {&m, opts, imp, 0, 0, err, errlen, dir};
    int rc = list_dir(dir, is_step_dir, &steps, &n_steps, err, errlen);
    if (rc == 0 && n_steps > 1) {
        qsort(steps, (size_t)n_steps, sizeof *steps, cmp_step);
    }
    for (int s = 0; rc == 0 && s < (n_steps ? n_steps : 1); s++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, n_steps ? steps[s] : "");
        c.step = s;
        rc = read_step(&c, n_steps ? sub : dir, &pos0);
    }
    free_list(steps, n_steps);
    free(m.rows);
    if (rc == 0 && imp->n_ops == 0) {
        snprintf(err, errlen, "%s: no .npy/.npz array matches the name map%s%.200s", dir,
                 imp->unmatched ? "; found: " : " (no arrays found)",
                 imp->unmatched ? imp->unmatched : "");
        return -1;
    }
    rc = rc ? rc : npy_tokens(dir, opts, imp, err, errlen);
    rc = rc ? rc : vw_imp_set_str(imp, "input_path", dir);
    rc = rc ? rc : vw_imp_set_str(imp, "name_map", opts->map_path ? opts->map_path : "built-in");
    rc = rc ? rc : vw_imp_set_i64(imp, "unpermuted_qk", opts->unpermute_qk);
    if (rc == 0 && imp->n_unmatched > 0) {
        rc = vw_imp_warn(imp, "%s: %lld arrays match no map row and were not imported: %.200s", dir,
                         (long long)imp->n_unmatched, imp->unmatched);
    }
    return rc ? -1 : 0;
}
