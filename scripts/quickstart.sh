#!/usr/bin/env bash
# The quick start: set everything up, then run the main job on the built-in
# default (jobs/quickstart.yaml): Integrated Gradients (and saliency) on 1,000
# Fashion-MNIST test images with the demo MLP on 2 MPI ranks.
#   1. install missing Debian packages and build          (scripts/setup.sh)
#   2. convert Debian's Fashion-MNIST to data/fashion-mnist.h5   (once)
#   3. train the demo MLP 784-256-256-10 to models/mlp.h5        (once)
#   4. mpirun -n 2 build/attrib run jobs/quickstart.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export OPENBLAS_NUM_THREADS=1
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_mpi_yield_when_idle=1

[[ -f data/fashion-mnist.h5 ]] || build/attrib import fashion-mnist --out data/fashion-mnist.h5
[[ -f models/mlp.h5 ]] || build/attrib train jobs/train_mlp.yaml
build/attrib eval --model models/mlp.h5 --data data/fashion-mnist.h5 --split test

ranks=${ATTRIB_RANKS:-2}
extra=()
(( ranks > $(nproc) )) && extra=(--oversubscribe)
mpirun -n "$ranks" "${extra[@]}" build/attrib run jobs/quickstart.yaml \
  --set output.overwrite=true "$@"
echo
echo "results: $(pwd)/results/quickstart.h5  (open it: see docs/format.md)"
