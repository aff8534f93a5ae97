// State sync: export a version, import it into an empty store, get the identical tree; and every
// damaged, truncated or out-of-order stream is rejected with nothing left behind.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>
#include <streambuf>

#include "iavl/detail/encoding.hpp"
#include "iavl/detail/node_hash.hpp"
#include "iavl/iavl.hpp"
#include "iavl/leveldb_store.hpp"
#include "support/failing_store.hpp"
#include "support/temp_dir.hpp"

namespace {

using model = std::map<std::string, std::string>;

std::size_t stored_nodes(const iavl::node_store& store) {
  std::size_t n = 0;
  store.scan_nodes(0, INT64_MAX, [&](iavl::node_key) { return ++n, true; });
  return n;
}

std::string export_string(const iavl::snapshot& s) {
  std::ostringstream out;
  const std::uint64_t nodes = iavl::export_state(s, out);
  EXPECT_EQ(nodes, s.empty() ? 0u : 2 * static_cast<std::uint64_t>(s.size()) - 1);
  return out.str();
}

iavl::snapshot import_string(iavl::versioned_tree& db, const std::string& stream, const iavl::import_options& o = {}) {
  std::istringstream in(stream);
  return iavl::import_state(db, in, o);
}

// Random versions over a small key space, so that node versions differ inside each tree:
// inserts, updates, removals, an empty key and empty values now and then.
model random_history(iavl::versioned_tree& db, std::uint64_t seed, int versions, int ops, int key_space) {
  std::mt19937_64 rng(seed);
  model m;
  for (int v = 0; v < versions; ++v) {
    iavl::tree t = db.branch();
    for (int i = 0; i < ops; ++i) {
      const std::uint64_t r = rng() % key_space;
      const std::string k = r == 0 ? std::string() : "key/" + std::to_string(r);
      if (rng() % 4 == 0) {
        t.remove(k);
        m.erase(k);
      } else {
        const std::string value = rng() % 10 == 0 ? std::string() : std::to_string(rng());
        t.set(k, value);
        m[k] = value;
      }
    }
    (void)db.commit(std::move(t));
  }
  return m;
}

// The imported tree is the original: hash, version, contents, verification, proofs; and both
// go on committing to the same hashes.
void expect_same_tree(iavl::versioned_tree& original, std::int64_t version, iavl::versioned_tree& imported) {
  const iavl::snapshot a = original.at(version);
  const iavl::snapshot b = imported.last_commit();
  ASSERT_EQ(imported.versions(), std::vector<std::int64_t>{version});
  EXPECT_EQ(b.version(), version);
  EXPECT_EQ(b.hash(), a.hash());
  EXPECT_EQ(b.size(), a.size());
  EXPECT_EQ(b.height(), a.height());
  b.verify();
  auto ia = a.range().begin();
  std::vector<std::string> keys;
  for (auto [k, v] : b.range()) {
    ASSERT_FALSE(ia == std::default_sentinel);
    EXPECT_EQ(k, (*ia).key);
    EXPECT_EQ(v, (*ia).value);
    EXPECT_EQ(b.get(k), std::string(v));
    keys.emplace_back(k);
    ++ia;
  }
  EXPECT_TRUE(ia == std::default_sentinel);
  if (!a.empty()) {
    for (std::size_t i = 0; i < keys.size(); i += 7) {
      EXPECT_EQ(iavl::membership_proof(b, keys[i]), iavl::membership_proof(a, keys[i]));
      const std::string absent = keys[i] + '\x00';
      if (!a.has(absent)) {
        EXPECT_EQ(iavl::non_membership_proof(b, absent), iavl::non_membership_proof(a, absent));
      }
    }
  }
  // The next version on top of both: the same changes give the same hash.
  iavl::tree ta = a.branch(), tb = imported.branch();
  for (iavl::tree* t : {&ta, &tb}) {
    t->set("after/import", "x");
    if (!keys.empty()) t->remove(keys.front());
  }
  EXPECT_EQ(ta.working_hash(), tb.working_hash());
  const iavl::snapshot next = imported.commit(std::move(tb));
  EXPECT_EQ(next.version(), version + 1);
  EXPECT_EQ(next.hash(), ta.working_hash());
  next.verify();
}

// ---- round trips ---------------------------------------------------------------------------

enum class where { memory_tree, memory_store, leveldb };

struct round_trip_case {
  where from;
  where to;
};

class RoundTrip : public ::testing::TestWithParam<round_trip_case> {
 protected:
  iavl::options opts(where w, const char* name) {
    iavl::options o;
    o.cache_bytes = 0;  // after trim_cache(), the exporter reads the nodes from the store
    if (w == where::memory_store) o.store = iavl::open_memory_store();
    if (w == where::leveldb) o.store = iavl::open_leveldb_store((dir.path() / name).string());
    return o;
  }
  test_support::temp_dir dir;
};

TEST_P(RoundTrip, RandomMultiVersionTrees) {
  iavl::versioned_tree original(opts(GetParam().from, "from"));
  random_history(original, 7, 12, 300, 400);
  original.trim_cache();
  // The latest version, and an older one whose tree differs.
  for (const std::int64_t version : {std::int64_t{12}, std::int64_t{5}}) {
    const std::string stream = export_string(original.at(version));
    auto o = opts(GetParam().to, version == 12 ? "to12" : "to5");
    {
      iavl::versioned_tree imported(o);
      (void)import_string(imported, stream);
      expect_same_tree(original, version, imported);
    }
    // It reopens like any database.
    iavl::versioned_tree reopened(iavl::options{.store = o.store});
    EXPECT_EQ(reopened.versions(), (std::vector<std::int64_t>{version, version + 1}));
    EXPECT_EQ(reopened.at(version).hash(), original.at(version).hash());
    reopened.at(version).verify();
  }
}

TEST_P(RoundTrip, EmptyOneKeyAndEmptyBytes) {
  iavl::versioned_tree original(opts(GetParam().from, "from"));
  (void)original.commit(original.branch());  // 1: the empty tree
  iavl::tree t = original.branch();
  t.set("", "");
  (void)original.commit(std::move(t));  // 2: one key, empty key and value
  t = original.branch();
  t.set("a", "1");
  (void)original.commit(std::move(t));  // 3: two keys of different versions
  t = original.branch();
  t.remove("");
  t.remove("a");
  (void)original.commit(std::move(t));  // 4: empty again
  for (std::int64_t v = 1; v <= 4; ++v) {
    iavl::versioned_tree imported(opts(GetParam().to, ("to" + std::to_string(v)).c_str()));
    (void)import_string(imported, export_string(original.at(v)));
    expect_same_tree(original, v, imported);
  }
}

std::string round_trip_name(const ::testing::TestParamInfo<round_trip_case>& info) {
  const auto name = [](where w) {
    return w == where::memory_tree ? "memory_tree" : w == where::memory_store ? "memory_store" : "leveldb";
  };
  return std::string(name(info.param.from)) + "_to_" + name(info.param.to);
}

INSTANTIATE_TEST_SUITE_P(Stores, RoundTrip,
                         ::testing::Values(round_trip_case{where::memory_tree, where::memory_store},
                                           round_trip_case{where::memory_store, where::leveldb},
                                           round_trip_case{where::leveldb, where::memory_store},
                                           round_trip_case{where::leveldb, where::leveldb}),
                         round_trip_name);

TEST(StateSync, ReportsProgressUpToTheNodeCount) {
  iavl::versioned_tree original;
  iavl::tree t = original.branch();
  for (int i = 0; i < 40000; ++i) t.set("k" + std::to_string(i), "v");
  const iavl::snapshot s = original.commit(std::move(t));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
  std::ostringstream out;
  iavl::export_state(s, out, [&](std::uint64_t done, std::uint64_t total) { seen.emplace_back(done, total); });
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{65536, 79999}, {79999, 79999}}));
  seen.clear();
  iavl::versioned_tree imported(iavl::options{.store = iavl::open_memory_store()});
  (void)import_string(imported, out.str(),
                      {.progress = [&](std::uint64_t done, std::uint64_t total) { seen.emplace_back(done, total); }});
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{65536, 79999}, {79999, 79999}}));
  EXPECT_EQ(imported.last_commit().hash(), s.hash());
}

