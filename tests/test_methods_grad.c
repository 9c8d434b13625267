/* test_methods_grad.c — Expected Gradients, GradientSHAP and the noise
 * wrapper (SmoothGrad, SmoothGrad^2, VarGrad) against known answers and
 * independent float64 re-computations that reproduce the documented draws
 * (gradient.c and noise.c header comments):
 *   - linear model f = W x + c: EG with equal references = w_t (x - r);
 *     EG and GradientSHAP = w_t * mean of (x~ - ref) over the drawn pairs,
 *     and -> w_t (x - mean(refs)) as n grows;
 *   - random MLP: EG and GradientSHAP equal a float64 oracle (f64 engine
 *     gradients at the same points); EG completeness in expectation;
 *   - SmoothGrad over saliency = w, SmoothGrad^2 = w^2, VarGrad = 0 on a
 *     linear model; on an MLP all three equal a float64 oracle; SmoothGrad
 *     over IG with sigma 0 = IG; SmoothGrad over EG uses per-draw seeds;
 *   - row splits are bit-identical, column splits agree to 1e-12, engine
 *     batch caps (7 vs 256) do not change results;
 *   - plan errors name the field; token-id models are refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

#include "check.h"

/* The documented RNG purposes (stream = spec stream * 64 + purpose). */
enum { EG_REF = 1, EG_ALPHA = 2, GS_INPUT = 3, SG_INPUT = 8, SG_SEED = 9 };

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(11, 5, k, 0) - 1.0; }

static void fill(float *v, size_t n, uint64_t key, double scale) {
    for (size_t i = 0; i < n; i++) v[i] = (float)(scale * urand(key + i));
}

static void linear_model(eng_model *m, int D, int C, uint64_t seed) {
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1};
    at_err err = {0};
    EXPECT(eng_model_init(m, &spec, 1, (int[]){D}, 1, &err) == 0, "linear: %s", err.msg);
    eng_model_init_params(m, seed);
}

static void mlp_model(eng_model *m, int D, int H, int C, uint64_t seed) {
    eng_layer specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = H, .bias = 1},
                         {.kind = ENG_LAYER_TANH},
                         {.kind = ENG_LAYER_LINEAR, .out_features = H, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    at_err err = {0};
    EXPECT(eng_model_init(m, specs, 5, (int[]){D}, 1, &err) == 0, "mlp: %s", err.msg);
    eng_model_init_params(m, seed);
}

static int g_no_head; /* 1: no affine-head reuse (every layer per engine row) */

/* partial (R, width) of columns [c0, c1), zeroed first. */
static double *partial_of(const mth_spec *s, const eng_model *m, int cap, const mth_rows *rows,
                          int c0, int c1) {
    mth_scratch sc;
    mth_scratch_init(&sc, m, cap);
    if (g_no_head) sc.head = -1;
    double *p = calloc((size_t)rows->R * s->width + 1, sizeof(double));
    mth_run_unit(s, m, &sc, rows, c0, c1, p);
    mth_scratch_free(&sc);
    return p;
}

/* Scores (R, D) from units of `step` columns folded in order. */
static void run_method(const mth_spec *s, const eng_model *m, int cap, const mth_rows *rows,
                       int step, float *scores) {
    mth_scratch sc;
    mth_scratch_init(&sc, m, cap);
    if (g_no_head) sc.head = -1;
    size_t n = (size_t)rows->R * s->width;
    double *acc = calloc(n + 1, sizeof(double)), *part = malloc((n + 1) * sizeof(double));
    for (int c0 = 0; c0 < s->n_cols; c0 += step) {
        int c1 = c0 + step < s->n_cols ? c0 + step : s->n_cols;
        memset(part, 0, n * sizeof(double));
        mth_run_unit(s, m, &sc, rows, c0, c1, part);
        mth_fold(acc, part, n);
    }
    mth_finalize(s, m, &sc, rows, acc, scores);
    free(acc);
    free(part);
    mth_scratch_free(&sc);
}

static void plan_ok(mth_spec *s, const eng_model *m) {
    at_err err = {0};
    s->D = m->in_features;
    EXPECT(mth_plan(s, m, &err) == 0, "plan kind %d: %s", (int)s->kind, err.msg);
}

/* ------------------------------------------------------ float64 oracle */

