#!/usr/bin/python3
"""Write the bad input files that tests/bad_inputs.table uses.

usage: make_bad_inputs.py DATA.h5 MODEL.h5 OUTDIR RECIPE:PATH...

Each RECIPE (a function below, named in the table's setup column) writes one
file or directory at PATH. Dataset recipes start from a small copy of the
real dataset (64 test rows, 64 train rows); model recipes from a copy of the
trained model. Recipes that change weights recompute content_sha256, so the
file is refused for the reason the row tests, not for a hash mismatch.
Nothing here is checked in: the files are made at test time in the work dir.
"""
import hashlib
import os
import shutil
import sys

import h5py
import numpy as np

DATA, MODEL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
N = 64
BASE = os.path.join(OUT, "base_data.h5")


def base_data():
    """64 rows of test and train, with the root attributes of an import."""
    if os.path.exists(BASE):
        return
    with h5py.File(DATA, "r") as src, h5py.File(BASE, "w") as f:
        for k, v in src.attrs.items():
            f.attrs[k] = v
        for split in ("test", "train"):
            f.create_dataset(f"{split}/images", data=src[f"{split}/images"][:N])
            f.create_dataset(f"{split}/labels", data=src[f"{split}/labels"][:N])


def data_with(path, split="test", images=None, labels=None, drop=(), attrs=None,
              keep_class_names=True):
    """A copy of the base with the given datasets of split replaced/removed."""
    base_data()
    shutil.copy(BASE, path)
    with h5py.File(path, "r+") as f:
        g = f[split]
        for name in drop:
            del g[name]
        for name, val in (("images", images), ("labels", labels)):
            if val is None:
                continue
            del g[name]
            if callable(val):
                val(g, name)
            else:
                g[name] = val
        if not keep_class_names:
            del f.attrs["class_names"]
        for k, v in (attrs or {}).items():
            f.attrs[k] = v


def test_images():
    with h5py.File(DATA, "r") as f:
        return f["test/images"][:N]


def test_labels():
    with h5py.File(DATA, "r") as f:
        return f["test/labels"][:N]


def model_hash(f):
    """content_sha256 as docs/format.md defines it (format_version 2)."""
    h = hashlib.sha256(f.attrs["architecture"].encode())
    for name in sorted(f["state_dict"], key=str.encode):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(f["state_dict"][name][()], "<f4").tobytes())
    return h.hexdigest()


def arch_edit(old, new):
    """An edit replacing text in the architecture attribute (once)."""
    def edit(f):
        a = f.attrs["architecture"]
        assert a.count(old) == 1, (old, a)
        f.attrs["architecture"] = a.replace(old, new)
    return edit


def model_with(path, edit, rehash=False):
    shutil.copy(MODEL, path)
    with h5py.File(path, "r+") as f:
        edit(f)
        if rehash:
            f.attrs["content_sha256"] = model_hash(f)


def replace(g, name, data):
    del g[name]
    g[name] = data


# ---------------------------------------------------------------- files
def text_file(p):
    with open(p, "w") as fh:
        fh.write("this is not an HDF5 file\n")


def empty_file(p):
    open(p, "w").close()


def directory(p):
    os.makedirs(p, exist_ok=True)


def nul_job(p):
    with open(p, "wb") as fh:
        fh.write(b"data:\n  path: x.h5\n\0\0\0\x89HDF\r\n")


def bad_utf8_job(p):
    with open(p, "wb") as fh:
        fh.write(b"data:\n  path: \xff\xfe.h5\n")


def long_path_job(p):
    with open(p, "w") as fh:
        fh.write("data:\n  path: " + "d/" * 1100 + "x.h5\nmodel: {path: m.h5}\n"
                 "methods: [{name: s, kind: saliency}]\noutput: {path: o.h5}\n")


def truncated(src, frac):
    def make(p):
        with open(src, "rb") as fh:
            b = fh.read()
        with open(p, "wb") as fh:
            fh.write(b[: int(len(b) * frac)])
    return make


def data_truncated(p):
    base_data()
    truncated(BASE, 0.5)(p)


def data_header_only(p):
    base_data()
    with open(BASE, "rb") as fh:
        b = fh.read(800)
    with open(p, "wb") as fh:
        fh.write(b)


# ------------------------------------------------------------- datasets
def data_no_images(p):
    data_with(p, drop=("images",))


def data_no_labels(p):
    data_with(p, drop=("labels",))


def data_images_1d(p):
    data_with(p, images=test_images().reshape(-1))


