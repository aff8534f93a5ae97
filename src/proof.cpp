// ICS23 proofs: generation from a snapshot (as cosmos/iavl's proof_ics23.go builds them) and
// verification (as cosmos/ics23's VerifyMembership / VerifyNonMembership check them).
#include "iavl/proof.hpp"

#include <algorithm>
#include <cassert>
#include <string>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/epoch.hpp"
#include "iavl/detail/node.hpp"
#include "iavl/detail/snapshot_access.hpp"
#include "iavl/detail/store_context.hpp"
#include "iavl/errors.hpp"

namespace iavl {

namespace {

using detail::inner_node;
using detail::leaf_node;
using detail::node;

/// A key for a message: hex, cut after 32 bytes (keys may be 64 KiB long).
std::string describe(std::string_view key) {
  if (key.size() <= 32) return "'" + to_hex(key) + "'";
  return "'" + to_hex(key.substr(0, 32)) + "...' (" + std::to_string(key.size()) + " bytes)";
}

// ---- generation ---------------------------------------------------------------------------

using detail::store_context;

/// The one place that reads a child: loaded from the store when it is not in memory.
const node* child_of(const inner_node* n, int side, const store_context* ctx) { return detail::child(n, side, ctx); }

using detail::snapshot_root;

constexpr char hash_length_byte = 32;  // the length prefix of every child hash in a node preimage

void append_varint(std::string& out, std::int64_t v) {
  std::uint8_t buf[detail::max_varint_size];
  out.append(reinterpret_cast<const char*>(buf), detail::put_varint(buf, v));
}

/// Appends the hash `n` records for its child `side`, length-prefixed as in a node preimage.
void append_child_hash(std::string& out, const inner_node* n, int side) {
  assert(n->child_hash_valid(side));  // every node of a committed snapshot is hashed
  out.push_back(hash_length_byte);
  out.append(n->facts().child_hash[side].view());
}

/// The leaf's hash preimage up to the key: height 0, size 1, version (docs/format.md).
ics23::leaf_op leaf_op_of(const leaf_node* l) {
  ics23::leaf_op op{
      ics23::hash_op::sha256, ics23::hash_op::no_hash, ics23::hash_op::sha256, ics23::length_op::var_proto, {}};
  append_varint(op.prefix, 0);
  append_varint(op.prefix, 1);
  append_varint(op.prefix, l->version());
  return op;
}

/// The step up through `n` from its child `side`: n's hash preimage with that child's hash cut
/// out, the bytes before it as prefix and after it as suffix.
ics23::inner_op inner_op_of(const inner_node* n, int side) {
  ics23::inner_op op{ics23::hash_op::sha256, {}, {}};
  append_varint(op.prefix, n->height);
  append_varint(op.prefix, n->size());
  append_varint(op.prefix, n->version());
  if (side == 1) {
    append_child_hash(op.prefix, n, 0);
    op.prefix.push_back(hash_length_byte);
  } else {
    op.prefix.push_back(hash_length_byte);
    append_child_hash(op.suffix, n, 1);
  }
  return op;
}

/// `path` lists the steps root first; ICS23 wants them from the leaf up.
ics23::existence_proof existence_of(const leaf_node* l, std::vector<ics23::inner_op> path) {
  std::reverse(path.begin(), path.end());
  return {std::string(l->key()), std::string(l->value()), leaf_op_of(l), std::move(path)};
}

/// Proves sorted keys in one descent: at each inner node the keys split into those that go left
/// and those that go right, and each step of a shared path is built once.
class prover {
 public:
  prover(std::vector<std::string>& out, const store_context* ctx) : out_(out), ctx_(ctx) {}

  void walk(const node* n, std::span<const std::string_view> keys) {
    if (keys.empty()) return;
    if (n->is_leaf()) {
      for (std::string_view key : keys) out_.push_back(ics23::encode(prove_at(detail::as_leaf(n), key)));
      return;
    }
    const auto* in = detail::as_inner(n);
    const auto split = std::lower_bound(keys.begin(), keys.end(), in->key()) - keys.begin();
    const std::span<const std::string_view> sides[2] = {keys.first(split), keys.subspan(split)};
    for (int side = 0; side < 2; ++side) {
      if (sides[side].empty()) continue;
      steps_.push_back({in, side, inner_op_of(in, side)});
      walk(child_of(in, side, ctx_), sides[side]);
      steps_.pop_back();
    }
  }

