// rule-activation: how long after a rule-set version is activated it is in
// force on the other replicas, at 100k and 1M jieba terms, on real MariaDB.
// Replica A's RuleEngine takes the waiting version, builds it, stores the
// built set and activates it, recording the set's key with the generation;
// replica B (its own store, the same database) then polls: it loads the
// built set by that key, without reading the rules. The baseline is what B
// did before the built set was stored whole: reading the rules in force and
// building them itself.
#include <cppconn/resultset.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "services/moderation/moderation_service.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/rule_engine.h"
#include "tests/bench/jieba_words.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

using Steady = std::chrono::steady_clock;
namespace v1 = moderation::v1;

double SecondsSince(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

// A rule set whose latest version holds `terms` and waits to be put in
// force, uploaded as an operator would: UpsertRuleSet calls of 50,000
// terms, the first a REPLACE, the rest MERGEs, only the last activating.
// Each call writes only its own rules (versions share the rest), so the
// upload is linear in the terms. Its time is `upload_seconds`. Then one
// more MERGE, not activated, replaces the first 50,000 rules (found by id
// among all of them): `replace_seconds`.
absl::StatusOr<uint64_t> UploadPendingSet(moderation::MysqlRuleStore& store,
                                          const std::vector<std::string>& terms,
                                          double* upload_seconds, double* replace_seconds) {
  constexpr size_t kPerCall = 50000;
  const moderation::RequestContext context{Caller{"bench", common::v1::ROLE_OPERATOR, ""}, "",
                                           "/qunzu.moderation.v1.ModerationService/UpsertRuleSet"};
  const auto start = Steady::now();
  uint64_t id = 0;
  uint32_t version = 0;
  std::vector<uint64_t> first_ids;
  for (size_t first = 0; first < terms.size(); first += kPerCall) {
    v1::UpsertRuleSetRequest request;
    request.set_request_id(absl::StrCat("activation-", terms.size(), "-", first));
    if (id == 0) {
      request.set_name(absl::StrCat("activation-", terms.size()));
      request.set_mode(v1::RULE_SET_UPDATE_MODE_REPLACE);
    } else {
      request.set_rule_set_id(id);
      request.set_base_version(version);
      request.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
    }
    for (size_t i = first; i < terms.size() && i < first + kPerCall; ++i) {
      v1::Rule* rule = request.add_rules();
      rule->set_kind(v1::RULE_KIND_LITERAL);
      rule->set_pattern(terms[i]);
      rule->set_category(v1::CONTENT_CATEGORY_GAMBLING);
      rule->set_action(v1::RULE_ACTION_BLOCK);
    }
    request.set_activate(first + kPerCall >= terms.size());
    ASSIGN_OR_RETURN(v1::UpsertRuleSetResponse response, store.Upsert(context, request));
    id = response.rule_set().rule_set_id();
    version = response.version();
    if (first == 0) first_ids.assign(response.rule_ids().begin(), response.rule_ids().end());
  }
  *upload_seconds = SecondsSince(start);
  v1::UpsertRuleSetRequest replace;
  replace.set_request_id(absl::StrCat("activation-", terms.size(), "-replace"));
  replace.set_rule_set_id(id);
  replace.set_base_version(version);
  replace.set_mode(v1::RULE_SET_UPDATE_MODE_MERGE);
  for (size_t i = 0; i < first_ids.size(); ++i) {
    v1::Rule* rule = replace.add_rules();
    rule->set_rule_id(first_ids[i]);
    rule->set_kind(v1::RULE_KIND_LITERAL);
    rule->set_pattern(terms[i]);
    rule->set_category(v1::CONTENT_CATEGORY_GAMBLING);
    rule->set_action(v1::RULE_ACTION_HOLD);
  }
  const auto replace_start = Steady::now();
  RETURN_IF_ERROR(store.Upsert(context, replace).status());
  *replace_seconds = SecondsSince(replace_start);
  return id;
}

// One row of the table; false when a step failed.
bool MeasureOne(MysqlPool& pool, const std::vector<std::string>& terms) {
  moderation::MysqlRuleStore store_a(pool, SystemClock::Get());
  moderation::MysqlRuleStore store_b(pool, SystemClock::Get());
  moderation::RuleEngine a(store_a);
  moderation::RuleEngine b(store_b);
  // Both in force on what was there before (nothing).
  if (!a.Refresh().ok() || !b.Refresh().ok()) return false;
  double upload_seconds = 0;
  double replace_seconds = 0;
  absl::StatusOr<uint64_t> id = UploadPendingSet(store_a, terms, &upload_seconds, &replace_seconds);
  if (!id.ok()) {
    std::fprintf(stderr, "rule-activation: %s\n", id.status().ToString().c_str());
    return false;
  }
  // A: compile, store, activate.
  auto start = Steady::now();
  absl::Status activated = a.Refresh();
  const double activate_seconds = SecondsSince(start);
  if (!activated.ok() || a.Current()->compiled->rules().size() != terms.size() ||
      a.Current()->compiled->from_cache()) {
    std::fprintf(stderr, "rule-activation: A did not compile and activate: %s\n",
                 activated.ToString().c_str());
    return false;
  }
  // B: the poll after the activation.
  start = Steady::now();
  absl::Status loaded = b.Refresh();
  const double in_force_seconds = SecondsSince(start);
  if (!loaded.ok() || !b.Current()->compiled->from_cache() ||
      b.Current()->generation != a.Current()->generation ||
      b.Current()->compiled->rules().size() != terms.size()) {
    std::fprintf(stderr, "rule-activation: B did not load the built set: %s\n",
                 loaded.ToString().c_str());
    return false;
  }
  auto lease = pool.Acquire(absl::Seconds(5));
  if (!lease.ok()) return false;
  double stored_mib = 0;
  if (!Query(**lease, "SELECT SUM(LENGTH(bytes)) FROM rule_compiled_sets WHERE cache_key = ?",
             {a.Current()->compiled->cache_key()},
             [&](const sql::ResultSet& row) {
               stored_mib = static_cast<double>(row.getUInt64(1)) / (1 << 20);
               return absl::OkStatus();
             })
           .ok()) {
    return false;
  }
  // The baseline: B reading the rules in force and building them itself.
  int64_t generation = 0;
  std::vector<moderation::ActiveRule> rules;
  start = Steady::now();
  if (!store_b.LoadActive(&generation, &rules).ok()) return false;
  const double read_seconds = SecondsSince(start);
  std::vector<moderation::Rule> plain;
  plain.reserve(rules.size());
  for (moderation::ActiveRule& rule : rules) plain.push_back(std::move(rule.rule));
  rules.clear();
  start = Steady::now();
  auto compiled = moderation::CompiledRules::Compile(std::move(plain));
  const double build_seconds = SecondsSince(start);
  if (!compiled.ok()) return false;
  std::printf("| %zu | %.1f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %.3f |\n", terms.size(),
              upload_seconds, replace_seconds, activate_seconds, stored_mib, in_force_seconds,
              read_seconds, build_seconds, in_force_seconds / (read_seconds + build_seconds));
  std::fflush(stdout);
  // The next size starts from nothing in force.
  return Execute(**lease, "UPDATE rule_sets SET active_version = 0 WHERE rule_set_id = ?", {*id})
             .ok() &&
         Execute(**lease, "UPDATE rule_generation SET generation = generation + 1 WHERE id = 1")
             .ok();
}

}  // namespace

