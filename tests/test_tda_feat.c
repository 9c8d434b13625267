/* test_tda_feat.c — per-example gradient features and projections
 * (workers/influence/tda_feat.h).
 *
 *  1. none: the features of an MLP, a CNN (conv, batch norm, linear) and a
 *     token model ((T, E) linear) equal the float64 engine's per-example
 *     gradients (1e-4) and, on the MLP and CNN, central finite differences
 *     of each example's float64 loss (h = 1e-6, 1e-3), for XENT and the
 *     margin; prob equals softmax p_label; a sub-selection gives the same
 *     bytes as the matching columns.
 *  2. dense projections and sjlt: P recovered row by row through
 *     tda_feat_project(e_r); the features equal P^T g (g = the none
 *     feature) in float64 (1e-5); JL: mean |P^T g|^2/|g|^2 within 5% at
 *     k = 512 on 256 random vectors and on the model's gradients; entries:
 *     gaussian mean 0, variance 1/k, kurtosis 3; rademacher +-1/sqrt(k) with
 *     balanced signs; sjlt exactly s nonzeros per row, one per block, of
 *     +-1/sqrt(s); a P regenerated in chunks equals the stored one; sjlt
 *     on models with conv, batch norm and embeddings (generic path) and
 *     (T, E) linears (scatter path) equals P^T g.
 *  3. kronecker: equals (P_out (x) P_in)^T vec([G, g_b]) formed in the test
 *     from the none features, for linear (1 row and T rows per example) and
 *     conv2d layers with and without bias (1e-4); project agrees; the k
 *     split and factor rule (784-128-10, k 512: 22x23 + 2x3);
 *     E|phi|^2 = |g|^2 (averaged over 16 seeds: one P's factors deviate by
 *     a few %).
 *  4. determinism: two objects built alike give identical bytes; N rows in
 *     one call and split at a multiple of cap give identical bytes (CNN,
 *     token model, 784-32-10); off-grid splits and other caps are printed
 *     (they differ at float32 rounding: OpenBLAS tail kernels).
 *  5. TRAK at k = p (selection l1: the last layer's gradients are rank
 *     deficient, 1^T d = 0): phi_te (Phi^T Phi)^-1 phi_tr^T equals
 *     g_te (G^T G)^-1 g_tr^T for gaussian and kronecker (square factors):
 *     1e-9 with Phi = G P in float64 (P recovered exactly), 1e-4 from the
 *     float32 features (their rounding times the conditioning: ~1e-5).
 *  Errors: unknown loss/layer/projection, k < 1, cap < 1, kronecker on a
 *  non-linear layer or with k below its layer count; tda_feat_plan equals
 *  what tda_feat_new allocates.
 *  Benchmark (printed, skipped under ASan): rows/s of MLP 784-128-10,
 *  k = 512, one thread, CPU time of this process and wall time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "engine.h"
#include "tda_feat.h"

#include "check.h"

static double urand(uint64_t k, uint64_t s) { return 2.0 * at_rng_uniform_f64(23, s, k, 0) - 1.0; }

/* ------------------------------------------------------------- models */

static int build_mlp(eng_model *m, at_err *err) { /* p = 35 + 18 = 53 */
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .name = "l1", .out_features = 5, .bias = 1},
                      {.kind = ENG_LAYER_TANH},
                      {.kind = ENG_LAYER_LINEAR, .name = "l2", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 3, (int[]){6}, 1, err);
}

static int build_mlp_wide(eng_model *m, at_err *err) { /* p = 336 + 68 = 404 */
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .name = "l1", .out_features = 16, .bias = 1},
                      {.kind = ENG_LAYER_GELU},
                      {.kind = ENG_LAYER_LINEAR, .name = "l2", .out_features = 4, .bias = 1}};
    return eng_model_init(m, s, 3, (int[]){20}, 1, err);
}

static int build_cnn(eng_model *m, at_err *err) {
    eng_layer s[7] = {{.kind = ENG_LAYER_CONV2D,
                       .name = "c1",
                       .out_features = 3,
                       .kernel = {3, 3},
                       .padding = {1, 1},
                       .bias = 1},
                      {.kind = ENG_LAYER_BATCHNORM2D, .name = "bn", .affine = 1},
                      {.kind = ENG_LAYER_TANH, .name = "a1"},
                      {.kind = ENG_LAYER_CONV2D,
                       .name = "c2",
                       .out_features = 4,
                       .kernel = {3, 3},
                       .stride = {2, 2},
                       .bias = 0},
                      {.kind = ENG_LAYER_GELU, .name = "a2"},
                      {.kind = ENG_LAYER_FLATTEN, .name = "fl"},
                      {.kind = ENG_LAYER_LINEAR, .name = "fc", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 7, (int[]){2, 6, 6}, 3, err);
}

static int build_seq(eng_model *m, at_err *err) {
    eng_layer s[5] = {
        {.kind = ENG_LAYER_EMBEDDING, .name = "tok", .num_embeddings = 7, .out_features = 4},
        {.kind = ENG_LAYER_LINEAR, .name = "l1", .out_features = 6, .bias = 1},
        {.kind = ENG_LAYER_TANH, .name = "a"},
        {.kind = ENG_LAYER_SEQ_MEAN, .name = "pool"},
        {.kind = ENG_LAYER_LINEAR, .name = "head", .out_features = 3, .bias = 1}};
    return eng_model_init(m, s, 5, (int[]){5}, 1, err);
}

static void randomise(eng_model *m, uint64_t seed) {
    eng_model_init_params(m, seed);
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        for (size_t k = 0; k < T->numel; k++) {
            float *p = m->params + T->off + k;
            double u = urand(T->off + k, seed + 1);
            if (strstr(T->name, "running_var"))
                *p = (float)(0.5 + 0.5 * (u + 1.0));
            else
                *p += (float)(0.4 * u);
        }
    }
}

static void inputs(const eng_model *m, int N, float *x, int32_t *y, uint64_t seed) {
    for (int n = 0; n < N; n++) {
        for (int d = 0; d < m->in_features; d++) {
            uint64_t k = (uint64_t)n * m->in_features + d;
            x[k] = m->token_input ? (float)at_rng_below((uint64_t)m->vocab, seed, 5, k, 0)
                                  : (float)(1.5 * urand(k, seed + 7));
        }
        y[n] = (int32_t)at_rng_below((uint64_t)m->out_features, seed, 6, (uint64_t)n, 0);
    }
}

