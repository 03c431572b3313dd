// Whether the accounts and groups moderation acts on exist, read from the
// owners' Redis projections (identity's AccountIdentityKey, groups'
// GroupKey) and failing closed: UNAVAILABLE when they cannot be read.
#ifndef QUNZU_SERVICES_MODERATION_SUBJECTS_H_
#define QUNZU_SERVICES_MODERATION_SUBJECTS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/redis.h"

namespace qunzu::moderation {

class SubjectDirectory {
 public:
  virtual ~SubjectDirectory() = default;
  virtual absl::StatusOr<bool> AccountExists(uint64_t account_id) = 0;
  virtual absl::StatusOr<bool> GroupExists(uint64_t group_id) = 0;
};

class RedisSubjectDirectory final : public SubjectDirectory {
 public:
  explicit RedisSubjectDirectory(RedisClient* redis) : redis_(redis) {}
  absl::StatusOr<bool> AccountExists(uint64_t account_id) override;
  absl::StatusOr<bool> GroupExists(uint64_t group_id) override;

 private:
  absl::StatusOr<bool> Exists(const std::string& key);
  RedisClient* redis_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_SUBJECTS_H_
