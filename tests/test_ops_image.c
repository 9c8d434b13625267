/* test_ops_image.c — the image kernels (conv2d, max/avg pool, global
 * average pool, batch norm) in all three instantiations.
 *
 * For each op and several geometries (stride 2, padding, dilation 2,
 * non-square kernels, 1x1 convs, C, OC, N > 1):
 *  1. the float64 forward equals a naive direct-loop reference written here
 *     (no im2col) to 1e-12;
 *  2. the float64 backward of L = sum(r * out) equals central finite
 *     differences of the float64 forward (h = 1e-6) to 1e-6 relative; it
 *     accumulates (a second call doubles it) and each gradient alone (the
 *     others NULL) equals the full call;
 *  3. complex step: Im L(a + i h v) / h (h = 1e-30, complex128 forward)
 *     equals <grad, v> to 1e-10; the complex128 backward's real part is the
 *     float64 backward and its imaginary part / h is the finite-difference
 *     directional derivative of the float64 backward (what HVPs use);
 *  4. float32 forward and backward agree with float64 to 1e-4 relative;
 *  5. per-example gradients (conv, batch norm): example n equals the batch
 *     backward on example n alone, they sum to the batch gradient, and the
 *     tail of each row past the gradient is left alone.
 * Plus max-pool ties (the first maximum in window order wins). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine.h"

#include "check.h"

typedef double complex zd;

#define MAX_ARGS 3
#define CSTEP 1e-30

/* --------------------------------------------------------------- helpers */

static uint64_t stream_ctr = 100;

/* x (n) uniform in [lo, hi), from a fresh RNG stream. */
static void fill(double *x, size_t n, double lo, double hi) {
    uint64_t s = stream_ctr++;
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * at_rng_uniform_f64(11, s, i, 0);
}

static double *dalloc(size_t n) { return at_calloc(n ? n : 1, sizeof(double), "test"); }

