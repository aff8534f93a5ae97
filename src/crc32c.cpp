#include "iavl/detail/crc32c.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace iavl::detail {

namespace {

constexpr std::uint32_t castagnoli = 0x82f63b78;  // the polynomial, bits reflected

// tables[k][b]: the CRC of byte b followed by k zero bytes, so that eight bytes are folded in
// with eight lookups ("slicing by 8").
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ ((c & 1) ? castagnoli : 0);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr auto tables = make_tables();

std::uint64_t load_le64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);  // one load (a byte-by-byte loop stayed a loop at -O2)
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

std::uint32_t portable(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint64_t w = load_le64(p) ^ crc;
    crc = tables[7][w & 0xff] ^ tables[6][(w >> 8) & 0xff] ^ tables[5][(w >> 16) & 0xff] ^ tables[4][(w >> 24) & 0xff] ^
          tables[3][(w >> 32) & 0xff] ^ tables[2][(w >> 40) & 0xff] ^ tables[1][(w >> 48) & 0xff] ^ tables[0][w >> 56];
  }
  for (; n > 0; ++p, --n) crc = (crc >> 8) ^ tables[0][(crc ^ *p) & 0xff];
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) std::uint32_t with_instruction(std::uint32_t crc, const unsigned char* p,
                                                                 std::size_t n) {
  std::uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) {
    c = __builtin_ia32_crc32di(c, load_le64(p));
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}

using crc_function = std::uint32_t (*)(std::uint32_t, const unsigned char*, std::size_t);
crc_function best() {
  static const crc_function f = [] {
    // The first call may come from a static initializer, before the runtime's own CPU detection.
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? with_instruction : portable;
  }();
  return f;
}
#else
auto best() { return portable; }
#endif

const unsigned char* bytes_of(std::string_view data) { return reinterpret_cast<const unsigned char*>(data.data()); }

}  // namespace

std::uint32_t crc32c(std::string_view data) { return ~best()(~0u, bytes_of(data), data.size()); }

std::uint32_t crc32c_portable(std::string_view data) { return ~portable(~0u, bytes_of(data), data.size()); }

}  // namespace iavl::detail
