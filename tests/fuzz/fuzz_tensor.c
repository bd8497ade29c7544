/*
 * libFuzzer harness for reading a tensor back from a trace (trc__tensor_load), which every
 * command does with traces that may come from anyone. Each input describes one row of the
 * tensors table: the harness encodes real data with the tracer's codec (shuffle + zstd) and its
 * lt64 hash, stores the row in an in-memory trace, and then damages it as the input says: bytes
 * of the blob, the byte size, the element count, the shape, the hash, the codec, the dtype, the
 * known indices of a partial tensor, or the blob's length. The row may also be one whose data_of
 * names a second row holding the blob (version 4: the same bytes under another shape), whose
 * hash may differ. An undamaged row must load and give back exactly the bytes encoded; every row
 * must load or be refused with a message that names the tensor, without a crash or a leak.
 * Invariants that fail trap.
 *
 * Input: byte 0 dtype (mod 4); byte 1 dims (1 + mod 4); bytes 2-5 the dims (mod 16, so empty
 * tensors too); byte 6 the damage bits (1 blob bytes, 2 nbytes, 4 n_elems, 8 shape, 16 hash,
 * 32 codec, 64 dtype, 128 blob length); byte 7 partial (bit 0), damaged known indices
 * (bit 1), the data in row 2 named by row 1's data_of (bit 2; row 1 flat when bit 3, row 2's
 * hash changed when bit 4); byte 8 the number of byte damages (mod 9), each 3 bytes (position,
 * 16-bit little endian, and a non-zero xor); the rest fills the data, repeated. Run: ./fuzz_tensor
 * CORPUS -max_total_time=60 (no seeds needed: every input is a valid row before its damage).
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { HDR = 9, MAX_DAMAGE = 8 };

static sqlite3 *g_db;
static struct trc__codec_scratch g_scratch;

static sqlite3 *db_once(void)
{
    if (!g_db) {
        if (sqlite3_open(":memory:", &g_db) != SQLITE_OK ||
            sqlite3_exec(g_db, trc__schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
            __builtin_trap();
        }
    }
    sqlite3_exec(g_db, "DELETE FROM tensors", NULL, NULL, NULL);
    return g_db;
}

struct row {
    int64_t id, data_of; /* data_of 0: the blob is the row's own (blob NULL: no data) */
    const char *dtype, *codec;
    char shape[96], hash[17];
    int64_t n_elems, nbytes, n_known;
    int partial;
    const void *known, *blob;
    size_t known_len, blob_len;
};

