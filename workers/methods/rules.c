/* rules.c — the rule family: DeepLIFT (rescale), LRP (epsilon, gamma, z+,
 * alpha-beta), Guided Backprop, Deconvolution and Grad-CAM. See methods.h.
 *
 * Every kind has one column and width D. A unit's rows go through the
 * engine cap at a time: one forward pass, then one backward pass from the
 * target logit in which eng_model_backward_hook hands each layer to
 * rule_hook first; the hook does the layers its rule changes and leaves the
 * others (returning 0) to the engine's own backward. No randomness.
 *
 *   guided_backprop  the gradient, but ReLU passes dout where dout > 0 and
 *                    in > 0 (Springenberg et al. 2015)
 *   deconvolution    the gradient, but ReLU passes max(dout, 0) whatever
 *                    its input (Zeiler & Fergus 2014)
 *   deeplift         rescale rule (Shrikumar et al. 2017, as Captum's
 *                    DeepLift): multipliers m go backward; affine layers
 *                    (linear, conv2d, pools' averages, batch norm, add,
 *                    flatten, dropout, seq_mean, pos_embedding) by their
 *                    ordinary backward; pointwise activations by
 *                    (y - y0) / (x - x0), or f'(x) where |x - x0| < 1e-7;
 *                    maxpool2d as Captum: with Y = max(y, y0), dout (Y - y0)
 *                    goes to the input's winner, dout (y - Y) to the
 *                    baseline's winner, and their sum over (x - x0) is the
 *                    multiplier (the ordinary gradient where
 *                    |x - x0| < 1e-7; Captum uses 1e-10, below float32's
 *                    resolution here). Both rules keep sum (x - x0) m =
 *                    sum (y - y0) m_out layer by layer, so scores
 *                    (x - b) m sum to f(x) - f(b). The baseline's
 *                    activations come from one 1-row forward per unit.
 *   lrp              relevance R = f(x) at the target logit, 0 elsewhere,
 *                    propagated down (Bach et al. 2015; Montavon et al. 2019):
 *                    linear, conv2d: R_i = a_i sum_j w'_ij s_j with
 *                      s_j = R_j / (z'_j + eps sign(z'_j)), sign(0) = +1,
 *                      z' = W' a + b' computed with the same kernels:
 *                      epsilon  W' = W, b' = b (z' is the layer's output)
 *                      gamma    W' = W + gamma W+, b' = b + gamma b+
 *                      zplus    W' = W+, no bias (meant for inputs >= 0,
 *                               i.e. after a ReLU; on inputs of both signs
 *                               it is still W+ applied to a, stabilised)
 *                    alpha_beta: R_i = sum_j (alpha (a_i w_ij)+ / z+_j
 *                      - beta (a_i w_ij)- / z-_j) R_j, z+- = sum_i
 *                      (a_i w_ij)+- (biases ignored, a term is 0 where its
 *                      denominator is 0), with (a w)+ = a+ W+ + a- W- and
 *                      (a w)- = a+ W- + a- W+ as four products
 *                    relu, dropout, flatten pass R through; maxpool2d: the
 *                    window's winner takes all; avgpool2d, global_avgpool:
 *                    as a linear layer with the epsilon rule (any rule);
 *                    add: R split in proportion a / (a + b + eps sign) and
 *                    b / (...). Scores are the input relevances; they sum
 *                    to f(x) less what biases and eps absorb (zero-bias
 *                    ReLU nets: a leak of order eps; zplus and alpha_beta
 *                    on inputs >= 0: none).
 *   grad_cam         (Selvaraju et al. 2017) at layer s->layer, output A
 *                    (C', H', W'): alpha_c = mean_hw df/dA_c, cam =
 *                    relu(sum_c alpha_c A_c), upsampled bilinearly to the
 *                    input's (H, W) as F.interpolate(mode='bilinear',
 *                    align_corners=False) and repeated over the input's
 *                    channels. The backward stops at that layer.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mth_family.h"

#define RULES_DX_MIN 1e-7 /* DeepLIFT: |x - x0| below this uses the gradient */

/* LRP weights of the linear and conv2d layers under the gamma, zplus and
 * alpha_beta rules, indexed by layer (NULL for other layers). */
typedef struct {
    int n_layers;
    float **w1; /* gamma: W + gamma W+; zplus, alpha_beta: W+ */
    float **w2; /* alpha_beta: W- */
    float **b1; /* gamma: b + gamma b+ (NULL without bias) */
} rules_priv;

