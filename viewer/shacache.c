/*
 * shacache.c - the SHA-256 of a model file, remembered across runs. The cache is one text file,
 * <dir>/sha256 (vw_cache_dir), with a line per file:
 *
 *   <sha256, 64 hex digits> <dev> <ino> <size> <mtime_ns> <ctime_ns> <path>
 *
 * keyed by what the file was when lm_gguf_open mapped it (lm_gguf_file_id): writing or replacing
 * the file changes one of dev, ino, size, mtime or ctime, and the entry no longer matches. An
 * entry is stored only when the file's last change is more than a second older than its opening
 * (a write within the kernel's timestamp tick would leave the identity unchanged: git's "racy"
 * rule) and when the path still names that same file after hashing. The cache only saves time:
 * a missing, unreadable, unwritable or malformed cache file means hashing again, silently;
 * malformed lines are dropped when it is next written, the newest MAX_ENTRIES lines are kept,
 * and it is written to a temporary file renamed into place, so a reader never sees half of it.
 */
#include "shacache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_ENTRIES = 64 };
#define RACY_NS 1000000000LL /* a change this close to the opening may be invisible */

struct entry {
    char hex[65];
    struct lm_file_id id;
    char *path;
};

char *vw_cache_dir(void)
{
    const char *d = getenv("LLTRACE_CACHE_DIR");
    const char *base = NULL, *sub = NULL;
    if (d) {
        base = d;
        sub = "";
    } else if ((d = getenv("XDG_CACHE_HOME")) && *d == '/') {
        base = d;
        sub = "/lltrace";
    } else if ((d = getenv("HOME")) && *d) {
        base = d;
        sub = "/.cache/lltrace";
    }
    if (!base || !*base) {
        return NULL;
    }
    size_t n = strlen(base) + strlen(sub) + 1;
    char *dir = malloc(n);
    if (dir) {
        snprintf(dir, n, "%s%s", base, sub);
    }
    return dir;
}

static char *cache_file(const char *dir, const char *suffix)
{
    size_t n = strlen(dir) + strlen("/sha256") + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/sha256%s", dir, suffix);
    }
    return p;
}

static bool same_file(const struct lm_file_id *a, const struct lm_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* One line into e (path malloc'd); false when it is malformed. */
static bool parse_line(char *line, struct entry *e)
{
    int off = -1;
    if (sscanf(line, "%64[0-9a-f] %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64 " %n",
               e->hex, &e->id.dev, &e->id.ino, &e->id.size, &e->id.mtime_ns, &e->id.ctime_ns,
               &off) != 6 ||
        off < 0 || strlen(e->hex) != 64) {
        return false;
    }
    line[strcspn(line, "\n")] = '\0';
    e->path = strdup(line + off);
    return e->path != NULL;
}

/* The valid lines of the cache file (none when it cannot be read), up to MAX_ENTRIES + 1. */
static int load(const char *dir, struct entry *all)
{
    char *file = cache_file(dir, "");
    int fd = file ? open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1; /* a FIFO must not block */
    free(file);
    struct stat st;
    FILE *f = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (n == MAX_ENTRIES + 1) { /* only a hand-edited file is longer: keep the newest */
            free(all[0].path);
            memmove(all, all + 1, (size_t)MAX_ENTRIES * sizeof *all);
            n--;
        }
        n += parse_line(line, &all[n]);
    }
    free(line);
    fclose(f);
    return n;
}

static void free_all(struct entry *all, int n)
{
    for (int i = 0; i < n; i++) {
        free(all[i].path);
    }
}

static bool lookup(const char *dir, const struct lm_file_id *id, char out[65])
{
    struct entry all[MAX_ENTRIES + 1];
    int n = load(dir, all);
    bool hit = false;
    for (int i = n - 1; i >= 0 && !hit; i--) {
        if (same_file(&all[i].id, id)) {
            memcpy(out, all[i].hex, 65);
            hit = true;
        }
    }
    free_all(all, n);
    return hit;
}

/* mkdir -p dir (mode 0700 for what it creates); 0 or -1. */
static int make_dirs(const char *dir)
{
    char *p = strdup(dir);
    int rc = p ? 0 : -1;
    for (char *s = p ? strchr(p + 1, '/') : NULL; s && rc == 0; s = strchr(s + 1, '/')) {
        *s = '\0'; /* each parent in turn */
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = -1;
        }
        *s = '/';
    }
    if (rc == 0 && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -1;
    }
    free(p);
    return rc;
}

static void write_line(FILE *f, const char *hex, const struct lm_file_id *id, const char *path)
{
    fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " ", hex, id->dev,
            id->ino, id->size, id->mtime_ns, id->ctime_ns);
    for (const char *c = path; *c; c++) {
        fputc(*c == '\n' ? '?' : *c, f);
    }
    fputc('\n', f);
}

static void store(const char *dir, const char *path, const struct lm_file_id *id, const char *hex)
{
    struct lm_file_id now;
    if (id->ctime_ns > id->opened_ns - RACY_NS || id->mtime_ns > id->opened_ns - RACY_NS ||
        !lm_file_id_of(path, &now) || !same_file(&now, id) || make_dirs(dir) != 0) {
        return;
    }
    struct entry all[MAX_ENTRIES + 1];
    int n = load(dir, all);
    char *file = cache_file(dir, "");
    char *tmp = cache_file(dir, ".XXXXXX");
    int fd = file && tmp ? mkstemp(tmp) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) {
        int others = 0;
        for (int i = 0; i < n; i++) {
            others += !(all[i].id.dev == id->dev && all[i].id.ino == id->ino);
        }
        int drop = others > MAX_ENTRIES - 1 ? others - (MAX_ENTRIES - 1) : 0; /* the oldest */
        for (int i = 0; i < n; i++) {
            if (all[i].id.dev == id->dev && all[i].id.ino == id->ino) {
                continue; /* an older identity of the same file */
            }
            if (drop > 0) {
                drop--;
                continue;
            }
            write_line(f, all[i].hex, &all[i].id, all[i].path);
        }
        write_line(f, hex, id, path);
        if (fclose(f) != 0 || rename(tmp, file) != 0) {
            unlink(tmp);
        }
    } else if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(file);
    free(tmp);
    free_all(all, n);
}

void vw_gguf_sha256(const lm_gguf *g, char out[65])
{
    struct lm_file_id id;
    bool has_id = lm_gguf_file_id(g, &id);
    char *dir = has_id ? vw_cache_dir() : NULL;
    if (dir && lookup(dir, &id, out)) {
        free(dir);
        return;
    }
    lm_sha256_hex(lm_gguf_bytes(g), (size_t)lm_gguf_file_size(g), out);
    if (dir) {
        store(dir, lm_gguf_path(g), &id, out);
    }
    free(dir);
}

const char *vw_model_sha256(lm_model *m)
{
    char hex[65];
    vw_gguf_sha256(lm_model_gguf(m), hex);
    lm_model_set_sha256(m, hex);
    return lm_model_sha256(m);
}
