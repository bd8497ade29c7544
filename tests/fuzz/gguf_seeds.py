#!/usr/bin/env python3
"""Writes a small seed corpus for fuzz_gguf: usage gguf_seeds.py DIR.

Seeds: a minimal llama model (1 layer, n_embd 8) that passes the llama checks, the same in
GGUF v1, a file with every value type and nested arrays, a Q8_0 tensor, and an empty v3 header.
Generated rather than committed, so the corpus never goes stale against the format.
"""
import os
import struct
import sys


class G:
    def __init__(self, version=3):
        self.v1 = version == 1
        self.version = version
        self.kv = b""
        self.n_kv = 0
        self.tensors = []  # (name, ne, type, data)

    def n(self, x):  # a count or length: u32 in v1, u64 later
        return struct.pack("<I" if self.v1 else "<Q", x)

    def s(self, x):
        b = x.encode()
        return self.n(len(b)) + b

    def key(self, k, vtype, payload):
        self.kv += self.s(k) + struct.pack("<I", vtype) + payload
        self.n_kv += 1

    def u32(self, k, v):
        self.key(k, 4, struct.pack("<I", v))

    def f32(self, k, v):
        self.key(k, 6, struct.pack("<f", v))

    def str(self, k, v):
        self.key(k, 8, self.s(v))

    def arr(self, k, etype, elems):
        self.key(k, 9, struct.pack("<I", etype) + self.n(len(elems)) + b"".join(elems))

    def tensor(self, name, ne, ttype=0, data=None):
        if data is None:
            count = 1
            for d in ne:
                count *= d
            data = struct.pack("<%df" % count, *[0.01 * (i % 7) for i in range(count)])
        self.tensors.append((name, ne, ttype, data))

    def bytes(self):
        out = b"GGUF" + struct.pack("<I", self.version) + self.n(len(self.tensors)) + self.n(self.n_kv)
        out += self.kv
        off = 0
        infos = b""
        for name, ne, ttype, data in self.tensors:
            dims = b"".join(struct.pack("<I" if self.v1 else "<q", d) for d in ne)
            infos += self.s(name) + struct.pack("<I", len(ne)) + dims + struct.pack("<IQ", ttype, off)
            off += (len(data) + 31) // 32 * 32
        out += infos
        if self.tensors:
            out += b"\0" * (-len(out) % 32)
        for _, _, _, data in self.tensors:
            out += data + b"\0" * (-len(data) % 32)
        return out


def llama(version):
    g = G(version)
    g.str("general.architecture", "llama")
    for k, v in [("context_length", 32), ("embedding_length", 8), ("block_count", 1),
                 ("feed_forward_length", 16), ("attention.head_count", 2),
                 ("attention.head_count_kv", 1)]:
        g.u32("llama." + k, v)
    g.f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    g.str("tokenizer.ggml.model", "llama")
    g.arr("tokenizer.ggml.tokens", 8, [g.s(t) for t in ["<unk>", "<s>", "</s>", "\u2581a"]])
    g.arr("tokenizer.ggml.scores", 6, [struct.pack("<f", -i) for i in range(4)])
    g.arr("tokenizer.ggml.token_type", 5, [struct.pack("<i", t) for t in [2, 3, 3, 1]])
    g.u32("tokenizer.ggml.bos_token_id", 1)
    g.tensor("token_embd.weight", [8, 4])
    g.tensor("output_norm.weight", [8])
    for name, ne in [("attn_norm", [8]), ("attn_q", [8, 8]), ("attn_k", [8, 4]),
                     ("attn_v", [8, 4]), ("attn_output", [8, 8]), ("ffn_norm", [8]),
                     ("ffn_gate", [8, 16]), ("ffn_up", [8, 16]), ("ffn_down", [16, 8])]:
        g.tensor("blk.0.%s.weight" % name, ne)
    return g.bytes()


def values():
    g = G(3)
    for t, fmt, v in [(0, "B", 200), (1, "b", -3), (2, "H", 60000), (3, "h", -2), (4, "I", 7),
                      (5, "i", -7), (6, "f", 0.5), (7, "B", 1), (10, "Q", 1 << 40),
                      (11, "q", -(1 << 40)), (12, "d", 2.5)]:
        g.key("v.t%d" % t, t, struct.pack("<" + fmt, v))
    g.str("v.s", "h\u00e9llo")
    g.u32("general.alignment", 64)
    inner = struct.pack("<I", 5) + g.n(2) + struct.pack("<ii", 1, -1)
    strs = struct.pack("<I", 8) + g.n(1) + g.s("x")
    g.arr("v.nested", 9, [inner, strs])
    g.tensor("t", [4, 2])
    return g.bytes()


def q8():
    g = G(3)
    block = struct.pack("<e", 0.5) + bytes(range(32))
    g.tensor("q", [32, 2], 8, block * 2)
    return g.bytes()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gguf_seeds.py DIR")
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    seeds = {"llama_v3.gguf": llama(3), "llama_v1.gguf": llama(1), "values.gguf": values(),
             "q8.gguf": q8(), "empty.gguf": G(3).bytes()}
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
