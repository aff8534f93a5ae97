// Thread-safety of committed snapshots. Also run under ThreadSanitizer (scripts/test.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "iavl/iavl.hpp"
#include "iavl/node_store.hpp"

namespace {

// Readers on other threads walk committed snapshots while this thread builds, commits and drops
// versions. Run under ThreadSanitizer by the sanitizer build.
TEST(Concurrency, ReadersOfCommittedVersionsWhileWriting) {
  iavl::versioned_tree db;
  {
    iavl::tree t = db.branch();
    for (int i = 0; i < 2000; ++i) t.set("k" + std::to_string(i), "0");
    (void)db.commit(std::move(t));
  }
  std::atomic<bool> stop{false};
  std::atomic<long> checks{0};
  auto reader = [&] {
    while (!stop.load()) {
      const iavl::snapshot s = db.last_commit();
      const std::string expect = std::to_string(s.version() - 1);
      long n = 0;
      for (auto [key, value] : s.range()) {
        if (value != "0" && value != expect && s.version() > 1) {
          ADD_FAILURE() << "torn read at version " << s.version() << ": " << value;
          return;
        }
        ++n;
      }
      if (n != s.size()) ADD_FAILURE() << "iterated " << n << " of " << s.size();
      (void)s.get("k7");
      checks.fetch_add(1);
    }
  };
  std::thread r1(reader), r2(reader);
  for (int v = 2; v <= 60; ++v) {
    iavl::tree check = db.branch();
    iavl::tree deliver = db.branch();
    for (int i = 0; i < 2000; i += 7) {
      check.set("k" + std::to_string(i), "check");
      deliver.set("k" + std::to_string(i), std::to_string(v - 1));
    }
    (void)db.commit(std::move(deliver));
    if (v > 5) db.delete_version(v - 4);
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(checks.load(), 0);
  db.last_commit().verify();
}

// The same with a store and a cache far smaller than the tree: the writer unloads subtrees
// that readers on other threads are walking or loading at the same moment.
TEST(Concurrency, ReadersWhileTheCacheEvicts) {
  iavl::options o;
  o.store = iavl::open_memory_store();
  o.cache_bytes = 32 << 10;
  iavl::versioned_tree db(o);
  {
    iavl::tree t = db.branch();
    for (int i = 0; i < 3000; ++i) t.set("k" + std::to_string(i), "0");
    (void)db.commit(std::move(t));
  }
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  auto reader = [&] {
    while (!stop.load()) {
      const iavl::snapshot s = db.last_commit();
      long n = 0;
      for (auto [key, value] : s.range("k1", "k2")) {
        (void)key;
        (void)value;
        ++n;
      }
      if (n == 0) ADD_FAILURE() << "empty range";
      for (int i = 0; i < 50; ++i) {
        if (!s.get("k" + std::to_string(i * 59 % 3000))) ADD_FAILURE() << "missing key";
      }
      reads.fetch_add(1);
    }
  };
  std::thread r1(reader), r2(reader);
  for (int v = 2; v <= 40; ++v) {
    iavl::tree deliver = db.branch();
    for (int i = v; i < 3000; i += 11) deliver.set("k" + std::to_string(i), std::to_string(v));
    (void)db.commit(std::move(deliver));
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(reads.load(), 0);
  db.last_commit().verify();
}

}  // namespace
