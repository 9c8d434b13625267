/* tda_truth.c — Newton fits and leave-one-out refits in float64, LDS
 * subsets and retraining, correlation and bootstrap statistics
 * (tda_truth.h).
 *
 * A "problem" binds a model, its rows and the weight decay, and owns the
 * scratch of the objective, gradient and Hessian. Trainable parameters are
 * handled as a packed vector of p entries; idx[j] is the model index of
 * packed entry j. On the linear path the packed order is (C, K): entry
 * c*K + k is weight[c, k] for k < IC and bias[c] for k == IC, so the
 * packed vector is the augmented weight matrix V and A V^T are the logits
 * of features A (N, K) whose last column is 1.
 */
#include "tda_truth.h"

#include <cblas.h>
#include <complex.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSTEP 1e-30    /* complex step (engine.h, "Curvature") */
#define BATCH 256      /* rows per forward on the general path and in evaluation */
#define HBLOCK 256     /* rows per dsyrk block of the linear-path Hessian */
#define ARMIJO_C 1e-4  /* sufficient decrease */
#define MIN_STEP 1e-10 /* smallest line-search step before giving up */

typedef double complex cplx;

typedef struct {
    const eng_model *m;
    const float *x;        /* (N, D) */
    const int32_t *labels; /* (N) */
    int64_t N;
    double wd;
    int D, C;
    size_t p;           /* trainable parameters */
    size_t *idx;        /* (p) packed entry -> model index */
    double *theta_try;  /* (n_params) line-search point */
    double *g, *gt, *d; /* (p) gradient, gradient at the trial point, step */
    double *H;          /* (p, p) Hessian, then its Cholesky factor */
    /* linear path */
    int linear;
    int K;     /* IC + bias */
    double *A; /* (N, K) features; last column 1 with a bias */
    double *Z; /* (N, C) logits, then weighted residuals */
    double *V; /* (p) = (C, K) packed parameters */
    double *U; /* (HBLOCK, C*K) Hessian block rows */
    /* general path */
    eng_workspace w64, wz;
    double *xb, *db, *lb, *gfull; /* (BATCH, D), (BATCH, C), (BATCH), (n_params) */
    cplx *pz, *gz, *xz, *dz;      /* (n_params), (n_params), (BATCH, D), (BATCH, C) */
    int64_t *rows;                /* (BATCH) rows of the current batch */
} prob;

struct tda_newton_factor {
    prob P;
};

/* ------------------------------------------------------------ helpers */

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static int64_t count_kept(const uint8_t *drop, int64_t N) {
    if (!drop) return N;
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) n += drop[i] == 0;
    return n;
}

/* The next up to BATCH kept rows from *cursor into P->rows; returns how many. */
static int next_rows(prob *P, const uint8_t *drop, int64_t *cursor) {
    int nb = 0;
    while (*cursor < P->N && nb < BATCH) {
        int64_t i = (*cursor)++;
        if (!drop || !drop[i]) P->rows[nb++] = i;
    }
    return nb;
}

/* Softmax of z (C) into p; returns logsumexp(z). */
static double softmax_lse(const double *z, double *p, int C) {
    double mx = z[0];
    for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (p[c] = exp(z[c] - mx));
    for (int c = 0; c < C; c++) p[c] /= s;
    return mx + log(s);
}

/* ------------------------------------------------------------ problem */

static void prob_free(prob *P) {
    free(P->idx);
    free(P->theta_try);
    free(P->g);
    free(P->gt);
    free(P->d);
    free(P->H);
    free(P->A);
    free(P->Z);
    free(P->V);
    free(P->U);
    eng_workspace_free(&P->w64); /* zeroed when never made: free(NULL)s */
    eng_workspace_free(&P->wz);
    free(P->xb);
    free(P->db);
    free(P->lb);
    free(P->gfull);
    free(P->pz);
    free(P->gz);
    free(P->xz);
    free(P->dz);
    free(P->rows);
    memset(P, 0, sizeof *P);
}

/* Linear path: every trainable tensor is in the last layer, a linear on
 * flat inputs. Returns that layer or -1. */
static int linear_head(const eng_model *m) {
    const int f = m->n_layers - 1;
    if (f < 0 || m->layers[f].kind != ENG_LAYER_LINEAR || m->layers[f].in_ndim != 1) return -1;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].trainable && m->tensors[t].layer != f) return -1;
    return f;
}

/* Bind (m, x, labels, N, wd) and allocate (the Hessian's buffers only if
 * `hessian`); on the linear path also compute the features A at theta
 * (buffers of earlier layers are read from it). */
