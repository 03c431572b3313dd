// A GroupsLogic on a schema of its own in the test MariaDB and the test
// Redis, with accounts published straight into identity's and credit's
// projection keys, and a screener the test controls.
#ifndef QUNZU_TESTS_GROUPS_GROUPS_FIXTURE_H_
#define QUNZU_TESTS_GROUPS_GROUPS_FIXTURE_H_

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/migrations.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/groups/groups_logic.h"
#include "services/groups/groups_service.h"
#include "services/groups/groups_store.h"
#include "tests/test_support.h"

namespace qunzu::groups {

// BLOCKs text containing "blocked", HOLDs text containing "held"; down()
// makes every call UNAVAILABLE.
class FakeScreener final : public TextScreener {
 public:
  absl::StatusOr<ScreenResult> Screen(moderation::v1::TextPurpose /*purpose*/,
                                      const std::string& text, uint64_t /*actor*/,
                                      uint64_t /*group_id*/) override {
    calls++;
    if (down) {
      return MakeError(absl::StatusCode::kUnavailable, "MODERATION_UNAVAILABLE", "down");
    }
    ScreenResult r;
    if (absl::StrContains(text, "blocked")) {
      r.verdict = moderation::v1::SCREEN_VERDICT_BLOCK;
      r.rule_id = 77;
    } else if (absl::StrContains(text, "held")) {
      r.verdict = moderation::v1::SCREEN_VERDICT_HOLD;
    }
    return r;
  }
  std::atomic<bool> down{false};
  std::atomic<int> calls{0};
};

class GroupsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok());
    auto pool = MysqlPool::Create(*options, testing::UniqueName("groups"), 48);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "groups", GroupServiceMigrations()).ok());
    RedisOptions redis_options;
    redis_options.address = testing::RedisAddrOrDie();
    redis_options.pool_size = 16;
    auto redis = RedisClient::Create(redis_options);
    ASSERT_TRUE(redis.ok());
    redis_ = *std::move(redis);
    auto proto = LoadGroupsPolicy(DefaultPolicyFile());
    ASSERT_TRUE(proto.ok()) << proto.status();
    auto policy = GroupsPolicy::Create(*proto, "default");
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = std::make_unique<GroupsPolicy>(*std::move(policy));
    // The agreements in force (R5.4) under a key of this test's own, so a
    // test elsewhere publishing other versions never meets it.
    agreement_key_ = testing::UniqueName("{platform}:agreement");
    ASSERT_TRUE(
        redis_
            ->Command({"HSET", agreement_key_, "agreement_version", "1", "convention_version", "1",
                       "next_agreement_version", "", "next_agreement_effective_at", "",
                       "next_convention_version", "", "next_convention_effective_at", ""})
            .ok());
    accounts_ = std::make_unique<RedisAccountReader>(*redis_, SystemClock::Get(), agreement_key_);
    projection_ = std::make_unique<GroupProjection>(redis_.get());
    logic_ = std::make_unique<GroupsLogic>(*pool_, *accounts_, screener_, *projection_, *policy_,
                                           clock_);
    absl::BitGen gen;
    next_account_ = absl::Uniform<uint64_t>(gen, 1000000000ULL, 9000000000000ULL);
    // Group ids of their own, so this test's Redis keys never meet another's
    // (every test schema starts its AUTO_INCREMENT at 1).
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(Execute(**lease, absl::StrCat("ALTER TABLE groups_groups AUTO_INCREMENT = ",
                                              absl::Uniform<uint64_t>(gen, 1000000, 1000000000000)))
                    .ok());
  }

  // A new account with identity and credit projections.
  uint64_t Account(bool verified = true, int level = 2, int may_create = 10, int may_join = 100,
                   int max_tier = 2, bool may_be_admin = true) {
    const uint64_t id = next_account_++;
    auto r = redis_->Pipeline(
        {{"HSET", projection::AccountIdentityKey(id), "verified", verified ? "1" : "0", "state",
          "ACTIVE", "nickname", absl::StrCat("nick-", id), "agreement_version", "1",
          "convention_version", "1"},
         {"HSET", projection::AccountCreditKey(id), "score", "600", "level", absl::StrCat(level),
          "groups_may_create", absl::StrCat(may_create), "groups_may_join", absl::StrCat(may_join),
          "max_create_tier", absl::StrCat(max_tier), "may_be_admin", may_be_admin ? "1" : "0",
          "messages_per_minute", "30"}});
    EXPECT_TRUE(r.ok());
    return id;
  }

  RequestContext Platform(const char* method) const {
    Caller caller{"platform", common::v1::ROLE_PLATFORM, ""};
    return RequestContext{caller, "ipv4:127.0.0.1:1", absl::StrCat("/g/", method)};
  }
  RequestContext Moderator(const char* method) const {
    Caller caller{"moderator", common::v1::ROLE_MODERATOR, ""};
    return RequestContext{caller, "ipv4:127.0.0.1:1", absl::StrCat("/g/", method)};
  }

  std::string Rid() { return absl::StrCat("r-", next_request_++); }

  absl::StatusOr<v1::CreateGroupResponse> Create(
      uint64_t owner, common::v1::ScaleTier tier = common::v1::SCALE_TIER_SMALL,
      v1::JoinPolicy policy = v1::JOIN_POLICY_OPEN,
      common::v1::GroupCategory category = common::v1::GROUP_CATEGORY_HOBBY) {
    v1::CreateGroupRequest q;
    q.set_request_id(Rid());
    q.set_actor_account_id(owner);
    q.set_name("Hikers");
    q.set_category(category);
    q.set_scale_tier(tier);
    q.set_join_policy(policy);
    if (policy == v1::JOIN_POLICY_QUESTION) {
      q.set_join_question("Highest peak?");
      q.set_join_answer("Everest");
    }
    return logic_->CreateGroup(Platform("CreateGroup"), q);
  }

  absl::StatusOr<v1::JoinGroupResponse> Join(uint64_t account, uint64_t group_id,
                                             const std::string& answer = "",
                                             uint64_t invitation = 0) {
    v1::JoinGroupRequest q;
    q.set_request_id(absl::StrCat("join-", account, "-", group_id, "-", next_request_++));
    q.set_actor_account_id(account);
    q.set_group_id(group_id);
    q.set_answer(answer);
    q.set_invitation_id(invitation);
    return logic_->JoinGroup(Platform("JoinGroup"), q);
  }

  v1::Group Read(uint64_t group_id) {
    auto conn = pool_->Acquire(absl::Seconds(5));
    EXPECT_TRUE(conn.ok());
    auto g = ReadGroup(**conn, group_id, false);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? *g : v1::Group();
  }

  int64_t CountRows(const std::string& sql) {
    auto conn = pool_->Acquire(absl::Seconds(5));
    int64_t n = -1;
    EXPECT_TRUE(Query(**conn, sql, {}, [&](const sql::ResultSet& row) {
                  n = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  FakeClock clock_{absl::Now()};
  FakeScreener screener_;
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<GroupsPolicy> policy_;
  std::string agreement_key_;
  std::unique_ptr<RedisAccountReader> accounts_;
  std::unique_ptr<GroupProjection> projection_;
  std::unique_ptr<GroupsLogic> logic_;
  uint64_t next_account_ = 0;
  std::atomic<int> next_request_{0};
};

}  // namespace qunzu::groups

#endif  // QUNZU_TESTS_GROUPS_GROUPS_FIXTURE_H_
