// open_memory_store(): serialized nodes and metadata in memory, the same records a LevelDB store
// holds.
//
// A version's node records are copied back to back into the store's arena, with a list of where
// each is, in nonce order: a commit's run of records costs one copy of its bytes and one entry
// each. A map entry a record cost two allocations and about 240 bytes against 132 here, and the
// store grows by that much every commit (at 1M keys a block of 1000 writes 11,600 records), on a
// machine where fresh pages are slow to get. A record written again is replaced in place; new
// ones out of nonce order are merged in once a batch. A deleted record is marked and its room
// given back; a version moves its live records into a buffer of its own once dead ones are most
// of what it placed, so that the arena's chunks empty and go back to the system.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "iavl/detail/node_pool.hpp"
#include "iavl/detail/store_keys.hpp"
#include "iavl/node_store.hpp"

namespace iavl {

namespace {

// Record bytes, packed into 2 MiB chunks of huge pages. This machine's VM takes 11 µs to fault in
// a small page: a block's 1.3 MB of records in fresh malloc memory cost the writer thread 7 ms.
// A chunk goes back to the system once no record in it is live. Records too large to pack get an
// allocation of their own. Empty records need no room.
class record_arena {
 public:
  record_arena() = default;
  record_arena(const record_arena&) = delete;
  record_arena& operator=(const record_arena&) = delete;
  ~record_arena() {
    for (const auto& [chunk, live] : live_bytes_) detail::node_pool::unmap_huge(chunk, chunk_bytes);
    if (current_ != nullptr) detail::node_pool::unmap_huge(current_, chunk_bytes);
  }

  // A copy of `record`.
  const char* add(std::string_view record) {
    if (record.empty()) return nullptr;
    if (record.size() > own_allocation_bytes) {
      char* p = new char[record.size()];
      std::memcpy(p, record.data(), record.size());
      return p;
    }
    if (current_ == nullptr || current_ + chunk_bytes - next_ < static_cast<std::ptrdiff_t>(record.size())) {
      start_chunk();
    }
    char* p = next_;
    std::memcpy(p, record.data(), record.size());
    next_ += record.size();
    current_live_ += record.size();
    return p;
  }

  // Gives back the room of the record add() put at `p`, of `size` bytes.
  void release(const char* p, std::size_t size) noexcept {
    if (size == 0) return;
    if (size > own_allocation_bytes) {
      delete[] p;
      return;
    }
    char* chunk = chunk_of(p);
    if (chunk == current_) {
      current_live_ -= size;
      return;
    }
    const auto it = live_bytes_.find(chunk);
    it->second -= size;
    if (it->second == 0) {
      detail::node_pool::unmap_huge(chunk, chunk_bytes);
      live_bytes_.erase(it);
    }
  }

 private:
  static constexpr std::size_t chunk_bytes = detail::node_pool::huge_chunk_bytes;
  static constexpr std::size_t own_allocation_bytes = chunk_bytes / 8;

  static char* chunk_of(const char* p) {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<char*>(address - address % chunk_bytes);
  }

  // Moves on to a new chunk; the one left behind stays until its records are released.
  void start_chunk() {
    char* chunk = detail::node_pool::map_huge(chunk_bytes);
    if (current_ != nullptr && current_live_ > 0) {
      try {
        live_bytes_.emplace(current_, current_live_);
      } catch (...) {
        detail::node_pool::unmap_huge(chunk, chunk_bytes);
        throw;
      }
    } else if (current_ != nullptr) {
      detail::node_pool::unmap_huge(current_, chunk_bytes);
    }
    current_ = chunk;
    next_ = chunk;
    current_live_ = 0;
  }

