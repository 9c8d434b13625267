/* job.h — job files: YAML text -> typed, validated job.
 *
 * Model of use
 * ------------
 * Rank 0 reads the job file's text (job_read_file), every rank parses the
 * same text with the same --set overrides (job_parse), so all ranks fail or
 * go on together. job_parse checks everything that can be checked without
 * opening data/model files: YAML syntax (errors give file:line:column),
 * unknown keys (a typo never silently becomes a default), types, ranges,
 * allowed values, cross-field rules. Every error message names the file, the
 * line and the field path (e.g. "jobs/x.yaml:7: methods[0].n_steps: expected
 * an integer >= 1, got 'fifty'") and the code is AT_EUSER.
 *
 * `--set section.key=value` overrides are applied to the parsed YAML before
 * validation; methods are addressed by list index or by name:
 * "methods.0.n_steps=64" or "methods.ig.n_steps=64". The value is parsed as a
 * YAML scalar or flow collection ("[256, 128]").
 *
 * job_emit_yaml writes the effective job (all defaults filled in), which is
 * stored in every output file and is itself a valid job file.
 *
 * model.layers is a layer list (arch.h): parsed, flattened (residual blocks)
 * and resolved into eng_layer specs here, so a job with a bad layer fails
 * before any file is opened; whether the shapes chain is the engine's to
 * say when the trainer builds the model over the data's shape.
 *
 * The schema is one table (job_schema_fields); docs/jobs.md is tested
 * against it so the documentation cannot drift.
 *
 * This module knows the *shape* of a job, not how methods compute.
 */
#ifndef ATTRIB_JOB_H
#define ATTRIB_JOB_H

#include <stdint.h>

#include "core.h"
#include "engine.h"

#define JOB_PATH_MAX 1024
#define JOB_NAME_MAX 64
#define JOB_MAX_METHODS 32
#define JOB_MAX_HIDDEN 16
#define JOB_MAX_LAYERS ENG_MAX_LAYERS

/* Method kinds, in the order of methods.h's mth_kind (the pipeline maps
 * one onto the other by value). */
typedef enum {
    JOB_METHOD_SALIENCY = 1,
    JOB_METHOD_INPUT_X_GRADIENT,
    JOB_METHOD_INTEGRATED_GRADIENTS,
    JOB_METHOD_EXPECTED_GRADIENTS,
    JOB_METHOD_GRADIENT_SHAP,
    JOB_METHOD_DEEPLIFT,
    JOB_METHOD_LRP,
    JOB_METHOD_GUIDED_BACKPROP,
    JOB_METHOD_DECONVOLUTION,
    JOB_METHOD_GRAD_CAM,
    JOB_METHOD_OCCLUSION,
    JOB_METHOD_FEATURE_ABLATION,
    JOB_METHOD_FEATURE_PERMUTATION,
    JOB_METHOD_SHAPLEY_SAMPLING,
    JOB_METHOD_KERNEL_SHAP,
    JOB_METHOD_LIME,
    JOB_METHOD_SOBOL,
    JOB_METHOD_RISE,
} job_method_kind;

typedef enum {
    JOB_QUAD_RIEMANN_LEFT = 1,
    JOB_QUAD_RIEMANN_RIGHT,
    JOB_QUAD_RIEMANN_MIDDLE,
    JOB_QUAD_RIEMANN_TRAPEZOID,
    JOB_QUAD_GAUSS_LEGENDRE,
} job_quadrature;

typedef enum {
    JOB_BASELINE_ZERO = 1,
    JOB_BASELINE_CONSTANT,
    JOB_BASELINE_MEAN, /* per-feature mean over a split of the dataset */
} job_baseline;

typedef enum {
    JOB_TARGET_PREDICTED = 1, /* argmax of the model's logits on x */
    JOB_TARGET_LABEL,         /* the dataset's label */
    JOB_TARGET_CLASS,         /* a fixed class index, target_class */
} job_target;

