/* curv.c — Hessian- and Gauss-Newton-vector products (engine.h,
 * "Curvature").
 *
 * Complex step: for a real-analytic f, f(p + i h v) = f(p) + i h f'(p) v
 * + O(h^2), and the imaginary part involves no subtraction, so h can be
 * tiny (1e-30) and Im(f(p + i h v)) / h is f'(p) v to float64 rounding.
 * Applied to the gradient computed by the complex128 instantiation of the
 * same kernels, this gives H v. Every kernel is written to be the analytic
 * extension of its real version (eng_real.h's rules; the op tests check
 * each one against float64 derivatives). */
#include "engine.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSTEP 1e-30

typedef double complex cplx;

void eng_curv_init(eng_curv *cv, const eng_model *m, int cap) {
    memset(cv, 0, sizeof *cv);
    cv->cap = cap;
    eng_workspace_init(&cv->wz, m, cap, ENG_C128);
    eng_workspace_init(&cv->wd, m, cap, ENG_F64);
    size_t P = m->n_params ? m->n_params : 1, D = (size_t)cap * m->in_features,
           C = (size_t)cap * m->out_features;
    cv->pz = at_malloc(P * sizeof(cplx), "curvature params");
    cv->gz = at_malloc(P * sizeof(cplx), "curvature gradient");
    cv->xz = at_malloc(D * sizeof(cplx), "curvature inputs");
    cv->dz = at_malloc(C * sizeof(cplx), "curvature dlogits");
    cv->pd = at_malloc(P * sizeof(double), "curvature params");
    cv->gd = at_malloc(P * sizeof(double), "curvature gradient");
    cv->xd = at_malloc(D * sizeof(double), "curvature inputs");
    cv->dd = at_malloc(C * sizeof(double), "curvature dlogits");
}

void eng_curv_free(eng_curv *cv) {
    eng_workspace_free(&cv->wz);
    eng_workspace_free(&cv->wd);
    free(cv->pz); free(cv->gz); free(cv->xz); free(cv->dz);
    free(cv->pd); free(cv->gd); free(cv->xd); free(cv->dd);
    memset(cv, 0, sizeof *cv);
}

/* pz = params + i h v on trainable tensors (buffers get no tangent); xz = x. */
static void load_complex(const eng_model *m, eng_curv *cv, const float *x, int N,
                         const double *v) {
    cplx *pz = cv->pz, *xz = cv->xz;
    for (size_t k = 0; k < m->n_params; k++) pz[k] = m->params[k];
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (!T->trainable) continue;
        for (size_t k = T->off; k < T->off + T->numel; k++) pz[k] += I * (CSTEP * v[k]);
    }
    for (size_t k = 0; k < (size_t)N * m->in_features; k++) xz[k] = x[k];
}

void eng_hvp(const eng_model *m, eng_curv *cv, const eng_loss *loss, const float *x,
             const int32_t *labels, int N, const double *v, double *hv) {
    AT_CHECK(N >= 1 && N <= cv->cap);
    const int C = m->out_features;
    load_complex(m, cv, x, N, v);
    const cplx *logits = eng_forward_c128(m, &cv->wz, cv->pz, cv->xz, N);
    cplx *dz = cv->dz, *gz = cv->gz;
    memset(dz, 0, (size_t)N * C * sizeof(cplx));
    eng_loss_backward_c128(loss, dz, logits, labels, NULL, N, C, 1.0 / N);
    memset(gz, 0, m->n_params * sizeof(cplx));
    eng_backward_c128(m, &cv->wz, cv->pz, cv->xz, dz, N, NULL, gz);
    for (size_t k = 0; k < m->n_params; k++) hv[k] = cimag(gz[k]) / CSTEP;
    for (int t = 0; t < m->n_tensors; t++) /* buffers: no curvature */
        if (!m->tensors[t].trainable)
            memset(hv + m->tensors[t].off, 0, m->tensors[t].numel * sizeof(double));
}

void eng_gnvp(const eng_model *m, eng_curv *cv, const eng_loss *loss, const float *x,
              const int32_t *labels, int N, const double *v, double *gv) {
    AT_CHECK(N >= 1 && N <= cv->cap);
    AT_CHECK(loss->kind == ENG_LOSS_XENT || loss->kind == ENG_LOSS_MSE);
    const int C = m->out_features;
    /* J v by complex step through the forward */
    load_complex(m, cv, x, N, v);
    const cplx *lz = eng_forward_c128(m, &cv->wz, cv->pz, cv->xz, N);
    /* u = H_loss (J v) / N, per example, at the real logits */
    double *u = cv->dd;
    for (int n = 0; n < N; n++) {
        const cplx *z = lz + (size_t)n * C;
        double *un = u + (size_t)n * C;
        if (loss->kind == ENG_LOSS_MSE) {
            for (int c = 0; c < C; c++) un[c] = 2.0 / C * (cimag(z[c]) / CSTEP) / N;
            continue;
        }
        /* cross-entropy (any label smoothing): H = diag(p) - p p^T */
        double mx = creal(z[0]), s = 0.0, pj = 0.0;
        for (int c = 1; c < C; c++) mx = creal(z[c]) > mx ? creal(z[c]) : mx;
        for (int c = 0; c < C; c++) s += exp(creal(z[c]) - mx);
        for (int c = 0; c < C; c++) {
            un[c] = exp(creal(z[c]) - mx) / s; /* p_c */
            pj += un[c] * (cimag(z[c]) / CSTEP);
        }
        for (int c = 0; c < C; c++) un[c] = un[c] * ((cimag(z[c]) / CSTEP) - pj) / N;
    }
    /* J^T u by a float64 backward at the real parameters */
    for (size_t k = 0; k < m->n_params; k++) cv->pd[k] = m->params[k];
    for (size_t k = 0; k < (size_t)N * m->in_features; k++) cv->xd[k] = x[k];
    eng_forward_f64(m, &cv->wd, cv->pd, cv->xd, N);
    memset(gv, 0, m->n_params * sizeof(double));
    eng_backward_f64(m, &cv->wd, cv->pd, cv->xd, u, N, NULL, gv);
    for (int t = 0; t < m->n_tensors; t++)
        if (!m->tensors[t].trainable)
            memset(gv + m->tensors[t].off, 0, m->tensors[t].numel * sizeof(double));
    (void)labels;
}
