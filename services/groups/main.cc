// qunzu-groups: groups, members and roles, caps, join review (R7, R8, R9).
#include "common/service_main.h"
#include "services/groups/groups_service.h"

int main(int argc, char** argv) {
  qunzu::groups::GroupsFlags flags;
  qunzu::ServiceDefinition definition;
  definition.name = "groups";
  definition.grpc_service = "qunzu.groups.v1.GroupService";
  definition.default_grpc_port = 50052;
  definition.default_metrics_port = 9102;
  definition.uses_redis = true;
  definition.migrations = qunzu::groups::GroupServiceMigrations();
  definition.add_flags = [&](qunzu::FlagSet& f) { qunzu::groups::AddGroupsFlags(f, &flags); };
  definition.make_service = [&](qunzu::ServiceDeps& deps) {
    return qunzu::groups::MakeGroupService(deps, flags);
  };
  return qunzu::RunService(argc, argv, definition);
}
