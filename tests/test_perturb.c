/* test_perturb.c — the perturbation family against known answers: on a
 * linear model every kind gives w_t (x - b) (per group: spread evenly, or
 * the whole group drop); occlusion windows against a direct re-computation
 * on a CNN; Shapley sampling and Kernel SHAP against exact Shapley values
 * enumerated over all 2^d coalitions (and closer with 4x the samples);
 * efficiency; feature permutation recovers a permutation of the rows; row
 * splits, column splits, engine batch sizes and the affine-head reuse do not
 * change the results; the plan refuses what cannot be computed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"

#include "check.h"

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(3, 91, k, 0) - 1.0; }

typedef struct {
    int cap;     /* engine rows per call */
    int no_head; /* 1: run every layer (no affine-head reuse) */
    int split;   /* rows [0, split) and [split, R) as two units (0: one) */
    int cstep;   /* columns per unit */
} run_opt;

/* The method over rows (folded units as opt says); acc (R, width) out if
 * not NULL; scores (R, D). */
static void run(const mth_spec *s, const eng_model *m, const float *x, const float *b,
                const int32_t *t, int R, run_opt o, double *acc_out, float *scores) {
    const int D = m->in_features, W = s->width;
    mth_scratch sc;
    mth_scratch_init(&sc, m, o.cap ? o.cap : 64);
    if (o.no_head) sc.head = -1;
    double *acc = calloc((size_t)R * W + 1, sizeof(double));
    double *part = malloc(sizeof(double) * ((size_t)R * W + 1));
    int cstep = o.cstep ? o.cstep : s->n_cols;
    int cuts[3] = {0, o.split ? o.split : R, R};
    for (int piece = 0; piece < (o.split ? 2 : 1); piece++) {
        int r0 = cuts[piece], r1 = o.split ? cuts[piece + 1] : R;
        mth_rows rows = {
            .x = x + (size_t)r0 * D, .baseline = b, .target = t + r0, .R = r1 - r0, .row0 = r0};
        for (int c0 = 0; c0 < s->n_cols; c0 += cstep) {
            int c1 = c0 + cstep < s->n_cols ? c0 + cstep : s->n_cols;
            memset(part, 0, sizeof(double) * (size_t)(r1 - r0) * W);
            mth_run_unit(s, m, &sc, &rows, c0, c1, part);
            mth_fold(acc + (size_t)r0 * W, part, (size_t)(r1 - r0) * W);
        }
    }
    mth_rows all = {.x = x, .baseline = b, .target = t, .R = R, .row0 = 0};
    mth_finalize(s, m, &sc, &all, acc, scores);
    if (acc_out) memcpy(acc_out, acc, sizeof(double) * (size_t)R * W);
    free(acc);
    free(part);
    mth_scratch_free(&sc);
}

/* Target logits of n inputs, in float64 from the float32 engine. */
static void logits_of(const eng_model *m, const float *x, const int32_t *t, int n, double *out) {
    eng_workspace ws;
    eng_workspace_init(&ws, m, n, ENG_F32);
    const float *lg = eng_model_forward(m, &ws, x, n);
    for (int i = 0; i < n; i++) out[i] = lg[(size_t)i * m->out_features + t[i]];
    eng_workspace_free(&ws);
}

static double max_rel(const float *got, const double *want, int n) {
    double e = 0.0, sc = 0.0;
    for (int i = 0; i < n; i++) {
        e = fmax(e, fabs((double)got[i] - want[i]));
        sc = fmax(sc, fabs(want[i]));
    }
    return e / (sc > 0 ? sc : 1.0);
}