def data_images_4d(p):
    data_with(p, images=test_images().reshape(N, 1, 28, 28))


def data_images_str(p):
    data_with(p, images=np.full((N, 784), b"0.5", dtype="S8"))


def data_images_int64(p):
    data_with(p, images=(test_images() * 255).astype(np.int64))


def data_images_uint8(p):
    data_with(p, images=(test_images() * 255).astype(np.uint8))


def data_images_compound(p):
    data_with(p, images=np.zeros((N, 784), dtype=[("a", "<f4"), ("b", "<i4")]))


def data_labels_float(p):
    data_with(p, labels=test_labels().astype(np.float32))


def data_labels_short(p):
    data_with(p, labels=test_labels()[: N - 1])


def data_labels_2d(p):
    data_with(p, labels=test_labels().reshape(N, 1))


def data_negative_label(p):
    lab = test_labels().copy()
    lab[5] = -1
    data_with(p, labels=lab, keep_class_names=False)


def data_label_out_of_range(p):
    lab = test_labels().copy()
    lab[3] = 17
    data_with(p, labels=lab)


def data_zero_rows(p):
    data_with(p, images=np.zeros((0, 28, 28), np.float32), labels=np.zeros(0, np.int32))


def data_nan_images(p):
    x = test_images().copy()
    x[5, 10, 12] = np.nan
    data_with(p, images=x)


def data_inf_images(p):
    x = test_images().copy()
    x[7, 0, 0] = np.inf
    data_with(p, images=x)


def data_nan_train(p):
    base_data()
    shutil.copy(BASE, p)
    with h5py.File(p, "r+") as f:
        x = f["train/images"][()]
        x[9, 3, 4] = -np.inf
        replace(f["train"], "images", x)


def data_10x10(p):
    data_with(p, images=test_images()[:, :10, :10].copy())


def data_huge_features(p):
    def make(g, name):
        g.create_dataset(name, shape=(N, 1000000, 1000000), dtype=np.float32,
                         chunks=(1, 1, 1024))
    data_with(p, images=make)


def data_split_is_dataset(p):
    base_data()
    shutil.copy(BASE, p)
    with h5py.File(p, "r+") as f:
        del f["test"]
        f["test"] = np.zeros(3, np.float32)


def data_many_classes(p):
    data_with(p, attrs={"class_names": np.array([b"c%d" % i for i in range(5000)])})


# --------------------------------------------------------------- models
# MODEL is the quick start's MLP (model.hidden [256, 256] over 28x28 images):
# layers.0 flatten, layers.1 linear 784->256, layers.2 relu, layers.3 linear
# 256->256, layers.4 relu, layers.5 linear 256->10.
def model_missing_bias(p):
    model_with(p, lambda f: f["state_dict"].__delitem__("layers.3.bias"))


def model_wrong_shape(p):
    model_with(p, lambda f: replace(f["state_dict"], "layers.1.weight",
                                    np.zeros((256, 783), np.float32)))


def model_int_weight(p):
    model_with(p, lambda f: replace(f["state_dict"], "layers.1.weight",
                                    np.zeros((256, 784), np.int32)))


def model_extra_tensor(p):
    model_with(p, lambda f: f["state_dict"].create_dataset("layers.9.weight",
                                                           data=np.zeros(3, np.float32)))


def model_no_state_dict(p):
    model_with(p, lambda f: f.__delitem__("state_dict"))


def model_no_architecture(p):
    model_with(p, lambda f: f.attrs.__delitem__("architecture"))


def model_unknown_kind(p):
    model_with(p, arch_edit("{kind: linear, name: layers.1,", "{kind: conv3d, name: layers.1,"))


def model_arch_not_list(p):
    model_with(p, lambda f: f.attrs.__setitem__("architecture", "{kind: linear}\n"))


def model_arch_unknown_key(p):
    model_with(p, arch_edit("out_features: 10, bias: true}", "out_features: 10, bias: true, "
                                                            "stride: 2}"))


def model_arch_duplicate_name(p):
    model_with(p, arch_edit("{kind: relu, name: layers.2}", "{kind: relu, name: layers.1}"))


def model_arch_later_input(p):
    model_with(p, arch_edit("{kind: relu, name: layers.2}",
                            "{kind: relu, name: layers.2, input: layers.4}"))


def model_arch_bad_chain(p):
    model_with(p, arch_edit("{kind: flatten, name: layers.0}",
                            "{kind: global_avgpool, name: layers.0}"))


