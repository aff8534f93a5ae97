// Epoch-based reclamation (see detail/epoch.hpp).
//
// A guard publishes the global epoch it saw in its thread's slot with a sequentially consistent
// exchange (a full barrier, like a store and a fence; ThreadSanitizer does not model fences), so
// that a writer that advanced the epoch after unlinking a node either sees the slot (and waits)
// or the reader sees the unlink. A reference retired at epoch e is released once every active
// slot is past e.
#include "iavl/detail/epoch.hpp"

#include <memory>
#include <mutex>
#include <new>
#include <set>

namespace iavl::detail {

namespace {

struct alignas(64) slot {
  std::atomic<std::uint64_t> active{0};  // the epoch its thread entered at; 0: not reading
  std::atomic<bool> taken{false};
};

std::atomic<std::uint64_t> global_epoch{1};
std::mutex slots_mutex;
std::vector<std::unique_ptr<slot>>& all_slots() {
  static auto* slots = new std::vector<std::unique_ptr<slot>>();  // never destroyed: threads outlive statics
  return *slots;
}

// The calling thread's slot, taken on first use and given back when the thread ends.
struct thread_slot {
  slot* s = nullptr;
  int depth = 0;
  thread_slot() {
    std::lock_guard lock(slots_mutex);
    for (auto& candidate : all_slots()) {
      bool expected = false;
      if (candidate->taken.compare_exchange_strong(expected, true)) {
        s = candidate.get();
        return;
      }
    }
    all_slots().push_back(std::make_unique<slot>());
    s = all_slots().back().get();
    s->taken = true;
  }
  ~thread_slot() {
    s->active.store(0, std::memory_order_release);
    s->taken.store(false, std::memory_order_release);
  }
};

thread_slot& this_thread() {
  thread_local thread_slot t;
  return t;
}

std::multiset<std::uint64_t>& all_pins() {  // guarded by slots_mutex
  static auto* pins = new std::multiset<std::uint64_t>();
  return *pins;
}

// References whose list's owner went away while pins still held them back (a working tree that
// outlives its versioned_tree): released once no reader or pin can see them, at the end of a pin
// or at any list's collect(). Their memory account went with the owner: none is debited.
struct leftover {
  node* n;
  std::uint64_t epoch;
};
std::mutex leftovers_mutex;
std::atomic<bool> any_leftovers{false};
std::vector<leftover>& all_leftovers() {  // guarded by leftovers_mutex
  static auto* list = new std::vector<leftover>();
  return *list;
}

std::uint64_t oldest_active_epoch();

// Hands release(e) each entry of `list` retired before `oldest` and keeps the others, in order.
// release must not throw: the list is half rewritten meanwhile.
template <typename Entry, typename Release>
void release_older(std::vector<Entry>& list, std::uint64_t oldest, Release&& release) {
  std::size_t kept = 0;
  for (const Entry& e : list) {
    if (e.epoch < oldest) {
      release(e);
    } else {
      list[kept++] = e;
    }
  }
  list.resize(kept);
}

void release_leftovers() {
  if (!any_leftovers.load(std::memory_order_acquire)) return;
  const std::uint64_t oldest = oldest_active_epoch();
  std::vector<node*> now;
  {
    std::lock_guard lock(leftovers_mutex);
    std::vector<leftover>& list = all_leftovers();
    now.reserve(list.size());  // when it throws, the list is untouched and waits for the next call
    release_older(list, oldest, [&](const leftover& l) { now.push_back(l.n); });
    any_leftovers.store(!list.empty(), std::memory_order_release);
  }
  for (node* n : now) release(n, nullptr);
}

std::uint64_t oldest_active_epoch() {
  std::uint64_t oldest = UINT64_MAX;
  std::lock_guard lock(slots_mutex);
  if (!all_pins().empty()) oldest = *all_pins().begin();
  for (const auto& s : all_slots()) {
    const std::uint64_t e = s->active.load(std::memory_order_seq_cst);
    if (e != 0 && e < oldest) oldest = e;
  }
  return oldest;
}

}  // namespace

read_guard::read_guard() {
  thread_slot& t = this_thread();
  if (t.depth++ == 0) t.s->active.exchange(global_epoch.load(std::memory_order_acquire), std::memory_order_seq_cst);
}

read_guard::~read_guard() {
  thread_slot& t = this_thread();
  if (--t.depth == 0) t.s->active.store(0, std::memory_order_release);
}

epoch_pin::epoch_pin(const store_context* ctx) {
  if (!ctx) return;
  std::lock_guard lock(slots_mutex);
  epoch_ = global_epoch.load(std::memory_order_seq_cst);
  all_pins().insert(epoch_);
}

epoch_pin::~epoch_pin() {
  if (epoch_ == 0) return;
  {
    std::lock_guard lock(slots_mutex);
    all_pins().erase(all_pins().find(epoch_));
  }
  try {
    release_leftovers();
  } catch (const std::bad_alloc&) {  // they wait for the next pin's end
  }
}

void retire_list::retire(node* n, memory_account* account, std::int64_t bytes) {
  // The unlink happened before this; readers that start after the increment cannot reach n.
  waiting_.push_back({n, account, bytes, global_epoch.fetch_add(1, std::memory_order_seq_cst)});
  waiting_bytes_ += bytes;
}

std::size_t retire_list::collect() {
  release_leftovers();
  if (waiting_.empty()) return 0;
  release_older(waiting_, oldest_active_epoch(), [&](const entry& e) {
    release(e.n, e.account);
    waiting_bytes_ -= e.bytes;
  });
  return waiting_.size();
}

retire_list::~retire_list() {
  // No reader of the owner's trees is left, but a working tree may be: its pin holds back what
  // it borrows. What it holds back waits among the leftovers.
  try {
    if (collect() == 0) return;
    std::lock_guard lock(leftovers_mutex);
    for (const entry& e : waiting_) all_leftovers().push_back({e.n, e.epoch});
    any_leftovers.store(true, std::memory_order_release);
  } catch (const std::bad_alloc&) {  // those references are lost to the pool, not freed early
  }
}

}  // namespace iavl::detail
