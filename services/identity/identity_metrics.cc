#include "services/identity/identity_metrics.h"

#include "absl/strings/ascii.h"
#include "common/auth.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

constexpr const char* kMethods[] = {"resident_id", "real_name_phone"};
constexpr const char* kOutcomes[] = {
    "verified",   "rejected", "rate_limited", "id_number_limit", "verifier_unavailable",
    "other_error"};

std::string MethodLabel(v1::VerificationMethod method) {
  return method == v1::VERIFICATION_METHOD_REAL_NAME_PHONE ? "real_name_phone" : "resident_id";
}

std::string OutcomeLabel(v1::VerificationState state, const absl::Status& status) {
  if (status.ok()) return state == v1::VERIFICATION_STATE_VERIFIED ? "verified" : "rejected";
  const std::string reason = ErrorReason(status);
  if (reason == "VERIFICATION_RATE_LIMITED") return "rate_limited";
  if (reason == "ID_NUMBER_ACCOUNT_LIMIT_REACHED") return "id_number_limit";
  if (reason == "VERIFIER_UNAVAILABLE") return "verifier_unavailable";
  return "other_error";
}

}  // namespace

IdentityMetrics::IdentityMetrics(prometheus::Registry& registry) {
  auto& verifications = prometheus::BuildCounter()
                            .Name("qunzu_identity_verifications_total")
                            .Help("Real-name verification attempts by method and outcome.")
                            .Register(registry);
  for (const char* method : kMethods) {
    for (const char* outcome : kOutcomes) {
      verifications_[{method, outcome}] =
          &verifications.Add({{"method", method}, {"outcome", outcome}});
    }
  }
  auto& reveals = prometheus::BuildCounter()
                      .Name("qunzu_identity_reveals_total")
                      .Help("Real identities revealed in clear, by the caller's role.")
                      .Register(registry);
  for (common::v1::Role role : {common::v1::ROLE_COMPLIANCE, common::v1::ROLE_REGULATOR}) {
    reveals_[RoleName(role)] = &reveals.Add({{"role", RoleName(role)}});
  }
  projection_failures_ = &prometheus::BuildCounter()
                              .Name("qunzu_identity_projection_write_failures_total")
                              .Help("Redis projection writes that failed after a commit.")
                              .Register(registry)
                              .Add({});
}

void IdentityMetrics::CountVerification(v1::VerificationMethod method, v1::VerificationState state,
                                        const absl::Status& status) {
  auto it = verifications_.find({MethodLabel(method), OutcomeLabel(state, status)});
  if (it != verifications_.end()) it->second->Increment();
}

void IdentityMetrics::CountReveal(common::v1::Role role) {
  auto it = reveals_.find(RoleName(role));
  if (it != reveals_.end()) it->second->Increment();
}

void IdentityMetrics::CountProjectionFailure() { projection_failures_->Increment(); }

}  // namespace qunzu::identity
