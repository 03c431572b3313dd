// Dispositions on groups (R11.1) and accounts (R11.2), and their
// revocation. Nothing is recorded as applied unless the enforcing service
// applied it: a disposition is first reserved as a PENDING row (invisible to
// reads, keyed by the caller's request_id), then applied at groups
// (SetGroupState) or credit (ApplyPenalty) with an idempotency key derived
// from its id, and only then marked applied in one transaction with its
// filing (R11.5) and audit record (R11.4). A retry with the same request_id
// reuses the reservation, so a call that timed out is never applied twice.
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

 private:
  // Reserves, applies and records `disposition` (as requested).
  absl::StatusOr<v1::Disposition> Dispose(const RequestContext& context,
                                          const google::protobuf::Message& request,
                                          const std::string& request_id,
                                          v1::Disposition disposition);
  absl::Status CheckBasis(const v1::DispositionBasis& basis);
  // What applying returned: credit's penalty, the group's owner.
  struct Applied {
    uint64_t penalty_id = 0;
    uint64_t owner_account_id = 0;
  };
  absl::StatusOr<Applied> Apply(const v1::Disposition& disposition);
  absl::StatusOr<v1::Disposition> Load(sql::Connection& conn, uint64_t id, bool for_update);

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
