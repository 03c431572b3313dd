// AuditLog's schema and setup: migrations, Append validation, creation,
// monthly partitions and the head row and checkpoint writes.

#include "services/audit/audit_log.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/audit_outbox.h"
#include "common/log.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/audit_log_internal.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {

using internal::Bad;
using internal::Bytes;
using internal::MonthOf;
using internal::TimeColumn;
using internal::ToMicros;

namespace {

const std::set<std::string>& KnownSources() {
  static const auto* sources =
      new std::set<std::string>{"identity", "groups", "credit", "moderation"};
  return *sources;
}

absl::Time StartOf(absl::CivilMonth month) { return absl::FromCivil(month, absl::UTCTimeZone()); }

std::string PartitionName(absl::CivilMonth month) {
  return absl::StrCat("p", absl::FormatCivilTime(month).substr(0, 4),
                      absl::FormatCivilTime(month).substr(5, 2));
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max, int index) {
  std::map<std::string, std::string> metadata = {{"field", std::string(field)},
                                                 {"index", absl::StrCat(index)}};
  if (value.size() > max) {
    return Bad("INVALID_FIELD",
               absl::StrCat("events[", index, "].", field, " is longer than ", max, " bytes"),
               metadata);
  }
  if (!IsValidUtf8(value)) {
    return Bad("INVALID_FIELD", absl::StrCat("events[", index, "].", field, " is not valid UTF-8"),
               metadata);
  }
  return absl::OkStatus();
}

bool IsUpperSnake(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

absl::Status ValidateEvent(const v1::AuditEvent& e, int index) {
  RETURN_IF_ERROR(CheckText("action", e.action(), 64, index));
  if (!IsUpperSnake(e.action())) {
    return Bad("INVALID_FIELD",
               absl::StrCat("events[", index, "].action must be UPPER_SNAKE, 1..64 characters"),
               {{"field", "action"}, {"index", absl::StrCat(index)}});
  }
  if (e.source_id() == 0) {
    return Bad("INVALID_FIELD", absl::StrCat("events[", index, "].source_id is required"),
               {{"field", "source_id"}, {"index", absl::StrCat(index)}});
  }
  RETURN_IF_ERROR(CheckText("method", e.method(), 256, index));
  RETURN_IF_ERROR(CheckText("principal", e.principal(), 255, index));
  RETURN_IF_ERROR(CheckText("client_ip", e.client_ip(), 64, index));
  RETURN_IF_ERROR(CheckText("result_reason", e.result_reason(), 128, index));
  RETURN_IF_ERROR(CheckText("request_id", e.request_id(), 128, index));
  if (e.subjects_size() > 64) {
    return Bad("INVALID_FIELD", absl::StrCat("events[", index, "] has more than 64 subjects"),
               {{"field", "subjects"}, {"index", absl::StrCat(index)}});
  }
  if (e.details_size() > 64) {
    return Bad("INVALID_FIELD", absl::StrCat("events[", index, "] has more than 64 details"),
               {{"field", "details"}, {"index", absl::StrCat(index)}});
  }
  for (const auto& [key, value] : e.details()) {
    RETURN_IF_ERROR(CheckText("details.key", key, 64, index));
    RETURN_IF_ERROR(CheckText("details.value", value, 4096, index));
  }
  if (e.time().nanos() < 0 || e.time().nanos() >= 1000000000 || e.time().seconds() < 0) {
    return Bad("INVALID_FIELD", absl::StrCat("events[", index, "].time is invalid"),
               {{"field", "time"}, {"index", absl::StrCat(index)}});
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<Migration>& AuditLogMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "audit_log",
       {
           R"sql(CREATE TABLE IF NOT EXISTS audit_entries (
  leaf_index BIGINT UNSIGNED NOT NULL,
  appended_at DATETIME(6) NOT NULL,
  event_time DATETIME(6) NULL,
  service VARCHAR(32) NOT NULL,
  source_id BIGINT UNSIGNED NOT NULL,
  action VARCHAR(64) NOT NULL,
  principal VARCHAR(255) NOT NULL,
  actor_account_id BIGINT UNSIGNED NOT NULL,
  request_id VARCHAR(128) NOT NULL,
  entry MEDIUMBLOB NOT NULL,
  leaf_hash BINARY(32) NOT NULL,
  PRIMARY KEY (leaf_index, appended_at),
  KEY by_source (service, source_id),
  KEY by_event_time (event_time),
  KEY by_action (action),
  KEY by_principal (principal),
  KEY by_actor (actor_account_id)
) ENGINE=InnoDB PARTITION BY RANGE (TO_DAYS(appended_at)) (PARTITION p_start VALUES LESS THAN (730485)))sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_append_requests (
  service VARCHAR(32) NOT NULL,
  request_id VARCHAR(128) NOT NULL,
  digest BINARY(32) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (service, request_id),
  KEY by_time (created_at)
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_nodes (
  level TINYINT UNSIGNED NOT NULL,
  node_index BIGINT UNSIGNED NOT NULL,
  hash BINARY(32) NOT NULL,
  PRIMARY KEY (level, node_index)
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_subjects (
  kind INT UNSIGNED NOT NULL,
  subject_id BIGINT UNSIGNED NOT NULL,
  leaf_index BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (kind, subject_id, leaf_index),
  KEY by_leaf (leaf_index)
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_tree_head (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  tree_size BIGINT UNSIGNED NOT NULL,
  frontier VARBINARY(2048) NOT NULL,
  last_appended_at DATETIME(6) NULL,
  last_checkpoint_size BIGINT UNSIGNED NOT NULL,
  last_checkpoint_at DATETIME(6) NULL,
  oldest_leaf_index BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB)sql",
           R"sql(INSERT IGNORE INTO audit_tree_head VALUES (1, 0, '', NULL, 0, NULL, 0))sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_checkpoints (
  tree_size BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  root_hash BINARY(32) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  key_id CHAR(64) NOT NULL,
  signature VARBINARY(64) NOT NULL
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_signing_keys (
  key_id CHAR(64) NOT NULL PRIMARY KEY,
  public_key VARBINARY(32) NOT NULL,
  first_used_at DATETIME(6) NOT NULL
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_purged_partitions (
  name VARCHAR(16) NOT NULL PRIMARY KEY,
  month CHAR(7) NOT NULL,
  start_time DATETIME(6) NULL,
  end_time DATETIME(6) NOT NULL,
  entry_count BIGINT UNSIGNED NOT NULL,
  boundary_tree_size BIGINT UNSIGNED NOT NULL,
  purged_at DATETIME(6) NOT NULL
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_purges (
  purge_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  purged_at DATETIME(6) NOT NULL,
  months VARCHAR(1024) NOT NULL,
  entries_purged BIGINT UNSIGNED NOT NULL,
  audit_leaf_index BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB)sql",
           R"sql(CREATE TABLE IF NOT EXISTS audit_legal_holds (
  legal_hold_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  request_id VARCHAR(128) NOT NULL,
  placed_by VARCHAR(255) NOT NULL,
  start_time DATETIME(6) NOT NULL,
  end_time DATETIME(6) NOT NULL,
  case_reference VARCHAR(255) NOT NULL,
  reason VARCHAR(1024) NOT NULL,
  placed_at DATETIME(6) NOT NULL,
  released_at DATETIME(6) NULL,
  released_by VARCHAR(255) NULL,
  release_reason VARCHAR(1024) NULL,
  UNIQUE KEY by_request (placed_by, request_id)
) ENGINE=InnoDB)sql",
       }},
      // Entries move from one row each (five secondary indexes, a subjects
      // table) into bundles (bundle_store.h). The three new tables are
      // made LIKE audit_entries so they carry its monthly partitions, then
      // reshaped; the existing entries become one-entry bundles.
      {2,
       "audit_bundles",
       {
           "CREATE TABLE IF NOT EXISTS audit_bundles LIKE audit_entries",
           "ALTER TABLE audit_bundles DROP INDEX IF EXISTS by_source, "
           "DROP INDEX IF EXISTS by_event_time, DROP INDEX IF EXISTS by_action, "
           "DROP INDEX IF EXISTS by_principal, DROP INDEX IF EXISTS by_actor, "
           "DROP COLUMN IF EXISTS service, DROP COLUMN IF EXISTS source_id, "
           "DROP COLUMN IF EXISTS action, DROP COLUMN IF EXISTS principal, "
           "DROP COLUMN IF EXISTS actor_account_id, DROP COLUMN IF EXISTS request_id, "
           "DROP COLUMN IF EXISTS event_time, "
           "CHANGE COLUMN IF EXISTS leaf_index first_leaf BIGINT UNSIGNED NOT NULL, "
           "CHANGE COLUMN IF EXISTS entry entries MEDIUMBLOB NOT NULL, "
           "CHANGE COLUMN IF EXISTS leaf_hash leaf_hashes MEDIUMBLOB NOT NULL, "
           "ADD COLUMN IF NOT EXISTS entry_count INT UNSIGNED NOT NULL AFTER appended_at, "
           "ADD COLUMN IF NOT EXISTS min_event_time DATETIME(6) NULL, "
           "ADD COLUMN IF NOT EXISTS max_event_time DATETIME(6) NULL",
           "CREATE TABLE IF NOT EXISTS audit_sources LIKE audit_entries",
           "ALTER TABLE audit_sources DROP INDEX IF EXISTS by_source, "
           "DROP INDEX IF EXISTS by_event_time, DROP INDEX IF EXISTS by_action, "
           "DROP INDEX IF EXISTS by_principal, DROP INDEX IF EXISTS by_actor, "
           "DROP COLUMN IF EXISTS action, DROP COLUMN IF EXISTS principal, "
           "DROP COLUMN IF EXISTS actor_account_id, DROP COLUMN IF EXISTS request_id, "
           "DROP COLUMN IF EXISTS event_time, DROP COLUMN IF EXISTS entry, "
           "DROP COLUMN IF EXISTS leaf_hash, "
           "CHANGE COLUMN IF EXISTS source_id first_source BIGINT UNSIGNED NOT NULL, "
           "CHANGE COLUMN IF EXISTS leaf_index first_leaf BIGINT UNSIGNED NOT NULL, "
           "ADD COLUMN IF NOT EXISTS source_count INT UNSIGNED NOT NULL AFTER appended_at, "
           "DROP PRIMARY KEY, ADD PRIMARY KEY (service, first_source, appended_at)",
           "CREATE TABLE IF NOT EXISTS audit_postings LIKE audit_entries",
           "ALTER TABLE audit_postings DROP INDEX IF EXISTS by_source, "
           "DROP INDEX IF EXISTS by_event_time, DROP INDEX IF EXISTS by_action, "
           "DROP INDEX IF EXISTS by_principal, DROP INDEX IF EXISTS by_actor, "
           "DROP COLUMN IF EXISTS service, DROP COLUMN IF EXISTS source_id, "
           "DROP COLUMN IF EXISTS action, DROP COLUMN IF EXISTS principal, "
           "DROP COLUMN IF EXISTS actor_account_id, DROP COLUMN IF EXISTS request_id, "
           "DROP COLUMN IF EXISTS event_time, DROP COLUMN IF EXISTS entry, "
           "DROP COLUMN IF EXISTS leaf_hash, "
           "CHANGE COLUMN IF EXISTS leaf_index first_leaf BIGINT UNSIGNED NOT NULL, "
           "ADD COLUMN IF NOT EXISTS kind TINYINT UNSIGNED NOT NULL FIRST, "
           "ADD COLUMN IF NOT EXISTS value VARBINARY(255) NOT NULL AFTER kind, "
           "DROP PRIMARY KEY, ADD PRIMARY KEY (kind, value, first_leaf, appended_at)",
           // Long statements, each one literal cut over lines.
           // NOLINTNEXTLINE(bugprone-suspicious-missing-comma)
           "INSERT IGNORE INTO audit_bundles (first_leaf, appended_at, entry_count, entries, "
           "leaf_hashes, min_event_time, max_event_time) SELECT leaf_index, appended_at, 1, "
           "CONCAT(UNHEX(LPAD(HEX(LENGTH(entry)), 8, '0')), entry), leaf_hash, event_time, "
           "event_time FROM audit_entries",
           "INSERT IGNORE INTO audit_sources (service, first_source, appended_at, "
           "source_count, first_leaf) SELECT service, source_id, appended_at, 1, leaf_index "
           "FROM audit_entries WHERE service <> 'audit'",
           "INSERT IGNORE INTO audit_postings (kind, value, first_leaf, appended_at) "
           "SELECT 1, service, leaf_index, appended_at FROM audit_entries "
           "UNION ALL SELECT 2, action, leaf_index, appended_at FROM audit_entries "
           "UNION ALL SELECT 3, principal, leaf_index, appended_at FROM audit_entries "
           "WHERE principal <> '' "
           "UNION ALL SELECT 4, CAST(actor_account_id AS CHAR), leaf_index, appended_at "
           "FROM audit_entries WHERE actor_account_id <> 0 "
           "UNION ALL SELECT 5, request_id, leaf_index, appended_at FROM audit_entries "
           "WHERE request_id <> '' "
           "UNION ALL SELECT 6, CONCAT(s.kind, ':', s.subject_id), e.leaf_index, e.appended_at "
           "FROM audit_subjects s JOIN audit_entries e ON e.leaf_index = s.leaf_index",
           "DROP TABLE IF EXISTS audit_subjects, audit_entries",
       }},
      // Actor, request_id and subject leave the per-bundle postings for the
      // segment index built in the background (key_index.h).
      {3,
       "audit_key_index",
       {
           "CREATE TABLE IF NOT EXISTS audit_key_index LIKE audit_postings",
           "ALTER TABLE audit_key_index DROP PRIMARY KEY, DROP COLUMN IF EXISTS value, "
           "CHANGE COLUMN IF EXISTS first_leaf segment BIGINT UNSIGNED NOT NULL, "
           "ADD COLUMN IF NOT EXISTS bucket SMALLINT UNSIGNED NOT NULL AFTER kind, "
           "ADD COLUMN IF NOT EXISTS hashes MEDIUMBLOB NOT NULL, "
           "ADD PRIMARY KEY (kind, bucket, segment, appended_at)",
           R"sql(CREATE TABLE IF NOT EXISTS audit_index_state (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  indexed_until BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB)sql",
           "INSERT IGNORE INTO audit_index_state VALUES (1, 0)",
           "DELETE FROM audit_postings WHERE kind IN (4, 5, 6)",
       }},
  };
  return *migrations;
}

absl::Status ValidateAppend(const Caller& caller, const v1::AppendRequest& request) {
  if (request.events_size() == 0) return Bad("BATCH_EMPTY", "an Append needs 1..1000 events");
  if (request.events_size() > kMaxBatch) {
    return Bad("BATCH_TOO_LARGE", absl::StrCat("an Append carries at most ", kMaxBatch,
                                               " events, not ", request.events_size()));
  }
  if (request.request_id().size() > 128 || !IsValidUtf8(request.request_id())) {
    return InvalidField("request_id", "must be valid UTF-8 of at most 128 bytes");
  }
  for (int i = 0; i < request.events_size(); ++i) {
    const v1::AuditEvent& e = request.events(i);
    if (KnownSources().count(e.service()) == 0) {
      return Bad(
          "UNKNOWN_SOURCE",
          absl::StrCat("events[", i, "].service \"", IsValidUtf8(e.service()) ? e.service() : "?",
                       "\" is not one of identity, groups, credit, moderation"),
          {{"index", absl::StrCat(i)}});
    }
    if (e.service() != caller.service) {
      return MakeError(absl::StatusCode::kPermissionDenied, "SOURCE_MISMATCH",
                       absl::StrCat("events[", i, "] claims service ", e.service(),
                                    " but the caller is ", caller.service),
                       {{"index", absl::StrCat(i)}});
    }
    RETURN_IF_ERROR(ValidateEvent(e, i));
    const size_t size = EncodeEntry(e, absl::UnixEpoch()).size();
    if (size > kMaxEntryBytes) {
      return Bad("ENTRY_TOO_LARGE",
                 absl::StrCat("events[", i, "] encodes to ", size, " bytes; the limit is ",
                              kMaxEntryBytes),
                 {{"index", absl::StrCat(i)}});
    }
  }
  return absl::OkStatus();
}

AuditLog::AuditLog(MysqlPool& pool, std::shared_ptr<const Signer> signer, AuditLogOptions options)
    : pool_(pool), signer_(std::move(signer)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Create(MysqlPool& pool,
                                                           std::shared_ptr<const Signer> signer,
                                                           AuditLogOptions options,
                                                           prometheus::Registry* registry) {
  if (options.retention < absl::Hours(24 * kMinimumRetentionDays)) {
    return InvalidField("--retention-days",
                        absl::StrCat("is ", options.retention / absl::Hours(24),
                                     " days; logs must be kept at least ", kMinimumRetentionDays,
                                     " days (six months, R13.2)"));
  }
  if (options.index_segment_leaves < 1 || options.index_segment_leaves > (uint64_t{1} << 20)) {
    return InvalidField("index_segment_leaves", "must be 1..1048576");
  }
  if (options.checkpoint_every_entries < 1) {
    return InvalidField("--checkpoint-every-entries", "must be at least 1");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(pool, std::move(signer), std::move(options)));
  RETURN_IF_ERROR(log->Init(registry));
  return log;
}

absl::Time AuditLog::Now() const { return ToMicros(options_.clock->Now()); }

absl::Status AuditLog::Init(prometheus::Registry* registry) {
  static prometheus::Registry* fallback = new prometheus::Registry();
  prometheus::Registry& r = registry != nullptr ? *registry : *fallback;
  if (registry != nullptr || metrics_.appended == nullptr) {
    metrics_.appended = &prometheus::BuildCounter()
                             .Name("qunzu_audit_entries_appended_total")
                             .Help("Entries appended to the audit log (duplicates excluded).")
                             .Register(r)
                             .Add({});
    metrics_.duplicates = &prometheus::BuildCounter()
                               .Name("qunzu_audit_duplicate_entries_total")
                               .Help("Entries received again and acknowledged as duplicates.")
                               .Register(r)
                               .Add({});
    metrics_.batch_size = &prometheus::BuildHistogram()
                               .Name("qunzu_audit_append_batch_size")
                               .Help("Events per Append call.")
                               .Register(r)
                               .Add({}, prometheus::Histogram::BucketBoundaries{
                                            1, 2, 5, 10, 20, 50, 100, 200, 500, 1000});
    metrics_.latency = &prometheus::BuildHistogram()
                            .Name("qunzu_audit_append_seconds")
                            .Help("Time to durably commit one Append batch.")
                            .Register(r)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1,
                                         0.25, 0.5, 1, 2.5});
    metrics_.tree_size = &prometheus::BuildGauge()
                              .Name("qunzu_audit_tree_size")
                              .Help("Leaves in the audit Merkle tree.")
                              .Register(r)
                              .Add({});
    metrics_.checkpoint_age = &prometheus::BuildGauge()
                                   .Name("qunzu_audit_newest_checkpoint_age_seconds")
                                   .Help("Age of the newest signed checkpoint.")
                                   .Register(r)
                                   .Add({});
    metrics_.purge_runs = &prometheus::BuildCounter()
                               .Name("qunzu_audit_purge_runs_total")
                               .Help("Purges that dropped at least one monthly partition.")
                               .Register(r)
                               .Add({});
    metrics_.checkpoints = &prometheus::BuildCounter()
                                .Name("qunzu_audit_checkpoints_signed_total")
                                .Help("Checkpoints signed.")
                                .Register(r)
                                .Add({});
    metrics_.redone = &prometheus::BuildCounter()
                           .Name("qunzu_audit_append_groups_redone_total")
                           .Help(
                               "Append groups whose speculative write was stale (the tree "
                               "head moved) or failed, and was redone under the head lock.")
                           .Register(r)
                           .Add({});
    metrics_.index_lag = &prometheus::BuildGauge()
                              .Name("qunzu_audit_key_index_lag_entries")
                              .Help(
                                  "Entries past the last segment the key index covers "
                                  "(Query scans them).")
                              .Register(r)
                              .Add({});
  }
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  RETURN_IF_ERROR(Execute(*lease,
                          "INSERT IGNORE INTO audit_signing_keys (key_id, public_key, "
                          "first_used_at) VALUES (?, ?, ?)",
                          {signer_->key_id(), signer_->public_key(), Now()})
                      .status());
  RETURN_IF_ERROR(EnsurePartitionFor(Now()));
  UpdateGauges();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AuditLog::PartitionInfo>> AuditLog::ListPartitions(
    sql::Connection& conn, absl::string_view table) {
  std::vector<PartitionInfo> out;
  RETURN_IF_ERROR(
      qunzu::Query(conn,
                   "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM "
                   "information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND "
                   "TABLE_NAME = ? ORDER BY PARTITION_ORDINAL_POSITION",
                   {std::string(table)}, [&](const sql::ResultSet& row) -> absl::Status {
                     PartitionInfo p;
                     p.name = Bytes(row, 1);
                     int64_t days = 0;
                     if (!absl::SimpleAtoi(Bytes(row, 2), &days)) {
                       return MakeError(absl::StatusCode::kInternal, "PARTITION_INVALID",
                                        "partition bound is not a day number: " + p.name);
                     }
                     // TO_DAYS('1970-01-01') = 719528.
                     p.end = absl::UnixEpoch() + absl::Hours(24) * (days - 719528);
                     p.start = out.empty() ? absl::InfinitePast() : out.back().end;
                     out.push_back(p);
                     return absl::OkStatus();
                   }));
  return out;
}

absl::Status AuditLog::EnsurePartitionFor(absl::Time t) {
  absl::MutexLock lock(&partition_mu_);
  if (t < covered_until_) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> conn, pool_.OpenDedicated());
  const std::string lock_name = "qunzu_audit_partitions_" + pool_.schema();
  ASSIGN_OR_RETURN(bool locked, GetNamedLock(*conn, lock_name, absl::Seconds(60)));
  if (!locked) {
    return MakeError(absl::StatusCode::kUnavailable, "PARTITION_LOCK_TIMEOUT",
                     "another replica holds the partition lock");
  }
  absl::Status status = [&]() -> absl::Status {
    // Cover t's month and the next, so a month change rarely waits on DDL.
    const absl::Time target = StartOf(MonthOf(t) + 2);
    for (const char* table : kPartitionedTables) {
      ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*conn, table));
      absl::Time end = parts.back().end;
      absl::CivilMonth month = end <= StartOf(MonthOf(t)) ? MonthOf(t) : MonthOf(end);
      while (end < target) {
        RETURN_IF_ERROR(
            Execute(*conn, absl::StrCat("ALTER TABLE ", table, " ADD PARTITION (PARTITION ",
                                        PartitionName(month), " VALUES LESS THAN (TO_DAYS('",
                                        absl::FormatCivilTime(absl::CivilDay(month + 1)), "')))"))
                .status());
        end = StartOf(month + 1);
        month += 1;
      }
    }
    covered_until_ = target;
    return absl::OkStatus();
  }();
  (void)ReleaseNamedLock(*conn, lock_name);
  return status;
}

