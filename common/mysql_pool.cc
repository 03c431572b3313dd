#include "common/mysql_pool.h"

#include <algorithm>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/mysql_internal.h"
#include "common/status.h"

namespace qunzu {
namespace {

using mysql_internal::CloseQuietly;
using mysql_internal::Connect;
using mysql_internal::Guarded;

bool ValidSchemaName(const std::string& schema) {
  return !schema.empty() && schema.size() <= 64 &&
         std::all_of(schema.begin(), schema.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::Status ValidateOptions(const MysqlOptions& o, const std::string& schema, int size) {
  if (!ValidSchemaName(schema)) {
    return InvalidField("schema", "must be 1..64 characters of [A-Za-z0-9_]");
  }
  if (size < 1 || size > 1000) return InvalidField("size", "must be in 1..1000");
  if (o.lock_wait_timeout >= o.read_timeout) {
    return InvalidField("lock_wait_timeout", "must be shorter than read_timeout");
  }
  if (o.host.empty() && o.socket.empty()) return InvalidField("host", "is empty");
  return absl::OkStatus();
}

}  // namespace

MysqlPool::Lease::Lease(MysqlPool* pool, std::unique_ptr<sql::Connection> conn)
    : pool_(pool), conn_(std::move(conn)) {}

MysqlPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {}

MysqlPool::Lease& MysqlPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = other.pool_;
    conn_ = std::move(other.conn_);
    broken_ = other.broken_;
  }
  return *this;
}

MysqlPool::Lease::~Lease() { Return(); }

void MysqlPool::Lease::Return() {
  if (conn_ != nullptr) pool_->Return(std::move(conn_), broken_);
}

MysqlPool::MysqlPool(MysqlOptions options, std::string schema, int size)
    : options_(std::move(options)), schema_(std::move(schema)), size_(size) {}

MysqlPool::~MysqlPool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

absl::StatusOr<std::unique_ptr<MysqlPool>> MysqlPool::Create(const MysqlOptions& options,
                                                             const std::string& schema, int size) {
  RETURN_IF_ERROR(ValidateOptions(options, schema, size));
  ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> conn, Connect(options, ""));
  RETURN_IF_ERROR(Execute(*conn, "CREATE DATABASE IF NOT EXISTS `" + schema +
                                     "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                      .status());
  RETURN_IF_ERROR(Execute(*conn, "USE `" + schema + "`").status());
  std::unique_ptr<MysqlPool> pool(new MysqlPool(options, schema, size));
  {
    absl::MutexLock lock(&pool->mu_);
    pool->idle_.push_back({std::move(conn), absl::Now()});
    pool->open_ = 1;
  }
  return pool;
}

absl::StatusOr<MysqlPool::Lease> MysqlPool::Acquire(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> conn, TakeOrOpen(deadline));
    if (conn != nullptr) return Lease(this, std::move(conn));
  }
}

// Returns an idle connection (validated when it idled long), a new one, or
// nullptr when a stale idle connection was dropped and the caller should try
// again.
absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::TakeOrOpen(absl::Time deadline) {
  Idle idle;
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < size_;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&available), deadline)) {
      return MakeError(
          absl::StatusCode::kUnavailable, kMysqlPoolTimeout,
          absl::StrCat("all ", size_, " MySQL connections to schema ", schema_, " stayed busy"));
    }
    if (idle_.empty()) {
      ++open_;
    } else {
      idle = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (idle.conn == nullptr) {
    absl::StatusOr<std::unique_ptr<sql::Connection>> fresh = Connect(options_, schema_);
    if (!fresh.ok()) Return(nullptr, true);
    return fresh;
  }
  if (absl::Now() - idle.since < options_.validate_idle_after) return std::move(idle.conn);
  bool valid = false;
  try {
    valid = idle.conn->isValid();
  } catch (...) {  // NOLINT(bugprone-empty-catch): an exception means not valid.
  }
  if (valid) return std::move(idle.conn);
  Return(std::move(idle.conn), true);
  return nullptr;
}

