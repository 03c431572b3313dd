// ScreenMessage's logic against real Redis with projections the test
// writes, rules and emergency modes from in-memory sources, and a recording
// review queue: verdicts and reasons, HOLD to the queue, request_id
// idempotency (first verdict, counted once, one review), bad input, and
// failing closed.
#include "services/moderation/message_screener.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/moderation/moderation_metrics.h"
#include "services/moderation/moderation_service.h"
#include "services/moderation/proto_time.h"
#include "tests/common/fake_redis_server.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

constexpr uint64_t kBlockRule = 501;
constexpr uint64_t kHoldRule = 502;

class Rules : public RuleSource {
 public:
  absl::StatusOr<int64_t> Generation() override { return 1; }
  absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) override {
    *generation = 1;
    *rules = {
        ActiveRule{Rule{kBlockRule, RuleKind::kLiteral, "赌博", 2, RuleAction::kBlock}, 11, 3},
        ActiveRule{Rule{kHoldRule, RuleKind::kLiteral, "代购", 8, RuleAction::kHold}, 11, 3}};
    return absl::OkStatus();
  }
};

class Modes : public EmergencyModeSource {
 public:
  void Set(std::vector<v1::EmergencyMode> modes) {
    absl::MutexLock lock(&mu_);
    modes_ = std::move(modes);
    ++generation_;
  }
  absl::StatusOr<int64_t> Generation() override {
    absl::MutexLock lock(&mu_);
    return generation_;
  }
  absl::Status LoadOpen(int64_t* generation, std::vector<v1::EmergencyMode>* modes) override {
    absl::MutexLock lock(&mu_);
    *generation = generation_;
    *modes = modes_;
    return absl::OkStatus();
  }

 private:
  absl::Mutex mu_;
  int64_t generation_ = 1;
  std::vector<v1::EmergencyMode> modes_;
};

// Records every Hold; while `down` fails as the MySQL store does when its
// database is unreachable.
class RecordingReviewQueue : public ReviewQueue {
 public:
  absl::StatusOr<v1::HeldMessage> Hold(const HeldMessageInput& input) override {
    if (down) {
      return MakeError(absl::StatusCode::kUnavailable, "MYSQL_UNAVAILABLE", "connection refused");
    }
    held.push_back(input);
    v1::HeldMessage message;
    message.set_report_id(9000 + held.size());
    message.set_message_id(input.message_id);
    return message;
  }
  bool down = false;
  std::vector<HeldMessageInput> held;
};

constexpr char kRoundTrips[] = "qunzu_moderation_hot_path_redis_seconds";

class ModerationMessageScreenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RedisOptions options;
    options.address = testing::RedisAddrOrDie();
    redis_ = RedisClient::Create(options).value();
    // With its projection cache, as the service makes it: every test here
    // writes projections and screens right after.
    AsyncRedis::Options cached;
    cached.cache_entries = static_cast<size_t>(ModerationFlags().redis_cache_entries);
    async_redis_ = AsyncRedis::Create(options, std::move(cached)).value();
    ASSERT_TRUE(engine_.Refresh().ok());
    ASSERT_TRUE(emergency_.Refresh().ok());
    sender_ = std::random_device{}() % 1000000000 + 1000;
    group_ = sender_ + 1;
    Write({"HSET", projection::AccountIdentityKey(sender_), "verified", "1", "agreement_version",
           "999999", "convention_version", "999999"});
    Write({"HSET", projection::AccountCreditKey(sender_), "messages_per_minute", "20"});
    Write({"HSET", projection::GroupKey(group_), "state", "GROUP_STATE_ACTIVE",
           "posting_suspended_until", "0", "category", "GROUP_CATEGORY_HOBBY", "tier",
           "SCALE_TIER_SMALL"});
    Write(
        {"HSET", projection::GroupMembersKey(group_), absl::StrCat(sender_), "MEMBER_ROLE_MEMBER"});
    Write({"HSETNX", projection::PlatformAgreementKey(), "agreement_version", ""});
    screener_ = std::make_unique<MessageScreener>(ScreenerDeps{
        *async_redis_, engine_, emergency_, queue_, &metrics_, clock_, GroupRateLimits()});
  }
  void TearDown() override { screener_.reset(); }

  void Write(const RedisCommand& command) { ASSERT_TRUE(redis_->Command(command).ok()); }

  v1::ScreenMessageRequest Message(const std::string& text) {
    v1::ScreenMessageRequest request;
    request.set_request_id(testing::UniqueName("m"));
    request.set_actor_account_id(sender_);
    request.set_group_id(group_);
    request.set_message_id(testing::UniqueName("msg"));
    request.set_text(text);
    request.set_client_ip("203.0.113.5");
    return request;
  }
  absl::StatusOr<v1::ScreenMessageResponse> Screen(const v1::ScreenMessageRequest& request) {
    return screener_->Screen(Caller{"chat", common::v1::ROLE_PLATFORM, ""}, request);
  }
  int64_t SenderCount() {
    auto reply = redis_->Command(
        {"GET", projection::AccountRateKey(sender_, absl::ToUnixSeconds(clock_.Now()) / 60)});
    int64_t n = 0;
    if (reply.ok() && !reply->is_nil()) {
      EXPECT_TRUE(absl::SimpleAtoi(reply->str(), &n));
    }
    return n;
  }
  double VerdictCount(const std::string& verdict, const std::string& reason) {
    return testing::MetricValue(registry_, "qunzu_moderation_message_verdicts_total",
                                {{"verdict", verdict}, {"reason", reason}});
  }
  v1::EmergencyMode Mode(v1::EmergencyLevel level) {
    v1::EmergencyMode mode;
    mode.set_emergency_mode_id(77);
    mode.set_scope(v1::EMERGENCY_SCOPE_GROUP);
    mode.set_group_id(group_);
    mode.set_level(level);
    *mode.mutable_expires_at() = ToProtoTime(clock_.Now() + absl::Minutes(10));
    return mode;
  }

  FakeClock clock_{absl::Now()};
  Rules rules_;
  RuleEngine engine_{rules_};
  Modes modes_;
  EmergencyModes emergency_{modes_};
  RecordingReviewQueue queue_;
  prometheus::Registry registry_;
  ModerationMetrics metrics_{registry_};
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<AsyncRedis> async_redis_;
  std::unique_ptr<MessageScreener> screener_;
  uint64_t sender_ = 0;
  uint64_t group_ = 0;
};

TEST_F(ModerationMessageScreenerTest, AllowBlockWithRuleAndSpanAndMetrics) {
  auto allowed = Screen(Message("周末一起去爬山吧"));
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->verdict(), v1::SCREEN_VERDICT_ALLOW);
  EXPECT_EQ(allowed->reasons_size(), 0);
  const std::string text = "来玩赌.博吧";
  auto blocked = Screen(Message(text));
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_EQ(blocked->verdict(), v1::SCREEN_VERDICT_BLOCK);
  ASSERT_EQ(blocked->reasons_size(), 1);
  const v1::ScreenReason& reason = blocked->reasons(0);
  EXPECT_EQ(reason.code(), v1::SCREEN_REASON_CODE_CONTENT_RULE);
  EXPECT_EQ(reason.rule_id(), kBlockRule);
  EXPECT_EQ(reason.rule_set_id(), 11u);
  EXPECT_EQ(reason.rule_set_version(), 3u);
  EXPECT_EQ(text.substr(reason.span().start(), reason.span().end() - reason.span().start()),
            "赌.博");
  EXPECT_EQ(queue_.held.size(), 0u);
  EXPECT_EQ(VerdictCount("SCREEN_VERDICT_ALLOW", "NONE"), 1);
  EXPECT_EQ(VerdictCount("SCREEN_VERDICT_BLOCK", "SCREEN_REASON_CODE_CONTENT_RULE"), 1);
  // One Redis round trip each, timed.
  EXPECT_EQ(testing::MetricValue(registry_, kRoundTrips), 2);
  EXPECT_GT(testing::HistogramSum(registry_, kRoundTrips), 0);
  // Both count toward the rate limit; only the allowed one is activity.
  screener_->FlushRecords();
  EXPECT_EQ(SenderCount(), 2);
  auto activity = redis_->Command({"HGET", projection::GroupActivityKey(group_),
                                   absl::StrCat(absl::ToUnixSeconds(clock_.Now()) / 3600)});
  ASSERT_TRUE(activity.ok());
  EXPECT_EQ(activity->str(), "1");
}

