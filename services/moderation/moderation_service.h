// The gRPC face of the moderation service (R5, R10-R12): thin handlers that
// validate, call the logic and map its status: the per-message screen
// (ScreenMessage), the content screen (ScreenText), rule sets
// (UpsertRuleSet, ListRuleSets, TestRules), emergency modes
// (SetEmergencyMode, ListEmergencyModes), and case handling (reports, held
// messages, dispositions, the blacklist, filings; case_handlers.cc).
// Callers outside an RPC's declared roles are refused before any handler
// by the auth interceptor.
#ifndef QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
#define QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/blocking_calls.h"
#include "common/config.h"
#include "common/handler.h"
#include "common/service_main.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"
#include "services/moderation/cases.h"
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

// Bodies of the blocking RPCs that run at once (common/blocking_calls.h):
// as many as gRPC's sync server kept idle pollers (common/server.cc), well
// above the MySQL connections a replica opens by default (16), so a wait
// for another service (a disposition's calls to groups and credit) does
// not hold the reads behind it.
inline constexpr int kBlockingThreads = 64;

// moderation's own flags.
struct ModerationFlags {
  // Messages per minute per group by scale tier (GroupRateLimits).
  std::string group_messages_per_minute = "SMALL=60,MEDIUM=120,LARGE=300,HUGE=600";
  // Replies the hot path's client-side cache of projections holds (Redis
  // tracks them and says when one changes); 0 reads every one every time.
  // An entry takes ~0.3 KiB (292 bytes measured by the screen bench): the
  // default is ~60 MiB full, some 40,000 active senders in a group each.
  int64_t redis_cache_entries = 200000;
  // Case handling's (cases.h); the review queue takes its report deadlines.
  CaseFlags cases;
};
// Registers all of them, the case flags included.
void AddModerationFlags(FlagSet& flags, ModerationFlags* out);

// Every method is a callback method (common/blocking_calls.h says why):
// ScreenMessage waits on nothing (its Redis round trip completes on the
// client's loop thread, message_screener.h); ScreenText and TestRules only
// compute and answer on gRPC's thread; the rest run on blocking_.
class ModerationServiceImpl final : public v1::ModerationService::CallbackService {
 public:
  // Starts the rule and emergency-mode pollers (the destructor stops them).
  // `cases` (not null) handles the case RPCs, and its report store is the
  // review queue ScreenMessage's holds go to. async_redis (not null; made
  // with redis's options by MakeModerationService) carries ScreenMessage's
  // round trip.
  ModerationServiceImpl(MysqlPool& mysql, RedisClient& redis,
                        std::unique_ptr<AsyncRedis> async_redis, prometheus::Registry& metrics,
                        const Clock& clock, std::unique_ptr<Cases> cases,
                        GroupRateLimits group_limits);

  grpc::ServerUnaryReactor* ScreenMessage(grpc::CallbackServerContext* context,
                                          const v1::ScreenMessageRequest* request,
                                          v1::ScreenMessageResponse* response) override;
  grpc::ServerUnaryReactor* ScreenText(grpc::CallbackServerContext* context,
                                       const v1::ScreenTextRequest* request,
                                       v1::ScreenTextResponse* response) override;
  grpc::ServerUnaryReactor* UpsertRuleSet(grpc::CallbackServerContext* context,
                                          const v1::UpsertRuleSetRequest* request,
                                          v1::UpsertRuleSetResponse* response) override;
  grpc::ServerUnaryReactor* ListRuleSets(grpc::CallbackServerContext* context,
                                         const v1::ListRuleSetsRequest* request,
                                         v1::ListRuleSetsResponse* response) override;
  grpc::ServerUnaryReactor* TestRules(grpc::CallbackServerContext* context,
                                      const v1::TestRulesRequest* request,
                                      v1::TestRulesResponse* response) override;
  grpc::ServerUnaryReactor* SetEmergencyMode(grpc::CallbackServerContext* context,
                                             const v1::SetEmergencyModeRequest* request,
                                             v1::SetEmergencyModeResponse* response) override;
  grpc::ServerUnaryReactor* ListEmergencyModes(grpc::CallbackServerContext* context,
                                               const v1::ListEmergencyModesRequest* request,
                                               v1::ListEmergencyModesResponse* response) override;

 private:
  const Clock& clock_;
  // Before screener_, which uses it until its last screen answers.
  std::unique_ptr<AsyncRedis> async_redis_;
  MysqlRuleStore store_;
  RuleEngineMetrics rule_metrics_;
  RuleEngine engine_;
  MysqlEmergencyStore emergency_store_;
  EmergencyModes emergency_;
  ModerationMetrics metrics_;
  // Before screener_, which holds its report store.
  std::unique_ptr<Cases> cases_;
  MessageScreener screener_;
  // Every method but ScreenMessage, ScreenText and TestRules (which do not
  // block) runs its body here. Last: stopped first, answering what it
  // holds while everything its bodies use is still there.
  // Metered as pool="rpc".
  BlockingCalls blocking_;

