// The credit engine against real MariaDB and Redis (through `make test` or
// deploy/local/with-servers.sh): ledger and materialised row agree, no update
// is lost under concurrency, penalties hold until their floor date, recovery
// over months runs on a fake clock, and the Redis projection follows.
#include "services/credit/credit_engine.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/projection_keys.h"
#include "common/redis.h"
#include "common/status.h"
#include "services/credit/credit_metrics.h"
#include "services/credit/credit_model.h"
#include "services/credit/credit_service.h"
#include "services/credit/credit_validation.h"
#include "services/credit/mysql_credit_store.h"
#include "tests/test_support.h"

namespace qunzu::credit {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

class CreditEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok()) << options.status();
    schema_ = testing::UniqueName("credit");
    auto pool = MysqlPool::Create(*options, schema_, 60);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "credit", CreditMigrations()).ok());
    RedisOptions redis_options;
    redis_options.address = testing::RedisAddrOrDie();
    redis_options.pool_size = 8;
    auto redis = RedisClient::Create(redis_options);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = *std::move(redis);
    auto proto = LoadCreditPolicy(DefaultPolicyFile());
    ASSERT_TRUE(proto.ok()) << proto.status();
    auto policy = Policy::Create(*proto, "default");
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = std::make_unique<Policy>(*std::move(policy));
    store_ = std::make_unique<MysqlCreditStore>(*pool_);
    projection_ = std::make_unique<RedisCreditProjection>(*redis_);
    engine_ = std::make_unique<CreditEngine>(*store_, *projection_, *policy_, clock_);
    // Account ids unique to this run, so tests sharing the Redis never meet.
    base_account_ = (uint64_t{std::random_device{}()} % 1000000 + 1) * 1000;
  }

  void TearDown() override {
    if (!pool_) return;
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    EXPECT_TRUE(Execute(**lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  uint64_t Account(int n) const { return base_account_ + static_cast<uint64_t>(n); }

  static RequestContext From(const std::string& service, const std::string& method) {
    return RequestContext{Caller{"service:" + service, common::v1::ROLE_SERVICE, service},
                          "ipv4:127.0.0.1:1", "/qunzu.credit.v1.CreditService/" + method};
  }

  absl::StatusOr<v1::RecordEventResponse> Record(uint64_t account, v1::CreditEventType type,
                                                 const std::string& event_id,
                                                 const std::string& service = "moderation") {
    v1::RecordEventRequest request;
    request.set_request_id(event_id);
    request.set_account_id(account);
    request.set_event_type(type);
    request.set_reference("report:1");
    request.set_reason("test");
    RETURN_IF_ERROR(ValidateRecordEvent(request));
    return engine_->RecordEvent(From(service, "RecordEvent"), request);
  }

  absl::StatusOr<v1::RecordEventResponse> Verify(uint64_t account) {
    return Record(account, v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED,
                  absl::StrCat("identity:verified:", account), "identity");
  }

  v1::ApplyPenaltyRequest Penalty(uint64_t account, v1::PenaltyKind kind, uint32_t levels,
                                  absl::Duration for_how_long, uint64_t disposition) {
    v1::ApplyPenaltyRequest request;
    request.set_request_id(absl::StrCat("penalty-", disposition));
    request.set_account_id(account);
    request.set_kind(kind);
    request.set_levels(levels);
    *request.mutable_until() = ToProtoTime(clock_.Now() + for_how_long);
    request.set_disposition_id(disposition);
    request.set_reason("disposition");
    return request;
  }

  absl::StatusOr<v1::ApplyPenaltyResponse> Apply(const v1::ApplyPenaltyRequest& request) {
    RETURN_IF_ERROR(ValidateApplyPenalty(request, *policy_));
    return engine_->ApplyPenalty(From("moderation", "ApplyPenalty"), request);
  }

  std::string Projected(uint64_t account, const std::string& field) {
    auto reply = redis_->Command({"HGET", projection::AccountCreditKey(account), field});
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? reply->str() : "";
  }

  uint32_t Score(uint64_t account) {
    auto status = engine_->GetCredit(account);
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? status->score() : 9999;
  }

  FakeClock clock_{kStart};
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<MysqlCreditStore> store_;
  std::unique_ptr<RedisCreditProjection> projection_;
  std::unique_ptr<CreditEngine> engine_;
  uint64_t base_account_ = 0;
};

TEST_F(CreditEngineTest, VerificationStartsAt600AndIsProjected) {
  auto unrated = engine_->GetCredit(Account(1));
  ASSERT_TRUE(unrated.ok()) << unrated.status();
  EXPECT_FALSE(unrated->rated());
  EXPECT_EQ(unrated->level(), 0u);

  auto verified = Verify(Account(1));
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->status().score(), 600u);
  EXPECT_EQ(verified->status().level(), 2u);
  EXPECT_EQ(verified->entry().delta(), 600);
  EXPECT_EQ(verified->entry().source_service(), "identity");
  EXPECT_EQ(Projected(Account(1), "score"), "600");
  EXPECT_EQ(Projected(Account(1), "level"), "2");
  EXPECT_EQ(Projected(Account(1), "groups_may_create"), "10");
  EXPECT_EQ(Projected(Account(1), "groups_may_join"), "500");
  EXPECT_EQ(Projected(Account(1), "max_create_tier"), "2");
  EXPECT_EQ(Projected(Account(1), "may_be_admin"), "1");

  // A retry replays; a second verification under another id is refused.
  auto again = Verify(Account(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->entry().entry_id(), verified->entry().entry_id());
  auto twice = Record(Account(1), v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "other", "identity");
  EXPECT_EQ(ErrorReason(twice.status()), "IDENTITY_ALREADY_VERIFIED");
  EXPECT_EQ(Score(Account(1)), 600u);
}

TEST_F(CreditEngineTest, LedgerReplayEqualsMaterialisedScore) {
  ASSERT_TRUE(Verify(Account(2)).ok());
  ASSERT_TRUE(Record(Account(2), v1::CREDIT_EVENT_TYPE_BLACKLISTED, "e1").ok());
  ASSERT_TRUE(Record(Account(2), v1::CREDIT_EVENT_TYPE_BLACKLISTED, "e2").ok());
  auto clamped = Record(Account(2), v1::CREDIT_EVENT_TYPE_GROUP_CLOSED, "e3");
  ASSERT_TRUE(clamped.ok()) << clamped.status();
  EXPECT_EQ(clamped->status().score(), 0u);
  EXPECT_EQ(clamped->entry().delta(), 0);  // clamped at 0: nothing applied
  v1::RecordEventRequest reversal;
  reversal.set_request_id("r1");
  reversal.set_account_id(Account(2));
  reversal.set_event_type(v1::CREDIT_EVENT_TYPE_REVERSAL);
  reversal.set_reverses_event_id("e2");
  ASSERT_TRUE(ValidateRecordEvent(reversal).ok());
  auto reversed = engine_->RecordEvent(From("moderation", "RecordEvent"), reversal);
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  EXPECT_EQ(reversed->status().score(), 300u);
  reversal.set_request_id("r2");
  EXPECT_EQ(ErrorReason(engine_->RecordEvent(From("moderation", "RecordEvent"), reversal).status()),
            "EVENT_ALREADY_REVERSED");
  reversal.set_request_id("r3");
  reversal.set_reverses_event_id("nope");
  EXPECT_EQ(ErrorReason(engine_->RecordEvent(From("moderation", "RecordEvent"), reversal).status()),
            "REVERSED_EVENT_NOT_FOUND");
  ASSERT_TRUE(Record(Account(2), v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED, "e4").ok());

  EXPECT_TRUE(engine_->VerifyLedger(Account(2)).ok());
  auto ledger = store_->Ledger(Account(2));
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(*ReplayLedger(*ledger), 305);
  EXPECT_EQ(Score(Account(2)), 305u);

  // Tampering with the materialised row is caught by the replay check.
  auto lease = pool_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(
      Execute(**lease, "UPDATE credit_accounts SET score = 900 WHERE account_id = ?", {Account(2)})
          .ok());
  EXPECT_EQ(ErrorReason(engine_->VerifyLedger(Account(2))), "LEDGER_MISMATCH");
  // The check also runs over every account when the service starts.
  auto report = engine_->Rebuild();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mismatched, std::vector<uint64_t>{Account(2)});
}

TEST_F(CreditEngineTest, FiftyConcurrentEventsLoseNoUpdate) {
  ASSERT_TRUE(Verify(Account(3)).ok());
  std::vector<std::thread> threads;
  threads.reserve(50);
  std::atomic<int> failures{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto recorded =
          Record(Account(3), v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED, absl::StrCat("c", i));
      if (!recorded.ok()) {
        ADD_FAILURE() << recorded.status();
        ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Score(Account(3)), 850u);  // 600 + 50 * 5
  EXPECT_EQ(Projected(Account(3), "level"), "4");
  EXPECT_TRUE(engine_->VerifyLedger(Account(3)).ok());
}

TEST_F(CreditEngineTest, PenaltyHoldsUntilItsFloorDateAndLiftsAfter) {
  ASSERT_TRUE(Verify(Account(4)).ok());
  auto applied =
      Apply(Penalty(Account(4), v1::PENALTY_KIND_LEVEL_DOWNGRADE, 2, absl::Hours(24 * 90), 41));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->penalty().level_cap(), 0u);
  EXPECT_EQ(applied->status().level(), 0u);
  EXPECT_EQ(applied->status().score(), 600u);
  EXPECT_EQ(applied->status().entitlements().groups_may_create(), 0u);
  EXPECT_EQ(Projected(Account(4), "level"), "0");
  EXPECT_EQ(Projected(Account(4), "may_be_admin"), "0");

  // Two clean months raise the score but not the level before the floor date.
  clock_.Advance(absl::Hours(24 * 89));
  auto during = engine_->GetCredit(Account(4));
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->score(), 620u);
  EXPECT_EQ(during->level(), 0u);
  EXPECT_EQ(during->active_penalties_size(), 1);

  clock_.Advance(absl::Hours(24 * 2));
  auto processed = engine_->CatchUpDue(100);
  ASSERT_TRUE(processed.ok()) << processed.status();
  EXPECT_GE(*processed, 1);
  auto after = engine_->GetCredit(Account(4));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->level(), 2u);
  EXPECT_EQ(after->active_penalties_size(), 0);
  EXPECT_EQ(Projected(Account(4), "level"), "2");
  EXPECT_EQ(Projected(Account(4), "groups_may_create"), "10");

  v1::ListCreditHistoryRequest history;
  history.set_account_id(Account(4));
  auto page = engine_->ListHistory(history);
  ASSERT_TRUE(page.ok()) << page.status();
  // Newest first: the third clean period, then the expiry on the floor date
  // (which comes first on the tie), each with the levels of its time.
  ASSERT_GE(page->entries_size(), 5);
  EXPECT_EQ(page->entries(0).event_type(), v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD);
  EXPECT_EQ(page->entries(0).level_before(), 2u);
  EXPECT_EQ(page->entries(1).kind(), v1::CHANGE_KIND_PENALTY_EXPIRED);
  EXPECT_EQ(page->entries(1).level_before(), 0u);
  EXPECT_EQ(page->entries(1).level_after(), 2u);
  EXPECT_EQ(page->entries(1).penalty_id(), applied->penalty().penalty_id());
  EXPECT_EQ(page->entries(2).event_type(), v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD);
  EXPECT_EQ(page->entries(2).level_after(), 0u);  // still capped
  EXPECT_TRUE(engine_->VerifyLedger(Account(4)).ok());
}