static tda_feat *mk(const eng_model *m, const char *const *layers, int nl, eng_loss_kind loss,
                    tda_proj_kind proj, int k, uint64_t seed, int cap, size_t budget) {
    at_err err = {0};
    tda_feat *f = NULL;
    int rc = tda_feat_new(&f, m, layers, nl, loss, proj, k, seed, cap, budget, &err);
    if (rc) {
        fprintf(stderr, "tda_feat_new: %s\n", err.msg);
        exit(1);
    }
    return f;
}

/* max_n |a_n - b_n| / max(|b_n|) over rows of (N, k): row-wise relative. */
static double rel_rows(const float *a, const double *b, int N, int k) {
    double worst = 0.0;
    for (int n = 0; n < N; n++) {
        double d = 0.0, s = 0.0;
        for (int j = 0; j < k; j++) {
            double e = fabs((double)a[(size_t)n * k + j] - b[(size_t)n * k + j]);
            d = e > d ? e : d;
            s = fabs(b[(size_t)n * k + j]) > s ? fabs(b[(size_t)n * k + j]) : s;
        }
        double r = d / (s > 0 ? s : 1.0);
        worst = r > worst ? r : worst;
    }
    return worst;
}

/* Per-example float64 gradients of the selection at the float64 copy of
 * m's params: the engine's f64 instantiation (an independent build of the
 * same kernels in double). */
static void grads_f64(const eng_model *m, const eng_param_sel *sel, eng_loss_kind lk,
                      const float *x, const int32_t *y, int N, double *g, double *prob) {
    eng_workspace ws;
    eng_workspace_init(&ws, m, N, ENG_F64);
    double *p = malloc(m->n_params * sizeof(double));
    double *xd = malloc((size_t)N * m->in_features * sizeof(double));
    double *dl = calloc((size_t)N * m->out_features, sizeof(double));
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i];
    for (size_t i = 0; i < (size_t)N * m->in_features; i++) xd[i] = x[i];
    const double *z = eng_forward_f64(m, &ws, p, xd, N);
    const int C = m->out_features;
    for (int n = 0; n < N && prob; n++) {
        double s = 0.0;
        for (int c = 0; c < C; c++) s += exp(z[n * C + c]);
        prob[n] = exp(z[n * C + y[n]]) / s;
    }
    eng_loss ls = {lk, 0.0};
    eng_loss_backward_f64(&ls, dl, z, y, NULL, N, C, 1.0);
    eng_backward_f64(m, &ws, p, xd, dl, N, NULL, NULL);
    eng_grad_per_example_f64(m, &ws, p, xd, N, sel, g);
    eng_workspace_free(&ws);
    free(p);
    free(xd);
    free(dl);
}

/* Per-example float64 losses at params p (n_params). */
static void losses_f64(const eng_model *m, eng_workspace *ws, const double *p, const double *xd,
                       const int32_t *y, int N, eng_loss_kind lk, double *l) {
    const double *z = eng_forward_f64(m, ws, p, xd, N);
    eng_loss ls = {lk, 0.0};
    eng_loss_forward_f64(&ls, l, z, y, NULL, N, m->out_features);
}

/* ---------------------------------------------------------- 1. none */

static void check_none(const char *what, int (*build)(eng_model *, at_err *), int fd) {
    at_err err = {0};
    eng_model m;
    if (build(&m, &err)) {
        fprintf(stderr, "%s: %s\n", what, err.msg);
        exit(1);
    }
    randomise(&m, 3);
    enum { N = 6 };
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    int32_t y[N];
    inputs(&m, N, x, y, 9);
    for (int li = 0; li < 2; li++) {
        eng_loss_kind lk = li ? ENG_LOSS_MARGIN : ENG_LOSS_XENT;
        tda_feat *f = mk(&m, NULL, 0, lk, TDA_PROJ_NONE, 0, 1, 4, 0);
        const int p = tda_feat_dim(f);
        EXPECT((size_t)p == tda_feat_nparams(f), "%s: dim %d vs p %zu", what, p,
               tda_feat_nparams(f));
        float *phi = malloc((size_t)N * p * sizeof(float));
        double prob[N], pref[N];
        tda_feat_compute(f, &m, x, y, N, phi, prob);
        double *g = malloc((size_t)N * p * sizeof(double));
        grads_f64(&m, tda_feat_sel(f), lk, x, y, N, g, pref);
        double r = rel_rows(phi, g, N, p);
        EXPECT(r < 1e-4, "%s loss %d: none vs f64 per-example gradient: rel %.3g", what, li, r);
        for (int n = 0; n < N; n++)
            EXPECT(fabs(prob[n] - pref[n]) < 1e-6 * (1 + pref[n]), "%s: prob %d %.9g vs %.9g", what,
                   n, prob[n], pref[n]);
        if (fd) {
            /* central differences of each example's float64 loss */
            eng_workspace ws;
            eng_workspace_init(&ws, &m, N, ENG_F64);
            double *pp = malloc(m.n_params * sizeof(double));
            double *xd = malloc((size_t)N * m.in_features * sizeof(double));
            for (size_t i = 0; i < m.n_params; i++) pp[i] = m.params[i];
            for (size_t i = 0; i < (size_t)N * m.in_features; i++) xd[i] = x[i];
            double *fdg = malloc((size_t)N * p * sizeof(double));
            const eng_param_sel *sel = tda_feat_sel(f);
            int col = 0;
            for (int q = 0; q < sel->n_tensors; q++) {
                const eng_tensor *T = &m.tensors[sel->tensor[q]];
                for (size_t e = 0; e < T->numel; e++, col++) {
                    double lp[N], lm[N], h = 1e-6, keep = pp[T->off + e];
                    pp[T->off + e] = keep + h;
                    losses_f64(&m, &ws, pp, xd, y, N, lk, lp);
                    pp[T->off + e] = keep - h;
                    losses_f64(&m, &ws, pp, xd, y, N, lk, lm);
                    pp[T->off + e] = keep;
                    for (int n = 0; n < N; n++)
                        fdg[(size_t)n * p + col] = (lp[n] - lm[n]) / (2 * h);
                }
            }
            r = rel_rows(phi, fdg, N, p);
            EXPECT(r < 1e-3, "%s loss %d: none vs finite differences: rel %.3g", what, li, r);
            free(fdg);
            free(pp);
            free(xd);
            eng_workspace_free(&ws);
        }
        free(g);
        free(phi);
        tda_feat_free(f);
    }
    free(x);
    eng_model_free(&m);
}

