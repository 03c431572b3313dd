// Prometheus metrics for every service: the /metrics endpoint on its own
// port, and the interceptor that records grpc_server_started_total,
// grpc_server_handled_total and grpc_server_handling_seconds with the label
// names and code names other gRPC exporters use.
#ifndef QUNZU_COMMON_METRICS_H_
#define QUNZU_COMMON_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qunzu {

// Serves a registry at http://<bind>/metrics until destroyed.
class MetricsServer {
 public:
  // bind_address is "host:port"; port 0 picks a free port. Fails with
  // UNAVAILABLE (METRICS_BIND_FAILED) naming the address when it is in use.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& bind_address);

  prometheus::Registry& registry() { return *registry_; }
  // The port actually bound.
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// "OK", "InvalidArgument", ... as other gRPC exporters name the codes.
absl::string_view GrpcCodeName(int code);

// Creates one interceptor per call; records its start, its outcome code and
// its latency. Series for every method of the given services (and the
// standard health and reflection services) exist from start, with zero
// values, so rates and alerts work before the first call; calls to any other
// method are counted under grpc_service="unknown" to keep labels bounded.
class GrpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  struct MethodMetrics {
    prometheus::Counter* started = nullptr;
    prometheus::Histogram* handling = nullptr;
    std::array<prometheus::Counter*, 17> handled{};
  };

  GrpcMetricsInterceptorFactory(prometheus::Registry& registry,
                                const std::vector<std::string>& services);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  void AddMethod(const std::string& service, const std::string& method, const std::string& type);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_;
  absl::flat_hash_map<std::string, MethodMetrics> by_path_;
  MethodMetrics unknown_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_METRICS_H_
