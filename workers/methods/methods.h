/* methods.h — attribution methods as grid estimators.
 *
 * Model of use
 * ------------
 * Every method is an estimator built from a sum over a grid: rows are
 * samples, columns are sub-samples (for Integrated Gradients, the
 * quadrature points along the path). The pipeline cuts the grid into work
 * units (a block of rows x a block of columns) and, per method, calls four
 * functions:
 *
 *   mth_plan      fill the column set (nodes and weights) once per method
 *   mth_run_unit  a unit's partial statistic, a float64 (R, D) sum over the
 *                 unit's columns, ACCUMULATED into `partial`
 *   mth_fold      acc += partial; the pipeline calls it in unit order, never
 *                 in arrival order, so any rank count gives the same bytes
 *   mth_finalize  acc -> float32 scores (R, D)
 *
 * Within a unit, (row, column) pairs are batched column-major into engine
 * calls of at most scratch->cap rows; each row's contributions are added in
 * column order, so results do not depend on how many ranks there are.
 *
 * Gradient family (v0), with f = the target logit of the model:
 *   saliency            |df/dx| (or df/dx with abs_value = 0), one column
 *   input_x_gradient    x * df/dx, one column
 *   integrated_gradients (x - b) * sum_k w_k df/dx(b + a_k (x - b)),
 *                       n_steps columns (a_k, w_k) from the quadrature
 *
 * Integrated Gradients reuses a model's affine head (a first linear layer
 * z1 = W x + c on the flat input, eng_model_affine_head): along the path,
 * z1(a) = z1(b) + a W (x - b), so each step starts at layer 2 from that
 * affine combination, and sum_k w_k df/dx = W^T sum_k w_k df/dz1 is one
 * product per unit instead of one per step. Exact up to float rounding.
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
} mth_kind;

typedef enum {
    MTH_QUAD_RIEMANN_LEFT = 1,  /* a_k = k/n,       k = 0..n-1, w = 1/n */
    MTH_QUAD_RIEMANN_RIGHT,     /* a_k = (k+1)/n,               w = 1/n */
    MTH_QUAD_RIEMANN_MIDDLE,    /* a_k = (k+1/2)/n,             w = 1/n */
    MTH_QUAD_RIEMANN_TRAPEZOID, /* a_k = k/(n-1), w = 1/(n-1), ends halved */
    MTH_QUAD_GAUSS_LEGENDRE,    /* n-point Gauss-Legendre mapped to [0, 1] */
} mth_quadrature;

/* Nodes and weights of an n-point rule on [0, 1]; weights sum to 1 (to
 * float64 rounding). Returns 0, or AT_EUSER when n is too small for the
 * rule (trapezoid needs n >= 2) or n < 1. */
int mth_quadrature_rule(mth_quadrature q, int n, double *alpha, double *weight,
                        at_err *err);

typedef struct {
    mth_kind kind;
    int abs_value;            /* saliency: take |gradient| */
    int n_steps;              /* integrated_gradients */
    mth_quadrature quadrature;
    /* filled by mth_plan */
    int n_cols;               /* grid columns: 1, or n_steps for IG */
    double *alpha, *weight;   /* (n_cols) path points and weights, owned */
} mth_spec;

int mth_plan(mth_spec *s, at_err *err);
void mth_spec_free(mth_spec *s);
/* Does the method have a completeness delta (sum(attr) - (f(x) - f(b)))? */
int mth_has_delta(const mth_spec *s);
/* Does the method use a baseline? */
int mth_uses_baseline(const mth_spec *s);

/* Per-thread scratch: an engine workspace for up to cap engine rows. */
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
} mth_scratch;

void mth_scratch_init(mth_scratch *sc, const eng_model *m, int cap);
void mth_scratch_free(mth_scratch *sc);

/* Unit partial: rows x (R, D), targets (R), baseline (D, NULL when unused),
 * grid columns [c0, c1). partial (R, D) += sum_c w_c * df_target/dx at the
 * column's point (w_c = 1 for single-column methods). */
void mth_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const float *x, const float *baseline, const int32_t *target,
                  int R, int c0, int c1, double *partial);

/* acc (n) += partial (n). */
void mth_fold(double *acc, const double *partial, size_t n);

/* scores (R, D) from the folded acc. */
void mth_finalize(const mth_spec *s, const double *acc, const float *x,
                  const float *baseline, int R, int D, float *scores);

/* Target logits of rows: out[r] = logits[r * C + target[r]]. */
void mth_target_logits(const float *logits, const int32_t *target, int R, int C,
                       double *out);

#endif
