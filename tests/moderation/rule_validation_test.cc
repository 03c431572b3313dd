#include "services/moderation/rule_validation.h"

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"

namespace qunzu::moderation {
namespace {

v1::UpsertRuleSetRequest ValidCreate() {
  v1::UpsertRuleSetRequest request;
  request.set_request_id("r1");
  request.set_name("set");
  request.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
  v1::Rule* rule = request.add_rules();
  rule->set_kind(v1::RULE_KIND_LITERAL);
  rule->set_pattern("赌博");
  rule->set_category(v1::CONTENT_CATEGORY_GAMBLING);
  rule->set_action(v1::RULE_ACTION_BLOCK);
  return request;
}

std::string FieldOf(const absl::Status& status) { return ErrorMetadata(status, "field"); }

TEST(ModerationRuleValidationTest, AValidRequestPasses) {
  EXPECT_TRUE(ValidateUpsertRuleSet(ValidCreate()).ok());
}

TEST(ModerationRuleValidationTest, EachBadFieldIsNamed) {
  v1::UpsertRuleSetRequest r = ValidCreate();
  r.clear_request_id();
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "request_id");
  r = ValidCreate();
  r.clear_name();
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "name");
  r = ValidCreate();
  r.set_mode(v1::RULE_SET_UPDATE_MODE_UNSPECIFIED);
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "mode");
  r = ValidCreate();
  r.mutable_rules(0)->set_category(v1::CONTENT_CATEGORY_UNSPECIFIED);
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "rules[0].category");
  r = ValidCreate();
  r.mutable_rules(0)->set_pattern(std::string(257, 'a'));
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "rules[0].pattern");
  r = ValidCreate();
  r.mutable_rules(0)->set_kind(v1::RULE_KIND_REGEX);
  r.mutable_rules(0)->set_action(v1::RULE_ACTION_ALLOW);
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "rules[0].action");
  r = ValidCreate();
  r.mutable_rules(0)->set_pattern("！！ ");
  EXPECT_EQ(ErrorReason(ValidateUpsertRuleSet(r)), "PATTERN_EMPTY");
  r = ValidCreate();
  r.add_remove_rule_ids(1);
  EXPECT_EQ(FieldOf(ValidateUpsertRuleSet(r)), "remove_rule_ids");
}

TEST(ModerationRuleValidationTest, AllowNeedsNoCategory) {
  v1::UpsertRuleSetRequest r = ValidCreate();
  r.mutable_rules(0)->set_action(v1::RULE_ACTION_ALLOW);
  r.mutable_rules(0)->set_category(v1::CONTENT_CATEGORY_UNSPECIFIED);
  EXPECT_TRUE(ValidateUpsertRuleSet(r).ok());
}

TEST(ModerationRuleValidationTest, ScreenTextBounds) {
  v1::ScreenTextRequest r;
  EXPECT_EQ(FieldOf(ValidateScreenText(r)), "purpose");
  r.set_purpose(v1::TEXT_PURPOSE_GROUP_NAME);
  EXPECT_EQ(FieldOf(ValidateScreenText(r)), "text");  // empty
  r.set_text("\xe8\xb5");
  EXPECT_EQ(FieldOf(ValidateScreenText(r)), "text");  // truncated UTF-8
  std::string longest;
  for (size_t i = 0; i < kMaxScreenChars; ++i) longest += "赌";
  r.set_text(longest);
  EXPECT_TRUE(ValidateScreenText(r).ok());  // counted in characters, not bytes
  r.set_text(longest + "a");
  EXPECT_EQ(FieldOf(ValidateScreenText(r)), "text");
  v1::TestRulesRequest t;
  EXPECT_EQ(FieldOf(ValidateTestRules(t)), "text");
  v1::ListRuleSetsRequest l;
  l.mutable_page()->set_page_size(1001);
  EXPECT_EQ(FieldOf(ValidateListRuleSets(l)), "page.page_size");
}

}  // namespace
}  // namespace qunzu::moderation
