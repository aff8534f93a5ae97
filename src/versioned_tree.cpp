#include "iavl/versioned_tree.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_set>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/tree_inl.hpp"

namespace iavl {

namespace {

// Metadata records (docs/format.md, "Metadata").
constexpr std::string_view format_name = "format";
constexpr std::string_view format_value = "iavl-cpp node store 4";
constexpr std::string_view root_prefix = "r";         // the index of kept versions: their root records
constexpr std::string_view indexed_name = "indexed";  // the versions up to this one are all indexed
// A commit whose version is a multiple of this indexes the versions since the last such commit.
// Otherwise a commit writes only within its version's run of node keys: LevelDB then moves each
// flushed table down the levels without merging it, as it lies beyond all older data.
constexpr std::int64_t index_period = 1024;

// A version's root record, at the head of the version's run of node keys.
node_key root_key(std::int64_t version) { return {version, 0}; }

std::string encode_version(std::int64_t version) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(version >> shift));
  return out;
}

std::string root_name(std::int64_t version) { return std::string(root_prefix) + encode_version(version); }

std::string encode_root(const std::optional<node_key>& root, const hash256& hash) {
  std::string out;
  if (!root) return out;
  std::uint8_t buf[2 * detail::max_varint_size];
  std::size_t n = detail::put_uvarint(buf, static_cast<std::uint64_t>(root->version));
  n += detail::put_uvarint(buf + n, root->nonce);
  out.assign(reinterpret_cast<const char*>(buf), n);
  out.append(hash.view());
  return out;
}

// A root record: the root's node key and hash, or nothing for the empty tree.
void decode_root(std::int64_t version, std::string_view bytes, std::optional<node_key>& root, hash256& hash) {
  hash = empty_tree_hash();
  if (bytes.empty()) return;
  const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
  const auto* end = p + bytes.size();
  std::uint64_t v = 0, nonce = 0;
  const std::size_t a = detail::get_uvarint(p, end, v);
  const std::size_t b = a ? detail::get_uvarint(p + a, end, nonce) : 0;
  if (!a || !b || p + a + b + 32 != end || v < 1 || v > static_cast<std::uint64_t>(version) || nonce < 1 ||
      nonce > detail::max_nonce) {
    throw error(errc::corruption, "corrupt root record of version " + std::to_string(version));
  }
  root = node_key{static_cast<std::int64_t>(v), static_cast<std::uint32_t>(nonce)};
  std::memcpy(hash.bytes.data(), p + a + b, 32);
}

// A version as encode_version() wrote it.
std::int64_t decode_version(std::string_view bytes, const char* what) {
  std::int64_t version = 0;
  for (const char c : bytes) version = version << 8 | static_cast<std::uint8_t>(c);
  if (bytes.size() != 8 || version < 1 || version > detail::max_version) {
    throw error(errc::corruption, std::string("corrupt ") + what);
  }
  return version;
}

[[noreturn]] void no_version(std::int64_t version) {
  throw error(errc::version_not_found, "version " + std::to_string(version) + " does not exist");
}

// The persisted nodes a version reaches: child keys of a stored inner node (none for a leaf).
bool stored_children(const node_store& store, node_key key, node_key out[2]) {
  std::string bytes;
  if (!store.read_node(key, bytes)) {
    throw error(errc::corruption, "node " + std::to_string(key.version) + "/" + std::to_string(key.nonce) +
                                      " is missing from the node store");
  }
  detail::root_ref n(detail::decode_node(key, bytes), nullptr);
  if (n.get()->is_leaf()) return false;
  for (int i = 0; i < 2; ++i) out[i] = detail::child_key(detail::as_inner(n.get()), i);
  return true;
}

}  // namespace

void detail::rethrow_for_version(const store_context* ctx, const version_id& source) {
  if (!ctx || !ctx->has_store() || source.version < 1) throw;
  std::string bytes;
  std::optional<node_key> root;
  hash256 hash;
  if (!ctx->rolled_back(source.version, source.rollbacks) && ctx->store().read_node(root_key(source.version), bytes)) {
    decode_root(source.version, bytes, root, hash);
    if (hash == source.hash) throw;  // the version is there: the store is damaged
  }
  try {
    throw;
  } catch (const error& e) {
    throw error(errc::version_not_found, "version " + std::to_string(source.version) +
                                             " was deleted or rolled back while it was read (" + e.what() + ")");
  }
}

