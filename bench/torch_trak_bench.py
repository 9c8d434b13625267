#!/usr/bin/python3
"""PyTorch counterpart of the TRAK benchmark (bench/run_tda_bench.sh): TRAK
0.3.2's CPU path, re-implemented (TRAK itself cannot be installed here).

Two commands:

  torch_trak_bench.py run MODEL.h5 DATA.h5 [--train-rows 5000] [--test-rows 1000]
        [--proj-dim 512] [--proj-type rademacher|normal] [--batch 100]
        [--block-size 100] [--keep-proj] [--lambda-reg 0] [--seed 0] [--threads 2]
        [--out SCORES.h5]
      Featurizes the first train-rows rows of DATA.h5's train split and
      scores the first test-rows rows of its test split (the rows the attrib
      job reads) with the weights of the attrib model file MODEL.h5
      (/state_dict holds PyTorch's names; layers flatten, linear, relu).
      Prints one line "torch_trak total_s T cpu_s C featurize_s F finalize_features_s
      X score_s S finalize_scores_s Z load_s L per_sample_grads_s G project_s
      P of_which_generate_s R (...)" (seconds; C = the process's CPU time,
      all threads; load = reading the rows and the model; G and P are the per-sample gradients and the projection of both
      featurize and score, R the part of P spent regenerating the matrix). --out writes the scores as
      /scores [n_test, n_train] float32 (attrib's orientation).

  torch_trak_bench.py lds SCORES.h5[:DATASET] TRUTH.h5 [--check] [--vs OTHER.h5[:DATASET]]
      The LDS of a score matrix [n_test, n_train] (DATASET, default /scores)
      against the ground truth of an attrib results file (TRUTH.h5's
      /ground_truth/lds/masks [M, n_train] and /margins [M, R, n_test]):
      per test row the Spearman correlation over the M subsets between the
      summed scores of the subset's train rows and the mean margin over the R
      seeds (0 where undefined, as attrib does), then the mean. Prints
      "lds X (per-test min .. max, n_test, M subsets)". --check (for a
      results file's own /influence/<m>/scores) also compares with the file's
      /influence/<m>/lds attribute lds and exits 1 if they differ by more
      than 1e-6: an independent recomputation of attrib's LDS. --vs prints
      the paired difference of the mean LDS (this minus OTHER's, the same test
      rows and ground truth) with a 95% bootstrap interval over test rows:
      "equal or better" means its upper end is above 0.

  torch_trak_bench.py check MODEL.h5 DATA.h5 RESULTS.h5 [--method trak]
        [--layer layers.3] [--tol 1e-4]
      Recomputes an attrib TRAK score matrix made without projection on one
      layer (`projection: none, layers: [LAYER]`; its first rows of the test
      and train splits) in float64 from this file's per-sample margin
      gradients and 1 - p_y: phi_test (Phi^T Phi + lambda I)^-1 Phi^T
      diag(1 - p), lambda the results' damping_used. Exit 1 when the largest
      difference exceeds tol times the largest score: attrib and this
      counterpart compute the same TRAK (only the projections differ).

What `run` does, step by step as TRAK 0.3.2 does it on a CPU (TRAKer with
device='cpu', no fast_jl -> BasicProjector; use_half_precision=False since
torch's CPU matmul has no float16 in 1.13):
  featurize       per batch of train rows: per-sample gradients of the margin
                  f = z_y - logsumexp_{c != y} z_c with respect to every
                  parameter (functorch vmap over grad of the single-example
                  function, functional_call on a dict of weights), the
                  per-parameter gradients flattened into one (B, p) matrix
                  (TRAK's vectorize), projected by BasicProjector, and the
                  out-to-loss weights 1 - p_y from a second forward of the
                  batch; both stored in memory-mapped .npy files (TRAK's
                  MmapSaver).
  BasicProjector  the (p, proj_dim) matrix is generated in column blocks of
                  block_size (100): with more than one block every project()
                  call re-seeds each block's generator and regenerates it
                  (bernoulli -> +-1, or normal) before its matmul, so the
                  whole p x proj_dim matrix is drawn once per batch.
                  --keep-proj generates each block once and keeps it (not
                  what TRAK does: shows what the regeneration costs).
  finalize        X^T X over the train features, (X^T X + lambda I)^-1 in
   features       float32 (torch.linalg.inv), divided by its mean absolute
                  entry, features = X (X^T X)^-1.
  score           the test rows' projected margin gradients, as featurize.
  finalize        scores = features @ target_grads^T (n_train, n_test), each
   scores         train row times its 1 - p_y.
The constant factors (the +-1 entries without 1/sqrt(k), the inverse's
normalisation) scale every score alike: rankings and LDS do not see them.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn


def load_model(path):
    """An nn.Module with the state-dict names of the attrib model file."""
    import h5py
    with h5py.File(path, "r") as f:
        arch = f.attrs["architecture"]
        arch = arch.decode() if isinstance(arch, bytes) else str(arch)
        sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32))
              for k, v in f["state_dict"].items()}
    # the architecture attribute is a YAML list of flow mappings, one a line:
    # "- {kind: linear, name: layers.1, out_features: 128, bias: true}"
    layers = []
    for line in arch.splitlines():
        line = line.strip()
        if not line.startswith("- {"):
            continue
        fields = dict(kv.split(": ", 1) for kv in line[3:-1].split(", "))
        layers.append(fields)
    mods = {}
    for L in layers:
        kind, name = L["kind"], L["name"]
        if kind == "flatten":
            mods[name] = nn.Flatten()
        elif kind == "relu":
            mods[name] = nn.ReLU()
        elif kind == "linear":
            w = sd[name + ".weight"]
            mods[name] = nn.Linear(w.shape[1], w.shape[0], bias=name + ".bias" in sd)
        else:
            raise SystemExit(f"{path}: layer {name} is a {kind}; this benchmark builds "
                             "flatten, linear and relu only")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.names = [L["name"] for L in layers]
            # nested names ("layers.1") become submodules of the same path
            for n, m in mods.items():
                parent = self
                parts = n.split(".")
                for p in parts[:-1]:
                    if not hasattr(parent, p):
                        parent.add_module(p, nn.Module())
                    parent = getattr(parent, p)
                parent.add_module(parts[-1], m)

        def forward(self, x):
            for n in self.names:
                x = self.get_submodule(n)(x)
            return x

    net = Net()
    net.load_state_dict(sd, strict=True)
    return net.eval()


def read_rows(path, split, n):
    import h5py
    with h5py.File(path, "r") as f:
        x = np.asarray(f[f"{split}/images"][:n], dtype=np.float32)
        y = np.asarray(f[f"{split}/labels"][:n], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


class BasicProjector:
    """TRAK's CPU projector: column blocks of a (p, k) random matrix."""

    def __init__(self, grad_dim, proj_dim, seed, proj_type, block_size=100, keep=False):
        self.p, self.k, self.type = grad_dim, proj_dim, proj_type
        self.bs = min(proj_dim, block_size)
        self.nb = (proj_dim + self.bs - 1) // self.bs
        self.gen = torch.Generator()
        self.states = []
        for i in range(self.nb):                      # one seed per block
            self.gen.manual_seed(seed + 1000 * i)
            self.states.append(self.gen.get_state())
        self.mat = torch.empty(grad_dim, self.bs)
        self.kept = None
        self.t_gen = 0.0                              # regenerating blocks in project()
        if keep:
            self.kept = []
            for i in range(self.nb):
                self._generate(i)
                self.kept.append(self.mat.clone())
        elif self.nb == 1:
            self._generate(0)

    def _generate(self, i):
        self.gen.set_state(self.states[i])
        if self.type == "normal":
            self.mat.normal_(generator=self.gen)
        else:
            self.mat.bernoulli_(p=0.5, generator=self.gen)
            self.mat *= 2.0
            self.mat -= 1.0

    def project(self, g):
        out = torch.zeros(g.shape[0], self.k)
        if self.nb == 1:
            torch.matmul(g, self.mat, out=out)
            return out
        for i in range(self.nb):
            st, ed = i * self.bs, min((i + 1) * self.bs, self.k)
            if self.kept is not None:
                m = self.kept[i]
            else:
                t0 = time.perf_counter()
                self._generate(i)                     # regenerated every call
                self.t_gen += time.perf_counter() - t0
                m = self.mat
            out[:, st:ed] = g @ m[:, :ed - st]
        return out


