/* h5io.h — attrib's HDF5 files: datasets, models, results.
 *
 * Model of use
 * ------------
 * Dataset files (written by `attrib import`, read by every rank):
 *   /<split>/images  (N, H, W) or (N, D) float32, values in [0, 1],
 *                    chunked by rows, shuffle+deflate
 *   /<split>/labels  (N) int32
 *   root attrs: format = "attrib-dataset", format_version = 1,
 *               source (text), class_names (list of strings)
 * Each rank opens the file read-only and reads only the row hyperslabs it
 * needs (h5_reader_read). h5_dataset_mean streams a split in blocks and sums
 * in float64 in row order, so it is the same on every rank.
 *
 * Images may be stored as any float type and labels as any integer type;
 * both are converted on read (to float32 and int32).
 *
 * Model files (format_version 2; written by `attrib train` and
 * tools/export_torch.py, read by `attrib run|eval`):
 *   root attrs: format = "attrib-model", format_version = 2,
 *               architecture (string: the canonical flat layer list of
 *               arch.h, one "- {kind: ..., name: ..., ...}" line per layer),
 *               input_shape (int64 list of 1 to 3 dims), n_classes (int64:
 *               the model's output elements), content_sha256 (hex), plus
 *               free-form provenance attributes (strings or numbers).
 *   /state_dict/<tensor name>  float32, PyTorch's name and shape, one per
 *                          eng_model tensor (batch norm running statistics
 *                          included) and nothing else.
 * content_sha256 is SHA-256 over: the bytes of the architecture attribute
 * exactly as stored, then for every tensor in ascending byte order of its
 * name: the name, a NUL, and its float32 bytes (little endian). Name order
 * lets a writer that does not know the engine's tensor order (the PyTorch
 * exporter) compute it. h5_model_load parses the architecture, builds the
 * model over input_shape, reads each tensor by name with a type and shape
 * check, and refuses: a format_version 1 file (with what to do about it),
 * missing, misshapen or unexpected tensors, NaN or Inf weights, more than
 * H5IO_MAX_PARAMS parameters (found before allocating them) and a hash that
 * does not match. Messages name the file and the dataset or layer.
 *
 * Results files are written collectively by all ranks with parallel HDF5
 * (h5_results_*). Writes go to a temporary path; the caller renames it into
 * place after a successful close, so a failed run leaves no results file.
 * Dimension scales live at the root (/sample, /feature, ...) and may be
 * attached to datasets in any group: netCDF-4 readers see a dimension in
 * the group that holds it and in every group below, so xarray (engines
 * h5netcdf and netcdf4) names the dims of a group's variables. Scales kept
 * inside one group would be invisible to datasets outside it (h5netcdf
 * raises KeyError, netcdf4 cannot open the file at all). Opening a group
 * gives named dims without coordinate values; take those from the root:
 *   root = xr.open_dataset(p, engine="h5netcdf")
 *   ig = xr.open_dataset(p, engine="h5netcdf", group="attributions/ig")
 *   ig = ig.assign_coords(sample=root["sample"], feature=root["feature"])
 * Every h5_results_* call is collective and all ranks return the same code
 * (a rank that did not fail itself says "another rank failed").
 *
 * Files written whole by one process (dataset import, models, logits) go to
 * <path>.tmp, are closed, fsync'd and renamed; missing parent directories
 * are created.
 *
 * Every function that touches a file returns 0 or an AT_* code with err
 * filled, naming the file and dataset ("data/x.h5: dataset /test/images:
 * expected float32 (N, H, W) or (N, D), found int8 (10)"); a file HDF5
 * cannot open is described (a directory, empty, not HDF5, or an HDF5
 * signature but truncated or corrupt). HDF5's own error
 * stack printing is switched off (h5io_quiet) so users see our messages.
 */
#ifndef ATTRIB_H5IO_H
#define ATTRIB_H5IO_H

#include <mpi.h>
#include <stdint.h>

#include "core.h"
#include "engine.h"

#define H5IO_MAX_DIMS 4
#define H5IO_MAX_CLASSES 1024
#define H5IO_MAX_FEATURES 2147483647LL  /* per dataset row (the engine's int) */
#define H5IO_MAX_PARAMS ((int64_t)1 << 28) /* float32 parameters of a model (1 GiB) */

/* Switch off HDF5's automatic error printing (call once at start). */
void h5io_quiet(void);