detail::store_claim::store_claim(node_store* store) : store_(store) {
  if (store_ && store_->in_use_.exchange(true)) {
    store_ = nullptr;
    throw error(errc::invalid_argument, "the node store is in use by another versioned_tree: one at a time");
  }
}

detail::store_claim::~store_claim() {
  if (store_) store_->in_use_.store(false);
}

versioned_tree::versioned_tree(options opts)
    : opts_(std::move(opts)), claim_(opts_.store.get()), ctx_(std::make_shared<detail::store_context>(opts_.store)) {
  latest_ = snapshot(detail::root_ref(nullptr, ctx_), {0, empty_tree_hash()});
  ctx_->reclaim().start();
  ctx_->helper().start();
  if (!opts_.store) return;
  cache_ = std::make_unique<detail::node_cache>(opts_.cache_bytes);
  open_store();
  durable_ = latest_.version();
  pruner_ = std::thread([this] { prune_loop(); });
  if (opts_.background_writes) writer_ = std::thread([this] { write_loop(); });
}

versioned_tree::~versioned_tree() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(write_mutex_);
      writer_stopping_ = true;
    }
    write_wake_.notify_one();
    writer_.join();  // after the pending write, if any
  }
  stop_pruner();
  // Snapshots may outlive the tree; what they drop later is freed by whoever drops it.
  ctx_->reclaim().stop();
  ctx_->helper().stop();
}

// Deletes the node records of versions `first` to `last` (their whole runs), in writes of at
// most 100,000 deletions, each after its scan (a store may not take writes from inside its own).
void versioned_tree::delete_runs(node_store& store, std::int64_t first, std::int64_t last, bool sync) {
  constexpr std::size_t round = 100000;
  for (bool more = true; more;) {
    write_batch doomed;
    store.scan_nodes(first, last, [&](node_key k) {
      doomed.delete_nodes.push_back(k);
      return doomed.delete_nodes.size() < round;
    });
    more = doomed.delete_nodes.size() == round;
    if (!doomed.empty()) store.write(doomed, sync);
  }
}

void versioned_tree::open_store() {
  node_store& store = *opts_.store;
  std::string format;
  if (!store.read_meta(format_name, format)) {
    if (!store.empty()) throw error(errc::not_a_database, "the store holds data but no iavl format record");
    write_batch batch;
    batch.put_meta.emplace_back(format_name, format_value);
    store.write(batch, true);
  } else if (format != format_value) {
    throw error(errc::format_mismatch, "the store was written in format '" + format + "'; this library reads '" +
                                           std::string(format_value) + "'");
  }

  // The kept versions: those in the index, and those after it whose runs start with a root record.
  std::string indexed;
  if (store.read_meta(indexed_name, indexed)) indexed_through_ = decode_version(indexed, "index record");
  store.scan_meta(root_prefix, [&](std::string_view name, std::string_view value) {
    const std::int64_t version = decode_version(name.substr(root_prefix.size()), "root record name");
    if (version > indexed_through_) throw error(errc::corruption, "root record above the indexed versions");
    root_record& record = on_store_[version];
    decode_root(version, value, record.root, record.hash);
    return true;
  });
  for (std::int64_t from = indexed_through_ + 1;;) {  // one seek per version
    std::optional<node_key> first;
    store.scan_nodes(from, INT64_MAX, [&](node_key k) {
      first = k;
      return false;
    });
    if (!first) break;
    std::string value;
    if (first->nonce == 0 && store.read_node(*first, value)) {
      root_record& record = on_store_[first->version];
      decode_root(first->version, value, record.root, record.hash);
    }
    from = first->version + 1;
  }
  const std::int64_t latest = on_store_.empty() ? 0 : on_store_.rbegin()->first;

  // Nodes above the latest version are leftovers of an interrupted rollback_to, or pieces of a
  // large version whose last write, with its root record, never came: drop them.
  delete_runs(store, latest + 1, INT64_MAX, true);

  if (latest > 0) latest_ = load_version(latest, on_store_.at(latest));
}

