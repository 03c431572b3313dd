#include "common/outbox.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace qunzu {
namespace {

constexpr size_t kMaxErrorBytes = 1024;  // outbox.last_error is VARBINARY(1024)

absl::Status ValidateTopic(const std::string& topic) {
  const bool valid =
      !topic.empty() && topic.size() <= 64 && std::all_of(topic.begin(), topic.end(), [](char c) {
        return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '.' || c == '-';
      });
  return valid ? absl::OkStatus() : InvalidField("topic", "must be 1..64 of [a-z0-9_.-]");
}

absl::Status ValidateOptions(const OutboxRelayOptions& o) {
  RETURN_IF_ERROR(ValidateTopic(o.topic));
  if (o.batch_size < 1 || o.batch_size > 1000) {
    return InvalidField("batch_size", "must be in 1..1000");
  }
  if (o.poll_interval <= absl::ZeroDuration()) {
    return InvalidField("poll_interval", "must be positive");
  }
  if (o.min_backoff <= absl::ZeroDuration() || o.max_backoff < o.min_backoff) {
    return InvalidField("min_backoff", "must be positive and at most max_backoff");
  }
  return absl::OkStatus();
}

// "?, ?, ?" for an IN list of n values.
std::string Placeholders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i == 0 ? "?" : ", ?";
  return out;
}

absl::Status CallReceiver(OutboxReceiver& receiver, const std::vector<OutboxRecord>& batch) {
  try {
    return receiver.Deliver(batch);
  } catch (const std::exception& e) {
    return MakeError(absl::StatusCode::kInternal, "OUTBOX_RECEIVER_THREW",
                     std::string("outbox receiver threw: ") + e.what());
  } catch (...) {
    return MakeError(absl::StatusCode::kInternal, "OUTBOX_RECEIVER_THREW",
                     "outbox receiver threw a non-standard exception");
  }
}

// What a failed attempt leaves in outbox.last_error.
std::string ErrorText(const absl::Status& status) {
  std::string text = absl::StrCat(absl::StatusCodeToString(status.code()), " ", ErrorReason(status),
                                  ": ", status.message());
  if (text.size() > kMaxErrorBytes) text.resize(kMaxErrorBytes);
  return text;
}

double UnitRandom() {
  thread_local std::mt19937 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

absl::StatusOr<int64_t> OutboxWriter::Add(sql::Connection& conn, const std::string& topic,
                                          const std::string& payload) const {
  RETURN_IF_ERROR(ValidateTopic(topic));
  // The @@in_transaction guard makes a write outside a transaction insert
  // nothing instead of committing on its own.
  std::optional<int64_t> id;
  RETURN_IF_ERROR(Query(conn,
                        "INSERT INTO outbox (topic, payload, created_at) "
                        "SELECT ?, ?, UTC_TIMESTAMP(6) FROM DUAL WHERE @@in_transaction = 1 "
                        "RETURNING id",
                        {topic, payload}, [&](const sql::ResultSet& row) {
                          id = static_cast<int64_t>(row.getUInt64(1));
                          return absl::OkStatus();
                        }));
  if (!id.has_value()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "OUTBOX_NO_TRANSACTION",
                     "outbox records must be added inside the change's transaction");
  }
  return *id;
}

absl::Duration OutboxBackoff(int failures, absl::Duration min, absl::Duration max,
                             double unit_random) {
  const int doublings = std::clamp(failures - 1, 0, 62);
  absl::Duration wait = max;
  if (absl::ToDoubleSeconds(min) * std::ldexp(1.0, doublings) < absl::ToDoubleSeconds(max)) {
    wait = min * (int64_t{1} << doublings);
  }
  const double jitter = 0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0);
  return std::max(min, wait * jitter);
}

absl::StatusOr<std::unique_ptr<OutboxRelay>> OutboxRelay::Create(MysqlPool& pool,
                                                                 OutboxReceiver& receiver,
                                                                 prometheus::Registry& registry,
                                                                 OutboxRelayOptions options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  const prometheus::Labels labels = {{"topic", options.topic}};
  Metrics metrics;
  try {
    metrics.pending = &prometheus::BuildGauge()
                           .Name("qunzu_outbox_pending")
                           .Help("Outbox records not delivered yet")
                           .Register(registry)
                           .Add(labels);
    metrics.oldest_pending_seconds =
        &prometheus::BuildGauge()
             .Name("qunzu_outbox_oldest_pending_seconds")
             .Help("Age of the oldest undelivered outbox record (the relay's lag)")
             .Register(registry)
             .Add(labels);
    metrics.delivered = &prometheus::BuildCounter()
                             .Name("qunzu_outbox_delivered_total")
                             .Help("Outbox records delivered and acknowledged")
                             .Register(registry)
                             .Add(labels);
    metrics.failures = &prometheus::BuildCounter()
                            .Name("qunzu_outbox_delivery_failures_total")
                            .Help("Outbox deliveries the receiver failed")
                            .Register(registry)
                            .Add(labels);
  } catch (const std::exception& e) {
    return MakeError(absl::StatusCode::kInternal, "METRICS_REGISTRATION_FAILED",
                     std::string("outbox metrics: ") + e.what());
  }
  return std::unique_ptr<OutboxRelay>(new OutboxRelay(pool, receiver, metrics, std::move(options)));
}

