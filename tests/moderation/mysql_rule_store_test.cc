// Rule sets in real MariaDB (through `make test` or with-servers.sh):
// versions, REPLACE and MERGE, conflicts, idempotent retries, the audit
// outbox row, and the RuleEngine picking up an activated version.
#include "services/moderation/mysql_rule_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/moderation/rule_engine.h"
#include "services/moderation/rule_validation.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

// The store's rules without its cache.
class UncachedSource final : public RuleSource {
 public:
  explicit UncachedSource(RuleSource& source) : source_(source) {}
  absl::StatusOr<int64_t> Generation() override { return source_.Generation(); }
  absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) override {
    return source_.LoadActive(generation, rules);
  }

 private:
  RuleSource& source_;
};

class ModerationRuleStoreTest : public testing::CommonSchemaTest {
 protected:
  ModerationRuleStoreTest() : CommonSchemaTest("moderation", 8) {}
  void SetUp() override {
    CommonSchemaTest::SetUp();
    ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", RuleSetMigrations()).ok());
    store_ = std::make_unique<MysqlRuleStore>(*pool_, SystemClock::Get());
  }
  static RequestContext Operator() {
    return RequestContext{Caller{"ops", common::v1::ROLE_OPERATOR, ""}, "ipv4:127.0.0.1:1",
                          "/qunzu.moderation.v1.ModerationService/UpsertRuleSet"};
  }
  static v1::Rule MakeRule(const std::string& pattern,
                           v1::RuleAction action = v1::RULE_ACTION_BLOCK) {
    v1::Rule rule;
    rule.set_kind(v1::RULE_KIND_LITERAL);
    rule.set_pattern(pattern);
    rule.set_category(v1::CONTENT_CATEGORY_GAMBLING);
    rule.set_action(action);
    return rule;
  }
  absl::StatusOr<v1::UpsertRuleSetResponse> Upsert(const v1::UpsertRuleSetRequest& request) {
    RETURN_IF_ERROR(ValidateUpsertRuleSet(request));
    return store_->Upsert(Operator(), request);
  }
  // Creates rule set `name` with these terms and puts it in force.
  void ActivateNewSet(const std::string& name, const std::vector<v1::Rule>& rules) {
    v1::UpsertRuleSetRequest create;
    create.set_request_id(name);
    create.set_name(name);
    create.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
    for (const v1::Rule& rule : rules) *create.add_rules() = rule;
    create.set_activate(true);
    auto created = Upsert(create);
    ASSERT_TRUE(created.ok()) << created.status();
  }
  // The cache key of the rules in force, compiled without the cache.
  std::string KeyInForce() {
    UncachedSource uncached(*store_);
    RuleEngine reference(uncached);
    EXPECT_TRUE(reference.Refresh().ok());
    return reference.Current() == nullptr ? "" : reference.Current()->compiled->cache_key();
  }
  Verdict Screen(const RuleEngine& engine, absl::string_view text) {
    NormalizedText normalized;
    ScanResult result;
    std::shared_ptr<const RuleSnapshot> snapshot;
    EXPECT_TRUE(engine.Screen(text, "text", false, &normalized, &result, &snapshot).ok());
    return result.verdict;
  }

  std::unique_ptr<MysqlRuleStore> store_;
};

TEST_F(ModerationRuleStoreTest, VersionsMergeAndActivation) {
  RuleEngine engine(*store_);
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kAllow);

  v1::UpsertRuleSetRequest create;
  create.set_request_id("r1");
  create.set_name("gambling");
  create.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
  *create.add_rules() = MakeRule("赌博");
  *create.add_rules() = MakeRule("赌球");
  create.set_activate(true);
  auto created = Upsert(create);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->version(), 1U);
  ASSERT_EQ(created->rule_ids_size(), 2);
  EXPECT_EQ(created->rule_set().active_version(), 1U);
  // A retry returns the first answer and writes nothing more.
  auto again = Upsert(create);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), created->SerializeAsString());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 1);

  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "賭 博"), Verdict::kBlock);

  v1::UpsertRuleSetRequest merge;
  merge.set_request_id("r2");
  merge.set_rule_set_id(created->rule_set().rule_set_id());
  merge.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
  merge.set_base_version(1);
  merge.add_remove_rule_ids(created->rule_ids(0));
  *merge.add_rules() = MakeRule("代开发票", v1::RULE_ACTION_HOLD);
  // Not activated: the engine keeps version 1.
  auto merged = Upsert(merge);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->version(), 2U);
  EXPECT_EQ(merged->rule_set().rule_count(), 2U);
  EXPECT_EQ(merged->rule_set().active_version(), 1U);
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kBlock);

  v1::UpsertRuleSetRequest activate;
  activate.set_request_id("r3");
  activate.set_rule_set_id(created->rule_set().rule_set_id());
  activate.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
  activate.set_base_version(2);
  activate.set_activate(true);
  ASSERT_TRUE(Upsert(activate).ok());
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kAllow);
  EXPECT_EQ(Screen(engine, "赌球"), Verdict::kBlock);
  EXPECT_EQ(Screen(engine, "代 开 發 票"), Verdict::kHold);

  v1::ListRuleSetsRequest list;
  auto listed = store_->List(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->rule_sets_size(), 1);
  EXPECT_EQ(listed->rule_sets(0).latest_version(), 3U);
  EXPECT_EQ(listed->rule_sets(0).active_version(), 3U);
}

