/* test_tda_truth.c — ground-truth kernels (tda_truth.h).
 *
 *  1. Newton on small multinomial logistic regressions: |grad J| <= tol; the
 *     optimum equals plain gradient descent on the test's own naive
 *     objective run to convergence (1e-8); J(theta*) is below J at nearby
 *     points; the linear path (last layer linear, with and without a pooled
 *     prefix) equals the general complex-step path (a trailing dropout
 *     forces it); the factor's Hessian inverts a finite-difference Hessian
 *     of tda_objective's gradient; a tanh MLP converges on the general path;
 *     errors (labels, too many parameters, iteration limit) are AT_EUSER.
 *  2. Leave-one-out: refit without point i from the full optimum equals a
 *     fit from scratch on the data without row i (1e-9); the influence
 *     prediction (1/n) g_test^T H^-1 g_i (H by finite differences, g by
 *     naive loops) has Pearson >= 0.99 with the actual test-loss change over
 *     20 points, and the exact first-order form is within a few percent.
 *  3. Pearson and Spearman (ties) against naive formulas; bootstrap CI
 *     contains the mean, shrinks ~1/sqrt(n), is deterministic; LDS subsets
 *     have the exact size, are pure functions of (seed, s) and differ across
 *     s; tda_lds_predict equals naive sums; tda_lds of monotone data is 1.
 *  4. tda_train_subset trains (loss falls), gives the same bytes for the
 *     same seed, never reads rows with mask 0.
 *  Timing: Newton fit for 5,000 rows of 28x28 images on [avgpool 4x4,
 *  flatten, linear 49->10], and one LOO refit (factor vs fresh Newton). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "tda_truth.h"

#include "check.h"

static double urand(uint64_t a, uint64_t b) { return 2.0 * at_rng_uniform_f64(7, 9, a, b) - 1.0; }

/* x (N, D) in [-1, 1] (scaled), labels from a random linear teacher plus noise. */
static void make_data(float *x, int32_t *y, int N, int D, int C, double scale, uint64_t key) {
    for (int i = 0; i < N; i++) {
        double best = -1e300;
        for (int e = 0; e < D; e++) x[(size_t)i * D + e] = (float)(scale * urand(key + i, e));
        for (int c = 0; c < C; c++) {
            double s = 1.5 * urand(key + 100000, 1000 + c); /* bias */
            for (int e = 0; e < D; e++)
                s += urand(key + 100000, (uint64_t)c * D + e) * x[(size_t)i * D + e];
            s += 1.0 * at_rng_normal(7, 10, key + i, c); /* label noise */
            if (s > best) {
                best = s;
                y[i] = c;
            }
        }
    }
}

static int build_linear(eng_model *m, int D, int C, int dropout_tail) {
    at_err err = {0};
    eng_layer s[2] = {{.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1},
                      {.kind = ENG_LAYER_DROPOUT, .p = 0.0}};
    return eng_model_init(m, s, dropout_tail ? 2 : 1, (int[]){D}, 1, &err);
}

/* ---- naive multinomial logistic regression on flat inputs (the oracle) */

typedef struct {
    int D, C;
    size_t ow, ob; /* weight (C, D) and bias (C) offsets in theta */
} lin;

static void naive_probs(const lin *L, const double *th, const float *xr, double *p) {
    double mx = -1e300;
    for (int c = 0; c < L->C; c++) {
        double z = th[L->ob + c];
        for (int e = 0; e < L->D; e++) z += th[L->ow + (size_t)c * L->D + e] * xr[e];
        p[c] = z;
        if (z > mx) mx = z;
    }
    double s = 0;
    for (int c = 0; c < L->C; c++) s += (p[c] = exp(p[c] - mx));
    for (int c = 0; c < L->C; c++) p[c] /= s;
}

/* loss of one row; g (n_params) += scale * its gradient if g */
static double naive_row(const lin *L, const double *th, const float *xr, int y, double scale,
                        double *g) {
    double p[16];
    naive_probs(L, th, xr, p);
    if (g)
        for (int c = 0; c < L->C; c++) {
            double r = scale * (p[c] - (c == y));
            for (int e = 0; e < L->D; e++) g[L->ow + (size_t)c * L->D + e] += r * xr[e];
            g[L->ob + c] += r;
        }
    return -log(p[y]);
}

static double naive_J(const lin *L, const double *th, const float *x, const int32_t *y, int N,
                      double wd, double *g) {
    size_t np = (size_t)L->C * L->D + L->C;
    if (g) memset(g, 0, np * sizeof *g);
    double s = 0;
    for (int i = 0; i < N; i++) s += naive_row(L, th, x + (size_t)i * L->D, y[i], 1.0 / N, g);
    double r = 0;
    for (size_t k = 0; k < np; k++) {
        r += th[k] * th[k];
        if (g) g[k] += wd * th[k];
    }
    return s / N + 0.5 * wd * r;
}