static double max_abs(const double *a, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const double *a, const double *b, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static void plan_ok(mth_spec *s, const eng_model *m, const char *what) {
    at_err err = {0};
    int rc = mth_plan(s, m, &err);
    EXPECT(rc == 0, "%s: plan failed: %s", what, err.msg);
}

/* ---------------------------------------------------------------- linear */

static void test_linear(void) {
    enum { D = 20, C = 4, R = 9 };
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, &spec, 1, (int[]){D}, 1, &err);
    eng_model_init_params(&m, 5);
    float x[R * D], b[D], scores[R * D];
    int32_t t[R];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(i);
    for (int d = 0; d < D; d++) b[d] = 0.1f * (float)urand(1000 + d);
    x[3] = b[3]; /* a feature at its baseline */
    for (int r = 0; r < R; r++) t[r] = r % C;
    const float *Wt = m.params;
    double want[R * D];
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++)
            want[r * D + d] = (double)Wt[t[r] * D + d] * ((double)x[r * D + d] - b[d]);
    /* groups: 5 groups of sizes 2, 3, 4, 5, 6 */
    int32_t grp[D];
    int gsize[5] = {2, 3, 4, 5, 6}, g = 0, left = 2;
    for (int d = 0; d < D; d++) {
        grp[d] = g;
        if (--left == 0 && g < 4) left = gsize[++g];
    }
    double wantg[R * 5] = {0};
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) wantg[r * 5 + grp[d]] += want[r * D + d];
    for (int head = 0; head < 2; head++) {
        run_opt o = {.cap = 64, .no_head = !head};
        const char *hn = head ? "head" : "plain";
        mth_spec occ = {
            .kind = MTH_OCCLUSION, .D = D, .ndim = 1, .shape = {D}, .window = {1}, .stride = {1}};
        plan_ok(&occ, &m, "occlusion");
        EXPECT(occ.n_cols == D && occ.width == D, "occlusion: %d columns", occ.n_cols);
        run(&occ, &m, x, b, t, R, o, NULL, scores);
        EXPECT(max_rel(scores, want, R * D) < 1e-5, "occlusion %s: rel err %g", hn,
               max_rel(scores, want, R * D));
        EXPECT(scores[3] == 0.0f, "occlusion: a feature at the baseline scores %g", scores[3]);
        mth_spec_free(&occ);

        mth_spec abl = {.kind = MTH_FEATURE_ABLATION, .D = D};
        plan_ok(&abl, &m, "ablation");
        run(&abl, &m, x, b, t, R, o, NULL, scores);
        EXPECT(max_rel(scores, want, R * D) < 1e-5, "ablation %s: rel err %g", hn,
               max_rel(scores, want, R * D));
        EXPECT(scores[3] == 0.0f, "ablation: a feature at the baseline scores %g", scores[3]);
        mth_spec_free(&abl);

        for (int n = 1; n <= 4; n += 3) {
            mth_spec sh = {.kind = MTH_SHAPLEY_SAMPLING, .D = D, .n_samples = n, .seed = 7};
            plan_ok(&sh, &m, "shapley");
            run(&sh, &m, x, b, t, R, o, NULL, scores);
            EXPECT(max_rel(scores, want, R * D) < 1e-5, "shapley n=%d %s: rel err %g", n, hn,
                   max_rel(scores, want, R * D));
            EXPECT(scores[3] == 0.0f, "shapley: a null player scores %g", scores[3]);
            mth_spec_free(&sh);
        }

        mth_spec ks = {
            .kind = MTH_KERNEL_SHAP, .D = D, .n_samples = 61, .seed = 7}; /* one unpaired */
        plan_ok(&ks, &m, "kernel_shap");
        run(&ks, &m, x, b, t, R, o, NULL, scores);
        EXPECT(max_rel(scores, want, R * D) < 1e-5, "kernel_shap %s: rel err %g", hn,
               max_rel(scores, want, R * D));
        mth_spec_free(&ks);

        mth_spec li = {.kind = MTH_LIME,
                       .D = D,
                       .n_samples = 80,
                       .seed = 7,
                       .distance = MTH_DIST_COSINE,
                       .kernel_width = 0.75,
                       .ridge = 0.0};
        plan_ok(&li, &m, "lime");
        run(&li, &m, x, b, t, R, o, NULL, scores);
        EXPECT(max_rel(scores, want, R * D) < 1e-5, "lime %s: rel err %g", hn,
               max_rel(scores, want, R * D));
        mth_spec_free(&li);

        /* groups: Shapley, Kernel SHAP and LIME spread phi_g evenly,
         * ablation gives each feature the whole group drop */
        const mth_kind gk[4] = {MTH_SHAPLEY_SAMPLING, MTH_KERNEL_SHAP, MTH_LIME,
                                MTH_FEATURE_ABLATION};
        const char *gn[4] = {"shapley", "kernel_shap", "lime", "ablation"};
        for (int k = 0; k < 4; k++) {
            mth_spec s = {.kind = gk[k],
                          .D = D,
                          .n_samples = 12,
                          .seed = 3,
                          .n_groups = 5,
                          .distance = MTH_DIST_L2,
                          .kernel_width = 2.0};
            s.group = malloc(sizeof grp);
            memcpy(s.group, grp, sizeof grp);
            plan_ok(&s, &m, gn[k]);
            EXPECT(s.width == (gk[k] == MTH_LIME               ? 6
                               : gk[k] == MTH_FEATURE_ABLATION ? D
                                                               : 5),
                   "%s width %d", gn[k], s.width);
            run(&s, &m, x, b, t, R, o, NULL, scores);
            double wg[R * D];
            for (int r = 0; r < R; r++)
                for (int d = 0; d < D; d++)
                    wg[r * D + d] = wantg[r * 5 + grp[d]] /
                                    (gk[k] == MTH_FEATURE_ABLATION ? 1.0 : gsize[grp[d]]);
            EXPECT(max_rel(scores, wg, R * D) < 1e-5, "%s over groups %s: rel err %g", gn[k], hn,
                   max_rel(scores, wg, R * D));
            mth_spec_free(&s);
        }
    }
    eng_model_free(&m);
}

