// Snapshots and working trees of an IAVL tree: a Merkle AVL tree whose node hashes are
// byte-compatible with cosmos/iavl.
//
// A `snapshot` is an immutable committed version. Copying it is O(1) (one reference count);
// `snapshot::branch()` makes, in O(1), a `tree`: a working tree on top of that version whose
// writes copy only the path they change (copy-on-write), and which edits in place the nodes it
// created itself. Many working trees may branch from one snapshot (a consensus app's "check" and
// "deliver" trees); none sees the others' writes.
//
// Thread-safety: a snapshot's const operations may run from any number of threads at once,
// also while working trees branched from it (or from anything else) are written. A working tree
// is for one thread at a time; its reads and writes must not overlap. Iterators and ranges keep
// the nodes they visit alive: an iterator over a snapshot stays valid after the snapshot is
// destroyed, one over a working tree is invalidated by any write to that tree.
//
// Keys and values are arbitrary byte strings, the empty string included; keys are ordered
// bytewise (as unsigned bytes). Keys are at most max_key_size bytes, values at most
// max_value_size bytes; larger ones are rejected with errc::invalid_argument.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "iavl/detail/epoch.hpp"
#include "iavl/detail/node.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/errors.hpp"
#include "iavl/hash.hpp"

namespace iavl {

inline constexpr std::size_t max_key_size = 65535;
inline constexpr std::size_t max_value_size = std::size_t{1} << 30;

/// The hash of the empty tree: SHA-256 of no bytes.
[[nodiscard]] hash256 empty_tree_hash();

/// A key and its value, viewed in place (valid while the iterator that produced it is unmoved).
struct entry_view {
  std::string_view key;
  std::string_view value;
};

/// A key and its value, owned.
struct entry {
  std::string key;
  std::string value;
  friend bool operator==(const entry&, const entry&) = default;
};

enum class order { ascending, descending };

enum class set_result { inserted, updated };

/// How a working tree takes writes. `immediate`: each set or remove rewrites the tree's nodes at
/// once. `deferred`: writes are kept in a buffer (reads see them) and applied to the nodes, in
/// their order, only when something needs the tree's shape (a hash, a commit, ordered or
/// positional reads): a tree whose writes are only read back and then thrown away, such as a
/// consensus app's check tree, never pays for them. Both give the same trees and hashes.
enum class writes { immediate, deferred };

namespace detail {
struct slot_value;
struct write_env;

/// The writes a deferred working tree has not applied to its nodes yet.
struct write_buffer {
  struct op {
    std::string key;
    std::optional<std::string> value;  // none: remove
  };
  std::deque<op> log;                                      // in order; addresses stay put
  std::unordered_map<std::string_view, std::size_t> last;  // key -> its last op in log
  std::int64_t size_change = 0;                            // keys added minus keys removed
  // The last key a read looked up in the nodes, and whether it was there: a set of the key just
  // read (the usual read-modify-write) then needs no second walk to know whether it inserts.
  std::string looked_up;
  bool looked_up_found = false;
  bool looked_up_valid = false;
};

/// A counted reference to a committed root node (or to nothing: the empty tree), with the
/// context of its versioned tree: the store its nodes load from, and the reclaimer.
class root_ref {
 public:
  root_ref() = default;
  root_ref(node* adopted, std::shared_ptr<store_context> ctx) : n_(adopted), ctx_(std::move(ctx)) {}
  root_ref(const root_ref& o) : n_(o.n_), ctx_(o.ctx_) {
    if (n_) retain(n_);
  }
  root_ref(root_ref&& o) noexcept : n_(std::exchange(o.n_, nullptr)), ctx_(std::move(o.ctx_)) {}
  root_ref& operator=(root_ref o) noexcept {
    std::swap(n_, o.n_);
    std::swap(ctx_, o.ctx_);
    return *this;
  }
  ~root_ref() {
    if (n_) drop_later(n_, false, ctx_.get());
  }

  [[nodiscard]] node* get() const { return n_; }
  /// The store context for the tree algorithms: null when the tree has no store.
  [[nodiscard]] const store_context* ctx() const { return store_of(ctx_.get()); }
  /// The whole context (also without a store): null only for trees made outside a versioned tree.
  [[nodiscard]] const store_context* family() const { return ctx_.get(); }
  [[nodiscard]] const std::shared_ptr<store_context>& shared_ctx() const { return ctx_; }

 private:
  node* n_ = nullptr;
  std::shared_ptr<store_context> ctx_;
};
}  // namespace detail

/// An input iterator over the entries of a key range, in ascending or descending key order.
/// Compares equal to std::default_sentinel when exhausted. An iterator over a snapshot keeps
/// the snapshot's nodes alive, also after the snapshot is destroyed; one over a working tree is
/// invalidated by any write to the tree and must not outlive it. For a tree with a store, an
/// iterator must stay on the thread that made it, and while it lives the memory of nodes the
/// cache unloads is not reclaimed.
class iterator {
 public:
  using value_type = entry_view;
  using difference_type = std::ptrdiff_t;

