/* tda_truth.h — ground truth for training-data attribution: exact Newton
 * fits and leave-one-out (LOO) refits of a convex model, linear datamodeling
 * score (LDS) subsets and retraining, and the statistics that compare
 * predicted with actual effects.
 *
 * Model of use
 * ------------
 * Leave-one-out. The objective over the trainable parameters theta of a
 * model (buffers such as batch-norm running statistics stay fixed) is
 *
 *   J(theta) = (1/n) sum_{i kept} CE(f(x_i; theta), y_i) + (wd/2) |theta|^2
 *
 * with n the number of kept rows (drop[i] == 0) and |theta| over trainable
 * parameters only (weights and biases alike, as PyTorch's weight_decay).
 * Everything is float64: theta is a double copy of the model's whole
 * parameter block (n_params, model order); its buffer entries are read,
 * never written. The pipeline fits the full model once, factors the
 * Hessian there, and refits without each chosen point from the optimum:
 *
 *   tda_newton_fit(m, theta, x, y, N, NULL, wd, tol, iters, &info, &err);
 *   tda_newton_factor *f;
 *   tda_newton_factor_new(&f, m, theta, x, y, N, NULL, wd, &err);
 *   for each point i: copy theta to t; drop[i] = 1;
 *       tda_newton_refit(f, t, drop, tol, iters, &info, &err); drop[i] = 0;
 *       tda_eval_f64(m, t, x_test, y_test, N_test, loss_i, NULL);
 *   tda_newton_factor_free(f);
 *
 * To first order the LOO change of a test loss under this objective is
 *   loss(theta_-i) - loss(theta*) = g_test^T H^-1 (g_i + wd theta*) / (n - 1)
 * (g the per-example loss gradients at the full optimum, H the Hessian of
 * J); the wd theta* term is the same for every i, so it shifts but does not
 * reorder the classic prediction (1/n) g_test^T H^-1 g_i.
 *
 * Hessians are exact. When every trainable tensor belongs to the model's
 * LAST layer and that layer is a linear on flat inputs (e.g. [avgpool2d,
 * flatten, linear]) the logits are affine in theta, so the Hessian of J IS
 * the Gauss-Newton matrix: with features a_i (the linear's input, computed
 * once) and p_i the softmax,
 *   H = (1/n) sum_i (diag(p_i) - p_i p_i^T) (x) [a_i;1][a_i;1]^T + wd I,
 * formed by dsyrk over row blocks ("linear path"). For any other model it
 * is formed column by column by complex-step differentiation of the
 * float64 gradient through the complex128 kernels (as eng_hvp does, h =
 * 1e-30: exact to rounding; "general path", cost n_params forward+backward
 * passes over the rows). Newton steps solve with the Cholesky factor
 * (LAPACKE dpotrf/dpotrs) and take an Armijo backtracking line search.
 *
 * LDS (Park et al. 2023). Subset s of the train rows is tda_lds_subset(seed,
 * s); a model is trained on it per retraining seed with tda_train_subset;
 * the pipeline averages the test margins over seeds, forms the predictions
 * mask . scores and correlates per test row over subsets (tda_spearman);
 * tda_bootstrap_ci gives the confidence interval of the mean.
 * tda_lds_predict and tda_lds are the same computation in one call each,
 * for a caller holding whole score rows (the pipeline folds tiles instead,
 * and counts an undefined correlation as 0 where tda_lds skips it).
 *
 * Determinism: every random draw is at_rng_*(seed, stream, a, b); results
 * for one LOO point, one subset or one test row never depend on how the
 * caller splits points, subsets or rows into blocks.
 *
 * No MPI, HDF5 or YAML here.
 */
#ifndef ATTRIB_TDA_TRUTH_H
#define ATTRIB_TDA_TRUTH_H

#include <stdint.h>

#include "core.h"
#include "engine.h"

/* Newton forms a dense Hessian over the trainable parameters: more than
 * this many (3.2 GB of float64 at the limit) are refused. */
#define TDA_NEWTON_MAX_PARAMS 20000

