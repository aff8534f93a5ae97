// State sync streams (docs/format.md, "State sync stream"): export of a snapshot in post-order,
// import bottom-up with a stack of pending subtrees, as cosmos/iavl's Exporter and Importer do.
#include "iavl/state_sync.hpp"

#include <openssl/evp.h>

#include <istream>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/node_hash.hpp"
#include "iavl/detail/snapshot_access.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/errors.hpp"

namespace iavl {

namespace {

constexpr std::string_view magic = "IAVLSYNC";
constexpr std::uint64_t format_version = 1;
constexpr std::uint8_t trailer_tag = 0xff;  // where a node's height would be
constexpr int max_height = 126;             // as in node records
constexpr std::size_t max_pending = max_height + 2;
constexpr std::uint64_t progress_every = 65536;
constexpr std::size_t io_chunk = std::size_t{1} << 20;

void report(const progress_fn& progress, std::uint64_t done, std::uint64_t total) {
  if (progress && (done % progress_every == 0 || done == total)) progress(done, total);
}

/// The report for a stream without nodes (the empty tree), where report() was never called.
void report_if_none(const progress_fn& progress, std::uint64_t done) {
  if (progress && done == 0) progress(0, 0);
}

std::uint64_t nodes_of(std::uint64_t keys) { return keys == 0 ? 0 : 2 * keys - 1; }

/// A running SHA-256 (OpenSSL's EVP interface: one algorithm lookup per stream).
class running_sha256 {
 public:
  running_sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  }
  void update(const char* data, std::size_t size) {
    if (size > 0) EVP_DigestUpdate(ctx_.get(), data, size);
  }
  hash256 finish() {
    hash256 out;
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx_.get(), out.bytes.data(), &size);
    return out;
  }

 private:
  struct deleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, deleter> ctx_;
};

// ---- export ------------------------------------------------------------------------------------

/// Buffers the stream, hashing every byte on its way out.
class stream_writer {
 public:
  explicit stream_writer(std::ostream& out) : out_(out) {}
  void bytes(std::string_view b) {
    buf_.append(b);
    if (buf_.size() >= io_chunk) flush();
  }
  void byte(std::uint8_t b) { buf_.push_back(static_cast<char>(b)); }
  void uvarint(std::uint64_t v) {
    std::uint8_t tmp[detail::max_varint_size];
    buf_.append(reinterpret_cast<const char*>(tmp), detail::put_uvarint(tmp, v));
  }
  void sized(std::string_view b) {
    uvarint(b.size());
    bytes(b);
  }
  /// Appends the SHA-256 of everything written so far, and flushes.
  void finish() {
    sha_.update(buf_.data(), buf_.size());
    buf_.append(sha_.finish().view());
    write_out();
    out_.flush();
    if (!out_) throw error(errc::io_error, "state sync export: writing the stream failed");
  }

 private:
  void flush() {
    sha_.update(buf_.data(), buf_.size());
    write_out();
  }
  void write_out() {
    out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    if (!out_) throw error(errc::io_error, "state sync export: writing the stream failed");
    buf_.clear();
  }

  std::ostream& out_;
  std::string buf_;
  running_sha256 sha_;
};

/// A node on the export path, held for as long as the walk needs it: a counted reference to a
/// node in memory, or a node read from the store for the walk only (freed when dropped).
struct export_frame {
  detail::root_ref hold;
  const detail::node* n = nullptr;
  int next_child = 0;
};

export_frame child_frame(const detail::inner_node* parent, int i, const detail::snapshot_root& root) {
  const detail::store_context* ctx = root.ctx();
  std::uintptr_t bits = 0;
  {
    // The cache may unload the child meanwhile; under the guard, it stays valid to take a count.
    const detail::store_guard guard(ctx);
    bits = parent->child[i].bits();
    if (!detail::is_key(bits)) {
      detail::node* c = detail::pointer_of(bits);
      detail::retain(c);
      return {detail::root_ref(c, root.shared_ctx()), c, 0};
    }
  }
  detail::node* c = ctx->read(detail::unpack_key(bits), parent->known_child_hash(i));
  return {detail::root_ref(c, nullptr), c, 0};
}

void write_node(stream_writer& w, const detail::node* n) {
  w.byte(n->height);
  w.uvarint(static_cast<std::uint64_t>(n->version()));
  w.sized(detail::key_of(n));
  if (n->is_leaf()) w.sized(detail::as_leaf(n)->value());
}

}  // namespace

