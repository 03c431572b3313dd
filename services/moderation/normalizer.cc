#include "services/moderation/normalizer.h"

#include <opencc.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "common/digest.h"
#include "common/status.h"
#include "services/moderation/utf8.h"

namespace qunzu::moderation {
namespace {

constexpr uint32_t kCountShift = 24;
constexpr uint32_t kPayloadMask = (1U << kCountShift) - 1;
constexpr int kFastLengthShift = 32;
constexpr int kFastFlagsShift = 40;
constexpr int kFastUnitShift = 48;
// Room kept past the written end of the normalised text (one character).
constexpr size_t kUtf8Slack = 4;

// Styles of digits and letters that NFKC leaves alone.
std::u32string PreMap(char32_t cp) {
  auto number = [](int n) {
    std::u32string out;
    if (n >= 10) out.push_back(U'0' + static_cast<char32_t>(n / 10));
    out.push_back(U'0' + static_cast<char32_t>(n % 10));
    return out;
  };
  if (cp >= 0x2776 && cp <= 0x277F) return number(static_cast<int>(cp - 0x2776) + 1);   // ❶..❿
  if (cp >= 0x2780 && cp <= 0x2789) return number(static_cast<int>(cp - 0x2780) + 1);   // ➀..➉
  if (cp >= 0x278A && cp <= 0x2793) return number(static_cast<int>(cp - 0x278A) + 1);   // ➊..➓
  if (cp >= 0x24EB && cp <= 0x24F4) return number(static_cast<int>(cp - 0x24EB) + 11);  // ⓫..⓴
  if (cp >= 0x24F5 && cp <= 0x24FE) return number(static_cast<int>(cp - 0x24F5) + 1);   // ⓵..⓾
  if (cp == 0x24FF || cp == 0x24EA) return U"0";                                        // ⓿ ⓪
  if (cp >= 0x1F150 && cp <= 0x1F169) return {U'a' + (cp - 0x1F150)};  // 🅐..🅩
  if (cp >= 0x1F170 && cp <= 0x1F189) return {U'a' + (cp - 0x1F170)};  // 🅰..🆉
  if (cp >= 0x1F1E6 && cp <= 0x1F1FF) return {U'a' + (cp - 0x1F1E6)};  // 🇦..🇿
  if (cp >= 0x1F130 && cp <= 0x1F149) return {U'a' + (cp - 0x1F130)};  // 🄰..🅉
  return {};
}

// Financial numerals and look-alike letters, applied after case folding.
char32_t PostMap(char32_t cp) {
  static const auto* const kMap = new absl::flat_hash_map<char32_t, char32_t>{
      // Financial numerals (simplified forms; traditional ones were folded first).
      {U'壹', U'一'},
      {U'贰', U'二'},
      {U'叁', U'三'},
      {U'肆', U'四'},
      {U'伍', U'五'},
      {U'陆', U'六'},
      {U'柒', U'七'},
      {U'捌', U'八'},
      {U'玖', U'九'},
      {U'拾', U'十'},
      {U'佰', U'百'},
      {U'仟', U'千'},
      {U'〇', U'零'},
      // Cyrillic look-alikes.
      {U'а', U'a'},
      {U'в', U'b'},
      {U'е', U'e'},
      {U'к', U'k'},
      {U'м', U'm'},
      {U'н', U'h'},
      {U'о', U'o'},
      {U'р', U'p'},
      {U'с', U'c'},
      {U'т', U't'},
      {U'у', U'y'},
      {U'х', U'x'},
      {U'і', U'i'},
      {U'ј', U'j'},
      {U'ѕ', U's'},
      {U'ԁ', U'd'},
      {U'ԛ', U'q'},
      {U'ԝ', U'w'},
      {U'һ', U'h'},
      {U'ӏ', U'l'},
      {U'ё', U'e'},
      {U'ї', U'i'},
      // Greek look-alikes.
      {U'α', U'a'},
      {U'β', U'b'},
      {U'ε', U'e'},
      {U'η', U'n'},
      {U'ι', U'i'},
      {U'κ', U'k'},
      {U'ν', U'v'},
      {U'ο', U'o'},
      {U'ρ', U'p'},
      {U'τ', U't'},
      {U'υ', U'u'},
      {U'χ', U'x'},
      {U'ω', U'w'},
      {U'ϲ', U'c'},
      {U'ϳ', U'j'},
      // Latin look-alikes NFKC keeps.
      {U'ı', U'i'},
      {U'ȷ', U'j'},
      {U'ł', U'l'},
      {U'ø', U'o'},
      {U'đ', U'd'},
      {U'ħ', U'h'},
  };
  auto it = kMap->find(cp);
  return it == kMap->end() ? cp : it->second;
}

bool IsNoise(char32_t cp) {
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      return true;
    default:
      return false;
  }
}

bool IsWordCodePoint(char32_t cp) {
  if (cp < 0x80) return (cp >= U'a' && cp <= U'z') || (cp >= U'0' && cp <= U'9');
  return cp < 0x530 && u_isalnum(static_cast<UChar32>(cp));
}

// Normalizer::fast_'s entry for a character that normalises to c.
uint64_t FastEntry(char32_t c) {
  std::string bytes;
  AppendUtf8(c, &bytes);
  const uint64_t length = bytes.size();
  bytes.resize(sizeof(uint32_t), '\0');
  uint32_t utf8 = 0;
  std::memcpy(&utf8, bytes.data(), sizeof(utf8));
  uint64_t flags = IsWordCodePoint(c) ? kWordChar : 0;
  if (c >= U'0' && c <= U'9') flags |= kDigit;
  const uint64_t unit = c < 0x10000 ? c : 0;  // NormalizedText::units()
  return utf8 | (length << kFastLengthShift) | (flags << kFastFlagsShift) |
         (unit << kFastUnitShift);
}

std::u32string ToU32(const icu::UnicodeString& s) {
  std::u32string out;
  for (int32_t i = 0; i < s.length();) {
    UChar32 c = s.char32At(i);
    out.push_back(static_cast<char32_t>(c));
    i += U16_LENGTH(c);
  }
  return out;
}

// OpenCC's traditional-to-simplified mapping of single characters, read
// once through one conversion of every CJK ideograph, each on its own line
// so no phrase rule spans two of them.
absl::flat_hash_map<char32_t, char32_t> LoadTraditionalToSimplified() {
  // opencc_open signals failure with (opencc_t)-1.
  auto failed = [](opencc_t handle) { return reinterpret_cast<intptr_t>(handle) == -1; };
  opencc_t cc = opencc_open("/usr/share/opencc/t2s.json");
  if (failed(cc)) cc = opencc_open("t2s.json");
  if (failed(cc)) {
    std::fprintf(stderr, "{\"level\":\"FATAL\",\"msg\":\"cannot open OpenCC t2s.json\"}\n");
    std::abort();
  }
  const std::pair<char32_t, char32_t> ranges[] = {
      {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xF900, 0xFAFF}, {0x20000, 0x2EBEF}, {0x2F800, 0x2FA1F}};
  std::string input;
  std::vector<char32_t> order;
  for (const auto& [lo, hi] : ranges) {
    for (char32_t cp = lo; cp <= hi; ++cp) {
      AppendUtf8(cp, &input);
      input.push_back('\n');
      order.push_back(cp);
    }
  }
  char* converted = opencc_convert_utf8(cc, input.data(), input.size());
  absl::flat_hash_map<char32_t, char32_t> map;
  if (converted != nullptr) {
    absl::string_view out(converted);
    size_t line = 0;
    size_t pos = 0;
    while (pos < out.size() && line < order.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == absl::string_view::npos) nl = out.size();
      absl::string_view one = out.substr(pos, nl - pos);
      char32_t cp = 0;
      size_t len = DecodeUtf8(one, 0, &cp);
      if (len != 0 && len == one.size() && cp != order[line]) map[order[line]] = cp;
      pos = nl + 1;
      ++line;
    }
    opencc_convert_utf8_free(converted);
  }
  opencc_close(cc);
  return map;
}

}  // namespace

