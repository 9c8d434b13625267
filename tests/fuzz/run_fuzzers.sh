#!/usr/bin/env bash
# The fuzz_run ctest test (docs/robustness.md): build the clang/libFuzzer
# build and run fuzz_job and fuzz_h5 for ATTRIB_FUZZ_SECONDS (default 60)
# each, starting from tests/fuzz/corpus/<target> and regressions/<target>.
# New corpus entries go to a temporary directory (the checked-in corpus is
# never changed). Any crash, sanitizer report, leak, timeout or broken
# property fails; the input is kept in FUZZ_BUILD/findings/ and printed with
# the replay command. Exit 77 (ctest: skipped) with the reason when clang or
# libFuzzer is missing, or when SKIP_REASON is given.
#
# usage: run_fuzzers.sh SRC_DIR FUZZ_BUILD_DIR [SKIP_REASON]
set -uo pipefail
SRC=$1 B=$2 SKIP_REASON=${3:-}
SECS=${ATTRIB_FUZZ_SECONDS:-60}
skip() { echo "SKIPPED: $*"; exit 77; }
[[ -n $SKIP_REASON ]] && skip "$SKIP_REASON"
command -v clang >/dev/null 2>&1 || skip "clang not found (Debian: apt-get install clang libclang-rt-14-dev)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/attrib-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" 2>"$tmp/probe.err"; then
  skip "clang cannot link a libFuzzer program with ASan+UBSan (Debian: apt-get install libclang-rt-14-dev): $(head -c 300 "$tmp/probe.err")"
fi

echo "fuzz: building $B (clang, -DATTRIB_FUZZ=ON)"
mkdir -p "$B"
CMAKE=${CMAKE:-cmake}
if ! { CC=clang "$CMAKE" -S "$SRC" -B "$B" -DCMAKE_C_COMPILER=clang -DATTRIB_FUZZ=ON \
         -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       "$CMAKE" --build "$B" -j 2 --target fuzz_job fuzz_h5 fuzz_h5_raw; } >"$B/build.log" 2>&1; then
  tail -n 40 "$B/build.log"; echo "FAIL: the fuzz build failed (log: $B/build.log)"; exit 1
fi

# a smaller ASan quarantine: fuzz_h5 stays near 200 MB instead of 1.2 GB
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64}
fail=0
rm -rf "$B/findings" && mkdir -p "$B/findings"
# the raw-HDF5 regressions once each under libFuzzer's malloc limit (a 4 GB
# allocation is only caught here, not by the gcc replay)
raw=("$SRC"/tests/fuzz/regressions/h5_raw/*)
if [[ -e ${raw[0]} ]]; then
  if ! "$B/tests/fuzz_h5_raw" -rss_limit_mb=2048 -artifact_prefix="$B/findings/h5_raw-" \
       "${raw[@]}" >"$tmp/raw.log" 2>&1; then
    fail=1; echo "FAIL: a regression of fuzz_h5_raw is back:"; tail -n 40 "$tmp/raw.log"
  else
    echo "fuzz: ${#raw[@]} fuzz_h5_raw regression(s) replayed"
  fi
fi
for t in job h5; do
  mkdir -p "$tmp/corpus_$t"
  echo "fuzz: fuzz_$t for ${SECS} s"
  dict=()
  [[ -f $SRC/tests/fuzz/$t.dict ]] && dict=(-dict="$SRC/tests/fuzz/$t.dict")
  "$B/tests/fuzz_$t" "${dict[@]}" -max_total_time="$SECS" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$B/findings/$t-" \
    "$tmp/corpus_$t" "$SRC/tests/fuzz/corpus/$t" "$SRC/tests/fuzz/regressions/$t" \
    >"$tmp/$t.log" 2>&1
  rc=$?
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)|^#[0-9]+ +DONE|^fuzz_(job|h5): [0-9]' "$tmp/$t.log"
  if [[ $rc -ne 0 ]]; then
    fail=1
    echo "FAIL: fuzz_$t found a problem (exit $rc):"
    grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse|INITED|RELOAD)' "$tmp/$t.log" | tail -n 60
    for f in "$B"/findings/"$t"-*; do
      [[ -e $f ]] || continue
      echo "  input: $f"
      echo "  replay: $B/tests/fuzz_$t $f   (or the gcc build's fuzz_replay_$t)"
      echo "  once fixed, keep it: cp $f $SRC/tests/fuzz/regressions/$t/"
    done
  fi
done
exit $fail
