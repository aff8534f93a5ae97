// The versioned tree: the sequence of committed versions of one IAVL tree, and the place where
// working trees are committed.
//
// Usage per block of a consensus app:
//     iavl::tree check = db.branch(iavl::writes::deferred);   // O(1); never applied
//     iavl::tree deliver = db.branch();                         // O(1)
//     ... get/set/remove on both ...
//     iavl::hash256 app_hash = deliver.working_hash();
//     db.commit(std::move(deliver));                            // becomes version N+1
//     check = db.branch();                                      // reset to the new last commit
//
// Without a node store, versions live in memory. With one (options::store), each commit writes
// the new nodes and then the version's root, synced by default: one atomic batch, or pieces of
// up to 4 MiB for a large version with the root in the last, so a version is whole or absent and
// a committed version survives a crash at any instant; the tree keeps the latest version's hot
// nodes in memory within options::cache_bytes and loads the rest on demand. Older versions are
// kept on disk as the retention policy says; deleting one reclaims every node that no kept
// version reaches, in a background thread so that commits do not wait for it.
//
// Thread-safety: all member functions may be called from any thread; commits and the version
// management calls (delete_version, rollback_to) serialise with each other. Snapshots returned
// are thread-safe. Snapshots and working trees may outlive the versioned_tree: they go on
// reading (and writing, uncommitted) through the store they share.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "iavl/detail/node_cache.hpp"
#include "iavl/node_store.hpp"
#include "iavl/tree.hpp"

namespace iavl {

namespace detail {
class importer;

/// A versioned_tree's hold on its store (none for null): one versioned_tree at a time.
class store_claim {
 public:
  /// Throws errc::invalid_argument when another versioned_tree uses `store`.
  explicit store_claim(node_store* store);
  ~store_claim();
  store_claim(const store_claim&) = delete;
  store_claim& operator=(const store_claim&) = delete;

 private:
  node_store* store_;
};
}  // namespace detail

/// Which committed versions stay readable. Applied at each commit; the latest version is always
/// kept. The default keeps everything.
struct retention {
  std::int64_t keep_recent = 0;  ///< keep the last N versions (0: keep all versions)
  std::int64_t keep_every = 0;   ///< with keep_recent, also keep every version divisible by this (0: none)
};

struct options {
  /// Where nodes live. Null: in memory only, every kept version as an in-memory snapshot.
  std::shared_ptr<node_store> store;
  /// Make each commit durable before commit() returns (the store's sync write).
  bool sync = true;
  /// Memory budget for the persisted nodes kept in memory (store only). After each commit the
  /// cache trims itself to 90% of it less the size of that commit's new nodes (at most half the
  /// budget), so that a next version as large fits without raising the process's peak.
  std::size_t cache_bytes = std::size_t{1} << 30;
  /// Write each committed version to the store on a background thread, overlapping the next
  /// block's work (store only). commit() then returns once the version is built in memory, and
  /// the version is durable when durable_version() reaches it; the next commit first waits for
  /// the previous write. After a crash the store holds the last durable version (a consensus
  /// engine replays the blocks after it). A failed background write is rethrown by the next
  /// commit() or wait_for_writes(), and every later commit fails too: reopen the store.
  bool background_writes = false;
  retention keep;
};

class versioned_tree {
 public:
  /// An empty tree in memory with no committed version (latest_version() == 0).
  versioned_tree() : versioned_tree(options{}) {}
  /// Opens the tree in `opts.store`, continuing from its latest version (an empty store starts
  /// at version 0). Throws iavl::error: invalid_argument when another versioned_tree uses the
  /// store (one at a time; it is free again once that one is destroyed), not_a_database when the
  /// store holds other data, format_mismatch for another format version, corruption, io_error.
  explicit versioned_tree(options opts);
  ~versioned_tree();
  versioned_tree(const versioned_tree&) = delete;
  versioned_tree& operator=(const versioned_tree&) = delete;

