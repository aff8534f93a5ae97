// The serialized node format and node loading (docs/format.md, "Node records").
#include <string>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/errors.hpp"
#include "iavl/tree.hpp"

namespace iavl::detail {

namespace {

constexpr std::uint8_t leaf_kind = 0;
constexpr std::uint8_t inner_kind = 1;
constexpr int max_height = 127;  // far above any AVL tree that fits in memory or on disk

void put_uvarint(std::string& out, std::uint64_t v) {
  std::uint8_t buf[max_varint_size];
  out.append(reinterpret_cast<const char*>(buf), detail::put_uvarint(buf, v));
}
void put_varint(std::string& out, std::int64_t v) {
  std::uint8_t buf[max_varint_size];
  out.append(reinterpret_cast<const char*>(buf), detail::put_varint(buf, v));
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
  std::uintptr_t child() {
    const std::uint64_t version = uvarint("child version");
    const std::uint64_t nonce = uvarint("child nonce");
    if (version < 1 || version > static_cast<std::uint64_t>(key_.version)) fail("child version out of range");
    if (nonce < 1 || nonce > max_packed_nonce) fail("child nonce out of range");
    return pack_key({static_cast<std::int64_t>(version), static_cast<std::uint32_t>(nonce)});
  }
  void finish() const {
    if (p_ != end_) fail("trailing bytes");
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
    out.append(n->hash().view());
    return;
  }
  const auto* in = as_inner(n);
  out.push_back(static_cast<char>(inner_kind));
  put_varint(out, n->height);
  put_varint(out, in->size());
  put_uvarint(out, in->key_size);
  out.append(in->key());
  out.append(n->hash().view());
  for (int i = 0; i < 2; ++i) {
    const node_key k = child_key(in, i);
    put_uvarint(out, static_cast<std::uint64_t>(k.version));
    put_uvarint(out, k.nonce);
  }
}

node* decode_node(node_key key, std::string_view bytes) {
  reader r(key, bytes);
  if (key.version < 1 || key.version > max_packed_version || key.nonce < 1 || key.nonce > max_packed_nonce) {
    r.fail("node key out of range");
  }
  const std::uint8_t kind = r.byte();
  node* n = nullptr;
  if (kind == leaf_kind) {
    const std::string_view k = r.sized(max_key_size, "key");
    const std::string_view v = r.sized(max_value_size, "value");
    const hash256 h = r.hash();
    r.finish();
    n = make_leaf(k, v, key.version);
    n->hash() = h;
  } else if (kind == inner_kind) {
    const std::int64_t height = r.varint("height");
    const std::int64_t size = r.varint("size");
    if (height < 1 || height > max_height) r.fail("height out of range");
    if (size < 2) r.fail("size out of range");
    const std::string_view k = r.sized(max_key_size, "key");
    const hash256 h = r.hash();
    const std::uintptr_t left = r.child();
    const std::uintptr_t right = r.child();
    r.finish();
    n = make_inner(k, static_cast<int>(height), size, key.version, left, right);
    n->hash() = h;
  } else {
    r.fail("unknown node kind " + std::to_string(kind));
  }
  n->set_hash_valid(true);
  n->touch();  // a node is loaded because it is read
  n->nonce() = key.nonce;
  return n;
}

node* store_context::read(node_key key) const {
  std::string bytes;
  if (!store_->read_node(key, bytes)) {
    throw error(errc::corruption, describe(key) + " is missing from the node store");
  }
  return decode_node(key, bytes);
}

node* load_child(const inner_node* parent, int i, std::uintptr_t bits, const store_context* ctx) {
  assert(ctx && "a tree without a store has every node in memory");
  for (;;) {
    node* loaded = ctx->load(unpack_key(bits));
    // Heights fall strictly towards the leaves, so even a damaged store cannot make a walk loop.
    if (loaded->height >= parent->height) {
      const node_key k = unpack_key(bits);
      release(loaded, &ctx->account());
      throw error(errc::corruption, "corrupt " + describe(k) + ": height " + std::to_string(loaded->height) +
                                        " under a parent of height " + std::to_string(parent->height));
    }
    if (parent->child[i].install(bits, loaded)) return loaded;
    release(loaded, &ctx->account());  // another thread loaded it first
    bits = parent->child[i].bits();
    if (!is_key(bits)) return reinterpret_cast<node*>(bits);
  }
}

}  // namespace iavl::detail
