#!/usr/bin/python3
"""Every example in the docs is run by a test: this checker makes sure of it.

usage: check_doc_examples.py --attrib BIN --src SRC --scratch DIR
                             --data FMNIST.h5 --model MLP.h5 [--list] [DOC.md...]

It walks SRC/README.md and SRC/docs/*.md (or the DOC.md given) and gives every
fenced block one of these outcomes; any block or command with none of them
fails the check, so a new example cannot slip in unchecked:

  ```sh / ```bash   each command runs, in order, in one bash per block, in a
                    scratch directory laid out like a clone after the quick
                    start (below). A command that cannot run in CI is in
                    ALLOW below, with the reason and the ctest test that covers
                    it otherwise. A command naming an attrib subcommand that
                    `attrib --help` does not list fails as "command missing".
  ```console        the same for its `$ ` lines; other lines are output.
                    A doc in DELEGATED (below) has its command blocks run by
                    its own ctest entry, which must name the doc (in its
                    add_test or in a tests/ script it runs).
  ```python [TAG]   covered when a ctest entry runs tests/run_doc_snippets.py
                    on that doc with that tag (untagged: no --tag), found by
                    reading tests/*.cmake and the tests/ scripts they run; or
                    allow-listed by (doc, TAG).
  ```yaml [run|train]  a whole job (data + model + methods/influence/train)
                    passes `attrib validate` in the scratch directory; a
                    fragment (e.g. a `methods:` list, a `sweep:` map) replaces
                    those top-level sections of jobs/quickstart.yaml (of
                    jobs/influence.yaml if it has `influence:`) and the result
                    passes `attrib validate`. docs/jobs.md's blocks are covered
                    by test_jobs_doc when tests/job.cmake runs it. A block
                    whose first line is `# jobs/NAME.yaml` is also written to
                    the scratch jobs/ (so later commands can run it), and if
                    the repository has jobs/NAME.yaml it must be the same job.
  ```text / ```     output, layouts, messages: not run, but a line that looks
                    like a command (`$ `, `attrib `, `build/attrib `,
                    `mpirun `, `sbatch `) fails: fence it ```sh.

Any other fence language fails. Inline `code` in prose is not an example.
Every test an allow-list entry names as covering must exist in tests/*.cmake,
and an entry that matches no command fails, so the list cannot go stale.

The scratch directory (rebuilt each time): jobs/ (a copy of SRC/jobs plus the
docs' named jobs), slurm, tools, scripts, tests -> SRC; data/fashion-mnist.h5
and models/mlp.h5 copies of --data and --model; models/logreg.h5 and
results/influence.h5 made by `attrib train jobs/train_logreg.yaml` and a
64-row `attrib run jobs/influence.yaml`; models/cnn.h5 by a 1-epoch
`attrib train jobs/train_cnn.yaml` (fragments with a `layer:` field, e.g.
grad_cam, are validated with it instead of the MLP); results/quickstart.h5 by
`attrib run jobs/quickstart.yaml` (1,000 rows, under a second).
build/attrib (also first on PATH, so `attrib ...` works) is a wrapper around
BIN that keeps CI time small by appending, and only these:
  attrib run|merge ... (not --dry-run) --set data.rows=0:64
  attrib train ...                   --set data.rows=0:2048 --set train.epochs=1
                                     --set train.eval_split="" (no epochs with newton)
so the doc's commands run as written, on fewer rows. mpirun runs as root with
oversubscription (the environment of tests/e2e.cmake). The whole check takes
about 20 s on 2 cores. --list prints each example and its outcome without
running anything. Exit 0 when every example passed or is covered, 1 if not.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

# (doc, command as written, comment stripped and spaces collapsed) ->
#     (why it cannot run in CI, the ctest test(s) that cover it otherwise).
# A heredoc command is named by its first line. An entry that matches nothing
# fails the check, so the list cannot go stale.
ALLOW = {
    ("README.md", "scripts/quickstart.sh"):
        ("installs packages and builds; runs the quick-start job, which CI runs as is",
         "e2e_quickstart_np2"),
    ("README.md", "scripts/test.sh"):
        ("the whole suite: it is what CI runs (.ci/run), this test is part of it", "(CI itself)"),
    ("README.md", "scripts/setup.sh"):
        ("installs packages (apt) and builds into build/", "(CI: scripts/test.sh runs it)"),
    ("README.md", "build/attrib import fashion-mnist --out data/fashion-mnist.h5"):
        ("the same command is a test of its own (5 s)", "e2e_import"),
    ("README.md", "sbatch slurm/attrib.sbatch jobs/quickstart.yaml"):
        ("needs a SLURM cluster", "slurm_single"),
    ("README.md", "sbatch --ntasks=64 slurm/attrib.sbatch jobs/quickstart.yaml --set data.split=train "
                  "--set data.rows=0:60000 -o results/train-ig.h5"):
        ("needs a SLURM cluster with 64 slots", "slurm_single"),
    ("README.md", "sbatch --array=0-3 slurm/attrib-sweep.sbatch jobs/sweep_ig.yaml"):
        ("needs a SLURM cluster", "slurm_sweep"),
    ("README.md", "sbatch --ntasks=64 --time=04:00:00 slurm/attrib-requeue.sbatch jobs/big.yaml results/big.h5"):
        ("needs a SLURM cluster; jobs/big.yaml stands for the reader's own job",
         "slurm_requeue, slurm_requeue_mpirun"),
    ("README.md", "kill -USR1 <mpirun pid>"):
        ("<mpirun pid> stands for a running mpirun", "resume_interruptions"),
    ("README.md", "/usr/bin/python3 tools/export_torch.py net.pt models/net.h5 --input-shape 1,28,28"):
        ("net.pt stands for the reader's own PyTorch model", "torch_xcheck_mlp, torch_xcheck_cnn"),
    ("README.md", "build/attrib eval --model models/net.h5 --data data/fashion-mnist.h5 -o logits.h5"):
        ("models/net.h5 comes from the reader's model", "torch_xcheck_cnn"),
    ("README.md", "/usr/bin/python3 tools/import_torch.py models/net.h5 net_state.pt"):
        ("models/net.h5 comes from the reader's model", "torch_xcheck_cnn"),
    ("docs/cluster.md", "sbatch slurm/attrib.sbatch jobs/quickstart.yaml results/qs.h5"):
        ("needs a SLURM cluster", "slurm_single"),
    ("docs/cluster.md", "sbatch --ntasks=32 --cpus-per-task=1 --mem-per-cpu=2G slurm/attrib.sbatch "
                        "jobs/quickstart.yaml results/qs.h5"):
        ("needs a SLURM cluster", "slurm_single"),
    ("docs/cluster.md", "sbatch --time=12:00:00 slurm/attrib-requeue.sbatch jobs/quickstart.yaml "
                        "results/qs.h5"):
        ("needs a SLURM cluster", "slurm_requeue, slurm_requeue_mpirun"),
    ("docs/cluster.md", "jid=$(sbatch --parsable --array=0-3 slurm/attrib-sweep.sbatch jobs/sweep_ig.yaml)"):
        ("needs a SLURM cluster", "slurm_sweep"),
    ("docs/cluster.md", "sbatch --dependency=afterok:$jid slurm/attrib-sweep.sbatch --merge jobs/sweep_ig.yaml"):
        ("needs a SLURM cluster", "slurm_sweep"),
    ("docs/slurm.md", "jid=$(sbatch --parsable --array=0-3 slurm/attrib-sweep.sbatch jobs/sweep_ig.yaml)"):
        ("needs a SLURM cluster", "slurm_sweep"),
    ("docs/slurm.md", "sbatch --dependency=afterok:$jid slurm/attrib-sweep.sbatch --merge jobs/sweep_ig.yaml"):
        ("needs a SLURM cluster", "slurm_sweep"),
    ("docs/influence.md", "build/attrib import fashion-mnist --out data/fashion-mnist.h5"):
        ("the same command is a test of its own (5 s)", "e2e_import"),
    ("docs/robustness.md", "bash tests/check_bad_inputs.sh build/attrib . build/e2e/fmnist.h5 "
                           "build/e2e/mlp.h5 /tmp/bad"):
        ("the whole bad-input table: 15 minutes", "e2e_bad_inputs"),
    ("docs/robustness.md", "BAD_INPUTS_ONLY='^model_' bash tests/check_bad_inputs.sh ..."):
        ("'...' stands for the arguments of the line above", "e2e_bad_inputs"),
    ("docs/robustness.md", "CC=clang cmake -S . -B build-fuzz -DATTRIB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"):
        ("a separate clang build with libFuzzer", "fuzz_run"),
    ("docs/robustness.md", "cmake --build build-fuzz -j2 --target fuzz_job fuzz_h5 fuzz_h5_raw"):
        ("a separate clang build with libFuzzer", "fuzz_run"),
    ("docs/robustness.md", "mkdir -p /tmp/cj /tmp/ch /tmp/cr"):
        ("the fuzzing session's corpus directories", "fuzz_run"),
    ("docs/robustness.md", "build-fuzz/tests/fuzz_job -dict=tests/fuzz/job.dict -max_total_time=600 "
                           "/tmp/cj tests/fuzz/corpus/job tests/fuzz/regressions/job"):
        ("ten minutes of fuzzing in the fuzz build", "fuzz_run"),
    ("docs/robustness.md", "build-fuzz/tests/fuzz_h5 -max_total_time=600 -rss_limit_mb=2048 "
                           "/tmp/ch tests/fuzz/corpus/h5 tests/fuzz/regressions/h5"):
        ("ten minutes of fuzzing in the fuzz build", "fuzz_run"),
    ("docs/robustness.md", "build-fuzz/tests/fuzz_h5_raw -fork=1 -ignore_ooms=1 -ignore_crashes=1 "
                           "-ignore_timeouts=1 -max_total_time=600 -artifact_prefix=/tmp/raw- /tmp/cr "
                           "tests/fuzz/corpus/h5_raw"):
        ("ten minutes of fuzzing in the fuzz build", "fuzz_run"),
    ("docs/robustness.md", "FUZZ_H5_VERBOSE=1 build/tests/fuzz_replay_h5 crash-..."):
        ("crash-... stands for a crash file libFuzzer wrote", "fuzz_replay_h5"),
    ("docs/robustness.md", "ATTRIB_FUZZ_SECONDS=600 ctest -R fuzz_run"):
        ("ten minutes of fuzzing", "fuzz_run"),
    ("docs/slurm.md", "sbatch slurm/attrib.sbatch JOB.yaml [OUT.h5] [attrib run options...]"):
        ("a synopsis, and needs a SLURM cluster", "slurm_single"),
    ("docs/slurm.md", "sbatch slurm/attrib.sbatch jobs/quickstart.yaml results/qs.h5"):
        ("needs a SLURM cluster", "slurm_single"),
    ("docs/slurm.md", "sbatch --ntasks=64 --time=02:00:00 slurm/attrib.sbatch jobs/quickstart.yaml "
                      "results/train-ig.h5 --set data.split=train --set data.rows=0:60000"):
        ("needs a SLURM cluster with 64 slots", "slurm_single"),
    ("docs/slurm.md", "ATTRIB_LAUNCHER=mpirun sbatch slurm/attrib.sbatch jobs/quickstart.yaml results/qs.h5"):
        ("needs a SLURM cluster", "slurm_requeue_mpirun"),
    ("docs/slurm.md", "sbatch --array=1-N slurm/attrib-array.sbatch LIST.txt [OUT_PREFIX]"):
        ("a synopsis, and needs a SLURM cluster", "slurm_array"),
    ("docs/slurm.md", "sbatch --array=1-3 slurm/attrib-array.sbatch slurm/sweep.example.txt"):
        ("needs a SLURM cluster", "slurm_array"),
    ("docs/slurm.md", "sbatch --array=1-10%4 --ntasks=8 slurm/attrib-array.sbatch slices.txt results/slice"):
        ("needs a SLURM cluster", "slurm_array"),
    ("docs/slurm.md", "sbatch --time=12:00:00 slurm/attrib-requeue.sbatch JOB.yaml OUT.h5 "
                      "[attrib run options...]"):
        ("a synopsis, and needs a SLURM cluster", "slurm_requeue"),
    ("docs/torch.md", "tools/export_torch.py models/net.pt models/net.h5 --input-shape 1,28,28"):
        ("models/net.pt is the reader's model (the example session makes one)",
         "torch_xcheck_mlp, torch_xcheck_cnn, torch_xcheck_transformer"),
    ("docs/torch.md", "tools/import_torch.py models/net.h5 models/net_module.pt --module models/net.pt"):
        ("models/net.h5 and net.pt are the reader's model", "torch_xcheck_cnn"),
    ("docs/torch.md", "tools/import_torch.py models/net.h5 models/net_state.pt"):
        ("models/net.h5 is the reader's model", "torch_xcheck_cnn"),
    ("docs/torch.md", "/usr/bin/python3 - <<'EOF'"):
        ("trains a PyTorch CNN on 20,000 images (a minute)", "torch_xcheck_cnn"),
    ("docs/torch.md", "build/attrib eval --model models/net.h5 --data data/fashion-mnist.h5"):
        ("models/net.h5 comes from the PyTorch training above", "torch_xcheck_cnn"),
    ("docs/torch.md", "mpirun -n 2 build/attrib run jobs/quickstart.yaml --set model.path=models/net.h5 "
                      "--set output.path=results/net.h5 --set data.rows=0:200"):
        ("models/net.h5 comes from the PyTorch training above", "torch_xcheck_cnn, e2e_quickstart_np2"),
}

# (doc, python tag) -> (why, covering tests): python blocks no ctest entry runs.
ALLOW_PYTHON = {
    ("docs/torch.md", "torch-session"):
        ("needs models/net.pt and mynet.py of the example session (a minute of PyTorch training)",
         "torch_xcheck_cnn (import_torch.py's state dict loads strictly, same logits)"),
}

# Docs whose command blocks another ctest entry runs (and checks the output
# of): doc -> that test. The test's add_test(...) must name the doc, or a
# script it runs must; the checker verifies that, and still fails on an
# attrib subcommand the binary lacks.
DELEGATED = {
    "docs/inspect.md": "inspect_doc_examples",
    "docs/pictures.md": "render_doc_commands",
}

COMMAND_LINE = re.compile(r"^(\$ |(build/)?attrib |mpirun |sbatch )")
LANGS = {"sh", "bash", "console", "python", "yaml", "text", ""}
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_mpi_yield_when_idle": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "OPENBLAS_NUM_THREADS": "1"}

WRAPPER = """#!/bin/sh
# Written by tests/check_doc_examples.py: the docs' attrib commands, at CI size.
case "$1" in
  run|merge) for a in "$@"; do [ "$a" = --dry-run ] && exec {bin} "$@"; done
       exec {bin} "$@" --set data.rows=0:64 ;;
  train) if grep -q 'optimizer: *newton' "$2"; then exec {bin} "$@" --set data.rows=0:2048; fi
         exec {bin} "$@" --set data.rows=0:2048 --set train.epochs=1 --set 'train.eval_split=""' ;;
  *) exec {bin} "$@" ;;