static int prob_init(prob *P, const eng_model *m, const double *theta, const float *x,
                     const int32_t *labels, int64_t N, double weight_decay, int hessian,
                     at_err *err) {
    memset(P, 0, sizeof *P);
    AT_CHECK(m && theta && x && labels && N >= 0 && N <= INT32_MAX);
    const int C = m->out_features, D = m->in_features;
    if (C < 2)
        return at_err_set(err, AT_EUSER,
                          "the model has %d output; a cross-entropy fit needs >= 2 classes", C);
    if (!(weight_decay >= 0.0) || !isfinite(weight_decay))
        return at_err_set(err, AT_EUSER, "weight decay %g: expected a finite value >= 0",
                          weight_decay);
    for (int64_t i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C)
            return at_err_set(err, AT_EUSER,
                              "label %d of row %lld is outside [0, %d) (the model has %d "
                              "outputs): check the data's labels",
                              (int)labels[i], (long long)i, C, C);
    size_t p = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].trainable) p += m->tensors[t].numel;
    if (p == 0) return at_err_set(err, AT_EUSER, "the model has no trainable parameters");
    if (hessian && p > TDA_NEWTON_MAX_PARAMS)
        return at_err_set(err, AT_EUSER,
                          "the model has %zu trainable parameters; Newton's method forms a "
                          "dense Hessian and accepts at most %d: fit a smaller convex model "
                          "(e.g. pool the inputs further before the linear layer)",
                          p, TDA_NEWTON_MAX_PARAMS);
    P->m = m;
    P->x = x;
    P->labels = labels;
    P->N = N;
    P->wd = weight_decay;
    P->C = C;
    P->D = D;
    P->p = p;
    P->idx = at_malloc(p * sizeof *P->idx, "newton index");
    P->theta_try = at_malloc(m->n_params * sizeof(double), "newton trial point");
    P->g = at_malloc(p * sizeof(double), "newton gradient");
    P->gt = at_malloc(p * sizeof(double), "newton gradient");
    P->d = at_malloc(p * sizeof(double), "newton step");
    if (hessian) P->H = at_malloc(p * p * sizeof(double), "newton hessian");
    P->rows = at_malloc(BATCH * sizeof *P->rows, "newton batch rows");
    P->xb = at_malloc((size_t)BATCH * D * sizeof(double), "newton batch inputs");
    eng_workspace_init(&P->w64, m, BATCH, ENG_F64);

    const int f = linear_head(m);
    if (f >= 0) {
        const eng_layer *L = &m->layers[f];
        const eng_tensor *Tw = &m->tensors[L->tensor0];
        const eng_tensor *Tb = L->bias ? &m->tensors[L->tensor0 + 1] : NULL;
        const int IC = L->in_shape[0], K = IC + (Tb != NULL);
        P->linear = 1;
        P->K = K;
        for (int c = 0; c < C; c++)
            for (int k = 0; k < K; k++)
                P->idx[(size_t)c * K + k] = k < IC ? Tw->off + (size_t)c * IC + k : Tb->off + c;
        const size_t NN = N ? (size_t)N : 1;
        P->A = at_malloc(NN * K * sizeof(double), "newton features");
        P->Z = at_malloc(NN * C * sizeof(double), "newton logits");
        P->V = at_malloc(p * sizeof(double), "newton parameters");
        if (hessian) P->U = at_malloc((size_t)HBLOCK * p * sizeof(double), "newton hessian rows");
        /* features: the linear's input, float64, at theta's buffers */
        const int src = L->src[0];
        for (int64_t s = 0; s < N; s += BATCH) {
            const int nb = (int)(N - s < BATCH ? N - s : BATCH);
            for (size_t e = 0; e < (size_t)nb * D; e++) P->xb[e] = x[(size_t)s * D + e];
            const double *a = P->xb;
            if (src != ENG_SRC_INPUT) {
                eng_forward_f64(m, &P->w64, theta, P->xb, nb);
                a = eng_ws_act(&P->w64, src);
            }
            for (int r = 0; r < nb; r++) {
                double *Ar = P->A + (size_t)(s + r) * K;
                memcpy(Ar, a + (size_t)r * IC, (size_t)IC * sizeof(double));
                if (K > IC) Ar[IC] = 1.0;
            }
        }
        eng_workspace_free(&P->w64);
        free(P->xb);
        P->xb = NULL;
        return 0;
    }
    size_t j = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (!T->trainable) continue;
        for (size_t k = 0; k < T->numel; k++) P->idx[j++] = T->off + k;
    }
    P->db = at_malloc((size_t)BATCH * C * sizeof(double), "newton dlogits");
    P->lb = at_malloc((size_t)BATCH * sizeof(double), "newton losses");
    P->gfull = at_malloc(m->n_params * sizeof(double), "newton full gradient");
    if (!hessian) return 0;
    eng_workspace_init(&P->wz, m, BATCH, ENG_C128);
    P->pz = at_malloc(m->n_params * sizeof(cplx), "newton complex params");
    P->gz = at_malloc(m->n_params * sizeof(cplx), "newton complex gradient");
    P->xz = at_malloc((size_t)BATCH * D * sizeof(cplx), "newton complex inputs");
    P->dz = at_malloc((size_t)BATCH * C * sizeof(cplx), "newton complex dlogits");
    return 0;
}

