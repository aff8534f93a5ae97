// Versions and snapshots: O(1) branches that do not see each other, old versions that stay
// readable, commits that must build on the latest version, and readers on other threads.
#include <gtest/gtest.h>

#include "iavl/iavl.hpp"

namespace {

TEST(Snapshots, CheckAndDeliverDoNotSeeEachOther) {
  iavl::versioned_tree db;
  {
    iavl::tree t = db.branch();
    t.set("shared", "0");
    (void)db.commit(std::move(t));
  }
  iavl::tree check = db.branch();
  iavl::tree deliver = db.branch();
  check.set("shared", "check");
  check.set("only-check", "1");
  deliver.set("shared", "deliver");
  deliver.remove("nothing");
  EXPECT_EQ(check.get("shared"), "check");
  EXPECT_EQ(deliver.get("shared"), "deliver");
  EXPECT_FALSE(deliver.has("only-check"));
  EXPECT_EQ(db.last_commit().get("shared"), "0");
  const iavl::hash256 deliver_hash = deliver.working_hash();
  const iavl::snapshot v2 = db.commit(std::move(deliver));
  EXPECT_EQ(v2.version(), 2);
  EXPECT_EQ(v2.hash(), deliver_hash);
  EXPECT_EQ(check.get("shared"), "check");  // the check tree is untouched by the commit
  check = db.branch();                      // reset to the new last commit
  EXPECT_EQ(check.get("shared"), "deliver");
  EXPECT_FALSE(check.has("only-check"));
  EXPECT_EQ(db.at(1).get("shared"), "0");
  check.verify();
  db.at(1).verify();
}

TEST(Snapshots, CommitMustBuildOnTheLatestVersion) {
  iavl::versioned_tree db;
  iavl::tree a = db.branch();
  iavl::tree b = db.branch();
  a.set("k", "a");
  b.set("k", "b");
  (void)db.commit(std::move(a));
  try {
    (void)db.commit(std::move(b));
    FAIL() << "expected stale_branch";
  } catch (const iavl::error& e) {
    EXPECT_EQ(e.code(), iavl::errc::stale_branch);
  }
  EXPECT_EQ(b.get("k"), "b");  // a rejected tree is left as it was
  EXPECT_EQ(db.latest_version(), 1);
  EXPECT_EQ(db.last_commit().get("k"), "a");

  // A tree of the right version number but from another history is stale too.
  iavl::versioned_tree other;
  iavl::tree t = other.branch();
  t.set("x", "y");
  (void)other.commit(std::move(t));
  iavl::tree foreign = other.branch();
  EXPECT_THROW((void)db.commit(std::move(foreign)), iavl::error);

  // So is one made on its own, also on a versioned_tree without versions; the error says why.
  iavl::versioned_tree fresh;
  iavl::tree alone;
  alone.set("a", "1");
  for (iavl::versioned_tree* target : {&db, &fresh}) {
    try {
      (void)target->commit(std::move(alone));
      FAIL() << "committed a tree made on its own";
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::stale_branch);
      EXPECT_NE(std::string(e.what()).find("not branched from this versioned_tree"), std::string::npos) << e.what();
    }
  }
}

TEST(Snapshots, MissingAndDeletedVersionsAreTypedErrors) {
  iavl::versioned_tree db;
  for (int i = 0; i < 3; ++i) {
    iavl::tree t = db.branch();
    t.set("k", std::to_string(i));
    (void)db.commit(std::move(t));
  }
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{1, 2, 3}));
  const iavl::snapshot held = db.at(1);
  db.delete_version(1);
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(held.get("k"), "0");  // a snapshot held by the app outlives the deletion
  for (std::int64_t v : {0, 1, 4, -1}) {
    try {
      (void)db.at(v);
      FAIL() << "version " << v;
    } catch (const iavl::error& e) {
      EXPECT_EQ(e.code(), iavl::errc::version_not_found);
    }
  }
  EXPECT_THROW(db.delete_version(3), iavl::error);  // the latest
  EXPECT_EQ(db.at(3).get("k"), "2");
}

TEST(Snapshots, RetentionCanChangeAndAppliesAtTheNextCommit) {
  iavl::versioned_tree db;  // keeps every version by default
  for (int i = 0; i < 5; ++i) {
    iavl::tree t = db.branch();
    t.set("k", std::to_string(i));
    (void)db.commit(std::move(t));
  }
  EXPECT_EQ(db.versions().size(), 5u);
  db.set_retention({.keep_recent = 2});
  EXPECT_EQ(db.versions().size(), 5u);
  (void)db.commit(db.branch());
  EXPECT_EQ(db.versions(), (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(db.at(5).get("k"), "4");
}

TEST(Snapshots, BranchIsConstantTimeAndSharesNodes) {
  iavl::versioned_tree db;
  iavl::tree t = db.branch();
  for (int i = 0; i < 1000; ++i) t.set("key" + std::to_string(i), "v");
  const iavl::snapshot s = db.commit(std::move(t));
  // A branch shares the root until it writes; one write copies only the key's path.
  iavl::tree b = s.branch();
  EXPECT_EQ(b.working_hash(), s.hash());
  b.set("key5", "w");
  EXPECT_NE(b.working_hash(), s.hash());
  EXPECT_EQ(s.get("key5"), "v");
  s.verify();
  b.verify();
}

}  // namespace
