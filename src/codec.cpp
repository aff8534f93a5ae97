// The serialized node format and node loading (docs/format.md, "Node records").
#include <algorithm>
#include <string>

#include "iavl/detail/crc32c.hpp"
#include "iavl/detail/encoding.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/detail/tree_ops.hpp"
#include "iavl/errors.hpp"
#include "iavl/tree.hpp"

namespace iavl::detail {

namespace {

constexpr std::uint8_t leaf_kind = 0;
constexpr std::uint8_t inner_kind = 1;
constexpr int max_height = 127;           // far above any AVL tree of at most 2^32 keys
constexpr std::size_t checksum_size = 4;  // a record ends with the CRC32C of what precedes it

void put_uvarint(std::string& out, std::uint64_t v) {
  std::uint8_t buf[max_varint_size];
  out.append(reinterpret_cast<const char*>(buf), detail::put_uvarint(buf, v));
}

std::string describe(node_key key) { return "node " + std::to_string(key.version) + "/" + std::to_string(key.nonce); }

// Reads fields from a node record, throwing errc::corruption on any inconsistency.
class reader {
 public:
  reader(node_key key, std::string_view bytes)
      : key_(key), p_(reinterpret_cast<const std::uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw error(errc::corruption, "corrupt " + describe(key_) + ": " + what);
  }
  std::uint8_t byte() {
    if (p_ == end_) fail("truncated");
    return *p_++;
  }
  std::uint64_t uvarint(const char* what) {
    std::uint64_t v = 0;
    const std::size_t n = get_uvarint(p_, end_, v);
    if (n == 0) fail(std::string("bad varint for ") + what);
    p_ += n;
    return v;
  }
  std::int64_t varint(const char* what) {
    std::int64_t v = 0;
    const std::size_t n = get_varint(p_, end_, v);
    if (n == 0) fail(std::string("bad varint for ") + what);
    p_ += n;
    return v;
  }
  std::string_view bytes(std::uint64_t size, const char* what) {
    if (size > static_cast<std::uint64_t>(end_ - p_)) fail(std::string("truncated ") + what);
    std::string_view out(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return out;
  }
  std::string_view sized(std::uint64_t limit, const char* what) {
    const std::uint64_t size = uvarint(what);
    if (size > limit) fail(std::string(what) + " too long");
    return bytes(size, what);
  }
  hash256 hash() {
    hash256 h;
    const std::string_view b = bytes(32, "hash");
    std::memcpy(h.bytes.data(), b.data(), 32);
    return h;
  }
  // A child's record: where it is, and the height, size and hash its parent keeps of it.
  void child(inner_node* n, int i) {
    const std::uint64_t version = uvarint("child version");
    const std::uint64_t nonce = uvarint("child nonce");
    const std::uint64_t height = byte();
    const std::uint64_t size = uvarint("child size");
    if (version < 1 || version > static_cast<std::uint64_t>(key_.version)) fail("child version out of range");
    if (nonce < 1 || nonce > max_nonce) fail("child nonce out of range");
    if (height > max_height - 1) fail("child height out of range");
    if (height == 0 ? size != 1 : (size < 2 || size > static_cast<std::uint64_t>(max_size))) {
      fail("child size out of range");
    }
    n->child[i].set_bits(pack_key({static_cast<std::int64_t>(version), static_cast<std::uint32_t>(nonce)}));
    n->facts().child_height[i] = static_cast<std::uint8_t>(height);
    n->facts().child_size[i] = static_cast<std::uint32_t>(size);
    n->facts().child_hash[i] = hash();
  }
  void finish() const {
    if (p_ != end_) fail("trailing bytes");
  }
  // Checks the CRC32C that ends the record, and leaves it out of the fields. It guards what no
  // hash covers: an inner node's split key.
  void checksum() {
    if (static_cast<std::size_t>(end_ - p_) < checksum_size) fail("truncated");
    end_ -= checksum_size;
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < checksum_size; ++i) sum |= std::uint32_t{end_[i]} << (8 * i);
    if (sum != crc32c(std::string_view(reinterpret_cast<const char*>(p_), end_ - p_))) fail("checksum mismatch");
  }

