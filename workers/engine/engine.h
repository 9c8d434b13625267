/* engine.h — attrib's CPU tensor engine (v0: MLPs).
 *
 * Model of use
 * ------------
 * A model is a static array of layer descriptors over ONE contiguous float32
 * parameter block (one read, one checksum, one MPI_Bcast). Layers run in
 * sequence; there is no general graph. Build one with eng_model_init from a
 * list of eng_layer_spec, then fill params (eng_model_init_params for a fresh
 * PyTorch-style initialisation, or copy weights in from a file).
 *
 * Every op is a pair: x_forward writes its output; x_backward reads what
 * forward cached and ACCUMULATES (+=) into gradient buffers. Callers zero
 * gradient buffers. Kernels never allocate; an eng_workspace owns the
 * activations of a batch of up to `cap` rows and is reused batch after batch.
 *
 *   eng_model m; eng_model_init(&m, specs, n_specs, in_features, &err);
 *   eng_workspace ws; eng_workspace_init(&ws, &m, 256);
 *   const float *logits = eng_model_forward(&m, &ws, x, n);     // (n, C)
 *   eng_model_backward(&m, &ws, dlogits, n, dx, dparams);      // dx (n,D)
 *
 * Dimension letters: N batch rows, D model input features, C classes (model
 * outputs), IC/OC a layer's in/out features.
 *
 * Parameter layout: for layer i of kind LINEAR, weight (OC, IC) row-major at
 * params + layers[i].w_off, then bias (OC) at params + layers[i].b_off.
 * State-dict names are "layers.<i>.weight" and "layers.<i>.bias", i the index
 * in the layer sequence, as PyTorch names nn.Sequential children stored in an
 * attribute called `layers`.
 *
 * This module knows nothing of MPI, HDF5 or YAML. It uses OpenBLAS sgemm.
 */
#ifndef ATTRIB_ENGINE_H
#define ATTRIB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define ENG_MAX_LAYERS 64

typedef enum {
    ENG_LAYER_LINEAR = 1, /* y = x W^T + b */
    ENG_LAYER_RELU = 2,   /* y = max(x, 0) */
} eng_layer_kind;

/* What a user (job file, model file) says about a layer. */
typedef struct {
    eng_layer_kind kind;
    int out_features; /* LINEAR only; ignored for RELU */
    int bias;         /* LINEAR only: 1 = has a bias */
} eng_layer_spec;

/* A built layer. */
typedef struct {
    eng_layer_kind kind;
    int in_features, out_features;
    int bias;
    size_t w_off, b_off; /* offsets into params; LINEAR only */
    size_t n_params;     /* parameters this layer owns */
} eng_layer;

typedef struct {
    int n_layers;
    eng_layer layers[ENG_MAX_LAYERS];
    int in_features;  /* D */
    int out_features; /* C */
    size_t n_params;
    float *params; /* (n_params), owned */
} eng_model;

/* Kind name as written in files ("linear", "relu"); NULL for unknown. */
const char *eng_layer_kind_name(eng_layer_kind k);
/* Parse a kind name; returns 0 and sets *k, or -1 if unknown. */
int eng_layer_kind_parse(const char *name, eng_layer_kind *k);

/* Build a model: shapes are checked here (errors name the layer index);
 * params are allocated zeroed. Returns 0, or AT_EUSER with err filled. */
int eng_model_init(eng_model *m, const eng_layer_spec *specs, int n_specs,
                   int in_features, at_err *err);
void eng_model_free(eng_model *m);
/* PyTorch's default nn.Linear init: weight and bias ~ U(-1/sqrt(I), 1/sqrt(I)),
 * drawn from the counter RNG (seed, AT_STREAM_INIT, layer index, element). */
void eng_model_init_params(eng_model *m, uint64_t seed);
/* State-dict name of parameter tensor t of layer i: t = 0 weight, 1 bias.
 * Writes into out (cap bytes). */
void eng_param_name(int layer, int t, char *out, size_t cap);

