// Steps 1-6 of the hot path: each check on views the test builds, the order
// (which reason wins when several fail), the group tiers' rate limits, and
// the one-pipeline reader against real Redis with projections the test
// writes.
#include "services/moderation/hot_path_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/moderation/proto_time.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

HotPathView Passing() {
  HotPathView view;
  view.verified = "1";
  view.agreement_version = "3";
  view.convention_version = "1";
  view.platform_agreement_known = true;
  view.service_agreement.current = "3";
  view.platform_convention.current = "1";
  view.group_state = "GROUP_STATE_ACTIVE";
  view.posting_suspended_until = "0";
  view.group_category = "GROUP_CATEGORY_FINANCE";
  view.group_tier = "SCALE_TIER_SMALL";
  view.member_role = "MEMBER_ROLE_MEMBER";
  view.messages_per_minute = "20";
  view.sender_minute_count = 1;
  view.group_minute_count = 1;
  return view;
}

v1::EmergencyMode Mode(v1::EmergencyLevel level) {
  v1::EmergencyMode mode;
  mode.set_emergency_mode_id(9);
  mode.set_scope(v1::EMERGENCY_SCOPE_PLATFORM);
  mode.set_level(level);
  *mode.mutable_expires_at() = ToProtoTime(kNow + absl::Hours(1));
  return mode;
}

CheckContext Context(std::optional<v1::EmergencyMode> emergency = std::nullopt) {
  CheckContext context;
  context.group_id = 7;
  context.now = kNow;
  context.emergency = std::move(emergency);
  return context;
}

std::optional<CheckFailure> Evaluate(const HotPathView& view,
                                     std::optional<v1::EmergencyMode> emergency = std::nullopt) {
  auto result = EvaluateChecks(view, Context(std::move(emergency)));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : std::nullopt;
}

v1::ScreenReasonCode CodeOf(const HotPathView& view,
                            std::optional<v1::EmergencyMode> emergency = std::nullopt) {
  std::optional<CheckFailure> failure = Evaluate(view, std::move(emergency));
  return failure ? failure->reason.code() : v1::SCREEN_REASON_CODE_UNSPECIFIED;
}

TEST(ModerationHotPathChecksTest, PassesWhenEverythingHolds) {
  EXPECT_EQ(CodeOf(Passing()), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  HotPathView warned = Passing();
  warned.group_state = "GROUP_STATE_WARNED";
  EXPECT_EQ(CodeOf(warned), v1::SCREEN_REASON_CODE_UNSPECIFIED);
}

TEST(ModerationHotPathChecksTest, EachCheckOnItsOwn) {
  HotPathView v = Passing();
  v.sender_blacklist = "0";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
  v.sender_blacklist = absl::StrCat(absl::ToUnixSeconds(kNow) - 1);  // expired
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  v = Passing();
  v.group_blacklist = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_BLACKLISTED);
  v = Passing();
  v.verified = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_SENDER_NOT_VERIFIED);
  v = Passing();
  v.group_state = "GROUP_STATE_CLOSED";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_CLOSED);
  v = Passing();
  v.posting_suspended_until = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_POSTING_SUSPENDED);
  EXPECT_EQ(Evaluate(v)->reason.until().seconds(), absl::ToUnixSeconds(kNow) + 60);
  v = Passing();
  v.group_state = "GROUP_STATE_PENDING_REVIEW";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_NOT_ACTIVE);
  v = Passing();
  v.member_role = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_NOT_A_MEMBER);
  v = Passing();
  v.muted_until = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_SENDER_MUTED);
  v.muted_until = absl::StrCat(absl::ToUnixSeconds(kNow) - 60);  // lingering, expired
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
}

