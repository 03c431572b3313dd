#include "services/credit/credit_service.h"

#include <utility>

#include "common/handler.h"
#include "common/log.h"
#include "services/credit/credit_validation.h"

namespace qunzu::credit {
namespace {

constexpr char kMethodPrefix[] = "/qunzu.credit.v1.CreditService/";
constexpr absl::Duration kMaintenanceInterval = absl::Minutes(1);
constexpr absl::Duration kRebuildRetry = absl::Seconds(5);
constexpr int kCatchUpBatch = 200;

RequestContext ContextOf(const CallInfo& call, const char* method) {
  return RequestContext{call.caller, call.peer, std::string(kMethodPrefix) + method};
}

void ReportRebuild(const CreditEngine::RebuildReport& report) {
  LogInfo("credit_projection_rebuilt",
          {{"accounts", report.accounts},
           {"ledger_mismatches", static_cast<int64_t>(report.mismatched.size())}});
  for (uint64_t account_id : report.mismatched) {
    LogError("credit_ledger_mismatch", {{"account_id", account_id}});
  }
}

}  // namespace

CreditServiceImpl::CreditServiceImpl(MysqlPool& mysql, RedisClient& redis,
                                     prometheus::Registry& metrics, Policy policy,
                                     const Clock& clock)
    : policy_(std::move(policy)),
      store_(mysql),
      projection_(redis),
      metrics_(metrics),
      engine_(store_, projection_, policy_, clock, &metrics_),
      maintenance_([this] { MaintenanceLoop(); }) {}

CreditServiceImpl::~CreditServiceImpl() {
  stop_.Notify();
  maintenance_.join();
}

void CreditServiceImpl::MaintenanceLoop() {
  // Until the first rebuild succeeds the projection may be stale; retry
  // soon rather than wait a whole interval.
  bool rebuilt = false;
  absl::Duration wait = absl::ZeroDuration();
  while (!stop_.WaitForNotificationWithTimeout(wait)) {
    absl::Status status = absl::OkStatus();
    if (rebuilt) {
      status = engine_.CatchUpDue(kCatchUpBatch).status();
    } else {
      absl::StatusOr<CreditEngine::RebuildReport> report = engine_.Rebuild();
      status = report.status();
      if (report.ok()) {
        rebuilt = true;
        ReportRebuild(*report);
      }
    }
    if (!status.ok()) {
      LogWarning("credit_maintenance_failed", {{"error", std::string(status.message())}});
    }
    wait = rebuilt ? kMaintenanceInterval : kRebuildRetry;
  }
}

grpc::Status CreditServiceImpl::GetCredit(grpc::ServerContext* context,
                                          const v1::GetCreditRequest* request,
                                          v1::GetCreditResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(
        CheckAccountRead(call.caller, request->account_id(), request->actor_account_id()));
    ASSIGN_OR_RETURN(*response->mutable_status(), engine_.GetCredit(request->account_id()));
    return absl::OkStatus();
  });
}

grpc::Status CreditServiceImpl::RecordEvent(grpc::ServerContext* context,
                                            const v1::RecordEventRequest* request,
                                            v1::RecordEventResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateRecordEvent(*request));
    ASSIGN_OR_RETURN(*response, engine_.RecordEvent(ContextOf(call, "RecordEvent"), *request));
    return absl::OkStatus();
  });
}

grpc::Status CreditServiceImpl::ApplyPenalty(grpc::ServerContext* context,
                                             const v1::ApplyPenaltyRequest* request,
                                             v1::ApplyPenaltyResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateApplyPenalty(*request, policy_));
    ASSIGN_OR_RETURN(*response, engine_.ApplyPenalty(ContextOf(call, "ApplyPenalty"), *request));
    return absl::OkStatus();
  });
}

grpc::Status CreditServiceImpl::LiftPenalty(grpc::ServerContext* context,
                                            const v1::LiftPenaltyRequest* request,
                                            v1::LiftPenaltyResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateLiftPenalty(*request));
    ASSIGN_OR_RETURN(*response, engine_.LiftPenalty(ContextOf(call, "LiftPenalty"), *request));
    return absl::OkStatus();
  });
}

grpc::Status CreditServiceImpl::ListCreditHistory(grpc::ServerContext* context,
                                                  const v1::ListCreditHistoryRequest* request,
                                                  v1::ListCreditHistoryResponse* response) {
  return Serve(context, [&](const CallInfo& call) -> absl::Status {
    RETURN_IF_ERROR(ValidateHistoryRequest(*request));
    RETURN_IF_ERROR(
        CheckAccountRead(call.caller, request->account_id(), request->actor_account_id()));
    ASSIGN_OR_RETURN(*response, engine_.ListHistory(*request));
    return absl::OkStatus();
  });
}

grpc::Status CreditServiceImpl::GetPolicy(grpc::ServerContext* context,
                                          const v1::GetPolicyRequest* /*request*/,
                                          v1::GetPolicyResponse* response) {
  return Serve(context, [&](const CallInfo&) -> absl::Status {
    *response->mutable_policy() = engine_.policy();
    return absl::OkStatus();
  });
}

std::string DefaultPolicyFile() { return QUNZU_CREDIT_DEFAULT_POLICY_FILE; }

void AddCreditFlags(FlagSet& flags, std::string* policy_file) {
  flags.AddString({"policy-file", "QUNZU_CREDIT_POLICY_FILE",
                   "The credit policy (qunzu.credit.v1.CreditPolicy, text format)."},
                  policy_file, DefaultPolicyFile());
}

absl::StatusOr<std::unique_ptr<grpc::Service>> MakeCreditService(ServiceDeps& deps,
                                                                 const std::string& policy_file) {
  ASSIGN_OR_RETURN(v1::CreditPolicy proto, LoadCreditPolicy(policy_file));
  ASSIGN_OR_RETURN(Policy policy, Policy::Create(std::move(proto), policy_file));
  if (deps.redis == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "REDIS_REQUIRED",
                     "credit publishes its projection to Redis");
  }
  return std::make_unique<CreditServiceImpl>(deps.mysql, *deps.redis, deps.metrics,
                                             std::move(policy), SystemClock::Get());
}

const std::vector<Migration>& CreditServiceMigrations() { return CreditMigrations(); }

}  // namespace qunzu::credit
