// Writes whose allocations fail: this program replaces the global operator new so that the n-th
// allocation of the test's thread, counted only inside a tree's set() or remove(), throws
// std::bad_alloc. Whatever the allocation was (a node under AddressSanitizer, where the node pool
// is plain new; a deferred tree's log entry; a batch handed to the helper thread; a node read
// from the store), the tree must be as it was before the failed write, or lost (every use throws
// errc::io_error); never a tree whose contents or hashes are wrong, and nothing may leak (the
// AddressSanitizer build's leak check).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "iavl/detail/epoch.hpp"
#include "iavl/iavl.hpp"
#include "support/failing_store.hpp"
#include "support/keys.hpp"

namespace {
thread_local bool armed = false;          // count and fail only inside a tree's write
thread_local long allocations_left = -1;  // when >= 0: that many more succeed, then one fails
thread_local long failed_allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (armed && allocations_left >= 0 && allocations_left-- == 0) {
    ++failed_allocations;
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer): a failure gives null, and every
// form is freed by the one operator delete below, so all must come from malloc.
void* operator new(std::size_t n, const std::nothrow_t& /*tag*/) noexcept {
  try {
    return ::operator new(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*n*/) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept { std::free(p); }

namespace {

using model = std::map<std::string, std::string>;
using test_support::commit_keys;

struct write_op {
  std::string key;
  std::string value;  // empty: a removal
};

std::vector<write_op> random_ops(std::mt19937_64& rng, int count, int key_space) {
  std::vector<write_op> ops;
  for (int i = 0; i < count; ++i) {
    const std::string key = "k" + std::to_string(rng() % static_cast<std::uint64_t>(key_space));
    ops.push_back({key, rng() % 6 == 0 ? "" : "v" + std::to_string(i)});
  }
  return ops;
}

void apply(const write_op& op, iavl::tree& t) {
  if (op.value.empty()) {
    (void)t.remove(op.key);
  } else {
    (void)t.set(op.key, op.value);
  }
}

// Every entry of `v`, in a model to compare.
model contents(const iavl::tree_view& v) {
  model seen;
  for (auto [key, value] : v.range()) seen.emplace(key, value);
  return seen;
}

void apply(const write_op& op, model& m) {
  if (op.value.empty()) {
    m.erase(op.key);
  } else {
    m[op.key] = op.value;
  }
}

// For each n, a working tree on top of the committed keys takes 300 writes (its own nodes, and
// batches handed to the helper thread), then up to 200 more with the n-th allocation inside
// them failing. The failure may surface from the write, or be absorbed (a batch the helper would
// have hashed is left to the commit). Returns how many of the trees a failure reached.
int fail_each_allocation(iavl::versioned_tree& db, const model& committed, iavl::writes mode, int rounds) {
  int failed = 0;
  for (int n = 0; n < rounds; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n) + " fails");
    std::mt19937_64 rng(static_cast<std::uint64_t>(n));
    const int key_space = static_cast<int>(committed.size()) + 5000;
    const std::vector<write_op> warm = random_ops(rng, 300, key_space);
    const std::vector<write_op> writes = random_ops(rng, 200, key_space);
    iavl::tree t = db.branch(mode);
    model m = committed;
    for (const write_op& op : warm) {
      apply(op, t);
      apply(op, m);
    }
    const long failed_before = failed_allocations;
    allocations_left = n;
    for (const write_op& op : writes) {
      try {
        armed = true;
        apply(op, t);
        armed = false;
      } catch (const std::bad_alloc&) {
        armed = false;
        break;  // m holds the writes before this one
      }
      apply(op, m);
    }
    allocations_left = -1;
    if (failed_allocations == failed_before) continue;
    ++failed;
    try {
      EXPECT_EQ(t.size(), static_cast<std::int64_t>(m.size()));
      EXPECT_EQ(contents(t), m);  // as before the failed write, or after all of them
      t.verify();                 // and every hash the tree records is right
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();  // lost, and says so
    }
  }
  return failed;
}

TEST(AllocationFailures, AWriteInMemoryIsWholeOrTheTreeIsLost) {
  iavl::versioned_tree db;
  const model committed = commit_keys(db, 30000);
  EXPECT_GT(fail_each_allocation(db, committed, iavl::writes::immediate, 150), 0);
  EXPECT_GT(fail_each_allocation(db, committed, iavl::writes::deferred, 40), 0);
  db.last_commit().verify();
}

TEST(AllocationFailures, AWriteReadingFromTheStoreIsWholeOrTheTreeIsLost) {
  iavl::options o;
  o.store = iavl::open_memory_store();
  o.cache_bytes = 256 << 10;  // far less than the tree: writes read nodes from the store
  iavl::versioned_tree db(o);
  const model committed = commit_keys(db, 30000);
  EXPECT_GT(fail_each_allocation(db, committed, iavl::writes::immediate, 60), 0);
  EXPECT_GT(fail_each_allocation(db, committed, iavl::writes::deferred, 40), 0);
  db.last_commit().verify();
}

// A store that ends the injected allocation failures as a version reaches it: once written, a
// version is committed, and the tree it came from is consumed.
class disarming_store : public test_support::failing_store {
 public:
  void write(const iavl::write_batch& batch, bool sync) override {
    armed = false;
    failing_store::write(batch, sync);
  }
};

// A commit whose n-th allocation fails before its version reaches the store throws
// std::bad_alloc and leaves the working tree as it was, new nodes and all: committed again, the
// version is whole in the store.
TEST(AllocationFailures, ACommitThatRunsOutOfMemoryBeforeItsWriteCanBeRetried) {
  int failed = 0;
  constexpr long rounds = 40;
  for (long n = 0; n < rounds; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n) + " fails");
    auto store = std::make_shared<disarming_store>();
    iavl::options o;
    o.store = store;
    model m;
    {
      iavl::versioned_tree db(o);
      m = commit_keys(db, 3000);
      iavl::tree t = db.branch();
      for (int i = 0; i < 4000; i += 3) {
        const std::string k = "k" + std::to_string(i);
        t.set(k, "new");
        m[k] = "new";
      }
      const long failed_before = failed_allocations;
      allocations_left = n;
      armed = true;
      try {
        (void)db.commit(std::move(t));
      } catch (const std::bad_alloc&) {
      }
      armed = false;
      allocations_left = -1;
      if (failed_allocations != failed_before) {
        ++failed;
        EXPECT_EQ(db.latest_version(), 1);
        EXPECT_EQ(contents(t), m);
        (void)db.commit(std::move(t));
      }
    }
    iavl::versioned_tree reopened(o);
    ASSERT_EQ(reopened.latest_version(), 2);
    EXPECT_EQ(contents(reopened.last_commit()), m);
    reopened.last_commit().verify();
  }
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, rounds);  // the last commits got to their write: each allocation before it failed once
}