 private:
  node_key key_;
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

}  // namespace

void encode_node(const node* n, std::string& out) {
  out.clear();
  if (n->is_leaf()) {
    const auto* l = as_leaf(n);
    out.push_back(static_cast<char>(leaf_kind));
    put_uvarint(out, l->key_size);
    out.append(l->key());
    put_uvarint(out, l->value_size);
    out.append(l->value());
  } else {
    const auto* in = as_inner(n);
    out.push_back(static_cast<char>(inner_kind));
    put_uvarint(out, in->key_size);
    out.append(in->key());
    for (int i = 0; i < 2; ++i) {
      assert(in->child_hash_valid(i));
      const node_key k = child_key(in, i);
      put_uvarint(out, static_cast<std::uint64_t>(k.version));
      put_uvarint(out, k.nonce);
      out.push_back(static_cast<char>(in->facts().child_height[i]));
      put_uvarint(out, in->facts().child_size[i]);
      out.append(in->facts().child_hash[i].view());
    }
  }
  append_checksum(out);
}

void append_checksum(std::string& fields) {
  const std::uint32_t sum = crc32c(fields);
  for (std::size_t i = 0; i < checksum_size; ++i) fields.push_back(static_cast<char>(sum >> (8 * i)));
}

node* decode_node(node_key key, std::string_view bytes) {
  reader r(key, bytes);
  if (key.version < 1 || key.version > max_version || key.nonce < 1 || key.nonce > max_nonce) {
    r.fail("node key out of range");
  }
  r.checksum();
  const std::uint8_t kind = r.byte();
  node* n = nullptr;
  if (kind == leaf_kind) {
    const std::string_view k = r.sized(max_key_size, "key");
    const std::string_view v = r.sized(max_value_size, "value");
    r.finish();
    n = make_leaf(k, v, key.version);
  } else if (kind == inner_kind) {
    const std::string_view k = r.sized(max_key_size, "key");
    inner_node* in = make_inner(k, key.version);
    in->height = 1;  // inner until the children give the height: free_node() sizes a node by its kind
    n = in;
    try {
      r.child(in, 0);
      r.child(in, 1);
      r.finish();
      if (in->size() > max_size) r.fail("size out of range");
    } catch (...) {
      free_node(in);
      throw;
    }
    in->height = static_cast<std::uint8_t>(std::max(in->facts().child_height[0], in->facts().child_height[1]) + 1);
    in->set_hash_bits(3);
  } else {
    r.fail("unknown node kind " + std::to_string(kind));
  }
  n->nonce = key.nonce;
  n->mark_committed();
  n->touch();  // a node is loaded because it is read
  return n;
}

void store_context::note_rollback(std::int64_t target) {
  std::lock_guard lock(rollbacks_mutex_);
  rollback_targets_.push_back(target);
}

std::size_t store_context::rollbacks() const {
  std::lock_guard lock(rollbacks_mutex_);
  return rollback_targets_.size();
}

bool store_context::rolled_back(std::int64_t version, std::size_t seen) const {
  std::lock_guard lock(rollbacks_mutex_);
  return std::any_of(rollback_targets_.begin() + static_cast<std::ptrdiff_t>(std::min(seen, rollback_targets_.size())),
                     rollback_targets_.end(), [&](std::int64_t target) { return target < version; });
}

node* store_context::read(node_key key, const hash256* expected) const {
  std::string bytes;
  if (!store_->read_node(key, bytes)) {
    throw node_not_in_store(describe(key) + " is missing from the node store");
  }
  node* n = decode_node(key, bytes);
  // End to end: catches a record that is whole (its checksum holds) but not the node the parent
  // refers to, in any store. A decoded node carries its children's hashes, so hash_of does not
  // descend.
  if (expected && hash_of(n) != *expected) {
    free_node(n);
    throw node_not_in_store(describe(key) + " does not have the hash its parent records");
  }
  return n;
}

node* load_child(const inner_node* parent, int i, std::uintptr_t bits, const store_context* ctx) {
  assert(ctx && "a tree without a store has every node in memory");
  for (;;) {
    node* loaded = ctx->load(unpack_key(bits), parent->known_child_hash(i));
    // The parent knows the child's height and size: a record that disagrees is damaged. (And as
    // heights fall strictly towards the leaves, even a damaged store cannot make a walk loop.)
    if (loaded->height != parent->facts().child_height[i] || size_of(loaded) != parent->facts().child_size[i]) {
      const int height = loaded->height;
      const std::int64_t size = size_of(loaded);
      release(loaded, &ctx->account());  // before the message, whose allocations may throw
      throw error(errc::corruption, "corrupt " + describe(unpack_key(bits)) + ": height " + std::to_string(height) +
                                        ", size " + std::to_string(size) + " where its parent records height " +
                                        std::to_string(parent->facts().child_height[i]) + ", size " +
                                        std::to_string(parent->facts().child_size[i]));
    }
    if (parent->child[i].install(bits, loaded)) return loaded;
    release(loaded, &ctx->account());  // another thread loaded it first
    bits = parent->child[i].bits();
    if (!is_key(bits)) return pointer_of(bits);
  }
}

}  // namespace iavl::detail
