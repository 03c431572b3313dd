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
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {
namespace {

constexpr char kOwnService[] = "audit";
constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr uint64_t kMaxVerifyRange = 1000000;
// The most entries one group commit writes.
constexpr size_t kMaxGroupEntries = 5000;

const std::set<std::string>& KnownSources() {
  static const auto* sources =
      new std::set<std::string>{"identity", "groups", "credit", "moderation"};
  return *sources;
}

absl::Status Bad(absl::string_view reason, absl::string_view message,
                 const std::map<std::string, std::string>& metadata = {}) {
  return MakeError(absl::StatusCode::kInvalidArgument, reason, message, metadata);
}

absl::Status OutOfRange(absl::string_view reason, absl::string_view message) {
  return MakeError(absl::StatusCode::kOutOfRange, reason, message);
}

absl::Time ToMicros(absl::Time t) { return absl::FromUnixMicros(absl::ToUnixMicros(t)); }

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::StatusOr<absl::Time> TimeColumn(const sql::ResultSet& row, int column) {
  if (row.isNull(column)) return absl::InfinitePast();
  return ParseSqlDateTime(std::string(row.getString(column)));
}

std::string Bytes(const sql::ResultSet& row, int column) {
  return std::string(row.getString(column));
}

absl::CivilMonth MonthOf(absl::Time t) {
  return absl::CivilMonth(absl::ToCivilSecond(t, absl::UTCTimeZone()));
}

absl::Time StartOf(absl::CivilMonth month) { return absl::FromCivil(month, absl::UTCTimeZone()); }

std::string PartitionName(absl::CivilMonth month) {
  return absl::StrCat("p", absl::FormatCivilTime(month).substr(0, 4),
                      absl::FormatCivilTime(month).substr(5, 2));
}

std::string MonthLabel(absl::CivilMonth month) { return absl::FormatCivilTime(month); }

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

// Literal SQL values for the append path's multi-row INSERTs. A statement
// without parameters runs over the text protocol in one round trip (a
// prepared one costs prepare, execute and close), so the append path builds
// its statements from literals: numbers in decimal, every string and byte
// string as a hex literal (no escaping to get wrong), text with an
// explicit utf8mb4 introducer (ValidateAppend checked it is UTF-8).
void AppendHex(std::string& out, absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  out += "X'";
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  out += "'";
}

void AppendText(std::string& out, absl::string_view text) {
  if (text.empty()) {
    out += "''";
    return;
  }
  out += "_utf8mb4 ";
  AppendHex(out, text);
}

void AppendTime(std::string& out, absl::Time t) {
  out += "'";
  out += absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
  out += "'";
}

// Statements of literal rows, cut so none exceeds kMaxStatementBytes (well
// under max_allowed_packet's default of 16 MiB).
constexpr size_t kMaxStatementBytes = 4 * 1024 * 1024;

class LiteralInsert {
 public:
  explicit LiteralInsert(std::string prefix) : prefix_(std::move(prefix)) {}
  // Starts a row; the caller appends "v1,v2,..." to the returned string.
  std::string& Row() {
    if (current_.size() >= kMaxStatementBytes) {
      current_ += ")";
      statements_.push_back(std::move(current_));
      current_.clear();
    }
    if (current_.empty()) {
      current_ = prefix_;
      current_ += "(";
    } else {
      current_ += "),(";
    }
    ++rows_;
    return current_;
  }
  size_t rows() const { return rows_; }
  absl::Status Run(sql::Connection& conn) {
    if (!current_.empty()) {
      current_ += ")";
      statements_.push_back(std::move(current_));
      current_.clear();
    }
    for (const std::string& statement : statements_) {
      RETURN_IF_ERROR(Execute(conn, statement).status());
    }
    statements_.clear();
    return absl::OkStatus();
  }

 private:
  std::string prefix_;
  std::string current_;
  std::vector<std::string> statements_;
  size_t rows_ = 0;
};

absl::StatusOr<uint64_t> ParsePageToken(const std::string& token) {
  if (token.empty()) return 0;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(token, &v))
    return InvalidField("page.page_token", "is not a token we gave");
  return v;
}

absl::StatusOr<int> PageSize(const common::v1::PageRequest& page) {
  if (page.page_size() < 0 || page.page_size() > kMaxPageSize) {
    return InvalidField("page.page_size", "must be 0..1000");
  }
  return page.page_size() == 0 ? kDefaultPageSize : page.page_size();
}

v1::Checkpoint CheckpointFromRow(const sql::ResultSet& row, absl::Time time) {
  v1::Checkpoint cp;
  cp.set_tree_size(row.getUInt64(1));
  cp.set_root_hash(Bytes(row, 2));
  ToProto(time, cp.mutable_time());
  cp.set_key_id(Bytes(row, 4));
  cp.set_signature(Bytes(row, 5));
  return cp;
}

constexpr char kCheckpointColumns[] = "tree_size, root_hash, created_at, key_id, signature";

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
    : pool_(pool), signer_(std::move(signer)), options_(options) {}

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
  if (options.checkpoint_every_entries < 1) {
    return InvalidField("--checkpoint-every-entries", "must be at least 1");
  }
  std::unique_ptr<AuditLog> log(new AuditLog(pool, std::move(signer), options));
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
    sql::Connection& conn) {
  std::vector<PartitionInfo> out;
  RETURN_IF_ERROR(qunzu::Query(conn,
                               "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM "
                               "information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND "
                               "TABLE_NAME = 'audit_entries' ORDER BY PARTITION_ORDINAL_POSITION",
                               {}, [&](const sql::ResultSet& row) -> absl::Status {
                                 PartitionInfo p;
                                 p.name = Bytes(row, 1);
                                 int64_t days = 0;
                                 if (!absl::SimpleAtoi(Bytes(row, 2), &days)) {
                                   return MakeError(
                                       absl::StatusCode::kInternal, "PARTITION_INVALID",
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
    ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*conn));
    absl::Time end = parts.back().end;
    // Cover t's month and the next, so a month change rarely waits on DDL.
    const absl::Time target = StartOf(MonthOf(t) + 2);
    absl::CivilMonth month = end <= StartOf(MonthOf(t)) ? MonthOf(t) : MonthOf(end);
    while (end < target) {
      RETURN_IF_ERROR(
          Execute(*conn, absl::StrCat("ALTER TABLE audit_entries ADD PARTITION "
                                      "(PARTITION ",
                                      PartitionName(month), " VALUES LESS THAN (TO_DAYS('",
                                      absl::FormatCivilTime(absl::CivilDay(month + 1)), "')))"))
              .status());
      end = StartOf(month + 1);
      month += 1;
    }
    covered_until_ = end;
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

absl::Status AuditLog::SaveHead(sql::Connection& conn, const Head& head) {
  return Execute(
             conn,
             "UPDATE audit_tree_head SET tree_size = ?, frontier = ?, last_appended_at = ?, "
             "last_checkpoint_size = ?, last_checkpoint_at = ?, oldest_leaf_index = ? "
             "WHERE id = 1",
             {head.tree_size, head.frontier.Serialize(),
              head.last_appended_at == absl::InfinitePast() ? SqlValue(nullptr)
                                                            : SqlValue(head.last_appended_at),
              head.last_checkpoint_size,
              head.last_checkpoint_at == absl::InfinitePast() ? SqlValue(nullptr)
                                                              : SqlValue(head.last_checkpoint_at),
              head.oldest_leaf_index})
      .status();
}

absl::Status AuditLog::WriteCheckpoint(sql::Connection& conn, Head& head, absl::Time time) {
  const std::string root = HashToBytes(head.frontier.Root());
  const std::string signature = signer_->Sign(
      CheckpointMessage(head.tree_size, root, absl::ToUnixMicros(time), signer_->key_id()));
  RETURN_IF_ERROR(Execute(conn,
                          "INSERT IGNORE INTO audit_checkpoints (tree_size, root_hash, created_at, "
                          "key_id, signature) VALUES (?, ?, ?, ?, ?)",
                          {head.tree_size, root, time, signer_->key_id(), signature})
                      .status());
  head.last_checkpoint_size = head.tree_size;
  head.last_checkpoint_at = time;
  return absl::OkStatus();
}

absl::StatusOr<v1::AppendResponse> AuditLog::Append(const Caller& caller,
                                                    const v1::AppendRequest& request) {
  RETURN_IF_ERROR(ValidateAppend(caller, request));
  std::vector<v1::AuditEvent> events(request.events().begin(), request.events().end());
  // The batch's content, to tell a retry from a reuse of its request_id.
  std::string content;
  for (const v1::AuditEvent& e : events) content += EncodeEntry(e, absl::UnixEpoch());
  return AppendEvents(std::move(events), false, request.request_id(), HashToBytes(Sha256(content)));
}

absl::StatusOr<v1::AppendResponse> AuditLog::AppendOwn(std::vector<v1::AuditEvent> events) {
  for (v1::AuditEvent& e : events) e.set_service(kOwnService);
  return AppendEvents(std::move(events), true, "", "");
}

absl::StatusOr<v1::AppendResponse> AuditLog::AppendEvents(std::vector<v1::AuditEvent> events,
                                                          bool own, const std::string& request_id,
                                                          const std::string& digest) {
  const absl::Time started = absl::Now();
  RETURN_IF_ERROR(EnsurePartitionFor(Now()));
  // Group commit: batches that arrive while one transaction is being built
  // are written together in the next, in arrival order. The next group's
  // transaction starts as soon as the previous one has sent its COMMIT: its
  // SELECT ... FOR UPDATE of the head row waits on the server until that
  // commit releases the row, and the two commits' log flushes overlap.
  PendingAppend pending;
  pending.events = &events;
  pending.own = own;
  pending.request_id = request_id;
  pending.digest = digest;
  {
    absl::MutexLock lock(&queue_mu_);
    queue_.push_back(&pending);
    while (!pending.done) {
      if (building_ || pending.taken) {
        queue_cv_.Wait(&queue_mu_);
        continue;
      }
      building_ = true;
      std::vector<PendingAppend*> group;
      size_t entries = 0;
      while (!queue_.empty() &&
             (group.empty() || entries + queue_.front()->events->size() <= kMaxGroupEntries)) {
        entries += queue_.front()->events->size();
        queue_.front()->taken = true;
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      queue_mu_.Unlock();
      WriteGroup(group);
      queue_mu_.Lock();
      for (PendingAppend* p : group) p->done = true;
      queue_cv_.SignalAll();
    }
  }
  if (pending.result.ok()) {
    metrics_.batch_size->Observe(static_cast<double>(events.size()));
    metrics_.latency->Observe(absl::ToDoubleSeconds(absl::Now() - started));
  }
  return std::move(pending.result);
}

void AuditLog::WriteGroup(const std::vector<PendingAppend*>& group) {
  // Lets the next group start building (see AppendEvents); once.
  bool released = false;
  auto release = [&] {
    if (released) return;
    released = true;
    absl::MutexLock lock(&queue_mu_);
    building_ = false;
    queue_cv_.SignalAll();
  };
  uint64_t appended = 0;
  uint64_t duplicates = 0;
  uint64_t checkpoints = 0;
  uint64_t final_size = 0;
  std::vector<v1::AppendResponse> responses;
  std::vector<absl::Status> refused;
  auto body = [&](sql::Connection& conn) -> absl::Status {
    appended = 0;
    duplicates = 0;
    checkpoints = 0;
    responses.assign(group.size(), v1::AppendResponse());
    ASSIGN_OR_RETURN(Head head, LoadHead(conn, true));
    const absl::Time now = std::max(Now(), head.last_appended_at);
    refused.assign(group.size(), absl::OkStatus());
    // One read, under the head row lock (which makes read-then-insert
    // race-free across replicas), answers both questions: which request_ids
    // were seen before (a request_id must carry the same batch again, else
    // that batch alone is refused), and which events are already in the
    // log by (service, source_id).
    std::map<std::pair<std::string, std::string>, std::string> known;
    std::map<std::pair<std::string, uint64_t>, uint64_t> existing;
    {
      std::vector<std::string> parts;
      std::string requests;
      for (const PendingAppend* p : group) {
        if (p->own || p->request_id.empty()) continue;
        requests += requests.empty() ? "SELECT 0, service, request_id, digest FROM "
                                       "audit_append_requests WHERE "
                                     : " OR ";
        requests += "(service = ";
        AppendText(requests, p->events->front().service());
        requests += " AND request_id = ";
        AppendText(requests, p->request_id);
        requests += ")";
      }
      if (!requests.empty()) parts.push_back(std::move(requests));
      std::map<std::string, std::set<uint64_t>> wanted;
      for (const PendingAppend* p : group) {
        if (p->own) continue;
        for (const v1::AuditEvent& e : *p->events) wanted[e.service()].insert(e.source_id());
      }
      for (const auto& [service, ids] : wanted) {
        // At most 1,000 values per IN list keeps it a plain index range.
        size_t n = 0;
        std::string part;
        for (uint64_t id : ids) {
          if (n % 1000 == 0) {
            if (!part.empty()) parts.push_back(part + ")");
            part =
                "SELECT 1, service, CAST(source_id AS CHAR), CAST(leaf_index AS BINARY) FROM "
                "audit_entries WHERE service = ";
            AppendText(part, service);
            part += " AND source_id IN (";
          } else {
            part += ",";
          }
          absl::StrAppend(&part, id);
          ++n;
        }
        if (!part.empty()) parts.push_back(part + ")");
      }
      if (!parts.empty()) {
        RETURN_IF_ERROR(qunzu::Query(
            conn, absl::StrJoin(parts, " UNION ALL "), {},
            [&](const sql::ResultSet& row) -> absl::Status {
              if (row.getInt(1) == 0) {
                known[{Bytes(row, 2), Bytes(row, 3)}] = Bytes(row, 4);
                return absl::OkStatus();
              }
              uint64_t source_id = 0;
              uint64_t leaf_index = 0;
              if (!absl::SimpleAtoi(Bytes(row, 3), &source_id) ||
                  !absl::SimpleAtoi(Bytes(row, 4), &leaf_index)) {
                return MakeError(absl::StatusCode::kInternal, "AUDIT_ROW_INVALID",
                                 "audit_entries returned a non-numeric source_id or leaf_index");
              }
              existing[{Bytes(row, 2), source_id}] = leaf_index;
              return absl::OkStatus();
            }));
      }
    }
    LiteralInsert request_rows(
        "INSERT INTO audit_append_requests (service, request_id, digest, created_at) VALUES ");
    for (size_t g = 0; g < group.size(); ++g) {
      const PendingAppend* p = group[g];
      if (p->own || p->request_id.empty()) continue;
      const std::pair<std::string, std::string> key = {p->events->front().service(), p->request_id};
      auto it = known.find(key);
      if (it == known.end()) {
        known[key] = p->digest;
        std::string& row = request_rows.Row();
        AppendText(row, key.first);
        row += ",";
        AppendText(row, key.second);
        row += ",";
        AppendHex(row, p->digest);
        row += ",";
        AppendTime(row, now);
      } else if (it->second != p->digest) {
        refused[g] =
            MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                      "request_id " + p->request_id + " was used before for a different batch");
      }
    }
    RETURN_IF_ERROR(request_rows.Run(conn));
    // A month boundary: sign the tree as it stood when the month closed.
    if (head.tree_size > 0 && head.last_appended_at != absl::InfinitePast() &&
        MonthOf(now) != MonthOf(head.last_appended_at) &&
        head.last_checkpoint_size != head.tree_size) {
      RETURN_IF_ERROR(WriteCheckpoint(conn, head, now));
      ++checkpoints;
    }
    LiteralInsert entry_rows(
        "INSERT INTO audit_entries (leaf_index, appended_at, event_time, service, source_id, "
        "action, principal, actor_account_id, request_id, entry, leaf_hash) VALUES ");
    LiteralInsert node_rows("INSERT INTO audit_nodes (level, node_index, hash) VALUES ");
    LiteralInsert subject_rows("INSERT INTO audit_subjects (kind, subject_id, leaf_index) VALUES ");
    std::string now_literal;
    AppendTime(now_literal, now);
    for (size_t g = 0; g < group.size(); ++g) {
      const bool own = group[g]->own;
      if (!refused[g].ok()) continue;
      for (v1::AuditEvent& e : *group[g]->events) {
        v1::AppendResult* result = responses[g].add_results();
        if (!own) {
          auto it = existing.find({e.service(), e.source_id()});
          if (it != existing.end()) {
            result->set_leaf_index(it->second);
            result->set_duplicate(true);
            ++duplicates;
            continue;
          }
        }
        const uint64_t leaf_index = head.tree_size;
        if (own) e.set_source_id(leaf_index + 1);
        existing[{e.service(), e.source_id()}] = leaf_index;
        result->set_leaf_index(leaf_index);
        const std::string bytes = EncodeEntry(e, now);
        const Hash leaf = LeafHash(bytes);
        head.frontier.Append(leaf, [&](const NodeId& id, const Hash& h) {
          if (id.level < kStoredLevel) return;
          std::string& row = node_rows.Row();
          absl::StrAppend(&row, id.level, ",", id.index, ",");
          AppendHex(row, HashToBytes(h));
        });
        std::string& row = entry_rows.Row();
        absl::StrAppend(&row, leaf_index, ",", now_literal, ",");
        if (e.has_time()) {
          AppendTime(row, ToMicros(FromProto(e.time())));
        } else {
          row += "NULL";
        }
        row += ",";
        AppendText(row, e.service());
        absl::StrAppend(&row, ",", e.source_id(), ",");
        AppendText(row, e.action());
        row += ",";
        AppendText(row, e.principal());
        absl::StrAppend(&row, ",", e.actor_account_id(), ",");
        AppendText(row, e.request_id());
        row += ",";
        AppendHex(row, bytes);
        row += ",";
        AppendHex(row, HashToBytes(leaf));
        std::set<std::pair<int, uint64_t>> seen;
        for (const v1::Subject& s : e.subjects()) {
          if (!seen.insert({s.kind(), s.id()}).second) continue;
          absl::StrAppend(&subject_rows.Row(), static_cast<int64_t>(s.kind()), ",", s.id(), ",",
                          leaf_index);
        }
        head.tree_size = head.frontier.size();
        ++appended;
      }
    }
    if (entry_rows.rows() > 0) {
      RETURN_IF_ERROR(entry_rows.Run(conn));
      RETURN_IF_ERROR(node_rows.Run(conn));
      RETURN_IF_ERROR(subject_rows.Run(conn));
      head.last_appended_at = now;
      const bool by_count = head.tree_size - head.last_checkpoint_size >=
                            static_cast<uint64_t>(options_.checkpoint_every_entries);
      const bool by_time = head.last_checkpoint_at == absl::InfinitePast() ||
                           now - head.last_checkpoint_at >= options_.checkpoint_interval;
      if (by_count || by_time) {
        RETURN_IF_ERROR(WriteCheckpoint(conn, head, now));
        ++checkpoints;
      }
      RETURN_IF_ERROR(SaveHead(conn, head));
    } else if (checkpoints > 0) {
      RETURN_IF_ERROR(SaveHead(conn, head));
    }
    for (v1::AppendResponse& r : responses) r.set_tree_size(head.tree_size);
    final_size = head.tree_size;
    return absl::OkStatus();
  };
  // WithTransaction's loop, but the next group may start building once
  // this one's body is done and only its COMMIT is outstanding.
  absl::Status status;
  constexpr int kAttempts = 4;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    absl::StatusOr<MysqlPool::Lease> lease = pool_.Acquire(absl::Seconds(5));
    if (!lease.ok()) {
      status = lease.status();
      break;
    }
    sql::Connection& conn = **lease;
    bool failed_at_begin = false;
    {
      absl::MutexLock lock(&append_mu_);
      status = Execute(conn, "START TRANSACTION").status();
      if (!status.ok()) {
        failed_at_begin = true;
      } else {
        status = body(conn);
        if (!status.ok() && !conn.isClosed() && !Execute(conn, "ROLLBACK").ok()) {
          lease->MarkBroken();
        }
      }
    }
    if (status.ok()) {
      release();
      status = Execute(conn, "COMMIT").status();
      if (!status.ok()) {
        if (conn.isClosed()) {
          status = MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable,
                             absl::StrCat("COMMIT failed on a broken connection; its outcome is "
                                          "unknown: ",
                                          status.message()));
        } else if (!Execute(conn, "ROLLBACK").ok()) {
          lease->MarkBroken();
        }
      }
      break;
    }
    const std::string reason = ErrorReason(status);
    if (reason == kMysqlConflict) {
      absl::SleepFor(absl::Milliseconds(attempt * 5));
      continue;
    }
    if (!(failed_at_begin && reason == kMysqlUnavailable)) break;
  }
  release();
  for (size_t g = 0; g < group.size(); ++g) {
    if (status.ok() && !refused[g].ok()) {
      group[g]->result = refused[g];
    } else if (status.ok()) {
      group[g]->result = std::move(responses[g]);
    } else {
      group[g]->result = status;
    }
  }
  if (!status.ok()) return;
  metrics_.appended->Increment(static_cast<double>(appended));
  metrics_.duplicates->Increment(static_cast<double>(duplicates));
  metrics_.checkpoints->Increment(static_cast<double>(checkpoints));
  metrics_.tree_size->Set(static_cast<double>(final_size));
  if (checkpoints > 0) metrics_.checkpoint_age->Set(0);
}

absl::Status AuditLog::MaybeCheckpoint() {
  absl::MutexLock lock(&append_mu_);
  bool signed_one = false;
  absl::Status status = WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
    signed_one = false;
    ASSIGN_OR_RETURN(Head head, LoadHead(conn, true));
    const absl::Time now = std::max(Now(), head.last_appended_at);
    if (head.tree_size == head.last_checkpoint_size) return absl::OkStatus();
    if (head.last_checkpoint_at != absl::InfinitePast() &&
        now - head.last_checkpoint_at < options_.checkpoint_interval) {
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(WriteCheckpoint(conn, head, now));
    signed_one = true;
    return SaveHead(conn, head);
  });
  RETURN_IF_ERROR(status);
  if (signed_one) metrics_.checkpoints->Increment();
  return absl::OkStatus();
}

void AuditLog::UpdateGauges() {
  absl::StatusOr<MysqlPool::Lease> lease = pool_.Acquire(absl::Seconds(1));
  if (!lease.ok()) return;
  absl::StatusOr<Head> head = LoadHead(**lease, false);
  if (!head.ok()) return;
  metrics_.tree_size->Set(static_cast<double>(head->tree_size));
  if (head->last_checkpoint_at != absl::InfinitePast()) {
    metrics_.checkpoint_age->Set(absl::ToDoubleSeconds(Now() - head->last_checkpoint_at));
  }
}

absl::StatusOr<std::vector<Hash>> AuditLog::ReadNodes(sql::Connection& conn,
                                                      const std::vector<NodeId>& nodes) {
  return ReadTreeNodes(conn, nodes);
}

absl::StatusOr<std::optional<v1::Checkpoint>> AuditLog::ReadCheckpoint(sql::Connection& conn,
                                                                       uint64_t tree_size) {
  std::optional<v1::Checkpoint> out;
  RETURN_IF_ERROR(qunzu::Query(
      conn,
      absl::StrCat("SELECT ", kCheckpointColumns, " FROM audit_checkpoints WHERE tree_size = ?"),
      {tree_size}, [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
        out = CheckpointFromRow(row, t);
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<uint64_t> AuditLog::LatestCheckpointSize(sql::Connection& conn) {
  uint64_t size = 0;
  RETURN_IF_ERROR(qunzu::Query(conn, "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints",
                               {}, [&](const sql::ResultSet& row) {
                                 size = row.getUInt64(1);
                                 return absl::OkStatus();
                               }));
  return size;
}

absl::StatusOr<v1::SigningKey> AuditLog::ReadKey(sql::Connection& conn, const std::string& key_id) {
  std::optional<v1::SigningKey> key;
  RETURN_IF_ERROR(qunzu::Query(
      conn, "SELECT key_id, public_key, first_used_at FROM audit_signing_keys WHERE key_id = ?",
      {key_id}, [&](const sql::ResultSet& row) -> absl::Status {
        v1::SigningKey k;
        k.set_key_id(Bytes(row, 1));
        k.set_public_key(Bytes(row, 2));
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
        ToProto(t, k.mutable_first_used_at());
        key = std::move(k);
        return absl::OkStatus();
      }));
  if (!key) {
    return MakeError(absl::StatusCode::kDataLoss, "SIGNING_KEY_MISSING",
                     "no public key recorded for key id " + key_id);
  }
  return *key;
}

absl::StatusOr<v1::GetCheckpointResponse> AuditLog::GetCheckpoint(
    const v1::GetCheckpointRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  uint64_t size = request.tree_size();
  if (size == 0) {
    ASSIGN_OR_RETURN(size, LatestCheckpointSize(*lease));
  }
  std::optional<v1::Checkpoint> cp;
  if (size > 0) {
    ASSIGN_OR_RETURN(cp, ReadCheckpoint(*lease, size));
  }
  if (!cp) {
    return MakeError(absl::StatusCode::kNotFound, "CHECKPOINT_NOT_FOUND",
                     request.tree_size() == 0
                         ? std::string("no checkpoint has been signed yet")
                         : absl::StrCat("no checkpoint at tree size ", request.tree_size()));
  }
  v1::GetCheckpointResponse out;
  ASSIGN_OR_RETURN(*out.mutable_signing_key(), ReadKey(*lease, cp->key_id()));
  *out.mutable_checkpoint() = *std::move(cp);
  return out;
}

absl::StatusOr<v1::ListCheckpointsResponse> AuditLog::ListCheckpoints(
    const v1::ListCheckpointsRequest& request) {
  ASSIGN_OR_RETURN(int page_size, PageSize(request.page()));
  ASSIGN_OR_RETURN(uint64_t from, ParsePageToken(request.page().page_token()));
  from = std::max(from, request.min_tree_size());
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  v1::ListCheckpointsResponse out;
  std::set<std::string> key_ids;
  absl::Status s =
      qunzu::Query(*lease,
                   absl::StrCat("SELECT ", kCheckpointColumns,
                                " FROM audit_checkpoints WHERE tree_size >= ? "
                                "ORDER BY tree_size LIMIT ?"),
                   {from, page_size + 1}, [&](const sql::ResultSet& row) -> absl::Status {
                     ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
                     *out.add_checkpoints() = CheckpointFromRow(row, t);
                     return absl::OkStatus();
                   });
  RETURN_IF_ERROR(s);
  if (out.checkpoints_size() > page_size) {
    out.mutable_page()->set_next_page_token(absl::StrCat(out.checkpoints(page_size).tree_size()));
    out.mutable_checkpoints()->RemoveLast();
  }
  for (const v1::Checkpoint& cp : out.checkpoints()) key_ids.insert(cp.key_id());
  for (const std::string& id : key_ids) {
    ASSIGN_OR_RETURN(*out.add_signing_keys(), ReadKey(*lease, id));
  }
  return out;
}

absl::StatusOr<v1::GetInclusionProofResponse> AuditLog::GetInclusionProof(
    const v1::GetInclusionProofRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t size = request.tree_size();
  if (size == 0) {
    ASSIGN_OR_RETURN(size, LatestCheckpointSize(*lease));
    if (size == 0) {
      return MakeError(absl::StatusCode::kNotFound, "CHECKPOINT_NOT_FOUND",
                       "no checkpoint has been signed yet; name a tree_size");
    }
  }
  if (size > head.tree_size) {
    return OutOfRange("TREE_SIZE_OUT_OF_RANGE",
                      absl::StrCat("tree_size ", size, " is past the log's ", head.tree_size));
  }
  if (request.leaf_index() >= size) {
    return OutOfRange("LEAF_INDEX_OUT_OF_RANGE",
                      absl::StrCat("leaf_index ", request.leaf_index(), " is not in a tree of ",
                                   size, " leaves"));
  }
  if (request.leaf_index() < head.oldest_leaf_index) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "LEAF_PURGED",
                     absl::StrCat("leaf ", request.leaf_index(), " was purged; the oldest kept is ",
                                  head.oldest_leaf_index));
  }
  auto read = [&](const std::vector<NodeId>& ids) { return ReadNodes(*lease, ids); };
  ASSIGN_OR_RETURN(std::vector<Hash> proof, BuildInclusionProof(request.leaf_index(), size, read));
  ASSIGN_OR_RETURN(std::vector<Hash> leaf, ReadNodes(*lease, {{0, request.leaf_index()}}));
  v1::GetInclusionProofResponse out;
  out.set_leaf_index(request.leaf_index());
  out.set_tree_size(size);
  out.set_leaf_hash(HashToBytes(leaf.front()));
  for (const Hash& h : proof) out.add_hashes(HashToBytes(h));
  ASSIGN_OR_RETURN(std::optional<v1::Checkpoint> cp, ReadCheckpoint(*lease, size));
  if (cp) *out.mutable_checkpoint() = *std::move(cp);
  return out;
}

absl::StatusOr<v1::GetConsistencyProofResponse> AuditLog::GetConsistencyProof(
    const v1::GetConsistencyProofRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t second = request.second_tree_size();
  if (second == 0) {
    ASSIGN_OR_RETURN(second, LatestCheckpointSize(*lease));
  }
  if (request.first_tree_size() == 0) {
    return InvalidField("first_tree_size", "must be at least 1");
  }
  if (request.first_tree_size() > head.tree_size || second > head.tree_size) {
    return OutOfRange("TREE_SIZE_OUT_OF_RANGE",
                      absl::StrCat("tree sizes ", request.first_tree_size(), " and ", second,
                                   " must not pass the log's ", head.tree_size));
  }
  if (request.first_tree_size() > second) {
    return Bad("TREE_SIZES_OUT_OF_ORDER",
               absl::StrCat("first_tree_size ", request.first_tree_size(),
                            " is above second_tree_size ", second));
  }
  auto read = [&](const std::vector<NodeId>& ids) { return ReadNodes(*lease, ids); };
  ASSIGN_OR_RETURN(std::vector<Hash> proof,
                   BuildConsistencyProof(request.first_tree_size(), second, read));
  v1::GetConsistencyProofResponse out;
  out.set_first_tree_size(request.first_tree_size());
  out.set_second_tree_size(second);
  for (const Hash& h : proof) out.add_hashes(HashToBytes(h));
  return out;
}

absl::StatusOr<v1::VerifyRangeResponse> AuditLog::VerifyRange(
    const v1::VerifyRangeRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t end = request.end_leaf_index();
  if (end == 0) {
    ASSIGN_OR_RETURN(end, LatestCheckpointSize(*lease));
  }
  const uint64_t start = request.start_leaf_index();
  if (end > head.tree_size || start >= std::max<uint64_t>(end, 1)) {
    return OutOfRange("LEAF_INDEX_OUT_OF_RANGE",
                      absl::StrCat("range [", start, ", ", end, ") is not inside the log's ",
                                   head.tree_size, " leaves"));
  }
  if (end - start > kMaxVerifyRange) {
    return Bad("RANGE_TOO_LARGE", absl::StrCat("at most ", kMaxVerifyRange, " leaves per call"));
  }
  if (start < head.oldest_leaf_index) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "LEAF_PURGED",
        absl::StrCat("leaf ", start, " was purged; the oldest kept is ", head.oldest_leaf_index));
  }
  std::map<std::string, std::string> keys;
  RETURN_IF_ERROR(qunzu::Query(*lease, "SELECT key_id, public_key FROM audit_signing_keys", {},
                               [&](const sql::ResultSet& row) {
                                 keys[Bytes(row, 1)] = Bytes(row, 2);
                                 return absl::OkStatus();
                               }));
  std::vector<v1::Checkpoint> checkpoints;
  RETURN_IF_ERROR(qunzu::Query(*lease,
                               absl::StrCat("SELECT ", kCheckpointColumns,
                                            " FROM audit_checkpoints WHERE tree_size >= ? AND "
                                            "tree_size <= ? ORDER BY tree_size"),
                               {start, end}, [&](const sql::ResultSet& row) -> absl::Status {
                                 ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
                                 checkpoints.push_back(CheckpointFromRow(row, t));
                                 return absl::OkStatus();
                               }));
  LogVerifier verifier(keys, checkpoints);
  ASSIGN_OR_RETURN(std::vector<Hash> frontier_hashes, ReadNodes(*lease, Frontier::NodesFor(start)));
  ASSIGN_OR_RETURN(Frontier frontier, Frontier::Create(start, frontier_hashes));
  if (verifier.CheckCheckpoints() && verifier.Start(frontier, false)) {
    uint64_t next = start;
    bool going = true;
    while (going && next < end) {
      uint64_t rows = 0;
      absl::Status read = qunzu::Query(
          *lease,
          "SELECT leaf_index, entry, leaf_hash FROM audit_entries WHERE leaf_index >= ? AND "
          "leaf_index < ? ORDER BY leaf_index LIMIT 5000",
          {next, end}, [&](const sql::ResultSet& row) -> absl::Status {
            ++rows;
            const uint64_t index = row.getUInt64(1);
            std::optional<Hash> stored;
            if (!row.isNull(3)) {
              absl::StatusOr<Hash> h = HashFromBytes(Bytes(row, 3));
              if (h.ok()) stored = *h;
            }
            next = index + 1;
            if (!verifier.AddLeaf(index, Bytes(row, 2), stored)) {
              going = false;
              return MakeError(absl::StatusCode::kAborted, "STOP", "stop");
            }
            return absl::OkStatus();
          });
      if (going) RETURN_IF_ERROR(read);
      if (rows == 0) break;
    }
    if (verifier.ok() && verifier.tree_size() < end) {
      verifier.AddLeaf(end, "", std::nullopt);  // reports the first missing entry
    }
    if (verifier.ok()) verifier.Finish();
  }
  v1::VerifyRangeResponse out;
  out.set_ok(verifier.ok());
  out.set_entries_checked(verifier.entries_checked());
  out.set_checkpoints_checked(verifier.checkpoints_checked());
  if (verifier.failure()) *out.mutable_first_failure() = *verifier.failure();
  if (verifier.last_verified_checkpoint()) {
    *out.mutable_checkpoint() = *verifier.last_verified_checkpoint();
  }
  return out;
}

absl::StatusOr<v1::QueryResponse> AuditLog::Query(const Caller& caller, const std::string& peer,
                                                  const v1::QueryRequest& request) {
  const v1::AuditFilter& f = request.filter();
  if (f.has_start_time() && f.has_end_time() &&
      FromProto(f.start_time()) >= FromProto(f.end_time())) {
    return Bad("TIME_RANGE_INVALID", "filter.start_time must be before filter.end_time");
  }
  if (f.end_leaf_index() != 0 && f.end_leaf_index() <= f.start_leaf_index()) {
    return Bad("INVALID_FIELD", "filter.end_leaf_index must be above filter.start_leaf_index",
               {{"field", "filter.end_leaf_index"}});
  }
  if (request.purpose().size() > 1024 || !IsValidUtf8(request.purpose())) {
    return InvalidField("purpose", "must be valid UTF-8 of at most 1024 bytes");
  }
  ASSIGN_OR_RETURN(int page_size, PageSize(request.page()));
  ASSIGN_OR_RETURN(uint64_t from, ParsePageToken(request.page().page_token()));
  std::vector<std::string> where = {"leaf_index >= ?"};
  std::vector<SqlValue> params = {std::max(from, f.start_leaf_index())};
  if (f.end_leaf_index() != 0) {
    where.push_back("leaf_index < ?");
    params.emplace_back(f.end_leaf_index());
  }
  if (f.has_start_time()) {
    where.push_back("event_time >= ?");
    params.emplace_back(FromProto(f.start_time()));
  }
  if (f.has_end_time()) {
    where.push_back("event_time < ?");
    params.emplace_back(FromProto(f.end_time()));
  }
  auto eq = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    where.push_back(absl::StrCat(column, " = ?"));
    params.emplace_back(value);
  };
  eq("service", f.service());
  eq("action", f.action());
  eq("principal", f.principal());
  eq("request_id", f.request_id());
  if (f.actor_account_id() != 0) {
    where.push_back("actor_account_id = ?");
    params.emplace_back(f.actor_account_id());
  }
  if (f.has_subject()) {
    where.push_back(
        "leaf_index IN (SELECT leaf_index FROM audit_subjects WHERE kind = ? AND subject_id = ?)");
    params.emplace_back(static_cast<int64_t>(f.subject().kind()));
    params.emplace_back(f.subject().id());
  }
  params.emplace_back(page_size + 1);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  v1::QueryResponse out;
  RETURN_IF_ERROR(
      qunzu::Query(*lease,
                   absl::StrCat("SELECT leaf_index, entry FROM audit_entries WHERE ",
                                absl::StrJoin(where, " AND "), " ORDER BY leaf_index LIMIT ?"),
                   params, [&](const sql::ResultSet& row) -> absl::Status {
                     const std::string bytes = Bytes(row, 2);
                     v1::AuditEntry* entry = out.add_entries();
                     entry->set_leaf_index(row.getUInt64(1));
                     entry->set_leaf_hash(HashToBytes(LeafHash(bytes)));
                     entry->set_canonical_entry(bytes);
                     absl::StatusOr<DecodedEntry> decoded = DecodeEntry(bytes);
                     if (decoded.ok()) {
                       *entry->mutable_event() = std::move(decoded->event);
                       ToProto(decoded->appended_at, entry->mutable_appended_at());
                     }
                     return absl::OkStatus();
                   }));
  if (out.entries_size() > page_size) {
    out.mutable_page()->set_next_page_token(absl::StrCat(out.entries(page_size).leaf_index()));
    out.mutable_entries()->RemoveLast();
  }
  out.set_tree_size(head.tree_size);
  if (caller.role == common::v1::ROLE_REGULATOR) {
    // R13.1: the regulator's inspections are themselves on the record, and
    // the answer is given only once that record is durable.
    v1::AuditEvent event =
        AuditEventFor(caller, peer, "/qunzu.audit.v1.AuditService/Query", "AUDIT_LOG_QUERIED", "");
    ToProto(Now(), event.mutable_time());
    (*event.mutable_details())["purpose"] = request.purpose();
    (*event.mutable_details())["filter"] = f.ShortDebugString().substr(0, 4000);
    (*event.mutable_details())["entries_returned"] = absl::StrCat(out.entries_size());
    ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
    (void)appended;
  }
  return out;
}

