/*
 * lltrace tokenize / lltrace detokenize: a model's SentencePiece vocabulary on the command line,
 * giving llama-tokenize's ids (--ids prints exactly what `llama-tokenize --ids` prints) and the
 * text back from ids (llama_detokenize). Uses only the engine's public API (lm.h).
 */
#include "cmds.h"
#include "vw.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm.h"

static const char tok_usage[] =
    "usage: lltrace tokenize -m MODEL.gguf [options] [TEXT...]\n"
    "\n"
    "Tokenizes text exactly as llama.cpp does (SentencePiece 'llama' vocabularies). TEXT\n"
    "arguments are joined with single spaces; or the text comes from --stdin or -f FILE\n"
    "(their exact bytes).\n"
    "\n"
    "  -m, --model FILE        GGUF model whose vocabulary to use\n"
    "      --ids               print a Python-style list, as llama-tokenize --ids: [1, 15043]\n"
    "      --no-bos            do not add BOS/EOS (llama_tokenize add_special = false)\n"
    "      --no-parse-special  treat <s>, </s>, ... in the text as plain text\n"
    "      --stdin             read the text from standard input\n"
    "  -f, --file FILE         read the text from FILE\n"
    "  -h, --help              show this help\n"
    "\n"
    "By default each token is a line: its id, a tab, and its piece in single quotes, with\n"
    "\\n \\t \\r \\\\ \\' and bytes that are not printable UTF-8 escaped (\\xNN).\n";

static const char detok_usage[] =
    "usage: lltrace detokenize -m MODEL.gguf [options] [ID...]\n"
    "\n"
    "Turns token ids back into text as llama_detokenize does. Without ID arguments the ids are\n"
    "read from standard input, as \"[1, 15043, 3186]\" (what tokenize --ids prints) or\n"
    "separated by spaces or commas.\n"
    "\n"
    "  -m, --model FILE   GGUF model whose vocabulary to use\n"
    "      --keep-special keep a leading BOS and a trailing EOS and print control tokens as\n"
    "                     text (<s>, </s>); by default they are dropped or print nothing\n"
    "      --raw          do not add a final newline\n"

    "  -h, --help         show this help\n"
    "\n"
    "As in llama.cpp, the space prefix of the first token is removed, except after a BOS:\n"
    "'1 15043' gives \" Hello\", '15043' gives \"Hello\".\n";

enum { OPT_IDS = 256, OPT_NO_BOS, OPT_NO_PARSE, OPT_STDIN, OPT_KEEP, OPT_RAW };

/* Opens the model and builds its tokenizer; prints the error and returns NULL on failure. */
static lm_tok *open_tok(const char *path)
{
    char err[LM_ERRBUF_SIZE] = "";
    lm_gguf *g = NULL;
    lm_tok *t = NULL;
    if (lm_gguf_open(path, &g, err, sizeof err) < 0) {
        vw_error("%s", err);
        return NULL;
    }
    if (lm_tok_create(g, &t, err, sizeof err) < 0) {
        vw_error("%s", err);
    }
    lm_gguf_close(g);
    return t;
}

/* Reads a whole stream into a malloc'd buffer; NULL on error or out of memory. */
static char *read_all(FILE *f, size_t *len)
{
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            break;
        }
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) {
            free(buf);
        }
        buf = nb;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t l = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (s[0] >= 0xF5 || l == 0 || l > n) {
        return 0;
    }
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return l;
}

/* Prints a piece with C-style escapes for what a terminal would not show. */
static void print_escaped(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t l = s[i] >= 0x80 ? utf8_seq(s + i, n - i) : 0;
        const char *esc = s[i] == '\n'   ? "\\n"
                          : s[i] == '\t' ? "\\t"
                          : s[i] == '\r' ? "\\r"
                          : s[i] == '\\' ? "\\\\"
                          : s[i] == '\'' ? "\\'"
                                         : NULL;
        if (l > 0) {
            fwrite(s + i, 1, l, stdout);
            i += l;
            continue;
        }
        if (esc) {
            fputs(esc, stdout);
        } else if (s[i] >= 0x20 && s[i] < 0x7f) {
            putchar(s[i]);
        } else {
            printf("\\x%02x", s[i]);
        }
        i++;
    }
}

