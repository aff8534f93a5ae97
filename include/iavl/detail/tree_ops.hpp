// The tree algorithms on raw nodes. Internal; the API is in iavl/tree.hpp.
//
// Insertion, removal and rebalancing take the same steps as cosmos/iavl's MutableTree
// (recursiveSet, recursiveRemove, balance, rotateLeft/Right) and give every node they rewrite
// the working version, so that tree shapes, node versions and therefore root hashes match.
//
// A working tree refers to a node through *slot bits* (see node.hpp), which say how it holds
// the node: its own (uncommitted: edit in place, free when replaced), counted (a committed
// node whose count it holds: copy to edit, release when replaced) or borrowed (a committed node
// of its base version: copy to edit, leave alone when replaced).
//
// `ctx` is the tree's store (null for a tree without one): children not in memory are loaded
// through it, and freed committed nodes are debited from its memory account.
#pragma once

#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iavl/detail/node.hpp"
#include "iavl/detail/node_hash.hpp"
#include "iavl/detail/store_context.hpp"

namespace iavl::detail {

// ---- reads -------------------------------------------------------------------------------

/// Whether child `side` of `in` is a leaf, read from what the walk has in cache already: a node
/// of height 1 has two leaves; otherwise the child's height is in the parent's facts, another
/// cache line, which is read only when the child is not in memory (a store read is at stake).
[[nodiscard]] inline bool leads_to_leaf(const inner_node* in, int side) {
  return in->height == 1 || (is_key(in->child[side].bits()) && in->facts().child_height[side] == 0);
}

/// Where a lookup of `key` ended: the key's leaf (null when the key is absent, or present and
/// not asked for), and whether the key is present.
struct lookup {
  const leaf_node* leaf = nullptr;
  bool present = false;
};

/// Looks `key` up; with `read_leaf`, the key's leaf too. With `whole_nodes`, asks for all of
/// each node on the path, not only what the lookup reads: a write that follows copies them, and
/// their misses then overlap here.
///
/// The leaf where the path ends is read only when asked for and present: its key is also the
/// split key of the last node where the path turned right (the smallest key of its right
/// subtree), so the path already says whether the key is there. In a large tree that leaf is a
/// cache miss, or a read from the store. Only a path that never turns right reads it always.
[[nodiscard]] inline lookup look_up(const node* n, std::string_view key, const store_context* ctx, bool read_leaf,
                                    bool whole_nodes = false) {
  if (!n) return {};
  std::optional<std::string_view> leaf_key;  // the key of the leaf the path leads to, once known
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    prefetch_children(in);  // the next node's miss starts while the keys are compared
    const int side = key_less(key, in->key()) ? 0 : 1;
    if (side == 1) leaf_key = in->key();
    if (leaf_key && leads_to_leaf(in, side)) {
      const bool present = *leaf_key == key;
      if (!present || !read_leaf) return {nullptr, present};
    }
    if (whole_nodes) {
      if (const node* c = in->child[side].loaded()) prefetch(c);
    }
    n = child(in, side, ctx);
  }
  const bool present = as_leaf(n)->key() == key;
  return {present && read_leaf ? as_leaf(n) : nullptr, present};
}

/// The leaf holding `key`, or null.
[[nodiscard]] inline const leaf_node* find(const node* root, std::string_view key, const store_context* ctx,
                                           bool whole_nodes = false) {
  return look_up(root, key, ctx, true, whole_nodes).leaf;
}

/// The leaf at position `index` in key order (0-based); `index` < size_of(n).
[[nodiscard]] inline const leaf_node* leaf_at(const node* n, std::int64_t index, const store_context* ctx) {
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    const int side = index < in->facts().child_size[0] ? 0 : 1;
    if (side == 1) index -= in->facts().child_size[0];
    n = child(in, side, ctx);
  }
  return as_leaf(n);
}

/// The number of keys smaller than `key`, and whether `key` itself is present. Reads no leaf
/// but the smallest, as look_up() for presence.
[[nodiscard]] inline std::int64_t rank_of(const node* n, std::string_view key, bool& found, const store_context* ctx) {
  found = false;
  if (!n) return 0;
  std::int64_t rank = 0;
  std::optional<std::string_view> leaf_key;  // the key of the leaf the path leads to, once known
  while (!n->is_leaf()) {
    const auto* in = as_inner(n);
    const int side = key_less(key, in->key()) ? 0 : 1;
    if (side == 1) {
      rank += in->facts().child_size[0];
      leaf_key = in->key();
    }
    if (leaf_key && leads_to_leaf(in, side)) break;  // n stays the leaf's parent
    n = child(in, side, ctx);
  }
  if (n->is_leaf()) leaf_key = as_leaf(n)->key();
  const int c = key.compare(*leaf_key);
  found = c == 0;
  return c > 0 ? rank + 1 : rank;
}