TEST(ModerationHotPathChecksTest, CurrentAgreementVersions) {
  HotPathView v = Passing();
  v.agreement_version = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  v.agreement_version = "2";  // an older version
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  v = Passing();
  v.convention_version = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  // Nothing published: nothing to accept.
  v.service_agreement.current = "";
  v.platform_convention.current = "";
  v.agreement_version = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  // The next version binds from its effective time, without anyone acting.
  v = Passing();
  v.service_agreement.next = "4";
  v.service_agreement.next_effective_at = absl::StrCat(absl::ToUnixSeconds(kNow) + 1);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  v.service_agreement.next_effective_at = absl::StrCat(absl::ToUnixSeconds(kNow));
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  v.agreement_version = "4";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  // identity never wrote the versions: fail closed.
  v = Passing();
  v.platform_agreement_known = false;
  EXPECT_EQ(ErrorReason(EvaluateChecks(v, Context()).status()), "PROJECTION_UNAVAILABLE");
}

TEST(ModerationHotPathChecksTest, RateLimitsByCreditLevelAndGroupTier) {
  HotPathView v = Passing();
  v.sender_minute_count = 20;
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  v.sender_minute_count = 21;
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_ACCOUNT_RATE_LIMITED);
  EXPECT_EQ(Evaluate(v)->reason.retry_after().seconds(), 60 - absl::ToUnixSeconds(kNow) % 60);
  v = Passing();
  v.group_minute_count = 61;  // SMALL: 60 a minute by default
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_RATE_LIMITED);
  v.group_tier = "SCALE_TIER_MEDIUM";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  v.group_tier = "";  // unknown tier: the SMALL limit
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_RATE_LIMITED);
  v = Passing();
  v.messages_per_minute = "";  // credit never wrote it: fail closed
  EXPECT_EQ(ErrorReason(EvaluateChecks(v, Context()).status()), "PROJECTION_UNAVAILABLE");
}

TEST(ModerationHotPathChecksTest, OrderDecidesWhichReasonWins) {
  HotPathView v = Passing();
  v.sender_blacklist = "0";
  v.group_blacklist = "0";
  v.verified = "0";
  v.agreement_version = "";
  v.group_state = "GROUP_STATE_CLOSED";
  v.member_role = "";
  v.muted_until = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  v.sender_minute_count = 1000;
  v.group_minute_count = 1000;
  const v1::ScreenReasonCode order[] = {v1::SCREEN_REASON_CODE_EMERGENCY_POSTING_SUSPENDED,
                                        v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED,
                                        v1::SCREEN_REASON_CODE_GROUP_BLACKLISTED,
                                        v1::SCREEN_REASON_CODE_SENDER_NOT_VERIFIED,
                                        v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED,
                                        v1::SCREEN_REASON_CODE_GROUP_CLOSED,
                                        v1::SCREEN_REASON_CODE_NOT_A_MEMBER,
                                        v1::SCREEN_REASON_CODE_SENDER_MUTED,
                                        v1::SCREEN_REASON_CODE_ACCOUNT_RATE_LIMITED,
                                        v1::SCREEN_REASON_CODE_GROUP_RATE_LIMITED};
  EXPECT_EQ(CodeOf(v, Mode(v1::EMERGENCY_LEVEL_SUSPEND_POSTING)), order[0]);
  // Fix each failing check in turn: the next one in the order answers.
  auto fixes = std::vector<std::function<void(HotPathView&)>>{
      [](HotPathView& x) { x.sender_blacklist.reset(); },
      [](HotPathView& x) { x.group_blacklist.reset(); },
      [](HotPathView& x) { x.verified = "1"; },
      [](HotPathView& x) { x.agreement_version = "3"; },
      [](HotPathView& x) { x.group_state = "GROUP_STATE_ACTIVE"; },
      [](HotPathView& x) { x.member_role = "MEMBER_ROLE_ADMIN"; },
      [](HotPathView& x) { x.muted_until = "0"; },
      [](HotPathView& x) { x.sender_minute_count = 1; },
      [](HotPathView& x) { x.group_minute_count = 1; }};
  for (size_t i = 1; i < std::size(order); ++i) {
    EXPECT_EQ(CodeOf(v), order[i]) << i;
    fixes[i - 1](v);
  }
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
}

