// One account's change inside a store transaction: locks the account's row,
// first brings it up to date (penalties whose time passed expire, clean
// periods that passed recover score), then lets the caller append explained
// ledger entries, each moving the materialised score and level in step.
#ifndef QUNZU_SERVICES_CREDIT_ACCOUNT_UPDATE_H_
#define QUNZU_SERVICES_CREDIT_ACCOUNT_UPDATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/credit/credit_store.h"
#include "services/credit/policy.h"

namespace qunzu::credit {

// The service name credit records as the source of its own changes.
inline constexpr char kCreditSource[] = "credit";

class AccountUpdate {
 public:
  // Locks the account (creating its unrated row if missing), loads its
  // active penalties and catches it up to `now`: each active penalty whose
  // until passed becomes EXPIRED (a PENALTY_EXPIRED entry), then each full
  // clean period since the recovery anchor adds CLEAN_PERIOD's delta up to
  // the recovery max_score (one CLEAN_PERIOD entry each, dated at the end of
  // its period). tx and policy must outlive the update.
  static absl::StatusOr<AccountUpdate> Open(CreditTransaction& tx, const Policy& policy,
                                            uint64_t account_id, absl::Time now);

  // Appends `entry` (its kind, event, reference, reason and source set by
  // the caller) moving the score by requested_delta, clamped to 0..1000; the
  // entry records the applied delta and the score and level before and
  // after. A negative requested delta (other than a REVERSAL's) restarts the
  // clean period. Returns the
  // stored entry with its id.
  absl::StatusOr<v1::LedgerEntry> Append(v1::LedgerEntry entry, int32_t requested_delta,
                                         const std::string& fingerprint = "");

  // Writes the row back when anything changed.
  absl::Status Save();

  // The status as it stands in this transaction.
  v1::CreditStatus Status() const;

  AccountRow& row() { return row_; }
  std::vector<v1::Penalty>& penalties() { return penalties_; }
  absl::Time now() const { return now_; }
  // Entries the catch-up appended (expiries and clean periods).
  int caught_up() const { return caught_up_; }

 private:
  AccountUpdate(CreditTransaction& tx, const Policy& policy, absl::Time now)
      : tx_(&tx), policy_(&policy), now_(now), as_of_(now) {}
  absl::Status CatchUp();
  absl::Status Expire(v1::Penalty& penalty);
  absl::Status RecoverOnePeriod(absl::Time period_end);

  CreditTransaction* tx_;
  const Policy* policy_;
  absl::Time now_;
  // The time levels are computed at: a catch-up step's, else now_.
  absl::Time as_of_;
  AccountRow row_;
  std::vector<v1::Penalty> penalties_;
  bool dirty_ = false;
  int caught_up_ = 0;
};

// Whether an account read outside a transaction has catch-up work due at
// now (a penalty to expire or a clean period that passed).
bool CatchUpIsDue(const Policy& policy, const AccountRow& row,
                  const std::vector<v1::Penalty>& penalties, absl::Time now);

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_ACCOUNT_UPDATE_H_