/* What rule_hook needs besides the engine's arguments. */
typedef struct {
    const mth_spec *s;
    const rules_priv *p;
    eng_workspace *ws;
    const float *x;        /* (N, D) the batch's inputs */
    float *dx;             /* (N, D) or NULL */
    const float *base;     /* deeplift: the baseline (D) */
    const float *ref;      /* deeplift: the baseline's activations */
    const size_t *ref_off; /* (2 n_layers) layer i's at ref + ref_off[i]; a
                              maxpool2d's winners at ref + ref_off[n_layers + i] */
    int n_layers;          /* the model's layer count */
    float *t[6];           /* temporaries of cap * tmax floats */
} rule_ctx;

static const char *kind_text(mth_kind k) {
    switch (k) {
    case MTH_DEEPLIFT:
        return "deeplift";
    case MTH_LRP:
        return "lrp";
    case MTH_GUIDED_BACKPROP:
        return "guided_backprop";
    case MTH_DECONVOLUTION:
        return "deconvolution";
    case MTH_GRAD_CAM:
        return "grad_cam";
    default:
        return "?";
    }
}

/* ------------------------------------------------------------- planning */

static int lrp_supports(eng_layer_kind k) {
    switch (k) {
    case ENG_LAYER_LINEAR:
    case ENG_LAYER_CONV2D:
    case ENG_LAYER_RELU:
    case ENG_LAYER_MAXPOOL2D:
    case ENG_LAYER_AVGPOOL2D:
    case ENG_LAYER_GAP:
    case ENG_LAYER_FLATTEN:
    case ENG_LAYER_DROPOUT:
    case ENG_LAYER_ADD:
        return 1;
    default:
        return 0;
    }
}

static int is_act(eng_layer_kind k) {
    switch (k) {
    case ENG_LAYER_RELU:
    case ENG_LAYER_GELU:
    case ENG_LAYER_GELU_TANH:
    case ENG_LAYER_TANH:
    case ENG_LAYER_SIGMOID:
    case ENG_LAYER_SILU:
    case ENG_LAYER_SOFTPLUS:
        return 1;
    default:
        return 0;
    }
}

static int deeplift_supports(eng_layer_kind k) {
    switch (k) {
    case ENG_LAYER_LINEAR:
    case ENG_LAYER_CONV2D:
    case ENG_LAYER_MAXPOOL2D:
    case ENG_LAYER_AVGPOOL2D:
    case ENG_LAYER_GAP:
    case ENG_LAYER_BATCHNORM1D:
    case ENG_LAYER_BATCHNORM2D:
    case ENG_LAYER_POSEMB:
    case ENG_LAYER_DROPOUT:
    case ENG_LAYER_FLATTEN:
    case ENG_LAYER_ADD:
    case ENG_LAYER_SEQ_MEAN:
        return 1;
    default:
        return is_act(k);
    }
}

#define LRP_LIST "linear, conv2d, relu, maxpool2d, avgpool2d, global_avgpool, flatten, dropout, add"
#define DEEPLIFT_LIST                                                                              \
    "linear, conv2d, relu, gelu, gelu_tanh, tanh, sigmoid, silu, softplus, maxpool2d, "            \
    "avgpool2d, global_avgpool, batchnorm1d, batchnorm2d, pos_embedding, flatten, "                \
    "dropout, add, seq_mean"

static const float *layer_param(const eng_model *m, const eng_layer *L, int k) {
    return k < L->n_tensors ? m->params + m->tensors[L->tensor0 + k].off : NULL;
}

static int check_lrp_fields(const mth_spec *s, at_err *err) {
    switch (s->lrp_rule) {
    case MTH_LRP_EPSILON:
    case MTH_LRP_GAMMA:
    case MTH_LRP_ZPLUS:
    case MTH_LRP_ALPHA_BETA:
        break;
    default:
        return at_err_set(err, AT_EUSER,
                          "lrp rule %d is unknown; expected epsilon, gamma, "
                          "zplus or alpha_beta",
                          (int)s->lrp_rule);
    }
    if (!(s->lrp_epsilon > 0.0) || !isfinite(s->lrp_epsilon))
        return at_err_set(err, AT_EUSER, "lrp epsilon is %g; expected a finite value > 0",
                          s->lrp_epsilon);
    if (s->lrp_rule == MTH_LRP_GAMMA && (!(s->lrp_gamma >= 0.0) || !isfinite(s->lrp_gamma)))
        return at_err_set(err, AT_EUSER, "lrp gamma is %g; expected a finite value >= 0",
                          s->lrp_gamma);
    if (s->lrp_rule == MTH_LRP_ALPHA_BETA) {
        if (!(s->lrp_beta >= 0.0) || !isfinite(s->lrp_alpha) || !isfinite(s->lrp_beta))
            return at_err_set(err, AT_EUSER, "lrp beta is %g; expected a finite value >= 0",
                              s->lrp_beta);
        if (fabs(s->lrp_alpha - s->lrp_beta - 1.0) > 1e-9)
            return at_err_set(err, AT_EUSER,
                              "lrp alpha (%g) and beta (%g) must satisfy alpha - beta = 1",
                              s->lrp_alpha, s->lrp_beta);
    }
    return 0;
}

