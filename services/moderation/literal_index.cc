#include "services/moderation/literal_index.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>

#include "services/moderation/utf8.h"

namespace qunzu::moderation {
namespace {

// The length of the UTF-8 character a lead byte starts, by its top nibble.
constexpr std::array<uint8_t, 16> kCharLength = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};

size_t CharLength(char lead) { return kCharLength[static_cast<unsigned char>(lead) >> 4]; }

// Per n in 0..8: the mask that keeps the first n bytes of a uint64_t loaded
// from memory (whatever the byte order).
const std::array<uint64_t, 9>& PrefixMasks() {
  static const std::array<uint64_t, 9> masks = [] {
    std::array<uint64_t, 9> out{};
    for (size_t n = 0; n <= 8; ++n) {
      std::array<unsigned char, 8> bytes{};
      std::fill_n(bytes.begin(), n, 0xFF);
      std::memcpy(&out[n], bytes.data(), 8);
    }
    return out;
  }();
  return masks;
}

// Up to eight bytes from s (left of them readable), zero past the end.
uint64_t Load(const char* s, size_t left) {
  uint64_t value = 0;
  if (left >= 8) {
    std::memcpy(&value, s, 8);
  } else {
    std::memcpy(&value, s, left);
  }
  return value;
}

size_t Log2Ceil(size_t n) {
  size_t bits = 0;
  while ((size_t{1} << bits) < n) ++bits;
  return bits;
}

}  // namespace

std::pair<uint64_t, size_t> LiteralIndex::TermKey(absl::string_view text) {
  // Its first three characters if all are below U+10000, else its first
  // two (or fewer) if those are: code points. Else the first two's bytes.
  std::array<char32_t, 3> code_points{};
  std::array<size_t, 4> ends{};
  size_t chars = 0;
  for (; chars < 3 && ends[chars] < text.size(); ++chars) {
    ends[chars + 1] = ends[chars] + DecodeUtf8(text, ends[chars], &code_points[chars]);
  }
  size_t keyed = 0;
  while (keyed < chars && code_points[keyed] < 0x10000) ++keyed;
  if (keyed == 0 || (keyed == 1 && chars > 1)) {
    const size_t length = ends[std::min<size_t>(chars, 2)];
    return {Load(text.data(), text.size()) & PrefixMasks()[length], length};
  }
  uint64_t key = kCodePoints;
  for (size_t k = 0; k < keyed; ++k) key |= uint64_t{code_points[k]} << (32 - 16 * k);
  return {key, ends[keyed]};
}

void LiteralIndex::Build(const std::vector<Term>& terms) {
  const auto& masks = PrefixMasks();
  bytes_.clear();
  candidates_.clear();
  single_plain_ = single_runs_ = false;
  terms_ = terms.size();
  // (key, length, term): the terms of one key together, shortest first.
  std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> keyed;
  keyed.reserve(terms.size());
  std::vector<uint32_t> offsets;
  offsets.reserve(terms.size());
  std::vector<uint32_t> key_lengths;
  key_lengths.reserve(terms.size());
  size_t keys = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const absl::string_view text = terms[i].text;
    if (CharLength(text[0]) == text.size()) {
      (terms[i].needs_runs ? single_runs_ : single_plain_) = true;
    }
    const auto [key, key_length] = TermKey(text);
    keyed.emplace_back(key, static_cast<uint32_t>(text.size()), static_cast<uint32_t>(i));
    key_lengths.push_back(static_cast<uint32_t>(key_length));
    offsets.push_back(static_cast<uint32_t>(bytes_.size()));
    bytes_.append(text.data(), text.size());
  }
  std::sort(keyed.begin(), keyed.end());
  for (size_t i = 0; i < keyed.size(); ++i) {
    if (i == 0 || std::get<0>(keyed[i]) != std::get<0>(keyed[i - 1])) ++keys;
  }
  const size_t slot_bits = std::max<size_t>(4, Log2Ceil(keys * 2));
  slots_.assign(size_t{1} << slot_bits, Slot{});
  slot_mask_ = slots_.size() - 1;
  slot_shift_ = static_cast<int>(64 - slot_bits);
  // Sixteen filter bits a key: about one character in sixteen that starts
  // no term gets past the filter.
  const size_t filter_bits = std::max<size_t>(12, Log2Ceil(keys * 16));
  filter_.assign((size_t{1} << filter_bits) / 64, 0);
  filter_shift_ = static_cast<int>(64 - filter_bits);
  for (size_t i = 0; i < keyed.size();) {
    const uint64_t key = std::get<0>(keyed[i]);
    const size_t key_length = key_lengths[std::get<2>(keyed[i])];
    Slot slot;
    slot.key = key;
    for (; i < keyed.size() && std::get<0>(keyed[i]) == key; ++i) {
      const auto [k, length, term] = keyed[i];
      const uint32_t id = term | (terms[term].needs_runs ? kNeedsRuns : 0);
      if (length == key_length && slot.exact == kNone) {
        slot.exact = id;
        continue;
      }
      if (slot.more == kNone) slot.more = static_cast<uint32_t>(candidates_.size());
      const size_t tail_length = length - key_length;
      candidates_.push_back(
          Candidate{id, length, offsets[term], 0,
                    Load(bytes_.data() + offsets[term] + key_length, tail_length) &
                        masks[std::min<size_t>(tail_length, 8)]});
    }
    if (slot.more != kNone) candidates_.back().length |= kLast;
    size_t at = SlotOf(key);
    while (slots_[at].key != 0) at = (at + 1) & slot_mask_;
    slots_[at] = slot;
    const uint64_t bit = Hash(key) >> filter_shift_;
    filter_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
}

