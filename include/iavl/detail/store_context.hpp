// What the snapshots and working trees of one versioned tree share: its node store (if any)
// with the memory account of the cache budget, and the thread that frees what they drop.
// Internal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "iavl/detail/epoch.hpp"
#include "iavl/detail/node.hpp"
#include "iavl/errors.hpp"
#include "iavl/node_store.hpp"

namespace iavl::detail {

/// Serializes a node about to be persisted (docs/format.md). Its children must be persisted.
void encode_node(const node* n, std::string& out);
/// Appends the checksum that ends a node record to the record's other bytes, `fields`.
void append_checksum(std::string& fields);
/// Decodes the node stored under `key`: committed, refs = 1, children as keys with the hash,
/// size and height the record gives them. Throws iavl::error(errc::corruption) naming the node
/// when `bytes` is not a valid node record.
[[nodiscard]] node* decode_node(node_key key, std::string_view bytes);

/// The store lacks a node a committed version refers to (no record under its key, or another
/// node's): corruption, unless that version itself is gone from the store (see reading()).
class node_not_in_store : public error {
 public:
  explicit node_not_in_store(const std::string& message) : error(errc::corruption, message) {}
};

/// A committed version as a reader knows it: its number (0 for none), root hash, and how many
/// rollbacks its versioned tree had made when the reader got it (see store_context::rolled_back).
struct version_id {
  std::int64_t version = 0;
  hash256 hash;
  std::size_t rollbacks = 0;
};

/// Called in a handler of node_not_in_store, raised by a read of `source`'s nodes through `ctx`:
/// throws version_not_found when `source` is no longer in the store as the reader knew it
/// (deleted, or rolled back and committed anew, while the reader held it); else rethrows.
[[noreturn]] void rethrow_for_version(const store_context* ctx, const version_id& source);

/// Runs `read`, a read of `source`'s nodes through `ctx`, turning a node gone with its version
/// into version_not_found (rethrow_for_version()).
template <typename Read>
decltype(auto) reading(const store_context* ctx, const version_id& source, Read&& read) {
  try {
    return read();
  } catch (const node_not_in_store&) {
    rethrow_for_version(ctx, source);
  }
}

/// A thread that runs a subclass's run() between start() and stop(). A subclass's destructor
/// calls stop(). run() returns when stopping_ is set (under mutex_, then wake_ is notified).
class worker {
 public:
  worker() = default;
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start();
  void stop();

 protected:
  ~worker() = default;
  virtual void run() = 0;

  /// In run(): waits under `lock` until `ready()`. For a while after the last work
  /// (keep_looking()) it looks again every poll_interval on its own, and wake_if_asleep() then
  /// wakes no one. On the VM we benchmark on, waking a sleeping thread costs the waker 30-40 us
  /// (an interprocessor interrupt through the hypervisor), and a block hands in work ten times.
  template <class Ready>
  void wait_for_work(std::unique_lock<std::mutex>& lock, Ready ready) {
    while (!ready() && polls_left_ > 0) {
      dozing_ = true;
      wake_.wait_for(lock, poll_interval);
      dozing_ = false;
      --polls_left_;
    }
    wake_.wait(lock, ready);
  }
  /// In run(), under mutex_, after doing work.
  void keep_looking() { polls_left_ = polls; }
  /// Under mutex_, after handing in work.
  void wake_if_asleep() {
    if (!dozing_) wake_.notify_one();
  }
  /// Under mutex_, by a caller about to wait for queued work: a dozing thread would see it only
  /// at its next look, and the caller waits anyway.
  void hurry() { wake_.notify_one(); }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool running_ = false;
  bool stopping_ = false;
  // run() has returned. Until then, work handed in while stopping is queued: run() drains the
  // queue, and work done by the caller meanwhile would run out of order with it.
  bool exited_ = false;

 private:
  static constexpr std::chrono::microseconds poll_interval{250};
  static constexpr int polls = 20;  // 5 ms: more than the time between a block's hand-overs

