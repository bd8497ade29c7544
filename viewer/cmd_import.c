/*
 * cmd_import.c - `lltrace import`: bring what llama.cpp or a PyTorch/Hugging Face run printed or
 * saved into an lltrace trace, so that diff and explain work across engines.
 *
 * Three forms: a llama.cpp eval-callback text dump, llama-debug --save-logits files, and a
 * directory of NumPy dumps. The parsing and mapping live in import_llamacpp.c / import_npy.c /
 * namemap.c, the writing in import_write.c; this file only handles options, the optional model
 * (hyper-parameters, tokenization of -p, token pieces), and the messages.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "import_int.h"
#include "lm.h"
#include "shacache.h"
#include "vw.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: lltrace import llamacpp DUMP.txt -o TRACE [-m MODEL.gguf] [-p PROMPT | --tokens "
        "IDS] [--force]\n"
        "       lltrace import llamacpp --logits FILE.bin --tokens FILE-tokens.bin\n"
        "                               [--prompt-file FILE-prompt.txt] -o TRACE [--force]\n"
        "       lltrace import npy DIR -o TRACE [--map MAP] [--unpermute-qk --n-head H\n"
        "                               [--n-head-kv HKV]] [--tokens IDS] [--force]\n"
        "\n"
        "Imports what another engine printed or saved into a trace (diff and explain then work\n"
        "across engines).\n"
        "\n"
        "  llamacpp DUMP.txt   stdout of llama-eval-callback, or the log of llama-debug "
        "--verbose\n"
        "                      (common_debug_cb_eval: or ggml_debug: records). Node names map\n"
        "                      to canonical ops through a table (recorded in the trace as run\n"
        "                      parameter name_map); a new decode call starts where the graph\n"
        "                      restarts. Only the printed elements are stored (partial tensors)\n"
        "                      with op params printed_sum and print_atol (4 decimals: 5e-05).\n"
        "                      A dump cut off at the end is imported up to its last complete\n"
        "                      record, with a warning.\n"
        "  llamacpp --logits   llama-debug --save-logits files: full-precision logits of the\n"
        "                      last prompt position -> op 'output', with the prompt tokens.\n"
        "  npy DIR             one .npy per module output (or .npz of them, stored members),\n"
        "                      Hugging Face module names mapped by the built-in Llama map or\n"
        "                      --map; subdirectories step0, step1, ... are decode calls.\n"
        "\n"
        "options:\n"
        "  -o, --output TRACE       the trace to write (an existing file is refused)\n"
        "      --force              overwrite TRACE\n"
        "  -m, --model MODEL.gguf   record the model's hyper-parameters and token pieces\n"
        "  -p, --prompt TEXT        the prompt llama.cpp ran (tokenized with -m's vocabulary)\n"
        "      --tokens IDS|FILE    prompt token ids: \"1,403,407\", a text file of ids, or a raw\n"
        "                           int32 .bin (llama-debug's -tokens.bin)\n"
        "      --logits FILE.bin    raw float32 logits written by llama-debug --save-logits\n"
        "      --prompt-file FILE   llama-debug's -prompt.txt (prompt and token ids)\n"
        "      --map FILE           npy name map: lines 'MODULE CANONICAL [KIND]', {L} = layer,\n"
        "                           '-' as CANONICAL skips; '#' comments\n"
        "      --unpermute-qk       npy: undo the Q/K row permutation convert_hf_to_gguf.py\n"
        "                           applies, so q_proj/k_proj outputs compare with GGUF ones\n"
        "      --n-head H           attention heads (with --unpermute-qk)\n"
        "      --n-head-kv HKV      KV heads (default H)\n"
        "  -q, --quiet              no summary line on stdout\n"
        "  -h, --help               this help\n"
        "\n"
        "exit codes: 0 imported (also with warnings), 1 failure, 2 usage error\n");
}

struct imp_args {
    const char *kind, *source, *out, *model, *prompt, *tokens, *logits, *prompt_file, *map;
    bool force, quiet, unpermute;
    long long n_head, n_head_kv;
};

enum {
    OPT_TOKENS = 256,
    OPT_LOGITS,
    OPT_PROMPT_FILE,
    OPT_FORCE,
    OPT_MAP,
    OPT_UNPERM,
    OPT_NH,
    OPT_NHKV
};

static int parse_args(int argc, char **argv, struct imp_args *a)
{
    static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
                                       {"model", required_argument, NULL, 'm'},
                                       {"prompt", required_argument, NULL, 'p'},
                                       {"tokens", required_argument, NULL, OPT_TOKENS},
                                       {"logits", required_argument, NULL, OPT_LOGITS},
                                       {"prompt-file", required_argument, NULL, OPT_PROMPT_FILE},
                                       {"force", no_argument, NULL, OPT_FORCE},
                                       {"map", required_argument, NULL, OPT_MAP},
                                       {"unpermute-qk", no_argument, NULL, OPT_UNPERM},
                                       {"n-head", required_argument, NULL, OPT_NH},
                                       {"n-head-kv", required_argument, NULL, OPT_NHKV},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    memset(a, 0, sizeof *a);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:m:p:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case 'm':
            a->model = optarg;
            break;
        case 'p':
            a->prompt = optarg;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_TOKENS:
            a->tokens = optarg;
            break;
        case OPT_LOGITS:
            a->logits = optarg;
            break;
        case OPT_PROMPT_FILE:
            a->prompt_file = optarg;
            break;
        case OPT_FORCE:
            a->force = true;
            break;
        case OPT_MAP:
            a->map = optarg;
            break;
        case OPT_UNPERM:
            a->unpermute = true;
            break;
        case OPT_NH:
        case OPT_NHKV:
            if (vw_parse_i64(optarg, 1, 1 << 20, c == OPT_NH ? &a->n_head : &a->n_head_kv) < 0) {
                return vw_usage_error("import", "bad head count '%s'", optarg);
            }
            break;
        default:
            return vw_usage_error("import", "unknown option");
        }
    }
    a->kind = optind < argc ? argv[optind++] : NULL;
    a->source = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
        return vw_usage_error("import", "unexpected argument '%s'", argv[optind]);
    }
    return -1; /* go on */
}

