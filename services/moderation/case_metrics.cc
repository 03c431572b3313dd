#include "services/moderation/case_metrics.h"

#include <cppconn/resultset.h>

#include <string>

#include "common/mysql.h"
#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {

CaseMetrics::CaseMetrics(prometheus::Registry& registry) {
  auto& received = prometheus::BuildCounter()
                       .Name("qunzu_moderation_reports_received_total")
                       .Help(
                           "Reports received (submissions and messages the screen held for "
                           "review), by category.")
                       .Register(registry);
  auto& open = prometheus::BuildGauge()
                   .Name("qunzu_moderation_reports_open")
                   .Help("Reports not resolved yet, by category.")
                   .Register(registry);
  auto& overdue = prometheus::BuildGauge()
                      .Name("qunzu_moderation_reports_overdue")
                      .Help("Unresolved reports past their handling deadline, by category.")
                      .Register(registry);
  for (int c = 1; c <= v1::ContentCategory_MAX; ++c) {
    if (!v1::ContentCategory_IsValid(c)) continue;
    const std::string name = v1::ContentCategory_Name(static_cast<v1::ContentCategory>(c));
    received_[c] = &received.Add({{"category", name}});
    open_[c] = &open.Add({{"category", name}});
    overdue_[c] = &overdue.Add({{"category", name}});
  }
  auto& disposed = prometheus::BuildCounter()
                       .Name("qunzu_moderation_dispositions_total")
                       .Help("Dispositions applied, by kind.")
                       .Register(registry);
  for (int k = 1; k <= v1::DispositionKind_MAX; ++k) {
    if (!v1::DispositionKind_IsValid(k)) continue;
    disposed_[k] =
        &disposed.Add({{"kind", v1::DispositionKind_Name(static_cast<v1::DispositionKind>(k))}});
  }
  filings_pending_ = &prometheus::BuildGauge()
                          .Name("qunzu_moderation_filings_pending")
                          .Help("Filings not yet delivered to the authority.")
                          .Register(registry)
                          .Add({});
  stale_reservations_ =
      &prometheus::BuildGauge()
           .Name("qunzu_moderation_disposition_reservations_stale")
           .Help("Disposition reservations PENDING past the recovery's grace period.")
           .Register(registry)
           .Add({});
  auto& recoveries = prometheus::BuildCounter()
                         .Name("qunzu_moderation_disposition_recoveries_total")
                         .Help("Disposition reservations the recovery finished, by outcome.")
                         .Register(registry);
  recovered_ = &recoveries.Add({{"outcome", "recovered"}});
  abandoned_ = &recoveries.Add({{"outcome", "abandoned"}});
}

void CaseMetrics::ReportReceived(v1::ContentCategory category) {
  auto it = received_.find(category);
  if (it != received_.end()) it->second->Increment();
}

void CaseMetrics::Disposed(v1::DispositionKind kind) {
  auto it = disposed_.find(kind);
  if (it != disposed_.end()) it->second->Increment();
}

void CaseMetrics::StaleReservations(double count) { stale_reservations_->Set(count); }

void CaseMetrics::ReservationRecovered() { recovered_->Increment(); }

void CaseMetrics::ReservationAbandoned() { abandoned_->Increment(); }

absl::Status CaseMetrics::Refresh(MysqlPool& pool, absl::Time now) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool.Acquire(kCaseAcquireTimeout));
  std::map<int, double> open;
  std::map<int, double> overdue;
  RETURN_IF_ERROR(Query(*lease,
                        "SELECT category, COUNT(*), SUM(deadline < ?) FROM reports "
                        "WHERE state <> ? GROUP BY category",
                        {now, static_cast<int>(v1::REPORT_STATE_RESOLVED)},
                        [&](const sql::ResultSet& row) {
                          open[row.getInt(1)] = static_cast<double>(row.getInt64(2));
                          overdue[row.getInt(1)] = static_cast<double>(row.getInt64(3));
                          return absl::OkStatus();
                        }));
  double pending = 0;
  RETURN_IF_ERROR(Query(*lease, "SELECT COUNT(*) FROM filings WHERE delivery_state <> ?",
                        {static_cast<int>(v1::FILING_DELIVERY_STATE_DELIVERED)},
                        [&](const sql::ResultSet& row) {
                          pending = static_cast<double>(row.getInt64(1));
                          return absl::OkStatus();
                        }));
  for (auto& [c, gauge] : open_) gauge->Set(open[c]);
  for (auto& [c, gauge] : overdue_) gauge->Set(overdue[c]);
  filings_pending_->Set(pending);
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
