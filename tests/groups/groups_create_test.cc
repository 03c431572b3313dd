// CreateGroup's qualification by tier and category (R8.6), the created cap
// (R8.2), creation review, the group code (R8.4), fail-closed projections,
// screening and idempotency, against MariaDB and Redis.
#include <cppconn/resultset.h>

#include <set>
#include <thread>
#include <vector>

#include "services/groups/group_code.h"
#include "tests/groups/groups_fixture.h"

namespace qunzu::groups {
namespace {

using GroupsCreateTest = GroupsFixture;

TEST_F(GroupsCreateTest, SmallGroupOfVerifiedAccountIsActiveWithOwner) {
  const uint64_t owner = Account();
  auto created = Create(owner);
  ASSERT_TRUE(created.ok()) << created.status();
  const v1::Group& g = created->group();
  EXPECT_EQ(g.state(), v1::GROUP_STATE_ACTIVE);
  EXPECT_FALSE(created->review_required());
  EXPECT_EQ(g.member_count(), 1u);
  EXPECT_EQ(g.member_cap(), 100u);
  EXPECT_EQ(g.owner_account_id(), owner);
  EXPECT_TRUE(IsValidGroupCode(g.code())) << g.code();
  // Projection written on change.
  auto state = redis_->Command({"HGET", projection::GroupKey(g.group_id()), "state"});
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->str(), "GROUP_STATE_ACTIVE");
  auto role =
      redis_->Command({"HGET", projection::GroupMembersKey(g.group_id()), absl::StrCat(owner)});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->str(), "MEMBER_ROLE_OWNER");
  // Audited in the same transaction.
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox"), 1);
}

TEST_F(GroupsCreateTest, QualificationByTier) {
  auto unverified = Create(Account(false));
  EXPECT_EQ(ErrorReason(unverified.status()), "ACCOUNT_NOT_VERIFIED");
  auto low = Create(Account(true, 1, 2, 100, 1), common::v1::SCALE_TIER_MEDIUM);
  EXPECT_EQ(ErrorReason(low.status()), "CREDIT_LEVEL_TOO_LOW");
  auto not_entitled = Create(Account(true, 3, 10, 100, 2), common::v1::SCALE_TIER_LARGE);
  EXPECT_EQ(ErrorReason(not_entitled.status()), "SCALE_TIER_NOT_ENTITLED");
  auto medium = Create(Account(true, 2), common::v1::SCALE_TIER_MEDIUM);
  ASSERT_TRUE(medium.ok()) << medium.status();
  EXPECT_EQ(medium->group().state(), v1::GROUP_STATE_ACTIVE);
  // Refusals leave nothing behind.
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM groups_groups"), 1);
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox"), 1);
}

TEST_F(GroupsCreateTest, LargeTierAndNewsCategoryWaitForReview) {
  auto large = Create(Account(true, 3, 50, 500, 3), common::v1::SCALE_TIER_LARGE);
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(large->group().state(), v1::GROUP_STATE_PENDING_REVIEW);
  EXPECT_TRUE(large->review_required());
  auto news = Create(Account(), common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_OPEN,
                     common::v1::GROUP_CATEGORY_NEWS_PUBLIC_AFFAIRS);
  ASSERT_TRUE(news.ok());
  EXPECT_EQ(news->group().state(), v1::GROUP_STATE_PENDING_REVIEW);
  ASSERT_EQ(news->review_reasons_size(), 1);
  EXPECT_EQ(news->review_reasons(0), "category GROUP_CATEGORY_NEWS_PUBLIC_AFFAIRS");

  // Pending: nobody joins.
  EXPECT_EQ(ErrorReason(Join(Account(), news->group().group_id()).status()), "GROUP_NOT_ACTIVE");

  v1::ReviewGroupCreationRequest review;
  review.set_request_id(Rid());
  review.set_group_id(news->group().group_id());
  review.set_decision(v1::REVIEW_DECISION_APPROVE);
  review.set_reason("fine");
  auto approved = logic_->ReviewGroupCreation(Moderator("Review"), review);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->group().state(), v1::GROUP_STATE_ACTIVE);
  review.set_request_id(Rid());
  EXPECT_EQ(ErrorReason(logic_->ReviewGroupCreation(Moderator("Review"), review).status()),
            "GROUP_NOT_PENDING_REVIEW");
  EXPECT_TRUE(Join(Account(), news->group().group_id()).ok());
}

TEST_F(GroupsCreateTest, ProjectionsFailClosed) {
  // No identity projection at all: the account is unknown.
  EXPECT_EQ(ErrorReason(Create(next_account_ + 1000).status()), "ACCOUNT_NOT_FOUND");
  // Verified but credit never published: refuse, do not guess.
  const uint64_t id = next_account_ + 2000;
  ASSERT_TRUE(redis_->Command({"HSET", projection::AccountIdentityKey(id), "verified", "1"}).ok());
  EXPECT_EQ(Create(id).status().code(), absl::StatusCode::kUnavailable);
  // Redis unreachable.
  RedisOptions dead;
  dead.address = "127.0.0.1:1";
  auto dead_redis = RedisClient::Create(dead);
  ASSERT_TRUE(dead_redis.ok());
  RedisAccountReader reader(**dead_redis);
  auto view = reader.Read(Account());
  EXPECT_EQ(view.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(view.status()), "PROJECTION_UNAVAILABLE");
}

