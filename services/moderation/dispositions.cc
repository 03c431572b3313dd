#include "services/moderation/dispositions.h"

#include <cppconn/resultset.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/disposition_rows.h"
#include "services/moderation/filings.h"

namespace qunzu::moderation {

absl::StatusOr<v1::Disposition> DispositionLogic::Load(sql::Connection& conn, uint64_t id,
                                                       bool for_update, bool applied_only) {
  std::optional<v1::Disposition> d;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(Query(
      conn,
      absl::StrCat("SELECT ", kDispositionColumns, " FROM dispositions WHERE disposition_id = ?",
                   applied_only ? " AND applied = 1" : "", for_update ? " FOR UPDATE" : ""),
      {id}, [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(d, ReadDispositionRow(row, now));
        return absl::OkStatus();
      }));
  if (!d) return DispositionNotFound(id);
  return *std::move(d);
}

absl::StatusOr<v1::Disposition> DispositionLogic::LoadReservation(sql::Connection& conn,
                                                                  uint64_t id) {
  return Load(conn, id, false, false);
}

void DispositionLogic::PublishRestrictions(v1::DispositionKind kind, uint64_t account) {
  if (!IsRestriction(kind)) return;
  absl::Status published = projection_.PublishRestrictions(account);
  if (!published.ok()) {
    LogWarning("restriction_projection_failed", {{"error", published.ToString()}});
  }
}

absl::Status DispositionLogic::CheckBasis(const v1::DispositionBasis& basis) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  auto exists = [&](const char* sql, uint64_t id) -> absl::StatusOr<bool> {
    bool found = false;
    RETURN_IF_ERROR(Query(*lease, sql, {id}, [&](const sql::ResultSet&) {
      found = true;
      return absl::OkStatus();
    }));
    return found;
  };
  for (uint64_t id : basis.report_ids()) {
    ASSIGN_OR_RETURN(bool found, exists("SELECT 1 FROM reports WHERE report_id = ?", id));
    if (!found) {
      return MakeError(absl::StatusCode::kNotFound, "REPORT_NOT_FOUND",
                       absl::StrCat("the basis names no report ", id),
                       {{"report_id", absl::StrCat(id)}});
    }
  }
  for (uint64_t id : basis.rule_ids()) {
    ASSIGN_OR_RETURN(bool found,
                     exists("SELECT 1 FROM rule_set_rules WHERE rule_id = ? LIMIT 1", id));
    if (!found) {
      return MakeError(absl::StatusCode::kNotFound, "RULE_NOT_FOUND",
                       absl::StrCat("the basis names no rule ", id),
                       {{"rule_id", absl::StrCat(id)}});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DispositionLogic::Applied> DispositionLogic::Apply(const v1::Disposition& d) {
  const std::string request_id = absl::StrCat("disposition-", d.disposition_id());
  if (IsGroupKind(d.kind())) {
    groups::v1::SetGroupStateRequest request;
    request.set_request_id(request_id);
    request.set_group_id(d.group_id());
    request.set_state(d.kind() == v1::DISPOSITION_KIND_WARN ? groups::v1::GROUP_STATE_WARNED
                      : d.kind() == v1::DISPOSITION_KIND_SUSPEND_POSTING
                          ? groups::v1::GROUP_STATE_POSTING_SUSPENDED
                          : groups::v1::GROUP_STATE_CLOSED);
    if (d.has_until()) *request.mutable_until() = d.until();
    request.set_disposition_id(d.disposition_id());
    request.set_reason(d.statement_of_reasons());
    ASSIGN_OR_RETURN(groups::v1::SetGroupStateResponse response, groups_.SetGroupState(request));
    return Applied{0, response.group().owner_account_id()};
  }
  credit::v1::ApplyPenaltyRequest request;
  request.set_request_id(request_id);
  request.set_account_id(d.account_id());
  request.set_kind(
      d.kind() == v1::DISPOSITION_KIND_CREDIT_DOWNGRADE ? credit::v1::PENALTY_KIND_LEVEL_DOWNGRADE
      : d.kind() == v1::DISPOSITION_KIND_SUSPEND_ADMIN  ? credit::v1::PENALTY_KIND_SUSPEND_ADMIN
                                                        : credit::v1::PENALTY_KIND_REVOKE_CREATION);
  request.set_levels(d.levels());
  *request.mutable_until() = d.until();
  request.set_disposition_id(d.disposition_id());
  request.set_reason(d.statement_of_reasons());
  ASSIGN_OR_RETURN(credit::v1::ApplyPenaltyResponse response, credit_.ApplyPenalty(request));
  return Applied{response.penalty().penalty_id(), d.account_id()};
}

absl::StatusOr<DispositionLogic::Reservation> DispositionLogic::Reserve(
    const RequestContext& context, const google::protobuf::Message& request,
    const std::string& request_id, const v1::Disposition& d) {
  const std::string request_key =
      RequestKey{context.caller.principal, context.method, request_id}.Join();
  const std::string fingerprint = FingerprintMessage(request);
  return WithTransaction(pool_, [&](sql::Connection& conn) -> absl::StatusOr<Reservation> {
    std::optional<Reservation> found;
    std::string stored;
    RETURN_IF_ERROR(
        Query(conn,
              "SELECT disposition_id, applied, fingerprint FROM dispositions WHERE "
              "request_key = ? FOR UPDATE",
              {request_key}, [&](const sql::ResultSet& row) {
                found = Reservation{row.getUInt64(1), static_cast<ReservationState>(row.getInt(2))};
                stored = row.getString(3);
                return absl::OkStatus();
              }));
    if (found) {
      if (stored != fingerprint) {
        return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                         "request_id was used for another request", {{"request_id", request_id}});
      }
      return *found;
    }
    std::vector<uint64_t> reports(d.basis().report_ids().begin(), d.basis().report_ids().end());
    std::vector<uint64_t> rules(d.basis().rule_ids().begin(), d.basis().rule_ids().end());
    RETURN_IF_ERROR(
        Execute(conn,
                "INSERT INTO dispositions (request_key, fingerprint, applied, kind, group_id, "
                "account_id, until_at, levels, basis_report_ids, basis_rule_ids, statement, "
                "decided_by, decided_at, state, revocation_reason) "
                "VALUES (?,?,0,?,?,?,?,?,?,?,?,?,?,?,'')",
                {request_key, fingerprint, static_cast<int>(d.kind()), d.group_id(), d.account_id(),
                 d.has_until() ? SqlValue(FromProto(d.until())) : SqlValue(nullptr), d.levels(),
                 JoinIds(reports), JoinIds(rules), d.statement_of_reasons(), d.decided_by(),
                 FromProto(d.decided_at()), static_cast<int>(v1::DISPOSITION_STATE_ACTIVE)})
            .status());
    ASSIGN_OR_RETURN(uint64_t id, LastInsertId(conn));
    return Reservation{id, ReservationState::kPending};
  });
}

namespace {

// The reservation's state under a row lock; nullopt when it is gone.
absl::StatusOr<std::optional<std::pair<DispositionLogic::ReservationState, std::string>>>
LockReservation(sql::Connection& conn, uint64_t id) {
  std::optional<std::pair<DispositionLogic::ReservationState, std::string>> found;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT applied, COALESCE(abandon_reason, '') FROM dispositions WHERE "
                        "disposition_id = ? FOR UPDATE",
                        {id}, [&](const sql::ResultSet& row) {
                          found = std::make_pair(
                              static_cast<DispositionLogic::ReservationState>(row.getInt(1)),
                              std::string(row.getString(2)));
                          return absl::OkStatus();
                        }));
  return found;
}

}  // namespace

