// The gRPC server every service runs: its services behind the metrics and
// auth interceptors, grpc.health.v1, server reflection, and a drain on
// shutdown.
#ifndef QUNZU_COMMON_SERVER_H_
#define QUNZU_COMMON_SERVER_H_

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/metrics.h"

namespace qunzu {

// The sync server's thread pool as every service runs it: at least 2 and at
// most 64 idle polling threads. gRPC's default (1..2) ends a thread as soon
// as more than two are idle and starts one when a call finds none, so
// handlers that wait on MySQL or Redis made it create and destroy threads
// on nearly every call under load. The benchmarks' bare server uses the same.
void ConfigureServerThreads(grpc::ServerBuilder& builder);

class GrpcServer {
 public:
  struct Options {
    // "host:port"; port 0 picks a free port.
    std::string address;
    std::shared_ptr<const Authorizer> authorizer;
    prometheus::Registry* registry = nullptr;
  };

  // Binds and starts serving `services` (full names from their descriptors
  // must be given in `service_names` for health, metrics and auth). Health
  // starts NOT_SERVING until SetServing(true). Fails with UNAVAILABLE
  // (GRPC_BIND_FAILED) naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const Options& options, const std::vector<grpc::Service*>& services,
      const std::vector<std::string>& service_names);

  // The port actually bound.
  int port() const { return port_; }

  // Sets grpc.health.v1 for the whole server ("") and each service.
  void SetServing(bool serving);

  // Reports NOT_SERVING, stops accepting calls, lets calls in flight finish
  // within `drain`, then cancels the rest.
  void Shutdown(absl::Duration drain);

 private:
  GrpcServer() = default;

  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;
  int port_ = 0;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_SERVER_H_