/* A sub-selection gives the same bytes as the matching columns. */
static void check_subsel(void) {
    at_err err = {0};
    eng_model m;
    build_cnn(&m, &err);
    randomise(&m, 4);
    enum { N = 5 };
    float x[N * 72];
    int32_t y[N];
    inputs(&m, N, x, y, 2);
    tda_feat *fa = mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 1, 3, 0);
    const char *sel[2] = {"c2", "fc"};
    tda_feat *fs = mk(&m, sel, 2, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 1, 3, 0);
    int pa = tda_feat_dim(fa), ps = tda_feat_dim(fs);
    float *a = malloc((size_t)N * pa * 4), *s = malloc((size_t)N * ps * 4);
    tda_feat_compute(fa, &m, x, y, N, a, NULL);
    tda_feat_compute(fs, &m, x, y, N, s, NULL);
    EXPECT(ps == 108 + 51, "c2+fc selection has %d parameters, expected 159", ps);
    int same = 1;
    for (int n = 0; n < N; n++)
        same &= !memcmp(a + (size_t)n * pa + (pa - ps), s + (size_t)n * ps, (size_t)ps * 4);
    EXPECT(same, "sub-selection features differ from the full selection's columns");
    free(a);
    free(s);
    tda_feat_free(fa);
    tda_feat_free(fs);
    eng_model_free(&m);
}

/* ------------------------------------------------- 2. dense and sjlt */

/* P (p, k) recovered as project(e_r) for every r. */
static float *recover_P(tda_feat *f) {
    const size_t p = tda_feat_nparams(f);
    const int k = tda_feat_dim(f);
    float *P = malloc(p * (size_t)k * sizeof(float));
    float *e = calloc(p * 64, sizeof(float));
    for (size_t r0 = 0; r0 < p; r0 += 64) {
        size_t nr = p - r0 < 64 ? p - r0 : 64;
        memset(e, 0, p * 64 * sizeof(float));
        for (size_t r = 0; r < nr; r++) e[r * p + r0 + r] = 1.0f;
        tda_feat_project(f, e, (int64_t)nr, P + r0 * (size_t)k);
    }
    free(e);
    return P;
}

static void check_dense(void) {
    at_err err = {0};
    eng_model m;
    build_mlp_wide(&m, &err);
    randomise(&m, 5);
    enum { N = 64, K = 512 };
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    int32_t y[N];
    inputs(&m, N, x, y, 4);
    tda_feat *f0 = mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 1, 16, 0);
    const size_t p = tda_feat_nparams(f0);
    float *g = malloc((size_t)N * p * sizeof(float));
    tda_feat_compute(f0, &m, x, y, N, g, NULL);
    /* random test vectors for JL: 256 independent N(0, 1) vectors */
    enum { NR = 256 };
    float *rv = malloc((size_t)NR * p * sizeof(float));
    for (size_t i = 0; i < (size_t)NR * p; i++) rv[i] = (float)at_rng_normal(7, 99, i, 0);
    tda_proj_kind kinds[3] = {TDA_PROJ_GAUSSIAN, TDA_PROJ_RADEMACHER, TDA_PROJ_SJLT};
    for (int ki = 0; ki < 3; ki++) {
        const char *nm = tda_proj_name(kinds[ki]);
        tda_feat *f = mk(&m, NULL, 0, ENG_LOSS_XENT, kinds[ki], K, 42, 16, (size_t)1 << 30);
        EXPECT(tda_feat_dim(f) == K, "%s: dim %d", nm, tda_feat_dim(f));
        float *P = recover_P(f);
        float *phi = malloc((size_t)N * K * sizeof(float));
        tda_feat_compute(f, &m, x, y, N, phi, NULL);
        /* linearity: phi = P^T g in float64 */
        double *ref = calloc((size_t)N * K, sizeof(double));
        for (int n = 0; n < N; n++)
            for (size_t r = 0; r < p; r++) {
                double gv = g[(size_t)n * p + r];
                for (int j = 0; j < K; j++) ref[(size_t)n * K + j] += gv * P[r * K + j];
            }
        double rr = rel_rows(phi, ref, N, K);
        EXPECT(rr < 1e-5, "%s: features vs P^T g: rel %.3g", nm, rr);
        /* JL on the gradients (same P: correlated, so per row within 35%)
         * and on independent random vectors (mean within 5%) */
        double mr = 0.0, worst = 0.0;
        for (int n = 0; n < N; n++) {
            double a = 0, b = 0;
            for (int j = 0; j < K; j++)
                a += (double)phi[(size_t)n * K + j] * phi[(size_t)n * K + j];
            for (size_t r = 0; r < p; r++) b += (double)g[(size_t)n * p + r] * g[(size_t)n * p + r];
            mr += a / b / N;
            worst = fabs(a / b - 1) > worst ? fabs(a / b - 1) : worst;
        }
        EXPECT(fabs(mr - 1) < 0.05 && worst < 0.35,
               "%s: gradients |Pg|^2/|g|^2 mean %.4f worst %.3f", nm, mr, worst);
        float *pv = malloc((size_t)NR * K * sizeof(float));
        tda_feat_project(f, rv, NR, pv);
        double mv = 0.0;
        for (int n = 0; n < NR; n++) {
            double a = 0, b = 0;
            for (int j = 0; j < K; j++) a += (double)pv[(size_t)n * K + j] * pv[(size_t)n * K + j];
            for (size_t r = 0; r < p; r++)
                b += (double)rv[(size_t)n * p + r] * rv[(size_t)n * p + r];
            mv += a / b / NR;
        }
        EXPECT(fabs(mv - 1) < 0.05, "%s: random vectors |Pg|^2/|g|^2 mean %.4f", nm, mv);
        printf("%s: JL mean ratio gradients %.4f (worst row %.3f), random %.4f\n", nm, mr, worst,
               mv);
        /* entries */
        const size_t ne = p * K;
        if (kinds[ki] == TDA_PROJ_GAUSSIAN) {
            double s1 = 0, s2 = 0, s4 = 0;
            for (size_t i = 0; i < ne; i++) {
                double v = P[i] * sqrt((double)K);
                s1 += v;
                s2 += v * v;
                s4 += v * v * v * v;
            }
            s1 /= ne;
            s2 /= ne;
            s4 /= ne;
            EXPECT(fabs(s1) < 5 / sqrt((double)ne), "gaussian: mean*sqrt(k) %.4g", s1);
            EXPECT(fabs(s2 - 1) < 5 * sqrt(2.0 / ne), "gaussian: var*k %.4g", s2);
            EXPECT(fabs(s4 - 3) < 5 * sqrt(96.0 / ne), "gaussian: kurtosis %.4g", s4);
            printf("gaussian entries: mean*sqrt(k) %.2e var*k %.4f kurtosis %.3f\n", s1, s2, s4);
        } else if (kinds[ki] == TDA_PROJ_RADEMACHER) {
            size_t pos = 0, bad = 0;
            const float a = (float)(1.0 / sqrt((double)K));
            for (size_t i = 0; i < ne; i++) {
                pos += P[i] > 0;
                bad += P[i] != a && P[i] != -a;
            }
            EXPECT(bad == 0, "rademacher: %zu entries not +-1/sqrt(k)", bad);
            EXPECT(fabs((double)pos / ne - 0.5) < 2.5 / sqrt((double)ne),
                   "rademacher: fraction positive %.5f", (double)pos / ne);
        } else {
            const int s = TDA_SJLT_S;
            const float a = (float)(1.0 / sqrt((double)s));
            size_t bad = 0, pos = 0;
            for (size_t r = 0; r < p; r++) {
                int nz = 0, inblock[TDA_SJLT_S] = {0};
                for (int j = 0; j < K; j++) {
                    float v = P[r * K + j];
                    if (v == 0) continue;
                    nz++;
                    pos += v > 0;
                    if (v != a && v != -a) bad++;
                    inblock[j * s / K]++;
                }
                if (nz != s) bad++;
                for (int b = 0; b < s; b++) bad += inblock[b] != 1;
            }
            EXPECT(bad == 0, "sjlt: %zu violations of s nonzeros of +-1/sqrt(s), one per block",
                   bad);
            EXPECT(fabs((double)pos / (p * s) - 0.5) < 2.5 / sqrt((double)p * s),
                   "sjlt: fraction positive %.4f", (double)pos / (p * s));
        }
        free(pv);
        free(ref);
        free(phi);
        free(P);
        tda_feat_free(f);
    }
    /* a P regenerated per batch in chunks equals the stored one: k large
     * enough that a chunk (2^22 / k rows) is below p */
    {
        const int KB = 16384;
        tda_feat *fs =
            mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_RADEMACHER, KB, 8, 16, (size_t)1 << 30);
        tda_feat *fr = mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_RADEMACHER, KB, 8, 16, 1000);
        EXPECT(tda_feat_stored(fs) && !tda_feat_stored(fr), "stored %d / %d", tda_feat_stored(fs),
               tda_feat_stored(fr));
        EXPECT(tda_feat_bytes(fr) + (p - 256) * KB * 4 == tda_feat_bytes(fs),
               "bytes stored %zu regenerated %zu", tda_feat_bytes(fs), tda_feat_bytes(fr));
        float *a = malloc((size_t)N * KB * 4), *b = malloc((size_t)N * KB * 4);
        tda_feat_compute(fs, &m, x, y, N, a, NULL);
        tda_feat_compute(fr, &m, x, y, N, b, NULL);
        EXPECT(!memcmp(a, b, (size_t)N * KB * 4), "regenerated P gives other bytes");
        free(a);
        free(b);
        tda_feat_free(fs);
        tda_feat_free(fr);
    }
    free(rv);
    free(g);
    free(x);
    tda_feat_free(f0);
    eng_model_free(&m);
}

