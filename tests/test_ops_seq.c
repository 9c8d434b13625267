/* test_ops_seq.c — activations, softmax, losses, layer norm, embeddings and
 * attention, in all three instantiations (float32, float64, complex128).
 *
 * One harness (check_op) runs every op through the same checks, with
 * L = sum(r * out) for a random r:
 *   1. the float64 backward equals central differences of the float64
 *      forward (h = 1e-6), max-norm relative error <= 1e-6 per tensor;
 *   2. complex step: Im L(x + i h v) / h (h = 1e-30, complex128 forward)
 *      equals <grad, v> within 1e-10 of sum |grad_i v_i|;
 *   3. the complex128 backward at x + i h v: its real part is the float64
 *      gradient (1e-12) and Im / h equals central differences of the float64
 *      gradient along v (1e-6): the Hessian-vector product eng_hvp relies on;
 *   4. float32 forward and backward agree with float64 to 1e-4 (mixed
 *      relative/absolute, per element);
 *   5. backward accumulates: two calls into one buffer give twice one call.
 * Beside it, per op: the float64 forward against an independent naive loop
 * (1e-12), losses against closed forms, per-example gradients of layer norm
 * and embedding, causality of masked attention, and a few values computed
 * by PyTorch 1.13 (torch.nn.MultiheadAttention, LayerNorm, GELU, Softplus,
 * cross_entropy with label smoothing). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"

#include "check.h"

enum { DT32 = 0, DT64 = 1, DT128 = 2 };
static const size_t ESZ[3] = {sizeof(float), sizeof(double), sizeof(double complex)};
static const char *DTNAME[3] = {"f32", "f64", "c128"};

#define MAXT 6
#define STEP 1e-30 /* complex step */
#define FDH 1e-6   /* central differences */

/* Calls the instantiation of fn for element type dt (pointer arguments are
 * void * buffers of that type). */
#define CALL3(dt, fn, ...)                                                                         \
    do {                                                                                           \
        switch (dt) {                                                                              \
        case DT32:                                                                                 \
            fn(__VA_ARGS__);                                                                       \
            break;                                                                                 \
        case DT64:                                                                                 \
            fn##_f64(__VA_ARGS__);                                                                 \
            break;                                                                                 \
        default:                                                                                   \
            fn##_c128(__VA_ARGS__);                                                                \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

static uint64_t rng_ctr = 0;
static double urand(void) { return 2.0 * at_rng_uniform_f64(11, 5, rng_ctr++, 0) - 1.0; }
static double *rand_vec(size_t n, double scale) {
    double *v = at_malloc((n ? n : 1) * sizeof(double), "test");
    for (size_t i = 0; i < n; i++) v[i] = scale * urand();
    return v;
}
static double *dup_vec(const double *x, size_t n) {
    double *v = at_malloc((n ? n : 1) * sizeof(double), "test");
    if (n) memcpy(v, x, n * sizeof(double));
    return v;
}
static void *elem(int dt, const void *p, size_t i) { return (char *)p + i * ESZ[dt]; }

/* A buffer of type dt holding re + i im (im NULL = 0); NULL when n = 0. */
static void *to_dt(int dt, const double *re, const double *im, size_t n) {
    if (!n) return NULL;
    void *p = at_calloc(n, ESZ[dt], "test");
    for (size_t i = 0; i < n; i++) {
        if (dt == DT32)
            ((float *)p)[i] = (float)re[i];
        else if (dt == DT64)
            ((double *)p)[i] = re[i];
        else
            ((double complex *)p)[i] = re[i] + I * (im ? im[i] : 0.0);
    }
    return p;
}
static void from_dt(int dt, const void *p, double *re, double *im, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double a, b = 0.0;
        if (dt == DT32)
            a = ((const float *)p)[i];
        else if (dt == DT64)
            a = ((const double *)p)[i];
        else {
            a = creal(((const double complex *)p)[i]);
            b = cimag(((const double complex *)p)[i]);
        }
        if (re) re[i] = a;
        if (im) im[i] = b;
    }
}

/* ---- the op under test ------------------------------------------------- */

typedef struct Op Op;
struct Op {
    char name[96];
    int nt;           /* tensors (inputs then parameters) */
    size_t len[MAXT]; /* 0: absent (passed as NULL) */
    double *x[MAXT];  /* float64 values */
    int diff[MAXT];   /* 1 = differentiable */
    size_t n_out, cache_len, scratch_len;
    /* fwd writes out (and cache); bwd accumulates into g[k] (NULL when the
     * tensor is absent or not differentiable) from dout, after a fwd at the
     * same x. */
    void (*fwd)(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch);
    void (*bwd)(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                const void *out, void *cache, void *scratch);
    /* op parameters */
    int N, T, E, H, V, C, rows, causal, use_log, maxlen;
    eng_layer_kind kind;
    double eps;
    eng_loss loss;
    int32_t *labels;
};

static void op_free(Op *o) {
    for (int k = 0; k < o->nt; k++) free(o->x[k]);
    free(o->labels);
}

/* Forward (and backward when dout) of o in type dt at xre + i xim (xim
 * NULL = real). Out to ore/oim if not NULL; gradients accumulate into
 * gre/gim (gim may be NULL) for differentiable tensors. */
static void run(const Op *o, int dt, double *const *xre, double *const *xim, double *ore,
                double *oim, const double *dout, double *const *gre, double *const *gim) {
    void *x[MAXT] = {0}, *g[MAXT] = {0};
    for (int k = 0; k < o->nt; k++) x[k] = to_dt(dt, xre[k], xim ? xim[k] : NULL, o->len[k]);
    void *out = at_calloc(o->n_out, ESZ[dt], "test");
    void *cache = at_calloc(o->cache_len + 1, ESZ[dt], "test");
    void *scratch = at_calloc(o->scratch_len + 1, ESZ[dt], "test");
    o->fwd(o, dt, x, out, cache, scratch);
    from_dt(dt, out, ore, oim, ore || oim ? o->n_out : 0);
    if (dout) {
        void *d = to_dt(dt, dout, NULL, o->n_out);
        for (int k = 0; k < o->nt; k++)
            if (o->diff[k]) g[k] = to_dt(dt, gre[k], gim ? gim[k] : NULL, o->len[k]);
        o->bwd(o, dt, x, d, g, out, cache, scratch);
        for (int k = 0; k < o->nt; k++)
            if (g[k]) from_dt(dt, g[k], gre[k], gim ? gim[k] : NULL, o->len[k]);
        for (int k = 0; k < o->nt; k++) free(g[k]);
        free(d);
    }
    for (int k = 0; k < o->nt; k++) free(x[k]);
    free(out);
    free(cache);
    free(scratch);
}

/* L = sum r * out of the float64 forward at x. */
static double loss_at(const Op *o, double *const *x, const double *r) {
    double *out = at_malloc(o->n_out * sizeof(double), "test");
    run(o, DT64, x, NULL, out, NULL, NULL, NULL, NULL);
    double L = 0.0;
    for (size_t i = 0; i < o->n_out; i++) L += r[i] * out[i];
    free(out);
    return L;
}

/* Float64 gradients of L = sum r * out (fresh, zero-started). */
static void grad64(const Op *o, double *const *x, const double *r, double **g) {
    for (int k = 0; k < o->nt; k++) g[k] = at_calloc(o->len[k] + 1, sizeof(double), "test");
    run(o, DT64, x, NULL, NULL, NULL, r, g, NULL);
}
static void free_all(double **v, int n) {
    for (int k = 0; k < n; k++) free(v[k]);
}

static double max_abs(const double *a, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}
static double max_diff(const double *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}
/* max_i |a_i - b_i| / (1 + |b_i|) */
static double mixed_err(const double *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]) / (1.0 + fabs(b[i])));
    return m;
}

