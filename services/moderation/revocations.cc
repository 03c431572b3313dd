// RevokeDisposition's steps (dispositions.h): the revocation is reserved on
// the disposition's row, lifted where the disposition took effect, then
// recorded with its filing, credit reversal and audit row, so a process that
// dies after lifting leaves a pending revocation DispositionRecovery finishes.
#include <cppconn/resultset.h>

#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/disposition_rows.h"
#include "services/moderation/dispositions.h"
#include "services/moderation/filings.h"

namespace qunzu::moderation {
namespace {

absl::Status RevocationInProgress(uint64_t id) {
  return MakeError(absl::StatusCode::kAborted, "REVOCATION_IN_PROGRESS",
                   "another request is revoking this disposition",
                   {{"disposition_id", absl::StrCat(id)}});
}

absl::Status NotActive(v1::DispositionState state) {
  return MakeError(absl::StatusCode::kFailedPrecondition, "DISPOSITION_NOT_ACTIVE",
                   "the disposition is no longer in force",
                   {{"state", v1::DispositionState_Name(state)}});
}

// The pending (or recorded) revocation on a row already locked: its key
// ("" when none) and reason.
absl::StatusOr<std::pair<std::string, std::string>> RevocationOf(sql::Connection& conn,
                                                                 uint64_t id) {
  std::pair<std::string, std::string> out;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT COALESCE(revoke_key, ''), COALESCE(revoke_request_reason, '') "
                        "FROM dispositions WHERE disposition_id = ?",
                        {id}, [&](const sql::ResultSet& row) {
                          out = {row.getString(1), row.getString(2)};
                          return absl::OkStatus();
                        }));
  return out;
}

}  // namespace

absl::StatusOr<v1::Disposition> DispositionLogic::ReserveRevocation(const std::string& revoke_key,
                                                                    uint64_t id,
                                                                    const std::string& reason,
                                                                    absl::Time now) {
  return WithTransaction(pool_, [&](sql::Connection& conn) -> absl::StatusOr<v1::Disposition> {
    ASSIGN_OR_RETURN(v1::Disposition d, Load(conn, id, true));
    if (d.state() != v1::DISPOSITION_STATE_ACTIVE) return d;
    ASSIGN_OR_RETURN(auto pending, RevocationOf(conn, id));
    if (pending.first == revoke_key) return d;
    if (!pending.first.empty()) return RevocationInProgress(id);
    RETURN_IF_ERROR(Execute(conn,
                            "UPDATE dispositions SET revoke_key = ?, revoke_requested_at = ?, "
                            "revoke_request_reason = ? WHERE disposition_id = ?",
                            {revoke_key, now, reason, id})
                        .status());
    return d;
  });
}

absl::Status DispositionLogic::Lift(const v1::Disposition& d, const std::string& reason) {
  const std::string call_id = absl::StrCat("revoke-", d.disposition_id());
  if (IsGroupKind(d.kind())) {
    groups::v1::SetGroupStateRequest lift;
    lift.set_request_id(call_id);
    lift.set_group_id(d.group_id());
    lift.set_state(groups::v1::GROUP_STATE_ACTIVE);
    lift.set_disposition_id(d.disposition_id());
    lift.set_reason(reason);
    return groups_.SetGroupState(lift).status();
  }
  if (d.credit_penalty_id() == 0) return absl::OkStatus();
  credit::v1::LiftPenaltyRequest lift;
  lift.set_request_id(call_id);
  lift.set_penalty_id(d.credit_penalty_id());
  lift.set_reason(reason);
  absl::StatusOr<credit::v1::LiftPenaltyResponse> lifted = credit_.LiftPenalty(lift);
  if (!lifted.ok() && ErrorReason(lifted.status()) != "PENALTY_NOT_ACTIVE") return lifted.status();
  return absl::OkStatus();
}

