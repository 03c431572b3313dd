#include "common/mysql.h"

#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/mysql_internal.h"
#include "common/status.h"

namespace qunzu {
namespace {

using mysql_internal::Guarded;

constexpr char kDsnPrefix[] = "mysql://";
constexpr char kSqlMode[] =
    "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "NO_ENGINE_SUBSTITUTION";

sql::Driver* Driver() {
  // Constructing the driver initialises the client library, which must not
  // race with the first connect.
  static sql::Driver* driver = sql::mysql::get_mysql_driver_instance();
  return driver;
}

int WholeSeconds(absl::Duration d) {
  return std::max(1, static_cast<int>(std::ceil(absl::ToDoubleSeconds(d))));
}

absl::Status DsnError(const std::string& problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_MYSQL_DSN",
                   "MySQL DSN: " + problem + " (expected mysql://user:password@host:port)");
}

absl::StatusOr<std::string> PercentDecode(const std::string& in, const std::string& part) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
        !absl::ascii_isxdigit(in[i + 2])) {
      return DsnError("bad %-escape in " + part);
    }
    out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

absl::Status ParseHostPort(const std::string& hostport, MysqlOptions& options) {
  std::string port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos) return DsnError("unterminated [IPv6] host");
    options.host = hostport.substr(1, close - 1);
    std::string rest = hostport.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return DsnError("unexpected text after [IPv6] host");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    size_t colon = hostport.rfind(':');
    options.host = hostport.substr(0, colon);
    if (colon != std::string::npos) port = hostport.substr(colon + 1);
  }
  if (options.host.empty()) return DsnError("missing host");
  if (options.host.find_first_of("/@?# ") != std::string::npos) {
    return DsnError("host contains a character not allowed in a host name (a schema path?)");
  }
  if (hostport.back() == ':') return DsnError("empty port");
  if (port.empty()) return absl::OkStatus();
  if (!std::all_of(port.begin(), port.end(), absl::ascii_isdigit) || port.size() > 5 ||
      !absl::SimpleAtoi(port, &options.port) || options.port < 1 || options.port > 65535) {
    return DsnError("port is not a number in 1..65535");
  }
  return absl::OkStatus();
}

absl::Status ParseDsnQuery(const std::string& query, MysqlOptions& options) {
  for (absl::string_view param : absl::StrSplit(query, '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.first != "socket") return DsnError("unknown parameter \"" + kv.first + "\"");
    ASSIGN_OR_RETURN(options.socket, PercentDecode(kv.second, "socket"));
    if (options.socket.empty() || options.socket[0] != '/') {
      return DsnError("socket must be an absolute path");
    }
  }
  return absl::OkStatus();
}

std::string Summary(const std::string& statement) {
  constexpr size_t kMax = 80;
  return statement.size() <= kMax ? statement : statement.substr(0, kMax) + "...";
}

std::unique_ptr<sql::PreparedStatement> Prepare(sql::Connection& conn, const std::string& statement,
                                                const std::vector<SqlValue>& params) {
  std::unique_ptr<sql::PreparedStatement> prepared(conn.prepareStatement(statement));
  for (size_t i = 0; i < params.size(); ++i) params[i].BindTo(*prepared, static_cast<int>(i + 1));
  return prepared;
}

}  // namespace

namespace mysql_internal {

void CloseQuietly(sql::Connection& conn) {
  try {
    conn.close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): closing a dead connection may throw.
  }
}

absl::Status Guarded(sql::Connection& conn, const std::string& context,
                     absl::FunctionRef<absl::Status()> body) {
  try {
    return body();
  } catch (const sql::SQLException& e) {
    if (conn.isClosed()) {
      return MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable,
                       context + ": the connection was closed after an earlier failure");
    }
    if (IsMysqlConnectionError(e.getErrorCode())) CloseQuietly(conn);
    return MysqlStatus(e, context);
  } catch (const std::exception& e) {
    return MakeError(absl::StatusCode::kInternal, kMysqlError, context + ": " + e.what());
  }
}

