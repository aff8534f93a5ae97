// The node pool (see detail/node_pool.hpp).
#include "iavl/detail/node_pool.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace iavl::detail::node_pool {

namespace {
// Scratch arrays from this size up come from map_huge; under ASan none do, so that it sees every
// array as plain new and delete.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t mapped_scratch_bytes = SIZE_MAX;
#else
constexpr std::size_t mapped_scratch_bytes = std::size_t{1} << 20;
#endif

// What map_huge is asked for to hold `bytes` of a large scratch array.
std::size_t whole_chunks(std::size_t bytes) {
  return (bytes + huge_chunk_bytes - 1) / huge_chunk_bytes * huge_chunk_bytes;
}
}  // namespace

void* allocate_scratch(std::size_t bytes) {
  if (bytes >= mapped_scratch_bytes) return map_huge(whole_chunks(bytes));
  return ::operator new(bytes);
}

void deallocate_scratch(void* p, std::size_t bytes) noexcept {
  if (bytes >= mapped_scratch_bytes) {
    unmap_huge(static_cast<char*>(p), whole_chunks(bytes));
    return;
  }
  ::operator delete(p);
}

// On Linux mapped fresh from the system, then advised to be huge pages before any of it is
// touched: memory from malloc's heap may already be backed by small pages (what the load's large
// commits freed), which the advice does not replace; at 10M keys a third of the pool sat on small
// pages that way.
char* map_huge(std::size_t bytes) {
#if defined(__linux__)
  // A chunk more than asked for, then the unaligned ends given back.
  const std::size_t mapped_bytes = bytes + huge_chunk_bytes;
  void* mapped = ::mmap(nullptr, mapped_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  char* start = static_cast<char*>(mapped);
  const std::uintptr_t misalignment = reinterpret_cast<std::uintptr_t>(start) % huge_chunk_bytes;
  char* aligned = misalignment == 0 ? start : start + (huge_chunk_bytes - misalignment);
  if (aligned != start) ::munmap(start, static_cast<std::size_t>(aligned - start));
  ::munmap(aligned + bytes, static_cast<std::size_t>(start + mapped_bytes - (aligned + bytes)));
#if defined(MADV_HUGEPAGE)
  ::madvise(aligned, bytes, MADV_HUGEPAGE);  // advice only: failure leaves small pages
#endif
  return aligned;
#else
  auto* p = static_cast<char*>(std::aligned_alloc(huge_chunk_bytes, bytes));
  if (p == nullptr) throw std::bad_alloc();
  return p;
#endif
}

void unmap_huge(char* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(__linux__)
  ::munmap(p, bytes);
#else
  std::free(p);
#endif
}

#if defined(__SANITIZE_ADDRESS__)

void* allocate(std::size_t size) { return ::operator new(size); }
void deallocate(void* p, std::size_t) noexcept { ::operator delete(p); }
usage current_usage() { return {}; }

#else

namespace {

constexpr std::size_t granule = 16;
constexpr std::size_t max_pooled = 1024;  // larger objects (long values) come from operator new
constexpr std::size_t classes = max_pooled / granule;
constexpr std::size_t slab_size = std::size_t{64} << 10;
constexpr std::size_t batch = 256;  // objects moved between a thread and the depot at once
// How many allocations ahead a free object's memory is fetched: a copy-on-write path takes its
// nodes in quick succession, faster than a miss is served (see benchmarks/README, levers).
constexpr std::size_t prefetch_distance = 3;

// Free objects of one class, as an array of pointers: taking one reads the array, not the
// (cold) object, so allocating does not wait for memory that was freed long ago.
struct free_list {
  std::vector<void*> objects;

  [[nodiscard]] bool empty() const { return objects.empty(); }
  [[nodiscard]] std::size_t count() const { return objects.size(); }
  void push(void* p) { objects.push_back(p); }
  void* pop() {
    void* p = objects.back();
    objects.pop_back();
    // The memory of the allocations to come is likely cold: start fetching it for writing.
    if (objects.size() >= prefetch_distance) __builtin_prefetch(objects[objects.size() - prefetch_distance], 1);
    return p;
  }
  // Moves the last `n` objects (n <= count) to a list of their own.
  free_list split(std::size_t n) {
    free_list out;
    out.objects.assign(objects.end() - static_cast<std::ptrdiff_t>(n), objects.end());
    objects.resize(objects.size() - n);
    return out;
  }
};

struct thread_cache;

// Shared by all threads: full batches of free objects, and what the pool holds.
struct depot {
  std::mutex mutex;
  std::array<std::vector<free_list>, classes> batches;
  std::vector<const thread_cache*> threads;  // living threads' caches, for current_usage()
  std::int64_t exited_in_use = 0;            // what exited threads left in use (see thread_cache)
  std::int64_t slab_bytes = 0;
  std::int64_t stranded_bytes = 0;  // see usage
  char* chunk = nullptr;            // what is left of the newest chunk, from `chunk` to `chunk_end`
  char* chunk_end = nullptr;

  // A new slab, cut from a chunk of huge pages: a 1M-key tree spans 360 MB, and with 4 KiB pages
  // nearly every node a lookup visits would also miss the TLB. The caller holds `mutex`.
  char* take_slab() {
    if (chunk == chunk_end) {
      chunk = map_huge(huge_chunk_bytes);
      chunk_end = chunk + huge_chunk_bytes;
    }
    char* slab = chunk;
    chunk += slab_size;
    slab_bytes += static_cast<std::int64_t>(slab_size);
    return slab;
  }
};

depot& shared() {
  static auto* d = new depot();  // never destroyed: threads may free nodes during exit
  return *d;
}

struct thread_cache {
  std::array<free_list, classes> lists;
  // Bytes this thread allocated less those it freed (negative on a thread that frees others'
  // objects); only this thread writes it, so relaxed loads and stores suffice.
  std::atomic<std::int64_t> in_use{0};

  thread_cache() {
    depot& d = shared();
    std::lock_guard lock(d.mutex);
    d.threads.push_back(this);
  }
  ~thread_cache() {  // a thread's free objects outlive it, in the depot
    depot& d = shared();
    std::lock_guard lock(d.mutex);
    for (std::size_t c = 0; c < classes; ++c) {
      try {
        if (!lists[c].empty()) d.batches[c].push_back(std::move(lists[c]));
      } catch (const std::bad_alloc&) {  // those objects are lost to the pool, not to the process
      }
    }
    d.exited_in_use += in_use.load(std::memory_order_relaxed);
    std::erase(d.threads, this);
  }
  void count(std::int64_t bytes) {
    in_use.store(in_use.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  }

  void refill(std::size_t c) {
    const std::size_t object = (c + 1) * granule;
    depot& d = shared();
    {
      std::lock_guard lock(d.mutex);
      // Free objects of this class, or else of a class up to a quarter larger: a tree's leaves
      // and inner nodes are of two classes near each other, and their mix shifts (a load adds
      // leaves, the cache unloads whole subtrees), so that one class's surplus would otherwise
      // sit idle while the other takes new slabs. A larger object stays in this class from then
      // on, its extra bytes stranded (counted in usage).
      for (std::size_t from = c; from < classes && (from + 1) * 4 <= (c + 1) * 5; ++from) {
        if (!d.batches[from].empty()) {
          lists[c] = std::move(d.batches[from].back());
          d.batches[from].pop_back();
          d.stranded_bytes += static_cast<std::int64_t>((from - c) * granule * lists[c].count());
          return;
        }
      }
    }
    char* slab = nullptr;
    {
      std::lock_guard lock(d.mutex);
      slab = d.take_slab();
    }
    for (std::size_t off = 0; off + object <= slab_size; off += object) lists[c].push(slab + off);
  }  // NOLINT(clang-analyzer-cplusplus.NewDeleteLeaks): slabs live as long as the process, by design

  // Moves `batch` objects to the depot. When an allocation throws, nothing has moved: the depot's
  // list grows (as push_back would) before the split, and the split copies before it shrinks.
  void spill(std::size_t c) {
    depot& d = shared();
    std::lock_guard lock(d.mutex);
    std::vector<free_list>& batches = d.batches[c];
    if (batches.size() == batches.capacity()) batches.reserve(std::max<std::size_t>(16, 2 * batches.capacity()));
    batches.push_back(lists[c].split(batch));
  }
};

thread_cache& cache() {
  thread_local thread_cache t;
  return t;
}

std::size_t class_of(std::size_t size) { return (size + granule - 1) / granule - 1; }

}  // namespace

void* allocate(std::size_t size) {
  if (size > max_pooled) return ::operator new(size);
  const std::size_t c = class_of(size);
  thread_cache& t = cache();
  if (t.lists[c].empty()) t.refill(c);
  t.count(static_cast<std::int64_t>((c + 1) * granule));
  return t.lists[c].pop();
}

void deallocate(void* p, std::size_t size) noexcept {
  if (size > max_pooled) {
    ::operator delete(p);
    return;
  }
  const std::size_t c = class_of(size);
  thread_cache& t = cache();
  t.count(-static_cast<std::int64_t>((c + 1) * granule));
  // A free may need memory (the lists grow): when that fails, the object is lost to the pool, or
  // the surplus stays on this thread's list, rather than the process ending here.
  try {
    t.lists[c].push(p);
    if (t.lists[c].count() >= 2 * batch) t.spill(c);
  } catch (const std::bad_alloc&) {  // NOLINT(bugprone-empty-catch)
  }
}

usage current_usage() {
  depot& d = shared();
  std::lock_guard lock(d.mutex);
  usage u{d.exited_in_use, d.slab_bytes, d.stranded_bytes};
  for (const thread_cache* t : d.threads) u.in_use_bytes += t->in_use.load(std::memory_order_relaxed);
  return u;
}

#endif

}  // namespace iavl::detail::node_pool
