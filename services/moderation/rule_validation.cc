#include "services/moderation/rule_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/matcher.h"
#include "services/moderation/normalizer.h"
#include "services/moderation/utf8.h"

namespace qunzu::moderation {
namespace {

constexpr size_t kMaxPatternChars = 256;
constexpr size_t kMaxNameChars = 128;
constexpr size_t kMaxDescriptionChars = 1000;
constexpr size_t kMaxNoteChars = 500;

absl::Status ValidateRule(const v1::Rule& rule, int index) {
  const std::string field = absl::StrCat("rules[", index, "]");
  if (!v1::RuleKind_IsValid(rule.kind()) || rule.kind() == v1::RULE_KIND_UNSPECIFIED) {
    return InvalidField(field + ".kind", "must be LITERAL or REGEX");
  }
  if (!v1::RuleAction_IsValid(rule.action()) || rule.action() == v1::RULE_ACTION_UNSPECIFIED) {
    return InvalidField(field + ".action", "must be BLOCK, HOLD or ALLOW");
  }
  if (rule.action() == v1::RULE_ACTION_ALLOW && rule.kind() != v1::RULE_KIND_LITERAL) {
    return InvalidField(field + ".action", "ALLOW applies to literal terms only");
  }
  if (!v1::ContentCategory_IsValid(rule.category()) ||
      (rule.action() != v1::RULE_ACTION_ALLOW &&
       rule.category() == v1::CONTENT_CATEGORY_UNSPECIFIED)) {
    return InvalidField(field + ".category", "is required for BLOCK and HOLD");
  }
  RETURN_IF_ERROR(ValidateText(field + ".pattern", rule.pattern(), kMaxPatternChars));
  RETURN_IF_ERROR(ValidateText(field + ".note", rule.note(), kMaxNoteChars, false));
  if (rule.kind() == v1::RULE_KIND_REGEX) {
    return CompiledRules::CheckRegex(rule.pattern(), static_cast<size_t>(index));
  }
  NormalizedText normalized;
  RETURN_IF_ERROR(Normalizer::Get().Normalize(rule.pattern(), &normalized, field + ".pattern"));
  if (normalized.text.empty()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "PATTERN_EMPTY",
                     absl::StrCat(field, ".pattern has nothing left after normalisation"),
                     {{"rule_index", absl::StrCat(index)}, {"field", field + ".pattern"}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePage(const qunzu::common::v1::PageRequest& page) {
  if (page.page_size() < 0 || page.page_size() > 1000) {
    return InvalidField("page.page_size", "must be 0..1000");
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view text, size_t max_chars,
                          bool required) {
  if (text.empty()) {
    return required ? InvalidField(field, "is required") : absl::OkStatus();
  }
  size_t chars = 0;
  for (size_t i = 0; i < text.size(); ++chars) {
    char32_t cp = 0;
    const size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0) return InvalidField(field, "is not valid UTF-8");
    i += len;
  }
  if (chars > max_chars) {
    return InvalidField(field, absl::StrCat("is longer than ", max_chars, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ValidateUpsertRuleSet(const v1::UpsertRuleSetRequest& request) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  RETURN_IF_ERROR(ValidateText("name", request.name(), kMaxNameChars, request.rule_set_id() == 0));
  RETURN_IF_ERROR(ValidateText("description", request.description(), kMaxDescriptionChars, false));
  if (!v1::RuleSetUpdateMode_IsValid(request.mode()) ||
      request.mode() == v1::RULE_SET_UPDATE_MODE_UNSPECIFIED) {
    return InvalidField("mode", "must be REPLACE or MERGE");
  }
  if (request.rule_set_id() == 0 && request.base_version() != 0) {
    return InvalidField("base_version", "must be 0 when creating a rule set");
  }
  if (request.mode() == v1::RULE_SET_UPDATE_MODE_REPLACE && request.remove_rule_ids_size() > 0) {
    return InvalidField("remove_rule_ids", "applies to MERGE only");
  }
  if (request.rules_size() > kMaxRulesPerCall) {
    return MakeError(absl::StatusCode::kResourceExhausted, "RULE_SET_TOO_LARGE",
                     absl::StrCat("at most ", kMaxRulesPerCall, " rules per call"));
  }
  for (int i = 0; i < request.rules_size(); ++i) {
    RETURN_IF_ERROR(ValidateRule(request.rules(i), i));
  }
  return absl::OkStatus();
}

absl::Status ValidateListRuleSets(const v1::ListRuleSetsRequest& request) {
  return ValidatePage(request.page());
}

absl::Status ValidateTestRules(const v1::TestRulesRequest& request) {
  return ValidateText("text", request.text(), kMaxScreenChars);
}

absl::Status ValidateScreenText(const v1::ScreenTextRequest& request) {
  if (!v1::TextPurpose_IsValid(request.purpose()) ||
      request.purpose() == v1::TEXT_PURPOSE_UNSPECIFIED) {
    return InvalidField("purpose", "must be a known TextPurpose");
  }
  return ValidateText("text", request.text(), kMaxScreenChars);
}

}  // namespace qunzu::moderation
