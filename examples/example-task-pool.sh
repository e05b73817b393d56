#!/usr/bin/env bash
# examples/task_pool.cpp on a node of 4 fake GPUs (a topology file): Test 1 runs 8 tasks on 4
# workers without a GPU, Test 2 runs 8 tasks on one worker per GPU, and each of GPUs 0-3
# answers (4 workers, 4 distinct ids: each worker's CUDA_VISIBLE_DEVICES is its own).
# Usage: example-task-pool.sh DRAGON TASK_POOL TOPOLOGY_XML
set -uo pipefail
dragon=$1 prog=$2 topology=$3
out=$(timeout 100 "$dragon" --topology "$topology" "$prog" 0.2 2>&1); rc=$?
printf '%s\n' "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "exit $rc"
grep -q '^Launching 8 tasks with a simple Pool of 4 workers, no GPU affinity' <<<"$out" || fail "Test 1's banner"
[ "$(grep -c 'GPU ID(s): No GPUs assigned' <<<"$out")" -eq 8 ] || fail "Test 1: 8 answers without a GPU"
grep -q '^Launching 8 tasks with a Pool of one worker per GPU (4 GPUs)' <<<"$out" || fail "Test 2's banner"
[ "$(grep -c 'GPU ID(s): [0-3]$' <<<"$out")" -eq 8 ] || fail "Test 2: 8 answers with a GPU"
for g in 0 1 2 3; do
  grep -q "GPU ID(s): $g\$" <<<"$out" || fail "GPU $g never answered"
done
echo "ok: both tests of the seed's pool example, every GPU answered"
