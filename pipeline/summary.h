/* summary.h — a results file read into a struct: what `attrib inspect`
 * prints, what `attrib topk` and the HTML report (`attrib report`) build on.
 *
 * Model of use
 * ------------
 *   sm_summary s;
 *   at_err err = {0};
 *   if (sm_read(&s, "results.h5", NULL, &err)) {   // or a sweep point's name
 *       cli_error(&err);
 *       return err.code;                             // AT_EUSER: not a results file
 *   }
 *   for (int m = 0; m < s.n_methods; m++) {
 *       const sm_method *me = &s.methods[m];         // name, kind, shape, stats
 *       double a = sm_attr_num(&me->attrs, "n_steps", NAN);
 *       ...
 *   }
 *   // s.metric_names / s.methods[m].metric_mean: mean of each /metrics dataset
 *   // s.agree: mean Spearman between every pair of methods (NaN = absent)
 *   sm_free(&s);
 *
 * sm_read reads one file serially (no MPI), everything it needs for a
 * summary: root attributes, every method's attributes, statistics of its
 * scores (streamed in row blocks, float64 sums in row order), completeness
 * where a `delta` dataset exists, metric means, the agreement matrix, the
 * influence checks (top-k width, LOO and LDS attributes), timing and load
 * balance. A sweep file (content "sweep", docs/format.md) is read as its
 * points (s.points[p], each an sm_summary of /points/<name>) plus, for every
 * method present in all points, how its scores moved against the first
 * point's (s.sweep_methods). With point != NULL only /points/<point> of a
 * sweep file is read, exactly as a plain file.
 *
 * Scores are read through sm_scores_rows (any results file or point), so
 * callers that draw pictures or tables read rows without knowing the layout.
 *
 * Errors (AT_EUSER) name the file and what was expected: not an HDF5 file
 * (with the reason), not an attrib results file (format attribute), an
 * unknown point (listing the valid ones), a dataset of the wrong type or
 * shape. Every number that is absent is NaN (JSON null).
 *
 * This module is serial and read-only; nothing here is collective.
 */
#ifndef ATTRIB_SUMMARY_H
#define ATTRIB_SUMMARY_H

#include <stdint.h>

#include "core.h"

#define SM_MAX_DIMS 4

/* One attribute: its text as printed (numbers with %.6g, vectors as
 * "[a, b, ...]" cut after 8 values) and, for numeric scalars, its value. */
typedef struct {
    char *name;
    char *text;
    double num;  /* NaN unless is_num */
    int is_num;  /* numeric scalar (int or float, 1 element) */
    int n_vals;  /* elements (1 for scalars and strings) */
    double *vals; /* (n_vals) numeric vectors, else NULL */
} sm_attr;

typedef struct {
    int n;
    sm_attr *a;
} sm_attrs;

/* Its number (is_num), else dflt. */
double sm_attr_num(const sm_attrs *as, const char *name, double dflt);
/* Its text, else dflt. */
const char *sm_attr_text(const sm_attrs *as, const char *name, const char *dflt);

typedef enum {
    SM_FEATURE = 1, /* /attributions/<name> (docs/format.md "Results file") */
    SM_INFLUENCE,   /* content "training-data attribution": /influence/<name> */
    SM_SWEEP,       /* content "sweep": /points/<name>/ */
} sm_content;

typedef struct {
    char *name;       /* the method's name in the job */
    char *kind;       /* attribute kind */
    char *group;      /* "attributions/<name>" or "influence/<name>" */
    int ndims;
    int64_t shape[SM_MAX_DIMS]; /* scores: (N, H, W), (N, D), (N_test, N_train) */
    sm_attrs attrs;   /* every attribute of the group (kind included) */
    /* scores */
    double mean_abs;  /* mean |score| over all elements */
    double frac_pos;  /* fraction of scores > 0 */
    double frac_neg;  /* fraction of scores < 0 */
    /* completeness (feature methods with delta): NaN when absent */
    int has_delta;
    double delta_median_abs, delta_max_abs;
    double delta_rel_median; /* median |delta| / |output_diff| (rows with
                                output_diff != 0) */
    /* influence: top-k width (0 = no topk datasets), LOO and LDS attrs */
    int64_t top_k;
    sm_attrs loo;     /* attributes of <group>/loo (pearson, spearman, ...) */
    sm_attrs lds;     /* attributes of <group>/lds (lds, ci_low, ci_high, ...) */
    /* metrics: metric_mean[k] is the mean of /metrics/<name>/<metric_names[k]>
     * over samples (NaN when this method lacks it) */
    double *metric_mean; /* (n_metric_names) */
} sm_method;

typedef struct sm_sweep_method sm_sweep_method;
typedef struct sm_summary sm_summary;

