// Steps 1-6 of the per-message hot path (DESIGN §2): emergency mode,
// blacklists, sender verified and current agreement accepted, group state,
// membership and mute, rate limits by credit level and group tier. Every
// projection they need (identity, credit, groups, moderation's own) is read
// in ONE Redis pipeline, which also claims the request id, counts the
// message in the rate windows and toward the group's activity (R7.1).
// Emergency modes are held in process (emergency_modes.h), so step 1 adds
// no round trip.
#ifndef QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_
#define QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/agreement_versions.h"
#include "common/redis.h"
#include "qunzu/common/v1/domain.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

// What the hot path reads about one sender in one group. Absent hash
// fields are empty strings.
struct HotPathView {
  // The request id's earlier record (see projection::ScreenRequestKey) when
  // this is a retry; nullopt on first use (the pipeline claimed it).
  std::optional<std::string> earlier_record;
  // Blacklist expiry (unix seconds, "0" for none) when an entry exists.
  std::optional<std::string> sender_blacklist;
  std::optional<std::string> group_blacklist;
  std::string verified;
  std::string agreement_version;
  std::string convention_version;
  // projection::PlatformAgreementKey; platform_agreement_known is false
  // when identity has not written it (the check fails closed).
  bool platform_agreement_known = false;
  PublishedAgreement service_agreement;
  PublishedAgreement platform_convention;
  std::string group_state;
  std::string posting_suspended_until;
  std::string group_category;
  std::string group_tier;
  // Member role name; empty when not a member.
  std::string member_role;
  std::string muted_until;
  // From the sender's credit projection; empty when credit has not written it.
  std::string messages_per_minute;
  // Messages in this minute's windows, this one included.
  int64_t sender_minute_count = 0;
  int64_t group_minute_count = 0;
  // The EXPIREs of the counters this call created (the first message of a
  // rate window or of an activity hour), for the caller to send off the hot
  // path (ScreenRecordWriter::Defer): one pipeline of 12 commands instead
  // of 15, and an EXPIRE a minute per window instead of one per message.
  std::vector<RedisCommand> new_counter_expiries;
  // The group's activity hash and the hour field this message was counted
  // in, for taking the count back when the message is not delivered.
  std::string activity_key;
  std::string activity_hour;
};

// Messages per minute a group may carry, by ScaleTier (index = enum
// value). A group whose tier is missing or unknown gets the SMALL limit.
struct GroupRateLimits {
  std::array<int64_t, 5> per_minute = {60, 60, 120, 300, 600};
  int64_t For(const std::string& tier_name) const;
};

// Parses "SMALL=60,MEDIUM=120,LARGE=300,HUGE=600" (every tier once, each
// limit 1..1,000,000); INVALID_ARGUMENT naming `flag` otherwise.
absl::StatusOr<GroupRateLimits> ParseGroupRateLimits(const std::string& text,
                                                     const std::string& flag);

// What the checks are evaluated with besides the view.
struct CheckContext {
  uint64_t group_id = 0;
  absl::Time now;
  // Step 1: the emergency mode that applies to this group, if any.
  std::optional<v1::EmergencyMode> emergency;
  GroupRateLimits group_limits;
};

// The first failing check as a reason (with its verdict), or nullopt when
// steps 1-6 all pass. SUSPEND_POSTING blocks before anything else; HOLD_ALL
// comes back as a HOLD only when steps 2-6 pass (a message that would be
// refused anyway is blocked, not sent to a moderator); the caller still
// screens its content. Errors: NOT_FOUND GROUP_NOT_FOUND (no group
// projection); UNAVAILABLE PROJECTION_UNAVAILABLE when the agreement or
// credit projection is missing (fail closed).
struct CheckFailure {
  v1::ScreenVerdict verdict = v1::SCREEN_VERDICT_BLOCK;
  v1::ScreenReason reason;
};
absl::StatusOr<std::optional<CheckFailure>> EvaluateChecks(const HotPathView& view,
                                                           const CheckContext& context);

// The group's category from the view (UNSPECIFIED when unknown).
common::v1::GroupCategory GroupCategoryOf(const HotPathView& view);

// The keys one screen touches, for ReadHotPathView and UndoCounting.
struct HotPathKeys {
  uint64_t sender_id = 0;
  uint64_t group_id = 0;
  // projection::ScreenRequestKey of the request.
  std::string request_key;
  absl::Time now;
};

// The counters one screen increments (rate windows of this minute, the
// group's activity hour), named once for the pipeline, the view and the
// undo.
struct HotPathCounters {
  std::string sender_rate;
  std::string group_rate;
  std::string activity;
  std::string hour;
};
HotPathCounters CountersOf(const HotPathKeys& keys);

// The one pipeline of the hot path: claims the request key (SET NX, a
// short-lived "pending"), reads the view and counts the message.
inline constexpr size_t kHotPathCommands = 12;
std::vector<RedisCommand> HotPathCommands(const HotPathKeys& keys, const HotPathCounters& counters);
// Which of them a client-side cache may answer: the projections' reads
// (steps 2-6); the others, the claim and the counters, are the writes.
const std::vector<bool>& HotPathCacheable();
// The view in the pipeline's replies. UNAVAILABLE PROJECTION_UNAVAILABLE
// when Redis could not be read (the caller fails closed).
absl::StatusOr<HotPathView> ParseHotPathView(
    const HotPathCounters& counters, const absl::StatusOr<std::vector<RedisReply>>& replies);
// Both on the blocking client.
absl::StatusOr<HotPathView> ReadHotPathView(RedisClient& redis, const HotPathKeys& keys);

// Takes back the counting of the hot path's pipeline (for a retry, which
// must not count twice).
std::vector<RedisCommand> UndoCountingCommands(const HotPathCounters& counters);
absl::Status UndoCounting(RedisClient& redis, const HotPathKeys& keys);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_HOT_PATH_CHECKS_H_