TEST_F(ModerationRuleStoreTest, RefusalsLeaveNoTrace) {
  v1::UpsertRuleSetRequest create;
  create.set_request_id("c1");
  create.set_name("set");
  create.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
  *create.add_rules() = MakeRule("x1");
  auto created = Upsert(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const uint64_t id = created->rule_set().rule_set_id();

  create.set_request_id("c2");
  EXPECT_EQ(ErrorReason(Upsert(create).status()), "RULE_SET_NAME_TAKEN");
  create.set_request_id("c1");
  create.set_description("changed");
  EXPECT_EQ(ErrorReason(Upsert(create).status()), "REQUEST_ID_REUSED");

  v1::UpsertRuleSetRequest stale;
  stale.set_request_id("s1");
  stale.set_rule_set_id(id);
  stale.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
  stale.set_base_version(0);
  EXPECT_EQ(ErrorReason(Upsert(stale).status()), "RULE_SET_VERSION_CONFLICT");
  stale.set_base_version(1);
  stale.add_remove_rule_ids(999999);
  EXPECT_EQ(ErrorReason(Upsert(stale).status()), "RULE_NOT_FOUND");
  stale.clear_remove_rule_ids();
  stale.set_rule_set_id(id + 100);
  EXPECT_EQ(ErrorReason(Upsert(stale).status()), "RULE_SET_NOT_FOUND");

  v1::UpsertRuleSetRequest bad;
  bad.set_request_id("b1");
  bad.set_name("bad");
  bad.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
  v1::Rule regex = MakeRule("[a-z]{100,5000}");
  regex.set_kind(v1::RULE_KIND_REGEX);
  *bad.add_rules() = regex;
  auto refused = Upsert(bad);
  EXPECT_EQ(ErrorReason(refused.status()), "REGEX_REJECTED");
  EXPECT_FALSE(ErrorMetadata(refused.status(), "why").empty());
  bad.mutable_rules(0)->set_pattern("\xff");
  EXPECT_EQ(ErrorMetadata(Upsert(bad).status(), "field"), "rules[0].pattern");

  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_sets"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 1);
}

TEST_F(ModerationRuleStoreTest, ACompiledSetIsSharedWithTheOtherReplicas) {
  ActivateNewSet("shared", {MakeRule("赌博"), MakeRule("哈哈", v1::RULE_ACTION_HOLD)});

  RuleEngine first(*store_);
  ASSERT_TRUE(first.Refresh().ok());
  EXPECT_FALSE(first.Current()->compiled->from_cache());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_compiled_sets"), 1);
  // Another replica (its own store, the same database) loads what the
  // first compiled, and screens the same.
  MysqlRuleStore other_store(*pool_, SystemClock::Get());
  RuleEngine second(other_store);
  ASSERT_TRUE(second.Refresh().ok());
  EXPECT_TRUE(second.Current()->compiled->from_cache());
  EXPECT_EQ(second.Current()->compiled->cache_key(), first.Current()->compiled->cache_key());
  for (const RuleEngine* engine : {&first, &second}) {
    EXPECT_EQ(Screen(*engine, "賭 博"), Verdict::kBlock);
    EXPECT_EQ(Screen(*engine, "哈哈哈"), Verdict::kHold);
    EXPECT_EQ(Screen(*engine, "哈"), Verdict::kAllow);
  }
}

TEST_F(ModerationRuleStoreTest, OneReplicaCompilesWhileTheOthersWait) {
  ActivateNewSet("claimed", {MakeRule("赌博")});
  const std::string key = KeyInForce();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_compiled_sets"), 0);

  // Replica a is compiling the set: it holds the claim.
  MysqlRuleStore a(*pool_, SystemClock::Get());
  MysqlRuleStore b(*pool_, SystemClock::Get());
  auto claim = a.ClaimCompile(key);
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_NE(*claim, nullptr);
  auto taken = b.ClaimCompile(key);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, nullptr);
  // Replica b waits: no compile, no snapshot yet, and not an error.
  RuleEngine waiting(b);
  absl::Status refreshed = waiting.Refresh();
  EXPECT_EQ(ErrorReason(refreshed), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(refreshed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waiting.Current(), nullptr);
  EXPECT_EQ(waiting.LastError(), "");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_compiled_sets"), 0);

  // Replica a goes away mid-compile: its claim goes with its connection,
  // and b compiles (and shares) the set itself.
  claim->reset();
  ASSERT_TRUE(waiting.Refresh().ok());
  EXPECT_FALSE(waiting.Current()->compiled->from_cache());
  EXPECT_EQ(Screen(waiting, "赌博"), Verdict::kBlock);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_compiled_sets"), 1);
  RuleEngine later(a);
  ASSERT_TRUE(later.Refresh().ok());
  EXPECT_TRUE(later.Current()->compiled->from_cache());
}

TEST_F(ModerationRuleStoreTest, AReplicaWaitsForAnotherOnesCompileOnlySoLong) {
  ActivateNewSet("stuck", {MakeRule("赌博")});
  // Replica a claimed the compile and never finishes.
  MysqlRuleStore a(*pool_, SystemClock::Get());
  auto claim = a.ClaimCompile(KeyInForce());
  ASSERT_TRUE(claim.ok() && *claim != nullptr);
  MysqlRuleStore b(*pool_, SystemClock::Get());
  RuleEngine waiting(b, absl::ZeroDuration());
  EXPECT_EQ(ErrorReason(waiting.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  // Its patience spent, b compiles the rules itself.
  ASSERT_TRUE(waiting.Refresh().ok());
  EXPECT_FALSE(waiting.Current()->compiled->from_cache());
  EXPECT_EQ(Screen(waiting, "赌博"), Verdict::kBlock);
  // A patient replica keeps waiting.
  MysqlRuleStore c(*pool_, SystemClock::Get());
  RuleEngine patient(c);
  EXPECT_EQ(ErrorReason(patient.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(ErrorReason(patient.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(patient.Current(), nullptr);
}

TEST_F(ModerationRuleStoreTest, TheCompiledSetCacheKeepsEntriesWholeAndDropsStaleOnes) {
  FakeClock clock(absl::FromUnixSeconds(1790000000));
  MysqlRuleStore store(*pool_, clock);
  // Three chunks, every byte value.
  std::string big(9 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
  ASSERT_TRUE(store.Store("big", big).ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_compiled_sets WHERE cache_key = 'big'"), 3);
  auto loaded = store.Load("big");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE(**loaded == big);
  auto missing = store.Load("missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  // Stored again, shorter: nothing of the first entry is left.
  ASSERT_TRUE(store.Store("big", "short").ok());
  loaded = store.Load("big");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ(**loaded, "short");
  ASSERT_TRUE(store.Store("empty", "").ok());
  loaded = store.Load("empty");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ(**loaded, "");

  // "used" is loaded six days on, "idle" never; a store eight days on
  // drops only what nobody used for a week.
  ASSERT_TRUE(store.Store("used", "u").ok());
  ASSERT_TRUE(store.Store("idle", "i").ok());
  clock.Advance(absl::Hours(24 * 6));
  ASSERT_TRUE(store.Load("used").ok());
  clock.Advance(absl::Hours(24 * 2));
  ASSERT_TRUE(store.Store("new", "n").ok());
  for (const char* key : {"used", "new"}) {
    auto kept = store.Load(key);
    ASSERT_TRUE(kept.ok());
    EXPECT_TRUE(kept->has_value()) << key;
  }
  for (const char* key : {"idle", "big", "empty"}) {
    auto dropped = store.Load(key);
    ASSERT_TRUE(dropped.ok());
    EXPECT_FALSE(dropped->has_value()) << key;
  }
}

}  // namespace
}  // namespace qunzu::moderation
