#include "services/groups/groups_logic.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/log.h"
#include "services/groups/logic_util.h"

namespace qunzu::groups {
namespace {

using internal::Audit;
using internal::Mutate;

// The owner qualification for a tier and category (R8.6).
absl::Status Qualify(const AccountView& account, const v1::TierRule& rule,
                     common::v1::ScaleTier tier) {
  if (!account.verified) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "ACCOUNT_NOT_VERIFIED",
                     "the account has not verified its real name");
  }
  if (account.level < rule.min_owner_credit_level()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "CREDIT_LEVEL_TOO_LOW",
                     absl::StrCat("tier ", common::v1::ScaleTier_Name(tier), " needs credit level ",
                                  rule.min_owner_credit_level()));
  }
  if (account.max_create_tier < static_cast<int>(tier)) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "SCALE_TIER_NOT_ENTITLED",
                     "the account's credit does not allow a group of this tier");
  }
  return absl::OkStatus();
}

absl::Status ScreenField(TextScreener& screener, moderation::v1::TextPurpose purpose,
                         const std::string& field, const std::string& text, uint64_t actor,
                         uint64_t group_id, bool* held) {
  if (text.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(ScreenResult result, screener.Screen(purpose, text, actor, group_id));
  if (result.verdict == moderation::v1::SCREEN_VERDICT_BLOCK) {
    return MakeError(absl::StatusCode::kInvalidArgument, "CONTENT_BLOCKED",
                     field + " was refused by the content screen",
                     {{"field", field}, {"rule_id", absl::StrCat(result.rule_id)}});
  }
  if (result.verdict == moderation::v1::SCREEN_VERDICT_HOLD) *held = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::CreateGroupResponse> GroupsLogic::CreateGroup(
    const RequestContext& ctx, const v1::CreateGroupRequest& request) {
  const uint64_t actor = request.actor_account_id();
  ASSIGN_OR_RETURN(AccountView account, accounts_.Read(actor));
  RETURN_IF_ERROR(internal::RequireNotBlacklisted(account));
  if (account.creation_revoked) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "CREATION_REVOKED",
                     "the account's group-creation qualification is revoked");
  }
  const v1::TierRule& rule = policy_.Tier(request.scale_tier());
  RETURN_IF_ERROR(Qualify(account, rule, request.scale_tier()));
  RETURN_IF_ERROR(internal::RequireAgreementsAccepted(account));
  bool held = false;
  RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_NAME, "name",
                              request.name(), actor, 0, &held));
  RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_DESCRIPTION,
                              "description", request.description(), actor, 0, &held));
  RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_ANNOUNCEMENT,
                              "announcement", request.announcement(), actor, 0, &held));
  std::vector<std::string> reasons;
  if (rule.manual_review()) {
    reasons.push_back("scale tier " + common::v1::ScaleTier_Name(request.scale_tier()));
  }
  if (policy_.CategoryNeedsReview(request.category())) {
    reasons.push_back("category " + common::v1::GroupCategory_Name(request.category()));
  }
  if (held) reasons.emplace_back("text held by the content screen");
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(
      v1::CreateGroupResponse response,
      Mutate<v1::CreateGroupResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::CreateGroupResponse> {
            RETURN_IF_ERROR(LockAccount(conn, actor));
            ASSIGN_OR_RETURN(uint32_t created, CountCreated(conn, actor));
            if (created >= account.groups_may_create) {
              return MakeError(absl::StatusCode::kResourceExhausted, "GROUPS_CREATED_CAP_REACHED",
                               absl::StrCat("the account may own ", account.groups_may_create,
                                            " groups and owns ", created),
                               {{"cap", absl::StrCat(account.groups_may_create)}});
            }
            v1::Group g;
            g.set_name(request.name());
            g.set_description(request.description());
            g.set_announcement(request.announcement());
            g.set_category(request.category());
            g.set_scale_tier(request.scale_tier());
            g.set_member_cap(rule.member_cap());
            g.set_member_count(1);
            g.set_join_policy(request.join_policy());
            g.set_join_question(request.join_question());
            g.set_join_answer(request.join_answer());
            g.set_state(reasons.empty() ? v1::GROUP_STATE_ACTIVE : v1::GROUP_STATE_PENDING_REVIEW);
            g.set_owner_account_id(actor);
            *g.mutable_created_at() = ToProtoTime(now);
            *g.mutable_updated_at() = ToProtoTime(now);
            ASSIGN_OR_RETURN(g, InsertGroup(conn, std::move(g)));
            v1::Member owner;
            owner.set_group_id(g.group_id());
            owner.set_account_id(actor);
            owner.set_role(v1::MEMBER_ROLE_OWNER);
            owner.set_join_method(v1::JOIN_METHOD_CREATED);
            *owner.mutable_joined_at() = ToProtoTime(now);
            RETURN_IF_ERROR(InsertMember(conn, owner));
            RETURN_IF_ERROR(Audit(conn, ctx, "group.create", request.request_id(), actor,
                                  g.group_id(), 0,
                                  {{"state", v1::GroupState_Name(g.state())},
                                   {"tier", common::v1::ScaleTier_Name(g.scale_tier())},
                                   {"category", common::v1::GroupCategory_Name(g.category())}}));
            v1::CreateGroupResponse out;
            *out.mutable_group() = std::move(g);
            out.set_review_required(!reasons.empty());
            for (const std::string& r : reasons) out.add_review_reasons(r);
            return out;
          }));
  v1::Member owner;
  owner.set_group_id(response.group().group_id());
  owner.set_account_id(actor);
  owner.set_role(v1::MEMBER_ROLE_OWNER);
  PublishAfterCommit(response.group(), &owner);
  return response;
}

