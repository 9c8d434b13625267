/* metrics.c — evaluation metrics of attributions: deletion / insertion
 * curves, infidelity, sensitivity-max, agreement between two methods.
 * See metrics.h for the definitions, costs and the determinism contract.
 *
 * Forward passes are batched up to cap engine rows at a time in sc->xin,
 * in a layout fixed by the rows' selection indices (run_forwards); every
 * engine row is a pure function of (row, perturbation), and every row's
 * statistic is accumulated in perturbation order after all its forwards,
 * so the row block does not change a bit of the output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void mtr_config_default(mtr_config *c) {
    memset(c, 0, sizeof *c);
    c->n_steps = 20;
    c->use_prob = 1;
    c->infid_n = 10;
    c->infid_sigma = 0.003;
    c->sens_n = 10;
    c->sens_radius = 0.02;
    c->top_k = 0;
}

int mtr_config_check(const mtr_config *c, const eng_model *m, at_err *err) {
    const int D = m->in_features;
    if (c->n_steps < 1)
        return at_err_set(err, AT_EUSER, "metrics.n_steps is %d; expected >= 1", c->n_steps);
    if (c->use_prob != 0 && c->use_prob != 1)
        return at_err_set(err, AT_EUSER, "metrics.use_prob is %d; expected 0 or 1", c->use_prob);
    if (c->infid_n < 1)
        return at_err_set(err, AT_EUSER, "metrics.infid_n is %d; expected >= 1", c->infid_n);
    if (!(c->infid_sigma > 0.0) || !isfinite(c->infid_sigma))
        return at_err_set(err, AT_EUSER, "metrics.infid_sigma is %g; expected > 0", c->infid_sigma);
    if (c->sens_n < 1)
        return at_err_set(err, AT_EUSER, "metrics.sens_n is %d; expected >= 1", c->sens_n);
    if (!(c->sens_radius > 0.0) || !isfinite(c->sens_radius))
        return at_err_set(err, AT_EUSER, "metrics.sens_radius is %g; expected > 0", c->sens_radius);
    if (c->top_k < 0 || c->top_k > D)
        return at_err_set(err, AT_EUSER, "metrics.top_k is %d; expected 0 (10%% of D) to D = %d",
                          c->top_k, D);
    if (m->token_input)
        return at_err_set(err, AT_EUSER,
                          "metrics: deletion, insertion, infidelity and "
                          "sensitivity perturb the input, which holds token "
                          "ids for this model");
    return 0;
}

int mtr_top_k(int top_k, int D) {
    if (top_k > 0) return top_k < D ? top_k : D;
    int k = (D + 5) / 10; /* round(D / 10), half up */
    return k < 1 ? 1 : k;
}

/* ------------------------------------------------------------ sorting */

typedef struct {
    float key;
    int32_t idx;
} keyed;

/* NaN sorts as -inf so that the comparators are a total order. */
static float key_of(float v) { return isnan(v) ? -INFINITY : v; }