int RunRuleActivationBench() {
  const char* dsn = std::getenv("QUNZU_MYSQL_DSN");
  if (dsn == nullptr) {
    std::fprintf(stderr, "rule-activation bench: QUNZU_MYSQL_DSN not set\n");
    return 1;
  }
  const std::vector<std::string> words = LoadJiebaDictionary(JiebaDictPath()).words;
  if (words.size() < 100000) {
    std::printf("rule-activation: skipped, no jieba dictionary at %s\n", JiebaDictPath().c_str());
    return 0;
  }
  absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
  if (!options.ok()) return 1;
  const std::string schema = absl::StrCat("qunzu_bench_activation_", getpid());
  auto pool = MysqlPool::Create(*options, schema, 8);
  if (!pool.ok()) return 1;
  absl::Status ready = ApplyMigrations(**pool, kCommonComponent, CommonMigrations());
  if (ready.ok()) {
    ready = ApplyMigrations(**pool, "moderation", moderation::ModerationServiceMigrations());
  }
  if (!ready.ok()) {
    std::fprintf(stderr, "rule-activation bench: %s\n", ready.ToString().c_str());
    return 1;
  }
  std::printf(
      "\n### rule-activation: from activation to in force on another replica, jieba terms\n\n"
      "| terms | upload: UpsertRuleSet calls of 50k s | a MERGE replacing 50k of them s | A: "
      "build, store, activate s | built set "
      "stored MiB | B: in force after its poll (loads the built set) s | baseline: B reading "
      "the rules s | baseline: B building them s | ratio in force / (read + build) "
      "|\n|---|---|---|---|---|---|---|---|---|\n");
  bool ok = true;
  const std::vector<std::string> all = ManyDistinctTerms(words, 1000000);
  for (size_t count : {size_t{100000}, size_t{1000000}}) {
    const std::vector<std::string> terms(all.begin(),
                                         all.begin() + static_cast<std::ptrdiff_t>(count));
    if (!MeasureOne(**pool, terms)) {
      ok = false;
      break;
    }
  }
  if (auto lease = (*pool)->Acquire(absl::Seconds(5)); lease.ok()) {
    (void)Execute(**lease, "DROP DATABASE `" + schema + "`");
  }
  return ok ? 0 : 1;
}

}  // namespace qunzu::bench
