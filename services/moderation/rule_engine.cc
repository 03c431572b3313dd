#include "services/moderation/rule_engine.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/flat_bytes.h"

namespace qunzu::moderation {

RuleEngineMetrics::RuleEngineMetrics(prometheus::Registry& registry) {
  auto& generation = prometheus::BuildGauge()
                         .Name("qunzu_moderation_rules_generation")
                         .Help(
                             "The rule sets' generation: the latest one (state=latest) and "
                             "the one in force on this replica (state=in_force).")
                         .Register(registry);
  latest_ = &generation.Add({{"state", "latest"}});
  in_force_ = &generation.Add({{"state", "in_force"}});
  auto& loads = prometheus::BuildCounter()
                    .Name("qunzu_moderation_rule_set_loads_total")
                    .Help(
                        "Rule snapshots put in force, compiled here or loaded from the "
                        "cache another replica filled.")
                    .Register(registry);
  compiled_ = &loads.Add({{"how", "compiled"}});
  from_cache_ = &loads.Add({{"how", "from_cache"}});
  failures_ = &prometheus::BuildCounter()
                   .Name("qunzu_moderation_rule_set_load_failures_total")
                   .Help("Rule refreshes that failed; the snapshot in force stays.")
                   .Register(registry)
                   .Add({});
  rejections_ = &prometheus::BuildCounter()
                     .Name("qunzu_moderation_rule_set_rejections_total")
                     .Help(
                         "Rule-set versions refused because they did not compile; the "
                         "versions in force stay.")
                     .Register(registry)
                     .Add({});
  seconds_ =
      &prometheus::BuildHistogram()
           .Name("qunzu_moderation_rule_set_load_seconds")
           .Help("Time to compile or load the rules of one snapshot.")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.1, 0.5, 1, 5, 15, 60, 180});
}

void RuleEngineMetrics::Polled(int64_t latest_generation) {
  latest_->Set(static_cast<double>(latest_generation));
}

void RuleEngineMetrics::Loaded(int64_t generation, bool from_cache, absl::Duration elapsed) {
  in_force_->Set(static_cast<double>(generation));
  (from_cache ? from_cache_ : compiled_)->Increment();
  seconds_->Observe(absl::ToDoubleSeconds(elapsed));
}

void RuleEngineMetrics::Failed() { failures_->Increment(); }

void RuleEngineMetrics::Rejected() { rejections_->Increment(); }

absl::StatusOr<int64_t> RuleSource::Activate(const PendingActivation&) {
  return absl::UnimplementedError("this rule source has no pending versions");
}

absl::Status RuleSource::Reject(const PendingActivation&, const absl::Status&) {
  return absl::UnimplementedError("this rule source has no pending versions");
}

namespace {

// The source's cache without its claim: for a replica that waited long
// enough for another one's compile, which may be stuck or unable to store.
class UnclaimedCache final : public CompiledRulesCache {
 public:
  explicit UnclaimedCache(CompiledRulesCache& cache) : cache_(cache) {}
  absl::StatusOr<std::optional<std::string>> Load(const std::string& key) override {
    return cache_.Load(key);
  }
  absl::Status Store(const std::string& key, const std::string& bytes) override {
    return cache_.Store(key, bytes);
  }

 private:
  CompiledRulesCache& cache_;
};

}  // namespace

std::string OriginAnnex(const std::vector<std::pair<uint64_t, uint32_t>>& origin) {
  std::string out;
  FlatWriter writer(&out);
  for (size_t i = 0; i < origin.size();) {
    size_t end = i + 1;
    while (end < origin.size() && origin[end] == origin[i]) ++end;
    writer.Number(origin[i].first);
    writer.Number(origin[i].second);
    writer.Number(end - i);
    i = end;
  }
  return out;
}

