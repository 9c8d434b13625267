#!/usr/bin/env python3
"""Cross-check of the rule family (workers/methods/rules.c) against PyTorch.

Runs `test_rules --dump DIR`, which writes two small models, their rows and
attrib's scores for guided_backprop, deconvolution, deeplift, four LRP rules
and grad_cam; rebuilds the models as torch.nn.Sequential in float64 and
recomputes every method with torch's own autograd: vector-Jacobian products
of the modules for the linear parts, the rule for the rest (Captum's rules
for Guided Backprop, Deconvolution, DeepLift incl. its max-pool rule; LRP by
the gradient trick R_in = a * d/da [z(a) . s]; Grad-CAM with
F.interpolate(mode='bilinear', align_corners=False)).

usage: check_rules_torch.py TEST_RULES_EXE WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
EPS = 1e-2  # the LRP stabiliser the dump uses
GAMMA = 0.25


class Net(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)


def build(name):
    if name == "cnn":
        layers = [nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                  nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 3)]
        shape = (2, 8, 8)
    else:
        layers = [nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                                               nn.Flatten()),
                  nn.Linear(3, 3)]
        shape = (1, 9, 7)
    return Net(layers), shape


def load(d, name):
    net, shape = build(name)
    params = np.fromfile(os.path.join(d, "params.f32"), dtype=np.float32)
    sd = net.state_dict()
    off = 0
    for line in open(os.path.join(d, "tensors.txt")):
        tname, numel = line.split()
        numel = int(numel)
        t = sd[tname]
        assert t.numel() == numel, (tname, t.shape, numel)
        sd[tname] = torch.from_numpy(params[off:off + numel].astype(np.float64)).view(t.shape)
        off += numel
    assert off == params.size
    net.load_state_dict(sd)
    D = int(np.prod(shape))
    x = np.fromfile(os.path.join(d, "x.f32"), dtype=np.float32).astype(np.float64)
    R = x.size // D
    x = torch.from_numpy(x).view(R, *shape)
    b = torch.from_numpy(np.fromfile(os.path.join(d, "b.f32"), dtype=np.float32)
                         .astype(np.float64)).view(1, *shape)
    t = torch.from_numpy(np.fromfile(os.path.join(d, "t.i32"), dtype=np.int32).astype(np.int64))
    return list(net.layers), x, b, t


def forward_all(layers, x):
    acts = [x]
    for layer in layers:
        acts.append(layer(acts[-1]))
    return acts


def vjp(layer, a, g):
    a = a.detach().requires_grad_(True)
    (gi,) = torch.autograd.grad(layer(a), a, g)
    return gi


def seed(out, t, values=None):
    g = torch.zeros_like(out)
    idx = torch.arange(out.shape[0])
    g[idx, t] = 1.0 if values is None else values[idx, t]
    return g


def modified_gradient(layers, x, t, relu_rule):
    acts = forward_all(layers, x)
    g = seed(acts[-1], t)
    for i in reversed(range(len(layers))):
        if isinstance(layers[i], nn.ReLU):
            g = relu_rule(acts[i], g)
        else:
            g = vjp(layers[i], acts[i], g)
    return g


def deeplift(layers, x, b, t):
    """Captum's DeepLift (rescale): nonlinear() for ReLU, maxpool() for pools."""
    acts, refs = forward_all(layers, x), forward_all(layers, b)
    g = seed(acts[-1], t)
    for i in reversed(range(len(layers))):
        layer, a, a0, y, y0 = layers[i], acts[i], refs[i], acts[i + 1], refs[i + 1]
        dx = a - a0
        if isinstance(layer, nn.ReLU):
            grad = vjp(layer, a, g)
            g = torch.where(dx.abs() < 1e-7, grad, g * (y - y0) / dx)
        elif isinstance(layer, nn.MaxPool2d):
            ymax = torch.max(y, y0)
            _, ix = F.max_pool2d(a, layer.kernel_size, layer.stride, return_indices=True)
            _, ix0 = F.max_pool2d(a0.expand_as(a), layer.kernel_size, layer.stride,
                                  return_indices=True)
            size = list(a.shape[-2:])
            u = (F.max_unpool2d(g * (ymax - y0), ix, layer.kernel_size, layer.stride,
                                output_size=size)
                 + F.max_unpool2d(g * (y - ymax), ix0, layer.kernel_size, layer.stride,
                                  output_size=size))
            grad = vjp(layer, a, g)
            g = torch.where(dx.abs() < 1e-7, grad, u / dx)
        else:
            g = vjp(layer, a, g)
    return (x - b) * g


def stab(z):
    return z + EPS * torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))