snapshot versioned_tree::load_version(std::int64_t version, const root_record& record) const {
  // Pruning may delete the version meanwhile: reading() tells that from a damaged store.
  const detail::version_id source{version, record.hash, ctx_->rollbacks()};
  detail::node* root = record.root
                           ? detail::reading(ctx_.get(), source, [&] { return ctx_->load(*record.root, &record.hash); })
                           : nullptr;
  return snapshot(detail::root_ref(root, ctx_), source);  // the rollbacks seen as the load began
}

std::int64_t versioned_tree::latest_version() const {
  std::lock_guard lock(mutex_);
  return latest_.version();
}

snapshot versioned_tree::last_commit() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

snapshot versioned_tree::at(std::int64_t version) const {
  std::unique_lock lock(mutex_);
  if (version == latest_.version() && version > 0) return latest_;
  if (!opts_.store) {
    const auto it = in_memory_.find(version);
    if (it == in_memory_.end()) no_version(version);
    return it->second;
  }
  const auto it = on_store_.find(version);
  if (it == on_store_.end() || it->second.deleting) no_version(version);
  const root_record record = it->second;
  lock.unlock();  // loading the root reads the store; the version's nodes stay until it is deleted
  return load_version(version, record);
}

std::vector<std::int64_t> versioned_tree::versions() const {
  std::lock_guard lock(mutex_);
  std::vector<std::int64_t> out;
  if (!opts_.store) {
    for (const auto& [v, s] : in_memory_) out.push_back(v);
  } else {
    for (const auto& [v, r] : on_store_) {
      if (!r.deleting) out.push_back(v);
    }
  }
  return out;
}

snapshot versioned_tree::commit(tree&& working) {
  std::lock_guard serial(commit_mutex_);
  working.check_usable();
  const snapshot base = last_commit();
  const std::int64_t version = working.version();
  // The base root itself, not only its version and hash: a tree branched before a rollback_to
  // meets a version of the same number and hash committed again, whose nodes are others.
  if (working.keep_.shared_ctx() != ctx_) {
    throw error(errc::stale_branch, "the working tree of version " + std::to_string(version) +
                                        " was not branched from this versioned_tree (branch() one)");
  }
  if (version != base.version() + 1 || !(working.source_.hash == base.hash()) ||
      working.keep_.get() != base.keep_.get()) {
    throw error(errc::stale_branch, "working tree of version " + std::to_string(version) +
                                        " did not branch from the latest version " + std::to_string(base.version()));
  }
  if (version > detail::max_version) {
    throw error(errc::invalid_argument, "versions above " + std::to_string(detail::max_version) + " are not supported");
  }
  const detail::committed_nodes fresh = working.take_own_nodes();  // what is new in this version, children first
  const hash256 hash = working.root_hash_;
  detail::node* root = working.root_;

  encoded_nodes to_write;
  if (opts_.store) {
    if (fresh->size() > detail::max_nonce) {
      throw error(errc::invalid_argument,
                  "a version may write at most " + std::to_string(detail::max_nonce) + " nodes");
    }
    std::uint32_t nonce = 0;
    for (detail::node* n : *fresh) n->nonce = ++nonce;  // children first: a parent's record names them
    to_write.fresh = fresh;
    try {
      to_write.batch.put_nodes = take_spare_records();
      if (opts_.background_writes) {
        // While the previous version is being written this thread would only wait: it encodes
        // the new nodes meanwhile, and leaves what is left to the writer thread.
        while (!to_write.encoded() && writing()) encode_nodes(to_write, encode_step);
        wait_for_writes();  // at most one version is being written at a time
      } else {
        write_version(version, to_write, root, hash);
      }
    } catch (...) {
      // The tree stays as it was. Pieces of it may have reached the store; write_version deletes
      // them before it writes this version again.
      for (detail::node* n : *fresh) n->nonce = 0;
      throw;
    }
  }
  // The new nodes are committed; the base nodes they borrowed become counted references on the
  // reclaimer, before the base version is dropped below (its jobs run in order).
  for (detail::node* n : *fresh) n->mark_committed();
  ctx_->reclaim().count_borrowed(fresh, std::move(working.pin_));

  // The new version holds the root: the tree's own root, or its counted or borrowed one.
  if (root && detail::hold_of(working.root_bits_) == detail::hold::borrowed) detail::retain(root);
  working.root_bits_ = 0;  // the tree is consumed: it lets go of its root, base and pin
  working.root_ = nullptr;
  working.keep_ = {};
  working.unusable_ = detail::moved_from;
  working.unusable_code_ = errc::invalid_argument;
  snapshot s(detail::root_ref(root, ctx_), {version, hash, ctx_->rollbacks()});
  {
    std::lock_guard lock(mutex_);
    if (opts_.store) {
      on_store_[version] = {root ? std::optional<node_key>(root->key_in_store()) : std::nullopt, hash};
      keep_orphan_list(version, std::move(working.orphans_));
    } else {
      in_memory_.emplace(version, s);
    }
    latest_ = s;
  }
  if (opts_.store && opts_.background_writes) {
    std::lock_guard lock(write_mutex_);
    pending_write_ = {s, std::move(to_write)};
    write_wake_.notify_one();
  } else {
    after_durable(s, to_write.bytes);
    std::lock_guard lock(write_mutex_);
    give_back_records(std::move(to_write.batch.put_nodes));
  }
  return s;
}

