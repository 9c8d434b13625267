#!/usr/bin/python3
"""Export a pickled PyTorch module to an attrib model file (format_version 2).

usage: export_torch.py MODEL.pt OUT.h5 --input-shape C,H,W [--tokens] [--import PATH]...

MODEL.pt holds a whole module (torch.save(model)); its classes must be
importable: the current directory, the --import paths and tools/ (for
attrib_torch) are put on sys.path. The module is put in eval mode, traced with
torch.fx, and its graph mapped to attrib's flat layer list (docs/torch.md lists
the supported modules, functions and options). Layer names are the PyTorch
module paths, so the tensors keep their state-dict names. --input-shape is
the per-example input shape (no batch dim); --tokens says the input holds
token ids (the model starts with an nn.Embedding; the shape is then (T)).

Before writing, the exporter checks every layer's shape against torch.fx's
ShapeProp and runs the layer list in PyTorch with attrib's semantics
(attrib_torch.AttribModel) against the original module in float64. The file
is written to a temporary file and renamed.

Exit status: 0 written; 2 unsupported model or bad arguments (the message
names the module path, its type and the option); 1 the self-check failed (a
bug in this exporter).
"""
import argparse
import contextlib
import copy
import io
import operator
import os
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
PROG = "export_torch.py"

SUPPORTED_MODULES = (
    "nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d(1), "
    "nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Embedding, nn.MultiheadAttention "
    "(self-attention), nn.TransformerEncoderLayer, nn.TransformerEncoder, nn.ReLU, nn.GELU, "
    "nn.Tanh, nn.Sigmoid, nn.SiLU, nn.Softplus, nn.Dropout, nn.Flatten, nn.Softmax, "
    "nn.LogSoftmax, nn.Identity, nn.Sequential, attrib_torch.PositionalEmbedding, "
    "attrib_torch.SelfAttention, attrib_torch.CausalSelfAttention, attrib_torch.SeqMean")
SUPPORTED_FUNCTIONS = (
    "relu, gelu, tanh, sigmoid, silu, softplus, dropout, flatten(x, 1), view/reshape to "
    "(N, -1), softmax/log_softmax over the last dim, mean(dim=1) on (N, T, E), "
    "mean(dim=(2, 3)) on (N, C, H, W), a + b of two tensors, contiguous")


class Unsupported(Exception):
    """A model or option attrib cannot represent (exit 2)."""


def type_name(m):
    cls = type(m)
    if cls.__module__.startswith("torch.nn"):
        return "nn." + cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def pair(v, what, path, mtype):
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    if len(v) != 2 or not all(isinstance(a, int) for a in v):
        raise Unsupported(f"module '{path}' ({mtype}): {what}={v} is not supported (need an int or 2 ints)")
    return v