static int cmp_asc(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->key < b->key) return -1;
    if (a->key > b->key) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_desc(const void *pa, const void *pb) {
    const keyed *a = pa, *b = pb;
    if (a->key > b->key) return -1;
    if (a->key < b->key) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* order (D) = feature indices by v, descending (or ascending), ties by
 * index ascending; abs_value sorts |v|. kb (D) is scratch. */
static void sort_order(const float *v, int D, int descending, int abs_value, keyed *kb,
                       int32_t *order) {
    for (int d = 0; d < D; d++) {
        kb[d].key = key_of(abs_value ? fabsf(v[d]) : v[d]);
        kb[d].idx = d;
    }
    qsort(kb, (size_t)D, sizeof *kb, descending ? cmp_desc : cmp_asc);
    for (int d = 0; d < D; d++) order[d] = kb[d].idx;
}

/* ---------------------------------------------------- forward outputs */

/* The target's logit, or its softmax probability (float64), of one row of
 * logits (C). */
static double output_of(const float *lg, int C, int32_t t, int use_prob) {
    AT_CHECK(t >= 0 && t < C);
    if (!use_prob) return (double)lg[t];
    double mx = -INFINITY;
    for (int c = 0; c < C; c++) mx = fmax(mx, (double)lg[c]);
    double s = 0.0;
    for (int c = 0; c < C; c++) s += exp((double)lg[c] - mx);
    return exp((double)lg[t] - mx) / s;
}

/* Engine rows per forward call of the metrics (when cap allows). */
#define MTR_BATCH 256

/* Writes the input (D) of engine row (r, u), the u-th of unit row r's U
 * perturbed inputs, into dst. */
typedef void (*fill_fn)(void *ctx, int r, int u, float *dst);

/* vals (R, U) = outputs of the U perturbed inputs of every row.
 *
 * Batch layout. OpenBLAS's sgemm rounds a row differently depending on the
 * batch's row count M and on the row's position in it (its kernels treat
 * edge rows apart), so for the same bytes under any split of the rows,
 * every input (row, u) is run at a position and in a batch size that
 * depend only on its selection index row0 + r, u and the cap: with
 * U <= cap, batches hold G = min(cap, MTR_BATCH) / U (at least 1)
 * consecutive selection indices, the group of index i being i / G, at
 * position (i % G) U + u, M = G U; with
 * U > cap, each row has n = ceil(U / cap) batches of M = ceil(U / n), u at
 * position u % M of batch u / M. Slots without an input (a group cut by
 * the block's ends, a row's last batch) run a copy of row 0's x. */
static void run_forwards(const eng_model *m, mth_scratch *sc, const mth_rows *rows, int U,
                         int use_prob, fill_fn fill, void *ctx, double *vals) {
    const int R = rows->R, D = m->in_features, C = m->out_features, cap = sc->cap;
    AT_CHECK(rows->row0 >= 0 && U >= 1);
    int G, M, nch;
    if (U <= cap) {
        /* about MTR_BATCH engine rows per call, not cap: a block's first and
         * last groups are padded to G rows, and at cap (2,048 on an MLP)
         * the padding cost ten times the work on a 16-row block */
        G = (cap < MTR_BATCH ? cap : MTR_BATCH) / U;
        if (G < 1) G = 1;
        M = G * U;
        nch = 1;
    } else {
        G = 1;
        nch = (U + cap - 1) / cap;
        M = (U + nch - 1) / nch;
    }
    const int64_t i0 = rows->row0, i1 = rows->row0 + R; /* selection indices */
    for (int64_t g = i0 / G; g * G < i1; g++)
        for (int ch = 0; ch < nch; ch++) {
            for (int k = 0; k < M; k++) {
                float *xi = sc->xin + (size_t)k * D;
                int64_t i = g * G + (nch == 1 ? k / U : 0);
                int u = nch == 1 ? k % U : ch * M + k;
                if (i >= i0 && i < i1 && u < U) {
                    sc->row[k] = (int32_t)(i - i0);
                    fill(ctx, sc->row[k], u, xi);
                } else {
                    sc->row[k] = -1;
                    memcpy(xi, rows->x, (size_t)D * sizeof(float));
                }
            }
            const float *lg = eng_model_forward(m, &sc->ws, sc->xin, M);
            for (int k = 0; k < M; k++) {
                int r = sc->row[k];
                if (r < 0) continue;
                int u = nch == 1 ? k % U : ch * M + k;
                vals[(size_t)r * U + u] =
                    output_of(lg + (size_t)k * C, C, rows->target[r], use_prob);
            }
        }
}

/* ------------------------------------------------ deletion / insertion */

/* n_k = round(k D / K), half up, exact in integers. */
static int steps_count(int k, int D, int K) {
    return (int)(((int64_t)2 * k * D + K) / (2 * (int64_t)K));
}

typedef struct {
    const float *x, *b;   /* (R, D), (D) or NULL */
    const int32_t *order; /* (R, 2, D) MoRF, LeRF */
    int D, K;
} curve_ctx;

static float base_at(const float *b, int d) { return b ? b[d] : 0.0f; }

/* u = 0: x; u = 1 + cv (K - 1) + k - 1: curve cv at step k in 1..K-1 */
static void curve_fill(void *vctx, int r, int u, float *dst) {
    const curve_ctx *q = vctx;
    const int D = q->D, K = q->K;
    const float *xr = q->x + (size_t)r * D, *b = q->b;
    if (u == 0) {
        memcpy(dst, xr, (size_t)D * sizeof(float));
        return;
    }
    int cv = (u - 1) / (K - 1), step = 1 + (u - 1) % (K - 1);
    int n = steps_count(step, D, K);
    const int32_t *ord = q->order + (size_t)(2 * r + (cv & 1)) * D;
    if (cv < 2) { /* deletion: x with the first n features at the baseline */
        memcpy(dst, xr, (size_t)D * sizeof(float));
        for (int i = 0; i < n; i++) dst[ord[i]] = base_at(b, ord[i]);
    } else { /* insertion: the baseline with the first n features of x */
        for (int d = 0; d < D; d++) dst[d] = base_at(b, d);
        for (int i = 0; i < n; i++) dst[ord[i]] = xr[ord[i]];
    }
}

void mtr_deletion_insertion(const mtr_config *c, const eng_model *m, mth_scratch *sc,
                            const mth_rows *rows, const float *scores, double *out,
                            double *curves) {
    const int R = rows->R, D = m->in_features, C = m->out_features, K = c->n_steps;
    AT_CHECK(K >= 1 && R >= 0);
    if (R == 0) return;
    const float *b = rows->baseline;
    /* per row: x, then curves 0..3 at steps 1..K-1 */
    const int U = 1 + 4 * (K - 1);
    int32_t *order = mth_buf(sc, 6, (size_t)2 * R * D * sizeof(int32_t)); /* (R, 2, D) */
    keyed *kb = mth_buf(sc, 7, (size_t)D * sizeof(keyed));
    for (int r = 0; r < R; r++) {
        const float *s = scores + (size_t)r * D;
        sort_order(s, D, 1, 0, kb, order + (size_t)(2 * r) * D);     /* MoRF */
        sort_order(s, D, 0, 0, kb, order + (size_t)(2 * r + 1) * D); /* LeRF */
    }
    double *vals = mth_buf(sc, 7, (size_t)R * (U + 1) * sizeof(double)); /* (R, U) */
    double *vb = vals + (size_t)R * U;                                   /* (R) v at the baseline */
    curve_ctx q = {.x = rows->x, .b = b, .order = order, .D = D, .K = K};
    /* the baseline's logits, once (a batch of 1); each row takes its target */
    for (int d = 0; d < D; d++) sc->xin[d] = base_at(b, d);
    const float *lgb = eng_model_forward(m, &sc->ws, sc->xin, 1);
    for (int r = 0; r < R; r++) vb[r] = output_of(lgb, C, rows->target[r], c->use_prob);
    run_forwards(m, sc, rows, U, c->use_prob, curve_fill, &q, vals);

    for (int r = 0; r < R; r++) {
        const double *vr = vals + (size_t)r * U;
        for (int cv = 0; cv < 4; cv++) {
            const int del = cv < 2;
            double auc = 0.0, prev = del ? vr[0] : vb[r], tprev = 0.0;
            if (curves) curves[((size_t)r * 4 + cv) * (K + 1)] = prev;
            for (int step = 1; step <= K; step++) {
                double v = step < K ? vr[1 + cv * (K - 1) + step - 1] : (del ? vb[r] : vr[0]);
                double t = (double)steps_count(step, D, K) / D;
                auc += (t - tprev) * 0.5 * (prev + v);
                if (curves) curves[((size_t)r * 4 + cv) * (K + 1) + step] = v;
                prev = v;
                tprev = t;
            }
            out[(size_t)r * 4 + cv] = auc;
        }
    }
}

/* ------------------------------------------------------------ infidelity */

typedef struct {
    const mtr_config *c;
    const mth_rows *rows;
    const float *phi; /* (R, D) */
    double *dot;      /* (R, J) I . phi */
    uint64_t stream;
    int D, J;
} infid_ctx;

/* u = 0: x; u = j + 1: x - I_j */
static void infid_fill(void *vctx, int r, int u, float *xi) {
    const infid_ctx *q = vctx;
    const int D = q->D;
    const float *xr = q->rows->x + (size_t)r * D;
    if (u == 0) {
        memcpy(xi, xr, (size_t)D * sizeof(float));
        q->dot[(size_t)r * q->J] = 0.0;
        return;
    }
    const float *phi = q->phi + (size_t)r * D;
    const uint64_t a = (uint64_t)(q->rows->row0 + r), b0 = (uint64_t)(u - 1) * (uint64_t)D;
    double s = 0.0;
    for (int d = 0; d < D; d++) {
        double I = q->c->infid_sigma * at_rng_normal(q->c->seed, q->stream, a, b0 + (uint64_t)d);
        xi[d] = (float)((double)xr[d] - I);
        s += (double)phi[d] * ((double)xr[d] - (double)xi[d]); /* I as applied */
    }
    q->dot[(size_t)r * q->J + u] = s;
}

void mtr_infidelity(const mtr_config *c, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    const float *scores, double *out) {
    const int R = rows->R, D = m->in_features, n = c->infid_n;
    AT_CHECK(n >= 1 && R >= 0);
    if (R == 0) return;
    const int J = n + 1; /* per row: x, then the n perturbations */
    double *fv = mth_buf(sc, 6, (size_t)R * J * sizeof(double));  /* (R, J) f */
    double *dot = mth_buf(sc, 7, (size_t)R * J * sizeof(double)); /* (R, J) I . phi */
    infid_ctx q = {.c = c,
                   .rows = rows,
                   .phi = scores,
                   .dot = dot,
                   .D = D,
                   .J = J,
                   .stream = c->stream * 64 + MTR_PURPOSE_INFIDELITY};
    run_forwards(m, sc, rows, J, 0, infid_fill, &q, fv);
    for (int r = 0; r < R; r++) {
        const double *fr = fv + (size_t)r * J, *ar = dot + (size_t)r * J;
        double raw = 0.0, aa = 0.0, ab = 0.0;
        for (int j = 1; j < J; j++) {
            double bj = fr[0] - fr[j], e = ar[j] - bj;
            raw += e * e;
            aa += ar[j] * ar[j];
            ab += ar[j] * bj;
        }
        double beta = aa != 0.0 ? ab / aa : 0.0, nrm = 0.0;
        for (int j = 1; j < J; j++) {
            double e = beta * ar[j] - (fr[0] - fr[j]);
            nrm += e * e;
        }
        out[(size_t)r * 2] = raw / n;
        out[(size_t)r * 2 + 1] = nrm / n;
    }
}

/* ------------------------------------------------------ sensitivity-max */

void mtr_sensitivity_max(const mtr_config *c, const mth_spec *method, const eng_model *m,
                         mth_scratch *sc, const mth_rows *rows, const float *scores, double *out) {
    const int R = rows->R, D = m->in_features, n = c->sens_n;
    AT_CHECK(n >= 1 && R >= 0 && method->D == D);
    if (R == 0) return;
    const uint64_t st = c->stream * 64 + MTR_PURPOSE_SENSITIVITY;
    const size_t RD = (size_t)R * D;
    /* own buffers: mth_attribute may use every scratch slot */
    float *xp = at_malloc(RD * sizeof(float), "sensitivity inputs");
    float *phi = at_malloc(RD * sizeof(float), "sensitivity scores");
    float *phi0 = NULL;
    if (!scores) {
        phi0 = at_malloc(RD * sizeof(float), "sensitivity base scores");
        mth_attribute(method, m, sc, rows, phi0);
        scores = phi0;
    }
    double *norm0 = at_malloc((size_t)R * sizeof(double), "sensitivity norms");
    for (int r = 0; r < R; r++) {
        const float *s = scores + (size_t)r * D;
        double q = 0.0;
        for (int d = 0; d < D; d++) q += (double)s[d] * (double)s[d];
        norm0[r] = q > 0.0 ? sqrt(q) : 1.0; /* Captum: a zero norm divides by 1 */
        out[r] = 0.0;
    }
    mth_rows prow = *rows; /* the same rows, targets and selection indices */
    prow.x = xp;
    for (int j = 0; j < n; j++) {
        const uint64_t b0 = (uint64_t)j * (uint64_t)D;
        for (int r = 0; r < R; r++) {
            const float *xr = rows->x + (size_t)r * D;
            float *xo = xp + (size_t)r * D;
            const uint64_t a = (uint64_t)(rows->row0 + r);
            for (int d = 0; d < D; d++) {
                double u = at_rng_uniform_f64(c->seed, st, a, b0 + (uint64_t)d);
                xo[d] = (float)((double)xr[d] + c->sens_radius * (2.0 * u - 1.0));
            }
        }
        mth_attribute(method, m, sc, &prow, phi);
        for (int r = 0; r < R; r++) {
            const float *s0 = scores + (size_t)r * D, *s1 = phi + (size_t)r * D;
            double q = 0.0;
            for (int d = 0; d < D; d++) {
                double e = (double)s1[d] - (double)s0[d];
                q += e * e;
            }
            double v = sqrt(q) / norm0[r];
            if (isnan(out[r])) continue; /* a NaN stays */
            if (isnan(v) || v > out[r]) out[r] = v;
        }
    }
    free(norm0);
    free(phi0);
    free(phi);
    free(xp);
}

/* ------------------------------------------------------------ agreement */

/* Average ranks (1-based, ties share their mean rank) of v (D), ascending. */
static void average_ranks(const float *v, int D, keyed *kb, double *rank) {
    for (int d = 0; d < D; d++) {
        kb[d].key = key_of(v[d]);
        kb[d].idx = d;
    }
    qsort(kb, (size_t)D, sizeof *kb, cmp_asc);
    for (int i = 0; i < D;) {
        int j = i + 1;
        while (j < D && kb[j].key == kb[i].key) j++;
        double mean = 0.5 * (double)(i + j - 1) + 1.0;
        for (int t = i; t < j; t++) rank[kb[t].idx] = mean;
        i = j;
    }
}

static double spearman(const float *a, const float *b, int D, keyed *kb, double *ra, double *rb) {
    average_ranks(a, D, kb, ra);
    average_ranks(b, D, kb, rb);
    const double mean = 0.5 * (D + 1.0); /* both rank vectors sum to D (D + 1) / 2 */
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (int d = 0; d < D; d++) {
        double u = ra[d] - mean, w = rb[d] - mean;
        sxy += u * w;
        sxx += u * u;
        syy += w * w;
    }
    if (sxx == 0.0 || syy == 0.0) return NAN;
    return sxy / sqrt(sxx * syy);
}

/* pairs sorted by (a, b) */
typedef struct {
    float a, b;
} pair2;

static int cmp_pair(const void *pa, const void *pb) {
    const pair2 *x = pa, *y = pb;
    if (x->a != y->a) return x->a < y->a ? -1 : 1;
    if (x->b != y->b) return x->b < y->b ? -1 : 1;
    return 0;
}

/* Stable bottom-up merge sort of v (n) by value; returns the number of
 * pairs i < j with v[i] > v[j] (strict inversions). tmp (n) scratch. */
static int64_t merge_count(float *v, float *tmp, int n) {
    int64_t inv = 0;
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                if (v[j] < v[i]) {
                    inv += mid - i;
                    tmp[o++] = v[j++];
                } else {
                    tmp[o++] = v[i++];
                }
            }
            while (i < mid) tmp[o++] = v[i++];
            while (j < hi) tmp[o++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof(float));
    }
    return inv;
}

