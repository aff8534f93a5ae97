// A minimal consensus app on a LevelDB database: per block, a "check" and a "deliver" branch of
// the last commit run the same transactions, deliver is committed under a retention policy, a
// query is answered with a proof that a light client checks against the app hash; then the
// process "restarts" (the database is closed and opened again) and the chain goes on.
//
//   example_consensus_app [DIR]   (default: a fresh directory under the temp dir, removed after)
#include <unistd.h>

#include <filesystem>
#include <iavl/iavl.hpp>
#include <iavl/leveldb_store.hpp>
#include <iostream>
#include <string>

namespace {

iavl::versioned_tree open_app(const std::filesystem::path& dir) {
  iavl::options opts;
  opts.store = iavl::open_leveldb_store(dir.string());  // created if missing
  opts.keep = {.keep_recent = 3, .keep_every = 5};      // applied at each commit
  return iavl::versioned_tree(opts);                    // continues from the latest version
}

// One block of transfers: transaction `tx` moves `tx` from one account to another.
iavl::snapshot run_block(iavl::versioned_tree& db) {
  iavl::tree check = db.branch();  // the mempool's view, reset every block
  iavl::tree deliver = db.branch();
  const std::int64_t height = db.latest_version() + 1;
  for (int tx = 0; tx < 20; ++tx) {
    const std::string from = "balance/" + std::to_string((3 * tx + height) % 10);
    const std::string to = "balance/" + std::to_string((7 * tx + 1) % 10);
    if (from == to) continue;
    for (iavl::tree* t : {&check, &deliver}) {
      const long a = std::stol(t->get(from).value_or("100"));
      const long b = std::stol(t->get(to).value_or("100"));
      t->set(from, std::to_string(a - tx));
      t->set(to, std::to_string(b + tx));
    }
  }
  const iavl::hash256 app_hash = deliver.working_hash();
  const iavl::snapshot committed = db.commit(std::move(deliver));
  std::cout << "block " << committed.version() << " app hash " << app_hash.hex() << '\n';
  return committed;
}

// A query with a proof, checked as a light client would: against the app hash alone.
bool answer_query(const iavl::snapshot& state, const std::string& key) {
  const std::string value = state.get(key).value_or("");
  const std::string proof = iavl::membership_proof(state, key);
  const iavl::verify_result checked = iavl::verify_membership(iavl::iavl_spec(), state.hash(), proof, key, value);
  std::cout << "query " << key << " at " << state.version() << ": " << value << ", proof of " << proof.size()
            << " bytes " << (checked ? "verified" : "REJECTED: " + checked.reason) << '\n';
  return checked.ok;
}

}  // namespace

int main(int argc, char** argv) {
  const bool temporary = argc < 2;
  const std::filesystem::path dir =
      temporary ? std::filesystem::temp_directory_path() / ("iavl-consensus-app-" + std::to_string(::getpid()))
                : std::filesystem::path(argv[1]);
  bool ok = true;
  std::int64_t stopped_at = 0;
  {
    iavl::versioned_tree db = open_app(dir);
    for (int i = 0; i < 10; ++i) run_block(db);
    ok &= answer_query(db.last_commit(), "balance/3");
    stopped_at = db.latest_version();
    db.wait_for_pruning();  // a clean stop: versions the retention policy dropped are gone too
  }                         // the process stops: every committed block is on disk (a crash would lose no block either)
  iavl::versioned_tree db = open_app(dir);
  std::cout << "restarted at version " << db.latest_version() << ", kept versions:";
  for (std::int64_t v : db.versions()) std::cout << ' ' << v;
  std::cout << '\n';
  ok &= db.latest_version() == stopped_at;
  for (int i = 0; i < 5; ++i) run_block(db);
  ok &= answer_query(db.last_commit(), "balance/7");
  ok &= answer_query(db.at(10), "balance/7");  // a kept older version still answers
  if (temporary) std::filesystem::remove_all(dir);
  std::cout << (ok ? "consensus app: all proofs verified" : "consensus app: FAILED") << '\n';
  return ok ? 0 : 1;
}
