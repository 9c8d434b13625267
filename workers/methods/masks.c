/* masks.c — the mask family: Sobol' total-order indices (Fel, Cadene,
 * Chalvidal, Cord, Vigouroux & Serre, NeurIPS 2021) and RISE (Petsiuk, Das &
 * Saenko, BMVC 2018). Forward passes only. See methods.h.
 *
 * A perturbed input is b + M (x - b), b the baseline, M a mask shared by all
 * channels: (F) inputs are cut into `grid` cells along F, (H, W) and
 * (C, H, W) inputs into grid x grid cells. Masks depend on (seed, stream,
 * column) only, so every row, unit and rank sees the same ones.
 *
 * sobol: P variables, one per cell (or per feature group when spec->group is
 * set); column j is point j of a randomized Sobol' sequence in [0,1)^(2P):
 * A_j its first P coordinates, B_j the last P, C_ij = A_j with coordinate i
 * taken from B_j. Each variable's value is the mask of its whole cell:
 * nearest-neighbour upsampling, cell of pixel (y, x) = (y grid / H,
 * x grid / W), as the authors' PyTorch code (F.interpolate's default mode),
 * so a pixel belongs to exactly one variable. Per row and column the P + 2
 * target logits f(A), f(B), f(C_i) go into the partial (width 2P + 4):
 *   [0] sum fA  [1] sum fA^2  [2] sum fB  [3] sum fB^2
 *   [4 + i]     sum (fA - fC_i)^2   (Jansen total order)
 *   [4 + P + i] sum (fB - fC_i)^2   (Jansen first order)
 * finalize: V = sample variance of the 2N pooled fA, fB;
 * ST_i = sum (fA - fC_i)^2 / (2 N V) is the score of every feature of cell i
 * (V <= 0: scores 0). S_i = 1 - sum (fB - fC_i)^2 / (2 N V) is what
 * mth_sobol_indices also returns.
 * When the model has an affine head (eng_model_affine_head), its output is
 * z(M) = W b + c + sum_i M_i u_i with u_i = W_{:, cell i} (x - b)_{cell i}:
 * per row the P vectors u_i are made once (float64), z(A) and z(B) cost P H
 * and z(C_i) = z(A) + (B_i - A_i) u_i costs H, and the engine runs the
 * layers after the head only.
 *
 * The QMC design is a Sobol' digital sequence in base 2 (Bratley & Fox's
 * recurrence over primitive polynomials of GF(2), found in increasing order
 * by testing the order of x) with random initial direction numbers (odd
 * m_k < 2^k, Jaeckel's "random initialisation"), randomized by a random
 * lower-triangular linear scramble and a digital shift (Matousek 1998, as
 * scipy's scrambled Sobol'). Why: it works in any dimension (2P up to
 * 2 SOBOL_MAX_P) without a table of direction numbers; every 1-D projection
 * of the first 2^m points stays stratified in 2^m intervals (the generator
 * matrices are unit triangular); the scramble makes every point uniform
 * on [0,1)^(2P), so the estimators stay unbiased, and the design a function
 * of (seed, stream). N a power of two is best (the points are then a net).
 * Random draws (stream = spec->stream * 64 + purpose):
 *   QMC_INIT  (a = dimension, b = k)      m_k, k <= degree
 *   QMC_LMS   (a = dimension, b = digit)  scramble row
 *   QMC_SHIFT (a = dimension, b = 0)      digital shift
 *
 * rise: column j is a binary grid (gh x gw: grid x grid, or 1 x grid for
 * (F)) with each cell kept with probability p = keep_prob,
 *   RISE_CELL  (a = j, b = cell)  kept when at_rng_uniform_f64 < p
 *   RISE_SHIFT (a = j, b = axis)  shift in [0, cell) per axis (0: y, 1: x)
 * upsampled bilinearly (half-pixel centres, edges clamped: skimage's
 * resize(order=1, mode='reflect') of the reference code) to
 * ((gh + 1) ch, (gw + 1) cw), ch = ceil(H / gh), cw = ceil(W / gw), and
 * cropped to (H, W) at the shift. Partial (R, D) += f(b + M_j (x - b)) M_j;
 * finalize divides by N p.
 *
 * Batching: engine calls never mix rows. sobol sends a row's inputs
 * (column, design input) in order, cap per call; rise makes the masks of up
 * to cap columns once and sends them per row, one call each. The float32
 * engine's logits for an input depend on the batch's size (OpenBLAS picks
 * other kernels), so this is what makes row blocks bit-identical; column
 * blocks and the cap change a row's batches and agree to float32 rounding
 * of the logits (exactly where the engine's layers are batch-invariant). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

enum { /* RNG purposes: stream = spec->stream * 64 + purpose */
       PURPOSE_QMC_INIT = 1,
       PURPOSE_QMC_LMS = 2,
       PURPOSE_QMC_SHIFT = 3,
       PURPOSE_RISE_CELL = 4,
       PURPOSE_RISE_SHIFT = 5,
};

