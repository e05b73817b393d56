#!/usr/bin/env bash
# The PMI tests (pmi-test, GoogleTest) run as `dragon pmi-test MPI_RANK` in a pid namespace of
# their own (ranks are ended on purpose); then nothing of the runtime may be left.
# Usage: pmi.sh BUILD_DIR [gtest args...]
set -uo pipefail
. "$(dirname "$0")/pidns.sh" # a pid namespace of its own; $sfx
build=$1
shift
rt="tpm$sfx"
# Open MPI's shared-memory segments of ranks that died must not stay in /dev/shm either.
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
timeout 280 "$build/tools/dragon" --runtime-id "$rt" "$build/tests/integration/pmi-test" \
  "$build/tests/integration/mpi-rank" "$@"
rc=$?
. "$(dirname "$0")/nothing_left.sh"
if [ -n "$(find /dev/shm -maxdepth 1 -name 'vader_segment.*' -newer "$stamp")" ]; then
  echo "FAIL: Open MPI segments left in /dev/shm:"
  find /dev/shm -maxdepth 1 -name 'vader_segment.*' -newer "$stamp"; rc=1
fi
exit $rc