void GroupsLogic::PublishAfterCommit(const v1::Group& group, const v1::Member* member) {
  absl::Status status = projection_.PublishGroup(group);
  if (status.ok() && member != nullptr) status = projection_.PublishMember(*member);
  if (!status.ok()) {
    LogWarning("groups_projection_write_failed",
               {{"group_id", group.group_id()}, {"error", std::string(status.message())}});
  }
}

absl::StatusOr<v1::ReviewGroupCreationResponse> GroupsLogic::ReviewGroupCreation(
    const RequestContext& ctx, const v1::ReviewGroupCreationRequest& request) {
  ASSIGN_OR_RETURN(
      v1::ReviewGroupCreationResponse response,
      Mutate<v1::ReviewGroupCreationResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::ReviewGroupCreationResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            if (g.state() != v1::GROUP_STATE_PENDING_REVIEW) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_NOT_PENDING_REVIEW",
                               "the group is not waiting for creation review");
            }
            const bool approve = request.decision() == v1::REVIEW_DECISION_APPROVE;
            g.set_state(approve ? v1::GROUP_STATE_ACTIVE : v1::GROUP_STATE_REJECTED);
            g.set_state_reason(request.reason());
            Touch(g, clock_.Now());
            if (!approve) {
              RETURN_IF_ERROR(DeleteAllMembers(conn, g.group_id()));
              g.set_member_count(0);
            }
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(Audit(conn, ctx, approve ? "group.approve" : "group.reject",
                                  request.request_id(), 0, g.group_id(), g.owner_account_id(),
                                  {{"reason", request.reason()}}));
            v1::ReviewGroupCreationResponse out;
            *out.mutable_group() = std::move(g);
            return out;
          }));
  PublishAfterCommit(response.group(), nullptr);
  if (response.group().state() == v1::GROUP_STATE_REJECTED) {
    (void)projection_.ReplaceMembers(response.group().group_id(), {});
  }
  return response;
}

