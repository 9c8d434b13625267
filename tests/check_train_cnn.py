#!/usr/bin/env python3
"""e2e: jobs/train_cnn.yaml on the first 6,000 training rows for 2 epochs.

usage: check_train_cnn.py ATTRIB JOB.yaml DATA.h5 WORKDIR

Trains twice with the same seed and checks: test accuracy above BAR (measured
0.764 with this subset; chance is 0.1), the checkpoint file (format, epochs
[1, 2], the cosine schedule's learning rates [lr, lr/2], per-epoch losses,
the last checkpoint equal to the model file's state_dict), byte-identical
state_dicts from the two runs, and that models attrib cannot train (batch
norm; log_softmax last under cross_entropy) are refused with exit 2 naming
the layer. Exits 1 on the first failed check."""
import math
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

BAR = 0.70
ROWS, EPOCHS = 6000, 2


def fail(msg):
    print("check_train_cnn: FAIL: " + msg)
    sys.exit(1)


def train(attrib, job, data, model, *sets):
    cmd = [attrib, "train", job, "--set", "data.path=" + data, "--set", f"data.rows=0:{ROWS}",
           "--set", f"train.epochs={EPOCHS}", "--set", "model.path=" + model]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p, time.time() - t0


def main():
    attrib, job, data, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    a, b = os.path.join(work, "a.h5"), os.path.join(work, "b.h5")
    for path in (a, b):
        p, dt = train(attrib, job, data, path)
        sys.stdout.write(p.stderr[-1500:] + p.stdout)
        if p.returncode != 0:
            fail(f"attrib train exited {p.returncode}")
        print(f"trained {path} in {dt:.1f} s")

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        acc = float(fa.attrs["eval_accuracy"])
        print(f"test accuracy after {EPOCHS} epochs on {ROWS} rows: {acc:.4f} (bar {BAR})")
        if not acc >= BAR:
            fail(f"test accuracy {acc:.4f} < {BAR}")
        hist = [float(v) for v in fa.attrs["eval_accuracy_per_epoch"]]
        if len(hist) != EPOCHS or hist[-1] != acc:
            fail(f"eval_accuracy_per_epoch {hist} does not end with {acc}")
        names = sorted(fa["state_dict"])
        if names != sorted(fb["state_dict"]):
            fail("the two runs have different tensors")
        for n in names:
            if fa["state_dict"][n][()].tobytes() != fb["state_dict"][n][()].tobytes():
                fail(f"same seed, different bytes in state_dict/{n}")
        if fa.attrs["content_sha256"] != fb.attrs["content_sha256"]:
            fail("same seed, different content_sha256")
        print(f"same seed, same bytes: {len(names)} tensors, sha256 {fa.attrs['content_sha256']}")
        sd = {n: fa["state_dict"][n][()] for n in names}
        arch = fa.attrs["architecture"]
        lr0 = float(fa.attrs["lr"])

    ck = os.path.join(work, "a.ckpt.h5")
    if os.path.exists(ck + ".tmp"):
        fail(ck + ".tmp left behind")
    with h5py.File(ck, "r") as f:
        if f.attrs["format"] != "attrib-checkpoints" or int(f.attrs["format_version"]) != 1:
            fail(f"{ck}: format {f.attrs['format']} version {f.attrs['format_version']}")
        if f.attrs["architecture"] != arch:
            fail(f"{ck}: architecture differs from the model file's")
        if list(f.attrs["input_shape"]) != [1, 28, 28] or int(f.attrs["n_classes"]) != 10:
            fail(f"{ck}: input_shape {f.attrs['input_shape']} n_classes {f.attrs['n_classes']}")
        epochs = f["epochs"][()]
        lrs = f["lr"][()]
        want = [lr0 * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
        print(f"checkpoints: epochs {list(epochs)}, lr {list(lrs)}")
        if list(epochs) != [1, 2]:
            fail(f"/epochs = {list(epochs)}, expected [1, 2]")
        if not np.allclose(lrs, want, rtol=1e-12, atol=0):
            fail(f"/lr = {list(lrs)}, expected {want}")
        for k in ("train_loss", "train_acc"):
            v = f[k][()]
            if v.shape != (EPOCHS,) or not np.all(np.isfinite(v)):
                fail(f"/{k} = {v}")
        if sorted(f["checkpoints"]) != ["0", "1"]:
            fail(f"/checkpoints holds {sorted(f['checkpoints'])}")
        last = f["checkpoints/1/state_dict"]
        if sorted(last) != sorted(sd):
            fail("checkpoint 1 has other tensors than the model file")
        for n in sd:
            if last[n][()].tobytes() != sd[n].tobytes():
                fail(f"checkpoint 1 (after the last epoch) differs from the model in {n}")
        moved = any(f["checkpoints/0/state_dict"][n][()].tobytes() != sd[n].tobytes()
                    for n in sd)
        if not moved:
            fail("checkpoints 0 and 1 hold the same parameters")
        if f["checkpoints/1"].attrs["epoch"] != 2:
            fail("checkpoint 1's epoch attribute is not 2")

    # What attrib cannot train is refused before any training, naming the layer.
    refusals = [
        ("model.layers=[{kind: flatten}, {kind: linear, out_features: 16}, "
         "{kind: batchnorm1d, name: bn}, {kind: linear, out_features: 10}]", "'bn'"),
        ("model.layers=[{kind: flatten}, {kind: linear, out_features: 10}, "
         "{kind: log_softmax, name: lsm}]", "'lsm'"),
    ]
    for s, name in refusals:
        out = os.path.join(work, "refused.h5")
        p, _ = train(attrib, job, data, out, s, "model.input_shape=[784]")
        msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        print(f"refused ({p.returncode}): {msg}")
        if p.returncode != 2 or name not in msg or os.path.exists(out):
            fail(f"expected exit 2 naming layer {name} and no model file, got {p.returncode}")
    print("check_train_cnn: all checks passed")


if __name__ == "__main__":
    main()
