// What the scenarios run against: the IAVL tree on each node store, and the baselines.
//
// Every adapter offers the same operations, so one scenario template serves them all:
//   get(key)        the value in the last commit (an owned copy, as iavl's get returns)
//   set(key, value) / erase(key)   a write into the pending block
//   tx(key, value)  one transaction of the block scenario: get + set in check, get + set in deliver
//   commit()        hash and commit the pending block (the next block starts from it)
//   scan(start, n)  read up to n entries in key order from `start`; returns how many it read
#pragma once

#include <benchmark/benchmark.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iavl/iavl.hpp>
#include <iavl/leveldb_store.hpp>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bench {

/// nodb, mem and leveldb are the IAVL tree on a node store; std_map and raw_leveldb are the
/// baselines (no Merkle tree).
enum class store_kind { nodb, mem, leveldb, std_map, raw_leveldb };

inline const char* name_of(store_kind k) {
  switch (k) {
    case store_kind::nodb: return "nodb";
    case store_kind::mem: return "mem";
    case store_kind::leveldb: return "leveldb";
    case store_kind::std_map: return "std_map";
    case store_kind::raw_leveldb: return "raw_leveldb";
  }
  return "?";
}

/// Whether `kind` is the IAVL tree on a node store (which the block_pruned scenario prunes, and
/// whose reads the block scenarios count).
inline bool tree_on_store(store_kind k) { return k == store_kind::mem || k == store_kind::leveldb; }

/// Node records the trees of this process read from their stores, for the `block` scenario's
/// loads per transaction (what a store costs once the tree outgrows its node cache).
struct store_reads {
  std::atomic<long> nodes{0};
  std::atomic<long> leaves{0};
};
inline store_reads& reads() {
  static store_reads r;
  return r;
}

/// A node store that counts the node records read through it (a leaf's starts with byte 00,
/// docs/format.md).
class counted_store final : public iavl::node_store {
 public:
  explicit counted_store(std::shared_ptr<iavl::node_store> inner) : inner_(std::move(inner)) {}
  bool read_node(iavl::node_key key, std::string& out) const override {
    const bool found = inner_->read_node(key, out);
    reads().nodes.fetch_add(1, std::memory_order_relaxed);
    if (found && !out.empty() && out[0] == '\0') reads().leaves.fetch_add(1, std::memory_order_relaxed);
    return found;
  }
  bool read_meta(std::string_view name, std::string& out) const override { return inner_->read_meta(name, out); }
  void scan_meta(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    inner_->scan_meta(prefix, fn);
  }
  void scan_nodes(std::int64_t first, std::int64_t last, const std::function<bool(iavl::node_key)>& fn) const override {
    inner_->scan_nodes(first, last, fn);
  }
  void write(const iavl::write_batch& batch, bool sync) override { inner_->write(batch, sync); }
  [[nodiscard]] std::uint64_t size_bytes() const override { return inner_->size_bytes(); }

 private:
  std::shared_ptr<iavl::node_store> inner_;
};

/// The one place where iavl's node stores plug in: a versioned tree on store `kind`, keeping its
/// files (if any) under `dir`.
// In memory, each commit retires the previous version; stores keep every version (the
// block_pruned scenario prunes) and write each one, synced, while the next block runs.
inline std::unique_ptr<iavl::versioned_tree> make_db(store_kind kind, const std::filesystem::path& dir) {
  iavl::options o;
  if (kind == store_kind::nodb) o.keep.keep_recent = 1;
  if (kind == store_kind::mem) o.store = std::make_shared<counted_store>(iavl::open_memory_store());
  if (kind == store_kind::leveldb) o.store = std::make_shared<counted_store>(iavl::open_leveldb_store(dir.string()));
  o.background_writes = o.store != nullptr;
  return std::make_unique<iavl::versioned_tree>(o);
}

/// The IAVL tree: a check and a deliver tree branched from the last commit. Check trees are
/// thrown away at every block, so they defer their writes (iavl::writes::deferred). It keeps one
/// version (the last), as a pruning node does, so that memory stays bounded over many blocks.
class iavl_db {
 public:
  static std::unique_ptr<iavl_db> open(store_kind kind, const std::filesystem::path& dir) {
    return std::make_unique<iavl_db>(make_db(kind, dir));
  }
  explicit iavl_db(std::unique_ptr<iavl::versioned_tree> db)
      : db_(std::move(db)), last_(db_->last_commit()), check_(check_branch()), deliver_(last_.branch()) {}

