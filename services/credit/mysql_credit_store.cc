#include "services/credit/mysql_credit_store.h"

#include <cppconn/resultset.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/credit/credit_model.h"

namespace qunzu::credit {
namespace {

constexpr absl::Duration kAcquireTimeout = absl::Seconds(5);

constexpr char kAccountColumns[] =
    "account_id, rated, verified, score, level, recovery_anchor, updated_at, policy_version, "
    "last_entry_id";
constexpr char kEntryColumns[] =
    "entry_id, account_id, kind, event_type, COALESCE(event_id, ''), COALESCE(fingerprint, ''), "
    "delta, score_before, score_after, level_before, level_after, source_service, reference, "
    "reason, penalty_id, COALESCE(reverses_event_id, ''), occurred_at, recorded_at";
constexpr char kPenaltyColumns[] =
    "penalty_id, account_id, kind, levels, level_cap, until, disposition_id, reason, state, "
    "applied_at, ended_at, lift_reason";

absl::Time ReadTime(const sql::ResultSet& row, int column) {
  if (row.isNull(static_cast<uint32_t>(column))) return absl::InfinitePast();
  absl::StatusOr<absl::Time> time = ParseSqlDateTime(row.getString(static_cast<uint32_t>(column)));
  return time.ok() ? *time : absl::InfinitePast();
}

SqlValue TimeOrNull(absl::Time time) {
  if (time == absl::InfinitePast()) return nullptr;
  return time;
}

AccountRow ReadAccount(const sql::ResultSet& row) {
  AccountRow out;
  out.account_id = row.getUInt64(1);
  out.rated = row.getBoolean(2);
  out.verified = row.getBoolean(3);
  out.score = row.getInt(4);
  out.level = row.getUInt(5);
  out.recovery_anchor = ReadTime(row, 6);
  out.updated_at = ReadTime(row, 7);
  out.policy_version = row.getString(8);
  out.last_entry_id = row.getUInt64(9);
  return out;
}

StoredEvent ReadEntry(const sql::ResultSet& row) {
  StoredEvent out;
  v1::LedgerEntry& e = out.entry;
  e.set_entry_id(row.getUInt64(1));
  e.set_account_id(row.getUInt64(2));
  e.set_kind(static_cast<v1::ChangeKind>(row.getInt(3)));
  e.set_event_type(static_cast<v1::CreditEventType>(row.getInt(4)));
  e.set_event_id(row.getString(5));
  out.fingerprint = row.getString(6);
  e.set_delta(row.getInt(7));
  e.set_score_before(row.getUInt(8));
  e.set_score_after(row.getUInt(9));
  e.set_level_before(row.getUInt(10));
  e.set_level_after(row.getUInt(11));
  e.set_source_service(row.getString(12));
  e.set_reference(row.getString(13));
  e.set_reason(row.getString(14));
  e.set_penalty_id(row.getUInt64(15));
  e.set_reverses_event_id(row.getString(16));
  *e.mutable_occurred_at() = ToProtoTime(ReadTime(row, 17));
  *e.mutable_recorded_at() = ToProtoTime(ReadTime(row, 18));
  return out;
}

v1::Penalty ReadPenalty(const sql::ResultSet& row) {
  v1::Penalty p;
  p.set_penalty_id(row.getUInt64(1));
  p.set_account_id(row.getUInt64(2));
  p.set_kind(static_cast<v1::PenaltyKind>(row.getInt(3)));
  p.set_levels(row.getUInt(4));
  p.set_level_cap(row.getUInt(5));
  *p.mutable_until() = ToProtoTime(ReadTime(row, 6));
  p.set_disposition_id(row.getUInt64(7));
  p.set_reason(row.getString(8));
  p.set_state(static_cast<v1::PenaltyState>(row.getInt(9)));
  *p.mutable_applied_at() = ToProtoTime(ReadTime(row, 10));
  if (!row.isNull(11)) *p.mutable_ended_at() = ToProtoTime(ReadTime(row, 11));
  p.set_lift_reason(row.getString(12));
  return p;
}

absl::StatusOr<std::vector<v1::Penalty>> QueryActivePenalties(sql::Connection& conn,
                                                              uint64_t account_id) {
  std::vector<v1::Penalty> out;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kPenaltyColumns,
                                     " FROM credit_penalties WHERE account_id = ? AND state = ? "
                                     "ORDER BY penalty_id"),
                        {account_id, static_cast<int>(v1::PENALTY_STATE_ACTIVE)},
                        [&](const sql::ResultSet& row) {
                          out.push_back(ReadPenalty(row));
                          return absl::OkStatus();
                        }));
  return out;
}

