#!/usr/bin/env bash
# Set everything up (packages for the tests too), build, run the whole ctest
# suite. This is what CI runs (.ci/run).
#
# With CI=true (or --sanitize) the suite first runs once more in an
# AddressSanitizer + UBSan build (build-asan/), warnings as errors, all but
# the SLURM tests, the repeats on more ranks, the fault-injection run and the
# fuzz run; then the release build's whole suite runs, and
# its summary line is the last one printed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests

if [[ "${CI:-}" == "true" || "${1:-}" == "--sanitize" ]]; then
  echo "test: AddressSanitizer + UBSan build of the whole suite (build-asan/)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTRIB_SANITIZE=ON -DATTRIB_WERROR=ON \
    > build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
  cmake --build build-asan -j "$(nproc)" >> build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
  # The SLURM daemons and the fuzz run (a clang ASan build of its own) add
  # nothing under this build's sanitizers: they run in the release pass. The
  # fuzz regressions are replayed here too. `repeat` tests run code the
  # sanitizers already saw in another test of the pass (the all-methods jobs
  # on more ranks, compared byte for byte in the release pass). `nosan`: the
  # fault-injection run, 20 SIGKILLs at random moments that check what is
  # durable on disk, which the sanitizers cannot see (resume_interruptions
  # runs the same restart paths in this pass).
  (cd build-asan && ctest --output-on-failure -j 2 --timeout 1500 -LE 'slurm|repeat|nosan' \
    -E '^fuzz_run$')
fi

cd build
ctest --output-on-failure -j 2 --timeout 1500
