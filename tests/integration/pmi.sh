#!/usr/bin/env bash
# The PMI tests (pmi-test, GoogleTest) run as `dragon pmi-test MPI_RANK` in a pid namespace of
# their own (ranks are ended on purpose); then nothing of the runtime may be left.
# Usage: pmi.sh BUILD_DIR [gtest args...]
set -uo pipefail
. "$(dirname "$0")/pidns.sh" # a pid namespace of its own; $sfx
build=$1
shift
rt="tpm$sfx"
timeout 280 "$build/tools/dragon" --runtime-id "$rt" "$build/tests/integration/pmi-test" \
  "$build/tests/integration/mpi-rank" "$@"
rc=$?
if grep -lsa -- "--runtime-id.$rt" /proc/[0-9]*/cmdline >/dev/null 2>&1 ||
  grep -lsa "DRAGON_RUNTIME_ID=$rt" /proc/[0-9]*/environ >/dev/null 2>&1; then
  echo "FAIL: a process of runtime $rt is left"; rc=1
fi
if ls /dev/shm/dragon."$rt".* >/dev/null 2>&1; then
  echo "FAIL: left in /dev/shm: $(ls /dev/shm | grep "^dragon\.$rt\.")"; rc=1
fi
exit $rc
