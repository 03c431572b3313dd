#include "common/audit_outbox.h"

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace qunzu {

std::string ClientIpOfPeer(absl::string_view peer) {
  absl::string_view rest;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    rest = peer.substr(0, peer.rfind(':'));
  } else if (absl::ConsumePrefix(&peer, "ipv6:")) {
    rest = peer.substr(0, peer.rfind(':'));
    absl::ConsumePrefix(&rest, "[");
    absl::ConsumeSuffix(&rest, "]");
  }
  return std::string(rest);
}

audit::v1::AuditEvent AuditEventFor(const Caller& caller, absl::string_view peer,
                                    absl::string_view method, absl::string_view action,
                                    absl::string_view request_id) {
  audit::v1::AuditEvent event;
  event.set_principal(caller.principal);
  event.set_role(caller.role);
  event.set_client_ip(ClientIpOfPeer(peer));
  event.set_method(std::string(method));
  event.set_action(std::string(action));
  event.set_request_id(std::string(request_id));
  return event;
}

absl::StatusOr<int64_t> RecordAuditEvent(sql::Connection& conn,
                                         const audit::v1::AuditEvent& event) {
  std::string payload;
  if (!event.SerializeToString(&payload)) {
    return MakeError(absl::StatusCode::kInternal, "AUDIT_EVENT_UNSERIALIZABLE",
                     "audit event could not be serialized");
  }
  return OutboxWriter().Add(conn, kAuditTopic, payload);
}

AuditAppendReceiver::AuditAppendReceiver(std::shared_ptr<grpc::Channel> channel,
                                         std::string service, std::string token,
                                         absl::Duration deadline)
    : stub_(audit::v1::AuditService::NewStub(std::move(channel))),
      service_(std::move(service)),
      token_(std::move(token)),
      deadline_(deadline) {}

absl::Status AuditAppendReceiver::Deliver(const std::vector<OutboxRecord>& batch) {
  if (batch.empty()) return absl::OkStatus();
  audit::v1::AppendRequest request;
  // The same rows always form the same request_id, so a retried batch is
  // recognised as such; entries are deduplicated one by one as well.
  request.set_request_id(
      absl::StrCat(service_, "-outbox-", batch.front().id, "-", batch.back().id));
  for (const OutboxRecord& record : batch) {
    audit::v1::AuditEvent* event = request.add_events();
    if (!event->ParseFromString(record.payload)) {
      return MakeError(absl::StatusCode::kDataLoss, "AUDIT_OUTBOX_CORRUPT",
                       absl::StrCat("outbox record ", record.id, " is not an AuditEvent"));
    }
    event->set_service(service_);
    event->set_source_id(static_cast<uint64_t>(record.id));
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(deadline_));
  context.AddMetadata("authorization", "Bearer " + token_);
  audit::v1::AppendResponse response;
  grpc::Status status = stub_->Append(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  if (response.results_size() != request.events_size()) {
    return MakeError(absl::StatusCode::kInternal, "AUDIT_APPEND_INCOMPLETE",
                     absl::StrCat("audit acknowledged ", response.results_size(), " of ",
                                  request.events_size(), " events"));
  }
  return absl::OkStatus();
}

}  // namespace qunzu
