#!/bin/bash
# Installs every Debian package that building, testing and benchmarking iavl-cpp needs.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  g++ cmake ninja-build git          # toolchain
  libssl-dev                         # SHA-256 (the library's one required dependency)
  libleveldb-dev                     # the LevelDB node store
  libsnappy-dev                      # Debian's leveldb CMake package links -lsnappy (not a dependency of libleveldb-dev)
  libcli11-dev                       # argument parsing of the iavl tool
  libgtest-dev libgmock-dev          # tests
  libbenchmark-dev                   # the benchmark suite
  clang libclang-rt-dev              # libFuzzer for the decoder fuzz tests
  clang-format-14 clang-tidy-14      # scripts/format.sh, scripts/tidy.sh
  doxygen                            # scripts/docs.sh: the API reference
  python3 python3-matplotlib         # scripts/plot.py
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