class Exporter:
    def __init__(self, torch, model, tokens):
        import torch.nn as nn
        import torch.nn.functional as F
        import attrib_torch as at

        self.torch, self.nn, self.F, self.at = torch, nn, F, at
        self.model, self.tokens = model, tokens
        self.layers = []        # dicts: kind, name, input | inputs, keys..., _node
        self.tensors = {}       # state-dict name -> tensor
        self.names = set()
        self.ref = {}           # fx node -> name of the layer holding its value, or "input"
        self.mha_tuple = set()  # nodes that are (output, weights) tuples of attention
        self.gap = set()        # layer names of global_avgpool modules (torch keeps (C, 1, 1))
        self.called = {}        # module path -> calls

    # ---- helpers ---------------------------------------------------------

    def fresh(self, base):
        if base == "input":
            base = "input_"
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        return name

    def emit(self, kind, name, src, node=None, tensors=(), **keys):
        if name in self.names:
            raise Unsupported(f"layer name '{name}' is used twice")
        if not self.at.valid_name(name):
            raise Unsupported(f"layer name '{name}': attrib names use only letters, digits, "
                              "'_', '.' and '-'")
        if len(name) >= 128:
            raise Unsupported(f"layer name '{name}' is longer than 127 characters")
        L = {"kind": kind, "name": name, "_node": node}
        if kind == "add":
            L["inputs"] = list(src)
        else:
            L["input"] = src
        L.update(keys)
        self.layers.append(L)
        self.names.add(name)
        for suffix, t in tensors:
            if t is not None:
                self.tensors[f"{name}.{suffix}"] = t.detach()
        return name

    def src(self, n, node):
        """The layer name holding the value of argument n of node."""
        fx = self.torch.fx
        if not isinstance(n, fx.Node):
            raise Unsupported(f"node '{node.name}' ({node.op} {self.target_name(node)}): "
                              f"argument {n!r} is not a tensor; only tensor inputs are supported")
        if n in self.mha_tuple:
            raise Unsupported(f"node '{node.name}' uses the (output, weights) tuple of attention "
                              f"'{n.target}' directly; take [0]")
        if n not in self.ref:
            raise Unsupported(f"node '{node.name}' reads '{n.name}' ({n.op} {self.target_name(n)}), "
                              "which is not a tensor attrib computes")
        return self.ref[n]

    @staticmethod
    def target_name(node):
        t = node.target
        if callable(t):
            mod = getattr(t, "__module__", None) or ""
            return (mod + "." if mod and mod != "builtins" else "") + getattr(t, "__name__", str(t))
        return str(t)

    @staticmethod
    def arg(node, i, name, default=None):
        if len(node.args) > i:
            return node.args[i]
        return node.kwargs.get(name, default)

    def check_kwargs(self, node, allowed):
        extra = set(node.kwargs) - set(allowed)
        if extra:
            raise Unsupported(f"node '{node.name}' ({self.target_name(node)}): argument(s) "
                              f"{', '.join(sorted(extra))} not supported")

    def shape_of(self, node):
        tm = node.meta.get("tensor_meta")
        return None if tm is None or not hasattr(tm, "shape") else tuple(tm.shape)

    # ---- modules -----------------------------------------------------------

    def module(self, node, path, m):
        nn, at = self.nn, self.at
        mtype = type_name(m)
        own = [k for k in m.state_dict() if not k.endswith("num_batches_tracked")]
        self.called[path] = self.called.get(path, 0) + 1
        if own and self.called[path] > 1:
            raise Unsupported(f"module '{path}' ({mtype}) is called more than once; "
                              "shared weights are not supported")

        def opt(cond, what):
            if not cond:
                raise Unsupported(f"module '{path}' ({mtype}): {what} is not supported")

        def x0():
            if len(node.args) != 1 or node.kwargs:
                raise Unsupported(f"module '{path}' ({mtype}) is called with extra arguments; "
                                  "only module(x) is supported")
            return self.src(node.args[0], node)

        name = path if own else self.fresh(path)
        if isinstance(m, nn.Identity):
            return self.src(node.args[0], node)
        if type(m) is nn.Linear:
            return self.emit("linear", name, x0(), node, [("weight", m.weight), ("bias", m.bias)],
                             out_features=m.out_features, bias=m.bias is not None)
        if type(m) is nn.Conv2d:
            opt(m.groups == 1, f"groups={m.groups}")
            opt(m.padding_mode == "zeros", f"padding_mode='{m.padding_mode}'")
            k = pair(m.kernel_size, "kernel_size", path, mtype)
            s = pair(m.stride, "stride", path, mtype)
            d = pair(m.dilation, "dilation", path, mtype)
            p = m.padding
            if p == "valid":
                p = [0, 0]
            elif p == "same":
                opt(all(dd * (kk - 1) % 2 == 0 for dd, kk in zip(d, k)),
                    "padding='same' with an even total padding")
                p = [dd * (kk - 1) // 2 for dd, kk in zip(d, k)]
            p = pair(p, "padding", path, mtype)
            return self.emit("conv2d", name, x0(), node, [("weight", m.weight), ("bias", m.bias)],
                             out_channels=m.out_channels, kernel=k, stride=s, padding=p,
                             dilation=d, bias=m.bias is not None)
        if type(m) is nn.MaxPool2d:
            opt(not m.ceil_mode, "ceil_mode=True")
            opt(not m.return_indices, "return_indices=True")
            k = pair(m.kernel_size, "kernel_size", path, mtype)
            s = pair(m.stride if m.stride is not None else m.kernel_size, "stride", path, mtype)
            return self.emit("maxpool2d", name, x0(), node, kernel=k, stride=s,
                             padding=pair(m.padding, "padding", path, mtype),
                             dilation=pair(m.dilation, "dilation", path, mtype))
        if type(m) is nn.AvgPool2d:
            opt(not m.ceil_mode, "ceil_mode=True")
            opt(m.divisor_override is None, f"divisor_override={m.divisor_override}")
            k = pair(m.kernel_size, "kernel_size", path, mtype)
            s = pair(m.stride if m.stride is not None else m.kernel_size, "stride", path, mtype)
            return self.emit("avgpool2d", name, x0(), node, kernel=k, stride=s,
                             padding=pair(m.padding, "padding", path, mtype),
                             count_include_pad=bool(m.count_include_pad))
        if type(m) is nn.AdaptiveAvgPool2d:
            os_ = m.output_size
            opt(os_ in (1, (1, 1), [1, 1]), f"output_size={os_} (only 1 or (1, 1))")
            self.gap.add(name)
            return self.emit("global_avgpool", name, x0(), node)
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            opt(m.track_running_stats and m.running_mean is not None, "track_running_stats=False")
            kind = "batchnorm1d" if type(m) is nn.BatchNorm1d else "batchnorm2d"
            return self.emit(kind, name, x0(), node,
                             [("weight", m.weight), ("bias", m.bias),
                              ("running_mean", m.running_mean), ("running_var", m.running_var)],
                             eps=float(m.eps), affine=bool(m.affine))
        if type(m) is nn.LayerNorm:
            opt(len(m.normalized_shape) == 1,
                f"normalized_shape={tuple(m.normalized_shape)} (only the last dim)")
            return self.emit("layernorm", name, x0(), node, [("weight", m.weight), ("bias", m.bias)],
                             eps=float(m.eps), affine=bool(m.elementwise_affine))
        if type(m) is nn.Embedding:
            opt(m.padding_idx is None, f"padding_idx={m.padding_idx}")
            opt(m.max_norm is None, f"max_norm={m.max_norm}")
            return self.emit("embedding", name, x0(), node, [("weight", m.weight)],
                             num_embeddings=m.num_embeddings, embedding_dim=m.embedding_dim)
        if isinstance(m, at.PositionalEmbedding) or type(m).__name__ == "PositionalEmbedding" and \
                getattr(type(m), "__module__", "") == "attrib_torch":
            return self.emit("pos_embedding", name, x0(), node, [("weight", m.weight)],
                             max_len=int(m.weight.shape[0]))
        if isinstance(m, at.SelfAttention):
            self.check_mha(m, path, mtype)
            return self.emit("attention", name, x0(), node, self.mha_tensors(m),
                             heads=m.num_heads, causal=bool(m.causal), bias=m.in_proj_bias is not None)
        if type(m) is nn.MultiheadAttention:
            self.check_mha(m, path, mtype)
            q = self.arg(node, 0, "query")
            k = self.arg(node, 1, "key")
            v = self.arg(node, 2, "value")
            if not (q is k is v):
                raise Unsupported(f"module '{path}' ({mtype}): only self-attention attn(x, x, x) "
                                  "is supported (query, key and value must be the same tensor)")
            for a in ("key_padding_mask", "attn_mask"):
                if self.arg(node, {"key_padding_mask": 3, "attn_mask": 5}[a], a) is not None:
                    raise Unsupported(f"module '{path}' ({mtype}): {a} is not supported "
                                      "(use attrib_torch.CausalSelfAttention for a causal mask)")
            out = self.emit("attention", name, self.src(q, node), node, self.mha_tensors(m),
                            heads=m.num_heads, causal=False, bias=m.in_proj_bias is not None)
            self.mha_tuple.add(node)  # its value is (output, weights): only [0] may be used
            return out
        if type(m) is nn.TransformerEncoderLayer:
            if len(node.args) != 1 or any(v is not None for v in node.kwargs.values()):
                raise Unsupported(f"module '{path}' ({mtype}): src_mask / src_key_padding_mask "
                                  "are not supported")
            out = self.encoder_layer(m, path, self.src(node.args[0], node))
            self.layers[-1]["_node"] = node
            return out
        if type(m) is nn.TransformerEncoder:
            if len(node.args) != 1 or any(v is not None for v in node.kwargs.values()):
                raise Unsupported(f"module '{path}' ({mtype}): mask / src_key_padding_mask "
                                  "are not supported")
            h = self.src(node.args[0], node)
            for i, lay in enumerate(m.layers):
                if type(lay) is not nn.TransformerEncoderLayer:
                    raise Unsupported(f"module '{path}.layers.{i}' ({type_name(lay)}) is not supported")
                h = self.encoder_layer(lay, f"{path}.layers.{i}", h)
            if m.norm is not None:
                if type(m.norm) is not nn.LayerNorm or len(m.norm.normalized_shape) != 1:
                    raise Unsupported(f"module '{path}.norm' ({type_name(m.norm)}) is not supported")
                h = self.emit("layernorm", f"{path}.norm", h, None,
                              [("weight", m.norm.weight), ("bias", m.norm.bias)],
                              eps=float(m.norm.eps), affine=bool(m.norm.elementwise_affine))
            self.layers[-1]["_node"] = node
            return h
        acts = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}
        if type(m) in acts:
            return self.emit(acts[type(m)], name, x0(), node)
        if type(m) is nn.GELU:
            opt(m.approximate in ("none", "tanh"), f"approximate='{m.approximate}'")
            return self.emit("gelu" if m.approximate == "none" else "gelu_tanh", name, x0(), node)
        if type(m) is nn.Softplus:
            opt(m.beta == 1 and m.threshold == 20, f"beta={m.beta}, threshold={m.threshold} "
                "(only beta=1, threshold=20)")
            return self.emit("softplus", name, x0(), node)
        if type(m) in (nn.Dropout, nn.Dropout2d, getattr(nn, "Dropout1d", nn.Dropout)):
            return self.emit("dropout", name, x0(), node, p=float(m.p))
        if type(m) is nn.Flatten:
            opt(m.start_dim == 1 and m.end_dim == -1,
                f"start_dim={m.start_dim}, end_dim={m.end_dim} (only 1, -1)")
            return self.emit("flatten", name, x0(), node)
        if type(m) in (nn.Softmax, nn.LogSoftmax):
            nd = len(self.shape_of(node) or ())
            opt(m.dim in (-1, nd - 1), f"dim={m.dim} (only the last dim)")
            return self.emit("softmax" if type(m) is nn.Softmax else "log_softmax", name, x0(), node)
        raise Unsupported(f"module '{path}' ({mtype}) is not supported; supported: {SUPPORTED_MODULES}")

    def check_mha(self, m, path, mtype):
        def opt(cond, what):
            if not cond:
                raise Unsupported(f"module '{path}' ({mtype}): {what} is not supported")

        opt(m.batch_first, "batch_first=False")
        opt(m._qkv_same_embed_dim, "kdim/vdim different from embed_dim")
        opt(m.bias_k is None and m.bias_v is None, "add_bias_kv=True")
        opt(not m.add_zero_attn, "add_zero_attn=True")
        opt((m.in_proj_bias is None) == (m.out_proj.bias is None),
            "in_proj bias without out_proj bias (or the reverse)")

    @staticmethod
    def mha_tensors(m):
        return [("in_proj_weight", m.in_proj_weight), ("in_proj_bias", m.in_proj_bias),
                ("out_proj.weight", m.out_proj.weight), ("out_proj.bias", m.out_proj.bias)]

    def encoder_layer(self, m, path, x):
        """nn.TransformerEncoderLayer as layer norms, attention, residual adds
        and the feed-forward pair, named after its submodules."""
        nn, F = self.nn, self.F
        mtype = type_name(m)
        self.check_mha(m.self_attn, f"{path}.self_attn", type_name(m.self_attn))
        act = m.activation
        if act is F.relu or type(act) is nn.ReLU:
            act_kind = "relu"
        elif act is F.gelu or (type(act) is nn.GELU and act.approximate == "none"):
            act_kind = "gelu"
        elif type(act) is nn.GELU and act.approximate == "tanh":
            act_kind = "gelu_tanh"
        else:
            raise Unsupported(f"module '{path}' ({mtype}): activation {act} is not supported "
                              "(relu or gelu)")
        for nm in ("norm1", "norm2"):
            ln = getattr(m, nm)
            if type(ln) is not nn.LayerNorm or len(ln.normalized_shape) != 1:
                raise Unsupported(f"module '{path}.{nm}' ({type_name(ln)}) is not supported")

        def norm(nm, src):
            ln = getattr(m, nm)
            return self.emit("layernorm", f"{path}.{nm}", src, None,
                             [("weight", ln.weight), ("bias", ln.bias)],
                             eps=float(ln.eps), affine=bool(ln.elementwise_affine))

        def attn(src):
            a = m.self_attn
            return self.emit("attention", f"{path}.self_attn", src, None, self.mha_tensors(a),
                             heads=a.num_heads, causal=False, bias=a.in_proj_bias is not None)

        def ff(src):
            h = src
            for i, lin in enumerate((m.linear1, m.linear2)):
                nm = f"linear{i + 1}"
                h = self.emit("linear", f"{path}.{nm}", h, None,
                              [("weight", lin.weight), ("bias", lin.bias)],
                              out_features=lin.out_features, bias=lin.bias is not None)
                if i == 0:
                    h = self.emit(act_kind, self.fresh(f"{path}.activation"), h)
            return h

        if m.norm_first:
            a = attn(norm("norm1", x))
            r1 = self.emit("add", self.fresh(f"{path}.residual1"), [x, a])
            f = ff(norm("norm2", r1))
            return self.emit("add", self.fresh(f"{path}.residual2"), [r1, f])
        a = attn(x)
        n1 = norm("norm1", self.emit("add", self.fresh(f"{path}.residual1"), [x, a]))
        f = ff(n1)
        return norm("norm2", self.emit("add", self.fresh(f"{path}.residual2"), [n1, f]))

    # ---- functions and methods --------------------------------------------

    def function(self, node):
        torch, F = self.torch, self.F
        t, op = node.target, node.op
        meth = t if op == "call_method" else None
        fname = meth or getattr(t, "__name__", str(t))
        name = self.fresh(node.name)

        def is_(*fns, methods=()):
            return (op == "call_function" and any(t is f for f in fns)) or (meth in methods)

        def x():
            return self.src(node.args[0], node)

        # aliases: values attrib already holds
        if op == "call_function" and t is operator.getitem and node.args[0] in self.mha_tuple:
            if node.args[1] != 0:
                raise Unsupported(f"node '{node.name}': attention weights (output [1] of "
                                  f"'{node.args[0].target}') are not supported; use [0]")
            self.ref[node] = self.ref[node.args[0]]
            return
        if meth == "contiguous":
            self.ref[node] = x()
            return
        if is_(F.dropout, methods=()):
            self.ref[node] = self.emit("dropout", name, x(), node, p=float(self.arg(node, 1, "p", 0.5)))
            return
        simple = [((torch.relu, F.relu), ("relu",), "relu"), ((torch.tanh, F.tanh), ("tanh",), "tanh"),
                  ((torch.sigmoid, F.sigmoid), ("sigmoid",), "sigmoid"), ((F.silu,), (), "silu")]
        for fns, methods, kind in simple:
            if is_(*fns, methods=methods):
                self.check_kwargs(node, ("inplace",))
                self.ref[node] = self.emit(kind, name, x(), node)
                return
        if is_(F.gelu):
            self.check_kwargs(node, ("approximate",))
            a = self.arg(node, 1, "approximate", "none")
            if a not in ("none", "tanh"):
                raise Unsupported(f"node '{node.name}' (gelu): approximate='{a}' is not supported")
            self.ref[node] = self.emit("gelu" if a == "none" else "gelu_tanh", name, x(), node)
            return
        if is_(F.softplus):
            b, th = self.arg(node, 1, "beta", 1), self.arg(node, 2, "threshold", 20)
            if b != 1 or th != 20:
                raise Unsupported(f"node '{node.name}' (softplus): beta={b}, threshold={th} "
                                  "is not supported (only beta=1, threshold=20)")
            self.ref[node] = self.emit("softplus", name, x(), node)
            return
        if is_(torch.flatten, methods=("flatten",)):
            s, e = self.arg(node, 1, "start_dim", 0), self.arg(node, 2, "end_dim", -1)
            if s != 1 or e != -1:
                raise Unsupported(f"node '{node.name}' (flatten): start_dim={s}, end_dim={e} is "
                                  "not supported (only flatten(x, 1))")
            self.ref[node] = self.emit("flatten", name, x(), node)
            return
        if is_(torch.reshape, methods=("view", "reshape")):
            src_shape, out_shape = self.shape_of(node.args[0]), self.shape_of(node)
            if src_shape is None or out_shape is None or len(out_shape) != 2 or \
                    out_shape[0] != src_shape[0]:
                raise Unsupported(f"node '{node.name}' ({fname}): only reshapes to (N, -1) are "
                                  f"supported, got {src_shape} -> {out_shape}")
            if len(src_shape) == 2:
                self.ref[node] = x()
            else:
                self.ref[node] = self.emit("flatten", name, x(), node)
            return
        for fns, methods, kind in (((torch.softmax, F.softmax), ("softmax",), "softmax"),
                                   ((torch.log_softmax, F.log_softmax), ("log_softmax",), "log_softmax")):
            if is_(*fns, methods=methods):
                d = self.arg(node, 1, "dim")
                nd = len(self.shape_of(node) or ())
                if d not in (-1, nd - 1):
                    raise Unsupported(f"node '{node.name}' ({kind}): dim={d} is not supported "
                                      "(only the last dim)")
                self.ref[node] = self.emit(kind, name, x(), node)
                return
        if is_(torch.mean, methods=("mean",)):
            d = self.arg(node, 1, "dim")
            keep = self.arg(node, 2, "keepdim", False)
            nd = len(self.shape_of(node.args[0]) or ())
            dims = sorted((v % nd) for v in ((d,) if isinstance(d, int) else tuple(d or ())))
            if not keep and nd == 3 and dims == [1]:
                self.ref[node] = self.emit("seq_mean", name, x(), node)
                return
            if not keep and nd == 4 and dims == [2, 3]:
                self.ref[node] = self.emit("global_avgpool", name, x(), node)
                return
            raise Unsupported(f"node '{node.name}' (mean): dim={d}, keepdim={keep} on a {nd}-d "
                              "tensor is not supported (only mean(dim=1) on (N, T, E) or "
                              "mean(dim=(2, 3)) on (N, C, H, W))")
        if is_(operator.add, operator.iadd, torch.add, methods=("add", "add_")):
            a, b = node.args[0], self.arg(node, 1, "other")
            alpha = node.kwargs.get("alpha", 1)
            fx = self.torch.fx
            if not isinstance(a, fx.Node) or not isinstance(b, fx.Node):
                raise Unsupported(f"node '{node.name}' (add): adding a constant is not supported; "
                                  "only the sum of two tensors")
            if alpha != 1:
                raise Unsupported(f"node '{node.name}' (add): alpha={alpha} is not supported")
            sa, sb = self.shape_of(a), self.shape_of(b)
            if sa != sb:
                raise Unsupported(f"node '{node.name}' (add): broadcasting {sa} + {sb} is not "
                                  "supported; both tensors must have one shape")
            self.ref[node] = self.emit("add", name, [self.src(a, node), self.src(b, node)], node)
            return
        raise Unsupported(f"{'method' if meth else 'function'} '{self.target_name(node)}' "
                          f"(node '{node.name}') is not supported; supported: {SUPPORTED_FUNCTIONS}")

    # ---- the graph ---------------------------------------------------------

    def run(self, gm):
        fx = self.torch.fx
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise Unsupported(f"forward() takes {len(placeholders)} inputs; attrib models take one")
        out_node = None
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                self.ref[node] = "input"
            elif node.op == "get_attr":
                if isinstance(getattr_path(gm, node.target), self.torch.Tensor) and \
                        any(u.op != "output" for u in node.users):
                    raise Unsupported(f"forward() uses parameter or buffer '{node.target}' "
                                      "directly; only supported modules may own tensors")
            elif node.op == "call_module":
                m = gm.get_submodule(node.target)
                r = self.module(node, node.target, m)
                if r is not None:
                    self.ref[node] = r
            elif node.op in ("call_function", "call_method"):
                mha_item = node.op == "call_function" and node.target is operator.getitem and \
                    node.args[0] in self.mha_tuple
                if self.shape_of(node) is None and not mha_item:
                    continue  # shape arithmetic (x.size(0), x.shape[1]): no tensor
                self.function(node)
            elif node.op == "output":
                out_node = node
        res = out_node.args[0]
        if not isinstance(res, fx.Node):
            raise Unsupported("forward() must return one tensor (N, C), not a tuple or dict")
        last = self.src(res, out_node)
        if last == "input" or not self.layers:
            raise Unsupported("the model computes nothing (its output is its input)")
        if last != self.layers[-1]["name"]:
            raise Unsupported(f"the model's output is layer '{last}', but layers computed after it "
                              f"('{self.layers[-1]['name']}') would follow; attrib's output is the "
                              "last layer")
        for L in self.layers:  # a global_avgpool module's output (C, 1, 1) only reaches flatten
            users = [M for M in self.layers if M is not L and
                     (M.get("input") == L["name"] or L["name"] in M.get("inputs", ()))]
            if L["name"] in self.gap and any(M["kind"] != "flatten" for M in users):
                bad = next(M for M in users if M["kind"] != "flatten")
                raise Unsupported(f"module '{L['name']}' (nn.AdaptiveAvgPool2d) must be followed by "
                                  f"a flatten; '{bad['name']}' ({bad['kind']}) reads it")


