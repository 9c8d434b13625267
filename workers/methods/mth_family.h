/* mth_family.h — what methods.c dispatches to: one set of entry points per
 * method family, with the contracts of methods.h. Internal to the module.
 *
 *   X_plan      check the spec against the model; set n_cols, width and
 *               anything in s->priv; AT_EUSER names the field
 *   X_run_unit  partial (R, width) += columns [c0, c1) of the rows
 *   X_finalize  acc (R, width) -> scores (R, D)
 *   X_free      release s->priv (s->alpha and s->weight are freed by the
 *               dispatcher)
 */
#ifndef ATTRIB_MTH_FAMILY_H
#define ATTRIB_MTH_FAMILY_H

#include "methods.h"

#define MTH_FAMILY(X)                                                                  \
    int X##_plan(mth_spec *s, const eng_model *m, at_err *err);                        \
    void X##_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,          \
                      const mth_rows *rows, int c0, int c1, double *partial);          \
    void X##_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc,          \
                      const mth_rows *rows, const double *acc, float *scores);         \
    void X##_free(mth_spec *s);

MTH_FAMILY(grad)   /* gradient.c: saliency, input_x_gradient, IG, EG, gradient_shap */
MTH_FAMILY(noise)  /* noise.c: the SmoothGrad wrapper over any gradient kind */
MTH_FAMILY(rules)  /* rules.c: deeplift, lrp, guided_backprop, deconvolution, grad_cam */
MTH_FAMILY(pert)   /* perturb.c: occlusion, ablation, permutation, shapley, kernel_shap, lime */
MTH_FAMILY(masks)  /* masks.c: sobol, rise */

/* Engine rows (forward + backward of one input = 1) one column costs a row,
 * per family, for mth_cost. */
double grad_col_cost(const mth_spec *s);
double rules_col_cost(const mth_spec *s);
double pert_col_cost(const mth_spec *s);
double masks_col_cost(const mth_spec *s);

/* Input gradients of the target logit for n engine rows already in
 * sc->xin, targets t[k] = target[sc->row[k]]: sc->dx (n, D). */
void mth_input_grads(const eng_model *m, mth_scratch *sc, const int32_t *target, int n);

/* masks.c: */
/* Sobol' indices of f on [0,1)^P with the design and the estimators of the
 * sobol method (masks.c; the design of stream 0 of seed): N QMC columns,
 * each evaluating f at A_j, B_j and C_1j..C_Pj (A_j with coordinate i from
 * B_j). f(ctx, u, n, out) evaluates n points u (n, P) into out (n); it is
 * called with whole columns in column order, a column's P + 2 points in the
 * order A, B, C_1..C_P. first and total (P) receive Jansen's first-order
 * and total-order estimates. Returns 0, or AT_EUSER when P is outside
 * 1..4096 or N < 2. */
int mth_sobol_indices(int P, int N, uint64_t seed,
                      void (*f)(void *ctx, const double *u, int n, double *out), void *ctx,
                      double *first, double *total);

#endif