/* ------------------------------------------------- objective, gradient */

/* J at theta over kept rows (n of them, n >= 1); g (p, packed) if not NULL. */
static double obj_linear(prob *P, const double *theta, const uint8_t *drop, int64_t n, double *g) {
    const int C = P->C, K = P->K;
    const int64_t N = P->N;
    double *V = P->V, *Z = P->Z;
    for (size_t j = 0; j < P->p; j++) V[j] = theta[P->idx[j]];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, C, K, 1.0, P->A, K, V, K, 0.0, Z,
                C);
    const double w = 1.0 / (double)n;
    double sum = 0.0;
    for (int64_t i = 0; i < N; i++) {
        double *z = Z + (size_t)i * C;
        if (drop && drop[i]) {
            memset(z, 0, (size_t)C * sizeof *z);
            continue;
        }
        const int y = P->labels[i];
        const double zy = z[y];
        const double lse = softmax_lse(z, z, C); /* z now holds p */
        sum += lse - zy;
        for (int c = 0; c < C; c++) z[c] *= w;
        z[y] -= w; /* w (p - e_y) */
    }
    if (g) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, K, (int)N, 1.0, Z, C, P->A, K, 0.0,
                    g, K);
        for (size_t j = 0; j < P->p; j++) g[j] += P->wd * V[j];
    }
    return sum * w + 0.5 * P->wd * dot(V, V, P->p);
}

static double obj_general(prob *P, const double *theta, const uint8_t *drop, int64_t n, double *g) {
    const eng_model *m = P->m;
    const int C = P->C, D = P->D;
    const eng_loss xent = {ENG_LOSS_XENT, 0.0};
    const double w = 1.0 / (double)n;
    if (g) memset(P->gfull, 0, m->n_params * sizeof(double));
    double sum = 0.0;
    int64_t cur = 0;
    int nb;
    int32_t yb[BATCH];
    while ((nb = next_rows(P, drop, &cur)) > 0) {
        for (int r = 0; r < nb; r++) {
            const float *xr = P->x + (size_t)P->rows[r] * D;
            double *xd = P->xb + (size_t)r * D;
            for (int e = 0; e < D; e++) xd[e] = xr[e];
            yb[r] = P->labels[P->rows[r]];
        }
        const double *z = eng_forward_f64(m, &P->w64, theta, P->xb, nb);
        eng_loss_forward_f64(&xent, P->lb, z, yb, NULL, nb, C);
        for (int r = 0; r < nb; r++) sum += P->lb[r];
        if (!g) continue;
        memset(P->db, 0, (size_t)nb * C * sizeof(double));
        eng_loss_backward_f64(&xent, P->db, z, yb, NULL, nb, C, w);
        eng_backward_f64(m, &P->w64, theta, P->xb, P->db, nb, NULL, P->gfull);
    }
    double reg = 0.0;
    for (size_t j = 0; j < P->p; j++) {
        const double t = theta[P->idx[j]];
        reg += t * t;
        if (g) g[j] = P->gfull[P->idx[j]] + P->wd * t;
    }
    return sum * w + 0.5 * P->wd * reg;
}

static double obj(prob *P, const double *theta, const uint8_t *drop, int64_t n, double *g) {
    return P->linear ? obj_linear(P, theta, drop, n, g) : obj_general(P, theta, drop, n, g);
}

/* ------------------------------------------------------------ Hessian */

