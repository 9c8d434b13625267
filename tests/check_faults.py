#!/usr/bin/python3
"""Fault injection: SIGKILL a 2-rank run at random moments, rerun it to the end.

usage: check_faults.py ATTRIB MPIEXEC JOB.yaml DATA.h5 MODEL.h5 WORKDIR [TRIALS] [SEED]

Every trial starts a 2-rank run of JOB and kills it with SIGKILL (no chance
to clean up, like a node failure):
  - 3 of 4 trials at a random moment (uniform over the uninterrupted run's
    duration): every rank at once, or one random rank;
  - every 4th trial at a chosen point through the ATTRIB_FAULT hook: inside
    a shard write (half-written *.tmp), between a shard's fsync and its
    rename, during the final assembly, just before the results file's rename.
Then it checks that every shard and results file on disk opens, reruns the
same command until it exits 0 (a resumed rank count of 1, 2 or 3 and either
scheduler), and checks:
  - the final results are identical, dataset by dataset, to an uninterrupted
    run's (check_same_results.py);
  - no unit was computed twice beyond the units in flight: units computed
    over all attempts (ATTRIB_UNIT_LOG) minus the plan's units is at most
    the number of ranks killed (one unit in hand each; the job has
    run.checkpoint_interval 0, so a computed unit is durable at once).
Prints one line per trial and a summary; exits 1 on any failure.
"""
import os
import random
import signal
import subprocess
import sys
import time

import h5py

A, MPI, JOB, DATA, MODEL, W = sys.argv[1:7]
TRIALS = int(sys.argv[7]) if len(sys.argv) > 7 else 20
rng = random.Random(int(sys.argv[8]) if len(sys.argv) > 8 else 20261121)
HERE = os.path.dirname(os.path.abspath(__file__))
# a shorter path than the resume test's, for 20 trials: about 220 units
SETS = ["--set", f"data.path={DATA}", "--set", f"model.path={MODEL}", "--set", "methods.ig.n_steps=192"]
POINTS = ["shard_write", "shard_commit", "assemble", "results_rename"]

os.makedirs(W, exist_ok=True)
os.chdir(W)


def cmd(n, out, extra=()):
    return [MPI, "-n", str(n), A, "run", JOB, *SETS, "-o", out, *extra]


def run(n, out, extra=(), env=None, log=None):
    with open(log or os.devnull, "w") as f:
        return subprocess.run(cmd(n, out, extra), stdout=f, stderr=subprocess.STDOUT, env=env).returncode


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def readable(path):
    try:
        with h5py.File(path, "r") as f:
            f.visit(lambda name: None)
        return True
    except Exception:
        return False


for p in os.listdir("."):
    if p.startswith("t") or p.startswith("ref"):
        subprocess.run(["rm", "-rf", p])

t0 = time.time()
if run(2, "ref.h5", log="ref.log") != 0:
    sys.exit(open("ref.log").read())
t_ref = time.time() - t0
n_units = int(next(l for l in open("ref.log") if " units on " in l).split(" units on ")[0].split()[-1])
print(f"reference: {n_units} units in {t_ref:.2f} s")

failures, unreadable, extra_units = 0, 0, 0
for trial in range(TRIALS):
    out, ulog = f"t{trial:02d}.h5", os.path.abspath(f"t{trial:02d}.units")
    env = dict(os.environ, ATTRIB_UNIT_LOG=ulog)
    killed_ranks = 2
    if trial % 4 == 3:
        point = POINTS[(trial // 4) % len(POINTS)]
        nth = 1 if point in ("assemble", "results_rename") else rng.randint(2, 40)
        rank = 0 if point == "results_rename" else rng.randint(0, 1)
        env.update(ATTRIB_FAULT=f"{point}:{nth}", ATTRIB_FAULT_RANK=str(rank))
        how = f"ATTRIB_FAULT={point}:{nth} on rank {rank}"
        killed_ranks = 1
        rc = run(2, out, env=env, log=f"t{trial:02d}.log")
    else:
        delay = rng.uniform(0.3, 0.9 * t_ref)
        one = rng.random() < 0.5
        p = subprocess.Popen(cmd(2, out), stdout=open(f"t{trial:02d}.log", "w"),
                             stderr=subprocess.STDOUT, env=env)
        time.sleep(delay)
        ranks = children(p.pid)
        victims = [rng.choice(ranks)] if one and ranks else ranks
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed_ranks = len(victims)
        how = f"SIGKILL at {delay:.2f} s to {'one rank' if one else 'both ranks'}"
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            print(f"FAIL trial {trial}: {how}: the run hung after the kill")
            failures += 1
            continue
    # what is on disk now must open (a *.tmp shard or OUT.partial is not
    # done work and is never read)
    files = [out] if os.path.exists(out) else []
    if os.path.isdir(out + ".shards"):
        files += [os.path.join(out + ".shards", f) for f in os.listdir(out + ".shards") if f.endswith(".h5")]
    bad = [f for f in files if not readable(f)]
    unreadable += len(bad)
    # rerun to the end, with another rank count and scheduler
    env.pop("ATTRIB_FAULT", None)
    n = rng.randint(1, 3)
    sched = rng.choice(["static", "dynamic"])
    reruns = 0
    while True:
        reruns += 1
        rc2 = run(n, out, ["--set", f"run.scheduler={sched}"], env=env, log=f"t{trial:02d}.rerun.log")
        if rc2 == 0 or reruns == 3:
            break
    computed = sum(1 for _ in open(ulog)) if os.path.exists(ulog) else 0
    over = max(0, computed - n_units)
    extra_units += over
    same = subprocess.run([sys.executable, os.path.join(HERE, "check_same_results.py"), "ref.h5", out],
                          capture_output=True, text=True)
    ok = rc2 == 0 and same.returncode == 0 and not bad and over <= killed_ranks
    state = f"first run exit {rc}; rerun on {n} rank(s) ({sched}) exit {rc2}; {computed} units computed for {n_units} (+{over}, bound {killed_ranks})"
    if ok:
        print(f"ok   trial {trial:2d}: {how}; {state}; identical")
    else:
        failures += 1
        why = same.stdout.strip().splitlines()[-1:] if same.returncode else []
        print(f"FAIL trial {trial:2d}: {how}; {state}; unreadable {bad}; {why}")
        print(open(f"t{trial:02d}.rerun.log").read()[-800:])

print(f"{TRIALS - failures}/{TRIALS} trials identical to the uninterrupted run; "
      f"{unreadable} unreadable files; {extra_units} units recomputed in all (units in flight)")
sys.exit(1 if failures else 0)
