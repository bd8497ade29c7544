/*
 * lltrace run: generate text with the engine, streaming it to stdout like llama-cli, and
 * optionally record every op into a trace (-o). Prompt tokens are decoded in one step (step 0),
 * then one token per step. Timing goes to stderr at the end.
 */
#include "cmds.h"
#include "run_int.h"
#include "vw.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: lltrace run -m MODEL.gguf -p PROMPT [options]\n"
    "\n"
    "Generates text and streams it to stdout; timing goes to stderr.\n"
    "\n"
    "  -m, --model FILE        GGUF model (llama architecture)\n"
    "  -p, --prompt TEXT       prompt (special tokens like <s> are parsed)\n"
    "  -f, --prompt-file FILE  read the prompt from a file\n"
    "  -n, --n-predict N       tokens to generate (default 32); stops early at EOS\n"
    "      --chat              wrap the prompt in the model's chat template\n"
    "      --system TEXT       system message for --chat\n"
    "      --chat-template NAME  zephyr, llama2 or chatml (default: detected)\n"
    "      --verbose-prompt    print the rendered prompt and its tokens to stderr\n"
    "      --temp T            temperature; 0 = greedy (default 0)\n"
    "      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n"
    "      --top-p P           nucleus sampling threshold (default 0.95; 1 = off)\n"
    "      --seed S            sampler seed (default 42)\n"
    "  -t, --threads N         threads (default 2)\n"
    "  -c, --ctx N             context size (default: the model's, at most 4096)\n"
    "      --kv-type f32|f16   KV cache type (default f32; llama.cpp's default is f16)\n"
    "      --no-bos            do not add BOS (same as --inject bos=none)\n"
    "      --ids               print token ids instead of text\n"
    "  -o, --output TRACE      record every op into TRACE (SQLite)\n"
    "      --record LEVEL[:PATTERN]  none|stats|full, PATTERN a glob over op names or a step\n"
    "                          condition (full:blk.0.*, stats, none:step>8); later ones win;\n"
    "                          default full for everything\n"
    "      --inject FAULT      reproduce a known bug: rope=neox|norm, rope-theta=X,\n"
    "                          pos-offset=N, bos=none|double, rms-eps=X, gqa=tile, kv=f16,\n"
    "                          softmax=f16, qk-permute (repeatable)\n"
    "      --force             overwrite an existing trace\n"
    "\n"
    "A trace records the model's SHA-256. It is remembered, per file as it is on disk, in\n"
    "$LLTRACE_CACHE_DIR/sha256 (default $XDG_CACHE_HOME/lltrace, else ~/.cache/lltrace;\n"
    "LLTRACE_CACHE_DIR= turns it off), so that only the first traced run of a model hashes it.\n";

