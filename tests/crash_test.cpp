// Crash safety: `iavl replay --db` writes a long operation log into LevelDB and is killed with
// SIGKILL at random instants, again and again. After every kill the database must open at a
// version the log produced, with that version's root hash, every key readable and verify()
// passing; the next run continues from there. Every other run writes in the background
// (--background-writes), where the database must open at its last durable version.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace {

constexpr int versions = 40000;  // more than a run can write before the kills end, however fast fsync is
constexpr int kills = 60;

struct log_version {
  std::string text;  // the version's lines, ending with "commit"
};

std::vector<log_version> make_log(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys;
  std::vector<log_version> log(versions);
  const auto hex = [&](std::size_t bytes) {
    std::string raw(bytes, '\0');
    for (auto& c : raw) c = static_cast<char>(rng());
    return iavl::to_hex(raw);
  };
  for (auto& v : log) {
    const int ops = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < ops; ++i) {
      const int kind = static_cast<int>(rng() % 10);
      if (kind < 2 && !keys.empty()) {
        v.text += "remove " + keys[rng() % keys.size()] + "\n";
      } else if (kind < 5 && !keys.empty()) {
        v.text += "set " + keys[rng() % keys.size()] + " " + hex(1 + rng() % 60) + "\n";
      } else {
        keys.push_back(hex(1 + rng() % 32));
        v.text += "set " + keys.back() + " " + hex(1 + rng() % 60) + "\n";
      }
    }
    v.text += "commit\n";
  }
  return log;
}

// Applies the log's versions up to `version` to an in-memory tree (which only keeps its latest).
void replay_in_memory(const std::vector<log_version>& log, iavl::versioned_tree& db, std::int64_t version) {
  for (std::int64_t next = db.latest_version(); next < version; ++next) {
    const log_version& v = log[next];
    iavl::tree t = db.branch();
    std::istringstream in(v.text);
    std::string op, k, val, key, value;
    while (in >> op) {
      if (op == "commit") break;
      in >> k;
      ASSERT_TRUE(iavl::from_hex(k, key));
      if (op == "set") {
        in >> val;
        ASSERT_TRUE(iavl::from_hex(val, value));
        t.set(key, value);
      } else {
        t.remove(key);
      }
    }
    (void)db.commit(std::move(t));
  }
}

pid_t spawn_replay(const std::string& db, const std::string& log_file, bool background_writes) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, log_file.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  std::string tool = IAVL_TOOL_PATH;
  std::vector<char*> argv = {tool.data(), const_cast<char*>("replay"), const_cast<char*>("--db"),
                             const_cast<char*>(db.c_str())};
  if (background_writes) argv.push_back(const_cast<char*>("--background-writes"));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, tool.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << tool;
  return pid;
}

TEST(Crash, KilledReplaysNeverLoseOrTearACommittedVersion) {
  const auto log = make_log(2024);
  iavl::versioned_tree expected(iavl::options{.keep = {.keep_recent = 1}});

  test_support::temp_dir dir;
  const std::string db_path = (dir.path() / "db").string();
  const std::string log_path = (dir.path() / "rest.log").string();
  std::mt19937_64 rng(7);
  std::int64_t latest = 0;
  int killed_mid_run = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  for (int round = 0; killed_mid_run < kills && latest < versions; ++round) {
    {
      std::ofstream rest(log_path, std::ios::trunc);
      for (std::int64_t v = latest; v < versions; ++v) rest << log[v].text;
    }
    const pid_t child = spawn_replay(db_path, log_path, round % 2 == 1);  // both ways of writing
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 120000));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) {
      ++killed_mid_run;
    } else {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "replay failed in round " << round;
    }

    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(db_path, {.create_if_missing = false})});
    const iavl::snapshot s = db.last_commit();
    SCOPED_TRACE("round " + std::to_string(round) + ", version " + std::to_string(s.version()));
    ASSERT_GE(s.version(), latest) << "a committed version was lost";
    latest = s.version();
    if (latest == 0) continue;
    replay_in_memory(log, expected, latest);
    const iavl::snapshot want = expected.last_commit();
    ASSERT_EQ(want.version(), latest);
    ASSERT_EQ(s.hash(), want.hash());
    ASSERT_EQ(s.size(), want.size());
    for (auto [key, value] : want.range()) ASSERT_EQ(s.get(key), std::string(value));
    s.verify();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the crash test must stay within its time bound";
  }
  EXPECT_EQ(killed_mid_run, kills) << "the log ran out before enough kills landed";
  EXPECT_GT(latest, 0);
}

}  // namespace