static double norm(const double *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += v[i] * v[i];
    return sqrt(s);
}

static double maxdiff(const double *a, const double *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* H (n, n) by central differences of tda_objective's gradient. */
static void fd_hessian(const eng_model *m, const double *th, const float *x, const int32_t *y,
                       int N, double wd, double *H) {
    size_t n = m->n_params;
    double *t = malloc(n * sizeof *t), *gp = malloc(n * sizeof *gp), *gm = malloc(n * sizeof *gm);
    const double h = 1e-5;
    for (size_t j = 0; j < n; j++) {
        memcpy(t, th, n * sizeof *t);
        t[j] += h;
        tda_objective(m, t, x, y, N, NULL, wd, gp);
        t[j] -= 2 * h;
        tda_objective(m, t, x, y, N, NULL, wd, gm);
        for (size_t k = 0; k < n; k++) H[k * n + j] = (gp[k] - gm[k]) / (2 * h);
    }
    for (size_t a = 0; a < n; a++) /* symmetrise */
        for (size_t b = 0; b < a; b++)
            H[a * n + b] = H[b * n + a] = 0.5 * (H[a * n + b] + H[b * n + a]);
    free(t);
    free(gp);
    free(gm);
}

/* Solve A u = b (n x n, copied) by Gaussian elimination with partial pivoting. */
static void gauss_solve(const double *A0, const double *b, double *u, int n) {
    double *A = malloc((size_t)n * (n + 1) * sizeof *A);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) A[i * (n + 1) + j] = A0[i * n + j];
        A[i * (n + 1) + n] = b[i];
    }
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * (n + 1) + c]) > fabs(A[piv * (n + 1) + c])) piv = r;
        for (int j = 0; j <= n; j++) {
            double t = A[c * (n + 1) + j];
            A[c * (n + 1) + j] = A[piv * (n + 1) + j];
            A[piv * (n + 1) + j] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[r * (n + 1) + c] / A[c * (n + 1) + c];
            for (int j = c; j <= n; j++) A[r * (n + 1) + j] -= f * A[c * (n + 1) + j];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = A[i * (n + 1) + n];
        for (int j = i + 1; j < n; j++) s -= A[i * (n + 1) + j] * u[j];
        u[i] = s / A[i * (n + 1) + i];
    }
    free(A);
}

/* ------------------------------------------------------------ test 1 */

/* The factor's H^-1 against a finite-difference Hessian: H_fd (H^-1 v) = v. */
static void check_factor_hessian(const char *what, const eng_model *m, const double *th,
                                 const float *x, const int32_t *y, int N, double wd) {
    at_err err = {0};
    size_t n = m->n_params;
    double *H = malloc(n * n * sizeof *H), *v = malloc(n * sizeof *v), *u = malloc(n * sizeof *u);
    fd_hessian(m, th, x, y, N, wd, H);
    tda_newton_factor *f = NULL;
    EXPECT(tda_newton_factor_new(&f, m, th, x, y, N, NULL, wd, &err) == 0, "%s: %s", what, err.msg);
    if (!f) goto out;
    EXPECT(tda_newton_factor_params(f) == (int64_t)n, "%s: factor params", what);
    double worst = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (size_t k = 0; k < n; k++) v[k] = urand(500 + rep, k);
        tda_newton_solve(f, v, u);
        for (size_t a = 0; a < n; a++) {
            double s = 0;
            for (size_t b = 0; b < n; b++) s += H[a * n + b] * u[b];
            worst = fmax(worst, fabs(s - v[a]));
        }
    }
    EXPECT(worst < 1e-6, "%s: H_fd H^-1 v - v = %.3g", what, worst);
    printf("  %s: |H_fd H^-1 v - v|max = %.2e\n", what, worst);
    tda_newton_factor_free(f);
out:
    free(H);
    free(v);
    free(u);
}

