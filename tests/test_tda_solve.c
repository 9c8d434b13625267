/* test_tda_solve.c — curvature over a parameter selection and its damped
 * inverses (workers/influence/tda_solve.h).
 *
 * Oracles are written here, in float64, independent of the complex step:
 *  1. Gauss-Newton matrix (cross-entropy with label smoothing, and MSE) of
 *     an MLP and of a small CNN over a selection of layers equals
 *     sum_n J_n^T H_loss J_n with J_n from central differences of the
 *     float64 logits (h = 1e-6) and H_loss in closed form;
 *  2. Hessian matrix equals central differences (h = 1e-5) of float64
 *     summed-loss gradients, to 1e-6 relative, and is symmetric;
 *  3. for a model linear in its parameters (flatten + linear) GN == Hessian
 *     to 1e-10;
 *  4. matvecs equal matrix times v (and accumulate); with the whole model
 *     selected they equal N * eng_gnvp / eng_hvp;
 *  5. sums are additive over row splits (to 1e-14 relative; not bitwise);
 *  6. dense: Cholesky and eigendecomposition agree to 1e-10, the eig path
 *     recovers known eigenvalues and the closed-form inverse, relative
 *     damping uses trace/n, indefinite matrices are refused with advice;
 *  7. CG and LiSSA converge to the dense solution (relative error <= 1e-3,
 *     the test), CG's reported residual is the true one, LiSSA with
 *     a too-small scale is reported as divergence naming `lissa_scale` and
 *     estimating the eigenvalue, negative curvature names `damping`;
 *  8. Hutchinson's trace is exact on a diagonal matrix and within 5 sigma
 *     otherwise; power iteration finds the largest eigenvalue. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "tda_solve.h"

#include "check.h"

enum { NROWS = 7, CAP = 3 };

static double urand(uint64_t k, uint64_t s) { return 2.0 * at_rng_uniform_f64(23, s, k, 0) - 1.0; }

/* ------------------------------------------------------------- models */