typedef struct {
    const eng_model *m;
    double *p;        /* (n_params) */
    eng_workspace ws; /* float64, cap rows */
    int cap;
    double *dl; /* (cap, C) */
} oracle;

static void oracle_init(oracle *o, const eng_model *m, int cap) {
    o->m = m;
    o->cap = cap;
    o->p = malloc(m->n_params * sizeof(double));
    for (size_t i = 0; i < m->n_params; i++) o->p[i] = m->params[i];
    eng_workspace_init(&o->ws, m, cap, ENG_F64);
    o->dl = malloc((size_t)cap * m->out_features * sizeof(double));
}

static void oracle_free(oracle *o) {
    free(o->p);
    free(o->dl);
    eng_workspace_free(&o->ws);
}

/* dx (n, D) = d f_t / dx at the points x (n, D), n <= cap, one target. */
static void oracle_grads(oracle *o, const double *x, int n, int t, double *dx) {
    const int C = o->m->out_features;
    eng_forward_f64(o->m, &o->ws, o->p, x, n);
    memset(o->dl, 0, (size_t)n * C * sizeof(double));
    for (int k = 0; k < n; k++) o->dl[(size_t)k * C + t] = 1.0;
    eng_backward_f64(o->m, &o->ws, o->p, x, o->dl, n, dx, NULL);
}

static double oracle_logit(oracle *o, const double *x, int t) {
    return eng_forward_f64(o->m, &o->ws, o->p, x, 1)[t];
}

/* The documented draws of EG / GradientSHAP column j of a row with
 * selection index i: reference k, the input x~ (float), the point (float). */
static int eg_draw(const mth_spec *s, const float *x, const float *refs, int n_refs, uint64_t i,
                   int j, float *xt, double *point) {
    const int D = s->D;
    const uint64_t st = s->stream * 64;
    int k = (int)at_rng_below((uint64_t)n_refs, s->seed, st + EG_REF, i, (uint64_t)j);
    double a = at_rng_uniform_f64(s->seed, st + EG_ALPHA, i, (uint64_t)j);
    const float *rf = refs + (size_t)k * D;
    for (int d = 0; d < D; d++) {
        xt[d] = x[d];
        if (s->kind == MTH_GRADIENT_SHAP)
            xt[d] =
                (float)((double)x[d] + s->stdev * at_rng_normal(s->seed, st + GS_INPUT, i,
                                                                ((uint64_t)j << 32) | (uint64_t)d));
        point[d] = (float)((double)rf[d] + a * ((double)xt[d] - (double)rf[d]));
    }
    return k;
}

/* EG / GradientSHAP of one row in float64 (out (D)); also the per-sample
 * completeness terms sum_d (x~ - ref) g when terms != NULL. */
static void oracle_eg(oracle *o, const mth_spec *s, const float *x, int t, const float *refs,
                      int n_refs, uint64_t i, double *out, double *terms) {
    const int D = s->D, n = s->n_samples;
    double *pts = malloc((size_t)o->cap * D * sizeof(double));
    double *dx = malloc((size_t)o->cap * D * sizeof(double));
    double *dif = malloc((size_t)o->cap * D * sizeof(double));
    float *xt = malloc((size_t)D * sizeof(float));
    for (int d = 0; d < D; d++) out[d] = 0.0;
    for (int j0 = 0; j0 < n; j0 += o->cap) {
        int nb = n - j0 < o->cap ? n - j0 : o->cap;
        for (int k = 0; k < nb; k++) {
            int ref = eg_draw(s, x, refs, n_refs, i, j0 + k, xt, pts + (size_t)k * D);
            for (int d = 0; d < D; d++)
                dif[(size_t)k * D + d] = (double)xt[d] - (double)refs[(size_t)ref * D + d];
        }
        oracle_grads(o, pts, nb, t, dx);
        for (int k = 0; k < nb; k++) {
            double sum = 0.0;
            for (int d = 0; d < D; d++) {
                double v = dif[(size_t)k * D + d] * dx[(size_t)k * D + d];
                out[d] += v;
                sum += v;
            }
            if (terms) terms[j0 + k] = sum;
        }
    }
    for (int d = 0; d < D; d++) out[d] /= n;
    free(pts);
    free(dx);
    free(dif);
    free(xt);
}

/* ------------------------------------------------------------- tests */