absl::StatusOr<DispositionLogic::Recorded> DispositionLogic::Record(
    sql::Connection& conn, const RequestContext& context, const std::string& request_id,
    uint64_t id, const Applied& applied, absl::Time now, bool recovered) {
  ASSIGN_OR_RETURN(auto reservation, LockReservation(conn, id));
  if (!reservation) return DispositionNotFound(id);
  if (reservation->first == ReservationState::kAbandoned) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "DISPOSITION_ABANDONED",
        absl::StrCat("the enforcing service refused it for good: ", reservation->second),
        {{"disposition_id", absl::StrCat(id)}});
  }
  if (reservation->first == ReservationState::kApplied) {
    ASSIGN_OR_RETURN(v1::Disposition stored, Load(conn, id, false));
    return Recorded{std::move(stored), false};
  }
  RETURN_IF_ERROR(Execute(conn,
                          "UPDATE dispositions SET applied = 1, credit_penalty_id = ? "
                          "WHERE disposition_id = ? AND applied = 0",
                          {applied.penalty_id, id})
                      .status());
  ASSIGN_OR_RETURN(v1::Disposition stored, Load(conn, id, true));
  RETURN_IF_ERROR(RecordDispositionEvent(conn, stored, applied.owner_account_id, now));
  v1::Filing filing = DispositionFiling(v1::FILING_KIND_DISPOSITION, stored);
  ASSIGN_OR_RETURN(uint64_t filing_id, RecordFiling(conn, &filing, now));
  RETURN_IF_ERROR(Execute(conn, "UPDATE dispositions SET filing_id = ? WHERE disposition_id = ?",
                          {filing_id, id})
                      .status());
  stored.set_filing_id(filing_id);
  std::map<std::string, std::string> details = {
      {"kind", v1::DispositionKind_Name(stored.kind())},
      {"statement_of_reasons", stored.statement_of_reasons()},
      {"basis_rule_ids",
       JoinIds({stored.basis().rule_ids().begin(), stored.basis().rule_ids().end()})},
      {"until", stored.has_until()
                    ? absl::FormatTime(FromProto(stored.until()), absl::UTCTimeZone())
                    : std::string()}};
  if (recovered) {
    details["recovered"] = "true";
    details["decided_by"] = stored.decided_by();
  }
  RETURN_IF_ERROR(AuditChange(conn, context, "DISPOSITION_APPLIED", request_id, now,
                              DispositionSubjects(stored, filing_id), details));
  return Recorded{std::move(stored), true};
}