#define QMC_BITS 32
#define SOBOL_MAX_P 4096 /* variables: a design in dimension 8192 */
#define RISE_MAX_GRID 256

/* ------------------------------------------------ randomized Sobol' design */

typedef struct {
    int dim;
    uint32_t *v;     /* (dim, QMC_BITS) scrambled direction numbers */
    uint32_t *shift; /* (dim) digital shift */
} qmc_design;

static int gf2_degree(uint32_t p) {
    int d = -1;
    while (p) {
        p >>= 1;
        d++;
    }
    return d;
}

/* a b mod p over GF(2); deg a < d = deg p <= 30. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b, uint32_t p, int d) {
    uint32_t r = 0;
    while (b) {
        if (b & 1u) r ^= a;
        b >>= 1;
        a <<= 1;
        if (a >> d & 1u) a ^= p;
    }
    return r;
}

/* x^e mod p. */
static uint32_t gf2_xpow(uint64_t e, uint32_t p, int d) {
    uint32_t base = 2u, r = 1u;
    if (base >> d & 1u) base ^= p;
    while (e) {
        if (e & 1u) r = gf2_mulmod(r, base, p, d);
        base = gf2_mulmod(base, base, p, d);
        e >>= 1;
    }
    return r;
}

/* p primitive over GF(2): x has order 2^d - 1 modulo p (impossible when p
 * is reducible, since the unit group is then smaller). */
static int gf2_primitive(uint32_t p) {
    int d = gf2_degree(p);
    if (d < 1) return 0;
    uint64_t n = ((uint64_t)1 << d) - 1;
    if (gf2_xpow(n, p, d) != 1u) return 0;
    uint64_t rest = n;
    for (uint64_t q = 2; q * q <= rest; q++) {
        if (rest % q) continue;
        if (gf2_xpow(n / q, p, d) == 1u) return 0;
        while (rest % q == 0) rest /= q;
    }
    if (rest > 1 && rest < n && gf2_xpow(n / rest, p, d) == 1u) return 0;
    return 1;
}

static uint32_t parity32(uint32_t w) {
    w ^= w >> 16;
    w ^= w >> 8;
    w ^= w >> 4;
    w ^= w >> 2;
    w ^= w >> 1;
    return w & 1u;
}

/* The design of dimension dim for (seed, stream base st = spec->stream * 64).
 * q->v and q->shift are owned by q (qmc_free). */
