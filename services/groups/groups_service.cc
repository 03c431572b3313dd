#include "services/groups/groups_service.h"

namespace qunzu::groups {

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeGroupService(ServiceDeps& /*deps*/) {
  return std::make_unique<GroupServiceImpl>();
}

const std::vector<Migration>& GroupServiceMigrations() {
  static const auto* migrations = new std::vector<Migration>();
  return *migrations;
}

}  // namespace qunzu::groups
