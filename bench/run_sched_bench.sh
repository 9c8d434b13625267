#!/usr/bin/env bash
# Costs of crash safety and of the dynamic scheduler, printed as ratios of
# wall times of `attrib run` on 2 ranks (best of 3 each):
#   shards_every_unit / default   run.checkpoint_interval 0 (a shard per unit,
#                                 fsync each) vs the default 60 s
#   dynamic / static              run.scheduler dynamic vs static
#   resume_assembly / full        rerun that only assembles (every unit in a
#                                 shard, output removed) vs a full run
# Workload: IG (50 Gauss-Legendre steps) + saliency on 2,000 test images,
# 64-row blocks. usage: bench/run_sched_bench.sh (after scripts/quickstart.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
J=(jobs/quickstart.yaml --set data.rows=0:2000
   --set 'methods=[{name: ig, kind: integrated_gradients, n_steps: 50}, {name: sal, kind: saliency}]')
best() { # best NAME ARGS...: best wall time of 3 runs
  local b=1e30
  for rep in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    mpirun -n 2 build/attrib run "${J[@]}" -o "$out/r.h5" --fresh "$@" > /dev/null 2>&1
    t1=$(date +%s.%N)
    b=$(python3 -c "print(min($b, $t1 - $t0))")
  done
  echo "$b"
}
default=$(best)
every=$(best --set run.checkpoint_interval=0)
dynamic=$(best --set run.scheduler=dynamic)
# assembly only: keep the shards of a finished run, drop its output, rerun
asm=1e30
for rep in 1 2 3; do
  mpirun -n 2 build/attrib run "${J[@]}" -o "$out/a.h5" --fresh --set output.keep_shards=true > /dev/null 2>&1
  rm "$out/a.h5"
  t0=$(date +%s.%N)
  mpirun -n 2 build/attrib run "${J[@]}" -o "$out/a.h5" > /dev/null 2>&1
  t1=$(date +%s.%N)
  asm=$(python3 -c "print(min($asm, $t1 - $t0))")
done
python3 - "$default" "$every" "$dynamic" "$asm" <<'PY'
import sys
d, e, y, a = (float(v) for v in sys.argv[1:5])
print(f"full_run_default_s                 {d:7.2f}")
print(f"ratio_shards_every_unit_to_default {e / d:7.3f}")
print(f"ratio_dynamic_to_static            {y / d:7.3f}")
print(f"ratio_resume_assembly_to_full      {a / d:7.3f}")
PY
