// A node store in a LevelDB database (Debian's libleveldb). Link iavl::leveldb.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "iavl/node_store.hpp"

namespace iavl {

struct leveldb_options {
  /// Create the database when `path` does not exist yet. Otherwise opening a missing database
  /// throws errc::not_a_database.
  bool create_if_missing = true;
  /// LevelDB's block cache, for root records, metadata and scans. Node reads bypass it: the tree
  /// keeps its own cache of decoded nodes (options::cache_bytes).
  std::size_t block_cache_bytes = std::size_t{8} << 20;
  /// LevelDB's memtable size. 16 MiB measured best in the `block` benchmarks: 64 MiB flushes
  /// stalled commits (p99 2x longer), 4-8 MiB ones made pruning's deletes compact all the time.
  std::size_t write_buffer_bytes = std::size_t{16} << 20;
  /// Snappy compression of table blocks (hashes do not compress; keys and values may).
  bool compression = false;
  /// Bloom filter bits per record (0: no filter). A node read looks in each level of LevelDB
  /// until it finds the node; the filters let it skip the levels that do not have it, for about
  /// bits/8 bytes of memory per record in open tables.
  int bloom_bits_per_key = 10;
};

/// Opens (or creates) the LevelDB database at `path`. Throws iavl::error: not_a_database when
/// `path` is not a LevelDB directory (a file, or a non-empty directory without a database; what a
/// creation that failed before LevelDB wrote its CURRENT file leaves, as on a full disk, counts as
/// empty), or holds none and options.create_if_missing is false,
/// corruption when LevelDB finds its files damaged, io_error otherwise. Block checksums are
/// verified on every read but a node record's, which carries a checksum of its own.
/// LevelDB's table files are written by the store, which starts their writeback every MiB (so
/// that a table's closing sync does not hold the disk while a commit syncs), and read with pread
/// rather than mapped; the rest is LevelDB's own default environment. Open tables keep a file
/// descriptor each up to a fifth of the process's limit (RLIMIT_NOFILE); beyond that a read opens
/// its table's file for itself, which costs a system call or two more: a large database wants the
/// limit raised (`ulimit -n`) to five times its number of tables (a table holds up to 32 MiB).
[[nodiscard]] std::shared_ptr<node_store> open_leveldb_store(const std::string& path,
                                                             const leveldb_options& options = {});

}  // namespace iavl
