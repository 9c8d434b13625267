/* engine.c — see engine.h. */
/* OpenBLAS's cblas.h declares affinity functions with cpu_set_t, which
 * glibc only defines under _GNU_SOURCE. */
#define _GNU_SOURCE
#include "engine.h"

#include <sched.h> /* cpu_set_t for cblas.h */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ descriptors */

const char *eng_layer_kind_name(eng_layer_kind k) {
    switch (k) {
    case ENG_LAYER_LINEAR: return "linear";
    case ENG_LAYER_RELU: return "relu";
    }
    return NULL;
}

int eng_layer_kind_parse(const char *name, eng_layer_kind *k) {
    if (strcmp(name, "linear") == 0) { *k = ENG_LAYER_LINEAR; return 0; }
    if (strcmp(name, "relu") == 0) { *k = ENG_LAYER_RELU; return 0; }
    return -1;
}

void eng_param_name(int layer, int t, char *out, size_t cap) {
    snprintf(out, cap, "layers.%d.%s", layer, t == 0 ? "weight" : "bias");
}

int eng_model_init(eng_model *m, const eng_layer_spec *specs, int n_specs,
                   int in_features, at_err *err) {
    memset(m, 0, sizeof *m);
    if (n_specs < 1)
        return at_err_set(err, AT_EUSER, "model has no layers");
    if (n_specs > ENG_MAX_LAYERS)
        return at_err_set(err, AT_EUSER, "model has %d layers; at most %d are supported",
                          n_specs, ENG_MAX_LAYERS);
    if (in_features < 1)
        return at_err_set(err, AT_EUSER, "model input has %d features; expected >= 1",
                          in_features);
    int width = in_features;
    size_t off = 0;
    for (int i = 0; i < n_specs; i++) {
        eng_layer *L = &m->layers[i];
        L->kind = specs[i].kind;
        L->in_features = width;
        switch (specs[i].kind) {
        case ENG_LAYER_LINEAR:
            if (specs[i].out_features < 1)
                return at_err_set(err, AT_EUSER,
                                  "layer %d (linear): out_features is %d; expected >= 1",
                                  i, specs[i].out_features);
            L->out_features = specs[i].out_features;
            L->bias = specs[i].bias ? 1 : 0;
            L->w_off = off;
            off += (size_t)L->out_features * (size_t)L->in_features;
            L->b_off = off;
            if (L->bias) off += (size_t)L->out_features;
            L->n_params = off - L->w_off;
            break;
        case ENG_LAYER_RELU:
            L->out_features = width;
            break;
        default:
            return at_err_set(err, AT_EUSER, "layer %d: unknown kind %d", i,
                              (int)specs[i].kind);
        }
        width = L->out_features;
    }
    m->n_layers = n_specs;
    m->in_features = in_features;
    m->out_features = width;
    m->n_params = off;
    m->params = at_calloc(off ? off : 1, sizeof(float), "model parameters");
    return 0;
}

void eng_model_free(eng_model *m) {
    free(m->params);
    m->params = NULL;
}

void eng_model_init_params(eng_model *m, uint64_t seed) {
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        if (L->kind != ENG_LAYER_LINEAR) continue;
        float bound = 1.0f / sqrtf((float)L->in_features);
        for (size_t k = 0; k < L->n_params; k++) {
            float u = at_rng_uniform(seed, AT_STREAM_INIT, (uint64_t)i, k);
            m->params[L->w_off + k] = (2.0f * u - 1.0f) * bound;
        }
    }
}

/* ------------------------------------------------------------- workspace */

void eng_workspace_init(eng_workspace *ws, const eng_model *m, int cap) {
    AT_CHECK(cap >= 1 && m->n_layers >= 1);
    memset(ws, 0, sizeof *ws);
    ws->cap = cap;
    size_t width = (size_t)m->in_features, total = 0;
    ws->act_off = at_malloc((size_t)m->n_layers * sizeof(size_t), "workspace offsets");
    for (int i = 0; i < m->n_layers; i++) {
        size_t w = (size_t)m->layers[i].out_features;
        ws->act_off[i] = total;
        total += (size_t)cap * w;
        if (w > width) width = w;
    }
    ws->width = width;
    ws->acts = at_malloc(total * sizeof(float), "workspace activations");
    ws->g0 = at_malloc((size_t)cap * width * sizeof(float), "workspace gradients");
    ws->g1 = at_malloc((size_t)cap * width * sizeof(float), "workspace gradients");
}

void eng_workspace_free(eng_workspace *ws) {
    free(ws->acts);
    free(ws->act_off);
    free(ws->g0);
    free(ws->g1);
    memset(ws, 0, sizeof *ws);
}

