/* tda_solve.c — curvature over a parameter selection (Gauss-Newton and
 * Hessian, matrices and matrix-vector products, as float64 sums over rows)
 * and damped inverses: dense (Cholesky, eigendecomposition), conjugate
 * gradient, LiSSA; power iteration and Hutchinson's trace. See
 * tda_solve.h. */
#include "tda_solve.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSTEP 1e-30           /* complex-step size, as eng_hvp */
#define JAC_BUDGET (1u << 22) /* doubles in the Gauss-Newton Jacobian block */
#define STREAM_POWER 0x7d50u  /* tda_max_eig start vector */
#define STREAM_PROBE 0x7d51u  /* tda_trace_estimate probes */

typedef double complex cplx;

struct tda_curv {
    tda_curv_kind kind;
    eng_loss loss;
    int cap;   /* rows per complex/f64 pass */
    int jrows; /* rows per Gauss-Newton Jacobian block (<= cap) */
    int C;     /* classes */
    int first; /* first selected layer: complex forwards restart here */
    int stop;  /* backward_to stop layer (first - 1 when legal, else -1) */
    size_t n_params;
    size_t p;
    eng_param_sel sel;
    size_t *idx; /* (p) offset in params of each selected element */
    eng_curv cv; /* complex128 + float64 workspaces and buffers */
    double *q;   /* (cap, C) softmax of the float64 logits */
    double *A;   /* GN: (jrows * C, p) weighted Jacobian rows */
    size_t bytes;
};

/* ------------------------------------------------------------ creation */

int tda_curv_new(tda_curv **out, const eng_model *m, const char *const *layers, int n_layers,
                 tda_curv_kind kind, eng_loss loss, int cap, at_err *err) {
    *out = NULL;
    if (kind != TDA_CURV_GAUSS_NEWTON && kind != TDA_CURV_HESSIAN)
        return at_err_set(err, AT_EUSER, "curvature: unknown kind %d (use gauss_newton or hessian)",
                          (int)kind);
    if (loss.kind != ENG_LOSS_XENT && loss.kind != ENG_LOSS_MSE)
        return at_err_set(err, AT_EUSER,
                          "curvature: the loss must be cross-entropy or MSE (the margin is a "
                          "model output, not a training loss)");
    if (cap < 1) return at_err_set(err, AT_EUSER, "curvature: rows per pass %d must be >= 1", cap);
    eng_param_sel sel;
    if (eng_param_sel_layers(m, layers, n_layers, &sel, err))
        return at_err_prefix(err, "curvature layers: ");
    if (sel.n == 0)
        return at_err_set(err, AT_EUSER, "curvature: the model has no trainable parameters");

    tda_curv *c = at_calloc(1, sizeof *c, "curvature");
    c->kind = kind;
    c->loss = loss;
    c->cap = cap;
    c->C = m->out_features;
    c->n_params = m->n_params;
    c->sel = sel;
    c->p = sel.n;
    c->idx = at_malloc(c->p * sizeof(size_t), "curvature selection index");
    size_t k = 0;
    for (int t = 0; t < sel.n_tensors; t++) {
        const eng_tensor *T = &m->tensors[sel.tensor[t]];
        for (size_t e = 0; e < T->numel; e++) c->idx[k++] = T->off + e;
    }
    AT_CHECK(k == c->p);
    /* Complex forwards restart at the first selected layer: the layers below
     * have no tangent and keep their outputs from one tangent-free pass.
     * Backwards may stop below it when no later layer reads further down
     * (eng_backward_to's contract). */
    c->first = m->tensors[sel.tensor[0]].layer;
    c->stop = c->first - 1;
    for (int i = c->stop + 1; i < m->n_layers && c->stop >= 0; i++)
        for (int s = 0; s < m->layers[i].n_src; s++)
            if (m->layers[i].src[s] < c->stop) c->stop = -1;

    eng_curv_init(&c->cv, m, cap);
    c->q = at_malloc((size_t)cap * c->C * sizeof(double), "curvature softmax");
    c->bytes = c->cv.wz.mem.total + c->cv.wd.mem.total +
               m->n_params * (2 * sizeof(cplx) + 2 * sizeof(double)) +
               (size_t)cap * m->in_features * (sizeof(cplx) + sizeof(double)) +
               (size_t)cap * c->C * (sizeof(cplx) + 2 * sizeof(double)) + c->p * sizeof(size_t);
    if (kind == TDA_CURV_GAUSS_NEWTON) {
        size_t per = c->p * (size_t)c->C, rows = per ? JAC_BUDGET / per : 1;
        c->jrows = rows < 1 ? 1 : rows > (size_t)cap ? cap : (int)rows;
        size_t n = (size_t)c->jrows * per;
        c->A = at_malloc(n * sizeof(double), "curvature Jacobian block");
        c->bytes += n * sizeof(double);
    }
    *out = c;
    return 0;
}

