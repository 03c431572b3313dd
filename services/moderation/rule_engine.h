// The rules in force on this replica (R10.1): every rule set's active
// version, merged and compiled into one CompiledRules off the request path,
// and swapped in atomically. A poller asks the RuleSource for its
// generation every poll interval and, when it moved, loads the built set
// the generation was activated with from the source's cache by the key
// recorded with it — no rule is read or normalised — or else reads the
// rules and compiles them (through the cache too). A version is activated
// only once compiled: the same poller takes a version waiting to be put in
// force, compiles it with every other active version (one replica does,
// the others wait for the cache), stores it, and only then activates it
// with its key, unless the versions in force moved meanwhile. A version
// that does not compile is rejected and the versions in force stay. So a
// new version is in force on every replica within a poll interval plus the
// load from the cache (0.4 s at a million terms) of its activation.
// Screening never waits on a compile: it reads the snapshot in force.
#ifndef QUNZU_SERVICES_MODERATION_RULE_ENGINE_H_
#define QUNZU_SERVICES_MODERATION_RULE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/moderation/matcher.h"

namespace qunzu::moderation {

// A rule of an active rule-set version.
struct ActiveRule {
  Rule rule;
  uint64_t rule_set_id = 0;
  uint32_t version = 0;
};

// A version waiting to be put in force, read with the versions in force.
struct PendingActivation {
  uint64_t rule_set_id = 0;
  uint32_t version = 0;
  // The generation of the versions in force it was read with.
  int64_t generation = 0;
  // Every rule in force once it is: this version's and the other sets'
  // active versions', in LoadActive's order.
  std::vector<ActiveRule> rules;
  // Set by the engine once they are compiled: the cache key of the
  // compiled set, recorded with the generation Activate starts, so that
  // the other replicas load that set without reading the rules.
  std::string compiled_key;
};

// The reason of RuleSource::Activate's error when the versions in force or
// the version waiting moved since the PendingActivation was read.
inline constexpr char kActivationStale[] = "RULE_SET_ACTIVATION_STALE";

// Where the active rules come from (MySQL in production).
class RuleSource {
 public:
  virtual ~RuleSource() = default;
  // A number that changes whenever the set of active versions changes.
  virtual absl::StatusOr<int64_t> Generation() = 0;
  // The cache key of the compiled set `generation` was put in force with;
  // "" when there is none (the generation has moved on, or was not started
  // by an activation of a compiled set).
  virtual absl::StatusOr<std::string> CompiledKeyOf(int64_t /*generation*/) {
    return std::string();
  }
  // The generation and every rule of every active version, read together,
  // in an order that depends only on them.
  virtual absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) = 0;
  // Where compiled sets are shared between replicas; null: none.
  virtual CompiledRulesCache* compiled_cache() { return nullptr; }

  // The version that has waited longest to be put in force; nullopt when
  // none waits (a source whose versions are active at once has none).
  virtual absl::StatusOr<std::optional<PendingActivation>> LoadPending() { return std::nullopt; }
  // Puts a compiled pending version in force and returns the new
  // generation; ABORTED kActivationStale when the versions in force moved
  // or the set waits for another version now.
  virtual absl::StatusOr<int64_t> Activate(const PendingActivation& pending);
  // Rejects a pending version that does not compile (why); the versions in
  // force stay. Nothing happens when it no longer waits.
  virtual absl::Status Reject(const PendingActivation& pending, const absl::Status& why);
};

// One compiled generation of the active rules.
struct RuleSnapshot {
  int64_t generation = 0;
  std::shared_ptr<const CompiledRules> compiled;
  // Per rule index of compiled: the rule set and version it belongs to.
  std::vector<std::pair<uint64_t, uint32_t>> origin;
};

// The annex (CompiledRules::annex) of a snapshot's compiled rules: their
// origin, as runs of one set and version, so that a replica that loads the
// compiled set by its key alone knows it too. OriginFromAnnex is false for
// bytes that do not hold the origin of rule_count rules.
std::string OriginAnnex(const std::vector<std::pair<uint64_t, uint32_t>>& origin);
bool OriginFromAnnex(absl::string_view annex, size_t rule_count,
                     std::vector<std::pair<uint64_t, uint32_t>>* origin);

// How long a replica waits for another one's compile of the same rules
// before compiling them itself (that one may be stuck, or unable to store).
inline constexpr absl::Duration kMaxWaitForOtherCompile = absl::Minutes(3);
// How often a replica waiting for another one's compile of a pending
// version reads it again (a million rules take a second to read; the
// activation itself reaches it through the generation at every poll).
inline constexpr absl::Duration kPendingRecheck = absl::Seconds(2);

