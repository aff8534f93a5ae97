// open_memory_store(): serialized nodes and metadata in an ordered map, the same records a
// LevelDB store holds.
#include <map>
#include <mutex>
#include <shared_mutex>

#include "iavl/detail/store_keys.hpp"
#include "iavl/node_store.hpp"

namespace iavl {

namespace {

class memory_store final : public node_store {
 public:
  bool read_node(node_key key, std::string& out) const override { return read(detail::node_record_key(key), out); }

  bool read_meta(std::string_view name, std::string& out) const override {
    return read(detail::meta_record_key(name), out);
  }

  void scan_meta(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    const std::string start = detail::meta_record_key(prefix);
    std::shared_lock lock(mutex_);
    for (auto it = records_.lower_bound(start); it != records_.end() && it->first.starts_with(start); ++it) {
      if (!fn(std::string_view(it->first).substr(1), it->second)) return;
    }
  }

  void scan_nodes(std::int64_t first_version, std::int64_t last_version,
                  const std::function<bool(node_key)>& fn) const override {
    std::shared_lock lock(mutex_);
    node_key k;
    for (auto it = records_.lower_bound(detail::version_start_key(first_version));
         it != records_.end() && detail::parse_node_record_key(it->first, k) && k.version <= last_version; ++it) {
      if (!fn(k)) return;
    }
  }

  void write(const write_batch& batch, bool /*sync*/) override {
    std::unique_lock lock(mutex_);
    // A version's node records come in key order: each goes right after the one before, which
    // the hint makes a constant-time insert instead of a search of the whole map.
    auto hint = records_.end();
    for (const auto& [k, v] : batch.put_nodes) hint = std::next(put(detail::node_record_key(k), v, hint));
    for (const auto& k : batch.delete_nodes) erase(detail::node_record_key(k));
    for (const auto& [name, v] : batch.put_meta) (void)put(detail::meta_record_key(name), v, records_.end());
    for (const auto& name : batch.delete_meta) erase(detail::meta_record_key(name));
  }

  std::uint64_t size_bytes() const override {
    std::shared_lock lock(mutex_);
    return bytes_;
  }

 private:
  bool read(const std::string& key, std::string& out) const {
    std::shared_lock lock(mutex_);
    const auto it = records_.find(key);
    if (it == records_.end()) return false;
    out = it->second;
    return true;
  }
  // Sets `key` to `value`; `hint` is where the key is likely to go (std::map's insertion hint).
  using record_map = std::map<std::string, std::string, std::less<>>;
  record_map::iterator put(std::string key, std::string_view value, record_map::const_iterator hint) {
    const std::size_t before = records_.size();
    const auto it = records_.try_emplace(hint, std::move(key));
    if (records_.size() == before) bytes_ -= it->first.size() + it->second.size();  // replaced
    it->second = value;
    bytes_ += it->first.size() + it->second.size();
    return it;
  }
  void erase(const std::string& key) {
    const auto it = records_.find(key);
    if (it == records_.end()) return;
    bytes_ -= it->first.size() + it->second.size();
    records_.erase(it);
  }

  mutable std::shared_mutex mutex_;
  record_map records_;
  std::uint64_t bytes_ = 0;
};

}  // namespace

std::shared_ptr<node_store> open_memory_store() { return std::make_shared<memory_store>(); }

}  // namespace iavl
