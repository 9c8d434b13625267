#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions are called from traps and a dispatch
# SLURM integration tests: submit the slurm/ templates to a real one-node
# cluster started here (tests/slurm/cluster.sh) and check what comes out.
#
#   run_case.sh CASE ATTRIB SRC_DIR DATA.h5 MODEL.h5 WORKDIR
#
# CASE:
#   single          slurm/attrib.sbatch, 2 ranks, with srun and with mpirun:
#                   COMPLETED and byte-identical to a plain mpirun run; a bad
#                   job ends FAILED with exit code 2; a rank that dies ends
#                   the job at once (--kill-on-bad-exit).
#   array           slurm/attrib-array.sbatch, 3 array tasks from a list file
#                   (one line with a quoted override): all COMPLETED, each
#                   equal to a plain run of its line.
#   sweep           slurm/attrib-sweep.sbatch: a 4-point sweep job file
#                   (tests/jobs/sweep.yaml) over an array of 2 tasks, then
#                   the --merge mode as a job with --dependency=afterok:
#                   all COMPLETED, the merged file equal to a plain one-shot
#                   `attrib run` of the sweep, OUT.sweep/ removed.
#   requeue         slurm/attrib-requeue.sbatch under a real time limit
#                   (--time=1 --signal=B:USR1@55): signalled mid-run, attrib
#                   exits 75, the job requeues itself (restarts >= 1), ends
#                   COMPLETED, and equals an uninterrupted run.
#   requeue_mpirun  the same template with ATTRIB_LAUNCHER=mpirun,
#                   ATTRIB_STOP_VIA=signal and the dynamic scheduler, the USR1
#                   sent by scancel --batch --signal=USR1 mid-run; then a stop
#                   file made by the user: FAILED with 75, not requeued, and
#                   the same sbatch again resumes and completes.
#
# Exit 0 = pass, 1 = fail, 77 = skipped (no SLURM daemons possible here; the
# reason is printed). Daemons are stopped by PID on every exit (trap).
# WORKDIR keeps the jobs' logs and results, and cluster-logs/ on failure.
set -uo pipefail

case_=${1:?usage: run_case.sh CASE ATTRIB SRC_DIR DATA.h5 MODEL.h5 WORKDIR}
ATTRIB=$(realpath "${2:?}")
SRC=$(realpath "${3:?}")
DATA=$(realpath "${4:?}")
MODEL=$(realpath "${5:?}")
WORK=$(realpath -m "${6:?}")
PY=/usr/bin/python3
SAME=$SRC/tests/check_same_results.py
export ATTRIB

# shellcheck source=tests/slurm/cluster.sh
source "$SRC/tests/slurm/cluster.sh"

T0=$(date +%s)
say() { echo "[$(($(date +%s) - T0))s] $*"; }
failures=0
fail() {
  say "FAIL: $*"
  failures=$((failures + 1))
}