  char* current_ = nullptr;  // the chunk records are added to
  char* next_ = nullptr;     // where its room starts
  std::size_t current_live_ = 0;
  std::unordered_map<char*, std::size_t> live_bytes_;  // of the chunks before it that hold live records
};

// The live records a version's compaction moved, in one buffer; from 1 MiB up in whole chunks of
// huge pages: a loaded version's 31 MB took 108 ms to copy into fresh small pages (the page
// faults), under the store's lock, which the next version's write waits for.
class moved_records {
 public:
  moved_records() = default;
  explicit moved_records(std::size_t bytes)
      : data_(bytes == 0               ? nullptr
              : mapped_size(bytes) > 0 ? detail::node_pool::map_huge(mapped_size(bytes))
                                       : new char[bytes]),
        bytes_(bytes) {}
  moved_records(const moved_records&) = delete;
  moved_records& operator=(const moved_records&) = delete;
  moved_records& operator=(moved_records&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  ~moved_records() {
    if (mapped_size(bytes_) > 0) {
      detail::node_pool::unmap_huge(data_, mapped_size(bytes_));
    } else {
      delete[] data_;
    }
  }

  [[nodiscard]] char* data() const { return data_; }
  [[nodiscard]] bool holds(const char* p) const {
    const auto at = reinterpret_cast<std::uintptr_t>(p), begin = reinterpret_cast<std::uintptr_t>(data_);
    return data_ != nullptr && at >= begin && at < begin + bytes_;
  }

 private:
  // The bytes mapped for a buffer of `bytes`; 0: it comes from new[].
  static std::size_t mapped_size(std::size_t bytes) {
    constexpr std::size_t chunk = detail::node_pool::huge_chunk_bytes;
    return bytes < chunk / 2 ? 0 : (bytes + chunk - 1) / chunk * chunk;
  }

  char* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Calls fn(version, begin, end) for each run [begin, end) of a batch's entries that are all of one
// version, in order; version_at(i) is entry i's version.
template <typename VersionAt, typename Fn>
void for_each_version_run(std::size_t size, VersionAt version_at, Fn fn) {
  for (std::size_t begin = 0; begin < size;) {
    const std::int64_t version = version_at(begin);
    std::size_t end = begin + 1;
    while (end < size && version_at(end) == version) ++end;
    fn(version, begin, end);
    begin = end;
  }
}

// The node records of one version, in the store's arena.
class version_records {
 public:
  explicit version_records(record_arena& arena) : arena_(&arena) {}
  version_records(const version_records&) = delete;
  version_records& operator=(const version_records&) = delete;
  ~version_records() {
    for (const entry& e : entries_) {
      if (e.live()) give_back(e);
    }
  }

  // Sets the records [first, last) of `puts`, all of this version, in any order, a later one of
  // a nonce replacing an earlier one (values are at most 1 GiB, so a record fits its 32-bit size).
  // Returns the change in the bytes the store counts: 13 for the key, and the record. Out of
  // memory, it changes nothing.
  std::int64_t put(const node_records& puts, std::size_t first, std::size_t last) {
    if (entries_.capacity() - entries_.size() < last - first) {
      entries_.reserve(std::max(entries_.size() + (last - first), 2 * entries_.capacity()));
    }
    std::vector<const char*> copies;
    copies.reserve(last - first);
    try {
      for (std::size_t i = first; i < last; ++i) copies.push_back(arena_->add(puts[i].second));
    } catch (...) {
      for (std::size_t i = 0; i < copies.size(); ++i) arena_->release(copies[i], puts[first + i].second.size());
      throw;
    }
    const std::size_t before = entries_.size();
    std::size_t in_order = before;  // entries_[0, in_order) are in nonce order, each nonce once
    std::int64_t change = 0;
    for (std::size_t i = first; i < last; ++i) {
      const auto [k, record] = puts[i];
      const entry added{.data = copies[i - first], .nonce = k.nonce, .size = static_cast<std::uint32_t>(record.size())};
      placed_bytes_ += record.size();
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
        kill(*it);
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
    entry& e = entries_[static_cast<std::size_t>(at)];
    const std::uint32_t size = e.size;
    kill(e);
    e.size = entry::dead;
    --live_;
    return size;
  }

  // Moves the live records into a buffer of their own once dead ones are most of what the
  // version placed (not into the arena: pruning leaves a few records of each version, and
  // chunks of such remnants would stay), and drops dead entries once they are most of the list.
  void compact() {
    if (dead_bytes_ > placed_bytes_ / 2) {
      const std::size_t live_bytes = placed_bytes_ - dead_bytes_;
      moved_records moved(live_bytes);
      std::size_t at = 0;
      for (entry& e : entries_) {
        if (!e.live() || e.size == 0) continue;
        std::memcpy(moved.data() + at, e.data, e.size);
        give_back(e);
        e.data = moved.data() + at;
        at += e.size;
      }
      moved_ = std::move(moved);
      placed_bytes_ = live_bytes;
      dead_bytes_ = 0;
    }
    if (entries_.size() - live_ > live_) {
      std::erase_if(entries_, [](const entry& e) { return !e.live(); });
    }
  }

  bool read(std::uint32_t nonce, std::string& out) const {
    const std::ptrdiff_t at = live_index(nonce);
    if (at < 0) return false;
    const entry& e = entries_[static_cast<std::size_t>(at)];
    out.assign(e.data, e.size);
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
  struct entry {
    static constexpr std::uint32_t dead = UINT32_MAX;  // a deleted record's size
    const char* data;                                  // in the arena, or in moved_
    std::uint32_t nonce;
    std::uint32_t size;
    [[nodiscard]] bool live() const { return size != dead; }
  };

  // Gives a live record's room back to the arena; moved_ goes as a whole.
  void give_back(const entry& e) noexcept {
    if (!moved_.holds(e.data)) arena_->release(e.data, e.size);
  }

  // Gives back a live record's room and counts it dead (its entry is then replaced, or marked).
  void kill(const entry& e) noexcept {
    give_back(e);
    dead_bytes_ += e.size;
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
        kill(e);
        gone += static_cast<std::int64_t>(detail::node_record_key_size + e.size);
        --live_;
      }
    }
    entries_.resize(kept);
    return gone;
  }

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

  record_arena* arena_;
  std::vector<entry> entries_;  // by nonce
  std::size_t live_ = 0;
  moved_records moved_;           // the live records the last compact() moved
  std::size_t placed_bytes_ = 0;  // in the arena or moved_, live or dead
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
    for_each_version_run(
        puts.size(), [&](std::size_t i) { return puts[i].first.version; },
        [&](std::int64_t version, std::size_t begin, std::size_t end) {
          const auto [at, added] = nodes_.try_emplace(version, arena_);
          try {
            bytes_ += static_cast<std::uint64_t>(at->second.put(puts, begin, end));
          } catch (...) {  // out of memory before it changed anything: no empty version left behind
            if (added) nodes_.erase(at);
            throw;
          }
          at->second.compact();
        });
    const std::vector<node_key>& deletes = batch.delete_nodes;
    for_each_version_run(
        deletes.size(), [&](std::size_t i) { return deletes[i].version; },
        [&](std::int64_t version, std::size_t begin, std::size_t end) { erase(version, deletes, begin, end); });
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
  // Erases deletes[begin, end), all of `version`.
  void erase(std::int64_t version, const std::vector<node_key>& deletes, std::size_t begin, std::size_t end) {
    const auto it = nodes_.find(version);
    if (it == nodes_.end()) return;
    for (std::size_t i = begin; i < end; ++i) {
      const std::int64_t size = it->second.erase(deletes[i].nonce);
      if (size >= 0) bytes_ -= detail::node_record_key_size + size;
    }
    if (it->second.empty()) {
      nodes_.erase(it);
    } else {
      it->second.compact();
    }
  }

  mutable std::shared_mutex mutex_;
  record_arena arena_;  // before nodes_, which give their records back to it
  std::map<std::int64_t, version_records> nodes_;
  std::map<std::string, std::string, std::less<>> meta_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

std::shared_ptr<node_store> open_memory_store() { return std::make_shared<memory_store>(); }

}  // namespace iavl
