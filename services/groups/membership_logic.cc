// Joining, leaving and in-group powers (R8.1, R8.3, R8.7, R9.1).
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "common/log.h"
#include "services/groups/groups_logic.h"
#include "services/groups/logic_util.h"

namespace qunzu::groups {

using internal::Audit;
using internal::Mutate;

absl::StatusOr<v1::Member> GroupsLogic::Admit(sql::Connection& conn, const RequestContext& ctx,
                                              const std::string& request_id, v1::Group& group,
                                              uint64_t account, const AccountView& view,
                                              v1::JoinMethod method, uint64_t admitted_by) {
  RETURN_IF_ERROR(internal::RequireNotBlacklisted(view));
  RETURN_IF_ERROR(internal::RequireGroupNotBlacklisted(accounts_, group.group_id()));
  ASSIGN_OR_RETURN(std::optional<v1::Member> existing, ReadMember(conn, group.group_id(), account));
  if (existing) {
    return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_MEMBER",
                     "the account is already a member of the group");
  }
  if (group.member_count() >= group.member_cap()) {
    return MakeError(absl::StatusCode::kResourceExhausted, "GROUP_MEMBER_CAP_REACHED",
                     absl::StrCat("the group is full (", group.member_cap(), " members)"),
                     {{"cap", absl::StrCat(group.member_cap())}});
  }
  RETURN_IF_ERROR(LockAccount(conn, account));
  ASSIGN_OR_RETURN(uint32_t joined, CountJoined(conn, account));
  if (joined >= view.groups_may_join) {
    return MakeError(absl::StatusCode::kResourceExhausted, "GROUPS_JOINED_CAP_REACHED",
                     absl::StrCat("the account may join ", view.groups_may_join, " groups"),
                     {{"cap", absl::StrCat(view.groups_may_join)}});
  }
  const absl::Time now = clock_.Now();
  v1::Member m;
  m.set_group_id(group.group_id());
  m.set_account_id(account);
  m.set_role(v1::MEMBER_ROLE_MEMBER);
  m.set_join_method(method);
  m.set_admitted_by_account_id(admitted_by);
  *m.mutable_joined_at() = ToProtoTime(now);
  RETURN_IF_ERROR(InsertMember(conn, m));
  group.set_member_count(group.member_count() + 1);
  Touch(group, now);
  RETURN_IF_ERROR(UpdateGroup(conn, group));
  RETURN_IF_ERROR(Audit(conn, ctx, "group.member_join", request_id,
                        admitted_by != 0 ? admitted_by : account, group.group_id(), account,
                        {{"method", v1::JoinMethod_Name(method)}}));
  return m;
}

