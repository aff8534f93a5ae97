// SHA-256 digests and the hex helpers around them.
//
// Hashing is done with OpenSSL's low-level SHA-256 (no per-call algorithm lookup), compiled in
// src/sha256.cpp so that OpenSSL's headers stay out of ours. All functions are thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace iavl {

/// A 32-byte SHA-256 digest.
struct hash256 {
  std::array<std::uint8_t, 32> bytes{};

  friend bool operator==(const hash256&, const hash256&) = default;
  /// Lower-case hex, 64 characters.
  [[nodiscard]] std::string hex() const;
  [[nodiscard]] std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
};

/// SHA-256 of `size` bytes at `data`. No allocation.
[[nodiscard]] hash256 sha256(const void* data, std::size_t size);
[[nodiscard]] inline hash256 sha256(std::string_view data) { return sha256(data.data(), data.size()); }

/// Lower-case hex of arbitrary bytes.
[[nodiscard]] std::string to_hex(std::string_view bytes);
/// Parses hex (either case); returns false on odd length or a non-hex character.
[[nodiscard]] bool from_hex(std::string_view hex, std::string& out);

}  // namespace iavl