static void test_newton(void) {
    const int N = 40, D = 4, C = 3;
    const double wd = 0.05, tol = 1e-11;
    float x[40 * 4];
    int32_t y[40];
    make_data(x, y, N, D, C, 1.0, 1);
    eng_model m, mg;
    AT_CHECK(build_linear(&m, D, C, 0) == 0 && build_linear(&mg, D, C, 1) == 0);
    const size_t np = m.n_params;
    lin L = {D, C, m.tensors[0].off, m.tensors[1].off};
    double th[15] = {0}, thg[15] = {0}, g[15], gd_th[15] = {0};
    AT_CHECK(np == 15);
    at_err err = {0};
    tda_fit_info info;
    EXPECT(tda_newton_fit(&m, th, x, y, N, NULL, wd, tol, 50, &info, &err) == 0, "%s", err.msg);
    EXPECT(info.converged && info.grad_norm <= tol, "newton: |g| %.3g", info.grad_norm);
    double Jn = naive_J(&L, th, x, y, N, wd, g);
    EXPECT(norm(g, np) < 1e-10, "naive |grad J| at the optimum %.3g", norm(g, np));
    EXPECT(fabs(Jn - info.objective) < 1e-13, "objective %.17g vs naive %.17g", info.objective, Jn);
    printf("  newton: %d steps, |g| %.2e, J %.12f\n", info.iters, info.grad_norm, info.objective);
    /* plain gradient descent on the naive objective, run to convergence */
    int it;
    for (it = 0; it < 400000; it++) {
        naive_J(&L, gd_th, x, y, N, wd, g);
        if (norm(g, np) < 1e-13) break;
        for (size_t k = 0; k < np; k++) gd_th[k] -= 0.5 * g[k];
    }
    EXPECT(maxdiff(th, gd_th, np) < 1e-8, "newton vs gradient descent (%d its): %.3g", it,
           maxdiff(th, gd_th, np));
    printf("  gradient descent: %d steps, |newton - gd|max = %.2e\n", it, maxdiff(th, gd_th, np));
    /* a minimum: J(theta* + d) > J(theta*) along axes and random directions */
    int above = 1;
    for (int r = 0; r < 2 * (int)np + 20; r++) {
        double t[15];
        memcpy(t, th, sizeof t);
        if (r < 2 * (int)np)
            t[r / 2] += r % 2 ? -1e-3 : 1e-3;
        else
            for (size_t k = 0; k < np; k++) t[k] += 1e-3 * urand(300 + r, k);
        above &= naive_J(&L, t, x, y, N, wd, NULL) > Jn;
    }
    EXPECT(above, "J is not minimal at the Newton optimum");
    /* the general (complex-step) path finds the same optimum */
    EXPECT(tda_newton_fit(&mg, thg, x, y, N, NULL, wd, tol, 50, &info, &err) == 0, "%s", err.msg);
    EXPECT(maxdiff(th, thg, np) < 1e-10, "linear vs general path %.3g", maxdiff(th, thg, np));
    /* dropped rows on both paths: refit without rows 3 and 17 */
    {
        uint8_t drop[40] = {0};
        drop[3] = drop[17] = 1;
        double ra[15], rg[15];
        memcpy(ra, th, sizeof ra);
        memcpy(rg, th, sizeof rg);
        tda_newton_factor *fa = NULL, *fg = NULL;
        EXPECT(tda_newton_factor_new(&fa, &m, th, x, y, N, NULL, wd, &err) == 0, "%s", err.msg);
        EXPECT(tda_newton_factor_new(&fg, &mg, th, x, y, N, drop, wd, &err) == 0, "%s", err.msg);
        if (fa && fg) {
            EXPECT(tda_newton_refit(fa, ra, drop, tol, 50, &info, &err) == 0, "%s", err.msg);
            EXPECT(tda_newton_refit(fg, rg, drop, tol, 50, &info, &err) == 0, "%s", err.msg);
            tda_objective(&m, ra, x, y, N, drop, wd, g);
            EXPECT(norm(g, np) <= tol && maxdiff(ra, rg, np) < 1e-10,
                   "drop: linear vs general refit %.3g", maxdiff(ra, rg, np));
            EXPECT(maxdiff(ra, th, np) > 1e-3, "dropping rows changed nothing");
        }
        tda_newton_factor_free(fa);
        tda_newton_factor_free(fg);
    }
    check_factor_hessian("linear path", &m, th, x, y, N, wd);
    check_factor_hessian("general path", &mg, thg, x, y, N, wd);

    /* a pooled prefix: [avgpool 2x2, flatten, linear] on (1, 4, 4) images,
     * linear path vs general path */
    {
        eng_layer s[4] = {{.kind = ENG_LAYER_AVGPOOL2D, .kernel = {2, 2}, .count_include_pad = 1},
                          {.kind = ENG_LAYER_FLATTEN},
                          {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1},
                          {.kind = ENG_LAYER_DROPOUT}};
        eng_model pa, pg;
        AT_CHECK(eng_model_init(&pa, s, 3, (int[]){1, 4, 4}, 3, &err) == 0);
        AT_CHECK(eng_model_init(&pg, s, 4, (int[]){1, 4, 4}, 3, &err) == 0);
        float xi[60 * 16];
        int32_t yi[60];
        make_data(xi, yi, 60, 16, 3, 1.0, 77);
        double ta[15] = {0}, tg[15] = {0};
        AT_CHECK(pa.n_params == 15);
        EXPECT(tda_newton_fit(&pa, ta, xi, yi, 60, NULL, 0.01, tol, 50, &info, &err) == 0, "%s",
               err.msg);
        EXPECT(tda_newton_fit(&pg, tg, xi, yi, 60, NULL, 0.01, tol, 50, &info, &err) == 0, "%s",
               err.msg);
        EXPECT(maxdiff(ta, tg, 15) < 1e-10, "pooled: linear vs general path %.3g",
               maxdiff(ta, tg, 15));
        eng_model_free(&pa);
        eng_model_free(&pg);
    }

    /* a tanh MLP (general path, non-linear): converges where J is convex */
    {
        eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 5, .bias = 1},
                          {.kind = ENG_LAYER_TANH},
                          {.kind = ENG_LAYER_LINEAR, .out_features = 3, .bias = 1}};
        eng_model mm;
        AT_CHECK(eng_model_init(&mm, s, 3, (int[]){4}, 1, &err) == 0);
        double *t = calloc(mm.n_params, sizeof *t), *gg = malloc(mm.n_params * sizeof *gg);
        for (size_t k = 0; k < mm.n_params; k++) t[k] = 0.1 * urand(900, k);
        EXPECT(tda_newton_fit(&mm, t, x, y, N, NULL, 1.0, 1e-10, 50, &info, &err) == 0, "mlp: %s",
               err.msg);
        tda_objective(&mm, t, x, y, N, NULL, 1.0, gg);
        EXPECT(norm(gg, mm.n_params) <= 1e-10, "mlp |g| %.3g", norm(gg, mm.n_params));
        printf("  tanh MLP (general path): %d steps, |g| %.2e\n", info.iters, info.grad_norm);
        free(t);
        free(gg);
        eng_model_free(&mm);
    }

    /* errors */
    {
        at_err e1 = {0}, e2 = {0}, e3 = {0};
        double t[15] = {0};
        int32_t yb[40];
        memcpy(yb, y, sizeof yb);
        yb[7] = 3;
        EXPECT(tda_newton_fit(&m, t, x, yb, N, NULL, wd, tol, 50, &info, &e1) == AT_EUSER &&
                   strstr(e1.msg, "row 7"),
               "bad label: %s", e1.msg);
        eng_model big;
        AT_CHECK(build_linear(&big, 3000, 10, 0) == 0);
        double *tb = calloc(big.n_params, sizeof *tb);
        EXPECT(tda_newton_fit(&big, tb, x, y, 1, NULL, wd, tol, 50, &info, &e2) == AT_EUSER &&
                   strstr(e2.msg, "20000"),
               "too many params: %s", e2.msg);
        free(tb);
        eng_model_free(&big);
        memset(t, 0, sizeof t);
        EXPECT(tda_newton_fit(&m, t, x, y, N, NULL, wd, tol, 1, &info, &e3) == AT_EUSER &&
                   !info.converged && info.iters == 1 && strstr(e3.msg, "iteration limit"),
               "iteration limit: %s", e3.msg);
    }
    eng_model_free(&m);
    eng_model_free(&mg);
}

