/* tda_feat.h — per-example gradient features and random projections for
 * training-data attribution (grad_dot, grad_cos, TracIn, influence
 * functions, TRAK).
 *
 * Model of use
 * ------------
 * A feature map is built once per (model architecture, parameter
 * selection, loss, projection) and applied to blocks of labelled rows at
 * the model's CURRENT parameters (the caller swaps checkpoints into
 * m->params between calls):
 *
 *   tda_feat *f;
 *   if (tda_feat_new(&f, m, layers, n_layers, ENG_LOSS_MARGIN,
 *                    TDA_PROJ_KRONECKER, 512, seed, 256, 256 << 20, &err)) ...
 *   int k = tda_feat_dim(f);                    // actual dimension
 *   tda_feat_compute(f, m, x, labels, N, out, prob);   // out (N, k) float32
 *   tda_feat_free(f);
 *
 * The per-example function is the loss of ONE example at its label, not
 * divided by any N:
 *   ENG_LOSS_XENT    l = -log p_y                    (grad_dot, TracIn, IF)
 *   ENG_LOSS_MARGIN  f = log p_y - log(1 - p_y)      (TRAK's model output)
 * with p = softmax(logits). g = d l / d theta_sel (p values): the
 * selected tensors (eng_param_sel_layers order: tensors in model order,
 * each row-major as the state dict stores it). prob receives p_y.
 *
 * Projections (phi = P^T g, k columns; all scaled so E|phi|^2 = |g|^2)
 * -----------
 * Every entry is a pure function of (seed, model tensor index t, element e
 * of that tensor, column j), so all ranks and all calls build the same P,
 * and a parameter keeps its row of P whatever else is selected. Streams
 * are TDA_FEAT_STREAM(kind, sub, t) (below); no other user of at_rng_* may
 * use streams with the 0x7DAF tag.
 *   none        phi = g, k = p.
 *   gaussian    P[(t,e), j] = at_rng_normal(seed, S(GAUSSIAN,0,t), e, j) / sqrt(k).
 *   rademacher  P[(t,e), j] = (+1 if bit (j % 24) of
 *               u = at_rng_uniform(seed, S(RADEMACHER,0,t), e, j / 24) * 2^24
 *               is set, else -1) / sqrt(k).
 *   sjlt        sparse JL, block construction (Kane-Nelson): s = min(4, k)
 *               nonzeros per parameter, one in each of s blocks of columns
 *               [floor(b k / s), floor((b+1) k / s)), b = 0..s-1: column
 *               lo_b + at_rng_below(size_b, seed, S(SJLT,0,t), e, b), sign
 *               at_rng_uniform(seed, S(SJLT,1,t), e, b) < 0.5 ? -1 : +1,
 *               value sign / sqrt(s). Cost O(p s) per row, no GEMM, sums
 *               in float64. Linear layers selected whole never form G:
 *               for each of the example's rows, every product d_o a_i of
 *               nonzero output gradient d_o and input a_i (exact in
 *               float64) is scattered, O(nnz(d) nnz(a) s); the other
 *               tensors (conv, norms, embeddings, attention) come from
 *               eng_grad_per_example, zeros skipped.
 *   kronecker   per selected linear or conv2d layer with per-example weight
 *               gradient G = sum_r dout_r^T a_r (OC x IC; r runs over the
 *               example's rows: (T, E) positions of a linear, output pixels
 *               of a conv with a_r its im2col column, IC = C*KH*KW), and a
 *               bias as a column of ones appended to a (IC+1 columns):
 *               phi_l = vec(P_out^T G P_in) = sum_r (P_out^T dout_r) (x)
 *               (P_in^T a_r), row-major (k_out, k_in), never forming G.
 *               P_out (OC x k_out) = at_rng_normal(seed, S(KRONECKER,0,t),
 *               o, j) / sqrt(k_out), P_in ((IC+bias) x k_in) =
 *               at_rng_normal(seed, S(KRONECKER,1,t), i, j) / sqrt(k_in),
 *               t = the layer's weight tensor. k is split over the layers
 *               in proportion to their parameter counts (largest
 *               remainder, at least 1 each); each k_l is factored as
 *               k_out * k_in with k_out <= OC, k_in <= IC+bias, the largest
 *               product <= k_l, then the most square. The actual k (sum of
 *               products) may be below the request; at k >= p every layer
 *               gets k_out = OC, k_in = IC+bias: P_out, P_in square and P
 *               invertible (a.s.). Layers other than
 *               linear/conv2d are refused. phi = concatenation over the
 *               selected layers in model order.
 *
 * Memory and cost
 * ---------------
 * Dense P (p x k float32) is generated at tda_feat_new (gaussian ~50-80 ns
 * an entry: 2.5 s for p = 101,770, k = 512; rademacher ~7 ns) and kept when
 * p k 4 <= budget_bytes; otherwise
 * one chunk of rows is kept and regenerated for every batch of cap rows
 * (costs the full generation per batch: keep cap large then). The
 * projection always runs as sgemms over the same fixed chunks of rows
 * (a function of k only), so the bytes do not depend on the budget. The
 * sjlt table (p s 4 bytes) and the kronecker factors are always kept.
 * Working memory: an engine workspace of cap rows; for the dense kinds a
 * per-example gradient block (cap, p) float32 (none writes into out; sjlt
 * keeps one only for tensors outside linear layers); kronecker a few
 * (cap, rows, k_l) products. tda_feat_bytes (and tda_feat_plan, before
 * allocating) reports the total.
 * Cost per row (MLP 784-128-10, k = 512, one core): none ~5,000 rows/s
 * (writing p floats), dense ~700 (the sgemm, 2 p k flops), sjlt ~13,000,
 * kronecker ~200,000 (test_tda_feat prints the benchmark).
 *
 * Determinism
 * -----------
 * Rows are processed in batches of cap in the order given, each batch from
 * the start of the call. A row's bytes are a function of (model, params,
 * row, settings, cap) and of its place in its batch: OpenBLAS's sgemm
 * rounds the tail rows of a product (rows past the last full micro-kernel
 * tile) with other kernels, ~1e-7 relative. So calls over blocks that
 * start at multiples of cap (a block partition fixed independently of the
 * rank count) give identical bytes however the blocks are spread over
 * calls and ranks; other splits agree to float32 rounding. Keep cap the
 * same on every rank. A tda_feat is not thread-safe (it holds its
 * workspace).
 */
