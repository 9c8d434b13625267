/* gradient.c — the gradient family: saliency, input x gradient, Integrated
 * Gradients (with the affine-head reuse below), Expected Gradients and
 * GradientSHAP. See methods.h.
 *
 * Expected Gradients (Erion et al. 2021) and GradientSHAP (Lundberg & Lee
 * 2017, as Captum's GradientShap): column j of row r (selection index
 * i_r = rows->row0 + r) draws, with st = s->stream * 64,
 *   reference  k = at_rng_below(n_refs, seed, st + GRAD_RNG_REF, i_r, j)
 *   alpha      a = at_rng_uniform_f64(seed, st + GRAD_RNG_ALPHA, i_r, j)
 *   input      x~_d = (float)(x_d + stdev * at_rng_normal(seed,
 *                     st + GRAD_RNG_INPUT, i_r, (j << 32) | d))
 *              (GradientSHAP; Expected Gradients has x~ = x)
 * and adds (x~ - ref_k) * df/dx(p) to the partial (in float64), at the
 * point p_d = (float)(ref_kd + a (x~_d - ref_kd)) (float64 arithmetic,
 * rounded once). Scores are the partial over n_samples. Expected Gradients
 * reuses an affine head too (run_unit_expected): 1.7x on an MLP.
 *
 * Integrated Gradients reuses a model's affine head (a first linear layer
 * z1 = W x + c on the flat input, eng_model_affine_head): along the path,
 * z1(a) = z1(b) + a W (x - b), so each step starts at layer 2 from that
 * affine combination, and sum_k w_k df/dx = W^T sum_k w_k df/dz1 is one
 * product per unit instead of one per step. Exact up to float rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

/* RNG purposes of the family: stream = s->stream * 64 + purpose. */
enum { GRAD_RNG_REF = 1, GRAD_RNG_ALPHA = 2, GRAD_RNG_INPUT = 3 };

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

int grad_plan(mth_spec *s, const eng_model *m, at_err *err) {
    switch (s->kind) {
    case MTH_SALIENCY:
    case MTH_INPUT_X_GRADIENT:
        s->n_cols = 1;
        s->width = s->D;
        s->alpha = at_malloc(sizeof(double), "method nodes");
        s->weight = at_malloc(sizeof(double), "method weights");
        s->alpha[0] = 1.0;
        s->weight[0] = 1.0;
        return 0;
    case MTH_INTEGRATED_GRADIENTS:
        s->n_cols = s->n_steps;
        s->width = s->D;
        s->alpha = at_malloc((size_t)(s->n_steps > 0 ? s->n_steps : 1) * sizeof(double), "IG nodes");
        s->weight = at_malloc((size_t)(s->n_steps > 0 ? s->n_steps : 1) * sizeof(double), "IG weights");
        return mth_quadrature_rule(s->quadrature, s->n_steps, s->alpha, s->weight, err);
    case MTH_EXPECTED_GRADIENTS:
    case MTH_GRADIENT_SHAP:
        if (m->token_input)
            return at_err_set(err, AT_EUSER, "the model's input is token ids (layer 0 is an "
                                             "embedding): points between inputs and references "
                                             "are not inputs");
        if (s->n_samples < 1)
            return at_err_set(err, AT_EUSER, "n_samples is %d; expected >= 1", s->n_samples);
        if (s->kind == MTH_GRADIENT_SHAP && !(s->stdev >= 0.0 && isfinite(s->stdev)))
            return at_err_set(err, AT_EUSER, "stdev is %g; expected a finite value >= 0",
                              s->stdev);
        s->n_cols = s->n_samples;
        s->width = s->D;
        return 0;
    default:
        break;
    }
    return at_err_set(err, AT_EINTERNAL, "gradient family: unknown kind %d", (int)s->kind);
}

void grad_free(mth_spec *s) { (void)s; }