/* ------------------------------------------------------------ test 2 */

static void test_loo(void) {
    const int N = 160, D = 5, C = 3, NT = 15, NP = 20;
    const double wd = 0.05, tol = 1e-12;
    float x[160 * 5], xt[15 * 5], xs[159 * 5];
    int32_t y[160], yt[15], ys[159];
    make_data(x, y, N, D, C, 1.0, 5000);
    make_data(xt, yt, NT, D, C, 1.0, 6000);
    eng_model m;
    AT_CHECK(build_linear(&m, D, C, 0) == 0);
    const int np = (int)m.n_params;
    lin L = {D, C, m.tensors[0].off, m.tensors[1].off};
    at_err err = {0};
    tda_fit_info info;
    double th[18] = {0};
    AT_CHECK(np == 18);
    EXPECT(tda_newton_fit(&m, th, x, y, N, NULL, wd, tol, 50, &info, &err) == 0, "%s", err.msg);
    tda_newton_factor *f = NULL;
    EXPECT(tda_newton_factor_new(&f, &m, th, x, y, N, NULL, wd, &err) == 0, "%s", err.msg);
    if (!f) return;
    double H[18 * 18], gtest[18] = {0}, u[18], base[15], lo[15];
    fd_hessian(&m, th, x, y, N, wd, H);
    for (int t = 0; t < NT; t++) naive_row(&L, th, xt + t * D, yt[t], 1.0, gtest);
    gauss_solve(H, gtest, u, np); /* H^-1 g_test */
    tda_eval_f64(&m, th, xt, yt, NT, base, NULL);
    double actual[20], pred[20], pred1[20], worst_refit = 0, worst_first = 0, amax = 0;
    int max_iters = 0;
    uint8_t drop[160] = {0};
    for (int k = 0; k < NP; k++) {
        const int i = 8 * k; /* spread over the rows */
        double tr[18], ts[18] = {0};
        memcpy(tr, th, sizeof tr);
        drop[i] = 1;
        EXPECT(tda_newton_refit(f, tr, drop, tol, 100, &info, &err) == 0, "refit %d: %s", i,
               err.msg);
        drop[i] = 0;
        if (info.iters > max_iters) max_iters = info.iters;
        /* from scratch on the data without row i */
        for (int r = 0, o = 0; r < N; r++) {
            if (r == i) continue;
            memcpy(xs + o * D, x + r * D, D * sizeof *xs);
            ys[o++] = y[r];
        }
        EXPECT(tda_newton_fit(&m, ts, xs, ys, N - 1, NULL, wd, tol, 50, NULL, &err) == 0, "%s",
               err.msg);
        worst_refit = fmax(worst_refit, maxdiff(tr, ts, np));
        tda_eval_f64(&m, tr, xt, yt, NT, lo, NULL);
        actual[k] = 0;
        for (int t = 0; t < NT; t++) actual[k] += lo[t] - base[t];
        double gi[18] = {0};
        naive_row(&L, th, x + i * D, y[i], 1.0, gi);
        double s = 0, s1 = 0;
        for (int j = 0; j < np; j++) {
            s += u[j] * gi[j];
            s1 += u[j] * (gi[j] + wd * th[j]);
        }
        pred[k] = s / N;         /* the classic prediction */
        pred1[k] = s1 / (N - 1); /* the exact first order of this objective */
        amax = fmax(amax, fabs(actual[k]));
    }
    for (int k = 0; k < NP; k++) worst_first = fmax(worst_first, fabs(pred1[k] - actual[k]));
    const double r = tda_pearson(pred, actual, NP), rs = tda_spearman(pred, actual, NP);
    EXPECT(worst_refit < 1e-9, "refit vs from scratch %.3g", worst_refit);
    EXPECT(r >= 0.99, "LOO Pearson %.4f", r);
    EXPECT(worst_first < 0.05 * amax, "first-order error %.3g of max change %.3g", worst_first,
           amax);
    EXPECT(max_iters <= 8, "refit took %d steps", max_iters);
    printf("  LOO: refit vs scratch %.2e (<= %d steps); IF Pearson %.5f Spearman %.4f; "
           "first-order error %.2e of max |change| %.2e\n",
           worst_refit, max_iters, r, rs, worst_first, amax);
    tda_newton_factor_free(f);
    eng_model_free(&m);
}

