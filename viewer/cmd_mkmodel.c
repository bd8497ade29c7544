/*
 * lltrace mkmodel: writes a deterministic synthetic llama model (lm_mkmodel_write does the work).
 * The CLI only parses options, refuses to overwrite an existing file without --force, and reports
 * what it wrote and how long it took.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cmds.h"
#include "lm.h"
#include "vw.h"

static void usage(FILE *f)
{
    fprintf(
        f, "usage: lltrace mkmodel -o FILE.gguf [--preset NAME] [--type TYPE] [--seed N] "
           "[--force]\n\n"
           "Writes a complete, deterministic llama GGUF model with seeded random weights and a\n"
           "generated SentencePiece vocabulary (<unk> <s> </s>, 256 byte tokens, word pieces).\n"
           "The same options always give the same bytes.\n\n"
           "options:\n"
           "  -o, --output FILE  where to write (required)\n"
           "  --preset NAME      tiny (default): n_embd 64, 2 layers, 4 heads, 2 KV heads,\n"
           "                       n_ff 192, vocab 512, context 256 (about 400 KB in f32)\n"
           "                     stories: stories260K's shape (64, 5 layers, 8 heads, 4 KV heads,\n"
           "                       n_ff 172, vocab 512, context 512)\n"
           "                     small: 512, 2 layers, 8 heads, 4 KV heads, n_ff 1408, vocab\n"
           "                       512, context 512 (big enough for 2 threads; 22 MB in f32)\n"
           "                     tinyllama-1.1b: TinyLlama-1.1B's shape (2048, 22 layers, 32\n"
           "                       heads, 4 KV heads, n_ff 5632, vocab 32000, context 2048,\n"
           "                       zephyr chat template; 2.2 GB in f16)\n"
           "  --type TYPE        weight type of the matrices: f32 (default), f16, bf16, q8_0,\n"
           "                     q4_0, q4_k, q6_k (also q4_1 q5_0 q5_1 q2_k q5_k). Norms stay\n"
           "                     f32. Rows that do not fill a block fall back as llama-quantize\n"
           "                     does (q4_k -> q5_0, q6_k -> q8_0), then to f32 (stories'\n"
           "                     ffn_down has 172 columns)\n"
           "  --seed N           PRNG seed (default 0)\n"
           "  --force            overwrite FILE if it exists\n"
           "  -h, --help         show this help\n");
}

struct mk_args {
    const char *out;
    struct lm_mkmodel_opts o;
    bool force;
};

static int parse_seed(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0, 2 (usage error) or -1 (--help shown). */
static int parse_args(int argc, char **argv, struct mk_args *a)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"preset", required_argument, NULL, 'p'},
        {"type", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out = optarg;
            break;
        case 'p':
            a->o.preset = optarg;
            break;
        case 't':
            a->o.type = lm_type_from_name(optarg);
            if (a->o.type < 0) {
                return vw_usage_error("mkmodel", "unknown type '%s'", optarg);
            }
            break;
        case 's':
            if (parse_seed(optarg, &a->o.seed) < 0) {
                return vw_usage_error("mkmodel", "bad seed '%s'", optarg);
            }
            break;
        case 'f':
            a->force = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return vw_usage_error("mkmodel", "unknown option or missing value: '%s'",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return vw_usage_error("mkmodel", "unexpected argument '%s'", argv[optind]);
    }
    if (!a->out) {
        return vw_usage_error("mkmodel", "missing -o FILE.gguf");
    }
    return 0;
}

int cmd_mkmodel(int argc, char **argv)
{
    struct mk_args a = {.o = {"tiny", LM_TYPE_F32, 0}};
    char err[LM_ERRBUF_SIZE];
    struct stat st;
    struct timespec t0, t1;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    if (!a.force && stat(a.out, &st) == 0) {
        return vw_error("%s: already exists (use --force to overwrite)", a.out);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = lm_mkmodel_write(a.out, &a.o, err, sizeof err);
    if (rc == LM_EINVAL || rc == LM_EUNSUPPORTED) { /* a preset or type we do not have */
        return vw_usage_error("mkmodel", "%s", err);
    }
    if (rc < 0) {
        return vw_error("%s", err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (stat(a.out, &st) != 0) {
        return vw_error("%s: cannot stat the file just written", a.out);
    }
    printf("wrote %s: preset %s, %s, seed %llu, %lld bytes in %.2f s\n", a.out, a.o.preset,
           lm_type_name(a.o.type), (unsigned long long)a.o.seed, (long long)st.st_size, secs);
    return 0;
}
