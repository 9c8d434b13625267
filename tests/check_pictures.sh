#!/usr/bin/env bash
# docs/pictures.md end to end: run every `attrib` command of its sh blocks in
# a directory holding the results files the page names, then check each
# picture pixel by pixel (tests/check_render.py) and each report's links and
# numbers. With `chromium` as the 8th argument, also screenshot two reports
# in headless Chromium and check the screenshots are not blank (exit 77,
# skipped, when chromium is not installed).
#
# usage: check_pictures.sh ATTRIB SRC WORKDIR DATA.h5 QUICKSTART.h5 COMPARE.h5 INFLUENCE.h5 [chromium]
set -uo pipefail
A=$1 SRC=$2 W=$3 DATA=$4 QS=$5 CMP=$6 INFL=$7 MODE=${8:-commands}
PY=/usr/bin/python3 CHECK=$SRC/tests/check_render.py
fail=0
t0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

if [[ $MODE == chromium ]]; then
  CHROME=$(command -v chromium || command -v chromium-browser || true)
  [[ -n $CHROME ]] || { echo "SKIP: chromium is not installed (scripts/setup.sh --tests)"; exit 77; }
  [[ -f $W/report/index.html ]] || { echo "FAIL: run render_doc_commands first"; exit 1; }
  for d in report report-influence; do
    shot=$W/$d.screenshot.png
    rm -f "$shot"
    # root in CI: --no-sandbox; a profile of its own, no GPU, no first-run UI
    timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --no-first-run \
      --user-data-dir="$W/chromium-profile" --hide-scrollbars --window-size=1200,2000 \
      --screenshot="$shot" "file://$W/$d/index.html" >"$W/$d.chromium.log" 2>&1
    [[ -s $shot ]] || { echo "FAIL: chromium wrote no screenshot of $d"; tail -5 "$W/$d.chromium.log"; fail=1; continue; }
    "$PY" "$CHECK" blank "$shot" || fail=1
  done
  echo "chromium: $(since "$t0") s"
  exit $fail
fi

rm -rf "$W" && mkdir -p "$W/results" && cd "$W" || exit 1
ln -s "$QS" results/quickstart.h5
ln -s "$CMP" results/compare_methods.h5
ln -s "$INFL" results/influence.h5
"$PY" "$CHECK" sweep results/sweep.h5 "$QS" || exit 1

# every `attrib ...` line of the page's sh blocks, in order
mapfile -t cmds < <(awk '/^```sh/{on=1; next} /^```/{on=0} on && /^attrib /' "$SRC/docs/pictures.md")
(( ${#cmds[@]} >= 7 )) || { echo "FAIL: only ${#cmds[@]} commands found in docs/pictures.md"; exit 1; }
for c in "${cmds[@]}"; do
  read -r -a argv <<<"$c"
  s=$EPOCHREALTIME
  out=$("$A" "${argv[@]:1}" 2>&1); rc=$?
  printf '%-100s rc %d, %s s\n' "$c" "$rc" "$(since "$s")"
  [[ $rc -eq 0 ]] || { echo "FAIL: $c"; echo "$out" | head -5; fail=1; }
  grep -q warning <<<"$out" && { echo "FAIL: $c warned: $out"; fail=1; }
done

# the pictures those commands drew, against the results and the dataset
"$PY" "$CHECK" attr pictures/ig.png results/quickstart.h5 ig 0 8 4 4 "$DATA" sample || fail=1
"$PY" "$CHECK" attr pictures/kernel_shap_shared.png results/compare_methods.h5 kernel_shap 0 6 3 3 "$DATA" shared || fail=1
"$PY" "$CHECK" infl pictures/dot.png results/influence.h5 dot 0 4 4 "$DATA" 3 || fail=1
"$PY" "$CHECK" attr pictures/ig_n_steps16.png results/sweep.h5 ig 0 8 4 4 "$DATA" sample n_steps=16 || fail=1
# a sweep point draws exactly as the plain file it was copied from
cmp -s pictures/ig_n_steps16.png pictures/ig.png || { echo "FAIL: --point n_steps=16 differs from the plain file"; fail=1; }
"$PY" "$CHECK" report report results/compare_methods.h5 || fail=1
"$PY" "$CHECK" report report-influence results/influence.h5 || fail=1
"$PY" "$CHECK" report report-sweep results/sweep.h5 || fail=1
echo "pictures: $(since "$t0") s"
exit $fail
