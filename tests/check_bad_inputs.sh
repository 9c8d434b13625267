#!/usr/bin/env bash
# Table-driven bad-input test (tests/bad_inputs.table; docs/robustness.md).
# Every row must: exit with code 2; print a message holding each of the row's
# fragments (the file, the field or dataset, what was expected); create,
# change or delete nothing (no OUT, no OUT.partial, no OUT.shards/, its input
# file and the row's directory untouched). `run` rows that write to $OUT run
# a second time with $OUT = an existing results file of another job and
# `--set output.overwrite=true`: that file must stay byte-identical.
# Rows are independent (each has its own directory $R) and run 4 at a time.
#
# usage: check_bad_inputs.sh ATTRIB SRC_DIR DATA.h5 MODEL.h5 WORKDIR [MPIEXEC]
#   env BAD_INPUTS_TABLE=file   another table (default SRC_DIR/tests/bad_inputs.table)
#   env BAD_INPUTS_ONLY=regex   run only the rows whose name matches
#   env BAD_INPUTS_JOBS=n       rows run at the same time (default 4)
set -uo pipefail
A=$1 SRC=$2 DATA=$3 MODEL=$4 W=$5 MPIEXEC=${6:-mpirun}
TABLE=${BAD_INPUTS_TABLE:-$SRC/tests/bad_inputs.table}
ONLY=${BAD_INPUTS_ONLY:-} JOBS=${BAD_INPUTS_JOBS:-4}
PY=/usr/bin/python3
rm -rf "$W" && mkdir -p "$W/in" "$W/rows"
W=$(cd "$W" && pwd)
BAD=$SRC/tests/bad_jobs J=$SRC/jobs/quickstart.yaml T=$SRC/jobs/train_mlp.yaml
S=(--set "data.path=$DATA" --set "model.path=$MODEL")
KEEP0=$W/keep.h5 # results of another job; each row gets its own copy
fail=0

