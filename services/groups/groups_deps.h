// What the groups logic reads from outside its schema: accounts (identity's,
// credit's and moderation's Redis projections, read fail-closed; the
// blacklists and restrictions moderation publishes, R11.2, R11.3), the text screen
// (moderation.ScreenText over gRPC with a deadline, fail-closed), and the
// groups projection it writes for the hot path.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_DEPS_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_DEPS_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/projection_keys.h"
#include "common/redis.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"

namespace qunzu::groups {

// An account as identity and credit publish it.
struct AccountView {
  bool verified = false;
  std::string state;
  // The public nickname (identity's projection).
  std::string nickname;
  uint32_t level = 0;
  uint32_t groups_may_create = 0;
  uint32_t groups_may_join = 0;
  int max_create_tier = 0;
  bool may_be_admin = false;
  // Moderation's projections at the time of the read (R11.2, R11.3).
  bool blacklisted = false;
  bool admin_suspended = false;
  bool creation_revoked = false;
  // Whether the account accepted the service agreement and platform
  // convention in force (R5.4), from identity's projections.
  bool agreements_accepted = false;
};

class AccountReader {
 public:
  virtual ~AccountReader() = default;
  // NOT_FOUND ACCOUNT_NOT_FOUND when identity has no such account;
  // UNAVAILABLE PROJECTION_UNAVAILABLE when a projection cannot be read or
  // credit has not published a verified account.
  virtual absl::StatusOr<AccountView> Read(uint64_t account_id) = 0;
  // Whether moderation blacklisted the group (R11.3); UNAVAILABLE
  // PROJECTION_UNAVAILABLE when it cannot be read.
  virtual absl::StatusOr<bool> GroupBlacklisted(uint64_t group_id) = 0;
};

class RedisAccountReader final : public AccountReader {
 public:
  // `agreement_key` is where identity publishes the versions in force
  // (tests give each their own).
  explicit RedisAccountReader(RedisClient& redis, const Clock& clock = SystemClock::Get(),
                              std::string agreement_key = projection::PlatformAgreementKey())
      : redis_(redis), clock_(clock), agreement_key_(std::move(agreement_key)) {}
  absl::StatusOr<AccountView> Read(uint64_t account_id) override;
  absl::StatusOr<bool> GroupBlacklisted(uint64_t group_id) override;

 private:
  RedisClient& redis_;
  const Clock& clock_;
  const std::string agreement_key_;
};

// The verdict on a piece of group text.
struct ScreenResult {
  moderation::v1::ScreenVerdict verdict = moderation::v1::SCREEN_VERDICT_ALLOW;
  uint64_t rule_id = 0;
};

class TextScreener {
 public:
  virtual ~TextScreener() = default;
  // UNAVAILABLE MODERATION_UNAVAILABLE when the screen cannot answer.
  virtual absl::StatusOr<ScreenResult> Screen(moderation::v1::TextPurpose purpose,
                                              const std::string& text, uint64_t actor,
                                              uint64_t group_id) = 0;
};

class GrpcTextScreener final : public TextScreener {
 public:
  GrpcTextScreener(std::shared_ptr<grpc::Channel> channel, std::string token,
                   absl::Duration deadline);
  absl::StatusOr<ScreenResult> Screen(moderation::v1::TextPurpose purpose, const std::string& text,
                                      uint64_t actor, uint64_t group_id) override;

 private:
  std::unique_ptr<moderation::v1::ModerationService::Stub> stub_;
  std::string token_;
  absl::Duration deadline_;
};

// Writes the hot path's view of groups (GroupKey, GroupMembersKey,
// GroupMutesKey). Failures are logged by the caller; the start-up rebuild
// heals them.
class GroupProjection {
 public:
  explicit GroupProjection(RedisClient* redis) : redis_(redis) {}
  absl::Status PublishGroup(const v1::Group& group);
  absl::Status PublishMember(const v1::Member& member);
  absl::Status RemoveMember(uint64_t group_id, uint64_t account_id);
  // Replaces the members and mutes of a group.
  absl::Status ReplaceMembers(uint64_t group_id, const std::vector<v1::Member>& members);
  // The activity counter for the group in the current window.
  absl::StatusOr<uint64_t> ActivityCount(uint64_t group_id, absl::Time now, absl::Duration window);

 private:
  RedisClient* redis_;
};

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_DEPS_H_
