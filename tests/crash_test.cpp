// Crash safety: `iavl replay --db` writes a long operation log into LevelDB and is killed with
// SIGKILL at random instants, again and again. After every kill the database must open at a
// version the log produced, with that version's root hash, every key readable and verify()
// passing; the next run continues from there. Every other run writes in the background
// (--background-writes), where the database must open at its last durable version. Versions
// of several MiB, which reach the store in pieces, are killed between their pieces: the database
// must open at the version before, with nothing of the torn one left.
//
// A full disk: the same replay, and a writer whose LevelDB tables outgrow its logs, run under a
// limit on the size of the files they write (RLIMIT_FSIZE, so that a write fails with EFBIG part
// of the way through, as on a full disk). Each must stop with a typed I/O error and leave the
// database at the last version it reported committed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"
#include "support/failing_store.hpp"
#include "support/full_disk_workload.hpp"
#include "support/temp_dir.hpp"

namespace {

constexpr int versions = 40000;  // more than a run can write before the kills end, however fast fsync is
constexpr int kills = 60;

struct log_version {
  std::string text;  // the version's lines, ending with "commit"
};

std::vector<log_version> make_log(std::uint64_t seed, int count = versions) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys;
  std::vector<log_version> log(count);
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

// Starts `args` (a program and its arguments) with stdin from `in` and stdout to `out` (stderr to
// `err`, if given), its files limited to `max_file_bytes` and SIGXFSZ ignored, so that a write
// past the limit fails with EFBIG (part of the way through, as on a full disk) instead of
// killing it.
pid_t start(std::vector<std::string> args, const std::string& in, rlim_t max_file_bytes, const std::string& out,
            const std::string& err = "") {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    const rlimit limit{max_file_bytes, max_file_bytes};
    const int i = ::open(in.c_str(), O_RDONLY);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = err.empty() ? STDERR_FILENO : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (i < 0 || o < 0 || e < 0 || ::dup2(i, STDIN_FILENO) < 0 || ::dup2(o, STDOUT_FILENO) < 0 ||
        ::dup2(e, STDERR_FILENO) < 0 || ::signal(SIGXFSZ, SIG_IGN) == SIG_ERR ||
        ::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
      ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  EXPECT_GT(pid, 0) << "fork failed";
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

std::vector<std::string> replay_args(const std::string& db, bool background_writes) {
  std::vector<std::string> args = {IAVL_TOOL_PATH, "replay", "--db", db};
  if (background_writes) args.emplace_back("--background-writes");
  return args;
}

// Opens the database at `db_path` and checks its latest version against the log: root hash, size,
// every key, verify(). `expected` holds the log replayed up to some earlier version. Returns the
// version the database is at.
std::int64_t expect_log_version(const std::string& db_path, const std::vector<log_version>& log,
                                iavl::versioned_tree& expected) {
  iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(db_path, {.create_if_missing = false})});
  const iavl::snapshot s = db.last_commit();
  SCOPED_TRACE("version " + std::to_string(s.version()));
  if (s.version() == 0) return 0;
  replay_in_memory(log, expected, s.version());
  const iavl::snapshot want = expected.last_commit();
  EXPECT_EQ(want.version(), s.version());
  EXPECT_EQ(s.hash(), want.hash());
  EXPECT_EQ(s.size(), want.size());
  for (auto [key, value] : want.range()) EXPECT_EQ(s.get(key), std::string(value));
  s.verify();
  return s.version();
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
    const bool background = round % 2 == 1;  // both ways of writing
    const pid_t child = start(replay_args(db_path, background), log_path, RLIM_INFINITY, "/dev/null");
    // Up to 120 ms in, and 10 ms more for each round so far that ended with nothing committed: a
    // slow start (ASan on a busy machine took over 120 ms to its first commit) must not leave
    // every kill before it.
    const std::uint64_t window_us = 120000 + 10000 * static_cast<std::uint64_t>(latest == 0 ? round : 0);
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % window_us));
    ::kill(child, SIGKILL);
    const int status = wait_for(child);
    if (WIFSIGNALED(status)) {
      ++killed_mid_run;
    } else {
      EXPECT_EQ(WEXITSTATUS(status), 0) << "replay failed in round " << round;
    }

    SCOPED_TRACE("round " + std::to_string(round));
    // A kill before LevelDB made the database (a slow start, as under ASan on a busy machine)
    // leaves none, and nothing was committed.
    const bool none_yet = latest == 0 && !std::filesystem::exists(std::filesystem::path(db_path) / "CURRENT");
    const std::int64_t now = none_yet ? 0 : expect_log_version(db_path, log, expected);
    ASSERT_FALSE(HasFailure());
    ASSERT_GE(now, latest) << "a committed version was lost";
    latest = now;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the crash test must stay within its time bound";
  }
  EXPECT_EQ(killed_mid_run, kills) << "the log ran out before enough kills landed";
  EXPECT_GT(latest, 0);
}