std::uint64_t export_state(const snapshot& s, std::ostream& out, const progress_fn& progress) {
  if (s.version() < 1) throw error(errc::invalid_argument, "state sync export: version 0 holds nothing to export");
  const detail::snapshot_root root(s);
  const auto keys = static_cast<std::uint64_t>(s.size());
  const std::uint64_t total = nodes_of(keys);
  stream_writer w(out);
  w.bytes(magic);
  w.uvarint(format_version);
  w.uvarint(static_cast<std::uint64_t>(s.version()));
  w.uvarint(keys);

  // Post-order: a node is written once both its subtrees are.
  std::uint64_t written = 0;
  std::vector<export_frame> path;
  if (root.get()) path.push_back({{}, root.get(), 0});
  while (!path.empty()) {
    export_frame& top = path.back();
    if (!top.n->is_leaf() && top.next_child < 2) {
      const int i = top.next_child++;
      export_frame next =
          detail::reading(root.ctx(), root.source(), [&] { return child_frame(detail::as_inner(top.n), i, root); });
      path.push_back(std::move(next));
      continue;
    }
    write_node(w, top.n);
    path.pop_back();
    report(progress, ++written, total);
  }

  report_if_none(progress, written);
  w.byte(trailer_tag);
  w.uvarint(written);
  w.bytes(s.hash().view());
  w.finish();
  return written;
}

// ---- import ------------------------------------------------------------------------------------

namespace {

[[noreturn]] void corrupt(const std::string& what) { throw error(errc::corruption, "state sync stream: " + what); }

/// Reads the stream through a buffer, hashing every byte consumed.
class stream_reader {
 public:
  explicit stream_reader(std::istream& in) : in_(in), buf_(io_chunk) {}

  /// What is being read, for error messages: node `n` (from 1), or the trailer (0).
  void at(std::uint64_t n) { node_ = n; }
  [[nodiscard]] std::string where() const {
    if (node_ == header) return "the header";
    return node_ == 0 ? "the trailer" : "node " + std::to_string(node_);
  }

  std::uint8_t byte(const char* what) {
    if (pos_ == end_) refill(what);
    return static_cast<std::uint8_t>(buf_[pos_++]);
  }
  std::uint64_t uvarint(const char* what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = byte(what);
      if (shift == 63 && b > 1) break;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    corrupt(where() + ": bad varint for " + what);
  }
  /// `size` bytes appended to `out` (cleared first), read chunk by chunk: a damaged length
  /// costs no more memory than the stream actually has.
  void bytes(std::uint64_t size, std::string& out, const char* what) {
    out.clear();
    while (size > 0) {
      if (pos_ == end_) refill(what);
      const std::size_t take = std::min<std::uint64_t>(size, end_ - pos_);
      out.append(buf_.data() + pos_, take);
      pos_ += take;
      size -= take;
    }
  }
  void sized(std::uint64_t limit, std::string& out, const char* what) {
    const std::uint64_t size = uvarint(what);
    if (size > limit) corrupt(where() + ": " + what + " of " + std::to_string(size) + " bytes is too long");
    bytes(size, out, what);
  }
  /// The SHA-256 of every byte read so far; what is read after it is not hashed.
  hash256 digest() {
    sha_.update(buf_.data() + hashed_, pos_ - hashed_);
    hashed_ = pos_;
    digested_ = true;
    return sha_.finish();
  }
  /// Whether the stream has ended.
  bool at_end() {
    if (pos_ < end_) return false;
    fill();
    return pos_ == end_;
  }

 private:
  void fill() {
    if (!digested_) sha_.update(buf_.data() + hashed_, end_ - hashed_);
    pos_ = end_ = hashed_ = 0;
    in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    end_ = static_cast<std::size_t>(in_.gcount());
    if (in_.bad()) throw error(errc::io_error, "state sync import: reading the stream failed");
  }
  void refill(const char* what) {
    fill();
    if (end_ == 0) corrupt("truncated in " + where() + " (" + what + ")");
  }

