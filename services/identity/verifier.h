// Who decides whether submitted evidence belongs to a real person (R6.1):
// an interface with the built-in offline checks, and (provider_verifier.h)
// an adapter for an external provider. Verifiers see evidence that already
// passed the format checks of validators.h.
#ifndef QUNZU_SERVICES_IDENTITY_VERIFIER_H_
#define QUNZU_SERVICES_IDENTITY_VERIFIER_H_

#include <string>

#include "absl/status/statusor.h"
#include "qunzu/identity/v1/identity.pb.h"

namespace qunzu::identity {

// What the user submitted, validated and normalised.
struct Evidence {
  v1::VerificationMethod method = v1::VERIFICATION_METHOD_UNSPECIFIED;
  // RESIDENT_ID.
  std::string legal_name;
  std::string resident_id_number;
  // REAL_NAME_PHONE.
  std::string phone;
};

// A definitive answer about the evidence.
struct Decision {
  bool match = false;
  // Set when !match.
  v1::RejectionReason rejection_reason = v1::REJECTION_REASON_UNSPECIFIED;
  // The provider's reference, kept for disputes; "" offline.
  std::string provider_reference;
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  // Decides about `evidence`; `attempt_id` is unique per attempt (the
  // provider's idempotency key). Only an OK result is a decision: any error
  // is UNAVAILABLE (VERIFIER_UNAVAILABLE) and must never count as verified.
  virtual absl::StatusOr<Decision> Verify(const Evidence& evidence,
                                          const std::string& attempt_id) = 0;
  // Recorded as Verification.verifier: "offline" or the provider's name.
  virtual std::string name() const = 0;
};

// The default: evidence that passed the format checks (check character,
// birth date, region; phone format) is accepted.
class OfflineVerifier final : public Verifier {
 public:
  absl::StatusOr<Decision> Verify(const Evidence& /*evidence*/,
                                  const std::string& /*attempt_id*/) override {
    return Decision{true, v1::REJECTION_REASON_UNSPECIFIED, ""};
  }
  std::string name() const override { return "offline"; }
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_VERIFIER_H_