static void qmc_init(qmc_design *q, int dim, uint64_t seed, uint64_t st) {
    q->dim = dim;
    q->v = at_malloc((size_t)dim * QMC_BITS * sizeof(uint32_t), "Sobol' direction numbers");
    q->shift = at_malloc((size_t)dim * sizeof(uint32_t), "Sobol' shifts");
    uint32_t poly = 1u;
    for (int i = 0; i < dim; i++) {
        uint32_t mk[QMC_BITS + 1]; /* m_1..m_32: odd, m_k < 2^k */
        if (i == 0) {              /* van der Corput */
            for (int k = 1; k <= QMC_BITS; k++) mk[k] = 1u;
        } else {
            do poly += 2u;
            while (!gf2_primitive(poly));
            int s = gf2_degree(poly);
            for (int k = 1; k <= s && k <= QMC_BITS; k++)
                mk[k] =
                    2u * (uint32_t)at_rng_below((uint64_t)1 << (k - 1), seed, st + PURPOSE_QMC_INIT,
                                                (uint64_t)i, (uint64_t)k) +
                    1u;
            for (int k = s + 1; k <= QMC_BITS; k++) {
                uint32_t m = mk[k - s] ^ (mk[k - s] << s);
                for (int t = 1; t < s; t++)
                    if (poly >> (s - t) & 1u) m ^= mk[k - t] << t;
                mk[k] = m;
            }
        }
        /* scramble rows: digit t (bit 31 - t) = its own digit plus random
         * more significant ones */
        uint32_t row[QMC_BITS];
        for (int t = 0; t < QMC_BITS; t++) {
            int pos = QMC_BITS - 1 - t;
            uint32_t above = ~(uint32_t)(((uint64_t)2 << pos) - 1);
            uint32_t rnd = (uint32_t)at_rng_below((uint64_t)1 << 32, seed, st + PURPOSE_QMC_LMS,
                                                  (uint64_t)i, (uint64_t)t);
            row[t] = (rnd & above) | (1u << pos);
        }
        for (int k = 1; k <= QMC_BITS; k++) {
            uint32_t w = mk[k] << (QMC_BITS - k), out = 0;
            for (int t = 0; t < QMC_BITS; t++) out |= parity32(row[t] & w) << (QMC_BITS - 1 - t);
            q->v[(size_t)i * QMC_BITS + k - 1] = out;
        }
        q->shift[i] =
            (uint32_t)at_rng_below((uint64_t)1 << 32, seed, st + PURPOSE_QMC_SHIFT, (uint64_t)i, 0);
    }
}

static void qmc_free(qmc_design *q) {
    free(q->v);
    free(q->shift);
    q->v = q->shift = NULL;
}

/* u (dim) = point j of the design, in (0, 1). */
static void qmc_point(const qmc_design *q, uint32_t j, double *u) {
    for (int i = 0; i < q->dim; i++) {
        const uint32_t *v = q->v + (size_t)i * QMC_BITS;
        uint32_t x = q->shift[i];
        for (int k = 0; j >> k; k++)
            if (j >> k & 1u) x ^= v[k];
        u[i] = ((double)x + 0.5) * (1.0 / 4294967296.0);
    }
}

/* val (P) = design input k of a column from its point ab (2P): k = 0 A,
 * k = 1 B, k = 2 + i C_i (A with coordinate i from B). */
static void sobol_design_input(const double *ab, int P, int k, double *val) {
    memcpy(val, ab + (k == 1 ? P : 0), (size_t)P * sizeof(double));
    if (k >= 2) val[k - 2] = ab[P + k - 2];
}

/* st (2P + 4) += one column's outputs of one row (layout above). */
static void sobol_stat_add(double *st, int P, double fa, double fb, const double *fc) {
    st[0] += fa;
    st[1] += fa * fa;
    st[2] += fb;
    st[3] += fb * fb;
    for (int i = 0; i < P; i++) {
        double da = fa - fc[i], db = fb - fc[i];
        st[4 + i] += da * da;
        st[4 + P + i] += db * db;
    }
}

/* Jansen's estimators from N columns: total (P) and, if not NULL, first
 * (P). Zero when the pooled variance is not positive. */
static void sobol_stat_indices(const double *st, int P, int N, double *first, double *total) {
    const double n2 = 2.0 * N, mean = (st[0] + st[2]) / n2;
    const double var = (st[1] + st[3] - n2 * mean * mean) / (n2 - 1.0);
    for (int i = 0; i < P; i++) {
        int ok = var > 0.0;
        total[i] = ok ? st[4 + i] / (n2 * var) : 0.0;
        if (first) first[i] = ok ? 1.0 - st[4 + P + i] / (n2 * var) : 0.0;
    }
}