size_t tda_curv_dim(const tda_curv *c) { return c->p; }

size_t tda_curv_bytes(const tda_curv *c) { return c->bytes; }

void tda_curv_free(tda_curv *c) {
    if (!c) return;
    eng_curv_free(&c->cv);
    free(c->idx);
    free(c->q);
    free(c->A);
    free(c);
}

/* --------------------------------------------------------------- helpers */

/* Promote params to float64 (pd) and complex with no tangent (pz). */
static void load_params(tda_curv *c, const eng_model *m) {
    AT_CHECK(m->n_params == c->n_params && m->out_features == c->C);
    double *pd = c->cv.pd;
    cplx *pz = c->cv.pz;
    for (size_t k = 0; k < m->n_params; k++) {
        pd[k] = m->params[k];
        pz[k] = m->params[k];
    }
}

/* Float64 forward of rows x (b, D) at pd; q (b, C) = softmax of the logits. */
static void forward_f64(tda_curv *c, const eng_model *m, const float *x, int b) {
    double *xd = c->cv.xd;
    for (size_t k = 0; k < (size_t)b * m->in_features; k++) xd[k] = x[k];
    const double *z = eng_forward_f64(m, &c->cv.wd, c->cv.pd, xd, b);
    if (c->loss.kind != ENG_LOSS_XENT) return;
    const int C = c->C;
    for (int n = 0; n < b; n++) {
        const double *zn = z + (size_t)n * C;
        double *qn = c->q + (size_t)n * C, mx = zn[0], s = 0.0;
        for (int j = 1; j < C; j++) mx = zn[j] > mx ? zn[j] : mx;
        for (int j = 0; j < C; j++) s += qn[j] = exp(zn[j] - mx);
        for (int j = 0; j < C; j++) qn[j] /= s;
    }
}

/* Complex rows xz = x, and when the selection starts above layer 0 one
 * tangent-free complex forward to fill the layers below it. */
static void load_complex_rows(tda_curv *c, const eng_model *m, const float *x, int b) {
    cplx *xz = c->cv.xz;
    for (size_t k = 0; k < (size_t)b * m->in_features; k++) xz[k] = x[k];
    if (c->first > 0) eng_forward_c128(m, &c->cv.wz, c->cv.pz, xz, b);
}

/* pz = params + i CSTEP v on the selection (v (p), or e_k when v is NULL). */
static void set_tangent(tda_curv *c, const eng_model *m, const double *v, size_t k) {
    cplx *pz = c->cv.pz;
    if (v)
        for (size_t j = 0; j < c->p; j++) pz[c->idx[j]] = m->params[c->idx[j]] + I * (CSTEP * v[j]);
    else
        pz[c->idx[k]] = m->params[c->idx[k]] + I * CSTEP;
}

static void clear_tangent(tda_curv *c, const eng_model *m, const double *v, size_t k) {
    cplx *pz = c->cv.pz;
    if (v)
        for (size_t j = 0; j < c->p; j++) pz[c->idx[j]] = m->params[c->idx[j]];
    else
        pz[c->idx[k]] = m->params[c->idx[k]];
}

/* Hessian (summed over the b loaded rows) times the current tangent:
 * hv_j += Im(grad_j) / CSTEP over the selection, hv with stride 1. */
