"""attrib_torch — PyTorch helpers for attrib model files (format_version 2).

Import this module when building a PyTorch model you mean to export with
tools/export_torch.py, and to read an attrib model file back into PyTorch:

    import sys; sys.path.insert(0, "tools")
    from attrib_torch import PositionalEmbedding, SelfAttention, CausalSelfAttention, SeqMean
    net = load_attrib_model("models/cnn.h5")          # an nn.Module, eval mode
    logits = net(x)                                   # x (N, *input_shape) or (N, D)

Modules (each maps to one attrib layer kind):
  PositionalEmbedding(max_len, dim)  pos_embedding: x + weight[:T], weight (max_len, dim)
  SelfAttention(dim, heads, bias=True, causal=False)
                                     attention: an nn.MultiheadAttention(batch_first=True)
                                     called as attn(x, x, x) with, when causal, the mask
                                     that hides later positions. It IS an
                                     nn.MultiheadAttention, so its state-dict keys are
                                     MHA's: in_proj_weight, in_proj_bias, out_proj.weight,
                                     out_proj.bias. forward(x) returns the output only.
  CausalSelfAttention(dim, heads, bias=True)   SelfAttention with causal=True
  SeqMean()                          seq_mean: x.mean(dim=1) over (N, T, E)

Also here: the layer-list text of model files (parse_architecture,
emit_architecture), the content hash (content_sha256) and the reader and writer of
model files (read_model_file, write_model_file). Needs torch, numpy and h5py.
"""
import hashlib
import os
import re
import tempfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "attrib-model"
FORMAT_VERSION = 2

# ---------------------------------------------------------------- modules