void LiteralIndex::AppendTo(FlatWriter& out) const {
  out.Number(terms_);
  out.Number((single_plain_ ? 1U : 0U) | (single_runs_ ? 2U : 0U));
  out.Bytes(bytes_);
  out.Array(candidates_);
  out.Array(slots_);
  out.Array(filter_);
}

bool LiteralIndex::ReadFrom(FlatReader& in) {
  uint64_t singles = 0;
  const bool read = in.Number(&terms_) && in.Number(&singles) && in.Bytes(&bytes_) &&
                    in.Array(&candidates_) && in.Array(&slots_) && in.Array(&filter_);
  // The shapes Build gives: power-of-two tables, every reference inside
  // what was read, every candidate list ending. (The bytes carry a digest;
  // this keeps bytes that pass it but were never an index from being
  // searched out of bounds.)
  auto power_of_two = [](size_t n) { return n != 0 && (n & (n - 1)) == 0; };
  bool ok = read && singles <= 3 && power_of_two(slots_.size()) && slots_.size() >= 16 &&
            power_of_two(filter_.size()) && filter_.size() >= 64 &&
            (candidates_.empty() || (candidates_.back().length & kLast) != 0);
  for (size_t i = 0; ok && i < candidates_.size(); ++i) {
    const Candidate& c = candidates_[i];
    const uint32_t length = c.length & ~kLast;
    ok = (c.term & ~kNeedsRuns) < terms_ && c.offset <= bytes_.size() &&
         length <= bytes_.size() - c.offset && length > 0;
  }
  // Every candidate is under its own key (so at least as long as the key
  // Resolve compares its tail after), in lists that do not overlap.
  size_t walked = 0;
  for (size_t i = 0; ok && i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    ok = (slot.exact == kNone || (slot.exact & ~kNeedsRuns) < terms_) &&
         (slot.more == kNone || slot.more < candidates_.size());
    for (size_t c = slot.more; ok && slot.more != kNone; ++c) {
      const Candidate& candidate = candidates_[c];
      ok = ++walked <= candidates_.size() &&
           TermKey(absl::string_view(bytes_).substr(candidate.offset, candidate.length & ~kLast))
                   .first == slot.key;
      if ((candidate.length & kLast) != 0) break;
      ok = ok && c + 1 < candidates_.size();
    }
  }
  if (!ok) {
    *this = LiteralIndex();
    return false;
  }
  single_plain_ = (singles & 1U) != 0;
  single_runs_ = (singles & 2U) != 0;
  slot_mask_ = slots_.size() - 1;
  slot_shift_ = 64 - __builtin_ctzll(slots_.size());
  filter_shift_ = 64 - __builtin_ctzll(filter_.size() * 64);
  return true;
}