def model_arch_residual(p):
    model_with(p, arch_edit("{kind: relu, name: layers.2}",
                            "{kind: residual, name: layers.2, body: [{kind: relu}]}"))


def model_too_many_params(p):
    model_with(p, arch_edit("{kind: linear, name: layers.1, out_features: 256,",
                            "{kind: linear, name: layers.1, out_features: 1000000,"))


def model_no_sha(p):
    model_with(p, lambda f: f.attrs.__delitem__("content_sha256"))


def model_tampered(p):
    def edit(f):
        f["state_dict/layers.1.weight"][0, 0] += 1.0
    model_with(p, edit)


def model_nan_weight(p):
    def edit(f):
        w = f["state_dict/layers.3.weight"][()]
        w[7, 100] = np.nan
        replace(f["state_dict"], "layers.3.weight", w)
    model_with(p, edit, rehash=True)


def model_inf_bias(p):
    def edit(f):
        b = f["state_dict/layers.5.bias"][()]
        b[3] = -np.inf
        replace(f["state_dict"], "layers.5.bias", b)
    model_with(p, edit, rehash=True)


def model_bad_input_shape(p):
    model_with(p, lambda f: f.attrs.__setitem__("input_shape", np.array([28, 0], np.int64)))


def model_input_shape_mismatch(p):
    model_with(p, lambda f: f.attrs.__setitem__("input_shape", np.array([10, 10], np.int64)))


def model_n_classes_mismatch(p):
    model_with(p, lambda f: f.attrs.__setitem__("n_classes", np.int64(12)))


def model_format_version(p):
    model_with(p, lambda f: f.attrs.__setitem__("format_version", np.int32(3)))


def model_format_v1(p):
    """What attrib 0.1 wrote: an /architecture/layers table, format_version 1."""
    def edit(f):
        f.attrs["format_version"] = np.int32(1)
        del f.attrs["architecture"]
        dt = np.dtype([("index", "<i4"), ("kind", h5py.string_dtype()), ("in_features", "<i4"),
                       ("out_features", "<i4"), ("bias", "<i4")])
        f.create_dataset("architecture/layers", data=np.array(
            [(0, "linear", 784, 256, 1), (1, "relu", 256, 256, 0)], dt))
    model_with(p, edit)


def data_masks(p):
    """Feature-group masks next to the rows: /masks/gap skips group 3,
    /masks/short has 700 elements, /masks/float is not integer."""
    data_with(p)
    grid = (np.arange(28)[:, None] // 7) * 4 + (np.arange(28)[None, :] // 7)
    with h5py.File(p, "r+") as f:
        f["masks/gap"] = np.where(grid == 3, 4, grid).astype(np.int32)
        f["masks/short"] = np.zeros(700, np.int32)
        f["masks/float"] = grid.astype(np.float32)


def model_other_arch(p):
    """A valid model of another architecture: the demo MLP with its second
    hidden layer 128 wide (784-256-128-10), for an ensemble's models:."""
    rng = np.random.default_rng(5)

    def edit(f):
        arch_edit("{kind: linear, name: layers.3, out_features: 256",
                  "{kind: linear, name: layers.3, out_features: 128")(f)
        sd = f["state_dict"]
        for name, shape in (("layers.3.weight", (128, 256)), ("layers.3.bias", (128,)),
                            ("layers.5.weight", (10, 128))):
            replace(sd, name, (0.05 * rng.standard_normal(shape)).astype(np.float32))
    model_with(p, edit, rehash=True)


def model_truncated(p):
    truncated(MODEL, 0.6)(p)


def results_flat(p):
    """A results file whose scores are flat rows (N, D), not images."""
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "attrib-results"
        f.attrs["format_version"] = 1
        f.attrs["data_path"] = DATA
        f.attrs["data_split"] = "test"
        f.create_dataset("sample", data=np.arange(4, dtype=np.int64))
        f.create_dataset("attributions/flat/scores", data=np.ones((4, 20), np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    made = 0
    for arg in sys.argv[4:]:
        recipe, path = arg.split(":", 1)
        fn = globals().get(recipe)
        if not callable(fn) or recipe.startswith("_"):
            sys.exit(f"make_bad_inputs.py: unknown recipe '{recipe}'")
        if os.path.lexists(path):
            continue  # shared by several rows
        fn(path)
        made += 1
    if os.path.exists(BASE):
        os.remove(BASE)  # only the recipes' own files stay
    print(f"make_bad_inputs.py: made {made} files in {OUT}")


main()