static int build_mlp(eng_model *m, at_err *err) {
    eng_layer s[6] = {{.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc1", .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "act1"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc2", .out_features = 4, .bias = 1},
                      {.kind = ENG_LAYER_GELU, .name = "act2"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc3", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 6, (int[]){2, 3}, 2, err);
}

static int build_cnn(eng_model *m, at_err *err) {
    eng_layer s[5] = {{.kind = ENG_LAYER_CONV2D,
                       .name = "c1",
                       .out_features = 2,
                       .kernel = {3, 3},
                       .padding = {1, 1},
                       .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "a1"},
                      {.kind = ENG_LAYER_AVGPOOL2D, .name = "p1", .kernel = {2, 2}},
                      {.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 5, (int[]){1, 5, 5}, 3, err);
}

/* fc2 is selected; the residual `add` reads fc1's output, below fc2's
 * input, so backward passes cannot stop under fc2 (the fallback path). */
static int build_residual(eng_model *m, at_err *err) {
    eng_layer s[6] = {{.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc1", .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_SILU, .name = "act1"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc2", .out_features = 5, .bias = 0},
                      {.kind = ENG_LAYER_ADD, .name = "res", .n_src = 2, .src = {1, 3}},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc3", .out_features = 4, .bias = 1}};
    return eng_model_init(m, s, 6, (int[]){6}, 1, err);
}

static int build_linear(eng_model *m, at_err *err) {
    eng_layer s[2] = {{.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 2, (int[]){2, 3}, 2, err);
}

static void randomise(eng_model *m, uint64_t seed) {
    eng_model_init_params(m, seed);
    for (size_t k = 0; k < m->n_params; k++) m->params[k] += (float)(0.5 * urand(k, seed + 1));
}

static void inputs(const eng_model *m, int N, float *x, int32_t *y, uint64_t seed) {
    for (size_t k = 0; k < (size_t)N * m->in_features; k++) x[k] = (float)urand(k, seed + 7);
    for (int n = 0; n < N; n++)
        y[n] = (int32_t)at_rng_below((uint64_t)m->out_features, seed, 6, (uint64_t)n, 0);
}

/* ------------------------------------------------ float64 oracles */

typedef struct {
    const eng_model *m;
    eng_workspace ws;
    double *p, *x; /* (n_params), (N, D) float64 copies */
    const int32_t *y;
    int N;
    size_t ps;   /* selected elements */
    size_t *off; /* (ps) their offsets in params */
} oracle;

static void oracle_init(oracle *o, const eng_model *m, const float *x, const int32_t *y, int N,
                        const char *const *layers, int n_layers) {
    o->m = m;
    o->N = N;
    o->y = y;
    eng_workspace_init(&o->ws, m, N, ENG_F64);
    o->p = malloc(m->n_params * sizeof(double));
    o->x = malloc((size_t)N * m->in_features * sizeof(double));
    for (size_t k = 0; k < m->n_params; k++) o->p[k] = m->params[k];
    for (size_t k = 0; k < (size_t)N * m->in_features; k++) o->x[k] = x[k];
    eng_param_sel sel;
    at_err err = {0};
    AT_CHECK(eng_param_sel_layers(m, layers, n_layers, &sel, &err) == 0);
    o->ps = sel.n;
    o->off = malloc(sel.n * sizeof(size_t));
    size_t k = 0;
    for (int t = 0; t < sel.n_tensors; t++)
        for (size_t e = 0; e < m->tensors[sel.tensor[t]].numel; e++)
            o->off[k++] = m->tensors[sel.tensor[t]].off + e;
}

static void oracle_free(oracle *o) {
    eng_workspace_free(&o->ws);
    free(o->p);
    free(o->x);
    free(o->off);
}

/* G (ps, ps) = sum_n J_n^T H_loss,n J_n, J by central differences. */
static void oracle_gn(oracle *o, const eng_loss *loss, double *G) {
    const int N = o->N, C = o->m->out_features;
    const size_t ps = o->ps, NC = (size_t)N * C;
    const double h = 1e-6;
    double *J = malloc(NC * ps * sizeof(double)); /* (N*C, ps) */
    double *z0 = malloc(NC * sizeof(double));
    memcpy(z0, eng_forward_f64(o->m, &o->ws, o->p, o->x, N), NC * sizeof(double));
    for (size_t k = 0; k < ps; k++) {
        double keep = o->p[o->off[k]];
        o->p[o->off[k]] = keep + h;
        double *zp = malloc(NC * sizeof(double));
        memcpy(zp, eng_forward_f64(o->m, &o->ws, o->p, o->x, N), NC * sizeof(double));
        o->p[o->off[k]] = keep - h;
        const double *zm = eng_forward_f64(o->m, &o->ws, o->p, o->x, N);
        o->p[o->off[k]] = keep;
        for (size_t r = 0; r < NC; r++) J[r * ps + k] = (zp[r] - zm[r]) / (2 * h);
        free(zp);
    }
    memset(G, 0, ps * ps * sizeof(double));
    double H[16 * 16];
    for (int n = 0; n < N; n++) {
        const double *z = z0 + (size_t)n * C;
        double q[16], mx = z[0], s = 0.0;
        for (int c = 1; c < C; c++) mx = fmax(mx, z[c]);
        for (int c = 0; c < C; c++) s += q[c] = exp(z[c] - mx);
        for (int a = 0; a < C; a++)
            for (int b = 0; b < C; b++)
                H[a * C + b] = loss->kind == ENG_LOSS_MSE
                                   ? (a == b ? 2.0 / C : 0.0)
                                   : (a == b ? q[a] / s : 0.0) - q[a] * q[b] / (s * s);
        const double *Jn = J + (size_t)n * C * ps;
        for (size_t i = 0; i < ps; i++)
            for (size_t j = 0; j < ps; j++) {
                double acc = 0.0;
                for (int a = 0; a < C; a++)
                    for (int b = 0; b < C; b++)
                        acc += Jn[a * ps + i] * H[a * C + b] * Jn[b * ps + j];
                G[i * ps + j] += acc;
            }
    }
    free(J);
    free(z0);
}

/* g (ps) = gradient of the SUMMED loss over the selection at o->p. */
static void oracle_grad(oracle *o, const eng_loss *loss, double *g) {
    const int N = o->N, C = o->m->out_features;
    const double *z = eng_forward_f64(o->m, &o->ws, o->p, o->x, N);
    double *dl = calloc((size_t)N * C, sizeof(double));
    double *dp = calloc(o->m->n_params, sizeof(double));
    eng_loss_backward_f64(loss, dl, z, o->y, NULL, N, C, 1.0);
    eng_backward_f64(o->m, &o->ws, o->p, o->x, dl, N, NULL, dp);
    for (size_t k = 0; k < o->ps; k++) g[k] = dp[o->off[k]];
    free(dl);
    free(dp);
}

/* H (ps, ps): column k = central difference (h = 1e-5) of the gradient. */
static void oracle_hessian(oracle *o, const eng_loss *loss, double *H) {
    const size_t ps = o->ps;
    const double h = 1e-5;
    double *gp = malloc(ps * sizeof(double)), *gm = malloc(ps * sizeof(double));
    for (size_t k = 0; k < ps; k++) {
        double keep = o->p[o->off[k]];
        o->p[o->off[k]] = keep + h;
        oracle_grad(o, loss, gp);
        o->p[o->off[k]] = keep - h;
        oracle_grad(o, loss, gm);
        o->p[o->off[k]] = keep;
        for (size_t i = 0; i < ps; i++) H[i * ps + k] = (gp[i] - gm[i]) / (2 * h);
    }
    free(gp);
    free(gm);
}

/* max |a - b| / max |b| */
static double rel_diff(const double *a, const double *b, size_t n) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return s > 0 ? d / s : d;
}

static double asym(const double *M, size_t p) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < p; i++)
        for (size_t j = 0; j < p; j++) {
            d = fmax(d, fabs(M[i * p + j] - M[j * p + i]));
            s = fmax(s, fabs(M[i * p + j]));
        }
    return d / s;
}

static double norm2(const double *a, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

/* M (p, p) of kind over all NROWS rows, the caller frees. */
static double *curv_matrix(tda_curv *c, const eng_model *m, const float *x, const int32_t *y,
                           int N) {
    size_t p = tda_curv_dim(c);
    double *M = calloc(p * p, sizeof(double));
    tda_curv_accum_matrix(c, m, x, y, N, M);
    return M;
}

/* ------------------------------------------- 1-5: curvature matrices */

static void check_curvature(const char *name, eng_model *m, const char *const *layers, int n_layers,
                            eng_loss loss, tda_curv_kind kind) {
    float x[NROWS * 64];
    int32_t y[NROWS];
    AT_CHECK(m->in_features <= 64);
    inputs(m, NROWS, x, y, 41);
    at_err err = {0};
    tda_curv *c;
    int rc = tda_curv_new(&c, m, layers, n_layers, kind, loss, CAP, &err);
    EXPECT(rc == 0, "%s: tda_curv_new: %s", name, err.msg);
    if (rc) return;
    const size_t p = tda_curv_dim(c);
    oracle o;
    oracle_init(&o, m, x, y, NROWS, layers, n_layers);
    EXPECT(p == o.ps, "%s: dim %zu, selection %zu", name, p, o.ps);
    EXPECT(tda_curv_bytes(c) > 0, "%s: bytes", name);

    double *M = curv_matrix(c, m, x, y, NROWS);
    double *R = malloc(p * p * sizeof(double));
    const char *what = kind == TDA_CURV_GAUSS_NEWTON ? "GN" : "Hessian";
    if (kind == TDA_CURV_GAUSS_NEWTON) {
        oracle_gn(&o, &loss, R);
        double e = rel_diff(M, R, p * p);
        EXPECT(e <= 1e-7, "%s: GN matrix vs finite-difference J^T H J: rel %.3g", name, e);
        printf("%s: GN vs FD Jacobian rel %.2e, p = %zu\n", name, e, p);
        double a = asym(M, p);
        EXPECT(a == 0.0, "%s: GN matrix not exactly symmetric: %.3g", name, a);
        /* PSD along random directions */
        double vMv = 0.0;
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j < p; j++) vMv += urand(i, 5) * M[i * p + j] * urand(j, 5);
        EXPECT(vMv >= 0.0, "%s: GN not PSD along v: %.3g", name, vMv);
    } else {
        oracle_hessian(&o, &loss, R);
        double e = rel_diff(M, R, p * p), a = asym(M, p);
        EXPECT(e <= 1e-6, "%s: Hessian matrix vs finite differences of gradients: rel %.3g", name,
               e);
        EXPECT(a <= 1e-12, "%s: Hessian not symmetric: %.3g", name, a);
        printf("%s: Hessian vs FD rel %.2e, asymmetry %.1e, p = %zu\n", name, e, a, p);
    }

    /* 4. matvecs = matrix times v, accumulated onto what out held */
    enum { NR = 3 };
    double *V = malloc(NR * p * sizeof(double)), *out = malloc(NR * p * sizeof(double));
    double *ref = malloc(NR * p * sizeof(double));
    for (size_t k = 0; k < NR * p; k++) {
        V[k] = urand(k, 17);
        out[k] = urand(k, 19);
    }
    for (int r = 0; r < NR; r++)
        for (size_t i = 0; i < p; i++) {
            double s = out[r * p + i];
            for (size_t j = 0; j < p; j++) s += M[i * p + j] * V[r * p + j];
            ref[r * p + i] = s;
        }
    tda_curv_accum_matvec(c, m, x, y, NROWS, V, NR, out);
    double e = rel_diff(out, ref, NR * p);
    EXPECT(e <= 1e-11, "%s: %s matvec vs matrix times v: rel %.3g", name, what, e);

    /* 5. additivity over a split of the rows (chunks 3+1 and 3 vs 3+3+1) */
    double *M2 = calloc(p * p, sizeof(double));
    tda_curv_accum_matrix(c, m, x, y, 4, M2);
    tda_curv_accum_matrix(c, m, x + 4 * m->in_features, y + 4, NROWS - 4, M2);
    e = rel_diff(M2, M, p * p);
    EXPECT(e <= 1e-14, "%s: %s matrix over rows [0,4) + [4,7) vs [0,7): rel %.3g", name, what, e);
    printf("%s: %s split additivity rel %.2e\n", name, what, e);
    memset(out, 0, NR * p * sizeof(double));
    memset(ref, 0, NR * p * sizeof(double));
    tda_curv_accum_matvec(c, m, x, y, NROWS, V, NR, ref);
    tda_curv_accum_matvec(c, m, x, y, 2, V, NR, out);
    tda_curv_accum_matvec(c, m, x + 2 * m->in_features, y + 2, NROWS - 2, V, NR, out);
    e = rel_diff(out, ref, NR * p);
    EXPECT(e <= 1e-14, "%s: %s matvec over a split of rows: rel %.3g", name, what, e);
    /* Gauss-Newton ignores the labels */
    if (kind == TDA_CURV_GAUSS_NEWTON) {
        double *M4 = calloc(p * p, sizeof(double));
        tda_curv_accum_matrix(c, m, x, NULL, NROWS, M4);
        EXPECT(memcmp(M4, M, p * p * sizeof(double)) == 0, "%s: GN depends on labels", name);
        free(M4);
    }
    /* same rows, same cap: bitwise */
    double *M3 = curv_matrix(c, m, x, y, NROWS);
    EXPECT(memcmp(M3, M, p * p * sizeof(double)) == 0, "%s: %s matrix not reproducible", name,
           what);

    /* whole model selected: matvec / N equals the engine's mean products */
    if (n_layers == 0 && p == m->n_params) {
        eng_curv cv;
        eng_curv_init(&cv, m, NROWS);
        double *hv = malloc(p * sizeof(double));
        memset(out, 0, p * sizeof(double));
        tda_curv_accum_matvec(c, m, x, y, NROWS, V, 1, out);
        if (kind == TDA_CURV_GAUSS_NEWTON)
            eng_gnvp(m, &cv, &loss, x, y, NROWS, V, hv);
        else
            eng_hvp(m, &cv, &loss, x, y, NROWS, V, hv);
        for (size_t i = 0; i < p; i++) out[i] /= NROWS;
        e = rel_diff(out, hv, p);
        EXPECT(e <= 1e-12, "%s: %s matvec / N vs engine: rel %.3g", name, what, e);
        free(hv);
        eng_curv_free(&cv);
    }
    free(M);
    free(M2);
    free(M3);
    free(R);
    free(V);
    free(out);
    free(ref);
    oracle_free(&o);
    tda_curv_free(c);
}

static void check_linear_gn_equals_hessian(void) {
    eng_model m;
    at_err err = {0};
    AT_CHECK(build_linear(&m, &err) == 0);
    randomise(&m, 8);
    float x[NROWS * 6];
    int32_t y[NROWS];
    inputs(&m, NROWS, x, y, 3);
    eng_loss losses[2] = {{ENG_LOSS_XENT, 0.2}, {ENG_LOSS_MSE, 0.0}};
    for (int l = 0; l < 2; l++) {
        tda_curv *g, *h;
        AT_CHECK(tda_curv_new(&g, &m, NULL, 0, TDA_CURV_GAUSS_NEWTON, losses[l], CAP, &err) == 0);
        AT_CHECK(tda_curv_new(&h, &m, NULL, 0, TDA_CURV_HESSIAN, losses[l], CAP, &err) == 0);
        size_t p = tda_curv_dim(g);
        double *G = curv_matrix(g, &m, x, y, NROWS), *H = curv_matrix(h, &m, x, y, NROWS);
        double e = rel_diff(G, H, p * p);
        EXPECT(e <= 1e-10, "linear model (%s): GN vs Hessian rel %.3g", l ? "mse" : "xent", e);
        printf("linear model (%s): GN vs Hessian rel %.2e\n", l ? "mse" : "xent", e);
        free(G);
        free(H);
        tda_curv_free(g);
        tda_curv_free(h);
    }
    eng_model_free(&m);
}

static void check_errors(void) {
    eng_model m;
    at_err err = {0};
    AT_CHECK(build_mlp(&m, &err) == 0);
    tda_curv *c = (tda_curv *)&m;
    eng_loss xent = {ENG_LOSS_XENT, 0.0}, margin = {ENG_LOSS_MARGIN, 0.0};
    int rc = tda_curv_new(&c, &m, (const char *[]){"fc9"}, 1, TDA_CURV_GAUSS_NEWTON, xent, 4, &err);
    EXPECT(rc == AT_EUSER && c == NULL && strstr(err.msg, "fc9") &&
               strstr(err.msg, "curvature layers"),
           "unknown layer: rc %d '%s'", rc, err.msg);
    at_err_clear(&err);
    rc = tda_curv_new(&c, &m, (const char *[]){"act1"}, 1, TDA_CURV_HESSIAN, xent, 4, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "act1"), "layer without parameters: rc %d '%s'", rc,
           err.msg);
    at_err_clear(&err);
    rc = tda_curv_new(&c, &m, NULL, 0, TDA_CURV_GAUSS_NEWTON, margin, 4, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "margin"), "margin loss: rc %d '%s'", rc, err.msg);
    eng_model_free(&m);
}