int mth_sobol_indices(int P, int N, uint64_t seed,
                      void (*f)(void *ctx, const double *u, int n, double *out), void *ctx,
                      double *first, double *total) {
    if (P < 1 || P > SOBOL_MAX_P || N < 2) return AT_EUSER;
    const int K = P + 2, G = K >= 4096 ? 1 : 4096 / K; /* columns per call of f */
    qmc_design q;
    qmc_init(&q, 2 * P, seed, 0);
    double *ab = at_malloc((size_t)2 * P * sizeof(double), "Sobol' point");
    double *u = at_malloc((size_t)G * K * P * sizeof(double), "Sobol' inputs");
    double *out = at_malloc((size_t)G * K * sizeof(double), "Sobol' outputs");
    double *st = at_calloc((size_t)2 * P + 4, sizeof(double), "Sobol' statistics");
    for (int j0 = 0; j0 < N; j0 += G) {
        int g = N - j0 < G ? N - j0 : G;
        for (int c = 0; c < g; c++) {
            qmc_point(&q, (uint32_t)(j0 + c), ab);
            for (int k = 0; k < K; k++) sobol_design_input(ab, P, k, u + ((size_t)c * K + k) * P);
        }
        f(ctx, u, g * K, out);
        for (int c = 0; c < g; c++) {
            const double *o = out + (size_t)c * K;
            sobol_stat_add(st, P, o[0], o[1], o + 2);
        }
    }
    sobol_stat_indices(st, P, N, first, total);
    free(st);
    free(out);
    free(u);
    free(ab);
    qmc_free(&q);
    return 0;
}

/* ------------------------------------------------------------------- plan */

typedef struct {
    int P;        /* sobol: variables */
    int C, H, W;  /* channels sharing a mask, spatial extent ((F): 1, F) */
    int gh, gw;   /* rise: grid cells per axis */
    int ch, cw;   /* rise: cell size per axis */
    int32_t *var; /* (D) sobol: the variable of each feature */
    qmc_design qmc;
} masks_priv;

int masks_plan(mth_spec *s, const eng_model *m, at_err *err) {
    if (s->kind != MTH_SOBOL && s->kind != MTH_RISE)
        return at_err_set(err, AT_EINTERNAL, "mask family: unknown kind %d", (int)s->kind);
    const char *name = s->kind == MTH_SOBOL ? "sobol" : "rise";
    if (m->token_input)
        return at_err_set(err, AT_EUSER,
                          "%s masks blend inputs with the baseline; the model takes "
                          "token ids, which cannot be blended",
                          name);
    AT_CHECK(s->ndim >= 1 && s->ndim <= 3);
    int C = 1, H = 1, W = s->shape[s->ndim - 1];
    if (s->ndim == 2) H = s->shape[0];
    if (s->ndim == 3) {
        C = s->shape[0];
        H = s->shape[1];
    }
    AT_CHECK((size_t)C * H * W == (size_t)s->D);
    const int gh = s->ndim == 1 ? 1 : s->grid, gw = s->grid;
    int P = 0;
    if (s->kind == MTH_SOBOL) {
        if (s->n_samples < 2)
            return at_err_set(err, AT_EUSER,
                              "n_samples is %d; sobol needs >= 2 QMC points "
                              "(a power of two is best)",
                              s->n_samples);
        if (s->group) {
            P = s->n_groups;
            if (P < 1 || P > SOBOL_MAX_P)
                return at_err_set(err, AT_EUSER, "sobol: %d feature groups; expected 1..%d", P,
                                  SOBOL_MAX_P);
        } else {
            int lim = H < W && s->ndim > 1 ? H : W;
            if (s->grid < 1 || s->grid > lim || (long)gh * gw > SOBOL_MAX_P)
                return at_err_set(err, AT_EUSER,
                                  "grid is %d; sobol expects 1..%d (one or more input "
                                  "positions per cell, at most %d cells)",
                                  s->grid, lim, SOBOL_MAX_P);
            P = gh * gw;
        }
    } else {
        if (s->n_samples < 1)
            return at_err_set(err, AT_EUSER, "n_samples is %d; rise needs >= 1 mask", s->n_samples);
        if (s->grid < 1 || s->grid > RISE_MAX_GRID)
            return at_err_set(err, AT_EUSER, "grid is %d; rise expects 1..%d", s->grid,
                              RISE_MAX_GRID);
        if (!(s->keep_prob > 0.0 && s->keep_prob <= 1.0))
            return at_err_set(err, AT_EUSER, "keep_prob is %g; expected in (0, 1]", s->keep_prob);
    }
    masks_priv *pv = at_calloc(1, sizeof *pv, "mask family plan");
    s->priv = pv;
    pv->C = C;
    pv->H = H;
    pv->W = W;
    pv->gh = gh;
    pv->gw = gw;
    pv->ch = (H + gh - 1) / gh;
    pv->cw = (W + gw - 1) / gw;
    s->n_cols = s->n_samples;
    if (s->kind == MTH_SOBOL) {
        pv->P = P;
        pv->var = at_malloc((size_t)s->D * sizeof(int32_t), "sobol variables");
        for (int d = 0; d < s->D; d++) {
            if (s->group) {
                AT_CHECK(s->group[d] >= 0 && s->group[d] < P);
                pv->var[d] = s->group[d];
            } else {
                int pos = d % (H * W), y = pos / W, x = pos % W;
                pv->var[d] = (int32_t)((long)y * gh / H * gw + (long)x * gw / W);
            }
        }
        qmc_init(&pv->qmc, 2 * P, s->seed, s->stream * 64);
        s->width = 2 * P + 4;
    } else {
        s->width = s->D;
    }
    return 0;
}

