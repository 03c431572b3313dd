#include "services/credit/credit_service.h"

namespace qunzu::credit {

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeCreditService(ServiceDeps& /*deps*/) {
  return std::make_unique<CreditServiceImpl>();
}

const std::vector<Migration>& CreditServiceMigrations() {
  static const auto* migrations = new std::vector<Migration>();
  return *migrations;
}

}  // namespace qunzu::credit
