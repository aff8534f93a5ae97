// A snapshot's root for the library's own algorithms (proofs, verification, state sync).
// Internal.
#pragma once

#include "iavl/tree.hpp"

namespace iavl::detail {

/// snapshot keeps its root to itself; a copy of it (one reference count) lends it to us.
class snapshot_root : public snapshot {
 public:
  explicit snapshot_root(const snapshot& s) : snapshot(s) {}
  [[nodiscard]] const node* get() const { return root_; }
  /// The store context for the tree algorithms: null when the tree has no store.
  [[nodiscard]] const store_context* ctx() const { return tree_view::ctx(); }
  /// The whole context, for references taken on the snapshot's nodes (root_ref).
  [[nodiscard]] const std::shared_ptr<store_context>& shared_ctx() const { return keep_.shared_ctx(); }
  /// The version read, for reading().
  [[nodiscard]] const version_id& source() const { return source_; }
};

}  // namespace iavl::detail