class MysqlCreditTransaction final : public CreditTransaction {
 public:
  explicit MysqlCreditTransaction(sql::Connection& conn) : conn_(conn) {}

  absl::StatusOr<AccountRow> LockAccount(uint64_t account_id) override {
    // ON DUPLICATE KEY takes the row's exclusive lock at once, so concurrent
    // first writers of one account queue instead of deadlocking.
    RETURN_IF_ERROR(Execute(conn_,
                            "INSERT INTO credit_accounts (account_id, rated, verified, score, "
                            "level, updated_at, policy_version) VALUES (?, FALSE, FALSE, 0, 0, "
                            "UTC_TIMESTAMP(6), '') ON DUPLICATE KEY UPDATE account_id = account_id",
                            {account_id})
                        .status());
    std::optional<AccountRow> row;
    RETURN_IF_ERROR(Query(conn_,
                          absl::StrCat("SELECT ", kAccountColumns,
                                       " FROM credit_accounts WHERE account_id = ? FOR UPDATE"),
                          {account_id}, [&](const sql::ResultSet& r) {
                            row = ReadAccount(r);
                            return absl::OkStatus();
                          }));
    if (!row) return MakeError(absl::StatusCode::kInternal, "ACCOUNT_ROW_MISSING", "lost the row");
    return *row;
  }

  absl::Status SaveAccount(const AccountRow& row) override {
    return Execute(conn_,
                   "UPDATE credit_accounts SET rated = ?, verified = ?, score = ?, level = ?, "
                   "recovery_anchor = ?, updated_at = ?, policy_version = ?, last_entry_id = ? "
                   "WHERE account_id = ?",
                   {row.rated, row.verified, row.score, row.level, TimeOrNull(row.recovery_anchor),
                    row.updated_at, row.policy_version, row.last_entry_id, row.account_id})
        .status();
  }

  absl::StatusOr<std::optional<StoredEvent>> FindEvent(const std::string& event_id) override {
    std::optional<StoredEvent> out;
    RETURN_IF_ERROR(Query(
        conn_, absl::StrCat("SELECT ", kEntryColumns, " FROM credit_ledger WHERE event_id = ?"),
        {event_id}, [&](const sql::ResultSet& r) {
          out = ReadEntry(r);
          return absl::OkStatus();
        }));
    return out;
  }

  absl::StatusOr<bool> IsReversed(const std::string& event_id) override {
    bool found = false;
    RETURN_IF_ERROR(Query(conn_, "SELECT 1 FROM credit_ledger WHERE reverses_event_id = ?",
                          {event_id}, [&](const sql::ResultSet&) {
                            found = true;
                            return absl::OkStatus();
                          }));
    return found;
  }

