#!/usr/bin/python3
"""attrib's engine against PyTorch, through tools/export_torch.py and back.

usage: check_torch_models.py {mlp,cnn,transformer} --attrib BIN --probe BIN --workdir DIR
       check_torch_models.py refused --workdir DIR

For a model of tests/torch_models.py (fixed seed; the CNN's batch norms have
random running statistics):
  1. torch.save(model) -> export_torch.py -> MODEL.h5; the file's tensors are
     the state dict's (bit for bit) and its content_sha256 is recomputed here
     from the specification (docs/torch.md), independently of attrib_torch;
  2. `attrib eval -o` on a dataset file of 64 rows reproduces PyTorch's logits;
  3. engine_probe on a batch of 6: logits, per-example losses, mean loss, the
     input gradient (not for token models), every parameter gradient,
     per-example gradients (the reference loops over examples), H v and G v
     (float64 double backward / Jacobian products on a float64 copy of the
     model) agree with PyTorch;
  4. import_torch.py: the state dict loads into a fresh module strict=True
     (and --module loads it into the pickled one) and gives identical logits;
     attrib_torch.load_attrib_model reproduces them too.
Error measure: max |attrib - torch| / max |torch| per tensor, <= 1e-4.

`refused`: models with layers or options attrib cannot represent make
export_torch.py exit 2 naming the module and the option, and write nothing;
import_torch.py refuses a tampered file and a module whose shapes differ.
Exits 1 on any failure.
"""
import argparse
import contextlib
import copy
import hashlib
import io
import os
import subprocess
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, HERE)
sys.path.insert(0, TOOLS)
import torch_models  # noqa: E402

TOL = 1e-4
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        failures.append(msg)