static void test_eg_linear(void) {
    const int D = 12, C = 3, R = 5, NREF = 16;
    eng_model m;
    linear_model(&m, D, C, 3);
    const float *W = m.params; /* (C, D) */
    float x[5 * 12], refs[16 * 12], same[4 * 12], scores[5 * 12];
    int32_t t[5];
    fill(x, (size_t)R * D, 100, 1.0);
    fill(refs, (size_t)NREF * D, 300, 1.0);
    for (int k = 0; k < 4; k++) memcpy(same + k * D, refs, (size_t)D * sizeof(float));
    for (int r = 0; r < R; r++) t[r] = (r + 1) % C;

    /* equal references: EG = w_t (x - r) to float rounding */
    mth_spec s = {.kind = MTH_EXPECTED_GRADIENTS, .n_samples = 50, .seed = 7, .stream = 2};
    plan_ok(&s, &m);
    EXPECT(s.n_cols == 50 && s.width == D, "EG columns %d width %d", s.n_cols, s.width);
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 40, .refs = same, .n_refs = 4};
    run_method(&s, &m, 7, &rows, 13, scores);
    double worst = 0.0;
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            double want = (double)W[t[r] * D + d] * ((double)x[r * D + d] - refs[d]);
            worst = fmax(worst, fabs(scores[r * D + d] - want) / (fabs(want) + 1e-7));
        }
    EXPECT(worst < 1e-6, "EG, equal references, linear: rel err %g", worst);
    mth_spec_free(&s);

    /* random references, EG and GradientSHAP: exactly w_t * mean(x~ - ref)
     * over the documented draws, and -> w_t (x - mean(refs)) */
    double mean[12] = {0}, var[12] = {0};
    for (int k = 0; k < NREF; k++)
        for (int d = 0; d < D; d++) mean[d] += refs[k * D + d] / (double)NREF;
    for (int k = 0; k < NREF; k++)
        for (int d = 0; d < D; d++) var[d] += pow(refs[k * D + d] - mean[d], 2) / (double)NREF;
    for (int shap = 0; shap < 2; shap++) {
        const int n = 4096;
        mth_spec g = {.kind = shap ? MTH_GRADIENT_SHAP : MTH_EXPECTED_GRADIENTS,
                      .n_samples = n,
                      .stdev = 0.5,
                      .seed = 9,
                      .stream = 3};
        plan_ok(&g, &m);
        rows.refs = refs;
        rows.n_refs = NREF;
        run_method(&g, &m, 256, &rows, n, scores);
        double exact = 0.0, stat = 0.0;
        float xt[12];
        double pt[12];
        for (int r = 0; r < R; r++) {
            double dsum[12] = {0};
            for (int j = 0; j < n; j++) {
                int k = eg_draw(&g, x + r * D, refs, NREF, (uint64_t)(40 + r), j, xt, pt);
                for (int d = 0; d < D; d++) dsum[d] += (double)xt[d] - refs[k * D + d];
            }
            for (int d = 0; d < D; d++) {
                double w = W[t[r] * D + d], got = scores[r * D + d];
                double want = w * dsum[d] / n;
                exact = fmax(exact, fabs(got - want) / (fabs(want) + 1e-6));
                double lim = w * ((double)x[r * D + d] - mean[d]);
                double sd = fabs(w) * sqrt((var[d] + (shap ? g.stdev * g.stdev : 0.0)) / n);
                stat = fmax(stat, fabs(got - lim) / (sd + 1e-12));
            }
        }
        EXPECT(exact < 1e-5, "%s linear vs its draws: rel err %g", shap ? "GS" : "EG", exact);
        EXPECT(stat < 5.0, "%s linear vs w (x - mean ref): %g standard deviations",
               shap ? "GS" : "EG", stat);
        printf("%s linear: vs draws %.2g rel, vs expectation %.2f sd\n", shap ? "GS" : "EG", exact,
               stat);
        mth_spec_free(&g);
    }
    eng_model_free(&m);
}