/* Worst measured error of each generic check, printed at the end. */
enum { W_FD, W_CSTEP, W_CRE, W_HVP, W_F32F, W_F32B, W_ACC, W_N };
static const char *WNAME[W_N] = {"fd",      "complex-step", "Re c128 bwd", "c128 hvp",
                                 "f32 fwd", "f32 bwd",      "accumulate"};
static double worst[W_N];
static double note(int w, double e) {
    if (!(e <= worst[w])) worst[w] = e; /* NaN sticks */
    return e;
}

/* The five generic checks of the header comment. */
static void check_op(Op *o) {
    const char *nm = o->name;
    double *r = rand_vec(o->n_out, 1.0);
    double *g[MAXT], *v[MAXT], *vim[MAXT];
    grad64(o, o->x, r, g);

    /* 1. float64 backward vs central differences */
    for (int k = 0; k < o->nt; k++) {
        if (!o->diff[k] || !o->len[k]) continue;
        double *fd = at_malloc(o->len[k] * sizeof(double), "test");
        for (size_t i = 0; i < o->len[k]; i++) {
            double x0 = o->x[k][i];
            o->x[k][i] = x0 + FDH;
            double lp = loss_at(o, o->x, r);
            o->x[k][i] = x0 - FDH;
            double lm = loss_at(o, o->x, r);
            o->x[k][i] = x0;
            fd[i] = (lp - lm) / (2 * FDH);
        }
        double gm = max_abs(g[k], o->len[k]);
        double e = note(W_FD, max_diff(fd, g[k], o->len[k]) / gm);
        EXPECT(gm > 0, "%s: tensor %d has an all-zero gradient", nm, k);
        EXPECT(e <= 1e-6, "%s: tensor %d: backward vs finite differences rel err %.3g", nm, k, e);
        free(fd);
    }

    /* 2. complex-step forward: Im L(x + i h v) / h = <g, v> */
    for (int k = 0; k < o->nt; k++) {
        v[k] = rand_vec(o->len[k], o->diff[k] ? 1.0 : 0.0);
        vim[k] = dup_vec(v[k], o->len[k]);
        for (size_t i = 0; i < o->len[k]; i++) vim[k][i] *= STEP;
    }
    {
        double *ore = at_malloc(o->n_out * sizeof(double), "test");
        double *oim = at_malloc(o->n_out * sizeof(double), "test");
        run(o, DT128, o->x, vim, ore, oim, NULL, NULL, NULL);
        double lim = 0.0, gv = 0.0, gvabs = 0.0;
        for (size_t i = 0; i < o->n_out; i++) lim += r[i] * oim[i];
        for (int k = 0; k < o->nt; k++)
            for (size_t i = 0; i < o->len[k]; i++)
                if (o->diff[k]) {
                    gv += g[k][i] * v[k][i];
                    gvabs += fabs(g[k][i] * v[k][i]);
                }
        double e = note(W_CSTEP, fabs(lim / STEP - gv) / gvabs);
        EXPECT(gvabs > 0 && e <= 1e-10, "%s: complex step %.17g vs <g,v> %.17g (rel %.3g)", nm,
               lim / STEP, gv, e);
        /* the complex forward's real part is the float64 forward */
        double *o64 = at_malloc(o->n_out * sizeof(double), "test");
        run(o, DT64, o->x, NULL, o64, NULL, NULL, NULL, NULL);
        EXPECT(mixed_err(ore, o64, o->n_out) <= 1e-12, "%s: Re(c128 forward) != f64", nm);
        free(o64);
        free(ore);
        free(oim);
    }

    /* 3. complex128 backward: Re = float64 gradient, Im / h = d grad . v */
    {
        double *gre[MAXT], *gim[MAXT], *gp[MAXT], *gm[MAXT], *xp[MAXT], *xm[MAXT];
        for (int k = 0; k < o->nt; k++) {
            gre[k] = at_calloc(o->len[k] + 1, sizeof(double), "test");
            gim[k] = at_calloc(o->len[k] + 1, sizeof(double), "test");
            xp[k] = dup_vec(o->x[k], o->len[k]);
            xm[k] = dup_vec(o->x[k], o->len[k]);
            for (size_t i = 0; i < o->len[k]; i++) {
                xp[k][i] += FDH * v[k][i];
                xm[k][i] -= FDH * v[k][i];
            }
        }
        run(o, DT128, o->x, vim, NULL, NULL, r, gre, gim);
        grad64(o, xp, r, gp);
        grad64(o, xm, r, gm);
        for (int k = 0; k < o->nt; k++) {
            if (!o->diff[k] || !o->len[k]) continue;
            size_t n = o->len[k];
            double *hv = at_malloc(n * sizeof(double), "test");
            double *hfd = at_malloc(n * sizeof(double), "test");
            for (size_t i = 0; i < n; i++) {
                hv[i] = gim[k][i] / STEP;
                hfd[i] = (gp[k][i] - gm[k][i]) / (2 * FDH);
            }
            double ere = note(W_CRE, max_diff(gre[k], g[k], n) / max_abs(g[k], n));
            double ehv = note(W_HVP, max_diff(hv, hfd, n) / fmax(max_abs(hfd, n), 1e-6));
            EXPECT(ere <= 1e-12, "%s: tensor %d: Re(c128 backward) vs f64 rel %.3g", nm, k, ere);
            EXPECT(ehv <= 1e-6, "%s: tensor %d: Im(c128 backward)/h vs FD of grad rel %.3g", nm, k,
                   ehv);
            free(hv);
            free(hfd);
        }
        free_all(gre, o->nt);
        free_all(gim, o->nt);
        free_all(gp, o->nt);
        free_all(gm, o->nt);
        free_all(xp, o->nt);
        free_all(xm, o->nt);
    }

    /* 4. float32 vs float64 */
    {
        double *o32 = at_malloc(o->n_out * sizeof(double), "test");
        double *o64 = at_malloc(o->n_out * sizeof(double), "test");
        double *g32[MAXT];
        for (int k = 0; k < o->nt; k++) g32[k] = at_calloc(o->len[k] + 1, sizeof(double), "test");
        run(o, DT32, o->x, NULL, o32, NULL, r, g32, NULL);
        run(o, DT64, o->x, NULL, o64, NULL, NULL, NULL, NULL);
        double e = note(W_F32F, mixed_err(o32, o64, o->n_out));
        EXPECT(e <= 1e-4, "%s: f32 forward vs f64 err %.3g", nm, e);
        for (int k = 0; k < o->nt; k++) {
            if (!o->diff[k] || !o->len[k]) continue;
            e = note(W_F32B, mixed_err(g32[k], g[k], o->len[k]));
            EXPECT(e <= 1e-4, "%s: tensor %d: f32 backward vs f64 err %.3g", nm, k, e);
        }
        free_all(g32, o->nt);
        free(o32);
        free(o64);
    }

    /* 5. accumulation: start from g, add g again */
    {
        double *g2[MAXT];
        for (int k = 0; k < o->nt; k++) g2[k] = dup_vec(g[k], o->len[k] + 1);
        run(o, DT64, o->x, NULL, NULL, NULL, r, g2, NULL);
        for (int k = 0; k < o->nt; k++) {
            if (!o->diff[k] || !o->len[k]) continue;
            double e = 0.0;
            for (size_t i = 0; i < o->len[k]; i++) e = fmax(e, fabs(g2[k][i] - 2 * g[k][i]));
            e = note(W_ACC, e / max_abs(g[k], o->len[k]));
            EXPECT(e <= 1e-13, "%s: tensor %d: backward does not accumulate (%.3g)", nm, k, e);
        }
        free_all(g2, o->nt);
    }
    free_all(g, o->nt);
    free_all(v, o->nt);
    free_all(vim, o->nt);
    free(r);
}

