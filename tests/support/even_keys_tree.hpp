// A small tree for proof tests and the proof fuzzer. Test support only.
#pragma once

#include <cstdio>
#include <string>

#include "iavl/iavl.hpp"

namespace test_trees {

/// Keys k000, k002, ..., k<2(count-1)> (even numbers, so that the odd ones are absent keys
/// between two neighbours), value "v" + key, added over `versions` versions in turn so that node
/// versions differ inside the tree. count <= 500.
inline iavl::snapshot even_keys_tree(int count, int versions) {
  iavl::versioned_tree db;
  for (int version = 0; version < versions; ++version) {
    iavl::tree t = db.branch();
    for (int i = version; i < count; i += versions) {
      char key[8];
      std::snprintf(key, sizeof key, "k%03d", 2 * i);
      t.set(key, std::string("v") + key);
    }
    (void)db.commit(std::move(t));
  }
  return db.last_commit();
}

}  // namespace test_trees
