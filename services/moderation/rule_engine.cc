#include "services/moderation/rule_engine.h"

#include <utility>

#include "common/log.h"
#include "common/status.h"

namespace qunzu::moderation {

RuleEngine::~RuleEngine() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

void RuleEngine::Start(absl::Duration poll_interval) {
  poller_ = std::thread([this, poll_interval] {
    do {
      absl::Status status = Refresh();
      // Waiting for another replica's compile is the normal case of a
      // large set, not an error.
      if (!status.ok() && ErrorReason(status) != "RULE_SET_COMPILING_ELSEWHERE") {
        LogError("rule_refresh_failed", {{"error", status.ToString()}});
      }
    } while (!stop_.WaitForNotificationWithTimeout(poll_interval));
  });
}

absl::Status RuleEngine::Refresh() {
  ASSIGN_OR_RETURN(int64_t generation, source_.Generation());
  std::shared_ptr<const RuleSnapshot> current = Current();
  if (current != nullptr && current->generation == generation) return absl::OkStatus();
  std::vector<ActiveRule> active;
  RETURN_IF_ERROR(source_.LoadActive(&generation, &active));
  auto snapshot = std::make_shared<RuleSnapshot>();
  snapshot->generation = generation;
  std::vector<Rule> rules;
  rules.reserve(active.size());
  snapshot->origin.reserve(active.size());
  for (ActiveRule& rule : active) {
    snapshot->origin.emplace_back(rule.rule_set_id, rule.version);
    rules.push_back(std::move(rule.rule));
  }
  CompiledRulesCache* cache = source_.compiled_cache();
  {
    absl::MutexLock lock(&mu_);
    if (waiting_generation_ == generation &&
        absl::Now() - waiting_since_ >= max_wait_for_other_compile_) {
      cache = nullptr;  // waited long enough: compile here, alone
    }
  }
  absl::StatusOr<std::shared_ptr<const CompiledRules>> compiled =
      CompiledRules::Compile(std::move(rules), cache);
  absl::MutexLock lock(&mu_);
  if (!compiled.ok()) {
    if (ErrorReason(compiled.status()) != "RULE_SET_COMPILING_ELSEWHERE") {
      last_error_ = compiled.status().ToString();
    } else if (waiting_generation_ != generation) {
      waiting_generation_ = generation;
      waiting_since_ = absl::Now();
    }
    return compiled.status();
  }
  snapshot->compiled = *std::move(compiled);
  current_ = std::move(snapshot);
  last_error_.clear();
  return absl::OkStatus();
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
