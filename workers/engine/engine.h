/* engine.h — attrib's CPU tensor engine: MLPs, CNNs and small transformers.
 *
 * Model of use
 * ------------
 * A model is a static array of layer descriptors run in order, over ONE
 * contiguous float32 parameter block (one read, one checksum, one
 * MPI_Bcast). It is not a general graph: each layer reads the output of an
 * earlier layer (by default the previous one) and `add` reads two, which is
 * what residual blocks need. Build one from a list of eng_layer specs (the
 * user-settable fields; a zeroed spec plus kind is a valid start), then fill
 * params (eng_model_init_params for PyTorch's default initialisation, or copy
 * weights in from a file):
 *
 *   eng_layer spec[2] = {{.kind = ENG_LAYER_FLATTEN},
 *                        {.kind = ENG_LAYER_LINEAR, .out_features = 10, .bias = 1}};
 *   eng_model m; eng_model_init(&m, spec, 2, (int[]){28, 28}, 2, &err);
 *   eng_workspace ws; eng_workspace_init(&ws, &m, 256, ENG_F32);
 *   const float *logits = eng_model_forward(&m, &ws, x, n);     // (n, C)
 *   eng_model_backward(&m, &ws, x, dlogits, n, dx, dparams);    // dx (n, D)
 *
 * Shapes are per example: up to 3 dims, (C, H, W) for images, (T, E) for
 * sequences, (F) for flat features. The batch dim N is never part of a
 * shape. Inputs always arrive flat: x (N, D) with D the input shape's
 * element count; token ids arrive as numbers in x (the first layer is then
 * an embedding). Linear and layer norm act on the last dim.
 *
 * Ops
 * ---
 * Every op is a pair: x_forward writes its output; x_backward reads what
 * forward cached and ACCUMULATES (+=) into gradient buffers. Kernels never
 * allocate: the workspace owns activations, per-layer output gradients,
 * per-layer caches and one scratch area, all sized when it is made
 * (eng_plan_memory reports the bytes). The kernels are generic over the
 * element type and exist three times (eng_ops.h): float32 (eng_x), float64
 * (eng_x_f64, the oracle for finite-difference tests) and complex128
 * (eng_x_c128, for exact Hessian-vector products by complex step).
 *
 * Curvature
 * ---------
 * eng_hvp computes H v of the mean training loss by complex-step
 * differentiation of the gradient: params + i h v, one complex forward and
 * backward, H v = Im(grad) / h with h = 1e-30 (no subtraction, so exact to
 * float64 rounding; ReLU and max-pool use the real part's branch, which is
 * the a.e. Hessian PyTorch's double backward computes). eng_gnvp computes
 * the Gauss-Newton product J^T H_loss J v: J v by complex step through the
 * forward, H_loss in closed form, J^T by a float64 backward.
 *
 * Dimension letters: N batch, D model input elements, C classes (outputs),
 * IC/OC a linear's in/out features, (C, H, W) image, (T, E) sequence,
 * V vocabulary, H heads (attention) or height (images; by context).
 *
 * Parameter tensors carry PyTorch state-dict names: "<layer name>.<suffix>"
 * (eng_model.tensors). Layer names default to "layers.<i>", which is what
 * nn.Sequential stored in an attribute called `layers` produces.
 *
 * This module knows nothing of MPI, HDF5 or YAML. It uses OpenBLAS.
 */
#ifndef ATTRIB_ENGINE_H
#define ATTRIB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define ENG_MAX_LAYERS 512
#define ENG_MAX_DIMS 3
#define ENG_NAME_MAX 128
#define ENG_MAX_SEL 512 /* tensors in a parameter selection */

