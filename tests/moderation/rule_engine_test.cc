#include "services/moderation/rule_engine.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/moderation/memory_rules_cache.h"
#include "tests/test_support.h"

namespace qunzu::moderation {
namespace {

using ::qunzu::testing::MetricValue;

class FakeRuleSource : public RuleSource {
 public:
  void Set(int64_t generation, std::vector<ActiveRule> rules) {
    absl::MutexLock lock(&mu_);
    generation_ = generation;
    rules_ = std::move(rules);
  }
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  int loads() {
    absl::MutexLock lock(&mu_);
    return loads_;
  }
  absl::StatusOr<int64_t> Generation() override {
    absl::MutexLock lock(&mu_);
    if (down_) return MakeError(absl::StatusCode::kUnavailable, "MYSQL_UNAVAILABLE", "down");
    return generation_;
  }
  absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) override {
    absl::MutexLock lock(&mu_);
    ++loads_;
    *generation = generation_;
    *rules = rules_;
    return absl::OkStatus();
  }
  CompiledRulesCache* compiled_cache() override { return cache_; }
  void SetCache(CompiledRulesCache* cache) { cache_ = cache; }

 private:
  absl::Mutex mu_;
  int64_t generation_ = 0;
  std::vector<ActiveRule> rules_;
  bool down_ = false;
  int loads_ = 0;
  CompiledRulesCache* cache_ = nullptr;
};

ActiveRule Term(uint64_t id, std::string term, uint64_t set = 1, uint32_t version = 1) {
  return ActiveRule{Rule{id, RuleKind::kLiteral, std::move(term), 2, RuleAction::kBlock}, set,
                    version};
}

Verdict ScreenVerdictOf(const RuleEngine& engine, absl::string_view text) {
  NormalizedText normalized;
  ScanResult result;
  std::shared_ptr<const RuleSnapshot> snapshot;
  absl::Status status = engine.Screen(text, "text", false, &normalized, &result, &snapshot);
  EXPECT_TRUE(status.ok()) << status;
  return result.verdict;
}

TEST(ModerationRuleEngineTest, NotLoadedFailsClosed) {
  FakeRuleSource source;
  RuleEngine engine(source);
  NormalizedText normalized;
  ScanResult result;
  std::shared_ptr<const RuleSnapshot> snapshot;
  EXPECT_EQ(ErrorReason(engine.Screen("hi", "text", false, &normalized, &result, &snapshot)),
            "RULES_NOT_LOADED");
}

TEST(ModerationRuleEngineTest, NewGenerationSwapsInAndKeepsItsOrigin) {
  FakeRuleSource source;
  source.Set(1, {Term(1, "赌博")});
  RuleEngine engine(source);
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(ScreenVerdictOf(engine, "赌博"), Verdict::kBlock);
  EXPECT_EQ(ScreenVerdictOf(engine, "枪支"), Verdict::kAllow);
  std::shared_ptr<const RuleSnapshot> old = engine.Current();

  source.Set(2, {Term(2, "枪支", 7, 3)});
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(ScreenVerdictOf(engine, "赌博"), Verdict::kAllow);
  EXPECT_EQ(ScreenVerdictOf(engine, "枪支"), Verdict::kBlock);
  EXPECT_EQ(engine.Current()->origin[0], (std::pair<uint64_t, uint32_t>{7, 3}));
  // A request holding the old snapshot keeps using it, unchanged.
  EXPECT_EQ(old->generation, 1);
  EXPECT_EQ(old->compiled->rules()[0].pattern, "赌博");
}

TEST(ModerationRuleEngineTest, SameGenerationDoesNotRecompile) {
  FakeRuleSource source;
  source.Set(5, {Term(1, "x")});
  RuleEngine engine(source);
  ASSERT_TRUE(engine.Refresh().ok());
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(source.loads(), 1);
}

TEST(ModerationRuleEngineTest, FailuresKeepTheSnapshotInForce) {
  FakeRuleSource source;
  source.Set(1, {Term(1, "赌博")});
  RuleEngine engine(source);
  ASSERT_TRUE(engine.Refresh().ok());
  source.SetDown(true);
  EXPECT_FALSE(engine.Refresh().ok());
  EXPECT_EQ(ScreenVerdictOf(engine, "赌博"), Verdict::kBlock);
  source.SetDown(false);
  source.Set(2, {Term(1, "  ")});  // does not compile
  EXPECT_EQ(ErrorReason(engine.Refresh()), "PATTERN_EMPTY");
  EXPECT_FALSE(engine.LastError().empty());
  EXPECT_EQ(ScreenVerdictOf(engine, "赌博"), Verdict::kBlock);
}

TEST(ModerationRuleEngineTest, ScreeningDuringSwapsNeverFails) {
  FakeRuleSource source;
  source.Set(1, {Term(1, "赌博")});
  RuleEngine engine(source);
  ASSERT_TRUE(engine.Refresh().ok());
  std::thread reader([&] {
    for (int i = 0; i < 2000; ++i) {
      NormalizedText normalized;
      ScanResult result;
      std::shared_ptr<const RuleSnapshot> snapshot;
      ASSERT_TRUE(engine.Screen("赌博", "text", false, &normalized, &result, &snapshot).ok());
      ASSERT_EQ(result.verdict, Verdict::kBlock);
    }
  });
  for (int g = 2; g < 40; ++g) {
    source.Set(g, {Term(1, "赌博"), Term(2, "t" + std::to_string(g))});
    ASSERT_TRUE(engine.Refresh().ok());
  }
  reader.join();
}

TEST(ModerationRuleEngineTest, MetricsSayWhichGenerationIsInForceAndHowItCame) {
  prometheus::Registry registry;
  RuleEngineMetrics metrics(registry);
  MemoryRulesCache cache;
  FakeRuleSource source;
  source.SetCache(&cache);
  source.Set(3, {Term(1, "赌博")});
  RuleEngine engine(source, kMaxWaitForOtherCompile, &metrics);
  ASSERT_TRUE(engine.Refresh().ok());
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rules_generation", {{"state", "latest"}}), 3);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rules_generation", {{"state", "in_force"}}), 3);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_loads_total", {{"how", "compiled"}}),
            1);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_loads_total", {{"how", "from_cache"}}),
            0);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_load_seconds"), 1);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_load_failures_total"), 0);

  // A second replica finds the set in the cache.
  prometheus::Registry other_registry;
  RuleEngineMetrics other_metrics(other_registry);
  RuleEngine other(source, kMaxWaitForOtherCompile, &other_metrics);
  ASSERT_TRUE(other.Refresh().ok());
  EXPECT_EQ(
      MetricValue(other_registry, "qunzu_moderation_rule_set_loads_total", {{"how", "from_cache"}}),
      1);
  EXPECT_EQ(
      MetricValue(other_registry, "qunzu_moderation_rule_set_loads_total", {{"how", "compiled"}}),
      0);

  // A generation that does not compile: the latest moves, the one in
  // force stays, and the failure is counted; so is a source that is down.
  source.Set(4, {Term(1, " ")});
  EXPECT_FALSE(engine.Refresh().ok());
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rules_generation", {{"state", "latest"}}), 4);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rules_generation", {{"state", "in_force"}}), 3);
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_load_failures_total"), 1);
  source.SetDown(true);
  EXPECT_FALSE(engine.Refresh().ok());
  EXPECT_EQ(MetricValue(registry, "qunzu_moderation_rule_set_load_failures_total"), 2);
}

}  // namespace
}  // namespace qunzu::moderation
