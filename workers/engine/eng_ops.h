/* eng_ops.h — prototypes of the engine's generic kernels, one set per
 * element type. engine.h includes this file three times with
 *   ENG_OPS_R  the element type (float, double, double _Complex)
 *   ENG_OPS_S  the name suffix macro (eng_x, eng_x_f64, eng_x_c128)
 * Read it as the list of ops; the conventions are in engine.h ("Ops").
 * No include guard on purpose. */

#define R_ ENG_OPS_R
#define S_ ENG_OPS_S

/* ---- dense: linear, pointwise activations, softmax, add, reductions -- */

/* out (N, OC) = in (N, IC) @ w^T (OC, IC) + b (OC or NULL). N counts rows:
 * for an input of shape (T, IC) per example, N = examples * T. */
void S_(eng_linear_forward)(R_ *out, const R_ *in, const R_ *w, const R_ *b, int N,
                            int IC, int OC);
/* din (N, IC) += dout @ w; dw (OC, IC) += dout^T @ in; db (OC) += sum_n dout.
 * Any of din, dw, db may be NULL. */
void S_(eng_linear_backward)(R_ *din, R_ *dw, R_ *db, const R_ *dout, const R_ *in,
                             const R_ *w, int N, int IC, int OC);
/* Per-example parameter gradients of B examples of `rows` rows each:
 * g + b*g_stride receives (overwritten) dW_b (OC, IC) = dout_b^T in_b, then
 * db_b (OC) if bias. dout (B*rows, OC), in (B*rows, IC). */
void S_(eng_linear_grad_per_example)(R_ *g, size_t g_stride, const R_ *dout,
                                     const R_ *in, int B, int rows, int IC, int OC,
                                     int bias);

/* Pointwise activations (kind: RELU, GELU, GELU_TANH, TANH, SIGMOID, SILU,
 * SOFTPLUS): out[i] = f(in[i]). Backward: din[i] += dout[i] * f'(in[i])
 * (out is the forward's output, for kinds that use it). */
void S_(eng_act_forward)(eng_layer_kind kind, R_ *out, const R_ *in, size_t n);
void S_(eng_act_backward)(eng_layer_kind kind, R_ *din, const R_ *dout, const R_ *in,
                          const R_ *out, size_t n);

/* Softmax (log_softmax if log) over the last dim of (rows, C). */
void S_(eng_softmax_forward)(R_ *out, const R_ *in, int rows, int C, int log);
/* din += J^T dout, from the forward's output. */
void S_(eng_softmax_backward)(R_ *din, const R_ *dout, const R_ *out, int rows, int C,
                              int log);

/* Mean over the first per-example dim: (N, T, E) -> (N, E). */
void S_(eng_seq_mean_forward)(R_ *out, const R_ *in, int N, int T, int E);
void S_(eng_seq_mean_backward)(R_ *din, const R_ *dout, int N, int T, int E);

/* ---- losses ----------------------------------------------------------- */

/* Per-example losses (N) of logits (N, C): loss->kind XENT (labels,
 * label_smoothing), MSE (targets (N, C), or one-hot labels when targets is
 * NULL; per example sum_c (z - t)^2 / C, PyTorch's mean reduction), or
 * MARGIN (TRAK's log p_y - log(1 - p_y) = z_y - logsumexp_{c != y} z_c).
 * Returns nothing; the caller averages. */
void S_(eng_loss_forward)(const eng_loss *loss, R_ *losses, const R_ *logits,
                          const int32_t *labels, const R_ *targets, int N, int C);
/* dlogits (N, C) += scale * d(loss_n)/d(logits_n), for every n. The mean
 * loss uses scale = 1/N. */
void S_(eng_loss_backward)(const eng_loss *loss, R_ *dlogits, const R_ *logits,
                           const int32_t *labels, const R_ *targets, int N, int C,
                           double scale);

/* ---- images: conv, pools, batch norm -------------------------------- */

/* out (N, OC, OH, OW) = conv(in (N, C, H, W), w (OC, C, KH, KW)) + b (OC or
 * NULL), geometry g (stride, padding, dilation; groups = 1). col is scratch
 * of eng_conv2d_col_size(g) elements. */
