// qunzu-audit: the tamper-evident operation log (R13).
#include "common/service_main.h"
#include "services/audit/audit_service.h"

int main(int argc, char** argv) {
  static qunzu::audit::AuditConfig config;
  qunzu::ServiceDefinition definition;
  definition.name = "audit";
  definition.grpc_service = "qunzu.audit.v1.AuditService";
  definition.default_grpc_port = 50055;
  definition.default_metrics_port = 9105;
  definition.uses_redis = false;
  definition.migrations = qunzu::audit::AuditServiceMigrations();
  definition.add_flags = [](qunzu::FlagSet& flags) { qunzu::audit::AddAuditFlags(flags, config); };
  definition.make_service = [](qunzu::ServiceDeps& deps) {
    return qunzu::audit::MakeAuditService(deps, config);
  };
  return qunzu::RunService(argc, argv, definition);
}
