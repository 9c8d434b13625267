/* noise.c — the noise wrapper over a gradient kind: SmoothGrad (mean of the
 * base attribution over noisy copies of the input), SmoothGrad^2 (mean of
 * its square) and VarGrad (its variance, 1/n). See methods.h.
 *
 * Columns are noise draws c = 0..noise_n-1. Draw c of row r (selection
 * index i_r = rows->row0 + r), with st = s->stream * 64:
 *   x~_d = (float)(x_d + sigma (max_d x - min_d x)
 *                  * at_rng_normal(seed, st + NOISE_RNG_INPUT, i_r, (c << 32) | d))
 *   a    = the base method's full attribution of x~ (every base column)
 * The base is planned once (s->priv: a copy of the spec without the
 * wrapper). A base that draws random numbers (expected_gradients,
 * gradient_shap) runs draw c with seed
 *   seed_c = at_rng_below(UINT64_MAX, seed, st + NOISE_RNG_SEED, c, 0)
 * so its draws differ per noise draw; it then runs one draw at a time over
 * the unit's rows (its draws address rows by row0 + r). A base without
 * draws (saliency, IG, the rule family) runs several draws stacked in one
 * call, up to the scratch cap in rows, for fuller engine batches.
 *
 * Partial: SmoothGrad sum a (width D); SmoothGrad^2 sum a^2 (D); VarGrad
 * sum a then sum a^2 (2D), each in float64 and in draw order. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

/* RNG purposes of the wrapper: stream = s->stream * 64 + purpose (distinct
 * from the gradient family's 1..3, which the base uses under seed_c). */
enum { NOISE_RNG_INPUT = 8, NOISE_RNG_SEED = 9 };

static int base_draws(const mth_spec *base) {
    return base->kind == MTH_EXPECTED_GRADIENTS || base->kind == MTH_GRADIENT_SHAP;
}

/* Plan the base (a copy of *s with noise NONE and no owned pointers) into
 * s->priv. Returns 0, or AT_EUSER naming the field (the base's own errors
 * pass through); nothing is left allocated on failure. */
int noise_plan(mth_spec *s, const eng_model *m, at_err *err) {
    if (s->noise != MTH_NOISE_SMOOTHGRAD && s->noise != MTH_NOISE_SMOOTHGRAD_SQ &&
        s->noise != MTH_NOISE_VARGRAD)
        return at_err_set(err, AT_EUSER, "noise: unknown mode %d", (int)s->noise);
    if (m->token_input)
        return at_err_set(err, AT_EUSER,
                          "noise: the model's input is token ids (layer 0 is "
                          "an embedding); Gaussian noise on ids is not an input");
    if (s->noise_n < 1)
        return at_err_set(err, AT_EUSER, "noise_n is %d; expected >= 1", s->noise_n);
    if (!(s->noise_sigma >= 0.0 && isfinite(s->noise_sigma)))
        return at_err_set(err, AT_EUSER, "noise_sigma is %g; expected a finite value >= 0",
                          s->noise_sigma);
    mth_spec *base = at_malloc(sizeof *base, "noise wrapper base spec");
    *base = *s;
    base->noise = MTH_NOISE_NONE;
    base->noise_n = 0;
    base->noise_sigma = 0.0;
    base->group = NULL; /* the wrapper's spec owns it */
    base->alpha = base->weight = NULL;
    base->priv = NULL;
    int rc = mth_plan(base, m, err);
    if (rc) {
        mth_spec_free(base);
        free(base);
        return rc;
    }
    s->priv = base;
    s->n_cols = s->noise_n;
    s->width = s->noise == MTH_NOISE_VARGRAD ? 2 * s->D : s->D;
    return 0;
}

void noise_free(mth_spec *s) {
    mth_spec *base = s->priv;
    if (!base) return;
    mth_spec_free(base);
    free(base);
    s->priv = NULL;
}

/* partial (R, width) += draws [c0, c1). Buffers: slot 6 the per-row noise
 * scales (R) and noisy inputs (K R, D), slot 7 the base's scores (K R, D)
 * and targets (K R), K the draws stacked per base call. */
