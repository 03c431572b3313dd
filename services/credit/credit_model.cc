#include "services/credit/credit_model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace qunzu::credit {

int32_t ClampScore(int64_t score) {
  return static_cast<int32_t>(std::clamp<int64_t>(score, 0, kMaxScore));
}

bool PenaltyInForce(const v1::Penalty& penalty, absl::Time now) {
  return penalty.state() == v1::PENALTY_STATE_ACTIVE && FromProtoTime(penalty.until()) > now;
}

uint32_t EffectiveLevel(const Policy& policy, int32_t score,
                        const std::vector<v1::Penalty>& penalties, absl::Time now) {
  uint32_t level = policy.LevelOf(score);
  for (const v1::Penalty& penalty : penalties) {
    if (penalty.kind() == v1::PENALTY_KIND_LEVEL_DOWNGRADE && PenaltyInForce(penalty, now)) {
      level = std::min(level, penalty.level_cap());
    }
  }
  return level;
}

v1::CreditStatus ComputeStatus(const Policy& policy, const AccountRow& row,
                               const std::vector<v1::Penalty>& penalties, absl::Time now) {
  v1::CreditStatus status;
  status.set_account_id(row.account_id);
  status.set_rated(row.rated);
  status.set_score(static_cast<uint32_t>(row.score));
  status.set_score_level(policy.LevelOf(row.score));
  const uint32_t level = EffectiveLevel(policy, row.score, penalties, now);
  status.set_level(level);
  v1::Entitlements* entitlements = status.mutable_entitlements();
  *entitlements = policy.EntitlementsOf(level);
  for (const v1::Penalty& penalty : penalties) {
    if (!PenaltyInForce(penalty, now)) continue;
    *status.add_active_penalties() = penalty;
    if (penalty.kind() == v1::PENALTY_KIND_SUSPEND_ADMIN) entitlements->set_may_be_admin(false);
    if (penalty.kind() == v1::PENALTY_KIND_REVOKE_CREATION) {
      entitlements->set_groups_may_create(0);
      entitlements->set_max_create_tier(common::v1::SCALE_TIER_UNSPECIFIED);
    }
  }
  status.set_next_level_min_score(policy.NextLevelMinScore(status.score_level()));
  *status.mutable_updated_at() = ToProtoTime(row.updated_at);
  status.set_policy_version(policy.version());
  return status;
}

absl::StatusOr<int32_t> ReplayLedger(const std::vector<v1::LedgerEntry>& entries) {
  int32_t score = 0;
  for (const v1::LedgerEntry& entry : entries) {
    const int32_t expected_after = ClampScore(int64_t{score} + entry.delta());
    if (entry.score_before() != static_cast<uint32_t>(score) ||
        entry.score_after() != static_cast<uint32_t>(expected_after)) {
      return MakeError(
          absl::StatusCode::kFailedPrecondition, "LEDGER_INCONSISTENT",
          absl::StrCat("ledger entry ", entry.entry_id(), " of account ", entry.account_id(),
                       " does not follow from the entries before it"),
          {{"entry_id", absl::StrCat(entry.entry_id())}});
    }
    score = expected_after;
  }
  return score;
}

google::protobuf::Timestamp ToProtoTime(absl::Time time) {
  google::protobuf::Timestamp out;
  const int64_t nanos = absl::ToUnixNanos(time);
  out.set_seconds(absl::ToUnixSeconds(time));
  out.set_nanos(static_cast<int32_t>(nanos - out.seconds() * 1000000000));
  if (out.nanos() < 0) {
    out.set_seconds(out.seconds() - 1);
    out.set_nanos(out.nanos() + 1000000000);
  }
  return out;
}

absl::Time FromProtoTime(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

}  // namespace qunzu::credit
