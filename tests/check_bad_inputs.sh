#!/usr/bin/env bash
# Bad job files and bad inputs each fail with exit 2, a message naming the
# problem, and no results file (nor a .partial) left behind.
# usage: check_bad_inputs.sh ATTRIB SRC_DIR DATA.h5 MODEL.h5 WORKDIR
set -uo pipefail
A=$1 SRC=$2 DATA=$3 MODEL=$4 W=$5
rm -rf "$W" && mkdir -p "$W"
fail=0
bad() { # bad DESCRIPTION PATTERN -- command...
  local what=$1 pat=$2; shift 3
  local out rc
  rm -f "$W/out.h5" "$W/out.h5.partial"
  out=$("$@" 2>&1); rc=$?
  if [[ $rc -ne 2 ]]; then echo "FAIL $what: exit $rc, want 2; output: $out"; fail=1; return; fi
  if ! grep -qF -- "$pat" <<<"$out"; then echo "FAIL $what: message lacks '$pat': $out"; fail=1; return; fi
  if [[ -e "$W/out.h5" || -e "$W/out.h5.partial" ]]; then echo "FAIL $what: left a results file"; fail=1; return; fi
  echo "ok   $what: $(head -n 1 <<<"$out")"
}
# 1. every file in tests/bad_jobs names its expected message on its first line
for f in "$SRC"/tests/bad_jobs/*.yaml; do
  want=$(sed -n '1s/^# expect: //p' "$f")
  [[ -n "$want" ]] || { echo "FAIL $f has no '# expect:' line"; fail=1; continue; }
  bad "validate $(basename "$f")" "$want" -- "$A" validate "$f"
  bad "run $(basename "$f")" "$want" -- "$A" run "$f" -o "$W/out.h5"
done
# 2. inputs that only the files can reveal
J="$SRC/jobs/quickstart.yaml"
S=(--set "data.path=$DATA" --set "model.path=$MODEL")
bad "missing job file" "cannot read job file" -- "$A" run "$W/nope.yaml" -o "$W/out.h5"
bad "missing data file" "$W/none.h5" -- "$A" run "$J" "${S[@]}" --set "data.path=$W/none.h5" -o "$W/out.h5"
bad "missing split" "no split 'validation'" -- "$A" run "$J" "${S[@]}" --set data.split=validation -o "$W/out.h5"
bad "rows outside the split" "outside split 'test'" -- "$A" run "$J" "${S[@]}" --set data.rows=9990:10010 -o "$W/out.h5"
bad "missing model file" "$W/none_model.h5" -- "$A" run "$J" "${S[@]}" --set "model.path=$W/none_model.h5" -o "$W/out.h5"
bad "target class beyond the model" "target class 12 does not exist" -- "$A" run "$J" "${S[@]}" --set methods.ig.target=12 -o "$W/out.h5"
bad "unknown --set key" "unknown key" -- "$A" run "$J" "${S[@]}" --set run.blocks=3 -o "$W/out.h5"
bad "--set without =" "expected section.key=value" -- "$A" run "$J" "${S[@]}" --set run.block_rows -o "$W/out.h5"
bad "unknown option" "unknown option '--frobnicate'" -- "$A" run "$J" --frobnicate
bad "not a dataset file" "$SRC/jobs/quickstart.yaml" -- "$A" run "$J" "${S[@]}" --set "data.path=$SRC/jobs/quickstart.yaml" -o "$W/out.h5"
# a model whose weights were changed after its hash was written
cp "$MODEL" "$W/tampered.h5"
/usr/bin/python3 - "$W/tampered.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f["state_dict/layers.0.weight"][0, 0] += 1.0
PY
bad "tampered model" "content_sha256 mismatch" -- "$A" run "$J" "${S[@]}" --set "model.path=$W/tampered.h5" -o "$W/out.h5"
# an existing results file is never overwritten unless asked
echo keep > "$W/exists.h5"
rm -f "$W/out.h5"
out=$("$A" run "$J" "${S[@]}" -o "$W/exists.h5" 2>&1); rc=$?
if [[ $rc -eq 2 ]] && grep -q "already exists" <<<"$out" && [[ $(cat "$W/exists.h5") == keep ]]; then
  echo "ok   existing output kept: $out"
else echo "FAIL existing output: exit $rc: $out"; fail=1; fi
exit $fail