/* ------------------------------------------------------------ test 3 */

static double naive_pearson(const double *a, const double *b, int n) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (int i = 0; i < n; i++) {
        sa += a[i];
        sb += b[i];
        saa += a[i] * a[i];
        sbb += b[i] * b[i];
        sab += a[i] * b[i];
    }
    return (n * sab - sa * sb) / sqrt((n * saa - sa * sa) * (n * sbb - sb * sb));
}

static void naive_ranks(const double *v, int n, double *r) {
    for (int i = 0; i < n; i++) {
        int less = 0, eq = 0;
        for (int j = 0; j < n; j++) {
            less += v[j] < v[i];
            eq += v[j] == v[i];
        }
        r[i] = less + (eq + 1) / 2.0;
    }
}

static void test_stats(void) {
    /* correlations */
    double a[12] = {1, 2, 2, 3, 5, 5, 5, 0, -1, 7, 2, 4};
    double b[12] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    double ra[12], rb[12];
    EXPECT(fabs(tda_pearson(a, b, 12) - naive_pearson(a, b, 12)) < 1e-12, "pearson");
    naive_ranks(a, 12, ra);
    naive_ranks(b, 12, rb);
    const double sp = tda_spearman(a, b, 12);
    EXPECT(fabs(sp - naive_pearson(ra, rb, 12)) < 1e-12, "spearman %.15f vs %.15f", sp,
           naive_pearson(ra, rb, 12));
    printf("  spearman with ties %.10f\n", sp);
    double c[12], d[12], k[12];
    for (int i = 0; i < 12; i++) {
        c[i] = exp(a[i]);
        d[i] = -a[i] * a[i] * a[i];
        k[i] = 1.0;
    }
    EXPECT(fabs(tda_spearman(a, c, 12) - 1) < 1e-15, "monotone spearman");
    EXPECT(fabs(tda_spearman(a, d, 12) + 1) < 1e-15, "antitone spearman");
    EXPECT(isnan(tda_spearman(a, k, 12)) && isnan(tda_pearson(a, k, 12)), "constant -> NaN");
    EXPECT(isnan(tda_pearson(a, b, 1)), "n = 1 -> NaN");

    /* bootstrap */
    enum { NB = 1600 };
    double *v = malloc(NB * sizeof *v);
    for (int i = 0; i < NB; i++) v[i] = 3.0 + 2.0 * at_rng_normal(3, 3, i, 0);
    double lo1, hi1, lo2, hi2, lo3, hi3, m1 = 0, m2 = 0;
    for (int i = 0; i < NB; i++) (i < NB / 4 ? (m1 += v[i]) : 0), m2 += v[i];
    m1 /= NB / 4;
    m2 /= NB;
    tda_bootstrap_ci(v, NB / 4, 1000, 11, 0.95, &lo1, &hi1);
    tda_bootstrap_ci(v, NB, 1000, 11, 0.95, &lo2, &hi2);
    tda_bootstrap_ci(v, NB, 1000, 11, 0.95, &lo3, &hi3);
    EXPECT(lo1 < m1 && m1 < hi1 && lo2 < m2 && m2 < hi2, "CI contains the mean");
    const double ratio = (hi1 - lo1) / (hi2 - lo2);
    EXPECT(ratio > 1.7 && ratio < 2.3, "CI width ratio n vs 4n %.3f (expected ~2)", ratio);
    EXPECT(fabs((hi2 - lo2) / (2 * 1.96 * 2.0 / sqrt(NB)) - 1) < 0.15,
           "CI width %.4f vs normal %.4f", hi2 - lo2, 2 * 1.96 * 2.0 / sqrt(NB));
    EXPECT(lo2 == lo3 && hi2 == hi3, "bootstrap deterministic");
    printf("  bootstrap: n=%d [%.4f, %.4f], n=%d [%.4f, %.4f], width ratio %.3f\n", NB / 4, lo1,
           hi1, NB, lo2, hi2, ratio);
    free(v);

    /* LDS subsets */
    enum { NT = 1001, NS = 200 };
    uint8_t *mk = malloc(NT), *mk2 = malloc(NT);
    int *hits = calloc(NT, sizeof *hits);
    int same = 0;
    for (int s = 0; s < NS; s++) {
        tda_lds_subset(42, s, NT, 0.5, mk);
        int cnt = 0;
        for (int i = 0; i < NT; i++) {
            cnt += mk[i];
            hits[i] += mk[i];
        }
        EXPECT(cnt == 501, "subset %d has %d rows, expected round(500.5) = 501", s, cnt);
        tda_lds_subset(42, s, NT, 0.5, mk2);
        EXPECT(memcmp(mk, mk2, NT) == 0, "subset %d not deterministic", s);
        tda_lds_subset(42, s + 1, NT, 0.5, mk2);
        same += memcmp(mk, mk2, NT) == 0;
    }
    EXPECT(same == 0, "consecutive subsets equal %d times", same);
    int lo_h = NS, hi_h = 0;
    for (int i = 0; i < NT; i++) {
        lo_h = hits[i] < lo_h ? hits[i] : lo_h;
        hi_h = hits[i] > hi_h ? hits[i] : hi_h;
    }
    EXPECT(lo_h > 50 && hi_h < 150, "row inclusion counts over %d subsets in [%d, %d]", NS, lo_h,
           hi_h);
    tda_lds_subset(42, 0, NT, 0.0, mk);
    int z = 0;
    for (int i = 0; i < NT; i++) z += mk[i];
    tda_lds_subset(42, 0, NT, 1.0, mk);
    int o = 0;
    for (int i = 0; i < NT; i++) o += mk[i];
    EXPECT(z == 0 && o == NT, "fractions 0 and 1: %d, %d rows", z, o);
    tda_lds_subset(43, 0, NT, 0.5, mk2);
    tda_lds_subset(42, 0, NT, 0.5, mk);
    EXPECT(memcmp(mk, mk2, NT) != 0, "seed changes the subset");
    free(mk);
    free(mk2);
    free(hits);

    /* predicted sums: a column block of a wider score tile, accumulated */
    enum { T = 4, M = 3, NTR = 7, LD = 10 };
    double sc[T * LD], ms[M * NTR], pr[T * M], want[T * M];
    for (int i = 0; i < T * LD; i++) sc[i] = urand(70, i);
    for (int i = 0; i < M * NTR; i++) ms[i] = (i * 7 + 3) % 3 == 0;
    for (int t = 0; t < T; t++)
        for (int s = 0; s < M; s++) {
            pr[t * M + s] = 1.0;
            want[t * M + s] = 1.0;
            for (int i = 0; i < NTR; i++) want[t * M + s] += sc[t * LD + 2 + i] * ms[s * NTR + i];
        }
    tda_lds_predict(pr, sc + 2, LD, ms, NTR, T, M, NTR);
    EXPECT(maxdiff(pr, want, T * M) < 1e-14, "lds_predict %.3g", maxdiff(pr, want, T * M));
    /* LDS: per-test Spearman; actual a monotone function of pred per row */
    double P2[3 * 5], A2[3 * 5], per[3];
    for (int i = 0; i < 15; i++) {
        P2[i] = urand(80, i);
        A2[i] = i < 5 ? exp(P2[i]) : i < 10 ? -P2[i] : 2.0;
    }
    const double lds = tda_lds(P2, A2, 3, 5, per);
    EXPECT(fabs(per[0] - 1) < 1e-15 && fabs(per[1] + 1) < 1e-15 && isnan(per[2]) &&
               fabs(lds) < 1e-15,
           "tda_lds %.3g (%.3g %.3g %.3g)", lds, per[0], per[1], per[2]);
}

