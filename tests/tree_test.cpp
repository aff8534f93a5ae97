// The tree against std::map: random operations over many versions, with verify() along the way
// and old snapshots re-checked after later versions were built; plus the shape cases of
// cosmos/iavl's TestUnit, iteration, positions and limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../bench/support.hpp"  // anon_rss_bytes
#include "iavl/detail/node.hpp"
#include "iavl/detail/node_pool.hpp"
#include "iavl/iavl.hpp"

namespace {

using model = std::map<std::string, std::string>;

std::string random_bytes(std::mt19937_64& rng, std::size_t min_len, std::size_t max_len) {
  std::string s(std::uniform_int_distribution<std::size_t>(min_len, max_len)(rng), '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Every read operation of `t` agrees with `m`.
void expect_same(const iavl::tree_view& t, const model& m) {
  ASSERT_EQ(t.size(), static_cast<std::int64_t>(m.size()));
  std::int64_t index = 0;
  auto it = m.begin();
  for (auto [key, value] : t.range()) {
    ASSERT_NE(it, m.end());
    ASSERT_EQ(key, it->first);
    ASSERT_EQ(value, it->second);
    ++it;
    ++index;
  }
  ASSERT_EQ(it, m.end());
  auto rit = m.rbegin();
  for (auto [key, value] : t.range(std::nullopt, std::nullopt, iavl::order::descending)) {
    ASSERT_NE(rit, m.rend());
    ASSERT_EQ(key, rit->first);
    ++rit;
  }
  ASSERT_EQ(rit, m.rend());
}

class Differential : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(Differential, RandomOperationsMatchStdMapAcrossVersions) {
  std::mt19937_64 rng(GetParam());
  iavl::versioned_tree db;
  model m;
  std::vector<std::pair<iavl::snapshot, model>> kept;
  std::vector<std::string> keys;  // a pool so that updates and removes hit existing keys
  int ops = 0;
  for (int version = 1; version <= 40; ++version) {
    iavl::tree work = db.branch();
    const int n = std::uniform_int_distribution<int>(0, 12000)(rng);
    for (int i = 0; i < n; ++i, ++ops) {
      const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      std::string key = (!keys.empty() && kind < 6) ? keys[rng() % keys.size()] : random_bytes(rng, 0, 6);
      if (kind < 7) {
        std::string value = random_bytes(rng, 0, 20);
        const bool existed = m.count(key) > 0;
        const auto r = work.set(key, value);
        ASSERT_EQ(r, existed ? iavl::set_result::updated : iavl::set_result::inserted);
        m[key] = value;
        if (!existed) keys.push_back(key);
      } else {
        const bool existed = m.erase(key) > 0;
        ASSERT_EQ(work.remove(key), existed);
      }
      if (i % 997 == 0) {
        work.verify();
        const auto probe = random_bytes(rng, 0, 6);
        const auto it = m.find(probe);
        ASSERT_EQ(work.get(probe), it == m.end() ? std::nullopt : std::optional<std::string>(it->second));
      }
    }
    work.verify();
    expect_same(work, m);
    const iavl::snapshot s = db.commit(std::move(work));
    s.verify();
    kept.emplace_back(s, m);
  }
  EXPECT_GT(ops, 100000);
  for (const auto& [s, snapshot_model] : kept) {
    SCOPED_TRACE("version " + std::to_string(s.version()));
    s.verify();
    expect_same(s, snapshot_model);
    EXPECT_EQ(db.at(s.version()).hash(), s.hash());
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, Differential, ::testing::Values(1, 2, 3, 42));

// Small-alphabet keys make removals cascade through rotations and split-key changes.
TEST(Tree, DenseInsertRemoveCyclesStayValid) {
  std::mt19937_64 rng(7);
  iavl::versioned_tree db;
  model m;
  for (int version = 0; version < 200; ++version) {
    iavl::tree work = db.branch();
    for (int i = 0; i < 300; ++i) {
      const std::string key(1, static_cast<char>(rng() % 200));
      if (rng() % 2) {
        work.set(key, "v");
        m[key] = "v";
      } else {
        ASSERT_EQ(work.remove(key), m.erase(key) > 0);
      }
    }
    work.verify();
    expect_same(work, m);
    (void)db.commit(std::move(work));
  }
}

// ---- the shape cases of cosmos/iavl's basic_test.go TestUnit ------------------------------------

using iavl::detail::node;

node* leaf(int k) { return iavl::detail::make_leaf(std::string(1, static_cast<char>(k)), "", 1); }
node* inner(node* l, node* r) {
  const node* min_right = r;
  while (!min_right->is_leaf()) min_right = iavl::detail::as_inner(min_right)->child[0].loaded();
  auto* n = iavl::detail::make_inner(iavl::detail::as_leaf(min_right)->key(), 1);
  iavl::detail::set_slot(n, 0, iavl::detail::own_slot(l));
  iavl::detail::set_slot(n, 1, iavl::detail::own_slot(r));
  iavl::detail::update_height(n);
  return n;
}

std::string shape(const node* n) {
  if (n->is_leaf()) return std::to_string(static_cast<int>(iavl::detail::as_leaf(n)->key()[0]));
  const auto* in = iavl::detail::as_inner(n);
  return "(" + shape(in->child[0].loaded()) + " " + shape(in->child[1].loaded()) + ")";
}

// Commits a tree of the given shape as version 1 (hashing it, as any commit does).
struct shaped {
  explicit shaped(node* root) {
    struct access : iavl::tree {
      access(iavl::tree empty, node* r) : iavl::tree(std::move(empty)) {
        root_bits_ = reinterpret_cast<std::uintptr_t>(r);
        root_ = r;
        root_hash_known_ = false;
      }
    };
    access built(db.branch(), root);
    snap = db.commit(std::move(built));
  }
  iavl::tree branch() const { return snap.branch(); }
  iavl::versioned_tree db;
  iavl::snapshot snap;
};

struct root_of : iavl::tree_view {
  explicit root_of(const iavl::tree_view& t) : iavl::tree_view(t) {}
  std::string str() const { return shape(root_); }
};

std::string after_set(node* root, int key) {
  const shaped base(root);
  iavl::tree t = base.branch();
  t.set(std::string(1, static_cast<char>(key)), "");
  t.verify();
  return root_of(t).str();
}

std::string after_remove(node* root, int key) {
  const shaped base(root);
  iavl::tree t = base.branch();
  EXPECT_TRUE(t.remove(std::string(1, static_cast<char>(key))));
  t.verify();
  return root_of(t).str();
}

TEST(Tree, CosmosUnitShapesOnSet) {
  EXPECT_EQ(after_set(inner(leaf(4), leaf(20)), 8), "((4 8) 20)");
  EXPECT_EQ(after_set(inner(leaf(4), leaf(20)), 25), "(4 (20 25))");
  EXPECT_EQ(after_set(inner(leaf(4), inner(leaf(20), leaf(25))), 8), "((4 8) (20 25))");
  EXPECT_EQ(after_set(inner(leaf(4), inner(leaf(20), leaf(25))), 30), "((4 20) (25 30))");
  EXPECT_EQ(after_set(inner(inner(leaf(1), leaf(2)), leaf(6)), 4), "((1 2) (4 6))");
  EXPECT_EQ(after_set(inner(inner(leaf(1), leaf(2)), leaf(6)), 8), "((1 2) (6 8))");
  auto t4 = [] { return inner(inner(leaf(1), leaf(2)), inner(inner(leaf(5), leaf(6)), inner(leaf(7), leaf(9)))); };
  EXPECT_EQ(after_set(t4(), 8), "(((1 2) (5 6)) ((7 8) 9))");
  EXPECT_EQ(after_set(t4(), 10), "(((1 2) (5 6)) (7 (9 10)))");
}

TEST(Tree, CosmosUnitShapesOnRemove) {
  EXPECT_EQ(after_remove(inner(inner(leaf(1), leaf(2)), leaf(3)), 2), "(1 3)");
  EXPECT_EQ(after_remove(inner(inner(leaf(1), leaf(2)), leaf(3)), 3), "(1 2)");
  auto t11 = [] { return inner(inner(inner(leaf(1), leaf(2)), leaf(3)), inner(leaf(4), leaf(5))); };
  EXPECT_EQ(after_remove(t11(), 4), "((1 2) (3 5))");
  EXPECT_EQ(after_remove(t11(), 3), "((1 2) (4 5))");
}

// ---- API behaviour ------------------------------------------------------------------------------

iavl::tree numbered(int n) {
  iavl::tree t;
  for (int i = 0; i < n; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "k%04d", i);
    t.set(key, std::to_string(i));
  }
  return t;
}

std::vector<std::string> keys_of(const iavl::entry_range& r) {
  std::vector<std::string> out;
  for (auto e : r) out.emplace_back(e.key);
  return out;
}

TEST(Tree, RangesAreHalfOpenInBothOrders) {
  const iavl::tree t = numbered(10);
  using v = std::vector<std::string>;
  EXPECT_EQ(keys_of(t.range("k0003", "k0006")), (v{"k0003", "k0004", "k0005"}));
  EXPECT_EQ(keys_of(t.range("k0003", "k0006", iavl::order::descending)), (v{"k0005", "k0004", "k0003"}));
  EXPECT_EQ(keys_of(t.range("k00035", "k0005")), (v{"k0004"}));  // bounds between keys
  EXPECT_EQ(keys_of(t.range("k0008")), (v{"k0008", "k0009"}));
  EXPECT_EQ(keys_of(t.range(std::nullopt, "k0002", iavl::order::descending)), (v{"k0001", "k0000"}));
  EXPECT_EQ(keys_of(t.range("k0005", "k0005")), v{});
  EXPECT_EQ(keys_of(t.range("k0007", "k0003")), v{});
  EXPECT_EQ(keys_of(t.range("z")), v{});
  EXPECT_EQ(keys_of(t.range(std::nullopt, "a", iavl::order::descending)), v{});
  EXPECT_EQ(keys_of(iavl::tree().range()), v{});
}

// A range keeps its bounds: bounds built in the call (in a range-for loop, or for a range kept
// in a variable) are destroyed before its iteration starts.
TEST(Tree, RangesKeepCopiesOfTheirBounds) {
  iavl::tree t;
  const std::string prefix = "a prefix long enough for the heap/";
  for (int i = 0; i < 10; ++i) t.set(prefix + std::to_string(i), "v");
  const iavl::entry_range r = t.range(prefix + "3", prefix + "6");
  // Likely where the bounds were: if the range still pointed there, it would read these.
  const std::string reuse_1(prefix.size() + 1, 'z'), reuse_2(prefix.size() + 1, '\0');
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{prefix + "3", prefix + "4", prefix + "5"}));
  std::vector<std::string> seen;
  for (auto [key, value] : t.range(prefix + "7", prefix + "9")) seen.emplace_back(key);
  EXPECT_EQ(seen, (std::vector<std::string>{prefix + "7", prefix + "8"}));
}

TEST(Tree, PositionsByIndexAndKey) {
  const iavl::tree t = numbered(100);
  for (int i = 0; i < 100; ++i) {
    const auto e = t.at(i);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->value, std::to_string(i));
    EXPECT_EQ(t.index_of(e->key), i);
  }
  EXPECT_FALSE(t.at(100));
  EXPECT_FALSE(t.at(-1));
  EXPECT_FALSE(t.index_of("k00005"));
  EXPECT_FALSE(iavl::tree().at(0));
}

