// The gRPC face of the credit service: credit scores, levels and entitlements (R7.3, R7.4, R11.2).
// Its RPCs answer UNIMPLEMENTED until issue 5 builds them; callers
// outside an RPC's declared roles are refused before that by the auth
// interceptor.
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/credit/v1/credit.grpc.pb.h"

namespace qunzu::credit {

class CreditServiceImpl final : public v1::CreditService::Service {};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeCreditService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& CreditServiceMigrations();

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_SERVICE_H_