double grad_col_cost(const mth_spec *s) {
    (void)s;
    return 1.0;
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
                          const mth_rows *rows, int c0, int c1, double *partial) {
    const float *x = rows->x, *baseline = rows->baseline;
    const int32_t *target = rows->target;
    const int R = rows->R;
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

/* Expected Gradients and GradientSHAP (the draws are in the header
 * comment): (column, row) pairs in column-major order, cap engine rows at a
 * time; each engine row keeps its reference index (buffer slot 0) and, for
 * GradientSHAP, its noisy input x~ (slot 1), for the product after the
 * backward.
 *
 * Expected Gradients through an affine head z1 = W x + c (as IG above):
 * z1(ref + a (x - ref)) = z1(ref) + a (z1(x) - z1(ref)), with z1(x) once
 * per unit row (sc->delta) and z1(ref) once per reference the unit draws
 * (slot 1), so the engine runs layers f+1.. only and df/dx = df/dz1 W.
 * (GradientSHAP's x~ is fresh per pair: no reuse.) */
static void run_unit_expected(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                              const mth_rows *rows, int c0, int c1, double *partial) {
    const float *x = rows->x, *refs = rows->refs;
    const int R = rows->R, D = m->in_features, C = m->out_features, cap = sc->cap;
    const int shap = s->kind == MTH_GRADIENT_SHAP, head = !shap && sc->head >= 0;
    const uint64_t seed = s->seed, st = s->stream * 64;
    AT_CHECK(refs != NULL && rows->n_refs > 0);
    int32_t *ref = mth_buf(sc, 0, 2 * (size_t)cap * sizeof(int32_t)); /* (cap) */
    int32_t *miss = ref + cap; /* (cap) references first drawn in a batch */
    float *xt = shap ? mth_buf(sc, 1, (size_t)cap * D * sizeof(float)) : NULL; /* (cap, D) */
    /* the affine head: W (H, D), bias (H), z1(x) (R, H), z1(ref) (n_refs, H) */
    const int f = sc->head, H = head ? m->layers[f].out_features : 0;
    const float *W = NULL, *bias = NULL;
    float *zx = NULL, *zref = NULL;
    unsigned char *have = NULL;
    if (head) {
        const eng_layer *L = &m->layers[f];
        const eng_tensor *tw = &m->tensors[L->tensor0];
        W = m->params + tw->off;
        bias = L->n_tensors > 1 ? m->params + tw[1].off : NULL;
        head_reserve(sc, m, R);
        zx = sc->delta;
        eng_linear_forward(zx, x, W, bias, R, D, H);
        const size_t nz = (size_t)rows->n_refs * H;
        zref = mth_buf(sc, 1, nz * sizeof(float) + (size_t)rows->n_refs);
        have = (unsigned char *)(zref + nz);
        memset(have, 0, (size_t)rows->n_refs);
    }
    const long n_pairs = (long)R * (c1 - c0);
    for (long p0 = 0; p0 < n_pairs; p0 += cap) {
        int nb = (int)(n_pairs - p0 < cap ? n_pairs - p0 : cap);
        for (int k = 0; k < nb; k++) {
            long p = p0 + k;
            int c = c0 + (int)(p / R), r = (int)(p % R);
            uint64_t i = (uint64_t)(rows->row0 + r);
            ref[k] = (int32_t)at_rng_below((uint64_t)rows->n_refs, seed, st + GRAD_RNG_REF, i,
                                           (uint64_t)c);
            double a = at_rng_uniform_f64(seed, st + GRAD_RNG_ALPHA, i, (uint64_t)c);
            sc->row[k] = r;
            sc->w[k] = a;
            if (head) continue;
            const float *src = x + (size_t)r * D, *rf = refs + (size_t)ref[k] * D;
            if (shap) {
                float *xk = xt + (size_t)k * D;
                for (int d = 0; d < D; d++)
                    xk[d] = (float)((double)src[d] +
                                    s->stdev * at_rng_normal(seed, st + GRAD_RNG_INPUT, i,
                                                             ((uint64_t)c << 32) | (uint64_t)d));
                src = xk;
            }
            float *xi = sc->xin + (size_t)k * D;
            for (int d = 0; d < D; d++)
                xi[d] = (float)((double)rf[d] + a * ((double)src[d] - (double)rf[d]));
        }
        if (head) {
            float *z1 = eng_ws_act(&sc->ws, f); /* (cap, H) */
            int nm = 0;
            for (int k = 0; k < nb; k++)
                if (!have[ref[k]]) {
                    have[ref[k]] = 1;
                    memcpy(sc->xin + (size_t)nm * D, refs + (size_t)ref[k] * D,
                           (size_t)D * sizeof(float));
                    miss[nm++] = ref[k];
                }
            if (nm > 0) {
                eng_linear_forward(z1, sc->xin, W, bias, nm, D, H);
                for (int j = 0; j < nm; j++)
                    memcpy(zref + (size_t)miss[j] * H, z1 + (size_t)j * H,
                           (size_t)H * sizeof(float));
            }
            for (int k = 0; k < nb; k++) {
                const float *zr = zref + (size_t)ref[k] * H, *zs = zx + (size_t)sc->row[k] * H;
                float *zk = z1 + (size_t)k * H;
                const double a = sc->w[k];
                for (int h = 0; h < H; h++)
                    zk[h] = (float)((double)zr[h] + a * ((double)zs[h] - (double)zr[h]));
            }
            eng_forward_from(m, &sc->ws, m->params, sc->xin, nb, f + 1);
            memset(sc->dlogits, 0, (size_t)nb * C * sizeof(float));
            for (int k = 0; k < nb; k++) {
                int32_t t = rows->target[sc->row[k]];
                AT_CHECK(t >= 0 && t < C);
                sc->dlogits[(size_t)k * C + t] = 1.0f;
            }
            eng_backward_to(m, &sc->ws, m->params, sc->xin, sc->dlogits, nb, f, NULL, NULL);
            memset(sc->dx, 0, (size_t)nb * D * sizeof(float));
            eng_linear_backward(sc->dx, NULL, NULL, eng_ws_grad(&sc->ws, f), NULL, W, nb, D, H);
        } else {
            mth_input_grads(m, sc, rows->target, nb);
        }
        for (int k = 0; k < nb; k++) {
            const int r = sc->row[k];
            double *acc = partial + (size_t)r * D;
            const float *g = sc->dx + (size_t)k * D, *rf = refs + (size_t)ref[k] * D;
            const float *src = shap ? xt + (size_t)k * D : x + (size_t)r * D;
            for (int d = 0; d < D; d++)
                acc[d] += ((double)src[d] - (double)rf[d]) * (double)g[d];
        }
    }
}

void grad_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                   const mth_rows *rows, int c0, int c1, double *partial) {
    const float *x = rows->x, *baseline = rows->baseline;
    const int32_t *target = rows->target;
    const int R = rows->R, D = m->in_features;
    const int interp = s->kind == MTH_INTEGRATED_GRADIENTS;
    if (s->kind == MTH_EXPECTED_GRADIENTS || s->kind == MTH_GRADIENT_SHAP) {
        run_unit_expected(s, m, sc, rows, c0, c1, partial);
        return;
    }
    AT_CHECK(!interp || baseline != NULL);
    if (interp && sc->head >= 0) {
        run_unit_head(s, m, sc, rows, c0, c1, partial);
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
        mth_input_grads(m, sc, target, nb);
        for (int k = 0; k < nb; k++) {
            double *acc = partial + (size_t)sc->row[k] * D;
            const float *g = sc->dx + (size_t)k * D;
            double w = sc->w[k];
            for (int d = 0; d < D; d++) acc[d] += w * (double)g[d];
        }
    }
}

void grad_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                   const mth_rows *rows, const double *acc, float *scores) {
    (void)m;
    (void)sc;
    const float *x = rows->x, *baseline = rows->baseline;
    const int D = s->D;
    size_t n = (size_t)rows->R * (size_t)D;
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
    case MTH_EXPECTED_GRADIENTS:
    case MTH_GRADIENT_SHAP:
        for (size_t i = 0; i < n; i++) scores[i] = (float)(acc[i] / s->n_samples);
        break;
    default:
        AT_CHECK(0 && "not a gradient kind");
    }
}