/* H (p, p) = (1/n) sum_i (diag(p_i) - p_i p_i^T) (x) a_i a_i^T + wd I. */
static void hess_linear(prob *P, const double *theta, const uint8_t *drop, int64_t n) {
    const int C = P->C, K = P->K;
    const int64_t N = P->N;
    const size_t p = P->p;
    double *H = P->H, *Z = P->Z, *U = P->U;
    for (size_t j = 0; j < p; j++) P->V[j] = theta[P->idx[j]];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, C, K, 1.0, P->A, K, P->V, K, 0.0,
                Z, C);
    for (int64_t i = 0; i < N; i++) { /* Z <- softmax (dropped rows: 0) */
        double *z = Z + (size_t)i * C;
        if (drop && drop[i])
            memset(z, 0, (size_t)C * sizeof *z);
        else
            softmax_lse(z, z, C);
    }
    memset(H, 0, p * p * sizeof *H);
    const double sw = sqrt(1.0 / (double)n);
    for (int64_t s = 0; s < N; s += HBLOCK) {
        const int nb = (int)(N - s < HBLOCK ? N - s : HBLOCK);
        /* -(p (x) a)(p (x) a)^T: rows U_r = sqrt(w) p_r (x) a_r */
        for (int r = 0; r < nb; r++) {
            const double *pr = Z + (size_t)(s + r) * C, *ar = P->A + (size_t)(s + r) * K;
            double *ur = U + (size_t)r * p;
            for (int c = 0; c < C; c++) {
                const double f = sw * pr[c];
                for (int k = 0; k < K; k++) ur[(size_t)c * K + k] = f * ar[k];
            }
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)p, nb, -1.0, U, (int)p, 1.0, H,
                    (int)p);
        /* diagonal blocks: + sum_r w p_rc a_r a_r^T, rows sqrt(w p_rc) a_r */
        for (int c = 0; c < C; c++) {
            for (int r = 0; r < nb; r++) {
                const double f = sw * sqrt(Z[(size_t)(s + r) * C + c]);
                const double *ar = P->A + (size_t)(s + r) * K;
                double *ur = U + (size_t)r * K;
                for (int k = 0; k < K; k++) ur[k] = f * ar[k];
            }
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, K, nb, 1.0, U, K, 1.0,
                        H + (size_t)c * K * p + (size_t)c * K, (int)p);
        }
    }
    for (size_t a = 0; a < p; a++) {
        H[a * p + a] += P->wd;
        for (size_t b = 0; b < a; b++) H[b * p + a] = H[a * p + b];
    }
}

/* Column j of H = Im(grad J(theta + i h e_j)) / h over the kept rows: one
 * complex forward and backward per batch and column. */
static void hess_general(prob *P, const double *theta, const uint8_t *drop, int64_t n) {
    const eng_model *m = P->m;
    const int C = P->C, D = P->D;
    const size_t p = P->p;
    const eng_loss xent = {ENG_LOSS_XENT, 0.0};
    const double w = 1.0 / (double)n;
    int32_t yb[BATCH];
    for (size_t j = 0; j < p; j++) {
        for (size_t k = 0; k < m->n_params; k++) P->pz[k] = theta[k];
        P->pz[P->idx[j]] += I * CSTEP;
        memset(P->gz, 0, m->n_params * sizeof(cplx));
        int64_t cur = 0;
        int nb;
        while ((nb = next_rows(P, drop, &cur)) > 0) {
            for (int r = 0; r < nb; r++) {
                const float *xr = P->x + (size_t)P->rows[r] * D;
                cplx *xz = P->xz + (size_t)r * D;
                for (int e = 0; e < D; e++) xz[e] = xr[e];
                yb[r] = P->labels[P->rows[r]];
            }
            const cplx *z = eng_forward_c128(m, &P->wz, P->pz, P->xz, nb);
            memset(P->dz, 0, (size_t)nb * C * sizeof(cplx));
            eng_loss_backward_c128(&xent, P->dz, z, yb, NULL, nb, C, w);
            eng_backward_c128(m, &P->wz, P->pz, P->xz, P->dz, nb, NULL, P->gz);
        }
        double *Hj = P->H + j * p;
        for (size_t q = 0; q < p; q++) Hj[q] = cimag(P->gz[P->idx[q]]) / CSTEP;
        Hj[j] += P->wd;
    }
    for (size_t a = 0; a < p; a++) /* symmetric to rounding: average */
        for (size_t b = 0; b < a; b++) {
            const double v = 0.5 * (P->H[a * p + b] + P->H[b * p + a]);
            P->H[a * p + b] = P->H[b * p + a] = v;
        }
}

/* Form H at theta and factor it in place. */
static int hess_factor(prob *P, const double *theta, const uint8_t *drop, int64_t n, at_err *err) {
    if (P->linear)
        hess_linear(P, theta, drop, n);
    else
        hess_general(P, theta, drop, n);
    const lapack_int info =
        LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)P->p, P->H, (lapack_int)P->p);
    if (info != 0)
        return at_err_set(err, AT_EUSER,
                          "the Hessian of the objective (%zu parameters) is not positive "
                          "definite (Cholesky info %d): the model is not convex here; use a "
                          "convex model (only a final linear layer trainable) or raise the "
                          "weight decay",
                          P->p, (int)info);
    return 0;
}

