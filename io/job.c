/* job.c — job files: YAML text -> a small tree (ytree.h) -> --set
 * overrides -> one schema table -> a typed, validated job. See job.h.
 *
 * The tree keeps, for every node and every mapping key, the 1-based line it
 * came from, or the index of the --set that made it, so that every message
 * can say where the offending text is. The schema (SCHEMA below) is the only
 * description of a job: validation, defaults, emission and the documentation
 * table (job_schema_fields) are all driven by it. Defaults are written in the
 * table as YAML text and go through the same converter as the job's own
 * values, so a documented default is the default.
 *
 * Convention: every static int function returns 0, or the code recorded in
 * c->err (AT_EUSER for a bad job) after writing the message; the first
 * error stops everything. Tree nodes are owned by their parent; yt_free
 * releases a subtree. */
#include "job.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "ytree.h"

/* Enum-typed fields are filled through int pointers (see conv). */
_Static_assert(sizeof(job_method_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(job_quadrature) == sizeof(int), "enum size");
_Static_assert(sizeof(job_baseline) == sizeof(int), "enum size");
_Static_assert(sizeof(job_scheduler) == sizeof(int), "enum size");
_Static_assert(sizeof(job_infl_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(job_inverse) == sizeof(int), "enum size");
_Static_assert(sizeof(job_curvature) == sizeof(int), "enum size");
_Static_assert(sizeof(job_projection) == sizeof(int), "enum size");

#define MAX_JOB_FILE (16 << 20) /* bytes; job files are a few hundred */
#define HIDDEN_MAX_WIDTH 1000000

static const char *show(const yt_node *v, char *buf, size_t cap) {
    return yt_show(v, buf, cap, 0);
}

/* ---------------------------------------------------------- the schema */

typedef enum {
    T_SECTION = 1, /* a mapping of fields */
    T_METHODS,     /* the list of method mappings */
    T_INFLUENCE,   /* the list of influence mappings */
    T_STRING,      /* char[cap] */
    T_NAME,        /* char[cap] of [A-Za-z0-9_-]+ */
    T_INT,         /* int */
    T_U64,         /* uint64_t */
    T_NUMBER,      /* double */
    T_BOOL,        /* int 0/1 */
    T_ENUM,        /* enum (int-sized), value = index in names + 1 */
    T_ROWS,        /* int64 start at .off, int64 end at .off2 */
    T_TARGET,      /* job_method.target, target_class */
    T_HIDDEN,      /* job.n_hidden, job.hidden */
    T_LAYERS,      /* job.n_layers, job.layers (arch.h) */
    T_SHAPE,       /* job.input_ndim, job.input_shape */
    T_BETAS,       /* job.beta1, job.beta2 */
    T_DIMS,        /* int count at .off, int[3] at .off2: 1 to 3 integers >= 1 */
    T_DURATION,    /* double seconds: a number, or "90s", "30m", "2h", "1d",
                      "MM:SS", "HH:MM:SS", "D-HH:MM:SS" (SLURM's forms) */
    T_NAMES,       /* int count at .off, char[.hi][.cap] at .off2: 0 to .hi
                      distinct layer names ([A-Za-z0-9_.-]+) */
    T_PATHS,       /* the same for 0 to .hi distinct non-empty paths */
    T_SWEEP,       /* the top-level sweep: mapping (job_sweep_parse reads it;
                      a point's job ignores it and never emits it) */
} ftype;

typedef enum {
    NUM_ANY = 0,
    NUM_POS,    /* > 0 */
    NUM_NONNEG, /* >= 0 */
    NUM_UNIT,   /* in [0, 1) */
    NUM_OPEN01, /* in (0, 1) */
} numrange;

typedef struct {
    ftype t;
    unsigned req;   /* purposes that require it (PB bits) */
    unsigned kinds; /* methods[] fields: the kinds that take it (KB bits) */
    size_t off;     /* destination in job, or in job_method for methods[] */
    size_t cap;     /* T_STRING, T_NAME: size of the destination */
    int nonempty;   /* T_STRING: "" is an error */
    int64_t lo, hi; /* T_INT, T_U64: inclusive; hi = 0: the type's max */
    numrange num;   /* T_NUMBER */
    const char *const *names; /* T_ENUM: NULL-terminated */
    int base0;      /* T_ENUM: the value is the index (an engine enum), not index + 1 */
    const int *vals; /* T_ENUM: the value of names[i] is vals[i] (overrides base0) */
    int when;       /* train fields: the setting they belong to (W_*), 0 = always */
    size_t off2;    /* T_DIMS, T_NAMES, T_PATHS: the array; T_ROWS: the end */
} rule;

/* Train fields that belong to one optimizer, schedule or loss: given for
 * another one they are an error, emitted only for theirs, and 0 otherwise. */
enum { W_ALWAYS = 0, W_SGD, W_ADAM, W_STEP, W_COSINE, W_XENT, W_ITER, W_NEWTON, W_EPOCH };
/* W_ITER: the iterative optimizers (sgd, adam, adamw); W_NEWTON: newton;
 * W_EPOCH: model.epoch > 0 (a checkpoint's parameters) */

#define PB(p) (1u << (p))
#define P_RUN PB(JOB_PURPOSE_RUN)
#define P_TRAIN PB(JOB_PURPOSE_TRAIN)
#define P_ALL (P_RUN | P_TRAIN | PB(JOB_PURPOSE_ANY))
#define KB(k) (1u << (k))
#define K_SAL KB(JOB_METHOD_SALIENCY)
#define K_IXG KB(JOB_METHOD_INPUT_X_GRADIENT)
#define K_IG KB(JOB_METHOD_INTEGRATED_GRADIENTS)
#define K_EG KB(JOB_METHOD_EXPECTED_GRADIENTS)
#define K_GS KB(JOB_METHOD_GRADIENT_SHAP)
#define K_DL KB(JOB_METHOD_DEEPLIFT)
#define K_LRP KB(JOB_METHOD_LRP)
#define K_GBP KB(JOB_METHOD_GUIDED_BACKPROP)
#define K_DECONV KB(JOB_METHOD_DECONVOLUTION)
#define K_CAM KB(JOB_METHOD_GRAD_CAM)
#define K_OCC KB(JOB_METHOD_OCCLUSION)
#define K_ABL KB(JOB_METHOD_FEATURE_ABLATION)
#define K_PERM KB(JOB_METHOD_FEATURE_PERMUTATION)
#define K_SHAP KB(JOB_METHOD_SHAPLEY_SAMPLING)
#define K_KSHAP KB(JOB_METHOD_KERNEL_SHAP)
#define K_LIME KB(JOB_METHOD_LIME)
#define K_SOBOL KB(JOB_METHOD_SOBOL)
#define K_RISE KB(JOB_METHOD_RISE)
#define K_ALL ((KB(JOB_METHOD_RISE + 1) - 1) & ~1u)
/* gradient kinds: the ones the noise wrapper (SmoothGrad) can wrap */
#define K_GRAD (K_SAL | K_IXG | K_IG | K_EG | K_GS | K_DL | K_LRP | K_GBP | K_DECONV)
/* kinds with a baseline (the value a removed feature takes) */
#define K_BASE (K_IG | K_DL | K_OCC | K_ABL | K_SHAP | K_KSHAP | K_LIME | K_SOBOL | K_RISE)
#define K_GROUPS (K_ABL | K_PERM | K_SHAP | K_KSHAP | K_LIME)
#define K_SAMPLES (K_EG | K_GS | K_SHAP | K_KSHAP | K_LIME | K_SOBOL | K_RISE)
#define JOFF(m) offsetof(job, m)
#define MOFF(m) offsetof(job_method, m)
#define IOFF(m) offsetof(job_influence, m)
/* influence[] kinds (the same .kinds field, in the influence[] section) */
#define IB(k) (1u << (k))
#define I_DOT IB(JOB_INFL_GRAD_DOT)
#define I_COS IB(JOB_INFL_GRAD_COS)
#define I_TRACIN IB(JOB_INFL_TRACIN)
#define I_INFL IB(JOB_INFL_INFLUENCE)
#define I_TRAK IB(JOB_INFL_TRAK)
#define I_ALL (I_DOT | I_COS | I_TRACIN | I_INFL | I_TRAK)
#define I_PROJ (I_DOT | I_COS | I_TRACIN | I_TRAK) /* kinds whose gradients may be projected */

static const char *const KIND_NAMES[] = {
    "saliency", "input_x_gradient", "integrated_gradients", "expected_gradients",
    "gradient_shap", "deeplift", "lrp", "guided_backprop", "deconvolution", "grad_cam",
    "occlusion", "feature_ablation", "feature_permutation", "shapley_sampling",
    "kernel_shap", "lime", "sobol", "rise", NULL};
_Static_assert(JOB_METHOD_RISE == 18 && JOB_METHOD_RISE < 31, "KIND_NAMES, KB bits");
static const char *const NOISE_NAMES[] = {"none", "smoothgrad", "smoothgrad_sq", "vargrad",
                                          NULL};
static const char *const LRP_NAMES[] = {"epsilon", "gamma", "zplus", "alpha_beta", NULL};
static const char *const DIST_NAMES[] = {"cosine", "l2", NULL};
static const char *const CURVE_NAMES[] = {"probability", "logit", NULL};
static const char *const QUAD_NAMES[] = {"riemann_left", "riemann_right",
                                         "riemann_middle", "riemann_trapezoid",
                                         "gauss_legendre", NULL};
static const char *const BASELINE_NAMES[] = {"zero", "constant", "mean", NULL};
static const char *const SCHED_NAMES[] = {"static", "dynamic", NULL};
static const char *const OPT_NAMES[] = {"sgd", "adam", "adamw", "newton", NULL};
static const int OPT_VALS[] = {ENG_OPT_SGD, ENG_OPT_ADAM, ENG_OPT_ADAMW, JOB_OPT_NEWTON};
_Static_assert(JOB_OPT_NEWTON > ENG_OPT_ADAMW, "JOB_OPT_NEWTON is not an engine optimizer");
static const char *const INFL_KIND_NAMES[] = {"grad_dot", "grad_cos", "tracin", "influence",
                                              "trak", NULL};
_Static_assert(JOB_INFL_GRAD_DOT == 1 && JOB_INFL_TRAK == 5, "INFL_KIND_NAMES");
static const char *const INV_NAMES[] = {"exact", "cg", "lissa", "kfac", "ekfac", NULL};
_Static_assert(JOB_INV_EXACT == 1 && JOB_INV_EKFAC == 5, "INV_NAMES");
static const char *const CURV_NAMES[] = {"gauss_newton", "hessian", NULL};
_Static_assert(JOB_CURV_GAUSS_NEWTON == 1 && JOB_CURV_HESSIAN == 2, "CURV_NAMES");
static const char *const PROJ_NAMES[] = {"none", "gaussian", "rademacher", "sjlt", "kronecker",
                                         NULL};
_Static_assert(JOB_PROJ_NONE == 0 && JOB_PROJ_KRONECKER == 4, "PROJ_NAMES");
static const char *const LR_NAMES[] = {"constant", "step", "cosine", NULL};
static const char *const LOSS_NAMES[] = {"cross_entropy", "mse", NULL};
_Static_assert(ENG_OPT_SGD == 0 && ENG_OPT_ADAM == 1 && ENG_OPT_ADAMW == 2, "OPT_NAMES");
_Static_assert(ENG_SCHED_CONSTANT == 0 && ENG_SCHED_STEP == 1 && ENG_SCHED_COSINE == 2,
               "LR_NAMES");
_Static_assert(ENG_LOSS_XENT == 0 && ENG_LOSS_MSE == 1, "LOSS_NAMES");

/* The schema: X(path, doc type, default, doc line, rule...). The default is
 * YAML text applied through the same converter as job values, "required"
 * (no default; required for the purposes in .req) or "—" (no default). The
 * order is the order of sections and fields in emitted jobs and docs. */
#define SCHEMA(X)                                                              \
    X("data", "mapping", "{}",                                                 \
      "The dataset: which file, split and rows to read.", .t = T_SECTION)      \
    X("data.path", "string", "required",                                       \
      "HDF5 dataset file (docs/format.md), relative to the working "           \
      "directory; required by run and train.",                                 \
      .t = T_STRING, .req = P_RUN | P_TRAIN, .off = JOFF(data_path),           \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("data.split", "string", "\"test\"",                                      \
      "Split (group) of the dataset file to read rows from.",                  \
      .t = T_STRING, .off = JOFF(data_split), .cap = JOB_NAME_MAX,             \
      .nonempty = 1)                                                           \
    X("data.rows", "string or integer", "\":\"",                               \
      "Rows: \"start:end\" half-open, either side optional (\":500\", "        \
      "\"100:\"), or a count n meaning \"0:n\"; \":\" = all rows.",            \
      .t = T_ROWS, .off = JOFF(row_start), .off2 = JOFF(row_end))              \
    X("model", "mapping", "{}", "The model file, and its layers for training.",\
      .t = T_SECTION)                                                          \
    X("model.path", "string", "required",                                      \
      "Model file: read by run, written by train; required by both.",          \
      .t = T_STRING, .req = P_RUN | P_TRAIN, .off = JOFF(model_path),          \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("model.epoch", "integer", "0",                                           \
      "run: use the parameters of the checkpoint saved after this epoch "     \
      "(model.checkpoints, written by a training job with "                   \
      "train.checkpoint_every) instead of model.path's; model.path gives "     \
      "the architecture. 0 = model.path's own parameters. Sweep it to "        \
      "compare checkpoints.", .t = T_INT, .off = JOFF(model_epoch), .lo = 0,   \
      .hi = 100000)                                                            \
    X("model.checkpoints", "string", "\"\"",                                   \
      "Checkpoint file of model.epoch; \"\" = model.path with .h5 replaced "   \
      "by .ckpt.h5 (the training job's train.checkpoints default).",          \
      .t = T_STRING, .off = JOFF(model_ckpt_path), .cap = JOB_PATH_MAX,        \
      .when = W_EPOCH)                                                         \
    X("model.layers", "list", "—",                                             \
      "The layers, 1 to 512 mappings (see Layers below); train needs this or " \
      "hidden; ignored by run (the model file has them).",                     \
      .t = T_LAYERS)                                                           \
    X("model.hidden", "list", "—",                                             \
      "MLP shorthand: hidden layer widths, 1 to 16 integers in 1..1000000, "   \
      "e.g. [256, 256] = flatten, then linear+relu per width, then a linear "  \
      "to the classes; train needs this or layers.",                           \
      .t = T_HIDDEN)                                                           \
    X("model.input_shape", "list", "—",                                        \
      "Per-example input shape for train, 1 to 3 integers >= 1 (e.g. [1, "    \
      "28, 28] for a conv net on 28x28 images); absent = the data's row "      \
      "shape. Its element count must be the data's.",                         \
      .t = T_SHAPE)                                                            \
    X("methods", "list", "—",                                                  \
      "Attribution methods to compute, 1 to 32 mappings; run needs this or "   \
      "influence (or both).",                                                  \
      .t = T_METHODS)                                                          \
    X("methods[].name", "string", "required",                                  \
      "Unique name: letters, digits, _ and -, at most 63 characters. Names "   \
      "the results group; --set can address the method by it.",               \
      .t = T_NAME, .req = P_ALL, .kinds = K_ALL, .off = MOFF(name),            \
      .cap = JOB_NAME_MAX)                                                     \
    X("methods[].kind", "enum", "required",                                    \
      "saliency, input_x_gradient, integrated_gradients, expected_gradients, " \
      "gradient_shap, deeplift, lrp, guided_backprop, deconvolution, "         \
      "grad_cam, occlusion, feature_ablation, feature_permutation, "           \
      "shapley_sampling, kernel_shap, lime, sobol or rise (docs/methods.md); " \
      "decides which other fields the method takes.",                         \
      .t = T_ENUM, .req = P_ALL, .kinds = K_ALL, .off = MOFF(kind),            \
      .names = KIND_NAMES)                                                     \
    X("methods[].target", "enum or integer", "predicted",                      \
      "Class explained: predicted (argmax of the logits), label (the "         \
      "dataset's label) or a class index >= 0.",                               \
      .t = T_TARGET, .kinds = K_ALL)                                           \
    X("methods[].n_steps", "integer", "50",                                    \
      "integrated_gradients: points on the path, 1..100000 (at least 2 for "   \
      "riemann_trapezoid).",                                                   \
      .t = T_INT, .kinds = K_IG, .off = MOFF(n_steps), .lo = 1, .hi = 100000)  \
    X("methods[].quadrature", "enum", "gauss_legendre",                        \
      "integrated_gradients: riemann_left, riemann_right, riemann_middle, "    \
      "riemann_trapezoid or gauss_legendre.",                                  \
      .t = T_ENUM, .kinds = K_IG, .off = MOFF(quadrature),                     \
      .names = QUAD_NAMES)                                                     \
    X("methods[].baseline", "enum", "zero",                                    \
      "Methods that remove features (integrated_gradients, deeplift, "         \
      "occlusion, feature_ablation, shapley_sampling, kernel_shap, lime, "     \
      "sobol, rise): the value a removed feature takes: zero, constant "       \
      "(every feature baseline_value) or mean (per-feature mean over "         \
      "baseline_split).",                                                      \
      .t = T_ENUM, .kinds = K_BASE, .off = MOFF(baseline),                       \
      .names = BASELINE_NAMES)                                                 \
    X("methods[].baseline_value", "number", "0.0",                             \
      "baseline: constant only: the value of every baseline feature.",         \
      .t = T_NUMBER, .kinds = K_BASE, .off = MOFF(baseline_value))               \
    X("methods[].baseline_split", "string", "\"train\"",                       \
      "baseline: mean only: the split whose per-feature mean is the "          \
      "baseline.",                                                             \
      .t = T_STRING, .kinds = K_BASE, .off = MOFF(baseline_split),               \
      .cap = JOB_NAME_MAX, .nonempty = 1)                                      \
    X("methods[].abs", "boolean", "true",                                      \
      "saliency: true = absolute value of the gradient, false = signed.",      \
      .t = T_BOOL, .kinds = K_SAL, .off = MOFF(abs_value))                     \
    X("methods[].n_samples", "integer", "50 (shapley_sampling 25, kernel_shap 200, lime 200, sobol 32, rise 2000)", "Sampled methods, 1..10000000: baselines drawn (expected_gradients, " "gradient_shap), permutations (shapley_sampling), coalitions " "(kernel_shap, lime), quasi-Monte-Carlo points (sobol) or masks " "(rise).", .t = T_INT, .kinds = K_SAMPLES, .off = MOFF(n_samples), .lo = 1, .hi = 10000000) \
    X("methods[].reference_split", "string", "\"train\"", "expected_gradients, gradient_shap: the split whose rows are the " "reference baselines.", .t = T_STRING, .kinds = K_EG | K_GS, .off = MOFF(reference_split), .cap = JOB_NAME_MAX, .nonempty = 1) \
    X("methods[].n_references", "integer", "1000", "expected_gradients, gradient_shap: reference rows taken evenly " "spaced from reference_split, 1..1000000 (all rows when the split has" " fewer).", .t = T_INT, .kinds = K_EG | K_GS, .off = MOFF(n_references), .lo = 1, .hi = 1000000) \
    X("methods[].stdev", "number", "0.0", "gradient_shap: standard deviation of the Gaussian noise added to the" " input per draw, >= 0.", .t = T_NUMBER, .kinds = K_GS, .off = MOFF(stdev), .num = NUM_NONNEG) \
    X("methods[].noise", "enum", "none", "Gradient methods: none, smoothgrad (mean over noisy copies of the " "input), smoothgrad_sq (mean of squares) or vargrad (variance).", .t = T_ENUM, .kinds = K_GRAD, .off = MOFF(noise), .names = NOISE_NAMES, .base0 = 1) \
    X("methods[].noise_samples", "integer", "20", "noise other than none: noisy copies per row, 1..1000000.", .t = T_INT, .kinds = K_GRAD, .off = MOFF(noise_samples), .lo = 1, .hi = 1000000) \
    X("methods[].noise_sigma", "number", "0.15", "noise other than none: noise standard deviation as a fraction of the" " row's max - min, > 0.", .t = T_NUMBER, .kinds = K_GRAD, .off = MOFF(noise_sigma), .num = NUM_POS) \
    X("methods[].rule", "enum", "epsilon", "lrp: epsilon, gamma, zplus or alpha_beta (the rule of linear and " "conv layers).", .t = T_ENUM, .kinds = K_LRP, .off = MOFF(lrp_rule), .names = LRP_NAMES) \
    X("methods[].epsilon", "number", "1e-6", "lrp: the stabiliser added to denominators, > 0.", .t = T_NUMBER, .kinds = K_LRP, .off = MOFF(epsilon), .num = NUM_POS) \
    X("methods[].gamma", "number", "0.25", "lrp with rule gamma only: weight of the positive part, >= 0.", .t = T_NUMBER, .kinds = K_LRP, .off = MOFF(gamma), .num = NUM_NONNEG) \
    X("methods[].alpha", "number", "2.0", "lrp with rule alpha_beta only: weight of positive contributions, > " "0, alpha - beta = 1.", .t = T_NUMBER, .kinds = K_LRP, .off = MOFF(alpha), .num = NUM_POS) \
    X("methods[].beta", "number", "1.0", "lrp with rule alpha_beta only: weight of negative contributions, >= " "0.", .t = T_NUMBER, .kinds = K_LRP, .off = MOFF(beta), .num = NUM_NONNEG) \
    X("methods[].layer", "string", "required", "grad_cam: name of the layer whose (C, H, W) output is weighted (e.g." " a conv2d or its relu); required by grad_cam.", .t = T_STRING, .kinds = K_CAM, .off = MOFF(layer), .cap = JOB_NAME_MAX, .nonempty = 1) \
    X("methods[].window", "list", "[4, 4]", "occlusion: window size along the last 1 to 3 dims of a row (earlier " "dims are covered whole), integers >= 1.", .t = T_DIMS, .kinds = K_OCC, .off = MOFF(n_window), .off2 = MOFF(window)) \
    X("methods[].stride", "list", "—", "occlusion: the window's step along the same dims; absent = the " "window.", .t = T_DIMS, .kinds = K_OCC, .off = MOFF(n_stride), .off2 = MOFF(stride)) \
    X("methods[].patch", "list", "—", "Feature groups (feature_ablation, feature_permutation, " "shapley_sampling, kernel_shap, lime): a regular grid of patches of " "this size along the last 1 or 2 dims (channels share a patch); " "absent (and no feature_mask) = every feature its own group.", .t = T_DIMS, .kinds = K_GROUPS, .off = MOFF(n_patch), .off2 = MOFF(patch)) \
    X("methods[].feature_mask", "string", "\"\"", "Feature groups from a dataset of the data file (e.g. " "/masks/superpixels): integers 0..P-1 of one row's shape (or flat), " "every group present; \"\" = none.", .t = T_STRING, .kinds = K_GROUPS, .off = MOFF(feature_mask), .cap = JOB_NAME_MAX) \
    X("methods[].distance", "enum", "cosine", "lime: distance of a coalition to the input in the interpretable " "space: cosine or l2.", .t = T_ENUM, .kinds = K_LIME, .off = MOFF(distance), .names = DIST_NAMES) \
    X("methods[].kernel_width", "number", "0.0", "lime: width w of the kernel exp(-d^2/w^2), >= 0; 0 = 1.0 for cosine," " 0.75 sqrt(P) for l2.", .t = T_NUMBER, .kinds = K_LIME, .off = MOFF(kernel_width), .num = NUM_NONNEG) \
    X("methods[].ridge", "number", "1.0", "lime: ridge penalty of the weighted linear fit (the intercept is not" " penalised), >= 0.", .t = T_NUMBER, .kinds = K_LIME, .off = MOFF(ridge), .num = NUM_NONNEG) \
    X("methods[].grid", "integer", "8 (rise 7)", "sobol, rise: mask cells per side of the coarse grid, 1..4096 (rise at most 256, sobol at most the row's height and width and 4096 cells).", .t = T_INT, .kinds = K_SOBOL | K_RISE, .off = MOFF(grid), .lo = 1, .hi = 4096) \
    X("methods[].keep_prob", "number", "0.5", "rise: probability that a cell is kept, in (0, 1).", .t = T_NUMBER, .kinds = K_RISE, .off = MOFF(keep_prob), .num = NUM_POS) \
    X("metrics", "mapping", "{}", "Evaluation metrics of every method, written under /metrics/<method>/" " (docs/methods.md).", .t = T_SECTION) \
    X("metrics.curves", "boolean", "false", "Areas under the deletion and insertion curves, most- and " "least-relevant first (the four AUCs per row).", .t = T_BOOL, .off = JOFF(metrics.curves)) \
    X("metrics.curve_steps", "integer", "20", "Points of each curve after the start, 1..100000.", .t = T_INT, .off = JOFF(metrics.curve_steps), .lo = 1, .hi = 100000) \
    X("metrics.curve_output", "enum", "probability", "What the curves follow: probability (softmax of the target) or " "logit.", .t = T_ENUM, .off = JOFF(metrics.curve_logit), .names = CURVE_NAMES, .base0 = 1) \
    X("metrics.fill_value", "number", "0.0", "Value of deleted (or not yet inserted) features on the curves.", .t = T_NUMBER, .off = JOFF(metrics.fill_value)) \
    X("metrics.infidelity", "integer", "0", "Infidelity: Gaussian perturbations per row, 0..100000; 0 = off.", .t = T_INT, .off = JOFF(metrics.infidelity), .lo = 0, .hi = 100000) \
    X("metrics.infidelity_sigma", "number", "0.1", "Infidelity: standard deviation of the perturbations, > 0.", .t = T_NUMBER, .off = JOFF(metrics.infidelity_sigma), .num = NUM_POS) \
    X("metrics.sensitivity", "integer", "0", "Sensitivity-max: perturbed copies per row, each attributed again " "(costs that many times the method), 0..10000; 0 = off.", .t = T_INT, .off = JOFF(metrics.sensitivity), .lo = 0, .hi = 10000) \
    X("metrics.sensitivity_radius", "number", "0.02", "Sensitivity-max: radius of the L-infinity ball of the perturbations," " > 0.", .t = T_NUMBER, .off = JOFF(metrics.sensitivity_radius), .num = NUM_POS) \
    X("metrics.agreement", "boolean", "false", "Spearman, Kendall and top-k agreement of every pair of methods, per " "row.", .t = T_BOOL, .off = JOFF(metrics.agreement)) \
    X("metrics.top_k", "integer", "20", "Agreement: the k of the top-k overlap, 1..1000000.", .t = T_INT, .off = JOFF(metrics.top_k), .lo = 1, .hi = 1000000) \
    X("influence", "list", "—", "Training-data attribution methods, 1 to 16 mappings (see influence below; docs/influence.md has the formulas); run needs this or methods (or both).", .t = T_INFLUENCE) \
    X("influence[].name", "string", "required", "Unique name among methods and influence: letters, digits, _ and -, at most 63 characters. Names the results group /influence/<name>; --set can address the entry by it.", .t = T_NAME, .kinds = I_ALL, .off = IOFF(name), .cap = JOB_NAME_MAX) \
    X("influence[].kind", "enum", "required", "grad_dot, grad_cos, tracin, influence or trak; decides which other fields the entry takes.", .t = T_ENUM, .kinds = I_ALL, .off = IOFF(kind), .names = INFL_KIND_NAMES) \
    X("influence[].layers", "list", "[]", "The layers whose parameters' gradients are used: 0 to 16 layer names of the model (e.g. [fc2]); [] = every trainable tensor.", .t = T_NAMES, .kinds = I_ALL, .off = IOFF(n_layers), .off2 = IOFF(layers), .cap = JOB_NAME_MAX, .hi = JOB_MAX_SEL_LAYERS) \
    X("influence[].projection", "enum", "none (trak rademacher)", "grad_dot, grad_cos, tracin, trak: random projection of the gradients before they are stored and compared: none, gaussian, rademacher, sjlt (sparse) or kronecker (per linear layer, never forms the gradient).", .t = T_ENUM, .kinds = I_PROJ, .off = IOFF(projection), .names = PROJ_NAMES, .base0 = 1) \
    X("influence[].proj_dim", "integer", "0 (trak 512)", "The projected dimension, 1..1048576, required with a projection other than none (trak: 512 by default); 0 or absent with none.", .t = T_INT, .kinds = I_PROJ, .off = IOFF(proj_dim), .lo = 0, .hi = 1 << 20) \
    X("influence[].proj_seed", "integer", "—", "projection other than none: seed of the projection, >= 0; absent = run.seed (the effective job records the value).", .t = T_U64, .kinds = I_PROJ, .off = IOFF(proj_seed), .lo = 0) \
    X("influence[].normalize", "boolean", "false", "grad_dot, tracin: unit-normalise every (projected) gradient first (grad_cos always does).", .t = T_BOOL, .kinds = I_DOT | I_TRACIN, .off = IOFF(normalize)) \
    X("influence[].checkpoints", "string", "\"\"", "tracin: required, the checkpoint file whose checkpoints are summed, each weighted by its learning rate (a training job's train.checkpoints); trak: a checkpoint file whose checkpoints join the ensemble, \"\" = none.", .t = T_STRING, .kinds = I_TRACIN | I_TRAK, .off = IOFF(checkpoints), .cap = JOB_PATH_MAX) \
    X("influence[].models", "list", "[]", "trak: more model files in the ensemble (after model.path), 0 to 8 paths.", .t = T_PATHS, .kinds = I_TRAK, .off = IOFF(n_models), .off2 = IOFF(models), .cap = JOB_PATH_MAX, .hi = JOB_MAX_MODELS) \
    X("influence[].inverse", "enum", "exact", "influence: how (H + lambda I)^-1 is applied: exact (the matrix over the selected parameters, factored), cg (conjugate gradient), lissa, kfac or ekfac (Kronecker factors per linear layer).", .t = T_ENUM, .kinds = I_INFL, .off = IOFF(inverse), .names = INV_NAMES) \
    X("influence[].curvature", "enum", "gauss_newton", "influence: H is gauss_newton (J^T H_loss J, positive semi-definite) or hessian (of the mean training loss); kfac and ekfac take gauss_newton only.", .t = T_ENUM, .kinds = I_INFL, .off = IOFF(curvature), .names = CURV_NAMES) \
    X("influence[].damping", "number", "1e-3 (trak 1e-6)", "influence, trak: lambda added to the diagonal of the curvature (trak: of Phi^T Phi), >= 0; with damping_relative, a fraction of its mean eigenvalue.", .t = T_NUMBER, .kinds = I_INFL | I_TRAK, .off = IOFF(damping), .num = NUM_NONNEG) \
    X("influence[].damping_relative", "boolean", "false (trak true)", "influence, trak: true = lambda is damping times the mean eigenvalue (trace / dimension) of the matrix; the lambda used is recorded in the results.", .t = T_BOOL, .kinds = I_INFL | I_TRAK, .off = IOFF(damping_relative)) \
    X("influence[].hessian_rows", "integer", "0", "influence: train rows the curvature is estimated on, >= 0; 0 = all of train_data.rows.", .t = T_INT, .kinds = I_INFL, .off = IOFF(hessian_rows), .lo = 0) \
    X("influence[].cg_tol", "number", "1e-6", "inverse cg only: stop when the relative residual is at most this, > 0.", .t = T_NUMBER, .kinds = I_INFL, .off = IOFF(cg_tol), .num = NUM_POS) \
    X("influence[].cg_max_iter", "integer", "100", "inverse cg only: iterations at most, 1..1000000.", .t = T_INT, .kinds = I_INFL, .off = IOFF(cg_max_iter), .lo = 1, .hi = 1000000) \
    X("influence[].lissa_depth", "integer", "1000", "inverse lissa only: recursion steps per repeat, 1..10000000.", .t = T_INT, .kinds = I_INFL, .off = IOFF(lissa_depth), .lo = 1, .hi = 10000000) \
    X("influence[].lissa_scale", "number", "10.0", "inverse lissa only: the scale, > 0; it must exceed the largest eigenvalue of the damped curvature or the recursion diverges.", .t = T_NUMBER, .kinds = I_INFL, .off = IOFF(lissa_scale), .num = NUM_POS) \
    X("influence[].lissa_repeats", "integer", "1", "inverse lissa only: independent recursions averaged, 1..10000.", .t = T_INT, .kinds = I_INFL, .off = IOFF(lissa_repeats), .lo = 1, .hi = 10000) \
    X("influence[].lissa_batch", "integer", "64", "inverse lissa only: train rows per stochastic curvature product, 1..1000000.", .t = T_INT, .kinds = I_INFL, .off = IOFF(lissa_batch), .lo = 1, .hi = 1000000) \
    X("train_data", "mapping", "{}", "influence only: the training examples attributed to (rows of data.path).", .t = T_SECTION) \
    X("train_data.split", "string", "\"train\"", "Split of the dataset file that holds the training examples.", .t = T_STRING, .off = JOFF(tda.train_split), .cap = JOB_NAME_MAX, .nonempty = 1) \
    X("train_data.rows", "string or integer", "\":\"", "Rows of that split, written like data.rows; \":\" = all rows.", .t = T_ROWS, .off = JOFF(tda.train_start), .off2 = JOFF(tda.train_end)) \
    X("train_data.block_rows", "integer", "512", "Train rows per work unit when their gradients are computed and stored, 1..1000000.", .t = T_INT, .off = JOFF(tda.train_block_rows), .lo = 1, .hi = 1000000) \
    X("train_data.top_k", "integer", "10", "Proponents and opponents (highest and lowest scores) kept per test row, 0..1000; 0 = none.", .t = T_INT, .off = JOFF(tda.top_k), .lo = 0, .hi = 1000) \
    X("train_data.store", "string", "\"\"", "Directory of the stored train gradients, which later runs with the same model, rows and projection reuse; \"\" = OUTPUT.store (output.path with .store appended).", .t = T_STRING, .off = JOFF(tda.store), .cap = JOB_PATH_MAX) \
    X("ground_truth", "mapping", "{}", "influence only: leave-one-out and linear datamodeling score ground truth; both off by default.", .t = T_SECTION) \
    X("ground_truth.loo", "mapping", "{}", "Leave-one-out retraining of a convex model (needs train.optimizer: newton).", .t = T_SECTION) \
    X("ground_truth.loo.points", "integer", "0", "Train points, each refitted without, 0..1000000; 0 = off.", .t = T_INT, .off = JOFF(tda.loo_points), .lo = 0, .hi = 1000000) \
    X("ground_truth.loo.tol", "number", "1e-10", "Gradient norm that ends a refit, > 0.", .t = T_NUMBER, .off = JOFF(tda.loo_tol), .num = NUM_POS) \
    X("ground_truth.loo.max_iter", "integer", "100", "Newton steps per refit at most, 1..100000.", .t = T_INT, .off = JOFF(tda.loo_max_iter), .lo = 1, .hi = 100000) \
    X("ground_truth.lds", "mapping", "{}", "Linear datamodeling score (needs a train section: how each subset's model is trained).", .t = T_SECTION) \
    X("ground_truth.lds.subsets", "integer", "0", "Random train subsets M, each trained from scratch, 0 or 5..100000; 0 = off.", .t = T_INT, .off = JOFF(tda.lds_subsets), .lo = 0, .hi = 100000) \
    X("ground_truth.lds.fraction", "number", "0.5", "Fraction alpha of the train rows in each subset, in (0, 1).", .t = T_NUMBER, .off = JOFF(tda.lds_fraction), .num = NUM_OPEN01) \
    X("ground_truth.lds.seeds", "integer", "1", "Training seeds R per subset (their margins are averaged), 1..1000.", .t = T_INT, .off = JOFF(tda.lds_seeds), .lo = 1, .hi = 1000) \
    X("ground_truth.lds.bootstrap", "integer", "1000", "Bootstrap resamples of the test rows for the confidence interval of the mean LDS, 0..1000000; 0 = none.", .t = T_INT, .off = JOFF(tda.lds_bootstrap), .lo = 0, .hi = 1000000) \
    X("run", "mapping", "{}", "How the work is cut into units and run.",       \
      .t = T_SECTION)                                                          \
    X("run.scheduler", "enum", "static",                                       \
      "Who computes which unit: static = contiguous cost-weighted blocks per " \
      "rank; dynamic = ranks ask rank 0 for chunks that shrink toward the "  \
      "end. Results are the same bytes either way.",                          \
      .t = T_ENUM, .off = JOFF(scheduler), .names = SCHED_NAMES)               \
    X("run.block_rows", "integer", "64", "Rows per work unit, 1..1000000.",    \
      .t = T_INT, .off = JOFF(block_rows), .lo = 1, .hi = 1000000)             \
    X("run.step_block", "integer", "0",                                        \
      "Path steps per work unit, >= 0; 0 = all steps of a row block in one "   \
      "unit.",                                                                 \
      .t = T_INT, .off = JOFF(step_block), .lo = 0)                            \
    X("run.seed", "integer", "0",                                              \
      "Seed of the counter-based RNG, >= 0; results do not depend on the "     \
      "number of ranks.",                                                      \
      .t = T_U64, .off = JOFF(seed), .lo = 0)                                  \
    X("run.blas_threads", "integer", "1",                                      \
      "OpenBLAS threads per rank, 1..256 (ranks are the parallelism).",        \
      .t = T_INT, .off = JOFF(blas_threads), .lo = 1, .hi = 256)               \
    X("run.progress_interval", "number", "5.0",                                \
      "Seconds between progress lines, > 0.",                                  \
      .t = T_NUMBER, .off = JOFF(progress_interval), .num = NUM_POS)           \
    X("run.checkpoint_interval", "number", "60.0",                             \
      "Seconds of finished work a rank holds before writing it to a shard "    \
      "(fsync'd); >= 0, 0 = a shard after every unit. A kill loses at most "   \
      "this much work per rank.",                                              \
      .t = T_NUMBER, .off = JOFF(checkpoint_interval), .num = NUM_NONNEG)      \
    X("run.max_wall_time", "duration", "0",                                    \
      "Stop cleanly at a unit boundary before this much time has passed and "  \
      "exit 75 (resumable); seconds, or \"90m\", \"2h\", \"1-00:00:00\"; 0 = no "   \
      "limit.",                                                                \
      .t = T_DURATION, .off = JOFF(max_wall_time))                             \
    X("run.stop_file", "string", "\"\"",                                        \
      "When this file appears the run stops cleanly at a unit boundary and "   \
      "exits 75; \"\" = OUTPUT.stop (output.path with .stop appended).",        \
      .t = T_STRING, .off = JOFF(stop_file), .cap = JOB_PATH_MAX)              \
    X("train", "mapping", "—",                                                 \
      "Training settings; its presence (even empty) enables them. Required "   \
      "by train.",                                                             \
      .t = T_SECTION, .req = P_TRAIN)                                          \
    X("train.epochs", "integer", "10",                                         \
      "Passes over the data, 1..100000; not with newton.",                     \
      .t = T_INT, .off = JOFF(epochs), .lo = 1, .hi = 100000, .when = W_ITER)  \
    X("train.batch_size", "integer", "128",                                    \
      "Rows per minibatch, 1..1000000; not with newton.",                      \
      .t = T_INT, .off = JOFF(batch_size), .lo = 1, .hi = 1000000,             \
      .when = W_ITER)                                                          \
    X("train.optimizer", "enum", "sgd",                                        \
      "sgd, adam or adamw (PyTorch's SGD, Adam and AdamW), or newton "        \
      "(full-batch Newton's method in float64 on the mean loss plus "          \
      "weight_decay/2 times the squared norm of the parameters, for convex "   \
      "models such as a linear layer on fixed features; needs weight_decay > " \
      "0).",                                                                   \
      .t = T_ENUM, .off = JOFF(optimizer), .names = OPT_NAMES, .vals = OPT_VALS) \
    X("train.tol", "number", "1e-10",                                          \
      "newton only: stop when the gradient norm of the objective is at most "  \
      "this, > 0.", .t = T_NUMBER, .off = JOFF(newton_tol), .num = NUM_POS,    \
      .when = W_NEWTON)                                                        \
    X("train.max_iter", "integer", "50",                                       \
      "newton only: Newton steps at most, 1..10000.", .t = T_INT,              \
      .off = JOFF(newton_max_iter), .lo = 1, .hi = 10000, .when = W_NEWTON)    \
    X("train.lr", "number", "0.05",                                            \
      "sgd, adam, adamw: learning rate, > 0 (the schedule's starting value).", \
      .t = T_NUMBER, .off = JOFF(lr), .num = NUM_POS, .when = W_ITER)          \
    X("train.momentum", "number", "0.9", "sgd only: momentum, in [0, 1).",     \
      .t = T_NUMBER, .off = JOFF(momentum), .num = NUM_UNIT, .when = W_SGD)    \
    X("train.nesterov", "boolean", "false",                                    \
      "sgd only: Nesterov momentum (needs momentum > 0).", .t = T_BOOL,        \
      .off = JOFF(nesterov), .when = W_SGD)                                    \
    X("train.betas", "list", "[0.9, 0.999]",                                   \
      "adam and adamw only: the two moment decay rates, each in [0, 1).",      \
      .t = T_BETAS, .when = W_ADAM)                                            \
    X("train.eps", "number", "1e-8",                                             \
      "adam and adamw only: added to the denominator, > 0.", .t = T_NUMBER,    \
      .off = JOFF(adam_eps), .num = NUM_POS, .when = W_ADAM)                   \
    X("train.weight_decay", "number", "0.0",                                   \
      "Weight decay, >= 0: L2 added to the gradient (sgd, adam), decoupled "   \
      "(adamw), the L2 term of the objective (newton).",                       \
      .t = T_NUMBER, .off = JOFF(weight_decay), .num = NUM_NONNEG)             \
    X("train.schedule", "enum", "constant",                                    \
      "Learning rate per epoch: constant, step (times gamma every step_size "  \
      "epochs) or cosine (annealed from lr towards min_lr over the epochs); "  \
      "not with newton.",                                                      \
      .t = T_ENUM, .off = JOFF(schedule), .names = LR_NAMES, .base0 = 1,       \
      .when = W_ITER)                                                          \
    X("train.step_size", "integer", "10",                                      \
      "schedule: step only: epochs between decays, 1..100000.", .t = T_INT,    \
      .off = JOFF(step_size), .lo = 1, .hi = 100000, .when = W_STEP)           \
    X("train.gamma", "number", "0.1",                                          \
      "schedule: step only: the decay factor, > 0.", .t = T_NUMBER,            \
      .off = JOFF(gamma), .num = NUM_POS, .when = W_STEP)                      \
    X("train.min_lr", "number", "0.0",                                         \
      "schedule: cosine only: the floor it anneals to (eta_min), >= 0.",       \
      .t = T_NUMBER, .off = JOFF(min_lr), .num = NUM_NONNEG, .when = W_COSINE) \
    X("train.loss", "enum", "cross_entropy",                                   \
      "cross_entropy (of the softmax of the outputs) or mse (squared error "   \
      "against one-hot labels).",                                              \
      .t = T_ENUM, .off = JOFF(loss), .names = LOSS_NAMES, .base0 = 1)         \
    X("train.label_smoothing", "number", "0.0",                                \
      "cross_entropy only: label smoothing, in [0, 1).", .t = T_NUMBER,        \
      .off = JOFF(label_smoothing), .num = NUM_UNIT, .when = W_XENT)           \
    X("train.checkpoint_every", "integer", "0",                                \
      "Write a checkpoint every this many epochs (a resumable training "       \
      "state); 0 = never; not with newton.", .t = T_INT,                       \
      .off = JOFF(checkpoint_every), .lo = 0, .hi = 100000, .when = W_ITER)    \
    X("train.checkpoints", "string", "\"\"",                                   \
      "Checkpoint file; \"\" = model.path with .h5 replaced by .ckpt.h5 (or "  \
      ".ckpt.h5 appended).", .t = T_STRING, .off = JOFF(checkpoint_path),      \
      .cap = JOB_PATH_MAX)                                                     \
    X("train.seed", "integer", "0",                                            \
      "Seed of parameter initialisation and minibatch order, >= 0.",           \
      .t = T_U64, .off = JOFF(train_seed), .lo = 0)                            \
    X("train.eval_split", "string", "\"test\"",                                \
      "Split evaluated after each epoch; \"\" = no evaluation.",               \
      .t = T_STRING, .off = JOFF(eval_split), .cap = JOB_NAME_MAX)             \
    X("output", "mapping", "{}", "The results file.", .t = T_SECTION)          \
    X("output.path", "string", "required",                                     \
      "Results file (HDF5, docs/format.md); required by run.",                 \
      .t = T_STRING, .req = P_RUN, .off = JOFF(output_path),                   \
      .cap = JOB_PATH_MAX, .nonempty = 1)                                      \
    X("output.compression", "integer", "4",                                    \
      "Deflate level of the score datasets, 0..9 (0 = none).", .t = T_INT,     \
      .off = JOFF(compression), .lo = 0, .hi = 9)                              \
    X("output.overwrite", "boolean", "false",                                  \
      "true = replace an existing results file of another job when this run "  \
      "finishes (until then it is left as it is).", .t = T_BOOL,               \
      .off = JOFF(overwrite))                                                  \
    X("output.keep_shards", "boolean", "false",                                \
      "true = keep OUTPUT.shards/ (the per-rank unit files) after the "        \
      "results file is assembled.", .t = T_BOOL, .off = JOFF(keep_shards))     \
    X("sweep", "mapping", "—",                                                 \
      "A grid of runs: each key is a --set path (methods.ig.n_steps, "         \
      "run.seed, model.path, ...), each value a non-empty list of values; "    \
      "every combination (first key slowest) is one point (docs/jobs.md, "     \
      "Sweeps). methods jobs only.", .t = T_SWEEP)

#define AS_DOC(path, type, deflt, doc, ...) {path, type, deflt, doc},
#define AS_RULE(path, type, deflt, doc, ...) {__VA_ARGS__},

static const job_field_doc DOCS[] = {SCHEMA(AS_DOC)};
static const rule RULES[] = {SCHEMA(AS_RULE)};

enum { N_RULES = (int)(sizeof RULES / sizeof RULES[0]) };
_Static_assert(sizeof DOCS / sizeof DOCS[0] == sizeof RULES / sizeof RULES[0],
               "schema tables differ");

const job_field_doc *job_schema_fields(int *n) {
    AT_CHECK(n != NULL);
    *n = N_RULES;
    return DOCS;
}

static int has_default(int ri) {
    return strcmp(DOCS[ri].deflt, "required") && strcmp(DOCS[ri].deflt, "—");
}

/* After the last '.' (the key inside its section). */
static const char *leaf(const char *path) {
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

/* Is path a direct field of sect ("data", "methods[]"; NULL = top level)? */
static int in_section(const char *path, const char *sect) {
    if (!sect) return strchr(path, '.') == NULL;
    size_t k = strlen(sect);
    return strncmp(path, sect, k) == 0 && path[k] == '.' &&
           strchr(path + k + 1, '.') == NULL;
}

static int find_rule(const char *sect, const char *key) {
    for (int i = 0; i < N_RULES; i++)
        if (in_section(DOCS[i].path, sect) && !strcmp(leaf(DOCS[i].path), key))
            return i;
    return -1;
}

static int rule_index(const char *path) {
    for (int i = 0; i < N_RULES; i++)
        if (!strcmp(DOCS[i].path, path)) return i;
    AT_CHECK(!"schema path not in the table");
    return -1;
}

/* "a, b, c": the keys of sect, or of a method kind when kinds != 0. */
static char *known_keys(const char *sect, unsigned kinds) {
    yt_buf b = {0};
    for (int i = 0; i < N_RULES; i++) {
        if (!in_section(DOCS[i].path, sect)) continue;
        if (kinds && !(RULES[i].kinds & kinds)) continue;
        yt_add(&b, "%s%s", b.n ? ", " : "", leaf(DOCS[i].path));
    }
    return yt_take(&b);
}

/* The word of enum value v: names[v - 1], or names[v] when base0. */
static const char *enum_name(const char *const *names, int v, int base0) {
    for (int i = 0; names[i]; i++)
        if (i + !base0 == v) return names[i];
    return NULL;
}

/* The value of names[i] of enum rule r. */
static int enum_value(const rule *r, int i) {
    return r->vals ? r->vals[i] : i + !r->base0;
}

/* The word of value v of enum rule r, or NULL. */
static const char *rule_enum_name(const rule *r, int v) {
    for (int i = 0; r->names[i]; i++)
        if (enum_value(r, i) == v) return r->names[i];
    return NULL;
}

/* train.optimizer's word for value v ("?" when none). */
static const char *opt_word(int v) {
    for (int i = 0; OPT_NAMES[i]; i++)
        if (OPT_VALS[i] == v) return OPT_NAMES[i];
    return "?";
}

const char *job_method_kind_name(job_method_kind k) {
    const char *s = enum_name(KIND_NAMES, (int)k, 0);
    return s ? s : "?";
}

const char *job_quadrature_name(job_quadrature q) {
    const char *s = enum_name(QUAD_NAMES, (int)q, 0);
    return s ? s : "?";
}

const char *job_baseline_name(job_baseline b) {
    const char *s = enum_name(BASELINE_NAMES, (int)b, 0);
    return s ? s : "?";
}

const char *job_scheduler_name(job_scheduler s) {
    const char *n = enum_name(SCHED_NAMES, (int)s, 0);
    return n ? n : "?";
}

const char *job_infl_kind_name(job_infl_kind k) {
    const char *s = enum_name(INFL_KIND_NAMES, (int)k, 0);
    return s ? s : "?";
}

const char *job_inverse_name(job_inverse v) {
    const char *s = enum_name(INV_NAMES, (int)v, 0);
    return s ? s : "?";
}

const char *job_projection_name(job_projection p) {
    const char *s = enum_name(PROJ_NAMES, (int)p, 1);
    return s ? s : "?";
}

const char *job_curvature_name(job_curvature c) {
    const char *s = enum_name(CURV_NAMES, (int)c, 0);
    return s ? s : "?";
}

const char *job_target_name(const job_method *m, char *buf, size_t cap) {
    AT_CHECK(m != NULL && buf != NULL && cap >= 16);
    if (m->target == JOB_TARGET_PREDICTED) return "predicted";
    if (m->target == JOB_TARGET_LABEL) return "label";
    snprintf(buf, cap, "%d", m->target_class);
    return buf;
}

/* ------------------------------------------------------ scalar grammar */

/* A duration in seconds: "3600", "1.5", "90s", "30m", "2h", "1d", "MM:SS",
 * "HH:MM:SS", "D-HH:MM:SS". Returns 0, or -1 when s is none of these. */
static int parse_duration(const char *s, double *out) {
    double x;
    if (yt_parse_num(s, &x) == 0) {
        if (!(x >= 0)) return -1;
        *out = x;
        return 0;
    }
    size_t n = strlen(s);
    if (n >= 2 && strchr("smhd", s[n - 1]) && !strchr(s, ':')) {
        char buf[64];
        if (n - 1 >= sizeof buf) return -1;
        memcpy(buf, s, n - 1);
        buf[n - 1] = '\0';
        if (yt_parse_num(buf, &x) || !(x >= 0)) return -1;
        double unit = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 : s[n - 1] == 'h' ? 3600 : 86400;
        if (!isfinite(x * unit)) return -1; /* "1e308d" */
        *out = x * unit;
        return 0;
    }
    /* [D-]HH:MM:SS or MM:SS, all integers */
    long part[4] = {0};
    int np = 0;
    long days = 0;
    const char *q = s;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        days = strtol(s, &end, 10);
        if (end != dash || end == s || days < 0) return -1;
        q = dash + 1;
    }
    while (*q) {
        if (np == 3 || *q < '0' || *q > '9') return -1;
        char *end;
        part[np++] = strtol(q, &end, 10);
        if (*end == ':') {
            q = end + 1;
            if (!*q) return -1;
        } else if (*end) {
            return -1;
        } else {
            q = end;
        }
    }
    if (np < 2 || (dash && np != 3)) return -1;
    double secs = np == 3 ? part[0] * 3600.0 + part[1] * 60.0 + part[2] : part[0] * 60.0 + part[1];
    if ((np == 3 && (part[1] > 59 || part[2] > 59)) || (np == 2 && part[1] > 59)) return -1;
    *out = days * 86400.0 + secs;
    return 0;
}

/* Rows "a:b" (sides optional, a < b when both) into [*a, *b), b = -1 for
 * "to the end". Returns 0 or -1. */
static int parse_rows(const char *s, int64_t *a, int64_t *b) {
    const char *colon = strchr(s, ':');
    if (!colon || strchr(colon + 1, ':')) return -1;
    int64_t v[2] = {0, -1};
    const char *side[2] = {s, colon + 1};
    size_t len[2] = {(size_t)(colon - s), strlen(colon + 1)};
    for (int k = 0; k < 2; k++) {
        if (len[k] == 0) continue;
        uint64_t x = 0;
        for (size_t i = 0; i < len[k]; i++) {
            char ch = side[k][i];
            if (ch < '0' || ch > '9') return -1;
            uint64_t d = (uint64_t)(ch - '0');
            if (x > ((uint64_t)INT64_MAX - d) / 10) return -1; /* up to INT64_MAX */
            x = x * 10 + d;
        }
        v[k] = (int64_t)x;
    }
    if (v[1] >= 0 && v[0] >= v[1]) return -1;
    *a = v[0];
    *b = v[1];
    return 0;
}

/* ------------------------------------------------------------ converting */

static void int_expect(const rule *r, char *buf, size_t cap) {
    if (r->hi)
        snprintf(buf, cap, "an integer in %" PRId64 "..%" PRId64, r->lo, r->hi);
    else
        snprintf(buf, cap, "an integer >= %" PRId64, r->lo);
}

static const char *num_expect(numrange nr) {
    switch (nr) {
    case NUM_POS: return "a number > 0";
    case NUM_NONNEG: return "a number >= 0";
    case NUM_UNIT: return "a number in [0, 1)";
    case NUM_OPEN01: return "a number in (0, 1)";
    case NUM_ANY: break;
    }
    return "a number";
}

static int num_ok(numrange nr, double v) {
    switch (nr) {
    case NUM_POS: return v > 0;
    case NUM_NONNEG: return v >= 0;
    case NUM_UNIT: return v >= 0 && v < 1;
    case NUM_OPEN01: return v > 0 && v < 1;
    case NUM_ANY: break;
    }
    return 1;
}

/* data.rows, train_data.rows: "a:b" (any style) or a plain row count n =
 * "0:n", into *start and *end. */
static int conv_rows(const yt_ctx *c, const yt_node *v, const char *path, int64_t *start,
                     int64_t *end) {
    const char *what = "\"start:end\" (either side optional, start < end, "
                       "e.g. \"0:1000\", \":500\", \"100:\") or a row count >= 1";
    char got[YT_SHOW_MAX + 64];
    show(v, got, sizeof got);
    if (v->type != YT_SCALAR || yt_is_null(v)) return yt_fail_at(c, v, path, what, got);
    int neg;
    uint64_t mag;
    if (v->plain && yt_parse_int(v->text, &neg, &mag) == 0) {
        if (neg || mag == 0 || mag > (uint64_t)INT64_MAX)
            return yt_fail_at(c, v, path, what, got);
        *start = 0;
        *end = (int64_t)mag;
        return 0;
    }
    if (parse_rows(v->text, start, end))
        return yt_fail_at(c, v, path, what, got);
    return 0;
}

/* methods[].target: predicted | label (any style) or a plain class index. */
static int conv_target(const yt_ctx *c, const yt_node *v, const char *path,
                       job_method *m) {
    const char *what = "predicted, label or a class index >= 0";
    char got[YT_SHOW_MAX + 64];
    yt_show(v, got, sizeof got, 1);
    if (v->type != YT_SCALAR) return yt_fail_at(c, v, path, what, got);
    if (!strcmp(v->text, "predicted") || !strcmp(v->text, "label")) {
        m->target = v->text[0] == 'p' ? JOB_TARGET_PREDICTED : JOB_TARGET_LABEL;
        m->target_class = 0;
        return 0;
    }
    int neg;
    uint64_t mag;
    if (!v->plain || yt_parse_int(v->text, &neg, &mag) != 0 || (neg && mag > 0))
        return yt_fail_at(c, v, path, what, got);
    if (mag > INT_MAX)
        return yt_fail(c, v->line, v->set, path, "expected %s, got %s (too large)",
                    what, got);
    m->target = JOB_TARGET_CLASS;
    m->target_class = (int)mag;
    return 0;
}

/* model.hidden: a list of 1..JOB_MAX_HIDDEN widths. */
static int conv_hidden(const yt_ctx *c, const yt_node *v, const char *path, job *j) {
    char got[YT_SHOW_MAX + 64], what[96], ipath[128];
    snprintf(what, sizeof what, "a list of 1 to %d layer widths", JOB_MAX_HIDDEN);
    if (v->type != YT_SEQ) return yt_fail_at(c, v, path, what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > JOB_MAX_HIDDEN) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, path, what, got);
    }
    snprintf(what, sizeof what, "an integer in 1..%d", HIDDEN_MAX_WIDTH);
    for (int i = 0; i < v->n; i++) {
        uint64_t w;
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (yt_conv_int(c, v->ent[i].val, ipath, 1, HIDDEN_MAX_WIDTH, what, 1, &w))
            return c->err->code;
        j->hidden[i] = (int)w;
    }
    j->n_hidden = v->n;
    return 0;
}

/* A list of 1 to 3 integers in 1..hi into dims (*n of them); what and
 * item_what describe the list and an element in messages. */
static int conv_int_list(const yt_ctx *c, const yt_node *v, const char *path,
                         const char *what, const char *item_what, uint64_t hi,
                         int show_range, int *n, int *dims) {
    char got[YT_SHOW_MAX + 64], ipath[128];
    if (v->type != YT_SEQ) return yt_fail_at(c, v, path, what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > 3) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, path, what, got);
    }
    for (int i = 0; i < v->n; i++) {
        uint64_t d;
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (yt_conv_int(c, v->ent[i].val, ipath, 1, hi, item_what, show_range, &d))
            return c->err->code;
        dims[i] = (int)d;
    }
    *n = v->n;
    return 0;
}