TEST_F(ModerationMessageScreenerTest, HoldGoesToTheQueueOnceAndRetriesReplay) {
  v1::ScreenMessageRequest request = Message("帮忙代购一下");
  auto held = Screen(request);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->verdict(), v1::SCREEN_VERDICT_HOLD);
  EXPECT_EQ(held->report_id(), 9001u);
  ASSERT_EQ(queue_.held.size(), 1u);
  EXPECT_EQ(queue_.held[0].request_id, request.request_id());
  EXPECT_EQ(queue_.held[0].message_id, request.message_id());
  EXPECT_EQ(queue_.held[0].text, request.text());
  EXPECT_EQ(queue_.held[0].sender_account_id, sender_);
  ASSERT_EQ(queue_.held[0].reasons.size(), 1u);
  EXPECT_EQ(queue_.held[0].reasons[0].rule_id(), kHoldRule);
  EXPECT_EQ(SenderCount(), 1);

  screener_->FlushRecords();
  // The counters this first message created got their TTL off the hot path.
  const int64_t unix_seconds = absl::ToUnixSeconds(clock_.Now());
  for (const auto& [key, most] : std::vector<std::pair<std::string, int64_t>>{
           {projection::AccountRateKey(sender_, unix_seconds / 60), 120},
           {projection::GroupRateKey(group_, unix_seconds / 60), 120},
           {projection::GroupActivityKey(group_), int64_t{32} * 24 * 3600}}) {
    auto ttl = redis_->Command({"TTL", key});
    ASSERT_TRUE(ttl.ok()) << key;
    EXPECT_GT(ttl->integer(), 0) << key;
    EXPECT_LE(ttl->integer(), most) << key;
  }
  auto retry = Screen(request);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->SerializeAsString(), held->SerializeAsString());
  EXPECT_EQ(queue_.held.size(), 1u);  // no second review
  // The retry's correction is posted: read once it has run.
  screener_->FlushRecords();
  EXPECT_EQ(SenderCount(), 1);  // not counted twice
  EXPECT_EQ(VerdictCount("SCREEN_VERDICT_HOLD", "SCREEN_REASON_CODE_CONTENT_RULE"), 1);

  request.set_text("另一条消息");
  EXPECT_EQ(ErrorReason(Screen(request).status()), "REQUEST_ID_REUSED");
}

TEST_F(ModerationMessageScreenerTest, RetryBeforeTheVerdictIsRecordedIsToldToRetry) {
  v1::ScreenMessageRequest request = Message("你好");
  Write({"SET", projection::ScreenRequestKey(sender_, "chat", request.request_id()), "pending"});
  auto status = Screen(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(status), "SCREEN_IN_PROGRESS");
  screener_->FlushRecords();  // the correction of the count is posted
  EXPECT_EQ(SenderCount(), 0);
}

TEST_F(ModerationMessageScreenerTest, EmergencyModesHoldOrBlock) {
  modes_.Set({Mode(v1::EMERGENCY_LEVEL_HOLD_ALL)});
  ASSERT_TRUE(emergency_.Refresh().ok());
  auto held = Screen(Message("周末一起去爬山吧"));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->verdict(), v1::SCREEN_VERDICT_HOLD);
  EXPECT_EQ(held->reasons(0).code(), v1::SCREEN_REASON_CODE_EMERGENCY_HOLD_ALL);
  EXPECT_EQ(held->reasons(0).emergency_mode_id(), 77u);
  ASSERT_EQ(queue_.held.size(), 1u);
  // A blocked term is still blocked, not sent to review.
  auto blocked = Screen(Message("赌博"));
  EXPECT_EQ(blocked->verdict(), v1::SCREEN_VERDICT_BLOCK);
  EXPECT_EQ(queue_.held.size(), 1u);

  modes_.Set({Mode(v1::EMERGENCY_LEVEL_SUSPEND_POSTING)});
  ASSERT_TRUE(emergency_.Refresh().ok());
  auto suspended = Screen(Message("周末一起去爬山吧"));
  EXPECT_EQ(suspended->verdict(), v1::SCREEN_VERDICT_BLOCK);
  EXPECT_EQ(suspended->reasons(0).code(), v1::SCREEN_REASON_CODE_EMERGENCY_POSTING_SUSPENDED);
  // Past its expiry the mode no longer applies, without anyone acting.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(Screen(Message("周末一起去爬山吧"))->verdict(), v1::SCREEN_VERDICT_ALLOW);
}

