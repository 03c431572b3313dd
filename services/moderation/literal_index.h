// The literal terms of a rule set, found in normalised text (R10.1).
//
// Every occurrence of every literal that starts on a character boundary, in
// one pass over the text. Terms are keyed by their first three characters
// (shorter terms by all of theirs): at each character of the text the keys
// of it alone, with the next one and with the next two are looked up in a
// bit filter, and only where the filter has one in a hash table, whose few
// terms are compared with the text. A key of characters below U+10000 (all
// of Chinese in practice) is their code points, which the normaliser hands
// over per character (NormalizedText::units()); a term with a character
// beyond that among its first two is keyed by the UTF-8 bytes of those two.
// Three Chinese characters rarely start a term by chance, so on chat text
// the filter passes where a term really starts or nearly so; per character
// the work is a handful of instructions and reads of a filter that stays in
// the cache. The table reads of a stretch of text are prefetched together,
// so their cache misses overlap. Measured against Vectorscan's literal
// matcher on the same terms in docs/benchmarks.md.
//
// Immutable after Build and thread-safe to search.
#ifndef QUNZU_SERVICES_MODERATION_LITERAL_INDEX_H_
#define QUNZU_SERVICES_MODERATION_LITERAL_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/moderation/flat_bytes.h"

namespace qunzu::moderation {

// One match: what matched (a literal's or a regex's id) and its bytes
// [begin, end) in the normalised text.
struct TextMatch {
  uint32_t id;
  uint32_t begin;
  uint32_t end;
};

class LiteralIndex {
 public:
  struct Term {
    // Normalised UTF-8, not empty, without NUL (noise to the normaliser).
    absl::string_view text;
    // Matches only in text that has a run (NormalizedText::has_runs).
    bool needs_runs = false;
  };

  // Indexes terms; a term's id is its position. Replaces what was indexed.
  void Build(const std::vector<Term>& terms);

  // The built index in the flat encoding (flat_bytes.h), and back: a
  // stored index is in force without being built again. ReadFrom returns
  // false, and leaves the index empty, on bytes that do not hold one.
  void AppendTo(FlatWriter& out) const;
  bool ReadFrom(FlatReader& in);

  // How many terms were indexed.
  size_t size() const { return terms_; }
  // About how many bytes AppendTo writes (at least as many).
  size_t FlatSize() const {
    return 64 + bytes_.size() + candidates_.size() * sizeof(Candidate) +
           slots_.size() * sizeof(Slot) + filter_.size() * sizeof(uint64_t);
  }

  // Appends to out every occurrence in text (valid UTF-8) of every term
  // (those that need a run only if with_runs), in no particular order.
  // starts: where each character of text starts, then text.size() twice
  // (NormalizedText::starts()); units: each character's code point if it
  // is below U+10000, else 0, then two zeros (NormalizedText::units()).
  void Find(absl::string_view text, absl::Span<const uint32_t> starts,
            absl::Span<const uint16_t> units, bool with_runs, std::vector<TextMatch>* out) const;

 private:
  // A term longer than its key, or a second term of the key's text (which
  // differs in its runs), as stored under its key.
  struct Candidate {
    uint32_t term = 0;    // kNeedsRuns | its id
    uint32_t length = 0;  // kLast (the key's last candidate) | its length in bytes
    uint32_t offset = 0;  // of its bytes in bytes_
    uint32_t unused = 0;  // (no padding: the same index, the same bytes)
    // Its bytes after the key, up to eight, zero past its end: most terms
    // are compared with the text without reading bytes_.
    uint64_t tail = 0;
  };
  static constexpr uint32_t kNeedsRuns = 0x80000000U;
  static constexpr uint32_t kLast = 0x80000000U;
  static constexpr uint32_t kNone = 0xFFFFFFFFU;
  // Set on keys of code points (first << 32 | second << 16 | third, 0 for
  // none), whose seventh byte is zero: a key of UTF-8 bytes holds its
  // bytes, none NUL, then zeros, so it has this bit only with all eight
  // bytes set, and the two kinds never meet.
  static constexpr uint64_t kCodePoints = uint64_t{1} << 63;
  // One key: the term that is exactly the key (kNone if none) and the first
  // of its other candidates (kNone if none). Key 0 is an empty slot: a key
  // of code points has kCodePoints set, one of UTF-8 bytes holds no NUL.
  struct Slot {
    uint64_t key = 0;
    uint32_t exact = kNone;  // kNeedsRuns | term id
    uint32_t more = kNone;   // index in candidates_
  };
  // Probes looked up together.
  static constexpr size_t kProbeBatch = 32;
  // A place in the text whose key passed the filter.
  struct Probe {
    uint64_t key;
    uint32_t at;
    uint32_t key_length;
  };

  size_t SlotOf(uint64_t key) const { return Hash(key) >> slot_shift_; }
  // A term's key and its length in bytes.
  static std::pair<uint64_t, size_t> TermKey(absl::string_view text);
  bool MayHave(uint64_t key) const {
    const uint64_t bit = Hash(key) >> filter_shift_;
    return (filter_[bit >> 6] >> (bit & 63)) & 1U;
  }
  static uint64_t Hash(uint64_t key) { return key * 0x9E3779B97F4A7C15ULL; }
  // Looks the probes up and appends what matches.
  void Resolve(absl::string_view text, bool with_runs, const Probe* probes, size_t count,
               std::vector<TextMatch>* out) const;

  std::string bytes_;
  std::vector<Candidate> candidates_;
  std::vector<Slot> slots_;
  uint64_t slot_mask_ = 0;
  int slot_shift_ = 64;
  std::vector<uint64_t> filter_;
  int filter_shift_ = 64;
  // Whether any term is one character long (with and without a run): only
  // then is a single character looked up as well.
  bool single_plain_ = false;
  bool single_runs_ = false;
  size_t terms_ = 0;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_LITERAL_INDEX_H_
