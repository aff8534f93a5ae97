// Thread-safety of committed snapshots. Also run under ThreadSanitizer (scripts/test.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "iavl/detail/store_context.hpp"
#include "iavl/iavl.hpp"
#include "iavl/node_store.hpp"
#include "support/failing_store.hpp"

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

// A working tree hands the parts of its new nodes that its next writes seldom change to the
// helper thread to hash meanwhile, and takes back those it writes to again before the helper
// starts them, or waits for the helper to be done with them (tree::hand_over). Whatever the helper
// did, the hashes must be those of a tree hashed whole at its commit: a deferred one's, which
// hands nothing over. Blocks of many writes to 40,000 keys change most subtrees again, so that
// every case comes up; with a store and a small cache, the tree also loads children into nodes
// the helper is hashing. Run under ThreadSanitizer too.
TEST(Concurrency, HashingHandedToTheHelperMatchesHashingAtCommit) {
  for (const bool with_store : {false, true}) {
    iavl::options o;
    if (with_store) {
      o.store = iavl::open_memory_store();
      o.cache_bytes = 512 << 10;
    }
    iavl::versioned_tree handing(o);
    iavl::options r;
    if (with_store) r.store = iavl::open_memory_store();
    iavl::versioned_tree reference(r);
    std::mt19937 rng(11);
    for (int v = 1; v <= 8; ++v) {
      const std::uint64_t hashed_before = iavl::detail::subtrees_hashed_by_helper.load();
      iavl::tree a = handing.branch();
      iavl::tree b = reference.branch(iavl::writes::deferred);
      const int writes = v == 1 ? 40000 : 6000;
      for (int i = 0; i < writes; ++i) {
        const std::string key = "k" + std::to_string(v == 1 ? i : static_cast<int>(rng() % 44000));
        if (v > 1 && rng() % 8 == 0) {
          EXPECT_EQ(a.remove(key), b.remove(key)) << key;
        } else {
          EXPECT_EQ(a.set(key, std::to_string(v)), b.set(key, std::to_string(v))) << key;
        }
        if (i == writes / 2) {  // hashing mid-block: the writes after it change hashed nodes
          ASSERT_EQ(a.working_hash(), b.working_hash()) << "version " << v;
          if (v % 3 == 0) a.verify();
        }
      }
      ASSERT_EQ(handing.commit(std::move(a)).hash(), reference.commit(std::move(b)).hash()) << "version " << v;
      EXPECT_GT(iavl::detail::subtrees_hashed_by_helper.load(), hashed_before) << "nothing handed over at " << v;
    }
    handing.last_commit().verify();
  }
}

// A commit that finds the previous version still being written encodes its nodes itself until
// the writer is free, and the writer encodes the rest: with each write held until a random moment
// of the next commit, every version must reach the store whole, whichever thread encoded which of
// its nodes (about a third of the commits hand a partly encoded version over).
TEST(Concurrency, BackgroundWritesStoreEveryNodeWhicheverThreadEncodesIt) {
  auto store = std::make_shared<test_support::failing_store>();
  std::vector<iavl::hash256> hashes;
  std::mt19937 rng(7);
  {
    iavl::options o;
    o.store = store;
    o.background_writes = true;
    iavl::versioned_tree db(o);
    const long before = store->writes;
    store->release_through = before;  // each version's write is held until the next commit began
    for (int v = 1; v <= 40; ++v) {
      iavl::tree t = db.branch();
      for (int i = 0; i < 2000; ++i) t.set("k" + std::to_string(rng() % 20000), "v" + std::to_string(v));
      const std::chrono::microseconds delay(rng() % 1000);  // encoding 8,000 nodes takes longer
      std::thread release([&] {
        std::this_thread::sleep_for(delay);
        store->release_through = before + v - 1;
      });
      hashes.push_back(db.commit(std::move(t)).hash());
      release.join();
    }
    store->release_through = LONG_MAX;
    db.wait_for_writes();
  }
  iavl::options reopen;
  reopen.store = store->inner;
  iavl::versioned_tree reopened(reopen);
  ASSERT_EQ(reopened.latest_version(), 40);
  for (int v = 1; v <= 40; ++v) {
    const iavl::snapshot s = reopened.at(v);
    EXPECT_EQ(s.hash(), hashes[static_cast<std::size_t>(v - 1)]) << v;
    s.verify();  // loads every node of the version from the store
  }
}

// helper_thread::both runs each half exactly once and returns only when both are done, whether
// the helper runs `a` or the caller takes it back because the helper had not started it yet.
TEST(HelperThread, EachHalfRunsOnceAndIsDoneOnReturn) {
  iavl::detail::helper_thread helper;
  helper.start();
  long a_runs = 0, b_runs = 0;  // plain: the caller reads what `a` wrote, so TSan sees a race if both() returns early
  long a_elsewhere = 0;
  const std::thread::id caller = std::this_thread::get_id();
  for (int i = 0; i < 3000; ++i) {
    const std::function<void()> a = [&] {
      ++a_runs;
      if (std::this_thread::get_id() != caller) ++a_elsewhere;
    };
    const std::function<void()> b = [&] {
      if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let the helper take some
      ++b_runs;
    };
    helper.both(a, b);
    ASSERT_EQ(a_runs, i + 1);
    ASSERT_EQ(b_runs, i + 1);
  }
  std::printf("the helper ran %ld of %ld halves\n", a_elsewhere, a_runs);  // the rest were taken back
}

