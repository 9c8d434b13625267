/* test_metrics.c — the attribution metrics (metrics.h) against closed forms
 * and naive independent re-computations in float64:
 *   agreement: Spearman, Kendall tau-b and top-k overlap against O(D^2)
 *     definitions on random vectors with and without ties; identical = 1,
 *     reversed = -1, constant = NaN;
 *   deletion / insertion: on a linear model the curve at every step is
 *     b_t + sum of w_t x over the features kept, so the AUCs are computed
 *     here from the weights (logit and softmax outputs, zero and non-zero
 *     baselines, K dividing D or not); equal scores give MoRF = LeRF;
 *   infidelity: phi = w_t on a linear model gives 0, phi = 3 w_t gives
 *     4 mean (w.I)^2 raw and 0 normalised; on an MLP both agree with a
 *     one-row-at-a-time loop regenerating the documented draws;
 *   sensitivity-max: saliency on a linear model gives 0; input x gradient
 *     gives max_j ||w (x + d_j) - w x|| / ||w x|| from the same draws;
 *   determinism: every metric is bit-identical for cap 7 and cap 64 and
 *     when the rows are split into two blocks with row0 shifted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"
#include "metrics.h"

#include "check.h"

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(11, 99, k, 0) - 1.0; }

/* ---------------------------------------------------- naive agreement */

static double naive_spearman(const float *a, const float *b, int D) {
    double *ra = malloc(sizeof(double) * D), *rb = malloc(sizeof(double) * D);
    for (int i = 0; i < D; i++) {
        int la = 0, ea = 0, lb = 0, eb = 0;
        for (int j = 0; j < D; j++) {
            la += a[j] < a[i];
            ea += a[j] == a[i];
            lb += b[j] < b[i];
            eb += b[j] == b[i];
        }
        ra[i] = 1.0 + la + 0.5 * (ea - 1);
        rb[i] = 1.0 + lb + 0.5 * (eb - 1);
    }
    double ma = 0, mb = 0;
    for (int i = 0; i < D; i++) {
        ma += ra[i] / D;
        mb += rb[i] / D;
    }
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < D; i++) {
        sxy += (ra[i] - ma) * (rb[i] - mb);
        sxx += (ra[i] - ma) * (ra[i] - ma);
        syy += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return sxy / sqrt(sxx * syy);
}

static int sgn(float v) { return (v > 0) - (v < 0); }

static double naive_kendall(const float *a, const float *b, int D) {
    double s = 0, n1 = 0, n2 = 0, n0 = 0;
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) {
            n0 += 1;
            s += sgn(a[i] - a[j]) * sgn(b[i] - b[j]);
            n1 += a[i] == a[j];
            n2 += b[i] == b[j];
        }
    return s / sqrt((n0 - n1) * (n0 - n2));
}

/* top-k by |v| by repeated scans: largest |v|, smallest index first */
static void naive_topk(const float *v, int D, int k, unsigned char *sel) {
    memset(sel, 0, (size_t)D);
    for (int t = 0; t < k; t++) {
        int best = -1;
        for (int d = 0; d < D; d++)
            if (!sel[d] && (best < 0 || fabsf(v[d]) > fabsf(v[best]))) best = d;
        sel[best] = 1;
    }
}

static double naive_overlap(const float *a, const float *b, int D, int k) {
    unsigned char *sa = malloc((size_t)D), *sb = malloc((size_t)D);
    naive_topk(a, D, k, sa);
    naive_topk(b, D, k, sb);
    int hit = 0;
    for (int d = 0; d < D; d++) hit += sa[d] && sb[d];
    free(sa);
    free(sb);
    return (double)hit / k;
}

/* equal, or both NaN (a constant row) */
static int same(double x, double y, double tol) {
    return (isnan(x) && isnan(y)) || fabs(x - y) < tol;
}

