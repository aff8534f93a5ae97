// Proofs of committed snapshots built and verified on several threads while new versions are
// committed and old ones deleted. Run under ThreadSanitizer by scripts/test.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "iavl/iavl.hpp"

namespace {

TEST(Concurrency, ProofsOfSnapshotsWhileWriting) {
  iavl::versioned_tree db;
  {
    iavl::tree t = db.branch();
    for (int i = 0; i < 1000; i += 2) t.set("k" + std::to_string(i), "0");
    (void)db.commit(std::move(t));
  }
  const iavl::ics23::proof_spec spec = iavl::iavl_spec();
  std::atomic<bool> stop{false};
  std::atomic<long> verified{0};
  std::atomic<int> provers{2};
  auto prover = [&](int offset) {
    struct done_t {
      std::atomic<int>& n;
      ~done_t() { --n; }
    } done{provers};
    for (int round = 0; !stop.load(); ++round) {
      const iavl::snapshot s = db.last_commit();
      const std::string present = "k" + std::to_string((2 * (round + offset)) % 1000);
      const std::string absent = present + "x";
      const auto value = s.get(present);
      if (!value) {
        ADD_FAILURE() << present << " missing at version " << s.version();
        return;
      }
      const auto m = iavl::verify_membership(spec, s.hash(), iavl::membership_proof(s, present), present, *value);
      const auto n = iavl::verify_non_membership(spec, s.hash(), iavl::non_membership_proof(s, absent), absent);
      if (!m || !n) {
        ADD_FAILURE() << m.reason << " / " << n.reason;
        return;
      }
      const std::vector<std::string> keys{present, absent};
      if (iavl::batch_proofs(s, keys).size() != 2) ADD_FAILURE() << "batch size";
      verified.fetch_add(1);
    }
  };
  std::thread p1(prover, 0), p2(prover, 250);
  // Commit at least 40 versions, and on until the provers have checked 100 rounds (or failed).
  for (int v = 2; v <= 40 || (verified.load() < 100 && provers.load() > 0); ++v) {
    iavl::tree t = db.branch();
    for (int i = 0; i < 1000; i += 14) t.set("k" + std::to_string(i), std::to_string(v));
    (void)db.commit(std::move(t));
    if (v > 4) db.delete_version(v - 3);
  }
  stop = true;
  p1.join();
  p2.join();
  EXPECT_GT(verified.load(), 0);
}

}  // namespace