/* ---------------------------------------------------- occlusion on a CNN */

static void test_occlusion_cnn(void) {
    enum { R = 3, CH = 2, HH = 6, WW = 7, D = CH * HH * WW, C = 3 };
    eng_layer specs[] = {{.kind = ENG_LAYER_CONV2D,
                          .out_features = 4,
                          .kernel = {3, 3},
                          .padding = {1, 1},
                          .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_FLATTEN},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, specs, 4, (int[]){CH, HH, WW}, 3, &err) == 0, "cnn: %s", err.msg);
    eng_model_init_params(&m, 11);
    float x[R * D], b[D], scores[R * D];
    int32_t t[R] = {0, 2, 1};
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(7000 + i);
    for (int d = 0; d < D; d++) b[d] = 0.25f;
    mth_spec s = {.kind = MTH_OCCLUSION,
                  .D = D,
                  .ndim = 3,
                  .shape = {CH, HH, WW},
                  .window = {1, 3, 2},
                  .stride = {1, 2, 3}};
    plan_ok(&s, &m, "occlusion cnn");
    /* positions: channels 2, rows (6-3)/2+1 = 2, cols (7-2)/3+1 = 2 */
    EXPECT(s.n_cols == 8, "occlusion windows: %d, expected 8", s.n_cols);
    run(&s, &m, x, b, t, R, (run_opt){.cap = 5, .cstep = 3}, NULL, scores);
    /* direct: every window's perturbed input through the engine */
    double want[R * D] = {0}, cover[D] = {0}, fx[R];
    logits_of(&m, x, t, R, fx);
    float xp[R * D];
    for (int c = 0; c < CH; c++)
        for (int py = 0; py + 3 <= HH; py += 2)
            for (int px = 0; px + 2 <= WW; px += 3) {
                memcpy(xp, x, sizeof x);
                for (int r = 0; r < R; r++)
                    for (int y = py; y < py + 3; y++)
                        for (int xx = px; xx < px + 2; xx++)
                            xp[r * D + (c * HH + y) * WW + xx] = 0.25f;
                double fp[R];
                logits_of(&m, xp, t, R, fp);
                for (int y = py; y < py + 3; y++)
                    for (int xx = px; xx < px + 2; xx++) {
                        int d = (c * HH + y) * WW + xx;
                        cover[d] += 1.0;
                        for (int r = 0; r < R; r++) want[r * D + d] += fx[r] - fp[r];
                    }
            }
    int uncovered = 0;
    for (int d = 0; d < D; d++) {
        uncovered += cover[d] == 0.0;
        for (int r = 0; r < R; r++)
            want[r * D + d] = cover[d] > 0 ? want[r * D + d] / cover[d] : 0.0;
    }
    /* rows 0..4 and cols 0..1, 3..4 are covered in each channel */
    EXPECT(uncovered == CH * (HH * WW - 5 * 4), "uncovered features %d", uncovered);
    EXPECT(max_rel(scores, want, R * D) < 1e-5, "occlusion on a CNN: rel err %g",
           max_rel(scores, want, R * D));
    mth_spec_free(&s);
    eng_model_free(&m);
}

/* Drops computed directly: for each feature set (a window or a group) the
 * engine's forward of every row with the set at the baseline; want (R, D)
 * = the mean drop over the sets covering each feature (0 where none). */
static void direct_drops(const eng_model *m, const float *x, const float *b, const int32_t *t,
                         int R, int n_sets, const int *set_of_feature_in /* (n_sets, D) 0/1 */,
                         double *want) {
    const int D = m->in_features;
    double *fx = malloc(sizeof(double) * R), *fp = malloc(sizeof(double) * R);
    double *cover = calloc((size_t)D, sizeof(double));
    float *xp = malloc(sizeof(float) * (size_t)R * D);
    memset(want, 0, sizeof(double) * (size_t)R * D);
    logits_of(m, x, t, R, fx);
    for (int k = 0; k < n_sets; k++) {
        const int *in = set_of_feature_in + (size_t)k * D;
        memcpy(xp, x, sizeof(float) * (size_t)R * D);
        for (int r = 0; r < R; r++)
            for (int d = 0; d < D; d++)
                if (in[d]) xp[(size_t)r * D + d] = b[d];
        logits_of(m, xp, t, R, fp);
        for (int d = 0; d < D; d++)
            if (in[d]) {
                cover[d] += 1.0;
                for (int r = 0; r < R; r++) want[(size_t)r * D + d] += fx[r] - fp[r];
            }
    }
    for (int d = 0; d < D; d++)
        for (int r = 0; r < R; r++)
            want[(size_t)r * D + d] = cover[d] > 0 ? want[(size_t)r * D + d] / cover[d] : 0.0;
    free(fx);
    free(fp);
    free(cover);
    free(xp);
}

