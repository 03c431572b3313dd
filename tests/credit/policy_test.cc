// The credit policy file: the shipped default loads with DESIGN §5's
// numbers, and each kind of bad policy is refused naming file and field.
#include "services/credit/policy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/status.h"
#include "services/credit/credit_service.h"
#include "tests/test_support.h"

namespace qunzu::credit {
namespace {

v1::CreditPolicy DefaultPolicy() {
  auto policy = LoadCreditPolicy(DefaultPolicyFile());
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : v1::CreditPolicy();
}

std::string WriteFile(const std::string& text) {
  std::string path = "/tmp/" + testing::UniqueName("credit_policy") + ".textproto";
  std::ofstream(path) << text;
  return path;
}

TEST(CreditPolicy, DefaultFileHasDesignDefaults) {
  auto policy = Policy::Create(DefaultPolicy(), "default");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(*policy->DeltaOf(v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED), 600);
  EXPECT_EQ(policy->MaxLevel(), 4u);
  EXPECT_EQ(policy->LevelOf(0), 0u);
  EXPECT_EQ(policy->LevelOf(399), 0u);
  EXPECT_EQ(policy->LevelOf(400), 1u);
  EXPECT_EQ(policy->LevelOf(849), 3u);
  EXPECT_EQ(policy->LevelOf(850), 4u);
  const uint32_t create[] = {0, 2, 10, 50, 200};
  const uint32_t join[] = {20, 100, 500, 1000, 2000};
  for (uint32_t level = 0; level <= 4; ++level) {
    EXPECT_EQ(policy->EntitlementsOf(level).groups_may_create(), create[level]);
    EXPECT_EQ(policy->EntitlementsOf(level).groups_may_join(), join[level]);
  }
  EXPECT_FALSE(policy->EntitlementsOf(0).may_be_admin());
  EXPECT_EQ(policy->EntitlementsOf(4).max_create_tier(), common::v1::SCALE_TIER_HUGE);
}

void ExpectRefused(const v1::CreditPolicy& policy, const std::string& field) {
  absl::Status status = ValidateCreditPolicy(policy, "credit.textproto");
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "CREDIT_POLICY_INVALID");
  EXPECT_EQ(ErrorMetadata(status, "field"), field);
  EXPECT_NE(status.message().find("credit.textproto: " + field), absl::string_view::npos)
      << status.message();
}

TEST(CreditPolicy, OverlappingThresholdsAreRefused) {
  v1::CreditPolicy policy = DefaultPolicy();
  policy.mutable_level_rules(3)->set_min_score(550);  // same as level 2
  ExpectRefused(policy, "level_rules[3].min_score");
  policy = DefaultPolicy();
  policy.mutable_level_rules(2)->set_min_score(300);  // below level 1
  ExpectRefused(policy, "level_rules[2].min_score");
}

TEST(CreditPolicy, UnknownOrMissingEventTypesAreRefused) {
  v1::CreditPolicy policy = DefaultPolicy();
  policy.mutable_event_rules(2)->set_event_type(static_cast<v1::CreditEventType>(99));
  ExpectRefused(policy, "event_rules[2].event_type");
  policy = DefaultPolicy();
  policy.mutable_event_rules(2)->set_event_type(v1::CREDIT_EVENT_TYPE_REVERSAL);
  ExpectRefused(policy, "event_rules[2].event_type");
  policy = DefaultPolicy();
  policy.mutable_event_rules()->RemoveLast();
  ExpectRefused(policy, "event_rules");

  const std::string path =
      WriteFile("version: \"x\"\nevent_rules { event_type: CREDIT_EVENT_TYPE_NO_SUCH delta: 1 }\n");
  auto loaded = LoadCreditPolicy(path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find(path + ":2:"), absl::string_view::npos)
      << loaded.status();
}

TEST(CreditPolicy, NegativeCapsAreRefused) {
  const std::string path = WriteFile(
      "version: \"x\"\nlevel_rules { level: 0 entitlements { groups_may_create: -1 } }\n");
  auto loaded = LoadCreditPolicy(path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find(path + ":2:"), absl::string_view::npos)
      << loaded.status();

  v1::CreditPolicy policy = DefaultPolicy();
  policy.mutable_penalty_rule()->mutable_max_duration()->set_seconds(-5);
  ExpectRefused(policy, "penalty_rule.max_duration");
  policy = DefaultPolicy();
  policy.mutable_penalty_rule()->set_max_levels(0);
  ExpectRefused(policy, "penalty_rule.max_levels");
  policy = DefaultPolicy();
  policy.mutable_event_rules(0)->set_delta(-600);  // IDENTITY_VERIFIED
  ExpectRefused(policy, "event_rules[0].delta");
}

TEST(CreditPolicy, HigherLevelsMayNotGrantLess) {
  v1::CreditPolicy policy = DefaultPolicy();
  policy.mutable_level_rules(3)->mutable_entitlements()->set_groups_may_join(10);
  ExpectRefused(policy, "level_rules[3].entitlements.groups_may_join");
  policy = DefaultPolicy();
  policy.mutable_level_rules(1)->set_level(5);
  ExpectRefused(policy, "level_rules[1].level");
}

}  // namespace
}  // namespace qunzu::credit
