#!/usr/bin/env python3
"""Replay `test_optim --dump` with torch.optim and torch.optim.lr_scheduler.

usage: check_train_optim_torch.py (TEST_OPTIM_BINARY | DUMP.txt)

For every optimizer case of the dump: the same initial parameters, the same
gradients and learning rates step by step, in torch (float32 parameters,
non-trainable elements left out of the optimizer as a buffer would be);
the engine's final parameters must agree to 1e-6 of their scale. StepLR and
CosineAnnealingLR stepped once per epoch must give the engine's values.
Exits 1 on any disagreement."""
import math
import subprocess
import sys

import torch


def parse(text):
    lines = [l.split() for l in text.splitlines() if l.strip()]
    out = {"grads": [], "cases": []}
    for f in lines:
        if f[0] == "trainable":
            out["trainable"] = [int(v) for v in f[1:]]
        elif f[0] == "p0":
            out["p0"] = [float(v) for v in f[1:]]
        elif f[0] == "grad":
            out["grads"].append((float(f[2]), [float(v) for v in f[3:]]))
        elif f[0] == "case":
            name, kind = f[1], f[2]
            mom, nest, wd, b1, b2, eps = (float(f[3]), int(f[4]), float(f[5]), float(f[6]),
                                          float(f[7]), float(f[8]))
            out["cases"].append((name, kind, mom, nest, wd, b1, b2, eps,
                                 [float(v) for v in f[9:]]))
        elif f[0] in ("steplr", "cosine"):
            out[f[0]] = ([float(v) for v in f[1:4]], [float(v) for v in f[4:]])
    return out


def replay(d, case):
    name, kind, mom, nest, wd, b1, b2, eps, _ = case
    mask = torch.tensor(d["trainable"], dtype=torch.bool)
    p0 = torch.tensor(d["p0"], dtype=torch.float32)
    p = torch.nn.Parameter(p0[mask].clone())
    lr0 = d["grads"][0][0]
    if kind == "sgd":
        opt = torch.optim.SGD([p], lr=lr0, momentum=mom, nesterov=bool(nest), weight_decay=wd)
    elif kind == "adam":
        opt = torch.optim.Adam([p], lr=lr0, betas=(b1, b2), eps=eps, weight_decay=wd)
    else:
        opt = torch.optim.AdamW([p], lr=lr0, betas=(b1, b2), eps=eps, weight_decay=wd)
    for lr, g in d["grads"]:
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float32)[mask]
        opt.step()
    full = p0.clone()
    full[mask] = p.detach()
    return full


def schedule_error(make, lr, got):
    """Largest relative difference between attrib's per-epoch learning rates
    got and those of the torch scheduler make(optimizer) at base lr."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sch = make(opt)
    want = []
    for _ in got:
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return max(abs(a - b) / b for a, b in zip(got, want))


def main():
    src = sys.argv[1]
    if src.endswith(".txt"):
        text = open(src).read()
    else:
        text = subprocess.run([src, "--dump"], check=True, capture_output=True,
                              text=True).stdout
    d = parse(text)
    assert d["cases"], "no optimizer cases in the dump"
    bad = 0
    for case in d["cases"]:
        want = replay(d, case).double()
        got = torch.tensor(case[-1], dtype=torch.float64)
        scale = float(want.abs().max())
        err = float((got - want).abs().max())
        ok = err <= 1e-6 * scale
        bad += not ok
        print(f"{case[0]:14s} max |engine - torch| = {err:.3g} (scale {scale:.3g}) "
              f"{'ok' if ok else 'MISMATCH'}")
    (lr, step_size, gamma), got = d["steplr"]
    step = lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=int(step_size), gamma=gamma)
    err = schedule_error(step, lr, got)
    bad += err > 1e-12
    print(f"StepLR         max relative difference {err:.3g}")
    (lr, t_max, eta_min), got = d["cosine"]
    cosine = lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=int(t_max),
                                                                   eta_min=eta_min)
    err = schedule_error(cosine, lr, got)
    bad += err > 1e-9
    print(f"CosineAnnealingLR max relative difference {err:.3g}")
    if bad:
        print(f"check_train_optim_torch: {bad} mismatch(es)")
        return 1
    print("check_train_optim_torch: engine optimizers and schedules agree with torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