/* model.input_shape: 1 to 3 dims >= 1 with at most H5IO's 2^31-1 elements. */
static int conv_shape(const yt_ctx *c, const yt_node *v, const char *path, job *j) {
    int n, dims[3];
    if (conv_int_list(c, v, path, "a list of 1 to 3 integers >= 1 (e.g. [1, 28, 28])",
                      "an integer >= 1", INT_MAX, 0, &n, dims))
        return c->err->code;
    double numel = 1;
    for (int i = 0; i < n; i++) {
        j->input_shape[i] = dims[i];
        numel *= (double)dims[i];
    }
    if (numel > INT_MAX)
        return yt_fail(c, v->line, v->set, path, "%.0f elements per example, at most %d",
                       numel, INT_MAX);
    j->input_ndim = n;
    return 0;
}

/* A list of 1 to 3 integers >= 1 (window, stride, patch). */
static int conv_dims(const yt_ctx *c, const yt_node *v, const char *path, int *n,
                     int *dims) {
    return conv_int_list(c, v, path, "a list of 1 to 3 integers >= 1 (e.g. [4, 4])",
                         "an integer in 1..1048576", 1 << 20, 1, n, dims);
}

/* train.betas: two numbers in [0, 1). */
static int conv_betas(const yt_ctx *c, const yt_node *v, const char *path, job *j) {
    char got[YT_SHOW_MAX + 64];
    const char *what = "a list of two numbers in [0, 1) (e.g. [0.9, 0.999])";
    if (v->type != YT_SEQ) return yt_fail_at(c, v, path, what, show(v, got, sizeof got));
    if (v->n != 2) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, path, what, got);
    }
    double b[2];
    for (int i = 0; i < 2; i++) {
        const yt_node *x = v->ent[i].val;
        int rc = x->type == YT_SCALAR && x->plain ? yt_parse_num(x->text, &b[i]) : -1;
        if (rc || !num_ok(NUM_UNIT, b[i]))
            return yt_fail(c, x->line, x->set, path, "expected %s, got %s%s", what,
                           yt_show(x, got, sizeof got, 1), rc > 0 ? " (not finite)" : "");
    }
    j->beta1 = b[0];
    j->beta2 = b[1];
    return 0;
}