/* Tie pairs sum t (t - 1) / 2 over runs of equal values of sorted v. */
static int64_t tie_pairs(const float *v, int n) {
    int64_t s = 0;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && v[j] == v[i]) j++;
        s += (int64_t)(j - i) * (j - i - 1) / 2;
        i = j;
    }
    return s;
}

/* Kendall tau-b by Knight's algorithm: sort by (a, b), count a-ties and
 * joint ties, then the inversions of b by merge sort are the discordant
 * pairs; b-ties from the sorted b. */
static double kendall_tau_b(const float *a, const float *b, int D, pair2 *pr, float *va,
                            float *tmp) {
    for (int d = 0; d < D; d++) {
        pr[d].a = key_of(a[d]);
        pr[d].b = key_of(b[d]);
    }
    qsort(pr, (size_t)D, sizeof *pr, cmp_pair);
    const int64_t n0 = (int64_t)D * (D - 1) / 2;
    int64_t n1 = 0, n3 = 0;
    for (int i = 0; i < D;) {
        int j = i + 1;
        while (j < D && pr[j].a == pr[i].a) j++;
        n1 += (int64_t)(j - i) * (j - i - 1) / 2;
        for (int s = i; s < j;) { /* runs of equal b within the a-run */
            int t = s + 1;
            while (t < j && pr[t].b == pr[s].b) t++;
            n3 += (int64_t)(t - s) * (t - s - 1) / 2;
            s = t;
        }
        i = j;
    }
    for (int d = 0; d < D; d++) va[d] = pr[d].b;
    const int64_t nd = merge_count(va, tmp, D);
    const int64_t n2 = tie_pairs(va, D);
    const double den = (double)(n0 - n1) * (double)(n0 - n2);
    if (den <= 0.0) return NAN;
    /* n_c - n_d = (n0 - n1 - n2 + n3) - 2 n_d */
    return (double)(n0 - n1 - n2 + n3 - 2 * nd) / sqrt(den);
}

