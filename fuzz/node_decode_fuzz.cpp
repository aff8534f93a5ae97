// libFuzzer target: the node record decoder (docs/format.md, "Node records") on arbitrary bytes.
//
// Input: one byte for the version of the node key (1..255; the record's child versions must not
// exceed it), then the record without its checksum, which the target appends (a fuzzer would
// hardly ever find one that fits). Beyond "no crash, no sanitizer report", it checks that decoding
// either throws iavl::error(errc::corruption) or yields a node that encodes to a record which
// decodes to the same node again, and that the record with a wrong checksum is corruption.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "iavl/detail/store_context.hpp"
#include "iavl/errors.hpp"
#include "iavl/tree.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "node_decode_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace iavl::detail;
  if (size == 0) return 0;
  const iavl::node_key key{1 + data[0] % 255, 1};
  std::string record(reinterpret_cast<const char*>(data + 1), size - 1);
  append_checksum(record);
  std::string damaged = record;
  damaged.back() = static_cast<char>(damaged.back() ^ 0x80);
  try {
    release(decode_node(key, damaged), nullptr);
    check(false, "a wrong checksum was accepted");
  } catch (const iavl::error& e) {
    check(e.code() == iavl::errc::corruption, "a wrong checksum failed with a code other than corruption");
  }
  node* n = nullptr;
  try {
    n = decode_node(key, record);
  } catch (const iavl::error& e) {
    check(e.code() == iavl::errc::corruption, "decode failed with a code other than corruption");
    return 0;
  }
  std::string again;
  encode_node(n, again);
  node* m = decode_node(key, again);  // must not throw: our own encoding of a valid node
  std::string third;
  encode_node(m, third);
  check(again == third, "re-encoding is not stable");
  check(n->height == m->height && key_of(n) == key_of(m) && size_of(n) == size_of(m), "round trip changed the node");
  if (!n->is_leaf()) {
    for (int i = 0; i < 2; ++i) {
      check(as_inner(n)->facts().child_hash[i] == as_inner(m)->facts().child_hash[i],
            "round trip changed a child hash");
    }
  }
  release(n, nullptr);
  release(m, nullptr);
  return 0;
}