  /// The latest committed version, 0 before the first commit.
  [[nodiscard]] std::int64_t latest_version() const;
  /// The latest committed version ("last commit"). O(1).
  [[nodiscard]] snapshot last_commit() const;
  /// A working tree on top of the last commit. O(1).
  [[nodiscard]] tree branch(writes mode = writes::immediate) const { return last_commit().branch(mode); }
  /// A kept version. O(1) in memory; with a store, loads that version's root. Throws
  /// errc::version_not_found when it was never committed or was deleted.
  [[nodiscard]] snapshot at(std::int64_t version) const;
  /// The kept versions, ascending.
  [[nodiscard]] std::vector<std::int64_t> versions() const;

  /// Hashes `working` and commits it as version latest_version() + 1, then applies the
  /// retention policy. With a store, the version is written before commit() returns (synced
  /// when options::sync) or, with options::background_writes, right after; it is there whole or
  /// not at all (over 4 MiB of records it is written in pieces, its root record last: see
  /// docs/format.md). Throws errc::stale_branch when `working` did not branch from the latest
  /// version, io_error when the store fails; `working` is then left untouched, and (without
  /// background writes, whose failures stay: see options::background_writes) it or another tree
  /// branched from the latest version can be committed as that version again.
  snapshot commit(tree&& working);
  /// The latest version that is in the store for good (the latest version without a store).
  [[nodiscard]] std::int64_t durable_version() const;
  /// Waits until every committed version is written; rethrows a failed background write.
  void wait_for_writes();

  /// Deletes a kept version other than the latest, reclaiming the nodes no kept version reaches,
  /// and waits until that is done. Throws errc::version_not_found or errc::invalid_argument, or
  /// first, before it changes anything, an earlier background deletion's failure. A
  /// snapshot of it still held reads what is in memory; a read that needs a node the deletion
  /// removed throws errc::version_not_found (as does one of a version rollback_to() removed).
  void delete_version(std::int64_t version);
  /// Deletes every kept version older than `version`.
  void delete_versions_before(std::int64_t version);
  /// Makes the kept `version` the latest again, deleting every newer version and its nodes (a
  /// node operator's rollback). Working trees branched before are stale afterwards.
  void rollback_to(std::int64_t version);
  /// Replaces the retention policy; the next commit applies it.
  void set_retention(const retention& keep);
  /// Waits until background pruning is done; rethrows its first failure, if any.
  void wait_for_pruning();
  /// Waits until the nodes of versions let go of are freed (memory freed in the background
  /// lags by about one commit); with a store, then unloads cold nodes of the latest version
  /// until memory is within options::cache_bytes. commit() trims too, without waiting. A process
  /// that only reads may call this now and then. Nodes that snapshots of older versions loaded
  /// stay until those snapshots go. With background writes it first waits for the pending write
  /// (and throws its error, as wait_for_writes does).
  void trim_cache();
  /// Bytes of memory the persisted nodes in memory take (0 without a store).
  [[nodiscard]] std::int64_t cached_bytes() const;

 private:
  struct root_record {
    std::optional<node_key> root;  // none for the empty tree
    hash256 hash = empty_tree_hash();
    bool deleting = false;  // scheduled for deletion: no longer readable, nodes still intact
  };

  void open_store();
  void schedule_trim(const snapshot& latest, std::int64_t room);
  struct encoded_nodes {
    detail::committed_nodes fresh;  // a version's new nodes, numbered, children first
    write_batch batch;              // the records of the first of them
    std::int64_t bytes = 0;         // their memory, counted in the cache once they are written
    [[nodiscard]] bool encoded() const { return batch.put_nodes.size() == fresh->size(); }
  };
  static constexpr std::size_t encode_step = 256;  // nodes a commit encodes between looks at the writer
  static void encode_nodes(encoded_nodes& nodes, std::size_t count);  // the next `count` (or fewer)
  static void delete_runs(node_store& store, std::int64_t first, std::int64_t last, bool sync);
  [[nodiscard]] bool writing() const;  // a version is being written in the background
  void write_version(std::int64_t version, encoded_nodes& nodes, const detail::node* root, const hash256& hash);
  void after_durable(const snapshot& s, std::int64_t written_bytes);
  [[nodiscard]] node_records take_spare_records();  // empty, with room from an earlier version
  void give_back_records(node_records&& records);   // requires write_mutex_
  void set_durable(std::int64_t version);
  void write_loop();
  [[nodiscard]] snapshot load_version(std::int64_t version, const root_record& record) const;
  void keep_orphan_list(std::int64_t version, std::vector<node_key>&& list);  // under mutex_
  void apply_retention(std::int64_t latest);
  void schedule_deletion(std::int64_t version);  // requires mutex_
  void prune_loop();
  void prune(std::int64_t version);
  void walk_orphans(std::int64_t version, std::int64_t previous, const root_record& doomed, const root_record& next,
                    write_batch& batch) const;
  void stop_pruner();