// Keys of 0-16 bytes over bytes on both sides of 0x80, half of them made from an earlier key by
// extending it, cutting it short or changing a byte past the eighth: many pairs share their first
// 8 bytes or are prefixes of one another, where comparing whole 8-byte words could go wrong.
std::vector<std::string> keys_with_shared_prefixes(std::mt19937_64& rng, int count) {
  static constexpr unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
  auto any_byte = [&] { return static_cast<char>(bytes[rng() % std::size(bytes)]); };
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i) {
    std::string k;
    if (!keys.empty() && rng() % 2 == 0) {
      k = keys[rng() % keys.size()];
      switch (rng() % 3) {
        case 0:
          for (std::uint64_t n = 1 + rng() % 4; n > 0; --n) k += any_byte();
          break;
        case 1: k.resize(rng() % (k.size() + 1)); break;
        default:
          if (k.size() > 8) k[8 + rng() % (k.size() - 8)] = any_byte();
      }
      k.resize(std::min<std::size_t>(k.size(), 16));
    } else {
      k.resize(std::uniform_int_distribution<std::size_t>(0, 12)(rng));
      for (auto& c : k) c = any_byte();
    }
    keys.push_back(std::move(k));
  }
  return keys;
}

TEST(KeyOrder, WordCompareAgreesWithBytewiseOrder) {
  std::mt19937_64 rng(7);
  const auto keys = keys_with_shared_prefixes(rng, 400);
  int word_decided = 0;  // pairs of 8+ bytes that differ in their first 8: the fast path
  int same_8_bytes = 0;  // distinct pairs of 8+ bytes whose first 8 are equal: the fallback
  for (const auto& a : keys) {
    for (const auto& b : keys) {
      ASSERT_EQ(iavl::detail::key_less(a, b), std::string_view(a) < std::string_view(b))
          << testing::PrintToString(a) << " " << testing::PrintToString(b);
      if (a.size() >= 8 && b.size() >= 8) {
        const bool first_8_equal = a.compare(0, 8, b, 0, 8) == 0;
        word_decided += !first_8_equal;
        same_8_bytes += first_8_equal && a != b;
      }
    }
  }
  EXPECT_GT(word_decided, 1000);
  EXPECT_GT(same_8_bytes, 100);
}