/* influence[].layers (T_NAMES) and influence[].models (T_PATHS): a list of
 * 0 to r->hi distinct strings of at most r->cap - 1 bytes into the count at
 * r->off and the char[r->hi][r->cap] at r->off2. Layer names are what
 * model.layers allows: letters, digits, '_', '.' and '-'. */
static int conv_str_list(const yt_ctx *c, const rule *r, const yt_node *v, const char *path,
                         void *base) {
    char got[YT_SHOW_MAX + 64], what[128], ipath[160];
    int names = r->t == T_NAMES;
    snprintf(what, sizeof what, "a list of 0 to %d %s", (int)r->hi,
             names ? "layer names (e.g. [fc1, fc2])" : "file paths");
    if (v->type != YT_SEQ) return yt_fail_at(c, v, path, what, show(v, got, sizeof got));
    if (v->n > r->hi) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, path, what, got);
    }
    char *arr = (char *)base + r->off2;
    const char *item = names ? "a layer name of letters, digits, '_', '.' and '-'"
                             : "a non-empty path";
    for (int i = 0; i < v->n; i++) {
        const yt_node *x = v->ent[i].val;
        char *dst = arr + (size_t)i * r->cap;
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (yt_conv_str(c, x, ipath, r->cap, 1, item, dst)) return c->err->code;
        if (names && strspn(dst, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789_.-") != strlen(dst))
            return yt_fail_at(c, x, ipath, item, show(x, got, sizeof got));
        for (int k = 0; k < i; k++)
            if (!strcmp(arr + (size_t)k * r->cap, dst))
                return yt_fail(c, x->line, x->set, ipath, "'%s' is listed twice (also [%d])",
                               dst, k);
    }
    /* unused entries stay zero, so a job has one representation */
    memset(arr + (size_t)v->n * r->cap, 0, (size_t)(r->hi - v->n) * r->cap);
    *(int *)(void *)((char *)base + r->off) = v->n;
    return 0;
}

/* Convert value v of rule ri into base (a job, a job_method for methods[]
 * fields, a job_influence for influence[] fields). path names the field in
 * messages. */
static int conv(const yt_ctx *c, int ri, const char *path, const yt_node *v,
                void *base) {
    const rule *r = &RULES[ri];
    char *dst = (char *)base + r->off;
    char got[YT_SHOW_MAX + 64], what[256];
    switch (r->t) {
    case T_STRING:
        return yt_conv_str(c, v, path, r->cap, r->nonempty,
                        r->nonempty ? "a non-empty string" : "a string", dst);
    case T_NAME: {
        const char *w = "a name of letters, digits, '_' and '-'";
        if (yt_conv_str(c, v, path, r->cap, 1, w, dst)) return c->err->code;
        if (strspn(dst, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_-") != strlen(dst))
            return yt_fail_at(c, v, path, w, show(v, got, sizeof got));
        return 0;
    }
    case T_INT:
    case T_U64: {
        uint64_t hi = r->hi ? (uint64_t)r->hi : r->t == T_INT ? INT_MAX : UINT64_MAX;
        uint64_t x;
        int_expect(r, what, sizeof what);
        if (yt_conv_int(c, v, path, r->lo, hi, what, r->hi != 0, &x))
            return c->err->code;
        if (r->t == T_INT)
            *(int *)(void *)dst = (int)x;
        else
            *(uint64_t *)(void *)dst = x;
        return 0;
    }
    case T_NUMBER: {
        double x = 0;
        int rc = v->type == YT_SCALAR && v->plain ? yt_parse_num(v->text, &x) : -1;
        if (rc || !num_ok(r->num, x))
            return yt_fail(c, v->line, v->set, path, "expected %s, got %s%s",
                        num_expect(r->num), yt_show(v, got, sizeof got, 1),
                        rc > 0 ? " (not finite)" : "");
        *(double *)(void *)dst = x;
        return 0;
    }
    case T_BOOL: {
        int b = v->type == YT_SCALAR && v->plain ? yt_parse_bool(v->text) : -1;
        if (b < 0)
            return yt_fail_at(c, v, path, "true or false", yt_show(v, got, sizeof got, 1));
        *(int *)(void *)dst = b;
        return 0;
    }
    case T_ENUM: {
        yt_buf b = {0};
        if (v->type == YT_SCALAR)
            for (int i = 0; r->names[i]; i++)
                if (!strcmp(v->text, r->names[i])) {
                    *(int *)(void *)dst = enum_value(r, i);
                    return 0;
                }
        for (int i = 0; r->names[i]; i++)
            yt_add(&b, "%s%s", i ? ", " : "", r->names[i]);
        snprintf(what, sizeof what, "one of %s", b.s);
        free(b.s);
        return yt_fail_at(c, v, path, what, show(v, got, sizeof got));
    }
    case T_DURATION: {
        double x = 0;
        if (v->type != YT_SCALAR || parse_duration(v->text, &x))
            return yt_fail_at(c, v, path,
                           "a duration >= 0: seconds, or \"90s\", \"30m\", \"2h\", \"1d\", "
                           "\"MM:SS\", \"HH:MM:SS\" or \"D-HH:MM:SS\"",
                           show(v, got, sizeof got));
        *(double *)(void *)dst = x;
        return 0;
    }
    case T_ROWS:
        return conv_rows(c, v, path, (int64_t *)(void *)dst,
                         (int64_t *)(void *)((char *)base + r->off2));
    case T_NAMES:
    case T_PATHS: return conv_str_list(c, r, v, path, base);
    case T_TARGET: return conv_target(c, v, path, base);
    case T_HIDDEN: return conv_hidden(c, v, path, base);
    case T_LAYERS: {
        job *j = base;
        return arch_parse_node(c, v, path, 1, j->layers, JOB_MAX_LAYERS, &j->n_layers);
    }
    case T_SHAPE: return conv_shape(c, v, path, base);
    case T_BETAS: return conv_betas(c, v, path, base);
    case T_DIMS:
        return conv_dims(c, v, path, (int *)(void *)dst,
                         (int *)(void *)((char *)base + r->off2));
    case T_SECTION:
    case T_METHODS:
    case T_INFLUENCE:
    case T_SWEEP: break;
    }
    return at_err_set(c->err, AT_EINTERNAL, "job: %s: no converter", path);
}

/* The default text of rule ri for the list entry kind named `name` (NULL =
 * not a list field). A default may name values of some kinds after the
 * common one: "50 (shapley_sampling 25, kernel_shap 200)". */
static void default_text(int ri, const char *name, char *out, size_t cap) {
    const char *d = DOCS[ri].deflt, *paren = strstr(d, " (");
    size_t n = paren ? (size_t)(paren - d) : strlen(d);
    snprintf(out, cap, "%.*s", (int)n, d);
    if (!paren || !name) return;
    size_t ln = strlen(name);
    for (const char *q = paren + 2; *q && *q != ')';) {
        const char *end = q + strcspn(q, ",)");
        if ((size_t)(end - q) > ln && !strncmp(q, name, ln) && q[ln] == ' ')
            snprintf(out, cap, "%.*s", (int)(end - q - ln - 1), q + ln + 1);
        q = *end == ',' ? end + 2 : end;
    }
}

/* Apply rule ri's default (YAML text in the table) for the list entry kind
 * named `kind` (NULL outside lists) to base. */
static void apply_default(int ri, void *base, const char *kind) {
    at_err e = {0};
    yt_ctx dc = {"<schema default>", NULL, 0, &e, NULL};
    yt_node *v = NULL;
    char text[128];
    default_text(ri, kind, text, sizeof text);
    int rc = yt_read(&dc, text, -1, &v);
    if (!rc && v) rc = conv(&dc, ri, DOCS[ri].path, v, base);
    if (rc || !v) fprintf(stderr, "attrib: bad schema default: %s\n", e.msg);
    AT_CHECK(rc == 0 && v != NULL);
    yt_free(v);
}

/* ----------------------------------------------------------- validating */

static void join_path(char *buf, size_t cap, const char *prefix, const char *key) {
    if (prefix)
        snprintf(buf, cap, "%s.%s", prefix, key);
    else
        snprintf(buf, cap, "%s", key);
}

/* Every key of map once; prefix names the map in messages (NULL = top). */
static int check_dups(const yt_ctx *c, const yt_node *map, const char *prefix) {
    char path[512];
    for (int i = 0; i < map->n; i++)
        for (int k = 0; k < i; k++)
            if (!strcmp(map->ent[i].key, map->ent[k].key)) {
                join_path(path, sizeof path, prefix, map->ent[i].key);
                return yt_fail(c, map->ent[i].line, map->ent[i].set, path,
                            "duplicate key (first given at line %d)",
                            map->ent[k].line);
            }
    return 0;
}

/* Unknown key error: "PATH: unknown key (known keys in SECT: ...)". */
static int fail_unknown(const yt_ctx *c, const yt_entry *e, const char *prefix,
                        const char *sect) {
    char path[512];
    join_path(path, sizeof path, prefix, e->key);
    char *known = known_keys(sect, 0);
    if (sect)
        yt_fail(c, e->line, e->set, path, "unknown key (known keys in %s: %s)", sect,
             known);
    else
        yt_fail(c, e->line, e->set, path, "unknown key (known top-level keys: %s)",
             known);
    free(known);
    return c->err->code;
}

/* Section si (data, model, run, train, output, ...; or a section inside
 * one, ground_truth.loo) from v into j; at[ri] is set to the value node of
 * every field given. */
static int fill_section(const yt_ctx *c, int si, const yt_node *v, job *j,
                        const yt_node **at) {
    const char *sect = DOCS[si].path;
    char got[YT_SHOW_MAX + 64];
    if (yt_is_null(v)) return 0; /* "train:" alone = all defaults */
    if (v->type != YT_MAP)
        return yt_fail_at(c, v, sect, "a mapping of fields", show(v, got, sizeof got));
    if (check_dups(c, v, sect)) return c->err->code;
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule(sect, v->ent[i].key);
        if (ri < 0) return fail_unknown(c, &v->ent[i], sect, sect);
        at[ri] = v->ent[i].val;
        int rc = RULES[ri].t == T_SECTION ? fill_section(c, ri, v->ent[i].val, j, at)
                                          : conv(c, ri, DOCS[ri].path, v->ent[i].val, j);
        if (rc) return c->err->code;
    }
    return 0;
}

/* Why field `key` of method m does nothing with m's other settings (NULL
 * when it is used): given, it is an error; emitting, it is left out. */
static const char *method_field_unused(const job_method *m, const char *key) {
    if ((!strcmp(key, "noise_samples") || !strcmp(key, "noise_sigma")) && m->noise == 0)
        return "only used with noise other than none";
    if (!strcmp(key, "gamma") && m->lrp_rule != 2) return "only used with rule: gamma";
    if ((!strcmp(key, "alpha") || !strcmp(key, "beta")) && m->lrp_rule != 4)
        return "only used with rule: alpha_beta";
    if (!strcmp(key, "feature_mask") && !m->feature_mask[0]) return "empty";
    return NULL;
}

/* The keys of one entry of a list section (methods[], influence[]): v must
 * be a mapping without duplicate or unknown keys; at[rule] receives each
 * value. Returns 0 or the error code (message in c). */
static int entry_keys(const yt_ctx *c, const yt_node *v, const char *base, const char *section,
                      const yt_node **at) {
    char got[YT_SHOW_MAX + 64];
    if (v->type != YT_MAP)
        return yt_fail_at(c, v, base, "a mapping with name and kind", show(v, got, sizeof got));
    if (check_dups(c, v, base)) return c->err->code;
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule(section, v->ent[i].key);
        if (ri < 0) return fail_unknown(c, &v->ent[i], base, section);
        at[ri] = v->ent[i].val;
    }
    return 0;
}

/* Method mapping v into m (zeroed by the caller); idx names it in messages.
 * Order: unknown keys, kind, defaults of the kind, fields (each must belong
 * to the kind), name, cross-field rules. */
static int fill_method(const yt_ctx *c, int idx, const yt_node *v, job_method *m) {
    char base[32], path[128];
    snprintf(base, sizeof base, "methods[%d]", idx);
    const yt_node *at[N_RULES] = {0};
    if (entry_keys(c, v, base, "methods[]", at)) return c->err->code;
    int r_kind = rule_index("methods[].kind"), r_name = rule_index("methods[].name");
    snprintf(path, sizeof path, "%s.kind", base);
    if (!at[r_kind]) return yt_fail(c, v->line, v->set, path, "required field is missing");
    if (conv(c, r_kind, path, at[r_kind], m)) return c->err->code;
    unsigned kb = KB(m->kind);
    for (int ri = 0; ri < N_RULES; ri++)
        if ((RULES[ri].kinds & kb) && in_section(DOCS[ri].path, "methods[]") &&
            has_default(ri))
            apply_default(ri, m, job_method_kind_name(m->kind));
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule("methods[]", v->ent[i].key);
        snprintf(path, sizeof path, "%s.%s", base, v->ent[i].key);
        if (!(RULES[ri].kinds & kb)) {
            char *fields = known_keys("methods[]", kb);
            yt_fail(c, v->ent[i].line, v->ent[i].set, path,
                 "not a field of kind %s (fields: %s)",
                 job_method_kind_name(m->kind), fields);
            free(fields);
            return c->err->code;
        }
        if (conv(c, ri, path, v->ent[i].val, m)) return c->err->code;
    }
    if (!at[r_name]) {
        snprintf(path, sizeof path, "%s.name", base);
        return yt_fail(c, v->line, v->set, path, "required field is missing");
    }
    /* Cross-field rules. */
    int r_steps = rule_index("methods[].n_steps");
    int r_quad = rule_index("methods[].quadrature");
    int r_bval = rule_index("methods[].baseline_value");
    int r_bsplit = rule_index("methods[].baseline_split");
    if (m->kind == JOB_METHOD_INTEGRATED_GRADIENTS &&
        m->quadrature == JOB_QUAD_RIEMANN_TRAPEZOID && m->n_steps < 2) {
        const yt_node *w = at[r_steps] ? at[r_steps] : at[r_quad];
        AT_CHECK(w != NULL); /* the default quadrature is not trapezoid */
        snprintf(path, sizeof path, "%s.n_steps", base);
        return yt_fail(c, w->line, w->set, path,
                    "riemann_trapezoid needs n_steps >= 2, got %d", m->n_steps);
    }
    if (at[r_bval] && m->baseline != JOB_BASELINE_CONSTANT) {
        snprintf(path, sizeof path, "%s.baseline_value", base);
        return yt_fail(c, at[r_bval]->line, at[r_bval]->set, path,
                    "only used with baseline: constant (baseline is %s)",
                    job_baseline_name(m->baseline));
    }
    if (at[r_bsplit] && m->baseline != JOB_BASELINE_MEAN) {
        snprintf(path, sizeof path, "%s.baseline_split", base);
        return yt_fail(c, at[r_bsplit]->line, at[r_bsplit]->set, path,
                    "only used with baseline: mean (baseline is %s)",
                    job_baseline_name(m->baseline));
    }
    for (int i = 0; i < v->n; i++) {
        const char *why = method_field_unused(m, v->ent[i].key);
        if (why && strcmp(why, "empty")) {
            snprintf(path, sizeof path, "%s.%s", base, v->ent[i].key);
            return yt_fail(c, v->ent[i].line, v->ent[i].set, path, "%s", why);
        }
    }
    const yt_node *here = v;
    if (m->kind == JOB_METHOD_GRAD_CAM && !m->layer[0]) {
        snprintf(path, sizeof path, "%s.layer", base);
        return yt_fail(c, v->line, v->set, path,
                       "required field is missing (the name of a layer with a (C, H, W) "
                       "output)");
    }
    if (m->kind == JOB_METHOD_LRP && m->lrp_rule == 4 && fabs(m->alpha - m->beta - 1.0) > 1e-12) {
        int ri = rule_index("methods[].alpha");
        here = at[ri] ? at[ri] : at[rule_index("methods[].beta")];
        snprintf(path, sizeof path, "%s.alpha", base);
        return yt_fail(c, here->line, here->set, path,
                       "alpha - beta must be 1 (relevance is conserved), got alpha %g, beta %g",
                       m->alpha, m->beta);
    }
    if (m->kind == JOB_METHOD_RISE && !(m->keep_prob < 1.0)) {
        here = at[rule_index("methods[].keep_prob")];
        snprintf(path, sizeof path, "%s.keep_prob", base);
        return yt_fail(c, here->line, here->set, path, "expected a number in (0, 1), got %g",
                       m->keep_prob);
    }
    if (m->n_patch && m->feature_mask[0]) {
        here = at[rule_index("methods[].feature_mask")];
        snprintf(path, sizeof path, "%s.feature_mask", base);
        return yt_fail(c, here->line, here->set, path,
                       "give patch or feature_mask, not both");
    }
    if (m->n_stride && m->n_stride != m->n_window) {
        here = at[rule_index("methods[].stride")];
        snprintf(path, sizeof path, "%s.stride", base);
        return yt_fail(c, here->line, here->set, path,
                       "has %d dims but window has %d", m->n_stride, m->n_window);
    }
    if (m->baseline != JOB_BASELINE_CONSTANT) m->baseline_value = 0.0;
    if (m->baseline != JOB_BASELINE_MEAN)
        memset(m->baseline_split, 0, sizeof m->baseline_split);
    return 0;
}

