#include "common/status.h"

#include <grpcpp/support/status.h>

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "qunzu/common/v1/common.pb.h"

namespace qunzu {
namespace {

std::string& DomainStorage() {
  static std::string* domain = new std::string("qunzu");
  return *domain;
}

std::optional<common::v1::ErrorInfo> InfoOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  if (!payload) return std::nullopt;
  common::v1::ErrorInfo info;
  if (!info.ParseFromString(std::string(*payload))) return std::nullopt;
  return info;
}

}  // namespace

void SetErrorDomain(absl::string_view domain) { DomainStorage() = std::string(domain); }

absl::Status MakeError(absl::StatusCode code, absl::string_view reason, absl::string_view message,
                       const std::map<std::string, std::string>& metadata) {
  absl::Status status(code, message);
  if (status.ok()) return status;
  common::v1::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(DomainStorage());
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status InvalidField(absl::string_view field, absl::string_view problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FIELD",
                   std::string(field) + ": " + std::string(problem),
                   {{"field", std::string(field)}});
}

std::string ErrorReason(const absl::Status& status) {
  if (status.ok()) return "";
  if (auto info = InfoOf(status); info && !info->reason().empty()) return info->reason();
  return absl::AsciiStrToUpper(absl::StatusCodeToString(status.code()));
}

std::string ErrorMetadata(const absl::Status& status, absl::string_view key) {
  auto info = InfoOf(status);
  if (!info) return "";
  auto it = info->metadata().find(std::string(key));
  return it == info->metadata().end() ? "" : it->second;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  common::v1::ErrorInfo info;
  if (auto attached = InfoOf(status)) {
    info = *std::move(attached);
  } else {
    info.set_reason(ErrorReason(status));
    info.set_domain(DomainStorage());
  }
  // absl and gRPC share the canonical code numbers 0..16; anything else is
  // UNKNOWN to a client.
  int code = static_cast<int>(status.code());
  if (code < 0 || code > 16) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  common::v1::StatusDetails details;
  details.set_code(code);
  details.set_message(std::string(status.message()));
  details.add_details()->PackFrom(info);
  return grpc::Status(static_cast<grpc::StatusCode>(code), std::string(status.message()),
                      details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  common::v1::StatusDetails details;
  if (details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      common::v1::ErrorInfo info;
      if (any.UnpackTo(&info)) {
        absl::Status out(code, status.error_message());
        out.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
        return out;
      }
    }
  }
  return absl::Status(code, status.error_message());
}

}  // namespace qunzu
