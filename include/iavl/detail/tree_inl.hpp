// Inline definitions of iavl/tree.hpp (the hot paths). Internal.
#pragma once

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <string>

#include "iavl/detail/epoch.hpp"
#include "iavl/detail/tree_ops.hpp"
#include "iavl/tree.hpp"

namespace iavl {

namespace detail {
// Why a working tree that was moved from cannot be used (see tree_view::check_usable).
inline constexpr const char* moved_from = "this working tree was moved from (a commit takes it): branch a new one";
inline void check_sizes(std::string_view key, std::string_view value) {
  if (key.size() > max_key_size) {
    throw error(errc::invalid_argument,
                "key of " + std::to_string(key.size()) + " bytes exceeds the limit of " + std::to_string(max_key_size));
  }
  if (value.size() > max_value_size) {
    throw error(errc::invalid_argument, "value of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
                                            std::to_string(max_value_size));
  }
}
}  // namespace detail

inline std::optional<std::string> tree_view::get(std::string_view key) const {
  check_usable();
  if (buffer_) {
    const auto it = buffer_->last.find(key);
    if (it != buffer_->last.end()) return buffer_->log[it->second].value;
  }
  const detail::store_guard guard(ctx());
  const detail::leaf_node* l =
      detail::reading(ctx(), source_, [&] { return detail::find(root_, key, ctx(), writes_nodes_); });
  if (buffer_) {
    buffer_->looked_up.assign(key);
    buffer_->looked_up_found = l != nullptr;
    buffer_->looked_up_valid = true;
  }
  if (!l) return std::nullopt;
  return std::string(l->value());
}

inline bool tree_view::has(std::string_view key) const {
  check_usable();
  if (buffer_) {
    const auto it = buffer_->last.find(key);
    if (it != buffer_->last.end()) return buffer_->log[it->second].value.has_value();
    if (buffer_->looked_up_valid && buffer_->looked_up == key) return buffer_->looked_up_found;
  }
  const detail::store_guard guard(ctx());
  return detail::reading(ctx(), source_, [&] { return detail::look_up(root_, key, ctx(), false, writes_nodes_); })
      .present;
}

inline std::optional<entry> tree_view::at(std::int64_t index) const {
  check_usable();
  apply_buffer();
  if (index < 0 || index >= size()) return std::nullopt;
  const detail::store_guard guard(ctx());
  const detail::leaf_node* l = detail::reading(ctx(), source_, [&] { return detail::leaf_at(root_, index, ctx()); });
  return entry{std::string(l->key()), std::string(l->value())};
}

inline std::optional<std::int64_t> tree_view::index_of(std::string_view key) const {
  check_usable();
  apply_buffer();
  const detail::store_guard guard(ctx());
  bool found = false;
  const std::int64_t rank = detail::reading(ctx(), source_, [&] { return detail::rank_of(root_, key, found, ctx()); });
  if (!found) return std::nullopt;
  return rank;
}

// ---- working trees ------------------------------------------------------------------------

inline void tree_view::apply_buffer() const {
  // Only working trees have a buffer; applying it is their (single-threaded) business.
  if (buffer_ && !buffer_->log.empty()) static_cast<tree*>(const_cast<tree_view*>(this))->apply_buffered_writes();
}

inline tree::tree(const snapshot& base, writes mode)
    : tree_view(base.keep_, base.root_, base.version_ + 1),
      root_bits_(base.root_ ? detail::bits_of(base.root_, true) : 0),
      pin_(base.ctx()) {
  root_hash_ = base.root_hash_;
  source_ = base.source_;
  if (mode == writes::deferred) {
    owned_buffer_ = std::make_unique<detail::write_buffer>();
    buffer_ = owned_buffer_.get();
  }
  writes_nodes_ = mode == writes::immediate;
}

inline tree::tree(tree&& o) noexcept
    : tree_view(std::move(o.keep_), std::exchange(o.root_, nullptr), o.version_),
      root_bits_(std::exchange(o.root_bits_, 0)),
      pin_(std::move(o.pin_)),
      own_nodes_(std::move(o.own_nodes_)),
      own_nodes_known_(std::exchange(o.own_nodes_known_, false)),
      orphans_(std::move(o.orphans_)),
      to_hand_over_(std::move(o.to_hand_over_)),
      owned_buffer_(std::move(o.owned_buffer_)) {
  root_hash_ = o.root_hash_;
  root_hash_known_ = o.root_hash_known_;
  source_ = o.source_;
  buffer_ = std::exchange(o.buffer_, nullptr);
  writes_nodes_ = o.writes_nodes_;
  handed_over_ = std::exchange(o.handed_over_, false);
  unusable_ = std::exchange(o.unusable_, detail::moved_from);
  unusable_code_ = std::exchange(o.unusable_code_, errc::invalid_argument);
}

inline tree& tree::operator=(tree&& o) noexcept {
  if (this != &o) {
    set_root(0);
    keep_ = std::move(o.keep_);
    root_ = std::exchange(o.root_, nullptr);
    version_ = o.version_;
    root_bits_ = std::exchange(o.root_bits_, 0);
    root_hash_ = o.root_hash_;
    root_hash_known_ = o.root_hash_known_;
    source_ = o.source_;
    pin_ = std::move(o.pin_);
    own_nodes_ = std::move(o.own_nodes_);
    own_nodes_known_ = std::exchange(o.own_nodes_known_, false);
    orphans_ = std::move(o.orphans_);
    to_hand_over_ = std::move(o.to_hand_over_);
    handed_over_ = std::exchange(o.handed_over_, false);
    owned_buffer_ = std::move(o.owned_buffer_);
    buffer_ = std::exchange(o.buffer_, nullptr);
    writes_nodes_ = o.writes_nodes_;
    unusable_ = std::exchange(o.unusable_, detail::moved_from);
    unusable_code_ = std::exchange(o.unusable_code_, errc::invalid_argument);
  }
  return *this;
}

inline tree::~tree() { set_root(0); }

inline detail::write_env tree::write_env() { return {version_, ctx(), ctx() ? &orphans_ : nullptr}; }

inline detail::slot_value tree::root_slot() const {
  return {root_bits_, root_hash_, root_hash_known_, static_cast<std::uint32_t>(detail::size_of(root_)), root_->height};
}

/// Takes `bits` as the new root, giving up the old one's hold (which must not be `bits`).
inline void tree::set_root(std::uintptr_t bits) {
  if (root_bits_) {
    const detail::hold h = detail::hold_of(root_bits_);
    if (h != detail::hold::borrowed) detail::drop_later(root_, h == detail::hold::own, keep_.family());
  }
  root_bits_ = bits;
  root_ = bits ? detail::pointer_of(bits) : nullptr;
}

inline set_result tree::set(std::string_view key, std::string_view value) {
  check_usable();
  detail::check_sizes(key, value);
  if (!buffer_) return set_now(key, value);
  const bool existed = has(key);
  const auto it = buffer_->last.find(key);
  if (it != buffer_->last.end() && buffer_->log[it->second].value) {
    buffer_->log[it->second].value->assign(value);  // sets of a key in a row leave one tree
  } else {
    log_write(key, std::string(value));
  }
  if (!existed) ++buffer_->size_change;
  return existed ? set_result::updated : set_result::inserted;
}

inline bool tree::remove(std::string_view key) {
  check_usable();
  if (!buffer_) return remove_now(key);
  if (!has(key)) return false;
  log_write(key, std::nullopt);
  --buffer_->size_change;
  return true;
}

// Appends a write to a deferred tree's log; when that throws (an allocation), the log is as it was.
inline void tree::log_write(std::string_view key, std::optional<std::string> value) {
  buffer_->log.push_back({std::string(key), std::move(value)});
  try {
    buffer_->last[buffer_->log.back().key] = buffer_->log.size() - 1;
  } catch (...) {
    buffer_->log.pop_back();
    throw;
  }
}

inline void tree::apply_buffered_writes() {
  detail::write_buffer& b = *buffer_;
  buffer_ = nullptr;  // so that the writes below go to the nodes
  try {
    for (const auto& op : b.log) {
      if (op.value) {
        (void)set_now(op.key, *op.value);
      } else {
        (void)remove_now(op.key);
      }
    }
  } catch (...) {  // some of the log is in the nodes, the rest not: the tree is lost
    buffer_ = &b;
    mark_lost();
    throw;
  }
  b.log.clear();
  b.last.clear();
  b.size_change = 0;
  b.looked_up_valid = false;  // the nodes now hold the writes
  buffer_ = &b;
}

inline set_result tree::set_now(std::string_view key, std::string_view value) {
  const detail::store_guard guard(ctx());
  detail::node* fresh = nullptr;
  bool updated = false;
  detail::inner_node* settled = nullptr;
  if (!root_) {
    fresh = detail::make_leaf(key, value, version_);
  } else {
    const detail::slot_value current = root_slot();
    root_bits_ = 0;  // insert takes over the old root's hold
    root_ = nullptr;
    detail::write_env env = write_env();
    if (writes_nodes_ && keep_.family()) env.settled = &settled;
    try {
      fresh = detail::reading(ctx(), source_, [&] { return detail::insert(current, key, value, updated, env); });
    } catch (...) {
      mark_lost();
      throw;
    }
  }
  set_root(reinterpret_cast<std::uintptr_t>(fresh));
  if (settled && settled != root_) note_for_hashing(settled);
  root_hash_known_ = false;
  own_nodes_known_ = false;
  return updated ? set_result::updated : set_result::inserted;
}

inline bool tree::remove_now(std::string_view key) {
  const detail::store_guard guard(ctx());
  if (!has(key)) return false;  // cosmos/iavl leaves the tree untouched then
  // Of the nodes noted, the removal frees only one whose split key it removes (erase's rekey).
  std::erase_if(to_hand_over_, [&](const detail::inner_node* n) { return n->key() == key; });
  std::optional<std::string> new_key;
  const detail::slot_value current = root_slot();
  root_bits_ = 0;  // erase takes over the old root's hold
  root_ = nullptr;
  detail::slot_value rest;
  try {
    detail::reading(ctx(), source_, [&] {
      rest = detail::erase(current, key, new_key, write_env());
      if (rest.bits && detail::is_key(rest.bits)) {  // the new root is a child not in memory yet
        rest.bits = reinterpret_cast<std::uintptr_t>(
            ctx()->load(detail::unpack_key(rest.bits), rest.hash_valid ? &rest.hash : nullptr));
      }
    });
  } catch (...) {
    mark_lost();
    throw;
  }
  set_root(rest.bits);
  root_hash_ = rest.bits ? rest.hash : empty_tree_hash();
  root_hash_known_ = !rest.bits || rest.hash_valid;
  own_nodes_known_ = false;
  return true;
}

// A write that failed part way handed the root to the failed step (insert, erase), which gave it
// up, freeing what the tree had made: the tree is lost.
inline void tree::mark_lost() noexcept {
  to_hand_over_.clear();  // the failed step may have freed some of them
  unusable_code_ = errc::io_error;
  try {
    throw;
  } catch (const error& e) {
    unusable_code_ = e.code();
  } catch (...) {  // an allocation: io_error stands for it
  }
  unusable_ = "this working tree was lost when a write to it failed part way: branch a new one";
}

inline hash256 tree::working_hash() {
  check_usable();
  (void)own_nodes();
  return root_hash_;
}

// Hashes the root's two subtrees at once, the right one on the helper thread, when both are new
// and unhashed (a large write set). Returns false, having done nothing, otherwise.
inline bool tree::split_hashing() {
  auto* root = detail::as_inner(root_);
  if (root_->is_leaf() || root->child_hash_valid(0) || root->child_hash_valid(1)) return false;
  std::vector<detail::node*> right_nodes;
  keep_.family()->helper().both(
      [&] { root->facts().child_hash[1] = detail::hash_of(detail::pointer_of(root->child[1].bits()), &right_nodes); },
      [&] { root->facts().child_hash[0] = detail::hash_of(detail::pointer_of(root->child[0].bits()), &own_nodes_); });
  root->set_hash_bits(3);
  own_nodes_.insert(own_nodes_.end(), right_nodes.begin(), right_nodes.end());  // still children first
  own_nodes_.push_back(root_);
  root_hash_ = detail::hash_of(root_);
  return true;
}

namespace detail {
/// Subtrees the helper threads of all trees have hashed (tree::hand_over), for tests.
inline std::atomic<std::uint64_t> subtrees_hashed_by_helper{0};
}  // namespace detail

// Hashing a block's new nodes on the helper thread while the block goes on. A write's new path
// ends in nodes that later writes of a block seldom change again: at settled_height (10) or
// below, a subtree of some 500 keys. The tree notes the highest such node of each insert's path,
// and every 64 notes it hands them over: the helper hashes each one's new nodes below it, and the
// commit then finds their hashes in their slots. A node handed over is not edited until the tree
// takes it back or the helper is done with it (node::take_back), nor freed until the helper has
// let go of it (node::let_go_of_helper).
inline void tree::note_for_hashing(detail::inner_node* settled) noexcept {
  constexpr std::size_t batch = 64;
  try {
    to_hand_over_.push_back(settled);  // hand_over() skips the second of a node noted twice
    if (to_hand_over_.size() == batch) hand_over();
  } catch (...) {  // an allocation: the commit hashes these itself
    to_hand_over_.clear();
  }
}

// Allocates before it marks a node handed over, so that a failed allocation hands nothing over.
inline void tree::hand_over() {
  auto nodes = std::make_shared<std::vector<detail::node*>>();
  nodes->reserve(to_hand_over_.size());
  // The helper takes 16 at a time: it fetches their nodes together, and the tree waits for no
  // more than those when it needs one it handed over. A failure (an allocation) leaves the rest
  // of a subtree's hashes to the commit: a hash is marked valid only once it is in its slot.
  std::function<void()> task = [nodes] {
    constexpr std::size_t chunk = 16;
    for (std::size_t i = 0; i < nodes->size(); i += chunk) {
      std::array<detail::node*, chunk> started{};
      std::size_t count = 0;
      for (std::size_t j = i; j < std::min(nodes->size(), i + chunk); ++j) {
        if ((*nodes)[j]->start_hashing()) started[count++] = (*nodes)[j];  // else taken back
      }
      try {
        detail::hash_below({started.data(), count});
      } catch (...) {
      }
      for (std::size_t j = 0; j < count; ++j) started[j]->done_hashing();
      detail::subtrees_hashed_by_helper.fetch_add(count, std::memory_order_relaxed);
    }
  };
  for (detail::inner_node* n : to_hand_over_) {
    // Noted twice, or taken back and not let go of by the helper yet: handed over once.
    if (n->handed_to_helper()) continue;
    n->flags.fetch_or(detail::hashing, std::memory_order_relaxed);
    nodes->push_back(n);
  }
  to_hand_over_.clear();
  keep_.family()->helper().post(std::move(task));
  handed_over_ = true;
}

inline void tree_view::await_helper() const {
  if (handed_over_) keep_.family()->helper().flush();
}

// What was not handed over yet the commit hashes itself.
inline void tree::finish_hashing() {
  to_hand_over_.clear();
  await_helper();
  handed_over_ = false;
}

inline const std::vector<detail::node*>& tree::own_nodes() {
  apply_buffer();
  finish_hashing();
  if (root_hash_known_ && own_nodes_known_) return own_nodes_;
  const detail::store_guard guard(ctx());
  own_nodes_.clear();
  const bool own_root = root_ && detail::hold_of(root_bits_) == detail::hold::own;
  if (!root_hash_known_ && own_root && keep_.family() && split_hashing()) {
    root_hash_known_ = true;
  } else if (!root_hash_known_) {
    root_hash_ = detail::hash_of(root_, own_root ? &own_nodes_ : nullptr);
    root_hash_known_ = true;
  } else if (own_root) {
    detail::list_own(root_, own_nodes_);
  }
  own_nodes_known_ = true;
  return own_nodes_;
}

inline detail::committed_nodes tree::take_own_nodes() {
  (void)own_nodes();
  // Moved only once the shared list's allocation succeeded: a bad_alloc leaves the list here.
  auto taken = std::make_shared<const std::vector<detail::node*>>(std::move(own_nodes_));
  own_nodes_known_ = false;
  return taken;
}

// ---- iteration ----------------------------------------------------------------------------
//
// Ascending: `pending_` holds the inner nodes where the walk went left and whose right subtree
// is still to come; descending mirrors it. The walk stops at the first key outside the bound.

inline iterator::iterator(const detail::node* root, detail::root_ref keep, const detail::version_id& source,
                          std::optional<std::string_view> start, std::optional<std::string_view> end, order o)
    : keep_(std::move(keep)), source_(source), guard_(keep_.ctx()), order_(o) {
  const auto& bound = o == order::ascending ? end : start;
  if (bound) bound_.emplace(*bound);
  const detail::node* n = root;
  if (!n) return;
  const bool asc = o == order::ascending;
  // Descend towards the first key in range, remembering where the far side is still to visit.
  while (!n->is_leaf()) {
    const auto* in = detail::as_inner(n);
    if (asc) {
      if (start && *start >= in->key()) {
        n = child(in, 1);
      } else {
        pending_.push_back(in);
        n = child(in, 0);
      }
    } else {
      if (end && *end <= in->key()) {
        n = child(in, 0);
      } else {
        pending_.push_back(in);
        n = child(in, 1);
      }
    }
  }
  leaf_ = detail::as_leaf(n);
  const bool before_range = asc ? (start && leaf_->key() < *start) : (end && leaf_->key() >= *end);
  if (before_range) {
    ++*this;
  } else {
    settle();
  }
}

inline const detail::node* iterator::child(const detail::inner_node* in, int side) const {
  return detail::reading(keep_.ctx(), source_, [&] { return detail::child(in, side, keep_.ctx()); });
}

inline void iterator::descend(const detail::node* n) {
  const int toward = order_ == order::ascending ? 0 : 1;
  while (!n->is_leaf()) {
    const auto* in = detail::as_inner(n);
    pending_.push_back(in);
    n = child(in, toward);
  }
  leaf_ = detail::as_leaf(n);
}

inline void iterator::settle() {
  if (!leaf_ || !bound_) return;
  const bool past = order_ == order::ascending ? leaf_->key() >= *bound_ : leaf_->key() < *bound_;
  if (past) {
    leaf_ = nullptr;
    pending_.clear();
  }
}

inline iterator& iterator::operator++() {
  if (pending_.empty()) {
    leaf_ = nullptr;
    return *this;
  }
  // A failed load (a store read) leaves the iterator where it was, so that ++ can be retried.
  const std::size_t depth = pending_.size();
  const detail::inner_node* in = pending_.back();
  try {
    const detail::node* far = child(in, order_ == order::ascending ? 1 : 0);
    pending_.pop_back();
    descend(far);
  } catch (...) {
    pending_.resize(depth - 1);  // within capacity: no allocation
    pending_.push_back(in);
    throw;
  }
  settle();
  return *this;
}

}  // namespace iavl
