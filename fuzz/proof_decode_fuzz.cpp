// libFuzzer target: the ICS23 proof decoder and the verifiers on arbitrary bytes.
//
// Beyond "no crash, no sanitizer report", it checks that
// - decode either throws iavl::error(errc::invalid_argument) or returns a proof whose canonical
//   encoding is exactly the input;
// - a rejection always carries a reason;
// - the verifiers never vouch for a false statement about a fixed tree: a membership proof they
//   accept names a key and value the tree holds, a non-membership proof a key it lacks.
// The seed corpus (fuzz/corpus/proof_decode) holds proofs of that tree and cosmos/ics23's IAVL
// test vectors.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "iavl/iavl.hpp"
#include "support/even_keys_tree.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "proof_decode_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const iavl::snapshot tree = test_trees::even_keys_tree(64, 2);  // k000..k126
  static const iavl::ics23::proof_spec spec = iavl::iavl_spec();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  // The statement to check the proof against: the one the proof itself makes, if any.
  std::string key = "k001", value = "vk001";
  try {
    const iavl::ics23::commitment_proof proof = iavl::ics23::decode(bytes);
    check(iavl::ics23::encode(proof) == bytes, "decode accepted a non-canonical encoding");
    if (const auto* e = std::get_if<iavl::ics23::existence_proof>(&proof.proof)) {
      key = e->key;
      value = e->value;
    } else if (const auto* n = std::get_if<iavl::ics23::non_existence_proof>(&proof.proof)) {
      key = n->key;
    }
  } catch (const iavl::error& e) {
    check(e.code() == iavl::errc::invalid_argument, "decode failed with an unexpected error code");
  }

  const iavl::verify_result member = iavl::verify_membership(spec, tree.hash(), bytes, key, value);
  check(member.ok == member.reason.empty(), "verify_membership: a verdict without a reason (or the reverse)");
  if (member) check(tree.get(key) == value, "verify_membership accepted a false statement");

  const iavl::verify_result absent = iavl::verify_non_membership(spec, tree.hash(), bytes, key);
  check(absent.ok == absent.reason.empty(), "verify_non_membership: a verdict without a reason (or the reverse)");
  if (absent) check(!tree.has(key), "verify_non_membership accepted a false statement");
  return 0;
}
