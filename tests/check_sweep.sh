#!/usr/bin/env bash
# Sweeps (docs/jobs.md "Sweeps", docs/format.md "Sweep results"): one case
# per call, each on tests/jobs/sweep.yaml (2 x 2 points).
# usage: check_sweep.sh CASE ATTRIB MPIEXEC SRC_DIR DATA.h5 MODEL.h5 WORKDIR
#   ranks   the one-shot sweep on 1, 2 and 3 ranks: the same bytes
#   points  each /points/<name> equals a standalone run with its --set
#           options (check_sweep.py); the docs' ```python sweep blocks run
#   slices  --points 0/2 and 1/2 + attrib merge = the one-shot sweep (a
#           stale point file of another plan is computed again); merge
#           with a point missing exits 2 naming it; a rerun computes nothing
#           with a value added, only the new points run and the file
#           equals a one-shot sweep of all 6
#   stop    a stop file after the first point, and run.max_wall_time used
#           up: exit 75, points kept, no OUT; reruns finish to the same bytes
#   dryrun  --dry-run lists every point and the totals, done or to do
set -uo pipefail
CASE=$1 A=$2 MPI=$3 SRC=$4 DATA=$5 MODEL=$6 W=$7/$1
J="$SRC/tests/jobs/sweep.yaml"
S=(--set "data.path=$DATA" --set "model.path=$MODEL")
PY=/usr/bin/python3
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail=0
bad() { echo "FAIL $*"; fail=1; }
run() { local n=$1; shift; "$MPI" -n "$n" "$A" "$@"; }
same() { "$PY" "$SRC/tests/check_same_results.py" "$@" || bad "check_same_results $*"; }
NAMES=("n_steps=4,quadrature=gauss_legendre" "n_steps=4,quadrature=riemann_middle"
       "n_steps=8,quadrature=gauss_legendre" "n_steps=8,quadrature=riemann_middle")

# the reference: one process, one command
run 1 run "$J" "${S[@]}" -o ref.h5 >ref.log 2>&1 || { cat ref.log; bad "sweep np1 exited $?"; }
[[ -f ref.h5 && ! -e ref.h5.sweep ]] || bad "ref.h5 missing or ref.h5.sweep/ left behind"

case $CASE in
ranks)
  for n in 2 3; do
    run "$n" run "$J" "${S[@]}" -o np$n.h5 >np$n.log 2>&1 || { cat np$n.log; bad "sweep np$n exited $?"; }
  done
  same ref.h5 np2.h5 np3.h5
  ;;
points)
  sed '/^sweep:/,$d' "$J" >alone.yaml # the job without its sweep
  : >points.txt
  i=0
  for st in 4 8; do
    for q in gauss_legendre riemann_middle; do
      run 1 run alone.yaml "${S[@]}" --set methods.ig.n_steps=$st --set methods.ig.quadrature=$q \
        -o alone$i.h5 >alone$i.log 2>&1 || { cat alone$i.log; bad "standalone point $i"; }
      printf '%s\t%s\t%s\t%s\n' "${NAMES[i]}" "alone$i.h5" "methods.ig.n_steps=$st" \
        "methods.ig.quadrature=$q" >>points.txt
      i=$((i + 1))
    done
  done
  "$PY" "$SRC/tests/check_sweep.py" ref.h5 points.txt || bad "check_sweep.py"
  "$PY" "$SRC/tests/run_doc_snippets.py" "$SRC/docs/format.md" --tag sweep \
    "results/sweep_ig.h5=$W/ref.h5" || bad "docs/format.md python sweep blocks"
  ;;
slices)
  # point 0 of another plan first: the slice must compute it again
  run 1 run "$J" "${S[@]}" -o sl.h5 --points 0 --set data.rows=0:40 >stale.log 2>&1 || bad "--points 0"
  run 2 run "$J" "${S[@]}" -o sl.h5 --points 0/2 >s0.log 2>&1 || { cat s0.log; bad "--points 0/2"; }
  grep -q "0000.h5 holds another plan; computing it again" s0.log || bad "stale point 0 not replaced"
  [[ -f sl.h5.sweep/0000.h5 && -f sl.h5.sweep/0002.h5 && ! -e sl.h5.sweep/0001.h5 && ! -e sl.h5 ]] ||
    bad "--points 0/2 did not write exactly points 0 and 2 (or merged)"
  run 1 merge "$J" "${S[@]}" -o sl.h5 >m1.log 2>&1
  rc=$?
  [[ $rc == 2 ]] || bad "merge with points 1 and 3 missing exited $rc, expected 2"
  if ! grep -q "1 (${NAMES[1]}" m1.log || ! grep -q "3 (${NAMES[3]}" m1.log; then
    cat m1.log; bad "merge does not name the missing points"
  fi
  [[ ! -e sl.h5 && ! -e sl.h5.tmp ]] || bad "a refused merge left a file"
  run 3 run "$J" "${S[@]}" -o sl.h5 --points 1/2 >s1.log 2>&1 || { cat s1.log; bad "--points 1/2"; }
  run 1 merge "$J" "${S[@]}" -o sl.h5 >m2.log 2>&1 || { cat m2.log; bad "merge exited $?"; }
  [[ ! -e sl.h5.sweep ]] || bad "merge left sl.h5.sweep/"
  same ref.h5 sl.h5
  run 2 run "$J" "${S[@]}" -o sl.h5 >again.log 2>&1 || bad "rerun of a finished sweep"
  grep -q "already holds this sweep" again.log || { cat again.log; bad "rerun recomputed"; }
  [[ $(grep -c "already in sl.h5; nothing to do" again.log) == 4 ]] || bad "rerun did not take 4 points from sl.h5"
  # one more value of n_steps: the 4 finished points come from sl.h5, only
  # the 2 new ones are computed, and the file equals a one-shot sweep of 6
  EXT=(--set "sweep={methods.ig.n_steps: [4, 8, 16], methods.ig.quadrature: [gauss_legendre, riemann_middle]}")
  run 2 run "$J" "${S[@]}" "${EXT[@]}" -o sl.h5 >ext.log 2>&1 || { cat ext.log; bad "extended sweep exited $?"; }
  [[ $(grep -c "already in sl.h5; nothing to do" ext.log) == 4 ]] || { cat ext.log; bad "extended sweep did not take 4 points from sl.h5"; }
  run 1 run "$J" "${S[@]}" "${EXT[@]}" -o ext_ref.h5 >ext_ref.log 2>&1 || bad "one-shot extended sweep"
  same ext_ref.h5 sl.h5
  ;;
