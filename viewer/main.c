/*
 * lltrace: the command-line entry point. It only dispatches: every command lives in
 * viewer/cmd_<name>.c behind this table (git's builtin/ layout). Exit codes: 0 success,
 * 1 failure or difference found, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "vw.h"

struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* clang-format off */
static const struct cmd cmds[] = {
    {"run",        cmd_run,        "generate text, optionally recording every op into a trace"},
    {"bench",      cmd_bench,      "measure prompt and generation speed (and tracing cost)"},
    {"info",       cmd_info,       "describe a model (.gguf) or a trace"},
    {"tokenize",   cmd_tokenize,   "tokenize text with a model's vocabulary"},
    {"detokenize", cmd_detokenize, "turn token ids back into text"},
    {"mkmodel",    cmd_mkmodel,    "write a deterministic synthetic llama model (.gguf)"},
    {"import",     cmd_import,     "import llama.cpp dumps/logits or NumPy dumps into a trace"},
    {"sql",        cmd_sql,        "query a trace with SQL (read-only; tensor functions)"},
    {"ops",        cmd_ops,        "list a trace's ops with shapes, stats, sizes and times"},
    {"show",       cmd_show,       "show one op: inputs, outputs, stats, preview, histogram"},
    {"export",     cmd_export,     "write tensors as .npy, or the timeline as a Chrome trace"},
    {"replay",     cmd_replay,     "re-execute recorded ops with the engine's kernels (or variants)"},
    {"diff",       cmd_diff,       "find the first op where two traces diverge"},
    {"explain",    cmd_explain,    "where a token gets its logit: logit lens, attribution, --vs"},
    {"report",     cmd_report,     "write a self-contained HTML report of one or two traces"},
    {"help",       cmd_help,       "show help for lltrace or one command"},
};
/* clang-format on */

static const int n_cmds = (int)(sizeof cmds / sizeof cmds[0]);

static void usage(FILE *f)
{
    fprintf(f, "usage: lltrace <command> [options] [args]\n\n"
               "lltrace is a record-replay debugger for LLM inference.\n\ncommands:\n");
    for (int i = 0; i < n_cmds; i++) {
        fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
    }
    fprintf(f,
            "\n'lltrace <command> --help' or 'lltrace help <command>' shows a command's "
            "options.\nexit codes: 0 success, 1 failure or difference found, 2 usage error\n"
            "environment: LLTRACE_SIMD=scalar|avx2 (no SIMD kernels, or none past AVX2: the\n"
            "  tracer's hash has an AVX-512 path), LLTRACE_CACHE_DIR (the models'\n"
            "  SHA-256 cache; empty: none; default $XDG_CACHE_HOME/lltrace or ~/.cache/lltrace),\n"
            "  TMPDIR (bench and replay scratch files), LLTRACE_RECORD_SYNC=1 (record each op\n"
            "  before the next one runs, not beside it: op times then exclude recording)\n");
}

static const struct cmd *find(const char *name)
{
    for (int i = 0; i < n_cmds; i++) {
        if (strcmp(cmds[i].name, name) == 0) {
            return &cmds[i];
        }
    }
    return NULL;
}

int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct cmd *c = find(argv[1]);
    if (!c || c->fn == cmd_help) {
        if (c) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "lltrace: '%s' is not an lltrace command; see 'lltrace help'\n", argv[1]);
        return 2;
    }
    char *sub[] = {argv[1], "--help", NULL};
    return c->fn(2, sub);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        vw_print_version(stdout);
        return 0;
    }
    const struct cmd *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "lltrace: '%s' is not an lltrace command; see 'lltrace help'\n", argv[1]);
        return 2;
    }
    return c->fn(argc - 1, argv + 1);
}
