#include "services/moderation/matcher.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/digest.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "tests/moderation/memory_rules_cache.h"

namespace qunzu::moderation {
namespace {

Rule Literal(uint64_t id, std::string term, RuleAction action = RuleAction::kBlock) {
  return Rule{id, RuleKind::kLiteral, std::move(term), 2, action};
}
Rule Allow(uint64_t id, std::string term) { return Rule{id, RuleKind::kAllow, std::move(term), 0}; }
Rule Regex(uint64_t id, std::string pattern) {
  return Rule{id, RuleKind::kRegex, std::move(pattern), 1, RuleAction::kBlock};
}

class ModerationMatcherTest : public ::testing::Test {
 protected:
  void Use(std::vector<Rule> rules) {
    auto compiled = CompiledRules::Compile(std::move(rules));
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    rules_ = *std::move(compiled);
  }
  ScanResult Scan(absl::string_view text, bool explain = false) {
    NormalizedText normalized;
    EXPECT_TRUE(Normalizer::Get().Normalize(text, &normalized).ok());
    ScanResult result;
    EXPECT_TRUE(rules_->Scan(normalized, explain, &result).ok());
    return result;
  }
  std::vector<uint64_t> Ids(absl::string_view text) {
    std::vector<uint64_t> ids;
    for (const RuleMatch& m : Scan(text).matches) ids.push_back(rules_->rules()[m.rule_index].id);
    return ids;
  }
  std::shared_ptr<const CompiledRules> rules_;
};

TEST_F(ModerationMatcherTest, ChineseTermsThroughEveryDisguise) {
  Use({Literal(1, "赌博网站")});
  EXPECT_EQ(Ids("欢迎来到赌博网站"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("賭博網站"), std::vector<uint64_t>{1});           // traditional
  EXPECT_EQ(Ids("赌 博 网 站"), std::vector<uint64_t>{1});        // spaces
  EXPECT_EQ(Ids("赌😀博\u200B网，站"), std::vector<uint64_t>{1});  // emoji, zero width, punctuation
  EXPECT_EQ(Ids("赌赌赌博网站站"), std::vector<uint64_t>{1});     // repeats
  EXPECT_TRUE(Ids("赌球网站").empty());
  EXPECT_TRUE(Ids("赌博").empty());
}

TEST_F(ModerationMatcherTest, SpanIsInTheOriginalText) {
  Use({Literal(1, "赌博")});
  const std::string text = "来 賭 . 博 吧";
  ScanResult result = Scan(text);
  ASSERT_EQ(result.matches.size(), 1U);
  const RuleMatch& m = result.matches[0];
  EXPECT_EQ(text.substr(m.original_begin, m.original_end - m.original_begin), "賭 . 博");
  EXPECT_EQ(result.verdict, Verdict::kBlock);
}

TEST_F(ModerationMatcherTest, EnglishWholeWords) {
  Use({Literal(1, "ass"), Literal(2, "fuck")});
  EXPECT_TRUE(Ids("a class act").empty());
  EXPECT_TRUE(Ids("assume nothing").empty());
  EXPECT_TRUE(Ids("as you wish").empty());  // a shorter run is not the term
  EXPECT_EQ(Ids("you ass!"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("ASSSSS"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("Ａｓｓ"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("f.u.c.k"), std::vector<uint64_t>{2});
  EXPECT_EQ(Ids("fuuuuck"), std::vector<uint64_t>{2});
  EXPECT_EQ(Ids("ｆüсk"), std::vector<uint64_t>{2});  // full width, accent, Cyrillic с
  EXPECT_EQ(Ids("Ⓕⓤⓒⓚ"), std::vector<uint64_t>{2});
  EXPECT_TRUE(Ids("fuckit").empty());
}

TEST_F(ModerationMatcherTest, DigitsMatchExactRuns) {
  Use({Literal(1, "100")});
  EXPECT_EQ(Ids("pay 100 now"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("pay ①⓪⓪ now"), std::vector<uint64_t>{1});
  EXPECT_TRUE(Ids("pay 1000 now").empty());
  EXPECT_TRUE(Ids("pay 10 now").empty());
}

TEST_F(ModerationMatcherTest, TermsOfOneTextAndDifferentRunsAreTwoTerms) {
  // Both normalise to "哈"; each keeps its own run.
  for (const bool longer_first : {true, false}) {
    SCOPED_TRACE(longer_first ? "哈哈 first" : "哈 first");
    if (longer_first) {
      Use({Literal(1, "哈哈"), Literal(2, "哈")});
    } else {
      Use({Literal(2, "哈"), Literal(1, "哈哈")});
    }
    EXPECT_EQ(Ids("哈"), std::vector<uint64_t>{2});
    EXPECT_EQ(Ids("你哈好"), std::vector<uint64_t>{2});
    std::vector<uint64_t> both = Ids("哈，哈哈");
    std::sort(both.begin(), both.end());
    EXPECT_EQ(both, (std::vector<uint64_t>{1, 2}));
  }
}

TEST_F(ModerationMatcherTest, TermsThatNeedARunAreInOrderWithTheOthers) {
  Use({Literal(1, "哈哈"), Literal(2, "你好"), Literal(3, "100")});
  EXPECT_EQ(Ids("哈哈你好"), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Ids("你好哈哈"), (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(Ids("你好 100 哈 哈 你好"), (std::vector<uint64_t>{2, 3, 1, 2}));
  EXPECT_TRUE(Ids("你哈好哈").empty());  // two single 哈 are not a run
  EXPECT_TRUE(Ids("哈你").empty());
  EXPECT_TRUE(Ids("10 哈").empty());
}

std::vector<Rule> CacheTestRules(RuleAction first_action) {
  return {Literal(1, "赌博网站", first_action), Literal(2, "哈哈"), Literal(3, "100"),
          Allow(4, "赌博网站大全"), Regex(5, "v[i1]agra")};
}

// Every match of every text, as (rule id, original span, suppressed by).
std::vector<std::vector<uint64_t>> Explain(const CompiledRules& rules) {
  std::vector<std::vector<uint64_t>> out;
  for (const char* text : {"去赌 博网站", "哈哈哈", "哈", "pay 100", "pay 1000", "赌博网站大全",
                           "buy v1agra", "nothing here"}) {
    NormalizedText normalized;
    EXPECT_TRUE(Normalizer::Get().Normalize(text, &normalized).ok());
    ScanResult result;
    EXPECT_TRUE(rules.Scan(normalized, true, &result).ok());
    out.push_back({static_cast<uint64_t>(result.verdict)});
    for (const RuleMatch& m : result.matches) {
      out.push_back(
          {rules.rules()[m.rule_index].id, m.original_begin, m.original_end, m.suppressed_by});
    }
  }
  return out;
}

// CacheTestRules (BLOCK) compiled into cache; null if that failed.
std::shared_ptr<const CompiledRules> CompileInto(MemoryRulesCache& cache) {
  auto compiled = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return compiled.ok() ? *compiled : nullptr;
}

TEST_F(ModerationMatcherTest, ACompiledSetIsLoadedFromTheCacheAndScansTheSame) {
  MemoryRulesCache cache;
  auto compiled = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_FALSE((*compiled)->from_cache());
  EXPECT_EQ(cache.stores, 1);
  ASSERT_EQ(cache.bytes.count((*compiled)->cache_key()), 1U);

  auto loaded = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->from_cache());
  EXPECT_EQ(cache.stores, 1);  // nothing compiled, nothing stored
  EXPECT_EQ((*loaded)->cache_key(), (*compiled)->cache_key());
  const auto uncached = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock));
  ASSERT_TRUE(uncached.ok());
  EXPECT_EQ(Explain(**loaded), Explain(**uncached));
  EXPECT_EQ(Explain(**compiled), Explain(**uncached));

  // The entry holds the rules themselves: another action is another set,
  // and the new action holds.
  auto held = CompiledRules::Compile(CacheTestRules(RuleAction::kHold), &cache);
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE((*held)->from_cache());
  EXPECT_NE((*held)->cache_key(), (*compiled)->cache_key());
  NormalizedText normalized;
  ASSERT_TRUE(Normalizer::Get().Normalize("赌博网站", &normalized).ok());
  ScanResult result;
  ASSERT_TRUE((*held)->Scan(normalized, false, &result).ok());
  EXPECT_EQ(result.verdict, Verdict::kHold);

  // So are a different term and a different annex.
  std::vector<Rule> other = CacheTestRules(RuleAction::kBlock);
  other[1].pattern = "嘻嘻";
  auto changed = CompiledRules::Compile(other, &cache);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE((*changed)->from_cache());
  EXPECT_NE((*changed)->cache_key(), (*compiled)->cache_key());
  auto annexed = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache, "origin");
  ASSERT_TRUE(annexed.ok());
  EXPECT_FALSE((*annexed)->from_cache());
  EXPECT_EQ((*annexed)->annex(), "origin");
  EXPECT_EQ(cache.stores, 4);
}

TEST_F(ModerationMatcherTest, AStoredSetIsLoadedByItsKeyAloneWithItsRulesAndAnnex) {
  MemoryRulesCache cache;
  auto compiled = CompiledRules::Compile(CacheTestRules(RuleAction::kHold), &cache, "annex");
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  auto loaded = CompiledRules::LoadCached((*compiled)->cache_key(), cache);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_NE(*loaded, nullptr);
  EXPECT_TRUE((*loaded)->from_cache());
  EXPECT_EQ((*loaded)->annex(), "annex");
  EXPECT_EQ((*loaded)->cache_key(), (*compiled)->cache_key());
  ASSERT_EQ((*loaded)->rules().size(), (*compiled)->rules().size());
  for (size_t i = 0; i < (*loaded)->rules().size(); ++i) {
    const Rule& want = (*compiled)->rules()[i];
    const Rule& got = (*loaded)->rules()[i];
    EXPECT_EQ(std::tie(got.id, got.kind, got.pattern, got.category, got.action),
              std::tie(want.id, want.kind, want.pattern, want.category, want.action));
  }
  EXPECT_EQ(Explain(**loaded), Explain(**compiled));
  // The same rules built twice are the same bytes.
  MemoryRulesCache again;
  ASSERT_TRUE(CompiledRules::Compile(CacheTestRules(RuleAction::kHold), &again, "annex").ok());
  EXPECT_EQ(again.bytes, cache.bytes);

  // No entry, a damaged one, another key's: nothing (and no error).
  auto missing = CompiledRules::LoadCached(std::string(64, '0'), cache);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
  const std::string key = (*compiled)->cache_key();
  std::string& bytes = cache.bytes[key];
  bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 0x10);
  auto damaged = CompiledRules::LoadCached(key, cache);
  ASSERT_TRUE(damaged.ok());
  EXPECT_EQ(*damaged, nullptr);
  cache.bytes[std::string(64, '1')] = again.bytes.begin()->second;
  auto foreign = CompiledRules::LoadCached(std::string(64, '1'), cache);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(*foreign, nullptr);
  cache.failing = true;
  auto down = CompiledRules::LoadCached(key, cache);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(*down, nullptr);
}

TEST_F(ModerationMatcherTest, ADamagedOrFailingCacheOnlyCostsTheCompile) {
  MemoryRulesCache cache;
  const std::shared_ptr<const CompiledRules> compiled = CompileInto(cache);
  ASSERT_NE(compiled, nullptr);
  const std::string key = compiled->cache_key();
  const std::string good = cache.bytes[key];
  const auto expected = Explain(*compiled);
  std::vector<std::string> damaged = {good.substr(0, good.size() / 2), "", good + "x", good};
  damaged.back()[good.size() / 2] = static_cast<char>(damaged.back()[good.size() / 2] ^ 1);
  // Bytes of another set stored under this key.
  std::vector<Rule> other = CacheTestRules(RuleAction::kBlock);
  other[0].pattern = "别的";
  MemoryRulesCache other_cache;
  ASSERT_TRUE(CompiledRules::Compile(other, &other_cache).ok());
  damaged.push_back(other_cache.bytes.begin()->second);
  for (size_t i = 0; i < damaged.size(); ++i) {
    SCOPED_TRACE(i);
    cache.bytes[key] = damaged[i];
    auto again = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE((*again)->from_cache());
    EXPECT_EQ(Explain(**again), expected);
    EXPECT_EQ(cache.bytes[key], good);  // compiled and stored afresh
  }
  cache.failing = true;
  auto without = CompiledRules::Compile(CacheTestRules(RuleAction::kBlock), &cache);
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE((*without)->from_cache());
  EXPECT_EQ(Explain(**without), expected);
}

// Bytes that pass the digest but were never a set (a byte changed and the
// digest made again): refused or, where the change is only in a value,
// loaded and scanned without reading out of bounds.
TEST_F(ModerationMatcherTest, ALoadedSetIsCheckedBeyondItsDigest) {
  MemoryRulesCache cache;
  const std::shared_ptr<const CompiledRules> compiled = CompileInto(cache);
  ASSERT_NE(compiled, nullptr);
  const std::string key = compiled->cache_key();
  const std::string good = cache.bytes[key];
  const std::string body = good.substr(0, good.size() - 32);
  int refused = 0;
  for (size_t at = 0; at < body.size(); ++at) {
    for (const unsigned char flip : {0x01, 0x80, 0xFF}) {
      std::string bytes = body;
      bytes[at] = static_cast<char>(static_cast<unsigned char>(bytes[at]) ^ flip);
      cache.bytes[key] = bytes + Sha256(bytes);
      auto loaded = CompiledRules::LoadCached(key, cache);
      ASSERT_TRUE(loaded.ok()) << at;
      if (*loaded == nullptr) {
        ++refused;
        continue;
      }
      (void)Explain(**loaded);
    }
  }
  // Most changes hit a length, a count or a reference.
  EXPECT_GT(refused, static_cast<int>(body.size()));
  cache.bytes[key] = good;
  auto loaded = CompiledRules::LoadCached(key, cache);
  ASSERT_TRUE(loaded.ok());
  ASSERT_NE(*loaded, nullptr);
  EXPECT_EQ(Explain(**loaded), Explain(*compiled));
}

TEST_F(ModerationMatcherTest, AllowListWinsWhereItContainsTheTerm) {
  Use({Literal(1, "法轮"), Allow(2, "法轮功能"), Literal(3, "ass"), Allow(4, "ass kicking")});
  EXPECT_TRUE(Ids("这个法轮功能很好").empty());
  EXPECT_EQ(Ids("法轮"), std::vector<uint64_t>{1});
  ScanResult explained = Scan("法轮功能", true);
  ASSERT_EQ(explained.matches.size(), 1U);
  EXPECT_EQ(explained.matches[0].suppressed_by, 2U);
  EXPECT_EQ(explained.verdict, Verdict::kAllow);
  EXPECT_TRUE(Ids("an ass kicking game").empty());
  EXPECT_EQ(Ids("an ass"), std::vector<uint64_t>{3});
}

TEST_F(ModerationMatcherTest, HoldUnlessSomethingBlocks) {
  Use({Literal(1, "代开发票", RuleAction::kHold), Literal(2, "枪支", RuleAction::kBlock)});
  EXPECT_EQ(Scan("代开发票").verdict, Verdict::kHold);
  EXPECT_EQ(Scan("代开发票 枪支").verdict, Verdict::kBlock);
  EXPECT_EQ(Scan("你好").verdict, Verdict::kAllow);
}

TEST_F(ModerationMatcherTest, RegexOnNormalisedText) {
  Use({Regex(1, "加微信?[0-9a-z]{6,}")});
  EXPECT_EQ(Ids("加微 wx123456"), std::vector<uint64_t>{1});
  EXPECT_EQ(Ids("加 微 信：ＡＢＣ１２３４"), std::vector<uint64_t>{1});
  EXPECT_TRUE(Ids("加微信 abc").empty());
}

TEST_F(ModerationMatcherTest, BadRulesRefusedWithTheReason) {
  auto status = CompiledRules::CheckRegex("(a", 3);
  EXPECT_EQ(ErrorReason(status), "REGEX_REJECTED");
  EXPECT_EQ(ErrorMetadata(status, "rule_index"), "3");
  EXPECT_FALSE(ErrorMetadata(status, "why").empty());
  EXPECT_EQ(ErrorReason(CompiledRules::CheckRegex("a*", 0)), "REGEX_REJECTED");      // empty match
  EXPECT_EQ(ErrorReason(CompiledRules::CheckRegex("(a)\\1", 0)), "REGEX_REJECTED");  // backref
  EXPECT_EQ(ErrorReason(CompiledRules::CheckRegex(std::string(2000, 'a'), 0)), "REGEX_REJECTED");
  status = CompiledRules::CheckRegex("[a-z]{100,5000}", 7);
  EXPECT_EQ(ErrorReason(status), "REGEX_REJECTED") << status;
  EXPECT_NE(ErrorMetadata(status, "why").find("pathological"), std::string::npos);
  status = CompiledRules::CheckRegex("((\\w+\\s?){90}(x|y){90}){90}", 7);
  EXPECT_EQ(ErrorReason(status), "REGEX_REJECTED") << status;
  EXPECT_TRUE(CompiledRules::CheckRegex("[0-9]{6,12}", 0).ok());
  EXPECT_TRUE(CompiledRules::CheckRegex("赌[博球]", 0).ok());
  auto compiled = CompiledRules::Compile({Literal(1, " ，!! ")});
  EXPECT_EQ(ErrorReason(compiled.status()), "PATTERN_EMPTY");
  compiled = CompiledRules::Compile({Literal(1, "ok"), Regex(2, "(")});
  EXPECT_EQ(ErrorReason(compiled.status()), "REGEX_REJECTED");
}

TEST_F(ModerationMatcherTest, EmptyRulesAndEmptyText) {
  Use({});
  EXPECT_EQ(Scan("anything").verdict, Verdict::kAllow);
  Use({Literal(1, "x")});
  EXPECT_EQ(Scan("").verdict, Verdict::kAllow);
  EXPECT_EQ(Scan("😀😀").verdict, Verdict::kAllow);
}

// Each thread keeps the scratch space of the rule set it scanned with last;
// a different set (a swap, or TestRules' candidate) must get its own, also
// when the new set is built where a freed one was.
TEST_F(ModerationMatcherTest, OneThreadScansWithRuleSetsInTurn) {
  auto compile = [](std::vector<Rule> rules) {
    auto compiled = CompiledRules::Compile(std::move(rules));
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    return *std::move(compiled);
  };
  const std::shared_ptr<const CompiledRules> literals = compile({Literal(1, "赌博")});
  const std::shared_ptr<const CompiledRules> regexes =
      compile({Literal(2, "毒品"), Regex(3, "[0-9]{6,}")});
  auto ids = [](const CompiledRules& rules, absl::string_view text) {
    NormalizedText normalized;
    EXPECT_TRUE(Normalizer::Get().Normalize(text, &normalized).ok());
    ScanResult result;
    EXPECT_TRUE(rules.Scan(normalized, false, &result).ok());
    std::vector<uint64_t> out;
    for (const RuleMatch& m : result.matches) out.push_back(rules.rules()[m.rule_index].id);
    return out;
  };
  for (int round = 0; round < 20; ++round) {
    EXPECT_EQ(ids(*literals, "赌博 毒品 1234567"), std::vector<uint64_t>{1});
    EXPECT_EQ(ids(*regexes, "赌博 毒品 1234567"), (std::vector<uint64_t>{2, 3}));
    // Built and freed in turn, likely at one address.
    const std::shared_ptr<const CompiledRules> fresh =
        compile({Literal(4, round % 2 == 0 ? "赌博" : "毒品"), Regex(5, "[a-z]{9,}")});
    EXPECT_EQ(ids(*fresh, "赌博 毒品 abcdefghij"), (std::vector<uint64_t>{4, 5}));
  }
}

}  // namespace
}  // namespace qunzu::moderation
