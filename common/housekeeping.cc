#include "common/housekeeping.h"

#include <prometheus/counter.h>

#include <string>
#include <utility>

#include "common/log.h"
#include "common/mysql.h"
#include "common/status.h"

namespace qunzu {
namespace {

constexpr char kInvalidOptions[] = "INVALID_HOUSEKEEPING_OPTIONS";

// Committed keys only: a key is inserted and completed in its request's own
// transaction, so a row another transaction still holds is invisible here.
constexpr char kDeleteIdempotencyKeys[] =
    "DELETE FROM idempotency_keys WHERE created_at < ? LIMIT ?";
// `delivered_at < ?` never matches NULL: undelivered rows stay.
constexpr char kDeleteDeliveredOutbox[] =
    "DELETE FROM outbox WHERE delivered_at < ? ORDER BY delivered_at LIMIT ?";

absl::Status ValidateOptions(const HousekeepingOptions& o) {
  if (o.idempotency_retention <= absl::ZeroDuration() ||
      o.outbox_retention <= absl::ZeroDuration() || o.interval <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, kInvalidOptions,
                     "housekeeping retentions and interval must be positive");
  }
  if (o.batch < 1 || o.batch > 100000) {
    return MakeError(absl::StatusCode::kInvalidArgument, kInvalidOptions,
                     "housekeeping batch must be 1..100000");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Housekeeper>> Housekeeper::Create(MysqlPool& pool,
                                                                 prometheus::Registry& registry,
                                                                 const Clock& clock,
                                                                 HousekeepingOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  return std::unique_ptr<Housekeeper>(new Housekeeper(pool, registry, clock, options));
}

Housekeeper::Housekeeper(MysqlPool& pool, prometheus::Registry& registry, const Clock& clock,
                         HousekeepingOptions options)
    : pool_(pool), clock_(clock), options_(options) {
  auto& deleted = prometheus::BuildCounter()
                      .Name("qunzu_housekeeping_deleted_total")
                      .Help("Expired rows deleted by housekeeping, by table.")
                      .Register(registry);
  idempotency_deleted_ = &deleted.Add({{"table", "idempotency_keys"}});
  outbox_deleted_ = &deleted.Add({{"table", "outbox"}});
  failures_ = &prometheus::BuildCounter()
                   .Name("qunzu_housekeeping_failures_total")
                   .Help("Housekeeping passes that failed.")
                   .Register(registry)
                   .Add({});
}

Housekeeper::~Housekeeper() { Stop(); }

void Housekeeper::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Housekeeper::Stop() {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void Housekeeper::Loop() {
  while (true) {
    absl::StatusOr<HousekeepingPass> pass = RunOnce();
    if (!pass.ok()) {
      LogWarning("housekeeping_failed", {{"reason", ErrorReason(pass.status())},
                                         {"cause", std::string(pass.status().message())}});
    } else if (pass->idempotency_keys_deleted + pass->outbox_rows_deleted > 0) {
      LogInfo("housekeeping", {{"idempotency_keys_deleted", pass->idempotency_keys_deleted},
                               {"outbox_rows_deleted", pass->outbox_rows_deleted}});
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.interval)) return;
  }
}

absl::StatusOr<int64_t> Housekeeper::DeleteAll(const std::string& statement, absl::Time cutoff,
                                               prometheus::Counter& counted) {
  int64_t total = 0;
  while (true) {
    ASSIGN_OR_RETURN(MysqlPool::Lease conn, pool_.Acquire(absl::Seconds(10)));
    ASSIGN_OR_RETURN(int64_t deleted, Execute(*conn, statement, {cutoff, options_.batch}));
    counted.Increment(static_cast<double>(deleted));
    total += deleted;
    if (deleted < options_.batch) return total;
  }
}

absl::StatusOr<HousekeepingPass> Housekeeper::RunOnce() {
  const absl::Time now = clock_.Now();
  HousekeepingPass pass;
  absl::StatusOr<int64_t> keys = DeleteAll(
      kDeleteIdempotencyKeys, now - options_.idempotency_retention, *idempotency_deleted_);
  if (keys.ok()) pass.idempotency_keys_deleted = *keys;
  absl::StatusOr<int64_t> rows =
      DeleteAll(kDeleteDeliveredOutbox, now - options_.outbox_retention, *outbox_deleted_);
  if (rows.ok()) pass.outbox_rows_deleted = *rows;
  if (!keys.ok() || !rows.ok()) {
    failures_->Increment();
    return keys.ok() ? rows.status() : keys.status();
  }
  return pass;
}

}  // namespace qunzu
