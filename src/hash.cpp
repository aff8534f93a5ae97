// SHA-256 through OpenSSL's low-level interface: OpenSSL 3's EVP_Digest()/SHA256() look the
// algorithm up on every call, which costs 4-5x more for a node-sized input.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "iavl/hash.hpp"

#include <openssl/sha.h>

#include <cstring>
#include <string>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/node_hash.hpp"

namespace iavl {

hash256 sha256(const void* data, std::size_t size) {
  hash256 out;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, size);
  SHA256_Final(out.bytes.data(), &ctx);
  return out;
}

namespace {
constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string to_hex(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = hex_digits[b >> 4];
    out[2 * i + 1] = hex_digits[b & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.resize(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::string hash256::hex() const { return to_hex(view()); }

namespace detail {

hash256 leaf_hash(std::int64_t version, std::string_view key, std::string_view value) {
  const hash256 value_hash = sha256(value);
  std::uint8_t head[3 * max_varint_size + max_varint_size];
  std::size_t n = 0;
  n += put_varint(head + n, 0);  // height
  n += put_varint(head + n, 1);  // size
  n += put_varint(head + n, version);
  n += put_uvarint(head + n, key.size());
  std::uint8_t tail[1 + 32];
  tail[0] = 32;
  std::memcpy(tail + 1, value_hash.bytes.data(), 32);

  hash256 out;
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, head, n);
  SHA256_Update(&ctx, key.data(), key.size());
  SHA256_Update(&ctx, tail, sizeof tail);
  SHA256_Final(out.bytes.data(), &ctx);
  return out;
}

hash256 inner_hash(int height, std::int64_t size, std::int64_t version, const hash256& left, const hash256& right) {
  std::uint8_t buf[3 * max_varint_size + 66];  // 3 varints, 2 x (length byte, 32-byte hash)
  std::size_t n = 0;
  n += put_varint(buf + n, height);
  n += put_varint(buf + n, size);
  n += put_varint(buf + n, version);
  buf[n++] = 32;
  std::memcpy(buf + n, left.bytes.data(), 32);
  n += 32;
  buf[n++] = 32;
  std::memcpy(buf + n, right.bytes.data(), 32);
  n += 32;
  return sha256(buf, n);
}

}  // namespace detail

}  // namespace iavl
