/* test_tda_kfac.c — K-FAC / EK-FAC (workers/influence/tda_kfac.h) against
 * quantities the test derives on its own, in float64:
 *  1. where K-FAC is exact — one linear layer with one output and MSE; one
 *     linear layer with C outputs and MSE (H_loss = 2/C I); one linear layer
 *     with C outputs, cross-entropy and a zero weight (every example then
 *     has p = softmax(b), so G = H(p) (x) E[a a^T]) — apply equals the
 *     damped Gauss-Newton inverse built in closed form and solved by
 *     Gaussian elimination here, to 1e-8 relative, for K-FAC and EK-FAC;
 *  2. on a 2-layer tanh MLP with cross-entropy: the exact Gauss-Newton
 *     matrix from per-example class gradients equals eng_gnvp's (complex
 *     step) columns; the matrices K-FAC and EK-FAC imply (inverted from
 *     apply's columns) — EK-FAC is closer to it in Frobenius norm, and its
 *     diagonal in the Kronecker eigenbasis (the test's own dsyevd of its own
 *     A, S) equals the exact matrix's, where K-FAC's does not;
 *  3. statistics are additive over row ranges (both stages, conv and
 *     sequence models) to 1e-12;
 *  4. apply inverts the implied matrix F + lambda I built here from naive
 *     A, S (im2col written here for conv; KFC scaling) and, for EK-FAC,
 *     Lambda from per-example gradients rotated by the test's eigenvectors:
 *     (F + lambda I) apply(g) = g to 1e-10, for a linear on (T, IC)
 *     without bias, a strided padded conv, and the conv model's last layer
 *     alone;
 *  5. relative damping = damping * mean eigenvalue (K-FAC: sum tr S tr A / p,
 *     EK-FAC: tr G / p); refusals of layernorm / attention layers (named),
 *     the margin loss, and "0 layers" selecting the linear layers only;
 *     tda_kfac_plan's bytes equal tda_kfac_bytes of every object made. */
#define _GNU_SOURCE
#include <sched.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"
#include "tda_kfac.h"

#include "check.h"

static double urand(uint64_t seed, uint64_t k) { return 2.0 * at_rng_uniform_f64(seed, 9, k, 0) - 1.0; }

static void rand_x(float *x, size_t n, uint64_t seed) {
    for (size_t k = 0; k < n; k++) x[k] = (float)urand(seed, k);
}

static double max_abs(const double *a, size_t n) {
    double r = 0.0;
    for (size_t i = 0; i < n; i++) r = fmax(r, fabs(a[i]));
    return r;
}

/* Solve M y = b (n x n, row-major, copied) by Gaussian elimination with
 * partial pivoting; y may alias b. */
static void gauss_solve(const double *M, const double *b, double *y, int n) {
    double *a = malloc((size_t)n * (n + 1) * sizeof(double));
    for (int i = 0; i < n; i++) {
        memcpy(a + (size_t)i * (n + 1), M + (size_t)i * n, (size_t)n * sizeof(double));
        a[(size_t)i * (n + 1) + n] = b[i];
    }
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[(size_t)r * (n + 1) + c]) > fabs(a[(size_t)piv * (n + 1) + c])) piv = r;
        for (int j = 0; j <= n; j++) {
            double t = a[(size_t)c * (n + 1) + j];
            a[(size_t)c * (n + 1) + j] = a[(size_t)piv * (n + 1) + j];
            a[(size_t)piv * (n + 1) + j] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = a[(size_t)r * (n + 1) + c] / a[(size_t)c * (n + 1) + c];
            for (int j = c; j <= n; j++) a[(size_t)r * (n + 1) + j] -= f * a[(size_t)c * (n + 1) + j];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = a[(size_t)r * (n + 1) + n];
        for (int j = r + 1; j < n; j++) s -= a[(size_t)r * (n + 1) + j] * y[j];
        y[r] = s / a[(size_t)r * (n + 1) + r];
    }
    free(a);
}

/* ------------------------------------------------------------ oracle */

typedef struct {
    int layer, conv, OC, Kin, K1, P, bias;
    size_t col_w, col_b;
    double *A, *S;   /* (K1, K1), (OC, OC): means as tda_kfac.h defines them */
    double *QA, *ea; /* the test's own eigendecompositions */
    double *QS, *es;
} o_layer;

typedef struct {
    int nl, N, C;
    o_layer L[4];
    size_t p;
    eng_param_sel sel;
    double *G;  /* (C*N, p): per-example class-c gradients, row c*N + n */
    double *GN; /* (p, p) exact Gauss-Newton of the mean loss */
} oracle;

