-- schema/trace.sql - the lltrace trace format, version 4: the single definition of every table,
-- index and view of a trace file. It is embedded into the tracer at build time
-- (schema/embed.cmake -> trc__schema_sql) and executed once by the writer on a new, empty file;
-- nothing else creates tables. Readers check meta.schema_version: versions 1 to 4 are read, a
-- newer one is refused with both version numbers in the message, one below 1 is refused. The
-- older versions are read as they are, with the same queries:
--   * version 3 has no column tensors.data_of: every row with data holds them in its own blob;
--   * version 2 has tables op_tensors (op_id, role, tensor_id) and op_weights (op_id, role,
--     name), one row per tensor or weight of an op, where version 3 has the columns
--     ops.tensors and ops.weights and views op_tensors and op_weights with the same columns;
--   * version 1 is version 2 whose tensor data are always ONE zstd frame, the one-frame case of
--     version 2's codec (see tensors below).
--
-- Conventions used below:
--   * "writer" is the tracer library (tracer/trc_writer.c); "engine" is whatever program calls
--     trc.h (our engine, an importer, examples/instrument-your-engine) and supplies the value.
--   * Times: *_ns are durations in nanoseconds (INTEGER); *_at are UTC wall-clock timestamps as
--     ISO-8601 text "YYYY-MM-DDTHH:MM:SS.mmmZ".
--   * Shapes are JSON arrays in row-major (numpy) order: the last dimension is contiguous, e.g.
--     activations are [n_tokens, n_embd], attention scores [n_head, n_tokens, n_kv].
--   * Tensor data are little-endian. Element widths: f32 4, f16 2, bf16 2, i32 4 bytes.
--   * Ids are assigned by the writer: runs.id and ops.id count from 1 in call order.
--   * Transactions: the writer commits once per completed step (the steps row, its ops and their
--     tensors go in together), so a crash loses at most the step in progress. Run metadata and
--     tokens given between steps are committed at the next step begin, run end or close.
--   * Durability: WAL journal with synchronous=NORMAL while recording. A killed writer process
--     (SIGKILL, crash) loses at most the step in progress; an OS crash or power loss may also lose
--     the last committed steps, never the file's integrity. A closed trace is one file (the
--     writer leaves WAL mode at close). Pages are 64 KiB, or as the engine asks
--     (trc_writer_opts.page_size; lltrace run uses 8 KiB when no op is recorded in full, 32 KiB
--     when only some are). While recording, a second connection of the writer copies committed
--     steps from the WAL into the file (passive checkpoints), so the file holds most of the
--     trace before it is closed.
--   * The statements after the line "-- @lltrace:at-close" (at the end) are run by the writer
--     when it closes the file, not when it creates it: an index whose upkeep row by row would
--     cost a random page write per op at every step's commit. A trace whose writer was killed
--     lacks it: every query still works, by scanning.
--
-- Several views call the tensor SQL functions (t_at, t_slice, ...). They are registered by the
-- tracer's reader and by the loadable extension (".load lltrace_sqlext" in the sqlite3 shell);
-- without them those views fail with "no such function", the tables stay readable.

PRAGMA application_id = 1280070738; -- 0x4C4C5452, "LLTR": lets file(1)-style tools identify traces
PRAGMA user_version = 4;            -- mirrors meta.schema_version