static void test_agreement(void) {
    const int R = 6;
    const int Ds[] = {784, 37, 2};
    for (int id = 0; id < 3; id++) {
        const int D = Ds[id];
        float *a = malloc(sizeof(float) * R * D), *b = malloc(sizeof(float) * R * D);
        double out[18];
        for (int ties = 0; ties < 2; ties++) {
            for (int i = 0; i < R * D; i++) {
                double u = urand(7000 + i), v = 0.6 * u + 0.4 * urand(900000 + i);
                if (ties) { /* few levels: many ties, in both and in a alone */
                    u = floor(u * 3.0);
                    v = (i % 2) ? floor(v * 4.0) : v;
                }
                a[i] = (float)u;
                b[i] = (float)v;
            }
            int k = D > 10 ? 13 : 1;
            mtr_agreement(a, b, R, D, k, out);
            for (int r = 0; r < R; r++) {
                const float *ar = a + r * D, *br = b + r * D;
                double s = naive_spearman(ar, br, D), t = naive_kendall(ar, br, D),
                       o = naive_overlap(ar, br, D, k);
                EXPECT(same(out[r * 3], s, 1e-12), "D=%d ties=%d row %d: spearman %.15g vs %.15g",
                       D, ties, r, out[r * 3], s);
                EXPECT(same(out[r * 3 + 1], t, 1e-12),
                       "D=%d ties=%d row %d: kendall %.15g vs %.15g", D, ties, r, out[r * 3 + 1],
                       t);
                EXPECT(out[r * 3 + 2] == o, "D=%d ties=%d row %d: top-k %g vs %g", D, ties, r,
                       out[r * 3 + 2], o);
            }
        }
        /* identical = 1; reversed (b = -a) = -1 with the same magnitudes */
        for (int i = 0; i < R * D; i++) {
            a[i] = (float)urand(7000 + i);
            b[i] = -a[i];
        }
        mtr_agreement(a, a, R, D, 0, out);
        for (int r = 0; r < R; r++)
            EXPECT(out[r * 3] == 1.0 && fabs(out[r * 3 + 1] - 1.0) < 1e-15 && out[r * 3 + 2] == 1.0,
                   "D=%d identical: %g %g %g", D, out[r * 3], out[r * 3 + 1], out[r * 3 + 2]);
        mtr_agreement(a, b, R, D, 0, out);
        for (int r = 0; r < R; r++)
            EXPECT(out[r * 3] == -1.0 && fabs(out[r * 3 + 1] + 1.0) < 1e-15 &&
                       out[r * 3 + 2] == 1.0,
                   "D=%d reversed: %g %g %g", D, out[r * 3], out[r * 3 + 1], out[r * 3 + 2]);
        /* a constant row: rank correlations undefined */
        for (int d = 0; d < D; d++) b[d] = 0.5f;
        mtr_agreement(a, b, 1, D, 0, out);
        EXPECT(isnan(out[0]) && isnan(out[1]), "constant row gives NaN: %g %g", out[0], out[1]);
        free(a);
        free(b);
    }
    /* a hand example: a = (1, 2, 3, 4), b = (1, 3, 2, 4): one discordant
     * pair of six, tau = 4/6; ranks d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8 */
    float a4[4] = {1, 2, 3, 4}, b4[4] = {1, 3, 2, 4};
    double o4[3];
    mtr_agreement(a4, b4, 1, 4, 2, o4);
    EXPECT(fabs(o4[0] - 0.8) < 1e-15 && fabs(o4[1] - 4.0 / 6.0) < 1e-15 && o4[2] == 0.5,
           "hand example: %g %g %g", o4[0], o4[1], o4[2]);
    EXPECT(mtr_top_k(0, 784) == 78 && mtr_top_k(0, 5) == 1 && mtr_top_k(0, 15) == 2 &&
               mtr_top_k(900, 784) == 784,
           "default top-k");
}

/* ------------------------------------------------------------- models */