/* Selection index of entry (o, j) of layer L's [W | b] matrix. */
static size_t o_idx(const o_layer *L, int o, int j) {
    return j < L->Kin ? L->col_w + (size_t)o * L->Kin + j : L->col_b + o;
}

static void sym_eig(const double *M, int n, double *Q, double *e) {
    memcpy(Q, M, (size_t)n * n * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, Q, n, e);
    EXPECT(info == 0, "test dsyevd info %d", (int)info);
}

static void oracle_build(oracle *o, const eng_model *m, const char *const *names, int nn,
                         eng_loss loss, const float *x, int N) {
    memset(o, 0, sizeof *o);
    at_err err = {0};
    EXPECT(eng_param_sel_layers(m, names, nn, &o->sel, &err) == 0, "sel: %s", err.msg);
    o->N = N;
    o->C = m->out_features;
    const int C = o->C;
    size_t col = 0;
    for (int t = 0; t < o->sel.n_tensors; t++) {
        const eng_tensor *T = &m->tensors[o->sel.tensor[t]];
        const eng_layer *ly = &m->layers[T->layer];
        if (o->nl && o->L[o->nl - 1].layer == T->layer) { /* the bias */
            o->L[o->nl - 1].bias = 1;
            o->L[o->nl - 1].col_b = col;
            col += T->numel;
            continue;
        }
        o_layer *L = &o->L[o->nl++];
        L->layer = T->layer;
        L->conv = ly->kind == ENG_LAYER_CONV2D;
        L->OC = ly->out_features;
        L->Kin = (int)(T->numel / (size_t)L->OC);
        L->P = L->conv ? ly->g.OH * ly->g.OW : (int)(ly->in_numel / (size_t)L->Kin);
        L->col_w = col;
        col += T->numel;
    }
    o->p = col;
    const size_t p = o->p;
    double *pd = malloc(m->n_params * sizeof(double)), *xd = malloc((size_t)N * m->in_features * sizeof(double));
    for (size_t k = 0; k < m->n_params; k++) pd[k] = m->params[k];
    for (size_t k = 0; k < (size_t)N * m->in_features; k++) xd[k] = x[k];
    eng_workspace ws;
    eng_workspace_init(&ws, m, N, ENG_F64);
    const double *z = eng_forward_f64(m, &ws, pd, xd, N);
    double *prob = malloc((size_t)N * C * sizeof(double)), *dl = malloc((size_t)N * C * sizeof(double));
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < C; c++) mx = fmax(mx, z[n * C + c]);
        for (int c = 0; c < C; c++) s += exp(z[n * C + c] - mx);
        for (int c = 0; c < C; c++) prob[n * C + c] = exp(z[n * C + c] - mx) / s;
    }
    /* A: naive loops over examples and positions (im2col written out) */
    for (int l = 0; l < o->nl; l++) {
        o_layer *L = &o->L[l];
        const eng_layer *ly = &m->layers[L->layer];
        L->K1 = L->Kin + L->bias;
        L->A = calloc((size_t)L->K1 * L->K1, sizeof(double));
        L->S = calloc((size_t)L->OC * L->OC, sizeof(double));
        const double *in = ly->src[0] == ENG_SRC_INPUT ? xd : eng_ws_act(&ws, ly->src[0]);
        double *a = malloc((size_t)L->K1 * sizeof(double));
        for (int n = 0; n < N; n++)
            for (int t = 0; t < L->P; t++) {
                for (int j = 0; j < L->Kin; j++) {
                    if (!L->conv) {
                        a[j] = in[((size_t)n * L->P + t) * L->Kin + j];
                        continue;
                    }
                    const eng_geom2d *g = &ly->g;
                    int c = j / (g->KH * g->KW), kh = j / g->KW % g->KH, kw = j % g->KW;
                    int oh = t / g->OW, ow = t % g->OW;
                    int ih = oh * g->SH - g->PH + kh * g->DH, iw = ow * g->SW - g->PW + kw * g->DW;
                    a[j] = ih < 0 || ih >= g->H || iw < 0 || iw >= g->W
                               ? 0.0
                               : in[(size_t)n * ly->in_numel + ((size_t)c * g->H + ih) * g->W + iw];
                }
                if (L->bias) a[L->Kin] = 1.0;
                for (int i = 0; i < L->K1; i++)
                    for (int j = 0; j < L->K1; j++)
                        L->A[(size_t)i * L->K1 + j] += a[i] * a[j] / L->P / N;
            }
        free(a);
    }
    o->G = malloc((size_t)C * N * p * sizeof(double));
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++)
            for (int j = 0; j < C; j++)
                dl[n * C + j] = loss.kind == ENG_LOSS_MSE
                                    ? (j == c ? sqrt(2.0 / C) : 0.0)
                                    : sqrt(prob[n * C + c]) * (prob[n * C + j] - (j == c));
        eng_backward_f64(m, &ws, pd, xd, dl, N, NULL, NULL);
        eng_grad_per_example_f64(m, &ws, pd, xd, N, &o->sel, o->G + (size_t)c * N * p);
        for (int l = 0; l < o->nl; l++) {
            o_layer *L = &o->L[l];
            const double *d = eng_ws_grad(&ws, L->layer);
            for (int n = 0; n < N; n++)
                for (int t = 0; t < L->P; t++)
                    for (int i = 0; i < L->OC; i++)
                        for (int j = 0; j < L->OC; j++) {
                            double gi = L->conv ? d[((size_t)n * L->OC + i) * L->P + t]
                                                : d[((size_t)n * L->P + t) * L->OC + i];
                            double gj = L->conv ? d[((size_t)n * L->OC + j) * L->P + t]
                                                : d[((size_t)n * L->P + t) * L->OC + j];
                            L->S[(size_t)i * L->OC + j] += gi * gj / N;
                        }
        }
    }
    o->GN = calloc(p * p, sizeof(double));
    for (int r = 0; r < C * N; r++) {
        const double *g = o->G + (size_t)r * p;
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j < p; j++) o->GN[i * p + j] += g[i] * g[j] / N;
    }
    for (int l = 0; l < o->nl; l++) {
        o_layer *L = &o->L[l];
        L->QA = malloc((size_t)L->K1 * L->K1 * sizeof(double));
        L->ea = malloc((size_t)L->K1 * sizeof(double));
        L->QS = malloc((size_t)L->OC * L->OC * sizeof(double));
        L->es = malloc((size_t)L->OC * sizeof(double));
        sym_eig(L->A, L->K1, L->QA, L->ea);
        sym_eig(L->S, L->OC, L->QS, L->es);
    }
    eng_workspace_free(&ws);
    free(pd); free(xd); free(prob); free(dl);
}