TEST_F(CreditEngineTest, RecoveryOverMonthsStopsAtMaxScore) {
  ASSERT_TRUE(Verify(Account(5)).ok());
  ASSERT_TRUE(Record(Account(5), v1::CREDIT_EVENT_TYPE_REPORT_UPHELD, "u1").ok());  // 550
  clock_.Advance(absl::Hours(24 * 29));
  EXPECT_EQ(Score(Account(5)), 550u);
  ASSERT_TRUE(Record(Account(5), v1::CREDIT_EVENT_TYPE_GROUP_WARNED, "u2").ok());  // 530, restarts
  clock_.Advance(absl::Hours(24 * 31));
  EXPECT_EQ(Score(Account(5)), 540u);
  clock_.Advance(absl::Hours(24 * 30 * 36));  // three years
  EXPECT_EQ(Score(Account(5)), 750u);         // recovery_rule.max_score
  EXPECT_TRUE(engine_->VerifyLedger(Account(5)).ok());
}

TEST_F(CreditEngineTest, LevelChangeUpdatesEntitlementsAndProjection) {
  ASSERT_TRUE(Verify(Account(6)).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        Record(Account(6), v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED, absl::StrCat("p", i)).ok());
  }
  EXPECT_EQ(Projected(Account(6), "level"), "3");  // 700
  EXPECT_EQ(Projected(Account(6), "groups_may_create"), "50");
  EXPECT_EQ(Projected(Account(6), "max_create_tier"), "3");
  auto revoked =
      Apply(Penalty(Account(6), v1::PENALTY_KIND_REVOKE_CREATION, 0, absl::Hours(24), 61));
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(Projected(Account(6), "groups_may_create"), "0");
  EXPECT_EQ(Projected(Account(6), "max_create_tier"), "0");
  auto suspended =
      Apply(Penalty(Account(6), v1::PENALTY_KIND_SUSPEND_ADMIN, 0, absl::Hours(48), 62));
  ASSERT_TRUE(suspended.ok());
  EXPECT_EQ(Projected(Account(6), "may_be_admin"), "0");

  v1::LiftPenaltyRequest lift;
  lift.set_request_id("lift-62");
  lift.set_penalty_id(suspended->penalty().penalty_id());
  lift.set_reason("disposition revoked");
  ASSERT_TRUE(ValidateLiftPenalty(lift).ok());
  auto lifted = engine_->LiftPenalty(From("moderation", "LiftPenalty"), lift);
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_EQ(lifted->penalty().state(), v1::PENALTY_STATE_LIFTED);
  EXPECT_TRUE(lifted->status().entitlements().may_be_admin());
  EXPECT_EQ(Projected(Account(6), "may_be_admin"), "1");
  auto replay = engine_->LiftPenalty(From("moderation", "LiftPenalty"), lift);
  ASSERT_TRUE(replay.ok()) << replay.status();
  lift.set_request_id("lift-62-again");
  EXPECT_EQ(ErrorReason(engine_->LiftPenalty(From("moderation", "LiftPenalty"), lift).status()),
            "PENALTY_NOT_ACTIVE");
  lift.set_penalty_id(999999999);
  EXPECT_EQ(ErrorReason(engine_->LiftPenalty(From("moderation", "LiftPenalty"), lift).status()),
            "PENALTY_NOT_FOUND");

  // A score drop across a threshold moves level and entitlements at once.
  auto dropped = Record(Account(6), v1::CREDIT_EVENT_TYPE_BLACKLISTED, "b1");
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(dropped->entry().level_before(), 3u);
  EXPECT_EQ(dropped->entry().level_after(), 1u);  // 700 - 300 = 400
  EXPECT_EQ(Projected(Account(6), "groups_may_join"), "100");
}

