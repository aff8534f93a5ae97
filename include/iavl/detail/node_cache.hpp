// The memory budget of a store-backed tree: evicts cold subtrees of the latest version. Internal.
//
// Nodes note reads in their `accessed` bit. trim() sweeps the latest tree in key order from
// where it last stopped (a CLOCK over subtrees): a loaded child read since the last sweep loses
// its mark and is searched for colder parts below; one that was not is unloaded whole (its
// parent's slot goes back to its node key) and its reference retired until no reader can see
// it, unless it likely holds more than is left to free, when it too is searched for smaller
// parts. Persisted nodes only: the latest version has no others.
//
// Cold subtrees are unloaded from the bottom up: the first three passes unload only those of at
// most `unload_height_` (searching taller cold ones for such parts), so that the upper levels,
// which every walk crosses, stay; only when that cannot free enough does a fourth pass unload
// any cold subtree, and the limit rises by one for the trims after it.
#pragma once

#include <cstddef>
#include <string>

#include "iavl/detail/epoch.hpp"
#include "iavl/detail/store_context.hpp"

namespace iavl::detail {

class node_cache {
 public:
  explicit node_cache(std::size_t budget_bytes) : budget_(budget_bytes) {}

  /// When the account and `room` together are over budget, unloads cold subtrees of `root`
  /// until the estimate of what they hold brings them to 90% of the budget. `room` is what the
  /// next version is expected to add (the last one's new nodes, at most half the budget): a
  /// large commit's nodes would otherwise come on top of a full cache, and the node pool keeps
  /// the memory of that peak. For the one thread that commits.
  void trim(node* root, const store_context& ctx, std::int64_t room);

 private:
  bool sweep(inner_node* n, const store_context& ctx, int height_limit);

  std::size_t budget_;
  std::string hand_;  // the sweep resumes at this key
  std::int64_t to_free_ = 0;
  std::int64_t bytes_per_key_ = 1;  // in memory, on average over the latest tree
  int unload_height_ = 1;           // see above
  retire_list retired_;
};

}  // namespace iavl::detail