static void oracle_free(oracle *o) {
    for (int l = 0; l < o->nl; l++) {
        o_layer *L = &o->L[l];
        free(L->A); free(L->S); free(L->QA); free(L->ea); free(L->QS); free(L->es);
    }
    free(o->G);
    free(o->GN);
}

/* u (p) = vec of q_S_i q_A_j^T in the selection layout. */
static void o_basis(const o_layer *L, int i, int j, double *u, size_t p) {
    memset(u, 0, p * sizeof(double));
    for (int o = 0; o < L->OC; o++)
        for (int c = 0; c < L->K1; c++)
            u[o_idx(L, o, c)] = L->QS[(size_t)o * L->OC + i] * L->QA[(size_t)c * L->K1 + j];
}

/* F (p, p) = the block-diagonal matrix K-FAC (ekfac 0) or EK-FAC implies,
 * from the oracle's own A, S, eigenvectors and per-example gradients. */
static void implied(const oracle *o, int ekfac, double *F) {
    const size_t p = o->p;
    memset(F, 0, p * p * sizeof(double));
    double *u = malloc(p * sizeof(double));
    for (int l = 0; l < o->nl; l++) {
        const o_layer *L = &o->L[l];
        if (!ekfac) {
            for (int a = 0; a < L->OC; a++)
                for (int b = 0; b < L->K1; b++)
                    for (int c = 0; c < L->OC; c++)
                        for (int d = 0; d < L->K1; d++)
                            F[o_idx(L, a, b) * p + o_idx(L, c, d)] =
                                L->S[(size_t)a * L->OC + c] * L->A[(size_t)b * L->K1 + d];
            continue;
        }
        for (int i = 0; i < L->OC; i++)
            for (int j = 0; j < L->K1; j++) {
                o_basis(L, i, j, u, p);
                double lam = 0.0;
                for (int r = 0; r < o->C * o->N; r++) {
                    double s = 0.0;
                    for (size_t q = 0; q < p; q++) s += u[q] * o->G[(size_t)r * p + q];
                    lam += s * s / o->N;
                }
                for (size_t a = 0; a < p; a++)
                    if (u[a] != 0.0)
                        for (size_t b = 0; b < p; b++) F[a * p + b] += lam * u[a] * u[b];
            }
    }
    free(u);
}

