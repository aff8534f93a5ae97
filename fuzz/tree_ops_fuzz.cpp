// libFuzzer target: any sequence of operations on a store-backed versioned tree, against a model.
//
// The input is a program: each byte picks an operation (set, remove, get, commit, reopen, delete
// a version, roll back, trim the cache, check a kept version, branch again), and the bytes after
// it are its arguments. The tree runs on a memory store with a node cache of a few KiB, so that
// nodes are unloaded and read back all the time; the first byte picks background writes and the
// default write mode of working trees. A model keeps a std::map per kept version and one for
// the working tree: each get, set and remove result, each commit (verify(), size, both orders of
// iteration), each version read back (also its root hash as committed) and each reopening (the
// kept versions, the latest hash) must agree with it, and so must every version at the end. Only
// the errors the API documents for a call are allowed, with their codes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "iavl/iavl.hpp"

namespace {

using model = std::map<std::string, std::string>;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tree_ops_fuzz: %s\n", what);
    std::abort();
  }
}

class program {
 public:
  program(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  // Keys of 0-2 bytes from an alphabet of 8, so that sets, gets and removes meet the same keys.
  std::string key() {
    std::string k(byte() % 3, '\0');
    for (auto& c : k) c = static_cast<char>('a' + byte() % 8);
    return k;
  }
  std::string value() {
    std::string v(byte() % 9, '\0');
    for (auto& c : v) c = static_cast<char>(byte());
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// Every read of `t` agrees with `m`: size, each key's value, and both orders of iteration.
void check_same(const iavl::tree_view& t, const model& m) {
  check(t.size() == static_cast<std::int64_t>(m.size()), "size differs from the model");
  auto it = m.begin();
  for (auto [key, value] : t.range()) {
    check(it != m.end() && key == it->first && value == it->second, "ascending range differs from the model");
    ++it;
  }
  check(it == m.end(), "ascending range ends early");
  auto rit = m.rbegin();
  for (auto [key, value] : t.range(std::nullopt, std::nullopt, iavl::order::descending)) {
    check(rit != m.rend() && key == rit->first, "descending range differs from the model");
    ++rit;
  }
  check(rit == m.rend(), "descending range ends early");
}

struct committed {
  model keys;
  iavl::hash256 hash;
};

class session {
 public:
  explicit session(std::uint8_t setup) {
    opts_.store = iavl::open_memory_store();
    opts_.cache_bytes = 4096;  // a few nodes: reads keep loading what trims unloaded
    opts_.background_writes = (setup & 1) != 0;
    mode_ = (setup & 2) != 0 ? iavl::writes::deferred : iavl::writes::immediate;
    open();
  }

  void run(program& p) {
    // Of 16 codes, sets, removes, gets and commits take most: the rest are rarer events.
    switch (p.byte() % 16) {
      case 0:
      case 1:
      case 2:
      case 3: set(p.key(), p.value()); break;
      case 4:
      case 5: remove(p.key()); break;
      case 6:
      case 7: get(p.key()); break;
      case 8:
      case 9: commit(); break;
      case 10: check_version(p.byte()); break;
      case 11: db_->trim_cache(); break;
      case 12: delete_version(p.byte()); break;
      case 13: rollback(p.byte()); break;
      case 14: branch(p.byte() & 1 ? iavl::writes::deferred : iavl::writes::immediate); break;
      default: reopen(); break;
    }
  }

  void finish() {
    check_same(*work_, working_);
    commit();
    reopen();
    for (const auto& [version, c] : versions_) check_version_is(version, c);
  }

 private:
  void open() {
    db_.emplace(opts_);
    branch(mode_);
  }
  void branch(iavl::writes mode) {
    work_.reset();
    work_.emplace(db_->branch(mode));
    working_ = versions_.empty() ? model{} : versions_.rbegin()->second.keys;
  }

  void set(const std::string& key, const std::string& value) {
    const bool existed = working_.count(key) > 0;
    const iavl::set_result r = work_->set(key, value);
    check(r == (existed ? iavl::set_result::updated : iavl::set_result::inserted), "set reports the wrong result");
    working_[key] = value;
  }
  void remove(const std::string& key) {
    check(work_->remove(key) == (working_.erase(key) > 0), "remove reports the wrong result");
  }
  void get(const std::string& key) {
    const auto it = working_.find(key);
    check(work_->get(key) == (it == working_.end() ? std::nullopt : std::optional<std::string>(it->second)),
          "get differs from the model");
  }

  void commit() {
    const iavl::snapshot s = db_->commit(std::move(*work_));
    check(s.version() == latest() + 1, "commit made an unexpected version");
    s.verify();
    check_same(s, working_);
    versions_[s.version()] = {working_, s.hash()};
    branch(mode_);
  }

  // Closes the tree (its pending write first) and opens the store again: every kept version
  // must come back with its hash.
  void reopen() {
    work_.reset();
    db_->wait_for_writes();
    db_.reset();
    open();
    check(db_->latest_version() == latest(), "the reopened store has another latest version");
    std::vector<std::int64_t> kept;
    for (const auto& entry : versions_) kept.push_back(entry.first);
    check(db_->versions() == kept, "the reopened store keeps other versions");
    if (!versions_.empty()) check(db_->last_commit().hash() == versions_.rbegin()->second.hash, "latest hash changed");
  }

  void delete_version(std::uint8_t pick) {
    const std::int64_t v = pick % (latest() + 2);  // sometimes the latest, or one never committed
    const bool is_latest = v == latest();
    try {
      db_->delete_version(v);
    } catch (const iavl::error& e) {
      if (versions_.count(v) == 0) {
        check(e.code() == iavl::errc::version_not_found || e.code() == iavl::errc::invalid_argument,
              "deleting an absent version failed with another code");
      } else {
        check(is_latest && e.code() == iavl::errc::invalid_argument, "deleting a kept version failed");
      }
      return;
    }
    check(versions_.erase(v) == 1 && !is_latest, "deleted a version that was not kept, or the latest");
  }

  void rollback(std::uint8_t pick) {
    const std::int64_t v = pick % (latest() + 2);
    try {
      db_->rollback_to(v);
    } catch (const iavl::error& e) {
      check(versions_.count(v) == 0 &&
                (e.code() == iavl::errc::version_not_found || e.code() == iavl::errc::invalid_argument),
            "rolling back to a kept version failed, or failed with another code");
      return;
    }
    check(versions_.count(v) == 1, "rolled back to a version that was not kept");
    versions_.erase(versions_.upper_bound(v), versions_.end());
    check(db_->latest_version() == v, "the rollback left another latest version");
    branch(mode_);
  }

  void check_version(std::uint8_t pick) {
    const std::int64_t v = pick % (latest() + 2);
    const auto it = versions_.find(v);
    if (it != versions_.end()) return check_version_is(v, it->second);
    try {
      (void)db_->at(v);
    } catch (const iavl::error& e) {
      check(e.code() == iavl::errc::version_not_found, "reading an absent version failed with another code");
      return;
    }
    check(v == 0, "an absent version could be read");
  }
  void check_version_is(std::int64_t v, const committed& c) {
    const iavl::snapshot s = db_->at(v);
    check(s.hash() == c.hash, "a kept version has another hash");
    s.verify();
    check_same(s, c.keys);
  }

  [[nodiscard]] std::int64_t latest() const { return versions_.empty() ? 0 : versions_.rbegin()->first; }

  iavl::options opts_;
  iavl::writes mode_;
  std::optional<iavl::versioned_tree> db_;
  std::optional<iavl::tree> work_;
  model working_;
  std::map<std::int64_t, committed> versions_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  program p(data, size);
  session s(p.byte());
  for (int ops = 0; !p.done() && ops < 512; ++ops) s.run(p);
  s.finish();
  return 0;
}
