// Rule sets in real MariaDB (through `make test` or with-servers.sh):
// versions, REPLACE and MERGE, conflicts, idempotent retries, the audit
// outbox rows, and the RuleEngine compiling an activated version before it
// is activated, sharing it with the other replicas, or rejecting it.
#include "services/moderation/mysql_rule_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
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

// The store, counting how often the pending version and the rules in force
// are read.
class CountingSource final : public RuleSource {
 public:
  explicit CountingSource(MysqlRuleStore& store) : store_(store) {}
  absl::StatusOr<int64_t> Generation() override { return store_.Generation(); }
  absl::StatusOr<std::string> CompiledKeyOf(int64_t generation) override {
    return store_.CompiledKeyOf(generation);
  }
  absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) override {
    ++active_reads;
    return store_.LoadActive(generation, rules);
  }
  CompiledRulesCache* compiled_cache() override { return &store_; }
  absl::StatusOr<std::optional<PendingActivation>> LoadPending() override {
    ++pending_reads;
    return store_.LoadPending();
  }
  absl::StatusOr<int64_t> Activate(const PendingActivation& pending) override {
    return store_.Activate(pending);
  }
  absl::Status Reject(const PendingActivation& pending, const absl::Status& why) override {
    return store_.Reject(pending, why);
  }
  int pending_reads = 0;
  int active_reads = 0;

 private:
  MysqlRuleStore& store_;
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
  // Creates rule set `name` with these terms, activation requested.
  uint64_t CreateSet(const std::string& name, const std::vector<v1::Rule>& rules) {
    v1::UpsertRuleSetRequest create;
    create.set_request_id(name);
    create.set_name(name);
    create.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
    for (const v1::Rule& rule : rules) *create.add_rules() = rule;
    create.set_activate(true);
    auto created = Upsert(create);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->rule_set().rule_set_id() : 0;
  }
  // A request for an activated version of set `id` on top of base_version.
  static v1::UpsertRuleSetRequest ActivatedVersion(const std::string& request_id, uint64_t id,
                                                   uint32_t base_version,
                                                   v1::RuleSetUpdateMode mode,
                                                   const v1::Rule& rule) {
    v1::UpsertRuleSetRequest request;
    request.set_request_id(request_id);
    request.set_rule_set_id(id);
    request.set_mode(mode);
    request.set_base_version(base_version);
    *request.add_rules() = rule;
    request.set_activate(true);
    return request;
  }
  // Creates rule set `name` and puts it in force without compiling it, as
  // a replica on another CPU class or after the cache dropped the entry
  // finds it: in force, nothing in the cache.
  void ActivateNewSet(const std::string& name, const std::vector<v1::Rule>& rules) {
    CreateSet(name, rules);
    auto pending = store_->LoadPending();
    ASSERT_TRUE(pending.ok() && pending->has_value());
    ASSERT_TRUE(store_->Activate(**pending).ok());
  }
  // The cache key of the rules in force, compiled without the cache.
  std::string KeyInForce() {
    UncachedSource uncached(*store_);
    RuleEngine reference(uncached);
    EXPECT_TRUE(reference.Refresh().ok());
    return reference.Current() == nullptr ? "" : reference.Current()->compiled->cache_key();
  }
  // The cache key of the rules in force once the waiting version is.
  std::string KeyPending() {
    auto pending = store_->LoadPending();
    EXPECT_TRUE(pending.ok() && pending->has_value());
    if (!pending.ok() || !pending->has_value()) return "";
    std::vector<Rule> rules;
    std::vector<std::pair<uint64_t, uint32_t>> origin;
    for (const ActiveRule& rule : (*pending)->rules) {
      rules.push_back(rule.rule);
      origin.emplace_back(rule.rule_set_id, rule.version);
    }
    auto compiled = CompiledRules::Compile(std::move(rules), nullptr, OriginAnnex(origin));
    EXPECT_TRUE(compiled.ok());
    return compiled.ok() ? (*compiled)->cache_key() : "";
  }
  v1::RuleSet Listed(uint64_t rule_set_id) {
    auto listed = store_->List(v1::ListRuleSetsRequest());
    EXPECT_TRUE(listed.ok()) << listed.status();
    for (const v1::RuleSet& set : listed->rule_sets()) {
      if (set.rule_set_id() == rule_set_id) return set;
    }
    ADD_FAILURE() << "no rule set " << rule_set_id;
    return v1::RuleSet();
  }
  // The actions of the audit events in the outbox, oldest first.
  std::vector<std::string> AuditedActions() {
    std::vector<std::string> actions;
    auto lease = pool_->Acquire(absl::Seconds(5));
    EXPECT_TRUE(lease.ok());
    EXPECT_TRUE(Query(**lease, "SELECT payload FROM outbox WHERE topic = 'audit' ORDER BY id", {},
                      [&](const sql::ResultSet& row) {
                        audit::v1::AuditEvent event;
                        EXPECT_TRUE(event.ParseFromString(row.getString(1)));
                        actions.push_back(event.action());
                        return absl::OkStatus();
                      })
                    .ok());
    return actions;
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
  // Not in force until compiled.
  EXPECT_EQ(created->rule_set().active_version(), 0U);
  EXPECT_EQ(created->rule_set().compile_state(), v1::COMPILE_STATE_COMPILING);
  // A retry returns the first answer and writes nothing more.
  auto again = Upsert(create);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), created->SerializeAsString());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 2);
  EXPECT_EQ(AuditedActions(), std::vector<std::string>{"RULE_SET_VERSION_CREATED"});

  // The engine's poll compiles the version, activates it and puts it in
  // force; the activation is audited as moderation's own.
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "賭 博"), Verdict::kBlock);
  EXPECT_EQ(AuditedActions(),
            (std::vector<std::string>{"RULE_SET_VERSION_CREATED", "RULE_SET_VERSION_ACTIVATED"}));
  EXPECT_EQ(Listed(created->rule_set().rule_set_id()).active_version(), 1U);

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
  EXPECT_EQ(listed->rule_sets(0).compile_state(), v1::COMPILE_STATE_READY);
  EXPECT_TRUE(listed->rule_sets(0).has_compiled_at());
}