absl::StatusOr<std::unique_ptr<sql::Connection>> Connect(const MysqlOptions& o,
                                                         const std::string& schema) {
  sql::ConnectOptionsMap props;
  props["hostName"] = sql::SQLString(o.socket.empty() ? o.host : "localhost");
  if (!o.socket.empty()) props["socket"] = sql::SQLString(o.socket);
  props["port"] = o.port;
  props["userName"] = sql::SQLString(o.user);
  props["password"] = sql::SQLString(o.password);
  props["OPT_CONNECT_TIMEOUT"] = WholeSeconds(o.connect_timeout);
  props["OPT_READ_TIMEOUT"] = WholeSeconds(o.read_timeout);
  props["OPT_WRITE_TIMEOUT"] = WholeSeconds(o.write_timeout);
  // A silent reconnect would lose the session's transaction and settings.
  props["OPT_RECONNECT"] = false;
  props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  props["characterSetResults"] = sql::SQLString("utf8mb4");
  if (!schema.empty()) props["schema"] = sql::SQLString(schema);
  std::unique_ptr<sql::Connection> conn;
  try {
    conn.reset(Driver()->connect(props));
  } catch (const sql::SQLException& e) {
    return MysqlStatus(e, "connect to MySQL at " + o.Endpoint());
  } catch (const std::exception& e) {
    return MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable,
                     "connect to MySQL at " + o.Endpoint() + ": " + e.what());
  }
  std::string setup = absl::StrCat("SET time_zone = '+00:00', tx_isolation = 'READ-COMMITTED', ",
                                   "innodb_lock_wait_timeout = ", WholeSeconds(o.lock_wait_timeout),
                                   ", sql_mode = '", kSqlMode, "'");
  RETURN_IF_ERROR(Execute(*conn, setup).status());
  return conn;
}

}  // namespace mysql_internal

std::string MysqlOptions::Endpoint() const {
  if (!socket.empty()) return "unix:" + socket;
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string MysqlOptions::Redacted() const {
  std::string hostpart = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string out =
      absl::StrCat(kDsnPrefix, user, password.empty() ? "" : ":***", "@", hostpart, ":", port);
  if (!socket.empty()) absl::StrAppend(&out, "?socket=", socket);
  return out;
}

absl::StatusOr<MysqlOptions> ParseMysqlDsn(const std::string& dsn) {
  if (dsn.rfind(kDsnPrefix, 0) != 0) return DsnError("must start with mysql://");
  std::string rest = dsn.substr(sizeof(kDsnPrefix) - 1);
  MysqlOptions options;
  // The query starts after the last '@', so a password may hold '?'.
  const size_t at = rest.rfind('@');
  if (at == std::string::npos) return DsnError("missing user@ before the host");
  const size_t question = rest.find('?', at);
  if (question != std::string::npos) {
    RETURN_IF_ERROR(ParseDsnQuery(rest.substr(question + 1), options));
    rest.resize(question);
  }
  std::string userinfo = rest.substr(0, at);
  size_t colon = userinfo.find(':');
  ASSIGN_OR_RETURN(options.user, PercentDecode(userinfo.substr(0, colon), "user"));
  if (colon != std::string::npos) {
    ASSIGN_OR_RETURN(options.password, PercentDecode(userinfo.substr(colon + 1), "password"));
  }
  if (options.user.empty()) return DsnError("missing user");
  RETURN_IF_ERROR(ParseHostPort(rest.substr(at + 1), options));
  return options;
}

bool IsMysqlConnectionError(int code) {
  // Too many connections (1040), host name, handshake or access denied
  // (1042-1045), shutdown in progress (1053), host blocked or not allowed
  // (1129, 1130), aborted connection and network errors (1152, 1158-1161),
  // connection killed (1927, MariaDB), idle disconnect (4031, MySQL 8).
  static constexpr int kServerCodes[] = {1040, 1042, 1043, 1044, 1045, 1053, 1129, 1130,
                                         1152, 1158, 1159, 1160, 1161, 1927, 4031};
  // CR_* client errors (2000-2999): cannot connect, server gone away, lost.
  return (code >= 2000 && code < 3000) ||
         std::find(std::begin(kServerCodes), std::end(kServerCodes), code) !=
             std::end(kServerCodes);
}

absl::Status MysqlStatus(const sql::SQLException& e, const std::string& context) {
  const int code = e.getErrorCode();
  std::string message = absl::StrCat(context, ": ", e.what(), " (MySQL error ", code, ")");
  std::map<std::string, std::string> metadata = {{"mysql_error", std::to_string(code)}};
  if (IsMysqlConnectionError(code)) {
    return MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable, message, metadata);
  }
  switch (code) {
    case 1205:  // lock wait timeout
    case 1213:  // deadlock
      return MakeError(absl::StatusCode::kAborted, kMysqlConflict, message, metadata);
    case 1062:  // duplicate entry
    case 1586:  // duplicate entry for a named key
      return MakeError(absl::StatusCode::kAlreadyExists, kMysqlDuplicate, message, metadata);
    default:
      return MakeError(absl::StatusCode::kInternal, kMysqlError, message, metadata);
  }
}