 private:
  struct step {
    const inner_node* node;
    int side;
    ics23::inner_op op;
  };

  /// `key`'s lookup ended at `l`: l is the key itself, or the neighbour on one side of it (every
  /// subtree the lookup passed on its left holds smaller keys, on its right larger ones).
  ics23::commitment_proof prove_at(const leaf_node* l, std::string_view key) const {
    if (key == l->key()) return {existence_of(l, path_ops(steps_.size()))};
    ics23::non_existence_proof p{std::string(key), {}, {}};
    if (key < l->key()) {
      p.right = existence_of(l, path_ops(steps_.size()));
      p.left = neighbour(0);
    } else {
      p.left = existence_of(l, path_ops(steps_.size()));
      p.right = neighbour(1);
    }
    return {std::move(p)};
  }

  std::vector<ics23::inner_op> path_ops(std::size_t depth) const {
    std::vector<ics23::inner_op> ops;
    ops.reserve(steps_.size());
    for (std::size_t i = 0; i < depth; ++i) ops.push_back(steps_[i].op);
    return ops;
  }

  /// The existence proof of the leaf next to the current one towards `toward` (0 left, 1
  /// right): up to the last turn away from that side, across, then down the near edge.
  std::optional<ics23::existence_proof> neighbour(int toward) const {
    std::size_t turn = steps_.size();
    while (turn > 0 && steps_[turn - 1].side == toward) --turn;
    if (turn == 0) return std::nullopt;  // the current leaf is the first (or last) of the tree
    const inner_node* at = steps_[turn - 1].node;
    std::vector<ics23::inner_op> ops = path_ops(turn - 1);
    ops.push_back(inner_op_of(at, toward));
    const node* n = child_of(at, toward, ctx_);
    while (!n->is_leaf()) {
      const auto* in = detail::as_inner(n);
      ops.push_back(inner_op_of(in, 1 - toward));
      n = child_of(in, 1 - toward, ctx_);
    }
    return existence_of(detail::as_leaf(n), std::move(ops));
  }

