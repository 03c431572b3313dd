// Input checks of the credit RPCs: every bad field is INVALID_ARGUMENT naming
// it, checked before the platform's ownership check (so an allowed role with
// an empty request never sees PERMISSION_DENIED).
#include "services/credit/credit_validation.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "services/credit/credit_model.h"
#include "services/credit/credit_service.h"

namespace qunzu::credit {
namespace {

Policy DefaultPolicy() { return *Policy::Create(*LoadCreditPolicy(DefaultPolicyFile()), "d"); }

std::string FieldOf(const absl::Status& status) { return ErrorMetadata(status, "field"); }

TEST(CreditValidation, RecordEventFields) {
  v1::RecordEventRequest request;
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "request_id");
  request.set_request_id("moderation:report:1:reporter");
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "account_id");
  request.set_account_id(5);
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "event_type");
  request.set_event_type(static_cast<v1::CreditEventType>(77));
  EXPECT_EQ(ErrorReason(ValidateRecordEvent(request)), "EVENT_TYPE_UNKNOWN");
  request.set_event_type(v1::CREDIT_EVENT_TYPE_FALSE_REPORT_FILED);
  EXPECT_TRUE(ValidateRecordEvent(request).ok());
  request.set_reason("\xff\xfe");
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "reason");
  request.set_reason(std::string(501, 'x'));
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "reason");
  request.set_reason(std::string(500, 'x'));
  request.set_reference(std::string(129, 'r'));
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "reference");
  request.clear_reference();
  request.set_reverses_event_id("e1");
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "reverses_event_id");
  request.set_event_type(v1::CREDIT_EVENT_TYPE_REVERSAL);
  EXPECT_TRUE(ValidateRecordEvent(request).ok());
  request.clear_reverses_event_id();
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "reverses_event_id");
  request.mutable_occurred_at()->set_nanos(-1);
  request.set_reverses_event_id("e1");
  EXPECT_EQ(FieldOf(ValidateRecordEvent(request)), "occurred_at");
}

TEST(CreditValidation, ApplyPenaltyFields) {
  const Policy policy = DefaultPolicy();
  v1::ApplyPenaltyRequest request;
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "request_id");
  request.set_request_id("p1");
  request.set_account_id(3);
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "kind");
  request.set_kind(v1::PENALTY_KIND_LEVEL_DOWNGRADE);
  EXPECT_EQ(ErrorReason(ValidateApplyPenalty(request, policy)), "PENALTY_LEVELS_ZERO");
  request.set_levels(5);  // max_levels is 4
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "levels");
  request.set_levels(2);
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "until");
  *request.mutable_until() = ToProtoTime(absl::FromUnixSeconds(1900000000));
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "disposition_id");
  request.set_disposition_id(9);
  EXPECT_TRUE(ValidateApplyPenalty(request, policy).ok());
  request.set_kind(v1::PENALTY_KIND_SUSPEND_ADMIN);
  EXPECT_EQ(FieldOf(ValidateApplyPenalty(request, policy)), "levels");
}

TEST(CreditValidation, LiftAndHistoryFields) {
  v1::LiftPenaltyRequest lift;
  lift.set_request_id("l1");
  EXPECT_EQ(FieldOf(ValidateLiftPenalty(lift)), "penalty_id");
  lift.set_penalty_id(1);
  EXPECT_EQ(FieldOf(ValidateLiftPenalty(lift)), "reason");

  v1::ListCreditHistoryRequest history;
  EXPECT_EQ(FieldOf(ValidateHistoryRequest(history)), "account_id");
  history.set_account_id(1);
  history.mutable_page()->set_page_size(1001);
  EXPECT_EQ(FieldOf(ValidateHistoryRequest(history)), "page.page_size");
  history.mutable_page()->set_page_size(10);
  history.mutable_start_time()->set_seconds(100);
  history.mutable_end_time()->set_seconds(100);
  EXPECT_EQ(FieldOf(ValidateHistoryRequest(history)), "end_time");
  history.mutable_end_time()->set_seconds(101);
  EXPECT_TRUE(ValidateHistoryRequest(history).ok());
}

TEST(CreditValidation, PlatformReadsOnlyTheActingUsersOwnCredit) {
  const Caller platform{"chat-backend", common::v1::ROLE_PLATFORM, ""};
  const Caller moderator{"mia", common::v1::ROLE_MODERATOR, ""};
  EXPECT_EQ(CheckAccountRead(platform, 0, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(CheckAccountRead(platform, 4, 5)), "NOT_OWN_ACCOUNT");
  EXPECT_EQ(CheckAccountRead(platform, 4, 5).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckAccountRead(platform, 4, 4).ok());
  EXPECT_TRUE(CheckAccountRead(moderator, 4, 0).ok());
}

}  // namespace
}  // namespace qunzu::credit
