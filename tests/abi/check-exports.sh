#!/usr/bin/env bash
# The shared library exports the dragon_* C ABI and nothing else, and its SONAME carries the
# ABI major version.
set -euo pipefail
lib=$1
abi=$2
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
echo "ok: $count dragon_* symbols exported, SONAME $soname"