TEST(KeyOrder, TreeOfKeysSharingPrefixesIsInBytewiseOrder) {
  std::mt19937_64 rng(11);
  iavl::tree t;
  model m;
  for (const auto& k : keys_with_shared_prefixes(rng, 5000)) {
    t.set(k, k);
    m[k] = k;
  }
  for (const auto& k : keys_with_shared_prefixes(rng, 1000)) {
    EXPECT_EQ(t.remove(k), m.erase(k) > 0);
  }
  expect_same(t, m);
  for (const auto& [k, v] : m) ASSERT_EQ(t.get(k), std::optional<std::string>(v));
  t.verify();
}

TEST(Tree, EmptyKeyAndValueAreOrdinaryEntries) {
  iavl::tree t;
  EXPECT_EQ(t.set("", ""), iavl::set_result::inserted);
  EXPECT_EQ(t.set("a", ""), iavl::set_result::inserted);
  EXPECT_EQ(t.get(""), std::optional<std::string>(""));
  EXPECT_EQ(t.index_of(""), 0);
  EXPECT_EQ(t.set("", "x"), iavl::set_result::updated);
  EXPECT_TRUE(t.remove(""));
  EXPECT_FALSE(t.has(""));
  t.verify();
}

TEST(Tree, OversizedKeyOrValueIsRejectedAndChangesNothing) {
  iavl::tree t = numbered(5);
  const iavl::hash256 before = t.working_hash();
  try {
    t.set(std::string(iavl::max_key_size + 1, 'k'), "v");
    FAIL() << "expected an error";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("key of 65536 bytes"), std::string::npos) << e.what();
  }
  try {
    t.set("k", std::string(iavl::max_value_size + 1, 'v'));
    FAIL() << "expected an error";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::invalid_argument);
  }
  EXPECT_EQ(t.working_hash(), before);
  EXPECT_EQ(t.size(), 5);
  EXPECT_NO_THROW(t.set(std::string(iavl::max_key_size, 'k'), "v"));  // the limit itself is allowed
  EXPECT_EQ(t.get(std::string(iavl::max_key_size, 'k')), "v");
}

