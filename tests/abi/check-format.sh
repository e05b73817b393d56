#!/usr/bin/env bash
# Every C, C++ source and header of ours is formatted by the root .clang-format.
set -euo pipefail
cd "$1"
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' 2>/dev/null || find include libdragon-c libdragon-cpp tools tests examples -name '*.[ch]' -o -name '*.[ch]pp')
clang-format --dry-run --Werror "${files[@]}"
echo "ok: ${#files[@]} files formatted"
