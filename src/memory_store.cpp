// open_memory_store(): serialized nodes and metadata in memory, the same records a LevelDB store
// holds.
//
// A version's node records sit back to back in one buffer, with a list of where each is, in
// nonce order: a commit's run of records costs one copy of its bytes and one entry each. A map
// entry a record cost two allocations and about 240 bytes against 132 here, and the store grows
// by that much every commit (at 1M keys a block of 1000 writes 11,600 records), on a machine
// where fresh pages are slow to get. A record written again is replaced in place; new ones out of
// nonce order are merged in once a batch. A deleted record is marked, and its room given back
// once such records fill half of their version's buffer or list.
#include <algorithm>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "iavl/detail/store_keys.hpp"
#include "iavl/node_store.hpp"

namespace iavl {

namespace {

// The node records of one version.
class version_records {
 public:
  // Sets the records [first, last) of `puts`, all of this version, in any order, a later one of
  // a nonce replacing an earlier one (values are at most 1 GiB, so a record fits its 32-bit size).
  // Returns the change in the bytes the store counts: 13 for the key, and the record.
  std::int64_t put(const node_records& puts, std::size_t first, std::size_t last, std::size_t bytes) {
    reserve(last - first, bytes);
    const std::size_t before = entries_.size();
    std::size_t in_order = before;  // entries_[0, in_order) are in nonce order, each nonce once
    std::int64_t change = 0;
    for (std::size_t i = first; i < last; ++i) {
      const auto [k, record] = puts[i];
      const entry added{.begin = bytes_.size(), .nonce = k.nonce, .size = static_cast<std::uint32_t>(record.size())};
      bytes_.append(record);
      change += static_cast<std::int64_t>(detail::node_record_key_size + record.size());
      if (in_order == entries_.size() && (in_order == 0 || entries_.back().nonce < k.nonce)) {
        entries_.push_back(added);
        ++in_order;
        continue;
      }
      const auto it = entries_.begin() + position(k.nonce, in_order);
      if (it == entries_.begin() + static_cast<std::ptrdiff_t>(in_order) || it->nonce != k.nonce) {
        entries_.push_back(added);  // a new nonce among the others: merged in below
        continue;
      }
      if (it->live()) {  // replaced in place
        dead_bytes_ += it->size;
        change -= static_cast<std::int64_t>(detail::node_record_key_size + it->size);
      } else {  // revived
        ++live_;
      }
      *it = added;
    }
    live_ += entries_.size() - before;  // the entries added (those replaced in place are counted above)
    if (in_order < entries_.size()) change -= merge_out_of_order(in_order);
    return change;
  }

  // Deletes the record of `nonce`; returns the bytes it held, or -1 when there was none.
  std::int64_t erase(std::uint32_t nonce) {
    const std::ptrdiff_t at = live_index(nonce);
    if (at < 0) return -1;
    const auto it = entries_.begin() + at;
    const std::uint32_t size = it->size;
    dead_bytes_ += size;
    it->size = entry::dead;
    --live_;
    return size;
  }

  // Gives back the room of deleted and overwritten records once they are most of the buffer or
  // of the list.
  void compact() {
    if (dead_bytes_ <= bytes_.size() / 2 && entries_.size() - live_ <= live_) return;
    std::string bytes;
    bytes.reserve(bytes_.size() - dead_bytes_);
    std::vector<entry> entries;
    entries.reserve(live_);
    for (const entry& e : entries_) {
      if (!e.live()) continue;
      entries.push_back({.begin = bytes.size(), .nonce = e.nonce, .size = e.size});
      bytes.append(bytes_, e.begin, e.size);
    }
    bytes_ = std::move(bytes);
    entries_ = std::move(entries);
    dead_bytes_ = 0;
  }

  bool read(std::uint32_t nonce, std::string& out) const {
    const std::ptrdiff_t at = live_index(nonce);
    if (at < 0) return false;
    const entry& e = entries_[static_cast<std::size_t>(at)];
    out.assign(bytes_, e.begin, e.size);
    return true;
  }

  // Calls fn(nonce) for each record in nonce order until fn returns false; returns false then.
  template <typename Fn>
  bool scan(Fn&& fn) const {
    for (const entry& e : entries_) {
      if (e.live() && !fn(e.nonce)) return false;
    }
    return true;
  }

  [[nodiscard]] bool empty() const { return live_ == 0; }

 private:
  // Makes room for `count` more records of `bytes` together: a version comes in one batch, or in
  // pieces of a few MiB (which grow the room geometrically, not piece by piece).
  void reserve(std::size_t count, std::size_t bytes) {
    if (bytes_.capacity() - bytes_.size() < bytes) {
      bytes_.reserve(std::max(bytes_.size() + bytes, 2 * bytes_.capacity()));
    }
    if (entries_.capacity() - entries_.size() < count) {
      entries_.reserve(std::max(entries_.size() + count, 2 * entries_.capacity()));
    }
  }