/* sjlt scatters linear layers from (dout, a) without G and everything
 * else (conv, batch norm, embedding) from eng_grad_per_example: both equal
 * P^T g with P recovered from tda_feat_project. */
static void check_sjlt_mixed(void) {
    int (*builds[2])(eng_model *, at_err *) = {build_cnn, build_seq};
    for (int mi = 0; mi < 2; mi++) {
        at_err err = {0};
        eng_model m;
        builds[mi](&m, &err);
        randomise(&m, 13);
        enum { N = 7, K = 64 };
        float *x = malloc((size_t)N * m.in_features * sizeof(float));
        int32_t y[N];
        inputs(&m, N, x, y, 3);
        tda_feat *f0 = mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 1, 4, 0);
        tda_feat *f = mk(&m, NULL, 0, ENG_LOSS_XENT, TDA_PROJ_SJLT, K, 9, 4, 0);
        const size_t p = tda_feat_nparams(f);
        float *g = malloc((size_t)N * p * 4), *phi = malloc((size_t)N * K * 4);
        tda_feat_compute(f0, &m, x, y, N, g, NULL);
        tda_feat_compute(f, &m, x, y, N, phi, NULL);
        float *P = recover_P(f);
        double *ref = calloc((size_t)N * K, sizeof(double));
        for (int n = 0; n < N; n++)
            for (size_t r = 0; r < p; r++)
                for (int j = 0; j < K; j++)
                    ref[(size_t)n * K + j] += (double)g[(size_t)n * p + r] * P[r * K + j];
        double rr = rel_rows(phi, ref, N, K);
        EXPECT(rr < 1e-5, "sjlt on %s: features vs P^T g: rel %.3g", mi ? "seq" : "cnn", rr);
        free(ref);
        free(P);
        free(g);
        free(phi);
        free(x);
        tda_feat_free(f);
        tda_feat_free(f0);
        eng_model_free(&m);
    }
}

/* ------------------------------------------------------ 3. kronecker */

/* phi_l = sum_{o,i} P_out[o,a] G_aug[o,i] P_in[i,b] in float64 from the
 * none features g (N, p). */
