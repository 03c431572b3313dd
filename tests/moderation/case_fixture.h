// A case-handling fixture on the test MariaDB and Redis: a fresh schema
// (testing::CommonSchemaTest) with the moderation migrations, a fake clock, groups and credit fakes
// that fail on demand, and accounts and groups published the way identity and groups publish them
// (random ids, so parallel tests never share keys).
#ifndef QUNZU_TESTS_MODERATION_CASE_FIXTURE_H_
#define QUNZU_TESTS_MODERATION_CASE_FIXTURE_H_

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/projection_keys.h"
#include "common/redis.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/cases.h"
#include "services/moderation/moderation_service.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu::moderation {

// Groups and credit as seen from moderation: record calls, fail on demand.
class FakeEnforcers final : public GroupsClient, public CreditClient {
 public:
  absl::StatusOr<groups::v1::SetGroupStateResponse> SetGroupState(
      const groups::v1::SetGroupStateRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    group_calls.push_back(request);
    groups::v1::SetGroupStateResponse response;
    response.mutable_group()->set_group_id(request.group_id());
    response.mutable_group()->set_state(request.state());
    response.mutable_group()->set_owner_account_id(request.group_id() + 1);
    return response;
  }
  absl::StatusOr<credit::v1::ApplyPenaltyResponse> ApplyPenalty(
      const credit::v1::ApplyPenaltyRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    penalty_calls.push_back(request);
    credit::v1::ApplyPenaltyResponse response;
    response.mutable_penalty()->set_penalty_id(7000 + request.disposition_id());
    return response;
  }
  absl::StatusOr<credit::v1::LiftPenaltyResponse> LiftPenalty(
      const credit::v1::LiftPenaltyRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    lift_calls.push_back(request);
    return credit::v1::LiftPenaltyResponse();
  }
  absl::StatusOr<credit::v1::RecordEventResponse> RecordEvent(
      const credit::v1::RecordEventRequest& request) override {
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    events[request.request_id()] = request;
    return credit::v1::RecordEventResponse();
  }
  // Credit events recorded, by event id.
  std::map<std::string, credit::v1::RecordEventRequest> Events() {
    absl::MutexLock lock(&mu_);
    return events;
  }
  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(status);
  }

  std::vector<groups::v1::SetGroupStateRequest> group_calls;
  std::vector<credit::v1::ApplyPenaltyRequest> penalty_calls;
  std::vector<credit::v1::LiftPenaltyRequest> lift_calls;
  // Group calls so far (under the lock, for tests with threads).
  size_t GroupCalls() {
    absl::MutexLock lock(&mu_);
    return group_calls.size();
  }

 private:
  std::map<std::string, credit::v1::RecordEventRequest> events;
  absl::Mutex mu_;
  absl::Status fail_;
};

// Forwards to a FakeEnforcers the fixture keeps.
class GroupsForward final : public GroupsClient {
 public:
  explicit GroupsForward(FakeEnforcers& f) : f_(f) {}
  absl::StatusOr<groups::v1::SetGroupStateResponse> SetGroupState(
      const groups::v1::SetGroupStateRequest& r) override {
    return f_.SetGroupState(r);
  }

 private:
  FakeEnforcers& f_;
};
class CreditForward final : public CreditClient {
 public:
  explicit CreditForward(FakeEnforcers& f) : f_(f) {}
  absl::StatusOr<credit::v1::ApplyPenaltyResponse> ApplyPenalty(
      const credit::v1::ApplyPenaltyRequest& r) override {
    return f_.ApplyPenalty(r);
  }
  absl::StatusOr<credit::v1::LiftPenaltyResponse> LiftPenalty(
      const credit::v1::LiftPenaltyRequest& r) override {
    return f_.LiftPenalty(r);
  }
  absl::StatusOr<credit::v1::RecordEventResponse> RecordEvent(
      const credit::v1::RecordEventRequest& r) override {
    return f_.RecordEvent(r);
  }