static void linear_model(eng_model *m, int D, int C, uint64_t seed) {
    eng_layer spec = {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1};
    at_err err = {0};
    EXPECT(eng_model_init(m, &spec, 1, (int[]){D}, 1, &err) == 0, "model: %s", err.msg);
    eng_model_init_params(m, seed);
}

static void mlp_model(eng_model *m, int D, int C, uint64_t seed) {
    eng_layer specs[] = {{.kind = ENG_LAYER_LINEAR, .out_features = 32, .bias = 1},
                         {.kind = ENG_LAYER_TANH},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    at_err err = {0};
    EXPECT(eng_model_init(m, specs, 3, (int[]){D}, 1, &err) == 0, "model: %s", err.msg);
    eng_model_init_params(m, seed);
}

/* ------------------------------------------------ deletion / insertion */

/* v = target output of a linear model at input z, in float64 */
static double lin_out(const eng_model *m, const double *z, int t, int use_prob) {
    const int D = m->in_features, C = m->out_features;
    const float *W = m->params, *bias = m->params + m->tensors[1].off;
    double lg[16], mx = -INFINITY, s = 0.0;
    for (int c = 0; c < C; c++) {
        lg[c] = bias[c];
        for (int d = 0; d < D; d++) lg[c] += (double)W[c * D + d] * z[d];
        mx = fmax(mx, lg[c]);
    }
    if (!use_prob) return lg[t];
    for (int c = 0; c < C; c++) s += exp(lg[c] - mx);
    return exp(lg[t] - mx) / s;
}

/* The four AUCs of one row, from scratch: order by repeated scans. */
static void naive_auc(const eng_model *m, const float *x, const float *b, const float *s, int t,
                      int K, int use_prob, double *auc4) {
    const int D = m->in_features;
    int *morf = malloc(sizeof(int) * D), *lerf = malloc(sizeof(int) * D);
    unsigned char *used = calloc((size_t)D, 1);
    for (int i = 0; i < D; i++) { /* descending score, smaller index first */
        int best = -1;
        for (int d = 0; d < D; d++)
            if (!used[d] && (best < 0 || s[d] > s[best])) best = d;
        used[best] = 1;
        morf[i] = best;
    }
    memset(used, 0, (size_t)D);
    for (int i = 0; i < D; i++) {
        int best = -1;
        for (int d = 0; d < D; d++)
            if (!used[d] && (best < 0 || s[d] < s[best])) best = d;
        used[best] = 1;
        lerf[i] = best;
    }
    double *z = malloc(sizeof(double) * D);
    for (int cv = 0; cv < 4; cv++) {
        const int *ord = (cv % 2) ? lerf : morf;
        double area = 0.0, prev = 0.0, tprev = 0.0;
        for (int k = 0; k <= K; k++) {
            int n = (int)floor((double)k * D / K + 0.5);
            for (int d = 0; d < D; d++) z[d] = cv < 2 ? x[d] : (b ? b[d] : 0.0);
            for (int i = 0; i < n; i++) z[ord[i]] = cv < 2 ? (b ? b[ord[i]] : 0.0) : x[ord[i]];
            double v = lin_out(m, z, t, use_prob), tk = (double)n / D;
            if (k > 0) area += (tk - tprev) * (prev + v) / 2;
            prev = v;
            tprev = tk;
        }
        auc4[cv] = area;
    }
    free(z);
    free(used);
    free(morf);
    free(lerf);
}

static void test_deletion_linear(void) {
    const int D = 24, C = 3, R = 5;
    eng_model m;
    linear_model(&m, D, C, 21);
    const float *W = m.params, *bias = m.params + m.tensors[1].off;
    float x[120], s[120], b[24];
    int32_t t[5];
    for (int r = 0; r < R; r++) t[r] = (r + 1) % C;
    for (int d = 0; d < D; d++) b[d] = 0.3f * (float)urand(300 + d);
    mth_scratch sc;
    mth_scratch_init(&sc, &m, 7);
    mtr_config c;
    mtr_config_default(&c);
    EXPECT(mtr_config_check(&c, &m, &(at_err){0}) == 0, "defaults pass the check");
    double out[20], want[4], curves[5 * 4 * 25];

    /* The closed form: K = D, baseline 0, logit, every contribution
     * w_t x >= 0 and scores = the contributions. The MoRF deletion curve
     * after k steps is bias + (sum of the D - k smallest contributions). */
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) {
            float w = W[t[r] * D + d];
            x[r * D + d] = (w >= 0 ? 1.0f : -1.0f) * (float)(0.1 + fabs(urand(1000 + r * D + d)));
            s[r * D + d] = w * x[r * D + d];
        }
    c.n_steps = D;
    c.use_prob = 0;
    mth_rows rows = {.x = x, .baseline = NULL, .target = t, .R = R};
    mtr_deletion_insertion(&c, &m, &sc, &rows, s, out, curves);
    for (int r = 0; r < R; r++) {
        double sorted[24];
        for (int d = 0; d < D; d++) sorted[d] = s[r * D + d];
        for (int i = 0; i < D; i++) /* insertion sort, descending */
            for (int j = i; j > 0 && sorted[j] > sorted[j - 1]; j--) {
                double tmp = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = tmp;
            }
        double v[25], area = 0.0;
        for (int k = 0; k <= D; k++) {
            v[k] = bias[t[r]];
            for (int i = k; i < D; i++) v[k] += sorted[i];
            if (k > 0) area += (v[k - 1] + v[k]) / (2.0 * D);
        }
        EXPECT(fabs(out[r * 4] - area) < 1e-5 * (fabs(area) + 1),
               "closed-form deletion MoRF row %d: %.9g vs %.9g", r, out[r * 4], area);
        for (int k = 0; k <= D; k++)
            EXPECT(fabs(curves[(r * 4) * (D + 1) + k] - v[k]) < 1e-5 * (fabs(v[k]) + 1),
                   "deletion MoRF curve row %d step %d: %g vs %g", r, k,
                   curves[(r * 4) * (D + 1) + k], v[k]);
        /* removing the largest contributions first drops the curve fastest */
        EXPECT(out[r * 4] <= out[r * 4 + 1] && out[r * 4 + 2] >= out[r * 4 + 3],
               "MoRF vs LeRF ordering row %d", r);
    }

    /* General: signed x, a non-zero baseline, K not dividing D, both
     * outputs, against the naive recomputation. */
    for (int i = 0; i < R * D; i++) {
        x[i] = (float)urand(5000 + i);
        s[i] = (float)urand(8000 + i);
    }
    s[3] = s[4] = s[5]; /* ties within a row */
    rows.baseline = b;
    const int Ks[] = {20, 7, 1, 50};
    for (int ik = 0; ik < 4; ik++)
        for (int prob = 0; prob < 2; prob++) {
            c.n_steps = Ks[ik];
            c.use_prob = prob;
            mtr_deletion_insertion(&c, &m, &sc, &rows, s, out, NULL);
            double worst = 0.0;
            for (int r = 0; r < R; r++) {
                naive_auc(&m, x + r * D, b, s + r * D, t[r], Ks[ik], prob, want);
                for (int cv = 0; cv < 4; cv++)
                    worst = fmax(worst, fabs(out[r * 4 + cv] - want[cv]) / (fabs(want[cv]) + 1e-3));
            }
            EXPECT(worst < 1e-5, "deletion/insertion K=%d prob=%d: rel err %g", Ks[ik], prob,
                   worst);
        }

    /* Equal scores: both orders are the index order. */
    for (int i = 0; i < R * D; i++) s[i] = 0.25f;
    c.n_steps = 20;
    mtr_deletion_insertion(&c, &m, &sc, &rows, s, out, NULL);
    for (int r = 0; r < R; r++)
        EXPECT(out[r * 4] == out[r * 4 + 1] && out[r * 4 + 2] == out[r * 4 + 3],
               "equal scores: MoRF = LeRF row %d", r);
    mth_scratch_free(&sc);
    eng_model_free(&m);
}

