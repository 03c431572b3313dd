// The idempotency records of ScreenMessage (projection::ScreenRequestKey):
// the hot path's pipeline claims a request id with a short-lived "pending"
// (SET NX GET, no extra round trip), and the verdict is recorded here after
// the decision, posted on the hot path's non-blocking connection (it goes
// out with the next pipeline's write), so a first call costs one Redis
// round trip. A retry that arrives before its verdict is recorded
// sees "pending" and is told to retry (UNAVAILABLE SCREEN_IN_PROGRESS); a
// verdict that is never recorded (a crash) frees the id after the pending
// TTL. Why Redis and not MySQL's idempotency table: the screen must not put
// a MySQL write on every message, and a verdict a retry can no longer find
// after the record's TTL is screened afresh, which is safe (the review queue
// is itself idempotent by request id).
#ifndef QUNZU_SERVICES_MODERATION_SCREEN_RECORDS_H_
#define QUNZU_SERVICES_MODERATION_SCREEN_RECORDS_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis.h"
#include "common/redis_async.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// How long a recorded verdict answers retries.
inline constexpr absl::Duration kScreenRecordTtl = absl::Minutes(15);

// Writes the hot path's deferred Redis commands — verdict records, and the
// EXPIREs and activity corrections of its counters — as posted commands of
// the hot path's AsyncRedis: written with the next pipeline, so that none
// costs ScreenMessage a round trip or a system call of its own.
class ScreenRecordWriter {
 public:
  explicit ScreenRecordWriter(AsyncRedis& redis) : redis_(redis) {}

  // Posts the record of a first verdict.
  void Record(std::string key, const std::string& fingerprint,
              const v1::ScreenMessageResponse& response);

  // Posts a command that may wait for the next write (the EXPIRE of a new
  // counter, an activity count taken back); like records, it is logged and
  // dropped if Redis refuses it.
  void Defer(RedisCommand command) { redis_.Post(std::move(command)); }

  // Blocks until everything posted before the call has run (tests).
  void Flush();

 private:
  AsyncRedis& redis_;
};

// What an earlier record answers a retry with: its response when the
// fingerprint matches; UNAVAILABLE SCREEN_IN_PROGRESS while "pending";
// ALREADY_EXISTS REQUEST_ID_REUSED for another request under the same id.
absl::StatusOr<v1::ScreenMessageResponse> ReplayScreenRecord(const std::string& record,
                                                             const std::string& fingerprint);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_SCREEN_RECORDS_H_