// References a retire list still held back when it went away (its versioned_tree gone, a working
// tree's pin still up) wait among the leftovers, and the end of a pin releases those no reader can
// see. When that runs out of memory part way, each must still be released once, later: none
// lost, none twice. Three leftovers, of which the middle one a later pin holds back; each node
// holds two references of the test's, so that its count shows how often the lists released it.
TEST(AllocationFailures, LeftoversWhoseReleaseRunsOutOfMemoryAreReleasedOnceLater) {
  using namespace iavl::detail;
  iavl::options o;
  o.store = iavl::open_memory_store();  // a store, so that working trees pin
  iavl::versioned_tree db(o);
  for (long n = 0; n < 6; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n) + " fails");
    std::vector<node*> nodes;
    auto retired = [&](retire_list& list) {
      node* leaf = make_leaf("k", "v", 1);
      retain(leaf);
      retain(leaf);
      list.retire(leaf, nullptr, 0);
      nodes.push_back(leaf);
    };
    auto first = std::make_unique<retire_list>();
    auto second = std::make_unique<retire_list>();
    std::optional<iavl::tree> early = db.branch();  // holds back all three
    retired(*second);
    retired(*first);
    std::optional<iavl::tree> late = db.branch();  // holds back the next one only
    retired(*first);
    first.reset();  // leftovers: first's two, then second's one
    second.reset();
    allocations_left = n;
    armed = true;
    early.reset();  // releases the first and the last leftover, or fails to
    armed = false;
    allocations_left = -1;
    late.reset();  // releases what is left
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      EXPECT_EQ(nodes[i]->refs.load(), 2U) << "leftover " << i;
      (void)drop_ref(nodes[i]);
      release(nodes[i], nullptr);
    }
  }
}

}  // namespace