/* ------------------------------------------------------------ infidelity */

static void test_infidelity(void) {
    const int D = 24, C = 3, R = 5;
    eng_model m;
    linear_model(&m, D, C, 33);
    const float *W = m.params;
    float x[120], phi[120];
    int32_t t[5];
    for (int r = 0; r < R; r++) t[r] = r % C;
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(20000 + i);
    mth_scratch sc;
    mth_scratch_init(&sc, &m, 7);
    mtr_config c;
    mtr_config_default(&c);
    c.infid_n = 40;
    c.infid_sigma = 0.1;
    c.seed = 5;
    c.stream = 2;
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 100};
    double out[10], out3[10];
    for (int r = 0; r < R; r++)
        for (int d = 0; d < D; d++) phi[r * D + d] = W[t[r] * D + d];
    mtr_infidelity(&c, &m, &sc, &rows, phi, out);
    for (int i = 0; i < R * D; i++) phi[i] *= 3.0f;
    mtr_infidelity(&c, &m, &sc, &rows, phi, out3);
    for (int r = 0; r < R; r++) {
        /* scale: E (w . I)^2 = sigma^2 |w|^2 */
        double w2 = 0.0;
        for (int d = 0; d < D; d++) w2 += (double)W[t[r] * D + d] * W[t[r] * D + d];
        double scale = c.infid_sigma * c.infid_sigma * w2;
        EXPECT(out[r * 2] < 1e-9 * scale && out[r * 2 + 1] < 1e-9 * scale,
               "phi = w on a linear model: infidelity %g, %g (scale %g)", out[r * 2],
               out[r * 2 + 1], scale);
        /* phi = 3 w: (3 a - a)^2 = 4 a^2 on average; normalised: beta = 1/3 */
        double a2 = 0.0;
        for (int j = 0; j < c.infid_n; j++) {
            double a = 0.0;
            for (int d = 0; d < D; d++) {
                double I = c.infid_sigma * at_rng_normal(5, 2 * 64 + MTR_PURPOSE_INFIDELITY,
                                                         100 + r, (uint64_t)j * D + d);
                float xi = (float)((double)x[r * D + d] - I);
                a += (double)W[t[r] * D + d] * ((double)x[r * D + d] - xi);
            }
            a2 += a * a / c.infid_n;
        }
        EXPECT(fabs(out3[r * 2] - 4.0 * a2) < 1e-5 * 4.0 * a2,
               "phi = 3 w: raw infidelity %.9g vs 4 mean a^2 = %.9g", out3[r * 2], 4.0 * a2);
        EXPECT(out3[r * 2 + 1] < 1e-9 * scale, "phi = 3 w: normalised infidelity %g",
               out3[r * 2 + 1]);
    }
    mth_scratch_free(&sc);
    eng_model_free(&m);

    /* An MLP against a one-row loop over the documented draws. */
    mlp_model(&m, D, C, 34);
    mth_scratch_init(&sc, &m, 64);
    for (int i = 0; i < R * D; i++) phi[i] = (float)urand(40000 + i);
    c.infid_n = 9;
    c.infid_sigma = 0.3;
    mtr_infidelity(&c, &m, &sc, &rows, phi, out);
    eng_workspace ws;
    eng_workspace_init(&ws, &m, 1, ENG_F32);
    float xi[24];
    for (int r = 0; r < R; r++) {
        double fx = eng_model_forward(&m, &ws, x + r * D, 1)[t[r]];
        double A[9], B[9], raw = 0, aa = 0, ab = 0, nrm = 0;
        for (int j = 0; j < c.infid_n; j++) {
            A[j] = 0.0;
            for (int d = 0; d < D; d++) {
                double I = c.infid_sigma * at_rng_normal(5, 2 * 64 + MTR_PURPOSE_INFIDELITY,
                                                         100 + r, (uint64_t)j * D + d);
                xi[d] = (float)((double)x[r * D + d] - I);
                A[j] += (double)phi[r * D + d] * ((double)x[r * D + d] - xi[d]);
            }
            B[j] = fx - eng_model_forward(&m, &ws, xi, 1)[t[r]];
            raw += (A[j] - B[j]) * (A[j] - B[j]) / c.infid_n;
            aa += A[j] * A[j];
            ab += A[j] * B[j];
        }
        for (int j = 0; j < c.infid_n; j++)
            nrm += (ab / aa * A[j] - B[j]) * (ab / aa * A[j] - B[j]) / c.infid_n;
        EXPECT(fabs(out[r * 2] - raw) < 1e-5 * raw, "MLP raw infidelity %.9g vs %.9g", out[r * 2],
               raw);
        EXPECT(fabs(out[r * 2 + 1] - nrm) < 1e-5 * nrm, "MLP normalised infidelity %.9g vs %.9g",
               out[r * 2 + 1], nrm);
        EXPECT(out[r * 2 + 1] <= out[r * 2], "normalised <= raw (beta is optimal)");
    }
    eng_workspace_free(&ws);
    mth_scratch_free(&sc);
    eng_model_free(&m);
}

