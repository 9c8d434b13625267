#!/usr/bin/python3
"""IG completeness on the trained MLP at 64 Gauss-Legendre steps (issue #2).

usage: check_completeness.py RESULTS.h5 METHOD

The relative completeness error |delta| / |f(x) - f(b)| must be <= 1e-2 in
aggregate (sum |delta| / sum |f(x)-f(b)|), on average over samples, and for
at least 95% of samples individually. A ReLU network is piecewise linear
along the path, so its IG integrand is piecewise constant and every fixed
quadrature converges like 1/n: a few samples whose f(x) - f(b) is small stay
above 1e-2 at 64 steps (measured: 41 of 1,000 test images; all below at 1,024
steps). The stored delta must also equal sum(scores) - output_diff."""
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    g = f["attributions"][sys.argv[2]]
    assert g.attrs["quadrature"] == "gauss_legendre" and int(g.attrs["n_steps"]) == 64
    delta, diff = g["delta"][()].astype(np.float64), g["output_diff"][()].astype(np.float64)
    s = g["scores"][()].reshape(len(delta), -1).astype(np.float64).sum(1)
rel = np.abs(delta) / np.abs(diff)
agg = np.abs(delta).sum() / np.abs(diff).sum()
frac = (rel <= 1e-2).mean()
print(f"{len(rel)} samples: aggregate {agg:.2e}, mean {rel.mean():.2e}, median {np.median(rel):.2e}, "
      f"max {rel.max():.2e}; {100 * frac:.1f}% of samples <= 1e-2")
ok = agg <= 1e-2 and rel.mean() <= 1e-2 and frac >= 0.95
consistent = np.allclose(s - diff, delta, rtol=1e-3, atol=1e-4)
print("ok" if ok and consistent else "FAIL")
sys.exit(0 if ok and consistent else 1)
