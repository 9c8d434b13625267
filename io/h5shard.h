/* h5shard.h — shard files: finished work units, durable on disk.
 *
 * Model of use
 * ------------
 * A run keeps its finished work in a shard directory next to its results
 * file (OUT.shards/). Each rank writes the units it finished since its last
 * checkpoint to one shard file of its own:
 *
 *   root attrs: format = "attrib-shard", format_version = 1,
 *               plan_hash (the plan the units belong to)
 *   /units     (K) int64     unit ids, in the order they were computed
 *   /offsets   (K + 1) int64 row offsets of each unit in /partials
 *   /partials  (rows, D) float64, contiguous: unit i is rows
 *              [offsets[i], offsets[i+1])
 *
 * h5_shard_write writes NAME.tmp, closes it, fsyncs it, renames it to NAME
 * and fsyncs the directory: a shard under its final name is complete and
 * survives a crash of the process or the node (HDF5 1.10 files that were
 * open for writing when a process died may not open at all; this scheme
 * never depends on one). The plan file (h5_shard_write_text) is written
 * the same way.
 *
 * These files are serial HDF5 (one process each); any rank may read any
 * shard. The module knows nothing of what a unit computes: a unit is an id
 * and a float64 matrix.
 */
#ifndef ATTRIB_H5SHARD_H
#define ATTRIB_H5SHARD_H

#include <stdint.h>

#include "core.h"

/* Write one shard: k units, unit i's rows are rows[i] x d values at
 * data[i]. Returns 0 or AT_EIO naming the file. */
int h5_shard_write(const char *path, const char *plan_hash, int k, const int64_t *units,
                   const int *rows, int64_t d, double *const *data, at_err *err);

/* The index of a shard: its units and their row offsets. */
typedef struct {
    int k;
    int64_t *units;   /* (k) */
    int64_t *offsets; /* (k + 1) */
    int64_t d;        /* columns of /partials */
    char plan_hash[65];
} h5_shard_index;

/* Read a shard's index. AT_EIO when it cannot be read or is not a shard. */
int h5_shard_read_index(const char *path, h5_shard_index *idx, at_err *err);
void h5_shard_index_free(h5_shard_index *idx);

/* An open shard for reading units (keeps one file open). */
typedef struct h5_shard_reader h5_shard_reader;
h5_shard_reader *h5_shard_reader_new(void);
/* Read rows [r0, r1) of /partials of shard `path` into out (r1-r0, d).
 * Reopens only when path differs from the last call's. */
int h5_shard_read_rows(h5_shard_reader *r, const char *path, int64_t r0, int64_t r1,
                       int64_t d, double *out, at_err *err);
void h5_shard_reader_free(h5_shard_reader *r);

/* Small text files (the plan of a shard directory), written atomically
 * (tmp, fsync, rename, fsync dir). */
int h5_shard_write_text(const char *path, const char *text, at_err *err);

/* Make a finished file durable under its final name: fsync tmp, rename it
 * to final, fsync final's directory. On failure tmp is removed and AT_EIO
 * names the step. Used for shards, plan files and results files. */
int h5_file_commit(const char *tmp, const char *final, at_err *err);

/* A string attribute of object obj (a group or dataset path, "/" = the
 * root) of an existing HDF5 file: 0 and *out (caller frees) when present;
 * 1 when the file opens but has no such object or attribute (or it is not
 * a string); -1 when it is not an HDF5 file or cannot be opened. */
int h5_file_obj_attr(const char *path, const char *obj, const char *name, char **out);
/* h5_file_obj_attr of the root group. */
int h5_file_root_attr(const char *path, const char *name, char **out);

#endif