/* ------------------------------------------------------ sensitivity-max */

static void test_sensitivity(void) {
    const int D = 24, C = 3, R = 5;
    eng_model m;
    linear_model(&m, D, C, 44);
    const float *W = m.params;
    float x[120];
    int32_t t[5];
    for (int r = 0; r < R; r++) t[r] = (2 * r) % C;
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(60000 + i);
    mth_scratch sc;
    mth_scratch_init(&sc, &m, 7);
    mtr_config c;
    mtr_config_default(&c);
    c.sens_n = 50;
    c.sens_radius = 0.05;
    c.seed = 8;
    c.stream = 3;
    mth_rows rows = {.x = x, .target = t, .R = R, .row0 = 40};
    at_err err = {0};
    mth_spec sal = {.kind = MTH_SALIENCY, .abs_value = 0, .D = D},
             ixg = {.kind = MTH_INPUT_X_GRADIENT, .D = D};
    EXPECT(mth_plan(&sal, &m, &err) == 0 && mth_plan(&ixg, &m, &err) == 0, "plan: %s", err.msg);
    double out[5];
    mtr_sensitivity_max(&c, &sal, &m, &sc, &rows, NULL, out);
    for (int r = 0; r < R; r++)
        EXPECT(out[r] == 0.0, "saliency on a linear model: sensitivity %g", out[r]);
    mtr_sensitivity_max(&c, &ixg, &m, &sc, &rows, NULL, out);
    for (int r = 0; r < R; r++) {
        const float *w = W + t[r] * D, *xr = x + r * D;
        double nx = 0.0, nw = 0.0, best = 0.0;
        for (int d = 0; d < D; d++) {
            nx += (double)w[d] * xr[d] * w[d] * xr[d];
            nw += (double)w[d] * w[d];
        }
        for (int j = 0; j < c.sens_n; j++) {
            double q = 0.0;
            for (int d = 0; d < D; d++) {
                double u = at_rng_uniform_f64(8, 3 * 64 + MTR_PURPOSE_SENSITIVITY, 40 + r,
                                              (uint64_t)j * D + d);
                float xp = (float)((double)xr[d] + c.sens_radius * (2.0 * u - 1.0));
                double e = (double)w[d] * ((double)xp - xr[d]);
                q += e * e;
            }
            best = fmax(best, sqrt(q / nx));
        }
        EXPECT(fabs(out[r] - best) < 1e-5 * best, "input x gradient: sensitivity %.9g vs %.9g",
               out[r], best);
        /* the sup over the L-inf ball: r ||w|| / ||w x|| */
        EXPECT(out[r] <= c.sens_radius * sqrt(nw / nx) * (1 + 1e-6) &&
                   out[r] >= 0.3 * c.sens_radius * sqrt(nw / nx),
               "sensitivity %g against the sup %g", out[r], c.sens_radius * sqrt(nw / nx));
    }
    mth_spec_free(&sal);
    mth_spec_free(&ixg);
    mth_scratch_free(&sc);
    eng_model_free(&m);
}

