// The `iavl` command-line tool.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "iavl/iavl.hpp"

namespace {

struct input_error {
  std::string message;
};

std::string parse_bytes(const std::string& token, const char* what) {
  if (token == "-") return {};
  std::string out;
  if (token.empty() || !iavl::from_hex(token, out))
    throw input_error{std::string("invalid ") + what + " hex '" + token + "'"};
  return out;
}

void print_commit(const iavl::snapshot& s) {
  std::cout << s.version() << ' ' << s.hash().hex() << ' ' << s.size() << '\n';
}

// Applies an operation log (see README: set/remove/commit, one a line) and prints one line per
// commit. Stops at the first malformed line; nothing after it is applied.
int replay(std::istream& in) {
  iavl::versioned_tree db;
  iavl::tree work = db.branch();
  std::string line;
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
        print_commit(db.commit(std::move(work)));
        work = db.branch();
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

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"iavl: inspect and drive IAVL trees (hash-compatible with cosmos/iavl)"};
  app.require_subcommand(1);

  std::string log_path = "-";
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "Replay an operation log and print '<version> <root-hash-hex> <size>' per commit.\n"
      "Log lines: 'set <key-hex> <value-hex>', 'remove <key-hex>', 'commit'; '-' is the empty string.\n"
      "Example: printf 'set 01 ff\\ncommit\\n' | iavl replay");
  replay_cmd->add_option("log", log_path, "operation log file ('-' or omitted: stdin)");

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

  if (*replay_cmd) {
    if (log_path == "-") return replay(std::cin);
    std::ifstream file(log_path);
    if (!file) {
      std::cerr << "iavl replay: cannot open '" << log_path << "': " << std::strerror(errno) << '\n';
      return 1;
    }
    return replay(file);
  }
  return 0;
} catch (const std::exception& e) {  // anything the commands did not report themselves, e.g. out of memory
  std::cerr << "iavl: " << e.what() << '\n';
  return 1;
}
