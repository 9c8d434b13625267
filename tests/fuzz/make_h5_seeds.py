#!/usr/bin/python3
"""Write the seed recipes of fuzz_h5 (tests/fuzz/corpus/h5/*.bin).

A recipe is what fuzz_h5.c reads: byte 0 picks the split and rows, then
operations (opcode byte + arguments; see the comment at the top of
fuzz_h5.c). These seeds describe valid files and near-valid ones, so the
fuzzer starts where the loaders do real work: models of every layer kind
(MLPs, CNNs, residual blocks, transformers over token ids), each kind of
damage to a layer list, to the tensors and to the root attributes, and
dataset files. Seeds named model_ok_* load; fuzz_h5 run with
FUZZ_H5_VERBOSE=1 shows each file and what the loaders said.
usage: make_h5_seeds.py OUTDIR
"""
import os
import sys

OP_DATASET, OP_GROUP, OP_ATTR, OP_ARCH, OP_WEIGHTS, OP_MODEL, OP_DATA, OP_LINK, OP_UNLINK = range(9)
PATHS = ["test", "train", "test/images", "test/labels", "train/images", "train/labels"]
F32, I32 = 0, 11          # make_type() choices
CHUNKED = 1 | 4 << 3      # chunked, chunks of up to 5 per axis
DEFLATE = 3 | 7 << 3      # chunked + shuffle + deflate, chunks of up to 8
RAMP, LABELS, SPECIAL_AT = 1, 3, 4
NAN, INF = 7, 8           # SPECIAL[] indices

# ---- op 3: architectures (mirrors gen_layer/candidates in fuzz_h5.c)
ST_BLOCK, ST_OMIT, ST_NAMES, ST_QUOTE, ST_FLOWSEQ, ST_COMMENT, ST_KINDLAST, ST_INPUT = (
    1, 2, 4, 8, 16, 32, 64, 128)
DAMAGE = ["none", "unknown_key", "foreign_key", "missing_key", "range", "type", "dup_name",
          "bad_ref", "kind", "shape", "huge", "dup_key", "name", "truncated", "inserted", "top"]
ANY = ["relu", "linear", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "softplus", "dropout",
       "flatten", "softmax", "log_softmax", "layernorm", "add", "linear"]


def candidates(nd, reads_input_1d):
    c = list(ANY)
    if nd == 3:
        c += ["conv2d", "conv2d", "maxpool2d", "avgpool2d", "global_avgpool", "batchnorm2d"]
    if nd in (1, 2):
        c += ["batchnorm1d"]
    if nd == 2:
        c += ["pos_embedding", "attention", "attention", "seq_mean"]
    if reads_input_1d:
        c += ["embedding"]
    return c


class Arch:
    """A layer list for op 3: family byte, dims byte, then layers. Tracks
    only the rank of each output (all the kind choice depends on)."""

    def __init__(self, fam, db, in_nd):
        self.fam, self.db, self.in_nd = fam, db, in_nd
        self.nds, self.layers = [], []

    def add(self, kind, a=0, b=0, nd_out=None, src=None):
        i = len(self.layers)
        s = i - 1 if src is None else src
        nd = self.in_nd if s < 0 else self.nds[s]
        c = candidates(nd, s == -1 and self.in_nd == 1)
        k = c.index(kind)
        if src is not None:
            assert i > 0 and k < 32
            k |= 0xE0
            a = src + 1  # a % (i + 1) - 1 == src; the kind's own use of a is then fixed
        self.layers.append([k, a, b])
        self.nds.append(nd if nd_out is None else nd_out)
        return self

    def op(self, sty=0, dmg=0, dat=0, enc=0, complete=True, nl=None):
        n = len(self.layers)
        nlb = n - 1 if nl is None else nl
        dmg_byte = 0 if dmg == 0 else 7 | (DAMAGE.index(dmg) - 1) << 3
        out = [OP_ARCH, self.fam, self.db, nlb, sty, dmg_byte, dat, enc, 0 if complete else 3]
        for l in self.layers:
            out += l
        return out


def mlp():
    return (Arch(0, 7, 1)                          # input (8)
            .add("linear", a=3)                    # 4, bias
            .add("relu")
            .add("linear", a=2))                   # 3