// A version writes only what it changes; every version still reads as
// its own full list.
TEST_F(ModerationRuleStoreTest, VersionsShareTheRulesTheyHaveInCommon) {
  RuleEngine engine(*store_);
  const uint64_t id =
      CreateSet("shared-rows", {MakeRule("赌博"), MakeRule("赌球"), MakeRule("博彩")});
  ASSERT_TRUE(engine.Refresh().ok());
  const std::vector<uint64_t> v1_ids = [&] {
    std::vector<uint64_t> out;
    for (const Rule& rule : engine.Current()->compiled->rules()) out.push_back(rule.id);
    return out;
  }();
  ASSERT_EQ(v1_ids.size(), 3U);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 3);

  // v2: one removed, one replaced (HOLD now), one added.
  v1::UpsertRuleSetRequest merge =
      ActivatedVersion("v2", id, 1, v1::RULE_SET_UPDATE_MODE_MERGE, MakeRule("代开发票"));
  merge.add_remove_rule_ids(v1_ids[0]);
  v1::Rule replaced = MakeRule("赌球", v1::RULE_ACTION_HOLD);
  replaced.set_rule_id(v1_ids[1]);
  *merge.add_rules() = replaced;
  auto v2 = Upsert(merge);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->rule_set().rule_count(), 3U);
  ASSERT_EQ(v2->rule_ids_size(), 2);
  EXPECT_EQ(v2->rule_ids(1), v1_ids[1]);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 5);  // not 3 + 3
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kAllow);
  EXPECT_EQ(Screen(engine, "赌球"), Verdict::kHold);
  EXPECT_EQ(Screen(engine, "博彩"), Verdict::kBlock);
  EXPECT_EQ(Screen(engine, "代开发票"), Verdict::kBlock);
  std::vector<uint64_t> v2_ids;
  for (const Rule& rule : engine.Current()->compiled->rules()) v2_ids.push_back(rule.id);
  EXPECT_TRUE(std::is_sorted(v2_ids.begin(), v2_ids.end()));
  EXPECT_EQ(v2_ids, (std::vector<uint64_t>{v1_ids[1], v1_ids[2], v2->rule_ids(0)}));

  // v3 adds one rule: one row.
  auto v3 =
      Upsert(ActivatedVersion("v3", id, 2, v1::RULE_SET_UPDATE_MODE_MERGE, MakeRule("六合彩")));
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->rule_set().rule_count(), 4U);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 6);
  // A rule removed in v2 is not in v2's base any more.
  v1::UpsertRuleSetRequest stale =
      ActivatedVersion("v4-stale", id, 3, v1::RULE_SET_UPDATE_MODE_MERGE, MakeRule("x"));
  stale.add_remove_rule_ids(v1_ids[0]);
  EXPECT_EQ(ErrorReason(Upsert(stale).status()), "RULE_NOT_FOUND");
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(engine.Current()->compiled->rules().size(), 4U);
  EXPECT_EQ(Screen(engine, "六合彩"), Verdict::kBlock);

  // v4 replaces everything: the old rules stay only in their versions.
  auto v4 =
      Upsert(ActivatedVersion("v4", id, 3, v1::RULE_SET_UPDATE_MODE_REPLACE, MakeRule("刷单")));
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->rule_set().rule_count(), 1U);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 7);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules WHERE until_version = 0"), 1);
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(engine.Current()->compiled->rules().size(), 1U);
  EXPECT_EQ(Screen(engine, "六合彩"), Verdict::kAllow);
  EXPECT_EQ(Screen(engine, "刷单"), Verdict::kBlock);
}

