/* tda_feat.c — per-example gradient features and random projections
 * (tda_feat.h is the manual). */
#define _GNU_SOURCE
#include <sched.h> /* cpu_set_t for cblas.h */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tda_feat.h"

/* Floats of dense P per projection sgemm (16 MiB): the chunk is a function
 * of k only, so stored and regenerated P give the same bytes. */
#define FEAT_CHUNK_FLOATS ((size_t)1 << 22)

/* One layer of the kronecker projection. */
typedef struct {
    int layer;        /* model layer index */
    int conv;         /* 1 conv2d, 0 linear */
    int OC, IC, bias; /* IC = C*KH*KW for conv2d */
    int rows;         /* rows per example: (T, E) positions or OH*OW pixels */
    int k_out, k_in;
    size_t col;    /* first feature column */
    size_t gcol;   /* first column of the layer in the raw gradient */
    float *p_out;  /* (OC, k_out) */
    float *p_in;   /* (IC + bias, k_in) */
    float *p_in_t; /* conv2d: (k_in, IC), P_in[:IC]^T as conv weights */
    eng_geom2d g2; /* conv2d: the layer's geometry with OC = k_in */
} kron_layer;

struct tda_feat {
    eng_param_sel sel;
    size_t p;          /* selected parameters */
    size_t *row_start; /* (sel.n_tensors + 1) first gradient column per tensor */
    eng_loss loss;
    tda_proj_kind proj;
    int k; /* actual dimension */
    uint64_t seed;
    int cap, C, D, n_layers_model;
    size_t n_params_model;
    int stop; /* eng_backward_to's stop layer (-1: whole backward) */
    eng_workspace ws;
    float *dlogits; /* (cap, C) */
    float *g;       /* (cap, p) per-example gradients: dense kinds; sjlt:
                       (cap, rest.n) of the tensors outside linear layers */
    /* dense */
    size_t chunk; /* rows of P per sgemm */
    int stored;   /* P whole (1) or one chunk regenerated per batch (0) */
    float *P;     /* (p, k) or (chunk, k) */
    /* sjlt */
    int s;
    uint32_t *hash;     /* (p, s): column | sign << 31 */
    double *acc;        /* (k) */
    int n_sl;           /* linear layers scattered from (dout, a) without G */
    kron_layer *sl;     /* (n_sl): layer, OC, IC, bias, rows, gcol */
    eng_param_sel rest; /* the other selected tensors (via eng_grad_per_example) */
    size_t *rest_col;   /* (rest.n_tensors) their first column in g */
    int *nz_i;          /* (max IC) nonzero input positions */
    double *nz_v;       /* (max IC) their values */
    int max_ic;
    /* kronecker */
    int n_kl;
    kron_layer *kl;         /* (n_kl) */
    float *U, *V, *col, *T; /* scratch: sizes n_U, n_V, n_col, n_T */
    size_t n_U, n_V, n_col, n_T;
    size_t bytes;
};

const char *tda_proj_name(tda_proj_kind kind) {
    switch (kind) {
    case TDA_PROJ_NONE:
        return "none";
    case TDA_PROJ_GAUSSIAN:
        return "gaussian";
    case TDA_PROJ_RADEMACHER:
        return "rademacher";
    case TDA_PROJ_SJLT:
        return "sjlt";
    case TDA_PROJ_KRONECKER:
        return "kronecker";
    }
    return NULL;
}

static int dense_kind(tda_proj_kind k) {
    return k == TDA_PROJ_GAUSSIAN || k == TDA_PROJ_RADEMACHER;
}

/* ---------------------------------------------------------- generation */

/* buf (r1 - r0, k) = rows [r0, r1) of the dense P (tda_feat.h). */
static void dense_rows(const tda_feat *f, size_t r0, size_t r1, float *buf) {
    const int k = f->k;
    const float sc = (float)(1.0 / sqrt((double)k));
    int q = 0;
    while (f->row_start[q + 1] <= r0) q++;
    for (size_t r = r0; r < r1; r++) {
        while (f->row_start[q + 1] <= r) q++;
        const uint64_t t = (uint64_t)f->sel.tensor[q], e = r - f->row_start[q];
        float *row = buf + (r - r0) * (size_t)k; /* (k) */
        if (f->proj == TDA_PROJ_GAUSSIAN) {
            const uint64_t st = TDA_FEAT_STREAM(TDA_PROJ_GAUSSIAN, 0, t);
            for (int j = 0; j < k; j++)
                row[j] = (float)(at_rng_normal(f->seed, st, e, (uint64_t)j) / sqrt((double)k));
        } else {
            const uint64_t st = TDA_FEAT_STREAM(TDA_PROJ_RADEMACHER, 0, t);
            for (int j0 = 0; j0 < k; j0 += 24) {
                uint32_t u =
                    (uint32_t)(at_rng_uniform(f->seed, st, e, (uint64_t)(j0 / 24)) * 16777216.0f);
                int j1 = j0 + 24 < k ? j0 + 24 : k;
                for (int j = j0; j < j1; j++) row[j] = (u >> (j - j0)) & 1u ? sc : -sc;
            }
        }
    }
}