typedef enum {
    JOB_SCHED_STATIC = 1, /* contiguous cost-weighted blocks of units per rank */
    JOB_SCHED_DYNAMIC,    /* ranks ask rank 0 for chunks that shrink to the end */
} job_scheduler;

typedef struct {
    char name[JOB_NAME_MAX];  /* unique, [A-Za-z0-9_-]+ */
    job_method_kind kind;
    job_target target;
    int target_class;         /* JOB_TARGET_CLASS only */
    /* integrated_gradients */
    int n_steps;              /* >= 1 (>= 2 for riemann_trapezoid) */
    job_quadrature quadrature;
    job_baseline baseline;
    double baseline_value;    /* JOB_BASELINE_CONSTANT */
    char baseline_split[JOB_NAME_MAX]; /* JOB_BASELINE_MEAN */
    /* saliency */
    int abs_value;            /* 1 = |gradient| (default) */
    /* sampled methods: draws, permutations, coalitions, QMC points, masks */
    int n_samples;
    /* expected_gradients, gradient_shap */
    char reference_split[JOB_NAME_MAX];
    int n_references;
    double stdev;             /* gradient_shap input noise */
    /* SmoothGrad wrapper over a gradient kind: 0 none, else mth_noise_mode */
    int noise;
    int noise_samples;
    double noise_sigma;
    /* lrp */
    int lrp_rule;             /* mth_lrp_rule */
    double epsilon, gamma, alpha, beta;
    /* grad_cam */
    char layer[JOB_NAME_MAX];
    /* occlusion: per dim, for the last n dims of the row shape */
    int n_window, window[3];
    int n_stride, stride[3];  /* 0 dims = the window */
    /* feature groups: a patch grid (n_patch dims) or a dataset of the data
     * file (feature_mask); neither = every feature its own group */
    int n_patch, patch[3];
    char feature_mask[JOB_NAME_MAX];
    /* lime */
    int distance;             /* mth_distance */
    double kernel_width;      /* 0 = automatic */
    double ridge;
    /* sobol, rise */
    int grid;
    double keep_prob;
} job_method;

/* Evaluation metrics (written under /metrics/<method>/). */
typedef struct {
    int curves;               /* deletion and insertion, both orders */
    int curve_steps;
    int curve_logit;          /* 1 = logit, 0 = softmax probability */
    double fill_value;        /* value of deleted (not yet inserted) features */
    int infidelity;           /* perturbations per row, 0 = off */
    double infidelity_sigma;
    int sensitivity;          /* perturbations per row, 0 = off */
    double sensitivity_radius;
    int agreement;            /* Spearman, Kendall, top-k between methods */
    int top_k;
} job_metrics;