  // State sync (src/state_sync.cpp) imports into a tree without versions: it writes the nodes,
  // then adopt_import() writes `last` (the last nodes), reads the root back, writes the root
  // record of `version` and makes it the latest version. Requires commit_mutex_.
  friend class detail::importer;
  snapshot adopt_import(std::int64_t version, const std::optional<node_key>& root, const hash256& hash,
                        write_batch& last);

  options opts_;
  detail::store_claim claim_;                   // released last, after the threads that write stop
  std::shared_ptr<detail::store_context> ctx_;  // the store (if any) and the reclaimer
  std::unique_ptr<detail::node_cache> cache_;   // with a store

  std::mutex commit_mutex_;  // one commit or version-management call at a time
  // The store's index of kept versions (docs/format.md): a store write that adds to it or deletes
  // a version holds index_mutex_ (taken before mutex_), so that no version is indexed after its
  // deletion was written. indexed_through_: the versions up to it are all in the index.
  std::mutex index_mutex_;
  std::int64_t indexed_through_ = 0;
  void index_versions(std::int64_t through, const std::string& through_record, write_batch& batch);
  void write_with_root(std::int64_t version, const std::string& record, write_batch& batch, bool index);
  static constexpr std::size_t version_piece_bytes = std::size_t{4} << 20;  // see write_leading_pieces()
  void write_leading_pieces(write_batch& batch) const;
  // Runs from this version up may hold records of no version (0: none): those of a version
  // whose write failed part of the way, or of versions a rollback_to did not finish deleting.
  // Only the one thread that writes versions (or rolls back, with none being written) touches it.
  std::int64_t torn_from_ = 0;
  mutable std::mutex mutex_;
  snapshot latest_;
  std::map<std::int64_t, snapshot> in_memory_;    // kept versions, without a store
  std::map<std::int64_t, root_record> on_store_;  // kept versions, with a store
  // With a store and a retention policy: per version committed by this process, the stored nodes
  // of the version before it that it replaced (only the entries not deleted yet), within a memory
  // budget (keep_orphan_list). Pruning reads them, not the store.
  std::map<std::int64_t, std::vector<node_key>> orphans_;

  // Background pruning (store only): versions marked deleting whose nodes are still to be
  // reclaimed, done in ascending order.
  std::set<std::int64_t> prune_queue_;
  std::condition_variable prune_wake_, prune_idle_;
  bool pruning_ = false;
  bool stopping_ = false;
  std::exception_ptr prune_error_;
  std::thread pruner_;

  // Background writes (options::background_writes): one version at a time.
  struct pending_write {
    snapshot version;  // keeps its nodes alive until written
    encoded_nodes nodes;
  };
  mutable std::mutex write_mutex_;
  std::condition_variable write_wake_, write_idle_;
  std::optional<pending_write> pending_write_;
  // The record buffers of versions written, kept for the next commits to encode into: a fresh
  // one grows by copies into pages just mapped, and encoding a block of 1,000 transactions at
  // 1M keys took the writer thread 14 ms that way, 2.7 ms into a kept one. Two, as a commit
  // encodes while the version before it is being written; none of more than 2 MiB.
  std::vector<node_records> spare_records_;
  std::int64_t durable_ = 0;
  bool writer_stopping_ = false;
  std::exception_ptr write_error_;
  std::thread writer_;
};

}  // namespace iavl