class PositionalEmbedding(nn.Module):
    """A learned positional table added to a sequence: x (N, T, E) + weight[:T]."""

    def __init__(self, max_len, dim):
        super().__init__()
        self.max_len, self.dim = int(max_len), int(dim)
        self.weight = nn.Parameter(torch.randn(self.max_len, self.dim) * 0.02)

    def forward(self, x):
        return x + self.weight[: x.shape[1]]

    def extra_repr(self):
        return f"max_len={self.max_len}, dim={self.dim}"


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention(dim, heads, bias, batch_first=True) used as
    self-attention: forward(x) = MHA(x, x, x)[0], with the causal mask
    (position t sees positions <= t) when causal is true."""

    def __init__(self, dim, heads, bias=True, causal=False):
        super().__init__(dim, heads, bias=bias, batch_first=True)
        self.causal = bool(causal)

    def forward(self, x):
        mask = None
        if self.causal:
            T = x.shape[1]
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        # MHA's own forward without its inference fast path (torch 1.13's
        # fails for bias=False under no_grad); the same arithmetic
        q = x.transpose(0, 1)  # (T, N, E)
        out, _ = F.multi_head_attention_forward(
            q, q, q, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            None, None, False, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, need_weights=False, attn_mask=mask)
        return out.transpose(0, 1)

    def extra_repr(self):
        return f"dim={self.embed_dim}, heads={self.num_heads}, causal={self.causal}"


class CausalSelfAttention(SelfAttention):
    """SelfAttention with the causal mask."""

    def __init__(self, dim, heads, bias=True):
        super().__init__(dim, heads, bias=bias, causal=True)


class SeqMean(nn.Module):
    """Mean over positions: (N, T, E) -> (N, E)."""

    def forward(self, x):
        return x.mean(dim=1)


# ------------------------------------------------------ layer-list text

# Every key a kind has, in the order they are written (after kind, name and
# input/inputs), with the default the C parser applies when a key is absent.
KIND_KEYS = OrderedDict([
    ("linear", [("out_features", None), ("bias", True)]),
    ("relu", []), ("gelu", []), ("gelu_tanh", []), ("tanh", []), ("sigmoid", []),
    ("silu", []), ("softplus", []),
    ("conv2d", [("out_channels", None), ("kernel", None), ("stride", [1, 1]),
                ("padding", [0, 0]), ("dilation", [1, 1]), ("bias", True)]),
    ("maxpool2d", [("kernel", None), ("stride", None), ("padding", [0, 0]),
                   ("dilation", [1, 1])]),
    ("avgpool2d", [("kernel", None), ("stride", None), ("padding", [0, 0]),
                   ("count_include_pad", True)]),
    ("global_avgpool", []),
    ("batchnorm1d", [("eps", 1e-5), ("affine", True)]),
    ("batchnorm2d", [("eps", 1e-5), ("affine", True)]),
    ("layernorm", [("eps", 1e-5), ("affine", True)]),
    ("embedding", [("num_embeddings", None), ("embedding_dim", None)]),
    ("pos_embedding", [("max_len", None)]),
    ("attention", [("heads", None), ("causal", False), ("bias", True)]),
    ("dropout", [("p", 0.5)]),
    ("flatten", []), ("softmax", []), ("log_softmax", []),
    ("add", []), ("seq_mean", []),
])
PAIR_KEYS = ("kernel", "stride", "padding", "dilation")


_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-]+")
_YAML_WORDS = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")


def valid_name(s):
    """Layer names attrib accepts: letters, digits, '_', '.', '-'."""
    return bool(_NAME_CHARS.fullmatch(s))


def _fmt_name(s):
    # as io/arch.c's emit_name: plain when it reads back as the same string in
    # YAML 1.1 and 1.2, else double-quoted
    plain = bool(s) and (s[0].isascii() and (s[0].isalpha() or s[0] == "_")) and valid_name(s)
    if plain and len(s) < 16 and s.lower() in _YAML_WORDS:
        plain = False
    if plain:
        return s
    out = []
    for ch in s:
        cp = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif cp < 0x20 or 0x7F <= cp <= 0x9F:
            out.append(f"\\x{cp:02x}")
        elif cp in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
            out.append(f"\\u{cp:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _fmt_num(v):
    # as io/ytree.c's yt_emit_num: the shortest %g that reads back exactly,
    # fixed notation unless very small or large, and a '.0' on integers
    v = float(v)
    for prec in range(1, 18):
        t = "%.*g" % (prec, v)
        if float(t) == v:
            break
    if "e" in t and 1e-4 <= abs(v) < 1e16:
        for d in range(21):
            f = "%.*f" % (d, v)
            if float(f) == v:
                t = f
                break
    # a '.' in every mantissa: YAML 1.1 (PyYAML) reads "1e-05" as a string
    if "." in t:
        return t
    if "e" in t:
        m, e = t.split("e")
        return m + ".0e" + e
    return t + ".0"


def _fmt_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _fmt_num(v)
    if isinstance(v, (list, tuple)):
        if len(v) == 2 and v[0] == v[1]:
            return _fmt_value(v[0])
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return _fmt_name(str(v))


def emit_architecture(layers):
    """The canonical flat layer list, byte for byte what attrib's arch_emit
    writes (io/arch.c): one flow mapping per line, every key of the kind
    written (defaults too) in attrib's key order, pairs [a, a] as a, numbers
    in their shortest exact form; `input` only when a layer does not read the
    previous one; `add` always has `inputs`. layers: list of dicts with kind,
    name, optional input / inputs and the kind's keys."""
    lines, prev = [], "input"
    for L in layers:
        kind = L["kind"]
        parts = [f"kind: {kind}", f"name: {_fmt_name(L['name'])}"]
        if kind == "add":
            parts.append("inputs: [" + ", ".join(_fmt_name(a) for a in L["inputs"]) + "]")
        elif L.get("input", prev) != prev:
            parts.append(f"input: {_fmt_name(L['input'])}")
        for key, default in KIND_KEYS[kind]:
            v = L.get(key, default)
            if v is None:
                raise ValueError(f"layer '{L['name']}' ({kind}): missing {key}")
            if key in PAIR_KEYS:
                v = [int(v), int(v)] if isinstance(v, (int, np.integer)) else [int(a) for a in v]
            elif key in ("eps", "p"):
                v = float(v)
            elif isinstance(default, bool):
                v = bool(v)
            parts.append(f"{key}: {_fmt_value(v)}")
        lines.append("- {" + ", ".join(parts) + "}")
        prev = L["name"]
    return "\n".join(lines) + "\n"


