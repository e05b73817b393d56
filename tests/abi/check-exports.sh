#!/usr/bin/env bash
# The shared library exports the dragon_* C ABI and nothing else, its SONAME carries the
# ABI major version, and it holds the test crash points (DRAGON_TEST_CRASH_AT) only when
# built with them (test builds: -Dtests=true; issue 12, item 9).
set -euo pipefail
lib=$1
abi=$2
hooks=${3:-false}
if grep -q DRAGON_TEST_CRASH_AT "$lib"; then has_hooks=true; else has_hooks=false; fi
if [ "$has_hooks" != "$hooks" ]; then
  echo "FAIL: $lib: test crash points compiled in: $has_hooks, the build says: $hooks"
  exit 1
fi
extra=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -v '^dragon_' || true)
if [ -n "$extra" ]; then
  echo "FAIL: $lib exports symbols outside dragon_*:"
  echo "$extra" | head -20
  exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '{print $NF}' | grep -c '^dragon_')
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ "$soname" != "libdragon-c.so.$abi" ]; then
  echo "FAIL: SONAME is '$soname', expected libdragon-c.so.$abi"
  exit 1
fi
echo "ok: $count dragon_* symbols exported, SONAME $soname, test crash points: $hooks"