/* ----------------------------------------------------------- Newton */

/* Minimise J from theta. refactor = 1: Newton (H formed and factored every
 * step); 0: the factor already in P->H is used for every step. */
static int minimise(prob *P, double *theta, const uint8_t *drop, double tol, int max_iter,
                    int refactor, tda_fit_info *info, at_err *err) {
    AT_CHECK(err);
    tda_fit_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    const int64_t n = count_kept(drop, P->N);
    if (n < 1) return at_err_set(err, AT_EUSER, "every training row is dropped: nothing to fit");
    if (!(tol >= 0.0) || max_iter < 0)
        return at_err_set(err, AT_EUSER,
                          "Newton tolerance %g and iteration limit %d: expected >= 0", tol,
                          max_iter);
    const size_t p = P->p, np = P->m->n_params;
    double J = obj(P, theta, drop, n, P->g);
    double gn = sqrt(dot(P->g, P->g, p));
    int it = 0, rc = 0;
    while (isfinite(gn) && gn > tol && it < max_iter) {
        if (refactor && (rc = hess_factor(P, theta, drop, n, err))) break;
        for (size_t j = 0; j < p; j++) P->d[j] = -P->g[j];
        LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)p, 1, P->H, (lapack_int)p, P->d,
                       (lapack_int)p);
        const double gd = dot(P->g, P->d, p); /* < 0: H is positive definite */
        const double slack = 1e-12 * (1.0 + fabs(J));
        double t = 1.0, Jt = J;
        int ok = 0;
        for (; t >= MIN_STEP; t *= 0.5) {
            memcpy(P->theta_try, theta, np * sizeof(double));
            for (size_t j = 0; j < p; j++) P->theta_try[P->idx[j]] += t * P->d[j];
            Jt = obj(P, P->theta_try, drop, n, P->gt);
            if (Jt <= J + ARMIJO_C * t * gd + slack) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            rc = at_err_set(err, AT_EUSER,
                            "Newton's line search stalled after %d steps at |grad J| = %.3g: the "
                            "tolerance %.3g is below what float64 resolves for this problem; raise "
                            "it (train.tol, or ground_truth.loo.tol)",
                            it, gn, tol);
            break;
        }
        memcpy(theta, P->theta_try, np * sizeof(double));
        J = Jt;
        memcpy(P->g, P->gt, p * sizeof(double));
        gn = sqrt(dot(P->g, P->g, p));
        it++;
    }
    info->iters = it;
    info->grad_norm = gn;
    info->objective = J;
    info->converged = gn <= tol;
    if (info->converged) return 0;
    if (rc) return rc;
    if (!isfinite(gn))
        return at_err_set(err, AT_EUSER,
                          "the objective's gradient is not finite (|grad J| = %g): check the "
                          "inputs for NaN or Inf",
                          gn);
    return at_err_set(err, AT_EUSER,
                      "Newton stopped after %d steps at |grad J| = %.3g > tolerance %.3g: raise "
                      "the iteration limit (train.max_iter, or ground_truth.loo.max_iter) or the "
                      "tolerance",
                      it, gn, tol);
}

double tda_objective(const eng_model *m, const double *theta, const float *x, const int32_t *labels,
                     int64_t N, const uint8_t *drop, double weight_decay, double *grad) {
    at_err err = {0};
    prob P;
    const int rc = prob_init(&P, m, theta, x, labels, N, weight_decay, 0, &err);
    AT_CHECK(rc == 0);
    const int64_t n = count_kept(drop, N);
    AT_CHECK(n >= 1);
    const double J = obj(&P, theta, drop, n, grad ? P.g : NULL);
    if (grad) {
        memset(grad, 0, m->n_params * sizeof *grad);
        for (size_t j = 0; j < P.p; j++) grad[P.idx[j]] = P.g[j];
    }
    prob_free(&P);
    return J;
}

int tda_newton_fit(const eng_model *m, double *theta, const float *x, const int32_t *labels,
                   int64_t N, const uint8_t *drop, double weight_decay, double tol, int max_iter,
                   tda_fit_info *info, at_err *err) {
    if (info) memset(info, 0, sizeof *info);
    prob P;
    int rc = prob_init(&P, m, theta, x, labels, N, weight_decay, 1, err);
    if (rc) return rc;
    rc = minimise(&P, theta, drop, tol, max_iter, 1, info, err);
    prob_free(&P);
    return rc;
}

