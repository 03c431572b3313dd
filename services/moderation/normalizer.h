// The text normaliser of the content screen (DESIGN §2, R10.1): folds the
// ways a term can be disguised into one form, so that one literal per term
// catches them all, and keeps a map from every normalised byte back to the
// original text so that matches report spans in what the user wrote.
//
// Per code point, in this order: number and letter styles ICU does not fold
// (❶, ➀, ⓫, 🅐, 🅰, regional indicators) to ASCII; NFKC case fold (full and
// half width, ①→1, ⑴→(1), ⒈→1., Ⓐ→a, ⒜→(a), ㈠→(一), ligatures); traditional
// to simplified Chinese (OpenCC's character table, loaded once); financial
// numerals to ordinary ones (壹→一); accents stripped from Latin, Greek and
// Cyrillic letters; look-alike Cyrillic and Greek letters to Latin (а→a,
// ο→o). Then noise is dropped (spaces, punctuation, symbols including emoji,
// zero-width and other format characters, combining marks) and runs of the
// same normalised character collapse to one that remembers its run length.
//
// All of it is a lookup in one flat table built once per process, so the
// per-message cost is a UTF-8 decode, a table read and an append.
#ifndef QUNZU_SERVICES_MODERATION_NORMALIZER_H_
#define QUNZU_SERVICES_MODERATION_NORMALIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace qunzu::moderation {

// Where one normalised byte came from, and what surrounds it.
struct NormalizedByte {
  // [begin, end): the original bytes of the normalised character this byte
  // belongs to, including the repeats collapsed into it.
  uint32_t begin = 0;
  uint32_t end = 0;
  // How many times the character occurred in a row (noise between repeats
  // ignored), saturated at 65535.
  uint16_t run = 1;
  // kGapBefore | kWordChar | kDigit.
  uint8_t flags = 0;
};

// NormalizedByte::flags.
inline constexpr uint8_t kGapBefore = 1;  // noise was dropped just before it
inline constexpr uint8_t kWordChar = 2;   // a letter or digit of an alphabetic script
inline constexpr uint8_t kDigit = 4;      // an ASCII digit

// The normalised form of one text. Reuse one instance across calls to avoid
// allocating: Normalize clears it and keeps its capacity.
struct NormalizedText {
  std::string text;
  // One entry per byte of text.
  std::vector<NormalizedByte> bytes;

  // The original span [begin, end) of the normalised bytes [from, to).
  uint32_t OriginalBegin(size_t from) const { return bytes[from].begin; }
  uint32_t OriginalEnd(size_t to) const { return bytes[to - 1].end; }
};

class Normalizer {
 public:
  // The process-wide normaliser; its table is built on first use (about a
  // tenth of a second) and never changes.
  static const Normalizer& Get();

  // Normalises text into out. Invalid UTF-8 is INVALID_ARGUMENT (reason
  // INVALID_FIELD, field named by `field`), and out is then unspecified.
  absl::Status Normalize(absl::string_view text, NormalizedText* out,
                         absl::string_view field = "text") const;

  // The normalised form of one code point before noise removal and run
  // collapsing, as code points; empty for noise. For tests and TestRules.
  std::u32string MapCodePoint(char32_t cp) const;

  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

 private:
  Normalizer();
  void Build();

  // Per code point below kTableSize: (count << 24) | payload, where count 0
  // is noise, count 1 has the code point in payload, and a larger count has
  // an offset into pool_.
  std::vector<uint32_t> table_;
  std::vector<char32_t> pool_;
};

// Code points at or above this pass through unchanged, except tags and
// variation selectors (U+E0000..U+E0FFF), which are noise.
inline constexpr char32_t kNormalizerTableSize = 0x40000;

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_NORMALIZER_H_