def cnn():
    # (1, 8, 8): db % 3 = 0, (db >> 2) % 8 = 7, W = H (fam bit 7)
    return (Arch(2 | 0x80, 28 + 2, 3)
            .add("conv2d", a=4, b=3)               # kernel 1+4%3=2, pad 1, 4 channels
            .add("relu")
            .add("maxpool2d", a=1, b=4)            # kernel 2, stride given 1
            .add("batchnorm2d", a=3)
            .add("avgpool2d", a=0x12, b=1)         # kernel 1, count_include_pad false
            .add("flatten", nd_out=1)
            .add("dropout", a=2)
            .add("linear", a=9, b=1, nd_out=1))    # 10, no bias


def resnet():
    return (Arch(2 | 0x80, 28 + 2, 3)
            .add("conv2d", a=0x05, b=2)            # kernel 3, pad 1, 3 channels
            .add("relu")
            .add("conv2d", a=0x05, b=2)
            .add("add", a=0, b=0)                  # + the first relu
            .add("batchnorm2d", a=1, b=1)          # no affine
            .add("global_avgpool", nd_out=1)
            .add("batchnorm1d")
            .add("linear", a=4))


def transformer():
    # token ids (T = 1 + db % 8 = 6)
    return (Arch(4, 5, 1)
            .add("embedding", a=18, b=7, nd_out=2)  # V 20, E 8
            .add("pos_embedding", a=1)
            .add("layernorm")
            .add("attention", a=2, b=1)             # heads 4 (divisors 1 2 4 8), causal
            .add("add", a=0, b=1)
            .add("layernorm", b=1)
            .add("linear", a=15)                    # 16
            .add("gelu")
            .add("linear", a=7)                     # 8
            .add("add")
            .add("seq_mean", nd_out=1)
            .add("linear", a=1))


def seq_features():
    # (T, E) = (1 + db % 6, 1 + (db >> 3) % 8): db = 3 | 5 << 3 -> (4, 6)
    return (Arch(5, 3 | 5 << 3, 2)
            .add("batchnorm1d", a=4)
            .add("attention", a=1, b=2)             # heads 2, no bias
            .add("gelu_tanh")
            .add("seq_mean", nd_out=1)
            .add("softmax"))


def activations():
    a = Arch(0, 12, 1).add("linear", a=5)
    for k in ["gelu", "gelu_tanh", "tanh", "sigmoid", "silu", "softplus", "dropout", "relu",
              "layernorm", "batchnorm1d", "softmax", "log_softmax"]:
        a.add(k)
    return a


def branches():
    # explicit inputs: two heads over the input, added
    return (Arch(0, 5, 1)                          # input (6)
            .add("linear", a=5)                    # 6
            .add("tanh")
            .add("linear", a=5, src=-1)            # reads the input: a = 0
            .add("add", a=1, b=1)
            .add("linear", a=1))


def image_784():
    return Arch(7 | 1 << 3, 0, 1).add("linear", a=9)          # (784) -> 10


def image_28():
    return (Arch(7, 0, 3)                                      # (1, 28, 28)
            .add("conv2d", a=0x09, b=3)                        # kernel 2, stride 2, 4 ch
            .add("relu").add("maxpool2d", a=1).add("flatten", nd_out=1)
            .add("linear", a=9))


def dataset(path, typ, dims, layout=CHUNKED, mode=RAMP, sp=0, at=0, fill=0):
    return [OP_DATASET, PATHS.index(path), typ, len(dims), layout, fill, mode, sp, at] + dims


def split(name, rows, feat, **kw):
    return (dataset(f"{name}/images", F32, [rows] + feat, DEFLATE, **kw) +
            dataset(f"{name}/labels", I32, [rows], 0, LABELS))


def weights(n_tensors, damage=(), f=1, salt=0):
    """op 4 with one damage byte per tensor (0 = right; see write_tensor):
    damage is a list of (tensor index, byte)."""
    per = [0] * n_tensors
    for i, t in damage:
        per[i] = t
    return [OP_WEIGHTS, f, salt] + (per if f & 1 else [])


def model_attrs(f=0, a=0, b=0):
    return [OP_MODEL, f, a, b]


