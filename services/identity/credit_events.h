// Reliable delivery of identity's credit events (IDENTITY_VERIFIED sets the
// starting score, R7): the outbox topic "credit" carries serialized
// credit.v1.RecordEventRequest messages, and this receiver sends each to
// credit.v1.CreditService/RecordEvent with identity's service token. The
// request_id is the event id, so a redelivered record counts once.
#ifndef QUNZU_SERVICES_IDENTITY_CREDIT_EVENTS_H_
#define QUNZU_SERVICES_IDENTITY_CREDIT_EVENTS_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/outbox.h"
#include "qunzu/credit/v1/credit.grpc.pb.h"

namespace qunzu::identity {

class CreditEventReceiver final : public OutboxReceiver {
 public:
  CreditEventReceiver(const std::shared_ptr<grpc::Channel>& channel, std::string token,
                      absl::Duration deadline = absl::Seconds(10));

  // OK once credit acknowledged every record; the first failure fails the
  // batch (records before it were idempotently recorded and are resent).
  // A record that does not parse is logged and skipped: retrying cannot fix it.
  absl::Status Deliver(const std::vector<OutboxRecord>& batch) override;

 private:
  std::unique_ptr<credit::v1::CreditService::Stub> stub_;
  std::string token_;
  absl::Duration deadline_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_CREDIT_EVENTS_H_
