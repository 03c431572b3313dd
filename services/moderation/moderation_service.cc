#include "services/moderation/moderation_service.h"

namespace qunzu::moderation {

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& /*deps*/) {
  return std::make_unique<ModerationServiceImpl>();
}

const std::vector<Migration>& ModerationServiceMigrations() {
  static const auto* migrations = new std::vector<Migration>();
  return *migrations;
}

}  // namespace qunzu::moderation