static void hess_pass(tda_curv *c, const eng_model *m, const int32_t *labels, int b, double *hv) {
    eng_curv *cv = &c->cv;
    const cplx *lz = eng_forward_from_c128(m, &cv->wz, cv->pz, cv->xz, b, c->first);
    cplx *dz = cv->dz, *gz = cv->gz;
    memset(dz, 0, (size_t)b * c->C * sizeof(cplx));
    eng_loss_backward_c128(&c->loss, dz, lz, labels, NULL, b, c->C, 1.0);
    memset(gz, 0, c->n_params * sizeof(cplx));
    eng_backward_to_c128(m, &cv->wz, cv->pz, cv->xz, dz, b, c->stop, NULL, gz);
    for (size_t j = 0; j < c->p; j++) hv[j] += cimag(gz[c->idx[j]]) / CSTEP;
}

/* Gauss-Newton (summed over the b rows of the last forward_f64) times the
 * current tangent: J v by complex step, H_loss J v in closed form, J^T by
 * a float64 backward; gv += over the selection. */
static void gn_pass(tda_curv *c, const eng_model *m, int b, double *gv) {
    eng_curv *cv = &c->cv;
    const int C = c->C;
    const cplx *lz = eng_forward_from_c128(m, &cv->wz, cv->pz, cv->xz, b, c->first);
    double *u = cv->dd; /* (b, C) */
    for (int n = 0; n < b; n++) {
        const cplx *zn = lz + (size_t)n * C;
        double *un = u + (size_t)n * C;
        if (c->loss.kind == ENG_LOSS_MSE) {
            for (int j = 0; j < C; j++) un[j] = 2.0 / C * (cimag(zn[j]) / CSTEP);
            continue;
        }
        const double *qn = c->q + (size_t)n * C;
        double qj = 0.0;
        for (int j = 0; j < C; j++) qj += qn[j] * (cimag(zn[j]) / CSTEP);
        for (int j = 0; j < C; j++) un[j] = qn[j] * (cimag(zn[j]) / CSTEP - qj);
    }
    memset(cv->gd, 0, c->n_params * sizeof(double));
    eng_backward_to_f64(m, &cv->wd, cv->pd, cv->xd, u, b, c->stop, NULL, cv->gd);
    for (size_t j = 0; j < c->p; j++) gv[j] += cv->gd[c->idx[j]];
}

/* Copy the upper triangle of M (p, p) onto the lower. */
static void mirror_upper(double *M, size_t p) {
    for (size_t i = 0; i < p; i++)
        for (size_t j = i + 1; j < p; j++) M[j * p + i] = M[i * p + j];
}

/* ------------------------------------------------------ curvature matrix */

/* Gauss-Newton over the b rows of the last forward_f64: A's rows for class
 * j are the per-example gradients for dlogits sqrt(q_j)(e_j - q) (XENT) or
 * sqrt(2/C) e_j (MSE); M's upper triangle += A^T A. */
static void gn_matrix_block(tda_curv *c, const eng_model *m, int b, double *M) {
    eng_curv *cv = &c->cv;
    const int C = c->C;
    const size_t p = c->p;
    double *dl = cv->dd; /* (b, C) */
    for (int j = 0; j < C; j++) {
        for (int n = 0; n < b; n++) {
            double *dn = dl + (size_t)n * C;
            if (c->loss.kind == ENG_LOSS_MSE) {
                for (int i = 0; i < C; i++) dn[i] = 0.0;
                dn[j] = sqrt(2.0 / C);
                continue;
            }
            const double *qn = c->q + (size_t)n * C;
            double s = sqrt(qn[j]);
            for (int i = 0; i < C; i++) dn[i] = -s * qn[i];
            dn[j] += s;
        }
        eng_backward_to_f64(m, &cv->wd, cv->pd, cv->xd, dl, b, c->stop, NULL, NULL);
        eng_grad_per_example_f64(m, &cv->wd, cv->pd, cv->xd, b, &c->sel, c->A + (size_t)j * b * p);
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)p, b * C, 1.0, c->A, (int)p, 1.0, M,
                (int)p);
}

