/* methods.h — attribution methods as grid estimators.
 *
 * Model of use
 * ------------
 * Every method is an estimator built from a sum over a grid: rows are
 * samples, columns are sub-samples (quadrature points, noise draws,
 * permutations, coalitions, masks, windows). The pipeline cuts the grid
 * into work units (a block of rows x a block of columns) and, per method:
 *
 *   mth_plan      once per method and rank, before any unit: check the
 *                 spec against the model, fill the column set (n_cols),
 *                 the partial's width and any data shared by all rows
 *                 (quadrature nodes, coalitions, masks, their Gram matrix).
 *                 Deterministic: every rank plans the same bytes.
 *   mth_run_unit  a unit's partial statistic: float64 (R, width) ACCUMULATED
 *                 into `partial`, a sum over the unit's columns [c0, c1)
 *   mth_fold      acc += partial; the pipeline calls it in unit order, never
 *                 in arrival order, so any rank count gives the same bytes
 *   mth_finalize  acc (R, width) -> float32 scores (R, D); may run forward
 *                 passes (f(x), f(baseline)) through the scratch
 *
 * Randomness is a pure function of (spec->seed, stream, row, draw): rows are
 * addressed by rows->row0 + r, their index in the run's selection, so a
 * row's draws do not depend on the unit, the block or the rank. Data shared
 * by all rows (coalitions, masks) depend on (seed, column) only.
 *
 * Within a unit, (row, column) pairs are batched into engine calls of at
 * most scratch->cap rows; each row's contributions are added in column
 * order, so results do not depend on how many ranks there are.
 *
 * The kinds, their columns and partials (docs/methods.md has the formulas):
 *
 *   gradient family (gradient.c), f = target logit
 *   saliency              1 column; |df/dx| (or signed)
 *   input_x_gradient      1 column; x * df/dx
 *   integrated_gradients  n_steps quadrature points (affine-head reuse below)
 *   expected_gradients    n_samples draws (reference row, alpha ~ U(0,1));
 *                         partial = sum (x - r) * df/dx(r + a (x - r))
 *   gradient_shap         the same with x + N(0, stdev^2) noise per draw
 *   any gradient kind may be wrapped by noise (SmoothGrad, SmoothGrad^2,
 *   VarGrad): the columns become noise draws, each running the base method
 *   on x + N(0, (sigma * (max x - min x))^2) over all its own columns.
 *
 *   rule family (rules.c): one column, modified backward passes
 *   deeplift (rescale), lrp (epsilon, gamma, zplus, alpha_beta),
 *   guided_backprop, deconvolution, grad_cam (a conv layer; scores are the
 *   class activation map upsampled bilinearly to the input's (H, W) and
 *   repeated over channels)
 *
 *   perturbation family (perturb.c), forward passes only
 *   occlusion             columns = window positions; width D
 *   feature_ablation      columns = feature groups; width D
 *   feature_permutation   columns = feature groups; values shuffled across
 *                         the unit's rows; width D
 *   shapley_sampling      columns = permutations of the groups (antithetic
 *                         pairs: column 2k+1 is column 2k reversed); width P
 *   kernel_shap, lime     columns = coalitions shared by all rows (paired:
 *                         column 2k+1 is column 2k's complement); partial =
 *                         sum_z w_z z y_z (P) and sum_z w_z y_z (1); the
 *                         Gram Z^T W Z is the plan's; one solve per row
 *
 *   mask family (masks.c), forward passes only
 *   sobol                 columns = QMC points; Jansen total-order indices
 *                         over P mask cells
 *   rise                  columns = random upsampled binary masks; width D
 *
 * Feature groups (occlusion excepted): group[d] in [0, P) for every input
 * feature d, from a regular patch grid or a user mask dataset; without
 * groups every feature is its own group.
 *
 * This module uses the engine only; it knows nothing of MPI, HDF5 or YAML.
 */
#ifndef ATTRIB_METHODS_H
#define ATTRIB_METHODS_H

#include <stdint.h>

#include "core.h"
#include "engine.h"

typedef enum {
    MTH_SALIENCY = 1,
    MTH_INPUT_X_GRADIENT,
    MTH_INTEGRATED_GRADIENTS,
    MTH_EXPECTED_GRADIENTS,
    MTH_GRADIENT_SHAP,
    MTH_DEEPLIFT,
    MTH_LRP,
    MTH_GUIDED_BACKPROP,
    MTH_DECONVOLUTION,
    MTH_GRAD_CAM,
    MTH_OCCLUSION,
    MTH_FEATURE_ABLATION,
    MTH_FEATURE_PERMUTATION,
    MTH_SHAPLEY_SAMPLING,
    MTH_KERNEL_SHAP,
    MTH_LIME,
    MTH_SOBOL,
    MTH_RISE,
    MTH_N_KINDS_PLUS1
} mth_kind;