  // A set READY in the store whose active version this replica has not put
  // in force yet reads COMPILING, with this replica's last error if any.
  void MarkLoadingHere(v1::RuleSet* set) const;

  // Case handling (issue 8): reports and held messages, dispositions, the
  // blacklist, filings. Handlers in case_handlers.cc.
 public:
  // A regulator's read is itself on the record (R13.1): audits it as
  // REGULATOR_INSPECTED; unrecorded, the read fails. OK for other roles.
  absl::Status RecordIfInspection(const CallInfo& call, const char* method);

  grpc::ServerUnaryReactor* SubmitReport(grpc::CallbackServerContext* c,
                                         const v1::SubmitReportRequest* q,
                                         v1::SubmitReportResponse* r) override;
  grpc::ServerUnaryReactor* ListReports(grpc::CallbackServerContext* c,
                                        const v1::ListReportsRequest* q,
                                        v1::ListReportsResponse* r) override;
  grpc::ServerUnaryReactor* ClaimReport(grpc::CallbackServerContext* c,
                                        const v1::ClaimReportRequest* q,
                                        v1::ClaimReportResponse* r) override;
  grpc::ServerUnaryReactor* ResolveReport(grpc::CallbackServerContext* c,
                                          const v1::ResolveReportRequest* q,
                                          v1::ResolveReportResponse* r) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* c, const v1::GetReportRequest* q,
                                      v1::GetReportResponse* r) override;
  grpc::ServerUnaryReactor* GetHandlingStats(grpc::CallbackServerContext* c,
                                             const v1::GetHandlingStatsRequest* q,
                                             v1::GetHandlingStatsResponse* r) override;
  grpc::ServerUnaryReactor* GetHeldMessage(grpc::CallbackServerContext* c,
                                           const v1::GetHeldMessageRequest* q,
                                           v1::GetHeldMessageResponse* r) override;
  grpc::ServerUnaryReactor* ListHeldMessages(grpc::CallbackServerContext* c,
                                             const v1::ListHeldMessagesRequest* q,
                                             v1::ListHeldMessagesResponse* r) override;
  grpc::ServerUnaryReactor* DisposeGroup(grpc::CallbackServerContext* c,
                                         const v1::DisposeGroupRequest* q,
                                         v1::DisposeGroupResponse* r) override;
  grpc::ServerUnaryReactor* DisposeAccount(grpc::CallbackServerContext* c,
                                           const v1::DisposeAccountRequest* q,
                                           v1::DisposeAccountResponse* r) override;
  grpc::ServerUnaryReactor* GetDisposition(grpc::CallbackServerContext* c,
                                           const v1::GetDispositionRequest* q,
                                           v1::GetDispositionResponse* r) override;
  grpc::ServerUnaryReactor* ListDispositions(grpc::CallbackServerContext* c,
                                             const v1::ListDispositionsRequest* q,
                                             v1::ListDispositionsResponse* r) override;
  grpc::ServerUnaryReactor* RevokeDisposition(grpc::CallbackServerContext* c,
                                              const v1::RevokeDispositionRequest* q,
                                              v1::RevokeDispositionResponse* r) override;
  grpc::ServerUnaryReactor* AddToBlacklist(grpc::CallbackServerContext* c,
                                           const v1::AddToBlacklistRequest* q,
                                           v1::AddToBlacklistResponse* r) override;
  grpc::ServerUnaryReactor* RemoveFromBlacklist(grpc::CallbackServerContext* c,
                                                const v1::RemoveFromBlacklistRequest* q,
                                                v1::RemoveFromBlacklistResponse* r) override;
  grpc::ServerUnaryReactor* ListBlacklist(grpc::CallbackServerContext* c,
                                          const v1::ListBlacklistRequest* q,
                                          v1::ListBlacklistResponse* r) override;
  grpc::ServerUnaryReactor* ListFilings(grpc::CallbackServerContext* c,
                                        const v1::ListFilingsRequest* q,
                                        v1::ListFilingsResponse* r) override;
};

// Builds the service from the shared resources and the flags.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps,
                                                                     const ModerationFlags& flags);

// This service's own schema migrations (after CommonMigrations()): rule
// sets (1..9), emergency modes (10..49), reports and dispositions (50..99).
const std::vector<Migration>& ModerationServiceMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
