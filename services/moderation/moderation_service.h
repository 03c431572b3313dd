// The gRPC face of the moderation service (R5, R10-R12): thin handlers that
// validate, call the logic and map its status. Built so far: the per-message
// screen (ScreenMessage), the content screen (ScreenText), rule sets
// (UpsertRuleSet, ListRuleSets, TestRules) and emergency modes
// (SetEmergencyMode, ListEmergencyModes). The other RPCs answer
// UNIMPLEMENTED until issue 8 builds them; callers outside an RPC's
// declared roles are refused before that by the auth interceptor.
#ifndef QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
#define QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/service_main.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"
#include "services/moderation/emergency_modes.h"
#include "services/moderation/message_screener.h"
#include "services/moderation/moderation_metrics.h"
#include "services/moderation/mysql_emergency_store.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/review_queue.h"
#include "services/moderation/rule_engine.h"

namespace qunzu::moderation {

// How often each replica asks MySQL whether the active rules or the
// emergency modes changed (both must be in force within 1 s).
inline constexpr absl::Duration kRulePollInterval = absl::Milliseconds(200);

// moderation's own flags.
struct ModerationFlags {
  // Messages per minute per group by scale tier (GroupRateLimits).
  std::string group_messages_per_minute = "SMALL=60,MEDIUM=120,LARGE=300,HUGE=600";
};
void AddModerationFlags(FlagSet& flags, ModerationFlags* out);

class ModerationServiceImpl final : public v1::ModerationService::Service {
 public:
  // Starts the rule and emergency-mode pollers (the destructor stops them).
  ModerationServiceImpl(MysqlPool& mysql, RedisClient& redis, prometheus::Registry& metrics,
                        const Clock& clock, std::unique_ptr<ReviewQueue> review,
                        GroupRateLimits group_limits);

  grpc::Status ScreenMessage(grpc::ServerContext* context, const v1::ScreenMessageRequest* request,
                             v1::ScreenMessageResponse* response) override;
  grpc::Status ScreenText(grpc::ServerContext* context, const v1::ScreenTextRequest* request,
                          v1::ScreenTextResponse* response) override;
  grpc::Status UpsertRuleSet(grpc::ServerContext* context, const v1::UpsertRuleSetRequest* request,
                             v1::UpsertRuleSetResponse* response) override;
  grpc::Status ListRuleSets(grpc::ServerContext* context, const v1::ListRuleSetsRequest* request,
                            v1::ListRuleSetsResponse* response) override;
  grpc::Status TestRules(grpc::ServerContext* context, const v1::TestRulesRequest* request,
                         v1::TestRulesResponse* response) override;
  grpc::Status SetEmergencyMode(grpc::ServerContext* context,
                                const v1::SetEmergencyModeRequest* request,
                                v1::SetEmergencyModeResponse* response) override;
  grpc::Status ListEmergencyModes(grpc::ServerContext* context,
                                  const v1::ListEmergencyModesRequest* request,
                                  v1::ListEmergencyModesResponse* response) override;

 private:
  const Clock& clock_;
  MysqlRuleStore store_;
  RuleEngine engine_;
  MysqlEmergencyStore emergency_store_;
  EmergencyModes emergency_;
  ModerationMetrics metrics_;
  std::unique_ptr<ReviewQueue> review_;
  MessageScreener screener_;
};

// Builds the service from the shared resources and the flags.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps,
                                                                     const ModerationFlags& flags);

// This service's own schema migrations (after CommonMigrations()): rule
// sets (1..9), emergency modes (10..49), reports and dispositions (50..99).
const std::vector<Migration>& ModerationServiceMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
