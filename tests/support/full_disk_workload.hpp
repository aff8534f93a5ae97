// The workload of the full-disk test (crash_test.cpp, DiskFull) and of its writer process: what
// each version sets depends only on the version, so the test can rebuild any prefix in memory.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "iavl/tree.hpp"

namespace test_support {

/// Sets version `v`'s 50 keys (out of 20,000) in `t`.
inline void set_version(iavl::tree& t, std::int64_t v) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(v));
  for (int i = 0; i < 50; ++i) {
    t.set("key" + std::to_string(rng() % 20000), std::string(60, static_cast<char>('a' + v % 26)));
  }
}

}  // namespace test_support