void S_(eng_conv2d_forward)(R_ *out, const R_ *in, const R_ *w, const R_ *b,
                            const eng_geom2d *g, int N, R_ *col);
/* din (N, C, H, W) +=, dw (OC, C, KH, KW) +=, db (OC) +=; any may be NULL.
 * col is scratch of eng_conv2d_col_size(g) elements (im2col and the column
 * gradient share it). */
void S_(eng_conv2d_backward)(R_ *din, R_ *dw, R_ *db, const R_ *dout, const R_ *in,
                             const R_ *w, const eng_geom2d *g, int N, R_ *col);
/* Per-example: g + n*g_stride receives (overwritten) dW_n (OC, C*KH*KW) then
 * db_n (OC) if bias. col: eng_conv2d_col_size(g) elements. */
void S_(eng_conv2d_grad_per_example)(R_ *gout, size_t g_stride, const R_ *dout,
                                     const R_ *in, const eng_geom2d *g, int N, int bias,
                                     R_ *col);
/* Max pool (PyTorch: the first maximum in window order wins, a NaN wins;
 * padding never wins). idx (N, C, OH, OW), if not NULL, receives each
 * winner's offset in its (H, W) plane (as a number; -1 for a window wholly
 * in the padding); the backward routes through idx when given, else
 * recomputes the winners from in. */
void S_(eng_maxpool2d_forward)(R_ *out, R_ *idx, const R_ *in, const eng_geom2d *g, int N);
void S_(eng_maxpool2d_backward)(R_ *din, const R_ *dout, const R_ *in, const R_ *idx,
                                const eng_geom2d *g, int N);
/* Average pool; g->count_include_pad as PyTorch's flag. */
void S_(eng_avgpool2d_forward)(R_ *out, const R_ *in, const eng_geom2d *g, int N);
void S_(eng_avgpool2d_backward)(R_ *din, const R_ *dout, const eng_geom2d *g, int N);
/* Global average pool: (N, C, HW) -> (N, C). */
void S_(eng_gap_forward)(R_ *out, const R_ *in, int N, int C, int HW);
void S_(eng_gap_backward)(R_ *din, const R_ *dout, int N, int C, int HW);
/* Batch norm in inference mode over (N, C, L) (L = H*W, or 1 for (N, C)):
 * out = (in - mean) / sqrt(var + eps) * gamma + beta; gamma, beta may be
 * NULL (affine = False). Backward: din, dgamma, dbeta accumulate (any NULL). */
void S_(eng_batchnorm_forward)(R_ *out, const R_ *in, const R_ *gamma, const R_ *beta,
                               const R_ *mean, const R_ *var, double eps, int N, int C,
                               int L);
void S_(eng_batchnorm_backward)(R_ *din, R_ *dgamma, R_ *dbeta, const R_ *dout,
                                const R_ *in, const R_ *gamma, const R_ *mean,
                                const R_ *var, double eps, int N, int C, int L);
/* Per-example: g + n*g_stride receives dgamma_n (C) then dbeta_n (C). */
void S_(eng_batchnorm_grad_per_example)(R_ *gout, size_t g_stride, const R_ *dout,
                                        const R_ *in, const R_ *mean, const R_ *var,
                                        double eps, int N, int C, int L);

/* ---- sequences: layer norm, embeddings, attention -------------------- */

/* Layer norm over the last dim of (rows, C); stats (rows, 2) receives
 * (mean, 1/sqrt(var + eps)) for the backward. w, b may be NULL. */
void S_(eng_layernorm_forward)(R_ *out, R_ *stats, const R_ *in, const R_ *w,
                               const R_ *b, double eps, int rows, int C);
void S_(eng_layernorm_backward)(R_ *din, R_ *dw, R_ *db, const R_ *dout, const R_ *in,
                                const R_ *stats, const R_ *w, int rows, int C);
/* Per-example over B examples of `rows` rows: dw_b (C) then db_b (C). */
void S_(eng_layernorm_grad_per_example)(R_ *gout, size_t g_stride, const R_ *dout,
                                        const R_ *in, const R_ *stats, int B, int rows,
                                        int C);