/* The local CNN path (receptive-field recomputation) on strides, padding,
 * dilation, max/avg pools and batch norm, against direct forwards. */
static void test_local_cnn(void) {
    enum { R = 5, CH = 2, HH = 11, WW = 12, D = CH * HH * WW };
    eng_layer specs[] = {
        {.kind = ENG_LAYER_CONV2D,
         .out_features = 5,
         .kernel = {3, 3},
         .padding = {2, 1},
         .dilation = {2, 1},
         .bias = 1},
        {.kind = ENG_LAYER_BATCHNORM2D, .affine = 1},
        {.kind = ENG_LAYER_GELU},
        {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}},
        {.kind = ENG_LAYER_CONV2D,
         .out_features = 6,
         .kernel = {3, 2},
         .stride = {2, 1},
         .bias = 1},
        {.kind = ENG_LAYER_TANH},
        {.kind = ENG_LAYER_AVGPOOL2D, .kernel = {2, 2}, .stride = {1, 1}, .count_include_pad = 1},
        {.kind = ENG_LAYER_FLATTEN},
        {.kind = ENG_LAYER_LINEAR, .out_features = 8, .bias = 1},
        {.kind = ENG_LAYER_RELU},
        {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
    eng_model m;
    at_err err = {0};
    EXPECT(eng_model_init(&m, specs, 11, (int[]){CH, HH, WW}, 3, &err) == 0, "cnn: %s", err.msg);
    eng_model_init_params(&m, 23);
    for (int k = 0; k < m.n_tensors; k++) { /* batch norm statistics that matter */
        const eng_tensor *te = &m.tensors[k];
        if (te->layer != 1) continue;
        for (size_t i = 0; i < te->numel; i++)
            m.params[te->off + i] = strstr(te->name, "var") ? 0.5f + (float)(urand(300 + i) + 1.0)
                                                            : (float)urand(400 + 10 * k + i);
    }
    float x[R * D], b[D], scores[R * D];
    int32_t t[R] = {2, 0, 1, 1, 0};
    for (int i = 0; i < R * D; i++) x[i] = (float)(2.0 * urand(20000 + i));
    for (int d = 0; d < D; d++) b[d] = (float)(0.2 * urand(21000 + d));
    double want[R * D];
    int *sets = calloc((size_t)64 * D, sizeof(int));
    /* occlusion: windows (2, 3, 2) at stride (1, 2, 3) */
    mth_spec s = {.kind = MTH_OCCLUSION,
                  .D = D,
                  .ndim = 3,
                  .shape = {CH, HH, WW},
                  .window = {2, 3, 2},
                  .stride = {1, 2, 3}};
    plan_ok(&s, &m, "occlusion local");
    int n = 0;
    for (int py = 0; py + 3 <= HH; py += 2)
        for (int px = 0; px + 2 <= WW; px += 3, n++)
            for (int c = 0; c < CH; c++)
                for (int y = py; y < py + 3; y++)
                    for (int xx = px; xx < px + 2; xx++)
                        sets[(size_t)n * D + (c * HH + y) * WW + xx] = 1;
    EXPECT(s.n_cols == n, "occlusion local: %d windows, expected %d", s.n_cols, n);
    direct_drops(&m, x, b, t, R, n, sets, want);
    double *a0 = malloc(sizeof(double) * R * D), *a1 = malloc(sizeof(double) * R * D);
    run(&s, &m, x, b, t, R, (run_opt){.cap = 5, .cstep = 4}, a0, scores);
    EXPECT(max_rel(scores, want, R * D) < 1e-5, "occlusion through strides/pools/bn: rel err %g",
           max_rel(scores, want, R * D));
    run(&s, &m, x, b, t, R, (run_opt){.cap = 5, .cstep = 4, .split = 2}, a1, scores);
    EXPECT(memcmp(a0, a1, sizeof(double) * R * D) == 0, "local occlusion: row split differs");
    free(a0);
    free(a1);
    mth_spec_free(&s);
    /* ablation over 3x4 patches */
    int32_t grp[D];
    const int P = mth_groups_grid(3, (int[]){CH, HH, WW}, (int[]){3, 4}, grp);
    memset(sets, 0, sizeof(int) * 64 * D);
    for (int d = 0; d < D; d++) sets[(size_t)grp[d] * D + d] = 1;
    direct_drops(&m, x, b, t, R, P, sets, want);
    mth_spec ab = {.kind = MTH_FEATURE_ABLATION, .D = D, .n_groups = P};
    ab.group = malloc(sizeof grp);
    memcpy(ab.group, grp, sizeof grp);
    plan_ok(&ab, &m, "ablation local");
    run(&ab, &m, x, b, t, R, (run_opt){.cap = 64}, NULL, scores);
    EXPECT(max_rel(scores, want, R * D) < 1e-5, "ablation through strides/pools/bn: rel err %g",
           max_rel(scores, want, R * D));
    mth_spec_free(&ab);
    /* permutation over the same patches: each row's drop on group g must be
     * the direct drop of taking g from one row q, q a permutation of rows */
    mth_spec pe = {.kind = MTH_FEATURE_PERMUTATION, .D = D, .n_groups = P, .seed = 8};
    pe.group = malloc(sizeof grp);
    memcpy(pe.group, grp, sizeof grp);
    plan_ok(&pe, &m, "permutation local");
    run(&pe, &m, x, NULL, t, R, (run_opt){.cap = 64}, NULL, scores);
    double fx[R], fq[R];
    float *xq = malloc(sizeof(float) * R * D);
    int32_t tq[R];
    logits_of(&m, x, t, R, fx);
    int moved = 0;
    for (int g = 0; g < P; g++) {
        int used[R] = {0}, bij = 1;
        for (int r = 0; r < R; r++) {
            for (int q = 0; q < R; q++) { /* x_r with group g from row q */
                memcpy(xq + q * D, x + r * D, sizeof(float) * D);
                for (int d = 0; d < D; d++)
                    if (grp[d] == g) xq[q * D + d] = x[q * D + d];
                tq[q] = t[r];
            }
            logits_of(&m, xq, tq, R, fq);
            int found = -1;
            for (int q = 0; q < R && found < 0; q++) {
                int ok = 1;
                double drop = fx[r] - fq[q];
                for (int d = 0; d < D; d++)
                    if (grp[d] == g)
                        ok &= fabs(scores[r * D + d] - drop) <= 1e-5 * (1.0 + fabs(drop));
                if (ok) found = q;
            }
            EXPECT(found >= 0, "local permutation group %d row %d: no row's drop", g, r);
            if (found >= 0) {
                bij &= !used[found];
                used[found] = 1;
                moved += found != r;
            }
        }
        EXPECT(bij, "local permutation group %d: not a permutation of the rows", g);
    }
    EXPECT(moved >= P * R / 2, "local permutation moved only %d of %d", moved, P * R);
    free(xq);
    mth_spec_free(&pe);
    free(sets);
    eng_model_free(&m);
}

/* ------------------------------------------------- exact Shapley values */

/* exact[r * P + i] by enumerating every coalition of the P groups. */
static void exact_shapley(const eng_model *m, const float *x, const float *b, const int32_t *t,
                          int R, const int32_t *grp, int P, double *exact) {
    const int D = m->in_features, NS = 1 << P;
    float *xs = malloc(sizeof(float) * (size_t)NS * D);
    int32_t *ts = malloc(sizeof(int32_t) * NS);
    double *f = malloc(sizeof(double) * NS), fact[16];
    fact[0] = 1;
    for (int i = 1; i < 16; i++) fact[i] = fact[i - 1] * i;
    for (int r = 0; r < R; r++) {
        for (int S = 0; S < NS; S++) {
            for (int d = 0; d < D; d++)
                xs[(size_t)S * D + d] = (S >> grp[d]) & 1 ? x[r * D + d] : b[d];
            ts[S] = t[r];
        }
        logits_of(m, xs, ts, NS, f);
        for (int i = 0; i < P; i++) {
            double phi = 0.0;
            for (int S = 0; S < NS; S++) {
                if ((S >> i) & 1) continue;
                int k = __builtin_popcount((unsigned)S);
                phi += fact[k] * fact[P - k - 1] / fact[P] * (f[S | (1 << i)] - f[S]);
            }
            exact[r * P + i] = phi;
        }
    }
    free(xs);
    free(ts);
    free(f);
}

static double err_vs_exact(const float *scores, const double *exact, const int32_t *grp,
                           const int *gsz, int R, int D, int P) {
    double e = 0.0, n = 0.0;
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            double w = exact[r * P + grp[d]] / gsz[grp[d]];
            e += (scores[r * D + d] - w) * (scores[r * D + d] - w);
            n += w * w;
        }
    return sqrt(e / n);
}

