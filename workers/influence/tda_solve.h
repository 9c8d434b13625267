/* tda_solve.h — curvature over a parameter selection, and its damped
 * inverse, for influence functions  -g_test^T (C + lambda I)^-1 g_train.
 *
 * Model of use
 * ------------
 * C is the curvature of the MEAN training loss (cross-entropy or MSE, the
 * engine's definitions) w.r.t. a selection of parameters: the trainable
 * tensors of the named layers (eng_param_sel_layers; all trainable tensors
 * when no layer is named). A vector over the selection has p = tda_curv_dim
 * elements laid out in selection order (model order), each tensor
 * row-major, exactly as eng_grad_per_example writes per-example gradients.
 * C is either the Gauss-Newton matrix J^T H_loss J (PSD) or the Hessian.
 *
 * The pipeline computes row blocks of the training set on any rank and folds
 * their float64 sums in block order, so the tda_curv_accum_* functions
 * ACCUMULATE SUMS over the rows they are given (never means): the caller
 * divides by the total row count. Sums over a split of the rows equal the
 * sum over all rows to float64 rounding (not bitwise: BLAS and chunk
 * boundaries change the order of additions); for the same rows and cap the
 * result is bitwise reproducible.
 *
 *   tda_curv *c; tda_curv_new(&c, m, layers, n_layers, TDA_CURV_GAUSS_NEWTON,
 *                             loss, 64, &err);
 *   double *M = at_calloc(p * p, sizeof(double), "M");   // zero: symmetric
 *   for each block: tda_curv_accum_matrix(c, m, x_b, y_b, N_b, M_b); fold;
 *   scale M by 1/N;
 *   tda_dense d; tda_dense_factor(&d, M, p, damping, relative, 0, &err);
 *   tda_dense_solve(&d, G, n_test);        // G (n_test, p) <- (C+lI)^-1 G
 *   tda_dense_free(&d); free(M);
 *
 * Without forming C (p too large): tda_cg or tda_lissa with a callback
 * computing the MEAN curvature times a vector (tda_curv_accum_matvec over
 * the training rows, divided by their count).
 *
 * Numerics: every curvature quantity is computed in float64 (parameters and
 * inputs promoted from float32). Hessian-vector products use complex-step
 * differentiation (h = 1e-30, exact to float64 rounding; ReLU and max-pool
 * take the a.e. Hessian, as PyTorch's double backward), with the tangent on
 * the selection only (zero elsewhere).
 *
 * This module knows nothing of MPI, HDF5 or YAML.
 */
#ifndef ATTRIB_TDA_SOLVE_H
#define ATTRIB_TDA_SOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "engine.h"

/* ---- curvature over a selection --------------------------------------- */

typedef enum { TDA_CURV_GAUSS_NEWTON = 1, TDA_CURV_HESSIAN } tda_curv_kind; /* = job_curvature */

/* Holds workspaces and is written by every call: one per thread. */
typedef struct tda_curv tda_curv;

/* A curvature evaluator for model m (its structure; parameters are read at
 * each accumulate call from m->params) over the trainable tensors of the
 * layers named in layers[0..n_layers) (all trainable tensors when n_layers
 * is 0), of kind `kind`, for loss `loss` (ENG_LOSS_XENT with any label
 * smoothing, or ENG_LOSS_MSE against one-hot labels), processing at most
 * cap rows per internal pass. Allocates everything it will need (see
 * tda_curv_bytes). Returns 0 and *out (free with tda_curv_free), or
 * AT_EUSER with err naming the wrong setting (unknown layer, layer without
 * parameters, margin loss, cap < 1, unknown kind); *out is then NULL. */
int tda_curv_new(tda_curv **out, const eng_model *m, const char *const *layers, int n_layers,
                 tda_curv_kind kind, eng_loss loss, int cap, at_err *err);
/* p: elements of the selection (the side of the curvature matrix). */
size_t tda_curv_dim(const tda_curv *c);
/* Bytes tda_curv_new allocated: a complex128 and a float64 workspace at
 * cap rows, the complex and float64 parameter/gradient copies (n_params
 * each), and for Gauss-Newton a Jacobian block of min(cap, max(1,
 * 2^22 / (p C))) rows x C classes x p doubles (at most 32 MiB unless p C
 * alone is larger). Not counted: the caller's p x p matrix. */
