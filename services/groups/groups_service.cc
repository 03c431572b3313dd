#include "services/groups/groups_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <utility>

#include "common/handler.h"
#include "common/log.h"
#include "services/groups/groups_store.h"
#include "services/groups/groups_validation.h"

namespace qunzu::groups {
namespace {

constexpr char kMethodPrefix[] = "/qunzu.groups.v1.GroupService/";

RequestContext ContextOf(const CallInfo& call, const char* method) {
  return RequestContext{call.caller, call.peer, std::string(kMethodPrefix) + method};
}

// validate, then logic(ctx, request) into *response.
template <typename Req, typename Resp, typename Logic>
grpc::Status Handle(grpc::ServerContext* context, const char* method, const Req* request,
                    Resp* response, Logic logic) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(Validate(*request));
    ASSIGN_OR_RETURN(*response, logic(ContextOf(call, method), *request));
    return absl::OkStatus();
  });
}

}  // namespace

GroupServiceImpl::GroupServiceImpl(MysqlPool& mysql, RedisClient* redis, GroupsPolicy policy,
                                   std::unique_ptr<AccountReader> accounts,
                                   std::unique_ptr<TextScreener> screener, const Clock& clock)
    : policy_(std::move(policy)),
      accounts_(std::move(accounts)),
      screener_(std::move(screener)),
      projection_(redis),
      logic_(mysql, *accounts_, *screener_, projection_, policy_, clock),
      rebuild_([this] {
        absl::Duration wait = absl::ZeroDuration();
        while (!stop_.WaitForNotificationWithTimeout(wait)) {
          absl::Status status = logic_.RebuildProjection();
          if (status.ok()) {
            LogInfo("groups_projection_rebuilt", {});
            return;
          }
          LogWarning("groups_projection_rebuild_failed",
                     {{"error", std::string(status.message())}});
          wait = absl::Seconds(5);
        }
      }) {}

GroupServiceImpl::~GroupServiceImpl() {
  stop_.Notify();
  rebuild_.join();
}

#define QUNZU_GROUPS_HANDLER(Method)                                                          \
  grpc::Status GroupServiceImpl::Method(grpc::ServerContext* c, const v1::Method##Request* q, \
                                        v1::Method##Response* r) {                            \
    return Handle(c, #Method, q, r, [this](const RequestContext& ctx, const auto& req) {      \
      return logic_.Method(ctx, req);                                                         \
    });                                                                                       \
  }

QUNZU_GROUPS_HANDLER(CreateGroup)
QUNZU_GROUPS_HANDLER(ReviewGroupCreation)
QUNZU_GROUPS_HANDLER(GetGroup)
QUNZU_GROUPS_HANDLER(JoinGroup)
QUNZU_GROUPS_HANDLER(DecideJoinRequest)
QUNZU_GROUPS_HANDLER(InviteMember)
QUNZU_GROUPS_HANDLER(LeaveGroup)
QUNZU_GROUPS_HANDLER(RemoveMember)
QUNZU_GROUPS_HANDLER(MuteMember)
QUNZU_GROUPS_HANDLER(SetMemberRole)
QUNZU_GROUPS_HANDLER(TransferOwnership)
QUNZU_GROUPS_HANDLER(UpdateGroupInfo)
QUNZU_GROUPS_HANDLER(DissolveGroup)
QUNZU_GROUPS_HANDLER(SetGroupState)

#undef QUNZU_GROUPS_HANDLER