/* Cross-checks the options of each form. Returns -1 when fine, else the exit code (2). */
static int check_args(const struct imp_args *a)
{
    if (!a->kind) {
        return vw_usage_error("import", "missing the source kind: llamacpp or npy");
    }
    bool lc = strcmp(a->kind, "llamacpp") == 0, npy = strcmp(a->kind, "npy") == 0;
    if (!lc && !npy) {
        return vw_usage_error("import", "unknown source kind '%s' (llamacpp or npy)", a->kind);
    }
    if (!a->out) {
        return vw_usage_error("import", "missing -o TRACE");
    }
    if (lc && !a->logits == !a->source) {
        return vw_usage_error("import", "give either DUMP.txt or --logits FILE.bin");
    }
    if (npy && (!a->source || a->logits || a->prompt_file)) {
        return vw_usage_error("import", a->source ? "--logits/--prompt-file are for llamacpp"
                                                  : "missing the npy directory");
    }
    if (a->logits && !a->tokens && !a->prompt_file) {
        return vw_usage_error("import", "--logits needs --tokens or --prompt-file");
    }
    if (a->prompt && (a->tokens || !a->model)) {
        return vw_usage_error("import", a->tokens ? "-p and --tokens exclude each other"
                                                  : "-p needs -m MODEL.gguf to tokenize");
    }
    if (lc && (a->map || a->unpermute)) {
        return vw_usage_error("import", "--map/--unpermute-qk are for npy");
    }
    if (a->unpermute && a->n_head < 1) {
        return vw_usage_error("import", "--unpermute-qk needs --n-head");
    }
    return -1;
}