namespace {

struct HoldRow {
  v1::LegalHold hold;
  absl::Time start;
  absl::Time end;
  bool active = true;
};

absl::StatusOr<std::vector<HoldRow>> ReadHolds(sql::Connection& conn, uint64_t only_id) {
  std::vector<HoldRow> out;
  RETURN_IF_ERROR(qunzu::Query(
      conn,
      absl::StrCat("SELECT legal_hold_id, start_time, end_time, case_reference, reason, "
                   "placed_by, placed_at, released_at, released_by, release_reason "
                   "FROM audit_legal_holds",
                   only_id != 0 ? " WHERE legal_hold_id = ?" : "",
                   " ORDER BY released_at IS NOT NULL, legal_hold_id"),
      only_id != 0 ? std::vector<SqlValue>{only_id} : std::vector<SqlValue>{},
      [&](const sql::ResultSet& row) -> absl::Status {
        HoldRow h;
        h.hold.set_legal_hold_id(row.getUInt64(1));
        ASSIGN_OR_RETURN(h.start, TimeColumn(row, 2));
        ASSIGN_OR_RETURN(h.end, TimeColumn(row, 3));
        ToProto(h.start, h.hold.mutable_start_time());
        ToProto(h.end, h.hold.mutable_end_time());
        h.hold.set_case_reference(Bytes(row, 4));
        h.hold.set_reason(Bytes(row, 5));
        h.hold.set_placed_by(Bytes(row, 6));
        ASSIGN_OR_RETURN(absl::Time placed, TimeColumn(row, 7));
        ToProto(placed, h.hold.mutable_placed_at());
        if (!row.isNull(8)) {
          ASSIGN_OR_RETURN(absl::Time released, TimeColumn(row, 8));
          ToProto(released, h.hold.mutable_released_at());
          h.hold.set_released_by(Bytes(row, 9));
          h.hold.set_release_reason(Bytes(row, 10));
          h.active = false;
        }
        out.push_back(std::move(h));
        return absl::OkStatus();
      }));
  return out;
}

bool Overlaps(const HoldRow& hold, absl::Time start, absl::Time end) {
  return hold.active && hold.start < end && hold.end > start;
}

}  // namespace

