#include "services/moderation/hot_path_checks.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/agreement_versions.h"
#include "common/projection_keys.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

// Keep a group's activity hours a little beyond a 30-day window.
constexpr int64_t kActivityTtlSeconds = int64_t{32} * 24 * 3600;
// A rate window outlives its minute by one more.
constexpr int64_t kRateWindowTtlSeconds = 120;
// How long a claimed request id stays "pending" if its first call dies
// before recording the verdict; a retry after that screens afresh.
constexpr int64_t kPendingTtlMillis = 30000;
constexpr int64_t kMaxRatePerMinute = 1000000;

// Whether a unix-seconds expiry string ("0" or empty: never) is still ahead.
bool InForceUntil(const std::string& until, absl::Time now) {
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

CheckFailure RateLimited(v1::ScreenReasonCode code, absl::Time now) {
  CheckFailure failure = Fail(code);
  failure.reason.mutable_retry_after()->set_seconds(60 - absl::ToUnixSeconds(now) % 60);
  return failure;
}

absl::Status Unavailable(const std::string& why) {
  return MakeError(absl::StatusCode::kUnavailable, "PROJECTION_UNAVAILABLE",
                   "the screen cannot read its projections: " + why);
}

std::optional<CheckFailure> GroupStateFailure(const HotPathView& view, absl::Time now) {
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
  return std::nullopt;
}

// Steps 2-6, in order.
absl::StatusOr<std::optional<CheckFailure>> ProjectionChecks(const HotPathView& view,
                                                             const CheckContext& context) {
  const absl::Time now = context.now;
  if (view.sender_blacklist && InForceUntil(*view.sender_blacklist, now)) {
    return Fail(v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
  }
  if (view.group_blacklist && InForceUntil(*view.group_blacklist, now)) {
    return Fail(v1::SCREEN_REASON_CODE_GROUP_BLACKLISTED);
  }
  if (view.verified != "1") return Fail(v1::SCREEN_REASON_CODE_SENDER_NOT_VERIFIED);
  if (!view.platform_agreement_known) return Unavailable("no current agreement versions");
  if (!AgreementAccepted(view.agreement_version, view.service_agreement, now) ||
      !AgreementAccepted(view.convention_version, view.platform_convention, now)) {
    return Fail(v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  }
  if (std::optional<CheckFailure> failure = GroupStateFailure(view, now)) return failure;
  if (view.member_role.empty()) return Fail(v1::SCREEN_REASON_CODE_NOT_A_MEMBER);
  if (Ahead(view.muted_until, now)) {
    CheckFailure failure = Fail(v1::SCREEN_REASON_CODE_SENDER_MUTED);
    int64_t until = 0;
    if (absl::SimpleAtoi(view.muted_until, &until))
      failure.reason.mutable_until()->set_seconds(until);
    return failure;
  }
  int64_t sender_limit = 0;
  if (!absl::SimpleAtoi(view.messages_per_minute, &sender_limit)) {
    return Unavailable("no credit entitlement messages_per_minute for the sender");
  }
  if (view.sender_minute_count > sender_limit) {
    return RateLimited(v1::SCREEN_REASON_CODE_ACCOUNT_RATE_LIMITED, now);
  }
  if (view.group_minute_count > context.group_limits.For(view.group_tier)) {
    return RateLimited(v1::SCREEN_REASON_CODE_GROUP_RATE_LIMITED, now);
  }
  return std::optional<CheckFailure>();
}

absl::StatusOr<std::string> Field(const RedisReply& reply) {
  if (reply.is_nil()) return std::string();
  return reply.AsString();
}

}  // namespace

int64_t GroupRateLimits::For(const std::string& tier_name) const {
  common::v1::ScaleTier tier = common::v1::SCALE_TIER_UNSPECIFIED;
  if (!common::v1::ScaleTier_Parse(tier_name, &tier) ||
      tier == common::v1::SCALE_TIER_UNSPECIFIED) {
    tier = common::v1::SCALE_TIER_SMALL;
  }
  return per_minute[static_cast<size_t>(tier)];
}

absl::StatusOr<GroupRateLimits> ParseGroupRateLimits(const std::string& text,
                                                     const std::string& flag) {
  GroupRateLimits limits;
  std::array<bool, 5> seen = {};
  auto bad = [&](const std::string& why) {
    return InvalidField(flag, absl::StrCat("\"", text, "\": ", why));
  };
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    common::v1::ScaleTier tier = common::v1::SCALE_TIER_UNSPECIFIED;
    if (!common::v1::ScaleTier_Parse("SCALE_TIER_" + kv.first, &tier) ||
        tier == common::v1::SCALE_TIER_UNSPECIFIED) {
      return bad(absl::StrCat("unknown tier \"", kv.first, "\" (SMALL, MEDIUM, LARGE, HUGE)"));
    }
    const auto index = static_cast<size_t>(tier);
    int64_t limit = 0;
    if (!absl::SimpleAtoi(kv.second, &limit) || limit < 1 || limit > kMaxRatePerMinute) {
      return bad(absl::StrCat("the limit of ", kv.first, " must be 1..", kMaxRatePerMinute));
    }
    if (seen[index]) return bad(absl::StrCat(kv.first, " is given twice"));
    seen[index] = true;
    limits.per_minute[index] = limit;
  }
  for (size_t i = 1; i < seen.size(); ++i) {
    if (!seen[i]) {
      return bad(absl::StrCat(
          "missing ",
          common::v1::ScaleTier_Name(static_cast<common::v1::ScaleTier>(i)).substr(11)));
    }
  }
  limits.per_minute[0] = limits.per_minute[1];
  return limits;
}

common::v1::GroupCategory GroupCategoryOf(const HotPathView& view) {
  common::v1::GroupCategory category = common::v1::GROUP_CATEGORY_UNSPECIFIED;
  if (!common::v1::GroupCategory_Parse(view.group_category, &category)) {
    return common::v1::GROUP_CATEGORY_UNSPECIFIED;
  }
  return category;
}

absl::StatusOr<std::optional<CheckFailure>> EvaluateChecks(const HotPathView& view,
                                                           const CheckContext& context) {
  if (view.group_state.empty()) {
    return MakeError(absl::StatusCode::kNotFound, "GROUP_NOT_FOUND",
                     absl::StrCat("no group ", context.group_id),
                     {{"group_id", absl::StrCat(context.group_id)}});
  }
  std::optional<CheckFailure> hold;
  if (context.emergency.has_value()) {
    const bool suspend = context.emergency->level() == v1::EMERGENCY_LEVEL_SUSPEND_POSTING;
    CheckFailure failure =
        suspend ? Fail(v1::SCREEN_REASON_CODE_EMERGENCY_POSTING_SUSPENDED)
                : Fail(v1::SCREEN_REASON_CODE_EMERGENCY_HOLD_ALL, v1::SCREEN_VERDICT_HOLD);
    failure.reason.set_emergency_mode_id(context.emergency->emergency_mode_id());
    *failure.reason.mutable_until() = context.emergency->expires_at();
    if (suspend) return failure;
    hold = failure;
  }
  ASSIGN_OR_RETURN(std::optional<CheckFailure> failure, ProjectionChecks(view, context));
  if (failure.has_value()) return failure;
  return hold;
}

HotPathCounters CountersOf(const HotPathKeys& keys) {
  const int64_t unix_seconds = absl::ToUnixSeconds(keys.now);
  return HotPathCounters{projection::AccountRateKey(keys.sender_id, unix_seconds / 60),
                         projection::GroupRateKey(keys.group_id, unix_seconds / 60),
                         projection::GroupActivityKey(keys.group_id),
                         absl::StrCat(unix_seconds / 3600)};
}

std::vector<RedisCommand> HotPathCommands(const HotPathKeys& keys,
                                          const HotPathCounters& counters) {
  const std::string sender = absl::StrCat(keys.sender_id);
  // SET with both NX and GET (Redis 7.0 and later) claims the request id
  // and returns an earlier claim in the same command.
  return {
      {"SET", keys.request_key, "pending", "NX", "GET", "PX", absl::StrCat(kPendingTtlMillis)},
      {"GET", projection::AccountBlacklistKey(keys.sender_id)},
      {"GET", projection::GroupBlacklistKey(keys.group_id)},
      {"HMGET", projection::AccountIdentityKey(keys.sender_id), "verified", "agreement_version",
       "convention_version"},
      {"HMGET", projection::PlatformAgreementKey(), "agreement_version", "convention_version",
       "next_agreement_version", "next_agreement_effective_at", "next_convention_version",
       "next_convention_effective_at"},
      {"HMGET", projection::GroupKey(keys.group_id), "state", "posting_suspended_until", "category",
       "tier"},
      {"HGET", projection::GroupMembersKey(keys.group_id), sender},
      {"HGET", projection::GroupMutesKey(keys.group_id), sender},
      {"HGET", projection::AccountCreditKey(keys.sender_id), "messages_per_minute"},
      {"INCR", counters.sender_rate},
      {"INCR", counters.group_rate},
      {"HINCRBY", counters.activity, counters.hour, "1"},
  };
}

const std::vector<bool>& HotPathCacheable() {
  static const auto* cacheable = new std::vector<bool>{false, true, true, true,  true,  true,
                                                       true,  true, true, false, false, false};
  return *cacheable;
}

absl::StatusOr<HotPathView> ParseHotPathView(
    const HotPathCounters& counters, const absl::StatusOr<std::vector<RedisReply>>& replies) {
  if (!replies.ok()) return Unavailable(replies.status().ToString());
  const std::vector<bool>& reads = HotPathCacheable();
  for (size_t i = 0; i < replies->size(); ++i) {
    const RedisReply& reply = (*replies)[i];
    if (!reply.is_error()) continue;
    // What is not a projection read is the request claim or a counter, a
    // write: a full Redis under noeviction refuses those ("OOM ...") while
    // reads still work, and that is not a projection that cannot be read.
    if (i >= reads.size() || !reads[i]) {
      return MakeError(absl::StatusCode::kUnavailable, "REDIS_WRITE_REFUSED",
                       "Redis refused the screen's request claim or counters: " + reply.str(),
                       {{"redis_error", reply.str()}});
    }
    return Unavailable(reply.str());
  }
  const std::vector<RedisReply>& r = *replies;
  if (r.size() != kHotPathCommands || r[3].elements().size() != 3 || r[4].elements().size() != 6 ||
      r[5].elements().size() != 4) {
    return Unavailable("unexpected reply shape");
  }
  HotPathView view;
  auto read = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(view.earlier_record, r[0].AsOptionalString());
    ASSIGN_OR_RETURN(view.sender_blacklist, r[1].AsOptionalString());
    ASSIGN_OR_RETURN(view.group_blacklist, r[2].AsOptionalString());
    const auto& identity = r[3].elements();
    ASSIGN_OR_RETURN(view.verified, Field(identity[0]));
    ASSIGN_OR_RETURN(view.agreement_version, Field(identity[1]));
    ASSIGN_OR_RETURN(view.convention_version, Field(identity[2]));
    const auto& platform = r[4].elements();
    view.platform_agreement_known = !platform[0].is_nil();
    ASSIGN_OR_RETURN(view.service_agreement.current, Field(platform[0]));
    ASSIGN_OR_RETURN(view.platform_convention.current, Field(platform[1]));
    ASSIGN_OR_RETURN(view.service_agreement.next, Field(platform[2]));
    ASSIGN_OR_RETURN(view.service_agreement.next_effective_at, Field(platform[3]));
    ASSIGN_OR_RETURN(view.platform_convention.next, Field(platform[4]));
    ASSIGN_OR_RETURN(view.platform_convention.next_effective_at, Field(platform[5]));
    const auto& group = r[5].elements();
    ASSIGN_OR_RETURN(view.group_state, Field(group[0]));
    ASSIGN_OR_RETURN(view.posting_suspended_until, Field(group[1]));
    ASSIGN_OR_RETURN(view.group_category, Field(group[2]));
    ASSIGN_OR_RETURN(view.group_tier, Field(group[3]));
    ASSIGN_OR_RETURN(view.member_role, Field(r[6]));
    ASSIGN_OR_RETURN(view.muted_until, Field(r[7]));
    ASSIGN_OR_RETURN(view.messages_per_minute, Field(r[8]));
    ASSIGN_OR_RETURN(view.sender_minute_count, r[9].AsInteger());
    ASSIGN_OR_RETURN(view.group_minute_count, r[10].AsInteger());
    ASSIGN_OR_RETURN(const int64_t hour_count, r[11].AsInteger());
    // A counter that went to 1 was created by this call and has no TTL yet.
    // A window's key names its minute, so one left without a TTL (a crash
    // before the deferred EXPIRE) only takes memory, never limits anyone.
    view.activity_key = counters.activity;
    view.activity_hour = counters.hour;
    if (view.sender_minute_count == 1) {
      view.new_counter_expiries.push_back(
          {"EXPIRE", counters.sender_rate, absl::StrCat(kRateWindowTtlSeconds)});
    }
    if (view.group_minute_count == 1) {
      view.new_counter_expiries.push_back(
          {"EXPIRE", counters.group_rate, absl::StrCat(kRateWindowTtlSeconds)});
    }
    if (hour_count == 1) {
      view.new_counter_expiries.push_back(
          {"EXPIRE", counters.activity, absl::StrCat(kActivityTtlSeconds)});
    }
    return absl::OkStatus();
  };
  if (absl::Status status = read(); !status.ok()) return Unavailable(status.ToString());
  return view;
}

absl::StatusOr<HotPathView> ReadHotPathView(RedisClient& redis, const HotPathKeys& keys) {
  const HotPathCounters counters = CountersOf(keys);
  return ParseHotPathView(counters, redis.Pipeline(HotPathCommands(keys, counters)));
}

std::vector<RedisCommand> UndoCountingCommands(const HotPathCounters& counters) {
  return {{"DECR", counters.sender_rate},
          {"DECR", counters.group_rate},
          {"HINCRBY", counters.activity, counters.hour, "-1"}};
}

absl::Status UndoCounting(RedisClient& redis, const HotPathKeys& keys) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   redis.Pipeline(UndoCountingCommands(CountersOf(keys))));
  for (const RedisReply& reply : replies) RETURN_IF_ERROR(reply.ErrorStatus());
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