TEST(ModerationMetricsTest, FailuresAreCountedByTheirReason) {
  prometheus::Registry registry;
  ModerationMetrics metrics(registry);
  auto count = [&](const std::string& reason) {
    return testing::MetricValue(registry, "qunzu_moderation_message_failures_total",
                                {{"reason", reason}});
  };
  // The hot path's own reasons exist from the start.
  EXPECT_EQ(count("REDIS_WRITE_REFUSED"), 0);
  EXPECT_EQ(count("REVIEW_QUEUE_UNAVAILABLE"), 0);
  metrics.MessageFailed(MakeError(absl::StatusCode::kUnavailable, "REDIS_WRITE_REFUSED", "OOM"));
  metrics.MessageFailed(MakeError(absl::StatusCode::kUnavailable, "REDIS_WRITE_REFUSED", "OOM"));
  // Another reason gets its own series; a status without one, its code's.
  metrics.MessageFailed(MakeError(absl::StatusCode::kAborted, "SOMETHING_ELSE", "x"));
  metrics.MessageFailed(absl::DeadlineExceededError("late"));
  EXPECT_EQ(count("REDIS_WRITE_REFUSED"), 2);
  EXPECT_EQ(count("SOMETHING_ELSE"), 1);
  EXPECT_EQ(count("DEADLINE_EXCEEDED"), 1);
  EXPECT_EQ(count("PROJECTION_UNAVAILABLE"), 0);
}

TEST_F(ModerationMessageScreenerTest, ReviewQueueDownFailsClosedAndFreesTheRequestId) {
  queue_.down = true;
  v1::ScreenMessageRequest request = Message("帮忙代购一下");
  const absl::Status refused = Screen(request).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(refused), "REVIEW_QUEUE_UNAVAILABLE");
  EXPECT_EQ(ErrorMetadata(refused, "cause"), "MYSQL_UNAVAILABLE");
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("connection refused"));
  queue_.down = false;
  auto retry = Screen(request);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->verdict(), v1::SCREEN_VERDICT_HOLD);
}

TEST_F(ModerationMessageScreenerTest, RateLimitByCreditLevel) {
  Write({"HSET", projection::AccountCreditKey(sender_), "messages_per_minute", "2"});
  clock_.Set(absl::FromUnixSeconds((absl::ToUnixSeconds(absl::Now()) / 60 + 1) * 60));
  EXPECT_EQ(Screen(Message("一"))->verdict(), v1::SCREEN_VERDICT_ALLOW);
  EXPECT_EQ(Screen(Message("二"))->verdict(), v1::SCREEN_VERDICT_ALLOW);
  auto limited = Screen(Message("三"));
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->verdict(), v1::SCREEN_VERDICT_BLOCK);
  EXPECT_EQ(limited->reasons(0).code(), v1::SCREEN_REASON_CODE_ACCOUNT_RATE_LIMITED);
  EXPECT_EQ(limited->reasons(0).retry_after().seconds(), 60);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Screen(Message("四"))->verdict(), v1::SCREEN_VERDICT_ALLOW);
}