/* The node of the name of entry i of list seq (checked to have one). */
static const yt_node *name_node(const yt_node *seq, int i) {
    const yt_node *it = seq->ent[i].val;
    return it->ent[yt_find(it, "name")].val;
}

/* "LIST[i].name: WHAT 'x' (also OTHER[k] at line L)NOTE": entry i of seq
 * has the name of entry k of oseq. */
static int fail_dup_name(const yt_ctx *c, const char *list, const yt_node *seq, int i,
                         const char *other, const yt_node *oseq, int k, const char *what,
                         const char *note) {
    const yt_node *nv = name_node(seq, i), *first = name_node(oseq, k);
    char path[64], where[AT_ERR_MSG];
    snprintf(path, sizeof path, "%s[%d].name", list, i);
    if (first->set >= 0)
        snprintf(where, sizeof where, ", from --set %s", c->sets[first->set]);
    else
        snprintf(where, sizeof where, " at line %d", first->line);
    return yt_fail(c, nv->line, nv->set, path, "%s '%s' (also %s[%d]%s)%s", what,
                   nv->text, other, k, where, note);
}

/* The methods list: 1..JOB_MAX_METHODS mappings with unique names. */
static int fill_methods(const yt_ctx *c, const yt_node *v, job *j) {
    char got[YT_SHOW_MAX + 64], what[64];
    snprintf(what, sizeof what, "a list of 1 to %d methods", JOB_MAX_METHODS);
    if (v->type != YT_SEQ)
        return yt_fail_at(c, v, "methods", what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > JOB_MAX_METHODS) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, "methods", what, got);
    }
    for (int i = 0; i < v->n; i++) {
        const yt_node *item = v->ent[i].val;
        if (fill_method(c, i, item, &j->methods[i])) return c->err->code;
        for (int k = 0; k < i; k++)
            if (!strcmp(j->methods[k].name, j->methods[i].name))
                return fail_dup_name(c, "methods", v, i, "methods", v, k,
                                     "duplicate method name", "");
    }
    j->n_methods = v->n;
    return 0;
}