TEST(StateSync, ChecksTheExpectedRootHash) {
  iavl::versioned_tree original;
  random_history(original, 3, 3, 100, 200);
  const std::string stream = export_string(original.last_commit());
  iavl::versioned_tree good(iavl::options{.store = iavl::open_memory_store()});
  EXPECT_EQ(import_string(good, stream, {.expected_hash = original.last_commit().hash()}).hash(),
            original.last_commit().hash());
  auto store = iavl::open_memory_store();
  iavl::versioned_tree bad(iavl::options{.store = store});
  try {
    (void)import_string(bad, stream, {.expected_hash = iavl::empty_tree_hash()});
    FAIL() << "a stream of another tree was accepted";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::corruption);
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stored_nodes(*store), 0u);
  EXPECT_TRUE(bad.versions().empty());
}

TEST(StateSync, ExportOfVersionZeroIsRejected) {
  iavl::versioned_tree db;
  std::ostringstream out;
  EXPECT_THROW(iavl::export_state(db.last_commit(), out), iavl::error);
}

// ---- rejection ----------------------------------------------------------------------------

// The stream's parts, as docs/format.md lays them out, to build altered streams whose checksum
// is right: the importer must then find what is wrong from the structure alone.
struct stream_node {
  int height = 0;
  std::uint64_t version = 0;
  std::string key, value;
};

