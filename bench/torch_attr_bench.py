#!/usr/bin/python3
"""PyTorch counterparts of the feature-attribution benchmark (bench/run_methods_bench.sh).

Two commands:

  torch_attr_bench.py models OUTDIR
      Writes OUTDIR/{mlp,cnn,small_cnn}.pt (whole modules, torch.save; random
      weights from a fixed seed) for tools/export_torch.py:
        mlp        flatten, 784-256-256-10 (ReLU)
        cnn        the LeNet-like CNN of jobs/train_cnn.yaml: conv(1,32,3,pad 1)
                   relu maxpool2 conv(32,64,3,pad 1) relu maxpool2 flatten
                   linear(3136,128) relu linear(128,10)
        small_cnn  conv(1,16,3,pad 1) relu maxpool2 conv(16,32,3,pad 1) relu
                   maxpool2 flatten linear(1568,10) (the CNN of
                   bench/perturb_bench.c)

  torch_attr_bench.py noise-data OUT.h5 [--n 1000]
      Writes an attrib dataset (the layout of `attrib import`) whose test
      split holds n images of uniform random pixels in (0, 1]: no patch or
      window equals the zero baseline, so no perturbation can be skipped
      (attrib skips those that change nothing; Fashion-MNIST has ~30% all-zero
      4x4 patches). Labels are 0.

  torch_attr_bench.py run WORKLOAD MODEL.pt DATA.h5 [--n 1000] [--threads 2]
      Times WORKLOAD on the first n rows of DATA.h5's test split (the rows the
      attrib job reads), target = the model's predicted class, baseline 0,
      and prints one line "torch WORKLOAD inputs_per_s X (...)". Best of
      --reps runs after one warm-up on a slice.

The workloads re-implement what Captum does, vectorised the way Captum's
best settings run it (Captum itself is not installed here; only the
PyTorch work is timed, none of Captum's Python bookkeeping):
  ig_captum     IntegratedGradients, Gauss-Legendre: each batch of inputs is
                expanded over the n_steps alphas (step-major), one forward and
                one backward of the target logits' sum per batch, gradients
                weighted and summed over steps, times (x - baseline).
  ig_head       hand-written IG with the first-layer trick (MLP only):
                z1(a) = z1(0) + a W1 (x - 0) for all steps, backward from the
                target logit to z1 only, then (x - 0) * (sum_k w_k dz1) W1.
  occlusion     Occlusion, 4x4 windows at stride 4 (49 windows): f(x) once, all
                49 occluded copies of a batch of inputs in one forward
                (perturbations_per_eval = 49), (f(x) - f(occluded)) spread
                over each window.
  shapley       ShapleyValueSampling, 25 permutations of the 49 4x4 patches:
                per permutation the 49 cumulative inputs of a batch of inputs
                in one forward (perturbations_per_eval = 49), each patch gets
                f(with it) - f(before it); mean over permutations.
  kernel_shap   KernelShap, 200 coalitions of the 49 patches (the first two
                all-on and all-off with weight 1e6, the rest: size k drawn
                from the Shapley kernel's size distribution, then a uniform
                subset), one forward of the 200 perturbed inputs per input
                (Captum's Lime/KernelShap takes one example at a time), a
                weighted least-squares fit of the 49 coefficients + intercept.
"""
import argparse
import collections
import sys
import time

import numpy as np
import torch
import torch.nn as nn

PATCH = 4  # 4x4 patches / windows on 28x28: 7x7 = 49


def make_models(outdir):
    torch.manual_seed(0)
    mlp = nn.Sequential(collections.OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(784, 256)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(256, 256)), ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(256, 10))]))
    def conv_stack(c1, c2):  # conv-relu-pool twice, then flatten
        return [("conv1", nn.Conv2d(1, c1, 3, padding=1)), ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(c1, c2, 3, padding=1)), ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten())]
    cnn = nn.Sequential(collections.OrderedDict(conv_stack(32, 64) + [
        ("fc1", nn.Linear(64 * 7 * 7, 128)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(128, 10))]))
    small = nn.Sequential(collections.OrderedDict(conv_stack(16, 32) + [
        ("fc", nn.Linear(32 * 7 * 7, 10))]))
    for name, m in (("mlp", mlp), ("cnn", cnn), ("small_cnn", small)):
        torch.save(m.eval(), f"{outdir}/{name}.pt")