void tda_curv_accum_matrix(tda_curv *c, const eng_model *m, const float *x, const int32_t *labels,
                           int64_t N, double *M) {
    AT_CHECK(N >= 0 && x && M && (labels || c->kind == TDA_CURV_GAUSS_NEWTON));
    const size_t p = c->p, D = (size_t)m->in_features;
    load_params(c, m);
    if (c->kind == TDA_CURV_GAUSS_NEWTON) {
        for (int64_t s = 0; s < N; s += c->jrows) {
            int b = (int)(N - s < c->jrows ? N - s : c->jrows);
            forward_f64(c, m, x + (size_t)s * D, b);
            gn_matrix_block(c, m, b, M);
        }
        mirror_upper(M, p);
        return;
    }
    /* Hessian: row k of M += the selection's Hessian column k (symmetric). */
    for (int64_t s = 0; s < N; s += c->cap) {
        int b = (int)(N - s < c->cap ? N - s : c->cap);
        load_complex_rows(c, m, x + (size_t)s * D, b);
        for (size_t k = 0; k < p; k++) {
            set_tangent(c, m, NULL, k);
            hess_pass(c, m, labels + s, b, M + k * p);
            clear_tangent(c, m, NULL, k);
        }
    }
}

void tda_curv_accum_matvec(tda_curv *c, const eng_model *m, const float *x, const int32_t *labels,
                           int64_t N, const double *v, int nrhs, double *out) {
    AT_CHECK(N >= 0 && nrhs >= 0 && x && v && out && (labels || c->kind == TDA_CURV_GAUSS_NEWTON));
    const size_t p = c->p, D = (size_t)m->in_features;
    load_params(c, m);
    for (int64_t s = 0; s < N; s += c->cap) {
        int b = (int)(N - s < c->cap ? N - s : c->cap);
        if (c->kind == TDA_CURV_GAUSS_NEWTON) forward_f64(c, m, x + (size_t)s * D, b);
        load_complex_rows(c, m, x + (size_t)s * D, b);
        for (int r = 0; r < nrhs; r++) {
            const double *vr = v + (size_t)r * p;
            set_tangent(c, m, vr, 0);
            if (c->kind == TDA_CURV_GAUSS_NEWTON)
                gn_pass(c, m, b, out + (size_t)r * p);
            else
                hess_pass(c, m, labels + s, b, out + (size_t)r * p);
            clear_tangent(c, m, vr, 0);
        }
    }
}

/* ---------------------------------------------------- dense damped inverse */

int tda_dense_factor(tda_dense *d, double *A, int n, double damping, int relative, int eig,
                     at_err *err) {
    memset(d, 0, sizeof *d);
    AT_CHECK(n >= 1 && A);
    const size_t nn = (size_t)n * n;
    for (size_t k = 0; k < nn; k++)
        if (!isfinite(A[k]))
            return at_err_set(err, AT_EUSER,
                              "curvature matrix has a non-finite entry at (%zu, %zu): the "
                              "model or data overflow; check the checkpoint",
                              k / n, k % n);
    if (!(damping >= 0.0) || !isfinite(damping))
        return at_err_set(err, AT_EUSER, "damping %g must be finite and >= 0: set `damping`",
                          damping);
    double tr = 0.0;
    for (int i = 0; i < n; i++) tr += A[(size_t)i * n + i];
    double mean = tr / n, lambda = relative ? damping * mean : damping;
    if (relative && !(mean > 0.0))
        return at_err_set(err, AT_EUSER,
                          "relative damping needs a positive mean eigenvalue, but trace/n = "
                          "%g: use absolute damping (`damping_relative: false`)",
                          mean);
    d->n = n;
    d->lambda = lambda;
    d->mean_eig = mean;
    d->eig = eig ? 1 : 0;
    d->fac = A;
    if (!eig) {
        d->min_eig = d->max_eig = NAN;
        for (int i = 0; i < n; i++) A[(size_t)i * n + i] += lambda;
        lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, A, n);
        AT_CHECK(info >= 0);
        if (info > 0) {
            memset(d, 0, sizeof *d);
            return at_err_set(err, AT_EUSER,
                              "the curvature matrix plus damping (lambda = %g) is not positive "
                              "definite (Cholesky fails at pivot %d of %d): raise `damping`",
                              lambda, (int)info, n);
        }
        return 0;
    }
    d->evals = at_malloc((size_t)n * sizeof(double), "curvature eigenvalues");
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', n, A, n, d->evals);
    AT_CHECK(info >= 0);
    if (info > 0) {
        free(d->evals);
        memset(d, 0, sizeof *d);
        return at_err_set(err, AT_EUSER,
                          "the eigendecomposition of the %d x %d curvature matrix did not "
                          "converge: use `inverse: cg`",
                          n, n);
    }
    d->min_eig = d->evals[0];
    d->max_eig = d->evals[n - 1];
    if (!(d->min_eig + lambda > 0.0)) {
        double lo = d->min_eig, hi = d->max_eig;
        free(d->evals);
        memset(d, 0, sizeof *d);
        return at_err_set(err, AT_EUSER,
                          "the curvature matrix plus damping is not positive definite: its "
                          "smallest eigenvalue is %g (largest %g) and lambda = %g: raise "
                          "`damping` above %g",
                          lo, hi, lambda, -lo);
    }
    return 0;
}