class Featurizer:
    """Per-sample margin gradients (functorch vmap of grad) and 1 - p_y."""

    def __init__(self, model):
        from functorch import grad, vmap
        from torch.nn.utils import stateless
        self.model = model
        self.weights = {k: v.detach() for k, v in model.named_parameters()}
        self.buffers = {k: v.detach() for k, v in model.named_buffers()}
        self.p = sum(v.numel() for v in self.weights.values())

        def margin(weights, buffers, image, label):
            logits = stateless.functional_call(self.model, {**weights, **buffers},
                                               (image.unsqueeze(0),))
            is_y = torch.arange(logits.shape[-1]) == label
            correct = logits.masked_fill(~is_y, 0.0).sum(-1)
            others = logits.masked_fill(is_y, -float("inf"))
            return (correct - others.logsumexp(dim=-1)).sum()

        self.per_sample = vmap(grad(margin), in_dims=(None, None, 0, 0))

    def grads(self, x, y):
        g = self.per_sample(self.weights, self.buffers, x, y)
        out = torch.empty(x.shape[0], self.p)        # TRAK's vectorize
        ptr = 0
        for v in g.values():
            n = v[0].numel()
            out[:, ptr:ptr + n] = v.reshape(x.shape[0], -1)
            ptr += n
        return out

    @torch.no_grad()
    def out_to_loss(self, x, y):
        logits = self.model(x)
        ps = torch.softmax(logits, dim=-1)[torch.arange(x.shape[0]), y]
        return (1 - ps).unsqueeze(-1)


