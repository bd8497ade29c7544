#!/usr/bin/env python3
"""Records a one-op trace from Python through trc.h with ctypes: the structs below mirror
tracer/include/trc.h field by field (keep them in step). Usage:

    record_from_python.py path/to/liblltrace_trc.so OUT.trace
"""
import ctypes as C
import math
import sys

lib = C.CDLL(sys.argv[1])  # liblltrace_trc.so: the whole trc API as a shared library

class Tensor(C.Structure):
    _fields_ = [("role", C.c_char_p), ("dtype", C.c_int), ("n_dims", C.c_int),
                ("shape", C.c_int64 * 4), ("data", C.c_void_p),
                ("known", C.POINTER(C.c_int64)), ("n_known", C.c_int64)]

class Weight(C.Structure):
    _fields_ = [("role", C.c_char_p), ("name", C.c_char_p)]

class Op(C.Structure):
    _fields_ = [("name", C.c_char_p), ("kind", C.c_char_p), ("layer", C.c_int),
                ("pos0", C.c_int64), ("n_pos", C.c_int64), ("params_json", C.c_char_p),
                ("elapsed_ns", C.c_int64), ("tensors", C.POINTER(Tensor)), ("n_tensors", C.c_int),
                ("weights", C.POINTER(Weight)), ("n_weights", C.c_int)]

class Opts(C.Structure):
    _fields_ = [("overwrite", C.c_bool), ("queue_mb", C.c_int), ("zstd_level", C.c_int),
                ("synchronous", C.c_bool)]

lib.trc_writer_errmsg.restype = C.c_char_p
w = C.c_void_p()
err = C.create_string_buffer(256)
rc = lib.trc_writer_open(sys.argv[2].encode(), C.byref(Opts(overwrite=True)), C.byref(w), err, 256)
assert rc == 0, err.value
lib.trc_run_begin(w, b"python", None)
lib.trc_run_set_i64(w, b"n_layer", C.c_int64(1))
lib.trc_step_begin(w, C.c_int64(0), C.c_int64(0), C.c_int64(1))
x = (C.c_float * 4)(*[math.sin(i) for i in range(4)])
t = Tensor(role=b"out", dtype=0, n_dims=2, shape=(C.c_int64 * 4)(1, 4, 0, 0),
           data=C.cast(x, C.c_void_p))
op = Op(name=b"blk.0.l_out", kind=b"add", layer=0, pos0=0, n_pos=1, elapsed_ns=-1,
        tensors=C.pointer(t), n_tensors=1)
rc = lib.trc_op_record(w, C.byref(op))
assert rc == 0, lib.trc_writer_errmsg(w)
assert lib.trc_step_end(w, C.c_int64(-1)) == 0
assert lib.trc_writer_close(w) == 0
print("recorded %s from Python" % sys.argv[2])
