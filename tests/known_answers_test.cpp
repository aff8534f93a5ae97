// Known answers computed by cosmos/iavl v0.20.1 (tests/vectors, copied from shared/vectors):
// every root hash, and every node of the committed trees in post-order.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "iavl/iavl.hpp"
#include "support/mini_json.hpp"

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unhex(const std::string& hex) {
  std::string out;
  EXPECT_TRUE(iavl::from_hex(hex, out)) << hex;
  return out;
}

// Post-order dump of a snapshot's nodes, in the same fields as the vector files. A node's hash is
// the one its parent records for it (the snapshot's hash for the root).
void collect(const iavl::detail::node* n, const iavl::hash256& hash, std::vector<std::string>& out) {
  using namespace iavl::detail;
  std::ostringstream line;
  if (!n->is_leaf()) {
    const auto* in = as_inner(n);
    collect(child(in, 0, nullptr), in->facts().child_hash[0], out);
    collect(child(in, 1, nullptr), in->facts().child_hash[1], out);
  }
  line << "h=" << int(n->height) << " s=" << size_of(n) << " v=" << n->version() << " k=" << iavl::to_hex(key_of(n));
  if (n->is_leaf()) line << " val=" << iavl::to_hex(as_leaf(n)->value());
  line << " hash=" << hash.hex();
  out.push_back(line.str());
}

struct inspect : iavl::snapshot {
  explicit inspect(const iavl::snapshot& s) : iavl::snapshot(s) {}
  const iavl::detail::node* root() const { return root_; }
};

class KnownAnswers : public ::testing::TestWithParam<std::string> {};

TEST_P(KnownAnswers, MatchesCosmosIavlNodeForNode) {
  const auto path = std::filesystem::path(IAVL_VECTOR_DIR) / (GetParam() + ".json");
  const test_json::value doc = test_json::parser(read_file(path)).parse();
  iavl::versioned_tree db;
  for (const auto& version : doc["versions"].items) {
    iavl::tree work = db.branch();
    for (const auto& op : version["ops"].items) {
      const std::string key = unhex(op["key"].str);
      if (op["op"].str == "set") {
        const std::string value = op.has("value") ? unhex(op["value"].str) : std::string();
        const auto result = work.set(key, value);
        EXPECT_EQ(result == iavl::set_result::updated ? "updated" : "inserted", op["result"].str);
      } else {
        ASSERT_EQ(op["op"].str, "remove");
        const bool removed = work.remove(key);
        if (op.has("result")) {
          EXPECT_EQ(removed ? "removed" : "absent", op["result"].str);
        }
      }
      work.verify();
    }
    const iavl::snapshot s = db.commit(std::move(work));
    SCOPED_TRACE("version " + std::to_string(s.version()));
    EXPECT_EQ(s.version(), version["version"].num);
    EXPECT_EQ(s.hash().hex(), version["root_hash"].str);
    EXPECT_EQ(s.size(), version["size"].num);
    EXPECT_EQ(s.height(), version["height"].num);
    s.verify();
    if (version.has("nodes_postorder")) {
      std::vector<std::string> want, got;
      for (const auto& n : version["nodes_postorder"].items) {
        std::ostringstream line;
        line << "h=" << n["height"].num << " s=" << n["size"].num << " v=" << n["version"].num << " k=" << n["key"].str;
        if (n["height"].num == 0) line << " val=" << (n.has("value") ? n["value"].str : "");
        line << " hash=" << n["hash"].str;
        want.push_back(line.str());
      }
      if (inspect(s).root()) collect(inspect(s).root(), s.hash(), got);
      EXPECT_EQ(got, want);
    }
  }
}

std::vector<std::string> all_cases() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(IAVL_VECTOR_DIR)) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Vectors, KnownAnswers, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param; });

TEST(KnownAnswers, AllVectorCasesPresent) { EXPECT_GE(all_cases().size(), 12u); }

}  // namespace
