// How a service's state changes reach the audit log (DESIGN §1, R11.4,
// R13): an AuditEvent is written to the outbox in the same transaction as
// the change (RecordAuditEvent), and a relay delivers the rows to
// audit.AuditService/Append (AuditAppendReceiver), idempotent by
// (service, outbox id).
#ifndef QUNZU_COMMON_AUDIT_OUTBOX_H_
#define QUNZU_COMMON_AUDIT_OUTBOX_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/auth.h"
#include "common/outbox.h"
#include "qunzu/audit/v1/audit.grpc.pb.h"

namespace qunzu {

// The outbox topic audit events travel on.
inline constexpr char kAuditTopic[] = "audit";

// The client address in a gRPC peer string: "ipv4:203.0.113.7:5123" ->
// "203.0.113.7", "ipv6:[::1]:5123" -> "::1"; "" when there is none.
std::string ClientIpOfPeer(absl::string_view peer);

// An event filled with who called (principal, role), from where (peer),
// through which RPC (full method name) and with which request_id; the
// caller adds the action's subjects, outcome and details.
audit::v1::AuditEvent AuditEventFor(const Caller& caller, absl::string_view peer,
                                    absl::string_view method, absl::string_view action,
                                    absl::string_view request_id);

// Adds `event` to the outbox inside conn's open transaction; returns the
// outbox id, which becomes the event's source_id on delivery.
absl::StatusOr<int64_t> RecordAuditEvent(sql::Connection& conn, const audit::v1::AuditEvent& event);

// Delivers outbox batches to the audit service's Append RPC as `service`,
// authenticated with `token`, each call bounded by `deadline`. OK only when
// audit acknowledged the whole batch as durable.
class AuditAppendReceiver : public OutboxReceiver {
 public:
  AuditAppendReceiver(std::shared_ptr<grpc::Channel> channel, std::string service,
                      std::string token, absl::Duration deadline = absl::Seconds(10));

  absl::Status Deliver(const std::vector<OutboxRecord>& batch) override;

 private:
  std::unique_ptr<audit::v1::AuditService::Stub> stub_;
  std::string service_;
  std::string token_;
  absl::Duration deadline_;
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_AUDIT_OUTBOX_H_