// A MERGE that names more rules than one statement's id list holds.
TEST_F(ModerationRuleStoreTest, AMergeReplacesRulesInBatches) {
  std::vector<v1::Rule> rules;
  for (int i = 0; i < 2500; ++i) rules.push_back(MakeRule(absl::StrCat("词", i, "条")));
  const uint64_t id = CreateSet("batches", rules);
  auto pending = store_->LoadPending();
  ASSERT_TRUE(pending.ok() && pending->has_value());
  v1::UpsertRuleSetRequest merge;
  merge.set_request_id("batches-v2");
  merge.set_rule_set_id(id);
  merge.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
  merge.set_base_version(1);
  for (const ActiveRule& rule : (*pending)->rules) {
    v1::Rule held = MakeRule(rule.rule.pattern, v1::RULE_ACTION_HOLD);
    held.set_rule_id(rule.rule.id);
    *merge.add_rules() = held;
  }
  auto merged = Upsert(merge);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->rule_set().rule_count(), 2500U);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules WHERE until_version = 2"), 2500);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules WHERE until_version = 0"), 2500);
  // One id past the base among them: refused, nothing written.
  merge.set_request_id("batches-v3");
  merge.set_base_version(2);
  merge.mutable_rules(1700)->set_rule_id(999999999);
  EXPECT_EQ(ErrorReason(Upsert(merge).status()), "RULE_NOT_FOUND");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM rule_set_rules"), 5000);
}

TEST_F(ModerationRuleStoreTest, AVersionThatDoesNotCompileIsRejectedAndTheOneInForceStays) {
  prometheus::Registry registry;
  RuleEngineMetrics metrics(registry);
  RuleEngine engine(*store_, kMaxWaitForOtherCompile, &metrics);
  const uint64_t id = CreateSet("set", {MakeRule("赌博")});
  ASSERT_TRUE(engine.Refresh().ok());
  const int64_t generation = *store_->Generation();

  // A term that is all noise passes no validation, but a version may hold
  // one written before a normaliser change: its compile fails.
  const v1::UpsertRuleSetRequest broken =
      ActivatedVersion("broken", id, 1, v1::RULE_SET_UPDATE_MODE_REPLACE, MakeRule("，，！"));
  ASSERT_TRUE(store_->Upsert(Operator(), broken).ok());
  EXPECT_EQ(Listed(id).compile_state(), v1::COMPILE_STATE_COMPILING);
  ASSERT_TRUE(engine.Refresh().ok());

  // Refused: version 1 stays in force, here and for every replica.
  const v1::RuleSet failed = Listed(id);
  EXPECT_EQ(failed.compile_state(), v1::COMPILE_STATE_FAILED);
  EXPECT_NE(failed.compile_error().find("PATTERN_EMPTY"), std::string::npos)
      << failed.compile_error();
  EXPECT_EQ(failed.active_version(), 1U);
  EXPECT_EQ(failed.latest_version(), 2U);
  EXPECT_EQ(*store_->Generation(), generation);
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kBlock);
  EXPECT_EQ(AuditedActions().back(), "RULE_SET_VERSION_REJECTED");
  EXPECT_EQ(testing::MetricValue(registry, "qunzu_moderation_rule_set_rejections_total"), 1);
  auto none = store_->LoadPending();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // The next version is not held up by it.
  const v1::UpsertRuleSetRequest fixed =
      ActivatedVersion("fixed", id, 2, v1::RULE_SET_UPDATE_MODE_REPLACE, MakeRule("赌球"));
  ASSERT_TRUE(Upsert(fixed).ok());
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(Listed(id).compile_state(), v1::COMPILE_STATE_READY);
  EXPECT_EQ(Listed(id).active_version(), 3U);
  EXPECT_EQ(Screen(engine, "赌球"), Verdict::kBlock);
  EXPECT_EQ(Screen(engine, "赌博"), Verdict::kAllow);
}