absl::StatusOr<AuditLog::Head> AuditLog::LoadHead(sql::Connection& conn, bool for_update) {
  std::optional<Head> head;
  RETURN_IF_ERROR(qunzu::Query(
      conn,
      absl::StrCat("SELECT tree_size, frontier, last_appended_at, last_checkpoint_size, "
                   "last_checkpoint_at, oldest_leaf_index FROM audit_tree_head WHERE id = 1",
                   for_update ? " FOR UPDATE" : ""),
      {}, [&](const sql::ResultSet& row) -> absl::Status {
        Head h;
        h.tree_size = row.getUInt64(1);
        ASSIGN_OR_RETURN(h.frontier, Frontier::Parse(h.tree_size, Bytes(row, 2)));
        ASSIGN_OR_RETURN(h.last_appended_at, TimeColumn(row, 3));
        h.last_checkpoint_size = row.getUInt64(4);
        ASSIGN_OR_RETURN(h.last_checkpoint_at, TimeColumn(row, 5));
        h.oldest_leaf_index = row.getUInt64(6);
        head = std::move(h);
        return absl::OkStatus();
      }));
  if (!head) {
    return MakeError(absl::StatusCode::kInternal, "TREE_HEAD_MISSING",
                     "audit_tree_head has no row; the schema is damaged");
  }
  return *std::move(head);
}

}  // namespace qunzu::audit
