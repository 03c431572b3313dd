// The services a disposition takes effect at: groups (SetGroupState, R11.1)
// and credit (ApplyPenalty, LiftPenalty, R11.2). Behind interfaces so the
// disposition logic is tested with services that fail on demand; the gRPC
// clients call with this service's token and a deadline, and keep the
// callee's code and reason (UNAVAILABLE when it cannot be reached).
#ifndef QUNZU_SERVICES_MODERATION_CASE_CLIENTS_H_
#define QUNZU_SERVICES_MODERATION_CASE_CLIENTS_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/outbox.h"
#include "qunzu/credit/v1/credit.grpc.pb.h"
#include "qunzu/groups/v1/groups.grpc.pb.h"

namespace qunzu::moderation {

class GroupsClient {
 public:
  virtual ~GroupsClient() = default;
  // Idempotent by request.request_id.
  virtual absl::StatusOr<groups::v1::SetGroupStateResponse> SetGroupState(
      const groups::v1::SetGroupStateRequest& request) = 0;
};

class CreditClient {
 public:
  virtual ~CreditClient() = default;
  // Both idempotent by request_id.
  virtual absl::StatusOr<credit::v1::ApplyPenaltyResponse> ApplyPenalty(
      const credit::v1::ApplyPenaltyRequest& request) = 0;
  virtual absl::StatusOr<credit::v1::LiftPenaltyResponse> LiftPenalty(
      const credit::v1::LiftPenaltyRequest& request) = 0;
  virtual absl::StatusOr<credit::v1::RecordEventResponse> RecordEvent(
      const credit::v1::RecordEventRequest& request) = 0;
};

class GrpcGroupsClient final : public GroupsClient {
 public:
  GrpcGroupsClient(const std::shared_ptr<grpc::Channel>& channel, std::string token,
                   absl::Duration deadline);
  absl::StatusOr<groups::v1::SetGroupStateResponse> SetGroupState(
      const groups::v1::SetGroupStateRequest& request) override;

 private:
  std::unique_ptr<groups::v1::GroupService::Stub> stub_;
  std::string token_;
  absl::Duration deadline_;
};

class GrpcCreditClient final : public CreditClient {
 public:
  GrpcCreditClient(const std::shared_ptr<grpc::Channel>& channel, std::string token,
                   absl::Duration deadline);
  absl::StatusOr<credit::v1::ApplyPenaltyResponse> ApplyPenalty(
      const credit::v1::ApplyPenaltyRequest& request) override;
  absl::StatusOr<credit::v1::LiftPenaltyResponse> LiftPenalty(
      const credit::v1::LiftPenaltyRequest& request) override;
  absl::StatusOr<credit::v1::RecordEventResponse> RecordEvent(
      const credit::v1::RecordEventRequest& request) override;

 private:
  std::unique_ptr<credit::v1::CreditService::Stub> stub_;
  std::string token_;
  absl::Duration deadline_;
};

// Delivers the outbox topic "credit" (serialized RecordEventRequest
// messages written with the resolutions that cause them) to credit's
// RecordEvent; the request_id is the event id, so a resent record counts
// once. A record that does not parse is logged and skipped.
class CreditEventDelivery final : public OutboxReceiver {
 public:
  explicit CreditEventDelivery(CreditClient& credit) : credit_(credit) {}
  absl::Status Deliver(const std::vector<OutboxRecord>& batch) override;

 private:
  CreditClient& credit_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASE_CLIENTS_H_
