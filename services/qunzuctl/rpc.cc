#include "services/qunzuctl/rpc.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace qunzu::ctl {
namespace {

// grpc.health.v1 by hand: HealthCheckRequest{service = 1}, and the status
// enum (field 1) of HealthCheckResponse.
constexpr const char* kHealthStatus[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

}  // namespace

std::string ServiceOfMethod(const google::protobuf::MethodDescriptor& method) {
  // qunzu.<service>.v1.<Name>Service
  std::vector<std::string> parts = absl::StrSplit(method.service()->full_name(), '.');
  return parts.size() >= 2 ? parts[1] : "";
}

absl::Status CallMethod(RpcCaller& rpc, const std::string& full_name,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response) {
  const google::protobuf::MethodDescriptor* method =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name);
  if (method == nullptr) return absl::InternalError(absl::StrCat("unknown method ", full_name));
  return rpc.Call(*method, request, response);
}

GrpcCaller::GrpcCaller(ConnectionOptions options) : options_(std::move(options)) {}
GrpcCaller::~GrpcCaller() = default;

absl::StatusOr<std::string> GrpcCaller::RawCall(const std::string& service, const std::string& path,
                                                const std::string& request) {
  auto target = options_.targets.find(service);
  if (target == options_.targets.end()) {
    return absl::InvalidArgumentError(absl::StrCat("no target for service ", service));
  }
  std::shared_ptr<grpc::Channel>& channel = channels_[service];
  if (!channel) {
    channel = grpc::CreateChannel(target->second, grpc::InsecureChannelCredentials());
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.deadline));
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer receive;
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  auto call = stub.PrepareUnaryCall(&context, path, send, &queue);
  call->StartCall();
  grpc::Status status;
  call->Finish(&receive, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  queue.Next(&tag, &ok);
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  if (!status.ok()) {
    absl::Status error = FromGrpcStatus(status);
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      absl::Status wrapped(
          error.code(),
          absl::StrCat(service, " at ", target->second, " (deadline ",
                       absl::FormatDuration(options_.deadline), "): ", error.message()));
      error.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
        wrapped.SetPayload(url, payload);
      });
      return wrapped;
    }
    return error;
  }
  return Flatten(receive);
}

absl::Status GrpcCaller::Call(const google::protobuf::MethodDescriptor& method,
                              const google::protobuf::Message& request,
                              google::protobuf::Message* response) {
  std::string path = absl::StrCat("/", method.service()->full_name(), "/", method.name());
  absl::StatusOr<std::string> bytes =
      RawCall(ServiceOfMethod(method), path, request.SerializeAsString());
  if (!bytes.ok()) return bytes.status();
  if (!response->ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat("cannot parse the ", method.name(), " response"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GrpcCaller::HealthCheck(const std::string& service) {
  absl::StatusOr<std::string> bytes = RawCall(service, "/grpc.health.v1.Health/Check", "");
  if (!bytes.ok()) return bytes.status();
  int status = bytes->size() >= 2 && (*bytes)[0] == 0x08 ? (*bytes)[1] : 0;
  if (status < 0 || status > 3) return absl::StrCat("status ", status);
  return std::string(kHealthStatus[status]);
}

}  // namespace qunzu::ctl
