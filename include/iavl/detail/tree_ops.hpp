// The tree algorithms on raw nodes. Internal; the API is in iavl/tree.hpp.
//
// Insertion, removal and rebalancing take the same steps as cosmos/iavl's MutableTree
// (recursiveSet, recursiveRemove, balance, rotateLeft/Right) and give every node they rewrite
// the working version, so that tree shapes, node versions and therefore root hashes match.
//
// Reference conventions for the mutating functions: a subtree argument is either *held* (the
// caller hands over a counted reference) or *borrowed* (someone else keeps it alive and the
// callee must not release it). They return a counted reference to the new subtree.
//
// `ctx` is the tree's store (null for a tree without one): children not in memory are loaded
// through it, and freed persisted nodes are debited from its memory account.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "iavl/detail/node.hpp"
#include "iavl/detail/node_hash.hpp"
#include "iavl/detail/store_context.hpp"

namespace iavl::detail {

// ---- reads -------------------------------------------------------------------------------

/// The leaf where a lookup of `key` ends (the key's leaf if present). `n` must not be null.
[[nodiscard]] inline const leaf_node* find_leaf(const node* n, std::string_view key, const store_context* ctx) {
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    n = child(in, key < in->key() ? 0 : 1, ctx);
  }
  return as_leaf(n);
}

/// The leaf holding `key`, or null.
[[nodiscard]] inline const leaf_node* find(const node* root, std::string_view key, const store_context* ctx) {
  if (!root) return nullptr;
  const leaf_node* l = find_leaf(root, key, ctx);
  return l->key() == key ? l : nullptr;
}

/// The leaf at position `index` in key order (0-based); `index` < size_of(n).
[[nodiscard]] inline const leaf_node* leaf_at(const node* n, std::int64_t index, const store_context* ctx) {
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    const node* left = child(in, 0, ctx);
    const std::int64_t left_size = size_of(left);
    if (index < left_size) {
      n = left;
    } else {
      index -= left_size;
      n = child(in, 1, ctx);
    }
  }
  return as_leaf(n);
}

/// The number of keys smaller than `key`, and whether `key` itself is present.
[[nodiscard]] inline std::int64_t rank_of(const node* n, std::string_view key, bool& found, const store_context* ctx) {
  found = false;
  if (!n) return 0;
  std::int64_t rank = 0;
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    if (key < in->key()) {
      n = child(in, 0, ctx);
    } else {
      rank += size_of(child(in, 0, ctx));
      n = child(in, 1, ctx);
    }
  }
  const int c = key.compare(as_leaf(n)->key());
  found = c == 0;
  return c > 0 ? rank + 1 : rank;
}

// ---- hashing ------------------------------------------------------------------------------

/// The node's hash, computing it (and its unhashed descendants') on first use. Only nodes
/// owned by one working tree lack a hash, so this never writes to a shared node.
inline const hash256& ensure_hash(node* n, const store_context* ctx) {
  if (n->has_hash()) return n->hash();
  if (n->is_leaf()) {
    const auto* l = as_leaf(n);
    n->hash() = leaf_hash(n->version(), l->key(), l->value());
  } else {
    auto* in = as_inner(n);
    const hash256& left = ensure_hash(child(in, 0, ctx), ctx);
    const hash256& right = ensure_hash(child(in, 1, ctx), ctx);
    n->hash() = inner_hash(n->height, in->size(), n->version(), left, right);
  }
  n->set_hash_valid(true);
  return n->hash();
}

// ---- copy-on-write ------------------------------------------------------------------------

inline void update_height_size(inner_node* n, const store_context* ctx) {
  const node* l = child(n, 0, ctx);
  const node* r = child(n, 1, ctx);
  n->height = static_cast<std::uint8_t>(std::max(height_of(l), height_of(r)) + 1);
  n->size() = size_of(l) + size_of(r);
}

/// A copy of inner node `n` stamped with `version`. The copy takes references to both loaded
/// children, except child `borrow` (0 or 1; -1 for none), which it only borrows from `n` until
/// the caller replaces it.
[[nodiscard]] inline inner_node* clone_inner(const inner_node* n, std::int64_t version, int borrow = -1) {
  const std::uintptr_t bits[2] = {n->child[0].bits(), n->child[1].bits()};
  inner_node* c = make_inner(n->key(), n->height, n->size(), version, bits[0], bits[1]);
  for (int i = 0; i < 2; ++i) {
    if (i != borrow && !is_key(bits[i])) retain(reinterpret_cast<node*>(bits[i]));
  }
  return c;
}

/// Makes `n` editable by the working tree of `version`: returns `n` itself when the caller holds
/// its only reference, else a copy (see clone_inner for `borrow`). Either way the result carries
/// the working version and no hash, as cosmos/iavl's node.clone(version) does.
[[nodiscard]] inline inner_node* edit(inner_node* n, bool held, std::int64_t version, int borrow, bool& in_place,
                                      const store_context* ctx) {
  in_place = held && n->refs.load(std::memory_order_acquire) == 1;
  if (!in_place) return clone_inner(n, version, borrow);
  if (n->persisted()) {  // it becomes a new node, no longer one of the store's
    if (ctx) ctx->account().bytes.fetch_sub(static_cast<std::int64_t>(footprint(n)), std::memory_order_relaxed);
    n->inner_nonce() = 0;
  }
  n->version() = version;
  n->set_hash_valid(false);
  return n;
}

