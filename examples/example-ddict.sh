#!/usr/bin/env bash
# examples/ddict.cpp under the launcher: the dictionary holds key_0..key_7 = 0..7, written by
# the task pool's workers, each listed once by the main process.
# Usage: example-ddict.sh DRAGON DDICT
set -uo pipefail
dragon=$1 prog=$2
out=$(DDICT_MEM_MIB=64 timeout 100 "$dragon" "$prog" 2>&1); rc=$?
printf '%s\n' "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "exit $rc"
grep -q '^Creating distributed dictionary with one manager per node' <<<"$out" || fail "banner"
[ "$(grep -c '^key_[0-9]* = [0-9]*$' <<<"$out")" -eq 8 ] || fail "8 keys"
for x in 0 1 2 3 4 5 6 7; do
  [ "$(grep -c "^key_$x = $x\$" <<<"$out")" -eq 1 ] || fail "key_$x = $x, once"
done
echo "ok: the seed's dictionary program, every key once with its value"
