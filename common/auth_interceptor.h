// The one place authentication and authorisation are enforced: a server
// interceptor that checks every call against the Authorizer before the
// handler runs, and hands the handler the authenticated Caller.
#ifndef QUNZU_COMMON_AUTH_INTERCEPTOR_H_
#define QUNZU_COMMON_AUTH_INTERCEPTOR_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "absl/status/statusor.h"
#include "common/auth.h"

namespace qunzu {

// Creates one AuthInterceptor per call. A denied call is answered with the
// denial (UNAUTHENTICATED or PERMISSION_DENIED with its reason) whatever the
// handler returns, and CallerOf() gives the handler the denial too, so a
// handler that starts with CallerOf() never acts for a denied caller.
class AuthInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AuthInterceptorFactory(std::shared_ptr<const Authorizer> authorizer);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  std::shared_ptr<const Authorizer> authorizer_;
};

// The caller of the call `context` belongs to, as decided by the
// interceptor, or the denial. INTERNAL (AUTH_NOT_INSTALLED) if no decision
// was made: a server built without the interceptor fails closed.
absl::StatusOr<Caller> CallerOf(const grpc::ServerContextBase* context);

}  // namespace qunzu

#endif  // QUNZU_COMMON_AUTH_INTERCEPTOR_H_
