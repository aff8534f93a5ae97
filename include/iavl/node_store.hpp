// The node store: where a versioned tree keeps its nodes and metadata.
//
// A small interface in the spirit of LevelDB's Env: backends plug in at run time. The tree
// writes each node once, under its node key (the version that created it and a sequence number
// within that version), so one commit writes one sorted run of keys. Metadata are small named
// records (the format version, the root of each kept version, ...). docs/format.md describes
// the records. Two backends come with the library: open_memory_store() (here) and
// open_leveldb_store() (iavl/leveldb_store.hpp, library target iavl::leveldb).
//
// Thread-safety: implementations must allow concurrent calls from several threads (a tree
// loads nodes from reader threads while its writer commits and a pruner deletes).
//
// Errors: implementations throw iavl::error — errc::io_error when the backend fails,
// errc::corruption when it detects damaged data.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iavl {

/// Where a node is stored: the version that created it and its sequence number (from 1) among
/// the nodes that version wrote. Ordered by version, then nonce.
struct node_key {
  std::int64_t version = 0;
  std::uint32_t nonce = 0;
  friend auto operator<=>(const node_key&, const node_key&) = default;
};

/// A set of changes applied atomically by node_store::write.
struct write_batch {
  std::vector<std::pair<node_key, std::string>> put_nodes;  ///< serialized nodes
  std::vector<node_key> delete_nodes;
  std::vector<std::pair<std::string, std::string>> put_meta;
  std::vector<std::string> delete_meta;

  [[nodiscard]] bool empty() const {
    return put_nodes.empty() && delete_nodes.empty() && put_meta.empty() && delete_meta.empty();
  }
};

class node_store {
 public:
  virtual ~node_store() = default;

  /// Reads the node stored under `key` into `out`. Returns false when there is none.
  virtual bool read_node(node_key key, std::string& out) const = 0;

  /// Reads the metadata record `name` into `out`. Returns false when there is none.
  virtual bool read_meta(std::string_view name, std::string& out) const = 0;

  /// Calls fn(name, value) for every metadata record whose name starts with `prefix`, in name
  /// order, until fn returns false.
  virtual void scan_meta(std::string_view prefix,
                         const std::function<bool(std::string_view name, std::string_view value)>& fn) const = 0;

  /// Calls fn(key) for every stored node with first_version <= key.version <= last_version, in
  /// key order, until fn returns false.
  virtual void scan_nodes(std::int64_t first_version, std::int64_t last_version,
                          const std::function<bool(node_key key)>& fn) const = 0;

  /// Applies every change of `batch` or none. With `sync`, the changes are durable (survive a
  /// crash of the process or the machine) when write returns.
  virtual void write(const write_batch& batch, bool sync) = 0;

  /// Approximate bytes the store occupies (on disk, or in memory for the memory store).
  [[nodiscard]] virtual std::uint64_t size_bytes() const = 0;
};

/// A store that keeps serialized nodes in memory, for tests and benchmarks; its contents vanish
/// with it.
[[nodiscard]] std::shared_ptr<node_store> open_memory_store();

}  // namespace iavl