struct sm_summary {
    char *path;       /* the file */
    char *point;      /* the point read (NULL for a whole file) */
    char *base;       /* HDF5 path of the root read: "/" or "/points/<name>" */
    sm_content content;
    sm_attrs root;    /* every root attribute (of the point for a point) */
    /* shortcuts into root (NULL/NaN when absent) */
    const char *format, *attrib_version, *content_text, *job_file, *job_yaml;
    const char *model_path, *model_sha256, *data_path, *data_split;
    const char *train_split; /* influence: the split of data_path the train rows are of */
    int64_t format_version;
    int64_t n_rows;    /* N (feature), N_test (influence); -1 unknown */
    int64_t n_train;   /* N_train (influence), else -1 */
    int64_t n_classes; /* /class length (feature), else -1 */
    /* the job's key settings: "section.key" -> value text, from job_yaml */
    sm_attrs job;
    /* timing: every time_* root attribute, in file order */
    sm_attrs timing;
    /* load balance (feature results) */
    int n_ranks;       /* n_ranks or ranks attribute; -1 absent */
    const char *scheduler;
    int n_units_per_rank;
    double *units_per_rank; /* (n_units_per_rank) */
    double units_min, units_max, units_mean, units_max_over_mean;
    int64_t units_resumed; /* -1 absent */
    /* methods */
    int n_methods;
    sm_method *methods;
    /* metrics: the union of dataset names below /metrics/<method>/ (agreement
     * excluded), sorted */
    int n_metric_names;
    char **metric_names;
    /* agreement: agree[a * n_methods + b] = mean over samples of the
     * spearman dataset of pair (a, b) (stored under the earlier method; the
     * matrix is made symmetric, diagonal 1); NaN when absent. NULL when the
     * file has no agreement. */
    double *agree;        /* (n_methods, n_methods) */
    double *agree_kendall; /* the same for kendall */
    double *agree_topk;    /* and top_k_overlap */
    /* sweep (content SM_SWEEP, whole file) */
    int n_points;
    char **point_names;   /* (n_points) /sweep/name */
    int n_keys;
    char **keys;          /* (n_keys) swept keys (/sweep/<key>) */
    char **values;        /* (n_points, n_keys) value text */
    sm_summary *points;   /* (n_points) each point as a plain file */
    int n_sweep_methods;
    sm_sweep_method *sweep_methods;
};

/* How a method's scores changed along a sweep, against point 0: per point
 * p, the mean over samples (rows) of the Spearman correlation (average ranks
 * for ties) of row i of point p's scores with row i of point 0's, and the
 * relative L2 difference ||S_p - S_0||_F / ||S_0||_F over all scores. NaN
 * where the shapes differ (reason in note). */
struct sm_sweep_method {
    char *name;
    double *spearman; /* (n_points) */
    double *rel_l2;   /* (n_points) */
    char *note;       /* NULL, or why some points are NaN */
};

/* Read path (point: NULL, or a sweep point's name). Returns 0, or AT_EUSER /
 * AT_EIO with err naming the file and what is wrong; s is then empty
 * (sm_free is still safe). */
int sm_read(sm_summary *s, const char *path, const char *point, at_err *err);
/* sm_read without the statistics: root, job, timing, load, the methods'
 * names, kinds, attributes, shapes and top-k widths, the sweep's points; no
 * scores are read (mean_abs, frac_*, delta_* NaN; no metrics, agreement or
 * sweep comparison). For commands that then read a few rows (topk, render). */
int sm_read_light(sm_summary *s, const char *path, const char *point, at_err *err);
void sm_free(sm_summary *s);

/* The method named name, or -1. */
int sm_method_index(const sm_summary *s, const char *name);
/* "a, b, c" of names[0..n) (malloc'd), for messages. */
char *sm_join(const char *const *names, int n);
/* sm_join of the method names. */
char *sm_method_list(const sm_summary *s);

/* Rows [r0, r1) of method m's scores as float32, (r1 - r0) x (elements per
 * row), into out (caller sized). Returns 0 or an error naming the file. */
int sm_scores_rows(const sm_summary *s, int m, int64_t r0, int64_t r1, float *out,
                   at_err *err);
/* A 1-D or 2-D dataset below the summary's base (e.g. "test",
 * "influence/dot/topk_index"): rows [r0, r1) (all of axis 1) converted to
 * int64 or float64. Returns 0, 1 when the dataset is absent, or an error. */
int sm_read_i64(const sm_summary *s, const char *dset, int64_t r0, int64_t r1,
                int64_t *out, at_err *err);
int sm_read_f64(const sm_summary *s, const char *dset, int64_t r0, int64_t r1,
                double *out, at_err *err);
/* Shape of a dataset below the base: its rank (0 when absent). */
int sm_dataset_shape(const sm_summary *s, const char *dset, int64_t shape[SM_MAX_DIMS]);

/* Labels of rows of a dataset file's split: out[i] = /<split>/labels[rows[i]].
 * Returns 0 or AT_EUSER naming the file, split and the row out of range. */
int sm_read_labels(const char *data_path, const char *split, const int64_t *rows, int n,
                   int32_t *out, at_err *err);

#endif