// Versions of `keys_per_version` new keys each, values of 50 bytes: several MiB of node records a
// version, which reach the store in pieces (versioned_tree::version_piece_bytes).
std::vector<log_version> make_large_log(std::uint64_t seed, int count, int keys_per_version) {
  std::mt19937_64 rng(seed);
  std::vector<log_version> log(count);
  for (auto& v : log) {
    for (int i = 0; i < keys_per_version; ++i) {
      std::string key(16, '\0');
      std::string value(50, '\0');
      for (auto& c : key) c = static_cast<char>(rng());
      for (auto& c : value) c = static_cast<char>(rng());
      v.text += "set " + iavl::to_hex(key) + " " + iavl::to_hex(value) + "\n";
    }
    v.text += "commit\n";
  }
  return log;
}

// The highest version with any node record in the database at `db_path`, opened as a bare store
// (which, unlike a versioned_tree, leaves the records of a torn version in place).
std::int64_t highest_stored_version(const std::string& db_path, std::int64_t from) {
  std::int64_t top = 0;
  iavl::open_leveldb_store(db_path, {.create_if_missing = false})->scan_nodes(from, INT64_MAX, [&](iavl::node_key k) {
    top = std::max(top, k.version);
    return true;
  });
  return top;
}

std::string file_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Checks `done` every 200 µs until it holds (true), or until `child` has ended or two minutes
// have passed (false). The child is not reaped, so that it can still be killed and waited for.
template <class Condition>
bool poll_while_running(pid_t child, Condition done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

// The bytes of LevelDB's write-ahead logs in the database directory `db_path`: every write
// appends to them (in 32 KiB fragments) before it reaches the memtable.
std::uintmax_t log_bytes(const std::string& db_path) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(db_path, ec)) {
    if (entry.path().extension() == ".log") total += entry.file_size(ec);
  }
  return total;
}

// A kill in the middle of a large version leaves some of its pieces in the store, without its
// root record: the database must open at the version before, as if that version had never begun.
// Each round replays two large versions into a new database and kills the replay once LevelDB's
// log has grown by 5 MiB since the first version was reported committed: past the first piece of
// the second version (versioned_tree::version_piece_bytes, 4 MiB of records, a little more in
// the log) and into the last write, which carries the root record (a log record cut short is
// dropped when LevelDB recovers).
TEST(Crash, AKillWhileALargeVersionIsWrittenLeavesItWholeOrAbsent) {
  const auto log = make_large_log(99, 2, 40000);
  {  // the premise: a version of this log reaches the store in more than one write
    auto counting = std::make_shared<test_support::failing_store>();
    iavl::versioned_tree db(iavl::options{.store = counting});
    replay_in_memory(log, db, 1);
    ASSERT_GE(counting->writes.load(), 2) << "the versions are too small to be written in pieces";
  }
  test_support::temp_dir dir;
  const std::string log_path = (dir.path() / "large.log").string();
  {
    std::ofstream f(log_path, std::ios::trunc);
    for (const auto& v : log) f << v.text;
  }
  constexpr std::uintmax_t past_first_piece = std::uintmax_t{5} << 20;
  int torn = 0;  // kills that left pieces of the second version in the store
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string db_path = (dir.path() / ("db" + std::to_string(round))).string();
    const std::string out_path = (dir.path() / ("out" + std::to_string(round))).string();
    const pid_t child = start(replay_args(db_path, false), log_path, RLIM_INFINITY, out_path);
    ASSERT_TRUE(poll_while_running(child, [&] { return file_text(out_path).find('\n') != std::string::npos; }))
        << "the replay did not commit its first version";
    const std::uintmax_t first = log_bytes(db_path);
    (void)poll_while_running(child, [&] { return log_bytes(db_path) >= first + past_first_piece; });
    ::kill(child, SIGKILL);  // a child that finished first is a zombie until waited for: counted below
    (void)wait_for(child);
    const std::int64_t stored = highest_stored_version(db_path, 2);
    iavl::versioned_tree fresh(iavl::options{.keep = {.keep_recent = 1}});
    const std::int64_t now = expect_log_version(db_path, log, fresh);
    ASSERT_FALSE(HasFailure());
    ASSERT_GE(now, 1) << "the first version, reported committed, was lost";
    EXPECT_EQ(highest_stored_version(db_path, now + 1), 0) << "the torn version's pieces were not dropped";
    if (stored > now) ++torn;
  }
  EXPECT_GE(torn, 1) << "no kill landed while the second version was being written";
}

