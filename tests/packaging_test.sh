#!/bin/bash
# Consumes iavl-cpp as an application does, from a separate CMake project:
#   packaging_test.sh install WORK_DIR BUILD_DIR [COMPONENT...]
#     installs the built tree BUILD_DIR into the empty prefix WORK_DIR/prefix and checks what is
#     there, then builds and runs tests/install against it (find_package(iavl CONFIG REQUIRED
#     COMPONENTS ...)) and runs the installed tool.
#   packaging_test.sh add_subdirectory WORK_DIR
#     builds and runs tests/add_subdirectory, which add_subdirectory's this source tree.
# CMAKE_GENERATOR and CXX in the environment choose the generator and compiler, as for cmake.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: see the top of packaging_test.sh} work=${2:?WORK_DIR missing}
shift 2
jobs=${JOBS:-2}
rm -rf "$work"
mkdir -p "$work"

build_and_run() {  # build_and_run PROJECT_DIR CMAKE-ARGS...: configure, build and run ./consumer
  local project=$1
  shift
  cmake -S "$project" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release "$@" >"$work/consumer.log" ||
    { cat "$work/consumer.log"; exit 1; }
  cmake --build "$work/consumer" -j "$jobs"
  "$work/consumer/consumer"
}

install_and_consume() {  # install_and_consume BUILD_DIR [COMPONENT...]
  local build=$1
  shift
  local prefix=$work/prefix
  cmake --install "$build" --prefix "$prefix" >/dev/null
  # Every public header, detail/ included, and nothing else.
  diff <(cd "$src/include" && find iavl -name '*.hpp' | sort) <(cd "$prefix/include" && find iavl -type f | sort)
  for f in iavlConfig.cmake iavlConfigVersion.cmake iavlTargets.cmake 'libiavl.*'; do
    [ -n "$(find "$prefix" -name "$f")" ] || { echo "FAIL: $f not installed"; exit 1; }
  done
  if [ -x "$build/iavl" ]; then
    local line
    line=$(printf 'set 68656c6c6f 776f726c64\ncommit\n' | "$prefix/bin/iavl" replay)
    [ "$line" = "1 6032661ab0d201132db7a8fa1da6a0afe427e6278bd122c301197680ab79ca02 1" ] ||
      { echo "FAIL: installed iavl replay printed [$line]"; exit 1; }
  fi
  local components
  components=$(IFS=';'; echo "$*")
  build_and_run "$src/tests/install" -DCMAKE_PREFIX_PATH="$prefix" "-DIAVL_COMPONENTS=$components"
}

case $mode in
  install)
    install_and_consume "$@"
    ;;
  add_subdirectory)
    build_and_run "$src/tests/add_subdirectory" -DIAVL_SOURCE_DIR="$src"
    ;;
  *)
    echo "packaging_test.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
