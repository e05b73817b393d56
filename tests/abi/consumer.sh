#!/usr/bin/env bash
# Install the build into a scratch root, then build a C, a C++ and (when the build has the
# Fortran module: argument 2 is true) a Fortran program against the installed library using
# nothing but pkg-config, and run them.
set -euo pipefail
build=$1
fortran=${2:-false}
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
runtime="tconsumer$$"
cleanup() {
  rm -rf "$work"
  rm -f /dev/shm/dragon."$runtime".* 2>/dev/null || true
}
trap cleanup EXIT

meson install -C "$build" --destdir "$work/root" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$work/root" -name dragon-c.pc | head -1)")
[ -f "$pcdir/dragon-cpp.pc" ] || { echo "FAIL: dragon-cpp.pc not installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$work/root"
libdir="$work/root$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=libdir dragon-c)"
export LD_LIBRARY_PATH="$libdir"
export DRAGON_RUNTIME_ID="$runtime"
export DRAGON_TOPOLOGY_XML="$src/../data/topology/nvidia-4gpu.xml"

# Every installed header compiles on its own, and policy.h (so process.h and system.h too)
# does not drag in channels and pools.
incdir="$work/root$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=includedir dragon-c)"
for h in "$incdir"/dragon/*.h; do
  # shellcheck disable=SC2046
  echo "#include <dragon/${h##*/}>" | cc -fsyntax-only -Wall -Wextra -Werror -x c - $(pkg-config --cflags dragon-c) ||
    { echo "FAIL: dragon/${h##*/} does not compile on its own"; exit 1; }
done
for h in "$incdir"/dragon/*.hpp; do
  # shellcheck disable=SC2046
  echo "#include <dragon/${h##*/}>" | c++ -std=c++17 -fsyntax-only -Wall -Wextra -Werror -x c++ - $(pkg-config --cflags dragon-cpp) ||
    { echo "FAIL: dragon/${h##*/} does not compile on its own"; exit 1; }
done
# shellcheck disable=SC2046
if echo '#include <dragon/policy.h>' | cc -E -x c - $(pkg-config --cflags dragon-c) | grep -q 'dragon/\(channel\|pool\)\.h'; then
  echo "FAIL: dragon/policy.h includes channel.h or pool.h"; exit 1
fi

# shellcheck disable=SC2046 # word splitting of pkg-config output is intended
cc -Wall -Wextra -Werror -o "$work/consumer-c" "$src/consumer.c" $(pkg-config --cflags --libs dragon-c)
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Wextra -Werror -o "$work/consumer-cpp" "$src/consumer.cpp" $(pkg-config --cflags --libs dragon-cpp)
progs="consumer-c consumer-cpp"
if [ "$fortran" = true ]; then
  [ -f "$pcdir/dragon-fortran.pc" ] || { echo "FAIL: dragon-fortran.pc not installed"; exit 1; }
  # The module file comes from the installed tree only (-J keeps gfortran's own .mod output
  # out of the source and build trees).
  mkdir "$work/mod"
  # shellcheck disable=SC2046
  gfortran -Wall -Wextra -Werror -J "$work/mod" -o "$work/consumer-f90" "$src/consumer.f90" \
    $(pkg-config --cflags --libs dragon-fortran)
  progs="$progs consumer-f90"

  # The module's bind(C) types have the C structs' sizes and field offsets.
  # shellcheck disable=SC2046
  cc -Wall -Wextra -Werror -o "$work/layout-c" "$src/layout.c" $(pkg-config --cflags dragon-c)
  # shellcheck disable=SC2046
  gfortran -Wall -Wextra -Werror -J "$work/mod" -o "$work/layout-f90" "$src/layout.f90" \
    $(pkg-config --cflags --libs dragon-fortran)
  "$work/layout-c" >"$work/layout-c.txt"
  "$work/layout-f90" >"$work/layout-f90.txt"
  diff "$work/layout-c.txt" "$work/layout-f90.txt" ||
    { echo "FAIL: the Fortran module's bind(C) types differ from the C structs (<: C, >: Fortran)"; exit 1; }
  echo "ok: $(wc -l <"$work/layout-c.txt") sizes and offsets of the bind(C) types match C"
fi

# Each program must load the installed copies, not the build tree's.
for prog in $progs; do
  libs=libdragon-c
  [ "$prog" != consumer-f90 ] || libs="libdragon-c libdragon-fortran"
  for lib in $libs; do
    loaded=$(ldd "$work/$prog" | awk -v lib="$lib" 'index($1, lib ".so") == 1 {print $3}')
    case "$loaded" in
      "$libdir"/*) ;;
      *) echo "FAIL: $prog loads $lib from '$loaded', not the installed one"; exit 1 ;;
    esac
  done
  "$work/$prog" "$(pkg-config --modversion dragon-c)"
done
left=$(ls /dev/shm | grep "^dragon\.$runtime\." || true)
[ -z "$left" ] || { echo "FAIL: left in /dev/shm: $left"; exit 1; }
echo "ok: consumers built with pkg-config and ran: $progs"