TEST_F(ModerationRuleStoreTest, AnActivationCompiledOnRulesThatMovedIsNotApplied) {
  // Set a's version 1 waits; a newer activated version replaces it in the
  // wait while the first is compiled: the first is never put in force.
  const uint64_t a = CreateSet("a", {MakeRule("赌博")});
  auto first = store_->LoadPending();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->version, 1U);
  const v1::UpsertRuleSetRequest newer =
      ActivatedVersion("newer", a, 1, v1::RULE_SET_UPDATE_MODE_MERGE, MakeRule("赌球"));
  ASSERT_TRUE(Upsert(newer).ok());
  const int64_t generation = *store_->Generation();
  EXPECT_EQ(ErrorReason(store_->Activate(**first).status()), kActivationStale);
  EXPECT_EQ(*store_->Generation(), generation);
  EXPECT_EQ(Listed(a).active_version(), 0U);

  // Set b waits with a's version 2 in its rules; set c is activated first
  // (another replica): b's compiled set no longer matches what is in force.
  const uint64_t b = CreateSet("b", {MakeRule("代开发票")});
  RuleEngine engine(*store_);
  ASSERT_TRUE(engine.Refresh().ok());  // a version 2, the oldest waiting
  EXPECT_EQ(Listed(a).active_version(), 2U);
  const uint64_t c = CreateSet("c", {MakeRule("六合彩")});
  auto for_b = store_->LoadPending();
  ASSERT_TRUE(for_b.ok() && for_b->has_value());
  EXPECT_EQ((*for_b)->rule_set_id, b);
  PendingActivation for_c = **for_b;
  for_c.rule_set_id = c;
  for_c.version = 1;
  ASSERT_TRUE(store_->Activate(for_c).ok());
  auto stale = store_->Activate(**for_b);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ErrorReason(stale.status()), kActivationStale);
  EXPECT_EQ(Listed(b).active_version(), 0U);
  // The next poll reads b again, on top of c, and puts all three in force.
  absl::Status refreshed = engine.Refresh();
  ASSERT_TRUE(refreshed.ok()) << refreshed;
  EXPECT_EQ(Listed(b).active_version(), 1U);
  for (const char* text : {"赌博", "赌球", "代开发票", "六合彩"}) {
    EXPECT_NE(Screen(engine, text), Verdict::kAllow) << text;
  }
  EXPECT_EQ(engine.Current()->generation, *store_->Generation());
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
  CreateSet("shared", {MakeRule("赌博"), MakeRule("哈哈", v1::RULE_ACTION_HOLD)});
  // Nothing is in force before a replica has compiled it.
  std::vector<ActiveRule> active;
  int64_t generation = -1;
  ASSERT_TRUE(store_->LoadActive(&generation, &active).ok());
  EXPECT_TRUE(active.empty());

  RuleEngine first(*store_);
  ASSERT_TRUE(first.Refresh().ok());
  EXPECT_FALSE(first.Current()->compiled->from_cache());
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM rule_compiled_sets WHERE cache_key = '",
                               first.Current()->compiled->cache_key(), "'")),
            1);
  // Another replica (its own store, the same database) loads what the
  // first compiled, and screens the same.
  MysqlRuleStore other_store(*pool_, SystemClock::Get());
  RuleEngine second(other_store);
  ASSERT_TRUE(second.Refresh().ok());
  EXPECT_TRUE(second.Current()->compiled->from_cache());
  EXPECT_EQ(second.Current()->compiled->cache_key(), first.Current()->compiled->cache_key());
  EXPECT_EQ(second.Current()->generation, first.Current()->generation);
  for (const RuleEngine* engine : {&first, &second}) {
    EXPECT_EQ(Screen(*engine, "賭 博"), Verdict::kBlock);
    EXPECT_EQ(Screen(*engine, "哈哈哈"), Verdict::kHold);
    EXPECT_EQ(Screen(*engine, "哈"), Verdict::kAllow);
  }
  EXPECT_EQ(AuditedActions(),
            (std::vector<std::string>{"RULE_SET_VERSION_CREATED", "RULE_SET_VERSION_ACTIVATED"}));
}

