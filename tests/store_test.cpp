// Node stores and store-backed versioned trees. One conformance suite runs on every backend.
#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "iavl/detail/crc32c.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"
#include "support/failing_store.hpp"
#include "support/keys.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

// ---- backends under test ------------------------------------------------------------------------

struct memory_backend {
  static constexpr const char* name = "memory";
  std::shared_ptr<iavl::node_store> store = iavl::open_memory_store();
  std::shared_ptr<iavl::node_store> open() { return store; }  // "reopening" keeps the same memory
};

// LevelDB locks its directory: while a handle is open, "opening" shares it; once every user
// has let go, the next open reads the files anew.
struct leveldb_backend {
  static constexpr const char* name = "leveldb";
  test_support::temp_dir dir;
  std::weak_ptr<iavl::node_store> current;
  std::shared_ptr<iavl::node_store> open() {
    if (auto open = current.lock()) return open;
    auto fresh = iavl::open_leveldb_store(dir.path() / "db");
    current = fresh;
    return fresh;
  }
};

template <typename Backend>
class StoreConformance : public ::testing::Test {
 protected:
  Backend backend;
};

using backends = ::testing::Types<memory_backend, leveldb_backend>;
TYPED_TEST_SUITE(StoreConformance, backends);

iavl::node_key key(std::int64_t v, std::uint32_t n) { return {v, n}; }

TYPED_TEST(StoreConformance, ReadsWhatABatchWrote) {
  auto store = this->backend.open();
  std::string out;
  EXPECT_FALSE(store->read_node(key(1, 1), out));
  EXPECT_FALSE(store->read_meta("x", out));
  iavl::write_batch b;
  b.put_nodes = {{key(1, 1), "one"}, {key(1, 2), std::string("\0two", 4)}, {key(300, 7), ""}};
  b.put_meta = {{"x", "meta"}, {"r1", "a"}, {"r2", "b"}};
  store->write(b, true);
  ASSERT_TRUE(store->read_node(key(1, 2), out));
  EXPECT_EQ(out, std::string("\0two", 4));
  ASSERT_TRUE(store->read_node(key(300, 7), out));
  EXPECT_EQ(out, "");
  ASSERT_TRUE(store->read_meta("x", out));
  EXPECT_EQ(out, "meta");
  EXPECT_GT(store->size_bytes(), 0u);
}

TYPED_TEST(StoreConformance, BatchesPutAndDeleteTogether) {
  auto store = this->backend.open();
  iavl::write_batch b;
  b.put_nodes = {{key(1, 1), "a"}, {key(1, 2), "b"}};
  b.put_meta = {{"m", "1"}};
  store->write(b, false);
  iavl::write_batch c;
  c.delete_nodes = {key(1, 1)};
  c.put_nodes = {{key(1, 2), "b2"}};
  c.delete_meta = {"m"};
  store->write(c, true);
  std::string out;
  EXPECT_FALSE(store->read_node(key(1, 1), out));
  ASSERT_TRUE(store->read_node(key(1, 2), out));
  EXPECT_EQ(out, "b2");
  EXPECT_FALSE(store->read_meta("m", out));
}

TYPED_TEST(StoreConformance, ScansInKeyOrderWithinBounds) {
  auto store = this->backend.open();
  iavl::write_batch b;
  for (std::int64_t v : {1, 2, 3, 256, 70000}) {
    for (std::uint32_t n : {1u, 2u, 300u}) b.put_nodes.add(key(v, n), "x");
  }
  b.put_meta = {{"r\x01", "1"}, {"r\x02", "2"}, {"q", "no"}, {"s", "no"}};
  store->write(b, true);
  std::vector<iavl::node_key> seen;
  store->scan_nodes(2, 256, [&](iavl::node_key k) {
    seen.push_back(k);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<iavl::node_key>{key(2, 1), key(2, 2), key(2, 300), key(3, 1), key(3, 2), key(3, 300),
                                               key(256, 1), key(256, 2), key(256, 300)}));
  seen.clear();
  store->scan_nodes(0, INT64_MAX, [&](iavl::node_key k) {
    seen.push_back(k);
    return seen.size() < 4;  // stops early
  });
  EXPECT_EQ(seen.size(), 4u);
  std::vector<std::string> names;
  store->scan_meta("r", [&](std::string_view name, std::string_view value) {
    names.emplace_back(name);
    EXPECT_EQ(value.size(), 1u);
    return true;
  });
  EXPECT_EQ(names, (std::vector<std::string>{"r\x01", "r\x02"}));
}

// A store may keep a thread's batch buffer for its next write (LevelDB does): each write still
// applies only its own batch, with another thread's writes in between and after a batch larger
// than the store keeps.
TYPED_TEST(StoreConformance, EachWriteAppliesOnlyItsOwnBatch) {
  auto store = this->backend.open();
  std::promise<void> others_wrote;
  std::promise<void> first_done;
  std::thread writer([&] {
    iavl::write_batch big;
    big.put_nodes = {{key(1, 1), "first"}, {key(1, 2), std::string(9 << 20, 'x')}};
    store->write(big, false);
    iavl::write_batch small;
    small.put_nodes = {{key(1, 3), "third"}};
    store->write(small, false);
    first_done.set_value();
    others_wrote.get_future().wait();
    iavl::write_batch last;
    last.put_nodes = {{key(1, 4), "fourth"}};
    store->write(last, true);
  });
  first_done.get_future().wait();
  iavl::write_batch other;
  other.put_nodes = {{key(1, 1), "second"}, {key(1, 3), "second"}};
  other.delete_nodes = {key(1, 2)};
  store->write(other, false);
  others_wrote.set_value();
  writer.join();
  std::string out;
  ASSERT_TRUE(store->read_node(key(1, 1), out));
  EXPECT_EQ(out, "second");
  ASSERT_TRUE(store->read_node(key(1, 3), out));
  EXPECT_EQ(out, "second");
  EXPECT_FALSE(store->read_node(key(1, 2), out));
  ASSERT_TRUE(store->read_node(key(1, 4), out));
  EXPECT_EQ(out, "fourth");
}

// A batch's node records share one buffer: each must come back whole, under its own key, in
// the order added, also after the buffer has grown and moved, past the size (1 MiB) from which
// it is mapped from the system in huge pages.
TEST(NodeRecordsBuffer, GivesBackEachRecordUnderItsKeyInOrder) {
  std::vector<std::pair<iavl::node_key, std::string>> added = {
      {key(7, 3), "abc"}, {key(7, 1), ""}, {key(2, 9), std::string("\0z\0", 3)}, {key(7, 2), std::string(100000, 'q')}};
  for (std::uint32_t n = 10; n < 1000; ++n) added.emplace_back(key(8, n), std::string(n % 37, static_cast<char>(n)));
  added.emplace_back(key(9, 1), std::string(std::size_t{3} << 20, 'r'));
  for (std::uint32_t n = 2; n < 100000; ++n) added.emplace_back(key(9, n), std::string(n % 41, static_cast<char>(n)));
  iavl::node_records records;
  for (const auto& [k, r] : added) records.add(k, r);
  ASSERT_EQ(records.size(), added.size());
  std::size_t bytes = 0;
  for (const auto& [k, r] : added) bytes += r.size();
  EXPECT_EQ(records.bytes(), bytes);
  std::size_t i = 0;
  for (const auto& [k, r] : records) {
    ASSERT_LT(i, added.size());
    EXPECT_EQ(k, added[i].first) << i;
    EXPECT_EQ(r, added[i].second) << i;
    EXPECT_EQ(records[i].second, added[i].second) << i;
    ++i;
  }
  EXPECT_EQ(i, added.size());
  records.clear();
  EXPECT_TRUE(records.empty());
  EXPECT_EQ(records.bytes(), 0U);
  EXPECT_EQ(records.begin(), records.end());
}

// The memory store appends a version's node records and sorts those out of order once: out of
// order and overwritten records still land in key order, and its byte count stays exact.
TEST(MemoryStore, KeepsKeyOrderAndAnExactByteCountWhateverABatchsOrder) {
  auto store = iavl::open_memory_store();
  constexpr std::uint64_t key_bytes = 13;  // 'n' + version + nonce
  iavl::write_batch b;
  b.put_nodes = {{key(2, 5), "abc"}, {key(2, 1), "de"}, {key(1, 9), ""}, {key(2, 6), "f"}, {key(2, 0), "root"}};
  b.put_meta = {{"x", "meta"}};
  store->write(b, true);
  EXPECT_EQ(store->size_bytes(), 5 * key_bytes + 3 + 2 + 0 + 1 + 4 + (1 + 1) + 4);
  iavl::write_batch c;
  c.put_nodes = {{key(2, 1), "longer"}, {key(3, 1), "g"}};
  c.delete_nodes = {key(2, 5), key(7, 7)};  // the second is absent
  store->write(c, true);
  EXPECT_EQ(store->size_bytes(), 5 * key_bytes + 6 + 0 + 1 + 4 + 1 + (1 + 1) + 4);
  std::vector<iavl::node_key> seen;
  store->scan_nodes(0, INT64_MAX, [&](iavl::node_key k) {
    seen.push_back(k);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<iavl::node_key>{key(1, 9), key(2, 0), key(2, 1), key(2, 6), key(3, 1)}));
  std::string out;
  ASSERT_TRUE(store->read_node(key(2, 1), out));
  EXPECT_EQ(out, "longer");
  // Scans start at version 0; a store holding nodes of another version is not empty all the same.
  auto other = iavl::open_memory_store();
  iavl::write_batch negative;
  negative.put_nodes = {{key(-1, 1), "x"}};
  other->write(negative, true);
  EXPECT_FALSE(other->empty());
}

#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer keeps freed memory mapped a while
// The process's resident memory, from /proc, once malloc has given back the free memory it keeps
// (the tests' own batches of megabytes raise its thresholds for keeping it): what the store holds
// and its allocator's leftovers.
std::int64_t resident_bytes() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// Writes `versions` versions of `records` records of 2000 bytes, deletes nine records in ten of
// each (as pruning leaves a few records of each version), then the rest, and checks what the
// store reads and how much memory the process holds on the way.
void thin_out_then_delete(std::int64_t versions, std::uint32_t records) {
  auto store = iavl::open_memory_store();
  const std::int64_t before = resident_bytes();
  auto record = [](std::int64_t v, std::uint32_t n) {
    return std::string(2000, static_cast<char>('a' + (v * 7 + n) % 26));
  };
  for (std::int64_t v = 1; v <= versions; ++v) {
    iavl::write_batch b;
    for (std::uint32_t n = 1; n <= records; ++n) b.put_nodes.add(key(v, n), record(v, n));
    store->write(b, false);
  }
  const std::int64_t written = versions * records * 2000;
  EXPECT_GE(resident_bytes() - before, written * 9 / 10);
  iavl::write_batch most;
  for (std::int64_t v = 1; v <= versions; ++v) {
    for (std::uint32_t n = 1; n <= records; ++n) {
      if (n % 10 != 0) most.delete_nodes.push_back(key(v, n));
    }
  }
  store->write(most, false);
  EXPECT_LE(resident_bytes() - before, written / 10 + (10 << 20));  // and chunks partly filled
  std::string out;
  for (std::int64_t v = 1; v <= versions; ++v) {
    for (std::uint32_t n = 1; n <= records; ++n) {
      ASSERT_EQ(store->read_node(key(v, n), out), n % 10 == 0);
      if (n % 10 == 0) {
        ASSERT_EQ(out, record(v, n));
      }
    }
  }
  iavl::write_batch rest;
  for (std::int64_t v = 1; v <= versions; ++v) {
    for (std::uint32_t n = 10; n <= records; n += 10) rest.delete_nodes.push_back(key(v, n));
  }
  store->write(rest, false);
  EXPECT_TRUE(store->empty());
  EXPECT_LE(resident_bytes() - before, 4 << 20);
}

// The memory store packs records into chunks of huge pages and gives a chunk back once no record
// in it is live: also when a few records of each version stay.
TEST(MemoryStore, GivesTheRoomOfDeletedRecordsBackToTheSystem) {
  thin_out_then_delete(32, 1000);  // 2 MB a version, 64 MB in all
}

// A large version (a load's commit) that pruning thins out has its live records moved into a
// buffer of their own, from 1 MiB up mapped on huge pages; it goes back once they are deleted.
TEST(MemoryStore, GivesBackTheBufferALargeVersionsLiveRecordsMovedTo) {
  thin_out_then_delete(4, 8000);  // 16 MB a version, 1.6 MB of each moved
}
#endif