/* ---- pointwise activations --------------------------------------------- */

static void act_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_act_forward, o->kind, out, x[0], o->len[0]);
}
static void act_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                    const void *out, void *cache, void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_act_backward, o->kind, g[0], dout, x[0], out, o->len[0]);
}

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }
static double act_ref(eng_layer_kind k, double x) {
    switch (k) {
    case ENG_LAYER_RELU:
        return x > 0 ? x : 0.0;
    case ENG_LAYER_GELU:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ENG_LAYER_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / acos(-1.0)) * (x + 0.044715 * pow(x, 3))));
    case ENG_LAYER_TANH:
        return tanh(x);
    case ENG_LAYER_SIGMOID:
        return sigmoid_ref(x);
    case ENG_LAYER_SILU:
        return x * sigmoid_ref(x);
    case ENG_LAYER_SOFTPLUS:
        return x > 20.0 ? x : log1p(exp(x));
    default:
        return NAN;
    }
}

static void test_activations(void) {
    const eng_layer_kind kinds[] = {ENG_LAYER_RELU,    ENG_LAYER_GELU,    ENG_LAYER_GELU_TANH,
                                    ENG_LAYER_TANH,    ENG_LAYER_SIGMOID, ENG_LAYER_SILU,
                                    ENG_LAYER_SOFTPLUS};
    /* N = 3 rows of 12: random values kept away from ReLU's kink, plus
     * large magnitudes (overflow of exp in a naive sigmoid) and both sides
     * of softplus's threshold 20 */
    const char *names[] = {"relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "softplus"};
    const double special[] = {-800.0, 800.0, -40.0, 40.0, 19.5, 20.5, -25.0, 25.0, 1e-3};
    const size_t n = 36;
    for (size_t ki = 0; ki < sizeof kinds / sizeof *kinds; ki++) {
        Op o = {0};
        snprintf(o.name, sizeof o.name, "act %s", names[ki]);
        o.kind = kinds[ki];
        o.nt = 1;
        o.len[0] = o.n_out = n;
        o.diff[0] = 1;
        o.x[0] = rand_vec(n, 4.0);
        for (size_t i = 0; i < n; i++)
            if (fabs(o.x[0][i]) < 0.01) o.x[0][i] += 0.05;
        for (size_t i = 0; i < sizeof special / sizeof *special; i++) o.x[0][3 * i] = special[i];
        o.fwd = act_fwd;
        o.bwd = act_bwd;

        /* forward vs the naive formula, and finite everywhere */
        double out[36], ref[36];
        run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++) ref[i] = act_ref(o.kind, o.x[0][i]);
        EXPECT(mixed_err(out, ref, n) <= 1e-12, "%s: forward vs reference %.3g", o.name,
               mixed_err(out, ref, n));
        for (int dt = 0; dt < 3; dt++) {
            double re[36], gre[36] = {0}, ones[36];
            double *gp[1] = {gre};
            for (size_t i = 0; i < n; i++) ones[i] = 1.0;
            run(&o, dt, o.x, NULL, re, NULL, ones, gp, NULL);
            int finite = 1;
            for (size_t i = 0; i < n; i++) finite &= isfinite(re[i]) && isfinite(gre[i]);
            EXPECT(finite, "%s: %s: non-finite output or gradient", o.name, DTNAME[dt]);
        }
        /* backward without the forward's output (tanh, sigmoid recompute it) */
        {
            double d[36], g1[36] = {0}, g2[36] = {0}, o64[36];
            for (size_t i = 0; i < n; i++) d[i] = urand();
            eng_act_forward_f64(o.kind, o64, o.x[0], n);
            eng_act_backward_f64(o.kind, g1, d, o.x[0], o64, n);
            eng_act_backward_f64(o.kind, g2, d, o.x[0], NULL, n);
            EXPECT(max_diff(g1, g2, n) <= 1e-15, "%s: backward with out = NULL differs", o.name);
        }
        check_op(&o);
        op_free(&o);
    }
}