/* ---------------------------------------------------- 6: dense inverse */

/* A = Q diag(w) Q^T, Q = I - 2 u u^T / |u|^2 (symmetric orthogonal). */
static void known_matrix(double *A, double *Q, const double *w, int n) {
    double u[16], uu = 0.0;
    for (int i = 0; i < n; i++) uu += (u[i] = urand(i, 31) + 0.1);
    uu = 0.0;
    for (int i = 0; i < n; i++) uu += u[i] * u[i];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) Q[i * n + j] = (i == j) - 2.0 * u[i] * u[j] / uu;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++) s += Q[i * n + k] * w[k] * Q[j * n + k];
            A[i * n + j] = s;
        }
}

static void check_dense(void) {
    enum { n = 6, NR = 2 };
    const double w[n] = {0.01, 0.5, 1.0, 2.0, 3.5, 9.0};
    double A[n * n], Q[n * n], A1[n * n], A2[n * n], B1[NR * n], B2[NR * n], X[NR * n];
    known_matrix(A, Q, w, n);
    at_err err = {0};
    /* eig: eigenvalues and the closed-form inverse */
    const double lam = 0.25;
    for (int k = 0; k < NR * n; k++) B1[k] = B2[k] = urand(k, 37);
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int k = 0; k < n; k++) {
                double c = 0.0;
                for (int j = 0; j < n; j++) c += Q[j * n + k] * B1[r * n + j];
                s += Q[i * n + k] * c / (w[k] + lam);
            }
            X[r * n + i] = s;
        }
    memcpy(A1, A, sizeof A);
    memcpy(A2, A, sizeof A);
    tda_dense de, dc;
    EXPECT(tda_dense_factor(&de, A1, n, lam, 0, 1, &err) == 0, "eig factor: %s", err.msg);
    EXPECT(fabs(de.min_eig - w[0]) <= 1e-12 && fabs(de.max_eig - w[n - 1]) <= 1e-12,
           "eig: min %.15g max %.15g", de.min_eig, de.max_eig);
    EXPECT(de.lambda == lam, "absolute damping: lambda %g", de.lambda);
    EXPECT(tda_dense_factor(&dc, A2, n, lam, 0, 0, &err) == 0, "cholesky factor: %s", err.msg);
    EXPECT(isnan(dc.min_eig), "cholesky: min_eig should be NAN");
    tda_dense_solve(&de, B1, NR);
    tda_dense_solve(&dc, B2, NR);
    double e1 = rel_diff(B1, X, NR * n), e2 = rel_diff(B2, X, NR * n);
    EXPECT(e1 <= 1e-12 && e2 <= 1e-12, "dense solve vs closed form: eig %.3g, cholesky %.3g", e1,
           e2);
    tda_dense_free(&de);
    tda_dense_free(&dc);
    EXPECT(de.evals == NULL && de.fac == NULL, "tda_dense_free leaves d empty");

    /* relative damping uses trace / n */
    memcpy(A1, A, sizeof A);
    double tr = 0.0;
    for (int i = 0; i < n; i++) tr += A[i * n + i];
    EXPECT(tda_dense_factor(&dc, A1, n, 0.1, 1, 0, &err) == 0, "relative: %s", err.msg);
    EXPECT(fabs(dc.mean_eig - tr / n) <= 1e-15 * tr && fabs(dc.lambda - 0.1 * tr / n) <= 1e-15 * tr,
           "relative damping: mean %.17g (want %.17g), lambda %.17g", dc.mean_eig, tr / n,
           dc.lambda);
    EXPECT(fabs(tr / n - 16.01 / 6) <= 1e-12, "trace of the known matrix %.15g", tr);
    tda_dense_free(&dc);

    /* indefinite: both paths refuse and say to raise damping */
    double Bad[4] = {1.0, 0.0, 0.0, -1.0};
    at_err_clear(&err);
    int rc = tda_dense_factor(&dc, Bad, 2, 0.5, 0, 0, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "raise `damping`") && dc.fac == NULL,
           "cholesky of an indefinite matrix: rc %d '%s'", rc, err.msg);
    double Bad2[4] = {1.0, 0.0, 0.0, -1.0};
    at_err_clear(&err);
    rc = tda_dense_factor(&de, Bad2, 2, 0.5, 0, 1, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "raise `damping` above 1") && de.evals == NULL,
           "eig of an indefinite matrix: rc %d '%s'", rc, err.msg);
    double Nan[4] = {1.0, NAN, NAN, 1.0};
    at_err_clear(&err);
    rc = tda_dense_factor(&de, Nan, 2, 0.5, 0, 1, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "non-finite"), "NaN matrix: '%s'", err.msg);
    double Neg[4] = {-1.0, 0.0, 0.0, -1.0};
    at_err_clear(&err);
    rc = tda_dense_factor(&de, Neg, 2, 0.5, 1, 1, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "damping_relative"), "relative, negative trace: '%s'",
           err.msg);
}

