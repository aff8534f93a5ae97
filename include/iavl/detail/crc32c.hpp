// CRC32C (Castagnoli), the checksum that ends every node record (docs/format.md, "Node records").
// Internal; not part of the API.
#pragma once

#include <cstdint>
#include <string_view>

namespace iavl::detail {

/// CRC32C of `data`: with the CPU's crc32 instruction where it has one (x86-64 with SSE4.2),
/// otherwise table-driven. Both give the same value; the checked value of "123456789" is e3069283.
[[nodiscard]] std::uint32_t crc32c(std::string_view data);

/// The table-driven CRC32C, whatever the CPU (for tests: it must agree with crc32c()).
[[nodiscard]] std::uint32_t crc32c_portable(std::string_view data);

}  // namespace iavl::detail