absl::StatusOr<bool> DispositionLogic::Abandon(sql::Connection& conn, const RequestContext& context,
                                               const std::string& request_id, uint64_t id,
                                               const absl::Status& why, absl::Time now) {
  ASSIGN_OR_RETURN(auto reservation, LockReservation(conn, id));
  if (!reservation || reservation->first != ReservationState::kPending) return false;
  const std::string reason = RefusalReason(why);
  RETURN_IF_ERROR(Execute(conn,
                          "UPDATE dispositions SET applied = 2, abandon_reason = ? WHERE "
                          "disposition_id = ?",
                          {reason, id})
                      .status());
  ASSIGN_OR_RETURN(v1::Disposition d, Load(conn, id, false, false));
  RETURN_IF_ERROR(AuditChange(conn, context, "DISPOSITION_ABANDONED", request_id, now,
                              AbandonedSubjects(d),
                              {{"kind", v1::DispositionKind_Name(d.kind())},
                               {"decided_by", d.decided_by()},
                               {"reason", reason}}));
  return true;
}

absl::StatusOr<v1::Disposition> DispositionLogic::Dispose(const RequestContext& context,
                                                          const google::protobuf::Message& request,
                                                          const std::string& request_id,
                                                          v1::Disposition d) {
  const bool group = IsGroupKind(d.kind());
  ASSIGN_OR_RETURN(bool exists, group ? subjects_.GroupExists(d.group_id())
                                      : subjects_.AccountExists(d.account_id()));
  if (!exists) {
    return MakeError(absl::StatusCode::kNotFound, group ? "GROUP_NOT_FOUND" : "ACCOUNT_NOT_FOUND",
                     group ? "no such group" : "no such account");
  }
  RETURN_IF_ERROR(CheckBasis(d.basis()));
  const absl::Time now = clock_.Now();
  d.set_decided_by(context.caller.principal);
  *d.mutable_decided_at() = ToProto(now);
  d.set_state(v1::DISPOSITION_STATE_ACTIVE);
  // As stored (DATETIME(6)), so the recovery sends the enforcing service the
  // very request this call sends.
  if (d.has_until()) {
    *d.mutable_until() = ToProto(absl::FromUnixMicros(absl::ToUnixMicros(FromProto(d.until()))));
  }
  // 1. Reserve: a PENDING row gives the id the enforcing service is called with.
  ASSIGN_OR_RETURN(Reservation reservation, Reserve(context, request, request_id, d));
  d.set_disposition_id(reservation.disposition_id);
  // 2. Apply where it takes effect (idempotent there by the disposition id).
  // A reservation already recorded (or abandoned) goes straight to step 3,
  // which replays it (or refuses).
  Applied result;
  if (reservation.state == ReservationState::kPending) {
    absl::StatusOr<Applied> applied = Apply(d);
    if (!applied.ok()) {
      if (applied.status().code() != absl::StatusCode::kUnavailable) {
        // Refused there: nothing applied, so nothing stays reserved.
        (void)WithTransaction(pool_, [&](sql::Connection& conn) {
          return Execute(conn, "DELETE FROM dispositions WHERE disposition_id = ? AND applied = 0",
                         {d.disposition_id()})
              .status();
        });
      }
      return applied.status();
    }
    result = *applied;
  }
  // 3. Record it as applied, with its filing and audit record, unless the
  // recovery (of this or another replica) did already.
  const IdempotencyKey key{context.caller.principal, context.method, request_id};
  bool recorded_now = false;
  ASSIGN_OR_RETURN(
      v1::GetDispositionResponse response, WithTransaction(pool_, [&](sql::Connection& conn) {
        recorded_now = false;
        return RunIdempotent<v1::GetDispositionResponse>(
            conn, key, request, [&]() -> absl::StatusOr<v1::GetDispositionResponse> {
              ASSIGN_OR_RETURN(Recorded recorded, Record(conn, context, request_id,
                                                         d.disposition_id(), result, now, false));
              recorded_now = recorded.now;
              v1::GetDispositionResponse out;
              *out.mutable_disposition() = std::move(recorded.disposition);
              return out;
            });
      }));
  if (recorded_now && metrics_ != nullptr) metrics_->Disposed(d.kind());
  PublishRestrictions(d.kind(), d.account_id());
  return response.disposition();
}