bool OriginFromAnnex(absl::string_view annex, size_t rule_count,
                     std::vector<std::pair<uint64_t, uint32_t>>* origin) {
  origin->clear();
  origin->reserve(rule_count);
  FlatReader reader(annex);
  while (reader.left() > 0) {
    uint64_t rule_set_id = 0;
    uint32_t version = 0;
    uint64_t count = 0;
    if (!reader.Number(&rule_set_id) || !reader.Number(&version) || !reader.Number(&count) ||
        count > rule_count - origin->size()) {
      return false;
    }
    origin->insert(origin->end(), count, {rule_set_id, version});
  }
  return origin->size() == rule_count;
}

RuleEngine::~RuleEngine() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

void RuleEngine::Start(absl::Duration poll_interval) {
  poller_ = std::thread([this, poll_interval] {
    do {
      (void)Refresh();
    } while (!stop_.WaitForNotificationWithTimeout(poll_interval));
  });
}

absl::Status RuleEngine::Refresh() {
  absl::Status status = RefreshOnce();
  if (status.ok()) status = ActivatePending();
  // Waiting for another replica's compile is the normal case of a large
  // set, and a stale activation is read again at the next poll: neither is
  // a failure.
  const std::string reason = ErrorReason(status);
  if (!status.ok() && reason != kCompilingElsewhere && reason != kActivationStale) {
    LogError("rule_refresh_failed", {{"error", status.ToString()}});
    if (metrics_ != nullptr) metrics_->Failed();
  }
  return status;
}

absl::Status RuleEngine::RefreshOnce() {
  ASSIGN_OR_RETURN(int64_t generation, source_.Generation());
  if (metrics_ != nullptr) metrics_->Polled(generation);
  std::shared_ptr<const RuleSnapshot> current = Current();
  if (current != nullptr && current->generation == generation) return absl::OkStatus();
  ASSIGN_OR_RETURN(const bool loaded, LoadActivated(generation));
  if (loaded) return absl::OkStatus();
  std::vector<ActiveRule> active;
  RETURN_IF_ERROR(source_.LoadActive(&generation, &active));
  auto snapshot = std::make_shared<RuleSnapshot>();
  snapshot->generation = generation;
  std::vector<Rule> rules = TakeRules(active, *snapshot);
  const absl::Time started = absl::Now();
  absl::StatusOr<std::shared_ptr<const CompiledRules>> compiled =
      CompileShared(std::move(rules), *snapshot, absl::StrCat("generation ", generation));
  if (!compiled.ok()) {
    if (ErrorReason(compiled.status()) != kCompilingElsewhere) {
      absl::MutexLock lock(&mu_);
      last_error_ = compiled.status().ToString();
    }
    return compiled.status();
  }
  snapshot->compiled = *std::move(compiled);
  Install(std::move(snapshot), absl::Now() - started);
  return absl::OkStatus();
}

absl::Status RuleEngine::ActivatePending() {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() < pending_recheck_after_) return absl::OkStatus();  // not yet
  }
  ASSIGN_OR_RETURN(std::optional<PendingActivation> pending, source_.LoadPending());
  if (!pending.has_value()) return absl::OkStatus();
  auto snapshot = std::make_shared<RuleSnapshot>();
  std::vector<Rule> rules = TakeRules(pending->rules, *snapshot);
  const absl::Time started = absl::Now();
  absl::StatusOr<std::shared_ptr<const CompiledRules>> compiled =
      CompileShared(std::move(rules), *snapshot,
                    absl::StrCat("rule set ", pending->rule_set_id, " version ", pending->version,
                                 " on generation ", pending->generation));
  if (!compiled.ok()) {
    if (ErrorReason(compiled.status()) == kCompilingElsewhere) {
      absl::MutexLock lock(&mu_);
      pending_recheck_after_ = absl::Now() + pending_recheck_;
      return compiled.status();
    }
    // The rules do not compile: the version is refused, the ones in force
    // stay, and the next version waiting is not held up by it.
    LogWarning("rule_set_version_rejected", {{"rule_set_id", absl::StrCat(pending->rule_set_id)},
                                             {"version", absl::StrCat(pending->version)},
                                             {"error", compiled.status().ToString()}});
    RETURN_IF_ERROR(source_.Reject(*pending, compiled.status()));
    if (metrics_ != nullptr) metrics_->Rejected();
    return absl::OkStatus();
  }
  // What is activated is exactly what was compiled: no second load here.
  pending->compiled_key = (*compiled)->cache_key();
  ASSIGN_OR_RETURN(snapshot->generation, source_.Activate(*pending));
  if (metrics_ != nullptr) metrics_->Polled(snapshot->generation);
  snapshot->compiled = *std::move(compiled);
  Install(std::move(snapshot), absl::Now() - started);
  return absl::OkStatus();
}

