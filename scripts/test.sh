#!/bin/bash
# Builds iavl-cpp and runs the whole test suite: the format check, a Release build with
# assertions on (warnings are errors) and its tests, clang-tidy and the API reference, then the
# same tests under AddressSanitizer + UndefinedBehaviorSanitizer, then the concurrency tests
# under ThreadSanitizer, then a short libFuzzer run of each fuzz target (clang; FUZZ_SECONDS
# each, default 20). Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=${JOBS:-2}
build() {  # build DIR CMAKE-ARGS...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DIAVL_WERROR=ON -DIAVL_BUILD_BENCHMARKS=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

echo "== Format (.clang-format)"
bash scripts/format.sh --check

echo "== Release build (assertions on)"
build build/release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -g"
ctest --test-dir build/release -j "$jobs" --output-on-failure

echo "== clang-tidy (src/)"
bash scripts/tidy.sh build/release

echo "== API reference (Doxygen)"
bash scripts/docs.sh

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
build build/asan -DCMAKE_BUILD_TYPE=Debug -DIAVL_SANITIZE=address,undefined -DIAVL_BUILD_BENCHMARKS=OFF
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --test-dir build/asan -j "$jobs" --output-on-failure

echo "== ThreadSanitizer (concurrency tests)"
build build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIAVL_SANITIZE=thread -DIAVL_BUILD_BENCHMARKS=OFF
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build/tsan -j "$jobs" --output-on-failure -L concurrency

echo "== libFuzzer (clang, ASan + UBSan)"
build build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIAVL_BUILD_FUZZERS=ON \
  -DIAVL_FUZZ_SECONDS="${FUZZ_SECONDS:-20}" -DIAVL_BUILD_TESTS=OFF -DIAVL_BUILD_BENCHMARKS=OFF -DIAVL_BUILD_TOOL=OFF
ctest --test-dir build/fuzz --output-on-failure -L fuzz

echo "== all tests passed"
