// Read-side RPCs: an account's groups with its cap counts (R8.2, R8.3),
// join requests, the management tier (R7.1), the filing document (R7.2)
// and the public info page (R8.5).
#include <google/protobuf/util/json_util.h>
#include <openssl/sha.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/groups/groups_logic.h"
#include "services/groups/logic_util.h"

namespace qunzu::groups {
namespace {

absl::StatusOr<uint64_t> AfterId(const common::v1::PageRequest& page) {
  uint64_t after = 0;
  if (!page.page_token().empty() && !absl::SimpleAtoi(page.page_token(), &after)) {
    return InvalidField("page.page_token", "is not a token this RPC returned");
  }
  return after;
}

int PageSize(const common::v1::PageRequest& page) {
  return page.page_size() == 0 ? 50 : page.page_size();
}

v1::ManagementTier TierOf(const GroupsPolicy& policy, common::v1::ScaleTier tier,
                          common::v1::GroupCategory category) {
  const v1::TierRule& rule = policy.Tier(tier);
  v1::ManagementTier out;
  const std::string scale = common::v1::ScaleTier_Name(tier).substr(strlen("SCALE_TIER_"));
  const bool sensitive = policy.CategoryNeedsReview(category);
  out.set_tier_id(sensitive ? scale + "_SENSITIVE" : scale);
  out.set_name(absl::StrCat(scale, sensitive ? " (sensitive category)" : ""));
  out.set_rank(static_cast<uint32_t>(tier) * 2 + (sensitive ? 1 : 0));
  out.set_member_cap(rule.member_cap());
  out.set_max_admins(rule.max_admins());
  out.set_min_owner_credit_level(rule.min_owner_credit_level());
  out.set_manual_creation_review(rule.manual_review() || sensitive);
  out.set_group_messages_per_minute(rule.group_messages_per_minute());
  for (const std::string& m : rule.measures()) out.add_measures(m);
  return out;
}

std::string Sha256(const std::string& data) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

std::string Markdown(const GroupsPolicy& policy) {
  const v1::GroupsPolicy& p = policy.proto();
  std::string md = absl::StrCat("# Group management tiers and caps\n\nPolicy version: `",
                                p.version(), "`\n\n## Scale tiers (R7.1, R8.1, R8.6)\n\n",
                                "| Tier | Member cap | Owner credit level | Manual review | "
                                "Max admins | Group messages/min | Measures |\n",
                                "|---|---|---|---|---|---|---|\n");
  for (const v1::TierRule& t : p.tiers()) {
    std::vector<std::string> measures(t.measures().begin(), t.measures().end());
    absl::StrAppend(&md, "| ", common::v1::ScaleTier_Name(t.scale_tier()), " | ", t.member_cap(),
                    " | ", t.min_owner_credit_level(), " | ", t.manual_review() ? "yes" : "no",
                    " | ", t.max_admins(), " | ", t.group_messages_per_minute(), " | ",
                    absl::StrJoin(measures, "; "), " |\n");
  }
  absl::StrAppend(&md, "\n## Qualification to create a group (R8.6)\n\n",
                  "- The creator's real name is verified.\n",
                  "- The creator's credit level is at least the tier's owner level, and the "
                  "credit entitlements allow the tier.\n",
                  "- Groups created (R8.2) and joined (R8.3) are capped by credit level "
                  "(credit policy).\n",
                  "- Categories always reviewed by a moderator:");
  for (int c : p.review_categories()) {
    absl::StrAppend(&md, " ",
                    common::v1::GroupCategory_Name(static_cast<common::v1::GroupCategory>(c)));
  }
  absl::StrAppend(
      &md, "\n\n## Other rules\n\n- Public information page from ", p.info_page_min_members(),
      " members (R8.5).\n- Longest mute: ", p.max_mute_hours(),
      " hours (R9.1).\n- Invitations and join requests expire after ", p.invitation_ttl_hours(),
      " hours (R8.7).\n- Activity window: ", p.activity_window_hours(), " hours; LOW from ",
      p.activity_low_messages(), ", MODERATE from ", p.activity_moderate_messages(), ", HIGH from ",
      p.activity_high_messages(), " messages (R7.1).\n");
  return md;
}

}  // namespace

absl::StatusOr<v1::ListGroupsOfAccountResponse> GroupsLogic::ListGroupsOfAccount(
    const RequestContext& ctx, const v1::ListGroupsOfAccountRequest& request) {
  if (ctx.caller.role == common::v1::ROLE_PLATFORM &&
      request.actor_account_id() != request.account_id()) {
    return MakeError(absl::StatusCode::kPermissionDenied, "NOT_OWN_ACCOUNT",
                     "the platform may list only the acting account's groups");
  }
  ASSIGN_OR_RETURN(uint64_t after, AfterId(request.page()));
  const int size = PageSize(request.page());
  v1::ListGroupsOfAccountResponse response;
  absl::StatusOr<AccountView> view = accounts_.Read(request.account_id());
  if (view.ok()) {
    response.set_created_cap(view->groups_may_create);
    response.set_joined_cap(view->groups_may_join);
  } else if (view.status().code() != absl::StatusCode::kNotFound) {
    return view.status();
  }
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(uint32_t created, CountCreated(*conn, request.account_id()));
  ASSIGN_OR_RETURN(uint32_t joined, CountJoined(*conn, request.account_id()));
  response.set_created_count(created);
  response.set_joined_count(joined);
  ASSIGN_OR_RETURN(std::vector<v1::Membership> list,
                   ListMemberships(*conn, request.account_id(), request.role(), after, size + 1));
  for (size_t i = 0; i < list.size() && static_cast<int>(i) < size; ++i) {
    if (ctx.caller.role == common::v1::ROLE_PLATFORM && list[i].role() == v1::MEMBER_ROLE_MEMBER) {
      list[i].mutable_group()->clear_join_answer();
    }
    *response.add_memberships() = list[i];
  }
  if (static_cast<int>(list.size()) > size) {
    response.mutable_page()->set_next_page_token(absl::StrCat(list[size - 1].group().group_id()));
  }
  return response;
}

absl::StatusOr<v1::ListJoinRequestsResponse> GroupsLogic::ListJoinRequests(
    const RequestContext& ctx, const v1::ListJoinRequestsRequest& request) {
  ASSIGN_OR_RETURN(uint64_t after, AfterId(request.page()));
  const int size = PageSize(request.page());
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  if (request.group_id() != 0) {
    RETURN_IF_ERROR(ReadGroup(*conn, request.group_id(), false).status());
    if (ctx.caller.role == common::v1::ROLE_PLATFORM) {
      RETURN_IF_ERROR(
          internal::RequireAdmin(*conn, request.group_id(), request.actor_account_id()).status());
    }
  }
  const v1::JoinRequestState state = request.state() == v1::JOIN_REQUEST_STATE_UNSPECIFIED
                                         ? v1::JOIN_REQUEST_STATE_PENDING
                                         : request.state();
  ASSIGN_OR_RETURN(std::vector<v1::JoinRequest> list,
                   groups::ListJoinRequests(*conn, request.group_id(), request.actor_account_id(),
                                            state, after, size + 1));
  v1::ListJoinRequestsResponse response;
  for (size_t i = 0; i < list.size() && static_cast<int>(i) < size; ++i) {
    *response.add_join_requests() = list[i];
  }
  if (static_cast<int>(list.size()) > size) {
    response.mutable_page()->set_next_page_token(absl::StrCat(list[size - 1].join_request_id()));
  }
  return response;
}

absl::StatusOr<v1::GetManagementTierResponse> GroupsLogic::GetManagementTier(
    const v1::GetManagementTierRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(v1::Group g, ReadGroup(*conn, request.group_id(), false));
  ASSIGN_OR_RETURN(uint64_t messages, projection_.ActivityCount(g.group_id(), clock_.Now(),
                                                                policy_.activity_window()));
  v1::GetManagementTierResponse response;
  response.set_group_id(g.group_id());
  *response.mutable_tier() = TierOf(policy_, g.scale_tier(), g.category());
  response.set_category(g.category());
  response.set_scale_tier(g.scale_tier());
  response.set_activity_level(policy_.ActivityFor(messages));
  response.set_activity_message_count(messages);
  response.mutable_activity_window()->set_seconds(absl::ToInt64Seconds(policy_.activity_window()));
  response.add_reasons(absl::StrCat("scale tier ", common::v1::ScaleTier_Name(g.scale_tier()),
                                    ": up to ", response.tier().member_cap(), " members"));
  response.add_reasons(absl::StrCat(
      "category ", common::v1::GroupCategory_Name(g.category()),
      policy_.CategoryNeedsReview(g.category()) ? ": sensitive, manual review" : ": ordinary"));
  response.add_reasons(absl::StrCat(messages, " messages in the last ",
                                    policy_.proto().activity_window_hours(),
                                    " hours: ", v1::ActivityLevel_Name(response.activity_level())));
  response.set_policy_version(policy_.proto().version());
  return response;
}

absl::StatusOr<v1::ExportFilingDocumentResponse> GroupsLogic::ExportFilingDocument(
    const v1::ExportFilingDocumentRequest& request) {
  v1::ExportFilingDocumentResponse response;
  response.set_format(request.format());
  if (request.format() == v1::DOCUMENT_FORMAT_JSON) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(policy_.proto(), &json, options).ok()) {
      return MakeError(absl::StatusCode::kInternal, "EXPORT_FAILED", "cannot render the policy");
    }
    response.set_content(json);
  } else {
    response.set_content(Markdown(policy_));
  }
  response.set_content_sha256(Sha256(response.content()));
  response.set_policy_version(policy_.proto().version());
  *response.mutable_generated_at() = ToProtoTime(clock_.Now());
  return response;
}

