#!/usr/bin/env bash
# IG benchmark of issue #2, printed as ratios in one run:
#   attrib engine on 1 core vs SGEMM peak (build/ig_bench),
#   attrib run end-to-end on 2 MPI ranks (1,000 test images, 50 GL steps),
#   plain PyTorch on the same workload with 2 threads.
# usage: bench/run_ig_bench.sh   (after scripts/quickstart.sh made data and model)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
build/ig_bench 1000 50 | tee /tmp/attrib_ig_bench.txt
torch_line=$(/usr/bin/python3 bench/torch_ig_bench.py 1000 50 2)
echo "$torch_line"
out=$(mktemp -d)
best=1e30
for rep in 1 2 3; do
  t0=$(date +%s.%N)
  mpirun -n 2 build/attrib run jobs/quickstart.yaml -o "$out/r.h5" \
    --set 'methods=[{name: ig, kind: integrated_gradients, n_steps: 50}]' \
    --set output.overwrite=true > /dev/null
  t1=$(date +%s.%N)
  best=$(python3 -c "print(min($best, $t1 - $t0))")
done
rm -rf "$out"
e2e=$(python3 -c "print(f'{1000 / $best:.1f}')")
torch=$(echo "$torch_line" | awk '{print $2}')
echo "attrib_run_2ranks_inputs_per_s $e2e   (end to end: MPI start, reads, IG, HDF5 write)"
python3 -c "print(f'ratio_attrib_2ranks_to_torch  {$e2e / $torch:.2f}')"
