#!/usr/bin/env bash
# The README's two commands:
#   scripts/bootstrap.sh demo   install what is missing, build, run the demo
#   scripts/bootstrap.sh test   install what is missing, build, run every test
# (the unit suites once more under AddressSanitizer + UBSan, and the fuzzers for a short,
# bounded time). Works on a fresh Debian 12 machine; needs root (or sudo) for apt-get.
set -euo pipefail
mode=${1:-}
case "$mode" in demo | test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."

packages=(build-essential meson ninja-build pkg-config gfortran clang libclang-rt-14-dev procps
  clang-format libfabric-dev libhwloc-dev nlohmann-json3-dev libcbor-dev libsodium-dev libpmix-dev libjemalloc-dev libcmocka-dev
  libgtest-dev libbenchmark-dev libopenmpi-dev openmpi-bin binutils xxd git python3 python3-cbor2 util-linux
  bsdutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
echo "== build (build/)"
[ -f build/build.ninja ] || meson setup build --werror >/dev/null
ninja -C build -j "$jobs"

if [ "$mode" = demo ]; then
  echo "== demo 1: several processes share one pool, run by the dragon launcher"
  build/tools/dragon build/examples/pool-share
  echo "== demo 2: a process group, one process per GPU (per NUMA domain without GPUs)"
  exec build/tools/dragon build/examples/process-group
fi

failed=0
summary=()
run_suite() { # name, meson test args...
  local name=$1; shift
  if meson test "$@"; then summary+=("$name: ok"); else summary+=("$name: FAILED"); failed=1; fi
}
echo "== tests (build/)"
run_suite "tests" -C build --print-errorlogs

echo "== unit suites under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-asan -j "$jobs" >/dev/null
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp" run_suite "sanitizers" -C build-asan --suite unit --print-errorlogs

echo "== fuzzers, 30 s each (build-fuzz/, clang + libFuzzer)"
[ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-fuzz -j "$jobs" tests/fuzz/fuzz-pool-descriptor tests/fuzz/fuzz-object-descriptor tests/fuzz/fuzz-protocol >/dev/null
run_suite "fuzz" -C build-fuzz --suite fuzz --no-rebuild --print-errorlogs

echo "== nothing left behind"
left=$(ls /dev/shm | grep '^dragon\.' || true)
daemons=$(pgrep -u "$(id -u)" -x dragon-node || true)
if [ -n "$left" ] || [ -n "$daemons" ]; then
  [ -z "$left" ] || { echo "left in /dev/shm:"; echo "$left"; }
  [ -z "$daemons" ] || echo "dragon-node processes left: $daemons"
  failed=1; summary+=("cleanup: FAILED")
else
  summary+=("cleanup: ok")
fi

# One closing line a person (and CI) can read: counts over every meson test run above.
passed=0; fails=0
for log in build/meson-logs/testlog.json build-asan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json; do
  [ -f "$log" ] || continue
  passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
  fails=$((fails + $(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)))
done
[ "$failed" -eq 0 ] || [ "$fails" -gt 0 ] || fails=1
echo
printf '%s\n' "${summary[@]}"
echo "$passed passed, $fails failed"
exit "$failed"