// An orphan list saves pruning a walk of the store; it is only worth its memory while versions
// are pruned. Without a retention policy none is kept, and the lists together stay within an
// eighth of the cache budget: past it a version gets none (pruning it walks the store). Lists
// are never dropped here, as the pruner may be reading them.
void versioned_tree::keep_orphan_list(std::int64_t version, std::vector<node_key>&& list) {
  if (opts_.keep.keep_recent <= 0) return;
  std::size_t entries = list.size();
  for (const auto& [v, l] : orphans_) entries += l.size();
  if (entries <= opts_.cache_bytes / 8 / sizeof(node_key)) orphans_[version] = std::move(list);
}

void versioned_tree::encode_nodes(encoded_nodes& nodes, std::size_t count) {
  const std::vector<detail::node*>& fresh = *nodes.fresh;
  node_records& records = nodes.batch.put_nodes;
  if (records.empty()) records.reserve(fresh.size() + 1);  // and the root record
  const std::size_t end = std::min(fresh.size(), records.size() + count);
  std::string buf;
  // Encoding is two cache misses a node otherwise (the node and its child that is not new, whose
  // node key the record names): fetch the nodes 16 ahead, and their children 8 ahead.
  constexpr std::size_t ahead = 8;
  for (std::size_t i = records.size(); i < end; ++i) {
    if (i + 2 * ahead < end) detail::prefetch(fresh[i + 2 * ahead]);
    if (i + ahead < end) detail::prefetch_children(fresh[i + ahead]);
    const detail::node* n = fresh[i];
    detail::encode_node(n, buf);
    records.add(n->key_in_store(), buf);
    nodes.bytes += static_cast<std::int64_t>(detail::footprint(n));
  }
}

void versioned_tree::write_version(std::int64_t version, encoded_nodes& nodes, const detail::node* root,
                                   const hash256& hash) {
  encode_nodes(nodes, nodes.fresh->size());
  if (torn_from_ != 0 && version >= torn_from_) {
    // Records of no version may be left from torn_from_ up, and the tree written now may have
    // fewer nodes: records past its last nonce would stay, unreachable, in its run.
    delete_runs(*opts_.store, torn_from_, INT64_MAX, false);
    torn_from_ = 0;
  }
  try {
    write_with_root(version, encode_root(root ? std::optional<node_key>(root->key_in_store()) : std::nullopt, hash),
                    nodes.batch, version % index_period == 0);
  } catch (...) {
    torn_from_ = version;
    throw;
  }
  ctx_->account().bytes.fetch_add(nodes.bytes, std::memory_order_relaxed);
}

