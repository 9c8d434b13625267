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
    sc->head = eng_model_affine_head(m);
    sc->head_rows = 0;
    sc->delta = NULL;
    sc->gsum = NULL;
    sc->z0 = NULL;
    sc->wd = NULL;
    if (sc->head >= 0) { /* the head's weights in float64, once */
        const eng_layer *L = &m->layers[sc->head];
        const size_t n = (size_t)L->out_features * (size_t)m->in_features;
        const float *W = m->params + m->tensors[L->tensor0].off;
        sc->wd = at_malloc(n * sizeof(double), "IG head weights");
        for (size_t i = 0; i < n; i++) sc->wd[i] = W[i];
        sc->z0 = at_malloc((size_t)L->out_features * sizeof(float), "IG head baseline");
    }
}

void mth_scratch_free(mth_scratch *sc) {
    eng_workspace_free(&sc->ws);
    free(sc->xin);
    free(sc->dx);
    free(sc->dlogits);
    free(sc->row);
    free(sc->w);
    free(sc->delta);
    free(sc->gsum);
    free(sc->z0);
    free(sc->wd);
}

/* Grow the affine-head buffers to R unit rows. */
static void head_reserve(mth_scratch *sc, const eng_model *m, int R) {
    if (R <= sc->head_rows) return;
    const size_t H = (size_t)m->layers[sc->head].out_features;
    free(sc->delta);
    free(sc->gsum);
    sc->delta = at_malloc((size_t)R * H * sizeof(float), "IG head deltas");
    sc->gsum = at_malloc((size_t)R * H * sizeof(double), "IG head gradients");
    sc->head_rows = R;
}

/* Integrated Gradients through the affine head f (methods.h): per unit,
 * delta_r = W (x_r - b) once; per (column, row) pair the head's output is
 * z1(b) + a_c delta_r and the engine runs layers f+1.. forward and back to
 * df/dz1; their weighted sum per row, times W, is the partial. */
static void run_unit_head(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                          const float *x, const float *baseline, const int32_t *target,
                          int R, int c0, int c1, double *partial) {
    const int f = sc->head, D = m->in_features, C = m->out_features;
    const eng_layer *L = &m->layers[f];
    const int H = L->out_features;
    const eng_tensor *tw = &m->tensors[L->tensor0];
    const float *W = m->params + tw->off;                          /* (H, D) */
    const float *bias = L->n_tensors > 1 ? m->params + tw[1].off : NULL; /* (H) */
    head_reserve(sc, m, R);
    float *z0 = sc->z0; /* (H) z1(b) = W b + c */
    eng_linear_forward(z0, baseline, W, bias, 1, D, H);
    for (int r0 = 0; r0 < R; r0 += sc->cap) { /* delta = (x - b) W^T, cap rows at a time */
        int nb = R - r0 < sc->cap ? R - r0 : sc->cap;
        for (int k = 0; k < nb; k++)
            for (int d = 0; d < D; d++)
                sc->xin[(size_t)k * D + d] = x[(size_t)(r0 + k) * D + d] - baseline[d];
        eng_linear_forward(sc->delta + (size_t)r0 * H, sc->xin, W, NULL, nb, D, H);
    }
    memset(sc->gsum, 0, (size_t)R * H * sizeof(double));
    const long n_pairs = (long)R * (c1 - c0);
    float *z1 = eng_ws_act(&sc->ws, f); /* (cap, H) */
    for (long p0 = 0; p0 < n_pairs; p0 += sc->cap) {
        int nb = (int)(n_pairs - p0 < sc->cap ? n_pairs - p0 : sc->cap);
        for (int k = 0; k < nb; k++) {
            long p = p0 + k;
            int c = c0 + (int)(p / R), r = (int)(p % R);
            const float a = (float)s->alpha[c];
            const float *dr = sc->delta + (size_t)r * H;
            float *zk = z1 + (size_t)k * H;
            for (int h = 0; h < H; h++) zk[h] = z0[h] + a * dr[h];
            sc->row[k] = r;
            sc->w[k] = s->weight[c];
        }
        eng_forward_from(m, &sc->ws, m->params, sc->xin, nb, f + 1);
        memset(sc->dlogits, 0, (size_t)nb * C * sizeof(float));
        for (int k = 0; k < nb; k++) {
            int32_t t = target[sc->row[k]];
            AT_CHECK(t >= 0 && t < C);
            sc->dlogits[(size_t)k * C + t] = 1.0f;
        }
        eng_backward_to(m, &sc->ws, m->params, sc->xin, sc->dlogits, nb, f, NULL, NULL);
        const float *g1 = eng_ws_grad(&sc->ws, f); /* (nb, H) */
        for (int k = 0; k < nb; k++) {
            double *acc = sc->gsum + (size_t)sc->row[k] * H, w = sc->w[k];
            const float *g = g1 + (size_t)k * H;
            for (int h = 0; h < H; h++) acc[h] += w * (double)g[h];
        }
    }
    /* partial += gsum W, one float64 product per unit (a float32 one would
     * round each unit's partial before the fold) */
    eng_linear_backward_f64(partial, NULL, NULL, sc->gsum, NULL, sc->wd, R, D, H);
}

void mth_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                  const float *x, const float *baseline, const int32_t *target,
                  int R, int c0, int c1, double *partial) {
    AT_CHECK(c0 >= 0 && c0 <= c1 && c1 <= s->n_cols && R >= 0);
    const int D = m->in_features, C = m->out_features;
    const int interp = s->kind == MTH_INTEGRATED_GRADIENTS;
    AT_CHECK(!interp || baseline != NULL);
    if (interp && sc->head >= 0) {
        run_unit_head(s, m, sc, x, baseline, target, R, c0, c1, partial);
        return;
    }
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
