// Which agreement versions an account must have accepted (R5.4), from
// identity's projections (projection::PlatformAgreementKey and
// AccountIdentityKey). The hot path (moderation) and group creation and
// joining (groups) decide it the same way.
#ifndef QUNZU_COMMON_AGREEMENT_VERSIONS_H_
#define QUNZU_COMMON_AGREEMENT_VERSIONS_H_

#include <string>

#include "absl/time/time.h"

namespace qunzu {

// One agreement kind as identity publishes it: the version in force, and
// the next one with the unix second it takes effect ("" when none).
struct PublishedAgreement {
  std::string current;
  std::string next;
  std::string next_effective_at;
};

// The version an account must have accepted at `now`: the next one once it
// is effective, else the current one ("" or "0": none required).
std::string RequiredAgreementVersion(const PublishedAgreement& published, absl::Time now);

// Whether `accepted` (the highest version the account accepted, "" for
// none) covers what `published` requires at `now`.
bool AgreementAccepted(const std::string& accepted, const PublishedAgreement& published,
                       absl::Time now);

}  // namespace qunzu

#endif  // QUNZU_COMMON_AGREEMENT_VERSIONS_H_
