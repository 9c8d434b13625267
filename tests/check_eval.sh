#!/bin/sh
# usage: check_eval.sh ATTRIB MODEL DATA LOGITS_OUT MIN_ACCURACY_PERCENT
set -eu
out=$("$1" eval --model "$2" --data "$3" --split test -o "$4")
echo "$out"
acc=$(echo "$out" | sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' | head -n 1)
[ -n "$acc" ] || { echo "FAIL: no accuracy in eval output"; exit 1; }
awk -v a="$acc" -v m="$5" 'BEGIN { if (a + 0 < m + 0) { print "FAIL: test accuracy " a "% < " m "%"; exit 1 } print "ok: test accuracy " a "% >= " m "%" }'
