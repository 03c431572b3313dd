// The gRPC face of the moderation service: screening, reports, dispositions, blacklist, filings
// (R5, R10-R12). Its RPCs answer UNIMPLEMENTED until issue 7 and 8 builds them; callers outside an
// RPC's declared roles are refused before that by the auth interceptor.
#ifndef QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
#define QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/service_main.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"

namespace qunzu::moderation {

class ModerationServiceImpl final : public v1::ModerationService::Service {};

// Builds the service from the shared resources.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeModerationService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& ModerationServiceMigrations();

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_SERVICE_H_