absl::StatusOr<v1::PurgeRun> AuditLog::Purge() {
  // One purge at a time across replicas; a replica that finds it taken
  // leaves this round to the holder.
  ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> lock_conn, pool_.OpenDedicated());
  const std::string lock_name = "qunzu_audit_purge_" + pool_.schema();
  ASSIGN_OR_RETURN(bool locked, GetNamedLock(*lock_conn, lock_name, absl::ZeroDuration()));
  if (!locked) return v1::PurgeRun();
  absl::StatusOr<v1::PurgeRun> run = PurgeLocked();
  (void)ReleaseNamedLock(*lock_conn, lock_name);
  return run;
}

absl::StatusOr<v1::PurgeRun> AuditLog::PurgeLocked() {
  const absl::Time now = Now();
  const absl::Time cutoff = now - options_.retention;
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*lease));
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, 0));
  std::vector<PartitionInfo> drop;
  for (const PartitionInfo& p : parts) {
    if (p.name == "p_start") continue;
    // Oldest first, and only a prefix: a held or young month keeps every
    // later one, so the kept leaves stay one contiguous run.
    if (p.end > cutoff) break;
    bool held = false;
    for (const HoldRow& h : holds) held = held || Overlaps(h, p.start, p.end);
    if (held) break;
    drop.push_back(p);
  }
  v1::PurgeRun run;
  if (drop.empty()) return run;
  const absl::Time boundary_time = drop.back().end;
  std::vector<std::string> names, months;
  for (const PartitionInfo& p : drop) {
    names.push_back(p.name);
    months.push_back(MonthLabel(MonthOf(p.end - absl::Seconds(1))));
  }
  uint64_t entries = 0;
  std::vector<uint64_t> counts;
  for (const PartitionInfo& p : drop) {
    uint64_t count = 0;
    RETURN_IF_ERROR(qunzu::Query(
        *lease, absl::StrCat("SELECT COUNT(*) FROM audit_entries PARTITION (", p.name, ")"), {},
        [&](const sql::ResultSet& row) {
          count = row.getUInt64(1);
          return absl::OkStatus();
        }));
    counts.push_back(count);
    entries += count;
  }
  // The first kept leaf, and the signed checkpoint verification resumes from.
  uint64_t boundary = 0;
  {
    absl::MutexLock lock(&append_mu_);
    absl::Status status = WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
      ASSIGN_OR_RETURN(Head head, LoadHead(conn, true));
      boundary = head.tree_size;
      RETURN_IF_ERROR(
          qunzu::Query(conn, "SELECT MIN(leaf_index) FROM audit_entries WHERE appended_at >= ?",
                       {boundary_time}, [&](const sql::ResultSet& row) {
                         if (!row.isNull(1)) boundary = row.getUInt64(1);
                         return absl::OkStatus();
                       }));
      if (boundary > 0) {
        ASSIGN_OR_RETURN(std::optional<v1::Checkpoint> cp, ReadCheckpoint(conn, boundary));
        if (!cp) {
          if (boundary != head.tree_size) {
            return MakeError(absl::StatusCode::kFailedPrecondition, "BOUNDARY_CHECKPOINT_MISSING",
                             absl::StrCat("no signed checkpoint at tree size ", boundary,
                                          "; refusing to purge"));
          }
          RETURN_IF_ERROR(WriteCheckpoint(conn, head, std::max(now, head.last_appended_at)));
        }
      }
      head.oldest_leaf_index = std::max(head.oldest_leaf_index, boundary);
      RETURN_IF_ERROR(SaveHead(conn, head));
      for (size_t i = 0; i < drop.size(); ++i) {
        RETURN_IF_ERROR(Execute(conn,
                                "INSERT IGNORE INTO audit_purged_partitions (name, month, "
                                "start_time, end_time, entry_count, boundary_tree_size, "
                                "purged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                {drop[i].name, months[i],
                                 drop[i].start == absl::InfinitePast() ? SqlValue(nullptr)
                                                                       : SqlValue(drop[i].start),
                                 drop[i].end, counts[i], boundary, now})
                            .status());
      }
      return absl::OkStatus();
    });
    RETURN_IF_ERROR(status);
  }
  // The dropped leaves' hashes stay, for proofs and the boundary frontier.
  RETURN_IF_ERROR(Execute(*lease,
                          "INSERT IGNORE INTO audit_nodes (level, node_index, hash) SELECT 0, "
                          "leaf_index, leaf_hash FROM audit_entries PARTITION (" +
                              absl::StrJoin(names, ", ") + ")")
                      .status());
  RETURN_IF_ERROR(
      Execute(*lease, "ALTER TABLE audit_entries DROP PARTITION " + absl::StrJoin(names, ", "))
          .status());
  RETURN_IF_ERROR(
      Execute(*lease, "DELETE FROM audit_append_requests WHERE created_at < ?", {boundary_time})
          .status());
  RETURN_IF_ERROR(
      Execute(*lease, "DELETE FROM audit_subjects WHERE leaf_index < ?", {boundary}).status());
  v1::AuditEvent event;
  event.set_action("AUDIT_LOG_PURGED");
  event.set_principal("audit");
  event.set_role(common::v1::ROLE_SERVICE);
  ToProto(now, event.mutable_time());
  (*event.mutable_details())["months"] = absl::StrJoin(months, ",");
  (*event.mutable_details())["entries_purged"] = absl::StrCat(entries);
  (*event.mutable_details())["boundary_tree_size"] = absl::StrCat(boundary);
  (*event.mutable_details())["retention_days"] = absl::StrCat(options_.retention / absl::Hours(24));
  ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
  const uint64_t leaf = appended.results(0).leaf_index();
  RETURN_IF_ERROR(Execute(*lease,
                          "INSERT INTO audit_purges (purged_at, months, entries_purged, "
                          "audit_leaf_index) VALUES (?, ?, ?, ?)",
                          {now, absl::StrJoin(months, ","), entries, leaf})
                      .status());
  metrics_.purge_runs->Increment();
  LogInfo("audit_purged", {{"months", absl::StrJoin(months, ",")},
                           {"entries", static_cast<int64_t>(entries)},
                           {"boundary_tree_size", static_cast<int64_t>(boundary)}});
  ToProto(now, run.mutable_time());
  for (const std::string& m : months) run.add_months(m);
  run.set_entries_purged(entries);
  run.set_audit_leaf_index(leaf);
  return run;
}