static void test_eg_mlp(void) {
    const int D = 8, H = 16, C = 3, R = 4, NREF = 6;
    eng_model m;
    mlp_model(&m, D, H, C, 21);
    float x[4 * 8], refs[6 * 8], scores[4 * 8];
    int32_t t[4] = {0, 2, 1, 2};
    fill(x, (size_t)R * D, 500, 1.5);
    fill(refs, (size_t)NREF * D, 700, 1.0);
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 123, .refs = refs, .n_refs = NREF};
    oracle o;
    oracle_init(&o, &m, 4096);
    /* against the oracle at n = 64 */
    for (int shap = 0; shap < 2; shap++) {
        mth_spec s = {.kind = shap ? MTH_GRADIENT_SHAP : MTH_EXPECTED_GRADIENTS,
                      .n_samples = 64,
                      .stdev = 0.3,
                      .seed = 4,
                      .stream = 1};
        plan_ok(&s, &m);
        run_method(&s, &m, 7, &rows, 10, scores);
        double dmax = 0.0, smax = 0.0;
        for (int r = 0; r < R; r++) {
            double want[8];
            oracle_eg(&o, &s, x + r * D, t[r], refs, NREF, (uint64_t)(123 + r), want, NULL);
            for (int d = 0; d < D; d++) {
                dmax = fmax(dmax, fabs(scores[r * D + d] - want[d]));
                smax = fmax(smax, fabs(want[d]));
            }
        }
        EXPECT(dmax <= 1e-5 * smax, "%s MLP vs float64 oracle: %g of %g", shap ? "GS" : "EG", dmax,
               smax);
        printf("%s MLP vs oracle: max diff %.2g of %.2g\n", shap ? "GS" : "EG", dmax, smax);
        /* Expected Gradients reuses the affine head (z1 of x and of each
         * reference once): against every layer per engine row */
        float plain[4 * 8];
        EXPECT(eng_model_affine_head(&m) == 0, "the MLP's first linear is an affine head");
        g_no_head = 1;
        run_method(&s, &m, 7, &rows, 10, plain);
        g_no_head = 0;
        double dh = 0.0;
        int same = 1;
        for (int i = 0; i < R * D; i++) {
            dh = fmax(dh, fabs((double)plain[i] - scores[i]));
            same &= plain[i] == scores[i];
        }
        EXPECT(dh <= 1e-5 * smax, "%s affine head vs plain: %g of %g", shap ? "GS" : "EG", dh,
               smax);
        EXPECT(shap == same, "%s: the head path %s", shap ? "GS" : "EG",
               shap ? "must not change GradientSHAP" : "did not run");
        mth_spec_free(&s);
    }
    /* completeness in expectation: sum EG ~ f(x) - mean f(ref) */
    const int n = 20000;
    mth_spec s = {.kind = MTH_EXPECTED_GRADIENTS, .n_samples = n, .seed = 5, .stream = 0};
    plan_ok(&s, &m);
    run_method(&s, &m, 256, &rows, n, scores);
    double *terms = malloc((size_t)n * sizeof(double)), want[8], xd[8];
    double worst = 0.0;
    for (int r = 0; r < R; r++) {
        oracle_eg(&o, &s, x + r * D, t[r], refs, NREF, (uint64_t)(123 + r), want, terms);
        double mu = 0.0, sd = 0.0, sum = 0.0, fref = 0.0;
        for (int j = 0; j < n; j++) mu += terms[j] / n;
        for (int j = 0; j < n; j++) sd += (terms[j] - mu) * (terms[j] - mu) / (n - 1);
        sd = sqrt(sd / n); /* standard error of the mean */
        for (int d = 0; d < D; d++) {
            sum += scores[r * D + d];
            xd[d] = x[r * D + d];
        }
        double fx = oracle_logit(&o, xd, t[r]);
        for (int k = 0; k < NREF; k++) {
            for (int d = 0; d < D; d++) xd[d] = refs[k * D + d];
            fref += oracle_logit(&o, xd, t[r]) / NREF;
        }
        double z = fabs(sum - (fx - fref)) / sd;
        worst = fmax(worst, z);
        EXPECT(z < 5.0, "EG completeness row %d: sum %g vs f(x) - E f(ref) %g (se %g)", r, sum,
               fx - fref, sd);
    }
    printf("EG completeness: worst %.2f standard errors\n", worst);
    free(terms);
    mth_spec_free(&s);
    oracle_free(&o);
    eng_model_free(&m);
}

/* The documented noisy input of draw c for a row with selection index i. */
static void sg_input(const mth_spec *s, const float *x, uint64_t i, int c, double *out) {
    const int D = s->D;
    float lo = x[0], hi = x[0];
    for (int d = 1; d < D; d++) {
        lo = fminf(lo, x[d]);
        hi = fmaxf(hi, x[d]);
    }
    double scale = s->noise_sigma * ((double)hi - (double)lo);
    for (int d = 0; d < D; d++)
        out[d] = (float)((double)x[d] + scale * at_rng_normal(s->seed, s->stream * 64 + SG_INPUT, i,
                                                              ((uint64_t)c << 32) | (uint64_t)d));
}

