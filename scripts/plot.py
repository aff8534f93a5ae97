#!/usr/bin/python3
"""Charts and markdown tables of an iavl_bench result (Google Benchmark JSON).

usage: /usr/bin/python3 scripts/plot.py RESULT.json [--readme benchmarks/README.md]

Writes beside RESULT.json:
  RESULT-per-op.png  microseconds per operation against initial size, one line per store
  RESULT-block.png   block throughput (transactions per second) against block size
  RESULT.md          the tables of every configuration in the run
With --readme, also replaces the part of that file between the results markers with the
tables of the default sweep's configurations. Every figure is the median over the run's
repetitions, computed here from the individual repetitions.

Needs Debian's python3-matplotlib: run it with /usr/bin/python3.
"""
import argparse
import json
import os
import re
import statistics
import sys
from collections import defaultdict

STORES = ["nodb", "mem", "leveldb", "std_map", "raw_leveldb", "limit"]  # limit: the machine's (bench/limits.hpp)
SCENARIOS = ["query_hit", "query_miss", "update", "insert", "block", "block_pruned", "iterate", "commit_only"]
LIMIT_ONLY = ["query_dependent", "node_hash"]  # tables only
BLOCKS = ("block", "block_pruned")  # per transaction, not per operation
TREE_ONLY = {"export_state": "nodes_per_s", "import_state": "nodes_per_s", "proofs": "proofs_per_s"}  # and counter
DEFAULT_CONFIGS = [(1000000, 32, 100, 1000), (100000, 16, 40, 100)]  # bench/iavl_bench.cpp sweep("default")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# Figures measured elsewhere, quoted for comparison (µs per query/insert/query/insert transaction).
EARLIER = {
    (100000, 16, 40, 100): "2017 Go tree (performance plan): 36 no store, 112 memdb, 320 goleveldb",
    (1000000, 32, 100, 1000): "cosmos/iavl v0.20.1 on this machine at 1M keys (issue 4): 139 in memory, 329 goleveldb",
}


