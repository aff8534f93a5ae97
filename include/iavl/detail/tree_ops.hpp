// The tree algorithms on raw nodes. Internal; the API is in iavl/tree.hpp.
//
// Insertion, removal and rebalancing take the same steps as cosmos/iavl's MutableTree
// (recursiveSet, recursiveRemove, balance, rotateLeft/Right) and give every node they rewrite
// the working version, so that tree shapes, node versions and therefore root hashes match.
//
// Reference conventions for the mutating functions: a subtree argument is either *held* (the
// caller hands over a counted reference) or *borrowed* (someone else keeps it alive and the
// callee must not release it). They return a counted reference to the new subtree.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "iavl/detail/node.hpp"
#include "iavl/detail/node_hash.hpp"

namespace iavl::detail {

// ---- reads -------------------------------------------------------------------------------

/// The leaf where a lookup of `key` ends (the key's leaf if present). `n` must not be null.
[[nodiscard]] inline const leaf_node* find_leaf(const node* n, std::string_view key) {
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    n = in->child[key < in->key() ? 0 : 1];
  }
  return as_leaf(n);
}

/// The leaf holding `key`, or null.
[[nodiscard]] inline const leaf_node* find(const node* root, std::string_view key) {
  if (!root) return nullptr;
  const leaf_node* l = find_leaf(root, key);
  return l->key() == key ? l : nullptr;
}

/// The leaf at position `index` in key order (0-based); `index` < size_of(n).
[[nodiscard]] inline const leaf_node* leaf_at(const node* n, std::int64_t index) {
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    const std::int64_t left_size = size_of(in->child[0]);
    if (index < left_size) {
      n = in->child[0];
    } else {
      index -= left_size;
      n = in->child[1];
    }
  }
  return as_leaf(n);
}

/// The number of keys smaller than `key`, and whether `key` itself is present.
[[nodiscard]] inline std::int64_t rank_of(const node* n, std::string_view key, bool& found) {
  found = false;
  if (!n) return 0;
  std::int64_t rank = 0;
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    if (key < in->key()) {
      n = in->child[0];
    } else {
      rank += size_of(in->child[0]);
      n = in->child[1];
    }
  }
  const int c = key.compare(as_leaf(n)->key());
  found = c == 0;
  return c > 0 ? rank + 1 : rank;
}

// ---- hashing ------------------------------------------------------------------------------

/// The node's hash, computing it (and its unhashed descendants') on first use. Only nodes
/// owned by one working tree lack a hash, so this never writes to a shared node.
inline const hash256& ensure_hash(node* n) {
  if (n->has_hash()) return n->hash();
  if (n->is_leaf()) {
    const auto* l = as_leaf(n);
    n->hash() = leaf_hash(n->version(), l->key(), l->value());
  } else {
    auto* in = as_inner(n);
    const hash256& left = ensure_hash(in->child[0]);
    const hash256& right = ensure_hash(in->child[1]);
    n->hash() = inner_hash(n->height, in->size(), n->version(), left, right);
  }
  n->flags |= hash_valid;
  return n->hash();
}

// ---- copy-on-write ------------------------------------------------------------------------

inline void update_height_size(inner_node* n) {
  const node* l = n->child[0];
  const node* r = n->child[1];
  n->height = static_cast<std::uint8_t>(std::max(height_of(l), height_of(r)) + 1);
  n->size() = size_of(l) + size_of(r);
}

/// A copy of inner node `n` stamped with `version`. The copy takes references to both children,
/// except child `borrow` (0 or 1; -1 for none), which it only borrows from `n` until the caller
/// replaces it.
[[nodiscard]] inline inner_node* clone_inner(const inner_node* n, std::int64_t version, int borrow = -1) {
  inner_node* c = make_inner(n->key(), n->height, n->size(), version, n->child[0], n->child[1]);
  for (int i = 0; i < 2; ++i) {
    if (i != borrow) retain(n->child[i]);
  }
  return c;
}

/// Makes `n` editable by the working tree of `version`: returns `n` itself when the caller holds
/// its only reference, else a copy (see clone_inner for `borrow`). Either way the result carries
/// the working version and no hash, as cosmos/iavl's node.clone(version) does.
[[nodiscard]] inline inner_node* edit(inner_node* n, bool held, std::int64_t version, int borrow, bool& in_place) {
  in_place = held && n->refs.load(std::memory_order_acquire) == 1;
  if (!in_place) return clone_inner(n, version, borrow);
  n->version() = version;
  n->flags &= static_cast<std::uint8_t>(~hash_valid);
  return n;
}

