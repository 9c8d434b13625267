/* tda_kfac.c — K-FAC / EK-FAC statistics, factors and inverse products
 * (tda_kfac.h has the formulas and conventions).
 *
 * Per chunk of up to cap rows: one float64 forward, then C class backward
 * passes (output gradients d_c with sum_c d_c d_c^T = H_loss). Statistics
 * are BLAS-3 over the chunk's rows:
 *   stage 0  A += (1/P) Arows^T Arows        dsyrk   (rows n*P + t, K1 cols)
 *            S += Grows_c^T Grows_c          dsyrk   (rows n*P + t, OC cols)
 *   stage 1  Ahat = Arows Q_A, Ghat_c = Grows_c Q_S  dgemm
 *            P = 1: G_nc is rank one, so (Q_S^T G_nc Q_A)_ij^2 =
 *                   Ghat_nci^2 Ahat_nj^2 and Lambda += (sum_c Ghat_c^2)^T Ahat^2
 *                   (one dgemm per chunk)
 *            P > 1: per (n, c) M = Ghat_nc^T Ahat_n (OC x K1), Lambda += M^2. */
#define _GNU_SOURCE
#include <sched.h> /* cpu_set_t for cblas.h */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tda_kfac.h"

typedef struct {
    int layer;              /* index in the model */
    eng_layer_kind kind;    /* LINEAR or CONV2D */
    int Kin, K1, OC, P;     /* input features (IC or C*KH*KW), K1 = Kin + bias, positions */
    int bias;
    size_t col_w, col_b;    /* weight (OC, Kin) and bias (OC) offsets in a selection row */
    size_t off_A, off_S;    /* into stage-0 stats: A (K1, K1), S (OC, OC) */
    size_t off_L;           /* into stage-1 stats: Lambda (OC, K1) */
    double *QA, *ea;        /* (K1, K1) eigenvectors in columns, (K1) eigenvalues */
    double *QS, *es;        /* (OC, OC), (OC) */
    double *lam;            /* (OC, K1) Lambda */
    double *inv;            /* (OC, K1) 1 / (Lambda + lambda) */
    double *ahat;           /* EK-FAC: (cap*P, K1) rotated input rows of a chunk */
    double *g2;             /* EK-FAC, P == 1: (cap, OC) sum_c Ghat_c^2 */
} kf_layer;

struct tda_kfac {
    int ekfac;
    eng_loss loss;
    int cap, C, D;
    int n;                  /* selected layers */
    kf_layer *L;            /* (n) */
    int stop;               /* eng_backward_to stop layer */
    eng_param_sel sel;
    size_t p, len0, len1, max_blk;
    eng_workspace ws;       /* float64, cap rows */
    size_t n_params;
    double *pd;             /* (n_params) params as double */
    double *xd;             /* (cap, D) */
    double *prob;           /* (cap, C) softmax of the logits (XENT) */
    double *dl;             /* (cap, C) class output gradients */
    double *arows;          /* (max rows, max K1) input rows */
    double *grows;          /* (max rows, max OC) output-gradient rows (conv) */
    double *ghat;           /* (max rows, max OC) rotated output gradients */
    double *gm;             /* (max OC * K1) one example's rotated gradient matrix */
    size_t bytes;
    int factored, finished;
    double lambda;
};

#define LFMT "layer '%s' (#%d, %s): "
#define LARG(m, i) (m)->layers[i].name, (i), eng_layer_kind_name((m)->layers[i].kind)

static int kf_kind_ok(eng_layer_kind kind) {
    return kind == ENG_LAYER_LINEAR || kind == ENG_LAYER_CONV2D;
}

static double *kf_alloc(tda_kfac *k, size_t n, const char *label) {
    k->bytes += n * sizeof(double);
    return at_calloc(n ? n : 1, sizeof(double), label);
}