/* -------------------------------------------- 7-8: iterative inverses */

/* Mean GN curvature of the MLP over NROWS rows, through tda_curv. */
typedef struct {
    tda_curv *c;
    const eng_model *m;
    const float *x;
    const int32_t *y;
    int calls;
    int64_t last_step;
} curv_ctx;

static void curv_mv(void *ctx, int64_t step, const double *v, double *out) {
    curv_ctx *k = ctx;
    size_t p = tda_curv_dim(k->c);
    memset(out, 0, p * sizeof(double));
    tda_curv_accum_matvec(k->c, k->m, k->x, k->y, NROWS, v, 1, out);
    for (size_t i = 0; i < p; i++) out[i] /= NROWS;
    k->calls++;
    k->last_step = step;
}

typedef struct {
    const double *A;
    int n;
} dense_ctx;

static void dense_mv(void *ctx, int64_t step, const double *v, double *out) {
    const dense_ctx *k = ctx;
    (void)step;
    for (int i = 0; i < k->n; i++) {
        double s = 0.0;
        for (int j = 0; j < k->n; j++) s += k->A[(size_t)i * k->n + j] * v[j];
        out[i] = s;
    }
}

/* dense_mv plus a perturbation of relative size 1e-8 that changes with the
 * step: CG's recurrence residual then drifts away from the true one. */
