// The versioned tree: the sequence of committed versions of one IAVL tree, and the place where
// working trees are committed.
//
// Usage per block of a consensus app:
//     iavl::tree check = db.branch(), deliver = db.branch();   // O(1) each
//     ... get/set/remove on both ...
//     iavl::hash256 app_hash = deliver.working_hash();
//     db.commit(std::move(deliver));                            // becomes version N+1
//     check = db.branch();                                      // reset to the new last commit
//
// Thread-safety: all member functions may be called from any thread; they serialise on an
// internal mutex held only briefly (never while hashing). Snapshots returned are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "iavl/tree.hpp"

namespace iavl {

class versioned_tree {
 public:
  /// An empty tree in memory with no committed version (latest_version() == 0).
  versioned_tree() = default;

  /// The latest committed version, 0 before the first commit.
  [[nodiscard]] std::int64_t latest_version() const;
  /// The latest committed version ("last commit"). O(1).
  [[nodiscard]] snapshot last_commit() const;
  /// A working tree on top of the last commit. O(1).
  [[nodiscard]] tree branch() const { return last_commit().branch(); }
  /// A kept version. Throws errc::version_not_found when it was never committed or was deleted.
  [[nodiscard]] snapshot at(std::int64_t version) const;
  /// The kept versions, ascending.
  [[nodiscard]] std::vector<std::int64_t> versions() const;

  /// Hashes `working` and commits it as version latest_version() + 1. Throws errc::stale_branch
  /// when `working` did not branch from the latest version (it is then left untouched).
  snapshot commit(tree&& working);

  /// Forgets a kept version other than the latest; its nodes are freed once no other kept
  /// version or live snapshot uses them. Throws errc::version_not_found or errc::invalid_argument.
  void delete_version(std::int64_t version);

 private:
  std::mutex commit_mutex_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, snapshot> versions_;  // kept versions; the last is the last commit
};

}  // namespace iavl
