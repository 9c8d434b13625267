/* test_masks.c — the mask family (masks.c): the QMC design and Jansen's
 * estimators on the Ishigami function (known indices), the design against
 * plain Monte Carlo, sobol on a linear model (closed form), sobol and rise
 * against independent recomputations in this file, rise on constant and
 * combined outputs, and the invariances of the grid: row blocks (bit
 * identical), column blocks (folded) and engine batch sizes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "methods.h"
#include "mth_family.h"

#include "check.h"

static const double PI = 3.14159265358979323846;

static double urand(uint64_t k) { return 2.0 * at_rng_uniform_f64(11, 99, k, 0) - 1.0; }

/* ------------------------------------------------------------ Ishigami */

static void ishigami(void *ctx, const double *u, int n, double *out) {
    int *calls = ctx;
    (*calls)++;
    for (int k = 0; k < n; k++) {
        double x1 = -PI + 2 * PI * u[3 * k], x2 = -PI + 2 * PI * u[3 * k + 1],
               x3 = -PI + 2 * PI * u[3 * k + 2];
        out[k] = sin(x1) + 7.0 * sin(x2) * sin(x2) + 0.1 * pow(x3, 4) * sin(x1);
    }
}

static void test_ishigami(void) {
    const double S[3] = {0.3139, 0.4424, 0.0}, ST[3] = {0.5576, 0.4424, 0.2437};
    double worst_s = 0, worst_t = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        double first[3], total[3];
        int calls = 0;
        int rc = mth_sobol_indices(3, 4096, seed, ishigami, &calls, first, total);
        EXPECT(rc == 0 && calls > 0, "mth_sobol_indices returned %d", rc);
        for (int i = 0; i < 3; i++) {
            worst_s = fmax(worst_s, fabs(first[i] - S[i]));
            worst_t = fmax(worst_t, fabs(total[i] - ST[i]));
        }
        printf("ishigami seed %d: S %.4f %.4f %.4f  ST %.4f %.4f %.4f\n", (int)seed, first[0],
               first[1], first[2], total[0], total[1], total[2]);
    }
    EXPECT(worst_t < 0.01, "Ishigami total-order error %g", worst_t);
    EXPECT(worst_s < 0.01, "Ishigami first-order error %g", worst_s);
    double f[3], t[3];
    EXPECT(mth_sobol_indices(0, 64, 1, ishigami, NULL, f, t) == AT_EUSER, "P = 0 refused");
    EXPECT(mth_sobol_indices(3, 1, 1, ishigami, NULL, f, t) == AT_EUSER, "N = 1 refused");
}

/* --------------------------------------------- the design, against MC */

typedef struct {
    int P, N;
    double *a; /* (N, P) the A points seen */
    int cols, bad;
} capture;

static void capture_f(void *ctx, const double *u, int n, double *out) {
    capture *cp = ctx;
    const int P = cp->P, K = P + 2;
    EXPECT(n % K == 0, "f called with %d points: not whole columns of %d", n, K);
    for (int c = 0; c < n / K; c++, cp->cols++) {
        const double *A = u + (size_t)c * K * P, *B = A + P;
        memcpy(cp->a + (size_t)cp->cols * P, A, (size_t)P * sizeof(double));
        for (int i = 0; i < P; i++) {
            const double *Ci = A + (size_t)(2 + i) * P;
            for (int v = 0; v < P; v++)
                if (Ci[v] != (v == i ? B[v] : A[v])) cp->bad++;
            if (!(A[i] > 0.0 && A[i] < 1.0 && B[i] > 0.0 && B[i] < 1.0)) cp->bad++;
        }
    }
    for (int k = 0; k < n; k++) out[k] = u[(size_t)k * P];
}

/* prod (1 + a_i (u_i - 1/2)), a_i = 2 / (i + 1): integral 1 */
static double smooth(const double *u, int P) {
    double g = 1.0;
    for (int i = 0; i < P; i++) g *= 1.0 + 2.0 / (i + 1) * (u[i] - 0.5);
    return g;
}

