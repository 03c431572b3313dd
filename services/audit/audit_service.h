// The gRPC face of the audit service: the tamper-evident operation log (R13).
// Its RPCs answer UNIMPLEMENTED until issue 3 builds them; callers
// outside an RPC's declared roles are refused before that by the auth
// interceptor.
#ifndef QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_
#define QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/audit/v1/audit.grpc.pb.h"

namespace qunzu::audit {

class AuditServiceImpl final : public v1::AuditService::Service {};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeAuditService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& AuditServiceMigrations();

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_AUDIT_SERVICE_H_
