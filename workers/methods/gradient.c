/* gradient.c — the gradient family: saliency, input x gradient, Integrated
 * Gradients. See methods.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods.h"

/* n-point Gauss-Legendre on [-1, 1] by Newton iteration on P_n (Golub-Welsch
 * would need LAPACK; Newton from Chebyshev guesses converges in a few steps
 * to float64 precision for any n we accept). */
static void gauss_legendre(int n, double *x, double *w) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(pi * (i + 0.75) / (n + 0.5)), pp = 0.0;
        for (int it = 0; it < 100; it++) {
            double p1 = 1.0, p2 = 0.0;
            for (int j = 1; j <= n; j++) {
                double p3 = p2;
                p2 = p1;
                p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
            }
            pp = n * (z * p1 - p2) / (z * z - 1.0);
            double z1 = z;
            z = z1 - p1 / pp;
            if (fabs(z - z1) < 1e-15) break;
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = w[n - 1 - i] = 2.0 / ((1.0 - z * z) * pp * pp);
    }
}

int mth_quadrature_rule(mth_quadrature q, int n, double *alpha, double *weight,
                        at_err *err) {
    if (n < 1) return at_err_set(err, AT_EUSER, "n_steps is %d; expected >= 1", n);
    switch (q) {
    case MTH_QUAD_RIEMANN_LEFT:
    case MTH_QUAD_RIEMANN_RIGHT:
    case MTH_QUAD_RIEMANN_MIDDLE: {
        double shift = q == MTH_QUAD_RIEMANN_LEFT ? 0.0 : q == MTH_QUAD_RIEMANN_RIGHT ? 1.0 : 0.5;
        for (int k = 0; k < n; k++) {
            alpha[k] = (k + shift) / n;
            weight[k] = 1.0 / n;
        }
        return 0;
    }
    case MTH_QUAD_RIEMANN_TRAPEZOID:
        if (n < 2)
            return at_err_set(err, AT_EUSER,
                              "riemann_trapezoid needs n_steps >= 2 (got %d)", n);
        for (int k = 0; k < n; k++) {
            alpha[k] = (double)k / (n - 1);
            weight[k] = (k == 0 || k == n - 1 ? 0.5 : 1.0) / (n - 1);
        }
        return 0;
    case MTH_QUAD_GAUSS_LEGENDRE:
        gauss_legendre(n, alpha, weight);
        for (int k = 0; k < n; k++) {
            alpha[k] = 0.5 * (alpha[k] + 1.0);
            weight[k] *= 0.5;
        }
        return 0;
    }
    return at_err_set(err, AT_EINTERNAL, "unknown quadrature %d", (int)q);
}

int mth_plan(mth_spec *s, at_err *err) {
    s->alpha = s->weight = NULL;
    switch (s->kind) {
    case MTH_SALIENCY:
    case MTH_INPUT_X_GRADIENT:
        s->n_cols = 1;
        s->alpha = at_malloc(sizeof(double), "method nodes");
        s->weight = at_malloc(sizeof(double), "method weights");
        s->alpha[0] = 1.0;
        s->weight[0] = 1.0;
        return 0;
    case MTH_INTEGRATED_GRADIENTS:
        s->n_cols = s->n_steps;
        s->alpha = at_malloc((size_t)(s->n_steps > 0 ? s->n_steps : 1) * sizeof(double), "IG nodes");
        s->weight = at_malloc((size_t)(s->n_steps > 0 ? s->n_steps : 1) * sizeof(double), "IG weights");
        return mth_quadrature_rule(s->quadrature, s->n_steps, s->alpha, s->weight, err);
    }
    return at_err_set(err, AT_EINTERNAL, "unknown method kind %d", (int)s->kind);
}

void mth_spec_free(mth_spec *s) {
    free(s->alpha);
    free(s->weight);
    s->alpha = s->weight = NULL;
}

int mth_has_delta(const mth_spec *s) { return s->kind == MTH_INTEGRATED_GRADIENTS; }
int mth_uses_baseline(const mth_spec *s) { return s->kind == MTH_INTEGRATED_GRADIENTS; }

