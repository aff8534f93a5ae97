// libFuzzer target: import_state (docs/format.md, "State sync stream") on arbitrary bytes.
//
// Beyond "no crash, no sanitizer report", it checks that an import either fails with
// errc::corruption and leaves the store without a node or a version, or yields a version that
// verifies and whose export imports again to the same root hash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "iavl/iavl.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "state_sync_import_fuzz: %s\n", what);
    std::abort();
  }
}

std::size_t stored_nodes(const iavl::node_store& store) {
  std::size_t n = 0;
  store.scan_nodes(0, INT64_MAX, [&](iavl::node_key) { return ++n, true; });
  return n;
}

iavl::options in_memory_store() {
  iavl::options opts;
  opts.store = iavl::open_memory_store();
  return opts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const iavl::options opts = in_memory_store();
  const iavl::node_store& store = *opts.store;
  iavl::versioned_tree db(opts);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  iavl::snapshot imported;
  try {
    imported = iavl::import_state(db, in);
  } catch (const iavl::error& e) {
    check(e.code() == iavl::errc::corruption, "import failed with a code other than corruption");
    check(stored_nodes(store) == 0, "a failed import left nodes behind");
    check(db.versions().empty(), "a failed import left a version");
    return 0;
  }
  imported.verify();  // throws (and so crashes the target) if the imported tree is damaged
  std::ostringstream out;
  iavl::export_state(imported, out);
  iavl::versioned_tree again(in_memory_store());
  std::istringstream back(out.str());
  check(iavl::import_state(again, back).hash() == imported.hash(), "re-export imports to another hash");
  return 0;
}
