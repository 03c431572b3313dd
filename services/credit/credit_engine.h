// The credit logic (R7.3, R7.4, R11.2), free of gRPC: records policy-priced
// events into the ledger, applies and lifts penalties, answers status and
// history, checks the ledger against the materialised rows and keeps the
// Redis projection in step. Requests reaching it have passed
// credit_validation.h.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_ENGINE_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/clock.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/credit/account_update.h"
#include "services/credit/credit_metrics.h"
#include "services/credit/credit_projection.h"
#include "services/credit/credit_store.h"
#include "services/credit/policy.h"

namespace qunzu::credit {

// Who asked, for idempotency keys, audit records and the event-type check.
struct RequestContext {
  Caller caller;
  std::string peer;
  // Full gRPC method name.
  std::string method;
};

class CreditEngine {
 public:
  // All must outlive the engine; metrics may be null.
  CreditEngine(CreditStore& store, CreditProjection& projection, const Policy& policy,
               const Clock& clock, CreditMetrics* metrics = nullptr)
      : store_(store), projection_(projection), policy_(policy), clock_(clock), metrics_(metrics) {}

  // Appends the event priced by the policy, idempotent by request_id (the
  // event id): the same id with the same content returns the stored entry
  // and the current status; with other content ALREADY_EXISTS
  // REQUEST_ID_REUSED. PERMISSION_DENIED EVENT_TYPE_NOT_ALLOWED_FOR_CALLER
  // when the type belongs to another service; FAILED_PRECONDITION
  // IDENTITY_ALREADY_VERIFIED for a second verification; NOT_FOUND
  // REVERSED_EVENT_NOT_FOUND / FAILED_PRECONDITION EVENT_ALREADY_REVERSED for
  // REVERSAL; INVALID_FIELD occurred_at when it is in the future. An event
  // without a reason gets the policy rule's description. Every refusal
  // leaves the score unchanged.
  absl::StatusOr<v1::RecordEventResponse> RecordEvent(const RequestContext& context,
                                                      const v1::RecordEventRequest& request);
  // PENALTY_UNTIL_IN_PAST, INVALID_FIELD until beyond max_duration,
  // PENALTY_EXISTS_FOR_DISPOSITION; idempotent by request_id.
  absl::StatusOr<v1::ApplyPenaltyResponse> ApplyPenalty(const RequestContext& context,
                                                        const v1::ApplyPenaltyRequest& request);
  // PENALTY_NOT_FOUND, PENALTY_NOT_ACTIVE; idempotent by request_id.
  absl::StatusOr<v1::LiftPenaltyResponse> LiftPenalty(const RequestContext& context,
                                                      const v1::LiftPenaltyRequest& request);
  // The status at the clock's now (catching the account up first when due).
  absl::StatusOr<v1::CreditStatus> GetCredit(uint64_t account_id);
  // Newest first, paginated by an opaque token.
  absl::StatusOr<v1::ListCreditHistoryResponse> ListHistory(
      const v1::ListCreditHistoryRequest& request);
  const v1::CreditPolicy& policy() const { return policy_.proto(); }

  // Replays the account's ledger; FAILED_PRECONDITION LEDGER_MISMATCH when
  // its score differs from the materialised row (or LEDGER_INCONSISTENT when
  // the chain itself is broken).
  absl::Status VerifyLedger(uint64_t account_id);
  // Catches up to `limit` accounts with work due and republishes them;
  // returns how many were processed.
  absl::StatusOr<int> CatchUpDue(int limit);
  // What a Rebuild found.
  struct RebuildReport {
    int accounts = 0;
    // Accounts whose ledger does not replay to their materialised row.
    std::vector<uint64_t> mismatched;
  };
  // Recomputes every account under the current policy (recording
  // POLICY_CHANGED where the level moved, catching up what is due), runs
  // the ledger replay check on each, and rewrites the whole Redis
  // projection.
  absl::StatusOr<RebuildReport> Rebuild();

 private:
  // Runs a catch-up transaction on one account when it needs one; returns
  // the status either way.
  absl::StatusOr<v1::CreditStatus> Refresh(uint64_t account_id);
  absl::Status Publish(const v1::CreditStatus& status);
  absl::Status AuditSystemChange(CreditTransaction& tx, AccountUpdate& update,
                                 const std::string& action);

  CreditStore& store_;
  CreditProjection& projection_;
  const Policy& policy_;
  const Clock& clock_;
  CreditMetrics* metrics_;
};

// Whether `service` may record `type` (identity: IDENTITY_VERIFIED; groups:
// GROUP_CREATION_REJECTED; moderation: the report, disposition and REVERSAL
// events). CLEAN_PERIOD belongs to credit alone.
bool ServiceMayRecord(const std::string& service, v1::CreditEventType type);

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_ENGINE_H_
