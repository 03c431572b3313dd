// The arithmetic of credit, free of storage and transport: clamping scores,
// the level and entitlements in force given the score and the active
// penalties, and the ledger replay that must agree with the materialised row.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_MODEL_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_MODEL_H_

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/credit/credit_store.h"
#include "services/credit/policy.h"

namespace qunzu::credit {

// score clamped to 0..1000.
int32_t ClampScore(int64_t score);

// Whether a penalty restricts the account at `now`: ACTIVE and until > now.
bool PenaltyInForce(const v1::Penalty& penalty, absl::Time now);

// The level in force: the score's level, capped by every LEVEL_DOWNGRADE in
// force at `now`.
uint32_t EffectiveLevel(const Policy& policy, int32_t score,
                        const std::vector<v1::Penalty>& penalties, absl::Time now);

// The full status of an account: its level's entitlements narrowed by the
// penalties in force (SUSPEND_ADMIN clears may_be_admin, REVOKE_CREATION
// clears groups_may_create and max_create_tier). Penalties not in force at
// `now` are left out of active_penalties.
v1::CreditStatus ComputeStatus(const Policy& policy, const AccountRow& row,
                               const std::vector<v1::Penalty>& penalties, absl::Time now);

// Replays a ledger (oldest first) from score 0: every entry's score_before
// must equal the running score and score_after = clamp(before + delta).
// Returns the final score, or FAILED_PRECONDITION LEDGER_INCONSISTENT naming
// the first entry that breaks the chain.
absl::StatusOr<int32_t> ReplayLedger(const std::vector<v1::LedgerEntry>& entries);

google::protobuf::Timestamp ToProtoTime(absl::Time time);
absl::Time FromProtoTime(const google::protobuf::Timestamp& time);

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_MODEL_H_
