// The adapter to an external real-name verification provider
// (identity.v1.VerificationProvider, R6.1): each call bounded by a deadline,
// retried only when the provider answers UNAVAILABLE, and failing closed —
// anything but an explicit answer is UNAVAILABLE, never "verified".
#ifndef QUNZU_SERVICES_IDENTITY_PROVIDER_VERIFIER_H_
#define QUNZU_SERVICES_IDENTITY_PROVIDER_VERIFIER_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "qunzu/identity/v1/identity.grpc.pb.h"
#include "services/identity/verifier.h"

namespace qunzu::identity {

struct ProviderOptions {
  // Recorded as Verification.verifier.
  std::string name = "provider";
  // Per call.
  absl::Duration deadline = absl::Seconds(2);
  // Calls in all when the provider keeps answering UNAVAILABLE (>= 1).
  int max_attempts = 3;
  // Wait before the first retry; doubles for each further one.
  absl::Duration backoff = absl::Milliseconds(50);
};

class ProviderVerifier final : public Verifier {
 public:
  ProviderVerifier(const std::shared_ptr<grpc::Channel>& channel, ProviderOptions options);

  // UNAVAILABLE (VERIFIER_UNAVAILABLE) when the provider could not answer
  // within the attempts, or answered with any error.
  absl::StatusOr<Decision> Verify(const Evidence& evidence, const std::string& attempt_id) override;
  std::string name() const override { return options_.name; }

 private:
  std::unique_ptr<v1::VerificationProvider::Stub> stub_;
  ProviderOptions options_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_PROVIDER_VERIFIER_H_