int tda_newton_factor_new(tda_newton_factor **out, const eng_model *m, const double *theta,
                          const float *x, const int32_t *labels, int64_t N, const uint8_t *drop,
                          double weight_decay, at_err *err) {
    *out = NULL;
    tda_newton_factor *f = at_calloc(1, sizeof *f, "newton factor");
    int rc = prob_init(&f->P, m, theta, x, labels, N, weight_decay, 1, err);
    if (!rc) {
        const int64_t n = count_kept(drop, N);
        rc = n < 1 ? at_err_set(err, AT_EUSER, "every training row is dropped: nothing to fit")
                   : hess_factor(&f->P, theta, drop, n, err);
    }
    if (rc) {
        prob_free(&f->P);
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int tda_newton_refit(tda_newton_factor *f, double *theta, const uint8_t *drop, double tol,
                     int max_iter, tda_fit_info *info, at_err *err) {
    AT_CHECK(f && theta);
    return minimise(&f->P, theta, drop, tol, max_iter, 0, info, err);
}

void tda_newton_solve(tda_newton_factor *f, const double *v, double *out) {
    AT_CHECK(f && v && out);
    prob *P = &f->P;
    for (size_t j = 0; j < P->p; j++) P->d[j] = v[P->idx[j]];
    LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)P->p, 1, P->H, (lapack_int)P->p, P->d,
                   (lapack_int)P->p);
    memset(out, 0, P->m->n_params * sizeof *out);
    for (size_t j = 0; j < P->p; j++) out[P->idx[j]] = P->d[j];
}

int64_t tda_newton_factor_params(const tda_newton_factor *f) { return (int64_t)f->P.p; }

void tda_newton_factor_free(tda_newton_factor *f) {
    if (!f) return;
    prob_free(&f->P);
    free(f);
}

void tda_eval_f64(const eng_model *m, const double *theta, const float *x, const int32_t *labels,
                  int64_t N, double *loss, double *margin) {
    AT_CHECK(m && theta && x && labels && loss && N >= 0);
    const int C = m->out_features, D = m->in_features;
    const eng_loss xent = {ENG_LOSS_XENT, 0.0}, mar = {ENG_LOSS_MARGIN, 0.0};
    for (int64_t i = 0; i < N; i++) AT_CHECK(labels[i] >= 0 && labels[i] < C);
    eng_workspace ws;
    eng_workspace_init(&ws, m, BATCH, ENG_F64);
    double *xb = at_malloc((size_t)BATCH * D * sizeof *xb, "eval inputs"); /* (BATCH, D) */
    for (int64_t s = 0; s < N; s += BATCH) {
        const int nb = (int)(N - s < BATCH ? N - s : BATCH);
        for (size_t e = 0; e < (size_t)nb * D; e++) xb[e] = x[(size_t)s * D + e];
        const double *z = eng_forward_f64(m, &ws, theta, xb, nb);
        eng_loss_forward_f64(&xent, loss + s, z, labels + s, NULL, nb, C);
        if (margin) eng_loss_forward_f64(&mar, margin + s, z, labels + s, NULL, nb, C);
    }
    free(xb);
    eng_workspace_free(&ws);
}

/* ------------------------------------------------------------- LDS */

void tda_lds_subset(uint64_t seed, int s, int64_t n_train, double fraction, uint8_t *mask) {
    AT_CHECK(mask && s >= 0 && n_train >= 0 && n_train <= (int64_t)UINT32_MAX);
    AT_CHECK(fraction >= 0.0 && fraction <= 1.0);
    const int64_t k = llround(fraction * (double)n_train);
    memset(mask, 0, (size_t)n_train);
    if (n_train == 0) return;
    uint32_t *perm = at_malloc((size_t)n_train * sizeof *perm, "lds permutation");
    at_rng_permutation(perm, (uint32_t)n_train, seed, TDA_STREAM_LDS + (uint64_t)s);
    for (int64_t j = 0; j < k; j++) mask[perm[j]] = 1;
    free(perm);
}

