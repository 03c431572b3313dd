#include "services/moderation/mysql_emergency_store.h"

#include <cppconn/resultset.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/proto_time.h"

namespace qunzu::moderation {
namespace {

constexpr absl::Duration kAcquireTimeout = absl::Seconds(5);
constexpr char kColumns[] =
    "emergency_mode_id, scope, group_category, group_id, level, reason, set_by, started_at, "
    "expires_at, ended_at, ended_by";

// One key per scope target: a new mode replaces the open one of its key.
std::string ScopeKey(v1::EmergencyScope scope, int category, uint64_t group_id) {
  switch (scope) {
    case v1::EMERGENCY_SCOPE_CATEGORY:
      return absl::StrCat("category:", category);
    case v1::EMERGENCY_SCOPE_GROUP:
      return absl::StrCat("group:", group_id);
    default:
      return "platform";
  }
}

absl::StatusOr<v1::EmergencyMode> ReadMode(const sql::ResultSet& row, absl::Time now) {
  v1::EmergencyMode mode;
  mode.set_emergency_mode_id(row.getUInt64(1));
  mode.set_scope(static_cast<v1::EmergencyScope>(row.getInt(2)));
  mode.set_group_category(static_cast<common::v1::GroupCategory>(row.getInt(3)));
  mode.set_group_id(row.getUInt64(4));
  mode.set_level(static_cast<v1::EmergencyLevel>(row.getInt(5)));
  mode.set_reason(row.getString(6));
  mode.set_set_by(row.getString(7));
  ASSIGN_OR_RETURN(absl::Time started, ParseSqlDateTime(row.getString(8)));
  ASSIGN_OR_RETURN(absl::Time expires, ParseSqlDateTime(row.getString(9)));
  *mode.mutable_started_at() = ToProtoTime(started);
  *mode.mutable_expires_at() = ToProtoTime(expires);
  if (!row.isNull(10)) {
    ASSIGN_OR_RETURN(absl::Time ended, ParseSqlDateTime(row.getString(10)));
    *mode.mutable_ended_at() = ToProtoTime(ended);
    mode.set_ended_by(row.getString(11));
  }
  mode.set_in_force(InForce(mode, now));
  // An expired mode ended at its expiry, without anyone acting.
  if (!mode.has_ended_at() && !mode.in_force()) *mode.mutable_ended_at() = ToProtoTime(expires);
  return mode;
}

}  // namespace

absl::StatusOr<int64_t> MysqlEmergencyStore::Generation() {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  int64_t generation = 0;
  RETURN_IF_ERROR(Query(*lease, "SELECT generation FROM emergency_generation WHERE id = 1", {},
                        [&](const sql::ResultSet& row) {
                          generation = row.getInt64(1);
                          return absl::OkStatus();
                        }));
  return generation;
}

absl::Status MysqlEmergencyStore::LoadOpen(int64_t* generation,
                                           std::vector<v1::EmergencyMode>* modes) {
  TransactionOptions options;
  options.isolation = Isolation::kRepeatableRead;
  const absl::Time now = clock_.Now();
  return WithTransaction(
      pool_,
      [&](sql::Connection& conn) -> absl::Status {
        modes->clear();
        RETURN_IF_ERROR(Query(conn, "SELECT generation FROM emergency_generation WHERE id = 1", {},
                              [&](const sql::ResultSet& row) {
                                *generation = row.getInt64(1);
                                return absl::OkStatus();
                              }));
        // A mode that expired over an hour ago by this clock is of no use
        // to any replica whose clock is within an hour of it.
        return Query(
            conn,
            absl::StrCat("SELECT ", kColumns,
                         " FROM emergency_modes WHERE ended_at IS NULL AND expires_at > ?"),
            {now - absl::Hours(1)}, [&](const sql::ResultSet& row) -> absl::Status {
              ASSIGN_OR_RETURN(v1::EmergencyMode mode, ReadMode(row, now));
              // Loaded even when expired by this clock: another
              // replica's clock decides for itself in Find.
              mode.clear_ended_at();
              modes->push_back(std::move(mode));
              return absl::OkStatus();
            });
      },
      options);
}

absl::StatusOr<v1::SetEmergencyModeResponse> MysqlEmergencyStore::Set(
    const RequestContext& context, const v1::SetEmergencyModeRequest& request) {
  if (request.scope() == v1::EMERGENCY_SCOPE_GROUP && request.level() != v1::EMERGENCY_LEVEL_OFF) {
    ASSIGN_OR_RETURN(bool exists, group_exists_(request.group_id()));
    if (!exists) {
      return MakeError(absl::StatusCode::kNotFound, "GROUP_NOT_FOUND",
                       absl::StrCat("no group ", request.group_id()),
                       {{"group_id", absl::StrCat(request.group_id())}});
    }
  }
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  const std::string scope_key =
      ScopeKey(request.scope(), request.group_category(), request.group_id());
  return WithTransaction(pool_, [&](sql::Connection& conn) {
    return RunIdempotent<v1::SetEmergencyModeResponse>(
        conn, key, request, [&]() -> absl::StatusOr<v1::SetEmergencyModeResponse> {
          const absl::Time now = clock_.Now();
          // Serialises every change, so one scope never has two open modes.
          RETURN_IF_ERROR(
              Query(conn, "SELECT generation FROM emergency_generation WHERE id = 1 FOR UPDATE", {},
                    [](const sql::ResultSet&) { return absl::OkStatus(); }));
          std::optional<v1::EmergencyMode> open;
          RETURN_IF_ERROR(Query(conn,
                                absl::StrCat("SELECT ", kColumns,
                                             " FROM emergency_modes WHERE scope_key = ? AND "
                                             "ended_at IS NULL AND expires_at > ?"),
                                {scope_key, now}, [&](const sql::ResultSet& row) -> absl::Status {
                                  ASSIGN_OR_RETURN(open, ReadMode(row, now));
                                  return absl::OkStatus();
                                }));
          v1::SetEmergencyModeResponse response;
          if (open.has_value()) {
            RETURN_IF_ERROR(Execute(conn,
                                    "UPDATE emergency_modes SET ended_at = ?, ended_by = ? "
                                    "WHERE emergency_mode_id = ?",
                                    {now, context.caller.principal, open->emergency_mode_id()})
                                .status());
            *open->mutable_ended_at() = ToProtoTime(now);
            open->set_ended_by(context.caller.principal);
            open->set_in_force(false);
          }
          std::string action = "EMERGENCY_MODE_SET";
          if (request.level() == v1::EMERGENCY_LEVEL_OFF) {
            if (!open.has_value()) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "NO_MODE_IN_FORCE",
                               "no emergency mode is in force for this scope",
                               {{"scope", scope_key}});
            }
            action = "EMERGENCY_MODE_ENDED";
            *response.mutable_mode() = *open;
          } else {
            const absl::Time expires = FromProtoTime(request.expires_at());
            RETURN_IF_ERROR(
                Execute(conn,
                        "INSERT INTO emergency_modes (scope, scope_key, group_category, group_id, "
                        "level, reason, set_by, started_at, expires_at, ended_by) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                        {static_cast<int>(request.scope()), scope_key,
                         static_cast<int>(request.group_category()), request.group_id(),
                         static_cast<int>(request.level()), request.reason(),
                         context.caller.principal, now, expires})
                    .status());
            ASSIGN_OR_RETURN(const uint64_t mode_id, LastInsertId(conn));
            v1::EmergencyMode* mode = response.mutable_mode();
            mode->set_emergency_mode_id(mode_id);
            mode->set_scope(request.scope());
            mode->set_group_category(request.group_category());
            mode->set_group_id(request.group_id());
            mode->set_level(request.level());
            mode->set_reason(request.reason());
            mode->set_set_by(context.caller.principal);
            *mode->mutable_started_at() = ToProtoTime(now);
            *mode->mutable_expires_at() = ToProtoTime(expires);
            mode->set_in_force(true);
          }
          RETURN_IF_ERROR(Execute(conn,
                                  "UPDATE emergency_generation SET generation = generation + 1 "
                                  "WHERE id = 1")
                              .status());
          audit::v1::AuditEvent event = AuditEventFor(context.caller, context.peer, context.method,
                                                      action, request.request_id());
          *event.mutable_time() = ToProtoTime(now);
          auto& details = *event.mutable_details();
          details["emergency_mode_id"] = absl::StrCat(response.mode().emergency_mode_id());
          details["scope"] = v1::EmergencyScope_Name(request.scope());
          details["scope_key"] = scope_key;
          details["level"] = v1::EmergencyLevel_Name(request.level());
          details["reason"] = request.reason();
          if (request.has_expires_at()) {
            details["expires_at"] = absl::StrCat(request.expires_at().seconds());
          }
          if (open.has_value() && request.level() != v1::EMERGENCY_LEVEL_OFF) {
            details["replaced_emergency_mode_id"] = absl::StrCat(open->emergency_mode_id());
          }
          RETURN_IF_ERROR(RecordAuditEvent(conn, event).status());
          return response;
        });
  });
}

