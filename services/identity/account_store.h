// identity's MySQL tables for accounts and verification: statements run on
// a connection inside the caller's transaction. Personal fields arrive and
// leave here encrypted (pii_crypto.h); this file never sees them in clear.
#ifndef QUNZU_SERVICES_IDENTITY_ACCOUNT_STORE_H_
#define QUNZU_SERVICES_IDENTITY_ACCOUNT_STORE_H_

#include <cppconn/connection.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/migrations.h"

namespace qunzu::identity {

// identity's own schema (component "identity").
const std::vector<Migration>& IdentityMigrations();

// One accounts row. *_enc fields are ciphertexts ("" when absent).
struct AccountRow {
  uint64_t account_id = 0;
  std::string nickname;
  std::string platform_user_id;
  // "ACTIVE".
  std::string state;
  std::string contact_phone_enc;
  // identity.v1.VerificationState / VerificationMethod / RejectionReason.
  int verification_state = 1;
  int method = 0;
  int rejection_reason = 0;
  std::string verifier;
  std::string legal_name_enc;
  std::string resident_id_enc;
  std::string verification_phone_enc;
  // Blind index of the verifying resident ID number ("" when none).
  std::string id_index;
  std::optional<absl::Time> verified_at;
  std::optional<absl::Time> last_attempt_at;
  std::optional<absl::Time> attempt_window_start;
  int attempt_count = 0;
  absl::Time created_at;
};

// The row of `account_id` (locked FOR UPDATE when asked), or nullopt.
absl::StatusOr<std::optional<AccountRow>> LoadAccount(sql::Connection& conn, uint64_t account_id,
                                                      bool for_update);
// The row with this platform user id, or nullopt.
absl::StatusOr<std::optional<AccountRow>> LoadAccountByPlatformUserId(sql::Connection& conn,
                                                                      const std::string& id);
// Up to `limit` rows with account_id > after, in id order.
absl::StatusOr<std::vector<AccountRow>> ListAccounts(sql::Connection& conn, uint64_t after,
                                                     int limit);

// Inserts an unverified account and returns its id. ALREADY_EXISTS
// (MYSQL_DUPLICATE) when the platform user id is taken.
absl::StatusOr<uint64_t> InsertAccount(sql::Connection& conn, const std::string& nickname,
                                       const std::string& platform_user_id, absl::Time now);
absl::Status SetContactPhone(sql::Connection& conn, uint64_t account_id,
                             const std::string& phone_enc, const std::string& phone_index);
// Writes every verification and attempt column of `row`.
absl::Status SaveVerification(sql::Connection& conn, const AccountRow& row);
// Rewrites the encrypted columns of `row` (re-encryption under a new key).
absl::Status SaveCiphertexts(sql::Connection& conn, const AccountRow& row);

// Locks the row of one ID number's blind index (creating it), so concurrent
// verifications with that number serialise; then counts the accounts other
// than `account_id` it verified.
absl::StatusOr<int64_t> LockAndCountIdNumber(sql::Connection& conn, const std::string& id_index,
                                             uint64_t account_id);

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_ACCOUNT_STORE_H_
