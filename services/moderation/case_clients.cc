#include "services/moderation/case_clients.h"

#include <grpcpp/client_context.h>

#include <utility>

#include "common/log.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

// Calls one unary RPC with the token and deadline; maps the outcome back to
// an absl::Status carrying the callee's reason.
template <typename Stub, typename Request, typename Response, typename Method>
absl::StatusOr<Response> Call(Stub& stub, Method method, const std::string& token,
                              absl::Duration deadline, const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  context.AddMetadata("authorization", "Bearer " + token);
  Response response;
  grpc::Status status = (stub.*method)(&context, request, &response);
  if (!status.ok()) {
    absl::Status mapped = FromGrpcStatus(status);
    if (mapped.code() == absl::StatusCode::kDeadlineExceeded ||
        mapped.code() == absl::StatusCode::kUnavailable) {
      return MakeError(absl::StatusCode::kUnavailable, "DEPENDENCY_UNAVAILABLE",
                       "the enforcing service could not apply it: " + status.error_message());
    }
    return mapped;
  }
  return response;
}

}  // namespace

GrpcGroupsClient::GrpcGroupsClient(const std::shared_ptr<grpc::Channel>& channel, std::string token,
                                   absl::Duration deadline)
    : stub_(groups::v1::GroupService::NewStub(channel)),
      token_(std::move(token)),
      deadline_(deadline) {}

absl::StatusOr<groups::v1::SetGroupStateResponse> GrpcGroupsClient::SetGroupState(
    const groups::v1::SetGroupStateRequest& request) {
  return Call<groups::v1::GroupService::Stub, groups::v1::SetGroupStateRequest,
              groups::v1::SetGroupStateResponse>(
      *stub_, &groups::v1::GroupService::Stub::SetGroupState, token_, deadline_, request);
}

GrpcCreditClient::GrpcCreditClient(const std::shared_ptr<grpc::Channel>& channel, std::string token,
                                   absl::Duration deadline)
    : stub_(credit::v1::CreditService::NewStub(channel)),
      token_(std::move(token)),
      deadline_(deadline) {}

absl::StatusOr<credit::v1::ApplyPenaltyResponse> GrpcCreditClient::ApplyPenalty(
    const credit::v1::ApplyPenaltyRequest& request) {
  return Call<credit::v1::CreditService::Stub, credit::v1::ApplyPenaltyRequest,
              credit::v1::ApplyPenaltyResponse>(
      *stub_, &credit::v1::CreditService::Stub::ApplyPenalty, token_, deadline_, request);
}

absl::StatusOr<credit::v1::LiftPenaltyResponse> GrpcCreditClient::LiftPenalty(
    const credit::v1::LiftPenaltyRequest& request) {
  return Call<credit::v1::CreditService::Stub, credit::v1::LiftPenaltyRequest,
              credit::v1::LiftPenaltyResponse>(
      *stub_, &credit::v1::CreditService::Stub::LiftPenalty, token_, deadline_, request);
}

absl::StatusOr<credit::v1::RecordEventResponse> GrpcCreditClient::RecordEvent(
    const credit::v1::RecordEventRequest& request) {
  return Call<credit::v1::CreditService::Stub, credit::v1::RecordEventRequest,
              credit::v1::RecordEventResponse>(
      *stub_, &credit::v1::CreditService::Stub::RecordEvent, token_, deadline_, request);
}

absl::Status CreditEventDelivery::Deliver(const std::vector<OutboxRecord>& batch) {
  for (const OutboxRecord& record : batch) {
    credit::v1::RecordEventRequest request;
    if (!request.ParseFromString(record.payload)) {
      LogError("credit_event_record_corrupt", {{"outbox_id", record.id}});
      continue;
    }
    RETURN_IF_ERROR(credit_.RecordEvent(request).status());
  }
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