TEST(ModerationHotPathChecksTest, HoldAllHoldsOnlyWhatWouldOtherwisePass) {
  std::optional<CheckFailure> held = Evaluate(Passing(), Mode(v1::EMERGENCY_LEVEL_HOLD_ALL));
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->verdict, v1::SCREEN_VERDICT_HOLD);
  EXPECT_EQ(held->reason.code(), v1::SCREEN_REASON_CODE_EMERGENCY_HOLD_ALL);
  EXPECT_EQ(held->reason.emergency_mode_id(), 9u);
  HotPathView v = Passing();
  v.member_role = "";
  std::optional<CheckFailure> blocked = Evaluate(v, Mode(v1::EMERGENCY_LEVEL_HOLD_ALL));
  EXPECT_EQ(blocked->verdict, v1::SCREEN_VERDICT_BLOCK);
  EXPECT_EQ(blocked->reason.code(), v1::SCREEN_REASON_CODE_NOT_A_MEMBER);
}

TEST(ModerationHotPathChecksTest, UnknownGroupIsNotFound) {
  HotPathView v = Passing();
  v.group_state = "";
  EXPECT_EQ(ErrorReason(EvaluateChecks(v, Context()).status()), "GROUP_NOT_FOUND");
}

TEST(ModerationHotPathChecksTest, GroupRateLimitFlag) {
  auto limits = ParseGroupRateLimits("SMALL=10,MEDIUM=20,LARGE=30,HUGE=40", "--f");
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->For("SCALE_TIER_LARGE"), 30);
  EXPECT_EQ(limits->For("nonsense"), 10);
  for (const char* bad :
       {"", "SMALL=10", "SMALL=10,MEDIUM=20,LARGE=30,HUGE=0",
        "SMALL=10,MEDIUM=20,LARGE=30,GIANT=40", "SMALL=10,SMALL=10,MEDIUM=20,LARGE=30,HUGE=40",
        "SMALL=x,MEDIUM=20,LARGE=30,HUGE=40"}) {
    EXPECT_EQ(ErrorMetadata(ParseGroupRateLimits(bad, "--f").status(), "field"), "--f") << bad;
  }
}

class ModerationHotPathRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RedisOptions options;
    options.address = testing::RedisAddrOrDie();
    redis_ = RedisClient::Create(options).value();
    account_ = std::random_device{}() % 1000000000 + 1000;
    group_ = account_ + 1;
  }
  void Write(const RedisCommand& command) { ASSERT_TRUE(redis_->Command(command).ok()); }
  HotPathKeys Keys(const std::string& request_id) {
    return HotPathKeys{account_, group_, projection::ScreenRequestKey(account_, "p", request_id),
                       kNow};
  }
  std::unique_ptr<RedisClient> redis_;
  uint64_t account_ = 0;
  uint64_t group_ = 0;
};