def rel(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return float("inf")
    den = max(np.abs(ref).max(), 1e-30)
    return float(np.abs(got - ref).max() / den)


def run(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    return p.returncode, p.stdout, p.stderr


def spec_sha256(arch, sd):
    """content_sha256 as the format specifies it (not attrib_torch's code)."""
    h = hashlib.sha256()
    h.update(arch.encode("utf-8"))
    for name in sorted(sd, key=lambda s: s.encode("utf-8")):
        h.update(name.encode("utf-8"))
        h.update(b"\x00")
        h.update(np.asarray(sd[name], dtype="<f4").tobytes(order="C"))
    return h.hexdigest()


# ---- PyTorch references (float64) --------------------------------------------


def torch_input(x32, tokens):
    if tokens:
        return torch.tensor(x32).round().long()
    return torch.tensor(x32.astype(np.float64))


def references(model64, x32, y, tokens, shape, v, per_example_names):
    """logits, losses, loss, dx, grads, per-example grads, H v, G v."""
    N = x32.shape[0]
    named = dict(model64.named_parameters())
    names = list(named)
    params = [named[n] for n in names]
    yt = torch.tensor(y, dtype=torch.long)
    xin = torch_input(x32, tokens)
    if not tokens:
        xin = xin.reshape(N, *shape).requires_grad_(True)
    out = {}
    logits = model64(xin)
    losses = F.cross_entropy(logits, yt, reduction="none")
    loss = losses.mean()
    gl = torch.autograd.grad(loss, params + ([] if tokens else [xin]), create_graph=True)
    out["logits"] = logits.detach().numpy()
    out["losses"] = losses.detach().numpy()
    out["loss"] = float(loss)
    if not tokens:
        out["dx"] = gl[-1].detach().reshape(N, -1).numpy()
    out["grad"] = {n: g.detach().numpy() for n, g in zip(names, gl)}
    # H v: double backward of <grad, v>
    vt = [torch.tensor(v[n]) for n in names]
    dot = sum((g * w).sum() for g, w in zip(gl[:len(names)], vt))
    hv = torch.autograd.grad(dot, params, retain_graph=True)
    out["hvp"] = {n: h.numpy() for n, h in zip(names, hv)}
    # G v = J^T H_loss J v; J v by the double-vjp trick, H_loss of the mean
    # cross-entropy: (diag p - p p^T) / N per example
    u = torch.zeros_like(logits, requires_grad=True)
    jtu = torch.autograd.grad(logits, params, grad_outputs=u, create_graph=True)
    jv = torch.autograd.grad(jtu, u, grad_outputs=vt)[0]
    p = torch.softmax(logits, dim=1).detach()
    hjv = (p * jv - p * (p * jv).sum(1, keepdim=True)) / N
    gv = torch.autograd.grad(logits, params, grad_outputs=hjv)
    out["gnvp"] = {n: g.numpy() for n, g in zip(names, gv)}
    # per-example gradients of loss_n: one backward per example
    sel = [n for n in names if any(n.startswith(L + ".") for L in per_example_names)] \
        if per_example_names else names
    pe = {n: np.zeros((N,) + tuple(named[n].shape)) for n in sel}
    for i in range(N):
        xi = torch_input(x32[i:i + 1], tokens)
        if not tokens:
            xi = xi.reshape(1, *shape)
        li = F.cross_entropy(model64(xi), yt[i:i + 1])
        gi = torch.autograd.grad(li, [named[n] for n in sel])
        for n, g in zip(sel, gi):
            pe[n][i] = g.numpy()
    out["per_example"] = pe
    return out


# ---- one model -----------------------------------------------------------------


PER_EXAMPLE = {
    "mlp": [],  # all layers
    "cnn": ["features.0", "features.1", "features.6.body.3", "features.6.shortcut.0",
            "features.6.shortcut.1", "head.2"],
    "transformer": ["tok", "pos", "enc1.self_attn", "enc1.norm1", "enc2.linear1",
                    "blocks.0.attn", "blocks.1.ln2", "head"],
}


def check_model(name, a):
    wd = a.workdir
    os.makedirs(wd, exist_ok=True)
    model, shape, tokens, C = torch_models.build(name, seed=1)
    pt = os.path.join(wd, "model.pt")
    h5 = os.path.join(wd, "model.h5")
    for p in (h5,):
        if os.path.exists(p):
            os.unlink(p)
    torch.save(model, pt)
    D = int(np.prod(shape))
    rng = np.random.default_rng(7)

    # 1. export
    cmd = [sys.executable, os.path.join(TOOLS, "export_torch.py"), pt, h5,
           "--input-shape", ",".join(map(str, shape)), "--import", HERE] + (["--tokens"] if tokens else [])
    rc, so, se = run(cmd)
    print(so + se, end="")
    check(rc == 0 and os.path.isfile(h5), f"export_torch.py exits 0 and writes the file (rc {rc})")
    if rc != 0:
        return
    sd_ref = {k: v.detach().numpy() for k, v in model.state_dict().items()
              if not k.endswith("num_batches_tracked")}
    with h5py.File(h5, "r") as f:
        at = dict(f.attrs)
        arch = at["architecture"]
        sd = {k: f["state_dict"][k][()] for k in f["state_dict"]}
        dtypes = {f["state_dict"][k].dtype for k in f["state_dict"]}
    check(at["format"] == "attrib-model" and int(at["format_version"]) == 2,
          "format attrib-model, format_version 2")
    check(list(at["input_shape"]) == shape and int(at["n_classes"]) == C,
          f"input_shape {list(at['input_shape'])}, n_classes {int(at['n_classes'])}")
    check(set(sd) == set(sd_ref) and all(np.array_equal(sd[k], sd_ref[k]) for k in sd_ref)
          and dtypes == {np.dtype("<f4")},
          f"/state_dict holds exactly the {len(sd_ref)} state-dict tensors (float32, bit for bit)")
    check(spec_sha256(arch, sd) == at["content_sha256"], "content_sha256 matches the specification")

    model64 = copy.deepcopy(model).double().eval()

    # 2. attrib eval -o on a dataset file
    n_eval = 64
    if tokens:
        V = model.tok.num_embeddings
        xe = rng.integers(0, V, size=(n_eval, D)).astype(np.float32)
    else:
        xe = rng.random((n_eval, D), dtype=np.float32)
    ye = rng.integers(0, C, size=n_eval).astype(np.int32)
    data = os.path.join(wd, "data.h5")
    with h5py.File(data, "w") as f:
        f.attrs["format"] = "attrib-dataset"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["source"] = "tests/check_torch_models.py (random)"
        f.attrs["class_names"] = [f"class{c}" for c in range(C)]
        f.create_dataset("test/images", data=xe)
        f.create_dataset("test/labels", data=ye)
    with torch.no_grad():
        xt = torch_input(xe, tokens)
        ref_eval = model64(xt if tokens else xt.reshape(n_eval, *shape)).numpy()
    lg = os.path.join(wd, "logits.h5")
    rc, so, se = run([a.attrib, "eval", "--model", h5, "--data", data, "-o", lg])
    print(so + se, end="")
    check(rc == 0, f"attrib eval exits 0 (rc {rc})")
    if rc == 0:
        with h5py.File(lg, "r") as f:
            e = rel(f["logits"][()], ref_eval)
        check(e <= TOL, f"attrib eval logits ({n_eval} rows) vs PyTorch: max rel err {e:.2e}")

    # 3. engine_probe
    N = 6
    x32, y = xe[:N], ye[:N]
    v = {n: rng.standard_normal(tuple(p.shape)) for n, p in model.named_parameters()}
    pin, pout = os.path.join(wd, "probe_in.h5"), os.path.join(wd, "probe_out.h5")
    with h5py.File(pin, "w") as f:
        f.create_dataset("x", data=x32)
        f.create_dataset("labels", data=y)
        for n, a_ in v.items():
            f.create_dataset(f"v/{n}", data=a_)
        f.attrs["layers"] = ",".join(PER_EXAMPLE[name])
    resaved = os.path.join(wd, "resaved.h5")
    rc, so, se = run([a.probe, h5, pin, pout, resaved])
    print(so + se, end="")
    check(rc == 0, f"engine_probe exits 0 (rc {rc})")
    if rc == 0:
        with h5py.File(resaved, "r") as f:
            same = f.attrs["architecture"] == arch and f.attrs["content_sha256"] == at["content_sha256"] \
                and all(np.array_equal(f["state_dict"][k][()], sd[k]) for k in sd) and set(f["state_dict"]) == set(sd)
        check(same, "attrib's h5_model_save writes the exporter's architecture text, tensors and "
              "content_sha256")
        ref = references(model64, x32, y, tokens, shape, v, PER_EXAMPLE[name])
        with h5py.File(pout, "r") as f:
            check(rel(f["logits"][()], ref["logits"]) <= TOL,
                  f"probe logits: max rel err {rel(f['logits'][()], ref['logits']):.2e}")
            check(rel(f["losses"][()], ref["losses"]) <= TOL,
                  f"per-example losses: max rel err {rel(f['losses'][()], ref['losses']):.2e}")
            e = abs(float(f["loss"][0]) - ref["loss"]) / abs(ref["loss"])
            check(e <= TOL, f"mean loss {float(f['loss'][0]):.6f} vs {ref['loss']:.6f}: rel err {e:.2e}")
            if not tokens:
                e = rel(f["dx"][()], ref["dx"])
                check(e <= TOL, f"input gradient dx: max rel err {e:.2e}")
            for grp in ("grad", "hvp", "gnvp", "per_example"):
                refs = ref[grp]
                got = set(f[grp]) if grp in f else set()
                check(got == set(refs), f"/{grp} has the {len(refs)} expected tensors"
                      + ("" if got == set(refs) else f" (extra {sorted(got - set(refs))[:4]}, "
                                                     f"missing {sorted(set(refs) - got)[:4]})"))
                errs = {n: rel(f[grp][n][()], refs[n]) for n in refs if n in got}
                if errs:
                    worst = max(errs, key=errs.get)
                    check(errs[worst] <= TOL, f"{grp}: {len(errs)} tensors, worst {worst} "
                          f"max rel err {errs[worst]:.2e}")
            # the probe's per-example gradients average to the batch gradient
            if "per_example" in f:
                e = max(rel(f["per_example"][n][()].mean(0), ref["grad"][n]) for n in f["per_example"])
                check(e <= TOL, f"per-example gradients average to the batch gradient: {e:.2e}")

    # 4. import_torch.py round trip
    sdp, modp = os.path.join(wd, "state_dict.pt"), os.path.join(wd, "module.pt")
    with torch.no_grad():
        xi = torch_input(xe[:16], tokens)
        xi = xi if tokens else xi.float().reshape(16, *shape)
        want = model(xi)
    rc, so, se = run([sys.executable, os.path.join(TOOLS, "import_torch.py"), h5, sdp])
    print(so + se, end="")
    check(rc == 0, f"import_torch.py exits 0 (rc {rc})")
    if rc == 0:
        fresh, _, _, _ = torch_models.build(name, seed=99)
        with torch.no_grad():
            differs = not torch.equal(fresh(xi), want)
        fresh.load_state_dict(torch.load(sdp), strict=True)
        with torch.no_grad():
            got = fresh.eval()(xi)
        check(differs and torch.equal(got, want),
              "the state dict loads strict into a fresh module (other seed) and gives identical logits")
    rc, so, se = run([sys.executable, os.path.join(TOOLS, "import_torch.py"), h5, modp,
                      "--module", pt, "--import", HERE])
    print(so + se, end="")
    check(rc == 0, f"import_torch.py --module exits 0 (rc {rc})")
    if rc == 0:
        with torch.no_grad():
            got = torch.load(modp).eval()(xi)
        check(torch.equal(got, want), "import_torch.py --module: identical logits")
    import attrib_torch

    net = attrib_torch.load_attrib_model(h5)
    with torch.no_grad():
        e = rel(net(xi.reshape(16, -1) if not tokens else xi).numpy(), want.numpy())
    check(e <= 1e-6, f"attrib_torch.load_attrib_model reproduces the module: max rel err {e:.1e}")


# ---- refusals --------------------------------------------------------------------


def check_refused(a):
    wd = a.workdir
    os.makedirs(wd, exist_ok=True)
    exp = os.path.join(TOOLS, "export_torch.py")
    import export_torch

    for i, (label, model, shape, tokens, want) in enumerate(torch_models.refused()):
        pt, h5 = os.path.join(wd, f"{label}.pt"), os.path.join(wd, f"{label}.h5")
        if os.path.exists(h5):
            os.unlink(h5)
        torch.save(model, pt)
        args = [pt, h5, "--input-shape", ",".join(map(str, shape)), "--import", HERE] + \
            (["--tokens"] if tokens else [])
        if i == 0:  # the real program's exit status once; the rest in this process
            rc, so, se = run([sys.executable, exp] + args)
        else:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = export_torch.main(args)
            se = err.getvalue()
        missing = [w for w in want if w not in se]
        check(rc == 2 and not missing and not os.path.exists(h5),
              f"export {label}: exit {rc}, message names {want}"
              + (f" (missing {missing}: {se.strip()[:300]})" if missing else ""))
    # import_torch.py: a tampered file and a module of other shapes
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    pt, h5 = os.path.join(wd, "small.pt"), os.path.join(wd, "small.h5")
    torch.save(net, pt)
    rc, _, se = run([sys.executable, exp, pt, h5, "--input-shape", "4"])
    check(rc == 0, f"export of a small MLP exits 0 (rc {rc}) {se.strip()[:200]}")
    other = os.path.join(wd, "other.pt")
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)), other)
    rc, _, se = run([sys.executable, os.path.join(TOOLS, "import_torch.py"), h5,
                     os.path.join(wd, "x.pt"), "--module", other])
    check(rc == 2 and "'0.weight'" in se and "(3, 4)" in se and "(5, 4)" in se,
          f"import_torch.py --module with other shapes: exit {rc}, names the tensor and both shapes "
          f"({se.strip()[:200]})")
    with h5py.File(h5, "r+") as f:
        d = f["state_dict/2.bias"]
        d[0] = d[0] + 1
    rc, _, se = run([sys.executable, os.path.join(TOOLS, "import_torch.py"), h5, os.path.join(wd, "x.pt")])
    check(rc == 2 and h5 in se and "content_sha256" in se,
          f"import_torch.py of a tampered file: exit {rc}, names the file and the hash ({se.strip()[:200]})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["mlp", "cnn", "transformer", "refused"])
    ap.add_argument("--attrib")
    ap.add_argument("--probe")
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    if a.model == "refused":
        check_refused(a)
    else:
        if not a.attrib or not a.probe:
            ap.error("--attrib and --probe are required")
        check_model(a.model, a)
    print(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