/* Fill k->sel and k->L from the layer names (or every linear/conv2d layer). */
static int kf_select(tda_kfac *k, const eng_model *m, const char *const *layers, int n_layers,
                     at_err *err) {
    const char **names = at_malloc(((size_t)m->n_layers + 1) * sizeof *names, "kfac names");
    int nn = 0, rc = 0;
    if (n_layers == 0) {
        for (int i = 0; i < m->n_layers; i++)
            if (kf_kind_ok(m->layers[i].kind)) names[nn++] = m->layers[i].name;
        if (nn == 0) {
            rc = at_err_set(err, AT_EUSER,
                            "kfac/ekfac cover linear and conv2d layers and the model has "
                            "none; use `inverse: exact|cg|lissa`");
            goto done;
        }
    } else {
        for (int j = 0; j < n_layers; j++) {
            int i = eng_model_find_layer(m, layers[j]);
            if (i < 0) {
                rc = at_err_set(err, AT_EUSER, "layers: no layer is called '%s'", layers[j]);
                goto done;
            }
            if (!kf_kind_ok(m->layers[i].kind)) {
                rc = at_err_set(err, AT_EUSER,
                                LFMT "kfac/ekfac cover linear and conv2d layers only; use "
                                "`inverse: exact|cg|lissa`, or select linear/conv2d layers "
                                "with `layers:`",
                                LARG(m, i));
                goto done;
            }
        }
    }
    rc = eng_param_sel_layers(m, n_layers ? layers : names, n_layers ? n_layers : nn,
                              &k->sel, err);
    if (rc) goto done;
    /* group the selected tensors by layer: weight then (optional) bias */
    k->L = at_calloc((size_t)k->sel.n_tensors, sizeof *k->L, "kfac layers");
    size_t col = 0, o0 = 0, o1 = 0;
    for (int t = 0; t < k->sel.n_tensors;) {
        const eng_tensor *T = &m->tensors[k->sel.tensor[t]];
        int li = T->layer;
        const eng_layer *ly = &m->layers[li];
        kf_layer *L = &k->L[k->n++];
        L->layer = li;
        L->kind = ly->kind;
        L->OC = ly->out_features;
        if (ly->kind == ENG_LAYER_LINEAR) {
            L->Kin = ly->in_shape[ly->in_ndim - 1];
            L->P = (int)(ly->in_numel / (size_t)L->Kin);
        } else {
            L->Kin = ly->g.C * ly->g.KH * ly->g.KW;
            L->P = ly->g.OH * ly->g.OW;
        }
        if (T->numel != (size_t)L->OC * (size_t)L->Kin || k->sel.tensor[t] != ly->tensor0) {
            rc = at_err_set(err, AT_EUSER,
                            LFMT "its weight is not trainable; kfac/ekfac need the weight of "
                            "every selected layer",
                            LARG(m, li));
            goto done;
        }
        L->col_w = col;
        col += T->numel;
        t++;
        if (t < k->sel.n_tensors && m->tensors[k->sel.tensor[t]].layer == li) {
            L->bias = 1;
            L->col_b = col;
            col += m->tensors[k->sel.tensor[t]].numel;
            t++;
        }
        L->K1 = L->Kin + L->bias;
        L->off_A = o0;
        o0 += (size_t)L->K1 * L->K1;
        L->off_S = o0;
        o0 += (size_t)L->OC * L->OC;
        L->off_L = o1;
        o1 += (size_t)L->OC * L->K1;
    }
    AT_CHECK(col == k->sel.n);
    k->p = col;
    k->len0 = o0;
    k->len1 = k->ekfac ? o1 : 0;
done:
    free(names);
    return rc;
}

/* Bytes tda_kfac_new allocates for a selection (k->L filled) at cap rows:
 * what tda_kfac_bytes reports afterwards. */
static size_t kf_plan_bytes(const tda_kfac *k, const eng_model *m, int cap) {
    eng_memory mem;
    eng_plan_memory(m, cap, ENG_F64, &mem);
    size_t d = m->n_params + (size_t)cap * m->in_features + 2 * (size_t)cap * m->out_features;
    size_t ma = 0, mg = 0, mb = 0;
    for (int l = 0; l < k->n; l++) {
        const kf_layer *L = &k->L[l];
        size_t rows = (size_t)cap * L->P, K1 = (size_t)L->K1, OC = (size_t)L->OC;
        ma = rows * K1 > ma ? rows * K1 : ma;
        mg = rows * OC > mg ? rows * OC : mg;
        mb = OC * K1 > mb ? OC * K1 : mb;
        d += K1 * K1 + K1 + OC * OC + OC + 2 * OC * K1;
        if (k->ekfac) d += rows * K1 + (L->P == 1 ? (size_t)cap * OC : 0);
    }
    d += ma + mg + (k->ekfac ? mg + mb : 0);
    return sizeof *k + mem.total + d * sizeof(double);
}

