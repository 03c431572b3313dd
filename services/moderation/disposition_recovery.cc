#include "services/moderation/disposition_recovery.h"

#include <cppconn/resultset.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/disposition_rows.h"

namespace qunzu::moderation {

namespace {

// The recovery acts as this service, in the method of the call it finishes.
RequestContext RecoveryContext(const RequestKey& key) {
  return RequestContext{Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"}, "",
                        key.method};
}

}  // namespace

bool IsDefinitiveRefusal(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

void DispositionRecovery::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void DispositionRecovery::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void DispositionRecovery::Loop() {
  for (;;) {
    absl::StatusOr<RecoveryPass> pass = RunOnce();
    if (!pass.ok()) {
      LogWarning("disposition_recovery_failed", {{"error", pass.status().ToString()}});
    } else if (pass->recovered + pass->abandoned + pass->retrying > 0) {
      LogInfo("disposition_recovery_pass", {{"recovered", absl::StrCat(pass->recovered)},
                                            {"abandoned", absl::StrCat(pass->abandoned)},
                                            {"retrying", absl::StrCat(pass->retrying)}});
    }
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.interval)) return;
  }
}

absl::StatusOr<RecoveryPass> DispositionRecovery::RunOnce() {
  const absl::Time cutoff = clock_.Now() - options_.grace;
  std::vector<std::pair<uint64_t, std::string>> stale;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    RETURN_IF_ERROR(Query(*lease,
                          "SELECT disposition_id, request_key FROM dispositions WHERE applied = 0 "
                          "AND decided_at <= ? ORDER BY disposition_id LIMIT ?",
                          {cutoff, options_.batch}, [&](const sql::ResultSet& row) {
                            stale.emplace_back(row.getUInt64(1), row.getString(2));
                            return absl::OkStatus();
                          }));
  }
  std::vector<std::pair<uint64_t, std::string>> revoking;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    RETURN_IF_ERROR(Query(*lease,
                          "SELECT disposition_id, revoke_key FROM dispositions WHERE state = ? "
                          "AND revoke_requested_at <= ? AND applied = 1 "
                          "ORDER BY disposition_id LIMIT ?",
                          {static_cast<int>(v1::DISPOSITION_STATE_ACTIVE), cutoff, options_.batch},
                          [&](const sql::ResultSet& row) {
                            revoking.emplace_back(row.getUInt64(1), row.getString(2));
                            return absl::OkStatus();
                          }));
  }
  RecoveryPass pass;
  auto run = [&](uint64_t id, const absl::Status& finished) {
    if (finished.ok()) return;
    ++pass.retrying;
    LogWarning("disposition_recovery_retrying",
               {{"disposition_id", absl::StrCat(id)}, {"error", finished.ToString()}});
  };
  for (const auto& [id, request_key] : stale) run(id, Finish(id, request_key, pass));
  for (const auto& [id, revoke_key] : revoking) run(id, FinishRevocation(id, revoke_key, pass));
  if (metrics_ != nullptr) {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    double left = 0;
    RETURN_IF_ERROR(Query(*lease,
                          "SELECT (SELECT COUNT(*) FROM dispositions WHERE applied = 0 AND "
                          "decided_at <= ?) + (SELECT COUNT(*) FROM dispositions WHERE state = ? "
                          "AND revoke_requested_at <= ? AND applied = 1)",
                          {cutoff, static_cast<int>(v1::DISPOSITION_STATE_ACTIVE), cutoff},
                          [&](const sql::ResultSet& row) {
                            left = static_cast<double>(row.getInt64(1));
                            return absl::OkStatus();
                          }));
    metrics_->StaleReservations(left);
  }
  return pass;
}

