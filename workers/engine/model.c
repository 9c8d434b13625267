/* model.c — building models: layer kinds, shape inference and checks,
 * parameter tensors, initialisation, memory plans and workspaces.
 * See engine.h. The generic kernels and drivers are in *.inc. */
#define _GNU_SOURCE
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ kind names */

static const char *const kind_names[ENG_LAYER_KIND_END] = {
    [ENG_LAYER_LINEAR] = "linear",       [ENG_LAYER_RELU] = "relu",
    [ENG_LAYER_GELU] = "gelu",           [ENG_LAYER_GELU_TANH] = "gelu_tanh",
    [ENG_LAYER_TANH] = "tanh",           [ENG_LAYER_SIGMOID] = "sigmoid",
    [ENG_LAYER_SILU] = "silu",           [ENG_LAYER_SOFTPLUS] = "softplus",
    [ENG_LAYER_CONV2D] = "conv2d",       [ENG_LAYER_MAXPOOL2D] = "maxpool2d",
    [ENG_LAYER_AVGPOOL2D] = "avgpool2d", [ENG_LAYER_GAP] = "global_avgpool",
    [ENG_LAYER_BATCHNORM1D] = "batchnorm1d", [ENG_LAYER_BATCHNORM2D] = "batchnorm2d",
    [ENG_LAYER_LAYERNORM] = "layernorm", [ENG_LAYER_EMBEDDING] = "embedding",
    [ENG_LAYER_POSEMB] = "pos_embedding", [ENG_LAYER_ATTENTION] = "attention",
    [ENG_LAYER_DROPOUT] = "dropout",     [ENG_LAYER_FLATTEN] = "flatten",
    [ENG_LAYER_SOFTMAX] = "softmax",     [ENG_LAYER_LOG_SOFTMAX] = "log_softmax",
    [ENG_LAYER_ADD] = "add",             [ENG_LAYER_SEQ_MEAN] = "seq_mean",
};

const char *eng_layer_kind_name(eng_layer_kind k) {
    if ((int)k <= 0 || k >= ENG_LAYER_KIND_END) return NULL;
    return kind_names[k];
}

int eng_layer_kind_parse(const char *name, eng_layer_kind *k) {
    for (int i = 1; i < ENG_LAYER_KIND_END; i++)
        if (kind_names[i] && strcmp(kind_names[i], name) == 0) {
            *k = (eng_layer_kind)i;
            return 0;
        }
    return -1;
}

const char *eng_layer_kind_list(void) {
    static char list[512];
    if (!list[0])
        for (int i = 1; i < ENG_LAYER_KIND_END; i++) {
            if (i > 1) strcat(list, ", ");
            strcat(list, kind_names[i]);
        }
    return list;
}

void eng_shape_text(const int *shape, int n, char *out, size_t cap) {
    size_t len = (size_t)snprintf(out, cap, "(");
    for (int d = 0; d < n && len < cap; d++)
        len += (size_t)snprintf(out + len, cap - len, d ? ", %d" : "%d", shape[d]);
    if (len < cap) snprintf(out + len, cap - len, ")");
}

static size_t numel(const int *shape, int n) {
    size_t e = 1;
    for (int d = 0; d < n; d++) e *= (size_t)shape[d];
    return e;
}

/* ------------------------------------------------------------- building */

/* "layer 'conv1' (#3, conv2d): " */
#define LFMT "layer '%s' (#%d, %s): "
#define LARG(L, i) (L)->name, (i), eng_layer_kind_name((L)->kind)

#define MAX_PARAMS 4611686018427387904.0 /* 2^62 elements */

/* Append a tensor; its size is summed in float64 first, so absurd shapes
 * from a file are refused instead of wrapping around. */
