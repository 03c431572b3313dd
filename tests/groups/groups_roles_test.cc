// The permission matrix of in-group powers (R9.1): owner, admin, member and
// non-member against every action, including an admin acting on the owner
// or another admin; timed mutes; UpdateGroupInfo screened (R10.1).
#include <array>
#include <functional>
#include <map>
#include <string>

#include "google/protobuf/util/time_util.h"
#include "tests/groups/groups_fixture.h"

namespace qunzu::groups {
namespace {

class GroupsRolesTest : public GroupsFixture {
 public:
  struct Cast {
    uint64_t group_id = 0;
    uint64_t owner = 0, admin = 0, admin2 = 0, member = 0, member2 = 0, outsider = 0;
    uint64_t join_request_id = 0;
  };

 protected:
  // A fresh APPROVAL group with two admins, two members, an outsider and
  // one pending join request.
  Cast NewCast() {
    Cast c;
    c.owner = Account();
    auto g = Create(c.owner, common::v1::SCALE_TIER_SMALL, v1::JOIN_POLICY_APPROVAL);
    EXPECT_TRUE(g.ok()) << g.status();
    c.group_id = g->group().group_id();
    for (uint64_t* who : {&c.admin, &c.admin2, &c.member, &c.member2}) {
      *who = Account();
      v1::InviteMemberRequest inv;
      inv.set_request_id(Rid());
      inv.set_actor_account_id(c.owner);
      inv.set_group_id(c.group_id);
      inv.set_invitee_account_id(*who);
      auto invitation = logic_->InviteMember(Platform("Invite"), inv);
      EXPECT_TRUE(invitation.ok()) << invitation.status();
      EXPECT_TRUE(Join(*who, c.group_id, "", invitation->invitation().invitation_id()).ok());
    }
    for (uint64_t who : {c.admin, c.admin2}) {
      EXPECT_TRUE(SetRole(c, c.owner, who, v1::MEMBER_ROLE_ADMIN).ok());
    }
    c.outsider = Account();
    auto pending = Join(Account(), c.group_id);
    EXPECT_TRUE(pending.ok());
    c.join_request_id = pending->join_request().join_request_id();
    return c;
  }