// Random batches against a map of what the store should hold: runs of new versions (some in
// several pieces, some batches with several versions, some shuffled), records overwritten, written out of order,
// deleted (most of a version, so that the memory store gives their room back, or all of it),
// deleted and written again. Every read, scan and the memory store's byte count must agree.
TYPED_TEST(StoreConformance, HoldsWhatRandomBatchesOfWritesAndDeletesLeave) {
  auto store = this->backend.open();
  std::mt19937_64 rng(31);
  std::map<iavl::node_key, std::string> expected;
  std::uint64_t meta_bytes = 0;
  std::int64_t next_version = 1;
  std::vector<iavl::node_key> deleted;  // some of the last round's deletes, to write again
  auto pick = [&](auto& from) { return std::next(from.begin(), static_cast<long>(rng() % from.size())); };
  // Now and then one too large for the memory store to pack into its arena's chunks.
  auto record = [&] {
    const std::size_t size = rng() % 200 == 0 ? (std::size_t{300} << 10) + rng() % 1000 : rng() % 300;
    return std::string(size, static_cast<char>('a' + rng() % 26));
  };
  for (int round = 0; round < 60; ++round) {
    iavl::write_batch b;
    std::map<iavl::node_key, std::string> puts;  // this batch's, in key order as a tree writes them
    const int versions = round % 7 == 0 ? 3 : 1;
    for (int v = 0; v < versions; ++v, ++next_version) {
      const auto count = static_cast<std::uint32_t>(rng() % 400);
      for (std::uint32_t n = 1; n <= count; ++n) puts[key(next_version, n)] = record();
    }
    if (round % 4 == 1) {  // a version in shuffled order, some nonces twice: the later one stays
      std::vector<std::uint32_t> nonces(300);
      std::iota(nonces.begin(), nonces.end(), 0U);
      for (int i = 0; i < 30; ++i) nonces.push_back(nonces[rng() % 300]);
      std::shuffle(nonces.begin(), nonces.end(), rng);
      for (const std::uint32_t n : nonces) b.put_nodes.add(key(next_version, n), record());
      ++next_version;
    }
    if (round % 5 == 4 && !expected.empty()) {  // the rest of a version in a later piece
      const std::int64_t version = pick(expected)->first.version;
      for (std::uint32_t n = 1000; n < 1100; ++n) puts[key(version, n)] = record();
    }
    for (int i = 0; i < 20 && !expected.empty(); ++i) puts[pick(expected)->first] = record();  // overwritten
    for (const auto& [k, r] : puts) b.put_nodes.add(k, r);
    for (const auto& k : deleted) b.put_nodes.add(k, "again");
    if (!expected.empty()) b.put_nodes.add(key(pick(expected)->first.version, 500 + round), "out of order");
    if (round % 3 == 2 && !expected.empty()) {  // most of one version, or all of it
      const std::int64_t version = pick(expected)->first.version;
      for (const auto& [k, r] : expected) {
        if (k.version == version && (round % 2 == 0 || rng() % 10 != 0)) b.delete_nodes.push_back(k);
      }
    }
    for (int i = 0; i < 10 && !expected.empty(); ++i) b.delete_nodes.push_back(pick(expected)->first);
    b.delete_nodes.push_back(key(next_version + 5, 1));  // absent
    b.put_meta.emplace_back("round" + std::to_string(round), record());
    // The model: puts first, then deletes, as write applies them.
    for (const auto& [k, r] : b.put_nodes) expected[k] = std::string(r);
    for (const auto& k : b.delete_nodes) expected.erase(k);
    meta_bytes += 1 + b.put_meta[0].first.size() + b.put_meta[0].second.size();
    store->write(b, round % 2 == 0);

    std::string out;
    for (const auto& [k, r] : expected) {
      ASSERT_TRUE(store->read_node(k, out)) << "round " << round << ": " << k.version << "/" << k.nonce;
      ASSERT_EQ(out, r) << "round " << round << ": " << k.version << "/" << k.nonce;
    }
    for (const auto& k : b.delete_nodes) EXPECT_FALSE(store->read_node(k, out)) << k.version << "/" << k.nonce;
    deleted.assign(b.delete_nodes.begin(), b.delete_nodes.begin() + std::min<long>(3, std::ssize(b.delete_nodes)));
    const std::int64_t first = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(next_version));
    const std::int64_t last = first + static_cast<std::int64_t>(rng() % 6);
    std::vector<iavl::node_key> scanned, in_range;
    store->scan_nodes(first, last, [&](iavl::node_key k) {
      scanned.push_back(k);
      return true;
    });
    for (const auto& [k, r] : expected) {
      if (k.version >= first && k.version <= last) in_range.push_back(k);
    }
    ASSERT_EQ(scanned, in_range) << "round " << round << ": versions " << first << "-" << last;
    if constexpr (std::is_same_v<TypeParam, memory_backend>) {
      std::uint64_t bytes = meta_bytes;
      for (const auto& [k, r] : expected) bytes += 13 + r.size();
      ASSERT_EQ(store->size_bytes(), bytes) << "round " << round;
    }
  }
  // Deleted to the last record, the store is empty again: no version kept without records.
  iavl::write_batch all;
  for (const auto& [k, r] : expected) all.delete_nodes.push_back(k);
  for (int round = 0; round < 60; ++round) all.delete_meta.push_back("round" + std::to_string(round));
  store->write(all, true);
  EXPECT_TRUE(store->empty());
  bool any = false;
  store->scan_nodes(INT64_MIN, INT64_MAX, [&](iavl::node_key) { return !(any = true); });
  EXPECT_FALSE(any);
  if constexpr (std::is_same_v<TypeParam, memory_backend>) {
    EXPECT_EQ(store->size_bytes(), 0U);
  }
}

// ---- store-backed versioned trees ---------------------------------------------------------------

template <typename Backend>
class StoredTree : public ::testing::Test {
 protected:
  iavl::options opts(iavl::retention keep = {}) { return iavl::options{.store = backend.open(), .keep = keep}; }
  Backend backend;
};
TYPED_TEST_SUITE(StoredTree, backends);

using model = std::map<std::string, std::string>;

// Expects `use` to throw an iavl::error of `code`; `what` names the use.
void expect_error(iavl::errc code, const std::string& what, const std::function<void()>& use) {
  try {
    use();
    ADD_FAILURE() << what << " worked";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), code) << what << ": " << e.what();
  }
}

// Applies one version's worth of random changes to both a stored tree and an in-memory twin.
void random_version(std::mt19937_64& rng, iavl::tree& a, iavl::tree& b, model& m, int ops) {
  for (int i = 0; i < ops; ++i) {
    const std::string k = "k" + std::to_string(rng() % 3000);
    if (rng() % 4 == 0) {
      ASSERT_EQ(a.remove(k), b.remove(k));
      m.erase(k);
    } else {
      const std::string v = std::to_string(rng());
      a.set(k, v);
      b.set(k, v);
      m[k] = v;
    }
  }
}

// Commits `versions` versions of random changes to a stored tree and its in-memory twin.
void commit_random_versions(std::mt19937_64& rng, iavl::versioned_tree& db, iavl::versioned_tree& twin, model& m,
                            int versions, int ops) {
  for (int v = 0; v < versions; ++v) {
    iavl::tree a = db.branch(), b = twin.branch();
    random_version(rng, a, b, m, ops);
    (void)db.commit(std::move(a));
    (void)twin.commit(std::move(b));
  }
}

void expect_contents(const iavl::snapshot& s, const model& m) {
  ASSERT_EQ(s.size(), static_cast<std::int64_t>(m.size()));
  for (const auto& [k, v] : m) ASSERT_EQ(s.get(k), v) << k;
  auto it = m.begin();
  for (auto [k, v] : s.range()) {
    ASSERT_EQ(k, it->first);
    ++it;
  }
}

// Every node key reachable from the kept versions, read back from the store.
std::set<iavl::node_key> reachable(iavl::versioned_tree& db) {
  std::set<iavl::node_key> out;
  for (std::int64_t v : db.versions()) {
    const iavl::snapshot s = db.at(v);
    std::vector<const iavl::detail::node*> stack;
    struct access : iavl::snapshot {
      explicit access(const iavl::snapshot& s) : iavl::snapshot(s) {}
      const iavl::detail::node* root() const { return root_; }
      const iavl::detail::store_context* store() const { return ctx(); }
    };
    const access a(s);
    if (a.root()) stack.push_back(a.root());
    while (!stack.empty()) {
      const iavl::detail::node* n = stack.back();
      stack.pop_back();
      if (!out.insert(n->key_in_store()).second) continue;
      if (!n->is_leaf()) {
        for (int i = 0; i < 2; ++i) stack.push_back(iavl::detail::child(iavl::detail::as_inner(n), i, a.store()));
      }
    }
  }
  return out;
}

// Node records in the store; a version's root record (nonce 0) is not a node.
std::size_t stored_nodes(iavl::node_store& store) {
  std::size_t n = 0;
  store.scan_nodes(0, INT64_MAX, [&](iavl::node_key k) { return n += k.nonce != 0, true; });
  return n;
}

template <typename Backend>
void check_hashes_and_reopening(bool background) {
  Backend backend;
  std::mt19937_64 rng(11);
  iavl::versioned_tree twin;
  std::map<std::int64_t, model> models;
  model m;
  {
    iavl::versioned_tree db(iavl::options{.store = backend.open(), .background_writes = background});
    for (int v = 1; v <= 12; ++v) {
      iavl::tree a = db.branch(), b = twin.branch();
      random_version(rng, a, b, m, 700);
      EXPECT_EQ(a.working_hash(), b.working_hash());
      const auto s = db.commit(std::move(a));
      EXPECT_EQ(s.hash(), twin.commit(std::move(b)).hash());
      models[v] = m;
    }
  }
  iavl::versioned_tree db(iavl::options{.store = backend.open()});  // a second opening reads what the first wrote
  EXPECT_EQ(db.latest_version(), 12);
  EXPECT_EQ(db.versions().size(), 12u);
  for (const auto& [v, mv] : models) {
    SCOPED_TRACE("version " + std::to_string(v));
    const iavl::snapshot s = db.at(v);
    EXPECT_EQ(s.hash(), twin.at(v).hash());
    s.verify();
    expect_contents(s, mv);
  }
  // And it continues from there.
  iavl::tree a = db.branch(), b = twin.branch();
  random_version(rng, a, b, m, 500);
  EXPECT_EQ(db.commit(std::move(a)).hash(), twin.commit(std::move(b)).hash());
  db.last_commit().verify();
}

TYPED_TEST(StoredTree, HashesMatchTheInMemoryTreeAndSurviveReopening) {
  for (const bool background : {false, true}) {
    SCOPED_TRACE(background ? "background writes" : "writes in commit");
    check_hashes_and_reopening<TypeParam>(background);
  }
}

// A working tree hashed partway through its block (an app asking for its working hash) and then
// written elsewhere commits the nodes it made before that hash too, though they are not hashed
// again: every node of the version is in the store.
TYPED_TEST(StoredTree, AVersionHashedPartwayWritesEveryNodeItMade) {
  iavl::versioned_tree twin;
  model m;
  {
    iavl::versioned_tree db(this->opts());
    std::mt19937_64 rng(17);
    commit_random_versions(rng, db, twin, m, 1, 600);
    iavl::tree a = db.branch(), b = twin.branch();
    random_version(rng, a, b, m, 300);
    EXPECT_EQ(a.working_hash(), b.working_hash());
    for (const char* k : {"k1", "k2999"}) {  // two paths; most of the nodes hashed above stay as they are
      a.set(k, "after the hash");
      b.set(k, "after the hash");
      m[k] = "after the hash";
    }
    EXPECT_EQ(db.commit(std::move(a)).hash(), twin.commit(std::move(b)).hash());
  }
  iavl::versioned_tree db(this->opts());  // reads every node of version 2 back from the store
  const iavl::snapshot s = db.at(2);
  EXPECT_EQ(s.hash(), twin.at(2).hash());
  s.verify();
  expect_contents(s, m);
  EXPECT_EQ(stored_nodes(*this->backend.open()), reachable(db).size());
}

// With the default cache the pruner reads the orphan lists; with a tiny one they exceed their
// budget and it walks the store: the same versions and nodes are left either way.
TYPED_TEST(StoredTree, RetentionKeepsRecentAndEveryKthAndReclaimsTheRest) {
  for (const std::size_t cache_bytes : {iavl::options{}.cache_bytes, std::size_t{4096}}) {
    SCOPED_TRACE("cache bytes " + std::to_string(cache_bytes));
    std::mt19937_64 rng(5);
    iavl::versioned_tree twin;
    TypeParam backend;  // a store of its own for each round
    iavl::versioned_tree db(iavl::options{
        .store = backend.open(), .cache_bytes = cache_bytes, .keep = {.keep_recent = 3, .keep_every = 5}});
    model m;
    commit_random_versions(rng, db, twin, m, 23, 300);
    db.wait_for_pruning();
    EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{5, 10, 15, 20, 21, 22, 23}));
    for (std::int64_t v : db.versions()) {
      const iavl::snapshot s = db.at(v);
      EXPECT_EQ(s.hash(), twin.at(v).hash());
      s.verify();
    }
    EXPECT_THROW((void)db.at(4), iavl::error);
    // Exactly the nodes that kept versions reach are left in the store.
    EXPECT_EQ(stored_nodes(*backend.open()), reachable(db).size());
  }
}