void masks_free(mth_spec *s) {
    masks_priv *pv = s->priv;
    if (!pv) return;
    free(pv->var);
    qmc_free(&pv->qmc);
    free(pv);
    s->priv = NULL;
}

double masks_col_cost(const mth_spec *s) {
    const masks_priv *pv = s->priv;
    if (s->kind == MTH_SOBOL) return (double)((pv ? pv->P : s->grid * s->grid) + 2) / 3.0;
    return 1.0 / 3.0;
}

/* ------------------------------------------------------------------ sobol */

/* Engine batches never mix rows: a row's inputs, and so its logits, do not
 * depend on which other rows share its unit (the float32 engine's results
 * for a row depend on the batch size: OpenBLAS takes other kernels), so
 * row blocks give bit-identical partials. */

/* A row's inputs (column c, design input k) in that order, cap at a time:
 * the next nb are written by make(), their target logits gathered into the
 * pending outputs y, and every complete column folded into st (the row's
 * partial) in column order. */
typedef struct {
    const masks_priv *pv;
    const eng_model *m;
    mth_scratch *sc;
    int c0, c1;
    double *ab; /* (2P) the current column's point */
    int cur;    /* its column, -1 before the first */
} sobol_walk;

static void sobol_point(sobol_walk *w, int c) {
    if (c != w->cur) {
        qmc_point(&w->pv->qmc, (uint32_t)c, w->ab);
        w->cur = c;
    }
}

/* Append the target logits of nb engine rows (logits lg (nb, C)) to the
 * have outputs in y, add every complete column's P + 2 outputs (fA, fB,
 * fC_0..) to the statistic st, and keep the rest at the front of y.
 * Returns the outputs kept. */
static int sobol_take(double *st, int P, const float *lg, int nb, int C, int32_t t, double *y,
                      int have) {
    const int K = P + 2;
    for (int e = 0; e < nb; e++) y[have++] = (double)lg[(size_t)e * C + t];
    int g = 0;
    for (; have - g >= K; g += K) sobol_stat_add(st, P, y[g], y[g + 1], y + g + 2);
    memmove(y, y + g, (size_t)(have - g) * sizeof(double));
    return have - g;
}