  std::thread thread_;
  bool dozing_ = false;  // in a timed wait of wait_for_work()
  int polls_left_ = 0;
};

/// A committed version's new nodes, children first, listed once: the writer encodes them while
/// the reclaimer counts what they borrow (a load's commit lists millions).
using committed_nodes = std::shared_ptr<const std::vector<node*>>;

/// Frees, on a thread of its own, the nodes that versions and working trees let go of, so that
/// the writer does not wait for the cache misses of freeing a block's worth of old nodes.
class reclaimer : public worker {
 public:
  ~reclaimer() { stop(); }

  /// Finishes what is queued; from then on, work is done by the caller.
  void stop();
  /// release(n, account) or, for a working tree's own node, discard(n, account): later on the
  /// reclaimer's thread while it runs, else now.
  void drop(node* n, bool own, memory_account* account);
  /// Turns the borrowed slots of newly committed nodes into counted ones (retaining what they
  /// point to), later on the reclaimer's thread while it runs, else now. Jobs run in order, so
  /// this happens before the base version the nodes borrowed from is dropped after it; `pin`,
  /// the committed tree's, keeps what the cache unloaded meanwhile until then.
  void count_borrowed(committed_nodes committed, epoch_pin pin);
  /// Runs `task` on the reclaimer's thread, in order with the other jobs (or now when it is
  /// not running).
  void post(std::function<void()> task);
  /// Waits until everything queued so far is done.
  void flush();

 private:
  struct job {
    node* n = nullptr;  // drop this node...
    bool own = false;
    memory_account* account = nullptr;
    committed_nodes committed;   // ...or count the borrowed slots of these...
    epoch_pin pin;               //    (holding this until done)...
    std::function<void()> task;  // ...or run this
  };
  static void perform(job& j);
  void enqueue(job j);
  void run() override;

  std::condition_variable idle_;
  std::vector<job> queue_;
  bool busy_ = false;  // the thread is freeing a batch it took off the queue
};

/// A second thread for work that can be split in two, such as hashing the two halves of a
/// block's new nodes at once, and for work handed over to be done meanwhile, such as hashing
/// the parts of a block's new nodes its next transactions are unlikely to change.
class helper_thread : public worker {
 public:
  ~helper_thread() { stop(); }
  void stop();

  /// Runs `task` on the helper, after what was posted before it (now, when the helper is not
  /// running, or when queueing it fails to allocate). `task` must not throw.
  void post(std::function<void()> task) noexcept;
  /// Waits until everything posted so far is done.
  void flush();

  /// Runs `a` on the helper and `b` on the caller; returns when both are done. The caller runs
  /// `a` too when the helper is not running, or has not started `a` by the time `b` is done (on
  /// a busy machine the helper may wait for a core). When `b` throws, both() rethrows once `a`
  /// is done or withdrawn. `a` must not throw.
  void both(const std::function<void()>& a, const std::function<void()>& b);

 private:
  void run() override;

  std::condition_variable done_;
  const std::function<void()>* task_ = nullptr;  // the half handed to the helper, until done
  bool taken_ = false;                           // the helper has started task_
  std::vector<std::function<void()>> posted_;    // post()ed, not started yet
  bool running_posted_ = false;                  // the helper is running some of them
};

class store_context {
 public:
  /// `store` may be null: a tree in memory shares only the reclaimer.
  explicit store_context(std::shared_ptr<node_store> store) : store_(std::move(store)) {}

  [[nodiscard]] bool has_store() const { return store_ != nullptr; }
  [[nodiscard]] node_store& store() const { return *store_; }
  [[nodiscard]] memory_account& account() const { return account_; }
  [[nodiscard]] reclaimer& reclaim() const { return reclaimer_; }
  [[nodiscard]] helper_thread& helper() const { return helper_; }

  /// rollback_to(`target`) is about to delete the versions above `target`: a version of the same
  /// number committed again may have the same hash and other node records under the same keys.
  void note_rollback(std::int64_t target);
  /// How many rollbacks were noted so far.
  [[nodiscard]] std::size_t rollbacks() const;
  /// Whether a rollback noted after the first `seen` deleted `version`.
  [[nodiscard]] bool rolled_back(std::int64_t version, std::size_t seen) const;

