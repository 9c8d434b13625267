/* arch.h — architectures as data: the layer-list language of job files
 * (model.layers), model files (the root attribute `architecture`) and
 * tools/export_torch.py.
 *
 * Model of use
 * ------------
 * A layer list is a YAML sequence of mappings, one per layer, run in order:
 *
 *   - {kind: conv2d, name: conv1, out_channels: 16, kernel: 3, padding: 1}
 *   - {kind: relu}
 *   - {kind: add, inputs: [conv1, layers.1]}
 *
 * Keys: `kind` (required; eng_layer_kind_name's words), `name` (default
 * "layers.<i>" for the i-th entry of the top-level list; unique; the
 * state-dict prefix of the layer's tensors), `input` (an earlier layer's
 * name or `input` = the model input; default the previous layer) or, for
 * `add` only, `inputs: [a, b]` (required), and the keys of the kind (the
 * table in arch.c, documented in docs/jobs.md): linear out_features, bias;
 * conv2d out_channels, kernel, stride, padding, dilation, bias; maxpool2d
 * kernel, stride, padding, dilation; avgpool2d kernel, stride, padding,
 * count_include_pad; batchnorm1d/2d and layernorm eps, affine; embedding
 * num_embeddings, embedding_dim; pos_embedding max_len; attention heads,
 * causal, bias; dropout p. Sizes are integers, kernel/stride/padding/
 * dilation an integer or a list [h, w], flags booleans. Any other key is an
 * error naming the layer and the key.
 *
 * Job files (allow_residual) also take `kind: residual` with `body:` (a
 * layer list, required) and `shortcut:` (a layer list; default identity),
 * which flattens to the body layers (the first reads the block's input),
 * the shortcut layers (the first reads the block's input) and an `add` of
 * the last body layer and the last shortcut layer (or the block input).
 * Default names inside a block named B are "B.body.<j>" and
 * "B.shortcut.<j>"; the add takes the name B. Blocks may nest.
 *
 * Parsing fills every spec field explicitly (bias 1, stride 1 or = kernel,
 * dilation 1, eps 1e-5, p 0.5, count_include_pad 1, affine 1 by default)
 * and resolves names to eng_layer.n_src/src: n_src 0 when a layer reads the
 * previous layer (or the model input, for layer 0), else 1 (or 2 for add).
 *
 * arch_emit writes the canonical flat form: one "- {kind: ..., name: ...,
 * ...}" flow mapping per line, every key of the kind written with its
 * value, `input` only when a layer does not read the previous one. parse
 * -> emit -> parse -> emit is a fixed point, and the model file's
 * content_sha256 covers these exact bytes.
 */
#ifndef ATTRIB_ARCH_H
#define ATTRIB_ARCH_H

#include <stdint.h>

#include "core.h"
#include "engine.h"
#include "ytree.h"

#define ARCH_MAX_LAYERS ENG_MAX_LAYERS

/* Parse the layer list node `list` (path names it in messages, e.g.
 * "model.layers") into specs[0 .. *n), at most cap layers after flattening.
 * allow_residual: job files 1, model files 0. Returns 0, or AT_EUSER with
 * the message in c->err ("FILE:LINE: model.layers[3].stride: layer 'conv1'
 * (conv2d): expected ..."). specs is zeroed first. */
int arch_parse_node(const yt_ctx *c, const yt_node *list, const char *path,
                    int allow_residual, eng_layer *specs, int cap, int *n);

/* The same from YAML text; source names the text in messages, the path is
 * "layers". */
int arch_parse_text(const char *text, const char *source, int allow_residual,
                    eng_layer *specs, int cap, int *n, at_err *err);

/* The canonical flat text of n specs, each line starting with indent.
 * Caller frees. Spec fields left 0 where engine.h gives a default (stride,
 * dilation, eps, name) are written as that default. */
char *arch_emit_specs(const eng_layer *specs, int n, const char *indent);
/* arch_emit_specs(m->layers, m->n_layers, ""). */
char *arch_emit(const eng_model *m);


#endif
