/* test_methods.c — quadrature rules and the gradient family against known
 * answers: on a linear model, IG = w_t * (x - baseline) for every rule,
 * saliency = |w_t|, input x gradient = x * w_t; IG completeness on a random
 * MLP; column blocks folded in order give the same result as one block. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

#include "check.h"

static const mth_quadrature RULES[] = {MTH_QUAD_RIEMANN_LEFT, MTH_QUAD_RIEMANN_RIGHT,
                                       MTH_QUAD_RIEMANN_MIDDLE, MTH_QUAD_RIEMANN_TRAPEZOID,
                                       MTH_QUAD_GAUSS_LEGENDRE};
static const char *RULE_NAMES[] = {"left", "right", "middle", "trapezoid", "gauss_legendre"};

static void test_quadrature(void) {
    double a[512], w[512];
    for (int q = 0; q < 5; q++)
        for (int n = 1; n <= 512; n += (n < 20 ? 1 : 37)) {
            at_err err = {0};
            int rc = mth_quadrature_rule(RULES[q], n, a, w, &err);
            if (RULES[q] == MTH_QUAD_RIEMANN_TRAPEZOID && n < 2) {
                EXPECT(rc == AT_EUSER, "trapezoid n=1 must be refused");
                continue;
            }
            EXPECT(rc == 0, "%s n=%d: %s", RULE_NAMES[q], n, err.msg);
            double s = 0.0;
            for (int k = 0; k < n; k++) {
                s += w[k];
                EXPECT(a[k] >= 0.0 && a[k] <= 1.0, "%s n=%d node %d = %g", RULE_NAMES[q], n, k, a[k]);
            }
            EXPECT(fabs(s - 1.0) < 1e-12, "%s n=%d weights sum to %.17g", RULE_NAMES[q], n, s);
        }
    /* Gauss-Legendre with n points integrates t^k exactly for k <= 2n-1 */
    for (int n = 1; n <= 64; n++) {
        at_err err = {0};
        mth_quadrature_rule(MTH_QUAD_GAUSS_LEGENDRE, n, a, w, &err);
        for (int k = 0; k <= 2 * n - 1 && k <= 40; k++) {
            double s = 0.0;
            for (int i = 0; i < n; i++) s += w[i] * pow(a[i], k);
            EXPECT(fabs(s - 1.0 / (k + 1)) < 1e-13, "GL n=%d: int t^%d = %.17g", n, k, s);
        }
    }
    /* Riemann nodes */
    mth_quadrature_rule(MTH_QUAD_RIEMANN_LEFT, 4, a, w, &(at_err){0});
    EXPECT(a[0] == 0.0 && a[3] == 0.75, "left nodes");
    mth_quadrature_rule(MTH_QUAD_RIEMANN_RIGHT, 4, a, w, &(at_err){0});
    EXPECT(a[0] == 0.25 && a[3] == 1.0, "right nodes");
    mth_quadrature_rule(MTH_QUAD_RIEMANN_TRAPEZOID, 5, a, w, &(at_err){0});
    EXPECT(a[0] == 0.0 && a[4] == 1.0 && w[0] == 0.125 && w[1] == 0.25, "trapezoid nodes");
}

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(3, 77, k, 0) - 1.0; }

static int g_no_head; /* 1: run IG through every layer (no affine-head reuse) */

static void run_method(const mth_spec *s, const eng_model *m, const float *x,
                       const float *b, const int32_t *t, int R, int step, float *scores) {
    const int D = m->in_features;
    mth_scratch sc;
    mth_scratch_init(&sc, m, 37); /* odd cap: pairs straddle engine batches */
    if (g_no_head) sc.head = -1;
    EXPECT(s->width == D, "gradient methods have width D");
    double *acc = calloc((size_t)R * D, sizeof(double));
    double *part = malloc(sizeof(double) * R * D);
    mth_rows rows = {.x = x, .baseline = b, .target = t, .R = R};
    for (int c0 = 0; c0 < s->n_cols; c0 += step) {
        int c1 = c0 + step < s->n_cols ? c0 + step : s->n_cols;
        memset(part, 0, sizeof(double) * R * D);
        mth_run_unit(s, m, &sc, &rows, c0, c1, part);
        mth_fold(acc, part, (size_t)R * D);
    }
    mth_finalize(s, m, &sc, &rows, acc, scores);
    free(acc);
    free(part);
    mth_scratch_free(&sc);
}