def getattr_path(root, target):
    obj = root
    for p in target.split("."):
        obj = getattr(obj, p)
    return obj


def engine_shapes(layers, input_shape):
    """Per-example output shape of every layer under attrib's rules."""
    shapes = {"input": tuple(input_shape)}
    for L in layers:
        k = L["kind"]
        if k == "add":
            a, b = (shapes[s] for s in L["inputs"])
            if a != b:
                raise Unsupported(f"layer '{L['name']}' (add): shapes {a} and {b} differ")
            s = a
        else:
            s = shapes[L["input"]]
            if k == "linear":
                s = s[:-1] + (L["out_features"],)
            elif k in ("conv2d", "maxpool2d", "avgpool2d"):
                if len(s) != 3:
                    raise Unsupported(f"layer '{L['name']}' ({k}): needs (C, H, W), got {s}")
                kh, kw = L["kernel"]
                sh, sw = L["stride"]
                ph, pw = L["padding"]
                dh, dw = L.get("dilation", [1, 1])
                oh = (s[1] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
                ow = (s[2] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
                s = ((L["out_channels"] if k == "conv2d" else s[0]), oh, ow)
            elif k == "global_avgpool":
                s = s[:1]
            elif k == "embedding":
                s = s + (L["embedding_dim"],)
            elif k == "flatten":
                n = 1
                for v in s:
                    n *= v
                s = (n,)
            elif k == "seq_mean":
                s = s[1:]
        shapes[L["name"]] = s
    return shapes


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("model", metavar="MODEL.pt")
    ap.add_argument("out", metavar="OUT.h5")
    ap.add_argument("--input-shape", required=True, help="per-example input shape, e.g. 1,28,28 or 16")
    ap.add_argument("--tokens", action="store_true", help="the input holds token ids")
    ap.add_argument("--import", dest="imports", action="append", default=[], metavar="PATH",
                    help="directory to put on sys.path to unpickle the model's classes")
    ap.add_argument("--seed", type=int, default=0, help="seed of the self-check's random input")
    a = ap.parse_args(argv)

    def fail(msg, code=2):
        print(f"{PROG}: {a.model}: {msg}", file=sys.stderr)
        return code

    try:
        shape = [int(v) for v in a.input_shape.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        return fail(f"--input-shape '{a.input_shape}': expected comma-separated positive integers")
    if not 1 <= len(shape) <= 3 or any(v <= 0 for v in shape):
        return fail(f"--input-shape '{a.input_shape}': expected 1 to 3 positive integers")
    if a.tokens and len(shape) != 1:
        return fail(f"--tokens needs a 1-d --input-shape (the sequence length T), got {shape}")
    for p in [TOOLS, os.getcwd()] + [os.path.abspath(p) for p in a.imports]:
        if p not in sys.path:
            sys.path.insert(0, p)

    import numpy as np
    import torch
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    import attrib_torch as at

    if not os.path.isfile(a.model):
        return fail("no such file")
    try:
        model = torch.load(a.model, map_location="cpu")
    except Exception as e:  # unpickling runs arbitrary user code
        if "on <module '__main__'" in str(e):
            return fail(f"cannot load ({type(e).__name__}: {e}): the model's class was defined in "
                        "the script that saved it (__main__); define it in a module, import it "
                        "there, save again, and pass that module's directory with --import")
        return fail(f"cannot load ({type(e).__name__}: {e}); if it names a missing module, "
                    "pass its directory with --import")
    if not isinstance(model, torch.nn.Module):
        return fail(f"holds a {type(model).__name__}, not an nn.Module; save the whole model with "
                    "torch.save(model, path) (import_torch.py --module loads state dicts)")
    model = model.float().eval()

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            if isinstance(m, (torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer,
                              torch.nn.TransformerEncoder, at.PositionalEmbedding)):
                return True
            return super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(model)
    except Exception as e:
        return fail(f"torch.fx cannot trace forward() ({type(e).__name__}: {e}); attrib needs a "
                    "forward without data-dependent control flow")
    gm = torch.fx.GraphModule(model, graph)
    gm.graph.eliminate_dead_code()
    gm.recompile()

    g = torch.Generator().manual_seed(a.seed)
    if a.tokens:
        embs = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
        if not embs:
            return fail("--tokens, but the model has no nn.Embedding")
        V = embs[0].num_embeddings
        x = torch.randint(0, V, (3, *shape), generator=g)
    else:
        x = torch.randn(3, *shape, generator=g)
    try:
        # with autograd on: torch 1.13's MHA inference fast path (no_grad) fails
        # for bias=False; ShapeProp prints a traceback of its own on failure
        with contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(x)
    except Exception as e:
        return fail(f"running the model on an input of shape (N, {', '.join(map(str, shape))}) "
                    f"failed ({type(e).__name__}: {e}); check --input-shape")

    ex = Exporter(torch, model, a.tokens)
    try:
        ex.run(gm)
        layers = ex.layers
        if a.tokens and layers[0]["kind"] != "embedding":
            raise Unsupported(f"--tokens: the first layer must be an nn.Embedding, found "
                              f"'{layers[0]['name']}' ({layers[0]['kind']})")
        for i, L in enumerate(layers):
            if L["kind"] == "embedding" and (i != 0 or not a.tokens):
                raise Unsupported(f"layer '{L['name']}' (embedding) must be the first layer and "
                                  "needs --tokens")
        used = set(ex.tensors)
        unused = [k for k in model.state_dict() if k not in used and not k.endswith("num_batches_tracked")]
        if unused:
            raise Unsupported(f"tensor(s) {', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''} "
                              "are not used by forward(); attrib stores exactly the tensors its "
                              "layers use (delete unused modules before exporting)")
        eshapes = engine_shapes(layers, shape)
        for L in layers:
            node = L.get("_node")
            if node is None:
                continue
            ts = ex.shape_of(node)
            if ts is None:
                continue
            want, got = eshapes[L["name"]], tuple(ts[1:])
            if L["name"] in ex.gap:
                got = tuple(v for i, v in enumerate(got) if i == 0 or v != 1)
            if want != got:
                raise Unsupported(f"layer '{L['name']}' ({L['kind']}): torch computes shape {got}, "
                                  f"attrib would compute {want}")
        out_shape = eshapes[layers[-1]["name"]]
        if len(out_shape) != 1:
            raise Unsupported(f"the model's output per example has shape {out_shape}; attrib needs "
                              "(C): flatten it")
    except Unsupported as e:
        return fail(str(e))

    for L in layers:
        L.pop("_node", None)
    arch = at.emit_architecture(layers)
    sd = {k: v.float().contiguous() for k, v in ex.tensors.items()}

    # Self-check: the layer list under attrib's semantics reproduces the module.
    ref_model = copy.deepcopy(model).double().eval()
    mine = at.build_attrib_model(at.parse_architecture(arch), shape,
                                 {k: v.numpy() for k, v in sd.items()}).double()
    xin = x if a.tokens else x.double()
    want = ref_model(xin).detach()  # autograd on: no MHA fast path (see above)
    got = mine(xin if a.tokens else xin.reshape(xin.shape[0], -1)).detach()
    err = float((got - want).abs().max() / max(float(want.abs().max()), 1e-30))
    if not err <= 1e-9:
        return fail(f"self-check failed: the exported layer list gives outputs that differ from "
                    f"the module's by {err:.2e} (relative, float64); this is a bug in {PROG} or "
                    "a construct it does not detect", 1)

    attrs = {"source": "tools/export_torch.py", "torch_module": type(model).__qualname__,
             "torch_module_path": f"{type(model).__module__}.{type(model).__qualname__}",
             "torch_version": torch.__version__, "exported_from": os.path.abspath(a.model),
             "input_kind": "tokens" if a.tokens else "features"}
    digest = at.write_model_file(a.out, arch, shape, out_shape[0], sd, attrs)
    n_par = sum(int(np.prod(v.shape)) for v in sd.values())
    print(f"{PROG}: wrote {a.out}: {len(layers)} layers, {len(sd)} tensors ({n_par} values), "
          f"input ({', '.join(map(str, shape))}), {out_shape[0]} outputs, sha256 {digest[:12]}; "
          f"self-check max rel err {err:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
