#include "services/credit/account_update.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/credit/credit_model.h"
#include "services/credit/credit_validation.h"

namespace qunzu::credit {
namespace {

// Bounds one catch-up (twenty years of monthly periods); the rest follows
// on the next one.
constexpr int kMaxCatchUpSteps = 240;

}  // namespace

absl::StatusOr<AccountUpdate> AccountUpdate::Open(CreditTransaction& tx, const Policy& policy,
                                                  uint64_t account_id, absl::Time now) {
  AccountUpdate update(tx, policy, now);
  ASSIGN_OR_RETURN(update.row_, tx.LockAccount(account_id));
  ASSIGN_OR_RETURN(update.penalties_, tx.ActivePenalties(account_id));
  RETURN_IF_ERROR(update.CatchUp());
  return update;
}

// Expiries and clean periods in the order they happened, so each entry's
// levels are those in force at its time (an expiry first on a tie).
absl::Status AccountUpdate::CatchUp() {
  for (int step = 0; step < kMaxCatchUpSteps; ++step) {
    v1::Penalty* expiring = nullptr;
    for (v1::Penalty& penalty : penalties_) {
      if (penalty.state() != v1::PENALTY_STATE_ACTIVE || PenaltyInForce(penalty, now_)) continue;
      if (expiring == nullptr ||
          FromProtoTime(penalty.until()) < FromProtoTime(expiring->until())) {
        expiring = &penalty;
      }
    }
    const bool recovering = row_.rated && row_.recovery_anchor != absl::InfinitePast() &&
                            row_.recovery_anchor + policy_->CleanPeriod() <= now_;
    if (expiring == nullptr && !recovering) break;
    const absl::Time period_end = row_.recovery_anchor + policy_->CleanPeriod();
    if (expiring != nullptr && (!recovering || FromProtoTime(expiring->until()) <= period_end)) {
      RETURN_IF_ERROR(Expire(*expiring));
    } else {
      RETURN_IF_ERROR(RecoverOnePeriod(period_end));
    }
  }
  as_of_ = now_;
  return absl::OkStatus();
}

absl::Status AccountUpdate::Expire(v1::Penalty& penalty) {
  as_of_ = FromProtoTime(penalty.until());
  penalty.set_state(v1::PENALTY_STATE_EXPIRED);
  *penalty.mutable_ended_at() = penalty.until();
  RETURN_IF_ERROR(tx_->UpdatePenalty(penalty));
  v1::LedgerEntry entry;
  entry.set_kind(v1::CHANGE_KIND_PENALTY_EXPIRED);
  entry.set_penalty_id(penalty.penalty_id());
  entry.set_source_service(kCreditSource);
  entry.set_reference(absl::StrCat("disposition:", penalty.disposition_id()));
  entry.set_reason(absl::StrCat("Penalty ", penalty.penalty_id(), " (",
                                v1::PenaltyKind_Name(penalty.kind()), ") ended."));
  *entry.mutable_occurred_at() = penalty.until();
  RETURN_IF_ERROR(Append(std::move(entry), 0).status());
  ++caught_up_;
  return absl::OkStatus();
}

absl::Status AccountUpdate::RecoverOnePeriod(absl::Time period_end) {
  as_of_ = period_end;
  row_.recovery_anchor = period_end;
  dirty_ = true;
  const int32_t max_score = static_cast<int32_t>(policy_->proto().recovery_rule().max_score());
  ASSIGN_OR_RETURN(const int32_t rule_delta, policy_->DeltaOf(v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD));
  const int32_t delta = std::min(rule_delta, std::max(0, max_score - row_.score));
  if (delta <= 0) return absl::OkStatus();
  v1::LedgerEntry entry;
  entry.set_kind(v1::CHANGE_KIND_EVENT);
  entry.set_event_type(v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD);
  entry.set_event_id(absl::StrCat(kCreditEventIdPrefix, "clean:", row_.account_id, ":",
                                  absl::ToUnixSeconds(period_end)));
  entry.set_source_service(kCreditSource);
  entry.set_reason("A clean period passed without a negative event.");
  *entry.mutable_occurred_at() = ToProtoTime(period_end);
  RETURN_IF_ERROR(Append(std::move(entry), delta).status());
  ++caught_up_;
  return absl::OkStatus();
}

absl::StatusOr<v1::LedgerEntry> AccountUpdate::Append(v1::LedgerEntry entry,
                                                      int32_t requested_delta,
                                                      const std::string& fingerprint) {
  const int32_t before = row_.score;
  const int32_t after = ClampScore(int64_t{before} + requested_delta);
  entry.set_account_id(row_.account_id);
  entry.set_delta(after - before);
  entry.set_score_before(static_cast<uint32_t>(before));
  entry.set_score_after(static_cast<uint32_t>(after));
  entry.set_level_before(row_.level);
  const uint32_t level_after = EffectiveLevel(*policy_, after, penalties_, as_of_);
  entry.set_level_after(level_after);
  *entry.mutable_recorded_at() = ToProtoTime(now_);
  if (!entry.has_occurred_at()) *entry.mutable_occurred_at() = ToProtoTime(now_);
  ASSIGN_OR_RETURN(const uint64_t entry_id, tx_->AppendEntry(entry, fingerprint));
  entry.set_entry_id(entry_id);
  if (entry.kind() == v1::CHANGE_KIND_EVENT) {
    // A reversal undoes a decision; it is not itself a negative event.
    const bool negative =
        requested_delta < 0 && entry.event_type() != v1::CREDIT_EVENT_TYPE_REVERSAL;
    if (!row_.rated || negative) row_.recovery_anchor = as_of_;
    row_.rated = true;
  }
  row_.score = after;
  row_.level = level_after;
  row_.last_entry_id = entry_id;
  row_.updated_at = now_;
  row_.policy_version = policy_->version();
  dirty_ = true;
  return entry;
}

absl::Status AccountUpdate::Save() {
  if (!dirty_) return absl::OkStatus();
  return tx_->SaveAccount(row_);
}

v1::CreditStatus AccountUpdate::Status() const {
  return ComputeStatus(*policy_, row_, penalties_, now_);
}

bool CatchUpIsDue(const Policy& policy, const AccountRow& row,
                  const std::vector<v1::Penalty>& penalties, absl::Time now) {
  for (const v1::Penalty& penalty : penalties) {
    if (penalty.state() == v1::PENALTY_STATE_ACTIVE && !PenaltyInForce(penalty, now)) return true;
  }
  return row.rated && row.recovery_anchor != absl::InfinitePast() &&
         row.recovery_anchor + policy.CleanPeriod() <= now;
}

}  // namespace qunzu::credit
