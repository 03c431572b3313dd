// The arithmetic of credit: penalties narrow level and entitlements only
// while in force, and the replay detects a ledger that does not add up.
#include "services/credit/credit_model.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "services/credit/credit_service.h"

namespace qunzu::credit {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

Policy DefaultPolicy() {
  auto proto = LoadCreditPolicy(DefaultPolicyFile());
  EXPECT_TRUE(proto.ok()) << proto.status();
  return *Policy::Create(*proto, "default");
}

v1::Penalty MakePenalty(v1::PenaltyKind kind, uint32_t level_cap, absl::Time until) {
  v1::Penalty p;
  p.set_kind(kind);
  p.set_level_cap(level_cap);
  p.set_state(v1::PENALTY_STATE_ACTIVE);
  *p.mutable_until() = ToProtoTime(until);
  return p;
}

TEST(CreditModel, PenaltiesNarrowOnlyWhileInForce) {
  const Policy policy = DefaultPolicy();
  AccountRow row;
  row.account_id = 7;
  row.rated = true;
  row.score = 720;  // level 3
  std::vector<v1::Penalty> penalties = {
      MakePenalty(v1::PENALTY_KIND_LEVEL_DOWNGRADE, 1, kNow + absl::Hours(1)),
      MakePenalty(v1::PENALTY_KIND_SUSPEND_ADMIN, 0, kNow + absl::Hours(2)),
      MakePenalty(v1::PENALTY_KIND_REVOKE_CREATION, 0, kNow - absl::Seconds(1))};
  v1::CreditStatus status = ComputeStatus(policy, row, penalties, kNow);
  EXPECT_EQ(status.score_level(), 3u);
  EXPECT_EQ(status.level(), 1u);
  EXPECT_EQ(status.entitlements().groups_may_create(), 2u);
  EXPECT_FALSE(status.entitlements().may_be_admin());
  EXPECT_EQ(status.active_penalties_size(), 2);
  EXPECT_EQ(status.next_level_min_score(), 850u);

  status = ComputeStatus(policy, row, penalties, kNow + absl::Hours(3));
  EXPECT_EQ(status.level(), 3u);
  EXPECT_TRUE(status.entitlements().may_be_admin());
  EXPECT_EQ(status.entitlements().groups_may_create(), 50u);
  EXPECT_EQ(status.active_penalties_size(), 0);

  penalties[2].set_state(v1::PENALTY_STATE_ACTIVE);
  *penalties[2].mutable_until() = ToProtoTime(kNow + absl::Hours(5));
  status = ComputeStatus(policy, row, penalties, kNow + absl::Hours(4));
  EXPECT_EQ(status.entitlements().groups_may_create(), 0u);
  EXPECT_EQ(status.entitlements().max_create_tier(), common::v1::SCALE_TIER_UNSPECIFIED);
}

TEST(CreditModel, ReplayChecksTheChain) {
  std::vector<v1::LedgerEntry> ledger(3);
  ledger[0].set_delta(600);
  ledger[0].set_score_after(600);
  ledger[1].set_score_before(600);
  ledger[1].set_delta(-700);  // clamped: the stored delta is the applied one
  ledger[1].set_score_after(0);
  ledger[2].set_score_before(0);
  ledger[2].set_delta(5);
  ledger[2].set_score_after(5);
  EXPECT_EQ(*ReplayLedger(ledger), 5);
  ledger[2].set_score_before(600);
  EXPECT_EQ(ErrorReason(ReplayLedger(ledger).status()), "LEDGER_INCONSISTENT");
}

TEST(CreditModel, ScoresClampAndTimesRoundTrip) {
  EXPECT_EQ(ClampScore(-3), 0);
  EXPECT_EQ(ClampScore(1200), 1000);
  const absl::Time t = absl::FromUnixMicros(1800000000123456);
  EXPECT_EQ(FromProtoTime(ToProtoTime(t)), t);
}

}  // namespace
}  // namespace qunzu::credit
