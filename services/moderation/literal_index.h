// The literal terms of a rule set, found in normalised text (R10.1).
//
// Every occurrence of every literal that starts on a character boundary, in
// one pass over the text. Terms are keyed by their first two characters (a
// one-character term by that character): at each character of the text the
// key of it and the next character is looked up in a bit filter, and only
// where the filter has it in a hash table, whose few terms are compared with
// the text. On Chinese text a key is two whole characters, six bytes, so
// the filter passes only where a term really starts or nearly so; per
// character the work is a handful of instructions and one read of a filter
// that stays in the cache. The table reads of a stretch of text are
// prefetched together, so their cache misses overlap. Measured against
// Vectorscan's literal matcher on the same terms in docs/benchmarks.md.
//
// Immutable after Build and thread-safe to search.
#ifndef QUNZU_SERVICES_MODERATION_LITERAL_INDEX_H_
#define QUNZU_SERVICES_MODERATION_LITERAL_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

  // Appends to out every occurrence in text (valid UTF-8) of every term
  // (those that need a run only if with_runs), in no particular order.
  // starts: where each character of text starts, then text.size() twice
  // (NormalizedText::starts()).
  void Find(absl::string_view text, absl::Span<const uint32_t> starts, bool with_runs,
            std::vector<TextMatch>* out) const;

  // Bytes held (tables and term bytes), for the rule-compile benchmark.
  size_t MemoryBytes() const;

 private:
  // A term longer than its key, or a second term of the key's text (which
  // differs in its runs), as stored under its key.
  struct Candidate {
    uint32_t term = 0;    // kNeedsRuns | its id
    uint32_t length = 0;  // kLast (the key's last candidate) | its length in bytes
    uint32_t offset = 0;  // of its bytes in bytes_
    // Its bytes after the key, up to eight, zero past its end: most terms
    // are compared with the text without reading bytes_.
    uint64_t tail = 0;
  };
  static constexpr uint32_t kNeedsRuns = 0x80000000U;
  static constexpr uint32_t kLast = 0x80000000U;
  static constexpr uint32_t kNone = 0xFFFFFFFFU;
  // One key: the term that is exactly the key (kNone if none) and the first
  // of its other candidates (kNone if none). Key 0 is an empty slot (a key
  // is UTF-8 without NUL, so never 0).
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
