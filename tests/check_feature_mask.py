#!/usr/bin/env python3
"""Feature groups from a mask dataset give the same bytes as the same groups
from a patch grid (methods[].feature_mask vs methods[].patch).

usage: check_feature_mask.py ATTRIB DATA.h5 MODEL.h5 WORKDIR

Copies 32 test rows of DATA into WORKDIR/masked.h5 with /masks/grid7 (the
7x7 patch grid of a 28x28 image, groups numbered row-major like attrib's
patch grid), runs feature_ablation, shapley_sampling and kernel_shap once
with `feature_mask: /masks/grid7` and once with `patch: [7, 7]`, and
compares the scores byte for byte. Then renumbers the groups (a permutation)
and checks that ablation gives the same scores up to float32 rounding (the
groups are evaluated in another order, so in other engine batches): a
group's number must not matter.
"""
import os
import subprocess
import sys

import h5py
import numpy as np

attrib, data, model, wd = sys.argv[1:5]
os.makedirs(wd, exist_ok=True)
masked = os.path.join(wd, "masked.h5")
with h5py.File(data, "r") as src, h5py.File(masked, "w") as f:
    for k, v in src.attrs.items():
        f.attrs[k] = v
    for split in ("test", "train"):
        f.create_dataset(f"{split}/images", data=src[f"{split}/images"][:32])
        f.create_dataset(f"{split}/labels", data=src[f"{split}/labels"][:32])
    grid = (np.arange(28)[:, None] // 7) * 4 + (np.arange(28)[None, :] // 7)
    f["masks/grid7"] = grid.astype(np.int32)
    perm = np.random.default_rng(3).permutation(16)
    f["masks/renumbered"] = perm[grid].astype(np.int16)

methods = "[{name: abl, kind: feature_ablation, %s}, {name: shap, kind: shapley_sampling, n_samples: 6, %s}, {name: ks, kind: kernel_shap, n_samples: 60, %s}]"


def run(groups, out):
    job = os.path.join(wd, "job.yaml")
    with open(job, "w") as f:
        f.write(f"data: {{path: {masked}, split: test}}\nmodel: {{path: {model}}}\n"
                f"methods: {methods % (groups, groups, groups)}\n"
                f"run: {{block_rows: 16}}\noutput: {{path: {out}, overwrite: true}}\n")
    r = subprocess.run([attrib, "run", job, "--fresh"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL attrib run ({groups}) exit {r.returncode}:\n{r.stderr}")
    with h5py.File(out, "r") as f:
        return {m: f[f"attributions/{m}/scores"][()] for m in ("abl", "shap", "ks")}


fails = 0
a = run("feature_mask: /masks/grid7", os.path.join(wd, "mask.h5"))
b = run("patch: [7, 7]", os.path.join(wd, "patch.h5"))
for m in a:
    same = a[m].tobytes() == b[m].tobytes()
    print(f"{'ok  ' if same else 'FAIL'} {m}: feature_mask /masks/grid7 == patch [7, 7] byte for byte")
    fails += not same
c = run("feature_mask: /masks/renumbered", os.path.join(wd, "renum.h5"))
err = float(np.max(np.abs(c["abl"] - a["abl"])) / np.max(np.abs(a["abl"])))
same = err < 1e-5
print(f"{'ok  ' if same else 'FAIL'} abl: renumbered groups give the same ablation scores "
      f"(max difference {err:.2g} of the largest score)")
fails += not same
sys.exit(1 if fails else 0)
