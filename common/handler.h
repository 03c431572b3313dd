// The shape of every RPC handler: take the caller the auth interceptor
// decided, run one logic method, map its absl::Status to the gRPC status.
// No exception crosses a handler.
#ifndef QUNZU_COMMON_HANDLER_H_
#define QUNZU_COMMON_HANDLER_H_

#include <grpcpp/server_context.h>

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "common/auth_interceptor.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu {

// What a handler knows about the call besides its request.
struct CallInfo {
  Caller caller;
  // The peer as gRPC reports it ("ipv4:203.0.113.7:51234"), for audit.
  std::string peer;
};

// Runs fn(const CallInfo&) -> absl::Status for an authenticated, authorised
// call and returns its mapped status; a denied call never reaches fn.
template <typename Fn>
grpc::Status Serve(const grpc::ServerContextBase* context, Fn&& fn) {
  absl::StatusOr<Caller> caller = CallerOf(context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  try {
    return ToGrpcStatus(fn(CallInfo{*std::move(caller), context->peer()}));
  } catch (const std::exception& e) {
    LogError("handler_exception", {{"what", e.what()}});
    return ToGrpcStatus(MakeError(absl::StatusCode::kInternal, "INTERNAL_ERROR",
                                  "the request failed unexpectedly"));
  }
}

}  // namespace qunzu

#endif  // QUNZU_COMMON_HANDLER_H_
