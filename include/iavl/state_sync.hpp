// State sync: a version of a tree as a stream of its nodes, and the import of such a stream into
// a new database, ending with the identical tree (same nodes, node versions and root hash).
//
// The stream (docs/format.md, "State sync stream") holds a header (magic, format version, the
// tree version, the number of keys), every node in post-order (children before parents) with
// its height, version, key and, for leaves, value, and a trailer with the node count, the root
// hash and a SHA-256 of every byte before it. Node hashes are not in the stream: the importer
// recomputes them, so a stream that hashes to the root hash its trailer names carries exactly
// that tree. That hash is the stream's own claim: a node that syncs from an untrusted peer
// passes the root hash it trusts (the app hash of a verified block) as
// import_options::expected_hash.
//
// Memory: both sides are bounded whatever the tree's size: the exporter holds one path of the
// tree (nodes it reads from the store are freed as soon as it moves on), the importer the
// pending subtrees (at most one per level) and one batch of node records (a few MiB), plus
// the next nonce of each node version it met.
//
// Thread-safety: export_state reads an immutable snapshot and may run while the tree commits;
// the version must stay kept meanwhile (nodes it reads from the store must not be pruned).
// import_state holds the tree's commit lock: other threads' commits and version management wait.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>

#include "iavl/hash.hpp"
#include "iavl/tree.hpp"
#include "iavl/versioned_tree.hpp"

namespace iavl {

/// Writes the version `s` to `out` as a state sync stream. O(n) for n keys: reads each node
/// once (through the store for nodes not in memory, without keeping them), hashes and writes
/// about the size of the keys and values plus a few bytes per node. Calls `progress` (nodes
/// written, of 2n - 1) every 65,536 nodes and at the end. Returns the number of nodes written.
/// Throws iavl::error: invalid_argument for version 0 (nothing committed), io_error when `out`
/// fails, corruption or io_error from the store.
std::uint64_t export_state(const snapshot& s, std::ostream& out, const progress_fn& progress = {});

struct import_options {
  /// When set, the stream must carry the tree with this root hash (else errc::corruption).
  std::optional<hash256> expected_hash;
  /// Called with the nodes imported so far (of 2n - 1, n the keys the header announces) every
  /// 65,536 nodes and at the end.
  progress_fn progress;
};

/// Imports a state sync stream into `db`, which must have a node store and nothing in it: no
/// version, no node. Writes the nodes as they come, in batches, keeping their versions (and so
/// their hashes), then, once every check has passed, the version's root record in one synced
/// batch: the stream's version becomes db's latest version, and db commits on top of it as
/// usual. Returns that version. O(n) time, O(stream) bytes written.
///
/// Checks: the magic and format version, every field's bounds, keys strictly ascending, each
/// inner node's height, balance, key (the smallest key of its right subtree) and version (not
/// older than its children's, not newer than the stream's), the node and key counts, the
/// trailer's root hash against the recomputed one (and `expected_hash`), the checksum, and
/// that nothing follows the trailer. On failure it throws iavl::error — invalid_argument when db
/// has no store or is not empty, corruption naming what is wrong with the stream (truncated
/// included), io_error when reading `in` or the store fails — after deleting the nodes it wrote,
/// so db is left as empty as it was. (Were that deletion to fail too, opening the store again
/// deletes them: nodes above the latest version are leftovers.)
snapshot import_state(versioned_tree& db, std::istream& in, const import_options& options = {});

}  // namespace iavl
