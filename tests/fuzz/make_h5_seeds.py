#!/usr/bin/python3
"""Write the seed recipes of fuzz_h5 (tests/fuzz/corpus/h5/*.bin).

A recipe is what fuzz_h5.c reads: byte 0 picks the split and rows, then
operations (opcode byte + arguments; see the comment at the top of
fuzz_h5.c). These seeds describe valid files and near-valid ones, so the
fuzzer starts where the loaders do real work.
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


def dataset(path, typ, dims, layout=CHUNKED, mode=RAMP, sp=0, at=0, fill=0):
    return [OP_DATASET, PATHS.index(path), typ, len(dims), layout, fill, mode, sp, at] + dims


def split(name, rows, feat, **kw):
    return (dataset(f"{name}/images", F32, [rows] + feat, DEFLATE, **kw) +
            dataset(f"{name}/labels", I32, [rows], 0, LABELS))


def model(d0_byte=7, nan=False):
    # 3 layers: linear 8->4 (bias), relu, linear 4->3 (bias); vlen kind, int32
    arch = [OP_ARCH, 3, 5 << 1, 2, d0_byte, 0, 0x13, 1, 0, 0, 0x12]
    w = [OP_WEIGHTS]
    for t in range(4):  # weight, bias of layer 0; weight, bias of layer 2
        w += [0, (NAN << 2) if nan and t == 2 else 1, 5]
    w += [0]            # no extra tensor
    return arch + w + [OP_MODEL, 0, 0, 0]


SEEDS = {
    "dataset_test_train": [0, OP_DATA, 0] + split("test", 8, [28, 28]) + split("train", 12, [226]),  # 226: 784
    "dataset_no_class_names": [8, OP_DATA, 10] + split("test", 9, [4, 4]),
    "dataset_nan": [0] + split("test", 6, [8], mode=SPECIAL_AT, sp=NAN, at=5) + [OP_DATA, 0],
    "dataset_inf_train": [1, OP_DATA, 0] + split("train", 6, [8], mode=SPECIAL_AT, sp=INF, at=2),
    "dataset_huge_rows": [0, OP_DATA, 0] + dataset("test/images", F32, [234, 226]) +
                         dataset("test/labels", I32, [234]),
    "model_mlp": [0] + model(),
    "model_784": [0] + model(d0_byte=0),
    "model_nan_weight": [0] + model(nan=True),
    "model_fixed_kind": [0, OP_ARCH, 2, 1 | 5 << 1 | 6 << 4, 0, 7, 0, 0x13, 1, 0,
                         OP_WEIGHTS, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, OP_MODEL, 0, 0, 0],
    "model_and_data": [0, OP_DATA, 0] + model() + split("test", 5, [8]) + split("train", 5, [2, 4]),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, recipe in SEEDS.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(recipe))
print(f"make_h5_seeds.py: {len(SEEDS)} seeds in {out}")
