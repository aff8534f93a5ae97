// A version of numbered keys, the fixture of many tests.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "iavl/iavl.hpp"

namespace test_support {

/// Commits a version of `n` keys "k0", "k1", ... with values "value of k0", ...; returns them.
inline std::map<std::string, std::string> commit_keys(iavl::versioned_tree& db, int n) {
  std::map<std::string, std::string> m;
  iavl::tree t = db.branch();
  for (int i = 0; i < n; ++i) {
    const std::string k = "k" + std::to_string(i);
    t.set(k, "value of " + k);
    m[k] = "value of " + k;
  }
  (void)db.commit(std::move(t));
  return m;
}

}  // namespace test_support