// Writes `batch` with `version`'s root record at the head of its run; with `index`, also indexes
// the kept versions up to it (under index_mutex_).
void versioned_tree::write_with_root(std::int64_t version, const std::string& record, write_batch& batch, bool index) {
  if (batch.put_nodes.bytes() > version_piece_bytes) write_leading_pieces(batch);
  std::unique_lock index_lock(index_mutex_, std::defer_lock);
  if (index) {
    index_lock.lock();
    index_versions(version, record, batch);
  }
  batch.put_nodes.add(root_key(version), record);
  opts_.store->write(batch, opts_.sync);
  if (index) indexed_through_ = version;
}

// Writes `batch`'s node records, but for the last piece of up to version_piece_bytes, in pieces
// of that size, unsynced, and leaves that last piece in `batch`. A version is kept only once its
// root record is written (open_store() drops a run without one, and a synced write makes those
// before it durable), so a large version (a load's commit, an import) need not reach the store
// in one write: LevelDB holds a whole write in its memtable, which grew to the 150 MB of a
// 100,000-key commit at 10M keys, and malloc kept that memory after the memtable was freed.
void versioned_tree::write_leading_pieces(write_batch& batch) const {
  write_batch piece;
  for (const auto& [key, bytes] : batch.put_nodes) {
    if (piece.put_nodes.bytes() + bytes.size() > version_piece_bytes && !piece.put_nodes.empty()) {
      opts_.store->write(piece, false);
      piece.put_nodes.clear();
    }
    piece.put_nodes.add(key, bytes);
  }
  batch.put_nodes = std::move(piece.put_nodes);
}

// Adds to `batch` the index records of the kept versions after indexed_through_ up to `through`
// (whose root record is `through_record`), all written by now or in `batch`. Requires index_mutex_.
void versioned_tree::index_versions(std::int64_t through, const std::string& through_record, write_batch& batch) {
  {
    std::lock_guard lock(mutex_);
    for (auto it = on_store_.upper_bound(indexed_through_); it != on_store_.end() && it->first < through; ++it) {
      batch.put_meta.emplace_back(root_name(it->first), encode_root(it->second.root, it->second.hash));
    }
  }
  batch.put_meta.emplace_back(root_name(through), through_record);
  batch.put_meta.emplace_back(indexed_name, encode_version(through));
}

// Once a version is durable: older versions may be pruned (the pruner reads the new one from the
// store) and its nodes may be unloaded (they can be loaded again), leaving room in the cache for
// a next version as large as this one (`written_bytes` of new nodes).
void versioned_tree::after_durable(const snapshot& s, std::int64_t written_bytes) {
  set_durable(s.version());
  apply_retention(s.version());
  schedule_trim(s, written_bytes);
}

void versioned_tree::write_loop() {
  std::unique_lock lock(write_mutex_);
  for (;;) {
    write_wake_.wait(lock, [&] { return writer_stopping_ || pending_write_; });
    if (!pending_write_) return;  // stopping, nothing left to write
    const snapshot s = pending_write_->version;
    encoded_nodes nodes = std::move(pending_write_->nodes);
    lock.unlock();
    std::exception_ptr failure;
    try {
      write_version(s.version(), nodes, s.root_, s.hash());
    } catch (...) {
      failure = std::current_exception();
    }
    if (!failure) after_durable(s, nodes.bytes);
    lock.lock();
    if (failure) write_error_ = failure;
    give_back_records(std::move(nodes.batch.put_nodes));
    pending_write_.reset();
    write_idle_.notify_all();
  }
}

node_records versioned_tree::take_spare_records() {
  std::lock_guard lock(write_mutex_);
  if (spare_records_.empty()) return {};
  node_records records = std::move(spare_records_.back());
  spare_records_.pop_back();
  return records;
}

void versioned_tree::give_back_records(node_records&& records) {
  // Not the buffer of a large version (a load's commit): it would hold megabytes for good.
  if (spare_records_.size() == 2 || records.bytes() > version_piece_bytes / 2) return;
  records.clear();  // keeps its room
  spare_records_.push_back(std::move(records));
}