absl::StatusOr<v1::SetGroupStateResponse> GroupsLogic::SetGroupState(
    const RequestContext& ctx, const v1::SetGroupStateRequest& request) {
  const absl::Time now = clock_.Now();
  ASSIGN_OR_RETURN(v1::SetGroupStateResponse response,
                   Mutate<v1::SetGroupStateResponse>(
                       mysql_, ctx, request,
                       [&](sql::Connection& conn) -> absl::StatusOr<v1::SetGroupStateResponse> {
                         ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
                         if (g.state() == v1::GROUP_STATE_DISSOLVED) {
                           return MakeError(absl::StatusCode::kFailedPrecondition,
                                            "GROUP_DISSOLVED", "the group was dissolved");
                         }
                         if (!internal::IsLive(g.state()) && g.state() != v1::GROUP_STATE_CLOSED) {
                           return MakeError(absl::StatusCode::kFailedPrecondition,
                                            "GROUP_NOT_ACTIVE",
                                            "pending or rejected groups cannot be disposed");
                         }
                         if (request.state() != v1::GROUP_STATE_ACTIVE &&
                             request.state() != v1::GROUP_STATE_CLOSED &&
                             FromProtoTime(request.until()) <= now) {
                           return MakeError(absl::StatusCode::kInvalidArgument, "UNTIL_IN_PAST",
                                            "until must be in the future", {{"field", "until"}});
                         }
                         g.set_state(request.state());
                         g.set_state_reason(request.reason());
                         g.set_disposition_id(request.disposition_id());
                         g.clear_rectify_by();
                         g.clear_posting_suspended_until();
                         if (request.state() == v1::GROUP_STATE_WARNED)
                           *g.mutable_rectify_by() = request.until();
                         if (request.state() == v1::GROUP_STATE_POSTING_SUSPENDED) {
                           *g.mutable_posting_suspended_until() = request.until();
                         }
                         Touch(g, now);
                         RETURN_IF_ERROR(UpdateGroup(conn, g));
                         RETURN_IF_ERROR(Audit(
                             conn, ctx, "group.set_state", request.request_id(), 0, g.group_id(), 0,
                             {{"state", v1::GroupState_Name(g.state())},
                              {"disposition_id", absl::StrCat(request.disposition_id())},
                              {"reason", request.reason()}}));
                         v1::SetGroupStateResponse out;
                         *out.mutable_group() = std::move(g);
                         return out;
                       }));
  PublishAfterCommit(response.group(), nullptr);
  return response;
}

absl::StatusOr<v1::UpdateGroupInfoResponse> GroupsLogic::UpdateGroupInfo(
    const RequestContext& ctx, const v1::UpdateGroupInfoRequest& request) {
  const uint64_t actor = request.actor_account_id();
  bool held = false;
  if (request.has_name()) {
    RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_NAME, "name",
                                request.name(), actor, request.group_id(), &held));
  }
  if (request.has_description()) {
    RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_DESCRIPTION,
                                "description", request.description(), actor, request.group_id(),
                                &held));
  }
  if (request.has_announcement()) {
    RETURN_IF_ERROR(ScreenField(screener_, moderation::v1::TEXT_PURPOSE_GROUP_ANNOUNCEMENT,
                                "announcement", request.announcement(), actor, request.group_id(),
                                &held));
  }
  if (held) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "CONTENT_HELD",
                     "the text was held for review; rephrase it");
  }
  ASSIGN_OR_RETURN(AccountView actor_view, accounts_.Read(actor));
  ASSIGN_OR_RETURN(
      v1::UpdateGroupInfoResponse response,
      Mutate<v1::UpdateGroupInfoResponse>(
          mysql_, ctx, request,
          [&](sql::Connection& conn) -> absl::StatusOr<v1::UpdateGroupInfoResponse> {
            ASSIGN_OR_RETURN(v1::Group g, ReadGroup(conn, request.group_id(), true));
            RETURN_IF_ERROR(internal::RequireOpen(g));
            ASSIGN_OR_RETURN(v1::Member me, internal::RequireAdmin(conn, g.group_id(), actor));
            RETURN_IF_ERROR(internal::RequireAdminRights(me, actor_view));
            if (request.has_name()) g.set_name(request.name());
            if (request.has_description()) g.set_description(request.description());
            if (request.has_announcement()) g.set_announcement(request.announcement());
            if (request.has_join_policy()) g.set_join_policy(request.join_policy());
            if (request.has_join_question()) g.set_join_question(request.join_question());
            if (request.has_join_answer()) g.set_join_answer(request.join_answer());
            if (g.join_policy() == v1::JOIN_POLICY_QUESTION &&
                (g.join_question().empty() || g.join_answer().empty())) {
              return InvalidField("join_question", "is required with the QUESTION policy");
            }
            Touch(g, clock_.Now());
            RETURN_IF_ERROR(UpdateGroup(conn, g));
            RETURN_IF_ERROR(
                Audit(conn, ctx, "group.update_info", request.request_id(), actor, g.group_id()));
            v1::UpdateGroupInfoResponse out;
            *out.mutable_group() = std::move(g);
            return out;
          }));
  PublishAfterCommit(response.group(), nullptr);
  return response;
}