typedef enum {
    ENG_LAYER_LINEAR = 1,  /* (..., IC) -> (..., OC): x W^T + b */
    ENG_LAYER_RELU,        /* pointwise activations: any shape */
    ENG_LAYER_GELU,        /* exact (erf) */
    ENG_LAYER_GELU_TANH,   /* PyTorch's approximate='tanh' */
    ENG_LAYER_TANH,
    ENG_LAYER_SIGMOID,
    ENG_LAYER_SILU,
    ENG_LAYER_SOFTPLUS,    /* beta 1, threshold 20, as PyTorch */
    ENG_LAYER_CONV2D,      /* (C, H, W) -> (OC, OH, OW) */
    ENG_LAYER_MAXPOOL2D,   /* (C, H, W) -> (C, OH, OW) */
    ENG_LAYER_AVGPOOL2D,
    ENG_LAYER_GAP,         /* global average pool: (C, H, W) -> (C) */
    ENG_LAYER_BATCHNORM1D, /* inference mode: (C) or (C, L) */
    ENG_LAYER_BATCHNORM2D, /* inference mode: (C, H, W) */
    ENG_LAYER_LAYERNORM,   /* over the last dim */
    ENG_LAYER_EMBEDDING,   /* token ids (T) -> (T, E) */
    ENG_LAYER_POSEMB,      /* (T, E) + learned positions (max_len, E)[:T] */
    ENG_LAYER_ATTENTION,   /* multi-head self-attention (T, E) -> (T, E) */
    ENG_LAYER_DROPOUT,     /* identity (inference) */
    ENG_LAYER_FLATTEN,     /* any -> (numel) */
    ENG_LAYER_SOFTMAX,     /* over the last dim */
    ENG_LAYER_LOG_SOFTMAX,
    ENG_LAYER_ADD,         /* two inputs of one shape: a + b (residuals) */
    ENG_LAYER_SEQ_MEAN,    /* (T, E) -> (E): mean over positions */
    ENG_LAYER_KIND_END
} eng_layer_kind;

/* Geometry of a conv or pool over one example (filled by eng_model_init). */
typedef struct {
    int C, H, W;    /* input */
    int OC, OH, OW; /* output (OC = C for pools) */
    int KH, KW, SH, SW, PH, PW, DH, DW;
    int count_include_pad; /* avgpool2d */
} eng_geom2d;

#define ENG_SRC_INPUT (-1) /* a layer input that is the model input */

/* A layer. The first block is what a spec sets; eng_model_init fills the
 * rest. Defaults where a field is 0: stride 0 = kernel (pools) or 1 (conv),
 * dilation 0 = 1, eps 0 = 1e-5. `bias` and `affine` are plain flags (0 =
 * none): the parsers of job and model files default them to 1. */
typedef struct {
    /* ---- spec ---- */
    eng_layer_kind kind;
    char name[ENG_NAME_MAX]; /* "" = "layers.<i>" */
    int n_src;               /* 0: the previous layer (the input for layer 0) */
    int src[2];              /* layer index or ENG_SRC_INPUT; add needs 2 */
    int out_features;        /* linear: OC; conv2d: out channels; embedding: E */
    int bias;                /* linear, conv2d, attention */
    int affine;              /* batchnorm, layernorm: has weight and bias */
    int kernel[2], stride[2], padding[2], dilation[2]; /* conv2d, pools */
    int count_include_pad;   /* avgpool2d (PyTorch's default is 1) */
    int heads, causal;       /* attention */
    int num_embeddings;      /* embedding: V; pos_embedding: max_len */
    double eps;              /* batchnorm, layernorm */
    double p;                /* dropout (recorded; identity) */
    /* ---- filled by eng_model_init ---- */
    int in_ndim, in_shape[ENG_MAX_DIMS];
    int out_ndim, out_shape[ENG_MAX_DIMS];
    size_t in_numel, out_numel; /* per example */
    eng_geom2d g;               /* conv2d, pools */
    int tensor0, n_tensors;     /* its parameter tensors in m->tensors */
    size_t aux;                 /* cache elements per example (ws->aux) */
    size_t scratch;             /* scratch elements for a full batch */
} eng_layer;

/* A parameter tensor (or buffer: running statistics are not trainable). */
typedef struct {
    char name[ENG_NAME_MAX + 32]; /* state-dict name */
    int layer, ndim;
    int64_t shape[4];
    size_t off, numel; /* into params */
    int trainable;
} eng_tensor;