  absl::Status SetRole(const Cast& c, uint64_t actor, uint64_t target, v1::MemberRole role) {
    v1::SetMemberRoleRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_member_account_id(target);
    q.set_role(role);
    return logic_->SetMemberRole(Platform("SetMemberRole"), q).status();
  }
  absl::Status Remove(const Cast& c, uint64_t actor, uint64_t target) {
    v1::RemoveMemberRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_member_account_id(target);
    return logic_->RemoveMember(Platform("RemoveMember"), q).status();
  }
  absl::Status Mute(const Cast& c, uint64_t actor, uint64_t target) {
    v1::MuteMemberRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_member_account_id(target);
    q.mutable_duration()->set_seconds(3600);
    return logic_->MuteMember(Platform("MuteMember"), q).status();
  }
  absl::Status Transfer(const Cast& c, uint64_t actor, uint64_t target) {
    v1::TransferOwnershipRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_new_owner_account_id(target);
    return logic_->TransferOwnership(Platform("Transfer"), q).status();
  }
  absl::Status Dissolve(const Cast& c, uint64_t actor) {
    v1::DissolveGroupRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    return logic_->DissolveGroup(Platform("Dissolve"), q).status();
  }
  absl::Status Update(const Cast& c, uint64_t actor, const std::string& announcement = "Hi") {
    v1::UpdateGroupInfoRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_announcement(announcement);
    return logic_->UpdateGroupInfo(Platform("Update"), q).status();
  }
  absl::Status Decide(const Cast& c, uint64_t actor) {
    v1::DecideJoinRequestRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_join_request_id(c.join_request_id);
    q.set_approve(true);
    return logic_->DecideJoinRequest(Platform("Decide"), q).status();
  }
  absl::Status Invite(const Cast& c, uint64_t actor) {
    v1::InviteMemberRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(actor);
    q.set_group_id(c.group_id);
    q.set_invitee_account_id(Account());
    return logic_->InviteMember(Platform("Invite"), q).status();
  }
};

enum class Actor { kOwner, kAdmin, kMember, kOutsider };

uint64_t Who(const GroupsRolesTest::Cast& c, Actor a) {
  switch (a) {
    case Actor::kOwner:
      return c.owner;
    case Actor::kAdmin:
      return c.admin;
    case Actor::kMember:
      return c.member;
    case Actor::kOutsider:
      return c.outsider;
  }
  return 0;
}

std::string Outcome(const absl::Status& s) { return s.ok() ? "OK" : ErrorReason(s); }

TEST_F(GroupsRolesTest, PermissionMatrix) {
  using Action = std::function<absl::Status(const Cast&, uint64_t)>;
  const std::map<std::string, Action> actions = {
      {"remove member", [&](const Cast& c, uint64_t a) { return Remove(c, a, c.member2); }},
      {"remove admin", [&](const Cast& c, uint64_t a) { return Remove(c, a, c.admin2); }},
      {"remove owner", [&](const Cast& c, uint64_t a) { return Remove(c, a, c.owner); }},
      {"mute member", [&](const Cast& c, uint64_t a) { return Mute(c, a, c.member2); }},
      {"mute admin", [&](const Cast& c, uint64_t a) { return Mute(c, a, c.admin2); }},
      {"mute owner", [&](const Cast& c, uint64_t a) { return Mute(c, a, c.owner); }},
      {"appoint admin",
       [&](const Cast& c, uint64_t a) { return SetRole(c, a, c.member2, v1::MEMBER_ROLE_ADMIN); }},
      {"dismiss admin",
       [&](const Cast& c, uint64_t a) { return SetRole(c, a, c.admin2, v1::MEMBER_ROLE_MEMBER); }},
      {"transfer", [&](const Cast& c, uint64_t a) { return Transfer(c, a, c.member2); }},
      {"dissolve", [&](const Cast& c, uint64_t a) { return Dissolve(c, a); }},
      {"update info", [&](const Cast& c, uint64_t a) { return Update(c, a); }},
      {"decide join", [&](const Cast& c, uint64_t a) { return Decide(c, a); }},
      {"invite", [&](const Cast& c, uint64_t a) { return Invite(c, a); }},
  };
  // Expected outcome for owner, admin, member, outsider.
  const std::map<std::string, std::array<std::string, 4>> expected = {
      {"remove member", {"OK", "OK", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"remove admin", {"OK", "TARGET_OUTRANKS_ACTOR", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"remove owner",
       {"TARGET_OUTRANKS_ACTOR", "TARGET_OUTRANKS_ACTOR", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"mute member", {"OK", "OK", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"mute admin", {"OK", "TARGET_OUTRANKS_ACTOR", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"mute owner",
       {"TARGET_OUTRANKS_ACTOR", "TARGET_OUTRANKS_ACTOR", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"appoint admin", {"OK", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER"}},
      {"dismiss admin", {"OK", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER"}},
      {"transfer", {"OK", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER"}},
      {"dissolve", {"OK", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER", "NOT_GROUP_OWNER"}},
      {"update info", {"OK", "OK", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"decide join", {"OK", "OK", "NOT_GROUP_ADMIN", "NOT_GROUP_ADMIN"}},
      {"invite", {"OK", "OK", "NOT_GROUP_ADMIN", "NOT_GROUP_MEMBER"}},
  };
  for (const auto& [name, action] : actions) {
    int column = 0;
    for (Actor a : {Actor::kOwner, Actor::kAdmin, Actor::kMember, Actor::kOutsider}) {
      Cast c = NewCast();
      EXPECT_EQ(Outcome(action(c, Who(c, a))), expected.at(name)[column])
          << name << " by actor #" << column;
      ++column;
    }
  }
}

TEST_F(GroupsRolesTest, MuteIsTimedAndProjected) {
  Cast c = NewCast();
  ASSERT_TRUE(Mute(c, c.admin, c.member).ok());
  auto muted =
      redis_->Command({"HGET", projection::GroupMutesKey(c.group_id), absl::StrCat(c.member)});
  ASSERT_TRUE(muted.ok());
  EXPECT_EQ(muted->str(), absl::StrCat(absl::ToUnixSeconds(clock_.Now() + absl::Hours(1))));
  v1::MuteMemberRequest q;
  q.set_request_id(Rid());
  q.set_actor_account_id(c.owner);
  q.set_group_id(c.group_id);
  q.set_member_account_id(c.member);
  q.mutable_duration()->set_seconds(31LL * 24 * 3600);
  EXPECT_EQ(ErrorReason(logic_->MuteMember(Platform("Mute"), q).status()), "MUTE_TOO_LONG");
  q.mutable_duration()->set_seconds(0);
  auto unmuted = logic_->MuteMember(Platform("Mute"), q);
  ASSERT_TRUE(unmuted.ok()) << unmuted.status();
  EXPECT_FALSE(unmuted->member().has_muted_until());
}

TEST_F(GroupsRolesTest, UpdateInfoIsScreenedAndFailsClosed) {
  Cast c = NewCast();
  EXPECT_EQ(ErrorReason(Update(c, c.admin, "this is blocked")), "CONTENT_BLOCKED");
  EXPECT_EQ(ErrorReason(Update(c, c.admin, "this is held")), "CONTENT_HELD");
  screener_.down = true;
  EXPECT_EQ(Update(c, c.admin, "fine").code(), absl::StatusCode::kUnavailable);
  screener_.down = false;
  EXPECT_TRUE(Update(c, c.admin, "fine").ok());
}

TEST_F(GroupsRolesTest, AdminPowersSuspendedWithTheCreditEntitlement) {
  Cast c = NewCast();
  ASSERT_TRUE(
      redis_->Command({"HSET", projection::AccountCreditKey(c.admin), "may_be_admin", "0"}).ok());
  EXPECT_EQ(ErrorReason(Mute(c, c.admin, c.member)), "ADMIN_RIGHTS_SUSPENDED");
  EXPECT_EQ(ErrorReason(Remove(c, c.admin, c.member)), "ADMIN_RIGHTS_SUSPENDED");
  EXPECT_EQ(ErrorReason(Decide(c, c.admin)), "ADMIN_RIGHTS_SUSPENDED");
  EXPECT_EQ(ErrorReason(Update(c, c.admin)), "ADMIN_RIGHTS_SUSPENDED");
  EXPECT_TRUE(Mute(c, c.owner, c.member).ok());
  // Appointing needs the entitlement too.
  ASSERT_TRUE(
      redis_->Command({"HSET", projection::AccountCreditKey(c.member2), "may_be_admin", "0"}).ok());
  EXPECT_EQ(ErrorReason(SetRole(c, c.owner, c.member2, v1::MEMBER_ROLE_ADMIN)),
            "ADMIN_NOT_ENTITLED");
}

TEST_F(GroupsRolesTest, TransferMakesOldOwnerAdmin) {
  Cast c = NewCast();
  ASSERT_TRUE(Transfer(c, c.owner, c.member).ok());
  EXPECT_EQ(Read(c.group_id).owner_account_id(), c.member);
  v1::ListMembersRequest q;
  q.set_group_id(c.group_id);
  q.set_actor_account_id(c.outsider);
  EXPECT_EQ(ErrorReason(logic_->ListMembers(Platform("ListMembers"), q).status()),
            "NOT_GROUP_MEMBER");
  q.set_actor_account_id(c.owner);
  auto members = logic_->ListMembers(Platform("ListMembers"), q);
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->members_size(), 5);
  EXPECT_EQ(members->members(0).account_id(), c.member);
  EXPECT_EQ(members->members(0).role(), v1::MEMBER_ROLE_OWNER);
  int admins = 0;
  for (const auto& m : members->members()) admins += m.role() == v1::MEMBER_ROLE_ADMIN ? 1 : 0;
  EXPECT_EQ(admins, 3);
}

}  // namespace
}  // namespace qunzu::groups
