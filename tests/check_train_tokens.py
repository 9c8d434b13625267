#!/usr/bin/env python3
"""e2e: `attrib import synthetic-tokens` and jobs/train_transformer.yaml.

usage: check_train_tokens.py ATTRIB JOB.yaml WORKDIR

The generator: same seed, same bytes; another seed, other bytes; the layout
(images (N, T) float32 ids, labels, relevant (N, T) uint8, class_names);
the ground truth agrees with the tokens (exactly two markers, both marked
relevant, label = their ids ascend); bad options exit 2 naming the option.
The transformer job trained for EPOCHS epochs is far above chance (0.5) on
the test split (measured 0.995 at 3 epochs), and `attrib eval` on the model
file gives the accuracy training reported. Exits 1 on the first failure."""
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

BAR = 0.90
EPOCHS = 3


def fail(msg):
    print("check_train_tokens: FAIL: " + msg)
    sys.exit(1)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    attrib, job, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    small = ["--n-train", "3000", "--n-test", "500", "--seq-len", "12", "--vocab", "20"]
    paths = [os.path.join(work, n) for n in ("s3a.h5", "s3b.h5", "s4.h5")]
    for path, seed in zip(paths, ("3", "3", "4")):
        p = run([attrib, "import", "synthetic-tokens", "--out", path, "--seed", seed] + small)
        if p.returncode != 0:
            fail(f"import exited {p.returncode}: {p.stderr}")
    raw = [open(p, "rb").read() for p in paths]
    if raw[0] != raw[1]:
        fail("same seed, different bytes")
    if raw[0] == raw[2]:
        fail("seeds 3 and 4 gave the same file")
    print(f"generator: seed 3 twice = same {len(raw[0])} bytes; seed 4 differs")

    with h5py.File(paths[0], "r") as f:
        if f.attrs["format"] != "attrib-dataset" or int(f.attrs["format_version"]) != 1:
            fail("not an attrib-dataset v1 file")
        if list(f.attrs["class_names"]) != ["descending", "ascending"]:
            fail(f"class_names {list(f.attrs['class_names'])}")
        for split, n in (("train", 3000), ("test", 500)):
            x = f[split + "/images"][()]
            y = f[split + "/labels"][()]
            rel = f[split + "/relevant"][()]
            if x.shape != (n, 12) or x.dtype != np.float32 or y.shape != (n,) or \
                    rel.shape != (n, 12) or rel.dtype != np.uint8:
                fail(f"{split}: shapes {x.shape} {x.dtype} {y.shape} {rel.shape} {rel.dtype}")
            if not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 19):
                fail(f"{split}: images are not ids 0..19")
            markers = x < 4
            if not np.array_equal(markers, rel == 1) or not np.all(rel.sum(1) == 2):
                fail(f"{split}: relevant is not exactly the two marker positions")
            m = x[markers].reshape(n, 2)  # in reading order
            if np.any(m[:, 0] == m[:, 1]):
                fail(f"{split}: a sequence holds the same marker twice")
            if not np.array_equal(y, (m[:, 0] < m[:, 1]).astype(y.dtype)):
                fail(f"{split}: labels are not 'the markers ascend'")
            frac = y.mean()
            if not 0.4 < frac < 0.6:
                fail(f"{split}: {frac:.3f} of labels are 1")
    print("generator: layout, ground truth and labels agree")

    bad = [(["--seq-len", "1"], "--seq-len"), (["--vocab", "abc"], "--vocab"),
           (["--n-train", "0"], "--n-train"), (["--seed", "-3"], "--seed"),
           (["--frobnicate"], "--frobnicate"), ([], "--out")]
    for args, name in bad:
        out = os.path.join(work, "bad.h5")
        cmd = [attrib, "import", "synthetic-tokens"] + (["--out", out] if args else []) + args
        p = run(cmd)
        if p.returncode != 2 or name not in p.stderr or os.path.exists(out):
            fail(f"{' '.join(args)}: exit {p.returncode}, stderr {p.stderr!r}")
    print(f"generator: {len(bad)} bad command lines exit 2 naming the option")

    data, model = os.path.join(work, "tokens.h5"), os.path.join(work, "transformer.h5")
    p = run([attrib, "import", "synthetic-tokens", "--out", data])
    if p.returncode != 0:
        fail(f"import exited {p.returncode}: {p.stderr}")
    t0 = time.time()
    p = run([attrib, "train", job, "--set", "data.path=" + data, "--set", "model.path=" + model,
             "--set", f"train.epochs={EPOCHS}"])
    sys.stdout.write(p.stderr[-1500:] + p.stdout)
    if p.returncode != 0:
        fail(f"attrib train exited {p.returncode}")
    with h5py.File(model, "r") as f:
        acc = float(f.attrs["eval_accuracy"])
    print(f"transformer: test accuracy {acc:.4f} after {EPOCHS} epochs "
          f"({time.time() - t0:.1f} s; bar {BAR}, chance 0.5)")
    if not acc >= BAR:
        fail(f"test accuracy {acc:.4f} < {BAR}")
    p = run([attrib, "eval", "--model", model, "--data", data])
    want = f"accuracy {100 * acc:.2f}%"
    if p.returncode != 0 or want not in p.stdout:
        fail(f"attrib eval: exit {p.returncode}, expected '{want}' in {p.stdout!r}")
    print("check_train_tokens: all checks passed")


if __name__ == "__main__":
    main()
