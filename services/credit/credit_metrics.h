// Domain metrics of the credit service, with bounded labels only (event
// types and penalty kinds from the proto enums; never an account id).
#ifndef QUNZU_SERVICES_CREDIT_CREDIT_METRICS_H_
#define QUNZU_SERVICES_CREDIT_CREDIT_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "absl/container/flat_hash_map.h"
#include "qunzu/credit/v1/credit.pb.h"

namespace qunzu::credit {

// Every series exists from start with value 0. Thread-safe.
class CreditMetrics {
 public:
  explicit CreditMetrics(prometheus::Registry& registry);

  // qunzu_credit_events_recorded_total{event_type}: ledger events written
  // (replays excluded).
  void EventRecorded(v1::CreditEventType type);
  // qunzu_credit_penalties_total{kind,change="applied"|"lifted"}.
  void PenaltyApplied(v1::PenaltyKind kind);
  void PenaltyLifted(v1::PenaltyKind kind);
  // qunzu_credit_catch_up_entries_total: expiries and clean periods recorded
  // by credit itself.
  void CaughtUp(int entries);
  // qunzu_credit_projection_failures_total: Redis writes that failed after
  // a commit (the projection is then stale until the next change or rebuild).
  void ProjectionFailed();

 private:
  absl::flat_hash_map<int, prometheus::Counter*> events_;
  absl::flat_hash_map<int, prometheus::Counter*> applied_;
  absl::flat_hash_map<int, prometheus::Counter*> lifted_;
  prometheus::Counter* caught_up_;
  prometheus::Counter* projection_failures_;
};

}  // namespace qunzu::credit

#endif  // QUNZU_SERVICES_CREDIT_CREDIT_METRICS_H_