static double topk_overlap(const float *a, const float *b, int D, int k, keyed *kb, int32_t *order,
                           unsigned char *mark) {
    memset(mark, 0, (size_t)D);
    sort_order(a, D, 1, 1, kb, order);
    for (int i = 0; i < k; i++) mark[order[i]] = 1;
    sort_order(b, D, 1, 1, kb, order);
    int hit = 0;
    for (int i = 0; i < k; i++) hit += mark[order[i]];
    return (double)hit / k;
}

void mtr_agreement(const float *a, const float *b, int R, int D, int top_k, double *out) {
    AT_CHECK(R >= 0 && D >= 1 && top_k >= 0);
    if (R == 0) return;
    const int k = mtr_top_k(top_k, D);
    keyed *kb = at_malloc((size_t)D * sizeof(keyed), "agreement keys");
    double *ra = at_malloc((size_t)2 * D * sizeof(double), "agreement ranks");
    pair2 *pr = at_malloc((size_t)D * sizeof(pair2), "agreement pairs");
    float *va = at_malloc((size_t)2 * D * sizeof(float), "agreement merge");
    int32_t *order = at_malloc((size_t)D * sizeof(int32_t), "agreement order");
    unsigned char *mark = at_malloc((size_t)D, "agreement marks");
    for (int r = 0; r < R; r++) {
        const float *ar = a + (size_t)r * D, *br = b + (size_t)r * D;
        double *o = out + (size_t)r * 3;
        o[0] = spearman(ar, br, D, kb, ra, ra + D);
        o[1] = kendall_tau_b(ar, br, D, pr, va, va + D);
        o[2] = topk_overlap(ar, br, D, k, kb, order, mark);
    }
    free(mark);
    free(order);
    free(va);
    free(pr);
    free(ra);
    free(kb);
}