// The other replicas take an activated set by the key recorded with its
// generation: no rule is read, nothing is normalised; and when that entry is
// gone they read and build as before.
TEST_F(ModerationRuleStoreTest, AnActivatedSetReachesTheOtherReplicasByItsKeyAlone) {
  const uint64_t first_set = CreateSet("by-key-1", {MakeRule("赌博")});
  RuleEngine a(*store_);
  ASSERT_TRUE(a.Refresh().ok());
  const uint64_t second_set =
      CreateSet("by-key-2", {MakeRule("哈哈", v1::RULE_ACTION_HOLD), MakeRule("博彩")});
  ASSERT_TRUE(a.Refresh().ok());  // compiles both sets' rules, stores, activates
  const std::shared_ptr<const RuleSnapshot> activated = a.Current();
  ASSERT_EQ(activated->compiled->rules().size(), 3U);
  auto recorded = store_->CompiledKeyOf(activated->generation);
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(*recorded, activated->compiled->cache_key());
  auto older = store_->CompiledKeyOf(activated->generation - 1);
  ASSERT_TRUE(older.ok());
  EXPECT_EQ(*older, "");  // only the generation in force has its key

  MysqlRuleStore b_store(*pool_, SystemClock::Get());
  CountingSource b_source(b_store);
  RuleEngine b(b_source);
  ASSERT_TRUE(b.Refresh().ok());
  EXPECT_EQ(b_source.active_reads, 0);
  ASSERT_NE(b.Current(), nullptr);
  EXPECT_TRUE(b.Current()->compiled->from_cache());
  EXPECT_EQ(b.Current()->generation, activated->generation);
  EXPECT_EQ(b.Current()->compiled->cache_key(), activated->compiled->cache_key());
  EXPECT_EQ(b.Current()->origin, activated->origin);
  EXPECT_EQ(b.Current()->origin, (std::vector<std::pair<uint64_t, uint32_t>>{
                                     {first_set, 1}, {second_set, 1}, {second_set, 1}}));
  EXPECT_EQ(Screen(b, "賭 博"), Verdict::kBlock);
  EXPECT_EQ(Screen(b, "哈哈哈"), Verdict::kHold);

  // The entry dropped from the cache: a new replica reads and builds.
  auto lease = pool_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(Execute(**lease, "DELETE FROM rule_compiled_sets").ok());
  MysqlRuleStore c_store(*pool_, SystemClock::Get());
  CountingSource c_source(c_store);
  RuleEngine c(c_source);
  ASSERT_TRUE(c.Refresh().ok());
  EXPECT_EQ(c_source.active_reads, 1);
  EXPECT_FALSE(c.Current()->compiled->from_cache());
  EXPECT_EQ(c.Current()->generation, activated->generation);
  EXPECT_EQ(c.Current()->origin, activated->origin);
  EXPECT_EQ(Screen(c, "赌博"), Verdict::kBlock);

  // A generation moved by anything but an activation has no key.
  ASSERT_TRUE(
      Execute(**lease, "UPDATE rule_generation SET generation = generation + 1 WHERE id = 1").ok());
  auto moved = store_->CompiledKeyOf(activated->generation + 1);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(*moved, "");
}

