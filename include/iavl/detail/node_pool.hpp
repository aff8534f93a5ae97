// Memory for nodes. Internal.
//
// Trees allocate and free nodes at a high rate, in a few sizes (leaves of one key and value
// length, inner nodes of one key length). The pool keeps freed memory of each size class in a
// per-thread free list, trades surplus lists with other threads through a shared depot (where a
// class short of objects also takes those of a class up to a quarter larger), and
// carves new nodes out of 64 KiB slabs: no allocator headers, no searching of malloc's bins.
// Slabs come from 2 MiB chunks, mapped from the system and asked to be backed with huge pages
// (Linux's madvise) before first use, so that a walk through a large tree does not also miss
// the TLB at every node.
// Memory goes back to the pool, never to the system. Under AddressSanitizer it is plain new and
// delete, so that the sanitizer sees every node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace iavl::detail::node_pool {

/// Memory for an object of `size` bytes, 16-byte aligned. Any thread.
[[nodiscard]] void* allocate(std::size_t size);
/// Gives back what allocate(size) returned, with the same size. Any thread.
void deallocate(void* p, std::size_t size) noexcept;

/// What the pool holds (objects above 1 KiB, from operator new, are not counted).
struct usage {
  std::int64_t in_use_bytes = 0;  ///< allocated and not yet given back, in size-class bytes (of the class asked for)
  std::int64_t slab_bytes = 0;    ///< taken from the system: in use, or free for reuse
  /// The bytes by which objects that moved to a smaller class exceed it: lost to both classes,
  /// so a figure of memory in use adds them.
  std::int64_t stranded_bytes = 0;
};
/// The pool's usage now (all threads; a snapshot, while others allocate). Zero under ASan,
/// where the pool is plain new and delete.
[[nodiscard]] usage current_usage();

/// The size, and alignment, of a chunk of huge pages.
inline constexpr std::size_t huge_chunk_bytes = std::size_t{2} << 20;
/// `bytes` (a multiple of huge_chunk_bytes), aligned to huge_chunk_bytes, asked to be backed by
/// huge pages (on Linux): fewer TLB misses, and far fewer page faults, each of which took 11 µs
/// on the benchmark VM (a fresh MiB: 2.9 ms on small pages, 0.08-1.6 ms on huge ones). Any thread.
[[nodiscard]] char* map_huge(std::size_t bytes);
/// Gives back what map_huge(bytes) returned. Any thread.
void unmap_huge(char* p, std::size_t bytes) noexcept;

/// Memory for a scratch array of `bytes` (a walk's list of nodes, a version's records), from
/// 1 MiB up mapped from the system in whole huge-page chunks (map_huge): freeing it gives it
/// back, where malloc keeps large freed blocks in its heap, and a load's commits, which list
/// millions of nodes, take a page fault every 2 MiB instead of every 4 KiB.
[[nodiscard]] void* allocate_scratch(std::size_t bytes);
void deallocate_scratch(void* p, std::size_t bytes) noexcept;

template <class T>
struct scratch_allocator {
  using value_type = T;
  scratch_allocator() = default;
  template <class U>
  explicit scratch_allocator(const scratch_allocator<U>& /*other*/) noexcept {}
  [[nodiscard]] T* allocate(std::size_t n) { return static_cast<T*>(allocate_scratch(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { deallocate_scratch(p, n * sizeof(T)); }
  friend bool operator==(const scratch_allocator& /*a*/, const scratch_allocator& /*b*/) { return true; }
};

template <class T>
using scratch_vector = std::vector<T, scratch_allocator<T>>;

}  // namespace iavl::detail::node_pool