/* The model's numerics-relevant hyper-parameters as run parameters. */
static int model_params(struct vw_imp *imp, const lm_gguf *g, const char *path, char *err,
                        size_t errlen)
{
    static const char *const u32[][2] = {
        {"block_count", "n_layer"},         {"embedding_length", "n_embd"},
        {"attention.head_count", "n_head"}, {"attention.head_count_kv", "n_head_kv"},
        {"feed_forward_length", "n_ff"},    {"rope.dimension_count", "n_rot"}};
    static const char *const f32[][2] = {{"rope.freq_base", "rope_theta"},
                                         {"attention.layer_norm_rms_epsilon", "rms_eps"}};
    const char *arch;
    uint64_t alen;
    char key[128], hex[65];
    if (lm_gguf_get_str(g, "general.architecture", &arch, &alen) < 0 || alen != 5 ||
        memcmp(arch, "llama", 5) != 0) {
        snprintf(err, errlen, "%s: not a llama-architecture model (the name map knows llama only)",
                 path);
        return -1;
    }
    int rc = vw_imp_set_str(imp, "arch", "llama") | vw_imp_set_str(imp, "model_path", path);
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++) {
        uint32_t v;
        snprintf(key, sizeof key, "llama.%s", u32[i][0]);
        rc |= lm_gguf_get_u32(g, key, &v) == 0 ? vw_imp_set_i64(imp, u32[i][1], v) : 0;
    }
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) {
        float v;
        snprintf(key, sizeof key, "llama.%s", f32[i][0]);
        rc |= lm_gguf_get_f32(g, key, &v) == 0 ? vw_imp_set_f64(imp, f32[i][1], (double)v) : 0;
    }
    vw_gguf_sha256(g, hex);
    rc |= vw_imp_set_str(imp, "model_sha256", hex);
    if (rc) {
        snprintf(err, errlen, "%s: out of memory", path);
    }
    return rc ? -1 : 0;
}

/* Tokenizes -p as llama-eval-callback does (add_special = the vocabulary's add_bos). */
static int tokenize(const lm_tok *t, const char *prompt, int32_t **ids, int64_t *n, char *err,
                    size_t errlen)
{
    size_t len = strlen(prompt);
    int64_t cap = (int64_t)len + 8;
    *ids = malloc((size_t)cap * sizeof **ids);
    if (!*ids || lm_tok_encode(t, prompt, len, true, false, *ids, cap, n) < 0) {
        snprintf(err, errlen, "-p: cannot tokenize the prompt");
        free(*ids);
        *ids = NULL;
        return -1;
    }
    return 0;
}

static void token_pieces(struct vw_imp *imp, const lm_tok *t)
{
    for (int64_t i = 0; i < imp->n_tokens; i++) {
        struct vw_imp_token *k = &imp->tokens[i];
        int64_t n = lm_tok_piece(t, k->id, true, k->piece, sizeof k->piece);
        if (n < 0 || n >= (int64_t)sizeof k->piece) {
            k->piece[0] = '\0';
        }
        k->is_bos = i == 0 && k->id == lm_tok_bos(t);
    }
}

struct model_ctx {
    lm_gguf *g;
    lm_tok *t;
};

static int open_model(const char *path, struct model_ctx *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (!path) {
        return 0;
    }
    if (lm_gguf_open(path, &m->g, err, errlen) < 0 || lm_tok_create(m->g, &m->t, err, errlen) < 0) {
        return -1;
    }
    return 0;
}

static void close_model(struct model_ctx *m)
{
    lm_tok_destroy(m->t);
    lm_gguf_close(m->g);
}

/* Reads the token arguments of any form into ids (may stay NULL). */
static int read_tokens(const struct imp_args *a, const struct model_ctx *m, int32_t **ids,
                       int64_t *n, char **prompt, char *err, size_t errlen)
{
    *ids = NULL;
    *n = 0;
    *prompt = NULL;
    if (a->prompt_file) {
        if (vw_prompt_file_read(a->prompt_file, prompt, ids, n, err, errlen) < 0) {
            return -1;
        }
        if (!a->tokens) {
            return 0;
        }
        int32_t *t2;
        int64_t n2;
        int rc = vw_tokens_read(a->tokens, &t2, &n2, err, errlen);
        if (rc == 0 && (n2 != *n || memcmp(t2, *ids, (size_t)n2 * sizeof *t2) != 0)) {
            snprintf(err, errlen, "%s: token ids differ from those in %s", a->tokens,
                     a->prompt_file);
            rc = -1;
        }
        free(t2);
        return rc;
    }
    if (a->tokens) {
        return vw_tokens_read(a->tokens, ids, n, err, errlen);
    }
    if (a->prompt) {
        return tokenize(m->t, a->prompt, ids, n, err, errlen);
    }
    return 0;
}

