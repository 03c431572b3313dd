#include "services/groups/groups_validation.h"

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/groups/group_code.h"

namespace qunzu::groups {
namespace {

// Code points of strict UTF-8, or -1 when invalid.
int CodePoints(const std::string& s) {
  int count = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (i + len > s.size()) return -1;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return -1;
    }
    i += len;
    ++count;
  }
  return count;
}

absl::Status Id(const char* field, uint64_t id) {
  return id == 0 ? InvalidField(field, "is required") : absl::OkStatus();
}

absl::Status Page(const common::v1::PageRequest& page) {
  if (page.page_size() < 0 || page.page_size() > 1000) {
    return InvalidField("page.page_size", "must be 0..1000");
  }
  return CheckText("page.page_token", page.page_token(), 0, 64);
}

absl::Status Policy(const char* field, int policy) {
  if (!v1::JoinPolicy_IsValid(policy) || policy == v1::JOIN_POLICY_UNSPECIFIED) {
    return InvalidField(field, "must be OPEN, APPROVAL, INVITE_ONLY or QUESTION");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckText(const std::string& field, const std::string& value, int min, int max) {
  const int n = CodePoints(value);
  if (n < 0) return InvalidField(field, "is not valid UTF-8");
  if (n < min || n > max) {
    return InvalidField(field, absl::StrCat("must be ", min, "..", max, " characters"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::CreateGroupRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(CheckText("name", r.name(), 1, 30));
  RETURN_IF_ERROR(CheckText("description", r.description(), 0, 500));
  RETURN_IF_ERROR(CheckText("announcement", r.announcement(), 0, 2000));
  if (!common::v1::GroupCategory_IsValid(r.category()) ||
      r.category() == common::v1::GROUP_CATEGORY_UNSPECIFIED) {
    return InvalidField("category", "must be a known category");
  }
  if (!common::v1::ScaleTier_IsValid(r.scale_tier()) ||
      r.scale_tier() == common::v1::SCALE_TIER_UNSPECIFIED) {
    return InvalidField("scale_tier", "must be SMALL, MEDIUM, LARGE or HUGE");
  }
  RETURN_IF_ERROR(Policy("join_policy", r.join_policy()));
  const bool question = r.join_policy() == v1::JOIN_POLICY_QUESTION;
  RETURN_IF_ERROR(
      CheckText("join_question", r.join_question(), question ? 1 : 0, question ? 200 : 0));
  return CheckText("join_answer", r.join_answer(), question ? 1 : 0, question ? 100 : 0);
}

absl::Status Validate(const v1::ReviewGroupCreationRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  if (r.decision() != v1::REVIEW_DECISION_APPROVE && r.decision() != v1::REVIEW_DECISION_REJECT) {
    return InvalidField("decision", "must be APPROVE or REJECT");
  }
  return CheckText("reason", r.reason(), 1, 500);
}

absl::Status Validate(const v1::GetGroupRequest& r) {
  if (r.key_case() == v1::GetGroupRequest::kCode) {
    if (!IsValidGroupCode(r.code())) {
      return MakeError(absl::StatusCode::kInvalidArgument, "GROUP_CODE_INVALID",
                       "code is not a valid group code", {{"field", "code"}});
    }
    return absl::OkStatus();
  }
  return Id("group_id", r.group_id());
}

absl::Status Validate(const v1::ListGroupsRequest& r) {
  if (!v1::GroupState_IsValid(r.state())) return InvalidField("state", "is not a known state");
  if (!common::v1::GroupCategory_IsValid(r.category())) {
    return InvalidField("category", "is not a known category");
  }
  if (!common::v1::ScaleTier_IsValid(r.scale_tier())) {
    return InvalidField("scale_tier", "is not a known tier");
  }
  return Page(r.page());
}

absl::Status Validate(const v1::JoinGroupRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  RETURN_IF_ERROR(CheckText("answer", r.answer(), 0, 100));
  return CheckText("message", r.message(), 0, 200);
}

absl::Status Validate(const v1::DecideJoinRequestRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("join_request_id", r.join_request_id()));
  return CheckText("reason", r.reason(), 0, 500);
}

absl::Status Validate(const v1::InviteMemberRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  return Id("invitee_account_id", r.invitee_account_id());
}

absl::Status Validate(const v1::LeaveGroupRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  return Id("group_id", r.group_id());
}

absl::Status Validate(const v1::RemoveMemberRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  RETURN_IF_ERROR(Id("member_account_id", r.member_account_id()));
  return CheckText("reason", r.reason(), 0, 500);
}

absl::Status Validate(const v1::MuteMemberRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  RETURN_IF_ERROR(Id("member_account_id", r.member_account_id()));
  if (r.duration().seconds() < 0 || r.duration().nanos() < 0) {
    return InvalidField("duration", "must not be negative");
  }
  return CheckText("reason", r.reason(), 0, 500);
}

absl::Status Validate(const v1::SetMemberRoleRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  RETURN_IF_ERROR(Id("member_account_id", r.member_account_id()));
  if (r.role() != v1::MEMBER_ROLE_ADMIN && r.role() != v1::MEMBER_ROLE_MEMBER) {
    return InvalidField("role", "must be ADMIN or MEMBER (use TransferOwnership for OWNER)");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::TransferOwnershipRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  return Id("new_owner_account_id", r.new_owner_account_id());
}

absl::Status Validate(const v1::UpdateGroupInfoRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  if (r.has_name()) RETURN_IF_ERROR(CheckText("name", r.name(), 1, 30));
  if (r.has_description()) RETURN_IF_ERROR(CheckText("description", r.description(), 0, 500));
  if (r.has_announcement()) RETURN_IF_ERROR(CheckText("announcement", r.announcement(), 0, 2000));
  if (r.has_join_policy()) RETURN_IF_ERROR(Policy("join_policy", r.join_policy()));
  if (r.has_join_question()) RETURN_IF_ERROR(CheckText("join_question", r.join_question(), 0, 200));
  if (r.has_join_answer()) RETURN_IF_ERROR(CheckText("join_answer", r.join_answer(), 0, 100));
  return absl::OkStatus();
}

absl::Status Validate(const v1::DissolveGroupRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  return CheckText("reason", r.reason(), 0, 500);
}

absl::Status Validate(const v1::ListMembersRequest& r, bool platform) {
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  if (platform) RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  if (!v1::MemberRole_IsValid(r.role())) return InvalidField("role", "is not a known role");
  return Page(r.page());
}

absl::Status Validate(const v1::SetGroupStateRequest& r) {
  RETURN_IF_ERROR(ValidateRequestId(r.request_id()));
  RETURN_IF_ERROR(Id("group_id", r.group_id()));
  switch (r.state()) {
    case v1::GROUP_STATE_WARNED:
    case v1::GROUP_STATE_POSTING_SUSPENDED:
      if (!r.has_until()) return InvalidField("until", "is required for this state");
      break;
    case v1::GROUP_STATE_CLOSED:
    case v1::GROUP_STATE_ACTIVE:
      break;
    default:
      return MakeError(absl::StatusCode::kInvalidArgument, "STATE_NOT_SETTABLE",
                       "state must be WARNED, POSTING_SUSPENDED, CLOSED or ACTIVE",
                       {{"field", "state"}});
  }
  return CheckText("reason", r.reason(), 1, 2000);
}

absl::Status Validate(const v1::ListGroupsOfAccountRequest& r, bool platform) {
  RETURN_IF_ERROR(Id("account_id", r.account_id()));
  if (platform) RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  if (!v1::MemberRole_IsValid(r.role())) return InvalidField("role", "is not a known role");
  return Page(r.page());
}

absl::Status Validate(const v1::ListJoinRequestsRequest& r, bool platform) {
  if (platform) {
    RETURN_IF_ERROR(Id("actor_account_id", r.actor_account_id()));
  } else {
    RETURN_IF_ERROR(Id("group_id", r.group_id()));
  }
  if (!v1::JoinRequestState_IsValid(r.state())) {
    return InvalidField("state", "is not a known state");
  }
  return Page(r.page());
}

absl::Status Validate(const v1::GetManagementTierRequest& r) {
  return Id("group_id", r.group_id());
}

absl::Status Validate(const v1::ExportFilingDocumentRequest& r) {
  if (r.format() != v1::DOCUMENT_FORMAT_MARKDOWN && r.format() != v1::DOCUMENT_FORMAT_JSON) {
    return InvalidField("format", "must be MARKDOWN or JSON");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::GetGroupInfoPageRequest& r) {
  if (r.key_case() == v1::GetGroupInfoPageRequest::kCode) {
    if (!IsValidGroupCode(r.code())) {
      return MakeError(absl::StatusCode::kInvalidArgument, "GROUP_CODE_INVALID",
                       "code is not a valid group code", {{"field", "code"}});
    }
    return absl::OkStatus();
  }
  return Id("group_id", r.group_id());
}

}  // namespace qunzu::groups