absl::StatusOr<v1::GetGroupResponse> GroupsLogic::GetGroup(const RequestContext& ctx,
                                                           const v1::GetGroupRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  absl::StatusOr<v1::Group> group = request.key_case() == v1::GetGroupRequest::kCode
                                        ? ReadGroupByCode(*conn, request.code())
                                        : ReadGroup(*conn, request.group_id(), false);
  RETURN_IF_ERROR(group.status());
  v1::GetGroupResponse response;
  std::optional<v1::Member> me;
  if (request.actor_account_id() != 0) {
    ASSIGN_OR_RETURN(me, ReadMember(*conn, group->group_id(), request.actor_account_id()));
  }
  const bool staff = ctx.caller.role != common::v1::ROLE_PLATFORM;
  const bool admin = me && me->role() != v1::MEMBER_ROLE_MEMBER;
  if (!staff && !admin) group->clear_join_answer();
  if (me) *response.mutable_actor_membership() = *me;
  group->set_has_info_page(group->member_count() >= policy_.proto().info_page_min_members());
  *response.mutable_group() = *std::move(group);
  return response;
}

absl::StatusOr<v1::ListGroupsResponse> GroupsLogic::ListGroups(
    const v1::ListGroupsRequest& request) {
  uint64_t after = 0;
  if (!request.page().page_token().empty() &&
      !absl::SimpleAtoi(request.page().page_token(), &after)) {
    return InvalidField("page.page_token", "is not a token this RPC returned");
  }
  const int size = request.page().page_size() == 0 ? 50 : request.page().page_size();
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(std::vector<v1::Group> groups,
                   groups::ListGroups(*conn, request, after, size + 1));
  v1::ListGroupsResponse response;
  for (size_t i = 0; i < groups.size() && static_cast<int>(i) < size; ++i) {
    *response.add_groups() = groups[i];
  }
  if (static_cast<int>(groups.size()) > size) {
    response.mutable_page()->set_next_page_token(absl::StrCat(groups[size - 1].group_id()));
  }
  return response;
}

absl::Status GroupsLogic::RebuildProjection() {
  uint64_t after = 0;
  for (;;) {
    ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
    ASSIGN_OR_RETURN(std::vector<v1::Group> groups,
                     groups::ListGroups(*conn, v1::ListGroupsRequest(), after, 200));
    if (groups.empty()) return absl::OkStatus();
    for (const v1::Group& g : groups) {
      RETURN_IF_ERROR(projection_.PublishGroup(g));
      ASSIGN_OR_RETURN(
          std::vector<v1::Member> members,
          groups::ListMembers(*conn, g.group_id(), v1::MEMBER_ROLE_UNSPECIFIED, 0, 1000000));
      RETURN_IF_ERROR(projection_.ReplaceMembers(g.group_id(), members));
      after = g.group_id();
    }
  }
}

}  // namespace qunzu::groups