  iterator() = default;
  /// O(height): positions on the first key of [start, end) in the given order.
  iterator(const detail::node* root, detail::root_ref keep, const detail::version_id& source,
           std::optional<std::string_view> start, std::optional<std::string_view> end, order o);

  entry_view operator*() const { return {leaf_->key(), leaf_->value()}; }
  /// Amortised O(1), O(height) worst case. No allocation.
  iterator& operator++();
  void operator++(int) { ++*this; }
  friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.leaf_ == nullptr; }

 private:
  [[nodiscard]] const detail::node* child(const detail::inner_node* in, int side) const;
  void descend(const detail::node* n);
  void settle();

  detail::root_ref keep_;
  detail::version_id source_;                       // the version read (see tree_view::source_)
  detail::store_guard guard_;                       // nodes on the path stay valid while the iterator lives
  std::vector<const detail::inner_node*> pending_;  // nodes whose far subtree is still to visit
  const detail::leaf_node* leaf_ = nullptr;
  std::optional<std::string> bound_;  // the end (ascending) or start (descending) of the range
  order order_ = order::ascending;
};
static_assert(std::input_iterator<iterator>);

/// The entries of a key range; `for (auto [key, value] : t.range(...))`. It keeps copies of its
/// bounds: in that loop, bounds built in the call are gone before begin() runs.
class entry_range {
 public:
  entry_range(const detail::node* root, detail::root_ref keep, const detail::version_id& source,
              std::optional<std::string_view> start, std::optional<std::string_view> end, order o)
      : root_(root), keep_(std::move(keep)), source_(source), start_(start), end_(end), order_(o) {}
  [[nodiscard]] iterator begin() const { return {root_, keep_, source_, start_, end_, order_}; }
  [[nodiscard]] std::default_sentinel_t end() const { return {}; }

 private:
  const detail::node* root_;
  detail::root_ref keep_;
  detail::version_id source_;
  std::optional<std::string> start_, end_;
  order order_;
};

/// The read operations that snapshots and working trees share. n is the number of keys; all
/// reads are O(log n) unless stated otherwise.
class tree_view {
 public:
  /// The value of `key`, or nullopt. Allocates the returned copy.
  [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const;
  /// Number of keys. O(1).
  [[nodiscard]] std::int64_t size() const {
    check_usable();
    return (root_ ? detail::size_of(root_) : 0) + (buffer_ ? buffer_->size_change : 0);
  }
  /// Height of the root (0 for one key or none). O(1), after applying deferred writes.
  [[nodiscard]] int height() const {
    check_usable();
    apply_buffer();
    return root_ ? root_->height : 0;
  }
  [[nodiscard]] bool empty() const { return size() == 0; }

  /// The keys in [start, end) (a missing bound is open) in the given order. O(1), after applying
  /// deferred writes; iterating visits each entry in amortised O(1).
  [[nodiscard]] entry_range range(std::optional<std::string_view> start = std::nullopt,
                                  std::optional<std::string_view> end = std::nullopt,
                                  order o = order::ascending) const {
    check_usable();
    apply_buffer();
    return {root_, keep_, source_, start, end, o};
  }
  /// The entry at position `index` of key order, or nullopt when index is not in [0, size()).
  [[nodiscard]] std::optional<entry> at(std::int64_t index) const;
  /// The position of `key` in key order, or nullopt when absent.
  [[nodiscard]] std::optional<std::int64_t> index_of(std::string_view key) const;

  /// Recomputes and checks every node: key order, split keys, AVL balance, heights, sizes,
  /// versions and hashes (those a parent records for its children, and the root hash). O(n).
  /// Throws iavl::error(errc::corruption) naming the first problem.
  void verify() const {
    check_usable();
    apply_buffer();
    await_helper();
    verify_against(known_root_hash());
  }

 protected:
  tree_view() = default;
  tree_view(detail::root_ref keep, detail::node* root, std::int64_t version)
      : keep_(std::move(keep)), root_(root), version_(version) {}
  [[nodiscard]] const detail::store_context* ctx() const { return keep_.ctx(); }
  /// The root hash a snapshot or a hashed working tree records (null if none yet).
  [[nodiscard]] const hash256* known_root_hash() const { return root_hash_known_ ? &root_hash_ : nullptr; }
  void verify_against(const hash256* root_hash) const;
  /// Throws unless the tree can be used: a working tree that was moved from (committed trees
  /// are) or whose write failed part way (see tree::set) cannot.
  void check_usable() const {
    if (unusable_) [[unlikely]]
      throw error(unusable_code_, unusable_);
  }
  /// Applies a deferred working tree's buffered writes to its nodes (reads that need the tree's
  /// shape call this; a working tree is single-threaded, so it may change under a const read).
  void apply_buffer() const;
  /// Waits until the helper thread is done hashing the working tree's nodes (see
  /// tree::hand_over): for reads of their hashes.
  void await_helper() const;

  detail::write_buffer* buffer_ = nullptr;  // a deferred working tree's pending writes
  detail::root_ref keep_;                   // a snapshot's root; a working tree's base version root
  detail::node* root_ = nullptr;            // the root: keep_'s, or one the working tree made
  std::int64_t version_ = 0;
  hash256 root_hash_ = empty_tree_hash();  // valid when root_hash_known_
  // The committed version whose nodes the view reads: a snapshot's own, a working tree's base.
  detail::version_id source_{0, empty_tree_hash()};
  bool root_hash_known_ = true;
  // A working tree that writes to its nodes at once: its reads ask for the whole of each node on
  // the path, which a write of the same key (the usual next step) copies.
  bool writes_nodes_ = false;
  bool handed_over_ = false;        // a working tree's: the helper thread may be hashing some of its nodes
  const char* unusable_ = nullptr;  // why the tree cannot be used (check_usable), or null
  errc unusable_code_ = errc::invalid_argument;
};

class tree;

/// An immutable committed version of the tree. Cheap to copy; thread-safe.
class snapshot : public tree_view {
 public:
  /// The empty tree at version 0.
  snapshot() = default;

