#include "services/identity/agreement_store.h"

#include <cppconn/resultset.h>
#include <google/protobuf/util/time_util.h>

#include "common/mysql.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kAgreementColumns[] =
    "SELECT kind, version, label, title, %s, body_sha256, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', published_at), "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', effective_at), published_by FROM agreements ";

std::string AgreementSelect(bool include_body) {
  std::string sql = kAgreementColumns;
  sql.replace(sql.find("%s"), 2, include_body ? "body" : "''");
  return sql;
}

v1::Agreement ReadAgreement(const sql::ResultSet& row) {
  v1::Agreement a;
  a.set_kind(static_cast<v1::AgreementKind>(row.getInt(1)));
  a.set_version(row.getUInt(2));
  a.set_label(row.getString(3));
  a.set_title(row.getString(4));
  a.set_body(row.getString(5));
  a.set_body_sha256(row.getString(6));
  *a.mutable_published_at() = TimeUtil::MicrosecondsToTimestamp(row.getInt64(7));
  *a.mutable_effective_at() = TimeUtil::MicrosecondsToTimestamp(row.getInt64(8));
  a.set_published_by(row.getString(9));
  return a;
}

v1::Acceptance ReadAcceptance(const sql::ResultSet& row) {
  v1::Acceptance a;
  a.set_account_id(row.getUInt64(1));
  a.set_kind(static_cast<v1::AgreementKind>(row.getInt(2)));
  a.set_version(row.getUInt(3));
  *a.mutable_accepted_at() = TimeUtil::MicrosecondsToTimestamp(row.getInt64(4));
  a.set_client_ip(row.getString(5));
  return a;
}

constexpr char kAcceptanceColumns[] =
    "SELECT account_id, kind, version, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', accepted_at), "
    "client_ip FROM acceptances ";

}  // namespace

absl::StatusOr<uint32_t> NextAgreementVersion(sql::Connection& conn, int kind) {
  RETURN_IF_ERROR(Execute(conn,
                          "INSERT INTO agreement_kinds (kind, latest_version) VALUES (?, 0)"
                          " ON DUPLICATE KEY UPDATE kind = kind",
                          {kind})
                      .status());
  uint32_t latest = 0;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT latest_version FROM agreement_kinds WHERE kind = ? FOR UPDATE",
                        {kind}, [&](const sql::ResultSet& row) {
                          latest = row.getUInt(1);
                          return absl::OkStatus();
                        }));
  RETURN_IF_ERROR(Execute(conn, "UPDATE agreement_kinds SET latest_version = ? WHERE kind = ?",
                          {latest + 1, kind})
                      .status());
  return latest + 1;
}

absl::Status InsertAgreement(sql::Connection& conn, const v1::Agreement& a, absl::Time published_at,
                             absl::Time effective_at) {
  return Execute(conn,
                 "INSERT INTO agreements (kind, version, label, title, body, body_sha256, "
                 "published_at, effective_at, published_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 {static_cast<int>(a.kind()), a.version(), a.label(), a.title(), a.body(),
                  a.body_sha256(), published_at, effective_at, a.published_by()})
      .status();
}

absl::StatusOr<std::optional<v1::Agreement>> LoadAgreement(sql::Connection& conn, int kind,
                                                           uint32_t version) {
  std::optional<v1::Agreement> found;
  RETURN_IF_ERROR(Query(conn, AgreementSelect(true) + "WHERE kind = ? AND version = ?",
                        {kind, version}, [&](const sql::ResultSet& row) {
                          found = ReadAgreement(row);
                          return absl::OkStatus();
                        }));
  return found;
}

absl::StatusOr<std::vector<v1::Agreement>> CurrentAgreements(sql::Connection& conn, absl::Time now,
                                                             bool include_body) {
  std::vector<v1::Agreement> current;
  RETURN_IF_ERROR(Query(conn,
                        AgreementSelect(include_body) +
                            "a WHERE version = (SELECT MAX(version) FROM agreements b WHERE "
                            "b.kind = a.kind AND b.effective_at <= ?) ORDER BY kind",
                        {now}, [&](const sql::ResultSet& row) {
                          current.push_back(ReadAgreement(row));
                          return absl::OkStatus();
                        }));
  return current;
}

absl::StatusOr<std::vector<v1::Agreement>> PendingAgreements(sql::Connection& conn,
                                                             absl::Time now) {
  std::vector<v1::Agreement> pending;
  RETURN_IF_ERROR(Query(conn,
                        AgreementSelect(false) +
                            "a WHERE version = (SELECT MAX(version) FROM agreements b WHERE "
                            "b.kind = a.kind) AND effective_at > ? ORDER BY kind",
                        {now}, [&](const sql::ResultSet& row) {
                          pending.push_back(ReadAgreement(row));
                          return absl::OkStatus();
                        }));
  return pending;
}

absl::StatusOr<v1::Acceptance> AcceptOnce(sql::Connection& conn, const v1::Acceptance& acceptance,
                                          absl::Time accepted_at) {
  RETURN_IF_ERROR(Execute(conn,
                          "INSERT IGNORE INTO acceptances (account_id, kind, version, accepted_at, "
                          "client_ip) VALUES (?, ?, ?, ?, ?)",
                          {acceptance.account_id(), static_cast<int>(acceptance.kind()),
                           acceptance.version(), accepted_at, acceptance.client_ip()})
                      .status());
  std::optional<v1::Acceptance> stored;
  RETURN_IF_ERROR(Query(
      conn, std::string(kAcceptanceColumns) + "WHERE account_id = ? AND kind = ? AND version = ?",
      {acceptance.account_id(), static_cast<int>(acceptance.kind()), acceptance.version()},
      [&](const sql::ResultSet& row) {
        stored = ReadAcceptance(row);
        return absl::OkStatus();
      }));
  if (!stored) {
    return MakeError(absl::StatusCode::kInternal, "ACCEPTANCE_LOST",
                     "the acceptance was not stored");
  }
  return *stored;
}

absl::StatusOr<std::vector<v1::Acceptance>> ListAcceptances(sql::Connection& conn,
                                                            uint64_t account_id) {
  std::vector<v1::Acceptance> list;
  RETURN_IF_ERROR(Query(conn,
                        std::string(kAcceptanceColumns) +
                            "WHERE account_id = ? ORDER BY accepted_at DESC, kind, version DESC",
                        {account_id}, [&](const sql::ResultSet& row) {
                          list.push_back(ReadAcceptance(row));
                          return absl::OkStatus();
                        }));
  return list;
}

absl::StatusOr<std::map<int, uint32_t>> AcceptedVersions(sql::Connection& conn,
                                                         uint64_t account_id) {
  std::map<int, uint32_t> versions;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT kind, MAX(version) FROM acceptances WHERE account_id = ? "
                        "GROUP BY kind",
                        {account_id}, [&](const sql::ResultSet& row) {
                          versions[row.getInt(1)] = row.getUInt(2);
                          return absl::OkStatus();
                        }));
  return versions;
}

bool AcceptedAllCurrent(const std::vector<v1::Agreement>& current,
                        const std::map<int, uint32_t>& accepted) {
  for (const v1::Agreement& agreement : current) {
    auto it = accepted.find(agreement.kind());
    if (it == accepted.end() || it->second < agreement.version()) return false;
  }
  return true;
}

}  // namespace qunzu::identity