/* Activation storage for batches of up to cap rows. */
typedef struct {
    int cap;
    size_t width;    /* max over layer widths, including D */
    float *acts;     /* n_layers blocks of (cap, out_features_i) */
    size_t *act_off; /* (n_layers) offsets into acts */
    float *g0, *g1;  /* (cap, width) ping-pong gradient buffers */
} eng_workspace;

void eng_workspace_init(eng_workspace *ws, const eng_model *m, int cap);
void eng_workspace_free(eng_workspace *ws);

/* Forward a batch x (N, D), N <= ws->cap. Returns the logits (N, C), which
 * live inside ws until the next forward. */
const float *eng_model_forward(const eng_model *m, eng_workspace *ws,
                               const float *x, int N);
/* Backward from dlogits (N, C) through the batch of the last forward on x.
 * dx (N, D): overwritten with d/dx if not NULL. dparams (n_params): gradient
 * w.r.t. params ACCUMULATED if not NULL. When dx is NULL the first layer's
 * input gradient is not computed. */
void eng_model_backward(const eng_model *m, eng_workspace *ws, const float *x,
                        const float *dlogits, int N, float *dx, float *dparams);

/* Number of BLAS threads the engine uses (default: OpenBLAS's own). */
void eng_set_threads(int n);

/* ---- ops (forward/backward pairs) ---------------------------------- */

/* out (N, OC) = in (N, IC) @ w^T (OC, IC) + b (OC or NULL). */
void eng_linear_forward(float *out, const float *in, const float *w,
                        const float *b, int N, int IC, int OC);
/* din (N, IC) += dout @ w; dw (OC, IC) += dout^T @ in; db (OC) += sum_n dout.
 * Any of din, dw, db may be NULL. */
void eng_linear_backward(float *din, float *dw, float *db, const float *dout,
                         const float *in, const float *w, int N, int IC, int OC);
void eng_relu_forward(float *out, const float *in, size_t n);
/* din += dout * (in > 0). */
void eng_relu_backward(float *din, const float *dout, const float *in, size_t n);

/* Softmax cross-entropy with integer labels. probs (N, C) written; losses (N)
 * written if not NULL. Returns the mean loss. */
double eng_softmax_xent_forward(float *probs, float *losses, const float *logits,
                                const int32_t *labels, int N, int C);
/* dlogits (N, C) += scale * (probs - onehot(labels)). For the mean loss use
 * scale = 1/N. */
void eng_softmax_xent_backward(float *dlogits, const float *probs,
                               const int32_t *labels, int N, int C, float scale);

/* ---- training ------------------------------------------------------- */

/* SGD with momentum (PyTorch semantics): g += wd * p; v = mu * v + g;
 * p -= lr * v. */
typedef struct {
    float lr, momentum, weight_decay;
    size_t n;
    float *velocity; /* (n), owned */
} eng_sgd;

void eng_sgd_init(eng_sgd *opt, size_t n, float lr, float momentum,
                  float weight_decay);
void eng_sgd_step(eng_sgd *opt, float *params, const float *grads);
void eng_sgd_free(eng_sgd *opt);

/* One pass over a labelled set held in memory: x (n_rows, D), labels
 * (n_rows). Minibatch order is at_rng_permutation(seed, AT_STREAM_SHUFFLE
 * + epoch) so it depends only on (seed, epoch). Uses ws (cap >= batch) and
 * grads (n_params) as scratch. Returns the mean training loss and writes the
 * training accuracy of the minibatches seen to *acc. */
double eng_train_epoch(eng_model *m, eng_workspace *ws, eng_sgd *opt,
                       float *grads, const float *x, const int32_t *labels,
                       int n_rows, int batch, uint64_t seed, int epoch,
                       double *acc);

/* Mean loss and accuracy of the model on a labelled set, batched by ws->cap.
 * logits_out (n_rows, C) written if not NULL. */
void eng_evaluate(const eng_model *m, eng_workspace *ws, const float *x,
                  const int32_t *labels, int n_rows, double *loss, double *acc,
                  float *logits_out);

#endif