struct parsed_stream {
  std::uint64_t format = 0, version = 0, keys = 0;
  std::vector<stream_node> nodes;
  std::uint64_t count = 0;
  std::string root_hash;
};

std::uint64_t read_uvarint(const std::string& s, std::size_t& p) {
  std::uint64_t v = 0;
  const std::size_t n = iavl::detail::get_uvarint(reinterpret_cast<const std::uint8_t*>(s.data()) + p,
                                                  reinterpret_cast<const std::uint8_t*>(s.data()) + s.size(), v);
  EXPECT_NE(n, 0u);
  p += n;
  return v;
}

std::string read_sized(const std::string& s, std::size_t& p) {
  const std::uint64_t n = read_uvarint(s, p);
  std::string out = s.substr(p, n);
  p += n;
  return out;
}

parsed_stream parse(const std::string& s) {
  parsed_stream out;
  EXPECT_EQ(s.substr(0, 8), "IAVLSYNC");
  std::size_t p = 8;
  out.format = read_uvarint(s, p);
  out.version = read_uvarint(s, p);
  out.keys = read_uvarint(s, p);
  while (static_cast<std::uint8_t>(s[p]) != 0xff) {
    stream_node n;
    n.height = static_cast<std::uint8_t>(s[p++]);
    n.version = read_uvarint(s, p);
    n.key = read_sized(s, p);
    if (n.height == 0) n.value = read_sized(s, p);
    out.nodes.push_back(n);
  }
  ++p;
  out.count = read_uvarint(s, p);
  out.root_hash = s.substr(p, 32);
  p += 32;
  const std::string checksum = s.substr(p, 32);
  EXPECT_EQ(checksum, iavl::sha256(s.substr(0, p)).view());
  EXPECT_EQ(p + 32, s.size());
  return out;
}

void put_uvarint(std::string& out, std::uint64_t v) {
  std::uint8_t buf[iavl::detail::max_varint_size];
  out.append(reinterpret_cast<const char*>(buf), iavl::detail::put_uvarint(buf, v));
}

std::string serialize(const parsed_stream& p) {
  std::string out = "IAVLSYNC";
  put_uvarint(out, p.format);
  put_uvarint(out, p.version);
  put_uvarint(out, p.keys);
  for (const stream_node& n : p.nodes) {
    out.push_back(static_cast<char>(n.height));
    put_uvarint(out, n.version);
    put_uvarint(out, n.key.size());
    out += n.key;
    if (n.height == 0) {
      put_uvarint(out, n.value.size());
      out += n.value;
    }
  }
  out.push_back('\xff');
  put_uvarint(out, p.count);
  out += p.root_hash;
  out += iavl::sha256(out).view();
  return out;
}

// The root hash of a parsed stream's nodes, computed as the importer must (for streams built to
// be wrong in one structural respect only).
std::string root_hash_of(const parsed_stream& p) {
  struct sub {
    iavl::hash256 hash;
    std::int64_t size;
  };
  std::vector<sub> stack;
  for (const stream_node& n : p.nodes) {
    const auto v = static_cast<std::int64_t>(n.version);
    if (n.height == 0) {
      stack.push_back({iavl::detail::leaf_hash(v, n.key, n.value), 1});
    } else {
      if (stack.size() < 2) return std::string(32, '\0');  // no tree: any hash will do
      const sub r = stack.back();
      stack.pop_back();
      const sub l = stack.back();
      stack.back() = {iavl::detail::inner_hash(n.height, l.size + r.size, v, l.hash, r.hash), l.size + r.size};
    }
  }
  return std::string(stack.empty() ? iavl::empty_tree_hash().view() : stack.back().hash.view());
}

