// The gRPC face of the identity service: accounts and nicknames, real-name verification, agreements
// (R5.4, R6). Its RPCs answer UNIMPLEMENTED until issue 4 builds them; callers outside an RPC's
// declared roles are refused before that by the auth interceptor.
#ifndef QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_
#define QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/identity/v1/identity.grpc.pb.h"

namespace qunzu::identity {

class IdentityServiceImpl final : public v1::IdentityService::Service {};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeIdentityService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& IdentityServiceMigrations();

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_
