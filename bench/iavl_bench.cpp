// iavl_bench: the benchmark suite of iavl-cpp (Google Benchmark).
//
// Every benchmark is named scenario/store/initial_keys/key_bytes/value_bytes/block_size, e.g.
// block/nodb/1000000/32/100/1000, so --benchmark_filter picks any slice. benchmarks/README.md
// says what each scenario and counter means.
//
//   iavl_bench [--sweep=default|full|smoke] [--data_dir=DIR] [Google Benchmark flags]

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <istream>
#include <memory>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include "iavl/detail/node_pool.hpp"
#include "iavl/hash.hpp"
#include "limits.hpp"
#include "stores.hpp"
#include "support.hpp"

namespace bench {
namespace {

struct config {
  std::int64_t keys;  // initial size
  int key_len;
  int value_len;
  int block;  // transactions (or sets) per commit
};

/// "keys<sep>key_len<sep>value_len": the parameters that make a fixture.
std::string fixture_params(const config& c, const std::string& sep) {
  return std::to_string(c.keys) + sep + std::to_string(c.key_len) + sep + std::to_string(c.value_len);
}

enum class scenario {
  query_hit,
  query_miss,
  update,
  insert,
  block,
  block_pruned,  // block with a retention policy: commits that prune
  iterate,
  commit_only,
  export_state,  // the tree's own: state sync and proofs
  import_state,
  proofs,
  node_hash,       // the machine's limits (limits.hpp): SHA-256 of a node's preimage
  query_dependent  // and lookups one after the other, each key depending on the lookup before
};

const char* name_of(scenario s) {
  constexpr std::array names = {"query_hit",    "query_miss", "update",         "insert",       "block",
                                "block_pruned", "iterate",    "commit_only",    "export_state", "import_state",
                                "proofs",       "node_hash",  "query_dependent"};
  return names[static_cast<std::size_t>(s)];
}

constexpr std::size_t scan_length = 10000;
constexpr std::int64_t pruned_versions = 10;  // block_pruned keeps the last 10 versions

std::filesystem::path data_dir;  // where stores keep their files

// ---- fixtures: the loaded initial keys, built once and reused ----------------------------------

struct fixture_base {
  virtual ~fixture_base() = default;
};

template <class Db>
struct fixture : fixture_base {
  std::unique_ptr<Db> db;
  std::filesystem::path dir;
  std::int64_t keys = 0;
  double bytes_per_key = 0;       // resident memory the loaded store added, per key
  double disk_bytes_per_key = 0;  // its files, per key (0: none)
  std::uint64_t next_new = 0;     // the next unused index of new_keys

