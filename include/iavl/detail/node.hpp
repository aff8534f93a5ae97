// Tree nodes: layout, allocation and reference counting. Internal; not part of the API.
//
// A node is one allocation. A parent keeps, in the slot of each child, everything it needs to
// know about that child: where it is, its hash, its size and its height. So walking a path,
// rewriting it, rebalancing it and hashing it read only the nodes on the path, never their
// siblings, which are mostly cache misses in a large tree.
//
// Ownership. *Committed* nodes (those of committed versions) are immutable and reference
// counted: refs counts the slots of committed parents and the roots (snapshots, versions)
// that hold them. A working tree creates *uncommitted* nodes, which only it can reach and
// which it edits in place; their slots may *borrow* committed nodes without counting them
// (the working tree keeps its base version, and with it every node it borrows, alive).
// Committing turns the new nodes into committed ones and their borrowed slots into counted ones.
// Meanwhile a working tree may hand subtrees of its own nodes to the helper thread to hash (the
// `hashing` flag bits below).
//
// A child slot holds one of: a counted or uncommitted child's pointer; a borrowed pointer
// (tagged borrowed_tag); or, for a committed child that lives only in the node store (not
// loaded yet, or evicted), its node key (tagged key_tag). Slots of shared nodes change only
// from key to pointer (a lazy load, by compare-and-swap from any thread) and from pointer to
// key (an eviction, by the writer).
//
//   leaf:  [header 16][value_size 4][pad 4][key][value]
//   inner: [header 16][slots 16][key][pad to 4][child sizes 8][child heights 2][valid 1][pad 1]
//          [child hashes 64]
// A lookup reads a node's header, slots and (a short) key from its first 64 bytes.
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <thread>

#include "iavl/detail/node_pool.hpp"
#include "iavl/hash.hpp"
#include "iavl/node_store.hpp"

namespace iavl::detail {

// node::flags bits.
inline constexpr std::uint8_t committed = 1;  // part of a committed version: immutable, counted
inline constexpr std::uint8_t accessed = 2;   // read since the cache last swept past it
// A working tree's own node whose subtree it handed to the helper thread for hashing
// (tree::hand_over); with hashing_started, the helper is hashing it; with hashing_withdrawn, the
// tree took it back before that, and the helper will only clear the bits. The helper reads a node
// only while `hashing` is set, and reads below it only once it has started it.
inline constexpr std::uint8_t hashing = 4;
inline constexpr std::uint8_t hashing_started = 8;
inline constexpr std::uint8_t hashing_withdrawn = 16;

// Child slot tags (node pointers are 8-aligned).
inline constexpr std::uintptr_t key_tag = 1;
inline constexpr std::uintptr_t borrowed_tag = 2;
inline constexpr std::uintptr_t tag_mask = 3;

// Versions, nonces and sizes as nodes hold them.
inline constexpr std::int64_t max_version = (std::int64_t{1} << 32) - 1;
inline constexpr std::uint32_t max_nonce = (std::uint32_t{1} << 30) - 1;
inline constexpr std::int64_t max_size = (std::int64_t{1} << 32) - 1;

/// A node key in a slot: version (32 bits), nonce (30 bits), key_tag.
[[nodiscard]] inline std::uintptr_t pack_key(node_key k) {
  assert(k.version >= 0 && k.version <= max_version && k.nonce <= max_nonce);
  return (static_cast<std::uintptr_t>(k.version) << 32) | (static_cast<std::uintptr_t>(k.nonce) << 2) | key_tag;
}
[[nodiscard]] inline node_key unpack_key(std::uintptr_t bits) {
  return {static_cast<std::int64_t>(bits >> 32), static_cast<std::uint32_t>((bits & 0xffffffffu) >> 2)};
}
[[nodiscard]] inline bool is_key(std::uintptr_t bits) { return (bits & key_tag) != 0; }
[[nodiscard]] inline bool is_borrowed(std::uintptr_t bits) { return (bits & tag_mask) == borrowed_tag; }

struct node;
[[nodiscard]] inline node* pointer_of(std::uintptr_t bits) { return reinterpret_cast<node*>(bits & ~tag_mask); }
[[nodiscard]] inline std::uintptr_t bits_of(const node* n, bool borrowed) {
  return reinterpret_cast<std::uintptr_t>(n) | (borrowed ? borrowed_tag : 0);
}

/// Bytes of memory held by the committed nodes of one tree that are in memory, for its cache
/// budget. Nodes of working trees are not counted until committed.
struct memory_account {
  std::atomic<std::int64_t> bytes{0};
};

class child_slot {
 public:
  [[nodiscard]] std::uintptr_t bits() const { return bits_.load(std::memory_order_acquire); }
  /// The child if it is in memory (borrowed or not), else null.
  [[nodiscard]] node* loaded() const {
    const std::uintptr_t b = bits();
    return is_key(b) ? nullptr : pointer_of(b);
  }
  /// For nodes the caller owns exclusively.
  void set_bits(std::uintptr_t b) { bits_.store(b, std::memory_order_relaxed); }
  /// Publishes a loaded child in place of `expected` (its key); false when another thread won.
  bool install(std::uintptr_t expected, node* n) {
    return bits_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(n), std::memory_order_acq_rel);
  }
  /// Replaces a counted child by its key (eviction); false when the slot changed meanwhile.
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
  std::uint32_t version32 = 0;  // the version that created the node
  std::uint32_t nonce = 0;      // its sequence number within that version in the store; 0 if none