typedef struct {
    int n_layers;
    eng_layer *layers; /* (n_layers), owned */
    int n_tensors;
    eng_tensor *tensors; /* (n_tensors), owned */
    int in_ndim, in_shape[ENG_MAX_DIMS];
    int in_features;  /* D: input elements */
    int out_features; /* C: output elements */
    int token_input;  /* 1 when layer 0 is an embedding (x holds ids) */
    int vocab;        /* its V */
    size_t n_params;
    float *params; /* (n_params), owned */
} eng_model;

/* Kind name as written in files ("linear", "conv2d", ...); NULL if unknown. */
const char *eng_layer_kind_name(eng_layer_kind k);
/* Parse a kind name; returns 0 and sets *k, or -1 if unknown. */
int eng_layer_kind_parse(const char *name, eng_layer_kind *k);
/* Comma-separated list of every kind name, for error messages. */
const char *eng_layer_kind_list(void);

/* Build a model from n specs over an input of shape in_shape (in_ndim dims).
 * Shapes are inferred and checked here; errors name the layer ("layer
 * 'conv1' (#0, conv2d): expects input (C, H, W), got (28, 28)"). params are
 * allocated zeroed. Returns 0, or AT_EUSER with err filled (m is then empty
 * and needs no free). */
int eng_model_init(eng_model *m, const eng_layer *specs, int n, const int *in_shape,
                   int in_ndim, at_err *err);
/* The same checks and shapes without allocating params (m->params stays
 * NULL), so a loader can look at m->n_params before committing memory; then
 * eng_model_alloc_params. Tensors of more than 2^62 elements and layer
 * outputs of more than 2^31-1 elements per example are refused. */
int eng_model_build(eng_model *m, const eng_layer *specs, int n, const int *in_shape,
                    int in_ndim, at_err *err);
void eng_model_alloc_params(eng_model *m);
void eng_model_free(eng_model *m);
/* PyTorch's default initialisation, drawn from the counter RNG (seed,
 * AT_STREAM_INIT, tensor index, element): Linear and Conv2d weights and
 * biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); attention in_proj Xavier
 * uniform, its biases 0, out_proj as Linear with bias 0; embeddings N(0, 1)
 * (positional: N(0, 0.02^2)); norm weights 1, biases 0; running mean 0,
 * var 1. */
void eng_model_init_params(eng_model *m, uint64_t seed);
/* Check inputs x (N, D) the model can take: for token models every value
 * must be an integer id in [0, vocab). Returns 0, or AT_EUSER with err
 * naming the row (0-based within x), position and value; callers add the
 * file. */
int eng_model_check_input(const eng_model *m, const float *x, int64_t N, at_err *err);
/* The first layer f through which every path from the input passes as one
 * affine map of the flat input — only flatten/dropout before it, a linear
 * on a flat input, and no later layer reading a layer before f — or -1.
 * Along a straight path x(a) = b + a (x - b) its output is then affine in
 * a, which Integrated Gradients exploits (docs/methods.md). */
int eng_model_affine_head(const eng_model *m);
/* Index of the layer called name, or -1. */
int eng_model_find_layer(const eng_model *m, const char *name);
/* Shape text "(1, 28, 28)" of n dims into out. */
void eng_shape_text(const int *shape, int n, char *out, size_t cap);

/* ---- workspaces ------------------------------------------------------ */

typedef enum { ENG_F32 = 0, ENG_F64 = 1, ENG_C128 = 2 } eng_dtype;

/* Bytes a model needs at batch cap, by purpose. */
typedef struct {
    size_t params;      /* the float32 parameter block */
    size_t activations; /* every layer's output */
    size_t grads;       /* every layer's output gradient */
    size_t caches;      /* per-layer caches (norm statistics, attention) */
    size_t scratch;     /* largest per-layer scratch (im2col, attention) */
    size_t total;       /* workspace total (without params) */
} eng_memory;

void eng_plan_memory(const eng_model *m, int cap, eng_dtype dtype, eng_memory *out);

/* Activation storage for batches of up to cap rows, of one element type. */
typedef struct {
    eng_dtype dtype;
    size_t esize; /* bytes per element */
    int cap;
    void *acts, *grads, *aux, *scratch;
    size_t *act_off, *aux_off; /* (n_layers) element offsets */
    eng_memory mem;
} eng_workspace;