TEST_F(CreditEngineTest, BadInputIsAClearErrorAndNeverChangesTheScore) {
  ASSERT_TRUE(Verify(Account(7)).ok());
  auto unknown = Record(Account(7), static_cast<v1::CreditEventType>(99), "x1");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(unknown.status()), "EVENT_TYPE_UNKNOWN");

  ASSERT_TRUE(Record(Account(7), v1::CREDIT_EVENT_TYPE_GROUP_WARNED, "dup").ok());  // 580
  auto reused = Record(Account(7), v1::CREDIT_EVENT_TYPE_GROUP_CLOSED, "dup");
  EXPECT_EQ(reused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrorReason(reused.status()), "REQUEST_ID_REUSED");

  auto zero = Apply(Penalty(Account(7), v1::PENALTY_KIND_LEVEL_DOWNGRADE, 0, absl::Hours(1), 71));
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(zero.status()), "PENALTY_LEVELS_ZERO");
  auto past = Apply(Penalty(Account(7), v1::PENALTY_KIND_LEVEL_DOWNGRADE, 1, -absl::Hours(1), 72));
  EXPECT_EQ(ErrorReason(past.status()), "PENALTY_UNTIL_IN_PAST");
  auto forever =
      Apply(Penalty(Account(7), v1::PENALTY_KIND_SUSPEND_ADMIN, 0, absl::Hours(24 * 1000), 73));
  EXPECT_EQ(ErrorMetadata(forever.status(), "field"), "until");

  auto not_theirs = Record(Account(7), v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED, "y", "groups");
  EXPECT_EQ(ErrorReason(not_theirs.status()), "EVENT_TYPE_NOT_ALLOWED_FOR_CALLER");
  auto own = Record(Account(7), v1::CREDIT_EVENT_TYPE_CLEAN_PERIOD, "z", "moderation");
  EXPECT_EQ(ErrorReason(own.status()), "EVENT_TYPE_NOT_ALLOWED_FOR_CALLER");

  ASSERT_TRUE(
      Apply(Penalty(Account(7), v1::PENALTY_KIND_SUSPEND_ADMIN, 0, absl::Hours(1), 74)).ok());
  auto same_disposition =
      Penalty(Account(7), v1::PENALTY_KIND_REVOKE_CREATION, 0, absl::Hours(1), 74);
  same_disposition.set_request_id("another");
  EXPECT_EQ(ErrorReason(Apply(same_disposition).status()), "PENALTY_EXISTS_FOR_DISPOSITION");

  EXPECT_EQ(Score(Account(7)), 580u);
  EXPECT_EQ(Projected(Account(7), "score"), "580");
  EXPECT_TRUE(engine_->VerifyLedger(Account(7)).ok());
}