int tda_kfac_plan(const eng_model *m, const char *const *layers, int n_layers, int ekfac,
                  eng_loss loss, int cap, size_t *bytes, at_err *err) {
    AT_CHECK(m && bytes && cap >= 1 && n_layers >= 0);
    *bytes = 0;
    if (loss.kind != ENG_LOSS_XENT && loss.kind != ENG_LOSS_MSE)
        return at_err_set(err, AT_EUSER,
                          "kfac/ekfac need the loss cross_entropy or mse (the Gauss-Newton "
                          "matrix of the margin is not defined); set `loss:`");
    tda_kfac k = {.ekfac = ekfac ? 1 : 0};
    int rc = kf_select(&k, m, layers, n_layers, err);
    if (!rc) *bytes = kf_plan_bytes(&k, m, cap);
    free(k.L);
    return rc;
}

int tda_kfac_new(tda_kfac **out, const eng_model *m, const char *const *layers, int n_layers,
                 int ekfac, eng_loss loss, int cap, at_err *err) {
    AT_CHECK(out && m && m->params && cap >= 1 && n_layers >= 0);
    *out = NULL;
    if (loss.kind != ENG_LOSS_XENT && loss.kind != ENG_LOSS_MSE)
        return at_err_set(err, AT_EUSER,
                          "kfac/ekfac need the loss cross_entropy or mse (the Gauss-Newton "
                          "matrix of the margin is not defined); set `loss:`");
    tda_kfac *k = at_calloc(1, sizeof *k, "kfac");
    k->ekfac = ekfac ? 1 : 0;
    k->loss = loss;
    k->cap = cap;
    k->C = m->out_features;
    k->D = m->in_features;
    int rc = kf_select(k, m, layers, n_layers, err);
    if (rc) {
        free(k->L);
        free(k);
        return rc;
    }
    /* backward down to the lowest selected layer, unless a layer above it
     * reads a layer below it (then the whole backward) */
    k->stop = m->n_layers;
    for (int l = 0; l < k->n; l++) k->stop = k->L[l].layer < k->stop ? k->L[l].layer : k->stop;
    for (int i = k->stop + 1; i < m->n_layers; i++)
        for (int s = 0; s < (m->layers[i].n_src ? m->layers[i].n_src : 1); s++) {
            int src = m->layers[i].src[s];
            if (src != ENG_SRC_INPUT && src < k->stop) k->stop = -1;
        }
    if (k->stop < 0) k->stop = -1;
    eng_workspace_init(&k->ws, m, cap, ENG_F64);
    k->bytes = sizeof *k + k->ws.mem.total;
    k->n_params = m->n_params;
    k->pd = kf_alloc(k, m->n_params, "kfac params");
    k->xd = kf_alloc(k, (size_t)cap * k->D, "kfac inputs");
    k->prob = kf_alloc(k, (size_t)cap * k->C, "kfac probabilities");
    k->dl = kf_alloc(k, (size_t)cap * k->C, "kfac output gradients");
    size_t ma = 0, mg = 0, mb = 0;
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        size_t rows = (size_t)cap * L->P;
        ma = rows * L->K1 > ma ? rows * L->K1 : ma;
        mg = rows * L->OC > mg ? rows * L->OC : mg;
        mb = (size_t)L->OC * L->K1 > mb ? (size_t)L->OC * L->K1 : mb;
        L->QA = kf_alloc(k, (size_t)L->K1 * L->K1, "kfac Q_A");
        L->ea = kf_alloc(k, (size_t)L->K1, "kfac eig A");
        L->QS = kf_alloc(k, (size_t)L->OC * L->OC, "kfac Q_S");
        L->es = kf_alloc(k, (size_t)L->OC, "kfac eig S");
        L->lam = kf_alloc(k, (size_t)L->OC * L->K1, "kfac Lambda");
        L->inv = kf_alloc(k, (size_t)L->OC * L->K1, "kfac inverse");
        if (k->ekfac) {
            L->ahat = kf_alloc(k, rows * L->K1, "ekfac rotated inputs");
            if (L->P == 1) L->g2 = kf_alloc(k, (size_t)cap * L->OC, "ekfac squares");
        }
    }
    k->max_blk = mb;
    k->arows = kf_alloc(k, ma, "kfac input rows");
    k->grows = kf_alloc(k, mg, "kfac gradient rows");
    k->ghat = kf_alloc(k, k->ekfac ? mg : 0, "ekfac rotated gradients");
    k->gm = kf_alloc(k, k->ekfac ? mb : 0, "ekfac gradient matrix");
    AT_CHECK(k->bytes == kf_plan_bytes(k, m, cap));
    *out = k;
    return 0;
}

