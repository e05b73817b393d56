#!/usr/bin/env bash
# examples/mpi_process_group.cpp under the launcher: one MPI rank per CPU of this node (no
# GPUs here), every rank right about its size, the allreduce and the ring, all exit 0.
# Usage: example-mpi-process-group.sh DRAGON MPI_PROCESS_GROUP MPI_HELLO
set -uo pipefail
dragon=$1 prog=$2 hello=$3
out=$(timeout 100 "$dragon" "$prog" "$hello" 2>&1); rc=$?
printf '%s\n' "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "exit $rc"
n=$(sed -n 's/^Launching \([0-9]*\) MPI ranks.*/\1/p' <<<"$out")
[ -n "$n" ] && [ "$n" -ge 1 ] || fail "banner"
[ "$(grep -c "^Hello from rank [0-9]* of $n on .*: ok\$" <<<"$out")" -eq "$n" ] || fail "$n ranks ok"
for ((r = 0; r < n; r++)); do
  grep -q "^Hello from rank $r of $n " <<<"$out" || fail "rank $r"
done
grep -q "^$n ranks ran, 0 failed\$" <<<"$out" || fail "summary"
echo "ok: $n MPI ranks without mpirun"