#ifndef ATTRIB_TDA_FEAT_H
#define ATTRIB_TDA_FEAT_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "engine.h"

/* Same order as the job file's projection setting. */
typedef enum {
    TDA_PROJ_NONE = 0,
    TDA_PROJ_GAUSSIAN,
    TDA_PROJ_RADEMACHER,
    TDA_PROJ_SJLT,
    TDA_PROJ_KRONECKER
} tda_proj_kind;

/* Nonzeros per parameter of the sjlt projection: min(TDA_SJLT_S, k). */
#define TDA_SJLT_S 4

/* at_rng_* stream of projection kind, sub-purpose (0..15) and model tensor
 * t (< 2^24). */
#define TDA_FEAT_STREAM(kind, sub, t)                                                              \
    ((0x7DAFull << 32) | ((uint64_t)(kind) << 28) | ((uint64_t)(sub) << 24) | (uint64_t)(t))

typedef struct tda_feat tda_feat; /* opaque */

/* Name of a projection kind ("none", "gaussian", "rademacher", "sjlt",
 * "kronecker"), or NULL. */
const char *tda_proj_name(tda_proj_kind kind);

/* Build a feature map for model m (its architecture; params are read at
 * compute time). layers (n_layers names; n_layers 0 = every trainable
 * tensor) selects the parameters; loss is ENG_LOSS_XENT or
 * ENG_LOSS_MARGIN; k >= 1 the requested projection dimension (ignored for
 * none); seed for the projection; cap >= 1 the engine batch (rows per
 * forward/backward); budget_bytes bounds the dense P kept (above). Returns
 * 0 and *out (free with tda_feat_free), or AT_EUSER with err naming the
 * setting to change (unknown layer, loss, kronecker on a layer that is not
 * linear/conv2d, k below the number of kronecker layers, ...). */