/* Engine inputs of one row through every layer. */
static void sobol_row_plain(sobol_walk *w, const float *xr, const float *b, int32_t t, double *y,
                            double *st) {
    const masks_priv *pv = w->pv;
    const eng_model *m = w->m;
    mth_scratch *sc = w->sc;
    const int P = pv->P, K = P + 2, D = m->in_features, C = m->out_features;
    double *val = w->ab + 2 * P;
    const long n = (long)(w->c1 - w->c0) * K;
    int have = 0;
    for (long q0 = 0; q0 < n; q0 += sc->cap) {
        int nb = (int)(n - q0 < sc->cap ? n - q0 : sc->cap);
        for (int e = 0; e < nb; e++) {
            long q = q0 + e;
            sobol_point(w, w->c0 + (int)(q / K));
            sobol_design_input(w->ab, P, (int)(q % K), val);
            float *xi = sc->xin + (size_t)e * D;
            for (int d = 0; d < D; d++) xi[d] = b[d] + (float)val[pv->var[d]] * (xr[d] - b[d]);
        }
        const float *lg = eng_model_forward(m, &sc->ws, sc->xin, nb);
        have = sobol_take(st, P, lg, nb, C, t, y, have);
    }
    AT_CHECK(have == 0);
}

/* The same through the affine head f (file comment): u (P, H) and z(b)
 * (H) in float64, the engine from layer f + 1. */
static void sobol_row_head(sobol_walk *w, const float *xr, const float *b, int32_t t,
                           const double *z0, double *u, double *y, double *st) {
    const masks_priv *pv = w->pv;
    const eng_model *m = w->m;
    mth_scratch *sc = w->sc;
    const int P = pv->P, K = P + 2, D = m->in_features, C = m->out_features, f = sc->head;
    const int H = m->layers[f].out_features;
    const float *W = m->params + m->tensors[m->layers[f].tensor0].off; /* (H, D) */
    double *za = w->ab + 3 * P, *zb = za + H;
    memset(u, 0, (size_t)P * H * sizeof(double));
    for (int d = 0; d < D; d++) { /* u_v = sum_{d in v} W[:, d] (x - b)_d */
        double dd = (double)xr[d] - (double)b[d];
        if (dd == 0.0) continue;
        double *uv = u + (size_t)pv->var[d] * H;
        for (int h = 0; h < H; h++) uv[h] += (double)W[(size_t)h * D + d] * dd;
    }
    float *z1 = eng_ws_act(&sc->ws, f); /* (cap, H) */
    const long n = (long)(w->c1 - w->c0) * K;
    int have = 0, zc = -1;
    for (long q0 = 0; q0 < n; q0 += sc->cap) {
        int nb = (int)(n - q0 < sc->cap ? n - q0 : sc->cap);
        for (int e = 0; e < nb; e++) {
            long q = q0 + e;
            int c = w->c0 + (int)(q / K), k = (int)(q % K);
            sobol_point(w, c);
            if (zc != c) { /* z(A), z(B) of the column */
                memcpy(za, z0, (size_t)H * sizeof(double));
                memcpy(zb, z0, (size_t)H * sizeof(double));
                for (int v = 0; v < P; v++) {
                    const double a = w->ab[v], bv = w->ab[P + v], *uv = u + (size_t)v * H;
                    for (int h = 0; h < H; h++) {
                        za[h] += a * uv[h];
                        zb[h] += bv * uv[h];
                    }
                }
                zc = c;
            }
            float *ze = z1 + (size_t)e * H;
            if (k < 2) {
                const double *z = k == 0 ? za : zb;
                for (int h = 0; h < H; h++) ze[h] = (float)z[h];
            } else {
                const int v = k - 2;
                const double dv = w->ab[P + v] - w->ab[v], *uv = u + (size_t)v * H;
                for (int h = 0; h < H; h++) ze[h] = (float)(za[h] + dv * uv[h]);
            }
        }
        const float *lg = eng_forward_from(m, &sc->ws, m->params, sc->xin, nb, f + 1);
        have = sobol_take(st, P, lg, nb, C, t, y, have);
    }
    AT_CHECK(have == 0);
}