static int run_import(const struct imp_args *a, const struct model_ctx *m, struct vw_imp *imp,
                      char *err, size_t errlen)
{
    int32_t *ids;
    int64_t n;
    char *prompt;
    int rc = read_tokens(a, m, &ids, &n, &prompt, err, errlen);
    if (rc == 0 && a->logits) {
        vw_imp_init(imp, "llama.cpp-logits");
        rc = vw_import_llamacpp_logits(a->logits, ids, n, prompt ? prompt : a->prompt, imp, err,
                                       errlen);
    } else if (rc == 0 && strcmp(a->kind, "llamacpp") == 0) {
        struct vw_lc_opts o = {ids, n};
        vw_imp_init(imp, "llama.cpp-text");
        rc = vw_import_llamacpp_text(a->source, &o, imp, err, errlen);
        rc = rc == 0 && a->prompt ? vw_imp_set_str(imp, "prompt", a->prompt) : rc;
    } else if (rc == 0) {
        struct vw_npy_opts o = {a->map,
                                a->unpermute,
                                (int)a->n_head,
                                (int)(a->n_head_kv ? a->n_head_kv : a->n_head),
                                ids,
                                n};
        vw_imp_init(imp, "npy");
        rc = vw_import_npy_dir(a->source, &o, imp, err, errlen);
    } else {
        vw_imp_init(imp, "none");
    }
    if (rc == 0 && m->g) {
        rc = model_params(imp, m->g, a->model, err, errlen);
        token_pieces(imp, m->t);
    }
    free(ids);
    free(prompt);
    return rc;
}

static void print_warnings(const struct vw_imp *imp)
{
    const char *p = imp->warnings;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        vw_warn("%.*s", len, p);
        p = nl ? nl + 1 : p + len;
    }
}

static void summary(const struct imp_args *a, const struct vw_imp *imp, double secs)
{
    const struct vw_imp_kv *bytes = vw_imp_get(imp, "input_bytes");
    printf("imported %s -> %s: %lld steps, %lld ops (%lld partial), %lld skipped (views/aliases), "
           "%lld unmatched, %lld without printed rows",
           a->source ? a->source : a->logits, a->out, (long long)imp->n_steps,
           (long long)imp->n_ops, (long long)imp->n_partial, (long long)imp->n_skipped,
           (long long)imp->n_unmatched, (long long)(imp->n_empty + imp->n_nodata));
    if (bytes && secs > 0) {
        printf("; %.2f MB of text parsed at %.1f MB/s", (double)bytes->i / 1e6,
               (double)bytes->i / 1e6 / secs);
    }
    printf("\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmd_import(int argc, char **argv)
{
    struct imp_args a;
    int rc = parse_args(argc, argv, &a);
    rc = rc < 0 ? check_args(&a) : rc;
    if (rc >= 0) {
        return rc;
    }
    char err[VW_IMP_ERR_MAX] = "";
    struct model_ctx m;
    struct vw_imp imp;
    vw_imp_init(&imp, "none");
    if (open_model(a.model, &m, err, sizeof err) < 0) {
        close_model(&m);
        return vw_error("%s", err);
    }
    double t0 = now_s();
    rc = run_import(&a, &m, &imp, err, sizeof err);
    double t1 = now_s();
    if (rc == 0) {
        print_warnings(&imp);
        rc = vw_imp_write(&imp, a.out, a.force, err, sizeof err);
    }
    if (rc == 0 && !a.quiet) {
        summary(&a, &imp, t1 - t0);
    }
    vw_imp_release(&imp);
    close_model(&m);
    return rc == 0 ? 0 : vw_error("%s", err);
}
