#include "services/identity/account_store.h"

#include <cppconn/resultset.h>

#include "common/mysql.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

constexpr char kColumns[] =
    "SELECT account_id, nickname, COALESCE(platform_user_id, ''), state, "
    "COALESCE(contact_phone_enc, ''), verification_state, method, rejection_reason, verifier, "
    "COALESCE(legal_name_enc, ''), COALESCE(resident_id_enc, ''), "
    "COALESCE(verification_phone_enc, ''), COALESCE(id_index, ''), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', verified_at), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', last_attempt_at), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', attempt_window_start), attempt_count, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at) FROM accounts ";

std::optional<absl::Time> OptionalTime(const sql::ResultSet& row, int column) {
  if (row.isNull(column)) return std::nullopt;
  return absl::FromUnixMicros(row.getInt64(column));
}

AccountRow ReadRow(const sql::ResultSet& row) {
  AccountRow a;
  a.account_id = row.getUInt64(1);
  a.nickname = row.getString(2);
  a.platform_user_id = row.getString(3);
  a.state = row.getString(4);
  a.contact_phone_enc = row.getString(5);
  a.verification_state = row.getInt(6);
  a.method = row.getInt(7);
  a.rejection_reason = row.getInt(8);
  a.verifier = row.getString(9);
  a.legal_name_enc = row.getString(10);
  a.resident_id_enc = row.getString(11);
  a.verification_phone_enc = row.getString(12);
  a.id_index = row.getString(13);
  a.verified_at = OptionalTime(row, 14);
  a.last_attempt_at = OptionalTime(row, 15);
  a.attempt_window_start = OptionalTime(row, 16);
  a.attempt_count = row.getInt(17);
  a.created_at = absl::FromUnixMicros(row.getInt64(18));
  return a;
}

absl::StatusOr<std::optional<AccountRow>> LoadOne(sql::Connection& conn, const std::string& where,
                                                  const std::vector<SqlValue>& params) {
  std::optional<AccountRow> found;
  RETURN_IF_ERROR(Query(conn, kColumns + where, params, [&](const sql::ResultSet& row) {
    found = ReadRow(row);
    return absl::OkStatus();
  }));
  return found;
}

SqlValue OrNull(const std::string& value) {
  if (value.empty()) return nullptr;
  return value;
}

SqlValue OrNull(const std::optional<absl::Time>& value) {
  if (!value) return nullptr;
  return *value;
}

}  // namespace

// Each statement is one literal split over lines, not a missing comma.
// NOLINTBEGIN(bugprone-suspicious-missing-comma)
const std::vector<Migration>& IdentityMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "accounts, id numbers, agreements, acceptances",
       {"CREATE TABLE IF NOT EXISTS accounts ("
        " account_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " nickname VARCHAR(32) NOT NULL,"
        " platform_user_id VARCHAR(128) NULL,"
        " state VARCHAR(16) NOT NULL,"
        " contact_phone_enc VARBINARY(255) NULL,"
        " contact_phone_index BINARY(32) NULL,"
        " verification_state TINYINT NOT NULL,"
        " method TINYINT NOT NULL DEFAULT 0,"
        " rejection_reason TINYINT NOT NULL DEFAULT 0,"
        " verifier VARCHAR(64) NOT NULL DEFAULT '',"
        " legal_name_enc VARBINARY(512) NULL,"
        " resident_id_enc VARBINARY(255) NULL,"
        " verification_phone_enc VARBINARY(255) NULL,"
        " id_index BINARY(32) NULL,"
        " verified_at DATETIME(6) NULL,"
        " last_attempt_at DATETIME(6) NULL,"
        " attempt_window_start DATETIME(6) NULL,"
        " attempt_count INT NOT NULL DEFAULT 0,"
        " created_at DATETIME(6) NOT NULL,"
        " UNIQUE KEY accounts_platform_user_id (platform_user_id),"
        " KEY accounts_id_index (id_index),"
        " KEY accounts_contact_phone_index (contact_phone_index)"
        ") ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS id_numbers ("
        " id_index BINARY(32) NOT NULL PRIMARY KEY) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS agreement_kinds ("
        " kind TINYINT NOT NULL PRIMARY KEY,"
        " latest_version INT UNSIGNED NOT NULL) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS agreements ("
        " kind TINYINT NOT NULL,"
        " version INT UNSIGNED NOT NULL,"
        " label VARCHAR(64) NOT NULL,"
        " title VARCHAR(200) NOT NULL,"
        " body MEDIUMTEXT NOT NULL,"
        " body_sha256 BINARY(32) NOT NULL,"
        " published_at DATETIME(6) NOT NULL,"
        " effective_at DATETIME(6) NOT NULL,"
        " published_by VARCHAR(255) NOT NULL,"
        " PRIMARY KEY (kind, version)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS acceptances ("
        " account_id BIGINT UNSIGNED NOT NULL,"
        " kind TINYINT NOT NULL,"
        " version INT UNSIGNED NOT NULL,"
        " accepted_at DATETIME(6) NOT NULL,"
        " client_ip VARCHAR(64) NOT NULL,"
        " PRIMARY KEY (account_id, kind, version)) ENGINE=InnoDB"}}};
  return *migrations;
}
// NOLINTEND(bugprone-suspicious-missing-comma)