/* The sjlt table: for each parameter, s (column | sign << 31). */
static void sjlt_table(tda_feat *f) {
    const int s = f->s, k = f->k;
    for (int q = 0; q < f->sel.n_tensors; q++) {
        const uint64_t t = (uint64_t)f->sel.tensor[q];
        const uint64_t sc = TDA_FEAT_STREAM(TDA_PROJ_SJLT, 0, t);
        const uint64_t ss = TDA_FEAT_STREAM(TDA_PROJ_SJLT, 1, t);
        for (size_t r = f->row_start[q]; r < f->row_start[q + 1]; r++) {
            const uint64_t e = r - f->row_start[q];
            for (int b = 0; b < s; b++) {
                uint32_t lo = (uint32_t)((int64_t)k * b / s);
                uint32_t hi = (uint32_t)((int64_t)k * (b + 1) / s);
                uint32_t c = lo + (uint32_t)at_rng_below(hi - lo, f->seed, sc, e, (uint64_t)b);
                uint32_t neg = at_rng_uniform(f->seed, ss, e, (uint64_t)b) < 0.5f;
                f->hash[r * (size_t)s + b] = c | (neg << 31);
            }
        }
    }
}

/* Kronecker factors of layer l (tda_feat.h), float32. */
static void kron_factors(const tda_feat *f, const eng_model *m, kron_layer *l) {
    const uint64_t t = (uint64_t)m->layers[l->layer].tensor0;
    const uint64_t so = TDA_FEAT_STREAM(TDA_PROJ_KRONECKER, 0, t);
    const uint64_t si = TDA_FEAT_STREAM(TDA_PROJ_KRONECKER, 1, t);
    for (int o = 0; o < l->OC; o++)
        for (int j = 0; j < l->k_out; j++)
            l->p_out[(size_t)o * l->k_out + j] =
                (float)(at_rng_normal(f->seed, so, (uint64_t)o, (uint64_t)j) /
                        sqrt((double)l->k_out));
    for (int i = 0; i < l->IC + l->bias; i++)
        for (int j = 0; j < l->k_in; j++)
            l->p_in[(size_t)i * l->k_in + j] =
                (float)(at_rng_normal(f->seed, si, (uint64_t)i, (uint64_t)j) /
                        sqrt((double)l->k_in));
    if (l->conv)
        for (int j = 0; j < l->k_in; j++)
            for (int i = 0; i < l->IC; i++)
                l->p_in_t[(size_t)j * l->IC + i] = l->p_in[(size_t)i * l->k_in + j];
}

/* --------------------------------------------------------------- setup */

/* Split k over the kronecker layers in proportion to their parameter
 * counts and factor each share (tda_feat.h). Returns the actual k. */
static int kron_split(kron_layer *kl, int n, int k) {
    double ptot = 0.0;
    for (int l = 0; l < n; l++) ptot += (double)kl[l].OC * (kl[l].IC + kl[l].bias);
    long *base = at_malloc((size_t)n * sizeof(long), "tda_feat kron split");
    double *share = at_malloc((size_t)n * sizeof(double), "tda_feat kron split");
    long rem = k;
    for (int l = 0; l < n; l++) {
        share[l] = (double)k * ((double)kl[l].OC * (kl[l].IC + kl[l].bias)) / ptot;
        base[l] = (long)floor(share[l]);
        if (base[l] < 1) base[l] = 1;
        rem -= base[l];
    }
    while (rem > 0) { /* largest remainder, ties to the first layer */
        int best = 0;
        for (int l = 1; l < n; l++)
            if (share[l] - (double)base[l] > share[best] - (double)base[best]) best = l;
        base[best]++;
        rem--;
    }
    while (rem < 0) { /* layers raised to 1 are paid by the largest share */
        int best = -1;
        for (int l = 0; l < n; l++)
            if (base[l] > 1 && (best < 0 || base[l] > base[best])) best = l;
        AT_CHECK(best >= 0);
        base[best]--;
        rem++;
    }
    int total = 0;
    for (int l = 0; l < n; l++) {
        long kl_ = base[l], rin = kl[l].IC + kl[l].bias, bo = 1, bi = 1;
        for (long ko = 1; ko <= kl[l].OC && ko <= kl_; ko++) {
            long ki = kl_ / ko < rin ? kl_ / ko : rin;
            long pr = ko * ki, best = bo * bi;
            if (pr > best || (pr == best && labs(ko - ki) < labs(bo - bi))) {
                bo = ko;
                bi = ki;
            }
        }
        kl[l].k_out = (int)bo;
        kl[l].k_in = (int)bi;
        kl[l].col = (size_t)total;
        total += (int)(bo * bi);
    }
    free(base);
    free(share);
    return total;
}

