/* tda_kfac.h — K-FAC and EK-FAC inverse curvature over selected layers,
 * for influence functions (Martens & Grosse 2015; Grosse & Martens 2016
 * "KFC" for convolutions; George et al. 2018 EK-FAC; as used by Grosse et
 * al. 2023 and Kronfluence).
 *
 * What is approximated
 * --------------------
 * F is the Gauss-Newton matrix of the MEAN loss over the training rows,
 * G = (1/N) sum_n J_n^T H_loss(z_n) J_n, which for cross-entropy is the
 * TRUE Fisher (an exact expectation over classes, no sampled labels):
 * H_loss = diag(p) - p p^T = sum_c p_c (p - e_c)(p - e_c)^T, so each row
 * gets C "class" backward passes with output gradients
 *   XENT (any label smoothing):  d_c = sqrt(p_c) (p - e_c)
 *   MSE  (engine's sum_c (z-t)^2 / C):  d_c = sqrt(2/C) e_c
 * and sum_c d_c d_c^T = H_loss. Labels are therefore not used.
 * F is approximated block-diagonally, one block per selected layer. For a
 * layer with output gradient matrix g (P positions x OC) and input rows a
 * (P x K1; K1 = IC + 1 with a trailing 1 when the layer has a bias, IC
 * without) — P = 1 for a linear on flat features, the T positions of a
 * linear on (T, IC), OH*OW im2col patches for conv2d (K = C*KH*KW, weight
 * viewed as (OC, K)) — the block acts on the layer's gradient matrix V
 * (OC x K1: weight, then the bias as the last column):
 *   A = (1/N) sum_n (1/P) sum_t a_nt a_nt^T           (K1 x K1)
 *   S = (1/N) sum_n sum_c sum_t g_ntc g_ntc^T          (OC x OC)
 *   F_l ~= S (x) A  (on vec_rowmajor(V));  A = Q_A diag(a) Q_A^T,
 *   S = Q_S diag(s) Q_S^T (float64 LAPACKE_dsyevd; eigenvalues < 0 from
 *   rounding are set to 0).
 * (KFC's scaling: A averages over positions, S sums over them; for P = 1
 * both are plain means.) Eigenvalues of the block in the Kronecker
 * eigenbasis Q_S (x) Q_A:
 *   K-FAC   Lambda_ij = s_i a_j
 *   EK-FAC  Lambda_ij = (1/N) sum_n sum_c ((Q_S^T G_nc Q_A)_ij)^2,
 *           G_nc = sum_t g_ntc a_nt^T the example's class-c gradient matrix
 *           (the exact block's diagonal in that basis).
 * Damping lambda is absolute, or relative: damping * mean of Lambda over
 * all selected layers' entries. The inverse applied to V is
 *   Q_S [ (Q_S^T V Q_A) / (Lambda + lambda) ] Q_A^T.
 *
 * Model of use (the pipeline sums over row blocks on any rank and folds the
 * float64 sums in block order, so results do not depend on the rank count):
 *
 *   tda_kfac *k; tda_kfac_new(&k, m, names, n, ekfac, loss, cap, &err);
 *   double *s0 = calloc(tda_kfac_stats_len(k, 0), 8);
 *   for each block: tda_kfac_accum(k, m, 0, x_b, NULL, N_b, s0_b); fold;
 *   tda_kfac_factor(k, s0, N, &err);
 *   if ekfac: stats1 the same with stage 1 (after factor), else NULL;
 *   tda_kfac_finish(k, s1, N, damping, relative, &lambda, &err);
 *   tda_kfac_apply(k, g, nrhs, out);   // g, out (nrhs, p), selection layout
 *
 * The selection layout is eng_param_sel order (tda_kfac_sel): per layer in
 * model order, the weight (OC, IC) or (OC, C, KH, KW) row-major, then the
 * bias (OC) if any. Only linear and conv2d layers are covered; other kinds
 * are refused by name. The statistics are computed in float64 (float64
 * forward and backward at m->params converted to double).
 *
 * Determinism: accum processes its N rows in chunks of `cap` rows, in
 * order, adding each chunk's float64 sums into stats; the sums of a block
 * are a pure function of (params, rows, cap). How rows are split into
 * blocks changes float64 rounding only (the caller's fold order).
 */
#ifndef ATTRIB_TDA_KFAC_H
#define ATTRIB_TDA_KFAC_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "engine.h"

typedef struct tda_kfac tda_kfac;

