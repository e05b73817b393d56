#!/usr/bin/env bash
# The task pool's tests (taskpool-test and taskpool-adv-test, GoogleTest) run as
# `dragon PROGRAM` in a pid namespace of their own (they kill workers and an owner), on a
# topology file; then nothing of the runtime may be left.
# Usage: taskpool.sh BUILD_DIR TOPOLOGY_XML PROGRAM [gtest args...] (PROGRAM: in BUILD_DIR/tests/integration)
set -uo pipefail
. "$(dirname "$0")/pidns.sh" # a pid namespace of its own; $sfx
build=$1
topology=$2
program=$3
shift 3
rt="ttp$sfx"
timeout 280 "$build/tools/dragon" --runtime-id "$rt" --topology "$topology" \
  "$build/tests/integration/$program" "$@"
rc=$?
. "$(dirname "$0")/nothing_left.sh"
exit $rc