/* Fill every size of f from the settings (no large allocation: only the
 * selection offsets and the kronecker layer list). Returns 0 or AT_EUSER. */
static int feat_setup(tda_feat *f, const eng_model *m, const char *const *layers, int n_layers,
                      eng_loss_kind loss, tda_proj_kind proj, int k, uint64_t seed, int cap,
                      size_t budget, at_err *err) {
    if (loss != ENG_LOSS_XENT && loss != ENG_LOSS_MARGIN)
        return at_err_set(err, AT_EUSER,
                          "training-data features need the cross-entropy loss or TRAK's "
                          "margin (loss kind %d): set the method's loss to one of them",
                          (int)loss);
    if (loss == ENG_LOSS_MARGIN && m->out_features < 2)
        return at_err_set(err, AT_EUSER,
                          "the margin log p_y - log(1 - p_y) needs at least 2 classes; the "
                          "model has %d output: use the cross-entropy loss",
                          m->out_features);
    if (!tda_proj_name(proj))
        return at_err_set(err, AT_EUSER,
                          "unknown projection %d: use none, gaussian, rademacher, sjlt or "
                          "kronecker",
                          (int)proj);
    if (proj != TDA_PROJ_NONE && k < 1)
        return at_err_set(err, AT_EUSER,
                          "projection dimension k is %d: set it to at least 1 (or the "
                          "projection to none)",
                          k);
    if (cap < 1)
        return at_err_set(err, AT_EUSER, "feature batch (cap) is %d: set it to at least 1", cap);
    if (eng_param_sel_layers(m, layers, n_layers, &f->sel, err)) return err->code;
    if (f->sel.n == 0)
        return at_err_set(err, AT_EUSER,
                          "the layer selection has no trainable parameters: select layers "
                          "with weights");
    f->p = f->sel.n;
    f->loss.kind = loss;
    f->loss.label_smoothing = 0.0;
    f->proj = proj;
    f->seed = seed;
    f->cap = cap;
    f->C = m->out_features;
    f->D = m->in_features;
    f->n_layers_model = m->n_layers;
    f->n_params_model = m->n_params;
    f->row_start = at_malloc(((size_t)f->sel.n_tensors + 1) * sizeof(size_t), "tda_feat");
    f->row_start[0] = 0;
    for (int q = 0; q < f->sel.n_tensors; q++)
        f->row_start[q + 1] = f->row_start[q] + m->tensors[f->sel.tensor[q]].numel;
    AT_CHECK(f->row_start[f->sel.n_tensors] == f->p);

    /* backward only down to the lowest selected layer when nothing above
     * it reads a layer below it */
    int lmin = m->tensors[f->sel.tensor[0]].layer;
    f->stop = lmin;
    for (int i = lmin + 1; i < m->n_layers; i++)
        for (int s = 0; s < m->layers[i].n_src; s++)
            if (m->layers[i].src[s] < lmin) f->stop = -1;

    if ((proj == TDA_PROJ_NONE || dense_kind(proj)) && f->p > (size_t)INT32_MAX)
        return at_err_set(err, AT_EUSER,
                          "%zu selected parameters are too many for projection %s (at most "
                          "2^31 - 1): choose the sjlt or kronecker projection or fewer layers",
                          f->p, tda_proj_name(proj));
    if (proj == TDA_PROJ_NONE) {
        f->k = (int)f->p;
    } else if (dense_kind(proj)) {
        f->k = k;
        f->chunk = FEAT_CHUNK_FLOATS / (size_t)k;
        if (f->chunk < 1) f->chunk = 1;
        if (f->chunk > f->p) f->chunk = f->p;
        f->stored = f->p <= budget / sizeof(float) / (size_t)k;
    } else if (proj == TDA_PROJ_SJLT) {
        f->k = k;
        f->s = k < TDA_SJLT_S ? k : TDA_SJLT_S;
        /* linear layers selected whole scatter d_o a_i directly; the rest
         * goes through eng_grad_per_example */
        f->sl = at_calloc((size_t)f->sel.n_tensors, sizeof(kron_layer), "tda_feat sjlt layers");
        f->rest_col = at_calloc((size_t)f->sel.n_tensors, sizeof(size_t), "tda_feat sjlt rest");
        f->rest.n_tensors = 0;
        f->rest.n = 0;
        for (int q = 0; q < f->sel.n_tensors;) {
            int li = m->tensors[f->sel.tensor[q]].layer;
            const eng_layer *L = &m->layers[li];
            int q1 = q;
            while (q1 < f->sel.n_tensors && m->tensors[f->sel.tensor[q1]].layer == li) q1++;
            if (L->kind == ENG_LAYER_LINEAR && f->sel.tensor[q] == L->tensor0 &&
                q1 - q == L->n_tensors) {
                kron_layer *l = &f->sl[f->n_sl++];
                l->layer = li;
                l->OC = L->out_features;
                l->IC = L->in_shape[L->in_ndim - 1];
                l->bias = q1 - q == 2;
                l->rows = (int)(L->in_numel / (size_t)l->IC);
                l->gcol = f->row_start[q];
                if (l->IC > f->max_ic) f->max_ic = l->IC;
            } else {
                for (int r = q; r < q1; r++) {
                    f->rest_col[f->rest.n_tensors] = f->row_start[r];
                    f->rest.tensor[f->rest.n_tensors++] = f->sel.tensor[r];
                    f->rest.n += m->tensors[f->sel.tensor[r]].numel;
                }
            }
            q = q1;
        }
    } else {
        /* kronecker: every selected layer is a linear or conv2d whose
         * weight (and bias) are selected whole */
        int nl = 0;
        for (int q = 0; q < f->sel.n_tensors; q++)
            if (q == 0 ||
                m->tensors[f->sel.tensor[q]].layer != m->tensors[f->sel.tensor[q - 1]].layer)
                nl++;
        f->kl = at_calloc((size_t)nl, sizeof(kron_layer), "tda_feat kron layers");
        f->n_kl = 0;
        for (int q = 0; q < f->sel.n_tensors;) {
            int li = m->tensors[f->sel.tensor[q]].layer;
            const eng_layer *L = &m->layers[li];
            int q1 = q;
            while (q1 < f->sel.n_tensors && m->tensors[f->sel.tensor[q1]].layer == li) q1++;
            if (L->kind != ENG_LAYER_LINEAR && L->kind != ENG_LAYER_CONV2D)
                return at_err_set(err, AT_EUSER,
                                  "projection kronecker needs linear or conv2d layers; layer "
                                  "'%s' is %s: select only linear/conv2d layers or use the "
                                  "gaussian, rademacher or sjlt projection",
                                  L->name, eng_layer_kind_name(L->kind));
            if (f->sel.tensor[q] != L->tensor0)
                return at_err_set(err, AT_EUSER,
                                  "projection kronecker needs the weight of layer '%s' "
                                  "selected: select the whole layer",
                                  L->name);
            kron_layer *l = &f->kl[f->n_kl++];
            l->layer = li;
            l->conv = L->kind == ENG_LAYER_CONV2D;
            l->bias = q1 - q == 2;
            l->gcol = f->row_start[q];
            if (l->conv) {
                l->OC = L->g.OC;
                l->IC = L->g.C * L->g.KH * L->g.KW;
                l->rows = L->g.OH * L->g.OW;
                l->g2 = L->g;
            } else {
                l->OC = L->out_features;
                l->IC = L->in_shape[L->in_ndim - 1];
                l->rows = (int)(L->in_numel / (size_t)l->IC);
            }
            q = q1;
        }
        if (k < f->n_kl)
            return at_err_set(err, AT_EUSER,
                              "projection dimension k = %d is below the number of selected "
                              "layers (%d) for the kronecker projection: raise k",
                              k, f->n_kl);
        f->k = kron_split(f->kl, f->n_kl, k);
        for (int i = 0; i < f->n_kl; i++) {
            kron_layer *l = &f->kl[i];
            size_t u, v, t;
            if (l->conv) {
                l->g2.OC = l->k_in;
                u = (size_t)l->k_out * l->rows;
                v = (size_t)cap * l->k_in * l->rows;
                size_t c = eng_conv2d_col_size(&l->g2);
                if (c > f->n_col) f->n_col = c;
            } else {
                u = (size_t)cap * l->rows * l->k_out;
                v = (size_t)cap * l->rows * l->k_in;
            }
            t = (size_t)l->k_out * l->IC;
            if (u > f->n_U) f->n_U = u;
            if (v > f->n_V) f->n_V = v;
            if (t > f->n_T) f->n_T = t;
        }
    }
    return 0;
}

