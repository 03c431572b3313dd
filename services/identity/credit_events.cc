#include "services/identity/credit_events.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "common/log.h"
#include "common/status.h"

namespace qunzu::identity {

CreditEventReceiver::CreditEventReceiver(const std::shared_ptr<grpc::Channel>& channel,
                                         std::string token, absl::Duration deadline)
    : stub_(credit::v1::CreditService::NewStub(channel)),
      token_(std::move(token)),
      deadline_(deadline) {}

absl::Status CreditEventReceiver::Deliver(const std::vector<OutboxRecord>& batch) {
  for (const OutboxRecord& record : batch) {
    credit::v1::RecordEventRequest request;
    if (!request.ParseFromString(record.payload)) {
      LogError("credit_outbox_record_corrupt", {{"outbox_id", record.id}});
      continue;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(deadline_));
    context.AddMetadata("authorization", "Bearer " + token_);
    credit::v1::RecordEventResponse response;
    grpc::Status status = stub_->RecordEvent(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
  }
  return absl::OkStatus();
}

}  // namespace qunzu::identity
