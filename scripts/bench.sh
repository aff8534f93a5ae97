#!/bin/bash
# The main job: builds iavl_bench (Release) and runs the benchmark sweep.
#
#   bash scripts/bench.sh                 default sweep (under 10 minutes on 2 cores)
#   bash scripts/bench.sh full            every parameter combination, up to 10M keys (about three hours)
#   bash scripts/bench.sh [full] ARGS...  ARGS go to iavl_bench, e.g. --benchmark_filter=block/nodb
#
# Saves Google Benchmark's JSON to benchmarks/results/<host>/<date>-<commit>[-full].json. A whole
# default sweep (no ARGS) then runs scripts/plot.py, which draws the charts beside the JSON and
# rewrites the results table of benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

sweep=default
# 3 repetitions, at least 0.2 s each (block scenarios: 2 s, for their p99): with Google
# Benchmark's default 0.5 s the sweep took 11 min 12 s (2026-11-29, d19238b).
timing=(--benchmark_repetitions=3 --benchmark_min_time=0.2)
if [ "${1:-}" = full ]; then
  sweep=full
  # About 2,000 benchmarks and 10M-key stores: one short run each keeps it near three hours.
  timing=(--benchmark_repetitions=1 --benchmark_min_time=0.2)
  shift
fi

build=build/bench
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIAVL_BUILD_BENCHMARKS=ON -DIAVL_BUILD_TESTS=OFF \
  -DIAVL_BUILD_TOOL=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target iavl_bench

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit+=-dirty
suffix=""
[ "$sweep" = default ] || suffix=-$sweep
out_dir=benchmarks/results/$(hostname -s)
out=$out_dir/$(date +%F)-$commit$suffix.json
mkdir -p "$out_dir"

# Repetitions give medians on a shared, noisy machine; ARGS come last, so they override these.
start=$(date +%s)
"$build/bench/iavl_bench" --sweep="$sweep" "${timing[@]}" --benchmark_display_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@"
echo "bench: ran in $(($(date +%s) - start)) s; results in $out" >&2

if [ "$sweep" = default ] && [ $# -eq 0 ]; then
  /usr/bin/python3 scripts/plot.py "$out" --readme benchmarks/README.md
else
  echo "bench: chart it with /usr/bin/python3 scripts/plot.py $out" >&2
fi
