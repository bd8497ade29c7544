#!/usr/bin/env python3
"""Read an lltrace trace from Python with only the standard library (+ zstd).

A trace is an SQLite file (schema/trace.sql documents every column). Tensor data are stored as
zstd frames (one per byte plane, or one; each with content size and checksum) of the raw
little-endian bytes after a byte shuffle by element width; this script undoes both, checks the
lt64 content hash, and prints values. It reads trace format versions 1 to 3.

Decompression uses the `zstandard` module when installed (pip install zstandard), else the
`zstd` command-line tool through subprocess (which decodes concatenated frames by itself).

    read_trace.py TRACE                      runs, steps and ops of the trace
    read_trace.py TRACE --op output --step 0 [--role out]   one tensor, decoded
    read_trace.py TRACE --check              decode and verify every stored tensor
"""
import argparse
import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import urllib.parse

# Newest format read. Version 2 differs only in op_tensors and op_weights (tables, not views of
# ops.tensors and ops.weights); version 1 also in always having one zstd frame per tensor.
SCHEMA_VERSION = 4
WIDTH = {"f32": 4, "f16": 2, "bf16": 2, "i32": 4}
M64 = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9


def lt64(data: bytes) -> str:
    """The trace's content hash (schema/trace.sql, table tensors), as 16 hex digits."""
    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & M64
    v = [(P1 + P2) & M64, P2, 0, (-P1) & M64]
    padded = data + bytes((-len(data)) % 32)
    words = struct.unpack("<%dQ" % (len(padded) // 8), padded)
    for j, w in enumerate(words):
        v[j % 4] = (rotl((v[j % 4] + w * P2) & M64, 31) * P1) & M64
    h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18) + len(data) * P3) & M64
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return "%016x" % h


def zstd_decompress(blob: bytes, size: int) -> bytes:
    """Decodes a sequence of zstd frames (checksums verified) and concatenates their contents."""
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        parts, rest = [], blob
        if not rest:
            raise ValueError("bad zstd frame: empty blob")
        while rest:  # one decompressobj per frame: it stops at the frame's end
            d = zstandard.ZstdDecompressor().decompressobj()
            try:
                parts.append(d.decompress(rest))
            except zstandard.ZstdError as e:
                raise ValueError("bad zstd frame: %s" % e)
            if not d.eof:
                raise ValueError("bad zstd frame: truncated")
            rest = d.unused_data
            if sum(len(p) for p in parts) > size:
                break
        return b"".join(parts)
    if not shutil.which("zstd"):
        raise RuntimeError("need the zstandard module or the zstd command")
    out = subprocess.run(["zstd", "-d", "-c", "-q"], input=blob, capture_output=True)
    if out.returncode != 0:
        raise ValueError("bad zstd frame: " + out.stderr.decode(errors="replace").strip())
    return out.stdout


def unshuffle(shuf: bytes, width: int) -> bytes:
    """Inverse of the byte shuffle: byte b of element i is at shuf[b * n + i]."""
    n = len(shuf) // width
    raw = bytearray(len(shuf))
    for b in range(width):
        raw[b::width] = shuf[b * n:(b + 1) * n]
    return bytes(raw)


def values(raw: bytes, dtype: str) -> list:
    n = len(raw) // WIDTH[dtype]
    if dtype == "f32":
        return list(struct.unpack("<%df" % n, raw))
    if dtype == "f16":
        return list(struct.unpack("<%de" % n, raw))
    if dtype == "i32":
        return list(struct.unpack("<%di" % n, raw))
    halves = struct.unpack("<%dH" % n, raw)  # bf16: the top half of an f32
    return list(struct.unpack("<%df" % n, struct.pack("<%dI" % n, *[h << 16 for h in halves])))


def decode(conn, tensor_id: int):
    """Returns (shape, dtype, values, known) for a tensor, verified; known is None unless the
    tensor is partial (then values[k] is the element at flat index known[k])."""
    data_of = "data_of" if has_data_of(conn) else "NULL"
    row = conn.execute("SELECT dtype, shape, n_elems, nbytes, hash, codec, partial, n_known, "
                       "known, data, %s FROM tensors WHERE id = ?" % data_of,
                       (tensor_id,)).fetchone()
    if row is None:
        raise KeyError("tensor %d: no such tensor" % tensor_id)
    dtype, shape, n_elems, nbytes, hsh, codec, partial, n_known, known, data, data_of = row
    if data is None and data_of is not None:
        # version 4: the same bytes under another shape, stored once in row data_of
        src = conn.execute("SELECT dtype, nbytes, hash, codec, data FROM tensors "
                           "WHERE id = ? AND data_of IS NULL AND partial = 0",
                           (data_of,)).fetchone()
        if src is None or src[:3] != (dtype, nbytes, hsh) or src[4] is None or partial:
            raise ValueError("tensor %d: data_of names tensor %d, which does not hold its bytes"
                             % (tensor_id, data_of))
        codec, data = src[3], src[4]
    shape = json.loads(shape)
    n = 1
    for d in shape:
        n *= d
    n_stored = n_known if partial else n
    if dtype not in WIDTH or n != n_elems or nbytes != n_stored * WIDTH[dtype]:
        raise ValueError("tensor %d: sizes do not fit the shape" % tensor_id)
    if data is None:
        raise LookupError("tensor %d: only stats were recorded" % tensor_id)
    if codec != "shuffle-zstd":
        raise ValueError("tensor %d: unknown codec %r" % (tensor_id, codec))
    shuf = zstd_decompress(bytes(data), nbytes)
    if len(shuf) != nbytes:
        raise ValueError("tensor %d: decoded %d bytes, want %d" % (tensor_id, len(shuf), nbytes))
    raw = unshuffle(shuf, WIDTH[dtype])
    if lt64(raw) != hsh:
        raise ValueError("tensor %d: content hash mismatch" % tensor_id)
    idx = list(struct.unpack("<%dq" % n_known, known)) if partial else None
    return shape, dtype, values(raw, dtype), idx