static int add_tensor(eng_model *m, int layer, const char *suffix, int trainable, int ndim,
                      int64_t d0, int64_t d1, int64_t d2, int64_t d3, at_err *err) {
    eng_tensor *t = &m->tensors[m->n_tensors++];
    const eng_layer *L = &m->layers[layer];
    snprintf(t->name, sizeof t->name, "%s.%s", L->name, suffix);
    t->layer = layer;
    t->ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    double e = 1.0;
    for (int k = 0; k < ndim; k++) {
        t->shape[k] = d[k];
        e *= (double)d[k];
    }
    if (e + (double)m->n_params > MAX_PARAMS)
        return at_err_set(err, AT_EUSER, LFMT "tensor %s has %.4g elements; the model would "
                                            "exceed 2^62 parameters",
                          LARG(L, layer), t->name, e);
    t->numel = (size_t)e;
    t->trainable = trainable;
    t->off = m->n_params;
    m->n_params += t->numel;
    return 0;
}

/* Output size of a conv/pool along one axis; <= 0 if the window does not fit. */
static int window_out(int in, int k, int s, int p, int d) {
    int span = d * (k - 1) + 1;
    if (in + 2 * p < span) return 0;
    return (in + 2 * p - span) / s + 1;
}

/* Fill L->g for a conv or pool; returns 0 or AT_EUSER. */
static int build_window(eng_layer *L, int i, int pool, at_err *err) {
    eng_geom2d *g = &L->g;
    g->C = L->in_shape[0];
    g->H = L->in_shape[1];
    g->W = L->in_shape[2];
    g->KH = L->kernel[0];
    g->KW = L->kernel[1];
    if (g->KH < 1 || g->KW < 1)
        return at_err_set(err, AT_EUSER, LFMT "kernel is %dx%d; expected >= 1", LARG(L, i),
                          g->KH, g->KW);
    g->SH = L->stride[0] ? L->stride[0] : (pool ? g->KH : 1);
    g->SW = L->stride[1] ? L->stride[1] : (pool ? g->KW : 1);
    g->DH = L->dilation[0] ? L->dilation[0] : 1;
    g->DW = L->dilation[1] ? L->dilation[1] : 1;
    g->PH = L->padding[0];
    g->PW = L->padding[1];
    if (g->SH < 1 || g->SW < 1 || g->DH < 1 || g->DW < 1 || g->PH < 0 || g->PW < 0)
        return at_err_set(err, AT_EUSER,
                          LFMT "stride %dx%d, dilation %dx%d, padding %dx%d; expected "
                               "stride and dilation >= 1, padding >= 0",
                          LARG(L, i), g->SH, g->SW, g->DH, g->DW, g->PH, g->PW);
    if (L->kind == ENG_LAYER_AVGPOOL2D && (g->DH != 1 || g->DW != 1))
        return at_err_set(err, AT_EUSER, LFMT "dilation %dx%d; avgpool2d has none (PyTorch "
                                            "neither)",
                          LARG(L, i), g->DH, g->DW);
    if (pool && (2 * g->PH > g->KH || 2 * g->PW > g->KW))
        return at_err_set(err, AT_EUSER,
                          LFMT "padding %dx%d is more than half the kernel %dx%d "
                               "(PyTorch refuses it too)",
                          LARG(L, i), g->PH, g->PW, g->KH, g->KW);
    g->OH = window_out(g->H, g->KH, g->SH, g->PH, g->DH);
    g->OW = window_out(g->W, g->KW, g->SW, g->PW, g->DW);
    if (g->OH < 1 || g->OW < 1)
        return at_err_set(err, AT_EUSER,
                          LFMT "kernel %dx%d (dilation %dx%d, padding %dx%d) does not fit "
                               "the input (%d, %d, %d)",
                          LARG(L, i), g->KH, g->KW, g->DH, g->DW, g->PH, g->PW, g->C,
                          g->H, g->W);
    g->OC = pool ? g->C : L->out_features;
    g->count_include_pad = L->count_include_pad;
    L->out_ndim = 3;
    L->out_shape[0] = g->OC;
    L->out_shape[1] = g->OH;
    L->out_shape[2] = g->OW;
    return 0;
}

