// Input checks of the credit RPCs, run before any lookup or ownership
// check: each bad field is INVALID_ARGUMENT naming it (InvalidField), or a
// specific reason where the contract names one (EVENT_TYPE_UNKNOWN,
// PENALTY_LEVELS_ZERO).
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_VALIDATION_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_VALIDATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/auth.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/credit/policy.h"

namespace qunzu::credit {

// Event ids credit gives its own events (CLEAN_PERIOD); refused from callers.
inline constexpr char kCreditEventIdPrefix[] = "credit:";

// Valid UTF-8 of at most max_chars code points; required strings also
// non-empty.
absl::Status CheckText(absl::string_view field, const std::string& value, size_t max_chars,
                       bool required);

absl::Status ValidateRecordEvent(const v1::RecordEventRequest& request);
// levels within 1..penalty_rule.max_levels for LEVEL_DOWNGRADE (0 is
// PENALTY_LEVELS_ZERO), 0 for the other kinds; until set (its time bounds are
// checked against the clock by the engine); disposition_id set.
absl::Status ValidateApplyPenalty(const v1::ApplyPenaltyRequest& request, const Policy& policy);
absl::Status ValidateLiftPenalty(const v1::LiftPenaltyRequest& request);
absl::Status ValidateHistoryRequest(const v1::ListCreditHistoryRequest& request);

// For reads of one account: account_id set; then a platform caller must act
// for that account (actor_account_id == account_id), else PERMISSION_DENIED
// NOT_OWN_ACCOUNT.
absl::Status CheckAccountRead(const Caller& caller, uint64_t account_id, uint64_t actor_account_id);

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_VALIDATION_H_
