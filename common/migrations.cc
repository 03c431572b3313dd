#include "common/migrations.h"

#include <openssl/evp.h>

#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"

namespace qunzu {
namespace {

constexpr char kCreateHistory[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  component VARCHAR(64) NOT NULL,
  version INT NOT NULL,
  name VARCHAR(255) NOT NULL,
  checksum CHAR(64) NOT NULL,
  applied_at DATETIME(6) NOT NULL,
  PRIMARY KEY (component, version)
) ENGINE=InnoDB)sql";

// The outbox (outbox.h). Delivered rows are kept for a while
// (housekeeping.h); the index serves the relay's "undelivered rows of a
// topic in id order".
constexpr char kCreateOutbox[] = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  topic VARCHAR(64) NOT NULL,
  payload LONGBLOB NOT NULL,
  created_at DATETIME(6) NOT NULL,
  delivered_at DATETIME(6) NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  last_attempt_at DATETIME(6) NULL,
  last_error VARBINARY(1024) NULL,
  PRIMARY KEY (id),
  KEY outbox_pending (topic, delivered_at, id)
) ENGINE=InnoDB)sql";

// Request ids (idempotency.h); response is NULL until the first use commits
// its result.
constexpr char kCreateIdempotencyKeys[] = R"sql(
CREATE TABLE IF NOT EXISTS idempotency_keys (
  principal VARBINARY(255) NOT NULL,
  method VARBINARY(255) NOT NULL,
  request_id VARBINARY(128) NOT NULL,
  fingerprint VARBINARY(64) NOT NULL,
  response LONGBLOB NULL,
  created_at DATETIME(6) NOT NULL,
  completed_at DATETIME(6) NULL,
  PRIMARY KEY (principal, method, request_id),
  KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB)sql";

struct Applied {
  std::string name;
  std::string checksum;
};
using AppliedByVersion = std::map<int, Applied>;

std::string Label(const std::string& component, int version, const std::string& name) {
  return absl::StrCat("migration ", component, "/", version, " \"", name, "\"");
}

absl::Status Refuse(const char* reason, const std::string& message) {
  return MakeError(absl::StatusCode::kFailedPrecondition, reason, message);
}

absl::Status ValidateList(const std::string& component, const std::vector<Migration>& list) {
  if (component.empty() || component.size() > 64) {
    return InvalidField("component", "must be 1..64 characters");
  }
  int previous = 0;
  for (const Migration& m : list) {
    const std::string label = Label(component, m.version, m.name);
    if (m.version <= previous) {
      return Refuse("MIGRATION_INVALID",
                    absl::StrCat(label, ": version must be greater than ", previous));
    }
    if (m.name.empty() || m.name.size() > 255) {
      return Refuse("MIGRATION_INVALID", label + ": name must be 1..255 characters");
    }
    if (m.statements.empty()) return Refuse("MIGRATION_INVALID", label + ": has no statements");
    previous = m.version;
  }
  return absl::OkStatus();
}

// Compares what was applied with what this binary knows (see the header).
absl::Status CheckHistory(const std::string& component, const std::vector<Migration>& list,
                          const AppliedByVersion& applied) {
  std::map<int, const Migration*> known;
  for (const Migration& m : list) known[m.version] = &m;
  const int last_known = list.empty() ? 0 : list.back().version;
  for (const auto& [version, row] : applied) {
    if (version > last_known) continue;
    auto it = known.find(version);
    if (it == known.end()) {
      return Refuse("MIGRATION_MISSING", Label(component, version, row.name) +
                                             " was applied but is not in this binary's list");
    }
    if (MigrationChecksum(*it->second) != row.checksum) {
      return Refuse("MIGRATION_CHANGED", Label(component, version, it->second->name) +
                                             " was changed after it was applied (checksum " +
                                             row.checksum + ")");
    }
  }
  const int last_applied = applied.empty() ? 0 : applied.rbegin()->first;
  for (const Migration& m : list) {
    if (applied.count(m.version) == 0 && m.version < last_applied) {
      return Refuse("MIGRATION_OUT_OF_ORDER",
                    absl::StrCat(Label(component, m.version, m.name), " is pending but version ",
                                 last_applied, " is already applied"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AppliedByVersion> ReadApplied(sql::Connection& conn, const std::string& component) {
  AppliedByVersion applied;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT version, name, checksum FROM schema_migrations "
                        "WHERE component = ? ORDER BY version",
                        {component}, [&](const sql::ResultSet& row) {
                          applied[row.getInt(1)] = {row.getString(2), row.getString(3)};
                          return absl::OkStatus();
                        }));
  return applied;
}

absl::Status ApplyOne(sql::Connection& conn, const std::string& component, const Migration& m) {
  for (size_t i = 0; i < m.statements.size(); ++i) {
    absl::Status status = Execute(conn, m.statements[i]).status();
    if (!status.ok()) {
      return MakeError(status.code(), ErrorReason(status),
                       absl::StrCat(Label(component, m.version, m.name), ": statement ", i + 1,
                                    " failed: ", status.message()));
    }
  }
  return Execute(conn,
                 "INSERT INTO schema_migrations (component, version, name, checksum, applied_at) "
                 "VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))",
                 {component, m.version, m.name, MigrationChecksum(m)})
      .status();
}

absl::Status ApplyLocked(sql::Connection& conn, const std::string& component,
                         const std::vector<Migration>& list) {
  RETURN_IF_ERROR(Execute(conn, kCreateHistory).status());
  ASSIGN_OR_RETURN(AppliedByVersion applied, ReadApplied(conn, component));
  RETURN_IF_ERROR(CheckHistory(component, list, applied));
  for (const Migration& m : list) {
    if (applied.count(m.version) == 0) RETURN_IF_ERROR(ApplyOne(conn, component, m));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<Migration>& CommonMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1, "create_outbox", {kCreateOutbox}},
      {2, "create_idempotency_keys", {kCreateIdempotencyKeys}},
      // Serves housekeeping's "delivered before the cutoff" (housekeeping.h).
      {3,
       "index_outbox_delivered_at",
       {"ALTER TABLE outbox ADD INDEX IF NOT EXISTS outbox_delivered (delivered_at)"}},
  };
  return *migrations;
}

std::string MigrationChecksum(const Migration& migration) {
  // Length prefixes keep ("ab","c") and ("a","bc") apart.
  std::string input = absl::StrCat(migration.name.size(), ":", migration.name);
  for (const std::string& statement : migration.statements) {
    absl::StrAppend(&input, ";", statement.size(), ":", statement);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

absl::Status ApplyMigrations(MysqlPool& pool, const std::string& component,
                             const std::vector<Migration>& migrations,
                             absl::Duration lock_timeout) {
  RETURN_IF_ERROR(ValidateList(component, migrations));
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool.Acquire(pool.options().connect_timeout));
  const std::string lock = "qunzu.migrations." + pool.schema();
  ASSIGN_OR_RETURN(bool locked, GetNamedLock(*lease, lock, lock_timeout));
  if (!locked) {
    return MakeError(absl::StatusCode::kUnavailable, "MIGRATION_LOCK_TIMEOUT",
                     "another process kept the migration lock of schema " + pool.schema() +
                         " for " + absl::FormatDuration(lock_timeout));
  }
  absl::Status status = ApplyLocked(*lease, component, migrations);
  // If the release fails the session is suspect; dropping it frees the lock.
  if (!ReleaseNamedLock(*lease, lock).ok()) lease.MarkBroken();
  return status;
}

}  // namespace qunzu