static void test_exact_shapley(void) {
    enum { D = 12, P = 8, R = 4, C = 3 };
    eng_layer specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 24, .bias = 1},
                         {.kind = ENG_LAYER_TANH},
                         {.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, specs, 5, (int[]){D}, 1, &err);
    eng_model_init_params(&m, 13);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] *= 2.0f; /* stronger interactions */
    float x[R * D], b[D];
    int32_t t[R] = {0, 1, 2, 0};
    for (int i = 0; i < R * D; i++) x[i] = (float)(1.5 * urand(9000 + i));
    for (int d = 0; d < D; d++) b[d] = 0.1f * (float)urand(9500 + d);
    int32_t grp[D] = {0, 0, 1, 1, 2, 3, 4, 5, 5, 6, 7, 7};
    int gsz[P] = {2, 2, 1, 1, 1, 2, 1, 2};
    double exact[R * P], fx[R], fb[R];
    exact_shapley(&m, x, b, t, R, grp, P, exact);
    float bb[R * D];
    for (int r = 0; r < R; r++) memcpy(bb + r * D, b, sizeof b);
    logits_of(&m, x, t, R, fx);
    logits_of(&m, bb, t, R, fb);
    for (int r = 0; r < R; r++) { /* the enumeration itself is efficient */
        double s = 0.0;
        for (int i = 0; i < P; i++) s += exact[r * P + i];
        EXPECT(fabs(s - (fx[r] - fb[r])) < 1e-5, "exact Shapley efficiency row %d", r);
    }
    const mth_kind kinds[2] = {MTH_SHAPLEY_SAMPLING, MTH_KERNEL_SHAP};
    const int n_lo[2] = {10, 24};
    const double lim_lo[2] = {0.15, 0.3}, lim_hi[2] = {0.08, 0.1};
    for (int k = 0; k < 2; k++) {
        double e[2];
        for (int q = 0; q < 2; q++) {
            mth_spec s = {.kind = kinds[k],
                          .D = D,
                          .n_samples = n_lo[k] << (2 * q),
                          .seed = 21,
                          .n_groups = P};
            s.group = malloc(sizeof grp);
            memcpy(s.group, grp, sizeof grp);
            plan_ok(&s, &m, "exact");
            float scores[R * D];
            run(&s, &m, x, b, t, R, (run_opt){.cap = 64}, NULL, scores);
            e[q] = err_vs_exact(scores, exact, grp, gsz, R, D, P);
            for (int r = 0; r < R; r++) {
                double sum = 0.0;
                for (int d = 0; d < D; d++) sum += scores[r * D + d];
                double dd = fx[r] - fb[r];
                EXPECT(fabs(sum - dd) <= 1e-5 * fmax(1.0, fabs(dd)),
                       "%s efficiency row %d: sum %.9g vs f(x)-f(b) %.9g",
                       kinds[k] == MTH_KERNEL_SHAP ? "kernel_shap" : "shapley", r, sum, dd);
            }
            mth_spec_free(&s);
        }
        printf("%s vs exact Shapley (8 groups): rel L2 err %.4f at n=%d, %.4f at n=%d\n",
               k ? "kernel_shap" : "shapley_sampling", e[0], n_lo[k], e[1], 4 * n_lo[k]);
        EXPECT(e[0] < lim_lo[k], "%s: rel err %g at n=%d", k ? "kernel_shap" : "shapley", e[0],
               n_lo[k]);
        EXPECT(e[1] < 0.7 * e[0] && e[1] < lim_hi[k], "%s: 4x samples err %g not below 0.7 x %g",
               k ? "kernel_shap" : "shapley", e[1], e[0]);
    }
    eng_model_free(&m);
}