TEST(Tree, RemovingAnAbsentKeyChangesNothing) {
  iavl::versioned_tree db;
  iavl::tree t = db.branch();
  t.set("a", "1");
  const auto s = db.commit(std::move(t));
  iavl::tree u = db.branch();
  EXPECT_FALSE(u.remove("b"));
  EXPECT_EQ(u.working_hash(), s.hash());
}

TEST(Tree, WorkingHashIsLazyAndStable) {
  iavl::tree t = numbered(50);
  const iavl::hash256 h1 = t.working_hash();
  EXPECT_EQ(t.working_hash(), h1);
  t.set("k0010", "changed");
  const iavl::hash256 h2 = t.working_hash();
  EXPECT_NE(h2, h1);
  t.set("k0010", "10");  // same value as before, but a new leaf version: same version 1 here
  EXPECT_EQ(t.working_hash(), h1);
  t.verify();
}

}  // namespace

namespace {

// A deferred tree keeps writes in a buffer until something needs the tree's shape; the result
// must be the tree (and hash) of applying the same writes immediately, in the same order.
TEST(Tree, DeferredWritesGiveTheSameTreesAsImmediateOnes) {
  std::mt19937_64 rng(99);
  iavl::versioned_tree db, twin;
  model m;
  for (int version = 1; version <= 30; ++version) {
    iavl::tree d = db.branch(iavl::writes::deferred);
    iavl::tree i = twin.branch();
    const int ops = static_cast<int>(rng() % 400);
    for (int op = 0; op < ops; ++op) {
      const std::string key(1, static_cast<char>(rng() % 60));  // few keys: many repeats
      if (rng() % 2 == 0) {
        ASSERT_EQ(d.get(key), i.get(key));  // read-modify-write
      }
      if (rng() % 3 == 0) {
        ASSERT_EQ(d.remove(key), i.remove(key));
        m.erase(key);
      } else {
        const std::string value = std::to_string(rng() % 5);
        ASSERT_EQ(d.set(key, value), i.set(key, value));
        m[key] = value;
      }
      ASSERT_EQ(d.size(), i.size());  // exact without applying the buffer
      const std::string probe(1, static_cast<char>(rng() % 60));
      ASSERT_EQ(d.get(probe), i.get(probe));
      ASSERT_EQ(d.has(probe), i.has(probe));
      if (op % 97 == 0) {  // a read that needs the shape applies the buffer midway
        ASSERT_EQ(d.index_of(probe), i.index_of(probe));
      }
    }
    ASSERT_EQ(d.working_hash(), i.working_hash());
    expect_same(d, m);
    d.verify();
    EXPECT_EQ(db.commit(std::move(d)).hash(), twin.commit(std::move(i)).hash());
  }
}

// A deferred tree's set reuses what a read of the same key just found (no second walk); once
// the buffer is applied to the nodes, what the read found no longer holds.
TEST(Tree, ADeferredSetAfterAReadOfItsKeyKnowsWhetherItInserts) {
  iavl::versioned_tree db;
  iavl::tree t = db.branch();
  t.set("a", "1");
  (void)db.commit(std::move(t));
  iavl::tree check = db.branch(iavl::writes::deferred);
  EXPECT_EQ(check.get("a"), "1");
  EXPECT_EQ(check.set("a", "2"), iavl::set_result::updated);
  EXPECT_EQ(check.get("b"), std::nullopt);
  EXPECT_EQ(check.set("b", "3"), iavl::set_result::inserted);
  EXPECT_EQ(check.size(), 2);
  EXPECT_EQ(check.get("c"), std::nullopt);
  EXPECT_EQ(check.set("c", "4"), iavl::set_result::inserted);
  EXPECT_EQ(check.index_of("c"), 2);  // applies the buffer: "c" is in the nodes now
  EXPECT_EQ(check.set("c", "5"), iavl::set_result::updated);
  EXPECT_EQ(check.size(), 3);
  EXPECT_EQ(check.get("a"), "2");
  EXPECT_TRUE(check.remove("a"));
  EXPECT_EQ(check.get("a"), std::nullopt);
  EXPECT_EQ(check.set("a", "6"), iavl::set_result::inserted);
  EXPECT_EQ(check.size(), 3);
}

TEST(Tree, ADiscardedDeferredTreeLeavesItsBaseAsItWas) {
  iavl::versioned_tree db;
  iavl::tree t = db.branch();
  t.set("a", "1");
  const iavl::snapshot base = db.commit(std::move(t));
  {
    iavl::tree check = db.branch(iavl::writes::deferred);
    check.set("a", "2");
    check.set("b", "3");
    EXPECT_EQ(check.get("a"), "2");
    EXPECT_EQ(check.size(), 2);
  }
  EXPECT_EQ(db.last_commit().get("a"), "1");
  EXPECT_EQ(db.last_commit().hash(), base.hash());
  db.last_commit().verify();
}

}  // namespace