absl::StatusOr<v1::GetRetentionStatusResponse> AuditLog::GetRetentionStatus() {
  const absl::Time now = Now();
  const absl::Time cutoff = now - options_.retention;
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*lease));
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, 0));
  v1::GetRetentionStatusResponse out;
  out.mutable_retention()->set_seconds(absl::ToInt64Seconds(options_.retention));
  out.mutable_minimum_retention()->set_seconds(int64_t{kMinimumRetentionDays} * 86400);
  out.set_tree_size(head.tree_size);
  out.set_oldest_leaf_index(head.oldest_leaf_index);
  RETURN_IF_ERROR(
      qunzu::Query(*lease, "SELECT appended_at FROM audit_entries WHERE leaf_index = ? LIMIT 1",
                   {head.oldest_leaf_index}, [&](const sql::ResultSet& row) -> absl::Status {
                     ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 1));
                     ToProto(t, out.mutable_oldest_entry_time());
                     return absl::OkStatus();
                   }));
  RETURN_IF_ERROR(
      qunzu::Query(*lease,
                   "SELECT name, month, start_time, end_time, entry_count, boundary_tree_size FROM "
                   "audit_purged_partitions ORDER BY end_time",
                   {}, [&](const sql::ResultSet& row) -> absl::Status {
                     v1::Partition* p = out.add_partitions();
                     p->set_month(Bytes(row, 2));
                     if (!row.isNull(3)) {
                       ASSIGN_OR_RETURN(absl::Time s, TimeColumn(row, 3));
                       ToProto(s, p->mutable_start_time());
                     }
                     ASSIGN_OR_RETURN(absl::Time e, TimeColumn(row, 4));
                     ToProto(e, p->mutable_end_time());
                     p->set_entry_count(row.getUInt64(5));
                     p->set_boundary_tree_size(row.getUInt64(6));
                     p->set_state(v1::PARTITION_STATE_PURGED);
                     return absl::OkStatus();
                   }));
  bool blocked = false;
  for (const PartitionInfo& part : parts) {
    if (part.name == "p_start") continue;
    v1::Partition* p = out.add_partitions();
    p->set_month(MonthLabel(MonthOf(part.end - absl::Seconds(1))));
    if (part.start != absl::InfinitePast() && part.start > absl::FromUnixSeconds(946684800)) {
      ToProto(part.start, p->mutable_start_time());
    }
    ToProto(part.end, p->mutable_end_time());
    RETURN_IF_ERROR(qunzu::Query(
        *lease,
        absl::StrCat("SELECT COUNT(*), MIN(leaf_index), MAX(leaf_index) FROM audit_entries "
                     "PARTITION (",
                     part.name, ")"),
        {}, [&](const sql::ResultSet& row) {
          p->set_entry_count(row.getUInt64(1));
          if (!row.isNull(2)) {
            p->set_first_leaf_index(row.getUInt64(2));
            p->set_last_leaf_index(row.getUInt64(3));
            p->set_boundary_tree_size(row.getUInt64(3) + 1);
          }
          return absl::OkStatus();
        }));
    bool held = false;
    for (const HoldRow& h : holds) held = held || Overlaps(h, part.start, part.end);
    if (part.end > cutoff) {
      p->set_state(v1::PARTITION_STATE_RETAINED);
      blocked = true;
    } else if (held || blocked) {
      p->set_state(v1::PARTITION_STATE_HELD);
      blocked = true;
    } else {
      p->set_state(v1::PARTITION_STATE_PURGEABLE);
    }
  }
  for (const HoldRow& h : holds) *out.add_legal_holds() = h.hold;
  RETURN_IF_ERROR(qunzu::Query(
      *lease,
      "SELECT purged_at, months, entries_purged, audit_leaf_index FROM audit_purges "
      "ORDER BY purge_id DESC LIMIT 1",
      {}, [&](const sql::ResultSet& row) -> absl::Status {
        v1::PurgeRun* run = out.mutable_last_purge();
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 1));
        ToProto(t, run->mutable_time());
        for (absl::string_view m : absl::StrSplit(Bytes(row, 2), ',', absl::SkipEmpty())) {
          run->add_months(std::string(m));
        }
        run->set_entries_purged(row.getUInt64(3));
        run->set_audit_leaf_index(row.getUInt64(4));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::SetLegalHoldResponse> AuditLog::SetLegalHold(
    const Caller& caller, const v1::SetLegalHoldRequest& request) {
  if (request.reason().empty()) return Bad("REASON_REQUIRED", "a legal hold needs a reason");
  if (request.reason().size() > 1024 || !IsValidUtf8(request.reason())) {
    return InvalidField("reason", "must be valid UTF-8 of at most 1024 bytes");
  }
  if (request.case_reference().size() > 255 || !IsValidUtf8(request.case_reference())) {
    return InvalidField("case_reference", "must be valid UTF-8 of at most 255 bytes");
  }
  if (request.request_id().empty() || request.request_id().size() > 128) {
    return InvalidField("request_id", "is required (1..128 characters)");
  }
  const absl::Time now = Now();
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  uint64_t id = request.legal_hold_id();
  std::string action;
  if (id == 0) {
    if (!request.has_start_time() || !request.has_end_time() ||
        FromProto(request.start_time()) >= FromProto(request.end_time())) {
      return Bad("TIME_RANGE_INVALID", "a new legal hold needs start_time before end_time");
    }
    // A retry with the same request_id finds the hold it placed.
    RETURN_IF_ERROR(qunzu::Query(
        *lease,
        "SELECT legal_hold_id FROM audit_legal_holds WHERE placed_by = ? AND request_id = ?",
        {caller.principal, request.request_id()}, [&](const sql::ResultSet& row) {
          id = row.getUInt64(1);
          return absl::OkStatus();
        }));
    if (id == 0) {
      RETURN_IF_ERROR(Execute(*lease,
                              "INSERT INTO audit_legal_holds (request_id, placed_by, start_time, "
                              "end_time, case_reference, reason, placed_at) VALUES "
                              "(?, ?, ?, ?, ?, ?, ?)",
                              {request.request_id(), caller.principal,
                               ToMicros(FromProto(request.start_time())),
                               ToMicros(FromProto(request.end_time())), request.case_reference(),
                               request.reason(), now})
                          .status());
      RETURN_IF_ERROR(
          qunzu::Query(*lease, "SELECT LAST_INSERT_ID()", {}, [&](const sql::ResultSet& row) {
            id = row.getUInt64(1);
            return absl::OkStatus();
          }));
      action = "LEGAL_HOLD_PLACED";
    }
  } else {
    ASSIGN_OR_RETURN(std::vector<HoldRow> found, ReadHolds(*lease, id));
    if (found.empty()) {
      return MakeError(absl::StatusCode::kNotFound, "LEGAL_HOLD_NOT_FOUND",
                       absl::StrCat("no legal hold ", id));
    }
    if (!found.front().active) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "LEGAL_HOLD_RELEASED",
                       absl::StrCat("legal hold ", id, " is already released"));
    }
    RETURN_IF_ERROR(Execute(*lease,
                            "UPDATE audit_legal_holds SET released_at = ?, released_by = ?, "
                            "release_reason = ? WHERE legal_hold_id = ? AND released_at IS NULL",
                            {now, caller.principal, request.reason(), id})
                        .status());
    action = "LEGAL_HOLD_RELEASED";
  }
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, id));
  if (!action.empty()) {
    v1::AuditEvent event = AuditEventFor(caller, "", "/qunzu.audit.v1.AuditService/SetLegalHold",
                                         action, request.request_id());
    ToProto(now, event.mutable_time());
    v1::Subject* subject = event.add_subjects();
    subject->set_kind(v1::SUBJECT_KIND_LEGAL_HOLD);
    subject->set_id(id);
    (*event.mutable_details())["reason"] = request.reason();
    (*event.mutable_details())["case_reference"] = holds.front().hold.case_reference();
    ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
    (void)appended;
  }
  v1::SetLegalHoldResponse out;
  *out.mutable_legal_hold() = holds.front().hold;
  return out;
}

}  // namespace qunzu::audit