static void kron_ref(const eng_model *m, tda_feat *f, const float *g, int N, size_t p,
                     double *ref) {
    const int k = tda_feat_dim(f);
    memset(ref, 0, (size_t)N * k * sizeof(double));
    const eng_param_sel *sel = tda_feat_sel(f);
    for (int i = 0; i < tda_feat_kron_layers(f); i++) {
        const float *po, *pi;
        int ro, ko, ri, ki, col, layer;
        tda_feat_kron_factors(f, i, &po, &ro, &ko, &pi, &ri, &ki, &col, &layer);
        /* the layer's columns in g */
        size_t gc = 0;
        int q = 0;
        while (m->tensors[sel->tensor[q]].layer != layer) gc += m->tensors[sel->tensor[q++]].numel;
        const eng_tensor *W = &m->tensors[sel->tensor[q]];
        int OC = (int)W->shape[0], IC = (int)(W->numel / (size_t)OC);
        int bias = q + 1 < sel->n_tensors && m->tensors[sel->tensor[q + 1]].layer == layer;
        EXPECT(ro == OC && ri == IC + bias, "kron layer %d: factor rows %d %d vs %d %d", i, ro, ri,
               OC, IC + bias);
        for (int n = 0; n < N; n++) {
            const float *gn = g + (size_t)n * p + gc;
            for (int o = 0; o < OC; o++)
                for (int c = 0; c < IC + bias; c++) {
                    double G = c < IC ? gn[(size_t)o * IC + c] : gn[(size_t)OC * IC + o];
                    if (G == 0) continue;
                    for (int a = 0; a < ko; a++) {
                        double ga = G * po[(size_t)o * ko + a];
                        for (int b = 0; b < ki; b++)
                            ref[(size_t)n * k + col + (size_t)a * ki + b] +=
                                ga * pi[(size_t)c * ki + b];
                    }
                }
        }
    }
}

static void check_kron_model(const char *what, int (*build)(eng_model *, at_err *),
                             const char *const *layers, int nl, int K) {
    at_err err = {0};
    eng_model m;
    build(&m, &err);
    randomise(&m, 6);
    enum { N = 9 };
    float *x = malloc((size_t)N * m.in_features * sizeof(float));
    int32_t y[N];
    inputs(&m, N, x, y, 12);
    tda_feat *f0 = mk(&m, layers, nl, ENG_LOSS_MARGIN, TDA_PROJ_NONE, 0, 1, 4, 0);
    const size_t p = tda_feat_nparams(f0);
    float *g = malloc((size_t)N * p * sizeof(float));
    tda_feat_compute(f0, &m, x, y, N, g, NULL);
    tda_feat *f = mk(&m, layers, nl, ENG_LOSS_MARGIN, TDA_PROJ_KRONECKER, K, 17, 4, 0);
    const int k = tda_feat_dim(f);
    EXPECT(k <= K && k >= 1, "%s: dim %d of %d", what, k, K);
    float *phi = malloc((size_t)N * k * sizeof(float)), *pj = malloc((size_t)N * k * sizeof(float));
    double *ref = malloc((size_t)N * k * sizeof(double));
    tda_feat_compute(f, &m, x, y, N, phi, NULL);
    kron_ref(&m, f, g, N, p, ref);
    double r = rel_rows(phi, ref, N, k);
    EXPECT(r < 1e-4, "%s: kronecker vs explicit (P_out x P_in)^T vec(G): rel %.3g", what, r);
    tda_feat_project(f, g, N, pj);
    r = rel_rows(pj, ref, N, k);
    EXPECT(r < 1e-4, "%s: kronecker project vs explicit: rel %.3g", what, r);
    printf("%s: kronecker k %d (asked %d), %d layers: rel error %.2e\n", what, k, K,
           tda_feat_kron_layers(f), r);
    free(phi);
    free(pj);
    free(ref);
    free(g);
    free(x);
    tda_feat_free(f);
    tda_feat_free(f0);
    eng_model_free(&m);
}

static void check_kron(void) {
    const char *cnn[3] = {"c1", "c2", "fc"}, *seq[2] = {"l1", "head"};
    check_kron_model("mlp", build_mlp, NULL, 0, 12);
    check_kron_model("cnn", build_cnn, cnn, 3, 40);
    check_kron_model("seq", build_seq, seq, 2, 20);
    /* the split: MLP 784-128-10 at k = 512 -> 506 = 22 x 23 and 6 = 2 x 3
     * (parameter shares 505.5 and 6.5, largest remainder to the first) */
    at_err err = {0};
    eng_model m;
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 128, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model_init(&m, s, 3, (int[]){784}, 1, &err);
    tda_feat *f = mk(&m, NULL, 0, ENG_LOSS_MARGIN, TDA_PROJ_KRONECKER, 512, 1, 8, 0);
    int ko[2], ki[2], col[2];
    for (int i = 0; i < 2; i++)
        tda_feat_kron_factors(f, i, NULL, NULL, &ko[i], NULL, NULL, &ki[i], &col[i], NULL);
    EXPECT(tda_feat_dim(f) == 512 && ko[0] * ki[0] == 506 && ko[1] * ki[1] == 6 &&
               abs(ko[0] - ki[0]) == 1 && col[1] == 506,
           "kron split: dim %d, %dx%d, %dx%d, col %d", tda_feat_dim(f), ko[0], ki[0], ko[1], ki[1],
           col[1]);
    /* scale: E|phi|^2 = |g|^2. For one P the mean over isotropic g is
     * |P_out|_F^2 |P_in|_F^2 / p, within a few % of 1 (relative sd
     * sqrt(2 / (OC k_out)) ~ 2.6% here), so average over 16 seeds too. */
    {
        const size_t p = tda_feat_nparams(f);
        enum { NR = 16, NS = 16 };
        float *rv = malloc(NR * p * sizeof(float)), *pv = malloc((size_t)NR * 512 * sizeof(float));
        double mv = 0;
        for (int sd = 0; sd < NS; sd++) {
            tda_feat *fs =
                mk(&m, NULL, 0, ENG_LOSS_MARGIN, TDA_PROJ_KRONECKER, 512, 100 + sd, 8, 0);
            for (size_t i = 0; i < NR * p; i++) rv[i] = (float)at_rng_normal(5, 98 + sd, i, 0);
            tda_feat_project(fs, rv, NR, pv);
            for (int n = 0; n < NR; n++) {
                double a = 0, b = 0;
                for (int j = 0; j < 512; j++) a += (double)pv[n * 512 + j] * pv[n * 512 + j];
                for (size_t r = 0; r < p; r++) b += (double)rv[n * p + r] * rv[n * p + r];
                mv += a / b / (NR * NS);
            }
            tda_feat_free(fs);
        }
        EXPECT(fabs(mv - 1) < 0.05, "kronecker: random |phi|^2/|g|^2 mean %.4f", mv);
        printf("kronecker 784-128-10: %dx%d + %dx%d, random |phi|^2/|g|^2 over %d seeds %.4f\n",
               ko[0], ki[0], ko[1], ki[1], NS, mv);
        free(rv);
        free(pv);
    }
    tda_feat_free(f);
    eng_model_free(&m);
}

