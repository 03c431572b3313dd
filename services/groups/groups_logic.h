// The groups logic (R2.1, R7.1, R8.1-R8.8, R9.1, R11.1): every mutation
// runs in one MySQL transaction with its idempotency key, its row locks
// (group row for the member cap, account rows for the created and joined
// caps) and its audit event; the Redis projection is written after commit.
// Requests arrive validated (groups_validation.h).
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_LOGIC_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_LOGIC_H_

#include <cppconn/connection.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "services/groups/groups_deps.h"
#include "services/groups/groups_policy.h"

namespace qunzu::groups {

// Who is asking, from where, through which RPC.
struct RequestContext {
  Caller caller;
  std::string peer;
  std::string method;
};

class GroupsLogic {
 public:
  GroupsLogic(MysqlPool& mysql, AccountReader& accounts, TextScreener& screener,
              GroupProjection& projection, const GroupsPolicy& policy, const Clock& clock)
      : mysql_(mysql),
        accounts_(accounts),
        screener_(screener),
        projection_(projection),
        policy_(policy),
        clock_(clock) {}

  absl::StatusOr<v1::CreateGroupResponse> CreateGroup(const RequestContext& ctx,
                                                      const v1::CreateGroupRequest& request);
  absl::StatusOr<v1::ReviewGroupCreationResponse> ReviewGroupCreation(
      const RequestContext& ctx, const v1::ReviewGroupCreationRequest& request);
  absl::StatusOr<v1::JoinGroupResponse> JoinGroup(const RequestContext& ctx,
                                                  const v1::JoinGroupRequest& request);
  absl::StatusOr<v1::DecideJoinRequestResponse> DecideJoinRequest(
      const RequestContext& ctx, const v1::DecideJoinRequestRequest& request);
  absl::StatusOr<v1::InviteMemberResponse> InviteMember(const RequestContext& ctx,
                                                        const v1::InviteMemberRequest& request);
  absl::StatusOr<v1::LeaveGroupResponse> LeaveGroup(const RequestContext& ctx,
                                                    const v1::LeaveGroupRequest& request);
  absl::StatusOr<v1::RemoveMemberResponse> RemoveMember(const RequestContext& ctx,
                                                        const v1::RemoveMemberRequest& request);
  absl::StatusOr<v1::MuteMemberResponse> MuteMember(const RequestContext& ctx,
                                                    const v1::MuteMemberRequest& request);
  absl::StatusOr<v1::SetMemberRoleResponse> SetMemberRole(const RequestContext& ctx,
                                                          const v1::SetMemberRoleRequest& request);
  absl::StatusOr<v1::TransferOwnershipResponse> TransferOwnership(
      const RequestContext& ctx, const v1::TransferOwnershipRequest& request);
  absl::StatusOr<v1::DissolveGroupResponse> DissolveGroup(const RequestContext& ctx,
                                                          const v1::DissolveGroupRequest& request);
  absl::StatusOr<v1::SetGroupStateResponse> SetGroupState(const RequestContext& ctx,
                                                          const v1::SetGroupStateRequest& request);
  absl::StatusOr<v1::UpdateGroupInfoResponse> UpdateGroupInfo(
      const RequestContext& ctx, const v1::UpdateGroupInfoRequest& request);

  absl::StatusOr<v1::GetGroupResponse> GetGroup(const RequestContext& ctx,
                                                const v1::GetGroupRequest& request);
  absl::StatusOr<v1::ListMembersResponse> ListMembers(const RequestContext& ctx,
                                                      const v1::ListMembersRequest& request);
  absl::StatusOr<v1::ListGroupsResponse> ListGroups(const v1::ListGroupsRequest& request);
  absl::StatusOr<v1::ListGroupsOfAccountResponse> ListGroupsOfAccount(
      const RequestContext& ctx, const v1::ListGroupsOfAccountRequest& request);
  absl::StatusOr<v1::ListJoinRequestsResponse> ListJoinRequests(
      const RequestContext& ctx, const v1::ListJoinRequestsRequest& request);
  absl::StatusOr<v1::GetManagementTierResponse> GetManagementTier(
      const v1::GetManagementTierRequest& request);
  absl::StatusOr<v1::ExportFilingDocumentResponse> ExportFilingDocument(
      const v1::ExportFilingDocumentRequest& request);
  // The owner's nickname is not filled in yet (identity's projection does
  // not carry it).
  absl::StatusOr<v1::GetGroupInfoPageResponse> GetGroupInfoPage(
      const v1::GetGroupInfoPageRequest& request);

  // Rewrites the Redis projection of every group from MySQL.
  absl::Status RebuildProjection();

  const GroupsPolicy& policy() const { return policy_; }

 private:
  // Admits `account` to the locked group `group` under both caps.
  absl::StatusOr<v1::Member> Admit(sql::Connection& conn, const RequestContext& ctx,
                                   const std::string& request_id, v1::Group& group,
                                   uint64_t account, const AccountView& view, v1::JoinMethod method,
                                   uint64_t admitted_by);
  void PublishAfterCommit(const v1::Group& group, const v1::Member* member);

  MysqlPool& mysql_;
  AccountReader& accounts_;
  TextScreener& screener_;
  GroupProjection& projection_;
  const GroupsPolicy& policy_;
  const Clock& clock_;
};

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_LOGIC_H_