  [[nodiscard]] std::int64_t version() const { return version_; }
  /// The root hash (SHA-256 of nothing for the empty tree). O(1).
  [[nodiscard]] const hash256& hash() const { return root_hash_; }
  /// A working tree on top of this version, to be committed as version() + 1. O(1).
  [[nodiscard]] tree branch(writes mode = writes::immediate) const;

 private:
  friend class versioned_tree;
  friend class tree;
  // `source`: the version as its reader got it, with the rollbacks seen then.
  snapshot(detail::root_ref root, const detail::version_id& source) : tree_view(root, root.get(), source.version) {
    root_hash_ = source.hash;
    source_ = source;
  }
};

/// A working tree: the next version being built. Move-only; for one thread at a time.
class tree : public tree_view {
 public:
  /// An empty working tree that will become version 1, on its own: a versioned_tree commits only
  /// trees branched from it (branch()).
  tree() : tree_view({}, nullptr, 1) {}
  tree(tree&& o) noexcept;
  tree& operator=(tree&& o) noexcept;
  ~tree();

  /// The version this tree becomes when committed.
  [[nodiscard]] std::int64_t version() const { return version_; }

  /// Inserts `key` or replaces its value. O(log n); allocates the new leaf and copies of the
  /// shared nodes on the key's path (nodes this tree created are edited in place). When a node
  /// read from the store (or an allocation) fails part way, the error is thrown and the tree,
  /// half changed, is lost: every later use of it throws that error's code. Branch a new one.
  set_result set(std::string_view key, std::string_view value);
  /// Removes `key`; returns whether it was present. O(log n). Fails as set() does.
  bool remove(std::string_view key);
  /// The root hash of the tree as it stands, hashing each node changed since the last call
  /// once. O(changed nodes).
  [[nodiscard]] hash256 working_hash();

 protected:
  std::uintptr_t root_bits_ = 0;  // the root as a child slot holds it: own, counted or borrowed

 private:
  /// The root hash and the tree's own nodes, children first (what a commit writes), computed
  /// together in one walk.
  [[nodiscard]] const std::vector<detail::node*>& own_nodes();
  /// own_nodes(), moved out for a commit to share; listed again should the commit throw.
  [[nodiscard]] detail::committed_nodes take_own_nodes();

  friend class snapshot;
  friend class versioned_tree;
  tree(const snapshot& base, writes mode);
  friend class tree_view;
  void set_root(std::uintptr_t bits);
  void mark_lost() noexcept;  // in a handler of the failure
  void log_write(std::string_view key, std::optional<std::string> value);
  set_result set_now(std::string_view key, std::string_view value);
  bool remove_now(std::string_view key);
  void apply_buffered_writes();
  [[nodiscard]] bool split_hashing();
  void note_for_hashing(detail::inner_node* settled) noexcept;
  void hand_over();
  void finish_hashing();
  [[nodiscard]] detail::slot_value root_slot() const;
  [[nodiscard]] detail::write_env write_env();

  detail::epoch_pin pin_;                 // keeps the nodes it borrows alive through evictions
  std::vector<detail::node*> own_nodes_;  // valid while root_hash_known_ and own_nodes_known_
  bool own_nodes_known_ = false;
  std::vector<node_key> orphans_;                       // stored nodes of the base version this tree replaced
  std::vector<detail::inner_node*> to_hand_over_;       // subtrees to hash on the helper thread, next
  std::unique_ptr<detail::write_buffer> owned_buffer_;  // buffer_, for a deferred tree
};

inline tree snapshot::branch(writes mode) const { return tree(*this, mode); }

/// Reports how far a long operation got: `done` of `total` units (nodes, for the operations
/// that take one). Called on the operation's thread.
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// snapshot::verify() for a large tree, calling `progress` (checked nodes, of 2 * size() - 1)
/// every 65,536 nodes and at the end. Same checks, costs and errors.
void verify(const snapshot& s, const progress_fn& progress);

}  // namespace iavl

#include "iavl/detail/tree_inl.hpp"  // IWYU pragma: export