_TOKEN = re.compile(r'\s*(\[|\]|\{|\}|,|:|"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^\s\[\]{},:"\']+(?::[^\s\[\]{},]+)*)')


def _scalar(tok):
    if tok[0] == '"':
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok[0] == "'":
        return tok[1:-1]
    low = tok.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~"):
        return None
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


def _parse_flow(text):
    toks = [t for t in _TOKEN.findall(text)]
    pos = 0

    def value():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "{":
            d = OrderedDict()
            while toks[pos] != "}":
                k = _scalar(toks[pos])
                if toks[pos + 1] != ":":
                    raise ValueError(f"expected ':' after {k!r}")
                pos += 2
                d[str(k)] = value()
                if toks[pos] == ",":
                    pos += 1
            pos += 1
            return d
        if t == "[":
            out = []
            while toks[pos] != "]":
                out.append(value())
                if toks[pos] == ",":
                    pos += 1
            pos += 1
            return out
        return _scalar(t)

    v = value()
    if pos != len(toks):
        raise ValueError("trailing text")
    return v


def parse_architecture(text):
    """Parse a layer list (the flat form written by attrib and by
    emit_architecture; other YAML goes through PyYAML if it is installed).
    Returns a list of dicts; every layer gets its name (default layers.<i>)
    and `input`/`inputs` resolved to names ("input" = the model input)."""
    layers = []
    try:
        for line in text.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if not (s.startswith("- {") and s.endswith("}")):
                raise ValueError(line)
            layers.append(_parse_flow(s[2:]))
    except (ValueError, IndexError):
        import yaml  # block-style YAML: rare, only hand-written files

        layers = yaml.safe_load(text)
    prev = "input"
    for i, L in enumerate(layers):
        L.setdefault("name", f"layers.{i}")
        L["name"] = str(L["name"])
        if L["kind"] == "add":
            L["inputs"] = [str(a) for a in L["inputs"]]
        else:
            L["input"] = str(L.get("input", prev))
        for key, default in KIND_KEYS.get(L["kind"], []):
            if key not in L and default is not None:
                L[key] = default
            if key in PAIR_KEYS and key in L and L[key] is not None and not isinstance(L[key], list):
                L[key] = [int(L[key]), int(L[key])]
            if key in ("eps", "p") and isinstance(L.get(key), str):
                L[key] = float(L[key])
        if L["kind"] in ("maxpool2d", "avgpool2d") and L.get("stride") is None:
            L["stride"] = list(L["kernel"])
        prev = L["name"]
    return layers


# ------------------------------------------------------------ hashing


