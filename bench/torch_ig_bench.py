#!/usr/bin/python3
"""Plain-PyTorch Integrated Gradients on the bench workload, for a ratio.

IG with n_steps Gauss-Legendre points on an MLP 784-256-256-10 over n inputs,
batched the way a careful PyTorch user would (all steps of a batch of inputs
in one forward/backward). Prints inputs/s. usage: torch_ig_bench.py [n] [steps] [threads]
"""
import sys
import time

import numpy as np
import torch

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                            torch.nn.Linear(256, 256), torch.nn.ReLU(),
                            torch.nn.Linear(256, 10))
x = torch.rand(n, 784)
nodes, weights = np.polynomial.legendre.leggauss(steps)
alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
w = torch.tensor(weights / 2, dtype=torch.float32)
target = torch.arange(n) % 10
batch = 64


def run():
    out = torch.empty_like(x)
    for s in range(0, n, batch):
        xb = x[s:s + batch]
        B = xb.shape[0]
        pts = (alphas[:, None, None] * xb[None]).reshape(steps * B, 784).requires_grad_(True)
        y = model(pts)
        sel = y.gather(1, target[s:s + B].repeat(steps)[:, None]).sum()
        (g,) = torch.autograd.grad(sel, pts)
        out[s:s + B] = xb * (w[:, None, None] * g.reshape(steps, B, 784)).sum(0)
    return out


run()
best = 1e30
for _ in range(3):
    t0 = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - t0)
print(f"torch_ig_inputs_per_s      {n / best:10.1f}   ({threads} threads, torch {torch.__version__})")