absl::StatusOr<v1::JoinGroupResponse> GroupsLogic::JoinGroup(const RequestContext& ctx,
                                                             const v1::JoinGroupRequest& request) {
  const uint64_t actor = request.actor_account_id();
  ASSIGN_OR_RETURN(AccountView view, accounts_.Read(actor));
  if (!view.verified) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ACCOUNT_NOT_VERIFIED",
                     "the account has not verified its real name");
  }
  RETURN_IF_ERROR(internal::RequireNotBlacklisted(view));
  RETURN_IF_ERROR(internal::RequireAgreementsAccepted(view));
  RETURN_IF_ERROR(internal::RequireGroupNotBlacklisted(accounts_, request.group_id()));
  const absl::Time now = clock_.Now();
  v1::Group group_after;
  ASSIGN_OR_RETURN(
      v1::JoinGroupResponse response,
      Mutate<v1::JoinGroupResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::JoinGroupResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            v1::JoinGroupResponse out;
            v1::JoinMethod method = v1::JOIN_METHOD_OPEN;
            uint64_t admitted_by = 0;
            if (request.invitation_id() != 0) {
              ASSIGN_OR_RETURN(std::optional<v1::Invitation> inv,
                               ReadInvitation(conn, request.invitation_id()));
              if (!inv || inv->group_id() != g.group_id() || inv->invitee_account_id() != actor ||
                  FromProtoTime(inv->expires_at()) <= now) {
                return MakeError(absl::StatusCode::kFailedPrecondition, "INVITATION_INVALID",
                                 "no valid invitation with this id for this account and group");
              }
              RETURN_IF_ERROR(MarkInvitationUsed(conn, inv->invitation_id()));
              method = v1::JOIN_METHOD_INVITED;
              admitted_by = inv->inviter_account_id();
            } else if (g.join_policy() == v1::JOIN_POLICY_INVITE_ONLY) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "INVITATION_REQUIRED",
                               "the group admits by invitation only");
            } else if (g.join_policy() == v1::JOIN_POLICY_QUESTION) {
              if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(request.answer()),
                                          absl::StripAsciiWhitespace(g.join_answer()))) {
                return MakeError(absl::StatusCode::kFailedPrecondition, "JOIN_ANSWER_INCORRECT",
                                 "the answer to the group's question is not correct");
              }
              method = v1::JOIN_METHOD_ANSWERED;
            } else if (g.join_policy() == v1::JOIN_POLICY_APPROVAL) {
              ASSIGN_OR_RETURN(std::optional<v1::Member> existing,
                               ReadMember(conn, g.group_id(), actor));
              if (existing) {
                return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_MEMBER",
                                 "the account is already a member of the group");
              }
              ASSIGN_OR_RETURN(bool pending, HasPendingJoinRequest(conn, g.group_id(), actor, now));
              if (pending) {
                return MakeError(absl::StatusCode::kAlreadyExists, "JOIN_REQUEST_PENDING",
                                 "a join request of this account is already pending");
              }
              v1::JoinRequest jr;
              jr.set_group_id(g.group_id());
              jr.set_applicant_account_id(actor);
              jr.set_message(request.message());
              jr.set_state(v1::JOIN_REQUEST_STATE_PENDING);
              *jr.mutable_created_at() = ToProtoTime(now);
              *jr.mutable_expires_at() = ToProtoTime(now + policy_.invitation_ttl());
              ASSIGN_OR_RETURN(jr, InsertJoinRequest(conn, std::move(jr)));
              RETURN_IF_ERROR(Audit(conn, ctx, "group.join_request", request.request_id(), actor,
                                    g.group_id(), 0,
                                    {{"join_request_id", absl::StrCat(jr.join_request_id())}}));
              out.set_outcome(v1::JOIN_OUTCOME_PENDING_APPROVAL);
              *out.mutable_join_request() = std::move(jr);
              return out;
            }
            ASSIGN_OR_RETURN(v1::Member m, Admit(conn, ctx, request.request_id(), g, actor, view,
                                                 method, admitted_by));
            out.set_outcome(v1::JOIN_OUTCOME_JOINED);
            *out.mutable_member() = std::move(m);
            group_after = g;
            return out;
          }));
  if (response.has_member() && group_after.group_id() != 0) {
    PublishAfterCommit(group_after, &response.member());
  }
  return response;
}