/* ----------------------------------------------------------- determinism */

typedef struct {
    double del[4 * 9], inf[2 * 9], sens[9], sens_given[9];
} all_out;

static void run_all(const eng_model *m, const mth_spec *ig, int cap, const float *x, const float *b,
                    const int32_t *t, const float *s, int R0, int R, int64_t row0, all_out *o) {
    const int D = m->in_features;
    mth_scratch sc;
    mth_scratch_init(&sc, m, cap);
    mtr_config c;
    mtr_config_default(&c);
    c.n_steps = 6;
    c.infid_n = 5;
    c.infid_sigma = 0.2;
    c.sens_n = 3;
    c.sens_radius = 0.1;
    c.seed = 77;
    c.stream = 1;
    mth_rows rows = {
        .x = x + (size_t)R0 * D, .baseline = b, .target = t + R0, .R = R, .row0 = row0};
    mtr_deletion_insertion(&c, m, &sc, &rows, s + (size_t)R0 * D, o->del + R0 * 4, NULL);
    mtr_infidelity(&c, m, &sc, &rows, s + (size_t)R0 * D, o->inf + R0 * 2);
    mtr_sensitivity_max(&c, ig, m, &sc, &rows, NULL, o->sens + R0);
    mtr_sensitivity_max(&c, ig, m, &sc, &rows, s + (size_t)R0 * D, o->sens_given + R0);
    mth_scratch_free(&sc);
}