 private:
  FakeEnforcers& f_;
};

class CaseTest : public testing::CommonSchemaTest {
 protected:
  CaseTest() : CommonSchemaTest("cases", 16) {}
  void SetUp() override {
    CommonSchemaTest::SetUp();
    ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", ModerationServiceMigrations()).ok());
    RedisOptions redis_options;
    redis_options.address = testing::RedisAddrOrDie();
    auto redis = RedisClient::Create(redis_options);
    ASSERT_TRUE(redis.ok());
    redis_ = *std::move(redis);
    absl::BitGen gen;
    next_id_ = absl::Uniform<uint64_t>(gen, 1000000000ULL, 9000000000000ULL);
    options_.escalation_reporters = 3;
    options_.reporter_limit = 5;
  }
  void TearDown() override {
    cases_.reset();
    CommonSchemaTest::TearDown();
  }

  // Builds the case handling (after the test adjusted options_).
  void Start(std::unique_ptr<OutboxReceiver> authority = nullptr,
             absl::Duration max_backoff = absl::Milliseconds(100)) {
    CaseDeps deps{*pool_,
                  redis_.get(),
                  registry_,
                  clock_,
                  options_,
                  groups_client_ != nullptr ? std::move(groups_client_)
                                            : std::make_unique<GroupsForward>(enforcers_),
                  std::make_unique<CreditForward>(enforcers_),
                  std::move(authority)};
    deps.filing_max_backoff = max_backoff;
    deps.prune_stale_keys = false;
    deps.recovery = recovery_;
    deps.run_recovery = run_recovery_;
    auto cases = Cases::Create(std::move(deps));
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_ = *std::move(cases);
  }

  uint64_t Account() {
    const uint64_t id = next_id_++;
    EXPECT_TRUE(redis_
                    ->Command({"HSET", projection::AccountIdentityKey(id), "verified", "1", "state",
                               "ACTIVE"})
                    .ok());
    return id;
  }
  uint64_t Group() {
    const uint64_t id = next_id_++;
    EXPECT_TRUE(
        redis_->Command({"HSET", projection::GroupKey(id), "state", "GROUP_STATE_ACTIVE"}).ok());
    return id;
  }

  static RequestContext As(common::v1::Role role, const std::string& principal,
                           const std::string& method) {
    return RequestContext{Caller{principal, role, ""}, "ipv4:127.0.0.1:1",
                          "/qunzu.moderation.v1.ModerationService/" + method};
  }
  static RequestContext Platform(const std::string& method) {
    return As(common::v1::ROLE_PLATFORM, "chat-backend", method);
  }
  static RequestContext Moderator(const std::string& method, const std::string& who = "mod-a") {
    return As(common::v1::ROLE_MODERATOR, who, method);
  }

  // The credit events delivered so far, once `count` arrived (bounded wait).
  std::map<std::string, credit::v1::RecordEventRequest> WaitForEvents(size_t count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (enforcers_.Events().size() < count && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return enforcers_.Events();
  }
  std::string RedisGet(const std::string& key) {
    auto reply = redis_->Command({"GET", key});
    EXPECT_TRUE(reply.ok());
    return reply.ok() && !reply->is_nil() ? reply->str() : std::string("(nil)");
  }

  std::unique_ptr<RedisClient> redis_;
  prometheus::Registry registry_;
  FakeClock clock_{absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()))};
  ReportOptions options_;
  // The disposition recovery runs only when a test asks for it (otherwise
  // it calls recovery().RunOnce() itself).
  RecoveryOptions recovery_;
  bool run_recovery_ = false;
  // When set before Start, used instead of the fake (e.g. a gRPC client).
  std::unique_ptr<GroupsClient> groups_client_;
  FakeEnforcers enforcers_;
  std::unique_ptr<Cases> cases_;
  uint64_t next_id_ = 0;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_TESTS_MODERATION_CASE_FIXTURE_H_