TYPED_TEST(StoredTree, DeletingAMiddleVersionKeepsItsNeighboursWhole) {
  std::mt19937_64 rng(8);
  iavl::versioned_tree twin;
  iavl::versioned_tree db(this->opts({.keep_recent = 1000}));  // keeps orphan lists, deletes nothing
  model m;
  commit_random_versions(rng, db, twin, m, 8, 400);
  auto store = this->backend.open();
  const std::size_t before = stored_nodes(*store);
  db.delete_version(4);
  db.delete_version(5);
  db.delete_versions_before(3);
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{3, 6, 7, 8}));
  EXPECT_LT(stored_nodes(*store), before);
  EXPECT_EQ(stored_nodes(*store), reachable(db).size());
  for (std::int64_t v : db.versions()) {
    db.at(v).verify();
    EXPECT_EQ(db.at(v).hash(), twin.at(v).hash());
  }
  EXPECT_THROW(db.delete_version(8), iavl::error);  // the latest
  try {
    db.delete_version(4);
    FAIL();
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::version_not_found);
  }
}

// Versions committed by an earlier opening have no orphan lists in memory: pruning them walks
// the store instead, and must reclaim exactly the same nodes.
TYPED_TEST(StoredTree, PruningVersionsOfAnEarlierOpening) {
  std::mt19937_64 rng(12);
  iavl::versioned_tree twin;
  model m;
  {
    iavl::versioned_tree db(this->opts());
    commit_random_versions(rng, db, twin, m, 6, 400);
  }
  iavl::versioned_tree db(this->opts({.keep_recent = 1000}));
  commit_random_versions(rng, db, twin, m, 3, 400);  // these have orphan lists, 1..6 do not
  db.delete_version(3);
  db.delete_versions_before(8);
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{8, 9}));
  auto store = this->backend.open();
  EXPECT_EQ(stored_nodes(*store), reachable(db).size());
  for (std::int64_t v : db.versions()) {
    db.at(v).verify();
    EXPECT_EQ(db.at(v).hash(), twin.at(v).hash());
  }
}

TYPED_TEST(StoredTree, RollbackToAnOlderVersionDeletesNewerOnes) {
  std::mt19937_64 rng(9);
  iavl::versioned_tree twin;
  model m;
  std::map<std::int64_t, model> models;
  {
    iavl::versioned_tree db(this->opts());
    for (int v = 1; v <= 6; ++v) {
      iavl::tree a = db.branch(), b = twin.branch();
      random_version(rng, a, b, m, 400);
      (void)db.commit(std::move(a));
      (void)twin.commit(std::move(b));
      models[v] = m;
    }
    iavl::tree stale = db.branch();
    db.rollback_to(3);
    EXPECT_EQ(db.latest_version(), 3);
    EXPECT_EQ(db.durable_version(), 3);  // not the 6 it was before
    EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{1, 2, 3}));
    EXPECT_EQ(db.last_commit().hash(), twin.at(3).hash());
    EXPECT_THROW((void)db.commit(std::move(stale)), iavl::error);
    auto store = this->backend.open();
    std::size_t newer = 0;
    store->scan_nodes(4, INT64_MAX, [&](iavl::node_key) { return ++newer, true; });
    EXPECT_EQ(newer, 0u);
    EXPECT_EQ(stored_nodes(*store), reachable(db).size());
  }
  iavl::versioned_tree db(this->opts());
  EXPECT_EQ(db.latest_version(), 3);
  expect_contents(db.last_commit(), models[3]);
  // A new version 4 on top of the rollback.
  iavl::tree a = db.branch();
  a.set("after", "rollback");
  EXPECT_EQ(db.commit(std::move(a)).version(), 4);
  db.last_commit().verify();
}

TYPED_TEST(StoredTree, ASmallCacheStaysWithinBudgetAndReadsStayRight) {
  std::mt19937_64 rng(21);
  iavl::versioned_tree twin;
  iavl::options o = this->opts();
  o.cache_bytes = 48 << 10;
  iavl::versioned_tree db(o);
  model m;
  std::int64_t peak = 0;
  for (int v = 1; v <= 25; ++v) {
    iavl::tree a = db.branch(), b = twin.branch();
    random_version(rng, a, b, m, 400);
    const iavl::snapshot s = db.commit(std::move(a));
    EXPECT_EQ(s.hash(), twin.commit(std::move(b)).hash());
    peak = std::max(peak, db.cached_bytes());
    db.trim_cache();  // commit trims in the background; this waits for it
    EXPECT_LE(db.cached_bytes(), static_cast<std::int64_t>(o.cache_bytes)) << "after version " << v;
  }
  expect_contents(db.last_commit(), m);  // reads everything back, loading evicted nodes again
  EXPECT_GT(db.cached_bytes(), static_cast<std::int64_t>(o.cache_bytes));  // a full read exceeds it...
  db.trim_cache();
  EXPECT_LE(db.cached_bytes(), static_cast<std::int64_t>(o.cache_bytes));  // ...until trimmed
  db.last_commit().verify();
  EXPECT_GT(peak, 0);
}

// More nodes to delete than one rollback batch takes (the memory store also must not be written
// from inside its own scan).
TEST(Rollback, DeletesVersionsOfMoreThanOneBatch) {
  auto store = iavl::open_memory_store();
  iavl::versioned_tree db(iavl::options{.store = store});
  (void)db.commit(db.branch());
  iavl::tree t = db.branch();
  for (int i = 0; i < 60000; ++i) t.set("key" + std::to_string(i), "v");
  (void)db.commit(std::move(t));
  ASSERT_GT(stored_nodes(*store), 100000u);
  db.rollback_to(1);
  EXPECT_EQ(stored_nodes(*store), 0u);
  EXPECT_EQ(db.latest_version(), 1);
}

// A tree branched before rollback_to is stale, also once the version it branched from is
// committed again with the same writes: the same number and hash, but other nodes (here with
// other nonces). Committing it wrote a version whose nodes named records the rollback deleted.
TEST(Rollback, ATreeBranchedBeforeStaysStaleWhenItsVersionComesBackTheSame) {
  for (const bool stored : {false, true}) {
    SCOPED_TRACE(stored ? "memory store" : "no store");
    iavl::options o;
    if (stored) o.store = iavl::open_memory_store();
    std::optional<iavl::versioned_tree> db(std::in_place, o);
    for (int v = 1; v <= 3; ++v) {
      iavl::tree t = db->branch();
      for (int i = 0; i < 50; ++i) t.set("k" + std::to_string(i), "v" + std::to_string(v));
      (void)db->commit(std::move(t));
    }
    auto commit_version_4 = [&](bool hash_after_each_set) {
      iavl::tree t = db->branch();
      for (const char* k : {"k10", "k20", "k30", "k40"}) {
        t.set(k, "four");
        if (hash_after_each_set) (void)t.working_hash();
      }
      return db->commit(std::move(t)).hash();
    };
    const iavl::hash256 first = commit_version_4(true);
    iavl::tree stale = db->branch();
    stale.set("k25", "five");
    db->rollback_to(3);
    ASSERT_EQ(commit_version_4(false), first);
    expect_error(iavl::errc::stale_branch, "commit", [&] { (void)db->commit(std::move(stale)); });
    EXPECT_EQ(db->latest_version(), 4);
    if (stored) {
      db.reset();  // one versioned_tree on a store at a time
      iavl::versioned_tree reopened(iavl::options{.store = o.store});
      EXPECT_EQ(reopened.latest_version(), 4);
      EXPECT_NO_THROW(reopened.last_commit().verify());
    }
  }
}

using test_support::commit_keys;

// A version kept by keep_every keeps the nodes that the versions after it replaced: their orphan
// lists keep those entries until it is pruned, which the policy never does. Kept, such leftovers
// filled the lists' budget (an eighth of the cache) within a few kept versions, and the versions
// after that got no list, so pruning them walked the store. With the leftovers dropped, pruning
// reads nothing from the store, version after version.
TEST(Retention, KeptVersionsLeaveNoOrphanListsBehindThatCrowdOutLaterOnes) {
  auto store = std::make_shared<test_support::failing_store>();
  iavl::versioned_tree db(
      iavl::options{.store = store, .cache_bytes = 1 << 20, .keep = {.keep_recent = 2, .keep_every = 3}});
  (void)commit_keys(db, 2000);
  std::mt19937_64 rng(9);
  long pruning_reads = 0;
  for (int v = 2; v <= 40; ++v) {
    iavl::tree t = db.branch();
    for (int i = 0; i < 100; ++i) t.set("k" + std::to_string(rng() % 2000), std::to_string(v));
    const long before = store->node_reads;
    (void)db.commit(std::move(t));
    db.wait_for_pruning();
    pruning_reads += store->node_reads - before;
  }
  EXPECT_EQ(pruning_reads, 0);
  std::vector<std::int64_t> kept;
  for (std::int64_t v = 3; v <= 39; v += 3) kept.push_back(v);
  kept.push_back(40);
  EXPECT_EQ(db.versions(), kept);
  EXPECT_EQ(stored_nodes(*store->inner), reachable(db).size());
  for (const std::int64_t v : kept) db.at(v).verify();
}

// A working tree may outlive its versioned_tree: its reads and writes go on in its store. The
// cache had unloaded nodes the tree borrowed, held back for it (its pin) on the cache's list of
// retired references; destroying the versioned_tree released that list whole, and the tree then
// walked freed nodes (under AddressSanitizer a heap-use-after-free; in release, a corruption
// error or wrong values).
TEST(Lifetime, AWorkingTreeOutlivesItsVersionedTree) {
  auto store = iavl::open_memory_store();
  std::optional<iavl::versioned_tree> db(std::in_place, iavl::options{.store = store, .cache_bytes = 64 << 10});
  model m = commit_keys(*db, 20000);
  iavl::tree t = db->branch();
  for (int i = 0; i < 3000; ++i) {  // its own nodes borrow the base version's
    const std::string k = "k" + std::to_string(i * 7 % 20000);
    t.set(k, "w");
    m[k] = "w";
  }
  for (int v = 0; v < 3; ++v) {  // other versions' commits make the cache unload what t borrows
    iavl::tree other = db->branch();
    for (int i = 0; i < 2000; ++i) other.set("k" + std::to_string(i * 13 % 20000), "o" + std::to_string(v));
    (void)db->commit(std::move(other));
  }
  db.reset();
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "k" + std::to_string(i * 11 % 20000);
    t.set(k, "after");
    m[k] = "after";
  }
  model seen;
  for (auto [key, value] : t.range()) seen.emplace(key, value);
  EXPECT_EQ(seen, m);
  t.verify();
}

// The last reference to a version dropped on another thread while its versioned_tree is being
// destroyed: the reclaimer, stopping, still runs its queue (a commit's counting of the nodes it
// borrows from that version), and the drop must take its turn there. Done at once by the caller,
// it freed those nodes before they were counted (under ASan a heap-use-after-free in
// count_borrowed_slots, in 3 of 6 runs of a review helper's program).
TEST(Lifetime, AVersionDroppedWhileItsVersionedTreeStopsIsFreedInTurn) {
  constexpr int keys = 50000;
  const auto version_of = [&](iavl::versioned_tree& db, int step, const std::string& value) {
    iavl::tree t = db.branch();
    for (int i = 0; i < keys; i += step) t.set("k" + std::to_string(i), value);
    return db.commit(std::move(t));
  };
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::optional<iavl::versioned_tree> db(std::in_place,
                                           iavl::options{.store = iavl::open_memory_store(), .sync = false});
    iavl::snapshot first = version_of(*db, 1, "one");
    (void)version_of(*db, 1, "two");
    std::atomic<int> phase{0};
    std::thread reader([&] {
      iavl::snapshot second = db->last_commit();
      phase = 1;
      while (phase.load() < 2) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::microseconds(500 * round));
      second = {};  // the last reference to version 2, while the tree is destroyed
    });
    while (phase.load() < 1) std::this_thread::yield();
    first = {};                                                 // a large release, queued
    const iavl::snapshot third = version_of(*db, 97, "three");  // borrows version 2's subtrees
    phase = 2;
    db.reset();
    reader.join();
    for (int i = 0; i < keys; i += 7) ASSERT_EQ(third.get("k" + std::to_string(i)), i % 97 == 0 ? "three" : "two");
    third.verify();
  }
}

// Trimming unloads what brings memory back within budget, not much more: not after a full read,
// which leaves no cold subtree until the sweep has cleared every mark (it then found the root's
// children cold and unloaded both whole), and not while a working tree's pin holds back the
// freeing of what was unloaded (each trim counted it again and unloaded more).
TYPED_TEST(StoredTree, TrimmingUnloadsNoMoreThanItMust) {
  iavl::options o = this->opts();
  o.cache_bytes = 64 << 10;
  const auto budget = static_cast<std::int64_t>(o.cache_bytes);
  iavl::versioned_tree db(o);
  const model m = commit_keys(db, 3000);  // a version of many times the budget
  db.trim_cache();                        // the commit's own trim, done before the reads below
  expect_contents(db.last_commit(), m);   // loads and marks every node
  ASSERT_GT(db.cached_bytes(), 4 * budget);
  {
    const iavl::tree reader = db.branch();
    db.trim_cache();
    db.trim_cache();
  }
  db.trim_cache();
  EXPECT_LE(db.cached_bytes(), budget);
  EXPECT_GE(db.cached_bytes(), budget / 2);
  expect_contents(db.last_commit(), m);
}

