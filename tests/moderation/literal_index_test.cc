// The literal index against a plain search: random terms and texts over
// characters of one to four UTF-8 bytes, so that keys of every length,
// terms longer than their inline tail, terms that are their key, several
// terms of one text and terms that need a run all occur.
#include "services/moderation/literal_index.h"

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "services/moderation/utf8.h"

namespace qunzu::moderation {
namespace {

using Found = std::tuple<uint32_t, uint32_t, uint32_t>;  // (term, begin, end)

std::vector<Found> Sorted(const std::vector<TextMatch>& matches) {
  std::vector<Found> out;
  out.reserve(matches.size());
  for (const TextMatch& m : matches) out.emplace_back(m.id, m.begin, m.end);
  std::sort(out.begin(), out.end());
  return out;
}

// Every character boundary where a term's bytes start.
std::vector<Found> PlainSearch(const std::vector<std::string>& terms,
                               const std::vector<bool>& needs_runs, const std::string& text,
                               bool with_runs) {
  std::vector<Found> out;
  for (size_t at = 0; at < text.size(); ++at) {
    if ((static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) continue;
    for (size_t t = 0; t < terms.size(); ++t) {
      if (needs_runs[t] && !with_runs) continue;
      if (text.compare(at, terms[t].size(), terms[t]) == 0) {
        out.emplace_back(t, at, at + terms[t].size());
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<TextMatch> Find(const LiteralIndex& index, const std::string& text, bool with_runs) {
  std::vector<uint32_t> starts;
  std::vector<uint16_t> units;
  for (size_t at = 0; at < text.size(); ++at) {
    if ((static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) continue;
    char32_t cp = 0;
    DecodeUtf8(text, at, &cp);
    starts.push_back(at);
    units.push_back(cp < 0x10000 ? static_cast<uint16_t>(cp) : 0);
  }
  starts.insert(starts.end(), 2, text.size());
  units.insert(units.end(), 2, 0);
  std::vector<TextMatch> out;
  index.Find(text, starts, units, with_runs, &out);
  return out;
}

TEST(LiteralIndexTest, FindsWhatAPlainSearchFinds) {
  // One, two, three and four bytes; the last two share three lead bytes.
  const std::vector<std::string> alphabet = {"a", "b", "é", "你", "好", "𠀀", "𠀁"};
  std::mt19937 random(7);
  auto word = [&](size_t max_chars) {
    std::string out;
    const size_t chars = 1 + random() % max_chars;
    for (size_t i = 0; i < chars; ++i) out += alphabet[random() % alphabet.size()];
    return out;
  };
  size_t compared = 0;
  size_t long_matches = 0;
  for (int set = 0; set < 200; ++set) {
    std::vector<std::string> terms;
    std::vector<bool> needs_runs;
    const size_t count = 1 + random() % 40;
    for (size_t i = 0; i < count; ++i) {
      // Now and then the same text again (as terms that differ in runs).
      terms.push_back(i > 0 && random() % 8 == 0 ? terms[random() % i] : word(7));
      needs_runs.push_back(random() % 4 == 0);
    }
    std::vector<LiteralIndex::Term> indexed;
    for (size_t i = 0; i < terms.size(); ++i) indexed.push_back({terms[i], needs_runs[i]});
    LiteralIndex built;
    built.Build(indexed);
    // Searched as read back from its flat bytes (what a replica loads),
    // which must take every index Build makes.
    std::string bytes;
    FlatWriter writer(&bytes);
    built.AppendTo(writer);
    FlatReader reader(bytes);
    LiteralIndex index;
    ASSERT_TRUE(index.ReadFrom(reader)) << "set " << set;
    ASSERT_EQ(reader.left(), 0U);
    for (int t = 0; t < 30; ++t) {
      // Random characters with terms planted in them, so long ones occur.
      std::string text;
      for (size_t pieces = random() % 12; pieces > 0; --pieces) {
        text += random() % 2 == 0 ? word(6) : terms[random() % terms.size()];
      }
      for (const bool with_runs : {false, true}) {
        const std::vector<Found> want = PlainSearch(terms, needs_runs, text, with_runs);
        ASSERT_EQ(Sorted(Find(index, text, with_runs)), want) << "set " << set << " text " << text;
        compared += want.size();
        for (const Found& f : want) long_matches += std::get<2>(f) - std::get<1>(f) > 16 ? 1 : 0;
      }
    }
  }
  EXPECT_GT(compared, 10000U);
  EXPECT_GT(long_matches, 50U);  // terms compared beyond their inline tail
}

TEST(LiteralIndexTest, EveryPlaceOfALongTextIsReported) {
  // More matches than one batch of probes holds.
  LiteralIndex index;
  index.Build({{"哈", false}, {"哈哈", false}, {"哈哈哈", true}});
  std::string text;
  for (int i = 0; i < 100; ++i) text += "哈";
  EXPECT_EQ(Find(index, text, false).size(), 100U + 99U);
  EXPECT_EQ(Find(index, text, true).size(), 100U + 99U + 98U);
}

// Bytes that are not an index are refused, and leave the index empty.
TEST(LiteralIndexTest, BytesThatAreNotAnIndexAreRefused) {
  LiteralIndex built;
  built.Build({{"你好", false}, {"你好吗", false}, {"你好", true}, {"ab", false}});
  std::string bytes;
  FlatWriter writer(&bytes);
  built.AppendTo(writer);
  size_t refused = 0;
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string changed = bytes;
    changed[at] = static_cast<char>(changed[at] ^ 0x41);
    FlatReader reader(changed);
    LiteralIndex index;
    if (!index.ReadFrom(reader)) {
      ++refused;
      EXPECT_EQ(index.size(), 0U);
      EXPECT_TRUE(Find(index, "你好吗", true).empty());
      continue;
    }
    (void)Find(index, "ab你好吗你好你好", true);  // whatever it finds, within bounds
  }
  // (Most bytes are the filter's, where a change is a false hit or miss.)
  EXPECT_GT(refused, 100U);
  FlatReader truncated(absl::string_view(bytes).substr(0, bytes.size() - 1));
  LiteralIndex index;
  EXPECT_FALSE(index.ReadFrom(truncated));
}

TEST(LiteralIndexTest, NothingIndexedOrNothingToSearch) {
  LiteralIndex empty;
  empty.Build({});
  EXPECT_TRUE(Find(empty, "你好", true).empty());
  LiteralIndex index;
  index.Build({{"你好", false}});
  EXPECT_TRUE(Find(index, "", true).empty());
  EXPECT_TRUE(Find(index, "你", true).empty());
  EXPECT_EQ(Sorted(Find(index, "a你好", false)), (std::vector<Found>{{0, 1, 7}}));
}

}  // namespace
}  // namespace qunzu::moderation