// ---- hashing ------------------------------------------------------------------------------

/// A node's hash. The hashes a working tree has not computed yet are those of its own nodes,
/// which are in memory; this computes and records them, so it never writes to a shared node.
/// With `own`, it also lists the working tree's own nodes below (and including) `n`, children
/// before parents: what a commit writes.
inline hash256 hash_of(node* n, std::vector<node*>* own = nullptr);

/// Computes the hashes of the working tree's own nodes below each of `roots`, not the roots'
/// own: what the helper thread does for the subtrees a tree handed over (see tree::hand_over).
inline void hash_below(std::span<node* const> roots);

/// Lists the working tree's own nodes below (and including) `n` whose hashes are all known.
inline void list_own(node* n, std::vector<node*>& own) {
  if (!n->is_leaf()) {
    for (const auto& c : as_inner(n)->child) {
      const std::uintptr_t b = c.bits();
      if (!is_key(b) && !is_borrowed(b) && !pointer_of(b)->is_committed()) list_own(pointer_of(b), own);
    }
  }
  own.push_back(n);
}

/// The hash of a node whose children's hashes its slots hold (a leaf has none).
[[nodiscard]] inline hash256 hash_from_slots(const node* n) {
  if (n->is_leaf()) return leaf_hash(n->version(), as_leaf(n)->key(), as_leaf(n)->value());
  const auto* in = as_inner(n);
  return inner_hash(in->height, in->size(), n->version(), in->facts().child_hash[0], in->facts().child_hash[1]);
}

/// hash_of() of each of `roots` (returning the last one's hash), or hash_below() of them
/// without `hash_roots`.
inline hash256 hash_new(std::span<node* const> roots, std::vector<node*>* own, bool hash_roots);

inline hash256 hash_of(node* n, std::vector<node*>* own) {
  if (!own && (n->is_leaf() || (as_inner(n)->child_hash_valid(0) && as_inner(n)->child_hash_valid(1)))) {
    return hash_from_slots(n);  // e.g. a node just loaded, checked against its parent's record
  }
  return hash_new({&n, 1}, own, true);
}

inline void hash_below(std::span<node* const> roots) { (void)hash_new(roots, nullptr, false); }

inline hash256 hash_new(std::span<node* const> roots, std::vector<node*>* own, bool hash_roots) {
  // The nodes to hash, parents before children, breadth first. A depth-first walk reaches each
  // new node (a cache miss) only through its parent, one at a time; a block's new nodes lie on
  // many paths, and a level of them is known at once, so they are fetched a few entries ahead.
  // With `own`, the tree's own nodes hashed already (by an earlier call, or the helper thread)
  // are listed the same way.
  struct pending {
    node* n;
    inner_node* parent;  // null for `n` itself
    int side;
    bool hashed;  // only to be listed
  };
  constexpr std::size_t ahead = 16;
  node_pool::scratch_vector<pending> order;
  for (node* n : roots) order.push_back({n, nullptr, 0, false});
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (i + ahead < order.size()) prefetch(order[i + ahead].n);
    if (order[i].n->is_leaf()) continue;
    auto* p = as_inner(order[i].n);
    for (int side = 0; side < 2; ++side) {
      const std::uintptr_t b = p->child[side].bits();
      if (!p->child_hash_valid(side)) {  // only the tree's own children lack a hash
        order.push_back({pointer_of(b), p, side, false});
      } else if (own && !is_key(b) && !is_borrowed(b) && !pointer_of(b)->is_committed()) {
        order.push_back({pointer_of(b), p, side, true});
      }
    }
  }
  // Children before parents: each hash goes into its parent's slot before the parent is hashed.
  hash256 h;
  if (own) own->reserve(own->size() + order.size());  // a load's commit lists millions
  for (std::size_t i = order.size(); i-- > (hash_roots ? 0 : roots.size());) {
    if (i >= ahead) {
      prefetch(order[i - ahead].n);
      if (order[i - ahead].parent) prefetch(order[i - ahead].parent);  // its slot takes the hash
    }
    if (own) own->push_back(order[i].n);
    if (order[i].hashed) continue;
    h = hash_from_slots(order[i].n);
    if (inner_node* p = order[i].parent) {
      p->facts().child_hash[order[i].side] = h;
      p->set_hash_bits(static_cast<std::uint8_t>(p->hash_bits() | (1 << order[i].side)));
    }
  }
  return h;
}

