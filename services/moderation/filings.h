// Filings to the competent authority (R11.5): every disposition, revocation
// and blacklisting writes exactly one filing row and one outbox row (topic
// "filing") in its own transaction; the outbox relay hands them to
// FilingDelivery, which pushes each to the authority's
// FilingReceiver.ReceiveFiling (idempotent by filing_id there) and records
// the delivery state, attempts, last error and receipt shown by
// ListFilings. Delivery is retried with backoff until acknowledged; a
// filing already delivered is never sent again.
#ifndef QUNZU_SERVICES_MODERATION_FILINGS_H_
#define QUNZU_SERVICES_MODERATION_FILINGS_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "common/outbox.h"
#include "qunzu/moderation/v1/moderation.grpc.pb.h"

namespace qunzu::moderation {

// The outbox topic filings travel on.
inline constexpr char kFilingTopic[] = "filing";

// Records `filing` (kind, subject and record set) in conn's open
// transaction with its outbox row; sets and returns its filing_id.
absl::StatusOr<uint64_t> RecordFiling(sql::Connection& conn, v1::Filing* filing, absl::Time now);

class FilingStore {
 public:
  explicit FilingStore(MysqlPool& pool) : pool_(pool) {}
  // Newest first.
  absl::StatusOr<v1::ListFilingsResponse> List(const v1::ListFilingsRequest& request);

 private:
  MysqlPool& pool_;
};

// Pushes filings to the authority, one at a time in id order.
class FilingDelivery final : public OutboxReceiver {
 public:
  FilingDelivery(MysqlPool& pool, const std::shared_ptr<grpc::Channel>& channel,
                 std::string provider_name, absl::Duration deadline, const Clock& clock);
  absl::Status Deliver(const std::vector<OutboxRecord>& batch) override;

 private:
  absl::Status DeliverOne(uint64_t filing_id);

  MysqlPool& pool_;
  std::unique_ptr<v1::FilingReceiver::Stub> stub_;
  std::string provider_name_;
  absl::Duration deadline_;
  const Clock& clock_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_FILINGS_H_