static int expect_ndim(const eng_layer *L, int i, int lo, int hi, const char *what,
                       at_err *err) {
    if (L->in_ndim >= lo && L->in_ndim <= hi) return 0;
    char s[64];
    eng_shape_text(L->in_shape, L->in_ndim, s, sizeof s);
    return at_err_set(err, AT_EUSER, LFMT "expects input %s, got %s", LARG(L, i), what, s);
}

#define TENSOR(sfx, trainable, nd, d0, d1, d2, d3)                                    \
    do {                                                                            \
        if ((rc = add_tensor(m, i, sfx, trainable, nd, d0, d1, d2, d3, err))) return rc; \
    } while (0)

/* Shapes, tensors, cache and scratch sizes of layer i. */
static int build_layer(eng_model *m, int i, at_err *err) {
    eng_layer *L = &m->layers[i];
    int rc = 0;
    /* pointwise layers keep the shape */
    L->out_ndim = L->in_ndim;
    memcpy(L->out_shape, L->in_shape, sizeof L->out_shape);
    int last = L->in_shape[L->in_ndim - 1];
    switch (L->kind) {
    case ENG_LAYER_LINEAR:
        if (L->out_features < 1)
            return at_err_set(err, AT_EUSER, LFMT "out_features is %d; expected >= 1",
                              LARG(L, i), L->out_features);
        L->out_shape[L->in_ndim - 1] = L->out_features;
        TENSOR("weight", 1, 2, L->out_features, last, 0, 0);
        if (L->bias) TENSOR("bias", 1, 1, L->out_features, 0, 0, 0);
        break;
    case ENG_LAYER_RELU: case ENG_LAYER_GELU: case ENG_LAYER_GELU_TANH:
    case ENG_LAYER_TANH: case ENG_LAYER_SIGMOID: case ENG_LAYER_SILU:
    case ENG_LAYER_SOFTPLUS: case ENG_LAYER_DROPOUT:
    case ENG_LAYER_SOFTMAX: case ENG_LAYER_LOG_SOFTMAX:
        if (L->kind == ENG_LAYER_DROPOUT && !(L->p >= 0.0 && L->p < 1.0))
            return at_err_set(err, AT_EUSER, LFMT "p is %g; expected 0 <= p < 1",
                              LARG(L, i), L->p);
        break;
    case ENG_LAYER_CONV2D:
        if ((rc = expect_ndim(L, i, 3, 3, "(C, H, W)", err))) return rc;
        if (L->out_features < 1)
            return at_err_set(err, AT_EUSER, LFMT "out_channels is %d; expected >= 1",
                              LARG(L, i), L->out_features);
        if ((rc = build_window(L, i, 0, err))) return rc;
        if ((double)L->g.C * L->g.KH * L->g.KW * L->g.OH * L->g.OW > 1099511627776.0)
            return at_err_set(err, AT_EUSER, LFMT "its im2col matrix would exceed 2^40 elements",
                              LARG(L, i));
        TENSOR("weight", 1, 4, L->out_features, L->g.C, L->g.KH, L->g.KW);
        if (L->bias) TENSOR("bias", 1, 1, L->out_features, 0, 0, 0);
        L->scratch = eng_conv2d_col_size(&L->g);
        break;
    case ENG_LAYER_MAXPOOL2D:
    case ENG_LAYER_AVGPOOL2D:
        if ((rc = expect_ndim(L, i, 3, 3, "(C, H, W)", err))) return rc;
        if ((rc = build_window(L, i, 1, err))) return rc;
        /* the winners, for the backward (as numbers: exact in float32 for
         * planes below 2^24 elements; larger ones are recomputed) */
        if (L->kind == ENG_LAYER_MAXPOOL2D && (size_t)L->g.H * L->g.W < ((size_t)1 << 24))
            L->aux = (size_t)L->g.C * L->g.OH * L->g.OW;
        break;
    case ENG_LAYER_GAP:
        if ((rc = expect_ndim(L, i, 3, 3, "(C, H, W)", err))) return rc;
        L->out_ndim = 1;
        break;
    case ENG_LAYER_BATCHNORM1D:
    case ENG_LAYER_BATCHNORM2D: {
        int two = L->kind == ENG_LAYER_BATCHNORM2D;
        if ((rc = expect_ndim(L, i, two ? 3 : 1, two ? 3 : 2, two ? "(C, H, W)" : "(C) or (C, L)",
                              err)))
            return rc;
        int C = L->in_shape[0];
        if (L->affine) {
            TENSOR("weight", 1, 1, C, 0, 0, 0);
            TENSOR("bias", 1, 1, C, 0, 0, 0);
        }
        TENSOR("running_mean", 0, 1, C, 0, 0, 0);
        TENSOR("running_var", 0, 1, C, 0, 0, 0);
        break;
    }
    case ENG_LAYER_LAYERNORM:
        if (L->affine) {
            TENSOR("weight", 1, 1, last, 0, 0, 0);
            TENSOR("bias", 1, 1, last, 0, 0, 0);
        }
        L->aux = 2 * (L->in_numel / (size_t)last);
        break;
    case ENG_LAYER_EMBEDDING:
        if (i != 0 || L->src[0] != ENG_SRC_INPUT)
            return at_err_set(err, AT_EUSER,
                              LFMT "an embedding must be the first layer and read the "
                                   "model input (token ids)",
                              LARG(L, i));
        if ((rc = expect_ndim(L, i, 1, 1, "token ids (T)", err))) return rc;
        if (L->num_embeddings < 1 || L->out_features < 1)
            return at_err_set(err, AT_EUSER,
                              LFMT "num_embeddings %d, embedding_dim %d; expected >= 1",
                              LARG(L, i), L->num_embeddings, L->out_features);
        L->out_ndim = 2;
        L->out_shape[1] = L->out_features;
        TENSOR("weight", 1, 2, L->num_embeddings, L->out_features, 0, 0);
        break;
    case ENG_LAYER_POSEMB:
        if ((rc = expect_ndim(L, i, 2, 2, "(T, E)", err))) return rc;
        if (L->in_shape[0] > L->num_embeddings)
            return at_err_set(err, AT_EUSER, LFMT "sequence length %d exceeds max_len %d",
                              LARG(L, i), L->in_shape[0], L->num_embeddings);
        TENSOR("weight", 1, 2, L->num_embeddings, L->in_shape[1], 0, 0);
        break;
    case ENG_LAYER_ATTENTION: {
        if ((rc = expect_ndim(L, i, 2, 2, "(T, E)", err))) return rc;
        int T = L->in_shape[0], E = L->in_shape[1];
        if (L->heads < 1 || E % L->heads != 0)
            return at_err_set(err, AT_EUSER,
                              LFMT "heads is %d; expected >= 1 and a divisor of the "
                                   "embedding size %d",
                              LARG(L, i), L->heads, E);
        TENSOR("in_proj_weight", 1, 2, 3 * (int64_t)E, E, 0, 0);
        if (L->bias) TENSOR("in_proj_bias", 1, 1, 3 * (int64_t)E, 0, 0, 0);
        TENSOR("out_proj.weight", 1, 2, E, E, 0, 0);
        if (L->bias) TENSOR("out_proj.bias", 1, 1, E, 0, 0, 0);
        L->aux = eng_attention_cache_size(T, E, L->heads);
        L->scratch = eng_attention_scratch_size(T, E, L->heads);
        break;
    }
    case ENG_LAYER_FLATTEN:
        L->out_ndim = 1;
        L->out_shape[0] = (int)L->in_numel;
        break;
    case ENG_LAYER_ADD: {
        const eng_layer *B = L->src[1] == ENG_SRC_INPUT ? NULL : &m->layers[L->src[1]];
        int bnd = B ? B->out_ndim : m->in_ndim;
        const int *bsh = B ? B->out_shape : m->in_shape;
        if (bnd != L->in_ndim || memcmp(bsh, L->in_shape, (size_t)bnd * sizeof(int)) != 0) {
            char a[64], b[64];
            eng_shape_text(L->in_shape, L->in_ndim, a, sizeof a);
            eng_shape_text(bsh, bnd, b, sizeof b);
            return at_err_set(err, AT_EUSER, LFMT "adds inputs of different shapes %s and %s",
                              LARG(L, i), a, b);
        }
        break;
    }
    case ENG_LAYER_SEQ_MEAN:
        if ((rc = expect_ndim(L, i, 2, 2, "(T, E)", err))) return rc;
        L->out_ndim = 1;
        L->out_shape[0] = L->in_shape[1];
        break;
    default:
        return at_err_set(err, AT_EUSER, "layer %d: unknown kind %d", i, (int)L->kind);
    }
    if (L->kind == ENG_LAYER_BATCHNORM1D || L->kind == ENG_LAYER_BATCHNORM2D ||
        L->kind == ENG_LAYER_LAYERNORM)
        if (L->eps == 0.0) L->eps = 1e-5;
    if ((L->kind == ENG_LAYER_BATCHNORM1D || L->kind == ENG_LAYER_BATCHNORM2D ||
         L->kind == ENG_LAYER_LAYERNORM) && !(L->eps > 0.0))
        return at_err_set(err, AT_EUSER, LFMT "eps is %g; expected > 0", LARG(L, i), L->eps);
    L->n_tensors = m->n_tensors - L->tensor0;
    double oe = 1.0;
    for (int d = 0; d < L->out_ndim; d++) oe *= (double)L->out_shape[d];
    if (oe > 2147483647.0)
        return at_err_set(err, AT_EUSER, LFMT "output has %.4g elements per example; at most "
                                            "2^31-1",
                          LARG(L, i), oe);
    L->out_numel = numel(L->out_shape, L->out_ndim);
    for (int d = 0; d < L->out_ndim; d++)
        if (L->out_shape[d] < 1)
            return at_err_set(err, AT_EUSER, LFMT "output dim %d is %d", LARG(L, i), d,
                              L->out_shape[d]);
    return 0;
}