def with_params(layer, w, bias):
    out = type(layer)(*layer_args(layer))
    out.weight.data = w
    if bias is None:
        out.bias = None
    else:
        out.bias.data = bias
    return out


def layer_args(layer):
    if isinstance(layer, nn.Linear):
        return (layer.in_features, layer.out_features)
    return (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
            layer.padding)


def lrp(layers, x, t, rule, alpha=2.0, beta=1.0):
    acts = forward_all(layers, x)
    R = seed(acts[-1], t, acts[-1])
    for i in reversed(range(len(layers))):
        layer, a = layers[i], acts[i]
        if isinstance(layer, (nn.ReLU, nn.Flatten, nn.MaxPool2d)):
            R = R if isinstance(layer, nn.ReLU) else vjp(layer, a, R)  # pass / winner
            if isinstance(layer, nn.Flatten):
                R = R.view(a.shape)
            continue
        if isinstance(layer, (nn.Linear, nn.Conv2d)) and rule != "epsilon":
            w, bias = layer.weight.data, layer.bias.data
            wp, wn = w.clamp(min=0), w.clamp(max=0)
            if rule == "gamma":
                mod = with_params(layer, w + GAMMA * wp, bias + GAMMA * bias.clamp(min=0))
            elif rule == "zplus":
                mod = with_params(layer, wp, None)
            if rule in ("gamma", "zplus"):
                s = R / stab(mod(a))
                R = a * vjp(mod, a, s)
                continue
            lp, ln = with_params(layer, wp, None), with_params(layer, wn, None)
            ap, an = a.clamp(min=0), a.clamp(max=0)
            zp, zn = lp(ap) + ln(an), ln(ap) + lp(an)
            sp = torch.where(zp != 0, R / zp, torch.zeros_like(R))
            sn = torch.where(zn != 0, R / zn, torch.zeros_like(R))
            R = (alpha * (ap * vjp(lp, ap, sp) + an * vjp(ln, an, sp))
                 - beta * (ap * vjp(ln, ap, sn) + an * vjp(lp, an, sn)))
            continue
        # epsilon rule: linear, conv2d, average pools
        s = R / stab(layer(a))
        R = a * vjp(layer, a, s)
    return R


def grad_cam(layers, x, t, k):
    acts = forward_all(layers, x)
    A = acts[k + 1].detach().requires_grad_(True)
    out = A
    for layer in layers[k + 1:]:
        out = layer(out)
    (G,) = torch.autograd.grad(out, A, seed(out, t))
    alpha = G.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * A).sum(dim=1, keepdim=True))
    up = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return up.expand(-1, x.shape[1], -1, -1)


def main():
    exe, work = sys.argv[1], sys.argv[2]
    for sub in ("cnn", "cam"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    subprocess.run([exe, "--dump", work], check=True)
    failures = 0
    for name in ("cnn", "cam"):
        d = os.path.join(work, name)
        layers, x, b, t = load(d, name)
        want = {}
        if name == "cnn":
            want["guided_backprop"] = modified_gradient(
                layers, x, t, lambda a, g: torch.where((a > 0) & (g > 0), g, torch.zeros_like(g)))
            want["deconvolution"] = modified_gradient(layers, x, t, lambda a, g: g.clamp(min=0))
            want["deeplift"] = deeplift(layers, x, b, t)
            want["lrp_epsilon"] = lrp(layers, x, t, "epsilon")
            want["lrp_gamma"] = lrp(layers, x, t, "gamma")
            want["lrp_zplus"] = lrp(layers, x, t, "zplus")
            want["lrp_alpha2_beta1"] = lrp(layers, x, t, "alpha_beta", 2.0, 1.0)
            want["lrp_alpha1_beta0"] = lrp(layers, x, t, "alpha_beta", 1.0, 0.0)
            want["grad_cam_a"] = grad_cam(layers, x, t, 2)
            want["grad_cam_b"] = grad_cam(layers, x, t, 4)
        else:
            want["grad_cam_a"] = grad_cam(layers, x, t, 0)
            want["grad_cam_b"] = grad_cam(layers, x, t, 1)
        for method, w in want.items():
            w = w.detach().reshape(x.shape[0], -1).numpy()
            got = np.fromfile(os.path.join(d, method + ".f32"), dtype=np.float32)
            got = got.reshape(w.shape).astype(np.float64)
            err = np.abs(got - w).max() / max(np.abs(w).max(), 1e-300)
            ok = err < 1e-5 and np.abs(w).max() > 0
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:4s} {method:18s} normwise {err:.2e}")
    if failures:
        print(f"check_rules_torch: {failures} failure(s)")
        sys.exit(1)
    print("check_rules_torch: all checks passed")


if __name__ == "__main__":
    main()