def gl_rule(n):
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (torch.tensor((nodes + 1) / 2, dtype=torch.float32),
            torch.tensor(weights / 2, dtype=torch.float32))


def ig_captum(model, x, target, steps=50, batch=64):
    alphas, w = gl_rule(steps)
    out = torch.empty_like(x)
    shape = x.shape[1:]
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        B = xb.shape[0]
        a = alphas.view(steps, 1, *([1] * len(shape)))
        pts = (a * xb[None]).reshape(steps * B, *shape).requires_grad_(True)
        y = model(pts)
        sel = y.gather(1, target[s:s + B].repeat(steps)[:, None]).sum()
        (g,) = torch.autograd.grad(sel, pts)
        g = g.reshape(steps, B, *shape)
        out[s:s + B] = xb * (w.view(steps, 1, *([1] * len(shape))) * g).sum(0)
    return out


def ig_head(model, x, target, steps=50, batch=64):
    """IG on flatten -> fc1 -> rest, reusing the affine first layer."""
    alphas, w = gl_rule(steps)
    fc1 = model.fc1
    rest = nn.Sequential(*list(model.children())[2:])
    W = fc1.weight.detach()
    b = fc1.bias.detach()
    xf = x.reshape(x.shape[0], -1)
    out = torch.empty_like(xf)
    for s in range(0, xf.shape[0], batch):
        xb = xf[s:s + batch]
        B = xb.shape[0]
        delta = xb @ W.t()                     # W (x - 0)
        z = (b + alphas[:, None, None] * delta[None]).reshape(steps * B, -1).requires_grad_(True)
        y = rest(z)
        sel = y.gather(1, target[s:s + B].repeat(steps)[:, None]).sum()
        (g,) = torch.autograd.grad(sel, z)
        gz = (w[:, None, None] * g.reshape(steps, B, -1)).sum(0)
        out[s:s + B] = xb * (gz @ W)
    return out.reshape(x.shape)


def patch_masks(shape):
    """(P, *shape) float masks of the 4x4 patches of a (..., 28, 28) row."""
    H, W = shape[-2], shape[-1]
    gh, gw = H // PATCH, W // PATCH
    m = torch.zeros(gh * gw, H, W)
    for i in range(gh):
        for j in range(gw):
            m[i * gw + j, i * PATCH:(i + 1) * PATCH, j * PATCH:(j + 1) * PATCH] = 1
    return m.view(gh * gw, *([1] * (len(shape) - 2)), H, W).expand(gh * gw, *shape).contiguous()


@torch.no_grad()
def occlusion(model, x, target, batch=64):
    masks = patch_masks(x.shape[1:])      # windows at stride = window: one mask each
    P = masks.shape[0]
    out = torch.empty_like(x)
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        B = xb.shape[0]
        t = target[s:s + B]
        f0 = model(xb).gather(1, t[:, None])[:, 0]
        occ = (xb[None] * (1 - masks[:, None])).reshape(P * B, *xb.shape[1:])
        fo = model(occ).gather(1, t.repeat(P)[:, None]).view(P, B)
        d = f0[None] - fo                  # (P, B)
        out[s:s + B] = torch.einsum("pb,p...->b...", d, masks)
    return out


@torch.no_grad()
def shapley(model, x, target, n_perm=25, batch=64, seed=0):
    masks = patch_masks(x.shape[1:])
    P = masks.shape[0]
    g = torch.Generator().manual_seed(seed)
    out = torch.empty_like(x)
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        B = xb.shape[0]
        t = target[s:s + B]
        tP = t.repeat(P)[:, None]
        f_base = model(torch.zeros_like(xb)).gather(1, t[:, None])[:, 0]
        phi = torch.zeros(P, B)
        for _ in range(n_perm):
            perm = torch.randperm(P, generator=g)
            cum = masks[perm].cumsum(0)    # (P, *shape): first k+1 patches on
            inp = (cum[:, None] * xb[None]).reshape(P * B, *xb.shape[1:])
            f = model(inp).gather(1, tP).view(P, B)
            prev = torch.cat([f_base[None], f[:-1]])
            phi[perm] += f - prev
        out[s:s + B] = torch.einsum("pb,p...->b...", phi / n_perm, masks)
    return out