TEST_F(GroupsCreateTest, AgreementsInForceMustBeAcceptedToCreateOrJoin) {
  const uint64_t owner = Account();
  auto group = Create(owner);
  ASSERT_TRUE(group.ok()) << group.status();
  const uint64_t group_id = group->group().group_id();

  // Version 2 of the convention takes effect: nobody has accepted it yet.
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(redis_
                  ->Command({"HSET", agreement_key_, "next_convention_version", "2",
                             "next_convention_effective_at", absl::StrCat(now - 1)})
                  .ok());
  const uint64_t member = Account();
  EXPECT_EQ(ErrorReason(Create(owner).status()), "AGREEMENT_NOT_ACCEPTED");
  EXPECT_EQ(ErrorReason(Join(member, group_id).status()), "AGREEMENT_NOT_ACCEPTED");
  ASSERT_TRUE(
      redis_->Command({"HSET", projection::AccountIdentityKey(member), "convention_version", "2"})
          .ok());
  EXPECT_TRUE(Join(member, group_id).ok());

  // A version announced for later binds nobody yet.
  ASSERT_TRUE(redis_
                  ->Command({"HSET", agreement_key_, "next_agreement_version", "3",
                             "next_agreement_effective_at", absl::StrCat(now + 3600)})
                  .ok());
  ASSERT_TRUE(
      redis_->Command({"HSET", projection::AccountIdentityKey(owner), "convention_version", "2"})
          .ok());
  EXPECT_TRUE(Create(owner).ok());

  // Identity never published the versions in force: refuse, do not guess.
  ASSERT_TRUE(redis_->Command({"DEL", agreement_key_}).ok());
  EXPECT_EQ(ErrorReason(Join(Account(), group_id).status()), "PROJECTION_UNAVAILABLE");
}

TEST_F(GroupsCreateTest, CreatedCapHoldsUnderRacingCreates) {
  const uint64_t owner = Account(true, 1, 2, 100, 1);  // may create 2
  std::vector<std::thread> threads;
  threads.reserve(10);
  std::atomic<int> ok{0};
  std::atomic<int> capped{0};
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&] {
      auto r = Create(owner);
      if (r.ok()) ok++;
      if (ErrorReason(r.status()) == "GROUPS_CREATED_CAP_REACHED") {
        capped++;
      } else if (!r.ok()) {
        ADD_FAILURE() << r.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(capped.load(), 8);
  EXPECT_EQ(CountRows(absl::StrCat("SELECT COUNT(*) FROM groups_groups WHERE owner_account_id = ",
                                   owner)),
            2);
}

TEST_F(GroupsCreateTest, ScreenedTextAndScreenOutage) {
  v1::CreateGroupRequest q;
  q.set_request_id(Rid());
  q.set_actor_account_id(Account());
  q.set_name("blocked words");
  q.set_category(common::v1::GROUP_CATEGORY_HOBBY);
  q.set_scale_tier(common::v1::SCALE_TIER_SMALL);
  q.set_join_policy(v1::JOIN_POLICY_OPEN);
  auto blocked = logic_->CreateGroup(Platform("CreateGroup"), q);
  EXPECT_EQ(ErrorReason(blocked.status()), "CONTENT_BLOCKED");
  EXPECT_EQ(ErrorMetadata(blocked.status(), "field"), "name");
  q.set_name("held words");
  auto held = logic_->CreateGroup(Platform("CreateGroup"), q);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->group().state(), v1::GROUP_STATE_PENDING_REVIEW);
  screener_.down = true;
  q.set_request_id(Rid());
  q.set_name("fine");
  EXPECT_EQ(logic_->CreateGroup(Platform("CreateGroup"), q).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(GroupsCreateTest, RetryReturnsFirstResult) {
  v1::CreateGroupRequest q;
  q.set_request_id("same");
  q.set_actor_account_id(Account());
  q.set_name("Once");
  q.set_category(common::v1::GROUP_CATEGORY_HOBBY);
  q.set_scale_tier(common::v1::SCALE_TIER_SMALL);
  q.set_join_policy(v1::JOIN_POLICY_OPEN);
  auto first = logic_->CreateGroup(Platform("CreateGroup"), q);
  auto second = logic_->CreateGroup(Platform("CreateGroup"), q);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->group().group_id(), second->group().group_id());
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM groups_groups"), 1);
  q.set_name("Other");
  EXPECT_EQ(ErrorReason(logic_->CreateGroup(Platform("CreateGroup"), q).status()),
            "REQUEST_ID_REUSED");
}

TEST(GroupCodeTest, RandomFixedLengthWithCheckCharacter) {
  std::set<std::string> codes;
  for (int i = 0; i < 2000; ++i) {
    std::string code = NewGroupCode();
    ASSERT_EQ(code.size(), static_cast<size_t>(kGroupCodeLength));
    ASSERT_TRUE(IsValidGroupCode(code)) << code;
    codes.insert(code);
    // Any single changed character is caught.
    std::string bad = code;
    bad[3] = bad[3] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(IsValidGroupCode(bad)) << code;
    // An adjacent swap of different characters in the body is caught.
    std::string swapped = code;
    std::swap(swapped[1], swapped[2]);
    if (swapped != code) {
      EXPECT_FALSE(IsValidGroupCode(swapped)) << code;
    }
  }
  EXPECT_EQ(codes.size(), 2000u);
  EXPECT_FALSE(IsValidGroupCode("ABC"));
  EXPECT_FALSE(IsValidGroupCode("0000000000"));
}

}  // namespace
}  // namespace qunzu::groups
