// CreditEngine's logic on in-memory fakes (no MariaDB, no Redis): audit
// records for every change, explained history, a projection outage healed by
// a retry, time injected for recovery over months and bounded catch-up.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/credit/credit_engine.h"
#include "services/credit/credit_model.h"
#include "services/credit/credit_service.h"
#include "services/credit/credit_validation.h"
#include "tests/credit/fake_credit_store.h"

namespace qunzu::credit {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

class CreditEngineLogicTest : public ::testing::Test {
 protected:
  CreditEngineLogicTest()
      : policy_(*Policy::Create(*LoadCreditPolicy(DefaultPolicyFile()), "default")),
        engine_(store_, projection_, policy_, clock_) {}

  static RequestContext From(const std::string& service) {
    return RequestContext{Caller{"service:" + service, common::v1::ROLE_SERVICE, service},
                          "ipv4:10.0.0.1:5", "/qunzu.credit.v1.CreditService/RecordEvent"};
  }

  absl::StatusOr<v1::RecordEventResponse> Record(uint64_t account, v1::CreditEventType type,
                                                 const std::string& id,
                                                 const std::string& service = "moderation") {
    v1::RecordEventRequest request;
    request.set_request_id(id);
    request.set_account_id(account);
    request.set_event_type(type);
    return engine_.RecordEvent(From(service), request);
  }