class Rejection : public ::testing::Test {
 protected:
  void SetUp() override {
    iavl::versioned_tree original;
    random_history(original, 5, 6, 80, 120);
    stream = export_string(original.last_commit());
    hash = original.last_commit().hash();
    parsed = parse(stream);
    ASSERT_GT(parsed.nodes.size(), 100u);
    ASSERT_EQ(serialize(parsed), stream);  // the test's reading of the format is the writer's
  }

  // Imports `bad` into an empty store: it must fail with a typed error and leave no node and
  // no version, also after reopening. Returns the message.
  std::string expect_rejected(const std::string& bad, bool leveldb = false) {
    test_support::temp_dir dir;
    auto store = leveldb ? iavl::open_leveldb_store((dir.path() / "db").string()) : iavl::open_memory_store();
    std::string message;
    {
      iavl::versioned_tree db(iavl::options{.store = store});
      try {
        (void)import_string(db, bad);
        ADD_FAILURE() << "a bad stream was accepted";
      } catch (const iavl::error& e) {
        EXPECT_TRUE(e.code() == iavl::errc::corruption || e.code() == iavl::errc::invalid_argument) << e.what();
        message = e.what();
      }
      EXPECT_EQ(stored_nodes(*store), 0u) << message;
      EXPECT_TRUE(db.versions().empty());
      EXPECT_EQ(db.latest_version(), 0);
    }
    iavl::versioned_tree reopened(iavl::options{.store = store});
    EXPECT_TRUE(reopened.versions().empty());
    // And the store takes a good import afterwards.
    EXPECT_EQ(import_string(reopened, stream).hash(), hash);
    return message;
  }

  static iavl::snapshot import_string_into_memory(const std::string& s) {
    iavl::versioned_tree db(iavl::options{.store = iavl::open_memory_store()});
    return import_string(db, s);
  }

  // Re-serializes `p` with a correct checksum and, unless told otherwise, a correct root hash.
  std::string rebuilt(parsed_stream p, bool fix_root_hash = true) {
    if (fix_root_hash) p.root_hash = root_hash_of(p);
    return serialize(p);
  }

  static void expect_mentions(const std::string& message, const std::string& what) {
    EXPECT_NE(message.find(what), std::string::npos) << "'" << message << "' does not mention '" << what << "'";
  }

  std::string stream;
  iavl::hash256 hash;
  parsed_stream parsed;
};

TEST_F(Rejection, TruncatedStreams) {
  for (std::size_t len = 0; len < stream.size(); len += (len < 64 || len + 100 > stream.size()) ? 1 : 37) {
    const std::string message = expect_rejected(stream.substr(0, len));
    if (len >= 8) expect_mentions(message, "truncated");
  }
  expect_rejected(stream.substr(0, stream.size() / 2), true);
}

TEST_F(Rejection, FlippedBytes) {
  for (std::size_t pos = 0; pos < stream.size(); pos += (pos < 64 || pos + 100 > stream.size()) ? 1 : 29) {
    for (const char mask : {'\x01', '\x80'}) {
      std::string bad = stream;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      expect_rejected(bad);
    }
  }
}

TEST_F(Rejection, BytesAfterTheTrailer) { expect_mentions(expect_rejected(stream + "x"), "after the trailer"); }

TEST_F(Rejection, ReorderedNodes) {
  // Two leaves swapped: keys out of order.
  std::size_t a = 0;
  while (parsed.nodes[a].height != 0 || parsed.nodes[a + 1].height != 0) ++a;
  parsed_stream p = parsed;
  std::swap(p.nodes[a], p.nodes[a + 1]);
  expect_mentions(expect_rejected(rebuilt(p)), "ascending");
  // A parent before its children, and nodes swapped across the stream.
  std::mt19937_64 rng(1);
  for (int i = 0; i < 50; ++i) {
    p = parsed;
    const std::size_t x = rng() % p.nodes.size(), y = rng() % p.nodes.size();
    if (x == y || (p.nodes[x].height == p.nodes[y].height && p.nodes[x].key == p.nodes[y].key)) continue;
    std::swap(p.nodes[x], p.nodes[y]);
    expect_rejected(rebuilt(p));
  }
}