/* The LRP rule's weights of every linear and conv2d layer into s->priv. */
static void lrp_weights(mth_spec *s, const eng_model *m) {
    if (s->lrp_rule == MTH_LRP_EPSILON) return;
    rules_priv *p = at_calloc(1, sizeof *p, "lrp weights");
    p->n_layers = m->n_layers;
    p->w1 = at_calloc((size_t)m->n_layers, sizeof(float *), "lrp weights");
    p->w2 = at_calloc((size_t)m->n_layers, sizeof(float *), "lrp weights");
    p->b1 = at_calloc((size_t)m->n_layers, sizeof(float *), "lrp weights");
    const float g = (float)s->lrp_gamma;
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        if (L->kind != ENG_LAYER_LINEAR && L->kind != ENG_LAYER_CONV2D) continue;
        const size_t n = m->tensors[L->tensor0].numel;
        const float *W = layer_param(m, L, 0), *b = layer_param(m, L, 1);
        float *w1 = p->w1[i] = at_malloc(n * sizeof(float), "lrp weights");
        switch (s->lrp_rule) {
        case MTH_LRP_GAMMA:
            for (size_t k = 0; k < n; k++) w1[k] = W[k] + g * (W[k] > 0.0f ? W[k] : 0.0f);
            if (b) {
                const size_t nb = m->tensors[L->tensor0 + 1].numel;
                float *b1 = p->b1[i] = at_malloc(nb * sizeof(float), "lrp weights");
                for (size_t k = 0; k < nb; k++) b1[k] = b[k] + g * (b[k] > 0.0f ? b[k] : 0.0f);
            }
            break;
        default: /* zplus, alpha_beta: W+; alpha_beta: W- too */
            for (size_t k = 0; k < n; k++) w1[k] = W[k] > 0.0f ? W[k] : 0.0f;
            if (s->lrp_rule == MTH_LRP_ALPHA_BETA) {
                float *w2 = p->w2[i] = at_malloc(n * sizeof(float), "lrp weights");
                for (size_t k = 0; k < n; k++) w2[k] = W[k] < 0.0f ? W[k] : 0.0f;
            }
            break;
        }
    }
    s->priv = p;
}

int rules_plan(mth_spec *s, const eng_model *m, at_err *err) {
    const char *name = kind_text(s->kind);
    if (m->token_input)
        return at_err_set(err, AT_EUSER,
                          "the model reads token ids; %s needs a continuous "
                          "input",
                          name);
    if (s->kind == MTH_LRP && check_lrp_fields(s, err)) return err->code;
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        const char *kn = eng_layer_kind_name(L->kind);
        if (s->kind == MTH_LRP && !lrp_supports(L->kind))
            return at_err_set(err, AT_EUSER, "layer '%s' (#%d, %s): lrp supports " LRP_LIST,
                              L->name, i, kn);
        if (s->kind == MTH_DEEPLIFT && !deeplift_supports(L->kind))
            return at_err_set(err, AT_EUSER,
                              "layer '%s' (#%d, %s): deeplift supports " DEEPLIFT_LIST, L->name, i,
                              kn);
    }
    if (s->kind == MTH_GRAD_CAM) {
        if (s->layer < 0 || s->layer >= m->n_layers)
            return at_err_set(err, AT_EUSER,
                              "grad_cam layer #%d is not a layer of the model "
                              "(%d layers)",
                              s->layer, m->n_layers);
        const eng_layer *L = &m->layers[s->layer];
        char shape[64];
        if (L->out_ndim != 3) {
            eng_shape_text(L->out_shape, L->out_ndim, shape, sizeof shape);
            return at_err_set(err, AT_EUSER,
                              "layer '%s' (#%d, %s): grad_cam needs a layer "
                              "with a (C, H, W) output, got %s",
                              L->name, s->layer, eng_layer_kind_name(L->kind), shape);
        }
        if (m->in_ndim < 2) {
            eng_shape_text(m->in_shape, m->in_ndim, shape, sizeof shape);
            return at_err_set(err, AT_EUSER,
                              "grad_cam needs an image input (H, W) or "
                              "(C, H, W), got %s",
                              shape);
        }
    }
    switch (s->kind) {
    case MTH_DEEPLIFT:
    case MTH_LRP:
    case MTH_GUIDED_BACKPROP:
    case MTH_DECONVOLUTION:
    case MTH_GRAD_CAM:
        break;
    default:
        return at_err_set(err, AT_EINTERNAL, "rule family: unknown kind %d", (int)s->kind);
    }
    s->n_cols = 1;
    s->width = s->D;
    if (s->kind == MTH_LRP) lrp_weights(s, m);
    return 0;
}

