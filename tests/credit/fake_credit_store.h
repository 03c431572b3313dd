// In-memory fakes of the credit store and projection, for logic tests
// without MariaDB or Redis. A transaction runs on a copy of the state under
// one mutex and replaces it only when fn returns OK, so a failed call leaves
// no trace, as in MySQL.
#ifndef QUNZU_TESTS_CREDIT_FAKE_CREDIT_STORE_H_
#define QUNZU_TESTS_CREDIT_FAKE_CREDIT_STORE_H_

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "services/credit/credit_model.h"
#include "services/credit/credit_projection.h"
#include "services/credit/credit_store.h"

namespace qunzu::credit::testing {

struct FakeState {
  std::map<uint64_t, AccountRow> accounts;
  std::vector<StoredEvent> ledger;  // entry_id = index + 1
  std::map<uint64_t, v1::Penalty> penalties;
  std::map<std::string, std::pair<std::string, std::string>> requests;  // fingerprint, response
  std::vector<audit::v1::AuditEvent> audit;
};

class FakeCreditTransaction final : public CreditTransaction {
 public:
  explicit FakeCreditTransaction(FakeState& state) : s_(state) {}

  absl::StatusOr<AccountRow> LockAccount(uint64_t account_id) override {
    auto [it, inserted] = s_.accounts.try_emplace(account_id);
    if (inserted) it->second.account_id = account_id;
    return it->second;
  }
  absl::Status SaveAccount(const AccountRow& row) override {
    s_.accounts[row.account_id] = row;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<StoredEvent>> FindEvent(const std::string& event_id) override {
    for (const StoredEvent& e : s_.ledger) {
      if (!event_id.empty() && e.entry.event_id() == event_id) return e;
    }
    return std::optional<StoredEvent>();
  }
  absl::StatusOr<bool> IsReversed(const std::string& event_id) override {
    for (const StoredEvent& e : s_.ledger) {
      if (e.entry.reverses_event_id() == event_id) return true;
    }
    return false;
  }
  absl::StatusOr<uint64_t> AppendEntry(const v1::LedgerEntry& entry,
                                       const std::string& fingerprint) override {
    if (!entry.event_id().empty()) {
      for (const StoredEvent& e : s_.ledger) {
        if (e.entry.event_id() == entry.event_id()) {
          return MakeError(absl::StatusCode::kAlreadyExists, "MYSQL_DUPLICATE", "event id");
        }
      }
    }
    StoredEvent stored{entry, fingerprint};
    stored.entry.set_entry_id(s_.ledger.size() + 1);
    s_.ledger.push_back(stored);
    return stored.entry.entry_id();
  }
  absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) override {
    std::vector<v1::Penalty> out;
    for (const auto& [id, p] : s_.penalties) {
      if (p.account_id() == account_id && p.state() == v1::PENALTY_STATE_ACTIVE) out.push_back(p);
    }
    return out;
  }
  absl::StatusOr<uint64_t> InsertPenalty(const v1::Penalty& penalty) override {
    for (const auto& [id, p] : s_.penalties) {
      if (p.disposition_id() == penalty.disposition_id()) {
        return MakeError(absl::StatusCode::kAlreadyExists, "PENALTY_EXISTS_FOR_DISPOSITION", "");
      }
    }
    const uint64_t id = s_.penalties.size() + 1;
    s_.penalties[id] = penalty;
    s_.penalties[id].set_penalty_id(id);
    return id;
  }
  absl::StatusOr<std::optional<v1::Penalty>> FindPenalty(uint64_t penalty_id) override {
    auto it = s_.penalties.find(penalty_id);
    if (it == s_.penalties.end()) return std::optional<v1::Penalty>();
    return std::optional<v1::Penalty>(it->second);
  }
  absl::Status UpdatePenalty(const v1::Penalty& penalty) override {
    s_.penalties[penalty.penalty_id()] = penalty;
    return absl::OkStatus();
  }
  absl::StatusOr<IdempotencyBegin> BeginRequest(const IdempotencyKey& key,
                                                const std::string& fingerprint) override {
    auto it = s_.requests.find(Key(key));
    if (it == s_.requests.end()) {
      s_.requests[Key(key)] = {fingerprint, ""};
      return IdempotencyBegin{true, ""};
    }
    if (it->second.first != fingerprint) {
      return MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED", "reused");
    }
    return IdempotencyBegin{false, it->second.second};
  }
  absl::Status FinishRequest(const IdempotencyKey& key, const std::string& response) override {
    s_.requests[Key(key)].second = response;
    return absl::OkStatus();
  }
  absl::Status RecordAudit(const audit::v1::AuditEvent& event) override {
    s_.audit.push_back(event);
    return absl::OkStatus();
  }