absl::StatusOr<v1::ListEmergencyModesResponse> MysqlEmergencyStore::List(
    const v1::ListEmergencyModesRequest& request) {
  const int page_size = request.page().page_size() == 0 ? 50 : request.page().page_size();
  uint64_t before = UINT64_MAX;
  if (!request.page().page_token().empty() &&
      !absl::SimpleAtoi(request.page().page_token(), &before)) {
    return InvalidField("page.page_token", "is not a token this service issued");
  }
  const absl::Time now = clock_.Now();
  std::string sql =
      absl::StrCat("SELECT ", kColumns, " FROM emergency_modes WHERE emergency_mode_id < ?");
  std::vector<SqlValue> params = {before};
  if (request.in_force_only()) {
    absl::StrAppend(&sql, " AND ended_at IS NULL AND expires_at > ?");
    params.emplace_back(now);
  }
  if (request.scope() != v1::EMERGENCY_SCOPE_UNSPECIFIED) {
    absl::StrAppend(&sql, " AND scope = ?");
    params.emplace_back(static_cast<int>(request.scope()));
  }
  absl::StrAppend(&sql, " ORDER BY emergency_mode_id DESC LIMIT ?");
  params.emplace_back(page_size + 1);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  v1::ListEmergencyModesResponse response;
  RETURN_IF_ERROR(Query(*lease, sql, params, [&](const sql::ResultSet& row) -> absl::Status {
    if (response.modes_size() == page_size) {
      response.mutable_page()->set_next_page_token(
          absl::StrCat(response.modes(page_size - 1).emergency_mode_id()));
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(*response.add_modes(), ReadMode(row, now));
    return absl::OkStatus();
  }));
  return response;
}

const std::vector<Migration>& EmergencyModeMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {10,
       "emergency modes",
       {"CREATE TABLE IF NOT EXISTS emergency_modes ("
        " emergency_mode_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " scope TINYINT NOT NULL, scope_key VARCHAR(64) NOT NULL,"
        " group_category INT NOT NULL, group_id BIGINT UNSIGNED NOT NULL,"
        " level TINYINT NOT NULL, reason VARCHAR(4000) NOT NULL,"
        " set_by VARCHAR(255) NOT NULL, started_at DATETIME(6) NOT NULL,"
        " expires_at DATETIME(6) NOT NULL, ended_at DATETIME(6) NULL,"
        " ended_by VARCHAR(255) NOT NULL,"
        " KEY k_open (ended_at, scope_key)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS emergency_generation ("
        " id TINYINT UNSIGNED NOT NULL PRIMARY KEY, generation BIGINT NOT NULL) ENGINE=InnoDB",
        "INSERT IGNORE INTO emergency_generation (id, generation) VALUES (1, 0)"}},
  };
  return *migrations;
}

}  // namespace qunzu::moderation