// Trimming unloads cold parts from the bottom up: with a budget that holds the upper levels
// (every node of height 2 and more) but not the whole tree, a lookup after any number of trims
// loads at most the node of height 1 and the leaf below it. Unloading cold subtrees whole, as
// the cache did before, left lookups that loaded four levels and more: with uniform reads at
// 10M keys about half of a transaction's loads were of nodes of height 2 to 7.
TEST(NodeCache, TrimmingKeepsTheUpperLevels) {
  auto store = std::make_shared<test_support::failing_store>();
  iavl::options o{.store = store};
  std::int64_t full = 0;
  model m;
  {
    iavl::versioned_tree db(o);
    m = commit_keys(db, 4000);
    expect_contents(db.last_commit(), m);
    full = db.cached_bytes();  // the whole tree
  }
  o.cache_bytes = static_cast<std::size_t>(full) / 5 * 3;
  iavl::versioned_tree db(o);
  for (int round = 0; round < 3; ++round) {
    expect_contents(db.last_commit(), m);  // loads and marks every node
    db.trim_cache();                       // clears the marks
    db.trim_cache();                       // unloads
    ASSERT_LE(db.cached_bytes(), static_cast<std::int64_t>(o.cache_bytes));
    int most = 0;
    for (const auto& [key, value] : m) {
      const long before = store->node_reads.load();
      ASSERT_EQ(db.last_commit().get(key), value);
      most = std::max(most, static_cast<int>(store->node_reads.load() - before));
    }
    EXPECT_LE(most, 2) << "round " << round;
    EXPECT_GE(most, 1) << "round " << round;  // the trims did unload
  }
}

// Only a lookup that returns a value reads a leaf from the store: the key of the leaf where a
// path ends is the split key of the last node where it turned right, so the path says whether a
// key is there (only a path that never turns right, a key below the second smallest, reads the
// smallest leaf). Inserts, updates without a lookup before them, has(), index_of() and removals
// read no leaf. The trees these writes make are those a tree with every node in memory makes.
TEST(NodeCache, OnlyAValueReadsALeaf) {
  auto store = std::make_shared<test_support::failing_store>();
  const iavl::options o{.store = store};
  model m;
  {
    iavl::versioned_tree db(o);
    m = commit_keys(db, 2000);
  }
  iavl::versioned_tree db(o);  // nothing in memory
  iavl::versioned_tree in_memory;
  (void)commit_keys(in_memory, 2000);  // in the same order: the same tree
  ASSERT_EQ(in_memory.last_commit().hash(), db.last_commit().hash());

  const iavl::snapshot last = db.last_commit();
  std::vector<std::string> absent;
  for (int i = 1; i < 2000; i += 7) absent.push_back("k" + std::to_string(i) + "x");  // between k<i> and k<i>0
  const long leaves_before = store->leaf_reads.load();
  for (const std::string& key : absent) {
    EXPECT_FALSE(last.get(key)) << key;
    EXPECT_FALSE(last.has(key)) << key;
  }
  for (int i = 1; i < 2000; i += 5) EXPECT_TRUE(last.has("k" + std::to_string(i)));
  std::int64_t rank = 0;
  for (const auto& [key, value] : m) {  // index_of() needs no leaf either (but the smallest key's)
    if (rank % 9 == 0 && rank > 0) {
      EXPECT_EQ(last.index_of(key), rank) << key;
    } else if (rank % 9 == 1) {
      EXPECT_EQ(last.index_of(key + "x"), std::nullopt) << key;
    }
    ++rank;
  }
  EXPECT_EQ(store->leaf_reads.load(), leaves_before);
  EXPECT_GT(store->node_reads.load(), 0);  // the paths were read from the store

  ASSERT_EQ(last.get("a"), std::nullopt);  // below every key: the smallest leaf is read
  EXPECT_EQ(store->leaf_reads.load(), leaves_before + 1);

  iavl::tree t = db.branch();
  iavl::tree u = in_memory.branch();
  const long leaves_before_writes = store->leaf_reads.load();
  for (const std::string& key : absent) {
    ASSERT_EQ(t.set(key, "new " + key), iavl::set_result::inserted);
    u.set(key, "new " + key);
    m[key] = "new " + key;
  }
  for (int i = 1; i < 2000; i += 11) {  // updates without a lookup
    const std::string key = "k" + std::to_string(i);
    t.set(key, "updated");
    u.set(key, "updated");
    m[key] = "updated";
  }
  for (int i = 3; i < 2000; i += 13) {  // removals: the path says the key is there
    const std::string key = "k" + std::to_string(i);
    EXPECT_TRUE(t.has(key));
    ASSERT_TRUE(t.remove(key));
    ASSERT_TRUE(u.remove(key));
    m.erase(key);
  }
  EXPECT_EQ(store->leaf_reads.load(), leaves_before_writes);
  const iavl::snapshot written = db.commit(std::move(t));
  EXPECT_EQ(written.hash(), in_memory.commit(std::move(u)).hash());
  written.verify();
  expect_contents(written, m);
  EXPECT_GT(store->leaf_reads.load(), leaves_before_writes);  // expect_contents read the leaves
}

// After a commit the cache leaves room for a next version as large (up to half the budget): a
// large commit's nodes would otherwise come on top of a full cache, and the node pool keeps the
// memory of that peak. A small commit leaves little room.
TYPED_TEST(StoredTree, TrimmingLeavesRoomForAVersionAsLargeAsTheLast) {
  iavl::options o = this->opts();
  o.cache_bytes = 64 << 10;
  const auto budget = static_cast<std::int64_t>(o.cache_bytes);
  iavl::versioned_tree db(o);
  model m = commit_keys(db, 3000);  // a version of many times the budget
  db.wait_for_writes();
  db.trim_cache();  // runs the trim the commit scheduled, and waits until it has freed
  EXPECT_LE(db.cached_bytes(), budget / 10 * 9 - budget / 2);
  EXPECT_GT(db.cached_bytes(), 0);

  expect_contents(db.last_commit(), m);  // loads every node again
  iavl::tree u = db.branch();
  u.set("k0", "small");
  m["k0"] = "small";
  (void)db.commit(std::move(u));
  db.wait_for_writes();
  db.trim_cache();
  EXPECT_LE(db.cached_bytes(), budget);
  EXPECT_GT(db.cached_bytes(), budget / 2);
  expect_contents(db.last_commit(), m);
}

TYPED_TEST(StoredTree, EmptyTreesAndEmptyKeysPersist) {
  {
    iavl::versioned_tree db(this->opts());
    (void)db.commit(db.branch());  // version 1: empty
    iavl::tree t = db.branch();
    t.set("", "");
    (void)db.commit(std::move(t));
    iavl::tree u = db.branch();
    u.remove("");
    (void)db.commit(std::move(u));
  }
  iavl::versioned_tree db(this->opts());
  EXPECT_EQ(db.latest_version(), 3);
  EXPECT_EQ(db.at(1).hash(), iavl::empty_tree_hash());
  EXPECT_EQ(db.at(2).get(""), "");
  EXPECT_TRUE(db.at(3).empty());
}

// A commit writes nothing outside its version's run of node keys (so that LevelDB need not merge
// the tables it flushes), except every 1024th, which indexes the versions since the last one.
TYPED_TEST(StoredTree, CommitsWriteOnlyTheirOwnRunBetweenIndexCommits) {
  auto meta_records = [&] {
    std::vector<std::string> names;
    this->backend.open()->scan_meta("", [&](std::string_view name, std::string_view) {
      names.emplace_back(name);
      return true;
    });
    return names;
  };
  iavl::versioned_tree db(iavl::options{.store = this->backend.open(), .sync = false});
  for (int v = 1; v <= 1023; ++v) {
    iavl::tree t = db.branch();
    t.set("k" + std::to_string(v % 50), std::to_string(v));
    (void)db.commit(std::move(t));
  }
  EXPECT_EQ(meta_records(), std::vector<std::string>{"format"});
  (void)db.commit(db.branch());                     // version 1024
  EXPECT_EQ(meta_records().size(), 1 + 1024 + 1U);  // format, one index record a version, "indexed"
}

// The kept versions are found again on opening, whether or not they are indexed yet, after
// pruning, deleting and rolling back across the index.
TYPED_TEST(StoredTree, KeptVersionsSurviveReopeningAcrossTheIndex) {
  std::mt19937_64 rng(7);
  std::map<std::int64_t, iavl::hash256> hashes;  // of every version committed
  auto commit_until = [&](iavl::versioned_tree& db, std::int64_t last) {
    while (db.latest_version() < last) {
      iavl::tree t = db.branch();
      for (int i = 0; i < 3; ++i) t.set("k" + std::to_string(rng() % 200), std::to_string(rng()));
      const iavl::snapshot s = db.commit(std::move(t));
      hashes[s.version()] = s.hash();
    }
  };
  auto expect_versions_survive_reopening = [&](std::unique_ptr<iavl::versioned_tree>& db) {
    const std::vector<std::int64_t> before = db->versions();
    db.reset();
    db = std::make_unique<iavl::versioned_tree>(iavl::options{.store = this->backend.open(), .sync = false});
    ASSERT_EQ(db->versions(), before);
    for (std::int64_t v : {before.front(), before[before.size() / 2], before.back()}) {
      EXPECT_EQ(db->at(v).hash(), hashes.at(v)) << v;
    }
    db->last_commit().verify();
  };
  auto db = std::make_unique<iavl::versioned_tree>(iavl::options{.store = this->backend.open(), .sync = false});
  commit_until(*db, 1000);  // none indexed yet
  db->delete_version(10);
  expect_versions_survive_reopening(db);
  commit_until(*db, 2100);   // indexed through 2048
  db->delete_version(500);   // indexed before: its index record goes too
  db->delete_version(2070);  // not indexed yet
  db->delete_versions_before(300);
  expect_versions_survive_reopening(db);
  EXPECT_EQ(db->versions().size(), 2100U - 299 - 2);
  db->rollback_to(1500);  // below the index: later commits reuse the versions above it
  commit_until(*db, 1600);
  expect_versions_survive_reopening(db);
  EXPECT_EQ(db->latest_version(), 1600);
  EXPECT_EQ(db->at(1600).hash(), hashes.at(1600));
  commit_until(*db, 2050);  // indexed through 2048 again
  expect_versions_survive_reopening(db);
  EXPECT_EQ(db->versions().size(), 2050U - 299 - 1);
}

TYPED_TEST(StoredTree, TreesOfAnotherDatabaseAreStale) {
  iavl::versioned_tree db(this->opts());
  iavl::versioned_tree other;
  EXPECT_THROW((void)db.commit(other.branch()), iavl::error);
  EXPECT_THROW((void)db.commit(iavl::tree()), iavl::error);
  EXPECT_NO_THROW((void)db.commit(db.branch()));
}

// ---- failures -----------------------------------------------------------------------------------

using test_support::failing_store;  // fails writes while `fail_writes` is set

TEST(StoreFailures, AFailedCommitChangesNothingAndCanBeRetried) {
  auto store = std::make_shared<failing_store>();
  std::optional<iavl::versioned_tree> db(std::in_place, iavl::options{.store = store});
  iavl::versioned_tree twin;
  iavl::tree a = db->branch(), b = twin.branch();
  for (int i = 0; i < 500; ++i) {
    a.set("k" + std::to_string(i), "v");
    b.set("k" + std::to_string(i), "v");
  }
  (void)db->commit(std::move(a));
  (void)twin.commit(std::move(b));
  a = db->branch();
  b = twin.branch();
  for (int i = 0; i < 500; i += 3) {
    a.set("k" + std::to_string(i), "w");
    b.set("k" + std::to_string(i), "w");
  }
  store->fail_writes = true;
  try {
    (void)db->commit(std::move(a));
    FAIL() << "expected io_error";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::io_error);
  }
  EXPECT_EQ(db->latest_version(), 1);
  EXPECT_EQ(a.get("k3"), "w");
  store->fail_writes = false;
  EXPECT_EQ(db->commit(std::move(a)).hash(), twin.commit(std::move(b)).hash());
  db.reset();  // one versioned_tree on a store at a time
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_EQ(reopened.last_commit().hash(), twin.last_commit().hash());
  reopened.last_commit().verify();
}