/* Make a K-FAC (ekfac 0) or EK-FAC (ekfac 1) object for model m over the
 * named layers (n_layers 0: every linear and conv2d layer of the model),
 * loss XENT or MSE, accumulating in chunks of up to cap rows. Allocates
 * everything (a float64 workspace of cap rows, row buffers, the factors);
 * *out is owned by the caller (tda_kfac_free). Returns 0, or AT_EUSER with
 * err naming an unknown layer, a layer of another kind (kfac/ekfac cover
 * linear and conv2d layers: use `inverse: exact|cg|lissa` or choose layers
 * with `layers:`), the margin loss, or a model without such layers. */
int tda_kfac_new(tda_kfac **out, const eng_model *m, const char *const *layers,
                 int n_layers, int ekfac, eng_loss loss, int cap, at_err *err);
/* The bytes tda_kfac_new would allocate (= tda_kfac_bytes afterwards),
 * without allocating, for planning memory: the float64 workspace of cap
 * rows plus, per layer, the factors (K1^2 + OC^2 + 2 OC K1 doubles), row
 * buffers of cap*P*(K1 + OC) doubles (EK-FAC: cap*P*K1 more per layer).
 * Returns 0, or the errors of tda_kfac_new. */
int tda_kfac_plan(const eng_model *m, const char *const *layers, int n_layers, int ekfac,
                  eng_loss loss, int cap, size_t *bytes, at_err *err);
/* p: the number of selected parameters (length of a gradient row). */
size_t tda_kfac_dim(const tda_kfac *k);
/* The parameter selection whose layout apply uses (eng_grad_per_example
 * with it gives gradients in that layout). Owned by k. */
const eng_param_sel *tda_kfac_sel(const tda_kfac *k);
/* Doubles of the statistics of a stage: 0 = per layer the A sum (K1, K1)
 * then the S sum (OC, OC), row-major, upper triangles meaningful (the lower
 * ones stay as given); 1 = per layer the EK-FAC Lambda sum (OC, K1), 0 for
 * K-FAC. */
size_t tda_kfac_stats_len(const tda_kfac *k, int stage);
/* stats (tda_kfac_stats_len(k, stage)) += the SUMS over the N rows x
 * (N, D) of stage `stage` at parameters m->params (the model k was made
 * for): stage 0 sum_n (1/P) sum_t a a^T and sum_n sum_c sum_t g g^T;
 * stage 1 (EK-FAC, after tda_kfac_factor) sum_n sum_c (Q_S^T G_nc Q_A)^2.
 * labels may be NULL (the curvature does not depend on them). */
void tda_kfac_accum(tda_kfac *k, const eng_model *m, int stage, const float *x,
                    const int32_t *labels, int64_t N, double *stats);
/* From the stage-0 sums over n_rows rows: A, S (the sums / n_rows) and
 * their eigendecompositions. Returns 0, or AT_EUSER when n_rows < 1 or a
 * statistic is not finite (the model's outputs overflow on these inputs),
 * AT_EINTERNAL if LAPACK fails. */
int tda_kfac_factor(tda_kfac *k, const double *stats0, int64_t n_rows, at_err *err);
/* Eigenvalues Lambda (EK-FAC: stats1 / n_rows; K-FAC: s_i a_j, stats1
 * NULL) and the damping: lambda = damping (relative 0) or damping * mean
 * Lambda over all selected entries (relative 1), written to *lambda_used
 * (may be NULL). May be called again with other damping. Returns 0, or
 * AT_EUSER for damping < 0, non-finite stats1, or Lambda + lambda <= 0
 * somewhere (singular curvature: set damping > 0). */
int tda_kfac_finish(tda_kfac *k, const double *stats1, int64_t n_rows, double damping,
                    int relative, double *lambda_used, at_err *err);
/* out (nrhs, p) = (F + lambda I)^-1 g (nrhs, p), both in the selection
 * layout (rows independent; out must not alias g). Cost per row
 * 2 sum_l OC K1 (OC + K1) flops (dgemm over groups of rows); allocates
 * scratch of at most 32 MiB (or two of the largest layer's blocks) per
 * call. After tda_kfac_finish. */
void tda_kfac_apply(const tda_kfac *k, const double *g, int nrhs, double *out);
/* Bytes k holds (workspace, buffers, factors). */
size_t tda_kfac_bytes(const tda_kfac *k);
void tda_kfac_free(tda_kfac *k);

#endif
