#include "services/groups/group_code.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>

namespace qunzu::groups {
namespace {

// 31 characters: digits and capitals without 0, 1, I, L, O.
constexpr absl::string_view kAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
constexpr int kBase = 31;

int IndexOf(char c) {
  size_t at = kAlphabet.find(c);
  return at == absl::string_view::npos ? -1 : static_cast<int>(at);
}

// Weighted sum with weights 1..n (distinct mod 31, a prime), so one wrong
// character and one adjacent swap both change the sum.
char CheckCharacter(absl::string_view body) {
  int sum = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    sum = (sum + static_cast<int>(i + 1) * IndexOf(body[i])) % kBase;
  }
  return kAlphabet[static_cast<size_t>((kBase - sum) % kBase)];
}

}  // namespace

std::string NewGroupCode() {
  std::string body;
  while (body.size() < kGroupCodeLength - 1) {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) continue;
    for (unsigned char b : bytes) {
      // 248 = 8 * 31: reject above it so every character is equally likely.
      if (b < 248 && body.size() < kGroupCodeLength - 1) body.push_back(kAlphabet[b % kBase]);
    }
  }
  return body + CheckCharacter(body);
}

bool IsValidGroupCode(absl::string_view code) {
  if (code.size() != kGroupCodeLength) return false;
  for (char c : code) {
    if (IndexOf(c) < 0) return false;
  }
  absl::string_view body = code.substr(0, kGroupCodeLength - 1);
  return CheckCharacter(body) == code.back();
}

}  // namespace qunzu::groups
