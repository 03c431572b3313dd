// qunzu-credit: credit scores, levels and entitlements (R7.3, R7.4, R11.2).
#include <string>

#include "common/service_main.h"
#include "services/credit/credit_service.h"

int main(int argc, char** argv) {
  std::string policy_file;
  qunzu::ServiceDefinition definition;
  definition.name = "credit";
  definition.grpc_service = "qunzu.credit.v1.CreditService";
  definition.default_grpc_port = 50053;
  definition.default_metrics_port = 9103;
  definition.uses_redis = true;
  definition.migrations = qunzu::credit::CreditServiceMigrations();
  definition.add_flags = [&](qunzu::FlagSet& flags) {
    qunzu::credit::AddCreditFlags(flags, &policy_file);
  };
  definition.make_service = [&](qunzu::ServiceDeps& deps) {
    return qunzu::credit::MakeCreditService(deps, policy_file);
  };
  return qunzu::RunService(argc, argv, definition);
}