/* --------------------------------------------------- 4. determinism */

static void check_determinism(void) {
    at_err err = {0};
    eng_model mc, ms;
    build_cnn(&mc, &err);
    build_seq(&ms, &err);
    randomise(&mc, 7);
    randomise(&ms, 7);
    const char *cnn[3] = {"c1", "c2", "fc"}, *seq[2] = {"l1", "head"};
    tda_proj_kind kinds[5] = {TDA_PROJ_NONE, TDA_PROJ_GAUSSIAN, TDA_PROJ_RADEMACHER, TDA_PROJ_SJLT,
                              TDA_PROJ_KRONECKER};
    enum { N = 37, N1 = 16, CAP = 8 };
    for (int mi = 0; mi < 2; mi++) {
        eng_model *m = mi ? &ms : &mc;
        const char *const *L = mi ? seq : cnn;
        int nl = mi ? 2 : 3;
        float *x = malloc((size_t)N * m->in_features * sizeof(float));
        int32_t y[N];
        inputs(m, N, x, y, 31);
        for (int ki = 0; ki < 5; ki++) {
            tda_feat *a = mk(m, L, nl, ENG_LOSS_MARGIN, kinds[ki], 48, 5, CAP, (size_t)1 << 24);
            tda_feat *b = mk(m, L, nl, ENG_LOSS_MARGIN, kinds[ki], 48, 5, CAP, (size_t)1 << 24);
            const int k = tda_feat_dim(a);
            size_t nb = (size_t)N * k * sizeof(float);
            float *fa = malloc(nb), *fb = malloc(nb);
            double pa[N], pb[N];
            tda_feat_compute(a, m, x, y, N, fa, pa);
            tda_feat_compute(b, m, x, y, N1, fb, pb);
            tda_feat_compute(b, m, x + (size_t)N1 * m->in_features, y + N1, N - N1,
                             fb + (size_t)N1 * k, pb + N1);
            EXPECT(!memcmp(fa, fb, nb) && !memcmp(pa, pb, sizeof pa),
                   "model %d %s: N in one call vs %d + %d: bytes differ", mi,
                   tda_proj_name(kinds[ki]), N1, N - N1);
            /* and a second call on the same object repeats */
            tda_feat_compute(a, m, x, y, N, fb, NULL);
            EXPECT(!memcmp(fa, fb, nb), "model %d %s: repeated call differs", mi,
                   tda_proj_name(kinds[ki]));
            free(fa);
            free(fb);
            tda_feat_free(a);
            tda_feat_free(b);
        }
        free(x);
    }
    eng_model_free(&mc);
    eng_model_free(&ms);
    /* a model large enough for OpenBLAS's blocked sgemm kernels (784-32-10,
     * p = 25,450), cap 16: 16 + 21 rows give the bytes of 37 in one call;
     * a split off the cap grid (13 + 24) and another cap are reported, not
     * asserted: OpenBLAS rounds the tail rows of a product (M % unroll) with
     * other kernels, so a row's bytes depend on its place in its batch
     * (tda_feat.h, Determinism) */
    eng_model mm;
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 32, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model_init(&mm, s, 3, (int[]){784}, 1, &err);
    randomise(&mm, 2);
    float *x = malloc((size_t)N * 784 * sizeof(float));
    int32_t y[N];
    inputs(&mm, N, x, y, 8);
    for (int ki = 0; ki < 5; ki++) {
        tda_feat *a = mk(&mm, NULL, 0, ENG_LOSS_XENT, kinds[ki], 256, 5, 16, (size_t)1 << 26);
        tda_feat *b = mk(&mm, NULL, 0, ENG_LOSS_XENT, kinds[ki], 256, 5, 16, (size_t)1 << 26);
        tda_feat *c = mk(&mm, NULL, 0, ENG_LOSS_XENT, kinds[ki], 256, 5, 7, (size_t)1 << 26);
        const int k = tda_feat_dim(a);
        size_t nb = (size_t)N * k * sizeof(float);
        float *fa = malloc(nb), *fb = malloc(nb), *fc = malloc(nb), *fd = malloc(nb);
        tda_feat_compute(a, &mm, x, y, N, fa, NULL);
        tda_feat_compute(b, &mm, x, y, 16, fb, NULL);
        tda_feat_compute(b, &mm, x + (size_t)16 * 784, y + 16, N - 16, fb + (size_t)16 * k, NULL);
        tda_feat_compute(b, &mm, x, y, 13, fd, NULL);
        tda_feat_compute(b, &mm, x + (size_t)13 * 784, y + 13, N - 13, fd + (size_t)13 * k, NULL);
        tda_feat_compute(c, &mm, x, y, N, fc, NULL);
        EXPECT(!memcmp(fa, fb, nb), "784-32-10 %s: N in one call vs 16 + %d: bytes differ",
               tda_proj_name(kinds[ki]), N - 16);
        double d1 = 0, d2 = 0;
        for (size_t i = 0; i < (size_t)N * k; i++) {
            double sc = fabs((double)fa[i]) + 1e-30;
            d1 = fmax(d1, fabs((double)fa[i] - fd[i]) / sc);
            d2 = fmax(d2, fabs((double)fa[i] - fc[i]) / sc);
        }
        EXPECT(d1 < 1e-2 && d2 < 1e-2, "784-32-10 %s: other batching: rel %.3g, %.3g",
               tda_proj_name(kinds[ki]), d1, d2);
        printf("784-32-10 %-10s: split 16+21 identical; 13+24 %s (max rel %.2g); cap 7 %s "
               "(max rel %.2g)\n",
               tda_proj_name(kinds[ki]), memcmp(fa, fd, nb) ? "differs" : "identical", d1,
               memcmp(fa, fc, nb) ? "differs" : "identical", d2);
        free(fa);
        free(fb);
        free(fc);
        free(fd);
        tda_feat_free(a);
        tda_feat_free(b);
        tda_feat_free(c);
    }
    free(x);
    eng_model_free(&mm);
}

