// Joining under the four policies (R8.7), both caps under concurrency
// (R8.1, R8.3), leaving, closed groups (R11.1), against MariaDB and Redis.
#include <cppconn/resultset.h>

#include <thread>
#include <vector>

#include "tests/groups/groups_fixture.h"

namespace qunzu::groups {
namespace {

using GroupsJoinTest = GroupsFixture;

TEST_F(GroupsJoinTest, HundredRacingJoinsIntoFiveFreeSeatsAdmitExactlyFive) {
  auto g = Create(Account());
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  for (int i = 1; i < 95; ++i) ASSERT_TRUE(Join(Account(), id).ok());
  std::vector<uint64_t> joiners;
  joiners.reserve(100);
  for (int i = 0; i < 100; ++i) joiners.push_back(Account());
  std::atomic<int> joined{0};
  std::atomic<int> full{0};
  std::vector<std::thread> threads;
  threads.reserve(joiners.size());
  for (uint64_t a : joiners) {
    threads.emplace_back([&, a] {
      auto r = Join(a, id);
      if (r.ok()) joined++;
      if (ErrorReason(r.status()) == "GROUP_MEMBER_CAP_REACHED") full++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(joined.load(), 5);
  EXPECT_EQ(full.load(), 95);
  EXPECT_EQ(Read(id).member_count(), 100u);
  EXPECT_EQ(CountRows(absl::StrCat("SELECT COUNT(*) FROM groups_members WHERE group_id = ", id)),
            100);
  auto count = redis_->Command({"HGET", projection::GroupKey(id), "member_count"});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->str(), "100");
}

TEST_F(GroupsJoinTest, RacingJoinsOneBelowTheJoinedCapEndAtTheCap) {
  const uint64_t owner = Account(true, 4, 200, 2000, 4);
  std::vector<uint64_t> groups;
  for (int i = 0; i < 13; ++i) {
    auto g = Create(owner);
    ASSERT_TRUE(g.ok()) << g.status();
    groups.push_back(g->group().group_id());
  }
  const uint64_t user = Account(true, 1, 0, 3);  // may join 3
  ASSERT_TRUE(Join(user, groups[0]).ok());
  ASSERT_TRUE(Join(user, groups[1]).ok());
  std::atomic<int> joined{0};
  std::atomic<int> capped{0};
  std::vector<std::thread> threads;
  threads.reserve(10);
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      auto r = Join(user, groups[2 + i]);
      if (r.ok()) joined++;
      if (ErrorReason(r.status()) == "GROUPS_JOINED_CAP_REACHED") capped++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(joined.load(), 1);
  EXPECT_EQ(capped.load(), 9);
  EXPECT_EQ(
      CountRows(absl::StrCat("SELECT COUNT(*) FROM groups_members WHERE account_id = ", user)), 3);
}

TEST_F(GroupsJoinTest, JoinPolicies) {
  const uint64_t owner = Account();
  auto approval = Create(owner, common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_APPROVAL);
  auto invite = Create(owner, common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_INVITE_ONLY);
  auto question = Create(owner, common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_QUESTION);
  ASSERT_TRUE(approval.ok() && invite.ok() && question.ok());
  const uint64_t user = Account();

  // APPROVAL: a request, no duplicate, approved by the owner.
  auto pending = Join(user, approval->group().group_id());
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->outcome(), v1::JOIN_OUTCOME_PENDING_APPROVAL);
  EXPECT_EQ(ErrorReason(Join(user, approval->group().group_id()).status()), "JOIN_REQUEST_PENDING");
  v1::DecideJoinRequestRequest decide;
  decide.set_request_id(Rid());
  decide.set_actor_account_id(user);
  decide.set_join_request_id(pending->join_request().join_request_id());
  decide.set_approve(true);
  EXPECT_EQ(ErrorReason(logic_->DecideJoinRequest(Platform("Decide"), decide).status()),
            "NOT_GROUP_ADMIN");
  decide.set_actor_account_id(owner);
  auto decided = logic_->DecideJoinRequest(Platform("Decide"), decide);
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_EQ(decided->member().join_method(), v1::JOIN_METHOD_APPROVED);
  decide.set_request_id(Rid());
  EXPECT_EQ(ErrorReason(logic_->DecideJoinRequest(Platform("Decide"), decide).status()),
            "JOIN_REQUEST_NOT_PENDING");
  EXPECT_EQ(ErrorReason(Join(user, approval->group().group_id()).status()), "ALREADY_MEMBER");

  // INVITE_ONLY: refused without, admitted with an invitation.
  EXPECT_EQ(ErrorReason(Join(user, invite->group().group_id()).status()), "INVITATION_REQUIRED");
  v1::InviteMemberRequest inv;
  inv.set_request_id(Rid());
  inv.set_actor_account_id(owner);
  inv.set_group_id(invite->group().group_id());
  inv.set_invitee_account_id(user);
  auto invitation = logic_->InviteMember(Platform("Invite"), inv);
  ASSERT_TRUE(invitation.ok()) << invitation.status();
  const uint64_t inv_id = invitation->invitation().invitation_id();
  EXPECT_EQ(ErrorReason(Join(Account(), invite->group().group_id(), "", inv_id).status()),
            "INVITATION_INVALID");
  auto invited = Join(user, invite->group().group_id(), "", inv_id);
  ASSERT_TRUE(invited.ok()) << invited.status();
  EXPECT_EQ(invited->member().join_method(), v1::JOIN_METHOD_INVITED);

  // QUESTION: the answer, case and spaces aside.
  EXPECT_EQ(ErrorReason(Join(user, question->group().group_id(), "K2").status()),
            "JOIN_ANSWER_INCORRECT");
  auto answered = Join(user, question->group().group_id(), " everest ");
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->member().join_method(), v1::JOIN_METHOD_ANSWERED);
}

TEST_F(GroupsJoinTest, LeaveAndOwnerCannotLeave) {
  const uint64_t owner = Account();
  auto g = Create(owner);
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  const uint64_t user = Account();
  ASSERT_TRUE(Join(user, id).ok());
  v1::LeaveGroupRequest leave;
  leave.set_request_id(Rid());
  leave.set_actor_account_id(owner);
  leave.set_group_id(id);
  EXPECT_EQ(ErrorReason(logic_->LeaveGroup(Platform("Leave"), leave).status()),
            "OWNER_CANNOT_LEAVE");
  leave.set_actor_account_id(user);
  leave.set_request_id(Rid());
  auto left = logic_->LeaveGroup(Platform("Leave"), leave);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_EQ(left->member_count(), 1u);
  leave.set_request_id(Rid());
  EXPECT_EQ(ErrorReason(logic_->LeaveGroup(Platform("Leave"), leave).status()), "NOT_GROUP_MEMBER");
  auto role = redis_->Command({"HEXISTS", projection::GroupMembersKey(id), absl::StrCat(user)});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->integer(), 0);
}

TEST_F(GroupsJoinTest, ClosedGroupRefusesJoinsAndChanges) {
  const uint64_t owner = Account();
  auto g = Create(owner);
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  v1::SetGroupStateRequest state;
  state.set_request_id(Rid());
  state.set_group_id(id);
  state.set_state(v1::GROUP_STATE_WARNED);
  *state.mutable_until() = ToProtoTime(clock_.Now() - absl::Hours(1));
  state.set_reason("spam");
  Caller moderation{"moderation", common::v1::ROLE_SERVICE, "moderation"};
  RequestContext ctx{moderation, "", "/g/SetGroupState"};
  EXPECT_EQ(ErrorReason(logic_->SetGroupState(ctx, state).status()), "UNTIL_IN_PAST");
  *state.mutable_until() = ToProtoTime(clock_.Now() + absl::Hours(72));
  auto warned = logic_->SetGroupState(ctx, state);
  ASSERT_TRUE(warned.ok()) << warned.status();
  EXPECT_EQ(warned->group().state(), v1::GROUP_STATE_WARNED);
  EXPECT_TRUE(warned->group().has_rectify_by());
  EXPECT_TRUE(Join(Account(), id).ok());  // warned groups still take members

  state.set_request_id(Rid());
  state.set_state(v1::GROUP_STATE_CLOSED);
  state.clear_until();
  ASSERT_TRUE(logic_->SetGroupState(ctx, state).ok());
  EXPECT_EQ(ErrorReason(Join(Account(), id).status()), "GROUP_CLOSED");
  v1::UpdateGroupInfoRequest update;
  update.set_request_id(Rid());
  update.set_actor_account_id(owner);
  update.set_group_id(id);
  update.set_name("New");
  EXPECT_EQ(ErrorReason(logic_->UpdateGroupInfo(Platform("Update"), update).status()),
            "GROUP_CLOSED");
  v1::DissolveGroupRequest dissolve;
  dissolve.set_request_id(Rid());
  dissolve.set_actor_account_id(owner);
  dissolve.set_group_id(id);
  EXPECT_EQ(ErrorReason(logic_->DissolveGroup(Platform("Dissolve"), dissolve).status()),
            "GROUP_CLOSED");
  auto projected = redis_->Command({"HGET", projection::GroupKey(id), "state"});
  ASSERT_TRUE(projected.ok());
  EXPECT_EQ(projected->str(), "GROUP_STATE_CLOSED");
}

TEST_F(GroupsJoinTest, ProjectionRebuiltFromMysql) {
  auto g = Create(Account());
  ASSERT_TRUE(g.ok());
  const uint64_t id = g->group().group_id();
  const uint64_t user = Account();
  ASSERT_TRUE(Join(user, id).ok());
  ASSERT_TRUE(
      redis_
          ->Pipeline({{"DEL", projection::GroupKey(id)}, {"DEL", projection::GroupMembersKey(id)}})
          .ok());
  ASSERT_TRUE(logic_->RebuildProjection().ok());
  auto count = redis_->Command({"HGET", projection::GroupKey(id), "member_count"});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->str(), "2");
  auto role = redis_->Command({"HGET", projection::GroupMembersKey(id), absl::StrCat(user)});
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->str(), "MEMBER_ROLE_MEMBER");
}

}  // namespace
}  // namespace qunzu::groups
