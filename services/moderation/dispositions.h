// Dispositions on groups (R11.1) and accounts (R11.2), and their
// revocation. Nothing is recorded as applied unless the enforcing service
// applied it: a disposition is first reserved as a PENDING row (invisible to
// reads, keyed by the caller's request_id), then applied at groups
// (SetGroupState) or credit (ApplyPenalty) with an idempotency key derived
// from its id, and only then marked applied in one transaction with its
// filing (R11.5) and audit record (R11.4). A retry with the same request_id
// reuses the reservation, so a call that timed out is never applied twice.
// A reservation whose process died between applying and recording is
// finished by DispositionRecovery (disposition_recovery.h) through the same
// steps, which are public for it.
#ifndef QUNZU_SERVICES_MODERATION_DISPOSITIONS_H_
#define QUNZU_SERVICES_MODERATION_DISPOSITIONS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/case_clients.h"
#include "services/moderation/case_metrics.h"
#include "services/moderation/case_projection.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/subjects.h"

namespace qunzu::moderation {

class DispositionLogic {
 public:
  DispositionLogic(MysqlPool& pool, SubjectDirectory& subjects, GroupsClient& groups,
                   CreditClient& credit, CaseProjection& projection, CaseMetrics* metrics,
                   const Clock& clock)
      : pool_(pool),
        subjects_(subjects),
        groups_(groups),
        credit_(credit),
        projection_(projection),
        metrics_(metrics),
        clock_(clock) {}

  // The request is validated. Errors: NOT_FOUND GROUP_NOT_FOUND,
  // ACCOUNT_NOT_FOUND, REPORT_NOT_FOUND, RULE_NOT_FOUND; the enforcing
  // service's own refusals; UNAVAILABLE when it could not be reached
  // (nothing recorded; retry with the same request_id).
  absl::StatusOr<v1::DisposeGroupResponse> DisposeGroup(const RequestContext& context,
                                                        const v1::DisposeGroupRequest& request);
  absl::StatusOr<v1::DisposeAccountResponse> DisposeAccount(
      const RequestContext& context, const v1::DisposeAccountRequest& request);
  // Errors: NOT_FOUND DISPOSITION_NOT_FOUND; FAILED_PRECONDITION
  // DISPOSITION_NOT_ACTIVE.
  absl::StatusOr<v1::RevokeDispositionResponse> Revoke(const RequestContext& context,
                                                       const v1::RevokeDispositionRequest& request);
  absl::StatusOr<v1::GetDispositionResponse> Get(const v1::GetDispositionRequest& request);
  // Newest first.
  absl::StatusOr<v1::ListDispositionsResponse> List(const v1::ListDispositionsRequest& request);

  // The steps of a disposition: Reserve, Apply, Record. Public for
  // DispositionRecovery and the tests that simulate a crash between them.

  // Where a reservation stands (the dispositions.applied column).
  enum class ReservationState { kPending = 0, kApplied = 1, kAbandoned = 2 };
  struct Reservation {
    uint64_t disposition_id = 0;
    ReservationState state = ReservationState::kPending;
  };
  // Reserves `disposition` (decided by the caller at its decided_at) as an
  // invisible PENDING row keyed by the caller's request_id, or finds the
  // reservation of an earlier try. ALREADY_EXISTS REQUEST_ID_REUSED when
  // the request_id was used for another request.
  absl::StatusOr<Reservation> Reserve(const RequestContext& context,
                                      const google::protobuf::Message& request,
                                      const std::string& request_id,
                                      const v1::Disposition& disposition);
  // What applying returned: credit's penalty, the group's owner.
  struct Applied {
    uint64_t penalty_id = 0;
    uint64_t owner_account_id = 0;
  };
  // Applies a reserved disposition where it takes effect, idempotent there
  // by the key "disposition-<id>"; the enforcing service's status as is.
  absl::StatusOr<Applied> Apply(const v1::Disposition& disposition);
  struct Recorded {
    v1::Disposition disposition;
    // False when another (a replica's recovery, a concurrent retry)
    // recorded it first: then nothing was written.
    bool now = false;
  };
  // In conn's open transaction, with the row locked: records reservation
  // `id` as applied with its credit event, filing and audit row (action
  // DISPOSITION_APPLIED by `context`), exactly once however many try.
  // `recovered` marks the audit row as written by the recovery. Errors:
  // NOT_FOUND DISPOSITION_NOT_FOUND (no such reservation);
  // FAILED_PRECONDITION DISPOSITION_ABANDONED.
  absl::StatusOr<Recorded> Record(sql::Connection& conn, const RequestContext& context,
                                  const std::string& request_id, uint64_t id,
                                  const Applied& applied, absl::Time now, bool recovered);
  // In conn's open transaction, with the row locked: marks PENDING
  // reservation `id` ABANDONED with `why` and audits it
  // (DISPOSITION_ABANDONED by `context`). False when it was no longer
  // PENDING (nothing written).
  absl::StatusOr<bool> Abandon(sql::Connection& conn, const RequestContext& context,
                               const std::string& request_id, uint64_t id, const absl::Status& why,
                               absl::Time now);
  // The steps of a revocation: ReserveRevocation, Lift, RecordRevocation.
  // `revoke_key` is "principal\nmethod\nrequest_id" of the revoking call.