// The pool's usage figures are what the benchmark's memory per key rests on.
TEST(NodePool, CountsBytesInUseAcrossThreads) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan the pool is plain new and delete";
#else
  namespace pool = iavl::detail::node_pool;
  const pool::usage before = pool::current_usage();
  std::vector<void*> objects;
  for (int i = 0; i < 1000; ++i) objects.push_back(pool::allocate(100));  // the 112-byte class
  const pool::usage during = pool::current_usage();
  EXPECT_EQ(during.in_use_bytes - before.in_use_bytes, 1000 * 112);
  EXPECT_GE(during.slab_bytes - during.in_use_bytes, 0);
  std::thread([&] {  // freed by another thread, as the reclaimer does
    for (void* p : objects) pool::deallocate(p, 100);
  })
      .join();
  const pool::usage after = pool::current_usage();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.slab_bytes, during.slab_bytes);  // kept for reuse
#endif
}

// The benchmark measures memory after trim_cache(): without a store it must still wait until the
// background thread has freed the versions let go of, or the figure counts them too.
TEST(NodePool, TrimCacheWaitsUntilDroppedVersionsAreFreed) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan the pool is plain new and delete";
#else
  namespace pool = iavl::detail::node_pool;
  const std::int64_t base = pool::current_usage().in_use_bytes;
  iavl::options o;
  o.keep.keep_recent = 1;
  iavl::versioned_tree db(o);
  const auto write_all = [&](char value) {  // every key, so every node of the version is new
    iavl::tree t = db.branch();
    for (int i = 0; i < 60000; ++i) t.set("key" + std::to_string(i), std::string(20, value));
    (void)db.commit(std::move(t));
    db.trim_cache();
    return pool::current_usage().in_use_bytes - base;
  };
  const std::int64_t one_version = write_all('a');
  EXPECT_GT(one_version, 60000 * 2 * 48);
  EXPECT_EQ(write_all('b'), one_version);  // the same shape; the first version's nodes are gone
  EXPECT_EQ(write_all('c'), one_version);
