#include "services/moderation/normalizer.h"

#include <string>
#include <tuple>

#include "absl/strings/string_view.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace qunzu::moderation {
namespace {

std::string Norm(absl::string_view text) {
  NormalizedText out;
  absl::Status status = Normalizer::Get().Normalize(text, &out);
  EXPECT_TRUE(status.ok()) << status;
  return out.text;
}

TEST(ModerationNormalizerTest, CaseFoldAndWidth) {
  EXPECT_EQ(Norm("HeLLo"), "helo");
  EXPECT_EQ(Norm("ＦＵＣＫ"), "fuck");  // full width
  EXPECT_EQ(Norm("ｶﾀｶﾅ"), "カタカナ");  // half-width katakana widened
  EXPECT_EQ(Norm("ﬁre"), "fire");       // ligature
  EXPECT_NE(Norm("fare"), "fire");
}

TEST(ModerationNormalizerTest, TraditionalToSimplified) {
  EXPECT_EQ(Norm("賭博"), "赌博");
  EXPECT_EQ(Norm("發票"), "发票");
  EXPECT_EQ(Norm("赌博"), "赌博");  // already simplified: unchanged
  EXPECT_EQ(Norm("貳"), "二");      // traditional financial numeral, then ordinary
}

TEST(ModerationNormalizerTest, NumberAndLetterStyles) {
  EXPECT_EQ(Norm("①"), "1");
  EXPECT_EQ(Norm("⑴"), "1");
  EXPECT_EQ(Norm("⒈"), "1");
  EXPECT_EQ(Norm("❶"), "1");
  EXPECT_EQ(Norm("➓"), "10");
  EXPECT_EQ(Norm("⓬"), "12");
  EXPECT_EQ(Norm("⑳"), "20");
  EXPECT_EQ(Norm("㈠"), "一");
  EXPECT_EQ(Norm("壹"), "一");
  EXPECT_EQ(Norm("Ⓐ"), "a");
  EXPECT_EQ(Norm("⒜"), "a");
  EXPECT_EQ(Norm("🅐🅑"), "ab");
  EXPECT_EQ(Norm("𝐟𝐮𝐜𝐤"), "fuck");  // mathematical bold
  EXPECT_EQ(Norm("9"), "9");
  EXPECT_NE(Norm("②"), "1");
}

TEST(ModerationNormalizerTest, LookAlikeLetters) {
  EXPECT_EQ(Norm("рас"), "pac");          // Cyrillic
  EXPECT_EQ(Norm("ΑΡΕ"), "ape");          // Greek capitals, folded then mapped
  EXPECT_EQ(Norm("fück"), "fuck");        // accent stripped
  EXPECT_EQ(Norm("fu\u0308ck"), "fuck");  // combining mark dropped
  EXPECT_EQ(Norm("д"), "д");              // a Cyrillic letter with no Latin twin stays
}

TEST(ModerationNormalizerTest, NoiseRemoved) {
  EXPECT_EQ(Norm("赌 博"), "赌博");
  EXPECT_EQ(Norm("赌.博"), "赌博");
  EXPECT_EQ(Norm("赌\u200B博"), "赌博");      // zero width space
  EXPECT_EQ(Norm("赌😀博"), "赌博");           // emoji
  EXPECT_EQ(Norm("赌👍🏽博"), "赌博");  // emoji with skin tone
  EXPECT_EQ(Norm("赌，博！"), "赌博");        // full-width punctuation
  EXPECT_EQ(Norm("f*u_c-k"), "fuck");
  EXPECT_EQ(Norm("赌x博"), "赌x博");  // a letter is not noise
}

TEST(ModerationNormalizerTest, RepeatsCollapseAndRemember) {
  NormalizedText out;
  ASSERT_TRUE(Normalizer::Get().Normalize("fuuu uck", &out).ok());
  EXPECT_EQ(out.text, "fuck");
  EXPECT_EQ(out.Chars()[1].run, 4);
  EXPECT_EQ(out.Chars()[0].run, 1);
  EXPECT_EQ(Norm("赌赌赌博"), "赌博");
  EXPECT_EQ(Norm("abab"), "abab");  // only the same character in a row
}

TEST(ModerationNormalizerTest, TheTextSaysWhetherItHasARun) {
  auto has_runs = [](absl::string_view text, bool with_map) {
    NormalizedText out;
    out.text = "stale";
    const Normalizer& normalizer = Normalizer::Get();
    EXPECT_TRUE(
        (with_map ? normalizer.Normalize(text, &out) : normalizer.NormalizeText(text, &out)).ok());
    return out.has_runs();
  };
  for (const bool with_map : {false, true}) {
    SCOPED_TRACE(with_map ? "Normalize" : "NormalizeText");
    EXPECT_TRUE(has_runs("哈哈", with_map));
    EXPECT_TRUE(has_runs("好，好 的", with_map));  // noise between the repeats
    EXPECT_TRUE(has_runs("ＡａA", with_map));      // the same after folding
    EXPECT_TRUE(has_runs("1 ⓪ 0", with_map));
    EXPECT_FALSE(has_runs("哈你哈", with_map));
    EXPECT_FALSE(has_runs("abab", with_map));
    EXPECT_FALSE(has_runs("", with_map));
  }
  // A reused instance forgets the last text's runs.
  NormalizedText out;
  ASSERT_TRUE(Normalizer::Get().NormalizeText("哈哈", &out).ok());
  ASSERT_TRUE(Normalizer::Get().NormalizeText("你好", &out).ok());
  EXPECT_FALSE(out.has_runs());
}

TEST(ModerationNormalizerTest, OffsetsPointIntoTheOriginal) {
  NormalizedText out;
  const std::string text = "x ＦＵ！Ｃ";
  ASSERT_TRUE(Normalizer::Get().Normalize(text, &out).ok());
  ASSERT_EQ(out.text, "xfuc");
  EXPECT_EQ(text.substr(out.OriginalBegin(1), out.OriginalEnd(4) - out.OriginalBegin(1)),
            "ＦＵ！Ｃ");
  EXPECT_EQ(out.Chars()[1].flags & kGapBefore, kGapBefore);
  EXPECT_EQ(out.Chars()[2].flags & kGapBefore, 0);
  // A multi-byte normalised character maps every byte to its source.
  ASSERT_TRUE(Normalizer::Get().Normalize("a賭", &out).ok());
  EXPECT_EQ(out.text, "a赌");
  EXPECT_EQ(out.OriginalBegin(1), 1U);
  EXPECT_EQ(out.OriginalEnd(out.text.size()), 4U);
  // Every byte of a character maps to it, not only the first.
  ASSERT_EQ(out.Chars().size(), 2U);
  EXPECT_EQ(out.CharAt(0), 0U);
  EXPECT_EQ(out.CharAt(1), 1U);
  EXPECT_EQ(out.CharAt(2), 1U);
  EXPECT_EQ(out.CharAt(3), 1U);
  EXPECT_EQ(out.OriginalBegin(2), 1U);
}

TEST(ModerationNormalizerTest, TextThatExpandsGrowsTheOutput) {
  // U+FDFA (3 bytes) folds to 18 characters (33 bytes): the output is many
  // times the input and every character still maps back to its source.
  std::string text;
  for (int i = 0; i < 200; ++i) text += "\uFDFA";
  NormalizedText out;
  ASSERT_TRUE(Normalizer::Get().Normalize(text, &out).ok());
  EXPECT_GT(out.text.size(), 5 * text.size());
  ASSERT_FALSE(out.Chars().empty());
  EXPECT_EQ(out.OriginalEnd(out.text.size()), text.size());
  uint32_t previous = 0;
  for (size_t k = 0; k < out.Chars().size(); ++k) {
    const NormalizedChar& c = out.Chars()[k];
    ASSERT_LT(c.pos, out.text.size());
    if (k > 0) {
      ASSERT_GT(c.pos, previous);
    }
    ASSERT_NE(static_cast<unsigned char>(out.text[c.pos]) & 0xC0, 0x80U);  // a lead byte
    ASSERT_EQ(c.end - c.begin, 3U);                                        // one U+FDFA each
    previous = c.pos;
  }
}

TEST(ModerationNormalizerTest, InvalidUtf8IsRefusedWithTheField) {
  NormalizedText out;
  // Truncated, a lead byte without its continuation, overlong (2 and 3
  // bytes), a surrogate, past U+10FFFF.
  for (absl::string_view bad :
       {absl::string_view("a\xff"), absl::string_view("\xe8\xb5"), absl::string_view("\xe8\xb5("),
        absl::string_view("\xe8(\xb5"), absl::string_view("\xc0\xaf"),
        absl::string_view("\xe0\x80\xaf"), absl::string_view("\xed\xa0\x80"),
        absl::string_view("\xf4\x90\x80\x80")}) {
    absl::Status status = Normalizer::Get().Normalize(bad, &out, "message.text");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorMetadata(status, "field"), "message.text");
  }
  EXPECT_TRUE(Normalizer::Get().Normalize("", &out).ok());
  EXPECT_TRUE(out.text.empty());
  // The edges of the three-byte fast path are valid.
  EXPECT_TRUE(Normalizer::Get().Normalize("\xe1\x80\x80\xec\xbf\xbf\xee\x80\x80", &out).ok());
  EXPECT_TRUE(Normalizer::Get().Normalize("\xe0\xa0\x80\xed\x9f\xbf", &out).ok());
}

