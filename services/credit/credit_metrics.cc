#include "services/credit/credit_metrics.h"

namespace qunzu::credit {

CreditMetrics::CreditMetrics(prometheus::Registry& registry) {
  auto& events = prometheus::BuildCounter()
                     .Name("qunzu_credit_events_recorded_total")
                     .Help("Credit ledger events recorded, by event type.")
                     .Register(registry);
  for (int type = v1::CreditEventType_MIN; type <= v1::CreditEventType_MAX; ++type) {
    if (!v1::CreditEventType_IsValid(type) || type == v1::CREDIT_EVENT_TYPE_UNSPECIFIED) continue;
    events_[type] = &events.Add(
        {{"event_type", v1::CreditEventType_Name(static_cast<v1::CreditEventType>(type))}});
  }
  auto& penalties = prometheus::BuildCounter()
                        .Name("qunzu_credit_penalties_total")
                        .Help("Credit penalties applied or lifted early, by kind.")
                        .Register(registry);
  for (int kind = v1::PenaltyKind_MIN; kind <= v1::PenaltyKind_MAX; ++kind) {
    if (!v1::PenaltyKind_IsValid(kind) || kind == v1::PENALTY_KIND_UNSPECIFIED) continue;
    const std::string name = v1::PenaltyKind_Name(static_cast<v1::PenaltyKind>(kind));
    applied_[kind] = &penalties.Add({{"kind", name}, {"change", "applied"}});
    lifted_[kind] = &penalties.Add({{"kind", name}, {"change", "lifted"}});
  }
  caught_up_ = &prometheus::BuildCounter()
                    .Name("qunzu_credit_catch_up_entries_total")
                    .Help("Penalty expiries and clean periods recorded by credit itself.")
                    .Register(registry)
                    .Add({});
  projection_failures_ = &prometheus::BuildCounter()
                              .Name("qunzu_credit_projection_failures_total")
                              .Help("Redis projection writes that failed after a commit.")
                              .Register(registry)
                              .Add({});
}

void CreditMetrics::EventRecorded(v1::CreditEventType type) {
  if (auto it = events_.find(type); it != events_.end()) it->second->Increment();
}

void CreditMetrics::PenaltyApplied(v1::PenaltyKind kind) {
  if (auto it = applied_.find(kind); it != applied_.end()) it->second->Increment();
}

void CreditMetrics::PenaltyLifted(v1::PenaltyKind kind) {
  if (auto it = lifted_.find(kind); it != lifted_.end()) it->second->Increment();
}

void CreditMetrics::CaughtUp(int entries) {
  if (entries > 0) caught_up_->Increment(entries);
}

void CreditMetrics::ProjectionFailed() { projection_failures_->Increment(); }

}  // namespace qunzu::credit