/* Run K-FAC/EK-FAC end to end over (x, N) in chunks of cap. */
static tda_kfac *fit(const eng_model *m, const char *const *names, int nn, int ekfac,
                     eng_loss loss, const float *x, int N, int cap, double damping,
                     int relative, double *lambda_used) {
    at_err err = {0};
    tda_kfac *k = NULL;
    if (tda_kfac_new(&k, m, names, nn, ekfac, loss, cap, &err)) {
        EXPECT(0, "tda_kfac_new: %s", err.msg);
        return NULL;
    }
    size_t planned = 0;
    EXPECT(tda_kfac_plan(m, names, nn, ekfac, loss, cap, &planned, &err) == 0 &&
               planned == tda_kfac_bytes(k) && planned > 0,
           "tda_kfac_plan %zu vs tda_kfac_bytes %zu", planned, tda_kfac_bytes(k));
    double *s0 = calloc(tda_kfac_stats_len(k, 0), sizeof(double));
    tda_kfac_accum(k, m, 0, x, NULL, N, s0);
    EXPECT(tda_kfac_factor(k, s0, N, &err) == 0, "factor: %s", err.msg);
    double *s1 = NULL;
    if (ekfac) {
        s1 = calloc(tda_kfac_stats_len(k, 1) + 1, sizeof(double));
        tda_kfac_accum(k, m, 1, x, NULL, N, s1);
    }
    EXPECT(tda_kfac_finish(k, s1, N, damping, relative, lambda_used, &err) == 0, "finish: %s",
           err.msg);
    free(s0);
    free(s1);
    return k;
}

/* ------------------------------------------------------------- models */

static void build(eng_model *m, const eng_layer *s, int n, const int *shape, int nd, uint64_t seed) {
    at_err err = {0};
    EXPECT(eng_model_init(m, s, n, shape, nd, &err) == 0, "model: %s", err.msg);
    eng_model_init_params(m, seed);
}

static void build_mlp(eng_model *m) {
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .name = "fc1", .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "act"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc2", .out_features = 3, .bias = 1}};
    build(m, s, 3, (int[]){4}, 1, 21);
    for (size_t k = 0; k < m->n_params; k++) m->params[k] *= 2.5f; /* curvier */
}

static void build_seq(eng_model *m) {
    eng_layer s[4] = {{.kind = ENG_LAYER_LINEAR, .name = "s1", .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "act"},
                      {.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "s2", .out_features = 3, .bias = 0}};
    build(m, s, 4, (int[]){3, 4}, 2, 22);
}

static void build_conv(eng_model *m) {
    eng_layer s[4] = {{.kind = ENG_LAYER_CONV2D, .name = "c1", .out_features = 3, .kernel = {3, 3},
                       .stride = {2, 2}, .padding = {1, 1}, .bias = 1},
                      {.kind = ENG_LAYER_TANH, .name = "act"},
                      {.kind = ENG_LAYER_FLATTEN, .name = "flat"},
                      {.kind = ENG_LAYER_LINEAR, .name = "f", .out_features = 3, .bias = 1}};
    build(m, s, 4, (int[]){2, 5, 5}, 3, 23);
}

/* ---------------------------------------------------- 1. exact cases */

