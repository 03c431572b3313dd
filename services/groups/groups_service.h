// The gRPC face of the groups service: groups, members and roles, caps, join review (R7, R8, R9).
// Its RPCs answer UNIMPLEMENTED until issue 6 builds them; callers
// outside an RPC's declared roles are refused before that by the auth
// interceptor.
#ifndef QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_
#define QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/groups/v1/groups.grpc.pb.h"

namespace qunzu::groups {

class GroupServiceImpl final : public v1::GroupService::Service {};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeGroupService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& GroupServiceMigrations();

}  // namespace qunzu::groups

#endif  // QUNZU_SERVICES_GROUPS_GROUPS_SERVICE_H_