/* Why field `key` of influence entry f does nothing with f's other settings
 * (NULL when it is used), written into buf: given, it is an error; emitted,
 * it is left out; in the job, it is 0. */
static const char *infl_field_unused(const job_influence *f, const char *key, char *buf,
                                     size_t cap) {
    if (!strncmp(key, "cg_", 3) && f->inverse != JOB_INV_CG) {
        snprintf(buf, cap, "only used with inverse: cg (inverse is %s)",
                 job_inverse_name(f->inverse));
        return buf;
    }
    if (!strncmp(key, "lissa_", 6) && f->inverse != JOB_INV_LISSA) {
        snprintf(buf, cap, "only used with inverse: lissa (inverse is %s)",
                 job_inverse_name(f->inverse));
        return buf;
    }
    if ((!strcmp(key, "proj_dim") || !strcmp(key, "proj_seed")) &&
        f->projection == JOB_PROJ_NONE) {
        snprintf(buf, cap, "only used with a projection other than none (projection is "
                           "none)");
        return buf;
    }
    return NULL;
}

/* Set the int, double or uint64 field of rule ri in base to 0. */
static void zero_field(int ri, void *base) {
    char *dst = (char *)base + RULES[ri].off;
    switch (RULES[ri].t) {
    case T_NUMBER: *(double *)(void *)dst = 0; break;
    case T_U64: *(uint64_t *)(void *)dst = 0; break;
    case T_INT:
    case T_BOOL:
    case T_ENUM: *(int *)(void *)dst = 0; break;
    default: AT_CHECK(!"zero_field: not a scalar field");
    }
}