static void test_determinism(void) {
    const int D = 30, C = 5, R = 9;
    eng_model m;
    mlp_model(&m, D, C, 55);
    float x[270], s[270], b[30];
    int32_t t[9];
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(80000 + i);
    for (int d = 0; d < D; d++) b[d] = 0.1f * (float)urand(90000 + d);
    for (int r = 0; r < R; r++) t[r] = (r * 3) % C;
    mth_spec ig = {.kind = MTH_INTEGRATED_GRADIENTS,
                   .n_steps = 8,
                   .quadrature = MTH_QUAD_GAUSS_LEGENDRE,
                   .D = D};
    at_err err = {0};
    EXPECT(mth_plan(&ig, &m, &err) == 0, "plan: %s", err.msg);
    { /* the scores: IG itself, so sensitivity with them given is ~ recomputed */
        mth_scratch sc;
        mth_scratch_init(&sc, &m, 64);
        mth_rows rows = {.x = x, .baseline = b, .target = t, .R = R, .row0 = 10};
        mth_attribute(&ig, &m, &sc, &rows, s);
        mth_scratch_free(&sc);
    }
    /* The same bytes for any split of the rows, at caps where a row's
     * inputs share a batch with other rows' (64) or span several (7). */
    const int caps[] = {64, 7, 23};
    all_out one, split, shifted, other;
    for (int ic = 0; ic < 3; ic++) {
        int cap = caps[ic];
        run_all(&m, &ig, cap, x, b, t, s, 0, R, 10, &one);
        run_all(&m, &ig, cap, x, b, t, s, 0, 4, 10, &split);
        run_all(&m, &ig, cap, x, b, t, s, 4, 1, 14, &split);
        run_all(&m, &ig, cap, x, b, t, s, 5, R - 5, 15, &split);
        EXPECT(memcmp(one.del, split.del, sizeof one.del) == 0,
               "cap %d: a row split changes deletion", cap);
        EXPECT(memcmp(one.inf, split.inf, sizeof one.inf) == 0,
               "cap %d: a row split changes infidelity", cap);
        EXPECT(memcmp(one.sens, split.sens, sizeof one.sens) == 0,
               "cap %d: a row split changes sensitivity", cap);
        EXPECT(memcmp(one.sens_given, split.sens_given, sizeof one.sens) == 0,
               "cap %d: a row split changes sensitivity (phi given)", cap);
    }
    /* Another cap moves rows between OpenBLAS's kernels: float32 rounding
     * of the forwards only. */
    run_all(&m, &ig, 64, x, b, t, s, 0, R, 10, &one);
    run_all(&m, &ig, 7, x, b, t, s, 0, R, 10, &other);
    double dd = 0, di = 0, ds = 0;
    for (int i = 0; i < 4 * R; i++)
        dd = fmax(dd, fabs(one.del[i] - other.del[i]) / (fabs(one.del[i]) + 1e-3));
    for (int i = 0; i < 2 * R; i++)
        di = fmax(di, fabs(one.inf[i] - other.inf[i]) / (fabs(one.inf[i]) + 1e-12));
    for (int i = 0; i < R; i++) ds = fmax(ds, fabs(one.sens[i] - other.sens[i]) / one.sens[i]);
    EXPECT(dd < 1e-6 && di < 1e-4 && ds < 1e-5,
           "cap 7 vs 64: deletion %g, infidelity %g, sensitivity %g", dd, di, ds);
    run_all(&m, &ig, 64, x, b, t, s, 0, R, 11, &shifted);
    double dr = 0;
    for (int i = 0; i < 4 * R; i++)
        dr = fmax(dr, fabs(one.del[i] - shifted.del[i]) / (fabs(one.del[i]) + 1e-3));
    EXPECT(dr < 1e-6, "deletion draws nothing: row0 moves rows in batches only (%g)", dr);
    EXPECT(memcmp(one.inf, shifted.inf, sizeof one.inf) != 0 &&
               memcmp(one.sens, shifted.sens, sizeof one.sens) != 0,
           "infidelity and sensitivity draw per row0 + r");
    for (int r = 0; r < R; r++) {
        EXPECT(one.sens[r] > 0.0 && fabs(one.sens[r] - one.sens_given[r]) < 1e-4 * one.sens[r],
               "sensitivity with phi(x) given %g vs recomputed %g", one.sens_given[r], one.sens[r]);
        EXPECT(one.inf[r * 2 + 1] <= one.inf[r * 2], "normalised <= raw");
    }
    mth_spec_free(&ig);
    eng_model_free(&m);
}

static void test_config_check(void) {
    eng_model m;
    linear_model(&m, 10, 2, 1);
    mtr_config c;
    at_err err = {0};
    mtr_config_default(&c);
    c.n_steps = 0;
    EXPECT(mtr_config_check(&c, &m, &err) == AT_EUSER && strstr(err.msg, "n_steps"),
           "n_steps 0 refused: %s", err.msg);
    mtr_config_default(&c);
    c.top_k = 11;
    at_err_clear(&err);
    EXPECT(mtr_config_check(&c, &m, &err) == AT_EUSER && strstr(err.msg, "top_k"),
           "top_k > D refused: %s", err.msg);
    mtr_config_default(&c);
    c.sens_radius = -1;
    at_err_clear(&err);
    EXPECT(mtr_config_check(&c, &m, &err) == AT_EUSER && strstr(err.msg, "sens_radius"),
           "negative radius refused: %s", err.msg);
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    test_agreement();
    test_deletion_linear();
    test_infidelity();
    test_sensitivity();
    test_determinism();
    test_config_check();
    return check_report("test_metrics");
}