grpc::Status GroupServiceImpl::ListGroups(grpc::ServerContext* c, const v1::ListGroupsRequest* q,
                                          v1::ListGroupsResponse* r) {
  return Serve(c, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q));
    ASSIGN_OR_RETURN(*r, logic_.ListGroups(*q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::ListMembers(grpc::ServerContext* c, const v1::ListMembersRequest* q,
                                           v1::ListMembersResponse* r) {
  return Serve(c, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q, call.caller.role == common::v1::ROLE_PLATFORM));
    ASSIGN_OR_RETURN(*r, logic_.ListMembers(ContextOf(call, "ListMembers"), *q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::ListGroupsOfAccount(grpc::ServerContext* c,
                                                   const v1::ListGroupsOfAccountRequest* q,
                                                   v1::ListGroupsOfAccountResponse* r) {
  return Serve(c, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q, call.caller.role == common::v1::ROLE_PLATFORM));
    ASSIGN_OR_RETURN(*r, logic_.ListGroupsOfAccount(ContextOf(call, "ListGroupsOfAccount"), *q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::ListJoinRequests(grpc::ServerContext* c,
                                                const v1::ListJoinRequestsRequest* q,
                                                v1::ListJoinRequestsResponse* r) {
  return Serve(c, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q, call.caller.role == common::v1::ROLE_PLATFORM));
    ASSIGN_OR_RETURN(*r, logic_.ListJoinRequests(ContextOf(call, "ListJoinRequests"), *q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::GetManagementTier(grpc::ServerContext* c,
                                                 const v1::GetManagementTierRequest* q,
                                                 v1::GetManagementTierResponse* r) {
  return Serve(c, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q));
    ASSIGN_OR_RETURN(*r, logic_.GetManagementTier(*q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::ExportFilingDocument(grpc::ServerContext* c,
                                                    const v1::ExportFilingDocumentRequest* q,
                                                    v1::ExportFilingDocumentResponse* r) {
  return Serve(c, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q));
    ASSIGN_OR_RETURN(*r, logic_.ExportFilingDocument(*q));
    return absl::OkStatus();
  });
}

grpc::Status GroupServiceImpl::GetGroupInfoPage(grpc::ServerContext* c,
                                                const v1::GetGroupInfoPageRequest* q,
                                                v1::GetGroupInfoPageResponse* r) {
  return Serve(c, [&](const CallInfo&) -> absl::Status {
    RETURN_IF_ERROR(Validate(*q));
    ASSIGN_OR_RETURN(*r, logic_.GetGroupInfoPage(*q));
    return absl::OkStatus();
  });
}

std::string DefaultPolicyFile() { return QUNZU_GROUPS_DEFAULT_POLICY_FILE; }

void AddGroupsFlags(FlagSet& flags, GroupsFlags* out) {
  flags.AddString({"policy-file", "QUNZU_GROUPS_POLICY_FILE",
                   "The groups policy (qunzu.groups.v1.GroupsPolicy, text format)."},
                  &out->policy_file, DefaultPolicyFile());
  flags.AddString({"moderation-target", "QUNZU_MODERATION_TARGET",
                   "host:port of the moderation service (ScreenText for group texts)."},
                  &out->moderation_target, "127.0.0.1:50054");
  flags.AddDuration({"moderation-deadline", "QUNZU_MODERATION_DEADLINE",
                     "Deadline of each ScreenText call; past it the change is refused."},
                    &out->moderation_deadline, absl::Seconds(2), absl::Milliseconds(10),
                    absl::Seconds(60));
}

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeGroupService(ServiceDeps& deps,
                                                                const GroupsFlags& flags) {
  ASSIGN_OR_RETURN(v1::GroupsPolicy proto, LoadGroupsPolicy(flags.policy_file));
  ASSIGN_OR_RETURN(GroupsPolicy policy, GroupsPolicy::Create(std::move(proto), flags.policy_file));
  if (deps.redis == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "REDIS_REQUIRED",
                     "groups reads account projections from Redis");
  }
  auto channel = grpc::CreateChannel(flags.moderation_target, grpc::InsecureChannelCredentials());
  return std::make_unique<GroupServiceImpl>(
      deps.mysql, deps.redis, std::move(policy), std::make_unique<RedisAccountReader>(*deps.redis),
      std::make_unique<GrpcTextScreener>(channel, deps.service_token, flags.moderation_deadline),
      SystemClock::Get());
}

const std::vector<Migration>& GroupServiceMigrations() { return GroupsMigrations(); }

}  // namespace qunzu::groups
