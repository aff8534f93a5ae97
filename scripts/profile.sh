#!/bin/bash
# Profiles one benchmark of iavl_bench with perf and charts where its time goes.
#
#   bash scripts/profile.sh [BENCHMARK-NAME] [SECONDS]
#     default: block/nodb/1000000/32/100/1000 for 15 seconds
#
# Runs the benchmark alone, attaches `perf record` (DWARF call graphs) once the initial keys are
# loaded, so that loading is not in the profile, and writes beside the latest results:
#   benchmarks/results/<host>/profile-<scenario>-<store>.png  the top functions, self and inclusive
#   benchmarks/results/<host>/profile-<scenario>-<store>.txt  perf report's summary
# Needs perf (Debian's linux-perf, installed here) and python3-matplotlib.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-block/nodb/1000000/32/100/1000}
seconds=${2:-15}
bash scripts/setup.sh
command -v perf >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -q linux-perf >/dev/null; }

build=build/bench
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIAVL_BUILD_BENCHMARKS=ON -DIAVL_BUILD_TESTS=OFF \
  -DIAVL_BUILD_TOOL=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target iavl_bench

tmp=$(mktemp -d)
trap 'kill "$bench_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
IFS=/ read -r scenario store keys key_len value_len block <<<"$name"
sweep=default
[ "$keys/$key_len/$value_len/$block" = 1000000/32/100/1000 ] || [ "$keys/$key_len/$value_len/$block" = 100000/16/40/100 ] ||
  sweep=full
"$build/bench/iavl_bench" --sweep=$sweep --benchmark_filter="^$name/" --benchmark_repetitions=1000 \
  --data_dir="$tmp" >"$tmp/out" 2>"$tmp/err" &
bench_pid=$!
until grep -q '^loaded' "$tmp/err"; do
  kill -0 "$bench_pid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
  sleep 1
done
sleep 2  # past the fixture's last commit
perf record -q -F 499 -g --call-graph dwarf,16384 -p "$bench_pid" -o "$tmp/perf.data" -- sleep "$seconds" 2>/dev/null
kill "$bench_pid"

out=benchmarks/results/$(hostname -s)/profile-$scenario-$store
mkdir -p "$(dirname "$out")"
perf report -i "$tmp/perf.data" --children --sort symbol --stdio --percent-limit 1.5 -g none 2>/dev/null |
  grep -v '^$' >"$out.txt"
/usr/bin/python3 - "$out.txt" "$out.png" "$name" "$seconds" <<'PY'
import re, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

rows = []  # (inclusive %, self %, symbol)
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(.*?)(\s+-\s+-)?\s*$", line)
    if m and not m.group(3).startswith("0x"):  # unresolved frames say nothing
        symbol = m.group(3).replace("(anonymous namespace)", "(anon)")
        while re.search(r"<[^<>]*>", symbol):
            symbol = re.sub(r"<[^<>]*>", "", symbol)  # template arguments
        rows.append((float(m.group(1)), float(m.group(2)), symbol[-60:]))
top_self = sorted(rows, key=lambda r: -r[1])[:18]
# Inclusive: the library's and its dependencies' functions, not the harness and thread entry points.
own = re.compile(r"^(iavl::|bench::iavl_db|leveldb::|SHA256|sha256)")
top_incl = [r for r in rows if own.match(r[2])][:18]
fig, axes = plt.subplots(1, 2, figsize=(16, 7))
for ax, data, i, title in ((axes[0], top_self, 1, "self: % of samples in the function itself"),
                           (axes[1], top_incl, 0, "inclusive: % of samples in it or its callees")):
    data = data[::-1]
    ax.barh(range(len(data)), [r[i] for r in data], color="tab:blue" if i else "tab:orange")
    ax.set_yticks(range(len(data)), [r[2] for r in data], fontsize=8)
    ax.set(title=title, xlabel="% of samples")
    ax.grid(True, axis="x", alpha=0.3)
fig.suptitle(f"perf profile of {sys.argv[3]} ({sys.argv[4]} s after loading, both threads)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
print(f"profile: wrote {sys.argv[2]} and {sys.argv[1]}")
PY
