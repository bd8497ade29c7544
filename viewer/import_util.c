/*
 * import_util.c - the in-memory form of an import (struct vw_imp) and the small readers the
 * importers share: whole files, token lists, llama-debug's -prompt.txt.
 *
 * No tracer and no printing here: this is what the importers fill and the tests inspect.
 */
#include "import_int.h"
#include "vw.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void vw_imp_init(struct vw_imp *imp, const char *source)
{
    memset(imp, 0, sizeof *imp);
    imp->source = source;
}

void vw_imp_release(struct vw_imp *imp)
{
    if (!imp) {
        return;
    }
    for (int64_t i = 0; i < imp->n_ops; i++) {
        free(imp->ops[i].known);
        free(imp->ops[i].vals);
        free(imp->ops[i].params);
    }
    for (int i = 0; i < imp->n_kv; i++) {
        free(imp->kv[i].s);
    }
    free(imp->ops);
    free(imp->steps);
    free(imp->tokens);
    free(imp->kv);
    free(imp->unmatched);
    free(imp->used_map);
    free(imp->warnings);
    memset(imp, 0, sizeof *imp);
}

/* Grows *arr (elements of size sz) to hold at least need elements. */
static int grow(void **arr, int64_t *cap, int64_t need, size_t sz)
{
    if (need <= *cap) {
        return 0;
    }
    int64_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) {
        ncap *= 2;
    }
    void *p = realloc(*arr, (size_t)ncap * sz);
    if (!p) {
        return -1;
    }
    memset((char *)p + (size_t)*cap * sz, 0, (size_t)(ncap - *cap) * sz);
    *arr = p;
    *cap = ncap;
    return 0;
}

int vw_imp_add_step(struct vw_imp *imp, int64_t step, int64_t pos0, int64_t n_tokens)
{
    if (grow((void **)&imp->steps, &imp->cap_steps, imp->n_steps + 1, sizeof *imp->steps) < 0) {
        return -1;
    }
    struct vw_imp_step *s = &imp->steps[imp->n_steps++];
    s->step = step;
    s->pos0 = pos0;
    s->n_tokens = n_tokens;
    return 0;
}

int vw_imp_add_token(struct vw_imp *imp, int32_t id, bool is_prompt)
{
    if (grow((void **)&imp->tokens, &imp->cap_tokens, imp->n_tokens + 1, sizeof *imp->tokens) < 0) {
        return -1;
    }
    struct vw_imp_token *t = &imp->tokens[imp->n_tokens++];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->is_prompt = is_prompt;
    return 0;
}

struct vw_imp_op *vw_imp_add_op(struct vw_imp *imp)
{
    if (grow((void **)&imp->ops, &imp->cap_ops, imp->n_ops + 1, sizeof *imp->ops) < 0) {
        return NULL;
    }
    struct vw_imp_op *op = &imp->ops[imp->n_ops++];
    memset(op, 0, sizeof *op);
    op->layer = -1;
    return op;
}

static struct vw_imp_kv *kv_slot(struct vw_imp *imp, const char *key)
{
    for (int i = 0; i < imp->n_kv; i++) {
        if (strcmp(imp->kv[i].key, key) == 0) {
            free(imp->kv[i].s);
            imp->kv[i].s = NULL;
            return &imp->kv[i];
        }
    }
    int64_t cap = imp->cap_kv;
    if (grow((void **)&imp->kv, &cap, imp->n_kv + 1, sizeof *imp->kv) < 0) {
        return NULL;
    }
    imp->cap_kv = (int)cap;
    struct vw_imp_kv *kv = &imp->kv[imp->n_kv++];
    snprintf(kv->key, sizeof kv->key, "%s", key);
    return kv;
}

int vw_imp_set_str(struct vw_imp *imp, const char *key, const char *value)
{
    struct vw_imp_kv *kv = kv_slot(imp, key);
    char *s = strdup(value ? value : "");
    if (!kv || !s) {
        free(s);
        return -1;
    }
    kv->type = VW_KV_STR;
    kv->s = s;
    return 0;
}

int vw_imp_set_i64(struct vw_imp *imp, const char *key, int64_t value)
{
    struct vw_imp_kv *kv = kv_slot(imp, key);
    if (!kv) {
        return -1;
    }
    kv->type = VW_KV_I64;
    kv->i = value;
    return 0;
}

int vw_imp_set_f64(struct vw_imp *imp, const char *key, double value)
{
    struct vw_imp_kv *kv = kv_slot(imp, key);
    if (!kv) {
        return -1;
    }
    kv->type = VW_KV_F64;
    kv->f = value;
    return 0;
}

const struct vw_imp_kv *vw_imp_get(const struct vw_imp *imp, const char *key)
{
    for (int i = 0; i < imp->n_kv; i++) {
        if (strcmp(imp->kv[i].key, key) == 0) {
            return &imp->kv[i];
        }
    }
    return NULL;
}

/* Appends text and a separator to a malloc'd string. */
static int str_append(char **dst, const char *sep, const char *text)
{
    size_t old = *dst ? strlen(*dst) : 0;
    size_t add = (old ? strlen(sep) : 0) + strlen(text);
    char *p = realloc(*dst, old + add + 1);
    if (!p) {
        return -1;
    }
    snprintf(p + old, add + 1, "%s%s", old ? sep : "", text);
    *dst = p;
    return 0;
}