// A node read that fails inside a write leaves the working tree half changed (the write had
// taken its root). From then on every use of it, and its commit, throws the read's error, and
// the versions stay as they were. Before, the tree read as empty, and committing it wrote an
// empty version that reported the old root hash.
TEST(StoreFailures, AWriteWhoseNodeReadFailsLosesTheTreeLoudly) {
  auto store = std::make_shared<failing_store>();
  iavl::hash256 first;
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    iavl::tree t = db.branch();
    for (int i = 0; i < 100; ++i) t.set("k" + std::to_string(i), "v");
    first = db.commit(std::move(t)).hash();
  }
  auto expect_lost = [](iavl::versioned_tree& db, iavl::tree& t) {
    const iavl::errc io = iavl::errc::io_error;
    expect_error(io, "get", [&] { (void)t.get("k1"); });
    expect_error(io, "size", [&] { (void)t.size(); });
    expect_error(io, "set", [&] { t.set("k1", "w"); });
    expect_error(io, "working_hash", [&] { (void)t.working_hash(); });
    expect_error(io, "commit", [&] { (void)db.commit(std::move(t)); });
    EXPECT_EQ(db.latest_version(), 1);
  };
  for (const bool removal : {false, true}) {
    SCOPED_TRACE(removal ? "remove" : "set");
    store->reads_left = -1;
    iavl::versioned_tree db(iavl::options{.store = store});  // reopened: the root alone is in memory
    iavl::tree t = db.branch();
    bool failed = false;
    if (!removal) {
      store->reads_left = 0;
      EXPECT_THROW(t.set("k50", "new"), iavl::error);
      failed = true;
    }
    // A removal reads the path first (a failure then changes nothing); what fails part way is a
    // read its rebalancing needs, which some removal meets.
    for (int i = 0; removal && i < 100 && !failed; ++i) {
      const std::string k = "k" + std::to_string(i);
      store->reads_left = -1;
      ASSERT_TRUE(t.has(k));
      store->reads_left = 0;
      try {
        (void)t.remove(k);
      } catch (const iavl::error& e) {
        EXPECT_EQ(e.code(), iavl::errc::io_error);
        failed = true;
      }
    }
    ASSERT_TRUE(failed);
    store->reads_left = -1;  // the store is well again, the tree stays lost
    expect_lost(db, t);
    iavl::tree fresh = db.branch();
    fresh.set("k50", "new");
    EXPECT_EQ(fresh.size(), 100);
  }
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_EQ(reopened.latest_version(), 1);
  EXPECT_EQ(reopened.last_commit().hash(), first);
  EXPECT_EQ(reopened.last_commit().size(), 100);
  reopened.last_commit().verify();
}

// The same at every read a run of writes makes. A read that fails in a removal's lookup, before
// any change, leaves the tree as it was; one that fails part way loses it loudly. Either way
// the versions stay whole, and nothing leaks (the sanitizer build checks that): the failed step
// frees the copies it made, the tree's own nodes and the counts it held.
TEST(StoreFailures, WritesFailingAtAnyOfTheirReadsLeaveTheVersionsWholeAndLeakNothing) {
  auto store = std::make_shared<failing_store>();
  model committed;
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    committed = commit_keys(db, 300);
  }
  std::mt19937_64 rng(5);
  int lost = 0, intact = 0;
  for (int allowed = 0; allowed < 60; ++allowed) {
    SCOPED_TRACE("reads allowed: " + std::to_string(allowed));
    store->reads_left = -1;
    iavl::versioned_tree db(iavl::options{.store = store});  // reopened: nodes load as walks need them
    iavl::tree t = db.branch();
    model m = committed;
    for (int i = 0; i < 20; ++i) {  // own nodes, and counted loads below them
      t.set("new" + std::to_string(i), "x");
      m["new" + std::to_string(i)] = "x";
    }
    store->reads_left = allowed;
    try {
      for (int i = 0; i < 40; ++i) {
        const std::string k = "k" + std::to_string(rng() % 300);
        if (i % 2 == 0) {
          (void)t.remove(k);
          m.erase(k);
        } else {
          t.set(k, "y");
          m[k] = "y";
        }
      }
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
      store->reads_left = -1;
      try {
        model seen;
        for (auto [key, value] : t.range()) seen.emplace(key, value);
        EXPECT_EQ(seen, m);  // as before the failed write
        t.verify();
        ++intact;
      } catch (const iavl::error& lost_error) {
        EXPECT_EQ(lost_error.code(), iavl::errc::io_error) << lost_error.what();
        ++lost;
      }
    }
  }
  EXPECT_GT(lost, 10);
  EXPECT_GT(intact, 0);
  store->reads_left = -1;
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_EQ(reopened.latest_version(), 1);
  expect_contents(reopened.last_commit(), committed);
  reopened.last_commit().verify();
}

// A write that fails part way frees what the tree made below the failure, among it subtrees the
// tree handed to the helper thread to hash (tree::hand_over), which the helper may be reading at
// that moment or may reach later: they are freed only once the helper is done with them (under
// AddressSanitizer, freeing them before is a use after free on the helper's side).
TEST(StoreFailures, AWriteFailingWhileTheHelperHashesFreesNothingTheHelperHolds) {
  auto store = std::make_shared<failing_store>();
  model committed;
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    committed = commit_keys(db, 50000);  // subtrees of height 10 (what is handed over) hold 500 keys or so
  }
  iavl::versioned_tree db(iavl::options{.store = store});  // reopened: nodes load as walks need them
  const std::uint64_t hashed_before = iavl::detail::subtrees_hashed_by_helper.load();
  std::mt19937_64 rng(3);
  int failures = 0;
  for (int round = 0; round < 5; ++round) {
    store->reads_left = -1;
    iavl::tree t = db.branch();
    for (int i = 0; i < 3000; ++i) t.set("k" + std::to_string(rng() % 50000), "y");
    store->reads_left = 0;
    try {
      for (int i = 0; i < 50000; ++i) t.set("k" + std::to_string(rng() % 50000), "z");
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
      ++failures;
    }
    store->reads_left = -1;
    expect_error(iavl::errc::io_error, "lost", [&] { (void)t.get("k1"); });
  }
  EXPECT_EQ(failures, 5);
  EXPECT_GT(iavl::detail::subtrees_hashed_by_helper.load(), hashed_before) << "nothing was handed over";
  expect_contents(db.last_commit(), committed);
  db.last_commit().verify();
}

// A deferred (check) tree applies its log when a read needs the nodes: a read failing there,
// after part of the log is in the nodes, loses the tree too (it committed without the rest).
TEST(StoreFailures, ADeferredTreeWhoseLogFailsHalfAppliedIsLost) {
  auto store = std::make_shared<failing_store>();
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    (void)commit_keys(db, 4);
  }
  iavl::versioned_tree db(iavl::options{.store = store});  // reopened: the root alone is in memory
  iavl::tree t = db.branch(iavl::writes::deferred);
  ASSERT_TRUE(t.remove("k0"));
  ASSERT_TRUE(t.remove("k1"));  // after k0's removal, k1's leaf is the smallest and not loaded
  store->reads_left = 0;
  expect_error(iavl::errc::io_error, "height", [&] { (void)t.height(); });
  store->reads_left = -1;
  expect_error(iavl::errc::io_error, "size", [&] { (void)t.size(); });
  expect_error(iavl::errc::io_error, "commit", [&] { (void)db.commit(std::move(t)); });
  EXPECT_EQ(db.latest_version(), 1);
  EXPECT_EQ(db.last_commit().size(), 4);
}

// trim_cache() unloads what a store holds; with background writes the latest version may not be
// there yet. It freed that version's nodes while the writer was encoding them (a use after free
// under ASan) and reads of it failed ("missing from the node store"). It waits for the write.
TEST(StoreFailures, TrimmingDuringABackgroundWriteKeepsTheVersionBeingWritten) {
  auto store = iavl::open_memory_store();
  iavl::versioned_tree twin;
  model m;
  {
    iavl::versioned_tree db(iavl::options{.store = store, .cache_bytes = 1, .background_writes = true});
    for (int v = 1; v <= 12; ++v) {
      SCOPED_TRACE("version " + std::to_string(v));
      iavl::tree t = db.branch(), u = twin.branch();
      for (int i = 0; i < 2000; ++i) {
        const std::string k = "k" + std::to_string((i * 7919 + v * 31) % 5000);
        t.set(k, "v" + std::to_string(v));
        u.set(k, "v" + std::to_string(v));
        m[k] = "v" + std::to_string(v);
      }
      (void)db.commit(std::move(t));
      (void)twin.commit(std::move(u));
      db.trim_cache();
      EXPECT_NO_THROW(expect_contents(db.last_commit(), m));
    }
    db.wait_for_writes();
  }
  iavl::versioned_tree reopened(iavl::options{.store = store});
  for (const std::int64_t v : reopened.versions()) EXPECT_EQ(reopened.at(v).hash(), twin.at(v).hash()) << v;
  reopened.last_commit().verify();
}

// rollback_to reads the version it returns to before it deletes anything: a read failing there
// deleted the newer versions' roots first, and the process went on building on them.
TEST(StoreFailures, ARollbackWhoseReadFailsChangesNothing) {
  auto store = std::make_shared<failing_store>();
  iavl::versioned_tree twin;
  {
    iavl::versioned_tree db(iavl::options{.store = store, .cache_bytes = 1});
    auto commit_both = [&](int v) {
      iavl::tree t = db.branch(), u = twin.branch();
      for (int i = 0; i < 50; ++i) {
        const std::string k = "k" + std::to_string((i * 7 + v * 13) % 80);
        t.set(k, "v" + std::to_string(v));
        u.set(k, "v" + std::to_string(v));
      }
      (void)db.commit(std::move(t));
      (void)twin.commit(std::move(u));
    };
    for (int v = 1; v <= 6; ++v) commit_both(v);
    db.trim_cache();  // version 3's root is then read from the store
    store->reads_left = 0;
    expect_error(iavl::errc::io_error, "rollback_to", [&] { db.rollback_to(3); });
    store->reads_left = -1;
    EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
    commit_both(7);
  }
  iavl::versioned_tree reopened(iavl::options{.store = store});
  ASSERT_EQ(reopened.versions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}));
  for (int v = 1; v <= 7; ++v) EXPECT_EQ(reopened.at(v).hash(), twin.at(v).hash()) << v;
}

// A rollback_to whose deletion of the newer versions' nodes fails has made those versions gone
// already (their roots go first). Opening the store deletes the leftovers; a process that went
// on committing wrote its new versions' runs over them and left the rest for good. It deletes
// them before it writes the next version.
TEST(StoreFailures, ARollbackCutShortLeavesNoRecordsOnceTheProcessGoesOn) {
  auto store = std::make_shared<failing_store>();
  iavl::versioned_tree db(iavl::options{.store = store});
  auto commit = [&](int v, int keys) {
    iavl::tree t = db.branch();
    for (int i = 0; i < keys; ++i) t.set("k" + std::to_string((i * 7 + v * 13) % 90), "v" + std::to_string(v));
    (void)db.commit(std::move(t));
  };
  for (int v = 1; v <= 8; ++v) commit(v, 60);
  store->writes_left = 1;  // the roots' deletion is written, the nodes' fails
  expect_error(iavl::errc::io_error, "rollback_to", [&] { db.rollback_to(6); });
  store->writes_left = -1;
  store->fail_writes = false;
  EXPECT_EQ(db.latest_version(), 6);
  for (int v = 7; v <= 12; ++v) commit(v, 5);
  EXPECT_EQ(stored_nodes(*store), reachable(db).size());
}

// A background deletion's failure is reported by the next call that waits for deletions. When
// that is delete_version, it comes before the call changes anything: that call's own deletion
// went through although it threw, and its retry said the version did not exist.
TEST(StoreFailures, AnEarlierDeletionsErrorComesBeforeADeletionChangesAnything) {
  auto store = std::make_shared<failing_store>();
  iavl::versioned_tree db(iavl::options{.store = store, .keep = {.keep_recent = 2}});
  auto commit = [&](int v) {
    iavl::tree t = db.branch();
    t.set("k" + std::to_string(v), "v");
    (void)db.commit(std::move(t));
  };
  for (int v = 1; v <= 3; ++v) commit(v);
  db.wait_for_pruning();
  store->writes_left = 1;  // version 4 is written; deleting version 2 (retention) then fails
  commit(4);
  expect_error(iavl::errc::io_error, "delete_version", [&] { db.delete_version(3); });
  store->fail_writes = false;
  store->writes_left = -1;
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{3, 4}));
  db.delete_version(3);
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{4}));
}

// A working tree that was moved from, as a commit does, says so instead of reading as empty.
TEST(StoreFailures, AMovedFromTreeSaysSo) {
  iavl::versioned_tree db;
  iavl::tree t = db.branch();
  t.set("k", "v");
  (void)db.commit(std::move(t));
  iavl::tree u = db.branch();
  iavl::tree w = std::move(u);
  for (iavl::tree* gone : {&t, &u}) {
    const iavl::errc misuse = iavl::errc::invalid_argument;
    expect_error(misuse, "get", [&] { (void)gone->get("k"); });
    expect_error(misuse, "size", [&] { (void)gone->size(); });
    expect_error(misuse, "set", [&] { gone->set("a", "b"); });
    expect_error(misuse, "commit", [&] { (void)db.commit(std::move(*gone)); });
  }
  EXPECT_EQ(w.get("k"), "v");
  u = db.branch();  // a new tree in its place is fine
  EXPECT_EQ(u.size(), 1);
}