esac
"""


class Block:
    def __init__(self, doc, line, lang, tag, body):
        self.doc, self.line, self.lang, self.tag, self.body = doc, line, lang, tag, body

    def where(self, offset=0):
        return f"{self.doc}:{self.line + offset}"


def parse_blocks(src, doc):
    """The fenced blocks of SRC/doc: Block(doc, first body line, lang, tag, lines)."""
    lines = open(os.path.join(src, doc), encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^\s*```(.*)$", lines[i])
        if not m:
            i += 1
            continue
        info = m.group(1).split()
        lang = info[0] if info else ""
        tag = " ".join(info[1:])
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        if j == len(lines):
            raise SystemExit(f"FAIL: {doc}:{i + 1}: fenced block is not closed")
        blocks.append(Block(doc, i + 2, lang, tag, lines[i + 1:j]))
        i = j + 1
    return blocks


def strip_comment(line):
    """line without a trailing shell comment (a # outside quotes after a space)."""
    quote = None
    for k, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k].rstrip()
    return line.rstrip()


def split_commands(body):
    """Shell block lines -> [(index of first line, key, text)]: continuation
    lines joined, a heredoc kept whole; key = the command (first line of a
    heredoc) without comment, spaces collapsed."""
    cmds, i = [], 0
    while i < len(body):
        line = body[i]
        first = i
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        text = strip_comment(line)
        parts = [text]
        while text.endswith("\\") and i + 1 < len(body):
            i += 1
            text = strip_comment(body[i])
            parts.append(text)
        joined = " ".join(p.rstrip("\\").strip() for p in parts)
        key = " ".join(joined.split())
        full = "\n".join(parts)
        m = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", joined)
        if m:
            end = m.group(1)
            k = i + 1
            while k < len(body) and body[k].strip() != end:
                k += 1
            full = "\n".join([line] + body[i + 1:k + 1])
            key = " ".join(line.split())
            i = k
        cmds.append((first, key, full))
        i += 1
    return cmds