const Normalizer& Normalizer::Get() {
  static const Normalizer* const kNormalizer = new Normalizer();
  return *kNormalizer;
}

Normalizer::Normalizer() { Build(); }

void Normalizer::Build() {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc_cf = icu::Normalizer2::getNFKCCasefoldInstance(err);
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
  if (U_FAILURE(err)) {
    std::fprintf(stderr, "{\"level\":\"FATAL\",\"msg\":\"ICU normalizers unavailable\"}\n");
    std::abort();
  }
  const absl::flat_hash_map<char32_t, char32_t> t2s = LoadTraditionalToSimplified();
  auto simplify = [&](char32_t c) {
    auto it = t2s.find(c);
    return it == t2s.end() ? c : it->second;
  };
  table_.assign(kNormalizerTableSize, 0);
  fast_.assign(kNormalizerTableSize, 0);
  for (char32_t cp = 0; cp < kNormalizerTableSize; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::u32string seq = PreMap(cp);
    if (seq.empty()) {
      err = U_ZERO_ERROR;
      icu::UnicodeString folded =
          nfkc_cf->normalize(icu::UnicodeString(static_cast<UChar32>(cp)), err);
      seq = U_SUCCESS(err) ? ToU32(folded) : std::u32string(1, cp);
    }
    std::u32string out;
    for (char32_t c : seq) {
      c = PostMap(simplify(c));
      if (c >= 0xC0 && c < 0x530) {  // strip accents from alphabetic letters
        err = U_ZERO_ERROR;
        std::u32string parts =
            ToU32(nfd->normalize(icu::UnicodeString(static_cast<UChar32>(c)), err));
        if (U_SUCCESS(err) && !parts.empty() && parts[0] < 0x530) c = PostMap(parts[0]);
      }
      if (!IsNoise(c)) out.push_back(c);
    }
    if (out.size() == 1) {
      table_[cp] = (1U << kCountShift) | static_cast<uint32_t>(out[0]);
      fast_[cp] = FastEntry(out[0]);
    } else if (!out.empty()) {
      table_[cp] =
          (static_cast<uint32_t>(out.size()) << kCountShift) | static_cast<uint32_t>(pool_.size());
      pool_.insert(pool_.end(), out.begin(), out.end());
    }
  }
  // What the tables say, not how they were made: the same on every replica
  // whose ICU and OpenCC data map every code point alike.
  std::string tables(reinterpret_cast<const char*>(table_.data()), table_.size() * 4);
  tables.append(reinterpret_cast<const char*>(pool_.data()), pool_.size() * 4);
  tables.append(reinterpret_cast<const char*>(fast_.data()), fast_.size() * 8);
  fingerprint_ = Sha256(tables);
}