int tda_feat_new(tda_feat **out, const eng_model *m, const char *const *layers, int n_layers,
                 eng_loss_kind loss, tda_proj_kind proj, int k, uint64_t seed, int cap,
                 size_t budget_bytes, at_err *err);
/* The checks of tda_feat_new and its memory plan without allocating:
 * *bytes (if not NULL) receives what tda_feat_bytes would report, *dim the
 * actual k. Returns 0 or AT_EUSER as tda_feat_new. */
int tda_feat_plan(const eng_model *m, const char *const *layers, int n_layers, eng_loss_kind loss,
                  tda_proj_kind proj, int k, int cap, size_t budget_bytes, size_t *bytes, int *dim,
                  at_err *err);
/* Feature dimension: the actual k (p for none; <= the request for
 * kronecker). */
int tda_feat_dim(const tda_feat *f);
/* p: selected parameter count. */
size_t tda_feat_nparams(const tda_feat *f);
/* Bytes f holds (workspace, gradient block, projection, buffers). */
size_t tda_feat_bytes(const tda_feat *f);
/* 1 when the dense P is kept whole (generated once), 0 when regenerated
 * per batch or not dense. */
int tda_feat_stored(const tda_feat *f);
/* The selection (tensor indices into m->tensors, selection order). */
const eng_param_sel *tda_feat_sel(const tda_feat *f);

/* out (N, k) float32 = the features of rows x (N, D) with labels (N, each
 * in [0, C)) at m->params (m must have the architecture f was built for).
 * prob (N), if not NULL, receives p_label = softmax(logits)[label] in
 * float64 from the float32 logits. N >= 0 may exceed cap (batches of cap).
 * The caller checks inputs (eng_model_check_input) and labels. */
void tda_feat_compute(tda_feat *f, const eng_model *m, const float *x, const int32_t *labels,
                      int64_t N, float *out, double *prob);

/* out (N, k) = the projection of given raw gradients g (N, p) (selection
 * layout, as tda_feat_compute with none writes them): P^T g for the dense
 * kinds and sjlt; for kronecker vec(P_out^T G_l P_in) per layer from the
 * formed G_l (weight then bias column). The same P as compute; the bytes
 * equal compute's for the dense kinds (same sgemms on the same block); for
 * sjlt and kronecker they agree to float32 rounding (compute sums other
 * products). project(e_r) is row r of P. */
void tda_feat_project(tda_feat *f, const float *g, int64_t N, float *out);

/* Number of kronecker layers (0 unless the projection is kronecker). */
int tda_feat_kron_layers(const tda_feat *f);
/* Kronecker factors of selected layer i (0 <= i < tda_feat_kron_layers),
 * owned by f: p_out (rows_out, k_out) and p_in (rows_in, k_in) row-major,
 * rows_out = OC, rows_in = IC + bias (conv2d: IC = C*KH*KW in the weight's
 * (C, KH, KW) order); *col receives the layer's first feature column and
 * *layer its model layer index (any output pointer may be NULL). Returns
 * 0, or -1 when f is not kronecker or i is out of range. */
int tda_feat_kron_factors(const tda_feat *f, int i, const float **p_out, int *rows_out, int *k_out,
                          const float **p_in, int *rows_in, int *k_in, int *col, int *layer);

/* Release f and everything it holds (NULL is a no-op). */
void tda_feat_free(tda_feat *f);

#endif