/// Makes child `i` of the editable node `parent` editable (copying it if shared) and returns it.
inline inner_node* edit_child(inner_node* parent, int i, std::int64_t version) {
  auto* c = as_inner(parent->child[i]);
  bool in_place = false;
  inner_node* e = edit(c, true, version, -1, in_place);
  if (!in_place) {
    parent->child[i] = e;
    release(c);
  }
  return e;
}

inline inner_node* rotate(inner_node* n, int dir, std::int64_t version) {
  // dir 1 = rotate right (the left child rises), dir 0 = rotate left.
  const int up = dir == 1 ? 0 : 1;
  inner_node* pivot = edit_child(n, up, version);
  n->child[up] = pivot->child[1 - up];
  pivot->child[1 - up] = n;
  update_height_size(n);
  update_height_size(pivot);
  return pivot;
}

[[nodiscard]] inline int balance_factor(const node* n) {
  if (n->is_leaf()) return 0;
  const auto* in = as_inner(n);
  return height_of(in->child[0]) - height_of(in->child[1]);
}

/// Restores the AVL balance of the editable node `n` (cosmos/iavl balance()).
[[nodiscard]] inline node* rebalance(inner_node* n, std::int64_t version) {
  const int b = balance_factor(n);
  if (b > 1) {
    if (balance_factor(n->child[0]) < 0) n->child[0] = rotate(edit_child(n, 0, version), 0, version);
    return rotate(n, 1, version);
  }
  if (b < -1) {
    if (balance_factor(n->child[1]) > 0) n->child[1] = rotate(edit_child(n, 1, version), 1, version);
    return rotate(n, 0, version);
  }
  return n;
}

/// Inserts or updates `key` in the non-empty subtree `n` (held or borrowed, see above).
/// Sets `updated` when the key existed.
[[nodiscard]] inline node* insert(node* n, bool held, std::string_view key, std::string_view value,
                                  std::int64_t version, bool& updated) {
  if (n->is_leaf()) {
    const auto* l = as_leaf(n);
    const int c = key.compare(l->key());
    if (c == 0) {
      updated = true;
      if (held) release(n);
      return make_leaf(key, value, version);
    }
    if (!held) retain(n);
    node* fresh = make_leaf(key, value, version);
    if (c < 0) return make_inner(l->key(), 1, 2, version, fresh, n);
    return make_inner(key, 1, 2, version, n, fresh);
  }
  auto* in = as_inner(n);
  const int dir = key < in->key() ? 0 : 1;
  bool in_place = false;
  inner_node* e = edit(in, held, version, dir, in_place);
  e->child[dir] = insert(e->child[dir], in_place, key, value, version, updated);
  if (held && !in_place) release(in);  // only now: e borrowed in's child until it was replaced
  if (updated) return e;               // an update changes no height or size
  update_height_size(e);
  return rebalance(e, version);
}

/// Replaces the key of the editable node `n` (a new allocation when the key changes).
[[nodiscard]] inline inner_node* rekey(inner_node* n, std::string_view key) {
  inner_node* r = make_inner(key, n->height, n->size(), n->version(), n->child[0], n->child[1]);
  free_node(n);
  return r;
}

/// Removes `key`, which must be present, from subtree `n` (held or borrowed). Returns the new
/// subtree, or null when `n` was the removed leaf. `new_key` receives the new smallest key of
/// the subtree when a removal from the left changed it (cosmos/iavl's newKey).
[[nodiscard]] inline node* erase(node* n, bool held, std::string_view key, std::int64_t version,
                                 std::optional<std::string>& new_key) {
  if (n->is_leaf()) {
    if (held) release(n);
    return nullptr;
  }
  auto* in = as_inner(n);
  const int dir = key < in->key() ? 0 : 1;
  bool in_place = false;
  inner_node* e = edit(in, held, version, dir, in_place);
  node* sub = erase(e->child[dir], in_place, key, version, new_key);
  if (!sub) {
    // The removed leaf was a child of this node: its sibling takes the node's place unchanged.
    node* sibling = e->child[1 - dir];
    if (dir == 0) new_key.emplace(e->key());
    free_node(e);  // e's reference to the sibling moves to the caller
    if (held && !in_place) release(in);
    return sibling;
  }
  e->child[dir] = sub;
  if (held && !in_place) release(in);
  if (dir == 1 && new_key) {
    e = rekey(e, *new_key);
    new_key.reset();
  }
  update_height_size(e);
  return rebalance(e, version);
}

}  // namespace iavl::detail
