// qunzu-identity: accounts and nicknames, real-name verification, agreements (R5.4, R6).
#include "common/service_main.h"
#include "services/identity/identity_service.h"

int main(int argc, char** argv) {
  qunzu::ServiceDefinition definition;
  definition.name = "identity";
  definition.grpc_service = "qunzu.identity.v1.IdentityService";
  definition.default_grpc_port = 50051;
  definition.default_metrics_port = 9101;
  definition.uses_redis = true;
  definition.migrations = qunzu::identity::IdentityServiceMigrations();
  definition.add_flags = qunzu::identity::AddIdentityFlags;
  definition.make_service = qunzu::identity::MakeIdentityService;
  return qunzu::RunService(argc, argv, definition);
}