@torch.no_grad()
def kernel_shap(model, x, target, n_coal=200, seed=0, batch=None):
    masks = patch_masks(x.shape[1:])
    P = masks.shape[0]
    g = torch.Generator().manual_seed(seed)
    k = torch.arange(1, P, dtype=torch.float64)
    size_p = (P - 1) / (k * (P - k))        # Shapley kernel summed over subsets of size k
    size_p = size_p / size_p.sum()
    out = torch.empty_like(x)
    flat_masks = masks.reshape(P, -1)
    for i in range(x.shape[0]):
        # coalitions: all on, all off, then random (Captum draws them per input)
        Z = torch.zeros(n_coal, P)
        Z[0] = 1
        sizes = torch.multinomial(size_p, n_coal - 2, replacement=True, generator=g) + 1
        r = torch.rand(n_coal - 2, P, generator=g).argsort(1)
        Z[2:] = (r < sizes[:, None]).float()
        wts = torch.ones(n_coal, dtype=torch.float64)
        wts[:2] = 1e6
        xi = x[i].reshape(-1)
        inp = (Z @ flat_masks) * xi[None]
        y = model(inp.view(n_coal, *x.shape[1:]))[:, target[i]].double()
        A = torch.cat([Z.double(), torch.ones(n_coal, 1, dtype=torch.float64)], 1)
        sw = wts.sqrt()[:, None]
        coef = torch.linalg.lstsq(A * sw, y[:, None] * sw).solution[:P, 0]
        out[i] = (coef.float() @ flat_masks).view(x.shape[1:])
    return out


WORKLOADS = {"ig_captum": ig_captum, "ig_head": ig_head, "occlusion": occlusion,
             "shapley": shapley, "kernel_shap": kernel_shap}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("models")
    a.add_argument("outdir")
    nd = sub.add_parser("noise-data")
    nd.add_argument("out")
    nd.add_argument("--n", type=int, default=1000)
    r = sub.add_parser("run")
    r.add_argument("workload", choices=sorted(WORKLOADS))
    r.add_argument("model")
    r.add_argument("data")
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--batch", type=int, default=0, help="inputs per batch (0 = the default)")
    r.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.cmd == "models":
        make_models(args.outdir)
        return 0
    if args.cmd == "noise-data":
        import h5py
        rng = np.random.default_rng(0)
        x = (1 - rng.random((args.n, 28, 28))).astype(np.float32)   # (0, 1]
        with h5py.File(args.out + ".tmp", "w") as f:
            f.attrs["format"] = "attrib-dataset"
            f.attrs["format_version"] = 1
            f.attrs["source"] = "bench/torch_attr_bench.py noise-data (uniform pixels in (0, 1])"
            f.create_dataset("test/images", data=x)
            f.create_dataset("test/labels", data=np.zeros(args.n, np.int32))
        import os
        os.replace(args.out + ".tmp", args.out)
        return 0

    import h5py
    torch.set_num_threads(args.threads)
    model = torch.load(args.model).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with h5py.File(args.data, "r") as f:
        x = torch.from_numpy(np.asarray(f["test/images"][:args.n], dtype=np.float32))
    first = next(model.children())
    if isinstance(first, nn.Conv2d):
        x = x[:, None]                     # (N, 1, 28, 28)
    with torch.no_grad():
        target = model(x).argmax(1)
    fn = WORKLOADS[args.workload]
    kw = {"batch": args.batch} if args.batch else {}
    fn(model, x[:min(64, args.n)], target[:min(64, args.n)], **kw)   # warm-up
    best = 1e30
    for _ in range(args.reps):
        t0 = time.perf_counter()
        fn(model, x, target, **kw)
        best = min(best, time.perf_counter() - t0)
    print(f"torch {args.workload} inputs_per_s {args.n / best:.1f} "
          f"({args.threads} threads, torch {torch.__version__}, {args.n} inputs, best of {args.reps})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
