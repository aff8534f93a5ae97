// Node hashes, byte-compatible with cosmos/iavl (see docs/format.md). Internal.
#pragma once

#include <cstdint>
#include <string_view>

#include "iavl/hash.hpp"

namespace iavl::detail {

/// SHA-256(varint 0, varint 1, varint version, bytes key, bytes SHA-256(value)).
[[nodiscard]] hash256 leaf_hash(std::int64_t version, std::string_view key, std::string_view value);

/// SHA-256(varint height, varint size, varint version, bytes left, bytes right).
[[nodiscard]] hash256 inner_hash(int height, std::int64_t size, std::int64_t version, const hash256& left,
                                 const hash256& right);

}  // namespace iavl::detail
