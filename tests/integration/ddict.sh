#!/usr/bin/env bash
# The dictionary's tests (ddict-test, GoogleTest) run as
# `dragon PROGRAM` in a pid namespace of their own (they kill a manager), on a
# topology file; then nothing of the runtime may be left.
# Usage: ddict.sh BUILD_DIR TOPOLOGY_XML PROGRAM [gtest args...] (PROGRAM: in BUILD_DIR/tests/integration)
set -uo pipefail
. "$(dirname "$0")/pidns.sh" # a pid namespace of its own; $sfx
build=$1
topology=$2
program=$3
shift 3
rt="tdd$sfx"
timeout 280 "$build/tools/dragon" --runtime-id "$rt" --topology "$topology" \
  "$build/tests/integration/$program" "$@"
rc=$?
if grep -lsa -- "--runtime-id.$rt" /proc/[0-9]*/cmdline >/dev/null 2>&1 ||
  grep -lsa "DRAGON_RUNTIME_ID=$rt" /proc/[0-9]*/environ >/dev/null 2>&1; then
  echo "FAIL: a process of runtime $rt is left"; rc=1
fi
if ls /dev/shm/dragon."$rt".* >/dev/null 2>&1; then
  echo "FAIL: left in /dev/shm: $(ls /dev/shm | grep "^dragon\.$rt\.")"; rc=1
fi
exit $rc