  std::istream& in_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::size_t hashed_ = 0;  // buf_[0, hashed_) is in sha_
  running_sha256 sha_;
  bool digested_ = false;
  static constexpr std::uint64_t header = ~std::uint64_t{0};
  std::uint64_t node_ = header;
};

/// A subtree whose parent is still to come.
struct pending {
  node_key key;
  hash256 hash;
  std::int64_t size = 0;
  int height = 0;
  std::string min_key;  // its smallest key: the split key of a parent that has it on the right
};

/// Frees a node made only to encode its record.
struct node_deleter {
  void operator()(detail::node* n) const { detail::free_node(n); }
};
using scratch_node = std::unique_ptr<detail::node, node_deleter>;

}  // namespace

namespace detail {

// Rebuilds the tree bottom-up: a leaf is pushed on the stack; an inner node pops its two
// subtrees (right on top), checks itself against them and is pushed in their place. Each node is
// numbered (its version's next nonce) and its record written before its parent's, which names it.
class importer {
 public:
  importer(versioned_tree& db, std::istream& in, const import_options& options) : db_(db), in_(in), options_(options) {}

  snapshot run() {
    std::lock_guard serial(db_.commit_mutex_);
    if (!db_.opts_.store) {
      throw error(errc::invalid_argument, "state sync import: the tree has no node store to import into");
    }
    store_ = db_.opts_.store.get();
    bool empty = db_.latest_version() == 0;
    store_->scan_nodes(0, INT64_MAX, [&](node_key) { return empty = false; });
    if (!empty) {
      throw error(errc::invalid_argument, "state sync import: the tree is not empty (latest version " +
                                              std::to_string(db_.latest_version()) + ")");
    }
    try {
      return import();
    } catch (...) {
      discard_written();  // no version was made: adopt_import() writes the root record last
      throw;
    }
  }

 private:
  snapshot import() {
    read_header();
    std::string key, value;
    for (;;) {
      in_.at(nodes_ + 1);
      const std::uint8_t height = in_.byte("height");
      if (height == trailer_tag) break;
      if (height > max_height) corrupt(where() + ": height " + std::to_string(height) + " out of range");
      const std::uint64_t version = in_.uvarint("version");
      if (version < 1 || version > static_cast<std::uint64_t>(version_)) {
        corrupt(where() + ": version " + std::to_string(version) + " outside 1.." + std::to_string(version_));
      }
      in_.sized(max_key_size, key, "key");
      if (height == 0) {
        in_.sized(max_value_size, value, "value");
        add_leaf(static_cast<std::int64_t>(version), key, value);
      } else {
        add_inner(height, static_cast<std::int64_t>(version), key);
      }
      report(options_.progress, ++nodes_, nodes_of(keys_));
    }
    return finish();
  }

  void read_header() {
    std::string m;
    in_.bytes(magic.size(), m, "magic");
    if (m != magic) corrupt("not a state sync stream (bad magic)");
    const std::uint64_t format = in_.uvarint("format version");
    if (format != format_version) {
      corrupt("format version " + std::to_string(format) + ", this library reads " + std::to_string(format_version));
    }
    const std::uint64_t version = in_.uvarint("tree version");
    if (version < 1 || version > static_cast<std::uint64_t>(detail::max_version)) {
      corrupt("tree version " + std::to_string(version) + " out of range");
    }
    version_ = static_cast<std::int64_t>(version);
    keys_ = in_.uvarint("key count");
    if (keys_ > static_cast<std::uint64_t>(detail::max_size))
      corrupt("key count " + std::to_string(keys_) + " out of range");
  }

  [[nodiscard]] std::string where() const { return in_.where(); }

  node_key next_key(std::int64_t version) {
    std::uint32_t& nonce = nonces_[version];
    if (nonce == detail::max_nonce) corrupt(where() + ": too many nodes of version " + std::to_string(version));
    return {version, ++nonce};
  }

  void add_leaf(std::int64_t version, const std::string& key, const std::string& value) {
    if (leaves_ == keys_) corrupt(where() + ": more leaves than the " + std::to_string(keys_) + " keys announced");
    if (leaves_ > 0 && !(last_key_ < key)) corrupt(where() + ": leaf keys are not strictly ascending");
    if (stack_.size() == max_pending) corrupt(where() + ": too many subtrees without a parent");
    ++leaves_;
    last_key_ = key;
    const scratch_node n(detail::make_leaf(key, value, version));
    pending p{next_key(version), detail::leaf_hash(version, key, value), 1, 0, key};
    put(p.key, n.get());
    stack_.push_back(std::move(p));
  }