TEST(StoreFailures, AFailedBackgroundWriteStopsLaterCommits) {
  auto store = std::make_shared<failing_store>();
  iavl::versioned_tree db(iavl::options{.store = store, .background_writes = true});
  iavl::tree a = db.branch();
  a.set("k", "1");
  (void)db.commit(std::move(a));
  db.wait_for_writes();
  EXPECT_EQ(db.durable_version(), 1);
  store->fail_writes = true;
  a = db.branch();
  a.set("k", "2");
  (void)db.commit(std::move(a));  // version 2 is in memory; its write fails in the background
  for (int attempt = 0; attempt < 2; ++attempt) {
    iavl::tree b = db.branch();
    b.set("k", "3");
    try {
      (void)db.commit(std::move(b));
      FAIL() << "a commit after a failed write must fail";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
    }
  }
  EXPECT_EQ(db.durable_version(), 1);
  store->fail_writes = false;
  iavl::versioned_tree reopened(iavl::options{.store = store->inner});
  EXPECT_EQ(reopened.latest_version(), 1);  // what reached the store, and nothing torn
  EXPECT_EQ(reopened.last_commit().get("k"), "1");
}

// A version whose records pass version_piece_bytes (4 MiB) reaches the store in several writes,
// the root record in the last: cut short, it must leave the store at the version before, with
// the pieces that did arrive dropped when the store is opened again.
// `t` with 60,000 keys of 100-byte values set: over 4 MiB of node records, which a commit writes
// in pieces (versioned_tree::version_piece_bytes).
iavl::tree large_version(iavl::tree t) {
  for (int i = 0; i < 60000; ++i) t.set("key" + std::to_string(i), std::string(100, static_cast<char>('a' + i % 26)));
  return t;
}

TEST(StoreFailures, ALargeVersionIsWrittenInPiecesAndKeptOnlyWhole) {
  auto store = std::make_shared<failing_store>();
  iavl::versioned_tree twin;
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    iavl::tree a = db.branch();
    a.set("key1", "one");
    (void)db.commit(std::move(a));
    store->writes_left = 1;  // the first piece of version 2 arrives, the second fails
    const long before = store->writes;
    try {
      (void)db.commit(large_version(db.branch()));
      FAIL() << "expected io_error";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
    }
    EXPECT_EQ(store->writes - before, 1);
    bool piece_stored = false;
    store->inner->scan_nodes(2, 2, [&](iavl::node_key) {
      piece_stored = true;
      return false;
    });
    ASSERT_TRUE(piece_stored);  // else this test would not test a torn version
  }
  store->writes_left = -1;
  store->fail_writes = false;
  std::optional<iavl::versioned_tree> reopened(std::in_place, iavl::options{.store = store});
  EXPECT_EQ(reopened->latest_version(), 1);
  EXPECT_EQ(reopened->last_commit().get("key1"), "one");
  bool leftover = false;
  store->inner->scan_nodes(2, INT64_MAX, [&](iavl::node_key) {
    leftover = true;
    return false;
  });
  EXPECT_FALSE(leftover);

  // Whole, the same version arrives in several writes and reads back as the in-memory tree.
  iavl::tree a = twin.branch();
  a.set("key1", "one");
  (void)twin.commit(std::move(a));
  const long before = store->writes;
  const iavl::snapshot two = reopened->commit(large_version(reopened->branch()));
  EXPECT_GE(store->writes - before, 2);
  EXPECT_EQ(two.hash(), twin.commit(large_version(twin.branch())).hash());
  reopened.reset();  // one versioned_tree on a store at a time
  iavl::versioned_tree again(iavl::options{.store = store});
  EXPECT_EQ(again.latest_version(), 2);
  EXPECT_EQ(again.last_commit().hash(), two.hash());
  EXPECT_EQ(again.last_commit().get("key59999"), std::string(100, static_cast<char>('a' + 59999 % 26)));
  again.last_commit().verify();
}

// After a large version's write failed part of the way, the same version committed again, now a
// smaller tree, leaves none of the first attempt's records in its run.
TEST(StoreFailures, AVersionCommittedAgainAfterAFailedWriteKeepsNoRecordsOfTheFirstAttempt) {
  auto store = std::make_shared<failing_store>();
  std::optional<iavl::versioned_tree> db(std::in_place, iavl::options{.store = store});
  iavl::tree a = db->branch();
  a.set("key1", "one");
  (void)db->commit(std::move(a));
  store->writes_left = 1;  // the first piece of version 2 arrives, the second fails
  EXPECT_THROW((void)db->commit(large_version(db->branch())), iavl::error);
  store->writes_left = -1;
  store->fail_writes = false;
  auto records_of_version_2 = [&] {
    long count = 0;
    store->inner->scan_nodes(2, 2, [&](iavl::node_key) { return ++count > 0; });
    return count;
  };
  ASSERT_GT(records_of_version_2(), 1000);  // else this test would not test a torn version

  iavl::tree small = db->branch();
  small.set("key2", "two");
  const iavl::snapshot two = db->commit(std::move(small));
  EXPECT_EQ(records_of_version_2(), 3);  // the root record, a leaf and their parent
  db.reset();                            // one versioned_tree on a store at a time
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_EQ(reopened.last_commit().hash(), two.hash());
  EXPECT_EQ(reopened.last_commit().get("key2"), "two");
  reopened.last_commit().verify();
}

// A memory store holding one version of `keys` keys.
std::shared_ptr<iavl::node_store> store_of_one_version(int keys) {
  auto store = iavl::open_memory_store();
  iavl::versioned_tree db(iavl::options{.store = store});
  iavl::tree t = db.branch();
  for (int i = 0; i < keys; ++i) t.set("k" + std::to_string(i), "v");
  (void)db.commit(std::move(t));
  return store;
}

TEST(StoreFailures, AMissingNodeIsATypedError) {
  auto store = store_of_one_version(100);
  iavl::write_batch damage;
  damage.delete_nodes.push_back({1, 5});
  store->write(damage, true);
  iavl::versioned_tree db(iavl::options{.store = store});
  try {
    db.last_commit().verify();
    FAIL() << "expected corruption";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::corruption);
    EXPECT_NE(std::string(e.what()).find("node 1/5"), std::string::npos) << e.what();
  }
}

// A snapshot held while its version is deleted (or rolled back and committed anew) reads what is
// in memory; a read that needs a node the deletion removed is version_not_found, not corruption:
// the store is whole, the version is gone. Each kind of read (and a working tree's writes, which
// read) is tried on its own snapshot.
TEST(StoreFailures, AHeldSnapshotOfAVersionGoneFromTheStoreSaysSo) {
  using read_fn = std::function<void(const iavl::snapshot&)>;
  const std::vector<std::pair<const char*, read_fn>> reads = {
      {"get",
       [](const iavl::snapshot& s) {
         for (int i = 0; i < 3000; ++i) (void)s.get("k" + std::to_string(i));
       }},
      {"has",
       [](const iavl::snapshot& s) {
         for (int i = 0; i < 3000; ++i) (void)s.has("k" + std::to_string(i));
       }},
      {"at",
       [](const iavl::snapshot& s) {
         for (int i = 0; i < 3000; ++i) (void)s.at(i);
       }},
      {"index_of",
       [](const iavl::snapshot& s) {
         for (int i = 0; i < 3000; ++i) (void)s.index_of("k" + std::to_string(i));
       }},
      {"range",
       [](const iavl::snapshot& s) {
         for (auto entry : s.range()) (void)entry;
       }},
      {"verify", [](const iavl::snapshot& s) { s.verify(); }},
      {"membership_proof",
       [](const iavl::snapshot& s) {
         for (int i = 0; i < 3000; ++i) (void)iavl::membership_proof(s, "k" + std::to_string(i));
       }},
      {"export_state",
       [](const iavl::snapshot& s) {
         std::ostringstream out;
         (void)iavl::export_state(s, out);
       }},
      {"set on a working tree",
       [](const iavl::snapshot& s) {
         iavl::tree t = s.branch();
         for (int i = 0; i < 3000; ++i) t.set("k" + std::to_string(i), "w");
       }},
      {"remove on a working tree",
       [](const iavl::snapshot& s) {
         iavl::tree t = s.branch();
         for (int i = 0; i < 3000; ++i) (void)t.remove("k" + std::to_string(i));
       }},
  };
  // Version 2 rolled back and committed again with other content, or with the same content
  // hashed part way through the block: the same hash, other node records under the same keys.
  enum class gone { deleted, rolled_back, committed_again_alike };
  for (const gone how : {gone::deleted, gone::rolled_back, gone::committed_again_alike}) {
    for (const auto& [name, read] : reads) {
      SCOPED_TRACE(std::string(name) + ", case " + std::to_string(static_cast<int>(how)));
      auto store = iavl::open_memory_store();
      iavl::versioned_tree db(iavl::options{.store = store, .cache_bytes = 64 << 10});
      (void)commit_keys(db, 3000);
      (void)commit_keys(db, 3000);  // the same keys: version 2 replaces every leaf of version 1
      db.trim_cache();              // the commit's trim done: most nodes are in the store only
      const iavl::snapshot held = db.at(how == gone::deleted ? 1 : 2);
      if (how == gone::deleted) {
        db.delete_version(1);
      } else {
        db.rollback_to(1);
        iavl::tree t = db.branch();
        if (how == gone::rolled_back) {
          t.set("k0", "another version 2");
        } else {
          for (int k = 0; k < 3000; ++k) {
            t.set("k" + std::to_string(k), "value of k" + std::to_string(k));
            if (k % 300 == 0) (void)t.working_hash();
          }
        }
        const iavl::snapshot again = db.commit(std::move(t));
        ASSERT_EQ(again.hash() == held.hash(), how == gone::committed_again_alike);
      }
      try {
        read(held);
        FAIL() << "every read found its nodes";
      } catch (const iavl::error& e) {
        EXPECT_EQ(e.code(), iavl::errc::version_not_found) << e.what();
        EXPECT_NE(std::string(e.what()).find(how == gone::deleted ? "version 1" : "version 2"), std::string::npos)
            << e.what();
      }
    }
  }
}

// A failed read leaves an iterator where it was: retried, it goes on from there. (It had taken
// the subtree it was entering off its list before the read: a retry skipped that subtree.)
TEST(StoreFailures, AnIteratorWhoseReadFailsCanBeRetriedAndSkipsNothing) {
  auto store = std::make_shared<test_support::failing_store>();
  iavl::versioned_tree db(iavl::options{.store = store, .cache_bytes = 64 << 10});
  const model m = commit_keys(db, 3000);
  (void)db.commit(db.branch());
  for (const iavl::order o : {iavl::order::ascending, iavl::order::descending}) {
    const iavl::snapshot s = db.at(1);  // its root read anew: every other node is read in the walk
    model seen;
    int failures = 0;
    const iavl::entry_range range = s.range(std::nullopt, std::nullopt, o);
    for (auto it = range.begin(); it != std::default_sentinel;) {
      seen.emplace((*it).key, (*it).value);
      if (seen.size() % 5 == 0) store->reads_left = 0;  // the next read fails
      for (;;) {
        try {
          ++it;
          break;
        } catch (const iavl::error& e) {
          ASSERT_EQ(e.code(), iavl::errc::io_error) << e.what();
          ++failures;
          store->reads_left = -1;
        }
      }
    }
    store->reads_left = -1;
    EXPECT_GT(failures, 100);
    EXPECT_EQ(seen, m);
  }
}

// A node_store subclass with value semantics: the claim is not part of a store's value.
class copyable_store : public iavl::node_store {
 public:
  bool read_node(iavl::node_key k, std::string& out) const override { return inner->read_node(k, out); }
  bool read_meta(std::string_view n, std::string& out) const override { return inner->read_meta(n, out); }
  void scan_meta(std::string_view p, const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    inner->scan_meta(p, fn);
  }
  void scan_nodes(std::int64_t a, std::int64_t b, const std::function<bool(iavl::node_key)>& fn) const override {
    inner->scan_nodes(a, b, fn);
  }
  void write(const iavl::write_batch& batch, bool sync) override { inner->write(batch, sync); }
  std::uint64_t size_bytes() const override { return inner->size_bytes(); }
  std::shared_ptr<iavl::node_store> inner = iavl::open_memory_store();
};