static void test_design(void) {
    const int dims[2] = {8, 64}, Ns[2] = {1024, 256};
    for (int t = 0; t < 2; t++) {
        const int P = dims[t], N = Ns[t], reps = 16;
        capture cp = {.P = P, .N = N, .a = malloc(sizeof(double) * N * P)};
        double se_q = 0, se_mc = 0, first[64], total[64];
        for (int rep = 0; rep < reps; rep++) {
            cp.cols = 0;
            mth_sobol_indices(P, N, 100 + rep, capture_f, &cp, first, total);
            EXPECT(cp.cols == N, "columns %d of %d", cp.cols, N);
            double q = 0, mc = 0;
            double *u = malloc(sizeof(double) * P);
            for (int j = 0; j < N; j++) {
                q += smooth(cp.a + (size_t)j * P, P);
                for (int i = 0; i < P; i++)
                    u[i] = at_rng_uniform_f64(7 + rep, 5, (uint64_t)j, (uint64_t)i);
                mc += smooth(u, P);
            }
            free(u);
            se_q += (q / N - 1) * (q / N - 1);
            se_mc += (mc / N - 1) * (mc / N - 1);
            if (rep == 0) { /* N a power of two: every coordinate stratified */
                int unstrat = 0;
                int *hit = calloc((size_t)N, sizeof(int));
                for (int i = 0; i < P; i++) {
                    memset(hit, 0, sizeof(int) * N);
                    for (int j = 0; j < N; j++) hit[(int)(cp.a[(size_t)j * P + i] * N)]++;
                    for (int k = 0; k < N; k++) unstrat += hit[k] != 1;
                }
                free(hit);
                EXPECT(unstrat == 0, "P %d: %d intervals of 1/N not hit exactly once", P, unstrat);
            }
        }
        double rq = sqrt(se_q / reps), rmc = sqrt(se_mc / reps);
        printf("design dim %d N %d: rmse QMC %.3g  MC %.3g  (ratio %.1f)\n", 2 * P, N, rq, rmc,
               rmc / rq);
        EXPECT(rq * 4 < rmc, "dim %d: QMC rmse %g not clearly below MC's %g", 2 * P, rq, rmc);
        EXPECT(cp.bad == 0, "%d design entries wrong (C_i = A with coordinate i from B)", cp.bad);
        free(cp.a);
    }
}

/* ------------------------------------------------------------ helpers */

/* partial (R, width) over columns [c0, c1) with a scratch of cap rows. */
static double *run_partial(const mth_spec *s, const eng_model *m, int cap, int no_head,
                           const float *x, const float *b, const int32_t *t, int R, int64_t row0,
                           int c0, int c1) {
    mth_scratch sc;
    mth_scratch_init(&sc, m, cap);
    if (no_head) sc.head = -1;
    double *p = calloc((size_t)R * s->width + 1, sizeof(double));
    mth_rows rows = {.x = x, .baseline = b, .target = t, .R = R, .row0 = row0};
    mth_run_unit(s, m, &sc, &rows, c0, c1, p);
    mth_scratch_free(&sc);
    return p;
}

static void finalize(const mth_spec *s, const eng_model *m, const double *acc, const float *x,
                     const float *b, const int32_t *t, int R, float *scores) {
    mth_scratch sc;
    mth_scratch_init(&sc, m, 8);
    mth_rows rows = {.x = x, .baseline = b, .target = t, .R = R};
    mth_finalize(s, m, &sc, &rows, acc, scores);
    mth_scratch_free(&sc);
}

/* Row blocks [0, R1), [R1, R) (row0 shifted) give the same bytes; column
 * blocks [0, k), [k, n) folded agree with one block, and cap 7 with cap 61,
 * to tol relative. tol is 1e-12 where the engine's result for a row does
 * not depend on the batch's size (small layers, the head path); with
 * OpenBLAS sgemm on layers of ~100+ inputs it does (about 1e-8 relative,
 * the batch sizes differ), and the partials inherit it. */