void mth_scratch_init(mth_scratch *sc, const eng_model *m, int cap) {
    AT_CHECK(cap >= 1);
    sc->cap = cap;
    eng_workspace_init(&sc->ws, m, cap, ENG_F32);
    size_t D = (size_t)m->in_features, C = (size_t)m->out_features;
    sc->xin = at_malloc((size_t)cap * D * sizeof(float), "unit inputs");
    sc->dx = at_malloc((size_t)cap * D * sizeof(float), "unit input gradients");
    sc->dlogits = at_malloc((size_t)cap * C * sizeof(float), "unit output seeds");
    sc->row = at_malloc((size_t)cap * sizeof(int32_t), "unit row map");
    sc->w = at_malloc((size_t)cap * sizeof(double), "unit weights");
}

void mth_scratch_free(mth_scratch *sc) {
    eng_workspace_free(&sc->ws);
    free(sc->xin);
    free(sc->dx);
    free(sc->dlogits);
    free(sc->row);
    free(sc->w);
}

void mth_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const float *x, const float *baseline, const int32_t *target,
                  int R, int c0, int c1, double *partial) {
    AT_CHECK(c0 >= 0 && c0 <= c1 && c1 <= s->n_cols && R >= 0);
    const int D = m->in_features, C = m->out_features;
    const int interp = s->kind == MTH_INTEGRATED_GRADIENTS;
    AT_CHECK(!interp || baseline != NULL);
    /* Pairs (c, r) in column-major order, cap engine rows at a time. */
    const long n_pairs = (long)R * (c1 - c0);
    for (long p0 = 0; p0 < n_pairs; p0 += sc->cap) {
        int nb = (int)(n_pairs - p0 < sc->cap ? n_pairs - p0 : sc->cap);
        for (int k = 0; k < nb; k++) {
            long p = p0 + k;
            int c = c0 + (int)(p / R), r = (int)(p % R);
            const float *xr = x + (size_t)r * D;
            float *xi = sc->xin + (size_t)k * D;
            if (interp) {
                float a = (float)s->alpha[c];
                for (int d = 0; d < D; d++) xi[d] = baseline[d] + a * (xr[d] - baseline[d]);
            } else {
                memcpy(xi, xr, (size_t)D * sizeof(float));
            }
            sc->row[k] = r;
            sc->w[k] = s->weight[c];
        }
        eng_model_forward(m, &sc->ws, sc->xin, nb);
        memset(sc->dlogits, 0, (size_t)nb * C * sizeof(float));
        for (int k = 0; k < nb; k++) {
            int32_t t = target[sc->row[k]];
            AT_CHECK(t >= 0 && t < C);
            sc->dlogits[(size_t)k * C + t] = 1.0f;
        }
        eng_model_backward(m, &sc->ws, sc->xin, sc->dlogits, nb, sc->dx, NULL);
        for (int k = 0; k < nb; k++) {
            double *acc = partial + (size_t)sc->row[k] * D;
            const float *g = sc->dx + (size_t)k * D;
            double w = sc->w[k];
            for (int d = 0; d < D; d++) acc[d] += w * (double)g[d];
        }
    }
}

void mth_fold(double *acc, const double *partial, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += partial[i];
}

void mth_finalize(const mth_spec *s, const double *acc, const float *x,
                  const float *baseline, int R, int D, float *scores) {
    size_t n = (size_t)R * (size_t)D;
    switch (s->kind) {
    case MTH_SALIENCY:
        for (size_t i = 0; i < n; i++)
            scores[i] = (float)(s->abs_value ? fabs(acc[i]) : acc[i]);
        break;
    case MTH_INPUT_X_GRADIENT:
        for (size_t i = 0; i < n; i++) scores[i] = (float)((double)x[i] * acc[i]);
        break;
    case MTH_INTEGRATED_GRADIENTS:
        for (size_t i = 0; i < n; i++) {
            size_t d = i % (size_t)D;
            scores[i] = (float)(((double)x[i] - (double)baseline[d]) * acc[i]);
        }
        break;
    }
}

void mth_target_logits(const float *logits, const int32_t *target, int R, int C,
                       double *out) {
    for (int r = 0; r < R; r++) out[r] = (double)logits[(size_t)r * C + target[r]];
}