def has_data_of(conn) -> bool:
    """Whether tensors has the column data_of (schema version 4 and later)."""
    return any(r[1] == "data_of" for r in conn.execute("PRAGMA table_info(tensors)"))


def open_trace(path: str):
    uri = "file:%s?mode=ro" % urllib.parse.quote(path)
    conn = sqlite3.connect(uri, uri=True)
    try:
        (ver,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        sys.exit("%s: not an lltrace trace" % path)
    if int(ver) > SCHEMA_VERSION:
        sys.exit("%s: trace schema version %s is newer than this reader supports (%d)"
                 % (path, ver, SCHEMA_VERSION))
    if int(ver) < 1:
        sys.exit("%s: trace schema version %s is older than the oldest this reader reads (1)"
                 % (path, ver))
    return conn


def summary(conn):
    for run in conn.execute("SELECT run_id, source, status, n_steps, n_ops, prompt, generated "
                            "FROM v_runs"):
        print("run %d (%s): %s, %d steps, %d ops, prompt %r -> %r" % run)
    for name, shape, dtype, mn, mx in conn.execute(
            "SELECT name, shape, dtype, min, max FROM v_op_stats WHERE step = 0 ORDER BY seq"):
        print("  %-24s %-10s %-5s min %-10.4g max %.4g" % (name, shape, dtype or "-",
                                                           mn or 0, mx or 0))


def show(conn, op, step, role):
    row = conn.execute("SELECT ot.tensor_id FROM ops o JOIN op_tensors ot ON ot.op_id = o.id "
                       "WHERE o.name = ? AND o.step = ? AND ot.role = ?", (op, step, role)).fetchone()
    if row is None:
        sys.exit("no tensor '%s' of op '%s' at step %d" % (role, op, step))
    shape, dtype, vals, known = decode(conn, row[0])
    print("%s %s (step %d): %s %s" % (op, role, step, dtype, shape))
    cols = shape[-1]
    for r in range(0, len(vals), cols):
        print("  " + " ".join("%9.4f" % v for v in vals[r:r + cols]))
    if known is not None:
        print("  (partial: flat indices %s)" % known)


def check(conn):
    cond = "data IS NOT NULL" + (" OR data_of IS NOT NULL" if has_data_of(conn) else "")
    ids = [r[0] for r in conn.execute("SELECT id FROM tensors WHERE " + cond)]
    for tid in ids:
        decode(conn, tid)
    # the residual adds must hold exactly: out = in0 + in1 (f32 addition, checked in f32)
    n_add = 0
    for (op_id,) in conn.execute("SELECT id FROM ops WHERE kind = 'add'"):
        t = {role: decode(conn, tid)[2] for role, tid in conn.execute(
            "SELECT role, tensor_id FROM op_tensors WHERE op_id = ?", (op_id,))}
        if "in1" in t:
            f32 = [struct.unpack("<f", struct.pack("<f", a + b))[0]
                   for a, b in zip(t["in0"], t["in1"])]
            if f32 != t["out"]:
                sys.exit("op %d: out != in0 + in1" % op_id)
            n_add += 1
    assert lt64(b"abc") == "5241a3c98ca91b2b", "lt64 disagrees with the C implementation"
    print("ok: %d tensors decoded and verified, %d adds consistent" % (len(ids), n_add))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--op")
    ap.add_argument("--step", type=int, default=0)
    ap.add_argument("--role", default="out")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    try:
        import zstandard  # noqa: F401
    except ImportError:
        if not shutil.which("zstd"):
            print("read_trace.py: neither the zstandard module nor the zstd tool is available",
                  file=sys.stderr)
            return 77
    conn = open_trace(a.trace)
    if a.check:
        check(conn)
    elif a.op:
        show(conn, a.op, a.step, a.role)
    else:
        summary(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