static void noisy_mv(void *ctx, int64_t step, const double *v, double *out) {
    const dense_ctx *k = ctx;
    dense_mv(ctx, step, v, out);
    double vn = norm2(v, k->n);
    for (int i = 0; i < k->n; i++) out[i] += 1e-8 * vn * urand((uint64_t)i, 100 + step);
}

/* CG reports the true residual even when its recurrence says otherwise. */
static void check_cg_honest(void) {
    enum { n = 10 };
    double A[n * n], Q[n * n], b[n], x[n], r[n];
    const double w[n] = {0.02, 0.1, 0.3, 0.5, 1, 2, 3, 5, 8, 13};
    known_matrix(A, Q, w, n);
    for (int i = 0; i < n; i++) b[i] = urand(i, 61);
    dense_ctx k = {A, n};
    tda_cg_info ci;
    tda_cg(noisy_mv, &k, n, 0.01, b, x, 1e-13, 60, &ci);
    dense_mv(&k, 0, x, r);
    for (int i = 0; i < n; i++) r[i] = b[i] - r[i] - 0.01 * x[i];
    double truth = norm2(r, n) / norm2(b, n);
    EXPECT(ci.rel_residual >= 0.2 * truth && ci.rel_residual <= 5 * truth + 1e-12 &&
               !ci.converged && ci.iters == 60,
           "CG with inexact products: reported %.3g, noise-free residual %.3g, converged %d, "
           "iters %d",
           ci.rel_residual, truth, ci.converged, ci.iters);
    printf("CG inexact products: reported residual %.2e, noise-free %.2e\n", ci.rel_residual,
           truth);
}

