// How qunzuctl reaches the services: one unary call by method descriptor
// over a generic stub (so no per-service code), with the bearer token and
// the deadline, and grpc.health.v1 checks. Failures come back as
// absl::Status with the server's ErrorInfo reason kept.
#ifndef QUNZU_SERVICES_QUNZUCTL_RPC_H_
#define QUNZU_SERVICES_QUNZUCTL_RPC_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace google::protobuf {
class Message;
class MethodDescriptor;
}  // namespace google::protobuf

namespace grpc {
class Channel;
}

namespace qunzu::ctl {

// The five services by short name, and the service a method belongs to
// ("qunzu.groups.v1.GroupService" -> "groups").
inline constexpr const char* kServiceNames[] = {"identity", "groups", "credit", "moderation",
                                                "audit"};
std::string ServiceOfMethod(const google::protobuf::MethodDescriptor& method);

// Calls RPCs; an interface so the compliance report is tested with a fake.
class RpcCaller {
 public:
  virtual ~RpcCaller() = default;
  // Calls method on its service; *response is filled on OK.
  virtual absl::Status Call(const google::protobuf::MethodDescriptor& method,
                            const google::protobuf::Message& request,
                            google::protobuf::Message* response) = 0;
};

// Calls the method with this full name ("qunzu.audit.v1.AuditService.
// GetCheckpoint"); INTERNAL when the name is unknown.
absl::Status CallMethod(RpcCaller& rpc, const std::string& full_name,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response);

struct ConnectionOptions {
  // Service short name -> host:port.
  std::map<std::string, std::string> targets;
  // Sent as `authorization: Bearer <token>` when not empty.
  std::string token;
  absl::Duration deadline = absl::Seconds(10);
};

class GrpcCaller : public RpcCaller {
 public:
  explicit GrpcCaller(ConnectionOptions options);
  ~GrpcCaller() override;

  absl::Status Call(const google::protobuf::MethodDescriptor& method,
                    const google::protobuf::Message& request,
                    google::protobuf::Message* response) override;

  // grpc.health.v1.Health/Check of the whole server: "SERVING",
  // "NOT_SERVING", ... or the call's error.
  absl::StatusOr<std::string> HealthCheck(const std::string& service);

  const ConnectionOptions& options() const { return options_; }

 private:
  absl::StatusOr<std::string> RawCall(const std::string& service, const std::string& path,
                                      const std::string& request);

  ConnectionOptions options_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace qunzu::ctl

#endif  // QUNZU_SERVICES_QUNZUCTL_RPC_H_