static void sobol_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                           const mth_rows *rows, int c0, int c1, double *partial) {
    const masks_priv *pv = s->priv;
    const int P = pv->P, K = P + 2, D = m->in_features, C = m->out_features;
    const int f = sc->head, H = f >= 0 ? m->layers[f].out_features : 0;
    const float *b = rows->baseline;
    double *y = mth_buf(sc, 4, ((size_t)sc->cap + K + 3 * P + 3 * H) * sizeof(double));
    sobol_walk w = {
        .pv = pv, .m = m, .sc = sc, .c0 = c0, .c1 = c1, .ab = y + sc->cap + K, .cur = -1};
    double *z0 = w.ab + 3 * P + 2 * H, *u = NULL;
    if (f >= 0) {
        const eng_layer *L = &m->layers[f];
        const eng_tensor *tw = &m->tensors[L->tensor0];
        const float *W = m->params + tw->off;                                /* (H, D) */
        const float *bias = L->n_tensors > 1 ? m->params + tw[1].off : NULL; /* (H) */
        for (int h = 0; h < H; h++) {                                        /* z(b) = W b + c */
            double acc = bias ? (double)bias[h] : 0.0;
            for (int d = 0; d < D; d++) acc += (double)W[(size_t)h * D + d] * (double)b[d];
            z0[h] = acc;
        }
        u = mth_buf(sc, 5, (size_t)P * H * sizeof(double));
    }
    for (int r = 0; r < rows->R; r++) {
        const int32_t t = rows->target[r];
        AT_CHECK(t >= 0 && t < C);
        const float *xr = rows->x + (size_t)r * D;
        double *st = partial + (size_t)r * s->width;
        if (f >= 0)
            sobol_row_head(&w, xr, b, t, z0, u, y, st);
        else
            sobol_row_plain(&w, xr, b, t, y, st);
    }
}

/* ------------------------------------------------------------------- rise */

/* 1-D weights of the bilinear upsampling of n cells to (n + 1) cell
 * positions (half-pixel centres, clamped), cropped at shift: output i
 * reads cells i0[i], i0[i] + 1 (clamped) with weight 1 - w, w. */
static void rise_axis(int n, int cell, int shift, int len, int *i0, int *i1, double *w) {
    const double scale = (double)n / ((double)(n + 1) * cell);
    for (int i = 0; i < len; i++) {
        double t = ((double)(i + shift) + 0.5) * scale - 0.5;
        if (t < 0.0) t = 0.0;
        if (t > n - 1) t = n - 1;
        int a = (int)t;
        i0[i] = a;
        i1[i] = a + 1 < n ? a + 1 : a;
        w[i] = t - a;
    }
}

/* mask (H, W) of column j; tmp holds gh gw doubles + 2 (H + W) ints and
 * doubles (rise_tmp_bytes). */
static size_t rise_tmp_bytes(const masks_priv *pv) {
    return (size_t)pv->gh * pv->gw * sizeof(double) +
           (size_t)(pv->H + pv->W) * (2 * sizeof(int) + sizeof(double));
}

static void rise_mask(const mth_spec *s, const masks_priv *pv, int j, void *tmp, float *mask) {
    const uint64_t st = s->stream * 64;
    const int gh = pv->gh, gw = pv->gw, H = pv->H, W = pv->W;
    double *g = tmp, *wy = g + (size_t)gh * gw, *wx = wy + H;
    int *y0 = (int *)(wx + W), *y1 = y0 + H, *x0 = y1 + H, *x1 = x0 + W;
    for (int c = 0; c < gh * gw; c++)
        g[c] = at_rng_uniform_f64(s->seed, st + PURPOSE_RISE_CELL, (uint64_t)j, (uint64_t)c) <
                       s->keep_prob
                   ? 1.0
                   : 0.0;
    int sy = (int)at_rng_below((uint64_t)pv->ch, s->seed, st + PURPOSE_RISE_SHIFT, (uint64_t)j, 0);
    int sx = (int)at_rng_below((uint64_t)pv->cw, s->seed, st + PURPOSE_RISE_SHIFT, (uint64_t)j, 1);
    rise_axis(gh, pv->ch, sy, H, y0, y1, wy);
    rise_axis(gw, pv->cw, sx, W, x0, x1, wx);
    for (int y = 0; y < H; y++) {
        const double *ga = g + (size_t)y0[y] * gw, *gb = g + (size_t)y1[y] * gw;
        for (int x = 0; x < W; x++) {
            double top = (1.0 - wx[x]) * ga[x0[x]] + wx[x] * ga[x1[x]];
            double bot = (1.0 - wx[x]) * gb[x0[x]] + wx[x] * gb[x1[x]];
            mask[(size_t)y * W + x] = (float)((1.0 - wy[y]) * top + wy[y] * bot);
        }
    }
}