/* Resolve layer i's sources and copy in its input shape. */
static int wire_layer(eng_model *m, int i, at_err *err) {
    eng_layer *L = &m->layers[i];
    int need = L->kind == ENG_LAYER_ADD ? 2 : 1;
    if (L->n_src == 0) {
        L->n_src = 1;
        L->src[0] = i - 1; /* -1 = ENG_SRC_INPUT for layer 0 */
    }
    if (L->n_src != need)
        return at_err_set(err, AT_EUSER, LFMT "takes %d input%s, got %d", LARG(L, i), need,
                          need == 1 ? "" : "s", L->n_src);
    for (int s = 0; s < L->n_src; s++)
        if (L->src[s] < ENG_SRC_INPUT || L->src[s] >= i)
            return at_err_set(err, AT_EUSER,
                              LFMT "input %d is layer #%d; expected an earlier layer or "
                                   "the model input",
                              LARG(L, i), s, L->src[s]);
    if (L->src[0] == ENG_SRC_INPUT) {
        L->in_ndim = m->in_ndim;
        memcpy(L->in_shape, m->in_shape, sizeof L->in_shape);
    } else {
        const eng_layer *P = &m->layers[L->src[0]];
        L->in_ndim = P->out_ndim;
        memcpy(L->in_shape, P->out_shape, sizeof L->in_shape);
    }
    L->in_numel = numel(L->in_shape, L->in_ndim);
    return 0;
}

