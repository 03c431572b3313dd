// The identity service's logic, free of gRPC: accounts behind nicknames,
// real-name verification with encrypted storage and a per-ID-number cap,
// masked and revealed identities, and the agreements users accept (R5.4,
// R6.1-R6.3). Every state change commits with its audit event (and, for a
// verification, the credit event) in one transaction; the Redis projection
// is written after the commit.
#ifndef QUNZU_SERVICES_IDENTITY_IDENTITY_LOGIC_H_
#define QUNZU_SERVICES_IDENTITY_IDENTITY_LOGIC_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "services/identity/account_store.h"
#include "services/identity/identity_metrics.h"
#include "services/identity/pii_crypto.h"
#include "services/identity/projections.h"
#include "services/identity/verifier.h"

namespace qunzu::identity {

// The outbox topic of credit events (credit.v1.RecordEventRequest payloads).
inline constexpr char kCreditTopic[] = "credit";

// Who calls, from where, through which RPC: for audit and idempotency.
struct RequestContext {
  Caller caller;
  std::string peer;
  // The full gRPC method, "/qunzu.identity.v1.IdentityService/CreateAccount".
  std::string method;
};

struct IdentityOptions {
  // One resident ID number verifies at most this many accounts.
  int64_t max_accounts_per_id_number = 3;
  // Verification attempts allowed per account per window.
  int64_t attempts_per_window = 5;
  absl::Duration attempt_window = absl::Hours(1);
};

// Everything the logic is built from; all must outlive it. `projections`
// may be null (no Redis); `on_credit_event` (may be empty) is called after a
// commit that queued a credit event, to wake the relay.
struct IdentityDeps {
  MysqlPool& pool;
  ProjectionWriter* projections;
  const Clock& clock;
  const PiiCrypto& crypto;
  Verifier& verifier;
  IdentityOptions options;
  std::function<void()> on_credit_event;
  // Null: no domain metrics.
  IdentityMetrics* metrics;
};

class IdentityLogic {
 public:
  explicit IdentityLogic(IdentityDeps deps) : d_(std::move(deps)) {}

  // Each method validates its request first (INVALID_ARGUMENT naming the
  // field), then checks ownership, then acts; errors as in identity.proto.
  absl::StatusOr<v1::CreateAccountResponse> CreateAccount(const RequestContext& ctx,
                                                          const v1::CreateAccountRequest& req);
  absl::StatusOr<v1::GetAccountResponse> GetAccount(const RequestContext& ctx,
                                                    const v1::GetAccountRequest& req);
  absl::StatusOr<v1::SubmitRealNameResponse> SubmitRealName(const RequestContext& ctx,
                                                            const v1::SubmitRealNameRequest& req);
  absl::StatusOr<v1::GetVerificationResponse> GetVerification(
      const RequestContext& ctx, const v1::GetVerificationRequest& req);
  absl::StatusOr<v1::RevealIdentityResponse> RevealIdentity(const RequestContext& ctx,
                                                            const v1::RevealIdentityRequest& req);
  absl::StatusOr<v1::PublishAgreementResponse> PublishAgreement(
      const RequestContext& ctx, const v1::PublishAgreementRequest& req);
  absl::StatusOr<v1::AcceptAgreementResponse> AcceptAgreement(
      const RequestContext& ctx, const v1::AcceptAgreementRequest& req);
  absl::StatusOr<v1::GetAgreementStatusResponse> GetAgreementStatus(
      const RequestContext& ctx, const v1::GetAgreementStatusRequest& req);

  // Rewrites every account's Redis projection from MySQL (at start).
  absl::Status RebuildProjections();
  // Re-encrypts every personal field not under the newest key; returns how
  // many accounts were rewritten. Safe to run while the service serves.
  absl::StatusOr<int64_t> ReencryptAll();

 private:
  absl::StatusOr<v1::SubmitRealNameResponse> SubmitLocked(sql::Connection& conn,
                                                          const RequestContext& ctx,
                                                          const v1::SubmitRealNameRequest& req,
                                                          const Evidence& evidence);
  absl::Status CheckAttemptAllowed(AccountRow& row);
  absl::Status StoreVerified(sql::Connection& conn, AccountRow& row, const Evidence& evidence);
  absl::StatusOr<v1::Verification> ToVerification(const AccountRow& row, bool masked) const;
  absl::StatusOr<v1::Account> ToAccount(sql::Connection& conn, const AccountRow& row);
  // Writes the projection of one account after a commit; logs a failure.
  void Project(uint64_t account_id);
  // Writes the platform's agreement versions (PlatformAgreements).
  absl::Status ProjectAgreements();

  IdentityDeps d_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_IDENTITY_LOGIC_H_