/* Bytes of everything f allocates beyond the struct (the plan). */
static size_t feat_plan_bytes(const tda_feat *f, const eng_model *m) {
    eng_memory mem;
    eng_plan_memory(m, f->cap, ENG_F32, &mem);
    size_t b = mem.total + (size_t)f->cap * f->C * sizeof(float);
    b += ((size_t)f->sel.n_tensors + 1) * sizeof(size_t);
    if (dense_kind(f->proj)) b += (size_t)f->cap * f->p * sizeof(float);
    if (dense_kind(f->proj)) b += (f->stored ? f->p : f->chunk) * (size_t)f->k * sizeof(float);
    if (f->proj == TDA_PROJ_SJLT)
        b += f->p * (size_t)f->s * sizeof(uint32_t) + (size_t)f->k * sizeof(double) +
             (size_t)f->cap * f->rest.n * sizeof(float) +
             (size_t)f->sel.n_tensors * (sizeof(kron_layer) + sizeof(size_t)) +
             (size_t)f->max_ic * (sizeof(int) + sizeof(double));
    if (f->proj == TDA_PROJ_KRONECKER) {
        b += (size_t)f->n_kl * sizeof(kron_layer);
        for (int i = 0; i < f->n_kl; i++) {
            const kron_layer *l = &f->kl[i];
            b += ((size_t)l->OC * l->k_out + (size_t)(l->IC + l->bias) * l->k_in +
                  (l->conv ? (size_t)l->k_in * l->IC : 0)) *
                 sizeof(float);
        }
        b += (f->n_U + f->n_V + f->n_col + f->n_T) * sizeof(float);
    }
    return b;
}