static int check_train_cfg(const tda_train_cfg *c, int C, at_err *err) {
    if (c->epochs < 1)
        return at_err_set(err, AT_EUSER, "train.epochs is %d; expected >= 1", c->epochs);
    if (c->batch_size < 1)
        return at_err_set(err, AT_EUSER, "train.batch_size is %d; expected >= 1", c->batch_size);
    if (c->optimizer != ENG_OPT_SGD && c->optimizer != ENG_OPT_ADAM &&
        c->optimizer != ENG_OPT_ADAMW)
        return at_err_set(err, AT_EUSER,
                          "train.optimizer %d: LDS retraining takes sgd, adam or adamw",
                          (int)c->optimizer);
    if (!(c->lr >= 0) || !(c->momentum >= 0) || !(c->weight_decay >= 0))
        return at_err_set(err, AT_EUSER,
                          "train.lr %g, train.momentum %g, train.weight_decay %g: expected >= 0",
                          c->lr, c->momentum, c->weight_decay);
    if (c->nesterov && !(c->optimizer == ENG_OPT_SGD && c->momentum > 0))
        return at_err_set(err, AT_EUSER,
                          "train.nesterov needs optimizer sgd with train.momentum > 0");
    if (c->optimizer != ENG_OPT_SGD &&
        !(c->beta1 >= 0 && c->beta1 < 1 && c->beta2 >= 0 && c->beta2 < 1 && c->eps >= 0))
        return at_err_set(err, AT_EUSER,
                          "train.betas (%g, %g) and train.eps %g: expected betas in [0, 1), "
                          "eps >= 0",
                          c->beta1, c->beta2, c->eps);
    if (c->schedule == ENG_SCHED_STEP && c->step_size < 1)
        return at_err_set(err, AT_EUSER, "train.step_size is %d; expected >= 1", c->step_size);
    if (c->schedule != ENG_SCHED_CONSTANT && c->schedule != ENG_SCHED_STEP &&
        c->schedule != ENG_SCHED_COSINE)
        return at_err_set(err, AT_EUSER, "train.schedule %d is unknown", (int)c->schedule);
    if (c->loss.kind != ENG_LOSS_XENT && c->loss.kind != ENG_LOSS_MSE)
        return at_err_set(err, AT_EUSER, "train.loss: LDS retraining takes cross_entropy or mse");
    (void)C;
    return 0;
}

int tda_train_subset(eng_model *m, const tda_train_cfg *cfg, const float *x, const int32_t *labels,
                     int64_t N, const uint8_t *mask, uint64_t seed, at_err *err) {
    AT_CHECK(m && cfg && x && labels && mask && N >= 0);
    const int C = m->out_features, D = m->in_features;
    if (check_train_cfg(cfg, C, err)) return err->code;
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++) {
        if (!mask[i]) continue;
        if (labels[i] < 0 || labels[i] >= C)
            return at_err_set(err, AT_EUSER,
                              "label %d of train row %lld is outside [0, %d): check the data's "
                              "labels",
                              (int)labels[i], (long long)i, C);
        n++;
    }
    if (n < 1)
        return at_err_set(err, AT_EUSER,
                          "the LDS subset selects no training row: raise tda.lds_fraction");
    if (n > INT32_MAX)
        return at_err_set(err, AT_EUSER, "the LDS subset has %lld rows; at most %d", (long long)n,
                          INT32_MAX);
    float *xs = at_malloc((size_t)n * D * sizeof *xs, "subset inputs"); /* (n, D) */
    int32_t *ys = at_malloc((size_t)n * sizeof *ys, "subset labels");   /* (n) */
    for (int64_t i = 0, r = 0; i < N; i++) {
        if (!mask[i]) continue;
        memcpy(xs + (size_t)r * D, x + (size_t)i * D, (size_t)D * sizeof *xs);
        ys[r++] = labels[i];
    }
    eng_model_init_params(m, seed);
    eng_workspace ws;
    eng_workspace_init(&ws, m, cfg->batch_size, ENG_F32);
    eng_optim opt;
    eng_optim_init(&opt, m, cfg->optimizer, cfg->lr, cfg->momentum, cfg->nesterov,
                   cfg->weight_decay, cfg->beta1, cfg->beta2, cfg->eps);
    float *grads = at_malloc((m->n_params ? m->n_params : 1) * sizeof *grads, "subset grads");
    const eng_sched sched = {cfg->schedule, cfg->lr,     cfg->step_size,
                             cfg->gamma,    cfg->min_lr, cfg->epochs};
    int rc = 0;
    for (int e = 0; e < cfg->epochs; e++) {
        const double lr = eng_sched_lr(&sched, e);
        const double tl = eng_train_epoch(m, &ws, &opt, lr, &cfg->loss, grads, xs, ys, (int)n,
                                          cfg->batch_size, seed, e, NULL);
        if (!isfinite(tl)) {
            rc = at_err_set(err, AT_EUSER,
                            "LDS retraining (seed %llu) diverged in epoch %d (mean loss %g at lr "
                            "%g): lower train.lr",
                            (unsigned long long)seed, e + 1, tl, lr);
            break;
        }
    }
    free(grads);
    eng_optim_free(&opt);
    eng_workspace_free(&ws);
    free(ys);
    free(xs);
    return rc;
}