TEST_F(CreditEngineTest, HistoryPaginatesNewestFirst) {
  ASSERT_TRUE(Verify(Account(8)).ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(
        Record(Account(8), v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED, absl::StrCat("h", i)).ok());
  }
  v1::ListCreditHistoryRequest request;
  request.set_account_id(Account(8));
  request.mutable_page()->set_page_size(3);
  std::vector<uint64_t> seen;
  for (int pages = 0; pages < 5; ++pages) {
    ASSERT_TRUE(ValidateHistoryRequest(request).ok());
    auto page = engine_->ListHistory(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& entry : page->entries()) seen.push_back(entry.entry_id());
    if (page->page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(page->page().next_page_token());
  }
  ASSERT_EQ(seen.size(), 7u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i - 1], seen[i]);
  request.mutable_page()->set_page_token("garbage");
  EXPECT_EQ(ErrorMetadata(engine_->ListHistory(request).status(), "field"), "page.page_token");
}

TEST_F(CreditEngineTest, RebuildRestoresTheProjectionAndRecordsPolicyChanges) {
  ASSERT_TRUE(Verify(Account(9)).ok());
  ASSERT_TRUE(redis_->Command({"DEL", projection::AccountCreditKey(Account(9))}).ok());
  ASSERT_TRUE(engine_->Rebuild().ok());
  EXPECT_TRUE(engine_->Rebuild()->mismatched.empty());
  EXPECT_EQ(Projected(Account(9), "level"), "2");

  // A new policy that puts 600 at level 3 moves the level, explained.
  v1::CreditPolicy stricter = policy_->proto();
  stricter.set_version("lenient-2");
  stricter.mutable_level_rules(3)->set_min_score(600);
  auto policy = Policy::Create(stricter, "test");
  ASSERT_TRUE(policy.ok()) << policy.status();
  CreditEngine engine(*store_, *projection_, *policy, clock_);
  ASSERT_TRUE(engine.Rebuild().ok());
  EXPECT_EQ(Projected(Account(9), "level"), "3");
  v1::ListCreditHistoryRequest history;
  history.set_account_id(Account(9));
  auto page = engine.ListHistory(history);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries(0).kind(), v1::CHANGE_KIND_POLICY_CHANGED);
  EXPECT_EQ(page->entries(0).level_after(), 3u);
}

