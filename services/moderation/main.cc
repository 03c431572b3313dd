// qunzu-moderation: screening, reports, dispositions, blacklist, filings (R5, R10-R12).
#include "common/service_main.h"
#include "services/moderation/moderation_service.h"

int main(int argc, char** argv) {
  qunzu::moderation::ModerationFlags flags;
  qunzu::ServiceDefinition definition;
  definition.name = "moderation";
  definition.grpc_service = "qunzu.moderation.v1.ModerationService";
  definition.default_grpc_port = 50054;
  definition.default_metrics_port = 9104;
  definition.uses_redis = true;
  definition.migrations = qunzu::moderation::ModerationServiceMigrations();
  definition.add_flags = [&](qunzu::FlagSet& f) {
    qunzu::moderation::AddModerationFlags(f, &flags);
  };
  definition.make_service = [&](qunzu::ServiceDeps& deps) {
    return qunzu::moderation::MakeModerationService(deps, flags);
  };
  return qunzu::RunService(argc, argv, definition);
}
