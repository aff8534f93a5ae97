// Inline definitions of iavl/tree.hpp (the hot paths). Internal.
#pragma once

#include <string>

#include "iavl/detail/epoch.hpp"
#include "iavl/detail/tree_ops.hpp"
#include "iavl/tree.hpp"

namespace iavl {

namespace detail {
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
  const detail::store_guard guard(root_.ctx());
  const detail::leaf_node* l = detail::find(root_.get(), key, root_.ctx());
  if (!l) return std::nullopt;
  return std::string(l->value());
}

inline bool tree_view::has(std::string_view key) const {
  return detail::find(root_.get(), key, root_.ctx()) != nullptr;
}

inline std::optional<entry> tree_view::at(std::int64_t index) const {
  if (index < 0 || index >= size()) return std::nullopt;
  const detail::store_guard guard(root_.ctx());
  const detail::leaf_node* l = detail::leaf_at(root_.get(), index, root_.ctx());
  return entry{std::string(l->key()), std::string(l->value())};
}

inline std::optional<std::int64_t> tree_view::index_of(std::string_view key) const {
  const detail::store_guard guard(root_.ctx());
  bool found = false;
  const std::int64_t rank = detail::rank_of(root_.get(), key, found, root_.ctx());
  if (!found) return std::nullopt;
  return rank;
}

inline set_result tree::set(std::string_view key, std::string_view value) {
  detail::check_sizes(key, value);
  const detail::store_guard guard(root_.ctx());
  if (!root_.get()) {
    root_.reset(detail::make_leaf(key, value, version_));
    return set_result::inserted;
  }
  bool updated = false;
  root_.reset(detail::insert(root_.take(), true, key, value, version_, updated, root_.ctx()));
  return updated ? set_result::updated : set_result::inserted;
}

inline bool tree::remove(std::string_view key) {
  const detail::store_guard guard(root_.ctx());
  if (!has(key)) return false;  // cosmos/iavl leaves the tree untouched then
  std::optional<std::string> new_key;
  root_.reset(detail::erase(root_.take(), true, key, version_, new_key, root_.ctx()));
  return true;
}

inline hash256 tree::working_hash() {
  const detail::store_guard guard(root_.ctx());
  return root_.get() ? detail::ensure_hash(root_.get(), root_.ctx()) : empty_tree_hash();
}

inline snapshot tree::freeze() && {
  const detail::store_guard guard(root_.ctx());
  if (root_.get()) detail::ensure_hash(root_.get(), root_.ctx());
  return snapshot(std::move(root_), version_);
}

// ---- iteration ----------------------------------------------------------------------------
//
// Ascending: `pending_` holds the inner nodes where the walk went left and whose right subtree
// is still to come; descending mirrors it. The walk stops at the first key outside the bound.

inline iterator::iterator(detail::root_ref root, std::optional<std::string_view> start,
                          std::optional<std::string_view> end, order o)
    : root_(std::move(root)), guard_(root_.ctx()), order_(o) {
  const auto& bound = o == order::ascending ? end : start;
  if (bound) bound_.emplace(*bound);
  const detail::node* n = root_.get();
  if (!n) return;
  const bool asc = o == order::ascending;
  const detail::store_context* ctx = root_.ctx();
  // Descend towards the first key in range, remembering where the far side is still to visit.
  while (!n->is_leaf()) {
    const auto* in = detail::as_inner(n);
    if (asc) {
      if (start && *start >= in->key()) {
        n = detail::child(in, 1, ctx);
      } else {
        pending_.push_back(in);
        n = detail::child(in, 0, ctx);
      }
    } else {
      if (end && *end <= in->key()) {
        n = detail::child(in, 0, ctx);
      } else {
        pending_.push_back(in);
        n = detail::child(in, 1, ctx);
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

inline void iterator::descend(const detail::node* n) {
  const int toward = order_ == order::ascending ? 0 : 1;
  while (!n->is_leaf()) {
    const auto* in = detail::as_inner(n);
    pending_.push_back(in);
    n = detail::child(in, toward, root_.ctx());
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
  const detail::inner_node* in = pending_.back();
  pending_.pop_back();
  descend(detail::child(in, order_ == order::ascending ? 1 : 0, root_.ctx()));
  settle();
  return *this;
}

}  // namespace iavl
