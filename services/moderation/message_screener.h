// ScreenMessage's logic (DESIGN §2): validate, read every projection in one
// Redis round trip (hot_path_checks.h), decide steps 1-6, screen the content
// in process (step 7), send a HOLD to the review queue, and record the
// verdict for retries (screen_records.h). Plain C++, no gRPC types.
#ifndef QUNZU_SERVICES_MODERATION_MESSAGE_SCREENER_H_
#define QUNZU_SERVICES_MODERATION_MESSAGE_SCREENER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/redis.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/emergency_modes.h"
#include "services/moderation/hot_path_checks.h"
#include "services/moderation/moderation_metrics.h"
#include "services/moderation/review_queue.h"
#include "services/moderation/rule_engine.h"
#include "services/moderation/screen_records.h"

namespace qunzu::moderation {

// What the screener is built from; all must outlive it. metrics may be null.
struct ScreenerDeps {
  RedisClient& redis;
  RuleEngine& rules;
  EmergencyModes& emergency;
  ReviewQueue& review;
  ModerationMetrics* metrics = nullptr;
  const Clock& clock;
  GroupRateLimits group_limits;
};

class MessageScreener {
 public:
  explicit MessageScreener(const ScreenerDeps& deps);

  // ALLOW, BLOCK (the failing check's one reason, or every blocking content
  // rule) or HOLD (with the review report id). A retry with the same
  // request_id returns the first verdict, uncounted. Errors:
  // INVALID_ARGUMENT INVALID_FIELD; NOT_FOUND GROUP_NOT_FOUND; UNAVAILABLE
  // PROJECTION_UNAVAILABLE, EMERGENCY_MODES_UNAVAILABLE, RULES_NOT_LOADED,
  // REVIEW_QUEUE_UNAVAILABLE, SCREEN_IN_PROGRESS (fail closed: never ALLOW);
  // ALREADY_EXISTS REQUEST_ID_REUSED.
  absl::StatusOr<v1::ScreenMessageResponse> Screen(const Caller& caller,
                                                   const v1::ScreenMessageRequest& request);

  // Waits until every verdict given so far is recorded for retries (tests).
  void FlushRecords() { records_.Flush(); }

 private:
  absl::StatusOr<v1::ScreenMessageResponse> Decide(const v1::ScreenMessageRequest& request,
                                                   const HotPathView& view, absl::Time now);

  ScreenerDeps deps_;
  ScreenRecordWriter records_;
};

// INVALID_FIELD naming the field: request_id, actor_account_id, group_id,
// message_id (1..128 bytes of UTF-8), text (1..10,000 characters of valid
// UTF-8), client_ip (at most 64).
absl::Status ValidateScreenMessage(const v1::ScreenMessageRequest& request);

// A content match as a reason (code CONTENT_RULE) with its span in the
// original text.
void FillContentReason(const RuleSnapshot& snapshot, const RuleMatch& match,
                       v1::ScreenReason* reason);

v1::ScreenVerdict ToProto(Verdict verdict);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MESSAGE_SCREENER_H_
