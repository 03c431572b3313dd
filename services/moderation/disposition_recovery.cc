#include "services/moderation/disposition_recovery.h"

#include <cppconn/resultset.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {

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
  RecoveryPass pass;
  for (const auto& [id, request_key] : stale) {
    absl::Status finished = Finish(id, request_key, pass);
    if (!finished.ok()) {
      ++pass.retrying;
      LogWarning("disposition_recovery_retrying",
                 {{"disposition_id", absl::StrCat(id)}, {"error", finished.ToString()}});
    }
  }
  if (metrics_ != nullptr) {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    double left = 0;
    RETURN_IF_ERROR(Query(*lease,
                          "SELECT COUNT(*) FROM dispositions WHERE applied = 0 AND decided_at <= ?",
                          {cutoff}, [&](const sql::ResultSet& row) {
                            left = static_cast<double>(row.getInt64(1));
                            return absl::OkStatus();
                          }));
    metrics_->StaleReservations(left);
  }
  return pass;
}

absl::Status DispositionRecovery::Finish(uint64_t id, const std::string& request_key,
                                         RecoveryPass& pass) {
  // request_key is "principal\nmethod\nrequest_id" (DispositionLogic::Reserve).
  std::vector<std::string> parts = absl::StrSplit(request_key, absl::MaxSplits('\n', 2));
  if (parts.size() != 3) {
    return MakeError(absl::StatusCode::kInternal, "DISPOSITION_RESERVATION_CORRUPT",
                     absl::StrCat("reservation ", id, " has no request key"));
  }
  const std::string& request_id = parts[2];
  const RequestContext context{Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"},
                               "", parts[1]};
  v1::Disposition d;
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
    ASSIGN_OR_RETURN(d, dispositions_.LoadReservation(*lease, id));
  }
  absl::StatusOr<DispositionLogic::Applied> applied = dispositions_.Apply(d);
  if (!applied.ok() && !IsDefinitiveRefusal(applied.status())) return applied.status();
  const absl::Time now = clock_.Now();
  if (!applied.ok()) {
    ASSIGN_OR_RETURN(bool abandoned, WithTransaction(pool_, [&](sql::Connection& conn) {
                       return dispositions_.Abandon(conn, context, request_id, id, applied.status(),
                                                    now);
                     }));
    if (!abandoned) {
      ++pass.raced;
      return absl::OkStatus();
    }
    ++pass.abandoned;
    if (metrics_ != nullptr) metrics_->ReservationAbandoned();
    LogWarning("disposition_abandoned",
               {{"disposition_id", absl::StrCat(id)}, {"error", applied.status().ToString()}});
    return absl::OkStatus();
  }
  absl::StatusOr<DispositionLogic::Recorded> recorded =
      WithTransaction(pool_, [&](sql::Connection& conn) {
        return dispositions_.Record(conn, context, request_id, id, *applied, now, true);
      });
  if (!recorded.ok()) {
    // Abandoned or deleted meanwhile by a caller's retry: nothing to do.
    if (ErrorReason(recorded.status()) == "DISPOSITION_ABANDONED" ||
        ErrorReason(recorded.status()) == "DISPOSITION_NOT_FOUND") {
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
    metrics_->Disposed(d.kind());
  }
  dispositions_.PublishRestrictions(d.kind(), d.account_id());
  LogInfo("disposition_recovered", {{"disposition_id", absl::StrCat(id)}});
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
