// State sync between two LevelDB databases: export the latest version of one as a stream,
// import it into an empty one, and get the same tree (same root hash, same version), which
// then commits on as usual.
//
//   example_state_sync [DIR]   (default: a fresh directory under the temp dir, removed after)
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iavl/iavl.hpp>
#include <iavl/leveldb_store.hpp>
#include <iostream>
#include <string>

namespace {

iavl::versioned_tree open_db(const std::filesystem::path& dir) {
  iavl::options opts;
  opts.store = iavl::open_leveldb_store(dir.string());
  return iavl::versioned_tree(opts);
}

}  // namespace

int main(int argc, char** argv) {
  const bool temporary = argc < 2;
  const std::filesystem::path dir =
      temporary ? std::filesystem::temp_directory_path() / ("iavl-state-sync-" + std::to_string(::getpid()))
                : std::filesystem::path(argv[1]);
  std::filesystem::create_directories(dir);
  const std::filesystem::path stream_path = dir / "state.sync";

  // A node that has the chain: a few blocks.
  iavl::hash256 app_hash;
  {
    iavl::versioned_tree source = open_db(dir / "source");
    for (int block = 1; block <= 5; ++block) {
      iavl::tree t = source.branch();
      for (int i = 0; i < 1000; ++i) t.set("account/" + std::to_string(i * block % 1500), std::to_string(block));
      (void)source.commit(std::move(t));
    }
    const iavl::snapshot latest = source.last_commit();
    app_hash = latest.hash();
    std::ofstream out(stream_path, std::ios::binary);
    const std::uint64_t nodes = iavl::export_state(latest, out);
    std::cout << "exported version " << latest.version() << ": " << nodes << " nodes, root " << app_hash.hex() << '\n';
  }

  // A new node: imports the stream, checking it against the app hash it trusts.
  iavl::versioned_tree target = open_db(dir / "target");
  std::ifstream in(stream_path, std::ios::binary);
  iavl::import_options options;
  options.expected_hash = app_hash;
  const iavl::snapshot imported = iavl::import_state(target, in, options);
  std::cout << "imported version " << imported.version() << ": " << imported.size() << " keys, root "
            << imported.hash().hex() << '\n';
  imported.verify();

  iavl::tree next = target.branch();  // and goes on with the chain
  next.set("account/0", "6");
  const iavl::snapshot six = target.commit(std::move(next));
  const bool same = imported.hash() == app_hash && six.version() == 6;
  std::cout << (same ? "same root hash; committed version 6 on top" : "FAILED") << '\n';
  if (temporary) std::filesystem::remove_all(dir);
  return same ? 0 : 1;
}
