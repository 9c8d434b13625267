#!/usr/bin/env bash
# Install what attrib needs (Debian 12 packages, only those missing) and build
# it into build/. Usage: scripts/setup.sh [--tests]
#   --tests   also install what the test suite needs (Python checks, PyTorch,
#             clang for fuzzing, SLURM daemons for the integration test)
# Safe to run again: installs nothing that is present, rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc make cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev liblapacke-dev libyaml-dev zlib1g-dev libpng-dev dataset-fashion-mnist)
if [[ "${1:-}" == "--tests" ]]; then
  pkgs+=(python3 python3-h5py python3-numpy python3-pandas python3-torch python3-xarray
         python3-h5netcdf python3-netcdf4
         chromium                                             # report screenshot (render.cmake)
         clang libclang-rt-14-dev                             # fuzzing (libFuzzer)
         slurm-wlm slurmctld slurmd slurm-client munge)       # SLURM integration test
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 \
    install -y -q "${missing[@]}"
fi

cmake_args=(-S . -B build -DCMAKE_BUILD_TYPE=Release)
[[ "${CI:-}" == "true" ]] && cmake_args+=(-DATTRIB_WERROR=ON)
cmake "${cmake_args[@]}" > build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$(nproc)" >> build.log 2>&1 || { cat build.log; exit 1; }
echo "setup: built build/attrib ($(build/attrib --version))"