  std::vector<step> steps_;  // the current path, root first
  std::vector<std::string>& out_;
  const store_context* ctx_;
};

/// Proofs for strictly ascending keys of a non-empty snapshot.
std::vector<std::string> prove(const snapshot& s, std::span<const std::string_view> keys) {
  std::vector<std::string> out;
  out.reserve(keys.size());
  const snapshot_root root(s);
  const detail::store_guard guard(root.ctx());
  detail::reading(root.ctx(), root.source(), [&] { prover(out, root.ctx()).walk(root.get(), keys); });
  return out;
}

}  // namespace

std::string membership_proof(const snapshot& s, std::string_view key) {
  if (!s.has(key)) throw error(errc::invalid_argument, "membership proof: key " + describe(key) + " is absent");
  return std::move(prove(s, {&key, 1}).front());
}

std::string non_membership_proof(const snapshot& s, std::string_view key) {
  if (s.empty()) {
    throw error(errc::invalid_argument, "non-membership proof: the tree is empty, so there is no neighbour to prove " +
                                            describe(key) + " absent with");
  }
  if (s.has(key)) throw error(errc::invalid_argument, "non-membership proof: key " + describe(key) + " is present");
  return std::move(prove(s, {&key, 1}).front());
}

std::vector<std::string> batch_proofs(const snapshot& s, std::span<const std::string> sorted_keys) {
  std::vector<std::string_view> keys(sorted_keys.begin(), sorted_keys.end());
  for (std::size_t i = 1; i < keys.size(); ++i) {
    if (!(keys[i - 1] < keys[i])) {
      throw error(errc::invalid_argument,
                  "batch proofs: keys are not strictly ascending at index " + std::to_string(i));
    }
  }
  if (keys.empty()) return {};
  if (s.empty()) throw error(errc::invalid_argument, "batch proofs: the tree is empty, so nothing can be proven");
  return prove(s, keys);
}

// ---- verification -------------------------------------------------------------------------

namespace {

using ics23::hash_op;
using ics23::length_op;

/// A check's outcome: nothing when it passes, otherwise why not.
using failure = std::optional<std::string>;

constexpr std::int32_t default_max_depth = 128;  // cosmos/ics23 when the spec says 0

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

failure check_spec(const ics23::proof_spec& spec) {
  const auto prehash_ok = [](hash_op h) { return h == hash_op::no_hash || h == hash_op::sha256; };
  if (spec.leaf.hash != hash_op::sha256 || spec.inner.hash != hash_op::sha256 || !prehash_ok(spec.leaf.prehash_key) ||
      !prehash_ok(spec.leaf.prehash_value)) {
    return "spec: only SHA-256 hashing (and no prehash) is supported";
  }
  if (spec.leaf.length != length_op::no_prefix && spec.leaf.length != length_op::var_proto) {
    return "spec: only the NO_PREFIX and VAR_PROTO length ops are supported";
  }
  const auto& order = spec.inner.child_order;
  if (order.size() < 2) return "spec: child_order needs at least two children";
  std::vector<bool> seen(order.size());
  for (std::int32_t c : order) {
    if (c < 0 || static_cast<std::size_t>(c) >= order.size() || seen[c]) {
      return "spec: child_order is not a permutation of 0.." + std::to_string(order.size() - 1);
    }
    seen[c] = true;
  }
  if (spec.inner.child_size <= 0) return "spec: child_size must be positive";
  if (spec.inner.min_prefix_length < 0 || spec.inner.max_prefix_length < spec.inner.min_prefix_length) {
    return "spec: prefix lengths must satisfy 0 <= min_prefix_length <= max_prefix_length";
  }
  if (spec.min_depth < 0 || spec.max_depth < 0) return "spec: depths must not be negative";
  return std::nullopt;
}

/// cosmos/ics23 applies the IAVL prefix rules to every spec equal to IavlSpec in these fields.
bool uses_iavl_layout(const ics23::proof_spec& spec) {
  static const ics23::proof_spec iavl = iavl_spec();
  return spec.leaf.hash == iavl.leaf.hash && spec.leaf.prehash_key == iavl.leaf.prehash_key &&
         spec.leaf.prehash_value == iavl.leaf.prehash_value && spec.leaf.length == iavl.leaf.length &&
         spec.inner.hash == iavl.inner.hash && spec.inner.min_prefix_length == iavl.inner.min_prefix_length &&
         spec.inner.max_prefix_length == iavl.inner.max_prefix_length &&
         spec.inner.child_size == iavl.inner.child_size &&
         spec.inner.child_order.size() == iavl.inner.child_order.size();
}

/// An IAVL op prefix starts with the node's height, size and version (non-negative varints; the
/// height at least the op's layer, 0 for the leaf). A leaf prefix ends there; an inner prefix
/// has 1 more byte (the child's length, when the child is on the left) or 34 (left hash between
/// two length bytes).
failure check_iavl_prefix(std::string_view prefix, int layer) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(prefix.data());
  const auto* end = p + prefix.size();
  const char* names[3] = {"height", "size", "version"};
  for (int i = 0; i < 3; ++i) {
    std::int64_t v = 0;
    const std::size_t n = detail::get_varint(p, end, v);
    if (n == 0) return std::string("IAVL prefix: unreadable ") + names[i];
    if (v < 0) return std::string("IAVL prefix: negative ") + names[i];
    if (i == 0 && v < layer)
      return "IAVL prefix: height " + std::to_string(v) + " below layer " + std::to_string(layer);
    p += n;
  }
  const auto rest = end - p;
  if (layer == 0 && rest != 0) return "IAVL prefix: " + std::to_string(rest) + " bytes after the leaf's version";
  if (layer > 0 && rest != 1 && rest != 34) {
    return "IAVL prefix: " + std::to_string(rest) + " bytes after the node's version (1 or 34 expected)";
  }
  return std::nullopt;
}

failure check_leaf_op(const ics23::proof_spec& spec, const ics23::leaf_op& op) {
  if (uses_iavl_layout(spec)) {
    if (auto f = check_iavl_prefix(op.prefix, 0)) return f;
  }
  if (op.hash != spec.leaf.hash) return "unexpected hash op " + std::to_string(static_cast<int>(op.hash));
  if (op.prehash_key != spec.leaf.prehash_key) {
    return "unexpected prehash_key op " + std::to_string(static_cast<int>(op.prehash_key));
  }
  if (op.prehash_value != spec.leaf.prehash_value) {
    return "unexpected prehash_value op " + std::to_string(static_cast<int>(op.prehash_value));
  }
  if (op.length != spec.leaf.length) return "unexpected length op " + std::to_string(static_cast<int>(op.length));
  if (!starts_with(op.prefix, spec.leaf.prefix)) return "prefix does not start with " + to_hex(spec.leaf.prefix);
  return std::nullopt;
}

// ---- where a child sits in an inner op (cosmos/ics23's padding rules) ----------------------

struct padding {
  std::int64_t min_prefix, max_prefix, suffix;
};

std::int64_t position_of(const ics23::inner_spec& spec, std::int32_t branch) {
  return std::find(spec.child_order.begin(), spec.child_order.end(), branch) - spec.child_order.begin();
}

/// The prefix and suffix lengths of an op whose child is `branch`: the siblings before it in
/// child order are in the prefix, the ones after it in the suffix.
padding padding_of(const ics23::inner_spec& spec, std::int32_t branch) {
  const std::int64_t position = position_of(spec, branch);
  const std::int64_t children = static_cast<std::int64_t>(spec.child_order.size());
  const std::int64_t before = position * spec.child_size;
  return {before + spec.min_prefix_length, before + spec.max_prefix_length,
          (children - 1 - position) * spec.child_size};
}

bool has_padding(const ics23::inner_op& op, const padding& pad) {
  const auto prefix = static_cast<std::int64_t>(op.prefix.size());
  return prefix >= pad.min_prefix && prefix <= pad.max_prefix &&
         static_cast<std::int64_t>(op.suffix.size()) == pad.suffix;
}

/// The branch whose padding the op has, if any.
std::optional<std::int32_t> branch_of(const ics23::inner_spec& spec, const ics23::inner_op& op) {
  for (std::int32_t branch = 0; branch < static_cast<std::int32_t>(spec.child_order.size()); ++branch) {
    if (has_padding(op, padding_of(spec, branch))) return branch;
  }
  return std::nullopt;
}

bool is_empty_child(const ics23::inner_spec& spec, std::string_view bytes, std::int64_t from) {
  if (from < 0 || from + spec.child_size > static_cast<std::int64_t>(bytes.size())) return false;
  return bytes.substr(from, spec.child_size) == spec.empty_child;
}

/// An op on a leftmost path whose left siblings are all placeholders (never so for IAVL, which
/// has no empty_child).
bool left_branches_are_empty(const ics23::inner_spec& spec, const ics23::inner_op& op) {
  const auto branch = branch_of(spec, op);
  if (!branch || *branch == 0) return false;
  const std::int64_t actual_prefix =
      static_cast<std::int64_t>(op.prefix.size()) - std::int64_t{*branch} * spec.child_size;
  if (actual_prefix < 0) return false;
  for (std::int32_t i = 0; i < *branch; ++i) {
    if (!is_empty_child(spec, op.prefix, actual_prefix + position_of(spec, i) * spec.child_size)) return false;
  }
  return true;
}

bool right_branches_are_empty(const ics23::inner_spec& spec, const ics23::inner_op& op) {
  const auto branch = branch_of(spec, op);
  if (!branch) return false;
  const std::int64_t right = static_cast<std::int64_t>(spec.child_order.size()) - 1 - *branch;
  if (right == 0 || static_cast<std::int64_t>(op.suffix.size()) != right * spec.child_size) return false;
  for (std::int32_t i = 0; i < right; ++i) {
    if (!is_empty_child(spec, op.suffix, position_of(spec, i) * spec.child_size)) return false;
  }
  return true;
}

bool is_left_most(const ics23::inner_spec& spec, std::span<const ics23::inner_op> path) {
  const padding pad = padding_of(spec, 0);
  return std::all_of(path.begin(), path.end(), [&](const ics23::inner_op& op) {
    return has_padding(op, pad) || left_branches_are_empty(spec, op);
  });
}

bool is_right_most(const ics23::inner_spec& spec, std::span<const ics23::inner_op> path) {
  const padding pad = padding_of(spec, static_cast<std::int32_t>(spec.child_order.size()) - 1);
  return std::all_of(path.begin(), path.end(), [&](const ics23::inner_op& op) {
    return has_padding(op, pad) || right_branches_are_empty(spec, op);
  });
}

/// Whether `right` is the path of the leaf just right of `left`'s (paths leaf first): below the
/// steps they share, they part at one node through adjacent children, then left runs down the
/// right edge of its subtree and right down the left edge of its own.
bool is_left_neighbour(const ics23::inner_spec& spec, std::span<const ics23::inner_op> left,
                       std::span<const ics23::inner_op> right) {
  std::size_t l = left.size(), r = right.size();
  const auto same = [](const ics23::inner_op& a, const ics23::inner_op& b) {
    return a.prefix == b.prefix && a.suffix == b.suffix;
  };
  do {
    if (l == 0 || r == 0) return false;  // no node where the paths part
    --l;
    --r;
  } while (same(left[l], right[r]));
  const auto left_branch = branch_of(spec, left[l]);
  const auto right_branch = branch_of(spec, right[r]);
  if (!left_branch || !right_branch || *right_branch != *left_branch + 1) return false;
  return is_right_most(spec, left.first(l)) && is_left_most(spec, right.first(r));
}

failure check_inner_op(const ics23::proof_spec& spec, const ics23::inner_op& op, int layer) {
  if (op.hash != spec.inner.hash) return "unexpected hash op " + std::to_string(static_cast<int>(op.hash));
  if (uses_iavl_layout(spec)) {
    if (auto f = check_iavl_prefix(op.prefix, layer)) return f;
  }
  if (starts_with(op.prefix, spec.leaf.prefix)) return "prefix starts with the leaf prefix " + to_hex(spec.leaf.prefix);
  const auto prefix = static_cast<std::int64_t>(op.prefix.size());
  if (prefix < spec.inner.min_prefix_length) return "prefix too short (" + std::to_string(prefix) + " bytes)";
  const std::int64_t max_siblings =
      static_cast<std::int64_t>(spec.inner.child_order.size() - 1) * spec.inner.child_size;
  if (prefix > spec.inner.max_prefix_length + max_siblings) {
    return "prefix too long (" + std::to_string(prefix) + " bytes)";
  }
  if (op.suffix.size() % spec.inner.child_size != 0) {
    return "suffix of " + std::to_string(op.suffix.size()) + " bytes is not a whole number of children";
  }
  // Ours: every step must put its child in one definite position (ICS23 asks this only of the
  // steps it compares for neighbours).
  if (!branch_of(spec.inner, op)) return "prefix and suffix lengths match no child position";
  return std::nullopt;
}

failure check_existence_against_spec(const ics23::proof_spec& spec, const ics23::existence_proof& p) {
  if (!p.leaf) return "no leaf op";
  if (auto f = check_leaf_op(spec, *p.leaf)) return "leaf op: " + *f;
  const auto depth = static_cast<std::int64_t>(p.path.size());
  if (spec.min_depth > 0 && depth < spec.min_depth) return "path too short: " + std::to_string(depth) + " steps";
  if (depth > (spec.max_depth > 0 ? spec.max_depth : default_max_depth)) {
    return "path too long: " + std::to_string(depth) + " steps";
  }
  for (std::size_t i = 0; i < p.path.size(); ++i) {
    if (auto f = check_inner_op(spec, p.path[i], static_cast<int>(i + 1))) {
      return "inner op " + std::to_string(i) + ": " + *f;
    }
  }
  return std::nullopt;
}

/// Prehashes and length-prefixes a key or a value for the leaf preimage.
void append_leaf_data(std::string& out, hash_op prehash, length_op length, std::string_view data) {
  hash256 digest;
  if (prehash == hash_op::sha256) {
    digest = sha256(data);
    data = digest.view();
  }
  if (length == length_op::var_proto) {
    std::uint8_t buf[detail::max_varint_size];
    out.append(reinterpret_cast<const char*>(buf), detail::put_uvarint(buf, data.size()));
  }
  out.append(data);
}

/// The root an existence proof leads to. The spec check has run, so every op is SHA-256.
hash256 root_of(const ics23::existence_proof& p) {
  std::string preimage = p.leaf->prefix;
  append_leaf_data(preimage, p.leaf->prehash_key, p.leaf->length, p.key);
  append_leaf_data(preimage, p.leaf->prehash_value, p.leaf->length, p.value);
  hash256 h = sha256(preimage);
  for (const ics23::inner_op& op : p.path) {
    preimage.assign(op.prefix).append(h.view()).append(op.suffix);
    h = sha256(preimage);
  }
  return h;
}

failure verify_existence(const ics23::proof_spec& spec, const hash256& root, const ics23::existence_proof& p,
                         std::string_view key, std::string_view value) {
  if (auto f = check_existence_against_spec(spec, p)) return f;
  if (p.key != key) return "the proof is for key " + describe(p.key) + ", not " + describe(key);
  if (p.value != value) return "the proof's value differs from the given value";
  if (p.key.empty()) return "leaf op needs a non-empty key (ICS23)";
  if (p.value.empty()) return "leaf op needs a non-empty value (ICS23)";
  if (!(root_of(p) == root)) return "the proof leads to root " + root_of(p).hex() + ", not " + root.hex();
  return std::nullopt;
}

std::string comparable_key(const ics23::proof_spec& spec, std::string_view key) {
  if (spec.prehash_key_before_comparison && spec.leaf.prehash_key == hash_op::sha256) {
    return std::string(sha256(key).view());
  }
  return std::string(key);
}

failure verify_non_existence(const ics23::proof_spec& spec, const hash256& root, const ics23::non_existence_proof& p,
                             std::string_view key) {
  if (p.key != key) return "the proof was made for key " + describe(p.key) + ", not " + describe(key);
  if (p.left) {
    if (auto f = verify_existence(spec, root, *p.left, p.left->key, p.left->value)) return "left neighbour: " + *f;
  }
  if (p.right) {
    if (auto f = verify_existence(spec, root, *p.right, p.right->key, p.right->value)) return "right neighbour: " + *f;
  }
  if (!p.left && !p.right) return "neither neighbour is given";
  const std::string k = comparable_key(spec, key);
  if (p.right && k >= comparable_key(spec, p.right->key)) return "the key is not below the right neighbour";
  if (p.left && k <= comparable_key(spec, p.left->key)) return "the key is not above the left neighbour";
  if (!p.left) {
    if (!is_left_most(spec.inner, p.right->path))
      return "no left neighbour, but the right one is not the leftmost leaf";
  } else if (!p.right) {
    if (!is_right_most(spec.inner, p.left->path))
      return "no right neighbour, but the left one is not the rightmost leaf";
  } else if (!is_left_neighbour(spec.inner, p.left->path, p.right->path)) {
    return "the neighbours are not adjacent leaves";
  }
  return std::nullopt;
}

verify_result result_of(const failure& f) { return f ? verify_result{false, *f} : verify_result{true, {}}; }

/// Decodes `bytes` into `proof`, or says why it cannot.
failure decode_into(std::string_view bytes, ics23::commitment_proof& proof) {
  try {
    proof = ics23::decode(bytes);
  } catch (const error& e) {
    return e.what();
  }
  return std::nullopt;
}

}  // namespace

