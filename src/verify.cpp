// tree_view::verify(): recomputes every invariant from the nodes themselves.
#include <string>

#include "iavl/detail/snapshot_access.hpp"
#include "iavl/detail/tree_inl.hpp"

namespace iavl {

hash256 empty_tree_hash() {
  static const hash256 h = sha256(nullptr, 0);
  return h;
}

namespace {

struct subtree_facts {
  int height;
  std::int64_t size;
  hash256 hash;
  std::string min_key, max_key;  // copies: a child loaded for the check is freed after it
};

[[noreturn]] void fail(const detail::node* n, const std::string& what) {
  throw error(errc::corruption, "verify: node with key " + to_hex(detail::key_of(n)) + " (version " +
                                    std::to_string(n->version()) + "): " + what);
}

// Nodes checked so far, for a progress callback.
struct tally {
  const progress_fn* progress = nullptr;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  void count() {
    ++done;
    if (progress && *progress && (done % 65536 == 0 || done == total)) (*progress)(done, total);
  }
};

subtree_facts check_child(const detail::inner_node* parent, int i, const detail::store_context* ctx, tally& t);

subtree_facts check(const detail::node* n, std::int64_t max_version, const detail::store_context* ctx, tally& t) {
  t.count();
  if (n->version() < 1 || n->version() > max_version) {
    fail(n, "version out of range 1.." + std::to_string(max_version));
  }
  if (n->is_leaf()) {
    const auto* l = detail::as_leaf(n);
    return {0, 1, detail::leaf_hash(n->version(), l->key(), l->value()), std::string(l->key()), std::string(l->key())};
  }
  const auto* in = detail::as_inner(n);
  if (!in->child[0].bits() || !in->child[1].bits()) fail(n, "inner node without two children");
  subtree_facts l = check_child(in, 0, ctx, t);
  subtree_facts r = check_child(in, 1, ctx, t);
  if (!(l.max_key < in->key())) fail(n, "left subtree holds a key not below the split key");
  if (r.min_key != in->key()) fail(n, "split key is not the smallest key of the right subtree");
  const int height = std::max(l.height, r.height) + 1;
  if (n->height != height) fail(n, "height " + std::to_string(n->height) + ", expected " + std::to_string(height));
  if (l.height - r.height > 1 || r.height - l.height > 1) fail(n, "AVL balance violated");
  const std::int64_t size = l.size + r.size;
  return {height, size, detail::inner_hash(height, size, n->version(), l.hash, r.hash), std::move(l.min_key),
          std::move(r.max_key)};
}

// Checks child i of `parent`, and what the parent records of it. A child that is not in memory
// is loaded for the check only, so that verifying a large stored tree needs memory for one path,
// not for the tree.
subtree_facts check_child(const detail::inner_node* parent, int i, const detail::store_context* ctx, tally& t) {
  const detail::node* c = parent->child[i].loaded();
  detail::root_ref temporary;
  if (!c) {
    temporary =
        detail::root_ref(ctx->read(detail::unpack_key(parent->child[i].bits()), parent->known_child_hash(i)), nullptr);
    c = temporary.get();
  }
  if (c->height != parent->facts().child_height[i]) {
    fail(parent, "records height " + std::to_string(parent->facts().child_height[i]) + " for a child of height " +
                     std::to_string(c->height));
  }
  subtree_facts f = check(c, parent->version(), ctx, t);
  if (f.size != parent->facts().child_size[i]) {
    fail(parent, "records size " + std::to_string(parent->facts().child_size[i]) + " for a child of size " +
                     std::to_string(f.size));
  }
  if (parent->child_hash_valid(i) && !(parent->facts().child_hash[i] == f.hash)) {
    fail(parent, "records a hash for a child that differs from the child's recomputed hash");
  }
  return f;
}

// Checks the tree below `root` (null: empty) of `version`, and its hash when `root_hash` is given.
void verify_tree(const detail::node* root, std::int64_t version, const detail::store_context* ctx,
                 const hash256* root_hash, tally& t) {
  const detail::store_guard guard(ctx);
  if (!root) {
    if (root_hash && !(*root_hash == empty_tree_hash())) {
      throw error(errc::corruption, "verify: an empty tree with a root hash other than the empty hash");
    }
    return;
  }
  const subtree_facts f = check(root, version, ctx, t);
  if (root_hash && !(*root_hash == f.hash)) fail(root, "the root hash differs from the recomputed one");
}

}  // namespace

void tree_view::verify_against(const hash256* root_hash) const {
  tally t;
  detail::reading(ctx(), source_, [&] { verify_tree(root_, version_, ctx(), root_hash, t); });
}

void verify(const snapshot& s, const progress_fn& progress) {
  const detail::snapshot_root r(s);
  tally t{&progress, 0, s.empty() ? 0 : 2 * static_cast<std::uint64_t>(s.size()) - 1};
  detail::reading(r.ctx(), r.source(), [&] { verify_tree(r.get(), s.version(), r.ctx(), &s.hash(), t); });
}

}  // namespace iavl
