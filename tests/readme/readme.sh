#!/usr/bin/env bash
# README.md's code as a user meets it (issue 12, item 7). The build is installed for real with
# `meson install` to its prefix, compiled against with the README's own compile commands (and
# -Wall -Wextra -Werror), and every C, C++ and Fortran block of the README runs twice outside and twice
# inside `dragon`, with nothing left behind after each run. Programs run with no
# LD_LIBRARY_PATH: the install itself must make the library findable. A block right after the
# line "<!-- readme-test: needs dragon -->" must fail with a message naming the runtime
# outside `dragon` instead. A failure names the README's line.
#
# The install happens in this test's own mount namespace (the one pidns.sh makes): a tmpfs over
# the prefix and an overlay over /etc (for ld.so.cache), so the machine's own /usr/local and
# /etc are never touched. Needs root (else skipped, 77) and the default prefix /usr/local.
# Usage: readme.sh BUILD_DIR SOURCE_ROOT HAVE_FORTRAN (true: the build has the Fortran module)
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
have_fortran=${3:-true}
. "$src/tests/integration/pidns.sh" # a pid and mount namespace of its own; $sfx
readme=$src/README.md
# A user's shell: nothing of a runtime or a test in the environment.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^DRAGON_')
unset LD_LIBRARY_PATH PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

prefix=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
if [ "$prefix" != /usr/local ]; then
  echo "skip: the build's prefix is $prefix; this test installs to /usr/local only"; exit 77
fi

work=$(mktemp -d)
mkdir -p "$work/ns"
mount -t tmpfs tmpfs "$work/ns" # all the mounts' scratch space, gone with the namespace
mkdir -p "$work/ns/etc-upper" "$work/ns/etc-work" "$work/ns/blocks"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/ns/etc-upper,workdir=$work/ns/etc-work" /etc ||
  { echo "FAIL: cannot overlay /etc"; exit 1; }
mount -t tmpfs tmpfs /usr/local || { echo "FAIL: cannot mount a tmpfs over /usr/local"; exit 1; }
trap 'umount /usr/local /etc 2>/dev/null; umount "$work/ns" 2>/dev/null; rm -rf "$work"' EXIT

fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# The library must not be found before the install (or the check below proves nothing).
if ldconfig -p | grep -q 'libdragon-c\.so'; then
  echo "FAIL: libdragon-c is in the dynamic linker's cache before the install"; exit 1
fi
if ! out=$(meson install -C "$build" --no-rebuild 2>&1); then
  echo "$out"; echo "FAIL: meson install"; exit 1
fi
# What the install said about finding the library at run time.
grep 'libdragon:' <<<"$out" || true
grep -q "^libdragon: /usr/local/.* is in the dynamic linker's cache" <<<"$out" ||
  fail "meson install did not say that the dynamic linker finds the library"
export PATH=/usr/local/bin:$PATH
command -v dragon | grep -q '^/usr/local/bin/dragon$' || { echo "FAIL: dragon is not in /usr/local/bin"; exit 1; }

# The README's compile commands, as written.
cc_cmd=$(grep -m1 '^cc app\.c ' "$readme") || { echo "FAIL: README.md has no 'cc app.c ...' line"; exit 1; }
cxx_cmd=$(grep -m1 '^c++ .*app\.cpp ' "$readme") || { echo "FAIL: README.md has no 'c++ ... app.cpp ...' line"; exit 1; }
f90_cmd=$(grep -m1 '^gfortran app\.f90 ' "$readme") || { echo "FAIL: README.md has no 'gfortran app.f90 ...' line"; exit 1; }

# The blocks: blocks/LINE.c or LINE.cpp (LINE: the block's first line in the README, which
# #line gives the compiler too), listed with 1 when the block needs dragon.
awk -v dir="$work/ns/blocks" '
  /^```(c|c\+\+|fortran)$/ && !inb {
    ext = $0 == "```c" ? "c" : $0 == "```c++" ? "cpp" : "F90" # .F90: gfortran runs cpp, for #line
    inb = 1; f = sprintf("%s/%d.%s", dir, NR + 1, ext)
    printf "#line %d \"README.md\"\n", NR + 1 > f
    print f, (prev == "<!-- readme-test: needs dragon -->") > (dir "/list")
    next
  }
  inb && /^```$/ { inb = 0; close(f); next }
  inb { print > f }
  { prev = $0 }
