#!/usr/bin/python3
"""Training-data attribution results recomputed independently (float64).

usage:
  check_influence.py logreg RESULTS.h5 MODEL.h5 DATA.h5
      tests/jobs/influence_check_logreg.yaml's results on the logistic
      regression (avgpool 4x4 -> flatten -> linear 10): per-example
      cross-entropy and margin gradients in closed form, grad_dot, grad_cos,
      influence with the exact Gauss-Newton (= Hessian) inverse, CG (= exact),
      LiSSA's recursion, K-FAC and EK-FAC factors, TRAK without projection;
      top-k proponents and opponents from the written scores; leave-one-out
      refits by Newton's method (ground truth) and the LOO statistics; LDS
      per test row from the scores, masks and margins, and one subset's
      margins by a Newton fit; the xarray view of the file.
  check_influence.py mlp RESULTS.h5 MODEL.h5 CKPT.h5 DATA.h5
      tests/jobs/influence_check_mlp.yaml's results on an MLP with one hidden
      layer: per-example gradients (closed form, checked against torch
      autograd) at model.path and at every checkpoint; grad_dot, TracIn
      (sum_k lr_k g_test . g_train, plain and unit-normalised) and TRAK over
      the last layer with the checkpoints' ensemble.
  check_influence.py same A.h5 B.h5 [C.h5 ...]
      every dataset byte-identical and every attribute equal, except the root
      attributes that describe the run (ranks, times, the store's path and
      how many gradient blocks were computed or reused).
  check_influence.py reuse ATTRIB REF.h5 WORKDIR -- RUN-ARGS...
      `attrib run RUN-ARGS` (1 rank) over REF.h5's gradient store computes no
      block and writes REF.h5's bytes; with data.rows 8:24 it computes the
      test blocks only and rows 8..15 score as in REF.h5; REF.h5's rows once
      more compute nothing.
  check_influence.py resume ATTRIB MPIEXEC REF.h5 WORKDIR -- RUN-ARGS...
      a stop file (1 rank) and SIGTERM to the ranks (2 ranks) during
      featurisation: exit 75, blocks kept; the same command again (2, 3
      ranks) reuses them and writes REF.h5's bytes (the same job run
      uninterrupted).
  check_influence.py memlimit ATTRIB WORKDIR -- RUN-ARGS...
      ATTRIB_MEM_LIMIT=1000000: refused (exit 2) naming the stage and setting.
Exits 1 on any failure and prints what differed.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import yaml

FAILS = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        FAILS.append(what)
    return ok


def rel_err(a, b):
    """max |a - b| / max |b| (normwise over the array)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / (scale if scale > 0 else 1.0))