/* ---- softmax ------------------------------------------------------------- */

static void softmax_fwd(const Op *o, int dt, void *const *x, void *out, void *cache,
                        void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_softmax_forward, out, x[0], o->rows, o->C, o->use_log);
}
static void softmax_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                        const void *out, void *cache, void *scratch) {
    (void)x, (void)cache, (void)scratch;
    CALL3(dt, eng_softmax_backward, g[0], dout, out, o->rows, o->C, o->use_log);
}

static void test_softmax(void) {
    for (int use_log = 0; use_log < 2; use_log++) {
        Op o = {0};
        snprintf(o.name, sizeof o.name, "%s", use_log ? "log_softmax" : "softmax");
        o.rows = 6;
        o.C = 7;
        o.use_log = use_log;
        o.nt = 1;
        o.len[0] = o.n_out = (size_t)o.rows * o.C;
        o.diff[0] = 1;
        o.x[0] = rand_vec(o.len[0], 3.0);
        o.fwd = softmax_fwd;
        o.bwd = softmax_bwd;
        double out[42], ref[42];
        run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
        for (int r = 0; r < o.rows; r++) {
            double s = 0.0;
            for (int c = 0; c < o.C; c++) s += exp(o.x[0][r * o.C + c]);
            for (int c = 0; c < o.C; c++) {
                double p = exp(o.x[0][r * o.C + c]) / s;
                ref[r * o.C + c] = use_log ? log(p) : p;
            }
        }
        EXPECT(mixed_err(out, ref, o.n_out) <= 1e-12, "%s: forward vs reference", o.name);
        check_op(&o);

        /* stability: a row of huge logits stays finite in float32 */
        float big[4] = {1000.f, 999.f, -1000.f, 0.f}, ob[4];
        eng_softmax_forward(ob, big, 1, 4, use_log);
        double e1 = exp(-1.0);
        double want[4] = {1 / (1 + e1), e1 / (1 + e1), 0, 0};
        for (int c = 0; c < 4; c++) {
            if (use_log) want[c] = c < 2 ? log(want[c]) : (c == 2 ? -2000 : -1000) - log1p(e1);
            EXPECT(isfinite(ob[c]) && fabs(ob[c] - want[c]) <= 1e-5 * (1 + fabs(want[c])),
                   "%s: huge logits: %g vs %g", o.name, ob[c], want[c]);
        }
        op_free(&o);
    }
}

/* ---- losses --------------------------------------------------------------- */

static void loss_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_loss_forward, &o->loss, out, x[0], o->labels, x[1], o->N, o->C);
}
/* L = sum_n r_n loss_n: one call per example with scale r_n. */
static void loss_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                     const void *out, void *cache, void *scratch) {
    (void)out, (void)cache, (void)scratch;
    for (int n = 0; n < o->N; n++) {
        double s;
        from_dt(dt, elem(dt, dout, n), &s, NULL, 1);
        size_t off = (size_t)n * o->C;
        CALL3(dt, eng_loss_backward, &o->loss, elem(dt, g[0], off), elem(dt, x[0], off),
              o->labels + n, x[1] ? elem(dt, x[1], off) : NULL, 1, o->C, s);
    }
}

static void test_losses(void) {
    struct {
        eng_loss_kind kind;
        double eps;
        int targets;
        const char *name;
    } cases[] = {{ENG_LOSS_XENT, 0.0, 0, "xent"},
                 {ENG_LOSS_XENT, 0.1, 0, "xent smoothing 0.1"},
                 {ENG_LOSS_MSE, 0.0, 1, "mse targets"},
                 {ENG_LOSS_MSE, 0.0, 0, "mse one-hot"},
                 {ENG_LOSS_MARGIN, 0.0, 0, "margin"}};
    const int N = 5, C = 6;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        Op o = {0};
        snprintf(o.name, sizeof o.name, "loss %s", cases[ci].name);
        o.N = N;
        o.C = C;
        o.loss.kind = cases[ci].kind;
        o.loss.label_smoothing = cases[ci].eps;
        o.labels = at_malloc(N * sizeof(int32_t), "test");
        for (int n = 0; n < N; n++) o.labels[n] = (n * 4 + 1) % C;
        o.nt = 2;
        o.len[0] = (size_t)N * C;
        o.diff[0] = 1;
        o.x[0] = rand_vec(o.len[0], 3.0);
        o.len[1] = cases[ci].targets ? (size_t)N * C : 0;
        o.x[1] = rand_vec(o.len[1], 1.0);
        o.n_out = N;
        o.fwd = loss_fwd;
        o.bwd = loss_bwd;

        /* closed forms from naive probabilities */
        double out[5], ref[5];
        run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
        for (int n = 0; n < N; n++) {
            const double *z = o.x[0] + n * C;
            int y = o.labels[n];
            double s = 0.0, p[6];
            for (int c = 0; c < C; c++) s += exp(z[c]);
            for (int c = 0; c < C; c++) p[c] = exp(z[c]) / s;
            if (o.loss.kind == ENG_LOSS_XENT) {
                double eps = o.loss.label_smoothing, m = 0.0;
                for (int c = 0; c < C; c++) m += -log(p[c]) / C;
                ref[n] = (1 - eps) * -log(p[y]) + eps * m;
            } else if (o.loss.kind == ENG_LOSS_MSE) {
                double acc = 0.0;
                for (int c = 0; c < C; c++) {
                    double t = o.len[1] ? o.x[1][n * C + c] : (c == y);
                    acc += (z[c] - t) * (z[c] - t);
                }
                ref[n] = acc / C;
            } else {
                ref[n] = log(p[y]) - log(1 - p[y]);
            }
        }
        EXPECT(mixed_err(out, ref, N) <= 1e-12, "%s: forward vs closed form %.3g", o.name,
               mixed_err(out, ref, N));
        check_op(&o);

        /* the batched backward with scale 1/N is the mean loss's gradient */
        {
            double g1[30] = {0}, g2[30] = {0};
            eng_loss_backward_f64(&o.loss, g1, o.x[0], o.labels, o.len[1] ? o.x[1] : NULL, N, C,
                                  1.0 / N);
            for (int n = 0; n < N; n++)
                eng_loss_backward_f64(&o.loss, g2 + n * C, o.x[0] + n * C, o.labels + n,
                                      o.len[1] ? o.x[1] + n * C : NULL, 1, C, 1.0 / N);
            EXPECT(max_diff(g1, g2, N * C) <= 1e-15, "%s: batched backward", o.name);
        }
        /* stability: huge logits in float32 stay finite */
        if (o.loss.kind != ENG_LOSS_MSE) {
            float z[3] = {3000.f, -3000.f, 2990.f}, l, gz[3] = {0};
            int32_t y = 2;
            eng_loss_forward(&o.loss, &l, z, &y, NULL, 1, 3);
            eng_loss_backward(&o.loss, gz, z, &y, NULL, 1, 3, 1.0);
            double want =
                o.loss.kind == ENG_LOSS_MARGIN
                    ? -10.0
                    : (1 - o.loss.label_smoothing) * (10 + log1p(exp(-10.0))) +
                          o.loss.label_smoothing * ((10 + 6000 + 0) / 3.0 + log1p(exp(-10.0)));
            EXPECT(isfinite(l) && fabs(l - want) <= 1e-4 * (1 + fabs(want)),
                   "%s: huge logits: loss %g, want %g", o.name, l, want);
            EXPECT(isfinite(gz[0]) && isfinite(gz[1]) && isfinite(gz[2]),
                   "%s: huge logits: non-finite gradient", o.name);
        }
        op_free(&o);
    }
}