// The version of the last line `iavl replay` printed ('<version> <hash> <size>'), 0 if none.
std::int64_t last_printed_version(const std::string& out) {
  std::istringstream lines(out);
  std::int64_t last = 0;
  for (std::string line; std::getline(lines, line);) last = std::stoll(line);
  return last;
}

// LevelDB's log fills the disk: the commit that hits it fails.
// The tool's commands on an existing database refuse an empty LevelDB database (another
// program's): opening an empty store for a versioned_tree would stamp it as an iavl database.
TEST(Tool, CommandsOnAnEmptyLevelDBDatabaseRefuseItAndWriteNothing) {
  const test_support::temp_dir dir;
  const std::string db = (dir.path() / "foreign").string(), out = (dir.path() / "out").string(),
                    err = (dir.path() / "err").string();
  (void)iavl::open_leveldb_store(db);  // created, empty
  for (std::vector<std::string> args : {std::vector<std::string>{"info"},
                                        {"get", "01"},
                                        {"verify"},
                                        {"prune", "--keep-recent", "1"},
                                        {"rollback", "--to", "1"}}) {
    SCOPED_TRACE(args.front());
    args.insert(args.begin(), IAVL_TOOL_PATH);
    args.insert(args.end(), {"--db", db});
    const int status = wait_for(start(args, "/dev/null", RLIM_INFINITY, out, err));
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::stringstream said;
    said << std::ifstream(err).rdbuf();
    EXPECT_NE(said.str().find("an empty LevelDB database [not_a_database]"), std::string::npos) << said.str();
  }
  EXPECT_TRUE(iavl::open_leveldb_store(db, {.create_if_missing = false})->empty());
}

TEST(DiskFull, AFailedLogWriteIsATypedErrorAndLosesNoCommittedVersion) {
  const auto log = make_log(99, 3000);
  for (const bool background : {false, true}) {
    SCOPED_TRACE(background ? "background writes" : "synced commits");
    test_support::temp_dir dir;
    const std::string db_path = (dir.path() / "db").string();
    const std::string log_path = (dir.path() / "all.log").string();
    const std::string out = (dir.path() / "out").string(), err = (dir.path() / "err").string();
    {
      std::ofstream all(log_path);
      for (const auto& v : log) all << v.text;
    }
    // LevelDB's log reaches 1 MiB after a few hundred versions of this log, long before its end.
    const int status = wait_for(start(replay_args(db_path, background), log_path, rlim_t{1} << 20, out, err));
    ASSERT_TRUE(WIFEXITED(status)) << "the replay did not exit by itself (signal " << WTERMSIG(status) << ")";
    EXPECT_EQ(WEXITSTATUS(status), 1);
    const std::string message = file_text(err);
    EXPECT_NE(message.find("File too large"), std::string::npos) << message;
    EXPECT_NE(message.find("[io_error]"), std::string::npos) << message;
    const std::int64_t printed = last_printed_version(file_text(out));
    ASSERT_GT(printed, 0);
    ASSERT_LT(printed, static_cast<std::int64_t>(log.size())) << "the limit was never reached";

    iavl::versioned_tree expected(iavl::options{.keep = {.keep_recent = 1}});
    const std::int64_t reopened = expect_log_version(db_path, log, expected);
    if (background) {
      // A line is printed before its version is durable; what did reach the disk is whole.
      EXPECT_GT(reopened, 0);
      EXPECT_LE(reopened, printed);
    } else {
      EXPECT_EQ(reopened, printed) << "a synced commit that was reported must be there, the failed one not";
    }

    // With room on the disk again, the database takes the rest of the log.
    std::ofstream rest(log_path, std::ios::trunc);
    for (std::size_t v = static_cast<std::size_t>(reopened); v < log.size(); ++v) rest << log[v].text;
    rest.close();
    const int again = wait_for(start(replay_args(db_path, background), log_path, RLIM_INFINITY, out, err));
    ASSERT_TRUE(WIFEXITED(again) && WEXITSTATUS(again) == 0) << file_text(err);
    EXPECT_EQ(expect_log_version(db_path, log, expected), static_cast<std::int64_t>(log.size()));
  }
}

