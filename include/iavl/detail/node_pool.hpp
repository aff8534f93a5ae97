// Memory for nodes. Internal.
//
// Trees allocate and free nodes at a high rate, in a few sizes (leaves of one key and value
// length, inner nodes of one key length). The pool keeps freed memory of each size class in a
// per-thread free list, trades surplus lists with other threads through a shared depot, and
// carves new nodes out of 64 KiB slabs: no allocator headers, no searching of malloc's bins.
// Memory goes back to the pool, never to the system. Under AddressSanitizer it is plain new and
// delete, so that the sanitizer sees every node.
#pragma once

#include <cstddef>

namespace iavl::detail::node_pool {

/// Memory for an object of `size` bytes, 16-byte aligned. Any thread.
[[nodiscard]] void* allocate(std::size_t size);
/// Gives back what allocate(size) returned, with the same size. Any thread.
void deallocate(void* p, std::size_t size) noexcept;

}  // namespace iavl::detail::node_pool