bool versioned_tree::writing() const {
  std::lock_guard lock(write_mutex_);
  return pending_write_.has_value();
}

void versioned_tree::wait_for_writes() {
  std::unique_lock lock(write_mutex_);
  write_idle_.wait(lock, [&] { return !pending_write_; });
  if (write_error_) {
    std::rethrow_exception(write_error_);  // sticky: the versions after it cannot be written either
  }
}

void versioned_tree::set_durable(std::int64_t version) {
  {
    std::lock_guard lock(write_mutex_);
    durable_ = version;
  }
  write_idle_.notify_all();
}

std::int64_t versioned_tree::durable_version() const {
  if (!opts_.store) return latest_version();
  std::lock_guard lock(write_mutex_);
  return durable_;
}

// The cache is trimmed on the reclaimer's thread, after the new nodes' slots are counted (an
// unloaded node must not be one whose slots are still to be counted).
void versioned_tree::schedule_trim(const snapshot& latest, std::int64_t room) {
  if (!cache_) return;
  ctx_->reclaim().post(
      [cache = cache_.get(), ctx = ctx_.get(), latest, room] { cache->trim(latest.root_, *ctx, room); });
}

void versioned_tree::trim_cache() {
  std::lock_guard serial(commit_mutex_);
  // A version still to be written (background writes) has nodes that could not be loaded again.
  wait_for_writes();
  ctx_->reclaim().flush();  // what old versions held counts until it is freed
  if (!cache_) return;
  schedule_trim(last_commit(), 0);
  ctx_->reclaim().flush();
}

std::int64_t versioned_tree::cached_bytes() const {
  return opts_.store ? ctx_->account().bytes.load(std::memory_order_relaxed) : 0;
}

void versioned_tree::set_retention(const retention& keep) {
  std::lock_guard lock(mutex_);
  opts_.keep = keep;
}

void versioned_tree::apply_retention(std::int64_t latest) {
  const retention keep = [&] {
    std::lock_guard lock(mutex_);
    return opts_.keep;
  }();
  if (keep.keep_recent <= 0) return;
  const auto doomed = [&](std::int64_t v) {
    return v <= latest - keep.keep_recent && !(keep.keep_every > 0 && v % keep.keep_every == 0);
  };
  std::lock_guard lock(mutex_);
  if (!opts_.store) {
    std::erase_if(in_memory_, [&](const auto& e) { return doomed(e.first); });
    return;
  }
  for (auto& [v, record] : on_store_) {
    if (v >= latest - keep.keep_recent + 1) break;
    if (!record.deleting && doomed(v)) schedule_deletion(v);
  }
}

void versioned_tree::schedule_deletion(std::int64_t version) {
  on_store_.at(version).deleting = true;
  prune_queue_.insert(version);
  prune_wake_.notify_one();
}

void versioned_tree::delete_version(std::int64_t version) {
  wait_for_pruning();  // an earlier background deletion's error comes before this one changes anything
  {
    std::lock_guard serial(commit_mutex_);
    wait_for_writes();
    std::lock_guard lock(mutex_);
    if (version == latest_.version()) {
      throw error(errc::invalid_argument, "cannot delete the latest version " + std::to_string(version));
    }
    if (!opts_.store) {
      if (in_memory_.erase(version) == 0) no_version(version);
      return;
    }
    const auto it = on_store_.find(version);
    if (it == on_store_.end() || it->second.deleting) no_version(version);
    schedule_deletion(version);
  }
  wait_for_pruning();
}

void versioned_tree::delete_versions_before(std::int64_t version) {
  wait_for_pruning();  // as in delete_version
  {
    std::lock_guard serial(commit_mutex_);
    wait_for_writes();
    std::lock_guard lock(mutex_);
    const std::int64_t bound = std::min(version, latest_.version());
    if (!opts_.store) {
      std::erase_if(in_memory_, [&](const auto& e) { return e.first < bound; });
      return;
    }
    for (auto& [v, record] : on_store_) {
      if (v >= bound) break;
      if (!record.deleting) schedule_deletion(v);
    }
  }
  wait_for_pruning();
}