/* ---- datasets ---------------------------------------------------------- */

typedef struct {
    int64_t n_rows;
    int n_feat_dims;                    /* 1 (D) or 2 (H, W) */
    int64_t feat_shape[H5IO_MAX_DIMS];  /* feature shape without N */
    int64_t n_features;                 /* product of feat_shape */
    int n_classes;                      /* len(class_names), or max label+1 */
    int32_t label_min, label_max;       /* not filled by probe (0, 0) */
} h5_dataset_info;

typedef struct h5_reader h5_reader;

/* Open <path> read-only and check /<split>/images and /<split>/labels.
 * Returns 0 or AT_EUSER naming what is missing or has the wrong type/shape
 * (rows must have 1 to H5IO_MAX_FEATURES features).
 * Without a class_names attribute, n_classes is max label + 1, found by
 * reading all labels (a negative label is an error). */
int h5_reader_open(h5_reader **r, const char *path, const char *split,
                   h5_dataset_info *info, at_err *err);
/* Rows [r0, r1): x (r1-r0, n_features) float32; labels (r1-r0) if not NULL. */
int h5_reader_read(h5_reader *r, int64_t r0, int64_t r1, float *x,
                   int32_t *labels, at_err *err);
void h5_reader_close(h5_reader *r);

/* Per-feature mean over a whole split, float64, streamed in row order.
 * A NaN or Inf anywhere in the split is AT_EUSER naming its row and feature. */
int h5_dataset_mean(const char *path, const char *split, double *mean,
                    int64_t n_features, at_err *err);

/* n rows of a split taken evenly spaced (row floor(k * N / n), k < n; all
 * N rows when N <= n) as reference baselines: *out (n_out, n_features)
 * float32, caller frees. Non-finite values and a width other than
 * n_features are AT_EUSER naming the file, split and row. */
int h5_dataset_reference_rows(const char *path, const char *split, int64_t n,
                              int64_t n_features, float **out, int64_t *n_out,
                              at_err *err);

/* Feature groups: integer dataset `name` of the data file with exactly
 * n_features elements (any shape), values 0..P-1 with every group present.
 * Returns 0 and *n_groups = P, or AT_EUSER naming the file and dataset. */
int h5_dataset_read_groups(const char *path, const char *name, int64_t n_features,
                           int32_t *group, int *n_groups, at_err *err);

/* Class names from the dataset root attribute class_names; returns the
 * count stored in names (at most cap), 0 when absent or unreadable.
 * names[i] are malloc'd; caller frees. */
int h5_dataset_class_names(const char *path, char **names, int cap);

/* Convert Debian's dataset-fashion-mnist idx files (gzip) in src_dir into an
 * attrib dataset file at out_path (written to out_path.tmp, renamed). */
int h5_import_fashion_mnist(const char *src_dir, const char *out_path,
                            at_err *err);

/* ---- models ------------------------------------------------------------ */

typedef struct {
    int n_input_dims;
    int64_t input_shape[H5IO_MAX_DIMS];
    int n_classes;
    char sha256[65];
} h5_model_info;

/* A provenance attribute to store on the model file's root. */
typedef struct {
    const char *name;
    const char *text;     /* string value, or NULL for a number */
    double number;        /* the number when text and values are NULL */
    const double *values; /* a float64 vector of n_values when not NULL */
    int n_values;
} h5_attr;

/* Write m (architecture, weights, content hash, attrs) to path via a .tmp
 * file and rename. info is filled (out): the model's input shape, its
 * output count and the content hash. attrs must not reuse the reserved
 * names format, format_version, architecture, input_shape, n_classes,
 * content_sha256, and tensor names must not hold '/' (AT_CHECK). */
int h5_model_save(const char *path, const eng_model *m, h5_model_info *info,
                  const h5_attr *attrs, int n_attrs, at_err *err);
/* Load a model file: builds m (eng_model_init) and fills its params; checks
 * the content hash. Errors name the file and the dataset or layer. On
 * failure m is left zeroed (nothing to free). info may be NULL; its sha256
 * is the file's (verified) hash. */
int h5_model_load(const char *path, eng_model *m, h5_model_info *info,
                  at_err *err);
/* The content hash of m as described above, over arch_emit(m) (hex, 65
 * bytes): what h5_model_save stores. */
void h5_model_hash(const eng_model *m, char out[65]);

