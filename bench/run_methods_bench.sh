#!/usr/bin/env bash
# Feature-attribution throughput against Captum's figures, printed as ratios:
#   each workload runs as `mpirun -n 2 attrib run` on 1,000 Fashion-MNIST test
#   images (whole-command wall time, and the compute + fold time of the
#   slowest rank from the results file), and as its PyTorch counterpart with
#   2 threads (bench/torch_attr_bench.py: the work Captum does, vectorised
#   with Captum's best settings; the best of a few batch sizes).
#
#   ig_mlp          IG, 50 Gauss-Legendre steps, MLP 784-256-256-10
#                   (torch: Captum-equivalent, and hand-written with the
#                   first-layer trick)
#   ig_cnn          the same IG on the LeNet-like CNN of jobs/train_cnn.yaml
#   ig_small_cnn    the same IG on the small CNN below
#   occlusion       4x4 windows at stride 4 (49), small CNN
#   shapley         shapley_sampling, 25 permutations of the 49 4x4 patches, MLP
#   kernel_shap     200 coalitions of the same patches, MLP
#   *_noise         occlusion, shapley and kernel_shap on images of uniform
#                   noise: attrib skips perturbations that change nothing
#                   (Fashion-MNIST has ~30% all-zero 4x4 patches, equal to
#                   the zero baseline); noise has none. Torch's cost does not
#                   depend on the data: its figure is reused.
# small CNN: conv(1,16,3,pad 1) relu maxpool2 conv(16,32,3,pad 1) relu maxpool2
# flatten linear(1568,10), the CNN of bench/perturb_bench.c. Models have random
# weights (fixed seed), exported with tools/export_torch.py.
#
# It builds nothing: BUILD names a build with attrib and bench/ig_bench (a
# Release build for numbers worth quoting). Data and models go to WORKDIR and
# are reused when present. Never fails on time: it prints numbers and ratios.
# The machine may be shared: the 1-minute load average is printed per row.
#
# usage: [BUILD=build] [REPS=3] [N=1000] [TORCH_N=250] bench/run_methods_bench.sh [WORKDIR]
#   REPS     attrib runs per workload (best wall time and best compute time)
#   N        inputs per attrib run and per torch IG run on the MLP
#   TORCH_N  inputs per torch run on the CNNs and of the perturbation
#            methods (they are slow; inputs/s hardly depends on it)
#   ONLY     space-separated workload names to run (default: all)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$ROOT/build}" && pwd)
WORK=${1:-/tmp/attrib_methods_bench}
REPS=${REPS:-3}
N=${N:-1000}
TORCH_N=${TORCH_N:-250}
ONLY=${ONLY:-}
PY=/usr/bin/python3
TB="$PY $ROOT/bench/torch_attr_bench.py"
JOB=$ROOT/bench/jobs/methods_bench.yaml
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_mpi_yield_when_idle=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

mkdir -p "$WORK"
cd "$WORK"
load() { cut -d' ' -f1 /proc/loadavg; }
echo "attrib: $BUILD/attrib; work dir: $WORK; $(nproc) cores; load at start $(load)"

# ---- data and models (once) ------------------------------------------------
[[ -f fmnist.h5 ]] || "$BUILD/attrib" import fashion-mnist --out fmnist.h5 > /dev/null
$TB noise-data noise.h5 --n "$N"   # cheap; always as many rows as N
if [[ ! -f mlp.h5 || ! -f cnn.h5 || ! -f small_cnn.h5 ]]; then
  $TB models .
  $PY "$ROOT/tools/export_torch.py" mlp.pt mlp.h5 --input-shape 28,28
  $PY "$ROOT/tools/export_torch.py" cnn.pt cnn.h5 --input-shape 1,28,28
  $PY "$ROOT/tools/export_torch.py" small_cnn.pt small_cnn.h5 --input-shape 1,28,28
fi

# ---- the engine against SGEMM (1 core) ----------------------------------------
sgemm_frac=-
if [[ -x "$BUILD/bench/ig_bench" ]]; then
  "$BUILD/bench/ig_bench" "$N" 50 | tee ig_bench.txt
  sgemm_frac=$(awk '$1 == "ratio_ig_to_sgemm_peak" {print $2}' ig_bench.txt)