typedef enum {
    MTH_QUAD_RIEMANN_LEFT = 1,  /* a_k = k/n,       k = 0..n-1, w = 1/n */
    MTH_QUAD_RIEMANN_RIGHT,     /* a_k = (k+1)/n,               w = 1/n */
    MTH_QUAD_RIEMANN_MIDDLE,    /* a_k = (k+1/2)/n,             w = 1/n */
    MTH_QUAD_RIEMANN_TRAPEZOID, /* a_k = k/(n-1), w = 1/(n-1), ends halved */
    MTH_QUAD_GAUSS_LEGENDRE,    /* n-point Gauss-Legendre mapped to [0, 1] */
} mth_quadrature;

typedef enum {
    MTH_NOISE_NONE = 0,
    MTH_NOISE_SMOOTHGRAD,    /* mean of the base attribution over draws */
    MTH_NOISE_SMOOTHGRAD_SQ, /* mean of its square */
    MTH_NOISE_VARGRAD,       /* its variance (1/n) */
} mth_noise_mode;

typedef enum {
    MTH_LRP_EPSILON = 1, /* z + eps sign(z) */
    MTH_LRP_GAMMA,       /* w + gamma w+ */
    MTH_LRP_ZPLUS,       /* positive contributions only (alpha 1, beta 0 on x >= 0) */
    MTH_LRP_ALPHA_BETA,  /* alpha * positive - beta * negative, alpha - beta = 1 */
} mth_lrp_rule;

typedef enum {
    MTH_DIST_COSINE = 1, /* LIME: 1 - cos(1, z) on the interpretable vector */
    MTH_DIST_L2,         /* ||1 - z||_2 */
} mth_distance;

/* What sum(scores) of a row should equal, for the completeness delta. */
typedef enum {
    MTH_DELTA_NONE = 0,
    MTH_DELTA_DIFF,   /* f(x) - f(baseline) */
    MTH_DELTA_OUTPUT, /* f(x) (LRP) */
} mth_delta_kind;

/* Nodes and weights of an n-point rule on [0, 1]; weights sum to 1 (to
 * float64 rounding). Returns 0, or AT_EUSER when n is too small for the
 * rule (trapezoid needs n >= 2) or n < 1. */
int mth_quadrature_rule(mth_quadrature q, int n, double *alpha, double *weight,
                        at_err *err);

typedef struct {
    mth_kind kind;
    uint64_t seed;            /* RNG key (the job's seed; the stream is per method) */
    uint64_t stream;          /* RNG stream of this method (its index in the job) */
    /* the input, set by the caller before mth_plan */
    int D;                    /* features per row = model->in_features */
    int ndim, shape[3];       /* per-row shape: (F), (H, W) or (C, H, W) */
    /* gradient family */
    int abs_value;            /* saliency: take |gradient| */
    int n_steps;              /* integrated_gradients */
    mth_quadrature quadrature;
    int n_samples;            /* expected_gradients, gradient_shap: draws;
                                 shapley_sampling: permutations; kernel_shap,
                                 lime: coalitions; sobol: QMC points; rise: masks */
    double stdev;             /* gradient_shap: input noise (absolute) */
    mth_noise_mode noise;     /* SmoothGrad wrapper over a gradient kind */
    int noise_n;              /* draws (>= 1 when noise != NONE) */
    double noise_sigma;       /* as a fraction of the row's max - min */
    /* rule family */
    mth_lrp_rule lrp_rule;
    double lrp_epsilon, lrp_gamma, lrp_alpha, lrp_beta;
    int layer;                /* grad_cam: the conv layer's index in the model */
    /* perturbation and mask families */
    int window[3], stride[3]; /* occlusion, per shape dim */
    int n_groups;             /* P; 0 = every feature its own group */
    int32_t *group;           /* (D) group of each feature, owned; NULL = identity */
    mth_distance distance;    /* lime */
    double kernel_width;      /* lime: exp(-d^2 / width^2) */
    double ridge;             /* lime: lambda of the ridge; kernel_shap: 0 */
    int grid;                 /* sobol, rise: mask cells per side */
    double keep_prob;         /* rise: P(cell kept) */
    int perturb_batch;        /* perturbed inputs per forward pass, 0 = scratch cap */

    /* filled by mth_plan */
    int n_cols;               /* grid columns */
    int width;                /* doubles per row in a unit partial */
    double *alpha, *weight;   /* (n_cols) path points and weights (IG), owned */
    void *priv;               /* family data shared by all rows, owned */
} mth_spec;