void MysqlPool::Return(std::unique_ptr<sql::Connection> conn, bool broken) {
  const bool discard = broken || conn == nullptr || conn->isClosed();
  {
    absl::MutexLock lock(&mu_);
    if (discard) {
      --open_;
    } else {
      idle_.push_back({std::move(conn), absl::Now()});
    }
  }
  // A discarded connection is closed outside the lock: it may block on I/O.
  conn.reset();
}

int MysqlPool::open_connections() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

absl::StatusOr<std::unique_ptr<sql::Connection>> MysqlPool::OpenDedicated() const {
  return Connect(options_, schema_);
}

absl::Status MysqlPool::Ping(absl::Duration timeout) {
  absl::MutexLock lock(&health_mu_);
  if (health_ == nullptr || health_->isClosed()) {
    MysqlOptions quick = options_;
    quick.connect_timeout = quick.read_timeout = quick.write_timeout = timeout;
    quick.lock_wait_timeout = timeout;
    absl::StatusOr<std::unique_ptr<sql::Connection>> conn = Connect(quick, "");
    if (!conn.ok()) return conn.status();
    health_ = *std::move(conn);
  }
  absl::Status status =
      Query(*health_, "SELECT 1", {}, [](const sql::ResultSet&) { return absl::OkStatus(); });
  if (!status.ok()) {
    health_.reset();
    return MakeError(
        absl::StatusCode::kUnavailable, kMysqlUnavailable,
        absl::StrCat("MySQL at ", options_.Endpoint(), " did not answer: ", status.message()));
  }
  return absl::OkStatus();
}

namespace {

// Outcome of one attempt, with whether it failed before any work was done.
struct Attempt {
  absl::Status status;
  bool failed_at_begin = false;
};

absl::Status CallUserCode(sql::Connection& conn,
                          absl::FunctionRef<absl::Status(sql::Connection&)> fn) {
  try {
    return Guarded(conn, "transaction body", [&] { return fn(conn); });
  } catch (...) {
    return MakeError(absl::StatusCode::kInternal, kMysqlError,
                     "transaction body threw a non-standard exception");
  }
}

Attempt RunAttempt(sql::Connection& conn, absl::FunctionRef<absl::Status(sql::Connection&)> fn,
                   Isolation isolation) {
  if (isolation == Isolation::kRepeatableRead) {
    absl::Status status = Execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").status();
    if (!status.ok()) return {status, true};
  }
  if (absl::Status status = Execute(conn, "START TRANSACTION").status(); !status.ok()) {
    return {status, true};
  }
  absl::Status status = CallUserCode(conn, fn);
  if (status.ok()) {
    status = Execute(conn, "COMMIT").status();
    if (status.ok() || conn.isClosed()) {
      if (!status.ok()) {
        status = MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable,
                           absl::StrCat("COMMIT failed on a broken connection; its outcome is "
                                        "unknown: ",
                                        status.message()));
      }
      return {status};
    }
  }
  // ROLLBACK failing means the connection is gone, and so is the transaction.
  if (!conn.isClosed() && !Execute(conn, "ROLLBACK").ok()) CloseQuietly(conn);
  return {status};
}

void PauseBeforeRetry(int attempt) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> jitter_ms(1, 10 * attempt);
  absl::SleepFor(absl::Milliseconds(jitter_ms(rng)));
}

}  // namespace

absl::Status WithTransaction(MysqlPool& pool, absl::FunctionRef<absl::Status(sql::Connection&)> fn,
                             const TransactionOptions& options) {
  absl::Status status;
  for (int attempt = 1; attempt <= std::max(1, options.max_attempts); ++attempt) {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool.Acquire(options.acquire_timeout));
    Attempt result = RunAttempt(*lease, fn, options.isolation);
    status = result.status;
    if (status.ok()) return status;
    const std::string reason = ErrorReason(status);
    const bool stale_connection = result.failed_at_begin && reason == kMysqlUnavailable;
    if (reason != kMysqlConflict && !stale_connection) return status;
    if (reason == kMysqlConflict) PauseBeforeRetry(attempt);
  }
  return status;
}

}  // namespace qunzu