TEST_F(ModerationMessageScreenerTest, BadInputAndUnknownGroup) {
  auto field = [&](const v1::ScreenMessageRequest& request) {
    return ErrorMetadata(Screen(request).status(), "field");
  };
  v1::ScreenMessageRequest r = Message("x");
  r.set_text("\xc3\x28");
  EXPECT_EQ(field(r), "text");
  r.set_text("");
  EXPECT_EQ(field(r), "text");
  r.set_text(std::string(10001, 'a'));
  EXPECT_EQ(field(r), "text");
  r = Message("x");
  r.set_actor_account_id(0);
  EXPECT_EQ(field(r), "actor_account_id");
  r = Message("x");
  r.set_group_id(0);
  EXPECT_EQ(field(r), "group_id");
  r = Message("x");
  r.clear_request_id();
  EXPECT_EQ(field(r), "request_id");
  r = Message("x");
  r.clear_message_id();
  EXPECT_EQ(field(r), "message_id");
  r = Message("x");
  r.set_group_id(group_ + 1000000000000ULL);
  auto unknown = Screen(r).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorReason(unknown), "GROUP_NOT_FOUND");
  EXPECT_EQ(SenderCount(), 1);  // only the unknown group's attempt reached Redis
  EXPECT_EQ(testing::MetricValue(registry_, kRoundTrips), 1);
}

// A screener whose Redis at `address` never answers (refused or silent),
// with no rules, no emergency modes and a recording review queue.
class ScreenerOnDeadRedis {
 public:
  explicit ScreenerOnDeadRedis(const std::string& address) {
    RedisOptions options;
    options.address = address;
    options.connect_timeout = absl::Milliseconds(200);
    options.command_timeout = absl::Milliseconds(200);
    async_redis_ = AsyncRedis::Create(options).value();
    screener_ = std::make_unique<MessageScreener>(ScreenerDeps{
        *async_redis_, engine_, emergency_, queue_, &metrics_, SystemClock::Get(), {}});
  }
  MessageScreener& screener() { return *screener_; }
  prometheus::Registry& registry() { return registry_; }
  static v1::ScreenMessageRequest Request() {
    v1::ScreenMessageRequest request;
    request.set_request_id("r");
    request.set_actor_account_id(1);
    request.set_group_id(2);
    request.set_message_id("m");
    request.set_text("hi");
    return request;
  }

 private:
  Rules rules_;
  RuleEngine engine_{rules_};
  Modes modes_;
  EmergencyModes emergency_{modes_};
  RecordingReviewQueue queue_;
  prometheus::Registry registry_;
  ModerationMetrics metrics_{registry_};
  std::unique_ptr<AsyncRedis> async_redis_;
  std::unique_ptr<MessageScreener> screener_;
};

TEST(ModerationMessageScreenerRedisDownTest, FailsClosed) {
  ScreenerOnDeadRedis dead("127.0.0.1:1");
  const v1::ScreenMessageRequest request = ScreenerOnDeadRedis::Request();
  auto status =
      dead.screener().Screen(Caller{"chat", common::v1::ROLE_PLATFORM, ""}, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(status), "PROJECTION_UNAVAILABLE");
  // A trip that failed is a failure, not a round-trip time.
  EXPECT_EQ(testing::MetricValue(dead.registry(), kRoundTrips), 0);
}

TEST(ModerationMessageScreenerRedisDownTest, ARedisThatStopsAnsweringFailsClosedAtTheDeadline) {
  testing::FakeServer silent;
  silent.Listen(8);  // connects, never answers
  ScreenerOnDeadRedis dead(silent.address());
  const v1::ScreenMessageRequest request = ScreenerOnDeadRedis::Request();
  // Many screens wait at once; none holds a thread, and each is answered
  // UNAVAILABLE once the pipeline's deadline passes.
  constexpr int kScreens = 50;
  absl::Mutex mu;
  std::vector<absl::Status> answers;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kScreens; ++i) {
    dead.screener().ScreenAsync(Caller{"chat", common::v1::ROLE_PLATFORM, ""}, request,
                                [&](const absl::StatusOr<v1::ScreenMessageResponse>& response) {
                                  absl::MutexLock lock(&mu);
                                  answers.push_back(response.status());
                                });
  }
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));  // handing over never waits
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](std::vector<absl::Status>* got) { return got->size() == kScreens; }, &answers));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  for (const absl::Status& status : answers) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(ErrorReason(status), "PROJECTION_UNAVAILABLE");
  }
}

}  // namespace
}  // namespace qunzu::moderation