void versioned_tree::rollback_to(std::int64_t version) {
  std::lock_guard serial(commit_mutex_);
  wait_for_writes();
  if (!opts_.store) {
    std::lock_guard lock(mutex_);
    const auto it = in_memory_.find(version);
    if (it == in_memory_.end()) no_version(version);
    latest_ = it->second;
    in_memory_.erase(std::next(it), in_memory_.end());
    return;
  }
  wait_for_pruning();
  root_record record;
  {
    std::lock_guard lock(mutex_);
    const auto it = on_store_.find(version);
    if (it == on_store_.end() || it->second.deleting) no_version(version);
    record = it->second;
  }
  node_store& store = *opts_.store;
  // The version's root is read before anything is deleted: when that read fails, nothing changed.
  snapshot reloaded = load_version(version, record);
  ctx_->note_rollback(version);
  // First the newer versions' roots, atomically: from then on they no longer exist. Their nodes
  // follow in bounded batches; open_store() finishes the job if this is interrupted.
  write_batch roots;
  std::unique_lock index(index_mutex_);
  {
    std::lock_guard lock(mutex_);
    for (auto it = on_store_.upper_bound(version); it != on_store_.end(); ++it) {
      roots.delete_nodes.push_back(root_key(it->first));
      roots.delete_meta.push_back(root_name(it->first));
    }
  }
  // Versions after `version` will be committed again, not indexed yet.
  if (indexed_through_ > version) roots.put_meta.emplace_back(indexed_name, encode_version(version));
  store.write(roots, true);
  indexed_through_ = std::min(indexed_through_, version);
  index.unlock();
  {
    std::lock_guard lock(mutex_);
    on_store_.erase(on_store_.upper_bound(version), on_store_.end());
    orphans_.erase(orphans_.upper_bound(version), orphans_.end());
    latest_ = std::move(reloaded);
  }
  set_durable(version);  // the newer versions it counted are gone
  try {
    delete_runs(store, version + 1, INT64_MAX, true);
  } catch (...) {
    torn_from_ = version + 1;  // deleted before the next version is written (or on opening)
    throw;
  }
}

// ---- background pruning --------------------------------------------------------------------

void versioned_tree::wait_for_pruning() {
  std::unique_lock lock(mutex_);
  prune_idle_.wait(lock, [&] { return (prune_queue_.empty() && !pruning_) || prune_error_; });
  if (prune_error_) std::rethrow_exception(std::exchange(prune_error_, nullptr));
}

void versioned_tree::stop_pruner() {
  if (!pruner_.joinable()) return;
  try {
    wait_for_pruning();     // deletions the retention policy scheduled are finished, not forgotten
  } catch (const error&) {  // the versions stay; a later opening prunes them again
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  prune_wake_.notify_one();
  pruner_.join();
}

void versioned_tree::prune_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    prune_wake_.wait(lock, [&] { return stopping_ || !prune_queue_.empty(); });
    if (stopping_) return;
    const std::int64_t version = *prune_queue_.begin();
    prune_queue_.erase(prune_queue_.begin());
    pruning_ = true;
    lock.unlock();
    std::exception_ptr failure;
    try {
      prune(version);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    pruning_ = false;
    if (failure && !prune_error_) prune_error_ = failure;
    prune_idle_.notify_all();
  }
}

