// A memory store whose writes or node reads fail, or whose writes are held, on demand: for the
// paths that must survive a failed write or read, and those that race with a pending write. It
// counts node reads.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <thread>

#include "iavl/errors.hpp"
#include "iavl/node_store.hpp"

namespace test_support {

class failing_store : public iavl::node_store {
 public:
  bool fail_writes = false;     ///< every write throws errc::io_error
  int writes_left = -1;         ///< when >= 0: that many more writes succeed, later ones fail
  std::atomic<long> writes{0};  ///< successful writes so far; they are numbered from 1
  /// A write returns (after writing) only once this reaches its number.
  std::atomic<long> release_through{LONG_MAX};

  /// When >= 0: that many more node reads succeed, later ones throw errc::io_error.
  mutable std::atomic<long> reads_left{-1};
  mutable std::atomic<long> node_reads{0};  ///< read_node calls so far
  mutable std::atomic<long> leaf_reads{0};  ///< those that found a leaf (a record of kind 00, docs/format.md)

  bool read_node(iavl::node_key k, std::string& out) const override {
    if (reads_left == 0) throw iavl::error(iavl::errc::io_error, "injected read failure");
    if (reads_left > 0) --reads_left;
    ++node_reads;
    const bool found = inner->read_node(k, out);
    if (found && !out.empty() && out[0] == '\0') ++leaf_reads;
    return found;
  }
  bool read_meta(std::string_view n, std::string& out) const override { return inner->read_meta(n, out); }
  void scan_meta(std::string_view p, const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    inner->scan_meta(p, fn);
  }
  void scan_nodes(std::int64_t a, std::int64_t b, const std::function<bool(iavl::node_key)>& fn) const override {
    inner->scan_nodes(a, b, fn);
  }
  void write(const iavl::write_batch& batch, bool sync) override {
    if (writes_left == 0) fail_writes = true;
    if (writes_left > 0) --writes_left;
    if (fail_writes) throw iavl::error(iavl::errc::io_error, "injected write failure");
    inner->write(batch, sync);
    const long number = ++writes;
    while (release_through.load() < number) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  std::uint64_t size_bytes() const override { return inner->size_bytes(); }
  std::shared_ptr<iavl::node_store> inner = iavl::open_memory_store();
};

}  // namespace test_support
