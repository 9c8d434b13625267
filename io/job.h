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
 * validation; methods (and influence entries, model layers) are addressed by
 * list index or by name: "methods.0.n_steps=64" or "methods.ig.n_steps=64",
 * "influence.trak.proj_dim=1024". The value is parsed as a YAML scalar or
 * flow collection ("[256, 128]").
 *
 * Training-data attribution: `influence:` lists methods (job_influence) that
 * score the rows of `train_data` (job_tda) for every test row of `data`;
 * `ground_truth` asks for leave-one-out and LDS. A run job needs `methods`,
 * `influence` or both. Fields that do nothing with an entry's other settings
 * (cg_* without inverse cg, proj_dim with projection none, ...) are errors
 * when given and 0 in the job; without influence, job.tda is all 0 and the
 * train_data and ground_truth sections are errors.
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
/* train.optimizer: newton — full-batch Newton in float64 on the mean loss
 * plus weight_decay/2 |theta|^2 (convex models; leave-one-out truth). */
#define JOB_OPT_NEWTON 16

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


/* ---- training-data attribution (influence: section) ---- */

#define JOB_MAX_INFLUENCE 16
#define JOB_MAX_SEL_LAYERS 16
#define JOB_MAX_MODELS 8

/* Influence kinds. */
typedef enum {
    JOB_INFL_GRAD_DOT = 1, /* g_test . g_train */
    JOB_INFL_GRAD_COS,     /* the same of unit-normalised gradients */
    JOB_INFL_TRACIN,       /* TracIn-CP: sum over checkpoints of lr_k g_test . g_train */
    JOB_INFL_INFLUENCE,    /* g_test^T (H + lambda I)^-1 g_train */
    JOB_INFL_TRAK,         /* TRAK: projected margin gradients, ensembled */
} job_infl_kind;

/* Inverse of the damped curvature (kind influence). */
typedef enum {
    JOB_INV_EXACT = 1, /* the matrix over the selected parameters, factored */
    JOB_INV_CG,        /* conjugate gradient with curvature-vector products */
    JOB_INV_LISSA,     /* LiSSA recursion */
    JOB_INV_KFAC,      /* Kronecker-factored Gauss-Newton, per layer */
    JOB_INV_EKFAC,     /* K-FAC with eigenvalue correction */
} job_inverse;

typedef enum {
    JOB_CURV_GAUSS_NEWTON = 1, /* J^T H_loss J (PSD) */
    JOB_CURV_HESSIAN,          /* the Hessian of the mean training loss */
} job_curvature;

/* Random projection of gradients, in the order of tda_proj_kind. */
typedef enum {
    JOB_PROJ_NONE = 0,
    JOB_PROJ_GAUSSIAN,
    JOB_PROJ_RADEMACHER,
    JOB_PROJ_SJLT,
    JOB_PROJ_KRONECKER,
} job_projection;

typedef struct {
    char name[JOB_NAME_MAX];  /* unique among methods and influence */
    job_infl_kind kind;
    /* parameters whose gradients are used; 0 layers = every trainable tensor */
    int n_layers;
    char layers[JOB_MAX_SEL_LAYERS][JOB_NAME_MAX];
    job_projection projection; /* default none (trak: rademacher) */
    int proj_dim;             /* output dimension; 0 with none (trak default 512) */
    uint64_t proj_seed;       /* default run.seed */
    int normalize;            /* unit-normalise gradients (grad_cos always) */
    /* tracin: checkpoints of a checkpoint file, weighted by their lr.
     * trak: models ensembled (model.path, then `models`, then checkpoints) */
    char checkpoints[JOB_PATH_MAX]; /* "" = none */
    int n_models;
    char models[JOB_MAX_MODELS][JOB_PATH_MAX];
    /* influence */
    job_inverse inverse;
    job_curvature curvature;  /* exact, cg, lissa; kfac/ekfac are Gauss-Newton */
    double damping;           /* lambda, or its fraction of the mean eigenvalue */
    int damping_relative;     /* 1 = damping x mean eigenvalue of the curvature */
    int hessian_rows;         /* train rows the curvature is estimated on; 0 = all */
    double cg_tol;            /* relative residual */
    int cg_max_iter;
    int lissa_depth;
    double lissa_scale;
    int lissa_repeats;
    int lissa_batch;          /* rows per stochastic curvature product */
} job_influence;

/* The training examples attributed to, and the ground truth. */
typedef struct {
    char train_split[JOB_NAME_MAX]; /* default "train" */
    int64_t train_start, train_end; /* [start, end); end = -1: to the end */
    int train_block_rows;     /* train rows per featurisation unit, default 512 */
    int top_k;                /* proponents and opponents per test row, default 10 */
    char store[JOB_PATH_MAX]; /* gradient store directory; "" = OUTPUT.store */
    /* leave-one-out retraining (a convex model, train.optimizer newton) */
    int loo_points;           /* train points retrained without; 0 = off */
    double loo_tol;           /* gradient norm that ends a retraining */
    int loo_max_iter;
    /* linear datamodeling score */
    int lds_subsets;          /* M; 0 = off */
    double lds_fraction;      /* alpha, default 0.5 */
    int lds_seeds;            /* R retraining seeds per subset, default 1 */
    int lds_bootstrap;        /* resamples of the test rows for the CI, default 1000 */
} job_tda;

