// Varint encodings shared by node hashing, the node serializer and proofs.
//
// Lengths are unsigned LEB128 (Go's binary.PutUvarint); height, size and version are signed
// zig-zag LEB128 (Go's binary.PutVarint), as cosmos/iavl writes them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iavl::detail {

inline constexpr std::size_t max_varint_size = 10;

/// Writes `v` as unsigned LEB128 at `out`; returns the number of bytes written (1..10).
inline std::size_t put_uvarint(std::uint8_t* out, std::uint64_t v) {
  std::size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<std::uint8_t>(v) | 0x80;
    v >>= 7;
  }
  out[n++] = static_cast<std::uint8_t>(v);
  return n;
}

/// Writes `v` zig-zag encoded (0,-1,1,-2,... -> 0,1,2,3,...) as LEB128.
inline std::size_t put_varint(std::uint8_t* out, std::int64_t v) {
  const auto zigzag = (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
  return put_uvarint(out, zigzag);
}

/// Reads an unsigned LEB128 from [p, end). Returns the bytes consumed, or 0 when the input is
/// truncated or the value does not fit in 64 bits.
inline std::size_t get_uvarint(const std::uint8_t* p, const std::uint8_t* end, std::uint64_t& v) {
  v = 0;
  for (std::size_t i = 0; i < max_varint_size && p + i < end; ++i) {
    const std::uint64_t byte = p[i];
    if (i == max_varint_size - 1 && byte > 1) return 0;  // overflows 64 bits
    v |= (byte & 0x7f) << (7 * i);
    if (byte < 0x80) return i + 1;
  }
  return 0;
}

/// Reads a zig-zag LEB128; same contract as get_uvarint.
inline std::size_t get_varint(const std::uint8_t* p, const std::uint8_t* end, std::int64_t& v) {
  std::uint64_t u = 0;
  const std::size_t n = get_uvarint(p, end, u);
  v = static_cast<std::int64_t>(u >> 1) ^ -static_cast<std::int64_t>(u & 1);
  return n;
}

}  // namespace iavl::detail
