// ICS23 proofs of a snapshot: membership proofs for present keys, non-membership proofs for
// absent keys, and a verifier. The proofs are ICS23 `CommitmentProof` protobuf messages checked
// with the IAVL proof spec, byte for byte what cosmos/iavl's GetMembershipProof and
// GetNonMembershipProof return for the same tree and key (docs/proofs.md shows the layout).
//
// Failures: proof generation throws iavl::error(errc::invalid_argument) when no proof of the
// asked kind exists (a membership proof of an absent key, ...). Verification never throws on
// any input: it returns a verify_result that says whether the proof holds and, if not, why.
//
// Thread-safety: every function here is safe to call from any number of threads at once (proof
// generation only reads the immutable nodes of a snapshot).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "iavl/hash.hpp"
#include "iavl/tree.hpp"

namespace iavl {

/// The ICS23 messages (cosmos/ics23 proofs.proto), the subset that IAVL proofs use, with their
/// protobuf encoding. Fields keep the .proto names and defaults; an optional is a message field
/// that may be absent.
namespace ics23 {

enum class hash_op : std::int32_t {
  no_hash = 0,
  sha256 = 1,
  sha512 = 2,
  keccak256 = 3,
  ripemd160 = 4,
  bitcoin = 5,
  sha512_256 = 6
};
enum class length_op : std::int32_t {
  no_prefix = 0,
  var_proto = 1,
  var_rlp = 2,
  fixed32_big = 3,
  fixed32_little = 4,
  fixed64_big = 5,
  fixed64_little = 6,
  require_32_bytes = 7,
  require_64_bytes = 8
};

/// Hashes a leaf: hash(prefix || length(prehash_key(key)) || .. || length(prehash_value(value)) || ..).
struct leaf_op {
  hash_op hash = hash_op::no_hash;
  hash_op prehash_key = hash_op::no_hash;
  hash_op prehash_value = hash_op::no_hash;
  length_op length = length_op::no_prefix;
  std::string prefix;
  friend bool operator==(const leaf_op&, const leaf_op&) = default;
};

/// One step up the tree: hash(prefix || child || suffix).
struct inner_op {
  hash_op hash = hash_op::no_hash;
  std::string prefix;
  std::string suffix;
  friend bool operator==(const inner_op&, const inner_op&) = default;
};

/// A key, its value, its leaf op and the inner ops from the leaf up to the root.
struct existence_proof {
  std::string key;
  std::string value;
  std::optional<leaf_op> leaf;
  std::vector<inner_op> path;
  friend bool operator==(const existence_proof&, const existence_proof&) = default;
};

/// The existence proofs of the neighbours of an absent key: the largest key below it (left) and
/// the smallest key above it (right); one of them is absent at either end of the key range.
struct non_existence_proof {
  std::string key;
  std::optional<existence_proof> left;
  std::optional<existence_proof> right;
  friend bool operator==(const non_existence_proof&, const non_existence_proof&) = default;
};

/// CommitmentProof with its `exist` or `nonexist` member set (monostate: none is set). The
/// batch and compressed forms are not supported.
struct commitment_proof {
  std::variant<std::monostate, existence_proof, non_existence_proof> proof;
  friend bool operator==(const commitment_proof&, const commitment_proof&) = default;
};

struct inner_spec {
  std::vector<std::int32_t> child_order;
  std::int32_t child_size = 0;
  std::int32_t min_prefix_length = 0;
  std::int32_t max_prefix_length = 0;
  std::string empty_child;
  hash_op hash = hash_op::no_hash;
  friend bool operator==(const inner_spec&, const inner_spec&) = default;
};

/// What a proof must look like to be accepted (ICS23 ProofSpec). A max_depth of 0 means 128.
struct proof_spec {
  leaf_op leaf;
  inner_spec inner;
  std::int32_t max_depth = 0;
  std::int32_t min_depth = 0;
  bool prehash_key_before_comparison = false;
  friend bool operator==(const proof_spec&, const proof_spec&) = default;
};

/// The canonical protobuf encoding (fields in number order, defaults omitted), as gogoproto
/// and every other proto3 encoder writes it. O(size); allocates the result.
[[nodiscard]] std::string encode(const commitment_proof& proof);

/// Decodes a CommitmentProof. Accepts only the canonical encoding, so that every proof has one
/// byte form: unknown or repeated fields, fields out of order, explicit defaults and over-long
/// varints are rejected, as are the batch and compressed forms. Throws
/// iavl::error(errc::invalid_argument) naming the problem. O(size); allocates the fields.
[[nodiscard]] commitment_proof decode(std::string_view bytes);

}  // namespace ics23

/// The ICS23 spec of IAVL proofs (cosmos/ics23 IavlSpec): leaf prefix 0x00, key not prehashed,
/// value prehashed with SHA-256, lengths as protobuf varints, SHA-256 everywhere; inner nodes
/// with child order [0, 1], 33-byte children, prefixes of 4..12 bytes besides the left child.
[[nodiscard]] ics23::proof_spec iavl_spec();

// ---- generation ---------------------------------------------------------------------------
//
// Each proof costs O(height) node visits and allocates the returned bytes (about 45 bytes per
// tree level and proven key, plus the keys and values).

/// The encoded membership proof of `key`. Throws errc::invalid_argument when `key` is absent.
[[nodiscard]] std::string membership_proof(const snapshot& s, std::string_view key);

/// The encoded non-membership proof of `key`: the existence proofs of its left and right
/// neighbours (one of them at either end). Throws errc::invalid_argument when `key` is present,
/// or when the tree is empty (there is then no leaf to prove anything with; cosmos/iavl's
/// GetProof refuses an empty tree too).
[[nodiscard]] std::string non_membership_proof(const snapshot& s, std::string_view key);

/// For each of `sorted_keys` (strictly ascending), its membership proof if present, otherwise
/// its non-membership proof: the same bytes as the single-key calls, in the same order. The walk
/// is shared: it descends the tree once, splitting the keys at each inner node, so m keys cost
/// O(nodes on the union of their paths + m * height). Throws errc::invalid_argument when the
/// keys are not strictly ascending, or when the tree is empty and keys are given.
[[nodiscard]] std::vector<std::string> batch_proofs(const snapshot& s, std::span<const std::string> sorted_keys);

// ---- verification -------------------------------------------------------------------------
//
// The checks are cosmos/ics23's VerifyMembership / VerifyNonMembership (leaf and inner ops
// against the spec, the IAVL prefix layout, depth, neighbours adjacent in the tree, the root),
// plus three of our own that every honest proof passes: the canonical encoding, an inner op
// layout that matches a child position, and a non-membership proof made for the asked key.
// Like ICS23, a leaf op refuses an empty key or an empty value, so those cannot be proven.
// O(proof size) time, a few allocations for the decoded proof; never throws except bad_alloc.

/// The outcome of a verification: `ok`, or the reason the proof was rejected.
struct verify_result {
  bool ok = false;
  std::string reason;  ///< empty when ok
  explicit operator bool() const { return ok; }
};

/// Whether `proof` (encoded) proves that `key` holds `value` in the tree whose root hash is `root`.
[[nodiscard]] verify_result verify_membership(const ics23::proof_spec& spec, const hash256& root,
                                              std::string_view proof, std::string_view key, std::string_view value);

/// Whether `proof` (encoded) proves that `key` is absent from the tree whose root hash is `root`.
[[nodiscard]] verify_result verify_non_membership(const ics23::proof_spec& spec, const hash256& root,
                                                  std::string_view proof, std::string_view key);

}  // namespace iavl