  absl::StatusOr<uint64_t> AppendEntry(const v1::LedgerEntry& e,
                                       const std::string& fingerprint) override {
    const auto optional_string = [](const std::string& s) -> SqlValue {
      if (s.empty()) return nullptr;
      return s;
    };
    absl::StatusOr<int64_t> inserted = Execute(
        conn_,
        "INSERT INTO credit_ledger (account_id, kind, event_type, event_id, fingerprint, "
        "delta, score_before, score_after, level_before, level_after, source_service, "
        "reference, reason, penalty_id, reverses_event_id, occurred_at, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {e.account_id(), static_cast<int>(e.kind()), static_cast<int>(e.event_type()),
         optional_string(e.event_id()), optional_string(fingerprint), e.delta(), e.score_before(),
         e.score_after(), e.level_before(), e.level_after(), e.source_service(), e.reference(),
         e.reason(), e.penalty_id(), optional_string(e.reverses_event_id()),
         FromProtoTime(e.occurred_at()), FromProtoTime(e.recorded_at())});
    if (!inserted.ok() && ErrorReason(inserted.status()) == kMysqlDuplicate) {
      // Only a concurrent use of the same event id on another account gets
      // here: the account lock serialises everything else.
      return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                       "event id " + e.event_id() + " is already recorded",
                       {{"field", "request_id"}});
    }
    RETURN_IF_ERROR(inserted.status());
    return qunzu::LastInsertId(conn_);
  }

  absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) override {
    return QueryActivePenalties(conn_, account_id);
  }

  absl::StatusOr<uint64_t> InsertPenalty(const v1::Penalty& p) override {
    absl::StatusOr<int64_t> inserted =
        Execute(conn_,
                "INSERT INTO credit_penalties (account_id, kind, levels, level_cap, until, "
                "disposition_id, reason, state, applied_at, lift_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                {p.account_id(), static_cast<int>(p.kind()), p.levels(), p.level_cap(),
                 FromProtoTime(p.until()), p.disposition_id(), p.reason(),
                 static_cast<int>(p.state()), FromProtoTime(p.applied_at())});
    if (!inserted.ok() && ErrorReason(inserted.status()) == kMysqlDuplicate) {
      return MakeError(absl::StatusCode::kAlreadyExists, "PENALTY_EXISTS_FOR_DISPOSITION",
                       absl::StrCat("disposition ", p.disposition_id(), " already has a penalty"),
                       {{"field", "disposition_id"}});
    }
    RETURN_IF_ERROR(inserted.status());
    return qunzu::LastInsertId(conn_);
  }

  absl::StatusOr<std::optional<v1::Penalty>> FindPenalty(uint64_t penalty_id) override {
    std::optional<v1::Penalty> out;
    RETURN_IF_ERROR(Query(
        conn_,
        absl::StrCat("SELECT ", kPenaltyColumns, " FROM credit_penalties WHERE penalty_id = ?"),
        {penalty_id}, [&](const sql::ResultSet& r) {
          out = ReadPenalty(r);
          return absl::OkStatus();
        }));
    return out;
  }

  absl::Status UpdatePenalty(const v1::Penalty& p) override {
    return Execute(conn_,
                   "UPDATE credit_penalties SET state = ?, ended_at = ?, lift_reason = ? "
                   "WHERE penalty_id = ?",
                   {static_cast<int>(p.state()), FromProtoTime(p.ended_at()), p.lift_reason(),
                    p.penalty_id()})
        .status();
  }

  absl::StatusOr<IdempotencyBegin> BeginRequest(const IdempotencyKey& key,
                                                const std::string& fingerprint) override {
    return IdempotencyStore().Begin(conn_, key, fingerprint);
  }

  absl::Status FinishRequest(const IdempotencyKey& key, const std::string& response) override {
    return IdempotencyStore().Finish(conn_, key, response);
  }

  absl::Status RecordAudit(const audit::v1::AuditEvent& event) override {
    return RecordAuditEvent(conn_, event).status();
  }

 private:
  sql::Connection& conn_;
};

}  // namespace

const std::vector<Migration>& CreditMigrations() {
  static const auto* migrations = new std::vector<Migration>{
      {1,
       "credit ledger, accounts and penalties",
       {"CREATE TABLE IF NOT EXISTS credit_accounts ("
        " account_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
        " rated BOOLEAN NOT NULL, verified BOOLEAN NOT NULL,"
        " score INT NOT NULL, level INT UNSIGNED NOT NULL,"
        " recovery_anchor DATETIME(6) NULL, updated_at DATETIME(6) NOT NULL,"
        " policy_version VARCHAR(64) NOT NULL,"
        " last_entry_id BIGINT UNSIGNED NOT NULL DEFAULT 0,"
        " KEY k_recovery (rated, recovery_anchor)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS credit_ledger ("
        " entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " account_id BIGINT UNSIGNED NOT NULL, kind TINYINT NOT NULL, event_type INT NOT NULL,"
        " event_id VARCHAR(128) NULL, fingerprint VARBINARY(64) NULL,"
        " delta INT NOT NULL, score_before INT NOT NULL, score_after INT NOT NULL,"
        " level_before INT UNSIGNED NOT NULL, level_after INT UNSIGNED NOT NULL,"
        " source_service VARCHAR(64) NOT NULL, reference VARCHAR(128) NOT NULL,"
        " reason VARCHAR(500) NOT NULL, penalty_id BIGINT UNSIGNED NOT NULL,"
        " reverses_event_id VARCHAR(128) NULL,"
        " occurred_at DATETIME(6) NOT NULL, recorded_at DATETIME(6) NOT NULL,"
        " UNIQUE KEY uk_event (event_id), UNIQUE KEY uk_reverses (reverses_event_id),"
        " KEY k_account (account_id, entry_id)) ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS credit_penalties ("
        " penalty_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " account_id BIGINT UNSIGNED NOT NULL, kind INT NOT NULL,"
        " levels INT UNSIGNED NOT NULL, level_cap INT UNSIGNED NOT NULL,"
        " until DATETIME(6) NOT NULL, disposition_id BIGINT UNSIGNED NOT NULL,"
        " reason VARCHAR(500) NOT NULL, state INT NOT NULL,"
        " applied_at DATETIME(6) NOT NULL, ended_at DATETIME(6) NULL,"
        " lift_reason VARCHAR(500) NOT NULL,"
        " UNIQUE KEY uk_disposition (disposition_id),"
        " KEY k_account_state (account_id, state), KEY k_due (state, until)) ENGINE=InnoDB"}},
  };
  return *migrations;
}