int eng_model_build(eng_model *m, const eng_layer *specs, int n, const int *in_shape,
                    int in_ndim, at_err *err) {
    memset(m, 0, sizeof *m);
    if (n < 1) return at_err_set(err, AT_EUSER, "model has no layers");
    if (n > ENG_MAX_LAYERS)
        return at_err_set(err, AT_EUSER, "model has %d layers; at most %d are supported", n,
                          ENG_MAX_LAYERS);
    if (in_ndim < 1 || in_ndim > ENG_MAX_DIMS)
        return at_err_set(err, AT_EUSER, "model input has %d dims; expected 1 to %d", in_ndim,
                          ENG_MAX_DIMS);
    size_t d_in = 1;
    for (int d = 0; d < in_ndim; d++) {
        if (in_shape[d] < 1)
            return at_err_set(err, AT_EUSER, "model input dim %d is %d; expected >= 1", d,
                              in_shape[d]);
        d_in *= (size_t)in_shape[d];
    }
    if (d_in > 2147483647u)
        return at_err_set(err, AT_EUSER, "model input has %zu elements; at most 2^31-1", d_in);
    m->in_ndim = in_ndim;
    memcpy(m->in_shape, in_shape, (size_t)in_ndim * sizeof(int));
    m->in_features = (int)d_in;
    m->layers = at_calloc((size_t)n, sizeof(eng_layer), "model layers");
    m->tensors = at_calloc((size_t)n * 4 + 1, sizeof(eng_tensor), "model tensors");
    m->n_layers = n;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        eng_layer *L = &m->layers[i];
        *L = specs[i];
        if (!L->name[0]) snprintf(L->name, sizeof L->name, "layers.%d", i);
        if (!eng_layer_kind_name(L->kind)) {
            rc = at_err_set(err, AT_EUSER, "layer %d: unknown kind %d", i, (int)L->kind);
            break;
        }
        for (int k = 0; k < i && !rc; k++)
            if (strcmp(m->layers[k].name, L->name) == 0)
                rc = at_err_set(err, AT_EUSER, LFMT "the name is also layer #%d's",
                                LARG(L, i), k);
        L->tensor0 = m->n_tensors;
        if (!rc) rc = wire_layer(m, i, err);
        if (!rc) rc = build_layer(m, i, err);
    }
    if (!rc) {
        const eng_layer *last = &m->layers[n - 1];
        if (last->out_numel > 2147483647u)
            rc = at_err_set(err, AT_EUSER, "model output has %zu elements", last->out_numel);
        m->out_features = (int)last->out_numel;
        m->token_input = m->layers[0].kind == ENG_LAYER_EMBEDDING;
        for (int i = 0; i < n; i++)
            if (m->layers[i].kind == ENG_LAYER_EMBEDDING) m->vocab = m->layers[i].num_embeddings;
    }
    if (rc) {
        free(m->layers);
        free(m->tensors);
        memset(m, 0, sizeof *m);
        return rc;
    }
    return 0;
}

