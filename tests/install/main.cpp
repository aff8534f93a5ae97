// A consumer of iavl-cpp: commits one key and checks the root hash that cosmos/iavl computes for
// it (tests/vectors/one_key), which also proves that SHA-256 (OpenSSL) is linked in. With the
// leveldb component it commits into a LevelDB database and reads the hash back after reopening.
#include <iavl/iavl.hpp>
#include <iostream>
#include <string>
#ifdef CONSUMER_USES_LEVELDB
#include <filesystem>
#include <iavl/leveldb_store.hpp>
#endif

int main() {
  const std::string want = "6032661ab0d201132db7a8fa1da6a0afe427e6278bd122c301197680ab79ca02";
  iavl::options opts;
#ifdef CONSUMER_USES_LEVELDB
  const auto path = std::filesystem::current_path() / "consumer-db";
  std::filesystem::remove_all(path);
  opts.store = iavl::open_leveldb_store(path.string());
#endif
  {
    iavl::versioned_tree db(opts);
    iavl::tree work = db.branch();
    work.set("hello", "world");
    const iavl::snapshot v1 = db.commit(std::move(work));
    if (v1.version() != 1 || v1.hash().hex() != want) {
      std::cerr << "version " << v1.version() << " root hash " << v1.hash().hex() << ", want version 1 " << want
                << '\n';
      return 1;
    }
  }
#ifdef CONSUMER_USES_LEVELDB
  opts.store.reset();  // LevelDB allows one handle per database at a time
  opts.store = iavl::open_leveldb_store(path.string(), {.create_if_missing = false});
  iavl::versioned_tree reopened(opts);
  if (reopened.last_commit().hash().hex() != want || reopened.last_commit().get("hello") != "world") {
    std::cerr << "the reopened LevelDB database lost version 1\n";
    return 1;
  }
  std::cout << "leveldb: ";
#endif
  std::cout << "version 1 root hash " << want << '\n';
  return 0;
}