/* ----------------------------------------------------------- permutation */

static void test_permutation(void) {
    enum { D = 10, R = 7, P = 4 };
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = 1, .bias = 1};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, &spec, 1, (int[]){D}, 1, &err);
    eng_model_init_params(&m, 17);
    float x[R * D], scores[R * D];
    int32_t t[R] = {0};
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(12000 + i);
    int32_t grp[D] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 3};
    const float *w = m.params;
    for (int head = 0; head < 2; head++) {
        mth_spec s = {
            .kind = MTH_FEATURE_PERMUTATION, .D = D, .n_groups = P, .seed = 5, .stream = 2};
        s.group = malloc(sizeof grp);
        memcpy(s.group, grp, sizeof grp);
        plan_ok(&s, &m, "permutation");
        EXPECT(s.n_cols == P && s.width == D, "permutation: %d columns", s.n_cols);
        run(&s, &m, x, NULL, t, R, (run_opt){.cap = 3, .no_head = !head, .cstep = 1}, NULL, scores);
        /* drop = sum_{d in g} w_d (x_rd - x_sd): recover row s per group */
        int moved = 0;
        for (int g = 0; g < P; g++) {
            int used[R] = {0}, bij = 1;
            for (int r = 0; r < R; r++) {
                int found = -1;
                for (int q = 0; q < R && found < 0; q++) {
                    double drop = 0.0;
                    for (int d = 0; d < D; d++)
                        if (grp[d] == g) drop += (double)w[d] * (x[r * D + d] - x[q * D + d]);
                    int ok = 1;
                    for (int d = 0; d < D; d++)
                        if (grp[d] == g)
                            ok &= fabs(scores[r * D + d] - drop) <= 1e-5 * (1.0 + fabs(drop));
                    if (ok) found = q;
                }
                EXPECT(found >= 0, "permutation group %d row %d: drop is no row's", g, r);
                if (found >= 0) {
                    bij &= !used[found];
                    used[found] = 1;
                    moved += found != r;
                }
            }
            EXPECT(bij, "permutation group %d: not a permutation of the rows", g);
        }
        EXPECT(moved >= P * R / 2, "permutation moved only %d of %d rows", moved, P * R);
        /* one row: nothing to permute with */
        run(&s, &m, x, NULL, t, 1, (run_opt){.cap = 3, .no_head = !head}, NULL, scores);
        int zero = 1;
        for (int d = 0; d < D; d++) zero &= scores[d] == 0.0f;
        EXPECT(zero, "permutation with R = 1 must give 0");
        mth_spec_free(&s);
    }
    eng_model_free(&m);
}

