// ScreenMessage's logic (DESIGN §2): validate, read every projection in one
// Redis round trip (hot_path_checks.h), decide steps 1-6, screen the content
// in process (step 7), send a HOLD to the review queue, and record the
// verdict for retries (screen_records.h). Plain C++, no gRPC types. No
// thread waits on Redis: the round trip goes through the non-blocking
// client, whose reply continues the screen on its loop thread; a HOLD,
// which writes to MySQL, continues on a small pool of its own.
#ifndef QUNZU_SERVICES_MODERATION_MESSAGE_SCREENER_H_
#define QUNZU_SERVICES_MODERATION_MESSAGE_SCREENER_H_

#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/auth.h"
#include "common/blocking_calls.h"
#include "common/clock.h"
#include "common/redis.h"
#include "common/redis_async.h"
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
  // Carries the hot path's round trip and its deferred writes.
  AsyncRedis& async_redis;
  RuleEngine& rules;
  EmergencyModes& emergency;
  ReviewQueue& review;
  ModerationMetrics* metrics = nullptr;
  const Clock& clock;
  GroupRateLimits group_limits;
  // Where the HOLD writers' pool is metered (pool="holds"); may be null.
  prometheus::Registry* registry = nullptr;
};

class MessageScreener {
 public:
  using Done = std::function<void(absl::StatusOr<v1::ScreenMessageResponse>)>;

  // Threads that write HOLDs to the review queue (MySQL).
  static constexpr int kHoldThreads = 4;

  explicit MessageScreener(const ScreenerDeps& deps);
  // Waits for the screens in progress (HOLDs included) and writes the last
  // records.
  ~MessageScreener();
  MessageScreener(const MessageScreener&) = delete;
  MessageScreener& operator=(const MessageScreener&) = delete;

  // ALLOW, BLOCK (the failing check's one reason, or every blocking content
  // rule) or HOLD (with the review report id). A retry with the same
  // request_id returns the first verdict, uncounted. Errors:
  // INVALID_ARGUMENT INVALID_FIELD; NOT_FOUND GROUP_NOT_FOUND; UNAVAILABLE
  // PROJECTION_UNAVAILABLE, EMERGENCY_MODES_UNAVAILABLE, RULES_NOT_LOADED,
  // REVIEW_QUEUE_UNAVAILABLE, SCREEN_IN_PROGRESS (fail closed: never ALLOW);
  // ALREADY_EXISTS REQUEST_ID_REUSED.
  //
  // done is called once: at once for invalid input, else on the Redis
  // client's loop thread or, for a HOLD, a hold thread. request must stay
  // alive until then.
  void ScreenAsync(const Caller& caller, const v1::ScreenMessageRequest& request, Done done);
  // ScreenAsync, waiting for its answer.
  absl::StatusOr<v1::ScreenMessageResponse> Screen(const Caller& caller,
                                                   const v1::ScreenMessageRequest& request);

  // Waits until every verdict given so far is recorded for retries (tests).
  void FlushRecords() { records_.Flush(); }

 private:
  struct Screening;
  // What steps 1-7 decided, before a HOLD is written.
  struct Decision {
    v1::ScreenMessageResponse response;
    bool hold = false;
  };

  // On the loop thread, with the pipeline's replies.
  void Continue(std::shared_ptr<Screening> screening,
                const absl::StatusOr<std::vector<RedisReply>>& replies);
  absl::StatusOr<Decision> Decide(const v1::ScreenMessageRequest& request, const HotPathView& view,
                                  absl::Time now);
  // Writes the HOLD to the review queue (a hold thread).
  void Hold(Screening& screening, v1::ScreenMessageResponse response);
  // Records a verdict for retries, takes a message not delivered off the
  // group's activity, counts it.
  void Record(Screening& screening, const v1::ScreenMessageResponse& response);
  // Answers (the screen is then done).
  void Finish(Screening& screening, absl::StatusOr<v1::ScreenMessageResponse> response);
  // Answers an error after the request id was claimed: frees it, so a
  // retry screens afresh.
  void Fail(Screening& screening, const absl::Status& status);

  // Runs one step of a screen; an exception answers INTERNAL.
  void Guarded(Screening& screening, const std::function<void()>& step);

  ScreenerDeps deps_;
  ScreenRecordWriter records_;

  absl::Mutex mu_;
  // Screens started and not yet answered.
  int in_progress_ ABSL_GUARDED_BY(mu_) = 0;
  // Where HOLDs are written. Last: by the time it stops, every screen has
  // answered (the destructor waits for that), so it holds nothing.
  BlockingCalls holds_;
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