// When the caller's half throws, both() still does not return while the helper runs the other
// half (it may refer to the caller's locals), rethrows, and the helper serves the next call.
TEST(HelperThread, ACallersExceptionWaitsForTheHelper) {
  iavl::detail::helper_thread helper;
  helper.start();
  for (int i = 0; i < 200; ++i) {
    std::atomic<bool> a_started{false}, a_running{false};
    const std::function<void()> a = [&] {
      a_started = true;
      a_running = true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      a_running = false;
    };
    const std::function<void()> b = [&] {
      while (i % 2 == 0 && !a_started.load()) std::this_thread::yield();  // every other time, once the helper has `a`
      throw std::runtime_error("caller's half failed");
    };
    EXPECT_THROW(helper.both(a, b), std::runtime_error);
    EXPECT_FALSE(a_running.load());  // done or never started: nothing left running
  }
  std::atomic<long> runs = 0;  // the halves may run at once
  helper.both([&] { ++runs; }, [&] { ++runs; });
  EXPECT_EQ(runs.load(), 2);
}

// Two threads calling both() at once: each call's own `a` runs once and is done when it returns.
// (The helper's "taken" flag was shared: a caller whose half the helper had done took the next
// caller's posted half for its own, so one `a` ran twice and the other never.)
TEST(HelperThread, TwoCallersAtOnceHaveEachTheirOwnHalfRunOnce) {
  iavl::detail::helper_thread helper;
  helper.start();
  const auto caller = [&] {
    long a_runs = 0, b_runs = 0;  // plain: TSan sees a race if both() returns before `a` is done
    for (long i = 1; i <= 20000; ++i) {
      helper.both([&] { ++a_runs; }, [&] { ++b_runs; });
      if (a_runs != i || b_runs != i) {
        ADD_FAILURE() << "call " << i << ": `a` ran " << a_runs << " times, `b` " << b_runs;
        return;
      }
    }
  };
  std::thread other(caller);
  caller();
  other.join();
}

// Work handed to a worker thread is done whether the thread is looking for more on its own (just
// after other work: handing in then wakes no one) or asleep (long after: handing in must wake it).
template <class Worker>
void expect_work_done_however_long_after(Worker& worker) {
  worker.start();
  for (const auto pause : {std::chrono::milliseconds(0), std::chrono::milliseconds(1), std::chrono::milliseconds(30)}) {
    worker.post([] {});
    worker.flush();
    std::this_thread::sleep_for(pause);
    std::promise<void> done;
    worker.post([&] { done.set_value(); });
    if (done.get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      ADD_FAILURE() << "work handed in " << pause.count() << " ms after the last was not done in 5 s";
      worker.stop();  // runs what is queued, so that the task does not outlive `done`
      return;
    }
    worker.flush();
  }
}

TEST(HelperThread, WorkPostedSoonOrLongAfterTheLastIsDone) {
  iavl::detail::helper_thread helper;
  expect_work_done_however_long_after(helper);
}

TEST(Reclaimer, WorkPostedSoonOrLongAfterTheLastIsDone) {
  iavl::detail::reclaimer reclaimer;
  expect_work_done_however_long_after(reclaimer);
}

// Working trees of one versioned_tree built and hashed on two threads at once hash as the same
// writes to a tree on its own do. (A large write set is hashed in halves, one on the shared
// helper thread: see the test above; about 1% of the trees hashed wrong.)
TEST(Concurrency, WorkingTreesHashedOnTwoThreadsAtOnceHashAsTreesOnTheirOwn) {
  struct op {
    std::string key;
    std::optional<std::string> value;  // none: remove
  };
  std::mt19937 rng(11);
  std::vector<std::vector<op>> writes(150);
  std::vector<iavl::hash256> want;
  for (auto& w : writes) {
    const int n = 3 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i) {
      std::string key = "k" + std::to_string(rng() % 2000);
      if (rng() % 5 == 0) {
        w.push_back({std::move(key), std::nullopt});
      } else {
        w.push_back({std::move(key), "v" + std::to_string(rng())});
      }
    }
    iavl::tree alone;
    for (const op& o : w) o.value ? (void)alone.set(o.key, *o.value) : (void)alone.remove(o.key);
    want.push_back(alone.working_hash());
  }
  const iavl::versioned_tree db;
  const iavl::snapshot base = db.last_commit();
  const auto builder = [&](int turn) {
    for (int round = 0; round < 4; ++round) {
      for (std::size_t t = 0; t < writes.size(); ++t) {
        iavl::tree w = base.branch((t + turn) % 2 == 0 ? iavl::writes::immediate : iavl::writes::deferred);
        for (const op& o : writes[t]) o.value ? (void)w.set(o.key, *o.value) : (void)w.remove(o.key);
        if (!(w.working_hash() == want[t])) ADD_FAILURE() << "tree " << t << " hashed wrong in round " << round;
      }
    }
  };
  std::thread other(builder, 1);
  builder(0);
  other.join();
}

}  // namespace
