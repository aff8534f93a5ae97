#include <iavl/iavl.hpp>
#include <iostream>

int main() {
  iavl::versioned_tree db;  // in memory
  for (int block = 1; block <= 3; ++block) {
    iavl::tree check = db.branch(iavl::writes::deferred);  // O(1) branches of the last commit
    iavl::tree deliver = db.branch();
    for (int tx = 0; tx < 100; ++tx) {
      const std::string key = "balance/" + std::to_string(tx);
      for (iavl::tree* t : {&check, &deliver}) {  // run each tx on check, then on deliver
        const long balance = std::stol(t->get(key).value_or("0"));
        t->set(key, std::to_string(balance + block));
      }
    }
    const iavl::hash256 app_hash = deliver.working_hash();
    const iavl::snapshot committed = db.commit(std::move(deliver));  // version `block`
    std::cout << committed.version() << ' ' << app_hash.hex() << ' ' << committed.size() << '\n';
  }
  std::cout << "balance/7 at version 2: " << db.at(2).get("balance/7").value_or("absent") << '\n';
  for (auto [key, value] : db.last_commit().range("balance/10", "balance/13")) {
    std::cout << key << " = " << value << '\n';
  }
}
