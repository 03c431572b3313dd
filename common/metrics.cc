#include "common/metrics.h"

#include <chrono>
#include <exception>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"

namespace qunzu {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr std::array<absl::string_view, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// Sub-millisecond resolution for the screening hot path, up to 10 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return *buckets;
}

std::string TypeOf(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) return "bidi_stream";
  if (method.client_streaming()) return "client_stream";
  if (method.server_streaming()) return "server_stream";
  return "unary";
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(const GrpcMetricsInterceptorFactory::MethodMetrics* metrics)
      : metrics_(metrics) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
      metrics_->started->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      int code = static_cast<int>(methods->GetSendStatus().error_code());
      if (code < 0 || code >= 17) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
      metrics_->handled[code]->Increment();
      metrics_->handling->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  const GrpcMetricsInterceptorFactory::MethodMetrics* metrics_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

absl::string_view GrpcCodeName(int code) {
  return code >= 0 && code < 17 ? kCodeNames[code] : "Unknown";
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& bind_address) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = std::make_shared<prometheus::Registry>();
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(bind_address);
  } catch (const std::exception& e) {
    return MakeError(absl::StatusCode::kUnavailable, "METRICS_BIND_FAILED",
                     absl::StrCat("cannot serve metrics on ", bind_address,
                                  " (address in use or not available): ", e.what()),
                     {{"address", bind_address}});
  }
  server->exposer_->RegisterCollectable(server->registry_);
  std::vector<int> ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

GrpcMetricsInterceptorFactory::GrpcMetricsInterceptorFactory(
    prometheus::Registry& registry, const std::vector<std::string>& services)
    : started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("Total number of RPCs started on the server.")
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("Total number of RPCs completed on the server, regardless of success.")
                   .Register(registry)),
      handling_(prometheus::BuildHistogram()
                    .Name("grpc_server_handling_seconds")
                    .Help("Histogram of response latency of RPCs handled by the server.")
                    .Register(registry)) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      AddMethod(name, service->method(i)->name(), TypeOf(*service->method(i)));
    }
  }
  AddMethod("grpc.health.v1.Health", "Check", "unary");
  AddMethod("grpc.health.v1.Health", "Watch", "server_stream");
  AddMethod("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo", "bidi_stream");
  AddMethod("unknown", "unknown", "unknown");
  unknown_ = by_path_["/unknown/unknown"];
}

void GrpcMetricsInterceptorFactory::AddMethod(const std::string& service, const std::string& method,
                                              const std::string& type) {
  prometheus::Labels labels{
      {"grpc_service", service}, {"grpc_method", method}, {"grpc_type", type}};
  MethodMetrics metrics;
  metrics.started = &started_.Add(labels);
  metrics.handling = &handling_.Add(labels, LatencyBuckets());
  for (int code = 0; code < 17; ++code) {
    prometheus::Labels with_code = labels;
    with_code.emplace("grpc_code", std::string(kCodeNames[code]));
    metrics.handled[code] = &handled_.Add(with_code);
  }
  by_path_[absl::StrCat("/", service, "/", method)] = metrics;
}

grpc::experimental::Interceptor* GrpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  auto it = by_path_.find(info->method());
  return new MetricsInterceptor(it == by_path_.end() ? &unknown_ : &it->second);
}

}  // namespace qunzu