/* ------------------------------------------------------------------- ops */

void eng_set_threads(int n) { openblas_set_num_threads(n); }

void eng_linear_forward(float *out, const float *in, const float *w,
                        const float *b, int N, int IC, int OC) {
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
    }
    /* out (N,OC) = in (N,IC) @ w^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, in, IC, w,
                IC, b ? 1.0f : 0.0f, out, OC);
}

void eng_linear_backward(float *din, float *dw, float *db, const float *dout,
                         const float *in, const float *w, int N, int IC, int OC) {
    if (din) /* din (N,IC) += dout (N,OC) @ w (OC,IC) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout,
                    OC, w, IC, 1.0f, din, IC);
    if (dw) /* dw (OC,IC) += dout^T (OC,N) @ in (N,IC) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC,
                    in, IC, 1.0f, dw, IC);
    if (db)
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += d[o];
        }
}

void eng_relu_forward(float *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void eng_relu_backward(float *din, const float *dout, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (in[i] > 0.0f) din[i] += dout[i];
}

double eng_softmax_xent_forward(float *probs, float *losses, const float *logits,
                                const int32_t *labels, int N, int C) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * C;
        float *p = probs + (size_t)n * C;
        float mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += exp((double)z[c] - mx);
        for (int c = 0; c < C; c++) p[c] = (float)(exp((double)z[c] - mx) / sum);
        int32_t y = labels[n];
        AT_CHECK(y >= 0 && y < C);
        double l = -((double)z[y] - mx - log(sum));
        if (losses) losses[n] = (float)l;
        total += l;
    }
    return N ? total / N : 0.0;
}

void eng_softmax_xent_backward(float *dlogits, const float *probs,
                               const int32_t *labels, int N, int C, float scale) {
    for (int n = 0; n < N; n++) {
        float *d = dlogits + (size_t)n * C;
        const float *p = probs + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += scale * p[c];
        d[labels[n]] -= scale;
    }
}

/* --------------------------------------------------------- model drivers */

static const float *layer_input(const eng_model *m, const eng_workspace *ws,
                                const float *x, int i) {
    (void)m;
    return i == 0 ? x : ws->acts + ws->act_off[i - 1];
}

const float *eng_model_forward(const eng_model *m, eng_workspace *ws,
                               const float *x, int N) {
    AT_CHECK(N >= 0 && N <= ws->cap);
    for (int i = 0; i < m->n_layers; i++) {
        const eng_layer *L = &m->layers[i];
        const float *in = layer_input(m, ws, x, i);
        float *out = ws->acts + ws->act_off[i];
        switch (L->kind) {
        case ENG_LAYER_LINEAR:
            eng_linear_forward(out, in, m->params + L->w_off,
                               L->bias ? m->params + L->b_off : NULL, N,
                               L->in_features, L->out_features);
            break;
        case ENG_LAYER_RELU:
            eng_relu_forward(out, in, (size_t)N * (size_t)L->out_features);
            break;
        }
    }
    return ws->acts + ws->act_off[m->n_layers - 1];
}

void eng_model_backward(const eng_model *m, eng_workspace *ws, const float *x,
                        const float *dlogits, int N, float *dx, float *dparams) {
    AT_CHECK(N >= 0 && N <= ws->cap);
    /* dcur holds d/d(output of layer i); we write d/d(input of layer i)
     * into dnext, zeroed first because backward ops accumulate. */
    const float *dcur = dlogits;
    float *bufs[2] = {ws->g0, ws->g1};
    int which = 0;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const eng_layer *L = &m->layers[i];
        const float *in = layer_input(m, ws, x, i);
        float *dnext = NULL;
        if (i > 0) {
            dnext = bufs[which];
            which ^= 1;
        } else if (dx) {
            dnext = dx;
        }
        size_t n_in = (size_t)N * (size_t)L->in_features;
        if (dnext) memset(dnext, 0, n_in * sizeof(float));
        switch (L->kind) {
        case ENG_LAYER_LINEAR:
            eng_linear_backward(dnext, dparams ? dparams + L->w_off : NULL,
                                dparams && L->bias ? dparams + L->b_off : NULL, dcur,
                                in, m->params + L->w_off, N, L->in_features,
                                L->out_features);
            break;
        case ENG_LAYER_RELU:
            if (dnext) eng_relu_backward(dnext, dcur, in, n_in);
            break;
        }
        if (!dnext) break; /* i == 0 and no dx wanted */
        dcur = dnext;
    }
}

/* --------------------------------------------------------------- training */