absl::Status DispositionRecovery::FinishRevocation(uint64_t id, const std::string& revoke_key,
                                                   RecoveryPass& pass) {
  ASSIGN_OR_RETURN(RequestKey key, RequestKey::Parse(revoke_key));
  const RequestContext context = RecoveryContext(key);
  v1::Disposition d;
  std::string reason;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    ASSIGN_OR_RETURN(d, dispositions_.LoadReservation(*lease, id));
    RETURN_IF_ERROR(Query(*lease,
                          "SELECT COALESCE(revoke_request_reason, '') FROM dispositions WHERE "
                          "disposition_id = ?",
                          {id}, [&](const sql::ResultSet& row) {
                            reason = row.getString(1);
                            return absl::OkStatus();
                          }));
  }
  // Expired meanwhile: nothing left to lift or record.
  absl::Status lifted =
      d.state() == v1::DISPOSITION_STATE_ACTIVE
          ? dispositions_.Lift(d, reason)
          : MakeError(absl::StatusCode::kFailedPrecondition, "DISPOSITION_NOT_ACTIVE",
                      "the disposition expired before its revocation was recorded");
  return Conclude(
      id, d, lifted,
      [&](sql::Connection& conn, absl::Time now) {
        return dispositions_.AbandonRevocation(conn, context, revoke_key, id, lifted, now);
      },
      [&](sql::Connection& conn, absl::Time now) {
        return dispositions_.RecordRevocation(conn, context, revoke_key, id, now, true);
      },
      false, pass);
}

absl::Status DispositionRecovery::Finish(uint64_t id, const std::string& request_key,
                                         RecoveryPass& pass) {
  ASSIGN_OR_RETURN(RequestKey key, RequestKey::Parse(request_key));
  const RequestContext context = RecoveryContext(key);
  v1::Disposition d;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    ASSIGN_OR_RETURN(d, dispositions_.LoadReservation(*lease, id));
  }
  absl::StatusOr<DispositionLogic::Applied> applied = dispositions_.Apply(d);
  return Conclude(
      id, d, applied.status(),
      [&](sql::Connection& conn, absl::Time now) {
        return dispositions_.Abandon(conn, context, key.request_id, id, applied.status(), now);
      },
      [&](sql::Connection& conn, absl::Time now) {
        return dispositions_.Record(conn, context, key.request_id, id, *applied, now, true);
      },
      true, pass);
}

absl::Status DispositionRecovery::Conclude(uint64_t id, const v1::Disposition& d,
                                           const absl::Status& effect, AbandonStep abandon,
                                           RecordStep record, bool disposed, RecoveryPass& pass) {
  if (!effect.ok() && !IsDefinitiveRefusal(effect)) return effect;
  const absl::Time now = clock_.Now();
  if (!effect.ok()) {
    ASSIGN_OR_RETURN(bool abandoned, WithTransaction(pool_, [&](sql::Connection& conn) {
                       return abandon(conn, now);
                     }));
    if (!abandoned) {
      ++pass.raced;
      return absl::OkStatus();
    }
    ++pass.abandoned;
    if (metrics_ != nullptr) metrics_->ReservationAbandoned();
    LogWarning("disposition_recovery_abandoned",
               {{"disposition_id", absl::StrCat(id)}, {"error", effect.ToString()}});
    return absl::OkStatus();
  }
  absl::StatusOr<DispositionLogic::Recorded> recorded =
      WithTransaction(pool_, [&](sql::Connection& conn) { return record(conn, now); });
  if (!recorded.ok()) {
    // Abandoned, deleted or revoked meanwhile by a caller's call: nothing
    // left to do.
    const std::string why = ErrorReason(recorded.status());
    if (why == "DISPOSITION_ABANDONED" || why == "DISPOSITION_NOT_FOUND" ||
        why == "DISPOSITION_NOT_ACTIVE" || why == "REVOCATION_IN_PROGRESS") {
      ++pass.raced;
      return absl::OkStatus();
    }
    return recorded.status();
  }
  if (!recorded->now) {
    ++pass.raced;
    return absl::OkStatus();
  }
  ++pass.recovered;
  if (metrics_ != nullptr) {
    metrics_->ReservationRecovered();
    if (disposed) metrics_->Disposed(d.kind());
  }
  dispositions_.PublishRestrictions(d.kind(), d.account_id());
  LogInfo("disposition_recovery_finished", {{"disposition_id", absl::StrCat(id)}});
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
