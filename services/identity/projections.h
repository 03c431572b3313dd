// identity's Redis projections for the hot path (DESIGN §1): per account the
// hash projection::AccountIdentityKey with `verified` ("0"/"1"), `state`,
// `agreement_version` (the service agreement version accepted, "" when none)
// and `convention_version` (the platform convention version accepted).
// Written after each change commits and rebuilt from MySQL at start.
// Platform-wide, projection::PlatformAgreementKey: the agreement versions in
// force and the next ones published to take effect later, written on every
// PublishAgreement and at start, so the hot path can tell whether a sender
// accepted the current versions (R5.4).
#ifndef QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_
#define QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/redis.h"

namespace qunzu::identity {

// What the projection of one account holds.
struct AccountProjection {
  uint64_t account_id = 0;
  bool verified = false;
  std::string state;
  // AgreementKind -> highest version accepted.
  std::map<int, uint32_t> accepted;
  // The public nickname (R6.2), shown on group information pages.
  std::string nickname;
};

// The agreement versions of the platform, by AgreementKind.
struct PlatformAgreements {
  // The version in force (absent: none published yet).
  std::map<int, uint32_t> current;
  // The newest version published to take effect later, with that time.
  std::map<int, std::pair<uint32_t, absl::Time>> next;
};

class ProjectionWriter {
 public:
  virtual ~ProjectionWriter() = default;
  // Overwrites the projections of `accounts` (one round trip).
  virtual absl::Status Write(const std::vector<AccountProjection>& accounts) = 0;
  // Overwrites projection::PlatformAgreementKey (one round trip).
  virtual absl::Status WritePlatformAgreements(const PlatformAgreements& agreements) = 0;
};

class RedisProjectionWriter final : public ProjectionWriter {
 public:
  explicit RedisProjectionWriter(RedisClient& redis) : redis_(redis) {}
  absl::Status Write(const std::vector<AccountProjection>& accounts) override;
  absl::Status WritePlatformAgreements(const PlatformAgreements& agreements) override;

 private:
  RedisClient& redis_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_