std::u32string Normalizer::MapCodePoint(char32_t cp) const {
  if (cp >= kNormalizerTableSize) {
    if (cp >= 0xE0000 && cp <= 0xE0FFF) return {};
    return std::u32string(1, cp);
  }
  uint32_t entry = table_[cp];
  uint32_t count = entry >> kCountShift;
  if (count == 1) return std::u32string(1, static_cast<char32_t>(entry & kPayloadMask));
  const char32_t* start = pool_.data() + (entry & kPayloadMask);
  return std::u32string(start, start + count);
}

const std::vector<NormalizedChar>& NormalizedText::Chars() const {
  return CharsThrough(kAllMapped);
}

const std::vector<NormalizedChar>& NormalizedText::CharsThrough(size_t offset) const {
  if (mapped_before_ == kAllMapped || offset < mapped_before_) return chars_;
  // The same text normalised again cannot fail: NormalizeText accepted it.
  NormalizedText* self = const_cast<NormalizedText*>(this);
  (void)Normalizer::Get().Run<Normalizer::Pass::kMap>(source_, self, "text",
                                                      offset == kAllMapped ? offset : offset + 1);
  return chars_;
}

size_t NormalizedText::CharAt(size_t offset) const {
  const size_t n = char_count_;
  if (n < 2) return 0;
  const uint32_t* starts = starts_.data();
  // Guess from the average bytes per character (exact for text of one
  // script), walk a few steps, and search only when the guess is far off.
  size_t k = std::min(n - 1, offset * n / std::max<size_t>(1, starts[n]));
  for (int step = 0; step < 4; ++step) {
    if (starts[k] > offset) {
      --k;  // starts[0] is 0, so k > 0 here
    } else if (k + 1 < n && starts[k + 1] <= offset) {
      ++k;
    } else {
      return k;
    }
  }
  const uint32_t* after = std::upper_bound(starts, starts + n, offset);
  return after == starts ? 0 : static_cast<size_t>(after - starts) - 1;
}

absl::Status Normalizer::Normalize(absl::string_view text, NormalizedText* out,
                                   absl::string_view field) const {
  return Run<Pass::kTextAndMap>(text, out, field);
}

absl::Status Normalizer::NormalizeText(absl::string_view text, NormalizedText* out,
                                       absl::string_view field) const {
  return Run<Pass::kText>(text, out, field);
}

