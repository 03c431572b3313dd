#include "services/moderation/moderation_metrics.h"

#include <string>

#include "common/status.h"

namespace qunzu::moderation {

ModerationMetrics::ModerationMetrics(prometheus::Registry& registry) {
  auto& screened = prometheus::BuildCounter()
                       .Name("qunzu_moderation_screened_total")
                       .Help("Texts screened by the content rules, by verdict.")
                       .Register(registry);
  for (int v = 0; v <= v1::ScreenVerdict_MAX; ++v) {
    screened_.push_back(
        &screened.Add({{"verdict", v1::ScreenVerdict_Name(static_cast<v1::ScreenVerdict>(v))}}));
  }
  auto& matches = prometheus::BuildCounter()
                      .Name("qunzu_moderation_rule_matches_total")
                      .Help("Content rule matches that blocked or held a text, by category.")
                      .Register(registry);
  for (int c = 0; c <= v1::ContentCategory_MAX; ++c) {
    const std::string name = v1::ContentCategory_Name(static_cast<v1::ContentCategory>(c));
    blocked_.push_back(&matches.Add({{"category", name}, {"action", "BLOCK"}}));
    held_.push_back(&matches.Add({{"category", name}, {"action", "HOLD"}}));
  }
  auto& verdicts = prometheus::BuildCounter()
                       .Name("qunzu_moderation_message_verdicts_total")
                       .Help("ScreenMessage verdicts by the code of their first reason.")
                       .Register(registry);
  for (int v = 0; v <= v1::ScreenVerdict_MAX; ++v) {
    const std::string verdict = v1::ScreenVerdict_Name(static_cast<v1::ScreenVerdict>(v));
    verdicts_.emplace_back();
    for (int c = 0; c <= v1::ScreenReasonCode_MAX; ++c) {
      const std::string reason =
          c == 0 ? "NONE" : v1::ScreenReasonCode_Name(static_cast<v1::ScreenReasonCode>(c));
      verdicts_.back().push_back(&verdicts.Add({{"verdict", verdict}, {"reason", reason}}));
    }
  }
  failures_ = &prometheus::BuildCounter()
                   .Name("qunzu_moderation_message_failures_total")
                   .Help("ScreenMessage calls answered with an error, by its reason.")
                   .Register(registry);
  for (const char* reason :
       {"PROJECTION_UNAVAILABLE", "REDIS_WRITE_REFUSED", "REVIEW_QUEUE_UNAVAILABLE",
        "EMERGENCY_MODES_UNAVAILABLE", "SCREEN_IN_PROGRESS", "REQUEST_ID_REUSED",
        "IDEMPOTENCY_CORRUPT", "GROUP_NOT_FOUND", "INVALID_FIELD", "INTERNAL_ERROR"}) {
    known_failures_.emplace(reason, &failures_->Add({{"reason", reason}}));
  }
  latency_ = &prometheus::BuildHistogram()
                  .Name("qunzu_moderation_screen_seconds")
                  .Help("Time to normalise and match one text.")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.00001, 0.00003, 0.0001, 0.0003,
                                                                   0.001, 0.003, 0.01, 0.03});
  round_trip_ = &prometheus::BuildHistogram()
                     .Name("qunzu_moderation_hot_path_redis_seconds")
                     .Help(
                         "ScreenMessage's Redis round trip, from handing the pipeline over to "
                         "its replies.")
                     .Register(registry)
                     .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0003, 0.001, 0.002,
                                                                      0.005, 0.01, 0.03, 0.1, 0.3});
}

void ModerationMetrics::HotPathRoundTrip(absl::Duration elapsed) {
  round_trip_->Observe(absl::ToDoubleSeconds(elapsed));
}

void ModerationMetrics::Screened(v1::ScreenVerdict verdict, absl::Duration elapsed) {
  const auto index = static_cast<size_t>(verdict);
  if (index < screened_.size()) screened_[index]->Increment();
  latency_->Observe(absl::ToDoubleSeconds(elapsed));
}

void ModerationMetrics::Matched(v1::ContentCategory category, v1::RuleAction action) {
  const auto index = static_cast<size_t>(category);
  if (index >= blocked_.size()) return;
  (action == v1::RULE_ACTION_HOLD ? held_ : blocked_)[index]->Increment();
}

void ModerationMetrics::MessageVerdict(v1::ScreenVerdict verdict, v1::ScreenReasonCode reason) {
  const auto v = static_cast<size_t>(verdict);
  const auto r = static_cast<size_t>(reason);
  if (v < verdicts_.size() && r < verdicts_[v].size()) verdicts_[v][r]->Increment();
}

void ModerationMetrics::MessageFailed(const absl::Status& status) {
  const std::string reason = ErrorReason(status);
  if (auto known = known_failures_.find(reason); known != known_failures_.end()) {
    known->second->Increment();
    return;
  }
  failures_->Add({{"reason", reason}}).Increment();
}

}  // namespace qunzu::moderation
