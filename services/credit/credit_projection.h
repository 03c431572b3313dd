// The hot-path copy of each account's level and entitlements (DESIGN §1):
// credit publishes it to Redis after every change and rebuilds it at start.
// MySQL stays the truth; the projection can always be rewritten from it.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_PROJECTION_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_PROJECTION_H_

#include <vector>

#include "absl/status/status.h"
#include "common/redis.h"
#include "qunzu/credit/v1/credit.pb.h"

namespace qunzu::credit {

class CreditProjection {
 public:
  virtual ~CreditProjection() = default;
  // Overwrites the projection of every given account; OK only when all were
  // written.
  virtual absl::Status Publish(const std::vector<v1::CreditStatus>& statuses) = 0;
};

// Writes projection::AccountCreditKey(account) hashes in one pipeline, each
// with one HSET: `score`, `level` (in force, after penalties),
// `groups_may_create`, `groups_may_join`, `max_create_tier` (the ScaleTier
// number, 0 for none), `may_be_admin` ("0"/"1") and `messages_per_minute`,
// all decimal strings.
class RedisCreditProjection final : public CreditProjection {
 public:
  explicit RedisCreditProjection(RedisClient& redis) : redis_(redis) {}
  absl::Status Publish(const std::vector<v1::CreditStatus>& statuses) override;

 private:
  RedisClient& redis_;
};

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_PROJECTION_H_