TEST_F(Rejection, ChangedVersions) {
  std::uint64_t max_version = 0;
  for (const stream_node& n : parsed.nodes) max_version = std::max(max_version, n.version);
  // A node version above the stream's.
  parsed_stream p = parsed;
  p.nodes[0].version = p.version + 1;
  expect_mentions(expect_rejected(rebuilt(p)), "version");
  // The stream's version below its nodes'.
  p = parsed;
  p.version = max_version - 1;
  expect_rejected(rebuilt(p));
  // A node older or newer than it was, with the root hash recomputed to match: a parent older
  // than its child, or a hash that differs from the trailer's.
  for (std::size_t i = 0; i < parsed.nodes.size(); i += 5) {
    p = parsed;
    p.nodes[i].version = p.nodes[i].version > 1 ? p.nodes[i].version - 1 : p.nodes[i].version + 1;
    expect_rejected(rebuilt(p, false));  // a parent older than its child, or another root hash
  }
}

TEST_F(Rejection, WrongTrailer) {
  parsed_stream p = parsed;
  p.root_hash[3] = static_cast<char>(p.root_hash[3] ^ 1);
  expect_mentions(expect_rejected(rebuilt(p, false)), "root hash");
  p = parsed;
  p.count += 1;
  expect_mentions(expect_rejected(rebuilt(p)), "nodes");
  p = parsed;
  p.keys += 1;
  expect_mentions(expect_rejected(rebuilt(p)), "keys");
  p = parsed;
  p.format = 2;
  expect_mentions(expect_rejected(rebuilt(p)), "format version");
  std::string bad = stream;
  bad[0] = 'X';
  expect_mentions(expect_rejected(bad), "magic");
  bad = stream;
  bad.back() = static_cast<char>(bad.back() ^ 1);
  expect_mentions(expect_rejected(bad), "checksum");
}

TEST_F(Rejection, TreesThatAreNotIavlTrees) {
  const auto leaf = [](const char* k) { return stream_node{0, 1, k, "v"}; };
  const auto inner = [](int h, const char* k) { return stream_node{h, 1, k, ""}; };
  parsed_stream p{1, 1, 4, {}, 0, {}};
  // (((a b) c) d): heights 2 and 0 under the root.
  p.nodes = {leaf("a"), leaf("b"), inner(1, "b"), leaf("c"), inner(2, "c"), leaf("d"), inner(3, "d")};
  p.count = p.nodes.size();
  expect_mentions(expect_rejected(rebuilt(p)), "not balanced");
  // ((a b) (c d)) with the root's key not the smallest key on its right.
  p.nodes = {leaf("a"), leaf("b"), inner(1, "b"), leaf("c"), leaf("d"), inner(1, "d"), inner(2, "d")};
  expect_mentions(expect_rejected(rebuilt(p)), "smallest key");
  // A wrong height.
  p.nodes = {leaf("a"), leaf("b"), inner(1, "b"), leaf("c"), leaf("d"), inner(1, "d"), inner(3, "c")};
  expect_mentions(expect_rejected(rebuilt(p)), "height");
  // A parent older than its child.
  p.nodes = {leaf("a"), leaf("b"), inner(1, "b"), leaf("c"), leaf("d"), inner(1, "d"), inner(2, "c")};
  p.version = 2;
  p.nodes[3].version = 2;
  expect_mentions(expect_rejected(rebuilt(p)), "older than a child");
  p.version = 1;
  // An inner node with one subtree before it.
  p.nodes = {leaf("a"), inner(1, "a")};
  p.keys = 1;
  p.count = 2;
  expect_mentions(expect_rejected(rebuilt(p)), "two subtrees");
  // Leaves that never join.
  p.nodes = {leaf("a"), leaf("b")};
  p.keys = 2;
  expect_mentions(expect_rejected(rebuilt(p)), "not joined");
  // The well-formed version of the same tree is accepted: the checks above are the cause.
  p.nodes = {leaf("a"), leaf("b"), inner(1, "b"), leaf("c"), leaf("d"), inner(1, "d"), inner(2, "c")};
  p.keys = 4;
  p.count = 7;
  EXPECT_EQ(import_string_into_memory(rebuilt(p)).size(), 4);
}

// An imported version is written synced: durable at once, as a committed one is once written.
TEST(StateSync, AnImportedVersionIsDurable) {
  iavl::versioned_tree source;
  (void)random_history(source, 3, 3, 50, 40);
  const std::string stream = export_string(source.last_commit());
  for (const bool background : {false, true}) {
    SCOPED_TRACE(background ? "background writes" : "writes in commit");
    iavl::versioned_tree db(iavl::options{.store = iavl::open_memory_store(), .background_writes = background});
    EXPECT_EQ(import_string(db, stream).version(), 3);
    EXPECT_EQ(db.durable_version(), 3);
  }
}