stop)
  # touch the stop file once point 0 is done: the sweep stops at the next
  # unit boundary or before the next point
  (for _ in $(seq 1 3000); do [[ -f st.h5.sweep/0000.h5 ]] && { touch st.h5.stop; exit 0; }
     sleep 0.01; done) &
  watcher=$!
  run 2 run "$J" "${S[@]}" -o st.h5 >st1.log 2>&1
  rc=$?
  wait "$watcher"
  [[ $rc == 75 ]] || { cat st1.log; bad "stopped sweep exited $rc, expected 75"; }
  [[ -f st.h5.sweep/0000.h5 && ! -e st.h5 ]] || bad "after the stop: point 0 kept, no st.h5 expected"
  [[ ! -e st.h5.sweep/0003.h5 ]] || bad "the stop did not stop the sweep (point 3 done)"
  grep -q "rerun the same command" st1.log || bad "no resume advice"
  run 3 run "$J" "${S[@]}" -o st.h5 >st2.log 2>&1 || { cat st2.log; bad "rerun exited $?"; }
  grep -q "removing the stop file" st2.log || bad "the rerun did not remove the stop file"
  same ref.h5 st.h5
  # run.max_wall_time used up: exit 75 before the sweep is done, finished
  # points kept, no output; the rerun without the limit gives the same bytes
  run 2 run "$J" "${S[@]}" --set run.max_wall_time=0.001 -o wt.h5 >wt1.log 2>&1
  rc=$?
  [[ $rc == 75 ]] || { cat wt1.log; bad "sweep past max_wall_time exited $rc, expected 75"; }
  grep -q "max_wall_time" wt1.log || { cat wt1.log; bad "no max_wall_time message"; }
  [[ ! -e wt.h5 && ! -e wt.h5.sweep/0003.h5 ]] || bad "max_wall_time did not stop the sweep"
  run 2 run "$J" "${S[@]}" -o wt.h5 >wt2.log 2>&1 || { cat wt2.log; bad "rerun after max_wall_time exited $?"; }
  same ref.h5 wt.h5
  ;;
dryrun)
  run 2 run "$J" "${S[@]}" -o dr.h5 --dry-run >dr.log 2>&1 || { cat dr.log; bad "dry-run exited $?"; }
  [[ $(grep -c '^point ' dr.log) == 4 ]] || { cat dr.log; bad "dry-run does not list 4 points"; }
  for i in 0 1 2 3; do grep -q "^point 000$i ${NAMES[i]} " dr.log || bad "point $i not listed by name"; done
  grep -q "^total: 4 points (0 done, 4 to do)" dr.log || bad "dry-run totals"
  # passes: IG 4 steps = 4 passes per row, 8 steps = 8; saliency 1; 48 rows
  total=$(sed -n 's/^total: .* to do), \([0-9]*\) forward.*/\1/p' dr.log)
  [[ $total == $(( (4 + 1) * 48 * 2 + (8 + 1) * 48 * 2 )) ]] || bad "total passes $total"
  grep -q "memory per rank" dr.log || bad "no memory estimate"
  [[ ! -e dr.h5 && ! -e dr.h5.sweep ]] || bad "dry-run wrote something"
  run 1 run "$J" "${S[@]}" -o dr.h5 --points 2 >p2.log 2>&1 || bad "--points 2"
  run 1 run "$J" "${S[@]}" -o dr.h5 --dry-run >dr2.log 2>&1
  grep -q "^total: 4 points (1 done, 3 to do)" dr2.log || { cat dr2.log; bad "dry-run after point 2"; }
  grep -q "^point 0002 .* done$" dr2.log || bad "point 2 not shown done"
  # docs/jobs.md's dry-run example: the same point lines and totals
  run 1 run "$SRC/jobs/sweep_ig.yaml" "${S[@]}" --dry-run >ex.log 2>&1 || { cat ex.log; bad "jobs/sweep_ig.yaml dry-run"; }
  for pat in '^point 0000 ' '^total: '; do
    want=$(grep "$pat" "$SRC/docs/jobs.md")
    got=$(grep "$pat" ex.log)
    [[ -n $want && $want == "$got" ]] || bad "docs/jobs.md shows '$want', the dry-run prints '$got'"
  done
  # the plan print of a plain run gives the memory estimate too
  sed '/^sweep:/,$d' "$J" >alone.yaml
  run 1 run alone.yaml "${S[@]}" -o x.h5 --dry-run >plain.log 2>&1 || bad "plain dry-run"
  grep -q "^memory per rank: about " plain.log || { cat plain.log; bad "plain dry-run: no memory line"; }
  ;;
*) bad "unknown case $CASE" ;;
esac
(( fail )) && echo "FAIL sweep $CASE" || echo "ok   sweep $CASE"
exit $fail