size_t tda_curv_bytes(const tda_curv *c);

/* M (p, p), row-major float64, += SUM over the N rows of x (N, D) with
 * labels (N) of each row's curvature over the selection at m->params
 * (Gauss-Newton does not depend on the labels: they may be NULL).
 * M must be symmetric on entry (zero is); both triangles are written.
 *  Gauss-Newton, cross-entropy: per row, H_loss = diag(q) - q q^T (q the
 *   softmax of the logits; label smoothing does not change it), written as
 *   sum_c q_c (e_c - q)(e_c - q)^T, so G_row = A^T A with A's C rows
 *   sqrt(q_c) J^T (e_c - q): C float64 backward passes with those dlogits
 *   and eng_grad_per_example_f64 give A's rows for a chunk, one dsyrk adds
 *   them. Exactly PSD up to rounding.
 *  Gauss-Newton, MSE (loss = sum_c (z_c - t_c)^2 / C): H_loss = (2/C) I,
 *   rows sqrt(2/C) J^T e_c.
 *   Cost per row: C backward passes + per-example gradients; per chunk one
 *   dsyrk of k = rows * C.
 *  Hessian: column k of the selection's Hessian block by one complex-step
 *   pass (complex128 forward from the first selected layer, backward to it)
 *   with tangent e_k, summed over the rows: p passes per chunk, so cost
 *   ~ p * 4 forward+backward passes per row — for small p only. Symmetric
 *   to rounding (not symmetrised). */
void tda_curv_accum_matrix(tda_curv *c, const eng_model *m, const float *x, const int32_t *labels,
                           int64_t N, double *M);
/* out (nrhs, p) += SUM over the N rows of the curvature times v (nrhs, p),
 * row-major. Per chunk of rows and right-hand side: Gauss-Newton J v by one
 * complex128 forward (tangent v on the selection), H_loss in closed form at
 * the float64 logits, J^T by one float64 backward; Hessian one complex128
 * forward and backward. Agrees with tda_curv_accum_matrix to float64
 * rounding; with the whole model selected, equals N * eng_gnvp / eng_hvp.
 * labels may be NULL for Gauss-Newton. */
void tda_curv_accum_matvec(tda_curv *c, const eng_model *m, const float *x, const int32_t *labels,
                           int64_t N, const double *v, int nrhs, double *out);
void tda_curv_free(tda_curv *c);

/* ---- dense damped inverse --------------------------------------------- */

typedef struct {
    int n;
    double lambda;           /* damping added to the diagonal (absolute value used) */
    double mean_eig;         /* trace(A) / n, of the undamped A */
    double min_eig, max_eig; /* of the undamped A (eig = 1); NAN with Cholesky */
    int eig;                 /* 0 Cholesky, 1 eigendecomposition */
    double *fac;             /* (n, n) = the caller's A, overwritten: the Cholesky
                                factor (lower, column-major = upper row-major) or
                                the eigenvectors (row i of the row-major view is
                                eigenvector i); NOT owned */
    double *evals;           /* (n) ascending eigenvalues of A (eig = 1), owned */
} tda_dense;

/* Factor A + lambda I for A (n, n) symmetric (only its lower triangle in
 * column-major = upper in row-major order is read; A is overwritten and
 * d->fac points into it, so A must outlive d and is freed by the caller
 * after tda_dense_free). lambda = damping, or damping * trace(A)/n when
 * relative. eig = 0: Cholesky (LAPACKE_dpotrf); eig = 1: eigendecomposition
 * (LAPACKE_dsyevd) of A, min/max eigenvalues filled, the inverse applied as
 * V diag(1/(w + lambda)) V^T. Returns 0, or AT_EUSER (d then holds nothing
 * to free) when A has a non-finite entry, damping is negative, relative
 * damping meets a non-positive mean eigenvalue, or A + lambda I is not
 * positive definite (the message says to raise `damping`). */
int tda_dense_factor(tda_dense *d, double *A, int n, double damping, int relative, int eig,
                     at_err *err);
/* B (nrhs, n), row-major, <- (A + lambda I)^-1 B, each row a right-hand
 * side. The eigendecomposition path allocates an (nrhs, n) scratch. */
void tda_dense_solve(const tda_dense *d, double *B, int nrhs);
/* Frees d->evals (not d->fac, the caller's A); d is then empty. */
void tda_dense_free(tda_dense *d);