TEST(StateSync, ImportIntoANonEmptyTreeIsRejected) {
  iavl::versioned_tree original;
  random_history(original, 9, 2, 50, 100);
  const std::string stream = export_string(original.last_commit());
  auto store = iavl::open_memory_store();
  iavl::versioned_tree db(iavl::options{.store = store});
  iavl::tree t = db.branch();
  t.set("mine", "1");
  const iavl::hash256 mine = db.commit(std::move(t)).hash();
  const std::size_t nodes = stored_nodes(*store);
  try {
    (void)import_string(db, stream);
    FAIL() << "imported into a tree with a version";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::invalid_argument);
  }
  EXPECT_EQ(db.versions(), std::vector<std::int64_t>{1});
  EXPECT_EQ(db.last_commit().hash(), mine);
  EXPECT_EQ(stored_nodes(*store), nodes);
  // A tree without a store has nowhere to import into.
  iavl::versioned_tree memory_only;
  EXPECT_THROW((void)import_string(memory_only, stream), iavl::error);
}

// A stream whose reads fail after `good` bytes.
class failing_buf : public std::streambuf {
 public:
  failing_buf(std::string data, std::size_t good) : data_(std::move(data)), good_(good) {}

 protected:
  int_type underflow() override {
    if (pos_ >= good_) throw std::runtime_error("injected read failure");
    const std::size_t n = std::min<std::size_t>(100, good_ - pos_);
    setg(data_.data() + pos_, data_.data() + pos_, data_.data() + pos_ + n);
    pos_ += n;
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string data_;
  std::size_t good_, pos_ = 0;
};

// The import reads the root back before it writes the root record: a read failing there left
// an indexed version in the store that the process did not know, whose node records a commit
// then overwrote (and that commit was lost on reopening).
TEST(StateSync, AnImportWhoseRootReadFailsLeavesNoVersion) {
  iavl::versioned_tree source;
  (void)random_history(source, 8, 5, 60, 50);
  const std::string stream = export_string(source.last_commit());
  auto store = std::make_shared<test_support::failing_store>();
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    store->reads_left = 0;
    try {
      (void)import_string(db, stream);
      ADD_FAILURE() << "imported";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
    }
    store->reads_left = -1;
    EXPECT_TRUE(db.versions().empty());
    EXPECT_EQ(stored_nodes(*store), 0u);
    EXPECT_EQ(import_string(db, stream).hash(), source.last_commit().hash());  // a retry works
    iavl::tree t = db.branch();
    t.set("after", "import");
    (void)db.commit(std::move(t));
  }
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_EQ(reopened.latest_version(), 6);
  EXPECT_EQ(reopened.at(5).hash(), source.last_commit().hash());
  reopened.last_commit().verify();
}

TEST(StateSync, FailedReadsAndWritesLeaveNothingBehind) {
  iavl::versioned_tree original;
  iavl::tree t = original.branch();
  for (int i = 0; i < 50000; ++i) t.set("key/" + std::to_string(i), std::string(20, 'v'));
  const iavl::snapshot s = original.commit(std::move(t));
  const std::string stream = export_string(s);

  auto store = std::make_shared<test_support::failing_store>();
  {
    iavl::versioned_tree db(iavl::options{.store = store});
    failing_buf buf(stream, stream.size() - 1000);
    std::istream in(&buf);
    try {
      (void)iavl::import_state(db, in);
      FAIL() << "a failed read went unnoticed";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::io_error) << e.what();
    }
    EXPECT_EQ(stored_nodes(*store), 0u);
    // The first batch is written, the last one (with the root record) fails, and so does the
    // clean-up: nodes stay behind, but no version.
    store->writes_left = 1;
    EXPECT_THROW((void)import_string(db, stream), iavl::error);
    EXPECT_GT(stored_nodes(*store), 0u);
    EXPECT_TRUE(db.versions().empty());
  }
  store->fail_writes = false;
  store->writes_left = -1;
  // Opening the store again deletes the leftovers: nodes without a version.
  iavl::versioned_tree reopened(iavl::options{.store = store});
  EXPECT_TRUE(reopened.versions().empty());
  EXPECT_EQ(stored_nodes(*store), 0u);
  EXPECT_EQ(import_string(reopened, stream).hash(), s.hash());
}

}  // namespace