int vw_imp_warn(struct vw_imp *imp, const char *fmt, ...)
{
    char buf[VW_IMP_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return str_append(&imp->warnings, "\n", buf);
}

int vw_imp_note_unmatched(struct vw_imp *imp, const char *name)
{
    if (imp->unmatched) {
        size_t n = strlen(name);
        for (const char *p = imp->unmatched; (p = strstr(p, name)) != NULL; p += n) {
            bool start = p == imp->unmatched || p[-1] == ',';
            if (start && (p[n] == ',' || p[n] == '\0')) {
                return 0;
            }
        }
    }
    return str_append(&imp->unmatched, ",", name);
}

int vw_file_slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    *buf = NULL;
    *len = 0;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, vw_strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }
    size_t n = fread(b, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: read error", path);
        free(b);
        return -1;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* Parses ids separated by commas and/or white space from [s, end). */
static int parse_ids(const char *s, const char *what, int32_t **ids, int64_t *n, char *err,
                     size_t errlen)
{
    int64_t cap = 0;
    int32_t *v = NULL;
    *n = 0;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
        }
        if (!*s) {
            break;
        }
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX) {
            snprintf(err, errlen, "%s: bad token id near '%.12s'", what, s);
            free(v);
            return -1;
        }
        if (grow((void **)&v, &cap, *n + 1, sizeof *v) < 0) {
            snprintf(err, errlen, "%s: out of memory", what);
            free(v);
            return -1;
        }
        v[(*n)++] = (int32_t)x;
        s = end;
    }
    if (*n == 0) {
        snprintf(err, errlen, "%s: no token ids", what);
        free(v);
        return -1;
    }
    *ids = v;
    return 0;
}

int vw_tokens_parse_list(const char *s, int32_t **ids, int64_t *n, char *err, size_t errlen)
{
    return parse_ids(s, "--tokens", ids, n, err, errlen);
}

/* A raw little-endian int32 array (llama-debug -tokens.bin). */
static int read_bin_ids(const char *path, const char *buf, size_t len, int32_t **ids, int64_t *n,
                        char *err, size_t errlen)
{
    if (len == 0 || len % 4 != 0) {
        snprintf(err, errlen, "%s: size %zu is not a whole number of int32 token ids", path, len);
        return -1;
    }
    *n = (int64_t)(len / 4);
    *ids = malloc(len);
    if (!*ids) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(*ids, buf, len);
    for (int64_t i = 0; i < *n; i++) {
        if ((*ids)[i] < 0) {
            snprintf(err, errlen, "%s: negative token id %d at %lld", path, (int)(*ids)[i],
                     (long long)i);
            free(*ids);
            *ids = NULL;
            return -1;
        }
    }
    return 0;
}

int vw_tokens_read(const char *arg, int32_t **ids, int64_t *n, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (strspn(arg, "0123456789, ") == strlen(arg)) {
        return vw_tokens_parse_list(arg, ids, n, err, errlen);
    }
    if (vw_file_slurp(arg, &buf, &len, err, errlen) < 0) {
        return -1;
    }
    size_t l = strlen(arg);
    int rc;
    if (l > 4 && strcmp(arg + l - 4, ".bin") == 0) {
        rc = read_bin_ids(arg, buf, len, ids, n, err, errlen);
    } else if (memchr(buf, 0, len)) {
        snprintf(err, errlen, "%s: binary data; token files are text or a .bin of int32", arg);
        rc = -1;
    } else {
        rc = parse_ids(buf, arg, ids, n, err, errlen);
    }
    free(buf);
    return rc;
}

int vw_prompt_text_parse(const char *text, size_t len, const char *name, char **prompt,
                         int32_t **ids, int64_t *n, char *err, size_t errlen)
{
    *prompt = NULL;
    *ids = NULL;
    *n = 0;
    const char *p = strncmp(text, "prompt: ", 8) == 0 ? text : strstr(text, "\nprompt: ");
    const char *t = strstr(text, "\ntoken ids: ");
    if (!p || !t || memchr(text, 0, len)) {
        snprintf(err, errlen, "%s: not a llama-debug prompt file (no 'prompt:'/'token ids:')",
                 name);
        return -1;
    }
    p += (p == text) ? 8 : 9;
    const char *pe = strstr(p, "\nn_tokens: ");
    pe = pe && pe < t ? pe : t;
    t += 12;
    const char *te = strchr(t, '\n');
    char *line = strndup(t, te ? (size_t)(te - t) : strlen(t));
    *prompt = pe > p ? strndup(p, (size_t)(pe - p)) : strdup("");
    int rc = -1;
    if (!line || !*prompt) {
        snprintf(err, errlen, "%s: out of memory", name);
    } else {
        rc = parse_ids(line, name, ids, n, err, errlen);
    }
    if (rc < 0) {
        free(*prompt);
        *prompt = NULL;
    }
    free(line);
    return rc;
}

int vw_prompt_file_read(const char *path, char **prompt, int32_t **ids, int64_t *n, char *err,
                        size_t errlen)
{
    char *buf;
    size_t len;
    *prompt = NULL;
    *ids = NULL;
    *n = 0;
    if (vw_file_slurp(path, &buf, &len, err, errlen) < 0) {
        return -1;
    }
    int rc = vw_prompt_text_parse(buf, len, path, prompt, ids, n, err, errlen);
    free(buf);
    return rc;
}