TEST(ModerationNormalizerTest, TheMapBuiltOnDemandIsTheFullOne) {
  for (const std::string text :
       {"x ＦＵ！Ｃ", "fuuu uck ass class", "赌 博 賭博 ①②", "\uFDFA\uFDFA a", "plain"}) {
    NormalizedText full;
    NormalizedText lazy;
    ASSERT_TRUE(Normalizer::Get().Normalize(text, &full).ok());
    ASSERT_TRUE(Normalizer::Get().NormalizeText(text, &lazy).ok());
    EXPECT_EQ(lazy.text, full.text) << text;
    ASSERT_EQ(lazy.Chars().size(), full.Chars().size()) << text;
    for (size_t k = 0; k < full.Chars().size(); ++k) {
      const NormalizedChar& a = full.Chars()[k];
      const NormalizedChar& b = lazy.Chars()[k];
      EXPECT_EQ(std::tie(a.pos, a.begin, a.end, a.run, a.flags),
                std::tie(b.pos, b.begin, b.end, b.run, b.flags))
          << text << " character " << k;
    }
    EXPECT_EQ(lazy.text, full.text) << "mapping leaves the text as it was: " << text;
  }
}

TEST(ModerationNormalizerTest, TheMapBuiltUpToAnOffsetIsACompletePrefix) {
  for (const std::string text :
       {"x ＦＵ！Ｃ", "fuuu uck  aaa ss", "赌赌 博 賭博 ①②", "\uFDFA\uFDFA a"}) {
    NormalizedText full;
    ASSERT_TRUE(Normalizer::Get().Normalize(text, &full).ok());
    for (size_t offset = 0; offset < full.text.size(); ++offset) {
      NormalizedText lazy;
      ASSERT_TRUE(Normalizer::Get().NormalizeText(text, &lazy).ok());
      const std::vector<NormalizedChar>& prefix = lazy.CharsThrough(offset);
      const size_t wanted = full.CharAt(offset) + 1;
      // Every character through the offset, and no more than one past it.
      ASSERT_GE(prefix.size(), wanted) << text << " @" << offset;
      ASSERT_LE(prefix.size(), wanted + 1) << text << " @" << offset;
      for (size_t k = 0; k < wanted; ++k) {
        const NormalizedChar& a = full.Chars()[k];
        const NormalizedChar& b = prefix[k];
        EXPECT_EQ(std::tie(a.pos, a.begin, a.end, a.run, a.flags),
                  std::tie(b.pos, b.begin, b.end, b.run, b.flags))
            << text << " @" << offset << " character " << k;
      }
      EXPECT_EQ(lazy.OriginalEnd(offset + 1), full.OriginalEnd(offset + 1));
      EXPECT_EQ(lazy.text, full.text) << "a partial map leaves the text as it was";
      // Asking for all of it afterwards maps the rest.
      EXPECT_EQ(lazy.Chars().size(), full.Chars().size()) << text << " @" << offset;
    }
  }
}

// CharAt guesses from the average character width and walks; text that
// mixes widths (ASCII, CJK, characters that expand) puts the guess far off.
TEST(ModerationNormalizerTest, CharAtIsTheCharacterEveryByteIsIn) {
  std::string letters;  // no two neighbours alike, so nothing collapses
  for (int i = 0; i < 8; ++i) letters += "abcdefghijklmnopqrstuvwxyz";
  const std::string cjk = "赌博网站色情毒品诈骗";
  for (const std::string& text :
       {std::string("plain ascii words"), cjk, letters + cjk, cjk + letters + "网站",
        std::string("x\uFDFAy 𠀀𠀁 é ①② 賭博"), std::string("a")}) {
    NormalizedText out;
    ASSERT_TRUE(Normalizer::Get().Normalize(text, &out).ok());
    const std::vector<NormalizedChar>& chars = out.Chars();
    for (size_t offset = 0; offset < out.text.size(); ++offset) {
      size_t expected = 0;
      while (expected + 1 < chars.size() && chars[expected + 1].pos <= offset) ++expected;
      ASSERT_EQ(out.CharAt(offset), expected) << text << " @" << offset;
    }
  }
}

}  // namespace
}  // namespace qunzu::moderation