CLUSTER_TMP=
finish() {
  local rc=$?
  trap - EXIT INT TERM
  cluster_stop
  if [[ -n "$CLUSTER_TMP" && -d "$CLUSTER_TMP" ]]; then
    if ((rc != 0 && rc != 77)); then
      rm -rf "$WORK/cluster-logs" && cp -r "$CLUSTER_TMP/c/log" "$WORK/cluster-logs" 2>/dev/null &&
        say "daemon logs kept in $WORK/cluster-logs"
    fi
    rm -rf "$CLUSTER_TMP"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'say "interrupted"; exit 1' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1
# A short path: the munge socket must fit in sockaddr_un (108 bytes).
CLUSTER_TMP=$(mktemp -d /tmp/attrib-slurm.XXXXXX)
# The registry of daemon PIDs lives beside WORKDIR, which is wiped: if a run
# is killed with SIGKILL, the next one stops what it left.
cluster_start "$CLUSTER_TMP/c" "$WORK.daemons" || exit $?

# As root OpenMPI needs these; sbatch passes the environment to the jobs.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1

SETS=(--set "data.path=$DATA" --set "model.path=$MODEL")
QS=$SRC/jobs/quickstart.yaml

# ------------------------------------------------------------------ helpers

# job_field ID FIELD: FIELD of the job's record (first record for arrays).
job_field() {
  scontrol show job -o "$1" 2>/dev/null | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# wait_job ID SECONDS: poll until every record of ID (all tasks of an array)
# is in a final state. Requeued jobs go back to PENDING and are waited for.
# Returns 1 on timeout (after printing the records).
wait_job() {
  local id=$1 limit=$2 start states
  start=$(date +%s)
  while :; do
    states=$(scontrol show job -o "$id" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p')
    if [[ -n "$states" ]] &&
      ! grep -q -v -x -E 'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED' <<<"$states"; then
      return 0
    fi
    if (($(date +%s) - start > limit)); then
      say "job $id not finished after ${limit}s:"
      scontrol show job "$id"
      scancel "$id"
      return 1
    fi
    sleep 1
  done
}

# expect_job ID STATE EXITCODE LOG: the job ended in STATE with EXITCODE
# (scontrol's "code:signal"); on a mismatch show its log.
expect_job() {
  local st ec
  st=$(job_field "$1" JobState)
  ec=$(job_field "$1" ExitCode)
  if [[ "$st" == "$2" && "$ec" == "$3" ]]; then
    say "ok: job $1 $st, exit code $ec"
    return 0
  fi
  fail "job $1: $st exit code $ec, expected $2 $3; its log $4:"
  sed 's/^/    /' "$4"
  return 1
}

# same A B: B's datasets equal A's (tests/check_same_results.py).
same() {
  if "$PY" "$SAME" "$1" "$2" | sed 's/^/    /'; then
    say "ok: $2 equals $1"
  else
    fail "$2 differs from $1"
  fi
}

# calibrate SECONDS: "rows steps" such that IG on 2 ranks takes about
# SECONDS on this machine now: rows (a multiple of 64) up to the split's
# 10,000 at 1000 steps, then more steps (IG's affine-head reuse made 10,000
# rows x 1000 steps a 20-second job, too short to be stopped twice).
calibrate() {
  local t0 t1 out took
  t0=$(date +%s.%N)
  mpirun -n 2 "$ATTRIB" run "$QS" "${SETS[@]}" --set data.rows=0:256 \
    --set methods.ig.n_steps=1000 -o calib.h5 >calib.log 2>&1 || {
    cat calib.log >&2
    return 1
  }
  t1=$(date +%s.%N)
  read -r out took < <("$PY" -c "t = $t1 - $t0; r = 256 * $1 / max(t - 0.5, 0.2)
rows = min(10000, max(512, int(r) // 64 * 64))
steps = min(100000, max(1000, int(1000 * r / rows) // 100 * 100))
print(f'{rows}:{steps}', '%.1f' % t)")
  say "calibration: 256 rows x 1000 steps on 2 ranks in $took s -> ${out%:*} rows x ${out#*:} steps for ~$1 s" >&2
  echo "${out%:*} ${out#*:}"
}

# ------------------------------------------------------------------- cases

case_single() {
  local job=$SRC/tests/jobs/e2e.yaml t a b bad dead
  say "reference: plain mpirun -n 2"
  mpirun -n 2 "$ATTRIB" run "$job" "${SETS[@]}" -o ref.h5 >ref.log 2>&1 || {
    cat ref.log
    fail "reference run"
    return
  }
  t=$SRC/slurm/attrib.sbatch
  a=$(sbatch --parsable --output=srun.log "$t" "$job" srun.h5 "${SETS[@]}") || { fail "sbatch"; return; }
  b=$(ATTRIB_LAUNCHER=mpirun sbatch --parsable --output=mpirun.log "$t" "$job" mpirun.h5 "${SETS[@]}")
  bad=$(sbatch --parsable --output=bad.log "$t" "$job" bad.h5 "${SETS[@]}" --set run.block_rows=0)
  # A rank that dies before MPI_Init: without --kill-on-bad-exit the other
  # rank would wait for it in MPI_Init until the time limit.
  cat >die.sh <<EOF
#!/bin/sh
if [ "\$SLURM_PROCID" = 1 ]; then exit 9; fi
exec "$ATTRIB" "\$@"
EOF
  chmod +x die.sh
  dead=$(ATTRIB=$WORK/die.sh sbatch --parsable --time=5 --output=dead.log "$t" "$job" dead.h5 "${SETS[@]}")
  say "submitted: srun $a, mpirun $b, bad input $bad, dying rank $dead"
  wait_job "$a" 120 && expect_job "$a" COMPLETED 0:0 srun.log && same ref.h5 srun.h5
  wait_job "$b" 120 && expect_job "$b" COMPLETED 0:0 mpirun.log && same ref.h5 mpirun.h5
  wait_job "$bad" 60 && expect_job "$bad" FAILED 2:0 bad.log
  [[ ! -e bad.h5 ]] || fail "bad input left bad.h5"
  # srun reports rank 0, which it terminated, not the dead rank: 143 = SIGTERM.
  if wait_job "$dead" 60; then
    local st rt
    st=$(job_field "$dead" JobState)
    rt=$(job_field "$dead" RunTime)
    if [[ "$st" == FAILED && "$rt" < "00:00:30" ]]; then
      say "ok: job $dead with a dead rank: FAILED after $rt, exit code $(job_field "$dead" ExitCode)"
    else
      fail "job $dead with a dead rank: $st after $rt, expected FAILED at once"
      sed 's/^/    /' dead.log
    fi
  fi
  grep -q 'attrib: done' srun.log || fail "srun.log has no 'attrib: done'"
}

case_array() {
  local t=$SRC/slurm/attrib-array.sbatch id i
  cat >sweep.txt <<EOF
# two quadratures and a row slice; line 3 has a quoted override
$QS --set data.path=$DATA --set model.path=$MODEL --set data.rows=0:200 --set methods.ig.n_steps=16

$QS --set data.path=$DATA --set model.path=$MODEL --set data.rows=0:200 --set methods.ig.n_steps=8 --set methods.ig.quadrature=riemann_trapezoid
$QS --set data.path=$DATA --set model.path=$MODEL --set data.rows=200:300 --set 'methods.sal={name: sal, kind: saliency, abs: false}'
EOF
  # --ntasks=1: the three tasks share the node's 2 CPUs, two at a time.
  id=$(sbatch --parsable --array=1-3 --ntasks=1 --output=sweep-%a.log "$t" sweep.txt "$WORK/out/sweep") ||
    { fail "sbatch"; return; }
  say "submitted array job $id (3 tasks)"
  # Plain runs of the same lines, meanwhile, to compare with.
  if ! { "$ATTRIB" run "$QS" "${SETS[@]}" --set data.rows=0:200 --set methods.ig.n_steps=16 \
    -o ref-1.h5 && "$ATTRIB" run "$QS" "${SETS[@]}" --set data.rows=0:200 \
    --set methods.ig.n_steps=8 --set methods.ig.quadrature=riemann_trapezoid -o ref-2.h5 &&
    "$ATTRIB" run "$QS" "${SETS[@]}" --set data.rows=200:300 \
      --set 'methods.sal={name: sal, kind: saliency, abs: false}' -o ref-3.h5; } >ref.log 2>&1; then
    cat ref.log
    fail "reference runs"
    return
  fi
  wait_job "$id" 180 || { fail "array job did not finish"; return; }
  for i in 1 2 3; do
    expect_job "${id}_$i" COMPLETED 0:0 "sweep-$i.log" && same "ref-$i.h5" "out/sweep-$i.h5"
  done
}

case_sweep() {
  local t=$SRC/slurm/attrib-sweep.sbatch job=$SRC/tests/jobs/sweep.yaml id m i
  # --ntasks=1: the two tasks share the node's 2 CPUs
  id=$(sbatch --parsable --array=0-1 --ntasks=1 --output=sweep-%a.log "$t" "$job" "${SETS[@]}" \
    -o "$WORK/out/sw.h5") || { fail "sbatch"; return; }
  m=$(sbatch --parsable --dependency=afterok:"$id" --ntasks=1 --output=merge.log "$t" --merge \
    "$job" "${SETS[@]}" -o "$WORK/out/sw.h5") || { fail "sbatch --merge"; return; }
  say "submitted array job $id (2 tasks) and merge job $m after it"
  if ! "$ATTRIB" run "$job" "${SETS[@]}" -o ref.h5 >ref.log 2>&1; then
    cat ref.log
    fail "reference run"
    return
  fi
  wait_job "$id" 180 || { fail "array job did not finish"; return; }
  for i in 0 1; do expect_job "${id}_$i" COMPLETED 0:0 "sweep-$i.log"; done
  wait_job "$m" 120 || { fail "merge job did not finish"; return; }
  expect_job "$m" COMPLETED 0:0 merge.log && same ref.h5 out/sw.h5
  [[ ! -e out/sw.h5.sweep ]] || fail "the merge left out/sw.h5.sweep/"
}

# requeue_run LAUNCHER STOP_VIA TARGET_S SBATCH_OPTS...: the requeue template
# on a job calibrated to TARGET_S seconds (its --set options are left in JOB
# and the reference in ref.h5; SLURM_ONLY adds options the reference run does
# not get); the caller's stop_now (if any) runs once the job has started.
JOB=()
SLURM_ONLY=()
requeue_run() {
  local launcher=$1 via=$2 target=$3 cal rows steps id start runs n0 n1 nu
  shift 3
  cal=$(calibrate "$target") || { fail "calibration run"; return 1; }
  read -r rows steps <<<"$cal"
  JOB=(--set data.rows=0:"$rows" --set methods.ig.n_steps="$steps")
  local job=("${JOB[@]}")
  say "reference: uninterrupted mpirun -n 2, $rows rows x $steps steps"
  start=$(date +%s)
  mpirun -n 2 "$ATTRIB" run "$QS" "${SETS[@]}" "${job[@]}" -o ref.h5 >ref.log 2>&1 ||
    { cat ref.log; fail "reference run"; return 1; }
  say "reference took $(($(date +%s) - start)) s"
  id=$(ATTRIB_LAUNCHER=$launcher ATTRIB_STOP_VIA=$via sbatch --parsable --output=requeue.log "$@" \
    "$SRC/slurm/attrib-requeue.sbatch" "$QS" out.h5 "${SETS[@]}" "${job[@]}" "${SLURM_ONLY[@]}") ||
    { fail "sbatch"; return 1; }
  say "submitted job $id: sbatch $* slurm/attrib-requeue.sbatch ... ${SLURM_ONLY[*]}" \
    "(launcher $launcher, stop via $via)"
  if declare -F stop_now >/dev/null; then stop_now "$id"; fi
  wait_job "$id" 420 || { fail "job $id did not finish"; return 1; }
  say "job $id: $(scontrol show job -o "$id" | tr ' ' '\n' | grep -E '^(JobState|ExitCode|Restarts|RunTime)=' | tr '\n' ' ')"
  expect_job "$id" COMPLETED 0:0 requeue.log || return 1
  runs=$(job_field "$id" Restarts)
  ((runs >= 1)) || fail "job $id was not requeued (Restarts=$runs)"
  echo "---- requeue.log (template and attrib lines)"
  grep -E 'attrib-requeue:|stopped early|resuming|already holds|wrote |total' requeue.log | sed 's/^/    /'
  # Every stop came mid-run (some but not all units done; the first may come
  # before any unit is done), and at least one after some units.
  local stops
  stops=$(sed -n 's/.*stopped early: .*\. \([0-9]*\) of \([0-9]*\) units are done.*/\1 \2/p' requeue.log)
  if [[ -z "$stops" ]]; then
    fail "requeue.log has no 'stopped early' line"
  else
    while read -r n0 nu; do
      ((n0 < nu)) || fail "a stop after all units were done: $n0 of $nu"
    done <<<"$stops"
    awk '$1 > 0 { ok = 1 } END { exit !ok }' <<<"$stops" || fail "no stop after some units were done"
    say "ok: stops after $(awk '{ printf "%s%s", sep, $1; sep = ", " } END { print " of " $2 }' <<<"$stops") units"
  fi
  grep -q 'requeueing job' requeue.log || fail "the template did not requeue"
  n1=$(grep -c 'restart [1-9][0-9]*: .* -> out.h5' requeue.log)
  ((n1 >= 1)) || fail "no restarted run in requeue.log (SLURM_RESTART_COUNT)"
  grep -q 'done: out.h5 is complete' requeue.log || fail "requeue.log does not end with 'done'"
  [[ ! -e out.h5.stop ]] || fail "out.h5.stop left behind"
  same ref.h5 out.h5
}

case_requeue() {
  # --time=1 is SLURM's minimum. The USR1 comes at the first 30-s time-limit
  # check after 60-55 = 5 s, i.e. 5..35 s after the start; the job needs ~50 s.
  requeue_run srun file 50 --time=1 --signal=B:USR1@55
}

case_requeue_mpirun() {
  stop_now() {
    local id=$1 t=0
    while [[ "$(job_field "$id" JobState)" != RUNNING ]]; do
      sleep 1
      t=$((t + 1))
      ((t < 60)) || return
    done
    sleep 8
    say "scancel --batch --signal=USR1 $id (8 s after its start)"
    scancel --batch --signal=USR1 "$id"
  }
  # The dynamic scheduler here, static in the reference: the same bytes.
  SLURM_ONLY=(--set run.scheduler=dynamic)
  requeue_run mpirun signal 25 --time=10 || return

  # A stop file created by the user: attrib stops, the job is not requeued and
  # ends FAILED with exit code 75; submitting the same command again resumes.
  local id t=0 args
  args=("$SRC/slurm/attrib-requeue.sbatch" "$QS" user.h5 "${SETS[@]}" "${JOB[@]}")
  id=$(ATTRIB_LAUNCHER=mpirun sbatch --parsable --output=user.log --time=10 "${args[@]}") ||
    { fail "sbatch"; return; }
  while [[ "$(job_field "$id" JobState)" != RUNNING ]] && ((t++ < 60)); do sleep 1; done
  sleep 6
  say "touch user.h5.stop (job $id, 6 s after its start)"
  touch user.h5.stop
  wait_job "$id" 120 || { fail "job $id did not finish"; return; }
  expect_job "$id" FAILED 75:0 user.log
  [[ "$(job_field "$id" Restarts)" == 0 ]] || fail "job $id was requeued after a user stop"
  grep -q 'appeared; not requeued' user.log || fail "user.log: no 'not requeued' line"
  id=$(ATTRIB_LAUNCHER=mpirun sbatch --parsable --output=user2.log --time=10 "${args[@]}") ||
    { fail "sbatch"; return; }
  say "submitted the same command again: job $id"
  wait_job "$id" 180 || { fail "job $id did not finish"; return; }
  expect_job "$id" COMPLETED 0:0 user2.log
  grep -q 'resuming: [1-9][0-9]* of' user2.log || fail "user2.log: the resubmitted job did not resume"
  same ref.h5 user.h5
}

case "$case_" in
  single | array | sweep | requeue | requeue_mpirun) "case_$case_" ;;
  *) echo "unknown case $case_" >&2; exit 2 ;;
esac
if ((failures)); then
  say "$case_: $failures failure(s)"
  exit 1
fi
say "$case_: all checks passed"
exit 0
