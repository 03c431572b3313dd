// MySQL (MariaDB) access shared by every Qunzu service: the DSN, the mapping
// of connector errors to statuses, and small prepared-statement helpers on
// one connection. The pool and transactions are in mysql_pool.h.
//
// No sql::SQLException crosses these functions. Failures come back as
// absl::Status with a reason: UNAVAILABLE/MYSQL_UNAVAILABLE (the server cannot
// be reached or the connection broke), ABORTED/MYSQL_CONFLICT (deadlock or
// lock wait timeout; WithTransaction retries these), ALREADY_EXISTS/
// MYSQL_DUPLICATE (a unique key), INTERNAL/MYSQL_ERROR (anything else).
// Passwords never appear in a status message.
#ifndef QUNZU_COMMON_MYSQL_H_
#define QUNZU_COMMON_MYSQL_H_

#include <cppconn/connection.h>
#include <cppconn/resultset.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// The last AUTO_INCREMENT id (or LAST_INSERT_ID(expr) value) of conn's
// session.
absl::StatusOr<uint64_t> LastInsertId(sql::Connection& conn);

// Takes the server-wide named lock `name` (GET_LOCK) for conn's session,
// waiting up to `timeout` (zero: one try). Returns whether it was taken. The
// wait is split into one-second GET_LOCK calls, so it may exceed the read
// timeout. The server releases the lock when the session ends.
absl::StatusOr<bool> GetNamedLock(sql::Connection& conn, const std::string& name,
                                  absl::Duration timeout);

// Releases a lock taken with GetNamedLock; OK when it was not held.
absl::Status ReleaseNamedLock(sql::Connection& conn, const std::string& name);

}  // namespace qunzu

#endif  // QUNZU_COMMON_MYSQL_H_