static void check_exact_case(const char *what, int OC, eng_loss loss, int zero_weight) {
    const int IC = 5, N = 30, K1 = IC + 1, nrhs = 2;
    eng_layer s[1] = {{.kind = ENG_LAYER_LINEAR, .name = "lin", .out_features = OC, .bias = 1}};
    eng_model m;
    build(&m, s, 1, (int[]){IC}, 1, 31);
    if (zero_weight) {
        memset(m.params, 0, (size_t)OC * IC * sizeof(float));
        for (int o = 0; o < OC; o++) m.params[OC * IC + o] = (float)(1.5 * urand(5, o));
    }
    float *x = malloc((size_t)N * IC * sizeof(float));
    rand_x(x, (size_t)N * IC, 32);
    const int p = OC * K1;
    /* H_loss (shared by every example here) and E[a a^T] */
    double *H = calloc((size_t)OC * OC, sizeof(double)), *A = calloc((size_t)K1 * K1, sizeof(double));
    if (loss.kind == ENG_LOSS_MSE)
        for (int o = 0; o < OC; o++) H[o * OC + o] = 2.0 / OC;
    else {
        double pr[8], mx = -INFINITY, sum = 0.0;
        for (int o = 0; o < OC; o++) mx = fmax(mx, m.params[OC * IC + o]);
        for (int o = 0; o < OC; o++) sum += (pr[o] = exp(m.params[OC * IC + o] - mx));
        for (int o = 0; o < OC; o++) pr[o] /= sum;
        for (int a = 0; a < OC; a++)
            for (int b = 0; b < OC; b++) H[a * OC + b] = (a == b) * pr[a] - pr[a] * pr[b];
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < K1; i++)
            for (int j = 0; j < K1; j++) {
                double ai = i < IC ? x[n * IC + i] : 1.0, aj = j < IC ? x[n * IC + j] : 1.0;
                A[i * K1 + j] += ai * aj / N;
            }
    /* dense GN + lambda I in the selection layout (W (OC, IC), then b) */
    const double lambda = 1e-3;
    double *M = calloc((size_t)p * p, sizeof(double));
    for (int a = 0; a < OC; a++)
        for (int i = 0; i < K1; i++)
            for (int b = 0; b < OC; b++)
                for (int j = 0; j < K1; j++) {
                    int r = i < IC ? a * IC + i : OC * IC + a, c = j < IC ? b * IC + j : OC * IC + b;
                    M[r * p + c] = H[a * OC + b] * A[i * K1 + j] + (r == c) * lambda;
                }
    double *g = malloc((size_t)nrhs * p * sizeof(double)), *want = malloc((size_t)nrhs * p * sizeof(double));
    double *got = malloc((size_t)nrhs * p * sizeof(double));
    for (int q = 0; q < nrhs * p; q++) g[q] = urand(33, q);
    for (int r = 0; r < nrhs; r++) gauss_solve(M, g + r * p, want + r * p, p);
    for (int ek = 0; ek <= 1; ek++) {
        double lu = 0.0;
        tda_kfac *k = fit(&m, (const char *[]){"lin"}, 1, ek, loss, x, N, 7, lambda, 0, &lu);
        if (!k) continue;
        EXPECT(tda_kfac_dim(k) == (size_t)p, "%s: dim %zu, want %d", what, tda_kfac_dim(k), p);
        EXPECT(lu == lambda, "%s: absolute damping used %g", what, lu);
        tda_kfac_apply(k, g, nrhs, got);
        double e = 0.0;
        for (int q = 0; q < nrhs * p; q++) e = fmax(e, fabs(got[q] - want[q]));
        double sc = max_abs(want, (size_t)nrhs * p);
        EXPECT(e <= 1e-8 * sc, "%s, %s: apply vs exact damped GN solve: %.3g of %.3g", what,
               ek ? "ekfac" : "kfac", e, sc);
        printf("exact case %-34s %-5s max err %.2e of %.2e\n", what, ek ? "ekfac" : "kfac", e, sc);
        tda_kfac_free(k);
    }
    free(H); free(A); free(M); free(g); free(want); free(got); free(x);
    eng_model_free(&m);
}

/* ------------------------------------------- 2. EK-FAC closer to GN */

