// Tree nodes: layout, allocation and reference counting. Internal; not part of the API.
//
// A node is one allocation. Nodes are immutable once shared: a working tree edits a node in
// place only while it holds the sole reference to it (refs == 1, reached through nodes it also
// owns exclusively); otherwise it copies the node (copy-on-write). Reference counts are atomic
// so that snapshots may be released from any thread.
//
// Layout (p is the node pointer; the cold fields sit before it at fixed offsets, so a lookup
// reads the header, the child pointers and the key from adjacent bytes):
//   leaf:           [hash 32][version 8] p:[header 8][value_size 4][pad 4][key][value]
//   inner: [size 8][hash 32][version 8] p:[header 8][left 8][right 8][key]
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

#include "iavl/hash.hpp"

namespace iavl::detail {

inline constexpr std::uint8_t hash_valid = 1;  // node::flags bit: hash() holds the node's hash

struct node {
  std::atomic<std::uint32_t> refs{1};
  std::uint8_t height = 0;  // 0 for a leaf
  std::uint8_t flags = 0;
  std::uint16_t key_size = 0;

  [[nodiscard]] bool is_leaf() const { return height == 0; }
  [[nodiscard]] bool has_hash() const { return (flags & hash_valid) != 0; }

  [[nodiscard]] std::int64_t& version() { return *reinterpret_cast<std::int64_t*>(cold() - 8); }
  [[nodiscard]] std::int64_t version() const { return *reinterpret_cast<const std::int64_t*>(cold() - 8); }
  [[nodiscard]] hash256& hash() { return *reinterpret_cast<hash256*>(cold() - 40); }
  [[nodiscard]] const hash256& hash() const { return *reinterpret_cast<const hash256*>(cold() - 40); }

 private:
  char* cold() { return reinterpret_cast<char*>(this); }
  const char* cold() const { return reinterpret_cast<const char*>(this); }
};
static_assert(sizeof(node) == 8);

struct leaf_node : node {
  std::uint32_t value_size = 0;
  std::uint32_t reserved = 0;

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] std::string_view value() const { return {data() + key_size, value_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};
static_assert(sizeof(leaf_node) == 16);

struct inner_node : node {
  node* child[2] = {nullptr, nullptr};  // counted references, [0] left, [1] right

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  [[nodiscard]] std::int64_t& size() { return *reinterpret_cast<std::int64_t*>(reinterpret_cast<char*>(this) - 48); }
  [[nodiscard]] std::int64_t size() const {
    return *reinterpret_cast<const std::int64_t*>(reinterpret_cast<const char*>(this) - 48);
  }
};
static_assert(sizeof(inner_node) == 24);

inline constexpr std::size_t leaf_prefix = 40;   // hash + version
inline constexpr std::size_t inner_prefix = 48;  // size + hash + version

[[nodiscard]] inline leaf_node* as_leaf(node* n) { return static_cast<leaf_node*>(n); }
[[nodiscard]] inline const leaf_node* as_leaf(const node* n) { return static_cast<const leaf_node*>(n); }
[[nodiscard]] inline inner_node* as_inner(node* n) { return static_cast<inner_node*>(n); }
[[nodiscard]] inline const inner_node* as_inner(const node* n) { return static_cast<const inner_node*>(n); }

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

/// A new inner node that takes over the caller's references to `left` and `right`.
[[nodiscard]] inline inner_node* make_inner(std::string_view key, int height, std::int64_t size, std::int64_t version,
                                            node* left, node* right) {
  char* base = static_cast<char*>(::operator new(inner_prefix + sizeof(inner_node) + key.size()));
  auto* n = new (base + inner_prefix) inner_node;
  new (base) std::int64_t(size);
  new (base + 8) hash256;
  new (base + 40) std::int64_t(version);
  n->height = static_cast<std::uint8_t>(height);
  n->key_size = static_cast<std::uint16_t>(key.size());
  n->child[0] = left;
  n->child[1] = right;
  if (!key.empty()) std::memcpy(n->data(), key.data(), key.size());
  return n;
}

/// Frees a node's memory without touching its children's references.
inline void free_node(node* n) {
  char* base = reinterpret_cast<char*>(n) - (n->is_leaf() ? leaf_prefix : inner_prefix);
  ::operator delete(base);
}

inline void retain(node* n) { n->refs.fetch_add(1, std::memory_order_relaxed); }

/// Drops one reference; the last one frees the node and releases its children.
inline void release(node* n) {
  // Holding the only reference means no other thread can be touching the count.
  if (n->refs.load(std::memory_order_acquire) != 1 && n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (!n->is_leaf()) {
    auto* in = as_inner(n);
    if (in->child[0]) release(in->child[0]);
    if (in->child[1]) release(in->child[1]);
  }
  free_node(n);
}

/// An owning reference to a node (or to nothing: the empty tree).
class node_ref {
 public:
  node_ref() = default;
  /// Adopts a reference the caller already counted.
  static node_ref adopt(node* n) {
    node_ref r;
    r.n_ = n;
    return r;
  }
  /// Takes a new reference to `n`.
  static node_ref share(node* n) {
    if (n) retain(n);
    return adopt(n);
  }
  node_ref(const node_ref& o) : n_(o.n_) {
    if (n_) retain(n_);
  }
  node_ref(node_ref&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
  node_ref& operator=(node_ref o) noexcept {
    std::swap(n_, o.n_);
    return *this;
  }
  ~node_ref() {
    if (n_) release(n_);
  }

  [[nodiscard]] node* get() const { return n_; }
  /// Gives up ownership without releasing.
  [[nodiscard]] node* take() {
    node* n = n_;
    n_ = nullptr;
    return n;
  }

 private:
  node* n_ = nullptr;
};

}  // namespace iavl::detail