void rules_free(mth_spec *s) {
    rules_priv *p = s->priv;
    if (!p) return;
    for (int i = 0; i < p->n_layers; i++) {
        free(p->w1[i]);
        free(p->w2[i]);
        free(p->b1[i]);
    }
    free(p->w1);
    free(p->w2);
    free(p->b1);
    free(p);
    s->priv = NULL;
}

/* Engine rows per column (a forward and a backward of one input = 1),
 * measured against saliency on a 2-conv CNN: guided_backprop, deconvolution
 * and lrp epsilon cost the same; gamma and zplus add a forward product per
 * linear/conv layer; alpha_beta four products; deeplift's elementwise rules
 * and max-pool bookkeeping cost ~0.7 more; grad_cam stops its backward at
 * the layer. */
double rules_col_cost(const mth_spec *s) {
    switch (s->kind) {
    case MTH_DEEPLIFT:
        return 1.7;
    case MTH_GRAD_CAM:
        return 0.7;
    case MTH_LRP:
        return s->lrp_rule == MTH_LRP_ALPHA_BETA ? 2.5 : s->lrp_rule == MTH_LRP_EPSILON ? 1.0 : 1.5;
    default:
        return 1.0;
    }
}

/* ---------------------------------------------------------- rule passes */

static const float *src_act(const rule_ctx *c, int src) {
    return src == ENG_SRC_INPUT ? c->x : eng_ws_act(c->ws, src);
}

static float *src_grad(const rule_ctx *c, int src) {
    return src == ENG_SRC_INPUT ? c->dx : eng_ws_grad(c->ws, src);
}

static const float *ref_act(const rule_ctx *c, int src) {
    return src == ENG_SRC_INPUT ? c->base : c->ref + c->ref_off[src];
}

/* z (N, out) = the linear or conv layer L applied to a with weights w and
 * bias b (NULL: none). */
static void affine_forward(const rule_ctx *c, const eng_layer *L, float *z, const float *a,
                           const float *w, const float *b, int N) {
    if (L->kind == ENG_LAYER_CONV2D) {
        eng_conv2d_forward(z, a, w, b, &L->g, N, c->ws->scratch);
    } else {
        int IC = L->in_shape[L->in_ndim - 1];
        int rows = (int)((size_t)N * L->in_numel / (size_t)IC);
        eng_linear_forward(z, a, w, b, rows, IC, L->out_features);
    }
}

/* g (N, in) = s (N, out) pulled back through L's weights w (overwritten). */
static void affine_backward(const rule_ctx *c, const eng_layer *L, float *g, const float *s,
                            const float *a, const float *w, int N) {
    memset(g, 0, (size_t)N * L->in_numel * sizeof(float));
    if (L->kind == ENG_LAYER_CONV2D) {
        eng_conv2d_backward(g, NULL, NULL, s, a, w, &L->g, N, c->ws->scratch);
    } else {
        int IC = L->in_shape[L->in_ndim - 1];
        int rows = (int)((size_t)N * L->in_numel / (size_t)IC);
        eng_linear_backward(g, NULL, NULL, s, a, w, rows, IC, L->out_features);
    }
}

/* s[k] = R[k] / (z[k] + eps sign(z[k])), sign(0) = +1. */
static void lrp_ratio(float *s, const float *R, const float *z, size_t n, float eps) {
    for (size_t k = 0; k < n; k++) s[k] = R[k] / (z[k] + (z[k] >= 0.0f ? eps : -eps));
}

/* s[k] = R[k] / z[k], 0 where z[k] == 0 (z in place). */
static void lrp_ratio_safe(float *z, const float *R, size_t n) {
    for (size_t k = 0; k < n; k++) z[k] = z[k] != 0.0f ? R[k] / z[k] : 0.0f;
}

/* din += coef * a * g. */
static void lrp_accumulate(float *din, const float *a, const float *g, size_t n, float coef) {
    for (size_t k = 0; k < n; k++) din[k] += coef * a[k] * g[k];
}