/* Influence mapping v into f (zeroed by the caller); idx names it in
 * messages; *seed_given says whether proj_seed was written (else the caller
 * sets run.seed). Order: unknown keys, kind, name, defaults of the kind,
 * fields (each must belong to the kind), cross-field rules. */
static int fill_influence(const yt_ctx *c, int idx, const yt_node *v, job_influence *f,
                          int *seed_given) {
    char base[32], path[160], why[128];
    snprintf(base, sizeof base, "influence[%d]", idx);
    const yt_node *at[N_RULES] = {0};
    if (entry_keys(c, v, base, "influence[]", at)) return c->err->code;
    int r_kind = rule_index("influence[].kind"), r_name = rule_index("influence[].name");
    snprintf(path, sizeof path, "%s.kind", base);
    if (!at[r_kind])
        return yt_fail(c, v->line, v->set, path, "required field is missing (grad_dot, "
                       "grad_cos, tracin, influence or trak)");
    if (conv(c, r_kind, path, at[r_kind], f)) return c->err->code;
    snprintf(path, sizeof path, "%s.name", base);
    if (!at[r_name]) return yt_fail(c, v->line, v->set, path, "required field is missing");
    if (conv(c, r_name, path, at[r_name], f)) return c->err->code;
    const char *kname = job_infl_kind_name(f->kind);
    unsigned kb = IB(f->kind);
    for (int ri = 0; ri < N_RULES; ri++)
        if ((RULES[ri].kinds & kb) && in_section(DOCS[ri].path, "influence[]") &&
            has_default(ri))
            apply_default(ri, f, kname);
    for (int i = 0; i < v->n; i++) {
        int ri = find_rule("influence[]", v->ent[i].key);
        snprintf(path, sizeof path, "%s.%s", base, v->ent[i].key);
        if (!(RULES[ri].kinds & kb)) {
            char *fields = known_keys("influence[]", kb);
            yt_fail(c, v->ent[i].line, v->ent[i].set, path,
                    "'%s' is of kind %s, which has no %s%s (fields of %s: %s)", f->name,
                    kname, v->ent[i].key,
                    f->kind == JOB_INFL_GRAD_COS && !strcmp(v->ent[i].key, "normalize")
                        ? ": grad_cos always normalises"
                        : "",
                    kname, fields);
            free(fields);
            return c->err->code;
        }
        if (ri == r_name || ri == r_kind) continue;
        if (conv(c, ri, path, v->ent[i].val, f)) return c->err->code;
    }
    /* Cross-field rules. */
    int r_dim = rule_index("influence[].proj_dim");
    for (int i = 0; i < v->n; i++) {
        const char *key = v->ent[i].key;
        if (!infl_field_unused(f, key, why, sizeof why)) continue;
        if (!strcmp(key, "proj_dim") && f->proj_dim == 0) continue; /* 0 = none's value */
        snprintf(path, sizeof path, "%s.%s", base, key);
        return yt_fail(c, v->ent[i].line, v->ent[i].set, path, "%s", why);
    }
    if ((kb & I_PROJ) && f->projection != JOB_PROJ_NONE && f->proj_dim == 0) {
        const yt_node *w = at[r_dim] ? at[r_dim] : v;
        snprintf(path, sizeof path, "%s.proj_dim", base);
        return yt_fail(c, w->line, w->set, path,
                       "projection %s needs proj_dim, the projected dimension in "
                       "1..1048576 (e.g. 512)",
                       job_projection_name(f->projection));
    }
    if ((f->inverse == JOB_INV_KFAC || f->inverse == JOB_INV_EKFAC) &&
        f->curvature != JOB_CURV_GAUSS_NEWTON) {
        const yt_node *w = at[rule_index("influence[].curvature")];
        AT_CHECK(w != NULL); /* the default is gauss_newton */
        snprintf(path, sizeof path, "%s.curvature", base);
        return yt_fail(c, w->line, w->set, path,
                       "inverse %s approximates the Gauss-Newton matrix: write curvature: "
                       "gauss_newton, or inverse: exact, cg or lissa for the Hessian",
                       job_inverse_name(f->inverse));
    }
    if (f->kind == JOB_INFL_TRACIN && !f->checkpoints[0]) {
        const yt_node *w = at[rule_index("influence[].checkpoints")];
        snprintf(path, sizeof path, "%s.checkpoints", base);
        return yt_fail(c, w ? w->line : v->line, w ? w->set : v->set, path,
                       "%s: tracin needs a checkpoint file (the train.checkpoints of "
                       "the job that trained the model, with checkpoint_every > 0)",
                       w ? "must not be empty" : "required field is missing");
    }
    /* fields that do nothing here are 0, so a job has one representation */
    for (int ri = 0; ri < N_RULES; ri++)
        if ((RULES[ri].kinds & kb) && in_section(DOCS[ri].path, "influence[]") &&
            infl_field_unused(f, leaf(DOCS[ri].path), why, sizeof why))
            zero_field(ri, f);
    *seed_given = at[rule_index("influence[].proj_seed")] != NULL;
    return 0;
}

/* The influence list: 1..JOB_MAX_INFLUENCE mappings with unique names;
 * seed_given[i] as fill_influence's. */
static int fill_influence_list(const yt_ctx *c, const yt_node *v, job *j, int *seed_given) {
    char got[YT_SHOW_MAX + 64], what[96];
    snprintf(what, sizeof what, "a list of 1 to %d training-data attribution methods",
             JOB_MAX_INFLUENCE);
    if (v->type != YT_SEQ)
        return yt_fail_at(c, v, "influence", what, show(v, got, sizeof got));
    if (v->n < 1 || v->n > JOB_MAX_INFLUENCE) {
        snprintf(got, sizeof got, "%d entries", v->n);
        return yt_fail_at(c, v, "influence", what, got);
    }
    for (int i = 0; i < v->n; i++) {
        if (fill_influence(c, i, v->ent[i].val, &j->influence[i], &seed_given[i]))
            return c->err->code;
        for (int k = 0; k < i; k++)
            if (!strcmp(j->influence[k].name, j->influence[i].name))
                return fail_dup_name(c, "influence", v, i, "influence", v, k,
                                     "duplicate name", "");
    }
    j->n_influence = v->n;
    return 0;
}

/* Does a train field of setting `when` (W_*) apply to j? */
static int applies(const job *j, int when) {
    switch (when) {
    case W_ITER: return j->optimizer != JOB_OPT_NEWTON;
    case W_NEWTON: return j->optimizer == JOB_OPT_NEWTON;
    case W_SGD: return j->optimizer == ENG_OPT_SGD;
    case W_ADAM: return j->optimizer == ENG_OPT_ADAM || j->optimizer == ENG_OPT_ADAMW;
    case W_STEP: return j->schedule == ENG_SCHED_STEP;
    case W_COSINE: return j->schedule == ENG_SCHED_COSINE;
    case W_XENT: return j->loss == ENG_LOSS_XENT;
    case W_EPOCH: return j->model_epoch > 0;
    default: return 1;
    }
}

/* "optimizer: sgd (optimizer is adam)" for a field of setting when. */
static void when_text(const job *j, int when, char *buf, size_t cap) {
    switch (when) {
    case W_SGD:
    case W_ADAM:
    case W_ITER:
    case W_NEWTON:
        snprintf(buf, cap, "optimizer: %s (optimizer is %s)",
                 when == W_SGD    ? "sgd"
                 : when == W_ADAM ? "adam or adamw"
                 : when == W_ITER ? "sgd, adam or adamw"
                                  : "newton",
                 opt_word(j->optimizer));
        break;
    case W_STEP:
    case W_COSINE:
        snprintf(buf, cap, "schedule: %s (schedule is %s)", when == W_STEP ? "step" : "cosine",
                 enum_name(LR_NAMES, j->schedule, 1));
        break;
    case W_EPOCH:
        snprintf(buf, cap, "model.epoch > 0 (model.epoch is 0: model.path's own parameters)");
        break;
    default:
        snprintf(buf, cap, "loss: cross_entropy (loss is %s)", enum_name(LOSS_NAMES, j->loss, 1));
        break;
    }
}

/* Rules across fields of model and train, after every section is read. */
/* The checkpoint file beside a model file: model_path with .h5 replaced by
 * .ckpt.h5 (or .ckpt.h5 appended) into out (JOB_PATH_MAX); `field` is the
 * field the default stands for, named when it does not fit. */
static int default_ckpt_path(const yt_ctx *c, const yt_node **at, const char *model_path,
                             const char *field, char *out) {
    size_t k = strlen(model_path);
    if (k >= 3 && !strcmp(model_path + k - 3, ".h5")) k -= 3;
    if (k + sizeof ".ckpt.h5" > JOB_PATH_MAX) {
        const yt_node *mp = at[rule_index("model.path")];
        return yt_fail(c, mp ? mp->line : 0, mp ? mp->set : -1, field,
                       "the default (model.path with .ckpt.h5) is longer than %d bytes: "
                       "set %s", JOB_PATH_MAX - 1, field);
    }
    memcpy(out, model_path, k);
    memcpy(out + k, ".ckpt.h5", sizeof ".ckpt.h5");
    return 0;
}

static int cross_rules(const yt_ctx *c, const yt_node **at, job *j) {
    const yt_node *lay = at[rule_index("model.layers")], *hid = at[rule_index("model.hidden")];
    if (lay && hid) {
        const yt_node *second = hid->set > lay->set ||
                                (hid->set == lay->set && hid->line >= lay->line) ? hid : lay;
        return yt_fail(c, second->line, second->set,
                       second == hid ? "model.hidden" : "model.layers",
                       "give model.layers or model.hidden (the MLP shorthand), not both");
    }
    char why[160];
    for (int ri = 0; ri < N_RULES; ri++) {
        if (!RULES[ri].when || applies(j, RULES[ri].when)) continue;
        if (at[ri]) {
            when_text(j, RULES[ri].when, why, sizeof why);
            return yt_fail(c, at[ri]->line, at[ri]->set, DOCS[ri].path, "only used with %s",
                           why);
        }
        /* not used: 0, so a job has one representation */
        char *dst = (char *)j + RULES[ri].off;
        if (RULES[ri].t == T_BETAS)
            j->beta1 = j->beta2 = 0;
        else if (RULES[ri].t == T_NUMBER)
            *(double *)(void *)dst = 0;
        else
            *(int *)(void *)dst = 0;
    }
    if (j->optimizer == JOB_OPT_NEWTON && !(j->weight_decay > 0)) {
        const yt_node *w = at[rule_index("train.weight_decay")];
        if (!w) w = at[rule_index("train.optimizer")];
        AT_CHECK(w != NULL); /* the default optimizer is sgd */
        return yt_fail(c, w->line, w->set, "train.weight_decay",
                       "optimizer newton needs weight_decay > 0 (the L2 term makes the "
                       "objective strictly convex: without it the Hessian of a softmax "
                       "model is singular), got %g", j->weight_decay);
    }
    const yt_node *nest = at[rule_index("train.nesterov")];
    if (j->nesterov && j->momentum <= 0) {
        AT_CHECK(nest != NULL); /* the default is false */
        return yt_fail(c, nest->line, nest->set, "train.nesterov",
                       "needs momentum > 0 (momentum is %g)", j->momentum);
    }
    const yt_node *ep = at[rule_index("model.epoch")];
    if (ep && j->model_epoch > 0 && at[rule_index("influence")])
        return yt_fail(c, ep->line, ep->set, "model.epoch",
                       "influence jobs take checkpoints per method (influence[].checkpoints), "
                       "not model.epoch");
    if (j->model_epoch > 0 && !j->model_ckpt_path[0] &&
        default_ckpt_path(c, at, j->model_path, "model.checkpoints", j->model_ckpt_path))
        return c->err->code;
    if (j->has_train && !j->checkpoint_path[0] && j->model_path[0] &&
        default_ckpt_path(c, at, j->model_path, "train.checkpoints", j->checkpoint_path))
        return c->err->code;
    return 0;
}

/* Rules of training-data attribution, after every section is read: names
 * unique across methods and influence, proj_seed defaults to run.seed,
 * train_data and ground_truth only with influence (else tda is all 0), and
 * what leave-one-out and LDS need of the train section. */
static int tda_rules(const yt_ctx *c, const yt_node *root, const yt_node **at, job *j,
                     const int *seed_given) {
    const yt_node *ms = at[rule_index("methods")], *is = at[rule_index("influence")];
    for (int i = 0; i < j->n_influence; i++)
        for (int k = 0; k < j->n_methods; k++)
            if (!strcmp(j->influence[i].name, j->methods[k].name))
                return fail_dup_name(c, "influence", is, i, "methods", ms, k,
                                     "duplicate name",
                                     ": names are unique across methods and influence");
    for (int i = 0; i < j->n_influence; i++)
        if (j->influence[i].projection != JOB_PROJ_NONE && !seed_given[i])
            j->influence[i].proj_seed = j->seed;
    if (j->n_influence == 0) {
        for (int i = 0; i < root->n; i++)
            if (!strcmp(root->ent[i].key, "train_data") ||
                !strcmp(root->ent[i].key, "ground_truth"))
                return yt_fail(c, root->ent[i].line, root->ent[i].set, root->ent[i].key,
                               "only used with influence: (the job has no influence "
                               "methods)");
        memset(&j->tda, 0, sizeof j->tda);
        return 0;
    }
    const yt_node *loo = at[rule_index("ground_truth.loo.points")];
    if (j->tda.loo_points > 0 && j->optimizer != JOB_OPT_NEWTON) {
        char now[64];
        if (j->has_train)
            snprintf(now, sizeof now, "train.optimizer is %s", opt_word(j->optimizer));
        else
            snprintf(now, sizeof now, "the job has no train section");
        return yt_fail(c, loo->line, loo->set, "ground_truth.loo.points",
                       "leave-one-out needs train.optimizer: newton with "
                       "train.weight_decay > 0 (their objective is what each point is "
                       "refitted on); %s", now);
    }
    const yt_node *lds = at[rule_index("ground_truth.lds.subsets")];
    if (j->tda.lds_subsets > 0 && j->tda.lds_subsets < 5)
        return yt_fail(c, lds->line, lds->set, "ground_truth.lds.subsets",
                       "expected 0 (off) or an integer in 5..100000 (a Spearman "
                       "correlation over fewer subsets means nothing), got %d",
                       j->tda.lds_subsets);
    if (j->tda.lds_subsets > 0 && !j->has_train)
        return yt_fail(c, lds->line, lds->set, "ground_truth.lds.subsets",
                       "LDS trains a model on each subset: it needs a train section "
                       "(train.optimizer and its settings)");
    return 0;
}

/* The sweep's shape (job_sweep_parse expands it): a mapping of --set paths
 * to non-empty lists. A point's job is the file with the point's values as
 * overrides; the sweep itself changes nothing in it. */
