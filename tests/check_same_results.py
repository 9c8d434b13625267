#!/usr/bin/python3
"""Results files from different rank counts must hold identical data.

usage: check_same_results.py A.h5 B.h5 [C.h5 ...]
Every dataset: same dtype, shape and bytes; every attribute of groups and
datasets equal; root attributes equal except those that describe the run
itself (ranks, scheduler, host, times, the job's text) — the plan and
plan_hash attributes, which are compared, hold everything that decides the
numbers. Exits 1 on any difference.
Sweep files (content "sweep", docs/format.md): each /points/<name> group is
a point's root, so its run-description attributes are skipped the same way;
string datasets (/sweep/...) are compared by value.
"""
import sys

import h5py
import numpy as np

# How the run went, not what it computed: the plan and plan_hash attributes
# (compared) cover everything that decides the numbers, so the job's text,
# its scheduler and rank count may differ.
RUN_ATTRS = {"n_ranks", "units_per_rank", "units_resumed", "host", "started_at",
             "finished_at", "time_total_s", "time_compute_max_s", "time_fold_max_s",
             "scheduler", "job_yaml", "job_file",
             # training-data attribution: rank count, stage times, store use
             "ranks", "time_featurise_s", "time_ground_truth_s", "time_precondition_s",
             "time_scores_s", "feature_blocks_computed", "feature_blocks_reused",
             "gradient_store"}


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj))
    return out


def attrs(obj, skip=()):
    return {k: obj.attrs[k] for k in obj.attrs if k not in skip and k not in ("DIMENSION_LIST", "REFERENCE_LIST")}


def same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


files = [h5py.File(p, "r") for p in sys.argv[1:]]
ref, bad = files[0], 0
ref_items = items(ref)
for p, f in zip(sys.argv[2:], files[1:]):
    it = items(f)
    if set(it) != set(ref_items):
        print(f"FAIL {p}: objects differ: {sorted(set(it) ^ set(ref_items))}")
        bad += 1
    bad0 = bad
    ra, fa = attrs(ref, RUN_ATTRS), attrs(f, RUN_ATTRS)
    for k in set(ra) | set(fa):
        if k not in ra or k not in fa or not same(ra[k], fa[k]):
            print(f"FAIL {p}: root attribute {k} differs")
            bad += 1
    n = 0
    for name, obj in ref_items.items():
        if name not in it:
            continue
        o = it[name]
        is_point = name.startswith("points/") and name.count("/") == 1
        for k, v in attrs(obj, RUN_ATTRS if is_point else ()).items():
            if k not in o.attrs or not same(v, o.attrs[k]):
                print(f"FAIL {p}: /{name} attribute {k} differs")
                bad += 1
        if isinstance(obj, h5py.Dataset):
            a, b = obj[()], o[()]
            if a.dtype.kind == "O" or b.dtype.kind == "O":  # variable-length strings
                if a.dtype != b.dtype or np.shape(a) != np.shape(b) or \
                        np.asarray(a).tolist() != np.asarray(b).tolist():
                    print(f"FAIL {p}: /{name} (strings) differs from {sys.argv[1]}")
                    bad += 1
                n += 1
                continue
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).max() if a.shape == b.shape else "shape"
                print(f"FAIL {p}: /{name} differs from {sys.argv[1]} (max abs diff {diff})")
                bad += 1
            n += 1
    print(f"ok   {p}: {n} datasets byte-identical to {sys.argv[1]}" if bad == bad0 else f"FAIL {p}")
print(f"{bad} difference(s)")
sys.exit(1 if bad else 0)