 private:
  static std::string Key(const IdempotencyKey& key) {
    return key.principal + "|" + key.method + "|" + key.request_id;
  }
  FakeState& s_;
};

class FakeCreditStore final : public CreditStore {
 public:
  absl::Status InTransaction(absl::FunctionRef<absl::Status(CreditTransaction&)> fn) override {
    absl::MutexLock lock(&mu_);
    FakeState copy = state_;
    FakeCreditTransaction tx(copy);
    absl::Status status = fn(tx);
    if (status.ok()) state_ = std::move(copy);
    return status;
  }
  absl::StatusOr<std::optional<AccountRow>> GetAccount(uint64_t account_id) override {
    absl::MutexLock lock(&mu_);
    auto it = state_.accounts.find(account_id);
    if (it == state_.accounts.end()) return std::optional<AccountRow>();
    return std::optional<AccountRow>(it->second);
  }
  absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) override {
    absl::MutexLock lock(&mu_);
    return FakeCreditTransaction(state_).ActivePenalties(account_id);
  }
  absl::StatusOr<std::vector<v1::LedgerEntry>> History(const HistoryQuery& q) override {
    std::vector<v1::LedgerEntry> out;
    ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> all, Ledger(q.account_id));
    std::reverse(all.begin(), all.end());
    for (v1::LedgerEntry& e : all) {
      const absl::Time recorded = FromProtoTime(e.recorded_at());
      if (recorded < q.start || recorded >= q.end) continue;
      if (q.before_entry_id != 0 && e.entry_id() >= q.before_entry_id) continue;
      if (static_cast<int>(out.size()) == q.limit) break;
      out.push_back(std::move(e));
    }
    return out;
  }
  absl::StatusOr<std::vector<v1::LedgerEntry>> Ledger(uint64_t account_id) override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::LedgerEntry> out;
    for (const StoredEvent& e : state_.ledger) {
      if (e.entry.account_id() == account_id) out.push_back(e.entry);
    }
    return out;
  }
  absl::StatusOr<std::vector<uint64_t>> ListAccounts(uint64_t after_id, int limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> out;
    for (auto it = state_.accounts.upper_bound(after_id);
         it != state_.accounts.end() && static_cast<int>(out.size()) < limit; ++it) {
      out.push_back(it->first);
    }
    return out;
  }
  absl::StatusOr<std::vector<uint64_t>> DueAccounts(absl::Time now, absl::Time recovery_due,
                                                    int limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<uint64_t> out;
    for (const auto& [id, row] : state_.accounts) {
      bool due = row.rated && row.recovery_anchor <= recovery_due;
      for (const auto& [pid, p] : state_.penalties) {
        due |= p.account_id() == id && p.state() == v1::PENALTY_STATE_ACTIVE &&
               FromProtoTime(p.until()) <= now;
      }
      if (due && static_cast<int>(out.size()) < limit) out.push_back(id);
    }
    return out;
  }

  // A copy of the whole state, for assertions.
  FakeState Snapshot() {
    absl::MutexLock lock(&mu_);
    return state_;
  }

 private:
  absl::Mutex mu_;
  FakeState state_;
};

// Keeps the last published status per account; fails while `failing`.
class FakeProjection final : public CreditProjection {
 public:
  absl::Status Publish(const std::vector<v1::CreditStatus>& statuses) override {
    absl::MutexLock lock(&mu_);
    if (failing) return MakeError(absl::StatusCode::kUnavailable, "REDIS_UNAVAILABLE", "down");
    for (const v1::CreditStatus& s : statuses) published_[s.account_id()] = s;
    return absl::OkStatus();
  }
  std::optional<v1::CreditStatus> Get(uint64_t account_id) {
    absl::MutexLock lock(&mu_);
    auto it = published_.find(account_id);
    if (it == published_.end()) return std::nullopt;
    return it->second;
  }

  bool failing = false;

 private:
  absl::Mutex mu_;
  std::map<uint64_t, v1::CreditStatus> published_;
};

}  // namespace qunzu::credit::testing

#endif  // QUNZU_TESTS_CREDIT_FAKE_CREDIT_STORE_H_