enum {
    OPT_CHAT = 256,
    OPT_SYSTEM,
    OPT_TMPL,
    OPT_VERBOSE_PROMPT,
    OPT_TEMP,
    OPT_TOPK,
    OPT_TOPP,
    OPT_SEED,
    OPT_KV,
    OPT_NOBOS,
    OPT_IDS,
    OPT_RECORD,
    OPT_INJECT,
    OPT_FORCE,
    OPT_HELP
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"prompt", required_argument, NULL, 'p'},
    {"prompt-file", required_argument, NULL, 'f'},
    {"n-predict", required_argument, NULL, 'n'},
    {"chat", no_argument, NULL, OPT_CHAT},
    {"system", required_argument, NULL, OPT_SYSTEM},
    {"chat-template", required_argument, NULL, OPT_TMPL},
    {"verbose-prompt", no_argument, NULL, OPT_VERBOSE_PROMPT},
    {"temp", required_argument, NULL, OPT_TEMP},
    {"top-k", required_argument, NULL, OPT_TOPK},
    {"top-p", required_argument, NULL, OPT_TOPP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, 't'},
    {"ctx", required_argument, NULL, 'c'},
    {"kv-type", required_argument, NULL, OPT_KV},
    {"no-bos", no_argument, NULL, OPT_NOBOS},
    {"ids", no_argument, NULL, OPT_IDS},
    {"output", required_argument, NULL, 'o'},
    {"record", required_argument, NULL, OPT_RECORD},
    {"inject", required_argument, NULL, OPT_INJECT},
    {"force", no_argument, NULL, OPT_FORCE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_args(int argc, char **argv, struct vw_run_opts *o)
{
    long long v;
    double d;
    char err[LM_ERRBUF_SIZE];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:f:n:t:c:o:", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'p':
            o->prompt = optarg;
            break;
        case 'f':
            o->prompt_file = optarg;
            break;
        case 'n':
            if (vw_parse_i64(optarg, 0, 1 << 30, &v)) {
                return vw_usage_error("run", "-n takes a count, not '%s'", optarg);
            }
            o->n_predict = v;
            break;
        case 't':
            if (vw_parse_i64(optarg, 1, 256, &v)) {
                return vw_usage_error("run", "-t takes 1..256 threads, not '%s'", optarg);
            }
            o->n_threads = (int)v;
            break;
        case 'c':
            if (vw_parse_i64(optarg, 1, 1 << 20, &v)) {
                return vw_usage_error("run", "--ctx takes a size, not '%s'", optarg);
            }
            o->n_ctx = v;
            break;
        case 'o':
            o->trace = optarg;
            break;
        case OPT_CHAT:
            o->chat = true;
            break;
        case OPT_SYSTEM:
            o->system = optarg;
            break;
        case OPT_TMPL:
            o->chat_template = optarg;
            o->chat = true;
            break;
        case OPT_VERBOSE_PROMPT:
            o->verbose_prompt = true;
            break;
        case OPT_TEMP:
            if (vw_parse_f64(optarg, &d) || d < 0) {
                return vw_usage_error("run", "--temp takes a number >= 0, not '%s'", optarg);
            }
            o->sampler.temp = (float)d;
            break;
        case OPT_TOPK:
            if (vw_parse_i64(optarg, 0, 1 << 30, &v)) {
                return vw_usage_error("run", "--top-k takes a count, not '%s'", optarg);
            }
            o->sampler.top_k = (int)v;
            break;
        case OPT_TOPP:
            if (vw_parse_f64(optarg, &d) || d <= 0 || d > 1) {
                return vw_usage_error("run", "--top-p takes a number in (0, 1], not '%s'", optarg);
            }
            o->sampler.top_p = (float)d;
            break;
        case OPT_SEED:
            if (vw_parse_i64(optarg, 0, 0x7fffffffffffffffLL, &v)) {
                return vw_usage_error("run", "--seed takes a number, not '%s'", optarg);
            }
            o->sampler.seed = (uint64_t)v;
            break;
        case OPT_KV:
            if (strcmp(optarg, "f32") && strcmp(optarg, "f16")) {
                return vw_usage_error("run", "--kv-type takes f32 or f16, not '%s'", optarg);
            }
            o->kv_type = strcmp(optarg, "f16") ? LM_TYPE_F32 : LM_TYPE_F16;
            break;
        case OPT_NOBOS:
            o->faults.bos = 1;
            break;
        case OPT_IDS:
            o->ids = true;
            break;
        case OPT_RECORD:
            if (o->n_rules >= VW_MAX_RULES) {
                return vw_usage_error("run", "too many --record rules");
            }
            o->rules[o->n_rules++] = optarg;
            break;
        case OPT_INJECT:
            if (lm_faults_parse(&o->faults, optarg, err, sizeof err) < 0) {
                return vw_usage_error("run", "%s", err);
            }
            break;
        case OPT_FORCE:
            o->force = true;
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return -1;
        default:
            return vw_usage_error("run", "unknown option");
        }
    }
    if (optind < argc) {
        return vw_usage_error("run", "unexpected argument '%s'", argv[optind]);
    }
    if (!o->model) {
        return vw_usage_error("run", "a model is required (-m MODEL.gguf)");
    }
    if (!o->prompt && !o->prompt_file) {
        return vw_usage_error("run", "a prompt is required (-p TEXT or -f FILE)");
    }
    return 0;
}

void vw_run_opts_init(struct vw_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = 32;
    o->n_threads = 2;
    o->kv_type = LM_TYPE_F32;
    o->sampler.top_k = 40;
    o->sampler.top_p = 0.95f;
    o->sampler.seed = 42;
    lm_faults_init(&o->faults);
}

int cmd_run(int argc, char **argv)
{
    struct vw_run_opts o;
    vw_run_opts_init(&o);
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        return rc < 0 ? 0 : rc;
    }
    return vw_run(&o, NULL);
}