void eng_model_alloc_params(eng_model *m) {
    AT_CHECK(m->layers && !m->params);
    m->params = at_calloc(m->n_params ? m->n_params : 1, sizeof(float), "model parameters");
}

int eng_model_init(eng_model *m, const eng_layer *specs, int n, const int *in_shape,
                   int in_ndim, at_err *err) {
    int rc = eng_model_build(m, specs, n, in_shape, in_ndim, err);
    if (rc == 0) eng_model_alloc_params(m);
    return rc;
}

void eng_model_free(eng_model *m) {
    free(m->params);
    free(m->layers);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

int eng_model_check_input(const eng_model *m, const float *x, int64_t N, at_err *err) {
    if (!m->token_input) return 0;
    const size_t D = (size_t)m->in_features;
    for (int64_t n = 0; n < N; n++)
        for (size_t t = 0; t < D; t++) {
            float v = x[(size_t)n * D + t];
            if (!(v >= 0.0f && v < (float)m->vocab && v == floorf(v)))
                return at_err_set(err, AT_EUSER,
                                  "row %lld, position %zu: %g is not a token id of the "
                                  "model (an integer in 0..%d, layer '%s' is an embedding)",
                                  (long long)n, t, (double)v, m->vocab - 1,
                                  m->layers[0].name);
        }
    return 0;
}

int eng_model_affine_head(const eng_model *m) {
    int f = 0;
    while (f < m->n_layers &&
           (m->layers[f].kind == ENG_LAYER_FLATTEN || m->layers[f].kind == ENG_LAYER_DROPOUT))
        f++;
    if (f == m->n_layers || m->layers[f].kind != ENG_LAYER_LINEAR || m->layers[f].in_ndim != 1)
        return -1;
    for (int i = 0; i <= f; i++) /* a chain from the input */
        if (m->layers[i].n_src != 1 || m->layers[i].src[0] != i - 1) return -1;
    for (int i = f + 1; i < m->n_layers; i++)
        for (int s = 0; s < m->layers[i].n_src; s++)
            if (m->layers[i].src[s] < f) return -1;
    return f;
}

int eng_model_find_layer(const eng_model *m, const char *name) {
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0) return i;
    return -1;
}