static void check_mlp_closer(void) {
    eng_model m;
    build_mlp(&m);
    const int N = 40;
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    rand_x(x, (size_t)N * m.in_features, 41);
    eng_loss loss = {ENG_LOSS_XENT, 0.1};
    const char *names[2] = {"fc1", "fc2"};
    oracle o;
    oracle_build(&o, &m, names, 2, loss, x, N);
    const size_t p = o.p;
    /* the GN from class gradients equals eng_gnvp's columns (complex step) */
    eng_curv cv;
    eng_curv_init(&cv, &m, N);
    double *v = calloc(m.n_params, sizeof(double)), *gv = malloc(m.n_params * sizeof(double));
    size_t *map = malloc(p * sizeof(size_t)), col = 0;
    for (int t = 0; t < o.sel.n_tensors; t++)
        for (size_t q = 0; q < m.tensors[o.sel.tensor[t]].numel; q++)
            map[col++] = m.tensors[o.sel.tensor[t]].off + q;
    int32_t *y = calloc(N, sizeof(int32_t));
    double e = 0.0, sc = max_abs(o.GN, p * p);
    for (size_t j = 0; j < p; j++) {
        v[map[j]] = 1.0;
        eng_gnvp(&m, &cv, &loss, x, y, N, v, gv);
        v[map[j]] = 0.0;
        for (size_t i = 0; i < p; i++) e = fmax(e, fabs(gv[map[i]] - o.GN[i * p + j]));
    }
    EXPECT(e <= 1e-10 * sc, "oracle GN vs eng_gnvp: %.3g of %.3g", e, sc);
    eng_curv_free(&cv);
    /* implied matrices from apply's columns: F = (apply)^-1 - lambda I */
    const double lambda = 1e-3;
    double *Id = calloc(p * p, sizeof(double)), *Mi = malloc(p * p * sizeof(double));
    double *F[2], err[2], *MiT = malloc(p * p * sizeof(double));
    for (size_t i = 0; i < p; i++) Id[i * p + i] = 1.0;
    for (int ek = 0; ek <= 1; ek++) {
        tda_kfac *k = fit(&m, names, 2, ek, loss, x, N, 16, lambda, 0, NULL);
        F[ek] = malloc(p * p * sizeof(double));
        if (!k) { err[ek] = 0; continue; }
        tda_kfac_apply(k, Id, (int)p, Mi); /* row r = (F + lambda I)^-1 e_r */
        for (size_t i = 0; i < p; i++)
            for (size_t j = 0; j < p; j++) MiT[i * p + j] = Mi[j * p + i];
        /* F + lambda I = inverse of MiT: solve column by column */
        for (size_t j = 0; j < p; j++) {
            double *cj = malloc(p * sizeof(double));
            gauss_solve(MiT, Id + j * p, cj, (int)p);
            for (size_t i = 0; i < p; i++) F[ek][i * p + j] = cj[i] - (i == j) * lambda;
            free(cj);
        }
        double s = 0.0;
        for (size_t q = 0; q < p * p; q++) s += (F[ek][q] - o.GN[q]) * (F[ek][q] - o.GN[q]);
        err[ek] = sqrt(s);
        tda_kfac_free(k);
    }
    double gn = 0.0;
    for (size_t q = 0; q < p * p; q++) gn += o.GN[q] * o.GN[q];
    printf("mlp ||F - GN||_F / ||GN||_F: kfac %.4f  ekfac %.4f\n", err[0] / sqrt(gn), err[1] / sqrt(gn));
    EXPECT(err[1] < err[0], "EK-FAC error %.4g is not below K-FAC's %.4g", err[1], err[0]);
    /* the same against GN's diagonal blocks (what both approximate) */
    double eb[2] = {0, 0}, gb = 0.0;
    for (int l = 0; l < o.nl; l++) {
        size_t lo = o.L[l].col_w, hi = lo + (size_t)o.L[l].OC * o.L[l].K1;
        for (size_t i = lo; i < hi; i++)
            for (size_t j = lo; j < hi; j++) {
                gb += o.GN[i * p + j] * o.GN[i * p + j];
                for (int ek = 0; ek <= 1; ek++)
                    eb[ek] += (F[ek][i * p + j] - o.GN[i * p + j]) * (F[ek][i * p + j] - o.GN[i * p + j]);
            }
    }
    printf("mlp ||F - blockdiag(GN)||_F / ||blockdiag(GN)||_F over the blocks: kfac %.4f  ekfac %.4f\n",
           sqrt(eb[0] / gb), sqrt(eb[1] / gb));
    EXPECT(eb[1] < eb[0], "EK-FAC block error %.4g is not below K-FAC's %.4g", eb[1], eb[0]);
    /* the implied EK-FAC matrix is the test's own construction too */
    double *Fe = malloc(p * p * sizeof(double));
    implied(&o, 1, Fe);
    double d = 0.0;
    for (size_t q = 0; q < p * p; q++) d = fmax(d, fabs(Fe[q] - F[1][q]));
    EXPECT(d <= 1e-9 * sc, "EK-FAC implied matrix vs the test's: %.3g of %.3g", d, sc);
    /* diagonal in the Kronecker eigenbasis: EK-FAC's equals GN's */
    double *u = malloc(p * sizeof(double)), de = 0.0, dk = 0.0, dmax = 0.0;
    for (int l = 0; l < o.nl; l++)
        for (int i = 0; i < o.L[l].OC; i++)
            for (int j = 0; j < o.L[l].K1; j++) {
                o_basis(&o.L[l], i, j, u, p);
                double q[3] = {0, 0, 0};
                for (size_t a = 0; a < p; a++)
                    for (size_t b = 0; b < p; b++) {
                        q[0] += u[a] * o.GN[a * p + b] * u[b];
                        q[1] += u[a] * F[1][a * p + b] * u[b];
                        q[2] += u[a] * F[0][a * p + b] * u[b];
                    }
                de = fmax(de, fabs(q[1] - q[0]));
                dk = fmax(dk, fabs(q[2] - q[0]));
                dmax = fmax(dmax, fabs(q[0]));
            }
    printf("mlp eigenbasis diagonal vs GN: ekfac %.2e  kfac %.2e (of %.2e)\n", de, dk, dmax);
    EXPECT(de <= 1e-8 * dmax, "EK-FAC diagonal in the eigenbasis vs GN: %.3g of %.3g", de, dmax);
    EXPECT(dk >= 1e-3 * dmax, "K-FAC diagonal unexpectedly equals GN's (%.3g): test too weak", dk);
    free(u); free(Fe); free(Id); free(Mi); free(MiT); free(F[0]); free(F[1]);
    free(v); free(gv); free(map); free(y); free(x);
    oracle_free(&o);
    eng_model_free(&m);
}