/* Columns in chunks of at most cap, whose masks are made once; per row of
 * the unit, one engine call per chunk (batches never mix rows, see
 * sobol), its contributions added in column order. */
static void rise_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc,
                          const mth_rows *rows, int c0, int c1, double *partial) {
    const masks_priv *pv = s->priv;
    const int D = m->in_features, C = m->out_features, R = rows->R, HW = pv->H * pv->W;
    const int G = c1 - c0 < sc->cap ? c1 - c0 : sc->cap;
    const float *b = rows->baseline;
    float *mk = mth_buf(sc, 4, (size_t)G * HW * sizeof(float)); /* (G, HW) */
    void *tmp = mth_buf(sc, 5, rise_tmp_bytes(pv));
    for (int cc = c0; cc < c1; cc += G) {
        const int nb = c1 - cc < G ? c1 - cc : G;
        for (int e = 0; e < nb; e++) rise_mask(s, pv, cc + e, tmp, mk + (size_t)e * HW);
        for (int r = 0; r < R; r++) {
            const int32_t t = rows->target[r];
            AT_CHECK(t >= 0 && t < C);
            const float *xr = rows->x + (size_t)r * D;
            for (int e = 0; e < nb; e++) {
                const float *mc = mk + (size_t)e * HW;
                float *xi = sc->xin + (size_t)e * D;
                for (int ch = 0, d = 0; ch < pv->C; ch++)
                    for (int i = 0; i < HW; i++, d++) xi[d] = b[d] + mc[i] * (xr[d] - b[d]);
            }
            const float *lg = eng_model_forward(m, &sc->ws, sc->xin, nb);
            double *acc = partial + (size_t)r * D;
            for (int e = 0; e < nb; e++) {
                const double fy = (double)lg[(size_t)e * C + t];
                const float *mc = mk + (size_t)e * HW;
                for (int ch = 0, d = 0; ch < pv->C; ch++)
                    for (int i = 0; i < HW; i++, d++) acc[d] += fy * (double)mc[i];
            }
        }
    }
}

/* ------------------------------------------------------------- dispatch */

void masks_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    int c0, int c1, double *partial) {
    AT_CHECK(s->priv != NULL && rows->baseline != NULL);
    if (rows->R == 0 || c0 == c1) return;
    if (s->kind == MTH_RISE) {
        rise_run_unit(s, m, sc, rows, c0, c1, partial);
        return;
    }
    sobol_run_unit(s, m, sc, rows, c0, c1, partial);
}

void masks_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    const double *acc, float *scores) {
    (void)m;
    const masks_priv *pv = s->priv;
    const int D = s->D, R = rows->R;
    if (s->kind == MTH_RISE) {
        const double scale = 1.0 / ((double)s->n_cols * s->keep_prob);
        for (size_t i = 0; i < (size_t)R * D; i++) scores[i] = (float)(acc[i] * scale);
        return;
    }
    double *total = mth_buf(sc, 4, (size_t)pv->P * sizeof(double));
    for (int r = 0; r < R; r++) {
        sobol_stat_indices(acc + (size_t)r * s->width, pv->P, s->n_cols, NULL, total);
        for (int d = 0; d < D; d++) scores[(size_t)r * D + d] = (float)total[pv->var[d]];
    }
}