def run(args):
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="torch_trak_")
    try:
        t_all = time.perf_counter()
        c_all = time.process_time()
        model = load_model(args.model)
        xtr, ytr = read_rows(args.data, "train", args.train_rows)
        xte, yte = read_rows(args.data, "test", args.test_rows)
        t_load = time.perf_counter() - t_all
        n_tr, n_te = xtr.shape[0], xte.shape[0]
        fz = Featurizer(model)
        t0 = time.perf_counter()
        proj = BasicProjector(fz.p, args.proj_dim, args.seed, args.proj_type, args.block_size,
                              args.keep_proj)
        t_proj_init = time.perf_counter() - t0
        # MmapSaver's stores
        grads = np.lib.format.open_memmap(os.path.join(tmp, "grads.npy"), "w+", np.float32,
                                          (n_tr, args.proj_dim))
        o2l = np.lib.format.open_memmap(os.path.join(tmp, "out_to_loss.npy"), "w+",
                                        np.float32, (n_tr, 1))
        t_grad = t_project = 0.0
        t0 = time.perf_counter()
        for s in range(0, n_tr, args.batch):
            xb, yb = xtr[s:s + args.batch], ytr[s:s + args.batch]
            ta = time.perf_counter()
            g = fz.grads(xb, yb)
            tb = time.perf_counter()
            grads[s:s + xb.shape[0]] = proj.project(g).numpy()
            t_project += time.perf_counter() - tb
            t_grad += tb - ta
            o2l[s:s + xb.shape[0]] = fz.out_to_loss(xb, yb).numpy()
        t_feat = time.perf_counter() - t0 + t_proj_init
        # finalize_features
        t0 = time.perf_counter()
        g = torch.as_tensor(np.asarray(grads))
        xtx = torch.zeros(args.proj_dim, args.proj_dim)
        for blk in torch.split(g, 20000, dim=0):
            xtx += blk.T @ blk
        inv = torch.linalg.inv(xtx + args.lambda_reg * torch.eye(args.proj_dim))
        inv /= inv.abs().mean()
        feats = np.lib.format.open_memmap(os.path.join(tmp, "features.npy"), "w+", np.float32,
                                          (n_tr, args.proj_dim))
        for s in range(0, n_tr, 20000):
            feats[s:s + 20000] = (g[s:s + 20000] @ inv).numpy()
        t_fin = time.perf_counter() - t0
        # score (target gradients)
        t0 = time.perf_counter()
        tg = np.lib.format.open_memmap(os.path.join(tmp, "target_grads.npy"), "w+",
                                       np.float32, (n_te, args.proj_dim))
        for s in range(0, n_te, args.batch):
            xb, yb = xte[s:s + args.batch], yte[s:s + args.batch]
            ta = time.perf_counter()
            gt = fz.grads(xb, yb)
            tb = time.perf_counter()
            tg[s:s + xb.shape[0]] = proj.project(gt).numpy()
            t_project += time.perf_counter() - tb
            t_grad += tb - ta
        t_score = time.perf_counter() - t0
        # finalize_scores
        t0 = time.perf_counter()
        scores = torch.as_tensor(np.asarray(feats)) @ torch.as_tensor(np.asarray(tg)).T
        scores *= torch.as_tensor(np.asarray(o2l))
        sc = np.lib.format.open_memmap(os.path.join(tmp, "scores.npy"), "w+", np.float32,
                                       (n_tr, n_te))
        sc[:] = scores.numpy()
        sc.flush()
        t_fs = time.perf_counter() - t0
        total = time.perf_counter() - t_all
        cpu = time.process_time() - c_all
        print(f"torch_trak total_s {total:.3f} cpu_s {cpu:.3f} featurize_s {t_feat:.3f} finalize_features_s "
              f"{t_fin:.3f} score_s {t_score:.3f} finalize_scores_s {t_fs:.3f} load_s "
              f"{t_load:.3f} per_sample_grads_s {t_grad:.3f} project_s {t_project:.3f} "
              f"of_which_generate_s {proj.t_gen:.3f} "
              f"({args.proj_type}, k {args.proj_dim}, batch {args.batch}, block "
              f"{args.block_size}{', kept' if args.keep_proj else ''}, p {fz.p}, {n_tr} train x "
              f"{n_te} test, {args.threads} threads, torch {torch.__version__})")
        if args.out:
            import h5py
            with h5py.File(args.out + ".tmp", "w") as f:
                f.create_dataset("scores", data=np.ascontiguousarray(sc.T))
                f.attrs["what"] = (f"TRAK 0.3.2 CPU path (bench/torch_trak_bench.py): "
                                   f"{args.proj_type} k={args.proj_dim}")
            os.replace(args.out + ".tmp", args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def ranks(a):
    """Average ranks (ties share their mean rank), along the last axis."""
    from scipy.stats import rankdata
    return rankdata(a, axis=-1)


def read_scores(spec):
    """(scores [n_test, n_train] float64, the LDS attribute beside them or None)."""
    import h5py
    path, _, ds = spec.partition(":")
    with h5py.File(path, "r") as f:
        d = f[ds or "scores"]
        lds_attr = None
        if "lds" in d.parent:
            lds_attr = float(d.parent["lds"].attrs["lds"])
        return np.asarray(d, dtype=np.float64), lds_attr


def per_test_lds(S, masks, margins):
    if S.shape != (margins.shape[2], masks.shape[1]):
        raise SystemExit(f"scores {S.shape} do not match the ground truth's "
                         f"({margins.shape[2]} test, {masks.shape[1]} train)")
    pred = masks @ S.T                      # (M, n_te)
    actual = margins.mean(axis=1)           # (M, n_te)
    rp, ra = ranks(pred.T), ranks(actual.T)  # (n_te, M)
    rp -= rp.mean(axis=1, keepdims=True)
    ra -= ra.mean(axis=1, keepdims=True)
    den = np.sqrt((rp * rp).sum(1) * (ra * ra).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(den > 0, (rp * ra).sum(1) / den, 0.0)
    return np.where(np.isfinite(per), per, 0.0)


def lds(args):
    import h5py
    S, own = read_scores(args.scores)
    with h5py.File(args.truth, "r") as f:
        masks = np.asarray(f["ground_truth/lds/masks"], dtype=np.float64)    # (M, n_tr)
        margins = np.asarray(f["ground_truth/lds/margins"], dtype=np.float64)  # (M, R, n_te)
    per = per_test_lds(S, masks, margins)
    m = float(per.mean())
    print(f"lds {m:.4f} (per-test {per.min():.3f} .. {per.max():.3f}, {S.shape[0]} test, "
          f"{masks.shape[0]} subsets x {margins.shape[1]} seeds)")
    if args.vs:
        # paired: the same test rows and ground truth, bootstrap over test rows
        d = per - per_test_lds(read_scores(args.vs)[0], masks, margins)
        rng = np.random.default_rng(0)
        boot = d[rng.integers(0, d.size, (2000, d.size))].mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        print(f"vs {args.vs}: {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] (paired, 95% bootstrap "
              "over test rows)")
    if not args.check:
        own = None
    elif own is None:
        raise SystemExit(f"--check: no lds group beside {args.scores}")
    if own is not None:
        ok = abs(own - m) <= 1e-6
        print(f"attrib's own lds {own:.6f}: {'equal' if ok else 'DIFFERENT'} "
              f"(|diff| {abs(own - m):.2e})")
        return 0 if ok else 1
    return 0


def check(args):
    """attrib's TRAK without projection on one layer against this file's
    margin gradients and 1 - p_y, the exact formula in float64."""
    import h5py
    torch.set_num_threads(args.threads)
    with h5py.File(args.results, "r") as f:
        g = f[f"influence/{args.method}"]
        A = np.asarray(g["scores"], dtype=np.float64)
        lam = float(g.attrs["damping_used"]) if "damping_used" in g.attrs else 0.0
    n_te, n_tr = A.shape
    model = load_model(args.model).double()
    xtr, ytr = read_rows(args.data, "train", n_tr)
    xte, yte = read_rows(args.data, "test", n_te)
    fz = Featurizer(model)
    names = [n for n in fz.weights if n.rsplit(".", 1)[0] == args.layer]

    def feats(x, y):
        out = []
        for s in range(0, x.shape[0], 500):
            g = fz.per_sample(fz.weights, fz.buffers, x[s:s + 500].double(), y[s:s + 500])
            out.append(torch.cat([g[n].reshape(g[n].shape[0], -1) for n in names], 1))
        return torch.cat(out)

    F, Ft = feats(xtr, ytr), feats(xte, yte)
    q = fz.out_to_loss(xtr.double(), ytr).squeeze(1)
    S = (Ft @ torch.linalg.solve(F.T @ F + lam * torch.eye(F.shape[1]), F.T)) * q
    S = S.numpy()
    err = float(np.abs(S - A).max() / np.abs(S).max())
    ok = err <= args.tol
    print(f"check: attrib {args.results}:/influence/{args.method} ({n_te} x {n_tr}, layer "
          f"{args.layer}, {F.shape[1]} parameters, damping {lam:.4g}) vs the float64 formula: "
          f"max |diff| / max |score| = {err:.2e} ({'ok' if ok else 'FAILED'}, tol {args.tol:g})")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("data")
    r.add_argument("--train-rows", type=int, default=5000)
    r.add_argument("--test-rows", type=int, default=1000)
    r.add_argument("--proj-dim", type=int, default=512)
    r.add_argument("--proj-type", choices=("rademacher", "normal"), default="rademacher")
    r.add_argument("--batch", type=int, default=100)
    r.add_argument("--block-size", type=int, default=100)
    r.add_argument("--keep-proj", action="store_true")
    r.add_argument("--lambda-reg", type=float, default=0.0)
    r.add_argument("--seed", type=int, default=0, help="projector seed (TRAK's default 0)")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--out", default="")
    s = sub.add_parser("lds")
    s.add_argument("scores")
    s.add_argument("truth")
    s.add_argument("--check", action="store_true")
    s.add_argument("--vs", default="", help="OTHER.h5[:DATASET]: the paired difference")
    c = sub.add_parser("check")
    c.add_argument("model")
    c.add_argument("data")
    c.add_argument("results")
    c.add_argument("--method", default="trak")
    c.add_argument("--layer", default="layers.3")
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    return {"run": run, "lds": lds, "check": check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
