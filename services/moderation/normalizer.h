// The text normaliser of the content screen (DESIGN §2, R10.1): folds the
// ways a term can be disguised into one form, so that one literal per term
// catches them all, and can map every normalised character back to the
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
#include "absl/types/span.h"

namespace qunzu::moderation {

// Where one normalised character came from, and what surrounds it.
struct NormalizedChar {
  // Offset of its first byte in NormalizedText::text.
  uint32_t pos = 0;
  // [begin, end): its original bytes, including the repeats collapsed into it.
  uint32_t begin = 0;
  uint32_t end = 0;
  // How many times the character occurred in a row (noise between repeats
  // ignored), saturated at 65535.
  uint16_t run = 1;
  // kGapBefore | kWordChar | kDigit.
  uint8_t flags = 0;
  uint8_t unused = 0;  // (no padding: a built rule set's bytes are its values)
};

// NormalizedChar::flags.
inline constexpr uint8_t kGapBefore = 1;  // noise was dropped just before it
inline constexpr uint8_t kWordChar = 2;   // a letter or digit of an alphabetic script
inline constexpr uint8_t kDigit = 4;      // an ASCII digit

// The normalised form of one text. Reuse one instance across calls to avoid
// allocating: Normalize clears it and keeps its capacity. Not thread-safe:
// Chars() may fill it in.
struct NormalizedText {
  std::string text;

  // One entry per character of text, in order: where it came from. Kept per
  // character, not per byte: writing it is most of the normaliser's work,
  // so after NormalizeText it is built only when first asked for (a match
  // whose word boundary or runs must be checked; starts() and the original
  // spans are written by the text pass itself).
  const std::vector<NormalizedChar>& Chars() const;

  // A prefix of Chars() that holds, complete (runs included), every
  // character whose first byte is at or before normalised byte `offset`.
  // After NormalizeText it maps no further than that: the matcher asks for
  // the map up to its last match only.
  const std::vector<NormalizedChar>& CharsThrough(size_t offset) const;

  // Whether some character occurred more than once in a row (a run > 1).
  // Only then can a term that needs a run ("哈哈", "100") match: the matcher
  // scans for those terms only in such texts.
  bool has_runs() const { return has_runs_; }

  // Where each character of text starts, then text.size() twice (so that
  // the character after the next one always has a start): written by the
  // normaliser's text pass, for the literal index (literal_index.h).
  absl::Span<const uint32_t> starts() const { return {starts_.data(), char_count_ + 2}; }
  // Per character, as starts(): its code point if below U+10000, else 0;
  // then two zeros. The literal index's keys (literal_index.h).
  absl::Span<const uint16_t> units() const { return {units_.data(), char_count_ + 2}; }

  // The index in Chars() of the character normalised byte `offset` is in
  // (from starts(): no map is built).
  size_t CharAt(size_t offset) const;
  // The original span [begin, end) of the normalised bytes [from, to), from
  // what the text pass wrote (no map is built).
  uint32_t OriginalBegin(size_t from) const { return spans_[CharAt(from)].begin; }
  uint32_t OriginalEnd(size_t to) const { return spans_[CharAt(to - 1)].end; }

 private:
  friend class Normalizer;
  static constexpr size_t kAllMapped = ~size_t{0};
  // Holds every character that starts before normalised byte mapped_before_
  // (kAllMapped: all of them); the rest is built from source_ (the original
  // text, which must outlive this) when asked for.
  mutable std::vector<NormalizedChar> chars_;
  mutable size_t mapped_before_ = kAllMapped;
  bool has_runs_ = false;
  absl::string_view source_;
  // starts(): char_count_ + 2 of them are written; more may be allocated.
  std::vector<uint32_t> starts_ = std::vector<uint32_t>(2, 0);
  std::vector<uint16_t> units_ = std::vector<uint16_t>(2, 0);
  size_t char_count_ = 0;
  // Per character, as starts_: its original bytes, repeats included (the
  // same as Chars()[i].begin and .end, without the rest of the map).
  struct Span {
    uint32_t begin;
    uint32_t end;
  };
  std::vector<Span> spans_ = std::vector<Span>(2, Span{0, 0});
};

class Normalizer {
 public:
  // The process-wide normaliser; its table is built on first use (about a
  // tenth of a second) and never changes.
  static const Normalizer& Get();

  // Normalises text into out, with the map of every character back to the
  // original. Invalid UTF-8 is INVALID_ARGUMENT (reason INVALID_FIELD, field
  // named by `field`), and out is then unspecified.
  absl::Status Normalize(absl::string_view text, NormalizedText* out,
                         absl::string_view field = "text") const;

  // Like Normalize, but the map is built only if out->Chars() is called,
  // which then reads `text` again: it must outlive out's use. The hot path:
  // most messages match nothing and never need the map.
  absl::Status NormalizeText(absl::string_view text, NormalizedText* out,
                             absl::string_view field = "text") const;

  // The normalised form of one code point before noise removal and run
  // collapsing, as code points; empty for noise. For tests and TestRules.
  std::u32string MapCodePoint(char32_t cp) const;

  // A digest of the normaliser's tables: two processes normalise every
  // text alike when theirs are equal (part of a built rule set's key).
  const std::string& Fingerprint() const { return fingerprint_; }

  Normalizer(const Normalizer&) = delete;
  Normalizer& operator=(const Normalizer&) = delete;

 private:
  friend struct NormalizedText;  // Chars() runs the mapping pass
  Normalizer();
  void Build();
  // What a pass over the text writes: the normalised text, the map, or both.
  enum class Pass { kText, kTextAndMap, kMap };
  // kMap leaves out->text as it is and stops once every character that
  // starts before normalised byte `map_before` is complete.
  template <Pass kPass>
  absl::Status Run(absl::string_view text, NormalizedText* out, absl::string_view field,
                   size_t map_before = NormalizedText::kAllMapped) const;

  // Per code point below kTableSize: (count << 24) | payload, where count 0
  // is noise, count 1 has the code point in payload, and a larger count has
  // an offset into pool_.
  std::vector<uint32_t> table_;
  std::vector<char32_t> pool_;
  // The fast path of table_: per code point that maps to exactly one code
  // point, that code point's UTF-8 bytes (first byte lowest) in the low 32
  // bits, its length in bits 32-39 and its flags (kWordChar, kDigit) in bits
  // 40-47; 0 for noise and for code points that expand.
  std::vector<uint64_t> fast_;
  std::string fingerprint_;
};

// Code points at or above this pass through unchanged, except tags and
// variation selectors (U+E0000..U+E0FFF), which are noise.
inline constexpr char32_t kNormalizerTableSize = 0x40000;

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_NORMALIZER_H_