def cmake_coverage(src):
    """(doc, tag or '') pairs whose python blocks a ctest entry runs — an
    add_test in tests/*.cmake, or a tests/ script that one of them runs —
    and whether test_jobs_doc checks docs/jobs.md."""
    pairs, jobs_doc = set(), False
    tdir = os.path.join(src, "tests")
    snippets = re.compile(r"run_doc_snippets\.py[\"']?\s+[\"']?\S*?((?:docs/)?[\w-]+\.md)[\"']?"
                          r"(\s+--tag\s+([\w-]+))?")
    cmake_text = ""
    for name in sorted(os.listdir(tdir)):
        if name.endswith(".cmake"):
            text = open(os.path.join(tdir, name), encoding="utf-8").read()
            cmake_text += "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))
    for m in snippets.finditer(cmake_text):
        pairs.add((m.group(1), m.group(3) or ""))
    if re.search(r"test_jobs_doc\s+\$\{\w+\}/docs/jobs\.md", cmake_text):
        jobs_doc = True
    for name in sorted(os.listdir(tdir)):
        if (name.endswith((".sh", ".py")) and name not in ("run_doc_snippets.py", "check_doc_examples.py")
                and re.search(r"tests/" + re.escape(name) + r"\b", cmake_text)):
            for m in snippets.finditer(open(os.path.join(tdir, name), encoding="utf-8").read()):
                pairs.add((m.group(1), m.group(3) or ""))
    return pairs, jobs_doc