# ---- read the table: name | setup | command | fragment | fragment ...
names=() setups=() cmds=() frags=()
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }
while IFS= read -r line || [[ -n $line ]]; do
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  IFS='|' read -r -a cols <<<"$line"
  if (( ${#cols[@]} < 4 )); then echo "FAIL table line has < 4 columns: $line"; fail=1; continue; fi
  name=$(trim "${cols[0]}")
  [[ $name =~ ^[A-Za-z0-9_]+$ ]] || { echo "FAIL bad row name '$name'"; fail=1; continue; }
  [[ -n $ONLY && ! $name =~ $ONLY ]] && continue
  for x in "${names[@]}"; do [[ $x == "$name" ]] && { echo "FAIL duplicate row name $name"; fail=1; }; done
  names+=("$name"); setups+=("$(trim "${cols[1]}")"); cmds+=("$(trim "${cols[2]}")")
  f=""
  for ((k = 3; k < ${#cols[@]}; k++)); do f+="$(trim "${cols[k]}")"$'\x1f'; done
  frags+=("$f")
done <"$TABLE"
echo "bad inputs: ${#names[@]} rows from $TABLE"

# every tests/bad_jobs file is used by some row
if [[ -z $ONLY ]]; then
  for f in "$BAD"/*.yaml; do
    b=$(basename "$f"); used=0
    for c in "${cmds[@]}"; do [[ $c == *"\$BAD/$b"* ]] && used=1; done
    (( used )) || { echo "FAIL tests/bad_jobs/$b is not used by any row of $TABLE"; fail=1; }
  done
fi
set -f # no globbing from here on: commands and fragments hold [ ] and *

# ---- setup: every row's recipe writes $W/in/<row name>
recipes=()
for i in "${!names[@]}"; do
  [[ ${setups[i]} == - ]] || recipes+=("${setups[i]}:$W/in/${names[i]}")
done
if (( ${#recipes[@]} )); then
  "$PY" "$SRC/tests/make_bad_inputs.py" "$DATA" "$MODEL" "$W/in" "${recipes[@]}" || exit 1
fi
out=$("$A" run "$J" "${S[@]}" --set data.rows=0:4 --set 'methods=[{name: s, kind: saliency}]' \
  -o "$KEEP0" 2>&1) || { echo "FAIL cannot make $KEEP0: $out"; exit 1; }

manifest() { # type, inode, size, mtime and path of everything under the arguments
  find "$@" -printf '%y %i %s %T@ %p\n' 2>/dev/null | LC_ALL=C sort -k5
}
digest() { [[ -f $1 ]] && sha256sum <"$1" || echo "-"; }
subst() { # $NAME in fragment text -> the row's values (longer names first)
  local s=$1
  s=${s//\$MODEL/$MODEL}; s=${s//\$DATA/$DATA}; s=${s//\$KEEP/$KEEP}; s=${s//\$OUT/$OUT}
  s=${s//\$BAD/$BAD}; s=${s//\$SRC/$SRC}; s=${s//\$IN/$IN}; s=${s//\$W/$W}
  s=${s//\$R/$R}; s=${s//\$J/$J}; s=${s//\$T/$T}
  printf '%s' "$s"
}

# run_case LABEL COMMAND FRAGMENTS: one execution and all of its checks
run_case() {
  local label=$1 cmd=$2 fr=$3 out rc why="" argv=() np=0 f a
  # shellcheck disable=SC2124 # the text "${S[@]}", expanded by the eval below
  cmd=${cmd//@S/\"\$\{S[@]\}\"}
  eval "argv=($cmd)" || { echo "FAIL $label: cannot parse command: $cmd"; return 1; }
  if [[ ${argv[0]} == np2 ]]; then np=2; argv=("${argv[@]:1}"); fi
  local before keep_before in_before
  before=$(manifest "$R" "$IN"); keep_before=$(digest "$KEEP"); in_before=$(digest "$IN")
  if (( np )); then
    out=$("$MPIEXEC" -n "$np" "$A" "${argv[@]}" 2>&1); rc=$?
  else
    out=$("$A" "${argv[@]}" 2>&1); rc=$?
  fi
  [[ $rc -eq 2 ]] || why+=" exit $rc, want 2;"
  local IFS=$'\x1f'
  for f in $fr; do
    [[ -z $f ]] && continue
    if [[ $f == @expect ]]; then # the "# expect:" line of the row's job file
      f=""
      for a in "${argv[@]}"; do
        [[ $a == *.yaml && -f $a ]] && { f=$(sed -n '1s/^# expect: //p' "$a"); break; }
      done
      [[ -n $f ]] || { why+=" no '# expect:' line in its job file;"; continue; }
    fi
    f=$(subst "$f")
    grep -qF -- "$f" <<<"$out" || why+=" message lacks '$f';"
  done
  unset IFS
  local after
  after=$(manifest "$R" "$IN")
  [[ $after == "$before" ]] ||
    why+=" files changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -4 | tr '\n' ' ');"
  [[ $(digest "$KEEP") == "$keep_before" ]] || why+=" $KEEP changed;"
  [[ $(digest "$IN") == "$in_before" ]] || why+=" $IN changed;"
  if [[ -n $why ]]; then
    echo "FAIL $label:$why"; echo "     command: attrib ${argv[*]}"
    echo "$out" | head -6 | sed 's/^/     | /'
    return 1
  fi
  echo "ok   $label: $(grep -m1 'error' <<<"$out" || head -n1 <<<"$out")"
}

# run_row I: the row in its own directory $R; its report goes to $R.log
run_row() {
  local name=${names[$1]} cmd=${cmds[$1]} fr=${frags[$1]} ok=1
  R=$W/rows/$name IN=$W/in/$name OUT=$W/rows/$name/out.h5 KEEP=$W/rows/$name/keep.h5
  mkdir -p "$R" && cp "$KEEP0" "$KEEP"
  run_case "$name" "$cmd" "$fr" || ok=0
  # mode B: the same failure with an existing results file at OUT and
  # overwrite=true leaves that file exactly as it was
  # shellcheck disable=SC2016 # the literal text $OUT
  if [[ $cmd =~ ^(np2[[:space:]]+)?run[[:space:]] && $cmd == *'$OUT'* ]]; then
    rm -rf "$OUT" "$OUT.partial" "$OUT.shards" && cp "$KEEP0" "$KEEP"
    OUT=$KEEP
    run_case "$name [existing output, overwrite=true]" "${cmd/run /run --set output.overwrite=true }" "$fr" || ok=0
  fi
  (( ok )) || touch "$R.failed"
}

in_before=$(manifest "$W/in"; digest "$DATA"; digest "$MODEL")
running=0
for i in "${!names[@]}"; do
  if (( running >= JOBS )); then wait -n; running=$((running - 1)); fi
  run_row "$i" >"$W/rows/${names[i]}.log" 2>&1 &
  running=$((running + 1))
done
wait
nfail=0 failed=()
for i in "${!names[@]}"; do
  cat "$W/rows/${names[i]}.log"
  [[ -e $W/rows/${names[i]}.failed ]] && { nfail=$((nfail + 1)); failed+=("${names[i]}"); }
done
in_after=$(manifest "$W/in"; digest "$DATA"; digest "$MODEL")
[[ $in_after == "$in_before" ]] || { echo "FAIL the input files changed"; fail=1; }
(( nfail )) && fail=1
echo "bad inputs: ${#names[@]} rows, $((${#names[@]} - nfail)) passed, $nfail failed${failed:+: ${failed[*]}}"
exit $fail
