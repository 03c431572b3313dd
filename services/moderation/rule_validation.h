// Input checks of the content-screen RPCs, before anything is read or
// written: every string valid UTF-8 within its bound, every enum known,
// every regex vetted (DESIGN §4 "Bad input").
#ifndef QUNZU_SERVICES_MODERATION_RULE_VALIDATION_H_
#define QUNZU_SERVICES_MODERATION_RULE_VALIDATION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// Most characters of a screened text, and most rules in one upsert.
inline constexpr size_t kMaxScreenChars = 10000;
inline constexpr int kMaxRulesPerCall = 50000;

// INVALID_FIELD naming `field` unless text is valid UTF-8 of 1..max_chars
// code points.
absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t max_chars,
                          bool required = true);

// INVALID_FIELD page.page_size unless 0..1000.
absl::Status ValidatePage(const qunzu::common::v1::PageRequest& page);

absl::Status ValidateUpsertRuleSet(const v1::UpsertRuleSetRequest& request);
absl::Status ValidateListRuleSets(const v1::ListRuleSetsRequest& request);
absl::Status ValidateTestRules(const v1::TestRulesRequest& request);
absl::Status ValidateScreenText(const v1::ScreenTextRequest& request);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_RULE_VALIDATION_H_