static void check_iterative(void) {
    eng_model m;
    at_err err = {0};
    AT_CHECK(build_mlp(&m, &err) == 0);
    randomise(&m, 4);
    float x[NROWS * 6];
    int32_t y[NROWS];
    inputs(&m, NROWS, x, y, 13);
    eng_loss xent = {ENG_LOSS_XENT, 0.0};
    curv_ctx k = {0};
    AT_CHECK(tda_curv_new(&k.c, &m, (const char *[]){"fc2", "fc3"}, 2, TDA_CURV_GAUSS_NEWTON, xent,
                          CAP, &err) == 0);
    k.m = &m;
    k.x = x;
    k.y = y;
    const int p = (int)tda_curv_dim(k.c);
    double *Cm = curv_matrix(k.c, &m, x, y, NROWS);
    for (int i = 0; i < p * p; i++) Cm[i] /= NROWS;
    double *Ce = malloc((size_t)p * p * sizeof(double));
    memcpy(Ce, Cm, (size_t)p * p * sizeof(double));
    tda_dense de;
    AT_CHECK(tda_dense_factor(&de, Ce, p, 1e-8, 1, 1, &err) == 0); /* singular: rank <= 14 */
    const double lmax = de.max_eig, lam = 0.05 * lmax;
    tda_dense_free(&de);
    free(Ce);

    /* dense reference x* = (C + lam I)^-1 b */
    double *b = malloc(p * sizeof(double)), *xs = malloc(p * sizeof(double));
    double *xi = malloc(p * sizeof(double)), *r = malloc(p * sizeof(double));
    for (int i = 0; i < p; i++) b[i] = xs[i] = urand(i, 43);
    double *Cc = malloc((size_t)p * p * sizeof(double));
    memcpy(Cc, Cm, (size_t)p * p * sizeof(double));
    tda_dense dc;
    AT_CHECK(tda_dense_factor(&dc, Cc, p, lam, 0, 0, &err) == 0);
    tda_dense_solve(&dc, xs, 1);
    tda_dense_free(&dc);
    free(Cc);
    /* Cholesky vs eig on this matrix */
    double *Ca = malloc((size_t)p * p * sizeof(double)), *xe = malloc(p * sizeof(double));
    memcpy(Ca, Cm, (size_t)p * p * sizeof(double));
    memcpy(xe, b, p * sizeof(double));
    AT_CHECK(tda_dense_factor(&de, Ca, p, lam, 0, 1, &err) == 0);
    tda_dense_solve(&de, xe, 1);
    tda_dense_free(&de);
    double e = rel_diff(xe, xs, p);
    EXPECT(e <= 1e-10, "GN of MLP: cholesky vs eig solve rel %.3g", e);
    free(Ca);
    free(xe);

    /* CG */
    tda_cg_info ci;
    tda_cg(curv_mv, &k, p, lam, b, xi, 1e-10, 500, &ci);
    for (int i = 0; i < p; i++) r[i] = xi[i] - xs[i];
    e = norm2(r, p) / norm2(xs, p);
    EXPECT(ci.converged && e <= 1e-3, "CG: converged %d after %d, rel error %.3g", ci.converged,
           ci.iters, e);
    /* honest residual, recomputed with the same products */
    curv_mv(&k, 0, xi, r);
    for (int i = 0; i < p; i++) r[i] = b[i] - r[i] - lam * xi[i];
    double rel = norm2(r, p) / norm2(b, p);
    EXPECT(fabs(rel - ci.rel_residual) <= 1e-6 * rel + 1e-16 && rel <= 1e-10,
           "CG residual reported %.6g, recomputed %.6g", ci.rel_residual, rel);
    printf("CG: %d iterations, residual %.2e, error vs dense %.2e\n", ci.iters, rel, e);
    /* not converged: reported honestly */
    tda_cg(curv_mv, &k, p, lam, b, xi, 1e-10, 2, &ci);
    curv_mv(&k, 0, xi, r);
    for (int i = 0; i < p; i++) r[i] = b[i] - r[i] - lam * xi[i];
    rel = norm2(r, p) / norm2(b, p);
    EXPECT(!ci.converged && ci.iters == 2 && fabs(rel - ci.rel_residual) <= 1e-9 * rel,
           "CG capped at 2: converged %d iters %d residual %.6g recomputed %.6g", ci.converged,
           ci.iters, ci.rel_residual, rel);

    /* power iteration and LiSSA */
    double est = tda_max_eig(curv_mv, &k, p, 300, 5);
    EXPECT(est <= lmax * (1 + 1e-12) && est >= lmax * (1 - 1e-4),
           "power iteration %.10g vs dense %.10g", est, lmax);
    const double scale = 1.2 * (est + lam);
    tda_lissa_info li;
    k.calls = 0;
    int rc = tda_lissa(curv_mv, &k, p, lam, b, xi, 300, scale, 2, &li, &err);
    for (int i = 0; i < p; i++) r[i] = xi[i] - xs[i];
    e = norm2(r, p) / norm2(xs, p);
    EXPECT(rc == 0 && !li.diverged && e <= 1e-3, "LiSSA: rc %d '%s', rel error %.3g", rc, err.msg,
           e);
    EXPECT(li.steps == 600 && k.calls == 600 && k.last_step == 599,
           "LiSSA steps %d calls %d last %lld", li.steps, k.calls, (long long)k.last_step);
    printf("LiSSA: depth 300 x 2, scale %.4g, error vs dense %.2e, growth %.3g\n", scale, e,
           li.growth);
    /* too small a scale: divergence, named, with an eigenvalue estimate */
    at_err_clear(&err);
    rc = tda_lissa(curv_mv, &k, p, lam, b, xi, 200, 0.2 * (lmax + lam), 1, &li, &err);
    double about = 0.0;
    const char *a = strstr(err.msg, "about ");
    if (a) about = strtod(a + 6, NULL);
    EXPECT(rc == AT_EUSER && li.diverged && li.steps < 50 && strstr(err.msg, "lissa_scale") &&
               strstr(err.msg, "diverged") && fabs(about - (lmax + lam)) <= 0.05 * (lmax + lam),
           "LiSSA too-small scale: rc %d steps %d '%s' (largest %.4g)", rc, li.steps, err.msg,
           lmax + lam);
    printf("LiSSA divergence: %s\n", err.msg);
    double xn = norm2(xi, p);
    EXPECT(xn == 0.0, "LiSSA: x zero on error");
    /* negative curvature beyond the damping names `damping` */
    double Dm[4] = {-1.0, 0.0, 0.0, 2.0}, b2[2] = {1.0, 1.0}, x2[2];
    dense_ctx dk = {Dm, 2};
    at_err_clear(&err);
    rc = tda_lissa(dense_mv, &dk, 2, 0.5, b2, x2, 500, 4.0, 1, &li, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "raise `damping`"), "LiSSA negative: rc %d '%s'", rc,
           err.msg);
    at_err_clear(&err);
    rc = tda_lissa(dense_mv, &dk, 2, 0.5, b2, x2, 0, 4.0, 1, &li, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "lissa_depth"), "LiSSA depth 0: '%s'", err.msg);

    /* Hutchinson: exact on a diagonal matrix, within 5 sigma otherwise */
    double Dg[9] = {1.5, 0, 0, 0, -2.0, 0, 0, 0, 7.25};
    dense_ctx dd = {Dg, 3};
    double t = tda_trace_estimate(dense_mv, &dd, 3, 1, 9);
    EXPECT(fabs(t - 6.75) <= 1e-15, "trace of a diagonal: %.17g", t);
    dense_ctx dm = {Cm, p};
    const int probes = 4000;
    double tr = 0.0, off2 = 0.0;
    for (int i = 0; i < p; i++)
        for (int j = 0; j < p; j++)
            if (i == j)
                tr += Cm[i * p + i];
            else
                off2 += Cm[i * p + j] * Cm[i * p + j];
    double sigma = sqrt(2.0 * off2 / probes);
    t = tda_trace_estimate(dense_mv, &dm, p, probes, 9);
    double t2 = tda_trace_estimate(dense_mv, &dm, p, probes, 9);
    double t3 = tda_trace_estimate(dense_mv, &dm, p, probes, 10);
    EXPECT(fabs(t - tr) <= 5 * sigma && t == t2 && t3 != t,
           "Hutchinson: %.6g vs trace %.6g (sigma %.3g); reproducible %d", t, tr, sigma, t == t2);
    printf("Hutchinson: %.5g vs trace %.5g, sigma %.2g\n", t, tr, sigma);

    free(b);
    free(xs);
    free(xi);
    free(r);
    free(Cm);
    tda_curv_free(k.c);
    eng_model_free(&m);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    at_err err = {0};
    eng_model mlp, cnn, res;
    AT_CHECK(build_mlp(&mlp, &err) == 0);
    AT_CHECK(build_cnn(&cnn, &err) == 0);
    AT_CHECK(build_residual(&res, &err) == 0);
    randomise(&mlp, 2);
    randomise(&cnn, 3);
    randomise(&res, 5);
    eng_loss xent = {ENG_LOSS_XENT, 0.0}, smooth = {ENG_LOSS_XENT, 0.1}, mse = {ENG_LOSS_MSE, 0.0};
    const char *sel13[] = {"fc1", "fc3"}, *sel2[] = {"fc2"}, *selc[] = {"c1", "fc"};
    check_curvature("mlp[fc1,fc3] xent+ls", &mlp, sel13, 2, smooth, TDA_CURV_GAUSS_NEWTON);
    check_curvature("mlp[fc2] mse", &mlp, sel2, 1, mse, TDA_CURV_GAUSS_NEWTON);
    check_curvature("mlp[all] xent", &mlp, NULL, 0, xent, TDA_CURV_GAUSS_NEWTON);
    check_curvature("cnn[c1,fc] xent", &cnn, selc, 2, xent, TDA_CURV_GAUSS_NEWTON);
    check_curvature("mlp[fc1,fc3] xent+ls", &mlp, sel13, 2, smooth, TDA_CURV_HESSIAN);
    check_curvature("mlp[fc2] mse", &mlp, sel2, 1, mse, TDA_CURV_HESSIAN);
    check_curvature("mlp[all] xent", &mlp, NULL, 0, xent, TDA_CURV_HESSIAN);
    check_curvature("cnn[fc] xent", &cnn, (const char *[]){"fc"}, 1, xent, TDA_CURV_HESSIAN);
    const char *selr[] = {"fc2"};
    check_curvature("residual[fc2] xent", &res, selr, 1, xent, TDA_CURV_GAUSS_NEWTON);
    check_curvature("residual[fc2] xent", &res, selr, 1, xent, TDA_CURV_HESSIAN);
    check_linear_gn_equals_hessian();
    check_errors();
    check_dense();
    check_iterative();
    check_cg_honest();
    eng_model_free(&mlp);
    eng_model_free(&cnn);
    eng_model_free(&res);
    return check_report("test_tda_solve");
}
