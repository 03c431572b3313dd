// The gRPC face of the groups service: groups, members and roles, caps,
// join review (R7, R8, R9, R11.1). Thin handlers: validate, call
// GroupsLogic, map its status. Callers outside an RPC's declared roles are
// refused before that by the auth interceptor.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/service_main.h"
#include "qunzu/groups/v1/groups.grpc.pb.h"
#include "services/groups/groups_logic.h"

namespace qunzu::groups {

class GroupServiceImpl final : public v1::GroupService::Service {
 public:
  // `redis` may be null (no projection written). Rebuilds the projection
  // on a thread of its own, retrying until it succeeds.
  GroupServiceImpl(MysqlPool& mysql, RedisClient* redis, GroupsPolicy policy,
                   std::unique_ptr<AccountReader> accounts, std::unique_ptr<TextScreener> screener,
                   const Clock& clock);
  ~GroupServiceImpl() override;

  grpc::Status CreateGroup(grpc::ServerContext* c, const v1::CreateGroupRequest* q,
                           v1::CreateGroupResponse* r) override;
  grpc::Status ReviewGroupCreation(grpc::ServerContext* c, const v1::ReviewGroupCreationRequest* q,
                                   v1::ReviewGroupCreationResponse* r) override;
  grpc::Status GetGroup(grpc::ServerContext* c, const v1::GetGroupRequest* q,
                        v1::GetGroupResponse* r) override;
  grpc::Status ListGroups(grpc::ServerContext* c, const v1::ListGroupsRequest* q,
                          v1::ListGroupsResponse* r) override;
  grpc::Status JoinGroup(grpc::ServerContext* c, const v1::JoinGroupRequest* q,
                         v1::JoinGroupResponse* r) override;
  grpc::Status DecideJoinRequest(grpc::ServerContext* c, const v1::DecideJoinRequestRequest* q,
                                 v1::DecideJoinRequestResponse* r) override;
  grpc::Status InviteMember(grpc::ServerContext* c, const v1::InviteMemberRequest* q,
                            v1::InviteMemberResponse* r) override;
  grpc::Status LeaveGroup(grpc::ServerContext* c, const v1::LeaveGroupRequest* q,
                          v1::LeaveGroupResponse* r) override;
  grpc::Status RemoveMember(grpc::ServerContext* c, const v1::RemoveMemberRequest* q,
                            v1::RemoveMemberResponse* r) override;
  grpc::Status MuteMember(grpc::ServerContext* c, const v1::MuteMemberRequest* q,
                          v1::MuteMemberResponse* r) override;
  grpc::Status SetMemberRole(grpc::ServerContext* c, const v1::SetMemberRoleRequest* q,
                             v1::SetMemberRoleResponse* r) override;
  grpc::Status TransferOwnership(grpc::ServerContext* c, const v1::TransferOwnershipRequest* q,
                                 v1::TransferOwnershipResponse* r) override;
  grpc::Status UpdateGroupInfo(grpc::ServerContext* c, const v1::UpdateGroupInfoRequest* q,
                               v1::UpdateGroupInfoResponse* r) override;
  grpc::Status DissolveGroup(grpc::ServerContext* c, const v1::DissolveGroupRequest* q,
                             v1::DissolveGroupResponse* r) override;
  grpc::Status ListMembers(grpc::ServerContext* c, const v1::ListMembersRequest* q,
                           v1::ListMembersResponse* r) override;
  grpc::Status SetGroupState(grpc::ServerContext* c, const v1::SetGroupStateRequest* q,
                             v1::SetGroupStateResponse* r) override;
  grpc::Status ListGroupsOfAccount(grpc::ServerContext* c, const v1::ListGroupsOfAccountRequest* q,
                                   v1::ListGroupsOfAccountResponse* r) override;
  grpc::Status ListJoinRequests(grpc::ServerContext* c, const v1::ListJoinRequestsRequest* q,
                                v1::ListJoinRequestsResponse* r) override;
  grpc::Status GetManagementTier(grpc::ServerContext* c, const v1::GetManagementTierRequest* q,
                                 v1::GetManagementTierResponse* r) override;
  grpc::Status ExportFilingDocument(grpc::ServerContext* c,
                                    const v1::ExportFilingDocumentRequest* q,
                                    v1::ExportFilingDocumentResponse* r) override;
  grpc::Status GetGroupInfoPage(grpc::ServerContext* c, const v1::GetGroupInfoPageRequest* q,
                                v1::GetGroupInfoPageResponse* r) override;

  GroupsLogic& logic() { return logic_; }

 private:
  const GroupsPolicy policy_;
  std::unique_ptr<AccountReader> accounts_;
  std::unique_ptr<TextScreener> screener_;
  GroupProjection projection_;
  GroupsLogic logic_;
  absl::Notification stop_;
  std::thread rebuild_;
};

// Flags of the groups service.
struct GroupsFlags {
  std::string policy_file;
  std::string moderation_target;
  absl::Duration moderation_deadline = absl::Seconds(2);
};

std::string DefaultPolicyFile();
void AddGroupsFlags(FlagSet& flags, GroupsFlags* out);

// Loads and validates the policy, then builds the service.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeGroupService(ServiceDeps& deps,
                                                                const GroupsFlags& flags);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& GroupServiceMigrations();

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_