/* ---- layer norm ----------------------------------------------------------- */

static void ln_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    (void)scratch;
    CALL3(dt, eng_layernorm_forward, out, cache, x[0], x[1], x[2], o->eps, o->rows, o->C);
}
static void ln_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                   const void *out, void *cache, void *scratch) {
    (void)out, (void)scratch;
    CALL3(dt, eng_layernorm_backward, g[0], g[1], g[2], dout, x[0], cache, x[1], o->rows, o->C);
}

static void test_layernorm(void) {
    const int N = 3, T = 4, C = 8, rows = N * T;
    for (int affine = 0; affine < 2; affine++) {
        Op o = {0};
        snprintf(o.name, sizeof o.name, "layernorm affine=%d", affine);
        o.rows = rows;
        o.C = C;
        o.eps = 1e-5;
        o.nt = 3;
        o.len[0] = o.n_out = (size_t)rows * C;
        o.len[1] = o.len[2] = affine ? (size_t)C : 0;
        o.diff[0] = o.diff[1] = o.diff[2] = 1;
        o.x[0] = rand_vec(o.len[0], 2.0);
        for (size_t i = 0; i < o.len[0]; i++) o.x[0][i] += 0.5; /* nonzero row means */
        o.x[1] = rand_vec(o.len[1], 1.0);
        for (size_t i = 0; i < o.len[1]; i++) o.x[1][i] += 1.0;
        o.x[2] = rand_vec(o.len[2], 1.0);
        o.cache_len = 2 * (size_t)rows;
        o.fwd = ln_fwd;
        o.bwd = ln_bwd;

        double out[96], ref[96], stats[24];
        eng_layernorm_forward_f64(out, stats, o.x[0], affine ? o.x[1] : NULL,
                                  affine ? o.x[2] : NULL, o.eps, rows, C);
        for (int r = 0; r < rows; r++) {
            const double *x = o.x[0] + r * C;
            double mean = 0.0, var = 0.0;
            for (int c = 0; c < C; c++) mean += x[c] / C;
            for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean) / C;
            for (int c = 0; c < C; c++) {
                double y = (x[c] - mean) / sqrt(var + o.eps);
                ref[r * C + c] = affine ? y * o.x[1][c] + o.x[2][c] : y;
            }
            EXPECT(fabs(stats[2 * r] - mean) <= 1e-14 &&
                       fabs(stats[2 * r + 1] - 1 / sqrt(var + o.eps)) <= 1e-12 * stats[2 * r + 1],
                   "%s: row %d statistics", o.name, r);
        }
        EXPECT(mixed_err(out, ref, o.n_out) <= 1e-12, "%s: forward vs reference %.3g", o.name,
               mixed_err(out, ref, o.n_out));
        check_op(&o);

        if (affine) {
            /* per-example: g_b = (dw_b, db_b); sum_b = batch; = a 1-example backward */
            double d[96], dw[8] = {0}, db[8] = {0}, pe[3 * 20], sum[16] = {0};
            for (int i = 0; i < rows * C; i++) d[i] = urand();
            eng_layernorm_backward_f64(NULL, dw, db, d, o.x[0], stats, o.x[1], rows, C);
            eng_layernorm_grad_per_example_f64(pe, 20, d, o.x[0], stats, N, T, C);
            for (int b = 0; b < N; b++) {
                double one[16] = {0};
                eng_layernorm_backward_f64(NULL, one, one + C, d + b * T * C, o.x[0] + b * T * C,
                                           stats + 2 * b * T, o.x[1], T, C);
                EXPECT(max_diff(pe + b * 20, one, 2 * C) <= 1e-14,
                       "layernorm: per-example %d != 1-example backward", b);
                for (int i = 0; i < 2 * C; i++) sum[i] += pe[b * 20 + i];
            }
            EXPECT(max_diff(sum, dw, C) <= 1e-13 && max_diff(sum + C, db, C) <= 1e-13,
                   "layernorm: per-example grads do not sum to the batch grads");
        }
        op_free(&o);
    }
}

/* ---- embeddings ------------------------------------------------------------ */

static void emb_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_embedding_forward, out, x[0], x[1], o->rows, o->V, o->E);
}
static void emb_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                    const void *out, void *cache, void *scratch) {
    (void)out, (void)cache, (void)scratch;
    CALL3(dt, eng_embedding_backward, g[1], dout, x[0], o->rows, o->V, o->E);
}

