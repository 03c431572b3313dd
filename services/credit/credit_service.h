// The gRPC face of the credit service (R7.3, R7.4, R11.2): thin handlers
// that validate, call CreditEngine and map its status. Callers outside an
// RPC's declared roles are refused before that by the auth interceptor. The
// service also owns the maintenance loop: the Redis projection is rebuilt at
// start, then accounts with expired penalties or passed clean periods are
// caught up every minute.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/service_main.h"
#include "qunzu/credit/v1/credit.grpc.pb.h"
#include "services/credit/credit_engine.h"
#include "services/credit/mysql_credit_store.h"

namespace qunzu::credit {

class CreditServiceImpl final : public v1::CreditService::Service {
 public:
  // Starts the maintenance loop on a thread of its own; the destructor
  // stops it.
  CreditServiceImpl(MysqlPool& mysql, RedisClient& redis, prometheus::Registry& metrics,
                    Policy policy, const Clock& clock);
  ~CreditServiceImpl() override;

  grpc::Status GetCredit(grpc::ServerContext* context, const v1::GetCreditRequest* request,
                         v1::GetCreditResponse* response) override;
  grpc::Status RecordEvent(grpc::ServerContext* context, const v1::RecordEventRequest* request,
                           v1::RecordEventResponse* response) override;
  grpc::Status ApplyPenalty(grpc::ServerContext* context, const v1::ApplyPenaltyRequest* request,
                            v1::ApplyPenaltyResponse* response) override;
  grpc::Status LiftPenalty(grpc::ServerContext* context, const v1::LiftPenaltyRequest* request,
                           v1::LiftPenaltyResponse* response) override;
  grpc::Status ListCreditHistory(grpc::ServerContext* context,
                                 const v1::ListCreditHistoryRequest* request,
                                 v1::ListCreditHistoryResponse* response) override;
  grpc::Status GetPolicy(grpc::ServerContext* context, const v1::GetPolicyRequest* request,
                         v1::GetPolicyResponse* response) override;

 private:
  void MaintenanceLoop();

  const Policy policy_;
  MysqlCreditStore store_;
  RedisCreditProjection projection_;
  CreditMetrics metrics_;
  CreditEngine engine_;
  absl::Notification stop_;
  std::thread maintenance_;
};

// The policy file used when neither --policy-file nor
// QUNZU_CREDIT_POLICY_FILE is given: deploy/policies/credit.textproto of the
// source tree this binary was built from.
std::string DefaultPolicyFile();

// Registers --policy-file (QUNZU_CREDIT_POLICY_FILE) bound to *policy_file.
void AddCreditFlags(FlagSet& flags, std::string* policy_file);

// Loads and validates the policy, then builds the service. A bad policy is
// an error naming the file and the field.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeCreditService(ServiceDeps& deps,
                                                                 const std::string& policy_file);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& CreditServiceMigrations();

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_