static void test_noise_linear(void) {
    const int D = 10, C = 4, R = 6;
    eng_model m;
    linear_model(&m, D, C, 8);
    const float *W = m.params;
    float x[6 * 10], sg[6 * 10], sq[6 * 10], vg[6 * 10];
    int32_t t[6] = {0, 1, 2, 3, 2, 1};
    fill(x, (size_t)R * D, 900, 2.0);
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 7};
    const mth_noise_mode modes[3] = {MTH_NOISE_SMOOTHGRAD, MTH_NOISE_SMOOTHGRAD_SQ,
                                     MTH_NOISE_VARGRAD};
    float *outs[3] = {sg, sq, vg};
    for (int k = 0; k < 3; k++) {
        mth_spec s = {.kind = MTH_SALIENCY,
                      .abs_value = 0,
                      .noise = modes[k],
                      .noise_n = 25,
                      .noise_sigma = 0.2,
                      .seed = 3,
                      .stream = 5};
        plan_ok(&s, &m);
        EXPECT(s.n_cols == 25 && s.width == (k == 2 ? 2 * D : D), "noise columns/width");
        EXPECT(mth_cost(&s, 3, 0, 25) == 3.0 * 25 * 1.0, "noise cost %g", mth_cost(&s, 3, 0, 25));
        EXPECT(mth_delta(&s) == MTH_DELTA_NONE, "noise has no delta");
        run_method(&s, &m, 5, &rows, 4, outs[k]);
        mth_spec_free(&s);
    }
    int bad = 0;
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            float w = W[t[r] * D + d];
            bad += sg[r * D + d] != w;
            bad += sq[r * D + d] != (float)((double)w * w);
            bad += vg[r * D + d] != 0.0f;
        }
    EXPECT(bad == 0,
           "SmoothGrad = w, SmoothGrad^2 = w^2, VarGrad = 0 on a linear model: "
           "%d mismatches",
           bad);

    /* SmoothGrad over EG with sigma 0, random references: the base runs
     * draw c with seed_c, so the result is w_t * mean over (c, j) of
     * (x - ref_{k(c, j)}) */
    const int NREF = 9, NC = 5;
    float refs[9 * 10], sc[6 * 10];
    fill(refs, (size_t)NREF * D, 1300, 1.0);
    mth_spec e = {.kind = MTH_EXPECTED_GRADIENTS,
                  .n_samples = 6,
                  .noise = MTH_NOISE_SMOOTHGRAD,
                  .noise_n = NC,
                  .noise_sigma = 0.0,
                  .seed = 12,
                  .stream = 4};
    plan_ok(&e, &m);
    EXPECT(mth_cost(&e, 2, 1, 3) == 2.0 * 2 * 6, "noise(EG) cost %g", mth_cost(&e, 2, 1, 3));
    rows.refs = refs;
    rows.n_refs = NREF;
    run_method(&e, &m, 7, &rows, 2, sc);
    double worst = 0.0;
    int distinct = 0;
    for (int r = 0; r < R; r++) {
        double dsum[10] = {0};
        int first_k = -1;
        for (int c = 0; c < NC; c++) {
            mth_spec b = e;
            b.noise = MTH_NOISE_NONE;
            b.seed = at_rng_below(UINT64_MAX, e.seed, e.stream * 64 + SG_SEED, (uint64_t)c, 0);
            float xt[10];
            double pt[10];
            int k = eg_draw(&b, x + r * D, refs, NREF, (uint64_t)(7 + r), 0, xt, pt);
            if (c == 0) first_k = k;
            distinct += c > 0 && k != first_k;
            for (int j = 0; j < b.n_samples; j++) {
                k = eg_draw(&b, x + r * D, refs, NREF, (uint64_t)(7 + r), j, xt, pt);
                for (int d = 0; d < D; d++) dsum[d] += (double)x[r * D + d] - refs[k * D + d];
            }
        }
        for (int d = 0; d < D; d++) {
            double want = W[t[r] * D + d] * dsum[d] / (NC * e.n_samples);
            worst = fmax(worst, fabs(sc[r * D + d] - want) / (fabs(want) + 1e-6));
        }
    }
    EXPECT(worst < 1e-5, "SmoothGrad(EG) vs per-draw seeds: rel err %g", worst);
    EXPECT(distinct > 0, "the base's draws do not change across noise draws");
    mth_spec_free(&e);
    eng_model_free(&m);
}