-- Key/value facts about the file itself, written by the writer when it creates the file.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL, -- see the keys below
    value TEXT                       -- always text; schema_version is a decimal integer
);
-- schema_version: this file's format version (4). The writer also stores tool ("lltrace"),
-- tool_version (e.g. "0.1.0"), build_git (git describe of the tracer's build), build_type,
-- build_compiler, build_flags (the C flags of the tracer library), created_at, zstd_version,
-- sqlite_version and hash ("lt64": the content hash used by tensors.hash, see below).
INSERT INTO meta (key, value) VALUES ('schema_version', '4');

-- One row per run (one generation, or one imported dump). Written by the writer at
-- trc_run_begin (id, source, status 'running', started_at), completed by the engine through
-- trc_run_set_str/_i64/_f64 (every other column; keys are the column names) and closed at
-- trc_run_end (status, ended_at). A run whose ended_at is NULL was never ended: it is crashed
-- (or still being written; the reader tells the two apart by the writer's lock).
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY, -- run id, 1, 2, ... (writer)
    source          TEXT NOT NULL,       -- who produced the run: 'lltrace', 'llama.cpp-text',
                                         -- 'llama.cpp-logits', 'npy', 'example', ... (engine)
    status          TEXT NOT NULL,       -- 'running' until ended, then 'complete' or 'error'
    started_at      TEXT NOT NULL,       -- UTC time of trc_run_begin (writer)
    ended_at        TEXT,                -- UTC time of trc_run_end; NULL = no end marker
    record_rules    TEXT,                -- JSON array of the recording rules in force, in order,
                                         -- e.g. ["full","stats:blk.*"]; [] = default (writer)
    -- the model
    model_path      TEXT,    -- path of the model file as given to the engine
    model_sha256    TEXT,    -- lower-case hex SHA-256 of the model file; weights referenced by
                             -- op_weights are the GGUF tensors of this exact file
    arch            TEXT,    -- general.architecture, e.g. 'llama'
    n_layer         INTEGER, -- number of transformer blocks
    n_embd          INTEGER, -- width of the residual stream
    n_head          INTEGER, -- query heads
    n_head_kv       INTEGER, -- key/value heads (GQA when < n_head)
    head_dim        INTEGER, -- n_embd / n_head
    n_rot           INTEGER, -- rotary dimensions per head (<= head_dim)
    n_ff            INTEGER, -- FFN hidden width
    n_vocab         INTEGER, -- vocabulary size (length of a logits row)
    n_ctx           INTEGER, -- context length the engine allocated (KV-cache rows)
    rope_theta      REAL,    -- RoPE base frequency (e.g. 10000.0)
    rope_freq_scale REAL,    -- RoPE position scale (1.0 = none)
    rope_mode       TEXT,    -- 'norm' (adjacent pairs, llama) or 'neox' (half-split pairs)
    rms_eps         REAL,    -- epsilon of RMS norm
    weight_type     TEXT,    -- dominant weight storage type, e.g. 'q8_0', 'f16', 'f32'
    kv_type         TEXT,    -- KV-cache element type, 'f32' or 'f16'
    -- the input
    prompt          TEXT,    -- the user's prompt, verbatim
    chat_template   TEXT,    -- name or source of the chat template applied, NULL when none
    rendered_prompt TEXT,    -- the prompt after the template: the text actually tokenized
    -- the sampler
    temp            REAL,    -- temperature; 0 = greedy
    top_k           INTEGER, -- 0 = disabled
    top_p           REAL,    -- 1.0 = disabled
    seed            INTEGER, -- RNG seed
    -- the execution
    n_threads       INTEGER, -- worker threads used by the engine
    faults          TEXT,    -- injected faults, comma-separated 'name=value' (e.g. 'rope=neox'),
                             -- NULL or '' when none
    build_version   TEXT,    -- engine version, e.g. '0.1.0'
    build_commit    TEXT,    -- git describe of the engine's build
    build_compiler  TEXT,    -- e.g. 'GNU 12.2.0'
    build_flags     TEXT,    -- C flags of the engine's build
    simd            TEXT     -- kernel path chosen at run time, e.g. 'avx2', 'scalar'
);

-- Run settings with no column above (trc_run_set_* with another key), one row per key. (engine)
CREATE TABLE run_params (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    key    TEXT NOT NULL,  -- the key as given
    value,                 -- INTEGER, REAL or TEXT as given (trc_run_set_i64/_f64/_str)
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Every prompt and generated token, in sequence order. (engine, trc_token_add)
CREATE TABLE tokens (
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    idx       INTEGER NOT NULL, -- position of the token in the sequence, 0-based
    token_id  INTEGER NOT NULL, -- vocabulary id
    piece     TEXT,             -- the token's text piece (as the tokenizer stores it)
    is_prompt INTEGER NOT NULL, -- 1 for prompt tokens, 0 for sampled ones
    is_bos    INTEGER NOT NULL, -- 1 for the beginning-of-sequence token
    prob      REAL,             -- sampling probability of a generated token; NULL for prompt
    logit     REAL,             -- its logit; NULL for prompt tokens
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- One row per completed decode call; step 0 is the prompt batch. The row is inserted in the
-- same transaction as the step's ops, at trc_step_end: a step is in this table only if all of
-- it is. (writer)
CREATE TABLE steps (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    step       INTEGER NOT NULL, -- 0, 1, 2, ... as given to trc_step_begin
    pos0       INTEGER NOT NULL, -- absolute position of the step's first token
    n_tokens   INTEGER NOT NULL, -- tokens processed by the step (prompt length for step 0)
    elapsed_ns INTEGER,          -- wall time of the step as measured by the engine; NULL = -1
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

-- One row per recorded op, in execution order. Ops at level 'none' are not stored, but they
-- still consume a seq number, so gaps in seq show where ops were skipped. (writer, from
-- trc_op_record)
CREATE TABLE ops (
    id         INTEGER PRIMARY KEY, -- op id, 1, 2, ... across the file (writer)
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    step       INTEGER NOT NULL,    -- the step the op ran in
    seq        INTEGER NOT NULL,    -- execution order within the step, 0-based
    layer      INTEGER,             -- transformer block index; NULL for ops outside blocks
    kind       TEXT NOT NULL,       -- rms_norm, matmul, rope, attn_scores, softmax, attn_ctx,
                                    -- add, swiglu, get_rows, cache_write, ... (engine)
    name       TEXT NOT NULL,       -- canonical name (DESIGN.md), e.g. 'blk.3.rope_q'
    pos0       INTEGER,             -- first absolute position covered by the op's rows
    n_pos      INTEGER,             -- number of positions (rows)
    params     TEXT,                -- JSON object of parameters: eps, theta, mode, n_rot,
                                    -- scale, ... (engine); NULL when none
    elapsed_ns INTEGER,             -- engine time spent in the op; NULL when not measured
    level      TEXT NOT NULL,       -- 'stats' or 'full': what the recording rules kept
    weights    TEXT,                -- JSON object role -> GGUF tensor name of the weights the op
                                    -- used, e.g. '{"weight":"blk.0.attn_q.weight"}'; NULL when
                                    -- none (engine). The view op_weights has one row per weight.
    tensors    TEXT                 -- JSON object role -> tensors.id of the op's tensors, in the
                                    -- order the engine gave them, e.g. '{"in0":17,"out":18}';
                                    -- NULL when none (writer). The view op_tensors has one row
                                    -- per tensor.
);
-- ops_by_step (run_id, step, seq) and ops_by_name (name, run_id, step): built at close, see the
-- end of this file. Without them (a trace being written, or whose writer was killed), a step's
-- ops are still found quickly by id: ids grow with (run_id, step, seq).

-- The tensors of an op by role, one row per (op, role) of ops.tensors: 'in0', 'in1', ... inputs;
-- 'out' the result; for rope ops also 'pos' (i32 [n_pos] positions), 'cos' and 'sin' (f32
-- [n_pos, n_rot/2] tables actually used); for cache ops the rows written. (writer) Several ops
-- often hold the same tensor: an input that is an earlier op's output (attn_q's in0 is
-- attn_norm's out) is one row of tensors, found by content or, when the engine says so
-- (trc_op_record_linked), by that link without hashing. Version 2 files have a table of this
-- name and these columns instead: about 1000 rows per decode step of a 22-layer model, 0.8 us
-- each on the recording's critical path. "Which ops hold tensor T" scans either.
CREATE VIEW op_tensors AS
SELECT o.id    AS op_id,
       t.key   AS role,
       t.value AS tensor_id
FROM ops o, json_each(o.tensors) t;

-- Weights used by an op, referenced by GGUF tensor name in the model runs.model_sha256
-- identifies; never copied into the trace: one row per (op, role) of ops.weights. Version 2
-- files have a table of this name and these columns instead (200 rows per decode step of a
-- 22-layer model, 2 us each on the recording's critical path).
CREATE VIEW op_weights AS
SELECT o.id    AS op_id,
       w.key   AS role, -- 'weight', 'bias', ...
       w.value AS name  -- GGUF tensor name, e.g. 'blk.0.attn_q.weight'
FROM ops o, json_each(o.weights) w;

-- Tensor contents, stored once per distinct (hash, dtype, shape): the cos/sin tables of a step
-- are shared by all its layers. A tensor recorded at level 'stats' has a row too (hash and
-- stats, no data), so equal tensors are found whatever their level; when a later op records
-- the same tensor at level 'full', that row gets its data. Partial tensors (imports of printed
-- dumps, which hold only some elements) are never deduplicated. (writer)
--
-- The same bytes seen under two shapes are two rows whose data are stored once: the second row
-- has data and codec NULL and data_of naming the first, e.g. rope_q's in0 ([n_tokens, n_head,
-- head_dim]) is attn_q's out ([n_tokens, n_embd]) and cache_k's row is rope_k's out flattened.
-- The writer does this for the tensors an engine links to another (trc_op_record_linked). The
-- row named by data_of holds its own data (its data_of is NULL) and has the same dtype, nbytes
-- and hash, and neither row is partial; readers decode its blob as the borrowing row's elements
-- and verify them against the borrowing row's hash. To read data in SQL whatever the row:
-- coalesce(t.data, (SELECT d.data FROM tensors d WHERE d.id = t.data_of)).
--
-- Codec 'shuffle-zstd' (data): the n_stored * width raw little-endian bytes are byte-shuffled
-- by element width (all elements' byte 0, then all byte 1, ... up to byte width-1): byte plane
-- b is bytes [b * n_stored, (b + 1) * n_stored). The data are a sequence of zstd frames
-- (RFC 8878) concatenated, a valid zstd stream that `zstd -d` decodes to the shuffled bytes:
-- one frame per byte plane when width > 1 and n_stored >= 1024, else one frame for all bytes
-- (version 1 files: always one frame). Every frame has its Frame_Content_Size and its
-- Content_Checksum (low 32 bits of XXH64 of the frame's content, seed 0). A frame may hold
-- only Raw blocks (Block_Type 0): the writer stores a plane so when its bytes look random
-- (sampled byte histogram; at the default zstd_level only), else compresses it with zstd.
-- Readers check, in order: n_elems = product(shape); nbytes = (partial ? n_known : n_elems) *
-- width; every frame is a zstd frame (not skippable) with content size and checksum; the sum of
-- the frames' content sizes = nbytes; the frames decode (checksums included); lt64(unshuffled
-- bytes) = hash. Readers accept any number of frames whose sizes add up. Any failure is
-- "corrupt tensor data" naming the tensor.
--
-- Hash 'lt64' (hash): 64-bit, over the raw (unshuffled) bytes. State: four 64-bit lanes
-- v = {P1+P2, P2, 0, -P1} (mod 2^64) with P1 = 0x9E3779B185EBCA87, P2 = 0xC2B2AE3D27D4EB4F,
-- P3 = 0x165667B19E3779F9. The input, zero-padded to a multiple of 32 bytes, is read as
-- little-endian 64-bit words; word j updates lane j mod 4: v = rotl64(v + w * P2, 31) * P1.
-- Then h = rotl(v0,1) + rotl(v1,7) + rotl(v2,12) + rotl(v3,18) + len * P3, and the avalanche
-- h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32. Stored as 16 lower-case hex digits.
--
-- Stats are computed from every stored element when the op is recorded, at level 'stats' as
-- well as 'full': min/max/mean/rms over the finite elements (NaN and +-Inf are only counted),
-- NULL when there is none.
CREATE TABLE tensors (
    id       INTEGER PRIMARY KEY, -- tensor id (writer)
    dtype    TEXT NOT NULL,       -- 'f32', 'f16', 'bf16' or 'i32'
    shape    TEXT NOT NULL,       -- JSON array, row-major, 1..4 dims, e.g. '[6,64]'
    n_elems  INTEGER NOT NULL,    -- product of shape
    nbytes   INTEGER NOT NULL,    -- raw size of the stored elements in bytes (before codec)
    hash     TEXT NOT NULL,       -- lt64 of those raw bytes, 16 hex digits
    codec    TEXT,                -- 'shuffle-zstd', or NULL when data is NULL
    min      REAL,                -- smallest finite element
    max      REAL,                -- largest finite element
    mean     REAL,                -- mean of the finite elements
    rms      REAL,                -- sqrt(mean of squares) of the finite elements
    n_nan    INTEGER NOT NULL,    -- number of NaN elements
    n_inf    INTEGER NOT NULL,    -- number of +-Inf elements
    partial  INTEGER NOT NULL DEFAULT 0, -- 1 when only some elements are known
    n_known  INTEGER,             -- partial: number of known elements; NULL otherwise
    known    BLOB,                -- partial: n_known little-endian int64 flat row-major indices,
                                  -- strictly increasing, uncompressed; NULL otherwise
    data     BLOB,                -- the codec's output; NULL when only stats were recorded or
                                  -- when data_of names the row that holds them
    data_of  INTEGER              -- tensors.id of the row holding this row's bytes (same dtype,
                                  -- nbytes and hash, another shape); NULL otherwise (writer)
);
-- No index on hash: the writer guarantees that (hash, dtype, shape) is unique among the rows with
-- partial = 0 (its in-memory map knows every row it wrote), and "which tensors equal this one"
-- (WHERE hash = ...) or "which contents repeat" (GROUP BY hash) scans the table. A UNIQUE index
-- built at close to enforce it cost 7 ms of every close (33 steps).

-- ---- views: the common questions as one SELECT ---------------------------------------------

-- Runs with their status resolved (a run with no end marker is 'crashed'), the number of
-- completed steps, the last completed step and the generated text.
CREATE VIEW v_runs AS
SELECT r.id AS run_id, r.source, r.model_path, r.arch,
       CASE WHEN r.ended_at IS NULL THEN 'crashed' ELSE r.status END AS status,
       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS n_steps,
       (SELECT max(step) FROM steps s WHERE s.run_id = r.id) AS last_step,
       (SELECT count(*) FROM ops o WHERE o.run_id = r.id) AS n_ops,
       r.prompt,
       (SELECT group_concat(piece, '') FROM
            (SELECT piece FROM tokens t WHERE t.run_id = r.id AND t.is_prompt = 0
             ORDER BY t.idx)) AS generated,
       r.started_at, r.ended_at
FROM runs r;

-- Tokens in order with their pieces, and the text so far is easy to rebuild from them.
CREATE VIEW v_tokens AS
SELECT run_id, idx, token_id, piece, is_prompt, is_bos, prob, logit
FROM tokens ORDER BY run_id, idx;

-- Every op with the stats of its output tensor, in execution order.
CREATE VIEW v_op_stats AS
SELECT o.run_id, o.step, o.seq, o.layer, o.kind, o.name, o.id AS op_id, o.pos0, o.n_pos,
       o.level, o.elapsed_ns, t.id AS tensor_id, t.dtype, t.shape, t.min, t.max, t.mean,
       t.rms, t.n_nan, t.n_inf, t.nbytes, length(t.data) AS stored_bytes
FROM ops o
LEFT JOIN tensors t ON t.id = (SELECT value FROM json_each(o.tensors) WHERE key = 'out')
ORDER BY o.run_id, o.step, o.seq;

-- Every tensor of every op (inputs included), with stats and sizes.
CREATE VIEW v_op_tensors AS
SELECT o.run_id, o.step, o.seq, o.layer, o.name, o.id AS op_id, ot.key AS role,
       t.id AS tensor_id, t.dtype, t.shape, t.n_elems, t.min, t.max, t.mean, t.rms, t.n_nan,
       t.n_inf, t.nbytes, length(t.data) AS stored_bytes, t.hash, t.partial, t.data_of
FROM ops o, json_each(o.tensors) ot
JOIN tensors t ON t.id = ot.value;

-- Ops with a NaN or an Inf in any of their tensors.
CREATE VIEW v_nonfinite AS
SELECT * FROM v_op_tensors WHERE n_nan > 0 OR n_inf > 0 ORDER BY run_id, step, seq;

-- RMS of the residual stream after each block (l_out), one row per layer and step.
CREATE VIEW v_residual_rms AS
SELECT run_id, step, layer, rms, max(abs(min), abs(max)) AS maxabs, op_id
FROM v_op_stats WHERE name LIKE 'blk.%.l_out' ORDER BY run_id, step, layer;

-- RoPE: one row per rope op and row of its output, with the position used and the cos and sin
-- rows (JSON arrays of n_rot/2 numbers) the engine applied. Needs the tensor SQL functions.
-- pos falls back to pos0 + row when the positions were not stored in full.
CREATE VIEW v_rope AS
WITH RECURSIVE rr (op_id, row, n) AS (
    SELECT id, 0, n_pos FROM ops WHERE kind = 'rope' AND n_pos > 0
    UNION ALL
    SELECT op_id, row + 1, n FROM rr WHERE row + 1 < n
)
SELECT o.run_id, o.step, o.layer, o.name, o.id AS op_id, rr.row,
       coalesce(t_at((SELECT value FROM json_each(o.tensors) WHERE key = 'pos'), rr.row),
                o.pos0 + rr.row) AS pos,
       t_slice((SELECT value FROM json_each(o.tensors) WHERE key = 'cos'), rr.row) AS cos,
       t_slice((SELECT value FROM json_each(o.tensors) WHERE key = 'sin'), rr.row) AS sin
FROM rr
JOIN ops o ON o.id = rr.op_id
ORDER BY o.run_id, o.step, o.seq, rr.row;

-- ---- built at close -------------------------------------------------------------------------
-- Everything below runs when the writer closes the trace, in one transaction (see the
-- conventions at the top). Traces written by earlier builds also have the indexes
-- tensors_dedupe (hash, dtype, shape) and op_tensors_by_tensor (tensor_id); no reader needs them.
-- @lltrace:at-close
CREATE INDEX ops_by_step ON ops (run_id, step, seq);
CREATE INDEX ops_by_name ON ops (name, run_id, step);
