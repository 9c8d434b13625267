/* h5store.h — the gradient store: per-example gradient features of row
 * blocks, durable and reusable (training-data attribution).
 *
 * Model of use
 * ------------
 * A store is a directory (train_data.store, default OUTPUT.store/). Each
 * feature set — one model (or checkpoint), one loss, one parameter
 * selection, one projection and seed — has a subdirectory named by the
 * first 16 hex digits of its provenance hash, holding:
 *
 *   provenance.txt   "key = value" lines: model file and content hash,
 *                    checkpoint, loss, layers, projection, dimension, seed,
 *                    data file and split (written once, atomically)
 *   <split>_<row0>_<n>.h5   one block of rows:
 *     root attrs: format = "attrib-features", format_version = 1,
 *                 provenance (the hash, 64 hex), row0, rows, dim
 *     /features (rows, dim) float32, chunked by up to 256 rows, not compressed (they do not compress)
 *     /prob     (rows) float64   p of the label (TRAK's 1 - p weights)
 *
 * A block file is written as NAME.tmp, closed, fsync'd and renamed
 * (h5_file_commit): a block under its final name is complete. A later job
 * whose feature set and rows match reuses the blocks instead of
 * recomputing them; a block whose provenance or shape does not match is
 * not used (and is rewritten).
 *
 * Serial HDF5: each block is written by the one rank that computed it and
 * may be read by any rank.
 */
#ifndef ATTRIB_H5STORE_H
#define ATTRIB_H5STORE_H

#include <stdint.h>

#include "core.h"

/* Rank 0, before blocks are written: create a feature set's directory and
 * its provenance.txt (atomically) unless present. Returns 0 or AT_EIO. */
int h5_store_prepare_dir(const char *dir, const char *prov_text, at_err *err);

/* mkdir -p of path's parent directories. Returns 0 or AT_EIO. */
int h5_mkdir_parents(const char *path, at_err *err);

/* Write a block: F (rows, dim) float32, prob (rows) or NULL (stored as
 * NaN). Parent directories are created. Returns 0 or AT_EIO naming the
 * file. */
int h5_store_write(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                   int64_t dim, const float *F, const double *prob, at_err *err);

/* 1 when path is a complete block of this provenance, row0, rows and dim;
 * 0 when absent or not matching (never an error: it is recomputed). */
int h5_store_has(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                 int64_t dim);

/* Read a block written by h5_store_write with these values; F (rows, dim),
 * prob (rows) or NULL. Returns 0 or AT_EIO naming the file and what does
 * not match. */
int h5_store_read(const char *path, const char *prov_hash, int64_t row0, int64_t rows,
                  int64_t dim, float *F, double *prob, at_err *err);

#endif