#endif
}

// A class with no free objects takes those of a slightly larger class before a new slab: a tree's
// leaves and inner nodes are of neighbouring classes, and a load leaves one with a surplus while
// the other grows (10M keys: 170 MiB of free leaf memory beside new slabs for inner nodes).
TEST(NodePool, AClassTakesFreeObjectsOfASlightlyLargerClassBeforeANewSlab) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan the pool is plain new and delete";
#else
  namespace pool = iavl::detail::node_pool;
  constexpr std::size_t larger = 928, smaller = 880, count = 4096;  // classes no other test uses
  std::vector<void*> objects;
  for (std::size_t i = 0; i < count; ++i) objects.push_back(pool::allocate(larger));
  std::thread([&] {  // freed by a thread that then exits: all of them reach the shared depot
    for (void* p : objects) pool::deallocate(p, larger);
  })
      .join();
  const pool::usage before = pool::current_usage();
  std::thread([&] {
    std::vector<void*> reused;
    for (std::size_t i = 0; i < count; ++i) {
      reused.push_back(pool::allocate(smaller));
      std::memset(reused.back(), 0xab, smaller);
    }
    const pool::usage during = pool::current_usage();
    EXPECT_EQ(during.slab_bytes, before.slab_bytes) << "took new slabs";
    EXPECT_EQ(during.stranded_bytes - before.stranded_bytes, count * (larger - smaller));
    std::sort(reused.begin(), reused.end());
    std::vector<void*> freed = objects;
    std::sort(freed.begin(), freed.end());
    EXPECT_EQ(reused, freed);  // the very objects the larger class gave back
    for (void* p : reused) pool::deallocate(p, smaller);
  }).join();
  // Objects more than a quarter larger do not serve (688 bytes: 880 and 928 are 28% and 35% more).
  void* far_smaller = pool::allocate(688);
  EXPECT_EQ(std::find(objects.begin(), objects.end(), far_smaller), objects.end());
  pool::deallocate(far_smaller, 688);
