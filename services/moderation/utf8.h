// Strict UTF-8 decoding and encoding for the content screen.
#ifndef QUNZU_SERVICES_MODERATION_UTF8_H_
#define QUNZU_SERVICES_MODERATION_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace qunzu::moderation {

// Decodes the code point starting at text[pos] into *cp and returns its
// length in bytes, or 0 when the bytes there are not valid UTF-8 (truncated,
// overlong, a surrogate, or above U+10FFFF).
inline size_t DecodeUtf8(absl::string_view text, size_t pos, char32_t* cp) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const unsigned char b0 = s[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  auto cont = [&](size_t k) { return k < left && (s[k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const char32_t c = (static_cast<char32_t>(b0 & 0x0F) << 12) |
                       (static_cast<char32_t>(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const char32_t c = (static_cast<char32_t>(b0 & 0x07) << 18) |
                       (static_cast<char32_t>(s[1] & 0x3F) << 12) |
                       (static_cast<char32_t>(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    if (c < 0x10000 || c > 0x10FFFF) return 0;
    *cp = c;
    return 4;
  }
  return 0;
}

// Appends the UTF-8 encoding of cp (a valid scalar value) to out.
inline void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_UTF8_H_