void eng_workspace_init(eng_workspace *ws, const eng_model *m, int cap, eng_dtype dtype);
void eng_workspace_free(eng_workspace *ws);
/* Layer i's output (cap, out_numel) and output gradient (after a backward),
 * as the workspace's element type: the statistics K-FAC and EK-FAC need
 * (a layer's input is its source layer's output, or x). */
void *eng_ws_act(const eng_workspace *ws, int i);
void *eng_ws_grad(const eng_workspace *ws, int i);

/* ---- losses ---------------------------------------------------------- */

typedef enum {
    ENG_LOSS_XENT = 0, /* cross-entropy with optional label smoothing */
    ENG_LOSS_MSE,      /* squared error against targets or one-hot labels */
    ENG_LOSS_MARGIN,   /* TRAK's margin log p_y - log(1 - p_y) (not a loss to minimise) */
} eng_loss_kind;

typedef struct {
    eng_loss_kind kind;
    double label_smoothing; /* XENT: 0 by default */
} eng_loss;

/* ---- parameter selections (per-example gradients) -------------------- */

typedef struct {
    int n_tensors;
    int tensor[ENG_MAX_SEL]; /* indices into m->tensors, in model order */
    size_t n;                /* total elements */
} eng_param_sel;

/* Select the trainable tensors of the named layers (all trainable tensors
 * when n_names is 0). Returns 0, or AT_EUSER naming an unknown layer or a
 * layer without parameters. */
int eng_param_sel_layers(const eng_model *m, const char *const *names, int n_names,
                         eng_param_sel *sel, at_err *err);

/* ---- generic kernels: float32, float64, complex128 ------------------- */

#define ENG_OPS_R float
#define ENG_OPS_S(name) name
#include "eng_ops.h"
#undef ENG_OPS_R
#undef ENG_OPS_S
#define ENG_OPS_R double
#define ENG_OPS_S(name) name##_f64
#include "eng_ops.h"
#undef ENG_OPS_R
#undef ENG_OPS_S
#define ENG_OPS_R double _Complex
#define ENG_OPS_S(name) name##_c128
#include "eng_ops.h"
#undef ENG_OPS_R
#undef ENG_OPS_S

/* Scratch and cache sizes (elements) of the kernels that need them. */
size_t eng_conv2d_col_size(const eng_geom2d *g);
size_t eng_attention_cache_size(int T, int E, int H);
size_t eng_attention_scratch_size(int T, int E, int H);

/* ---- float32 model drivers (params = m->params) ---------------------- */

const float *eng_model_forward(const eng_model *m, eng_workspace *ws, const float *x,
                               int N);
void eng_model_backward(const eng_model *m, eng_workspace *ws, const float *x,
                        const float *dlogits, int N, float *dx, float *dparams);

/* A per-layer override of the float32 backward (attribution rules such as
 * LRP, DeepLIFT, Guided Backprop replace some layers' backward). Called for
 * each layer `layer`, from the output down, with its input `in` (N,
 * in_numel; the first source for `add`), output `out`, output gradient
 * `dout` (N, out_numel), and `din` (N, in_numel), where the layer's input
 * gradient ACCUMULATES: the source layer's eng_ws_grad, the model's dx, or
 * NULL when nothing needs it. Returns 1 when it has done din += ... itself
 * (for `add`, the second source's gradient too), 0 to let the engine run
 * the layer's own backward. */
typedef int (*eng_bwd_hook)(void *ctx, const eng_model *m, int layer, const float *in,
                            const float *out, const float *dout, float *din, int N);
/* eng_model_backward without parameter gradients, with hook h (ctx is
 * passed through) deciding layer by layer. dx (N, D) overwritten if not
 * NULL; every layer's output gradient is left in eng_ws_grad. */
void eng_model_backward_hook(const eng_model *m, eng_workspace *ws, const float *x,
                             const float *dlogits, int N, float *dx, eng_bwd_hook h,
                             void *ctx);

/* Number of BLAS threads the engine uses (default: OpenBLAS's own). */
void eng_set_threads(int n);

/* ---- curvature ------------------------------------------------------- */

