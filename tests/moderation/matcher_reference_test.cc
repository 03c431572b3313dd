// The matcher against a plain reference: random rule sets and random texts
// over a small alphabet (so that terms, runs, word boundaries and allow terms
// meet often), every match the matcher reports compared with what a
// character-by-character search of the normalised text finds.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "services/moderation/matcher.h"
#include "services/moderation/normalizer.h"

namespace qunzu::moderation {
namespace {

// Tokens a term is made of (they survive normalisation), and noise.
const std::vector<std::string> kTermTokens = {"哈", "你", "好", "a",  "s", "x",
                                              "1",  "0",  "Ａ", "賭", "赌"};
const std::vector<std::string> kNoise = {" ", "，", "-", "\u200B"};

// One character of a normalised text, with what the matcher looks at.
struct RefChar {
  std::string utf8;
  NormalizedChar map;
};

std::vector<RefChar> RefChars(const NormalizedText& normalized) {
  const std::vector<NormalizedChar>& chars = normalized.Chars();
  std::vector<RefChar> out;
  for (size_t i = 0; i < chars.size(); ++i) {
    const size_t end = i + 1 < chars.size() ? chars[i + 1].pos : normalized.text.size();
    out.push_back({normalized.text.substr(chars[i].pos, end - chars[i].pos), chars[i]});
  }
  return out;
}

// (rule id, normalised begin, normalised end, original begin, original end)
using Found = std::tuple<uint64_t, uint32_t, uint32_t, uint32_t, uint32_t>;

// Every place `term` occurs in `text` under the matcher's rules: the same
// characters, at least the term's run of each letter (exactly that of each
// digit), and a word boundary where the term starts or ends with a word
// character.
std::vector<Found> Occurrences(uint64_t id, const std::vector<RefChar>& term,
                               const std::vector<RefChar>& text, size_t text_bytes) {
  std::vector<Found> found;
  const size_t n = term.size();
  for (size_t i = 0; i + n <= text.size(); ++i) {
    bool same = true;
    for (size_t k = 0; k < n && same; ++k) {
      const NormalizedChar& want = term[k].map;
      const NormalizedChar& got = text[i + k].map;
      same = term[k].utf8 == text[i + k].utf8 &&
             ((want.flags & kDigit) != 0 ? got.run == want.run : got.run >= want.run);
    }
    if (!same) continue;
    if ((term.front().map.flags & kWordChar) != 0 && i > 0 &&
        (text[i].map.flags & kGapBefore) == 0 && (text[i - 1].map.flags & kWordChar) != 0) {
      continue;
    }
    const size_t j = i + n;
    if ((term.back().map.flags & kWordChar) != 0 && j < text.size() &&
        (text[j].map.flags & kGapBefore) == 0 && (text[j].map.flags & kWordChar) != 0) {
      continue;
    }
    const uint32_t end = j < text.size() ? text[j].map.pos : static_cast<uint32_t>(text_bytes);
    found.emplace_back(id, text[i].map.pos, end, text[i].map.begin, text[j - 1].map.end);
  }
  return found;
}

std::string Pick(std::mt19937& rng, const std::vector<std::string>& from) {
  return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
}

// 1-4 term tokens, often with a token repeated (a run).
std::string RandomTerm(std::mt19937& rng) {
  std::string term;
  std::string last;
  const int length = std::uniform_int_distribution<int>(1, 4)(rng);
  for (int k = 0; k < length; ++k) {
    last = !last.empty() && rng() % 3 == 0 ? last : Pick(rng, kTermTokens);
    term += last;
  }
  return term;
}

std::string RandomText(std::mt19937& rng) {
  std::string text;
  std::string last;
  const int length = std::uniform_int_distribution<int>(0, 24)(rng);
  for (int k = 0; k < length; ++k) {
    if (rng() % 5 == 0) {
      text += Pick(rng, kNoise);
      continue;
    }
    last = !last.empty() && rng() % 3 == 0 ? last : Pick(rng, kTermTokens);
    text += last;
  }
  return text;
}

std::string Describe(const std::vector<Rule>& rules, const std::string& text) {
  std::vector<std::string> parts;
  parts.reserve(rules.size());
  for (const Rule& rule : rules) {
    parts.push_back(absl::StrCat(rule.id, rule.kind == RuleKind::kAllow ? " allow " : " term ",
                                 "\"", rule.pattern, "\"",
                                 rule.action == RuleAction::kHold ? " (hold)" : ""));
  }
  return absl::StrCat("rules: ", absl::StrJoin(parts, "; "), "\ntext: \"", text, "\"");
}

TEST(ModerationMatcherReferenceTest, EveryMatchIsWhatACharacterSearchFinds) {
  std::mt19937 rng(20261130);
  const Normalizer& normalizer = Normalizer::Get();
  size_t compared_matches = 0;
  size_t compared_suppressed = 0;
  for (int set = 0; set < 300; ++set) {
    std::vector<Rule> rules;
    const int count = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int r = 0; r < count; ++r) {
      const uint32_t kind = rng() % 7;
      Rule rule{static_cast<uint64_t>(r + 1), kind == 0 ? RuleKind::kAllow : RuleKind::kLiteral,
                RandomTerm(rng), 2, kind == 1 ? RuleAction::kHold : RuleAction::kBlock};
      rules.push_back(std::move(rule));
    }
    auto compiled = CompiledRules::Compile(rules);
    ASSERT_TRUE(compiled.ok()) << compiled.status() << "\n" << Describe(rules, "");
    std::vector<std::vector<RefChar>> terms;
    for (const Rule& rule : rules) {
      NormalizedText term;
      ASSERT_TRUE(normalizer.Normalize(rule.pattern, &term).ok());
      terms.push_back(RefChars(term));
    }
    for (int t = 0; t < 100; ++t) {
      const std::string text = RandomText(rng);
      NormalizedText reference_text;
      ASSERT_TRUE(normalizer.Normalize(text, &reference_text).ok());
      const std::vector<RefChar> chars = RefChars(reference_text);
      std::vector<Found> allowed;
      std::vector<Found> standing;
      std::vector<Found> suppressed;
      for (size_t r = 0; r < rules.size(); ++r) {
        const std::vector<Found> found =
            Occurrences(rules[r].id, terms[r], chars, reference_text.text.size());
        if (rules[r].kind == RuleKind::kAllow)
          allowed.insert(allowed.end(), found.begin(), found.end());
      }
      Verdict verdict = Verdict::kAllow;
      for (size_t r = 0; r < rules.size(); ++r) {
        if (rules[r].kind == RuleKind::kAllow) continue;
        for (const Found& f :
             Occurrences(rules[r].id, terms[r], chars, reference_text.text.size())) {
          const bool inside_allowed =
              std::any_of(allowed.begin(), allowed.end(), [&](const Found& a) {
                return std::get<1>(a) <= std::get<1>(f) && std::get<2>(f) <= std::get<2>(a);
              });
          (inside_allowed ? suppressed : standing).push_back(f);
          if (inside_allowed) continue;
          if (rules[r].action == RuleAction::kBlock) {
            verdict = Verdict::kBlock;
          } else if (verdict == Verdict::kAllow) {
            verdict = Verdict::kHold;
          }
        }
      }

      // The hot path's way: the map built only when the matcher asks.
      NormalizedText normalized;
      ASSERT_TRUE(normalizer.NormalizeText(text, &normalized).ok());
      for (const bool explain : {false, true}) {
        ScanResult result;
        ASSERT_TRUE((*compiled)->Scan(normalized, explain, &result).ok());
        std::vector<Found> got_standing;
        std::vector<Found> got_suppressed;
        for (const RuleMatch& m : result.matches) {
          (m.suppressed_by == 0 ? got_standing : got_suppressed)
              .emplace_back((*compiled)->rules()[m.rule_index].id, m.normalized_begin,
                            m.normalized_end, m.original_begin, m.original_end);
        }
        // Reported in order of end offset.
        EXPECT_TRUE(std::is_sorted(result.matches.begin(), result.matches.end(),
                                   [](const RuleMatch& a, const RuleMatch& b) {
                                     return a.normalized_end < b.normalized_end;
                                   }))
            << Describe(rules, text);
        std::vector<Found> want_standing = standing;
        std::vector<Found> want_suppressed = explain ? suppressed : std::vector<Found>{};
        for (auto* v : {&got_standing, &got_suppressed, &want_standing, &want_suppressed}) {
          std::sort(v->begin(), v->end());
        }
        ASSERT_EQ(got_standing, want_standing) << Describe(rules, text);
        ASSERT_EQ(got_suppressed, want_suppressed) << Describe(rules, text);
        ASSERT_EQ(result.verdict, verdict) << Describe(rules, text);
      }
      // Each span holds the term: its original bytes normalise to the
      // term's characters (none of this alphabet expands to several).
      for (const Found& f : standing) {
        const std::string span = text.substr(std::get<3>(f), std::get<4>(f) - std::get<3>(f));
        NormalizedText normalized_span;
        ASSERT_TRUE(normalizer.Normalize(span, &normalized_span).ok());
        NormalizedText term;
        ASSERT_TRUE(normalizer.Normalize(rules[std::get<0>(f) - 1].pattern, &term).ok());
        EXPECT_EQ(normalized_span.text, term.text) << Describe(rules, text);
      }
      compared_matches += standing.size();
      compared_suppressed += suppressed.size();
    }
  }
  // The alphabet is small enough that the comparison is not of empty sets.
  EXPECT_GT(compared_matches, 3000U);
  EXPECT_GT(compared_suppressed, 100U);
}

}  // namespace
}  // namespace qunzu::moderation
