// Steps 2-5 of the per-message hot path (DESIGN §2): blacklists, sender
// verified and agreement accepted, group state, membership and mute, from
// the projections of identity, groups and moderation read in one Redis
// round trip, which also counts the message toward the group's activity
// (R7.1). Steps 1 (emergency modes) and 6 (rate limits) are not built yet,
// so ScreenMessage is not exposed (issue 7).
#ifndef QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_
#define QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// What the hot path reads about one sender in one group. Absent hash
// fields are empty strings.
struct HotPathView {
  // Blacklist expiry (unix seconds, "0" for none) when an entry exists.
  std::optional<std::string> sender_blacklist;
  std::optional<std::string> group_blacklist;
  std::string verified;
  std::string agreement_version;
  std::string group_state;
  std::string posting_suspended_until;
  // Member role name; empty when not a member.
  std::string member_role;
  std::string muted_until;
};

// The first failing check as a reason (with its verdict), or nullopt when
// steps 2-5 all pass. A group with no projection is NOT_FOUND
// GROUP_NOT_FOUND.
struct CheckFailure {
  v1::ScreenVerdict verdict = v1::SCREEN_VERDICT_BLOCK;
  v1::ScreenReason reason;
};
absl::StatusOr<std::optional<CheckFailure>> EvaluateChecks(const HotPathView& view,
                                                           uint64_t group_id, absl::Time now);

// Reads the view and counts the message in the group's activity hash, in
// one pipeline. UNAVAILABLE PROJECTION_UNAVAILABLE when Redis cannot be
// read (the caller fails closed).
absl::StatusOr<HotPathView> ReadHotPathView(RedisClient& redis, uint64_t sender_id,
                                            uint64_t group_id, absl::Time now);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_