// Two versioned_trees on one store each took their own latest version for the store's: the
// second committed a version 1 over the first's, whose keys were then gone.
TEST(StoreFailures, ASecondVersionedTreeOnAStoreInUseIsRefused) {
  auto store = iavl::open_memory_store();
  std::optional<iavl::versioned_tree> first(std::in_place, iavl::options{.store = store});
  const model m = commit_keys(*first, 100);
  for (int attempt = 0; attempt < 2; ++attempt) {  // a refused one leaves the first's claim
    try {
      const iavl::versioned_tree second(iavl::options{.store = store});
      FAIL() << "a second versioned_tree opened the store";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::invalid_argument) << e.what();
    }
  }
  expect_contents(first->last_commit(), m);
  // A copy of a store in use starts out not in use (here given data of its own).
  auto original = std::make_shared<copyable_store>();
  const iavl::versioned_tree on_original(iavl::options{.store = original});
  auto copy = std::make_shared<copyable_store>(*original);
  copy->inner = iavl::open_memory_store();
  EXPECT_NO_THROW(iavl::versioned_tree(iavl::options{.store = copy}));
  first.reset();  // then the store is free
  const iavl::versioned_tree again(iavl::options{.store = store});
  EXPECT_EQ(again.latest_version(), 1);
  expect_contents(again.last_commit(), m);
}

// A rollback made before a version was read counts for nothing: a node of that version missing
// later is damage. (at() once counted every rollback ever made, and called it version_not_found.)
TEST(StoreFailures, AMissingNodeAfterAnEarlierRollbackIsCorruption) {
  auto store = iavl::open_memory_store();
  iavl::versioned_tree db(iavl::options{.store = store});
  for (int v = 0; v < 2; ++v) (void)commit_keys(db, 100);
  db.rollback_to(1);
  for (int v = 0; v < 3; ++v) (void)commit_keys(db, 100);  // versions 2 to 4
  iavl::write_batch damage;
  store->scan_nodes(3, 3, [&](iavl::node_key k) {
    if (k.nonce > 0) damage.delete_nodes.push_back(k);  // all but the root record
    return true;
  });
  store->write(damage, true);
  try {
    (void)db.at(3);
    FAIL() << "expected corruption";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::corruption) << e.what();
  }
}

TEST(StoreFailures, ADamagedNodeRecordIsATypedError) {
  auto store = store_of_one_version(50);
  // Every truncation and a flipped kind byte of the root record.
  std::string root_bytes;
  std::string root_record;
  ASSERT_TRUE(store->read_node({1, 0}, root_record));  // at the head of the version's run
  std::uint32_t nonce = 0;
  store->scan_nodes(1, 1, [&](iavl::node_key k) { return nonce = k.nonce, true; });  // the root is numbered last
  ASSERT_TRUE(store->read_node({1, nonce}, root_bytes));
  for (std::size_t len = 0; len < root_bytes.size(); ++len) {
    iavl::write_batch b;
    b.put_nodes.add(iavl::node_key{1, nonce}, std::string_view(root_bytes).substr(0, len));
    store->write(b, true);
    try {
      iavl::versioned_tree db(iavl::options{.store = store});
      (void)db.last_commit().get("k1");
      FAIL() << "truncated to " << len;
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::corruption) << e.what();
    }
  }
}

TEST(StoreFailures, ForeignOrOtherFormatStoresAreRejected) {
  auto foreign = iavl::open_memory_store();
  iavl::write_batch b;
  b.put_meta.emplace_back("something", "else");
  foreign->write(b, true);
  try {
    iavl::versioned_tree db(iavl::options{.store = foreign});
    FAIL();
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::not_a_database);
  }
  auto other_format = iavl::open_memory_store();
  iavl::write_batch f;
  f.put_meta.emplace_back("format", "iavl-cpp node store 99");
  other_format->write(f, true);
  try {
    iavl::versioned_tree db(iavl::options{.store = other_format});
    FAIL();
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::format_mismatch);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos);
  }
}

// The index of kept versions is checked on opening: a damaged "indexed" record, an index record
// above it or a damaged root record at the head of a version's run is corruption, not a guess.
TEST(StoreFailures, ADamagedVersionIndexIsATypedError) {
  const auto expect_corruption = [](const std::shared_ptr<iavl::node_store>& store, const char* what) {
    try {
      iavl::versioned_tree db(iavl::options{.store = store});
      ADD_FAILURE() << what << ": opened";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::corruption) << what << ": " << e.what();
    }
  };
  const auto damaged = [](const iavl::write_batch& damage) {
    auto store = iavl::open_memory_store();
    {
      iavl::versioned_tree db(iavl::options{.store = store});
      for (int v = 1; v <= 1030; ++v) {  // indexed through 1024
        iavl::tree t = db.branch();
        t.set("k" + std::to_string(v % 7), std::to_string(v));
        (void)db.commit(std::move(t));
      }
    }
    store->write(damage, true);
    return store;
  };
  iavl::write_batch short_index;
  short_index.put_meta.emplace_back("indexed", "\x04");
  expect_corruption(damaged(short_index), "a short indexed record");
  iavl::write_batch above;
  above.put_meta.emplace_back(std::string("r") + std::string(6, '\0') + std::string("\x05\x00", 2), "");  // 1280
  expect_corruption(damaged(above), "an index record above the indexed versions");
  iavl::write_batch bad_root;
  bad_root.put_nodes.add(iavl::node_key{1029, 0}, "\x01");
  expect_corruption(damaged(bad_root), "a truncated root record after the index");
}

// A node record altered so that it still decodes (a value byte, a byte of a child's hash) is
// found out by the hash its parent keeps of it, in any store: a typed error, not a wrong answer.
TEST(NodeRecords, Crc32cGivesKnownAnswers) {
  using iavl::detail::crc32c;
  using iavl::detail::crc32c_portable;
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  // The check value of CRC-32C and the test vectors of RFC 3720, B.4.
  const std::pair<std::string, std::uint32_t> answers[] = {
      {"", 0},
      {"123456789", 0xe3069283},
      {std::string(32, '\0'), 0x8a9136aa},
      {std::string(32, '\xff'), 0x62a8ab43},
      {ascending, 0x46dd794e},
      {std::string(ascending.rbegin(), ascending.rend()), 0x113fdb5c}};
  for (const auto& [data, crc] : answers) {
    EXPECT_EQ(crc32c(data), crc) << data.size() << " bytes";
    EXPECT_EQ(crc32c_portable(data), crc) << data.size() << " bytes";
  }
  // Every length and alignment around the eight-byte steps: both ways agree.
  std::mt19937_64 rng(7);
  std::string bytes(300, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len = 0; len + offset <= bytes.size(); ++len) {
      const std::string_view data = std::string_view(bytes).substr(offset, len);
      ASSERT_EQ(crc32c(data), crc32c_portable(data)) << offset << "+" << len;
    }
  }
}

// Writes `record` over node `key`, with its checksum made to fit again when `reseal` is set.
void overwrite_record(iavl::node_store& store, iavl::node_key key, std::string record, bool reseal) {
  if (reseal) {
    record.resize(record.size() - 4);
    iavl::detail::append_checksum(record);
  }
  iavl::write_batch damage;
  damage.put_nodes.add(key, record);
  store.write(damage, true);
}

// The keys and values of version_and_record_of()'s version.
model numbered_keys() {
  model m;
  for (int i = 0; i < 64; ++i) m["key" + std::to_string(i)] = "value" + std::to_string(i);
  return m;
}

// A committed version of numbered_keys() in a memory store, and the node key of one of its
// records of `kind` (0 a leaf, 1 an inner node).
std::pair<std::shared_ptr<iavl::node_store>, iavl::node_key> version_and_record_of(std::uint8_t kind) {
  auto store = iavl::open_memory_store();
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    iavl::tree t = db.branch();
    for (const auto& [key, value] : numbered_keys()) t.set(key, value);
    (void)db.commit(std::move(t));
  }
  std::optional<iavl::node_key> victim;
  store->scan_nodes(1, 1, [&](iavl::node_key k) {
    std::string record;
    if (k.nonce != 0 && store->read_node(k, record) && static_cast<std::uint8_t>(record[0]) == kind) victim = k;
    return !victim;
  });
  EXPECT_TRUE(victim);
  return {store, victim.value_or(iavl::node_key{})};
}

// Reads every key of `m` in `s`: each answer given must be the committed one, and each failure
// errc::corruption, saying `reason` unless it is empty. Returns the number of failures.
int answers_or_corruption(const iavl::snapshot& s, const model& m, std::string_view reason) {
  int corrupt = 0;
  for (const auto& [key, value] : m) {
    try {
      EXPECT_EQ(s.get(key), value);
      EXPECT_TRUE(s.has(key));
      EXPECT_FALSE(s.has(key + "x"));
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::corruption) << e.what();
      if (!reason.empty()) {
        EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
      }
      ++corrupt;
    }
  }
  return corrupt;
}

// Reads every key of version_and_record_of()'s version: each answer given must be the committed
// one, and at least one read must fail with errc::corruption saying `reason`.
void expect_typed_errors_only(const std::shared_ptr<iavl::node_store>& store, const std::string& reason) {
  iavl::versioned_tree db(iavl::options{.store = store});
  EXPECT_GT(answers_or_corruption(db.last_commit(), numbered_keys(), reason), 0) << reason;
}

// A record altered but with a checksum that fits (as a bug in a store could make it) is found out
// by the hash its parent keeps of it, in any store: a typed error, not a wrong answer.
TEST(NodeRecords, AnAlteredRecordThatStillDecodesIsCorruption) {
  for (const std::uint8_t kind : {0, 1}) {  // a leaf's value, an inner node's right child hash
    const auto [store, victim] = version_and_record_of(kind);
    std::string record;
    ASSERT_TRUE(store->read_node(victim, record));
    record[record.size() - 5] ^= 1;  // the last byte before the checksum: of the value or hash
    overwrite_record(*store, victim, record, true);
    expect_typed_errors_only(store, "hash");
  }
}

// The split key of an inner node is in no hash (as in cosmos/iavl), and a lookup trusts it: the
// record's checksum finds it damaged, in any store (the LevelDB one: ADamagedSplitKeyIsATypedError).
TEST(NodeRecords, ADamagedSplitKeyIsCorruption) {
  const auto [store, victim] = version_and_record_of(1);
  std::string record;
  ASSERT_TRUE(store->read_node(victim, record));
  record[1 + 1 + static_cast<std::uint8_t>(record[1]) - 1] ^= 1;  // kind, key length, key: its last byte
  overwrite_record(*store, victim, record, false);
  expect_typed_errors_only(store, "checksum mismatch");
}

// Another program's LevelDB database holds keys outside iavl's two prefixes, or inside them but
// not of iavl's form, which iavl's scans do not list: it is no database of ours, and stays
// untouched (it was taken for an empty one and written into).
TEST(LevelDbStore, AnotherProgramsDatabaseIsNotTakenForAnEmptyOne) {
  test_support::temp_dir dir;
  const std::vector<std::string> keys = {"name/bob", "s\x01\x02", "user/alice"};
  for (const std::string& only : keys) {
    SCOPED_TRACE(only);
    const std::string path = (dir.path() / "db").string();
    fs::remove_all(path);
    auto count_keys = [&] {
      leveldb::DB* raw = nullptr;
      EXPECT_TRUE(leveldb::DB::Open(leveldb::Options(), path, &raw).ok());
      std::unique_ptr<leveldb::DB> db(raw);
      std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
      std::size_t n = 0;
      for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
      return n;
    };
    {
      leveldb::Options o;
      o.create_if_missing = true;
      leveldb::DB* raw = nullptr;
      ASSERT_TRUE(leveldb::DB::Open(o, path, &raw).ok());
      std::unique_ptr<leveldb::DB> db(raw);
      ASSERT_TRUE(db->Put(leveldb::WriteOptions(), only, "theirs").ok());
    }
    expect_error(iavl::errc::not_a_database, "opening", [&] {
      iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.create_if_missing = false})});
    });
    EXPECT_EQ(count_keys(), 1u);
  }
}

TEST(LevelDbStore, PathsThatAreNotDatabasesAreRejected) {
  test_support::temp_dir dir;
  const fs::path file = dir.path() / "file";
  std::ofstream(file) << "not a database";
  const fs::path junk = dir.path() / "junk";
  fs::create_directory(junk);
  std::ofstream(junk / "notes.txt") << "hello";
  for (const fs::path& p : {file, junk}) {
    try {
      (void)iavl::open_leveldb_store(p);
      FAIL() << p;
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::not_a_database) << e.what();
    }
  }
  const fs::path empty = dir.path() / "empty";
  fs::create_directory(empty);
  for (const fs::path& p : {dir.path() / "missing", empty}) {
    try {
      (void)iavl::open_leveldb_store(p, {.create_if_missing = false});
      FAIL() << p;
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::not_a_database);
    }
  }
}