/* ------------------------------------------------------------ test 4 */

static double subset_loss(eng_model *m, const float *x, const int32_t *y, int N,
                          const uint8_t *mask) {
    eng_workspace ws;
    eng_workspace_init(&ws, m, 1, ENG_F32);
    double s = 0, l;
    int n = 0;
    for (int i = 0; i < N; i++) {
        if (!mask[i]) continue;
        eng_evaluate(m, &ws, x + (size_t)i * m->in_features, y + i, 1, &l, NULL, NULL);
        s += l;
        n++;
    }
    eng_workspace_free(&ws);
    return s / n;
}

static void test_train(void) {
    enum { N = 200, D = 8, C = 3 };
    float x[N * D], x2[N * D];
    int32_t y[N], y2[N];
    make_data(x, y, N, D, C, 1.0, 9000);
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 16, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = C, .bias = 1}};
    eng_model m;
    at_err err = {0};
    AT_CHECK(eng_model_init(&m, s, 3, (int[]){D}, 1, &err) == 0);
    uint8_t mask[N];
    tda_lds_subset(5, 3, N, 0.5, mask);
    tda_train_cfg cfg = {.epochs = 8,
                         .batch_size = 16,
                         .optimizer = ENG_OPT_SGD,
                         .lr = 0.1,
                         .momentum = 0.9,
                         .schedule = ENG_SCHED_CONSTANT,
                         .loss = {ENG_LOSS_XENT, 0.0}};
    eng_model_init_params(&m, 17);
    const double l0 = subset_loss(&m, x, y, N, mask);
    EXPECT(tda_train_subset(&m, &cfg, x, y, N, mask, 17, &err) == 0, "%s", err.msg);
    const double l1 = subset_loss(&m, x, y, N, mask);
    EXPECT(l1 < 0.8 * l0, "training: loss %.4f -> %.4f", l0, l1);
    printf("  train subset: loss %.4f -> %.4f\n", l0, l1);
    float *p1 = malloc(m.n_params * sizeof *p1);
    memcpy(p1, m.params, m.n_params * sizeof *p1);
    EXPECT(tda_train_subset(&m, &cfg, x, y, N, mask, 17, &err) == 0, "%s", err.msg);
    EXPECT(memcmp(p1, m.params, m.n_params * sizeof *p1) == 0, "same seed, different bytes");
    /* rows with mask 0 changed: nothing changes */
    memcpy(x2, x, sizeof x);
    memcpy(y2, y, sizeof y);
    for (int i = 0; i < N; i++)
        if (!mask[i]) {
            for (int e = 0; e < D; e++) x2[i * D + e] = 100.0f * (float)urand(99, i * D + e);
            y2[i] = (y[i] + 1) % C;
        }
    EXPECT(tda_train_subset(&m, &cfg, x2, y2, N, mask, 17, &err) == 0, "%s", err.msg);
    EXPECT(memcmp(p1, m.params, m.n_params * sizeof *p1) == 0, "mask-0 rows changed the model");
    EXPECT(tda_train_subset(&m, &cfg, x, y, N, mask, 18, &err) == 0, "%s", err.msg);
    EXPECT(memcmp(p1, m.params, m.n_params * sizeof *p1) != 0, "another seed, same bytes");
    /* adam + cosine runs and trains */
    tda_train_cfg ca = {.epochs = 8,
                        .batch_size = 16,
                        .optimizer = ENG_OPT_ADAM,
                        .lr = 0.03,
                        .beta1 = 0.9,
                        .beta2 = 0.999,
                        .eps = 1e-8,
                        .schedule = ENG_SCHED_COSINE,
                        .loss = {ENG_LOSS_XENT, 0.0}};
    EXPECT(tda_train_subset(&m, &ca, x, y, N, mask, 17, &err) == 0, "%s", err.msg);
    EXPECT(subset_loss(&m, x, y, N, mask) < 0.8 * l0, "adam training");
    /* errors */
    at_err e1 = {0}, e2 = {0}, e3 = {0};
    uint8_t none[N] = {0};
    EXPECT(tda_train_subset(&m, &cfg, x, y, N, none, 1, &e1) == AT_EUSER &&
               strstr(e1.msg, "lds_fraction"),
           "empty subset: %s", e1.msg);
    tda_train_cfg bad = cfg;
    bad.epochs = 0;
    EXPECT(tda_train_subset(&m, &bad, x, y, N, mask, 1, &e2) == AT_EUSER &&
               strstr(e2.msg, "train.epochs"),
           "epochs 0: %s", e2.msg);
    bad = cfg;
    bad.lr = 1e6;
    EXPECT(tda_train_subset(&m, &bad, x, y, N, mask, 1, &e3) == AT_EUSER &&
               strstr(e3.msg, "lower train.lr"),
           "divergence: %s", e3.msg);
    free(p1);
    eng_model_free(&m);
}