def load(path):
    """(scenario, store, keys, key_len, value_len, block) -> median counters, or an error string."""
    with open(path) as f:
        data = json.load(f)
    runs, results = defaultdict(list), {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue  # our own medians below, from the repetitions
        parts = b["run_name"].split("/")
        key = (parts[0], parts[1], *map(int, parts[2:6]))
        if b.get("error_occurred"):
            results[key] = b.get("error_message", "error")
        else:
            runs[key].append(b)
    for key, reps in runs.items():
        names = {n for b in reps for n, v in b.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        results[key] = {n: statistics.median(b[n] for b in reps if n in b) for n in names}
        results[key]["repetitions"] = len(reps)
    return data["context"], results


def per_op(counters, scenario):
    return counters.get("us_per_tx" if scenario in BLOCKS else "us_per_op")


def fmt(v):
    """About three significant digits, thousands separated."""
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.2g}"


def cell(results, key, show):
    r = results.get(key)
    if r is None:
        return "—"
    if isinstance(r, str):
        return "not yet built" if "not built" in r else r
    return show(r)


def config_title(c):
    keys, key_len, value_len, block = c
    return f"{keys:,} keys, {key_len}-byte keys, {value_len}-byte values, blocks of {block}"


def tables(results, config):
    stores = [s for s in STORES if any((sc, s, *config) in results for sc in SCENARIOS)]
    lines = [f"#### {config_title(config)}", ""]
    lines += ["µs per operation (block, block_pruned: per transaction)", ""]
    lines += ["| scenario | " + " | ".join(stores) + " |", "|---" * (len(stores) + 1) + "|"]
    for sc in SCENARIOS + [sc for sc in LIMIT_ONLY if any((sc, s, *config) in results for s in stores)]:
        row = [cell(results, (sc, s, *config), lambda r: fmt(per_op(r, sc))) for s in stores]
        lines.append(f"| {sc} | " + " | ".join(row) + " |")
    lines += ["", "| store | block tx/s | commit share | commit p50 µs | commit p99 µs | pruning: commit p50 µs "
              "| pruning: p99 µs | memory bytes/key | disk bytes/key | peak RSS MiB |", "|---" * 10 + "|"]
    for s in [s for s in stores if ("block", s, *config) in results]:
        block = ("block", s, *config)
        if isinstance(results.get(block), str):
            lines.append(f"| {s} | {cell(results, block, str)} |" + " |" * 8)
            continue
        runs = [r for k, r in results.items() if k[1:] == (s, *config) and isinstance(r, dict)]
        row = [cell(results, block, lambda r: fmt(r.get("tx_per_s"))),
               cell(results, block, lambda r: f"{r['commit_share']:.0%}" if "commit_share" in r else "—"),
               cell(results, block, lambda r: fmt(r.get("commit_p50_us"))),
               cell(results, block, lambda r: fmt(r.get("commit_p99_us"))),
               cell(results, ("block_pruned", s, *config), lambda r: fmt(r.get("commit_p50_us"))),
               cell(results, ("block_pruned", s, *config), lambda r: fmt(r.get("commit_p99_us"))),
               cell(results, block, lambda r: fmt(r.get("bytes_per_key"))),
               cell(results, block, lambda r: fmt(r.get("disk_bytes_per_key"))),
               fmt(max(r.get("rss_bytes", 0) for r in runs) / 2 ** 20)]
        lines.append(f"| {s} | " + " | ".join(row) + " |")
    own = [s for s in stores if any((sc, s, *config) in results for sc in TREE_ONLY)]
    if own:
        lines += ["", "| store | export nodes/s | import nodes/s | proofs/s |", "|---" * 4 + "|"]
        for s in own:
            row = [cell(results, (sc, s, *config), lambda r, c=counter: fmt(r.get(c))) for sc, counter in TREE_ONLY.items()]
            lines.append(f"| {s} | " + " | ".join(row) + " |")
    if config in EARLIER:
        lines += ["", f"Earlier figures at this configuration, µs per transaction: {EARLIER[config]}."]
    return lines + [""]


def charts(results, base):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    colors = dict(zip(STORES, plt.rcParams["axes.prop_cycle"].by_key()["color"]))  # one color a store

    def axes_style(ax, xs):
        ax.set(xscale="log", yscale="log")
        ax.set_xticks(xs, [f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}K" if x >= 1e3 else str(x) for x in xs])
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.grid(True, which="major", alpha=0.3)

    missing = [s for s in STORES if any(k[1] == s and isinstance(r, str) for k, r in results.items())
               and not any(k[1] == s and isinstance(r, dict) for k, r in results.items())]

    configs = sorted({k[2:] for k in results})
    # µs per op against initial size, at the most common key/value/block lengths (32/100/1000 if run).
    shapes = [c[1:] for c in configs]
    shape = (32, 100, 1000) if (32, 100, 1000) in shapes else max(set(shapes), key=shapes.count)
    fig, axes = plt.subplots(3, 3, figsize=(14, 11))
    for ax, sc in zip(axes.flat, SCENARIOS):
        for s in STORES:
            pts = sorted((k[2], per_op(r, sc)) for k, r in results.items()
                         if k[0] == sc and k[1] == s and k[3:] == shape and isinstance(r, dict))
            if pts:
                ax.plot(*zip(*pts), "o-", label=s, color=colors[s])
        ax.set(title=sc, xlabel="initial keys", ylabel="µs per tx" if sc in BLOCKS else "µs per op")
        axes_style(ax, sorted({c[0] for c in configs if c[1:] == shape}))
    axes.flat[-1].axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if missing:
        handles.append(matplotlib.lines.Line2D([], [], linestyle="none"))
        labels.append(", ".join(missing) + ": not yet built")
    axes.flat[-1].legend(handles, labels, loc="center")
    fig.suptitle(f"iavl_bench: {shape[0]}-byte keys, {shape[1]}-byte values, blocks of {shape[2]} (medians)")
    fig.tight_layout()
    fig.savefig(base + "-per-op.png", dpi=80)
    plt.close(fig)

    # Block throughput against block size, one panel per initial size.
    sizes = sorted({c[0] for c in configs})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.5 * len(sizes), 6), squeeze=False)
    for ax, keys in zip(axes.flat, sizes):
        for s in STORES:
            for key_len, value_len in sorted({c[1:3] for c in configs if c[0] == keys}):
                pts = sorted((k[5], r["tx_per_s"]) for k, r in results.items()
                             if k[:3] == ("block", s, keys) and k[3:5] == (key_len, value_len) and isinstance(r, dict))
                if pts:
                    style = "o-" if (key_len, value_len) == (32, 100) else "s--" if key_len == 32 else "^:"
                    ax.plot(*zip(*pts), style, color=colors[s], label=f"{s} {key_len}+{value_len} B")
        ax.set(title=f"{keys:,} keys", xlabel="block size (transactions)", ylabel="transactions per second")
        axes_style(ax, sorted({c[3] for c in configs if c[0] == keys}))
    legend = {}  # one legend for all panels, below them
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=6, fontsize="small")
    fig.suptitle("iavl_bench block scenario: throughput (medians)")
    fig.tight_layout(rect=(0, 0.06 + 0.025 * (len(legend) // 6), 1, 1))
    fig.savefig(base + "-block.png", dpi=80)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result")
    p.add_argument("--readme", help="markdown file whose results section to rewrite")
    args = p.parse_args()

    context, results = load(args.result)
    base = os.path.splitext(args.result)[0]
    charts(results, base)
    reps = max((r["repetitions"] for r in results.values() if isinstance(r, dict)), default=0)
    header = [f"Run of {context['date'][:10]} on `{context.get('host', context.get('host_name'))}` "
              f"({context.get('cpu', '?')}, {context.get('num_cpus')} cores), {context.get('compiler')}, "
              f"{context.get('build_type')} build, commit {context.get('git_commit')}; "
              f"medians of {reps} repetitions.", ""]
    order = lambda c: (DEFAULT_CONFIGS.index(c) if c in DEFAULT_CONFIGS else len(DEFAULT_CONFIGS), c)
    configs = sorted({k[2:] for k in results}, key=order)
    with open(base + ".md", "w") as f:
        f.write("\n".join(header + [line for c in configs for line in tables(results, c)]))

    if args.readme:
        readme_dir = os.path.dirname(os.path.abspath(args.readme))
        rel = lambda path: os.path.relpath(os.path.abspath(path), readme_dir)
        body = header + [f"JSON: [{rel(args.result)}]({rel(args.result)}). "
                         f"Charts: [per op]({rel(base + '-per-op.png')}), [block]({rel(base + '-block.png')}).", ""]
        body += [line for c in configs if c in DEFAULT_CONFIGS for line in tables(results, c)]
        body += [f"![µs per operation]({rel(base + '-per-op.png')})", ""]
        with open(args.readme) as f:
            text = f.read()
        if BEGIN not in text or END not in text:
            sys.exit(f"{args.readme} has no {BEGIN} ... {END} section")
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END),
                      lambda _: BEGIN + "\n" + "\n".join(body) + "\n" + END, text, flags=re.S)
        with open(args.readme, "w") as f:
            f.write(text)
    print(f"plot: wrote {base}-per-op.png, {base}-block.png, {base}.md" + (f" and {args.readme}" if args.readme else ""))


if __name__ == "__main__":
    main()
