#!/usr/bin/python3
"""A sweep's results file against standalone runs of its points.

usage: check_sweep.py SWEEP.h5 POINTS.txt
POINTS.txt: one line per point, "NAME<TAB>STANDALONE.h5<TAB>KEY=VALUE..."
(the standalone `attrib run` of that point's --set options). Checks, and
exits 1 on any failure:
  - root attributes: format, format_version, content "sweep", n_points, the
    plan (one line per point with its plan hash) and plan_hash = SHA-256 of
    the plan;
  - /sweep/name lists the points in order; /sweep/<key> holds each point's
    value text;
  - each /points/<name> group equals its standalone file: the same objects,
    every dataset's dtype, shape and bytes, every attribute of the root but
    the run description, and the same plan_hash;
  - xarray names the dimensions under /points/<name>/attributions/<m> as in
    the standalone file (the dimension scales survive the copy).
"""
import hashlib
import sys

import h5py
import numpy as np
import xarray as xr

RUN_ATTRS = {"n_ranks", "units_per_rank", "units_resumed", "host", "started_at",
             "finished_at", "time_total_s", "time_compute_max_s", "time_fold_max_s",
             "scheduler", "job_yaml", "job_file"}
bad = 0


def fail(msg):
    global bad
    print("FAIL", msg)
    bad += 1


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


sweep_path, points_path = sys.argv[1:3]
points = []
for line in open(points_path):
    name, alone, *sets = line.rstrip("\n").split("\t")
    points.append((name, alone, dict(s.split("=", 1) for s in sets)))

f = h5py.File(sweep_path, "r")
a = f.attrs
if text(a["format"]) != "attrib-results" or int(a["format_version"]) != 1:
    fail("format attributes")
if text(a["content"]) != "sweep":
    fail(f"content is {a['content']!r}")
if int(a["n_points"]) != len(points):
    fail(f"n_points {a['n_points']} != {len(points)}")
plan = text(a["plan"])
if hashlib.sha256(plan.encode()).hexdigest() != text(a["plan_hash"]):
    fail("plan_hash is not the SHA-256 of plan")
lines = plan.splitlines()
if len(lines) != len(points):
    fail(f"plan has {len(lines)} lines for {len(points)} points")
names = [text(x) for x in f["sweep/name"][()]]
if names != [p[0] for p in points]:
    fail(f"/sweep/name {names} != {[p[0] for p in points]}")
for i, (name, alone, sets) in enumerate(points):
    for key, val in sets.items():
        got = text(f["sweep/" + key][i])
        if got != val:
            fail(f"/sweep/{key}[{i}] = {got!r}, expected {val!r}")
    g = f["points/" + name]
    s = h5py.File(alone, "r")
    if text(g.attrs["plan_hash"]) != text(s.attrs["plan_hash"]):
        fail(f"{name}: plan_hash differs from the standalone run")
    if i < len(lines) and (lines[i].split()[1] != text(s.attrs["plan_hash"]) or
                           lines[i].split()[2] != name):
        fail(f"plan line {i} {lines[i]!r} does not hold the point's plan hash and name")
    for k in s.attrs:
        if k not in RUN_ATTRS and k not in ("DIMENSION_LIST", "REFERENCE_LIST"):
            if k not in g.attrs or not np.array_equal(np.asarray(g.attrs[k]), np.asarray(s.attrs[k])):
                fail(f"{name}: root attribute {k} differs")
    objs_g, objs_s = {}, {}
    g.visititems(lambda n, o: objs_g.__setitem__(n, o))
    s.visititems(lambda n, o: objs_s.__setitem__(n, o))
    if set(objs_g) != set(objs_s):
        fail(f"{name}: objects differ: {sorted(set(objs_g) ^ set(objs_s))}")
    n = 0
    for k, o in objs_s.items():
        if isinstance(o, h5py.Dataset) and k in objs_g:
            x, y = o[()], objs_g[k][()]
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                fail(f"{name}: /{k} differs from the standalone run")
            n += 1
    for m in s["attributions"]:
        want = xr.open_dataset(alone, group=f"attributions/{m}", engine="h5netcdf")
        got = xr.open_dataset(sweep_path, group=f"points/{name}/attributions/{m}",
                              engine="h5netcdf")
        for v in want.data_vars:
            if got[v].dims != want[v].dims:
                fail(f"{name}: xarray dims of {m}/{v} {got[v].dims} != {want[v].dims}")
            elif not np.array_equal(got[v].values, want[v].values):
                fail(f"{name}: xarray values of {m}/{v} differ")
        for c in want.coords:
            if not np.array_equal(got[c].values, want[c].values):
                fail(f"{name}: coordinate {c} of {m} differs")
    print(f"ok   {name}: {n} datasets equal to {alone}")
print(f"{bad} failure(s)")
sys.exit(1 if bad else 0)
