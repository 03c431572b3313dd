// The gRPC face of the identity service: accounts and nicknames, real-name
// verification, agreements (R5.4, R6). Handlers only map between protos and
// IdentityLogic; callers outside an RPC's declared roles are refused before
// them by the auth interceptor.
#ifndef QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_
#define QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/service_main.h"
#include "qunzu/identity/v1/identity.grpc.pb.h"
#include "services/identity/identity_logic.h"

namespace qunzu::identity {

class IdentityServiceImpl : public v1::IdentityService::Service {
 public:
  explicit IdentityServiceImpl(IdentityLogic& logic) : logic_(logic) {}

  grpc::Status CreateAccount(grpc::ServerContext* context, const v1::CreateAccountRequest* request,
                             v1::CreateAccountResponse* response) override;
  grpc::Status GetAccount(grpc::ServerContext* context, const v1::GetAccountRequest* request,
                          v1::GetAccountResponse* response) override;
  grpc::Status SubmitRealName(grpc::ServerContext* context,
                              const v1::SubmitRealNameRequest* request,
                              v1::SubmitRealNameResponse* response) override;
  grpc::Status GetVerification(grpc::ServerContext* context,
                               const v1::GetVerificationRequest* request,
                               v1::GetVerificationResponse* response) override;
  grpc::Status RevealIdentity(grpc::ServerContext* context,
                              const v1::RevealIdentityRequest* request,
                              v1::RevealIdentityResponse* response) override;
  grpc::Status PublishAgreement(grpc::ServerContext* context,
                                const v1::PublishAgreementRequest* request,
                                v1::PublishAgreementResponse* response) override;
  grpc::Status AcceptAgreement(grpc::ServerContext* context,
                               const v1::AcceptAgreementRequest* request,
                               v1::AcceptAgreementResponse* response) override;
  grpc::Status GetAgreementStatus(grpc::ServerContext* context,
                                  const v1::GetAgreementStatusRequest* request,
                                  v1::GetAgreementStatusResponse* response) override;

 private:
  IdentityLogic& logic_;
};

// Registers identity's own flags (keys file, verifier, caps, credit target).
void AddIdentityFlags(FlagSet& flags);

// Builds the service from the shared resources and the flags: loads the
// keys, picks the verifier, rebuilds the Redis projections and starts the
// credit event relay. An unreadable or invalid key file fails start-up.
absl::StatusOr<std::unique_ptr<grpc::Service>> MakeIdentityService(ServiceDeps& deps);

// This service's own schema migrations (after CommonMigrations()).
const std::vector<Migration>& IdentityServiceMigrations();

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_IDENTITY_SERVICE_H_