def cmake_tests(src):
    """{add_test NAME pattern: the text of its add_test(...) call} over
    tests/*.cmake; a name built in a foreach (slurm_${c}) is kept as written."""
    tests = {}
    tdir = os.path.join(src, "tests")
    for name in sorted(os.listdir(tdir)):
        if name.endswith(".cmake"):
            text = open(os.path.join(tdir, name), encoding="utf-8").read()
            for m in re.finditer(r"add_test\(NAME\s+(\S+)([^)]*)\)", text):
                tests[m.group(1)] = m.group(2)
    return tests


def test_exists(tests, name):
    """Does a ctest entry called name exist (matching foreach patterns)?"""
    for pat in tests:
        rx = re.sub(r"\\\$\\\{\w+\\\}", r"\\w+", re.escape(pat))
        if re.fullmatch(rx, name):
            return True
    return False


def attrib_commands(bin_path):
    """Subcommands `attrib --help` lists."""
    out = subprocess.run([bin_path, "--help"], capture_output=True, text=True).stdout
    sec = out.split("commands:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^  ([a-z][a-z-]*) ", sec, flags=re.M))


def top_keys(text):
    return [m.group(1) for m in re.finditer(r"^([A-Za-z_]\w*):", text, flags=re.M)]


def drop_sections(text, keys):
    """Job text without the top-level sections named in keys."""
    out, skip = [], False
    for line in text.split("\n"):
        m = re.match(r"^([A-Za-z_]\w*):", line)
        if m:
            skip = m.group(1) in keys
        if not skip:
            out.append(line)
    return "\n".join(out)


