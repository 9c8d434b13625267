/* test_known_answers.c — every family against one closed form.
 *
 * On a linear model f(x) = W x + c, the target logit's attribution relative
 * to a baseline b is w_t * (x - b) for Integrated Gradients (every rule),
 * Expected Gradients (in expectation; exactly when every reference is b),
 * DeepLIFT, Shapley value sampling, KernelSHAP, LIME without a ridge,
 * occlusion with one-feature windows and feature ablation. LRP-epsilon with a
 * zero bias and a vanishing epsilon gives x * w_t (b = 0), and the noise
 * wrapper leaves a linear model's gradient unchanged. The methods are run
 * through the public interface only (mth_plan / mth_attribute), with the
 * images' (H, W) row shape the pipeline uses. Each family's own tests
 * (test_methods*, test_rules, test_perturb, test_masks) go further. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

#include "check.h"

enum { H = 4, W = 5, D = H * W, C = 3, R = 6 };

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(9, 91, k, 0) - 1.0; }

/* Worst |score - want| relative to the largest |want| over rows and features. */
static double worst_err(const float *scores, const float *x, const float *b, const float *Wt,
                        const int32_t *t) {
    double worst = 0.0, scale = 0.0;
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            double want = (double)Wt[t[r] * D + d] * ((double)x[r * D + d] - (b ? b[d] : 0.0));
            worst = fmax(worst, fabs(scores[r * D + d] - want));
            scale = fmax(scale, fabs(want));
        }
    return worst / scale;
}

static void run(const char *what, mth_spec *s, const eng_model *m, const mth_rows *rows,
                const float *Wt, double tol, int zero_baseline_want) {
    at_err err = {0};
    s->D = D;
    s->ndim = 2;
    s->shape[0] = H;
    s->shape[1] = W;
    s->seed = 5;
    int rc = mth_plan(s, m, &err);
    EXPECT(rc == 0, "%s: plan: %s", what, err.msg);
    if (rc) return;
    mth_scratch sc;
    mth_scratch_init(&sc, m, 13);
    float scores[R * D];
    mth_attribute(s, m, &sc, rows, scores);
    double e = worst_err(scores, rows->x, zero_baseline_want ? NULL : rows->baseline, Wt,
                         rows->target);
    EXPECT(e <= tol, "%s: scores differ from w_t (x - b) by %.3g (tolerance %.1g)", what, e, tol);
    mth_scratch_free(&sc);
    mth_spec_free(s);
}

int main(void) {
    eng_set_threads(1);
    eng_layer specs[] = {{.kind = ENG_LAYER_FLATTEN}, {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, specs, 2, (int[]){H, W}, 2, &err) == 0, "model: %s", err.msg);
    eng_model_init_params(&m, 3);
    const float *Wt = m.params + m.tensors[m.layers[1].tensor0].off; /* (C, D) */
    float x[R * D], b[D], refs[3 * D];
    int32_t t[R];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(i);
    for (int d = 0; d < D; d++) b[d] = 0.25f * (float)urand(500 + d);
    for (int k = 0; k < 3; k++) memcpy(refs + k * D, b, sizeof b); /* every reference = b */
    for (int r = 0; r < R; r++) t[r] = r % C;
    mth_rows rows = {.x = x, .baseline = b, .target = t, .R = R, .row0 = 40,
                     .refs = refs, .n_refs = 3};

    const mth_quadrature quads[] = {MTH_QUAD_RIEMANN_LEFT, MTH_QUAD_RIEMANN_RIGHT,
                                    MTH_QUAD_RIEMANN_MIDDLE, MTH_QUAD_RIEMANN_TRAPEZOID,
                                    MTH_QUAD_GAUSS_LEGENDRE};
    for (int q = 0; q < 5; q++) {
        /* weights summing to (n-1)/n would miss by 1/n = 14% here */
        mth_spec s = {.kind = MTH_INTEGRATED_GRADIENTS, .n_steps = 7, .quadrature = quads[q]};
        run("integrated_gradients", &s, &m, &rows, Wt, 1e-5, 0);
    }
    mth_spec eg = {.kind = MTH_EXPECTED_GRADIENTS, .n_samples = 9};
    run("expected_gradients (references = b)", &eg, &m, &rows, Wt, 1e-5, 0);
    mth_spec dl = {.kind = MTH_DEEPLIFT};
    run("deeplift", &dl, &m, &rows, Wt, 1e-5, 0);
    mth_spec shap = {.kind = MTH_SHAPLEY_SAMPLING, .n_samples = 3};
    run("shapley_sampling", &shap, &m, &rows, Wt, 1e-5, 0);
    mth_spec ks = {.kind = MTH_KERNEL_SHAP, .n_samples = 64};
    run("kernel_shap", &ks, &m, &rows, Wt, 1e-4, 0);
    mth_spec lime = {.kind = MTH_LIME, .n_samples = 200, .distance = MTH_DIST_COSINE,
                     .kernel_width = 1.0, .ridge = 0.0};
    run("lime (ridge 0)", &lime, &m, &rows, Wt, 1e-4, 0);
    mth_spec occ = {.kind = MTH_OCCLUSION, .window = {1, 1}, .stride = {1, 1}};
    run("occlusion (1x1 windows)", &occ, &m, &rows, Wt, 1e-5, 0);
    mth_spec abl = {.kind = MTH_FEATURE_ABLATION};
    run("feature_ablation", &abl, &m, &rows, Wt, 1e-5, 0);
    /* The noise wrapper: a linear model's gradient is w_t at every noisy
     * copy, so SmoothGrad of the signed saliency is exactly w_t. */
    mth_spec sgs = {.kind = MTH_SALIENCY, .abs_value = 0, .noise = MTH_NOISE_SMOOTHGRAD,
                    .noise_n = 5, .noise_sigma = 0.2};
    {
        at_err e2 = {0};
        sgs.D = D;
        sgs.ndim = 2;
        sgs.shape[0] = H;
        sgs.shape[1] = W;
        EXPECT(mth_plan(&sgs, &m, &e2) == 0, "smoothgrad plan: %s", e2.msg);
        mth_scratch sc;
        mth_scratch_init(&sc, &m, 13);
        float scores[R * D];
        mth_attribute(&sgs, &m, &sc, &rows, scores);
        double worst = 0.0;
        for (int r = 0; r < R; r++)
            for (int d = 0; d < D; d++)
                worst = fmax(worst, fabs(scores[r * D + d] - Wt[t[r] * D + d]));
        EXPECT(worst <= 1e-6, "smoothgrad of a linear model's gradient = w_t: %.3g", worst);
        mth_scratch_free(&sc);
        mth_spec_free(&sgs);
    }

    /* LRP-epsilon: zero the bias and the baseline; then R = x * w_t. */
    float *bias = m.params + m.tensors[m.layers[1].tensor0 + 1].off;
    for (int k = 0; k < C; k++) bias[k] = 0.0f;
    mth_spec lrp = {.kind = MTH_LRP, .lrp_rule = MTH_LRP_EPSILON, .lrp_epsilon = 1e-9};
    run("lrp epsilon (no bias)", &lrp, &m, &rows, Wt, 1e-5, 1);
    eng_model_free(&m);
    return check_report("test_known_answers");
}