  ~fixture() override {
    db.reset();  // close before removing the files
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

/// Waits for the background writes and freeing of what ran before (the load, an earlier
/// benchmark, the untimed removal of added keys): neither a timing nor a memory figure may
/// include them.
template <class Db>
void settle(Db& db) {
  if constexpr (std::is_same_v<Db, iavl_db>) db.settle();
}

/// Loads `keys` existing_keys into `db` in commits of up to 100,000 keys, reporting progress.
template <class Db>
void load(Db& db, const std::string& what, const config& c) {
  constexpr std::int64_t chunk = 100000;
  key_maker key(c.key_len);
  value_maker value(c.value_len);
  stopwatch sw;
  int shown = 0;
  for (std::int64_t i = 0; i < c.keys; ++i) {
    db.set(key(existing_keys, i), value(scramble(i)));
    if ((i + 1) % chunk == 0 || i + 1 == c.keys) {
      db.commit();
      const int percent = static_cast<int>((i + 1) * 100 / c.keys);
      if (c.keys >= 10 * chunk && percent / 10 > shown) {
        shown = percent / 10;
        std::fprintf(stderr, "loading %s: %d%% (%.1f s)\n", what.c_str(), percent, sw.seconds());
      }
    }
  }
  settle(db);  // on disk before it is measured
  std::fprintf(stderr, "loaded %s in %.1f s\n", what.c_str(), sw.seconds());
}

/// Holds the fixture of one set of parameters at a time: a benchmark with other parameters
/// evicts it (before building its own), which bounds memory to one loaded store.
class fixture_cache {
 public:
  /// The fixture of `kind` with the initial keys of `c`.
  template <class Db>
  fixture<Db>* get(store_kind kind, const config& c) {
    const std::array<std::int64_t, 4> key = {static_cast<std::int64_t>(kind), c.keys, c.key_len, c.value_len};
    if (held_ && key == key_) return static_cast<fixture<Db>*>(held_.get());
    const std::string what = std::string(name_of(kind)) + " " + fixture_params(c, "/");
    auto f = std::make_unique<fixture<Db>>();
    f->dir = data_dir / (std::string(name_of(kind)) + "-" + fixture_params(c, "-"));
    std::filesystem::remove_all(f->dir);
    std::filesystem::create_directories(f->dir);
    clear();
    f->db = Db::open(kind, f->dir);
    const std::int64_t rss_before = anon_rss_bytes();
    const iavl::detail::node_pool::usage pool_before = iavl::detail::node_pool::current_usage();
    load(*f->db, what, c);
    release_free_memory();
    const iavl::detail::node_pool::usage pool_after = iavl::detail::node_pool::current_usage();
    f->keys = c.keys;
    // The growth of the process's own resident memory (no file pages),
    // with the node pool counted by the bytes its nodes take:
    // the pool keeps freed memory for reuse, so a store loaded after another one reuses pages
    // that the resident set already counted.
    const std::int64_t grown = anon_rss_bytes() - rss_before - (pool_after.slab_bytes - pool_before.slab_bytes) +
                               (pool_after.in_use_bytes - pool_before.in_use_bytes) +
                               (pool_after.stranded_bytes - pool_before.stranded_bytes);
    f->bytes_per_key = static_cast<double>(grown) / static_cast<double>(c.keys);
    f->disk_bytes_per_key = static_cast<double>(disk_bytes(f->dir)) / static_cast<double>(c.keys);
    held_ = std::move(f);
    key_ = key;
    return static_cast<fixture<Db>*>(held_.get());
  }

  void clear() {
    held_.reset();
    release_free_memory();
  }

 private:
  std::unique_ptr<fixture_base> held_;
  std::array<std::int64_t, 4> key_{};
};

fixture_cache cache;

// ---- scenarios --------------------------------------------------------------------------------

std::uint64_t next_seed = 1;  // each run draws other keys, so no run finds its keys cached by the last

/// Removes new_keys [from, f.next_new) again, so that the store is back at its initial keys.
template <class Db>
void forget_new_keys(fixture<Db>& f, key_maker& key, std::uint64_t from) {
  for (std::uint64_t i = from; i < f.next_new; ++i) f.db->erase(key(new_keys, i));
  f.db->commit();
}

void report_per_op(benchmark::State& state, double seconds) {
  state.counters["us_per_op"] = seconds * 1e6 / static_cast<double>(state.iterations());
}

void report_commits(benchmark::State& state, const std::vector<double>& commit_seconds) {
  state.counters["commit_p50_us"] = percentile(commit_seconds, 0.50) * 1e6;
  state.counters["commit_p99_us"] = percentile(commit_seconds, 0.99) * 1e6;
}

/// Swallows what is written: the export is timed without the cost of keeping the stream.
class null_buf : public std::streambuf {
 protected:
  int_type overflow(int_type c) override { return traits_type::not_eof(c); }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

/// Reads a string in place (an istringstream would copy the stream first).
class view_buf : public std::streambuf {
 public:
  explicit view_buf(std::string& s) { setg(s.data(), s.data(), s.data() + s.size()); }
};

constexpr std::size_t proof_batch = 1000;

/// The scenarios of the tree alone: export and import of the last commit (state sync), and
/// batches of proofs of random present keys.
void run_tree_only(benchmark::State& state, scenario sc, store_kind kind, const iavl::snapshot& last, rng& r,
                   key_maker& key) {
  const auto n = static_cast<std::uint64_t>(last.size());
  double seconds = 0;
  std::uint64_t done = 0;
  switch (sc) {
    case scenario::export_state: {
      for (auto _ : state) {
        null_buf sink;
        std::ostream out(&sink);
        stopwatch sw;
        done += iavl::export_state(last, out);
        seconds += sw.seconds();
      }
      state.counters["nodes_per_s"] = static_cast<double>(done) / seconds;
      break;
    }
    case scenario::import_state: {
      std::ostringstream exported;  // once, untimed
      iavl::export_state(last, exported);
      std::string stream = std::move(exported).str();
      const std::filesystem::path dir = data_dir / "import";
      for (auto _ : state) {
        state.PauseTiming();
        std::filesystem::remove_all(dir);
        std::unique_ptr<iavl::versioned_tree> db = make_db(kind, dir);
        view_buf source(stream);
        std::istream in(&source);
        state.ResumeTiming();
        stopwatch sw;
        benchmark::DoNotOptimize(iavl::import_state(*db, in));
        seconds += sw.seconds();
        done += 2 * n - 1;
        state.PauseTiming();
        db.reset();
        std::filesystem::remove_all(dir);
        state.ResumeTiming();
      }
      state.counters["nodes_per_s"] = static_cast<double>(done) / seconds;
      break;
    }
    case scenario::proofs: {
      std::vector<std::string> keys;
      for (auto _ : state) {
        state.PauseTiming();
        keys.clear();
        for (std::size_t i = 0; i < proof_batch; ++i) keys.emplace_back(key(existing_keys, r.below(n)));
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        state.ResumeTiming();
        stopwatch sw;
        const std::vector<std::string> proofs = iavl::batch_proofs(last, keys);
        seconds += sw.seconds();
        done += proofs.size();
        benchmark::DoNotOptimize(proofs.data());
      }
      state.counters["proofs_per_s"] = static_cast<double>(done) / seconds;
      break;
    }
    default: break;
  }
}

/// Reads random keys of a store-backed tree until its node cache holds 90% of its budget (where
/// commits trim it back to) or a round of reads adds little (the tree is all in memory). A
/// running node's cache is full; the load's commits of 100,000 keys leave it a tenth or more
/// below its budget once the first blocks are committed (each makes room for one like it), and a
/// benchmark would otherwise measure it filling up. Untimed.
template <class Db>
void warm_cache(Db& db, const config& c, rng& r) {
  if constexpr (std::is_same_v<Db, iavl_db>) {
    constexpr int round = 10000;
    const auto full = static_cast<std::int64_t>(iavl::options{}.cache_bytes) / 10 * 9;
    key_maker key(c.key_len);
    const std::int64_t before = db.cached_bytes();  // 0: no store, no cache
    for (std::int64_t cached = before; cached > 0 && cached < full;) {
      for (int i = 0; i < round; ++i)
        benchmark::DoNotOptimize(db.get(key(existing_keys, r.below(static_cast<std::uint64_t>(c.keys)))));
      const std::int64_t now = db.cached_bytes();
      if (now - cached < (std::int64_t{1} << 20)) break;
      cached = now;
    }
    if (db.cached_bytes() - before >= (std::int64_t{1} << 20)) {
      std::fprintf(stderr, "warmed the node cache: %.0f -> %.0f MiB\n", static_cast<double>(before) / (1 << 20),
                   static_cast<double>(db.cached_bytes()) / (1 << 20));
    }
  }
}

/// The bare tree of the limit benchmarks (limits.hpp), of one size at a time: built once for their
/// repetitions, dropped when a store's benchmark runs, whose peak memory it is not part of.
std::unique_ptr<bare_tree> limit_tree;

/// One benchmark: scenario `sc` on store `kind` with parameters `c`.
template <class Db>
void run(benchmark::State& state, scenario sc, store_kind kind, const config& c) {
  limit_tree.reset();
  fixture<Db>* f = cache.get<Db>(kind, c);
  reset_peak_rss();
  Db& db = *f->db;
  settle(db);
  key_maker key(c.key_len);
  value_maker value(c.value_len);
  rng r(scramble(next_seed++));
  warm_cache(db, c, r);
  const auto n = static_cast<std::uint64_t>(f->keys);
  // The block scenario's transaction key: half existing keys, half new ones.
  auto mixed_key = [&] { return r.coin() ? key(existing_keys, r.below(n)) : key(new_keys, f->next_new++); };
  // New keys are removed again (untimed) whenever they add up to a tenth of the initial keys, so
  // that the store stays near its initial size however many iterations a benchmark runs.
  std::uint64_t kept_from = f->next_new;
  double untimed = 0;
  auto keep_size = [&] {
    if (f->next_new - kept_from < std::max<std::uint64_t>(n / 10, 1)) return;
    state.PauseTiming();
    stopwatch sw;
    forget_new_keys(*f, key, kept_from);
    settle(db);
    kept_from = f->next_new;
    untimed += sw.seconds();
    state.ResumeTiming();
  };

  switch (sc) {
    case scenario::query_hit:
    case scenario::query_miss: {
      const key_family family = sc == scenario::query_hit ? existing_keys : absent_keys;
      stopwatch sw;
      for (auto _ : state) benchmark::DoNotOptimize(db.get(key(family, r.below(n))));
      report_per_op(state, sw.seconds());
      break;
    }
    case scenario::update:
    case scenario::insert: {
      std::int64_t pending = 0;
      stopwatch sw;
      for (auto _ : state) {
        db.set(sc == scenario::update ? key(existing_keys, r.below(n)) : key(new_keys, f->next_new++), value(r.next()));
        if (++pending == c.block) {
          db.commit();
          pending = 0;
          keep_size();
        }
      }
      report_per_op(state, sw.seconds() - untimed);
      db.commit();
      break;
    }
    case scenario::block:
    case scenario::block_pruned: {
      if constexpr (std::is_same_v<Db, iavl_db>) {
        if (sc == scenario::block_pruned) db.prune_to(pruned_versions);  // untimed: the backlog goes first
      }
      std::vector<double> commit_seconds;
      double total = 0;
      long loads = 0, leaf_loads = 0;  // store reads in the timed spans (not keep_size's)
      for (auto _ : state) {
        const long nodes_before = reads().nodes, leaves_before = reads().leaves;
        stopwatch block_sw;  // the same span as the benchmark's own timer
        for (int i = 0; i < c.block; ++i) db.tx(mixed_key(), value(r.next()));
        const double txs = block_sw.seconds();
        db.commit();
        const double all = block_sw.seconds();
        commit_seconds.push_back(all - txs);
        total += all;
        loads += reads().nodes - nodes_before;
        leaf_loads += reads().leaves - leaves_before;
        keep_size();
      }
      const double transactions = static_cast<double>(state.iterations()) * c.block;
      if (tree_on_store(kind)) {
        state.counters["loads_per_tx"] = static_cast<double>(loads) / transactions;
        state.counters["leaf_loads_per_tx"] = static_cast<double>(leaf_loads) / transactions;
      }
      state.counters["us_per_tx"] = total * 1e6 / transactions;
      state.counters["tx_per_s"] = transactions / total;
      double commit_total = 0;
      for (double s : commit_seconds) commit_total += s;
      state.counters["commit_share"] = commit_total / total;
      report_commits(state, commit_seconds);
      if constexpr (std::is_same_v<Db, iavl_db>) {
        if (sc == scenario::block_pruned) db.prune_to(0);  // the other scenarios keep every version
      }
      break;
    }
    case scenario::iterate: {
      std::int64_t entries = 0;
      stopwatch sw;
      for (auto _ : state) entries += static_cast<std::int64_t>(db.scan(key(existing_keys, r.below(n)), scan_length));
      report_per_op(state, sw.seconds());
      state.SetItemsProcessed(entries);
      break;
    }
    case scenario::export_state:
    case scenario::import_state:
    case scenario::proofs:
      if constexpr (std::is_same_v<Db, iavl_db>) run_tree_only(state, sc, kind, db.last_commit(), r, key);
      break;
    case scenario::node_hash:
    case scenario::query_dependent: break;  // run_limit's only
    case scenario::commit_only: {
      std::vector<double> commit_seconds;
      for (auto _ : state) {
        state.PauseTiming();
        for (int i = 0; i < c.block; ++i) db.set(mixed_key(), value(r.next()));
        state.ResumeTiming();
        stopwatch sw;
        db.commit();
        commit_seconds.push_back(sw.seconds());
        keep_size();
      }
      double total = 0;
      for (double s : commit_seconds) total += s;
      report_per_op(state, total);
      report_commits(state, commit_seconds);
      break;
    }
  }
  if (f->next_new != kept_from) forget_new_keys(*f, key, kept_from);

  state.counters["rss_bytes"] = static_cast<double>(peak_rss_bytes());
  // The process's own memory, without the file pages LevelDB maps to read its tables (which
  // VmRSS counts, and the kernel can drop at will).
  state.counters["rss_anon_bytes"] = static_cast<double>(anon_rss_bytes());
  const heap_usage heap = malloc_heap_usage();  // the part of rss_anon_bytes that is not the pool's
  state.counters["heap_bytes"] = static_cast<double>(heap.held_bytes);
  state.counters["heap_in_use_bytes"] = static_cast<double>(heap.in_use_bytes);
  state.counters["bytes_per_key"] = f->bytes_per_key;
  if constexpr (std::is_same_v<Db, iavl_db>) {  // where the tree's share of rss_anon_bytes goes
    const iavl::detail::node_pool::usage pool = iavl::detail::node_pool::current_usage();
    state.counters["pool_bytes"] = static_cast<double>(pool.slab_bytes);
    state.counters["pool_in_use_bytes"] = static_cast<double>(pool.in_use_bytes + pool.stranded_bytes);
    state.counters["cached_bytes"] = static_cast<double>(db.cached_bytes());
  }
  if (kind == store_kind::leveldb || kind == store_kind::raw_leveldb) {
    state.counters["disk_bytes_per_key"] = f->disk_bytes_per_key;
  }
}

// ---- the machine's limits (limits.hpp) -----------------------------------------------------------

/// The machine's side of a target, on the same keys count: `query_hit` is a lookup of a random
/// key in a bare tree of that many leaves, as the issue measured its limit; `query_dependent` the
/// same with each key depending on the lookup before (so that the processor cannot overlap
/// consecutive lookups, which it does for a loop this small); `node_hash` is SHA-256 of a 75-byte
/// preimage (an inner node's) taking in the hash before it, as a parent takes in its child's.
void run_limit(benchmark::State& state, scenario sc, const config& c) {
  reset_peak_rss();
  rng r(scramble(next_seed++));
  stopwatch sw;
  double bytes_per_key = 0;
  if (sc == scenario::query_hit || sc == scenario::query_dependent) {
    const auto n = static_cast<std::uint64_t>(c.keys);
    if (!limit_tree || limit_tree->leaves() != n) {
      limit_tree.reset();
      cache.clear();  // the stores' fixtures are not needed beside it
      limit_tree = std::make_unique<bare_tree>(n);
    }
    sw = stopwatch();
    if (sc == scenario::query_hit) {
      for (auto _ : state) benchmark::DoNotOptimize(limit_tree->contains(r.below(n)));
    } else {
      std::uint64_t found = 1;
      for (auto _ : state)
        found = limit_tree->contains(r.below(n) & (0 - found)) ? 1 : 0;  // a key only once found is known
      benchmark::DoNotOptimize(found);
    }
    bytes_per_key = static_cast<double>(limit_tree->bytes()) / static_cast<double>(n);
  } else {
    std::array<unsigned char, 75> preimage{};
    for (auto& b : preimage) b = static_cast<unsigned char>(r.next());
    for (auto _ : state) {
      const iavl::hash256 h = iavl::sha256(preimage.data(), preimage.size());
      std::memcpy(preimage.data() + 10, h.bytes.data(), h.bytes.size());
    }
    benchmark::DoNotOptimize(preimage);
  }
  report_per_op(state, sw.seconds());
  state.counters["bytes_per_key"] = bytes_per_key;
  state.counters["rss_bytes"] = static_cast<double>(peak_rss_bytes());
}

// ---- registration -------------------------------------------------------------------------------

/// The initial keys of a fixture and the block sizes run on it.
struct sweep_point {
  config fixture;  // its block is the one that block-size-blind scenarios (queries, scans) run with
  std::vector<int> blocks;
};

std::vector<sweep_point> sweep(const std::string& which) {
  if (which == "smoke") return {{{1000, 16, 40, 10}, {10}}};  // tests that every benchmark runs
  if (which == "default") {
    return {
        {{1000000, 32, 100, 1000}, {1000}},  // the headline configuration
        {{100000, 16, 40, 100}, {100}},      // like for like with the 2017 Go tree of the performance plan
    };
  }
  std::vector<sweep_point> all;  // full: every combination, smallest first
  for (std::int64_t keys : {10000, 100000, 1000000, 10000000}) {
    for (int key_len : {16, 32}) {
      for (int value_len : {40, 100, 1000}) all.push_back({{keys, key_len, value_len, 1000}, {100, 1000, 2000}});
    }
  }
  return all;
}

/// Whether a store of `kind` with the initial keys of `c` fits in half of this machine's memory.
/// Resident bytes per key, as measured in the full sweep: the tree alone takes the key and value
/// and about 250 bytes (std::map about 300 with the pool the trees left); the memory store (every version kept,
/// serialized, plus the node cache) about 3 times the key and value and 1500 bytes (16 GB for 10M keys of 16+40 bytes).
bool fits_in_memory(store_kind kind, const config& c) {
  const double data = c.key_len + c.value_len;
  double per_key = 0;
  switch (kind) {
    case store_kind::nodb: per_key = data + 250; break;
    case store_kind::mem: per_key = 3 * data + 1500; break;
    case store_kind::std_map: per_key = data + 300; break;
    case store_kind::leveldb:
    case store_kind::raw_leveldb: return true;  // on disk, with bounded caches
  }
  return per_key * static_cast<double>(c.keys) < 0.5 * static_cast<double>(proc_meminfo_bytes("MemTotal"));
}

double block_min_time = 2.0;  // seconds of blocks a block benchmark runs at least: enough for a p99

std::string benchmark_name(scenario sc, const char* store, const config& c) {
  return std::string(name_of(sc)) + "/" + store + "/" + fixture_params(c, "/") + "/" + std::to_string(c.block);
}

template <class Db>
void add(scenario sc, store_kind kind, const config& c, bool smoke) {
  auto* b = benchmark::RegisterBenchmark(benchmark_name(sc, name_of(kind), c).c_str(),
                                         [=](benchmark::State& s) { run<Db>(s, sc, kind, c); });
  // Wall time, which includes waiting for the disk (Google Benchmark appends "/real_time").
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
  const bool blocks = sc == scenario::block || sc == scenario::block_pruned;
  if (blocks && !smoke) b->MinTime(block_min_time);
  if (sc == scenario::export_state || sc == scenario::import_state || sc == scenario::proofs) {
    b->Unit(benchmark::kMillisecond);
  }
}

/// Every scenario of one store on one fixture: those that commit once per block size, the
/// others (which do not depend on it) once.
template <class Db>
void register_store(store_kind kind, const sweep_point& p, bool smoke) {
  constexpr bool tree = std::is_same_v<Db, iavl_db>;
  const bool has_store = tree_on_store(kind);
  for (scenario sc : {scenario::query_hit, scenario::query_miss, scenario::iterate})
    add<Db>(sc, kind, p.fixture, smoke);
  for (int block : p.blocks) {
    config c = p.fixture;
    c.block = block;
    for (scenario sc : {scenario::update, scenario::insert, scenario::block}) add<Db>(sc, kind, c, smoke);
    if (tree && has_store) add<Db>(scenario::block_pruned, kind, c, smoke);           // nodb keeps one version anyway
    if (kind != store_kind::std_map) add<Db>(scenario::commit_only, kind, c, smoke);  // a map has nothing to commit
  }
  // State sync and proofs, which the baselines have not. An import goes into a new store of the
  // benchmark's kind (nodb has none: it has no import).
  if constexpr (tree) {
    for (scenario sc : {scenario::export_state, scenario::import_state, scenario::proofs}) {
      if (kind != store_kind::nodb || sc != scenario::import_state) add<Db>(sc, kind, p.fixture, smoke);
    }
  }
}

void register_all(const std::string& which) {
  // Grouped by fixture, so that each is loaded once per process.
  const bool smoke = which == "smoke";
  if (which == "full") block_min_time = 0.5;  // its 360 block benchmarks would take 12 minutes
  for (const sweep_point& p : sweep(which)) {
    // The limits first, right before nodb, which they are compared with: this VM's speed changes
    // from one minute to the next.
    for (scenario sc : {scenario::query_hit, scenario::query_dependent, scenario::node_hash}) {
      benchmark::RegisterBenchmark(benchmark_name(sc, "limit", p.fixture).c_str(),
                                   [sc, c = p.fixture](benchmark::State& s) { run_limit(s, sc, c); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
    for (store_kind kind : {store_kind::nodb, store_kind::mem, store_kind::leveldb}) {
      if (fits_in_memory(kind, p.fixture)) register_store<iavl_db>(kind, p, smoke);
    }
    if (fits_in_memory(store_kind::std_map, p.fixture)) register_store<map_db>(store_kind::std_map, p, smoke);
    register_store<leveldb_db>(store_kind::raw_leveldb, p, smoke);
  }
}

// ---- context ------------------------------------------------------------------------------------

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 256> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p)) out += buf.data();
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void add_context(const std::string& which) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      benchmark::AddCustomContext("cpu", line.substr(line.find(':') + 2));
      break;
    }
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  benchmark::AddCustomContext("host", host);
#if defined(__clang__)
  benchmark::AddCustomContext("compiler", "clang " __clang_version__);
#else
  benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
#endif
  benchmark::AddCustomContext("build_type", IAVL_BENCH_BUILD_TYPE);
  benchmark::AddCustomContext("cxx_flags", IAVL_BENCH_CXX_FLAGS);
  const std::string git = "git -C '" IAVL_BENCH_SOURCE_DIR "' ";
  std::string commit = command_output(git + "rev-parse --short HEAD 2>/dev/null");
  if (commit.empty()) commit = "unknown";
  if (!command_output(git + "status --porcelain --untracked-files=no 2>/dev/null").empty()) commit += "-dirty";
  benchmark::AddCustomContext("git_commit", commit);
  benchmark::AddCustomContext("sweep", which);
  benchmark::AddCustomContext("peak_rss_reset", reset_peak_rss() ? "per benchmark" : "unavailable (process peak)");
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  std::string which = "default";
  bench::data_dir = std::filesystem::temp_directory_path() / ("iavl_bench." + std::to_string(getpid()));
  // Take our flags out of argv; Google Benchmark parses the rest.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--sweep=")) {
      which = arg.substr(8);
    } else if (arg.starts_with("--data_dir=")) {
      bench::data_dir = std::filesystem::path(arg.substr(11)) / ("iavl_bench." + std::to_string(getpid()));
    } else {
      if (arg == "--help") {
        std::cout << "iavl_bench [--sweep=default|full|smoke] [--data_dir=DIR (default: the temp dir)]\n";
      }
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (which != "default" && which != "full" && which != "smoke") {
    std::cerr << "unknown sweep '" << which << "': default, full or smoke\n";
    return 2;
  }
  bench::register_all(which);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  bench::add_context(which);
  benchmark::RunSpecifiedBenchmarks();
  bench::cache.clear();
  std::filesystem::remove_all(bench::data_dir);
  benchmark::Shutdown();
  return 0;
}
