// MySQL (MariaDB) access shared by every Qunzu service: the DSN, a bounded
// pool of connections bound to the service's own schema, transactions that
// retry on deadlock, and small prepared-statement helpers.
//
// No sql::SQLException crosses these functions. Failures come back as
// absl::Status with a reason: UNAVAILABLE/MYSQL_UNAVAILABLE (the server cannot
// be reached or the connection broke), ABORTED/MYSQL_CONFLICT (deadlock or
// lock wait timeout; WithTransaction retries these), ALREADY_EXISTS/
// MYSQL_DUPLICATE (a unique key), INTERNAL/MYSQL_ERROR (anything else).
// Passwords never appear in a status message.
//
// Isolation: every connection runs READ COMMITTED. Each statement reads the
// newest committed rows and InnoDB takes no gap locks, so concurrent inserts
// (outbox rows, idempotency keys, members) do not deadlock on gaps. Invariants
// such as caps are therefore guarded by explicit row locks (SELECT ... FOR
// UPDATE on the parent row), never by a snapshot. A transaction that needs one
// consistent snapshot across statements asks for Isolation::kRepeatableRead.
// (READ COMMITTED needs binlog_format ROW or MIXED, MariaDB's default.)
#ifndef QUNZU_COMMON_MYSQL_H_
#define QUNZU_COMMON_MYSQL_H_

#include <cppconn/connection.h>
#include <cppconn/resultset.h>

#include <cstdint>
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

namespace sql {
class PreparedStatement;
class SQLException;
}  // namespace sql

namespace qunzu {

// Reasons attached to MySQL failures (see the file comment).
inline constexpr char kMysqlUnavailable[] = "MYSQL_UNAVAILABLE";
inline constexpr char kMysqlConflict[] = "MYSQL_CONFLICT";
inline constexpr char kMysqlDuplicate[] = "MYSQL_DUPLICATE";
inline constexpr char kMysqlError[] = "MYSQL_ERROR";
// UNAVAILABLE: every pooled connection stayed busy for the whole timeout.
inline constexpr char kMysqlPoolTimeout[] = "MYSQL_POOL_TIMEOUT";

// Where the server is and how long to wait for it.
struct MysqlOptions {
  std::string user;
  std::string password;
  std::string host;
  int port = 3306;
  // When set, connects over this Unix socket instead of host:port.
  std::string socket;
  // Timeouts are applied in whole seconds (rounded up), as the client
  // library takes them.
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(30);
  // innodb_lock_wait_timeout of every session; must stay below read_timeout
  // so the server reports a lock wait (ABORTED, retried) before the client
  // gives up on the connection.
  absl::Duration lock_wait_timeout = absl::Seconds(10);
  // An idle pooled connection older than this is pinged before it is handed
  // out, so one killed by the server's wait_timeout is replaced, not used.
  absl::Duration validate_idle_after = absl::Seconds(30);

  // "host:port", or "unix:<socket>" when a socket is set. For messages.
  std::string Endpoint() const;
  // The DSN with the password replaced by "***". For messages and logs.
  std::string Redacted() const;
};

// Parses `mysql://user:password@host[:port][?socket=/path/to.sock]`. User
// and password may be percent-encoded; the port defaults to 3306; IPv6 hosts
// go in brackets. A DSN names no schema: each service binds its own.
// INVALID_ARGUMENT (reason INVALID_MYSQL_DSN) names the problem without
// echoing the password.
absl::StatusOr<MysqlOptions> ParseMysqlDsn(const std::string& dsn);

// Whether a MySQL error code means the connection itself is unusable
// (CR 2002/2003/2006/2013..., ER 1040, 1045, 1053, 1927...).
bool IsMysqlConnectionError(int code);

// Maps an exception from the connector to a status (see the file comment).
// `context` says what was being done ("insert outbox row").
absl::Status MysqlStatus(const sql::SQLException& e, const std::string& context);

// One bound parameter of a prepared statement. Strings are bytes: binary
// payloads round-trip unchanged through VARBINARY/BLOB columns.
class SqlValue {
 public:
  // NULL.
  SqlValue(std::nullptr_t) {}                                // NOLINT(google-explicit-constructor)
  SqlValue(bool value) : kind_(Kind::kBool), int_(value) {}  // NOLINT
  // Any signed or unsigned integer, bound as a 64-bit integer.
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  SqlValue(T value)  // NOLINT(google-explicit-constructor)
      : kind_(std::is_signed_v<T> ? Kind::kInt : Kind::kUint),
        int_(static_cast<int64_t>(value)),
        uint_(static_cast<uint64_t>(value)) {}
  SqlValue(double value) : kind_(Kind::kDouble), double_(value) {}                  // NOLINT
  SqlValue(std::string value) : kind_(Kind::kString), string_(std::move(value)) {}  // NOLINT
  SqlValue(const char* value) : kind_(Kind::kString), string_(value) {}             // NOLINT
  // A point in time, bound as a UTC DATETIME(6) ("2026-01-02 03:04:05.000006").
  SqlValue(absl::Time value);  // NOLINT(google-explicit-constructor)

  // Binds this value as parameter `index` (1-based) of `statement`.
  void BindTo(sql::PreparedStatement& statement, int index) const;

 private:
  enum class Kind { kNull, kBool, kInt, kUint, kDouble, kString };
  Kind kind_ = Kind::kNull;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0;
  std::string string_;
};

// Parses a DATETIME(6) value read back as text, taking it as UTC.
absl::StatusOr<absl::Time> ParseSqlDateTime(const std::string& text);

// Runs one statement that returns no rows; returns the affected row count.
// Without params it runs as a plain statement (DDL, SET, START TRANSACTION);
// with params as a prepared statement. A connection-level failure closes
// `conn`, so the pool discards it when it is returned.
absl::StatusOr<int64_t> Execute(sql::Connection& conn, const std::string& statement,
                                const std::vector<SqlValue>& params = {});

// Runs a query and calls on_row for each row in order; stops at the first
// non-OK status from on_row and returns it. Reading a column with the wrong
// type inside on_row is caught and returned as a status. Same failure
// contract as Execute.
absl::Status Query(sql::Connection& conn, const std::string& statement,
                   const std::vector<SqlValue>& params,
                   absl::FunctionRef<absl::Status(const sql::ResultSet&)> on_row);

// Takes the server-wide named lock `name` (GET_LOCK) for conn's session,
// waiting up to `timeout` (zero: one try). Returns whether it was taken. The
// wait is split into one-second GET_LOCK calls, so it may exceed the read
// timeout. The server releases the lock when the session ends.
absl::StatusOr<bool> GetNamedLock(sql::Connection& conn, const std::string& name,
                                  absl::Duration timeout);

// Releases a lock taken with GetNamedLock; OK when it was not held.
absl::Status ReleaseNamedLock(sql::Connection& conn, const std::string& name);

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

#endif  // QUNZU_COMMON_MYSQL_H_