static void check_invariance(const char *name, const mth_spec *s, const eng_model *m, int no_head,
                             const float *x, const float *b, const int32_t *t, int R, double tol) {
    const int D = m->in_features, W = s->width, n = s->n_cols, R1 = R / 2 + 1, k = n / 3 + 1;
    const size_t N = (size_t)R * W;
    double *one = run_partial(s, m, 61, no_head, x, b, t, R, 0, 0, n);
    double *lo = run_partial(s, m, 61, no_head, x, b, t, R1, 0, 0, n);
    double *hi = run_partial(s, m, 61, no_head, x + (size_t)R1 * D, b, t + R1, R - R1, R1, 0, n);
    EXPECT(memcmp(one, lo, sizeof(double) * R1 * W) == 0 &&
               memcmp(one + (size_t)R1 * W, hi, sizeof(double) * (R - R1) * W) == 0,
           "%s: row blocks change the partial", name);
    double *c1 = run_partial(s, m, 61, no_head, x, b, t, R, 0, 0, k);
    double *c2 = run_partial(s, m, 61, no_head, x, b, t, R, 0, k, n);
    mth_fold(c1, c2, N);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < N; i++) {
        worst = fmax(worst, fabs(c1[i] - one[i]));
        scale = fmax(scale, fabs(one[i]));
    }
    EXPECT(worst <= tol * scale, "%s: column blocks differ by %g of %g", name, worst, scale);
    double *small = run_partial(s, m, 7, no_head, x, b, t, R, 0, 0, n);
    worst = 0;
    for (size_t i = 0; i < N; i++) worst = fmax(worst, fabs(small[i] - one[i]));
    EXPECT(worst <= tol * scale, "%s: cap 7 vs cap 61 differ by %g of %g", name, worst, scale);
    free(one);
    free(lo);
    free(hi);
    free(c1);
    free(c2);
    free(small);
}

static void make_model(eng_model *m, const eng_layer *spec, int n, const int *shape, int ndim,
                       uint64_t seed) {
    at_err err = {0};
    int rc = eng_model_init(m, spec, n, shape, ndim, &err);
    AT_CHECK(rc == 0);
    eng_model_init_params(m, seed);
}

/* ---------------------------------------------------------------- sobol */

/* f linear: f(b + M (x - b)) = const + sum_v M_v a_v, a_v = sum over cell v
 * of w_t (x - b); M_v iid U(0,1), so ST_v = S_v = a_v^2 / sum a^2. */
