#include "services/identity/validators.h"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

absl::Status Invalid(absl::string_view reason, absl::string_view field, absl::string_view problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason, absl::StrCat(field, ": ", problem),
                   {{"field", std::string(field)}});
}

// Decodes strict UTF-8 (no overlongs, no surrogates); nullopt when invalid.
std::optional<std::vector<char32_t>> DecodeUtf8(absl::string_view text) {
  std::vector<char32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > text.size()) return std::nullopt;
    char32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c >> 6) != 0x2) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::array<char32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr char32_t kMiddleDot = 0x00B7;

bool IsHan(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2FA1F) || (c >= 0xF900 && c <= 0xFAFF);
}

bool IsLatinLetter(char32_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7);
}

bool IsLatinSeparator(char32_t c) { return c == ' ' || c == '-' || c == '\'' || c == '.'; }

// Letters from `is_letter`, separators from `is_separator` only between letters, never doubled.
template <typename Letter, typename Separator>
bool WellFormed(const std::vector<char32_t>& cps, Letter is_letter, Separator is_separator) {
  bool previous_separator = true;  // no separator first
  for (char32_t c : cps) {
    if (is_letter(c)) {
      previous_separator = false;
    } else if (is_separator(c) && !previous_separator) {
      previous_separator = true;
    } else {
      return false;
    }
  }
  return !previous_separator;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

int Digits(absl::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

constexpr std::array<absl::string_view, 30> kCompoundSurnames = {
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里",
    "呼延", "澹台", "公冶", "太史", "申屠", "闻人", "赫连", "万俟", "钟离", "单于"};

}  // namespace

char ResidentIdCheckCharacter(absl::string_view first17) {
  static constexpr std::array<int, 17> kWeights = {7, 9, 10, 5,  8, 4, 2, 1, 6,
                                                   3, 7, 9,  10, 5, 8, 4, 2};
  int sum = 0;
  for (size_t i = 0; i < kWeights.size() && i < first17.size(); ++i) {
    sum += (first17[i] - '0') * kWeights[i];
  }
  return "10X98765432"[sum % 11];
}

bool IsKnownProvinceCode(absl::string_view two_digits) {
  static constexpr std::array<int, 34> kCodes = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34,
                                                 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
                                                 53, 54, 61, 62, 63, 64, 65, 71, 81, 82};
  if (two_digits.size() != 2 || !absl::ascii_isdigit(static_cast<unsigned char>(two_digits[0])) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(two_digits[1]))) {
    return false;
  }
  const int code = Digits(two_digits);
  for (int known : kCodes) {
    if (known == code) return true;
  }
  return false;
}

absl::StatusOr<std::string> ValidateResidentId(absl::string_view id, absl::Time today,
                                               absl::string_view field) {
  if (id.size() != 18) {
    return Invalid("INVALID_FIELD", field, "must be 18 half-width characters");
  }
  std::string normal(id);
  if (normal[17] == 'x') normal[17] = 'X';
  for (size_t i = 0; i < 17; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(normal[i]))) {
      return Invalid("INVALID_FIELD", field, "the first 17 characters must be ASCII digits");
    }
  }
  if (!absl::ascii_isdigit(static_cast<unsigned char>(normal[17])) && normal[17] != 'X') {
    return Invalid("INVALID_FIELD", field, "the last character must be a digit or X");
  }
  if (!IsKnownProvinceCode(absl::string_view(normal).substr(0, 2))) {
    return Invalid("ID_REGION_UNKNOWN", field, "the region code is not assigned");
  }
  const int year = Digits(absl::string_view(normal).substr(6, 4));
  const int month = Digits(absl::string_view(normal).substr(10, 2));
  const int day = Digits(absl::string_view(normal).substr(12, 2));
  const absl::CivilDay now = absl::ToCivilDay(today, absl::UTCTimeZone());
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) ||
      absl::CivilDay(year, month, day) > now) {
    return Invalid("ID_BIRTH_DATE_INVALID", field, "the birth date is not a past calendar date");
  }
  if (ResidentIdCheckCharacter(absl::string_view(normal).substr(0, 17)) != normal[17]) {
    return Invalid("ID_NUMBER_CHECK_FAILED", field, "the check character does not match");
  }
  return normal;
}

absl::StatusOr<std::string> ValidateLegalName(absl::string_view name, absl::string_view field) {
  std::optional<std::vector<char32_t>> cps = DecodeUtf8(name);
  if (!cps) return Invalid("LEGAL_NAME_INVALID", field, "is not valid UTF-8");
  if (cps->size() < 2 || cps->size() > 64) {
    return Invalid("LEGAL_NAME_INVALID", field, "must be 2-64 characters");
  }
  const bool chinese = WellFormed(*cps, IsHan, [](char32_t c) { return c == kMiddleDot; });
  const bool latin = !chinese && WellFormed(*cps, IsLatinLetter, IsLatinSeparator);
  if (!chinese && !latin) {
    return Invalid("LEGAL_NAME_INVALID", field,
                   "must be Chinese (parts joined by ·) or Latin letters, not mixed");
  }
  return std::string(name);
}

absl::StatusOr<std::string> ValidatePhone(absl::string_view phone, absl::string_view field) {
  bool ok = phone.size() == 11 && phone[0] == '1' && phone[1] >= '3' && phone[1] <= '9';
  for (size_t i = 0; ok && i < phone.size(); ++i) {
    ok = absl::ascii_isdigit(static_cast<unsigned char>(phone[i]));
  }
  if (!ok)
    return Invalid("PHONE_INVALID", field, "must be a mainland mobile number 1[3-9]+9 digits");
  return std::string(phone);
}

absl::Status ValidateText(absl::string_view value, absl::string_view field, size_t min, size_t max,
                          bool multiline) {
  std::optional<std::vector<char32_t>> cps = DecodeUtf8(value);
  if (!cps) return Invalid("INVALID_FIELD", field, "is not valid UTF-8");
  for (char32_t c : *cps) {
    if (multiline && (c == '\n' || c == '\r' || c == '\t')) continue;
    if (c < 0x20 || (c >= 0x7F && c < 0xA0)) {
      return Invalid("INVALID_FIELD", field, "holds a control character");
    }
  }
  if (cps->size() < min || cps->size() > max) {
    return Invalid("INVALID_FIELD", field, absl::StrCat("must be ", min, "-", max, " characters"));
  }
  return absl::OkStatus();
}

std::string MaskLegalName(absl::string_view name) {
  std::optional<std::vector<char32_t>> cps = DecodeUtf8(name);
  if (!cps || cps->empty()) return "*";
  size_t keep = 1;
  for (absl::string_view surname : kCompoundSurnames) {
    if (cps->size() > 2 && absl::StartsWith(name, surname)) keep = 2;
  }
  std::string out;
  for (size_t i = 0; i < cps->size(); ++i) {
    const char32_t c = (*cps)[i];
    const bool separator = c == kMiddleDot || IsLatinSeparator(c);
    AppendUtf8(i < keep || separator ? c : U'*', out);
  }
  return out;
}

std::string MaskResidentId(absl::string_view id) {
  if (id.size() < 8) return std::string(id.size(), '*');
  return absl::StrCat(id.substr(0, 3), std::string(id.size() - 7, '*'), id.substr(id.size() - 4));
}

std::string MaskPhone(absl::string_view phone) { return MaskResidentId(phone); }

}  // namespace qunzu::identity