static void test_embedding(void) {
    const int N = 3, T = 4, V = 7, E = 5, rows = N * T;
    Op o = {0};
    snprintf(o.name, sizeof o.name, "embedding");
    o.rows = rows;
    o.V = V;
    o.E = E;
    o.nt = 2;
    o.len[0] = (size_t)rows;
    o.x[0] = at_malloc(rows * sizeof(double), "test");
    /* ids as numbers, with float noise that rounding removes; every token
     * used at least once (all gradient rows nonzero), some repeated */
    for (int r = 0; r < rows; r++) o.x[0][r] = (double)((r * 3) % V) + 0.2 * urand();
    o.len[1] = (size_t)V * E;
    o.diff[1] = 1;
    o.x[1] = rand_vec(o.len[1], 1.0);
    o.n_out = (size_t)rows * E;
    o.fwd = emb_fwd;
    o.bwd = emb_bwd;
    double out[60], ref[60];
    run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
    for (int r = 0; r < rows; r++)
        for (int e = 0; e < E; e++) ref[r * E + e] = o.x[1][((r * 3) % V) * E + e];
    EXPECT(max_diff(out, ref, o.n_out) == 0, "embedding: forward vs lookup");
    check_op(&o);

    /* per-example */
    double d[60], dt_[35] = {0}, pe[3 * 40], sum[35] = {0};
    for (int i = 0; i < rows * E; i++) d[i] = urand();
    eng_embedding_backward_f64(dt_, d, o.x[0], rows, V, E);
    for (int i = 0; i < 3 * 40; i++) pe[i] = 99.0; /* must be overwritten */
    eng_embedding_grad_per_example_f64(pe, 40, d, o.x[0], N, T, V, E);
    for (int b = 0; b < N; b++) {
        double one[35] = {0};
        eng_embedding_backward_f64(one, d + b * T * E, o.x[0] + b * T, T, V, E);
        EXPECT(max_diff(pe + b * 40, one, V * E) <= 1e-15,
               "embedding: per-example %d != 1-example backward", b);
        for (int i = 0; i < V * E; i++) sum[i] += pe[b * 40 + i];
    }
    EXPECT(max_diff(sum, dt_, V * E) <= 1e-14,
           "embedding: per-example grads do not sum to the batch grads");
    op_free(&o);
}

static void pos_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    (void)cache, (void)scratch;
    CALL3(dt, eng_posemb_forward, out, x[0], x[1], o->N, o->T, o->E);
}
static void pos_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                    const void *out, void *cache, void *scratch) {
    (void)x, (void)out, (void)cache, (void)scratch;
    CALL3(dt, eng_posemb_backward, g[0], g[1], dout, o->N, o->T, o->E);
}

static void test_posemb(void) {
    Op o = {0};
    snprintf(o.name, sizeof o.name, "pos_embedding");
    o.N = 3;
    o.T = 4;
    o.E = 5;
    o.maxlen = 6; /* rows T..maxlen-1 of pos get no gradient */
    o.nt = 2;
    o.len[0] = o.n_out = (size_t)o.N * o.T * o.E;
    o.len[1] = (size_t)o.maxlen * o.E;
    o.diff[0] = o.diff[1] = 1;
    o.x[0] = rand_vec(o.len[0], 1.0);
    o.x[1] = rand_vec(o.len[1], 1.0);
    o.fwd = pos_fwd;
    o.bwd = pos_bwd;
    double out[60], ref[60];
    run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
    for (int n = 0; n < o.N; n++)
        for (int i = 0; i < o.T * o.E; i++)
            ref[n * o.T * o.E + i] = o.x[0][n * o.T * o.E + i] + o.x[1][i];
    EXPECT(max_diff(out, ref, o.n_out) == 0, "pos_embedding: forward vs reference");
    check_op(&o);
    op_free(&o);
}

/* ---- attention --------------------------------------------------------------- */

static void attn_fwd(const Op *o, int dt, void *const *x, void *out, void *cache, void *scratch) {
    CALL3(dt, eng_attention_forward, out, cache, x[0], x[1], x[2], x[3], x[4], o->N, o->T, o->E,
          o->H, o->causal, scratch);
}
static void attn_bwd(const Op *o, int dt, void *const *x, const void *dout, void *const *g,
                     const void *out, void *cache, void *scratch) {
    (void)out;
    CALL3(dt, eng_attention_backward, g[0], g[1], g[2], g[3], g[4], dout, x[0], cache, x[1], x[3],
          o->N, o->T, o->E, o->H, o->causal, scratch);
}

/* Naive multi-head self-attention, as the formula in ops_seq.inc's comment. */
static void attn_ref(double *out, const double *in, const double *w_in, const double *b_in,
                     const double *w_out, const double *b_out, int N, int T, int E, int H,
                     int causal) {
    int D = E / H;
    double *qkv = at_malloc((size_t)T * 3 * E * sizeof(double), "test");
    double *ctx = at_malloc((size_t)T * E * sizeof(double), "test");
    double *p = at_malloc((size_t)T * sizeof(double), "test");
    for (int n = 0; n < N; n++) {
        const double *x = in + (size_t)n * T * E;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < 3 * E; j++) {
                double s = b_in ? b_in[j] : 0.0;
                for (int e = 0; e < E; e++) s += x[t * E + e] * w_in[j * E + e];
                qkv[t * 3 * E + j] = s;
            }
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                double den = 0.0;
                for (int u = 0; u < T; u++) {
                    double s = 0.0;
                    for (int i = 0; i < D; i++)
                        s += qkv[t * 3 * E + h * D + i] * qkv[u * 3 * E + E + h * D + i];
                    p[u] = (causal && u > t) ? 0.0 : exp(s / sqrt((double)D));
                    den += p[u];
                }
                for (int i = 0; i < D; i++) {
                    double s = 0.0;
                    for (int u = 0; u < T; u++)
                        s += p[u] / den * qkv[u * 3 * E + 2 * E + h * D + i];
                    ctx[t * E + h * D + i] = s;
                }
            }
        for (int t = 0; t < T; t++)
            for (int j = 0; j < E; j++) {
                double s = b_out ? b_out[j] : 0.0;
                for (int e = 0; e < E; e++) s += ctx[t * E + e] * w_out[j * E + e];
                out[((size_t)n * T + t) * E + j] = s;
            }
    }
    free(qkv);
    free(ctx);
    free(p);
}