// What a RuleEngine exports (all optional):
//   qunzu_moderation_rules_generation{state="latest"|"in_force"}: the
//     source's generation at the last poll, and the one this replica's
//     snapshot was compiled from; apart for long, this replica does not
//     apply new rules (alert QunzuRulesNotInForce);
//   qunzu_moderation_rule_set_loads_total{how="compiled"|"from_cache"};
//   qunzu_moderation_rule_set_load_failures_total (waiting for another
//     replica's compile is not a failure);
//   qunzu_moderation_rule_set_rejections_total: versions this replica
//     refused because they did not compile;
//   qunzu_moderation_rule_set_load_seconds: compile or load, per snapshot.
class RuleEngineMetrics {
 public:
  explicit RuleEngineMetrics(prometheus::Registry& registry);
  void Polled(int64_t latest_generation);
  void Loaded(int64_t generation, bool from_cache, absl::Duration elapsed);
  void Failed();
  void Rejected();

 private:
  prometheus::Gauge* latest_;
  prometheus::Gauge* in_force_;
  prometheus::Counter* compiled_;
  prometheus::Counter* from_cache_;
  prometheus::Counter* failures_;
  prometheus::Counter* rejections_;
  prometheus::Histogram* seconds_;
};

class RuleEngine {
 public:
  // metrics may be null.
  explicit RuleEngine(RuleSource& source,
                      absl::Duration max_wait_for_other_compile = kMaxWaitForOtherCompile,
                      RuleEngineMetrics* metrics = nullptr,
                      absl::Duration pending_recheck = kPendingRecheck)
      : source_(source),
        max_wait_for_other_compile_(max_wait_for_other_compile),
        pending_recheck_(pending_recheck),
        metrics_(metrics) {}
  ~RuleEngine();
  RuleEngine(const RuleEngine&) = delete;
  RuleEngine& operator=(const RuleEngine&) = delete;

  // Starts polling on a thread of its own (the destructor stops it).
  void Start(absl::Duration poll_interval);

  // One poll: when the source's generation differs from the snapshot's,
  // loads, compiles and swaps; then puts the source's pending version in
  // force (compiled here or loaded from the cache) or rejects it. Errors
  // leave the snapshot in force and are logged and counted, except
  // kCompilingElsewhere (waiting) and kActivationStale (asked again).
  absl::Status Refresh();

  // The snapshot in force; null until the first successful Refresh.
  std::shared_ptr<const RuleSnapshot> Current() const;

  // Normalises and scans text with the snapshot in force. UNAVAILABLE
  // RULES_NOT_LOADED before the first compile; INVALID_ARGUMENT for invalid
  // UTF-8 (naming `field`). `snapshot` receives the snapshot used; `normalized`
  // reads `text` again if asked for its map, so text must outlive its use.
  absl::Status Screen(absl::string_view text, absl::string_view field, bool explain,
                      NormalizedText* normalized, ScanResult* result,
                      std::shared_ptr<const RuleSnapshot>* snapshot) const;

  // The error of the last failed compile, "" after a success.
  std::string LastError() const;

 private:
  absl::Status RefreshOnce();
  // Puts the compiled set `generation` was activated with in force, loaded
  // by its key without reading the rules; false when the source or the
  // cache has none for it (the caller then reads and builds).
  absl::StatusOr<bool> LoadActivated(int64_t generation);
  absl::Status ActivatePending();
  // Compiles rules with the source's cache; once this replica has waited
  // kMaxWaitForOtherCompile for another one's compile of the same `what`,
  // without the claim. Remembers when the waiting began.
  absl::StatusOr<std::shared_ptr<const CompiledRules>> CompileShared(std::vector<Rule> rules,
                                                                     const RuleSnapshot& snapshot,
                                                                     const std::string& what);
  // The rules of active, moved out, with their origin in snapshot.
  static std::vector<Rule> TakeRules(std::vector<ActiveRule>& active, RuleSnapshot& snapshot);
  // Puts snapshot in force, compiled or loaded in elapsed.
  void Install(std::shared_ptr<const RuleSnapshot> snapshot, absl::Duration elapsed);

  RuleSource& source_;
  const absl::Duration max_wait_for_other_compile_;
  const absl::Duration pending_recheck_;
  RuleEngineMetrics* const metrics_;
  mutable absl::Mutex mu_;
  // What this replica waits for another one to compile, since when.
  std::string waiting_for_ ABSL_GUARDED_BY(mu_);
  // Pending versions are not read again before this (waiting for another
  // replica's compile).
  absl::Time pending_recheck_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time waiting_since_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const RuleSnapshot> current_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_RULE_ENGINE_H_