TEST_F(CreditEngineTest, ApplyPenaltyIsIdempotentByRequestIdAndCounted) {
  prometheus::Registry registry;
  CreditMetrics metrics(registry);
  CreditEngine engine(*store_, *projection_, *policy_, clock_, &metrics);
  ASSERT_TRUE(Verify(Account(10)).ok());
  v1::ApplyPenaltyRequest request =
      Penalty(Account(10), v1::PENALTY_KIND_LEVEL_DOWNGRADE, 1, absl::Hours(24 * 30), 101);
  auto first = engine.ApplyPenalty(From("moderation", "ApplyPenalty"), request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status().level(), 1u);
  auto again = engine.ApplyPenalty(From("moderation", "ApplyPenalty"), request);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->penalty().penalty_id(), first->penalty().penalty_id());
  request.set_levels(2);
  auto reused = engine.ApplyPenalty(From("moderation", "ApplyPenalty"), request);
  EXPECT_EQ(ErrorReason(reused.status()), "REQUEST_ID_REUSED");
  auto status = engine.GetCredit(Account(10));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->active_penalties_size(), 1);
  EXPECT_EQ(status->level(), 1u);

  double applied = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name != "qunzu_credit_penalties_total") continue;
    for (const auto& metric : family.metric) {
      bool downgrade = false, applied_label = false;
      for (const auto& label : metric.label) {
        downgrade |= label.value == "PENALTY_KIND_LEVEL_DOWNGRADE";
        applied_label |= label.value == "applied";
      }
      if (downgrade && applied_label) applied = metric.counter.value;
    }
  }
  EXPECT_EQ(applied, 1);
}

}  // namespace
}  // namespace qunzu::credit
