// The credit store on MySQL: credit_accounts (one materialised row per
// account, locked with SELECT ... FOR UPDATE by every change), credit_ledger
// (append-only; never updated or deleted by this code), credit_penalties,
// and the common idempotency and outbox tables.
#ifndef QUNZU_SERVICES_CREDIT_MYSQL_CREDIT_STORE_H_
#define QUNZU_SERVICES_CREDIT_MYSQL_CREDIT_STORE_H_

#include <vector>

#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "services/credit/credit_store.h"

namespace qunzu::credit {

// The credit component's schema migrations.
const std::vector<Migration>& CreditMigrations();

class MysqlCreditStore final : public CreditStore {
 public:
  // pool's schema must have the common and credit migrations applied.
  explicit MysqlCreditStore(MysqlPool& pool) : pool_(pool) {}

  absl::Status InTransaction(absl::FunctionRef<absl::Status(CreditTransaction&)> fn) override;
  absl::StatusOr<std::optional<AccountRow>> GetAccount(uint64_t account_id) override;
  absl::StatusOr<std::vector<v1::Penalty>> ActivePenalties(uint64_t account_id) override;
  absl::StatusOr<std::vector<v1::LedgerEntry>> History(const HistoryQuery& query) override;
  absl::StatusOr<std::vector<v1::LedgerEntry>> Ledger(uint64_t account_id) override;
  absl::StatusOr<std::vector<uint64_t>> ListAccounts(uint64_t after_id, int limit) override;
  absl::StatusOr<std::vector<uint64_t>> DueAccounts(absl::Time now, absl::Time recovery_due,
                                                    int limit) override;

 private:
  MysqlPool& pool_;
};

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_MYSQL_CREDIT_STORE_H_
