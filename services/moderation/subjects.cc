#include "services/moderation/subjects.h"

#include <string>

#include "common/projection_keys.h"
#include "common/status.h"

namespace qunzu::moderation {

absl::StatusOr<bool> RedisSubjectDirectory::Exists(const std::string& key) {
  absl::StatusOr<RedisReply> reply =
      redis_ == nullptr ? absl::UnavailableError("no Redis") : redis_->Command({"EXISTS", key});
  if (!reply.ok() || reply->is_error()) {
    return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                     "cannot check whether the subject exists; refusing rather than guessing");
  }
  return reply->integer() > 0;
}

absl::StatusOr<bool> RedisSubjectDirectory::AccountExists(uint64_t account_id) {
  return Exists(projection::AccountIdentityKey(account_id));
}

absl::StatusOr<bool> RedisSubjectDirectory::GroupExists(uint64_t group_id) {
  return Exists(projection::GroupKey(group_id));
}

}  // namespace qunzu::moderation