absl::StatusOr<v1::DisposeGroupResponse> DispositionLogic::DisposeGroup(
    const RequestContext& context, const v1::DisposeGroupRequest& request) {
  v1::Disposition d;
  d.set_kind(request.kind());
  d.set_group_id(request.group_id());
  if (request.has_until()) *d.mutable_until() = request.until();
  *d.mutable_basis() = request.basis();
  d.set_statement_of_reasons(request.statement_of_reasons());
  v1::DisposeGroupResponse response;
  ASSIGN_OR_RETURN(*response.mutable_disposition(),
                   Dispose(context, request, request.request_id(), std::move(d)));
  return response;
}

absl::StatusOr<v1::DisposeAccountResponse> DispositionLogic::DisposeAccount(
    const RequestContext& context, const v1::DisposeAccountRequest& request) {
  v1::Disposition d;
  d.set_kind(request.kind());
  d.set_account_id(request.account_id());
  d.set_levels(request.levels());
  *d.mutable_until() = request.until();
  *d.mutable_basis() = request.basis();
  d.set_statement_of_reasons(request.statement_of_reasons());
  v1::DisposeAccountResponse response;
  ASSIGN_OR_RETURN(*response.mutable_disposition(),
                   Dispose(context, request, request.request_id(), std::move(d)));
  return response;
}

absl::StatusOr<v1::GetDispositionResponse> DispositionLogic::Get(
    const v1::GetDispositionRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  v1::GetDispositionResponse response;
  ASSIGN_OR_RETURN(*response.mutable_disposition(), Load(*lease, request.disposition_id(), false));
  return response;
}

absl::StatusOr<v1::ListDispositionsResponse> DispositionLogic::List(
    const v1::ListDispositionsRequest& request) {
  ASSIGN_OR_RETURN(PageWindow window, ReadPage(request.page()));
  const absl::Time now = clock_.Now();
  std::string where = "applied = 1";
  std::vector<SqlValue> params;
  auto add = [&](const char* clause, std::vector<SqlValue> values) {
    absl::StrAppend(&where, " AND ", clause);
    params.insert(params.end(), values.begin(), values.end());
  };
  const int active = v1::DISPOSITION_STATE_ACTIVE;
  if (request.kind() != 0) add("kind = ?", {static_cast<int>(request.kind())});
  if (request.state() == v1::DISPOSITION_STATE_ACTIVE) {
    add("state = ? AND (until_at IS NULL OR until_at > ?)", {active, now});
  } else if (request.state() == v1::DISPOSITION_STATE_EXPIRED) {
    add("state = ? AND until_at <= ?", {active, now});
  } else if (request.state() == v1::DISPOSITION_STATE_REVOKED) {
    add("state = ?", {static_cast<int>(v1::DISPOSITION_STATE_REVOKED)});
  }
  if (request.group_id() != 0) add("group_id = ?", {request.group_id()});
  if (request.account_id() != 0) add("account_id = ?", {request.account_id()});
  if (request.report_id() != 0) {
    add("FIND_IN_SET(?, basis_report_ids) > 0", {absl::StrCat(request.report_id())});
  }
  if (!request.decided_by().empty()) add("decided_by = ?", {request.decided_by()});
  if (request.has_decided_after()) add("decided_at >= ?", {FromProto(request.decided_after())});
  if (request.has_decided_before()) add("decided_at < ?", {FromProto(request.decided_before())});
  v1::ListDispositionsResponse response;
  RETURN_IF_ERROR(
      QueryPage(pool_, absl::StrCat("SELECT ", kDispositionColumns, " FROM dispositions"), where,
                std::move(params), "disposition_id DESC", window, response.mutable_page(),
                [&](const sql::ResultSet& row) -> absl::Status {
                  ASSIGN_OR_RETURN(*response.add_dispositions(), ReadDispositionRow(row, now));
                  return absl::OkStatus();
                }));
  return response;
}

}  // namespace qunzu::moderation
