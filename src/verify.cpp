// tree_view::verify(): recomputes every invariant from the nodes themselves.
#include <string>

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
  std::string_view min_key, max_key;
};

[[noreturn]] void fail(const detail::node* n, const std::string& what) {
  throw error(errc::corruption, "verify: node with key " + to_hex(detail::key_of(n)) + " (version " +
                                    std::to_string(n->version()) + "): " + what);
}

subtree_facts check(const detail::node* n, std::int64_t max_version) {
  if (n->version() < 1 || n->version() > max_version) {
    fail(n, "version out of range 1.." + std::to_string(max_version));
  }
  subtree_facts f;
  if (n->is_leaf()) {
    const auto* l = detail::as_leaf(n);
    f = {0, 1, detail::leaf_hash(n->version(), l->key(), l->value()), l->key(), l->key()};
  } else {
    const auto* in = detail::as_inner(n);
    if (!in->child[0] || !in->child[1]) fail(n, "inner node without two children");
    const subtree_facts l = check(in->child[0], n->version());
    const subtree_facts r = check(in->child[1], n->version());
    if (!(l.max_key < in->key())) fail(n, "left subtree holds a key not below the split key");
    if (r.min_key != in->key()) fail(n, "split key is not the smallest key of the right subtree");
    const int height = std::max(l.height, r.height) + 1;
    if (n->height != height) fail(n, "height " + std::to_string(n->height) + ", expected " + std::to_string(height));
    if (l.height - r.height > 1 || r.height - l.height > 1) fail(n, "AVL balance violated");
    if (in->size() != l.size + r.size)
      fail(n, "size " + std::to_string(in->size()) + ", expected " + std::to_string(l.size + r.size));
    f = {height, l.size + r.size, detail::inner_hash(height, l.size + r.size, n->version(), l.hash, r.hash), l.min_key,
         r.max_key};
  }
  if (n->has_hash() && !(n->hash() == f.hash)) fail(n, "stored hash differs from the recomputed one");
  return f;
}

}  // namespace

void tree_view::verify() const {
  if (root_.get()) check(root_.get(), version_);
}

}  // namespace iavl
