#!/usr/bin/python3
"""Checks of `attrib inspect` and `attrib topk` against h5py/numpy/scipy
recomputations from the same files (tests/inspect.cmake).

usage: check_inspect.py ATTRIB feature RESULTS.h5
       check_inspect.py ATTRIB influence RESULTS.h5
       check_inspect.py ATTRIB sweep RESULTS.h5 WORKDIR
       check_inspect.py ATTRIB sweep-file SWEEP.h5
       check_inspect.py ATTRIB topk INFLUENCE.h5 FEATURE.h5 WORKDIR
       check_inspect.py ATTRIB doc DOC.md LITERAL=PATH...

feature: every number of `inspect --json` (score statistics, completeness,
  metric means, the agreement matrix, load balance, timing) equals numpy's;
  the text output fits 100 columns.
influence: the same for an influence file (LOO and LDS attributes, top-k
  width, N_test x N_train).
sweep: builds a sweep file (docs/format.md's layout, the common one) from
  copies of RESULTS.h5: point b with noise added to one method's scores,
  point c with them doubled (Spearman 1, relative L2 exactly 1) and one
  method dropped; checks the per-point Spearman and relative L2 against
  scipy, --point NAME against inspecting the plain file, an unknown point.
sweep-file: an existing sweep file (e.g. what `attrib run` of a sweep job
  writes): points, keys, values, and every method's changes recomputed.
topk: the table and CSV against numpy's sort of the scores row (ties to the
  lower train row), labels against the data file, --opponents, --k above
  top_k refused, ranking from the scores when the top-k datasets are gone,
  and features of a feature-attribution file.
doc: every ```console block of DOC.md: the `$ attrib ...` line is run (the
  literal paths replaced) and its output must match the block line by line
  after numbers and paths are masked ("..." in the block skips lines).
Exits 1 on the first failure."""
import io
import json
import os
import re
import shlex
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
from scipy.stats import rankdata