size_t tda_kfac_dim(const tda_kfac *k) { return k->p; }

const eng_param_sel *tda_kfac_sel(const tda_kfac *k) { return &k->sel; }

size_t tda_kfac_stats_len(const tda_kfac *k, int stage) {
    AT_CHECK(stage == 0 || stage == 1);
    return stage == 0 ? k->len0 : k->len1;
}

size_t tda_kfac_bytes(const tda_kfac *k) { return k->bytes; }

void tda_kfac_free(tda_kfac *k) {
    if (!k) return;
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        free(L->QA); free(L->ea); free(L->QS); free(L->es);
        free(L->lam); free(L->inv); free(L->ahat); free(L->g2);
    }
    free(k->L);
    eng_workspace_free(&k->ws);
    free(k->pd); free(k->xd); free(k->prob); free(k->dl);
    free(k->arows); free(k->grows); free(k->ghat); free(k->gm);
    free(k);
}

/* ------------------------------------------------------------- accum */

/* rows (nb*P, K1) = the layer's input rows of the chunk (a trailing 1 with
 * a bias): a linear's input rows, or a conv's im2col patches, row n*P + t,
 * column (c*KH + kh)*KW + kw (the weight's (OC, C, KH, KW) order). */
static void kf_input_rows(const tda_kfac *k, const eng_model *m, const kf_layer *L, int nb,
                          double *rows) {
    const eng_layer *ly = &m->layers[L->layer];
    int s = ly->src[0];
    const double *in = s == ENG_SRC_INPUT ? k->xd : (const double *)eng_ws_act(&k->ws, s);
    const size_t K1 = (size_t)L->K1, R = (size_t)nb * L->P;
    if (L->kind == ENG_LAYER_LINEAR) {
        for (size_t r = 0; r < R; r++) {
            memcpy(rows + r * K1, in + r * L->Kin, (size_t)L->Kin * sizeof(double));
            if (L->bias) rows[r * K1 + L->Kin] = 1.0;
        }
        return;
    }
    const eng_geom2d *g = &ly->g;
    const int P = L->P;
    for (int n = 0; n < nb; n++) {
        const double *x = in + (size_t)n * ly->in_numel; /* (C, H, W) */
        double *rn = rows + (size_t)n * P * K1;         /* (P, K1) */
        for (int c = 0; c < g->C; c++)
            for (int kh = 0; kh < g->KH; kh++)
                for (int kw = 0; kw < g->KW; kw++) {
                    size_t col = ((size_t)c * g->KH + kh) * g->KW + kw;
                    for (int oh = 0; oh < g->OH; oh++) {
                        int ih = oh * g->SH - g->PH + kh * g->DH;
                        for (int ow = 0; ow < g->OW; ow++) {
                            int iw = ow * g->SW - g->PW + kw * g->DW;
                            double v = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W
                                           ? x[((size_t)c * g->H + ih) * g->W + iw]
                                           : 0.0;
                            rn[((size_t)oh * g->OW + ow) * K1 + col] = v;
                        }
                    }
                }
        if (L->bias)
            for (int t = 0; t < P; t++) rn[(size_t)t * K1 + L->Kin] = 1.0;
    }
}

/* The layer's output-gradient rows (nb*P, OC) after a backward: the
 * workspace's own rows for a linear, transposed from (nb, OC, P) for conv. */