/* ---- results (parallel, collective) ----------------------------------- */

typedef enum {
    H5IO_F32 = 1,
    H5IO_F64,
    H5IO_I32,
    H5IO_I64,
} h5io_type;

typedef struct h5_results h5_results;

/* Collective over comm: create path (truncating). Returns 0 or AT_EIO. */
int h5_results_create(h5_results **out, const char *path, MPI_Comm comm,
                      at_err *err);

/* Collective: a 1-D dimension-scale dataset /<name> of n values (every rank
 * passes the same values; rank 0's are written). Its name is the dimension
 * name xarray shows. */
int h5_results_scale(h5_results *r, const char *name, h5io_type type, int64_t n,
                     const void *values, const char *description, at_err *err);

/* Collective: a chunked dataset at path (intermediate groups created).
 * dims[0] is the row axis; chunks are (chunk_rows, dims[1..]) with
 * chunk_rows clipped to [1, dims[0]]. compression 0 = none, else shuffle +
 * deflate(level). dim_scales[i] names the scale dataset (created by
 * h5_results_scale, same length as axis i) attached to axis i; dim_scales
 * or an entry may be NULL, but xarray needs a scale on every axis. Unwritten
 * float elements read as NaN, integers as 0. A dataset with a zero-length
 * axis is stored contiguous and unfiltered. */
int h5_results_dataset(h5_results *r, const char *path, h5io_type type,
                       int ndims, const int64_t *dims,
                       const char *const *dim_scales, int64_t chunk_rows,
                       int compression, const char *description, at_err *err);

/* h5_results_dataset with explicit chunk extents for axes 1.. (chunk_dims[i]
 * for i >= 1; chunk_dims[0] is ignored: chunk_rows decides it): a 2-D
 * matrix written in tiles is chunked by the tile so no chunk is shared by
 * two writers. chunk_dims NULL = h5_results_dataset. */
int h5_results_dataset_chunked(h5_results *r, const char *path, h5io_type type, int ndims,
                               const int64_t *dims, const char *const *dim_scales,
                               int64_t chunk_rows, const int64_t *chunk_dims, int compression,
                               const char *description, at_err *err);

/* Collective: each rank writes at most one tile [row0, row0+nrows) x
 * [col0, col0+ncols) of the 2-D dataset at path from buf (nrows x ncols, the
 * dataset's type, row-major); a rank without one passes has_tile = 0. */
int h5_results_write_tile(h5_results *r, const char *path, int has_tile, int64_t row0,
                          int64_t nrows, int64_t col0, int64_t ncols, const void *buf,
                          at_err *err);

/* Collective: each rank writes n_ranges row ranges [row0[k], row0[k]+nrows[k])
 * of the dataset at path from buf, which holds those rows back to back in
 * the dataset's type. A rank with nothing to write passes n_ranges = 0.
 * Ranges may come in any order (buf follows that order); they must lie in
 * the dataset and not overlap (AT_CHECK). */
int h5_results_write_rows(h5_results *r, const char *path, int n_ranges,
                          const int64_t *row0, const int64_t *nrows,
                          const void *buf, at_err *err);

/* Collective: attributes on an object ("/" for the root, or a group or
 * dataset path). Groups are created on demand. */
int h5_results_attr_str(h5_results *r, const char *obj, const char *name,
                        const char *value, at_err *err);
int h5_results_attr_f64(h5_results *r, const char *obj, const char *name,
                        double value, at_err *err);
int h5_results_attr_i64(h5_results *r, const char *obj, const char *name,
                        int64_t value, at_err *err);
int h5_results_attr_f64v(h5_results *r, const char *obj, const char *name,
                         const double *values, int n, at_err *err);

/* Collective: close. Returns 0 or AT_EIO (AT_EINTERNAL if an HDF5 handle
 * inside the file was left open, a bug). Always frees r. */
int h5_results_close(h5_results *r, at_err *err);

/* ---- serial logits file (attrib eval -o) ------------------------------ */

/* /logits (N, C) float32, /labels (N) int32 (skipped when labels is NULL),
 * /index (N) int64 = row0 .. row0+N-1, with dimension scales /sample (the
 * same row indices) and /class (0 .. C-1); written via path.tmp. */
int h5_write_logits(const char *path, const float *logits, const int32_t *labels,
                    int64_t row0, int64_t n, int n_classes, at_err *err);

#endif
