#include "iavl/versioned_tree.hpp"

#include <string>

#include "iavl/detail/tree_inl.hpp"

namespace iavl {

std::int64_t versioned_tree::latest_version() const {
  std::lock_guard lock(mutex_);
  return versions_.empty() ? 0 : versions_.rbegin()->first;
}

snapshot versioned_tree::last_commit() const {
  std::lock_guard lock(mutex_);
  return versions_.empty() ? snapshot() : versions_.rbegin()->second;
}

snapshot versioned_tree::at(std::int64_t version) const {
  std::lock_guard lock(mutex_);
  const auto it = versions_.find(version);
  if (it == versions_.end())
    throw error(errc::version_not_found, "version " + std::to_string(version) + " does not exist");
  return it->second;
}

std::vector<std::int64_t> versioned_tree::versions() const {
  std::lock_guard lock(mutex_);
  std::vector<std::int64_t> out;
  out.reserve(versions_.size());
  for (const auto& [v, s] : versions_) out.push_back(v);
  return out;
}

snapshot versioned_tree::commit(tree&& working) {
  std::lock_guard serial(commit_mutex_);  // one commit at a time; readers only wait on mutex_
  const snapshot base = last_commit();
  const std::int64_t latest = base.version();
  if (working.version() != latest + 1 || !(working.base_hash_ == base.hash())) {
    throw error(errc::stale_branch, "working tree of version " + std::to_string(working.version()) +
                                        " cannot be committed on top of version " + std::to_string(latest));
  }
  snapshot s = std::move(working).freeze();  // hashing happens outside the lock
  std::lock_guard lock(mutex_);
  versions_.emplace(s.version(), s);
  return s;
}

void versioned_tree::delete_version(std::int64_t version) {
  std::lock_guard lock(mutex_);
  const auto it = versions_.find(version);
  if (it == versions_.end())
    throw error(errc::version_not_found, "version " + std::to_string(version) + " does not exist");
  if (std::next(it) == versions_.end()) {
    throw error(errc::invalid_argument, "cannot delete the latest version " + std::to_string(version));
  }
  versions_.erase(it);
}

}  // namespace iavl