typedef struct {
    char source_path[JOB_PATH_MAX]; /* the job file, "" for none */

    /* data */
    char data_path[JOB_PATH_MAX];
    char data_split[JOB_NAME_MAX];  /* default "test" */
    int64_t row_start, row_end;     /* [start, end); end = -1: to the end */

    /* model */
    char model_path[JOB_PATH_MAX];
    int n_hidden;                   /* train: hidden layer widths (the MLP */
    int hidden[JOB_MAX_HIDDEN];     /* shorthand; 0 when layers are given) */
    int n_layers;                   /* train: model.layers, flattened (arch.h); */
    eng_layer layers[JOB_MAX_LAYERS]; /* spec fields only, 0 when hidden is given */
    int input_ndim, input_shape[3]; /* model.input_shape; 0 dims = the data's row shape */

    /* methods */
    int n_methods;
    job_method methods[JOB_MAX_METHODS];

    job_metrics metrics;

    /* run */
    job_scheduler scheduler;
    int block_rows;      /* rows per work unit, >= 1, default 64 */
    int step_block;      /* grid columns per unit, 0 = all (default) */
    uint64_t seed;
    int blas_threads;    /* >= 1, default 1 */
    double progress_interval; /* seconds between plain progress lines */
    double checkpoint_interval; /* seconds of work a rank may hold before it
                                   writes a shard; 0 = after every unit */
    double max_wall_time;     /* seconds; 0 = no limit. Stops at a unit boundary */
    char stop_file[JOB_PATH_MAX]; /* "" = OUTPUT.stop */

    /* train. Fields of another optimizer, schedule or loss than the chosen
     * one are 0 (momentum and nesterov: sgd; beta1, beta2, adam_eps: adam and
     * adamw; step_size, gamma: step; min_lr: cosine; label_smoothing:
     * cross_entropy). */
    int has_train;
    int epochs;
    int batch_size;
    int optimizer;       /* eng_opt_kind: sgd (default), adam, adamw */
    double lr, momentum, weight_decay;
    int nesterov;        /* sgd */
    double beta1, beta2; /* train.betas */
    double adam_eps;     /* train.eps */
    int schedule;        /* eng_sched_kind: constant (default), step, cosine */
    int step_size;       /* step: epochs between decays */
    double gamma;        /* step: decay factor */
    double min_lr;       /* cosine: eta_min, the rate after the last epoch */
    int checkpoint_every; /* epochs between checkpoints; 0 = none */
    char checkpoint_path[JOB_PATH_MAX]; /* "<model.path without .h5>.ckpt.h5" unless
                                           train.checkpoints says otherwise */
    int loss;            /* eng_loss_kind: cross_entropy (default) or mse */
    double label_smoothing; /* cross_entropy, in [0, 1) */
    uint64_t train_seed;
    char eval_split[JOB_NAME_MAX]; /* "" = no evaluation */

    /* output */
    char output_path[JOB_PATH_MAX];
    int compression;     /* deflate level 0..9, default 4 */
    int overwrite;       /* replace an existing output file */
    int keep_shards;     /* keep OUTPUT.shards/ after the results are assembled */
} job;

/* What the job is for: decides which sections are required. */
typedef enum {
    JOB_PURPOSE_RUN = 1,   /* needs data, model.path, methods, output */
    JOB_PURPOSE_TRAIN,     /* needs data, model.path, model.layers or model.hidden,
                              train */
    JOB_PURPOSE_ANY,       /* validate whatever is present */
} job_purpose;

/* Read a whole file into a NUL-terminated buffer (caller frees).
 * Returns 0, or AT_EUSER naming the path when it cannot be read. */
int job_read_file(const char *path, char **text, at_err *err);

/* Parse and validate. source names the file in messages. overrides: n_sets
 * strings "path.to.key=value". Relative paths in the job are kept as written
 * (they are relative to the working directory, like every CLI path). */
int job_parse(const char *text, const char *source, const char *const *overrides,
              int n_sets, job_purpose purpose, job *out, at_err *err);

/* The effective job as YAML (every field, defaults filled in). Caller frees. */
char *job_emit_yaml(const job *j);

/* One method's fields as "key: value" lines (the fields of its kind, as in
 * the effective job, without the name). Caller frees. */
char *job_method_emit(const job_method *m);

/* Names for enum values, as written in job files. */
const char *job_method_kind_name(job_method_kind k);
const char *job_quadrature_name(job_quadrature q);
const char *job_baseline_name(job_baseline b);
const char *job_scheduler_name(job_scheduler s);
/* "predicted", "label" or the class number as text; buf >= 16 bytes. */
const char *job_target_name(const job_method *m, char *buf, size_t cap);

/* The schema as data, for docs and their test. */
typedef struct {
    const char *path;    /* "data.path", "methods[].n_steps", ... */
    const char *type;    /* "string", "integer", "number", "boolean", "enum", "list" */
    const char *deflt;   /* default as text, "required" or "—" */
    const char *doc;     /* one line */
} job_field_doc;
const job_field_doc *job_schema_fields(int *n);

#endif