void eng_sgd_init(eng_sgd *opt, size_t n, float lr, float momentum,
                  float weight_decay) {
    opt->lr = lr;
    opt->momentum = momentum;
    opt->weight_decay = weight_decay;
    opt->n = n;
    opt->velocity = at_calloc(n ? n : 1, sizeof(float), "sgd velocity");
}

void eng_sgd_step(eng_sgd *opt, float *params, const float *grads) {
    for (size_t i = 0; i < opt->n; i++) {
        float g = grads[i] + opt->weight_decay * params[i];
        opt->velocity[i] = opt->momentum * opt->velocity[i] + g;
        params[i] -= opt->lr * opt->velocity[i];
    }
}

void eng_sgd_free(eng_sgd *opt) {
    free(opt->velocity);
    opt->velocity = NULL;
}

static int argmax(const float *z, int C) {
    int best = 0;
    for (int c = 1; c < C; c++)
        if (z[c] > z[best]) best = c;
    return best;
}

double eng_train_epoch(eng_model *m, eng_workspace *ws, eng_sgd *opt,
                       float *grads, const float *x, const int32_t *labels,
                       int n_rows, int batch, uint64_t seed, int epoch,
                       double *acc) {
    AT_CHECK(batch >= 1 && batch <= ws->cap);
    const int D = m->in_features, C = m->out_features;
    uint32_t *perm = at_malloc((size_t)n_rows * sizeof(uint32_t), "epoch permutation");
    at_rng_permutation(perm, (uint32_t)n_rows, seed, AT_STREAM_SHUFFLE + 16u * (uint64_t)epoch);
    float *xb = at_malloc((size_t)batch * D * sizeof(float), "minibatch inputs");
    int32_t *yb = at_malloc((size_t)batch * sizeof(int32_t), "minibatch labels");
    float *probs = at_malloc((size_t)batch * C * sizeof(float), "minibatch probs");
    float *dlogits = at_malloc((size_t)batch * C * sizeof(float), "minibatch dlogits");
    double loss_sum = 0.0;
    long correct = 0;
    for (int s = 0; s < n_rows; s += batch) {
        int nb = n_rows - s < batch ? n_rows - s : batch;
        for (int k = 0; k < nb; k++) {
            uint32_t r = perm[s + k];
            memcpy(xb + (size_t)k * D, x + (size_t)r * D, (size_t)D * sizeof(float));
            yb[k] = labels[r];
        }
        const float *logits = eng_model_forward(m, ws, xb, nb);
        double l = eng_softmax_xent_forward(probs, NULL, logits, yb, nb, C);
        loss_sum += l * nb;
        for (int k = 0; k < nb; k++)
            if (argmax(logits + (size_t)k * C, C) == yb[k]) correct++;
        memset(dlogits, 0, (size_t)nb * C * sizeof(float));
        eng_softmax_xent_backward(dlogits, probs, yb, nb, C, 1.0f / (float)nb);
        memset(grads, 0, m->n_params * sizeof(float));
        eng_model_backward(m, ws, xb, dlogits, nb, NULL, grads);
        eng_sgd_step(opt, m->params, grads);
    }
    free(perm); free(xb); free(yb); free(probs); free(dlogits);
    if (acc) *acc = n_rows ? (double)correct / n_rows : 0.0;
    return n_rows ? loss_sum / n_rows : 0.0;
}

void eng_evaluate(const eng_model *m, eng_workspace *ws, const float *x,
                  const int32_t *labels, int n_rows, double *loss, double *acc,
                  float *logits_out) {
    const int D = m->in_features, C = m->out_features;
    float *probs = at_malloc((size_t)ws->cap * C * sizeof(float), "eval probs");
    double loss_sum = 0.0;
    long correct = 0;
    for (int s = 0; s < n_rows; s += ws->cap) {
        int nb = n_rows - s < ws->cap ? n_rows - s : ws->cap;
        const float *logits = eng_model_forward(m, ws, x + (size_t)s * D, nb);
        if (logits_out)
            memcpy(logits_out + (size_t)s * C, logits, (size_t)nb * C * sizeof(float));
        if (labels) {
            loss_sum += eng_softmax_xent_forward(probs, NULL, logits, labels + s, nb, C) * nb;
            for (int k = 0; k < nb; k++)
                if (argmax(logits + (size_t)k * C, C) == labels[s + k]) correct++;
        }
    }
    free(probs);
    if (loss) *loss = n_rows ? loss_sum / n_rows : 0.0;
    if (acc) *acc = n_rows ? (double)correct / n_rows : 0.0;
}