static const double *kf_grad_rows(tda_kfac *k, const kf_layer *L, int nb) {
    const double *d = eng_ws_grad(&k->ws, L->layer);
    if (L->kind == ENG_LAYER_LINEAR) return d;
    const int P = L->P, OC = L->OC;
    for (int n = 0; n < nb; n++)
        for (int o = 0; o < OC; o++)
            for (int t = 0; t < P; t++)
                k->grows[((size_t)n * P + t) * OC + o] = d[((size_t)n * OC + o) * P + t];
    return k->grows;
}

/* dl (nb, C) = the class-c output gradients d_c of every row. */
static void kf_class_grad(tda_kfac *k, int nb, int c) {
    const int C = k->C;
    if (k->loss.kind == ENG_LOSS_MSE) {
        memset(k->dl, 0, (size_t)nb * C * sizeof(double));
        double v = sqrt(2.0 / C);
        for (int n = 0; n < nb; n++) k->dl[(size_t)n * C + c] = v;
        return;
    }
    for (int n = 0; n < nb; n++) {
        const double *p = k->prob + (size_t)n * C;
        double *d = k->dl + (size_t)n * C, w = sqrt(p[c]);
        for (int j = 0; j < C; j++) d[j] = w * (p[j] - (j == c ? 1.0 : 0.0));
    }
}

static void kf_softmax(tda_kfac *k, const double *z, int nb) {
    const int C = k->C;
    for (int n = 0; n < nb; n++) {
        const double *zn = z + (size_t)n * C;
        double *p = k->prob + (size_t)n * C, mx = zn[0], s = 0.0;
        for (int c = 1; c < C; c++) mx = zn[c] > mx ? zn[c] : mx;
        for (int c = 0; c < C; c++) s += (p[c] = exp(zn[c] - mx));
        for (int c = 0; c < C; c++) p[c] /= s;
    }
}

/* One chunk of nb rows already in k->xd. */
static void kf_chunk(tda_kfac *k, const eng_model *m, int stage, int nb, double *stats) {
    const double *z = eng_forward_f64(m, &k->ws, k->pd, k->xd, nb);
    if (k->loss.kind == ENG_LOSS_XENT) kf_softmax(k, z, nb);
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        const int R = nb * L->P, K1 = L->K1;
        kf_input_rows(k, m, L, nb, k->arows);
        if (stage == 0) {
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, K1, R, 1.0 / L->P, k->arows, K1,
                        1.0, stats + L->off_A, K1);
            continue;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, K1, K1, 1.0, k->arows, K1,
                    L->QA, K1, 0.0, L->ahat, K1);
        if (L->P == 1) {
            for (size_t q = 0; q < (size_t)R * K1; q++) L->ahat[q] *= L->ahat[q];
            memset(L->g2, 0, (size_t)nb * L->OC * sizeof(double));
        }
    }
    for (int c = 0; c < k->C; c++) {
        kf_class_grad(k, nb, c);
        eng_backward_to_f64(m, &k->ws, k->pd, k->xd, k->dl, nb, k->stop, NULL, NULL);
        for (int l = 0; l < k->n; l++) {
            kf_layer *L = &k->L[l];
            const int R = nb * L->P, OC = L->OC, K1 = L->K1, P = L->P;
            const double *gr = kf_grad_rows(k, L, nb);
            if (stage == 0) {
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, OC, R, 1.0, gr, OC, 1.0,
                            stats + L->off_S, OC);
                continue;
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, OC, OC, 1.0, gr, OC,
                        L->QS, OC, 0.0, k->ghat, OC);
            if (P == 1) {
                for (size_t q = 0; q < (size_t)R * OC; q++) L->g2[q] += k->ghat[q] * k->ghat[q];
                continue;
            }
            double *lam = stats + L->off_L;
            for (int n = 0; n < nb; n++) {
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, K1, P, 1.0,
                            k->ghat + (size_t)n * P * OC, OC, L->ahat + (size_t)n * P * K1, K1,
                            0.0, k->gm, K1);
                for (size_t q = 0; q < (size_t)OC * K1; q++) lam[q] += k->gm[q] * k->gm[q];
            }
        }
    }
    if (stage == 1)
        for (int l = 0; l < k->n; l++) {
            kf_layer *L = &k->L[l];
            if (L->P != 1) continue;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->OC, L->K1, nb, 1.0, L->g2,
                        L->OC, L->ahat, L->K1, 1.0, stats + L->off_L, L->K1);
        }
}