TEST_F(ModerationRuleStoreTest, OneReplicaCompilesWhileTheOthersWait) {
  const uint64_t id = CreateSet("claimed", {MakeRule("赌博")});
  const std::string key = KeyPending();
  const std::string count_stored =
      absl::StrCat("SELECT COUNT(*) FROM rule_compiled_sets WHERE cache_key = '", key, "'");

  // Replica a is compiling the waiting version: it holds the claim.
  MysqlRuleStore a(*pool_, SystemClock::Get());
  MysqlRuleStore b(*pool_, SystemClock::Get());
  auto claim = a.ClaimCompile(key);
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_NE(*claim, nullptr);
  auto taken = b.ClaimCompile(key);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(*taken, nullptr);
  // Replica b waits: no compile, nothing activated, and not an error. (It
  // would read the pending version again only after kPendingRecheck; here
  // at every poll.)
  RuleEngine waiting(b, kMaxWaitForOtherCompile, nullptr, absl::ZeroDuration());
  absl::Status refreshed = waiting.Refresh();
  EXPECT_EQ(ErrorReason(refreshed), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(refreshed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waiting.Current()->compiled->rules().size(), 0U);
  EXPECT_EQ(waiting.LastError(), "");
  EXPECT_EQ(Count(count_stored), 0);
  EXPECT_EQ(Listed(id).active_version(), 0U);

  // A replica with the default recheck does not read the pending version
  // (a million rules, at scale) at every poll while it waits.
  MysqlRuleStore c(*pool_, SystemClock::Get());
  CountingSource counting(c);
  RuleEngine patient(counting);
  EXPECT_EQ(ErrorReason(patient.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_TRUE(patient.Refresh().ok());  // nothing tried at this poll
  EXPECT_EQ(counting.pending_reads, 1);

  // Replica a gives up mid-compile: its claim is released at once, and b
  // compiles (and shares) the set, then activates it.
  claim->reset();
  ASSERT_TRUE(waiting.Refresh().ok());
  EXPECT_FALSE(waiting.Current()->compiled->from_cache());
  EXPECT_EQ(waiting.Current()->compiled->cache_key(), key);
  EXPECT_EQ(Screen(waiting, "赌博"), Verdict::kBlock);
  EXPECT_EQ(Count(count_stored), 1);
  EXPECT_EQ(Listed(id).active_version(), 1U);
  RuleEngine later(a);
  ASSERT_TRUE(later.Refresh().ok());
  EXPECT_TRUE(later.Current()->compiled->from_cache());
  // The waiting replica gets the activation through the generation.
  ASSERT_TRUE(patient.Refresh().ok());
  EXPECT_TRUE(patient.Current()->compiled->from_cache());
  EXPECT_EQ(Screen(patient, "赌博"), Verdict::kBlock);
}

TEST_F(ModerationRuleStoreTest, AClaimDiesWithItsConnection) {
  CreateSet("dies", {MakeRule("赌博")});
  const std::string key = KeyPending();
  MysqlRuleStore a(*pool_, SystemClock::Get());
  MysqlRuleStore b(*pool_, SystemClock::Get());
  auto claim = a.ClaimCompile(key);
  ASSERT_TRUE(claim.ok() && *claim != nullptr);
  MysqlPool::Lease lease = pool_->Acquire(absl::Seconds(10)).value();
  const std::string name = "SHA2(CONCAT('qunzu_rule_compile:', DATABASE(), ':', ?), 256)";
  auto number = [&](const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(Query(*lease, sql, {key}, [&](const sql::ResultSet& row) {
                  n = row.isNull(1) ? 0 : row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return n;
  };
  const int64_t holder = number("SELECT IS_USED_LOCK(" + name + ")");
  ASSERT_GT(holder, 0);

  // Replica a dies mid-compile: the server ends its connection, and with it
  // the claim (this connection waits for the lock, then lets it go).
  ASSERT_TRUE(Execute(*lease, absl::StrCat("KILL CONNECTION ", holder)).ok());
  ASSERT_EQ(number("SELECT GET_LOCK(" + name + ", 30)"), 1);
  ASSERT_EQ(number("SELECT RELEASE_LOCK(" + name + ")"), 1);
  auto taken = b.ClaimCompile(key);
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_NE(*taken, nullptr);
  // a's token going afterwards (its release fails on the dead connection)
  // leaves b's claim alone.
  claim->reset();
  const int64_t now_holder = number("SELECT IS_USED_LOCK(" + name + ")");
  EXPECT_GT(now_holder, 0);
  EXPECT_NE(now_holder, holder);
  // A claim that goes is released on its connection, free at once for the
  // next replica, and the connection goes back to the pool.
  const int open = pool_->open_connections();
  taken->reset();
  EXPECT_EQ(number("SELECT IS_USED_LOCK(" + name + ")"), 0);
  EXPECT_EQ(pool_->open_connections(), open);
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
  // A patient replica keeps waiting.
  MysqlRuleStore c(*pool_, SystemClock::Get());
  RuleEngine patient(c);
  EXPECT_EQ(ErrorReason(patient.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(ErrorReason(patient.Refresh()), "RULE_SET_COMPILING_ELSEWHERE");
  EXPECT_EQ(patient.Current(), nullptr);
  // Its patience spent, b compiles the rules itself, without the claim,
  // and still shares them: the patient replica loads them.
  ASSERT_TRUE(waiting.Refresh().ok());
  EXPECT_FALSE(waiting.Current()->compiled->from_cache());
  EXPECT_EQ(Screen(waiting, "赌博"), Verdict::kBlock);
  ASSERT_TRUE(patient.Refresh().ok());
  EXPECT_TRUE(patient.Current()->compiled->from_cache());
  EXPECT_EQ(Screen(patient, "赌博"), Verdict::kBlock);
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

// Rows written before versions shared them (a full copy per version) are
// read as they were by the migration that made them share.
class RuleSetMigrationTest : public testing::CommonSchemaTest {
 protected:
  RuleSetMigrationTest() : CommonSchemaTest("moderation_rules_migration", 4) {}
};

TEST_F(RuleSetMigrationTest, FullCopiesPerVersionReadTheSameAfterTheMigration) {
  std::vector<Migration> before;
  for (const Migration& m : RuleSetMigrations()) {
    if (m.version < 58) before.push_back(m);
  }
  ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", before).ok());
  auto lease = pool_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  // Set 1: v1 {1, 2}, v2 {2, 3} (v2 pending), v1 active. Set 2: v1 {4}.
  ASSERT_TRUE(Execute(**lease,
                      "INSERT INTO rule_sets (rule_set_id, name, description, latest_version, "
                      "active_version, rule_count, updated_by, updated_at, pending_version) "
                      "VALUES (1, 'a', '', 2, 1, 2, 'ops', NOW(6), 2), "
                      "(2, 'b', '', 1, 1, 1, 'ops', NOW(6), 0)")
                  .ok());
  ASSERT_TRUE(Execute(**lease,
                      "INSERT INTO rule_set_rules (rule_set_id, version, rule_id, kind, pattern, "
                      "category, action, note) VALUES (1, 1, 1, 1, '赌博', 1, 1, ''), "
                      "(1, 1, 2, 1, '赌球', 1, 1, ''), (1, 2, 2, 1, '赌球', 1, 1, ''), "
                      "(1, 2, 3, 1, '博彩', 1, 1, ''), (2, 1, 4, 1, '刷单', 1, 1, '')")
                  .ok());
  ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", RuleSetMigrations()).ok());
  MysqlRuleStore store(*pool_, SystemClock::Get());
  auto ids = [](const std::vector<ActiveRule>& rules) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const ActiveRule& rule : rules) out.emplace_back(rule.rule_set_id, rule.rule.id);
    return out;
  };
  int64_t generation = 0;
  std::vector<ActiveRule> active;
  ASSERT_TRUE(store.LoadActive(&generation, &active).ok());
  EXPECT_EQ(ids(active), (std::vector<std::pair<uint64_t, uint64_t>>{{1, 1}, {1, 2}, {2, 4}}));
  auto pending = store.LoadPending();
  ASSERT_TRUE(pending.ok() && pending->has_value());
  EXPECT_EQ(ids((*pending)->rules),
            (std::vector<std::pair<uint64_t, uint64_t>>{{1, 2}, {1, 3}, {2, 4}}));
}

}  // namespace
}  // namespace qunzu::moderation