fi

# ---- attrib ------------------------------------------------------------------
# the fixed cost inside every e2e time: launch, MPI_Init, MPI_Finalize
launch() {
  local t0 t1 best=1e30
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    env "$@" mpirun -n 2 "$BUILD/attrib" run --help > /dev/null
    t1=$(date +%s.%N)
    best=$($PY -c "print(min($best, $t1 - $t0))")
  done
  $PY -c "print(f'{$best:.2f}')"
}
echo "mpirun -n 2 attrib run --help: $(launch) s as set; $(launch OMPI_MCA_pml=ob1) s with" \
  "OMPI_MCA_pml=ob1 (single node: skips probing the cm/ofi and ucx PMLs)"
# attrib_run NAME DATA MODEL METHODS -> "wall_best compute_best total_best load" (or "err MESSAGE")
attrib_run() {
  local name=$1 data=$2 model=$3 methods=$4 best=1e30 bestc=1e30 bestt=1e30 l
  l=$(load)
  for ((rep = 0; rep < REPS; rep++)); do
    local t0 t1 c tt
    t0=$(date +%s.%N)
    if ! mpirun -n 2 "$BUILD/attrib" run "$JOB" -o "$name.h5" --fresh --set output.overwrite=true \
        --set "data.path=$data" --set "data.rows=0:$N" --set "model.path=$model" --set "methods=$methods" \
        > "$name.log" 2>&1; then
      echo "err $( (grep -m1 -i 'error\|not built' "$name.log" || tail -n1 "$name.log") | cut -c1-100)"
      return
    fi
    t1=$(date +%s.%N)
    read -r c tt < <($PY -c "import h5py; a = h5py.File('$name.h5', 'r').attrs; print(a['time_compute_max_s'] + a['time_fold_max_s'], a['time_total_s'])")
    best=$($PY -c "print(min($best, $t1 - $t0))")
    bestc=$($PY -c "print(min($bestc, $c))")
    bestt=$($PY -c "print(min($bestt, $tt))")
  done
  echo "$best $bestc $bestt $l"
}

# torch_best WORKLOAD MODEL.pt NINPUTS BATCH... -> "inputs/s batch" (best batch size)
torch_best() {
  local w=$1 m=$2 n=$3 best=0 bb=- r
  shift 3
  for b in "$@"; do
    r=$($TB run "$w" "$m" fmnist.h5 --n "$n" --threads 2 --batch "$b" --reps 2 | awk '{print $4}')
    if $PY -c "import sys; sys.exit(0 if $r > $best else 1)"; then best=$r; bb=$b; fi
  done
  echo "$best $bb"
}

IG='[{name: ig, kind: integrated_gradients, n_steps: 50, quadrature: gauss_legendre, baseline: zero}]'
OCC='[{name: occ, kind: occlusion, window: [4, 4], stride: [4, 4]}]'
SHAP='[{name: shap, kind: shapley_sampling, n_samples: 25, patch: [4, 4]}]'
KSHAP='[{name: kshap, kind: kernel_shap, n_samples: 200, patch: [4, 4]}]'

# name | data | attrib model (=ROW: reuse ROW's attrib times) | methods |
# torch workload (=ROW: reuse ROW's torch figure) | torch model | torch inputs | batches | figure | goal
rows=(
  "ig_mlp|fmnist.h5|mlp.h5|$IG|ig_captum|mlp.pt|$N|64 256 1000|550|>=5500/s"
  "ig_mlp_vs_head||=ig_mlp||ig_head|mlp.pt|$N|256 512|4100|-"
  "ig_cnn|fmnist.h5|cnn.h5|$IG|ig_captum|cnn.pt|$TORCH_N|16 64|-|>=3x torch"
  "ig_small_cnn|fmnist.h5|small_cnn.h5|$IG|ig_captum|small_cnn.pt|$TORCH_N|16 64|-|>=3x torch"
  "occlusion|fmnist.h5|small_cnn.h5|$OCC|occlusion|small_cnn.pt|$TORCH_N|64|190|>=10x"
  "shapley|fmnist.h5|mlp.h5|$SHAP|shapley|mlp.pt|$TORCH_N|256|88|>=10x"
  "kernel_shap|fmnist.h5|mlp.h5|$KSHAP|kernel_shap|mlp.pt|$TORCH_N|1|60|>=10x"
  "occlusion_noise|noise.h5|small_cnn.h5|$OCC|=occlusion||||190|>=10x"
  "shapley_noise|noise.h5|mlp.h5|$SHAP|=shapley||||88|>=10x"
  "kernel_shap_noise|noise.h5|mlp.h5|$KSHAP|=kernel_shap||||60|>=10x"
)