def content_sha256(architecture, state_dict):
    """SHA-256 of the architecture text's UTF-8 bytes, then for every tensor
    in ascending byte order of names: name, NUL, float32 little-endian bytes."""
    h = hashlib.sha256(architecture.encode("utf-8"))
    for name in sorted(state_dict, key=lambda n: n.encode("utf-8")):
        a = np.ascontiguousarray(_np32(state_dict[name]), dtype="<f4")
        h.update(name.encode("utf-8") + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


def _np32(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


# -------------------------------------------------------- model files


def write_model_file(path, architecture, input_shape, n_classes, state_dict, attrs=None):
    """Write a format_version 2 model file via a temporary file in the same
    directory and a rename. state_dict: name -> tensor/array (stored float32).
    Returns the content hash."""
    import h5py

    sd = OrderedDict((k, np.ascontiguousarray(_np32(v), dtype="<f4")) for k, v in state_dict.items())
    digest = content_sha256(architecture, sd)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["architecture"] = architecture
            f.attrs["input_shape"] = np.asarray(input_shape, dtype=np.int64)
            f.attrs["n_classes"] = np.int64(n_classes)
            f.attrs["content_sha256"] = digest
            for k, v in (attrs or {}).items():
                f.attrs[k] = str(v) if isinstance(v, str) else v
            g = f.create_group("state_dict")
            for k in sorted(sd, key=lambda n: n.encode("utf-8")):
                g.create_dataset(k, data=sd[k])
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest


class ModelFileError(Exception):
    pass


def read_model_file(path, check_hash=True):
    """Read a model file: returns a dict with architecture (text), layers
    (parsed), input_shape, n_classes, state_dict (OrderedDict name -> float32
    numpy array, h5py's name order) and attrs. Raises ModelFileError naming
    the file (and the tensor) on a bad file."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ModelFileError(f"{path}: cannot open as HDF5 ({e})")
    with f:
        def attr(name):
            if name not in f.attrs:
                raise ModelFileError(f"{path}: root attribute '{name}' is missing")
            v = f.attrs[name]
            return v.decode() if isinstance(v, bytes) else v

        fmt = attr("format")
        if fmt != FORMAT:
            raise ModelFileError(f"{path}: format is '{fmt}', expected '{FORMAT}'")
        ver = int(attr("format_version"))
        if ver != FORMAT_VERSION:
            raise ModelFileError(f"{path}: format_version {ver}; this tool reads version {FORMAT_VERSION}")
        arch = str(attr("architecture"))
        out = {
            "architecture": arch,
            "input_shape": [int(v) for v in np.atleast_1d(attr("input_shape"))],
            "n_classes": int(attr("n_classes")),
            "attrs": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()},
            "state_dict": OrderedDict(),
        }
        if "state_dict" not in f:
            raise ModelFileError(f"{path}: group /state_dict is missing")
        names = []
        f["state_dict"].visit(lambda n: names.append(n) if isinstance(f["state_dict"][n], h5py.Dataset) else None)
        for n in names:
            ds = f["state_dict"][n]
            if ds.dtype.kind != "f":
                raise ModelFileError(f"{path}: tensor /state_dict/{n}: expected float32, found {ds.dtype}")
            a = ds[()].astype(np.float32)
            if not np.isfinite(a).all():
                raise ModelFileError(f"{path}: tensor /state_dict/{n} holds NaN or Inf")
            out["state_dict"][n] = a
        if check_hash:
            want = str(attr("content_sha256"))
            got = content_sha256(arch, out["state_dict"])
            if got != want:
                raise ModelFileError(f"{path}: content_sha256 mismatch (stored {want[:12]}…, "
                                     f"computed {got[:12]}…): the file was modified")
    try:
        out["layers"] = parse_architecture(arch)
    except Exception as e:
        raise ModelFileError(f"{path}: cannot parse the architecture attribute: {e}")
    return out


# ------------------------------------------ attrib layer list -> nn.Module

_ACTS = {
    "relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "silu": F.silu, "softplus": F.softplus,
}


class _LayerNormLast(nn.Module):
    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], eps=self.eps)


class AttribModel(nn.Module):
    """An attrib layer list run in PyTorch with attrib's semantics. Layers
    with tensors are submodules at their layer names (so the state-dict
    keys are the model file's names); the others run functionally.
    forward(x): x (N, *input_shape) or flat (N, D); token ids may be float."""

    def __init__(self, layers, input_shape, state_dict):
        super().__init__()
        self._arch = [dict(L) for L in layers]
        self._input_shape = [int(v) for v in input_shape]
        sd = {k: torch.as_tensor(np.asarray(v)) for k, v in state_dict.items()}
        self._mods = {}
        for L in self._arch:
            mod = self._make(L, sd)
            if mod is not None:
                self._place(L["name"], mod)
                self._mods[L["name"]] = mod
        missing, unexpected = self.load_state_dict(OrderedDict(sd), strict=False)
        missing = [k for k in missing if not k.endswith(".num_batches_tracked")]
        if missing or unexpected:
            raise ModelFileError(f"tensors missing: {missing}; unexpected: {unexpected}")
        self.eval()

    def _place(self, name, mod):
        parts = name.split(".")
        parent = self
        for i, p in enumerate(parts):
            if p not in parent._modules and hasattr(parent, p):
                raise ModelFileError(f"layer name '{name}': '{p}' clashes with an nn.Module attribute")
            if i == len(parts) - 1:
                old = parent._modules.get(p)
                if old is not None:  # a container made for an earlier "<name>.x"
                    if type(old) is not nn.Module:
                        raise ModelFileError(f"layer name '{name}' is used twice")
                    for cn, c in old._modules.items():
                        mod.add_module(cn, c)
                parent.add_module(p, mod)
            else:
                if p not in parent._modules:
                    parent.add_module(p, nn.Module())
                parent = parent._modules[p]

    @staticmethod
    def _make(L, sd):
        k, n = L["kind"], L["name"]

        def t(suffix):
            key = f"{n}.{suffix}"
            if key not in sd:
                raise ModelFileError(f"layer '{n}' ({k}): tensor '{key}' is missing")
            return sd[key]

        if k == "linear":
            w = t("weight")
            return nn.Linear(w.shape[1], w.shape[0], bias=bool(L["bias"]))
        if k == "conv2d":
            w = t("weight")
            return nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=tuple(L["stride"]),
                             padding=tuple(L["padding"]), dilation=tuple(L["dilation"]),
                             bias=bool(L["bias"]))
        if k in ("batchnorm1d", "batchnorm2d"):
            C = t("running_mean").shape[0]
            cls = nn.BatchNorm1d if k == "batchnorm1d" else nn.BatchNorm2d
            return cls(C, eps=float(L["eps"]), affine=bool(L["affine"]))
        if k == "layernorm":
            if not L["affine"]:
                return None
            return nn.LayerNorm(t("weight").shape[0], eps=float(L["eps"]))
        if k == "embedding":
            w = t("weight")
            return nn.Embedding(w.shape[0], w.shape[1])
        if k == "pos_embedding":
            w = t("weight")
            return PositionalEmbedding(w.shape[0], w.shape[1])
        if k == "attention":
            E = t("in_proj_weight").shape[1]
            return SelfAttention(E, int(L["heads"]), bias=bool(L["bias"]), causal=bool(L["causal"]))
        return None

    def forward(self, x):
        N = x.shape[0]
        x = x.reshape(N, *self._input_shape)
        outs = {"input": x}
        h = x
        for L in self._arch:
            k, n = L["kind"], L["name"]
            if k == "add":
                a, b = (outs[s] for s in L["inputs"])
                h = a + b
            else:
                h = outs[L["input"]]
                m = self._mods.get(n)
                if k == "embedding":
                    h = m(torch.round(h).long() if h.is_floating_point() else h)
                elif k in ("linear", "conv2d", "batchnorm1d", "batchnorm2d", "pos_embedding", "attention"):
                    h = m(h)
                elif k == "layernorm":
                    h = m(h) if m is not None else F.layer_norm(h, h.shape[-1:], eps=float(L["eps"]))
                elif k in _ACTS:
                    h = _ACTS[k](h)
                elif k == "maxpool2d":
                    h = F.max_pool2d(h, L["kernel"], L["stride"], L["padding"], L["dilation"])
                elif k == "avgpool2d":
                    h = F.avg_pool2d(h, L["kernel"], L["stride"], L["padding"],
                                     count_include_pad=bool(L["count_include_pad"]))
                elif k == "global_avgpool":
                    h = h.mean(dim=(-2, -1))
                elif k == "dropout":
                    h = F.dropout(h, float(L["p"]), self.training)
                elif k == "flatten":
                    h = h.reshape(N, -1)
                elif k == "softmax":
                    h = F.softmax(h, dim=-1)
                elif k == "log_softmax":
                    h = F.log_softmax(h, dim=-1)
                elif k == "seq_mean":
                    h = h.mean(dim=1)
                else:
                    raise ModelFileError(f"layer '{n}': unknown kind '{k}'")
            outs[n] = h
        return h


def build_attrib_model(layers, input_shape, state_dict):
    """An AttribModel from parsed layers (parse_architecture), the per-example
    input shape and a name -> tensor mapping."""
    return AttribModel(layers, input_shape, state_dict)


def load_attrib_model(path, dtype=torch.float32):
    """Read an attrib model file (format_version 2) into an equivalent
    nn.Module in eval mode (AttribModel; its state_dict() keys are the file's
    tensor names, plus num_batches_tracked of batch norms)."""
    mf = read_model_file(path)
    net = build_attrib_model(mf["layers"], mf["input_shape"], mf["state_dict"])
    return net.to(dtype)