void tda_kfac_accum(tda_kfac *k, const eng_model *m, int stage, const float *x,
                    const int32_t *labels, int64_t N, double *stats) {
    AT_CHECK(k && m && (x || N == 0) && stats && N >= 0);
    AT_CHECK(stage == 0 || (stage == 1 && k->ekfac && k->factored));
    AT_CHECK(m->n_params == k->n_params && m->in_features == k->D && m->out_features == k->C);
    (void)labels;
    if (N == 0) return;
    for (size_t q = 0; q < m->n_params; q++) k->pd[q] = m->params[q];
    for (int64_t r0 = 0; r0 < N; r0 += k->cap) {
        int nb = (int)(N - r0 < k->cap ? N - r0 : k->cap);
        const float *xr = x + (size_t)r0 * k->D;
        for (size_t q = 0; q < (size_t)nb * k->D; q++) k->xd[q] = xr[q];
        kf_chunk(k, m, stage, nb, stats);
    }
}

/* ------------------------------------------------------------ factors */

static int kf_finite(const double *v, size_t n) {
    for (size_t q = 0; q < n; q++)
        if (!isfinite(v[q])) return 0;
    return 1;
}

/* Q (n, n) = the upper triangle of sum (n, n) / rows, symmetrised, then
 * its eigenvectors (columns), e its eigenvalues (negatives set to 0). */
static int kf_eig(double *Q, double *e, const double *sum, int n, double rows, at_err *err) {
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            Q[(size_t)i * n + j] = Q[(size_t)j * n + i] = sum[(size_t)i * n + j] / rows;
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', n, Q, n, e);
    if (info != 0)
        return at_err_set(err, AT_EINTERNAL, "kfac: LAPACKE_dsyevd failed (info %d) on a %dx%d "
                          "factor", (int)info, n, n);
    for (int i = 0; i < n; i++) e[i] = e[i] > 0.0 ? e[i] : 0.0;
    return 0;
}

int tda_kfac_factor(tda_kfac *k, const double *stats0, int64_t n_rows, at_err *err) {
    AT_CHECK(k && stats0);
    if (n_rows < 1)
        return at_err_set(err, AT_EUSER, "kfac: no training rows to estimate the curvature "
                          "from; check the train set");
    if (!kf_finite(stats0, k->len0))
        return at_err_set(err, AT_EUSER, "kfac: the curvature statistics are not finite (the "
                          "model's activations or outputs overflow on the train set)");
    k->factored = k->finished = 0;
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        int rc = kf_eig(L->QA, L->ea, stats0 + L->off_A, L->K1, (double)n_rows, err);
        if (!rc) rc = kf_eig(L->QS, L->es, stats0 + L->off_S, L->OC, (double)n_rows, err);
        if (rc) return rc;
    }
    k->factored = 1;
    return 0;
}

int tda_kfac_finish(tda_kfac *k, const double *stats1, int64_t n_rows, double damping,
                    int relative, double *lambda_used, at_err *err) {
    AT_CHECK(k && k->factored && (k->ekfac ? stats1 != NULL : stats1 == NULL));
    k->finished = 0;
    if (!(damping >= 0.0) || !isfinite(damping))
        return at_err_set(err, AT_EUSER, "damping is %g; expected a finite number >= 0",
                          damping);
    if (k->ekfac && n_rows < 1)
        return at_err_set(err, AT_EUSER, "ekfac: no training rows for the eigenvalue "
                          "correction; check the train set");
    if (k->ekfac && !kf_finite(stats1, k->len1))
        return at_err_set(err, AT_EUSER, "ekfac: the eigenvalue statistics are not finite "
                          "(the model's gradients overflow on the train set)");
    double sum = 0.0;
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        for (int i = 0; i < L->OC; i++)
            for (int j = 0; j < L->K1; j++) {
                size_t q = (size_t)i * L->K1 + j;
                L->lam[q] = k->ekfac ? stats1[L->off_L + q] / (double)n_rows : L->es[i] * L->ea[j];
                sum += L->lam[q];
            }
    }
    double lambda = relative ? damping * sum / (double)k->p : damping;
    for (int l = 0; l < k->n; l++) {
        kf_layer *L = &k->L[l];
        for (size_t q = 0; q < (size_t)L->OC * L->K1; q++) {
            double d = L->lam[q] + lambda;
            if (!(d > 0.0))
                return at_err_set(err, AT_EUSER,
                                  "kfac: the curvature of layer #%d is singular after damping "
                                  "%g (lambda %g); set damping > 0",
                                  L->layer, damping, lambda);
            L->inv[q] = 1.0 / d;
        }
    }
    k->lambda = lambda;
    if (lambda_used) *lambda_used = lambda;
    k->finished = 1;
    return 0;
}

