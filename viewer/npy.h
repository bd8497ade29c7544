/*
 * NumPy .npy files (format version 1.0/2.0/3.0, little-endian float32 / float16 / int32, C
 * order): the exchange format for single tensors (info --tensor, export, import npy, tests).
 */
#ifndef VW_NPY_H
#define VW_NPY_H

#include <stddef.h>
#include <stdint.h>

/* Writes a float32 array with the given numpy shape (n_dims 1..4). Returns 0, or -1 with a
 * message "<path>: <reason>" in err. */
int vw_npy_write_f32(const char *path, const float *data, int n_dims, const int64_t *shape,
                     char *err, size_t errlen);

/* Reads a .npy file holding float32, float16 or float64 (converted to float32) in C order.
 * *data is malloc'd (free with free()). Rejects other dtypes, Fortran order, more than 4 dims,
 * and any header or size that does not fit the file. Returns 0 or -1 with err filled. */
int vw_npy_read_f32(const char *path, float **data, int *n_dims, int64_t shape[4], char *err,
                    size_t errlen);
/* The same from memory (for .npz members); name is used in messages. */
int vw_npy_parse_f32(const void *buf, size_t len, const char *name, float **data, int *n_dims,
                     int64_t shape[4], char *err, size_t errlen);

#endif