static void test_noise_mlp(void) {
    const int D = 9, H = 12, C = 3, R = 5, NC = 40;
    eng_model m;
    mlp_model(&m, D, H, C, 33);
    float x[5 * 9], out[5 * 9];
    int32_t t[5] = {2, 0, 1, 1, 0};
    fill(x, (size_t)R * D, 1700, 1.0);
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 1000};
    oracle o;
    oracle_init(&o, &m, NC);
    const mth_noise_mode modes[3] = {MTH_NOISE_SMOOTHGRAD, MTH_NOISE_SMOOTHGRAD_SQ,
                                     MTH_NOISE_VARGRAD};
    const char *names[3] = {"SmoothGrad", "SmoothGrad^2", "VarGrad"};
    for (int k = 0; k < 3; k++) {
        mth_spec s = {.kind = MTH_SALIENCY,
                      .noise = modes[k],
                      .noise_n = NC,
                      .noise_sigma = 0.15,
                      .seed = 77,
                      .stream = 6};
        plan_ok(&s, &m);
        run_method(&s, &m, 7, &rows, 9, out);
        double dmax = 0.0, smax = 0.0;
        double *pts = malloc((size_t)NC * D * sizeof(double));
        double *g = malloc((size_t)NC * D * sizeof(double));
        for (int r = 0; r < R; r++) {
            for (int c = 0; c < NC; c++)
                sg_input(&s, x + r * D, (uint64_t)(1000 + r), c, pts + (size_t)c * D);
            oracle_grads(&o, pts, NC, t[r], g);
            for (int d = 0; d < D; d++) {
                double s1 = 0.0, s2 = 0.0;
                for (int c = 0; c < NC; c++) {
                    double v = g[(size_t)c * D + d];
                    s1 += v;
                    s2 += v * v;
                }
                double want = k == 0 ? s1 / NC : k == 1 ? s2 / NC : s2 / NC - pow(s1 / NC, 2);
                dmax = fmax(dmax, fabs(out[r * D + d] - want));
                smax = fmax(smax, fabs(want));
            }
        }
        EXPECT(dmax <= 1e-5 * smax && smax > 0.0, "%s(saliency) MLP vs oracle: %g of %g", names[k],
               dmax, smax);
        printf("%s(saliency) MLP vs oracle: max diff %.2g of %.2g\n", names[k], dmax, smax);
        free(pts);
        free(g);
        mth_spec_free(&s);
    }
    /* SmoothGrad over IG with sigma 0 is IG */
    float b[9] = {0}, ig[5 * 9];
    rows.baseline = b;
    mth_spec p = {
        .kind = MTH_INTEGRATED_GRADIENTS, .n_steps = 16, .quadrature = MTH_QUAD_GAUSS_LEGENDRE};
    mth_spec q = p;
    q.noise = MTH_NOISE_SMOOTHGRAD;
    q.noise_n = 6;
    q.noise_sigma = 0.0;
    plan_ok(&p, &m);
    plan_ok(&q, &m);
    EXPECT(mth_uses_baseline(&q), "SmoothGrad(IG) uses the baseline");
    run_method(&p, &m, 7, &rows, 16, ig);
    run_method(&q, &m, 7, &rows, 4, out);
    double dmax = 0.0, smax = 0.0;
    for (int i = 0; i < R * D; i++) {
        dmax = fmax(dmax, fabs((double)out[i] - ig[i]));
        smax = fmax(smax, fabs((double)ig[i]));
    }
    EXPECT(dmax <= 1e-6 * smax && smax > 0.0, "SmoothGrad(IG), sigma 0 vs IG: %g of %g", dmax,
           smax);
    /* and with noise it runs and differs */
    mth_spec_free(&q);
    q = p;
    q.alpha = q.weight = NULL;
    q.noise = MTH_NOISE_SMOOTHGRAD;
    q.noise_n = 6;
    q.noise_sigma = 0.1;
    plan_ok(&q, &m);
    run_method(&q, &m, 7, &rows, 4, out);
    dmax = 0.0;
    for (int i = 0; i < R * D; i++) dmax = fmax(dmax, fabs((double)out[i] - ig[i]));
    EXPECT(dmax > 1e-4 * smax && dmax < 0.5 * smax + 1.0, "SmoothGrad(IG), sigma 0.1: %g", dmax);
    mth_spec_free(&q);
    mth_spec_free(&p);
    oracle_free(&o);
    eng_model_free(&m);
}