// The disk is full from the start: creating the database fails with an error, not a crash, and
// once there is room the same directory takes the log.
TEST(DiskFull, ACreationThatFailedCanBeRetried) {
  const auto log = make_log(7, 20);
  test_support::temp_dir dir;
  const std::string db_path = (dir.path() / "db").string();
  const std::string log_path = (dir.path() / "all.log").string();
  {
    std::ofstream all(log_path);
    for (const auto& v : log) all << v.text;
  }
  // No file may grow at all (so the tool's own message cannot be kept either).
  const int status = wait_for(start(replay_args(db_path, false), log_path, 0, "/dev/null", "/dev/null"));
  ASSERT_TRUE(WIFEXITED(status)) << "the replay did not exit by itself (signal " << WTERMSIG(status) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = (dir.path() / "err").string();
  const int again = wait_for(start(replay_args(db_path, false), log_path, RLIM_INFINITY, "/dev/null", err));
  ASSERT_TRUE(WIFEXITED(again) && WEXITSTATUS(again) == 0) << file_text(err);
  iavl::versioned_tree expected;
  EXPECT_EQ(expect_log_version(db_path, log, expected), static_cast<std::int64_t>(log.size()));
}

// A table fills the disk, in the store's own table file (src/leveldb_store.cpp), on LevelDB's
// compaction thread: the commit after it fails, and the database opens at the last commit that
// succeeded, its tables whole.
TEST(DiskFull, AFailedTableWriteIsATypedErrorAndLosesNoCommittedVersion) {
  test_support::temp_dir dir;
  const std::string db_path = (dir.path() / "db").string();
  const std::string out = (dir.path() / "out").string(), err = (dir.path() / "err").string();
  const int status = wait_for(start({FULL_DISK_WRITER_PATH, db_path}, "/dev/null", rlim_t{1} << 20, out, err));
  ASSERT_TRUE(WIFEXITED(status)) << "the writer did not exit by itself (signal " << WTERMSIG(status) << ")";
  ASSERT_EQ(WEXITSTATUS(status), 0) << file_text(err);
  const std::string message = file_text(err);
  EXPECT_NE(message.find(".ldb"), std::string::npos) << "not a table write: " << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_NE(message.find("[io_error]"), std::string::npos) << message;
  const std::int64_t committed = last_printed_version(file_text(out));
  ASSERT_GT(committed, 2);

  iavl::versioned_tree expected;
  for (std::int64_t v = 1; v <= committed; ++v) {
    iavl::tree t = expected.branch();
    test_support::set_version(t, v);
    (void)expected.commit(std::move(t));
  }
  iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(db_path, {.create_if_missing = false})});
  ASSERT_EQ(db.latest_version(), committed);
  for (std::int64_t v : db.versions()) db.at(v).verify();
  const iavl::snapshot s = db.last_commit();
  EXPECT_EQ(s.hash(), expected.last_commit().hash());
  for (auto [key, value] : expected.last_commit().range()) EXPECT_EQ(s.get(key), std::string(value));
}

}  // namespace