/* ------------------------------------------------------- initialisation */

static void fill_uniform(float *p, size_t n, float bound, uint64_t seed, int t) {
    for (size_t k = 0; k < n; k++) {
        float u = at_rng_uniform(seed, AT_STREAM_INIT, (uint64_t)t, k);
        p[k] = (2.0f * u - 1.0f) * bound;
    }
}

static void fill_const(float *p, size_t n, float v) {
    for (size_t k = 0; k < n; k++) p[k] = v;
}

void eng_model_init_params(eng_model *m, uint64_t seed) {
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        const eng_layer *L = &m->layers[T->layer];
        float *p = m->params + T->off;
        const char *sfx = T->name + strlen(L->name) + 1;
        switch (L->kind) {
        case ENG_LAYER_LINEAR:
        case ENG_LAYER_CONV2D: {
            size_t fan_in = L->kind == ENG_LAYER_LINEAR
                                ? (size_t)L->in_shape[L->in_ndim - 1]
                                : (size_t)L->g.C * L->g.KH * L->g.KW;
            fill_uniform(p, T->numel, 1.0f / sqrtf((float)fan_in), seed, t);
            break;
        }
        case ENG_LAYER_ATTENTION: {
            int E = L->in_shape[1];
            if (strcmp(sfx, "in_proj_weight") == 0) /* xavier_uniform on (3E, E) */
                fill_uniform(p, T->numel, sqrtf(6.0f / (float)(3 * E + E)), seed, t);
            else if (strcmp(sfx, "out_proj.weight") == 0)
                fill_uniform(p, T->numel, 1.0f / sqrtf((float)E), seed, t);
            else
                fill_const(p, T->numel, 0.0f);
            break;
        }
        case ENG_LAYER_EMBEDDING:
        case ENG_LAYER_POSEMB: {
            float sd = L->kind == ENG_LAYER_EMBEDDING ? 1.0f : 0.02f;
            for (size_t k = 0; k < T->numel; k++)
                p[k] = sd * (float)at_rng_normal(seed, AT_STREAM_INIT, (uint64_t)t, k);
            break;
        }
        default: /* norms: weight 1, bias 0; running mean 0, var 1 */
            fill_const(p, T->numel,
                       strcmp(sfx, "weight") == 0 || strcmp(sfx, "running_var") == 0 ? 1.0f
                                                                                     : 0.0f);
            break;
        }
    }
}

/* ------------------------------------------------------------ workspaces */

static size_t dtype_size(eng_dtype t) {
    return t == ENG_F32 ? sizeof(float) : t == ENG_F64 ? sizeof(double) : 2 * sizeof(double);
}

