#!/usr/bin/env bash
# Interrupted runs resume to the same bytes as an uninterrupted run.
# usage: check_resume.sh ATTRIB MPIEXEC SRC_DIR DATA.h5 MODEL.h5 WORKDIR
# Each case interrupts a 2-rank run of tests/jobs/resume.yaml once some
# shards exist — stop file, SIGUSR1 to mpirun, SIGTERM to the ranks (what
# srun and SLURM do), run.max_wall_time, SIGKILL of one rank — checks that it
# ended the way it should, then reruns it with another rank count and
# scheduler and compares every dataset with the reference. Then the refusals:
# another plan over the shards, another job's results at the output path.
set -uo pipefail
A=$1 MPI=$2 SRC=$3 DATA=$4 MODEL=$5 W=$6
J="$SRC/tests/jobs/resume.yaml"
S=(--set "data.path=$DATA" --set "model.path=$MODEL")
PY=/usr/bin/python3
rm -rf "$W" && mkdir -p "$W" && cd "$W" || exit 1
fail=0
say() { echo "$*"; }
bad() { echo "FAIL $*"; fail=1; }

mpirun_attrib() { local n=$1; shift; "$MPI" -n "$n" "$A" "$@"; }

# wait until DIR holds at least N shard files (or 60 s pass)
wait_shards() {
  local dir=$1 n=$2 t=0
  while (( $(ls "$dir" 2>/dev/null | grep -c '^a.*\.h5$') < n )); do
    sleep 0.05; t=$((t + 1))
    (( t > 1200 )) && { echo "timeout waiting for $n shards in $dir"; return 1; }
  done
  return 0
}

same() { # same REF OUT: every dataset identical
  "$PY" "$SRC/tests/check_same_results.py" "$1" "$2" > same.log 2>&1 || { cat same.log; return 1; }
}

say "reference: uninterrupted, 2 ranks, static"
mpirun_attrib 2 run "$J" "${S[@]}" -o ref.h5 > ref.log 2>&1 || { cat ref.log; exit 1; }
units=$(grep -o '= [0-9]* units' ref.log | grep -o '[0-9]*' | head -1)
say "  $units units"

# interrupt CASE HOW: start a run to OUT, interrupt it with HOW once 5 shards
# exist; leaves rc and the log in $CASE.log
interrupt() {
  local name=$1 how=$2; shift 2
  local out="$name.h5"
  rc=-1 elapsed=0
  local np=2
  [[ $how == wall ]] && np=1
  "$MPI" -n $np "$A" run "$J" "${S[@]}" -o "$out" "$@" > "$name.log" 2>&1 &
  local pid=$!   # mpirun itself (a simple command is exec'd)
  if [[ $how != wall ]]; then
    wait_shards "$out.shards" 5 || { pkill -KILL -P $pid; wait $pid; return 1; }
  fi
  local t0; t0=$(date +%s.%N)
  case $how in
    stopfile) touch "$out.stop" ;;
    usr1) kill -USR1 $pid ;;
    term_ranks) pkill -TERM -P $pid ;;
    kill_rank) pkill -KILL -n -P $pid ;;   # the newest child: rank 1
    wall) ;;
  esac
  wait $pid
  rc=$?
  elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
}

resume_and_compare() { # NAME NP SCHED
  local name=$1 np=$2 sched=$3
  [[ -e "$name.h5" ]] && { bad "$name: a results file exists after the interruption"; return; }
  [[ -d "$name.h5.shards" ]] || { bad "$name: no shard directory after the interruption"; return; }
  local done_before; done_before=$(ls "$name.h5.shards" | grep -c '^a.*\.h5$')
  mpirun_attrib "$np" run "$J" "${S[@]}" -o "$name.h5" --set run.scheduler="$sched" \
    > "$name.resume.log" 2>&1
  local r=$?
  if [[ $r -ne 0 ]]; then bad "$name: resume exit $r"; tail -5 "$name.resume.log"; return; fi
  grep -q "resumed: [1-9][0-9]* of $units units were done" "$name.resume.log" ||
    { bad "$name: the rerun did not resume"; tail -5 "$name.resume.log"; return; }
  same ref.h5 "$name.h5" || { bad "$name: resumed results differ from the reference"; return; }
  [[ -e "$name.h5.shards" ]] && { bad "$name: shard directory left after assembly"; return; }
  say "ok   $name: $done_before shards kept, resumed on $np rank(s) ($sched), identical to the reference"
}

say "stop file"
interrupt stopfile stopfile
if [[ $rc -eq 75 ]] && grep -q "stopped early: the stop file appeared" stopfile.log; then
  "$A" run "$J" "${S[@]}" -o stopfile.h5 --dry-run > dry.log 2>&1
  grep -q "resume: [1-9][0-9]* of $units units are done in stopfile.h5.shards/" dry.log ||
    { bad "--dry-run does not report the done units"; cat dry.log; }
  resume_and_compare stopfile 3 dynamic