absl::StatusOr<DispositionLogic::Recorded> DispositionLogic::RecordRevocation(
    sql::Connection& conn, const RequestContext& context, const std::string& revoke_key,
    uint64_t id, absl::Time now, bool recovered) {
  ASSIGN_OR_RETURN(v1::Disposition d, Load(conn, id, true));
  ASSIGN_OR_RETURN(auto pending, RevocationOf(conn, id));
  if (d.state() == v1::DISPOSITION_STATE_REVOKED && pending.first == revoke_key) {
    return Recorded{std::move(d), false};
  }
  if (d.state() != v1::DISPOSITION_STATE_ACTIVE) return NotActive(d.state());
  if (pending.first != revoke_key) return RevocationInProgress(id);
  ASSIGN_OR_RETURN(RequestKey key, RequestKey::Parse(revoke_key));
  const std::string& reason = pending.second;
  RETURN_IF_ERROR(
      Execute(conn,
              "UPDATE dispositions SET state = ?, revoked_by = ?, revoked_at = ?, "
              "revocation_reason = ? WHERE disposition_id = ?",
              {static_cast<int>(v1::DISPOSITION_STATE_REVOKED), key.principal, now, reason, id})
          .status());
  ASSIGN_OR_RETURN(d, Load(conn, id, true));
  RETURN_IF_ERROR(ReverseDispositionEvent(conn, d, reason, now));
  v1::Filing filing = DispositionFiling(v1::FILING_KIND_DISPOSITION_REVOKED, d);
  ASSIGN_OR_RETURN(uint64_t filing_id, RecordFiling(conn, &filing, now));
  RETURN_IF_ERROR(Execute(conn,
                          "UPDATE dispositions SET revocation_filing_id = ? WHERE "
                          "disposition_id = ?",
                          {filing_id, id})
                      .status());
  d.set_revocation_filing_id(filing_id);
  std::map<std::string, std::string> details = {{"kind", v1::DispositionKind_Name(d.kind())},
                                                {"reason", reason}};
  if (recovered) {
    details["recovered"] = "true";
    details["revoked_by"] = key.principal;
  }
  RETURN_IF_ERROR(AuditChange(conn, context, "DISPOSITION_REVOKED", key.request_id, now,
                              DispositionSubjects(d, filing_id), details));
  return Recorded{std::move(d), true};
}

absl::StatusOr<bool> DispositionLogic::AbandonRevocation(sql::Connection& conn,
                                                         const RequestContext& context,
                                                         const std::string& revoke_key, uint64_t id,
                                                         const absl::Status& why, absl::Time now) {
  absl::StatusOr<v1::Disposition> d = Load(conn, id, true);
  if (!d.ok()) return false;
  ASSIGN_OR_RETURN(auto pending, RevocationOf(conn, id));
  if (d->state() == v1::DISPOSITION_STATE_REVOKED || pending.first != revoke_key) return false;
  ASSIGN_OR_RETURN(RequestKey key, RequestKey::Parse(revoke_key));
  const std::string reason = RefusalReason(why);
  RETURN_IF_ERROR(Execute(conn,
                          "UPDATE dispositions SET revoke_key = NULL, revoke_requested_at = NULL, "
                          "revoke_request_reason = NULL WHERE disposition_id = ?",
                          {id})
                      .status());
  RETURN_IF_ERROR(AuditChange(conn, context, "REVOCATION_ABANDONED", key.request_id, now,
                              AbandonedSubjects(*d),
                              {{"kind", v1::DispositionKind_Name(d->kind())},
                               {"requested_by", key.principal},
                               {"reason", reason}}));
  return true;
}

absl::StatusOr<v1::RevokeDispositionResponse> DispositionLogic::Revoke(
    const RequestContext& context, const v1::RevokeDispositionRequest& request) {
  const std::string revoke_key =
      RequestKey{context.caller.principal, context.method, request.request_id()}.Join();
  const uint64_t id = request.disposition_id();
  const absl::Time now = clock_.Now();
  // 1. Reserve the revocation; 2. lift it where it took effect. One no
  // longer in force goes straight to step 3, which replays or refuses.
  ASSIGN_OR_RETURN(v1::Disposition current,
                   ReserveRevocation(revoke_key, id, request.reason(), now));
  if (current.state() == v1::DISPOSITION_STATE_ACTIVE) {
    absl::Status lifted = Lift(current, request.reason());
    if (!lifted.ok()) {
      if (lifted.code() != absl::StatusCode::kUnavailable) {
        // Refused there: nothing lifted, so nothing stays pending.
        (void)WithTransaction(pool_, [&](sql::Connection& conn) {
          return Execute(conn,
                         "UPDATE dispositions SET revoke_key = NULL, revoke_requested_at = NULL, "
                         "revoke_request_reason = NULL WHERE disposition_id = ? AND revoke_key = ? "
                         "AND state = ?",
                         {id, revoke_key, static_cast<int>(v1::DISPOSITION_STATE_ACTIVE)})
              .status();
        });
      }
      return lifted;
    }
  }
  // 3. Record it, unless the recovery did already.
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  ASSIGN_OR_RETURN(
      v1::RevokeDispositionResponse response, WithTransaction(pool_, [&](sql::Connection& conn) {
        return RunIdempotent<v1::RevokeDispositionResponse>(
            conn, key, request, [&]() -> absl::StatusOr<v1::RevokeDispositionResponse> {
              ASSIGN_OR_RETURN(Recorded recorded,
                               RecordRevocation(conn, context, revoke_key, id, now, false));
              v1::RevokeDispositionResponse out;
              *out.mutable_disposition() = std::move(recorded.disposition);
              return out;
            });
      }));
  PublishRestrictions(current.kind(), current.account_id());
  return response;
}

}  // namespace qunzu::moderation
