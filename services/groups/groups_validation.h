// Input checks of every groups request, before any permission or state
// check: INVALID_ARGUMENT naming the field.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_VALIDATION_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "qunzu/groups/v1/groups.pb.h"

namespace qunzu::groups {

// `value` is valid UTF-8 of min..max code points.
absl::Status CheckText(const std::string& field, const std::string& value, int min, int max);

absl::Status Validate(const v1::CreateGroupRequest& r);
absl::Status Validate(const v1::ReviewGroupCreationRequest& r);
absl::Status Validate(const v1::GetGroupRequest& r);
absl::Status Validate(const v1::ListGroupsRequest& r);
absl::Status Validate(const v1::JoinGroupRequest& r);
absl::Status Validate(const v1::DecideJoinRequestRequest& r);
absl::Status Validate(const v1::InviteMemberRequest& r);
absl::Status Validate(const v1::LeaveGroupRequest& r);
absl::Status Validate(const v1::RemoveMemberRequest& r);
absl::Status Validate(const v1::MuteMemberRequest& r);
absl::Status Validate(const v1::SetMemberRoleRequest& r);
absl::Status Validate(const v1::TransferOwnershipRequest& r);
absl::Status Validate(const v1::UpdateGroupInfoRequest& r);
absl::Status Validate(const v1::DissolveGroupRequest& r);
absl::Status Validate(const v1::ListMembersRequest& r, bool platform);
absl::Status Validate(const v1::SetGroupStateRequest& r);
absl::Status Validate(const v1::ListGroupsOfAccountRequest& r, bool platform);
absl::Status Validate(const v1::ListJoinRequestsRequest& r, bool platform);
absl::Status Validate(const v1::GetManagementTierRequest& r);
absl::Status Validate(const v1::ExportFilingDocumentRequest& r);
absl::Status Validate(const v1::GetGroupInfoPageRequest& r);

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_VALIDATION_H_