absl::StatusOr<std::optional<AccountRow>> LoadAccount(sql::Connection& conn, uint64_t account_id,
                                                      bool for_update) {
  return LoadOne(conn, for_update ? "WHERE account_id = ? FOR UPDATE" : "WHERE account_id = ?",
                 {account_id});
}

absl::StatusOr<std::optional<AccountRow>> LoadAccountByPlatformUserId(sql::Connection& conn,
                                                                      const std::string& id) {
  return LoadOne(conn, "WHERE platform_user_id = ?", {id});
}

absl::StatusOr<std::vector<AccountRow>> ListAccounts(sql::Connection& conn, uint64_t after,
                                                     int limit) {
  std::vector<AccountRow> rows;
  RETURN_IF_ERROR(Query(conn,
                        std::string(kColumns) + "WHERE account_id > ? ORDER BY account_id LIMIT ?",
                        {after, limit}, [&](const sql::ResultSet& row) {
                          rows.push_back(ReadRow(row));
                          return absl::OkStatus();
                        }));
  return rows;
}

absl::StatusOr<uint64_t> InsertAccount(sql::Connection& conn, const std::string& nickname,
                                       const std::string& platform_user_id, absl::Time now) {
  uint64_t id = 0;
  RETURN_IF_ERROR(Query(conn,
                        "INSERT INTO accounts (nickname, platform_user_id, state, "
                        "verification_state, created_at) VALUES (?, ?, 'ACTIVE', 1, ?) "
                        "RETURNING account_id",
                        {nickname, OrNull(platform_user_id), now}, [&](const sql::ResultSet& row) {
                          id = row.getUInt64(1);
                          return absl::OkStatus();
                        }));
  return id;
}

absl::Status SetContactPhone(sql::Connection& conn, uint64_t account_id,
                             const std::string& phone_enc, const std::string& phone_index) {
  return Execute(conn,
                 "UPDATE accounts SET contact_phone_enc = ?, contact_phone_index = ? "
                 "WHERE account_id = ?",
                 {phone_enc, phone_index, account_id})
      .status();
}

absl::Status SaveVerification(sql::Connection& conn, const AccountRow& row) {
  return Execute(conn,
                 "UPDATE accounts SET verification_state = ?, method = ?, rejection_reason = ?, "
                 "verifier = ?, legal_name_enc = ?, resident_id_enc = ?, "
                 "verification_phone_enc = ?, id_index = ?, verified_at = ?, "
                 "last_attempt_at = ?, attempt_window_start = ?, attempt_count = ? "
                 "WHERE account_id = ?",
                 {row.verification_state, row.method, row.rejection_reason, row.verifier,
                  OrNull(row.legal_name_enc), OrNull(row.resident_id_enc),
                  OrNull(row.verification_phone_enc), OrNull(row.id_index), OrNull(row.verified_at),
                  OrNull(row.last_attempt_at), OrNull(row.attempt_window_start), row.attempt_count,
                  row.account_id})
      .status();
}

absl::Status SaveCiphertexts(sql::Connection& conn, const AccountRow& row) {
  return Execute(conn,
                 "UPDATE accounts SET contact_phone_enc = ?, legal_name_enc = ?, "
                 "resident_id_enc = ?, verification_phone_enc = ? WHERE account_id = ?",
                 {OrNull(row.contact_phone_enc), OrNull(row.legal_name_enc),
                  OrNull(row.resident_id_enc), OrNull(row.verification_phone_enc), row.account_id})
      .status();
}

absl::StatusOr<int64_t> LockAndCountIdNumber(sql::Connection& conn, const std::string& id_index,
                                             uint64_t account_id) {
  // Creates the row or takes its exclusive lock in one statement (INSERT
  // IGNORE would take a shared lock first, and racing holders of it that
  // each want the exclusive one deadlock).
  RETURN_IF_ERROR(Execute(conn,
                          "INSERT INTO id_numbers (id_index) VALUES (?)"
                          " ON DUPLICATE KEY UPDATE id_index = id_index",
                          {id_index})
                      .status());
  int64_t count = 0;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT COUNT(*) FROM accounts WHERE id_index = ? AND "
                        "verification_state = 3 AND account_id <> ?",
                        {id_index, account_id}, [&](const sql::ResultSet& row) {
                          count = row.getInt64(1);
                          return absl::OkStatus();
                        }));
  return count;
}

}  // namespace qunzu::identity
