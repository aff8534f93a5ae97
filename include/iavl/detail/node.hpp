// Tree nodes: layout, allocation and reference counting. Internal; not part of the API.
//
// A node is one allocation. Nodes are immutable once shared: a working tree edits a node in
// place only while it holds the sole reference to it (refs == 1, reached through nodes it also
// owns exclusively); otherwise it copies the node (copy-on-write). Reference counts are atomic
// so that snapshots may be released from any thread.
//
// A child slot holds either a pointer to the child in memory, or, when the child lives only in
// the node store (not loaded yet, or evicted), the child's node key tagged with the low bit.
// Slots of shared nodes change only from "key" to "pointer" (a lazy load, by compare-and-swap
// from any thread) and from "pointer" to "key" (an eviction, by the writer).
//
// Layout (p is the node pointer; the cold fields sit before it at fixed offsets, so a lookup
// reads the header, the child slots and the key from adjacent bytes):
//   leaf:                    [hash 32][version 8] p:[header 8][value_size 4][nonce 4][key][value]
//   inner: [nonce 4][pad 4][size 8][hash 32][version 8] p:[header 8][left 8][right 8][key]
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "iavl/hash.hpp"
#include "iavl/node_store.hpp"

namespace iavl::detail {

inline constexpr std::uint8_t hash_valid = 1;  // node::flags bit: hash() holds the node's hash
inline constexpr std::uint8_t accessed = 2;    // node::flags bit: read since the cache last swept past it

// Node keys packed into a tagged child slot: version < 2^32, nonce < 2^31.
inline constexpr std::int64_t max_packed_version = (std::int64_t{1} << 32) - 1;
inline constexpr std::uint32_t max_packed_nonce = (std::uint32_t{1} << 31) - 1;

[[nodiscard]] inline std::uintptr_t pack_key(node_key k) {
  assert(k.version >= 0 && k.version <= max_packed_version && k.nonce <= max_packed_nonce);
  return (static_cast<std::uintptr_t>(k.version) << 32) | (static_cast<std::uintptr_t>(k.nonce) << 1) | 1;
}
[[nodiscard]] inline node_key unpack_key(std::uintptr_t bits) {
  return {static_cast<std::int64_t>(bits >> 32), static_cast<std::uint32_t>((bits & 0xffffffffu) >> 1)};
}
[[nodiscard]] inline bool is_key(std::uintptr_t bits) { return (bits & 1) != 0; }

struct node;

/// Bytes of memory held by the persisted nodes of one tree (loaded or committed), for its cache
/// budget. Nodes of working trees are not counted until committed.
struct memory_account {
  std::atomic<std::int64_t> bytes{0};
};

class child_slot {
 public:
  /// The slot's content: a node pointer, or a tagged key (is_key()).
  [[nodiscard]] std::uintptr_t bits() const { return bits_.load(std::memory_order_acquire); }
  /// The child if it is in memory, else null.
  [[nodiscard]] node* loaded() const {
    const std::uintptr_t b = bits();
    return is_key(b) ? nullptr : reinterpret_cast<node*>(b);
  }
  /// For nodes the caller owns exclusively.
  void set(node* n) { bits_.store(reinterpret_cast<std::uintptr_t>(n), std::memory_order_relaxed); }
  void set_bits(std::uintptr_t b) { bits_.store(b, std::memory_order_relaxed); }
  /// Publishes a loaded child in place of `expected` (its key); false when another thread won.
  bool install(std::uintptr_t expected, node* n) {
    return bits_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(n), std::memory_order_acq_rel);
  }
  /// Replaces a loaded child by its key (eviction); false when the slot changed meanwhile.
  bool unload(node* expected, node_key key) {
    auto e = reinterpret_cast<std::uintptr_t>(expected);
    return bits_.compare_exchange_strong(e, pack_key(key), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::uintptr_t> bits_{0};
};

struct node {
  std::atomic<std::uint32_t> refs{1};
  std::uint8_t height = 0;             // 0 for a leaf
  std::atomic<std::uint8_t> flags{0};  // atomic: readers on any thread set `accessed`
  std::uint16_t key_size = 0;

  [[nodiscard]] bool is_leaf() const { return height == 0; }
  [[nodiscard]] bool has_hash() const { return (flags.load(std::memory_order_relaxed) & hash_valid) != 0; }
  /// Only the owner of an unshared node changes its hash.
  void set_hash_valid(bool valid) {
    if (valid) {
      flags.fetch_or(hash_valid, std::memory_order_relaxed);
    } else {
      flags.fetch_and(static_cast<std::uint8_t>(~hash_valid), std::memory_order_relaxed);
    }
  }
  /// Notes a read for the cache; writes only when the bit is not set yet.
  void touch() {
    if (!(flags.load(std::memory_order_relaxed) & accessed)) flags.fetch_or(accessed, std::memory_order_relaxed);
  }
  /// Clears the read mark; returns whether it was set.
  bool take_touch() {
    return (flags.fetch_and(static_cast<std::uint8_t>(~accessed), std::memory_order_relaxed) & accessed) != 0;
  }

  [[nodiscard]] std::int64_t& version() { return *reinterpret_cast<std::int64_t*>(base() - 8); }
  [[nodiscard]] std::int64_t version() const { return *reinterpret_cast<const std::int64_t*>(base() - 8); }
  [[nodiscard]] hash256& hash() { return *reinterpret_cast<hash256*>(base() - 40); }
  [[nodiscard]] const hash256& hash() const { return *reinterpret_cast<const hash256*>(base() - 40); }
  /// Sequence number within version() in the node store; 0 until the node is persisted.
  [[nodiscard]] std::uint32_t& nonce();
  [[nodiscard]] std::uint32_t nonce() const { return const_cast<node*>(this)->nonce(); }
  [[nodiscard]] bool persisted() const { return nonce() != 0; }
  [[nodiscard]] node_key key_in_store() const { return {version(), nonce()}; }

 protected:
  char* base() { return reinterpret_cast<char*>(this); }
  const char* base() const { return reinterpret_cast<const char*>(this); }
};
static_assert(sizeof(node) == 8);

struct leaf_node : node {
  std::uint32_t value_size = 0;
  std::uint32_t leaf_nonce = 0;

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] std::string_view value() const { return {data() + key_size, value_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};
static_assert(sizeof(leaf_node) == 16);

struct inner_node : node {
  // [0] left, [1] right; a loaded child is a counted reference. Mutable: loading a child into
  // a shared node does not change the node's value.
  mutable child_slot child[2];

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  [[nodiscard]] std::int64_t& size() { return *reinterpret_cast<std::int64_t*>(base() - 48); }
  [[nodiscard]] std::int64_t size() const { return *reinterpret_cast<const std::int64_t*>(base() - 48); }
  [[nodiscard]] std::uint32_t& inner_nonce() { return *reinterpret_cast<std::uint32_t*>(base() - 56); }
};
static_assert(sizeof(inner_node) == 24);

inline constexpr std::size_t leaf_prefix = 40;   // hash + version
inline constexpr std::size_t inner_prefix = 56;  // nonce + pad + size + hash + version

[[nodiscard]] inline leaf_node* as_leaf(node* n) { return static_cast<leaf_node*>(n); }
[[nodiscard]] inline const leaf_node* as_leaf(const node* n) { return static_cast<const leaf_node*>(n); }
[[nodiscard]] inline inner_node* as_inner(node* n) { return static_cast<inner_node*>(n); }
[[nodiscard]] inline const inner_node* as_inner(const node* n) { return static_cast<const inner_node*>(n); }

inline std::uint32_t& node::nonce() { return is_leaf() ? as_leaf(this)->leaf_nonce : as_inner(this)->inner_nonce(); }

/// The key a lookup compares with: a leaf's key, or an inner node's split key (the smallest
/// key of its right subtree).
[[nodiscard]] inline std::string_view key_of(const node* n) {
  return n->is_leaf() ? as_leaf(n)->key() : as_inner(n)->key();
}
[[nodiscard]] inline std::int64_t size_of(const node* n) { return n->is_leaf() ? 1 : as_inner(n)->size(); }
[[nodiscard]] inline int height_of(const node* n) { return n->height; }

/// Bytes of memory a node occupies (its allocation), for memory accounting.
[[nodiscard]] inline std::size_t footprint(const node* n) {
  return n->is_leaf() ? leaf_prefix + sizeof(leaf_node) + n->key_size + as_leaf(n)->value_size
                      : inner_prefix + sizeof(inner_node) + n->key_size;
}

/// A new leaf (refs = 1, hash not yet computed). Sizes are checked by the caller.
[[nodiscard]] inline leaf_node* make_leaf(std::string_view key, std::string_view value, std::int64_t version) {
  char* base = static_cast<char*>(::operator new(leaf_prefix + sizeof(leaf_node) + key.size() + value.size()));
  auto* n = new (base + leaf_prefix) leaf_node;
  new (base) hash256;
  new (base + 32) std::int64_t(version);
  n->key_size = static_cast<std::uint16_t>(key.size());
  n->value_size = static_cast<std::uint32_t>(value.size());
  if (!key.empty()) std::memcpy(n->data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(n->data() + key.size(), value.data(), value.size());
  return n;
}

/// A new inner node whose child slots take the given contents (pointers whose references the
/// caller hands over, or tagged keys).
[[nodiscard]] inline inner_node* make_inner(std::string_view key, int height, std::int64_t size, std::int64_t version,
                                            std::uintptr_t left, std::uintptr_t right) {
  char* base = static_cast<char*>(::operator new(inner_prefix + sizeof(inner_node) + key.size()));
  auto* n = new (base + inner_prefix) inner_node;
  new (base) std::uint64_t(0);  // nonce + pad
  new (base + 8) std::int64_t(size);
  new (base + 16) hash256;
  new (base + 48) std::int64_t(version);
  n->height = static_cast<std::uint8_t>(height);
  n->key_size = static_cast<std::uint16_t>(key.size());
  n->child[0].set_bits(left);
  n->child[1].set_bits(right);
  if (!key.empty()) std::memcpy(n->data(), key.data(), key.size());
  return n;
}
[[nodiscard]] inline inner_node* make_inner(std::string_view key, int height, std::int64_t size, std::int64_t version,
                                            node* left, node* right) {
  return make_inner(key, height, size, version, reinterpret_cast<std::uintptr_t>(left),
                    reinterpret_cast<std::uintptr_t>(right));
}

/// Frees a node's memory without touching its children's references.
inline void free_node(node* n) {
  char* base = reinterpret_cast<char*>(n) - (n->is_leaf() ? leaf_prefix : inner_prefix);
  ::operator delete(base);
}

inline void retain(node* n) { n->refs.fetch_add(1, std::memory_order_relaxed); }

/// Drops one reference; the last one frees the node and releases its loaded children.
/// `account` (null for trees without a store) is debited for freed persisted nodes.
inline void release(node* n, memory_account* account) {
  // Holding the only reference means no other thread can be touching the count.
  if (n->refs.load(std::memory_order_acquire) != 1 && n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (!n->is_leaf()) {
    auto* in = as_inner(n);
    for (auto& c : in->child) {
      if (node* child = c.loaded()) release(child, account);
    }
  }
  if (account && n->persisted()) {
    account->bytes.fetch_sub(static_cast<std::int64_t>(footprint(n)), std::memory_order_relaxed);
  }
  free_node(n);
}

}  // namespace iavl::detail