/* ------------------------------------------------------------ invariance */

static void test_invariance(void) {
    enum { D = 36, R = 9, C = 5 };
    eng_layer specs[] = {{.kind = ENG_LAYER_FLATTEN},
                         {.kind = ENG_LAYER_LINEAR, .out_features = 32, .bias = 1},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, specs, 4, (int[]){6, 6}, 2, &err);
    eng_model_init_params(&m, 19);
    float x[R * D], b[D] = {0};
    int32_t t[R];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(15000 + i);
    for (int i = 0; i < 6; i++) x[2 * D + i] = 0.0f; /* some groups at the baseline */
    for (int r = 0; r < R; r++) t[r] = (r * 2) % C;
    int32_t grp[D];
    const int P = mth_groups_grid(2, (int[]){6, 6}, (int[]){2, 3}, grp);
    EXPECT(P == 6, "patch grid: %d groups", P);
    const mth_kind kinds[6] = {
        MTH_OCCLUSION, MTH_FEATURE_ABLATION,   MTH_SHAPLEY_SAMPLING, MTH_KERNEL_SHAP,
        MTH_LIME,      MTH_FEATURE_PERMUTATION};
    const char *names[6] = {"occlusion",   "ablation", "shapley",
                            "kernel_shap", "lime",     "permutation"};
    for (int k = 0; k < 6; k++)
        for (int head = 0; head < 2; head++) {
            mth_spec s = {.kind = kinds[k],
                          .D = D,
                          .ndim = 2,
                          .shape = {6, 6},
                          .window = {2, 3},
                          .stride = {1, 2},
                          .n_samples = 14,
                          .seed = 4,
                          .stream = 1,
                          .n_groups = P,
                          .distance = MTH_DIST_COSINE,
                          .kernel_width = 1.0,
                          .ridge = 0.01};
            s.group = malloc(sizeof grp);
            memcpy(s.group, grp, sizeof grp);
            plan_ok(&s, &m, names[k]);
            const int W = s.width;
            double *a0 = malloc(sizeof(double) * R * W), *a1 = malloc(sizeof(double) * R * W);
            float s0[R * D], s1[R * D];
            run_opt o = {.cap = 64, .no_head = !head};
            run(&s, &m, x, b, t, R, o, a0, s0);
            const double sc0 = max_abs(a0, R * W);
            /* rows [0,4) and [4,9) as two units: the same bytes (one row
             * per engine call) */
            if (kinds[k] != MTH_FEATURE_PERMUTATION) { /* the unit is the batch there */
                o.split = 4;
                run(&s, &m, x, b, t, R, o, a1, s1);
                EXPECT(memcmp(a0, a1, sizeof(double) * R * W) == 0,
                       "%s head=%d: rows [0,4)+[4,9) differ from [0,9)", names[k], head);
                o.split = 0;
            }
            /* engine batches of 7 rows: the same up to float32 rounding of
             * the logits (OpenBLAS's SGEMM rounds a row differently at
             * another batch size or position) */
            o.cap = 7;
            run(&s, &m, x, b, t, R, o, a1, s1);
            EXPECT(max_diff(a0, a1, R * W) <= 1e-6 * sc0, "%s head=%d: cap 7 vs 64: %g of %g",
                   names[k], head, max_diff(a0, a1, R * W), sc0);
            /* column blocks of 3 folded in order: the same up to float32
             * rounding; with one column per engine call (cap = the
             * column's forward passes) the same to float64 rounding */
            o.cstep = 3;
            run(&s, &m, x, b, t, R, o, a1, s1);
            EXPECT(max_diff(a0, a1, R * W) <= 1e-6 * sc0, "%s head=%d: column blocks: %g of %g",
                   names[k], head, max_diff(a0, a1, R * W), sc0);
            o.cap = kinds[k] == MTH_SHAPLEY_SAMPLING ? P - 1 : 1;
            o.cstep = 0;
            run(&s, &m, x, b, t, R, o, a0, s1);
            o.cstep = 3;
            run(&s, &m, x, b, t, R, o, a1, s1);
            EXPECT(max_diff(a0, a1, R * W) <= 1e-12 * sc0,
                   "%s head=%d: column blocks of 3, one column per call: %g of %g", names[k], head,
                   max_diff(a0, a1, R * W), sc0);
            /* the affine-head reuse against every layer run */
            if (head) {
                float sp[R * D];
                run(&s, &m, x, b, t, R, (run_opt){.cap = 64, .no_head = 1}, NULL, sp);
                double dh = 0.0, sh = 0.0;
                for (int i = 0; i < R * D; i++) {
                    dh = fmax(dh, fabs((double)sp[i] - s0[i]));
                    sh = fmax(sh, fabs((double)sp[i]));
                }
                EXPECT(dh <= 2e-5 * sh, "%s: affine head vs plain %g of %g", names[k], dh, sh);
            }
            free(a0);
            free(a1);
            mth_spec_free(&s);
        }
    eng_model_free(&m);
}

