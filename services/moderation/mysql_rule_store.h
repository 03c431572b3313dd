// Rule sets in MySQL (R10.1): every UpsertRuleSet makes a version of its
// full rule list, writing only the rules it adds or replaces (a row holds
// for versions [version, until_version): versions share what they have in
// common, so a MERGE costs its own size, not the set's); an activated version waits
// (pending_version) until a replica's RuleEngine has compiled it with the other active versions and
// stored the built set in the shared cache; activating it then bumps one
// generation counter that every replica's RuleEngine polls, and records
// with it the built set's key, so the new rules are in force everywhere
// within a poll interval plus the load of that one entry. Writes are idempotent by request_id;
// every write, the engine's activations and rejections included, is audited in its own transaction.
#ifndef QUNZU_SERVICES_MODERATION_MYSQL_RULE_STORE_H_
#define QUNZU_SERVICES_MODERATION_MYSQL_RULE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/rule_engine.h"

namespace qunzu::moderation {

// A compiled set nobody has loaded or stored for this long leaves the cache.
inline constexpr absl::Duration kCompiledSetRetention = absl::Hours(24 * 7);

// Who is asking, for idempotency and audit.
struct RequestContext {
  Caller caller;
  std::string peer;
  // Full gRPC method name.
  std::string method;
};

// Also the cache of compiled sets every replica shares
// (rule_compiled_sets: one entry per key, in chunks that stay under
// MySQL's packet limit, written whole in one transaction).
class MysqlRuleStore final : public RuleSource, public CompiledRulesCache {
 public:
  MysqlRuleStore(MysqlPool& pool, const Clock& clock) : pool_(pool), clock_(clock) {}

  absl::StatusOr<int64_t> Generation() override;
  // Recorded by Activate with the generation it starts.
  absl::StatusOr<std::string> CompiledKeyOf(int64_t generation) override;
  absl::Status LoadActive(int64_t* generation, std::vector<ActiveRule>* rules) override;
  CompiledRulesCache* compiled_cache() override { return this; }
  // Versions wait in the order they were activated.
  absl::StatusOr<std::optional<PendingActivation>> LoadPending() override;
  // Both audited as moderation's own RULE_SET_VERSION_ACTIVATED and
  // RULE_SET_VERSION_REJECTED (details: reason, error).
  absl::StatusOr<int64_t> Activate(const PendingActivation& pending) override;
  absl::Status Reject(const PendingActivation& pending, const absl::Status& why) override;

  // The cache. Store replaces an entry of the same key and drops entries
  // nobody loaded or stored for kCompiledSetRetention; Load marks an entry
  // used (at most once a day).
  absl::StatusOr<std::optional<std::string>> Load(const std::string& key) override;
  absl::Status Store(const std::string& key, const std::string& bytes) override;
  // A MySQL named lock on the key (GET_LOCK, not waiting), held on a
  // connection of its own until the token goes (RELEASE_LOCK, so the next
  // replica may claim it at once), and by the server only as long as that
  // connection lives: a replica that dies mid-compile frees it.
  absl::StatusOr<std::shared_ptr<void>> ClaimCompile(const std::string& key) override;

  // Creates a rule set or a version of one from a validated request.
  // Errors: NOT_FOUND RULE_SET_NOT_FOUND, RULE_NOT_FOUND; ABORTED
  // RULE_SET_VERSION_CONFLICT; ALREADY_EXISTS RULE_SET_NAME_TAKEN,
  // REQUEST_ID_REUSED.
  absl::StatusOr<v1::UpsertRuleSetResponse> Upsert(const RequestContext& context,
                                                   const v1::UpsertRuleSetRequest& request);

  // Rule sets by id, without their rules. compile_state is the set's:
  // READY once its active version was compiled and activated, which this
  // replica puts in force within a poll interval plus the load.
  absl::StatusOr<v1::ListRuleSetsResponse> List(const v1::ListRuleSetsRequest& request);

 private:
  MysqlPool& pool_;
  const Clock& clock_;
};

// Moderation's schema migrations for rule sets.
const std::vector<Migration>& RuleSetMigrations();

// The internal rule of a stored one (an ALLOW literal becomes kAllow).
Rule RuleFromProto(const v1::Rule& rule);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_MYSQL_RULE_STORE_H_
