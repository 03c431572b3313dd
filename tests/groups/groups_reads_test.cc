// The account's groups with cap counts, join request lists, the management
// tier with activity from the hot path's counters, the filing document and
// the info page threshold.
#include <cppconn/resultset.h>

#include "tests/groups/groups_fixture.h"

namespace qunzu::groups {
namespace {

using GroupsReadsTest = GroupsFixture;

TEST_F(GroupsReadsTest, GroupsOfAccountWithCapsAndPages) {
  const uint64_t owner = Account(true, 2, 10, 100, 2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create(owner).ok());
  v1::ListGroupsOfAccountRequest q;
  q.set_account_id(owner);
  q.set_actor_account_id(Account());
  EXPECT_EQ(ErrorReason(logic_->ListGroupsOfAccount(Platform("L"), q).status()), "NOT_OWN_ACCOUNT");
  q.set_actor_account_id(owner);
  q.mutable_page()->set_page_size(2);
  auto first = logic_->ListGroupsOfAccount(Platform("L"), q);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->memberships_size(), 2);
  EXPECT_EQ(first->created_count(), 3u);
  EXPECT_EQ(first->created_cap(), 10u);
  EXPECT_EQ(first->joined_cap(), 100u);
  ASSERT_FALSE(first->page().next_page_token().empty());
  q.mutable_page()->set_page_token(first->page().next_page_token());
  auto second = logic_->ListGroupsOfAccount(Platform("L"), q);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->memberships_size(), 1);
  EXPECT_TRUE(second->page().next_page_token().empty());
  EXPECT_EQ(second->memberships(0).role(), v1::MEMBER_ROLE_OWNER);
}

TEST_F(GroupsReadsTest, JoinRequestsForAdminsAndApplicants) {
  const uint64_t owner = Account();
  auto g = Create(owner, common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_APPROVAL);
  ASSERT_TRUE(g.ok());
  const uint64_t applicant = Account();
  ASSERT_TRUE(Join(applicant, g->group().group_id()).ok());
  v1::ListJoinRequestsRequest q;
  q.set_group_id(g->group().group_id());
  q.set_actor_account_id(applicant);
  EXPECT_EQ(ErrorReason(logic_->ListJoinRequests(Platform("L"), q).status()), "NOT_GROUP_ADMIN");
  q.set_actor_account_id(owner);
  auto listed = logic_->ListJoinRequests(Platform("L"), q);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->join_requests_size(), 1);
  EXPECT_EQ(listed->join_requests(0).applicant_account_id(), applicant);
  q.clear_group_id();
  q.set_actor_account_id(applicant);
  auto own = logic_->ListJoinRequests(Platform("L"), q);
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(own->join_requests_size(), 1);
}

TEST_F(GroupsReadsTest, ManagementTierCountsTheHotPathsMessages) {
  auto g = Create(Account(), common::v1::SCALE_TIER_MEDIUM);
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  const int64_t hour = absl::ToUnixSeconds(clock_.Now()) / 3600;
  ASSERT_TRUE(redis_
                  ->Pipeline({{"HSET", projection::GroupActivityKey(id), absl::StrCat(hour), "60",
                               absl::StrCat(hour - 1), "50", absl::StrCat(hour - 30), "5000"}})
                  .ok());
  v1::GetManagementTierRequest q;
  q.set_group_id(id);
  auto tier = logic_->GetManagementTier(q);
  ASSERT_TRUE(tier.ok()) << tier.status();
  EXPECT_EQ(tier->activity_message_count(), 110u);  // the 30-hour-old bucket is outside
  EXPECT_EQ(tier->activity_level(), v1::ACTIVITY_LEVEL_MODERATE);
  EXPECT_EQ(tier->tier().tier_id(), "MEDIUM");
  EXPECT_EQ(tier->tier().member_cap(), 500u);
  EXPECT_EQ(tier->reasons_size(), 3);
}

TEST_F(GroupsReadsTest, FilingDocumentInBothFormats) {
  v1::ExportFilingDocumentRequest q;
  q.set_format(v1::DOCUMENT_FORMAT_MARKDOWN);
  auto md = logic_->ExportFilingDocument(q);
  ASSERT_TRUE(md.ok());
  EXPECT_TRUE(absl::StrContains(md->content(), "| SCALE_TIER_HUGE | 10000 | 4 | yes |"))
      << md->content();
  EXPECT_TRUE(absl::StrContains(md->content(), "GROUP_CATEGORY_NEWS_PUBLIC_AFFAIRS"));
  EXPECT_EQ(md->content_sha256().size(), 32u);
  q.set_format(v1::DOCUMENT_FORMAT_JSON);
  auto json = logic_->ExportFilingDocument(q);
  ASSERT_TRUE(json.ok());
  EXPECT_TRUE(absl::StrContains(json->content(), "\"memberCap\": 2000")) << json->content();
  EXPECT_NE(json->content_sha256(), md->content_sha256());
}

TEST_F(GroupsReadsTest, InfoPageOnlyAtOrOverTheThreshold) {
  const uint64_t owner = Account();
  auto g = Create(owner);
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  for (int i = 1; i < 99; ++i) ASSERT_TRUE(Join(Account(), id).ok());
  v1::GetGroupInfoPageRequest q;
  q.set_code(g->group().code());
  EXPECT_EQ(ErrorReason(logic_->GetGroupInfoPage(q).status()), "GROUP_INFO_PAGE_NOT_AVAILABLE");
  ASSERT_TRUE(Join(Account(), id).ok());  // the 100th member
  auto page = logic_->GetGroupInfoPage(q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page().member_count(), 100u);
  EXPECT_EQ(page->page().code(), g->group().code());
  EXPECT_EQ(page->page().state(), v1::GROUP_STATE_ACTIVE);
  EXPECT_EQ(page->page().owner_nickname(), absl::StrCat("nick-", owner));
}

}  // namespace
}  // namespace qunzu::groups
