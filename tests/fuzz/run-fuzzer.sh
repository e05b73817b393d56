#!/usr/bin/env bash
# Run a libFuzzer harness for a bounded time on a scratch copy of its seed corpus (libFuzzer
# writes new inputs into the corpus directory; the source tree stays untouched).
set -euo pipefail
fuzzer=$1
seeds=$2
seconds=${3:-30}
work=$(mktemp -d)
export DRAGON_RUNTIME_ID="tfuzz$$"
# A crashing input skips the harness's own cleanup: remove its pool here too.
trap 'rm -rf "$work"; rm -f /dev/shm/dragon."$DRAGON_RUNTIME_ID".*' EXIT
cp -r "$seeds"/. "$work"/
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work" 2>&1 | tail -n 15
status=${PIPESTATUS[0]}
if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
  echo "FAIL: the fuzzer found an input that breaks the decoder:"
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do [ -e "$f" ] && xxd "$f" | head -5; done
  exit 1
fi
exit "$status"
