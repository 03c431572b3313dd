// The groups policy: the shipped file holds DESIGN §5's defaults, and bad
// values are refused naming the field.
#include "services/groups/groups_policy.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "services/groups/groups_service.h"

namespace qunzu::groups {
namespace {

v1::GroupsPolicy Shipped() {
  auto proto = LoadGroupsPolicy(DefaultPolicyFile());
  EXPECT_TRUE(proto.ok()) << proto.status();
  return proto.ok() ? *proto : v1::GroupsPolicy();
}

TEST(GroupsPolicyTest, ShippedFileHoldsTheDesignDefaults) {
  auto policy = GroupsPolicy::Create(Shipped(), "shipped");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_SMALL).member_cap(), 100u);
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_MEDIUM).member_cap(), 500u);
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_LARGE).member_cap(), 2000u);
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_HUGE).member_cap(), 10000u);
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_MEDIUM).min_owner_credit_level(), 2u);
  EXPECT_TRUE(policy->Tier(common::v1::SCALE_TIER_LARGE).manual_review());
  EXPECT_EQ(policy->Tier(common::v1::SCALE_TIER_HUGE).min_owner_credit_level(), 4u);
  EXPECT_TRUE(policy->CategoryNeedsReview(common::v1::GROUP_CATEGORY_NEWS_PUBLIC_AFFAIRS));
  EXPECT_FALSE(policy->CategoryNeedsReview(common::v1::GROUP_CATEGORY_HOBBY));
  EXPECT_EQ(policy->proto().info_page_min_members(), 100u);
}

TEST(GroupsPolicyTest, BadValuesNameTheField) {
  v1::GroupsPolicy p = Shipped();
  p.mutable_tiers(2)->set_member_cap(50);
  auto bad = GroupsPolicy::Create(p, "f.textproto");
  EXPECT_EQ(ErrorReason(bad.status()), "INVALID_POLICY");
  EXPECT_EQ(ErrorMetadata(bad.status(), "field"), "tiers[2].member_cap");

  p = Shipped();
  p.mutable_tiers()->RemoveLast();
  EXPECT_EQ(ErrorMetadata(GroupsPolicy::Create(p, "f").status(), "field"), "tiers");
  p = Shipped();
  p.set_info_page_min_members(0);
  EXPECT_EQ(ErrorMetadata(GroupsPolicy::Create(p, "f").status(), "field"), "info_page_min_members");
  p = Shipped();
  p.set_activity_high_messages(1);
  EXPECT_FALSE(GroupsPolicy::Create(p, "f").ok());
  EXPECT_FALSE(LoadGroupsPolicy("/nonexistent/groups.textproto").ok());
}

}  // namespace
}  // namespace qunzu::groups