typedef struct {
    char source_path[JOB_PATH_MAX]; /* the job file, "" for none */

    /* data */
    char data_path[JOB_PATH_MAX];
    char data_split[JOB_NAME_MAX];  /* default "test" */
    int64_t row_start, row_end;     /* [start, end); end = -1: to the end */

    /* model */
    char model_path[JOB_PATH_MAX];
    int model_epoch;                /* run: > 0 = the parameters of the checkpoint
                                       saved after this epoch (model_ckpt_path) */
    char model_ckpt_path[JOB_PATH_MAX]; /* "" in the file = model.path with
                                       .h5 replaced by .ckpt.h5 when model_epoch */
    int n_hidden;                   /* train: hidden layer widths (the MLP */
    int hidden[JOB_MAX_HIDDEN];     /* shorthand; 0 when layers are given) */
    int n_layers;                   /* train: model.layers, flattened (arch.h); */
    eng_layer layers[JOB_MAX_LAYERS]; /* spec fields only, 0 when hidden is given */
    int input_ndim, input_shape[3]; /* model.input_shape; 0 dims = the data's row shape */

    /* methods */
    int n_methods;
    job_method methods[JOB_MAX_METHODS];

    job_metrics metrics;

    /* training-data attribution */
    int n_influence;
    job_influence influence[JOB_MAX_INFLUENCE];
    job_tda tda;

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
    int optimizer;       /* eng_opt_kind: sgd (default), adam, adamw; or
                            JOB_OPT_NEWTON */
    double newton_tol;   /* newton: gradient norm to stop at, default 1e-10 */
    int newton_max_iter; /* newton: default 50 */
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
    JOB_PURPOSE_RUN = 1,   /* needs data, model.path, methods or influence, output */
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
 * the effective job, the name line first). Caller frees. */
char *job_method_emit(const job_method *m);
/* The same for one influence entry: the fields of its kind that apply, with
 * defaults resolved (proj_seed's value included), the name line first, e.g.
 * for a plan hash. Caller frees. */
char *job_influence_emit(const job_influence *f);

/* Names for enum values, as written in job files. */
const char *job_method_kind_name(job_method_kind k);
const char *job_quadrature_name(job_quadrature q);
const char *job_baseline_name(job_baseline b);
const char *job_scheduler_name(job_scheduler s);
const char *job_infl_kind_name(job_infl_kind k);   /* "grad_dot", ..., "trak" */
const char *job_inverse_name(job_inverse v);       /* "exact", "cg", ... */
const char *job_projection_name(job_projection p); /* "none", "gaussian", ... */
const char *job_curvature_name(job_curvature c);   /* "gauss_newton", "hessian" */
/* "predicted", "label" or the class number as text; buf >= 16 bytes. */
const char *job_target_name(const job_method *m, char *buf, size_t cap);

/* ---- sweeps -------------------------------------------------------------
 *
 * A job's top-level `sweep:` maps --set paths to non-empty lists of values
 * (scalars or flow collections). The points are the cartesian product, the
 * first key slowest; point p's job is the job file parsed with the caller's
 * overrides and then "key=value" for every key (the point's sets), so a
 * point is exactly a run with those --set options. Its name is
 * "leaf=value" joined by ',' (the full path when two keys share a leaf;
 * values with a '/' or ending in .h5 by their base name without .h5);
 * '/' never appears in a name. */
#define JOB_SWEEP_MAX_KEYS 16
#define JOB_SWEEP_MAX_POINTS 4096
#define JOB_SWEEP_NAME_MAX 256 /* bytes of a point name, and of a key */

typedef struct {
    int n_keys;
    char *key[JOB_SWEEP_MAX_KEYS];    /* the --set path */
    char *label[JOB_SWEEP_MAX_KEYS];  /* the key in point names */
    int n_vals[JOB_SWEEP_MAX_KEYS];
    char **val[JOB_SWEEP_MAX_KEYS];   /* (n_vals) the value as --set text */
    int n_points;                     /* 0 = the job has no sweep */
    char **name;                      /* (n_points) */
    char **sets;                      /* (n_points, n_keys) "key=value" */
} job_sweep;

/* Read the sweep of a job's text and check every point: each must parse
 * and validate (job_parse, JOB_PURPOSE_RUN) with overrides then its sets;
 * influence jobs cannot be swept. Errors name the file, sweep.<key>, the
 * point's name and what is wrong (AT_EUSER). A job without `sweep:` gives
 * n_points = 0 and 0 (its own errors are job_parse's to report). On
 * failure *sw is empty. Free with job_sweep_free. */
int job_sweep_parse(const char *text, const char *source, const char *const *overrides,
                    int n_sets, job_sweep *sw, at_err *err);
/* Index of key k's value in point p. */
int job_sweep_index(const job_sweep *sw, int p, int k);
/* "sweep:\n  key: [v, ...]\n..." — appended to a point's effective job, a
 * job file of the whole sweep. Caller frees. */
char *job_sweep_emit_yaml(const job_sweep *sw);
void job_sweep_free(job_sweep *sw);

/* The schema as data, for docs and their test. */
typedef struct {
    const char *path;    /* "data.path", "methods[].n_steps", ... */
    const char *type;    /* "string", "integer", "number", "boolean", "enum", "list" */
    const char *deflt;   /* default as text, "required" or "—" */
    const char *doc;     /* one line */
} job_field_doc;
const job_field_doc *job_schema_fields(int *n);

#endif