/* ---------------------------------------------------- 3. additivity */

static void check_additive(const char *what, eng_model *m, const char *const *names, int nn) {
    const int N = 37, N1 = 13;
    float *x = malloc((size_t)N * m->in_features * sizeof(float));
    rand_x(x, (size_t)N * m->in_features, 51);
    eng_loss loss = {ENG_LOSS_XENT, 0.0};
    at_err err = {0};
    tda_kfac *k = NULL;
    if (tda_kfac_new(&k, m, names, nn, 1, loss, 8, &err)) {
        EXPECT(0, "%s: %s", what, err.msg);
        free(x);
        return;
    }
    for (int stage = 0; stage <= 1; stage++) {
        size_t len = tda_kfac_stats_len(k, stage);
        double *a = calloc(len, sizeof(double)), *b = calloc(len, sizeof(double));
        tda_kfac_accum(k, m, stage, x, NULL, N, a);
        tda_kfac_accum(k, m, stage, x, NULL, N1, b);
        tda_kfac_accum(k, m, stage, x + (size_t)N1 * m->in_features, NULL, N - N1, b);
        double e = 0.0, sc = max_abs(a, len);
        for (size_t q = 0; q < len; q++) e = fmax(e, fabs(a[q] - b[q]));
        EXPECT(sc > 0 && e <= 1e-12 * sc, "%s stage %d: [0,N) vs [0,N1)+[N1,N): %.3g of %.3g",
               what, stage, e, sc);
        if (stage == 0) EXPECT(tda_kfac_factor(k, a, N, &err) == 0, "%s: %s", what, err.msg);
        free(a);
        free(b);
    }
    tda_kfac_free(k);
    free(x);
}

/* ------------------------------------------ 4. apply inverts implied */

static void check_implied(const char *what, eng_model *m, const char *const *names, int nn) {
    const int N = 23, nrhs = 3;
    float *x = malloc((size_t)N * m->in_features * sizeof(float));
    rand_x(x, (size_t)N * m->in_features, 61);
    eng_loss loss = {ENG_LOSS_XENT, 0.0};
    oracle o;
    oracle_build(&o, m, names, nn, loss, x, N);
    const size_t p = o.p;
    double *F = malloc(p * p * sizeof(double)), *g = malloc(nrhs * p * sizeof(double));
    double *out = malloc(nrhs * p * sizeof(double));
    for (size_t q = 0; q < nrhs * p; q++) g[q] = urand(62, q);
    const double lambda = 1e-2;
    for (int ek = 0; ek <= 1; ek++) {
        tda_kfac *k = fit(m, names, nn, ek, loss, x, N, 5, lambda, 0, NULL);
        if (!k) continue;
        EXPECT(tda_kfac_dim(k) == p, "%s: dim %zu vs %zu", what, tda_kfac_dim(k), p);
        implied(&o, ek, F);
        tda_kfac_apply(k, g, nrhs, out);
        double e = 0.0;
        for (int r = 0; r < nrhs; r++)
            for (size_t i = 0; i < p; i++) {
                double s = lambda * out[r * p + i];
                for (size_t j = 0; j < p; j++) s += F[i * p + j] * out[r * p + j];
                e = fmax(e, fabs(s - g[r * p + i]));
            }
        double sc = max_abs(g, nrhs * p);
        printf("implied %-5s %-5s p=%zu: max |(F + lambda I) apply(g) - g| %.2e\n", what,
               ek ? "ekfac" : "kfac", p, e);
        EXPECT(e <= 1e-10 * sc, "%s %s: (F + lambda I) apply(g) - g: %.3g of %.3g", what,
               ek ? "ekfac" : "kfac", e, sc);
        tda_kfac_free(k);
    }
    free(F); free(g); free(out); free(x);
    oracle_free(&o);
}

/* ------------------------------------ 5. relative damping, refusals */