absl::StatusOr<v1::DecideJoinRequestResponse> GroupsLogic::DecideJoinRequest(
    const RequestContext& ctx, const v1::DecideJoinRequestRequest& request) {
  const uint64_t actor = request.actor_account_id();
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(AccountView actor_view, accounts_.Read(actor));
  v1::Group group_after;
  ASSIGN_OR_RETURN(
      v1::DecideJoinRequestResponse response,
      Mutate<v1::DecideJoinRequestResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::DecideJoinRequestResponse> {
            ASSIGN_OR_RETURN(v1::JoinRequest jr,
                             ReadJoinRequest(conn, request.join_request_id(), false));
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, jr.group_id(), true));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireAdmin(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireAdminRights(me, actor_view));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            ASSIGN_OR_RETURN(jr, ReadJoinRequest(conn, request.join_request_id(), true));
            if (jr.state() != v1::JOIN_REQUEST_STATE_PENDING ||
                FromProtoTime(jr.expires_at()) <= now) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "JOIN_REQUEST_NOT_PENDING",
                               "the join request was already decided or has expired");
            }
            v1::DecideJoinRequestResponse out;
            if (request.approve()) {
              ASSIGN_OR_RETURN(AccountView view, accounts_.Read(jr.applicant_account_id()));
              ASSIGN_OR_RETURN(v1::Member m,
                               Admit(conn, ctx, request.request_id(), g, jr.applicant_account_id(),
                                     view, v1::JOIN_METHOD_APPROVED, actor));
              *out.mutable_member() = std::move(m);
              group_after = g;
            }
            jr.set_state(request.approve() ? v1::JOIN_REQUEST_STATE_APPROVED
                                           : v1::JOIN_REQUEST_STATE_REJECTED);
            jr.set_decided_by_account_id(actor);
            jr.set_decision_reason(request.reason());
            *jr.mutable_decided_at() = ToProtoTime(now);
            RETURN_IF_ERROR(UpdateJoinRequest(conn, jr));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.join_decide", request.request_id(), actor,
                                  g.group_id(), jr.applicant_account_id(),
                                  {{"approve", request.approve() ? "true" : "false"}}));
            *out.mutable_join_request() = std::move(jr);
            return out;
          }));
  if (response.has_member() && group_after.group_id() != 0) {
    PublishAfterCommit(group_after, &response.member());
  }
  return response;
}

absl::StatusOr<v1::InviteMemberResponse> GroupsLogic::InviteMember(
    const RequestContext& ctx, const v1::InviteMemberRequest& request) {
  const uint64_t actor = request.actor_account_id();
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(internal::RequireGroupNotBlacklisted(accounts_, request.group_id()));
  return Mutate<v1::InviteMemberResponse>(
      mysql_, ctx, request, [&](sql::Connection& conn) -> absl::StatusOr<v1::InviteMemberResponse> {
        ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), false));
        ASSIGN_OR_RETURN(v1::Member me,
                         internal::RequireMember(conn, g.group_id(), actor, "NOT_GROUP_MEMBER"));
        if (me.role() == v1::MEMBER_ROLE_MEMBER && g.join_policy() != v1::JOIN_POLICY_OPEN) {
          return MakeError(absl::StatusCode::kPermissionDenied, "NOT_GROUP_ADMIN",
                           "only the owner or an admin may invite to this group");
        }
        RETURN_IF_ERROR(internal::RequireOpen(g));
        ASSIGN_OR_RETURN(std::optional<v1::Member> existing,
                         ReadMember(conn, g.group_id(), request.invitee_account_id()));
        if (existing) {
          return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_MEMBER",
                           "the invitee is already a member of the group");
        }
        v1::Invitation inv;
        inv.set_group_id(g.group_id());
        inv.set_inviter_account_id(actor);
        inv.set_invitee_account_id(request.invitee_account_id());
        *inv.mutable_created_at() = ToProtoTime(now);
        *inv.mutable_expires_at() = ToProtoTime(now + policy_.invitation_ttl());
        ASSIGN_OR_RETURN(inv, InsertInvitation(conn, std::move(inv)));
        RETURN_IF_ERROR(Audit(conn, ctx, "group.invite", request.request_id(), actor, g.group_id(),
                              request.invitee_account_id()));
        v1::InviteMemberResponse out;
        *out.mutable_invitation() = std::move(inv);
        return out;
      });
}