static void test_linear_model(void) {
    const int D = 20, C = 4, R = 9;
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, &spec, 1, (int[]){D}, 1, &err);
    eng_model_init_params(&m, 5);
    float x[180], b[20], scores[180];
    int32_t t[9];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(i);
    for (int d = 0; d < D; d++) b[d] = 0.1f * (float)urand(1000 + d);
    for (int r = 0; r < R; r++) t[r] = r % C;
    const float *W = m.params;
    for (int q = 0; q < 5; q++)
        for (int n = 2; n <= 64; n *= 2) {
            mth_spec s = {.kind = MTH_INTEGRATED_GRADIENTS, .n_steps = n, .quadrature = RULES[q],
                          .D = D};
            EXPECT(mth_plan(&s, &m, &err) == 0, "plan");
            run_method(&s, &m, x, b, t, R, 3, scores);
            double worst = 0.0;
            for (int r = 0; r < R; r++)
                for (int d = 0; d < D; d++) {
                    double want = (double)W[t[r] * D + d] * ((double)x[r * D + d] - b[d]);
                    double got = scores[r * D + d];
                    worst = fmax(worst, fabs(got - want) / (fabs(want) + 1e-7));
                }
            EXPECT(worst < 1e-5, "IG %s n=%d on a linear model: rel err %g", RULE_NAMES[q], n, worst);
            mth_spec_free(&s);
        }
    mth_spec sal = {.kind = MTH_SALIENCY, .abs_value = 1, .D = D},
             ixg = {.kind = MTH_INPUT_X_GRADIENT, .D = D};
    mth_plan(&sal, &m, &err);
    mth_plan(&ixg, &m, &err);
    float s2[180];
    run_method(&sal, &m, x, NULL, t, R, 1, scores);
    run_method(&ixg, &m, x, NULL, t, R, 1, s2);
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            float w = W[t[r] * D + d];
            EXPECT(scores[r * D + d] == fabsf(w), "saliency = |w_t|");
            EXPECT(fabsf(s2[r * D + d] - x[r * D + d] * w) <= 1e-7f * fabsf(x[r * D + d] * w),
                   "input x gradient = x * w_t");
        }
    mth_spec_free(&sal);
    mth_spec_free(&ixg);
    eng_model_free(&m);
}

static int sc_head_of(const eng_model *m) { return eng_model_affine_head(m); }

static void test_completeness(void) {
    const int D = 30, R = 6, C = 5;
    eng_layer specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 40, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = 40, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, specs, 5, (int[]){D}, 1, &err);
    eng_model_init_params(&m, 9);
    float x[180], b[30] = {0}, scores[180];
    int32_t t[6];
    for (int i = 0; i < R * D; i++) x[i] = (float)(2.0 * urand(5000 + i));
    for (int r = 0; r < R; r++) t[r] = (r * 3) % C;
    mth_spec s = {.kind = MTH_INTEGRATED_GRADIENTS, .n_steps = 2048,
                  .quadrature = MTH_QUAD_GAUSS_LEGENDRE, .D = D};
    mth_plan(&s, &m, &err);
    run_method(&s, &m, x, b, t, R, 2048, scores);
    eng_workspace ws;
    eng_workspace_init(&ws, &m, R + 1, ENG_F32);
    float xb[210];
    memcpy(xb, x, sizeof x);
    memcpy(xb + R * D, b, sizeof b);
    const float *lg = eng_model_forward(&m, &ws, xb, R + 1);
    for (int r = 0; r < R; r++) {
        double sum = 0.0;
        for (int d = 0; d < D; d++) sum += scores[r * D + d];
        double diff = (double)lg[r * C + t[r]] - lg[R * C + t[r]];
        EXPECT(fabs(sum - diff) <= 2e-3 * (fabs(lg[r * C + t[r]]) + fabs(lg[R * C + t[r]])),
               "IG completeness row %d: sum %g vs f(x)-f(b) %g", r, sum, diff);
    }
    /* Folding column blocks in order: one block vs blocks of 7 agree. */
    float s7[180];
    run_method(&s, &m, x, b, t, R, 7, s7);
    double worst = 0.0;
    for (int i = 0; i < R * D; i++)
        worst = fmax(worst, fabs((double)s7[i] - scores[i]) / (fabs(scores[i]) + 1e-6));
    EXPECT(worst < 1e-6, "column blocks change IG by %g", worst);
    /* The affine-head path (one product per unit) against the plain one
     * (a backward to the input per step): the same numbers up to float32
     * rounding of the per-step gradients. */
    EXPECT(sc_head_of(&m) == 0, "the MLP's first linear is an affine head");
    float plain[180];
    g_no_head = 1;
    run_method(&s, &m, x, b, t, R, 7, plain);
    g_no_head = 0;
    double dh = 0.0, sh = 0.0;
    for (int i = 0; i < R * D; i++) {
        dh = fmax(dh, fabs((double)plain[i] - s7[i]));
        sh = fmax(sh, fabs((double)plain[i]));
    }
    EXPECT(dh <= 1e-5 * sh, "affine head vs plain IG: %g of %g", dh, sh);
    eng_workspace_free(&ws);
    mth_spec_free(&s);
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    test_quadrature();
    test_linear_model();
    test_completeness();
    return check_report("test_methods");
}