#endif
}

#if !defined(__SANITIZE_ADDRESS__) && defined(__linux__)  // where large scratch arrays are mapped
namespace {

// The VmFlags line of the mapping in /proc/self/smaps that holds `p` ("" if none does).
std::string mapping_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t begin = 0;
    std::uintptr_t end = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &begin, &end) == 2) {  // a mapping's first line
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

}  // namespace
#endif

// A large commit's scratch lists (millions of nodes) must not stay in the process once freed,
// and are asked to be huge pages: a load's lists of tens of MB cost tens of thousands of page
// faults on small ones. glibc keeps a freed block in its heap once an earlier free raised its
// mapping threshold past the block's size, which the first free below does.
TEST(NodePool, LargeScratchArraysAreHugePagesAndGoBackToTheSystem) {
#if defined(__SANITIZE_ADDRESS__) || !defined(__linux__)
  GTEST_SKIP() << "under ASan scratch arrays are plain new and delete; /proc/self/smaps is Linux's";
#else
  namespace pool = iavl::detail::node_pool;
  void* volatile raise_threshold = ::operator new (std::size_t{24} << 20);
  ::operator delete(raise_threshold);
  const std::int64_t before = bench::anon_rss_bytes();
  ASSERT_GT(before, 0);
  {
    // 16 MiB and 8 bytes: not a whole number of huge pages, which the mapping rounds up to.
    pool::scratch_vector<std::uint64_t> v((std::size_t{2} << 20) + 1);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i;
    EXPECT_EQ(v[12345], 12345U);
    EXPECT_EQ(v.back(), std::size_t{2} << 20);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % pool::huge_chunk_bytes, 0U);
    if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
      EXPECT_NE(mapping_flags(v.data()).find(" hg"), std::string::npos) << mapping_flags(v.data());
    }
    EXPECT_GE(bench::anon_rss_bytes() - before, 15 << 20);
  }
  EXPECT_LT(bench::anon_rss_bytes() - before, 4 << 20);
#endif
}

// Slabs are cut from huge-page chunks: across several chunks and size classes, every object is
// 16-byte aligned and none overlaps another.
TEST(NodePool, ObjectsAreAlignedAndDisjointAcrossChunks) {
  namespace pool = iavl::detail::node_pool;
  struct object {
    char* at;
    std::size_t size;
  };
  std::vector<object> objects;
  for (std::size_t size : {48, 112, 160, 1024}) {  // over 4 MiB in each class
    for (std::size_t i = 0; i < (std::size_t{4} << 20) / size + 1; ++i) {
      objects.push_back({static_cast<char*>(pool::allocate(size)), size});
    }
  }
  std::sort(objects.begin(), objects.end(), [](const object& a, const object& b) { return a.at < b.at; });
  for (std::size_t i = 0; i < objects.size(); ++i) {
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(objects[i].at) % 16, 0U);
    if (i > 0) {
      ASSERT_GE(objects[i].at, objects[i - 1].at + objects[i - 1].size) << "objects overlap";
    }
  }
  for (const object& o : objects) pool::deallocate(o.at, o.size);
}
