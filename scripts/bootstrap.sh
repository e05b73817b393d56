#!/usr/bin/env bash
# The README's two commands:
#   scripts/bootstrap.sh demo   install what is missing, build what the demo needs (build/,
#                               the build to install: no tests, no test hooks), run the demo
#   scripts/bootstrap.sh test   install what is missing, build with the tests (build-test/),
#                               run every test (the unit suites once more under
#                               AddressSanitizer + UBSan, and the fuzzers for a short, bounded
#                               time)
# Works on a fresh Debian 12 machine; needs root (or sudo) for apt-get. Each phase is shown
# with its elapsed time; apt's and ninja's progress come through in steps of 10%.
set -euo pipefail
mode=${1:-}
case "$mode" in demo | test) ;; *) echo "usage: $0 demo|test" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."

start=$SECONDS
phase_start=$SECONDS
phase() { # phase TITLE: close the last phase (its time), open the next
  if [ -n "${phase_title:-}" ]; then
    printf '   (%ds)\n' $((SECONDS - phase_start))
  fi
  phase_title=$1
  phase_start=$SECONDS
  printf '== [%02d:%02d] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$1"
}

# Progress lines "[n/m] ..." (ninja) as one line per 10%; every other line (a warning, an
# error) passes through whole.
progress() { # progress LABEL
  awk -v label="$1" '
    match($0, /^\[[0-9]+\/[0-9]+\]/) {
      split(substr($0, 2, RLENGTH - 2), nm, "/")
      step = int(nm[1] * 10 / nm[2])
      if (step > last) { printf "   %s %d%% (%d/%d)\n", label, step * 10, nm[1], nm[2]; last = step; fflush() }
      next
    }
    /^ninja: no work to do/ { print "   " label ": up to date"; next }
    /^ninja: Entering directory/ { next }
    { print; fflush() }'
}

build() { # build DIR [TARGET...]: ninja with compact progress
  local dir=$1; shift
  ninja -C "$dir" -j "$(nproc)" "$@" 2>&1 | progress "build $dir"
}

packages=(build-essential meson ninja-build pkg-config gfortran clang libclang-rt-14-dev procps
  clang-format libfabric-dev libhwloc-dev nlohmann-json3-dev libcbor-dev libsodium-dev libpmix-dev libjemalloc-dev libcmocka-dev
  libgtest-dev libbenchmark-dev libopenmpi-dev openmpi-bin binutils xxd git python3 python3-cbor2 util-linux
  bsdutils redis-server redis-tools openssh-server openssh-client iproute2 libfabric-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  phase "installing ${#missing[@]} package(s) with apt-get: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # apt's status lines (download, then install, in percent) on fd 3, one line per 10% step;
  # its own output goes to a log shown when it fails.
  log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    -o APT::Status-Fd=3 "${missing[@]}" 3>&1 >"$log" 2>&1 |
    awk -F: '$1 == "dlstatus" || $1 == "pmstatus" {
        what = $1 == "dlstatus" ? "download" : "install"
        pct = 0 # the first numeric field: a package name may hold a colon (libc6:amd64)
        for (i = 2; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { pct = $i; break }
        step = int(pct / 10)
        if (what != last_what || step > last) { printf "   %s %d%%\n", what, step * 10; fflush() }
        last_what = what; last = step
      }'; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

if [ "$mode" = demo ]; then
  phase "build what the demo needs (build/)"
  [ -f build/build.ninja ] || meson setup build --werror >/dev/null
  build build tools/dragon tools/dragon-node tools/dragon-ddict-manager examples/pool-share \
    examples/process-group examples/task-pool examples/ddict examples/mpi-hello \
    examples/mpi-process-group
  phase "demo 1: processes of the runtime share a pool and talk over a queue"
  build/tools/dragon build/examples/pool-share
  phase "demo 2: a process group, one process per GPU (per NUMA domain without GPUs)"
  build/tools/dragon build/examples/process-group
  phase "demo 3: a task pool (the seed's first program): tasks over workers, then one worker per GPU"
  build/tools/dragon build/examples/task-pool
  phase "demo 4: a distributed dictionary (the seed's dictionary program), filled by a task pool"
  build/tools/dragon build/examples/ddict
  phase "demo 5: an MPI program as a process group, served PMIx by the runtime (no mpirun)"
  build/tools/dragon build/examples/mpi-process-group
  phase "done"
  exit 0
fi

failed=0
summary=()
run_stamp=$(mktemp)
trap 'rm -f "$run_stamp"' EXIT
run_suite() { # name, meson test args...
  local name=$1; shift
  if meson test "$@"; then summary+=("$name: ok"); else summary+=("$name: FAILED"); failed=1; fi
}
phase "build with the tests (build-test/)"
[ -f build-test/build.ninja ] || meson setup build-test --werror -Dtests=true >/dev/null
build build-test
phase "tests (build-test/)"
run_suite "tests" -C build-test --print-errorlogs

phase "build the unit suites with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
[ -f build-asan/build.ninja ] || meson setup build-asan -Dtests=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
build build-asan
phase "unit suites under the sanitizers"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp" run_suite "sanitizers" -C build-asan --suite unit --print-errorlogs

phase "build the fuzzers (build-fuzz/, clang + libFuzzer)"
[ -f build-fuzz/build.ninja ] || CC=clang CXX=clang++ meson setup build-fuzz -Dtests=true -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
build build-fuzz tests/fuzz/fuzz-pool-descriptor tests/fuzz/fuzz-object-descriptor tests/fuzz/fuzz-protocol tests/fuzz/fuzz-link tests/fuzz/fuzz-taskpool tests/fuzz/fuzz-ddict
phase "fuzzers, 30 s each"
run_suite "fuzz" -C build-fuzz --suite fuzz --no-rebuild --print-errorlogs

phase "nothing left behind"
# Ours, and the shared-memory files of MPI ranks started by the tests (Open MPI's btl/vader).
left=$( (ls /dev/shm | grep '^dragon\.'; find /dev/shm -maxdepth 1 -name 'vader_segment.*' -newer "$run_stamp" -printf '%f\n') || true)
# (pgrep matches the 15-character process name: dragon-ddict-manager is "dragon-ddict-ma")
daemons=$( (pgrep -u "$(id -u)" -x dragon-node; pgrep -u "$(id -u)" -x dragon-ddict-ma) || true)
if [ -n "$left" ] || [ -n "$daemons" ]; then
  [ -z "$left" ] || { echo "left in /dev/shm:"; echo "$left"; }
  [ -z "$daemons" ] || echo "runtime processes (dragon-node, dragon-ddict-manager) left: $daemons"
  failed=1; summary+=("cleanup: FAILED")
else
  summary+=("cleanup: ok")
fi
phase "summary"

# One closing line a person (and CI) can read: counts over every meson test run above.
passed=0; fails=0
for log in build-test/meson-logs/testlog.json build-asan/meson-logs/testlog.json build-fuzz/meson-logs/testlog.json; do
  [ -f "$log" ] || continue
  passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
  fails=$((fails + $(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)))
done
[ "$failed" -eq 0 ] || [ "$fails" -gt 0 ] || fails=1
printf '%s\n' "${summary[@]}"
echo "$passed passed, $fails failed in $((SECONDS - start)) s"
[ "$failed" -eq 0 ]