static void print_tokens(const lm_tok *t, const int32_t *ids, int64_t n, bool as_list)
{
    char piece[512];
    if (as_list) {
        putchar('[');
    }
    for (int64_t i = 0; i < n; i++) {
        if (as_list) {
            printf(i > 0 ? ", %d" : "%d", ids[i]);
            continue;
        }
        int64_t len = lm_tok_piece(t, ids[i], true, piece, sizeof piece);
        printf("%d\t'", ids[i]);
        print_escaped(piece, (size_t)(len < (int64_t)sizeof piece ? len : (int64_t)sizeof piece));
        puts("'");
    }
    if (as_list) {
        puts("]");
    }
}

/* Tokenizes and prints; returns the exit code. */
static int tokenize_and_print(const lm_tok *t, const char *model, const char *text, size_t len,
                              bool add_special, bool parse_special, bool as_list)
{
    int64_t cap = (int64_t)len + 16, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int rc =
        ids ? lm_tok_encode(t, text, len, add_special, parse_special, ids, cap, &n) : LM_ENOMEM;
    if (rc == LM_ERANGE) {
        int32_t *more = realloc(ids, (size_t)n * sizeof *ids);
        rc =
            more ? lm_tok_encode(t, text, len, add_special, parse_special, more, n, &n) : LM_ENOMEM;
        ids = more ? more : ids;
    }
    if (rc == LM_ENOTFOUND) {
        vw_error("%s: the text has a byte that this vocabulary cannot encode (no <0xXX> token)",
                 model);
    } else if (rc < 0) {
        vw_error("%s: cannot tokenize: %s", model, lm_strerror(rc));
    } else {
        print_tokens(t, ids, n, as_list);
    }
    free(ids);
    return rc < 0 ? 1 : 0;
}

/* The text: TEXT arguments joined by spaces, --stdin, or -f FILE. */
static char *gather_text(int argc, char **argv, bool from_stdin, const char *file, size_t *len)
{
    if (from_stdin || file) {
        errno = 0;
        FILE *f = from_stdin ? stdin : fopen(file, "rb");
        char *buf = f ? read_all(f, len) : NULL;
        if (!buf) {
            vw_error("%s: %s%s", from_stdin ? "stdin" : file,
                     errno ? "cannot read: " : "read error", errno ? vw_strerror(errno) : "");
        }
        if (f && f != stdin) {
            fclose(f);
        }
        return buf;
    }
    size_t total = 1;
    for (int i = 0; i < argc; i++) {
        total += strlen(argv[i]) + 1;
    }
    char *buf = malloc(total);
    size_t n = 0;
    for (int i = 0; buf && i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (i > 0) {
            buf[n++] = ' ';
        }
        memcpy(buf + n, argv[i], l);
        n += l;
    }
    *len = n;
    return buf;
}

struct tok_opts {
    const char *model, *file;
    bool as_list, add_special, parse_special, from_stdin;
};

/* Parses the options; returns -1 to go on, else the exit code (0 after --help, 2 on misuse). */
static int parse_tok_opts(int argc, char **argv, struct tok_opts *o)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"ids", no_argument, NULL, OPT_IDS},
        {"no-bos", no_argument, NULL, OPT_NO_BOS},
        {"no-parse-special", no_argument, NULL, OPT_NO_PARSE},
        {"stdin", no_argument, NULL, OPT_STDIN},
        {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0; /* glibc: restart scanning (commands may run more than once per process) */
    while ((c = getopt_long(argc, argv, "m:f:h", opts, NULL)) != -1) {
        if (c == 'm' || c == 'f') {
            *(c == 'm' ? &o->model : &o->file) = optarg;
        } else if (c == OPT_IDS || c == OPT_STDIN) {
            *(c == OPT_IDS ? &o->as_list : &o->from_stdin) = true;
        } else if (c == OPT_NO_BOS || c == OPT_NO_PARSE) {
            *(c == OPT_NO_BOS ? &o->add_special : &o->parse_special) = false;
        } else if (c == 'h') {
            fputs(tok_usage, stdout);
            return 0;
        } else {
            return vw_usage_error("tokenize", "unknown or incomplete option");
        }
    }
    if (!o->model) {
        return vw_usage_error("tokenize", "no model (-m MODEL.gguf)");
    }
    if ((argc > optind) + o->from_stdin + (o->file != NULL) != 1) {
        return vw_usage_error("tokenize", "give the text as TEXT arguments, --stdin or -f FILE "
                                          "(exactly one of them)");
    }
    return -1;
}