std::vector<Rule> RuleEngine::TakeRules(std::vector<ActiveRule>& active, RuleSnapshot& snapshot) {
  std::vector<Rule> rules;
  rules.reserve(active.size());
  snapshot.origin.reserve(active.size());
  for (ActiveRule& rule : active) {
    snapshot.origin.emplace_back(rule.rule_set_id, rule.version);
    rules.push_back(std::move(rule.rule));
  }
  return rules;
}

absl::StatusOr<bool> RuleEngine::LoadActivated(int64_t generation) {
  CompiledRulesCache* cache = source_.compiled_cache();
  if (cache == nullptr) return false;
  ASSIGN_OR_RETURN(const std::string key, source_.CompiledKeyOf(generation));
  if (key.empty()) return false;
  const absl::Time started = absl::Now();
  absl::StatusOr<std::shared_ptr<const CompiledRules>> compiled =
      CompiledRules::LoadCached(key, *cache);
  if (!compiled.ok() || *compiled == nullptr) return false;  // read and build instead
  auto snapshot = std::make_shared<RuleSnapshot>();
  snapshot->generation = generation;
  if (!OriginFromAnnex((*compiled)->annex(), (*compiled)->rules().size(), &snapshot->origin)) {
    LogWarning("rule_cache_origin_unusable", {{"key", key}});
    return false;
  }
  snapshot->compiled = *std::move(compiled);
  Install(std::move(snapshot), absl::Now() - started);
  return true;
}

absl::StatusOr<std::shared_ptr<const CompiledRules>> RuleEngine::CompileShared(
    std::vector<Rule> rules, const RuleSnapshot& snapshot, const std::string& what) {
  CompiledRulesCache* cache = source_.compiled_cache();
  std::optional<UnclaimedCache> unclaimed;
  if (cache != nullptr) {
    absl::MutexLock lock(&mu_);
    if (waiting_for_ == what && absl::Now() - waiting_since_ >= max_wait_for_other_compile_) {
      cache = &unclaimed.emplace(*cache);  // waited long enough: compile here, alone
    }
  }
  absl::StatusOr<std::shared_ptr<const CompiledRules>> compiled =
      CompiledRules::Compile(std::move(rules), cache, OriginAnnex(snapshot.origin));
  if (ErrorReason(compiled.status()) == kCompilingElsewhere) {
    absl::MutexLock lock(&mu_);
    if (waiting_for_ != what) {
      waiting_for_ = what;
      waiting_since_ = absl::Now();
    }
  }
  return compiled;
}

void RuleEngine::Install(std::shared_ptr<const RuleSnapshot> snapshot, absl::Duration elapsed) {
  if (metrics_ != nullptr) {
    metrics_->Loaded(snapshot->generation, snapshot->compiled->from_cache(), elapsed);
  }
  absl::MutexLock lock(&mu_);
  current_ = std::move(snapshot);
  last_error_.clear();
}

std::shared_ptr<const RuleSnapshot> RuleEngine::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

std::string RuleEngine::LastError() const {
  absl::ReaderMutexLock lock(&mu_);
  return last_error_;
}

absl::Status RuleEngine::Screen(absl::string_view text, absl::string_view field, bool explain,
                                NormalizedText* normalized, ScanResult* result,
                                std::shared_ptr<const RuleSnapshot>* snapshot) const {
  RETURN_IF_ERROR(Normalizer::Get().NormalizeText(text, normalized, field));
  *snapshot = Current();
  if (*snapshot == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "RULES_NOT_LOADED",
                     "the content rules are not loaded yet");
  }
  return (*snapshot)->compiled->Scan(*normalized, explain, result);
}

}  // namespace qunzu::moderation