/* LRP through a linear or conv2d layer i. */
static void lrp_affine(const rule_ctx *c, const eng_model *m, int i, const float *a,
                       const float *out, const float *R, float *din, int N) {
    const eng_layer *L = &m->layers[i];
    const mth_spec *s = c->s;
    const size_t n_in = (size_t)N * L->in_numel, n_out = (size_t)N * L->out_numel;
    const float eps = (float)s->lrp_epsilon;
    float *g = c->t[0], *z = c->t[1];
    if (s->lrp_rule != MTH_LRP_ALPHA_BETA) {
        const float *w = layer_param(m, L, 0);
        if (s->lrp_rule == MTH_LRP_EPSILON) {
            lrp_ratio(z, R, out, n_out, eps);
        } else {
            w = c->p->w1[i];
            affine_forward(c, L, z, a, w, s->lrp_rule == MTH_LRP_GAMMA ? c->p->b1[i] : NULL, N);
            lrp_ratio(z, R, z, n_out, eps);
        }
        affine_backward(c, L, g, z, a, w, N);
        lrp_accumulate(din, a, g, n_in, 1.0f);
        return;
    }
    /* alpha-beta: positive and negative parts of a_i w_ij by four products
     * (two when every input is >= 0) */
    const float *wp = c->p->w1[i], *wn = c->p->w2[i];
    const float alpha = (float)s->lrp_alpha, beta = (float)s->lrp_beta;
    float *an = c->t[3], *zn = c->t[4], *tmp = c->t[5];
    const float *ap = a; /* a+ */
    int neg = 0;
    for (size_t k = 0; k < n_in && !neg; k++) neg = a[k] < 0.0f;
    if (neg) {
        float *pos = c->t[2];
        for (size_t k = 0; k < n_in; k++) {
            pos[k] = a[k] > 0.0f ? a[k] : 0.0f;
            an[k] = a[k] < 0.0f ? a[k] : 0.0f;
        }
        ap = pos;
    }
    float *zp = z;
    affine_forward(c, L, zp, ap, wp, NULL, N);
    affine_forward(c, L, zn, ap, wn, NULL, N);
    if (neg) {
        affine_forward(c, L, tmp, an, wn, NULL, N);
        for (size_t k = 0; k < n_out; k++) zp[k] += tmp[k];
        affine_forward(c, L, tmp, an, wp, NULL, N);
        for (size_t k = 0; k < n_out; k++) zn[k] += tmp[k];
    }
    lrp_ratio_safe(zp, R, n_out);
    lrp_ratio_safe(zn, R, n_out);
    affine_backward(c, L, g, zp, ap, wp, N);
    lrp_accumulate(din, ap, g, n_in, alpha);
    if (beta != 0.0f) {
        affine_backward(c, L, g, zn, ap, wn, N);
        lrp_accumulate(din, ap, g, n_in, -beta);
    }
    if (neg) {
        affine_backward(c, L, g, zp, an, wn, N);
        lrp_accumulate(din, an, g, n_in, alpha);
        if (beta != 0.0f) {
            affine_backward(c, L, g, zn, an, wp, N);
            lrp_accumulate(din, an, g, n_in, -beta);
        }
    }
}

/* LRP layer by layer; 1 when done here. */
static int lrp_layer(const rule_ctx *c, const eng_model *m, int i, const float *a, const float *out,
                     const float *R, float *din, int N) {
    const eng_layer *L = &m->layers[i];
    const size_t n_in = (size_t)N * L->in_numel, n_out = (size_t)N * L->out_numel;
    const float eps = (float)c->s->lrp_epsilon;
    switch (L->kind) {
    case ENG_LAYER_LINEAR:
    case ENG_LAYER_CONV2D:
        if (din) lrp_affine(c, m, i, a, out, R, din, N);
        return 1;
    case ENG_LAYER_RELU:
        if (din)
            for (size_t k = 0; k < n_in; k++) din[k] += R[k];
        return 1;
    case ENG_LAYER_AVGPOOL2D:
    case ENG_LAYER_GAP: {
        if (!din) return 1;
        float *g = c->t[0], *s = c->t[1];
        lrp_ratio(s, R, out, n_out, eps);
        memset(g, 0, n_in * sizeof(float));
        if (L->kind == ENG_LAYER_GAP)
            eng_gap_backward(g, s, N, L->in_shape[0], L->in_shape[1] * L->in_shape[2]);
        else
            eng_avgpool2d_backward(g, s, &L->g, N);
        lrp_accumulate(din, a, g, n_in, 1.0f);
        return 1;
    }
    case ENG_LAYER_ADD: {
        const float *b = src_act(c, L->src[1]);
        float *db = src_grad(c, L->src[1]), *s = c->t[1];
        lrp_ratio(s, R, out, n_out, eps);
        if (din) lrp_accumulate(din, a, s, n_in, 1.0f);
        if (db) lrp_accumulate(db, b, s, n_in, 1.0f);
        return 1;
    }
    default: /* maxpool2d (winner takes all), flatten, dropout: the engine's */
        return 0;
    }
}