  std::optional<std::string> get(std::string_view key) const { return last_.get(key); }
  void set(std::string_view key, std::string_view value) { deliver_.set(key, value); }
  void erase(std::string_view key) { deliver_.remove(key); }
  void tx(std::string_view key, std::string_view value) {
    for (iavl::tree* t : {&check_, &deliver_}) {
      benchmark::DoNotOptimize(t->get(key));
      t->set(key, value);
    }
  }
  void commit() {
    const iavl::hash256 app_hash = deliver_.working_hash();
    benchmark::DoNotOptimize(app_hash);
    last_ = db_->commit(std::move(deliver_));
    check_ = check_branch();  // check resets to the new last commit
    deliver_ = last_.branch();
  }
  /// Keeps the last `versions` versions from now on (0: every version). Returns once it is in
  /// its steady state: the versions committed before have been pruned. (They have no orphan
  /// lists, which a tree keeps only under a retention policy, so pruning them walks the store;
  /// the versions pruned after this were committed under the policy, as in an app that set it
  /// from the start.)
  void prune_to(std::int64_t versions) {
    db_->set_retention({.keep_recent = versions});
    for (std::int64_t i = 0; i <= versions; ++i) commit();  // empty blocks
    db_->wait_for_pruning();
  }
  /// Bytes of the persisted nodes in memory (the node cache's account; 0 without a store).
  [[nodiscard]] std::int64_t cached_bytes() const { return db_->cached_bytes(); }
  /// Waits until the last commit is written and the versions let go of are freed (both happen
  /// in the background).
  void settle() {
    db_->wait_for_writes();
    db_->trim_cache();
  }
  /// The last commit, for the scenarios only the tree has (state sync, proofs).
  [[nodiscard]] const iavl::snapshot& last_commit() const { return last_; }
  std::size_t scan(std::string_view start, std::size_t n) const {
    std::size_t bytes = 0, seen = 0;
    for (auto [key, value] : last_.range(start)) {
      bytes += key.size() + value.size();
      if (++seen == n) break;
    }
    benchmark::DoNotOptimize(bytes);
    return seen;
  }

 private:
  iavl::tree check_branch() const { return last_.branch(iavl::writes::deferred); }
  std::unique_ptr<iavl::versioned_tree> db_;
  iavl::snapshot last_;
  iavl::tree check_, deliver_;
};

/// Baseline: std::map, no Merkle tree, no versions, no store. A transaction runs its get + set
/// twice on the one map (there is no second state to run it on).
class map_db {
 public:
  static std::unique_ptr<map_db> open(store_kind, const std::filesystem::path&) { return std::make_unique<map_db>(); }

  std::optional<std::string> get(std::string_view key) const {
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void set(std::string_view key, std::string_view value) {
    const auto it = map_.lower_bound(key);
    if (it != map_.end() && it->first == key) {
      it->second.assign(value);
    } else {
      map_.emplace_hint(it, key, value);
    }
  }
  void erase(std::string_view key) {
    if (const auto it = map_.find(key); it != map_.end()) map_.erase(it);
  }
  void tx(std::string_view key, std::string_view value) {
    for (int i = 0; i < 2; ++i) {
      benchmark::DoNotOptimize(get(key));
      set(key, value);
    }
  }
  void commit() {}
  std::size_t scan(std::string_view start, std::size_t n) const {
    std::size_t bytes = 0, seen = 0;
    for (auto it = map_.lower_bound(start); it != map_.end() && seen < n; ++it, ++seen) {
      bytes += it->first.size() + it->second.size();
    }
    benchmark::DoNotOptimize(bytes);
    return seen;
  }

 private:
  std::map<std::string, std::string, std::less<>> map_;
};

/// Baseline: the same key-values in LevelDB directly (default options), no tree. Writes gather
/// in a write batch that commit() writes with sync, as the iavl stores do by default. Reads see
/// the last commit (LevelDB does not read its own pending batch).
class leveldb_db {
 public:
  static std::unique_ptr<leveldb_db> open(store_kind, const std::filesystem::path& dir) {
    return std::make_unique<leveldb_db>(dir);
  }
  explicit leveldb_db(const std::filesystem::path& dir) {
    leveldb::Options options;
    options.create_if_missing = true;
    options.error_if_exists = true;
    leveldb::DB* db = nullptr;
    const leveldb::Status s = leveldb::DB::Open(options, dir.string(), &db);
    if (!s.ok()) throw std::runtime_error("leveldb: " + s.ToString());
    db_.reset(db);
  }

  std::optional<std::string> get(std::string_view key) const {
    std::string value;
    if (!db_->Get(leveldb::ReadOptions(), slice(key), &value).ok()) return std::nullopt;
    return value;
  }
  void set(std::string_view key, std::string_view value) { batch_.Put(slice(key), slice(value)); }
  void erase(std::string_view key) { batch_.Delete(slice(key)); }
  void tx(std::string_view key, std::string_view value) {
    for (int i = 0; i < 2; ++i) {
      benchmark::DoNotOptimize(get(key));
      set(key, value);
    }
  }
  void commit() {
    leveldb::WriteOptions options;
    options.sync = true;
    const leveldb::Status s = db_->Write(options, &batch_);
    if (!s.ok()) throw std::runtime_error("leveldb: " + s.ToString());
    batch_.Clear();
  }
  std::size_t scan(std::string_view start, std::size_t n) const {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
    std::size_t bytes = 0, seen = 0;
    for (it->Seek(slice(start)); it->Valid() && seen < n; it->Next(), ++seen) {
      bytes += it->key().size() + it->value().size();
    }
    benchmark::DoNotOptimize(bytes);
    return seen;
  }

 private:
  static leveldb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

  std::unique_ptr<leveldb::DB> db_;
  leveldb::WriteBatch batch_;
};

}  // namespace bench
