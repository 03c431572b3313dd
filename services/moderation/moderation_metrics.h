// Domain metrics of the content screen, with bounded labels only (verdicts
// and content categories from the proto enums; never an account or group).
#ifndef QUNZU_SERVICES_MODERATION_MODERATION_METRICS_H_
#define QUNZU_SERVICES_MODERATION_MODERATION_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// Every series exists from start with value 0. Thread-safe.
class ModerationMetrics {
 public:
  explicit ModerationMetrics(prometheus::Registry& registry);

  // qunzu_moderation_screened_total{verdict}: texts screened, and
  // qunzu_moderation_screen_seconds: time to normalise and match one.
  void Screened(v1::ScreenVerdict verdict, absl::Duration elapsed);
  // qunzu_moderation_rule_matches_total{category,action}: content rules that
  // decided a BLOCK or HOLD.
  void Matched(v1::ContentCategory category, v1::RuleAction action);
  // qunzu_moderation_message_verdicts_total{verdict,reason}: ScreenMessage
  // verdicts by the code of their first reason ("NONE" for ALLOW).
  void MessageVerdict(v1::ScreenVerdict verdict, v1::ScreenReasonCode reason);
  // qunzu_moderation_message_failures_total{reason}: ScreenMessage calls
  // answered with an error, by its reason (PROJECTION_UNAVAILABLE,
  // REDIS_WRITE_REFUSED, ... — reasons of our own code, so a bounded set).
  void MessageFailed(const absl::Status& status);
  // qunzu_moderation_hot_path_redis_seconds: ScreenMessage's one Redis round
  // trip, from handing its pipeline over to its replies (answered ones only;
  // a failed one is a failure above). Tells a slow Redis, or a Redis
  // starved of CPU, from a slow service.
  void HotPathRoundTrip(absl::Duration elapsed);

 private:
  std::vector<prometheus::Counter*> screened_;
  std::vector<prometheus::Counter*> blocked_;
  std::vector<prometheus::Counter*> held_;
  prometheus::Histogram* latency_;
  prometheus::Histogram* round_trip_;
  // [verdict][reason code]
  std::vector<std::vector<prometheus::Counter*>> verdicts_;
  prometheus::Family<prometheus::Counter>* failures_;
  // The hot path's own reasons, made at start (read-only after).
  std::map<std::string, prometheus::Counter*, std::less<>> known_failures_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MODERATION_METRICS_H_
