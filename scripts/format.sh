#!/bin/bash
# Formats every tracked .cpp/.hpp file with .clang-format.
#   bash scripts/format.sh           rewrite the files that differ
#   bash scripts/format.sh --check   change nothing; list the files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
format=clang-format-14  # pinned: another version may format differently
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
case ${1:-} in
  "") "$format" -i "${files[@]}" ;;
  --check)
    status=0
    for f in "${files[@]}"; do
      "$format" "$f" | cmp -s - "$f" || { echo "not formatted: $f (run bash scripts/format.sh)"; status=1; }
    done
    exit $status
    ;;
  *) echo "usage: format.sh [--check]" >&2; exit 2 ;;
esac
