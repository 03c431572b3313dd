// Owner-only powers and listings (R2.1, R8.8, R9.1).
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/log.h"
#include "services/groups/groups_logic.h"
#include "services/groups/logic_util.h"

namespace qunzu::groups {

using internal::Audit;
using internal::Mutate;

absl::StatusOr<v1::SetMemberRoleResponse> GroupsLogic::SetMemberRole(
    const RequestContext& ctx, const v1::SetMemberRoleRequest& request) {
  const uint64_t actor = request.actor_account_id();
  std::optional<AccountView> target_view;
  if (request.role() == v1::MEMBER_ROLE_ADMIN) {
    ASSIGN_OR_RETURN(target_view, accounts_.Read(request.member_account_id()));
  }
  ASSIGN_OR_RETURN(
      v1::SetMemberRoleResponse response,
      Mutate<v1::SetMemberRoleResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::SetMemberRoleResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireOwner(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            ASSIGN_OR_RETURN(v1::Member target,
                             internal::RequireOutranked(conn, me, request.member_account_id()));
            if (target.role() == request.role()) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "ROLE_UNCHANGED",
                               "the member already has this role");
            }
            if (request.role() == v1::MEMBER_ROLE_ADMIN) {
              if (!target_view->may_be_admin || target_view->admin_suspended ||
                  target_view->blacklisted) {
                return MakeError(absl::StatusCode::kFailedPrecondition, "ADMIN_NOT_ENTITLED",
                                 "the member's credit does not allow being an admin");
              }
              ASSIGN_OR_RETURN(uint32_t admins, CountAdmins(conn, g.group_id()));
              if (admins >= policy_.Tier(g.scale_tier()).max_admins()) {
                return MakeError(absl::StatusCode::kResourceExhausted, "GROUP_ADMIN_CAP_REACHED",
                                 "the group has as many admins as its tier allows");
              }
            }
            target.set_role(request.role());
            RETURN_IF_ERROR(UpdateMember(conn, target));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.member_role", request.request_id(), actor,
                                  g.group_id(), target.account_id(),
                                  {{"role", v1::MemberRole_Name(request.role())}}));
            v1::SetMemberRoleResponse out;
            *out.mutable_member() = std::move(target);
            return out;
          }));
  (void)projection_.PublishMember(response.member());
  return response;
}

absl::StatusOr<v1::TransferOwnershipResponse> GroupsLogic::TransferOwnership(
    const RequestContext& ctx, const v1::TransferOwnershipRequest& request) {
  const uint64_t actor = request.actor_account_id();
  const uint64_t heir = request.new_owner_account_id();
  ASSIGN_OR_RETURN(AccountView view, accounts_.Read(heir));
  RETURN_IF_ERROR(internal::RequireNotBlacklisted(view));
  v1::Member heir_member;
  ASSIGN_OR_RETURN(
      v1::TransferOwnershipResponse response,
      Mutate<v1::TransferOwnershipResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::TransferOwnershipResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireOwner(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            ASSIGN_OR_RETURN(v1::Member target, internal::RequireOutranked(conn, me, heir));
            const v1::TierRule& rule = policy_.Tier(g.scale_tier());
            if (!view.verified) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "ACCOUNT_NOT_VERIFIED",
                               "the new owner has not verified its real name");
            }
            if (view.level < rule.min_owner_credit_level() ||
                view.max_create_tier < static_cast<int>(g.scale_tier())) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "CREDIT_LEVEL_TOO_LOW",
                               "the new owner's credit does not allow owning this group");
            }
            RETURN_IF_ERROR(LockAccount(conn, heir));
            ASSIGN_OR_RETURN(uint32_t created, CountCreated(conn, heir));
            if (created >= view.groups_may_create) {
              return MakeError(absl::StatusCode::kResourceExhausted, "GROUPS_CREATED_CAP_REACHED",
                               "the new owner owns as many groups as allowed");
            }
            target.set_role(v1::MEMBER_ROLE_OWNER);
            me.set_role(v1::MEMBER_ROLE_ADMIN);
            RETURN_IF_ERROR(UpdateMember(conn, target));
            RETURN_IF_ERROR(UpdateMember(conn, me));
            g.set_owner_account_id(heir);
            Touch(g, clock_.Now());
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.transfer_ownership", request.request_id(),
                                  actor, g.group_id(), heir));
            heir_member = target;
            v1::TransferOwnershipResponse out;
            *out.mutable_group() = std::move(g);
            *out.mutable_previous_owner() = std::move(me);
            return out;
          }));
  PublishAfterCommit(response.group(), &response.previous_owner());
  if (heir_member.account_id() != 0) (void)projection_.PublishMember(heir_member);
  return response;
}

absl::StatusOr<v1::DissolveGroupResponse> GroupsLogic::DissolveGroup(
    const RequestContext& ctx, const v1::DissolveGroupRequest& request) {
  const uint64_t actor = request.actor_account_id();
  ASSIGN_OR_RETURN(
      v1::DissolveGroupResponse response,
      Mutate<v1::DissolveGroupResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::DissolveGroupResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            RETURN_IF_ERROR(internal::RequireOwner(conn, g.group_id(), actor).status());
            RETURN_IF_ERROR(internal::RequireOpen(g));
            RETURN_IF_ERROR(DeleteAllMembers(conn, g.group_id()));
            g.set_member_count(0);
            g.set_state(v1::GROUP_STATE_DISSOLVED);
            g.set_state_reason(request.reason());
            Touch(g, clock_.Now());
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.dissolve", request.request_id(), actor,
                                  g.group_id(), 0, {{"reason", request.reason()}}));
            v1::DissolveGroupResponse out;
            *out.mutable_group() = std::move(g);
            return out;
          }));
  PublishAfterCommit(response.group(), nullptr);
  (void)projection_.ReplaceMembers(response.group().group_id(), {});
  return response;
}

absl::StatusOr<v1::ListMembersResponse> GroupsLogic::ListMembers(
    const RequestContext& ctx, const v1::ListMembersRequest& request) {
  uint64_t offset = 0;
  if (!request.page().page_token().empty() &&
      !absl::SimpleAtoi(request.page().page_token(), &offset)) {
    return InvalidField("page.page_token", "is not a token this RPC returned");
  }
  const int size = request.page().page_size() == 0 ? 50 : request.page().page_size();
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  RETURN_IF_ERROR(ReadGroup(*conn, request.group_id(), false).status());
  if (ctx.caller.role == common::v1::ROLE_PLATFORM) {
    RETURN_IF_ERROR(internal::RequireMember(*conn, request.group_id(), request.actor_account_id(),
                                            "NOT_GROUP_MEMBER")
                        .status());
  }
  ASSIGN_OR_RETURN(
      std::vector<v1::Member> members,
      groups::ListMembers(*conn, request.group_id(), request.role(), offset, size + 1));
  v1::ListMembersResponse response;
  for (size_t i = 0; i < members.size() && static_cast<int>(i) < size; ++i) {
    *response.add_members() = members[i];
  }
  if (static_cast<int>(members.size()) > size) {
    response.mutable_page()->set_next_page_token(absl::StrCat(offset + size));
  }
  return response;
}

}  // namespace qunzu::groups
