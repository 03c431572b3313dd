#include "services/qunzuctl/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"

namespace qunzu::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RenderTest, JsonUsesProtoNamesAndPrintsEveryScalar) {
  identity::v1::GetAccountResponse response;
  response.mutable_account()->set_account_id(42);
  response.mutable_account()->set_nickname("小明");
  std::ostringstream out;
  ASSERT_TRUE(RenderJson(response, out).ok());
  EXPECT_THAT(out.str(), HasSubstr("\"account_id\": \"42\""));
  EXPECT_THAT(out.str(), HasSubstr("\"verified\": false"));
  EXPECT_THAT(out.str(), HasSubstr("\"nickname\": \"小明\""));
}

TEST(RenderTest, SingleMessageAsLinesWithShortEnumsAndTimes) {
  groups::v1::GetGroupResponse response;
  groups::v1::Group& group = *response.mutable_group();
  group.set_group_id(7);
  group.set_name("读书会");
  group.set_state(groups::v1::GROUP_STATE_POSTING_SUSPENDED);
  group.mutable_posting_suspended_until()->set_seconds(1800000000);
  std::ostringstream out;
  RenderTable(response, {}, out);
  EXPECT_THAT(out.str(), HasSubstr("group:\n  group_id: 7\n  name: 读书会\n"));
  EXPECT_THAT(out.str(), HasSubstr("  state: POSTING_SUSPENDED\n"));
  EXPECT_THAT(out.str(), HasSubstr("  posting_suspended_until: 2027-01-15T08:00:00Z\n"));
  EXPECT_THAT(out.str(), Not(HasSubstr("description")));
}

TEST(RenderTest, ListAsAlignedColumnsThenTheRest) {
  groups::v1::ListMembersResponse response;
  auto* owner = response.add_members();
  owner->set_account_id(1);
  owner->set_role(groups::v1::MEMBER_ROLE_OWNER);
  auto* member = response.add_members();
  member->set_account_id(12345);
  member->set_role(groups::v1::MEMBER_ROLE_MEMBER);
  response.mutable_page()->set_next_page_token("tok");
  std::ostringstream out;
  RenderTable(response, {{"account_id", "role"}, ""}, out);
  EXPECT_EQ(out.str(),
            "ACCOUNT_ID  ROLE\n"
            "1           OWNER\n"
            "12345       MEMBER\n"
            "page:\n  next_page_token: tok\n");
}

TEST(RenderTest, DefaultColumnsAreTheScalarsSetInSomeRowAndEmptyListsSaySo) {
  groups::v1::ListGroupsResponse response;
  std::ostringstream empty;
  RenderTable(response, {}, empty);
  EXPECT_THAT(empty.str(), HasSubstr("(no groups)"));
  response.add_groups()->set_code("AB12");
  std::ostringstream out;
  RenderTable(response, {}, out);
  EXPECT_THAT(out.str(), HasSubstr("CODE\nAB12\n"));
}

TEST(RenderTest, RawFieldPrintsADocumentAsIs) {
  groups::v1::ExportFilingDocumentResponse response;
  response.set_content("# Tiers\n| a | b |\n");
  response.set_policy_version("v1");
  std::ostringstream out;
  RenderTable(response, {{}, "content"}, out);
  EXPECT_EQ(out.str(), "# Tiers\n| a | b |\n");
}

}  // namespace
}  // namespace qunzu::ctl
