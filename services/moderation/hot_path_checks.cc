#include "services/moderation/hot_path_checks.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

// Keep a group's activity hours a little beyond a 30-day window.
constexpr int64_t kActivityTtlSeconds = int64_t{32} * 24 * 3600;

// Whether a unix-seconds expiry string ("0" or empty: never) is still ahead.
bool InForce(const std::string& until, absl::Time now) {
  int64_t seconds = 0;
  if (until.empty() || !absl::SimpleAtoi(until, &seconds) || seconds == 0) return true;
  return absl::FromUnixSeconds(seconds) > now;
}

bool Ahead(const std::string& until, absl::Time now) {
  int64_t seconds = 0;
  return absl::SimpleAtoi(until, &seconds) && seconds != 0 && absl::FromUnixSeconds(seconds) > now;
}

CheckFailure Fail(v1::ScreenReasonCode code, v1::ScreenVerdict verdict = v1::SCREEN_VERDICT_BLOCK) {
  CheckFailure failure;
  failure.verdict = verdict;
  failure.reason.set_code(code);
  return failure;
}

absl::StatusOr<std::string> Field(const RedisReply& reply) {
  if (reply.is_nil()) return std::string();
  return reply.AsString();
}

}  // namespace

absl::StatusOr<std::optional<CheckFailure>> EvaluateChecks(const HotPathView& view,
                                                           uint64_t group_id, absl::Time now) {
  if (view.sender_blacklist && InForce(*view.sender_blacklist, now)) {
    return Fail(v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
  }
  if (view.group_blacklist && InForce(*view.group_blacklist, now)) {
    return Fail(v1::SCREEN_REASON_CODE_GROUP_BLACKLISTED);
  }
  if (view.verified != "1") return Fail(v1::SCREEN_REASON_CODE_SENDER_NOT_VERIFIED);
  if (view.agreement_version.empty()) return Fail(v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  if (view.group_state.empty()) {
    return MakeError(absl::StatusCode::kNotFound, "GROUP_NOT_FOUND",
                     absl::StrCat("no group ", group_id), {{"group_id", absl::StrCat(group_id)}});
  }
  if (view.group_state == "GROUP_STATE_CLOSED") return Fail(v1::SCREEN_REASON_CODE_GROUP_CLOSED);
  if (view.group_state == "GROUP_STATE_POSTING_SUSPENDED" ||
      Ahead(view.posting_suspended_until, now)) {
    CheckFailure failure = Fail(v1::SCREEN_REASON_CODE_GROUP_POSTING_SUSPENDED);
    int64_t until = 0;
    if (absl::SimpleAtoi(view.posting_suspended_until, &until) && until > 0) {
      failure.reason.mutable_until()->set_seconds(until);
    }
    return failure;
  }
  if (view.group_state != "GROUP_STATE_ACTIVE" && view.group_state != "GROUP_STATE_WARNED") {
    return Fail(v1::SCREEN_REASON_CODE_GROUP_NOT_ACTIVE);
  }
  if (view.member_role.empty()) return Fail(v1::SCREEN_REASON_CODE_NOT_A_MEMBER);
  if (Ahead(view.muted_until, now)) {
    CheckFailure failure = Fail(v1::SCREEN_REASON_CODE_SENDER_MUTED);
    int64_t until = 0;
    if (absl::SimpleAtoi(view.muted_until, &until))
      failure.reason.mutable_until()->set_seconds(until);
    return failure;
  }
  return std::optional<CheckFailure>();
}

absl::StatusOr<HotPathView> ReadHotPathView(RedisClient& redis, uint64_t sender_id,
                                            uint64_t group_id, absl::Time now) {
  const std::string sender = absl::StrCat(sender_id);
  const std::string activity = projection::GroupActivityKey(group_id);
  const std::vector<RedisCommand> commands = {
      {"GET", projection::AccountBlacklistKey(sender_id)},
      {"GET", projection::GroupBlacklistKey(group_id)},
      {"HMGET", projection::AccountIdentityKey(sender_id), "verified", "agreement_version"},
      {"HMGET", projection::GroupKey(group_id), "state", "posting_suspended_until"},
      {"HGET", projection::GroupMembersKey(group_id), sender},
      {"HGET", projection::GroupMutesKey(group_id), sender},
      {"HINCRBY", activity, absl::StrCat(absl::ToUnixSeconds(now) / 3600), "1"},
      {"EXPIRE", activity, absl::StrCat(kActivityTtlSeconds)},
  };
  absl::StatusOr<std::vector<RedisReply>> replies = redis.Pipeline(commands);
  auto unavailable = [](const std::string& why) {
    return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                     "the screen cannot read its projections: " + why);
  };
  if (!replies.ok()) return unavailable(replies.status().ToString());
  for (const RedisReply& reply : *replies) {
    if (reply.is_error()) return unavailable(reply.str());
  }
  const std::vector<RedisReply>& r = *replies;
  if (r[2].elements().size() != 2 || r[3].elements().size() != 2) {
    return unavailable("unexpected HMGET reply");
  }
  HotPathView view;
  auto optional = [](const RedisReply& reply) -> absl::StatusOr<std::optional<std::string>> {
    return reply.AsOptionalString();
  };
  auto read = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(view.sender_blacklist, optional(r[0]));
    ASSIGN_OR_RETURN(view.group_blacklist, optional(r[1]));
    ASSIGN_OR_RETURN(view.verified, Field(r[2].elements()[0]));
    ASSIGN_OR_RETURN(view.agreement_version, Field(r[2].elements()[1]));
    ASSIGN_OR_RETURN(view.group_state, Field(r[3].elements()[0]));
    ASSIGN_OR_RETURN(view.posting_suspended_until, Field(r[3].elements()[1]));
    ASSIGN_OR_RETURN(view.member_role, Field(r[4]));
    ASSIGN_OR_RETURN(view.muted_until, Field(r[5]));
    return absl::OkStatus();
  };
  if (absl::Status status = read(); !status.ok()) return unavailable(status.ToString());
  return view;
}

}  // namespace qunzu::moderation
