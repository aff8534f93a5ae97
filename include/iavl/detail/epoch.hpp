// Epoch-based reclamation for nodes unlinked from shared trees (eviction). Internal.
//
// A reader that walks shared nodes without holding references brackets the walk with a
// read_guard. Whoever unlinks a node from a shared parent retires the parent's reference
// instead of releasing it; the reference is released once every guard that was active at the
// time has ended. Process-wide: one epoch counter and one slot per thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "iavl/detail/node.hpp"

namespace iavl::detail {

/// Marks the calling thread as reading shared nodes until destroyed. Nests; cheap (a store and
/// a fence on entry, a store on exit). Must end on the thread that began it.
class read_guard {
 public:
  read_guard();
  ~read_guard();
  read_guard(const read_guard&) : read_guard() {}
  read_guard& operator=(const read_guard&) { return *this; }
};

class store_context;

/// Holds back the release of references retired from its creation on, for as long as it lives,
/// whatever thread it is on: what a working tree needs for the shared nodes it borrows. Default
/// constructed, it holds nothing.
class epoch_pin {
 public:
  epoch_pin() = default;
  /// A pin when the tree has a store (whose cache unloads nodes), nothing otherwise.
  explicit epoch_pin(const store_context* ctx);
  epoch_pin(epoch_pin&& o) noexcept : epoch_(std::exchange(o.epoch_, 0)) {}
  epoch_pin& operator=(epoch_pin&& o) noexcept {
    std::swap(epoch_, o.epoch_);
    return *this;
  }
  ~epoch_pin();

 private:
  std::uint64_t epoch_ = 0;
};

/// A read_guard for trees with a store, whose nodes the cache may unload meanwhile; nothing for
/// trees without one.
class store_guard {
 public:
  store_guard() = default;
  explicit store_guard(const store_context* ctx) {
    if (ctx) guard_.emplace();
  }

 private:
  std::optional<read_guard> guard_;
};

/// References waiting for the readers of their epoch to finish. Used by one thread at a time.
class retire_list {
 public:
  retire_list() = default;
  retire_list(const retire_list&) = delete;
  retire_list& operator=(const retire_list&) = delete;
  ~retire_list();

  /// Releases `n` (a reference its owner gave up, holding about `bytes` of `account`) once no
  /// reader can still see it.
  void retire(node* n, memory_account* account, std::int64_t bytes);
  /// Releases what no reader can see any more. Returns how many references are still waiting.
  std::size_t collect();
  /// The bytes of the references still waiting.
  [[nodiscard]] std::int64_t waiting_bytes() const { return waiting_bytes_; }

 private:
  struct entry {
    node* n;
    memory_account* account;
    std::int64_t bytes;
    std::uint64_t epoch;
  };
  std::vector<entry> waiting_;
  std::int64_t waiting_bytes_ = 0;
};

}  // namespace iavl::detail