/* Buffers for eng_hvp / eng_gnvp at batches of up to cap rows. */
typedef struct {
    int cap;
    eng_workspace wz, wd; /* complex128 and float64 workspaces */
    void *pz, *gz;        /* (n_params) complex params and gradient */
    void *xz, *dz;        /* (cap, D) complex inputs, (cap, C) complex dlogits */
    double *pd, *gd;      /* (n_params) float64 params and gradient */
    double *xd, *dd;      /* (cap, D) float64 inputs, (cap, C) float64 dlogits */
} eng_curv;

void eng_curv_init(eng_curv *cv, const eng_model *m, int cap);
void eng_curv_free(eng_curv *cv);
/* hv (n_params) = H v, H the Hessian of the mean loss over (x, labels)
 * (N <= cap) w.r.t. all parameters at m->params. Buffers (running
 * statistics) get no tangent: their rows and columns of H are 0. */
void eng_hvp(const eng_model *m, eng_curv *cv, const eng_loss *loss, const float *x,
             const int32_t *labels, int N, const double *v, double *hv);
/* hv (n_params) = G v, G = J^T H_loss J the Gauss-Newton matrix of the mean
 * loss (XENT or MSE) over (x, labels). */
void eng_gnvp(const eng_model *m, eng_curv *cv, const eng_loss *loss, const float *x,
              const int32_t *labels, int N, const double *v, double *gv);

/* ---- training -------------------------------------------------------- */

typedef enum { ENG_OPT_SGD = 0, ENG_OPT_ADAM, ENG_OPT_ADAMW } eng_opt_kind;

/* An optimizer over the trainable tensors of a model, PyTorch semantics:
 * SGD (momentum, nesterov, weight_decay added to the gradient), Adam
 * (weight_decay added to the gradient) and AdamW (decoupled decay). */
typedef struct {
    eng_opt_kind kind;
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    long step;            /* steps taken */
    size_t n;
    float *m1, *m2;       /* (n) state, owned */
    unsigned char *mask;  /* (n) 1 = trainable, owned */
} eng_optim;

void eng_optim_init(eng_optim *opt, const eng_model *m, eng_opt_kind kind, double lr,
                    double momentum, int nesterov, double weight_decay, double beta1,
                    double beta2, double eps);
/* One step at learning rate lr (the schedule's value for this step). */
void eng_optim_step(eng_optim *opt, float *params, const float *grads, double lr);
void eng_optim_free(eng_optim *opt);

typedef enum { ENG_SCHED_CONSTANT = 0, ENG_SCHED_STEP, ENG_SCHED_COSINE } eng_sched_kind;

typedef struct {
    eng_sched_kind kind;
    double lr;         /* base learning rate */
    int step_size;     /* STEP: epochs between decays */
    double gamma;      /* STEP: decay factor */
    double min_lr;     /* COSINE: eta_min */
    int total_epochs;  /* COSINE: T_max */
} eng_sched;

/* The learning rate of epoch e (0-based), as PyTorch's StepLR and
 * CosineAnnealingLR stepped once per epoch. */
double eng_sched_lr(const eng_sched *s, int epoch);

/* One pass over a labelled set held in memory: x (n_rows, D), labels
 * (n_rows). Minibatch order is at_rng_permutation(seed, AT_STREAM_SHUFFLE
 * + 16*epoch) so it depends only on (seed, epoch). ws (cap >= batch) and
 * grads (n_params) are scratch. Returns the mean training loss and writes
 * the accuracy of the minibatches seen to *acc. */
double eng_train_epoch(eng_model *m, eng_workspace *ws, eng_optim *opt, double lr,
                       const eng_loss *loss, float *grads, const float *x,
                       const int32_t *labels, int n_rows, int batch, uint64_t seed,
                       int epoch, double *acc);

/* Mean loss (cross-entropy) and accuracy on a labelled set, batched by
 * ws->cap. logits_out (n_rows, C) written if not NULL; labels may be NULL. */
void eng_evaluate(const eng_model *m, eng_workspace *ws, const float *x,
                  const int32_t *labels, int n_rows, double *loss, double *acc,
                  float *logits_out);

#endif