/* DeepLIFT's rescale rule through a pointwise activation i. */
static void deeplift_act(const rule_ctx *c, const eng_layer *L, int i, const float *in,
                         const float *out, const float *dout, float *din, int N) {
    const size_t n = L->in_numel;
    const float *in0 = ref_act(c, L->src[0]), *out0 = c->ref + c->ref_off[i]; /* (n) */
    for (int k = 0; k < N; k++) {
        const size_t o = (size_t)k * n;
        const float *x = in + o, *y = out + o, *g = dout + o;
        float *gi = din + o;
        int fallback = 0;
        for (size_t e = 0; e < n; e++) { /* branch-free; fallbacks after */
            const double dxe = (double)x[e] - in0[e];
            const int small = fabs(dxe) < RULES_DX_MIN;
            const double ratio = ((double)y[e] - out0[e]) / (small ? 1.0 : dxe);
            gi[e] += small ? 0.0f : (float)((double)g[e] * ratio);
            fallback |= small;
        }
        if (fallback) /* f'(x) where x is within RULES_DX_MIN of x0 */
            for (size_t e = 0; e < n; e++)
                if (fabs((double)x[e] - in0[e]) < RULES_DX_MIN)
                    eng_act_backward(L->kind, gi + e, g + e, x + e, y + e, 1);
    }
}

/* DeepLIFT through maxpool2d i, as Captum's: with Y = max(y, y0), dout (Y - y0)
 * goes to the input's winners and dout (y - Y) to the baseline's winners;
 * the multiplier is their sum over (x - x0), or the gradient where
 * |x - x0| < RULES_DX_MIN. */
static void deeplift_maxpool(const rule_ctx *c, const eng_layer *L, int i, const float *in,
                             const float *out, const float *dout, float *din, int N) {
    const size_t ni = L->in_numel, no = L->out_numel;
    const float *in0 = ref_act(c, L->src[0]), *out0 = c->ref + c->ref_off[i];
    const float *idx = L->aux ? (const float *)c->ws->aux + c->ws->aux_off[i] : NULL;
    const float *idx0 = L->aux ? c->ref + c->ref_off[c->n_layers + i] : NULL;
    float *u = c->t[0], *gr = c->t[1], *d1 = c->t[2], *d2 = c->t[3];
    for (int k = 0; k < N; k++)
        for (size_t j = 0; j < no; j++) {
            const size_t o = (size_t)k * no + j;
            const float y = out[o], y0 = out0[j], mx = y > y0 ? y : y0;
            d1[o] = dout[o] * (mx - y0);
            d2[o] = dout[o] * (y - mx);
        }
    memset(u, 0, (size_t)N * ni * sizeof(float));
    memset(gr, 0, (size_t)N * ni * sizeof(float));
    eng_maxpool2d_backward(u, d1, in, idx, &L->g, N);
    for (int k = 0; k < N; k++)
        eng_maxpool2d_backward(u + (size_t)k * ni, d2 + (size_t)k * no, in0, idx0, &L->g, 1);
    eng_maxpool2d_backward(gr, dout, in, idx, &L->g, N);
    for (int k = 0; k < N; k++)
        for (size_t e = 0; e < ni; e++) {
            const size_t o = (size_t)k * ni + e;
            const double dxe = (double)in[o] - in0[e];
            din[o] += fabs(dxe) < RULES_DX_MIN ? gr[o] : (float)(u[o] / dxe);
        }
}

