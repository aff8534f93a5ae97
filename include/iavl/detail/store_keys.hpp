// The byte keys under which key-value backends store nodes and metadata (docs/format.md):
// 'n' + big-endian version (8) + big-endian nonce (4) for a node, so that a version's nodes form
// one sorted run; 'm' + name for a metadata record. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "iavl/node_store.hpp"

namespace iavl::detail {

inline constexpr char node_tag = 'n';
inline constexpr char meta_tag = 'm';
inline constexpr std::size_t node_record_key_size = 13;

[[nodiscard]] inline std::string node_record_key(node_key k) {
  std::string out(node_record_key_size, '\0');
  out[0] = node_tag;
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>(static_cast<std::uint64_t>(k.version) >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) out[9 + i] = static_cast<char>(k.nonce >> (24 - 8 * i));
  return out;
}

/// The first node record key of `version` (nonce 0 sorts before every stored node).
[[nodiscard]] inline std::string version_start_key(std::int64_t version) { return node_record_key({version, 0}); }

/// Parses a node record key; false when `key` is not one.
[[nodiscard]] inline bool parse_node_record_key(std::string_view key, node_key& out) {
  if (key.size() != node_record_key_size || key[0] != node_tag) return false;
  std::uint64_t v = 0;
  std::uint32_t n = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<std::uint8_t>(key[1 + i]);
  for (int i = 0; i < 4; ++i) n = n << 8 | static_cast<std::uint8_t>(key[9 + i]);
  out = {static_cast<std::int64_t>(v), n};
  return true;
}

[[nodiscard]] inline std::string meta_record_key(std::string_view name) {
  std::string out(1, meta_tag);
  out.append(name);
  return out;
}

}  // namespace iavl::detail