  [[nodiscard]] bool is_leaf() const { return height == 0; }
  [[nodiscard]] std::int64_t version() const { return version32; }
  [[nodiscard]] node_key key_in_store() const { return {version32, nonce}; }
  [[nodiscard]] bool is_committed() const { return (flags.load(std::memory_order_relaxed) & committed) != 0; }
  /// Before the node is published (by commit or by loading), by the one thread that holds it:
  /// a load and a store, not a locked OR, so that marking a version's thousands of new nodes
  /// overlaps their cache misses (the locked OR took 14% of the committing thread's samples).
  void mark_committed() { flags.store(flags.load(std::memory_order_relaxed) | committed, std::memory_order_relaxed); }
  /// Notes a read for the cache; writes only when the bit is not set yet.
  void touch() {
    if (!(flags.load(std::memory_order_relaxed) & accessed)) flags.fetch_or(accessed, std::memory_order_relaxed);
  }
  /// Before the tree edits a node it handed to the helper thread: takes it back if the helper
  /// has not started it, else waits until the helper is done with it.
  void take_back() {
    std::uint8_t f = flags.load(std::memory_order_acquire);
    while ((f & hashing) && !(f & hashing_withdrawn)) [[unlikely]] {
        if (!(f & hashing_started)) {
          if (flags.compare_exchange_weak(f, f | hashing_withdrawn, std::memory_order_acq_rel)) return;
        } else {
          std::this_thread::yield();
          f = flags.load(std::memory_order_acquire);
        }
      }
  }
  /// Before a node is freed: waits until the helper thread holds it no more.
  void let_go_of_helper() {
    if (!(flags.load(std::memory_order_acquire) & hashing)) [[likely]]
      return;  // every free asks
    take_back();
    while (flags.load(std::memory_order_acquire) & hashing) [[unlikely]] std::this_thread::yield();
  }
  /// On the helper thread: whether to hash the subtree at this node, handed to it; if so, it calls
  /// done_hashing() after. A node the tree took back it lets go of at once.
  [[nodiscard]] bool start_hashing() {
    std::uint8_t f = flags.load(std::memory_order_acquire);
    while (!(f & hashing_withdrawn)) {
      if (flags.compare_exchange_weak(f, f | hashing_started, std::memory_order_acq_rel)) return true;
    }
    flags.fetch_and(static_cast<std::uint8_t>(~(hashing | hashing_withdrawn)), std::memory_order_release);
    return false;
  }
  void done_hashing() {
    flags.fetch_and(static_cast<std::uint8_t>(~(hashing | hashing_started)), std::memory_order_release);
  }
  [[nodiscard]] bool handed_to_helper() const { return (flags.load(std::memory_order_acquire) & hashing) != 0; }
  /// Clears the read mark; returns whether it was set.
  bool take_touch() {
    return (flags.fetch_and(static_cast<std::uint8_t>(~accessed), std::memory_order_relaxed) & accessed) != 0;
  }
};
static_assert(sizeof(node) == 16);