/* Row splits bit-identical, column splits to 1e-12, caps 7 vs 256. */
static void check_splits(const char *name, const mth_spec *s, const eng_model *m,
                         const mth_rows *rows) {
    const int R = rows->R, W = s->width, n = s->n_cols, R1 = 3, k = n / 3;
    const size_t N = (size_t)R * W;
    double *whole = partial_of(s, m, 256, rows, 0, n);
    mth_rows a = *rows, b = *rows;
    a.R = R1;
    b.R = R - R1;
    b.x = rows->x + (size_t)R1 * s->D;
    b.target = rows->target + R1;
    b.row0 = rows->row0 + R1;
    double *pa = partial_of(s, m, 256, &a, 0, n), *pb = partial_of(s, m, 256, &b, 0, n);
    EXPECT(memcmp(whole, pa, (size_t)R1 * W * sizeof(double)) == 0 &&
               memcmp(whole + (size_t)R1 * W, pb, (size_t)(R - R1) * W * sizeof(double)) == 0,
           "%s: a row split changes the partial", name);
    double *c1 = partial_of(s, m, 256, rows, 0, k), *c2 = partial_of(s, m, 256, rows, k, n);
    mth_fold(c1, c2, N);
    double dcol = 0.0, dcap = 0.0, mx = 0.0;
    double *p7 = partial_of(s, m, 7, rows, 0, n);
    int cap_bits = memcmp(p7, whole, N * sizeof(double)) == 0;
    for (size_t i = 0; i < N; i++) {
        dcol = fmax(dcol, fabs(c1[i] - whole[i]));
        dcap = fmax(dcap, fabs(p7[i] - whole[i]));
        mx = fmax(mx, fabs(whole[i]));
    }
    EXPECT(mx > 0.0 && dcol <= 1e-12 * mx, "%s: column split [0,%d)+[%d,%d): %g of %g", name, k, k,
           n, dcol, mx);
    EXPECT(dcap <= 1e-12 * mx, "%s: cap 7 vs 256: %g of %g", name, dcap, mx);
    printf("%s: row split bit-identical, column split %.2g rel, cap 7 vs 256 %s\n", name, dcol / mx,
           cap_bits ? "bit-identical" : "differs below 1e-12");
    free(whole);
    free(pa);
    free(pb);
    free(c1);
    free(c2);
    free(p7);
}