static void feat_release(tda_feat *f) {
    if (!f) return;
    if (f->ws.acts) eng_workspace_free(&f->ws);
    for (int i = 0; f->kl && i < f->n_kl; i++) {
        free(f->kl[i].p_out);
        free(f->kl[i].p_in);
        free(f->kl[i].p_in_t);
    }
    free(f->kl);
    free(f->U);
    free(f->V);
    free(f->col);
    free(f->T);
    free(f->hash);
    free(f->acc);
    free(f->sl);
    free(f->rest_col);
    free(f->nz_i);
    free(f->nz_v);
    free(f->P);
    free(f->g);
    free(f->dlogits);
    free(f->row_start);
    free(f);
}

int tda_feat_plan(const eng_model *m, const char *const *layers, int n_layers, eng_loss_kind loss,
                  tda_proj_kind proj, int k, int cap, size_t budget_bytes, size_t *bytes, int *dim,
                  at_err *err) {
    AT_CHECK(m != NULL);
    tda_feat *f = at_calloc(1, sizeof(*f), "tda_feat");
    int rc = feat_setup(f, m, layers, n_layers, loss, proj, k, 0, cap, budget_bytes, err);
    if (!rc) {
        if (bytes) *bytes = sizeof(*f) + feat_plan_bytes(f, m);
        if (dim) *dim = f->k;
    }
    feat_release(f);
    return rc;
}

int tda_feat_new(tda_feat **out, const eng_model *m, const char *const *layers, int n_layers,
                 eng_loss_kind loss, tda_proj_kind proj, int k, uint64_t seed, int cap,
                 size_t budget_bytes, at_err *err) {
    AT_CHECK(out != NULL && m != NULL);
    *out = NULL;
    tda_feat *f = at_calloc(1, sizeof(*f), "tda_feat");
    int rc = feat_setup(f, m, layers, n_layers, loss, proj, k, seed, cap, budget_bytes, err);
    if (rc) {
        feat_release(f);
        return rc;
    }
    f->bytes = sizeof(*f) + feat_plan_bytes(f, m);
    eng_workspace_init(&f->ws, m, cap, ENG_F32);
    f->dlogits = at_malloc((size_t)cap * f->C * sizeof(float), "tda_feat dlogits");
    if (dense_kind(proj))
        f->g = at_malloc((size_t)cap * f->p * sizeof(float), "tda_feat per-example gradients");
    if (dense_kind(proj)) {
        size_t rows = f->stored ? f->p : f->chunk;
        f->P = at_malloc(rows * (size_t)f->k * sizeof(float), "tda_feat projection");
        if (f->stored) dense_rows(f, 0, f->p, f->P);
    } else if (proj == TDA_PROJ_SJLT) {
        f->hash = at_malloc(f->p * (size_t)f->s * sizeof(uint32_t), "tda_feat sjlt table");
        f->acc = at_malloc((size_t)f->k * sizeof(double), "tda_feat sjlt sums");
        f->g = at_malloc(((size_t)cap * f->rest.n + 1) * sizeof(float), "tda_feat gradients");
        f->nz_i = at_malloc(((size_t)f->max_ic + 1) * sizeof(int), "tda_feat sjlt nonzeros");
        f->nz_v = at_malloc(((size_t)f->max_ic + 1) * sizeof(double), "tda_feat sjlt nonzeros");
        sjlt_table(f);
    } else if (proj == TDA_PROJ_KRONECKER) {
        for (int i = 0; i < f->n_kl; i++) {
            kron_layer *l = &f->kl[i];
            l->p_out = at_malloc((size_t)l->OC * l->k_out * sizeof(float), "tda_feat P_out");
            l->p_in =
                at_malloc((size_t)(l->IC + l->bias) * l->k_in * sizeof(float), "tda_feat P_in");
            if (l->conv)
                l->p_in_t = at_malloc((size_t)l->k_in * l->IC * sizeof(float), "tda_feat P_in");
            kron_factors(f, m, l);
        }
        f->U = at_malloc((f->n_U ? f->n_U : 1) * sizeof(float), "tda_feat kron U");
        f->V = at_malloc((f->n_V ? f->n_V : 1) * sizeof(float), "tda_feat kron V");
        f->col = at_malloc((f->n_col ? f->n_col : 1) * sizeof(float), "tda_feat kron col");
        f->T = at_malloc((f->n_T ? f->n_T : 1) * sizeof(float), "tda_feat kron T");
    }
    *out = f;
    return 0;
}

