#include "common/agreement_versions.h"

#include <cstdint>

#include "absl/strings/numbers.h"

namespace qunzu {

std::string RequiredAgreementVersion(const PublishedAgreement& published, absl::Time now) {
  int64_t effective = 0;
  if (!published.next.empty() && absl::SimpleAtoi(published.next_effective_at, &effective) &&
      absl::FromUnixSeconds(effective) <= now) {
    return published.next;
  }
  return published.current;
}

bool AgreementAccepted(const std::string& accepted, const PublishedAgreement& published,
                       absl::Time now) {
  const std::string required = RequiredAgreementVersion(published, now);
  uint64_t need = 0;
  if (required.empty() || !absl::SimpleAtoi(required, &need) || need == 0) return true;
  uint64_t have = 0;
  return absl::SimpleAtoi(accepted, &have) && have >= need;
}

}  // namespace qunzu
