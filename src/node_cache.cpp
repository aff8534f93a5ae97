#include "iavl/detail/node_cache.hpp"

#include <algorithm>
#include <vector>

namespace iavl::detail {

namespace {

// Bytes of the nodes of a subtree that are in memory.
std::int64_t loaded_bytes(const node* n) {
  std::int64_t total = 0;
  std::vector<const node*> stack{n};
  while (!stack.empty()) {
    const node* x = stack.back();
    stack.pop_back();
    total += static_cast<std::int64_t>(footprint(x));
    if (!x->is_leaf()) {
      for (const auto& c : as_inner(x)->child) {
        if (const node* loaded = c.loaded()) stack.push_back(loaded);
      }
    }
  }
  return total;
}

}  // namespace

void node_cache::trim(node* root, const store_context& ctx, std::int64_t room) {
  retired_.collect();
  // What earlier sweeps unloaded counts until no reader (a working tree's pin) can see it, but
  // is as good as freed: counted again, it would be unloaded again at every commit.
  const auto budget = static_cast<std::int64_t>(budget_);
  const std::int64_t bytes =
      ctx.account().bytes.load(std::memory_order_relaxed) - retired_.waiting_bytes() + std::min(room, budget / 2);
  if (bytes <= budget || !root || root->is_leaf()) return;
  to_free_ = bytes - budget / 10 * 9;
  bytes_per_key_ = std::max<std::int64_t>(1, bytes / size_of(root));
  {
    const read_guard guard;
    // A region needs two visits, one that clears its marks and one that finds it cold: from the
    // hand on, three passes visit every region twice, unloading low parts only; a fourth
    // unloads cold parts of any height.
    for (int pass = 0; pass < 4 && to_free_ > 0; ++pass) {
      if (pass == 3) ++unload_height_;  // the lower levels alone no longer free enough
      const int limit = pass < 3 ? unload_height_ : root->height;
      if (sweep(as_inner(root), ctx, limit)) hand_.clear();  // reached the end: wrap around
    }
  }
  retired_.collect();  // outside the guard, which would hold back everything retired above
}

// Sweeps the children of `n` at or after the hand. Returns true when it reached the end of
// `n`'s range, false when it stopped because enough was freed.
bool node_cache::sweep(inner_node* n, const store_context& ctx, int height_limit) {
  for (int i = 0; i < 2; ++i) {
    if (i == 0 && n->key() <= hand_) continue;  // the left subtree lies before the hand
    node* c = n->child[i].loaded();
    if (!c) continue;
    bool cold = !c->take_touch();
    if (!c->is_leaf() && (!cold || c->height > height_limit || size_of(c) * bytes_per_key_ > to_free_)) {
      // Read since the last sweep, too tall to unload in this pass, or likely to hold more than
      // is left to free (as near the root, once a sweep has cleared every mark after a full
      // read): search it for colder or smaller parts. A cold one within the limit that held
      // less than its estimate (its lower parts unloaded before) then goes too.
      if (!sweep(as_inner(c), ctx, height_limit)) return false;
      cold = cold && c->height <= height_limit;
    }
    if (cold && c->nonce != 0) {  // in the store, so it can be loaded again
      const std::int64_t bytes = loaded_bytes(c);
      if (n->child[i].unload(c, c->key_in_store())) {
        retired_.retire(c, &ctx.account(), bytes);
        to_free_ -= bytes;
      }
    }
    if (to_free_ <= 0) {
      hand_ = n->key();
      return false;
    }
  }
  return true;
}

}  // namespace iavl::detail