  // Sorts the entries from `in_order` on (a run out of nonce order: the tree writes a version's
  // root last, at nonce 0) into the rest, the newer of a nonce replacing the older. Returns the
  // bytes the store counts no more.
  std::int64_t merge_out_of_order(std::size_t in_order) {
    const auto by_nonce = [](const entry& a, const entry& b) { return a.nonce < b.nonce; };
    const auto middle = entries_.begin() + static_cast<std::ptrdiff_t>(in_order);
    std::stable_sort(middle, entries_.end(), by_nonce);
    std::inplace_merge(entries_.begin(), middle, entries_.end(), by_nonce);  // stable: older first
    std::int64_t gone = 0;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const entry& e = entries_[i];
      if (i + 1 == entries_.size() || entries_[i + 1].nonce != e.nonce) {
        entries_[kept++] = e;
      } else if (e.live()) {  // replaced
        dead_bytes_ += e.size;
        gone += static_cast<std::int64_t>(detail::node_record_key_size + e.size);
        --live_;
      }
    }
    entries_.resize(kept);
    return gone;
  }

  struct entry {
    static constexpr std::uint32_t dead = UINT32_MAX;  // a deleted record's size
    std::size_t begin;                                 // of its record in bytes_
    std::uint32_t nonce;
    std::uint32_t size;
    [[nodiscard]] bool live() const { return size != dead; }
  };
  // Where the entry of `nonce` is, or would go, among the first `end` entries (all by default).
  [[nodiscard]] std::ptrdiff_t position(std::uint32_t nonce, std::size_t end = SIZE_MAX) const {
    const auto last = entries_.begin() + static_cast<std::ptrdiff_t>(std::min(end, entries_.size()));
    return std::lower_bound(entries_.begin(), last, nonce,
                            [](const entry& e, std::uint32_t n) { return e.nonce < n; }) -
           entries_.begin();
  }
  // The index of the live record of `nonce`, or -1 when there is none.
  [[nodiscard]] std::ptrdiff_t live_index(std::uint32_t nonce) const {
    const std::ptrdiff_t at = position(nonce);
    const auto it = entries_.begin() + at;
    return it != entries_.end() && it->nonce == nonce && it->live() ? at : -1;
  }

  std::string bytes_;
  std::vector<entry> entries_;  // by nonce
  std::size_t live_ = 0;
  std::size_t dead_bytes_ = 0;
};

class memory_store final : public node_store {
 public:
  bool read_node(node_key key, std::string& out) const override {
    std::shared_lock lock(mutex_);
    const auto it = nodes_.find(key.version);
    return it != nodes_.end() && it->second.read(key.nonce, out);
  }

  bool read_meta(std::string_view name, std::string& out) const override {
    std::shared_lock lock(mutex_);
    const auto it = meta_.find(name);
    if (it == meta_.end()) return false;
    out = it->second;
    return true;
  }

  void scan_meta(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    std::shared_lock lock(mutex_);
    for (auto it = meta_.lower_bound(prefix); it != meta_.end() && it->first.starts_with(prefix); ++it) {
      if (!fn(it->first, it->second)) return;
    }
  }

  void scan_nodes(std::int64_t first_version, std::int64_t last_version,
                  const std::function<bool(node_key)>& fn) const override {
    std::shared_lock lock(mutex_);
    for (auto it = nodes_.lower_bound(first_version); it != nodes_.end() && it->first <= last_version; ++it) {
      const std::int64_t version = it->first;
      if (!it->second.scan([&](std::uint32_t nonce) { return fn({version, nonce}); })) return;
    }
  }

  void write(const write_batch& batch, bool /*sync*/) override {
    std::unique_lock lock(mutex_);
    const node_records& puts = batch.put_nodes;
    for (std::size_t i = 0; i < puts.size();) {
      const std::int64_t version = puts[i].first.version;
      std::size_t end = i, run_bytes = 0;
      for (; end < puts.size() && puts[end].first.version == version; ++end) run_bytes += puts[end].second.size();
      const auto [at, added] = nodes_.try_emplace(version);
      try {
        bytes_ += static_cast<std::uint64_t>(at->second.put(puts, i, end, run_bytes));
      } catch (...) {  // out of memory before it changed anything: no empty version left behind
        if (added) nodes_.erase(at);
        throw;
      }
      at->second.compact();
      i = end;
    }
    for (const node_key& k : batch.delete_nodes) erase(k);
    for (const auto& [name, value] : batch.put_meta) {
      const auto [it, added] = meta_.try_emplace(name);
      bytes_ += value.size() - it->second.size() + (added ? 1 + name.size() : 0);
      it->second = value;
    }
    for (const auto& name : batch.delete_meta) {
      const auto it = meta_.find(name);
      if (it == meta_.end()) continue;
      bytes_ -= 1 + it->first.size() + it->second.size();
      meta_.erase(it);
    }
  }

  // Counts records of every version, where scans start from version 0.
  bool empty() const override {
    std::shared_lock lock(mutex_);
    return nodes_.empty() && meta_.empty();
  }

  // The records' bytes with the keys a key-value backend stores them under.
  std::uint64_t size_bytes() const override {
    std::shared_lock lock(mutex_);
    return bytes_;
  }

 private:
  void erase(node_key k) {
    const auto it = nodes_.find(k.version);
    if (it == nodes_.end()) return;
    const std::int64_t size = it->second.erase(k.nonce);
    if (size < 0) return;
    bytes_ -= detail::node_record_key_size + size;
    if (it->second.empty()) {
      nodes_.erase(it);
    } else {
      it->second.compact();
    }
  }

  mutable std::shared_mutex mutex_;
  std::map<std::int64_t, version_records> nodes_;
  std::map<std::string, std::string, std::less<>> meta_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

std::shared_ptr<node_store> open_memory_store() { return std::make_shared<memory_store>(); }

}  // namespace iavl