  /// Reads and decodes the node stored under `key` (one reference, not counted in account()),
  /// checking it against `expected`, the hash its parent or root record keeps of it, if given.
  /// Throws node_not_in_store when the record is missing or another node's, iavl::error:
  /// corruption when it is damaged, io_error.
  [[nodiscard]] node* read(node_key key, const hash256* expected = nullptr) const;
  /// read(), counted in account(): for nodes that join the tree in memory.
  [[nodiscard]] node* load(node_key key, const hash256* expected = nullptr) const {
    node* n = read(key, expected);
    account_.bytes.fetch_add(static_cast<std::int64_t>(footprint(n)), std::memory_order_relaxed);
    return n;
  }

 private:
  std::shared_ptr<node_store> store_;
  mutable std::mutex rollbacks_mutex_;
  std::vector<std::int64_t> rollback_targets_;  // in the order noted
  mutable memory_account account_;
  mutable reclaimer reclaimer_;
  mutable helper_thread helper_;
};

/// The context the tree algorithms take: the store's, or null for a tree without a store.
[[nodiscard]] inline const store_context* store_of(const store_context* ctx) {
  return ctx && ctx->has_store() ? ctx : nullptr;
}

[[nodiscard]] inline memory_account* account_of(const store_context* ctx) {
  return ctx && ctx->has_store() ? &ctx->account() : nullptr;
}

/// Counts, in place, the nodes that slots of newly committed nodes borrow.
inline void count_borrowed_slots(const std::vector<node*>& committed) {
  // The borrowed nodes are the siblings of a block's paths, which no walk read: each is a cache
  // miss. The committed nodes are fetched 16 ahead, their borrowed children 8 ahead.
  constexpr std::size_t ahead = 16;
  for (std::size_t i = 0; i < committed.size(); ++i) {
    if (i + ahead < committed.size()) __builtin_prefetch(committed[i + ahead]);
    if (i + ahead / 2 < committed.size() && !committed[i + ahead / 2]->is_leaf()) {
      for (const auto& c : as_inner(committed[i + ahead / 2])->child) {
        if (is_borrowed(c.bits())) __builtin_prefetch(pointer_of(c.bits()), 1);
      }
    }
    if (committed[i]->is_leaf()) continue;
    for (auto& c : as_inner(committed[i])->child) {
      const std::uintptr_t b = c.bits();
      if (is_borrowed(b)) {
        retain(pointer_of(b));
        c.set_bits(reinterpret_cast<std::uintptr_t>(pointer_of(b)));
      }
    }
  }
}

/// Gives up a hold on a node: a counted reference (`own` false) or a working tree's own subtree.
/// Freeing goes to the reclaimer when there is one, unless other references remain.
inline void drop_later(node* n, bool own, const store_context* ctx) {
  if (!own) {  // not the last reference: just count down, here
    for (std::uint32_t r = n->refs.load(std::memory_order_relaxed); r > 1;) {
      if (n->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel)) return;
    }
  }
  if (ctx) {
    ctx->reclaim().drop(n, own, account_of(ctx));
  } else if (own) {
    discard(n, nullptr);
  } else {
    release(n, nullptr);
  }
}

/// Loads child `i` of `parent` (whose slot holds the key `bits`) and publishes it in the slot.
[[nodiscard]] node* load_child(const inner_node* parent, int i, std::uintptr_t bits, const store_context* ctx);

/// Child `i` of `n`, loaded from the store when it is not in memory. `ctx` is null for trees
/// without a store, whose children are always in memory. With a store, the caller holds a
/// read_guard or an epoch_pin (detail/epoch.hpp), and the child is marked as read for the cache.
[[nodiscard]] inline node* child(const inner_node* n, int i, const store_context* ctx) {
  const std::uintptr_t b = n->child[i].bits();
  if (!is_key(b)) [[likely]] {
    node* c = pointer_of(b);
    if (ctx) c->touch();
    return c;
  }
  return load_child(n, i, b, ctx);
}

/// The node key a parent records for child `i`.
[[nodiscard]] inline node_key child_key(const inner_node* n, int i) {
  const std::uintptr_t b = n->child[i].bits();
  return is_key(b) ? unpack_key(b) : pointer_of(b)->key_in_store();
}

}  // namespace iavl::detail