ics23::proof_spec iavl_spec() {
  ics23::proof_spec spec;
  spec.leaf = {hash_op::sha256, hash_op::no_hash, hash_op::sha256, length_op::var_proto, std::string(1, '\0')};
  spec.inner.child_order = {0, 1};
  spec.inner.child_size = 33;  // a hash and its length byte
  spec.inner.min_prefix_length = 4;
  spec.inner.max_prefix_length = 12;
  spec.inner.hash = hash_op::sha256;
  return spec;
}

verify_result verify_membership(const ics23::proof_spec& spec, const hash256& root, std::string_view proof,
                                std::string_view key, std::string_view value) {
  if (auto f = check_spec(spec)) return result_of(f);
  ics23::commitment_proof decoded;
  if (auto f = decode_into(proof, decoded)) return result_of(f);
  const auto* exist = std::get_if<ics23::existence_proof>(&decoded.proof);
  if (!exist) return result_of("not a membership proof");
  return result_of(verify_existence(spec, root, *exist, key, value));
}

verify_result verify_non_membership(const ics23::proof_spec& spec, const hash256& root, std::string_view proof,
                                    std::string_view key) {
  if (auto f = check_spec(spec)) return result_of(f);
  ics23::commitment_proof decoded;
  if (auto f = decode_into(proof, decoded)) return result_of(f);
  const auto* nonexist = std::get_if<ics23::non_existence_proof>(&decoded.proof);
  if (!nonexist) return result_of("not a non-membership proof");
  return result_of(verify_non_existence(spec, root, *nonexist, key));
}

}  // namespace iavl
