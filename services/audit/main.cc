// qunzu-audit: the tamper-evident operation log (R13).
#include "common/service_main.h"
#include "services/audit/audit_service.h"

int main(int argc, char** argv) {
  qunzu::ServiceDefinition definition;
  definition.name = "audit";
  definition.grpc_service = "qunzu.audit.v1.AuditService";
  definition.default_grpc_port = 50055;
  definition.default_metrics_port = 9105;
  definition.uses_redis = false;
  definition.migrations = qunzu::audit::AuditServiceMigrations();
  definition.make_service = qunzu::audit::MakeAuditService;
  return qunzu::RunService(argc, argv, definition);
}