  // With the row locked: returns the disposition and, when it is in force,
  // reserves its revocation for `revoke_key` (or finds this key's own).
  // Errors: NOT_FOUND DISPOSITION_NOT_FOUND; ABORTED
  // REVOCATION_IN_PROGRESS while another request's revocation is pending.
  absl::StatusOr<v1::Disposition> ReserveRevocation(const std::string& revoke_key, uint64_t id,
                                                    const std::string& reason, absl::Time now);
  // Lifts `disposition` where it took effect, idempotent there by
  // "revoke-<id>"; the enforcing service's status as is.
  absl::Status Lift(const v1::Disposition& disposition, const std::string& reason);
  // In conn's open transaction, with the row locked: records the revocation
  // reserved under `revoke_key` (revoked by its principal, for its reason)
  // with its credit reversal, filing and audit row (DISPOSITION_REVOKED by
  // `context`), exactly once; replays it when already recorded for that
  // key. Errors: NOT_FOUND DISPOSITION_NOT_FOUND; FAILED_PRECONDITION
  // DISPOSITION_NOT_ACTIVE; ABORTED REVOCATION_IN_PROGRESS.
  absl::StatusOr<Recorded> RecordRevocation(sql::Connection& conn, const RequestContext& context,
                                            const std::string& revoke_key, uint64_t id,
                                            absl::Time now, bool recovered);
  // In conn's open transaction: drops the pending revocation of
  // `revoke_key` (the disposition stays in force) and audits why
  // (REVOCATION_ABANDONED by `context`). False when it was no longer pending.
  absl::StatusOr<bool> AbandonRevocation(sql::Connection& conn, const RequestContext& context,
                                         const std::string& revoke_key, uint64_t id,
                                         const absl::Status& why, absl::Time now);

  // A reservation in any state (for the recovery), as its disposition.
  absl::StatusOr<v1::Disposition> LoadReservation(sql::Connection& conn, uint64_t id);
  // Refreshes the restriction projection after `kind` changed for `account`
  // (logged, not failed: the background reconcile repairs it).
  void PublishRestrictions(v1::DispositionKind kind, uint64_t account);

 private:
  // Reserves, applies and records `disposition` (as requested).
  absl::StatusOr<v1::Disposition> Dispose(const RequestContext& context,
                                          const google::protobuf::Message& request,
                                          const std::string& request_id,
                                          v1::Disposition disposition);
  absl::Status CheckBasis(const v1::DispositionBasis& basis);
  absl::StatusOr<v1::Disposition> Load(sql::Connection& conn, uint64_t id, bool for_update,
                                       bool applied_only = true);

  MysqlPool& pool_;
  SubjectDirectory& subjects_;
  GroupsClient& groups_;
  CreditClient& credit_;
  CaseProjection& projection_;
  CaseMetrics* metrics_;
  const Clock& clock_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_DISPOSITIONS_H_
