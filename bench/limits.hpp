// The machine's limits, measured in the same run as the trees: issue 6 set its targets against
// a lookup in a tree of 64-byte nodes scattered in memory (1.1 µs at 1M keys) and SHA-256 of a
// node-sized preimage (66 ns), and this VM's speed drifts by 2x and more from one hour to the
// next, so a target is only comparable with the limit of the same run.
#pragma once

#include <cstdint>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "iavl/detail/node_pool.hpp"
#include "support.hpp"

namespace bench {

/// A balanced binary search tree of the keys 0..leaves-1, without hashes or versions: 64-byte
/// nodes at random places in one mapping of huge pages (as the tree's node pool uses), so that
/// below the levels the caches hold, every level of a lookup is a cache miss.
class bare_tree {
 public:
  explicit bare_tree(std::uint64_t leaves) : leaves_(leaves) {
    const std::uint64_t slots = 2 * leaves - 1;
    const std::size_t chunk = iavl::detail::node_pool::huge_chunk_bytes;
    bytes_ = (slots * sizeof(node) + chunk - 1) / chunk * chunk;
    nodes_ = reinterpret_cast<node*>(iavl::detail::node_pool::map_huge(bytes_));
    // Slot order is a random permutation, so neighbours in the tree are not neighbours in memory.
    std::vector<std::uint64_t> order(slots);
    std::iota(order.begin(), order.end(), 0);
    rng r(scramble(leaves));
    for (std::uint64_t i = slots - 1; i > 0; --i) std::swap(order[i], order[r.below(i + 1)]);
    std::uint64_t next = 0;
    root_ = build(0, leaves, order, next);
  }
  bare_tree(const bare_tree&) = delete;
  bare_tree& operator=(const bare_tree&) = delete;
  ~bare_tree() { iavl::detail::node_pool::unmap_huge(reinterpret_cast<char*>(nodes_), bytes_); }

  [[nodiscard]] bool contains(std::uint64_t key) const {
    const node* n = root_;
    while (n->child[0] != nullptr) n = n->child[key >= n->key ? 1 : 0];
    return n->key == key;
  }

  [[nodiscard]] std::uint64_t leaves() const { return leaves_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }

 private:
  struct alignas(64) node {
    std::uint64_t key;     // a leaf's key; an inner node's least key on its right
    const node* child[2];  // both null in a leaf
  };

  // The subtree of keys [lo, hi), its nodes in the slots order[next...].
  const node* build(std::uint64_t lo, std::uint64_t hi, const std::vector<std::uint64_t>& order, std::uint64_t& next) {
    node* n = &nodes_[order[next++]];
    if (hi - lo == 1) {
      *n = {lo, {nullptr, nullptr}};
      return n;
    }
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const node* left = build(lo, mid, order, next);
    const node* right = build(mid, hi, order, next);
    *n = {mid, {left, right}};
    return n;
  }

  std::uint64_t leaves_;
  std::size_t bytes_ = 0;
  node* nodes_ = nullptr;
  const node* root_ = nullptr;
};

}  // namespace bench
