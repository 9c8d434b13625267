#!/usr/bin/env bash
# Engine benchmark of issue #4, printed as ratios in one run:
#   forward+backward of the MLP and two CNNs vs the OpenBLAS SGEMM rate
#   (build/bench/engine_bench, 1 thread), and the same step in PyTorch
#   (1 thread) as a time ratio torch / attrib (> 1: attrib is faster).
# usage: [BUILD=build] bench/run_engine_bench.sh [batch] [seconds]   (after building)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${1:-256}
S=${2:-3}
export OPENBLAS_NUM_THREADS=1
a=$($BUILD/bench/engine_bench "$N" "$S")
echo "$a"
t=$(/usr/bin/python3 bench/torch_engine_bench.py "$N" "$S" 1)
echo "$t"
for m in mlp cnn resnet; do
  am=$(echo "$a" | awk -v m="$m" '$1 == m {print $4}')
  tm=$(echo "$t" | awk -v m="$m" '$2 == m {print $5}')
  python3 -c "print('$m: torch/attrib time per step = %.2f' % ($tm / $am))"
done