absl::StatusOr<v1::LeaveGroupResponse> GroupsLogic::LeaveGroup(
    const RequestContext& ctx, const v1::LeaveGroupRequest& request) {
  const uint64_t actor = request.actor_account_id();
  v1::Group group_after;
  ASSIGN_OR_RETURN(
      v1::LeaveGroupResponse response,
      Mutate<v1::LeaveGroupResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::LeaveGroupResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            ASSIGN_OR_RETURN(std::optional<v1::Member> me, ReadMember(conn, g.group_id(), actor));
            if (!me) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_GROUP_MEMBER",
                               "the account is not a member of the group");
            }
            if (me->role() == v1::MEMBER_ROLE_OWNER) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "OWNER_CANNOT_LEAVE",
                               "the owner must transfer ownership or dissolve the group first");
            }
            RETURN_IF_ERROR(DeleteMember(conn, g.group_id(), actor));
            g.set_member_count(g.member_count() - 1);
            Touch(g, clock_.Now());
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(
                Audit(conn, ctx, "group.member_leave", request.request_id(), actor, g.group_id()));
            group_after = g;
            v1::LeaveGroupResponse out;
            out.set_member_count(g.member_count());
            return out;
          }));
  if (group_after.group_id() != 0) {
    PublishAfterCommit(group_after, nullptr);
    (void)projection_.RemoveMember(group_after.group_id(), actor);
  }
  return response;
}

absl::StatusOr<v1::RemoveMemberResponse> GroupsLogic::RemoveMember(
    const RequestContext& ctx, const v1::RemoveMemberRequest& request) {
  const uint64_t actor = request.actor_account_id();
  ASSIGN_OR_RETURN(AccountView actor_view, accounts_.Read(actor));
  v1::Group group_after;
  ASSIGN_OR_RETURN(
      v1::RemoveMemberResponse response,
      Mutate<v1::RemoveMemberResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::RemoveMemberResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireAdmin(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireAdminRights(me, actor_view));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            RETURN_IF_ERROR(
                internal::RequireOutranked(conn, me, request.member_account_id()).status());
            RETURN_IF_ERROR(DeleteMember(conn, g.group_id(), request.member_account_id()));
            g.set_member_count(g.member_count() - 1);
            Touch(g, clock_.Now());
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.member_remove", request.request_id(), actor,
                                  g.group_id(), request.member_account_id(),
                                  {{"reason", request.reason()}}));
            group_after = g;
            v1::RemoveMemberResponse out;
            out.set_member_count(g.member_count());
            return out;
          }));
  if (group_after.group_id() != 0) {
    PublishAfterCommit(group_after, nullptr);
    (void)projection_.RemoveMember(group_after.group_id(), request.member_account_id());
  }
  return response;
}

absl::StatusOr<v1::MuteMemberResponse> GroupsLogic::MuteMember(
    const RequestContext& ctx, const v1::MuteMemberRequest& request) {
  const uint64_t actor = request.actor_account_id();
  const absl::Duration duration = absl::Seconds(request.duration().seconds());
  if (duration > policy_.max_mute()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "MUTE_TOO_LONG",
                     "the mute is longer than the policy allows", {{"field", "duration"}});
  }
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(AccountView actor_view, accounts_.Read(actor));
  ASSIGN_OR_RETURN(
      v1::MuteMemberResponse response,
      Mutate<v1::MuteMemberResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::MuteMemberResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireAdmin(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireAdminRights(me, actor_view));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            ASSIGN_OR_RETURN(v1::Member target,
                             internal::RequireOutranked(conn, me, request.member_account_id()));
            if (duration <= absl::ZeroDuration()) {
              target.clear_muted_until();
            } else {
              *target.mutable_muted_until() = ToProtoTime(now + duration);
            }
            RETURN_IF_ERROR(UpdateMember(conn, target));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.member_mute", request.request_id(), actor,
                                  g.group_id(), target.account_id(),
                                  {{"seconds", absl::StrCat(request.duration().seconds())},
                                   {"reason", request.reason()}}));
            v1::MuteMemberResponse out;
            *out.mutable_member() = std::move(target);
            return out;
          }));
  if (absl::Status s = projection_.PublishMember(response.member()); !s.ok()) {
    LogWarning("groups_projection_write_failed", {{"error", std::string(s.message())}});
  }
  return response;
}

}  // namespace qunzu::groups