  testing::FakeCreditStore store_;
  testing::FakeProjection projection_;
  FakeClock clock_{kStart};
  Policy policy_;
  CreditEngine engine_;
};

TEST_F(CreditEngineLogicTest, EveryChangeIsAuditedAndExplained) {
  ASSERT_TRUE(Record(1, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v1", "identity").ok());
  auto upheld = Record(1, v1::CREDIT_EVENT_TYPE_REPORT_UPHELD, "m1");
  ASSERT_TRUE(upheld.ok()) << upheld.status();
  // No reason given: the policy's description explains the change.
  EXPECT_EQ(upheld->entry().reason(), "A report against you or a group you own was upheld.");
  EXPECT_EQ(upheld->entry().source_service(), "moderation");

  const testing::FakeState state = store_.Snapshot();
  ASSERT_EQ(state.audit.size(), 2u);
  const audit::v1::AuditEvent& event = state.audit[1];
  EXPECT_EQ(event.action(), "CREDIT_EVENT_RECORDED");
  EXPECT_EQ(event.service(), "credit");
  EXPECT_EQ(event.principal(), "service:moderation");
  EXPECT_EQ(event.request_id(), "m1");
  EXPECT_EQ(event.client_ip(), "10.0.0.1");
  ASSERT_EQ(event.subjects_size(), 1);
  EXPECT_EQ(event.subjects(0).id(), 1u);
  EXPECT_EQ(event.details().at("event_type"), "CREDIT_EVENT_TYPE_REPORT_UPHELD");
  EXPECT_EQ(event.details().at("delta"), "-50");

  // Credit's own changes are audited as credit's.
  clock_.Advance(absl::Hours(24 * 31));
  ASSERT_TRUE(engine_.GetCredit(1).ok());
  const testing::FakeState later = store_.Snapshot();
  ASSERT_EQ(later.audit.size(), 3u);
  EXPECT_EQ(later.audit[2].action(), "CREDIT_CAUGHT_UP");
  EXPECT_EQ(later.audit[2].principal(), "service:credit");
}

TEST_F(CreditEngineLogicTest, ARefusedRequestLeavesNoTrace) {
  ASSERT_TRUE(Record(2, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v2", "identity").ok());
  const size_t ledger = store_.Snapshot().ledger.size();
  EXPECT_EQ(ErrorReason(Record(2, v1::CREDIT_EVENT_TYPE_GROUP_CLOSED, "v2").status()),
            "REQUEST_ID_REUSED");
  v1::RecordEventRequest future;
  future.set_request_id("f1");
  future.set_account_id(2);
  future.set_event_type(v1::CREDIT_EVENT_TYPE_GROUP_WARNED);
  *future.mutable_occurred_at() = ToProtoTime(kStart + absl::Hours(1));
  EXPECT_EQ(ErrorMetadata(engine_.RecordEvent(From("moderation"), future).status(), "field"),
            "occurred_at");
  EXPECT_EQ(store_.Snapshot().ledger.size(), ledger);
  EXPECT_EQ(store_.Snapshot().audit.size(), 1u);
  EXPECT_EQ(engine_.GetCredit(2)->score(), 600u);
}

TEST_F(CreditEngineLogicTest, AProjectionOutageIsHealedByRetryingTheSameEvent) {
  ASSERT_TRUE(Record(3, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v3", "identity").ok());
  projection_.failing = true;
  auto during = Record(3, v1::CREDIT_EVENT_TYPE_BLACKLISTED, "b3");
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(during.status()), "PROJECTION_UNAVAILABLE");
  EXPECT_EQ(projection_.Get(3)->score(), 600u);  // stale
  EXPECT_EQ(engine_.GetCredit(3).status().code(), absl::StatusCode::kOk);
  projection_.failing = false;
  auto retried = Record(3, v1::CREDIT_EVENT_TYPE_BLACKLISTED, "b3");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status().score(), 300u);  // counted once
  EXPECT_EQ(projection_.Get(3)->score(), 300u);
  EXPECT_EQ(projection_.Get(3)->level(), 0u);
}

TEST_F(CreditEngineLogicTest, RecoveryOverAYearWithoutWaiting) {
  ASSERT_TRUE(Record(4, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v4", "identity").ok());
  ASSERT_TRUE(Record(4, v1::CREDIT_EVENT_TYPE_GROUP_CLOSED, "c4").ok());  // 450, level 1
  clock_.Advance(absl::Hours(24 * 365));
  auto status = engine_.GetCredit(4);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->score(), 570u);  // twelve clean periods of +10
  EXPECT_EQ(status->level(), 2u);
  EXPECT_EQ(projection_.Get(4)->level(), 2u);
  EXPECT_TRUE(engine_.VerifyLedger(4).ok());
  // Each clean period is an explained, dated entry.
  v1::ListCreditHistoryRequest history;
  history.set_account_id(4);
  history.mutable_page()->set_page_size(1);
  auto newest = engine_.ListHistory(history);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->entries(0).event_type(), v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD);
  EXPECT_EQ(FromProtoTime(newest->entries(0).occurred_at()), kStart + absl::Hours(24 * 360));
}

TEST_F(CreditEngineLogicTest, CatchUpIsBoundedAndResumes) {
  ASSERT_TRUE(Record(5, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v5", "identity").ok());
  ASSERT_TRUE(Record(5, v1::CREDIT_EVENT_TYPE_BLACKLISTED, "b5").ok());  // 300
  clock_.Advance(absl::Hours(24 * 30 * 300));  // 300 periods, more than one catch-up takes
  ASSERT_TRUE(engine_.GetCredit(5).ok());
  EXPECT_TRUE(CatchUpIsDue(policy_, *store_.GetAccount(5).value(), {}, clock_.Now()));
  auto due = engine_.CatchUpDue(10);
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_EQ(*due, 1);
  EXPECT_FALSE(CatchUpIsDue(policy_, *store_.GetAccount(5).value(), {}, clock_.Now()));
  EXPECT_EQ(engine_.GetCredit(5)->score(), 750u);  // recovery_rule.max_score
  EXPECT_TRUE(engine_.VerifyLedger(5).ok());
}

TEST_F(CreditEngineLogicTest, StackedDowngradesAndEarlyLift) {
  ASSERT_TRUE(Record(6, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v6", "identity").ok());
  v1::ApplyPenaltyRequest penalty;
  penalty.set_request_id("p1");
  penalty.set_account_id(6);
  penalty.set_kind(v1::PENALTY_KIND_LEVEL_DOWNGRADE);
  penalty.set_levels(1);
  *penalty.mutable_until() = ToProtoTime(kStart + absl::Hours(24 * 10));
  penalty.set_disposition_id(61);
  RequestContext moderation = From("moderation");
  moderation.method = "/qunzu.credit.v1.CreditService/ApplyPenalty";
  auto first = engine_.ApplyPenalty(moderation, penalty);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status().level(), 1u);
  penalty.set_request_id("p2");
  penalty.set_disposition_id(62);
  *penalty.mutable_until() = ToProtoTime(kStart + absl::Hours(24 * 20));
  auto second = engine_.ApplyPenalty(moderation, penalty);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status().level(), 0u);

  v1::LiftPenaltyRequest lift;
  lift.set_request_id("l1");
  lift.set_penalty_id(second->penalty().penalty_id());
  lift.set_reason("revoked");
  moderation.method = "/qunzu.credit.v1.CreditService/LiftPenalty";
  auto lifted = engine_.LiftPenalty(moderation, lift);
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_EQ(lifted->status().level(), 1u);  // the first still holds
  clock_.Advance(absl::Hours(24 * 10));
  EXPECT_EQ(engine_.GetCredit(6)->level(), 2u);
  EXPECT_EQ(projection_.Get(6)->level(), 2u);
}

TEST_F(CreditEngineLogicTest, OnlyTheRecordingServiceMayReverseAnEvent) {
  ASSERT_TRUE(Record(7, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "v7", "identity").ok());
  v1::RecordEventRequest reversal;
  reversal.set_request_id("r7");
  reversal.set_account_id(7);
  reversal.set_event_type(v1::CREDIT_EVENT_TYPE_REVERSAL);
  reversal.set_reverses_event_id("v7");
  EXPECT_EQ(ErrorReason(engine_.RecordEvent(From("moderation"), reversal).status()),
            "EVENT_NOT_REVERSIBLE");
  EXPECT_EQ(engine_.GetCredit(7)->score(), 600u);
  v1::RecordEventRequest reserved;
  reserved.set_request_id("credit:clean:7:1");
  reserved.set_account_id(7);
  reserved.set_event_type(v1::CREDIT_EVENT_TYPE_GROUP_WARNED);
  EXPECT_EQ(ErrorMetadata(ValidateRecordEvent(reserved), "field"), "request_id");
}

}  // namespace
}  // namespace qunzu::credit