/* ------------------------------------------------------------ timing */

static void timing(void) {
    enum { N = 5000, HW = 28 };
    const double wd = 1e-3, tol = 1e-10;
    eng_layer s[3] = {{.kind = ENG_LAYER_AVGPOOL2D, .kernel = {4, 4}, .count_include_pad = 1},
                      {.kind = ENG_LAYER_FLATTEN},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model m;
    at_err err = {0};
    AT_CHECK(eng_model_init(&m, s, 3, (int[]){1, HW, HW}, 3, &err) == 0);
    AT_CHECK(m.n_params == 500);
    /* Fashion-MNIST-like: pixels in [0, 1], labels from a teacher on the 7x7 pool */
    float *x = malloc((size_t)N * HW * HW * sizeof *x);
    int32_t *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) {
        double best = -1e300;
        for (int e = 0; e < HW * HW; e++) x[(size_t)i * HW * HW + e] = at_rng_uniform(8, 8, i, e);
        for (int c = 0; c < 10; c++) {
            double z = 2.0 * at_rng_normal(8, 9, i, c);
            for (int e = 0; e < HW * HW; e++)
                z += 0.3 * urand(8000 + c, e / 16) * x[(size_t)i * HW * HW + e];
            if (z > best) {
                best = z;
                y[i] = c;
            }
        }
    }
    double *th = calloc(m.n_params, sizeof *th), *t1 = malloc(m.n_params * sizeof *t1),
           *t2 = malloc(m.n_params * sizeof *t2);
    tda_fit_info info, i1 = {0}, i2 = {0};
    double t0 = at_now();
    EXPECT(tda_newton_fit(&m, th, x, y, N, NULL, wd, tol, 50, &info, &err) == 0, "%s", err.msg);
    const double t_fit = at_now() - t0;
    uint8_t *drop = calloc(N, 1);
    t0 = at_now();
    tda_newton_factor *f = NULL;
    EXPECT(tda_newton_factor_new(&f, &m, th, x, y, N, NULL, wd, &err) == 0, "%s", err.msg);
    const double t_factor = at_now() - t0;
    double t_refit = 0, t_newton = 0, worst = 0;
    int s1 = 0, s2 = 0;
    enum { NLOO = 5 };
    for (int k = 0; k < NLOO && f; k++) {
        const int i = 123 + 977 * k;
        drop[i] = 1;
        memcpy(t1, th, m.n_params * sizeof *t1);
        t0 = at_now();
        EXPECT(tda_newton_refit(f, t1, drop, 1e-13, 50, &i1, &err) == 0, "%s", err.msg);
        t_refit += at_now() - t0;
        memcpy(t2, th, m.n_params * sizeof *t2);
        t0 = at_now();
        EXPECT(tda_newton_fit(&m, t2, x, y, N, drop, wd, 1e-13, 50, &i2, &err) == 0, "%s", err.msg);
        t_newton += at_now() - t0;
        drop[i] = 0;
        s1 += i1.iters;
        s2 += i2.iters;
        worst = fmax(worst, maxdiff(t1, t2, m.n_params));
    }
    /* |theta - theta*| <= |grad J| / wd = 1e-10 at tol 1e-13 */
    EXPECT(worst < 1e-9, "refit vs Newton LOO %.3g", worst);
    printf("  timing (5000 x 784 -> [avgpool 4x4, flatten, linear 49->10], 500 params):\n"
           "    Newton fit from 0: %.3f s, %d steps, |g| %.1e\n"
           "    LOO (mean of %d points): factor once %.3f s; refit %.4f s (%.1f steps) vs warm "
           "Newton %.3f s (%.1f steps); |diff| %.1e\n",
           t_fit, info.iters, info.grad_norm, NLOO, t_factor, t_refit / NLOO, (double)s1 / NLOO,
           t_newton / NLOO, (double)s2 / NLOO, worst);
    tda_newton_factor_free(f);
    free(th);
    free(t1);
    free(t2);
    free(drop);
    free(x);
    free(y);
    eng_model_free(&m);
}

int main(void) {
    printf("newton\n");
    test_newton();
    printf("leave-one-out\n");
    test_loo();
    printf("statistics\n");
    test_stats();
    printf("train subset\n");
    test_train();
    printf("timing\n");
    timing();
    return check_report("test_tda_truth");
}