/* ---- iterative inverses with a callback -------------------------------- */

/* out (n) = C v for the MEAN curvature C (n, n). step identifies the draw
 * for stochastic estimates (LiSSA minibatches); exact callers ignore it.
 * v and out never alias. */
typedef void (*tda_matvec_fn)(void *ctx, int64_t step, const double *v, double *out);

typedef struct {
    int iters;           /* CG iterations (matvecs on search directions) */
    double rel_residual; /* TRUE |b - (C + lambda I) x| / |b|, recomputed
                            with one extra matvec at the end */
    int converged;       /* rel_residual <= tol */
} tda_cg_info;

/* x (n) = (C + lambda I)^-1 b by conjugate gradient from x = 0. Stops when
 * the recurrence residual reaches tol * |b| and a recomputed residual
 * confirms it (otherwise it restarts from the true residual), at max_iter
 * iterations, or when p^T (C + lambda I) p <= 0 (not positive definite: the
 * Hessian at a saddle; raise damping). No error when not converged: info
 * says so and the caller records it. b = 0 gives x = 0. Matvec steps are
 * 0, 1, 2, ... in call order. Allocates 3 vectors of n. */
void tda_cg(tda_matvec_fn mv, void *ctx, int n, double lambda, const double *b, double *x,
            double tol, int max_iter, tda_cg_info *info);

typedef struct {
    int steps;     /* matvecs made */
    double growth; /* max over steps of |h_j| / |b| */
    int diverged;
} tda_lissa_info;

/* LiSSA (Agarwal, Bullins & Hazan 2017), in the form of Koh & Liang's and
 * dattri's code with the damping made explicit:
 *   h_0 = b,  h_j = b + (1 - lambda/scale) h_{j-1} - C_j h_{j-1} / scale,
 *   x = mean over `repeats` of h_depth / scale,
 * whose fixed point is x = (C + lambda I)^-1 b (dattri's and Koh & Liang's
 * `damping` d is lambda / scale here; their `scale` is ours). C_j is the
 * callback at step = r * depth + (j - 1) for repeat r (0-based) and j = 1..
 * depth (a minibatch curvature for stochastic LiSSA). Converges when every
 * eigenvalue of C_j + lambda I lies in (0, 2 scale); monotonically when
 * below scale (choose scale > lambda_max(C) + lambda, e.g. from
 * tda_max_eig); the error shrinks like (1 - (mu_min + lambda)/scale)^depth.
 * Divergence: when some eigenvalue leaves [0, 2 scale], |h_j| eventually
 * exceeds (j + 1) |b|, which no convergent iteration can reach (each step's
 * map I - (C_j + lambda I)/scale has norm <= 1, so |h_j| <= |b| + |h_{j-1}|);
 * that bound (with 1e-6 slack) or a non-finite h returns AT_EUSER saying at
 * which repeat and step, estimating the offending eigenvalue by 20 more
 * power steps along the divergent direction (matvec steps following the
 * failing one), and asking to raise `lissa_scale` (or `damping` when the
 * curvature plus damping is negative). Also AT_EUSER for depth, repeats < 1,
 * scale <= 0 or lambda < 0. x is zero on error. */
int tda_lissa(tda_matvec_fn mv, void *ctx, int n, double lambda, const double *b, double *x,
              int depth, double scale, int repeats, tda_lissa_info *info, at_err *err);

/* Largest-magnitude eigenvalue of C by `iters` power iterations from a
 * Gaussian start drawn from (seed, stream 0x7d50, coordinate); steps 0..
 * iters-1. Returns the last Rayleigh quotient v^T C v (|v| = 1), which for
 * a PSD C is a lower bound converging to lambda_max: add a margin (e.g.
 * lissa_scale = 1.2 * (estimate + lambda)). 0 when C v = 0. */
double tda_max_eig(tda_matvec_fn mv, void *ctx, int n, int iters, uint64_t seed);
/* Hutchinson estimate of trace(C): mean over `probes` Rademacher vectors z
 * (z_i = +-1 from (seed, stream 0x7d51, probe, i)) of z^T C z; step =
 * probe. Exact for a diagonal C. Mean eigenvalue = trace / n (relative
 * damping with CG or LiSSA). */
double tda_trace_estimate(tda_matvec_fn mv, void *ctx, int n, int probes, uint64_t seed);

#endif