static void check_damping_refusal(void) {
    eng_model m;
    build_mlp(&m);
    const int N = 40;
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    rand_x(x, (size_t)N * m.in_features, 71);
    eng_loss loss = {ENG_LOSS_XENT, 0.0};
    const char *names[2] = {"fc1", "fc2"};
    oracle o;
    oracle_build(&o, &m, names, 2, loss, x, N);
    double mk = 0.0, me = 0.0;
    for (int l = 0; l < o.nl; l++) {
        double ta = 0.0, ts = 0.0;
        for (int i = 0; i < o.L[l].K1; i++) ta += o.L[l].A[i * o.L[l].K1 + i];
        for (int i = 0; i < o.L[l].OC; i++) ts += o.L[l].S[i * o.L[l].OC + i];
        mk += ta * ts / o.p;
    }
    for (size_t i = 0; i < o.p; i++) me += o.GN[i * o.p + i] / o.p;
    for (int ek = 0; ek <= 1; ek++) {
        double lu = -1.0, want = 0.1 * (ek ? me : mk);
        tda_kfac *k = fit(&m, NULL, 0, ek, loss, x, N, 9, 0.1, 1, &lu);
        if (!k) continue;
        EXPECT(tda_kfac_dim(k) == o.p, "0 layers: dim %zu vs %zu", tda_kfac_dim(k), o.p);
        EXPECT(fabs(lu - want) <= 1e-10 * want, "%s relative damping: %.12g, want %.12g",
               ek ? "ekfac" : "kfac", lu, want);
        at_err err = {0};
        if (!ek)
            EXPECT(tda_kfac_finish(k, NULL, N, -1.0, 0, NULL, &err) == AT_EUSER,
                   "negative damping accepted");
        tda_kfac_free(k);
    }
    oracle_free(&o);
    free(x);
    eng_model_free(&m);

    /* layernorm and attention are refused by name; 0 layers = the linears */
    eng_layer s[4] = {{.kind = ENG_LAYER_LAYERNORM, .name = "ln", .affine = 1},
                      {.kind = ENG_LAYER_ATTENTION, .name = "attn", .heads = 2, .bias = 1},
                      {.kind = ENG_LAYER_SEQ_MEAN, .name = "pool"},
                      {.kind = ENG_LAYER_LINEAR, .name = "head", .out_features = 3, .bias = 1}};
    build(&m, s, 4, (int[]){3, 4}, 2, 72);
    const char *bad[2][2] = {{"ln", "layernorm"}, {"attn", "attention"}};
    for (int b = 0; b < 2; b++) {
        at_err err = {0};
        tda_kfac *k = NULL;
        int rc = tda_kfac_new(&k, &m, (const char *[]){"head", bad[b][0]}, 2, 1, loss, 4, &err);
        char want[64];
        snprintf(want, sizeof want, "'%s'", bad[b][0]);
        size_t bytes = 1;
        at_err e2 = {0};
        EXPECT(tda_kfac_plan(&m, (const char *[]){bad[b][0]}, 1, 0, loss, 4, &bytes, &e2) ==
                       AT_EUSER && bytes == 0 && strstr(e2.msg, want),
               "plan accepted %s", bad[b][0]);
        EXPECT(rc == AT_EUSER && !k && strstr(err.msg, want) && strstr(err.msg, bad[b][1]) &&
                   strstr(err.msg, "inverse: exact|cg|lissa") && strstr(err.msg, "layers:"),
               "refusal of %s: rc %d, '%s'", bad[b][0], rc, err.msg);
    }
    at_err err = {0};
    tda_kfac *k = NULL;
    EXPECT(tda_kfac_new(&k, &m, NULL, 0, 0, loss, 4, &err) == 0 && k && tda_kfac_dim(k) == 15,
           "0 layers on a transformer: %s", err.msg);
    tda_kfac_free(k);
    k = NULL;
    eng_loss margin = {ENG_LOSS_MARGIN, 0.0};
    EXPECT(tda_kfac_new(&k, &m, NULL, 0, 0, margin, 4, &err) == AT_EUSER && !k,
           "margin loss accepted");
    eng_model_free(&m);
}

int main(void) {
    eng_set_threads(1);
    check_exact_case("one output, mse", 1, (eng_loss){ENG_LOSS_MSE, 0.0}, 0);
    check_exact_case("4 outputs, mse", 4, (eng_loss){ENG_LOSS_MSE, 0.0}, 0);
    check_exact_case("4 outputs, cross-entropy, W = 0", 4, (eng_loss){ENG_LOSS_XENT, 0.0}, 1);
    check_mlp_closer();
    eng_model m;
    build_seq(&m);
    check_additive("seq", &m, (const char *[]){"s1", "s2"}, 2);
    check_implied("seq", &m, (const char *[]){"s1", "s2"}, 2);
    eng_model_free(&m);
    build_conv(&m);
    check_additive("conv", &m, (const char *[]){"c1", "f"}, 2);
    check_implied("conv", &m, (const char *[]){"c1", "f"}, 2);
    check_implied("f", &m, (const char *[]){"f"}, 1); /* backward stops above layer 3 */
    eng_model_free(&m);
    check_damping_refusal();
    return check_report("test_tda_kfac");
}