SqlValue::SqlValue(absl::Time value)
    : kind_(Kind::kString),
      string_(absl::FormatTime("%Y-%m-%d %H:%M:%E6S", value, absl::UTCTimeZone())) {}

void SqlValue::BindTo(sql::PreparedStatement& statement, int index) const {
  const unsigned i = static_cast<unsigned>(index);
  switch (kind_) {
    case Kind::kNull:
      return statement.setNull(i, sql::DataType::SQLNULL);
    case Kind::kBool:
      return statement.setBoolean(i, int_ != 0);
    case Kind::kInt:
      return statement.setInt64(i, int_);
    case Kind::kUint:
      return statement.setUInt64(i, uint_);
    case Kind::kDouble:
      return statement.setDouble(i, double_);
    case Kind::kString:
      return statement.setString(i, sql::SQLString(string_));
  }
}

absl::StatusOr<absl::Time> ParseSqlDateTime(const std::string& text) {
  absl::Time out;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%E*S", text, absl::UTCTimeZone(), &out, &error)) {
    return MakeError(absl::StatusCode::kInternal, kMysqlError,
                     "cannot parse DATETIME \"" + text + "\": " + error);
  }
  return out;
}

absl::StatusOr<int64_t> Execute(sql::Connection& conn, const std::string& statement,
                                const std::vector<SqlValue>& params) {
  int64_t affected = 0;
  RETURN_IF_ERROR(Guarded(conn, "execute " + Summary(statement), [&]() -> absl::Status {
    if (params.empty()) {
      std::unique_ptr<sql::Statement> plain(conn.createStatement());
      affected = plain->executeUpdate(statement);
    } else {
      affected = Prepare(conn, statement, params)->executeUpdate();
    }
    return absl::OkStatus();
  }));
  return affected;
}

absl::Status Query(sql::Connection& conn, const std::string& statement,
                   const std::vector<SqlValue>& params,
                   absl::FunctionRef<absl::Status(const sql::ResultSet&)> on_row) {
  return Guarded(conn, "query " + Summary(statement), [&]() -> absl::Status {
    std::unique_ptr<sql::Statement> plain;
    std::unique_ptr<sql::PreparedStatement> prepared;
    std::unique_ptr<sql::ResultSet> rows;
    if (params.empty()) {
      plain.reset(conn.createStatement());
      rows.reset(plain->executeQuery(statement));
    } else {
      prepared = Prepare(conn, statement, params);
      rows.reset(prepared->executeQuery());
    }
    while (rows->next()) RETURN_IF_ERROR(on_row(*rows));
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> LastInsertId(sql::Connection& conn) {
  uint64_t id = 0;
  RETURN_IF_ERROR(Query(conn, "SELECT LAST_INSERT_ID()", {}, [&](const sql::ResultSet& row) {
    id = row.getUInt64(1);
    return absl::OkStatus();
  }));
  return id;
}

absl::StatusOr<bool> GetNamedLock(sql::Connection& conn, const std::string& name,
                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const absl::Duration left = std::max(absl::ZeroDuration(), deadline - absl::Now());
    const int wait_seconds = std::min(1, static_cast<int>(std::ceil(absl::ToDoubleSeconds(left))));
    std::optional<bool> taken;
    RETURN_IF_ERROR(
        Query(conn, "SELECT GET_LOCK(?, ?)", {name, wait_seconds}, [&](const sql::ResultSet& row) {
          if (!row.isNull(1)) taken = row.getInt(1) == 1;
          return absl::OkStatus();
        }));
    if (!taken.has_value()) {
      return MakeError(absl::StatusCode::kInternal, kMysqlError,
                       "GET_LOCK(\"" + name + "\") failed");
    }
    if (*taken || absl::Now() >= deadline) return *taken;
  }
}

absl::Status ReleaseNamedLock(sql::Connection& conn, const std::string& name) {
  return Query(conn, "SELECT RELEASE_LOCK(?)", {name},
               [](const sql::ResultSet&) { return absl::OkStatus(); });
}

}  // namespace qunzu