int tda_feat_dim(const tda_feat *f) { return f->k; }
size_t tda_feat_nparams(const tda_feat *f) { return f->p; }
size_t tda_feat_bytes(const tda_feat *f) { return f->bytes; }
int tda_feat_stored(const tda_feat *f) { return dense_kind(f->proj) && f->stored; }
const eng_param_sel *tda_feat_sel(const tda_feat *f) { return &f->sel; }
int tda_feat_kron_layers(const tda_feat *f) { return f->n_kl; }

int tda_feat_kron_factors(const tda_feat *f, int i, const float **p_out, int *rows_out, int *k_out,
                          const float **p_in, int *rows_in, int *k_in, int *col, int *layer) {
    if (f->proj != TDA_PROJ_KRONECKER || i < 0 || i >= f->n_kl) return -1;
    const kron_layer *l = &f->kl[i];
    if (p_out) *p_out = l->p_out;
    if (rows_out) *rows_out = l->OC;
    if (k_out) *k_out = l->k_out;
    if (p_in) *p_in = l->p_in;
    if (rows_in) *rows_in = l->IC + l->bias;
    if (k_in) *k_in = l->k_in;
    if (col) *col = (int)l->col;
    if (layer) *layer = l->layer;
    return 0;
}

void tda_feat_free(tda_feat *f) { feat_release(f); }

/* ---------------------------------------------------------- projection */

/* out (B, k) = g (B, p) @ P, as sgemms over fixed chunks of P's rows. */
static void project_dense(tda_feat *f, const float *g, int B, float *out) {
    const int k = f->k;
    for (size_t c0 = 0; c0 < f->p; c0 += f->chunk) {
        size_t rows = f->p - c0 < f->chunk ? f->p - c0 : f->chunk;
        const float *Pc = f->P + c0 * (size_t)k;
        if (!f->stored) {
            dense_rows(f, c0, c0 + rows, f->P);
            Pc = f->P;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k, (int)rows, 1.0f, g + c0,
                    (int)f->p, Pc, k, c0 ? 1.0f : 0.0f, out, k);
    }
}

/* acc += the sjlt of value v at parameter row r. */
static inline void sjlt_add(double *acc, const uint32_t *h, int s, double v) {
    uint64_t vb;
    memcpy(&vb, &v, sizeof vb);
    for (int b = 0; b < s; b++) { /* the sign by flipping v's sign bit: no branch */
        const uint64_t sb = vb ^ ((uint64_t)(h[b] >> 31) << 63);
        double sv;
        memcpy(&sv, &sb, sizeof sv);
        acc[h[b] & 0x7fffffffu] += sv;
    }
}

/* SJLT features of a batch after the backward: linear layers scatter
 * d_o a_i (exact in float64) over the nonzeros of dout and a, position by
 * position, without forming G; the other tensors from f->g (B, rest.n). */
static void sjlt_batch(tda_feat *f, const eng_model *m, const float *x, int B, float *out) {
    const int k = f->k, s = f->s;
    const double sc = 1.0 / sqrt((double)s);
    double *acc = f->acc;
    for (int n = 0; n < B; n++) {
        memset(acc, 0, (size_t)k * sizeof(double));
        for (int i = 0; i < f->n_sl; i++) {
            const kron_layer *l = &f->sl[i];
            const eng_layer *L = &m->layers[l->layer];
            const float *in = L->src[0] == ENG_SRC_INPUT ? x : eng_ws_act(&f->ws, L->src[0]);
            const float *dout = eng_ws_grad(&f->ws, l->layer);
            for (int r = 0; r < l->rows; r++) {
                const float *a = in + ((size_t)n * l->rows + r) * l->IC;   /* (IC) */
                const float *d = dout + ((size_t)n * l->rows + r) * l->OC; /* (OC) */
                int nz = 0;
                for (int c = 0; c < l->IC; c++)
                    if (a[c] != 0.0f) {
                        f->nz_i[nz] = c;
                        f->nz_v[nz++] = a[c];
                    }
                for (int o = 0; o < l->OC; o++) {
                    const double dv = d[o];
                    if (dv == 0.0) continue;
                    const uint32_t *h = f->hash + (l->gcol + (size_t)o * l->IC) * s;
                    for (int t = 0; t < nz; t++)
                        sjlt_add(acc, h + (size_t)f->nz_i[t] * s, s, dv * f->nz_v[t]);
                    if (l->bias)
                        sjlt_add(acc, f->hash + (l->gcol + (size_t)l->OC * l->IC + o) * s, s, dv);
                }
            }
        }
        const float *gn = f->g + (size_t)n * f->rest.n; /* (rest.n) */
        size_t rc = 0;
        for (int q = 0; q < f->rest.n_tensors; q++) {
            const size_t ne = m->tensors[f->rest.tensor[q]].numel;
            for (size_t e = 0; e < ne; e++) {
                const double v = gn[rc + e];
                if (v != 0.0) sjlt_add(acc, f->hash + (f->rest_col[q] + e) * s, s, v);
            }
            rc += ne;
        }
        float *o = out + (size_t)n * k;
        for (int j = 0; j < k; j++) o[j] = (float)(acc[j] * sc);
    }
}

