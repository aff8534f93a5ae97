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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "iavl/detail/node_pool.hpp"

namespace iavl {

namespace detail {
class store_claim;
}  // namespace detail

/// Where a node is stored: the version that created it and its sequence number (from 1) among
/// the nodes that version wrote. Ordered by version, then nonce.
struct node_key {
  std::int64_t version = 0;
  std::uint32_t nonce = 0;
  friend auto operator<=>(const node_key&, const node_key&) = default;
};

/// Serialized node records, each under its node key, kept back to back in one buffer: a
/// version writes hundreds of thousands of them at times, and one allocation a record would
/// cost a malloc and a free each and leave the freeing thread's malloc arena fragmented.
/// Iterates as (key, record) pairs in the order they were added.
class node_records {
 public:
  using value_type = std::pair<node_key, std::string_view>;

  node_records() = default;
  node_records(std::initializer_list<value_type> records) {
    for (const auto& [key, record] : records) add(key, record);
  }

  void add(node_key key, std::string_view record) {
    bytes_.insert(bytes_.end(), record.begin(), record.end());
    ends_.push_back({key, bytes_.size()});
  }
  void clear() {
    bytes_.clear();
    ends_.clear();
  }
  void reserve(std::size_t records) { ends_.reserve(records); }

  [[nodiscard]] std::size_t size() const { return ends_.size(); }
  [[nodiscard]] bool empty() const { return ends_.empty(); }
  /// The records' bytes together.
  [[nodiscard]] std::size_t bytes() const { return bytes_.size(); }

  [[nodiscard]] value_type operator[](std::size_t i) const {
    const std::size_t begin = i == 0 ? 0 : ends_[i - 1].end;
    return {ends_[i].key, std::string_view(bytes_.data() + begin, ends_[i].end - begin)};
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;  // it yields values, not references
    using value_type = node_records::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;

    iterator() = default;
    iterator(const node_records* records, std::size_t i) : records_(records), i_(i) {}
    value_type operator*() const { return (*records_)[i_]; }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    iterator operator++(int) {
      iterator before = *this;
      ++i_;
      return before;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }

   private:
    const node_records* records_ = nullptr;
    std::size_t i_ = 0;
  };
  [[nodiscard]] iterator begin() const { return {this, 0}; }
  [[nodiscard]] iterator end() const { return {this, ends_.size()}; }

 private:
  struct entry {
    node_key key;
    std::size_t end;  // of its record in bytes_
  };
  // Scratch memory: from 1 MiB on in huge pages, as a load's version writes over 100 MB.
  detail::node_pool::scratch_vector<char> bytes_;
  detail::node_pool::scratch_vector<entry> ends_;
};

/// A set of changes applied atomically by node_store::write.
struct write_batch {
  node_records put_nodes;  ///< serialized nodes
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
  /// key order, until fn returns false. Like scan_meta, throws `corruption` when a record on the
  /// way could not be read, also after fn stopped the scan: a scan must not skip records.
  virtual void scan_nodes(std::int64_t first_version, std::int64_t last_version,
                          const std::function<bool(node_key key)>& fn) const = 0;

  /// Applies every change of `batch` or none. With `sync`, the changes, and those of every
  /// earlier write, are durable (survive a crash of the process or the machine) when write
  /// returns: a large version comes in several writes, only the last synced (docs/format.md).
  virtual void write(const write_batch& batch, bool sync) = 0;

  /// Approximate bytes the store occupies (on disk, or in memory for the memory store).
  [[nodiscard]] virtual std::uint64_t size_bytes() const = 0;

  /// Whether the store holds no records at all: a store without iavl's format record is taken
  /// for a new database only then. A backend that may hold records neither scan lists (another
  /// program's, in a shared key space) overrides it to count those too.
  [[nodiscard]] virtual bool empty() const {
    bool empty = true;
    scan_meta("", [&](std::string_view, std::string_view) { return empty = false; });
    if (empty) scan_nodes(0, INT64_MAX, [&](node_key) { return empty = false; });
    return empty;
  }

 protected:
  node_store() = default;
  // A copy is a store of its own: not in use by anyone yet.
  node_store(const node_store& /*other*/) noexcept {}
  node_store& operator=(const node_store& /*other*/) noexcept { return *this; }

 private:
  // Whether a versioned_tree uses the store: one at a time may, as each keeps the latest version
  // in memory and a second one would commit its own versions over the first's.
  friend class detail::store_claim;
  std::atomic<bool> in_use_{false};
};

/// A store that keeps serialized nodes in memory, for tests and benchmarks; its contents vanish
/// with it.
[[nodiscard]] std::shared_ptr<node_store> open_memory_store();

}  // namespace iavl
