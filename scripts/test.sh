#!/usr/bin/env bash
# Set everything up (packages for the tests too), build, run the whole ctest
# suite. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cd build
ctest --output-on-failure -j 2 --timeout 900
