#include "services/credit/credit_projection.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"

namespace qunzu::credit {

absl::Status RedisCreditProjection::Publish(const std::vector<v1::CreditStatus>& statuses) {
  if (statuses.empty()) return absl::OkStatus();
  std::vector<RedisCommand> commands;
  commands.reserve(statuses.size());
  for (const v1::CreditStatus& status : statuses) {
    const v1::Entitlements& e = status.entitlements();
    commands.push_back({"HSET", projection::AccountCreditKey(status.account_id()), "score",
                        absl::StrCat(status.score()), "level", absl::StrCat(status.level()),
                        "groups_may_create", absl::StrCat(e.groups_may_create()), "groups_may_join",
                        absl::StrCat(e.groups_may_join()), "max_create_tier",
                        absl::StrCat(static_cast<int>(e.max_create_tier())), "may_be_admin",
                        e.may_be_admin() ? "1" : "0", "messages_per_minute",
                        absl::StrCat(e.messages_per_minute())});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis_.Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const RedisReply& reply : *replies) {
    if (absl::Status s = reply.ErrorStatus(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace qunzu::credit
