// Group codes (R8.4): random, non-sequential, fixed length (10 characters
// from a 31-letter alphabet without look-alikes), the last a check
// character (mod-31 weighted sum) that catches any single wrong character
// and any swap of two adjacent characters before it.
#ifndef QUNZU_SERVICES_GROUPS_GROUP_CODE_H_
#define QUNZU_SERVICES_GROUPS_GROUP_CODE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace qunzu::groups {

inline constexpr int kGroupCodeLength = 10;

// A fresh code from a cryptographic random source.
std::string NewGroupCode();

// Whether `code` has the length, the alphabet and a correct check character.
bool IsValidGroupCode(absl::string_view code);

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUP_CODE_H_