int cmd_tokenize(int argc, char **argv)
{
    struct tok_opts o = {NULL, NULL, false, true, true, false};
    int rc = parse_tok_opts(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    size_t len = 0;
    char *text = gather_text(argc - optind, argv + optind, o.from_stdin, o.file, &len);
    if (!text) {
        return 1;
    }
    lm_tok *t = open_tok(o.model);
    rc = t ? tokenize_and_print(t, o.model, text, len, o.add_special, o.parse_special, o.as_list)
           : 1;
    lm_tok_destroy(t);
    free(text);
    return rc;
}

/* ---- detokenize ------------------------------------------------------------------------------ */

struct id_list {
    int32_t *v;
    int64_t n, cap;
};

/* Parses ids separated by spaces, commas and brackets. A word that is not an integer is an
 * error (2 for arguments, 1 for stdin); an id outside the vocabulary is an error (1). */
static int parse_ids(const char *s, const char *what, int32_t n_vocab, struct id_list *out)
{
    while (*s) {
        size_t sep = strspn(s, " \t\r\n,[]");
        s += sep;
        size_t w = strcspn(s, " \t\r\n,[]");
        if (w == 0) {
            continue;
        }
        char word[64];
        memcpy(word, s, w < 63 ? w : 63);
        word[w < 63 ? w : 63] = '\0';
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end != s + w) {
            return strcmp(what, "stdin") == 0
                       ? vw_error("stdin: '%s' is not a token id", word)
                       : vw_usage_error("detokenize", "'%s' is not a token id", word);
        }
        if (errno == ERANGE || v < 0 || v >= n_vocab) {
            return vw_error("id %s is out of range (the vocabulary has %d tokens)", word,
                            (int)n_vocab);
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 256;
            int32_t *nv = realloc(out->v, (size_t)out->cap * sizeof *nv);
            if (!nv) {
                return vw_error("out of memory");
            }
            out->v = nv;
        }
        out->v[out->n++] = (int32_t)v;
        s += w;
    }
    return 0;
}

/* Decodes and writes the text; returns the exit code. */
static int detokenize_and_print(const lm_tok *t, const struct id_list *ids, bool keep, bool raw)
{
    int64_t len = lm_tok_decode(t, ids->v, ids->n, !keep, keep, NULL, 0);
    char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!buf) {
        return vw_error("cannot detokenize: %s", len < 0 ? lm_strerror((int)len) : "out of memory");
    }
    lm_tok_decode(t, ids->v, ids->n, !keep, keep, buf, (size_t)len + 1);
    fwrite(buf, 1, (size_t)len, stdout);
    if (!raw) {
        putchar('\n');
    }
    free(buf);
    return 0;
}

/* The ids as one string: the arguments joined by spaces, or all of stdin. */
static char *gather_ids(int argc, char **argv)
{
    size_t len = 0;
    if (argc == 0) {
        char *buf = read_all(stdin, &len);
        char *nb = buf ? realloc(buf, len + 1) : NULL;
        if (!nb) {
            free(buf);
            vw_error("stdin: read error");
            return NULL;
        }
        nb[len] = '\0';
        return nb;
    }
    char *joined = gather_text(argc, argv, false, NULL, &len);
    char *nb = joined ? realloc(joined, len + 1) : NULL;
    if (!nb) {
        free(joined);
        vw_error("out of memory");
        return NULL;
    }
    nb[len] = '\0';
    return nb;
}

int cmd_detokenize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"keep-special", no_argument, NULL, OPT_KEEP},
        {"raw", no_argument, NULL, OPT_RAW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL;
    bool keep = false, raw = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        if (c == 'm') {
            model = optarg;
        } else if (c == OPT_KEEP) {
            keep = true;
        } else if (c == OPT_RAW) {
            raw = true;
        } else if (c == 'h') {
            fputs(detok_usage, stdout);
            return 0;
        } else {
            return vw_usage_error("detokenize", "unknown or incomplete option");
        }
    }
    if (!model) {
        return vw_usage_error("detokenize", "no model (-m MODEL.gguf)");
    }
    int n_args = argc - optind;
    char *text = gather_ids(n_args, argv + optind);
    if (!text) {
        return 1;
    }
    lm_tok *t = open_tok(model);
    struct id_list ids = {0};
    int rc = t ? parse_ids(text, n_args ? "arguments" : "stdin", lm_tok_n_vocab(t), &ids) : 1;
    if (rc == 0) {
        rc = detokenize_and_print(t, &ids, keep, raw);
    }
    free(ids.v);
    free(text);
    lm_tok_destroy(t);
    return rc;
}
