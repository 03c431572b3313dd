// Domain metrics of the case handling (names fixed: the Prometheus rules
// and dashboard use them): qunzu_moderation_reports_open{category},
// qunzu_moderation_reports_overdue{category},
// qunzu_moderation_filings_pending, qunzu_moderation_dispositions_total{kind},
// qunzu_moderation_reports_received_total{category},
// qunzu_moderation_disposition_reservations_stale,
// qunzu_moderation_disposition_recoveries_total{outcome} (outcome
// "recovered" or "abandoned"). Labels are the proto enum names; every series
// exists from start. Thread-safe.
#ifndef QUNZU_SERVICES_MODERATION_CASE_METRICS_H_
#define QUNZU_SERVICES_MODERATION_CASE_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

class CaseMetrics {
 public:
  explicit CaseMetrics(prometheus::Registry& registry);

  void ReportReceived(v1::ContentCategory category);
  void Disposed(v1::DispositionKind kind);
  // DispositionRecovery: PENDING reservations older than the grace period
  // left after a pass, and each one it recovered or abandoned.
  void StaleReservations(double count);
  void ReservationRecovered();
  void ReservationAbandoned();
  // Sets the open, overdue and pending-filing gauges from MySQL at `now`.
  absl::Status Refresh(MysqlPool& pool, absl::Time now);

 private:
  std::map<int, prometheus::Counter*> received_;
  std::map<int, prometheus::Counter*> disposed_;
  std::map<int, prometheus::Gauge*> open_;
  std::map<int, prometheus::Gauge*> overdue_;
  prometheus::Gauge* filings_pending_;
  prometheus::Gauge* stale_reservations_;
  prometheus::Counter* recovered_;
  prometheus::Counter* abandoned_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_CASE_METRICS_H_