void tda_dense_solve(const tda_dense *d, double *B, int nrhs) {
    AT_CHECK(d->fac && nrhs >= 0);
    if (nrhs == 0) return;
    const int n = d->n;
    if (!d->eig) {
        /* B row-major (nrhs, n) is column-major (n, nrhs) with ldb = n */
        lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', n, nrhs, d->fac, n, B, n);
        AT_CHECK(info == 0);
        return;
    }
    /* V's rows (row-major view) are the eigenvectors: B <- ((B V^T) / (w + l)) V */
    double *T = at_malloc((size_t)nrhs * n * sizeof(double), "eigen solve scratch");
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nrhs, n, n, 1.0, B, n, d->fac, n, 0.0, T,
                n);
    for (int r = 0; r < nrhs; r++)
        for (int i = 0; i < n; i++) T[(size_t)r * n + i] /= d->evals[i] + d->lambda;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nrhs, n, n, 1.0, T, n, d->fac, n, 0.0, B,
                n);
    free(T);
}

void tda_dense_free(tda_dense *d) {
    free(d->evals);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------ iterative inverses */

static double dot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* r = b - (C + lambda I) x, using Ax as scratch; returns |r|. */
static double true_residual(tda_matvec_fn mv, void *ctx, int64_t step, int n, double lambda,
                            const double *b, const double *x, double *Ax, double *r) {
    mv(ctx, step, x, Ax);
    for (int i = 0; i < n; i++) r[i] = b[i] - Ax[i] - lambda * x[i];
    return sqrt(dot(r, r, n));
}

void tda_cg(tda_matvec_fn mv, void *ctx, int n, double lambda, const double *b, double *x,
            double tol, int max_iter, tda_cg_info *info) {
    AT_CHECK(n >= 1 && b && x && info);
    memset(info, 0, sizeof *info);
    memset(x, 0, (size_t)n * sizeof(double));
    const double bn = sqrt(dot(b, b, n));
    if (bn == 0.0) {
        info->converged = 1;
        return;
    }
    double *r = at_malloc((size_t)n * sizeof(double), "cg residual");
    double *d = at_malloc((size_t)n * sizeof(double), "cg direction");
    double *Ad = at_malloc((size_t)n * sizeof(double), "cg product");
    memcpy(r, b, (size_t)n * sizeof(double));
    memcpy(d, b, (size_t)n * sizeof(double));
    double rr = dot(r, r, n), rel = 1.0;
    int64_t step = 0;
    int checked = 1; /* rel is the true residual of x */
    while (info->iters < max_iter) {
        mv(ctx, step++, d, Ad);
        for (int i = 0; i < n; i++) Ad[i] += lambda * d[i];
        double dAd = dot(d, Ad, n);
        if (!(dAd > 0.0)) break; /* not positive definite along d */
        double alpha = rr / dAd;
        for (int i = 0; i < n; i++) {
            x[i] += alpha * d[i];
            r[i] -= alpha * Ad[i];
        }
        info->iters++;
        double rr_new = dot(r, r, n);
        checked = 0;
        if (sqrt(rr_new) <= tol * bn) {
            /* confirm on the true residual; restart from it otherwise */
            rel = true_residual(mv, ctx, step++, n, lambda, b, x, Ad, r) / bn;
            checked = 1;
            if (rel <= tol) break;
            rr = dot(r, r, n);
            memcpy(d, r, (size_t)n * sizeof(double));
            continue;
        }
        double beta = rr_new / rr;
        for (int i = 0; i < n; i++) d[i] = r[i] + beta * d[i];
        rr = rr_new;
    }
    if (!checked) rel = true_residual(mv, ctx, step, n, lambda, b, x, Ad, r) / bn;
    info->rel_residual = rel;
    info->converged = rel <= tol;
    free(r);
    free(d);
    free(Ad);
}

/* The dominant eigenvalue of T = I - (C + lambda I)/scale by ESTIMATE_STEPS
 * power steps from d (|d| = dn, overwritten), with the matvecs at steps
 * step0, step0 + 1, ... (the draws that follow the failing step). v and Tv
 * are scratch (n). Returns the last Rayleigh quotient, or NAN. */
#define ESTIMATE_STEPS 20
static double dominant_tau(tda_matvec_fn mv, void *ctx, int n, double lambda, double scale,
                           double *d, double dn, int64_t step0, double *v, double *Tv,
                           tda_lissa_info *info) {
    double tau = NAN;
    for (int i = 0; i < n; i++) v[i] = d[i] / dn;
    for (int e = 0; e < ESTIMATE_STEPS; e++) {
        mv(ctx, step0 + e, v, Tv);
        info->steps++;
        for (int i = 0; i < n; i++) Tv[i] = v[i] - (Tv[i] + lambda * v[i]) / scale;
        tau = dot(v, Tv, n);
        double tn = sqrt(dot(Tv, Tv, n));
        if (!(tn > 0.0) || !isfinite(tn)) break;
        for (int i = 0; i < n; i++) v[i] = Tv[i] / tn;
    }
    return tau;
}

int tda_lissa(tda_matvec_fn mv, void *ctx, int n, double lambda, const double *b, double *x,
              int depth, double scale, int repeats, tda_lissa_info *info, at_err *err) {
    AT_CHECK(n >= 1 && b && x && info);
    memset(info, 0, sizeof *info);
    memset(x, 0, (size_t)n * sizeof(double));
    if (depth < 1)
        return at_err_set(err, AT_EUSER, "lissa_depth %d must be >= 1: set `lissa_depth`", depth);
    if (repeats < 1)
        return at_err_set(err, AT_EUSER, "lissa_repeats %d must be >= 1: set `lissa_repeats`",
                          repeats);
    if (!(scale > 0.0) || !isfinite(scale))
        return at_err_set(err, AT_EUSER, "lissa_scale %g must be > 0: set `lissa_scale`", scale);
    if (!(lambda >= 0.0) || !isfinite(lambda))
        return at_err_set(err, AT_EUSER, "damping %g must be finite and >= 0: set `damping`",
                          lambda);
    const double bn = sqrt(dot(b, b, n));
    if (bn == 0.0) return 0;
    double *h = at_malloc((size_t)n * sizeof(double), "lissa estimate");
    double *Ch = at_malloc((size_t)n * sizeof(double), "lissa product");
    double *dprev = at_malloc((size_t)n * sizeof(double), "lissa step");
    const double keep = 1.0 - lambda / scale;
    int rc = 0;
    for (int r = 0; r < repeats && !rc; r++) {
        memcpy(h, b, (size_t)n * sizeof(double));
        memcpy(dprev, b, (size_t)n * sizeof(double)); /* d_0 = h_0 */
        for (int j = 1; j <= depth; j++) {
            mv(ctx, (int64_t)r * depth + (j - 1), h, Ch);
            info->steps++;
            /* h_j = b + keep h_{j-1} - C h_{j-1} / scale; Ch <- d_j = h_j - h_{j-1} */
            double hh = 0.0, dd = 0.0, dp = 0.0, pp = 0.0;
            for (int i = 0; i < n; i++) {
                double hn = b[i] + keep * h[i] - Ch[i] / scale;
                double di = hn - h[i];
                hh += hn * hn;
                dd += di * di;
                dp += di * dprev[i];
                pp += dprev[i] * dprev[i];
                h[i] = hn;
                dprev[i] = di;
            }
            double hnorm = sqrt(hh);
            if (hnorm / bn > info->growth || !isfinite(hnorm)) info->growth = hnorm / bn;
            if (isfinite(hnorm) && hnorm <= (j + 1) * bn * (1.0 + 1e-6)) continue;
            /* diverging: d_j = T d_{j-1} with T = I - (C + lambda I) / scale is
             * dominated by T's eigenvalue tau of largest magnitude (> 1);
             * refine it by power steps from d_j; then the offending
             * eigenvalue of C + lambda I is scale (1 - tau): above 2 scale
             * (tau < -1) or negative (tau > 1) */
            info->diverged = 1;
            double tau = pp > 0.0 && isfinite(dp) ? dp / pp : NAN;
            if (isfinite(dd) && dd > 0.0)
                tau = dominant_tau(mv, ctx, n, lambda, scale, dprev, sqrt(dd),
                                   (int64_t)r * depth + j, h, Ch, info);
            double mu = scale * (1.0 - tau);
            if (isfinite(tau) && tau > 1.0)
                rc = at_err_set(err, AT_EUSER,
                                "LiSSA diverged at repeat %d, step %d of %d (|h| = %.3g |b|): "
                                "the curvature plus damping has a negative eigenvalue (about "
                                "%.3g): raise `damping` (lambda = %g) by at least %.3g",
                                r, j, depth, hnorm / bn, mu, lambda, -mu);
            else
                rc = at_err_set(err, AT_EUSER,
                                "LiSSA diverged at repeat %d, step %d of %d (|h| = %.3g |b|): "
                                "raise `lissa_scale` (now %g) above the largest eigenvalue of "
                                "the curvature plus damping (about %.3g, by a short power "
                                "iteration along the divergent direction)",
                                r, j, depth, hnorm / bn, scale, mu);
            break;
        }
        if (!rc)
            for (int i = 0; i < n; i++) x[i] += h[i] / scale;
    }
    if (rc)
        memset(x, 0, (size_t)n * sizeof(double));
    else
        for (int i = 0; i < n; i++) x[i] /= repeats;
    free(h);
    free(Ch);
    free(dprev);
    return rc;
}

double tda_max_eig(tda_matvec_fn mv, void *ctx, int n, int iters, uint64_t seed) {
    AT_CHECK(n >= 1 && iters >= 1);
    double *v = at_malloc((size_t)n * sizeof(double), "power iteration");
    double *w = at_malloc((size_t)n * sizeof(double), "power iteration");
    for (int i = 0; i < n; i++) v[i] = at_rng_normal(seed, STREAM_POWER, (uint64_t)i, 0);
    double vn = sqrt(dot(v, v, n)), est = 0.0;
    for (int i = 0; i < n; i++) v[i] /= vn;
    for (int it = 0; it < iters; it++) {
        mv(ctx, it, v, w);
        est = dot(v, w, n);
        double wn = sqrt(dot(w, w, n));
        if (!(wn > 0.0)) break;
        for (int i = 0; i < n; i++) v[i] = w[i] / wn;
    }
    free(v);
    free(w);
    return est;
}

double tda_trace_estimate(tda_matvec_fn mv, void *ctx, int n, int probes, uint64_t seed) {
    AT_CHECK(n >= 1 && probes >= 1);
    double *z = at_malloc((size_t)n * sizeof(double), "trace probe");
    double *w = at_malloc((size_t)n * sizeof(double), "trace probe");
    double s = 0.0;
    for (int k = 0; k < probes; k++) {
        for (int i = 0; i < n; i++)
            z[i] =
                at_rng_uniform_f64(seed, STREAM_PROBE, (uint64_t)k, (uint64_t)i) < 0.5 ? -1.0 : 1.0;
        mv(ctx, k, z, w);
        s += dot(z, w, n);
    }
    free(z);
    free(w);
    return s / probes;
}
