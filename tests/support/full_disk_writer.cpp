// full_disk_writer DB: commits test_support::set_version's versions 1, 2, ... into a new LevelDB
// database at DB, with small memtables (64 KiB) and pruning to the last 2 versions, until a commit
// fails. Run under a file-size limit (DiskFull in crash_test.cpp): the memtables keep LevelDB's
// log small, while pruning's deletes make compactions merge tables into larger ones, so that the
// first write to fail is a table's. Prints the last version committed on stdout and the error on
// stderr. Exit status: 0 after a typed error (iavl::error), 2 when all 5000 versions committed.
#include <iostream>

#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"
#include "support/full_disk_workload.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 3;
  std::int64_t committed = 0;
  try {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_leveldb_store(argv[1], {.write_buffer_bytes = 64 << 10}),
                                          .keep = {.keep_recent = 2}});
    for (std::int64_t v = 1; v <= 5000; ++v) {
      iavl::tree t = db.branch();
      test_support::set_version(t, v);
      committed = db.commit(std::move(t)).version();
    }
  } catch (const iavl::error& e) {
    std::cout << committed << std::endl;
    std::cerr << "commit " << committed + 1 << " failed: " << e.what() << " [" << iavl::to_string(e.code()) << "]\n";
    return 0;
  }
  std::cout << committed << std::endl;
  return 2;
}
