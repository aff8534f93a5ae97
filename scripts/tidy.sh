#!/bin/bash
# Runs clang-tidy (the checks chosen in .clang-tidy) on the compiled sources under src/, with the
# compile commands of a build. Exit status non-zero on any finding.
#   bash scripts/tidy.sh [BUILD_DIR]   (default build/release; configured here if it is not yet)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
[ -f "$build/compile_commands.json" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
# clang's "N warnings generated" counts the diagnostics it suppressed (system headers): noise.
run-clang-tidy-14 -p "$build" -j "${JOBS:-2}" -quiet "$PWD/src/" 2>&1 | sed '/^[0-9]* warnings\? generated\.$/d'