static int rule_hook(void *ctx, const eng_model *m, int i, const float *in, const float *out,
                     const float *dout, float *din, int N) {
    const rule_ctx *c = ctx;
    const eng_layer *L = &m->layers[i];
    const size_t n = (size_t)N * L->in_numel;
    switch (c->s->kind) {
    /* through the engine's (vectorised) ReLU kernels: */
    case MTH_GUIDED_BACKPROP: /* din += relu(dout) * [in > 0] */
        if (L->kind != ENG_LAYER_RELU) return 0;
        if (din) {
            eng_act_forward(ENG_LAYER_RELU, c->t[0], dout, n);
            eng_act_backward(ENG_LAYER_RELU, din, c->t[0], in, out, n);
        }
        return 1;
    case MTH_DECONVOLUTION: /* din += dout * [dout > 0] */
        if (L->kind != ENG_LAYER_RELU) return 0;
        if (din) eng_act_backward(ENG_LAYER_RELU, din, dout, dout, NULL, n);
        return 1;
    case MTH_DEEPLIFT:
        if (is_act(L->kind)) {
            if (din) deeplift_act(c, L, i, in, out, dout, din, N);
            return 1;
        }
        if (L->kind == ENG_LAYER_MAXPOOL2D) {
            if (din) deeplift_maxpool(c, L, i, in, out, dout, din, N);
            return 1;
        }
        return 0;
    case MTH_LRP:
        return lrp_layer(c, m, i, in, out, dout, din, N);
    case MTH_GRAD_CAM: /* stop below the layer: its gradient is complete */
        return i <= c->s->layer;
    default:
        return 0;
    }
}

/* --------------------------------------------------------------- units */

/* Temporaries (floats per engine row, in units of the largest layer). */
static int n_temps(const mth_spec *s) {
    if (s->kind == MTH_DEEPLIFT) return 4;
    if (s->kind == MTH_GUIDED_BACKPROP) return 1;
    if (s->kind != MTH_LRP) return 0;
    return s->lrp_rule == MTH_LRP_ALPHA_BETA ? 6 : 2;
}

/* The baseline's activations, one row per layer, and its max-pool winners,
 * into slot 2. */
static void deeplift_reference(const eng_model *m, mth_scratch *sc, const float *baseline,
                               rule_ctx *c) {
    const int n = m->n_layers;
    size_t total = 0, head = 2 * (size_t)n * sizeof(size_t);
    for (int i = 0; i < n; i++) total += m->layers[i].out_numel + m->layers[i].aux;
    char *buf = mth_buf(sc, 2, head + total * sizeof(float));
    size_t *off = (size_t *)buf;
    float *ref = (float *)(buf + head);
    eng_model_forward(m, &sc->ws, baseline, 1);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const eng_layer *L = &m->layers[i];
        off[i] = o;
        memcpy(ref + o, eng_ws_act(&sc->ws, i), L->out_numel * sizeof(float));
        o += L->out_numel;
        off[n + i] = o;
        if (L->kind == ENG_LAYER_MAXPOOL2D && L->aux) {
            memcpy(ref + o, (const float *)sc->ws.aux + sc->ws.aux_off[i], L->aux * sizeof(float));
            o += L->aux;
        }
    }
    c->n_layers = n;
    c->ref = ref;
    c->ref_off = off;
    c->base = baseline;
}

/* Bilinear upsampling (align_corners=False, as PyTorch) of one axis: output
 * index o reads i0[o] and i0[o] + step[o] with weights (1 - l[o], l[o]). */
static void bilinear_axis(int in, int out, int *i0, int *step, double *l) {
    const double scale = (double)in / out;
    for (int o = 0; o < out; o++) {
        double src = scale * (o + 0.5) - 0.5;
        if (src < 0.0) src = 0.0;
        int a = (int)src;
        if (a > in - 1) a = in - 1;
        i0[o] = a;
        step[o] = a < in - 1 ? 1 : 0;
        l[o] = src - a;
    }
}

/* Grad-CAM of nb rows from layer s->layer's activations and gradients,
 * upsampled and repeated into partial rows r0... */
