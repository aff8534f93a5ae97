// The `iavl` command-line tool: replay operation logs and inspect or maintain databases.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"

namespace {

struct input_error {
  std::string message;
};

// Where a command's tree lives: --db PATH (LevelDB unless --store mem), or nowhere (memory).
struct db_args {
  std::string path;
  std::string store = "leveldb";
  bool no_sync = false;
  bool background_writes = false;

  CLI::Option* add_to(CLI::App& cmd, bool required) {
    // An empty path would read as no --db at all: a replay into memory, an empty "database".
    auto* db = cmd.add_option("--db", path, "database directory (LevelDB)")
                   ->check(CLI::Validator([](const std::string& p) { return p.empty() ? "is empty" : ""; }, "DIR"));
    if (required) db->required();
    return db;
  }
  [[nodiscard]] std::unique_ptr<iavl::versioned_tree> open(bool create) const {
    iavl::options o;
    o.sync = !no_sync;
    o.background_writes = background_writes;
    if (store == "mem") {
      o.store = iavl::open_memory_store();
    } else if (!path.empty()) {
      iavl::leveldb_options lo;
      lo.create_if_missing = create;
      o.store = iavl::open_leveldb_store(path, lo);
      // Opening an empty store would stamp it as ours: a read must not write another program's.
      if (!create && o.store->empty()) {
        throw iavl::error(iavl::errc::not_a_database, "no iavl database at '" + path + "': an empty LevelDB database");
      }
    }
    return std::make_unique<iavl::versioned_tree>(o);
  }
};

// A count or version number as typed, checked before CLI11 converts it: it would clamp one out
// of range, and the tool takes version 0 for "latest".
const CLI::Validator at_least_one(
    [](std::string& text) -> std::string {
      std::int64_t n = 0;
      const char* end = text.data() + text.size();
      const auto [stop, ec] = std::from_chars(text.data(), end, n);
      if (ec != std::errc{} || stop != end) return "'" + text + "' is not an integer from 1 to 2^63 - 1";
      return n < 1 ? "must be at least 1" : "";
    },
    "POSITIVE");

// Output to a full disk or a closed pipe fails only when flushed; reported like a failed export.
void check_output() {
  if (!std::cout.flush()) throw iavl::error(iavl::errc::io_error, "writing the output failed");
}

// Opens a file to read, failing before anything else is done (such as creating a database).
void open_input(std::ifstream& file, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw input_error{"cannot read '" + path + "': it is a directory"};
  file.open(path, std::ios::binary);
  if (!file) throw input_error{"cannot open '" + path + "': " + std::strerror(errno)};
}

std::string parse_bytes(const std::string& token, const char* what) {
  if (token == "-") return {};
  std::string out;
  if (token.empty() || !iavl::from_hex(token, out)) {
    throw input_error{std::string("invalid ") + what + " hex '" + token + "'"};
  }
  return out;
}

std::string hex_or_dash(std::string_view bytes) { return bytes.empty() ? "-" : iavl::to_hex(bytes); }

void print_version_line(const iavl::snapshot& s) {
  std::cout << s.version() << ' ' << s.hash().hex() << ' ' << s.size() << '\n';
}

// Progress on a terminal only, so that piped output stays clean: "<what> <done>[/<total>]",
// redrawn at most ten times a second, erased at the end.
class progress {
 public:
  explicit progress(const char* what) : what_(what), on_(::isatty(STDERR_FILENO) != 0) {}
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  void update(std::uint64_t done, std::uint64_t total = 0) {
    const auto now = std::chrono::steady_clock::now();
    if (!on_ || now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    std::cerr << '\r' << what_ << ' ' << done;
    if (total > 0) std::cerr << '/' << total;
    std::cerr << std::flush;
  }
  /// For the library's long operations.
  [[nodiscard]] iavl::progress_fn callback() {
    return [this](std::uint64_t done, std::uint64_t total) { update(done, total); };
  }
  ~progress() {
    if (on_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  const char* what_;
  bool on_;
  std::chrono::steady_clock::time_point last_{};
};

// Applies an operation log (set/remove/commit, one a line) on top of the tree's latest version
// and prints one line per commit. Stops at the first malformed line; nothing after it is applied.
int replay(std::istream& in, iavl::versioned_tree& db) {
  iavl::tree work = db.branch();
  std::string line;
  progress shown("commits");
  std::int64_t commits = 0;
  for (std::int64_t number = 1; std::getline(in, line); ++number) {
    try {
      std::istringstream words(line);
      std::string op, a, b, extra;
      if (!(words >> op) || op[0] == '#') continue;
      if (op == "set") {
        if (!(words >> a >> b) || (words >> extra)) throw input_error{"set takes a key and a value"};
        const std::string key = parse_bytes(a, "key"), value = parse_bytes(b, "value");
        work.set(key, value);
      } else if (op == "remove") {
        if (!(words >> a) || (words >> extra)) throw input_error{"remove takes a key"};
        work.remove(parse_bytes(a, "key"));
      } else if (op == "commit") {
        if (words >> extra) throw input_error{"commit takes no arguments"};
        print_version_line(db.commit(std::move(work)));
        if (!std::cout) check_output();  // stop at a failed write rather than commit unreported
        work = db.branch();
        shown.update(++commits);
      } else {
        throw input_error{"unknown operation '" + op + "'"};
      }
    } catch (const input_error& e) {
      std::cout.flush();
      std::cerr << "iavl replay: line " << number << ": " << e.message << '\n';
      return 1;
    } catch (const iavl::error& e) {
      std::cout.flush();
      std::cerr << "iavl replay: line " << number << ": " << e.what() << " [" << iavl::to_string(e.code()) << "]\n";
      return 1;
    }
  }
  if (in.bad() || std::ferror(stdin) != 0) {  // std::cin reads through stdio, which keeps its own errors
    std::cerr << "iavl replay: reading the log failed\n";
    return 1;
  }
  return 0;
}

// "1-3 5 7-9": kept versions, runs folded.
std::string version_list(const std::vector<std::int64_t>& versions) {
  std::string out;
  for (std::size_t i = 0; i < versions.size();) {
    std::size_t j = i;
    while (j + 1 < versions.size() && versions[j + 1] == versions[j] + 1) ++j;
    if (!out.empty()) out += ' ';
    out += std::to_string(versions[i]);
    if (j > i) out += '-' + std::to_string(versions[j]);
    i = j + 1;
  }
  return out;
}

// `version` is 0 when --version was not given (at_least_one rejects a given 0).
iavl::snapshot version_or_latest(const iavl::versioned_tree& db, std::int64_t version) {
  return version > 0 ? db.at(version) : db.last_commit();
}

// Deletes every version before the last `keep_recent`, one at a time to show progress.
void prune(iavl::versioned_tree& db, std::int64_t keep_recent) {
  const std::int64_t bound = db.latest_version() - keep_recent + 1;
  std::vector<std::int64_t> doomed;
  for (std::int64_t v : db.versions()) {
    if (v < bound) doomed.push_back(v);
  }
  progress shown("versions deleted");
  for (std::size_t i = 0; i < doomed.size(); ++i) {
    db.delete_version(doomed[i]);
    shown.update(i + 1, doomed.size());
  }
}

iavl::hash256 parse_hash(const std::string& hex) {
  std::string bytes;
  if (!iavl::from_hex(hex, bytes) || bytes.size() != 32) {
    throw input_error{"invalid root hash '" + hex + "': 64 hex digits expected"};
  }
  iavl::hash256 h;
  std::memcpy(h.bytes.data(), bytes.data(), 32);
  return h;
}

void export_file(const iavl::snapshot& s, const std::string& path) {
  progress shown("nodes exported");
  if (path == "-") {
    iavl::export_state(s, std::cout, shown.callback());
    return;
  }
  // A file that was there (or a link to a device) is not ours to remove.
  const bool existed = std::filesystem::exists(std::filesystem::symlink_status(path));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw input_error{"cannot create '" + path + "': " + std::strerror(errno)};
  try {
    iavl::export_state(s, file, shown.callback());
  } catch (...) {
    file.close();
    if (!existed) std::filesystem::remove(path);  // no partial stream left behind
    throw;
  }
  print_version_line(s);
}

// Imports into the database at db.path, which must be empty or missing. A failed import leaves
// the filesystem as it was: the library deletes the nodes it wrote, this removes the LevelDB
// files it created in an empty directory, or the directories it created.
void import_file(const db_args& db, const std::string& path, const std::string& root_hex) {
  namespace fs = std::filesystem;
  iavl::import_options options;
  if (!root_hex.empty()) options.expected_hash = parse_hash(root_hex);
  std::ifstream file;
  if (path != "-") open_input(file, path);
  fs::path created = fs::absolute(db.path).lexically_normal();
  if (!created.has_filename()) created = created.parent_path();  // "dir/"
  const bool existed = fs::exists(fs::symlink_status(created));
  const bool was_empty = existed && fs::is_directory(created) && fs::is_empty(created);
  while (!existed && !fs::exists(fs::symlink_status(created.parent_path()))) created = created.parent_path();
  try {
    progress shown("nodes imported");
    options.progress = shown.callback();
    auto tree = db.open(true);
    print_version_line(iavl::import_state(*tree, path == "-" ? std::cin : file, options));
  } catch (...) {        // the tree is closed by now
    std::error_code ec;  // best effort: the import's error is the one to report
    if (!existed) fs::remove_all(created, ec);
    if (was_empty) {
      for (const auto& entry : fs::directory_iterator(created, ec)) fs::remove_all(entry.path(), ec);
    }
    throw;
  }
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"iavl: replay, inspect and maintain IAVL trees (root hashes compatible with cosmos/iavl)"};
  app.require_subcommand(1);
  db_args db;
  std::int64_t version = 0;

  std::string log_path = "-";
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "Replay an operation log and print '<version> <root-hash-hex> <size>' per commit.\n"
      "Log lines: 'set <key-hex> <value-hex>', 'remove <key-hex>', 'commit'; '-' is the empty string.\n"
      "With --db, versions continue from the database's latest one.\n"
      "Example: printf 'set 01 ff\\ncommit\\n' | iavl replay --db /tmp/state");
  replay_cmd->add_option("log", log_path, "operation log file ('-' or omitted: stdin)");
  auto* replay_db = db.add_to(*replay_cmd, false);
  replay_cmd->add_option("--store", db.store, "node store: leveldb (at --db) or mem (in memory, without --db)")
      ->check(CLI::IsMember({"leveldb", "mem"}));
  replay_cmd->add_flag("--no-sync", db.no_sync, "do not wait for each commit to reach the disk");
  replay_cmd->add_flag("--background-writes", db.background_writes,
                       "write each version while the next one is replayed (a line is printed per commit, "
                       "before its version is durable)");

  auto* info_cmd =
      app.add_subcommand("info",
                         "Print '<version> <root-hash-hex> <size>' of the latest version, then the kept versions.\n"
                         "Example: iavl info --db /tmp/state");
  db.add_to(*info_cmd, true);

  std::string key_hex;
  auto* get_cmd = app.add_subcommand("get",
                                     "Print the value (hex, '-' when empty) of a key; exit status 1 when absent.\n"
                                     "Example: iavl get --db /tmp/state 01");
  db.add_to(*get_cmd, true);
  get_cmd->add_option("--version", version, "version to read (default: latest)")->check(at_least_one);
  get_cmd->add_option("key", key_hex, "key (hex)")->required();

  auto* verify_cmd =
      app.add_subcommand("verify",
                         "Check every node of a version (hashes, order, balance, sizes); report the first problem.\n"
                         "Example: iavl verify --db /tmp/state --version 3");
  db.add_to(*verify_cmd, true);
  verify_cmd->add_option("--version", version, "version to check (default: latest)")->check(at_least_one);

  std::int64_t keep_recent = 0;
  auto* prune_cmd = app.add_subcommand("prune",
                                       "Delete every version but the last N, reclaiming their nodes.\n"
                                       "Example: iavl prune --db /tmp/state --keep-recent 100");
  db.add_to(*prune_cmd, true);
  prune_cmd->add_option("--keep-recent", keep_recent, "versions to keep")->required()->check(at_least_one);

  std::int64_t target = 0;
  auto* rollback_cmd = app.add_subcommand("rollback",
                                          "Make a kept older version the latest, deleting every newer version.\n"
                                          "Example: iavl rollback --db /tmp/state --to 41");
  db.add_to(*rollback_cmd, true);
  rollback_cmd->add_option("--to", target, "version to return to")->required()->check(at_least_one);

  std::string stream_path;
  auto* export_cmd = app.add_subcommand("export",
                                        "Write a version as a state sync stream (docs/format.md) and print\n"
                                        "'<version> <root-hash-hex> <size>' of it.\n"
                                        "Example: iavl export --db /tmp/state --version 41 /tmp/state-41.sync");
  db.add_to(*export_cmd, true);
  export_cmd->add_option("--version", version, "version to export (default: latest)")->check(at_least_one);
  export_cmd->add_option("file", stream_path, "stream file to write ('-': stdout)")->required();

  std::string root_hex;
  auto* import_cmd = app.add_subcommand("import",
                                        "Create a database from a state sync stream, checking every node, and print\n"
                                        "'<version> <root-hash-hex> <size>'. The database must be empty or missing.\n"
                                        "Example: iavl import --db /tmp/copy /tmp/state-41.sync");
  db.add_to(*import_cmd, true);
  import_cmd->add_option("file", stream_path, "stream file to read ('-': stdin)")->required();
  import_cmd->add_option("--root-hash", root_hex, "root hash the stream must carry (hex), e.g. a trusted app hash");

  auto* prove_cmd =
      app.add_subcommand("prove",
                         "Print 'membership <proof-hex>' for a present key or 'non-membership <proof-hex>'\n"
                         "for an absent one: an ICS23 CommitmentProof, as cosmos/iavl makes it.\n"
                         "Example: iavl prove --db /tmp/state 01");
  db.add_to(*prove_cmd, true);
  prove_cmd->add_option("--version", version, "version to prove against (default: latest)")->check(at_least_one);
  prove_cmd->add_option("key", key_hex, "key (hex, '-' for the empty key)")->required();

  std::string proof_hex, value_hex;
  auto* verify_proof_cmd =
      app.add_subcommand("verify-proof",
                         "Check an ICS23 proof against a root hash: membership of KEY with VALUE when a value\n"
                         "is given, non-membership of KEY otherwise. Prints 'ok' (exit status 0), or the\n"
                         "reason on stderr (exit status 1). No database needed.\n"
                         "Example: iavl verify-proof $(iavl info --db /tmp/state | head -n 1 | cut -d' ' -f2) \\\n"
                         "           $(iavl prove --db /tmp/state 01 | cut -d' ' -f2) 01 ff");
  verify_proof_cmd->add_option("root", root_hex, "root hash (hex)")->required();
  verify_proof_cmd->add_option("proof", proof_hex, "proof (hex)")->required();
  verify_proof_cmd->add_option("key", key_hex, "key (hex, '-' for the empty key)")->required();
  auto* value_arg =
      verify_proof_cmd->add_option("value", value_hex, "value (hex, '-' for the empty value): prove membership");

  // Set after the commands, which would otherwise inherit it.
  app.footer(
      "Run 'iavl COMMAND --help' for the options of a command.\n"
      "Exit status: 0 on success, 1 on bad input or an I/O failure, 2 on bad usage.");

  try {
    app.parse(argc, argv);
    if (db.store == "mem" && replay_db->count() > 0) {
      throw CLI::ValidationError("--store mem", "keeps the tree in memory, without --db");
    }
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    std::string cause = e.what();
    if (app.get_subcommands().empty() && !app.remaining().empty()) {  // CLI11 says only "subcommand required"
      cause = "unknown command or option '" + app.remaining().front() + "'";
    }
    std::cerr << "iavl: " << cause << " (see 'iavl --help')\n";
    return 2;
  }

  const std::string command = app.get_subcommands().front()->get_name();
  int status = 0;
  try {
    if (*replay_cmd) {
      std::ifstream file;
      if (log_path != "-") open_input(file, log_path);
      auto tree = db.open(true);
      status = replay(log_path == "-" ? std::cin : file, *tree);
    } else if (*import_cmd) {
      import_file(db, stream_path, root_hex);
    } else if (*verify_proof_cmd) {
      const iavl::hash256 root = parse_hash(root_hex);
      const std::string proof = parse_bytes(proof_hex, "proof"), key = parse_bytes(key_hex, "key");
      // A given value, even "" (rejected as hex), claims membership.
      const iavl::verify_result r =
          value_arg->count() == 0
              ? iavl::verify_non_membership(iavl::iavl_spec(), root, proof, key)
              : iavl::verify_membership(iavl::iavl_spec(), root, proof, key, parse_bytes(value_hex, "value"));
      if (!r) {
        std::cerr << "iavl verify-proof: " << r.reason << '\n';
        return 1;
      }
      std::cout << "ok\n";
    } else {  // the commands on an existing database
      auto tree = db.open(false);
      if (*info_cmd) {
        print_version_line(tree->last_commit());
        std::cout << "versions: " << version_list(tree->versions()) << '\n';
      } else if (*get_cmd) {
        const std::string key = parse_bytes(key_hex, "key");
        const auto value = version_or_latest(*tree, version).get(key);
        if (!value) {
          std::cerr << "iavl get: key " << key_hex << " is absent\n";
          return 1;
        }
        std::cout << hex_or_dash(*value) << '\n';
      } else if (*verify_cmd) {
        const iavl::snapshot s = version_or_latest(*tree, version);
        progress shown("nodes checked");
        iavl::verify(s, shown.callback());
        std::cout << "ok ";
        print_version_line(s);
      } else if (*prune_cmd) {
        prune(*tree, keep_recent);
        std::cout << "versions: " << version_list(tree->versions()) << '\n';
      } else if (*export_cmd) {
        export_file(version_or_latest(*tree, version), stream_path);
      } else if (*prove_cmd) {
        const iavl::snapshot s = version_or_latest(*tree, version);
        const std::string key = parse_bytes(key_hex, "key");
        // Whole or nothing: a failed proof leaves no half line.
        const std::string line = s.has(key) ? "membership " + iavl::to_hex(iavl::membership_proof(s, key))
                                            : "non-membership " + iavl::to_hex(iavl::non_membership_proof(s, key));
        std::cout << line << '\n';
      } else if (*rollback_cmd) {
        tree->rollback_to(target);
        print_version_line(tree->last_commit());
      }
    }
    if (status == 0) check_output();  // a failed replay has said why already
  } catch (const input_error& e) {
    std::cerr << "iavl " << command << ": " << e.message << '\n';
    return 1;
  } catch (const iavl::error& e) {
    std::cerr << "iavl " << command << ": " << e.what() << " [" << iavl::to_string(e.code()) << "]\n";
    return 1;
  }
  return status;
} catch (const std::exception& e) {  // anything the commands did not report themselves, e.g. out of memory
  std::cerr << "iavl: " << e.what() << '\n';
  return 1;
}