/* ---------------------------------------------------------------- plans */

static void test_plan_errors(void) {
    enum { D = 20 };
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1};
    eng_model m;
    at_err err = {0};
    eng_model_init(&m, &spec, 1, (int[]){D}, 1, &err);
    mth_spec ks = {.kind = MTH_KERNEL_SHAP, .D = D, .n_samples = 12};
    at_err e1 = {0};
    EXPECT(mth_plan(&ks, &m, &e1) == AT_EUSER && strstr(e1.msg, "n_samples = 12") &&
               strstr(e1.msg, "20 groups") && strstr(e1.msg, "at least 38"),
           "kernel_shap with too few coalitions: '%s'", e1.msg);
    mth_spec_free(&ks);
    mth_spec li = {
        .kind = MTH_LIME, .D = D, .n_samples = 6, .kernel_width = 1.0, .distance = MTH_DIST_COSINE};
    at_err e2 = {0};
    EXPECT(mth_plan(&li, &m, &e2) == AT_EUSER && strstr(e2.msg, "ridge"),
           "lime singular without a ridge: '%s'", e2.msg);
    mth_spec_free(&li);
    li = (mth_spec){.kind = MTH_LIME,
                    .D = D,
                    .n_samples = 6,
                    .kernel_width = 1.0,
                    .distance = MTH_DIST_COSINE,
                    .ridge = 0.1};
    at_err e3 = {0};
    EXPECT(mth_plan(&li, &m, &e3) == 0, "lime with a ridge: %s", e3.msg);
    mth_spec_free(&li);
    mth_spec ab = {.kind = MTH_FEATURE_ABLATION, .D = D, .n_groups = 3};
    ab.group = calloc(D, sizeof(int32_t)); /* groups 1 and 2 empty */
    at_err e4 = {0};
    EXPECT(mth_plan(&ab, &m, &e4) == AT_EUSER && strstr(e4.msg, "group 1"), "empty group: '%s'",
           e4.msg);
    mth_spec_free(&ab);
    mth_spec oc = {
        .kind = MTH_OCCLUSION, .D = D, .ndim = 1, .shape = {D}, .window = {21}, .stride = {1}};
    at_err e5 = {0};
    EXPECT(mth_plan(&oc, &m, &e5) == AT_EUSER && strstr(e5.msg, "window[0]"),
           "window larger than the input: '%s'", e5.msg);
    mth_spec_free(&oc);
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    test_linear();
    test_occlusion_cnn();
    test_local_cnn();
    test_exact_shapley();
    test_permutation();
    test_invariance();
    test_plan_errors();
    return check_report("test_perturb");
}