/// Makes child `i` of the editable node `parent` editable (copying it if shared) and returns it.
inline inner_node* edit_child(inner_node* parent, int i, std::int64_t version, const store_context* ctx) {
  auto* c = as_inner(child(parent, i, ctx));
  bool in_place = false;
  inner_node* e = edit(c, true, version, -1, in_place, ctx);
  if (!in_place) {
    parent->child[i].set(e);
    release(c, account_of(ctx));
  }
  return e;
}

inline inner_node* rotate(inner_node* n, int dir, std::int64_t version, const store_context* ctx) {
  // dir 1 = rotate right (the left child rises), dir 0 = rotate left.
  const int up = dir == 1 ? 0 : 1;
  inner_node* pivot = edit_child(n, up, version, ctx);
  n->child[up].set_bits(pivot->child[1 - up].bits());
  pivot->child[1 - up].set(n);
  update_height_size(n, ctx);
  update_height_size(pivot, ctx);
  return pivot;
}

[[nodiscard]] inline int balance_factor(const node* n, const store_context* ctx) {
  if (n->is_leaf()) return 0;
  const auto* in = as_inner(n);
  return height_of(child(in, 0, ctx)) - height_of(child(in, 1, ctx));
}

/// Restores the AVL balance of the editable node `n` (cosmos/iavl balance()).
[[nodiscard]] inline node* rebalance(inner_node* n, std::int64_t version, const store_context* ctx) {
  const int b = balance_factor(n, ctx);
  if (b > 1) {
    if (balance_factor(child(n, 0, ctx), ctx) < 0)
      n->child[0].set(rotate(edit_child(n, 0, version, ctx), 0, version, ctx));
    return rotate(n, 1, version, ctx);
  }
  if (b < -1) {
    if (balance_factor(child(n, 1, ctx), ctx) > 0)
      n->child[1].set(rotate(edit_child(n, 1, version, ctx), 1, version, ctx));
    return rotate(n, 0, version, ctx);
  }
  return n;
}

/// Inserts or updates `key` in the non-empty subtree `n` (held or borrowed, see above).
/// Sets `updated` when the key existed.
[[nodiscard]] inline node* insert(node* n, bool held, std::string_view key, std::string_view value,
                                  std::int64_t version, bool& updated, const store_context* ctx) {
  if (n->is_leaf()) {
    const auto* l = as_leaf(n);
    const int c = key.compare(l->key());
    if (c == 0) {
      updated = true;
      if (held) release(n, account_of(ctx));
      return make_leaf(key, value, version);
    }
    if (!held) retain(n);
    node* fresh = make_leaf(key, value, version);
    if (c < 0) return make_inner(l->key(), 1, 2, version, fresh, n);
    return make_inner(key, 1, 2, version, n, fresh);
  }
  auto* in = as_inner(n);
  const int dir = key < in->key() ? 0 : 1;
  node* next = child(in, dir, ctx);
  bool in_place = false;
  inner_node* e = edit(in, held, version, dir, in_place, ctx);
  e->child[dir].set(insert(next, in_place, key, value, version, updated, ctx));
  if (held && !in_place) release(in, account_of(ctx));  // only now: e borrowed in's child until it was replaced
  if (updated) return e;                                // an update changes no height or size
  update_height_size(e, ctx);
  return rebalance(e, version, ctx);
}

/// Replaces the key of the editable node `n` (a new allocation when the key changes).
[[nodiscard]] inline inner_node* rekey(inner_node* n, std::string_view key) {
  inner_node* r = make_inner(key, n->height, n->size(), n->version(), n->child[0].bits(), n->child[1].bits());
  free_node(n);
  return r;
}

/// Removes `key`, which must be present, from subtree `n` (held or borrowed). Returns the new
/// subtree, or null when `n` was the removed leaf. `new_key` receives the new smallest key of
/// the subtree when a removal from the left changed it (cosmos/iavl's newKey).
[[nodiscard]] inline node* erase(node* n, bool held, std::string_view key, std::int64_t version,
                                 std::optional<std::string>& new_key, const store_context* ctx) {
  if (n->is_leaf()) {
    if (held) release(n, account_of(ctx));
    return nullptr;
  }
  auto* in = as_inner(n);
  const int dir = key < in->key() ? 0 : 1;
  node* next = child(in, dir, ctx);
  bool in_place = false;
  inner_node* e = edit(in, held, version, dir, in_place, ctx);
  node* sub = erase(next, in_place, key, version, new_key, ctx);
  if (!sub) {
    // The removed leaf was a child of this node: its sibling takes the node's place unchanged.
    node* sibling = child(e, 1 - dir, ctx);
    if (dir == 0) new_key.emplace(e->key());
    free_node(e);  // e's reference to the sibling moves to the caller
    if (held && !in_place) release(in, account_of(ctx));
    return sibling;
  }
  e->child[dir].set(sub);
  if (held && !in_place) release(in, account_of(ctx));
  if (dir == 1 && new_key) {
    e = rekey(e, *new_key);
    new_key.reset();
  }
  update_height_size(e, ctx);
  return rebalance(e, version, ctx);
}

}  // namespace iavl::detail
