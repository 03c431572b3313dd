// identity's domain metrics, with bounded labels only (never an account,
// name or number): verifications by method and outcome, identity reveals
// by role, failed projection writes.
#ifndef QUNZU_SERVICES_IDENTITY_IDENTITY_METRICS_H_
#define QUNZU_SERVICES_IDENTITY_IDENTITY_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "qunzu/common/v1/common.pb.h"
#include "qunzu/identity/v1/identity.pb.h"

namespace qunzu::identity {

class IdentityMetrics {
 public:
  // Registers qunzu_identity_verifications_total{method,outcome},
  // qunzu_identity_reveals_total{role} and
  // qunzu_identity_projection_write_failures_total, every series at zero.
  explicit IdentityMetrics(prometheus::Registry& registry);

  // Counts one SubmitRealName outcome: "verified", "rejected", or the
  // failure's reason class ("rate_limited", "id_number_limit",
  // "verifier_unavailable", "other_error"). Invalid input is not counted.
  void CountVerification(v1::VerificationMethod method, v1::VerificationState state,
                         const absl::Status& status);
  void CountReveal(common::v1::Role role);
  void CountProjectionFailure();

 private:
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> verifications_;
  std::map<std::string, prometheus::Counter*> reveals_;
  prometheus::Counter* projection_failures_ = nullptr;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_IDENTITY_METRICS_H_
