/* h5train.h — files of training: checkpoint files, and dataset files
 * written from memory (the synthetic generators).
 *
 * Model of use
 * ------------
 * Checkpoint files. `attrib train` keeps the model's parameters after every
 * `train.checkpoint_every` epochs in one HDF5 file per run (TracIn and
 * other training-data attribution methods read them):
 *
 *   root attrs: format = "attrib-checkpoints", format_version = 1 (int64),
 *               architecture (string, arch_emit of the model: the same text
 *               as a model file's), input_shape (int64 list), n_classes
 *               (int64), seed (uint64, train.seed), job_yaml (the effective
 *               job), attrib_version
 *   /epochs      (K) int32    epoch number, 1-based: checkpoint k holds the
 *                             parameters after that epoch
 *   /lr          (K) float64  the learning rate used during that epoch
 *   /train_loss  (K) float64  mean training loss of that epoch
 *   /train_acc   (K) float64  training accuracy of that epoch (0..1)
 *   /checkpoints/<k>/state_dict/<tensor name>  float32, PyTorch's shape,
 *                             the same names and shapes as a model file's
 *                             /state_dict (buffers included); k = 0..K-1 in
 *                             decimal; group attrs epoch (int32), lr
 *                             (float64), content_sha256 (the model file
 *                             hash of these parameters, h5_model_hash)
 *
 * The file is written whole by one process at every checkpoint: the
 * writer builds <path>.tmp from the previous file's checkpoints (copied)
 * plus the new one, closes it and commits it (h5_file_commit: fsync,
 * rename, fsync the directory). A crash at any time leaves the previous
 * complete file under its name. A file at the path from an earlier run is
 * replaced by the first checkpoint of a new run.
 *
 * Dataset files (h5_dataset_write) follow io/h5io.h's layout, so they open
 * in `attrib run|eval|train`: /<split>/images float32 (N, dims...) chunked
 * by rows with shuffle+deflate, /<split>/labels int32 (N), root attrs
 * format = "attrib-dataset", format_version = 1, source, class_names;
 * optional extra per-row datasets /<split>/<name> (N, dims...) of uint8,
 * int32 or float32 (e.g. /train/relevant, the ground-truth mask of the
 * synthetic token task). Written to <path>.tmp, committed, parents made.
 *
 * Every function returns 0 or an AT_* code with err filled, naming the
 * file and the dataset.
 */
#ifndef ATTRIB_H5TRAIN_H
#define ATTRIB_H5TRAIN_H

#include <stdint.h>

#include "core.h"
#include "engine.h"

/* ---- checkpoints -------------------------------------------------------- */

typedef struct h5_ckpt_writer h5_ckpt_writer;

/* A writer for the checkpoints of one training run of m (its architecture
 * and input shape go into the file). Touches no file; job_yaml may be
 * NULL. Free with h5_ckpt_writer_free. */
h5_ckpt_writer *h5_ckpt_writer_new(const char *path, const eng_model *m, uint64_t seed,
                                   const char *job_yaml);
/* Append a checkpoint of m->params (after 1-based `epoch`, trained at lr)
 * and commit the whole file. Returns 0 or AT_EIO/AT_EUSER naming the file;
 * after a failure the file under path is the previous complete one. */
int h5_ckpt_writer_add(h5_ckpt_writer *w, const eng_model *m, int epoch, double lr,
                       double train_loss, double train_acc, at_err *err);
/* Checkpoints written so far. */
int h5_ckpt_writer_count(const h5_ckpt_writer *w);
void h5_ckpt_writer_free(h5_ckpt_writer *w);

/* Number of checkpoints in a checkpoint file. Returns 0 or AT_EUSER (not a
 * checkpoint file, unreadable, wrong format version). */
int h5_ckpt_count(const char *path, int *K, at_err *err);
/* The checkpoint k (0-based) saved after `epoch` (/epochs[k] == epoch).
 * Returns 0, or AT_EUSER listing the file's epochs when none matches. */
int h5_ckpt_find_epoch(const char *path, int epoch, int *k, at_err *err);
/* Load checkpoint k (0-based) into m, which is already built with the
 * file's architecture (eng_model_init). Checks the architecture text,
 * input shape, every tensor's presence, type and shape, no unexpected
 * tensor, finite values and the content hash. *epoch and *lr (either may
 * be NULL) receive /epochs[k] and /lr[k]. On failure m->params may be
 * partly overwritten. */
int h5_ckpt_load(const char *path, int k, eng_model *m, int *epoch, double *lr, at_err *err);

/* ---- dataset files from memory ------------------------------------------ */

typedef enum { H5_ELEM_U8 = 1, H5_ELEM_I32, H5_ELEM_F32 } h5_elem_type;

/* An extra per-row dataset of a split: /<split>/<name> (N, dims...). */
typedef struct {
    const char *name;
    h5_elem_type type;
    int n_dims; /* per-row dims, 0..3 */
    int64_t dims[3];
    const void *data;        /* (N, dims...) of type */
    const char *description; /* dataset attribute, or NULL */
} h5_split_extra;

typedef struct {
    const char *name; /* "train", "test" */
    int64_t n_rows;   /* N >= 0 */
    int n_dims;       /* per-row image dims: 1 (D) or 2 (H, W) */
    int64_t dims[2];
    const float *images;   /* (N, dims...) */
    const int32_t *labels; /* (N), each in 0..n_classes-1 (AT_CHECK) */
    const char *images_description, *labels_description; /* or NULL */
    int n_extra;
    const h5_split_extra *extra; /* (n_extra) */
} h5_split_data;

/* Write a dataset file with the given splits. source: the root `source`
 * attribute; class_names (n_classes >= 1). Returns 0 or AT_EIO naming the
 * file (and the dataset). */
int h5_dataset_write(const char *path, const char *source, const char *const *class_names,
                     int n_classes, const h5_split_data *splits, int n_splits, at_err *err);

#endif
