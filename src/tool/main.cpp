// The `iavl` command-line tool: replay operation logs and inspect or maintain databases.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
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

  void add_to(CLI::App& cmd, bool required) {
    auto* db = cmd.add_option("--db", path, "database directory (LevelDB)");
    if (required) db->required();
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
    }
    return std::make_unique<iavl::versioned_tree>(o);
  }
};

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

// Progress on a terminal only, so that piped output stays clean.
class progress {
 public:
  explicit progress(const char* what) : what_(what), on_(::isatty(STDERR_FILENO) != 0) {}
  void update(std::int64_t n) {
    if (on_ && n % 1000 == 0) std::cerr << '\r' << what_ << ' ' << n << std::flush;
  }
  ~progress() {
    if (on_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  const char* what_;
  bool on_;
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
      std::cerr << "iavl replay: line " << number << ": " << e.what() << '\n';
      return 1;
    }
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

iavl::snapshot version_or_latest(const iavl::versioned_tree& db, std::int64_t version) {
  return version > 0 ? db.at(version) : db.last_commit();
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
  db.add_to(*replay_cmd, false);
  replay_cmd->add_option("--store", db.store, "node store for --db")->check(CLI::IsMember({"leveldb", "mem"}));
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
  get_cmd->add_option("--version", version, "version to read (default: latest)");
  get_cmd->add_option("key", key_hex, "key (hex)")->required();

  auto* verify_cmd =
      app.add_subcommand("verify",
                         "Check every node of a version (hashes, order, balance, sizes); report the first problem.\n"
                         "Example: iavl verify --db /tmp/state --version 3");
  db.add_to(*verify_cmd, true);
  verify_cmd->add_option("--version", version, "version to check (default: latest)");

  std::int64_t keep_recent = 0;
  auto* prune_cmd = app.add_subcommand("prune",
                                       "Delete every version but the last N, reclaiming their nodes.\n"
                                       "Example: iavl prune --db /tmp/state --keep-recent 100");
  db.add_to(*prune_cmd, true);
  prune_cmd->add_option("--keep-recent", keep_recent, "versions to keep")->required()->check(CLI::PositiveNumber);

  std::int64_t target = 0;
  auto* rollback_cmd = app.add_subcommand("rollback",
                                          "Make a kept older version the latest, deleting every newer version.\n"
                                          "Example: iavl rollback --db /tmp/state --to 41");
  db.add_to(*rollback_cmd, true);
  rollback_cmd->add_option("--to", target, "version to return to")->required();

  // Set after the commands, which would otherwise inherit it.
  app.footer(
      "Run 'iavl COMMAND --help' for the options of a command.\n"
      "Exit status: 0 on success, 1 on bad input or an I/O failure, 2 on bad usage.");

  try {
    app.parse(argc, argv);
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
  try {
    if (*replay_cmd) {
      auto tree = db.open(true);
      if (log_path == "-") return replay(std::cin, *tree);
      std::ifstream file(log_path);
      if (!file) throw input_error{"cannot open '" + log_path + "': " + std::strerror(errno)};
      return replay(file, *tree);
    }
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
      s.verify();
      std::cout << "ok ";
      print_version_line(s);
    } else if (*prune_cmd) {
      tree->delete_versions_before(tree->latest_version() - keep_recent + 1);
      std::cout << "versions: " << version_list(tree->versions()) << '\n';
    } else if (*rollback_cmd) {
      tree->rollback_to(target);
      print_version_line(tree->last_commit());
    }
  } catch (const input_error& e) {
    std::cerr << "iavl " << command << ": " << e.message << '\n';
    return 1;
  } catch (const iavl::error& e) {
    std::cerr << "iavl " << command << ": " << e.what() << " [" << iavl::to_string(e.code()) << "]\n";
    return 1;
  }
  return 0;
} catch (const std::exception& e) {  // anything the commands did not report themselves, e.g. out of memory
  std::cerr << "iavl: " << e.what() << '\n';
  return 1;
}