TEST_F(ModerationHotPathRedisTest, ReadsOneRoundTripClaimsAndCounts) {
  Write({"HSET", projection::AccountIdentityKey(account_), "verified", "1", "agreement_version",
         "999999", "convention_version", "999999"});
  Write({"HSET", projection::AccountCreditKey(account_), "messages_per_minute", "20"});
  Write({"HSET", projection::GroupKey(group_), "state", "GROUP_STATE_ACTIVE",
         "posting_suspended_until", "0", "category", "GROUP_CATEGORY_HOBBY", "tier",
         "SCALE_TIER_MEDIUM"});
  Write(
      {"HSET", projection::GroupMembersKey(group_), absl::StrCat(account_), "MEMBER_ROLE_MEMBER"});
  // identity writes this key; other tests sharing Redis may too, so only
  // its presence is relied on here.
  Write({"HSETNX", projection::PlatformAgreementKey(), "agreement_version", ""});
  auto view = ReadHotPathView(*redis_, Keys("r1"));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->earlier_record.has_value());
  EXPECT_FALSE(view->sender_blacklist.has_value());
  EXPECT_TRUE(view->platform_agreement_known);
  EXPECT_EQ(view->member_role, "MEMBER_ROLE_MEMBER");
  EXPECT_EQ(view->group_tier, "SCALE_TIER_MEDIUM");
  EXPECT_EQ(GroupCategoryOf(*view), common::v1::GROUP_CATEGORY_HOBBY);
  EXPECT_EQ(view->messages_per_minute, "20");
  EXPECT_EQ(view->sender_minute_count, 1);
  EXPECT_EQ(CodeOf(*view), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  // The first message of the windows and the hour created three counters,
  // whose EXPIREs are handed back to be sent off the hot path.
  const int64_t minute = absl::ToUnixSeconds(kNow) / 60;
  ASSERT_EQ(view->new_counter_expiries.size(), 3u);
  EXPECT_EQ(view->new_counter_expiries[0],
            (RedisCommand{"EXPIRE", projection::AccountRateKey(account_, minute), "120"}));
  EXPECT_EQ(view->new_counter_expiries[1],
            (RedisCommand{"EXPIRE", projection::GroupRateKey(group_, minute), "120"}));
  EXPECT_EQ(view->new_counter_expiries[2][1], projection::GroupActivityKey(group_));
  // Where the message was counted, for taking it back if it is not delivered.
  EXPECT_EQ(view->activity_key, projection::GroupActivityKey(group_));
  EXPECT_EQ(view->activity_hour, absl::StrCat(absl::ToUnixSeconds(kNow) / 3600));

  // The same request id again: the claim is seen, and the count taken back.
  auto again = ReadHotPathView(*redis_, Keys("r1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->earlier_record, "pending");
  EXPECT_EQ(again->sender_minute_count, 2);
  EXPECT_TRUE(again->new_counter_expiries.empty());
  ASSERT_TRUE(UndoCounting(*redis_, Keys("r1")).ok());
  auto third = ReadHotPathView(*redis_, Keys("r2"));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->sender_minute_count, 2);
  EXPECT_EQ(third->group_minute_count, 2);
  auto activity = redis_->Command({"HGET", projection::GroupActivityKey(group_),
                                   absl::StrCat(absl::ToUnixSeconds(kNow) / 3600)});
  ASSERT_TRUE(activity.ok());
  EXPECT_EQ(activity->str(), "2");

  Write({"SET", projection::AccountBlacklistKey(account_), "0"});
  view = ReadHotPathView(*redis_, Keys("r3"));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(CodeOf(*view), v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
}

TEST(ModerationHotPathChecksTest, ARefusedWriteIsNotAnUnreadableProjection) {
  const HotPathCounters counters = CountersOf(HotPathKeys{1, 2, "k", kNow});
  for (size_t failing = 0; failing < kHotPathCommands; ++failing) {
    SCOPED_TRACE(failing);
    std::vector<RedisReply> replies(kHotPathCommands, RedisReply::Nil());
    replies[failing] = RedisReply::Error("OOM command not allowed when used memory > 'maxmemory'.");
    const auto view = ParseHotPathView(counters, replies);
    EXPECT_EQ(view.status().code(), absl::StatusCode::kUnavailable);
    const bool write = failing == 0 || failing >= 9;  // the claim, the three counters
    EXPECT_EQ(ErrorReason(view.status()), write ? "REDIS_WRITE_REFUSED" : "PROJECTION_UNAVAILABLE");
    EXPECT_THAT(std::string(view.status().message()), ::testing::HasSubstr("OOM"));
  }
}

TEST(ModerationHotPathChecksTest, RedisDownFailsClosed) {
  RedisOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.connect_timeout = absl::Milliseconds(200);
  auto redis = RedisClient::Create(options);
  ASSERT_TRUE(redis.ok());
  auto view = ReadHotPathView(**redis, HotPathKeys{1, 2, "k", kNow});
  EXPECT_EQ(view.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(view.status()), "PROJECTION_UNAVAILABLE");
}

}  // namespace
}  // namespace qunzu::moderation