def entry_err(a, b):
    """max over entries of |a - b| / (|b| + 1e-2 max|b| of its row): relative
    per entry, with a floor for entries far below their row's scale (float32
    scores of float32 features carry ~1e-7 of the row's scale)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    b2 = b.reshape(len(b), -1) if b.ndim > 1 else b.reshape(1, -1)
    a2 = a.reshape(b2.shape)
    floor = 1e-2 * np.abs(b2).max(axis=1, keepdims=True)
    d = np.abs(a2 - b2)
    den = np.abs(b2) + floor
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.where(d == 0, 0.0, d / np.where(den > 0, den, 1.0))
    return float(e.max()) if e.size else 0.0


def close(name, got, want, tol):
    e = entry_err(got, want)
    return check(e <= tol, f"{name}: max |attrib - numpy| / (|numpy| + 1e-2 row max) = "
                 f"{e:.1e} (tol {tol:g})")


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def rankdata(a):
    """average ranks of ties (scipy.stats.rankdata)."""
    a = np.asarray(a, np.float64)
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return r


def pearson(a, b):
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else float("nan")


def spearman(a, b):
    return pearson(rankdata(a), rankdata(b))


def read_rows(data, split, rows):
    with h5py.File(data, "r") as f:
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        assert np.array_equal(rows, np.arange(lo, hi)), "rows are contiguous"
        x = f[f"/{split}/images"][lo:hi].astype(np.float64).reshape(hi - lo, -1)
        y = f[f"/{split}/labels"][lo:hi].astype(np.int64)
    return x, y


def group_attrs(f, g):
    return {k: f[g].attrs[k] for k in f[g].attrs}


# ------------------------------------------------ common score-file checks

def check_topk(f, m):
    S = f[f"/influence/{m}/scores"][()]
    if f"/influence/{m}/topk_index" not in f:
        return
    train = f["/train"][()]
    K = f[f"/influence/{m}/topk_index"].shape[1]
    ti, ts = f[f"/influence/{m}/topk_index"][()], f[f"/influence/{m}/topk_score"][()]
    oi, os_ = f[f"/influence/{m}/opponents_index"][()], f[f"/influence/{m}/opponents_score"][()]
    bad = 0
    for t in range(S.shape[0]):
        col = np.arange(S.shape[1])
        pro = np.lexsort((col, -S[t].astype(np.float64)))[:K]  # highest first, ties: lower row
        opp = np.lexsort((col, S[t].astype(np.float64)))[:K]   # lowest first
        bad += not np.array_equal(ti[t], train[pro]) or not np.array_equal(ts[t], S[t, pro])
        bad += not np.array_equal(oi[t], train[opp]) or not np.array_equal(os_[t], S[t, opp])
    check(bad == 0, f"{m}: topk_* and opponents_* are the {K} highest / lowest scores of "
          f"each of {S.shape[0]} rows ({bad} rows differ)")


def check_lds(f, m):
    if "/ground_truth/lds/masks" not in f:
        return
    S = f[f"/influence/{m}/scores"][()].astype(np.float64)
    masks = f["/ground_truth/lds/masks"][()].astype(np.float64)
    margins = f["/ground_truth/lds/margins"][()].mean(axis=1)  # (M, n_te)
    pred = masks @ S.T                                          # (M, n_te)
    close(f"{m}: lds/predicted = masks . scores", f[f"/influence/{m}/lds/predicted"][()], pred,
          1e-9)
    per = np.array([spearman(pred[:, t], margins[:, t]) for t in range(S.shape[0])])
    per = np.where(np.isfinite(per), per, 0.0)
    got = f[f"/influence/{m}/lds/per_test"][()]
    e = float(np.abs(got - per).max())
    check(e <= 1e-9, f"{m}: lds/per_test = Spearman over subsets of predicted vs margins "
          f"(max diff {e:.1e}; mean {per.mean():.4f})")
    a = group_attrs(f, f"/influence/{m}/lds")
    check(abs(a["lds"] - per.mean()) <= 1e-12 and a["ci_low"] <= a["lds"] <= a["ci_high"],
          f"{m}: lds attribute {a['lds']:.4f} = mean per_test, inside [{a['ci_low']:.4f}, "
          f"{a['ci_high']:.4f}]")


def check_loo_pred(f, m, n_tr):
    if "/loo_point" not in f:
        return
    S = f[f"/influence/{m}/scores"][()].astype(np.float64)
    cols = f["/loo_point"][()] - f["/train"][0]
    pred = S[:, cols] / n_tr
    close(f"{m}: loo/predicted = scores[:, loo points] / n_train",
          f[f"/influence/{m}/loo/predicted"][()], pred, 1e-12)
    act = f["/ground_truth/loo/actual"][()]
    pp = np.nanmean([pearson(pred[t], act[t]) for t in range(len(act))])
    pooled = pearson(pred.ravel(), act.ravel())
    a = group_attrs(f, f"/influence/{m}/loo")
    check(abs(a["pearson"] - pp) <= 1e-9 and abs(a["pooled_pearson"] - pooled) <= 1e-9,
          f"{m}: loo pearson {a['pearson']:.4f} (per test row) and pooled "
          f"{a['pooled_pearson']:.4f} recomputed ({pp:.4f}, {pooled:.4f})")
    return a


def check_fields(f):
    """Each method group's attributes hold its effective job fields (the
    root attribute job_yaml): strings, numbers, booleans (0/1) and lists of
    layer names or model files as strings."""
    job = yaml.safe_load(f.attrs["job_yaml"])
    bad = []
    for e in job["influence"]:
        a = f[f"/influence/{e['name']}"].attrs
        for k, v in e.items():
            if k == "name" or (isinstance(v, list) and not v):
                continue  # an empty list: nothing to record
            got = a.get(k)
            if isinstance(v, list) and isinstance(got, (str, bytes)):  # the list's YAML text
                ok = yaml.safe_load(got.decode() if isinstance(got, bytes) else got) == v
            elif isinstance(v, list):  # or an array of strings
                arr = np.atleast_1d(got) if got is not None else np.array([])
                ok = arr.dtype.kind in "SOU" and \
                    [x.decode() if isinstance(x, bytes) else str(x) for x in arr] == v
            elif isinstance(v, bool):
                ok = got is not None and int(got) == int(v)
            elif isinstance(v, (int, float)):
                ok = got is not None and float(got) == float(v)
            else:
                ok = got is not None and (got.decode() if isinstance(got, bytes) else got) == v
            if not ok:
                bad.append(f"{e['name']}.{k}: job {v!r}, attribute {got!r}")
    check(not bad, "every method's job fields are its group's attributes"
          + (f"; differ: {bad}" if bad else ""))


def check_xarray(path):
    try:
        import xarray as xr
    except ImportError:
        return check(False, "xarray is importable")
    ds = xr.open_dataset(path, engine="h5netcdf", group="/influence/exact")
    ok = ds["scores"].dims == ("test", "train") and ds["topk_index"].dims == ("test", "rank")
    root = xr.open_dataset(path, engine="h5netcdf")
    ok = ok and "test" in root.coords and "train" in root.coords
    check(ok, f"xarray (h5netcdf) sees scores {ds['scores'].dims} {tuple(ds['scores'].shape)}, "
          f"topk_index {ds['topk_index'].dims}, coordinates test and train")
    sc = ds["scores"].values
    with h5py.File(path, "r") as f:
        check(np.array_equal(sc, f["/influence/exact/scores"][()]), "xarray values = h5py values")


# ---------------------------------------------------------- logistic regression

class LogReg:
    """avgpool 4x4 -> flatten -> linear (C, 49): parameters theta (C, 50) =
    [W | b]; attrib's vector layout is W row-major then b."""

    def __init__(self, model):
        with h5py.File(model, "r") as f:
            self.W = f["/state_dict/fc.weight"][()].astype(np.float64)
            self.b = f["/state_dict/fc.bias"][()].astype(np.float64)
        self.C, self.F = self.W.shape
        C, F = self.C, self.F
        # perm[k] = theta-flat index of attrib's parameter k
        self.perm = np.concatenate([(np.arange(C)[:, None] * (F + 1) + np.arange(F)).ravel(),
                                    np.arange(C) * (F + 1) + F])

    def theta(self):
        return np.concatenate([self.W, self.b[:, None]], axis=1)

    @staticmethod
    def feats(x):
        n = x.shape[0]
        a = x.reshape(n, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(n, 49)
        return np.concatenate([a, np.ones((n, 1))], axis=1)  # (n, 50)

    def probs(self, A, th=None):
        th = self.theta() if th is None else th
        return softmax(A @ th.T)

    def grads(self, A, y, u):
        """per-example gradients (n, p) in attrib's layout for dlogits u (n, C)."""
        g = (u[:, :, None] * A[:, None, :]).reshape(len(A), -1)
        return g[:, self.perm]

    def xent_grads(self, A, y, th=None):
        p = self.probs(A, th)
        return self.grads(A, y, p - np.eye(self.C)[y])

    def margin_grads(self, A, y):
        p = self.probs(A)
        py = p[np.arange(len(y)), y]
        q = p / (1 - py)[:, None]
        q[np.arange(len(y)), y] = 0
        return self.grads(A, y, np.eye(self.C)[y] - q), py

    def gauss_newton(self, A, th=None):
        """(1/n) sum_i J_i^T (diag p - p p^T) J_i, attrib's layout."""
        p = self.probs(A, th)
        n, C = p.shape
        R = np.sqrt(p)[:, :, None] * (np.eye(C)[None, :, :] - p[:, None, :])  # (n, c, C)
        R = (R[:, :, :, None] * A[:, None, None, :]).reshape(n * C, -1)[:, self.perm]
        return R.T @ R / n

    # Newton's method on J = mean CE (kept rows) + wd/2 |theta|^2, theta layout
    def objective(self, th, A, y, wd):
        p = self.probs(A, th)
        ce = -np.log(p[np.arange(len(y)), y]).mean()
        g = ((p - np.eye(self.C)[y]).T @ A) / len(y) + wd * th
        return ce + 0.5 * wd * (th * th).sum(), g

    def newton(self, th, A, y, wd, tol=1e-12, iters=60):
        inv = np.argsort(self.perm)
        for it in range(iters):
            J, g = self.objective(th, A, y, wd)
            gn = np.linalg.norm(g)
            if gn <= tol:
                return th, it, gn
            H = self.gauss_newton(A, th)[np.ix_(inv, inv)] + wd * np.eye(th.size)
            step = np.linalg.solve(H, g.ravel()).reshape(th.shape)
            t = 1.0
            dec = g.ravel() @ step.ravel()
            while self.objective(th - t * step, A, y, wd)[0] > J - 1e-4 * t * dec and t > 1e-10:
                t *= 0.5  # Armijo backtracking
            th = th - t * step
        J, g = self.objective(th, A, y, wd)
        return th, iters, np.linalg.norm(g)


def check_logreg(res, model, data):
    f = h5py.File(res, "r")
    lr = LogReg(model)
    te_rows, tr_rows = f["/test"][()], f["/train"][()]
    xte, yte = read_rows(data, f.attrs["data_split"], te_rows)
    xtr, ytr = read_rows(data, f.attrs["train_split"], tr_rows)
    Ate, Atr = lr.feats(xte), lr.feats(xtr)
    Gte, Gtr = lr.xent_grads(Ate, yte), lr.xent_grads(Atr, ytr)
    n_tr, p = len(tr_rows), Gtr.shape[1]
    print(f"logistic regression: {len(te_rows)} test x {n_tr} train rows, {p} parameters")
    methods = list(f["/influence"].keys())
    seen = set()

    def scores(m):
        seen.add(m)
        return f[f"/influence/{m}/scores"][()]

    def attrs(m):
        return group_attrs(f, f"/influence/{m}")

    def nh(m):
        h = int(attrs(m)["hessian_rows"])
        return n_tr if h == 0 or h > n_tr else h

    def gn(m):
        k = nh(m)
        return lr.gauss_newton(Atr[:k])

    for m in methods:
        a = attrs(m)
        kind = a["kind"]
        if kind == "grad_dot" and a["projection"] == "none":
            close(f"{m}: grad_dot = g_test . g_train", scores(m), Gte @ Gtr.T, 3e-4)
        elif kind == "grad_cos" and a["projection"] == "none":
            nte = Gte / np.linalg.norm(Gte, axis=1, keepdims=True)
            ntr = Gtr / np.linalg.norm(Gtr, axis=1, keepdims=True)
            close(f"{m}: grad_cos = cosine(g_test, g_train)", scores(m), nte @ ntr.T, 3e-4)
        elif kind == "influence" and a["inverse"] in ("exact", "cg"):
            H = gn(m)  # the Hessian of the mean loss equals Gauss-Newton here
            lam = a["damping"] * (np.trace(H) / p if a["damping_relative"] else 1.0)
            check(abs(a["damping_used"] - lam) <= 1e-9 * lam,
                  f"{m}: damping_used {a['damping_used']:.6g} = {lam:.6g} "
                  f"({nh(m)} curvature rows)")
            if a["inverse"] == "exact":
                check(abs(a["mean_eigenvalue"] - np.trace(H) / p) <= 1e-9 * np.trace(H) / p,
                      f"{m}: mean_eigenvalue {a['mean_eigenvalue']:.6g} = trace(H)/p of the "
                      f"first {nh(m)} train rows ({np.trace(H) / p:.6g})")
            want = Gte @ np.linalg.solve(H + lam * np.eye(p), Gtr.T)
            close(f"{m}: {a['inverse']} influence = g_test (H + lambda I)^-1 g_train "
                  f"({a['curvature']}, {nh(m)} rows)", scores(m), want, 3e-4)
            if a["inverse"] == "cg":
                check(a["cg_unconverged_rows"] == 0 and a["cg_residual_max"] <= a["cg_tol"],
                      f"{m}: every row converged, residual {a['cg_residual_max']:.2e} <= "
                      f"cg_tol {a['cg_tol']:g}")
                for e in methods:  # an exact inverse over the same rows and damping
                    b = attrs(e)
                    if b["kind"] == "influence" and b["inverse"] == "exact" and \
                            nh(e) == nh(m) and b["damping_used"] == a["damping_used"]:
                        close(f"{m}: CG = attrib's exact inverse {e} (same rows, damping)",
                              scores(m), scores(e), 3e-4)
        elif kind == "influence" and a["inverse"] == "lissa" and a["lissa_batch"] < nh(m):
            print(f"note {m}: stochastic LiSSA (batch {a['lissa_batch']} < {nh(m)} rows) "
                  "is not recomputed")
        elif kind == "influence" and a["inverse"] == "lissa":
            k = nh(m)
            # full-batch LiSSA is deterministic: the recursion itself
            H, lam, s = gn(m), float(a["damping_used"]), float(a["lissa_scale"])
            check(lam == a["damping"], f"{m}: damping_used = damping ({lam:g})")
            B = Gte.T
            h = B.copy()
            for _ in range(int(a["lissa_depth"])):
                h = B + (1 - lam / s) * h - H @ h / s
            want = (h / s).T @ Gtr.T
            close(f"{m}: LiSSA h_j = b + (1 - lambda/s) h - C h / s, depth "
                  f"{a['lissa_depth']}, scale {s:g}, {k} rows", scores(m), want, 3e-4)
            exact = Gte @ np.linalg.solve(H + lam * np.eye(p), Gtr.T)
            print(f"     ({m}: relative distance to the exact inverse "
                  f"{rel_err(scores(m), exact):.2e} after {a['lissa_depth']} steps)")
        elif kind == "influence" and a["inverse"] in ("kfac", "ekfac"):
            k = nh(m)
            A, pr = Atr[:k], lr.probs(Atr[:k])
            Afac = A.T @ A / k                                  # (50, 50)
            C = lr.C
            S = (np.diag(pr.sum(0)) - pr.T @ pr) / k           # mean of diag p - p p^T
            sa, QA = np.linalg.eigh(Afac)
            ss, QS = np.linalg.eigh(S)
            sa, ss = np.maximum(sa, 0), np.maximum(ss, 0)
            if a["inverse"] == "kfac":
                Lam = np.outer(ss, sa)
            else:
                # (1/N) sum_n sum_c ((Q_S^T g_nc)_i (Q_A^T a_n)_j)^2, g_nc = sqrt(p_c)(p - e_c)
                aq = (A @ QA) ** 2                               # (n, 50)
                gq = np.zeros((k, C))
                for c in range(C):
                    g = np.sqrt(pr[:, c:c + 1]) * (pr - np.eye(C)[c])  # (n, C)
                    gq += (g @ QS) ** 2
                Lam = gq.T @ aq / k
            lam = a["damping"] * (Lam.mean() if a["damping_relative"] else 1.0)
            check(abs(a["damping_used"] - lam) <= 1e-9 * lam,
                  f"{m}: damping_used {a['damping_used']:.6g} = {lam:.6g}")
            inv = np.argsort(lr.perm)
            V = Gte[:, inv].reshape(-1, C, lr.F + 1)            # (n_te, C, 50): [W | b]
            X = np.einsum("ci,ncj,jk->nik", QS, V, QA) / (Lam + lam)
            X = np.einsum("ic,ncj,kj->nik", QS, X, QA).reshape(len(Gte), -1)[:, lr.perm]
            close(f"{m}: {a['inverse']} = Q_S[(Q_S^T V Q_A) / (Lambda + lambda)]Q_A^T "
                  f"({k} rows)", scores(m), X @ Gtr.T, 3e-4)
        elif kind == "trak" and a["projection"] == "none" and a["ensemble_size"] == 1:
            Pte, _ = lr.margin_grads(Ate, yte)
            Ptr, ptr = lr.margin_grads(Atr, ytr)
            G = Ptr.T @ Ptr
            lam = a["damping"] * (np.trace(G) / p if a["damping_relative"] else 1.0)
            check(abs(a["damping_used"] - lam) <= 1e-6 * lam,
                  f"{m}: damping_used {a['damping_used']:.6g} = damping x trace(Phi^T Phi)/p "
                  f"= {lam:.6g}")
            want = Pte @ np.linalg.solve(G + lam * np.eye(p), Ptr.T) * (1 - ptr)[None, :]
            # Phi^T Phi is singular here (softmax: the gradients' class parts sum to
            # 0) and lambda is 1e-6 of its mean eigenvalue: float32 features'
            # rounding along the null space is amplified, ~1e-3 of a row's scale
            close(f"{m}: TRAK = phi_test (Phi^T Phi + lambda I)^-1 Phi^T diag(1 - p)",
                  scores(m), want, 5e-3)
        else:
            print(f"note {m}: {kind} ({a.get('projection', a.get('inverse', ''))}) is not "
                  "recomputed here")
        check_topk(f, m)
        check_lds(f, m)
        check_loo_pred(f, m, n_tr)

    # every kind and inverse of the job was recomputed above
    for need in ("exact", "cg", "dot", "cos", "kfac", "ekfac", "trak", "lissa"):
        check(any(f[f"/influence/{m}"].attrs.get("inverse", f[f"/influence/{m}"].attrs["kind"])
                  in (need, "grad_" + need) and m in seen for m in methods),
              f"a method of kind/inverse {need} was recomputed")

    # ---- leave-one-out ground truth: Newton refits in numpy
    wd = float(yaml.safe_load(f.attrs["job_yaml"]).get("train", {}).get("weight_decay", 0))
    if "/ground_truth/loo/actual" in f:
        th0, it, gnorm = lr.newton(lr.theta(), Atr, ytr, wd)
        check(gnorm <= 1e-10, f"numpy Newton: full fit |grad| {gnorm:.1e} after {it} steps")
        base = -np.log(lr.probs(Ate, th0)[np.arange(len(yte)), yte])
        close("ground_truth/loo/base_loss = test CE at the optimum",
              f["/ground_truth/loo/base_loss"][()], base, 1e-9)
        pts = f["/loo_point"][()] - tr_rows[0]
        act = f["/ground_truth/loo/actual"][()]
        for j in sorted({0, len(pts) // 2, len(pts) - 1}):
            keep = np.ones(n_tr, bool)
            keep[pts[j]] = False
            th, it, gnorm = lr.newton(th0.copy(), Atr[keep], ytr[keep], wd)
            d = -np.log(lr.probs(Ate, th)[np.arange(len(yte)), yte]) - base
            close(f"loo/actual without train row {pts[j] + tr_rows[0]} = numpy refit "
                  f"({it} Newton steps)", act[:, j], d, 1e-6)
        for m in methods:
            if attrs(m)["kind"] == "influence" and attrs(m)["inverse"] == "exact" and \
                    attrs(m)["curvature"] == "gauss_newton":
                a = group_attrs(f, f"/influence/{m}/loo")
                check(a["pooled_pearson"] >= 0.95 and a["pearson"] >= 0.95,
                      f"{m}: LOO Pearson per test row {a['pearson']:.4f} and pooled "
                      f"{a['pooled_pearson']:.4f} >= 0.95 (Spearman {a['spearman']:.4f})")

    # ---- LDS ground truth: one subset's model is the subset's exact optimum
    if "/ground_truth/lds/masks" in f and wd > 0 and "newton" in f.attrs["job_yaml"]:
        masks = f["/ground_truth/lds/masks"][()].astype(bool)
        th, it, _ = lr.newton(lr.theta(), Atr[masks[0]], ytr[masks[0]], wd)
        z = Ate @ th.T
        zy = z[np.arange(len(yte)), yte]
        zo = z.copy()
        zo[np.arange(len(yte)), yte] = -np.inf
        mx = zo.max(axis=1)
        marg = zy - (mx + np.log(np.exp(zo - mx[:, None]).sum(axis=1)))
        close("ground_truth/lds/margins of subset 0 = margins of numpy's Newton fit on it",
              f["/ground_truth/lds/margins"][0, 0], marg, 1e-4)
        frac = f["/ground_truth/lds"].attrs["fraction"]
        check(all(m.sum() == int(np.floor(frac * n_tr + 0.5)) for m in masks),
              f"every LDS mask holds round({frac} x {n_tr}) rows")
    check_fields(f)
    check_xarray(res)
    f.close()


# ------------------------------------------------------------------------ MLP

class MLP:
    """flatten -> linear H -> relu -> linear C (one hidden layer)."""

    def __init__(self, sd):
        names = [k for k in sd]
        ws = sorted([k for k in names if k.endswith(".weight")],
                    key=lambda s: int(s.split(".")[1]))
        assert len(ws) == 2, f"expected 2 linear layers, got {ws}"
        self.l1, self.l2 = ws[0][:-7], ws[1][:-7]
        self.W1, self.b1 = sd[self.l1 + ".weight"], sd[self.l1 + ".bias"]
        self.W2, self.b2 = sd[self.l2 + ".weight"], sd[self.l2 + ".bias"]

    def forward(self, x):
        h = np.maximum(x @ self.W1.T + self.b1, 0)
        return h, h @ self.W2.T + self.b2

    def grads(self, x, y, loss="xent", layers=None):
        h, z = self.forward(x)
        p = softmax(z)
        n, C = p.shape
        E = np.eye(C)[y]
        if loss == "xent":
            dz = p - E
        else:  # margin log p_y - log(1 - p_y)
            py = p[np.arange(n), y]
            q = p / (1 - py)[:, None]
            q[np.arange(n), y] = 0
            dz = E - q
        dW2 = (dz[:, :, None] * h[:, None, :]).reshape(n, -1)
        last = np.concatenate([dW2, dz], axis=1)
        if layers == [self.l2]:
            return last, p[np.arange(n), y]
        dh = (dz @ self.W2) * (h > 0)
        dW1 = (dh[:, :, None] * x[:, None, :]).reshape(n, -1)
        return np.concatenate([dW1, dh, last], axis=1), p[np.arange(n), y]


def load_sd(group):
    return {k: group[k][()].astype(np.float64) for k in group}


def check_mlp(res, model, ckpt, data):
    f = h5py.File(res, "r")
    te_rows, tr_rows = f["/test"][()], f["/train"][()]
    xte, yte = read_rows(data, f.attrs["data_split"], te_rows)
    xtr, ytr = read_rows(data, f.attrs["train_split"], tr_rows)
    with h5py.File(model, "r") as mf:
        net = MLP(load_sd(mf["/state_dict"]))
    with h5py.File(ckpt, "r") as cf:
        K = len(cf["/lr"])
        lrs = cf["/lr"][()]
        nets = [MLP(load_sd(cf[f"/checkpoints/{k}/state_dict"])) for k in range(K)]
    print(f"MLP: {len(te_rows)} test x {len(tr_rows)} train rows, {K} checkpoints, "
          f"learning rates {list(lrs)}")

    # the closed-form gradients against torch autograd (float64) on a few rows
    try:
        import torch
        torch.set_num_threads(1)
        ps = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for v in (net.W1, net.b1, net.W2, net.b2)]
        worst = 0.0
        G, _ = net.grads(xtr[:3], ytr[:3])
        for i in range(3):
            xi = torch.tensor(xtr[i:i + 1])
            z = torch.relu(xi @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
            loss = torch.nn.functional.cross_entropy(z, torch.tensor(ytr[i:i + 1]))
            g = torch.autograd.grad(loss, ps)
            gv = torch.cat([t.reshape(-1) for t in g]).numpy()
            worst = max(worst, rel_err(G[i], gv))
        check(worst <= 1e-12, f"closed-form per-example gradients = torch autograd "
              f"(float64, max rel diff {worst:.1e})")
    except ImportError:
        check(False, "torch is importable")

    seen = 0
    for m in f["/influence"].keys():
        a = group_attrs(f, f"/influence/{m}")
        S = f[f"/influence/{m}/scores"][()]
        if a["kind"] == "grad_dot" and a["projection"] == "none":
            Gte, _ = net.grads(xte, yte)
            Gtr, _ = net.grads(xtr, ytr)
            close(f"{m}: grad_dot at model.path", S, Gte @ Gtr.T, 3e-4)
            seen += 1
        elif a["kind"] == "tracin" and a["projection"] == "none":
            want = 0
            for k in range(K):
                Gte, _ = nets[k].grads(xte, yte)
                Gtr, _ = nets[k].grads(xtr, ytr)
                if a["normalize"]:
                    Gte = Gte / np.linalg.norm(Gte, axis=1, keepdims=True)
                    Gtr = Gtr / np.linalg.norm(Gtr, axis=1, keepdims=True)
                want = want + lrs[k] * (Gte @ Gtr.T)
            check(np.allclose(a["term_weights"], lrs, rtol=0, atol=0),
                  f"{m}: term_weights {list(a['term_weights'])} = the checkpoints' lr")
            close(f"{m}: TracIn = sum_k lr_k g_k(test) . g_k(train)"
                  f"{' (unit-normalised)' if a['normalize'] else ''}, {K} checkpoints",
                  S, want, 3e-4)
            seen += 1
        elif a["kind"] == "trak" and a["projection"] == "none":
            # ensemble: model.path then the checkpoints, weight 1/n each, Q averaged
            srcs = [net] + (nets if a["checkpoints"] else [])
            lay = [net.l2] if a["feature_dim"] == net.W2.size + net.b2.size else None
            tau, Q = 0, 0
            lams = []
            for s in srcs:
                Pte, _ = s.grads(xte, yte, "margin", lay)
                Ptr, ptr = s.grads(xtr, ytr, "margin", lay)
                G = Ptr.T @ Ptr
                d = G.shape[0]
                lam = a["damping"] * (np.trace(G) / d if a["damping_relative"] else 1.0)
                lams.append(lam)
                tau = tau + Pte @ np.linalg.solve(G + lam * np.eye(d), Ptr.T) / len(srcs)
                Q = Q + (1 - ptr) / len(srcs)
            check(int(a["ensemble_size"]) == len(srcs), f"{m}: ensemble_size = {len(srcs)}")
            close(f"{m}: TRAK ensemble of {len(srcs)} models over "
                  f"{'the last layer' if lay else 'all parameters'}", S, tau * Q[None, :], 2e-3)
            seen += 1
        else:
            print(f"note {m}: {a['kind']} ({a.get('projection', '')}) is not recomputed here")
        check_topk(f, m)
    check(seen >= 3, f"{seen} MLP methods recomputed (want grad_dot, tracin, trak)")
    check_fields(f)
    f.close()


# --------------------------------------------------- same bytes, store reuse

RUN_ATTRS = {"ranks", "started_at", "time_featurise_s", "time_ground_truth_s",
             "time_precondition_s", "time_scores_s", "feature_blocks_computed",
             "feature_blocks_reused", "gradient_store", "job_yaml", "job_file", "host",
             "finished_at", "time_total_s"}


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


def attr_eq(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def check_same(paths):
    ref = h5py.File(paths[0], "r")
    ri = items(ref)
    for p in paths[1:]:
        f = h5py.File(p, "r")
        fi = items(f)
        diffs = sorted(set(ri) ^ set(fi))
        for k in set(ref.attrs) | set(f.attrs):
            if k in RUN_ATTRS:
                continue
            if k not in ref.attrs or k not in f.attrs or not attr_eq(ref.attrs[k], f.attrs[k]):
                diffs.append(f"root attribute {k}")
        n = 0
        for name, obj in ri.items():
            if name not in fi:
                continue
            o = fi[name]
            for k in obj.attrs:
                if k in ("DIMENSION_LIST", "REFERENCE_LIST"):
                    continue
                if k not in o.attrs or not attr_eq(obj.attrs[k], o.attrs[k]):
                    diffs.append(f"/{name} attribute {k}")
            if isinstance(obj, h5py.Dataset):
                a, b = obj[()], o[()]
                if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                    d = rel_err(b, a) if a.shape == b.shape and a.dtype.kind == "f" else "-"
                    diffs.append(f"/{name} (rel diff {d})")
                n += 1
        check(not diffs, f"{p}: {n} datasets byte-identical to {paths[0]}"
              + (f"; differ: {diffs[:8]}" if diffs else ""))
        f.close()


# ------------------------------------------------ runs of attrib (reuse, resume)

def run_attrib(cmd, env=None):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, text=True)
    return r.returncode, r.stdout


def blocks(path):
    with h5py.File(path, "r") as f:
        return int(f.attrs["feature_blocks_computed"]), int(f.attrs["feature_blocks_reused"])


def check_reuse(attrib, ref, work, args):
    """A rerun over REF's gradient store computes nothing and gives REF's
    bytes; another test selection (data.rows 8:24) reuses every train block."""
    shutil.rmtree(work, ignore_errors=True)  # a fresh directory: no earlier outputs
    os.makedirs(work)
    store = ref + ".store"
    c0, r0 = blocks(ref)
    rc, out = run_attrib([attrib, "run", *args, "--set", f"train_data.store={store}", "-o",
                          os.path.join(work, "reuse.h5")])
    if not check(rc == 0, f"rerun over {store}/: exit {rc}"):
        print(out[-2000:])
        return
    c, r = blocks(os.path.join(work, "reuse.h5"))
    check(c == 0 and r == c0 + r0, f"rerun: {c} gradient blocks computed, {r} reused "
          f"(the first run computed {c0}, reused {r0})")
    check_same([ref, os.path.join(work, "reuse.h5")])
    rc, out = run_attrib([attrib, "run", *args, "--set", f"train_data.store={store}",
                          "--set", "data.rows=8:24", "-o", os.path.join(work, "reuse_rows.h5")])
    if not check(rc == 0, f"other test rows over {store}/: exit {rc}"):
        print(out[-2000:])
        return
    c, r = blocks(os.path.join(work, "reuse_rows.h5"))
    with h5py.File(ref, "r") as a, h5py.File(os.path.join(work, "reuse_rows.h5"), "r") as b:
        check(c > 0 and r > 0 and c + r == c0 + r0,
              f"data.rows 8:24: {c} test blocks computed, {r} train blocks reused "
              f"(of {c0 + r0})")
        ok = True
        for m in a["/influence"]:
            sa, sb = a[f"/influence/{m}/scores"][8:16], b[f"/influence/{m}/scores"][0:8]
            e = rel_err(sb, sa)
            ok &= e <= 1e-5
            if e > 1e-5:
                print(f"     {m}: rows 8..15 differ by {e:.1e}")
        check(ok and np.array_equal(b["/test"][()], np.arange(8, 24)),
              "data.rows 8:24: the scores of test rows 8..15 equal the first run's (1e-5)")
    # both query sets' blocks stay in the store: the first rows again compute nothing
    rc, out = run_attrib([attrib, "run", *args, "--set", f"train_data.store={store}", "-o",
                          os.path.join(work, "reuse_again.h5")])
    if check(rc == 0, f"the first test rows again over {store}/: exit {rc}"):
        c, r = blocks(os.path.join(work, "reuse_again.h5"))
        check(c == 0 and r == c0 + r0, f"the first test rows again (after data.rows 8:24): "
              f"{c} blocks computed, {r} reused (want 0 computed: both query sets' test "
              "blocks are kept)")


def newest_children(pid):
    r = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True)
    return [int(x) for x in r.stdout.split()]


def check_resume(attrib, mpiexec, ref, work, args):
    """Stop file and SIGTERM during featurisation: exit 75, finished gradient
    blocks kept; the same command again finishes with the bytes of REF, an
    uninterrupted run (other rank counts)."""
    shutil.rmtree(work, ignore_errors=True)  # a fresh directory: no earlier outputs
    os.makedirs(work)
    total = sum(blocks(ref))
    for case, np_, np_resume in (("stopfile", 1, 2), ("sigterm", 2, 3)):
        out_h5 = os.path.join(work, case + ".h5")
        cmd = [attrib, "run", *args, "-o", out_h5]
        if np_ > 1:
            cmd = [mpiexec, "-n", str(np_)] + cmd
        log = open(out_h5 + ".log", "w")
        pr = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        t0, n = time.time(), 0
        while pr.poll() is None and time.time() - t0 < 120:
            n = len(glob.glob(out_h5 + ".store/*/train_*.h5"))
            if n >= 3:
                break
            time.sleep(0.002)
        if pr.poll() is not None:
            check(False, f"{case}: the run ended (exit {pr.returncode}) before it could be "
                  f"interrupted ({n} blocks)")
            continue
        if case == "stopfile":
            open(out_h5 + ".stop", "w").close()
        else:
            for c in newest_children(pr.pid):
                os.kill(c, signal.SIGTERM)
        rc = pr.wait(timeout=120)
        log.close()
        text = open(out_h5 + ".log").read()
        want = "the stop file appeared" if case == "stopfile" else "a stop signal"
        # mpirun reports 1 when its ranks were signalled; the ranks say 75
        ok = (rc == 75 or (np_ > 1 and case == "sigterm")) and \
            f"stopped early: {want}" in text and not os.path.exists(out_h5)
        kept = len(glob.glob(out_h5 + ".store/*/*.h5"))
        if not check(ok and 0 < kept < total,
                     f"{case}: exit {rc}, 'stopped early: {want}', no {os.path.basename(out_h5)},"
                     f" {kept} of {total} gradient blocks kept"):
            print(text[-1500:])
            continue
        cmd = [attrib, "run", *args, "-o", out_h5]
        cmd = [mpiexec, "-n", str(np_resume)] + cmd
        rc, text = run_attrib(cmd)
        if not check(rc == 0, f"{case}: the same command again on {np_resume} ranks: exit {rc}"):
            print(text[-1500:])
            continue
        c, r = blocks(out_h5)
        check(r == kept and c == total - kept,
              f"{case}: the rerun reused the {kept} kept blocks and computed {c} (of {total})")
        check_same([ref, out_h5])


def check_memlimit(attrib, work, args):
    """ATTRIB_MEM_LIMIT below the plan's largest stage: refused before any
    work, naming the stage and the setting to change."""
    shutil.rmtree(work, ignore_errors=True)  # a fresh directory: no earlier outputs
    os.makedirs(work)
    out_h5 = os.path.join(work, "memlimit.h5")
    rc, out = run_attrib([attrib, "run", *args, "-o", out_h5], env={"ATTRIB_MEM_LIMIT": "1000000"})
    frags = [": stage '", "' needs ", " per rank but 976.6 KiB is available to each of the 1 "
             "rank(s) on this node; lower "]
    miss = [x for x in frags if x not in out]
    check(rc == 2 and not miss and not os.path.exists(out_h5) and
          not os.path.exists(out_h5 + ".store"),
          f"ATTRIB_MEM_LIMIT=1000000: exit {rc} (want 2), the message names the stage and "
          f"the setting{f' (it lacks {miss})' if miss else ''}, nothing written")
    if miss:
        print(out[-1500:])


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "logreg" and len(argv) == 5:
        check_logreg(*argv[2:])
    elif mode == "mlp" and len(argv) == 6:
        check_mlp(*argv[2:])
    elif mode == "same" and len(argv) >= 4:
        check_same(argv[2:])
    elif mode == "reuse" and len(argv) > 6 and argv[5] == "--":
        check_reuse(argv[2], argv[3], argv[4], argv[6:])
    elif mode == "resume" and len(argv) > 7 and argv[6] == "--":
        check_resume(argv[2], argv[3], argv[4], argv[5], argv[7:])
    elif mode == "memlimit" and len(argv) > 5 and argv[4] == "--":
        check_memlimit(argv[2], argv[3], argv[5:])
    else:
        print(__doc__)
        return 2
    print(f"{len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