/* Random streams (at_rng_*): LDS subset s uses TDA_STREAM_LDS + s, the
 * bootstrap TDA_STREAM_BOOT. Far above core's AT_STREAM_* values. */
#define TDA_STREAM_LDS 0x4c44530000000000ull  /* "LDS" << 40 */
#define TDA_STREAM_BOOT 0x424f4f5400000000ull /* "BOOT" << 32 */

/* What a fit did. */
typedef struct {
    int iters;        /* Newton (or preconditioned) steps taken */
    double grad_norm; /* |grad J| (2-norm over trainable parameters) at the end */
    double objective; /* J at the end */
    int converged;    /* 1 when grad_norm <= tol */
} tda_fit_info;

/* J(theta) as above over the rows with drop[i] == 0 (drop (N), NULL = keep
 * all), float64. grad (n_params, model order), if not NULL, receives dJ/dtheta
 * on trainable entries and 0 on buffers. x (N, D) row-major, labels (N) in
 * [0, C). Any number of parameters. Contract (AT_CHECK): at least one kept
 * row, labels in range, C >= 2, a trainable tensor, weight_decay >= 0. */
double tda_objective(const eng_model *m, const double *theta, const float *x, const int32_t *labels,
                     int64_t N, const uint8_t *drop, double weight_decay, double *grad);

/* Minimise J by Newton's method from theta (n_params, in: start; out: the
 * optimum; buffer entries untouched). Exact Hessian (linear path or
 * complex step, see above), Cholesky solve, Armijo backtracking. Stops when
 * |grad J| <= tol. info (may be NULL) is filled in every case. Returns 0
 * when converged; AT_EUSER when a label is outside [0, C), no row is kept,
 * the model has more than TDA_NEWTON_MAX_PARAMS trainable parameters, the
 * Hessian is not positive definite (J not convex there: raise the weight
 * decay), or tol is not reached within max_iter steps (theta then holds the
 * last iterate). */
int tda_newton_fit(const eng_model *m, double *theta, const float *x, const int32_t *labels,
                   int64_t N, const uint8_t *drop, double weight_decay, double tol, int max_iter,
                   tda_fit_info *info, at_err *err);

/* The Cholesky factor of the Hessian of J at one theta, reused as a fixed
 * preconditioner for refits. It borrows m, x and labels (they must outlive
 * it) and owns its features, factor and scratch; calls on one factor must
 * not run concurrently. */
typedef struct tda_newton_factor tda_newton_factor;

/* Build *out at theta (n_params) for the rows with drop[i] == 0 (NULL: all):
 * forms H and factors it. Buffer entries of theta are fixed for the life of
 * the factor. Returns 0, or AT_EUSER as tda_newton_fit (*out is then NULL). */
int tda_newton_factor_new(tda_newton_factor **out, const eng_model *m, const double *theta,
                          const float *x, const int32_t *labels, int64_t N, const uint8_t *drop,
                          double weight_decay, at_err *err);
/* Minimise J over the rows with drop[i] == 0 (drop (N) or NULL; any rows,
 * not only those of the factor) from theta (in: start, normally the full
 * optimum; out: the optimum), by the exact gradient and the factor's fixed
 * Hessian: theta -= t H0^-1 grad J, t by Armijo backtracking. It converges
 * linearly to the exact optimum, fast when J is close to the factor's
 * objective (one dropped row of n: rate ~ 1/n). Returns and fills info as
 * tda_newton_fit. */
int tda_newton_refit(tda_newton_factor *f, double *theta, const uint8_t *drop, double tol,
                     int max_iter, tda_fit_info *info, at_err *err);
/* out (n_params) = H^-1 v on trainable entries (v's buffer entries ignored,
 * out's set to 0), H the factor's Hessian. out may equal v. */
void tda_newton_solve(tda_newton_factor *f, const double *v, double *out);
/* Trainable parameters the factor works over (H is p x p). */
int64_t tda_newton_factor_params(const tda_newton_factor *f);
void tda_newton_factor_free(tda_newton_factor *f);

