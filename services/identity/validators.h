// Format checks of the personal information identity accepts (R6.1): the
// resident ID number per GB 11643-1999, legal names, mainland mobile numbers,
// and the masks GetVerification shows (R6.3). Plain C++, no I/O: the birth
// date check takes "today" from the caller's clock.
#ifndef QUNZU_SERVICES_IDENTITY_VALIDATORS_H_
#define QUNZU_SERVICES_IDENTITY_VALIDATORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace qunzu::identity {

// The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') of the first 17
// digits of a resident ID number; `first17` must be 17 ASCII digits.
char ResidentIdCheckCharacter(absl::string_view first17);

// Whether a two-digit GB/T 2260 province code is assigned (11 Beijing ...
// 65 Xinjiang, 71 Taiwan, 81 Hong Kong, 82 Macao).
bool IsKnownProvinceCode(absl::string_view two_digits);

// Validates an 18-character resident ID number and returns it normalised
// (a trailing 'x' upper-cased). `field` names the request field in errors.
// INVALID_ARGUMENT with metadata `field` and reason: INVALID_FIELD (not 17
// half-width digits plus a digit or X), ID_REGION_UNKNOWN, ID_BIRTH_DATE_INVALID
// (not a calendar date, before 1900 or after `today`), ID_NUMBER_CHECK_FAILED
// (wrong check character).
absl::StatusOr<std::string> ValidateResidentId(absl::string_view id, absl::Time today,
                                               absl::string_view field);

// Validates a legal name: 2-64 characters, either Chinese ideographs with
// single middle dots (U+00B7) between parts, or Latin letters with single
// spaces, hyphens, apostrophes or dots between words. Returns it unchanged.
// INVALID_ARGUMENT LEGAL_NAME_INVALID with metadata `field`.
absl::StatusOr<std::string> ValidateLegalName(absl::string_view name, absl::string_view field);

// Validates a mainland mobile number: `1[3-9]` plus nine ASCII digits.
// INVALID_ARGUMENT PHONE_INVALID with metadata `field`.
absl::StatusOr<std::string> ValidatePhone(absl::string_view phone, absl::string_view field);

// INVALID_ARGUMENT (INVALID_FIELD naming `field`) unless `value` is valid
// UTF-8 without control characters (tab and line breaks allowed when
// `multiline`) and has min..max characters.
absl::Status ValidateText(absl::string_view value, absl::string_view field, size_t min, size_t max,
                          bool multiline = false);

// `王*`, `欧阳**` (common compound surnames kept whole), `J*** S****`: the
// family name (or first letter) kept, every other letter replaced by '*',
// separators kept. Expects a name ValidateLegalName accepted.
std::string MaskLegalName(absl::string_view name);

// `110***********1234`: first 3 and last 4 characters kept.
std::string MaskResidentId(absl::string_view id);

// `138****1234`: first 3 and last 4 digits kept.
std::string MaskPhone(absl::string_view phone);

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_VALIDATORS_H_