void noise_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    int c0, int c1, double *partial) {
    const mth_spec *base = s->priv;
    const int R = rows->R, D = s->D, W = s->width;
    if (R == 0 || c1 <= c0) return;
    int K = 1;
    if (!base_draws(base)) {
        K = sc->cap / R;
        if (K < 1) K = 1;
        if (K > c1 - c0) K = c1 - c0;
    }
    const size_t KR = (size_t)K * R;
    char *b6 = mth_buf(sc, 6, (size_t)R * sizeof(double) + KR * D * sizeof(float));
    double *scale = (double *)b6;                           /* (R) */
    float *xt = (float *)(b6 + (size_t)R * sizeof(double)); /* (K R, D) */
    char *b7 = mth_buf(sc, 7, KR * D * sizeof(float) + KR * sizeof(int32_t));
    float *a = (float *)b7;                                     /* (K R, D) */
    int32_t *target = (int32_t *)(b7 + KR * D * sizeof(float)); /* (K R) */
    const uint64_t seed = s->seed, st = s->stream * 64;
    for (int r = 0; r < R; r++) {
        const float *xr = rows->x + (size_t)r * D;
        float lo = xr[0], hi = xr[0];
        for (int d = 1; d < D; d++) {
            lo = xr[d] < lo ? xr[d] : lo;
            hi = xr[d] > hi ? xr[d] : hi;
        }
        scale[r] = s->noise_sigma * ((double)hi - (double)lo);
    }
    for (int j = 0; j < K; j++)
        memcpy(target + (size_t)j * R, rows->target, (size_t)R * sizeof(int32_t));
    for (int cb = c0; cb < c1; cb += K) {
        const int nk = c1 - cb < K ? c1 - cb : K;
        for (int j = 0; j < nk; j++)
            for (int r = 0; r < R; r++) {
                const uint64_t i = (uint64_t)(rows->row0 + r), c = (uint64_t)(cb + j);
                const float *xr = rows->x + (size_t)r * D;
                float *xk = xt + ((size_t)j * R + r) * D;
                for (int d = 0; d < D; d++)
                    xk[d] = (float)((double)xr[d] +
                                    scale[r] * at_rng_normal(seed, st + NOISE_RNG_INPUT, i,
                                                             (c << 32) | (uint64_t)d));
            }
        mth_spec b = *base;
        b.seed = at_rng_below(UINT64_MAX, seed, st + NOISE_RNG_SEED, (uint64_t)cb, 0);
        mth_rows nr = *rows;
        nr.x = xt;
        nr.target = target;
        nr.R = nk * R;
        mth_attribute(&b, m, sc, &nr, a);
        for (int j = 0; j < nk; j++)
            for (int r = 0; r < R; r++) {
                const float *ak = a + ((size_t)j * R + r) * D;
                double *p = partial + (size_t)r * W;
                switch (s->noise) {
                case MTH_NOISE_SMOOTHGRAD:
                    for (int d = 0; d < D; d++) p[d] += (double)ak[d];
                    break;
                case MTH_NOISE_SMOOTHGRAD_SQ:
                    for (int d = 0; d < D; d++) p[d] += (double)ak[d] * (double)ak[d];
                    break;
                default: /* VARGRAD */
                    for (int d = 0; d < D; d++) {
                        p[d] += (double)ak[d];
                        p[D + d] += (double)ak[d] * (double)ak[d];
                    }
                    break;
                }
            }
    }
}

void noise_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    const double *acc, float *scores) {
    (void)m;
    (void)sc;
    const int R = rows->R, D = s->D, W = s->width;
    const double n = (double)s->n_cols;
    for (int r = 0; r < R; r++) {
        const double *p = acc + (size_t)r * W;
        float *o = scores + (size_t)r * D;
        if (s->noise == MTH_NOISE_VARGRAD) {
            /* E[a^2] - E[a]^2, clamped at 0 against rounding */
            for (int d = 0; d < D; d++) {
                double mean = p[d] / n, v = p[D + d] / n - mean * mean;
                o[d] = (float)(v > 0.0 ? v : 0.0);
            }
        } else {
            for (int d = 0; d < D; d++) o[d] = (float)(p[d] / n);
        }
    }
}