absl::StatusOr<v1::GetGroupInfoPageResponse> GroupsLogic::GetGroupInfoPage(
    const v1::GetGroupInfoPageRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease conn, mysql_.Acquire(absl::Seconds(5)));
  absl::StatusOr<v1::Group> group = request.key_case() == v1::GetGroupInfoPageRequest::kCode
                                        ? ReadGroupByCode(*conn, request.code())
                                        : ReadGroup(*conn, request.group_id(), false);
  RETURN_IF_ERROR(group.status());
  if ((!internal::IsLive(group->state()) && group->state() != v1::GROUP_STATE_CLOSED) ||
      group->member_count() < policy_.proto().info_page_min_members()) {
    return MakeError(
        absl::StatusCode::kNotFound, "GROUP_INFO_PAGE_NOT_AVAILABLE",
        absl::StrCat("groups have an information page from ",
                     policy_.proto().info_page_min_members(), " members; this one has none"));
  }
  v1::GetGroupInfoPageResponse response;
  v1::GroupInfoPage* page = response.mutable_page();
  page->set_code(group->code());
  page->set_name(group->name());
  page->set_member_count(group->member_count());
  page->set_category(group->category());
  page->set_scale_tier(group->scale_tier());
  page->set_state(group->state());
  *page->mutable_created_at() = group->created_at();
  page->set_announcement(group->announcement());
  page->set_description(group->description());
  // The nickname comes from identity's projection; an account identity no
  // longer knows leaves it empty, an unreadable projection fails the call.
  absl::StatusOr<AccountView> owner = accounts_.Read(group->owner_account_id());
  if (owner.ok()) {
    page->set_owner_nickname(owner->nickname);
  } else if (owner.status().code() != absl::StatusCode::kNotFound) {
    return owner.status();
  }
  return response;
}

}  // namespace qunzu::groups