// ---- copy-on-write ------------------------------------------------------------------------

enum class hold { own, counted, borrowed };

[[nodiscard]] inline hold hold_of(std::uintptr_t bits) {
  if (is_borrowed(bits)) return hold::borrowed;
  return pointer_of(bits)->is_committed() ? hold::counted : hold::own;
}

/// What a working tree's write needs besides the nodes.
struct write_env {
  std::int64_t version;            // the working version, given to every node the write rewrites
  const store_context* ctx;        // null for a tree without a store
  std::vector<node_key>* orphans;  // receives the stored nodes the write replaces (may be null)
  // Receives the highest node on an insert's path of height at most settled_height (may be null):
  // a subtree that later writes seldom change, which the tree may hand over for hashing.
  inner_node** settled = nullptr;
};

inline constexpr int settled_height = 10;

/// Notes that the write replaces committed node `n`: it is not part of the new version.
inline void orphan(const node* n, const write_env& w) {
  if (w.orphans && n->nonce != 0) w.orphans->push_back(n->key_in_store());
}

/// Gives up the working tree's hold on a node (and, for its own nodes, on what they hold). A
/// node not in memory (`bits` is its node key) is a stored one: it is only orphaned. Gives the
/// hold up also when noting the orphan throws (an allocation).
inline void drop(std::uintptr_t bits, const write_env& w) {
  if (is_key(bits)) {
    if (w.orphans) w.orphans->push_back(unpack_key(bits));
    return;
  }
  switch (hold_of(bits)) {
    case hold::own: discard(pointer_of(bits), account_of(w.ctx)); break;
    case hold::counted: {
      struct release_at_exit {  // after orphan() has read the node, whether it throws or not
        node* n;
        memory_account* account;
        ~release_at_exit() { release(n, account); }
      } const releasing{pointer_of(bits), account_of(w.ctx)};
      orphan(pointer_of(bits), w);
      break;
    }
    case hold::borrowed: orphan(pointer_of(bits), w); break;
  }
}

/// What a parent records of one child.
struct slot_value {
  std::uintptr_t bits = 0;  // 0: no child
  hash256 hash;
  bool hash_valid = false;
  std::uint32_t size = 0;
  std::uint8_t height = 0;
};

[[nodiscard]] inline slot_value slot_of(const inner_node* n, int i) {
  return {n->child[i].bits(), n->facts().child_hash[i], n->child_hash_valid(i), n->facts().child_size[i],
          n->facts().child_height[i]};
}

/// One of the working tree's own nodes, hash not computed yet.
[[nodiscard]] inline slot_value own_slot(node* n) {
  return {reinterpret_cast<std::uintptr_t>(n), {}, false, static_cast<std::uint32_t>(size_of(n)), n->height};
}

inline void set_slot(inner_node* n, int i, const slot_value& v) {
  n->child[i].set_bits(v.bits);
  n->facts().child_hash[i] = v.hash;
  n->facts().child_size[i] = v.size;
  n->facts().child_height[i] = v.height;
  const auto bit = static_cast<std::uint8_t>(1 << i);
  n->set_hash_bits(static_cast<std::uint8_t>(v.hash_valid ? (n->hash_bits() | bit) : (n->hash_bits() & ~bit)));
}

inline void update_height(inner_node* n) {
  n->height = static_cast<std::uint8_t>(std::max(n->facts().child_height[0], n->facts().child_height[1]) + 1);
}

/// A copy of committed inner node `n` stamped with `version`. With `counted`, the copy counts
/// its loaded children (the caller is about to release `n`); otherwise it borrows them.
[[nodiscard]] inline inner_node* clone_inner(const inner_node* n, std::int64_t version, bool counted) {
  inner_node* c = make_inner(n->key(), version);
  c->height = n->height;
  for (int i = 0; i < 2; ++i) {
    const std::uintptr_t b = n->child[i].bits();
    if (is_key(b)) {
      c->child[i].set_bits(b);
    } else {
      if (counted) retain(pointer_of(b));
      c->child[i].set_bits(bits_of(pointer_of(b), !counted));
    }
    c->facts().child_size[i] = n->facts().child_size[i];
    c->facts().child_height[i] = n->facts().child_height[i];
    c->facts().child_hash[i] = n->facts().child_hash[i];
  }
  c->set_hash_bits(n->hash_bits());
  return c;
}

