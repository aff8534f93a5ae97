// A consumer of iavl-cpp: commits one key and checks the root hash that cosmos/iavl computes for
// it (tests/vectors/one_key), which also proves that SHA-256 (OpenSSL) is linked in.
#include <iavl/iavl.hpp>
#include <iostream>
#include <string>

int main() {
  const std::string want = "6032661ab0d201132db7a8fa1da6a0afe427e6278bd122c301197680ab79ca02";
  iavl::versioned_tree db;
  iavl::tree work = db.branch();
  work.set("hello", "world");
  const iavl::snapshot v1 = db.commit(std::move(work));
  if (v1.version() != 1 || v1.hash().hex() != want) {
    std::cerr << "version " << v1.version() << " root hash " << v1.hash().hex() << ", want version 1 " << want << '\n';
    return 1;
  }
  std::cout << "version 1 root hash " << want << '\n';
  return 0;
}
