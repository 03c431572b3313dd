// Groups enforcing moderation's projections (R11.2, R11.3): a blacklisted
// account cannot create, join or act as admin and is let back at expiry
// without anyone acting; a blacklisted group takes no members; a revoked
// creation qualification refuses CreateGroup; a suspended admin keeps no
// admin powers; unreadable projections fail closed.
#include <string>

#include "tests/groups/groups_fixture.h"

namespace qunzu::groups {
namespace {

class GroupsModerationTest : public GroupsFixture {
 protected:
  std::string InAnHour() const { return absl::StrCat(absl::ToUnixSeconds(absl::Now()) + 3600); }
  std::string AMinuteAgo() const { return absl::StrCat(absl::ToUnixSeconds(absl::Now()) - 60); }
};

TEST_F(GroupsModerationTest, BlacklistedAccountIsRefusedAndLetBackAtExpiry) {
  const uint64_t owner = Account();
  auto group = Create(owner);
  ASSERT_TRUE(group.ok()) << group.status();
  const uint64_t id = group->group().group_id();
  const uint64_t user = Account();
  const std::string key = projection::AccountBlacklistKey(user);
  ASSERT_TRUE(redis_->Command({"SET", key, InAnHour()}).ok());
  EXPECT_EQ(ErrorReason(Create(user).status()), "ACCOUNT_BLACKLISTED");
  auto refused = Join(user, id);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(refused.status()), "ACCOUNT_BLACKLISTED");
  // Past its expiry the entry no longer counts, even before its TTL fires.
  ASSERT_TRUE(redis_->Command({"SET", key, AMinuteAgo()}).ok());
  EXPECT_TRUE(Join(user, id).ok());
  // The TTL lifts it without anyone acting.
  const uint64_t later = Account();
  ASSERT_TRUE(
      redis_->Command({"SET", projection::AccountBlacklistKey(later), "0", "PX", "300"}).ok());
  EXPECT_EQ(ErrorReason(Join(later, id).status()), "ACCOUNT_BLACKLISTED");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<v1::JoinGroupResponse> joined = Join(later, id);
  while (!joined.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    joined = Join(later, id);
  }
  EXPECT_TRUE(joined.ok()) << joined.status();
}

TEST_F(GroupsModerationTest, BlacklistedGroupTakesNoMembers) {
  const uint64_t owner = Account();
  auto group = Create(owner);
  ASSERT_TRUE(group.ok());
  const uint64_t id = group->group().group_id();
  ASSERT_TRUE(redis_->Command({"SET", projection::GroupBlacklistKey(id), "0"}).ok());
  EXPECT_EQ(ErrorReason(Join(Account(), id).status()), "GROUP_BLACKLISTED");
  v1::InviteMemberRequest invite;
  invite.set_request_id(Rid());
  invite.set_actor_account_id(owner);
  invite.set_group_id(id);
  invite.set_invitee_account_id(Account());
  EXPECT_EQ(ErrorReason(logic_->InviteMember(Platform("InviteMember"), invite).status()),
            "GROUP_BLACKLISTED");
  EXPECT_EQ(Read(id).member_count(), 1u);
  ASSERT_TRUE(redis_->Command({"DEL", projection::GroupBlacklistKey(id)}).ok());
}

TEST_F(GroupsModerationTest, RevokedCreationAndSuspendedAdminRights) {
  const uint64_t owner = Account();
  auto group = Create(owner);
  ASSERT_TRUE(group.ok());
  const uint64_t id = group->group().group_id();
  const std::string key = projection::AccountRestrictionsKey(owner);
  ASSERT_TRUE(redis_->Command({"HSET", key, "creation_revoked_until", InAnHour()}).ok());
  auto refused = Create(owner);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(refused.status()), "CREATION_REVOKED");
  ASSERT_TRUE(redis_->Command({"HSET", key, "creation_revoked_until", AMinuteAgo()}).ok());
  EXPECT_TRUE(Create(owner).ok());

  const uint64_t member = Account();
  ASSERT_TRUE(Join(member, id).ok());
  v1::MuteMemberRequest mute;
  mute.set_request_id(Rid());
  mute.set_actor_account_id(owner);
  mute.set_group_id(id);
  mute.set_member_account_id(member);
  mute.mutable_duration()->set_seconds(60);
  ASSERT_TRUE(redis_->Command({"HSET", key, "admin_suspended_until", InAnHour()}).ok());
  EXPECT_EQ(ErrorReason(logic_->MuteMember(Platform("MuteMember"), mute).status()),
            "ADMIN_RIGHTS_SUSPENDED");
  ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  ASSERT_TRUE(redis_->Command({"SET", projection::AccountBlacklistKey(owner), "0"}).ok());
  mute.set_request_id(Rid());
  EXPECT_EQ(ErrorReason(logic_->MuteMember(Platform("MuteMember"), mute).status()),
            "ACCOUNT_BLACKLISTED");
  ASSERT_TRUE(redis_->Command({"DEL", projection::AccountBlacklistKey(owner)}).ok());
  mute.set_request_id(Rid());
  EXPECT_TRUE(logic_->MuteMember(Platform("MuteMember"), mute).ok());
}

TEST_F(GroupsModerationTest, UnreadableBlacklistFailsClosed) {
  RedisOptions dead;
  dead.address = "127.0.0.1:1";
  auto dead_redis = RedisClient::Create(dead);
  ASSERT_TRUE(dead_redis.ok());
  RedisAccountReader reader(**dead_redis);
  auto blacklisted = reader.GroupBlacklisted(1);
  EXPECT_EQ(blacklisted.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(blacklisted.status()), "PROJECTION_UNAVAILABLE");
}

}  // namespace
}  // namespace qunzu::groups
