#include "services/identity/identity_service.h"

namespace qunzu::identity {

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeIdentityService(ServiceDeps& /*deps*/) {
  return std::make_unique<IdentityServiceImpl>();
}

const std::vector<Migration>& IdentityServiceMigrations() {
  static const auto* migrations = new std::vector<Migration>();
  return *migrations;
}

}  // namespace qunzu::identity