struct leaf_node : node {
  std::uint32_t value_size = 0;
  std::uint32_t reserved = 0;

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] std::string_view value() const { return {data() + key_size, value_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};
static_assert(sizeof(leaf_node) == 24);

/// What a parent keeps of its children besides where they are. Hashing, rebalancing and
/// counting need it, a lookup does not: it sits after the key, off the lookup's cache line.
struct child_facts {
  std::uint32_t child_size[2] = {0, 0};   // keys below each child
  std::uint8_t child_height[2] = {0, 0};  // each child's height
  std::uint8_t hash_valid = 0;            // bit i: child_hash[i] is child i's hash; see inner_node::hash_bits
  std::uint8_t reserved = 0;
  hash256 child_hash[2];
};
static_assert(sizeof(child_facts) == 76);

struct inner_node : node {
  // [0] left, [1] right. Mutable: loading a child into a shared node changes no value of it.
  mutable child_slot child[2];

  [[nodiscard]] std::string_view key() const { return {data(), key_size}; }
  [[nodiscard]] char* data() { return reinterpret_cast<char*>(this + 1); }
  [[nodiscard]] const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  /// After the key, 4-byte aligned.
  [[nodiscard]] static std::size_t facts_offset(std::size_t key_size) {
    return sizeof(inner_node) + ((key_size + 3) & ~std::size_t{3});
  }
  [[nodiscard]] child_facts& facts() {
    return *reinterpret_cast<child_facts*>(reinterpret_cast<char*>(this) + facts_offset(key_size));
  }
  [[nodiscard]] const child_facts& facts() const {
    return *reinterpret_cast<const child_facts*>(reinterpret_cast<const char*>(this) + facts_offset(key_size));
  }
  [[nodiscard]] std::int64_t size() const { return std::int64_t{facts().child_size[0]} + facts().child_size[1]; }
  /// hash_valid, read and written atomically (relaxed): a read of the store may check a child
  /// against it while the helper thread hashes another part of the node's subtree.
  [[nodiscard]] std::uint8_t hash_bits() const {
    return std::atomic_ref(const_cast<std::uint8_t&>(facts().hash_valid)).load(std::memory_order_relaxed);
  }
  void set_hash_bits(std::uint8_t bits) { std::atomic_ref(facts().hash_valid).store(bits, std::memory_order_relaxed); }
  [[nodiscard]] bool child_hash_valid(int i) const { return (hash_bits() >> i) & 1; }
  /// Child i's hash if this node knows it, else null: what a loaded child is checked against.
  [[nodiscard]] const hash256* known_child_hash(int i) const {
    return child_hash_valid(i) ? &facts().child_hash[i] : nullptr;
  }
  void invalidate_child_hash(int i) { set_hash_bits(static_cast<std::uint8_t>(hash_bits() & ~(1 << i))); }
};
static_assert(sizeof(inner_node) == 32);

[[nodiscard]] inline leaf_node* as_leaf(node* n) { return static_cast<leaf_node*>(n); }
[[nodiscard]] inline const leaf_node* as_leaf(const node* n) { return static_cast<const leaf_node*>(n); }
[[nodiscard]] inline inner_node* as_inner(node* n) { return static_cast<inner_node*>(n); }
[[nodiscard]] inline const inner_node* as_inner(const node* n) { return static_cast<const inner_node*>(n); }

/// Whether key `a` sorts before `b`, bytewise (as `std::string_view`'s `<`). Keys almost always
/// differ in their first eight bytes, compared here as one big-endian word: a walk compares a key
/// at every level, and `<` calls `memcmp`.
[[nodiscard]] inline bool key_less(std::string_view a, std::string_view b) {
  if (a.size() >= 8 && b.size() >= 8) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a.data(), 8);
    std::memcpy(&y, b.data(), 8);
    if (x != y) {
      if constexpr (std::endian::native == std::endian::little) {
        x = __builtin_bswap64(x);
        y = __builtin_bswap64(y);
      }
      return x < y;
    }
  }
  return a < b;
}

/// The key a lookup compares with: a leaf's key, or an inner node's split key (the smallest
/// key of its right subtree).
[[nodiscard]] inline std::string_view key_of(const node* n) {
  return n->is_leaf() ? as_leaf(n)->key() : as_inner(n)->key();
}
[[nodiscard]] inline std::int64_t size_of(const node* n) { return n->is_leaf() ? 1 : as_inner(n)->size(); }

/// Asks for a node's first three cache lines (header, key, and an inner node's child facts).
inline void prefetch(const node* n) {
  const char* p = reinterpret_cast<const char*>(n);
  __builtin_prefetch(p);
  __builtin_prefetch(p + 64);
  __builtin_prefetch(p + 128);
}

/// Asks for the headers of an inner node's children that are in memory (their node keys); for
/// the leaves below a node of height 1, all of them, as a lookup that ends there reads the value.
inline void prefetch_children(const node* n) {
  if (n->is_leaf()) return;
  for (const child_slot& c : as_inner(n)->child) {
    if (const node* child = c.loaded()) {
      if (n->height == 1) {
        prefetch(child);
      } else {
        __builtin_prefetch(child);
      }
    }
  }
}

/// Bytes of memory a node occupies (its allocation), for memory accounting.
[[nodiscard]] inline std::size_t footprint(const node* n) {
  return n->is_leaf() ? sizeof(leaf_node) + n->key_size + as_leaf(n)->value_size
                      : inner_node::facts_offset(n->key_size) + sizeof(child_facts);
}

