// The credit policy as data (R7.3, R7.4): loading and validating the
// text-format CreditPolicy file, and the lookups the ledger needs (an event's
// delta, the level of a score, a level's entitlements).
#ifndef QUNZU_SERVICES_CREDIT_POLICY_H_
#define QUNZU_SERVICES_CREDIT_POLICY_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/credit/v1/credit.pb.h"

namespace qunzu::credit {

// Scores live in [0, kMaxScore].
inline constexpr int32_t kMaxScore = 1000;

// OK when `policy` is usable; otherwise INVALID_ARGUMENT with reason
// CREDIT_POLICY_INVALID, metadata `field`, and a message "<source>: <field>:
// <problem>". Refused: a missing version; an event rule for UNSPECIFIED,
// REVERSAL (its delta is the cancelled event's) or an unknown type; a
// duplicate or missing event type; a delta outside -1000..1000 or an
// IDENTITY_VERIFIED delta <= 0; levels not numbered 0, 1, 2...; level 0 not at
// min_score 0; thresholds not strictly increasing (overlapping) or above
// 1000; an unknown tier; a higher level granting less than a lower one;
// penalty max_levels 0 or a non-positive or negative duration; a recovery
// period <= 0 or a max_score above 1000.
absl::Status ValidateCreditPolicy(const v1::CreditPolicy& policy, const std::string& source);

// Reads the text-format policy at `path` and validates it (path is the
// source named in errors). Syntax errors, unknown fields and negative values
// of unsigned caps are INVALID_ARGUMENT CONFIG_FILE_INVALID naming
// path:line:column.
absl::StatusOr<v1::CreditPolicy> LoadCreditPolicy(const std::string& path);

// A validated policy indexed for lookups. Immutable, so shareable across
// threads.
class Policy {
 public:
  // Validates (source as in ValidateCreditPolicy) and indexes.
  static absl::StatusOr<Policy> Create(v1::CreditPolicy policy, const std::string& source);

  const v1::CreditPolicy& proto() const { return proto_; }
  const std::string& version() const { return proto_.version(); }

  // The configured delta of a known event type other than REVERSAL;
  // INVALID_ARGUMENT EVENT_TYPE_UNKNOWN otherwise.
  absl::StatusOr<int32_t> DeltaOf(v1::CreditEventType type) const;
  // The rule's description of an event type ("" for none), the reason
  // shown when the caller gave none.
  std::string DescriptionOf(v1::CreditEventType type) const;
  // The highest level whose min_score is <= score.
  uint32_t LevelOf(int32_t score) const;
  // The top level (4 by default).
  uint32_t MaxLevel() const;
  // The entitlements of `level` (clamped to the top level).
  const v1::Entitlements& EntitlementsOf(uint32_t level) const;
  // min_score of level + 1; 0 at the top level.
  uint32_t NextLevelMinScore(uint32_t level) const;
  absl::Duration CleanPeriod() const { return clean_period_; }
  absl::Duration MaxPenaltyDuration() const { return max_penalty_duration_; }

 private:
  explicit Policy(v1::CreditPolicy policy);

  v1::CreditPolicy proto_;
  absl::flat_hash_map<int, int32_t> deltas_;
  absl::Duration clean_period_;
  absl::Duration max_penalty_duration_;
};

// Whether a credit score delta counts as negative for recovery.
inline bool IsNegative(int32_t delta) { return delta < 0; }

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_POLICY_H_