static int sweep_shape(const yt_ctx *c, const yt_node *v) {
    char got[YT_SHOW_MAX + 64];
    if (v->type != YT_MAP)
        return yt_fail_at(c, v, "sweep", "a mapping of --set paths to lists of values "
                          "(methods.ig.n_steps: [16, 32])", show(v, got, sizeof got));
    if (v->n == 0)
        return yt_fail(c, v->line, v->set, "sweep", "no keys: give at least one --set path "
                       "and its list of values, or leave sweep out");
    if (v->n > JOB_SWEEP_MAX_KEYS)
        return yt_fail(c, v->line, v->set, "sweep", "%d keys; at most %d", v->n,
                       JOB_SWEEP_MAX_KEYS);
    if (check_dups(c, v, "sweep")) return c->err->code;
    for (int i = 0; i < v->n; i++) {
        const yt_entry *e = &v->ent[i];
        char path[512];
        snprintf(path, sizeof path, "sweep.%.500s", e->key);
        if (!*e->key || strchr(e->key, '/') || strchr(e->key, '=') || e->key[0] == '.' ||
            e->key[strlen(e->key) - 1] == '.' || strstr(e->key, ".."))
            return yt_fail(c, e->line, e->set, path, "expected a --set path of dotted "
                           "keys without '/' or '=' (methods.ig.n_steps, run.seed)");
        if (strlen(e->key) >= JOB_SWEEP_NAME_MAX)
            return yt_fail(c, e->line, e->set, path, "a key of %zu bytes; at most %d",
                           strlen(e->key), JOB_SWEEP_NAME_MAX - 1);
        if (!strncmp(e->key, "sweep", 5) && (!e->key[5] || e->key[5] == '.'))
            return yt_fail(c, e->line, e->set, path, "a sweep cannot sweep itself");
        if (!strcmp(e->key, "output.path") || !strcmp(e->key, "output"))
            return yt_fail(c, e->line, e->set, path, "output.path cannot be swept: every "
                           "point goes to OUTPUT.sweep/NNNN.h5 and the sweep to output.path");
        if (e->val->type != YT_SEQ)
            return yt_fail_at(c, e->val, path, "a list of values ([16, 32])",
                              show(e->val, got, sizeof got));
        if (e->val->n == 0)
            return yt_fail(c, e->val->line, e->val->set, path, "the list of values is empty");
    }
    return 0;
}

/* The whole job from the (overridden) tree: defaults, then every top-level
 * key in file order, then the fields that purpose requires. */
static int fill_job(const yt_ctx *c, const yt_node *root, job_purpose purpose, job *j) {
    const yt_node *at[N_RULES] = {0};
    int seed_given[JOB_MAX_INFLUENCE] = {0};
    for (int ri = 0; ri < N_RULES; ri++)
        if (!strstr(DOCS[ri].path, "[]") && strchr(DOCS[ri].path, '.') &&
            RULES[ri].t != T_SECTION && has_default(ri))
            apply_default(ri, j, NULL);
    if (check_dups(c, root, NULL)) return c->err->code;
    for (int i = 0; i < root->n; i++) {
        const yt_entry *e = &root->ent[i];
        int ri = find_rule(NULL, e->key);
        if (ri < 0) return fail_unknown(c, e, NULL, NULL);
        at[ri] = e->val;
        int rc = RULES[ri].t == T_METHODS     ? fill_methods(c, e->val, j)
                 : RULES[ri].t == T_INFLUENCE ? fill_influence_list(c, e->val, j, seed_given)
                 : RULES[ri].t == T_SWEEP     ? sweep_shape(c, e->val)
                                              : fill_section(c, ri, e->val, j, at);
        if (rc) return rc;
    }
    j->has_train = at[rule_index("train")] != NULL;
    if (cross_rules(c, at, j)) return c->err->code;
    if (tda_rules(c, root, at, j, seed_given)) return c->err->code;
    int r_layers = rule_index("model.layers"), r_hidden = rule_index("model.hidden");
    int r_methods = rule_index("methods"), r_infl = rule_index("influence");
    for (int ri = 0; ri < N_RULES; ri++) {
        if (ri == r_methods && purpose == JOB_PURPOSE_RUN && !at[ri] && !at[r_infl])
            return yt_fail(c, 0, -1, NULL, "run needs methods: or influence: (or both); "
                           "the job has neither");
        if (ri == r_layers && purpose == JOB_PURPOSE_TRAIN && !at[ri] && !at[r_hidden])
            return yt_fail(c, 0, -1, DOCS[ri].path, "required field is missing (or "
                           "model.hidden, the MLP shorthand)");
        if ((RULES[ri].req & PB(purpose)) && !strstr(DOCS[ri].path, "[]") &&
            !at[ri])
            return yt_fail(c, 0, -1, DOCS[ri].path, "required %s is missing",
                        RULES[ri].t == T_SECTION ? "section" : "field");
    }
    return 0;
}

/* ------------------------------------------------------------- --set */

/* Entry of seq named by seg: a 0-based index, or the value of the items'
 * "name" key. Returns the index (seq->n, one past the end, only when seg is
 * the path's last segment: append), or -1 after recording an error. shown
 * names seq in messages. */
static int set_find_item(const yt_ctx *c, int si, const yt_node *seq, const char *seg,
                         const char *shown, int last) {
    if (seg[strspn(seg, "0123456789")] == '\0') {
        char *end;
        errno = 0;
        unsigned long k = strtoul(seg, &end, 10);
        if (errno == 0 && k < (unsigned long)seq->n) return (int)k;
        if (errno == 0 && k == (unsigned long)seq->n && last) return seq->n;
        yt_fail(c, 0, si, NULL, "%s has no entry %s (it has %d)", shown, seg, seq->n);
        return -1;
    }
    for (int i = 0; i < seq->n; i++) {
        const yt_node *it = seq->ent[i].val;
        int k = it->type == YT_MAP ? yt_find(it, "name") : -1;
        if (k >= 0 && it->ent[k].val->type == YT_SCALAR &&
            !strcmp(it->ent[k].val->text, seg))
            return i;
    }
    yt_buf names = {0};
    for (int i = 0; i < seq->n; i++) {
        const yt_node *it = seq->ent[i].val;
        int k = it->type == YT_MAP ? yt_find(it, "name") : -1;
        if (k >= 0 && it->ent[k].val->type == YT_SCALAR)
            yt_add(&names, "%s%s", names.n ? ", " : "", it->ent[k].val->text);
    }
    char *list = yt_take(&names);
    if (!strcmp(shown, "methods"))
        yt_fail(c, 0, si, NULL, "no method named '%s' (methods: %s)", seg,
             *list ? list : "none");
    else if (!strcmp(shown, "influence"))
        yt_fail(c, 0, si, NULL, "no influence method named '%s' (influence: %s)", seg,
                *list ? list : "none");
    else
        yt_fail(c, 0, si, NULL, "no entry named '%s' in %s (names: %s)", seg, shown,
             *list ? list : "none");
    free(list);
    return -1;
}

/* Apply --set number si to the tree: walk its dotted path from the root
 * (creating missing mapping keys, or an empty mapping in place of a null),
 * then replace or add the last key with the parsed value. */
static int apply_set(const yt_ctx *c, yt_node *root, int si) {
    const char *s = c->sets[si];
    const char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return yt_fail(c, 0, si, NULL, "expected section.key=value");
    size_t plen = (size_t)(eq - s);
    char *path = at_malloc(plen + 1, "job: --set path");
    memcpy(path, s, plen);
    path[plen] = '\0';
    yt_node *val = NULL;
    yt_buf shown = {0};
    int rc = yt_read(c, eq + 1, si, &val);
    if (!rc && !val) {
        val = yt_new(YT_SCALAR, 0, si);
        val->text = at_strdup("", "job: yaml scalar");
        val->plain = 1;
    }
    yt_node *cur = root;
    char *seg = path;
    while (!rc) {
        char *dot = strchr(seg, '.');
        if (dot) *dot = '\0';
        int last = dot == NULL;
        if (!*seg) {
            rc = yt_fail(c, 0, si, NULL, "empty key in the path");
            break;
        }
        yt_node **slot = NULL;
        if (cur->type == YT_MAP) {
            int k = yt_find(cur, seg);
            if (k < 0) {
                yt_push(cur, at_strdup(seg, "job: yaml key"), 0, si,
                          last ? val : yt_new(YT_MAP, 0, si));
                if (last) val = NULL;
                k = cur->n - 1;
            }
            slot = &cur->ent[k].val;
            yt_add(&shown, "%s%s", shown.n ? "." : "", seg);
        } else if (cur->type == YT_SEQ) {
            int k = set_find_item(c, si, cur, seg, shown.s, last);
            if (k < 0) {
                rc = c->err->code;
                break;
            }
            if (k == cur->n) {
                yt_push(cur, NULL, 0, si, val);
                val = NULL;
            }
            slot = &cur->ent[k].val;
            yt_add(&shown, "[%d]", k);
        } else {
            rc = yt_fail(c, 0, si, NULL, "%s is a single value, it has no '%s'",
                      shown.s, seg);
            break;
        }
        if (last) {
            if (val) {
                yt_free(*slot);
                *slot = val;
                val = NULL;
            }
            break;
        }
        if (yt_is_null(*slot)) { /* "train:" alone, then train.epochs=3 */
            yt_free(*slot);
            *slot = yt_new(YT_MAP, 0, si);
        }
        cur = *slot;
        seg = dot + 1;
    }
    yt_free(val);
    free(shown.s);
    free(path);
    return rc;
}

/* -------------------------------------------------------------- parsing */

/* job_parse; on failure *failed_set (when not NULL) is the index of the
 * override the error is about, or -1. */
static int parse_job(const char *text, const char *source, const char *const *overrides, int n_sets,
                     job_purpose purpose, job *out, int *failed_set, at_err *err);

/* On failure *out is all zeros, so a half-filled job is never used. */
int job_parse(const char *text, const char *source, const char *const *overrides,
              int n_sets, job_purpose purpose, job *out, at_err *err) {
    return parse_job(text, source, overrides, n_sets, purpose, out, NULL, err);
}

static int parse_job(const char *text, const char *source, const char *const *overrides, int n_sets,
                     job_purpose purpose, job *out, int *failed_set, at_err *err) {
    AT_CHECK(text != NULL && out != NULL && err != NULL);
    AT_CHECK(n_sets >= 0 && (n_sets == 0 || overrides != NULL));
    AT_CHECK(purpose == JOB_PURPOSE_RUN || purpose == JOB_PURPOSE_TRAIN ||
             purpose == JOB_PURPOSE_ANY);
    memset(out, 0, sizeof *out);
    if (failed_set) *failed_set = -1;
    yt_ctx c = {source && *source ? source : "<job>", overrides, n_sets, err, failed_set};
    if (source && strlen(source) >= JOB_PATH_MAX)
        return at_err_set(err, AT_EUSER, "job file name longer than %d bytes",
                          JOB_PATH_MAX - 1);
    for (int i = 0; i < n_sets; i++) AT_CHECK(overrides[i] != NULL);

    yt_node *root = NULL;
    int rc = yt_read(&c, text, -1, &root);
    if (!rc && root && root->type == YT_SCALAR && yt_is_null(root)) {
        yt_free(root); /* "---" alone: an empty job */
        root = NULL;
    }
    if (!rc && !root) root = yt_new(YT_MAP, 0, -1);
    if (!rc && root->type != YT_MAP) {
        char got[YT_SHOW_MAX + 64];
        rc = yt_fail(&c, root->line, -1, NULL,
                  "the top level must be a mapping of sections (data:, model:, "
                  "methods:, ...), got %s",
                  show(root, got, sizeof got));
    }
    for (int i = 0; i < n_sets && !rc; i++) rc = apply_set(&c, root, i);
    if (!rc) rc = fill_job(&c, root, purpose, out);
    yt_free(root);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (source) memcpy(out->source_path, source, strlen(source) + 1);
    return 0;
}

/* Reads at most MAX_JOB_FILE bytes and refuses NUL bytes (a binary file given
 * by mistake would otherwise be cut short silently). */
int job_read_file(const char *path, char **text, at_err *err) {
    AT_CHECK(path != NULL && text != NULL && err != NULL);
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return at_err_set(err, AT_EUSER, "%s: cannot read job file: %s", path,
                          strerror(errno));
    size_t n = 0, cap = 4096;
    char *buf = at_malloc(cap, "job: file text");
    int rc = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= MAX_JOB_FILE) {
                rc = at_err_set(err, AT_EUSER,
                                "%s: cannot read job file: larger than %d MiB",
                                path, MAX_JOB_FILE >> 20);
                break;
            }
            cap *= 2;
            buf = at_realloc(buf, cap, "job: file text");
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f))
                rc = at_err_set(err, AT_EUSER, "%s: cannot read job file: %s",
                                path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!rc && memchr(buf, '\0', n))
        rc = at_err_set(err, AT_EUSER,
                        "%s: cannot read job file: it contains a NUL byte (not a "
                        "text file?)",
                        path);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    return 0;
}

/* ------------------------------------------------------------- emitting */

/* "key: value\n" for rule ri read from base, or nothing when the field is
 * unset (empty path, no hidden or layer list, no input shape) or belongs to
 * another optimizer, schedule or loss. Returns 1 when something was written. */
static int emit_field(yt_buf *b, int ri, const void *base, const char *indent) {
    const rule *r = &RULES[ri];
    const char *src = (const char *)base + r->off;
    const char *key = leaf(DOCS[ri].path);
    const job *j = base; /* for the job-level types below */
    if ((r->t == T_STRING || r->t == T_NAME) && r->nonempty && !*src) return 0;
    if (r->t == T_HIDDEN && j->n_hidden == 0) return 0;
    if (r->t == T_LAYERS && j->n_layers == 0) return 0;
    if (r->t == T_SHAPE && j->input_ndim == 0) return 0;
    if (r->t == T_DIMS && *(const int *)(const void *)src == 0) return 0;
    if (r->t == T_SECTION) { /* a section inside a section: its fields, indented */
        char in2[32];
        snprintf(in2, sizeof in2, "%s  ", indent);
        yt_add(b, "%s%s:\n", indent, key);
        for (int k = 0; k < N_RULES; k++)
            if (in_section(DOCS[k].path, DOCS[ri].path)) emit_field(b, k, base, in2);
        return 1;
    }
    if (r->when && !applies(j, r->when)) return 0;
    if (r->t == T_LAYERS) { /* one flow mapping per line, below the key */
        char in2[32];
        snprintf(in2, sizeof in2, "%s  ", indent);
        char *t = arch_emit_specs(j->layers, j->n_layers, in2);
        yt_add(b, "%s%s:\n%s", indent, key, t);
        free(t);
        return 1;
    }
    yt_add(b, "%s%s: ", indent, key);
    switch (r->t) {
    case T_STRING:
    case T_NAME: yt_emit_str(b, src); break;
    case T_INT: yt_add(b, "%d", *(const int *)(const void *)src); break;
    case T_U64: yt_add(b, "%" PRIu64, *(const uint64_t *)(const void *)src); break;
    case T_NUMBER:
    case T_DURATION: yt_emit_num(b, *(const double *)(const void *)src); break;
    case T_BOOL:
        yt_add(b, "%s", *(const int *)(const void *)src ? "true" : "false");
        break;
    case T_ENUM: {
        const char *name = rule_enum_name(r, *(const int *)(const void *)src);
        AT_CHECK(name != NULL); /* the job did not come from job_parse */
        yt_add(b, "%s", name);
        break;
    }
    case T_ROWS: {
        int64_t a = *(const int64_t *)(const void *)src;
        int64_t e = *(const int64_t *)(const void *)((const char *)base + r->off2);
        if (e < 0)
            yt_add(b, "\"%" PRId64 ":\"", a);
        else
            yt_add(b, "\"%" PRId64 ":%" PRId64 "\"", a, e);
        break;
    }
    case T_NAMES:
    case T_PATHS: {
        const char *arr = (const char *)base + r->off2;
        yt_add(b, "[");
        for (int i = 0; i < *(const int *)(const void *)src; i++) {
            if (i) yt_add(b, ", ");
            yt_emit_str(b, arr + (size_t)i * r->cap);
        }
        yt_add(b, "]");
        break;
    }
    case T_TARGET: {
        char t[16];
        yt_add(b, "%s", job_target_name(base, t, sizeof t));
        break;
    }
    case T_SHAPE:
        yt_add(b, "[");
        for (int i = 0; i < j->input_ndim; i++)
            yt_add(b, "%s%d", i ? ", " : "", j->input_shape[i]);
        yt_add(b, "]");
        break;
    case T_DIMS: {
        const int *dims = (const int *)(const void *)((const char *)base + r->off2);
        yt_add(b, "[");
        for (int i = 0; i < *(const int *)(const void *)src; i++)
            yt_add(b, "%s%d", i ? ", " : "", dims[i]);
        yt_add(b, "]");
        break;
    }
    case T_BETAS:
        yt_add(b, "[");
        yt_emit_num(b, j->beta1);
        yt_add(b, ", ");
        yt_emit_num(b, j->beta2);
        yt_add(b, "]");
        break;
    case T_HIDDEN: {
        yt_add(b, "[");
        for (int i = 0; i < j->n_hidden; i++)
            yt_add(b, "%s%d", i ? ", " : "", j->hidden[i]);
        yt_add(b, "]");
        break;
    }
    case T_LAYERS:
    case T_SECTION:
    case T_METHODS:
    case T_INFLUENCE:
    case T_SWEEP: AT_CHECK(!"not a leaf field");
    }
    yt_add(b, "\n");
    return 1;
}

