// Input checks of the case RPCs: an empty mutating request names its first
// missing field; reads accept an empty request; bad enums, pages and text
// are refused with the field named.
#include "services/moderation/case_validation.h"

#include <gtest/gtest.h>

#include <string>

#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {
namespace {

std::string Field(const absl::Status& status) { return ErrorMetadata(status, "field"); }

TEST(CaseValidationTest, EmptyMutatingRequestsNameTheirFirstField) {
  const absl::Time now = absl::Now();
  EXPECT_EQ(Field(ValidateSubmitReport(v1::SubmitReportRequest())), "request_id");
  EXPECT_EQ(Field(ValidateClaimReport(v1::ClaimReportRequest())), "request_id");
  EXPECT_EQ(Field(ValidateResolveReport(v1::ResolveReportRequest())), "request_id");
  EXPECT_EQ(Field(ValidateDisposeGroup(v1::DisposeGroupRequest(), now)), "request_id");
  EXPECT_EQ(Field(ValidateDisposeAccount(v1::DisposeAccountRequest(), now)), "request_id");
  EXPECT_EQ(Field(ValidateRevokeDisposition(v1::RevokeDispositionRequest())), "request_id");
  EXPECT_EQ(Field(ValidateAddToBlacklist(v1::AddToBlacklistRequest(), now)), "request_id");
  EXPECT_EQ(Field(ValidateRemoveFromBlacklist(v1::RemoveFromBlacklistRequest())), "request_id");
  EXPECT_EQ(Field(ValidateGetReport(v1::GetReportRequest())), "report_id");
  EXPECT_EQ(Field(ValidateGetDisposition(v1::GetDispositionRequest())), "disposition_id");
  EXPECT_EQ(Field(ValidateGetHeldMessage(v1::GetHeldMessageRequest())), "report_id");
}

TEST(CaseValidationTest, EmptyListsAreValid) {
  EXPECT_TRUE(ValidateListReports(v1::ListReportsRequest()).ok());
  EXPECT_TRUE(ValidateListDispositions(v1::ListDispositionsRequest()).ok());
  EXPECT_TRUE(ValidateListBlacklist(v1::ListBlacklistRequest()).ok());
  EXPECT_TRUE(ValidateListFilings(v1::ListFilingsRequest()).ok());
  EXPECT_TRUE(ValidateListHeldMessages(v1::ListHeldMessagesRequest()).ok());
  EXPECT_TRUE(ValidateGetHandlingStats(v1::GetHandlingStatsRequest()).ok());
}

TEST(CaseValidationTest, TargetsEnumsPagesAndText) {
  v1::SubmitReportRequest r;
  r.set_request_id("r1");
  r.set_actor_account_id(5);
  r.mutable_target()->set_kind(v1::REPORT_TARGET_KIND_MESSAGE);
  r.mutable_target()->set_group_id(9);
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "target.message_id");
  r.mutable_target()->set_message_id("m");
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "category");
  r.set_category(static_cast<v1::ContentCategory>(99));
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "category");
  r.set_category(v1::CONTENT_CATEGORY_SPAM);
  r.set_description(std::string("\xff\xfe", 2));
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "description");
  r.set_description(std::string(2001, 'a'));
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "description");
  r.clear_description();
  for (int i = 0; i < 21; ++i) r.add_evidence();
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "evidence");
  r.clear_evidence();
  EXPECT_TRUE(ValidateSubmitReport(r).ok());
  r.set_actor_account_id(0);
  EXPECT_EQ(Field(ValidateSubmitReport(r)), "client_ip");

  v1::ListFilingsRequest list;
  list.mutable_page()->set_page_size(1001);
  EXPECT_EQ(Field(ValidateListFilings(list)), "page.page_size");
  list.mutable_page()->set_page_size(10);
  list.mutable_page()->set_page_token("not-ours");
  EXPECT_EQ(Field(ValidateListFilings(list)), "page.page_token");

  v1::ResolveReportRequest resolve;
  resolve.set_request_id("r2");
  resolve.set_report_id(1);
  resolve.set_outcome(v1::REPORT_OUTCOME_DUPLICATE);
  EXPECT_EQ(ErrorReason(ValidateResolveReport(resolve)), "STATEMENT_REQUIRED");
  resolve.set_statement_of_reasons("same as #1");
  EXPECT_EQ(ErrorReason(ValidateResolveReport(resolve)), "DUPLICATE_OF_REQUIRED");
  resolve.set_outcome(v1::REPORT_OUTCOME_NO_VIOLATION);
  resolve.add_disposition_ids(3);
  EXPECT_EQ(Field(ValidateResolveReport(resolve)), "disposition_ids");
}

}  // namespace
}  // namespace qunzu::moderation