' "$readme"
[ -s "$work/ns/blocks/list" ] || { echo "FAIL: no C, C++ or Fortran block found in README.md"; exit 1; }

# Nothing of ours left after a run: no pool the README's programs name (they all begin with
# "readme"), nothing of runtime $1, no process of it.
left_after() { # left_after RUNTIME_ID: prints what is left
  ls /dev/shm 2>/dev/null | grep -E "^dragon\..*\.pool\.readme|^dragon\.$1\." || true
  grep -lsa -- "--runtime-id.$1" /proc/[0-9]*/cmdline 2>/dev/null || true
  grep -lsa "DRAGON_RUNTIME_ID=$1" /proc/[0-9]*/environ 2>/dev/null || true
}

blocks=0
while read -r file needs; do
  blocks=$((blocks + 1))
  fails_before=$fails
  line=${file##*/}; line=${line%%.*}
  where="README.md:$line"
  if [ "$file" != "${file%.F90}" ] && [ "$have_fortran" != true ]; then
    echo "skip $where: a Fortran block, and this build has no Fortran module"; continue
  fi
  exe="$work/ns/blocks/app-$line"
  case $file in
    *.c) cmd=${cc_cmd/app.c/$file} ;;
    *.cpp) cmd=${cxx_cmd/app.cpp/$file} ;;
    *) cmd=${f90_cmd/app.f90/$file} ;;
  esac
  if ! out=$(eval "$cmd -Wall -Wextra -Werror -o $exe" 2>&1); then
    printf '%s\n' "$out"; fail "$where: the block does not compile with '$cmd'"; continue
  fi
  loaded=$(ldd "$exe" | awk '/libdragon-c/ {print $3}')
  case $loaded in
    /usr/local/*) ;;
    not) fail "$where: the program does not find libdragon-c at run time (ldd: not found)"; continue ;;
    *) fail "$where: the program loads '$loaded', not the installed library"; continue ;;
  esac
  for run in 1 2; do
    out=$(cd "$work/ns" && timeout 60 "$exe" 2>&1); rc=$?
    if [ "$needs" = 1 ]; then
      if [ $rc -eq 0 ] || [ $rc -ge 124 ] || ! grep -qi 'runtime' <<<"$out"; then
        printf '%s\n' "$out"; fail "$where: outside dragon, run $run: exit $rc, not a clear failure naming the runtime"
      fi
    elif [ $rc -ne 0 ]; then
      printf '%s\n' "$out"; fail "$where: outside dragon, run $run: exit $rc"
    fi
    left=$(left_after "none$sfx")
    [ -z "$left" ] || fail "$where: outside dragon, run $run left: $left"
  done
  # A program for dragon runs once more on a node with 2 GPUs (a topology file), for the
  # paths that only GPUs take.
  runs="1 2"
  [ "$needs" = 1 ] && runs="1 2 gpus"
  for run in $runs; do
    rt="readme$sfx-$line-$run"
    topo=()
    [ "$run" = gpus ] && topo=(--topology "$src/tests/data/topology/nvidia-2gpu-2cpu.xml")
    out=$(cd "$work/ns" && timeout 120 dragon --runtime-id "$rt" "${topo[@]}" "$exe" 2>&1); rc=$?
    if [ $rc -ne 0 ]; then
      printf '%s\n' "$out"; fail "$where: inside dragon, run $run: exit $rc"
    fi
    left=$(left_after "$rt")
    [ -z "$left" ] || fail "$where: inside dragon, run $run left: $left"
  done
  [ $fails -eq $fails_before ] || continue
  echo "ok   $where ($([ "$needs" = 1 ] && echo "needs dragon" || echo "runs anywhere")): compiled, ran twice outside and twice inside dragon; last output:"
  sed 's/^/       /' <<<"$out"
done <"$work/ns/blocks/list"

echo "$blocks block(s), $fails failure(s)"
[ $fails -eq 0 ]