void eng_plan_memory(const eng_model *m, int cap, eng_dtype dtype, eng_memory *out) {
    size_t es = dtype_size(dtype), acts = 0, aux = 0, scratch = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        acts += (size_t)cap * L->out_numel;
        aux += (size_t)cap * L->aux;
        if (L->scratch > scratch) scratch = L->scratch;
    }
    out->params = m->n_params * sizeof(float);
    out->activations = acts * es;
    out->grads = acts * es;
    out->caches = aux * es;
    out->scratch = scratch * es;
    out->total = out->activations + out->grads + out->caches + out->scratch;
}

void eng_workspace_init(eng_workspace *ws, const eng_model *m, int cap, eng_dtype dtype) {
    AT_CHECK(cap >= 1 && m->n_layers >= 1);
    memset(ws, 0, sizeof *ws);
    ws->dtype = dtype;
    ws->esize = dtype_size(dtype);
    ws->cap = cap;
    eng_plan_memory(m, cap, dtype, &ws->mem);
    ws->act_off = at_malloc((size_t)m->n_layers * sizeof(size_t), "workspace offsets");
    ws->aux_off = at_malloc((size_t)m->n_layers * sizeof(size_t), "workspace offsets");
    size_t a = 0, x = 0;
    for (int i = 0; i < m->n_layers; i++) {
        ws->act_off[i] = a;
        ws->aux_off[i] = x;
        a += (size_t)cap * m->layers[i].out_numel;
        x += (size_t)cap * m->layers[i].aux;
    }
    ws->acts = at_calloc(a ? a : 1, ws->esize, "workspace activations");
    ws->grads = at_calloc(a ? a : 1, ws->esize, "workspace gradients");
    ws->aux = at_calloc(x ? x : 1, ws->esize, "workspace caches");
    size_t s = ws->mem.scratch / ws->esize;
    ws->scratch = at_calloc(s ? s : 1, ws->esize, "workspace scratch");
}

void eng_workspace_free(eng_workspace *ws) {
    free(ws->acts);
    free(ws->grads);
    free(ws->aux);
    free(ws->scratch);
    free(ws->act_off);
    free(ws->aux_off);
    memset(ws, 0, sizeof *ws);
}

void *eng_ws_act(const eng_workspace *ws, int i) {
    return (char *)ws->acts + ws->act_off[i] * ws->esize;
}

void *eng_ws_grad(const eng_workspace *ws, int i) {
    return (char *)ws->grads + ws->act_off[i] * ws->esize;
}

/* ------------------------------------------------------------ selections */

int eng_param_sel_layers(const eng_model *m, const char *const *names, int n_names,
                         eng_param_sel *sel, at_err *err) {
    memset(sel, 0, sizeof *sel);
    for (int t = 0; t < m->n_tensors; t++) {
        const eng_tensor *T = &m->tensors[t];
        if (!T->trainable) continue;
        int want = n_names == 0;
        for (int k = 0; k < n_names && !want; k++)
            want = strcmp(m->layers[T->layer].name, names[k]) == 0;
        if (!want) continue;
        if (sel->n_tensors == ENG_MAX_SEL)
            return at_err_set(err, AT_EUSER, "more than %d parameter tensors selected",
                              ENG_MAX_SEL);
        sel->tensor[sel->n_tensors++] = t;
        sel->n += T->numel;
    }
    for (int k = 0; k < n_names; k++) {
        int i = eng_model_find_layer(m, names[k]);
        if (i < 0)
            return at_err_set(err, AT_EUSER, "no layer is called '%s'", names[k]);
        int has = 0;
        for (int t = 0; t < m->layers[i].n_tensors; t++)
            has |= m->tensors[m->layers[i].tensor0 + t].trainable;
        if (!has)
            return at_err_set(err, AT_EUSER, LFMT "has no trainable parameters",
                              LARG(&m->layers[i], i));
    }
    return 0;
}