OutboxRelay::OutboxRelay(MysqlPool& pool, OutboxReceiver& receiver, Metrics metrics,
                         OutboxRelayOptions options)
    : pool_(pool),
      receiver_(receiver),
      metrics_(metrics),
      options_(std::move(options)),
      lock_name_("qunzu.outbox." + pool.schema() + "." + options_.topic) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  std::thread thread;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    thread = std::move(thread_);
  }
  if (thread.joinable()) thread.join();
}

void OutboxRelay::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

bool OutboxRelay::Pause(absl::Duration wait, bool wakeable) {
  absl::MutexLock lock(&mu_);
  auto done = [&]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || (wakeable && woken_); };
  mu_.AwaitWithTimeout(absl::Condition(&done), wait);
  woken_ = false;
  return !stopping_;
}

void OutboxRelay::Loop() {
  int failures = 0;
  while (true) {
    absl::StatusOr<OutboxPass> pass = RunOnce();
    failures = pass.ok() ? 0 : failures + 1;
    if (pass.ok() && pass->more) {
      if (!Pause(absl::ZeroDuration(), false)) return;
      continue;
    }
    const bool ok = pass.ok();
    const absl::Duration wait =
        ok ? options_.poll_interval
           : OutboxBackoff(failures, options_.min_backoff, options_.max_backoff, UnitRandom());
    if (!Pause(wait, ok)) return;
  }
}

absl::StatusOr<OutboxPass> OutboxRelay::RunOnce() {
  absl::MutexLock lock(&run_mu_);
  if (conn_ == nullptr || conn_->isClosed()) {
    ASSIGN_OR_RETURN(conn_, pool_.OpenDedicated());
  }
  OutboxPass pass;
  ASSIGN_OR_RETURN(pass.leader, GetNamedLock(*conn_, lock_name_, absl::ZeroDuration()));
  absl::Status status;
  if (pass.leader) {
    status = DeliverBatch(pass);
    // A session that cannot release is dropped, which frees the lock.
    if (!conn_->isClosed() && !ReleaseNamedLock(*conn_, lock_name_).ok()) conn_.reset();
  }
  if (conn_ != nullptr && !conn_->isClosed()) RefreshGauges();
  if (!status.ok()) return status;
  return pass;
}

absl::Status OutboxRelay::DeliverBatch(OutboxPass& pass) {
  ASSIGN_OR_RETURN(std::vector<OutboxRecord> batch, ReadBatch());
  if (batch.empty()) return absl::OkStatus();
  absl::Status delivered = CallReceiver(receiver_, batch);
  if (!delivered.ok()) {
    metrics_.failures->Increment();
    // Best effort: the rows stay pending whether or not this bookkeeping
    // lands.
    Mark(batch, delivered).IgnoreError();
    return delivered;
  }
  RETURN_IF_ERROR(Mark(batch, delivered));
  metrics_.delivered->Increment(static_cast<double>(batch.size()));
  pass.delivered = static_cast<int>(batch.size());
  pass.more = pass.delivered == options_.batch_size;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxRecord>> OutboxRelay::ReadBatch() {
  std::vector<OutboxRecord> batch;
  RETURN_IF_ERROR(
      Query(*conn_,
            "SELECT id, payload, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at) FROM outbox "
            "WHERE topic = ? AND delivered_at IS NULL ORDER BY id LIMIT ?",
            {options_.topic, options_.batch_size}, [&](const sql::ResultSet& row) {
              batch.push_back({static_cast<int64_t>(row.getUInt64(1)), options_.topic,
                               row.getString(2), absl::FromUnixMicros(row.getInt64(3))});
              return absl::OkStatus();
            }));
  return batch;
}

// Records the outcome of a delivery attempt on the batch's rows. The id list
// (not an id range) keeps rows committed meanwhile out of it.
absl::Status OutboxRelay::Mark(const std::vector<OutboxRecord>& batch,
                               const absl::Status& outcome) {
  std::vector<SqlValue> params;
  std::string statement;
  if (outcome.ok()) {
    statement =
        "UPDATE outbox SET delivered_at = UTC_TIMESTAMP(6), attempts = attempts + 1, "
        "last_attempt_at = UTC_TIMESTAMP(6), last_error = NULL WHERE delivered_at IS NULL AND id "
        "IN (";
  } else {
    statement =
        "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = UTC_TIMESTAMP(6), "
        "last_error = ? WHERE delivered_at IS NULL AND id IN (";
    params.emplace_back(ErrorText(outcome));
  }
  absl::StrAppend(&statement, Placeholders(batch.size()), ")");
  for (const OutboxRecord& record : batch) params.emplace_back(record.id);
  return Execute(*conn_, statement, params).status();
}

void OutboxRelay::RefreshGauges() {
  Query(*conn_,
        "SELECT COUNT(*), COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created_at), "
        "UTC_TIMESTAMP(6)), 0) FROM outbox WHERE topic = ? AND delivered_at IS NULL",
        {options_.topic},
        [&](const sql::ResultSet& row) {
          metrics_.pending->Set(static_cast<double>(row.getInt64(1)));
          metrics_.oldest_pending_seconds->Set(static_cast<double>(row.getInt64(2)) / 1e6);
          return absl::OkStatus();
        })
      .IgnoreError();
}

}  // namespace qunzu
