// What the nodes of a store-backed tree need from their store: loading, and the memory account
// of the cache budget. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iavl/detail/node.hpp"
#include "iavl/node_store.hpp"

namespace iavl::detail {

/// Serializes a persisted-to-be node (docs/format.md). Its loaded children must be persisted.
void encode_node(const node* n, std::string& out);
/// Decodes the node stored under `key` (refs = 1, hash and nonce set, children as keys).
/// Throws iavl::error(errc::corruption) naming the node when `bytes` is not a valid node.
[[nodiscard]] node* decode_node(node_key key, std::string_view bytes);

class store_context {
 public:
  explicit store_context(std::shared_ptr<node_store> store) : store_(std::move(store)) {}

  [[nodiscard]] node_store& store() const { return *store_; }
  [[nodiscard]] memory_account& account() const { return account_; }

  /// Reads and decodes the node stored under `key` (one reference, not counted in account()).
  /// Throws iavl::error: corruption when the node is missing or damaged, io_error.
  [[nodiscard]] node* read(node_key key) const;
  /// read(), counted in account(): for nodes that join the tree in memory.
  [[nodiscard]] node* load(node_key key) const {
    node* n = read(key);
    account_.bytes.fetch_add(static_cast<std::int64_t>(footprint(n)), std::memory_order_relaxed);
    return n;
  }

 private:
  std::shared_ptr<node_store> store_;
  mutable memory_account account_;
};

[[nodiscard]] inline memory_account* account_of(const store_context* ctx) { return ctx ? &ctx->account() : nullptr; }

/// Loads child `i` of `parent` (whose slot holds the key `bits`) and publishes it in the slot.
[[nodiscard]] node* load_child(const inner_node* parent, int i, std::uintptr_t bits, const store_context* ctx);

/// Child `i` of `n`, loaded from the store when it is not in memory. `ctx` is null for trees
/// without a store, whose children are always in memory. With a store, the caller holds a
/// read_guard (detail/epoch.hpp), and the child is marked as read for the cache.
[[nodiscard]] inline node* child(const inner_node* n, int i, const store_context* ctx) {
  const std::uintptr_t b = n->child[i].bits();
  if (!is_key(b)) [[likely]] {
    node* c = reinterpret_cast<node*>(b);
    if (ctx) c->touch();
    return c;
  }
  return load_child(n, i, b, ctx);
}

/// The node key a parent records for child `i`.
[[nodiscard]] inline node_key child_key(const inner_node* n, int i) {
  const std::uintptr_t b = n->child[i].bits();
  return is_key(b) ? unpack_key(b) : reinterpret_cast<const node*>(b)->key_in_store();
}

}  // namespace iavl::detail
