#!/bin/bash
# Runs every benchmark of iavl_bench briefly on a small tree, checks that each reports its
# counters, and that scripts/plot.py charts the result.
# usage: smoke_test.sh IAVL_BENCH SOURCE_DIR
set -euo pipefail
bench=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bench" --sweep=smoke --benchmark_min_time=0.01 --data_dir="$tmp" \
  --benchmark_out="$tmp/smoke.json" --benchmark_out_format=json >/dev/null

/usr/bin/python3 - "$tmp/smoke.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
seen, bad = set(), []
for b in runs:
    scenario, store = b["run_name"].split("/")[:2]
    seen.add((scenario, store))
    if b.get("error_occurred"):
        bad.append(b["name"] + ": " + b.get("error_message", ""))
        continue
    want = ["rss_bytes", "bytes_per_key"]
    block = ["us_per_tx", "tx_per_s", "commit_share", "commit_p50_us", "commit_p99_us"]
    own = {"block": block, "block_pruned": block,
           "export_state": ["nodes_per_s"], "import_state": ["nodes_per_s"], "proofs": ["proofs_per_s"]}
    want += own.get(scenario, ["us_per_op"])
    want += ["disk_bytes_per_key"] if store in ("leveldb", "raw_leveldb") else []
    # A 1000-key tree may not grow the resident set measurably: its memory counter need only be there.
    bad += [f"{b['name']}: no {c}" for c in want
            if not (b.get(c, 0) > 0 or (c == "bytes_per_key" and c in b) or (c == "commit_share" and store == "std_map"))]
# every scenario on every store, but commit_only on std_map; export and proofs on the three tree
# stores, import and block_pruned on mem and leveldb; the machine's limits: query_hit,
# query_dependent and node_hash
if len(seen) != 7 * 5 - 1 + 3 + 3 + 2 + 2 + 3:
    bad.append(f"ran {len(seen)} scenario/store pairs, expected 47")
print("\n".join(bad) or f"{len(seen)} scenario/store pairs report their counters")
sys.exit(1 if bad else 0)
PY

/usr/bin/python3 "$src/scripts/plot.py" "$tmp/smoke.json"
test -s "$tmp/smoke-per-op.png" && test -s "$tmp/smoke-block.png" && grep -q 'block' "$tmp/smoke.md"
echo "smoke test passed"