else bad "stop file: exit $rc, want 75"; tail -5 stopfile.log; fi

say "SIGUSR1 to mpirun (forwarded to the ranks)"
interrupt usr1 usr1
if [[ $rc -eq 75 ]] && grep -q "stopped early: a stop signal" usr1.log; then
  resume_and_compare usr1 1 static
else bad "SIGUSR1: exit $rc, want 75"; tail -5 usr1.log; fi

say "SIGTERM to every rank (as srun and slurmstepd deliver it)"
interrupt term term_ranks
# mpirun itself reports 1 when its children were signalled; the ranks say 75
if grep -q "stopped early: a stop signal" term.log; then
  resume_and_compare term 2 dynamic
else bad "SIGTERM: exit $rc"; tail -5 term.log; fi

say "run.max_wall_time"
# The limit is half of what the same run takes uninterrupted on 1 rank
# (measured here, startup included), so some units finish before it and the
# run stops well before its end, on a quiet machine or a busy one. (Half the
# 2-rank reference was not enough once IG got fast: start-up and assembly,
# which do not halve with ranks, now weigh as much as the compute.)
t0=$(date +%s.%N)
mpirun_attrib 1 run "$J" "${S[@]}" -o ref1.h5 > ref1.log 2>&1 || { cat ref1.log; exit 1; }
t_ref1=$(echo "$(date +%s.%N) - $t0" | bc)
wall=$(echo "w = $t_ref1 * 0.5; if (w < 2) w = 2; w" | bc)
interrupt wall wall --set run.max_wall_time="$wall"
if [[ $rc -eq 75 ]] && grep -q "stopped early: run.max_wall_time reached" wall.log &&
   (( $(echo "$elapsed < $wall + 5" | bc) )); then
  say "     (max_wall_time $wall s: ended after $elapsed s; uninterrupted on 1 rank: $t_ref1 s)"
  resume_and_compare wall 2 static
else bad "max_wall_time $wall s: exit $rc after $elapsed s, want 75 before the limit"; tail -5 wall.log; fi

say "one rank killed (SIGKILL): the other must not hang"
interrupt killed kill_rank
if [[ $rc -ne 0 ]] && (( $(echo "$elapsed < 10" | bc) )); then
  say "ok   killed: the run ended ${elapsed} s after rank 1 died (exit $rc)"
  resume_and_compare killed 3 static
else bad "rank death: exit $rc after ${elapsed} s (want non-zero within 10 s)"; tail -5 killed.log; fi

say "refusals"
interrupt plan stopfile
cp -r plan.h5.shards before.shards
mpirun_attrib 2 run "$J" "${S[@]}" -o plan.h5 --set methods.ig.n_steps=500 > plan2.log 2>&1
r=$?
if [[ $r -eq 2 ]] && grep -q "holds finished units of a different plan (.*methods.ig.n_steps: 512 -> 500" plan2.log &&
   diff -r before.shards plan.h5.shards > /dev/null; then
  say "ok   another plan over the shards: $(head -c 200 plan2.log)..."
else bad "another plan: exit $r"; cat plan2.log; fi
mpirun_attrib 2 run "$J" "${S[@]}" -o plan.h5 --set methods.ig.n_steps=500 --fresh > plan3.log 2>&1
r=$?
if [[ $r -eq 0 ]] && ! grep -q "resumed:" plan3.log; then say "ok   --fresh starts over"
else bad "--fresh: exit $r"; tail -3 plan3.log; fi

sum=$(md5sum ref.h5)
mpirun_attrib 2 run "$J" "${S[@]}" -o ref.h5 > again.log 2>&1
r=$?
if [[ $r -eq 0 ]] && grep -q "already holds this job's results" again.log && [[ $(md5sum ref.h5) == "$sum" ]]; then
  say "ok   a complete results file of the same job: nothing to do, file untouched"
else bad "rerun of a complete job: exit $r"; cat again.log; fi
mpirun_attrib 2 run "$J" "${S[@]}" -o ref.h5 --set methods.ig.n_steps=500 > other.log 2>&1
r=$?
if [[ $r -eq 2 ]] && grep -q "already exists and holds the results of another job (methods.ig.n_steps: 512 -> 500" other.log &&
   [[ $(md5sum ref.h5) == "$sum" ]] && [[ ! -e ref.h5.shards ]]; then
  say "ok   another job's results at the output path: refused, untouched"
else bad "another job's results: exit $r"; cat other.log; fi

exit $fail