template <Normalizer::Pass kPass>
absl::Status Normalizer::Run(absl::string_view text, NormalizedText* out, absl::string_view field,
                             size_t map_before) const {
  constexpr bool kMap = kPass != Pass::kText;
  constexpr bool kText = kPass != Pass::kMap;
  std::vector<NormalizedChar>& chars = out->chars_;
  chars.clear();
  if (kMap) chars.reserve(std::min(text.size(), map_before));
  out->mapped_before_ = kMap ? map_before : 0;
  out->source_ = text;
  // Written through a pointer into a buffer with room for four bytes past
  // the end, so that a character is stored with one unaligned 4-byte write;
  // trimmed at the end. Characters that expand grow it first.
  std::string& dst = out->text;
  if (kText) dst.resize(text.size() + kUtf8Slack);
  char* base = dst.data();
  size_t capacity = dst.size();
  size_t w = 0;
  // Each character is at least a byte, so starts never outgrow the text's
  // capacity (plus the two ends).
  std::vector<uint32_t>& starts = out->starts_;
  std::vector<NormalizedText::Span>& spans = out->spans_;
  std::vector<uint16_t>& units = out->units_;
  if (kText && starts.size() < capacity + 2) {
    starts.resize(capacity + 2);
    spans.resize(capacity + 2);
    units.resize(capacity + 2);
  }
  uint32_t* start = starts.data();
  NormalizedText::Span* span = spans.data();
  uint16_t* unit = units.data();
  size_t written = 0;
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  uint32_t last = 0;  // the packed UTF-8 of the last character written; 0: none
  bool gap = false;
  bool repeats = false;
  bool done = false;  // kMap: every character before map_before is complete
  auto emit = [&](uint64_t entry, uint32_t begin, uint32_t end) ABSL_ATTRIBUTE_ALWAYS_INLINE {
    if (kPass == Pass::kMap && done) return;  // the rest of an expansion
    const auto utf8 = static_cast<uint32_t>(entry);
    if (utf8 == last) {
      repeats = true;
      if (kText) span[written - 1].end = end;
      if (kMap) {
        NormalizedChar& repeated = chars.back();
        if (repeated.run < 0xFFFF) ++repeated.run;
        repeated.end = end;
      }
      return;
    }
    if (kPass == Pass::kMap && w >= map_before) {
      done = true;
      return;
    }
    if (kText) {
      if (w + kUtf8Slack > capacity) {  // only when characters expand
        dst.resize(capacity * 2);
        base = dst.data();
        capacity = dst.size();
        starts.resize(capacity + 2);
        start = starts.data();
        spans.resize(capacity + 2);
        span = spans.data();
        units.resize(capacity + 2);
        unit = units.data();
      }
      std::memcpy(base + w, &utf8, sizeof(utf8));
      span[written] = NormalizedText::Span{begin, end};
      unit[written] = static_cast<uint16_t>(entry >> kFastUnitShift);
      start[written++] = static_cast<uint32_t>(w);
    }
    if (kMap) {
      const auto flags = static_cast<uint8_t>((entry >> kFastFlagsShift) | (gap ? kGapBefore : 0));
      // Field by field into place: a temporary built by narrow stores and
      // then copied with one 16-byte load stalls on store forwarding.
      NormalizedChar& c = chars.emplace_back();
      c.pos = static_cast<uint32_t>(w);
      c.begin = begin;
      c.end = end;
      c.flags = flags;
    }
    w += static_cast<uint8_t>(entry >> kFastLengthShift);
    last = utf8;
    gap = false;
  };
  for (size_t i = 0; i < text.size() && !done;) {
    char32_t cp = s[i];
    size_t len = 1;
    if (cp >= 0xE1 && cp <= 0xEF && cp != 0xED && i + 2 < text.size() &&
        (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
      // Most CJK: a lead byte that can neither be overlong (E0) nor start a
      // surrogate (ED) with two continuation bytes is always valid.
      cp = ((cp & 0x0F) << 12) | (static_cast<char32_t>(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      len = 3;
    } else if (cp >= 0x80) {
      len = DecodeUtf8(text, i, &cp);
      if (len == 0) return InvalidField(field, "is not valid UTF-8");
    }
    const auto begin = static_cast<uint32_t>(i);
    i += len;
    const auto end = static_cast<uint32_t>(i);
    if (cp < kNormalizerTableSize) {
      if (const uint64_t entry = fast_[cp]; entry != 0) {
        emit(entry, begin, end);
        continue;
      }
      const uint32_t entry = table_[cp];
      const uint32_t count = entry >> kCountShift;
      if (count == 0) {
        gap = true;
        continue;
      }
      const char32_t* mapped = pool_.data() + (entry & kPayloadMask);
      for (uint32_t k = 0; k < count; ++k) emit(FastEntry(mapped[k]), begin, end);
    } else if (cp >= 0xE0000 && cp <= 0xE0FFF) {
      gap = true;
    } else {
      emit(FastEntry(cp), begin, end);
    }
  }
  if (kText) {
    dst.resize(w);
    out->has_runs_ = repeats;
    start[written] = start[written + 1] = static_cast<uint32_t>(w);
    unit[written] = unit[written + 1] = 0;
    out->char_count_ = written;
  }
  if (kPass == Pass::kMap && !done) out->mapped_before_ = NormalizedText::kAllMapped;
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