/// The inner node that `bits` refers to, made editable by the working tree: its own node
/// itself, else a copy in the working version (cosmos/iavl's node.clone(version)).
/// When it throws (an allocation), it has taken nothing: the hold of `bits` is the caller's.
[[nodiscard]] inline inner_node* edit(std::uintptr_t bits, const write_env& w) {
  auto* n = as_inner(pointer_of(bits));
  const hold h = hold_of(bits);
  if (h == hold::own) {
    n->take_back();
    return n;
  }
  inner_node* c = clone_inner(n, w.version, h == hold::counted);
  try {
    orphan(n, w);
  } catch (...) {
    discard(c, account_of(w.ctx));  // and the counts the copy took
    throw;
  }
  if (h == hold::counted) release(n, account_of(w.ctx));
  return c;
}

/// edit(), for a path that goes on to child `dir`: with `load`, that child is in memory in the
/// result. (It is loaded into the node first, for every tree that shares it; the cache may
/// unload it again before the copy is made, and then the copy loads it for itself.) Takes the
/// hold of `bits` also when it throws (a failed store read or allocation): it gives it up then.
[[nodiscard]] inline inner_node* edit_toward(std::uintptr_t bits, int dir, const write_env& w, bool load = true) {
  inner_node* e = nullptr;
  try {
    if (load) (void)child(as_inner(pointer_of(bits)), dir, w.ctx);
    e = edit(bits, w);
  } catch (...) {
    drop(bits, w);
    throw;
  }
  try {
    if (load) (void)child(e, dir, w.ctx);
  } catch (...) {
    discard(e, account_of(w.ctx));
    throw;
  }
  return e;
}

/// After a failure below the editable node `e`: frees it and what it holds, but for its child
/// `given`, whose hold the failed step took (and gave up).
inline void abandon(inner_node* e, int given, const write_env& w) {
  e->child[given].set_bits(0);
  discard(e, account_of(w.ctx));
}

/// Makes child `i` of the editable node `parent` editable and returns it.
inline inner_node* edit_child(inner_node* parent, int i, const write_env& w) {
  (void)child(parent, i, w.ctx);  // loaded, if it was not
  inner_node* e = edit(parent->child[i].bits(), w);
  parent->child[i].set_bits(reinterpret_cast<std::uintptr_t>(e));
  parent->invalidate_child_hash(i);
  return e;
}

inline inner_node* rotate(inner_node* n, int dir, const write_env& w) {
  // dir 1 = rotate right (the left child rises), dir 0 = rotate left.
  const int up = dir == 1 ? 0 : 1;
  inner_node* pivot = edit_child(n, up, w);
  set_slot(n, up, slot_of(pivot, 1 - up));
  update_height(n);
  set_slot(pivot, 1 - up, own_slot(n));
  update_height(pivot);
  return pivot;
}

[[nodiscard]] inline int balance_factor(const node* n) {
  if (n->is_leaf()) return 0;
  const auto* in = as_inner(n);
  return in->facts().child_height[0] - in->facts().child_height[1];
}

/// Restores the AVL balance of the editable node `n` (cosmos/iavl balance()).
[[nodiscard]] inline inner_node* rebalance(inner_node* n, const write_env& w) {
  const int b = n->facts().child_height[0] - n->facts().child_height[1];
  if (b > 1) {
    if (balance_factor(child(n, 0, w.ctx)) < 0) set_slot(n, 0, own_slot(rotate(edit_child(n, 0, w), 0, w)));
    return rotate(n, 1, w);
  }
  if (b < -1) {
    if (balance_factor(child(n, 1, w.ctx)) > 0) set_slot(n, 1, own_slot(rotate(edit_child(n, 1, w), 1, w)));
    return rotate(n, 0, w);
  }
  return n;
}

/// Returns `r`, a node on an insert's path, noting it in `w.settled` if it is low enough. The
/// path is rewritten bottom up, so the last one noted is the highest.
inline inner_node* note_settled(inner_node* r, const write_env& w) {
  if (w.settled && r->height <= settled_height) *w.settled = r;
  return r;
}