absl::Status MysqlCreditStore::InTransaction(
    absl::FunctionRef<absl::Status(CreditTransaction&)> fn) {
  return WithTransaction(pool_, [&](sql::Connection& conn) {
    MysqlCreditTransaction tx(conn);
    return fn(tx);
  });
}

absl::StatusOr<std::optional<AccountRow>> MysqlCreditStore::GetAccount(uint64_t account_id) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::optional<AccountRow> out;
  RETURN_IF_ERROR(
      Query(*lease,
            absl::StrCat("SELECT ", kAccountColumns, " FROM credit_accounts WHERE account_id = ?"),
            {account_id}, [&](const sql::ResultSet& r) {
              out = ReadAccount(r);
              return absl::OkStatus();
            }));
  return out;
}

absl::StatusOr<std::vector<v1::Penalty>> MysqlCreditStore::ActivePenalties(uint64_t account_id) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  return QueryActivePenalties(*lease, account_id);
}

absl::StatusOr<std::vector<v1::LedgerEntry>> MysqlCreditStore::History(const HistoryQuery& q) {
  std::string sql =
      absl::StrCat("SELECT ", kEntryColumns, " FROM credit_ledger WHERE account_id = ?");
  std::vector<SqlValue> params{q.account_id};
  if (q.start != absl::InfinitePast()) {
    absl::StrAppend(&sql, " AND recorded_at >= ?");
    params.emplace_back(q.start);
  }
  if (q.end != absl::InfiniteFuture()) {
    absl::StrAppend(&sql, " AND recorded_at < ?");
    params.emplace_back(q.end);
  }
  if (q.before_entry_id != 0) {
    absl::StrAppend(&sql, " AND entry_id < ?");
    params.emplace_back(q.before_entry_id);
  }
  absl::StrAppend(&sql, " ORDER BY entry_id DESC LIMIT ?");
  params.emplace_back(q.limit);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::vector<v1::LedgerEntry> out;
  RETURN_IF_ERROR(Query(*lease, sql, params, [&](const sql::ResultSet& r) {
    out.push_back(ReadEntry(r).entry);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::LedgerEntry>> MysqlCreditStore::Ledger(uint64_t account_id) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::vector<v1::LedgerEntry> out;
  RETURN_IF_ERROR(Query(*lease,
                        absl::StrCat("SELECT ", kEntryColumns,
                                     " FROM credit_ledger WHERE account_id = ? ORDER BY entry_id"),
                        {account_id}, [&](const sql::ResultSet& r) {
                          out.push_back(ReadEntry(r).entry);
                          return absl::OkStatus();
                        }));
  return out;
}

absl::StatusOr<std::vector<uint64_t>> MysqlCreditStore::ListAccounts(uint64_t after_id, int limit) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::vector<uint64_t> out;
  RETURN_IF_ERROR(Query(*lease,
                        "SELECT account_id FROM credit_accounts WHERE account_id > ? "
                        "ORDER BY account_id LIMIT ?",
                        {after_id, limit}, [&](const sql::ResultSet& r) {
                          out.push_back(r.getUInt64(1));
                          return absl::OkStatus();
                        }));
  return out;
}

absl::StatusOr<std::vector<uint64_t>> MysqlCreditStore::DueAccounts(absl::Time now,
                                                                    absl::Time recovery_due,
                                                                    int limit) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kAcquireTimeout));
  std::vector<uint64_t> out;
  RETURN_IF_ERROR(Query(*lease,
                        "SELECT account_id FROM credit_accounts WHERE rated AND "
                        "recovery_anchor <= ? UNION SELECT account_id FROM credit_penalties "
                        "WHERE state = ? AND until <= ? LIMIT ?",
                        {recovery_due, static_cast<int>(v1::PENALTY_STATE_ACTIVE), now, limit},
                        [&](const sql::ResultSet& r) {
                          out.push_back(r.getUInt64(1));
                          return absl::OkStatus();
                        }));
  return out;
}

}  // namespace qunzu::credit
