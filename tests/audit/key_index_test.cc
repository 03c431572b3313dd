// The key index's pieces without a database: the stored hash is pinned
// (rows written by one build are read by the next), rows are sorted and
// searched exactly.
#include "services/audit/key_index.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <utility>
#include <vector>

namespace qunzu::audit {
namespace {

TEST(KeyIndexTest, TheHashIsFnv1aOverKindAndValue) {
  // Computed independently (FNV-1a 64 over the kind byte, then the value).
  EXPECT_EQ(KeyHash(PostingKind::kActor, "4242"), 0xe1ff4fd6e0da3f33ULL);
  EXPECT_EQ(KeyHash(PostingKind::kRequestId, ""), 0xaf63b84c8601af60ULL);
  EXPECT_EQ(KeyHash(PostingKind::kSubject, "2:77"), 0xc2990f03f1f8f0bfULL);
  EXPECT_NE(KeyHash(PostingKind::kActor, "77"), KeyHash(PostingKind::kRequestId, "77"));
  EXPECT_EQ(KeyBucket(0xe1ff4fd6e0da3f33ULL), 0xe1);
}

TEST(KeyIndexTest, AnEventsKeysAreItsActorRequestAndSubjects) {
  v1::AuditEvent e;
  std::vector<std::pair<PostingKind, std::string>> keys;
  auto collect = [&](PostingKind kind, const std::string& value) {
    keys.emplace_back(kind, value);
  };
  ForEachIndexedKey(e, collect);
  EXPECT_TRUE(keys.empty());  // no actor, no request_id, no subject
  e.set_actor_account_id(9);
  e.set_request_id("r-1");
  auto* s = e.add_subjects();
  s->set_kind(v1::SUBJECT_KIND_GROUP);
  s->set_id(5);
  ForEachIndexedKey(e, collect);
  const std::vector<std::pair<PostingKind, std::string>> want = {
      {PostingKind::kActor, "9"},
      {PostingKind::kRequestId, "r-1"},
      {PostingKind::kSubject, SubjectPostingValue(v1::SUBJECT_KIND_GROUP, 5)}};
  EXPECT_EQ(keys, want);
}

TEST(KeyIndexTest, RowsFindEveryOffsetOfAHashAndNothingElse) {
  std::mt19937_64 rng(11);
  std::vector<std::pair<uint64_t, uint32_t>> entries;
  std::vector<uint64_t> hashes(300);
  for (uint64_t& h : hashes) h = rng();
  std::multiset<std::pair<uint64_t, uint32_t>> want;
  for (uint32_t offset = 0; offset < 2000; ++offset) {
    const uint64_t h = hashes[rng() % hashes.size()];
    entries.emplace_back(h, offset);
    want.emplace(h, offset);
  }
  entries.emplace_back(entries.front());  // a repeat is stored once
  const std::string blob = EncodeKeyEntries(entries);
  EXPECT_EQ(blob.size(), 2000u * 12);
  for (uint64_t h : hashes) {
    std::vector<uint32_t> expected;
    for (auto it = want.lower_bound({h, 0}); it != want.end() && it->first == h; ++it) {
      expected.push_back(it->second);
    }
    EXPECT_EQ(FindKey(blob, h), expected);
  }
  EXPECT_TRUE(FindKey(blob, 12345).empty());
  EXPECT_TRUE(FindKey("", hashes[0]).empty());
  // A damaged row: its cut tail is not read past.
  const std::string cut = blob.substr(0, blob.size() - 5);
  for (uint64_t h : hashes) EXPECT_LE(FindKey(cut, h).size(), FindKey(blob, h).size());
}

}  // namespace
}  // namespace qunzu::audit
