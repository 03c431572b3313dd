// Steps 2-5 of the hot path: the evaluator on views the test builds, and
// the one-pipeline reader against real Redis with projections the test
// writes (groups' own writer is being built in parallel).
#include "services/moderation/hot_path_checks.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

HotPathView Passing() {
  HotPathView view;
  view.verified = "1";
  view.agreement_version = "2026-01";
  view.group_state = "GROUP_STATE_ACTIVE";
  view.posting_suspended_until = "0";
  view.member_role = "MEMBER_ROLE_MEMBER";
  return view;
}

v1::ScreenReasonCode CodeOf(const HotPathView& view) {
  auto result = EvaluateChecks(view, 7, kNow);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok() || !result->has_value()) return v1::SCREEN_REASON_CODE_UNSPECIFIED;
  return (*result)->reason.code();
}

TEST(ModerationHotPathChecksTest, PassesWhenEverythingHolds) {
  EXPECT_EQ(CodeOf(Passing()), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  HotPathView warned = Passing();
  warned.group_state = "GROUP_STATE_WARNED";
  EXPECT_EQ(CodeOf(warned), v1::SCREEN_REASON_CODE_UNSPECIFIED);
}

TEST(ModerationHotPathChecksTest, EachCheckInOrder) {
  HotPathView v = Passing();
  v.sender_blacklist = "0";
  v.verified = "0";  // blacklist comes first
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
  v = Passing();
  v.sender_blacklist = absl::StrCat(absl::ToUnixSeconds(kNow) - 1);  // expired
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  v = Passing();
  v.group_blacklist = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_BLACKLISTED);
  v = Passing();
  v.verified = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_SENDER_NOT_VERIFIED);
  v = Passing();
  v.agreement_version = "";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_AGREEMENT_NOT_ACCEPTED);
  v = Passing();
  v.group_state = "GROUP_STATE_CLOSED";
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_CLOSED);
  v = Passing();
  v.posting_suspended_until = absl::StrCat(absl::ToUnixSeconds(kNow) + 60);
  EXPECT_EQ(CodeOf(v), v1::SCREEN_REASON_CODE_GROUP_POSTING_SUSPENDED);
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

TEST(ModerationHotPathChecksTest, UnknownGroupIsNotFound) {
  HotPathView v = Passing();
  v.group_state = "";
  EXPECT_EQ(ErrorReason(EvaluateChecks(v, 7, kNow).status()), "GROUP_NOT_FOUND");
}

TEST(ModerationHotPathChecksTest, ReadsOneRoundTripAndCountsActivity) {
  RedisOptions options;
  options.address = testing::RedisAddrOrDie();
  auto redis = RedisClient::Create(options);
  ASSERT_TRUE(redis.ok());
  const uint64_t account = std::random_device{}() % 1000000000 + 1000;
  const uint64_t group = account + 1;
  ASSERT_TRUE((*redis)
                  ->Command({"HSET", projection::AccountIdentityKey(account), "verified", "1",
                             "agreement_version", "v3"})
                  .ok());
  ASSERT_TRUE((*redis)
                  ->Command({"HSET", projection::GroupKey(group), "state", "GROUP_STATE_ACTIVE",
                             "posting_suspended_until", "0"})
                  .ok());
  ASSERT_TRUE((*redis)
                  ->Command({"HSET", projection::GroupMembersKey(group), absl::StrCat(account),
                             "MEMBER_ROLE_MEMBER"})
                  .ok());
  auto view = ReadHotPathView(**redis, account, group, kNow);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_FALSE(view->sender_blacklist.has_value());
  EXPECT_EQ(view->agreement_version, "v3");
  EXPECT_EQ(view->member_role, "MEMBER_ROLE_MEMBER");
  EXPECT_EQ(CodeOf(*view), v1::SCREEN_REASON_CODE_UNSPECIFIED);
  ASSERT_TRUE(ReadHotPathView(**redis, account, group, kNow).ok());
  auto count = (*redis)->Command({"HGET", projection::GroupActivityKey(group),
                                  absl::StrCat(absl::ToUnixSeconds(kNow) / 3600)});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count->str(), "2");
  ASSERT_TRUE((*redis)->Command({"SET", projection::AccountBlacklistKey(account), "0"}).ok());
  view = ReadHotPathView(**redis, account, group, kNow);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(CodeOf(*view), v1::SCREEN_REASON_CODE_SENDER_BLACKLISTED);
}

TEST(ModerationHotPathChecksTest, RedisDownFailsClosed) {
  RedisOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.connect_timeout = absl::Milliseconds(200);
  auto redis = RedisClient::Create(options);
  ASSERT_TRUE(redis.ok());
  auto view = ReadHotPathView(**redis, 1, 2, kNow);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(view.status()), "PROJECTION_UNAVAILABLE");
}

}  // namespace
}  // namespace qunzu::moderation