/* Per-example cross-entropy loss (N) and TRAK margin log p_y - log(1 - p_y)
 * (N, or NULL) at theta (n_params), float64. x (N, D), labels (N). */
void tda_eval_f64(const eng_model *m, const double *theta, const float *x, const int32_t *labels,
                  int64_t N, double *loss, double *margin);

/* ---- LDS ------------------------------------------------------------ */

/* mask (n_train) = 1 on exactly round(fraction * n_train) rows (half away
 * from zero), 0 elsewhere: the first rows of at_rng_permutation(seed,
 * TDA_STREAM_LDS + s). A pure function of (seed, s, n_train, fraction).
 * Contract: 0 <= fraction <= 1, n_train < 2^32. */
void tda_lds_subset(uint64_t seed, int s, int64_t n_train, double fraction, uint8_t *mask);

/* Retraining settings, mirroring the job's train section (io/job.h). */
typedef struct {
    int epochs;             /* >= 1 */
    int batch_size;         /* >= 1 */
    eng_opt_kind optimizer; /* sgd, adam, adamw */
    double lr, momentum, weight_decay;
    int nesterov;             /* sgd with momentum > 0 */
    double beta1, beta2, eps; /* adam, adamw */
    eng_sched_kind schedule;  /* constant, step, cosine (T_max = epochs) */
    int step_size;            /* step: epochs between decays (>= 1) */
    double gamma;             /* step: decay factor */
    double min_lr;            /* cosine: eta_min */
    eng_loss loss;            /* XENT or MSE */
} tda_train_cfg;

/* Train m from scratch on the rows with mask[i] == 1 (mask (N)), in their
 * order in x: eng_model_init_params(m, seed), then cfg->epochs epochs of
 * eng_train_epoch with shuffle seed `seed` (so the result is a pure
 * function of (m's architecture, cfg, the kept rows, seed); rows with mask
 * 0 are never read). Writes m->params. Returns 0, or AT_EUSER naming the
 * train.* setting when cfg is invalid, no row is selected, or training
 * diverges (non-finite loss: lower train.lr). */
int tda_train_subset(eng_model *m, const tda_train_cfg *cfg, const float *x, const int32_t *labels,
                     int64_t N, const uint8_t *mask, uint64_t seed, at_err *err);

/* pred (T, M) += scores (T, n) . masks (M, n)^T in float64 (one dgemm):
 * the predicted effect sum_{i in S_m} score(t, i) of each subset. scores
 * has row stride ld >= n and masks row stride ldm >= n, so a caller can
 * fold column blocks of the train set in its own order. masks hold 0/1. */
void tda_lds_predict(double *pred, const double *scores, int64_t ld, const double *masks,
                     int64_t ldm, int T, int M, int n);

/* per_test (T, may be NULL) = Spearman over the M subsets of pred[t, :]
 * against actual[t, :] (both (T, M) row-major; actual = margins averaged
 * over seeds). Returns the mean over t of the finite correlations (NaN when
 * none is finite: a constant row has none). */
double tda_lds(const double *pred, const double *actual, int T, int M, double *per_test);

/* ---- statistics ----------------------------------------------------- */

/* Pearson correlation of a and b (n). NaN when n < 2 or either is constant. */
double tda_pearson(const double *a, const double *b, int64_t n);
/* Spearman: the Pearson correlation of the ranks, tied values getting the
 * average of their ranks (scipy.stats.spearmanr). NaN as tda_pearson, or
 * when a value is NaN. */
double tda_spearman(const double *a, const double *b, int64_t n);
/* Percentile bootstrap CI of the mean of v (n >= 1): `resamples` means of n
 * draws with replacement, draw j of resample r = at_rng_below(n, seed,
 * TDA_STREAM_BOOT, r, j); *lo, *hi = their (1-level)/2 and (1+level)/2
 * quantiles, linearly interpolated (numpy's default). level in (0, 1). */
void tda_bootstrap_ci(const double *v, int64_t n, int resamples, uint64_t seed, double level,
                      double *lo, double *hi);

#endif