/* ------------------------------------------------- 5. TRAK at k = p */

/* Solve A X = B in place (A (n, n) SPD, B (n, r)) by naive Cholesky. */
static void chol_solve(double *A, double *B, int n, int r) {
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int t = 0; t < j; t++) d -= A[j * n + t] * A[j * n + t];
        AT_CHECK(d > 0);
        A[j * n + j] = sqrt(d);
        for (int i = j + 1; i < n; i++) {
            double s = A[i * n + j];
            for (int t = 0; t < j; t++) s -= A[i * n + t] * A[j * n + t];
            A[i * n + j] = s / A[j * n + j];
        }
    }
    for (int c = 0; c < r; c++) {
        for (int i = 0; i < n; i++) {
            double s = B[i * r + c];
            for (int t = 0; t < i; t++) s -= A[i * n + t] * B[t * r + c];
            B[i * r + c] = s / A[i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) {
            double s = B[i * r + c];
            for (int t = i + 1; t < n; t++) s -= A[t * n + i] * B[t * r + c];
            B[i * r + c] = s / A[i * n + i];
        }
    }
}

static double max_rel(const double *a, const double *b, int n) {
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return d / s;
}

/* scores (NT, NR) = F_te (F^T F)^-1 F_tr^T in float64. */
static void trak_scores_d(const double *Ftr, int NR, const double *Fte, int NT, int k, double *S) {
    double *A = calloc((size_t)k * k, sizeof(double)), *B = malloc((size_t)k * NT * sizeof(double));
    for (int n = 0; n < NR; n++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) A[i * k + j] += (double)Ftr[n * k + i] * Ftr[n * k + j];
    for (int i = 0; i < k; i++)
        for (int t = 0; t < NT; t++) B[i * NT + t] = Fte[t * k + i];
    chol_solve(A, B, k, NT);
    for (int t = 0; t < NT; t++)
        for (int n = 0; n < NR; n++) {
            double s = 0;
            for (int i = 0; i < k; i++) s += B[i * NT + t] * Ftr[n * k + i];
            S[t * NR + n] = s;
        }
    free(A);
    free(B);
}

static void trak_scores(const float *Ftr, int NR, const float *Fte, int NT, int k, double *S) {
    double *a = malloc((size_t)NR * k * sizeof(double)),
           *b = malloc((size_t)NT * k * sizeof(double));
    for (size_t i = 0; i < (size_t)NR * k; i++) a[i] = Ftr[i];
    for (size_t i = 0; i < (size_t)NT * k; i++) b[i] = Fte[i];
    trak_scores_d(a, NR, b, NT, k, S);
    free(a);
    free(b);
}

static void check_trak(void) {
    at_err err = {0};
    eng_model m;
    build_mlp(&m, &err);
    randomise(&m, 8);
    enum { NR = 300, NT = 10 };
    float *x = malloc((size_t)(NR + NT) * m.in_features * sizeof(float));
    int32_t y[NR + NT];
    inputs(&m, NR + NT, x, y, 77);
    /* only l1: the last layer's gradients d a^T have 1^T d = 0 (softmax
     * is invariant to shifting the logits), so with it G^T G is singular */
    const char *l1[1] = {"l1"};
    tda_feat *f0 = mk(&m, l1, 1, ENG_LOSS_MARGIN, TDA_PROJ_NONE, 0, 1, 64, 0);
    const int p = tda_feat_dim(f0);
    float *G = malloc((size_t)(NR + NT) * p * sizeof(float));
    tda_feat_compute(f0, &m, x, y, NR + NT, G, NULL);
    double *S0 = malloc((size_t)NT * NR * sizeof(double)),
           *S1 = malloc((size_t)NT * NR * sizeof(double));
    trak_scores(G, NR, G + (size_t)NR * p, NT, p, S0);
    /* Two checks per projection: (a) the identity itself, with Phi = G P
     * formed in float64 from P recovered through tda_feat_project(e_r)
     * (exact rows of P): 1e-9; (b) the float32 features: their rounding
     * (6e-8 relative) is amplified by the conditioning of Phi^T Phi and P
     * (measured ~1e-5 here), so 1e-4. */
    tda_proj_kind kinds[2] = {TDA_PROJ_GAUSSIAN, TDA_PROJ_KRONECKER};
    double *Fd = malloc((size_t)(NR + NT) * p * sizeof(double));
    float *Fr = malloc((size_t)(NR + NT) * p * sizeof(float));
    for (int ki = 0; ki < 2; ki++) {
        const char *nm = tda_proj_name(kinds[ki]);
        tda_feat *f = mk(&m, l1, 1, ENG_LOSS_MARGIN, kinds[ki], p, 3, 64, (size_t)1 << 20);
        EXPECT(tda_feat_dim(f) == p, "%s at k = p: dim %d vs %d", nm, tda_feat_dim(f), p);
        float *P = recover_P(f);
        memset(Fd, 0, (size_t)(NR + NT) * p * sizeof(double));
        for (int n = 0; n < NR + NT; n++)
            for (int r = 0; r < p; r++)
                for (int j = 0; j < p; j++)
                    Fd[(size_t)n * p + j] += (double)G[(size_t)n * p + r] * P[(size_t)r * p + j];
        trak_scores_d(Fd, NR, Fd + (size_t)NR * p, NT, p, S1);
        double da = max_rel(S1, S0, NT * NR);
        EXPECT(da < 1e-9, "TRAK %s k = p, float64 Phi = G P: max|dS|/max|S| = %.3g", nm, da);
        float *F = Fr;
        tda_feat_compute(f, &m, x, y, NR + NT, F, NULL);
        trak_scores(F, NR, F + (size_t)NR * p, NT, p, S1);
        double db = max_rel(S1, S0, NT * NR);
        EXPECT(db < 1e-4, "TRAK %s k = p, float32 features: max|dS|/max|S| = %.3g", nm, db);
        printf("TRAK %s at k = p = %d: max|dS|/max|S| %.3g (float64 G P), %.3g (features)\n", nm, p,
               da, db);
        free(P);
        tda_feat_free(f);
    }
    free(Fd);
    free(Fr);
    free(S0);
    free(S1);
    free(G);
    free(x);
    tda_feat_free(f0);
    eng_model_free(&m);
}