// What a creation that failed before LevelDB wrote CURRENT leaves (on a full disk: its lock and
// info log; a manifest, written or not) is no database, and no one else's files either: creating
// the database there works, as in the empty directory it was. Another file beside them is
// still refused. (DiskFull in crash_test.cpp makes the real failure.)
TEST(LevelDbStore, ACreationThatFailedCanBeRetried) {
  test_support::temp_dir dir;
  const fs::path failed = dir.path() / "failed";
  fs::create_directory(failed);
  for (const char* name : {"LOCK", "LOG", "LOG.old", "MANIFEST-000001", "000001.dbtmp"}) std::ofstream(failed / name);
  try {
    (void)iavl::open_leveldb_store(failed, {.create_if_missing = false});
    FAIL();
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::not_a_database) << e.what();
  }
  {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(failed)});
    iavl::tree t = db.branch();
    t.set("k", "v");
    (void)db.commit(std::move(t));
  }
  iavl::versioned_tree reopened(iavl::options{.store = iavl::open_leveldb_store(failed, {.create_if_missing = false})});
  EXPECT_EQ(reopened.last_commit().get("k"), "v");

  const fs::path mixed = dir.path() / "mixed";
  fs::create_directory(mixed);
  std::ofstream(mixed / "LOCK");
  std::ofstream(mixed / "000005.ldb") << "someone's table";
  try {
    (void)iavl::open_leveldb_store(mixed);
    FAIL();
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::not_a_database) << e.what();
  }
}

// LevelDB writes its tables through the store's own file, which starts their writeback every
// MiB: tables of several MiB (memtables of 4 MiB, flushed and compacted) read back whole after a
// reopen.
TEST(LevelDbStore, TablesOfSeveralMiBReadBackWhole) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  model m;
  {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.write_buffer_bytes = 4 << 20})});
    for (int v = 0; v < 3; ++v) {
      iavl::tree t = db.branch();
      for (int i = 0; i < 20000; ++i) {
        const std::string k = "key" + std::to_string(i * 3 + v);
        t.set(k, std::string(200, static_cast<char>('a' + v)) + k);
        m[k] = std::string(200, static_cast<char>('a' + v)) + k;
      }
      (void)db.commit(std::move(t));
    }
  }
  std::uintmax_t largest = 0;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() == ".ldb") largest = std::max(largest, fs::file_size(e.path()));
  }
  EXPECT_GT(largest, std::uintmax_t{2} << 20);  // the writeback ran on it
  iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path)});
  for (std::int64_t v : db.versions()) db.at(v).verify();
  expect_contents(db.last_commit(), m);
}

// The names of the table files of the LevelDB database at `path`.
std::vector<fs::path> table_files(const fs::path& path) {
  std::vector<fs::path> tables;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() == ".ldb") tables.push_back(e.path().filename());
  }
  return tables;
}

// Bloom filters are an option of the store (bloom_bits_per_key): an operator who turns them on or
// off keeps a database whose tables have them and tables that do not. Either reads back whole
// with either setting.
TEST(LevelDbStore, TablesWithAndWithoutBloomFiltersReadBackWholeEitherWay) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  model m;
  auto write_versions = [&](int first, const iavl::leveldb_options& o) {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, o)});
    for (int v = first; v < first + 10; ++v) {
      iavl::tree t = db.branch();
      const std::string value(100, static_cast<char>('a' + v));
      for (int i = 0; i < 300; ++i) {
        const std::string k = "key" + std::to_string(i * 20 + v);
        t.set(k, value);
        m[k] = value;
      }
      (void)db.commit(std::move(t));
    }
  };
  auto read_back = [&](const iavl::leveldb_options& o) {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, o)});
    ASSERT_EQ(db.versions().size(), 20U);
    for (std::int64_t v : db.versions()) db.at(v).verify();  // every node of every version
    expect_contents(db.last_commit(), m);
  };
  const iavl::leveldb_options filtered{.write_buffer_bytes = 64 << 10, .bloom_bits_per_key = 10};
  const iavl::leveldb_options unfiltered{.write_buffer_bytes = 64 << 10, .bloom_bits_per_key = 0};
  write_versions(0, filtered);
  write_versions(10, unfiltered);
  ASSERT_GE(table_files(path).size(), 10U);  // versions of both kinds in tables, not only in the log
  read_back(unfiltered);
  read_back(filtered);
}

// An inner node's split key is in no hash (as in cosmos/iavl): a lookup trusts it to choose its
// way and, for an absent key, to know that the key is absent. A byte of it damaged on disk must
// be a typed error, never a wrong answer, so node reads verify LevelDB's block checksums too.
TEST(LevelDbStore, ADamagedSplitKeyIsATypedError) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  model m;
  {
    // A small memtable, so that the records are in table files, not only in LevelDB's log.
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.write_buffer_bytes = 64 << 10})});
    iavl::tree t = db.branch();
    for (int i = 0; i < 1000; ++i) {
      const std::string k = "key" + std::to_string(1000 + i);
      t.set(k, "value of " + k);
      m[k] = "value of " + k;
    }
    (void)db.commit(std::move(t));
    for (int v = 0; v < 4; ++v) {  // later versions, whose writes flush the records into tables
      iavl::tree later = db.branch();
      for (int i = 0; i < 300; ++i) later.set("zz" + std::to_string(v * 1000 + i), std::string(200, 'z'));
      (void)db.commit(std::move(later));
    }
  }
  // An inner node's record: kind 01, key length 7, then the key (docs/format.md). The middle one
  // of a table: its block is not one that opening the store reads (the head of each version's
  // run), which would make opening fail (ADamagedRootRecordIsCorruptionAndDeletesNothing).
  const std::string pattern("\x01\x07key1", 5);
  std::string bytes;
  fs::path table;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.path().extension() != ".ldb") continue;
    std::ifstream in(e.path(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    if (bytes.find(pattern) != std::string::npos) {
      table = e.path();
      break;
    }
  }
  ASSERT_FALSE(table.empty());
  std::vector<std::size_t> found;
  for (std::size_t i = bytes.find(pattern); i != std::string::npos; i = bytes.find(pattern, i + 1)) found.push_back(i);
  const std::size_t at = found[found.size() / 2] + 2 + 6;  // the key's last byte
  {
    std::fstream f(table, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(bytes[at] ^ 0x01));
  }
  iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.create_if_missing = false})});
  int corrupt = 0;
  for (const std::int64_t v : db.versions()) {  // each holds every key of version 1
    SCOPED_TRACE("version " + std::to_string(v));
    corrupt += answers_or_corruption(db.at(v), m, {});
  }
  EXPECT_GT(corrupt, 0);
}

// LevelDB's iterators step over a table block that fails its checksum and only record the
// error. Opening a store seeks once per version for the root record that heads its run: with
// that record's block damaged, the version was silently absent, and when it was the latest,
// opening deleted its nodes as the pieces of an unfinished write. It must be a typed error that
// deletes nothing: with the byte restored, every version is back.
TEST(LevelDbStore, ADamagedRootRecordIsCorruptionAndDeletesNothing) {
  for (const std::int64_t damaged : {3, 5}) {  // a version in the middle, the latest
    SCOPED_TRACE("version " + std::to_string(damaged));
    test_support::temp_dir dir;
    const fs::path path = dir.path() / "db";
    std::map<std::int64_t, iavl::hash256> hashes;
    {
      iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path)});
      for (int v = 1; v <= 5; ++v) {  // 300 keys a version: its run spans many blocks
        iavl::tree t = db.branch();
        for (int i = 0; i < 300; ++i) t.set("v" + std::to_string(v) + "/" + std::to_string(i), std::string(100, 'x'));
        hashes[v] = db.commit(std::move(t)).hash();
      }
    }
    (void)iavl::open_leveldb_store(path, {.create_if_missing = false});  // its recovery puts the log in a table
    // The root hash is in the version's root record only (the index of versions is written
    // every 1024th version).
    fs::path table;
    std::size_t at = std::string::npos;
    for (const auto& e : fs::directory_iterator(path)) {
      if (e.path().extension() != ".ldb") continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes(std::istreambuf_iterator<char>(in), {});
      const std::size_t found = bytes.find(hashes[damaged].view());
      if (found == std::string::npos) continue;
      ASSERT_EQ(at, std::string::npos) << "the hash is in two places";
      ASSERT_EQ(bytes.find(hashes[damaged].view(), found + 1), std::string::npos);
      table = e.path();
      at = found;
    }
    ASSERT_FALSE(table.empty());
    auto flip = [&] {
      std::fstream f(table, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(static_cast<std::streamoff>(at));
      const char b = static_cast<char>(f.get());
      f.seekp(static_cast<std::streamoff>(at));
      f.put(static_cast<char>(b ^ 0x10));
    };
    flip();
    expect_error(iavl::errc::corruption, "opening", [&] {
      iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.create_if_missing = false})});
    });
    flip();
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.create_if_missing = false})});
    EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
    for (const auto& [v, hash] : hashes) {
      const iavl::snapshot s = db.at(v);
      EXPECT_EQ(s.hash(), hash) << v;
      EXPECT_EQ(s.size(), 300 * v) << v;
      EXPECT_NO_THROW(s.verify()) << v;
    }
  }
}

// A closed LevelDB database of four versions at `path`, its records in table files (small
// memtables); returns the table files' names.
std::vector<fs::path> database_in_tables(const fs::path& path) {
  {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.write_buffer_bytes = 64 << 10})});
    for (int v = 0; v < 4; ++v) {
      iavl::tree t = db.branch();
      for (int i = 0; i < 3000; ++i) t.set("key" + std::to_string(i * 7 + v), std::string(40, 'a' + v));
      (void)db.commit(std::move(t));
    }
  }
  return table_files(path);
}

// Flips bytes in the table files of a closed database: opening or reading it must fail with a
// typed error (LevelDB's block checksums, our record checks), never crash.
TEST(LevelDbStore, DamagedFilesGiveTypedErrors) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  const std::vector<fs::path> tables = database_in_tables(path);
  ASSERT_FALSE(tables.empty());
  int typed_errors = 0;
  for (int round = 0; round < 8; ++round) {
    const test_support::temp_dir copy_dir;
    const fs::path copy = copy_dir.path() / "db";
    fs::copy(path, copy);
    const fs::path victim = copy / tables[round % tables.size()];
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(victim);
    for (int i = 0; i < 16; ++i) {
      f.seekp(static_cast<std::streamoff>((size * (round * 16 + i + 1) / 131) % size));
      f.put(static_cast<char>(0xA5 ^ i));
    }
    f.close();
    try {
      iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(copy)});
      db.last_commit().verify();
      for (std::int64_t v : db.versions()) db.at(v).verify();
    } catch (const iavl::error& e) {
      EXPECT_TRUE(e.code() == iavl::errc::corruption || e.code() == iavl::errc::io_error) << e.what();
      ++typed_errors;
    }
  }
  EXPECT_GT(typed_errors, 0);  // damage to table blocks is detected
}

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

// A table file keeps a descriptor open only within a fifth of the process's limit; the others
// open their file for each read. With a limit lower than the number of tables, every version
// still reads back whole, and the process never needs more descriptors than it may have.
TEST(LevelDbStore, MoreTablesThanTheProcessMayOpenReadBackWhole) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  constexpr int versions = 60;
  {
    // Versions larger than LevelDB's smallest memtable, 64 KiB: each is flushed to a table of its own.
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path, {.write_buffer_bytes = 64 << 10})});
    for (int v = 0; v < versions; ++v) {
      iavl::tree t = db.branch();
      for (int i = 0; i < 300; ++i) t.set("key" + std::to_string(i * versions + v), std::string(100, 'a'));
      (void)db.commit(std::move(t));
    }
  }
  const std::size_t tables = table_files(path).size();
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  const rlim_t low = open_descriptors() + 24;  // LevelDB's log, manifest, lock and info log, and room
  ASSERT_GT(tables, low);                      // so keeping every table open would fail
  rlimit lowered = saved;
  lowered.rlim_cur = low;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  struct restore_at_exit {
    rlimit limit;
    ~restore_at_exit() { (void)::setrlimit(RLIMIT_NOFILE, &limit); }
  } const restoring{saved};
  iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(path)});
  ASSERT_EQ(db.versions().size(), static_cast<std::size_t>(versions));
  for (std::int64_t v : db.versions()) db.at(v).verify();  // every node of every version
  EXPECT_LE(open_descriptors(), low);
}

// A table file cut short is damage, not an I/O failure: LevelDB reads past its end, which its
// environment called EINVAL (io_error "Invalid argument", found by a review helper).
TEST(LevelDbStore, ATruncatedTableFileIsCorruption) {
  test_support::temp_dir dir;
  const fs::path path = dir.path() / "db";
  const std::vector<fs::path> tables = database_in_tables(path);
  ASSERT_FALSE(tables.empty());
  for (const fs::path& table : tables) {
    for (const double kept : {0.0, 0.5, 0.99}) {
      SCOPED_TRACE(table.string() + " cut to " + std::to_string(kept));
      const test_support::temp_dir copy_dir;
      const fs::path copy = copy_dir.path() / "db";
      fs::copy(path, copy);
      fs::resize_file(copy / table,
                      static_cast<std::uintmax_t>(static_cast<double>(fs::file_size(copy / table)) * kept));
      try {
        iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(copy)});
        for (std::int64_t v : db.versions()) db.at(v).verify();
        ADD_FAILURE() << "every version read whole";
      } catch (const iavl::error& e) {
        EXPECT_EQ(e.code(), iavl::errc::corruption) << e.what();
      }
    }
  }
}

}  // namespace