static void attn_setup(Op *o, int N, int T, int E, int H, int causal, int bias) {
    snprintf(o->name, sizeof o->name, "attention N=%d T=%d E=%d H=%d causal=%d bias=%d", N, T, E, H,
             causal, bias);
    o->N = N;
    o->T = T;
    o->E = E;
    o->H = H;
    o->causal = causal;
    o->nt = 5;
    o->len[0] = o->n_out = (size_t)N * T * E;
    o->len[1] = 3 * (size_t)E * E;
    o->len[2] = bias ? 3 * (size_t)E : 0;
    o->len[3] = (size_t)E * E;
    o->len[4] = bias ? (size_t)E : 0;
    double sc[5] = {1.0, 0.6, 0.3, 0.5, 0.3};
    for (int k = 0; k < 5; k++) {
        o->diff[k] = 1;
        o->x[k] = rand_vec(o->len[k], sc[k]);
    }
    o->cache_len = (size_t)N * eng_attention_cache_size(T, E, H);
    o->scratch_len = eng_attention_scratch_size(T, E, H);
    o->fwd = attn_fwd;
    o->bwd = attn_bwd;
}

static void test_attention(void) {
    const int N = 3, T = 5, E = 8;
    for (int H = 1; H <= 2; H++)
        for (int causal = 0; causal < 2; causal++)
            for (int bias = 0; bias < 2; bias++) {
                Op o = {0};
                attn_setup(&o, N, T, E, H, causal, bias);
                double *out = at_malloc(o.n_out * sizeof(double), "test");
                double *ref = at_malloc(o.n_out * sizeof(double), "test");
                run(&o, DT64, o.x, NULL, out, NULL, NULL, NULL, NULL);
                attn_ref(ref, o.x[0], o.x[1], bias ? o.x[2] : NULL, o.x[3], bias ? o.x[4] : NULL, N,
                         T, E, H, causal);
                EXPECT(mixed_err(out, ref, o.n_out) <= 1e-12, "%s: forward vs reference %.3g",
                       o.name, mixed_err(out, ref, o.n_out));
                check_op(&o);

                /* causality: changing positions > t leaves output rows <= t
                 * alone when causal, and changes them when not */
                for (int t = 0; t < T - 1; t++) {
                    double *x2 = dup_vec(o.x[0], o.len[0]);
                    for (int n = 0; n < N; n++)
                        for (int u = t + 1; u < T; u++)
                            for (int e = 0; e < E; e++) x2[(n * T + u) * E + e] += 0.5 + urand();
                    double *xs[5] = {x2, o.x[1], o.x[2], o.x[3], o.x[4]};
                    double *out2 = at_malloc(o.n_out * sizeof(double), "test");
                    run(&o, DT64, xs, NULL, out2, NULL, NULL, NULL, NULL);
                    double dmax = 0.0;
                    for (int n = 0; n < N; n++)
                        for (int u = 0; u <= t; u++)
                            for (int e = 0; e < E; e++) {
                                size_t i = (size_t)(n * T + u) * E + e;
                                dmax = fmax(dmax, fabs(out2[i] - out[i]));
                            }
                    if (causal)
                        EXPECT(dmax == 0.0, "%s: position %d sees the future (%.3g)", o.name, t,
                               dmax);
                    else
                        EXPECT(dmax > 1e-6, "%s: position %d does not see the future", o.name, t);
                    free(out2);
                    free(x2);
                }
                /* a 1-example backward on slices of the batch's cache is that
                 * example's part of the batch backward (per-example grads) */
                {
                    size_t cs = eng_attention_cache_size(T, E, H);
                    double *cache = at_calloc((size_t)N * cs, sizeof(double), "test");
                    double *scr =
                        at_calloc(eng_attention_scratch_size(T, E, H), sizeof(double), "test");
                    double *d = rand_vec(o.n_out, 1.0);
                    double *wb = at_calloc(3 * E * E, sizeof(double), "test");
                    double *ws = at_calloc(3 * E * E, sizeof(double), "test");
                    double *ob = at_calloc(E * E, sizeof(double), "test");
                    double *os = at_calloc(E * E, sizeof(double), "test");
                    eng_attention_forward_f64(out, cache, o.x[0], o.x[1], o.len[2] ? o.x[2] : NULL,
                                              o.x[3], o.len[4] ? o.x[4] : NULL, N, T, E, H, causal,
                                              scr);
                    eng_attention_backward_f64(NULL, wb, NULL, ob, NULL, d, o.x[0], cache, o.x[1],
                                               o.x[3], N, T, E, H, causal, scr);
                    for (int n = 0; n < N; n++)
                        eng_attention_backward_f64(NULL, ws, NULL, os, NULL, d + n * T * E,
                                                   o.x[0] + n * T * E, cache + n * cs, o.x[1],
                                                   o.x[3], 1, T, E, H, causal, scr);
                    EXPECT(max_diff(wb, ws, 3 * E * E) <= 1e-13 && max_diff(ob, os, E * E) <= 1e-13,
                           "%s: per-example backward on cache slices != batch", o.name);
                    free(cache), free(scr), free(d), free(wb), free(ws), free(ob), free(os);
                }
                free(out);
                free(ref);
                op_free(&o);
            }
}

/* ---- values computed by PyTorch 1.13 in float64 ------------------------------ */

/* sin sequences: s * sin(a i + b), i = 0..n-1 (the script's inputs) */
static void sinseq(double *v, int n, double a, double b, double s) {
    for (int i = 0; i < n; i++) v[i] = s * sin(a * i + b);
}