static void test_sobol_linear(void) {
    const int shape[3] = {1, 12, 10}, D = 120, C = 3, R = 4, grid = 4;
    eng_layer spec[2] = {{.kind = ENG_LAYER_FLATTEN},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    make_model(&m, spec, 2, shape, 3, 21);
    float x[480], b[120], sc[480];
    int32_t t[4] = {0, 2, 1, 2};
    for (int i = 0; i < R * D; i++) x[i] = (float)urand(100 + i);
    for (int d = 0; d < D; d++) b[d] = 0.2f * (float)urand(900 + d);
    mth_spec s = {.kind = MTH_SOBOL,
                  .seed = 5,
                  .stream = 1,
                  .D = D,
                  .ndim = 3,
                  .shape = {1, 12, 10},
                  .n_samples = 4096,
                  .grid = grid};
    at_err err = {0};
    EXPECT(mth_plan(&s, &m, &err) == 0, "sobol plan: %s", err.msg);
    EXPECT(s.n_cols == 4096 && s.width == 2 * 16 + 4, "sobol columns %d width %d", s.n_cols,
           s.width);
    for (int path = 0; path < 2; path++) {
        double *acc = run_partial(&s, &m, 64, path, x, b, t, R, 0, 0, s.n_cols);
        finalize(&s, &m, acc, x, b, t, R, sc);
        free(acc);
        double worst = 0;
        for (int r = 0; r < R; r++) {
            double a[16] = {0}, sum = 0;
            const float *w = m.params + m.tensors[0].off + (size_t)t[r] * D;
            for (int y = 0; y < 12; y++)
                for (int xx = 0; xx < 10; xx++) {
                    int d = y * 10 + xx, v = (y * grid / 12) * grid + xx * grid / 10;
                    a[v] += (double)w[d] * ((double)x[r * D + d] - b[d]);
                }
            for (int v = 0; v < 16; v++) sum += a[v] * a[v];
            for (int y = 0; y < 12; y++)
                for (int xx = 0; xx < 10; xx++) {
                    int d = y * 10 + xx, v = (y * grid / 12) * grid + xx * grid / 10;
                    worst = fmax(worst, fabs(sc[r * D + d] - a[v] * a[v] / sum));
                }
        }
        printf("sobol linear (%s): worst |ST - a_v^2 / sum a^2| = %.2g\n",
               path ? "plain" : "affine head", worst);
        EXPECT(worst < 1e-3, "sobol on a linear model (%s path): error %g", path ? "plain" : "head",
               worst);
    }
    /* the same cells given as feature groups: the same scores */
    mth_spec sg = s;
    sg.group = malloc(sizeof(int32_t) * D);
    sg.n_groups = 16;
    for (int d = 0; d < D; d++) sg.group[d] = (d / 10 * grid / 12) * grid + d % 10 * grid / 10;
    EXPECT(mth_plan(&sg, &m, &err) == 0, "sobol plan with groups: %s", err.msg);
    float sgs[480];
    double *ag = run_partial(&sg, &m, 64, 1, x, b, t, R, 0, 0, sg.n_cols);
    finalize(&sg, &m, ag, x, b, t, R, sgs);
    free(ag);
    EXPECT(memcmp(sgs, sc, sizeof sgs) == 0, "sobol: groups = the grid's cells change scores");
    mth_spec_free(&sg);
    /* a constant output: no variance, scores 0 */
    memset(m.params, 0, m.n_params * sizeof(float));
    m.params[m.tensors[1].off] = 2.5f;
    double *acc = run_partial(&s, &m, 64, 0, x, b, t, R, 0, 0, s.n_cols);
    finalize(&s, &m, acc, x, b, t, R, sc);
    free(acc);
    int nz = 0;
    for (int i = 0; i < R * D; i++) nz += sc[i] != 0.0f;
    EXPECT(nz == 0, "sobol: constant output gives %d nonzero scores", nz);
    mth_spec_free(&s);
    eng_model_free(&m);
}

typedef struct {
    const eng_model *m;
    eng_workspace *ws;
    const float *x, *b;
    int32_t t;
    int grid, C, H, W;
} sobol_ctx;

/* f(u) = target logit of b + u_v (x - b), v the nearest cell of the feature */
static void model_f(void *ctx, const double *u, int n, double *out) {
    sobol_ctx *c = ctx;
    const int D = c->m->in_features, P = c->grid * c->grid, HW = c->H * c->W;
    float *xin = malloc(sizeof(float) * D);
    for (int k = 0; k < n; k++) {
        for (int d = 0; d < D; d++) {
            int pos = d % HW, y = pos / c->W, xx = pos % c->W;
            int v = (y * c->grid / c->H) * c->grid + xx * c->grid / c->W;
            xin[d] = c->b[d] + (float)u[(size_t)k * P + v] * (c->x[d] - c->b[d]);
        }
        const float *lg = eng_model_forward(c->m, c->ws, xin, 1);
        out[k] = lg[c->t];
    }
    free(xin);
}

/* The method's scores against mth_sobol_indices on a callback that builds
 * the perturbed inputs itself (stream 0, the entry point's design). */
static void test_sobol_model(void) {
    const int shape[3] = {2, 9, 7}, D = 126, C = 4, R = 5, grid = 3, N = 64;
    eng_layer spec[6] = {
        {.kind = ENG_LAYER_FLATTEN}, {.kind = ENG_LAYER_LINEAR, .out_features = 24, .bias = 1},
        {.kind = ENG_LAYER_TANH},    {.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
        {.kind = ENG_LAYER_RELU},    {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    make_model(&m, spec, 6, shape, 3, 33);
    float x[630], b[126], sc[630], sh[630];
    int32_t t[5] = {1, 0, 3, 2, 1};
    for (int i = 0; i < R * D; i++) x[i] = (float)(2 * urand(3000 + i));
    for (int d = 0; d < D; d++) b[d] = 0.1f * (float)urand(7000 + d);
    mth_spec s = {.kind = MTH_SOBOL,
                  .seed = 77,
                  .stream = 0,
                  .D = D,
                  .ndim = 3,
                  .shape = {2, 9, 7},
                  .n_samples = N,
                  .grid = grid};
    at_err err = {0};
    EXPECT(eng_model_affine_head(&m) == 1, "the MLP has an affine head (layer 1)");
    EXPECT(mth_plan(&s, &m, &err) == 0, "sobol plan: %s", err.msg);
    double *acc = run_partial(&s, &m, 61, 1, x, b, t, R, 0, 0, N);
    finalize(&s, &m, acc, x, b, t, R, sc);
    free(acc);
    acc = run_partial(&s, &m, 61, 0, x, b, t, R, 0, 0, N);
    finalize(&s, &m, acc, x, b, t, R, sh);
    free(acc);
    eng_workspace ws;
    eng_workspace_init(&ws, &m, 1, ENG_F32);
    double worst = 0, worst_h = 0, big = 0;
    for (int r = 0; r < R; r++) {
        sobol_ctx c = {.m = &m,
                       .ws = &ws,
                       .x = x + r * D,
                       .b = b,
                       .t = t[r],
                       .grid = grid,
                       .C = 2,
                       .H = 9,
                       .W = 7};
        double first[9], total[9];
        mth_sobol_indices(9, N, 77, model_f, &c, first, total);
        for (int d = 0; d < D; d++) {
            int pos = d % 63, v = (pos / 7 * grid / 9) * grid + pos % 7 * grid / 7;
            worst = fmax(worst, fabs(sc[r * D + d] - total[v]));
            worst_h = fmax(worst_h, fabs(sh[r * D + d] - total[v]));
            big = fmax(big, total[v]);
        }
    }
    printf("sobol MLP vs in-test recomputation: plain %.2g, affine head %.2g (max ST %.3f)\n",
           worst, worst_h, big);
    EXPECT(worst < 1e-6 && big > 0.1, "sobol (plain) vs recomputation: %g", worst);
    EXPECT(worst_h < 1e-3, "sobol (affine head) vs recomputation: %g", worst_h);
    check_invariance("sobol plain", &s, &m, 1, x, b, t, R, 1e-6);
    check_invariance("sobol head", &s, &m, 0, x, b, t, R, 1e-12);
    eng_workspace_free(&ws);
    mth_spec_free(&s);
    /* plan errors name the field */
    mth_spec bad = s;
    bad.grid = 8;
    EXPECT(mth_plan(&bad, &m, &err) == AT_EUSER && strstr(err.msg, "grid"), "grid 8 > W 7");
    mth_spec_free(&bad);
    at_err_clear(&err);
    bad = s;
    bad.n_samples = 1;
    EXPECT(mth_plan(&bad, &m, &err) == AT_EUSER && strstr(err.msg, "n_samples"), "N 1");
    mth_spec_free(&bad);
    eng_model_free(&m);
}

/* ----------------------------------------------------------------- rise */

/* The mask of column j rebuilt from the spec (masks.c's header comment). */
static void rise_mask_ref(const mth_spec *s, int j, int H, int W, double *mask) {
    const int gh = s->ndim == 1 ? 1 : s->grid, gw = s->grid;
    const int ch = (H + gh - 1) / gh, cw = (W + gw - 1) / gw;
    const uint64_t st = s->stream * 64;
    double g[64 * 64];
    for (int c = 0; c < gh * gw; c++)
        g[c] = at_rng_uniform_f64(s->seed, st + 4, j, c) < s->keep_prob;
    int sy = (int)at_rng_below(ch, s->seed, st + 5, j, 0);
    int sx = (int)at_rng_below(cw, s->seed, st + 5, j, 1);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            /* bilinear, pixel centres: up[Y] samples the grid at (Y + .5) gh / UH - .5 */
            double ty = (y + sy + 0.5) * gh / ((gh + 1.0) * ch) - 0.5;
            double tx = (x + sx + 0.5) * gw / ((gw + 1.0) * cw) - 0.5;
            ty = fmin(fmax(ty, 0.0), gh - 1);
            tx = fmin(fmax(tx, 0.0), gw - 1);
            int y0 = (int)floor(ty), x0 = (int)floor(tx);
            int y1 = y0 + 1 < gh ? y0 + 1 : y0, x1 = x0 + 1 < gw ? x0 + 1 : x0;
            double fy = ty - y0, fx = tx - x0;
            mask[y * W + x] = (1 - fy) * ((1 - fx) * g[y0 * gw + x0] + fx * g[y0 * gw + x1]) +
                              fy * ((1 - fx) * g[y1 * gw + x0] + fx * g[y1 * gw + x1]);
        }
}

static void rise_ref(const mth_spec *s, const eng_model *m, const float *x, const float *b,
                     const int32_t *t, int R, int H, int W, double *out) {
    const int D = m->in_features, HW = H * W, C = m->out_features;
    eng_workspace ws;
    eng_workspace_init(&ws, m, 1, ENG_F32);
    double *mask = malloc(sizeof(double) * HW);
    float *xin = malloc(sizeof(float) * D);
    memset(out, 0, sizeof(double) * R * D);
    for (int j = 0; j < s->n_cols; j++) {
        rise_mask_ref(s, j, H, W, mask);
        for (int r = 0; r < R; r++) {
            for (int d = 0; d < D; d++)
                xin[d] = (float)(b[d] + mask[d % HW] * ((double)x[r * D + d] - b[d]));
            double f = eng_model_forward(m, &ws, xin, 1)[t[r]];
            for (int d = 0; d < D; d++) out[r * D + d] += f * mask[d % HW];
        }
    }
    for (int i = 0; i < R * D; i++) out[i] /= s->n_cols * s->keep_prob;
    (void)C;
    free(mask);
    free(xin);
    eng_workspace_free(&ws);
}

static void test_rise_conv(void) {
    const int shape[3] = {2, 11, 9}, D = 198, R = 5, C = 3;
    eng_layer spec[5] = {{.kind = ENG_LAYER_CONV2D,
                          .out_features = 4,
                          .bias = 1,
                          .kernel = {3, 3},
                          .padding = {1, 1}},
                         {.kind = ENG_LAYER_RELU},
                         {.kind = ENG_LAYER_MAXPOOL2D, .kernel = {2, 2}},
                         {.kind = ENG_LAYER_FLATTEN},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    make_model(&m, spec, 5, shape, 3, 41);
    float x[990], b[198], sc[990];
    int32_t t[5] = {0, 1, 2, 2, 0};
    for (int i = 0; i < R * D; i++) x[i] = (float)(2 * urand(20000 + i));
    for (int d = 0; d < D; d++) b[d] = 0.3f * (float)urand(30000 + d);
    mth_spec s = {.kind = MTH_RISE,
                  .seed = 9,
                  .stream = 3,
                  .D = D,
                  .ndim = 3,
                  .shape = {2, 11, 9},
                  .n_samples = 60,
                  .grid = 4,
                  .keep_prob = 0.3};
    at_err err = {0};
    EXPECT(mth_plan(&s, &m, &err) == 0, "rise plan: %s", err.msg);
    EXPECT(s.width == D && s.n_cols == 60, "rise width %d", s.width);
    double *acc = run_partial(&s, &m, 37, 0, x, b, t, R, 0, 0, s.n_cols);
    finalize(&s, &m, acc, x, b, t, R, sc);
    free(acc);
    double *ref = malloc(sizeof(double) * R * D), worst = 0, big = 0;
    rise_ref(&s, &m, x, b, t, R, 11, 9, ref);
    for (int i = 0; i < R * D; i++) {
        worst = fmax(worst, fabs(sc[i] - ref[i]));
        big = fmax(big, fabs(ref[i]));
    }
    printf("rise conv vs in-test recomputation: %.2g of %.3g\n", worst, big);
    EXPECT(worst <= 1e-5 * big && big > 0, "rise vs recomputation: %g of %g", worst, big);
    free(ref);
    check_invariance("rise conv", &s, &m, 0, x, b, t, R, 1e-6);
    mth_spec_free(&s);
    mth_spec bad = s;
    bad.keep_prob = 0.0;
    EXPECT(mth_plan(&bad, &m, &err) == AT_EUSER && strstr(err.msg, "keep_prob"), "p = 0");
    mth_spec_free(&bad);
    eng_model_free(&m);
}

/* (F) input, an MLP: the recomputation, a constant output (scores ~ c), and
 * linearity in the output (a third class = 2 class0 - 0.5 class1). */
static void test_rise_flat(void) {
    const int F = 23, R = 4, C = 3;
    eng_layer spec[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                         {.kind = ENG_LAYER_GELU},
                         {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    make_model(&m, spec, 3, (int[]){F}, 1, 51);
    float *W2 = m.params + m.tensors[2].off, *b2 = m.params + m.tensors[3].off;
    for (int h = 0; h < 16; h++) W2[2 * 16 + h] = 2.0f * W2[h] - 0.5f * W2[16 + h];
    b2[2] = 2.0f * b2[0] - 0.5f * b2[1];
    float x[92], b[23], s0[92], s1[92], s2[92];
    for (int i = 0; i < R * F; i++) x[i] = (float)(1.5 * urand(40000 + i));
    for (int d = 0; d < F; d++) b[d] = 0.0f;
    mth_spec s = {.kind = MTH_RISE,
                  .seed = 4,
                  .stream = 2,
                  .D = F,
                  .ndim = 1,
                  .shape = {F},
                  .n_samples = 2000,
                  .grid = 5,
                  .keep_prob = 0.5};
    at_err err = {0};
    EXPECT(mth_plan(&s, &m, &err) == 0, "rise plan: %s", err.msg);
    int32_t t0[4] = {0, 0, 0, 0}, t1[4] = {1, 1, 1, 1}, t2[4] = {2, 2, 2, 2};
    double *a0 = run_partial(&s, &m, 64, 0, x, b, t0, R, 0, 0, s.n_cols);
    double *a1 = run_partial(&s, &m, 64, 0, x, b, t1, R, 0, 0, s.n_cols);
    double *a2 = run_partial(&s, &m, 64, 0, x, b, t2, R, 0, 0, s.n_cols);
    finalize(&s, &m, a0, x, b, t0, R, s0);
    finalize(&s, &m, a1, x, b, t1, R, s1);
    finalize(&s, &m, a2, x, b, t2, R, s2);
    double worst = 0, big = 0;
    for (int i = 0; i < R * F; i++) {
        worst = fmax(worst, fabs(s2[i] - (2.0 * s0[i] - 0.5 * s1[i])));
        big = fmax(big, fabs(s2[i]));
    }
    EXPECT(worst <= 1e-5 * big, "rise linearity in the output: %g of %g", worst, big);
    double *ref = malloc(sizeof(double) * R * F), wr = 0;
    rise_ref(&s, &m, x, b, t0, R, 1, F, ref);
    for (int i = 0; i < R * F; i++) wr = fmax(wr, fabs(s0[i] - ref[i]) / (fabs(ref[i]) + 1e-3));
    EXPECT(wr < 1e-5, "rise (F) vs recomputation: %g", wr);
    free(ref);
    free(a0);
    free(a1);
    free(a2);
    check_invariance("rise flat", &s, &m, 0, x, b, t0, R, 1e-12);
    /* constant output c: scores = c mean(M) / p, E M = p */
    memset(m.params, 0, m.n_params * sizeof(float));
    b2[0] = 3.0f;
    double *ac = run_partial(&s, &m, 64, 0, x, b, t0, R, 0, 0, s.n_cols);
    finalize(&s, &m, ac, x, b, t0, R, s0);
    free(ac);
    double lo = 1e9, hi = -1e9, mean = 0;
    for (int i = 0; i < R * F; i++) {
        lo = fmin(lo, s0[i]);
        hi = fmax(hi, s0[i]);
        mean += s0[i] / (R * F);
    }
    printf("rise constant 3: scores in [%.3f, %.3f], mean %.4f\n", lo, hi, mean);
    EXPECT(lo > 3.0 * 0.9 && hi < 3.0 * 1.1 && fabs(mean - 3.0) < 0.06,
           "rise on a constant 3: [%g, %g] mean %g", lo, hi, mean);
    mth_spec_free(&s);
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    test_ishigami();
    test_design();
    test_sobol_linear();
    test_sobol_model();
    test_rise_conv();
    test_rise_flat();
    return check_report("test_masks");
}
