#include "services/identity/provider_verifier.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"

namespace qunzu::identity {

ProviderVerifier::ProviderVerifier(const std::shared_ptr<grpc::Channel>& channel,
                                   ProviderOptions options)
    : stub_(v1::VerificationProvider::NewStub(channel)), options_(std::move(options)) {
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

absl::StatusOr<Decision> ProviderVerifier::Verify(const Evidence& evidence,
                                                  const std::string& attempt_id) {
  v1::VerifyIdentityRequest request;
  request.set_request_id(attempt_id);
  if (evidence.method == v1::VERIFICATION_METHOD_RESIDENT_ID) {
    request.mutable_resident_identity()->set_legal_name(evidence.legal_name);
    request.mutable_resident_identity()->set_resident_id_number(evidence.resident_id_number);
  } else {
    request.mutable_real_name_phone()->set_phone(evidence.phone);
  }
  grpc::Status status;
  absl::Duration backoff = options_.backoff;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoNanoseconds(options_.deadline));
    v1::VerifyIdentityResponse response;
    status = stub_->VerifyIdentity(&context, request, &response);
    if (status.ok()) {
      Decision decision;
      decision.match = response.match();
      decision.rejection_reason =
          response.match() ? v1::REJECTION_REASON_UNSPECIFIED : response.rejection_reason();
      decision.provider_reference = response.provider_reference().substr(0, 128);
      return decision;
    }
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    if (attempt < options_.max_attempts) {
      absl::SleepFor(backoff);  // a retry backoff, bounded by max_attempts
      backoff *= 2;
    }
  }
  return MakeError(absl::StatusCode::kUnavailable, "VERIFIER_UNAVAILABLE",
                   absl::StrCat("the verification provider failed: code ",
                                static_cast<int>(status.error_code())));
}

}  // namespace qunzu::identity
