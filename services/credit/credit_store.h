// Where the credit service keeps its truth (MySQL in production, see
// mysql_credit_store.h): per-account materialised rows, the append-only
// ledger, penalties, request ids and audit records, always changed together
// inside one transaction that holds the account's row lock.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_STORE_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/idempotency.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/credit/v1/credit.pb.h"

namespace qunzu::credit {

// The materialised state of one account.
struct AccountRow {
  uint64_t account_id = 0;
  bool rated = false;
  bool verified = false;
  int32_t score = 0;
  // The level in force (after penalties) when the row was last written.
  uint32_t level = 0;
  // Start of the current clean period: the last negative event or the last
  // CLEAN_PERIOD; InfinitePast while unrated.
  absl::Time recovery_anchor = absl::InfinitePast();
  absl::Time updated_at = absl::UnixEpoch();
  std::string policy_version;
  // The newest ledger entry, 0 when none.
  uint64_t last_entry_id = 0;
};

// A ledger event found by its event id.
struct StoredEvent {
  v1::LedgerEntry entry;
  std::string fingerprint;
};

// One transaction on the store. Every method works inside it; nothing is
// visible to others before the transaction commits.
class CreditTransaction {
 public:
  virtual ~CreditTransaction() = default;
  // Locks the account's row until the transaction ends; a missing account
  // comes back unrated (score 0), to be created by SaveAccount.
  virtual absl::StatusOr<AccountRow> LockAccount(uint64_t account_id) = 0;
  // Writes the row of an account locked in this transaction.
  virtual absl::Status SaveAccount(const AccountRow& row) = 0;
  // The ledger event with this id, on any account.
  virtual absl::StatusOr<std::optional<StoredEvent>> FindEvent(const std::string& event_id) = 0;
  // Whether a REVERSAL of event_id is in the ledger.
  virtual absl::StatusOr<bool> IsReversed(const std::string& event_id) = 0;
  // Appends one ledger entry; returns its entry_id (increasing).
  virtual absl::StatusOr<uint64_t> AppendEntry(const v1::LedgerEntry& entry,
                                               const std::string& fingerprint) = 0;
  // The account's penalties in state ACTIVE, oldest first.
  virtual absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) = 0;
  // Inserts a penalty; returns its id. ALREADY_EXISTS
  // PENALTY_EXISTS_FOR_DISPOSITION when its disposition already has one.
  virtual absl::StatusOr<uint64_t> InsertPenalty(const v1::Penalty& penalty) = 0;
  virtual absl::StatusOr<std::optional<v1::Penalty>> FindPenalty(uint64_t penalty_id) = 0;
  // Writes state, ended_at and lift_reason of an existing penalty.
  virtual absl::Status UpdatePenalty(const v1::Penalty& penalty) = 0;
  // Claims a request id (see idempotency.h) in this transaction.
  virtual absl::StatusOr<IdempotencyBegin> BeginRequest(const IdempotencyKey& key,
                                                        const std::string& fingerprint) = 0;
  virtual absl::Status FinishRequest(const IdempotencyKey& key, const std::string& response) = 0;
  // Adds an audit event to the outbox of this transaction.
  virtual absl::Status RecordAudit(const audit::v1::AuditEvent& event) = 0;
};

// One page of history, newest first.
struct HistoryQuery {
  uint64_t account_id = 0;
  // Only entries with recorded_at in [start, end).
  absl::Time start = absl::InfinitePast();
  absl::Time end = absl::InfiniteFuture();
  // Only entries older than this entry id; 0: from the newest.
  uint64_t before_entry_id = 0;
  int limit = 50;
};

class CreditStore {
 public:
  virtual ~CreditStore() = default;
  // Runs fn in one transaction; commits when it returns OK. fn may run more
  // than once (after a deadlock), so it must have no other effects.
  virtual absl::Status InTransaction(absl::FunctionRef<absl::Status(CreditTransaction&)> fn) = 0;
  virtual absl::StatusOr<std::optional<AccountRow>> GetAccount(uint64_t account_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) = 0;
  virtual absl::StatusOr<std::vector<v1::LedgerEntry>> History(const HistoryQuery& query) = 0;
  // The whole ledger of an account, oldest first (for the replay check).
  virtual absl::StatusOr<std::vector<v1::LedgerEntry>> Ledger(uint64_t account_id) = 0;
  // Account ids above after_id, ascending, at most limit.
  virtual absl::StatusOr<std::vector<uint64_t>> ListAccounts(uint64_t after_id, int limit) = 0;
  // Accounts with work due at `now`: an active penalty whose until passed,
  // or a rated account whose recovery_anchor is at or before recovery_due.
  virtual absl::StatusOr<std::vector<uint64_t>> DueAccounts(absl::Time now, absl::Time recovery_due,
                                                            int limit) = 0;
};

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_STORE_H_