/* Embedding: ids (rows) hold token ids as numbers (RE(id) rounded; the
 * caller has checked 0 <= id < V); out (rows, E) = table[id]. */
void S_(eng_embedding_forward)(R_ *out, const R_ *ids, const R_ *table, int rows, int V,
                               int E);
void S_(eng_embedding_backward)(R_ *dtable, const R_ *dout, const R_ *ids, int rows,
                                int V, int E);
/* Per-example: g + b*g_stride receives the full dtable_b (V, E). */
void S_(eng_embedding_grad_per_example)(R_ *gout, size_t g_stride, const R_ *dout,
                                        const R_ *ids, int B, int rows, int V, int E);
/* Learned positional embedding: out (N, T, E) = in + pos[:T]. */
void S_(eng_posemb_forward)(R_ *out, const R_ *in, const R_ *pos, int N, int T, int E);
void S_(eng_posemb_backward)(R_ *din, R_ *dpos, const R_ *dout, int N, int T, int E);
/* Multi-head self-attention as nn.MultiheadAttention(E, H, batch_first=True)
 * called as attn(x, x, x): in (N, T, E) -> out (N, T, E).
 * w_in (3E, E), b_in (3E) or NULL, w_out (E, E), b_out (E) or NULL.
 * cache (N, eng_attention_cache_size(T, E, H)) is written by forward and
 * read by backward. scratch: eng_attention_scratch_size(T, E, H). causal:
 * position t attends to positions <= t only. */
void S_(eng_attention_forward)(R_ *out, R_ *cache, const R_ *in, const R_ *w_in,
                               const R_ *b_in, const R_ *w_out, const R_ *b_out, int N,
                               int T, int E, int H, int causal, R_ *scratch);
/* din +=, dw_in +=, db_in +=, dw_out +=, db_out +=; any may be NULL. */
void S_(eng_attention_backward)(R_ *din, R_ *dw_in, R_ *db_in, R_ *dw_out, R_ *db_out,
                                const R_ *dout, const R_ *in, const R_ *cache,
                                const R_ *w_in, const R_ *w_out, int N, int T, int E,
                                int H, int causal, R_ *scratch);

/* ---- models (workspace element type must match) ---------------------- */

/* Forward a batch x (N, D) with parameters params (m->n_params). Returns the
 * outputs (N, C), which live in ws until the next forward. */
const R_ *S_(eng_forward)(const eng_model *m, eng_workspace *ws, const R_ *params,
                          const R_ *x, int N);
/* Backward from dlogits (N, C) through the last forward (same x, params).
 * dx (N, D) overwritten if not NULL; dparams (n_params) ACCUMULATED if not
 * NULL. Afterwards eng_ws_grad gives every layer's output gradient. */
void S_(eng_backward)(const eng_model *m, eng_workspace *ws, const R_ *params,
                      const R_ *x, const R_ *dlogits, int N, R_ *dx, R_ *dparams);
/* The same over a range of layers: eng_forward_from runs layers [first, n)
 * (the outputs of layers < first that later layers read must already be in
 * ws); eng_backward_to runs from the output down to layer stop + 1 and
 * leaves layer stop's output gradient in eng_ws_grad(ws, stop), computing
 * no gradient for layers <= stop (dx must then be NULL). Layers above stop
 * must read only layers >= stop (eng_model_affine_head checks it). */
const R_ *S_(eng_forward_from)(const eng_model *m, eng_workspace *ws, const R_ *params,
                               const R_ *x, int N, int first);
void S_(eng_backward_to)(const eng_model *m, eng_workspace *ws, const R_ *params,
                         const R_ *x, const R_ *dlogits, int N, int stop, R_ *dx,
                         R_ *dparams);
/* Per-example gradients after eng_backward: g (N, sel->n) overwritten with
 * each example's gradient of the selected parameter tensors, in selection
 * order. */
void S_(eng_grad_per_example)(const eng_model *m, eng_workspace *ws, const R_ *params,
                              const R_ *x, int N, const eng_param_sel *sel, R_ *g);

#undef R_
#undef S_
