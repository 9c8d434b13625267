#!/usr/bin/env bash
# CLI behaviour: --version, --help, command help, validate, --dry-run.
# usage: check_cli.sh ATTRIB SRC_DIR DATA.h5 MODEL.h5 WORKDIR
set -uo pipefail
A=$1 SRC=$2 DATA=$3 MODEL=$4 W=$5
rm -rf "$W" && mkdir -p "$W"
fail=0
expect() { # expect DESCRIPTION WANT_CODE PATTERN -- command...
  local what=$1 code=$2 pat=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [[ $rc -ne $code ]] || ! grep -qE -- "$pat" <<<"$out"; then
    echo "FAIL $what: exit $rc (want $code), output:"; echo "$out" | head -20; fail=1
  else
    echo "ok   $what"
  fi
}
SETS=(--set "data.path=$DATA" --set "model.path=$MODEL")
expect "--version" 0 "^attrib [0-9]+\.[0-9]+\.[0-9]+" -- "$A" --version
expect "--help lists commands" 0 "run JOB.yaml.*" -- "$A" --help
expect "run --help" 0 "--dry-run" -- "$A" run --help
expect "train --help" 0 "usage: attrib train" -- "$A" train --help
expect "eval --help" 0 "usage: attrib eval" -- "$A" eval --help
expect "import --help" 0 "usage: attrib import" -- "$A" import --help
expect "validate --help" 0 "usage: attrib validate" -- "$A" validate --help
expect "render --help" 0 "usage: attrib render" -- "$A" render --help
expect "report --help" 0 "usage: attrib report" -- "$A" report --help
expect "no command" 2 "usage: attrib COMMAND" -- "$A"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$A" frobnicate
expect "validate quickstart" 0 "job is valid" -- "$A" validate "$SRC/jobs/quickstart.yaml" "${SETS[@]}" \
  --set "output.path=$W/never.h5"
expect "validate a training job" 0 "training job is valid: MLP with 2 hidden" -- \
  "$A" validate "$SRC/jobs/train_mlp.yaml" --set "data.path=$DATA" --set "model.path=$W/m.h5"
expect "validate a training job with a missing split" 2 "no split 'dev'" -- \
  "$A" validate "$SRC/jobs/train_mlp.yaml" --set "data.path=$DATA" --set train.eval_split=dev
expect "dry-run prints the plan" 0 "16 row blocks of 64 rows; 32 work units" -- \
  "$A" run "$SRC/jobs/quickstart.yaml" "${SETS[@]}" -o "$W/dry.h5" --dry-run
[[ -e "$W/dry.h5" || -e "$W/never.h5" ]] && { echo "FAIL dry-run/validate wrote a results file"; fail=1; }
expect "dry-run with --set" 0 "ig .*100 steps.*7 column blocks" -- \
  "$A" run "$SRC/jobs/quickstart.yaml" "${SETS[@]}" -o "$W/dry.h5" --dry-run \
  --set methods.ig.n_steps=100 --set run.step_block=16
expect "eval" 0 "accuracy [0-9.]+%, mean cross-entropy" -- "$A" eval --model "$MODEL" --data "$DATA" --rows 0:500
# ranks > units: 3 ranks, 2 units
expect "more ranks than units" 0 "wrote " -- mpirun -n 3 "$A" run "$SRC/jobs/quickstart.yaml" "${SETS[@]}" \
  -o "$W/tiny.h5" --set data.rows=0:10 --set run.block_rows=8 --set 'methods=[{name: s, kind: saliency}]'
exit $fail