/* out (B, k) = the sjlt of g (B, p): float64 sums, zeros skipped. */
static void project_sjlt(tda_feat *f, const float *g, int64_t B, float *out) {
    const int k = f->k, s = f->s;
    const double sc = 1.0 / sqrt((double)s);
    double *acc = f->acc;
    for (int64_t n = 0; n < B; n++) {
        const float *gr = g + (size_t)n * f->p; /* (p) */
        memset(acc, 0, (size_t)k * sizeof(double));
        for (size_t i = 0; i < f->p; i++) {
            const double v = gr[i];
            if (v == 0.0) continue;
            sjlt_add(acc, f->hash + i * (size_t)s, s, v);
        }
        float *o = out + (size_t)n * k;
        for (int j = 0; j < k; j++) o[j] = (float)(acc[j] * sc);
    }
}

/* Kronecker features of a batch of B rows after the backward (ws holds
 * every layer's input and output gradient): out (B, k). */
static void kron_batch(tda_feat *f, const eng_model *m, const float *x, int B, float *out) {
    const int k = f->k;
    for (int i = 0; i < f->n_kl; i++) {
        const kron_layer *l = &f->kl[i];
        const eng_layer *L = &m->layers[l->layer];
        const float *in = L->src[0] == ENG_SRC_INPUT ? x : eng_ws_act(&f->ws, L->src[0]);
        const float *dout = eng_ws_grad(&f->ws, l->layer);
        const int ko = l->k_out, ki = l->k_in, R = l->rows;
        if (l->conv) {
            /* V_n (k_in, P) = P_in^T col_n: a convolution with P_in as filters */
            eng_conv2d_forward(f->V, in, l->p_in_t, l->bias ? l->p_in + (size_t)l->IC * ki : NULL,
                               &l->g2, B, f->col);
            for (int n = 0; n < B; n++) {
                /* U_n (k_out, P) = P_out^T dout_n; F_n = U_n V_n^T */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ko, R, l->OC, 1.0f, l->p_out,
                            ko, dout + (size_t)n * l->OC * R, R, 0.0f, f->U, R);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ko, ki, R, 1.0f, f->U, R,
                            f->V + (size_t)n * ki * R, R, 0.0f, out + (size_t)n * k + l->col, ki);
            }
            continue;
        }
        const int NR = B * R;
        /* U (B*R, k_out) = dout P_out; V (B*R, k_in) = [in, 1] P_in */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NR, ko, l->OC, 1.0f, dout, l->OC,
                    l->p_out, ko, 0.0f, f->U, ko);
        if (l->bias) {
            const float *pb = l->p_in + (size_t)l->IC * ki; /* (k_in) */
            for (int r = 0; r < NR; r++) memcpy(f->V + (size_t)r * ki, pb, (size_t)ki * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NR, ki, l->IC, 1.0f, in, l->IC,
                    l->p_in, ki, l->bias ? 1.0f : 0.0f, f->V, ki);
        for (int n = 0; n < B; n++) {
            float *o = out + (size_t)n * k + l->col; /* (k_out, k_in) */
            if (R == 1) {
                const float *u = f->U + (size_t)n * ko, *v = f->V + (size_t)n * ki;
                for (int a = 0; a < ko; a++)
                    for (int b = 0; b < ki; b++) o[(size_t)a * ki + b] = u[a] * v[b];
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ko, ki, R, 1.0f,
                            f->U + (size_t)n * R * ko, ko, f->V + (size_t)n * R * ki, ki, 0.0f, o,
                            ki);
            }
        }
    }
}

/* Kronecker projection of formed gradients g (B, p): per layer
 * F = P_out^T W P_in[:IC] + (P_out^T b) (x) P_in[IC]. */