static void insert(sqlite3 *db, const struct row *r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO tensors (id, dtype, shape, n_elems, nbytes, hash, codec, "
                           "n_nan, n_inf, partial, n_known, known, data, data_of) "
                           "VALUES (?11, ?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?8, ?9, ?10, ?12)",
                           -1, &st, NULL) != SQLITE_OK) {
        __builtin_trap();
    }
    sqlite3_bind_int64(st, 11, r->id);
    if (r->data_of) {
        sqlite3_bind_int64(st, 12, r->data_of);
    }
    sqlite3_bind_text(st, 1, r->dtype, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->shape, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->n_elems);
    sqlite3_bind_int64(st, 4, r->nbytes);
    sqlite3_bind_text(st, 5, r->hash, -1, SQLITE_STATIC);
    if (r->blob) {
        sqlite3_bind_text(st, 6, r->codec, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 7, r->partial);
    if (r->partial) {
        sqlite3_bind_int64(st, 8, r->n_known);
        sqlite3_bind_blob(st, 9, r->known_len ? r->known : "", (int)r->known_len, SQLITE_STATIC);
    }
    if (r->blob) {
        sqlite3_bind_blob(st, 10, r->blob_len ? r->blob : "", (int)r->blob_len, SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        __builtin_trap();
    }
    sqlite3_finalize(st);
}

/* Loads tensor 1 with and without its data; checks what any load must hold. */
static void load(sqlite3 *db, bool intact, const void *raw, size_t nbytes)
{
    for (int want = 0; want <= 1; want++) {
        struct trc__tensor t;
        char msg[512] = "";
        int rc = trc__tensor_load(db, "main", 1, want, &t, NULL, msg, sizeof msg);
        if (rc < 0 && strncmp(msg, "tensor 1: ", 10) != 0) {
            __builtin_trap(); /* a refusal names the tensor */
        }
        if (intact && (rc != 0 || (size_t)t.nbytes != nbytes ||
                       (want && (!t.raw || memcmp(t.raw, raw, nbytes) != 0)))) {
            __builtin_trap(); /* an undamaged row reads back exactly */
        }
        if (rc == 0 && want && t.has_data) {
            (void)(volatile uint8_t)((const uint8_t *)t.raw)[t.nbytes ? t.nbytes - 1 : 0];
        }
        trc__tensor_release(&t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR) {
        return 0;
    }
    const enum trc_dtype dt = (enum trc_dtype)(data[0] % TRC_DTYPE_COUNT);
    const int n_dims = 1 + data[1] % 4;
    const uint8_t damage = data[6], part = data[7];
    const int n_damage = data[8] % (MAX_DAMAGE + 1);
    if (size < HDR + 3 * (size_t)n_damage) {
        return 0;
    }
    const uint8_t *dmg = data + HDR, *fill = dmg + 3 * n_damage;
    const size_t n_fill = size - HDR - 3 * (size_t)n_damage;
    const size_t width = trc__dtype_size(dt);

    struct row r = {
        .id = 1, .dtype = trc__dtype_name(dt), .codec = TRC__CODEC, .partial = part & 1};
    int64_t shape[4];
    r.n_elems = 1;
    for (int d = 0; d < n_dims; d++) {
        shape[d] = data[2 + d] % 16;
        r.n_elems *= shape[d];
    }
    trc__shape_json(r.shape, sizeof r.shape, n_dims, shape);
    static int64_t known[16 * 16 * 16 * 16 / 2 + 1];
    int64_t n_stored = r.n_elems;
    if (r.partial) { /* every other element is known */
        r.n_known = n_stored = (r.n_elems + 1) / 2;
        for (int64_t i = 0; i < r.n_known; i++) {
            known[i] = 2 * i;
        }
        r.known = known;
        r.known_len = (size_t)r.n_known * sizeof known[0];
    }
    r.nbytes = n_stored * (int64_t)width;
    uint8_t *raw = malloc((size_t)r.nbytes + 1);
    if (!raw) {
        return 0;
    }
    for (int64_t i = 0; i < r.nbytes; i++) {
        raw[i] = n_fill ? fill[(size_t)i % n_fill] : 0;
    }
    trc__hash_hex(trc__hash(raw, (size_t)r.nbytes), r.hash);
    const uint8_t *blob = NULL;
    size_t blob_len = 0;
    char msg[256];
    if (trc__codec_encode(&g_scratch, 1, raw, (size_t)n_stored, width, &blob, &blob_len, msg,
                          sizeof msg) < 0) {
        __builtin_trap(); /* the codec takes any bytes */
    }
    uint8_t *b = malloc(blob_len + 1);
    if (!b) {
        free(raw);
        return 0;
    }
    memcpy(b, blob, blob_len);
    r.blob = b;
    r.blob_len = blob_len;

    bool intact = true;
    for (int k = 0; k < n_damage; k++) {
        const size_t pos = (size_t)dmg[3 * k] | (size_t)dmg[3 * k + 1] << 8;
        const uint8_t x = dmg[3 * k + 2];
        if ((damage & 1) && blob_len > 0 && x) {
            b[pos % blob_len] ^= x;
            intact = false;
        }
        if ((part & 2) && r.partial && r.known_len > 0 && x) {
            ((uint8_t *)known)[pos % r.known_len] ^= x;
            intact = false;
        }
    }
    if (damage & 2) {
        r.nbytes += 1 + (int64_t)(data[2] & 7);
    }
    if (damage & 4) {
        r.n_elems -= 1;
    }
    if (damage & 8 && data[5] & 1) { /* a dimension more, of size 0 */
        snprintf(r.shape, sizeof r.shape, "[%lld,0]", (long long)r.n_elems);
    } else if (damage & 8) { /* not JSON: the bracket is not closed */
        snprintf(r.shape, sizeof r.shape, "[%d,%d", data[3], data[4]);
    }
    if (damage & 16) {
        r.hash[data[5] % 16] = r.hash[data[5] % 16] == '0' ? '1' : '0';
    }
    if (damage & 32) {
        r.codec = "zstd";
    }
    if (damage & 64) {
        r.dtype = "q8_0";
    }
    if (damage & 128) {
        r.blob_len /= 2;
    }
    intact = intact && !(damage & ~1);
    if (part & 4) { /* row 2 holds the blob, row 1 names it */
        struct row holder = r;
        holder.id = 2;
        if (part & 16) {
            holder.hash[0] = holder.hash[0] == 'a' ? 'b' : 'a';
            intact = false;
        }
        insert(db_once(), &holder);
        r.blob = NULL;
        r.data_of = 2;
        if ((part & 8) && !(damage & 12)) { /* the same bytes seen flat */
            snprintf(r.shape, sizeof r.shape, "[%lld]", (long long)r.n_elems);
        }
        intact = intact && !r.partial; /* a partial row cannot borrow */
        insert(g_db, &r);
    } else {
        insert(db_once(), &r);
    }
    load(g_db, intact, raw, (size_t)n_stored * width);
    free(b);
    free(raw);
    return 0;
}