A = sys.argv[1]
MODE = sys.argv[2]
ARGS = sys.argv[3:]


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def run(*args, code=0):
    p = subprocess.run([A, *args], capture_output=True, text=True)
    if p.returncode != code:
        fail(f"attrib {' '.join(args)}: exit {p.returncode}, expected {code}\n"
             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def close(what, got, want, rtol=1e-9, atol=1e-12):
    if want is None or (isinstance(want, float) and np.isnan(want)):
        if got is not None:
            fail(f"{what}: got {got}, expected null")
        return
    if got is None or not np.isclose(got, want, rtol=rtol, atol=atol):
        fail(f"{what}: got {got}, expected {want}")


def text_width(path, *extra):
    out = run("inspect", path, *extra).stdout
    for i, line in enumerate(out.splitlines(), 1):
        if len(line) > 100:
            fail(f"inspect {path}: line {i} has {len(line)} > 100 columns: {line}")
    return out


def method_checks(f, m, js, prefix):
    """Score statistics and completeness of method js (a JSON method) vs numpy."""
    g = f[js["group"]]
    s = g["scores"][()].astype(np.float64)
    if list(s.shape) != js["shape"]:
        fail(f"{prefix}: shape {js['shape']} != {list(s.shape)}")
    close(f"{prefix} mean_abs", js["mean_abs"], np.abs(s).mean())
    close(f"{prefix} frac_pos", js["frac_pos"], (s > 0).mean())
    close(f"{prefix} frac_neg", js["frac_neg"], (s < 0).mean())
    if js["kind"] != g.attrs["kind"]:
        fail(f"{prefix}: kind {js['kind']} != {g.attrs['kind']}")
    if "delta" in g:
        d = g["delta"][()].astype(np.float64)
        od = g["output_diff"][()].astype(np.float64)
        c = js["completeness"]
        if c is None:
            fail(f"{prefix}: delta exists but completeness is null")
        close(f"{prefix} median |delta|", c["median_abs_delta"], np.median(np.abs(d)))
        close(f"{prefix} max |delta|", c["max_abs_delta"], np.abs(d).max())
        ok = od != 0
        close(f"{prefix} median rel delta", c["median_rel_delta"],
              np.median(np.abs(d[ok]) / np.abs(od[ok])))
    elif js["completeness"] is not None:
        fail(f"{prefix}: completeness without a delta dataset")
    for k, v in g.attrs.items():
        if k not in js["attributes"]:
            fail(f"{prefix}: attribute {k} missing from the JSON")
        if np.ndim(v) == 0 and not isinstance(v, (str, bytes)):
            close(f"{prefix} attribute {k}", js["attributes"][k], float(v))


def check_feature(path):
    j = json.loads(run("inspect", path, "--json").stdout)
    text_width(path)
    with h5py.File(path, "r") as f:
        names = sorted(f["attributions"].keys())
        if [m["name"] for m in j["methods"]] != names:
            fail(f"methods {[m['name'] for m in j['methods']]} != {names}")
        for m in j["methods"]:
            method_checks(f, m["name"], m, f"{path} {m['name']}")
            mg = f.get(f"metrics/{m['name']}")
            want = {} if mg is None else {k: float(np.mean(v[()].astype(np.float64)))
                                          for k, v in mg.items() if isinstance(v, h5py.Dataset)}
            if set(m["metrics"]) != set(want):
                fail(f"{m['name']} metrics {sorted(m['metrics'])} != {sorted(want)}")
            for k, v in want.items():
                close(f"{m['name']} metric {k}", m["metrics"][k], v)
        # agreement: mean over samples, symmetric, diagonal 1
        if "metrics" in f and any("agreement" in f[f"metrics/{n}"] for n in f["metrics"]):
            ag = j["agreement"]
            if ag is None or ag["methods"] != names:
                fail("agreement missing or in another method order")
            n = len(names)
            checked = 0
            for q in ("spearman", "kendall", "top_k_overlap"):
                M = np.array([[np.nan if v is None else v for v in row] for row in ag[q]])
                for a in range(n):
                    close(f"agreement {q} diagonal", M[a, a], 1.0)
                    for b in range(n):
                        p = f"metrics/{names[a]}/agreement/{names[b]}/{q}"
                        if p in f:
                            want = float(np.mean(f[p][()].astype(np.float64)))
                            close(f"agreement {q} {names[a]},{names[b]}", M[a, b], want)
                            close(f"agreement {q} {names[b]},{names[a]}", M[b, a], want)
                            checked += 1
            if checked == 0:
                fail("no agreement dataset was compared")
            print(f"ok agreement: {checked} pair means")
        else:
            if j["agreement"] is not None:
                fail("agreement reported for a file without it")
        # load balance and timing
        u = np.asarray(f.attrs["units_per_rank"], dtype=np.float64)
        L = j["load"]
        close("units min", L["min"], u.min())
        close("units max", L["max"], u.max())
        close("units max/mean", L["max_over_mean"], u.max() / u.mean())
        close("n_ranks", L["n_ranks"], float(f.attrs["n_ranks"]))
        close("units_resumed", L["units_resumed"], float(f.attrs["units_resumed"]))
        times = {k: float(v) for k, v in f.attrs.items() if k.startswith("time_")}
        if set(j["timing"]) != set(times):
            fail(f"timing keys {sorted(j['timing'])} != {sorted(times)}")
        for k, v in times.items():
            close(f"timing {k}", j["timing"][k], v)
        close("N", j["data"]["n"], float(len(f["sample"])))
        if j["model"]["sha256"] != f.attrs["model_sha256"]:
            fail("model sha256 differs")
    print(f"ok feature {path}: {len(j['methods'])} methods")


def check_influence(path):
    j = json.loads(run("inspect", path, "--json").stdout)
    out = text_width(path)
    if "training-data attribution" not in out:
        fail("the text does not say training-data attribution")
    with h5py.File(path, "r") as f:
        close("N_test", j["data"]["n"], float(len(f["test"])))
        close("N_train", j["data"]["n_train"], float(len(f["train"])))
        for m in j["methods"]:
            g = f[f"influence/{m['name']}"]
            method_checks(f, m["name"], m, f"{path} {m['name']}")
            close(f"{m['name']} top_k", m["top_k"],
                  float(g["topk_index"].shape[1]) if "topk_index" in g else 0.0)
            for sub in ("loo", "lds"):
                if sub in g:
                    for k, v in g[sub].attrs.items():
                        close(f"{m['name']} {sub} {k}", m[sub][k], float(v))
                elif m[sub] is not None:
                    fail(f"{m['name']}: {sub} reported but absent")
            for k in ("damping_used", "solver_iterations_max", "cg_residual_max"):
                if k in g.attrs:
                    close(f"{m['name']} {k}", m["attributes"][k], float(g.attrs[k]))
                    if f"{k}=" not in out:
                        fail(f"text output lacks {k}")
        times = {k: float(v) for k, v in f.attrs.items() if k.startswith("time_")}
        for k, v in times.items():
            close(f"timing {k}", j["timing"][k], v)
    print(f"ok influence {path}: {len(j['methods'])} methods")


def row_spearman_mean(a, b):
    vals = []
    for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        rx, ry = rankdata(x), rankdata(y)
        if rx.std() == 0 or ry.std() == 0:
            continue
        vals.append(np.corrcoef(rx, ry)[0, 1])
    return float(np.mean(vals))


def make_sweep(src, out, noise_method, drop_method):
    """Points a (as src), b (noise added to noise_method), c (it doubled,
    drop_method removed), in the common sweep layout."""
    rng = np.random.default_rng(7)
    names = ["n_steps=16,seed=0", "n_steps=32,seed=0", "n_steps=64,seed=1"]
    with h5py.File(src, "r") as s, h5py.File(out, "w") as f:
        for k, v in s.attrs.items():
            if k in ("job_yaml", "job_file", "plan", "plan_hash", "attrib_version"):
                f.attrs[k] = v
        f.attrs["format"] = "attrib-results"
        f.attrs["format_version"] = 1
        f.attrs["content"] = "sweep"
        f.attrs["n_points"] = 3
        f.create_dataset("sweep/point", data=np.arange(3, dtype=np.int64))
        f["sweep/point"].make_scale("point")
        # fixed-length bytes here, variable-length strings for the keys: both are read
        f.create_dataset("sweep/name", data=np.array([n.encode() for n in names]))
        f.create_dataset("sweep/methods.ig.n_steps", data=np.array(["16", "32", "64"], dtype=object),
                         dtype=h5py.string_dtype())
        f.create_dataset("sweep/run.seed", data=np.array(["0", "0", "1"], dtype=object),
                         dtype=h5py.string_dtype())
        for p, name in enumerate(names):
            g = f.create_group(f"points/{name}")
            for k, v in s.attrs.items():
                g.attrs[k] = v
            for k in s:
                s.copy(s[k], g, name=k)
            sc = g[f"attributions/{noise_method}/scores"]
            if p == 1:
                x = sc[()]
                sc[...] = x + rng.normal(0, np.abs(x).mean(), x.shape).astype(np.float32)
            elif p == 2:
                sc[...] = 2 * sc[()]
                del g[f"attributions/{drop_method}"]
    return names


def check_sweep_file(sw):
    """Any sweep file: points, keys and values as stored; for every method in
    all points, the Spearman and relative L2 of each point against point 0
    recomputed with scipy/numpy."""
    j = json.loads(run("inspect", sw, "--json").stdout)
    text_width(sw)
    with h5py.File(sw, "r") as f:
        dec = lambda v: v.decode() if isinstance(v, bytes) else str(v)
        names = [dec(n) for n in f["sweep/name"][()]]
        keys = sorted(k for k in f["sweep"] if k != "name" and f["sweep"][k].dtype.kind in "OS")
        if [p["name"] for p in j["sweep"]["points"]] != names:
            fail(f"points {[p['name'] for p in j['sweep']['points']]} != {names}")
        if sorted(j["sweep"]["keys"]) != keys:
            fail(f"keys {j['sweep']['keys']} != {keys}")
        for p, pt in enumerate(j["sweep"]["points"]):
            want = {k: dec(f["sweep"][k][p]) for k in keys}
            if pt["values"] != want:
                fail(f"point {p} values {pt['values']} != {want}")
        groups = []
        for n in names:
            g = f[f"points/{n}"]
            top = "influence" if "influence" in g else "attributions"
            groups.append({m: f"points/{n}/{top}/{m}/scores" for m in g[top]})
        common = sorted(set.intersection(*[set(g) for g in groups]))
        changes = {c["method"]: c for c in j["sweep"]["changes"]}
        if sorted(changes) != common:
            fail(f"changes for {sorted(changes)}, expected the methods in all points {common}")
        for m in common:
            S0 = f[groups[0][m]][()].astype(np.float64)
            for p in range(len(names)):
                Sp = f[groups[p][m]][()].astype(np.float64)
                if Sp.shape != S0.shape:
                    if changes[m]["spearman"][p] is not None:
                        fail(f"{m} point {p}: shapes differ but a correlation is given")
                    continue
                close(f"sweep {m} point {p} spearman", changes[m]["spearman"][p],
                      row_spearman_mean(Sp, S0), rtol=1e-6)
                close(f"sweep {m} point {p} rel_l2", changes[m]["rel_l2"][p],
                      np.linalg.norm(Sp - S0) / np.linalg.norm(S0), rtol=1e-6, atol=1e-12)
    print(f"ok sweep file {sw}: {len(names)} points, {len(common)} methods compared")
    return j


def check_sweep(path, work):
    os.makedirs(work, exist_ok=True)
    sw = os.path.join(work, "sweep.h5")
    with h5py.File(path, "r") as f:
        methods = sorted(f["attributions"].keys())
    noise, drop = methods[0], methods[-1]
    if noise == drop:
        fail("the sweep check needs a file with two methods")
    names = make_sweep(path, sw, noise, drop)
    j = check_sweep_file(sw)
    out = text_width(sw)
    if [p["name"] for p in j["sweep"]["points"]] != names:
        fail(f"points {[p['name'] for p in j['sweep']['points']]} != {names}")
    if j["sweep"]["keys"] != ["methods.ig.n_steps", "run.seed"]:
        fail(f"keys {j['sweep']['keys']}")
    if j["sweep"]["points"][2]["values"] != {"methods.ig.n_steps": "64", "run.seed": "1"}:
        fail(f"values of point 2: {j['sweep']['points'][2]['values']}")
    changes = {c["method"]: c for c in j["sweep"]["changes"]}
    if set(changes) != set(methods) - {drop}:
        fail(f"changes for {sorted(changes)}, expected the methods in all points "
             f"{sorted(set(methods) - {drop})}")
    with h5py.File(sw, "r") as f:
        S = [f[f"points/{n}/attributions/{noise}/scores"][()].astype(np.float64) for n in names]
    c = changes[noise]
    for p in range(3):
        want_sp = row_spearman_mean(S[p], S[0])
        want_l2 = np.linalg.norm(S[p] - S[0]) / np.linalg.norm(S[0])
        close(f"sweep {noise} point {p} spearman", c["spearman"][p], want_sp, rtol=1e-6)
        close(f"sweep {noise} point {p} rel_l2", c["rel_l2"][p], want_l2, rtol=1e-6)
    # closed forms: point 0 against itself, and doubled scores
    close("spearman of point 0", c["spearman"][0], 1.0)
    close("rel_l2 of point 0", c["rel_l2"][0], 0.0)
    close("spearman of doubled scores", c["spearman"][2], 1.0, rtol=1e-12)
    close("rel_l2 of doubled scores", c["rel_l2"][2], 1.0, rtol=1e-7)
    if not c["spearman"][1] < 0.999:
        fail(f"noise did not lower the Spearman correlation: {c['spearman'][1]}")
    for m in changes:
        if m != noise:
            for p in range(3):
                close(f"unchanged {m} spearman", changes[m]["spearman"][p], 1.0)
                close(f"unchanged {m} rel_l2", changes[m]["rel_l2"][p], 0.0)
    if "how the settings changed the answer" not in out or names[1] not in out:
        fail("sweep text output lacks the change table or the points")
    # --point NAME reads the point exactly as the plain file
    pj = json.loads(run("inspect", sw, "--point", names[0], "--json").stdout)
    plain = json.loads(run("inspect", path, "--json").stdout)
    for a, b in zip(pj["methods"], plain["methods"]):
        for k in ("name", "shape", "mean_abs", "frac_pos", "completeness", "metrics"):
            if a[k] != b[k]:
                fail(f"--point {names[0]} {a['name']} {k}: {a[k]} != plain file's {b[k]}")
    if pj["file"]["point"] != names[0]:
        fail("--point not reported in file.point")
    e = run("inspect", sw, "--point", "n_steps=8", code=2).stderr
    for frag in (sw, "--point n_steps=8", "no such point", *names):
        if frag not in e:
            fail(f"unknown point message lacks '{frag}': {e}")
    e = run("topk", sw, "--method", noise, "--sample", "0", code=2).stderr
    if "--point" not in e or names[0] not in e:
        fail(f"topk on a sweep without --point: {e}")
    run("topk", sw, "--method", noise, "--sample", "0", "--point", names[1])
    print(f"ok sweep: {len(names)} points, spearman {c['spearman']}, rel_l2 {c['rel_l2']}")


def labels_of(data, split, rows):
    with h5py.File(data, "r") as f:
        return f[f"{split}/labels"][()][rows]


def expect_rank(scores_row, k, opponents):
    """Positions of the k highest (lowest) scores, ties to the lower position."""
    pos = np.arange(len(scores_row))
    key = scores_row if opponents else -scores_row
    order = np.lexsort((pos, key))
    return order[:k]


def check_topk(infl, feat, work):
    os.makedirs(work, exist_ok=True)
    with h5py.File(infl, "r") as f:
        data = f.attrs["data_path"]
        tsplit = f.attrs["train_split"]
        train = f["train"][()]
        test = f["test"][()]
        methods = sorted(f["influence"].keys())
        K = f[f"influence/{methods[0]}/topk_index"].shape[1]
        n_checked = 0
        for m in methods[:4]:
            S = f[f"influence/{m}/scores"][()]
            for i in (0, len(test) - 1):
                for opp in (False, True):
                    args = ["topk", infl, "--method", m, "--sample", str(i), "--csv"]
                    if opp:
                        args.append("--opponents")
                    df = pd.read_csv(io.StringIO(run(*args).stdout))
                    if list(df.columns) != ["rank", "train_row", "label", "label_name", "score"]:
                        fail(f"CSV header {list(df.columns)}")
                    if len(df) != K:
                        fail(f"default --k gave {len(df)} rows, expected the file's top_k {K}")
                    want = expect_rank(S[i].astype(np.float64), K, opp)
                    got_rows = df["train_row"].to_numpy()
                    pos = {int(r): p for p, r in enumerate(train)}
                    if any(int(r) not in pos for r in got_rows):
                        fail(f"{m} sample {i}: rows {got_rows.tolist()} are not train rows")
                    got_s = S[i][[pos[int(r)] for r in got_rows]]
                    if not np.array_equal(got_rows, train[want]):
                        # ties aside: each row's own score must be the rank's score
                        if not np.allclose(got_s, S[i][want], rtol=1e-6, atol=0):
                            fail(f"{m} sample {i} opp={opp}: rows {got_rows.tolist()} "
                                 f"!= numpy {train[want].tolist()}")
                    if not np.allclose(df["score"].to_numpy(), S[i][want], rtol=1e-6, atol=0):
                        fail(f"{m} sample {i}: scores differ from the scores row")
                    if not np.array_equal(df["label"].to_numpy(),
                                          labels_of(data, tsplit, df["train_row"].to_numpy())):
                        fail(f"{m} sample {i}: labels differ from {data}")
                    if list(df["rank"]) != list(range(K)):
                        fail("ranks are not 0..K-1")
                    n_checked += 1
        # the table form: test row, label, and the same rows
        t = run("topk", infl, "--method", methods[0], "--sample", "1", "--k", "3").stdout
        lines = t.splitlines()
        want_label = labels_of(data, f.attrs["data_split"], [test[1]])[0]
        if f"test sample 1 = row {test[1]} of split" not in lines[0] or \
                f"label {want_label}" not in lines[0]:
            fail(f"table header: {lines[0]}")
        rows = [int(x.split()[1]) for x in lines[3:]]
        want = train[expect_rank(f[f"influence/{methods[0]}/scores"][1].astype(np.float64), 3,
                                 False)]
        if rows != list(want):
            fail(f"table rows {rows} != {list(want)}")
    # --k above top_k
    e = run("topk", infl, "--method", methods[0], "--sample", "0", "--k", str(K + 1), code=2).stderr
    for frag in (infl, f"--k {K + 1}", f"at most {K}"):
        if frag not in e:
            fail(f"--k above top_k: message lacks '{frag}': {e}")
    # no top-k datasets: ranked from the scores row, and said so
    cp = os.path.join(work, "no_topk.h5")
    with h5py.File(infl, "r") as s, h5py.File(cp, "w") as d:
        for k, v in s.attrs.items():
            d.attrs[k] = v
        for k in s:
            s.copy(s[k], d, name=k)
        for k in ("topk_index", "topk_score", "opponents_index", "opponents_score"):
            del d[f"influence/{methods[0]}/{k}"]
        S = s[f"influence/{methods[0]}/scores"][()]
    p = run("topk", cp, "--method", methods[0], "--sample", "2", "--k", "12", "--csv",
            "--opponents")
    df = pd.read_csv(io.StringIO(p.stdout))
    if not np.array_equal(df["train_row"].to_numpy(), train[expect_rank(S[2].astype(np.float64),
                                                                       12, True)]):
        fail("ranking from the scores row differs from numpy")
    if "no top-k datasets" not in p.stderr:
        fail(f"computing from scores is not said: {p.stderr}")
    t = run("topk", cp, "--method", methods[0], "--sample", "2").stdout
    if "ranked from the scores row" not in t or len(t.splitlines()) != 3 + 10:
        fail(f"table without top-k datasets:\n{t}")
    # feature attribution: the most relevant features; every method, both
    # ends (saliency's zeros make ties: they go to the lower feature index)
    ties = 0
    with h5py.File(feat, "r") as f:
        for m in sorted(f["attributions"].keys()):
            S = f[f"attributions/{m}/scores"][()]
            W = S.shape[2]
            for opp in (False, True):
                args = ["topk", feat, "--method", m, "--sample", "5", "--k", str(S[0].size), "--csv"]
                if opp:
                    args.append("--opponents")
                df = pd.read_csv(io.StringIO(run(*args).stdout))
                row = S[5].reshape(-1).astype(np.float64)
                want = expect_rank(row, row.size, opp)
                ties += len(want) - len(np.unique(row[want]))
                if not np.array_equal(df["feature"].to_numpy(), want):
                    k = int(np.argmax(df["feature"].to_numpy() != want))
                    fail(f"feature topk {m} opp={opp}: rank {k} is feature {df['feature'][k]}, "
                         f"numpy's is {want[k]} (scores {row[df['feature'][k]]}, {row[want[k]]})")
                if not (np.array_equal(df["y"], want // W) and np.array_equal(df["x"], want % W)):
                    fail("feature (y, x) wrong")
                if not np.allclose(df["score"].to_numpy(), row[want], rtol=1e-7, atol=0):
                    fail(f"feature topk {m}: scores differ")
    if ties == 0:
        fail("no tied scores among the feature rankings: the tie order is untested")
    print(f"ok topk: {n_checked} influence rankings, the table, --k limit, no-top-k file, features")


def mask(line):
    line = re.sub(r"\S*/\S*", "PATH", line)
    line = re.sub(r"-?\d+(\.\d+)?(e[+-]?\d+)?", "N", line)
    return " ".join(line.split())


def check_doc(doc, subs):
    text = open(doc, encoding="utf-8").read()
    blocks = re.findall(r"```console\n(.*?)```", text, flags=re.S)
    if not blocks:
        fail(f"no console blocks in {doc}")
    for b in blocks:
        lines = b.rstrip("\n").split("\n")
        if not lines[0].startswith("$ attrib "):
            fail(f"console block does not start with '$ attrib': {lines[0]}")
        cmd = lines[0][2:]
        for lit, path in subs:
            cmd = cmd.replace(lit, path)
        argv = shlex.split(cmd)[1:]
        code = 0
        want = lines[1:]
        if want and want[-1].startswith("[exit "):
            code = int(want[-1][6:-1])
            want = want[:-1]
        p = run(*argv, code=code)
        got = (p.stdout + p.stderr).rstrip("\n").split("\n")
        gi = 0
        for wi, w in enumerate(want):
            if w.strip() == "...":
                nxt = want[wi + 1] if wi + 1 < len(want) else None
                while gi < len(got) and (nxt is None or mask(got[gi]) != mask(nxt)):
                    gi += 1
                continue
            if gi >= len(got) or mask(got[gi]) != mask(w):
                fail(f"{doc}: `{lines[0]}`: doc line\n  {w}\ndoes not match output line\n  "
                     f"{got[gi] if gi < len(got) else '(end of output)'}\nfull output:\n"
                     + "\n".join(got))
            gi += 1
        if gi != len(got):
            fail(f"{doc}: `{lines[0]}`: output has more lines than the doc (use '...'):\n"
                 + "\n".join(got[gi:]))
    # every option of the commands' --help is in the doc's option tables, and
    # every option the doc's tables list is in --help
    for cmd in ("inspect", "topk"):
        h = run(cmd, "--help").stdout
        if not h.startswith(f"usage: attrib {cmd}"):
            fail(f"attrib {cmd} --help: {h}")
        sec = text.split(f"## `attrib {cmd}", 1)[1].split("\n## ", 1)[0]
        in_help = set(re.findall(r"(--[a-z][a-z-]*)", h)) | {"--help"}
        in_doc = set(re.findall(r"^\| `(--[a-z][a-z-]*)", sec, flags=re.M))
        if in_help != in_doc:
            fail(f"attrib {cmd}: options in --help {sorted(in_help)} != the doc's table "
                 f"{sorted(in_doc)}")
    # the JSON keys the doc lists are the JSON's keys
    sec = text.split("### `--json`", 1)[1].split("\n## ", 1)[0]
    doc_top = set(re.findall(r"^- `(\w+)`", sec, flags=re.M))
    doc_meth = set(re.findall(r"`(\w+)`", re.search(r"^Method keys: (.*)$", sec, re.M).group(1)))
    sub = dict(subs)
    top, meth = set(), set()
    for lit in ("results/agree.h5", "results/influence.h5", "results/sweep.h5"):
        j = json.loads(run("inspect", sub[lit], "--json").stdout)
        top |= set(j)
        for m in j.get("methods", []):
            meth |= set(m)
    if doc_top != top:
        fail(f"{doc}: JSON keys listed {sorted(doc_top)} != the output's {sorted(top)}")
    if doc_meth != meth:
        fail(f"{doc}: method keys listed {sorted(doc_meth)} != the output's {sorted(meth)}")
    print(f"ok doc {doc}: {len(blocks)} console blocks, {len(top)} JSON keys, "
          f"{len(meth)} method keys")


if MODE == "feature":
    check_feature(ARGS[0])
elif MODE == "influence":
    check_influence(ARGS[0])
elif MODE == "sweep":
    check_sweep(ARGS[0], ARGS[1])
elif MODE == "sweep-file":
    check_sweep_file(ARGS[0])
elif MODE == "topk":
    check_topk(ARGS[0], ARGS[1], ARGS[2])
elif MODE == "doc":
    subs = [tuple(a.split("=", 1)) for a in ARGS[1:]]
    check_doc(ARGS[0], subs)
else:
    fail(f"unknown mode {MODE}")