/// Inserts or updates `key` in the non-empty subtree `bits` refers to, whose hash (as its parent
/// records it) is `v.hash` when `v.hash_valid`. Returns the new subtree, the tree's own. Sets
/// `updated` when the key existed. `leaf_key` is the split key of the last node above where the
/// path turned right, if any: the key of the leaf the path leads to (see look_up()), which is
/// therefore not loaded from the store, as a leaf beside a new key only moves down a level.
///
/// A failed store read or allocation throws, and the subtree is lost: the call gives up the
/// hold of `v` and frees what it made, so that a write that fails part way leaks nothing.
[[nodiscard]] inline node* insert(const slot_value& v, std::string_view key, std::string_view value, bool& updated,
                                  const write_env& w, std::optional<std::string_view> leaf_key = std::nullopt) {
  if (v.height == 0) {  // a leaf, in memory or not
    if (!is_key(v.bits)) leaf_key = as_leaf(pointer_of(v.bits))->key();
    assert(leaf_key);  // a leaf is left in the store only when its key is known
    const int c = key.compare(*leaf_key);
    if (c == 0) {
      updated = true;
      drop(v.bits, w);
      return make_leaf(key, value, w.version);
    }
    inner_node* in = nullptr;
    try {
      in = make_inner(c < 0 ? *leaf_key : key, w.version);
    } catch (...) {
      drop(v.bits, w);
      throw;
    }
    in->height = 1;
    const int old_side = c < 0 ? 1 : 0;
    set_slot(in, old_side, v);  // the old leaf, held as it was
    try {
      set_slot(in, 1 - old_side, own_slot(make_leaf(key, value, w.version)));
    } catch (...) {
      discard(in, account_of(w.ctx));
      throw;
    }
    return note_settled(in, w);
  }
  const auto* in = as_inner(pointer_of(v.bits));
  prefetch_children(in);  // the next node's miss starts while this one is compared and copied
  const int dir = key_less(key, in->key()) ? 0 : 1;
  const bool leaf_key_known = dir == 1 || leaf_key;
  inner_node* e = edit_toward(v.bits, dir, w, !(leaf_key_known && in->facts().child_height[dir] == 0));
  if (dir == 1) leaf_key = e->key();  // e, the tree's own, outlives the call below
  node* sub = nullptr;
  try {
    sub = insert(slot_of(e, dir), key, value, updated, w, leaf_key);
  } catch (...) {
    abandon(e, dir, w);
    throw;
  }
  if (updated) {  // an update changes no height or size
    e->child[dir].set_bits(reinterpret_cast<std::uintptr_t>(sub));
    e->invalidate_child_hash(dir);
    return note_settled(e, w);
  }
  set_slot(e, dir, own_slot(sub));
  update_height(e);
  try {
    return note_settled(rebalance(e, w), w);  // e is whole wherever this throws: its reads come before its changes
  } catch (...) {
    discard(e, account_of(w.ctx));
    throw;
  }
}

/// Replaces the key of the editable node `n` (a new allocation: the key is stored inline).
[[nodiscard]] inline inner_node* rekey(inner_node* n, std::string_view key) {
  inner_node* r = make_inner(key, n->version());
  r->height = n->height;
  for (int i = 0; i < 2; ++i) set_slot(r, i, slot_of(n, i));
  free_node(n);
  return r;
}

/// Removes `key`, which must be present, from the subtree `v` refers to. Returns what takes the
/// subtree's place (bits 0: nothing, the subtree was the removed leaf). `new_key` receives the
/// new smallest key of the subtree when a removal from the left changed it (cosmos/iavl's
/// newKey). Fails as insert() does, leaking nothing.
[[nodiscard]] inline slot_value erase(const slot_value& v, std::string_view key, std::optional<std::string>& new_key,
                                      const write_env& w) {
  if (v.height == 0) {  // the key's leaf, in memory or not: it is only dropped
    drop(v.bits, w);
    return {};
  }
  const auto* in = as_inner(pointer_of(v.bits));
  const int dir = key_less(key, in->key()) ? 0 : 1;
  inner_node* e = edit_toward(v.bits, dir, w, in->facts().child_height[dir] != 0);
  slot_value sub;
  try {
    sub = erase(slot_of(e, dir), key, new_key, w);
    if (!sub.bits && dir == 0) new_key.emplace(e->key());
  } catch (...) {
    abandon(e, dir, w);
    throw;
  }
  if (!sub.bits) {
    // The removed leaf was a child of this node: its sibling takes the node's place unchanged.
    const slot_value sibling = slot_of(e, 1 - dir);
    free_node(e);  // its hold on the sibling moves to the caller
    return sibling;
  }
  set_slot(e, dir, sub);
  try {
    if (dir == 1 && new_key) {
      e = rekey(e, *new_key);
      new_key.reset();
    }
    update_height(e);
    return own_slot(rebalance(e, w));  // e is whole wherever these throw
  } catch (...) {
    discard(e, account_of(w.ctx));
    throw;
  }
}

}  // namespace iavl::detail