/* ------------------------------------------------------------- apply */

/* Right-hand sides per pass: scratch of 2 * KF_APPLY_DOUBLES doubles at
 * most (unless one rhs's largest block is bigger). */
#define KF_APPLY_DOUBLES ((size_t)1 << 21)

/* Rows r of g/out: out_r = blockdiag_l(Q_l diag(inv_l) Q_l^T) g_r. */
static void kf_apply_rows(const tda_kfac *k, const double *g, int nrhs, double *out,
                          double *v, double *w) {
    const size_t p = k->p;
    for (int l = 0; l < k->n; l++) {
        const kf_layer *L = &k->L[l];
        const int OC = L->OC, K1 = L->K1, Kin = L->Kin;
        const size_t blk = (size_t)OC * K1;
        /* v (nrhs*OC, K1) = the gradient matrices [W | b] */
        for (int r = 0; r < nrhs; r++) {
            const double *gr = g + (size_t)r * p;
            double *vr = v + (size_t)r * blk;
            for (int o = 0; o < OC; o++) {
                memcpy(vr + (size_t)o * K1, gr + L->col_w + (size_t)o * Kin,
                       (size_t)Kin * sizeof(double));
                if (L->bias) vr[(size_t)o * K1 + Kin] = gr[L->col_b + o];
            }
        }
        /* w = V Q_A; v_r = Q_S^T w_r, scaled by 1 / (Lambda + lambda);
         * w_r = Q_S v_r; v = w Q_A^T */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nrhs * OC, K1, K1, 1.0, v, K1,
                    L->QA, K1, 0.0, w, K1);
        for (int r = 0; r < nrhs; r++) {
            double *vr = v + (size_t)r * blk, *wr = w + (size_t)r * blk;
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, K1, OC, 1.0, L->QS, OC, wr,
                        K1, 0.0, vr, K1);
            for (size_t q = 0; q < blk; q++) vr[q] *= L->inv[q];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, K1, OC, 1.0, L->QS, OC, vr,
                        K1, 0.0, wr, K1);
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nrhs * OC, K1, K1, 1.0, w, K1, L->QA,
                    K1, 0.0, v, K1);
        for (int r = 0; r < nrhs; r++) {
            double *orow = out + (size_t)r * p;
            const double *vr = v + (size_t)r * blk;
            for (int o = 0; o < OC; o++) {
                memcpy(orow + L->col_w + (size_t)o * Kin, vr + (size_t)o * K1,
                       (size_t)Kin * sizeof(double));
                if (L->bias) orow[L->col_b + o] = vr[(size_t)o * K1 + Kin];
            }
        }
    }
}

void tda_kfac_apply(const tda_kfac *k, const double *g, int nrhs, double *out) {
    AT_CHECK(k && k->finished && g && out && nrhs >= 0 && g != out);
    if (nrhs == 0) return;
    int rb = (int)(KF_APPLY_DOUBLES / k->max_blk);
    rb = rb < 1 ? 1 : rb > nrhs ? nrhs : rb;
    double *v = at_malloc((size_t)rb * k->max_blk * sizeof(double), "kfac apply");
    double *w = at_malloc((size_t)rb * k->max_blk * sizeof(double), "kfac apply");
    for (int r0 = 0; r0 < nrhs; r0 += rb) {
        int nr = nrhs - r0 < rb ? nrhs - r0 : rb;
        kf_apply_rows(k, g + (size_t)r0 * k->p, nr, out + (size_t)r0 * k->p, v, w);
    }
    free(v);
    free(w);
}