void LiteralIndex::Resolve(absl::string_view text, bool with_runs, const Probe* probes,
                           size_t count, std::vector<TextMatch>* out) const {
  const auto& masks = PrefixMasks();
  const char* s = text.data();
  const size_t n = text.size();
  // Every slot is asked for before the first is read, so that their cache
  // misses overlap. A term that is its key matches on the key alone; the
  // others' candidates are asked for in turn.
  for (size_t p = 0; p < count; ++p) __builtin_prefetch(&slots_[SlotOf(probes[p].key)]);
  struct Pending {
    uint32_t candidate;
    uint32_t probe;
  };
  Pending pending[kProbeBatch];  // NOLINT(cppcoreguidelines-avoid-c-arrays): not zeroed per call
  size_t pending_count = 0;
  for (size_t p = 0; p < count; ++p) {
    const Probe& probe = probes[p];
    size_t at = SlotOf(probe.key);
    while (slots_[at].key != probe.key && slots_[at].key != 0) at = (at + 1) & slot_mask_;
    const Slot& slot = slots_[at];
    if (slot.key == 0) continue;
    if (slot.exact != kNone && (with_runs || (slot.exact & kNeedsRuns) == 0)) {
      out->push_back(TextMatch{slot.exact & ~kNeedsRuns, probe.at, probe.at + probe.key_length});
    }
    if (slot.more != kNone) {
      __builtin_prefetch(&candidates_[slot.more]);
      pending[pending_count++] = Pending{slot.more, static_cast<uint32_t>(p)};
    }
  }
  for (size_t k = 0; k < pending_count; ++k) {
    const Probe& probe = probes[pending[k].probe];
    const size_t after_key = probe.at + probe.key_length;
    const uint64_t text_tail = Load(s + after_key, n - after_key);
    for (uint32_t c = pending[k].candidate;; ++c) {
      const Candidate& candidate = candidates_[c];
      const uint32_t length = candidate.length & ~kLast;
      if (length > n - probe.at) break;  // the rest are longer still
      const size_t tail_length = length - probe.key_length;
      if ((with_runs || (candidate.term & kNeedsRuns) == 0) &&
          (text_tail & masks[std::min<size_t>(tail_length, 8)]) == candidate.tail &&
          (tail_length <= 8 ||
           std::memcmp(s + after_key + 8, bytes_.data() + candidate.offset + probe.key_length + 8,
                       tail_length - 8) == 0)) {
        out->push_back(TextMatch{candidate.term & ~kNeedsRuns, probe.at, probe.at + length});
      }
      if ((candidate.length & kLast) != 0) break;
    }
  }
}

void LiteralIndex::Find(absl::string_view text, absl::Span<const uint32_t> starts,
                        absl::Span<const uint16_t> units, bool with_runs,
                        std::vector<TextMatch>* out) const {
  if (terms_ == 0 || starts.size() < 3) return;
  const auto& masks = PrefixMasks();
  const char* s = text.data();
  const size_t n = text.size();
  const bool singles = single_plain_ || (with_runs && single_runs_);
  std::array<Probe, kProbeBatch> probes;
  size_t count = 0;
  // Without a branch on the filter, which passes too irregularly to be
  // predicted: every key is written, and kept if the filter has it.
  auto probe = [&](uint64_t key, uint32_t at, uint32_t key_length) {
    probes[count] = Probe{key, at, key_length};
    count += MayHave(key) ? 1 : 0;
  };
  auto bytes_key = [&](uint32_t at, uint32_t length) {
    return Load(s + at, n - at) & masks[length];
  };
  // With the starts given, no step waits for the length of the character
  // before it. A unit of 0 is a character at or above U+10000.
  const size_t chars = starts.size() - 2;
  for (size_t c = 0; c < chars; ++c) {
    const uint32_t at = starts[c];
    const uint64_t first = uint64_t{units[c]} << 32;
    const uint64_t second = uint64_t{units[c + 1]} << 16;
    if (singles) {
      const uint32_t length = starts[c + 1] - at;
      probe(first != 0 ? kCodePoints | first : bytes_key(at, length), at, length);
    }
    if (c + 1 < chars) {
      const uint32_t length = starts[c + 2] - at;
      probe(first != 0 && second != 0 ? kCodePoints | first | second : bytes_key(at, length), at,
            length);
      const uint64_t third = units[c + 2];
      if (c + 2 < chars && first != 0 && second != 0 && third != 0) {
        probe(kCodePoints | first | second | third, at, starts[c + 3] - at);
      }
    }
    if (count + 3 > kProbeBatch) {
      Resolve(text, with_runs, probes.data(), count, out);
      count = 0;
    }
  }
  Resolve(text, with_runs, probes.data(), count, out);
}

}  // namespace qunzu::moderation