static void grad_cam_rows(const mth_spec *s, const eng_model *m, mth_scratch *sc, int nb,
                          double *partial) {
    const eng_layer *L = &m->layers[s->layer];
    const int CL = L->out_shape[0], HL = L->out_shape[1], WL = L->out_shape[2];
    const int nd = m->in_ndim, CI = nd == 3 ? m->in_shape[0] : 1;
    const int H = m->in_shape[nd - 2], W = m->in_shape[nd - 1], D = m->in_features;
    const size_t P = (size_t)HL * WL, HW = (size_t)H * W;
    size_t bytes = (P + HW + (size_t)H + W) * sizeof(double) + 2 * (size_t)(H + W) * sizeof(int);
    char *buf = mth_buf(sc, 2, bytes);
    double *cam = (double *)buf, *up = cam + P, *lh = up + HW, *lw = lh + H;
    int *h0 = (int *)(lw + W), *hs = h0 + H, *w0 = hs + H, *wst = w0 + W;
    bilinear_axis(HL, H, h0, hs, lh);
    bilinear_axis(WL, W, w0, wst, lw);
    const float *A = eng_ws_act(&sc->ws, s->layer), *G = eng_ws_grad(&sc->ws, s->layer);
    for (int k = 0; k < nb; k++) {
        const float *Ak = A + (size_t)k * L->out_numel, *Gk = G + (size_t)k * L->out_numel;
        memset(cam, 0, P * sizeof(double));
        for (int ch = 0; ch < CL; ch++) {
            double a = 0.0;
            for (size_t p = 0; p < P; p++) a += Gk[(size_t)ch * P + p];
            a /= (double)P;
            for (size_t p = 0; p < P; p++) cam[p] += a * Ak[(size_t)ch * P + p];
        }
        for (size_t p = 0; p < P; p++) cam[p] = cam[p] > 0.0 ? cam[p] : 0.0;
        for (int y = 0; y < H; y++) {
            const double *r0 = cam + (size_t)h0[y] * WL, *r1 = r0 + (size_t)hs[y] * WL;
            for (int x = 0; x < W; x++) {
                const int a = w0[x], b = a + wst[x];
                const double top = (1.0 - lw[x]) * r0[a] + lw[x] * r0[b];
                const double bot = (1.0 - lw[x]) * r1[a] + lw[x] * r1[b];
                up[(size_t)y * W + x] = (1.0 - lh[y]) * top + lh[y] * bot;
            }
        }
        double *pr = partial + (size_t)k * D;
        for (int ch = 0; ch < CI; ch++)
            for (size_t e = 0; e < HW; e++) pr[(size_t)ch * HW + e] += up[e];
    }
}

void rules_run_unit(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    int c0, int c1, double *partial) {
    if (c0 >= c1) return; /* the one column is not in this block */
    const int R = rows->R, D = m->in_features, C = m->out_features;
    rule_ctx c = {.s = s, .p = s->priv, .ws = &sc->ws};
    if (s->kind == MTH_DEEPLIFT) {
        AT_CHECK(rows->baseline != NULL);
        deeplift_reference(m, sc, rows->baseline, &c);
    }
    const int nt = n_temps(s);
    if (nt) {
        size_t tmax = 1;
        for (int i = 0; i < m->n_layers; i++) {
            const eng_layer *L = &m->layers[i];
            if (L->in_numel > tmax) tmax = L->in_numel;
            if (L->out_numel > tmax) tmax = L->out_numel;
        }
        tmax *= (size_t)sc->cap;
        float *t = mth_buf(sc, 3, (size_t)nt * tmax * sizeof(float));
        for (int k = 0; k < nt; k++) c.t[k] = t + (size_t)k * tmax;
    }
    const int cam = s->kind == MTH_GRAD_CAM;
    for (int r0 = 0; r0 < R; r0 += sc->cap) {
        const int nb = R - r0 < sc->cap ? R - r0 : sc->cap;
        const float *xb = rows->x + (size_t)r0 * D;
        const float *lg = eng_model_forward(m, &sc->ws, xb, nb); /* (nb, C) */
        memset(sc->dlogits, 0, (size_t)nb * C * sizeof(float));
        for (int k = 0; k < nb; k++) {
            const int32_t t = rows->target[r0 + k];
            AT_CHECK(t >= 0 && t < C);
            const size_t o = (size_t)k * C + t;
            sc->dlogits[o] = s->kind == MTH_LRP ? lg[o] : 1.0f;
        }
        c.x = xb;
        c.dx = cam ? NULL : sc->dx;
        eng_model_backward_hook(m, &sc->ws, xb, sc->dlogits, nb, c.dx, rule_hook, &c);
        double *pr = partial + (size_t)r0 * D;
        if (cam) {
            grad_cam_rows(s, m, sc, nb, pr);
        } else if (s->kind == MTH_DEEPLIFT) {
            const float *b = rows->baseline;
            for (int k = 0; k < nb; k++)
                for (int d = 0; d < D; d++) {
                    const size_t o = (size_t)k * D + d;
                    pr[o] += ((double)xb[o] - (double)b[d]) * (double)sc->dx[o];
                }
        } else {
            for (size_t o = 0; o < (size_t)nb * D; o++) pr[o] += (double)sc->dx[o];
        }
    }
}

void rules_finalize(const mth_spec *s, const eng_model *m, mth_scratch *sc, const mth_rows *rows,
                    const double *acc, float *scores) {
    (void)m;
    (void)sc;
    const size_t n = (size_t)rows->R * (size_t)s->D;
    for (size_t i = 0; i < n; i++) scores[i] = (float)acc[i];
}
