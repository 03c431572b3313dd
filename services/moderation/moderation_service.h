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
#include "services/moderation/cases.h"
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

  // Case handling (issue 8): reports and held messages, dispositions, the
  // blacklist, filings. Handlers in case_handlers.cc.
 public:
  // Until attached, the case RPCs answer UNAVAILABLE CASES_NOT_CONFIGURED.
  void AttachCases(std::unique_ptr<Cases> cases);
  Cases* cases() { return cases_.get(); }

  grpc::Status SubmitReport(grpc::ServerContext* c, const v1::SubmitReportRequest* q,
                            v1::SubmitReportResponse* r) override;
  grpc::Status ListReports(grpc::ServerContext* c, const v1::ListReportsRequest* q,
                           v1::ListReportsResponse* r) override;
  grpc::Status ClaimReport(grpc::ServerContext* c, const v1::ClaimReportRequest* q,
                           v1::ClaimReportResponse* r) override;
  grpc::Status ResolveReport(grpc::ServerContext* c, const v1::ResolveReportRequest* q,
                             v1::ResolveReportResponse* r) override;
  grpc::Status GetReport(grpc::ServerContext* c, const v1::GetReportRequest* q,
                         v1::GetReportResponse* r) override;
  grpc::Status GetHandlingStats(grpc::ServerContext* c, const v1::GetHandlingStatsRequest* q,
                                v1::GetHandlingStatsResponse* r) override;
  grpc::Status GetHeldMessage(grpc::ServerContext* c, const v1::GetHeldMessageRequest* q,
                              v1::GetHeldMessageResponse* r) override;
  grpc::Status ListHeldMessages(grpc::ServerContext* c, const v1::ListHeldMessagesRequest* q,
                                v1::ListHeldMessagesResponse* r) override;
  grpc::Status DisposeGroup(grpc::ServerContext* c, const v1::DisposeGroupRequest* q,
                            v1::DisposeGroupResponse* r) override;
  grpc::Status DisposeAccount(grpc::ServerContext* c, const v1::DisposeAccountRequest* q,
                              v1::DisposeAccountResponse* r) override;
  grpc::Status GetDisposition(grpc::ServerContext* c, const v1::GetDispositionRequest* q,
                              v1::GetDispositionResponse* r) override;
  grpc::Status ListDispositions(grpc::ServerContext* c, const v1::ListDispositionsRequest* q,
                                v1::ListDispositionsResponse* r) override;
  grpc::Status RevokeDisposition(grpc::ServerContext* c, const v1::RevokeDispositionRequest* q,
                                 v1::RevokeDispositionResponse* r) override;
  grpc::Status AddToBlacklist(grpc::ServerContext* c, const v1::AddToBlacklistRequest* q,
                              v1::AddToBlacklistResponse* r) override;
  grpc::Status RemoveFromBlacklist(grpc::ServerContext* c, const v1::RemoveFromBlacklistRequest* q,
                                   v1::RemoveFromBlacklistResponse* r) override;
  grpc::Status ListBlacklist(grpc::ServerContext* c, const v1::ListBlacklistRequest* q,
                             v1::ListBlacklistResponse* r) override;
  grpc::Status ListFilings(grpc::ServerContext* c, const v1::ListFilingsRequest* q,
                           v1::ListFilingsResponse* r) override;

 private:
  std::unique_ptr<Cases> cases_;
};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& ModerationServiceMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