/// A new uncommitted leaf. Sizes are checked by the caller.
[[nodiscard]] inline leaf_node* make_leaf(std::string_view key, std::string_view value, std::int64_t version) {
  auto* n = new (node_pool::allocate(sizeof(leaf_node) + key.size() + value.size())) leaf_node;
  n->version32 = static_cast<std::uint32_t>(version);
  n->key_size = static_cast<std::uint16_t>(key.size());
  n->value_size = static_cast<std::uint32_t>(value.size());
  if (!key.empty()) std::memcpy(n->data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(n->data() + key.size(), value.data(), value.size());
  return n;
}

/// A new uncommitted inner node with `key` and empty slots.
[[nodiscard]] inline inner_node* make_inner(std::string_view key, std::int64_t version) {
  auto* n = new (node_pool::allocate(inner_node::facts_offset(key.size()) + sizeof(child_facts))) inner_node;
  n->version32 = static_cast<std::uint32_t>(version);
  n->key_size = static_cast<std::uint16_t>(key.size());
  if (!key.empty()) std::memcpy(n->data(), key.data(), key.size());
  new (&n->facts()) child_facts;
  return n;
}

/// Frees a node's memory without touching its children.
inline void free_node(node* n) {
  n->let_go_of_helper();
  const std::size_t bytes = footprint(n);
  if (n->is_leaf()) {
    as_leaf(n)->~leaf_node();
  } else {
    as_inner(n)->facts().~child_facts();
    as_inner(n)->~inner_node();
  }
  node_pool::deallocate(n, bytes);
}

inline void retain(node* n) { n->refs.fetch_add(1, std::memory_order_relaxed); }

/// Drops one counted reference to a node; returns whether it was the last one.
[[nodiscard]] inline bool drop_ref(node* n) {
  // Holding the only reference means no other thread can be touching the count.
  return n->refs.load(std::memory_order_acquire) == 1 || n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

/// Frees a node whose last reference was dropped, debiting `account` (may be null).
inline void free_counted(node* n, memory_account* account) {
  if (account) account->bytes.fetch_sub(static_cast<std::int64_t>(footprint(n)), std::memory_order_relaxed);
  free_node(n);
}

/// Frees `n`, whose last reference was dropped, and releases what its slots count, depth first:
/// allocates nothing, for when release's list cannot grow.
inline void release_depth_first(node* n, memory_account* account) {
  if (!n->is_leaf()) {
    for (const auto& c : as_inner(n)->child) {
      const std::uintptr_t b = c.bits();
      if (!is_key(b) && !is_borrowed(b) && drop_ref(pointer_of(b))) release_depth_first(pointer_of(b), account);
    }
  }
  free_counted(n, account);
}

/// Drops one counted reference to a committed node; the last one frees it and releases the
/// children its slots count. `account` (null for trees without a store) is debited. Does not
/// throw (it runs in destructors).
inline void release(node* n, memory_account* account) {
  if (!drop_ref(n)) return;
  // A version's freed nodes lie on many paths, and each of them, like each child whose count
  // drops, is a cache miss: breadth first, the nodes to visit are known and fetched 16 ahead.
  constexpr std::size_t ahead = 16;
  node_pool::scratch_vector<node*> to_drop;           // children whose counted reference goes, in the order found
  const auto free_and_list_children = [&](node* f) {  // f's last reference is gone
    if (!f->is_leaf()) {
      for (const auto& c : as_inner(f)->child) {
        const std::uintptr_t b = c.bits();
        if (is_key(b) || is_borrowed(b)) continue;
        try {
          to_drop.push_back(pointer_of(b));
        } catch (const std::bad_alloc&) {
          if (drop_ref(pointer_of(b))) release_depth_first(pointer_of(b), account);
        }
      }
    }
    free_counted(f, account);
  };
  free_and_list_children(n);
  for (std::size_t i = 0; i < to_drop.size(); ++i) {
    if (i + ahead < to_drop.size()) __builtin_prefetch(to_drop[i + ahead], 1);
    if (drop_ref(to_drop[i])) free_and_list_children(to_drop[i]);
  }
}

/// Frees the nodes a working tree created below (and including) `n`, and releases the committed
/// ones it loaded into them; borrowed nodes are not its to touch. An empty slot (a write that
/// failed part way) holds nothing.
inline void discard(node* n, memory_account* account) {
  if (n->is_committed()) {
    release(n, account);
    return;
  }
  n->let_go_of_helper();  // before its subtree is freed
  if (!n->is_leaf()) {
    for (const auto& c : as_inner(n)->child) {
      const std::uintptr_t b = c.bits();
      if (b != 0 && !is_key(b) && !is_borrowed(b)) discard(pointer_of(b), account);
    }
  }
  free_node(n);
}

}  // namespace iavl::detail