// Deletes `version`, which is marked deleting: its root record, and each node it reaches that
// neither the previous nor the next version still in the store reaches. Those are the nodes of
// `version` that a later version up to the next one replaced (they are in the orphan lists of
// those versions), except the ones the previous version has too (their version is not above the
// previous version's: a node present in two versions is present in all between). Without the
// orphan lists (versions committed by an earlier process), the store is walked instead.
void versioned_tree::prune(std::int64_t version) {
  root_record doomed, next;
  std::int64_t previous = 0, next_version = 0;
  std::vector<std::vector<node_key>*> lists;  // orphans of the versions after `version` up to the next
  {
    std::lock_guard lock(mutex_);
    const auto it = on_store_.find(version);
    doomed = it->second;
    next = std::next(it)->second;  // the latest version is never deleted, so there is a next one
    next_version = std::next(it)->first;
    if (it != on_store_.begin()) previous = std::prev(it)->first;
    for (auto o = orphans_.upper_bound(version); o != orphans_.end() && o->first <= next_version; ++o) {
      lists.push_back(&o->second);
    }
  }
  const auto goes = [&](node_key k) { return k.version > previous && k.version <= version; };
  write_batch batch;
  if (lists.size() == static_cast<std::size_t>(next_version - version)) {
    for (const std::vector<node_key>* list : lists) {
      for (const node_key k : *list) {
        if (goes(k)) batch.delete_nodes.push_back(k);
      }
    }
  } else {
    walk_orphans(version, previous, doomed, next, batch);
  }
  // In key order: the lists hold them scattered over the key space. Sorted, LevelDB took them
  // faster (block_pruned/leveldb 27.6 -> 23.5 us/tx; not profiled which part of its write
  // gained), and the memory store erases them a version at a time.
  std::sort(batch.delete_nodes.begin(), batch.delete_nodes.end());
  batch.delete_nodes.push_back(root_key(version));
  batch.delete_meta.push_back(root_name(version));
  std::lock_guard index(index_mutex_);
  opts_.store->write(batch, false);  // ordered before any later synced write, so never torn
  std::lock_guard lock(mutex_);
  on_store_.erase(version);
  for (std::vector<node_key>* list : lists) std::erase_if(*list, goes);  // deleted now
  std::erase_if(orphans_, [&](const auto& e) { return e.first <= next_version && e.second.empty(); });
  // What is left of the lists up to the next version serves only the pruning of `previous`,
  // which the retention policy never does to a multiple of keep_every: drop them (should it be
  // deleted after all, pruning it walks the store), so that they do not crowd later lists out.
  if (previous > 0 && opts_.keep.keep_every > 0 && previous % opts_.keep.keep_every == 0) {
    orphans_.erase(orphans_.upper_bound(previous), orphans_.upper_bound(next_version));
  }
}

// The store walk of prune(): a node of the next version with version <= `version` is shared with
// it, and so is every node below it.
void versioned_tree::walk_orphans(std::int64_t version, std::int64_t previous, const root_record& doomed,
                                  const root_record& next, write_batch& batch) const {
  const node_store& store = *opts_.store;
  struct key_hash {
    std::size_t operator()(node_key k) const {
      return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(k.version) << 32 | k.nonce);
    }
  };
  std::unordered_set<node_key, key_hash> shared;
  std::vector<node_key> stack;
  node_key children[2];
  if (next.root) stack.push_back(*next.root);
  while (!stack.empty()) {
    const node_key k = stack.back();
    stack.pop_back();
    if (k.version <= version) {
      shared.insert(k);
    } else if (stored_children(store, k, children)) {
      stack.insert(stack.end(), children, children + 2);
    }
  }
  if (doomed.root) stack.push_back(*doomed.root);
  while (!stack.empty()) {
    const node_key k = stack.back();
    stack.pop_back();
    if (k.version <= previous || shared.count(k)) continue;
    batch.delete_nodes.push_back(k);
    if (stored_children(store, k, children)) stack.insert(stack.end(), children, children + 2);
  }
}

// ---- state sync -----------------------------------------------------------------------------

snapshot versioned_tree::adopt_import(std::int64_t version, const std::optional<node_key>& root, const hash256& hash,
                                      write_batch& last) {
  const root_record record{root, hash};
  // The last nodes, then the root read back, then the root record: when the read fails, there
  // is no version yet, and the importer deletes the nodes it wrote.
  if (!last.empty()) opts_.store->write(last, false);
  snapshot s = load_version(version, record);
  // Indexed at once: the imported nodes' versions run from 1 to `version`, and opening the store
  // seeks through every version after the index. Synced, which makes the nodes durable too.
  write_batch root_only;
  write_with_root(version, encode_root(root, hash), root_only, true);
  {
    std::lock_guard lock(mutex_);
    on_store_[version] = record;  // from here on, the version exists
    latest_ = s;
  }
  set_durable(version);  // written with sync
  return s;
}

}  // namespace iavl