/* Plan the method for model m (spec->D etc. set). Returns 0 or AT_EUSER
 * with a message naming the field (e.g. "layer 'fc1' is not a conv2d
 * layer"), to be prefixed by the caller with the method's name. */
int mth_plan(mth_spec *s, const eng_model *m, at_err *err);
void mth_spec_free(mth_spec *s);
mth_delta_kind mth_delta(const mth_spec *s);
int mth_uses_baseline(const mth_spec *s);   /* baseline vector (D) needed */
int mth_uses_refs(const mth_spec *s);       /* reference rows needed */
int mth_is_gradient(const mth_spec *s);     /* may take the noise wrapper */
/* Cost of a unit of R rows and columns [c0, c1) in engine rows (a forward
 * and a backward of one input = 1, a forward alone = 1/3): scheduling only. */
double mth_cost(const mth_spec *s, int R, int c0, int c1);
/* Regular patch grid over shape: group of each feature = its patch index
 * (channels share a patch). group (D) out; returns P. patch[k] >= 1 per
 * spatial dim (for (F) shapes, patch[0] consecutive features). */
int mth_groups_grid(int ndim, const int *shape, const int *patch, int32_t *group);

/* Per-thread scratch: an engine workspace for up to cap engine rows and
 * growable buffers for the families. */
typedef struct {
    int cap;
    eng_workspace ws;
    float *xin;     /* (cap, D) */
    float *dlogits; /* (cap, C) */
    float *dx;      /* (cap, D) */
    int32_t *row;   /* (cap) which unit row each engine row belongs to */
    double *w;      /* (cap) column weight of each engine row */
    /* Integrated Gradients through an affine head (eng_model_affine_head):
     * its layer index or -1, and per-unit buffers grown to the unit's rows */
    int head;
    int head_rows;
    float *delta;   /* (rows, H) W (x - b) */
    double *gsum;   /* (rows, H) sum_c w_c d f / d z1 */
    float *z0;      /* (H) the head's output at the baseline */
    double *wd;     /* (H, D) the head's weights in float64, for the product */
    /* family buffers: mth_buf(sc, slot, bytes) */
    void *buf[8];
    size_t buf_cap[8];
} mth_scratch;

void mth_scratch_init(mth_scratch *sc, const eng_model *m, int cap);
void mth_scratch_free(mth_scratch *sc);
/* A buffer of at least `bytes` in slot (0..7), kept across calls; contents
 * are not preserved when it grows. Slots: 0-1 gradient, 2-3 rules,
 * 4-5 perturbation and masks, 6-7 the noise wrapper and metrics. */
void *mth_buf(mth_scratch *sc, int slot, size_t bytes);

/* The rows of a unit. */
typedef struct {
    const float *x;          /* (R, D) */
    const float *baseline;   /* (D), NULL when the method uses none */
    const int32_t *target;   /* (R) class explained per row */
    int R;
    int64_t row0;            /* selection index of row 0: the RNG counter */
    const float *refs;       /* (n_refs, D) reference rows (expected gradients,
                                gradient_shap), NULL otherwise */
    int n_refs;
} mth_rows;

/* partial (R, width) += the unit's statistic over columns [c0, c1). */
void mth_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const mth_rows *rows, int c0, int c1, double *partial);

/* acc (n) += partial (n). */
void mth_fold(double *acc, const double *partial, size_t n);

/* scores (R, D) from the folded acc (R, width). */
void mth_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const mth_rows *rows, const double *acc, float *scores);

/* The whole method on some rows: every column in one unit, then finalize.
 * (Metrics such as sensitivity-max, tests.) */
void mth_attribute(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                   const mth_rows *rows, float *scores);

/* Target logits of rows: out[r] = logits[r * C + target[r]]. */
void mth_target_logits(const float *logits, const int32_t *target, int R, int C,
                       double *out);
/* out[k] = target logit of f(xin[k]) for n inputs, cap at a time. */
void mth_forward_targets(const eng_model *m, mth_scratch *sc, const float *xin,
                         const int32_t *target, int n, double *out);

#endif