: > table.tsv
declare -A done_attrib done_torch done_tw
for row in "${rows[@]}"; do
  IFS='|' read -r name data model methods tw tm tn batches fig goal <<< "$row"
  if [[ -n $ONLY && " $ONLY " != *" ${name%_vs_head} "* ]]; then continue; fi
  if [[ $model == =* ]]; then
    a=${done_attrib[${model#=}]:-"err not run"}
  else
    echo "== $name: attrib (mpirun -n 2, best of $REPS)" >&2
    a=$(attrib_run "$name" "$data" "$model" "$methods")
    done_attrib[$name]=$a
  fi
  if [[ $tw == =* ]]; then
    t=${done_torch[${tw#=}]:-"0 -"}
    tw=${done_tw[${tw#=}]:-${tw#=}}
  else
    echo "== $name: torch $tw (2 threads, batches $batches)" >&2
    # shellcheck disable=SC2086
    t=$(torch_best "$tw" "$tm" "$tn" $batches)
    done_torch[$name]=$t
    done_tw[$name]=$tw
  fi
  frac=-
  [[ $name == ig_mlp ]] && frac=$sgemm_frac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$a" "$t" "$tw" "$fig" "$goal" "$frac" "$(load)" >> table.tsv
done

$PY - "$N" table.tsv <<'PY'
import sys
n = int(sys.argv[1])
print()
print(f"attrib: mpirun -n 2 attrib run, {n} inputs, best of REPS; e2e = whole command (MPI "
      "launch, reads, compute, HDF5 write), run = attrib's time_total_s (after MPI_Init), "
      "comp = compute + fold of the slowest rank")
print("torch: 2 threads, the work Captum does (best batch); fig: the issue's Captum figure "
      "(ig_mlp_vs_head: the top of the hand-written 2,600-4,100)")
hdr = ("workload", "e2e/s", "run/s", "comp/s", "torch/s", "torch impl (batch)", "fig/s",
       "e2e/fig", "comp/fig", "e2e/torch", "comp/torch", "goal", "sgemm", "load")
fmt = "{:<17} {:>6} {:>6} {:>6} {:>8} {:<20} {:>6} {:>8} {:>8} {:>9} {:>10} {:>10} {:>6} {:>9}"
print(fmt.format(*hdr))
for line in open(sys.argv[2]):
    name, a, t, tw, fig, goal, frac, load_end = line.rstrip("\n").split("\t")
    a, t = a.split(), t.split()
    tr, tb = float(t[0]), t[1]
    if tr == 0:
        tr, tb = 0.0, "not run"
    if a[0] == "err":
        print(fmt.format(name, "n/a", "n/a", "n/a", f"{tr:.0f}", f"{tw} ({tb})", fig, "-", "-", "-",
                         "-", goal, frac, "-") + "  attrib: " + " ".join(a[1:]))
        continue
    e2e, comp, run = n / float(a[0]), n / float(a[1]), n / float(a[2])
    r = lambda v, d: f"{v / d:.1f}" if d else "-"
    f = float(fig) if fig != "-" else 0.0
    print(fmt.format(name, f"{e2e:.0f}", f"{run:.0f}", f"{comp:.0f}", f"{tr:.0f}", f"{tw} ({tb})", fig,
                     r(e2e, f), r(comp, f), r(e2e, tr), r(comp, tr), goal, frac,
                     f"{a[3]}-{load_end}"))
PY