SEEDS = {
    "dataset_test_train": [0, OP_DATA, 0] + split("test", 8, [28, 28]) + split("train", 12, [226]),  # 226: 784
    "dataset_no_class_names": [8, OP_DATA, 10] + split("test", 9, [4, 4]),
    "dataset_nan": [0] + split("test", 6, [8], mode=SPECIAL_AT, sp=NAN, at=5) + [OP_DATA, 0],
    "dataset_inf_train": [1, OP_DATA, 0] + split("train", 6, [8], mode=SPECIAL_AT, sp=INF, at=2),
    "dataset_huge_rows": [0, OP_DATA, 0] + dataset("test/images", F32, [234, 226]) +
                         dataset("test/labels", I32, [234]),
    # models that load
    "model_ok_mlp": [0] + mlp().op(),
    "model_ok_cnn": [0] + cnn().op(),
    "model_ok_resnet": [0] + resnet().op(sty=ST_NAMES),
    "model_ok_transformer": [0] + transformer().op(sty=ST_NAMES | ST_OMIT),
    "model_ok_seq_features": [0] + seq_features().op(sty=ST_BLOCK | ST_COMMENT),
    "model_ok_activations": [0] + activations().op(sty=ST_FLOWSEQ | ST_QUOTE | ST_NAMES),
    "model_ok_branches": [0] + branches().op(sty=ST_KINDLAST | ST_INPUT | ST_BLOCK),
    "model_ok_784": [0] + image_784().op(enc=12),                  # ASCII string
    "model_ok_28x28": [0] + image_28().op(enc=13 | 1 << 4),        # fixed-length string
    "model_ok_weight_types": [0] + mlp().op(complete=False) +
                             weights(4, [(0, 20), (1, 21), (2, 22), (3, 33)], f=1 | 3 << 2) + model_attrs(),
    "model_ok_compact": [0] + cnn().op(complete=False) + weights(0, f=2 << 2) + model_attrs(),
    "model_ok_512_layers": [0] + Arch(0, 3, 1).add("relu").op(nl=240 + 10),
    "model_ok_and_data": [0, OP_DATA, 0] + mlp().op() + split("test", 5, [8]) +
                         split("train", 5, [2, 4]),
    # models refused
    "model_513_layers": [0] + Arch(0, 3, 1).add("relu").op(nl=240 + 11),
    "model_v1": [0] + mlp().op() + model_attrs(f=5 << 3),
    "model_version_10": [0] + mlp().op() + model_attrs(f=6 << 3, a=3),
    "model_wrong_hash": [0] + cnn().op() + model_attrs(f=2 << 6, a=1),
    "model_no_hash": [0] + cnn().op() + model_attrs(f=3 << 6),
    "model_upper_hash": [0] + mlp().op() + model_attrs(f=2 << 6),
    "model_flat_input_shape": [0] + cnn().op() + model_attrs(b=5),
    "model_wrong_n_classes": [0] + mlp().op() + model_attrs(b=6 << 4, a=3),
    "model_nan_weight": [0] + mlp().op(complete=False) + weights(4, [(2, 28)], salt=(NAN - 28 - 2) % 22) +
                        model_attrs(),
    "model_missing_tensor": [0] + resnet().op(complete=False) + weights(12, [(2, 24)]) +
                            model_attrs(),
    "model_misshapen_tensor": [0] + transformer().op(complete=False) + weights(14, [(1, 25)]) +
                              model_attrs(),
    "model_int_tensor": [0] + mlp().op(complete=False) + weights(4, [(0, 23)]) + model_attrs(),
    "model_extra_tensor": [0] + cnn().op(complete=False) + weights(0, f=7 << 4, salt=1) +
                          model_attrs(),
    # loads (h5io checks weights are finite, not that variances are >= 0);
    # fuzz_check_forward then skips the bound its outputs have no longer
    "model_ok_negative_running_var": [0] + cnn().op(complete=False) + weights(0, f=0, salt=0xf0) +
                                  model_attrs(),
    "model_arch_group": [0] + mlp().op(enc=15 | 2 << 4),
    # the loader reads the first of several strings
    "model_ok_arch_two_strings": [0] + mlp().op(enc=15),
}
for d in DAMAGE[1:]:
    SEEDS[f"model_damage_{d}"] = [0] + transformer().op(dmg=d, dat=3 << 2 | 1)
    SEEDS[f"model_damage_{d}_cnn"] = [0] + resnet().op(dmg=d, dat=0x5d, sty=ST_BLOCK)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, recipe in SEEDS.items():
    assert all(0 <= b < 256 for b in recipe), name
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(recipe))
print(f"make_h5_seeds.py: {len(SEEDS)} seeds in {out}")