/* max |a - b| / max |b| */
static double rel_err(const double *a, const double *b, size_t n) {
    double num = 0.0, den = 1e-300;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static double rel_err_f(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 1e-300;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static float *to_f32(const double *x, size_t n) {
    float *y = at_malloc((n ? n : 1) * sizeof(float), "test");
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

static zd *to_c128(const double *x, size_t n) {
    zd *y = at_malloc((n ? n : 1) * sizeof(zd), "test");
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static eng_geom2d geom(int C, int H, int W, int OC, int KH, int KW, int SH, int SW, int PH, int PW,
                       int DH, int DW, int cip) {
    eng_geom2d g = {.C = C,
                    .H = H,
                    .W = W,
                    .OC = OC,
                    .KH = KH,
                    .KW = KW,
                    .SH = SH,
                    .SW = SW,
                    .PH = PH,
                    .PW = PW,
                    .DH = DH,
                    .DW = DW,
                    .count_include_pad = cip};
    g.OH = (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1;
    g.OW = (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1;
    return g;
}

/* ------------------------------------------------ ops behind one harness */

typedef enum { OP_CONV, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_BN } op_kind;

/* One op instance: its differentiable arguments (input first, then
 * parameters) and the constants it needs. */
typedef struct {
    op_kind kind;
    char name[96];
    int n_args;
    size_t len[MAX_ARGS];
    size_t out_len;
    eng_geom2d g;
    int N, bias;
    int C, L; /* gap: HW = L; batch norm */
    double eps;
    double *mean, *var; /* (C) batch norm running statistics */
    float *mean32, *var32;
    zd *meanz, *varz;
    size_t col; /* conv: eng_conv2d_col_size */
    double *col64;
    float *col32;
    zd *colz;
} op;

/* Generic forward/backward over the three element types. ga[i] may be NULL. */
#define OP_DISPATCH(SUF, T, col_, mean_, var_)                                                     \
    static void fwd##SUF(const op *o, T *out, T *const *a) {                                       \
        switch (o->kind) {                                                                         \
        case OP_CONV:                                                                              \
            eng_conv2d_forward##SUF(out, a[0], a[1], o->bias ? a[2] : NULL, &o->g, o->N, o->col_); \
            break;                                                                                 \
        case OP_MAXPOOL:                                                                           \
            eng_maxpool2d_forward##SUF(out, NULL, a[0], &o->g, o->N);                                    \
            break;                                                                                 \
        case OP_AVGPOOL:                                                                           \
            eng_avgpool2d_forward##SUF(out, a[0], &o->g, o->N);                                    \
            break;                                                                                 \
        case OP_GAP:                                                                               \
            eng_gap_forward##SUF(out, a[0], o->N, o->C, o->L);                                     \
            break;                                                                                 \
        case OP_BN:                                                                                \
            eng_batchnorm_forward##SUF(out, a[0], o->n_args > 1 ? a[1] : NULL,                     \
                                       o->n_args > 1 ? a[2] : NULL, o->mean_, o->var_, o->eps,     \
                                       o->N, o->C, o->L);                                          \
            break;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void bwd##SUF(const op *o, T *const *ga, const T *dout, T *const *a) {                  \
        switch (o->kind) {                                                                         \
        case OP_CONV:                                                                              \
            eng_conv2d_backward##SUF(ga[0], ga[1], o->bias ? ga[2] : NULL, dout, a[0], a[1],       \
                                     &o->g, o->N, o->col_);                                        \
            break;                                                                                 \
        case OP_MAXPOOL:                                                                           \
            eng_maxpool2d_backward##SUF(ga[0], dout, a[0], NULL, &o->g, o->N);                           \
            break;                                                                                 \
        case OP_AVGPOOL:                                                                           \
            eng_avgpool2d_backward##SUF(ga[0], dout, &o->g, o->N);                                 \
            break;                                                                                 \
        case OP_GAP:                                                                               \
            eng_gap_backward##SUF(ga[0], dout, o->N, o->C, o->L);                                  \
            break;                                                                                 \
        case OP_BN:                                                                                \
            eng_batchnorm_backward##SUF(                                                           \
                ga[0], o->n_args > 1 ? ga[1] : NULL, o->n_args > 1 ? ga[2] : NULL, dout, a[0],     \
                o->n_args > 1 ? a[1] : NULL, o->mean_, o->var_, o->eps, o->N, o->C, o->L);         \
            break;                                                                                 \
        }                                                                                          \
    }

OP_DISPATCH(_f64, double, col64, mean, var)
OP_DISPATCH(, float, col32, mean32, var32)
OP_DISPATCH(_c128, zd, colz, meanz, varz)

/* ------------------------------------------------- naive references */

static void conv_ref(const op *o, double *out, double *const *a) {
    const eng_geom2d *g = &o->g;
    const double *in = a[0], *w = a[1], *b = o->bias ? a[2] : NULL;
    for (int n = 0; n < o->N; n++)
        for (int oc = 0; oc < g->OC; oc++)
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++) {
                    double s = b ? b[oc] : 0.0;
                    for (int c = 0; c < g->C; c++)
                        for (int kh = 0; kh < g->KH; kh++)
                            for (int kw = 0; kw < g->KW; kw++) {
                                int ih = oh * g->SH - g->PH + kh * g->DH;
                                int iw = ow * g->SW - g->PW + kw * g->DW;
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                                s += in[((n * g->C + c) * g->H + ih) * g->W + iw] *
                                     w[((oc * g->C + c) * g->KH + kh) * g->KW + kw];
                            }
                    out[((n * g->OC + oc) * g->OH + oh) * g->OW + ow] = s;
                }
}

static void pool_ref(const op *o, double *out, double *const *a) {
    const eng_geom2d *g = &o->g;
    for (int nc = 0; nc < o->N * g->C; nc++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                double mx = -INFINITY, s = 0.0;
                int valid = 0;
                for (int kh = 0; kh < g->KH; kh++)
                    for (int kw = 0; kw < g->KW; kw++) {
                        int ih = oh * g->SH - g->PH + kh * g->DH;
                        int iw = ow * g->SW - g->PW + kw * g->DW;
                        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                        double v = a[0][(nc * g->H + ih) * g->W + iw];
                        if (v > mx) mx = v;
                        s += v;
                        valid++;
                    }
                double r =
                    o->kind == OP_MAXPOOL ? mx : s / (g->count_include_pad ? g->KH * g->KW : valid);
                out[(nc * g->OH + oh) * g->OW + ow] = r;
            }
}

static void gap_ref(const op *o, double *out, double *const *a) {
    for (int nc = 0; nc < o->N * o->C; nc++) {
        double s = 0.0;
        for (int p = 0; p < o->L; p++) s += a[0][nc * o->L + p];
        out[nc] = s / o->L;
    }
}

static void bn_ref(const op *o, double *out, double *const *a) {
    for (int n = 0; n < o->N; n++)
        for (int c = 0; c < o->C; c++)
            for (int l = 0; l < o->L; l++) {
                size_t i = ((size_t)n * o->C + c) * o->L + l;
                double y = (a[0][i] - o->mean[c]) / sqrt(o->var[c] + o->eps);
                out[i] = o->n_args > 1 ? y * a[1][c] + a[2][c] : y;
            }
}

static void ref(const op *o, double *out, double *const *a) {
    switch (o->kind) {
    case OP_CONV:
        conv_ref(o, out, a);
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
        pool_ref(o, out, a);
        break;
    case OP_GAP:
        gap_ref(o, out, a);
        break;
    case OP_BN:
        bn_ref(o, out, a);
        break;
    }
}

/* ------------------------------------------------------ the harness */

static double loss64(const op *o, double *const *a, const double *r, double *out) {
    fwd_f64(o, out, a);
    double L = 0.0;
    for (size_t i = 0; i < o->out_len; i++) L += r[i] * out[i];
    return L;
}

static void op_alloc_scratch(op *o) {
    if (o->kind == OP_CONV) {
        o->col = eng_conv2d_col_size(&o->g);
        o->col64 = dalloc(o->col);
        o->col32 = at_calloc(o->col + 1, sizeof(float), "test");
        o->colz = at_calloc(o->col + 1, sizeof(zd), "test");
        if (o->col == 0) { /* the direct path must not touch col */
            free(o->col64), free(o->col32), free(o->colz);
            o->col64 = NULL, o->col32 = NULL, o->colz = NULL;
        }
    }
    if (o->kind == OP_BN) {
        o->mean32 = to_f32(o->mean, o->C), o->var32 = to_f32(o->var, o->C);
        o->meanz = to_c128(o->mean, o->C), o->varz = to_c128(o->var, o->C);
    }
}

static void op_free(op *o) {
    free(o->col64), free(o->col32), free(o->colz);
    free(o->mean), free(o->var), free(o->mean32), free(o->var32), free(o->meanz), free(o->varz);
}

/* Checks 1-4 on one op instance. */
static void check_op(op *o) {
    op_alloc_scratch(o);
    const int na = o->n_args;
    const size_t no = o->out_len;
    double *a[MAX_ARGS] = {0}, *g[MAX_ARGS] = {0}, *v[MAX_ARGS] = {0};
    for (int i = 0; i < na; i++) {
        a[i] = dalloc(o->len[i]);
        g[i] = dalloc(o->len[i]);
        v[i] = dalloc(o->len[i]);
        if (o->kind == OP_BN && i == 1)
            fill(a[i], o->len[i], 0.5, 1.5); /* gamma */
        else
            fill(a[i], o->len[i], -1.0, 1.0);
        fill(v[i], o->len[i], -1.0, 1.0);
    }
    double *out = dalloc(no), *outr = dalloc(no), *r = dalloc(no), *tmp = dalloc(no);
    fill(r, no, -1.0, 1.0);

    /* 1. forward vs naive reference */
    fwd_f64(o, out, a);
    ref(o, outr, a);
    double e = rel_err(out, outr, no);
    EXPECT(e <= 1e-12, "%s: f64 forward vs naive reference: rel err %.3g", o->name, e);

    /* 2. backward vs central differences; accumulation; gradients alone */
    bwd_f64(o, g, r, a);
    const double h = 1e-6;
    for (int i = 0; i < na; i++) {
        double *fd = dalloc(o->len[i]);
        for (size_t j = 0; j < o->len[i]; j++) {
            double keep = a[i][j];
            a[i][j] = keep + h;
            double lp = loss64(o, a, r, tmp);
            a[i][j] = keep - h;
            double lm = loss64(o, a, r, tmp);
            a[i][j] = keep;
            fd[j] = (lp - lm) / (2 * h);
        }
        e = rel_err(g[i], fd, o->len[i]);
        EXPECT(e <= 1e-6, "%s: f64 backward arg %d vs finite differences: rel err %.3g", o->name, i,
               e);
        free(fd);
    }
    {
        double *g2[MAX_ARGS] = {0};
        for (int i = 0; i < na; i++) {
            g2[i] = dalloc(o->len[i]);
            memcpy(g2[i], g[i], o->len[i] * sizeof(double));
        }
        bwd_f64(o, g2, r, a);
        for (int i = 0; i < na; i++) {
            for (size_t j = 0; j < o->len[i]; j++) g2[i][j] *= 0.5;
            e = rel_err(g2[i], g[i], o->len[i]);
            EXPECT(e <= 1e-12, "%s: backward arg %d does not accumulate (2x): rel err %.3g",
                   o->name, i, e);
        }
        /* each gradient alone (the pools always need din) */
        for (int i = 0; i < na && na > 1; i++) {
            double *one[MAX_ARGS] = {0};
            memset(g2[i], 0, o->len[i] * sizeof(double));
            one[i] = g2[i];
            bwd_f64(o, one, r, a);
            e = rel_err(g2[i], g[i], o->len[i]);
            EXPECT(e <= 1e-12, "%s: backward of arg %d alone differs: rel err %.3g", o->name, i, e);
        }
        for (int i = 0; i < na; i++) free(g2[i]);
    }

    /* 3. complex step through the forward and the backward */
    {
        zd *az[MAX_ARGS] = {0}, *gz[MAX_ARGS] = {0};
        for (int i = 0; i < na; i++) {
            az[i] = at_malloc(o->len[i] * sizeof(zd), "test");
            gz[i] = at_calloc(o->len[i], sizeof(zd), "test");
            for (size_t j = 0; j < o->len[i]; j++) az[i][j] = a[i][j] + I * CSTEP * v[i][j];
        }
        zd *outz = at_malloc(no * sizeof(zd), "test"), *rz = to_c128(r, no);
        fwd_c128(o, outz, az);
        double lim = 0.0, dre = 0.0, big = 1e-300;
        for (size_t k = 0; k < no; k++) {
            lim += r[k] * cimag(outz[k]);
            dre = fmax(dre, fabs(creal(outz[k]) - out[k]));
            big = fmax(big, fabs(out[k]));
        }
        double dot = 0.0, scale = 0.0;
        for (int i = 0; i < na; i++)
            for (size_t j = 0; j < o->len[i]; j++) {
                dot += g[i][j] * v[i][j];
                scale += fabs(g[i][j] * v[i][j]);
            }
        e = fabs(lim / CSTEP - dot) / fmax(scale, 1e-300);
        EXPECT(e <= 1e-10, "%s: complex step Im L / h = %.15g vs <grad, v> = %.15g (rel %.3g)",
               o->name, lim / CSTEP, dot, e);
        EXPECT(dre / big <= 1e-12, "%s: complex forward's real part differs: %.3g", o->name,
               dre / big);

        /* backward: Re = f64 backward, Im / h = d/dt backward(a + t v) at 0 */
        bwd_c128(o, gz, rz, az);
        double *gp[MAX_ARGS] = {0}, *gm[MAX_ARGS] = {0}, *ap[MAX_ARGS] = {0};
        const double t = 1e-6;
        for (int i = 0; i < na; i++) {
            gp[i] = dalloc(o->len[i]), gm[i] = dalloc(o->len[i]), ap[i] = dalloc(o->len[i]);
            for (size_t j = 0; j < o->len[i]; j++) ap[i][j] = a[i][j] + t * v[i][j];
        }
        bwd_f64(o, gp, r, ap);
        for (int i = 0; i < na; i++)
            for (size_t j = 0; j < o->len[i]; j++) ap[i][j] = a[i][j] - t * v[i][j];
        bwd_f64(o, gm, r, ap);
        for (int i = 0; i < na; i++) {
            double *re = dalloc(o->len[i]), *im = dalloc(o->len[i]);
            double num = 0.0, den = 1e-300;
            for (size_t j = 0; j < o->len[i]; j++) {
                re[j] = creal(gz[i][j]);
                im[j] = cimag(gz[i][j]) / CSTEP;
                double fd = (gp[i][j] - gm[i][j]) / (2 * t);
                num = fmax(num, fabs(im[j] - fd));
                den = fmax(den, fabs(fd));
            }
            e = rel_err(re, g[i], o->len[i]);
            EXPECT(e <= 1e-12, "%s: complex backward arg %d: real part rel err %.3g", o->name, i,
                   e);
            /* den is 0 for pools (their gradient is piecewise constant): then Im must be 0 */
            EXPECT(num <= 1e-6 * fmax(den, 1e-3),
                   "%s: complex backward arg %d: Im/h vs directional FD: err %.3g (scale %.3g)",
                   o->name, i, num, den);
            free(re), free(im), free(gp[i]), free(gm[i]), free(ap[i]);
        }
        for (int i = 0; i < na; i++) free(az[i]), free(gz[i]);
        free(outz), free(rz);
    }

    /* 4. float32 against float64 */
    {
        float *af[MAX_ARGS] = {0}, *gf[MAX_ARGS] = {0};
        for (int i = 0; i < na; i++) {
            af[i] = to_f32(a[i], o->len[i]);
            gf[i] = at_calloc(o->len[i], sizeof(float), "test");
        }
        float *outf = at_malloc(no * sizeof(float), "test"), *rf = to_f32(r, no);
        fwd(o, outf, af);
        e = rel_err_f(outf, out, no);
        EXPECT(e <= 1e-4, "%s: f32 forward vs f64: rel err %.3g", o->name, e);
        bwd(o, gf, rf, af);
        for (int i = 0; i < na; i++) {
            e = rel_err_f(gf[i], g[i], o->len[i]);
            EXPECT(e <= 1e-4, "%s: f32 backward arg %d vs f64: rel err %.3g", o->name, i, e);
            free(af[i]), free(gf[i]);
        }
        free(outf), free(rf);
    }

    for (int i = 0; i < na; i++) free(a[i]), free(g[i]), free(v[i]);
    free(out), free(outr), free(r), free(tmp);
}

/* ------------------------------------------------------ op builders */

static op make_conv(int N, int C, int H, int W, int OC, int KH, int KW, int SH, int SW, int PH,
                    int PW, int DH, int DW, int bias) {
    op o = {.kind = OP_CONV, .N = N, .bias = bias};
    o.g = geom(C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, 0);
    snprintf(o.name, sizeof o.name, "conv2d N%d C%d %dx%d OC%d k%dx%d s%dx%d p%dx%d d%dx%d%s", N, C,
             H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, bias ? "" : " nobias");
    o.n_args = bias ? 3 : 2;
    o.len[0] = (size_t)N * C * H * W;
    o.len[1] = (size_t)OC * C * KH * KW;
    o.len[2] = (size_t)OC;
    o.out_len = (size_t)N * OC * o.g.OH * o.g.OW;
    return o;
}

static op make_pool(op_kind kind, int N, int C, int H, int W, int KH, int KW, int SH, int SW,
                    int PH, int PW, int DH, int DW, int cip) {
    op o = {.kind = kind, .N = N};
    o.g = geom(C, H, W, C, KH, KW, SH, SW, PH, PW, DH, DW, cip);
    snprintf(o.name, sizeof o.name, "%s N%d C%d %dx%d k%dx%d s%dx%d p%dx%d d%dx%d cip%d",
             kind == OP_MAXPOOL ? "maxpool2d" : "avgpool2d", N, C, H, W, KH, KW, SH, SW, PH, PW, DH,
             DW, cip);
    o.n_args = 1;
    o.len[0] = (size_t)N * C * H * W;
    o.out_len = (size_t)N * C * o.g.OH * o.g.OW;
    return o;
}

static op make_gap(int N, int C, int HW) {
    op o = {.kind = OP_GAP, .N = N, .C = C, .L = HW, .n_args = 1};
    snprintf(o.name, sizeof o.name, "gap N%d C%d HW%d", N, C, HW);
    o.len[0] = (size_t)N * C * HW;
    o.out_len = (size_t)N * C;
    return o;
}

static op make_bn(int N, int C, int L, int affine, double eps) {
    op o = {.kind = OP_BN, .N = N, .C = C, .L = L, .eps = eps, .n_args = affine ? 3 : 1};
    snprintf(o.name, sizeof o.name, "batchnorm N%d C%d L%d%s", N, C, L, affine ? "" : " noaffine");
    o.len[0] = (size_t)N * C * L;
    o.len[1] = o.len[2] = (size_t)C;
    o.out_len = o.len[0];
    o.mean = dalloc(C), o.var = dalloc(C);
    fill(o.mean, C, -1.0, 1.0);
    fill(o.var, C, 0.5, 1.5);
    return o;
}

/* ------------------------------------------------- per-example tests */

static void check_conv_per_example(op o) {
    op_alloc_scratch(&o);
    const eng_geom2d *g = &o.g;
    const int N = o.N, OC = g->OC, K = g->C * g->KH * g->KW;
    const size_t in_n = (size_t)g->C * g->H * g->W, out_n = (size_t)OC * g->OH * g->OW;
    const size_t ng = (size_t)OC * K + (o.bias ? OC : 0), stride = ng + 3;
    double *in = dalloc(o.len[0]), *w = dalloc(o.len[1]), *dout = dalloc(o.out_len);
    fill(in, o.len[0], -1, 1), fill(w, o.len[1], -1, 1), fill(dout, o.out_len, -1, 1);
    double *pe = dalloc(N * stride), *sum = dalloc(ng), *one = dalloc(ng), *all = dalloc(ng);
    for (size_t i = 0; i < N * stride; i++) pe[i] = 777.0;
    eng_conv2d_grad_per_example_f64(pe, stride, dout, in, g, N, o.bias, o.col64);
    double e1 = 0.0, tail = 0.0;
    for (int n = 0; n < N; n++) {
        memset(one, 0, ng * sizeof(double));
        eng_conv2d_backward_f64(NULL, one, o.bias ? one + (size_t)OC * K : NULL, dout + n * out_n,
                                in + n * in_n, w, g, 1, o.col64);
        e1 = fmax(e1, rel_err(pe + n * stride, one, ng));
        for (size_t j = 0; j < ng; j++) sum[j] += pe[n * stride + j];
        for (size_t j = ng; j < stride; j++) tail = fmax(tail, fabs(pe[n * stride + j] - 777));
    }
    eng_conv2d_backward_f64(NULL, all, o.bias ? all + (size_t)OC * K : NULL, dout, in, w, g, N,
                            o.col64);
    double e2 = rel_err(sum, all, ng);
    EXPECT(e1 <= 1e-12, "%s: per-example n vs backward on n alone: rel err %.3g", o.name, e1);
    EXPECT(e2 <= 1e-12, "%s: per-example sum vs batch backward: rel err %.3g", o.name, e2);
    EXPECT(tail == 0.0, "%s: per-example wrote past its gradient", o.name);

    /* float32 and complex128 instantiations agree */
    float *inf = to_f32(in, o.len[0]), *doutf = to_f32(dout, o.out_len);
    float *pef = at_calloc(N * stride, sizeof(float), "test");
    eng_conv2d_grad_per_example(pef, stride, doutf, inf, g, N, o.bias, o.col32);
    double *pe32 = dalloc(N * stride);
    for (size_t i = 0; i < N * stride; i++) pe32[i] = pef[i];
    for (int n = 0; n < N; n++) memset(pe32 + n * stride + ng, 0, 3 * sizeof(double));
    for (int n = 0; n < N; n++) memset(pe + n * stride + ng, 0, 3 * sizeof(double));
    double e3 = rel_err(pe32, pe, N * stride);
    EXPECT(e3 <= 1e-4, "%s: f32 per-example vs f64: rel err %.3g", o.name, e3);
    zd *inz = to_c128(in, o.len[0]), *doutz = to_c128(dout, o.out_len);
    zd *pez = at_calloc(N * stride, sizeof(zd), "test");
    eng_conv2d_grad_per_example_c128(pez, stride, doutz, inz, g, N, o.bias, o.colz);
    double ez = 0.0;
    for (int n = 0; n < N; n++)
        for (size_t j = 0; j < ng; j++)
            ez = fmax(ez, cabs(pez[n * stride + j] - pe[n * stride + j]));
    EXPECT(ez <= 1e-12, "%s: c128 per-example vs f64: abs err %.3g", o.name, ez);

    free(in), free(w), free(dout), free(pe), free(sum), free(one), free(all);
    free(inf), free(doutf), free(pef), free(pe32), free(inz), free(doutz), free(pez);
    op_free(&o);
}

static void check_bn_per_example(op o) {
    op_alloc_scratch(&o);
    const int N = o.N, C = o.C, L = o.L;
    const size_t ng = 2 * (size_t)C, stride = ng + 2, in_n = (size_t)C * L;
    double *in = dalloc(o.len[0]), *gam = dalloc(C), *dout = dalloc(o.out_len);
    fill(in, o.len[0], -1, 1), fill(gam, C, 0.5, 1.5), fill(dout, o.out_len, -1, 1);
    double *pe = dalloc(N * stride), *sum = dalloc(ng), *one = dalloc(ng), *all = dalloc(ng);
    for (size_t i = 0; i < N * stride; i++) pe[i] = 777.0;
    eng_batchnorm_grad_per_example_f64(pe, stride, dout, in, o.mean, o.var, o.eps, N, C, L);
    double e1 = 0.0, tail = 0.0;
    for (int n = 0; n < N; n++) {
        memset(one, 0, ng * sizeof(double));
        eng_batchnorm_backward_f64(NULL, one, one + C, dout + n * in_n, in + n * in_n, gam, o.mean,
                                   o.var, o.eps, 1, C, L);
        e1 = fmax(e1, rel_err(pe + n * stride, one, ng));
        for (size_t j = 0; j < ng; j++) sum[j] += pe[n * stride + j];
        for (size_t j = ng; j < stride; j++) tail = fmax(tail, fabs(pe[n * stride + j] - 777));
    }
    eng_batchnorm_backward_f64(NULL, all, all + C, dout, in, gam, o.mean, o.var, o.eps, N, C, L);
    double e2 = rel_err(sum, all, ng);
    EXPECT(e1 <= 1e-12, "%s: per-example n vs backward on n alone: rel err %.3g", o.name, e1);
    EXPECT(e2 <= 1e-12, "%s: per-example sum vs batch backward: rel err %.3g", o.name, e2);
    EXPECT(tail == 0.0, "%s: per-example wrote past its gradient", o.name);

    float *inf = to_f32(in, o.len[0]), *doutf = to_f32(dout, o.out_len);
    float *pef = at_calloc(N * stride, sizeof(float), "test");
    eng_batchnorm_grad_per_example(pef, stride, doutf, inf, o.mean32, o.var32, o.eps, N, C, L);
    double ef = 0.0, den = 1e-300;
    for (int n = 0; n < N; n++)
        for (size_t j = 0; j < ng; j++) {
            ef = fmax(ef, fabs(pef[n * stride + j] - pe[n * stride + j]));
            den = fmax(den, fabs(pe[n * stride + j]));
        }
    EXPECT(ef / den <= 1e-4, "%s: f32 per-example vs f64: rel err %.3g", o.name, ef / den);
    zd *inz = to_c128(in, o.len[0]), *doutz = to_c128(dout, o.out_len);
    zd *pez = at_calloc(N * stride, sizeof(zd), "test");
    eng_batchnorm_grad_per_example_c128(pez, stride, doutz, inz, o.meanz, o.varz, o.eps, N, C, L);
    double ez = 0.0;
    for (int n = 0; n < N; n++)
        for (size_t j = 0; j < ng; j++)
            ez = fmax(ez, cabs(pez[n * stride + j] - pe[n * stride + j]));
    EXPECT(ez <= 1e-12, "%s: c128 per-example vs f64: abs err %.3g", o.name, ez);

    free(in), free(gam), free(dout), free(pe), free(sum), free(one), free(all);
    free(inf), free(doutf), free(pef), free(inz), free(doutz), free(pez);
    op_free(&o);
}

/* ------------------------------------------------------ max-pool ties */

/* The forward's recorded winners (idx) route the backward exactly as
 * recomputing them does, on the 2x2 fast path and the general one, with
 * ties and NaNs, in float32 and float64. */
static void check_maxpool_idx(void) {
    const eng_geom2d gs[3] = {geom(2, 6, 8, 2, 2, 2, 2, 2, 0, 0, 1, 1, 0),
                              geom(2, 7, 5, 2, 3, 2, 2, 1, 1, 1, 2, 1, 0),
                              geom(1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0)};
    enum { NMAX = 3 * 2 * 8 * 8 };
    for (int k = 0; k < 3; k++) {
        const eng_geom2d *g = &gs[k];
        const int N = 3, n_in = N * g->C * g->H * g->W, n_out = N * g->C * g->OH * g->OW;
        double in[NMAX], out0[NMAX], out1[NMAX], ix[NMAX], dout[NMAX], d0[NMAX] = {0},
                                                                     d1[NMAX] = {0};
        float inf[NMAX], outf[NMAX], ixf[NMAX], doutf[NMAX], df0[NMAX] = {0}, df1[NMAX] = {0};
        for (int i = 0; i < n_in; i++) {
            in[i] = (double)(at_rng_below(4, 5, 7, (uint64_t)i, (uint64_t)k)); /* many ties */
            if (i % 17 == 3) in[i] = NAN;
            inf[i] = (float)in[i];
        }
        for (int i = 0; i < n_out; i++) doutf[i] = (float)(dout[i] = 1.0 + i);
        eng_maxpool2d_forward_f64(out0, NULL, in, g, N);
        eng_maxpool2d_forward_f64(out1, ix, in, g, N);
        eng_maxpool2d_backward_f64(d0, dout, in, NULL, g, N);
        eng_maxpool2d_backward_f64(d1, dout, in, ix, g, N);
        int same = 1;
        for (int i = 0; i < n_out; i++)
            same &= memcmp(&out0[i], &out1[i], sizeof(double)) == 0;
        for (int i = 0; i < n_in; i++) same &= memcmp(&d0[i], &d1[i], sizeof(double)) == 0;
        eng_maxpool2d_forward(outf, ixf, inf, g, N);
        eng_maxpool2d_backward(df0, doutf, inf, NULL, g, N);
        eng_maxpool2d_backward(df1, doutf, inf, ixf, g, N);
        for (int i = 0; i < n_in; i++) same &= df0[i] == df1[i];
        EXPECT(same, "maxpool geometry %d: routing by recorded winners differs", k);
    }
}

/* A constant plane: every window's winner is its first in-image element
 * in row-major order, as PyTorch's CPU kernel. */
static void check_maxpool_ties(void) {
    eng_geom2d g = geom(1, 5, 5, 1, 3, 3, 2, 2, 1, 1, 1, 1, 0);
    double in[25], out[9], dout[9], din[25] = {0}, want[25] = {0};
    for (int i = 0; i < 25; i++) in[i] = 0.5;
    for (int i = 0; i < 9; i++) dout[i] = 1.0 + i;
    eng_maxpool2d_forward_f64(out, NULL, in, &g, 1);
    eng_maxpool2d_backward_f64(din, dout, in, NULL, &g, 1);
    for (int oh = 0; oh < g.OH; oh++)
        for (int ow = 0; ow < g.OW; ow++) {
            int ih = oh * 2 - 1 < 0 ? 0 : oh * 2 - 1, iw = ow * 2 - 1 < 0 ? 0 : ow * 2 - 1;
            want[ih * 5 + iw] += dout[oh * 3 + ow];
            EXPECT(out[oh * 3 + ow] == 0.5, "maxpool ties: out (%d,%d) = %g", oh, ow,
                   out[oh * 3 + ow]);
        }
    double e = rel_err(din, want, 25);
    EXPECT(e == 0.0, "maxpool ties: gradient not routed to the first maximum (err %.3g)", e);

    /* a later, strictly larger element wins over an earlier one; a -inf plane
     * still routes to the first element */
    double in2[25];
    for (int i = 0; i < 25; i++) in2[i] = -INFINITY;
    double din2[25] = {0};
    eng_maxpool2d_forward_f64(out, NULL, in2, &g, 1);
    EXPECT(isinf(out[0]) && out[0] < 0, "maxpool of -inf: out %g", out[0]);
    eng_maxpool2d_backward_f64(din2, dout, in2, NULL, &g, 1);
    EXPECT(din2[0] == dout[0], "maxpool of -inf: gradient %g not at the first element", din2[0]);
    /* complex: the winner is chosen on real parts, the value passes whole */
    zd inz[25], outz[9];
    for (int i = 0; i < 25; i++) inz[i] = i + I * (100.0 - i);
    eng_maxpool2d_forward_c128(outz, NULL, inz, &g, 1);
    EXPECT(creal(outz[0]) == 6.0 && cimag(outz[0]) == 94.0, "complex maxpool: %g%+gi",
           creal(outz[0]), cimag(outz[0]));
}

/* ------------------------------------------------------------- main */

int main(void) {
    /* conv2d: stride 2 + padding + non-square kernel; dilation 2 with
     * padding 2; 1x1 direct; KH != KW with dilation (2, 1) and no bias;
     * 1x1 strided and 1x1 padded (im2col path); 5x3 stride (3, 2); 1x1
     * stride (2, 1); 1x1 dilated (direct) without bias */
    op convs[] = {
        make_conv(3, 3, 7, 6, 4, 3, 2, 2, 1, 1, 0, 1, 1, 1),
        make_conv(2, 2, 8, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1),
        make_conv(3, 4, 5, 5, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1),
        make_conv(2, 2, 6, 7, 3, 2, 3, 2, 2, 1, 1, 2, 1, 0),
        make_conv(2, 3, 5, 6, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1),
        make_conv(2, 2, 5, 5, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        make_conv(2, 3, 9, 9, 4, 5, 3, 3, 2, 2, 1, 1, 2, 1),
        make_conv(2, 3, 6, 5, 2, 1, 1, 2, 1, 0, 0, 1, 1, 1),
        make_conv(2, 3, 4, 5, 2, 1, 1, 1, 1, 0, 0, 2, 2, 0),
    };
    for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
        check_conv_per_example(convs[i]);
        check_op(&convs[i]);
        op_free(&convs[i]);
    }
    op pools[] = {
        make_pool(OP_MAXPOOL, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0),
        make_pool(OP_MAXPOOL, 2, 3, 8, 9, 2, 3, 1, 2, 0, 1, 2, 1, 0),
        make_pool(OP_MAXPOOL, 2, 3, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1, 0),
        make_pool(OP_MAXPOOL, 2, 2, 9, 7, 3, 2, 2, 3, 1, 1, 2, 2, 0),
        make_pool(OP_AVGPOOL, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1),
        make_pool(OP_AVGPOOL, 2, 3, 7, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0),
        make_pool(OP_AVGPOOL, 2, 2, 6, 9, 2, 3, 1, 2, 1, 1, 1, 1, 0),
        make_pool(OP_AVGPOOL, 2, 2, 6, 9, 2, 3, 1, 2, 1, 1, 1, 1, 1),
        make_pool(OP_AVGPOOL, 2, 3, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1, 1),
    };
    for (size_t i = 0; i < sizeof pools / sizeof *pools; i++) {
        check_op(&pools[i]);
        op_free(&pools[i]);
    }
    check_maxpool_ties();
    check_maxpool_idx();
    op gap = make_gap(3, 4, 30);
    check_op(&gap);
    op_free(&gap);
    op bns[] = {make_bn(3, 4, 30, 1, 1e-5), make_bn(5, 6, 1, 1, 1e-3), make_bn(2, 3, 4, 0, 1e-5)};
    for (size_t i = 0; i < sizeof bns / sizeof *bns; i++) {
        check_op(&bns[i]);
        op_free(&bns[i]);
    }
    op bnp = make_bn(4, 3, 6, 1, 1e-5);
    check_bn_per_example(bnp);
    return check_report("test_ops_image");
}