class Checker:
    def __init__(self, args):
        self.a = args
        self.src = os.path.abspath(args.src)
        self.scratch = os.path.abspath(args.scratch)
        self.failures, self.counts, self.allow_used, self.pending = [], {}, set(), []
        self.env = dict(os.environ, **MPI_ENV)
        self.env["PATH"] = os.path.join(self.scratch, "build") + os.pathsep + self.env["PATH"]
        self.coverage, self.jobs_doc = cmake_coverage(self.src)
        self.tests = cmake_tests(self.src)

    def fail(self, where, msg):
        self.failures.append(f"{where}: {msg}")
        print(f"FAIL: {where}: {msg}")

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def sh(self, cmd, cwd=None, timeout=300):
        return subprocess.run(["bash", "-c", cmd], cwd=cwd or self.scratch, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def setup(self):
        s = self.scratch
        if os.path.isdir(s):
            shutil.rmtree(s)
        for d in ("data", "models", "results", "build"):
            os.makedirs(os.path.join(s, d))
        shutil.copytree(os.path.join(self.src, "jobs"), os.path.join(s, "jobs"))
        for d in ("slurm", "tools", "scripts", "tests", "bench"):
            os.symlink(os.path.join(self.src, d), os.path.join(s, d))
        shutil.copy(self.a.data, os.path.join(s, "data/fashion-mnist.h5"))
        shutil.copy(self.a.model, os.path.join(s, "models/mlp.h5"))
        w = os.path.join(s, "build/attrib")
        with open(w, "w") as f:
            f.write(WRAPPER.format(bin=os.path.abspath(self.a.attrib)))
        os.chmod(w, 0o755)
        for cmd in ("build/attrib train jobs/train_logreg.yaml",
                    "build/attrib train jobs/train_cnn.yaml",
                    "mpirun -n 2 build/attrib run jobs/influence.yaml",
                    "mpirun -n 2 build/attrib run jobs/quickstart.yaml --set data.rows=0:1000"):
            # the wrapper's data.rows=0:64 comes after; quickstart keeps 1,000 rows:
            if "quickstart" in cmd:
                cmd = cmd.replace("build/attrib", os.path.abspath(self.a.attrib))
            r = self.sh(cmd)
            if r.returncode:
                raise SystemExit(f"FAIL: scratch setup `{cmd}` exited {r.returncode}:\n"
                                 f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
        self.have = attrib_commands(self.a.attrib)

    # --- shell -------------------------------------------------------------
    def shell_block(self, b, run):
        body = b.body
        if b.lang == "console":
            body = [l[2:] if l.startswith("$ ") else "" for l in body]
        cmds = split_commands(body)
        script = ["set -o pipefail"]
        plan = []
        for idx, (off, key, full) in enumerate(cmds):
            where = b.where(off)
            allow = ALLOW.get((b.doc, key))
            if allow:
                self.allow_used.add((b.doc, key))
                self.count("shell commands allow-listed")
                print(f"  allow {where}: {key}\n        ({allow[0]}; covered by {allow[1]})")
                continue
            missing = [c for c in re.findall(r"(?:^|[\s/\"'])attrib\s+([a-z][a-z-]*)", key)
                       if run and c not in self.have]
            if missing:
                self.fail(where, f"command missing: `attrib {missing[0]}` is not in "
                          f"`attrib --help` of {self.a.attrib} (merge the branch that adds it): {key}")
                continue
            plan.append((where, key))
            script.append(f"echo '@@ {idx}'")
            script.append(full)
            script.append(f"__rc=$?; if [ $__rc -ne 0 ]; then echo \"@@ failed {idx} $__rc\"; exit 1; fi")
        if not plan:
            return
        if not run:
            for where, key in plan:
                print(f"  run   {where}: {key}")
                self.count("shell commands run")
            return
        t0 = time.time()
        try:
            r = self.sh("\n".join(script) + "\n", timeout=self.a.timeout)
        except subprocess.TimeoutExpired:
            self.fail(b.where(), f"block did not finish in {self.a.timeout} s")
            return
        print(f"  block {b.where()}: {time.time() - t0:.1f} s")
        m = re.search(r"@@ failed (\d+) (\d+)", r.stdout)
        for idx, (off, key, full) in enumerate(cmds):
            if not any(k == key for _, k in plan):
                continue
            if m and int(m.group(1)) == idx:
                tail = (r.stdout.split(f"@@ {idx}\n", 1)[-1] + r.stderr)[-1500:]
                self.fail(b.where(off), f"`{key}` exited {m.group(2)}:\n{tail}")
                break
            self.count("shell commands run")
            print(f"  ok    {b.where(off)}: {key}")
        if r.returncode and not m:
            self.fail(b.where(), f"block exited {r.returncode}: {r.stderr[-1500:]}")

    # --- yaml --------------------------------------------------------------
    def yaml_block(self, b, run):
        text = "\n".join(b.body) + "\n"
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as e:
            self.fail(b.where(), f"yaml does not parse: {e}")
            return
        if not isinstance(parsed, dict):
            self.fail(b.where(), "yaml block is not a mapping (a job or a part of one)")
            return
        name = re.match(r"^#\s*(jobs/[\w.-]+\.yaml)\s*$", b.body[0]) if b.body else None
        if name:
            dest = os.path.join(self.scratch, name.group(1))
            repo = os.path.join(self.src, name.group(1))
            if os.path.exists(repo):
                if yaml.safe_load(open(repo, encoding="utf-8")) != parsed:
                    self.fail(b.where(), f"differs from the repository's {name.group(1)}")
            elif run:
                with open(dest, "w", encoding="utf-8") as f:
                    f.write(text)
        if b.doc == "docs/jobs.md" and self.jobs_doc:
            self.count("yaml blocks covered by test_jobs_doc")
            print(f"  test  {b.where()}: yaml ({', '.join(parsed)}) -> test_jobs_doc")
            return
        keys = set(parsed)
        whole = {"data", "model"} <= keys and keys & {"methods", "influence", "train"}
        if whole:
            job = text
        else:
            base = "influence.yaml" if "influence" in keys else "quickstart.yaml"
            job = drop_sections(open(os.path.join(self.src, "jobs", base), encoding="utf-8").read(),
                                keys) + "\n" + text
            if re.search(r"^\s*layer:", text, flags=re.M) and "model" not in keys:
                job = job.replace("models/mlp.h5", "models/cnn.h5")  # a layer: needs conv layers
        what = "yaml jobs validated" if whole else "yaml fragments validated in a job"
        if not run:
            print(f"  run   {b.where()}: attrib validate ({'job' if whole else 'fragment'})")
            self.count(what)
            return
        path = os.path.join(self.scratch, "docjobs",
                            f"{b.doc.replace('/', '_')}_{b.line}.yaml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(job)
        # validate is mostly MPI start-up: run them together at the end
        self.pending.append((b, whole, what, path))

    def validate_pending(self):
        def one(item):
            return item, self.sh(f"'{os.path.abspath(self.a.attrib)}' validate '{item[3]}'")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for (b, whole, what, path), r in pool.map(one, self.pending):
                kind = "job" if whole else "fragment"
                if r.returncode:
                    self.fail(b.where(), f"`attrib validate` of the {kind} ({path}) exited "
                              f"{r.returncode}: {(r.stdout + r.stderr)[-1500:]}")
                    continue
                self.count(what)
                print(f"  ok    {b.where()}: attrib validate ({kind})")

    # --- python, text ------------------------------------------------------
    def python_block(self, b):
        if (b.doc, b.tag) in self.coverage:
            self.count("python blocks run by a ctest entry")
            print(f"  test  {b.where()}: python{' ' + b.tag if b.tag else ''} -> run_doc_snippets")
            return
        allow = ALLOW_PYTHON.get((b.doc, b.tag))
        if allow:
            self.allow_used.add((b.doc, b.tag))
            self.count("python blocks allow-listed")
            print(f"  allow {b.where()}: python {b.tag} ({allow[0]}; covered by {allow[1]})")
            return
        self.fail(b.where(), f"```python{' ' + b.tag if b.tag else ''} block: no ctest entry runs "
                  f"tests/run_doc_snippets.py on {b.doc}{' --tag ' + b.tag if b.tag else ''}")

    def text_block(self, b):
        for k, line in enumerate(b.body):
            if COMMAND_LINE.match(line):
                self.fail(b.where(k), f"a command in a ```{b.lang} block (fence it ```sh so "
                          f"it runs, or allow-list it): {line.strip()}")
        self.count("text/output blocks (not examples)")

    def check_allow_tests(self):
        """Every covering test an allow-list names must exist."""
        for (doc, what), (why, cover) in list(ALLOW.items()) + list(ALLOW_PYTHON.items()):
            if cover.startswith("("):
                continue
            for name in re.findall(r"[a-z][a-z0-9_]+", cover.split("(")[0]):
                if not test_exists(self.tests, name):
                    self.fail(doc, f"allow-list entry `{what}` names test {name}, which no "
                              f"tests/*.cmake defines")

    def delegated_block(self, b, run):
        """A command block of a doc another test runs: check that test runs
        this doc, and that the attrib subcommands exist."""
        test = DELEGATED[b.doc]
        body = b.body
        if b.lang == "console":
            body = [l[2:] if l.startswith("$ ") else "" for l in body]
        args = self.tests.get(test)
        named = args is not None and (b.doc in args or any(
            b.doc in open(os.path.join(self.src, "tests", sc), encoding="utf-8").read()
            for sc in re.findall(r"tests/([\w.-]+\.(?:py|sh))", args)
            if os.path.exists(os.path.join(self.src, "tests", sc))))
        if not named:
            self.fail(b.where(), f"{b.doc} is delegated to ctest entry {test}, but no "
                      f"add_test(NAME {test} ...) runs {b.doc}")
            return
        for off, key, full in split_commands(body):
            missing = [c for c in re.findall(r"(?:^|[\s/\"'])attrib\s+([a-z][a-z-]*)", key)
                       if run and c not in self.have]
            if missing:
                self.fail(b.where(off), f"command missing: `attrib {missing[0]}` is not in "
                          f"`attrib --help` of {self.a.attrib}: {key}")
                continue
            self.count(f"shell commands run by another test")
            print(f"  test  {b.where(off)}: {key} -> {test}")

    def check(self, docs, run):
        self.check_allow_tests()
        for doc in docs:
            print(f"== {doc}")
            for b in parse_blocks(self.src, doc):
                if b.lang not in LANGS:
                    self.fail(b.where(), f"fence language '{b.lang}' is not one the checker "
                              f"knows ({', '.join(sorted(l or '(none)' for l in LANGS))})")
                elif b.lang in ("sh", "bash", "console") and b.doc in DELEGATED:
                    self.delegated_block(b, run)
                elif b.lang in ("sh", "bash", "console"):
                    self.shell_block(b, run)
                elif b.lang == "yaml":
                    self.yaml_block(b, run)
                elif b.lang == "python":
                    self.python_block(b)
                else:
                    self.text_block(b)
        if run:
            print("== yaml jobs and fragments (attrib validate)")
            self.validate_pending()
        for key in set(ALLOW) - self.allow_used:
            if key[0] in docs:
                self.fail(f"{key[0]}", f"ALLOW entry matches no command (stale?): {key[1]}")
        for key in set(ALLOW_PYTHON) - self.allow_used:
            if key[0] in docs:
                self.fail(key[0], f"ALLOW_PYTHON entry matches no block: python {key[1]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--attrib", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--scratch", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--timeout", type=int, default=120, help="seconds per shell block")
    p.add_argument("--list", action="store_true", help="classify only; run nothing")
    p.add_argument("docs", nargs="*")
    a = p.parse_args()
    c = Checker(a)
    docs = a.docs or ["README.md"] + sorted(
        "docs/" + n for n in os.listdir(os.path.join(c.src, "docs")) if n.endswith(".md"))
    if not a.list:
        c.setup()
    c.check(docs, not a.list)
    print("summary: " + "; ".join(f"{v} {k}" for k, v in sorted(c.counts.items())))
    if c.failures:
        print(f"FAIL: {len(c.failures)} example(s) neither passed nor covered:")
        for f in c.failures:
            print("  " + f.split("\n")[0])
        sys.exit(1)
    print("ok: every example in the docs is " + ("classified (--list: nothing was run)" if a.list
                                                  else "run or covered"))


if __name__ == "__main__":
    main()