static void kron_project(tda_feat *f, const float *g, int64_t B, float *out) {
    const int k = f->k;
    for (int64_t n = 0; n < B; n++)
        for (int i = 0; i < f->n_kl; i++) {
            const kron_layer *l = &f->kl[i];
            const int ko = l->k_out, ki = l->k_in, IC = l->IC, OC = l->OC;
            const float *W = g + (size_t)n * f->p + l->gcol; /* (OC, IC), then b (OC) */
            float *o = out + (size_t)n * k + l->col;         /* (k_out, k_in) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ko, IC, OC, 1.0f, l->p_out, ko, W,
                        IC, 0.0f, f->T, IC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ko, ki, IC, 1.0f, f->T, IC,
                        l->p_in, ki, 0.0f, o, ki);
            if (l->bias) {
                const float *bg = W + (size_t)OC * IC, *pb = l->p_in + (size_t)IC * ki;
                for (int a = 0; a < ko; a++) {
                    double tb = 0.0;
                    for (int c = 0; c < OC; c++) tb += (double)l->p_out[(size_t)c * ko + a] * bg[c];
                    for (int b = 0; b < ki; b++) o[(size_t)a * ki + b] += (float)(tb * pb[b]);
                }
            }
        }
}

void tda_feat_project(tda_feat *f, const float *g, int64_t N, float *out) {
    AT_CHECK(f != NULL && N >= 0 && (N == 0 || (g != NULL && out != NULL)));
    switch (f->proj) {
    case TDA_PROJ_NONE:
        memcpy(out, g, (size_t)N * f->p * sizeof(float));
        break;
    case TDA_PROJ_GAUSSIAN:
    case TDA_PROJ_RADEMACHER:
        for (int64_t n0 = 0; n0 < N; n0 += f->cap) {
            int B = (int)(N - n0 < f->cap ? N - n0 : f->cap);
            project_dense(f, g + (size_t)n0 * f->p, B, out + (size_t)n0 * f->k);
        }
        break;
    case TDA_PROJ_SJLT:
        project_sjlt(f, g, N, out);
        break;
    case TDA_PROJ_KRONECKER:
        kron_project(f, g, N, out);
        break;
    }
}

/* ------------------------------------------------------------- compute */

void tda_feat_compute(tda_feat *f, const eng_model *m, const float *x, const int32_t *labels,
                      int64_t N, float *out, double *prob) {
    AT_CHECK(f != NULL && m != NULL && N >= 0);
    AT_CHECK(m->n_params == f->n_params_model && m->n_layers == f->n_layers_model &&
             m->out_features == f->C && m->in_features == f->D);
    AT_CHECK(N == 0 || (x != NULL && labels != NULL && out != NULL));
    const int C = f->C, k = f->k;
    for (int64_t n0 = 0; n0 < N; n0 += f->cap) {
        const int B = (int)(N - n0 < f->cap ? N - n0 : f->cap);
        const float *xb = x + (size_t)n0 * f->D;
        const int32_t *yb = labels + n0;
        float *ob = out + (size_t)n0 * k;
        for (int n = 0; n < B; n++) AT_CHECK(yb[n] >= 0 && yb[n] < C);
        const float *z = eng_model_forward(m, &f->ws, xb, B); /* (B, C) */
        if (prob)
            for (int n = 0; n < B; n++) {
                const float *zn = z + (size_t)n * C;
                double mx = zn[0], s = 0.0;
                for (int c = 1; c < C; c++) mx = zn[c] > mx ? zn[c] : mx;
                for (int c = 0; c < C; c++) s += exp((double)zn[c] - mx);
                prob[n0 + n] = exp((double)zn[yb[n]] - mx) / s;
            }
        memset(f->dlogits, 0, (size_t)B * C * sizeof(float));
        eng_loss_backward(&f->loss, f->dlogits, z, yb, NULL, B, C, 1.0);
        eng_backward_to(m, &f->ws, m->params, xb, f->dlogits, B, f->stop, NULL, NULL);
        switch (f->proj) {
        case TDA_PROJ_NONE:
            eng_grad_per_example(m, &f->ws, m->params, xb, B, &f->sel, ob);
            break;
        case TDA_PROJ_GAUSSIAN:
        case TDA_PROJ_RADEMACHER:
            eng_grad_per_example(m, &f->ws, m->params, xb, B, &f->sel, f->g);
            project_dense(f, f->g, B, ob);
            break;
        case TDA_PROJ_SJLT:
            if (f->rest.n_tensors)
                eng_grad_per_example(m, &f->ws, m->params, xb, B, &f->rest, f->g);
            sjlt_batch(f, m, xb, B, ob);
            break;
        case TDA_PROJ_KRONECKER:
            kron_batch(f, m, xb, B, ob);
            break;
        }
    }
}
