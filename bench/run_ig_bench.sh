#!/usr/bin/env bash
# IG benchmark of issue #2, printed as ratios in one run:
#   attrib engine on 1 core vs SGEMM peak (build/bench/ig_bench),
#   attrib run end-to-end on 2 MPI ranks (1,000 test images, 50 GL steps),
#   plain PyTorch on the same workload with 2 threads.
# usage: bench/run_ig_bench.sh   (after scripts/quickstart.sh made data and model)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
build/bench/ig_bench 1000 50 | tee /tmp/attrib_ig_bench.txt
torch_line=$(/usr/bin/python3 bench/torch_ig_bench.py 1000 50 2)
echo "$torch_line"
out=$(mktemp -d)
best=1e30
best_compute=1e30
for rep in 1 2 3; do
  t0=$(date +%s.%N)
  mpirun -n 2 build/attrib run jobs/quickstart.yaml -o "$out/r.h5" \
    --set 'methods=[{name: ig, kind: integrated_gradients, n_steps: 50}]' \
    --fresh > /dev/null 2>&1
  t1=$(date +%s.%N)
  best=$(python3 -c "print(min($best, $t1 - $t0))")
  # compute + fold phase of the slowest rank, as recorded in the results file
  c=$(/usr/bin/python3 -c "import h5py; a = h5py.File('$out/r.h5').attrs; print(a['time_compute_max_s'] + a['time_fold_max_s'])")
  best_compute=$(python3 -c "print(min($best_compute, $c))")
done
rm -rf "$out"
torch=$(echo "$torch_line" | awk '{print $2}')
python3 - "$best" "$best_compute" "$torch" <<'PY'
import sys
e2e, comp, torch = (float(v) for v in sys.argv[1:4])
print(f"attrib_2ranks_compute_inputs_per_s  {1000 / comp:8.1f}   (compute+fold of the slowest rank)")
print(f"attrib_2ranks_e2e_inputs_per_s      {1000 / e2e:8.1f}   (whole command: MPI init, reads, IG, HDF5 write)")
print(f"ratio_attrib_2ranks_compute_to_torch   {1000 / comp / torch:5.2f}")
print(f"ratio_attrib_2ranks_e2e_to_torch       {1000 / e2e / torch:5.2f}")
PY