static void test_splits(void) {
    const int D = 11, H = 14, C = 4, R = 8, NREF = 5;
    eng_model m;
    mlp_model(&m, D, H, C, 55);
    float x[8 * 11], refs[5 * 11], b[11];
    int32_t t[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    fill(x, (size_t)R * D, 2100, 1.0);
    fill(refs, (size_t)NREF * D, 2300, 1.0);
    fill(b, (size_t)D, 2500, 0.1);
    mth_rows rows = {
        .x = x, .baseline = b, .target = t, .R = R, .row0 = 31, .refs = refs, .n_refs = NREF};
    mth_spec specs[] = {
        {.kind = MTH_EXPECTED_GRADIENTS, .n_samples = 30, .seed = 2, .stream = 1},
        {.kind = MTH_GRADIENT_SHAP, .n_samples = 30, .stdev = 0.2, .seed = 2, .stream = 1},
        {.kind = MTH_SALIENCY,
         .noise = MTH_NOISE_SMOOTHGRAD,
         .noise_n = 20,
         .noise_sigma = 0.1,
         .seed = 2,
         .stream = 1},
        {.kind = MTH_INTEGRATED_GRADIENTS,
         .n_steps = 8,
         .quadrature = MTH_QUAD_RIEMANN_MIDDLE,
         .noise = MTH_NOISE_SMOOTHGRAD_SQ,
         .noise_n = 9,
         .noise_sigma = 0.1,
         .seed = 2},
        {.kind = MTH_EXPECTED_GRADIENTS,
         .n_samples = 4,
         .noise = MTH_NOISE_VARGRAD,
         .noise_n = 9,
         .noise_sigma = 0.1,
         .seed = 2,
         .stream = 3},
    };
    const char *names[] = {"EG", "GradientSHAP", "SmoothGrad(saliency)", "SmoothGrad^2(IG)",
                           "VarGrad(EG)"};
    for (int i = 0; i < 5; i++) {
        plan_ok(&specs[i], &m);
        check_splits(names[i], &specs[i], &m, &rows);
        if (i == 0 || i == 3) { /* and without the affine head */
            g_no_head = 1;
            check_splits(i == 0 ? "EG (no head)" : "SmoothGrad^2(IG) (no head)", &specs[i], &m,
                         &rows);
            g_no_head = 0;
        }
        mth_spec_free(&specs[i]);
    }
    eng_model_free(&m);
}

static void test_plan_errors(void) {
    eng_model m;
    linear_model(&m, 6, 2, 1);
    struct {
        mth_spec s;
        const char *field;
    } bad[] = {
        {{.kind = MTH_EXPECTED_GRADIENTS, .n_samples = 0}, "n_samples"},
        {{.kind = MTH_GRADIENT_SHAP, .n_samples = 3, .stdev = -1.0}, "stdev"},
        {{.kind = MTH_GRADIENT_SHAP, .n_samples = 3, .stdev = NAN}, "stdev"},
        {{.kind = MTH_SALIENCY, .noise = MTH_NOISE_SMOOTHGRAD, .noise_n = 0}, "noise_n"},
        {{.kind = MTH_SALIENCY, .noise = MTH_NOISE_VARGRAD, .noise_n = 2, .noise_sigma = -0.1},
         "noise_sigma"},
        {{.kind = MTH_EXPECTED_GRADIENTS,
          .n_samples = 0,
          .noise = MTH_NOISE_SMOOTHGRAD,
          .noise_n = 2},
         "n_samples"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_err err = {0};
        bad[i].s.D = 6;
        int rc = mth_plan(&bad[i].s, &m, &err);
        EXPECT(rc == AT_EUSER && strstr(err.msg, bad[i].field) != NULL,
               "bad spec %zu: rc %d, message '%s' should name %s", i, rc, err.msg, bad[i].field);
        EXPECT(bad[i].s.priv == NULL, "bad spec %zu leaves priv set", i);
        mth_spec_free(&bad[i].s);
    }
    /* token-id inputs take neither interpolation nor Gaussian noise */
    eng_layer tok[] = {{.kind = ENG_LAYER_EMBEDDING, .num_embeddings = 10, .out_features = 4},
                       {.kind = ENG_LAYER_SEQ_MEAN},
                       {.kind = ENG_LAYER_LINEAR, .out_features = 2, .bias = 1}};
    eng_model mt;
    at_err terr = {0};
    EXPECT(eng_model_init(&mt, tok, 3, (int[]){5}, 1, &terr) == 0, "token model: %s", terr.msg);
    mth_spec ts[2] = {{.kind = MTH_EXPECTED_GRADIENTS, .n_samples = 2, .D = 5},
                      {.kind = MTH_SALIENCY, .noise = MTH_NOISE_SMOOTHGRAD, .noise_n = 2, .D = 5}};
    for (int i = 0; i < 2; i++) {
        at_err e2 = {0};
        EXPECT(mth_plan(&ts[i], &mt, &e2) == AT_EUSER && strstr(e2.msg, "token") != NULL,
               "token model must be refused (%d): '%s'", i, e2.msg);
        mth_spec_free(&ts[i]);
    }
    eng_model_free(&mt);
    /* the wrapper's group is owned once (ASan checks the double free) */
    mth_spec g = {.kind = MTH_SALIENCY, .noise = MTH_NOISE_SMOOTHGRAD, .noise_n = 2, .D = 6};
    g.group = calloc(6, sizeof(int32_t));
    at_err err = {0};
    EXPECT(mth_plan(&g, &m, &err) == 0, "plan with groups: %s", err.msg);
    mth_spec_free(&g);
    EXPECT(g.group == NULL && g.priv == NULL, "spec freed");
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    test_eg_linear();
    test_eg_mlp();
    test_noise_linear();
    test_noise_mlp();
    test_splits();
    test_plan_errors();
    return check_report("test_methods_grad");
}
