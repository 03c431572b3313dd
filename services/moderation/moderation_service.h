// The gRPC face of the moderation service (R5, R10-R12): thin handlers that
// validate, call the logic and map its status. Built so far: the content
// screen (ScreenText) and rule sets (UpsertRuleSet, ListRuleSets,
// TestRules). The other RPCs answer UNIMPLEMENTED until issues 7 and 8
// build them; callers outside an RPC's declared roles are refused before
// that by the auth interceptor.
#ifndef QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
#define QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"
#include "services/moderation/moderation_metrics.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/rule_engine.h"

namespace qunzu::moderation {

// How often each replica asks MySQL whether the active rules changed.
inline constexpr absl::Duration kRulePollInterval = absl::Milliseconds(200);

class ModerationServiceImpl final : public v1::ModerationService::Service {
 public:
  // Starts the rule poller (the destructor stops it).
  ModerationServiceImpl(MysqlPool& mysql, prometheus::Registry& metrics, const Clock& clock);

  grpc::Status ScreenText(grpc::ServerContext* context, const v1::ScreenTextRequest* request,
                          v1::ScreenTextResponse* response) override;
  grpc::Status UpsertRuleSet(grpc::ServerContext* context, const v1::UpsertRuleSetRequest* request,
                             v1::UpsertRuleSetResponse* response) override;
  grpc::Status ListRuleSets(grpc::ServerContext* context, const v1::ListRuleSetsRequest* request,
                            v1::ListRuleSetsResponse* response) override;
  grpc::Status TestRules(grpc::ServerContext* context, const v1::TestRulesRequest* request,
                         v1::TestRulesResponse* response) override;

 private:
  MysqlRuleStore store_;
  RuleEngine engine_;
  ModerationMetrics metrics_;
};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& ModerationServiceMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