/* ------------------------------------------------------------ errors */

static void check_errors(void) {
    at_err err = {0};
    eng_model mc;
    build_cnn(&mc, &err);
    tda_feat *f = NULL;
    const char *bn[1] = {"bn"}, *nope[1] = {"nope"};
    size_t bytes = 0;
    int dim = 0;
    struct {
        const char *const *layers;
        int nl;
        eng_loss_kind loss;
        tda_proj_kind proj;
        int k, cap;
        const char *needle;
    } bad[] = {
        {NULL, 0, ENG_LOSS_MSE, TDA_PROJ_NONE, 0, 4, "loss"},
        {NULL, 0, ENG_LOSS_XENT, TDA_PROJ_GAUSSIAN, 0, 4, "dimension k"},
        {NULL, 0, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 0, "cap"},
        {nope, 1, ENG_LOSS_XENT, TDA_PROJ_NONE, 0, 4, "nope"},
        {bn, 1, ENG_LOSS_XENT, TDA_PROJ_KRONECKER, 8, 4, "'bn' is batchnorm2d"},
        {NULL, 0, ENG_LOSS_XENT, TDA_PROJ_KRONECKER, 8, 4, "'bn'"},
        {NULL, 0, ENG_LOSS_XENT, (tda_proj_kind)9, 8, 4, "unknown projection"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_err_clear(&err);
        int rc = tda_feat_new(&f, &mc, bad[i].layers, bad[i].nl, bad[i].loss, bad[i].proj, bad[i].k,
                              1, bad[i].cap, 0, &err);
        EXPECT(rc == AT_EUSER && f == NULL && strstr(err.msg, bad[i].needle),
               "bad setting %zu: rc %d msg '%s'", i, rc, err.msg);
    }
    const char *cnn[3] = {"c1", "c2", "fc"};
    at_err_clear(&err);
    int rc = tda_feat_new(&f, &mc, cnn, 3, ENG_LOSS_XENT, TDA_PROJ_KRONECKER, 2, 1, 4, 0, &err);
    EXPECT(rc == AT_EUSER && strstr(err.msg, "raise k"), "kron k < layers: rc %d '%s'", rc,
           err.msg);
    /* the plan reports what the object holds */
    tda_proj_kind kinds[5] = {TDA_PROJ_NONE, TDA_PROJ_GAUSSIAN, TDA_PROJ_RADEMACHER, TDA_PROJ_SJLT,
                              TDA_PROJ_KRONECKER};
    for (int ki = 0; ki < 5; ki++) {
        at_err_clear(&err);
        rc = tda_feat_plan(&mc, cnn, 3, ENG_LOSS_XENT, kinds[ki], 30, 4, 1 << 20, &bytes, &dim,
                           &err);
        f = mk(&mc, cnn, 3, ENG_LOSS_XENT, kinds[ki], 30, 1, 4, 1 << 20);
        EXPECT(rc == 0 && bytes == tda_feat_bytes(f) && dim == tda_feat_dim(f),
               "plan %s: rc %d bytes %zu vs %zu dim %d vs %d", tda_proj_name(kinds[ki]), rc, bytes,
               tda_feat_bytes(f), dim, tda_feat_dim(f));
        tda_feat_free(f);
    }
    eng_model_free(&mc);
}

/* --------------------------------------------------------- benchmark */

static void bench(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("benchmark skipped under AddressSanitizer\n");
#else
    at_err err = {0};
    eng_model m;
    eng_layer s[3] = {{.kind = ENG_LAYER_LINEAR, .out_features = 128, .bias = 1},
                      {.kind = ENG_LAYER_RELU},
                      {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
    eng_model_init(&m, s, 3, (int[]){784}, 1, &err);
    eng_model_init_params(&m, 1);
    eng_set_threads(1);
    enum { N = 512, CAP = 128 };
    float *x = malloc((size_t)N * 784 * sizeof(float));
    int32_t y[N];
    for (size_t i = 0; i < (size_t)N * 784; i++) /* MNIST-like: 80% zeros */
        x[i] = at_rng_uniform(3, 1, i, 0) < 0.8f ? 0.0f : at_rng_uniform(3, 2, i, 0);
    for (int n = 0; n < N; n++) y[n] = n % 10;
    tda_proj_kind kinds[5] = {TDA_PROJ_NONE, TDA_PROJ_GAUSSIAN, TDA_PROJ_RADEMACHER, TDA_PROJ_SJLT,
                              TDA_PROJ_KRONECKER};
    printf("benchmark: MLP 784-128-10 (p = %zu), k = 512, cap %d, 1 thread, %d rows\n", m.n_params,
           CAP, N);
    for (int ki = 0; ki < 5; ki++) {
        /* CPU time of this process (the machine is shared) and wall time */
        double c0 = (double)clock() / CLOCKS_PER_SEC;
        tda_feat *f = mk(&m, NULL, 0, ENG_LOSS_MARGIN, kinds[ki], 512, 1, CAP, (size_t)1 << 30);
        double c1 = (double)clock() / CLOCKS_PER_SEC, t1 = at_now();
        int k = tda_feat_dim(f), n = kinds[ki] == TDA_PROJ_NONE ? CAP : N;
        float *out = malloc((size_t)n * k * sizeof(float));
        tda_feat_compute(f, &m, x, y, n, out, NULL);
        double c2 = (double)clock() / CLOCKS_PER_SEC, t2 = at_now();
        char hb[32];
        at_human_bytes((double)tda_feat_bytes(f), hb, sizeof hb);
        printf("  %-10s k %6d: init %.3f s cpu, %8.0f rows/s cpu (%8.0f wall), holds %s\n",
               tda_proj_name(kinds[ki]), k, c1 - c0, n / (c2 - c1), n / (t2 - t1), hb);
        free(out);
        tda_feat_free(f);
    }
    free(x);
    eng_model_free(&m);
#endif
}

int main(void) {
    check_none("mlp", build_mlp, 1);
    check_none("cnn", build_cnn, 1);
    check_none("seq", build_seq, 0);
    check_subsel();
    check_dense();
    check_sjlt_mixed();
    check_kron();
    check_determinism();
    check_trak();
    check_errors();
    bench();
    return check_report("test_tda_feat");
}
