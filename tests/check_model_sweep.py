#!/usr/bin/python3
"""Sweeps over models and checkpoints (docs/jobs.md, model.epoch and Sweeps),
checked against numpy.

usage: check_model_sweep.py ATTRIB MPIEXEC DATA.h5 MLP16.h5 MLP16.ckpt.h5 MLP.h5 WORKDIR

1. sweep model.epoch: [1, 2, 3, 0] over the checkpoints of MLP16.ckpt.h5: each
   point's input x gradient equals a float64 numpy gradient of the MLP built
   from that checkpoint's state_dict (epoch 0 = MLP16.h5's own parameters),
   its model_sha256 is the checkpoint's content_sha256 and model_epoch says
   which; epoch 3 (the last) equals epoch 0 (the saved model).
2. sweep model.path: [MLP16.h5, MLP.h5]: each point against its model.
3. a model.epoch the file does not hold is refused (exit 2) naming the epochs
   it holds."""
import os
import subprocess
import sys

import h5py
import numpy as np

attrib, mpiexec, data, mlp16, ckpt, mlp, work = sys.argv[1:8]
os.makedirs(work, exist_ok=True)
ROWS = 24
fails = []


def run(*args, ranks=2, expect=0):
    cmd = [mpiexec, "-n", str(ranks), attrib, *args] if ranks > 1 else [attrib, *args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != expect:
        print(p.stdout, p.stderr)
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}, expected {expect}")
    return p


def grad_x_input(sd, x):
    """input x gradient of the predicted logit of an MLP (linear/relu) in float64."""
    names = sorted({k.rsplit(".", 1)[0] for k in sd}, key=lambda n: int(n.split(".")[1]))
    Ws = [np.asarray(sd[n + ".weight"], np.float64) for n in names]
    bs = [np.asarray(sd[n + ".bias"], np.float64) for n in names]
    h, masks = x.astype(np.float64), []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        h = h @ W.T + b
        if i < len(Ws) - 1:
            masks.append(h > 0)
            h = np.maximum(h, 0)
    target = h.argmax(1)
    g = np.eye(h.shape[1])[target]
    for i in range(len(Ws) - 1, -1, -1):
        g = g @ Ws[i]
        if i > 0:
            g = g * masks[i - 1]
    return g * x


def state_dict(f, group):
    return {k: f[group][k][()] for k in f[group]}


with h5py.File(data, "r") as f:
    x = f["test/images"][:ROWS].reshape(ROWS, -1).astype(np.float64)

job = os.path.join(work, "job.yaml")
with open(job, "w") as f:
    f.write(f"""data: {{path: {data}, split: test, rows: "0:{ROWS}"}}
model: {{path: {mlp16}}}
methods:
  - {{name: ixg, kind: input_x_gradient}}
run: {{block_rows: 8}}
output: {{path: {work}/epochs.h5, overwrite: true}}
sweep:
  model.epoch: [1, 2, 3, 0]
""")

# 1. checkpoints
run("run", job)
with h5py.File(ckpt, "r") as c, h5py.File(mlp16, "r") as m, \
        h5py.File(f"{work}/epochs.h5", "r") as r:
    names = [n.decode() if isinstance(n, bytes) else n for n in r["sweep/name"][()]]
    if names != ["epoch=1", "epoch=2", "epoch=3", "epoch=0"]:
        fails.append(f"point names {names}")
    epochs = list(c["epochs"][()])
    for name, epoch in zip(names, [1, 2, 3, 0]):
        g = r["points"][name]
        if epoch:
            k = epochs.index(epoch)
            sd = state_dict(c, f"checkpoints/{k}/state_dict")
            sha = c[f"checkpoints/{k}"].attrs["content_sha256"]
            if g.attrs.get("model_epoch") != epoch:
                fails.append(f"{name}: model_epoch {g.attrs.get('model_epoch')}")
            if g.attrs.get("model_checkpoints") != ckpt:
                fails.append(f"{name}: model_checkpoints {g.attrs.get('model_checkpoints')}")
        else:
            sd = state_dict(m, "state_dict")
            sha = m.attrs["content_sha256"]
            if "model_epoch" in g.attrs:
                fails.append(f"{name}: model_epoch written for the model file's parameters")
        if g.attrs["model_sha256"] != sha:
            fails.append(f"{name}: model_sha256 {g.attrs['model_sha256']} != {sha}")
        want = grad_x_input(sd, x)
        got = g["attributions/ixg/scores"][()].reshape(ROWS, -1)
        err = np.abs(got - want).max() / np.abs(want).max()
        print(f"{name}: max |attrib - numpy| / max |numpy| = {err:.2e}")
        if not err < 1e-5:
            fails.append(f"{name}: scores differ from numpy by {err:.2e}")
    s1 = r["points/epoch=1/attributions/ixg/scores"][()]
    s3 = r["points/epoch=3/attributions/ixg/scores"][()]
    s0 = r["points/epoch=0/attributions/ixg/scores"][()]
    if np.array_equal(s1, s3):
        fails.append("epoch 1 and epoch 3 give the same scores: the checkpoint was not used")
    if not np.array_equal(s3, s0):
        fails.append("the last checkpoint and the saved model differ")

# 2. models
run("run", job, "-o", f"{work}/models.h5", "--set", f"sweep={{model.path: [{mlp16}, {mlp}]}}")
with h5py.File(mlp16, "r") as a, h5py.File(mlp, "r") as b, \
        h5py.File(f"{work}/models.h5", "r") as r:
    for name, m in (("path=" + os.path.basename(mlp16)[:-3], a),
                    ("path=" + os.path.basename(mlp)[:-3], b)):
        g = r["points"][name]
        if g.attrs["model_sha256"] != m.attrs["content_sha256"]:
            fails.append(f"{name}: model_sha256 is not the model's")
        want = grad_x_input(state_dict(m, "state_dict"), x)
        got = g["attributions/ixg/scores"][()].reshape(ROWS, -1)
        err = np.abs(got - want).max() / np.abs(want).max()
        print(f"{name}: max |attrib - numpy| / max |numpy| = {err:.2e}")
        if not err < 1e-5:
            fails.append(f"{name}: scores differ from numpy by {err:.2e}")

# 3. an epoch the file does not hold
p = run("run", job, "-o", f"{work}/bad.h5", "--set", "sweep={model.epoch: [2, 7]}",
        ranks=1, expect=2)
if "no checkpoint of epoch 7 (it holds epochs: 1, 2, 3)" not in p.stderr:
    fails.append(f"missing epoch message: {p.stderr.strip()}")
if os.path.exists(f"{work}/bad.h5"):
    fails.append("a refused sweep left its results file")

for f in fails:
    print("FAIL:", f)
print("ok" if not fails else f"{len(fails)} failure(s)")
sys.exit(1 if fails else 0)