/* One methods list entry: the fields of its kind, baseline_value and
 * baseline_split only for the baseline that uses them. */
static void emit_method(yt_buf *b, const job_method *m) {
    unsigned kb = KB(m->kind);
    AT_CHECK(enum_name(KIND_NAMES, (int)m->kind, 0) != NULL);
    int first = 1;
    for (int ri = 0; ri < N_RULES; ri++) {
        if (!(RULES[ri].kinds & kb) || !in_section(DOCS[ri].path, "methods[]")) continue;
        const char *key = leaf(DOCS[ri].path);
        if (!strcmp(key, "baseline_value") && m->baseline != JOB_BASELINE_CONSTANT)
            continue;
        if (!strcmp(key, "baseline_split") && m->baseline != JOB_BASELINE_MEAN)
            continue;
        if (method_field_unused(m, key)) continue;
        if (emit_field(b, ri, m, first ? "  - " : "    ")) first = 0;
    }
}

/* One influence list entry: the fields of its kind that do something with
 * its other settings (infl_field_unused). */
static void emit_influence(yt_buf *b, const job_influence *f) {
    unsigned kb = IB(f->kind);
    AT_CHECK(enum_name(INFL_KIND_NAMES, (int)f->kind, 0) != NULL);
    char why[128];
    int first = 1;
    for (int ri = 0; ri < N_RULES; ri++) {
        if (!(RULES[ri].kinds & kb) || !in_section(DOCS[ri].path, "influence[]")) continue;
        if (infl_field_unused(f, leaf(DOCS[ri].path), why, sizeof why)) continue;
        if (emit_field(b, ri, f, first ? "  - " : "    ")) first = 0;
    }
}

/* An emitted list entry's lines as "key: value" lines without the list's
 * 4-column indentation ("  - " or "    "). Frees text. */
static char *strip_entry(char *text) {
    yt_buf out = {0};
    for (const char *q = text ? text : ""; *q;) {
        const char *eol = strchr(q, '\n');
        size_t n = eol ? (size_t)(eol - q) + 1 : strlen(q);
        if (n >= 4) yt_add(&out, "%.*s", (int)(n - 4), q + 4);
        q += n;
    }
    free(text);
    if (!out.s) yt_add(&out, "%s", "");
    return yt_take(&out);
}

char *job_influence_emit(const job_influence *f) {
    AT_CHECK(f != NULL);
    yt_buf b = {0};
    emit_influence(&b, f);
    return strip_entry(b.s);
}

char *job_method_emit(const job_method *m) {
    AT_CHECK(m != NULL);
    yt_buf b = {0};
    emit_method(&b, m);
    return strip_entry(b.s);
}

/* Sections in schema order; an unset path, an empty hidden list or methods
 * list and an absent train section are left out, so the text parses back to
 * the same job. The caller frees the result with free(). */
char *job_emit_yaml(const job *j) {
    AT_CHECK(j != NULL);
    yt_buf b = {0};
    yt_add(&b, "# attrib %s effective job: every field, defaults filled in\n",
           ATTRIB_VERSION);
    for (int si = 0; si < N_RULES; si++) {
        const char *sect = DOCS[si].path;
        if (!in_section(sect, NULL)) continue;
        if (RULES[si].t == T_METHODS) {
            if (j->n_methods == 0) continue;
            yt_add(&b, "methods:\n");
            for (int i = 0; i < j->n_methods; i++) emit_method(&b, &j->methods[i]);
            continue;
        }
        if (RULES[si].t == T_INFLUENCE) {
            if (j->n_influence == 0) continue;
            yt_add(&b, "influence:\n");
            for (int i = 0; i < j->n_influence; i++) emit_influence(&b, &j->influence[i]);
            continue;
        }
        if (RULES[si].t == T_SWEEP) continue; /* a point's job has none */
        if (!strcmp(sect, "train") && !j->has_train) continue;
        if ((!strcmp(sect, "train_data") || !strcmp(sect, "ground_truth")) &&
            j->n_influence == 0)
            continue;
        yt_buf body = {0};
        for (int ri = 0; ri < N_RULES; ri++)
            if (in_section(DOCS[ri].path, sect)) emit_field(&body, ri, j, "  ");
        if (body.n)
            yt_add(&b, "%s:\n%s", sect, body.s);
        else
            yt_add(&b, "%s: {}\n", sect);
        free(body.s);
    }
    return yt_take(&b);
}

/* ------------------------------------------------------------- sweeps */

/* v as flow YAML that reads back as v (a --set value). */
static void flow_emit(yt_buf *b, const yt_node *v) {
    if (v->type == YT_SCALAR) {
        if (v->plain)
            yt_add(b, "%s", v->text);
        else
            yt_emit_str(b, v->text);
        return;
    }
    yt_add(b, "%s", v->type == YT_SEQ ? "[" : "{");
    for (int i = 0; i < v->n; i++) {
        if (i) yt_add(b, ", ");
        if (v->type == YT_MAP) {
            const char *k = v->ent[i].key;
            if (*k && strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_-") == strlen(k))
                yt_add(b, "%s", k);
            else
                yt_emit_str(b, k);
            yt_add(b, ": ");
        }
        flow_emit(b, v->ent[i].val);
    }
    yt_add(b, "%s", v->type == YT_SEQ ? "]" : "}");
}

/* A value as it appears in point names: its text (flow text without
 * spaces for a collection); with a '/', its base name; without .h5. */
static char *shown_value(const yt_node *v) {
    yt_buf b = {0};
    if (v->type == YT_SCALAR)
        yt_add(&b, "%s", v->text);
    else
        flow_emit(&b, v);
    char *t = yt_take(&b);
    size_t w = 0;
    for (size_t i = 0; t[i]; i++)
        if (v->type == YT_SCALAR || t[i] != ' ') t[w++] = t[i];
    t[w] = '\0';
    char *slash = strrchr(t, '/');
    if (slash && slash[1]) memmove(t, slash + 1, strlen(slash + 1) + 1);
    size_t n = strlen(t);
    if (n > 3 && !strcmp(t + n - 3, ".h5")) t[n - 3] = '\0';
    for (char *q = t; *q; q++)
        if (*q == '/') *q = '_';
    return t;
}

int job_sweep_index(const job_sweep *sw, int p, int k) {
    AT_CHECK(sw != NULL && p >= 0 && p < sw->n_points && k >= 0 && k < sw->n_keys);
    int idx = 0;
    for (int i = sw->n_keys - 1; i >= k; i--) {
        idx = p % sw->n_vals[i];
        p /= sw->n_vals[i];
    }
    return idx;
}

void job_sweep_free(job_sweep *sw) {
    if (!sw) return;
    for (int k = 0; k < sw->n_keys; k++) {
        for (int i = 0; i < sw->n_vals[k]; i++) free(sw->val[k][i]);
        free(sw->val[k]);
        free(sw->key[k]);
        free(sw->label[k]);
    }
    for (int p = 0; p < sw->n_points; p++) free(sw->name[p]);
    for (int64_t i = 0; i < (int64_t)sw->n_points * sw->n_keys; i++) free(sw->sets[i]);
    free(sw->name);
    free(sw->sets);
    memset(sw, 0, sizeof *sw);
}

char *job_sweep_emit_yaml(const job_sweep *sw) {
    AT_CHECK(sw != NULL);
    yt_buf b = {0};
    yt_add(&b, "sweep:\n");
    for (int k = 0; k < sw->n_keys; k++) {
        yt_add(&b, "  %s: [", sw->key[k]);
        for (int i = 0; i < sw->n_vals[k]; i++)
            yt_add(&b, "%s%s", i ? ", " : "", sw->val[k][i]);
        yt_add(&b, "]\n");
    }
    return yt_take(&b);
}

/* A point's job_parse error, told as the sweep's: when it is about the
 * point's set of key k (override failed_set = n_sets + k) it names
 * sweep.KEY, else every key of the point. */
static int sweep_point_error(const job_sweep *sw, const char *source, int p, int failed_set,
                             int n_sets, at_err *err) {
    char msg[AT_ERR_MSG];
    snprintf(msg, sizeof msg, "%s", err->msg);
    memset(err, 0, sizeof *err); /* the first error wins: this one replaces it */
    int k = failed_set - n_sets;
    if (k >= 0 && k < sw->n_keys) {
        /* the message is "--set KEY=VALUE: why" (yt_fail): keep the why */
        const char *set = sw->sets[(size_t)p * sw->n_keys + k], *rest = msg;
        size_t n = strlen(set);
        if (!strncmp(msg, "--set ", 6) && !strncmp(msg + 6, set, n) && msg[6 + n] == ':')
            rest = msg + 6 + n + 1;
        while (*rest == ' ') rest++;
        return at_err_set(err, AT_EUSER, "%s: sweep.%s: point '%s': value %s: %s", source,
                          sw->key[k], sw->name[p], sw->val[k][job_sweep_index(sw, p, k)], rest);
    }
    return at_err_set(err, AT_EUSER, "%s: sweep: point '%s' (%d of %d) is not a valid job: %s",
                      source, sw->name[p], p, sw->n_points, msg);
}

int job_sweep_parse(const char *text, const char *source, const char *const *overrides,
                    int n_sets, job_sweep *sw, at_err *err) {
    AT_CHECK(text != NULL && sw != NULL && err != NULL);
    AT_CHECK(n_sets >= 0 && (n_sets == 0 || overrides != NULL));
    memset(sw, 0, sizeof *sw);
    const char *src = source && *source ? source : "<job>";
    yt_ctx c = {src, overrides, n_sets, err, NULL};
    yt_node *root = NULL;
    if (yt_read(&c, text, -1, &root) || !root || root->type != YT_MAP) {
        /* not a job at all: job_parse tells the user why */
        memset(err, 0, sizeof *err);
        yt_free(root);
        return 0;
    }
    /* the overrides first, as job_parse applies them (--set 'sweep={...}'
     * replaces the sweep); one that fails is job_parse's to report */
    for (int i = 0; i < n_sets; i++)
        if (apply_set(&c, root, i)) {
            memset(err, 0, sizeof *err);
            yt_free(root);
            return 0;
        }
    int ks = yt_find(root, "sweep");
    if (ks < 0) {
        yt_free(root);
        return 0;
    }
    const yt_node *v = root->ent[ks].val;
    int rc = sweep_shape(&c, v);
    int64_t np = 1;
    for (int k = 0; k < v->n && !rc; k++) {
        np *= v->ent[k].val->n;
        if (np > JOB_SWEEP_MAX_POINTS)
            rc = yt_fail(&c, v->ent[k].line, -1, "sweep",
                         "the grid has more than %d points (the product of the lists' "
                         "lengths up to sweep.%s is %lld); split it into several jobs",
                         JOB_SWEEP_MAX_POINTS, v->ent[k].key, (long long)np);
    }
    if (rc) {
        yt_free(root);
        return rc;
    }
    sw->n_keys = v->n;
    char **shown[JOB_SWEEP_MAX_KEYS]; /* (n_vals) each value as point names show it */
    for (int k = 0; k < v->n; k++) {
        const yt_entry *e = &v->ent[k];
        sw->key[k] = at_strdup(e->key, "sweep key");
        sw->n_vals[k] = e->val->n;
        sw->val[k] = at_calloc((size_t)e->val->n, sizeof(char *), "sweep values");
        shown[k] = at_calloc((size_t)e->val->n, sizeof(char *), "sweep values");
        for (int i = 0; i < e->val->n; i++) {
            yt_buf b = {0};
            flow_emit(&b, e->val->ent[i].val);
            sw->val[k][i] = yt_take(&b);
            shown[k][i] = shown_value(e->val->ent[i].val);
        }
    }
    yt_free(root);
    for (int k = 0; k < sw->n_keys; k++) {
        int shared = 0;
        for (int q = 0; q < sw->n_keys; q++)
            if (q != k && !strcmp(leaf(sw->key[q]), leaf(sw->key[k]))) shared = 1;
        sw->label[k] = at_strdup(shared ? sw->key[k] : leaf(sw->key[k]), "sweep label");
    }
    sw->n_points = (int)np;
    sw->name = at_calloc((size_t)np, sizeof(char *), "sweep names");
    sw->sets = at_calloc((size_t)np * sw->n_keys, sizeof(char *), "sweep sets");
    for (int p = 0; p < sw->n_points; p++) {
        yt_buf nb = {0};
        for (int k = 0; k < sw->n_keys; k++) {
            int i = job_sweep_index(sw, p, k);
            yt_add(&nb, "%s%s=%s", k ? "," : "", sw->label[k], shown[k][i]);
            yt_buf sb = {0};
            yt_add(&sb, "%s=%s", sw->key[k], sw->val[k][i]);
            sw->sets[(size_t)p * sw->n_keys + k] = yt_take(&sb);
        }
        sw->name[p] = yt_take(&nb);
    }
    for (int k = 0; k < sw->n_keys; k++) {
        for (int i = 0; i < sw->n_vals[k]; i++) free(shown[k][i]);
        free(shown[k]);
    }
    for (int p = 0; p < sw->n_points; p++) {
        if (strlen(sw->name[p]) >= JOB_SWEEP_NAME_MAX) {
            at_err_set(err, AT_EUSER,
                       "%s: sweep: point %d's name '%.60s...' has %zu bytes, at most %d: "
                       "sweep fewer keys or shorter values (file values are named by "
                       "their base name)",
                       src, p, sw->name[p], strlen(sw->name[p]), JOB_SWEEP_NAME_MAX - 1);
            job_sweep_free(sw);
            return AT_EUSER;
        }
        for (int q = 0; q < p; q++)
            if (!strcmp(sw->name[q], sw->name[p])) {
                at_err_set(err, AT_EUSER,
                           "%s: sweep: points %d and %d have the same name '%s' (values "
                           "that differ only in their directory, or repeated values); "
                           "give distinct values",
                           src, q, p, sw->name[p]);
                job_sweep_free(sw);
                return AT_EUSER;
            }
    }
    /* every point validates */
    const char **all = at_malloc((size_t)(n_sets + sw->n_keys) * sizeof(char *), "sweep sets");
    for (int i = 0; i < n_sets; i++) all[i] = overrides[i];
    job *pj = at_malloc(sizeof *pj, "sweep point job");
    for (int p = 0; p < sw->n_points && !rc; p++) {
        for (int k = 0; k < sw->n_keys; k++)
            all[n_sets + k] = sw->sets[(size_t)p * sw->n_keys + k];
        int failed_set = -1;
        if (parse_job(text, source, all, n_sets + sw->n_keys, JOB_PURPOSE_RUN, pj, &failed_set,
                      err))
            rc = sweep_point_error(sw, src, p, failed_set, n_sets, err);
        else if (pj->n_influence)
            rc = at_err_set(err, AT_EUSER,
                            "%s: sweep: point '%s' has influence: entries; sweeps run "
                            "methods jobs only (run each influence job on its own)",
                            src, sw->name[p]);
    }
    free(pj);
    free(all);
    if (rc) job_sweep_free(sw);
    return rc;
}