void tda_lds_predict(double *pred, const double *scores, int64_t ld, const double *masks,
                     int64_t ldm, int T, int M, int n) {
    AT_CHECK(pred && scores && masks && T >= 0 && M >= 0 && n >= 0 && ld >= n && ldm >= n);
    if (T == 0 || M == 0 || n == 0) return;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, M, n, 1.0, scores, (int)ld, masks,
                (int)ldm, 1.0, pred, M);
}

double tda_lds(const double *pred, const double *actual, int T, int M, double *per_test) {
    AT_CHECK(pred && actual && T >= 0 && M >= 0);
    double sum = 0.0;
    int64_t cnt = 0;
    for (int t = 0; t < T; t++) {
        const double r = tda_spearman(pred + (size_t)t * M, actual + (size_t)t * M, M);
        if (per_test) per_test[t] = r;
        if (isfinite(r)) {
            sum += r;
            cnt++;
        }
    }
    return cnt ? sum / (double)cnt : NAN;
}

/* ------------------------------------------------------------ statistics */

double tda_pearson(const double *a, const double *b, int64_t n) {
    AT_CHECK(a && b && n >= 0);
    if (n < 2) return NAN;
    double ma = 0.0, mb = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double saa = 0.0, sbb = 0.0, sab = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double da = a[i] - ma, db = b[i] - mb;
        saa += da * da;
        sbb += db * db;
        sab += da * db;
    }
    if (!(saa > 0.0) || !(sbb > 0.0)) return NAN;
    double r = sab / sqrt(saa * sbb);
    return r > 1.0 ? 1.0 : r < -1.0 ? -1.0 : r;
}

typedef struct {
    double v;
    int64_t i;
} keyed;

static int cmp_keyed(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* rank (n) = 1-based ranks of v, ties averaged; returns 0, or -1 on a NaN. */
static int ranks(const double *v, int64_t n, keyed *kv, double *rank) {
    for (int64_t i = 0; i < n; i++) {
        if (isnan(v[i])) return -1;
        kv[i].v = v[i];
        kv[i].i = i;
    }
    qsort(kv, (size_t)n, sizeof *kv, cmp_keyed);
    for (int64_t s = 0; s < n;) {
        int64_t e = s + 1;
        while (e < n && kv[e].v == kv[s].v) e++;
        const double r = 0.5 * (double)(s + 1 + e); /* mean of s+1 .. e */
        for (int64_t k = s; k < e; k++) rank[kv[k].i] = r;
        s = e;
    }
    return 0;
}

double tda_spearman(const double *a, const double *b, int64_t n) {
    AT_CHECK(a && b && n >= 0);
    if (n < 2) return NAN;
    keyed *kv = at_malloc((size_t)n * sizeof *kv, "spearman keys");
    double *ra = at_malloc((size_t)n * sizeof *ra, "spearman ranks");
    double *rb = at_malloc((size_t)n * sizeof *rb, "spearman ranks");
    double r = NAN;
    if (ranks(a, n, kv, ra) == 0 && ranks(b, n, kv, rb) == 0) r = tda_pearson(ra, rb, n);
    free(kv);
    free(ra);
    free(rb);
    return r;
}

static int cmp_double(const void *pa, const void *pb) {
    const double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static double quantile_sorted(const double *v, int n, double q) {
    const double pos = q * (double)(n - 1);
    const int lo = (int)floor(pos);
    const int hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}

void tda_bootstrap_ci(const double *v, int64_t n, int resamples, uint64_t seed, double level,
                      double *lo, double *hi) {
    AT_CHECK(v && lo && hi && n >= 1 && resamples >= 1 && level > 0.0 && level < 1.0);
    double *means = at_malloc((size_t)resamples * sizeof *means, "bootstrap means");
    for (int r = 0; r < resamples; r++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += v[at_rng_below((uint64_t)n, seed, TDA_STREAM_BOOT, (uint64_t)r, (uint64_t)j)];
        means[r] = s / (double)n;
    }
    qsort(means, (size_t)resamples, sizeof *means, cmp_double);
    *lo = quantile_sorted(means, resamples, 0.5 * (1.0 - level));
    *hi = quantile_sorted(means, resamples, 0.5 * (1.0 + level));
    free(means);
}
