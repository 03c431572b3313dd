#include "services/audit/audit_service.h"

namespace qunzu::audit {

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeAuditService(ServiceDeps& /*deps*/) {
  return std::make_unique<AuditServiceImpl>();
}

const std::vector<Migration>& AuditServiceMigrations() {
  static const auto* migrations = new std::vector<Migration>();
  return *migrations;
}

}  // namespace qunzu::audit
