// identity's Redis projections for the hot path (DESIGN §1): per account the
// hash projection::AccountIdentityKey with `verified` ("0"/"1"), `state`,
// `agreement_version` (the service agreement version accepted, "" when none)
// and `convention_version` (the platform convention version accepted).
// Written after each change commits and rebuilt from MySQL at start.
#ifndef QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_
#define QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
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

class ProjectionWriter {
 public:
  virtual ~ProjectionWriter() = default;
  // Overwrites the projections of `accounts` (one round trip).
  virtual absl::Status Write(const std::vector<AccountProjection>& accounts) = 0;
};

class RedisProjectionWriter final : public ProjectionWriter {
 public:
  explicit RedisProjectionWriter(RedisClient& redis) : redis_(redis) {}
  absl::Status Write(const std::vector<AccountProjection>& accounts) override;

 private:
  RedisClient& redis_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_PROJECTIONS_H_
