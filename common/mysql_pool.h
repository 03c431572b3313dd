// The pool of MySQL connections every Qunzu service keeps for its own
// schema, and transactions on it that retry on deadlock. Statements run with
// the helpers of mysql.h, under its failure contract.
//
// Isolation: every connection runs READ COMMITTED. Each statement reads the
// newest committed rows and InnoDB takes no gap locks, so concurrent inserts
// (outbox rows, idempotency keys, members) do not deadlock on gaps. Invariants
// such as caps are therefore guarded by explicit row locks (SELECT ... FOR
// UPDATE on the parent row), never by a snapshot. A transaction that needs one
// consistent snapshot across statements asks for Isolation::kRepeatableRead.
// (READ COMMITTED needs binlog_format ROW or MIXED, MariaDB's default.)
#ifndef QUNZU_COMMON_MYSQL_POOL_H_
#define QUNZU_COMMON_MYSQL_POOL_H_

#include <cppconn/connection.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mysql.h"

namespace qunzu {

// UNAVAILABLE: every pooled connection stayed busy for the whole timeout.
inline constexpr char kMysqlPoolTimeout[] = "MYSQL_POOL_TIMEOUT";

// A bounded, thread-safe pool of connections bound to one schema. Every
// connection runs with time_zone '+00:00', READ COMMITTED, strict sql_mode
// and the configured lock wait timeout, in utf8mb4. The pool must outlive
// every Lease it hands out.
class MysqlPool {
 public:
  // A connection borrowed from the pool; returns it when destroyed. A
  // connection that broke (closed after a connection-level error, or marked)
  // is discarded instead and a fresh one is opened on demand.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();

    // The borrowed connection; for one thread at a time, until the lease
    // ends.
    sql::Connection& operator*() const { return *conn_; }
    sql::Connection* operator->() const { return conn_.get(); }
    // Discards the connection on return instead of reusing it, e.g. after
    // leaving session state behind.
    void MarkBroken() { broken_ = true; }

   private:
    friend class MysqlPool;
    Lease(MysqlPool* pool, std::unique_ptr<sql::Connection> conn);
    void Return();

    MysqlPool* pool_;
    std::unique_ptr<sql::Connection> conn_;
    bool broken_ = false;
  };

  // Connects, creates `schema` if missing (utf8mb4, utf8mb4_bin) and keeps
  // that first connection. `schema` is 1..64 of [A-Za-z0-9_]; size 1..1000.
  // UNAVAILABLE naming host:port when the server cannot be reached within
  // connect_timeout; INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<MysqlPool>> Create(const MysqlOptions& options,
                                                           const std::string& schema, int size);
  ~MysqlPool();
  MysqlPool(const MysqlPool&) = delete;
  MysqlPool& operator=(const MysqlPool&) = delete;

  // Borrows a connection, opening one when none is idle and fewer than size
  // are open. UNAVAILABLE/MYSQL_POOL_TIMEOUT when all stay busy for
  // `timeout`; UNAVAILABLE/MYSQL_UNAVAILABLE when a new one cannot connect.
  absl::StatusOr<Lease> Acquire(absl::Duration timeout);

  // A new connection to the schema that is not counted against the pool,
  // for work that holds a session for long (named locks of a relay).
  absl::StatusOr<std::unique_ptr<sql::Connection>> OpenDedicated() const;

  // Health check: SELECT 1 on a connection of its own with all timeouts set
  // to `timeout` (whole seconds), so it answers in about that time even
  // when the pool is exhausted or the server hangs.
  absl::Status Ping(absl::Duration timeout = absl::Seconds(1));

  // The schema every connection is bound to.
  const std::string& schema() const { return schema_; }
  // The options the pool was created with.
  const MysqlOptions& options() const { return options_; }
  // The most connections open at once (Ping's and OpenDedicated's aside).
  int size() const { return size_; }
  // Connections currently open (idle or lent), for tests and metrics.
  int open_connections() const;

 private:
  struct Idle {
    std::unique_ptr<sql::Connection> conn;
    absl::Time since;
  };

  MysqlPool(MysqlOptions options, std::string schema, int size);
  absl::StatusOr<std::unique_ptr<sql::Connection>> TakeOrOpen(absl::Time deadline);
  void Return(std::unique_ptr<sql::Connection> conn, bool broken);

  const MysqlOptions options_;
  const std::string schema_;
  const int size_;
  mutable absl::Mutex mu_;
  std::vector<Idle> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex health_mu_;
  std::unique_ptr<sql::Connection> health_ ABSL_GUARDED_BY(health_mu_);
};

// Isolation level of one transaction (see the file comment for the choice).
enum class Isolation { kReadCommitted, kRepeatableRead };

// How WithTransaction runs.
struct TransactionOptions {
  Isolation isolation = Isolation::kReadCommitted;
  // Attempts in all, when the transaction is aborted by a deadlock or lock
  // wait timeout (MYSQL_CONFLICT) or a stale connection fails at BEGIN.
  int max_attempts = 4;
  absl::Duration acquire_timeout = absl::Seconds(5);
};

// Runs fn inside BEGIN ... COMMIT on a pooled connection. Any non-OK status
// from fn, or an exception escaping it, rolls back and is returned (an
// exception as a status). An attempt aborted with MYSQL_CONFLICT is rolled
// back and fn is run again on a fresh transaction, up to max_attempts, so fn
// must have no effects outside the transaction. A COMMIT that fails on a
// broken connection returns UNAVAILABLE: its outcome is unknown.
absl::Status WithTransaction(MysqlPool& pool, absl::FunctionRef<absl::Status(sql::Connection&)> fn,
                             const TransactionOptions& options = {});

// Whether T is an absl::StatusOr; selects the WithTransaction overload below.
template <typename T>
struct IsStatusOr : std::false_type {};
template <typename T>
struct IsStatusOr<absl::StatusOr<T>> : std::true_type {};

// The same for an fn returning absl::StatusOr<T>: returns the value of the
// attempt that committed.
template <typename F, typename R = std::invoke_result_t<F&, sql::Connection&>,
          std::enable_if_t<IsStatusOr<R>::value, int> = 0>
R WithTransaction(MysqlPool& pool, F&& fn, const TransactionOptions& options = {}) {
  std::optional<typename R::value_type> result;
  absl::Status status = WithTransaction(
      pool,
      [&](sql::Connection& conn) -> absl::Status {
        R attempt = fn(conn);
        if (!attempt.ok()) return attempt.status();
        result = *std::move(attempt);
        return absl::OkStatus();
      },
      options);
  if (!status.ok()) return status;
  return *std::move(result);
}

}  // namespace qunzu

#endif  // QUNZU_COMMON_MYSQL_POOL_H_