static void test_torch_values(void) {
    /* nn.MultiheadAttention(4, H, bias, batch_first=True)(x, x, x,
     * need_weights=False, attn_mask=triu(-inf, 1) if causal) on (2, 3, 4) */
    static const double want_h2_causal_bias[24] = {
        -0.6904263252700984,  0.75161692587544193,  1.1134946208862888,   -0.35641529519416709,
        -0.75818880727704563, 0.84411726439810253,  1.1684645930756008,   -0.45651781031572342,
        -0.5208627477836828,  1.0143081034477157,   0.90760166859141034,  -0.5906321162864494,
        1.2262844123746623,   -0.47633667271910812, -0.63339394403450022, 1.1131275718719686,
        0.40346294896374807,  -0.54324476928345233, 0.19868070153605547,  1.0649623266251482,
        0.20932207146765847,  -0.70765541640619456, 0.41555906141364107,  1.1993793694835455};
    static const double want_h1[24] = {
        0.56460600808180705,  -0.17109803516289801, -0.54094368068326193, 0.24590886781982949,
        0.60813842121294126,  -0.19288725320715253, -0.58146271256410553, 0.2733017422551336,
        -0.84650659408718198, 0.61986756862510861,  0.76078083260439877,  -0.72508119730578768,
        -1.1070467767294838,  0.81607421124429169,  0.9941862453412238,   -0.9535670843213957,
        0.74864626852636895,  -0.64814625551922567, -0.65900965238618148, 0.73928524574033949,
        1.0414097263531343,   -0.84095191326753493, -0.92510868596290363, 0.96889157420899963};
    const int N = 2, T = 3, E = 4;
    double x[24], w_in[48], b_in[12], w_out[16], b_out[4], out[24];
    sinseq(x, 24, 0.37, 0.1, 1.0);
    sinseq(w_in, 48, 0.23, 0.5, 0.6);
    sinseq(b_in, 12, 0.29, 0.3, 0.3);
    sinseq(w_out, 16, 0.41, 0.2, 0.5);
    sinseq(b_out, 4, 0.53, 0.7, 0.3);
    for (int c = 0; c < 2; c++) {
        int H = c == 0 ? 2 : 1;
        double *cache = at_calloc(N * eng_attention_cache_size(T, E, H), sizeof(double), "test");
        double *scr = at_calloc(eng_attention_scratch_size(T, E, H), sizeof(double), "test");
        eng_attention_forward_f64(out, cache, x, w_in, c == 0 ? b_in : NULL, w_out,
                                  c == 0 ? b_out : NULL, N, T, E, H, c == 0, scr);
        const double *want = c == 0 ? want_h2_causal_bias : want_h1;
        EXPECT(mixed_err(out, want, 24) <= 1e-12, "torch: attention case %d: err %.3g", c,
               mixed_err(out, want, 24));
        free(cache);
        free(scr);
    }

    /* nn.LayerNorm(5, eps=1e-5) */
    static const double want_ln[5] = {-1.8281982097109726, 1.687655847323511, 2.8988897825125464,
                                      1.0015735695466537, -2.6699634224989803};
    double xl[5], wl[5], bl[5], ol[5], st[2];
    sinseq(xl, 5, 0.7, 0.2, 2.0);
    sinseq(wl, 5, 0.3, 1.0, 1.0);
    sinseq(bl, 5, 0.9, 0.4, 0.5);
    for (int i = 0; i < 5; i++) xl[i] += 0.3, wl[i] += 1.0;
    eng_layernorm_forward_f64(ol, st, xl, wl, bl, 1e-5, 1, 5);
    EXPECT(mixed_err(ol, want_ln, 5) <= 1e-12, "torch: layer norm err %.3g",
           mixed_err(ol, want_ln, 5));

    /* F.gelu, F.gelu(approximate='tanh'), F.softplus, F.silu */
    static const double pts[7] = {-30.0, -3.0, -0.5, 0.7, 2.5, 19.0, 21.0};
    static const struct {
        eng_layer_kind kind;
        double want[7];
    } acts[] = {{ENG_LAYER_GELU,
                 {-0.0, -0.0040496940948903104, -0.15426876936299344, 0.53062544344384888,
                  2.4844758366855597, 19, 21}},
                {ENG_LAYER_GELU_TANH,
                 {-0.0, -0.0036373920817729943, -0.15428599017485606, 0.53057013470511671,
                  2.4849157339100012, 19, 21}},
                {ENG_LAYER_SOFTPLUS,
                 {9.3576229688397368e-14, 0.048587351573742062, 0.47407698418010669,
                  1.1031860488854579, 2.5788897342925496, 19.000000005602796, 21}},
                {ENG_LAYER_SILU,
                 {-2.8072868906517896e-12, -0.14227761953270035, -0.1887703343990727,
                  0.46773144051771626, 2.3103545499468914, 18.999999893546867, 20.99999998407662}}};
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        double o[7];
        eng_act_forward_f64(acts[a].kind, o, pts, 7);
        for (int i = 0; i < 7; i++)
            EXPECT(fabs(o[i] - acts[a].want[i]) <= 1e-13 * fabs(acts[a].want[i]) + 1e-300,
                   "torch: activation %d at %g: %.17g vs %.17g", (int)a, pts[i], o[i],
                   acts[a].want[i]);
    }

    /* F.cross_entropy(z, y, label_smoothing=0.1, reduction='none') and
     * F.mse_loss(z, one_hot(y), reduction='mean') on (2, 4) */
    double z[8], l[2];
    int32_t y[2] = {2, 0};
    sinseq(z, 8, 1.3, 0.4, 3.0);
    eng_loss xe = {.kind = ENG_LOSS_XENT, .label_smoothing = 0.1};
    eng_loss_forward_f64(&xe, l, z, y, NULL, 2, 4);
    EXPECT(fabs(l[0] - 2.7679832522359185) <= 1e-14 * 2.8 &&
               fabs(l[1] - 4.7976109665597964) <= 1e-14 * 4.8,
           "torch: cross_entropy with smoothing: %.17g %.17g", l[0], l[1]);
    eng_loss mse = {.kind = ENG_LOSS_MSE};
    eng_loss_forward_f64(&mse, l, z, y, NULL, 2, 4);
    EXPECT(fabs((l[0] + l[1]) / 2 - 4.6878964473847082) <= 1e-14 * 4.7,
           "torch: mse_loss mean: %.17g", (l[0] + l[1]) / 2);
}

int main(void) {
    test_activations();
    test_softmax();
    test_losses();
    test_layernorm();
    test_embedding();
    test_posemb();
    test_attention();
    test_torch_values();
    printf("worst errors:");
    for (int w = 0; w < W_N; w++)
        printf(" %s %.2g%s", WNAME[w], worst[w], w + 1 < W_N ? "," : "\n");
    return check_report("test_ops_seq");
}