  void add_inner(int height, std::int64_t version, const std::string& key) {
    if (stack_.size() < 2) corrupt(where() + ": an inner node without two subtrees before it");
    pending& left = stack_[stack_.size() - 2];
    pending& right = stack_.back();
    if (height != std::max(left.height, right.height) + 1) {
      corrupt(where() + ": height " + std::to_string(height) + " where its subtrees have heights " +
              std::to_string(left.height) + " and " + std::to_string(right.height));
    }
    if (left.height - right.height > 1 || right.height - left.height > 1) corrupt(where() + ": not balanced");
    if (version < left.key.version || version < right.key.version) {
      corrupt(where() + ": version " + std::to_string(version) + " older than a child's");
    }
    if (key != right.min_key) corrupt(where() + ": its key is not the smallest key of its right subtree");
    const scratch_node owner(detail::make_inner(key, version));
    auto* n = detail::as_inner(owner.get());
    n->height = static_cast<std::uint8_t>(height);
    for (int i = 0; i < 2; ++i) {
      const pending& c = i == 0 ? left : right;
      n->child[i].set_bits(detail::pack_key(c.key));
      n->facts().child_size[i] = static_cast<std::uint32_t>(c.size);
      n->facts().child_height[i] = static_cast<std::uint8_t>(c.height);
      n->facts().child_hash[i] = c.hash;
    }
    n->set_hash_bits(3);
    pending p{next_key(version), detail::inner_hash(height, n->size(), version, left.hash, right.hash), n->size(),
              height, std::move(left.min_key)};
    put(p.key, n);
    stack_.pop_back();
    stack_.back() = std::move(p);
  }

  void put(node_key key, const detail::node* n) {
    detail::encode_node(n, record_);
    batch_.put_nodes.add(key, record_);
    if (batch_.put_nodes.bytes() >= (std::size_t{8} << 20) || batch_.put_nodes.size() >= 65536) {
      store_->write(batch_, false);  // ordered before the final synced batch
      batch_.put_nodes.clear();
    }
  }

  snapshot finish() {
    in_.at(0);
    const std::uint64_t count = in_.uvarint("node count");
    std::string root_hash, checksum;
    in_.bytes(32, root_hash, "root hash");
    const hash256 digest = in_.digest();
    in_.bytes(32, checksum, "checksum");
    if (checksum != digest.view()) corrupt("the checksum does not match the stream");
    if (!in_.at_end()) corrupt("bytes after the trailer");
    if (leaves_ != keys_) {
      corrupt(std::to_string(leaves_) + " leaves where the header announces " + std::to_string(keys_) + " keys");
    }
    if (count != nodes_)
      corrupt("the trailer counts " + std::to_string(count) + " nodes, the stream holds " + std::to_string(nodes_));
    if (stack_.size() != (keys_ > 0 ? 1 : 0)) {
      corrupt("the stream ends with " + std::to_string(stack_.size()) + " subtrees not joined into one tree");
    }
    std::optional<node_key> root;
    hash256 hash = empty_tree_hash();
    if (!stack_.empty()) {
      root = stack_.back().key;
      hash = stack_.back().hash;
    }
    if (root_hash != hash.view()) corrupt("the trailer's root hash differs from the recomputed one");
    if (options_.expected_hash && !(*options_.expected_hash == hash)) {
      corrupt("root hash " + hash.hex() + ", expected " + options_.expected_hash->hex());
    }
    report_if_none(options_.progress, nodes_);
    return db_.adopt_import(version_, root, hash, batch_);
  }

  // The store was empty: every node in it now is one this import wrote.
  void discard_written() noexcept {
    try {
      versioned_tree::delete_runs(*store_, 0, INT64_MAX, true);
    } catch (...) {  // NOLINT(bugprone-empty-catch): opening the store again deletes them
    }
  }

  versioned_tree& db_;
  stream_reader in_;
  const import_options& options_;
  node_store* store_ = nullptr;
  std::int64_t version_ = 0;
  std::uint64_t keys_ = 0, leaves_ = 0, nodes_ = 0;
  std::string last_key_;
  std::vector<pending> stack_;
  std::map<std::int64_t, std::uint32_t> nonces_;  // the last nonce given to each node version
  write_batch batch_;
  std::string record_;
};

}  // namespace detail

snapshot import_state(versioned_tree& db, std::istream& in, const import_options& options) {
  return detail::importer(db, in, options).run();
}

}  // namespace iavl
